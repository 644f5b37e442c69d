#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""List a tree path by path, sorted, one line each, for diffing two trees:
   PATH TYPE MODE UID GID SIZE SHA256|->TARGET [NLINK-GROUP] [xattrs]
Usage: treelist.py ROOT [--exclude REGEX]... [--mtime] [--no-nlink]
Hard links are shown as the first path of their inode group, so equal trees print equal text."""
import argparse, hashlib, os, re, stat, sys

ap = argparse.ArgumentParser()
ap.add_argument("root")
ap.add_argument("--exclude", action="append", default=[])
ap.add_argument("--mtime", action="store_true")
args = ap.parse_args()
ex = [re.compile(e) for e in args.exclude]
root = os.path.abspath(args.root)
entries = []
for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    for name in sorted(dirnames + filenames):
        full = os.path.join(dirpath, name)
        rel = os.path.relpath(full, root)
        if any(e.search(rel) for e in ex):
            if name in dirnames:
                dirnames.remove(name)
            continue
        entries.append((rel, full))
entries.sort()
first_of_inode = {}
for rel, full in entries:
    st = os.lstat(full)
    mode = st.st_mode
    t = "d" if stat.S_ISDIR(mode) else "l" if stat.S_ISLNK(mode) else "f" if stat.S_ISREG(mode) else "c" if stat.S_ISCHR(mode) else "b" if stat.S_ISBLK(mode) else "p" if stat.S_ISFIFO(mode) else "s"
    extra = ""
    if t == "f":
        h = hashlib.sha256()
        with open(full, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        extra = h.hexdigest()
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first_of_inode.setdefault(key, rel)
            extra += " link-group=" + first_of_inode[key]
    elif t == "l":
        extra = "-> " + os.readlink(full)
    elif t in "cb":
        extra = "dev=%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    xa = ""
    if t != "l":
        try:
            names = sorted(os.listxattr(full, follow_symlinks=False))
            xa = " ".join("%s=%s" % (n, os.getxattr(full, n, follow_symlinks=False).hex()) for n in names)
        except OSError:
            xa = ""
    size = st.st_size if t == "f" else 0
    line = "%s %s %04o %d %d %d %s" % (rel, t, stat.S_IMODE(mode), st.st_uid, st.st_gid, size, extra)
    if args.mtime:
        line += " mtime=%d" % int(st.st_mtime)
    if xa:
        line += " xattr:" + xa
    sys.stdout.write(line + "\n")
