/* SPDX-License-Identifier: MIT */
/* mkmachine check RECIPE: load (following includes), validate as for a build, and print the
 * effective recipe: its canonical text, or JSON with --json. Exit 0, or 2 for recipe errors. */
#include "cli.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "recipe.h"
#include "util/cleanup.h"
#include "util/err.h"

/* The effective recipe as JSON (built with json-c; printed by the caller). */
static int json_bootstrap(struct json_object *o, const struct recipe *r) {
        if (cli_json_add_string(o, "distribution", recipe_distribution_to_string(r->distribution)) < 0 ||
            cli_json_add_strv(o, "mirrors", r->mirrors) < 0 || cli_json_add_string(o, "snapshot", r->snapshot) < 0 ||
            (r->snapshot_epoch >= 0 ? cli_json_add_int(o, "snapshot_epoch", r->snapshot_epoch)
                                    : cli_json_add_null(o, "snapshot_epoch")) < 0 ||
            cli_json_add_strv(o, "suites", r->suites) < 0 || cli_json_add_strv(o, "components", r->components) < 0 ||
            cli_json_add_strv(o, "repositories", r->repositories) < 0 || cli_json_add_strv(o, "packages", r->packages) < 0 ||
            cli_json_add_string(o, "variant", r->variant) < 0 || cli_json_add_string(o, "keyring", r->keyring) < 0 ||
            cli_json_add_string(o, "architecture", r->architecture) < 0 ||
            cli_json_add_strv(o, "providers", r->providers) < 0 ||
            cli_json_add_bool(o, "require_database_signature", r->require_db_signature) < 0)
                return -ENOMEM;
        return 0;
}

static int json_hooks(struct json_object *o, const struct recipe *r) {
        if (cli_json_add_strv(o, "enable_services", r->enable_services) < 0 ||
            (r->fuse == RECIPE_UNSET ? cli_json_add_null(o, "fuse") : cli_json_add_bool(o, "fuse", r->fuse == RECIPE_YES)) < 0 ||
            cli_json_add_string(o, "docker_storage_driver", r->docker_storage_driver) < 0 ||
            cli_json_add_strv(o, "root_authorized_keys", r->root_authorized_keys) < 0)
                return -ENOMEM;
        struct json_object *copies = cli_json_add_array(o, "copies");
        if (!copies)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_copies; i++) {
                const struct recipe_copy *c = &r->copies[i];
                struct json_object *e = cli_json_append_object(copies);
                char mode[16];
                (void)snprintf(mode, sizeof mode, "%04o", (unsigned)c->mode);
                if (!e || cli_json_add_string(e, "src", c->src) < 0 || cli_json_add_string(e, "dest", c->dest) < 0 ||
                    cli_json_add_string(e, "mode", c->has_mode ? mode : NULL) < 0 ||
                    cli_json_add_string(e, "owner", c->owner) < 0)
                        return -ENOMEM;
        }
        if (cli_json_add_strv(o, "run", r->runs) < 0 || cli_json_add_bool(o, "run_network", r->run_network) < 0)
                return -ENOMEM;
        return 0;
}

static int json_recipe(const struct recipe *r, struct json_object **ret) {
        _cleanup_(cli_json_freep) struct json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        struct json_object *machine, *bootstrap, *hooks, *network, *nspawn;
        if (cli_json_add_string(o, "path", r->path) < 0 || cli_json_add_strv(o, "files", r->files) < 0 ||
            !(machine = cli_json_add_object(o, "machine")) || cli_json_add_string(machine, "name", r->name) < 0 ||
            !(bootstrap = cli_json_add_object(o, "bootstrap")) || json_bootstrap(bootstrap, r) < 0 ||
            !(hooks = cli_json_add_object(o, "hooks")) || json_hooks(hooks, r) < 0 ||
            !(network = cli_json_add_object(o, "network")) ||
            cli_json_add_strv(network, "addresses", r->network_addresses) < 0 ||
            cli_json_add_strv(network, "gateways", r->network_gateways) < 0 || !(nspawn = cli_json_add_array(o, "nspawn")))
                return -ENOMEM;
        for (size_t i = 0; i < r->n_nspawn; i++) {
                const struct recipe_nspawn_setting *s = &r->nspawn[i];
                struct json_object *e = cli_json_append_object(nspawn);
                if (!e || cli_json_add_string(e, "section", s->section) < 0 || cli_json_add_string(e, "key", s->key) < 0 ||
                    cli_json_add_string(e, "value", s->value) < 0 || cli_json_add_string(e, "file", s->file) < 0 ||
                    cli_json_add_int(e, "line", s->line) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

int cli_cmd_check(struct mkm_ctx *ctx, int argc, char **argv) {
        const char *path = NULL;
        bool json = ctx->json;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--json") == 0)
                        json = true;
                else if (argv[i][0] == '-' && argv[i][1])
                        return cli_usage_error("check: unknown option '%s'", argv[i]);
                else if (path)
                        return cli_usage_error("check: unexpected argument '%s' after the recipe", argv[i]);
                else
                        path = argv[i];
        }
        if (!path)
                return cli_usage_error("check: no recipe given");

        struct mkm_err err = {};
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        int k = recipe_load(ctx, path, &r, &err);
        if (k < 0)
                return cli_fail(k, &err, "check");
        k = recipe_validate_for_build(r, &err);
        if (k < 0)
                return cli_fail(k, &err, "check");

        if (json) {
                _cleanup_(cli_json_freep) struct json_object *o = NULL;
                k = json_recipe(r, &o);
                if (k >= 0)
                        k = cli_json_print(stdout, o, CLI_JSON_PRETTY);
                if (k < 0)
                        return cli_fail(k, NULL, "check");
        } else {
                _cleanup_free_ char *text = NULL;
                k = recipe_format(r, &text);
                if (k < 0)
                        return cli_fail(k, NULL, "check");
                fputs(text, stdout);
        }
        if (fflush(stdout) != 0)
                return cli_fail(-errno, NULL, "check: writing the recipe");
        return EXIT_OK;
}
