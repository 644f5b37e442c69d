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

#define MAX_DEPTH 256

static int clamp_at(int dfd, const char *name, const struct stat *st, int64_t epoch) {
        if (st->st_mtim.tv_sec < epoch || (st->st_mtim.tv_sec == epoch && st->st_mtim.tv_nsec == 0))
                return 0;
        struct timespec ts[2] = { { .tv_sec = epoch }, { .tv_sec = epoch } };
        if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        return 0;
}

static int walk(int fd, dev_t dev, int64_t epoch, unsigned depth, struct mkm_err *reterr) {
        if (depth > MAX_DEPTH)
                return mkm_err_set(reterr, -ELOOP, "tree deeper than %d levels", MAX_DEPTH);
        DIR *d = fdopendir(fd);
        if (!d) {
                (void)close(fd);
                return negative_errno();
        }
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = negative_errno();
                        break;
                }
                if (S_ISDIR(st.st_mode) && st.st_dev == dev) {
                        int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (cfd < 0) {
                                r = negative_errno();
                                break;
                        }
                        r = walk(cfd, dev, epoch, depth + 1, reterr);
                        if (r < 0)
                                break;
                        /* Children first: clamping them does not touch the directory's mtime,
                         * but do the directory last anyway for clarity. */
                }
                r = clamp_at(dirfd(d), de->d_name, &st, epoch);
                if (r < 0)
                        break;
        }
        (void)closedir(d);
        return r;
}

int normalize_clamp_mtimes(struct mkm_ctx *ctx, int rootfd, int64_t epoch, struct mkm_err *reterr) {
        struct stat st;
        if (fstat(rootfd, &st) < 0)
                return negative_errno();
        int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        mkm_debug(ctx, "clamping time stamps to %lld", (long long)epoch);
        int r = walk(fd, st.st_dev, epoch, 0, reterr);
        if (r < 0)
                return reterr && reterr->msg[0] ? r : mkm_err_set(reterr, r, "clamping time stamps: %s", strerror(-r));
        return clamp_at(rootfd, ".", &st, epoch);
}
