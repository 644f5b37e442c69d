/* SPDX-License-Identifier: MIT */
/* libFuzzer target for pkginfo_parse (.PKGINFO comes from the package, before we trust it).
 * Build: make fuzz; run: build/fuzz/fuzz-pkginfo CORPUS_DIR */
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
