/* SPDX-License-Identifier: MIT */
/* mkmachine check — placeholder until its module lands. */
#include "cli.h"

#include "ctx.h"
#include "util/err.h"

#include <errno.h>

int cli_cmd_check(struct mkm_ctx *ctx, int argc, char **argv) {
        (void)ctx;
        (void)argc;
        (void)argv;
        return cli_fail(-ENOSYS, NULL, "check: not implemented yet");
}
