/* SPDX-License-Identifier: MIT */
/* A minimal, native OpenPGP (RFC 4880) v4 signature checker: the fast path of verify.c.
 *
 * Why: gpg costs a process per signature (~10 ms of CPU plus a pipe copy of the whole package),
 * which is most of a 150-package build's CPU time on two cores. This module checks the common
 * case in-process with libcrypto: a single binary v4 signature of type 0x00 (binary document),
 * SHA-224/256/384/512, by an RSA (>= 2048 bits) or Ed25519 (EdDSA, algorithm 22) key.
 *
 * What it does NOT decide: whether a key may be trusted. verify.c uses this only for keys gpg
 * itself already accepted earlier in the same process (validity, revocation, expiry, usage,
 * subkey binding and cross-certification are gpg's verdict), and sends everything else here does
 * not cover (armor, several signatures, other algorithms, a signature expiration time, critical
 * subpackets it does not know, any failure) to gpg, which then also words the error. So a
 * mistake here can only make a build slower, never accept what gpg would refuse, as long as
 * pgp_verify() accepts only mathematically valid signatures; its tests compare it with gpg.
 *
 * All input is untrusted: lengths are checked against the buffer before every read. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGP_FPR_HEX 41          /* v4: 40 hex digits + NUL */
#define PGP_MAX_MPI_BYTES 2048  /* 16384-bit RSA */

enum pgp_pk_algo {
        PGP_PK_RSA = 1,
        PGP_PK_EDDSA = 22,      /* the legacy EdDSA of RFC 4880bis / gpg 2.2, curve Ed25519 only */
};

/* A parsed signature packet (the fields the fast path needs). */
struct pgp_sig {
        uint8_t type;                   /* 0x00 binary document */
        uint8_t pk_algo;                /* enum pgp_pk_algo */
        uint8_t hash_algo;              /* 8 SHA256, 9 SHA384, 10 SHA512, 11 SHA224 */
        int64_t created;                /* hashed subpacket 2, -1 if absent */
        char issuer_fpr[PGP_FPR_HEX];   /* subpacket 33 (v4), upper-case hex; "" if absent */
        char issuer_keyid[17];          /* subpacket 16, upper-case hex; "" if absent */
        bool has_expiry;                /* subpacket 3 (signature expiration time) */
        bool unknown_critical;          /* a critical subpacket other than 2, 16, 33 */
        bool ambiguous;                 /* 2, 16 or 33 twice, or key ID and fingerprint disagree
                                         * (gpg reads the first; the fast path leaves such to gpg) */
        uint8_t left16[2];              /* the digest's first two bytes, as stored */
        const uint8_t *hashed;          /* version .. end of hashed subpackets (into the input) */
        size_t hashed_len;
        uint8_t *mpi1, *mpi2;           /* RSA: s, NULL; EdDSA: r, s (owned, left-padded to 32) */
        size_t mpi1_len, mpi2_len;
};

/* A public key or subkey from a transferable key (tag 6 or 14, v4). */
struct pgp_key {
        char fpr[PGP_FPR_HEX];          /* v4 fingerprint, upper-case hex */
        uint8_t pk_algo;
        int64_t created;
        void *pkey;                     /* EVP_PKEY *, NULL for algorithms not supported here */
};

/* Parse exactly one v4 signature packet from a binary (not armored) signature of len bytes.
 * -ENOTSUP for anything valid but outside the fast path (v3, other packet types or algorithms,
 * trailing packets), -EBADMSG for malformed input. sig borrows from data (hashed) and must be
 * released with pgp_sig_done(). */
int pgp_sig_parse(const void *data, size_t len, struct pgp_sig *ret);
void pgp_sig_done(struct pgp_sig *sig);

/* Parse every v4 public key and subkey packet from binary transferable keys (gpg --export);
 * other packets are skipped. *ret is an array of *ret_n keys; free with pgp_keys_free().
 * -EBADMSG for malformed packet framing. */
int pgp_keys_parse(const void *data, size_t len, struct pgp_key **ret, size_t *ret_n);
void pgp_keys_free(struct pgp_key *keys, size_t n);
void pgp_key_done(struct pgp_key *key);        /* frees key->pkey */

/* Streaming digest of the signed data with the signature's hash algorithm. */
struct pgp_hash;
int pgp_hash_new(const struct pgp_sig *sig, struct pgp_hash **ret);
int pgp_hash_update(struct pgp_hash *h, const void *data, size_t len);
struct pgp_hash *pgp_hash_free(struct pgp_hash *h);
static inline void pgp_hash_freep(struct pgp_hash **h) { (void)pgp_hash_free(*h); }

/* Finish h (the data) with the signature's trailer and check the signature with key: the key's
 * algorithm must match, the signature may not predate the key, and the digest's first two bytes
 * and the RSA/Ed25519 signature must be right. 0 when valid, -EBADMSG when not, -ENOTSUP when
 * the key cannot be used here. h cannot be reused. */
int pgp_verify(const struct pgp_key *key, const struct pgp_sig *sig, struct pgp_hash *h);
