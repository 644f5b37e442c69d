#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Debian from the real mirror (the one this host's apt sources name): a bare Variant=minbase
# bookworm recipe, built into a scratch host root, checked with the real tools:
#   - dpkg --audit prints nothing; dpkg -V reports nothing beyond the conffiles listed below that
#     maintainer scripts are known to edit; apt-get check succeeds in the machine;
#   - the installed set (names and versions) equals what mmdebstrap --variant=minbase with the
#     merged-usr hook installs from the same mirror;
#   - merged /usr, no policy-rc.d left, apt's sources point at the mirror, nothing time- or
#     host-dependent (machine-id empty, no logs, no *-old backups);
#   - the lock pins it: a second build from the lock, at another time with another umask, gives
#     the same digest; `mkmachine lock` needs the indexes only (no .deb downloaded).
source "$(dirname "$0")/../tools/it-lib.sh"
need_root
command -v mmdebstrap >/dev/null || skip "skipped: mmdebstrap is missing (make deps)"
MIRROR=$(debian_mirror) || skip "skipped: this host's apt sources name no Debian mirror"
curl -fsS -o /dev/null --max-time 20 "$MIRROR/dists/bookworm/InRelease" ||
  skip "skipped: the Debian mirror named by this host's apt sources is not reachable"

H=$WORK/host
mkdir -p "$H/etc/apt/sources.list.d"
cp -f /etc/apt/sources.list "$H/etc/apt/" 2>/dev/null || true
cp -f /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list "$H/etc/apt/sources.list.d/" 2>/dev/null || true
CACHE=${MKM_TEST_DEBIAN_CACHE:-$WORK/cache}
mkdir -p "$CACHE"; chmod 700 "$CACHE"
cat >"$WORK/minbase.recipe" <<'EOF'
[Machine]
Name=minbase
[Bootstrap]
Distribution=debian
Suite=bookworm
Variant=minbase
EOF
MKM=("$MKMACHINE" --host-root "$H" --cache-dir "$CACHE")

# ---- the lock needs the indexes only (a cache of its own, empty before) ----
mkdir -m 0700 "$WORK/lockcache"
"$MKMACHINE" --host-root "$H" --cache-dir "$WORK/lockcache" lock "$WORK/minbase.recipe" >"$WORK/lock.out" 2>&1
check "mkmachine lock succeeds" test -s "$WORK/minbase.recipe.lock"
sed 's/^/    | /' "$WORK/lock.out" | tail -n 5
debs=0
while IFS= read -r -d '' f; do
  [ "$(head -c 21 "$f" | tail -c 13 | tr -d '\0')" = debian-binary ] && debs=$((debs + 1))
done < <(find "$WORK/lockcache" -type f -print0)
check "mkmachine lock downloaded no package ($debs .deb in the cache)" test "$debs" -eq 0
check "the lock records the Release it was planned from" grep -q '^index bookworm/' "$WORK/minbase.recipe.lock"

# ---- build ----
"${MKM[@]}" build "$WORK/minbase.recipe" >"$WORK/build.out" 2>&1 || { cat "$WORK/build.out"; bad "mkmachine build"; finish; }
ok "mkmachine build of Variant=minbase"
R=$H/var/lib/machines/minbase
D1=$(cat "$(live_gen "$H" minbase)/digest")

audit=$(dpkg --root "$R" --audit 2>&1)
check "dpkg --audit prints nothing" test -z "$audit"
[ -z "$audit" ] || echo "$audit" | head -20
# dpkg -V: only conffiles maintainer scripts edit on purpose (none in minbase today).
ALLOWED_V=()
dpkg --root "$R" -V >"$WORK/dpkg-V" 2>&1 || true
unexpected=$(grep -v -F -x -f <(printf '%s\n' "${ALLOWED_V[@]:-/nonexistent}") "$WORK/dpkg-V" || true)
check "dpkg -V reports nothing unexpected" test -z "$unexpected"
[ -z "$unexpected" ] || echo "$unexpected" | head -20
check "apt-get check succeeds in the machine" chroot "$R" apt-get check -q
check "merged /usr: /bin is a link to usr/bin" test "$(readlink "$R/bin")" = usr/bin
check "merged /usr: /lib is a link to usr/lib" test "$(readlink "$R/lib")" = usr/lib
check "no policy-rc.d left behind" test ! -e "$R/usr/sbin/policy-rc.d"
check "/etc/machine-id is empty (made at first boot)" test ! -s "$R/etc/machine-id"
check "no dpkg log" test ! -e "$R/var/log/dpkg.log"
check "no *-old backups in dpkg's database" test -z "$(find "$R/var/lib/dpkg" -name '*-old')"
check "apt's sources name the mirror used" grep -qF "$MIRROR" "$R/etc/apt/sources.list.d/debian.sources"
check "every package is installed" test -z "$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f '${db:Status-Abbrev}\n' | grep -v '^ii')"

# ---- the same set as mmdebstrap ----
mmdebstrap --quiet --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr bookworm "$WORK/mm" "$MIRROR" \
  >"$WORK/mm.log" 2>&1 || { tail -20 "$WORK/mm.log"; bad "mmdebstrap ran"; }
dpkg-query --admindir="$WORK/mm/var/lib/dpkg" -W -f '${Package} ${Version}\n' | sort >"$WORK/mm.set"
dpkg-query --admindir="$R/var/lib/dpkg" -W -f '${Package} ${Version}\n' | sort >"$WORK/mkm.set"
if [ -s "$WORK/mm.set" ] && diff -u "$WORK/mm.set" "$WORK/mkm.set" >"$WORK/set.diff"; then
  ok "the installed set equals mmdebstrap's ($(wc -l <"$WORK/mkm.set") packages)"
else
  bad "the installed set differs from mmdebstrap's"; cat "$WORK/set.diff"
fi
# What dpkg and apt record beyond the set: as dpkg --install and apt leave it in mmdebstrap's tree.
same() {  # same WHAT FILE-IN-TREE [sort]
  if [ ! -e "$WORK/mm/$2" ]; then bad "$1: not in mmdebstrap's tree"; return; fi
  if diff -u <(sort "$WORK/mm/$2") <(sort "$R/$2") >"$WORK/same.diff"; then ok "$1: the same as mmdebstrap's"; else
    bad "$1 differs from mmdebstrap's"; head -20 "$WORK/same.diff"; fi
}
same "dpkg's file trigger interests" var/lib/dpkg/triggers/File
same "the ldconfig trigger interest" var/lib/dpkg/triggers/ldconfig
same "dpkg's diversions" var/lib/dpkg/diversions
same "debconf's database" var/cache/debconf/config.dat
for a in $(ls "$WORK/mm/var/lib/dpkg/alternatives"); do same "alternative $a" "var/lib/dpkg/alternatives/$a"; done
cf() { dpkg-query --admindir="$1/var/lib/dpkg" -W -f '${Package}\n${Conffiles}\n' | sed '/^$/d'; }
if diff -u <(cf "$WORK/mm") <(cf "$R") >"$WORK/cf.diff"; then ok "conffiles and their recorded digests: the same as mmdebstrap's"; else
  bad "conffiles differ from mmdebstrap's"; head -20 "$WORK/cf.diff"; fi
auto_mm=$(chroot "$WORK/mm" apt-mark showauto 2>/dev/null | sort); auto_mkm=$(chroot "$R" apt-mark showauto 2>/dev/null | sort)
check "apt-mark showauto: the same automatic packages as mmdebstrap ($(echo "$auto_mkm" | wc -l))" test -n "$auto_mkm" -a "$auto_mm" = "$auto_mkm"

# ---- reproducible from the lock: another time, another umask ----
sleep 1
# --force: the checks above ran apt-get in the machine (it left a /dev/null there), drift that a
# rebuild is meant to throw away.
if (umask 077; "$MKMACHINE" --locked --force --host-root "$H" --cache-dir "$CACHE" build "$WORK/minbase.recipe" >"$WORK/build2.out" 2>&1); then
  D2=$(cat "$(live_gen "$H" minbase)/digest")
  check "a second build from the lock, with umask 077, has the same digest ($D1)" test "$D1" = "$D2"
else
  bad "a second build from the lock"; tail -5 "$WORK/build2.out"
fi
finish
