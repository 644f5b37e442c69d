/* SPDX-License-Identifier: MIT */
/* mkmachine plan RECIPE [--update]: what a build would install, from the repository metadata
 * alone (no package is downloaded): each package with its version and sizes, the totals, and
 * what differs from RECIPE.lock and from the deployed machine. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "build.h"
#include "cli.h"
#include "ctx.h"
#include "lock.h"
#include "privileges.h"
#include "recipe.h"
#include "util/cleanup.h"
#include "util/err.h"

static int print_json(const struct build_plan *p, const struct priv_report *rep) {
        _cleanup_(cli_json_freep) struct json_object *o = json_object_new_object();
        if (!o || cli_json_add_string(o, "name", p->name) < 0 || cli_json_add_string(o, "lock", p->lock_path) < 0 ||
            cli_json_add_string(o, "source", p->from_lock ? "lock" : "resolved") < 0 ||
            cli_json_add_string(o, "distribution", p->set->distribution) < 0)
                return -ENOMEM;
        struct json_object *a = cli_json_add_array(o, "packages");
        if (!a)
                return -ENOMEM;
        uint64_t dl = 0, inst = 0;
        for (size_t i = 0; i < p->set->n; i++) {
                const struct lock_pkg *k = &p->set->pkgs[i];
                struct json_object *e = cli_json_append_object(a);
                if (!e || cli_json_add_string(e, "name", k->name) < 0 || cli_json_add_string(e, "version", k->version) < 0 ||
                    cli_json_add_string(e, "repository", k->repo) < 0 ||
                    cli_json_add_string(e, "reason", k->explicit ? "explicit" : "dependency") < 0 ||
                    cli_json_add_int(e, "download_size", (int64_t)k->size) < 0 ||
                    cli_json_add_int(e, "installed_size", (int64_t)k->isize) < 0)
                        return -ENOMEM;
                dl += k->size;
                inst += k->isize;
        }
        if (cli_json_add_int(o, "count", (int64_t)p->set->n) < 0 || cli_json_add_int(o, "download_size", (int64_t)dl) < 0 ||
            cli_json_add_int(o, "installed_size", (int64_t)inst) < 0 ||
            cli_json_add_changes(o, "against_lock", p->vs_lock) < 0 ||
            cli_json_add_changes(o, "against_deployed", p->vs_deployed) < 0 ||
            (rep ? cli_json_add_privileges(o, "privileges", rep) : cli_json_add_null(o, "privileges")) < 0)
                return -ENOMEM;
        return cli_json_print(stdout, o, CLI_JSON_LINE);
}

static void print_text(const struct build_plan *p) {
        size_t w = strlen("PACKAGE"), wv = strlen("VERSION");
        uint64_t dl = 0, inst = 0;
        for (size_t i = 0; i < p->set->n; i++) {
                size_t a = strlen(p->set->pkgs[i].name), b = strlen(p->set->pkgs[i].version);
                w = a > w ? a : w;
                wv = b > wv ? b : wv;
        }
        printf("machine '%s': %s\n", p->name,
               p->from_lock ? "the set pinned by the lock" : "resolved from the repositories");
        printf("%-*s  %-*s  %10s  %10s\n", (int)w, "PACKAGE", (int)wv, "VERSION", "DOWNLOAD", "INSTALLED");
        for (size_t i = 0; i < p->set->n; i++) {
                const struct lock_pkg *k = &p->set->pkgs[i];
                char a[32], b[32];
                cli_human_size(k->size, a, sizeof a);
                cli_human_size(k->isize, b, sizeof b);
                printf("%-*s  %-*s  %10s  %10s\n", (int)w, k->name, (int)wv, k->version, a, b);
                dl += k->size;
                inst += k->isize;
        }
        char a[32], b[32];
        cli_human_size(dl, a, sizeof a);
        cli_human_size(inst, b, sizeof b);
        printf("%zu packages: %s to download, %s installed\n", p->set->n, a, b);
        if (p->vs_lock)
                cli_print_changes(stdout, "against the lock", p->vs_lock);
        else
                printf("against the lock: there is none (%s)\n", p->lock_path);
        if (p->vs_deployed)
                cli_print_changes(stdout, "against the deployed machine", p->vs_deployed);
        else
                printf("against the deployed machine: not deployed\n");
}

int cli_cmd_plan(struct mkm_ctx *ctx, int argc, char **argv) {
        bool update = false;
        int r0 = cli_parse_update_flag("plan", argc, argv, &update);
        if (r0 != 0)
                return r0;
        if (argc - optind != 1)
                return cli_usage_error("plan: expected exactly one RECIPE");
        struct mkm_err err = {};
        struct build_plan p = {};
        /* What a build would grant on the host, judged by the host's policy before anything is
         * fetched, as the build judges it (a recipe that does not load is build_plan's to report). */
        _cleanup_(recipe_freep) struct recipe *recipe = NULL;
        _cleanup_(priv_report_done) struct priv_report rep = {};
        bool assessed = false;
        if (recipe_load(ctx, argv[optind], &recipe, &err) >= 0) {
                int q = privileges_assess(ctx, recipe, &rep, &err);
                if (q < 0)
                        return cli_fail(q, &err, "plan");
                assessed = true;
                if (!ctx->json && ctx->verbosity >= 0)
                        cli_print_privileges(stderr, "", &rep, recipe->name);
                q = privileges_refusal(&rep, recipe->name, true, &err);
                if (q < 0)
                        return cli_fail_with(q, &err, "plan", q == -MKM_E_REFUSED ? cli_privileges_details(&rep) : NULL);
        }
        err = (struct mkm_err){};
        int r = build_plan(ctx, argv[optind], update, &p, &err);
        if (r < 0)
                return cli_fail(r, &err, "plan failed");
        if (ctx->json)
                r = print_json(&p, assessed ? &rep : NULL);
        else
                print_text(&p);
        build_plan_done(&p);
        if (r < 0)
                return cli_fail(r, NULL, "plan: printing the result");
        return EXIT_OK;
}
