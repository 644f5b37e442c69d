/* SPDX-License-Identifier: MIT */
/* libFuzzer target for pkginfo_parse (.PKGINFO comes from the package, before we trust it).
 * Build: make fuzz; run (seeds in tests/fuzz/corpus/pkginfo/):
 *   mkdir -p build/fuzz/corpus/pkginfo
 *   build/fuzz/fuzz-pkginfo -max_total_time=60 build/fuzz/corpus/pkginfo tests/fuzz/corpus/pkginfo */
#include <stddef.h>
#include <stdint.h>

#include "arch/pkginfo.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct pkginfo p = {};
        struct mkm_err err = {};
        if (pkginfo_parse((const char *)data, size, "fuzz", &p, &err) >= 0)
                pkginfo_done(&p);
        return 0;
}
