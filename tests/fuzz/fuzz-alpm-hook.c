/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the libalpm hook parser: bytes -> alpm_hook_parse, then the matcher on a
 * small fixed transaction, and wordsplit on the raw bytes. Nothing may crash, leak or read out
 * of bounds; an accepted hook must be consistent (triggers have targets, a type and an
 * operation; a hook with triggers has a command and a When=).
 *
 * Build and run (from the repository top):
 *   make fuzz; mkdir -p build/fuzz/corpus/alpm-hook
 *   build/fuzz/fuzz-alpm-hook -max_total_time=60 build/fuzz/corpus/alpm-hook tests/fuzz/corpus/alpm-hook
 * (new inputs go to the first directory, so it must not be the seeds: make fuzz-smoke does the same) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/alpm-hook.h"
#include "util/err.h"
#include "util/strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct mkm_err err = {};
        struct alpm_hook *h = NULL;

        if (alpm_hook_parse(NULL, (const char *)data, size, "fuzz.hook", &h, &err) == 0) {
                if (h->n_triggers > 0 && (!h->cmd || !h->cmd[0] || h->when == 0))
                        abort();
                for (size_t i = 0; i < h->n_triggers; i++)
                        if (!h->triggers[i].targets || h->triggers[i].type == 0 || h->triggers[i].ops == 0)
                                abort();
                char *files[] = { "usr/", "usr/share/", "usr/share/x/", "usr/share/x/a", NULL };
                struct alpm_hook_pkg pkgs[] = { { .name = "x", .version = "1-1", .files = files } };
                char **targets = NULL;
                if (alpm_hook_match(h, pkgs, 1, &targets) < 0)
                        abort();
                for (size_t i = 1; targets && targets[i]; i++)
                        if (strcmp(targets[i - 1], targets[i]) >= 0)
                                abort();        /* sorted and de-duplicated */
                strv_free(targets);
                alpm_hook_free(h);
        }

        char *s = strndup((const char *)data, size);
        if (s) {
                char **w = NULL;
                if (alpm_hook_wordsplit(s, &w) == 0)
                        strv_free(w);
                free(s);
        }
        return 0;
}
