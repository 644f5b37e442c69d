#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Host privileges (issue 10), with the Arch fixture: check lists what every hook grants on the host
# with where it comes from (plain and --json); a host policy (HOST/etc/mkmachine/policy.conf)
# refuses each kind of excess before anything is fetched (build, check, plan), naming the recipe key, its file:line
# and the policy line; a build of a deployed machine whose recipe asks for more (Bind=/) is
# refused without --allow-new-privileges and goes through with it; rebuild NAME on a host that
# needs more for the same recipe (Fuse= on systemd < 257) likewise; --json carries the same.
source "$(dirname "$0")/../tools/it-lib.sh"
command -v python3 >/dev/null || skip "skipped: python3 missing (make deps)"

arch_fixture
start_httpd "$FX/repo"
HTTP="http://127.0.0.1:$HTTPD_PORT"
cd "$WORK" || exit 1
HOST=$WORK/host
POLICY=$HOST/etc/mkmachine/policy.conf
mkdir -p "$HOST/etc/mkmachine"

recipe() {  # recipe FILE [EXTRA LINES...]: a small machine; the extra lines go at the end
  local f=$1; shift
  {
    printf '[Machine]\nName=privtest\n\n[Bootstrap]\nDistribution=arch\nMirror=%s\nRepositories=core\nPackages=base-test\nKeyring=%s\n' \
      "$HTTP/\$repo/os/\$arch" "$FX/keyring"
    printf '%s\n' "$@"
  } >"$f"
}
json_get() {  # json_get FILE PYTHON-EXPR(j)
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(v if not isinstance(v,(dict,list)) else json.dumps(v, sort_keys=True))' "$1" "$2"
}
mk() { "$MKMACHINE" --host-root "$HOST" --cache-dir "$WORK/cache" "$@"; }
requests() { [ -s "$WORK/httpd.log" ] && wc -l <"$WORK/httpd.log" || echo 0; }

# --- check lists each hook's grants, with where they come from ------------------------------------
recipe hooks.recipe '' '[Hooks]' 'Fuse=yes' 'DockerStorageDriver=overlay2' 'DockerPrivileged=yes' '' '[Files]' \
  'Bind=/srv/privtest:/data' 'BindReadOnly=/etc/ssl:/etc/ssl'
# Lines: Fuse= 12, DockerStorageDriver= 13, DockerPrivileged= 14, Bind= 17, BindReadOnly= 18.
DP="[Hooks] DockerStorageDriver=overlay2 with DockerPrivileged=yes at $WORK/hooks.recipe:14"
mk check "$WORK/hooks.recipe" --systemd-version 250 >c.out 2>c.err
check "check exits 0 without a policy (rc $?)" test $? -eq 0
check "check lists the privileges as comment lines" contains c.out "# privileges of machine 'privtest' on the host:"
check "... DockerPrivileged's Capability=all, credited to its key and line" \
  contains c.out "#   [Exec] Capability=all: every capability; added by $DP"
check "... its PrivateUsers=no" \
  contains c.out "#   [Exec] PrivateUsers=no: a privileged machine (no user namespace: its root is the host's root); added by $DP"
check "... its system calls" contains c.out "#   [Exec] SystemCallFilter=@keyring bpf: the system call bpf; added by $DP"
check "... the overlay module" \
  contains c.out "#   modules-load.d: overlay: the host kernel module overlay, loaded at boot; added by $DP"
check "... and why Docker needs them" contains c.out "#   why DockerStorageDriver=overlay2 with DockerPrivileged=yes: DockerPrivileged=yes makes a privileged container"
check "... Fuse's /dev/fuse bind (systemd 250)" \
  contains c.out "#   [Files] Bind=/dev/fuse: the host device /dev/fuse; added by [Hooks] Fuse=yes at $WORK/hooks.recipe:12"
check "... Fuse's DeviceAllow= in the drop-in" \
  contains c.out "#   [Service] DeviceAllow=/dev/fuse rwm (drop-in): the host device /dev/fuse; added by [Hooks] Fuse=yes at $WORK/hooks.recipe:12"
check "... Fuse's module" contains c.out "#   modules-load.d: fuse: the host kernel module fuse, loaded at boot; added by [Hooks] Fuse=yes"
check "... the recipe's own binds with their lines" bash -c "
  grep -qxF '#   [Files] Bind=/srv/privtest:/data: the host path /srv/privtest, read-write; $WORK/hooks.recipe:17' c.out &&
  grep -qxF '#   [Files] BindReadOnly=/etc/ssl:/etc/ssl: the host path /etc/ssl, read-only; $WORK/hooks.recipe:18' c.out"
check "... and says there is no policy" contains c.out "# policy: none"
check "check prints nothing on stderr" test ! -s c.err
mk check "$WORK/hooks.recipe" --systemd-version 257 >c257.out 2>&1
check "on systemd 257 Fuse= grants the module only (nspawn gives /dev/fuse itself)" bash -c \
  "grep -q 'modules-load.d: fuse' c257.out && ! grep -q 'host device /dev/fuse' c257.out"
# Docker's default form: a user-namespaced machine; the keyring calls and the module are all.
recipe docker.recipe '' '[Hooks]' 'DockerStorageDriver=overlay2'
mk check "$WORK/docker.recipe" >d.out 2>&1
check "Docker's default grants the keyring calls, credited to its line" \
  contains d.out "#   [Exec] SystemCallFilter=@keyring: the system call group @keyring; added by [Hooks] DockerStorageDriver=overlay2 at $WORK/docker.recipe:12"
check "... and the overlay module" contains d.out "#   modules-load.d: overlay: the host kernel module overlay, loaded at boot; added by [Hooks] DockerStorageDriver=overlay2 at $WORK/docker.recipe:12"
check "... no capability and no privileged machine" bash -c "! grep -qE '^#   \[Exec\] (Capability=|PrivateUsers=no)' d.out"
check "... and says why" contains d.out "#   why DockerStorageDriver=overlay2: Docker runs in a user-namespaced machine"

mk --json check "$WORK/hooks.recipe" --systemd-version 250 >c.json 2>/dev/null
# (A host with cgroup v1 controllers adds the drop-in's Environment=; the rest is the same everywhere.)
check "check --json carries the grants" test "$(json_get c.json 'len([g for g in j["privileges"]["grants"] if g["kind"]!="service"])')" -eq 10
check "... each with kind, value, setting, key, file, line and the hook" test \
  "$(json_get c.json '[[g[k] for k in ("value","host_file","setting","key","file","line","added_by","allowed","new")] for g in j["privileges"]["grants"] if g["kind"]=="capability"]')" = \
  "[[\"all\", \"nspawn\", \"[Exec] Capability=all\", \"[Hooks] DockerPrivileged=\", \"$WORK/hooks.recipe\", 14, \"DockerStorageDriver=overlay2 with DockerPrivileged=yes (the machine's root is the host's root)\", true, false]]"
check "... and why the hook needs it" bash -c "python3 -c 'import json,sys; j=json.load(open(\"c.json\")); sys.exit(0 if all(g[\"why\"] and \"privileged container\" in g[\"why\"] for g in j[\"privileges\"][\"grants\"] if g[\"added_by\"] and \"DockerPrivileged=yes\" in g[\"added_by\"]) else 1)'"
check "... the same kinds as the plain listing" test \
  "$(json_get c.json '" ".join(sorted(set(g["kind"] for g in j["privileges"]["grants"] if g["kind"]!="service")))')" = \
  "bind capability device module privileged syscall"
check "... and the recipe's own bind read-only with its line" test \
  "$(json_get c.json '[(g["value"],g["read_only"],g["line"],g["added_by"]) for g in j["privileges"]["grants"] if g["setting"].startswith("[Files] BindReadOnly")]')" = \
  '[["/etc/ssl", true, 18, null]]'

# --- a policy refuses each kind of excess, before anything is fetched --------------------------------
n0=$(requests)
refused() {  # refused WHAT POLICY-LINE-NEEDLE RECIPE-NEEDLE [RECIPE LINES...]: a build is refused
  local what=$1 pneedle=$2 rneedle=$3; shift 3
  recipe ex.recipe "$@"
  mk build "$WORK/ex.recipe" --systemd-version 250 >ex.out 2>ex.err
  local rc=$?
  check "$what: the build is refused with exit 1 (rc $rc)" test $rc -eq 1
  check "$what: naming the recipe's key and line" contains ex.err "$rneedle"
  check "$what: naming the policy line" contains ex.err "$pneedle"
}
cat >"$POLICY" <<'EOF'
# Only data under /srv, fuse, nothing privileged.
[Recipes]
AllowBindSources=/srv/
AllowDevices=/dev/fuse
AllowModules=fuse
AllowCapabilities=CAP_NET_ADMIN
AllowSystemCallFilter=@keyring
AllowPrivileged=no
AllowHostNetwork=no
EOF
refused "PrivateUsers=no" "the policy $POLICY:8 forbids privileged machines (AllowPrivileged=no)" \
  "$WORK/ex.recipe:12: [Exec] PrivateUsers=no, a privileged machine" '' '[Exec]' 'PrivateUsers=no'
refused "PrivateUsers=identity" "the policy $POLICY:8 forbids privileged machines" \
  "$WORK/ex.recipe:12: [Exec] PrivateUsers=identity, a privileged machine (its root is UID 0 on the host)" '' '[Exec]' 'PrivateUsers=identity'
refused "Capability=" "the policy $POLICY:6 allows the capabilities CAP_NET_ADMIN only (AllowCapabilities=)" \
  "$WORK/ex.recipe:12: [Exec] Capability=CAP_NET_ADMIN CAP_SYS_ADMIN, the capability CAP_SYS_ADMIN" \
  '' '[Exec]' 'Capability=CAP_NET_ADMIN CAP_SYS_ADMIN'
check "... but not CAP_NET_ADMIN, which the policy allows" bash -c "! grep -q 'error: .*the capability CAP_NET_ADMIN' ex.err"
refused "AmbientCapability=" "the policy $POLICY:6 allows the capabilities CAP_NET_ADMIN only" \
  "$WORK/ex.recipe:12: [Exec] AmbientCapability=cap_sys_module, the capability CAP_SYS_MODULE" '' '[Exec]' 'AmbientCapability=cap_sys_module'
refused "SystemCallFilter=" "the policy $POLICY:7 allows the system calls @keyring only (AllowSystemCallFilter=)" \
  "$WORK/ex.recipe:12: [Exec] SystemCallFilter=bpf, the system call bpf" '' '[Exec]' 'SystemCallFilter=bpf'
refused "Bind=/" "the policy $POLICY:3 allows the bind sources /srv/ only (AllowBindSources=)" \
  "$WORK/ex.recipe:12: [Files] Bind=/:/host, the host path /, read-write" '' '[Files]' 'Bind=/:/host'
refused "a bind source beside an allowed one (/srvx is not under /srv)" "the policy $POLICY:3 allows the bind sources /srv/ only" \
  "$WORK/ex.recipe:12: [Files] BindReadOnly=/srvx/a:/a, the host path /srvx/a, read-only" '' '[Files]' 'BindReadOnly=/srvx/a:/a'
refused "a bind source climbing out with .." "the policy $POLICY:3 allows the bind sources /srv/ only" \
  "$WORK/ex.recipe:12: [Files] Bind=/srv/../etc:/x, the host path /srv/../etc" '' '[Files]' 'Bind=/srv/../etc:/x'
refused "a '+' source (resolved on the host: '..' climbs out of the tree)" "the policy $POLICY:3 allows the bind sources /srv/ only" \
  "$WORK/ex.recipe:12: [Files] BindReadOnly=+/../../../../etc:/mnt, any host path, read-only" '' '[Files]' 'BindReadOnly=+/../../../../etc:/mnt'
refused "Overlay= sources" "the policy $POLICY:3 allows the bind sources /srv/ only" \
  "$WORK/ex.recipe:12: [Files] Overlay=/srv/low:/var/lib/up:/data, the host path /var/lib/up, read-write" '' '[Files]' 'Overlay=/srv/low:/var/lib/up:/data'
check "... but not the allowed lower layer" bash -c "! grep -q 'error: .*the host path /srv/low' ex.err"
refused "BindUser=" "the policy $POLICY allows no host users (no AllowBindUsers=)" \
  "$WORK/ex.recipe:12: [Files] BindUser=root, the host user root" '' '[Files]' 'BindUser=root'
refused "a device bind" "the policy $POLICY:4 allows the devices /dev/fuse only (AllowDevices=)" \
  "$WORK/ex.recipe:12: [Files] Bind=/dev/net/tun, the host device /dev/net/tun" '' '[Files]' 'Bind=/dev/net/tun'
refused "the host's network" "the policy $POLICY:9 forbids the host's network (AllowHostNetwork=no)" \
  "$WORK/ex.recipe:12: [Network] VirtualEthernet=no, the host's network (no private network)" '' '[Network]' 'VirtualEthernet=no'
refused "a host bridge" "the policy $POLICY does not allow host interfaces (no AllowHostInterfaces=yes)" \
  "$WORK/ex.recipe:12: [Network] Bridge=br0, a host network interface (Bridge=br0)" '' '[Network]' 'Bridge=br0'
refused "Port=" "the policy $POLICY does not allow forwarded host ports (no AllowPorts=yes)" \
  "$WORK/ex.recipe:13: [Network] Port=tcp:80:8080, a host port forwarded into the machine" '' '[Network]' 'VirtualEthernet=yes' 'Port=tcp:80:8080'
refused "what a hook adds (DockerPrivileged=yes's Capability=all)" "the policy $POLICY:6 allows the capabilities CAP_NET_ADMIN only" \
  "$WORK/ex.recipe:13: [Hooks] DockerStorageDriver=overlay2 with DockerPrivileged=yes adds [Exec] Capability=all, every capability" \
  '' '[Hooks]' 'DockerStorageDriver=overlay2' 'DockerPrivileged=yes'
check "... and its PrivateUsers=no" contains ex.err \
  "$WORK/ex.recipe:13: [Hooks] DockerStorageDriver=overlay2 with DockerPrivileged=yes adds [Exec] PrivateUsers=no, a privileged machine"
check "... and its module" contains ex.err \
  "$WORK/ex.recipe:13: [Hooks] DockerStorageDriver=overlay2 with DockerPrivileged=yes adds modules-load.d: overlay, the host kernel module overlay, loaded at boot: the policy $POLICY:5 allows the kernel modules fuse only (AllowModules=)"
check "... but not its @keyring, which the policy allows" bash -c "! grep -q 'error: .*system call group @keyring' ex.err"
check "stdout stays empty" test ! -s ex.out
check "the refused builds fetched nothing (no request reached the mirror)" test "$(requests)" -eq "$n0"
check "... and made no machine" test ! -e "$HOST/var/lib/machines/privtest"

recipe ex.recipe '' '[Exec]' 'Capability=CAP_SYS_ADMIN'
mk --json build "$WORK/ex.recipe" >ex.json 2>/dev/null
check "--json: the refusal is one error document with exit 1" test "$(json_get ex.json 'j["error"]["exit"]')" -eq 1
check "--json: it names the recipe line and the policy line" bash -c \
  "python3 -c 'import json,sys; m=json.load(open(\"ex.json\"))[\"error\"][\"message\"]; sys.exit(0 if \"$WORK/ex.recipe:12: [Exec] Capability=CAP_SYS_ADMIN\" in m and \"$POLICY:6\" in m else 1)'"
check "--json: the grants come with it, the refused one marked" test \
  "$(json_get ex.json '[(g["value"], g["allowed"], g["line"]) for g in j["error"]["privileges"]["grants"]]')" = '[["CAP_SYS_ADMIN", false, 12]]'
mk check "$WORK/ex.recipe" >exc.out 2>exc.err
check "check reports the same refusal (exit 1)" test $? -eq 1
check "... with the recipe line and the policy line" contains exc.err "$WORK/ex.recipe:12: [Exec] Capability=CAP_SYS_ADMIN, the capability CAP_SYS_ADMIN: the policy $POLICY:6"
check "... and marks it in the listing" contains exc.out "#   REFUSED [Exec] Capability=CAP_SYS_ADMIN"
n2=$(requests)
mk plan "$WORK/ex.recipe" >pl.out 2>pl.err
check "plan refuses it too (exit 1)" test $? -eq 1
check "... with the same message" contains pl.err "$WORK/ex.recipe:12: [Exec] Capability=CAP_SYS_ADMIN, the capability CAP_SYS_ADMIN: the policy $POLICY:6"
check "... before it fetches any metadata" test "$(requests)" -eq "$n2"

# Docker's default form fits a policy that allows no privileged machine; DockerPrivileged=yes does not.
printf '[Recipes]\nAllowSystemCallFilter=@keyring\nAllowModules=overlay\nAllowServiceSettings=Environment\nAllowPrivileged=no\n' >"$POLICY"
mk check "$WORK/docker.recipe" >dp.out 2>dp.err
check "Docker's user-namespaced default is within a policy without privileged machines (rc $?)" test $? -eq 0
recipe dpriv.recipe '' '[Hooks]' 'DockerStorageDriver=overlay2' 'DockerPrivileged=yes'
mk check "$WORK/dpriv.recipe" >dp.out 2>dp.err
check "... DockerPrivileged=yes is refused (rc $?)" test $? -eq 1
check "... naming its line and the policy's" contains dp.err \
  "$WORK/dpriv.recipe:13: [Hooks] DockerStorageDriver=overlay2 with DockerPrivileged=yes adds [Exec] PrivateUsers=no, a privileged machine (no user namespace: its root is the host's root): the policy $POLICY:5 forbids privileged machines (AllowPrivileged=no)"

# A bad policy is an error naming its line.
printf '[Recipes]\nAllowBindSources=srv\nAllowEverything=yes\nAllowPrivileged=maybe\n' >"$POLICY"
mk check "$WORK/ex.recipe" >bad.out 2>bad.err
check "a bad policy exits 2 (rc $?)" test $? -eq 2
check "... naming a relative bind source with its line" contains bad.err "$POLICY:2: [Recipes] AllowBindSources=: expected absolute paths"
check "... an unknown key with its line" contains bad.err "$POLICY:3: [Recipes] AllowEverything=: unknown key"
check "... a bad boolean with its line" contains bad.err "$POLICY:4: [Recipes] AllowPrivileged=: expected yes or no, got 'maybe'"
mk build "$WORK/ex.recipe" >bad.out 2>bad.err
check "a build with a bad policy exits 2 too" test $? -eq 2

# --- within the policy, a build goes through and lists what it grants ------------------------------
cat >"$POLICY" <<'EOF'
[Recipes]
AllowBindSources=/srv
AllowModules=fuse
EOF
recipe v1.recipe '' '[Hooks]' 'Fuse=yes' '' '[Files]' 'Bind=/srv/privtest:/data'
mk build "$WORK/v1.recipe" --systemd-version 257 >v1.out 2>v1.log
rc=$?
check "a build within the policy goes through (rc $rc)" test $rc -eq 0
[ $rc -eq 0 ] || sed 's/^/    | /' v1.log | tail -20
check "it lists the privileges before anything is fetched" bash -c \
  "grep -n -m1 \"privileges of machine 'privtest'\" v1.log | cut -d: -f1 >a; grep -n -m1 '^:: synchronizing' v1.log | cut -d: -f1 >b; [ -s a ] && [ -s b ] && [ \$(cat a) -lt \$(cat b) ]"
check "... with the bind and its line" contains v1.log "  [Files] Bind=/srv/privtest:/data: the host path /srv/privtest, read-write; $WORK/v1.recipe:15"
check "... and the policy it was judged by" contains v1.log "policy: $POLICY (0 grants beyond it)"
rm -f "$POLICY"

# A source under a bind the machine had, that leads elsewhere through a symlink (a machine can make
# one in its read-write bind), is new: judged by where it leads.
mkdir -p "$HOST/srv/privtest" && ln -sfn / "$HOST/srv/privtest/root"
recipe v1b.recipe '' '[Hooks]' 'Fuse=yes' '' '[Files]' 'Bind=/srv/privtest:/data' 'Bind=/srv/privtest/root:/host'
mk build "$WORK/v1b.recipe" --systemd-version 257 >v1b.out 2>v1b.err
rc=$?
check "a bind under the old one that leads to / through a symlink is new: refused (rc $rc)" test $rc -eq 1
check "... naming it" contains v1b.err "new: [Files] Bind=/srv/privtest/root:/host"
rm -f "$HOST/srv/privtest/root"

# --- a rebuild that asks for more than the deployed generation was granted ---------------------------
recipe v2.recipe '' '[Hooks]' 'Fuse=yes' '' '[Files]' 'Bind=/srv/privtest:/data' 'Bind=/:/host'
n1=$(requests)
mk build "$WORK/v2.recipe" --systemd-version 257 >v2.out 2>v2.err
rc=$?
check "a build adding Bind=/ to the deployed machine is refused (rc $rc)" test $rc -eq 1
check "... listing the new privilege with its line" \
  contains v2.err "mkmachine: error: new: [Files] Bind=/:/host: the host path /, read-write; $WORK/v2.recipe:16"
check "... saying what grants it" contains v2.err "that its deployed generation 1 was not granted (--allow-new-privileges grants them)"
check "... not listing the bind it had" bash -c "! grep -q 'new: \[Files\] Bind=/srv/privtest' v2.err"
check "... marking it in the listing" contains v2.err "  NEW [Files] Bind=/:/host"
check "... before anything was fetched" test "$(requests)" -eq "$n1"
check "... and the machine is still generation 1" test "$(basename "$(live_gen "$HOST" privtest)")" = 1
mk --json build "$WORK/v2.recipe" --systemd-version 257 >v2.json 2>/dev/null
check "--json: the refusal carries the grants, the new one marked" test \
  "$(json_get v2.json '[(g["value"], g["new"]) for g in j["error"]["privileges"]["grants"] if g["kind"]=="bind"]')" = \
  '[["/srv/privtest", false], ["/", true]]'
check "--json: ... and the deployed generation" test "$(json_get v2.json 'j["error"]["privileges"]["deployed_generation"]')" = 1
mk --json build "$WORK/v2.recipe" --systemd-version 257 --allow-new-privileges >v2ok.json 2>v2ok.err
rc=$?
check "with --allow-new-privileges it goes through (rc $rc)" test $rc -eq 0
[ $rc -eq 0 ] || sed 's/^/    | /' v2ok.err | tail -20
check "--json: the result lists the grants, Bind=/ new" test \
  "$(json_get v2ok.json '[(g["value"], g["new"]) for g in j["privileges"]["grants"] if g["kind"]=="bind"]')" = \
  '[["/srv/privtest", false], ["/", true]]'
check "the .nspawn has it now" grep -qx 'Bind=/:/host' "$HOST/etc/systemd/nspawn/privtest.nspawn"
mk build "$WORK/v2.recipe" --systemd-version 257 >v3.out 2>v3.err
check "building the same recipe again needs no flag (nothing new)" test $? -eq 0
check "... and says so" contains v3.err "deployed generation 2: 0 of these are new"

# rebuild NAME on a host that needs more for the same recipe: Fuse= on systemd 250 binds /dev/fuse.
mk rebuild privtest --systemd-version 250 >r.out 2>r.err
rc=$?
check "rebuild NAME that would newly grant /dev/fuse is refused (rc $rc)" test $rc -eq 1
check "... naming the device and the hook" contains r.err "new: [Files] Bind=/dev/fuse: the host device /dev/fuse; added by [Hooks] Fuse=yes"
check "... and the drop-in's DeviceAllow=" contains r.err "new: [Service] DeviceAllow=/dev/fuse rwm (drop-in)"
mk rebuild privtest --systemd-version 250 --allow-new-privileges >r.out 2>r.err
check "... and goes through with --allow-new-privileges" test $? -eq 0
check "the drop-in is there now" grep -qx 'DeviceAllow=/dev/fuse rwm' \
  "$HOST/etc/systemd/system/systemd-nspawn@privtest.service.d/mkmachine.conf"

# --- UIDs shared with another machine (found by a review: listed as nothing) ------------------------
recipe own.recipe '' '[Exec]' 'PrivateUsers=pick'
sed -i 's/^Name=privtest$/Name=uidown/' own.recipe
mk build "$WORK/own.recipe" >own.out 2>own.err
rc=$?
check "a machine with PrivateUsers=pick builds (rc $rc)" test $rc -eq 0
[ $rc -eq 0 ] || sed 's/^/    | /' own.err | tail -20
base=$(sed -n 's/^PrivateUsers=\([0-9]*\)$/\1/p' "$HOST/etc/systemd/nspawn/uidown.nspawn")
check "... and its .nspawn has its base ($base)" test -n "$base"
recipe thief.recipe '' '[Exec]' "PrivateUsers=$((base + 4096)):65536"
sed -i 's/^Name=privtest$/Name=uidthief/' thief.recipe
mk check "$WORK/thief.recipe" >th.out 2>th.err
check "a recipe whose UIDs overlap another machine's checks without a policy (rc $?)" test $? -eq 0
check "... and lists the overlap, naming the machine" contains th.out \
  "#   [Exec] PrivateUsers=$((base + 4096)):65536: a machine whose users are also those of the machine 'uidown' on the host (their UID ranges overlap); $WORK/thief.recipe:12"
recipe wide.recipe '' '[Exec]' 'PrivateUsers=524288:1879048192'
mk check "$WORK/wide.recipe" >wd.out 2>&1
check "... and as sharing the other machine's" contains wd.out \
  "[Exec] PrivateUsers=524288:1879048192: a machine whose users are also those of the machine 'uidown' on the host"
check "a range over the whole container range is listed as host UIDs" contains wd.out \
  "[Exec] PrivateUsers=524288:1879048192: a machine whose users are the host's own (UIDs outside the container range"
printf '[Recipes]\nAllowPrivileged=no\n' >"$POLICY"
mk check "$WORK/thief.recipe" >th.out 2>th.err
check "a policy without privileged machines refuses the overlap (rc $?)" test $? -eq 1
check "... naming the recipe line, the machine and the policy line" contains th.err \
  "$WORK/thief.recipe:12: [Exec] PrivateUsers=$((base + 4096)):65536, a machine whose users are also those of the machine 'uidown' on the host (their UID ranges overlap): the policy $POLICY:2 forbids privileged machines (AllowPrivileged=no)"
mk build "$WORK/thief.recipe" >th.out 2>th.err
check "... and the build too (rc $?), making no machine" bash -c "[ $? -eq 1 ] && [ ! -e '$HOST/var/lib/machines/uidthief' ]"
recipe next.recipe '' '[Exec]' "PrivateUsers=$((base + 65536))"
sed -i 's/^Name=privtest$/Name=uidthief/' next.recipe
mk check "$WORK/next.recipe" >nx.out 2>&1
check "the next slot is within the same policy (rc $?)" test $? -eq 0
mk check "$WORK/own.recipe" >ow.out 2>&1
check "... as is the machine's own recipe (rc $?)" test $? -eq 0
rm -f "$POLICY"

# --- RunNetwork=yes: the build's Run= steps on the host's network (found by a review: not listed) ---
recipe net.recipe '' '[Hooks]' 'Run=true' 'RunNetwork=yes'
sed -i 's/^Name=privtest$/Name=netbuild/' net.recipe
mk check "$WORK/net.recipe" >net.out 2>&1
check "check lists RunNetwork=yes, with its line" contains net.out \
  "#   [Hooks] RunNetwork=yes: the host's network for the Run= commands during the build (its loopback services and abstract unix sockets, and whatever the host reaches); $WORK/net.recipe:13"
mk --json check "$WORK/net.recipe" >net.json 2>/dev/null
check "--json: kind build-network, no host file" test \
  "$(json_get net.json '[(g["kind"], g["host_file"]) for g in j["privileges"]["grants"]]')" = '[["build-network", null]]'
printf '[Recipes]\nAllowHostNetwork=yes\n' >"$POLICY"
n3=$(requests)
mk build "$WORK/net.recipe" >net.out 2>net.err
check "a policy without AllowBuildNetwork=yes refuses it (rc $?)" test $? -eq 1
check "... naming the line and the policy" contains net.err \
  "$WORK/net.recipe:13: [Hooks] RunNetwork=yes, the host's network for the Run= commands during the build (its loopback services and abstract unix sockets, and whatever the host reaches): the policy $POLICY does not allow the host's network during the build (no AllowBuildNetwork=yes)"
check "... before anything was fetched" test "$(requests)" -eq "$n3"
printf '[Recipes]\nAllowBuildNetwork=yes\n' >"$POLICY"
mk build "$WORK/net.recipe" >net.out 2>net.err
rc=$?
check "AllowBuildNetwork=yes lets it build (rc $rc)" test $rc -eq 0
[ $rc -eq 0 ] || sed 's/^/    | /' net.err | tail -20
rm -f "$POLICY"
recipe net2.recipe '' '[Hooks]' 'Run=true'
sed -i 's/^Name=privtest$/Name=netbuild/' net2.recipe
mk build "$WORK/net2.recipe" >net2.out 2>net2.err
check "the deployed generation had it: dropping it is no new grant (rc $?)" test $? -eq 0
mk build "$WORK/net.recipe" >net3.out 2>net3.err
check "... but asking for it again on a rebuild is (rc $?)" test $? -eq 1
check "... naming it" contains net3.err "new: [Hooks] RunNetwork=yes: the host's network for the Run= commands"

finish
