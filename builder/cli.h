/* SPDX-License-Identifier: MIT */
/* The command-line layer: the only code that prints. Each subcommand lives in cli-<name>.c. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct json_object;
struct lock_diff;
struct build_opts;
struct mkm_ctx;
struct mkm_err;
struct priv_report;

/* Exit codes (documented in mkmachine(1)). */
enum {
        EXIT_OK = 0,
        EXIT_BUILD_FAILED = 1,  /* the build (fetch, verify, resolve, install, deploy) failed */
        EXIT_USAGE = 2,         /* bad command line or invalid recipe */
        EXIT_INTERRUPTED = 130, /* SIGINT (128 + the signal, as shells report it: 143 SIGTERM, 129 SIGHUP) */
};

/* Every message the CLI prints starts with "mkmachine: error: " or "mkmachine: warning: "; a
 * message of several lines (check's list of recipe errors) gets the prefix on each line. Under
 * --json an error is also one JSON document on stdout:
 *     {"error": {"message": "...", "exit": N, "code": N}}
 * (N the exit status; "code" repeats it under the name the lifecycle contract uses). */

/* Print "mkmachine: error: WHAT: DETAIL" (DETAIL from err, else from r) and return the exit code
 * that fits r: EXIT_USAGE for usage/parse/recipe errors, EXIT_BUILD_FAILED otherwise. */
int cli_fail(int r, const struct mkm_err *err, const char *what);
/* The same, with more members for the JSON error object: details (an object, taken; NULL for
 * none) is merged into "error", e.g. check's "errors": [{"file", "line", "message"}]. */
int cli_fail_with(int r, const struct mkm_err *err, const char *what, struct json_object *details);

/* Print "mkmachine: error: MESSAGE" (and the JSON error) and return exit_code as it is: for
 * refusals and interruptions whose exit status is not cli_fail's. */
int cli_error(int exit_code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print "mkmachine: warning: MESSAGE"; returns 0. */
int cli_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A subcommand's only option, --update (plan, rebuild): sets *ret_update and leaves optind at the
 * first operand; an unknown option is a usage error (its exit code returned; 0 on success). */
int cli_parse_update_flag(const char *cmd, int argc, char **argv, bool *ret_update);

/* Print a usage error ("mkmachine: error: ..." and a hint to --help) and return EXIT_USAGE.*/
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* What the renderer counted since the start: bytes and files downloaded, seconds elapsed. For
 * the summary line at the end of a build. */
void cli_progress_totals(const struct mkm_ctx *ctx, uint64_t *ret_bytes, unsigned *ret_files, double *ret_seconds);
/* n bytes as "1.2 MiB" into buf. */
void cli_human_size(uint64_t n, char *buf, size_t len);

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

/* "AGAINST: 1 added, 1 upgraded" and a line per package. */
void cli_print_changes(FILE *f, const char *against, const struct lock_diff *d);
/* {"summary": "...", "added": N, ..., "packages": [{name, change, old_version, new_version}]} as
 * member key of o; null when d is NULL. 0 or -ENOMEM. */
int cli_json_add_changes(struct json_object *o, const char *key, const struct lock_diff *d);

/* What a machine is granted on the host (privileges.h), one grant a line after a heading, each
 * line starting with prefix ("# " in check's output), REFUSED / NEW before those the policy
 * refuses and those the deployed generation lacks; then the policy and the deployed generation. */
void cli_print_privileges(FILE *f, const char *prefix, const struct priv_report *rep, const char *name);
/* The same as member key of o: {"grants": [{kind, value, what, host_file, setting, key, file,
 * line, added_by, why, description, allowed, refused, new}], "policy", "refused",
 * "deployed_generation", "new"}. 0 or -ENOMEM. */
int cli_json_add_privileges(struct json_object *o, const char *key, const struct priv_report *rep);
/* {"privileges": ...} for cli_fail_with's details; NULL on ENOMEM. */
struct json_object *cli_privileges_details(const struct priv_report *rep);

/* Subcommands: argv[0] is the subcommand name; they return an exit code. */
int cli_cmd_build(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_check(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_export(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_import(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_lock(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_ls(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_rollback(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_rm(struct mkm_ctx *ctx, int argc, char **argv);
/* mkmachine build of path with o (mkmachine rebuild): the same guard, output and exit codes. */
int cli_build_with(struct mkm_ctx *ctx, const char *path, const struct build_opts *o);
int cli_cmd_plan(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_rebuild(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_clean(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_vercmp(struct mkm_ctx *ctx, int argc, char **argv);
int cli_cmd_verify(struct mkm_ctx *ctx, int argc, char **argv);

int cli_main(int argc, char **argv);
