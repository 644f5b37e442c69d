/* SPDX-License-Identifier: MIT */
/* Staging roots, the per-machine build lock, and the atomic swap. */
#include "deploy.h"

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
#include "drift.h"
#include "hooks.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/thread.h"

bool deploy_name_is_valid(const char *name) {
        /* A name that is safe as a file name here (no '/', no leading '.' or '-'): what commands
         * on an existing machine accept, so that one named by an older mkmachine (my_vm) can
         * still be listed, verified, rolled back and removed. New machines need more:
         * deploy_machine_name_is_valid(). */
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

bool deploy_machine_name_is_valid(const char *name) {
        /* What systemd takes as a machine name (machine_name_is_valid(): hostname_is_valid()):
         * labels of ASCII letters, digits and '-', joined by single dots, no label starting or
         * ending with '-', at most 64 bytes. systemd-nspawn and machinectl refuse anything else. */
        size_t n = strlen(name);
        if (n == 0 || n > 64)
                return false;
        bool dot = true, hyphen = false;        /* at the start of a label */
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (c == '.') {
                        if (dot || hyphen)
                                return false;
                        dot = true;
                        hyphen = false;
                } else if (c == '-') {
                        if (dot)
                                return false;
                        hyphen = true;
                } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
                        dot = hyphen = false;
                } else
                        return false;
        }
        return !dot && !hyphen;
}

int deploy_begin(struct mkm_ctx *ctx, const char *name, struct deploy **ret, struct mkm_err *reterr) {
        if (!deploy_name_is_valid(name))
                return mkm_err_set(reterr, -MKM_E_RECIPE, "'%s' is not a valid machine name", name);
        _cleanup_(deploy_freep) struct deploy *d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->machines_fd = d->lock_fd = d->root_fd = d->image_lock_fd = -EBADF;
        d->name = strdup(name);
        d->machines_dir = fs_path_join(ctx->host_root, "var/lib/machines");
        _cleanup_free_ char *state_top = fs_path_join(ctx->host_root, "var/lib/mkmachine");
        d->state_dir = state_top ? fs_path_join(state_top, name) : NULL;
        d->target = d->machines_dir ? fs_path_join(d->machines_dir, name) : NULL;
        if (!d->name || !d->machines_dir || !d->state_dir || !d->target)
                return -ENOMEM;
        int r = fs_mkdir_p_at(AT_FDCWD, d->machines_dir, 0700);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot create %s: %s", d->machines_dir, mkm_strerror(r));
        bool new_state = access(d->state_dir, F_OK) < 0;
        r = fs_mkdir_p_at(AT_FDCWD, d->state_dir, 0755);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot create %s: %s", d->state_dir, mkm_strerror(r));
        if (new_state) {
                /* Its entry durable before a generation is written into it. */
                _cleanup_close_ int tfd = open(state_top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (tfd >= 0)
                        (void)fsync(tfd);
        }
        d->machines_fd = open(d->machines_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d->machines_fd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %s", d->machines_dir, strerror(errno));
        _cleanup_free_ char *lock = fs_path_join(d->state_dir, ".lock");
        if (!lock)
                return -ENOMEM;
        /* rm removes the lock file (and its directory) while it holds it: a lock taken on a file
         * no longer at its path locks nothing, so open it again. */
        for (unsigned attempt = 0;; attempt++) {
                if (attempt > 0 && (r = fs_mkdir_p_at(AT_FDCWD, d->state_dir, 0755)) < 0)
                        return mkm_err_set(reterr, r, "cannot create %s: %s", d->state_dir, mkm_strerror(r));
                d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (d->lock_fd < 0 && errno == ENOENT && attempt < 100)
                        continue;       /* the directory went meanwhile (rm, an empty one dropped) */
                if (d->lock_fd < 0)
                        return mkm_err_set(reterr, negative_errno(), "cannot open %s: %s", lock, strerror(errno));
                if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                        if (errno == EWOULDBLOCK)
                                return mkm_err_set(reterr, -EBUSY, "another build of '%s' is running (%s is locked)",
                                                   name, lock);
                        return mkm_err_set(reterr, negative_errno(), "cannot lock %s: %s", lock, strerror(errno));
                }
                if (fs_fd_is_path(d->lock_fd, lock)) {
                        d->locked = true;
                        break;
                }
                if (attempt >= 100)
                        return mkm_err_set(reterr, -EBUSY, "cannot lock %s: it is removed each time it is locked", lock);
                closep(&d->lock_fd);
                d->lock_fd = -EBADF;
        }
        /* We hold the lock: whatever an interrupted command left is ours to repair. */
        r = state_recover(ctx, name, reterr);
        if (r < 0)
                return r;
        r = state_load(ctx, name, &d->state, reterr);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(d);
        return 0;
}

/* How many entries the tree at machines_fd/name has (what a forced replace throws away). */
static int count_fn(int dfd, const char *name, const char *path, const struct stat *st, void *userdata) {
        (*(size_t *)userdata)++;
        return 0;
}

static size_t count_entries(int machines_fd, const char *name) {
        _cleanup_close_ int fd = openat(machines_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        size_t n = 0;
        if (fd >= 0)
                (void)fs_walk(fd, 4096, count_fn, &n);
        return n;
}

/* The refusal lists at most this many drift entries, and only as many as fit in the message. */
#define DRIFT_LIST_MAX 20
#define DRIFT_LIST_BYTES 1200

/* (b) What a replace or removal would lose: the live tree's blocking drift from the manifest of
 * its generation (drift.h), as "\n  drift: ..." lines (the first entries and how many more) in
 * *ret, NULL when there is none. */
static int drift_reason(struct mkm_ctx *ctx, struct deploy *d, char **ret, struct mkm_err *reterr) {
        *ret = NULL;
        const struct machine_gen *live = d->state->live;
        _cleanup_free_ char *manifest = NULL;
        int r = state_read_file(live, "manifest", &manifest, reterr);
        if (r == -ENOENT) {
                /* A tree migrated from before generations (the old .#NAME.prev) has none. */
                mkm_warn(ctx, "generation %u of '%s' has no manifest (%s): its drift cannot be checked", live->gen,
                         d->name, live->dir);
                return 0;
        }
        if (r < 0)
                return r;
        _cleanup_close_ int fd = openat(d->machines_fd, d->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %m", d->target);
        _cleanup_(drift_freep) struct drift *dr = NULL;
        r = drift_compute(ctx, fd, manifest, &dr, reterr);
        if (r < 0) {
                if (r == -MKM_E_PARSE)
                        (void)mkm_err_prefix(reterr, r, "%s/manifest", live->dir);
                return r;
        }
        if (dr->n_blocking == 0)
                return 0;
        char *buf = NULL;
        size_t len = 0, shown = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "\n  drift: %zu path%s changed by hand since the build would be lost ('mkmachine verify %s' lists them):",
                dr->n_blocking, dr->n_blocking == 1 ? "" : "s", d->name);
        for (size_t i = 0; i < dr->n && shown < DRIFT_LIST_MAX; i++) {
                if (!dr->e[i].blocking)
                        continue;
                _cleanup_free_ char *line = drift_entry_to_string(&dr->e[i]);
                (void)fflush(f);
                if (!line || len + strlen(line) > DRIFT_LIST_BYTES)
                        break;
                fprintf(f, "\n    %s", line);
                shown++;
        }
        if (shown < dr->n_blocking)
                fprintf(f, "\n    ... and %zu more", dr->n_blocking - shown);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

int deploy_check_replaceable(struct mkm_ctx *ctx, struct deploy *d, const char *action, struct mkm_err *reterr) {
        char why[1900] = "";      /* fits in mkm_err.msg with the refusal's first line */
        size_t n = 0;
#define WHY(...)                                                                                           \
        do {                                                                                               \
                if (n < sizeof why)                                                                        \
                        n += (size_t)snprintf(why + n, sizeof why - n, __VA_ARGS__);                       \
        } while (0)
        /* (c) running: systemd-nspawn and machinectl hold the image lock while they use the tree. */
        if (d->image_lock_fd < 0) {
                struct mkm_err lerr = {};
                int r = state_image_lock(ctx, d->name, &d->image_lock_fd, &lerr);
                if (r == -EBUSY)
                        WHY("\n  running: %.700s", lerr.msg);
                else if (r < 0)
                        return mkm_err_set(reterr, r, "%s", lerr.msg);
        }
        /* (a) a tree at NAME that mkmachine did not build (or whose state is gone). */
        if (d->state->tree_exists && !d->state->live) {
                if (d->state->tree_mode == S_IFLNK)
                        WHY("\n  no state: not built by mkmachine: %s is a symbolic link", d->target);
                else if (d->state->tree_mode != S_IFDIR)
                        WHY("\n  no state: not built by mkmachine: %s is not a directory", d->target);
                else
                        WHY("\n  no state: not built by mkmachine: %zu files would be lost (%s)",
                            count_entries(d->machines_fd, d->name), d->target);
        }
        /* (d) host files of the name that mkmachine did not write (no generation has them): the
         * first deploy replaces the .nspawn and removes the others. */
        if (!d->state->n_gens) {
                char *std[3] = {};
                int r = hooks_host_file_paths(d->name, std);
                const char *root = ctx->host_root ? ctx->host_root : "/";
                for (size_t i = 0; i < ELEMENTSOF(std); i++) {
                        _cleanup_free_ char *p = std[i] && r >= 0 ? fs_path_join(root, std[i]) : NULL;
                        struct stat st;
                        if (p && lstat(p, &st) == 0)
                                WHY("\n  host file: %.300s was not written by mkmachine and would be replaced or removed",
                                    p);
                        free(std[i]);
                }
                if (r < 0)
                        return r;
        }
        /* (f) host files that someone changed or added by hand since they were installed (a
         * removed one is no loss: the new generation writes its own). */
        if (d->state->n_gens) {
                struct state_host_diff *hd = NULL;
                size_t nhd = 0;
                struct mkm_err herr = {};
                int r = state_host_files_diff(ctx, d->state, &hd, &nhd, &herr);
                if (r < 0 && !ctx->force)
                        return mkm_err_set(reterr, r, "cannot compare the host files of '%s' with what mkmachine "
                                           "installed (--force skips this): %s", d->name, herr.msg[0] ? herr.msg : mkm_strerror(r));
                if (r < 0)
                        mkm_warn(ctx, "cannot compare the host files of '%s' with what mkmachine installed: %s; "
                                      "ignoring (--force)", d->name, herr.msg[0] ? herr.msg : mkm_strerror(r));
                for (size_t i = 0; r >= 0 && i < nhd; i++)
                        if (hd[i].change == STATE_HOST_CHANGED)
                                WHY("\n  host file: %.300s was changed by hand since generation %u installed it, and "
                                    "would be replaced or removed ('mkmachine verify %s' shows it)",
                                    hd[i].path, hd[i].gen, d->name);
                        else if (hd[i].change == STATE_HOST_ADDED)
                                WHY("\n  host file: %.300s was added by hand (generation %u has none) and would be "
                                    "removed ('mkmachine verify %s' shows it)", hd[i].path, hd[i].gen, d->name);
                state_host_diffs_free(hd, nhd);
        }
        /* (e) for a new tree: another image of the name beside it, which the tree would hide
         * from systemd (a tree already there hides it already). */
        _cleanup_free_ char *raw = NULL;
        struct stat rst;
        if (asprintf(&raw, "%s.raw", d->name) < 0)
                return -ENOMEM;
        if (!d->state->tree_exists && fstatat(d->machines_fd, raw, &rst, AT_SYMLINK_NOFOLLOW) == 0)
                WHY("\n  another image: %.300s/%s has the same name (systemd would use the directory instead)",
                    d->machines_dir, raw);
        /* (b) drift: the live tree compared with its generation's manifest (drift.h); what it
         * finds blocking is listed like the reasons above. */
        if (d->state->tree_exists && d->state->live) {
                _cleanup_free_ char *drift = NULL;
                struct mkm_err derr = {};
                int r = drift_reason(ctx, d, &drift, &derr);
                if (r < 0 && !ctx->force)
                        return mkm_err_set(reterr, r, "cannot compare machine '%s' with its manifest (--force skips this): %s",
                                           d->name, derr.msg[0] ? derr.msg : mkm_strerror(r));
                if (r < 0)
                        mkm_warn(ctx, "cannot compare machine '%s' with its manifest: %s; ignoring (--force)", d->name,
                                 derr.msg[0] ? derr.msg : mkm_strerror(r));
                else if (drift)
                        WHY("%s", drift);
        }
#undef WHY
        if (!why[0])
                return 0;
        if (ctx->force) {
                mkm_warn(ctx, "--force: going ahead to %s machine '%s' despite:%s", action, d->name, why);
                return 0;
        }
        return mkm_err_set(reterr, -MKM_E_REFUSED, "refusing to %s machine '%s' (--force overrides):%s", action, d->name,
                           why);
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

static char *gen_tree(const char *name, unsigned gen) {
        char *s = NULL;
        return asprintf(&s, ".#%s.gen-%u", name, gen) < 0 ? NULL : s;
}

/* Keep the tree at from (in the machines dir) as generation gen's: whatever is at .#NAME.gen-N
 * goes first (no generation claims it: each has its own number), then a rename that never
 * replaces. Without the removal the rename fails and the old tree is not kept. */
static int keep_tree_as(struct mkm_ctx *ctx, struct deploy *d, const char *from, unsigned gen) {
        _cleanup_free_ char *to = gen_tree(d->name, gen);
        if (!to)
                return -ENOMEM;
        int r = fs_rm_rf_at(d->machines_fd, to);
        if (r < 0 && r != -ENOENT)
                mkm_warn(ctx, "cannot remove %s/%s: %s", d->machines_dir, to, mkm_strerror(r));
        if (syscall(SYS_renameat2, d->machines_fd, from, d->machines_fd, to, RENAME_NOREPLACE) < 0)
                return negative_errno();
        return 0;
}

static int cmp_seq_desc(const void *a, const void *b) {
        const struct machine_gen *x = *(const struct machine_gen *const *)a, *y = *(const struct machine_gen *const *)b;
        return x->deployed_seq > y->deployed_seq ? -1 : x->deployed_seq < y->deployed_seq;
}

/* Remove the non-live generations beyond ctx->keep_generations, the least recently live first:
 * the state, then the tree. A crash in between leaves a generation-named tree no generation has,
 * which recovery removes; the other order left a half-removed tree that still had its root (and
 * so its generation): rollback could deploy it. */
void deploy_prune(struct mkm_ctx *ctx, struct deploy *d) {
        struct machine_state *s = d->state;
        _cleanup_free_ struct machine_gen **old = mkm_new(struct machine_gen *, s->n_gens + 1);
        if (!old)
                return;
        size_t n = 0;
        for (size_t i = 0; i < s->n_gens; i++)
                if (!s->gens[i].live)
                        old[n++] = &s->gens[i];
        qsort(old, n, sizeof *old, cmp_seq_desc);
        for (size_t i = ctx->keep_generations; i < n; i++) {
                struct machine_gen *g = old[i];
                mkm_debug(ctx, "removing generation %u of '%s' (keeping %u)", g->gen, d->name, ctx->keep_generations);
                int r = state_remove_gen_dir(g->dir);
                if (r >= 0 || r == -ENOENT) {
                        _cleanup_free_ char *gen_dir = fs_path_join(d->state_dir, "gen");
                        _cleanup_close_ int gfd = gen_dir ? open(gen_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -EBADF;
                        if (gfd >= 0)
                                (void)fsync(gfd);       /* the state is gone before the tree goes */
                        r = g->tree ? fs_rm_rf_at(AT_FDCWD, g->tree) : 0;
                }
                if (r < 0 && r != -ENOENT)
                        mkm_warn(ctx, "cannot remove generation %u of '%s': %s; ignoring", g->gen, d->name, mkm_strerror(r));
        }
        (void)fsync(d->machines_fd);
        _cleanup_free_ char *gen_dir = fs_path_join(d->state_dir, "gen");
        _cleanup_close_ int gfd = gen_dir ? open(gen_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -EBADF;
        if (gfd >= 0)
                (void)fsync(gfd);
}

static int reload(struct mkm_ctx *ctx, struct deploy *d, struct mkm_err *reterr) {
        d->state = state_free(d->state);
        return state_load(ctx, d->name, &d->state, reterr);
}

int deploy_commit(struct mkm_ctx *ctx, struct deploy *d, const struct state_new_gen *g, unsigned *ret_gen,
                  struct mkm_err *reterr) {
        const char *stage_name = strrchr(d->staging, '/') + 1;
        /* Durability once for the whole tree, instead of an fsync per file. */
        writeback_end(d, true);
        if (syncfs(d->root_fd) < 0)
                return mkm_err_set(reterr, negative_errno(), "syncfs %s: %s", d->staging, strerror(errno));
        struct stat st;
        if (fstat(d->root_fd, &st) < 0)
                return mkm_err_set(reterr, negative_errno(), "stat %s: %s", d->staging, strerror(errno));
        closep(&d->root_fd);
        d->root_fd = -EBADF;

        /* 1. The new generation's state, complete and on disk before anything is swapped. */
        struct state_new_gen ng = *g;
        ng.root_dev = st.st_dev;
        ng.root_ino = st.st_ino;
        unsigned n = 0;
        int r = state_write_gen(ctx, d->state, &ng, &n, reterr);
        if (r < 0)
                return r;
        const struct machine_gen *old = d->state->live;
        unsigned old_gen = old ? old->gen : 0;

        /* 2. The commit point. What is at NAME must be what deploy_begin saw, which the checks
         * judged (no state, drift, running): something that appeared or replaced it while the
         * build ran was never shown to anyone, and would be thrown away without a word. */
        struct stat tst;
        bool exists = fstatat(d->machines_fd, d->name, &tst, AT_SYMLINK_NOFOLLOW) == 0;
        const struct machine_state *seen = d->state;
        _cleanup_free_ char *gen_dir = NULL;
        if (asprintf(&gen_dir, "%s/gen/%u", d->state_dir, n) < 0)
                return -ENOMEM;
        bool retired = true;    /* false: r (and reterr) are the host files' failure, not the swap's */
        if (exists && (!seen->tree_exists || (uint64_t)tst.st_dev != seen->tree_dev || (uint64_t)tst.st_ino != seen->tree_ino))
                r = -MKM_E_REFUSED;
        /* The old generation's host files that the new one has not (or otherwise) go first: a
         * crash after the swap never starts the new tree with the old tree's settings. The
         * marker tells recovery to rewrite them if we die before step 4. */
        else if ((r = state_host_pending(d->state, true, reterr)) < 0 ||
                 (r = state_retire_host_files(ctx, d->state, gen_dir, reterr)) < 0)
                retired = false;
        else if (exists)
                r = syscall(SYS_renameat2, d->machines_fd, stage_name, d->machines_fd, d->name, RENAME_EXCHANGE) < 0
                            ? negative_errno() : 0;
        else    /* never over something that appears now */
                r = syscall(SYS_renameat2, d->machines_fd, stage_name, d->machines_fd, d->name, RENAME_NOREPLACE) < 0
                            ? negative_errno() : 0;
        if (r < 0) {
                /* Never deployed: its state goes (recovery would remove it too), and the old
                 * generation's host files are put back. */
                (void)state_remove_gen_dir(gen_dir);
                struct mkm_err ignored = {};
                if (!seen->live || state_install_host_files(ctx, seen, seen->live, &ignored) >= 0)
                        (void)state_host_pending(seen, false, &ignored);
                if (!retired)
                        return mkm_err_prefix(reterr, r, "nothing was deployed");
                if (r == -MKM_E_REFUSED || r == -EEXIST)
                        return mkm_err_set(reterr, -MKM_E_REFUSED,
                                           "%s %s while the build ran; nothing was deployed (build again to see what "
                                           "it would replace)",
                                           d->target, seen->tree_exists ? "was replaced" : "appeared");
                return mkm_err_set(reterr, r, "cannot %s %s into place: %s", exists ? "swap" : "move", d->target,
                                   mkm_strerror(r));
        }
        if (fsync(d->machines_fd) < 0)
                mkm_warn(ctx, "cannot sync %s: %s", d->machines_dir, strerror(errno));
        *ret_gen = n;

        /* 3. The staging name now holds the previous tree: keep it as its generation's, or, for a
         * tree without state (replaced with --force), drop it. */
        if (exists) {
                if (old_gen) {
                        r = keep_tree_as(ctx, d, stage_name, old_gen);
                        if (r < 0)
                                mkm_warn(ctx, "cannot keep the previous generation %u of '%s': %s", old_gen, d->name,
                                         mkm_strerror(r));
                        else {
                                free(d->staging);
                                d->staging = NULL;
                        }
                }
                /* else deploy_free() removes the staging name, which holds the old tree */
                (void)fsync(d->machines_fd);
        } else {
                free(d->staging);
                d->staging = NULL;
        }

        /* 4. The host files of the new generation. */
        r = reload(ctx, d, reterr);
        if (r >= 0 && !d->state->live)
                r = mkm_err_set(reterr, -EIO, "generation %u of '%s' does not match the tree at %s", n, d->name, d->target);
        if (r >= 0)
                r = state_install_host_files(ctx, d->state, d->state->live, reterr);
        if (r >= 0)
                r = state_host_pending(d->state, false, reterr);
        if (r < 0)
                return mkm_err_prefix(reterr, r, "machine '%s' is deployed, but its host files are not", d->name);

        /* 5. Older generations beyond what is kept. */
        deploy_prune(ctx, d);
        return 0;
}

int deploy_rollback(struct mkm_ctx *ctx, struct deploy *d, unsigned *ret_from, unsigned *ret_to,
                    struct mkm_err *reterr) {
        struct machine_state *s = d->state;
        if (!s->live)
                return mkm_err_set(reterr, -ENOENT, "machine '%s' has no live generation to roll back from", d->name);
        struct machine_gen *to = NULL;
        for (size_t i = 0; i < s->n_gens; i++)
                if (!s->gens[i].live && s->gens[i].tree && (!to || s->gens[i].deployed_seq > to->deployed_seq))
                        to = &s->gens[i];
        if (!to)
                return mkm_err_set(reterr, -ENOENT, "machine '%s' has no other generation to roll back to (see "
                                                    "--keep-generations)", d->name);
        unsigned from_gen = s->live->gen, to_gen = to->gen;
        const char *to_name = strrchr(to->tree, '/') + 1;
        _cleanup_free_ char *to_tree = strdup(to_name);
        if (!to_tree)
                return -ENOMEM;
        /* Its new SEQ first: a crash before the swap leaves it a kept generation (rolled back to
         * next time as well). */
        int r = state_set_deployed(to, state_next_seq(s), reterr);
        if (r < 0)
                return r;
        /* As deploy_commit: no moment with one tree and the other's host files. */
        r = state_host_pending(s, true, reterr);
        if (r < 0)
                return r;
        r = state_retire_host_files(ctx, s, to->dir, reterr);
        if (r >= 0 && syscall(SYS_renameat2, d->machines_fd, to_tree, d->machines_fd, d->name, RENAME_EXCHANGE) < 0)
                r = mkm_err_set(reterr, negative_errno(), "cannot swap %s/%s into place: %s", d->machines_dir, to_tree,
                                strerror(errno));
        if (r < 0) {
                struct mkm_err ignored = {};
                if (state_install_host_files(ctx, s, s->live, &ignored) >= 0)
                        (void)state_host_pending(s, false, &ignored);
                return r;
        }
        if (fsync(d->machines_fd) < 0)
                mkm_warn(ctx, "cannot sync %s: %s", d->machines_dir, strerror(errno));
        r = keep_tree_as(ctx, d, to_tree, from_gen);
        if (r < 0)
                mkm_warn(ctx, "cannot keep generation %u of '%s' as .#%s.gen-%u: %s", from_gen, d->name, d->name, from_gen,
                         mkm_strerror(r));
        (void)fsync(d->machines_fd);
        r = reload(ctx, d, reterr);
        if (r >= 0)
                r = state_install_host_files(ctx, d->state, d->state->live, reterr);
        if (r >= 0)
                r = state_host_pending(d->state, false, reterr);
        if (r < 0)
                return mkm_err_prefix(reterr, r, "machine '%s' is rolled back, but its host files are not", d->name);
        *ret_from = from_gen;
        *ret_to = to_gen;
        return 0;
}

int deploy_remove(struct mkm_ctx *ctx, struct deploy *d, struct mkm_err *reterr) {
        /* The host first, so systemd stops knowing the machine; then the trees; the state last.
         * The mark makes recovery put the host files back if we die while the tree is still
         * deployed (the state directory goes at the end, and the mark with it). */
        int r = d->state->live ? state_host_pending(d->state, true, reterr) : 0;
        if (r < 0)
                return r;
        r = state_install_host_files(ctx, d->state, NULL, reterr);
        if (r < 0)
                return r;
        struct stat st;
        if (fstatat(d->machines_fd, d->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                /* Out of the way under a staging name first: a crash mid-way leaves no half tree at
                 * NAME, and recovery removes the rest. */
                _cleanup_free_ char *tmpl = NULL;
                if (asprintf(&tmpl, "%s/.#%s.XXXXXX", d->machines_dir, d->name) < 0)
                        return -ENOMEM;
                if (!mkdtemp(tmpl))
                        return mkm_err_set(reterr, negative_errno(), "cannot create a directory in %s: %s",
                                           d->machines_dir, strerror(errno));
                const char *tn = strrchr(tmpl, '/') + 1;
                /* (rename replaces the empty directory mkdtemp made, atomically) */
                if (renameat(d->machines_fd, d->name, d->machines_fd, tn) < 0) {
                        r = negative_errno();
                        (void)rmdir(tmpl);
                        return mkm_err_set(reterr, r, "cannot move %s away: %s", d->target, mkm_strerror(r));
                }
                (void)fsync(d->machines_fd);
                r = fs_rm_rf_at(d->machines_fd, tn);
                if (r < 0)
                        return mkm_err_set(reterr, r, "cannot remove %s/%s: %s", d->machines_dir, tn, mkm_strerror(r));
        }
        /* Each kept generation: its state first, then its tree (as deploy_prune, so that no
         * half-removed tree is ever a generation). */
        for (size_t i = 0; i < d->state->n_gens; i++) {
                const struct machine_gen *g = &d->state->gens[i];
                if (!g->tree || g->live)
                        continue;
                if ((r = state_remove_gen_dir(g->dir)) < 0 && r != -ENOENT)
                        return mkm_err_set(reterr, r, "cannot remove %s: %s", g->dir, mkm_strerror(r));
                if ((r = fs_rm_rf_at(AT_FDCWD, g->tree)) < 0 && r != -ENOENT)
                        return mkm_err_set(reterr, r, "cannot remove %s: %s", g->tree, mkm_strerror(r));
        }
        (void)fsync(d->machines_fd);
        /* The state directory, its lock file included: we hold the lock until deploy_free. */
        _cleanup_close_ int sfd = open(d->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_strv_free_ char **names = NULL;
        r = sfd >= 0 ? fs_list_names(sfd, NULL, NULL, 0, &names) : errno == ENOENT ? 0 : negative_errno();
        if (r < 0)      /* said as it is, not as "Directory not empty" at the rmdir below */
                return mkm_err_set(reterr, r, "cannot list %s: %s", d->state_dir, mkm_strerror(r));
        for (char **n = names; n && *n; n++)
                if (strcmp(*n, ".lock") != 0 && (r = fs_rm_rf_at(sfd, *n)) < 0 && r != -ENOENT)
                        return mkm_err_set(reterr, r, "cannot remove %s/%s: %s", d->state_dir, *n, mkm_strerror(r));
        (void)unlinkat(sfd, ".lock", 0);
        /* From here another command may make a new state directory and lock: not ours to remove. */
        d->locked = false;
        if (rmdir(d->state_dir) < 0 && errno != ENOENT)
                return mkm_err_set(reterr, negative_errno(), "cannot remove %s: %s", d->state_dir, strerror(errno));
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
        /* A state directory without generations (a first build or import that failed, a name
         * only looked at) is not a machine: it goes, with its lock file, while we hold the lock
         * (whoever opened the file meanwhile sees it gone and opens it again: deploy_begin). */
        _cleanup_free_ char *gen = d->locked && d->state_dir ? fs_path_join(d->state_dir, "gen") : NULL;
        _cleanup_free_ char *lock = gen ? fs_path_join(d->state_dir, ".lock") : NULL;
        if (lock && fs_fd_is_path(d->lock_fd, lock) && (rmdir(gen) == 0 || errno == ENOENT)) {
                (void)unlink(lock);
                (void)rmdir(d->state_dir);
        }
        if (d->machines_dir)
                state_image_unlock(d->machines_dir, d->name, d->image_lock_fd);
        else
                closep(&d->image_lock_fd);
        state_free(d->state);
        closep(&d->lock_fd);
        free(d->name);
        free(d->machines_dir);
        free(d->state_dir);
        free(d->target);
        free(d->staging);
        free(d);
        return NULL;
}
