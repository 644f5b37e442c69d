/* SPDX-License-Identifier: MIT */
/* mkmachine vercmp A B | vercmp - : pacman's version comparison on the command line.
 * Like pacman's vercmp, prints -1, 0 or 1 and exits 0; "-" reads "A B" pairs from stdin, one
 * result a line, so tests compare thousands of pairs with one process. Arguments are taken
 * literally (a version may start with '-'); only "-h"/"--help" alone is an option. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "arch/vercmp.h"

static int vercmp_stdin(void) {
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
                printf("%d\n", alpm_vercmp(a, b));
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
                printf("Usage: mkmachine vercmp VERSION1 VERSION2\n"
                       "       mkmachine vercmp -     (reads 'VERSION1 VERSION2' lines from stdin)\n"
                       "\n"
                       "Compare pacman versions [epoch:]pkgver[-pkgrel] as pacman does and print\n"
                       "-1 (older), 0 (same) or 1 (newer) for VERSION1 against VERSION2.\n");
                return EXIT_OK;
        }
        if (argc == 2 && strcmp(argv[1], "-") == 0)
                return vercmp_stdin();
        if (argc != 3)
                return cli_usage_error("vercmp: expected two versions or '-', got %d argument%s", argc - 1,
                                       argc == 2 ? "" : "s");
        printf("%d\n", alpm_vercmp(argv[1], argv[2]));
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_BUILD_FAILED;
}
