/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the daemon.json merge (hooks_json_set_string): /etc/docker/daemon.json is
 * written by a package, so its bytes are untrusted. Nothing may crash, leak or read out of bounds;
 * whatever is accepted must come out as JSON that is accepted again, and merging the same member
 * into the output must give the output back (the merge is canonical and idempotent).
 *
 * Build: make fuzz; run (seeds in tests/fuzz/corpus/daemon-json/):
 *   mkdir -p build/fuzz/corpus/daemon-json
 *   build/fuzz/fuzz-daemon-json -max_total_time=60 build/fuzz/corpus/daemon-json tests/fuzz/corpus/daemon-json
 * (new inputs go to the first directory, so it must not be the seeds: make fuzz-smoke does the same) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hooks.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct mkm_err err = {};
        char *out = NULL;
        /* The buffer exactly as long as the input, no terminator: hooks.c must not read past it. */
        if (hooks_json_set_string((const char *)data, size, "storage-driver", "overlay2", &out, &err) < 0) {
                if (err.code == 0 || !err.msg[0])
                        abort();        /* a refusal always says why */
                return 0;
        }
        char *again = NULL;
        if (hooks_json_set_string(out, strlen(out), "storage-driver", "overlay2", &again, &err) < 0 ||
            strcmp(out, again) != 0)
                abort();
        free(again);
        free(out);
        return 0;
}
