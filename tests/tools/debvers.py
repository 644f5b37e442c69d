#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Helpers for tests/integration/debian-vercmp-oracle.sh: real Debian versions, and dpkg as the
# oracle. A dpkg process costs 5-20 ms on a busy VM, so dpkg is asked as little as possible:
#
#   debvers.py fetch URL OUT
#       Download a Packages.xz and write to OUT the lines of it the other commands read
#       (Package, Version, Source and the relationship fields). Exit 1 with the reason on failure.
#   debvers.py sample INDEX N SEED
#       Print N distinct versions of the index, one a line: runs of neighbours in (approximate)
#       version order, versions with epochs and with '~', and random ones.
#   debvers.py matrix SAMPLE
#       Print every pair "A B" of the sample with A before B in the file (N(N-1)/2 lines).
#   debvers.py chain SAMPLE ANSWERS
#       Given mkmachine's answers for the matrix of SAMPLE, check that they form a total preorder (rank
#       the versions by the sum of their answers; every answer must then agree with the ranks)
#       and print the versions' neighbours in that order as "A B" pairs. When dpkg agrees with
#       each neighbour pair, dpkg's order of the sample is ours: all N(N-1)/2 pairs agree, by
#       the transitivity of both orders.
#   debvers.py pairs INDEX COUNT SEED
#       Print about COUNT distinct "A B" pairs for direct checks, half random, half within one
#       package (its Version against the versions other packages' relations ask of it, and a
#       binNMU's Version against its Source's), interleaved. Deterministic for an index and SEED.
#   debvers.py oracle PAIRS OURS JOBS BUDGET
#       For each pair and mkmachine's answer (-1/0/1, one a line in OURS), run
#       `dpkg --compare-versions -- A lt|eq|gt B` for exactly the relation we claimed: lt, eq
#       and gt exclude each other, so one call per pair proves the answer. JOBS calls run at
#       once; after BUDGET seconds no new pair is started. Print "checked N" and the
#       disagreements as "A B ours dpkg"; exit 1 if there are any.
import lzma
import random
import re
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

REL_FIELDS = ("depends", "pre-depends", "recommends", "suggests", "enhances", "breaks", "conflicts", "replaces",
              "provides")
# The fetch step keeps only these lines of the index (a third of its 50 MB of text).
KEEP = re.compile(rb"^(?:Package|Version|Source|" + "|".join(f.title() for f in REL_FIELDS).encode() + rb"):.*$",
                  re.M | re.I)
# "name[:arch] (op version)"; the lookbehind keeps the regex from restarting inside every name.
REL = re.compile(r"(?<![a-z0-9+.:-])([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?[ \t]*\([ \t]*(?:<<|<=|>=|>>|=|<|>)"
                 r"[ \t]*([^)\s]+)[ \t]*\)")


def fetch(url, out):
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            data = lzma.decompress(r.read())
    except (OSError, lzma.LZMAError) as e:
        print(f"cannot fetch {url}: {e}")
        return 1
    with open(out, "wb") as f:
        f.write(b"\n".join(KEEP.findall(data)) + b"\n")
    return 0


def read_index(path):
    """All distinct versions, and (package's Version, version asked of that package) pairs."""
    own = {}            # package -> its Version
    versions = set()
    relations = []      # (package named in a relation, version asked of it)
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    # "Package:" opens each paragraph of a Packages index.
    name = None
    for line in text.split("\n"):
        key, _, value = line.partition(":")
        key, value = key.lower(), value.strip()
        if key == "package":
            name = value
        elif name is None:
            continue
        elif key == "version":
            own[name] = value
            versions.add(value)
        elif key == "source":
            m = re.match(r"\S+\s*\(\s*(\S+)\s*\)", value)
            if m:
                versions.add(m.group(1))
                relations.append((name, m.group(1)))
        elif key in REL_FIELDS and "(" in value:
            for target, v in REL.findall(value):
                versions.add(v)
                relations.append((target, v))
    same = sorted({(own[t], v) for t, v in relations if t in own})
    # Whitespace cannot be in a version, but a broken index could carry it: keep the pairs clean.
    versions = sorted(v for v in versions if v and not re.search(r"\s", v))
    same = [(a, b) for a, b in same if not re.search(r"\s", a + b)]
    print(f"{len(versions)} distinct versions, {len(same)} distinct same-package pairs in the index", file=sys.stderr)
    return versions, same


def approx_key(v):
    """Digit runs as numbers: neighbours under this key are mostly close in Debian order too."""
    m = re.match(r"(\d+):(.*)", v)
    epoch, rest = (int(m.group(1)), m.group(2)) if m else (0, v)
    parts = re.split(r"(\d+)", rest)
    return (epoch, [int(x) if i % 2 else x for i, x in enumerate(parts)], v)


def sample(path, n, seed):
    versions, _ = read_index(path)
    rng = random.Random(seed)
    ordered = sorted(versions, key=approx_key)
    picked = {}         # dict keeps insertion order
    runs = n // 10      # half of the sample: runs of 5 neighbours
    for _ in range(runs):
        i = rng.randrange(max(1, len(ordered) - 5))
        for v in ordered[i:i + 5]:
            picked[v] = True
    for marker, share in ((":", n // 8), ("~", n // 8)):
        having = [v for v in versions if marker in v]
        for v in rng.sample(having, min(share, len(having))):
            picked[v] = True
    while len(picked) < min(n, len(versions)):
        picked[rng.choice(versions)] = True
    out = list(picked)[:n]
    rng.shuffle(out)
    print("\n".join(out))


def matrix(sample_path):
    vs = open(sample_path).read().split()
    w = sys.stdout.write
    for i in range(len(vs)):
        a = vs[i]
        w("".join(f"{a} {b}\n" for b in vs[i + 1:]))


def chain(sample_path, answers_path):
    vs = open(sample_path).read().split()
    ans = [int(x) for x in open(answers_path).read().split()]
    n = len(vs)
    if len(ans) != n * (n - 1) // 2:
        print(f"{len(ans)} answers for {n * (n - 1) // 2} pairs", file=sys.stderr)
        return 1
    score = [0] * n
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            score[i] += ans[k]
            score[j] -= ans[k]
            k += 1
    # In a total preorder, versions in a higher class have a strictly higher score and equal
    # versions the same score; so every answer must be the sign of the score difference.
    bad = 0
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            d = score[i] - score[j]
            if ans[k] != (d > 0) - (d < 0):
                if bad < 10:
                    print(f"inconsistent: {vs[i]} {vs[j]} answered {ans[k]}, ranks say {(d > 0) - (d < 0)}",
                          file=sys.stderr)
                bad += 1
            k += 1
    if bad:
        print(f"{bad} answers contradict a total order", file=sys.stderr)
        return 1
    order = sorted(range(n), key=lambda i: score[i])
    for x, y in zip(order, order[1:]):
        print(vs[x], vs[y])
    return 0


def pairs(path, count, seed):
    versions, same = read_index(path)
    rng = random.Random(seed)
    out, seen = [], set()

    def add(a, b):
        if (a, b) not in seen and (b, a) not in seen:
            seen.add((a, b))
            out.append((a, b))

    for _ in range(count * 10):
        if len(out) >= count // 2:
            break
        add(rng.choice(versions), rng.choice(versions))
    for a, b in rng.sample(same, min(len(same), count - len(out))):
        add(a, b)
    # Interleave the groups, so that a run cut short by the time budget still covers both.
    rng.shuffle(out)
    for a, b in out:
        print(a, b)


def dpkg_relate(a, rel, b):
    r = subprocess.run(["dpkg", "--compare-versions", "--", a, rel, b], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode not in (0, 1):
        raise RuntimeError(f"dpkg --compare-versions -- {a} {rel} {b}: exit {r.returncode}: {r.stderr.decode().strip()}")
    return r.returncode == 0


def dpkg_answer(a, b):
    for rel, v in (("lt", -1), ("eq", 0), ("gt", 1)):
        if dpkg_relate(a, rel, b):
            return v
    return None


def oracle(pairs_path, ours_path, jobs, budget):
    ps = [line.split(" ") for line in open(pairs_path).read().splitlines()]
    ours = [int(x) for x in open(ours_path).read().split()]
    if len(ps) != len(ours):
        print(f"{len(ps)} pairs but {len(ours)} answers")
        return 1
    rels = {-1: "lt", 0: "eq", 1: "gt"}
    deadline = time.monotonic() + budget

    def check(i):
        if time.monotonic() > deadline:
            return None
        a, b = ps[i]
        return () if dpkg_relate(a, rels[ours[i]], b) else (a, b, ours[i], dpkg_answer(a, b))

    with ThreadPoolExecutor(jobs) as ex:
        done = [x for x in ex.map(check, range(len(ps))) if x is not None]
    bad = [x for x in done if x]
    print(f"checked {len(done)}")
    for a, b, o, d in bad[:20]:
        print(a, b, o, d)
    return 1 if bad else 0


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "fetch" and len(argv) == 4:
        return fetch(argv[2], argv[3])
    if cmd == "sample" and len(argv) == 5:
        return sample(argv[2], int(argv[3]), int(argv[4]))
    if cmd == "matrix" and len(argv) == 3:
        return matrix(argv[2])
    if cmd == "chain" and len(argv) == 4:
        return chain(argv[2], argv[3])
    if cmd == "pairs" and len(argv) == 5:
        return pairs(argv[2], int(argv[3]), int(argv[4]))
    if cmd == "oracle" and len(argv) == 6:
        return oracle(argv[2], argv[3], int(argv[4]), float(argv[5]))
    print("usage: debvers.py fetch URL OUT | sample INDEX N SEED | matrix SAMPLE | chain SAMPLE ANSWERS |"
          " pairs INDEX COUNT SEED | oracle PAIRS OURS JOBS BUDGET", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
