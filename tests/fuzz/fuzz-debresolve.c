/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the Debian resolver (builder/debian/resolve.c) on whatever a mirror's
 * Packages index might say: cycles, self-dependencies, providers of everything, conflicts with
 * oneself, versions and qualifiers of every kind. The bytes are parsed as a Packages index
 * (deb_index_parse does its own refusing); whatever parses is resolved for several variants and
 * for targets taken from the index: each must give a plan or an error with a message, never a
 * crash or a leak, and a plan never lists a name twice nor puts the essential set after the
 * rest. (Install order and choices are the unit tests' and the oracle test's job.)
 *
 * Build and run (from the repo top; seeds in tests/fuzz/corpus/debresolve/):
 *   make fuzz; mkdir -p build/fuzz/corpus/debresolve
 *   build/fuzz/fuzz-debresolve -max_total_time=60 build/fuzz/corpus/debresolve tests/fuzz/corpus/debresolve */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "debian/index.h"
#include "debian/resolve.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_plan(const struct deb_plan *plan) {
        for (size_t i = 0; i < plan->n; i++) {
                if (!plan->items[i].pkg || !plan->items[i].pkg->name)
                        abort();
                for (size_t j = 0; j < i; j++)
                        if (strcmp(plan->items[i].pkg->name, plan->items[j].pkg->name) == 0)
                                abort();
                /* the essential set first */
                if (i > 0 && plan->items[i].essential_set && !plan->items[i - 1].essential_set)
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct deb_index *x = NULL;
        struct mkm_err err = { 0 };

        if (size > 64 * 1024)
                return 0;
        if (deb_index_parse((const char *)data, size, "fuzz", 0, &x, &err) < 0)
                return 0;

        static const enum deb_variant variants[] = { DEB_VARIANT_CUSTOM, DEB_VARIANT_MINBASE, DEB_VARIANT_STANDARD };
        for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
                /* the first two package names as targets, and one virtual-looking name */
                char *targets[4] = { NULL };
                size_t n = 0;
                for (size_t i = 0; i < x->n && n < 2; i++)
                        targets[n++] = (char *)x->pkgs[i].name;
                if (x->n > 0 && x->pkgs[0].provides.n > 0)
                        targets[n++] = (char *)x->pkgs[0].provides.groups[0].atoms[0].name;
                struct deb_plan *plan = NULL;
                memset(&err, 0, sizeof err);
                int r = deb_resolve(NULL, &x, 1, "amd64", variants[v], targets, &plan, &err);
                if (r < 0) {
                        if (!err.msg[0] || plan)
                                abort();
                        continue;
                }
                check_plan(plan);
                deb_plan_free(plan);
        }
        deb_index_free(x);
        return 0;
}
