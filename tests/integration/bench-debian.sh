#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/debian.py, the measuring and reporting half of the Debian benchmark, offline:
#   - measure: wall time, the exit status, and the peak RSS of the largest process anywhere in
#     the tree (a grandchild's counts, a sum over processes does not), output time-stamped;
#   - stages: phase lengths from ":: " lines (mkmachine) and "I: " lines (mmdebstrap), the last
#     one ending at exit, hook command lines shortened;
#   - report: ratios are mkmachine / mmdebstrap, medians over rounds, the wall target is met at
#     0.50 and not above, the memory target only below 1.00; it exits 0 when a target is missed.
source "$(dirname "$0")/../tools/it-lib.sh"
command -v /usr/bin/time >/dev/null || skip "skipped: /usr/bin/time is missing (make deps)"
PY=$TOP/bench/debian.py
alloc() { echo "python3 -c 'b = bytearray($1 << 20); b[::4096] = b\"x\" * len(b[::4096]); print(\"done\")'"; }

# ---- measure ----
out=$(python3 "$PY" measure "$WORK/m1.log" -- sh -c "$(alloc 60); sleep 0.3")
read -r wall user sys rss rc other load <<<"$out"
check "measure prints seven fields ($out)" test -n "$load"
check "the exit status is 0" test "$rc" = 0
check "wall time covers the sleep ($wall s)" awk -v w="$wall" 'BEGIN { exit !(w >= 0.3 && w < 20) }'
check "a grandchild's 60 MiB count in the peak RSS ($rss KiB)" test "$rss" -ge $((60 * 1024))
check "the output is in the log, time-stamped" grep -Eq '^ +[0-9]+\.[0-9]{3} done$' "$WORK/m1.log"
# two children of 40 MiB one after the other: the peak is one of them, not the sum
out=$(python3 "$PY" measure "$WORK/m2.log" -- sh -c "$(alloc 40); $(alloc 40)")
read -r _ _ _ rss2 _ _ _ <<<"$out"
check "two 40 MiB children in turn: peak of one, not the sum ($rss2 KiB)" \
  test "$rss2" -ge $((40 * 1024)) -a "$rss2" -lt $((75 * 1024))
out=$(python3 "$PY" measure "$WORK/m3.log" -- sh -c 'echo failing; exit 3')
read -r _ _ _ _ rc3 _ _ <<<"$out"
check "a failing command's exit status comes through ($rc3)" test "$rc3" = 3

# ---- stages ----
cat >"$WORK/mkm.log" <<'EOF'
    0.500 :: fetching Release files
    0.600 fetched bookworm/InRelease (147.5 KiB)
    1.000 :: fetching package indexes (1.00 s)
    4.000 :: downloading
   10.000 machine 'x' deployed
EOF
got=$(python3 "$PY" stages mkmachine "$WORK/mkm.log" 12)
check "mkmachine stages: start, each phase to the next, the last to exit ($got)" test "$got" = \
  '[["(start: recipe, keyring)", 0.5], ["fetching Release files", 0.5], ["fetching package indexes", 3.0], ["downloading", 8.0]]'
cat >"$WORK/mm.log" <<'EOF'
    2.000 I: running --setup-hook directly: /usr/share/mmdebstrap/hooks/merged-usr/setup00.sh /tmp/x/root
    3.000 I: running --setup-hook in shell: sh -c 'cp -l /a/b/*.deb "$1/var/cache/apt/archives/"' exec /tmp/x/root
    3.500 I: running apt-get update...
    9.000 Get:1 something
   13.500 I: success in 13.4 seconds
EOF
got=$(python3 "$PY" stages mmdebstrap "$WORK/mm.log" 14)
check "mmdebstrap stages: hooks shortened, 'success' is no phase ($got)" test "$got" = \
  '[["(start)", 2.0], ["running --setup-hook directly: setup00.sh", 1.0], ["running --setup-hook in shell", 0.5], ["running apt-get update", 10.5]]'

# ---- report ----
row() {  # TOOL SET MODE ROUND WALL RSS
  printf '{"tool":"%s","set":"%s","mode":"%s","round":%d,"wall":%s,"user":1,"sys":1,"rss":%s,"rc":0,"other":0,"load1":1.0,"sync":0,"stages":[["x",1.0]]}\n' "$@"
}
{
  # cold: mkmachine 10, 12, 50 (median 12); mmdebstrap 24, 30, 20 (median 24): exactly 0.50
  row mkmachine minbase cold 1 10 100; row mmdebstrap minbase cold 1 24 200
  row mmdebstrap minbase cold 2 30 200; row mkmachine minbase cold 2 12 100
  row mkmachine minbase cold 3 50 100; row mmdebstrap minbase cold 3 20 200
  # warm: wall 0.51, memory equal
  row mkmachine minbase warm 1 51 300; row mmdebstrap minbase warm 1 100 300
} >"$WORK/runs.jsonl"
python3 "$PY" report "$WORK/out" "$WORK/runs.jsonl" 3 "a test" >"$WORK/report.txt" 2>&1
check "report exits 0 although a target is missed" test $? -eq 0
check "results.txt, results.json and results.tsv are written" \
  test -s "$WORK/out/results.txt" -a -s "$WORK/out/results.json" -a -s "$WORK/out/results.tsv"
j() { python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($1)" "$WORK/out/results.json"; }
check "cold wall ratio: median over median, mkmachine / mmdebstrap = 0.5" test "$(j 'd["cases"][0]["ratio"]["wall"]')" = 0.5
check "a wall ratio of 0.50 meets the target" test "$(j 'd["cases"][0]["wall_target_met"]')" = True
check "cold RSS ratio 0.5 meets the memory target" test "$(j 'd["cases"][0]["rss_target_met"]')" = True
check "a wall ratio of 0.51 misses it" test "$(j 'd["cases"][1]["wall_target_met"]')" = False
check "equal peak RSS misses the memory target (below, not equal)" test "$(j 'd["cases"][1]["rss_target_met"]')" = False
check "the text shows MET and NOT MET per case" \
  grep -Eq 'minbase +warm +wall ratio 0.51 -> NOT MET +peak RSS ratio 1.00 -> NOT MET' "$WORK/out/results.txt"
check "the tsv has every run and a header" test "$(wc -l <"$WORK/out/results.tsv")" -eq 9
finish
