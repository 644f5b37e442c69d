#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Append hostile entries to an (uncompressed) package tar made by mkarchrepo.sh.

usage: append-evil.py --tar TARFILE KIND MTIME      append the entries to TARFILE
       append-evil.py --mtree MTREE.gz KIND MTIME    append their lines to the gzip'd .MTREE
KIND: dotdot | abs | symlink | hardlink | hardlink-rel | device
Every entry is owned by root:root and carries MTIME, so the output is deterministic.
pacman builds a package's file list from .MTREE and skips archive entries missing from it, so
the hostile entries are listed there too (with bsdtar's mtree keywords).
"""
import gzip
import hashlib
import io
import sys
import tarfile


def entry(name, kind=tarfile.REGTYPE, mode=0o644, mtime=0, **kw):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = mtime
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def main():
    what, path, kind, mtime = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    adds = []  # (TarInfo, bytes or None)

    def file(name, data):
        ti = entry(name, mtime=mtime)
        ti.size = len(data)
        adds.append((ti, data))

    if kind == "dotdot":
        file("usr/../../escape-dotdot", b"escaped via dotdot\n")
    elif kind == "abs":
        file("/tmp/escape-abs", b"escaped via absolute path\n")
    elif kind == "symlink":
        adds.append((entry("usr/share/evil", tarfile.SYMTYPE, 0o777, mtime, linkname="/tmp"), None))
        file("usr/share/evil/escape-symlink", b"escaped via symlink\n")
    elif kind == "hardlink":
        adds.append((entry("usr/share/evil-passwd", tarfile.LNKTYPE, 0o644, mtime,
                           linkname="/etc/passwd"), None))
    elif kind == "hardlink-rel":
        adds.append((entry("usr/share/evil-passwd", tarfile.LNKTYPE, 0o644, mtime,
                           linkname="../../../../../../../../etc/passwd"), None))
    elif kind == "device":
        adds.append((entry("dev/evil", tarfile.CHRTYPE, 0o666, mtime, devmajor=1, devminor=1), None))
    else:
        sys.exit(f"append-evil.py: unknown kind {kind!r}")

    if what == "--tar":
        with tarfile.open(path, "a", format=tarfile.PAX_FORMAT) as tf:
            for ti, data in adds:
                tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    elif what == "--mtree":
        with open(path, "rb") as f:
            text = gzip.decompress(f.read()).decode()
        for ti, data in adds:
            name = ti.name if ti.name.startswith("/") else "./" + ti.name
            kw = [f"time={ti.mtime}.0", f"mode={ti.mode:o}"]
            if ti.type == tarfile.REGTYPE:
                kw += [f"size={len(data)}", "md5digest=" + hashlib.md5(data).hexdigest(),
                       "sha256digest=" + hashlib.sha256(data).hexdigest()]
            elif ti.type == tarfile.SYMTYPE:
                kw += ["type=link", "link=" + ti.linkname]
            elif ti.type == tarfile.LNKTYPE:
                kw += ["size=0"]  # bsdtar lists a hard link as a file; the target is unknown
            elif ti.type == tarfile.CHRTYPE:
                kw += ["type=char"]
            text += name + " " + " ".join(kw) + "\n"
        with open(path, "wb") as f:
            f.write(gzip.compress(text.encode(), mtime=0))
    else:
        sys.exit(f"append-evil.py: unknown mode {what!r}")


if __name__ == "__main__":
    main()
