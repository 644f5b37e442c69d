/* SPDX-License-Identifier: MIT */
/* libFuzzer target for Release files and the deb822 reader under them (builder/debian/
 * release.c, deb822.c): a Release is parsed only after its signature checked, but the key may be
 * a third party's. Any bytes must give a Release or an error naming "fuzz:LINE", never a crash,
 * a leak or an entry the parser promised to refuse (a bad path, a path twice, a digest that is
 * not 64 lowercase hex digits). The same bytes also go through the deb822 iterator with and
 * without comments allowed, and through deb_parse_date.
 *
 * Build: make fuzz; run (seeds in tests/fuzz/corpus/deb-release/, new inputs go to build/):
 *   mkdir -p build/fuzz/corpus/deb-release
 *   build/fuzz/fuzz-deb-release -max_total_time=60 build/fuzz/corpus/deb-release tests/fuzz/corpus/deb-release */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "debian/arena.h"
#include "debian/index.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_deb822(const char *text, size_t size, bool comments) {
        struct deb822_field f[16];
        struct deb822_iter it;
        struct mkm_err err = { 0 };
        unsigned last_line = 0;
        size_t n;
        int r;

        deb822_iter_init(&it, text, size, "fuzz");
        it.allow_comments = comments;
        while ((r = deb822_iter_next(&it, f, 16, &n, &err)) > 0) {
                if (n == 0 || n > 16)
                        abort();
                for (size_t i = 0; i < n; i++) {
                        /* views stay inside the text; lines go forward */
                        if (f[i].name < text || f[i].name + f[i].name_len > text + size || f[i].value < text ||
                            f[i].value + f[i].value_len > text + size || f[i].line <= last_line || f[i].name_len == 0)
                                abort();
                        if (memchr(f[i].value, 0, f[i].value_len) || memchr(f[i].value, '\r', f[i].value_len))
                                abort();
                        last_line = f[i].line;
                }
                /* A name no field can have (a field name ends at its colon) is never found; every
                 * field's own name is, the first field of that name (names compare without case). */
                if (deb822_find(f, n, "no:such field") != NULL)
                        abort();
                for (size_t i = 0; i < n; i++) {
                        char name[256];
                        if (f[i].name_len >= sizeof name)
                                continue;
                        memcpy(name, f[i].name, f[i].name_len);
                        name[f[i].name_len] = 0;
                        const struct deb822_field *g = deb822_find(f, n, name);
                        if (!g || g > &f[i] || g->name_len != f[i].name_len ||
                            strncasecmp(g->name, name, g->name_len) != 0)
                                abort();
                }
        }
        if (r < 0 && strncmp(err.msg, "fuzz:", 5) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *text = (const char *)data;
        struct deb_release *r = NULL;
        struct mkm_err err = { 0 };
        int64_t t;

        check_deb822(text, size, false);
        check_deb822(text, size, true);
        (void)deb_parse_date(text, size < 64 ? size : 64, &t);

        if (deb_release_parse(text, size, "fuzz", &r, &err) < 0) {
                if (strncmp(err.msg, "fuzz:", 5) != 0)
                        abort();
                return 0;
        }
        if (!r->architectures || !r->components)
                abort();
        for (size_t i = 0; i < r->n_files; i++) {
                const struct deb_release_file *f = &r->files[i];
                if (deb_path_invalid(f->path, strlen(f->path)) || deb_release_find(r, f->path) != f ||
                    strlen(f->sha256) != 64 || strspn(f->sha256, "0123456789abcdef") != 64)
                        abort();
        }
        deb_release_free(r);
        return 0;
}
