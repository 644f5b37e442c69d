/* SPDX-License-Identifier: MIT */
/* mkmachine lock RECIPE: resolve again and rewrite RECIPE.lock (downloads and verifies the
 * packages, so the lock can name the keys that signed them). */
#include <stdio.h>

#include "build.h"
#include "cli.h"
#include "ctx.h"
#include "util/err.h"

int cli_cmd_lock(struct mkm_ctx *ctx, int argc, char **argv) {
        if (argc != 2)
                return cli_usage_error("lock: expected exactly one RECIPE");
        struct mkm_err err = {};
        struct build_result res = {};
        int r = build_lock(ctx, argv[1], &res, &err);
        if (r < 0)
                return cli_fail(r, &err, "lock failed");
        if (ctx->json)
        {
                fputs("{\"lock\":", stdout);
                cli_json_string(stdout, res.lock_path);
                printf(",\"packages\":%zu,\"changed\":%s}\n", res.packages, res.lock_written ? "true" : "false");
        }
        else if (ctx->verbosity >= 0)
                fprintf(stderr, "%s %s (%zu packages)\n", res.lock_written ? "wrote" : "unchanged:", res.lock_path,
                        res.packages);
        build_result_done(&res);
        return EXIT_OK;
}
