/* SPDX-License-Identifier: MIT */
/* libFuzzer target for lock_parse (RECIPE.lock comes from whoever shared the recipe).
 * Build: make fuzz; run (seeds in tests/fuzz/corpus/lock/):
 *   mkdir -p build/fuzz/corpus/lock
 *   build/fuzz/fuzz-lock -max_total_time=60 build/fuzz/corpus/lock tests/fuzz/corpus/lock */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lock.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct lock *l = NULL;
        struct mkm_err err = {};
        if (lock_parse((const char *)data, size, "fuzz.lock", &l, &err) >= 0) {
                char *text = NULL;
                /* What parses must format and parse again to the same text. */
                if (lock_format(l, &text) >= 0) {
                        struct lock *l2 = NULL;
                        if (lock_parse(text, strlen(text), "fuzz.lock", &l2, &err) < 0)
                                abort();
                        char *text2 = NULL;
                        if (lock_format(l2, &text2) < 0 || strcmp(text, text2) != 0)
                                abort();
                        free(text2);
                        lock_free(l2);
                }
                free(text);
                lock_free(l);
        }
        return 0;
}
