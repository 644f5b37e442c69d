/* SPDX-License-Identifier: MIT */
/* mkmachine verify NAME: compare the live tree of a machine with the manifest it was deployed
 * with and list every path that differs, with what changed (see drift.h). Exit 0 when nothing a
 * rebuild would lose differs (runtime and time-only changes are listed with -v and in --json),
 * 1 on drift, the machine's host files (.nspawn, drop-in, modules-load) changed or added by hand
 * included. Records the result in HOST/var/lib/mkmachine/NAME/last-verify for `ls`. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ctx.h"
#include "deploy.h"
#include "drift.h"
#include "manifest.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strv.h"

struct live {
        char *state_dir;        /* HOST/var/lib/mkmachine/NAME */
        char *tree;             /* HOST/var/lib/machines/NAME */
        char *manifest_path;    /* where the manifest was read, for messages */
        char *manifest;
        char digest[MANIFEST_DIGEST_LEN];
        unsigned gen;                   /* the live generation */
        struct state_host_diff *host;   /* host files that differ from what it installed */
        size_t n_host, host_blocking;   /* ... and of those, changed or added (a rebuild loses them) */
        bool host_pending;              /* a swap or rm was interrupted: the next command that takes
                                         * the machine's lock rewrites them all (state_recover) */
};

static void live_done(struct live *l) {
        state_host_diffs_free(l->host, l->n_host);
        free(l->state_dir);
        free(l->tree);
        free(l->manifest_path);
        free(l->manifest);
}

/* The live generation's manifest, digest and tree (state.h). */
static int verify_read_live_manifest(struct mkm_ctx *ctx, const char *name, struct live *l, struct mkm_err *reterr) {
        _cleanup_(state_freep) struct machine_state *s = NULL;
        int r = state_load(ctx, name, &s, reterr);
        if (r < 0)
                return r;
        if (!s->live) {
                if (s->tree_exists)
                        return mkm_err_set(reterr, -ENOENT, "%s has no state: not built by mkmachine (or its state is lost)",
                                           l->tree);
                return mkm_err_set(reterr, -ENOENT, "machine '%s' has no tree at %s%s", name, l->tree,
                                   s->n_gens ? " (only kept generations)" : "");
        }
        if (!(l->manifest_path = fs_path_join(s->live->dir, "manifest")))
                return -ENOMEM;
        if (s->live->tree) {
                free(l->tree);
                if (!(l->tree = strdup(s->live->tree)))
                        return -ENOMEM;
        }
        r = state_read_file(s->live, "manifest", &l->manifest, reterr);
        if (r < 0)
                return r;
        char hex[HASH_SHA256_HEX];
        if ((r = hash_buf_hex(HASH_SHA256, l->manifest, strlen(l->manifest), hex)) < 0)
                return r;
        if (!s->live->digest[0])        /* a migrated old tree without one */
                (void)snprintf(l->digest, sizeof l->digest, "sha256:%s", hex);
        else
                (void)snprintf(l->digest, sizeof l->digest, "%s", s->live->digest);
        /* The digest is the manifest's sha256: if they disagree, the state is damaged and no
         * comparison with it means anything. */
        if (strcmp(l->digest + 7, hex) != 0)
                return mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH,
                                   "%s does not match the digest %s (sha256:%s): the state is damaged", l->manifest_path,
                                   l->digest, hex);
        l->gen = s->live->gen;
        r = state_host_files_diff(ctx, s, &l->host, &l->n_host, reterr);
        if (r < 0)
                return r;
        /* After an interrupted swap the files are half one generation's and half missing, and no
         * hand made them so: none is drift, recovery writes them all again. */
        l->host_pending = state_host_is_pending(s);
        for (size_t i = 0; i < l->n_host; i++)
                l->host_blocking += !l->host_pending && l->host[i].change != STATE_HOST_REMOVED;
        return 0;
}

/* "host file PATH: ..." for one host file that differs. */
static char *host_diff_to_string(const struct live *l, const struct state_host_diff *h) {
        char *s = NULL;
        if (l->host_pending) {
                char w[64] = "missing";
                if (h->change == STATE_HOST_ADDED)
                        (void)snprintf(w, sizeof w, "there, though generation %u has none", l->gen);
                else if (h->change == STATE_HOST_CHANGED)
                        (void)snprintf(w, sizeof w, "not what generation %u installed", l->gen);
                return asprintf(&s, "host file %s: %s, left by an interrupted build, rollback or rm (the next mkmachine "
                                    "ls, build, rollback or rm as root writes generation %u's files again)",
                                h->path, w, l->gen) < 0
                               ? NULL
                               : s;
        }
        int r = h->change == STATE_HOST_CHANGED
                        ? asprintf(&s, "host file %s: changed by hand (not what generation %u installed)", h->path, l->gen)
                : h->change == STATE_HOST_ADDED
                        ? asprintf(&s, "host file %s: added by hand (generation %u has none)", h->path, l->gen)
                        : asprintf(&s, "host file %s: removed (generation %u installed one; a rebuild writes it again)",
                                   h->path, l->gen);
        return r < 0 ? NULL : s;
}

/* Hold the machine's lock (shared: verifies may run side by side, a build or removal may not
 * swap the tree under the walk). Returns the fd. */
static int verify_lock(const char *state_dir, const char *name, struct mkm_err *reterr) {
        _cleanup_free_ char *path = fs_path_join(state_dir, ".lock");
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %m", path);
        if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        return mkm_err_set(reterr, -EBUSY, "a build of '%s' is running (%s is locked); verify it afterwards",
                                           name, path);
                return mkm_err_set(reterr, negative_errno(), "cannot lock %s: %m", path);
        }
        return TAKE_FD(fd);
}

static char *absolute(const char *path) {
        char *p = realpath(path, NULL);
        return p ? p : strdup(path);
}

static int print_json(const struct live *l, const char *name, const struct drift *d, size_t time_only) {
        _cleanup_(cli_json_freep) struct json_object *o = json_object_new_object();
        _cleanup_free_ char *tree = absolute(l->tree), *manifest = absolute(l->manifest_path);
        if (!o || !tree || !manifest || cli_json_add_string(o, "name", name) < 0 || cli_json_add_string(o, "tree", tree) < 0 ||
            cli_json_add_string(o, "manifest", manifest) < 0 || cli_json_add_string(o, "digest", l->digest) < 0 ||
            cli_json_add_string(o, "status", d->n_blocking || l->host_blocking ? "drift" : "clean") < 0 ||
            cli_json_add_bool(o, "clean", d->n_blocking == 0 && l->host_blocking == 0) < 0 ||
            cli_json_add_int(o, "blocking", (int64_t)d->n_blocking) < 0 ||
            cli_json_add_int(o, "runtime", (int64_t)d->n_runtime) < 0 ||
            cli_json_add_int(o, "time_only", (int64_t)time_only) < 0 ||
            cli_json_add_int(o, "added", (int64_t)d->n_kind[DRIFT_ADDED]) < 0 ||
            cli_json_add_int(o, "removed", (int64_t)d->n_kind[DRIFT_REMOVED]) < 0 ||
            cli_json_add_int(o, "changed", (int64_t)d->n_kind[DRIFT_CHANGED]) < 0)
                return -ENOMEM;
        struct json_object *ha = cli_json_add_array(o, "host_files");
        if (!ha)
                return -ENOMEM;
        for (size_t i = 0; i < l->n_host; i++) {
                struct json_object *j = cli_json_append_object(ha);
                if (!j || cli_json_add_string(j, "path", l->host[i].path) < 0 ||
                    cli_json_add_string(j, "change", state_host_change_to_string(l->host[i].change)) < 0 ||
                    cli_json_add_bool(j, "blocking", !l->host_pending && l->host[i].change != STATE_HOST_REMOVED) < 0 ||
                    cli_json_add_bool(j, "interrupted", l->host_pending) < 0)
                        return -ENOMEM;
        }
        struct json_object *a = cli_json_add_array(o, "entries");
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < d->n; i++) {
                const struct drift_entry *e = &d->e[i];
                struct json_object *j = cli_json_append_object(a);
                _cleanup_strv_free_ char **what = NULL;
                if (!j || strv_split(e->what, " ", &what) < 0 || cli_json_add_string(j, "path", e->path) < 0 ||
                    cli_json_add_string(j, "kind", drift_kind_to_string(e->kind)) < 0 ||
                    cli_json_add_string(j, "type", e->type) < 0 || cli_json_add_strv(j, "what", what) < 0 ||
                    cli_json_add_bool(j, "runtime", e->runtime) < 0 || cli_json_add_bool(j, "blocking", e->blocking) < 0)
                        return -ENOMEM;
                if (e->kind != DRIFT_CHANGED)
                        continue;
                struct json_object *ca = cli_json_add_array(j, "changes");
                if (!ca)
                        return -ENOMEM;
                for (size_t k = 0; k < e->n_changes; k++) {
                        const struct drift_change *c = &e->changes[k];
                        struct json_object *cj = cli_json_append_object(ca);
                        if (!cj || cli_json_add_string(cj, "what", c->what) < 0 ||
                            (c->name && cli_json_add_string(cj, "name", c->name) < 0) ||
                            cli_json_add_string(cj, "old", c->old_value) < 0 || cli_json_add_string(cj, "new", c->new_value) < 0)
                                return -ENOMEM;
                }
        }
        return cli_json_print(stdout, o, CLI_JSON_LINE);
}

static int print_text(const struct mkm_ctx *ctx, const struct live *l, const char *name, const struct drift *d,
                      size_t time_only) {
        size_t blocking_kind[_DRIFT_KIND_MAX] = {}, hidden = 0;
        for (size_t i = 0; i < d->n; i++) {
                const struct drift_entry *e = &d->e[i];
                if (e->blocking)
                        blocking_kind[e->kind]++;
                if (!e->blocking && ctx->verbosity < 1) {
                        hidden++;
                        continue;
                }
                if (ctx->verbosity < 0)
                        continue;
                _cleanup_free_ char *s = drift_entry_to_string(e);
                if (!s)
                        return -ENOMEM;
                printf("%s%s\n", s, !e->blocking && !e->runtime ? " [time only]" : "");
        }
        /* Host files: listed unless -q, runtime-like ones (removed) included: they are a few. */
        for (size_t i = 0; i < l->n_host && ctx->verbosity >= 0; i++) {
                _cleanup_free_ char *s = host_diff_to_string(l, &l->host[i]);
                if (!s)
                        return -ENOMEM;
                printf("%s\n", s);
        }
        char other[160] = "", host[160] = "";
        if (d->n_runtime || time_only)
                (void)snprintf(other, sizeof other, "; %zu runtime and %zu time-only change%s%s", d->n_runtime, time_only,
                               d->n_runtime + time_only == 1 ? "" : "s", hidden ? " not shown (-v lists them)" : "");
        if (l->host_blocking)
                (void)snprintf(host, sizeof host, "; %zu host file%s changed or added by hand", l->host_blocking,
                               l->host_blocking == 1 ? "" : "s");
        if (d->n_blocking == 0 && l->host_blocking)
                printf("%s: drift: the tree matches its manifest %s, but %zu host file%s differ%s from what generation %u "
                       "installed%s\n",
                       name, l->digest, l->host_blocking, l->host_blocking == 1 ? "" : "s",
                       l->host_blocking == 1 ? "s" : "", l->gen, other);
        else if (d->n_blocking == 0)
                printf("%s: clean, the tree matches its manifest %s%s\n", name, l->digest, other);
        else
                printf("%s: drift: %zu path%s differ%s from the manifest (%zu added, %zu removed, %zu changed)%s%s\n", name,
                       d->n_blocking, d->n_blocking == 1 ? "" : "s", d->n_blocking == 1 ? "s" : "",
                       blocking_kind[DRIFT_ADDED], blocking_kind[DRIFT_REMOVED], blocking_kind[DRIFT_CHANGED], other,
                       host);
        return 0;
}

/* "clean|drift EPOCH DIGEST" for `ls`, in the live generation's directory (beside the manifest
 * it was compared with): a new generation, even one with the same digest, has no verdict yet.
 * A failure to record it does not change the verdict. */
static void write_last_verify(struct mkm_ctx *ctx, const struct live *l, bool clean) {
        char line[128];
        (void)snprintf(line, sizeof line, "%s %lld %s\n", clean ? "clean" : "drift", (long long)time(NULL), l->digest);
        _cleanup_free_ char *gen_dir = fs_path_dirname(l->manifest_path);
        _cleanup_close_ int dfd = gen_dir ? open(gen_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -EBADF;
        int r = dfd < 0 ? negative_errno() : fs_write_atomic_at(dfd, "last-verify", line, strlen(line), 0644);
        if (r < 0)
                mkm_warn(ctx, "cannot record the result in %s/last-verify: %s; ignoring", gen_dir ? gen_dir : l->state_dir,
                         mkm_strerror(r));
}

int cli_cmd_verify(struct mkm_ctx *ctx, int argc, char **argv) {
        if (argc != 2)
                return cli_usage_error("verify: expected exactly one machine NAME");
        const char *name = argv[1];
        if (!deploy_name_is_valid(name))
                return cli_usage_error("verify: '%s' is not a valid machine name", name);
        _cleanup_(live_done) struct live l = {};
        struct mkm_err err = {};
        _cleanup_free_ char *state_top = fs_path_join(ctx->host_root, "var/lib/mkmachine");
        _cleanup_free_ char *machines = fs_path_join(ctx->host_root, "var/lib/machines");
        if (!state_top || !machines || !(l.state_dir = fs_path_join(state_top, name)) ||
            !(l.tree = fs_path_join(machines, name)))
                return cli_fail(-ENOMEM, NULL, "verify");
        struct stat st;
        if (stat(l.state_dir, &st) < 0) {
                if (errno != ENOENT)
                        return cli_fail(negative_errno(), NULL, "verify: cannot read the state");
                if (access(l.tree, F_OK) == 0)
                        (void)mkm_err_set(&err, -ENOENT, "%s has no state: not built by mkmachine", l.tree);
                else
                        (void)mkm_err_set(&err, -ENOENT, "no machine '%s' built by mkmachine here (%s does not exist)",
                                          name, l.state_dir);
                return cli_fail(-ENOENT, &err, "verify");
        }
        _cleanup_close_ int lock_fd = verify_lock(l.state_dir, name, &err);
        if (lock_fd < 0)
                return cli_fail(lock_fd, &err, "verify");
        int r = verify_read_live_manifest(ctx, name, &l, &err);
        if (r == -MKM_E_PARSE) {
                (void)cli_fail(r, &err, "verify");      /* a damaged meta: the state, not the command line */
                return EXIT_BUILD_FAILED;
        }
        if (r < 0)
                return cli_fail(r, &err, "verify");
        _cleanup_close_ int rootfd = open(l.tree, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (rootfd < 0) {
                r = negative_errno();
                (void)mkm_err_set(&err, r, "cannot open the machine's tree %s: %s", l.tree, mkm_strerror(r));
                return cli_fail(r, &err, "verify");
        }
        _cleanup_(drift_freep) struct drift *d = NULL;
        r = drift_compute(ctx, rootfd, l.manifest, &d, &err);
        if (r == -MKM_E_PARSE) {
                /* The state is damaged: a failure (1), not a usage error (2). */
                (void)mkm_err_prefix(&err, r, "%s", l.manifest_path);
                (void)cli_fail(r, &err, "verify");
                return EXIT_BUILD_FAILED;
        }
        if (r < 0)
                return cli_fail(r, &err, "verify");
        size_t time_only = 0;
        for (size_t i = 0; i < d->n; i++)
                time_only += !d->e[i].blocking && !d->e[i].runtime;
        bool clean = d->n_blocking == 0 && l.host_blocking == 0;
        write_last_verify(ctx, &l, clean);
        r = ctx->json ? print_json(&l, name, d, time_only) : print_text(ctx, &l, name, d, time_only);
        if (r < 0)
                return cli_fail(r, NULL, "verify: printing the result");
        (void)fflush(stdout);
        return clean ? EXIT_OK : EXIT_BUILD_FAILED;
}
