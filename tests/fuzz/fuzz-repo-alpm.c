/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the Arch sync-db parser (builder/arch/repo-alpm.c): any bytes, as a mirror
 * might serve them, must give either a db or an error with a message, never a crash, a leak or
 * unbounded work. Small caps keep each run fast; the code paths are the same as the defaults.
 *
 * Build and run (from the repo top):
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Ibuilder \
 *         tests/fuzz/fuzz-repo-alpm.c builder/arch/repo-alpm.c builder/arch/vercmp.c builder/util/[a-z]*.c \
 *         $(pkg-config --cflags --libs libarchive libcrypto) -o build/fuzz-repo-alpm
 *   build/fuzz-repo-alpm -max_total_time=60 build/fuzz-corpus/
 * (seed the corpus with a few .db files, e.g. those tests/unit/test-repo-alpm.c writes.)
 * Without libFuzzer, -DFUZZ_MAIN builds a driver that runs each file given on the command line. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/repo-alpm.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const struct repo_alpm_limits limits = {
                .max_total = 8u << 20,
                .max_entries = 10000,
                .max_file = 256u << 10,
                .max_line = 16u << 10,
        };
        struct repo_alpm_db *db = NULL;
        struct mkm_err err = { 0 };
        int r = repo_alpm_parse_limits(NULL, "fuzz", data, size, &limits, &db, &err);
        if (r < 0) {
                /* every failure names the db */
                if (strncmp(err.msg, "fuzz.db: ", 9) != 0)
                        abort();
                return 0;
        }
        for (size_t i = 0; i < db->n; i++) {
                if (!db->pkgs[i].name || !db->pkgs[i].version || !db->pkgs[i].filename)
                        abort();
                if (repo_alpm_find(db, db->pkgs[i].name) != &db->pkgs[i])
                        abort();
        }
        repo_alpm_db_free(db);
        return 0;
}

#ifdef FUZZ_MAIN
int main(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                FILE *f = fopen(argv[i], "rb");
                if (!f)
                        return 1;
                static uint8_t buf[16u << 20];
                size_t n = fread(buf, 1, sizeof buf, f);
                fclose(f);
                LLVMFuzzerTestOneInput(buf, n);
        }
        return 0;
}
#endif
