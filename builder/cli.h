/* SPDX-License-Identifier: MIT */
/* The command-line layer: the only code that prints. Each subcommand lives in cli-<name>.c. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct json_object;
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

/* --json output is built with json-c (quoting right by construction) and printed with one of two
 * fixed flag sets: CLI_JSON_LINE, one line (the results of build and lock), or CLI_JSON_PRETTY,
 * indented (check's effective recipe). Each ends with a newline. -ENOMEM if json-c cannot. */
enum cli_json_style {
        CLI_JSON_LINE,
        CLI_JSON_PRETTY,
};
int cli_json_print(FILE *f, struct json_object *o, enum cli_json_style style);
/* For _cleanup_(cli_json_freep): drops a json-c reference, NULL allowed. */
void cli_json_freep(struct json_object **o);

/* Members of the object o: 0 or -ENOMEM. A NULL string is null; a NULL strv an empty array. */
int cli_json_add_string(struct json_object *o, const char *key, const char *s);
int cli_json_add_strv(struct json_object *o, const char *key, char *const *l);
int cli_json_add_int(struct json_object *o, const char *key, int64_t n);
int cli_json_add_bool(struct json_object *o, const char *key, bool b);
int cli_json_add_null(struct json_object *o, const char *key);
/* A new object or array as the member key of o, or a new object at the end of the array a:
 * borrowed (o or a owns it), NULL on ENOMEM. */
struct json_object *cli_json_add_object(struct json_object *o, const char *key);
struct json_object *cli_json_add_array(struct json_object *o, const char *key);
struct json_object *cli_json_append_object(struct json_object *a);

/* Subcommands: argv[0] is the subcommand name; they return an exit code. */
int cli_cmd_build(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_check(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_export(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_import(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_lock(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_vercmp(struct mkm_ctx *ctx, int argc, char **argv);

int cli_main(int argc, char **argv);
