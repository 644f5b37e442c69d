/* SPDX-License-Identifier: MIT */
/* mkmachine vercmp [--debian] A B | vercmp [--debian] - : version comparison on the command line.
 * Like pacman's vercmp, prints -1, 0 or 1 and exits 0; "-" reads "A B" pairs from stdin, one
 * result a line, so tests compare thousands of pairs with one process. Without --debian the
 * comparison is pacman's, with it dpkg's (dpkg --compare-versions A lt|eq|gt B). Arguments are
 * taken literally (a version may start with '-'); only "-h"/"--help" alone and a leading
 * "--debian" are options. A Debian version that dpkg would refuse or warn about is still
 * compared (see builder/debian/version.c), with a warning on stderr. */
#include "cli.h"

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
                fprintf(stderr, "mkmachine: vercmp: warning: stdin line %lu: version '%s' is invalid (%s); comparing it leniently\n",
                        lineno, v, why);
        else
                fprintf(stderr, "mkmachine: vercmp: warning: version '%s' is invalid (%s); comparing it leniently\n", v,
                        why);
}

static int sign(int r) { return r < 0 ? -1 : r > 0 ? 1 : 0; }

static int vercmp_stdin(bool debian) {
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
                        fprintf(stderr, "mkmachine: vercmp: stdin line %lu: expected two versions separated by a space\n",
                                lineno);
                        return EXIT_USAGE;
                }
                warn_invalid(debian, lineno, a);
                warn_invalid(debian, lineno, b);
                printf("%d\n", sign(cmp(a, b)));
        }
        if (ferror(stdin)) {
                fprintf(stderr, "mkmachine: vercmp: reading stdin failed\n");
                return EXIT_BUILD_FAILED;
        }
        if (fflush(stdout) != 0)
                return EXIT_BUILD_FAILED;
        return EXIT_OK;
}

int cli_cmd_vercmp(struct mkm_ctx *ctx, int argc, char **argv) {
        (void)ctx;
        if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
                printf("Usage: mkmachine vercmp [--debian] VERSION1 VERSION2\n"
                       "       mkmachine vercmp [--debian] -     (reads 'VERSION1 VERSION2' lines from stdin)\n"
                       "\n"
                       "Compare pacman versions [epoch:]pkgver[-pkgrel] as pacman does, or with --debian\n"
                       "Debian versions [epoch:]upstream[-revision] as dpkg does, and print -1 (older),\n"
                       "0 (same) or 1 (newer) for VERSION1 against VERSION2.\n");
                return EXIT_OK;
        }
        bool debian = argc >= 2 && strcmp(argv[1], "--debian") == 0;
        if (debian) {
                argc--;
                argv++;
        }
        if (argc == 2 && strcmp(argv[1], "-") == 0)
                return vercmp_stdin(debian);
        if (argc != 3)
                return cli_usage_error("vercmp%s: expected two versions or '-', got %d argument%s",
                                       debian ? " --debian" : "", argc - 1, argc == 2 ? "" : "s");
        warn_invalid(debian, 0, argv[1]);
        warn_invalid(debian, 0, argv[2]);
        printf("%d\n", sign(debian ? debver_cmp(argv[1], argv[2]) : alpm_vercmp(argv[1], argv[2])));
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_BUILD_FAILED;
}
