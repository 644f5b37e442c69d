/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/pgp (the native signature checks): parsing real gpg output from
 * tests/tools/mkkeys.sh, fingerprints equal to gpg's, valid and altered signatures, and hostile
 * input (every truncation, byte flips). That verify.c uses it only for keys gpg accepted is
 * tested in test-verify.c. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "pgp-forge.h"
#include "pgp.h"
#include "util/cleanup.h"
#include "util/fs.h"

static char dir[64];

static char *slurp(const char *name, size_t *len) { return th_read_file_ok(dir, name, len); }

static char *fpr(const char *key) {
        char name[32];
        (void)snprintf(name, sizeof name, "fpr.%s", key);
        char *f = slurp(name, NULL);
        f[strcspn(f, "\n")] = 0;
        return f;
}

static int setup(void **state) {
        (void)state;
        (void)snprintf(dir, sizeof dir, "/tmp/mkm-test-pgp.XXXXXX");
        if (!mkdtemp(dir) || setenv("TMPDIR", dir, 1) < 0)
                return -1;
        const char *top = getenv("TOP");
        char script[4096];
        (void)snprintf(script, sizeof script, "%s/tests/tools/mkkeys.sh", top ? top : ".");
        pid_t pid = fork();
        if (pid == 0) {
                execl("/bin/bash", "bash", script, dir, (char *)NULL);
                _exit(127);
        }
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                (void)fs_rm_rf_at(AT_FDCWD, dir);
                return -1;
        }
        return 0;
}

static int teardown(void **state) {
        (void)state;
        (void)fs_rm_rf_at(AT_FDCWD, dir);
        return 0;
}

static const struct pgp_key *find(const struct pgp_key *keys, size_t n, const char *f) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(keys[i].fpr, f) == 0)
                        return &keys[i];
        return NULL;
}

static void test_keys(void **state) {
        (void)state;
        size_t len, n = 0;
        _cleanup_free_ char *buf = slurp("keys.gpg", &len);
        struct pgp_key *keys = NULL;
        assert_int_equal(pgp_keys_parse(buf, len, &keys, &n), 0);
        /* T, K + its signing subkey, RS, RW, DW: fingerprints as gpg computes them. */
        assert_int_equal(n, 6);
        static const struct {
                const char *name;
                uint8_t algo;
                bool usable, primary;
                unsigned bits;
                uint64_t e;
                const char *weak;
        } want[] = {
                { "T", PGP_PK_EDDSA, true, true, 0, 0, NULL },
                { "K", PGP_PK_EDDSA, true, true, 0, 0, NULL },
                { "Ksub", PGP_PK_EDDSA, true, false, 0, 0, NULL },
                { "RS", PGP_PK_RSA, true, true, 2048, 65537, NULL },
                /* 1024 bits: gpg's, and too weak to trust */
                { "RW", PGP_PK_RSA, false, true, 1024, 65537, "RSA with a 1024-bit modulus (at least 2048 bits are required)" },
                { "DW", PGP_PK_DSA, false, true, 1024, 0, "DSA with a 1024-bit prime (at least 2048 bits are required)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                _cleanup_free_ char *f = fpr(want[i].name);
                const struct pgp_key *k = find(keys, n, f);
                print_message("%s %s\n", want[i].name, f);
                assert_non_null(k);
                assert_int_equal(k->pk_algo, want[i].algo);
                assert_int_equal(k->pkey != NULL, want[i].usable);
                assert_int_equal(k->primary, want[i].primary);
                assert_int_equal(k->bits, want[i].bits);
                assert_int_equal(k->rsa_e, want[i].e);
                assert_true(k->created > 1500000000);
                char wbuf[160];
                const char *why = pgp_key_weakness(k, wbuf, sizeof wbuf);
                if (want[i].weak)
                        assert_string_equal(why, want[i].weak);
                else
                        assert_null(why);
        }
        pgp_keys_free(keys, n);
}

/* pgp_keyblock_sig_expiry on keyblocks with signature expirations where gpg never puts them. */
static void test_keyblock_expiry(void **state) {
        (void)state;
        const uint32_t c = 1700000000;
        struct forge_key p, sub, other;
        forge_key_ed25519(&p, c);
        forge_key_ed25519(&sub, c);
        forge_key_ed25519(&other, c);
        struct forge_buf kb = {}, s = {};
        /* The self-signature expires at c+500, the binding at c+300, its back-signature never. */
        forge_keyblock(&kb, &p, "P <p@example.invalid>", &(struct forge_sig){ .created = c, .expire_secs = 500 }, &sub,
                       &(struct forge_sig){ .created = c, .expire_secs = 300 });
        int64_t t = -1;
        assert_int_equal(pgp_keyblock_sig_expiry(kb.p, kb.len, sub.fpr, c, &t), 0);
        assert_int_equal(t, c + 300);
        /* Past the binding's: the self-signature's; past both: none. */
        assert_int_equal(pgp_keyblock_sig_expiry(kb.p, kb.len, sub.fpr, c + 300, &t), 0);
        assert_int_equal(t, c + 500);
        assert_int_equal(pgp_keyblock_sig_expiry(kb.p, kb.len, sub.fpr, c + 500, &t), 0);
        assert_int_equal(t, 0);
        /* The primary key does not rest on its subkey's binding. */
        assert_int_equal(pgp_keyblock_sig_expiry(kb.p, kb.len, p.fpr, c, &t), 0);
        assert_int_equal(t, c + 500);
        /* Another key's certification of the user ID (what makes a packager key valid) counts. */
        forge_sig_uid(&s, &other, &(struct forge_sig){ .type = 0x10, .created = c + 10, .expire_secs = 100 }, &p,
                      "P <p@example.invalid>");
        struct forge_buf kb2 = {};
        forge_put_key(&kb2, &p, false);
        forge_put_uid(&kb2, "P <p@example.invalid>");
        forge_put_sig(&kb2, &s);
        forge_buf_done(&s);
        assert_int_equal(pgp_keyblock_sig_expiry(kb2.p, kb2.len, p.fpr, c, &t), 0);
        assert_int_equal(t, c + 110);
        /* Unknown key; the expiration of another primary key's block does not count. */
        assert_int_equal(pgp_keyblock_sig_expiry(kb.p, kb.len, other.fpr, c, &t), -ENOENT);
        forge_append(&kb2, kb.p, kb.len);
        forge_put_key(&kb2, &other, false);
        forge_put_uid(&kb2, "O <o@example.invalid>");
        forge_sig_uid(&s, &other, &(struct forge_sig){ .type = 0x13, .created = c }, &other, "O <o@example.invalid>");
        forge_put_sig(&kb2, &s);
        forge_buf_done(&s);
        assert_int_equal(pgp_keyblock_sig_expiry(kb2.p, kb2.len, other.fpr, c, &t), 0);
        assert_int_equal(t, 0);
        assert_int_equal(pgp_keyblock_sig_expiry(kb2.p, kb2.len, sub.fpr, c, &t), 0);
        assert_int_equal(t, c + 110);
        /* An expiration in the back-signature counts too; in the unhashed area it does not. */
        struct forge_buf back = {}, bind = {}, kb3 = {};
        forge_sig_binding(&back, &sub, &(struct forge_sig){ .type = 0x19, .created = c, .expire_secs = 50 }, &p, &sub);
        forge_sig_binding(&bind, &p, &(struct forge_sig){ .type = 0x18, .created = c, .key_flags = 2, .embedded = &back }, &p, &sub);
        forge_put_key(&kb3, &p, false);
        forge_put_key(&kb3, &sub, true);
        forge_put_sig(&kb3, &bind);
        assert_int_equal(pgp_keyblock_sig_expiry(kb3.p, kb3.len, sub.fpr, c, &t), 0);
        assert_int_equal(t, c + 50);
        forge_buf_done(&kb3);
        /* Move subpacket 3 of the binding into the unhashed area by hand: hashed area [2][3][27][33]
         * becomes [2][27][33] and the unhashed one gets the 6 bytes. */
        struct forge_buf plain = {};
        forge_sig_binding(&plain, &p, &(struct forge_sig){ .type = 0x18, .created = c, .expire_secs = 60, .key_flags = 2 }, &p, &sub);
        uint8_t *b = plain.p;
        size_t hlen = (size_t)b[4] << 8 | b[5];
        assert_int_equal(b[6 + 6], 5);          /* length of subpacket 3 */
        assert_int_equal(b[6 + 7], 3);
        uint8_t moved[6];
        memcpy(moved, b + 12, 6);
        struct forge_buf re = {};
        forge_append(&re, b, 4);
        uint8_t l2[2] = { (uint8_t)((hlen - 6) >> 8), (uint8_t)(hlen - 6) };
        forge_append(&re, l2, 2);
        forge_append(&re, b + 6, 6);
        forge_append(&re, b + 18, hlen - 12);
        size_t ulen = (size_t)b[6 + hlen] << 8 | b[7 + hlen];
        uint8_t u2[2] = { (uint8_t)((ulen + 6) >> 8), (uint8_t)(ulen + 6) };
        forge_append(&re, u2, 2);
        forge_append(&re, moved, 6);
        forge_append(&re, b + 8 + hlen, plain.len - 8 - hlen);
        forge_put_key(&kb3, &p, false);
        forge_put_key(&kb3, &sub, true);
        forge_put_sig(&kb3, &re);
        assert_int_equal(pgp_keyblock_sig_expiry(kb3.p, kb3.len, sub.fpr, c, &t), 0);
        assert_int_equal(t, 0);
        forge_buf_done(&plain);
        forge_buf_done(&re);
        forge_buf_done(&kb3);
        forge_buf_done(&back);
        forge_buf_done(&bind);
        forge_buf_done(&kb);
        forge_buf_done(&kb2);
        forge_key_done(&p);
        forge_key_done(&sub);
        forge_key_done(&other);
}

/* pgp_key_weakness at its bounds (the parsed sizes are checked against gpg above). */
static void test_weakness(void **state) {
        (void)state;
        static const struct {
                uint8_t algo;
                unsigned bits;
                uint64_t e;
                const char *weak;
        } cases[] = {
                { PGP_PK_RSA, 2048, 65537, NULL },
                { PGP_PK_RSA, 4096, UINT64_MAX, NULL },
                { PGP_PK_RSA, 2047, 65537, "RSA with a 2047-bit modulus (at least 2048 bits are required)" },
                { PGP_PK_RSA, 1024, 65537, "RSA with a 1024-bit modulus (at least 2048 bits are required)" },
                { PGP_PK_RSA, 2048, 65535, "RSA with public exponent 65535 (at least 65537 is required)" },
                { PGP_PK_RSA, 4096, 3, "RSA with public exponent 3 (at least 65537 is required)" },
                { PGP_PK_RSA_S, 1536, 65537, "RSA with a 1536-bit modulus (at least 2048 bits are required)" },
                { PGP_PK_DSA, 2048, 0, NULL },
                { PGP_PK_DSA, 1024, 0, "DSA with a 1024-bit prime (at least 2048 bits are required)" },
                { PGP_PK_ELGAMAL, 1024, 0, "ElGamal with a 1024-bit prime (at least 2048 bits are required)" },
                { PGP_PK_EDDSA, 0, 0, NULL },
                { 19 /* ECDSA */, 0, 0, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct pgp_key k = { .pk_algo = cases[i].algo, .bits = cases[i].bits, .rsa_e = cases[i].e };
                char buf[160];
                const char *why = pgp_key_weakness(&k, buf, sizeof buf);
                print_message("%u %u %" PRIu64 ": %s\n", k.pk_algo, k.bits, k.rsa_e, why ? why : "ok");
                if (cases[i].weak)
                        assert_string_equal(why, cases[i].weak);
                else
                        assert_null(why);
        }
}

static void test_sig_parse(void **state) {
        (void)state;
        size_t len;
        struct pgp_sig s;
        _cleanup_free_ char *t = slurp("data.T.sig", &len), *ft = fpr("T");
        assert_int_equal(pgp_sig_parse(t, len, &s), 0);
        assert_int_equal(s.type, 0);
        assert_int_equal(s.pk_algo, PGP_PK_EDDSA);
        assert_string_equal(s.issuer_fpr, ft);
        assert_string_equal(s.issuer_keyid, ft + 24);
        assert_true(s.created > 1500000000);
        assert_false(s.has_expiry);
        assert_false(s.unknown_critical);
        assert_int_equal(s.mpi1_len, 32);
        assert_int_equal(s.mpi2_len, 32);
        pgp_sig_done(&s);

        _cleanup_free_ char *rs = slurp("data.RS.sig", &len);
        assert_int_equal(pgp_sig_parse(rs, len, &s), 0);
        assert_int_equal(s.pk_algo, PGP_PK_RSA);
        assert_int_equal(s.hash_algo, 10);      /* --digest-algo SHA512 */
        pgp_sig_done(&s);

        _cleanup_free_ char *ts = slurp("data.TS.sig", &len);
        assert_int_equal(pgp_sig_parse(ts, len, &s), 0);
        assert_true(s.has_expiry);
        pgp_sig_done(&s);

        /* Two signature packets, an armored signature, a key instead of a signature. */
        _cleanup_free_ char *tu = slurp("data.TU.sig", &len);
        assert_int_equal(pgp_sig_parse(tu, len, &s), -ENOTSUP);
        _cleanup_free_ char *asc = slurp("data.T.asc", &len);
        assert_int_equal(pgp_sig_parse(asc, len, &s), -EBADMSG);
        _cleanup_free_ char *key = slurp("keys.gpg", &len);
        assert_int_equal(pgp_sig_parse(key, len, &s), -ENOTSUP);
}

/* Check data.<sig> with key NAME's material; tamper flips a byte of the data first. */
static int check(const char *sigfile, const char *name, bool tamper, int64_t key_created_delta) {
        size_t dlen, slen, klen, n = 0;
        _cleanup_free_ char *data = slurp("data", &dlen), *sig = slurp(sigfile, &slen);
        _cleanup_free_ char *kbuf = slurp("keys.gpg", &klen), *f = fpr(name);
        struct pgp_key *keys = NULL;
        struct pgp_sig s;
        struct pgp_hash *h = NULL;
        assert_int_equal(pgp_keys_parse(kbuf, klen, &keys, &n), 0);
        assert_int_equal(pgp_sig_parse(sig, slen, &s), 0);
        struct pgp_key k = *find(keys, n, f);
        if (key_created_delta)
                k.created = s.created + key_created_delta;
        if (tamper)
                data[dlen - 2] ^= 1;
        assert_int_equal(pgp_hash_new(&s, &h), 0);
        /* In two pieces: the hash streams. */
        assert_int_equal(pgp_hash_update(h, data, 5), 0);
        assert_int_equal(pgp_hash_update(h, data + 5, dlen - 5), 0);
        int r = pgp_verify(&k, &s, h);
        pgp_hash_free(h);
        pgp_sig_done(&s);
        pgp_keys_free(keys, n);
        return r;
}

static void test_verify(void **state) {
        (void)state;
        assert_int_equal(check("data.T.sig", "T", false, 0), 0);
        assert_int_equal(check("data.K.sig", "Ksub", false, 0), 0);
        assert_int_equal(check("data.RS.sig", "RS", false, 0), 0);
        assert_int_equal(check("data.RS256.sig", "RS", false, 0), 0);
        /* Altered data. */
        assert_int_equal(check("data.T.sig", "T", true, 0), -EBADMSG);
        assert_int_equal(check("data.RS.sig", "RS", true, 0), -EBADMSG);
        /* The right algorithm but another key; another algorithm; a key without material. */
        assert_int_equal(check("data.T.sig", "K", false, 0), -EBADMSG);
        assert_int_equal(check("data.T.sig", "RS", false, 0), -ENOTSUP);
        assert_int_equal(check("data.RW.sig", "RW", false, 0), -ENOTSUP);
        /* A signature older than its key. */
        assert_int_equal(check("data.T.sig", "T", false, 1), -EBADMSG);
}

/* Flip every bit of the signature in sigfile, one at a time, and check each mutant against the key
 * NAME over the data, asserting what each region of the packet must give:
 *   hashed area (version .. hashed subpackets)  parses or not; if it parses, pgp_verify refuses it
 *                                               with -EBADMSG (-ENOTSUP for the algorithm bytes:
 *                                               another key algorithm, another hash);
 *   the digest's left 16 bits                   parses, and is refused with -EBADMSG;
 *   the signature values (MPI bytes)            refused with -EBADMSG when it parses;
 *   framing, unhashed area, MPI bit counts      may still verify, but then only with every checked
 *                                               field equal to the original's.
 * Parsing returns only -EBADMSG or -ENOTSUP. The counts show the loop reached pgp_verify. */
static void flip_every_bit(const char *sigfile, const char *name) {
        size_t dlen, slen, klen, n = 0;
        _cleanup_free_ char *data = slurp("data", &dlen), *sig = slurp(sigfile, &slen), *f = fpr(name);
        _cleanup_free_ char *kbuf = slurp("keys.gpg", &klen);
        struct pgp_key *keys = NULL;
        assert_int_equal(pgp_keys_parse(kbuf, klen, &keys, &n), 0);
        const struct pgp_key *k = find(keys, n, f);
        assert_non_null(k);
        struct pgp_sig orig;
        assert_int_equal(pgp_sig_parse(sig, slen, &orig), 0);
        /* The regions of the packet, from the original's parse. */
        const uint8_t *u8 = (const uint8_t *)sig;
        size_t hashed_off = (size_t)(orig.hashed - u8), hashed_end = hashed_off + orig.hashed_len;
        size_t ulen = (size_t)u8[hashed_end] << 8 | u8[hashed_end + 1];
        size_t left16_off = hashed_end + 2 + ulen, mpi_off = left16_off + 2;
        assert_memory_equal(u8 + left16_off, orig.left16, 2);
        /* The MPIs' bit-count bytes (2 before each value); the rest of the tail is value bytes. */
        size_t count_at[2], n_counts = 0;
        for (size_t at = mpi_off; at + 2 <= slen && n_counts < 2; n_counts++) {
                count_at[n_counts] = at;
                at += 2 + ((size_t)u8[at] << 8 | u8[at + 1]) / 8 + ((u8[at + 1] & 7) != 0);
        }
        assert_int_equal(n_counts, orig.pk_algo == PGP_PK_EDDSA ? 2 : 1);
        _cleanup_free_ uint8_t *hashed = malloc(orig.hashed_len);
        assert_non_null(hashed);
        memcpy(hashed, orig.hashed, orig.hashed_len);   /* orig.hashed points into sig, which changes */

        unsigned parsed = 0, refused_hashed = 0, refused_values = 0, still_valid = 0;
        for (size_t at = 0; at < slen; at++)
                for (unsigned bit = 0; bit < 8; bit++) {
                        struct pgp_sig s;
                        sig[at] ^= (char)(1u << bit);
                        int r = pgp_sig_parse(sig, slen, &s);
                        bool in_hashed = at >= hashed_off && at < hashed_end;
                        bool in_left16 = at >= left16_off && at < mpi_off;
                        bool in_count = false;
                        for (size_t c = 0; c < n_counts; c++)
                                in_count |= at == count_at[c] || at == count_at[c] + 1;
                        bool in_values = at >= mpi_off && !in_count;
                        if (r != 0) {
                                if (r != -EBADMSG && r != -ENOTSUP)
                                        fail_msg("%s: bit %u of byte %zu: pgp_sig_parse gave %d", sigfile, bit, at, r);
                                assert_false(in_left16);        /* left16 is not parsed, only compared */
                                sig[at] ^= (char)(1u << bit);
                                continue;
                        }
                        parsed++;
                        struct pgp_hash *h = NULL;
                        int v = pgp_hash_new(&s, &h);
                        if (v == 0) {
                                assert_int_equal(pgp_hash_update(h, data, dlen), 0);
                                v = pgp_verify(k, &s, h);
                                pgp_hash_free(h);
                        }
                        if (in_hashed) {
                                size_t i = at - hashed_off;
                                if (i == 2 || i == 3 ? v != -ENOTSUP && v != -EBADMSG : v != -EBADMSG)
                                        fail_msg("%s: bit %u of hashed byte %zu: pgp_verify gave %d, want -EBADMSG%s",
                                                 sigfile, bit, i, v, i == 2 || i == 3 ? " or -ENOTSUP" : "");
                                refused_hashed++;
                        } else if (in_left16 || in_values) {
                                if (v != -EBADMSG)
                                        fail_msg("%s: bit %u of byte %zu (%s): pgp_verify gave %d, want -EBADMSG", sigfile,
                                                 bit, at, in_left16 ? "left16" : "signature value", v);
                                refused_values++;
                        } else if (v == 0) {
                                /* outside what is signed and outside the values: the checked fields
                                 * must be the original's */
                                still_valid++;
                                assert_int_equal(s.hashed_len, orig.hashed_len);
                                assert_memory_equal(s.hashed, hashed, orig.hashed_len);
                                assert_memory_equal(s.left16, orig.left16, 2);
                                assert_int_equal(s.mpi1_len, orig.mpi1_len);
                                assert_memory_equal(s.mpi1, orig.mpi1, orig.mpi1_len);
                                if (orig.mpi2)
                                        assert_memory_equal(s.mpi2, orig.mpi2, orig.mpi2_len);
                        } else if (v != -EBADMSG && v != -ENOTSUP)
                                fail_msg("%s: bit %u of byte %zu: pgp_verify gave %d", sigfile, bit, at, v);
                        pgp_sig_done(&s);
                        sig[at] ^= (char)(1u << bit);
                }
        print_message("%s: %zu bytes, %u of %zu one-bit changes parse; refused: %u in the hashed area, %u in "
                      "left16 and values; %u still verify (framing, unhashed area, bit counts)\n",
                      sigfile, slen, parsed, slen * 8, refused_hashed, refused_values, still_valid);
        /* Not vacuous: most changes of signed bytes parse and reach pgp_verify, and every change of
         * left16 and of the values does. */
        assert_true(refused_hashed >= orig.hashed_len * 8 / 2);
        assert_int_equal(refused_values, (slen - mpi_off - 2 * n_counts) * 8 + 16);
        pgp_sig_done(&orig);
        pgp_keys_free(keys, n);
}

static void test_hostile(void **state) {
        (void)state;
        /* Every truncation of a signature is malformed (-EBADMSG), never a crash or a read past
         * the end (the copy is exactly as long as the cut; SANITIZE=1 checks the bounds). */
        static const char *const sigs[] = { "data.T.sig", "data.RS.sig", "data.K.sig" };
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
                size_t len;
                _cleanup_free_ char *sig = slurp(sigs[i], &len);
                struct pgp_sig s;
                for (size_t cut = 0; cut < len; cut++) {
                        _cleanup_free_ char *copy = malloc(cut ? cut : 1);
                        assert_non_null(copy);
                        memcpy(copy, sig, cut);
                        int r = pgp_sig_parse(copy, cut, &s);
                        if (r != -EBADMSG)
                                fail_msg("%s cut to %zu bytes: pgp_sig_parse gave %d, want -EBADMSG", sigs[i], cut, r);
                }
        }
        /* Keys: every truncation and a changed byte every 3 parse or are malformed, nothing else. */
        size_t klen;
        _cleanup_free_ char *kbuf = slurp("keys.gpg", &klen);
        for (size_t cut = 0; cut < klen; cut += 7) {
                struct pgp_key *keys = NULL;
                size_t n = 0;
                int r = pgp_keys_parse(kbuf, cut, &keys, &n);
                if (r == 0) {
                        assert_true(n <= 6);
                        pgp_keys_free(keys, n);
                } else
                        assert_int_equal(r, -EBADMSG);
                int64_t until = -1;
                _cleanup_free_ char *fk = fpr("K");
                r = pgp_keyblock_sig_expiry(kbuf, cut, fk, 0, &until);
                if (r == 0)
                        assert_int_equal(until, 0);     /* gpg makes no signature expirations on keys */
                else if (r != -ENOENT)
                        assert_int_equal(r, -EBADMSG);
        }
        for (size_t at = 0; at < klen; at += 3) {
                struct pgp_key *keys = NULL;
                size_t n = 0;
                kbuf[at] ^= 0x55;
                int r = pgp_keys_parse(kbuf, klen, &keys, &n);
                if (r == 0)
                        pgp_keys_free(keys, n);
                else
                        assert_int_equal(r, -EBADMSG);
                int64_t until = -1;
                _cleanup_free_ char *fk = fpr("Ksub");
                r = pgp_keyblock_sig_expiry(kbuf, klen, fk, 0, &until);
                if (r == 0)
                        assert_true(until >= 0);        /* a flipped byte may make one up */
                else if (r != -ENOENT)
                        assert_int_equal(r, -EBADMSG);
                kbuf[at] ^= 0x55;
        }
        /* Signatures: every bit of an Ed25519, an RSA and a subkey's signature. */
        flip_every_bit("data.T.sig", "T");
        flip_every_bit("data.RS.sig", "RS");
        flip_every_bit("data.K.sig", "Ksub");
}

/* Rebuild the signature packet sig (as gpg writes it: an old-format header) with another
 * unhashed area and, when zero_r, an EdDSA r of 0; emitted with a new-format header. */
static size_t rebuild(const uint8_t *sig, size_t len, const uint8_t *unhashed, size_t ulen, bool zero_r,
                      uint8_t *out) {
        size_t hl = (sig[0] & 3) == 0 ? 2 : (sig[0] & 3) == 1 ? 3 : 5;
        const uint8_t *b = sig + hl;
        size_t hlen = (size_t)b[4] << 8 | b[5];
        size_t head = 6 + hlen;                         /* version .. hashed subpackets */
        size_t old_ulen = (size_t)b[head] << 8 | b[head + 1];
        const uint8_t *rest = b + head + 2 + old_ulen;  /* left16 and the MPIs */
        size_t rlen = len - hl - head - 2 - old_ulen;
        uint8_t body[4096];
        size_t n = 0;
        memcpy(body, b, head);
        n = head;
        body[n++] = (uint8_t)(ulen >> 8);
        body[n++] = (uint8_t)ulen;
        memcpy(body + n, unhashed, ulen);
        n += ulen;
        if (zero_r) {
                /* left16, then r := the empty MPI, then s as it was */
                size_t rbits = (size_t)rest[2] << 8 | rest[3], rbytes = (rbits + 7) / 8;
                memcpy(body + n, rest, 2);
                n += 2;
                body[n++] = 0;
                body[n++] = 0;
                memcpy(body + n, rest + 4 + rbytes, rlen - 4 - rbytes);
                n += rlen - 4 - rbytes;
        } else {
                memcpy(body + n, rest, rlen);
                n += rlen;
        }
        size_t o = 0;
        out[o++] = 0xc2;                                /* new format, tag 2 */
        if (n < 192)
                out[o++] = (uint8_t)n;
        else {
                out[o++] = (uint8_t)(((n - 192) >> 8) + 192);
                out[o++] = (uint8_t)((n - 192) & 0xff);
        }
        memcpy(out + o, body, n);
        return o + n;
}

static void test_ambiguous(void **state) {
        (void)state;
        size_t len;
        _cleanup_free_ char *sig = slurp("data.T.sig", &len), *t = fpr("T"), *rs = fpr("RS");
        uint8_t kt[8], krs[8];
        for (int i = 0; i < 8; i++) {
                (void)sscanf(t + 24 + 2 * i, "%2hhx", &kt[i]);
                (void)sscanf(rs + 24 + 2 * i, "%2hhx", &krs[i]);
        }
        uint8_t area[64], out[4096];
        struct pgp_sig s;
        /* As gpg writes it, rebuilt with a new-format header: fine. */
        size_t a = 0;
        area[a++] = 9;
        area[a++] = 16;
        memcpy(area + a, kt, 8);
        a += 8;
        size_t n = rebuild((const uint8_t *)sig, len, area, a, false, out);
        assert_int_equal(pgp_sig_parse(out, n, &s), 0);
        assert_false(s.ambiguous);
        assert_string_equal(s.issuer_fpr, t);
        {
                /* ... and it still verifies: the rebuild kept what is signed. */
                size_t dlen, klen, nk = 0;
                _cleanup_free_ char *data = slurp("data", &dlen), *kbuf = slurp("keys.gpg", &klen);
                struct pgp_key *keys = NULL;
                struct pgp_hash *h = NULL;
                assert_int_equal(pgp_keys_parse(kbuf, klen, &keys, &nk), 0);
                assert_int_equal(pgp_hash_new(&s, &h), 0);
                assert_int_equal(pgp_hash_update(h, data, dlen), 0);
                assert_int_equal(pgp_verify(find(keys, nk, t), &s, h), 0);
                pgp_hash_free(h);
                pgp_keys_free(keys, nk);
        }
        pgp_sig_done(&s);
        /* No unhashed area at all: the hashed fingerprint suffices. */
        n = rebuild((const uint8_t *)sig, len, area, 0, false, out);
        assert_int_equal(pgp_sig_parse(out, n, &s), 0);
        assert_false(s.ambiguous);
        pgp_sig_done(&s);
        /* The issuer key ID twice; another key's ID; a second issuer fingerprint: left to gpg. */
        memcpy(area + a, area, 10);
        n = rebuild((const uint8_t *)sig, len, area, a + 10, false, out);
        assert_int_equal(pgp_sig_parse(out, n, &s), 0);
        assert_true(s.ambiguous);
        pgp_sig_done(&s);
        memcpy(area + 2, krs, 8);
        n = rebuild((const uint8_t *)sig, len, area, 10, false, out);
        assert_int_equal(pgp_sig_parse(out, n, &s), 0);
        assert_true(s.ambiguous);
        pgp_sig_done(&s);
        uint8_t fprsub[23] = { 22, 33, 4 };
        for (int i = 0; i < 20; i++)
                (void)sscanf(t + 2 * i, "%2hhx", &fprsub[3 + i]);
        n = rebuild((const uint8_t *)sig, len, fprsub, sizeof fprsub, false, out);
        assert_int_equal(pgp_sig_parse(out, n, &s), 0);
        assert_true(s.ambiguous);
        pgp_sig_done(&s);
        /* r = 0: refused outright, as gpg refuses it. */
        memcpy(area + 2, kt, 8);
        n = rebuild((const uint8_t *)sig, len, area, 10, true, out);
        assert_int_equal(pgp_sig_parse(out, n, &s), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keys),
                cmocka_unit_test(test_weakness),
                cmocka_unit_test(test_keyblock_expiry),
                cmocka_unit_test(test_sig_parse),
                cmocka_unit_test(test_verify),
                cmocka_unit_test(test_hostile),
                cmocka_unit_test(test_ambiguous),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
