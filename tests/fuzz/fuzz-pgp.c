/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the native OpenPGP parsers (signatures come from mirrors; keys from a
 * recipe's keyring via gpg). Build: make fuzz; run: build/fuzz/fuzz-pgp CORPUS_DIR */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "pgp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct pgp_sig sig;
        struct pgp_key *keys = NULL;
        size_t n = 0;
        bool have_sig = pgp_sig_parse(data, size, &sig) >= 0;
        if (pgp_keys_parse(data, size, &keys, &n) >= 0) {
                struct pgp_hash *h = NULL;
                /* Any parsed key against any parsed signature: checks must never crash. */
                for (size_t i = 0; have_sig && i < n; i++)
                        if (pgp_hash_new(&sig, &h) >= 0) {
                                (void)pgp_hash_update(h, data, size);
                                (void)pgp_verify(&keys[i], &sig, h);
                                h = pgp_hash_free(h);
                        }
                pgp_keys_free(keys, n);
        }
        if (have_sig)
                pgp_sig_done(&sig);
        return 0;
}
