/* SPDX-License-Identifier: MIT */
/* mkmachine rollback NAME: swap the generation that was live before back in (deploy_rollback). */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "ctx.h"
#include "deploy.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/err.h"

int cli_cmd_rollback(struct mkm_ctx *ctx, int argc, char **argv) {
        if (argc != 2)
                return cli_usage_error("rollback: expected exactly one machine NAME");
        const char *name = argv[1];
        if (!deploy_name_is_valid(name))
                return cli_usage_error("rollback: '%s' is not a valid machine name", name);
        if (geteuid() != 0)
                return cli_usage_error("rollback: must run as root");
        struct mkm_err err = {};
        _cleanup_(deploy_freep) struct deploy *d = NULL;
        int r = deploy_begin(ctx, name, &d, &err);
        if (r < 0)
                return cli_fail(r, &err, "rollback failed");
        if (!d->state->n_gens && !d->state->tree_exists) {
                (void)deploy_remove(ctx, d, &err);      /* the empty state directory deploy_begin made */
                r = mkm_err_set(&err, -ENOENT, "no machine '%s' (nothing at %s)", name, d->target);
                return cli_fail(r, &err, "rollback failed");
        }
        r = deploy_check_replaceable(ctx, d, "roll back", &err);
        if (r < 0)
                return cli_fail(r, &err, "rollback failed");
        unsigned from = 0, to = 0;
        r = deploy_rollback(ctx, d, &from, &to, &err);
        if (r < 0)
                return cli_fail(r, &err, "rollback failed");
        const char *digest = d->state->live ? d->state->live->digest : "";
        if (ctx->json) {
                _cleanup_(cli_json_freep) struct json_object *o = json_object_new_object();
                if (!o || cli_json_add_string(o, "name", name) < 0 || cli_json_add_string(o, "path", d->target) < 0 ||
                    cli_json_add_int(o, "from", from) < 0 || cli_json_add_int(o, "to", to) < 0 ||
                    cli_json_add_string(o, "digest", digest[0] ? digest : NULL) < 0 || cli_json_print(stdout, o, CLI_JSON_LINE) < 0)
                        return cli_fail(-ENOMEM, NULL, "rollback: printing the result");
        } else if (ctx->verbosity >= 0)
                fprintf(stderr, "machine '%s' rolled back from generation %u to %u\ndigest %s\n", name, from, to,
                        digest[0] ? digest : "unknown");
        return EXIT_OK;
}
