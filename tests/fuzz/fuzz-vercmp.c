/* SPDX-License-Identifier: MIT */
/* libFuzzer target for pacman versions and dependency strings (builder/arch/vercmp.c): versions,
 * %DEPENDS% and %PROVIDES% come from a sync db a co-tenant may choose. The input is up to three
 * strings separated by NUL bytes, each copied into a buffer of its exact size. Nothing may crash
 * or read out of bounds; alpm_vercmp stays within -1..1, is reflexive and antisymmetric (pacman's
 * rpmvercmp is not transitive on odd inputs, so transitivity is not asserted), and
 * vercmp_satisfies follows it; a dependency that parses formats back to a string that parses to
 * the same dependency, and is satisfied by its own name at its own version when the operator
 * admits equality.
 *
 * Build: make fuzz; run: build/fuzz/fuzz-vercmp -max_total_time=60 build/fuzz/corpus/vercmp tests/fuzz/corpus/vercmp */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/vercmp.h"
#include "util/err.h"

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

static void check_dep(const char *s) {
        struct vercmp_dep d = { 0 };
        struct mkm_err err = { 0 };
        if (vercmp_dep_parse(s, &d, &err) < 0) {
                if (strncmp(err.msg, "dependency '", 12) != 0)
                        abort();
                return;
        }
        if (!d.name || (d.op == VERCMP_ANY) != (d.version == NULL) || d.op < 0 || d.op >= _VERCMP_OP_MAX ||
            !vercmp_name_is_valid(d.name) || (d.version && !vercmp_version_is_valid(d.version)))
                abort();
        char *t = vercmp_dep_to_string(&d);
        if (!t)
                abort();
        struct vercmp_dep e = { 0 };
        if (vercmp_dep_parse(t, &e, &err) < 0 || strcmp(d.name, e.name) != 0 || d.op != e.op ||
            (d.version && strcmp(d.version, e.version) != 0) || (!d.desc) != (!e.desc))
                abort();
        if (d.version && (d.op == VERCMP_EQ || d.op == VERCMP_LE || d.op == VERCMP_GE) &&
            !vercmp_dep_satisfied_by(&d, d.name, d.version, NULL))
                abort();
        vercmp_dep_done(&e);
        free(t);
        vercmp_dep_done(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *p = data, *end = data + size;
        char *v[3];
        for (int i = 0; i < 3; i++)
                v[i] = piece(&p, end);
        for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) {
                        int c = alpm_vercmp(v[i], v[j]);
                        if (c < -1 || c > 1 || (i == j && c != 0) || alpm_vercmp(v[j], v[i]) != -c)
                                abort();
                }
        static const struct {
                enum vercmp_op op;
                bool lt, eq, gt;
        } ops[] = {
                { VERCMP_ANY, true, true, true }, { VERCMP_EQ, false, true, false }, { VERCMP_LT, true, false, false },
                { VERCMP_LE, true, true, false }, { VERCMP_GT, false, false, true }, { VERCMP_GE, false, true, true },
        };
        int c01 = alpm_vercmp(v[0], v[1]);
        for (size_t k = 0; k < sizeof ops / sizeof *ops; k++)
                if (vercmp_satisfies(v[0], ops[k].op, v[1]) != (c01 < 0 ? ops[k].lt : c01 == 0 ? ops[k].eq : ops[k].gt))
                        abort();
        for (int i = 0; i < 3; i++) {
                (void)vercmp_pkg_version_is_valid(v[i]);
                check_dep(v[i]);
                free(v[i]);
        }
        return 0;
}
