/* SPDX-License-Identifier: MIT */
/* See pgp-forge.h. Formats: RFC 4880 4.2.2 (new-format packet headers), 5.2.3-5.2.4 (v4
 * signatures and what they hash), 5.5.2 (v4 keys), 12.2 (fingerprints); EdDSA as gpg 2.2 makes it. */
#include "pgp-forge.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void need(bool ok, const char *what) {
        if (!ok) {
                fprintf(stderr, "pgp-forge: %s failed\n", what);
                abort();
        }
}

void forge_buf_done(struct forge_buf *b) {
        free(b->p);
        *b = (struct forge_buf){};
}

void forge_append(struct forge_buf *b, const void *data, size_t len) {
        uint8_t *n = realloc(b->p, b->len + len + 1);
        need(n != NULL, "realloc");
        if (len)
                memcpy(n + b->len, data, len);
        b->p = n;
        b->len += len;
}

static void put_u8(struct forge_buf *b, uint8_t v) {
        forge_append(b, &v, 1);
}

static void put_be(struct forge_buf *b, uint32_t v, int n) {
        for (int i = n - 1; i >= 0; i--)
                put_u8(b, (uint8_t)(v >> (8 * i)));
}

/* An MPI from big-endian bytes (leading zeros dropped). */
static void put_mpi(struct forge_buf *b, const uint8_t *p, size_t n) {
        while (n > 0 && *p == 0) {
                p++;
                n--;
        }
        unsigned bits = 0;
        if (n) {
                bits = (unsigned)(n - 1) * 8;
                for (uint8_t t = p[0]; t; t >>= 1)
                        bits++;
        }
        put_be(b, bits, 2);
        forge_append(b, p, n);
}

static void put_bn(struct forge_buf *b, EVP_PKEY *pkey, const char *param) {
        BIGNUM *bn = NULL;
        need(EVP_PKEY_get_bn_param(pkey, param, &bn) == 1, "EVP_PKEY_get_bn_param");
        int n = BN_num_bytes(bn);
        uint8_t *tmp = malloc((size_t)n + 1);
        need(tmp != NULL, "malloc");
        BN_bn2bin(bn, tmp);
        put_mpi(b, tmp, (size_t)n);
        free(tmp);
        BN_free(bn);
}

static void set_fpr(struct forge_key *k) {
        uint8_t head[3] = { 0x99, (uint8_t)(k->body.len >> 8), (uint8_t)k->body.len }, md[20];
        unsigned mdlen = 0;
        EVP_MD_CTX *mc = EVP_MD_CTX_new();
        need(mc && EVP_DigestInit_ex(mc, EVP_sha1(), NULL) && EVP_DigestUpdate(mc, head, 3) &&
                     EVP_DigestUpdate(mc, k->body.p, k->body.len) && EVP_DigestFinal_ex(mc, md, &mdlen),
             "sha1");
        EVP_MD_CTX_free(mc);
        for (int i = 0; i < 20; i++)
                (void)snprintf(k->fpr + 2 * i, 3, "%02X", md[i]);
}

void forge_key_ed25519(struct forge_key *k, uint32_t created) {
        static const uint8_t oid[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01 };
        *k = (struct forge_key){ .algo = 22 };
        EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        need(pkey != NULL, "ed25519 keygen");
        k->pkey = pkey;
        uint8_t pub[33] = { 0x40 };
        size_t plen = 32;
        need(EVP_PKEY_get_raw_public_key(pkey, pub + 1, &plen) == 1 && plen == 32, "raw public key");
        put_u8(&k->body, 4);
        put_be(&k->body, created, 4);
        put_u8(&k->body, 22);
        put_u8(&k->body, sizeof oid);
        forge_append(&k->body, oid, sizeof oid);
        put_be(&k->body, 263, 2);
        forge_append(&k->body, pub, sizeof pub);
        set_fpr(k);
}

void forge_key_rsa(struct forge_key *k, uint32_t created, unsigned bits, unsigned long e) {
        *k = (struct forge_key){ .algo = 1 };
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        BIGNUM *be = BN_new();
        EVP_PKEY *pkey = NULL;
        need(pc && be && BN_set_word(be, e) && EVP_PKEY_keygen_init(pc) > 0 && EVP_PKEY_CTX_set_rsa_keygen_bits(pc, (int)bits) > 0 &&
                     EVP_PKEY_CTX_set1_rsa_keygen_pubexp(pc, be) > 0 && EVP_PKEY_generate(pc, &pkey) > 0,
             "rsa keygen");
        BN_free(be);
        EVP_PKEY_CTX_free(pc);
        k->pkey = pkey;
        put_u8(&k->body, 4);
        put_be(&k->body, created, 4);
        put_u8(&k->body, 1);
        put_bn(&k->body, pkey, OSSL_PKEY_PARAM_RSA_N);
        put_bn(&k->body, pkey, OSSL_PKEY_PARAM_RSA_E);
        set_fpr(k);
}

void forge_key_done(struct forge_key *k) {
        EVP_PKEY_free(k->pkey);
        forge_buf_done(&k->body);
        *k = (struct forge_key){};
}

static void put_packet(struct forge_buf *out, uint8_t tag, const void *body, size_t len) {
        put_u8(out, (uint8_t)(0xc0 | tag));
        put_u8(out, 0xff);      /* five-octet length: always valid */
        put_be(out, (uint32_t)len, 4);
        forge_append(out, body, len);
}

void forge_put_key(struct forge_buf *out, const struct forge_key *k, bool subkey) {
        put_packet(out, subkey ? 14 : 6, k->body.p, k->body.len);
}

void forge_put_uid(struct forge_buf *out, const char *uid) {
        put_packet(out, 13, uid, strlen(uid));
}

void forge_put_sig(struct forge_buf *out, const struct forge_buf *sig_body) {
        put_packet(out, 2, sig_body->p, sig_body->len);
}

static void put_key_for_hash(struct forge_buf *b, const struct forge_key *k) {
        put_u8(b, 0x99);
        put_be(b, (uint32_t)k->body.len, 2);
        forge_append(b, k->body.p, k->body.len);
}

static void put_subpacket(struct forge_buf *b, uint8_t type, const void *data, size_t len) {
        need(len + 1 < 8384, "subpacket length");
        if (len + 1 < 192)
                put_u8(b, (uint8_t)(len + 1));
        else {
                size_t l = len + 1 - 192;
                put_u8(b, (uint8_t)((l >> 8) + 192));
                put_u8(b, (uint8_t)l);
        }
        put_u8(b, type);
        forge_append(b, data, len);
}

/* The signature packet body by signer over prefix (what precedes the signature's own fields). */
static void make_sig(struct forge_buf *out, const struct forge_key *signer, const struct forge_sig *o, const void *prefix,
                     size_t prefix_len) {
        struct forge_buf hashed = {}, sub = {}, unhashed = {};
        uint8_t v[4];
        for (int i = 0; i < 4; i++)
                v[i] = (uint8_t)(o->created >> (24 - 8 * i));
        put_subpacket(&sub, 2, v, 4);
        if (o->expire_secs) {
                for (int i = 0; i < 4; i++)
                        v[i] = (uint8_t)(o->expire_secs >> (24 - 8 * i));
                put_subpacket(&sub, 3, v, 4);
        }
        if (o->key_flags)
                put_subpacket(&sub, 27, &o->key_flags, 1);
        uint8_t ifp[21] = { 4 };
        for (int i = 0; i < 20; i++) {
                unsigned x;
                need(sscanf(signer->fpr + 2 * i, "%2X", &x) == 1, "fpr");
                ifp[1 + i] = (uint8_t)x;
        }
        put_subpacket(&sub, 33, ifp, sizeof ifp);
        put_subpacket(&unhashed, 16, ifp + 13, 8);
        if (o->embedded)
                put_subpacket(&unhashed, 32, o->embedded->p, o->embedded->len);

        put_u8(&hashed, 4);
        put_u8(&hashed, o->type);
        put_u8(&hashed, signer->algo);
        put_u8(&hashed, 8);     /* SHA-256 */
        put_be(&hashed, (uint32_t)sub.len, 2);
        forge_append(&hashed, sub.p, sub.len);

        uint8_t trailer[6] = { 4, 0xff, (uint8_t)(hashed.len >> 24), (uint8_t)(hashed.len >> 16), (uint8_t)(hashed.len >> 8),
                               (uint8_t)hashed.len };
        uint8_t digest[32];
        unsigned dlen = 0;
        EVP_MD_CTX *mc = EVP_MD_CTX_new();
        need(mc && EVP_DigestInit_ex(mc, EVP_sha256(), NULL) && EVP_DigestUpdate(mc, prefix, prefix_len) &&
                     EVP_DigestUpdate(mc, hashed.p, hashed.len) && EVP_DigestUpdate(mc, trailer, 6) &&
                     EVP_DigestFinal_ex(mc, digest, &dlen) && dlen == 32,
             "sha256");
        EVP_MD_CTX_free(mc);

        *out = (struct forge_buf){};
        forge_append(out, hashed.p, hashed.len);
        put_be(out, (uint32_t)unhashed.len, 2);
        forge_append(out, unhashed.p, unhashed.len);
        forge_append(out, digest, 2);
        uint8_t sig[1024];
        size_t slen = sizeof sig;
        if (signer->algo == 22) {
                EVP_MD_CTX *sc = EVP_MD_CTX_new();
                need(sc && EVP_DigestSignInit(sc, NULL, NULL, NULL, signer->pkey) > 0 &&
                             EVP_DigestSign(sc, sig, &slen, digest, sizeof digest) > 0 && slen == 64,
                     "ed25519 sign");
                EVP_MD_CTX_free(sc);
                put_mpi(out, sig, 32);
                put_mpi(out, sig + 32, 32);
        } else {
                EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(signer->pkey, NULL);
                need(pc && EVP_PKEY_sign_init(pc) > 0 && EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) > 0 &&
                             EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) > 0 &&
                             EVP_PKEY_sign(pc, sig, &slen, digest, sizeof digest) > 0,
                     "rsa sign");
                EVP_PKEY_CTX_free(pc);
                put_mpi(out, sig, slen);
        }
        forge_buf_done(&hashed);
        forge_buf_done(&sub);
        forge_buf_done(&unhashed);
}

void forge_sig_uid(struct forge_buf *out, const struct forge_key *signer, const struct forge_sig *o,
                   const struct forge_key *primary, const char *uid) {
        struct forge_buf pre = {};
        put_key_for_hash(&pre, primary);
        put_u8(&pre, 0xb4);
        put_be(&pre, (uint32_t)strlen(uid), 4);
        forge_append(&pre, uid, strlen(uid));
        make_sig(out, signer, o, pre.p, pre.len);
        forge_buf_done(&pre);
}

void forge_sig_binding(struct forge_buf *out, const struct forge_key *signer, const struct forge_sig *o,
                       const struct forge_key *primary, const struct forge_key *sub) {
        struct forge_buf pre = {};
        put_key_for_hash(&pre, primary);
        put_key_for_hash(&pre, sub);
        make_sig(out, signer, o, pre.p, pre.len);
        forge_buf_done(&pre);
}

void forge_sig_data(struct forge_buf *out, const struct forge_key *signer, const struct forge_sig *o, const void *data,
                    size_t len) {
        make_sig(out, signer, o, data, len);
}

void forge_keyblock(struct forge_buf *out, const struct forge_key *primary, const char *uid, const struct forge_sig *o_uid,
                    const struct forge_key *sub, const struct forge_sig *o_bind) {
        struct forge_buf s = {};
        struct forge_sig ou = *o_uid;
        ou.type = 0x13;
        if (!ou.key_flags)
                ou.key_flags = sub ? 0x01 : 0x03;       /* certify (and sign when there is no subkey) */
        forge_put_key(out, primary, false);
        forge_put_uid(out, uid);
        forge_sig_uid(&s, primary, &ou, primary, uid);
        forge_put_sig(out, &s);
        forge_buf_done(&s);
        if (!sub)
                return;
        struct forge_buf back = {};
        struct forge_sig ob = *o_bind, oback = { .type = 0x19, .created = o_bind->created };
        forge_sig_binding(&back, sub, &oback, primary, sub);
        ob.type = 0x18;
        ob.key_flags = 0x02;    /* sign */
        ob.embedded = &back;
        forge_put_key(out, sub, true);
        forge_sig_binding(&s, primary, &ob, primary, sub);
        forge_put_sig(out, &s);
        forge_buf_done(&s);
        forge_buf_done(&back);
}

void forge_write(const char *path, const void *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        need(fd >= 0, path);
        need(write(fd, data, len) == (ssize_t)len, "write");
        need(close(fd) == 0, "close");
}
