/* SPDX-License-Identifier: MIT */
/* The build pipeline and the lock policy around it, driving a distribution's backend. */
#include "build.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cache.h"
#include "ctx.h"
#include "deploy.h"
#include "deployed.h"
#include "hooks.h"
#include "hostinfo.h"
#include "lock.h"
#include "manifest.h"
#include "normalize.h"
#include "pipeline.h"
#include "recipe.h"
#include "sandbox.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strv.h"
#include "verify.h"

#define LOCK_MAX (16u << 20)

void build_result_done(struct build_result *r) {
        if (!r)
                return;
        free(r->name);
        free(r->target);
        free(r->lock_path);
        free(r->digest);
        lock_diff_free(r->changes);
        *r = (struct build_result){};
}

/* The backends, by distribution: the one place build.c tells distributions apart. A new backend
 * adds its line here (backend.h). */
static const struct backend_ops *const backends[] = {
        &backend_arch,
        &backend_debian,
};

static const struct backend_ops *backend_named(const char *name) {
        for (size_t i = 0; name && i < ELEMENTSOF(backends); i++)
                if (strcmp(backends[i]->distribution, name) == 0)
                        return backends[i];
        return NULL;
}

static const struct backend_ops *backend_for(const struct recipe *r) {
        return backend_named(recipe_distribution_to_string(r->distribution));
}

int build_lock_diff(const struct lock *old, const struct lock *new, struct lock_diff **ret) {
        const char *a = old ? old->distribution : NULL, *b = new ? new->distribution : NULL;
        const struct backend_ops *ops = backend_named(a ? a : b);
        bool same = !a || !b || strcmp(a, b) == 0;
        return lock_diff(old, new, same && ops ? ops->vercmp : NULL, ret);
}

static void list(FILE *f, const char *key, char **l) {
        fprintf(f, "%s", key);
        for (; l && *l; l++)
                fprintf(f, " %s", *l);
        fputc('\n', f);
}

int build_inputs_digest(const struct recipe *r, char **ret) {
        const struct backend_ops *ops = backend_for(r);
        if (!ops)
                return -EOPNOTSUPP;
        _cleanup_free_ char *own = NULL;
        int q = ops->inputs(r, &own);
        if (q < 0)
                return q;
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "distribution %s\n", recipe_distribution_to_string(r->distribution));
        fprintf(f, "architecture %s\n", r->architecture ? r->architecture : "");
        fprintf(f, "snapshot %s\n", r->snapshot ? r->snapshot : "");
        fputs(own, f);
        list(f, "packages", r->packages);
        list(f, "providers", r->providers);
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        char hex[HASH_SHA256_HEX];
        q = hash_buf_hex(HASH_SHA256, text, len, hex);
        free(text);
        if (q < 0)
                return q;
        if (asprintf(ret, "sha256:%s", hex) < 0)
                return -ENOMEM;
        return 0;
}

/* Once the recipe and its lock are read, a parse error comes from repository or package data
 * (a db, a .PKGINFO, a hook file), not from the user's input: exit status 1, not 2. */
static int not_usage(int q, struct mkm_err *reterr) {
        if (q == -MKM_E_PARSE) {
                if (reterr)
                        reterr->code = -MKM_E_BADDATA;
                return -MKM_E_BADDATA;
        }
        return q;
}

static void build_done(struct build *b) {
        lock_free(b->lock_in);
        lock_free(b->lock_out);
        free(b->inputs);
        free(b->lock_path);
        cache_free(b->cache);
        deploy_free(b->deploy);
}

#define LOCK_ANYONE_WRITES \
        "the recipe's directory is one anyone can write, where a lock may be anyone's (keep the recipe in " \
        "a directory of its own)"

/* RECIPE.lock comes with a shared recipe, from a directory its author may own: read only as a
 * regular file beside the recipe (fs_open_beside(): no link out of the directory, no FIFO or
 * device, no hard link to another owner's file). Another lock_path (a generation's, rebuild) is
 * mkmachine's own. The errors of fs_open_beside() and fs_read_fd(). */
static int read_lock_file(const struct build *b, char **ret, size_t *ret_len) {
        const char *path = b->lock_path;
        if (!b->lock_beside)
                return fs_read_file_follow_at(AT_FDCWD, path, LOCK_MAX, ret, ret_len);
        _cleanup_free_ char *dir = fs_path_dirname(path);
        if (!dir)
                return -ENOMEM;
        struct fs_reader rd;
        int q = fs_reader_for_uid(b->lock_reader, &rd);
        if (q < 0)
                return q;
        _cleanup_close_ int fd = fs_open_beside(dir, path, false, &rd, NULL, NULL, NULL);
        if (fd < 0)
                return fd;
        return fs_read_fd(fd, LOCK_MAX, ret, ret_len);
}

static int lock_read_error(struct mkm_err *reterr, const char *path, int q) {
        /* What fs_open_beside() refuses is worded as for every other source beside the recipe. */
        const char *refused = fs_beside_refusal(q);
        if (refused)
                return mkm_err_set(reterr, q, "cannot read %s: the lock %s", path, refused);
        const char *why = q == -EXDEV    ? "a link out of the recipe's directory"
                          : q == -EBADFD ? "not a regular file"
                          : q == -EFBIG  ? "larger than a lock can be"
                                         : mkm_strerror(q);
        return mkm_err_set(reterr, q, "cannot read %s: %s", path, why);
}

/* Load the recipe, its lock (if it still matches the recipe; o->lock_path instead of RECIPE.lock
 * when set), open the cache. */
static int prepare(struct mkm_ctx *ctx, const char *path, bool relock, const struct build_opts *o,
                   struct recipe **ret_recipe, struct build *b, struct mkm_err *reterr) {
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        int q = recipe_load(ctx, path, &r, reterr);
        if (q < 0)
                return q;
        if (o && o->recipe_files) {
                /* A stored recipe's sources are judged by where its original files were. */
                char **files = strv_copy(o->recipe_files);
                if (!files)
                        return -ENOMEM;
                strv_free(r->files);
                r->files = files;
                recipe_forget_source_dirs(r);
                /* Whose permissions the first build read them with, as recorded; a state from
                 * before readers were recorded: judged from the files now. */
                if (o->has_reader)
                        r->reader_uid = o->reader;
                else
                        recipe_reader_from_files(r);
        }
        q = recipe_validate_for_build(r, reterr);
        if (q < 0)
                return q;
        if (!backend_for(r))
                return mkm_err_set(reterr, -MKM_E_RECIPE, "%s: Distribution=%s is not supported yet (arch is)", path,
                                   recipe_distribution_to_string(r->distribution));
        b->ctx = ctx;
        q = build_inputs_digest(r, &b->inputs);
        if (q < 0)
                return q;
        if (o && o->lock_path ? !(b->lock_path = strdup(o->lock_path)) : asprintf(&b->lock_path, "%s.lock", r->path) < 0)
                return -ENOMEM;
        b->lock_beside = !(o && o->lock_path);
        b->lock_reader = r->reader_uid;
        relock = relock || (o && (o->update || (o->stored && !o->lock_path)));

        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        q = read_lock_file(b, &text, &len);
        if (q == -MKM_E_ANYONE_WRITES) {
                /* Anyone could have put it there: not read, as if absent (and not written). */
                mkm_warn(ctx, "%s is not used: %s", b->lock_path, LOCK_ANYONE_WRITES);
                q = -ENOENT;
        }
        if (q < 0 && q != -ENOENT)
                return lock_read_error(reterr, b->lock_path, q);
        if (q >= 0 && !relock) {
                q = lock_parse(text, len, b->lock_path, &b->lock_in, reterr);
                if (q < 0)
                        return q;
                if (strcmp(b->lock_in->inputs, b->inputs) != 0 ||
                    strcmp(b->lock_in->distribution, recipe_distribution_to_string(r->distribution)) != 0) {
                        if (ctx->locked)
                                return mkm_err_set(reterr, -MKM_E_LOCK,
                                                   "%s does not cover %s any more ([Bootstrap] changed); run 'mkmachine "
                                                   "lock %s' and commit the new lock",
                                                   b->lock_path, path, path);
                        mkm_info(ctx, "%s: [Bootstrap] changed since the lock was written; resolving again", path);
                        b->lock_in = lock_free(b->lock_in);
                }
        } else if (q == -ENOENT && ctx->locked)
                return mkm_err_set(reterr, -MKM_E_LOCK, "--locked: %s does not exist; run 'mkmachine lock %s'",
                                   b->lock_path, path);
        q = cache_open(ctx, ctx->cache_dir, &b->cache, reterr);
        if (q < 0)
                return q;
        *ret_recipe = TAKE_PTR(r);
        return 0;
}

/* Write the lock beside the recipe when it changed. */
static int write_lock(struct build *b, bool *ret_written, struct mkm_err *reterr) {
        _cleanup_free_ char *text = NULL, *old = NULL;
        int q = lock_format(b->lock_out, &text);
        if (q < 0)
                return q;
        *ret_written = false;
        if (read_lock_file(b, &old, NULL) >= 0 && strcmp(old, text) == 0)
                return 0;
        /* Into the recipe's directory as it was checked (fs_open_beside() of the directory itself:
         * one swapped for a link since is refused), by name in that fd. */
        _cleanup_free_ char *dir = fs_path_dirname(b->lock_path);
        if (!dir)
                return -ENOMEM;
        const char *base = strrchr(b->lock_path, '/');
        base = base ? base + 1 : b->lock_path;
        struct stat dst;
        _cleanup_close_ int dfd = b->lock_beside ? fs_open_beside(dir, dir, true, NULL, NULL, &dst, NULL)
                                                 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0 && b->lock_beside && fs_anyone_writes(&dst))
                return mkm_err_set(reterr, -MKM_E_ANYONE_WRITES, "not writing %s: %s", b->lock_path, LOCK_ANYONE_WRITES);
        if (dfd < 0)
                q = b->lock_beside ? dfd : negative_errno();
        else
                q = fs_write_atomic_at(dfd, base, text, strlen(text), 0644);
        if (q < 0)
                return mkm_err_set(reterr, q, "cannot write %s: %s", b->lock_path,
                                   q == -EXDEV ? "the recipe's directory is a link now" : mkm_strerror(q));
        *ret_written = true;
        return 0;
}

/* Deploy the staged tree as a new generation, with what it was built from (state.h). */
static int commit(struct build *b, const struct recipe *r, const struct host_files *hf, const char *manifest,
                  const char *digest, unsigned *ret_gen, struct mkm_err *reterr) {
        _cleanup_free_ char *canon = NULL, *lock = NULL;
        int q = recipe_format(r, &canon);
        if (q < 0)
                return q;
        q = lock_format(b->lock_out, &lock);
        if (q < 0)
                return q;
        /* The recipe files it was made from, one a line: rebuild judges Copy= and
         * RootAuthorizedKeys= sources by their directories, as this build did. */
        _cleanup_free_ char *files = NULL;
        size_t files_len = 0;
        FILE *ff = open_memstream(&files, &files_len);
        if (!ff)
                return -ENOMEM;
        for (char **f = r->files; f && *f; f++)
                fprintf(ff, "%s\n", *f);
        if (fclose(ff) != 0)
                return -ENOMEM;
        char *paths[3] = {};
        q = hooks_host_file_paths(r->name, paths);
        if (q < 0)
                return q;
        struct state_host_file host[3] = {
                { paths[0], hf->nspawn }, { paths[1], hf->dropin }, { paths[2], hf->modules_load },
        };
        char reader[32];
        (void)snprintf(reader, sizeof reader, "%u\n", (unsigned)r->reader_uid);
        struct state_new_gen g = {
                .recipe = canon, .recipe_path = b->origin && b->origin[0] ? b->origin : r->path,
                .recipe_files = files, .recipe_reader = reader, .lock = lock, .manifest = manifest, .digest = digest,
                .host = host, .n_host = ELEMENTSOF(host), .source_date_epoch = b->source_date_epoch,
                .packages = b->lock_out->n,
        };
        q = deploy_commit(b->ctx, b->deploy, &g, ret_gen, reterr);
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                free(paths[i]);
        return q;
}

int64_t build_default_epoch(const struct build *b) {
        if (b->ctx->source_date_epoch >= 0)
                return b->ctx->source_date_epoch;
        if (b->recipe->snapshot_epoch >= 0)
                return b->recipe->snapshot_epoch;
        if (b->source_date_epoch >= 0)
                return b->source_date_epoch;
        int64_t max = 0;
        for (size_t i = 0; i < b->lock_out->n; i++)
                if (b->lock_out->pkgs[i].builddate > max)
                        max = b->lock_out->pkgs[i].builddate;
        return max;
}

/* Warn now, not after the download, about what the hooks cannot make work. */
static int precheck_hooks(struct build *b) {
        _cleanup_strv_free_ char **names = calloc(1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < b->lock_out->n; i++) {
                int q = strv_push(&names, b->lock_out->pkgs[i].name);
                if (q < 0)
                        return q;
        }
        (void)hooks_precheck(b->ctx, b->recipe, names);
        return 0;
}

/* Install every package in order, each once the pipeline says it is in the cache and trusted. */
static int install_packages(struct build *b, const struct backend_ops *ops, struct backend *be, struct pipeline *p,
                            const struct pipeline_item *items, enum pipeline_trust trust, struct mkm_err *reterr) {
        struct lock *l = b->lock_out;
        int q = ops->install_begin(be, reterr);
        if (q < 0)
                return q;
        mkm_emit(b->ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "installing packages" });
        for (size_t i = 0; i < l->n; i++) {
                /* Nothing parses a package before it is known to be the one the metadata promised. */
                char signer[VERIFY_FPR_MAX] = "";
                q = pipeline_wait(p, i, signer, reterr);
                if (q < 0)
                        return q;
                _cleanup_close_ int fd = -EBADF;
                q = cache_open_fd(b->cache, items[i].sha256, &fd);
                if (q < 0)
                        return mkm_err_set(reterr, q, "%s: package not in the cache: %s",
                                           items[i].name ? items[i].name : items[i].label, mkm_strerror(q));
                q = ops->install_one(be, i, fd, signer, reterr);
                if (q < 0)
                        return q;
                mkm_emit(b->ctx, &(struct mkm_event){ .type = MKM_EV_PROGRESS, .text = "installing", .n = (unsigned)i + 1,
                                                      .count = (unsigned)l->n });
        }
        uint64_t waited = 0;
        unsigned native = 0, by_gpg = 0;
        pipeline_stats(p, &waited, &native, &by_gpg);
        if (trust == PIPELINE_TRUST_DETACHED_SIG)
                mkm_debug(b->ctx,
                          "the install waited %.2f s for downloads and signature checks (%u checked in-process, %u by gpg)",
                          (double)waited / 1e9, native, by_gpg);
        else
                mkm_debug(b->ctx, "the install waited %.2f s for downloads and digest checks", (double)waited / 1e9);
        q = pipeline_finish(p, reterr);
        if (q < 0)
                return q;
        return ops->install_end(be, reterr);
}

/* Plan, and unless plan_only, download, check and install into b->deploy's staging root, through
 * the recipe's backend (backend.h). Sets b->lock_out and b->source_date_epoch. */
static int run_backend(struct build *b, struct mkm_err *reterr) {
        const struct backend_ops *ops = backend_for(b->recipe);
        struct backend *be = NULL;
        struct pipeline *p = NULL;
        const struct pipeline_item *items = NULL;
        enum pipeline_trust trust = PIPELINE_TRUST_DIGEST;
        struct verify_keyring *keyring = NULL;
        assert(ops);
        /* Cache commits skip their fsyncs; one sync at the end makes them durable (cache.h). */
        cache_set_deferred_sync(b->cache, true);
        int q = ops->new(b, &be, reterr);
        if (q < 0)
                goto out;
        q = ops->plan(be, reterr);
        if (q < 0)
                goto out;
        if (b->plan_only && (b->metadata_only || !ops->lock_needs_packages))
                goto out;
        if (!b->plan_only) {
                b->source_date_epoch = build_default_epoch(b);
                q = precheck_hooks(b);
                if (q < 0)
                        goto out;
        }
        q = ops->sources(be, &items, &trust, &keyring, reterr);
        if (q < 0)
                goto out;
        q = pipeline_start(b->ctx, b->cache, trust, keyring, items, b->lock_out->n, &p, reterr);
        if (q < 0)
                goto out;
        if (b->plan_only) {
                q = pipeline_wait_all(p, reterr);
                if (q >= 0)
                        q = ops->lock_done(be, p, reterr);
                goto out;
        }
        q = install_packages(b, ops, be, p, items, trust, reterr);
out:
        /* The pipeline borrows the backend's items and keyring: it goes first. */
        p = pipeline_free(p);
        (void)cache_sync(b->cache);     /* the plan's entries too, when no pipeline ran */
        if (be)
                ops->free(be);
        return q;
}

int build_machine(struct mkm_ctx *ctx, const char *recipe_path, struct build_result *ret, struct mkm_err *reterr) {
        return build_machine_opts(ctx, recipe_path, NULL, ret, reterr);
}

/* The lock of the generation this build replaces (read under the build lock, before the swap):
 * NULL when there is none; a lock that cannot be read costs the summary only. */
static struct lock *replaced_lock(struct mkm_ctx *ctx, const char *name) {
        struct lock *l = NULL;
        struct mkm_err err = {};
        int q = deployed_lock(ctx, name, &l, &err);
        if (q < 0 && q != -ENOENT)
                mkm_warn(ctx, "cannot compare the packages with the deployed machine: %s", err.msg[0] ? err.msg : mkm_strerror(q));
        return q < 0 ? NULL : l;
}

int build_machine_opts(struct mkm_ctx *ctx, const char *recipe_path, const struct build_opts *o,
                       struct build_result *ret, struct mkm_err *reterr) {
        struct build b = { .source_date_epoch = -1, .write_lock = !(o && o->stored) };
        _cleanup_(lock_freep) struct lock *replaced = NULL;
        struct host_files hf = {};
        bool prepared = false, critical = false;
        sigset_t crit_saved, crit_old;
        _cleanup_free_ char *manifest = NULL;
        char digest[MANIFEST_DIGEST_LEN] = "";
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        struct sandbox_cache *own_sandbox = NULL;
        int q = prepare(ctx, recipe_path, false, o, &r, &b, reterr);
        if (q < 0)
                goto out;
        prepared = true;
        b.recipe = r;
        /* One seccomp compilation and one user namespace for every script of this build. */
        if (!ctx->sandbox) {
                struct hooks_userns u = {};
                struct mkm_err uerr = {};
                (void)hooks_userns(r, &u, &uerr);       /* a bad value was refused when the recipe loaded */
                uint32_t base = hooks_sandbox_uid_base(r->name, u.shift ? u.base : 0);
                if (base == 0) {
                        q = mkm_err_set(reterr, -EBUSY,
                                        "no free UID range for the build's sandbox: the %d tried are the machine's "
                                        "own, or a host user's or group's (or the user database cannot be read), or "
                                        "a machine's on this host, or a running container's",
                                        HOOKS_SANDBOX_SLOT_TRIES);
                        goto out;
                }
                q = sandbox_cache_new(base, &own_sandbox);
                if (q < 0)
                        goto out;
                ctx->sandbox = own_sandbox;
        }
        b.origin = o && o->origin ? o->origin : r->path;
        q = deploy_begin(ctx, r->name, &b.deploy, reterr);
        if (q < 0)
                goto out;
        /* Refuse now, before anything is downloaded, what could not be replaced at the end; the
         * image lock taken here keeps nspawn from starting the machine until the build is done. */
        q = deploy_check_replaceable(ctx, b.deploy, "replace", reterr);
        if (q < 0)
                goto out;
        /* Under the lock, so the deployed generation it compares with is the one this replaces. */
        if (o && o->gate && (q = o->gate(o->gate_userdata, ctx, r, reterr)) < 0)
                goto out;
        replaced = replaced_lock(ctx, r->name);
        q = deploy_stage(b.deploy, reterr);
        if (q < 0)
                goto out;
        q = run_backend(&b, reterr);
        if (q < 0)
                goto out;
        deploy_writeback_start(b.deploy);
        unsigned sdver = 0;
        (void)hostinfo_systemd_version(ctx, &sdver);
        q = hooks_apply(ctx, r, b.deploy->staging, b.deploy->root_fd, sdver, b.source_date_epoch, &hf, reterr);
        if (q < 0)
                goto out;
        q = normalize_remove_generated(ctx, b.deploy->root_fd, reterr);
        if (q < 0)
                goto out;
        /* Time stamps are clamped in the manifest's walk (one walk of the tree instead of two). */
        mkm_emit(ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "writing the manifest" });
        q = manifest_build(ctx, b.deploy->root_fd, b.source_date_epoch, &manifest, digest, reterr);
        if (q < 0)
                goto out;
        mkm_emit(ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "deploying" });
        /* From the swap on, an interrupt would leave a new tree with the old host files and
         * state: hold INT/TERM/HUP until the deploy is complete (then the build is done anyway). */
        sigset_t crit;
        sigemptyset(&crit);
        sigaddset(&crit, SIGINT);
        sigaddset(&crit, SIGTERM);
        sigaddset(&crit, SIGHUP);
        (void)sigprocmask(SIG_BLOCK, &crit, &crit_old);
        crit_saved = crit;
        critical = true;
        /* The state and the host files go with the swap (deploy_commit). */
        unsigned generation = 0;
        q = commit(&b, r, &hf, manifest, digest, &generation, reterr);
        if (q < 0)
                goto out;
        /* The machine is deployed: failing to write the lock beside the recipe is worth a
         * warning, not a failed build. */
        bool written = false;
        struct mkm_err werr = {};
        if (b.write_lock && write_lock(&b, &written, &werr) < 0)
                mkm_warn(ctx, "machine '%s' is deployed, but: %s", r->name, werr.msg[0] ? werr.msg : "out of memory");
        /* A stored build (rebuild) writes its lock only into the new generation's state: that is
         * the machine's lock now, not the previous generation's it was built from. */
        char *gen_lock = NULL;  /* (no cleanup attribute: gotos above jump past this point) */
        if (o && o->stored && asprintf(&gen_lock, "%s/gen/%u/lock", b.deploy->state_dir, generation) < 0)
                gen_lock = NULL;
        *ret = (struct build_result){
                .name = strdup(r->name),
                .target = strdup(b.deploy->target),
                .lock_path = gen_lock ? gen_lock : strdup(b.lock_path),
                .lock_written = written,
                .packages = b.lock_out->n,
                .source_date_epoch = b.source_date_epoch,
                .digest = strdup(digest),
                .generation = generation,
        };
        if (replaced && build_lock_diff(replaced, b.lock_out, &ret->changes) < 0)
                ret->changes = NULL;    /* the summary is not worth failing a deployed build */
        if (!ret->name || !ret->target || !ret->lock_path || !ret->digest) {
                build_result_done(ret);
                q = -ENOMEM;
        }
out:
        if (critical) {
                /* An interrupt that arrived meanwhile came too late to stop anything: consume it. */
                struct timespec zero = { 0 };
                while (sigtimedwait(&crit_saved, NULL, &zero) > 0)
                        mkm_info(ctx, "interrupted after the deploy had started; the build completed");
                (void)sigprocmask(SIG_SETMASK, &crit_old, NULL);
        }
        host_files_done(&hf);
        build_done(&b);
        if (own_sandbox) {
                ctx->sandbox = NULL;
                sandbox_cache_free(own_sandbox);
        }
        return prepared ? not_usage(q, reterr) : q;
}

int build_lock(struct mkm_ctx *ctx, const char *recipe_path, struct build_result *ret, struct mkm_err *reterr) {
        struct build b = { .source_date_epoch = -1, .plan_only = true, .write_lock = true };
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        bool prepared = false;
        int q = prepare(ctx, recipe_path, true, NULL, &r, &b, reterr);
        if (q < 0)
                goto out;
        prepared = true;
        b.recipe = r;
        q = run_backend(&b, reterr);
        if (q < 0)
                goto out;
        bool written = false;
        q = write_lock(&b, &written, reterr);
        if (q < 0)
                goto out;
        *ret = (struct build_result){ .name = strdup(r->name), .lock_path = strdup(b.lock_path),
                                      .lock_written = written, .packages = b.lock_out->n };
        if (!ret->name || !ret->lock_path) {
                build_result_done(ret);
                q = -ENOMEM;
        }
out:
        build_done(&b);
        return prepared ? not_usage(q, reterr) : q;
}

void build_plan_done(struct build_plan *p) {
        if (!p)
                return;
        free(p->name);
        free(p->lock_path);
        lock_free(p->set);
        lock_free(p->lock);
        lock_free(p->deployed);
        lock_diff_free(p->vs_lock);
        lock_diff_free(p->vs_deployed);
        *p = (struct build_plan){};
}

/* RECIPE.lock as it is, whether or not it still covers the recipe; NULL when absent. */
static int read_lock_as_is(const struct build *b, struct lock **ret, struct mkm_err *reterr) {
        const char *path = b->lock_path;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int q = read_lock_file(b, &text, &len);
        if (q == -ENOENT || q == -MKM_E_ANYONE_WRITES) {       /* not used (prepare() said why) */
                *ret = NULL;
                return 0;
        }
        if (q < 0)
                return lock_read_error(reterr, path, q);
        return lock_parse(text, len, path, ret, reterr);
}

int build_plan(struct mkm_ctx *ctx, const char *recipe_path, bool update, struct build_plan *ret,
               struct mkm_err *reterr) {
        struct build b = { .source_date_epoch = -1, .plan_only = true, .metadata_only = true };
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        _cleanup_(build_plan_done) struct build_plan p = {};
        bool prepared = false;
        int q = prepare(ctx, recipe_path, update, NULL, &r, &b, reterr);
        if (q < 0)
                goto out;
        prepared = true;
        b.recipe = r;
        p.from_lock = b.lock_in != NULL;
        q = read_lock_as_is(&b, &p.lock, reterr);
        if (q < 0)
                goto out;
        q = deployed_lock(ctx, r->name, &p.deployed, reterr);
        if (q == -ENOENT)
                q = 0;
        if (q < 0)
                goto out;
        q = run_backend(&b, reterr);
        if (q < 0)
                goto out;
        p.set = TAKE_PTR(b.lock_out);
        if (p.lock && (q = build_lock_diff(p.lock, p.set, &p.vs_lock)) < 0)
                goto out;
        if (p.deployed && (q = build_lock_diff(p.deployed, p.set, &p.vs_deployed)) < 0)
                goto out;
        p.name = strdup(r->name);
        p.lock_path = strdup(b.lock_path);
        if (!p.name || !p.lock_path) {
                q = -ENOMEM;
                goto out;
        }
        *ret = p;
        p = (struct build_plan){};
out:
        build_done(&b);
        return prepared ? not_usage(q, reterr) : q;
}
