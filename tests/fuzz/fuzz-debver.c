/* SPDX-License-Identifier: MIT */
/* libFuzzer target for builder/debian/version (versions come from untrusted Packages indexes).
 * The input is up to three versions separated by NUL bytes. Nothing may crash or read out of
 * bounds (each version is copied into a buffer of its exact size), and debver_cmp must be an
 * order: reflexive, antisymmetric, transitive over the three, never outside -1..1; debver_check
 * must give a reason for every refusal, and a valid version must equal itself with "0:" in front
 * and, without a revision, with "-0" behind; debver_satisfies must follow debver_cmp.
 *
 * Build and run (from the repository top):
 *   make fuzz; mkdir -p build/fuzz/corpus/debver
 *   build/fuzz/fuzz-debver -max_total_time=60 build/fuzz/corpus/debver tests/fuzz/corpus/debver */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "debian/version.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *piece(const uint8_t **p, const uint8_t *end) {
        const uint8_t *nul = memchr(*p, 0, (size_t)(end - *p));
        size_t n = (size_t)((nul ? nul : end) - *p);
        char *s = malloc(n + 1);
        if (!s)
                abort();
        memcpy(s, *p, n);
        s[n] = 0;
        *p = nul ? nul + 1 : end;
        return s;
}

static void check_valid(const char *v) {
        const char *why = NULL;
        int r = debver_check(v, &why);
        if (r < 0) {
                if (r != -EINVAL || !why || !*why)
                        abort();
                return;
        }
        if (r != 0)
                abort();

        /* An explicit zero epoch changes nothing, nor does a "-0" revision where there is none
         * (leading and trailing blanks would end up inside: leave those out). */
        if (strpbrk(v, " \t"))
                return;
        size_t n = strlen(v);
        char *w = malloc(n + 3);
        if (!w)
                abort();
        if (!strchr(v, ':')) {
                memcpy(w, "0:", 2);
                memcpy(w + 2, v, n + 1);
                if (debver_cmp(w, v) != 0 || debver_check(w, NULL) != 0)
                        abort();
        }
        if (!strchr(v, '-')) {
                memcpy(w, v, n);
                memcpy(w + n, "-0", 3);
                if (debver_cmp(w, v) != 0)
                        abort();
        }
        free(w);
}

static int sgn(int r) { return (r > 0) - (r < 0); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *p = data, *end = data + size;
        char *v[3];
        for (int i = 0; i < 3; i++)
                v[i] = piece(&p, end);

        int c[3][3];
        for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) {
                        c[i][j] = debver_cmp(v[i], v[j]);
                        if (c[i][j] < -1 || c[i][j] > 1)
                                abort();
                }
        for (int i = 0; i < 3; i++) {
                if (c[i][i] != 0)
                        abort();
                for (int j = 0; j < 3; j++)
                        if (c[i][j] != -c[j][i])
                                abort();
        }
        /* Transitivity: x <= y <= z gives x <= z, strictly if either step is strict. */
        for (int x = 0; x < 3; x++)
                for (int y = 0; y < 3; y++)
                        for (int z = 0; z < 3; z++)
                                if (c[x][y] <= 0 && c[y][z] <= 0 && c[x][z] != sgn(c[x][y] + c[y][z]))
                                        abort();

        static const struct {
                enum deb_relop op;
                bool lt, eq, gt;
        } ops[] = {
                { DEB_REL_ANY, true, true, true },   { DEB_REL_LT, true, false, false },
                { DEB_REL_LE, true, true, false },   { DEB_REL_EQ, false, true, false },
                { DEB_REL_GE, false, true, true },   { DEB_REL_GT, false, false, true },
        };
        for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
                bool want = c[0][1] < 0 ? ops[k].lt : c[0][1] == 0 ? ops[k].eq : ops[k].gt;
                if (debver_satisfies(v[0], ops[k].op, v[1]) != want)
                        abort();
        }

        for (int i = 0; i < 3; i++) {
                check_valid(v[i]);
                free(v[i]);
        }
        return 0;
}
