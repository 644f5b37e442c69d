#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/debian.sh (the Debian half of make bench): mkmachine against mmdebstrap, both building
# the same bookworm package set from the same mirror (the one this host's apt sources name),
# cold (empty caches) and warm (packages already downloaded), the tools interleaved; medians
# and ratios of wall time and peak RSS. See bench/README.md. Exits non-zero when a build fails
# or the two tools install different package sets, never on a ratio.
#
# Environment:
#   BENCH_ROUNDS=3             counted rounds (after one uncounted preparation run of each tool)
#   BENCH_DEBIAN_SETS="minbase mastodon"   which package sets
#   BENCH_DEBIAN_MODES="cold warm"         which cache states
#   BENCH_KEEP=1               keep build/bench/debian/work (trees, caches, logs) afterwards
#   BENCH_DROP_CACHES=0        do not drop the page cache before each run
#   MKMACHINE                  the binary (default ./mkmachine)
#   MKMACHINE_DEBIAN_MIRROR    the mirror, instead of the host's apt sources (then given to
#                              mkmachine as Mirror=; otherwise it reads the sources itself)
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MKMACHINE=${MKMACHINE:-$TOP/mkmachine}
ROUNDS=${BENCH_ROUNDS:-3}
read -r -a SETS <<<"${BENCH_DEBIAN_SETS:-minbase mastodon}"
read -r -a MODES <<<"${BENCH_DEBIAN_MODES:-cold warm}"
B=$TOP/build/bench/debian
W=$B/work
PY=$TOP/bench/debian.py
HOOKS=/usr/share/mmdebstrap/hooks/merged-usr

die() { echo "bench/debian: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (both tools create root-owned trees)"
for t in mmdebstrap /usr/bin/time python3 dpkg-query curl; do
  command -v "$t" >/dev/null || die "missing tool: $t (make deps)"
done
[ -d "$HOOKS" ] || die "missing $HOOKS (mmdebstrap's merged-usr hook)"
[ -x "$MKMACHINE" ] || die "no mkmachine binary at $MKMACHINE (make)"
MKMACHINE=$(cd "$(dirname "$MKMACHINE")" && pwd)/$(basename "$MKMACHINE")
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive number"
for s in "${SETS[@]}"; do case $s in minbase|mastodon) ;; *) die "unknown set '$s' (minbase, mastodon)" ;; esac; done
for m in "${MODES[@]}"; do case $m in cold|warm) ;; *) die "unknown mode '$m' (cold, warm)" ;; esac; done
[ ${#SETS[@]} -gt 0 ] && [ ${#MODES[@]} -gt 0 ] || die "no set or no mode to measure"

# The mirror, the way the tests find it (tests/tools/it-lib.sh: $MKMACHINE_DEBIAN_MIRROR or the
# host's apt sources). it-lib.sh is sourced in a subshell: its scratch dir goes when that exits.
MIRROR=$(MKMACHINE=$MKMACHINE TOP=$TOP bash -c 'source "$TOP/tests/tools/it-lib.sh" && debian_mirror bookworm') ||
  die "this host's apt sources name no Debian mirror for bookworm (or set MKMACHINE_DEBIAN_MIRROR)"
MIRROR_NOTE="the host's apt sources"
[ -n "${MKMACHINE_DEBIAN_MIRROR:-}" ] && MIRROR_NOTE="MKMACHINE_DEBIAN_MIRROR"
curl -fsS -o /dev/null --max-time 20 "$MIRROR/dists/bookworm/InRelease" ||
  die "the Debian mirror named by $MIRROR_NOTE is not reachable"

# The mastodon set: the packages of recipes/mastodon-debian.recipe (its hooks are not measured).
MASTODON_PKGS=$(sed -n 's/^Packages=//p' "$TOP/recipes/mastodon-debian.recipe")
[ -n "$MASTODON_PKGS" ] || die "no Packages= line in recipes/mastodon-debian.recipe"
set_pkgs() { [ "$1" = mastodon ] && echo "$MASTODON_PKGS" || true; }

# Leftover mounts (an interrupted mmdebstrap mounts /proc, /sys into its target) are unmounted
# before anything is deleted, and rm never leaves the file system.
unmount_under() {
  local m
  awk -v p="$1/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}
remove_tree() { unmount_under "$1"; rm -rf --one-file-system "$1"; }
cleanup() { [ "${BENCH_KEEP:-0}" = 1 ] || remove_tree "$W"; }
trap cleanup EXIT

echo ":: Debian: mkmachine vs mmdebstrap $(mmdebstrap --version | awk '{print $2}'), bookworm from $MIRROR_NOTE"
echo "   sets: ${SETS[*]}; modes: ${MODES[*]}; rounds: $ROUNDS; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f "$B"/failed-*.log
# As in run.sh: nothing is deleted between runs (ext4 skips recently freed inodes, which slows
# whoever creates files next); a previous work dir goes first, then a minute's wait.
if [ -e "$W" ]; then
  remove_tree "$W"
  echo "   (removed a previous run's work dir; waiting 60 s so ext4 stops skipping its freed inodes)"
  sync
  sleep 60
fi
mkdir -p "$W"
# About 350 MiB a run for minbase (tree + cache), 1.1 GiB for mastodon.
need=0
for s in "${SETS[@]}"; do
  per=$([ "$s" = mastodon ] && echo 1100 || echo 350)
  need=$((need + per * (ROUNDS * ${#MODES[@]} * 2 + 2)))
done
free_mib=$(df -Pm "$W" | awk 'NR == 2 {print $4}')
[ "$free_mib" -ge "$need" ] || die "needs about $need MiB free in $W, has $free_mib"

# A copy of the host's apt sources, the --host-root mkmachine reads its mirror from.
mkdir -p "$W/apt-etc/sources.list.d"
cp -f /etc/apt/sources.list "$W/apt-etc/" 2>/dev/null || true
cp -f /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list "$W/apt-etc/sources.list.d/" 2>/dev/null || true

# ------------------------------------------------------------------ one run
# Each run gets its own directory, then `sync` (neither tool pays for the other's dirty pages),
# then (BENCH_DROP_CACHES=1) the page cache is dropped and the inputs are read back: the
# binaries, keyrings, mmdebstrap's hooks and, warm, the cached packages. See run.sh for why.
DROP_CACHES=${BENCH_DROP_CACHES:-1}
if [ "$DROP_CACHES" = 1 ] && ! { : >/proc/sys/vm/drop_caches; } 2>/dev/null; then
  echo "   (cannot drop the page cache here: runs start with whatever is cached)"
  DROP_CACHES=0
fi
RUN=0
fresh() {  # NAME: sets D
  RUN=$((RUN + 1)); D=$W/run$RUN-$1; mkdir -p "$D"
}
start_clean() {  # DIRS TO READ BACK...
  sync
  if [ "$DROP_CACHES" = 1 ]; then
    echo 3 >/proc/sys/vm/drop_caches
    cat "$MKMACHINE" "$TOP"/keys/debian/* /usr/share/keyrings/debian-archive-keyring.gpg "$HOOKS"/* >/dev/null 2>&1 || true
    "$MKMACHINE" --version >/dev/null 2>&1 || true
    mmdebstrap --version >/dev/null 2>&1 || true
    for t in apt-get apt-config dpkg dpkg-deb gpg gpgv tar perl; do "$t" --version >/dev/null 2>&1 || true; done
    local d
    for d in "$@"; do find "$d" -type f -exec cat {} + >/dev/null 2>&1 || true; done
  fi
}
timed_sync() { python3 -c 'import os, time; t = time.monotonic(); os.sync(); print(f"{time.monotonic() - t:.3f}")'; }

write_recipe() {  # FILE SET
  {
    printf '[Machine]\nName=bench-%s\n\n[Bootstrap]\nDistribution=debian\nSuite=bookworm\n' "$2"
    printf 'Components=main\nVariant=minbase\n'
    [ "$2" = mastodon ] && printf 'Packages=%s\n' "$MASTODON_PKGS"
    [ -n "${MKMACHINE_DEBIAN_MIRROR:-}" ] && printf 'Mirror=%s\n' "$MIRROR"
    true
  } >"$1"
}

failed() {  # WHO LOG
  tail -25 "$2"
  cp "$2" "$B/failed-$1.log"
  die "$1 failed (exit status $(echo "$RES" | cut -d' ' -f5); log: $B/failed-$1.log)"
}

# pkgset TREE: name, version, architecture and state of every package, sorted
pkgset() { dpkg-query --admindir="$1/var/lib/dpkg" -W -f '${Package} ${Version} ${Architecture} ${db:Status-Abbrev}\n' | sort; }
check_set() {  # WHO TREE SET
  pkgset "$2" >"$W/set.txt"
  cmp -s "$W/set.txt" "$W/expected-$3.txt" ||
    { diff "$W/expected-$3.txt" "$W/set.txt" | head -20 || true; die "$1 installed a different package set than the reference"; }
}

# run_mkm SET MODE [prep]: mkmachine into a fresh --host-root; cold: a new --cache-dir and no
# lock; warm: a copy of the preparation run's cache (copied before the clock starts) and its lock,
# --locked. Sets RES and TREE.
run_mkm() {
  local s=$1 m=$2 d
  fresh "mkmachine-$s-$m${3:+-$3}"
  d=$D
  mkdir -p "$d/host/etc"
  cp -a "$W/apt-etc" "$d/host/etc/apt"
  write_recipe "$d/bench.recipe" "$s"
  local -a args=(--host-root "$d/host" --cache-dir "$d/cache")
  if [ "$m" = warm ]; then
    cp -a "$W/prep-$s/mkm-cache" "$d/cache"
    cp "$W/prep-$s/mkm.lock" "$d/bench.recipe.lock"
    args+=(--locked)
  else
    mkdir -m 0700 "$d/cache"
  fi
  start_clean $([ "$m" = warm ] && echo "$d/cache")
  RES=$(python3 "$PY" measure "$d/log" -- "$MKMACHINE" "${args[@]}" build "$d/bench.recipe")
  RES="$RES $(timed_sync)"
  TREE=$d/host/var/lib/machines/bench-$s
  [ "$(echo "$RES" | cut -d' ' -f5)" = 0 ] || failed "mkmachine-$s-$m" "$d/log"
  LOG=$d/log
  if [ "$m" = warm ] && grep -E '^ *[0-9.]+ fetched .*\.deb ' "$LOG" | head -3 | grep .; then
    die "mkmachine downloaded packages in a warm run ($LOG)"
  fi
}

# run_mm SET MODE [prep]: mmdebstrap into a fresh TARGET, as the tests run it; warm: the .debs of
# the preparation run are hard-linked into TARGET/var/cache/apt/archives/ by a setup hook (what
# mmdebstrap(1) documents for reuse, its sync-in example, without copying the data), so apt
# downloads none of them; prep: --skip=essential/unlink and a sync-out hook keep the .debs.
run_mm() {
  local s=$1 m=$2 d pk
  fresh "mmdebstrap-$s-$m${3:+-$3}"
  d=$D
  local -a args=(--variant=minbase --hook-dir="$HOOKS")
  pk=$(set_pkgs "$s")
  [ -n "$pk" ] && args+=(--include="${pk// /,}")
  if [ "${3:-}" = prep ]; then
    mkdir -p "$W/prep-$s/mm-debs"
    args+=(--skip=essential/unlink --customize-hook="sync-out /var/cache/apt/archives $W/prep-$s/mm-debs")
  elif [ "$m" = warm ]; then
    args+=(--setup-hook="mkdir -p \"\$1/var/cache/apt/archives\" && cp -l $W/prep-$s/mm-debs/*.deb \"\$1/var/cache/apt/archives/\"")
  fi
  start_clean $([ "$m" = warm ] && [ "${3:-}" != prep ] && echo "$W/prep-$s/mm-debs")
  RES=$(python3 "$PY" measure "$d/log" -- mmdebstrap "${args[@]}" bookworm "$d/root" "$MIRROR")
  RES="$RES $(timed_sync)"
  TREE=$d/root
  unmount_under "$d/root"
  [ "$(echo "$RES" | cut -d' ' -f5)" = 0 ] || failed "mmdebstrap-$s-$m" "$d/log"
  LOG=$d/log
  # apt prints "Get:N ..." for each file it downloads outside its progress display, and "Need
  # to get 0 B/5616 B" when the archives hold everything
  if [ "$m" = warm ] && [ "${3:-}" != prep ] && grep -E '^ *[0-9.]+ (Get:[0-9]+ |Need to get [1-9])' "$LOG" | head -3 | grep .; then
    die "mmdebstrap downloaded packages in a warm run ($LOG)"
  fi
}

record() {  # TOOL SET MODE ROUND
  local stages
  read -r wall user sys rss rc other load1 sy <<<"$RES"
  stages=$(python3 "$PY" stages "$1" "$LOG" "$wall")
  printf '{"tool":"%s","set":"%s","mode":"%s","round":%d,"wall":%s,"user":%s,"sys":%s,"rss":%s,"rc":%s,"other":%s,"load1":%s,"sync":%s,"stages":%s}\n' \
    "$1" "$2" "$3" "$4" "$wall" "$user" "$sys" "$rss" "$rc" "$other" "$load1" "$sy" "$stages" >>"$W/runs.jsonl"
  printf '   round %d %-8s %-4s %-10s %7.1f s wall %7.1f s cpu %7d KiB peak RSS  (load %s, other CPU %.0f s)\n' \
    "$4" "$2" "$3" "$1" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" "$rss" "$load1" "$other"
}

# ------------------------------------------------------------------ preparation + equivalence
# One uncounted run of each tool per set, cold: it fills the caches the warm runs start from
# (mkmachine: its cache dir and lock; mmdebstrap: the .debs apt downloaded) and shows that both
# tools install the same package set (name, version, architecture, state), which every counted
# run is then checked against.
for s in "${SETS[@]}"; do
  echo ":: preparing $s (not counted): both tools cold; their package sets must be equal"
  mkdir -p "$W/prep-$s"
  run_mm "$s" cold prep
  pkgset "$TREE" >"$W/expected-$s.txt"
  # apt shows no download in its progress display: the warm runs are shown to download nothing
  # by the cache holding the .deb of every package (apt's file name: the epoch's ':' as %3a)
  while read -r p v a _; do
    [ -f "$W/prep-$s/mm-debs/${p}_${v//:/%3a}_$a.deb" ] || die "mmdebstrap kept no .deb of $p $v for the warm runs"
  done <"$W/expected-$s.txt"
  grep -qv ' ii $' "$W/expected-$s.txt" && die "mmdebstrap left packages not fully installed"
  printf '   mmdebstrap: %6.1f s, %d packages, %d .debs kept for the warm runs\n' "${RES%% *}" \
    "$(wc -l <"$W/expected-$s.txt")" "$(ls "$W/prep-$s/mm-debs/"*.deb | wc -l)"
  run_mkm "$s" cold prep
  check_set "mkmachine ($s)" "$TREE" "$s"
  audit=$(dpkg --root "$TREE" --audit 2>&1 || true)
  [ -z "$audit" ] || { echo "$audit" | head || true; die "dpkg --audit is not clean on mkmachine's $s tree"; }
  # the same mirror: the lock's source line names the mirror mkmachine used
  lock=$D/bench.recipe.lock
  [ -s "$lock" ] || die "mkmachine wrote no lock for $s"
  grep -qxF -e "source bookworm $MIRROR" -e "source bookworm $MIRROR/" "$lock" ||
    die "mkmachine used another mirror than mmdebstrap (see the source line of $lock)"
  cp "$lock" "$W/prep-$s/mkm.lock"
  cp -a "$D/cache" "$W/prep-$s/mkm-cache"
  printf '   mkmachine:  %6.1f s, the same %d packages (name, version, arch, state); dpkg --audit clean\n' \
    "${RES%% *}" "$(wc -l <"$W/expected-$s.txt")"
done

# ------------------------------------------------------------------ counted rounds
# The tools alternate (A B A B), and the one that goes first alternates by round: the mirror's
# bandwidth and the machine's load drift, and both tools should see the same drift.
: >"$W/runs.jsonl"
for ((i = 1; i <= ROUNDS; i++)); do
  for s in "${SETS[@]}"; do
    for m in "${MODES[@]}"; do
      if ((i % 2)); then order=(mkm mm); else order=(mm mkm); fi
      for tool in "${order[@]}"; do
        "run_$tool" "$s" "$m"
        name=$([ "$tool" = mkm ] && echo mkmachine || echo mmdebstrap)
        check_set "$name ($s, $m)" "$TREE" "$s"
        record "$name" "$s" "$m" "$i"
      done
    done
  done
done

python3 "$PY" report "$B" "$W/runs.jsonl" "$ROUNDS" "$MIRROR_NOTE"
cp "$W/runs.jsonl" "$B/runs.jsonl"
