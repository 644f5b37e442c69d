#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make demo: the main job, for real. Builds recipes/mastodon-debian.recipe from the Debian mirror
# this host's apt sources name, into a scratch host root in the checkout (build/demo-debian/host:
# nothing under the real /var/lib/machines or /etc/systemd is touched), boots it with
# systemd-nspawn and the generated settings, shows from inside that ssh and docker are active,
# that docker uses overlay2 and runs a container from a locally imported image (busybox from the
# machine's busybox-static: no registry is reachable), that /dev/fuse works and root's key logs
# in over ssh, and from the host that the machine's root is an unprivileged UID (Docker's
# default is a user-namespaced machine); prints the digest and powers the machine off. A second
# run finds the packages in the cache and prints the same digest.
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
mkdir -p "$D/data" "$D/recipes"
# Include= reads recipes beside the including one (mkmachine.recipe(5), INCLUDES): a copy of the
# repository's recipe goes next to the demo's.
cp -f "$TOP/recipes/$NAME.recipe" "$D/recipes/"
cat >"$D/$NAME.recipe" <<EOF
# The demo's recipe: $TOP/recipes/$NAME.recipe with a generated root key and a scratch data dir.
[Machine]
Include=recipes/$NAME.recipe

[Bootstrap]
# A static busybox to make a Docker image from files (docker import): no registry is needed.
Packages=busybox-static

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
  # A machine an older mkmachine built here may have had other grants on the host (Docker was a
  # privileged container before): this recipe is the demo's own, so what it grants is accepted.
  FORCE=(--force --allow-new-privileges)
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

# With user namespacing (PrivateUsers=BASE in the settings) the machine's root is the host's
# UID BASE: give it the data directory the recipe binds in, as an admin would.
NS=$D/host/etc/systemd/nspawn/$NAME.nspawn
BASE=$(sed -n 's/^PrivateUsers=\([0-9][0-9]*\)\(:[0-9]*\)\{0,1\}$/\1/p' "$NS")
[ -n "$BASE" ] && chown "$BASE:$BASE" "$D/data"

# Boot it with the generated settings: the scratch host's /etc/systemd/nspawn/NAME.nspawn, copied
# beside the image and read with --settings=trusted (as nspawn trusts /etc/systemd/nspawn/), so
# the real host's /etc and /run stay untouched, and the Environment= lines of the scratch host's
# systemd-nspawn@NAME.service drop-in, as systemd would pass them. PID 1 of this host is not
# systemd: --register=no --keep-unit.
cp "$NS" "$D/host/var/lib/machines/$NAME.nspawn"
DROPIN=$D/host/etc/systemd/system/systemd-nspawn@$NAME.service.d/mkmachine.conf
ENV=()
[ -f "$DROPIN" ] && mapfile -t ENV < <(sed -n 's/^Environment=//p' "$DROPIN")
say "systemd-nspawn -b -D $R --settings=trusted (settings: $NS${ENV[*]:+; environment: ${ENV[*]}})"
sed 's/^/   | /' "$D/host/var/lib/machines/$NAME.nspawn"
# systemd-nspawn@.service runs each machine in a cgroup of its own (Delegate=yes). Without systemd
# as PID 1, every --keep-unit nspawn started from the root cgroup shares one "payload" cgroup,
# where a privileged machine's leftover init.scope (the host root's) stops a user-namespaced
# machine's systemd ("Failed to create /init.scope control group: Permission denied"): give this
# one a fresh cgroup in the hierarchies nspawn uses, removed afterwards.
CGROUPS=()
if [ "$(cat /proc/1/comm)" != systemd ]; then
  cg=mkmachine-demo-$NAME-$$
  if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
    CGROUPS=("/sys/fs/cgroup/$cg")
  else
    [ -d /sys/fs/cgroup/systemd ] && CGROUPS+=("/sys/fs/cgroup/systemd/$cg")
    [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] && CGROUPS+=("/sys/fs/cgroup/unified/$cg")
  fi
  for c in "${CGROUPS[@]}"; do mkdir -p "$c"; done
fi
LOG=$D/boot.log
(
  for c in "${CGROUPS[@]}"; do echo "$BASHPID" >"$c/cgroup.procs"; done
  exec env "${ENV[@]}" systemd-nspawn --register=no --keep-unit --console=passive --settings=trusted -M "$NAME" -D "$R" -b
) >"$LOG" 2>&1 &
NSPAWN=$!
cleanup() {
  if kill -0 "$NSPAWN" 2>/dev/null; then
    kill -TERM "$NSPAWN" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NSPAWN" 2>/dev/null || true
  fi
  rm -f "$D/host/var/lib/machines/$NAME.nspawn"
  # Empty cgroups, innermost first (the machine's own are gone with its processes).
  for c in "${CGROUPS[@]}"; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
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
# Into every namespace of the machine, its user namespace too when it has one (then as the
# machine's root, not the host's).
USERNS=()
[ "$(readlink /proc/"$LEADER"/ns/user)" != "$(readlink /proc/self/ns/user)" ] && USERNS=(-U)
inside() { nsenter -t "$LEADER" -m -u -i -n -p -C "${USERNS[@]}" -- "$@"; }
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
# Seen from the host, the machine's root is an unprivileged UID: its PID 1 runs as BASE, and a
# file its root creates is owned by BASE.
uid=$(awk '/^Uid:/ { print $2 }' /proc/"$LEADER"/status)
if [ -n "$BASE" ] && [ "$uid" = "$BASE" ] && [ "$uid" != 0 ]; then
  pass "from the host, the machine's root is UID $uid (/proc/$LEADER/status), not 0"
else
  fail "from the host, the machine's PID 1 runs as UID '$uid' (PrivateUsers base '${BASE:-none}')"
fi
inside touch /root/.mkmachine-uid-probe || true
owner=$(stat -c %u "$R/root/.mkmachine-uid-probe" 2>/dev/null || true)
inside rm -f /root/.mkmachine-uid-probe || true
[ -n "$BASE" ] && [ "$owner" = "$BASE" ] && pass "a file the machine's root creates is owned by UID $owner on the host" ||
  fail "a file the machine's root created is owned by '$owner' on the host"
# A container from an image made of files (docker import): no registry is reachable.
if inside sh -c 'd=$(mktemp -d) && mkdir "$d/bin" && cp /bin/busybox "$d/bin/" &&
    tar -C "$d" -c . | docker import - local/busybox >/dev/null; rc=$?; rm -rf "$d"; exit $rc' >>"$LOG" 2>&1; then
  pass "docker import: a local busybox image"
  said=$(inside docker run --rm local/busybox /bin/busybox echo hello-from-a-container 2>>"$LOG" || true)
  if [ "$said" = hello-from-a-container ]; then
    pass "docker run --rm local/busybox: the container ran (bridge network)"
  else
    # Say which part failed: without a network the container runs if bridging was the problem.
    said=$(inside docker run --rm --network none local/busybox /bin/busybox echo hello-from-a-container 2>>"$LOG" || true)
    [ "$said" = hello-from-a-container ] && fail "docker run works only with --network none (bridge networking failed; see $LOG)" ||
      fail "docker run --rm local/busybox did not run (see $LOG)"
  fi
else
  fail "docker import of a local busybox image failed (see $LOG)"
fi
# The machine's root is an unprivileged UID on the host: it opens the host's /dev/fuse only if that
# is 0666, as udev makes it. A host without udev's rule keeps the kernel's 0600: say so, no failure.
fuse_mode=$(stat -c %a /dev/fuse 2>/dev/null || echo missing)
if [ "$fuse_mode" != 666 ]; then
  printf '   not checked: /dev/fuse: the host'"'"'s /dev/fuse is %s (udev makes it 0666), which the machine'"'"'s root cannot open; make it 0666 on the host for FUSE in user-namespaced machines\n' \
    "$([ "$fuse_mode" = missing ] && echo missing || echo "mode 0$fuse_mode")"
elif inside sh -c 'test -c /dev/fuse && exec 3<>/dev/fuse'; then pass "/dev/fuse is a character device and opens"; else fail "/dev/fuse does not work"; fi
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
