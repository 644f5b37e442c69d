/* SPDX-License-Identifier: MIT */
/* Test driver for builder/debian/index.h: prints what the parsers made of a file, in a form a
 * few lines of Python can produce independently (tests/integration/debian-index.sh compares the
 * two). Built by that test against libmkm.a with the build's flags; not installed.
 *
 *   deb-index-dump packages FILE   one line per package, tab-separated:
 *       name version arch filename size sha256 installed_size priority multi_arch essential
 *       important source pre_depends depends recommends provides conflicts breaks
 *     (relationships as "a (>= 1) | b:any, c", source empty when absent)
 *   deb-index-dump release FILE    "key value" lines, then "sha256 size path" lines
 *   deb-index-dump count FILE      the number of packages (for /usr/bin/time -v)
 *   deb-index-dump read FILE       read the file only (the RSS baseline for "count")
 *   deb-index-dump bench FILE [N]  parse N times (default 5): best and median seconds (wall
 *                                  and CPU), the arena's and the package array's bytes
 * Exit 0, or 1 with the parser's message on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "debian/arena.h"
#include "debian/index.h"
#include "util/err.h"

static char *read_file(const char *path, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                perror(path);
                exit(1);
        }
        char *buf = malloc((size_t)st.st_size + 1);
        size_t got = 0;
        while (buf && got < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
                if (n <= 0) {
                        perror(path);
                        exit(1);
                }
                got += (size_t)n;
        }
        close(fd);
        if (!buf)
                exit(1);
        *ret_len = got;
        return buf;
}

static const char *const ops[] = {
        [DEB_REL_ANY] = "", [DEB_REL_LT] = "<<", [DEB_REL_LE] = "<=", [DEB_REL_EQ] = "=",
        [DEB_REL_GE] = ">=", [DEB_REL_GT] = ">>",
};

static void print_rel(const struct deb_rel *rel) {
        putchar('\t');
        for (uint32_t g = 0; g < rel->n; g++) {
                if (g)
                        fputs(", ", stdout);
                for (uint32_t a = 0; a < rel->groups[g].n; a++) {
                        const struct deb_atom *x = &rel->groups[g].atoms[a];
                        if (a)
                                fputs(" | ", stdout);
                        fputs(x->name, stdout);
                        if (x->arch)
                                printf(":%s", x->arch);
                        if (x->op != DEB_REL_ANY)
                                printf(" (%s %s)", ops[x->op], x->version);
                }
        }
}

static double now(clockid_t clk) {
        struct timespec ts;
        clock_gettime(clk, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
        struct mkm_err err = { 0 };
        struct deb_index *x = NULL;
        size_t len;

        if (argc < 3) {
                fprintf(stderr, "usage: %s packages|release|count|read|bench FILE [N]\n", argv[0]);
                return 2;
        }
        const char *cmd = argv[1];
        char *text = read_file(argv[2], &len);

        if (strcmp(cmd, "read") == 0) {
                printf("%zu\n", len);
                free(text);
                return 0;
        }
        if (strcmp(cmd, "release") == 0) {
                struct deb_release *r = NULL;
                if (deb_release_parse(text, len, argv[2], &r, &err) < 0) {
                        fprintf(stderr, "%s\n", err.msg);
                        free(text);
                        return 1;
                }
                printf("origin %s\nlabel %s\nsuite %s\ncodename %s\nversion %s\n", r->origin ? r->origin : "",
                       r->label ? r->label : "", r->suite ? r->suite : "", r->codename ? r->codename : "",
                       r->version ? r->version : "");
                printf("date %" PRId64 "\nvalid_until %" PRId64 "\nacquire_by_hash %d\n", r->date, r->valid_until,
                       r->acquire_by_hash);
                fputs("architectures", stdout);
                for (char **a = r->architectures; *a; a++)
                        printf(" %s", *a);
                fputs("\ncomponents", stdout);
                for (char **a = r->components; *a; a++)
                        printf(" %s", *a);
                putchar('\n');
                for (size_t i = 0; i < r->n_files; i++)
                        printf("%s %" PRIu64 " %s\n", r->files[i].sha256, r->files[i].size, r->files[i].path);
                deb_release_free(r);
                free(text);
                return 0;
        }
        if (strcmp(cmd, "bench") == 0) {
                int n = argc > 3 ? atoi(argv[3]) : 5;
                double t[64], c[64];
                if (n < 1 || n > 64)
                        n = 5;
                size_t bytes = 0, pkgs = 0;
                for (int i = 0; i < n; i++) {
                        double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
                        if (deb_index_parse(text, len, argv[2], 0, &x, &err) < 0) {
                                fprintf(stderr, "%s\n", err.msg);
                                free(text);
                                return 1;
                        }
                        t[i] = now(CLOCK_MONOTONIC) - t0;
                        c[i] = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
                        bytes = ((struct deb_store *)x->arena)->mem.total;
                        pkgs = x->n;
                        x = deb_index_free(x);
                }
                qsort(t, (size_t)n, sizeof *t, cmp_double);
                qsort(c, (size_t)n, sizeof *c, cmp_double);
                printf("packages %zu text %zu wall best %.3f median %.3f cpu best %.3f median %.3f arena %zu pkgs_array %zu\n",
                       pkgs, len, t[0], t[n / 2], c[0], c[n / 2], bytes, pkgs * sizeof(struct deb_pkg));
                free(text);
                return 0;
        }
        if (deb_index_parse(text, len, argv[2], 7, &x, &err) < 0) {
                fprintf(stderr, "%s\n", err.msg);
                free(text);
                return 1;
        }
        if (strcmp(cmd, "count") == 0)
                printf("%zu\n", x->n);
        else {
                static const char *const prios[] = { "required", "important", "standard", "optional", "extra", "unknown" };
                static const char *const mas[] = { "no", "same", "foreign", "allowed" };
                for (size_t i = 0; i < x->n; i++) {
                        const struct deb_pkg *p = &x->pkgs[i];
                        if (p->index != 7) {
                                fprintf(stderr, "package %zu: index %u, not 7\n", i, p->index);
                                return 1;
                        }
                        printf("%s\t%s\t%s\t%s\t%" PRIu64 "\t%s\t%" PRIu64 "\t%s\t%s\t%s\t%s\t%s", p->name, p->version,
                               p->arch, p->filename, p->size, p->sha256, p->installed_size, prios[p->priority],
                               mas[p->multi_arch], p->essential ? "yes" : "no", p->important ? "yes" : "no",
                               p->source ? p->source : "");
                        print_rel(&p->pre_depends);
                        print_rel(&p->depends);
                        print_rel(&p->recommends);
                        print_rel(&p->provides);
                        print_rel(&p->conflicts);
                        print_rel(&p->breaks);
                        putchar('\n');
                }
        }
        deb_index_free(x);
        free(text);
        return 0;
}
