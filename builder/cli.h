/* SPDX-License-Identifier: MIT */
/* The command-line layer: the only code that prints. Each subcommand lives in cli-<name>.c. */
#pragma once

#include <stdio.h>

struct mkm_ctx;
struct mkm_err;

/* Exit codes (documented in mkmachine(1)). */
enum {
        EXIT_OK = 0,
        EXIT_BUILD_FAILED = 1,  /* the build (fetch, verify, resolve, install, deploy) failed */
        EXIT_USAGE = 2,         /* bad command line or invalid recipe */
};

/* Print "mkmachine: WHAT: DETAIL" to stderr (DETAIL from err, else from r) and return the exit
 * code that fits r: EXIT_USAGE for usage/parse/recipe errors, EXIT_BUILD_FAILED otherwise. */
int cli_fail(int r, const struct mkm_err *err, const char *what);

/* Print a usage error and return EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Write s as a JSON string (quoted, escaped); NULL as null. */
void cli_json_string(FILE *f, const char *s);

/* Subcommands: argv[0] is the subcommand name; they return an exit code. */
int cli_cmd_build(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_check(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_lock(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_vercmp(struct mkm_ctx *ctx, int argc, char **argv);

int cli_main(int argc, char **argv);
