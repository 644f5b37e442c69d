/* SPDX-License-Identifier: MIT */
/* mkmachine check RECIPE: load (following includes), validate as for a build, and print the
 * effective recipe: its canonical text, or JSON with --json. Exit 0, or 2 for recipe errors. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "recipe.h"
#include "util/cleanup.h"
#include "util/err.h"

static void json_strv(FILE *f, char *const *l) {
        fputc('[', f);
        for (size_t i = 0; l && l[i]; i++) {
                if (i)
                        fputs(", ", f);
                cli_json_string(f, l[i]);
        }
        fputc(']', f);
}

static void json_key(FILE *f, const char *indent, const char *key, bool first) {
        fprintf(f, "%s\n%s\"%s\": ", first ? "" : ",", indent, key);
}

static void print_json(FILE *f, const struct recipe *r) {
        const char *in = "    ";
        fputs("{", f);
        json_key(f, "  ", "path", true);
        cli_json_string(f, r->path);
        json_key(f, "  ", "files", false);
        json_strv(f, r->files);

        json_key(f, "  ", "machine", false);
        fputs("{", f);
        json_key(f, in, "name", true);
        cli_json_string(f, r->name);
        fputs("\n  }", f);

        json_key(f, "  ", "bootstrap", false);
        fputs("{", f);
        json_key(f, in, "distribution", true);
        cli_json_string(f, recipe_distribution_to_string(r->distribution));
        json_key(f, in, "mirrors", false);
        json_strv(f, r->mirrors);
        json_key(f, in, "snapshot", false);
        cli_json_string(f, r->snapshot);
        json_key(f, in, "snapshot_epoch", false);
        if (r->snapshot_epoch >= 0)
                fprintf(f, "%lld", (long long)r->snapshot_epoch);
        else
                fputs("null", f);
        json_key(f, in, "suites", false);
        json_strv(f, r->suites);
        json_key(f, in, "components", false);
        json_strv(f, r->components);
        json_key(f, in, "repositories", false);
        json_strv(f, r->repositories);
        json_key(f, in, "packages", false);
        json_strv(f, r->packages);
        json_key(f, in, "variant", false);
        cli_json_string(f, r->variant);
        json_key(f, in, "keyring", false);
        cli_json_string(f, r->keyring);
        json_key(f, in, "architecture", false);
        cli_json_string(f, r->architecture);
        json_key(f, in, "providers", false);
        json_strv(f, r->providers);
        json_key(f, in, "require_database_signature", false);
        fputs(r->require_db_signature ? "true" : "false", f);
        fputs("\n  }", f);

        json_key(f, "  ", "hooks", false);
        fputs("{", f);
        json_key(f, in, "enable_services", true);
        json_strv(f, r->enable_services);
        json_key(f, in, "fuse", false);
        fputs(r->fuse == RECIPE_UNSET ? "null" : r->fuse == RECIPE_YES ? "true" : "false", f);
        json_key(f, in, "docker_storage_driver", false);
        cli_json_string(f, r->docker_storage_driver);
        json_key(f, in, "root_authorized_keys", false);
        json_strv(f, r->root_authorized_keys);
        json_key(f, in, "copies", false);
        fputc('[', f);
        for (size_t i = 0; i < r->n_copies; i++) {
                const struct recipe_copy *c = &r->copies[i];
                fputs(i ? ", {" : "{", f);
                fputs("\"src\": ", f);
                cli_json_string(f, c->src);
                fputs(", \"dest\": ", f);
                cli_json_string(f, c->dest);
                fputs(", \"mode\": ", f);
                if (c->has_mode)
                        fprintf(f, "\"%04o\"", (unsigned)c->mode);
                else
                        fputs("null", f);
                fputs(", \"owner\": ", f);
                cli_json_string(f, c->owner);
                fputc('}', f);
        }
        fputc(']', f);
        json_key(f, in, "run", false);
        json_strv(f, r->runs);
        json_key(f, in, "run_network", false);
        fputs(r->run_network ? "true" : "false", f);
        fputs("\n  }", f);

        json_key(f, "  ", "network", false);
        fputs("{", f);
        json_key(f, in, "addresses", true);
        json_strv(f, r->network_addresses);
        json_key(f, in, "gateways", false);
        json_strv(f, r->network_gateways);
        fputs("\n  }", f);

        json_key(f, "  ", "nspawn", false);
        fputc('[', f);
        for (size_t i = 0; i < r->n_nspawn; i++) {
                const struct recipe_nspawn_setting *s = &r->nspawn[i];
                fputs(i ? ",\n    {" : "\n    {", f);
                fputs("\"section\": ", f);
                cli_json_string(f, s->section);
                fputs(", \"key\": ", f);
                cli_json_string(f, s->key);
                fputs(", \"value\": ", f);
                cli_json_string(f, s->value);
                fputs(", \"file\": ", f);
                cli_json_string(f, s->file);
                fprintf(f, ", \"line\": %u}", s->line);
        }
        fputs(r->n_nspawn ? "\n  ]" : "]", f);
        fputs("\n}\n", f);
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

        if (json)
                print_json(stdout, r);
        else {
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
