/* SPDX-License-Identifier: MIT */
/* mkmachine ls: the machines mkmachine made, with their generations. As root, each machine whose
 * lock is free is repaired first, as every other command does (deploy_begin: an interrupted
 * command's leftovers, the state layout before generations migrated), so that ls shows what the
 * next command will see; a machine another command is working on (its lock is held), or any
 * machine when not root, is only read. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ctx.h"
#include "deploy.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strv.h"

/* last-verify (written by mkmachine verify into the live generation's directory): "clean|drift
 * EPOCH sha256:DIGEST". It speaks for that generation only when DIGEST is its digest. */
static const char *drift_of(const struct machine_state *s) {
        if (!s->live || !s->live->digest[0])
                return "unknown";
        _cleanup_free_ char *p = fs_path_join(s->live->dir, "last-verify"), *text = NULL;
        if (!p || fs_read_file_follow_at(AT_FDCWD, p, 4096, &text, NULL) < 0)
                return "unknown";
        char word[16], digest[80];
        long long epoch;
        if (sscanf(text, "%15s %lld %79s", word, &epoch, digest) != 3 || strcmp(digest, s->live->digest) != 0)
                return "unknown";
        return strcmp(word, "clean") == 0 ? "clean" : strcmp(word, "drift") == 0 ? "drift" : "unknown";
}

static char *recipe_path_of(const struct machine_gen *g) {
        char *text = NULL;
        if (!g || state_read_file(g, "recipe-path", &text, NULL) < 0)
                return NULL;
        text[strcspn(text, "\n")] = 0;
        return text;
}

static void format_time(int64_t t, char *buf, size_t len) {
        time_t tt = (time_t)t;
        struct tm tm;
        if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M", &tm) == 0)
                (void)snprintf(buf, len, "-");
}

static int add_machine(struct json_object *a, const struct machine_state *s, int running) {
        struct json_object *o = cli_json_append_object(a);
        if (!o)
                return -ENOMEM;
        _cleanup_free_ char *path = fs_path_join(s->machines_dir, s->name), *recipe = recipe_path_of(s->live);
        int r = cli_json_add_string(o, "name", s->name);
        if (r >= 0)
                r = cli_json_add_string(o, "path", s->tree_exists ? path : NULL);
        if (r >= 0)
                r = cli_json_add_string(o, "digest", s->live && s->live->digest[0] ? s->live->digest : NULL);
        if (r >= 0)
                r = cli_json_add_string(o, "recipe", recipe);
        if (r >= 0)
                r = s->live ? cli_json_add_int(o, "built", s->live->built) : cli_json_add_null(o, "built");
        if (r >= 0)
                r = s->live ? cli_json_add_int(o, "generation", s->live->gen) : cli_json_add_null(o, "generation");
        if (r >= 0)
                r = running < 0 ? cli_json_add_null(o, "running") : cli_json_add_bool(o, "running", running > 0);
        if (r >= 0)
                r = cli_json_add_string(o, "drift", drift_of(s));
        struct json_object *gens = r >= 0 ? cli_json_add_array(o, "generations") : NULL;
        if (!gens)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_gens; i++) {
                const struct machine_gen *g = &s->gens[i];
                struct json_object *go = cli_json_append_object(gens);
                if (!go || cli_json_add_int(go, "generation", g->gen) < 0 || cli_json_add_bool(go, "live", g->live) < 0 ||
                    cli_json_add_string(go, "digest", g->digest[0] ? g->digest : NULL) < 0 ||
                    cli_json_add_int(go, "built", g->built) < 0 || cli_json_add_int(go, "deployed", (int64_t)g->deployed_seq) < 0 ||
                    cli_json_add_int(go, "packages", (int64_t)g->packages) < 0 || cli_json_add_string(go, "path", g->tree) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int cli_cmd_ls(struct mkm_ctx *ctx, int argc, char **argv) {
        if (argc != 1)
                return cli_usage_error("ls: takes no arguments");
        struct mkm_err err = {};
        _cleanup_strv_free_ char **names = NULL;
        int r = state_list(ctx, &names, &err);
        if (r < 0)
                return cli_fail(r, &err, "ls");
        _cleanup_(cli_json_freep) struct json_object *top = ctx->json ? json_object_new_object() : NULL;
        struct json_object *arr = top ? cli_json_add_array(top, "machines") : NULL;
        if (ctx->json && !arr)
                return cli_fail(-ENOMEM, NULL, "ls");
        if (!ctx->json && names[0])
                printf("%-20s %-19s %-16s %-5s %-8s %-7s %s\n", "NAME", "DIGEST", "BUILT (UTC)", "GENS", "RUNNING", "DRIFT",
                       "RECIPE");
        int rc = EXIT_OK;
        for (char **n = names; *n; n++) {
                _cleanup_(state_freep) struct machine_state *loaded = NULL;
                _cleanup_(deploy_freep) struct deploy *d = NULL;
                const struct machine_state *s;
                err = (struct mkm_err){};
                r = geteuid() == 0 ? deploy_begin(ctx, *n, &d, &err) : -EPERM;
                if (r >= 0)
                        s = d->state;
                else {
                        if (r != -EBUSY && r != -EPERM)
                                mkm_warn(ctx, "ls: the state of '%s' was read as it is, not repaired: %s", *n,
                                         err.msg[0] ? err.msg : mkm_strerror(r));
                        err = (struct mkm_err){};
                        r = state_load(ctx, *n, &loaded, &err);
                        if (r < 0) {
                                /* One damaged state: said (in the list with --json: one document),
                                 * the others listed, exit 1. */
                                rc = EXIT_BUILD_FAILED;
                                const char *why = err.msg[0] ? err.msg : mkm_strerror(r);
                                if (!ctx->json) {
                                        mkm_warn(ctx, "ls: cannot read the state of '%s': %s", *n, why);
                                        continue;
                                }
                                struct json_object *o = cli_json_append_object(arr);
                                if (!o || cli_json_add_string(o, "name", *n) < 0 || cli_json_add_string(o, "error", why) < 0)
                                        return cli_fail(-ENOMEM, NULL, "ls");
                                continue;
                        }
                        s = loaded;
                }
                int running = state_machine_running(ctx, *n);
                if (ctx->json) {
                        if (add_machine(arr, s, running) < 0)
                                return cli_fail(-ENOMEM, NULL, "ls");
                        continue;
                }
                char built[32], gens[16], digest[20];
                format_time(s->live ? s->live->built : 0, built, sizeof built);
                (void)snprintf(gens, sizeof gens, "%zu", s->n_gens);
                /* "sha256:" and the first 12 hex digits, as short as a git hash */
                (void)snprintf(digest, sizeof digest, "%.19s", s->live && s->live->digest[0] ? s->live->digest : "-");
                _cleanup_free_ char *recipe = recipe_path_of(s->live);
                printf("%-20s %-19s %-16s %-5s %-8s %-7s %s\n", s->name, digest, built, gens,
                       running < 0 ? "?" : running ? "yes" : "no", drift_of(s), recipe ? recipe : "-");
        }
        if (ctx->json && cli_json_print(stdout, top, CLI_JSON_PRETTY) < 0)
                return cli_fail(-ENOMEM, NULL, "ls");
        return rc;
}
