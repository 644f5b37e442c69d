/* SPDX-License-Identifier: MIT */
/* Native OpenPGP v4 signature checks (see pgp.h). Formats: RFC 4880 sections 4.2 (packet
 * headers), 5.2.3 (v4 signatures), 5.2.4 (the hashed trailer), 5.5.2 (v4 keys), 12.2 (v4
 * fingerprints); EdDSA as in draft-ietf-openpgp-rfc4880bis-10 section 5.2.3.3 and gpg. */
#include "pgp.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"

#define TAG_SIGNATURE 2
#define TAG_PUBLIC_KEY 6
#define TAG_PUBLIC_SUBKEY 14
#define TAG_USER_ID 13
#define TAG_USER_ATTRIBUTE 17

/* OID 1.3.6.1.4.1.11591.15.1, gpg's Ed25519 for EdDSA. */
static const uint8_t oid_ed25519[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01 };

struct reader {
        const uint8_t *p;
        size_t left;
};

static int rd_u8(struct reader *r, uint8_t *ret) {
        if (r->left < 1)
                return -EBADMSG;
        *ret = *r->p++;
        r->left--;
        return 0;
}

static int rd_be(struct reader *r, size_t n, uint32_t *ret) {
        if (r->left < n)
                return -EBADMSG;
        uint32_t v = 0;
        for (size_t i = 0; i < n; i++)
                v = v << 8 | r->p[i];
        r->p += n;
        r->left -= n;
        *ret = v;
        return 0;
}

static int rd_skip(struct reader *r, size_t n, const uint8_t **ret) {
        if (r->left < n)
                return -EBADMSG;
        if (ret)
                *ret = r->p;
        r->p += n;
        r->left -= n;
        return 0;
}

/* An MPI: a 2-byte bit count, then the bytes. Returns the value without leading zero bytes. */
static int rd_mpi(struct reader *r, const uint8_t **ret, size_t *ret_len) {
        uint32_t bits;
        int q = rd_be(r, 2, &bits);
        if (q < 0)
                return q;
        size_t n = (bits + 7) / 8;
        if (n > PGP_MAX_MPI_BYTES)
                return -ENOTSUP;
        const uint8_t *p;
        q = rd_skip(r, n, &p);
        if (q < 0)
                return q;
        while (n > 0 && *p == 0) {
                p++;
                n--;
        }
        *ret = p;
        *ret_len = n;
        return 0;
}

/* One packet header: its tag and body. Partial and indeterminate lengths are refused (keys and
 * signatures never use them). */
static int rd_packet(struct reader *r, uint8_t *ret_tag, struct reader *ret_body) {
        uint8_t b, o1, o2;
        uint32_t len;
        int q = rd_u8(r, &b);
        if (q < 0)
                return q;
        if (!(b & 0x80))
                return -EBADMSG;
        if (b & 0x40) {                         /* new format */
                *ret_tag = b & 0x3f;
                if ((q = rd_u8(r, &o1)) < 0)
                        return q;
                if (o1 < 192)
                        len = o1;
                else if (o1 < 224) {
                        if ((q = rd_u8(r, &o2)) < 0)
                                return q;
                        len = ((uint32_t)(o1 - 192) << 8) + o2 + 192;
                } else if (o1 == 255) {
                        if ((q = rd_be(r, 4, &len)) < 0)
                                return q;
                } else
                        return -EBADMSG;        /* partial body length */
        } else {                                /* old format */
                *ret_tag = (b >> 2) & 0x0f;
                switch (b & 3) {
                case 0:
                        q = rd_be(r, 1, &len);
                        break;
                case 1:
                        q = rd_be(r, 2, &len);
                        break;
                case 2:
                        q = rd_be(r, 4, &len);
                        break;
                default:
                        return -EBADMSG;        /* indeterminate length */
                }
                if (q < 0)
                        return q;
        }
        const uint8_t *p;
        if ((q = rd_skip(r, len, &p)) < 0)
                return q;
        *ret_body = (struct reader){ .p = p, .left = len };
        return 0;
}

static void hex_upper(const uint8_t *p, size_t n, char *out) {
        static const char digits[] = "0123456789ABCDEF";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 15];
        }
        out[2 * n] = 0;
}

/* One subpacket of an area (RFC 4880 5.2.3.1): its type byte (critical bit included) and body. */
static int rd_subpacket(struct reader *area, uint8_t *ret_type, const uint8_t **ret_body, size_t *ret_len) {
        uint8_t o1, o2;
        uint32_t len;
        int q = rd_u8(area, &o1);
        if (q < 0)
                return q;
        if (o1 < 192)
                len = o1;
        else if (o1 < 255) {
                if ((q = rd_u8(area, &o2)) < 0)
                        return q;
                len = ((uint32_t)(o1 - 192) << 8) + o2 + 192;
        } else if ((q = rd_be(area, 4, &len)) < 0)
                return q;
        if (len == 0)
                return -EBADMSG;
        const uint8_t *body;
        if ((q = rd_skip(area, len, &body)) < 0)
                return q;
        *ret_type = body[0];
        *ret_body = body + 1;
        *ret_len = len - 1;
        return 0;
}

static uint32_t be32(const uint8_t *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Subpackets of one area (RFC 4880 5.2.3.1). */
static int parse_subpackets(struct reader area, bool hashed, struct pgp_sig *s) {
        unsigned seen = 0;      /* which of 2, 16, 33 this area had */
        while (area.left > 0) {
                uint8_t tb;
                const uint8_t *body;
                size_t len;
                int q = rd_subpacket(&area, &tb, &body, &len);
                if (q < 0)
                        return q;
                uint8_t type = tb & 0x7f;
                bool critical = tb & 0x80;
                if (type == 2 || type == 16 || type == 33) {
                        unsigned bit = 1u << (type == 2 ? 0 : type == 16 ? 1 : 2);
                        if (seen & bit)
                                s->ambiguous = true;
                        seen |= bit;
                }
                switch (type) {
                case 2:         /* signature creation time */
                        if (len != 4)
                                return -EBADMSG;
                        if (hashed && s->created < 0)
                                s->created = (int64_t)be32(body);
                        break;
                case 3:         /* signature expiration time */
                        s->has_expiry = true;
                        break;
                case 16:        /* issuer key ID */
                        if (len != 8)
                                return -EBADMSG;
                        if (!s->issuer_keyid[0])
                                hex_upper(body, 8, s->issuer_keyid);
                        break;
                case 33:        /* issuer fingerprint: version, then the fingerprint */
                        if (len == 21 && body[0] == 4 && !s->issuer_fpr[0])
                                hex_upper(body + 1, 20, s->issuer_fpr);
                        else if (critical)
                                s->unknown_critical = true;
                        break;
                default:
                        if (critical)
                                s->unknown_critical = true;
                        break;
                }
                if (critical && !hashed)
                        s->unknown_critical = true;     /* gpg ignores those; stay on its path */
        }
        return 0;
}

void pgp_sig_done(struct pgp_sig *s) {
        if (!s)
                return;
        free(s->mpi1);
        free(s->mpi2);
        s->mpi1 = s->mpi2 = NULL;
}

static int copy_padded(const uint8_t *p, size_t n, size_t width, uint8_t **ret, size_t *ret_len) {
        if (width && n > width)
                return -EBADMSG;
        size_t w = width ? width : n;
        uint8_t *b = calloc(1, w ? w : 1);
        if (!b)
                return -ENOMEM;
        memcpy(b + (w - n), p, n);
        *ret = b;
        *ret_len = w;
        return 0;
}

int pgp_sig_parse(const void *data, size_t len, struct pgp_sig *ret) {
        struct reader r = { .p = data, .left = len }, body;
        uint8_t tag;
        int q = rd_packet(&r, &tag, &body);
        if (q < 0)
                return q;
        if (tag != TAG_SIGNATURE || r.left != 0)
                return -ENOTSUP;        /* another packet, or more than one */
        struct pgp_sig s = { .created = -1 };
        const uint8_t *start = body.p;
        uint8_t version;
        uint32_t hlen, ulen;
        if ((q = rd_u8(&body, &version)) < 0)
                return q;
        if (version != 4)
                return -ENOTSUP;
        if ((q = rd_u8(&body, &s.type)) < 0 || (q = rd_u8(&body, &s.pk_algo)) < 0 ||
            (q = rd_u8(&body, &s.hash_algo)) < 0 || (q = rd_be(&body, 2, &hlen)) < 0)
                return q;
        struct reader area;
        if ((q = rd_skip(&body, hlen, &area.p)) < 0)
                return q;
        area.left = hlen;
        if ((q = parse_subpackets(area, true, &s)) < 0)
                return q;
        s.hashed = start;
        s.hashed_len = (size_t)(body.p - start);
        if ((q = rd_be(&body, 2, &ulen)) < 0 || (q = rd_skip(&body, ulen, &area.p)) < 0)
                return q;
        area.left = ulen;
        /* The unhashed area may only add an issuer key ID; its creation time would not count. */
        struct pgp_sig u = { .created = -1 };
        if ((q = parse_subpackets(area, false, &u)) < 0)
                return q;
        /* The hashed area's issuer wins, as in gpg; the same subpacket in both areas, or a key ID
         * that is not the fingerprint's end, is left to gpg. */
        if ((s.issuer_keyid[0] && u.issuer_keyid[0]) || (s.issuer_fpr[0] && u.issuer_fpr[0]))
                s.ambiguous = true;
        if (!s.issuer_keyid[0])
                memcpy(s.issuer_keyid, u.issuer_keyid, sizeof s.issuer_keyid);
        if (!s.issuer_fpr[0])
                memcpy(s.issuer_fpr, u.issuer_fpr, sizeof s.issuer_fpr);
        if (s.issuer_keyid[0] && s.issuer_fpr[0] && strcmp(s.issuer_fpr + 24, s.issuer_keyid) != 0)
                s.ambiguous = true;
        s.unknown_critical |= u.unknown_critical;
        s.has_expiry |= u.has_expiry;
        s.ambiguous |= u.ambiguous;
        const uint8_t *l16;
        if ((q = rd_skip(&body, 2, &l16)) < 0)
                return q;
        memcpy(s.left16, l16, 2);
        const uint8_t *m1, *m2;
        size_t n1, n2;
        switch (s.pk_algo) {
        case PGP_PK_RSA:
                if ((q = rd_mpi(&body, &m1, &n1)) < 0)
                        return q;
                if (n1 == 0)
                        return -EBADMSG;        /* s = 0, as gpg refuses it */
                q = copy_padded(m1, n1, 0, &s.mpi1, &s.mpi1_len);
                break;
        case PGP_PK_EDDSA:
                if ((q = rd_mpi(&body, &m1, &n1)) < 0 || (q = rd_mpi(&body, &m2, &n2)) < 0)
                        return q;
                if (n1 == 0 || n2 == 0)
                        return -EBADMSG;        /* r or s = 0, as gpg refuses it */
                q = copy_padded(m1, n1, 32, &s.mpi1, &s.mpi1_len);
                if (q >= 0)
                        q = copy_padded(m2, n2, 32, &s.mpi2, &s.mpi2_len);
                break;
        default:
                return -ENOTSUP;
        }
        if (q >= 0 && body.left != 0)
                q = -EBADMSG;
        if (q < 0) {
                pgp_sig_done(&s);
                return q;
        }
        *ret = s;
        return 0;
}

/* ---- keys ---------------------------------------------------------------------------------- */

void pgp_key_done(struct pgp_key *key) {
        if (key) {
                EVP_PKEY_free(key->pkey);
                key->pkey = NULL;
        }
}

void pgp_keys_free(struct pgp_key *keys, size_t n) {
        for (size_t i = 0; keys && i < n; i++)
                pgp_key_done(&keys[i]);
        free(keys);
}

static EVP_PKEY *rsa_key(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen) {
        EVP_PKEY *pkey = NULL;
        BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        if (bn && be && bld && pctx && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) && (params = OSSL_PARAM_BLD_to_param(bld)) &&
            EVP_PKEY_fromdata_init(pctx) > 0)
                (void)EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
        EVP_PKEY_CTX_free(pctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        BN_free(bn);
        BN_free(be);
        return pkey;
}

/* The size in bits of an MPI's value (rd_mpi strips leading zero bytes). */
static unsigned mpi_bits(const uint8_t *p, size_t n) {
        if (n == 0)
                return 0;
        unsigned b = 0;
        for (uint8_t top = p[0]; top; top >>= 1)
                b++;
        return (unsigned)((n - 1) * 8) + b;
}

/* The key material of a v4 key packet body (after version, time, algorithm): the strength
 * fields of k for every algorithm that has them, and k->pkey (NULL when the algorithm, curve or
 * size is not one the fast path handles). */
static int parse_key_material(struct reader *b, struct pgp_key *k) {
        const uint8_t *m1, *m2;
        size_t n1, n2;
        int q;
        k->pkey = NULL;
        switch (k->pk_algo) {
        case PGP_PK_RSA:
        case PGP_PK_RSA_E:
        case PGP_PK_RSA_S:
                if ((q = rd_mpi(b, &m1, &n1)) < 0 || (q = rd_mpi(b, &m2, &n2)) < 0)
                        return q;
                k->bits = mpi_bits(m1, n1);
                k->rsa_e = 0;
                for (size_t i = 0; i < n2; i++)
                        k->rsa_e = k->rsa_e > UINT64_MAX >> 8 ? UINT64_MAX : k->rsa_e << 8 | m2[i];
                if (k->pk_algo != PGP_PK_RSA || k->bits < 2048 || n2 == 0)
                        return 0;       /* short keys stay with gpg and its policy */
                EVP_PKEY *pkey = rsa_key(m1, n1, m2, n2);
                if (!pkey)
                        return -ENOMEM;
                k->pkey = pkey;
                return 0;
        case PGP_PK_ELGAMAL:
        case PGP_PK_ELGAMAL_SE:
        case PGP_PK_DSA:
                /* The prime p comes first. */
                if ((q = rd_mpi(b, &m1, &n1)) < 0)
                        return q;
                k->bits = mpi_bits(m1, n1);
                return 0;
        case PGP_PK_EDDSA: {
                uint8_t oidlen;
                const uint8_t *oid;
                if ((q = rd_u8(b, &oidlen)) < 0 || (q = rd_skip(b, oidlen, &oid)) < 0 || (q = rd_mpi(b, &m1, &n1)) < 0)
                        return q;
                if (oidlen != sizeof oid_ed25519 || memcmp(oid, oid_ed25519, oidlen) != 0)
                        return 0;
                if (n1 != 33 || m1[0] != 0x40)  /* native point encoding, 0x40 prefix */
                        return 0;
                k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, m1 + 1, 32);
                return k->pkey ? 0 : -ENOMEM;
        }
        default:
                return 0;
        }
}

/* The v4 fingerprint of a key packet body: SHA-1 over 0x99, the 2-byte body length and the body. */
static int key_fpr(const uint8_t *body, size_t blen, char out[static PGP_FPR_HEX]) {
        uint8_t head[3] = { 0x99, (uint8_t)(blen >> 8), (uint8_t)blen }, md[20];
        unsigned mdlen = 0;
        if (blen > 0xffff)
                return -EBADMSG;
        EVP_MD_CTX *mc = EVP_MD_CTX_new();
        bool ok = mc && EVP_DigestInit_ex(mc, EVP_sha1(), NULL) && EVP_DigestUpdate(mc, head, 3) &&
                  EVP_DigestUpdate(mc, body, blen) && EVP_DigestFinal_ex(mc, md, &mdlen) && mdlen == 20;
        EVP_MD_CTX_free(mc);
        if (!ok)
                return -ENOMEM;
        hex_upper(md, 20, out);
        return 0;
}

int pgp_keys_parse(const void *data, size_t len, struct pgp_key **ret, size_t *ret_n) {
        struct reader r = { .p = data, .left = len };
        struct pgp_key *keys = NULL;
        size_t n = 0;
        int q = 0;
        while (r.left > 0) {
                uint8_t tag, version, algo;
                uint32_t created;
                struct reader body;
                if ((q = rd_packet(&r, &tag, &body)) < 0)
                        break;
                if (tag != TAG_PUBLIC_KEY && tag != TAG_PUBLIC_SUBKEY)
                        continue;
                const uint8_t *start = body.p;
                size_t blen = body.left;
                if (rd_u8(&body, &version) < 0 || version != 4)
                        continue;       /* v3/v5/v6 keys: not for the fast path */
                if (rd_be(&body, 4, &created) < 0 || rd_u8(&body, &algo) < 0)
                        continue;
                struct pgp_key k = { .pk_algo = algo, .created = (int64_t)created, .primary = tag == TAG_PUBLIC_KEY };
                if (parse_key_material(&body, &k) < 0)
                        continue;       /* a malformed key is simply not usable here */
                if (key_fpr(start, blen, k.fpr) < 0) {
                        pgp_key_done(&k);
                        continue;
                }
                struct pgp_key *nk = realloc(keys, (n + 1) * sizeof *nk);
                if (!nk) {
                        pgp_key_done(&k);
                        q = -ENOMEM;
                        break;
                }
                keys = nk;
                keys[n++] = k;
        }
        if (q < 0) {
                pgp_keys_free(keys, n);
                return q;
        }
        *ret = keys;
        *ret_n = n;
        return 0;
}

const char *pgp_key_weakness(const struct pgp_key *k, char *buf, size_t size) {
        switch (k->pk_algo) {
        case PGP_PK_RSA:
        case PGP_PK_RSA_E:
        case PGP_PK_RSA_S:
                if (k->bits < PGP_MIN_BITS)
                        (void)snprintf(buf, size, "RSA with a %u-bit modulus (at least %u bits are required)", k->bits,
                                       PGP_MIN_BITS);
                else if (k->rsa_e < PGP_MIN_RSA_E)
                        (void)snprintf(buf, size, "RSA with public exponent %" PRIu64 " (at least %u is required)",
                                       k->rsa_e, PGP_MIN_RSA_E);
                else
                        return NULL;
                return buf;
        case PGP_PK_DSA:
        case PGP_PK_ELGAMAL:
        case PGP_PK_ELGAMAL_SE:
                if (k->bits >= PGP_MIN_BITS)
                        return NULL;
                (void)snprintf(buf, size, "%s with a %u-bit prime (at least %u bits are required)",
                               k->pk_algo == PGP_PK_DSA ? "DSA" : "ElGamal", k->bits, PGP_MIN_BITS);
                return buf;
        default:
                return NULL;    /* elliptic curves: every curve gpg supports has at least 255 bits */
        }
}

/* ---- signature expiration in a keyblock ---- */

/* The creation time and signature expiration (creation + the hashed subpacket 3; 0 when none) of
 * the v4 signature packet body sig, and its embedded signature (subpacket 32, in either area),
 * if any. v3 signatures carry no expiration here (gpg does not use them for self-signatures). */
static int sig_times(struct reader sig, uint8_t *ret_type, int64_t *ret_expires, struct reader *ret_embedded) {
        uint8_t version, type, pk, hash;
        uint32_t hlen, ulen;
        int q;
        *ret_expires = 0;
        *ret_embedded = (struct reader){};
        if ((q = rd_u8(&sig, &version)) < 0)
                return q;
        if (version != 4)
                return -ENOTSUP;
        if ((q = rd_u8(&sig, &type)) < 0 || (q = rd_u8(&sig, &pk)) < 0 || (q = rd_u8(&sig, &hash)) < 0)
                return q;
        *ret_type = type;
        int64_t created = -1, secs = 0;
        for (int hashed = 1; hashed >= 0; hashed--) {
                struct reader area;
                if ((q = rd_be(&sig, 2, hashed ? &hlen : &ulen)) < 0 ||
                    (q = rd_skip(&sig, hashed ? hlen : ulen, &area.p)) < 0)
                        return q;
                area.left = hashed ? hlen : ulen;
                while (area.left > 0) {
                        uint8_t tb;
                        const uint8_t *body;
                        size_t len;
                        if ((q = rd_subpacket(&area, &tb, &body, &len)) < 0)
                                return q;
                        switch (tb & 0x7f) {
                        case 2:
                                if (len != 4)
                                        return -EBADMSG;
                                if (hashed && created < 0)
                                        created = (int64_t)be32(body);
                                break;
                        case 3:         /* seconds after the creation; only the signed value counts */
                                if (len != 4)
                                        return -EBADMSG;
                                if (hashed && secs == 0)
                                        secs = (int64_t)be32(body);
                                break;
                        case 32:        /* embedded signature (a subkey's primary key binding) */
                                if (!ret_embedded->p)
                                        *ret_embedded = (struct reader){ .p = body, .left = len };
                                break;
                        default:
                                break;
                        }
                }
        }
        if (created >= 0 && secs > 0)
                *ret_expires = created + secs;
        return 0;
}

/* Keep the earliest of *best and t among the times after `after`. */
static void keep_earliest(int64_t *best, int64_t t, int64_t after) {
        if (t > after && (*best == 0 || t < *best))
                *best = t;
}

/* The fingerprint of a key packet body, "" for one that is not v4. */
static void packet_fpr(struct reader body, char out[static PGP_FPR_HEX]) {
        if (body.left == 0 || body.p[0] != 4 || key_fpr(body.p, body.left, out) < 0)
                out[0] = 0;
}

int pgp_keyblock_sig_expiry(const void *data, size_t len, const char *fpr, int64_t after, int64_t *ret) {
        char primary[PGP_FPR_HEX] = "", sub[PGP_FPR_HEX] = "", owner[PGP_FPR_HEX] = "";
        uint8_t tag, type;
        struct reader body;
        int q;
        /* First the primary key whose block holds fpr (its certifications come before its subkeys). */
        for (struct reader r = { .p = data, .left = len }; r.left > 0 && !owner[0];) {
                if ((q = rd_packet(&r, &tag, &body)) < 0)
                        return q;
                if (tag != TAG_PUBLIC_KEY && tag != TAG_PUBLIC_SUBKEY)
                        continue;
                char f[PGP_FPR_HEX];
                packet_fpr(body, f);
                if (tag == TAG_PUBLIC_KEY)
                        memcpy(primary, f, sizeof primary);
                if (f[0] && primary[0] && strcmp(f, fpr) == 0)
                        memcpy(owner, primary, sizeof owner);
        }
        if (!owner[0])
                return -ENOENT;

        enum { IN_NONE, IN_PRIMARY, IN_UID, IN_SUBKEY } where = IN_NONE;
        int64_t best = 0;
        for (struct reader r = { .p = data, .left = len }; r.left > 0;) {
                if ((q = rd_packet(&r, &tag, &body)) < 0)
                        return q;
                switch (tag) {
                case TAG_PUBLIC_KEY:
                        packet_fpr(body, primary);
                        sub[0] = 0;
                        where = IN_PRIMARY;
                        break;
                case TAG_PUBLIC_SUBKEY:
                        packet_fpr(body, sub);
                        where = IN_SUBKEY;
                        break;
                case TAG_USER_ID:
                case TAG_USER_ATTRIBUTE:
                        if (where != IN_NONE)
                                where = IN_UID;
                        break;
                case TAG_SIGNATURE: {
                        int64_t expires, eexp;
                        struct reader emb, eemb;
                        uint8_t etype;
                        if (where == IN_NONE || strcmp(primary, owner) != 0)
                                break;
                        q = sig_times(body, &type, &expires, &emb);
                        if (q == -ENOTSUP)
                                break;
                        if (q < 0)
                                return q;
                        /* The primary key's: its direct-key signatures and every certification of
                         * its user IDs (self-signatures, and others' that may make it valid). */
                        if ((where == IN_PRIMARY && type == 0x1f) || (where == IN_UID && type >= 0x10 && type <= 0x13))
                                keep_earliest(&best, expires, after);
                        /* The subkey's: its binding signatures and their embedded back-signatures. */
                        else if (where == IN_SUBKEY && type == 0x18 && strcmp(sub, fpr) == 0) {
                                keep_earliest(&best, expires, after);
                                if (emb.p && sig_times(emb, &etype, &eexp, &eemb) == 0 && etype == 0x19)
                                        keep_earliest(&best, eexp, after);
                        }
                        break;
                }
                default:
                        break;
                }
        }
        *ret = best;
        return 0;
}

/* ---- verification -------------------------------------------------------------------------- */

struct pgp_hash {
        EVP_MD_CTX *mc;
        const EVP_MD *md;
};

static const EVP_MD *md_for(uint8_t hash_algo) {
        switch (hash_algo) {
        case 8:
                return EVP_sha256();
        case 9:
                return EVP_sha384();
        case 10:
                return EVP_sha512();
        case 11:
                return EVP_sha224();
        default:
                return NULL;    /* SHA-1, MD5, RIPEMD: gpg's policy decides */
        }
}

int pgp_hash_new(const struct pgp_sig *sig, struct pgp_hash **ret) {
        const EVP_MD *md = md_for(sig->hash_algo);
        if (!md)
                return -ENOTSUP;
        struct pgp_hash *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        h->md = md;
        h->mc = EVP_MD_CTX_new();
        if (!h->mc || !EVP_DigestInit_ex(h->mc, md, NULL)) {
                pgp_hash_free(h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

int pgp_hash_update(struct pgp_hash *h, const void *data, size_t len) {
        return EVP_DigestUpdate(h->mc, data, len) ? 0 : -EIO;
}

struct pgp_hash *pgp_hash_free(struct pgp_hash *h) {
        if (h) {
                EVP_MD_CTX_free(h->mc);
                free(h);
        }
        return NULL;
}

int pgp_verify(const struct pgp_key *key, const struct pgp_sig *sig, struct pgp_hash *h) {
        if (!key->pkey || key->pk_algo != sig->pk_algo || !h || h->md != md_for(sig->hash_algo))
                return -ENOTSUP;
        if (sig->type != 0x00 || sig->created < 0 || sig->created < key->created)
                return -EBADMSG;
        /* The trailer: the hashed part of the packet, then 0x04 0xff and its length (5.2.4). */
        uint8_t trailer[6] = { 0x04, 0xff, (uint8_t)(sig->hashed_len >> 24), (uint8_t)(sig->hashed_len >> 16),
                               (uint8_t)(sig->hashed_len >> 8), (uint8_t)sig->hashed_len };
        uint8_t digest[EVP_MAX_MD_SIZE];
        unsigned dlen = 0;
        if (!EVP_DigestUpdate(h->mc, sig->hashed, sig->hashed_len) || !EVP_DigestUpdate(h->mc, trailer, sizeof trailer) ||
            !EVP_DigestFinal_ex(h->mc, digest, &dlen))
                return -EIO;
        if (dlen < 2 || memcmp(digest, sig->left16, 2) != 0)
                return -EBADMSG;
        int ok = 0;
        if (sig->pk_algo == PGP_PK_RSA) {
                size_t modlen = (size_t)EVP_PKEY_get_size(key->pkey);
                _cleanup_free_ uint8_t *s = NULL;
                size_t slen = 0;
                if (sig->mpi1_len > modlen || copy_padded(sig->mpi1, sig->mpi1_len, modlen, &s, &slen) < 0)
                        return -EBADMSG;
                EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(key->pkey, NULL);
                ok = pc && EVP_PKEY_verify_init(pc) > 0 && EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) > 0 &&
                     EVP_PKEY_CTX_set_signature_md(pc, h->md) > 0 && EVP_PKEY_verify(pc, s, slen, digest, dlen) == 1;
                EVP_PKEY_CTX_free(pc);
        } else if (sig->pk_algo == PGP_PK_EDDSA) {
                /* EdDSA signs the digest; r and s are the native 32-byte halves of the signature. */
                uint8_t rs[64];
                if (sig->mpi1_len != 32 || sig->mpi2_len != 32)
                        return -EBADMSG;
                memcpy(rs, sig->mpi1, 32);
                memcpy(rs + 32, sig->mpi2, 32);
                EVP_MD_CTX *mc = EVP_MD_CTX_new();
                ok = mc && EVP_DigestVerifyInit(mc, NULL, NULL, NULL, key->pkey) > 0 &&
                     EVP_DigestVerify(mc, rs, sizeof rs, digest, dlen) == 1;
                EVP_MD_CTX_free(mc);
        }
        return ok ? 0 : -EBADMSG;
}
