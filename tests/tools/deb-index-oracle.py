#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An independent reading of Debian Packages and Release files, for
tests/integration/debian-index.sh: prints what tests/tools/deb-index-dump prints, computed with
nothing but Python's standard library (no python3-debian, no apt), so that the two can be
diffed line by line.

  deb-index-oracle.py packages FILE [--sample N --seed S]   all packages, or N picked at random
  deb-index-oracle.py release FILE                          same format as "deb-index-dump release"

It is deliberately simple-minded (split on blank lines, then on the first ':'); it knows nothing
of the C code's structure, only of deb822(5) and deb-control(5)."""
import calendar
import random
import re
import sys

RELFIELDS = ["Pre-Depends", "Depends", "Recommends", "Provides", "Conflicts", "Breaks"]
PRIOS = {"required", "important", "standard", "optional", "extra"}
OPS = {"<<": "<<", "<=": "<=", "=": "=", ">=": ">=", ">>": ">>", "<": "<=", ">": ">="}
ATOM = re.compile(r"""^(?P<name>[a-z0-9][a-z0-9+.-]+)(?::(?P<arch>[a-z0-9-]+))?\s*
                      (?:\(\s*(?P<op><<|<=|>=|>>|<|>|=)\s*(?P<ver>[^\s)]+)\s*\))?\s*
                      (?:\[[^\]]*\])?\s*(?P<prof>(?:<[^>]*>\s*)*)$""", re.X)


def paragraphs(text):
    for block in re.split(r"\n[ \t]*\n", text):
        fields, last = {}, None
        for line in block.split("\n"):
            if not line.strip():
                continue
            if line[0] in " \t":
                fields[last] += "\n" + line
                continue
            name, _, value = line.partition(":")
            last = name.lower()
            fields[last] = value.strip(" \t")
        if fields:
            yield fields


def rel(value):
    groups = []
    for g in value.replace("\n", " ").split(","):
        if not g.strip():
            continue
        alts = []
        for a in g.split("|"):
            m = ATOM.match(a.strip())
            if not m:
                raise SystemExit(f"oracle cannot read atom {a!r}")
            prof = re.findall(r"<([^>]*)>", m["prof"] or "")
            if prof and not any(all(t.startswith("!") for t in p.split()) for p in prof):
                continue
            s = m["name"] + (":" + m["arch"] if m["arch"] else "")
            if m["op"]:
                s += f" ({OPS[m['op']]} {m['ver']})"
            alts.append(s)
        if alts:
            groups.append(" | ".join(alts))
    return ", ".join(groups)


def package_line(f):
    prio = f.get("priority", "")
    prio = prio if prio in PRIOS else "unknown"
    src = f.get("source", "").split(" ")[0].split("(")[0]
    important = "yes" if "yes" in (f.get("important"), f.get("protected")) else "no"
    cols = [f["package"], f["version"], f["architecture"], f["filename"], str(int(f["size"])),
            f["sha256"].lower(), str(int(f.get("installed-size", "0"))), prio, f.get("multi-arch", "no"),
            f.get("essential", "no"), important, src]
    cols += [rel(f.get(r.lower(), "")) for r in RELFIELDS]
    return "\t".join(cols)


def release(text):
    f = next(paragraphs(text))
    out = [f"{k} {f.get(k, '')}" for k in ("origin", "label", "suite", "codename", "version")]
    for k in ("date", "valid-until"):
        v = f.get(k)
        if v is None:
            t = -1
        else:
            parts = v.replace(",", " ").split()
            day, mon, year, hms, zone = parts[-5:]
            assert zone in ("UTC", "GMT", "+0000"), zone
            t = calendar.timegm((int(year), ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
                                             "Oct", "Nov", "Dec"].index(mon) + 1, int(day),
                                 *map(int, hms.split(":"))))
        out.append(f"{k.replace('-', '_')} {t}")
    out.append(f"acquire_by_hash {1 if f.get('acquire-by-hash') == 'yes' else 0}")
    out.append(" ".join(["architectures"] + f.get("architectures", "").split()))
    out.append(" ".join(["components"] + f.get("components", "").split()))
    for line in f["sha256"].split("\n"):
        if line.strip():
            digest, size, path = line.split()
            out.append(f"{digest.lower()} {int(size)} {path}")
    return out


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    text = open(path, encoding="utf-8", errors="surrogateescape").read()
    if cmd == "release":
        print("\n".join(release(text)))
        return
    lines = [package_line(f) for f in paragraphs(text)]
    if "--sample" in sys.argv:
        n = int(sys.argv[sys.argv.index("--sample") + 1])
        seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
        idx = sorted(random.Random(seed).sample(range(len(lines)), min(n, len(lines))))
        lines = [f"{i}\t{lines[i]}" for i in idx]
    sys.stdout.write("".join(line + "\n" for line in lines))


if __name__ == "__main__":
    main()
