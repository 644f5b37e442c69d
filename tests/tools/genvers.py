#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Generate random pacman version pairs, one "A B" pair a line, for the vercmp oracle test.
#
#   genvers.py [COUNT [SEED]]      (defaults: 6000 pairs, seed 20241129)
#
# The versions aim at the corners of libalpm's comparison: epochs (empty, zero-padded), pkgrels
# (present on one side only, dotted), alpha and numeric segments, leading zeros, long digit runs,
# every separator pacman treats alike (. _ + ~ and odd ones), doubled and leading/trailing
# separators (empty segments), extra '-' and ':' that move the epoch/release split, and pairs
# that differ by one small edit so many compare equal or nearly. Never emits whitespace, an
# empty version, or "-h"/"--help" (which the real vercmp would take as an option).
import random
import sys

ALPHA = ["a", "b", "alpha", "beta", "rc", "pre", "pl", "p", "git", "r", "A", "B", "RC", "z", "zz", "svn", "dev"]
SEPS = [".", ".", ".", "_", "+", "~", "..", "._", "~~", "^", "@", "%", "", ""]


def num(rng):
    r = rng.random()
    if r < 0.15:
        return "0" * rng.randint(1, 3) + str(rng.randint(0, 20))
    if r < 0.2:
        return str(rng.randint(10**15, 10**25))
    return str(rng.randint(0, 12))


def segment(rng):
    r = rng.random()
    if r < 0.6:
        return num(rng)
    if r < 0.8:
        return rng.choice(ALPHA)
    return num(rng) + rng.choice(ALPHA) + (num(rng) if rng.random() < 0.5 else "")


def pkgver(rng):
    parts = [segment(rng)]
    for _ in range(rng.randint(0, 4)):
        parts.append(rng.choice(SEPS))
        parts.append(segment(rng))
    s = "".join(parts)
    if rng.random() < 0.05:
        s = rng.choice(SEPS[:5]) + s
    if rng.random() < 0.05:
        s = s + rng.choice(SEPS[:5])
    return s


def version(rng):
    s = pkgver(rng)
    r = rng.random()
    if r < 0.25:
        s = rng.choice(["", "0", "1", "2", "00", "01", "10", "3"]) + ":" + s
    elif r < 0.28:
        s = rng.choice(["a", "1a", "x1"]) + ":" + s  # not an epoch: stays part of the version
    r = rng.random()
    if r < 0.55:
        s += "-" + str(rng.randint(0, 12))
        if rng.random() < 0.15:
            s += "." + str(rng.randint(0, 3))
    elif r < 0.6:
        s += "-" + rng.choice(["", "a", "1-2", "0-0", "2b"])
    return s


def mutate(rng, s):
    ops = [
        lambda s: s,
        lambda s: s + rng.choice(["", ".0", "0", "a", ".a", "-1", "_1", "~rc1", "+1"]),
        lambda s: s.replace(".", rng.choice(["_", "+", "~", ".."]), 1),
        lambda s: s.rsplit("-", 1)[0] if "-" in s else s + "-" + str(rng.randint(1, 3)),
        lambda s: "0:" + s if ":" not in s else s.split(":", 1)[1],
        lambda s: s.replace("1", "01", 1),
        lambda s: s[:-1] if len(s) > 1 else s,
        lambda s: s.upper() if rng.random() < 0.3 else s,
    ]
    for _ in range(rng.randint(1, 2)):
        s = rng.choice(ops)(s)
    return s


def ok(s):
    return s and s not in ("-h", "--help") and not any(c.isspace() for c in s)


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 20241129
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        a = version(rng)
        b = mutate(rng, a) if rng.random() < 0.5 else version(rng)
        if rng.random() < 0.5:
            a, b = b, a
        if ok(a) and ok(b):
            out.append(f"{a} {b}")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
