/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the manifest parser (verify reads the manifest from the host's state):
 * bytes -> manifest_parse, and manifest_strip_host_xattrs (drift and export pass an older
 * manifest through it first). Nothing may crash, leak or read out of bounds; an accepted manifest
 * must be consistent: "." first, paths strictly sorted, each entry has what its type needs.
 * Stripping keeps every line, never grows the text, is done in one pass (a second one leaves
 * nothing out), and leaves an accepted manifest accepted, with the same paths.
 *
 * Build and run (from the repository top):
 *   make fuzz; mkdir -p build/fuzz/corpus/manifest
 *   build/fuzz/fuzz-manifest -max_total_time=60 build/fuzz/corpus/manifest tests/fuzz/corpus/manifest
 * (new inputs go to the first directory, so it must not be the seeds: make fuzz-smoke does the same) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = strndup((const char *)data, size);
        if (!text)
                return 0;
        char *stripped = NULL, *again = NULL;
        int dropped = manifest_strip_host_xattrs(text, &stripped);
        if (dropped < 0) {
                free(text);
                return 0;
        }
        if (strlen(stripped) > strlen(text) || (dropped == 0) != (strcmp(stripped, text) == 0))
                abort();
        size_t nl_text = 0, nl_stripped = 0;
        for (const char *c = text; *c; c++)
                nl_text += *c == '\n';
        for (const char *c = stripped; *c; c++)
                nl_stripped += *c == '\n';
        if (nl_text != nl_stripped)
                abort();
        if (manifest_strip_host_xattrs(stripped, &again) != 0 || strcmp(again, stripped) != 0)
                abort();
        free(again);
        struct mkm_err err = {};
        struct manifest_entry *e = NULL;
        size_t n = 0;
        if (manifest_parse(text, &e, &n, &err) == 0) {
                struct manifest_entry *se = NULL;
                size_t sn = 0;
                struct mkm_err serr = {};
                if (manifest_parse(stripped, &se, &sn, &serr) != 0 || sn != n)
                        abort();
                for (size_t i = 0; i < n; i++)
                        if (strcmp(se[i].path, e[i].path) != 0)
                                abort();
                manifest_entries_free(se, sn);
                if (n == 0 || strcmp(e[0].path, ".") != 0)
                        abort();
                for (size_t i = 0; i < n; i++) {
                        if (i > 0 && strcmp(e[i - 1].path, e[i].path) >= 0)
                                abort();
                        if (!manifest_type_to_string(e[i].type) || e[i].mode > 07777 || e[i].line == 0)
                                abort();
                        if ((e[i].type == MANIFEST_FILE) != (strlen(e[i].sha256) == 64))
                                abort();
                        if ((e[i].type == MANIFEST_LINK) != (e[i].link != NULL))
                                abort();
                        if (e[i].xattrs && e[i].type != MANIFEST_FILE && e[i].type != MANIFEST_DIR)
                                abort();
                }
                manifest_entries_free(e, n);
        } else if (!err.msg[0])
                abort();        /* a refusal always says why */
        free(stripped);
        free(text);
        return 0;
}
