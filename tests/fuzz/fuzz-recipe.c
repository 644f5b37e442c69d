/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the recipe parser: bytes -> ini_parse -> recipe_load_buffer ->
 * recipe_format. Nothing may crash, leak or read out of bounds, and the canonical text of any
 * accepted recipe must parse again to the same text.
 *
 * Build and run (from the repository top):
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Ibuilder \
 *         -o build/fuzz-recipe tests/fuzz/fuzz-recipe.c builder/ini.c builder/recipe.c \
 *         builder/util/err.c builder/util/strv.c builder/util/fs.c builder/util/log.c
 *   mkdir -p build/fuzz-corpus && cp recipes/[a-z]*.recipe build/fuzz-corpus/
 *   build/fuzz-recipe -max_len=4096 -max_total_time=60 build/fuzz-corpus
 * (The seed corpus is recipes/ and tests/unit/recipe-fixtures/ if present.) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ini.h"
#include "recipe.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct mkm_err err = {};
        struct ini_entry *e = NULL;
        size_t n = 0;

        /* The INI layer alone, with the buffer exactly as long as the input (no terminator). */
        if (ini_parse((const char *)data, size, "fuzz.recipe", &e, &n, &err) == 0)
                ini_entries_free(e, n);

        struct recipe *r = NULL;
        if (recipe_load_buffer((const char *)data, size, "/fuzz/fuzz.recipe", &r, &err) < 0)
                return 0;
        char *text = NULL;
        if (recipe_format(r, &text) == 0) {
                struct recipe *again = NULL;
                if (recipe_load_buffer(text, strlen(text), "/fuzz/fuzz.recipe", &again, &err) < 0)
                        abort();        /* the canonical form must always be accepted */
                char *text2 = NULL;
                if (recipe_format(again, &text2) < 0 || strcmp(text, text2) != 0)
                        abort();        /* and be a fixed point */
                free(text2);
                recipe_free(again);
                free(text);
        }
        recipe_free(r);
        return 0;
}
