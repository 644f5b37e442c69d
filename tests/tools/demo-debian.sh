#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make demo: the main job, for real. Builds recipes/mastodon-debian.recipe from the Debian mirror
# this host's apt sources name, into a scratch host root in the checkout (build/demo-debian/host:
# nothing under the real /var/lib/machines or /etc/systemd is touched), boots it with
# systemd-nspawn and the generated settings, shows from inside that ssh and docker are active,
# that docker uses overlay2, that /dev/fuse works and root's key logs in over ssh, prints the
# digest and powers the machine off. A second run finds the packages in the cache and prints
# the same digest.
#
#   tests/tools/demo-debian.sh [--check]    --check: exit 1 unless every check passed (the test suite)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
MKM=${MKMACHINE:-$TOP/mkmachine}
D=${DEMO_DIR:-$TOP/build/demo-debian}
NAME=mastodon-debian
STRICT=0
[ "${1:-}" = --check ] && STRICT=1
mkdir -p "$D"
FAILS=0
say() { printf ':: %s\n' "$*"; }
pass() { printf '   ok: %s\n' "$*"; }
fail() { printf '   FAILED: %s\n' "$*"; FAILS=$((FAILS + 1)); }

# The scratch host: the real host's apt sources (the mirror comes from there, as for mmdebstrap).
mkdir -p "$D/host/etc/apt/sources.list.d"
cp -f /etc/apt/sources.list "$D/host/etc/apt/" 2>/dev/null || true
cp -f /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list "$D/host/etc/apt/sources.list.d/" 2>/dev/null || true

# Root's key, made for the demo, and the state directory the recipe binds in.
[ -f "$D/admin" ] || ssh-keygen -q -t ed25519 -N '' -C demo@mkmachine -f "$D/admin"
cp -f "$D/admin.pub" "$D/admin.pub.recipe"
mkdir -p "$D/data"
cat >"$D/$NAME.recipe" <<EOF
# The demo's recipe: $TOP/recipes/$NAME.recipe with a generated root key and a scratch data dir.
[Machine]
Include=$TOP/recipes/$NAME.recipe

[Hooks]
RootAuthorizedKeys=admin.pub

[Files]
Bind=
Bind=$D/data:/opt/mastodon/data
EOF

say "mkmachine check $D/$NAME.recipe"
"$MKM" check "$D/$NAME.recipe"
FORCE=()
if [ -d "$D/host/var/lib/machines/$NAME" ]; then
  # The previous run booted the machine: Docker and the journal wrote into it. A rebuild would
  # throw that away, so mkmachine refuses it without --force; show what it is, then go ahead.
  say "mkmachine verify $NAME (what the previous run's boot left in the machine)"
  "$MKM" --host-root "$D/host" verify "$NAME" 2>&1 | tail -n 4 || true
  FORCE=(--force)
fi
say "mkmachine --host-root $D/host build ${FORCE[*]} $D/$NAME.recipe"
start=$(date +%s.%N)
"$MKM" --host-root "$D/host" --cache-dir "$D/cache" build "${FORCE[@]}" "$D/$NAME.recipe" | tee "$D/build.out"
end=$(date +%s.%N)
awk -v a="$start" -v b="$end" 'BEGIN { printf ":: built in %.1f s\n", b - a }'
R=$D/host/var/lib/machines/$NAME
DIGEST=$("$MKM" --host-root "$D/host" --json ls |
  python3 -c 'import json, sys; print([m["digest"] for m in json.load(sys.stdin)["machines"] if m["name"] == sys.argv[1]][0])' "$NAME")
say "digest $DIGEST"
if [ -f "$D/last-digest" ]; then
  if [ "$(cat "$D/last-digest")" = "$DIGEST" ]; then pass "same digest as the previous run"; else fail "digest changed since the previous run ($(cat "$D/last-digest"))"; fi
fi
echo "$DIGEST" >"$D/last-digest"

say "dpkg --root $R --audit"
out=$(dpkg --root "$R" --audit 2>&1 || true)
if [ -z "$out" ]; then pass "dpkg --audit is clean"; else fail "dpkg --audit: $out"; fi

# Boot it with the generated settings: the scratch host's /etc/systemd/nspawn/NAME.nspawn, copied
# beside the image and read with --settings=trusted (as nspawn trusts /etc/systemd/nspawn/), so
# the real host's /etc and /run stay untouched. PID 1 of this host is not systemd:
# --register=no --keep-unit.
cp "$D/host/etc/systemd/nspawn/$NAME.nspawn" "$D/host/var/lib/machines/$NAME.nspawn"
say "systemd-nspawn -b -D $R --settings=trusted (settings: $D/host/etc/systemd/nspawn/$NAME.nspawn)"
sed 's/^/   | /' "$D/host/var/lib/machines/$NAME.nspawn"
LOG=$D/boot.log
systemd-nspawn --register=no --keep-unit --console=passive --settings=trusted -M "$NAME" -D "$R" -b >"$LOG" 2>&1 &
NSPAWN=$!
cleanup() {
  if kill -0 "$NSPAWN" 2>/dev/null; then
    kill -TERM "$NSPAWN" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NSPAWN" 2>/dev/null || true
  fi
  rm -f "$D/host/var/lib/machines/$NAME.nspawn"
}
trap cleanup EXIT
# The machine's PID 1: the process below nspawn that runs the machine's systemd.
LEADER=
for _ in $(seq 300); do
  for c in $(pgrep -P "$NSPAWN") $(for p in $(pgrep -P "$NSPAWN"); do pgrep -P "$p"; done); do
    if [ "$(cat /proc/$c/comm 2>/dev/null)" = systemd ]; then LEADER=$c; break 2; fi
  done
  sleep 0.1
done
[ -n "$LEADER" ] || { cat "$LOG"; echo "the machine did not start"; exit 1; }
inside() { nsenter -t "$LEADER" -m -u -i -n -p -C -- "$@"; }
# Booting takes about a second on an idle machine; allow for a busy one.
state=
for _ in $(seq 1200); do
  state=$(inside systemctl is-system-running 2>/dev/null || true)
  case $state in running|degraded) break ;; esac
  sleep 0.1
done
say "booted: systemctl is-system-running: $state"
[ "$state" = running ] && pass "the machine reached multi-user" || { fail "system state '$state'"; inside systemctl --failed --no-legend 2>&1 | sed 's/^/   | /' || true; }
for u in ssh docker; do
  for _ in $(seq 300); do [ "$(inside systemctl is-active $u 2>/dev/null)" = active ] && break; sleep 0.1; done
  a=$(inside systemctl is-active $u 2>/dev/null || true)
  [ "$a" = active ] && pass "$u.service is active" || fail "$u.service is '$a'"
done
drv=$(inside docker info --format '{{.Driver}}' 2>/dev/null || true)
[ "$drv" = overlay2 ] && pass "docker info: storage driver overlay2" || fail "docker info: storage driver '$drv'"
if inside sh -c 'test -c /dev/fuse && exec 3<>/dev/fuse'; then pass "/dev/fuse is a character device and opens"; else fail "/dev/fuse does not work"; fi
if cmp -s "$D/admin.pub" "$R/root/.ssh/authorized_keys"; then pass "root's authorized_keys holds the demo key"; else fail "authorized_keys differs"; fi
inside sh -c 'cat > /tmp/k && chmod 600 /tmp/k' <"$D/admin"
who=$(inside ssh -i /tmp/k -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1 id -un 2>/dev/null || true)
inside rm -f /tmp/k
[ "$who" = root ] && pass "ssh with root's key logs in (id -un: root)" || fail "ssh login with the key failed ('$who')"

say "powering off"
kill -TERM "$NSPAWN"
wait "$NSPAWN" 2>/dev/null || true
say "digest $DIGEST"
if [ "$FAILS" -gt 0 ]; then
  echo ":: $FAILS check(s) failed; the boot log is $LOG"
  [ "$STRICT" -eq 1 ] && exit 1
fi
exit 0
