/* SPDX-License-Identifier: MIT */
/* Staging roots, the per-machine build lock, and the atomic swap. */
#include "deploy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ctx.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/thread.h"

bool deploy_name_is_valid(const char *name) {
        size_t n = strlen(name);
        if (n == 0 || n > 64 || name[0] == '.' || name[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '_' || c == '.'))
                        return false;
        }
        return true;
}

static bool is_mkdtemp_suffix(const char *s) {
        size_t n = 0;
        for (; s[n]; n++)
                if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9')))
                        return false;
        return n == 6;
}

static int remove_stale(struct mkm_ctx *ctx, struct deploy *d) {
        _cleanup_free_ char *prefix = NULL;
        if (asprintf(&prefix, ".#%s.", d->name) < 0)
                return -ENOMEM;
        DIR *dir = fs_opendir_dup(d->machines_fd);
        if (!dir)
                return negative_errno();
        struct dirent *de;
        size_t pl = strlen(prefix);
        while ((de = readdir(dir))) {
                /* Exactly ".#NAME." + mkdtemp's six characters: "foo" must never match the trees
                 * of "foo.bar" (".#foo.bar.prev", ".#foo.bar.Ab12Cd"). */
                if (strncmp(de->d_name, prefix, pl) != 0 || !is_mkdtemp_suffix(de->d_name + pl))
                        continue;
                /* We hold the build lock of NAME: nobody else is writing there. */
                mkm_debug(ctx, "removing stale staging tree %s/%s", d->machines_dir, de->d_name);
                int r = fs_rm_rf_at(d->machines_fd, de->d_name);
                if (r < 0)
                        mkm_warn(ctx, "cannot remove stale staging tree %s/%s: %s; ignoring", d->machines_dir,
                                 de->d_name, strerror(-r));
        }
        closedir(dir);
        return 0;
}

int deploy_begin(struct mkm_ctx *ctx, const char *name, struct deploy **ret, struct mkm_err *reterr) {
        if (!deploy_name_is_valid(name))
                return mkm_err_set(reterr, -MKM_E_RECIPE, "'%s' is not a valid machine name", name);
        _cleanup_(deploy_freep) struct deploy *d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->machines_fd = d->lock_fd = d->root_fd = -EBADF;
        d->name = strdup(name);
        d->machines_dir = fs_path_join(ctx->host_root, "var/lib/machines");
        _cleanup_free_ char *state_top = fs_path_join(ctx->host_root, "var/lib/mkmachine");
        d->state_dir = state_top ? fs_path_join(state_top, name) : NULL;
        d->target = d->machines_dir ? fs_path_join(d->machines_dir, name) : NULL;
        if (!d->name || !d->machines_dir || !d->state_dir || !d->target)
                return -ENOMEM;
        int r = fs_mkdir_p_at(AT_FDCWD, d->machines_dir, 0700);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot create %s: %s", d->machines_dir, strerror(-r));
        r = fs_mkdir_p_at(AT_FDCWD, d->state_dir, 0755);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot create %s: %s", d->state_dir, strerror(-r));
        d->machines_fd = open(d->machines_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d->machines_fd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %s", d->machines_dir, strerror(errno));
        _cleanup_free_ char *lock = fs_path_join(d->state_dir, ".lock");
        if (!lock)
                return -ENOMEM;
        d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (d->lock_fd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %s", lock, strerror(errno));
        if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        return mkm_err_set(reterr, -EBUSY, "another build of '%s' is running (%s is locked)", name,
                                           lock);
                return mkm_err_set(reterr, negative_errno(), "cannot lock %s: %s", lock, strerror(errno));
        }
        r = remove_stale(ctx, d);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot scan %s: %s", d->machines_dir, strerror(-r));
        *ret = TAKE_PTR(d);
        return 0;
}

int deploy_stage(struct deploy *d, struct mkm_err *reterr) {
        _cleanup_free_ char *tmpl = NULL;
        if (asprintf(&tmpl, "%s/.#%s.XXXXXX", d->machines_dir, d->name) < 0)
                return -ENOMEM;
        if (!mkdtemp(tmpl))
                return mkm_err_set(reterr, negative_errno(), "cannot create a staging directory in %s: %s",
                                   d->machines_dir, strerror(errno));
        d->staging = TAKE_PTR(tmpl);
        if (chmod(d->staging, 0755) < 0)
                return negative_errno();
        d->root_fd = open(d->staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (d->root_fd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %s", d->staging, strerror(errno));
        return 0;
}

enum { WB_RUNNING, WB_DONE, WB_DETACHED };

struct deploy_writeback {
        pthread_t thread;
        int fd;                 /* the thread's own handle on the staging root */
        atomic_int state;       /* whoever moves it last (thread: DONE, deploy_free: DETACHED) frees */
};

static void *writeback_thread(void *userdata) {
        struct deploy_writeback *wb = userdata;
        (void)syncfs(wb->fd);   /* the result does not matter: deploy_swap() syncs again */
        (void)close(wb->fd);
        if (atomic_exchange(&wb->state, WB_DONE) == WB_DETACHED)
                free(wb);       /* a failed build let go of it */
        return NULL;
}

void deploy_writeback_start(struct deploy *d) {
        if (d->wb || d->root_fd < 0)
                return;
        struct deploy_writeback *wb = calloc(1, sizeof *wb);
        if (!wb)
                return;
        atomic_init(&wb->state, WB_RUNNING);
        wb->fd = fcntl(d->root_fd, F_DUPFD_CLOEXEC, 3);
        if (wb->fd < 0 || thread_create_nosig(&wb->thread, writeback_thread, wb) != 0) {
                if (wb->fd >= 0)
                        close(wb->fd);
                free(wb);
                return;
        }
        d->wb = wb;
}

/* Wait for the writeback (before the final syncfs), or, when the build failed and the tree is
 * about to go, let it finish on its own instead of waiting. */
static void writeback_end(struct deploy *d, bool wait) {
        struct deploy_writeback *wb = d->wb;
        if (!wb)
                return;
        d->wb = NULL;
        if (!wait) {
                pthread_detach(wb->thread);
                if (atomic_exchange(&wb->state, WB_DETACHED) != WB_DONE)
                        return;         /* still running: it frees wb itself */
                free(wb);
                return;
        }
        pthread_join(wb->thread, NULL);
        free(wb);
}

int deploy_swap(struct mkm_ctx *ctx, struct deploy *d, struct mkm_err *reterr) {
        const char *stage_name = strrchr(d->staging, '/') + 1;
        _cleanup_free_ char *prev = NULL;
        if (asprintf(&prev, ".#%s.prev", d->name) < 0)
                return -ENOMEM;
        /* Durability once for the whole tree, instead of an fsync per file. */
        writeback_end(d, true);
        if (syncfs(d->root_fd) < 0)
                return mkm_err_set(reterr, negative_errno(), "syncfs %s: %s", d->staging, strerror(errno));
        closep(&d->root_fd);
        d->root_fd = -EBADF;

        struct stat st;
        bool exists = fstatat(d->machines_fd, d->name, &st, AT_SYMLINK_NOFOLLOW) == 0;
        if (exists) {
                if (syscall(SYS_renameat2, d->machines_fd, stage_name, d->machines_fd, d->name, RENAME_EXCHANGE) < 0)
                        return mkm_err_set(reterr, negative_errno(), "cannot swap %s into place: %s", d->target,
                                           strerror(errno));
                /* The staging name now holds the previous machine: keep it as the one rollback
                 * generation (replacing an older one). */
                int r = fs_rm_rf_at(d->machines_fd, prev);
                if (r < 0)
                        mkm_warn(ctx, "cannot remove the old generation %s/%s: %s; ignoring", d->machines_dir, prev,
                                 strerror(-r));
                if (renameat(d->machines_fd, stage_name, d->machines_fd, prev) < 0)
                        mkm_warn(ctx, "cannot keep the previous generation as %s/%s: %s", d->machines_dir, prev,
                                 strerror(errno));
        } else if (renameat(d->machines_fd, stage_name, d->machines_fd, d->name) < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot move %s into place: %s", d->target,
                                   strerror(errno));
        (void)fsync(d->machines_fd);
        free(d->staging);
        d->staging = NULL;
        return 0;
}

struct deploy *deploy_free(struct deploy *d) {
        if (!d)
                return NULL;
        writeback_end(d, false);
        closep(&d->root_fd);
        if (d->staging && d->machines_fd >= 0) {
                const char *stage_name = strrchr(d->staging, '/') + 1;
                (void)fs_rm_rf_at(d->machines_fd, stage_name);
        }
        closep(&d->machines_fd);
        closep(&d->lock_fd);
        free(d->name);
        free(d->machines_dir);
        free(d->state_dir);
        free(d->target);
        free(d->staging);
        free(d);
        return NULL;
}
