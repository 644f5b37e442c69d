/* SPDX-License-Identifier: MIT */
/* The build sandbox: namespaces, an idmapped mount of the staged tree as "/", a user namespace,
 * minimal /dev, fixed env.
 *
 * Threat: install scripts and hooks come from packages that co-tenants choose. They must not
 * see or change the host (its mounts, processes, hostname, network, environment, open fds), and
 * nothing they start may outlive them. The child is created with a raw clone(2) of new
 * namespaces, so it is PID 1 of its own pid namespace: killing it kills everything inside.
 * Everything the child needs (paths, argv, envp, file contents, mount options) is prepared
 * before the clone; after it the child only makes system calls (no malloc, no stdio) and
 * reports a failing step through a CLOEXEC pipe, which execve closes on success. Only
 * fork+execve with argv arrays.
 *
 * Who does what. The parent (real root) makes the user namespace once per build (a helper
 * process that unshares one; the parent writes its maps: 0..65535 -> BASE..BASE+65535) and, per
 * run, a detached clone of the tree's mount (open_tree(OPEN_TREE_CLONE)) idmapped through that
 * namespace (mount_setattr(MOUNT_ATTR_IDMAP)). The child, still real root in the initial user
 * namespace, owns its new mount, pid, uts, ipc and net namespaces: it attaches the idmapped tree
 * (move_mount), pivots into it and makes every mount, device node and setting the command
 * needs. Only then does it join the user namespace (setns) and become its root (kernel UID BASE),
 * drop capabilities, load seccomp and exec. So the command's capabilities count only in a user
 * namespace that owns no namespace and no file system at all: it can neither mount, nor set the
 * hostname, nor reconfigure the network, nor create devices, and every object of the host is
 * owned by an ID it does not map. Through the idmapped mount its UID 0 still reads and writes
 * on-disk UID 0 in the tree, so owners come out as before. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/sched.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <seccomp.h>
#include <inttypes.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/forklock.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strv.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define TAIL_LINES 12
#define TAIL_BYTES 1200

enum step {
        ST_PDEATHSIG,
        ST_SETSID,
        ST_PRIVATE,
        ST_BIND,
        ST_CHDIR_ROOT,
        ST_PIVOT,
        ST_UMOUNT_OLD,
        ST_PROC,
        ST_DEV,
        ST_MKNOD,
        ST_PTS,
        ST_SHM,
        ST_DEVLINKS,
        ST_TMP,
        ST_RUN,
        ST_MASK,
        ST_FILES,
        ST_HOSTNAME,
        ST_CWD,
        ST_USERNS,
        ST_HARDEN,
        ST_STDIO,
        ST_EXEC,
        _ST_MAX,
};

static const char *const step_names[_ST_MAX] = {
        [ST_PDEATHSIG] = "prctl(PR_SET_PDEATHSIG)",
        [ST_SETSID] = "setsid",
        [ST_PRIVATE] = "making mounts private",
        [ST_BIND] = "attaching the tree's idmapped mount",
        [ST_CHDIR_ROOT] = "entering the tree",
        [ST_PIVOT] = "pivot_root",
        [ST_UMOUNT_OLD] = "detaching the host's root",
        [ST_PROC] = "mounting /proc",
        [ST_DEV] = "mounting /dev",
        [ST_MKNOD] = "creating device nodes",
        [ST_PTS] = "mounting /dev/pts",
        [ST_SHM] = "mounting /dev/shm",
        [ST_DEVLINKS] = "creating /dev links",
        [ST_TMP] = "mounting /tmp",
        [ST_RUN] = "mounting /run",
        [ST_MASK] = "masking a command with /usr/bin/true",
        [ST_FILES] = "writing files into the sandbox",
        [ST_HOSTNAME] = "sethostname",
        [ST_CWD] = "changing to the working directory",
        [ST_USERNS] = "entering the user namespace",
        [ST_HARDEN] = "dropping privileges",
        [ST_STDIO] = "setting up stdin/stdout/stderr",
        [ST_EXEC] = "execve",
};

struct child_report {
        int step;
        int err;
};

/* Everything the child needs, prepared before the clone. */
struct child_args {
        const char *root;
        const char *exe;                /* the resolved path inside the tree */
        char *const *argv;
        char *const *envp;
        const char *hostname;
        const char *cwd;
        const struct sandbox_opts *opts;
        int in_fd;                      /* read end of the stdin pipe, or -1 for /dev/null */
        int out_fd;                     /* write end of the output pipe */
        int err_fd;                     /* CLOEXEC report pipe */
        const struct sock_fprog *filter; /* seccomp program, built before the clone */
        int parent_pidfd;               /* pidfd of the caller's process, or -1 */
        int tree_fd;                    /* the detached, idmapped clone of the tree's mount */
        int userns_fd;                  /* the user namespace the command runs in */
        uint32_t uid_base;              /* its UID/GID 0 on the host */
        const char *dev_opts, *tmp_opts, *run_opts, *shm_opts, *pts_opts;     /* tmpfs/devpts options */
};

static _Noreturn void child_fail(const struct child_args *a, enum step step, int err) {
        struct child_report rep = { .step = step, .err = err ? err : EIO };
        ssize_t n = write(a->err_fd, &rep, sizeof rep);
        (void)n;
        _exit(127);
}

#define CHECK(a, step, expr)                                    \
        do {                                                    \
                if ((expr) < 0)                                 \
                        child_fail((a), (step), errno);         \
        } while (0)

/* A device node for the command: made here, in the initial user namespace (no user namespace
 * may create one), and owned by the sandbox's root, as systemd-nspawn makes them. */
static int make_node(const char *path, unsigned maj, unsigned min, uint32_t base) {
        if (mknod(path, S_IFCHR | 0666, makedev(maj, min)) < 0)
                return -1;
        if (chown(path, base, base) < 0)
                return -1;
        return chmod(path, 0666);      /* mknod honours the umask */
}

/* mkdir -p of the parents of path (absolute, in the sandbox's tmpfs), no allocation. */
static int make_parents(const char *path) {
        char buf[PATH_MAX];
        size_t len = strlen(path);
        if (len >= sizeof buf) {
                errno = ENAMETOOLONG;
                return -1;
        }
        memcpy(buf, path, len + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                        return -1;
                *p = '/';
        }
        return 0;
}

static void loopback_up(void) {
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return;
        struct ifreq ifr = {};
        memcpy(ifr.ifr_name, "lo", 3);
        if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
                ifr.ifr_flags |= IFF_UP;
                (void)ioctl(s, SIOCSIFFLAGS, &ifr);
        }
        (void)close(s);
}

/* What a package's scripts may do as root in the tree, and nothing more. These are capabilities in
 * the sandbox's user namespace only, which owns nothing of the host; dropping the rest is a
 * second wall should a kernel bug make one count outside it: without CAP_SYS_ADMIN it cannot
 * mount or write host-wide /proc/sys knobs (the mounts below are read-only anyway), without
 * CAP_MKNOD it cannot reach host disks through a device node, without
 * CAP_SYS_MODULE/SYS_RAWIO/SYS_TIME/SYS_BOOT/NET_ADMIN/DAC_READ_SEARCH (open_by_handle_at) it
 * cannot load modules, poke memory, set the clock, reboot, reconfigure the host's network or
 * escape the root by file handle. The kept set is what installing needs (ownership, modes,
 * set-id bits, file capabilities, chroot). */
static const int kept_caps[] = {
        CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID, CAP_SETUID,
        CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_NET_BROADCAST, CAP_IPC_LOCK, CAP_IPC_OWNER,
        CAP_SYS_CHROOT, CAP_SYS_NICE, CAP_SYS_RESOURCE, CAP_LEASE, CAP_AUDIT_WRITE, CAP_SETFCAP,
};

/* System calls package code has no business making, refused with EPERM (nspawn's defaults are
 * the model): the kernel keyring is not namespaced (root's keys would be readable), new user
 * namespaces would hand back every capability dropped above, and the rest reach the host's
 * kernel state directly. clone3 gets ENOSYS so that libc falls back to clone, whose flags can be
 * checked. The rules are added for every ABI the CPU runs (x86-64, i386, x32 here), so a process
 * cannot dodge them by switching. */
static const char *const denied_syscalls[] = {
        "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "kexec_load",
        "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff",
        "acct", "quotactl", "quotactl_fd", "mount", "umount", "umount2", "pivot_root", "move_mount",
        "open_tree", "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr", "setns",
        "open_by_handle_at", "iopl", "ioperm", "settimeofday", "clock_settime", "clock_adjtime",
        "adjtimex", "syslog", "vhangup", "lookup_dcookie", "nfsservctl", "uselib", "_sysctl",
};

/* Build the filter as a classic BPF program (the child only hands it to the kernel). */
/* Calls that only make data durable. In a build they succeed without doing anything: nothing in
 * the staging tree is durable until the deploy syncs the whole tree once (deploy.h), and dpkg's
 * and apt's fsync per file is most of what they cost otherwise (what eatmydata does, without
 * LD_PRELOAD, so statically linked programs are covered too). */
static const char *const sync_syscalls[] = {
        "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "sync_file_range2",
};

static int build_filter(struct sock_fprog *ret, bool no_sync) {
        scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
        if (!f)
                return -ENOMEM;
        int r = 0;
        static const uint32_t extra_arches[] = { SCMP_ARCH_X86, SCMP_ARCH_X32 };
        if (seccomp_arch_native() == SCMP_ARCH_X86_64)
                for (size_t i = 0; i < ELEMENTSOF(extra_arches); i++) {
                        r = seccomp_arch_add(f, extra_arches[i]);
                        if (r < 0 && r != -EEXIST)
                                goto out;
                }
        for (size_t i = 0; i < ELEMENTSOF(denied_syscalls); i++) {
                int nr = seccomp_syscall_resolve_name(denied_syscalls[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue;
                r = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), nr, 0);
                if (r < 0 && r != -EEXIST && r != -EDOM)
                        goto out;
        }
        r = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
        if (r >= 0)
                r = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
        if (r >= 0) {
                int nr = seccomp_syscall_resolve_name("clone3");
                if (nr != __NR_SCMP_ERROR)
                        r = seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
        }
        for (size_t i = 0; r >= 0 && no_sync && i < ELEMENTSOF(sync_syscalls); i++) {
                int nr = seccomp_syscall_resolve_name(sync_syscalls[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue;
                r = seccomp_rule_add(f, SCMP_ACT_ERRNO(0), nr, 0);
                if (r == -EEXIST || r == -EDOM)
                        r = 0;
        }
        if (r < 0)
                goto out;
        /* libseccomp 2.5 exports to an fd only. */
        int mfd = memfd_create("mkmachine-seccomp", MFD_CLOEXEC);
        if (mfd < 0) {
                r = negative_errno();
                goto out;
        }
        r = seccomp_export_bpf(f, mfd);
        char *buf = NULL;
        size_t len = 0;
        if (r >= 0 && lseek(mfd, 0, SEEK_SET) == 0)
                r = fs_read_fd(mfd, 1u << 20, &buf, &len);
        (void)close(mfd);
        if (r >= 0 && (len == 0 || len % sizeof(struct sock_filter) != 0))
                r = -EINVAL;
        if (r < 0) {
                free(buf);
                goto out;
        }
        *ret = (struct sock_fprog){ .len = (unsigned short)(len / sizeof(struct sock_filter)), .filter = (struct sock_filter *)(void *)buf };
        r = 0;
out:
        seccomp_release(f);
        return r;
}

/* ------------------------------------------------------------------ per-build cache */

struct sandbox_cache {
        pthread_mutex_t lock;
        uint32_t uid_base;
        int userns_fd;                  /* -EBADF until the first run */
        struct sock_fprog filter[2];    /* [no_sync]; .filter NULL until the first run that needs it */
};

int sandbox_cache_new(uint32_t uid_base, struct sandbox_cache **ret) {
        if (uid_base == 0 || (uint64_t)uid_base + SANDBOX_UID_RANGE > UINT32_MAX)
                return -EINVAL;
        struct sandbox_cache *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        if (pthread_mutex_init(&c->lock, NULL) != 0) {
                free(c);
                return -ENOMEM;
        }
        c->uid_base = uid_base;
        c->userns_fd = -EBADF;
        *ret = c;
        return 0;
}

struct sandbox_cache *sandbox_cache_free(struct sandbox_cache *c) {
        if (!c)
                return NULL;
        if (c->userns_fd >= 0)
                (void)close(c->userns_fd);
        for (size_t i = 0; i < ELEMENTSOF(c->filter); i++)
                free(c->filter[i].filter);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
}

uint32_t sandbox_cache_uid_base(const struct sandbox_cache *c) {
        return c->uid_base;
}

static int write_proc_file(const char *path, const char *text) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        int r = fs_write_all(fd, text, strlen(text));
        if (close(fd) < 0 && r >= 0)
                r = negative_errno();
        return r;
}

/* A user namespace mapping UIDs and GIDs 0..SANDBOX_UID_RANGE-1 to base..: a helper process
 * unshares it and waits while we (root of the initial namespace, which may map any range) write
 * its maps and keep a reference to it; then the helper exits. */
static int userns_new(uint32_t base, int *ret_fd, struct mkm_err *reterr) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return mkm_err_set(reterr, negative_errno(), "sandbox: pipe: %m");
        forklock_fork_begin();
        pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
        if (pid == 0) {
                char ch;
                (void)close(p[1]);
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
                ssize_t n = read(p[0], &ch, 1);        /* until the parent closes its end */
                _exit(n < 0);
        }
        int clone_errno = errno;
        forklock_fork_end();
        (void)close(p[0]);
        if (pid < 0) {
                (void)close(p[1]);
                return mkm_err_set(reterr, -clone_errno, "sandbox: cannot create a user namespace: %s%s",
                                   strerror(clone_errno),
                                   clone_errno == EPERM ? " (the kernel refuses one inside a chroot(2), and to a "
                                                          "process without CAP_SYS_ADMIN; running the sandbox needs root "
                                                          "outside any chroot)"
                                   : clone_errno == ENOSPC ? " (the limit user.max_user_namespaces is reached)"
                                                           : "");
        }
        char path[64], map[64];
        (void)snprintf(map, sizeof map, "0 %" PRIu32 " %u\n", base, SANDBOX_UID_RANGE);
        int r = 0;
        static const char *const maps[] = { "uid_map", "gid_map" };
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(maps); i++) {
                (void)snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, maps[i]);
                r = write_proc_file(path, map);
                if (r < 0)
                        (void)mkm_err_set(reterr, r,
                                          "sandbox: cannot map IDs %" PRIu32 "-%" PRIu32 " into the user namespace "
                                          "(%s): %s%s",
                                          base, base + SANDBOX_UID_RANGE - 1, path, mkm_strerror(r),
                                          r == -EPERM ? " (they must be mapped in mkmachine's own user namespace: run "
                                                        "it as root of the host, not in a user-namespaced container)"
                                                      : "");
        }
        int fd = -EBADF;
        if (r >= 0) {
                (void)snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        r = mkm_err_set(reterr, negative_errno(), "sandbox: cannot open %s: %m", path);
        }
        (void)close(p[1]);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return r;
        *ret_fd = fd;
        return 0;
}

/* The build's user namespace and seccomp program, made on first use (borrowed from c). */
static int cache_get(struct mkm_ctx *ctx, struct sandbox_cache *c, bool no_sync, int *ret_userns,
                     const struct sock_fprog **ret_filter, struct mkm_err *reterr) {
        int r = 0;
        pthread_mutex_lock(&c->lock);
        if (c->userns_fd < 0) {
                r = userns_new(c->uid_base, &c->userns_fd, reterr);
                if (r >= 0)
                        mkm_debug(ctx, "sandbox: a user namespace for UIDs and GIDs %" PRIu32 "-%" PRIu32, c->uid_base,
                                  c->uid_base + SANDBOX_UID_RANGE - 1);
        }
        struct sock_fprog *f = &c->filter[no_sync];
        if (r >= 0 && !f->filter) {
                r = build_filter(f, no_sync);
                if (r < 0)
                        (void)mkm_err_set(reterr, r, "sandbox: cannot build the seccomp filter: %s", mkm_strerror(r));
                else
                        mkm_debug(ctx, "sandbox: compiled the seccomp filter%s (%u instructions)",
                                  no_sync ? " with no-op syncs" : "", (unsigned)f->len);
        }
        if (r >= 0) {
                *ret_userns = c->userns_fd;
                *ret_filter = f;
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

/* The type of the file system path is on, as /proc/self/mountinfo names it ("?" if unknown). */
static void fs_type_name(const char *path, char *buf, size_t size) {
        (void)snprintf(buf, size, "?");
        struct statx stx;
        if (statx(AT_FDCWD, path, 0, STATX_MNT_ID, &stx) < 0 || !(stx.stx_mask & STATX_MNT_ID))
                return;
        _cleanup_free_ char *mi = NULL;
        if (fs_read_file_follow_at(AT_FDCWD, "/proc/self/mountinfo", 16u << 20, &mi, NULL) < 0)
                return;
        /* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER" */
        for (char *line = mi; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = 0;
                char *sep = strstr(line, " - ");
                if (strtoull(line, NULL, 10) == stx.stx_mnt_id && sep) {
                        size_t n = strcspn(sep + 3, " ");
                        (void)snprintf(buf, size, "%.*s", (int)n, sep + 3);
                        return;
                }
                line = nl ? nl + 1 : NULL;
        }
}

/* A detached clone of the tree's mount (and those below it) whose owners are seen through the
 * user namespace: its UID 0 reads and writes on-disk 0. Returns the mount's fd. */
static int tree_idmapped(const char *root, int userns_fd, struct mkm_err *reterr) {
        int fd = (int)syscall(SYS_open_tree, AT_FDCWD, root, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (fd < 0)
                return mkm_err_set(reterr, negative_errno(), "sandbox: cannot clone the mount of %s: %m", root);
        /* nodev: a device node that reached the tree some other way (nothing puts one there
         * today: extract refuses them, scripts cannot mknod) opens nothing; the sandbox's own
         * /dev is a separate tmpfs. */
        struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NODEV, .userns_fd = (uint64_t)userns_fd };
        if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
                int r = negative_errno();
                char type[64];
                (void)close(fd);
                if (r == -ENOSYS)
                        return mkm_err_set(reterr, r, "sandbox: idmapped mounts need Linux 5.12 or later (mount_setattr: %s)",
                                           mkm_strerror(r));
                fs_type_name(root, type, sizeof type);
                /* A fallback to running as the host's root would make the isolation an accident of
                 * where the tree lies: refuse, saying where to build instead. */
                return mkm_err_set(reterr, r == -EINVAL ? -EOPNOTSUPP : r,
                                   "sandbox: cannot idmap the tree %s: %s%s%s%s", root, mkm_strerror(r),
                                   r == -EINVAL ? "; its file system (" : "", r == -EINVAL ? type : "",
                                   r == -EINVAL ? ") does not support idmapped mounts: build on one that does "
                                                  "(ext4, xfs, btrfs, tmpfs, overlayfs...), e.g. with --host-root"
                                                : "");
        }
        return fd;
}

static int make_readonly(const char *path) {
        if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
                return errno == ENOENT ? 0 : -1;
        return mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

/* Kernel knobs are host-wide: read-only, as systemd-nspawn mounts them. */
static int protect_proc(void) {
        static const char *const ro[] = { "/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs" };
        for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++)
                if (make_readonly(ro[i]) < 0)
                        return -1;
        return 0;
}

/* Join the sandbox's user namespace and become its root (kernel UID/GID uid_base): from here on
 * every capability counts only there. setns grants the full set in that namespace, which
 * drop_privileges() then trims; no supplementary group of the caller's comes along. Raw system
 * calls: glibc's setgroups/setres[ug]id tell every thread of the process to change too, and
 * after a raw clone of a threaded build they wait forever for threads the child does not have. */
/* A new, empty session keyring (as nspawn gives its payload): the caller's session keyring, and
 * the keys root keeps in it, stay out of reach even if the seccomp filter let keyctl through.
 * No test observes it: inside, keyctl is refused by seccomp and /proc/keys lists only keys of
 * the reader's own user namespace, with or without this. */
static int join_new_session_keyring(void) {
        if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL) < 0 && errno != ENOSYS)
                return -1;
        return 0;
}

static int enter_userns(int userns_fd) {
        if (syscall(SYS_setns, userns_fd, CLONE_NEWUSER) < 0)
                return -1;
        if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, 0, 0, 0) < 0 ||
            syscall(SYS_setresuid, 0, 0, 0) < 0)
                return -1;
        return 0;
}

static int drop_privileges(void) {
        uint64_t keep = 0;
        for (size_t i = 0; i < sizeof kept_caps / sizeof kept_caps[0]; i++)
                keep |= UINT64_C(1) << kept_caps[i];
        for (int cap = 0; cap <= 63; cap++) {
                if (keep & (UINT64_C(1) << cap))
                        continue;
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                        return -1;
        }
        /* Also from the current sets, so nothing before execve keeps them either (never more
         * than we hold: a container may already lack some of the kept ones). */
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct d[2] = {};
        if (syscall(SYS_capget, &h, d) < 0)
                return -1;
        for (int i = 0; i < 2; i++) {
                uint32_t k = (uint32_t)(keep >> (32 * i));
                d[i].permitted &= k;
                d[i].effective &= k;
                d[i].inheritable = 0;
        }
        if (syscall(SYS_capset, &h, d) < 0)
                return -1;
        (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        /* No set-id or file-capability binary can hand back what was dropped. */
        return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static _Noreturn void child_main(const struct child_args *a) {
        const struct sandbox_opts *o = a->opts;

        /* Die with the caller; no controlling terminal of the host's. */
        CHECK(a, ST_PDEATHSIG, prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0));
        /* The caller may have died between the clone and the prctl (killed with its build):
         * then nothing would ever kill us. getppid() says 0 in a new pid namespace, so ask the
         * caller's pidfd, which becomes readable when it has exited. */
        if (a->parent_pidfd >= 0) {
                struct pollfd p = { .fd = a->parent_pidfd, .events = POLLIN };
                if (poll(&p, 1, 0) != 0)
                        _exit(127);
        }
        CHECK(a, ST_SETSID, setsid());

        /* Nothing we mount propagates back to the host. */
        CHECK(a, ST_PRIVATE, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
        /* The tree, as the parent cloned and idmapped it, covers its own directory here. */
        CHECK(a, ST_BIND, (int)syscall(SYS_move_mount, a->tree_fd, "", AT_FDCWD, a->root, MOVE_MOUNT_F_EMPTY_PATH));
        CHECK(a, ST_CHDIR_ROOT, chdir(a->root));
        /* pivot_root(".", "."): the old root ends up stacked on "/", then is detached. Unlike
         * chroot, nothing of the host stays reachable (no fd, no "..", no /proc/1/root). */
        CHECK(a, ST_PIVOT, (int)syscall(SYS_pivot_root, ".", "."));
        CHECK(a, ST_UMOUNT_OLD, umount2(".", MNT_DETACH));
        CHECK(a, ST_CHDIR_ROOT, chdir("/"));

        /* From here on every path resolves inside the tree (its symlinks cannot leave it). */
        CHECK(a, ST_PROC, mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
        /* The file systems below are owned by the sandbox's root (uid=/gid= of the tmpfs, gid= of
         * devpts: the "tty" group 5 inside); mounted here, they are the initial user namespace's,
         * so the command cannot unmount or remount them. */
        CHECK(a, ST_DEV, mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, a->dev_opts));
        umask(0);
        CHECK(a, ST_MKNOD, make_node("/dev/null", 1, 3, a->uid_base));
        CHECK(a, ST_MKNOD, make_node("/dev/zero", 1, 5, a->uid_base));
        CHECK(a, ST_MKNOD, make_node("/dev/full", 1, 7, a->uid_base));
        CHECK(a, ST_MKNOD, make_node("/dev/random", 1, 8, a->uid_base));
        CHECK(a, ST_MKNOD, make_node("/dev/urandom", 1, 9, a->uid_base));
        CHECK(a, ST_MKNOD, make_node("/dev/tty", 5, 0, a->uid_base));
        CHECK(a, ST_PTS, mkdir("/dev/pts", 0755));
        CHECK(a, ST_PTS, mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, a->pts_opts));
        CHECK(a, ST_SHM, mkdir("/dev/shm", 01777));
        CHECK(a, ST_SHM, mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_STRICTATIME, a->shm_opts));
        CHECK(a, ST_TMP, mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_STRICTATIME, a->tmp_opts));
        CHECK(a, ST_RUN, mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV | MS_STRICTATIME, a->run_opts));
        for (const char *const *m = o->mask_true; m && *m; m++) {
                struct stat mst;
                if (lstat(*m, &mst) < 0 || !S_ISREG(mst.st_mode))
                        continue;       /* not (yet) in the tree: nothing to mask */
                CHECK(a, ST_MASK, mount("/usr/bin/true", *m, NULL, MS_BIND, NULL));
                CHECK(a, ST_MASK, mount(NULL, *m, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL));
        }
        CHECK(a, ST_HOSTNAME, sethostname(a->hostname, strlen(a->hostname)));
        if (!o->network) {
                loopback_up();
                /* Root in the sandbox could bind ports below 1024 in its own network namespace
                 * before it had a user namespace; that namespace is not its own now. Only in the
                 * private one: the host's setting is never touched. */
                int pfd = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC);
                if (pfd >= 0) {
                        (void)fs_write_all(pfd, "0\n", 2);
                        (void)close(pfd);
                }
        }
        CHECK(a, ST_HARDEN, protect_proc());
        CHECK(a, ST_HARDEN, join_new_session_keyring());

        /* The last step that needs the initial user namespace's privileges is done. What follows
         * creates files: as root of the user namespace they are its own (inside: root's). */
        CHECK(a, ST_USERNS, enter_userns(a->userns_fd));
        /* A change of credentials cleared the parent-death signal: set it again, and see that
         * the caller did not die meanwhile. */
        CHECK(a, ST_PDEATHSIG, prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0));
        if (a->parent_pidfd >= 0) {
                struct pollfd p = { .fd = a->parent_pidfd, .events = POLLIN };
                if (poll(&p, 1, 0) != 0)
                        _exit(127);
        }
        CHECK(a, ST_DEVLINKS, symlink("pts/ptmx", "/dev/ptmx"));
        CHECK(a, ST_DEVLINKS, symlink("/proc/self/fd", "/dev/fd"));
        CHECK(a, ST_DEVLINKS, symlink("/proc/self/fd/0", "/dev/stdin"));
        CHECK(a, ST_DEVLINKS, symlink("/proc/self/fd/1", "/dev/stdout"));
        CHECK(a, ST_DEVLINKS, symlink("/proc/self/fd/2", "/dev/stderr"));

        umask(022);
        for (size_t i = 0; i < o->n_files; i++) {
                const struct sandbox_file *f = &o->files[i];
                CHECK(a, ST_FILES, make_parents(f->path));
                int fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, f->mode ? f->mode : 0644);
                CHECK(a, ST_FILES, fd);
                CHECK(a, ST_FILES, fs_write_all(fd, f->data, f->len));      /* keeps errno */
                CHECK(a, ST_FILES, fchmod(fd, f->mode ? f->mode : 0644));
                (void)close(fd);
        }

        CHECK(a, ST_CWD, chdir(a->cwd));

        /* stdin, stdout, stderr; everything else closes on exec (the report pipe included). */
        int in = a->in_fd >= 0 ? a->in_fd : open("/dev/null", O_RDONLY | O_CLOEXEC);
        CHECK(a, ST_STDIO, in);
        int hin = fcntl(in, F_DUPFD_CLOEXEC, 10);
        CHECK(a, ST_STDIO, hin);
        int hout = fcntl(a->out_fd, F_DUPFD_CLOEXEC, 10);
        CHECK(a, ST_STDIO, hout);
        CHECK(a, ST_STDIO, dup2(hin, 0));
        CHECK(a, ST_STDIO, dup2(hout, 1));
        CHECK(a, ST_STDIO, dup2(hout, 2));
        if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
                for (int fd = 3; fd < 65536; fd++)
                        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        }

        CHECK(a, ST_HARDEN, drop_privileges());
        CHECK(a, ST_HARDEN, prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, a->filter, 0, 0));

        /* Signals as a fresh process has them. */
        struct sigaction sa = { .sa_handler = SIG_DFL };
        for (int sig = 1; sig < _NSIG; sig++)
                (void)sigaction(sig, &sa, NULL);
        sigset_t none;
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);

        /* ETXTBSY: some process still holds the file open for writing. Our own forks exclude
         * that (util/forklock.h), but not those of other processes or of libraries using clone
         * or posix_spawn; such a holder is a child between fork and exec, which lets go in
         * moments. Retry a bounded number of times (what Go's os/exec does, golang/go#22315). */
        for (int tries = 0; ; tries++) {
                execve(a->exe, a->argv, a->envp);
                if (errno != ETXTBSY || tries >= 50)
                        break;
                struct timespec ts = { .tv_nsec = 20 * 1000 * 1000 };
                (void)nanosleep(&ts, NULL);
        }
        child_fail(a, ST_EXEC, errno);
}

/* ------------------------------------------------------------------ parent side */

static const char *env_value(char *const *envp, const char *key) {
        size_t kl = strlen(key);
        for (char *const *e = envp; e && *e; e++)
                if (strncmp(*e, key, kl) == 0 && (*e)[kl] == '=')
                        return *e + kl + 1;
        return NULL;
}

static bool env_has_key(char *const *env, const char *entry) {
        const char *eq = strchr(entry, '=');
        size_t kl = eq ? (size_t)(eq - entry) : strlen(entry);
        for (char *const *e = env; e && *e; e++)
                if (strncmp(*e, entry, kl) == 0 && (*e)[kl] == '=')
                        return true;
        return false;
}

/* The fixed environment plus the extras (an extra replaces a fixed entry of the same key). */
static int build_envp(const struct sandbox_opts *o, char ***ret) {
        char sde[64];
        const char *fixed[6];
        size_t nf = 0;
        fixed[nf++] = "PATH=" SANDBOX_PATH;
        fixed[nf++] = "LANG=C.UTF-8";
        fixed[nf++] = "TZ=UTC";
        fixed[nf++] = "HOME=/root";
        if (o->source_date_epoch >= 0) {
                (void)snprintf(sde, sizeof sde, "SOURCE_DATE_EPOCH=%lld", (long long)o->source_date_epoch);
                fixed[nf++] = sde;
        }
        size_t ne = 0;
        for (char *const *e = o->env; e && *e; e++) {
                if (!strchr(*e, '=') || **e == '=')
                        return -EINVAL;
                ne++;
        }
        char **l = calloc(nf + ne + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < nf; i++) {
                if (env_has_key(o->env, fixed[i]))
                        continue;
                if (!(l[k++] = strdup(fixed[i])))
                        goto oom;
        }
        for (size_t i = 0; i < ne; i++)
                if (!(l[k++] = strdup(o->env[i])))
                        goto oom;
        *ret = l;
        return 0;
oom:
        strv_free(l);   /* calloc'ed: NULL after the last one made */
        return -ENOMEM;
}

bool sandbox_tree_has_exec(int rootfd, const char *path) {
        _cleanup_close_ int fd = fs_open_in_root(rootfd, path, O_PATH, 0, 0);
        struct stat st;
        return fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

/* Resolve argv[0] inside the tree as execvp would after the pivot. Caller owns *ret. */
static int resolve_exe(int rootfd, const char *cmd, const char *path, char **ret, struct mkm_err *reterr) {
        if (!*cmd)
                return mkm_err_set(reterr, -EINVAL, "sandbox: empty command");
        if (strchr(cmd, '/')) {
                _cleanup_close_ int fd = fs_open_in_root(rootfd, cmd, O_PATH, 0, 0);
                if (fd < 0 && cmd[0] == '/')
                        return mkm_err_set(reterr, fd == -ENOENT ? -ENOENT : fd, "'%s': %s in the tree", cmd,
                                           fd == -ENOENT ? "no such file" : mkm_strerror(fd));
                *ret = strdup(cmd);
                return *ret ? 0 : -ENOMEM;
        }
        for (const char *p = path; p && *p;) {
                const char *end = strchrnul(p, ':');
                size_t dl = (size_t)(end - p);
                char *cand = NULL;
                if (dl > 0 && asprintf(&cand, "%.*s/%s", (int)dl, p, cmd) < 0)
                        return -ENOMEM;
                if (cand && sandbox_tree_has_exec(rootfd, cand)) {
                        *ret = cand;
                        return 0;
                }
                free(cand);
                p = *end ? end + 1 : end;
        }
        return mkm_err_set(reterr, -ENOENT, "'%s': command not found in the tree (PATH=%s)", cmd, path ? path : "");
}

/* Mount points the sandbox needs; created when missing, with Arch's filesystem modes. */
static int ensure_mount_points(int rootfd, const char *root, struct mkm_err *reterr) {
        static const struct {
                const char *name;
                mode_t mode;
        } mps[] = { { "proc", 0555 }, { "dev", 0755 }, { "tmp", 01777 }, { "run", 0755 } };
        for (size_t i = 0; i < ELEMENTSOF(mps); i++) {
                if (mkdirat(rootfd, mps[i].name, 0700) < 0) {
                        if (errno == EEXIST)
                                continue;
                        return mkm_err_set(reterr, negative_errno(), "sandbox: cannot create %s/%s: %m", root,
                                           mps[i].name);
                }
                if (fchownat(rootfd, mps[i].name, 0, 0, AT_SYMLINK_NOFOLLOW) < 0 ||
                    fchmodat(rootfd, mps[i].name, mps[i].mode, 0) < 0)
                        return mkm_err_set(reterr, negative_errno(), "sandbox: cannot set up %s/%s: %m", root,
                                           mps[i].name);
        }
        return 0;
}

static char *join_argv(char *const argv[]) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        for (size_t i = 0; argv[i]; i++)
                fprintf(f, "%s%s", i ? " " : "", argv[i]);
        if (fclose(f) != 0) {
                free(out);
                return NULL;
        }
        if (len > 200)
                memcpy(out + 197, "...", 4);
        return out;
}

/* The last lines of output (at most TAIL_LINES lines and TAIL_BYTES bytes), without the
 * trailing newlines: *ret_len bytes from the returned pointer. */
static const char *output_tail(const char *buf, size_t len, int *ret_len) {
        while (len > 0 && buf[len - 1] == '\n')
                len--;
        size_t start = len, lines = 0;
        while (start > 0 && len - start < TAIL_BYTES) {
                if (buf[start - 1] == '\n' && ++lines == TAIL_LINES)
                        break;
                start--;
        }
        *ret_len = (int)(len - start);
        return buf + start;
}

static int64_t now_ms(void) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct outbuf {
        char *data;
        size_t len, cap;
        size_t dropped;
};

static int outbuf_add(struct outbuf *b, const char *p, size_t n) {
        if (b->len + n > SANDBOX_OUTPUT_MAX) {
                size_t keep = SANDBOX_OUTPUT_MAX - b->len;
                b->dropped += n - keep;
                n = keep;
        }
        if (n == 0)
                return 0;
        if (b->len + n + 1 > b->cap) {
                size_t nc = b->cap ? b->cap : 4096;
                while (nc < b->len + n + 1)
                        nc *= 2;
                char *nd = realloc(b->data, nc);
                if (!nd)
                        return -ENOMEM;
                b->data = nd;
                b->cap = nc;
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
        return 0;
}

static void log_lines(struct mkm_ctx *ctx, const char *label, const char *buf, size_t len) {
        const char *p = buf, *end = buf + len;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
                mkm_debug(ctx, "%s: %.*s", label, (int)l, p);
                p += l + 1;
        }
}

static void close_pair(int p[2]) {
        for (int i = 0; i < 2; i++)
                if (p[i] >= 0) {
                        (void)close(p[i]);
                        p[i] = -1;
                }
}

/* One sandbox_run() call: what its steps share, and what run_done() releases. */
struct run {
        struct mkm_ctx *ctx;
        const char *root;
        char *const *argv;
        const struct sandbox_opts *o;
        int in_pipe[2], out_pipe[2], err_pipe[2];
        struct outbuf out;
        char **envp;
        char *exe, *cmdline;
        bool sigpipe_blocked;
        sigset_t pipeset, oldset;
        const struct sock_fprog *filter;       /* borrowed from the cache */
        struct sandbox_cache *own_cache;        /* when ctx has none: made for this run */
        int userns_fd;                          /* borrowed from the cache */
        int tree_fd;
        uint32_t uid_base;
        char dev_opts[96], tmp_opts[96], run_opts[96], shm_opts[96], pts_opts[96];
        pid_t pid;
        unsigned timeout_s;
        int64_t deadline;
        bool timed_out;
        int loop_err;                   /* a failure of ours while the command ran (poll, memory, waitpid) */
        int status;
};

/* pivot_root(2) needs the caller's root directory to be the root of a mount: inside a chroot(2)
 * into a plain directory it fails with a bare EINVAL. A chroot-based fallback would keep the
 * outer file system reachable to a script holding CAP_SYS_CHROOT (chroot into a subdirectory,
 * then ".." past it), so refuse clearly instead. 1 yes, 0 no, <0 unknown (old kernel). */
static int root_is_mount_point(void) {
        struct statx stx;
        if (statx(AT_FDCWD, "/", AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) < 0)
                return negative_errno();
        if (!(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
                return -EOPNOTSUPP;
        return !!(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* Check the arguments and prepare everything the child needs before the clone. */
static int run_prepare(struct run *x, struct mkm_err *reterr) {
        const struct sandbox_opts *o = x->o;
        int r;

        if (!x->root || x->root[0] != '/' || !x->argv || !x->argv[0])
                return mkm_err_set(reterr, -EINVAL, "sandbox: needs an absolute root and a command");
        for (size_t i = 0; i < o->n_files; i++) {
                const char *p = o->files[i].path;
                if (!p || (strncmp(p, "/tmp/", 5) != 0 && strncmp(p, "/run/", 5) != 0) || strstr(p, "/../") ||
                    strlen(p) >= PATH_MAX || p[strlen(p) - 1] == '/')
                        return mkm_err_set(reterr, -EINVAL, "sandbox: file '%s' must be under /tmp/ or /run/",
                                           p ? p : "(null)");
        }
        for (const char *const *m = o->mask_true; m && *m; m++)
                if ((*m)[0] != '/' || strstr(*m, "/../") || strlen(*m) >= PATH_MAX)
                        return mkm_err_set(reterr, -EINVAL, "sandbox: cannot mask '%s': expected an absolute path", *m);
        x->cmdline = join_argv(x->argv);
        if (!x->cmdline)
                return -ENOMEM;
        if (root_is_mount_point() == 0)
                return mkm_err_set(reterr, -EINVAL,
                                   "sandbox: this process's root directory is not a mount point (running inside a "
                                   "chroot?), so pivot_root cannot enter the tree; bind-mount the chroot's directory "
                                   "onto itself (mount --bind DIR DIR) before entering it, or use a container");

        _cleanup_close_ int rootfd = open(x->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return mkm_err_set(reterr, negative_errno(), "sandbox: cannot open %s: %m", x->root);
        r = build_envp(o, &x->envp);
        if (r < 0)
                return mkm_err_set(reterr, r, "sandbox: bad environment entry");
        r = resolve_exe(rootfd, x->argv[0], env_value(x->envp, "PATH"), &x->exe, reterr);
        if (r == -ENOENT)
                r = -MKM_E_SCRIPT;      /* the command's failure (pacman: "failed to execute"), not setup's */
        if (r < 0)
                return r;
        r = ensure_mount_points(rootfd, x->root, reterr);
        if (r < 0)
                return r;

        struct sandbox_cache *c = x->ctx ? x->ctx->sandbox : NULL;
        if (!c) {
                r = sandbox_cache_new(SANDBOX_UID_BASE_DEFAULT, &x->own_cache);
                if (r < 0)
                        return r;
                c = x->own_cache;
        }
        r = cache_get(x->ctx, c, o->no_sync, &x->userns_fd, &x->filter, reterr);
        if (r < 0)
                return r;
        x->uid_base = c->uid_base;
        x->tree_fd = tree_idmapped(x->root, x->userns_fd, reterr);
        if (x->tree_fd < 0)
                return x->tree_fd;
        uint32_t b = x->uid_base;
        /* Sizes as systemd gives its own (mount-util.h: /dev 4m and 64k inodes in a private
         * namespace): a tmpfs is memory that no OOM kill returns, so a scriptlet that fills
         * them holds at most 25% + 10% + 10% of RAM, not 50% each (the kernel's default). */
        (void)snprintf(x->dev_opts, sizeof x->dev_opts, "mode=0755,size=4m,nr_inodes=64k,uid=%" PRIu32 ",gid=%" PRIu32, b, b);
        (void)snprintf(x->tmp_opts, sizeof x->tmp_opts, "mode=1777,size=25%%,nr_inodes=400k,uid=%" PRIu32 ",gid=%" PRIu32, b, b);
        (void)snprintf(x->shm_opts, sizeof x->shm_opts, "mode=1777,size=10%%,nr_inodes=100k,uid=%" PRIu32 ",gid=%" PRIu32, b, b);
        (void)snprintf(x->run_opts, sizeof x->run_opts, "mode=0755,size=10%%,nr_inodes=100k,uid=%" PRIu32 ",gid=%" PRIu32, b, b);
        (void)snprintf(x->pts_opts, sizeof x->pts_opts, "newinstance,ptmxmode=0666,mode=0620,gid=%" PRIu32, b + 5);
        if ((o->stdin_data && pipe2(x->in_pipe, O_CLOEXEC) < 0) || pipe2(x->out_pipe, O_CLOEXEC) < 0 ||
            pipe2(x->err_pipe, O_CLOEXEC) < 0)
                return mkm_err_set(reterr, negative_errno(), "sandbox: pipe: %m");
        /* The command's stdin and stdout are its root's, so that it may open them again
         * (/dev/stdin, /proc/self/fd/1): a pipe of the host's root (mode 0600) it could not. */
        if ((x->in_pipe[0] >= 0 && fchown(x->in_pipe[0], b, b) < 0) || fchown(x->out_pipe[1], b, b) < 0)
                return mkm_err_set(reterr, negative_errno(), "sandbox: cannot give the pipes to the sandbox's root: %m");
        return 0;
}

/* Clone the child into its new namespaces (it never returns here) and keep the parent's pipe ends. */
static int run_spawn(struct run *x, struct mkm_err *reterr) {
        const struct sandbox_opts *o = x->o;
        struct child_args ca = {
                .root = x->root,
                .exe = x->exe,
                .argv = x->argv,
                .envp = x->envp,
                .hostname = o->hostname && *o->hostname ? o->hostname : "mkmachine",
                .cwd = o->cwd && *o->cwd ? o->cwd : "/",
                .opts = o,
                .in_fd = x->in_pipe[0],
                .out_fd = x->out_pipe[1],
                .err_fd = x->err_pipe[1],
                .filter = x->filter,
                .parent_pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0),    /* CLOEXEC; -1 before 5.3 */
                .tree_fd = x->tree_fd,
                .userns_fd = x->userns_fd,
                .uid_base = x->uid_base,
                .dev_opts = x->dev_opts,
                .tmp_opts = x->tmp_opts,
                .run_opts = x->run_opts,
                .shm_opts = x->shm_opts,
                .pts_opts = x->pts_opts,
        };
        unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | (o->network ? 0 : CLONE_NEWNET);

        /* Writing stdin to a command that stopped reading must give EPIPE, not kill us. */
        sigemptyset(&x->pipeset);
        sigaddset(&x->pipeset, SIGPIPE);
        if (pthread_sigmask(SIG_BLOCK, &x->pipeset, &x->oldset) == 0)
                x->sigpipe_blocked = true;

        /* A raw clone without a new stack behaves like fork(), with the namespaces made at once:
         * the child is PID 1 of the new pid namespace. */
        forklock_fork_begin();  /* no other thread's write fd is copied into the child (util/forklock.h) */
        pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
        if (pid == 0)
                child_main(&ca);
        int clone_errno = errno;
        forklock_fork_end();
        if (ca.parent_pidfd >= 0)
                (void)close(ca.parent_pidfd);
        if (pid < 0) {
                int r = -clone_errno;
                return mkm_err_set(reterr, r, "sandbox: cannot create namespaces: %s%s", mkm_strerror(r),
                                   r == -EPERM ? " (running the sandbox needs root)" : "");
        }
        x->pid = pid;

        if (x->in_pipe[0] >= 0) {
                (void)close(x->in_pipe[0]);
                x->in_pipe[0] = -1;
        }
        (void)close(x->out_pipe[1]);
        x->out_pipe[1] = -1;
        (void)close(x->err_pipe[1]);
        x->err_pipe[1] = -1;
        if (x->in_pipe[1] >= 0)
                (void)fcntl(x->in_pipe[1], F_SETFL, O_NONBLOCK);
        (void)fcntl(x->out_pipe[0], F_SETFL, O_NONBLOCK);
        return 0;
}

/* Feed stdin and collect the output until the command closes its stdout, killing it at the deadline. */
static void run_pump(struct run *x) {
        const struct sandbox_opts *o = x->o;
        int64_t kill_deadline = 0;
        size_t fed = 0;

        x->timeout_s = o->timeout_s ? o->timeout_s : SANDBOX_DEFAULT_TIMEOUT_S;
        x->deadline = now_ms() + (int64_t)x->timeout_s * 1000;
        if (x->in_pipe[1] >= 0 && o->stdin_len == 0) {
                (void)close(x->in_pipe[1]);
                x->in_pipe[1] = -1;
        }
        while (x->out_pipe[0] >= 0) {
                struct pollfd pfd[2] = { { .fd = x->out_pipe[0], .events = POLLIN },
                                         { .fd = x->in_pipe[1], .events = POLLOUT } };
                int64_t left = (x->timed_out ? kill_deadline : x->deadline) - now_ms();
                if (left <= 0) {
                        if (x->timed_out)
                                break;  /* killed, yet the pipe stays open: give up on it */
                        x->timed_out = true;
                        (void)kill(x->pid, SIGKILL);
                        kill_deadline = now_ms() + 5000;
                        continue;
                }
                int n = poll(pfd, x->in_pipe[1] >= 0 ? 2 : 1, (int)(left > 1000 ? 1000 : left));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        x->loop_err = negative_errno();
                        (void)kill(x->pid, SIGKILL);
                        break;
                }
                if (x->in_pipe[1] >= 0 && pfd[1].revents) {
                        ssize_t w = write(x->in_pipe[1], (const char *)o->stdin_data + fed, o->stdin_len - fed);
                        if (w > 0)
                                fed += (size_t)w;
                        if ((w < 0 && errno != EAGAIN && errno != EINTR) || fed == o->stdin_len) {
                                (void)close(x->in_pipe[1]);
                                x->in_pipe[1] = -1;
                        }
                }
                if (pfd[0].revents) {
                        char buf[65536];
                        ssize_t rd = read(x->out_pipe[0], buf, sizeof buf);
                        if (rd > 0) {
                                if (outbuf_add(&x->out, buf, (size_t)rd) < 0) {
                                        x->loop_err = -ENOMEM;
                                        (void)kill(x->pid, SIGKILL);
                                }
                        } else if (rd == 0 || (errno != EAGAIN && errno != EINTR)) {
                                (void)close(x->out_pipe[0]);
                                x->out_pipe[0] = -1;
                        }
                }
        }
        if (x->in_pipe[1] >= 0) {
                (void)close(x->in_pipe[1]);
                x->in_pipe[1] = -1;
        }
}

/* Reap the command, still killing it at the deadline: it may outlive its stdout. */
static void run_wait(struct run *x) {
        for (;;) {
                pid_t w = waitpid(x->pid, &x->status, x->timed_out || x->loop_err < 0 ? 0 : WNOHANG);
                if (w == x->pid)
                        break;
                if (w < 0 && errno != EINTR) {
                        x->loop_err = x->loop_err ? x->loop_err : negative_errno();
                        break;
                }
                if (w == 0) {
                        if (now_ms() >= x->deadline) {
                                x->timed_out = true;
                                (void)kill(x->pid, SIGKILL);
                                continue;
                        }
                        (void)nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
                }
        }
}

/* Unblock SIGPIPE again, swallowing one that our writes raised meanwhile. */
static void run_unblock_sigpipe(struct run *x) {
        if (!x->sigpipe_blocked)
                return;
        struct timespec zero = {};
        while (sigtimedwait(&x->pipeset, NULL, &zero) == SIGPIPE)
                ;
        (void)pthread_sigmask(SIG_SETMASK, &x->oldset, NULL);
        x->sigpipe_blocked = false;
}

/* Turn the child's report, our own failures and the exit status into the result, with the output's tail. */
static int run_verdict(struct run *x, char **ret_output, struct mkm_err *reterr) {
        struct outbuf *out = &x->out;
        int r;

        struct child_report rep = {};
        ssize_t got = read(x->err_pipe[0], &rep, sizeof rep);
        if (out->dropped > 0) {
                char note[96];
                int nl = snprintf(note, sizeof note, "\n[mkmachine: %zu more bytes of output dropped]\n", out->dropped);
                out->len = out->len > (size_t)nl ? out->len - (size_t)nl : 0;  /* make room */
                out->dropped = 0;
                (void)outbuf_add(out, note, (size_t)nl);
        }
        if (out->len > 0)
                log_lines(x->ctx, x->argv[0], out->data, out->len);

        r = 0;
        if (x->loop_err < 0) {
                r = mkm_err_set(reterr, x->loop_err, "sandbox: '%s': %s", x->cmdline, mkm_strerror(x->loop_err));
        } else if (got == (ssize_t)sizeof rep && rep.step >= 0 && rep.step < _ST_MAX) {
                /* A command that could not be started did not run at all: never the script's
                 * failure that a caller may downgrade to a warning, since its effect would go
                 * silently missing from the tree. */
                if (rep.step == ST_EXEC)
                        r = mkm_err_set(reterr, -rep.err, "sandbox: cannot execute '%s': %s", x->exe,
                                        strerror(rep.err));
                else
                        r = mkm_err_set(reterr, -rep.err, "sandbox: %s: %s", step_names[rep.step], strerror(rep.err));
        }
        int tl = 0;
        const char *tail = out->len ? output_tail(out->data, out->len, &tl) : "";
        int status = x->status;
        if (r < 0) {
                /* set above */
        } else if (x->timed_out) {
                r = mkm_err_set(reterr, -MKM_E_SCRIPT, "'%s' timed out after %u s%s%.*s", x->cmdline, x->timeout_s,
                                tl ? ":\n" : "", tl, tail);
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                r = 0;
        } else if (WIFEXITED(status)) {
                r = mkm_err_set(reterr, -MKM_E_SCRIPT, "'%s' exited with status %d%s%.*s", x->cmdline,
                                WEXITSTATUS(status), tl ? ":\n" : "", tl, tail);
        } else {
                int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
                r = mkm_err_set(reterr, -MKM_E_SCRIPT, "'%s' was killed by signal %d (%s)%s%.*s", x->cmdline, sig,
                                sigabbrev_np(sig) ? sigabbrev_np(sig) : "?", tl ? ":\n" : "", tl, tail);
        }
        if (ret_output) {
                if (!out->data)
                        out->data = strdup("");
                *ret_output = out->data;
                out->data = NULL;
        }
        return r;
}

/* Release what the steps left (on every path, also half-way through run_prepare or run_spawn). */
static void run_done(struct run *x) {
        if (x->sigpipe_blocked)
                (void)pthread_sigmask(SIG_SETMASK, &x->oldset, NULL);
        close_pair(x->in_pipe);
        close_pair(x->out_pipe);
        close_pair(x->err_pipe);
        free(x->out.data);
        strv_free(x->envp);
        free(x->exe);
        free(x->cmdline);
        if (x->tree_fd >= 0)
                (void)close(x->tree_fd);
        sandbox_cache_free(x->own_cache);
}

int sandbox_run(struct mkm_ctx *ctx, const char *root, char *const argv[], const struct sandbox_opts *opts,
                char **ret_output, struct mkm_err *reterr) {
        static const struct sandbox_opts dflt = { .source_date_epoch = -1 };
        struct run x = {
                .ctx = ctx,
                .root = root,
                .argv = argv,
                .o = opts ? opts : &dflt,
                .in_pipe = { -1, -1 },
                .out_pipe = { -1, -1 },
                .err_pipe = { -1, -1 },
                .tree_fd = -EBADF,
                .userns_fd = -EBADF,
        };

        if (ret_output)
                *ret_output = NULL;
        int r = run_prepare(&x, reterr);
        if (r >= 0)
                r = run_spawn(&x, reterr);
        if (r >= 0) {
                run_pump(&x);
                run_wait(&x);
                run_unblock_sigpipe(&x);
                r = run_verdict(&x, ret_output, reterr);
        }
        run_done(&x);
        return r;
}
