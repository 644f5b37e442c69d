/* SPDX-License-Identifier: MIT */
/* mkmachine lock RECIPE: resolve again and rewrite RECIPE.lock (downloads and verifies the
 * packages, so the lock can name the keys that signed them). */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>

#include "build.h"
#include "cli.h"
#include "ctx.h"
#include "util/cleanup.h"
#include "util/err.h"

int cli_cmd_lock(struct mkm_ctx *ctx, int argc, char **argv) {
        if (argc != 2)
                return cli_usage_error("lock: expected exactly one RECIPE");
        struct mkm_err err = {};
        struct build_result res = {};
        int r = build_lock(ctx, argv[1], &res, &err);
        if (r < 0)
                return cli_fail(r, &err, "lock failed");
        if (ctx->json) {
                _cleanup_(cli_json_freep) struct json_object *o = json_object_new_object();
                if (!o || cli_json_add_string(o, "lock", res.lock_path) < 0 ||
                    cli_json_add_int(o, "packages", (int64_t)res.packages) < 0 ||
                    cli_json_add_bool(o, "changed", res.lock_written) < 0 || cli_json_print(stdout, o, CLI_JSON_LINE) < 0)
                        r = -ENOMEM;
        } else if (ctx->verbosity >= 0)
                fprintf(stderr, "%s %s (%zu packages)\n", res.lock_written ? "wrote" : "unchanged:", res.lock_path,
                        res.packages);
        build_result_done(&res);
        if (r < 0)
                return cli_fail(r, NULL, "lock: printing the result");
        return EXIT_OK;
}
