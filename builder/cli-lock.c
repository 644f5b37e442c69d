/* SPDX-License-Identifier: MIT */
/* mkmachine lock — placeholder until its module lands. */
#include "cli.h"

#include "ctx.h"
#include "util/err.h"

#include <errno.h>

int cli_cmd_lock(struct mkm_ctx *ctx, int argc, char **argv) {
        (void)ctx;
        (void)argc;
        (void)argv;
        return cli_fail(-ENOSYS, NULL, "lock: not implemented yet");
}
