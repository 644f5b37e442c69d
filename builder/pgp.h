/* SPDX-License-Identifier: MIT */
/* A minimal, native OpenPGP (RFC 4880) v4 signature checker: the fast path of verify.c.
 *
 * Why: gpg costs a process per signature (~10 ms of CPU plus a pipe copy of the whole package),
 * which is most of a 150-package build's CPU time on two cores. This module checks the common
 * case in-process with libcrypto: a single binary v4 signature of type 0x00 (binary document),
 * SHA-224/256/384/512, by an RSA (>= 2048 bits) or Ed25519 (EdDSA, algorithm 22) key.
 *
 * It also reads two facts about keys that gpg does not report: how weak a key's parameters are
 * (pgp_key_weakness: verify-keyring.c refuses a keyring that would trust a weak key) and when a
 * signature a key's validity rests on expires (pgp_keyblock_sig_expiry: verify.c stops using a
 * learned key in-process at that moment).
 *
 * What it does NOT decide: whether a key may be trusted. verify.c uses this only for keys gpg
 * itself already accepted earlier in the same process (validity, revocation, expiry, usage,
 * subkey binding and cross-certification are gpg's verdict), and sends everything else here does
 * not cover (armor, several signatures, other algorithms, a signature expiration time, critical
 * subpackets it does not know, any failure) to gpg, which then also words the error. So a
 * mistake here can only make a build slower, never accept what gpg would refuse, as long as
 * pgp_verify() accepts only mathematically valid signatures and pgp_keyblock_sig_expiry() reports
 * no expiration later than the keyblock's (it may report an earlier one: that only costs a gpg
 * run); their tests compare them with gpg.
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
        PGP_PK_RSA_E = 2,       /* RSA encrypt-only (deprecated) */
        PGP_PK_RSA_S = 3,       /* RSA sign-only (deprecated) */
        PGP_PK_ELGAMAL = 16,    /* encrypt-only */
        PGP_PK_DSA = 17,
        PGP_PK_ELGAMAL_SE = 20, /* sign and encrypt (deprecated) */
        PGP_PK_EDDSA = 22,      /* the legacy EdDSA of RFC 4880bis / gpg 2.2, curve Ed25519 only */
};

/* The weakest keys a keyring may trust (pgp_key_weakness): RSA, DSA and ElGamal under 2048
 * bits (NIST SP 800-131A disallows 1024-bit RSA and DSA signatures since 2014), and RSA with a
 * small public exponent (e = 3 made forgeries of sloppily checked PKCS#1 v1.5 signatures easy,
 * Bleichenbacher 2006; 65537 is what every tool generates). */
#define PGP_MIN_BITS 2048u
#define PGP_MIN_RSA_E 65537u

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
        bool primary;                   /* a primary key (tag 6), not a subkey (tag 14) */
        int64_t created;
        unsigned bits;                  /* RSA: the modulus's size in bits; DSA, ElGamal: the prime p's; else 0 */
        uint64_t rsa_e;                 /* RSA: the public exponent (UINT64_MAX when larger); else 0 */
        void *pkey;                     /* EVP_PKEY *, NULL for algorithms and sizes not supported here */
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

/* Why key is too weak to be trusted (see PGP_MIN_BITS), written into buf (size bytes) and
 * returned; NULL when it is not: RSA under PGP_MIN_BITS or with e < PGP_MIN_RSA_E, DSA or
 * ElGamal with a prime under PGP_MIN_BITS. Elliptic-curve keys are never weak by this test. */
const char *pgp_key_weakness(const struct pgp_key *key, char *buf, size_t size);

/* The earliest signature expiration later than `after` among the signatures that key fpr (a
 * primary key or subkey, upper-case hex) relies on in the binary transferable keys data: the
 * direct-key signatures (0x1F) and user ID certifications (0x10-0x13, self-signatures and
 * others') of its primary key and, for a subkey, its binding signatures (0x18) and their
 * embedded primary key binding signatures (0x19). An expiration is the hashed signature
 * expiration time subpacket (type 3, seconds after the signature's hashed creation time;
 * RFC 4880 5.2.3.10); an unhashed one is ignored, as gpg ignores it. Signatures are not checked
 * here (gpg judged the key), so this can only be earlier than gpg's view, never later.
 * *ret = 0 when no such signature expires after `after`; -ENOENT when fpr is not in data or is a
 * subkey with no v4 primary key before it, -EBADMSG for malformed packets. */
int pgp_keyblock_sig_expiry(const void *data, size_t len, const char *fpr, int64_t after, int64_t *ret);

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
