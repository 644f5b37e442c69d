/* SPDX-License-Identifier: MIT */
/* libFuzzer target for Packages indexes and relationship fields (builder/debian/packages.c,
 * rel.c, arena.c): a co-tenant's recipe may name any repository, so any bytes must give an
 * index or an error naming "fuzz:LINE", never a crash, a leak, unbounded work, or a package the
 * parser promised to refuse (a name outside Debian's characters, a Filename with "..", an empty
 * alternative group). The bytes also go through deb_rel_parse() as one Depends value, both
 * malloc'ed (no index) and into the index's arena. Small caps keep each run fast; the code
 * paths are those of the defaults.
 *
 * Build: make fuzz; run (seeds in tests/fuzz/corpus/deb-packages/, new inputs go to build/):
 *   mkdir -p build/fuzz/corpus/deb-packages
 *   build/fuzz/fuzz-deb-packages -max_total_time=60 build/fuzz/corpus/deb-packages tests/fuzz/corpus/deb-packages */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "debian/arena.h"
#include "debian/index.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rel(const struct deb_rel *rel) {
        if ((rel->n == 0) != (rel->groups == NULL))
                abort();
        for (uint32_t g = 0; g < rel->n; g++) {
                if (rel->groups[g].n == 0 || !rel->groups[g].atoms)
                        abort();
                for (uint32_t a = 0; a < rel->groups[g].n; a++) {
                        const struct deb_atom *x = &rel->groups[g].atoms[a];
                        if (!deb_name_valid(x->name, strlen(x->name)) || x->op > DEB_REL_GT ||
                            (x->op == DEB_REL_ANY) != (x->version == NULL) ||
                            (x->version && deb_version_invalid(x->version, strlen(x->version))) ||
                            (x->arch && !deb_arch_valid(x->arch, strlen(x->arch))))
                                abort();
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *text = (const char *)data;
        struct deb_index *x = NULL;
        struct mkm_err err = { 0 };
        struct deb_rel rel;

        if (deb_rel_parse(NULL, text, size, &rel, &err) >= 0) {
                check_rel(&rel);
                deb_rel_done(&rel);
        }

        if (deb_index_parse_capped(text, size, "fuzz", 5, 1u << 20, 1000, &x, &err) < 0) {
                if (strncmp(err.msg, "fuzz:", 5) != 0)
                        abort();
                return 0;
        }
        for (size_t i = 0; i < x->n; i++) {
                const struct deb_pkg *p = &x->pkgs[i];
                if (!deb_name_valid(p->name, strlen(p->name)) || deb_version_invalid(p->version, strlen(p->version)) ||
                    !deb_arch_valid(p->arch, strlen(p->arch)) || deb_path_invalid(p->filename, strlen(p->filename)) ||
                    strlen(p->sha256) != 64 || p->index != 5 || p->priority > DEB_PRIO_UNKNOWN ||
                    p->multi_arch > DEB_MA_ALLOWED || (p->source && !deb_name_valid(p->source, strlen(p->source))))
                        abort();
                check_rel(&p->pre_depends);
                check_rel(&p->depends);
                check_rel(&p->recommends);
                check_rel(&p->provides);
                check_rel(&p->conflicts);
                check_rel(&p->breaks);
        }
        /* into the arena too (strings interned with the index's) */
        if (deb_rel_parse(x, text, size < 4096 ? size : 4096, &rel, &err) >= 0)
                check_rel(&rel);
        deb_index_free(x);
        return 0;
}
