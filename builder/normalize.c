/* SPDX-License-Identifier: MIT */
/* Time stamp clamping over the staged tree. */
#include "normalize.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <linux/openat2.h>

#define MAX_DEPTH 256

static int clamp_at(int dfd, const char *name, const struct stat *st, int64_t epoch) {
        if (st->st_mtim.tv_sec < epoch || (st->st_mtim.tv_sec == epoch && st->st_mtim.tv_nsec == 0))
                return 0;
        struct timespec ts[2] = { { .tv_sec = epoch }, { .tv_sec = epoch } };
        if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        return 0;
}

static int clamp_entry(int dfd, const char *name, const char *path, const struct stat *st, void *userdata) {
        (void)path;
        return clamp_at(dfd, name, st, *(const int64_t *)userdata);
}

int normalize_clamp_mtimes(struct mkm_ctx *ctx, int rootfd, int64_t epoch, struct mkm_err *reterr) {
        struct stat st;
        if (fstat(rootfd, &st) < 0)
                return negative_errno();
        mkm_debug(ctx, "clamping time stamps to %lld", (long long)epoch);
        int r = fs_walk(rootfd, MAX_DEPTH, clamp_entry, &epoch);
        if (r == -ELOOP)
                return mkm_err_set(reterr, r, "tree deeper than %d levels", MAX_DEPTH);
        if (r < 0)
                return mkm_err_set(reterr, r, "clamping time stamps: %s", strerror(-r));
        return clamp_at(rootfd, ".", &st, epoch);
}

/* Files (or directories, removed whole) that a build must not keep. */
static const char *const generated[] = {
        "var/log/pacman.log",
        "var/log/dpkg.log",
        "var/log/alternatives.log",
        "var/log/bootstrap.log",
        "var/log/apt/history.log",
        "var/log/apt/term.log",
        "var/log/apt/eipp.log.xz",
        "var/cache/ldconfig/aux-cache",
        "var/lib/systemd/random-seed",
        "var/lib/systemd/credential.secret",
        "etc/pacman.d/gnupg/private-keys-v1.d",
        "etc/pacman.d/gnupg/openpgp-revocs.d",
        "etc/pacman.d/gnupg/random_seed",
        "etc/ssh/ssh_host_rsa_key",
        "etc/ssh/ssh_host_rsa_key.pub",
        "etc/ssh/ssh_host_ecdsa_key",
        "etc/ssh/ssh_host_ecdsa_key.pub",
        "etc/ssh/ssh_host_ed25519_key",
        "etc/ssh/ssh_host_ed25519_key.pub",
};

static int remove_in_root(struct mkm_ctx *ctx, int rootfd, const char *path, struct mkm_err *reterr) {
        const char *slash = strrchr(path, '/');
        _cleanup_free_ char *parent = strndup(path, (size_t)(slash - path));
        if (!parent)
                return -ENOMEM;
        /* The parent is resolved inside the tree without following symlinks: a tree that made
         * var/log a symlink gets nothing removed there, rather than something outside. */
        _cleanup_close_ int pfd = fs_open_in_root(rootfd, parent, O_PATH | O_DIRECTORY, 0, RESOLVE_NO_SYMLINKS);
        if (pfd < 0)
                return 0;
        struct stat st;
        if (fstatat(pfd, slash + 1, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
        int r = fs_rm_rf_at(pfd, slash + 1);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot remove /%s: %s", path, strerror(-r));
        mkm_debug(ctx, "removed /%s (generated during the build)", path);
        return 0;
}

int normalize_remove_generated(struct mkm_ctx *ctx, int rootfd, struct mkm_err *reterr) {
        for (size_t i = 0; i < sizeof generated / sizeof generated[0]; i++) {
                int r = remove_in_root(ctx, rootfd, generated[i], reterr);
                if (r < 0)
                        return r;
        }
        /* /etc/machine-id: emptied, not removed (an absent file makes some tools write one). */
        _cleanup_close_ int efd = fs_open_in_root(rootfd, "etc", O_PATH | O_DIRECTORY, 0, RESOLVE_NO_SYMLINKS);
        struct stat st;
        if (efd >= 0 && fstatat(efd, "machine-id", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            st.st_size > 0) {
                _cleanup_close_ int fd = openat(efd, "machine-id", O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return mkm_err_set(reterr, negative_errno(), "cannot empty /etc/machine-id: %s", strerror(errno));
                mkm_debug(ctx, "emptied /etc/machine-id (made at first boot)");
        }
        return 0;
}
