#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Hostile package code against the build sandbox. A small driver linked against libmkm.a runs a
# script in a busybox tree exactly as a build would: as a pacman .INSTALL scriptlet
# (alpm_script_run, as the Arch backend does) and as a Run= command (sandbox_run with the
# recipe's hostname, with and without RunNetwork=), with the build's per-build sandbox cache.
# The script tries to mount, write /proc/sys, load a module, reach a listener on the host's
# loopback, kill and ptrace a `sleep` of the host, read and write host files through
# /proc/self/root, /proc/1/root, a chroot escape, inherited fds (the driver leaks an fd to a host
# directory on purpose) and symlinks in the tree pointing outside, make device nodes, plant
# set-uid copies outside the tree, and reconfigure the network. Each attempt must fail inside,
# and then the host is checked for each effect: the sleep still runs, the listener saw no
# connection, no file appeared outside the tree, hostname, core_pattern, loaded modules and the
# host's lo are unchanged. Last, from the host, the sandboxed process runs as the build's high
# UID (Uid: in /proc/PID/status, its uid_map), not as 0.
source "$(dirname "$0")/../tools/it-lib.sh"
need_root
[ -x /bin/busybox ] || skip "skipped: /bin/busybox missing (busybox-static)"
command -v python3 >/dev/null || skip "skipped: python3 missing (make deps)"
BUILD=${BUILD:-$TOP/build}
[ -f "$BUILD/libmkm.a" ] || skip "skipped: no $BUILD/libmkm.a (run make first)"

# ---- the driver ---------------------------------------------------------------------------------
cat >"$WORK/driver.c" <<'EOF'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ctx.h"
#include "hooks.h"
#include "sandbox.h"
#include "arch/alpm-script.h"
#include "util/err.h"
#include "util/fs.h"
/* The command's output is logged at debug level, one line an event, "LABEL: line". */
static void ev(void *u, const struct mkm_event *e) {
        (void)u;
        if (e->type != MKM_EV_LOG)
                return;
        if (e->level == MKM_LOG_DEBUG) {
                const char *p = strstr(e->text, ": ");
                if (strncmp(e->text, "/bin/sh: ", 9) == 0 && p)
                        printf("%s\n", p + 2);
        } else
                fprintf(stderr, "log: %s\n", e->text);
}
int main(int argc, char **argv) {
        if (argc != 4)
                return 2;
        const char *mode = argv[1], *root = argv[2];
        char *text = NULL;
        size_t len = 0;
        if (fs_read_file_follow_at(AT_FDCWD, argv[3], 1u << 20, &text, &len) < 0)
                return 2;
        /* A host directory left open without O_CLOEXEC, as a careless library might. */
        const char *leak = getenv("HOSTILE_LEAK_DIR");
        if (leak && open(leak, O_RDONLY | O_DIRECTORY) < 0)
                return 2;
        struct mkm_ctx ctx = { .source_date_epoch = 1700000000, .events = { .fn = ev } };
        if (sandbox_cache_new(hooks_sandbox_uid_base("hostile", 0), &ctx.sandbox) < 0)
                return 2;
        struct mkm_err err = {};
        struct sandbox_opts o = { .hostname = "hostile", .source_date_epoch = 1700000000, .timeout_s = 60 };
        int r;
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (strcmp(mode, "scriptlet") == 0) {
                int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                r = alpm_script_run(&ctx, root, rootfd, "hostile", text, len, "post_install", "1.0-1", NULL, &o, &err);
        } else {
                o.network = strcmp(mode, "run-net") == 0;
                char *av[] = { "/bin/sh", "-c", text, NULL };
                r = sandbox_run(&ctx, root, av, &o, NULL, &err);
        }
        if (r < 0)
                fprintf(stderr, "driver: %s\n", err.msg);
        sandbox_cache_free(ctx.sandbox);
        free(text);
        return r < 0 ? 1 : 0;
}
EOF
# shellcheck disable=SC2046
cc ${SANFLAGS:-} -std=c11 -D_GNU_SOURCE -I"$TOP/builder" -o "$WORK/driver" "$WORK/driver.c" "$BUILD/libmkm.a" \
  $(pkg-config --libs libcurl libarchive gpgme libzstd libcrypto libseccomp json-c) -lpthread \
  || { bad "the driver builds against libmkm.a"; finish; exit 1; }

# ---- the host's bait ------------------------------------------------------------------------------
HOSTDIR=$WORK/hostdir
mkdir -p "$HOSTDIR"
echo "host secret" >"$HOSTDIR/secret"
sleep 31337 &
SLEEP_PID=$!
CLEANUP+=("kill $SLEEP_PID 2>/dev/null")
python3 - "$WORK/listener.port" "$WORK/listener.log" <<'EOF' &
import socket, sys
s = socket.socket()
s.bind(("0.0.0.0", 0))
s.listen(8)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    c, a = s.accept()
    with open(sys.argv[2], "a") as f:
        f.write("connection from %s\n" % (a,))
    c.close()
EOF
LISTENER_PID=$!
CLEANUP+=("kill $LISTENER_PID 2>/dev/null")
for _ in $(seq 100); do [ -s "$WORK/listener.port" ] && break; sleep 0.1; done
PORT=$(cat "$WORK/listener.port")
check "a listener on the host (port $PORT) and a sleep of the host (pid $SLEEP_PID) are up" \
  bash -c "[ -n '$PORT' ] && kill -0 $SLEEP_PID"
# the listener answers on the host's loopback (so a connection would be seen)
python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 5).close()"
for _ in $(seq 50); do [ -s "$WORK/listener.log" ] && break; sleep 0.1; done
check "the listener logs a connection from the host itself" grep -q connection "$WORK/listener.log"
: >"$WORK/listener.log"

HOST_IP=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -1)
HOSTNAME_BEFORE=$(hostname)
CORE_BEFORE=$(cat /proc/sys/kernel/core_pattern)
FORWARD_BEFORE=$(cat /proc/sys/net/ipv4/ip_forward)
MODULES_BEFORE=$(cut -d' ' -f1 /proc/modules 2>/dev/null | sort)
LO_BEFORE=$(cat /sys/class/net/lo/flags)

# ---- the tree -----------------------------------------------------------------------------------
T=$WORK/tree
mkdir -p "$T/bin" "$T/etc" "$T/mnt" "$T/root" "$T/usr/bin"
cp /bin/busybox "$T/bin/busybox"
for a in sh cat echo kill ls mkdir mknod mount umount hostname cp chmod chown ln readlink stat nc wget \
         insmod modprobe ifconfig ip sleep id chroot grep true head; do
  ln -s busybox "$T/bin/$a"
done
ln -s "$HOSTDIR" "$T/escape-abs"
ln -s "../../../../../../../../..$HOSTDIR" "$T/escape-rel"
ln -s "$HOSTDIR/secret" "$T/etc/escape-file"

# A static probe for what the shell cannot do: module loading, ptrace, the chroot escape, fds.
cat >"$WORK/probe.c" <<EOF
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
static void t(const char *what, long r) {
        printf("%s: %s\n", what, r < 0 ? "refused" : "SUCCEEDED");
        if (r < 0) printf("%s errno: %s\n", what, strerrorname_np(errno));
}
int main(void) {
        static char junk[64] = "not a module";
        t("init_module", syscall(SYS_init_module, junk, sizeof junk, ""));
        int fd = open("/bin/busybox", O_RDONLY | O_CLOEXEC);
        t("finit_module", syscall(SYS_finit_module, fd, "", 0));
        t("kill-host-sleep", kill($SLEEP_PID, SIGKILL));
        t("ptrace-attach-host-sleep", ptrace(PTRACE_ATTACH, $SLEEP_PID, 0, 0));
        t("ptrace-seize-host-sleep", ptrace(PTRACE_SEIZE, $SLEEP_PID, 0, 0));
        t("pidfd-host-sleep", syscall(SYS_pidfd_open, $SLEEP_PID, 0));
        char buf[8];
        struct iovec l = { buf, sizeof buf }, r = { (void *)0x400000, sizeof buf };
        t("process_vm_readv-host-sleep", process_vm_readv($SLEEP_PID, &l, 1, &r, 1, 0));
        t("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, buf, O_RDONLY));
        /* Leaked descriptors: anything open beyond stdio is a way out. */
        for (int i = 3; i < 1024; i++)
                if (i != fd && fcntl(i, F_GETFD) >= 0) {
                        printf("leaked fd %d: SUCCEEDED\n", i);
                        char p[64], target[4096] = "";
                        snprintf(p, sizeof p, "/proc/self/fd/%d", i);
                        ssize_t n = readlink(p, target, sizeof target - 1);
                        if (n > 0) { target[n] = 0; printf("leaked fd %d is %s\n", i, target); }
                        t("read-secret-via-leaked-fd", openat(i, "secret", O_RDONLY));
                }
        /* The classic chroot escape (CAP_SYS_CHROOT is kept for package code). */
        mkdir("/esc", 0755);
        long c = chroot("/esc");
        if (c == 0) {
                for (int i = 0; i < 64; i++) (void)chdir("..");
                c = chroot(".");
        }
        t("chroot-escape-read", c == 0 ? open("$HOSTDIR/secret", O_RDONLY) : -1);
        t("chroot-escape-write", c == 0 ? open("$HOSTDIR/pwned-chroot", O_WRONLY | O_CREAT, 0644) : -1);
        return 0;
}
EOF
if cc -static -O0 -o "$T/bin/probe" "$WORK/probe.c" 2>"$WORK/probe.err"; then
  HAVE_PROBE=1
else
  HAVE_PROBE=0
  # libc6-dev (build-essential, make deps) has the static libc: without the probe the module,
  # ptrace, fd and chroot checks would be missing, so that is a failure, not a skip.
  bad "the static probe builds (module, ptrace, fd and chroot probes)"; cat "$WORK/probe.err"
fi

# ---- the attack -----------------------------------------------------------------------------------
cat >"$WORK/attack.sh" <<EOF
try() { n=\$1; shift; if "\$@" >/dev/null 2>&1; then echo "\$n: SUCCEEDED"; else echo "\$n: refused"; fi; }
try mount-tmpfs mount -t tmpfs none /mnt
try mount-bind-root mount --bind / /mnt
try mount-proc mount -t proc proc /mnt
try mount-sysfs mount -t sysfs sysfs /mnt
try umount-proc umount /proc
try umount-tmp umount -l /tmp
try remount-dev mount -o remount,rw,dev,suid /dev
try sysctl-hostname sh -c 'echo evil > /proc/sys/kernel/hostname'
try sysctl-core-pattern sh -c 'echo "|/bin/evil" > /proc/sys/kernel/core_pattern'
try sysctl-drop-caches sh -c 'echo 3 > /proc/sys/vm/drop_caches'
try sysctl-ip-forward sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
try sysrq-trigger sh -c 'echo h > /proc/sysrq-trigger'
try hostname hostname evil
try modprobe modprobe dummy
try insmod insmod /bin/busybox
#net try connect-loopback sh -c 'echo hi | nc -w 2 127.0.0.1 $PORT'
#net try wget-loopback wget -q -T 2 -O /dev/null http://127.0.0.1:$PORT/
${HOST_IP:+#net try connect-host-ip sh -c 'echo hi | nc -w 2 $HOST_IP $PORT'}
try kill-host-sleep kill -9 $SLEEP_PID
try host-sleep-visible test -e /proc/$SLEEP_PID/cmdline -a "\$(cat /proc/$SLEEP_PID/cmdline 2>/dev/null)" = "sleep31337"
try read-via-proc-self-root cat /proc/self/root$HOSTDIR/secret
try read-via-proc-1-root cat /proc/1/root$HOSTDIR/secret
try write-via-proc-self-root sh -c 'echo x > /proc/self/root$HOSTDIR/pwned-procroot'
try read-via-abs-symlink cat /escape-abs/secret
try read-via-rel-symlink cat /escape-rel/secret
try read-via-file-symlink cat /etc/escape-file
try write-via-abs-symlink sh -c 'echo x > /escape-abs/pwned-abs'
try write-via-rel-symlink sh -c 'echo x > /escape-rel/pwned-rel'
try hardlink-via-symlink ln /escape-abs/secret /stolen
try suid-via-abs-symlink sh -c 'cp /bin/busybox /escape-abs/suid && chmod 4755 /escape-abs/suid'
try suid-via-rel-symlink sh -c 'cp /bin/busybox /escape-rel/suid && chmod 4755 /escape-rel/suid'
try mknod-block-in-tree mknod /sda b 8 0
try mknod-block-in-tmp mknod /tmp/sda b 8 0
try mknod-block-in-dev mknod /dev/sda b 8 0
try mknod-mem-in-tmp mknod /tmp/mem c 1 1
try ifconfig-lo-down ifconfig lo down
try ip-link-add ip link add evil0 type dummy
ls -l /proc/self/fd | sed -n 's/.* \\([0-9]*\\) -> /fd \\1 -> /p'
if [ -x /bin/probe ]; then /bin/probe; fi
echo "uid inside: \$(id -u) \$(id -g)"
for m in /tmp /run /dev/shm /dev; do echo "tmpfs \$m: \$(df -k \$m | awk 'NR==2 {print \$2}') KiB"; done
echo done
EOF
# Without RunNetwork= the network attempts count too; with it, reaching the host's network is
# what was asked for (the rest must still fail).
sed 's/^#net //' "$WORK/attack.sh" >"$WORK/attack-nonet.sh"
grep -v '^#net ' "$WORK/attack.sh" >"$WORK/attack-net.sh"
# as a pacman scriptlet: post_install() in a .INSTALL
{ echo 'post_install() {'; cat "$WORK/attack-nonet.sh"; echo '}'; } >"$WORK/attack.install"

attack() {  # attack MODE FILE LABEL
  local out=$WORK/out.$3
  HOSTILE_LEAK_DIR=$HOSTDIR "$WORK/driver" "$1" "$T" "$2" >"$out" 2>"$out.err"
  echo "  rc=$? ($3)"
  sed 's/^/    | /' "$out" "$out.err" | head -120
  check "$3: the attack ran to its end" grep -qx done "$out"
  check "$3: every attempt was refused" bash -c "! grep -q ': SUCCEEDED' '$out'"
  check "$3: runs as root inside (UID/GID 0 of its own namespace)" grep -qx "uid inside: 0 0" "$out"
  check "$3: ls /proc/self/fd sees stdin, stdout, stderr and nothing else" \
    bash -c "[ \"\$(grep '^fd ' '$out' | grep -vc -e '-> /dev/null\$' -e '-> pipe:' -e '-> /proc/[0-9]*/fd\$')\" = 0 ] &&
             [ \"\$(grep -c '^fd ' '$out')\" -ge 3 ]"
  # A tmpfs is memory no OOM kill returns: the sandbox's are capped (25% + 10% + 10% of RAM, /dev
  # 4 MiB), not the kernel's default of half the RAM each.
  check "$3: /tmp, /run, /dev/shm and /dev hold at most 25%, 10%, 10% of RAM and 4 MiB" bash -c "
    mem=\$(awk '/^MemTotal:/ {print \$2}' /proc/meminfo)
    t=\$(sed -n 's|^tmpfs /tmp: \\([0-9]*\\) KiB\$|\\1|p' '$out'); r=\$(sed -n 's|^tmpfs /run: \\([0-9]*\\) KiB\$|\\1|p' '$out')
    s=\$(sed -n 's|^tmpfs /dev/shm: \\([0-9]*\\) KiB\$|\\1|p' '$out'); d=\$(sed -n 's|^tmpfs /dev: \\([0-9]*\\) KiB\$|\\1|p' '$out')
    [ -n \"\$t\" ] && [ -n \"\$r\" ] && [ -n \"\$s\" ] && [ -n \"\$d\" ] &&
    [ \$((t * 100)) -le \$((mem * 26)) ] && [ \$((r * 100)) -le \$((mem * 11)) ] &&
    [ \$((s * 100)) -le \$((mem * 11)) ] && [ \"\$d\" -le 4096 ]"
  if [ "$HAVE_PROBE" = 1 ]; then
    check "$3: init_module/finit_module refused (EPERM)" \
      bash -c "grep -qx 'init_module errno: EPERM' '$out' && grep -qx 'finit_module errno: EPERM' '$out'"
    check "$3: the host's sleep is out of reach (ESRCH: not in the sandbox's pid namespace)" \
      bash -c "grep -qx 'kill-host-sleep errno: ESRCH' '$out' && grep -qx 'ptrace-attach-host-sleep errno: ESRCH' '$out'"
    check "$3: the chroot escape ends in the tree" grep -qx 'chroot-escape-read errno: ENOENT' "$out"
    check "$3: the probe saw no leaked fd" bash -c "! grep -q '^leaked fd' '$out'"
  fi
}
attack scriptlet "$WORK/attack.install" scriptlet
attack run "$WORK/attack-nonet.sh" run
attack run-net "$WORK/attack-net.sh" run-net

# ---- the host is unchanged ------------------------------------------------------------------------
check "the host's sleep still runs" kill -0 "$SLEEP_PID"
check "the host's listener saw no connection" test ! -s "$WORK/listener.log"
[ -s "$WORK/listener.log" ] && sed 's/^/    | /' "$WORK/listener.log"
check "nothing appeared in the host directory" test "$(ls -A "$HOSTDIR")" = secret
check "the host's hostname is unchanged" test "$(hostname)" = "$HOSTNAME_BEFORE"
check "the host's core_pattern is unchanged" test "$(cat /proc/sys/kernel/core_pattern)" = "$CORE_BEFORE"
check "the host's ip_forward is unchanged (run-net shares the host's network namespace)" \
  test "$(cat /proc/sys/net/ipv4/ip_forward)" = "$FORWARD_BEFORE"
check "the host's loaded modules are unchanged" test "$(cut -d' ' -f1 /proc/modules 2>/dev/null | sort)" = "$MODULES_BEFORE"
check "the host's lo is as it was" test "$(cat /sys/class/net/lo/flags)" = "$LO_BEFORE"
check "no device node was made in the tree" bash -c "! find '$T' \\( -type b -o -type c \\) | grep -q ."
check "no set-uid file appeared outside the tree" bash -c "! find '$WORK' -path '$T' -prune -o -perm -4000 -print | grep -q ."
check "the tree's /mnt stayed empty" test -z "$(ls -A "$T/mnt")"
check "the tree holds no 'stolen' link" test ! -e "$T/stolen"

# ---- seen from the host, the command is not root --------------------------------------------------
# Both ways package code runs (a .INSTALL scriptlet and Run=) are looked at from the host.
seen_from_host() {  # seen_from_host MODE FILE MARK
  "$WORK/driver" "$1" "$T" "$2" >"$WORK/sleeper.$1.out" 2>&1 &
  local driver=$! spid= p
  CLEANUP+=("kill $driver 2>/dev/null")
  for _ in $(seq 100); do
    for p in /proc/[0-9]*; do
      [ "$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null)" = "sleep $3 " ] && { spid=${p#/proc/}; break; }
    done
    [ -n "$spid" ] && break
    sleep 0.1
  done
  if [ -z "$spid" ]; then
    bad "$1: the sandboxed sleep shows up on the host"; sed 's/^/    | /' "$WORK/sleeper.$1.out"
    kill "$driver" 2>/dev/null; wait "$driver" 2>/dev/null
    return
  fi
  local uids gids map base
  uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$spid/status")
  gids=$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$spid/status")
  map=$(awk '{print $1, $2, $3}' "/proc/$spid/uid_map")
  base=$(echo "$map" | awk '{print $2}')
  echo "  $1: sandboxed sleep: pid $spid, Uid: $uids, Gid: $gids, uid_map: $map"
  check "$1: the host sees the sandboxed process's UIDs as the high base ($base), not 0" \
    bash -c "[ '$uids' = '$base $base $base $base' ] && [ '$base' -ge 524288 ]"
  check "$1: ... and its GIDs too" bash -c "[ '$gids' = '$base $base $base $base' ] && [ '$base' -ge 524288 ]"
  check "$1: its user namespace maps 0..65535 to a base in systemd's container range (>= 524288)" \
    bash -c "[ '$map' = '0 $base 65536' ] && [ '$base' -ge 524288 ] && [ '$base' -le 1879048192 ]"
  check "$1: its user namespace is not the host's" \
    test "$(readlink "/proc/$spid/ns/user")" != "$(readlink /proc/self/ns/user)"
  # The central claim: every other namespace of the command belongs to the host's user
  # namespace (made before it joined its own), so its root has no capability over them.
  check "$1: its mount, uts, ipc, net and pid namespaces are owned by the host's user namespace" python3 -c "
import fcntl, os, sys
NS_GET_USERNS = 0xb701
host = os.stat('/proc/self/ns/user').st_ino
bad = []
for ns in ('mnt', 'uts', 'ipc', 'net', 'pid'):
    fd = os.open('/proc/$spid/ns/' + ns, os.O_RDONLY)
    owner = fcntl.ioctl(fd, NS_GET_USERNS)
    if os.fstat(owner).st_ino != host:
        bad.append(ns)
    os.close(owner); os.close(fd)
print('owned elsewhere:', bad) if bad else None
sys.exit(1 if bad else 0)"
  # The sleep is PID 1 of its pid namespace: from the host only SIGKILL reaches it (pid_namespaces(7)).
  kill -9 "$spid"
  wait "$driver" 2>/dev/null
}
echo 'exec sleep 7777777' >"$WORK/sleeper.sh"
printf 'post_install() {\n  exec sleep 7777778\n}\n' >"$WORK/sleeper.install"
seen_from_host run "$WORK/sleeper.sh" 7777777
seen_from_host scriptlet "$WORK/sleeper.install" 7777778
finish
