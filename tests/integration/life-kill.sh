#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SIGKILL at many points of a build: to the process the user started (the guard) or to its whole
# process group. After each kill: no process of the build is left, and the deployed machine (its
# tree, .nspawn and other host files, state) is exactly what it was; or, when the kill came after
# the swap, the new machine, consistent (its state's digest is the new tree's). The next build
# succeeds and leaves no staging root, GnuPG home or temporary behind.
# Then a host root on a small file system that fills mid-build: a clear error, the old machine
# intact, nothing left.
# Everything is checked through files (trees, host files, the state directory) and mkmachine's
# output, not through the state's internal layout.
source "$(dirname "$0")/../tools/it-lib.sh"

arch_fixture
command -v pgrep >/dev/null || skip "skipped: pgrep missing (procps; make deps)"
start_httpd "$FX/repo"
HTTP="http://127.0.0.1:$HTTPD_PORT"
HOST=$WORK/host
M=$HOST/var/lib/machines
S=$HOST/var/lib/mkmachine/k
# GnuPG homes go to $TMPDIR: a folder of this test's own, so that they can be counted.
T=$WORK/t
mkdir -p "$T"

recipe() {  # recipe FILE GEN MIRROR PACKAGES...
  local f=$1 gen=$2 mirror=$3; shift 3
  cat >"$f" <<R
[Machine]
Name=k

[Bootstrap]
Distribution=arch
Mirror=$mirror/\$repo/os/\$arch
Repositories=core extra
Packages=$*
Keyring=$FX/keyring

[Hooks]
Fuse=yes
Run=echo $gen >/etc/generation; sleep 0.3

[Exec]
Environment=GENERATION=$gen
R
}
# A: the deployed machine. B: the build that gets killed (other packages, other host files, a
# Run= that keeps a sandbox busy for a moment).
recipe "$WORK/a.recipe" a "$HTTP" base-test scripted
recipe "$WORK/b.recipe" b "$HTTP/fault/slow" base-test scripted app cron-user
mkm() { TMPDIR=$T "$MKMACHINE" --host-root "$HOST" --cache-dir "$WORK/cache" "$@"; }

# What a build of ours may leave running: the worker (our binary), sandboxed commands (their root
# is under $HOST), gpg and gpg-agent (their home under $T), anything in the killed group.
leftovers() {  # leftovers PGID: prints "PID CMDLINE" of each
  python3 - "$1" "$MKMACHINE" "$HOST/" "$T/" $$ <<'PY'
import os, sys
pgid, exe_want, host, tdir, me = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
for d in os.listdir("/proc"):
    if not d.isdigit() or int(d) in (me, os.getpid()):
        continue
    try:
        exe = os.readlink(f"/proc/{d}/exe")
        root = os.readlink(f"/proc/{d}/root")
        cmd = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        pg = os.getpgid(int(d))
    except OSError:
        continue
    if exe == exe_want or (root + "/").startswith(host) or tdir in cmd or pg == pgid:
        print(d, cmd)
PY
}
no_leftovers() {  # no_leftovers WHAT PGID: waits up to 5 s (gpg ends on the EOF of its pipes)
  local left
  for _ in $(seq 50); do left=$(leftovers "$2"); [ -z "$left" ] && break; sleep 0.1; done
  if [ -z "$left" ]; then ok "$1: no process of the build is left"
  else bad "$1: no process of the build is left"; echo "$left" | sed 's/^/    /'; fi
}
# The deployed machine as files: the tree; the host files; the state (the flock file aside). A
# staging root a kill left is not part of it (the next build must remove it: nothing_left).
machine_snapshot() {
  echo "== tree"; snapshot "$M/k"
  echo "== machines"; ls -A "$M" | grep -vE '^\.#k\.(lck|[A-Za-z0-9]{6})$'
  echo "== host files"; (cd "$HOST" && find etc -type f -print0 | sort -z | xargs -0r sha256sum)
  # (a generation being written, gen/.#N.PID.XXXXXX, is no more part of it than a staging root)
  echo "== state"; (cd "$S" && find . -path './gen/.#*' -prune -o -type f ! -name .lock -print0 | sort -z | xargs -0r sha256sum)
  echo "== locks beside the recipes"; (cd "$WORK" && sha256sum ./*.recipe.lock 2>/dev/null)
}
# Whatever the state says the live digest is: the old single-generation layout's digest file,
# or the generation whose meta root=DEV:INO is the live tree's.
live_digest() {
  if [ -f "$S/digest" ]; then cat "$S/digest"; return; fi
  local devino m
  devino=$(stat -c '%d:%i' "$M/k")
  for m in "$S"/gen/*/meta; do
    if grep -qx "root=$devino" "$m" 2>/dev/null; then cat "$(dirname "$m")/digest"; return; fi
  done
  # root= may be written with the device as major:minor
  devino=$(python3 -c 'import os,sys; s=os.stat(sys.argv[1]); print("%d:%d:%d" % (os.major(s.st_dev), os.minor(s.st_dev), s.st_ino))' "$M/k")
  for m in "$S"/gen/*/meta; do
    if grep -qx "root=$devino" "$m" 2>/dev/null; then cat "$(dirname "$m")/digest"; return; fi
  done
}
# Nothing a build leaves behind: staging roots, GnuPG homes, temporaries of fs_write_atomic_at.
nothing_left() {  # nothing_left WHAT
  local left
  # (.#k.gen-NN, a kept generation, is six characters too: not a staging root)
  left=$( { ls -d "$M"/.#k.?????? 2>/dev/null | grep -v '/\.#k\.gen-'; ls -d "$S"/gen/.#* 2>/dev/null
            ls -d "$T"/mkm-gnupg.* 2>/dev/null
            find "$WORK"/*.recipe* "$HOST" -name '.#*.[0-9]*.??????' 2>/dev/null; } )
  if [ -z "$left" ]; then ok "$1: no staging root, GnuPG home or temporary is left"
  else bad "$1: no staging root, GnuPG home or temporary is left"; echo "$left" | sed 's/^/    /'; fi
}
build_ok() {  # build_ok WHAT RECIPE: a build that must succeed
  ( cd "$WORK" && mkm "$2" ) >"$WORK/ok.log" 2>&1
  if [ $? -eq 0 ]; then ok "$1"; else bad "$1"; tail -15 "$WORK/ok.log" | sed 's/^/    | /'; fi
}
digest_of_log() { sed -n 's/^digest //p' "$1"; }

# --- the two machines, built once each -------------------------------------------------------
build_ok "build B once (its tree is what a kill after the swap leaves)" b.recipe
DIGEST_B=$(digest_of_log "$WORK/ok.log")
snapshot "$M/k" >"$WORK/tree-b.snap"
(cd "$HOST" && find etc -type f -print0 | sort -z | xargs -0r sha256sum) >"$WORK/host-b.snap"
build_ok "build A: the deployed machine" a.recipe
DIGEST_A=$(digest_of_log "$WORK/ok.log")
check "A and B differ" test -n "$DIGEST_A" -a "$DIGEST_A" != "$DIGEST_B"
snapshot "$M/k" >"$WORK/tree-a.snap"

# --- kills ------------------------------------------------------------------------------------
# kill_at WHO POINT: WHO is guard (the process the user started) or group; POINT is a phase (the
# kill comes right after the build's output line ":: POINT..."), "result" (after the line saying
# the machine is deployed: past the swap) or a delay in seconds (with a dot).
SWAPPED=0
kill_at() {
  local who=$1 at=$2 what line killed=0 pid rc
  case $at in
    *.*) what="SIGKILL to the $who at $at s" ;;
    result) what="SIGKILL to the $who after the result line" ;;
    *) what="SIGKILL to the $who after ':: $at'" ;;
  esac
  # Without a lock the build synchronizes and resolves first (and writes the lock at the end).
  case $at in synchronizing|resolving|*.*) rm -f "$WORK/b.recipe.lock" ;; esac
  machine_snapshot >"$WORK/before.snap"
  rm -f "$WORK/out.fifo"
  : >"$WORK/kill.log"
  mkfifo "$WORK/out.fifo"
  # Early kills and timed ones start from an empty cache (downloads, the keyring's setup with its
  # gpg-agent); the later ones share one, to stay quick.
  local cache=$WORK/cache
  case $at in *.*|synchronizing|downloading|resolving|checking) cache=$WORK/cache-$who-$at ;; esac
  # A session (and process group) of its own, so that the group can be killed without us.
  ( cd "$WORK" && TMPDIR=$T exec setsid "$MKMACHINE" --host-root "$HOST" --cache-dir "$cache" b.recipe ) \
    >"$WORK/out.fifo" 2>&1 &
  pid=$!
  local sig_target=$pid
  [ "$who" = group ] && sig_target=-$pid
  local timer=
  if [[ $at == *.* ]]; then
    ( sleep "$at"; kill -KILL -- "$sig_target" 2>/dev/null ) &
    timer=$!
    killed=1
  fi
  # Whether the worker may have reached the swap before the kill: it prints ":: deploying" (to
  # unbuffered stderr) before it swaps; what the guard-less worker of a broken build prints after
  # the kill does not count.
  local may_swap=0
  while IFS= read -r -t 60 line; do
    echo "$line" >>"$WORK/kill.log"
    [ $killed = 0 ] && [[ $line == ":: deploying"* ]] && may_swap=1
    if [ $killed = 0 ] && { [[ $line == ":: $at"* ]] || [[ $at == result && $line == "machine 'k' deployed"* ]]; }; then
      kill -KILL -- "$sig_target" 2>/dev/null
      killed=1
    fi
  done <"$WORK/out.fifo"
  wait $pid 2>/dev/null
  rc=$?
  if [ -n "$timer" ]; then
    wait "$timer"
    grep -q '^:: deploying' "$WORK/kill.log" && may_swap=1
  fi
  if [ $killed = 0 ]; then
    bad "$what: the build never printed that line (exit $rc)"; sed 's/^/    | /' "$WORK/kill.log" | tail -8; return
  fi
  no_leftovers "$what" "$pid"
  machine_snapshot >"$WORK/after.snap"
  if cmp -s "$WORK/before.snap" "$WORK/after.snap"; then
    ok "$what: the machine (tree, host files, state) is exactly as before (exit $rc)"
  elif [ $may_swap = 0 ]; then
    bad "$what: the machine is exactly as before (the kill came before the deploy)"
    diff "$WORK/before.snap" "$WORK/after.snap" | head -10 | sed 's/^/    /'
    sed 's/^/    | /' "$WORK/kill.log" | tail -6
  elif [ "$rc" -eq 0 ]; then
    ok "$what: the kill came after the build ended"
    SWAPPED=$((SWAPPED + 1))
    check "$what: ... and the machine is B's" test "$(live_digest)" = "$DIGEST_B"
  elif cmp -s <(snapshot "$M/k" 2>/dev/null) "$WORK/tree-b.snap"; then
    # Killed after the swap: the new machine, whole and consistent.
    SWAPPED=$((SWAPPED + 1))
    ok "$what: killed after the swap: the tree is B's"
    check "$what: ... the state says B's digest" test "$(live_digest)" = "$DIGEST_B"
    # The host files follow the swap (mkmachine(1)): a kill in between leaves none of A's that B
    # lacks, and B's only once the next command on the machine (ls as root) has written them.
    host_files() { (cd "$HOST" && find etc -type f -print0 | sort -z | xargs -0r sha256sum); }
    if cmp -s <(host_files) "$WORK/host-b.snap"; then
      ok "$what: ... and B's host files"
    elif mkm ls >/dev/null 2>&1 && cmp -s <(host_files) "$WORK/host-b.snap"; then
      ok "$what: ... and B's host files once the next command (ls) ran: the kill came between the swap and them"
    else bad "$what: ... and B's host files (at the latest after the next command)"; fi
  else
    bad "$what: the machine is either the old one or the new one"
    diff "$WORK/before.snap" "$WORK/after.snap" | head -20 | sed 's/^/    /'
    sed 's/^/    | /' "$WORK/kill.log" | tail -8
  fi
  # The next build succeeds, cleans up and leaves the machine A again.
  build_ok "$what: the next build succeeds" a.recipe
  nothing_left "$what: after the next build"
  check "$what: the next build deployed A" cmp -s <(snapshot "$M/k" 2>/dev/null) "$WORK/tree-a.snap"
}

start=$SECONDS
# Every phase of the build, in order; after "deploying" the kill races the swap, after the result
# line it comes past it. Each point once, the target alternating (both targets at every point
# would double the time: ~10 s a point on a loaded machine).
who=guard
for at in ${LIFE_KILL_POINTS:-synchronizing resolving downloading checking installing applying writing deploying result \
          0.$((RANDOM % 10)) $((RANDOM % 5)).$((RANDOM % 10))}; do
  kill_at $who "$at"
  if [ $who = guard ]; then who=group; else who=guard; fi
done
echo "# $SWAPPED kills came after the swap; kills took $((SECONDS - start)) s"

# --- disk full --------------------------------------------------------------------------------
# The host root on a 12 MiB tmpfs: machine A (~3 MiB) fits, and B's staging tree beside it plus
# the cache do not. The build must fail clearly and leave A and nothing else.
SMALL=$WORK/small
mkdir -p "$SMALL"
if mount -t tmpfs -o size=12m tmpfs "$SMALL" 2>/dev/null; then
  CLEANUP+=("umount -l '$SMALL'")
  mkdir -p "$SMALL/host"
  ( cd "$WORK" && TMPDIR=$T "$MKMACHINE" --host-root "$SMALL/host" --cache-dir "$WORK/cache" a.recipe ) \
    >"$WORK/full-a.log" 2>&1
  check "disk full: A fits on the small file system" test $? -eq 0
  HOST_SAVE=$HOST; HOST=$SMALL/host; M=$HOST/var/lib/machines; S=$HOST/var/lib/mkmachine/k
  machine_snapshot >"$WORK/before.snap"
  # Fill it up to 1.5 MiB less than B's tree needs, whatever the size of A.
  head -c $(( $(df -k --output=avail "$SMALL" | tail -1) * 1024 - 1536 * 1024 )) /dev/zero >"$SMALL/filler" 2>/dev/null
  sed 's|/fault/slow||' "$WORK/b.recipe" >"$WORK/full.recipe"
  ( cd "$WORK" && TMPDIR=$T "$MKMACHINE" --host-root "$HOST" --cache-dir "$WORK/cache" full.recipe ) \
    >"$WORK/full.log" 2>&1
  rc=$?
  check "disk full: the build fails (exit 1)" test $rc -eq 1
  check "disk full: the error says so" contains "$WORK/full.log" "No space left on device"
  machine_snapshot >"$WORK/after.snap"
  if cmp -s "$WORK/before.snap" "$WORK/after.snap"; then ok "disk full: the machine is unchanged"
  else bad "disk full: the machine is unchanged"; diff "$WORK/before.snap" "$WORK/after.snap" | head; fi
  nothing_left "disk full"
  rm -f "$SMALL/filler"
  HOST=$HOST_SAVE; M=$HOST/var/lib/machines; S=$HOST/var/lib/mkmachine/k
else
  echo "# skipped the disk-full test: cannot mount a tmpfs here"
fi

finish
