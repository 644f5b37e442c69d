/* SPDX-License-Identifier: MIT */
/* Test driver for builder/debian/resolve.h: resolves a variant over Packages files and prints
 * the plan, one package a line, in install order. tests/integration/debian-resolve-oracle.sh
 * builds it against libmkm.a and compares its output with what mmdebstrap installs.
 *
 *   debresolve-dump [--arch A] [--variant V] [--flags] PACKAGES... [-- TARGET...]
 *
 * Lines are "name version", or with --flags "name version E X" where E is 1 for the essential
 * set and X is 1 for a package that was asked for. Exit 0, or 1 with the error on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "debian/index.h"
#include "debian/resolve.h"
#include "util/err.h"

static char *read_file(const char *path, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        char *buf = NULL;
        size_t got = 0;

        if (fd < 0 || fstat(fd, &st) < 0)
                goto fail;
        buf = malloc((size_t)st.st_size + 1);
        if (!buf)
                goto fail;
        while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
                if (n <= 0)
                        goto fail;
                got += (size_t)n;
        }
        close(fd);
        buf[got] = 0;
        *ret_len = got;
        return buf;
fail:
        fprintf(stderr, "debresolve-dump: %s: %s\n", path, strerror(errno ? errno : EIO));
        exit(1);
}

int main(int argc, char **argv) {
        const char *arch = "amd64", *variant_s = "minbase";
        bool flags = false;
        struct deb_index *idx[64];
        char *texts[64];
        size_t n = 0;
        char **targets = NULL;
        struct mkm_err err = {};
        int i, r;

        for (i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--arch") == 0 && i + 1 < argc)
                        arch = argv[++i];
                else if (strcmp(argv[i], "--variant") == 0 && i + 1 < argc)
                        variant_s = argv[++i];
                else if (strcmp(argv[i], "--flags") == 0)
                        flags = true;
                else if (strcmp(argv[i], "--") == 0) {
                        targets = argv + i + 1;   /* argv is NULL-terminated */
                        break;
                } else if (n < 64) {
                        size_t len;
                        texts[n] = read_file(argv[i], &len);
                        r = deb_index_parse(texts[n], len, argv[i], (uint32_t)n, &idx[n], &err);
                        if (r < 0) {
                                fprintf(stderr, "debresolve-dump: %s\n", err.msg);
                                return 1;
                        }
                        n++;
                } else {
                        fprintf(stderr, "debresolve-dump: too many indexes\n");
                        return 1;
                }
        }
        enum deb_variant v = deb_variant_from_string(variant_s);
        if (v == _DEB_VARIANT_INVALID) {
                fprintf(stderr, "debresolve-dump: unknown variant '%s'\n", variant_s);
                return 1;
        }

        struct deb_plan *plan = NULL;
        r = deb_resolve(NULL, idx, n, arch, v, targets, &plan, &err);
        if (r < 0) {
                fprintf(stderr, "debresolve-dump: %s (%s)\n", err.msg, mkm_strerror(r));
                return 1;
        }
        for (size_t k = 0; k < plan->n; k++) {
                const struct deb_plan_item *it = &plan->items[k];
                if (flags)
                        printf("%s %s %d %d\n", it->pkg->name, it->pkg->version, it->essential_set, it->explicit);
                else
                        printf("%s %s\n", it->pkg->name, it->pkg->version);
        }
        deb_plan_free(plan);
        for (size_t k = 0; k < n; k++) {
                deb_index_free(idx[k]);
                free(texts[k]);
        }
        return 0;
}
