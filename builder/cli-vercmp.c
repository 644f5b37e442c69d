/* SPDX-License-Identifier: MIT */
/* mkmachine vercmp [--debian] A B | vercmp [--debian] - : version comparison on the command line.
 * Like pacman's vercmp, prints -1, 0 or 1 and exits 0; "-" reads "A B" pairs from stdin, one
 * result a line, so tests compare thousands of pairs with one process. Without --debian the
 * comparison is pacman's, with it dpkg's (dpkg --compare-versions A lt|eq|gt B). Arguments are
 * taken literally (a version may start with '-'); only "-h"/"--help" alone and "--debian" are
 * options (cli.c takes the global ones, such as --json, from anywhere on the line). A Debian version that dpkg would refuse or warn about is still
 * compared (see builder/debian/version.c), with a warning on stderr. */
#include "cli.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "debian/version.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "arch/vercmp.h"

typedef int (*cmp_fn)(const char *a, const char *b);

/* Debian: say which inputs are not valid versions (lineno 0 for arguments). */
static void warn_invalid(bool debian, unsigned long lineno, const char *v) {
        const char *why = NULL;
        if (!debian || debver_check(v, &why) >= 0)
                return;
        if (lineno > 0)
                cli_warning("vercmp: stdin line %lu: version '%s' is invalid (%s); comparing it leniently", lineno, v, why);
        else
                cli_warning("vercmp: version '%s' is invalid (%s); comparing it leniently", v, why);
}

static int sign(int r) { return r < 0 ? -1 : r > 0 ? 1 : 0; }

/* One result: "-1" plain, or with --json {"a": A, "b": B, "result": -1} (one line each, so the
 * stdin form is a stream of JSON lines). */
static int print_result(bool json, const char *a, const char *b, int result) {
        if (!json) {
                printf("%d\n", result);
                return 0;
        }
        _cleanup_(cli_json_freep) struct json_object *o = json_object_new_object();
        if (!o || cli_json_add_string(o, "a", a) < 0 || cli_json_add_string(o, "b", b) < 0 ||
            cli_json_add_int(o, "result", result) < 0)
                return -ENOMEM;
        return cli_json_print(stdout, o, CLI_JSON_LINE);
}

static int vercmp_stdin(bool debian, bool json) {
        cmp_fn cmp = debian ? debver_cmp : alpm_vercmp;
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        unsigned long lineno = 0;

        while ((n = getline(&line, &cap, stdin)) >= 0) {
                lineno++;
                if (n > 0 && line[n - 1] == '\n')
                        line[--n] = 0;
                char *save = NULL;
                const char *a = strtok_r(line, " \t", &save);
                const char *b = a ? strtok_r(NULL, " \t", &save) : NULL;
                if (!a || !b || strtok_r(NULL, " \t", &save)) {
                        return cli_error(EXIT_USAGE, "vercmp: stdin line %lu: expected two versions separated by a space",
                                         lineno);
                }
                warn_invalid(debian, lineno, a);
                warn_invalid(debian, lineno, b);
                if (print_result(json, a, b, sign(cmp(a, b))) < 0)
                        return cli_fail(-ENOMEM, NULL, "vercmp");
        }
        if (ferror(stdin))
                return cli_error(EXIT_BUILD_FAILED, "vercmp: reading stdin failed");
        if (fflush(stdout) != 0)
                return EXIT_BUILD_FAILED;
        return EXIT_OK;
}

int cli_cmd_vercmp(struct mkm_ctx *ctx, int argc, char **argv) {
        if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
                printf("Usage: mkmachine vercmp [--debian] VERSION1 VERSION2\n"
                       "       mkmachine vercmp [--debian] -     (reads 'VERSION1 VERSION2' lines from stdin)\n"
                       "\n"
                       "Compare pacman versions [epoch:]pkgver[-pkgrel] as pacman does, or with --debian\n"
                       "Debian versions [epoch:]upstream[-revision] as dpkg does, and print -1 (older),\n"
                       "0 (same) or 1 (newer) for VERSION1 against VERSION2.\n");
                return EXIT_OK;
        }
        /* --debian anywhere (options may follow the arguments, as elsewhere on the line). */
        bool debian = false;
        char *args[4] = { argv[0] };
        int n = 1;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--debian") == 0)
                        debian = true;
                else if (n < 3)
                        args[n++] = argv[i];
                else
                        n++;
        }
        argc = n;
        argv = args;
        if (argc == 2 && strcmp(argv[1], "-") == 0)
                return vercmp_stdin(debian, ctx->json);
        if (argc != 3)
                return cli_usage_error("vercmp%s: expected two versions or '-', got %d argument%s",
                                       debian ? " --debian" : "", argc - 1, argc == 2 ? "" : "s");
        warn_invalid(debian, 0, argv[1]);
        warn_invalid(debian, 0, argv[2]);
        if (print_result(ctx->json, argv[1], argv[2], sign(debian ? debver_cmp(argv[1], argv[2]) : alpm_vercmp(argv[1], argv[2]))) < 0)
                return cli_fail(-ENOMEM, NULL, "vercmp");
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_BUILD_FAILED;
}
