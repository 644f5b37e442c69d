#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Helpers of bench/debian.sh (see bench/README.md):
#
#   debian.py measure LOG -- CMD...   runs CMD under GNU time, its output (stdout and stderr)
#       time-stamped line by line into LOG; prints one line
#       "WALL USER SYS MAXRSS_KIB RC OTHER LOAD1":
#         WALL    seconds, from start to exit (monotonic clock)
#         USER, SYS  CPU seconds of CMD and all its descendants (GNU time %U %S)
#         MAXRSS  GNU time's %M, the same number as `time -v`'s "Maximum resident set size":
#                 ru_maxrss of the waited-for descendants, i.e. the peak RSS of the largest
#                 single process anywhere in CMD's tree (not a sum over processes)
#         RC      CMD's exit status
#         OTHER   CPU seconds the rest of the machine used meanwhile (/proc/stat busy time minus
#                 CMD's): noise
#         LOAD1   the 1-minute load average when CMD started
#   debian.py stages TOOL LOG WALL    prints the phases of one run as JSON: [[label, seconds], ...]
#       mkmachine: from one ":: STAGE" line to the next (the last one ends at exit); mmdebstrap:
#       the same with its "I: ..." lines
#   debian.py report OUTDIR RUNS.jsonl ROUNDS MIRROR_NOTE   medians, ratios, targets:
#       OUTDIR/results.txt, results.json, results.tsv; exit status 0 (never fails on a ratio)
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time


def busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def measure(log, cmd):
    with open("/proc/loadavg") as f:
        load1 = f.read().split()[0]
    tfile = log + ".time"
    with open(log, "w", encoding="utf-8", errors="replace") as out:
        b0, t0 = busy(), time.monotonic()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%U %S %M", "-o", tfile, *cmd],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        for raw in p.stdout:
            out.write(f"{time.monotonic() - t0:9.3f} {raw.decode('utf-8', 'replace')}")
        rc = p.wait()
        wall, b = time.monotonic() - t0, busy() - b0
    try:
        with open(tfile) as f:   # "Command exited with non-zero status N" may come first
            user, sys_, rss = f.read().split()[-3:]
        user, sys_, rss = float(user), float(sys_), int(rss)
    except (OSError, ValueError):
        sys.exit(f"debian.py: cannot read GNU time's output {tfile} (exit status {rc})")
    other = max(0.0, b - user - sys_)
    print(f"{wall:.3f} {user:.2f} {sys_:.2f} {rss} {rc} {other:.1f} {load1}")


def stages(tool, log, wall):
    pat = re.compile(r"^ *([0-9.]+) (:: |I: )(.*)$")
    marks = []
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = pat.match(line.rstrip("\n"))
            if not m or (tool == "mkmachine") != (m.group(2) == ":: "):
                continue
            label = m.group(3)
            if tool == "mkmachine":
                label = re.sub(r" \([0-9.]+ s\)$", "", label)   # -v adds the elapsed time
            else:
                if label.startswith("success in "):
                    continue
                if label.startswith("running ") and ": " in label:   # hooks: no command lines
                    head, rest = label.split(": ", 1)
                    label = head + (": " + os.path.basename(rest.split()[0]) if "directly" in head else "")
                label = label.rstrip(".")
            marks.append((float(m.group(1)), label))
    out, start = [], 0.0
    first = "(start: recipe, keyring)" if tool == "mkmachine" else "(start)"
    for t, label in marks:
        out.append([first, t - start])
        first, start = label, t
    out.append([first, float(wall) - start])
    # the same label twice (mmdebstrap's "Chrooting" lines are not marks; hooks may repeat): summed
    summed = {}
    for label, s in out:
        summed[label] = summed.get(label, 0.0) + s
    print(json.dumps([[k, round(v, 3)] for k, v in summed.items()]))


def report(outdir, runs_file, rounds, mirror_note):
    runs = [json.loads(l) for l in open(runs_file) if l.strip()]
    med = statistics.median
    cases = []
    for r in runs:
        c = (r["set"], r["mode"])
        if c not in cases:
            cases.append(c)
    with open("/proc/loadavg") as f:
        load_end = f.read().split()[:3]
    out = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": f"{platform.node()}, {os.cpu_count()} CPUs, {platform.release()}",
           "mirror": mirror_note, "rounds": rounds, "load_average_at_end": load_end,
           "targets": ["wall: mkmachine at most half of mmdebstrap's wall time (ratio <= 0.50) in every case",
                       "memory: mkmachine's peak RSS below mmdebstrap's (ratio < 1.00) in every case"],
           "cases": []}
    lines = [f"mkmachine vs mmdebstrap (Debian bookworm) -- {out['date']} -- {out['machine']}",
             f"mirror: {mirror_note}; {rounds} round(s), tools interleaved, medians",
             "",
             f"{'set':9} {'mode':5} {'tool':11} {'wall s':>8} {'(min-max)':>15} {'cpu s':>7} "
             f"{'peak RSS':>10} {'sync after':>10} {'other cpu':>9} {'load':>5}",
             "-" * 96]
    noisy = False
    tsv = ["set\tmode\ttool\tround\twall\tuser\tsys\tmaxrss_kib\trc\tother_cpu\tload1\tsync_after"]
    for r in runs:
        tsv.append("\t".join(str(r[k]) for k in ("set", "mode", "tool", "round", "wall", "user", "sys",
                                                  "rss", "rc", "other", "load1", "sync")))
    for s, m in cases:
        res = {"set": s, "mode": m}
        for tool in ("mkmachine", "mmdebstrap"):
            rr = [r for r in runs if r["set"] == s and r["mode"] == m and r["tool"] == tool]
            if not rr:
                continue
            d = {k: [r[k] for r in rr] for k in ("wall", "rss", "sync", "other", "load1")}
            d["cpu"] = [r["user"] + r["sys"] for r in rr]
            st = {}
            for r in rr:
                for label, sec in r["stages"]:
                    st.setdefault(label, []).append(sec)
            res[tool] = {k: med(v) for k, v in d.items()} | {
                "runs": d, "stages": [[label, med(v)] for label, v in st.items()]}
            spread = "(%.1f-%.1f)" % (min(d["wall"]), max(d["wall"]))
            lines.append(f"{s:9} {m:5} {tool:11} {med(d['wall']):8.1f} {spread:>15} {med(d['cpu']):7.1f} "
                         f"{med(d['rss']) / 1024:6.1f} MiB {med(d['sync']):9.2f}s {med(d['other']):8.1f}s "
                         f"{med(d['load1']):5.1f}")
            noisy |= med(d["other"]) > 0.1 * med(d["wall"])
        if "mkmachine" in res and "mmdebstrap" in res:
            a, b = res["mkmachine"], res["mmdebstrap"]
            ratio = {k: a[k] / b[k] for k in ("wall", "cpu", "rss")}
            res["ratio"] = ratio
            res["wall_target_met"] = ratio["wall"] <= 0.5
            res["rss_target_met"] = ratio["rss"] < 1.0
            lines.append(f"{s:9} {m:5} {'ratio':11} {ratio['wall']:8.2f} {'':15} {ratio['cpu']:7.2f} "
                         f"{ratio['rss']:10.2f}   (mkmachine / mmdebstrap)")
        lines.append("")
        out["cases"].append(res)
    lines += ["cold: empty caches (mkmachine a new --cache-dir and no lock; mmdebstrap nothing cached);",
              "warm: packages already downloaded (mkmachine the cache of an earlier run and --locked;",
              "      mmdebstrap the .debs of an earlier run linked into TARGET/var/cache/apt/archives)",
              "cpu: user+sys of the tool and its children; peak RSS: the largest single process in the",
              "tree (GNU time %M, time -v's 'Maximum resident set size'); sync after: a sync(2) right",
              "after the run; other cpu: CPU time the rest of the machine used meanwhile (noise);",
              "load: the 1-minute load average when the run started"]
    if noisy:
        lines.append("WARNING: other processes used more than 10% of a run's time: the numbers are noisy")
    out["noisy"] = noisy
    lines += ["", "targets:"]
    for res in out["cases"]:
        if "ratio" not in res:
            continue
        r = res["ratio"]
        lines.append(f"  {res['set']:9} {res['mode']:5} wall ratio {r['wall']:.2f} -> "
                     f"{'MET' if res['wall_target_met'] else 'NOT MET':8} peak RSS ratio {r['rss']:.2f} -> "
                     f"{'MET' if res['rss_target_met'] else 'NOT MET'}")
    lines += ["", "where the time goes (median seconds per phase; a phase ends where the next begins):"]
    for res in out["cases"]:
        for tool in ("mkmachine", "mmdebstrap"):
            if tool not in res:
                continue
            lines.append(f"  {res['set']} {res['mode']} {tool}:")
            for label, sec in res[tool]["stages"]:
                lines.append(f"    {sec:7.1f} s  {label}")
    text = "\n".join(lines) + "\n"
    sys.stdout.write("\n" + text)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "results.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(out, f, indent=2)
    with open(os.path.join(outdir, "results.tsv"), "w") as f:
        f.write("\n".join(tsv) + "\n")
    print(f"\nwritten: {outdir}/results.txt, results.json, results.tsv")


def main():
    a = sys.argv[1:]
    if len(a) >= 4 and a[0] == "measure" and a[2] == "--":
        measure(a[1], a[3:])
    elif len(a) == 4 and a[0] == "stages":
        stages(a[1], a[2], a[3])
    elif len(a) == 5 and a[0] == "report":
        report(a[1], a[2], int(a[3]), a[4])
    else:
        sys.exit("usage: debian.py measure LOG -- CMD... | stages TOOL LOG WALL | report OUTDIR RUNS ROUNDS NOTE")


if __name__ == "__main__":
    main()
