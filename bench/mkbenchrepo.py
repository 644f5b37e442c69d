#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""mkbenchrepo.py OUTDIR: builds the benchmark's signed Arch repository (see bench/README.md).

The package set looks like a base system from a distance: ~150 installed packages in two
repositories (core, extra) plus ~30 that are in the dbs but not installed, a dependency graph of
four levels (filesystem/glibc/bash, libraries, more libraries and tools, applications, one meta
package) that names its dependencies by package name, by soname provides (libfoo.so=1-64), by
a virtual provide (sh) and with versions (libfoo>=1.2). Per package the file count and the
installed size are drawn from log-normal distributions (a few KiB to ~20 MiB, a handful of
packages with 1000+ files), then scaled to the totals below; files are a mix of binaries (one
large ELF-sized blob per library/program, partly incompressible), text (headers, python modules,
docs: compressible), gzipped man pages (small, incompressible), locale catalogs, symlinks
(sonames, bin aliases) and a few hard links.

Everything but the signatures is deterministic (seeded PRNG, SOURCE_DATE_EPOCH mtimes, root
ownership, makepkg's file order), so the .pkg.tar.zst bytes are identical between runs. Packages
are made like makepkg's create_package (the same way as tests/tools/mkarchrepo.sh): .BUILDINFO,
.MTREE (bsdtar mtree, gzip), .PKGINFO sorted first, bsdtar + zstd; each is signed with a
throwaway ed25519 key; dbs are made (and signed) by the real repo-add.

Environment:
  BENCH_SCALE       multiplies the total file count and size (default 1.0: ~20k files, ~200 MiB)
  BENCH_ZSTD_LEVEL  zstd level (default 3 = what Debian's /etc/makepkg.conf COMPRESSZST,
                    "zstd -c -z -q -", gives; Arch's devtools use "--ultra -20 -T0", which takes
                    minutes for 200 MiB on two cores; decompression speed hardly depends on it)
  BENCH_JOBS        parallel package builds (default: number of CPUs)

OUTDIR layout:
  gnupg/ keyring/{bench.gpg,bench-trusted,bench-revoked} pacman-gpg/ FINGERPRINT
  repo/{core,extra}/os/x86_64/   packages, .sig files, signed dbs
  targets.txt     the package names to install (one a line)
  packages.txt    REPO NAME VERSION INSTALLED(yes|no) FILES BYTES
  stats.txt       totals
"""
import concurrent.futures
import gzip
import math
import os
import random
import shutil
import stat
import subprocess
import sys

SDE = int(os.environ.get("SOURCE_DATE_EPOCH", "1700000000"))
ARCH = "x86_64"
PACKAGER = "mkmachine bench <bench@mkmachine.invalid>"
UID_NAME = "mkmachine bench repo <bench@mkmachine.invalid>"
SCALE = float(os.environ.get("BENCH_SCALE", "1.0"))
LEVEL = int(os.environ.get("BENCH_ZSTD_LEVEL", "3"))
JOBS = int(os.environ.get("BENCH_JOBS", str(os.cpu_count() or 2)))
TOTAL_FILES = int(20000 * SCALE)
TOTAL_BYTES = int(200 * 1024 * 1024 * SCALE)

N_L1, N_L2, N_L3, N_UNINSTALLED = 30, 50, 66, 30

SYLL = ["ar", "bel", "cor", "dan", "el", "fin", "gor", "hul", "ix", "jan", "kel", "lor", "mu",
        "nex", "or", "pix", "quo", "ral", "sen", "tor", "ul", "vin", "wex", "yar", "zed", "ox"]
LANGS = ["de", "fr", "es", "it", "ja", "pt_BR", "ru", "zh_CN", "pl", "nl", "sv", "cs", "uk",
         "ko", "tr", "fi", "da", "hu", "el", "ro"]


class Pkg:
    def __init__(self, name, ver, repo, kind, level):
        self.name, self.ver, self.repo, self.kind, self.level = name, ver, repo, kind, level
        self.depends, self.provides, self.optdepends, self.backup = [], [], [], []
        self.installed = True
        self.nfiles = 1
        self.nbytes = 4096
        self.major = 1

    @property
    def filename(self):
        return f"{self.name}-{self.ver}-{ARCH}.pkg.tar.zst"


# ------------------------------------------------------------------ the graph
def plan():
    rng = random.Random("mkmachine-bench-plan-1")
    used = set()

    def newname(prefix=""):
        while True:
            n = prefix + "".join(rng.choice(SYLL) for _ in range(rng.randint(2, 3)))
            if n not in used:
                used.add(n)
                return n

    def version():
        v = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}-{rng.randint(1, 3)}"
        return ("1:" + v) if rng.random() < 0.05 else v

    pkgs = []
    fs = Pkg("filesystem", "2024.01-1", "core", "filesystem", 0)
    glibc = Pkg("glibc", "2.39-1", "core", "glibc", 0)
    glibc.depends = ["filesystem"]
    glibc.provides = ["libc.so=6-64"]
    glibc.major = 6
    glibc.backup = ["etc/locale.gen", "etc/nsswitch.conf"]
    bash = Pkg("bash", "5.2.026-2", "core", "app", 0)
    bash.depends = ["glibc", "libc.so=6-64"]
    bash.provides = ["sh"]
    bash.backup = ["etc/bash.bashrc"]
    pkgs += [fs, glibc, bash]

    l1, l2, l3 = [], [], []
    for i in range(N_L1):
        p = Pkg(newname("lib"), version(), "core", "lib", 1)
        p.major = rng.randint(0, 9)
        p.provides = [f"{p.name}.so={p.major}-64"]
        p.depends = ["glibc"]
        for q in rng.sample(l1, min(len(l1), rng.randint(0, 2))):
            p.depends.append(f"{q.name}.so={q.major}-64" if rng.random() < 0.5 else q.name)
        l1.append(p)
    for i in range(N_L2):
        kind = rng.choice(["lib", "lib", "tool", "data"])
        p = Pkg(newname("lib" if kind == "lib" else ""), version(), "core" if i % 2 == 0 else "extra", kind, 2)
        if kind == "lib":
            p.major = rng.randint(0, 9)
            p.provides = [f"{p.name}.so={p.major}-64"]
        for q in rng.sample(l1, rng.randint(1, 4)):
            r = rng.random()
            if r < 0.4:
                p.depends.append(f"{q.name}.so={q.major}-64")
            elif r < 0.6:
                p.depends.append(f"{q.name}>={q.ver.split(':')[-1].split('-')[0]}")
            else:
                p.depends.append(q.name)
        if kind == "tool" or rng.random() < 0.2:
            p.depends.append("sh")
        l2.append(p)
    for i in range(N_L3):
        kind = rng.choice(["app", "app", "app", "data", "python"])
        p = Pkg(newname(), version(), "extra" if i % 3 else "core", kind, 3)
        for q in rng.sample(l1 + l2 + l2, rng.randint(1, 5)):
            if q.provides and q.kind == "lib" and rng.random() < 0.5:
                p.depends.append(q.provides[0])
            else:
                p.depends.append(q.name)
        if l3 and rng.random() < 0.3:
            p.depends.append(rng.choice(l3).name)
        if rng.random() < 0.3:
            p.optdepends.append(f"{rng.choice(l2).name}: optional support")
        if rng.random() < 0.2:
            p.backup.append(f"etc/{p.name}.conf")
        l3.append(p)
    pkgs += l1 + l2 + l3
    for p in pkgs:  # dedupe, keep order
        p.depends = list(dict.fromkeys(p.depends))

    meta = Pkg("bench-base", "1-1", "core", "meta", 4)
    meta.depends = ["filesystem", "glibc", "bash"] + [p.name for p in l3[:-6]]
    pkgs.append(meta)

    unins = []
    for i in range(N_UNINSTALLED):
        p = Pkg(newname(), version(), "extra", rng.choice(["app", "lib", "data"]), 3)
        p.depends = [q.name for q in rng.sample(l1 + l2, 2)]
        p.installed = False
        unins.append(p)
    pkgs += unins

    # sizes: log-normal per package, scaled to the totals over the installed packages
    inst = [p for p in pkgs if p.installed]
    fweights, bweights = {}, {}
    for p in inst:
        if p.kind == "meta":
            fweights[p.name], bweights[p.name] = 0.0, 0.0
            continue
        f = rng.lognormvariate(math.log(55), 1.25)
        b = rng.lognormvariate(math.log(450 * 1024), 1.5)
        if p.kind == "glibc":
            f, b = 1800.0, 35 * 1024 * 1024.0
        if p.kind == "filesystem":
            f, b = 25.0, 8 * 1024.0
        fweights[p.name], bweights[p.name] = min(f, 2500.0), min(b, 24 * 1024 * 1024.0)
    fsum, bsum = sum(fweights.values()), sum(bweights.values())
    for p in inst:
        if p.kind == "meta":
            p.nfiles, p.nbytes = 0, 0
            continue
        p.nfiles = max(3, round(fweights[p.name] * TOTAL_FILES / fsum))
        p.nbytes = max(4096, round(bweights[p.name] * TOTAL_BYTES / bsum), p.nfiles * 300)
    for p in unins:
        p.nfiles, p.nbytes = rng.randint(3, 20), rng.randint(4096, 64 * 1024)

    # targets: the meta package plus whatever it does not pull in (as "pacstrap base x y z" would)
    byname = {p.name: p for p in pkgs}
    provider = {}
    for p in pkgs:
        for pr in p.provides:
            provider[pr.split("=")[0]] = p
    reach, todo = set(), ["bench-base"]
    while todo:
        n = todo.pop()
        if n in reach:
            continue
        reach.add(n)
        for d in byname[n].depends:
            base = d.split(">=")[0].split("=")[0]
            todo.append(byname[base].name if base in byname else provider[base].name)
    # the libraries nothing needs join the meta package, the last applications are named alone
    meta.depends += [p.name for p in l1 + l2 if p.name not in reach]
    targets = ["bench-base"] + [p.name for p in l3[-6:] if p.name not in reach]
    return pkgs, targets


# ------------------------------------------------------------------ content
class Content:
    def __init__(self, rng):
        self.rng = rng
        wr = random.Random("mkmachine-bench-words")
        letters = "etaoinshrdlcumwfgypbvkjxqz_"
        words = ["".join(wr.choices(letters, weights=range(27, 0, -1), k=wr.randint(2, 10)))
                 for _ in range(3000)]
        self.words = [w + " " for w in words] + [w + "\n" for w in words[:300]] + \
            ["{ ", "} ", "();\n", " = ", "\t", "#define ", "return ", "if (", "0x"] * 20

    def text(self, n):
        k = n // 5 + 8
        s = "".join(self.rng.choices(self.words, k=k)).encode()
        while len(s) < n:
            s += s
        return s[:n]

    def binary(self, n):
        out, left = [], n
        while left > 0:
            c = min(left, 4096)
            r = self.rng.random()
            if r < 0.3:
                out.append(self.rng.randbytes(c))
            elif r < 0.75:
                out.append(self.text(c))
            else:
                b = bytearray(c)
                for _ in range(c // 64):
                    b[self.rng.randrange(c)] = self.rng.randrange(256)
                out.append(bytes(b))
            left -= c
        return b"".join(out)

    def manpage(self, n):
        return gzip.compress(self.text(n * 3), compresslevel=9, mtime=0)


def split_sizes(rng, total, count):
    if count <= 0:
        return []
    w = [rng.lognormvariate(0, 1.3) for _ in range(count)]
    s = sum(w)
    return [max(16, int(total * x / s)) for x in w]


def populate(p, root):
    """Write p's files under root; returns (files, bytes) written (regular files)."""
    rng = random.Random(f"mkmachine-bench-{p.name}-{p.ver}")
    C = Content(rng)
    entries = []  # (relpath, kind, size, mode)

    def add(rel, kind, size, mode=0o644):
        entries.append((rel, kind, size, mode))

    symlinks, hardlinks = [], []
    n, total = p.nfiles, p.nbytes
    if p.kind == "filesystem":
        for d in ["boot", "dev", "etc", "home", "mnt", "opt", "proc", "root", "run", "srv", "sys",
                  "tmp", "usr/bin", "usr/include", "usr/lib", "usr/share/man", "usr/share/doc",
                  "usr/share/licenses", "usr/local/bin", "var/cache", "var/lib", "var/log", "var/tmp"]:
            os.makedirs(os.path.join(root, d), exist_ok=True)
        os.chmod(os.path.join(root, "root"), 0o750)
        os.chmod(os.path.join(root, "tmp"), 0o1777)
        os.chmod(os.path.join(root, "var/tmp"), 0o1777)
        os.chmod(os.path.join(root, "proc"), 0o555)
        os.chmod(os.path.join(root, "sys"), 0o555)
        for l, t in [("bin", "usr/bin"), ("sbin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib"),
                     ("usr/sbin", "bin"), ("usr/lib64", "lib"), ("var/run", "../run")]:
            symlinks.append((l, t))
        etc = {"passwd": "root:x:0:0:root:/root:/bin/bash\n", "group": "root:x:0:root\n",
               "hostname": "benchhost\n", "hosts": "127.0.0.1 localhost\n", "shells": "/bin/sh\n/bin/bash\n"}
        for k, v in etc.items():
            with open(os.path.join(root, "etc", k), "w") as f:
                f.write(v)
        p.backup = ["etc/" + k for k in etc]
        for i in range(max(0, n - len(etc))):
            add(f"usr/share/factory/etc/f{i:03d}", "text", max(16, total // max(1, n)))
    elif p.kind != "meta":
        sizes = split_sizes(rng, total, n)
        sizes.sort(reverse=True)
        big = sizes[0]
        rest = sizes[1:]
        if p.kind in ("lib", "glibc"):
            base = "libc" if p.kind == "glibc" else p.name
            real = f"usr/lib/{base}.so.{p.major}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
            add(real, "binary", max(big, total // 3), 0o755)
            symlinks += [(f"usr/lib/{base}.so.{p.major}", os.path.basename(real)),
                         (f"usr/lib/{base}.so", os.path.basename(real))]
        elif p.kind in ("app", "tool"):
            add(f"usr/bin/{p.name}", "binary", max(big, total // 3), 0o755)
            if rng.random() < 0.3:
                symlinks.append((f"usr/bin/{p.name}-alias", p.name))
            if rng.random() < 0.1:
                hardlinks.append((f"usr/bin/{p.name}-hl", f"usr/bin/{p.name}"))
        else:
            add(f"usr/share/{p.name}/{p.name}.dat", "binary", big)
        for b in p.backup:
            add(b, "text", 300)
        dirs = {
            "lib": ["usr/include/{n}", "usr/include/{n}/detail", "usr/share/doc/{n}", "usr/lib/{n}/plugins",
                    "usr/share/man/man3", "usr/share/locale/{l}/LC_MESSAGES"],
            "glibc": ["usr/share/i18n/charmaps", "usr/share/i18n/locales", "usr/include/bits",
                      "usr/include/sys", "usr/lib/gconv", "usr/share/locale/{l}/LC_MESSAGES",
                      "usr/share/man/man3", "usr/share/zoneinfo/{Z}"],
            "app": ["usr/share/man/man1", "usr/share/{n}", "usr/share/{n}/data", "usr/share/doc/{n}",
                    "usr/share/locale/{l}/LC_MESSAGES", "usr/lib/{n}"],
            "tool": ["usr/share/man/man1", "usr/share/man/man8", "usr/lib/{n}", "usr/share/{n}"],
            "data": ["usr/share/{n}", "usr/share/{n}/{Z}", "usr/share/{n}/icons/{d}x{d}", "usr/share/doc/{n}"],
            "python": ["usr/lib/python3.12/site-packages/{n}", "usr/lib/python3.12/site-packages/{n}/{Z}",
                       "usr/lib/python3.12/site-packages/{n}/__pycache__", "usr/share/man/man1"],
        }[p.kind]
        zones = ["Africa", "America", "Asia", "Europe", "Pacific", "core", "util", "io", "net"]
        for i, sz in enumerate(rest):
            d = rng.choice(dirs).format(n=p.name, l=rng.choice(LANGS), Z=rng.choice(zones),
                                        d=rng.choice([16, 24, 32, 48, 64, 128, 256]))
            if "/man/man" in d:
                add(f"{d}/{p.name}-{i}.{d[-1]}.gz", "man", min(sz, 6000))
            elif "LC_MESSAGES" in d:
                add(f"{d}/{p.name}-{i}.mo", "binary", sz)
            elif d.startswith("usr/include"):
                add(f"{d}/h{i}.h", "text", sz)
            elif "site-packages" in d:
                add(f"{d}/m{i}.pyc" if "__pycache__" in d else f"{d}/m{i}.py",
                    "binary" if "__pycache__" in d else "text", sz)
            elif "icons" in d:
                add(f"{d}/i{i}.png", "random", sz)
            elif "/plugins" in d or "gconv" in d:
                add(f"{d}/p{i}.so", "binary", sz, 0o755)
            else:
                add(f"{d}/f{i}", rng.choice(["text", "text", "binary"]), sz)
    files = bytes_ = 0
    for rel, kind, size, mode in entries:
        full = os.path.join(root, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if kind == "text":
            data = C.text(size)
        elif kind == "man":
            data = C.manpage(size)
        elif kind == "random":
            data = rng.randbytes(size)
        else:
            data = C.binary(size)
        with open(full, "wb") as f:
            f.write(data)
        os.chmod(full, mode)
        files += 1
        bytes_ += len(data)
    for rel, target in symlinks:
        full = os.path.join(root, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        os.symlink(target, full)
    for rel, target in hardlinks:
        os.link(os.path.join(root, target), os.path.join(root, rel))
    return files, bytes_


# ------------------------------------------------------------------ packaging (makepkg's way)
def dirsize(root):
    seen, total = set(), 0
    for dp, dn, fn in os.walk(root):
        for f in fn:
            st = os.lstat(os.path.join(dp, f))
            if stat.S_ISREG(st.st_mode) and st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total


def pkginfo(p, size):
    name = p.name
    out = ["# Generated by makepkg 6.0.2", "# using fakeroot version 1.31",
           f"pkgname = {name}", f"pkgbase = {name}", f"pkgver = {p.ver}",
           f"pkgdesc = {name} (mkmachine benchmark package)", f"url = https://mkmachine.invalid/{name}",
           f"builddate = {SDE}", f"packager = {PACKAGER}", f"size = {size}", f"arch = {ARCH}",
           "license = MIT"]
    out += [f"provides = {x}" for x in p.provides]
    out += [f"backup = {x}" for x in p.backup]
    out += [f"depend = {x}" for x in p.depends]
    out += [f"optdepend = {x}" for x in p.optdepends]
    return "\n".join(out) + "\n"


def buildinfo(p):
    return "".join(f"{k} = {v}\n" for k, v in [
        ("format", 2), ("pkgname", p.name), ("pkgbase", p.name), ("pkgver", p.ver), ("pkgarch", ARCH),
        ("pkgbuild_sha256sum", "0" * 64), ("packager", PACKAGER), ("builddate", SDE),
        ("builddir", "/build"), ("startdir", "/startdir"), ("buildtool", "mkbenchrepo.py"),
        ("buildtoolver", 1), ("buildenv", "!distcc"), ("buildenv", "!ccache"), ("options", "strip")])


PACK_SH = r'''
set -euo pipefail
export LC_ALL=C
list_package_files() { ( export LC_COLLATE=C; shopt -s dotglob globstar; printf '%s\0' **/*; ); }
cd "$1"
list_package_files | bsdtar -cnf - --format=mtree \
  --options='!all,use-set,type,uid,gid,mode,time,size,md5,sha256,link' \
  --null --files-from - --exclude .MTREE | gzip -c -f -n >.MTREE
touch -d "@$3" .MTREE
list_package_files | bsdtar --no-fflags --no-read-sparse --uid 0 --gid 0 --uname root --gname root \
  -cnf - --null --files-from - | zstd -c -q -T1 -"$4" >"$2.part"
mv "$2.part" "$2"
'''


def build_one(p, stage, outdir):
    root = os.path.join(stage, p.name)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    files, nbytes = populate(p, root)
    size = dirsize(root)
    with open(os.path.join(root, ".PKGINFO"), "w") as f:
        f.write(pkginfo(p, size))
    with open(os.path.join(root, ".BUILDINFO"), "w") as f:
        f.write(buildinfo(p))
    for dp, dn, fn in os.walk(root):
        for x in dn + fn:
            os.utime(os.path.join(dp, x), (SDE, SDE), follow_symlinks=False)
    os.utime(root, (SDE, SDE))
    dest = os.path.join(outdir, "repo", p.repo, "os", ARCH, p.filename)
    subprocess.run(["bash", "-c", PACK_SH, "pack", root, dest, str(SDE), str(LEVEL)], check=True)
    shutil.rmtree(root)
    return p.name, files, size, os.path.getsize(dest)


def gpg(home, *args, stdin=None):
    return subprocess.run(["gpg", "--batch", "--quiet", *args], env=dict(os.environ, GNUPGHOME=home),
                          input=stdin, capture_output=True, check=True).stdout


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: mkbenchrepo.py OUTDIR")
    for t in ["bsdtar", "zstd", "gpg", "gpgconf", "repo-add", "gzip", "bash"]:
        if not shutil.which(t):
            sys.exit(f"mkbenchrepo.py: missing tool: {t}")
    os.umask(0o022)
    out = os.path.abspath(sys.argv[1])
    shutil.rmtree(out, ignore_errors=True)
    for d in ["gnupg", "keyring", "pacman-gpg", "stage", "repo/core/os/" + ARCH, "repo/extra/os/" + ARCH]:
        os.makedirs(os.path.join(out, d))
    os.chmod(os.path.join(out, "gnupg"), 0o700)
    os.chmod(os.path.join(out, "pacman-gpg"), 0o700)
    gh, ph = os.path.join(out, "gnupg"), os.path.join(out, "pacman-gpg")
    try:
        gpg(gh, "--passphrase", "", "--quick-gen-key", UID_NAME, "ed25519", "sign", "never")
        fpr = [l.split(":")[9] for l in gpg(gh, "--with-colons", "--list-secret-keys").decode().splitlines()
               if l.startswith("fpr:")][0]
        pub = gpg(gh, "--export", fpr)
        with open(os.path.join(out, "keyring/bench.gpg"), "wb") as f:
            f.write(pub)
        with open(os.path.join(out, "keyring/bench-trusted"), "w") as f:
            f.write(f"{fpr}:4:\n")
        open(os.path.join(out, "keyring/bench-revoked"), "w").close()
        with open(os.path.join(out, "FINGERPRINT"), "w") as f:
            f.write(fpr + "\n")
        # pacman's gpgdir: the key with ultimate ownertrust (what pacman-key --populate achieves)
        gpg(ph, "--import", stdin=pub)
        gpg(ph, "--import-ownertrust", stdin=f"{fpr}:6:\n".encode())
        subprocess.run(["gpg", "--batch", "--quiet", "--check-trustdb"], env=dict(os.environ, GNUPGHOME=ph),
                       capture_output=True)
        with open(os.path.join(ph, "gpg.conf"), "w") as f:
            f.write("no-greeting\nno-permission-warning\nlock-never\n")
        open(os.path.join(ph, "pubring.gpg"), "a").close()

        pkgs, targets = plan()
        stage = os.path.join(out, "stage")
        results = {}
        # biggest first, so the two workers finish together
        order = sorted(pkgs, key=lambda p: -p.nbytes)
        with concurrent.futures.ProcessPoolExecutor(JOBS) as ex:
            futs = [ex.submit(build_one, p, stage, out) for p in order]
            for fu in concurrent.futures.as_completed(futs):
                name, files, size, csize = fu.result()
                results[name] = (files, size, csize)
        os.rmdir(stage)
        # signatures (gpg-agent serialises signing anyway; ~10 ms each)
        for p in pkgs:
            f = os.path.join(out, "repo", p.repo, "os", ARCH, p.filename)
            gpg(gh, "--yes", "--detach-sign", "--no-armor", "-o", f + ".sig", f)
        procs = []
        for r in ["core", "extra"]:
            d = os.path.join(out, "repo", r, "os", ARCH)
            files = sorted(os.path.join(d, p.filename) for p in pkgs if p.repo == r)
            procs.append(subprocess.Popen(["repo-add", "-q", "--sign", "--key", fpr, f"{d}/{r}.db.tar.gz", *files],
                                          env=dict(os.environ, GNUPGHOME=gh, LC_ALL="C")))
        for pr in procs:
            if pr.wait() != 0:
                sys.exit("mkbenchrepo.py: repo-add failed")
    finally:
        for h in (gh, ph):
            subprocess.run(["gpgconf", "--homedir", h, "--kill", "all"], capture_output=True)

    with open(os.path.join(out, "targets.txt"), "w") as f:
        f.write("\n".join(targets) + "\n")
    inst = [p for p in pkgs if p.installed]
    with open(os.path.join(out, "packages.txt"), "w") as f:
        for p in pkgs:
            fl, sz, cs = results[p.name]
            f.write(f"{p.repo} {p.name} {p.ver} {'yes' if p.installed else 'no'} {fl} {sz} {cs}\n")
    tf = sum(results[p.name][0] for p in inst)
    ts = sum(results[p.name][1] for p in inst)
    tc = sum(results[p.name][2] for p in inst)
    sizes = sorted(results[p.name][1] for p in inst if p.kind != "meta")
    summary = (f"packages in repo: {len(pkgs)} (core {sum(p.repo == 'core' for p in pkgs)}, "
               f"extra {sum(p.repo == 'extra' for p in pkgs)}); installed set: {len(inst)} packages "
               f"from {len(targets)} targets\n"
               f"installed set: {tf} regular files, {ts / 1048576:.1f} MiB installed, "
               f"{tc / 1048576:.1f} MiB compressed (zstd -{LEVEL})\n"
               f"package sizes: smallest {sizes[0] / 1024:.0f} KiB, median {sizes[len(sizes) // 2] / 1024:.0f} KiB, "
               f"largest {sizes[-1] / 1048576:.1f} MiB\n")
    with open(os.path.join(out, "stats.txt"), "w") as f:
        f.write(summary)
    sys.stdout.write(summary)


if __name__ == "__main__":
    main()
