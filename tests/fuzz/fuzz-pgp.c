/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the native OpenPGP code (builder/pgp.c): signatures come from mirrors,
 * keys from a recipe's keyring. One input carries both, so that mutations reach pgp_verify() with
 * a parsed key and a parsed signature:
 *   [2 bytes big-endian: K][K bytes: binary keyring][2 bytes: S][S bytes: one binary signature][data]
 * (a length running past the end takes what is there). Every key is tried against the signature
 * over the data. Nothing may crash, leak or read out of bounds; each function returns only the
 * errors pgp.h documents; and when a signature verifies, it must stop verifying when one byte is
 * added to the data or any byte of its hashed area is flipped (the signature binds both).
 *
 * Seeds (tests/fuzz/corpus/pgp/) are real gpg output from tests/tools/mkkeys.sh: Ed25519 and RSA
 * keys, a signing subkey, SHA-256 and SHA-512, an expiring signature; and ed25519-sig-expirations,
 * made with tests/unit/pgp-forge.c: signature expirations on a self-signature, a subkey binding
 * and another key's certification (pgp_keyblock_sig_expiry's path; gpg never makes the first two).
 * Every key also goes through pgp_keyblock_sig_expiry (each expiration later than the one
 * before) and pgp_key_weakness.
 * Build: make fuzz; run:
 *   build/fuzz/fuzz-pgp -max_total_time=60 build/fuzz/corpus/pgp tests/fuzz/corpus/pgp */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *part(const uint8_t **p, const uint8_t *end, size_t *ret_len) {
        size_t n = 0;
        if (end - *p >= 2) {
                n = (size_t)(*p)[0] << 8 | (*p)[1];
                *p += 2;
        } else
                *p = end;
        if (n > (size_t)(end - *p))
                n = (size_t)(end - *p);
        const uint8_t *r = *p;
        *p += n;
        *ret_len = n;
        return r;
}

/* Verify sig (parsed from its own bytes) over data with key: 0, -EBADMSG or -ENOTSUP only. */
static int verify(const struct pgp_key *key, const struct pgp_sig *sig, const uint8_t *data, size_t len,
                  const uint8_t *extra, size_t extra_len) {
        struct pgp_hash *h = NULL;
        int r = pgp_hash_new(sig, &h);
        if (r < 0) {
                if (r != -ENOTSUP)
                        abort();
                return r;
        }
        if (pgp_hash_update(h, data, len) < 0 || (extra_len && pgp_hash_update(h, extra, extra_len) < 0))
                abort();
        r = pgp_verify(key, sig, h);
        pgp_hash_free(h);
        if (r != 0 && r != -EBADMSG && r != -ENOTSUP)
                abort();
        return r;
}

/* A valid signature: it must be bound to every byte of the data and of its hashed area. */
static void check_binding(const struct pgp_key *key, const struct pgp_sig *sig, const uint8_t *sigbytes,
                          size_t siglen, const uint8_t *data, size_t len) {
        if (sig->type != 0x00 || sig->created < key->created || sig->pk_algo != key->pk_algo)
                abort();
        if (verify(key, sig, data, len, (const uint8_t *)"x", 1) == 0) {
                fprintf(stderr, "fuzz-pgp: still valid with a byte added to the data\n");
                abort();
        }
        size_t off = (size_t)(sig->hashed - sigbytes);
        if (off > siglen || sig->hashed_len > siglen - off)
                abort();        /* the view lies inside the signature */
        uint8_t *copy = malloc(siglen);
        if (!copy)
                abort();
        memcpy(copy, sigbytes, siglen);
        for (size_t i = 0; i < sig->hashed_len; i++) {
                struct pgp_sig s2;
                copy[off + i] ^= 0x20;
                int r = pgp_sig_parse(copy, siglen, &s2);
                if (r == 0) {
                        if (verify(key, &s2, data, len, NULL, 0) == 0) {
                                fprintf(stderr, "fuzz-pgp: still valid with byte %zu of the hashed area flipped\n", i);
                                abort();
                        }
                        pgp_sig_done(&s2);
                } else if (r != -EBADMSG && r != -ENOTSUP)
                        abort();
                copy[off + i] ^= 0x20;
        }
        free(copy);
}

/* The signature expirations key relies on: found (pgp_keys_parse found the key in the same
 * packets; a subkey may have no primary key before it) or a malformed signature; each later than
 * the one before, until none is left. */
static void check_expiry(const uint8_t *kr, size_t klen, const struct pgp_key *key) {
        const char *fpr = key->fpr;
        int64_t after = 0;
        for (int i = 0; i < 64; i++) {
                int64_t t = -1;
                int r = pgp_keyblock_sig_expiry(kr, klen, fpr, after, &t);
                if (i == 0 && (r == -EBADMSG || (r == -ENOENT && !key->primary)))
                        return;
                if (r != 0 || t < 0 || (t != 0 && t <= after))
                        abort();
                if (t == 0)
                        return;
                after = t;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *p = data, *end = data + size;
        size_t klen, slen;
        const uint8_t *kr = part(&p, end, &klen);
        const uint8_t *sb = part(&p, end, &slen);
        const uint8_t *payload = p;
        size_t plen = (size_t)(end - p);

        struct pgp_sig sig;
        int rs = pgp_sig_parse(sb, slen, &sig);
        if (rs != 0 && rs != -EBADMSG && rs != -ENOTSUP)
                abort();
        struct pgp_key *keys = NULL;
        size_t n = 0;
        int rk = pgp_keys_parse(kr, klen, &keys, &n);
        if (rk != 0 && rk != -EBADMSG)
                abort();
        for (size_t i = 0; rk == 0 && i < n; i++) {
                if (strlen(keys[i].fpr) != 40 || strspn(keys[i].fpr, "0123456789ABCDEF") != 40)
                        abort();
                if (rs == 0 && verify(&keys[i], &sig, payload, plen, NULL, 0) == 0)
                        check_binding(&keys[i], &sig, sb, slen, payload, plen);
                check_expiry(kr, klen, &keys[i]);
                char why[160];
                const char *w = pgp_key_weakness(&keys[i], why, sizeof why);
                if (w && (w != why || strlen(why) == 0))
                        abort();
        }
        if (rk == 0)
                pgp_keys_free(keys, n);
        if (rs == 0)
                pgp_sig_done(&sig);
        return 0;
}
