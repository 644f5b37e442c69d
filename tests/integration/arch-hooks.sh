#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# mkmachine build with every built-in hook on, from the generated Arch repo: each file the build
# must produce (tree, NAME.nspawn, the service drop-in, modules-load) is checked by content, then
# the real systemd-nspawn starts the machine with its generated settings in force and commands
# run inside it. DockerStorageDriver= makes it a user-namespaced machine (PrivateUsers=pick by
# default); the same recipe with DockerPrivileged=yes gives the privileged form. A second
# machine shifts its ownership with PrivateUsers=pick and starts with user namespacing on the
# first try.
source "$(dirname "$0")/../tools/it-lib.sh"

arch_fixture
HOST=$WORK/host
M=$HOST/var/lib/machines
mkdir -p "$WORK/files" "$WORK/data"
echo 'hello from the recipe' >"$WORK/files/motd"
echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJtest admin@example.invalid' >"$WORK/files/admin.pub"
N=mkmhk$$
cat >"$WORK/$N.recipe" <<RECIPE
[Machine]
Name=$N

[Bootstrap]
Distribution=arch
Mirror=file://$FX/repo/\$repo/os/\$arch
Repositories=core extra
Packages=base-test scripted testsvc docker
Keyring=$FX/keyring

[Hooks]
EnableServices=testsvc.service
Fuse=yes
DockerStorageDriver=overlay2
RootAuthorizedKeys=files/admin.pub
Copy=files/motd:/etc/motd:0640:root
Run=echo "ran as \$(id -u) on \$(hostname)" > /var/lib/run.marker

[Network]
VirtualEthernet=yes
Address=10.0.3.2/24
Gateway=10.0.3.1

[Files]
Bind=$WORK/data:/opt/data
RECIPE
# systemd 252 (pinned, so the expected files do not depend on the CI host) still needs the FUSE
# workarounds; 257 does not.
"$MKMACHINE" --host-root "$HOST" --cache-dir "$WORK/cache" --systemd-version 252 "$WORK/$N.recipe" >"$WORK/b.log" 2>&1
check "the build with every hook on succeeds" test $? -eq 0 || cat "$WORK/b.log"
check "the precheck warned that machinectl login will not work" contains "$WORK/b.log" "machinectl login will not work"
R=$M/$N
NS=$HOST/etc/systemd/nspawn/$N.nspawn
# Docker's default: PrivateUsers=pick, resolved to the name's base, the tree owned by it.
B=$(sed -n 's/^PrivateUsers=\([0-9][0-9]*\)$/\1/p' "$NS")
check "DockerStorageDriver=: PrivateUsers= is a base of the pick range (user namespacing by default)" \
  test -n "$B" -a "${B:-0}" -ge $((0x80000)) -a "${B:-0}" -lt $((0x6FFF0000))
check "DockerStorageDriver=: the build says the machine's root is an unprivileged UID" \
  contains "$WORK/b.log" "runs Docker with user namespacing (PrivateUsers=pick, the default with Docker)"

# --- the tree ---
check "the scriptlet ran" grep -qx 'installed 1.0-1' "$R/var/lib/scripted.marker"
check "Run= ran in the sandbox as root with the machine's hostname" grep -qx "ran as 0 on $N" "$R/var/lib/run.marker"
check "EnableServices=: WantedBy link as systemctl writes it" \
  test "$(readlink "$R/etc/systemd/system/multi-user.target.wants/testsvc.service")" = /usr/lib/systemd/system/testsvc.service
check "EnableServices=: Alias link" test "$(readlink "$R/etc/systemd/system/tsvc.service")" = /usr/lib/systemd/system/testsvc.service
check "DockerStorageDriver=: docker.service enabled" test -L "$R/etc/systemd/system/multi-user.target.wants/docker.service"
printf '{\n  "log-driver": "journald",\n  "storage-driver": "overlay2"\n}\n' >"$WORK/daemon.json"
check "DockerStorageDriver=: daemon.json merged with the package's" cmp -s "$WORK/daemon.json" "$R/etc/docker/daemon.json"
check "RootAuthorizedKeys=: the key, mode 0600" \
  test "$(stat -c %a "$R/root/.ssh/authorized_keys")" = 600 -a "$(cat "$R/root/.ssh/authorized_keys")" = "$(cat "$WORK/files/admin.pub")"
check "RootAuthorizedKeys=: ~/.ssh is 0700" test "$(stat -c %a "$R/root/.ssh")" = 700
check "no SSH host key in the tree" bash -c "! ls '$R'/etc/ssh/ssh_host_* 2>/dev/null | grep -q ."
check "Copy=: content, mode 0640, owner root (the machine's: UID $B on the host)" \
  test "$(stat -c '%a %u' "$R/etc/motd")" = "640 $B" -a "$(cat "$R/etc/motd")" = "hello from the recipe"
check "Fuse=yes on systemd 252: the tmpfiles rule for char 10:229" \
  grep -qx 'c /dev/fuse 0666 root root - 10:229' "$R/etc/tmpfiles.d/mkmachine-fuse.conf"
printf '[Match]\nName=host0\n\n[Network]\nAddress=10.0.3.2/24\nGateway=10.0.3.1\n' >"$WORK/net"
grep -v '^#' "$R/etc/systemd/network/50-mkmachine-host0.network" | sed '/./,$!d' >"$WORK/net.got"
check "Address=/Gateway=: the networkd file for host0" cmp -s "$WORK/net" "$WORK/net.got"

# --- the host files ---
printf '[Exec]\nPrivateUsers=%s\nSystemCallFilter=@keyring\n\n[Files]\nBind=%s:/opt/data\nBind=/dev/fuse\nPrivateUsersOwnership=off\n\n[Network]\nVirtualEthernet=yes\n' \
  "$B" "$WORK/data" >"$WORK/expected.nspawn"
grep -v '^#' "$NS" | sed '/./,$!d' >"$WORK/got.nspawn"
if cmp -s "$WORK/expected.nspawn" "$WORK/got.nspawn"; then ok "NAME.nspawn: recipe settings merged with the hooks', stable order"
else bad "NAME.nspawn: recipe settings merged with the hooks'"; diff "$WORK/expected.nspawn" "$WORK/got.nspawn"; fi
check "NAME.nspawn has no DeviceAllow= (not a .nspawn key)" bash -c "! grep -q DeviceAllow '$NS'"
DROPIN=$HOST/etc/systemd/system/systemd-nspawn@$N.service.d/mkmachine.conf
check "the service drop-in allows /dev/fuse" grep -qx 'DeviceAllow=/dev/fuse rwm' "$DROPIN"
# The scratch host root has no cgroup hierarchy to read: the unified one for the machine, which
# a hybrid host needs and a unified one ignores.
check "the service drop-in gives the machine the unified cgroup hierarchy" \
  grep -qx 'Environment=SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1' "$DROPIN"
check "no Capability=, no PrivateUsers=no for Docker by default" bash -c "! grep -qE '^(Capability=|PrivateUsers=no)' '$NS'"

# DockerPrivileged=yes: the privileged machine, as before (the machine's root is the host's root).
printf '[Machine]\nInclude=%s\n[Hooks]\nDockerPrivileged=yes\n' "$WORK/$N.recipe" >"$WORK/priv.recipe"
"$MKMACHINE" --host-root "$WORK/hostpriv" --cache-dir "$WORK/cache" --systemd-version 252 "$WORK/priv.recipe" >"$WORK/bp.log" 2>&1
check "DockerPrivileged=yes: the build succeeds" test $? -eq 0 || tail -5 "$WORK/bp.log"
printf '[Exec]\nCapability=all\nPrivateUsers=no\nSystemCallFilter=@keyring bpf\n\n[Files]\nBind=%s:/opt/data\nBind=/dev/fuse\n\n[Network]\nVirtualEthernet=yes\n' \
  "$WORK/data" >"$WORK/expected-priv.nspawn"
grep -v '^#' "$WORK/hostpriv/etc/systemd/nspawn/$N.nspawn" | sed '/./,$!d' >"$WORK/got-priv.nspawn"
if cmp -s "$WORK/expected-priv.nspawn" "$WORK/got-priv.nspawn"; then ok "DockerPrivileged=yes: Capability=all, PrivateUsers=no, SystemCallFilter=@keyring bpf"
else bad "DockerPrivileged=yes: NAME.nspawn"; diff "$WORK/expected-priv.nspawn" "$WORK/got-priv.nspawn"; fi
check "DockerPrivileged=yes: the tree is not shifted" test "$(stat -c %u "$WORK/hostpriv/var/lib/machines/$N/etc/motd")" = 0
check "DockerPrivileged=yes: no unified-hierarchy override" \
  bash -c "! grep -q SYSTEMD_NSPAWN_UNIFIED_HIERARCHY '$WORK/hostpriv/etc/systemd/system/systemd-nspawn@$N.service.d/mkmachine.conf'"
check "modules-load.d lists fuse and overlay" \
  test "$(grep -v '^#' "$HOST/etc/modules-load.d/mkmachine-$N.conf")" = "$(printf 'fuse\noverlay')"

# A recent systemd needs none of the FUSE workarounds.
"$MKMACHINE" -q --host-root "$WORK/host257" --cache-dir "$WORK/cache" --systemd-version 257 "$WORK/$N.recipe" >"$WORK/b257.log" 2>&1
check "systemd 257: the build succeeds" test $? -eq 0
check "systemd 257: no tmpfiles rule, no Bind=/dev/fuse, no DeviceAllow= in the drop-in" bash -c "
  ! test -e '$WORK/host257/var/lib/machines/$N/etc/tmpfiles.d/mkmachine-fuse.conf' &&
  ! grep -q /dev/fuse '$WORK/host257/etc/systemd/nspawn/$N.nspawn' &&
  ! grep -qs DeviceAllow '$WORK/host257/etc/systemd/system/systemd-nspawn@$N.service.d/mkmachine.conf'"

# --- run it with systemd-nspawn, the generated settings in force ---
if ! command -v systemd-nspawn >/dev/null; then
  echo "skipping the systemd-nspawn runs: systemd-nspawn is missing (make deps)"
  finish
  exit
fi
mkdir -p /run/systemd/nspawn
fuse_like_udev
run_machine() {  # run_machine NAME TREE CMD...: settings from /run/systemd/nspawn (trusted)
  local name=$1 tree=$2; shift 2
  cp "$HOST/etc/systemd/nspawn/$name.nspawn" "/run/systemd/nspawn/$name.nspawn"
  CLEANUP+=("rm -f '/run/systemd/nspawn/$name.nspawn'")
  timeout 120 systemd-nspawn --register=no --keep-unit --pipe -q -M "$name" -D "$tree" --settings=trusted "$@" 2>&1 |
    grep -v '^Attempted to remove disk file system'
  return "${PIPESTATUS[0]}"
}
echo 'data from the host' >"$WORK/data/hello"
run_machine "$N" "$R" /usr/bin/sh -c 'id -u; cat /var/lib/scripted.marker; cat /etc/motd;
  test -c /dev/fuse && exec 3<>/dev/fuse && echo fuse-opened; cat /opt/data/hello;
  grep -c host0 /proc/net/dev; read -r a b c </proc/self/uid_map; echo "uid_map $a $b $c"' >"$WORK/run.log"
check "the machine starts under systemd-nspawn and runs commands" test $? -eq 0
check "inside: root, the scriptlet's marker, the copied file" \
  test "$(head -3 "$WORK/run.log")" = "$(printf '0\ninstalled 1.0-1\nhello from the recipe')"
check "inside: /dev/fuse exists and opens" grep -qx fuse-opened "$WORK/run.log"
check "inside: the Bind= from the recipe" grep -qx 'data from the host' "$WORK/run.log"
check "inside: the veth host0 from VirtualEthernet=yes" grep -qx 1 "$WORK/run.log"
check "inside: root is the host's UID $B (the Docker machine is user-namespaced)" grep -qx "uid_map 0 $B 65536" "$WORK/run.log"

# --- PrivateUsers=pick: the tree is shifted at build time, nspawn must not chown again ---
N2=mkmus$$
printf '[Machine]\nName=%s\n[Bootstrap]\nDistribution=arch\nMirror=file://%s/repo/$repo/os/$arch\nRepositories=core extra\nPackages=base-test scripted\nKeyring=%s/keyring\n[Exec]\nPrivateUsers=pick\n' \
  "$N2" "$FX" "$FX" >"$WORK/$N2.recipe"
"$MKMACHINE" --host-root "$HOST" --cache-dir "$WORK/cache" "$WORK/$N2.recipe" >"$WORK/b2.log" 2>&1
check "PrivateUsers=pick: the build succeeds" test $? -eq 0
R2=$M/$N2
base=$(sed -n 's/^PrivateUsers=\([0-9][0-9]*\).*/\1/p' "$HOST/etc/systemd/nspawn/$N2.nspawn")
check "PrivateUsers=pick: a numeric base in NAME.nspawn" test -n "$base"
check "PrivateUsers=pick: the tree is owned by the base" test "$(stat -c %u "$R2/usr/bin/busybox")" = "$base"
check "PrivateUsers=pick: nspawn is told not to chown again" \
  grep -qE '^PrivateUsers(Ownership=off|Chown=no)$' "$HOST/etc/systemd/nspawn/$N2.nspawn"
"$MKMACHINE" -q --host-root "$WORK/hostb" --cache-dir "$WORK/cache" "$WORK/$N2.recipe" >/dev/null 2>&1
check "PrivateUsers=pick: the same base on another build" \
  test "$(sed -n 's/^PrivateUsers=\([0-9][0-9]*\).*/\1/p' "$WORK/hostb/etc/systemd/nspawn/$N2.nspawn")" = "$base"
stamp=$(stat -c %Z "$R2/usr/bin/busybox")
run_machine "$N2" "$R2" /usr/bin/sh -c 'id -u; stat -c %u /usr/bin/busybox; cat /var/lib/scripted.marker' >"$WORK/run2.log"
check "PrivateUsers=pick: starts with user namespacing on the first try" test $? -eq 0
check "PrivateUsers=pick: inside, root owns the files" test "$(head -2 "$WORK/run2.log")" = "$(printf '0\n0')"
check "PrivateUsers=pick: nspawn did not chown the tree again" test "$(stat -c %Z "$R2/usr/bin/busybox")" = "$stamp"
finish
