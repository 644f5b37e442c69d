#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The hooks' output in force: small busybox machines get their hooks run (hooks_apply through a
# tiny driver linked against libmkm.a, as build.c calls it) and their host files written under
# a temporary host root; then the real systemd-nspawn starts each tree with the generated
# NAME.nspawn as a trusted settings file (/run/systemd/nspawn/NAME.nspawn, which nspawn trusts
# like /etc/systemd/nspawn/) and runs commands inside:
#   - Fuse=yes: /dev/fuse is a character device inside and opens (on this host's systemd, which
#     is older than v257, only thanks to the generated Bind=/dev/fuse); without Fuse= it is absent;
#   - PrivateUsers=BASE: the tree is owned by BASE on the host and by root inside, `id` works,
#     the setuid bit survived, and nspawn starts with user namespacing on the first try (no chown).
# PID 1 here is not systemd (REFERENCE.md), hence --register=no --keep-unit.
source "$(dirname "$0")/../tools/it-lib.sh"

command -v systemd-nspawn >/dev/null || skip "systemd-nspawn is missing (Debian: systemd-container)"
[ -x /bin/busybox ] || skip "busybox-static is missing"
[ "$(id -u)" -eq 0 ] || skip "needs root to run systemd-nspawn"
BUILD=${BUILD:-$TOP/build}
[ -f "$BUILD/libmkm.a" ] || skip "no $BUILD/libmkm.a (run make first)"

# ---- the driver: recipe + tree + host root -> hooks_apply + hooks_write_host_files --------------
cat >"$WORK/driver.c" <<'EOF'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ctx.h"
#include "hooks.h"
#include "hostinfo.h"
#include "recipe.h"
#include "util/err.h"
static void ev(void *u, const struct mkm_event *e) {
        (void)u;
        if (e->type == MKM_EV_LOG && e->level <= MKM_LOG_INFO)
                fprintf(stderr, "%s: %s\n", e->level == MKM_LOG_WARNING ? "warning" : "info", e->text);
}
int main(int argc, char **argv) {
        if (argc != 4) return 2;
        struct mkm_ctx ctx = { .host_root = argv[3], .source_date_epoch = 1700000000, .events = { .fn = ev } };
        struct mkm_err err = {};
        struct recipe *r = NULL;
        if (recipe_load(&ctx, argv[1], &r, &err) < 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
        int rootfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        unsigned v = 0;
        struct host_files hf = {};
        ctx.host_root = "/";                    /* the real host's systemd decides what to emit */
        hostinfo_systemd_version(&ctx, &v);
        hooks_precheck(&ctx, r, NULL);         /* against the real host too (modules, /dev/fuse) */
        ctx.host_root = argv[3];
        if (rootfd < 0 || hooks_apply(&ctx, r, argv[2], rootfd, v, 1700000000, &hf, &err) < 0 ||
            hooks_write_host_files(&ctx, r->name, &hf, &err) < 0) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
        }
        printf("%u\n", v);
        host_files_done(&hf);
        recipe_free(r);
        return 0;
}
EOF
# shellcheck disable=SC2046
cc ${SANFLAGS:-} -std=c11 -D_GNU_SOURCE -I"$TOP/builder" -o "$WORK/driver" "$WORK/driver.c" "$BUILD/libmkm.a" \
  $(pkg-config --libs libcurl libarchive gpgme libzstd libcrypto libseccomp json-c) -lpthread \
  || { bad "the hooks driver builds against libmkm.a"; finish; exit 1; }

mktree() {  # mktree DIR: a busybox machine
  local t=$1 a
  mkdir -p "$t/bin" "$t/etc" "$t/usr/lib" "$t/root" "$t/tmp"
  cp /bin/busybox "$t/bin/busybox"
  chmod 4755 "$t/bin/busybox"   # setuid, to see it survive the shift
  for a in sh id test ls stat cat echo true head; do ln -s busybox "$t/bin/$a"; done
  printf 'root:x:0:0::/root:/bin/sh\nmastodon:x:991:990::/var/lib/mastodon:/bin/sh\n' >"$t/etc/passwd"
  printf 'root:x:0:\nmastodon:x:990:\n' >"$t/etc/group"
  printf 'ID=mkmachine-test\nNAME="mkmachine test"\n' >"$t/usr/lib/os-release"
}

NSPAWN_DIR=/run/systemd/nspawn
mkdir -p "$NSPAWN_DIR"
run_machine() {  # run_machine NAME CMD...: systemd-nspawn with the generated NAME.nspawn in force
  local name=$1; shift
  cp "$WORK/host/etc/systemd/nspawn/$name.nspawn" "$NSPAWN_DIR/$name.nspawn"
  CLEANUP+=("rm -f '$NSPAWN_DIR/$name.nspawn'")
  timeout 120 systemd-nspawn --register=no --keep-unit -q -M "$name" -D "$WORK/machines/$name" \
    --settings=trusted "$@" 2>&1 | grep -v '^Attempted to remove disk file system'
  return "${PIPESTATUS[0]}"
}

mkdir -p "$WORK/host" "$WORK/machines" "$WORK/recipes/files"
echo 'hello from the recipe' >"$WORK/recipes/files/motd"
HOST_FUSE_MODE=$(stat -c %a /dev/fuse 2>/dev/null || echo none)

# ---- machine 1: Fuse=yes, no user namespace -------------------------------------------------
N1=mkmit-fuse-$$
cat >"$WORK/recipes/$N1.recipe" <<EOF
[Machine]
Name=$N1
[Bootstrap]
Distribution=arch
[Hooks]
Fuse=yes
Copy=files/motd:/etc/motd:0640:mastodon
[Exec]
PrivateUsers=no
EOF
mktree "$WORK/machines/$N1"
if V=$("$WORK/driver" "$WORK/recipes/$N1.recipe" "$WORK/machines/$N1" "$WORK/host" 2>"$WORK/driver1.err"); then
  ok "hooks applied to $N1 (host systemd ${V:-unknown})"
else
  bad "hooks applied to $N1"; cat "$WORK/driver1.err"
fi
check "$N1.nspawn written" test -f "$WORK/host/etc/systemd/nspawn/$N1.nspawn"
check "modules-load.d lists fuse" contains "$WORK/host/etc/modules-load.d/mkmachine-$N1.conf" fuse
if [ "${V:-0}" -ge 257 ] 2>/dev/null; then
  check "v$V: no Bind=/dev/fuse needed" bash -c "! grep -q 'Bind=/dev/fuse' '$WORK/host/etc/systemd/nspawn/$N1.nspawn'"
else
  check "v${V:-unknown}: Bind=/dev/fuse in $N1.nspawn" contains "$WORK/host/etc/systemd/nspawn/$N1.nspawn" "Bind=/dev/fuse"
  check "v${V:-unknown}: DeviceAllow in the drop-in" \
    contains "$WORK/host/etc/systemd/system/systemd-nspawn@$N1.service.d/mkmachine.conf" "DeviceAllow=/dev/fuse rwm"
  check "v${V:-unknown}: tmpfiles rule in the tree" \
    contains "$WORK/machines/$N1/etc/tmpfiles.d/mkmachine-fuse.conf" "c /dev/fuse 0666 root root - 10:229"
fi
if run_machine "$N1" /bin/sh -c 'id -u; test -c /dev/fuse && echo fuse-is-char; exec 3<>/dev/fuse && echo fuse-opened; stat -c "%U:%G %a" /etc/motd; cat /etc/motd' >"$WORK/run1.out"; then
  ok "$N1 runs under systemd-nspawn"
else
  bad "$N1 runs under systemd-nspawn"
fi
sed 's/^/    | /' "$WORK/run1.out"
tr -d '\r' <"$WORK/run1.out" >"$WORK/run1.txt" && mv "$WORK/run1.txt" "$WORK/run1.out"
check "$N1: id -u is 0" grep -qx 0 "$WORK/run1.out"
check "$N1: /dev/fuse is a character device inside" contains "$WORK/run1.out" "fuse-is-char"
check "$N1: /dev/fuse opens inside" contains "$WORK/run1.out" "fuse-opened"
check "$N1: Copy= owner from the tree's passwd" contains "$WORK/run1.out" "mastodon:mastodon 640"
check "$N1: Copy= content" contains "$WORK/run1.out" "hello from the recipe"

# ---- machine 2: no Fuse=: /dev/fuse absent on systemd < 257 -----------------------------------
N2=mkmit-plain-$$
printf '[Machine]\nName=%s\n[Bootstrap]\nDistribution=arch\n[Exec]\nPrivateUsers=no\nHostname=plain\n' "$N2" >"$WORK/recipes/$N2.recipe"
mktree "$WORK/machines/$N2"
"$WORK/driver" "$WORK/recipes/$N2.recipe" "$WORK/machines/$N2" "$WORK/host" >/dev/null 2>"$WORK/driver2.err" \
  || { bad "hooks applied to $N2"; cat "$WORK/driver2.err"; }
run_machine "$N2" /bin/sh -c 'hostname 2>/dev/null || cat /proc/sys/kernel/hostname; test -e /dev/fuse && echo fuse-present || echo fuse-absent' >"$WORK/run2.out" \
  || { bad "$N2 runs"; cat "$WORK/run2.out"; }
check "$N2: Hostname= passed through" contains "$WORK/run2.out" "plain"
if [ "${V:-0}" -lt 257 ] 2>/dev/null; then
  check "$N2: without Fuse=yes there is no /dev/fuse (systemd ${V:-unknown})" contains "$WORK/run2.out" "fuse-absent"
fi

# ---- machine 3: PrivateUsers=BASE: ownership shifted at build time ------------------------------
N3=mkmit-userns-$$
BASE=1048576
cat >"$WORK/recipes/$N3.recipe" <<EOF
[Machine]
Name=$N3
[Bootstrap]
Distribution=arch
[Hooks]
Fuse=yes
Run=echo made-by-run > /root/run.txt
[Exec]
PrivateUsers=$BASE
EOF
mktree "$WORK/machines/$N3"
"$WORK/driver" "$WORK/recipes/$N3.recipe" "$WORK/machines/$N3" "$WORK/host" >/dev/null 2>"$WORK/driver3.err" \
  && ok "hooks applied to $N3" || { bad "hooks applied to $N3"; cat "$WORK/driver3.err"; }
check "$N3.nspawn: PrivateUsers=$BASE" contains "$WORK/host/etc/systemd/nspawn/$N3.nspawn" "PrivateUsers=$BASE"
check "$N3.nspawn: ownership left alone" grep -qE '^PrivateUsers(Ownership=off|Chown=no)$' "$WORK/host/etc/systemd/nspawn/$N3.nspawn"
check "$N3: the tree is owned by $BASE on the host" test "$(stat -c %u:%g "$WORK/machines/$N3/bin/busybox")" = "$BASE:$BASE"
check "$N3: what Run= wrote is shifted too" test "$(stat -c %u "$WORK/machines/$N3/root/run.txt")" = "$BASE"
check "$N3: the setuid bit survived" test "$(stat -c %a "$WORK/machines/$N3/bin/busybox")" = 4755
if [ "$HOST_FUSE_MODE" != 666 ]; then
  check "$N3: the precheck warns about the host's /dev/fuse mode $HOST_FUSE_MODE" contains "$WORK/driver3.err" "cannot open it"
fi
stamp_before=$(stat -c %Z "$WORK/machines/$N3/bin/busybox")
if run_machine "$N3" /bin/sh -c 'id; stat -c "%u:%g %a" /bin/busybox /root/run.txt; test -c /dev/fuse && echo fuse-is-char' >"$WORK/run3.out"; then
  ok "$N3 starts with user namespacing on the first try"
else
  bad "$N3 starts with user namespacing"; cat "$WORK/run3.out"
fi
check "$N3: id works inside" contains "$WORK/run3.out" "uid=0(root) gid=0(root)"
check "$N3: files are root's inside" contains "$WORK/run3.out" "0:0 4755"
check "$N3: /dev/fuse is there" contains "$WORK/run3.out" "fuse-is-char"
check "$N3: nspawn did not chown the tree again" test "$(stat -c %Z "$WORK/machines/$N3/bin/busybox")" = "$stamp_before"

finish
