/* SPDX-License-Identifier: MIT */
/* mkmachine rm NAME: remove the machine, its kept generations, its host files and its state. */
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

int cli_cmd_rm(struct mkm_ctx *ctx, int argc, char **argv) {
        if (argc != 2)
                return cli_usage_error("rm: expected exactly one machine NAME");
        const char *name = argv[1];
        if (!deploy_name_is_valid(name))
                return cli_usage_error("rm: '%s' is not a valid machine name", name);
        if (geteuid() != 0)
                return cli_usage_error("rm: must run as root");
        struct mkm_err err = {};
        _cleanup_(deploy_freep) struct deploy *d = NULL;
        int r = deploy_begin(ctx, name, &d, &err);
        if (r < 0)
                return cli_fail(r, &err, "rm failed");
        if (!d->state->n_gens && !d->state->tree_exists) {
                /* deploy_begin made an empty state directory: take it away again */
                (void)deploy_remove(ctx, d, &err);
                r = mkm_err_set(&err, -ENOENT, "no machine '%s' (nothing at %s)", name, d->target);
                return cli_fail(r, &err, "rm failed");
        }
        r = deploy_check_replaceable(ctx, d, "remove", &err);
        if (r < 0)
                return cli_fail(r, &err, "rm failed");
        r = deploy_remove(ctx, d, &err);
        if (r < 0)
                return cli_fail(r, &err, "rm failed");
        if (ctx->json) {
                _cleanup_(cli_json_freep) struct json_object *o = json_object_new_object();
                if (!o || cli_json_add_string(o, "name", name) < 0 || cli_json_add_string(o, "path", d->target) < 0 ||
                    cli_json_add_bool(o, "removed", true) < 0 || cli_json_print(stdout, o, CLI_JSON_LINE) < 0)
                        return cli_fail(-ENOMEM, NULL, "rm: printing the result");
        } else if (ctx->verbosity >= 0)
                fprintf(stderr, "machine '%s' removed\n", name);
        return EXIT_OK;
}
