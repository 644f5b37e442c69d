/* SPDX-License-Identifier: MIT */
/* What mkmachine deployed on the host, read from its state (deployed.h). */
#include "deployed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "deploy.h"
#include "lock.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"

#define STATE_FILE_MAX (16u << 20)

/* HOST/var/lib/mkmachine, or with a name HOST/var/lib/mkmachine/NAME. */
static char *state_path(const struct mkm_ctx *ctx, const char *name) {
        _cleanup_free_ char *top = fs_path_join(ctx->host_root, "var/lib/mkmachine");
        if (!top || !name)
                return TAKE_PTR(top);
        return fs_path_join(top, name);
}

/* The live generation's directory. Single-generation layout: the state directory itself.
 * (With state.h: state_load(ctx, name, &s) and s->live->dir; -ENOENT when s->live is NULL.) */
static int live_dir(struct mkm_ctx *ctx, const char *name, char **ret) {
        if (!deploy_name_is_valid(name))
                return -EINVAL;
        char *dir = state_path(ctx, name);
        if (!dir)
                return -ENOMEM;
        *ret = dir;
        return 0;
}

int deployed_read(struct mkm_ctx *ctx, const char *name, const char *file, char **ret_text, char **ret_path,
                  struct mkm_err *reterr) {
        _cleanup_free_ char *dir = NULL;
        int q = live_dir(ctx, name, &dir);
        if (q == -EINVAL)
                return mkm_err_set(reterr, q, "'%s' is not a valid machine name", name);
        if (q < 0)
                return q;
        _cleanup_free_ char *path = fs_path_join(dir, file);
        if (!path)
                return -ENOMEM;
        _cleanup_free_ char *text = NULL;
        q = fs_read_file_follow_at(AT_FDCWD, path, STATE_FILE_MAX, &text, NULL);
        if (q == -ENOENT || q == -ENOTDIR)
                return -ENOENT;
        if (q < 0)
                return mkm_err_set(reterr, q, "cannot read %s: %s", path, mkm_strerror(q));
        *ret_text = TAKE_PTR(text);
        if (ret_path)
                *ret_path = TAKE_PTR(path);
        return 0;
}

int deployed_lock(struct mkm_ctx *ctx, const char *name, struct lock **ret, struct mkm_err *reterr) {
        _cleanup_free_ char *text = NULL, *path = NULL;
        int q = deployed_read(ctx, name, "lock", &text, &path, reterr);
        if (q < 0)
                return q;
        return lock_parse(text, strlen(text), path, ret, reterr);
}

int deployed_each_lock(struct mkm_ctx *ctx, int (*fn)(void *userdata, const char *name, const char *path,
                                                      const struct lock *l),
                       void *userdata, struct mkm_err *reterr) {
        /* Single-generation layout: one lock per machine. (With state.h: state_list(), then for
         * every machine state_load() and every generation in s->gens, live or not.) */
        _cleanup_free_ char *top = state_path(ctx, NULL);
        if (!top)
                return -ENOMEM;
        DIR *d = opendir(top);
        if (!d)
                return errno == ENOENT ? 0 : mkm_err_set(reterr, negative_errno(), "cannot open %s: %m", top);
        int q = 0;
        struct dirent *de;
        while (q >= 0 && (de = readdir(d))) {
                if (!deploy_name_is_valid(de->d_name))
                        continue;
                _cleanup_(lock_freep) struct lock *l = NULL;
                _cleanup_free_ char *text = NULL, *path = NULL;
                q = deployed_read(ctx, de->d_name, "lock", &text, &path, reterr);
                if (q == -ENOENT) {
                        q = 0;
                        continue;
                }
                if (q >= 0)
                        q = lock_parse(text, strlen(text), path, &l, reterr);
                if (q >= 0)
                        q = fn(userdata, de->d_name, path, l);
        }
        (void)closedir(d);
        return q;
}
