/* SPDX-License-Identifier: MIT */
/* The build pipeline and the lock policy around it. */
#include "build.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cache.h"
#include "pipeline.h"
#include "ctx.h"
#include "deploy.h"
#include "hooks.h"
#include "hostinfo.h"
#include "lock.h"
#include "manifest.h"
#include "normalize.h"
#include "recipe.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strv.h"

#define LOCK_MAX (16u << 20)

void build_result_done(struct build_result *r) {
        if (!r)
                return;
        free(r->name);
        free(r->target);
        free(r->lock_path);
        free(r->digest);
        *r = (struct build_result){};
}

static void list(FILE *f, const char *key, char **l) {
        fprintf(f, "%s", key);
        for (; l && *l; l++)
                fprintf(f, " %s", *l);
        fputc('\n', f);
}

int build_inputs_digest(const struct recipe *r, char **ret) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "distribution %s\n", recipe_distribution_to_string(r->distribution));
        fprintf(f, "architecture %s\n", r->architecture ? r->architecture : "");
        fprintf(f, "snapshot %s\n", r->snapshot ? r->snapshot : "");
        if (r->distribution == RECIPE_DISTRO_ARCH)
                list(f, "repositories", r->repositories);
        else {
                list(f, "suites", r->suites);
                fprintf(f, "variant %s\n", r->variant ? r->variant : "");
                list(f, "components", r->components);
        }
        list(f, "packages", r->packages);
        list(f, "providers", r->providers);
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        char hex[HASH_SHA256_HEX];
        int q = hash_buf_hex(HASH_SHA256, text, len, hex);
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

/* TEMPORARY (debian branch): drive backend_ops until the shared driver lands. */
static int debian_run(struct build *b, struct mkm_err *reterr) {
        const struct backend_ops *ops = &backend_debian;
        struct backend *be = NULL;
        struct pipeline *p = NULL;
        int q = ops->new(b, &be, reterr);
        if (q < 0)
                return q;
        q = ops->plan(be, reterr);
        const struct pipeline_item *items = NULL;
        enum pipeline_trust trust;
        struct verify_keyring *k = NULL;
        if (q >= 0 && !b->plan_only)
                q = ops->sources(be, &items, &trust, &k, reterr);
        if (q >= 0 && !b->plan_only)
                q = pipeline_start(b->ctx, b->cache, trust, k, items, b->lock_out->n, &p, reterr);
        if (q >= 0 && !b->plan_only)
                q = ops->install_begin(be, reterr);
        for (size_t i = 0; q >= 0 && !b->plan_only && i < b->lock_out->n; i++) {
                q = pipeline_wait(p, i, NULL, reterr);
                int fd = -1;
                if (q >= 0) {
                        q = cache_open_fd(b->cache, b->lock_out->pkgs[i].sha256, &fd);
                        if (q < 0)
                                mkm_err_set(reterr, q, "%s: not in the cache", b->lock_out->pkgs[i].name);
                }
                if (q >= 0)
                        q = ops->install_one(be, i, fd, NULL, reterr);
                if (fd >= 0)
                        close(fd);
        }
        if (q >= 0 && !b->plan_only)
                q = pipeline_finish(p, reterr);
        if (q >= 0 && !b->plan_only)
                q = ops->install_end(be, reterr);
        pipeline_free(p);
        ops->free(be);
        return q;
}
static const struct build_ops build_ops_debian = { .distribution = "debian", .run = debian_run };

static const struct build_ops *ops_for(const struct recipe *r) {
        switch (r->distribution) {
        case RECIPE_DISTRO_ARCH:
                return &build_ops_arch;
        case RECIPE_DISTRO_DEBIAN:
                return &build_ops_debian;
        default:
                return NULL;
        }
}

static void build_done(struct build *b) {
        lock_free(b->lock_in);
        lock_free(b->lock_out);
        free(b->inputs);
        free(b->lock_path);
        cache_free(b->cache);
        deploy_free(b->deploy);
}

/* Load the recipe, its lock (if it still matches the recipe), open the cache. */
static int prepare(struct mkm_ctx *ctx, const char *path, bool relock, struct recipe **ret_recipe, struct build *b,
                   struct mkm_err *reterr) {
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        int q = recipe_load(ctx, path, &r, reterr);
        if (q < 0)
                return q;
        q = recipe_validate_for_build(r, reterr);
        if (q < 0)
                return q;
        if (!ops_for(r))
                return mkm_err_set(reterr, -MKM_E_RECIPE, "%s: Distribution=%s is not supported yet (arch is)", path,
                                   recipe_distribution_to_string(r->distribution));
        b->ctx = ctx;
        q = build_inputs_digest(r, &b->inputs);
        if (q < 0)
                return q;
        if (asprintf(&b->lock_path, "%s.lock", r->path) < 0)
                return -ENOMEM;

        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        q = fs_read_file_at(AT_FDCWD, b->lock_path, LOCK_MAX, &text, &len);
        if (q < 0 && q != -ENOENT)
                return mkm_err_set(reterr, q, "cannot read %s: %s", b->lock_path, strerror(-q));
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
        if (fs_read_file_at(AT_FDCWD, b->lock_path, LOCK_MAX, &old, NULL) >= 0 && strcmp(old, text) == 0)
                return 0;
        q = fs_write_atomic_at(AT_FDCWD, b->lock_path, text, strlen(text), 0644);
        if (q < 0)
                return mkm_err_set(reterr, q, "cannot write %s: %s", b->lock_path, strerror(-q));
        *ret_written = true;
        return 0;
}

/* The state folder keeps what this generation was built from. */
static int write_state(struct build *b, const struct recipe *r, const char *manifest, const char *digest,
                       struct mkm_err *reterr) {
        _cleanup_free_ char *canon = NULL, *lock = NULL;
        int q = recipe_format(r, &canon);
        if (q < 0)
                return q;
        q = lock_format(b->lock_out, &lock);
        if (q < 0)
                return q;
        _cleanup_close_ int dfd = open(b->deploy->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %s", b->deploy->state_dir, strerror(errno));
        _cleanup_free_ char *digest_line = NULL;
        if (asprintf(&digest_line, "%s\n", digest) < 0)
                return -ENOMEM;
        q = fs_write_atomic_at(dfd, "recipe", canon, strlen(canon), 0644);
        if (q >= 0)
                q = fs_write_atomic_at(dfd, "lock", lock, strlen(lock), 0644);
        if (q >= 0)
                q = fs_write_atomic_at(dfd, "manifest", manifest, strlen(manifest), 0644);
        if (q >= 0)
                q = fs_write_atomic_at(dfd, "digest", digest_line, strlen(digest_line), 0644);
        if (q < 0)
                return mkm_err_set(reterr, q, "cannot write the state in %s: %s", b->deploy->state_dir, strerror(-q));
        return 0;
}

int build_machine(struct mkm_ctx *ctx, const char *recipe_path, struct build_result *ret, struct mkm_err *reterr) {
        struct build b = { .source_date_epoch = -1 };
        struct host_files hf = {};
        bool prepared = false, critical = false;
        sigset_t crit_saved, crit_old;
        _cleanup_free_ char *manifest = NULL;
        char digest[MANIFEST_DIGEST_LEN] = "";
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        int q = prepare(ctx, recipe_path, false, &r, &b, reterr);
        if (q < 0)
                goto out;
        prepared = true;
        b.recipe = r;
        q = deploy_begin(ctx, r->name, &b.deploy, reterr);
        if (q < 0)
                goto out;
        q = deploy_stage(b.deploy, reterr);
        if (q < 0)
                goto out;
        q = ops_for(r)->run(&b, reterr);
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
        q = deploy_swap(ctx, b.deploy, reterr);
        if (q < 0)
                goto out;
        /* The host is told about the machine only once the tree is in place. */
        q = hooks_write_host_files(ctx, r->name, &hf, reterr);
        if (q < 0) {
                mkm_err_prefix(reterr, q, "machine '%s' is deployed, but its host files are not", r->name);
                goto out;
        }
        /* The machine is deployed: failing to record it is worth a warning, not a failed build. */
        bool written = false;
        struct mkm_err werr = {};
        if (write_lock(&b, &written, &werr) < 0 || write_state(&b, r, manifest, digest, &werr) < 0)
                mkm_warn(ctx, "machine '%s' is deployed, but: %s", r->name, werr.msg[0] ? werr.msg : "out of memory");
        *ret = (struct build_result){
                .name = strdup(r->name),
                .target = strdup(b.deploy->target),
                .lock_path = strdup(b.lock_path),
                .lock_written = written,
                .packages = b.lock_out->n,
                .source_date_epoch = b.source_date_epoch,
                .digest = strdup(digest),
        };
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
        return prepared ? not_usage(q, reterr) : q;
}

int build_lock(struct mkm_ctx *ctx, const char *recipe_path, struct build_result *ret, struct mkm_err *reterr) {
        struct build b = { .source_date_epoch = -1, .plan_only = true };
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        bool prepared = false;
        int q = prepare(ctx, recipe_path, true, &r, &b, reterr);
        if (q < 0)
                goto out;
        prepared = true;
        b.recipe = r;
        q = ops_for(r)->run(&b, reterr);
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
