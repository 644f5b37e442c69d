#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fast second oracle for the Debian resolver: mmdebstrap's apt steps, simulated.

mmdebstrap takes minutes per tree here; its package set is decided by apt alone, in steps this
script replays with `apt-get -s` on the host's apt (the same apt mmdebstrap uses) against a
throwaway root, in seconds:

  1. the merged-usr hook's dummy usr-is-merged (version 1) in an otherwise empty dpkg status;
  2. `apt-get install '?narrow(bookworm, ?architecture(ARCH), ?essential)'` (variant apt:
     `apt-get dist-upgrade` without pkgCacheGen::ForceEssential), what it would install is then
     written to the status as installed;
  3. the hook's `apt-get install usr-is-merged`;
  4. `apt-get install INCLUDES... '?narrow(..., the variant's priorities, not essential)'`.
(extract and custom: one `apt-get install INCLUDES`, then custom's step 3.)

Same options as mmdebstrap 1.3.5 passes (Install-Recommends false, ForceEssential ",", one
architecture). It prints "name version" lines, sorted. debian-resolve-oracle.sh uses it for the
extra cases of DEBRESOLVE_EXTRA=1; its answers agreed with real mmdebstrap runs on the cases
both ran.

usage: debresolve-aptsim.py ARCHIVE SUITE ARCH VARIANT [INCLUDE...]
  ARCHIVE holds dists/SUITE/InRelease and dists/SUITE/main/binary-ARCH/Packages{,.xz}, as
  downloaded from a mirror (signed by the Debian archive keyring).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
PRIORITIES = {
    "minbase": "?and(?priority(required),?not(?essential))",
    "required": "?and(?priority(required),?not(?essential))",
    "buildd": "?and(?priority(required),?not(?essential))",
    "important": "?and(?or(?priority(required),?priority(important)),?not(?essential))",
    "debootstrap": "?and(?or(?priority(required),?priority(important)),?not(?essential))",
    "standard": "?and(?or(~prequired,~pimportant,~pstandard),?not(?essential))",
}
DUMMY = """Package: usr-is-merged
Status: install ok installed
Priority: optional
Section: oldlibs
Maintainer: mkmachine tests <root@localhost>
Architecture: all
Multi-Arch: foreign
Source: mmdebstrap-dummy-usr-is-merged
Version: 1
Description: dummy package as mmdebstrap's merged-usr setup hook makes it

"""


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    archive, suite, arch, variant = sys.argv[1:5]
    includes = sys.argv[5:]
    root = tempfile.mkdtemp(prefix="debresolve-aptsim.")
    try:
        run(root, os.path.abspath(archive), suite, arch, variant, includes)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root, archive, suite, arch, variant, includes):
    for d in ("etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/sources.list.d",
              "var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/lib/dpkg", "var/log/apt"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    with open(f"{root}/etc/apt/sources.list", "w") as f:
        f.write(f"deb [signed-by={KEYRING}] file:{archive} {suite} main\n")
    conf = f"{root}/apt.conf"
    with open(conf, "w") as f:
        f.write(f'Apt::Architecture "{arch}";\nApt::Architectures "{arch}";\nDir "{root}";\n'
                f'Dir::State::Status "{root}/var/lib/dpkg/status";\n'
                + ('pkgCacheGen::ForceEssential ",";\n' if variant != "apt" else "")
                + 'Apt::Install-Recommends false;\nAcquire::Languages "none";\n'
                'Acquire::Check-Valid-Until "false";\nAPT::Sandbox::User "root";\n')
    env = dict(os.environ, APT_CONFIG=conf, LC_ALL="C.UTF-8")
    with open(f"{root}/var/lib/dpkg/status", "w") as f:
        f.write(DUMMY)
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, stdout=subprocess.DEVNULL)

    stanzas = {}
    with open(f"{archive}/dists/{suite}/main/binary-{arch}/Packages") as f:
        for para in f.read().split("\n\n"):
            m = re.search(r"^Package: (\S+)", para, re.M)
            v = re.search(r"^Version: (\S+)", para, re.M)
            if m and v:
                stanzas[(m.group(1), v.group(1))] = para.strip("\n")

    installed = {}

    def sim(args):
        out = subprocess.run(["apt-get", "-s", "-y"] + args, env=env, check=True,
                             capture_output=True, text=True).stdout
        return [(m.group(1).split(":")[0], m.group(2))
                for m in (re.match(r"Inst (\S+) (?:\[\S+\] )?\((\S+) ", l) for l in out.splitlines()) if m]

    def install(pkgs):
        installed.update(pkgs)
        with open(f"{root}/var/lib/dpkg/status", "w") as f:
            for n, v in sorted(installed.items()):
                p = re.sub(r"^(Package: .*)$", r"\1\nStatus: install ok installed", stanzas[(n, v)], count=1, flags=re.M)
                f.write(p + "\n\n")

    narrow = f"?narrow(?or(?archive(^{suite}$),?codename(^{suite}$)),?architecture({arch}),"
    if variant in ("extract", "custom"):
        # one `apt-get install` (download) of the includes, installed by dpkg; then custom runs
        # the essential hook
        if includes:
            install(sim(["install"] + includes))
        if variant == "custom":
            install(sim(["install", "usr-is-merged"]))
    else:
        install(sim(["dist-upgrade"] if variant == "apt" else ["install", narrow + "?essential)"]))
        install(sim(["install", "usr-is-merged"]))
        wanted = list(includes)
        if variant == "buildd":
            wanted.append("build-essential")
        if variant in PRIORITIES:
            wanted.append(narrow + PRIORITIES[variant] + ")")
        if wanted:
            install(sim(["install"] + wanted))
    for n, v in sorted(installed.items()):
        print(n, v)


if __name__ == "__main__":
    main()
