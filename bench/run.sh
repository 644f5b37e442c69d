#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/run.sh (make bench): mkmachine against the real pacman, the same signed repository and
# the same package set, each into a fresh root with a cold package cache; medians and ratios.
# Then the Debian half, bench/debian.sh: mkmachine against mmdebstrap from the real mirror.
# See bench/README.md. Exits non-zero when a build or the equivalence check fails, never on the
# ratio.
#
# Environment:
#   BENCH_DISTROS="arch debian"  which halves run (bench/debian.sh lists its own settings)
#   BENCH_ROUNDS=3     counted rounds (after one uncounted warm-up of each tool)
#   BENCH_HTTP=1       also measure both tools over the loopback HTTP server (0: file:// only)
#   BENCH_PROFILE=1    afterwards profile one mkmachine run (phase times from its -v log,
#                      strace -c -f if strace is installed) into build/bench/profile/
#   BENCH_SCALE, BENCH_ZSTD_LEVEL   passed to bench/mkbenchrepo.py (regenerates the repo)
#   BENCH_KEEP=1       keep build/bench/work (every run's tree, cache and log) afterwards
#   BENCH_DROP_CACHES=0  do not drop the page cache before each run (see fresh())
#   MKMACHINE          the binary (default ./mkmachine)
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MKMACHINE=${MKMACHINE:-$TOP/mkmachine}
ROUNDS=${BENCH_ROUNDS:-3}
USE_HTTP=${BENCH_HTTP:-1}
PROFILE=${BENCH_PROFILE:-1}
B=$TOP/build/bench
FX=$B/fx
W=$B/work
P=$B/profile

die() { echo "bench: $*" >&2; exit 1; }
failed() {  # TOOL TRANSPORT LOG: a build failed (the work dir goes at exit; its log is kept)
  tail -20 "$3"
  cp "$3" "$B/failed-$1-$2.log"
  die "$1 failed over $2 (exit status $(echo "$RES" | cut -d' ' -f5); log: $B/failed-$1-$2.log)"
}
[ "$(id -u)" -eq 0 ] || die "needs root (both tools create root-owned trees)"
read -r -a DISTROS <<<"${BENCH_DISTROS:-arch debian}"
RUN_ARCH=0 RUN_DEBIAN=0
for d in "${DISTROS[@]}"; do
  case $d in arch) RUN_ARCH=1 ;; debian) RUN_DEBIAN=1 ;; *) die "BENCH_DISTROS: unknown '$d' (arch, debian)" ;; esac
done
[ "$RUN_ARCH" = 1 ] || { [ "$RUN_DEBIAN" = 1 ] && exec "$TOP/bench/debian.sh"; die "BENCH_DISTROS names nothing to run"; }
for t in pacman python3 bsdtar zstd gpg repo-add; do
  command -v "$t" >/dev/null || die "missing tool: $t (make deps)"
done
[ -x "$MKMACHINE" ] || die "no mkmachine binary at $MKMACHINE (make)"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive number"

HTTPD_PID=
cleanup() {
  if [ -n "$HTTPD_PID" ]; then kill "$HTTPD_PID" 2>/dev/null || true; wait "$HTTPD_PID" 2>/dev/null || true; fi
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT

# ------------------------------------------------------------------ the repository (cached)
stamp=$({ cat "$TOP/bench/mkbenchrepo.py"; echo "scale=${BENCH_SCALE:-1.0} level=${BENCH_ZSTD_LEVEL:-3}"; } |
  sha256sum | cut -c1-16)
if [ "$(cat "$FX/STAMP" 2>/dev/null)" != "$stamp" ]; then
  echo ":: generating the benchmark repository in $FX (cached; takes about a minute)"
  rm -rf "$FX.new"
  mkdir -p "$B"
  python3 "$TOP/bench/mkbenchrepo.py" "$FX.new" >"$B/mkbenchrepo.log" 2>&1 ||
    { tail -20 "$B/mkbenchrepo.log"; die "generating the repository failed"; }
  echo "$stamp" >"$FX.new/STAMP"
  rm -rf "$FX"
  mv "$FX.new" "$FX"
fi
sed 's/^/   /' "$FX/stats.txt"
rm -f "$B"/failed-*.log
mapfile -t TARGETS <"$FX/targets.txt"
awk '$4 == "yes" {print $2, $3}' "$FX/packages.txt" | sort >"$B/expected-set.txt"

# Every run gets its own directory and nothing is deleted until the end: ext4 skips inodes freed
# in the last minute when it allocates new ones, and the search for a free one (find_inode_bit ->
# recently_deleted) then costs more than the whole extraction (seen with perf: 57% of a run).
if [ -e "$W" ]; then
  rm -rf "$W"
  echo "   (removed a previous run's work dir; waiting 60 s so ext4 stops skipping its freed inodes)"
  sync
  sleep 60
fi
mkdir -p "$W"
free_mib=$(df -Pm "$W" | awk 'NR == 2 {print $4}')
nt=1
[ "$USE_HTTP" = 1 ] && nt=2
need_mib=$(( (ROUNDS * nt * 2 + 2 * nt + 3) * 350 ))
[ "$free_mib" -ge "$need_mib" ] || die "needs about $need_mib MiB free in $W, has $free_mib"
: >"$W/results.tsv"
RUN=0

if [ "$USE_HTTP" = 1 ]; then
  python3 "$TOP/tests/tools/httpd.py" --root "$FX/repo" --port-file "$W/httpd.port" &
  HTTPD_PID=$!
  for _ in $(seq 100); do [ -s "$W/httpd.port" ] && break; sleep 0.05; done
  [ -s "$W/httpd.port" ] || die "the loopback HTTP server did not start"
  TRANSPORTS=(file http)
else
  TRANSPORTS=(file)
fi
base_url() {  # TRANSPORT
  case $1 in
    file) echo "file://$FX/repo" ;;
    http) echo "http://127.0.0.1:$(cat "$W/httpd.port")" ;;
  esac
}

# measure LOG CMD...: runs CMD (output to LOG), prints "WALL USER SYS MAXRSS_KIB RC OTHER".
# MAXRSS is the peak resident set of the largest single process in CMD's tree (getrusage's
# ru_maxrss of the waited-for children), as GNU time's %M reports it. OTHER is the CPU time the
# rest of the machine used meanwhile (busy time in /proc/stat minus CMD's): noise, reported.
MEASURE_PY='import os, resource, subprocess, sys, time
def busy():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")
with open(sys.argv[1], "wb") as log:
    b, t = busy(), time.monotonic()
    rc = subprocess.call(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wall, b = time.monotonic() - t, busy() - b
r = resource.getrusage(resource.RUSAGE_CHILDREN)
other = max(0.0, b - r.ru_utime - r.ru_stime)
print(f"{wall:.3f} {r.ru_utime:.3f} {r.ru_stime:.3f} {r.ru_maxrss} {rc} {other:.2f}")'
measure() { python3 -c "$MEASURE_PY" "$@"; }
timed_sync() { python3 -c 'import os, time; t = time.monotonic(); os.sync(); print(f"{time.monotonic() - t:.3f}")'; }

# Each run starts in a new directory with everything written back (sync), so neither tool pays
# for the other's dirty pages (mkmachine calls syncfs). Then (BENCH_DROP_CACHES=1, the default)
# the page cache is dropped and the inputs are read back in: on this VM, writing into a page
# cache that already holds gigabytes (the earlier runs' trees) costs the kernel about twice as
# much (guest memory the host has to back again), so without this a run's time depended on how
# many runs came before it. Both tools get the same start: inputs, binaries and libraries warm,
# nothing else cached. Sets D.
DROP_CACHES=${BENCH_DROP_CACHES:-1}
if [ "$DROP_CACHES" = 1 ] && ! { : >/proc/sys/vm/drop_caches; } 2>/dev/null; then
  echo "   (cannot drop the page cache here: runs start with whatever is cached)"
  DROP_CACHES=0
fi
warm_inputs() {
  cat "$FX"/repo/*/os/*/* "$FX"/keyring/* "$MKMACHINE" >/dev/null 2>&1 || true
  cat "$FX"/pacman-gpg/* >/dev/null 2>&1 || true
  pacman --version >/dev/null 2>&1 || true
  gpg --version >/dev/null 2>&1 || true
  vercmp 1 2 >/dev/null 2>&1 || true
  "$MKMACHINE" --version >/dev/null 2>&1 || true
}
fresh() {
  RUN=$((RUN + 1)); D=$W/run$RUN-$1; mkdir -p "$D"; sync
  if [ "$DROP_CACHES" = 1 ]; then
    echo 3 >/proc/sys/vm/drop_caches
    warm_inputs
  fi
}

write_recipe() {  # DIR TRANSPORT (the keyring beside the recipe, where Keyring= must be)
  cp -a "$FX/keyring" "$1/keyring"
  cat >"$1/bench.recipe" <<R
[Machine]
Name=bench

[Bootstrap]
Distribution=arch
Mirror=$(base_url "$2")/\$repo/os/\$arch
Repositories=core extra
Packages=${TARGETS[*]}
Keyring=keyring
R
}

# run_mkm TRANSPORT: builds the set into a fresh --host-root with a fresh --cache-dir; sets RES
run_mkm() {
  local t=$1 d
  fresh mkmachine-"$t"
  d=$D
  write_recipe "$d" "$t"
  RES=$(measure "$d/log" "$MKMACHINE" --host-root "$d/host" --cache-dir "$d/cache" "$d/bench.recipe")
  RES="$RES $(timed_sync)"
  TREE=$d/host/var/lib/machines/bench
  [ "$(echo "$RES" | cut -d' ' -f5)" = 0 ] || failed mkmachine "$t" "$d/log"
  check_set "mkmachine/$t" "$TREE"
}

# pacman_setup DIR TRANSPORT: a fresh root, cache dir, copy of the gpgdir and a pacman.conf;
# pacman_cmd DIR: the command line, as pacstrap would run it (without its mounts); --noscriptlet
# (the set has no scriptlets or hooks anyway)
pacman_setup() {
  local d=$1
  mkdir -p "$d/root/var/lib/pacman" "$d/root/etc/pacman.d/hooks" "$d/cache"
  cp -a "$FX/pacman-gpg" "$d/gpg"
  rm -f "$d"/gpg/S.* "$d"/gpg/*.lock
  {
    printf '[options]\nArchitecture = x86_64\nSigLevel = Required DatabaseOptional\n'
    printf 'LocalFileSigLevel = Optional\nCheckSpace\nParallelDownloads = 5\n'
    for r in core extra; do printf '\n[%s]\nServer = %s/$repo/os/$arch\n' "$r" "$(base_url "$2")"; done
  } >"$d/pacman.conf"
}
pacman_cmd() {
  local d=$1
  PACMAN_CMD=(pacman --root "$d/root" --dbpath "$d/root/var/lib/pacman" --cachedir "$d/cache" --gpgdir "$d/gpg"
    --hookdir "$d/root/etc/pacman.d/hooks" --logfile "$d/root/var/log/pacman.log" --config "$d/pacman.conf"
    --noprogressbar --color never -Sy --noconfirm --noscriptlet "${TARGETS[@]}")
}

# run_pac TRANSPORT: the real pacman into a fresh root with a fresh cache dir; sets RES
run_pac() {
  local t=$1 d
  fresh pacman-"$t"
  d=$D
  pacman_setup "$d" "$t"
  pacman_cmd "$d"
  RES=$(measure "$d/log" "${PACMAN_CMD[@]}")
  RES="$RES $(timed_sync)"
  gpgconf --homedir "$d/gpg" --kill all >/dev/null 2>&1 || true
  TREE=$d/root
  [ "$(echo "$RES" | cut -d' ' -f5)" = 0 ] || failed pacman "$t" "$d/log"
  check_set "pacman/$t" "$TREE"
}

pacq() { pacman --root "$1" --dbpath "$1/var/lib/pacman" "${@:2}"; }
# check_set WHO TREE: the tree holds exactly the expected packages (so every run did the same work)
check_set() {
  pacq "$2" -Q | sort >"$W/set.txt"
  cmp -s "$W/set.txt" "$B/expected-set.txt" ||
    { diff "$B/expected-set.txt" "$W/set.txt" | head || true; die "$1 installed a different package set"; }
}

# ------------------------------------------------------------------ warm-up + equivalence
echo ":: warm-up (not counted) and equivalence check"
run_pac file
PAC_TREE=$TREE
run_mkm file
if ! pacq "$TREE" -Qkk >"$W/qkk.log" 2>&1 || grep -v ' 0 altered files' "$W/qkk.log" | grep -q .; then
  grep -v ' 0 altered files' "$W/qkk.log" | head -20
  die "pacman -Qkk is not clean on mkmachine's tree"
fi
echo "   pacman -Qkk on mkmachine's tree: clean ($(wc -l <"$W/qkk.log") packages)"
echo "   both installed the same $(wc -l <"$B/expected-set.txt") packages (name and version)"
# The same exceptions as tests/integration/arch-build.sh: pacman's log, sync dbs, cache and hook
# dir, mkmachine's mirrorlist, and the local db's desc files (%INSTALLDATE%).
EXC=(--exclude '^var/log/pacman.log$' --exclude '^var/lib/pacman/sync' --exclude '^etc/pacman.d/hooks$'
     --exclude '^etc/pacman.d/mirrorlist$' --exclude '^proc$' --exclude '^var/cache/pacman')
python3 "$TOP/tests/tools/treelist.py" "${EXC[@]}" "$PAC_TREE" | grep -v '/desc f ' >"$W/tree-pacman.txt"
python3 "$TOP/tests/tools/treelist.py" "${EXC[@]}" "$TREE" | grep -v '/desc f ' >"$W/tree-mkmachine.txt"
if ! diff -u "$W/tree-pacman.txt" "$W/tree-mkmachine.txt" >"$W/tree.diff"; then
  head -30 "$W/tree.diff"
  die "mkmachine's tree differs from pacman's (full diff: $W/tree.diff)"
fi
echo "   the trees are equal path by path ($(wc -l <"$W/tree-pacman.txt") entries: type, mode, owner, size, content, links)"
if [ "$USE_HTTP" = 1 ]; then run_pac http; run_mkm http; fi

# ------------------------------------------------------------------ counted rounds
for ((i = 1; i <= ROUNDS; i++)); do
  for t in "${TRANSPORTS[@]}"; do
    if ((i % 2)); then order=(mkm pac); else order=(pac mkm); fi
    for tool in "${order[@]}"; do
      "run_$tool" "$t"
      name=$([ "$tool" = mkm ] && echo mkmachine || echo pacman)
      echo "$name $t $i $RES" >>"$W/results.tsv"
      read -r wall user sys rss _ other sy <<<"$RES"
      printf '   round %d %-5s %-10s %6.2f s wall %6.2f s cpu %6d KiB peak RSS  (sync after %.2f s; other CPU %.1f s)\n' \
        "$i" "$t" "$name" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" "$rss" "$sy" "$other"
    done
  done
done

# ------------------------------------------------------------------ report
cp "$W/results.tsv" "$B/results.tsv"
python3 - "$B/results.tsv" "$B" "$(cat "$FX/stats.txt")" "$ROUNDS" <<'PY'
import json, statistics, sys, datetime, platform, os
tsv, outdir, stats, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = [l.split() for l in open(tsv) if l.strip()]
data = {}
for tool, tr, rnd, wall, user, sys_, rss, rc, other, sync in rows:
    d = data.setdefault(tr, {}).setdefault(tool, {"wall": [], "cpu": [], "rss": [], "sync": [], "other": []})
    d["other"].append(float(other))
    d["wall"].append(float(wall)); d["cpu"].append(float(user) + float(sys_))
    d["rss"].append(int(rss)); d["sync"].append(float(sync))
med = statistics.median
out = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
       "machine": f"{platform.node()}, {os.cpu_count()} CPUs, {platform.release()}",
       "repository": stats.strip().splitlines(), "rounds": rounds,
       "target": "mkmachine at most half of pacman's time (wall ratio <= 0.50)", "transports": {}}
lines = [f"mkmachine vs pacman -- {out['date']} -- {out['machine']}", *out["repository"],
         f"{rounds} rounds per tool and transport, medians; cold package cache, warm page cache", "",
         f"{'transport':9} {'tool':10} {'wall s':>8} {'(min-max)':>13} {'cpu s':>7} {'peak RSS':>10} "
         f"{'sync after':>10} {'other cpu':>9}",
         "-" * 82]
noisy = False
for tr in data:
    m, p = data[tr]["mkmachine"], data[tr]["pacman"]
    res = {}
    for tool, d in (("mkmachine", m), ("pacman", p)):
        res[tool] = {k: med(v) for k, v in d.items()} | {"runs": d}
        spread = "(%.2f-%.2f)" % (min(d["wall"]), max(d["wall"]))
        lines.append(f"{tr:9} {tool:10} {med(d['wall']):8.2f} {spread:>13} "
                     f"{med(d['cpu']):7.2f} {med(d['rss']) / 1024:6.1f} MiB {med(d['sync']):9.2f}s {med(d['other']):8.1f}s")
        noisy |= med(d["other"]) > 0.1 * med(d["wall"])
    ratio = {k: med(m[k]) / med(p[k]) for k in ("wall", "cpu", "rss")}
    res["ratio"] = ratio
    res["target_met"] = ratio["wall"] <= 0.5
    out["transports"][tr] = res
    lines.append(f"{tr:9} {'ratio':10} {ratio['wall']:8.2f} {'':13} {ratio['cpu']:7.2f} {ratio['rss']:10.2f}"
                 f"   (mkmachine / pacman)")
    lines.append("")
lines.append("cpu: user+sys of the tool and its children; peak RSS: largest single process (ru_maxrss);")
lines.append("sync after: a sync(2) right after the run (pacman leaves its writes dirty, mkmachine syncfs()s);")
lines.append("other cpu: CPU time the rest of the machine used during the run (noise)")
if noisy:
    lines.append("WARNING: other processes used more than 10% of a run's time: the numbers are noisy")
out["noisy"] = noisy
lines.append("")
lines.append(f"target: {out['target']}")
for tr, res in out["transports"].items():
    lines.append(f"  {tr}: ratio {res['ratio']['wall']:.2f} -> {'MET' if res['target_met'] else 'NOT MET'}")
text = "\n".join(lines) + "\n"
sys.stdout.write("\n" + text)
open(os.path.join(outdir, "results.txt"), "w").write(text)
json.dump(out, open(os.path.join(outdir, "results.json"), "w"), indent=2)
print(f"\nwritten: {outdir}/results.txt, {outdir}/results.json")
PY

# ------------------------------------------------------------------ profile
# One more run of each tool over file:// with every output line time-stamped (mkmachine -v), the
# time between phase lines summed up, and a syscall profile of mkmachine (strace -c -w -f: wall
# time per syscall, all processes). Not counted in the results above.
stamp_lines() {
  python3 -u -c '
import sys, time
t0 = time.monotonic()
for l in sys.stdin:
    print(f"{time.monotonic() - t0:8.3f} {l}", end="", flush=True)'
}
# phases REGEX FILE: the time from each line matching REGEX (a phase start) to the next one
# ("installing NAME..." lines count as one phase)
phases() {
  sed -e 's/^\( *[0-9.]* \)installing [^ ]*\.\.\.$/\1installing packages.../' -e 's/ ([0-9.]* s)$//' "$2" |
    awk -v re="$1" '{ t = $1; line = $0; sub(/^ *[0-9.]+ /, "", line) }
      line ~ re && line != ph { if (ph != "") printf "%8.3f s  %s\n", t - t0, ph; t0 = t; ph = line }
      END { if (ph != "") printf "%8.3f s  %s\n", t - t0, ph; printf "%8.3f s  total (to the last output line)\n", t }'
}
if [ "$PROFILE" = 1 ]; then
  echo
  echo ":: profile (one more run of each, file://, not counted): $P"
  rm -rf "$P"
  mkdir -p "$P"
  fresh profile-mkmachine
  d=$D
  write_recipe "$d" file
  "$MKMACHINE" -v --host-root "$d/host" --cache-dir "$d/cache" "$d/bench.recipe" 2>&1 | stamp_lines >"$P/mkmachine-v.log" ||
    die "the profiled mkmachine run failed"
  echo "   mkmachine phases (from its -v output; the next phase's line ends one):"
  phases '^:: ' "$P/mkmachine-v.log" | tee "$P/mkmachine-phases.txt" | sed 's/^/   /'

  fresh profile-pacman
  d=$D
  pacman_setup "$d" file
  pacman_cmd "$d"
  # stdbuf: pacman's stdout is a pipe here, and its lines must come out when they are printed
  stdbuf -oL -eL "${PACMAN_CMD[@]}" 2>&1 | stamp_lines >"$P/pacman.log" ||
    die "the profiled pacman run failed"
  gpgconf --homedir "$d/gpg" --kill all >/dev/null 2>&1 || true
  echo "   pacman phases (from its output):"
  phases '^(:: (Synchronizing|Retrieving|Processing)|checking |loading |installing )' "$P/pacman.log" |
    tee "$P/pacman-phases.txt" | sed 's/^/   /'

  if command -v strace >/dev/null; then
    fresh profile-strace
    d=$D
    write_recipe "$d" file
    strace -f -c -w -o "$P/mkmachine-strace.txt" "$MKMACHINE" -q --host-root "$d/host" --cache-dir "$d/cache" \
      "$d/bench.recipe" >/dev/null 2>&1 || die "the strace'd mkmachine run failed"
    echo "   mkmachine syscalls, wall time summed over all its processes (strace -c -w -f; top 12):"
    sed -n '3,14p' "$P/mkmachine-strace.txt" | sed 's/^/   /'
  fi
fi

# ------------------------------------------------------------------ the Debian half
if [ "$RUN_DEBIAN" = 1 ]; then
  echo
  "$TOP/bench/debian.sh"
fi
