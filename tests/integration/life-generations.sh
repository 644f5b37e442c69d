#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A machine's generations (builder/state.h), with the Arch fixture in a scratch host root: two
# builds with different recipes keep two generations, each with its state and host files;
# rollback swaps tree, .nspawn, drop-in and state back and a second rollback returns;
# --keep-generations 0 and 2; a hand-made tree and a running machine are refused without
# --force; rm leaves nothing; the layout before generations is migrated; ls --json.
source "$(dirname "$0")/../tools/it-lib.sh"

arch_fixture
HOST=$WORK/host
M=$HOST/var/lib/machines
S=$HOST/var/lib/mkmachine
N=life
mkm() { "$MKMACHINE" --host-root "$HOST" --cache-dir "$WORK/cache" --systemd-version 252 "$@"; }

recipe() {  # recipe NAME FUSE(yes|no) PACKAGES...
  local name=$1 fuse=$2; shift 2
  cat >"$WORK/$name.recipe" <<R
[Machine]
Name=$name

[Bootstrap]
Distribution=arch
Mirror=file://$FX/repo/\$repo/os/\$arch
Repositories=core extra
Packages=$*
Keyring=$FX/keyring

[Hooks]
Fuse=$fuse

[Exec]
Hostname=$name
R
}
build() {  # build NAME [OPTIONS...]: build $WORK/NAME.recipe, log in $WORK/NAME.log
  local name=$1; shift
  mkm "$@" "$WORK/$name.recipe" >"$WORK/$name.log" 2>&1
}
root_of() { stat -c %d:%i "$1" 2>/dev/null; }
meta_root() { sed -n 's/^root=//p' "$1/meta"; }
NS=$HOST/etc/systemd/nspawn/$N.nspawn
DROPIN=$HOST/etc/systemd/system/systemd-nspawn@$N.service.d/mkmachine.conf
MODS=$HOST/etc/modules-load.d/mkmachine-$N.conf
# The host files a generation installs, as its state keeps them and as the host has them.
host_files_are() {  # host_files_are GEN-DIR: the host has exactly that generation's host files
  local g=$1 f rel
  for f in "$NS" "$DROPIN" "$MODS"; do
    rel=${f#"$HOST/"}
    if [ -e "$g/host/$rel" ]; then cmp -s "$g/host/$rel" "$f" || { echo "  differs: /$rel"; return 1; }
    elif [ -e "$f" ]; then echo "  not in $g: /$rel"; return 1; fi
  done
}

# --- two builds, two generations -----------------------------------------------------------
recipe $N no base-test
build $N
check "first build succeeds" test $? -eq 0 || cat "$WORK/$N.log"
G1=$S/$N/gen/1
for f in recipe recipe-path lock manifest digest meta "host/etc/systemd/nspawn/$N.nspawn"; do
  check "gen/1 has $f" test -s "$G1/$f"
done
check "gen/1's recipe-path names the recipe" test "$(cat "$G1/recipe-path")" = "$WORK/$N.recipe"
check "gen/1's meta root= is the live tree's DEV:INO" test "$(meta_root "$G1")" = "$(root_of "$M/$N")"
check "gen/1's meta says generation=1" grep -qx 'generation=1' "$G1/meta"
check "the first build has no modules-load file (Fuse=no)" test ! -e "$MODS"
check "the host files are gen/1's" host_files_are "$G1"
check "no staging root or image lock file is left" test -z "$(ls -A "$M" | grep -v "^$N\$")"
D1=$(cat "$G1/digest")

recipe $N yes base-test confpkg
build $N --allow-new-privileges         # Fuse= on systemd 252 grants /dev/fuse (life-policy.sh)
check "second build (another package, Fuse=yes) succeeds" test $? -eq 0 || cat "$WORK/$N.log"
G2=$S/$N/gen/2
D2=$(cat "$G2/digest")
check "the digests differ" test "$D1" != "$D2"
check "gen/2 is live" test "$(live_gen "$HOST" $N)" = "$G2"
check "generation 1 is kept as .#$N.gen-1, the tree gen/1 describes" test "$(root_of "$M/.#$N.gen-1")" = "$(meta_root "$G1")"
check "gen/1 still has its state" test "$(cat "$G1/digest")" = "$D1"
check "the host files are gen/2's (the drop-in and modules-load file came with Fuse=yes)" host_files_are "$G2"
check "... and the modules-load file exists" test -s "$MODS"
check "the confpkg package is in the live tree only" bash -c "test -d '$M/$N/var/lib/pacman/local/'confpkg-* && ! test -d '$M/.#$N.gen-1/var/lib/pacman/local/'confpkg-*"

# --- rollback, twice ------------------------------------------------------------------------
snapshot "$M/$N" >"$WORK/t2.snap"
mkm rollback $N >"$WORK/rb.log" 2>&1
check "rollback succeeds" test $? -eq 0 || cat "$WORK/rb.log"
check "rollback: gen/1 is live again" test "$(live_gen "$HOST" $N)" = "$G1"
check "rollback: the tree is generation 1's (same DEV:INO)" test "$(root_of "$M/$N")" = "$(meta_root "$G1")"
check "rollback: generation 2 is kept as .#$N.gen-2" test "$(root_of "$M/.#$N.gen-2")" = "$(meta_root "$G2")"
check "rollback: .nspawn, drop-in, modules-load are generation 1's" host_files_are "$G1"
check "rollback: the modules-load file of generation 2 is gone" test ! -e "$MODS"
check "rollback: says which generations" contains "$WORK/rb.log" "rolled back from generation 2 to 1"
mkm --json rollback $N >"$WORK/rb.json" 2>"$WORK/rb.log"
check "rollback again succeeds (--json)" test $? -eq 0
check "rollback again: --json names from, to and digest" python3 -c "
import json, sys
d = json.load(open('$WORK/rb.json'))
sys.exit(0 if (d['from'], d['to'], d['digest'], d['name']) == (1, 2, '$D2', '$N') else 1)"
check "rollback again: gen/2 is live" test "$(live_gen "$HOST" $N)" = "$G2"
check "rollback again: the host files are generation 2's" host_files_are "$G2"
snapshot "$M/$N" >"$WORK/t2b.snap"
check "rollback again: the tree is exactly as before" cmp -s "$WORK/t2.snap" "$WORK/t2b.snap"

# --- what is kept ---------------------------------------------------------------------------
# A third build (default: one older generation): the most recently live older one stays.
recipe $N no base-test scripted
build $N
check "third build succeeds" test $? -eq 0 || cat "$WORK/$N.log"
check "third build: gen/3 is live" test "$(live_gen "$HOST" $N)" = "$S/$N/gen/3"
check "third build: generation 2 is kept, the tree its state describes" test "$(root_of "$M/.#$N.gen-2")" = "$(meta_root "$G2")"
check "third build: generation 1 is gone (tree and state)" test ! -e "$M/.#$N.gen-1" -a ! -e "$G1"
check "third build: two trees in all" test "$(ls -A "$M" | grep -c "$N")" -eq 2
check "third build: the host files are gen/3's" host_files_are "$S/$N/gen/3"
build $N --keep-generations 2
check "--keep-generations 2: three trees" test "$(ls -d "$M/$N" "$M/.#$N".gen-* | wc -l)" -eq 3
check "--keep-generations 2: three generations of state" test "$(ls "$S/$N/gen" | wc -l)" -eq 3
check "--keep-generations 2: gens 2, 3 and 4" test "$(ls "$S/$N/gen" | sort -n | tr '\n' ' ')" = "2 3 4 "
build $N --keep-generations 0
check "--keep-generations 0: only the live tree" test "$(ls -A "$M" | grep -c "$N")" -eq 1
check "--keep-generations 0: only the live state" test "$(ls "$S/$N/gen")" = 5
mkm rollback $N >"$WORK/rb0.log" 2>&1
check "rollback with no other generation: exit status 1" test $? -eq 1
check "rollback with no other generation: says so" contains "$WORK/rb0.log" "no other generation to roll back to"
build $N
check "a build after that keeps one again" test "$(ls -A "$M" | grep -c "$N")" -eq 2

# --- a tree mkmachine did not build ---------------------------------------------------------
mkdir -p "$M/hand/etc" "$M/hand/srv/data"
echo precious >"$M/hand/srv/data/db"
echo hand >"$M/hand/etc/hostname"
recipe hand no base-test
build hand
check "hand-made tree: the build is refused (exit status 1)" test $? -eq 1
check "hand-made tree: the message says what would be lost" contains "$WORK/hand.log" "not built by mkmachine: 5 files would be lost"
check "hand-made tree: ... and that --force overrides" contains "$WORK/hand.log" "--force"
check "hand-made tree: it is untouched" test "$(cat "$M/hand/srv/data/db")" = precious
mkm rm hand >"$WORK/rmh.log" 2>&1
check "hand-made tree: rm is refused too" test $? -eq 1 -a -d "$M/hand/srv"
build hand --force
check "hand-made tree with --force: the build succeeds" test $? -eq 0 || cat "$WORK/hand.log"
check "hand-made tree with --force: it was replaced" test ! -e "$M/hand/srv/data/db" -a -n "$(live_gen "$HOST" hand)"
check "hand-made tree with --force: nothing of it is kept" test -z "$(ls -A "$M" | grep '^\.#hand\.')"

# --- a running machine ----------------------------------------------------------------------
# systemd-nspawn takes the image lock .#NAME.lck (an OFD lock in systemd >= 2xx; flock before):
# hold it with flock(1) the way older nspawn did.
flock "$M/.#$N.lck" sleep 60 &
LOCKER=$!
CLEANUP+=("kill $LOCKER 2>/dev/null")
for _ in $(seq 50); do flock -n "$M/.#$N.lck" true 2>/dev/null || break; sleep 0.1; done
gen_before=$(live_gen "$HOST" $N)
build $N
check "running (image lock held): the build is refused (exit status 1)" test $? -eq 1
check "running: the message says the machine is running" contains "$WORK/$N.log" "running: machine '$N' is running"
check "running: the live generation is unchanged" test "$(live_gen "$HOST" $N)" = "$gen_before"
mkm rollback $N >"$WORK/rbr.log" 2>&1
check "running: rollback is refused" test $? -eq 1
mkm rm $N >"$WORK/rmr.log" 2>&1
check "running: rm is refused" test $? -eq 1 -a -d "$M/$N"
mkm --json ls >"$WORK/ls-run.json" 2>/dev/null
check "running: ls says so" python3 -c "
import json, sys
m = {x['name']: x for x in json.load(open('$WORK/ls-run.json'))['machines']}
sys.exit(0 if m['$N']['running'] is True and m['hand']['running'] is False else 1)"
kill $LOCKER; wait $LOCKER 2>/dev/null
# The real thing, when systemd-nspawn can run the fixture's busybox here.
if command -v systemd-nspawn >/dev/null && [ -x "$M/$N/bin/sh" ]; then
  systemd-nspawn --register=no --keep-unit -q -D "$M/$N" /bin/sh -c 'sleep 30' >"$WORK/nspawn.log" 2>&1 &
  NSP=$!
  CLEANUP+=("kill $NSP 2>/dev/null")
  for _ in $(seq 100); do [ "$("$MKMACHINE" --host-root "$HOST" --json ls 2>/dev/null | python3 -c "
import json, sys
print([m['running'] for m in json.load(sys.stdin)['machines'] if m['name'] == '$N'][0])")" = True ] && break
    kill -0 $NSP 2>/dev/null || break; sleep 0.1; done
  if kill -0 $NSP 2>/dev/null; then
    build $N
    check "running under systemd-nspawn: the build is refused" test $? -eq 1
    check "running under systemd-nspawn: says why" contains "$WORK/$N.log" "is running"
    kill $NSP; wait $NSP 2>/dev/null
  else
    echo "skipping the systemd-nspawn case: it did not start here ($(tail -1 "$WORK/nspawn.log"))"
  fi
fi
build $N
check "stopped again: the build succeeds" test $? -eq 0 || cat "$WORK/$N.log"
check "no image lock file is left" test ! -e "$M/.#$N.lck"

# --- ls --json ------------------------------------------------------------------------------
live=$(live_gen "$HOST" $N)
echo "clean 1700000000 $(cat "$live/digest")" >"$live/last-verify"
echo "drift 1700000000 sha256:0000" >"$S/hand/last-verify"
mkm --json ls >"$WORK/ls.json" 2>"$WORK/ls.err"
check "ls --json succeeds" test $? -eq 0
check "ls --json: names, digests, recipes, generations, running, drift" python3 -c "
import json, sys
d = json.load(open('$WORK/ls.json'))
m = {x['name']: x for x in d['machines']}
a = m['$N']
ok = sorted(m) == ['hand', '$N'] \
  and a['digest'] == open('$live/digest').read().strip() \
  and a['recipe'] == '$WORK/$N.recipe' and a['path'] == '$M/$N' \
  and a['running'] is False and a['drift'] == 'clean' \
  and len(a['generations']) == 2 and sum(g['live'] for g in a['generations']) == 1 \
  and a['generation'] == int('$live'.rsplit('/', 1)[1]) and a['built'] > 0 \
  and m['hand']['drift'] == 'unknown'
sys.exit(0 if ok else 1)"
mkm ls >"$WORK/ls.txt" 2>&1
check "ls prints a table" bash -c "grep -q '^NAME ' '$WORK/ls.txt' && grep -q '^$N .* clean ' '$WORK/ls.txt'"
# A machine whose state cannot be read: named with the reason, the others listed, exit 1; with
# --json still one document.
mkdir -p "$S/zbad/gen/1" && echo garbage >"$S/zbad/gen/1/meta"
mkm --json ls >"$WORK/lsbad.json" 2>"$WORK/lsbad.err"
check "ls with a damaged state: exit 1" test $? -eq 1
check "... one JSON document: the others listed, the damaged one with its error" python3 -c "
import json
d = json.load(open('$WORK/lsbad.json'))
m = {x['name']: x for x in d['machines']}
assert '$N' in m and 'digest' in m['$N'], m
assert 'meta' in m['zbad']['error'], m['zbad']"
mkm verify zbad >"$WORK/vbad.log" 2>&1
check "verify of a machine whose meta cannot be read: exit 1, not 2" test $? -eq 1
rm -rf "$S/zbad"

# --- rm -------------------------------------------------------------------------------------
mkm rm $N >"$WORK/rm.log" 2>&1
check "rm succeeds" test $? -eq 0 || cat "$WORK/rm.log"
check "rm leaves nothing of the machine on the host" test -z "$(find "$HOST" -name "*$N*" -print)"
mkm rm $N >"$WORK/rm2.log" 2>&1
check "rm of a machine that is not there: exit status 1" test $? -eq 1
check "rm of a machine that is not there: says so" contains "$WORK/rm2.log" "no machine '$N'"
check "... and leaves nothing behind either" test ! -e "$S/$N"

# --- the layout before generations ----------------------------------------------------------
recipe old yes base-test
build old
recipe old no base-test confpkg
build old
g1=$S/old/gen/1 g2=$S/old/gen/2
OD1=$(cat "$g1/digest") OD2=$(cat "$g2/digest")
# Make it what the previous mkmachine left: state_dir/{recipe,lock,manifest,digest} of the live
# tree, the previous tree as .#old.prev, no generations.
for f in recipe lock manifest digest; do cp "$g2/$f" "$S/old/$f"; done
rm -rf "$S/old/gen"
mv "$M/.#old.gen-1" "$M/.#old.prev"
# ls repairs what it may lock, as every command does: the machine shows both generations at once.
mkm --json ls >"$WORK/old-ls.json" 2>"$WORK/old-ls.err"
check "old layout: ls migrates it first (announced)" contains "$WORK/old-ls.err" "migrating the state of 'old'"
check "old layout: ls shows the two migrated generations and the live digest" python3 -c "
import json, sys
m = {x['name']: x for x in json.load(open('$WORK/old-ls.json'))['machines']}['old']
sys.exit(0 if len(m['generations']) == 2 and m['digest'] == '$OD2' else 1)"
mkm rollback old >"$WORK/old.log" 2>&1
check "old layout: rollback succeeds after the migration" test $? -eq 0 || cat "$WORK/old.log"
check "old layout: the migration is not done twice" bash -c "! grep -q 'migrating the state' '$WORK/old.log'"
check "old layout: the old state files are gone" test ! -e "$S/old/digest" -a ! -e "$S/old/manifest"
check "old layout: .#old.prev became a generation and is live now" test "$(live_gen "$HOST" old)" = "$S/old/gen/1"
check "old layout: the migrated live generation kept its digest" test "$(cat "$S/old/gen/2/digest")" = "$OD2"
check "old layout: ... and is kept as .#old.gen-2" test "$(root_of "$M/.#old.gen-2")" = "$(meta_root "$S/old/gen/2")"
check "old layout: no .#old.prev is left" test ! -e "$M/.#old.prev"
mkm rollback old >"$WORK/old2.log" 2>&1
check "old layout: rollback again returns to the migrated live generation" test "$(live_gen "$HOST" old)" = "$S/old/gen/2"
build old
check "old layout: the next build works" test $? -eq 0 -a "$(live_gen "$HOST" old)" = "$S/old/gen/3"
check "old layout: ... with its own digest" test "$(cat "$S/old/gen/3/digest")" = "$OD2"
: "$OD1"

finish
