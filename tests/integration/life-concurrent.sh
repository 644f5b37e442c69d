#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Two builds of one machine at once (issue 9): the per-machine lock lets one through and refuses
# the other at once with a clear message; whatever the interleaving, the machine that is left is
# whole: `mkmachine verify` finds it clean, its live generation's digest is the one a build
# reported, and no staging root, generation being written or temporary is left. The lock also
# keeps verify and export from reading a tree a build is swapping.
source "$(dirname "$0")/../tools/it-lib.sh"

arch_fixture
HOST=$WORK/host
M=$HOST/var/lib/machines
S=$HOST/var/lib/mkmachine
N=conc
mkm() { "$MKMACHINE" --host-root "$HOST" --cache-dir "$WORK/cache" --systemd-version 252 "$@"; }

recipe() {  # recipe FILE PACKAGES...
  local f=$1; shift
  cat >"$f" <<R
[Machine]
Name=$N

[Bootstrap]
Distribution=arch
Mirror=file://$FX/repo/\$repo/os/\$arch
Repositories=core extra
Packages=$*
Keyring=$FX/keyring
R
}
recipe "$WORK/a.recipe" base-test
recipe "$WORK/b.recipe" base-test confpkg

mkm -q "$WORK/a.recipe" >"$WORK/first.out" 2>"$WORK/first.log"
check "a first build succeeds" test $? -eq 0 || cat "$WORK/first.log"

# The lock held (as a running build holds it): a build is refused at once, and says why.
flock "$S/$N/.lock" -c "'$MKMACHINE' --host-root '$HOST' --cache-dir '$WORK/cache' --systemd-version 252 '$WORK/b.recipe'" \
  >/dev/null 2>"$WORK/held.log"
rc=$?
check "a build while another holds the machine's lock fails (exit 1)" test "$rc" -eq 1
check "and names the other build" contains "$WORK/held.log" "another build of '$N' is running"
check "and the machine is still the first build's" test "$(cat "$(live_gen "$HOST" $N)/digest")" = "$(awk '{print $2}' "$WORK/first.out")"

# Real concurrent builds, several rounds: each either deploys or is refused for the lock; the
# machine left is whole and is the one the last successful build reported.
rounds=4 ok_all=1
for i in $(seq $rounds); do
  mkm -q "$WORK/a.recipe" >"$WORK/ra.$i.out" 2>"$WORK/ra.$i.log" & pa=$!
  mkm -q "$WORK/b.recipe" >"$WORK/rb.$i.out" 2>"$WORK/rb.$i.log" & pb=$!
  wait $pa; ra=$?
  wait $pb; rb=$?
  for x in a b; do
    r=$([ $x = a ] && echo $ra || echo $rb)
    if [ "$r" -ne 0 ] && ! grep -q "another build of '$N' is running" "$WORK/r$x.$i.log"; then
      echo "  round $i: build $x failed otherwise (exit $r):"; sed 's/^/    | /' "$WORK/r$x.$i.log"; ok_all=0
    fi
  done
  if ! mkm verify $N >"$WORK/v.$i.log" 2>&1; then
    echo "  round $i: verify after the concurrent builds:"; sed 's/^/    | /' "$WORK/v.$i.log"; ok_all=0
  fi
  live=$(cat "$(live_gen "$HOST" $N)/digest" 2>/dev/null)
  reported=$(cat "$WORK/ra.$i.out" "$WORK/rb.$i.out" | awk '{print $2}')
  if [ -z "$live" ] || ! grep -qxF "$live" <<<"$reported"; then
    echo "  round $i: live digest '$live' is not one a build of this round reported: $reported"; ok_all=0
  fi
  if ls -A "$M" | grep -v -e "^$N\$" -e "^\.#$N\.gen-[0-9]*\$" | grep -q .; then
    echo "  round $i: left in $M:"; ls -A "$M" | sed 's/^/    | /'; ok_all=0
  fi
  if ls -A "$S/$N/gen" | grep -q '^\.#'; then
    echo "  round $i: a generation being written is left:"; ls -A "$S/$N/gen" | sed 's/^/    | /'; ok_all=0
  fi
done
echo "# $(cat "$WORK"/r[ab].*.log | grep -c "another build of '$N' is running") of $((2 * rounds)) concurrent builds were refused for the lock"
check "$rounds rounds of two concurrent builds: each deployed or was refused for the lock; the machine left is whole" \
  test "$ok_all" -eq 1
finish
