/* SPDX-License-Identifier: MIT */
/* A tiny OpenPGP v4 writer for tests (libcrypto): keys, user IDs and signatures with exactly the
 * subpackets a test needs, including what gpg never makes itself (a signature expiration on a
 * self-signature or a subkey binding, RSA with e = 3). SHA-256 only; Ed25519 and RSA keys.
 * Every function aborts (the test fails) on any failure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct forge_buf {
        uint8_t *p;
        size_t len;
};
void forge_buf_done(struct forge_buf *b);
void forge_append(struct forge_buf *b, const void *data, size_t len);

struct forge_key {
        void *pkey;                     /* EVP_PKEY * with the secret part */
        uint8_t algo;                   /* 1 RSA, 22 EdDSA */
        struct forge_buf body;          /* the key packet body */
        char fpr[41];                   /* upper-case hex */
};
void forge_key_ed25519(struct forge_key *k, uint32_t created);
void forge_key_rsa(struct forge_key *k, uint32_t created, unsigned bits, unsigned long e);
void forge_key_done(struct forge_key *k);

struct forge_sig {
        uint8_t type;                   /* 0x00 document, 0x13 positive certification, 0x18, 0x19 */
        uint32_t created;
        uint32_t expire_secs;           /* subpacket 3 (hashed), 0: none */
        uint8_t key_flags;              /* subpacket 27 (hashed), 0: none */
        const struct forge_buf *embedded; /* subpacket 32 (unhashed): a signature packet body */
};

/* Packets, appended to out. */
void forge_put_key(struct forge_buf *out, const struct forge_key *k, bool subkey);
void forge_put_uid(struct forge_buf *out, const char *uid);
void forge_put_sig(struct forge_buf *out, const struct forge_buf *sig_body);

/* Signature packet bodies (into a fresh *out) by signer over: a user ID of primary; the binding of
 * sub to primary (0x18 and 0x19 hash the same); a document. */
void forge_sig_uid(struct forge_buf *out, const struct forge_key *signer, const struct forge_sig *o,
                   const struct forge_key *primary, const char *uid);
void forge_sig_binding(struct forge_buf *out, const struct forge_key *signer, const struct forge_sig *o,
                       const struct forge_key *primary, const struct forge_key *sub);
void forge_sig_data(struct forge_buf *out, const struct forge_key *signer, const struct forge_sig *o, const void *data,
                    size_t len);

/* A transferable key as gpg would export it: primary (flags certify|sign unless flags given), one
 * user ID with its self-signature (o_uid: created, expire_secs; type 0x13), and, when sub is not
 * NULL, the subkey with a signing binding (o_bind) and its back-signature. */
void forge_keyblock(struct forge_buf *out, const struct forge_key *primary, const char *uid, const struct forge_sig *o_uid,
                    const struct forge_key *sub, const struct forge_sig *o_bind);

/* Write len bytes to path (0644). */
void forge_write(const char *path, const void *data, size_t len);
