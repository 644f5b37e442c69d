/* SPDX-License-Identifier: MIT */
/* mkmachine clean [--dry-run]: remove from the download cache what no deployed machine needs.
 *
 *   - cache entries that no lock of a kept generation of any machine under the host root
 *     references (a package, its signature, a pinned Release); repository indexes and dbs are
 *     not referenced by locks and go too: a build downloads its metadata afresh anyway (Arch
 *     dbs always; a Debian Packages index when the Release names one not in the cache);
 *   - everything in the cache's tmp/: partial downloads and their lock files left by builds that
 *     are gone.
 * It holds the cache exclusively (cache_lock_exclusive): while a build, plan or lock runs it
 * refuses (exit 1), so nothing a running build reads or resumes is removed.
 * First, though, the generations beyond --keep-generations of every machine go (deploy_prune(),
 * under each machine's lock, as a build prunes after its commit; the ones live most recently
 * stay), so that their packages are not kept for them. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cli.h"
#include "ctx.h"
#include "deploy.h"
#include "deployed.h"
#include "lock.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/hashmap.h"
#include "util/strv.h"

struct clean {
        struct hashmap *keep;           /* referenced digests */
        char **machines;
        char **gone;                    /* generation directories pruned (or to be, with --dry-run) */
        bool dry_run, json;
        struct json_object *removed;    /* with --json */
        size_t n_entries, n_temporaries, n_generations;
        uint64_t bytes;
        int error;
};

static int add_digest(struct clean *c, const char *hex) {
        return hex && hex[0] ? hashmap_put(c->keep, hex, NULL) : 0;
}

static int collect(void *userdata, const char *name, const char *path, const struct lock *l) {
        struct clean *c = userdata;
        /* A generation that goes references nothing. */
        for (char **g = c->gone; g && *g; g++)
                if (strncmp(path, *g, strlen(*g)) == 0 && path[strlen(*g)] == '/')
                        return 0;
        int q = 0;
        if (!strv_contains(c->machines, name))
                q = strv_push(&c->machines, name);
        for (size_t i = 0; i < l->n && q >= 0; i++) {
                q = add_digest(c, l->pkgs[i].sha256);
                if (q >= 0)
                        q = add_digest(c, l->pkgs[i].sig_sha256);
        }
        for (size_t i = 0; i < l->n_indexes && q >= 0; i++)
                q = add_digest(c, l->indexes[i].sha256);
        return q;
}

static bool keep(void *userdata, const char *hex) {
        const struct clean *c = userdata;
        return hashmap_contains(c->keep, hex);
}

static void report_kind(struct clean *c, const char *path, uint64_t size, const char *kind) {
        c->bytes += size;
        if (c->json) {
                struct json_object *e = cli_json_append_object(c->removed);
                if (!e || cli_json_add_string(e, "path", path) < 0 || cli_json_add_int(e, "size", (int64_t)size) < 0 ||
                    cli_json_add_string(e, "kind", kind) < 0)
                        c->error = -ENOMEM;
                return;
        }
        if (strcmp(kind, "generation") == 0) {
                printf("%s %s\n", c->dry_run ? "would remove" : "removed", path);
                return;
        }
        char h[32];
        cli_human_size(size, h, sizeof h);
        printf("%s %s (%s)\n", c->dry_run ? "would remove" : "removed", path, h);
}

static void report(void *userdata, const char *path, uint64_t size, bool temporary) {
        struct clean *c = userdata;
        if (temporary)
                c->n_temporaries++;
        else
                c->n_entries++;
        report_kind(c, path, size, temporary ? "temporary" : "entry");
}

static int cmp_seq_desc(const void *a, const void *b) {
        const struct machine_gen *x = *(const struct machine_gen *const *)a, *y = *(const struct machine_gen *const *)b;
        return x->deployed_seq < y->deployed_seq ? 1 : x->deployed_seq > y->deployed_seq ? -1 : 0;
}

/* The generations of s that deploy_prune() removes: the non-live ones beyond keep, by how recently
 * they were live (as deploy.c orders them). */
static int note_old_generations(struct clean *c, const struct mkm_ctx *ctx, const struct machine_state *s) {
        _cleanup_free_ const struct machine_gen **old = calloc(s->n_gens + 1, sizeof *old);
        if (!old)
                return -ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < s->n_gens; i++)
                if (!s->gens[i].live)
                        old[n++] = &s->gens[i];
        qsort(old, n, sizeof *old, cmp_seq_desc);
        for (size_t i = ctx->keep_generations; i < n; i++) {
                int q = strv_push(&c->gone, old[i]->dir);
                if (q < 0)
                        return q;
                if (old[i]->tree)
                        report_kind(c, old[i]->tree, 0, "generation");
                report_kind(c, old[i]->dir, 0, "generation");
                c->n_generations++;
        }
        return 0;
}

/* Every machine's generations beyond --keep-generations. A dry run only reads the state; a real
 * one takes each machine's lock (deploy_begin: fails at once while another command runs on it,
 * and repairs what an interrupted one left) and prunes as a build does. */
static int prune_generations(struct mkm_ctx *ctx, struct clean *c, struct mkm_err *reterr) {
        _cleanup_strv_free_ char **names = NULL;
        int q = state_list(ctx, &names, reterr);
        for (char **n = names; q >= 0 && n && *n; n++) {
                if (c->dry_run) {
                        _cleanup_(state_freep) struct machine_state *s = NULL;
                        q = state_load(ctx, *n, &s, reterr);
                        if (q >= 0)
                                q = note_old_generations(c, ctx, s);
                        continue;
                }
                /* One machine that cannot be pruned (another command holds it, its recovery
                 * refuses) is said and passed over: its generations stay, and so does what their
                 * locks reference in the cache. */
                _cleanup_(deploy_freep) struct deploy *d = NULL;
                struct mkm_err err = {};
                q = deploy_begin(ctx, *n, &d, &err);
                if (q < 0) {
                        mkm_warn(ctx, "clean: machine '%s' not pruned: %s", *n, err.msg[0] ? err.msg : mkm_strerror(q));
                        q = 0;
                        continue;
                }
                q = note_old_generations(c, ctx, d->state);
                if (q >= 0)
                        deploy_prune(ctx, d);
        }
        return q;
}

int cli_cmd_clean(struct mkm_ctx *ctx, int argc, char **argv) {
        static const struct option opts[] = {
                { "dry-run", no_argument, NULL, 'n' },
                {},
        };
        struct clean c = { .json = ctx->json };
        int o;
        opterr = 0;
        optind = 0;     /* glibc: re-initialise fully (the global parse may have used "+") */
        while ((o = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (o) {
                case 'n':
                        c.dry_run = true;
                        break;
                default:
                        return cli_usage_error("clean: unknown option '%s'", argv[optind - 1]);
                }
        if (argc != optind)
                return cli_usage_error("clean: unexpected argument '%s'", argv[optind]);

        struct mkm_err err = {};
        _cleanup_(hashmap_freep) struct hashmap *keepset = hashmap_new();
        _cleanup_strv_free_ char **machines = calloc(1, sizeof(char *));
        _cleanup_(cli_json_freep) struct json_object *out = json_object_new_object();
        if (!keepset || !machines || !out)
                return cli_fail(-ENOMEM, NULL, "clean");
        c.keep = keepset;
        c.machines = machines;
        c.removed = cli_json_add_array(out, "removed");
        if (!c.removed)
                return cli_fail(-ENOMEM, NULL, "clean");
        _cleanup_(cache_freep) struct cache *cache = NULL;
        int r = cache_open(ctx, ctx->cache_dir, &cache, &err);
        if (r >= 0)
                r = cache_lock_exclusive(cache, &err);
        if (r < 0)
                return cli_fail(r, &err, "clean failed");
        r = prune_generations(ctx, &c, &err);
        if (r < 0) {
                strv_free(c.gone);
                return cli_fail(r, &err, "clean: pruning old generations");
        }
        /* Every lock then: a lock that cannot be read stops the clean before the cache is touched. */
        r = deployed_each_lock(ctx, collect, &c, &err);
        strv_free(c.gone);
        c.gone = NULL;
        machines = c.machines;
        if (r < 0)
                return cli_fail(r, &err, "clean: cannot account for the deployed machines");
        r = cache_prune(cache, keep, &c, c.dry_run, report, &c, &err);
        if (r < 0)
                return cli_fail(r, &err, "clean failed");
        if (c.error < 0)
                return cli_fail(c.error, NULL, "clean: printing the result");
        strv_sort(machines);
        if (ctx->json) {
                if (cli_json_add_bool(out, "dry_run", c.dry_run) < 0 || cli_json_add_string(out, "cache", cache_dir(cache)) < 0 ||
                    cli_json_add_strv(out, "machines", machines) < 0 ||
                    cli_json_add_int(out, "referenced", (int64_t)hashmap_size(keepset)) < 0 ||
                    cli_json_add_int(out, "entries", (int64_t)c.n_entries) < 0 ||
                    cli_json_add_int(out, "temporaries", (int64_t)c.n_temporaries) < 0 ||
                    cli_json_add_int(out, "generations", (int64_t)c.n_generations) < 0 ||
                    cli_json_add_int(out, "bytes", (int64_t)c.bytes) < 0 || cli_json_print(stdout, out, CLI_JSON_LINE) < 0)
                        return cli_fail(-ENOMEM, NULL, "clean: printing the result");
        } else if (ctx->verbosity >= 0) {
                char h[32];
                cli_human_size(c.bytes, h, sizeof h);
                fprintf(stderr,
                        "%s %zu old generation%s, %zu cache entries and %zu temporary files (%s); kept what %zu "
                        "machine%s reference%s\n",
                        c.dry_run ? "would remove" : "removed", c.n_generations, c.n_generations == 1 ? "" : "s",
                        c.n_entries, c.n_temporaries, h, strv_length(machines),
                        strv_length(machines) == 1 ? "" : "s", strv_length(machines) == 1 ? "s" : "");
        }
        return EXIT_OK;
}
