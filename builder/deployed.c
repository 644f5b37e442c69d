/* SPDX-License-Identifier: MIT */
/* What mkmachine deployed on the host, read from its state (deployed.h). */
#include "deployed.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "deploy.h"
#include "lock.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strv.h"

#define STATE_FILE_MAX (16u << 20)

/* The live generation's directory; -ENOENT when name has no live generation. */
static int live_dir(struct mkm_ctx *ctx, const char *name, char **ret, struct mkm_err *reterr) {
        if (!deploy_name_is_valid(name))
                return -EINVAL;
        _cleanup_(state_freep) struct machine_state *s = NULL;
        int q = state_load(ctx, name, &s, reterr);
        if (q < 0)
                return q;
        if (!s->live)
                return -ENOENT;
        char *dir = strdup(s->live->dir);
        if (!dir)
                return -ENOMEM;
        *ret = dir;
        return 0;
}

int deployed_read(struct mkm_ctx *ctx, const char *name, const char *file, char **ret_text, char **ret_path,
                  struct mkm_err *reterr) {
        _cleanup_free_ char *dir = NULL;
        int q = live_dir(ctx, name, &dir, reterr);
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
        if (!text[0])
                return -ENOENT;         /* an imported generation has none (import.c) */
        return lock_parse(text, strlen(text), path, ret, reterr);
}

int deployed_each_lock(struct mkm_ctx *ctx, int (*fn)(void *userdata, const char *name, const char *path,
                                                      const struct lock *l),
                       void *userdata, struct mkm_err *reterr) {
        _cleanup_strv_free_ char **names = NULL;
        int q = state_list(ctx, &names, reterr);
        if (q < 0)
                return q;
        for (char **n = names; n && *n && q >= 0; n++) {
                _cleanup_(state_freep) struct machine_state *s = NULL;
                q = state_load(ctx, *n, &s, reterr);
                for (size_t i = 0; q >= 0 && i < s->n_gens; i++) {
                        _cleanup_(lock_freep) struct lock *l = NULL;
                        _cleanup_free_ char *text = NULL, *path = fs_path_join(s->gens[i].dir, "lock");
                        if (!path)
                                return -ENOMEM;
                        q = fs_read_file_follow_at(AT_FDCWD, path, STATE_FILE_MAX, &text, NULL);
                        /* A generation without a lock (an import's is empty) references nothing. */
                        if (q == -ENOENT || (q >= 0 && !text[0])) {
                                q = 0;
                                continue;
                        }
                        if (q < 0)
                                return mkm_err_set(reterr, q, "cannot read %s: %s", path, mkm_strerror(q));
                        q = lock_parse(text, strlen(text), path, &l, reterr);
                        if (q >= 0)
                                q = fn(userdata, *n, path, l);
                }
        }
        return q;
}
