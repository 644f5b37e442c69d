/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the control members of a .deb (builder/debian/control.c): the control
 * file (one deb822 paragraph; its Package/Version/Architecture become file names under
 * /var/lib/dpkg/info once they matched the index) and the conffiles list (its paths are renamed
 * in the tree). Whoever built the package wrote both. Nothing may crash, leak or read out of
 * bounds; a refusal names what it refused; an accepted conffiles list holds only absolute,
 * normalised paths.
 *
 * The bytes also go through the deb822 iterator as a dpkg status file would (many paragraphs,
 * folded Conffiles: values; mkmachine writes /var/lib/dpkg/status and reads none, so this is
 * the reader that would meet one), and each paragraph of it through the control-file parser.
 *
 * Build: make fuzz; run (seeds: a control file, a conffiles list, a status excerpt):
 *   build/fuzz/fuzz-deb-control -max_total_time=60 build/fuzz/corpus/deb-control tests/fuzz/corpus/deb-control */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "debian/control.h"
#include "debian/index.h"
#include "util/err.h"
#include "util/strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_control(const char *text, size_t len) {
        struct deb_control_info info = {};
        struct mkm_err err = {};
        if (deb_control_info_parse(text, len, "fuzz", &info, &err) < 0) {
                if (err.code >= 0 || !err.msg[0])
                        abort();
                return;
        }
        /* every value is a copy of a field inside the text */
        const char *v[] = { info.name, info.version, info.arch };
        for (size_t i = 0; i < 3; i++)
                if (v[i] && !memmem(text, len, v[i], strlen(v[i])))
                        abort();
        deb_control_info_done(&info);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *text = (const char *)data;
        check_control(text, size);

        char *s = strndup(text, size);
        if (!s)
                abort();
        char **cf = NULL;
        struct mkm_err err = {};
        if (deb_conffiles_parse(s, "fuzz", &cf, &err) == 0) {
                for (char **p = cf; p && *p; p++) {
                        size_t l = strlen(*p);
                        if ((*p)[0] != '/' || l < 2 || (*p)[l - 1] == '/' || strstr(*p, "//") || strstr(*p, "/./") ||
                            strstr(*p, "/../") || strpbrk(*p, " \t\n") ||
                            (l >= 3 && strcmp(*p + l - 3, "/..") == 0) || strcmp(*p + l - 2, "/.") == 0)
                                abort();
                }
                strv_free(cf);
        } else if (strncmp(err.msg, "fuzz: conffiles: refusing '", 27) != 0)
                abort();
        free(s);

        /* as a status file: paragraphs, each also as a control file of its own */
        struct deb822_field f[256];
        struct deb822_iter it;
        size_t n, start = 0;
        int r;
        deb822_iter_init(&it, text, size, "fuzz");
        while ((r = deb822_iter_next(&it, f, 256, &n, &err)) > 0) {
                check_control(text + start, it.pos - start);
                const struct deb822_field *c = deb822_find(f, n, "Conffiles");
                if (c) {
                        char *v = strndup(c->value, c->value_len);
                        if (!v)
                                abort();
                        if (deb_conffiles_parse(v, "fuzz", &cf, &err) == 0)
                                strv_free(cf);
                        free(v);
                }
                start = it.pos;
        }
        return 0;
}
