/* SPDX-License-Identifier: MIT */
/* Run a command inside a staged machine tree, isolated from the host.
 *
 * The command runs with the tree as "/" (pivot_root) in new mount, pid, uts, ipc and (unless
 * network is asked for) network namespaces, where only "lo" exists (brought up): /proc mounted,
 * a minimal /dev on tmpfs (null zero full random urandom tty made with mknod, a private devpts
 * with /dev/ptmx, /dev/shm, /dev/fd and /dev/std* links), tmpfs /tmp (1777) and /run (0755),
 * hostname = machine name, the environment reset to PATH, LANG=C.UTF-8, TZ=UTC, HOME=/root,
 * SOURCE_DATE_EPOCH (+ extras), umask 022, signals reset, stdin from a buffer or /dev/null,
 * stdout and stderr captured, a timeout, and every process it started gone when it ends: the
 * command is PID 1 of its pid namespace, so when it exits or is killed the kernel kills the rest.
 * It also dies with the caller (PR_SET_PDEATHSIG).
 *
 * The command holds no capability on the host at all. It runs as root of a user namespace that
 * maps UIDs and GIDs 0..65535 to BASE..BASE+65535 on the host (seen from the host, its processes
 * run as BASE, not 0), and that namespace owns none of the namespaces above nor any file system:
 * they all belong to the initial user namespace, which set them up before the command joined
 * its own. So whatever capability it has (a trimmed set, plus no_new_privs and a seccomp filter
 * as second walls) counts for nothing outside: no mount, no hostname, no network setting, no
 * device node (mknod), no module, no signal or ptrace beyond its own processes, and every host
 * object is owned by an ID it does not map. The tree is seen through an idmapped mount
 * (mount_setattr(2) MOUNT_ATTR_IDMAP) of that namespace, so its UID/GID 0..65535 read and write
 * on-disk 0..65535: owners, modes and set-id bits come out exactly as a real root would leave
 * them (IDs above 65535 cannot be given to files). The tree's file system must support idmapped
 * mounts (ext4, xfs, btrfs, tmpfs, overlayfs...); on another one sandbox_run fails saying which,
 * rather than fall back to the host's root. The files under /dev, /tmp and /run belong to the
 * sandbox's root.
 *
 * BASE is the cache's (sandbox_cache_new; the build chooses it, hooks.h
 * hooks_sandbox_uid_base), else SANDBOX_UID_BASE_DEFAULT: in either case a 64K slot of
 * systemd's container range, which no host user owns (hooks_sandbox_uid_base also passes over
 * a slot NSS or a running nspawn says is taken, and the machine's own base).
 *
 * The mounts live only in the sandbox's mount namespace. The only trace the sandbox can leave on
 * disk is a missing mount point created in the tree, with the mode Arch's filesystem package
 * gives it: proc 0555, dev 0755, tmp 1777, run 0755 (root-owned). Whatever the command writes to
 * /tmp, /run or /dev is gone when it ends. Needs root (CAP_SYS_ADMIN in the initial user ns),
 * outside any chroot (the kernel makes no user namespace inside one). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mkm_ctx;
struct mkm_err;

/* A file placed into the sandbox's own tmpfs before the command starts (e.g. pacman's
 * /tmp/alpm_XXXXXX/.INSTALL): it never touches the tree on disk. Missing parent directories
 * are created with mode 0700 (as mkdtemp would). */
struct sandbox_file {
        const char *path;               /* absolute, under /tmp/ or /run/, no ".." */
        const void *data;
        size_t len;
        unsigned mode;                  /* 0 = 0644 */
};

struct sandbox_opts {
        const char *hostname;           /* the machine name; NULL = "mkmachine" */
        bool network;                   /* keep the host's network namespace (Run= with RunNetwork=yes) */
        int64_t source_date_epoch;      /* exported as SOURCE_DATE_EPOCH when >= 0 */
        unsigned timeout_s;             /* 0 = SANDBOX_DEFAULT_TIMEOUT_S */
        char *const *env;               /* extra "KEY=VALUE" entries, NULL-terminated, may be NULL;
                                         * an entry replaces a fixed one of the same KEY */
        const void *stdin_data;         /* fed on stdin (e.g. a hook's NeedsTargets); NULL = /dev/null */
        size_t stdin_len;
        const char *cwd;                /* inside the tree; NULL = "/" */
        const struct sandbox_file *files; /* n_files entries, may be NULL */
        bool no_sync;                   /* fsync, fdatasync, sync, syncfs, sync_file_range return 0
                                         * without writing anything back: for a staging tree that
                                         * is synced as a whole before it is deployed */
        size_t n_files;
        const char *const *mask_true;   /* NULL-terminated absolute paths in the tree that are covered,
                                         * while the command runs, by a read-only bind of the tree's
                                         * own /usr/bin/true (paths that do not exist are left alone);
                                         * the tree itself is not changed */
};

#define SANDBOX_DEFAULT_TIMEOUT_S 600
#define SANDBOX_UID_RANGE 0x10000u              /* the UIDs/GIDs the sandbox's user namespace maps */
#define SANDBOX_UID_BASE_DEFAULT 0x6FFE0000u    /* without a cache: the last but one 64K slot of
                                                 * systemd's container range (UIDS-GIDS.md) */

/* What the sandbox_run() calls of one build share: the compiled seccomp programs (compiling one
 * with libseccomp is most of what a run costs besides the command) and the user namespace
 * mapping 0..SANDBOX_UID_RANGE-1 to uid_base... Both are made on the first run that needs them
 * and kept until the cache is freed; any thread may use the cache at once. uid_base must be
 * > 0 and leave room for the range: -EINVAL otherwise. */
struct sandbox_cache;
int sandbox_cache_new(uint32_t uid_base, struct sandbox_cache **ret);
struct sandbox_cache *sandbox_cache_free(struct sandbox_cache *c);
uint32_t sandbox_cache_uid_base(const struct sandbox_cache *c);
#define SANDBOX_OUTPUT_MAX (1u << 20)   /* captured output beyond this is dropped (noted in it) */
#define SANDBOX_PATH "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin"

/* Whether path (resolved inside the tree rootfd) is an executable regular file. */
bool sandbox_tree_has_exec(int rootfd, const char *path);

/* Run argv (argv[0] is resolved inside the tree, via its PATH if it has no '/') in the tree at
 * root (an absolute host path), with ctx->sandbox's cache (ctx or its cache may be NULL: then
 * this call makes its own, with SANDBOX_UID_BASE_DEFAULT). Output (stdout and stderr interleaved) goes to *ret_output when
 * non-NULL (caller frees; set on success and failure) and each line is logged at debug level.
 * Returns 0 when the command exited 0; otherwise -MKM_E_SCRIPT with reterr saying
 * "'CMD' exited with status N", "... was killed by signal S (NAME)" or "... timed out after N s"
 * followed by ":\n" and the last lines of output; also -MKM_E_SCRIPT for a command missing from
 * the tree ("'CMD': command not found in the tree (PATH=...)", "'/x/y': no such file in the tree"),
 * as pacman fails a scriptlet whose interpreter is missing. So -MKM_E_SCRIPT is always the
 * command's failure. A command that was found but could not be started returns execve's errno
 * with "sandbox: cannot execute '/x': why" (EACCES, ENOEXEC, a missing #! interpreter, ETXTBSY
 * after bounded retries): it did not run, so callers must not treat it as a script's failure that
 * a warning covers. Setup failures return their errno with "sandbox: STEP: why" (e.g. -EPERM
 * without root, a tree whose /run cannot be mounted, a host root that is not a mount point and
 * cannot be made one, "sandbox: cannot create a user namespace: ..."): never the command's fault.
 * A tree on a file system without idmapped mounts is -EOPNOTSUPP "sandbox: cannot idmap the tree
 * ROOT: Invalid argument; its file system (TYPE) does not support idmapped mounts: ...". */
int sandbox_run(struct mkm_ctx *ctx, const char *root, char *const argv[], const struct sandbox_opts *opts,
                char **ret_output, struct mkm_err *reterr);
