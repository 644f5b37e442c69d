/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/verify: every decision of the trust model against throwaway keys made by
 * tests/tools/mkkeys.sh (trusted, unknown, expired, revoked keys; a pacman-style keyring with
 * master keys, certified and uncertified packagers and a -revoked list), hostile signatures, and
 * the real Arch keyring when `make keys` provided it. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gpgme.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctx.h"
#include "helpers.h"
#include "pgp-forge.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "verify.h"

static struct {
        char dir[64];                   /* the test's temp dir (also TMPDIR for the gpg homes) */
        struct verify_keyring *simple;  /* no -trusted file: every key is an anchor */
        struct verify_keyring *pacman;  /* -trusted / -revoked */
} S;

static char *path_of(const char *name) {
        char *p = fs_path_join(S.dir, name);
        assert_non_null(p);
        return p;
}

static char *slurp(const char *name, size_t *len) { return th_read_file_ok(S.dir, name, len); }

static char *fpr(const char *key) {
        char name[32];
        (void)snprintf(name, sizeof name, "fpr.%s", key);
        char *f = slurp(name, NULL);
        f[strcspn(f, "\n")] = 0;
        assert_int_equal(strlen(f), 40);
        return f;
}

/* Verify data with data.<sig> against keyring k; check the code and a message substring. */
static void expect_detached(struct verify_keyring *k, const char *sigfile, int code, const char *needle,
                            const char *needle2) {
        size_t dlen, slen;
        _cleanup_free_ char *data = slurp("data", &dlen);
        _cleanup_free_ char *sig = slurp(sigfile, &slen);
        struct mkm_err err = {};
        struct verify_result res = {};
        int r = verify_detached(k, data, dlen, sig, slen, &res, &err);
        print_message("%s: %d %s\n", sigfile, r, err.msg);
        assert_int_equal(r, code);
        if (code < 0) {
                assert_int_equal(err.code, code);
                assert_non_null(strstr(err.msg, needle));
                if (needle2)
                        assert_non_null(strstr(err.msg, needle2));
        } else {
                assert_string_equal(res.fingerprint, needle);
                assert_non_null(strstr(res.uid, needle2));
                assert_true(res.created > 1500000000);
        }
}

static int run_script(const char *script, const char *arg) {
        pid_t pid = fork();
        if (pid == 0) {
                execl("/bin/bash", "bash", script, arg, (char *)NULL);
                _exit(127);
        }
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) < 0)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int setup_keys(void);

static int group_setup(void **state) {
        (void)state;
        if (!gpgme_check_version(NULL))
                return -1;
        (void)snprintf(S.dir, sizeof S.dir, "/tmp/mkm-test-verify.XXXXXX");
        if (!mkdtemp(S.dir))
                return -1;
        /* cmocka skips the group teardown when the setup fails: clean up here then. */
        int r = setup_keys();
        if (r < 0) {
                S.simple = verify_keyring_free(S.simple);
                S.pacman = verify_keyring_free(S.pacman);
                (void)fs_rm_rf_at(AT_FDCWD, S.dir);
        }
        return r;
}

static int setup_keys(void) {
        /* The gpg homes go below our dir, so the tests can check that none is left behind. */
        if (setenv("TMPDIR", S.dir, 1) < 0)
                return -1;
        const char *top = getenv("TOP");
        char script[4096];
        (void)snprintf(script, sizeof script, "%s/tests/tools/mkkeys.sh", top ? top : ".");
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (run_script(script, S.dir) != 0) {
                fprintf(stderr, "%s %s failed\n", script, S.dir);
                return -1;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        print_message("mkkeys.sh: %.2f s\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);

        struct mkm_err err = {};
        _cleanup_free_ char *simple = path_of("simple"), *pacman = path_of("pacman");
        if (verify_keyring_new(NULL, simple, &S.simple, &err) < 0 ||
            verify_keyring_new(NULL, pacman, &S.pacman, &err) < 0) {
                fprintf(stderr, "keyring: %s\n", err.msg);
                return -1;
        }
        return 0;
}

static int group_teardown(void **state) {
        (void)state;
        S.simple = verify_keyring_free(S.simple);
        S.pacman = verify_keyring_free(S.pacman);
        (void)fs_rm_rf_at(AT_FDCWD, S.dir);
        return 0;
}

static void test_good_binary(void **state) {
        (void)state;
        _cleanup_free_ char *t = fpr("T");
        expect_detached(S.simple, "data.T.sig", 0, t, "T test key");
        assert_int_equal(verify_keyring_count(S.simple), 5);
}

static void test_good_armored(void **state) {
        (void)state;
        _cleanup_free_ char *t = fpr("T"), *s = fpr("S");
        expect_detached(S.simple, "data.T.asc", 0, t, "T test key");
        /* S comes from the armored keyring file more.asc. */
        expect_detached(S.simple, "data.S.sig", 0, s, "S test key");
}

static void test_subkey(void **state) {
        (void)state;
        /* Made by K's signing subkey: accepted, and the result names the primary key. */
        _cleanup_free_ char *k = fpr("K"), *sub = fpr("Ksub");
        assert_string_not_equal(k, sub);
        expect_detached(S.simple, "data.K.sig", 0, k, "K test key");
}

static void test_multiple_signatures(void **state) {
        (void)state;
        /* Signed by T (trusted) and U (unknown): one good trusted signature and none bad suffices. */
        _cleanup_free_ char *t = fpr("T");
        expect_detached(S.simple, "data.TU.sig", 0, t, "T test key");
        /* A good signature by T next to a bad one by S: one bad signature fails the whole. */
        size_t dlen, tlen, slen;
        _cleanup_free_ char *data = slurp("data", &dlen), *ts = slurp("data.T.sig", &tlen), *ss = slurp("data.S.sig", &slen);
        _cleanup_free_ char *both = malloc(tlen + slen), *s = fpr("S");
        assert_non_null(both);
        memcpy(both, ts, tlen);
        memcpy(both + tlen, ss, slen);
        struct mkm_err err = {};
        assert_int_equal(verify_detached(S.simple, data, dlen, both, tlen + slen, NULL, &err), 0);
        both[tlen + slen - 1] ^= 1;
        assert_int_equal(verify_detached(S.simple, data, dlen, both, tlen + slen, NULL, &err), -MKM_E_SIG_BAD);
        print_message("%s\n", err.msg);
        assert_non_null(strstr(err.msg, "bad signature by key"));
        assert_non_null(strstr(err.msg, s));
}

static void test_tampered_data(void **state) {
        (void)state;
        size_t dlen, slen;
        _cleanup_free_ char *data = slurp("data", &dlen), *sig = slurp("data.T.sig", &slen);
        _cleanup_free_ char *t = fpr("T");
        data[3] ^= 1;
        struct mkm_err err = {};
        assert_int_equal(verify_detached(S.simple, data, dlen, sig, slen, NULL, &err), -MKM_E_SIG_BAD);
        print_message("%s\n", err.msg);
        assert_non_null(strstr(err.msg, "bad signature by key"));
        assert_non_null(strstr(err.msg, "altered"));
        assert_non_null(strstr(err.msg, t));
        /* One byte more is also a change. */
        data[3] ^= 1;
        assert_int_equal(verify_detached(S.simple, data, dlen - 1, sig, slen, NULL, &err), -MKM_E_SIG_BAD);
        assert_non_null(strstr(err.msg, "bad signature by key"));
}

static void test_tampered_signature(void **state) {
        (void)state;
        size_t dlen, slen;
        _cleanup_free_ char *data = slurp("data", &dlen), *sig = slurp("data.T.sig", &slen);
        sig[slen - 1] ^= 0x01;  /* inside the EdDSA 's' value */
        struct mkm_err err = {};
        assert_int_equal(verify_detached(S.simple, data, dlen, sig, slen, NULL, &err), -MKM_E_SIG_BAD);
        print_message("%s\n", err.msg);
        assert_string_equal(mkm_strerror(err.code), "bad signature");
        assert_non_null(strstr(err.msg, "bad signature"));
}

static void test_unknown_key(void **state) {
        (void)state;
        _cleanup_free_ char *u = fpr("U"), *t = fpr("T");
        /* The key id (last 16 digits) is in the message whether gpg reports the id or the fingerprint. */
        expect_detached(S.simple, "data.U.sig", -MKM_E_SIG_UNTRUSTED, "signed by unknown key", u + 24);
        /* T is not in the pacman-style keyring. */
        expect_detached(S.pacman, "data.T.sig", -MKM_E_SIG_UNTRUSTED, "signed by unknown key", t + 24);
}

static void test_expired(void **state) {
        (void)state;
        _cleanup_free_ char *e = fpr("E"), *t = fpr("T");
        expect_detached(S.simple, "data.E.sig", -MKM_E_SIG_EXPIRED, "signed by expired key", e);
        expect_detached(S.simple, "data.TS.sig", -MKM_E_SIG_EXPIRED, "signature by key", "expired on 2019-01-02");
        expect_detached(S.simple, "data.TS.sig", -MKM_E_SIG_EXPIRED, t, NULL);
}

static void test_revoked(void **state) {
        (void)state;
        _cleanup_free_ char *r = fpr("R");
        expect_detached(S.simple, "data.R.sig", -MKM_E_SIG_REVOKED, "signed by revoked key", r);
}

static void test_pacman_trust(void **state) {
        (void)state;
        _cleanup_free_ char *pg = fpr("PG"), *pw = fpr("PW"), *pn = fpr("PN"), *x = fpr("X");
        /* Certified by all three level-4 (marginal) masters: valid. */
        expect_detached(S.pacman, "data.PG.sig", 0, pg, "PG test key");
        /* Certified by one master only: marginal validity, not enough. */
        expect_detached(S.pacman, "data.PW.sig", -MKM_E_SIG_UNTRUSTED, "is not trusted (validity marginal", pw);
        /* Not certified at all. */
        expect_detached(S.pacman, "data.PN.sig", -MKM_E_SIG_UNTRUSTED, "is not trusted (validity", pn);
        /* Fully certified but on the -revoked list. */
        expect_detached(S.pacman, "data.X.sig", -MKM_E_SIG_REVOKED, "which the keyring lists as revoked", x);
        assert_int_equal(verify_keyring_count(S.pacman), 7);   /* the local trust root is not counted */
}

static void test_garbage_and_empty(void **state) {
        (void)state;
        size_t dlen;
        _cleanup_free_ char *data = slurp("data", &dlen);
        struct mkm_err err = {};
        static const char garbage[] = "this is not a signature at all\n\x01\x02\x03";
        assert_int_equal(verify_detached(S.simple, data, dlen, garbage, sizeof garbage, NULL, &err), -MKM_E_SIG_BAD);
        assert_string_equal(err.msg, "bad signature: the detached signature is not an OpenPGP signature (no signature packets found)");
        assert_int_equal(verify_detached(S.simple, data, dlen, "", 0, NULL, &err), -MKM_E_SIG_MISSING);
        assert_string_equal(err.msg, "signature missing: the signature is empty");
        /* A clearsigned message is not a detached signature (gpg: "not a detached signature"). */
        size_t clen;
        _cleanup_free_ char *clear = slurp("inrelease.T", &clen);
        assert_int_equal(verify_detached(S.simple, data, dlen, clear, clen, NULL, &err), -MKM_E_SIG_BAD);
        print_message("clearsigned as detached: %s\n", err.msg);
        assert_non_null(strstr(err.msg, "bad signature"));
        /* Oversized signature. */
        _cleanup_free_ char *big = calloc(1, VERIFY_MAX_SIG + 1);
        assert_non_null(big);
        assert_int_equal(verify_detached(S.simple, data, dlen, big, VERIFY_MAX_SIG + 1, NULL, &err), -MKM_E_SIG_BAD);
        assert_string_equal(err.msg, "bad signature: 1048577 bytes, more than the 1048576 a signature may have");
}

static void test_fd(void **state) {
        (void)state;
        size_t slen;
        _cleanup_free_ char *sig = slurp("data.T.sig", &slen), *p = path_of("data"), *t = fpr("T");
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        struct verify_result res = {};
        struct mkm_err err = {};
        assert_int_equal(verify_detached_fd(S.simple, fd, sig, slen, &res, &err), 0);
        assert_string_equal(res.fingerprint, t);
        /* The fd from a later offset: the data differs, so the signature is bad. */
        assert_int_equal(lseek(fd, 1, SEEK_SET), 1);
        assert_int_equal(verify_detached_fd(S.simple, fd, sig, slen, &res, &err), -MKM_E_SIG_BAD);
        assert_non_null(strstr(err.msg, "bad signature by key"));
}

/* ---- the native fast path ---- */

/* Verify data.<sigfile> (in memory or, with fd, from the file) against k; return the result. */
static int check_sig(struct verify_keyring *k, const char *sigfile, bool by_fd, bool tamper,
                     struct verify_result *res, struct mkm_err *err) {
        size_t dlen, slen;
        _cleanup_free_ char *data = slurp("data", &dlen), *sig = slurp(sigfile, &slen);
        if (tamper)
                data[dlen / 2] ^= 0x20;
        if (!by_fd)
                return verify_detached(k, data, dlen, sig, slen, res, err);
        _cleanup_free_ char *p = path_of("data.copy");
        assert_int_equal(fs_write_file_at(AT_FDCWD, p, data, dlen, 0644), 0);
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        return verify_detached_fd(k, fd, sig, slen, res, err);
}

static void expect_stats(struct verify_keyring *k, unsigned native, unsigned gpg) {
        unsigned n = 99, g = 99;
        verify_keyring_stats(k, &n, &g);
        print_message("  stats: %u native, %u gpg (want %u, %u)\n", n, g, native, gpg);
        assert_int_equal(n, native);
        assert_int_equal(g, gpg);
}

static void test_fast_path(void **state) {
        (void)state;
        /* Per key kind: the first good signature goes to gpg, the next ones are checked natively,
         * with the very same result; an altered file falls back to gpg and its message. */
        static const struct {
                const char *sig, *key, *uid;
        } cases[] = {
                { "data.T.sig", "T", "T test key" },            /* Ed25519 primary key */
                { "data.K.sig", "K", "K test key" },            /* Ed25519 signing subkey */
                { "data.RS.sig", "RS", "RS test key" },         /* RSA 2048, SHA-512 */
                { "data.RS256.sig", "RS", "RS test key" },      /* the same key, SHA-256 */
        };
        _cleanup_free_ char *dir = path_of("fast");
        struct mkm_err err = {};
        _cleanup_(verify_keyring_freep) struct verify_keyring *k = NULL;
        assert_int_equal(verify_keyring_new(NULL, dir, &k, &err), 0);
        unsigned native = 0, gpg = 0;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *f = fpr(cases[i].key);
                struct verify_result first = {}, again = {}, byfd = {};
                print_message("%s\n", cases[i].sig);
                assert_int_equal(check_sig(k, cases[i].sig, false, false, &first, &err), 0);
                /* RS256 comes after RS: its key is known by then. */
                bool known = i == 3;
                known ? native++ : gpg++;
                expect_stats(k, native, gpg);
                assert_int_equal(check_sig(k, cases[i].sig, false, false, &again, &err), 0);
                expect_stats(k, ++native, gpg);
                assert_int_equal(check_sig(k, cases[i].sig, true, false, &byfd, &err), 0);
                expect_stats(k, ++native, gpg);
                assert_string_equal(first.fingerprint, f);
                assert_non_null(strstr(first.uid, cases[i].uid));
                assert_memory_equal(&first, &again, sizeof first);
                assert_memory_equal(&first, &byfd, sizeof first);
                /* Altered data: not accepted natively, and gpg says why, as without the fast path. */
                for (int by_fd = 0; by_fd < 2; by_fd++) {
                        assert_int_equal(check_sig(k, cases[i].sig, by_fd, true, NULL, &err), -MKM_E_SIG_BAD);
                        assert_non_null(strstr(err.msg, "bad signature by key"));
                        assert_non_null(strstr(err.msg, f));
                        expect_stats(k, native, gpg);
                }
        }
        _cleanup_free_ char *ksub = fpr("Ksub");
        struct verify_result res = {};
        assert_int_equal(check_sig(k, "data.K.sig", false, false, &res, &err), 0);
        assert_string_equal(res.signing_key, ksub);
        native++;
        /* An altered signature value, an armored signature, two signatures in one file: gpg. */
        size_t dlen, slen;
        _cleanup_free_ char *data = slurp("data", &dlen), *sig = slurp("data.T.sig", &slen);
        sig[slen - 1] ^= 0x01;
        assert_int_equal(verify_detached(k, data, dlen, sig, slen, NULL, &err), -MKM_E_SIG_BAD);
        sig[slen - 1] ^= 0x01;
        assert_int_equal(verify_detached(k, data, dlen - 1, sig, slen, NULL, &err), -MKM_E_SIG_BAD);
        expect_stats(k, native, gpg);
        assert_int_equal(check_sig(k, "data.T.asc", false, false, &res, &err), 0);
        expect_stats(k, native, ++gpg);
        /* A clone shares what the original learnt. */
        struct verify_keyring *c = NULL;
        assert_int_equal(verify_keyring_clone(k, &c), 0);
        assert_int_equal(check_sig(c, "data.RS.sig", true, false, &res, &err), 0);
        expect_stats(k, ++native, gpg);
        verify_keyring_free(c);
}

static void test_fast_path_refusals(void **state) {
        (void)state;
        /* Keys gpg refuses never reach the fast path: every verdict stays gpg's, on every try. */
        struct mkm_err err = {};
        struct verify_result res = {};
        _cleanup_free_ char *pdir = path_of("pacman");
        _cleanup_(verify_keyring_freep) struct verify_keyring *p = NULL;
        assert_int_equal(verify_keyring_new(NULL, pdir, &p, &err), 0);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(check_sig(p, "data.PW.sig", false, false, NULL, &err), -MKM_E_SIG_UNTRUSTED);
                assert_int_equal(check_sig(p, "data.X.sig", false, false, NULL, &err), -MKM_E_SIG_REVOKED);
                assert_int_equal(check_sig(p, "data.PN.sig", false, false, NULL, &err), -MKM_E_SIG_UNTRUSTED);
        }
        expect_stats(p, 0, 0);
        assert_int_equal(check_sig(p, "data.PG.sig", false, false, &res, &err), 0);
        assert_int_equal(check_sig(p, "data.PG.sig", true, false, &res, &err), 0);
        expect_stats(p, 1, 1);
        /* An expired signature by a key the fast path knows: gpg, which refuses it. */
        _cleanup_free_ char *sdir = path_of("simple");
        _cleanup_(verify_keyring_freep) struct verify_keyring *s = NULL;
        assert_int_equal(verify_keyring_new(NULL, sdir, &s, &err), 0);
        assert_int_equal(check_sig(s, "data.T.sig", false, false, &res, &err), 0);
        assert_int_equal(check_sig(s, "data.TS.sig", false, false, NULL, &err), -MKM_E_SIG_EXPIRED);
        assert_int_equal(check_sig(s, "data.E.sig", false, false, NULL, &err), -MKM_E_SIG_EXPIRED);
        assert_int_equal(check_sig(s, "data.R.sig", false, false, NULL, &err), -MKM_E_SIG_REVOKED);
        assert_int_equal(check_sig(s, "data.R.sig", false, false, NULL, &err), -MKM_E_SIG_REVOKED);
        expect_stats(s, 0, 1);
}

/* A key made to expire `lifetime` seconds from now, its keyring and the first verification;
 * false when the key had expired before that (a machine too loaded for the lifetime). */
static bool expiring_key(int lifetime, struct verify_keyring **ret_k, struct verify_result *res, char **ret_data,
                         size_t *dlen, char **ret_sig, size_t *slen, char **ret_fpr) {
        _cleanup_free_ char *out = path_of("exp"), *script = NULL;
        const char *top = getenv("TOP");
        assert_true(asprintf(&script, "%s/tests/tools/mkkeys.sh", top ? top : ".") > 0);
        (void)fs_rm_rf_at(AT_FDCWD, out);
        pid_t pid = fork();
        if (pid == 0) {
                char secs[16];
                (void)snprintf(secs, sizeof secs, "%d", lifetime);
                execl("/bin/bash", "bash", script, "--expiring", out, secs, (char *)NULL);
                _exit(127);
        }
        int status;
        assert_true(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        time_t made = time(NULL);
        *ret_data = slurp("exp/data", dlen);
        *ret_sig = slurp("exp/data.EX.sig", slen);
        _cleanup_free_ char *dir = path_of("exp/expiring");
        *ret_fpr = slurp("exp/fpr.EX", NULL);
        (*ret_fpr)[strcspn(*ret_fpr, "\n")] = 0;
        struct mkm_err err = {};
        assert_int_equal(verify_keyring_new(NULL, dir, ret_k, &err), 0);
        int r = verify_detached(*ret_k, *ret_data, *dlen, *ret_sig, *slen, res, &err);
        if (r == -MKM_E_SIG_EXPIRED) {
                print_message("the key expired before its first use (lifetime %d s): again, longer\n", lifetime);
                *ret_k = verify_keyring_free(*ret_k);
                free(*ret_data);
                free(*ret_sig);
                free(*ret_fpr);
                return false;
        }
        assert_int_equal(r, 0);
        assert_true(res->key_expires > (int64_t)made - 5 && res->key_expires <= (int64_t)made + lifetime + 1);
        return true;
}

static void test_fast_path_expiry(void **state) {
        (void)state;
        /* A key that expires while the keyring is in use: accepted in-process until then, and
         * after that refused as gpg refuses it. The lifetime doubles (from 8 s) when the machine
         * was too loaded for the key to be still valid at its first use. */
        struct mkm_err err = {};
        struct verify_result res = {};
        _cleanup_(verify_keyring_freep) struct verify_keyring *k = NULL;
        char *data = NULL, *sig = NULL, *f = NULL;
        size_t dlen = 0, slen = 0;
        int lifetime = 8;
        while (!expiring_key(lifetime, &k, &res, &data, &dlen, &sig, &slen, &f)) {
                lifetime *= 2;
                assert_true(lifetime <= 64);
        }
        assert_int_equal(verify_detached(k, data, dlen, sig, slen, &res, &err), 0);
        expect_stats(k, 1, 1);
        while (time(NULL) <= (time_t)res.key_expires)
                (void)usleep(200 * 1000);
        assert_int_equal(verify_detached(k, data, dlen, sig, slen, NULL, &err), -MKM_E_SIG_EXPIRED);
        print_message("%s\n", err.msg);
        assert_non_null(strstr(err.msg, f));
        expect_stats(k, 1, 1);
        free(data);
        free(sig);
        free(f);
}

/* ---- learned keys whose keyblock lapses during a build ---- */

/* A key that gpg accepts now, one of whose signatures (as forged by make) expires `lifetime`
 * seconds from now: learned by the fast path, used in-process until then, and afterwards judged
 * by gpg again, with gpg's verdict (that of a keyring that never learned the key). */
static void expect_lapse(const char *name, int lifetime, void (*make)(struct forge_buf *kb, struct forge_key *signer,
                                                                     uint32_t now, int lifetime),
                         int want_after, const char *needle) {
        uint32_t now = (uint32_t)time(NULL);
        struct forge_buf kb = {}, sig = {};
        struct forge_key signer = {};
        make(&kb, &signer, now, lifetime);
        size_t dlen;
        _cleanup_free_ char *data = slurp("data", &dlen);
        forge_sig_data(&sig, &signer, &(struct forge_sig){ .type = 0x00, .created = now - 10 }, data, dlen);
        struct forge_buf sigpkt = {};
        forge_put_sig(&sigpkt, &sig);
        _cleanup_free_ char *dir = path_of(name), *keys = NULL;
        assert_int_equal(mkdir(dir, 0755), 0);
        assert_true(asprintf(&keys, "%s/keys.gpg", dir) > 0);
        forge_write(keys, kb.p, kb.len);

        struct mkm_err err = {};
        struct verify_result res = {}, again = {};
        _cleanup_(verify_keyring_freep) struct verify_keyring *k = NULL;
        assert_int_equal(verify_keyring_new(NULL, dir, &k, &err), 0);
        int r = verify_detached(k, data, dlen, sigpkt.p, sigpkt.len, &res, &err);
        print_message("%s: gpg: %d %s\n", name, r, err.msg);
        assert_int_equal(r, 0);
        expect_stats(k, 0, 1);
        assert_int_equal(verify_detached(k, data, dlen, sigpkt.p, sigpkt.len, &again, &err), 0);
        expect_stats(k, 1, 1);
        assert_memory_equal(&res, &again, sizeof res);
        /* Past the second of the expiration: gpg counts a signature expiring at T as valid
         * during second T, the fast path stops using it then. */
        while (time(NULL) <= (time_t)now + lifetime)
                (void)usleep(100 * 1000);
        /* gpg's verdict now, from a keyring that never learned the key. */
        struct mkm_err gerr = {};
        _cleanup_(verify_keyring_freep) struct verify_keyring *fresh = NULL;
        assert_int_equal(verify_keyring_new(NULL, dir, &fresh, &gerr), 0);
        int gr = verify_detached(fresh, data, dlen, sigpkt.p, sigpkt.len, NULL, &gerr);
        print_message("%s: after the lapse, gpg: %d %s\n", name, gr, gerr.msg);
        assert_int_equal(gr, want_after);
        assert_non_null(strstr(gerr.msg, needle));
        err = (struct mkm_err){};
        r = verify_detached(k, data, dlen, sigpkt.p, sigpkt.len, NULL, &err);
        print_message("%s: after the lapse, the learned keyring: %d %s\n", name, r, err.msg);
        assert_int_equal(r, gr);
        assert_string_equal(err.msg, gerr.msg);
        expect_stats(k, 1, gr == 0 ? 2 : 1);    /* gpg's verdict, not the fast path's */
        forge_buf_done(&kb);
        forge_buf_done(&sig);
        forge_buf_done(&sigpkt);
        forge_key_done(&signer);
}

/* A signing subkey whose binding signature expires: the primary's self-signature does not. */
static void make_binding_lapse(struct forge_buf *kb, struct forge_key *signer, uint32_t now, int lifetime) {
        struct forge_key p;
        forge_key_ed25519(&p, now - 3600);
        forge_key_ed25519(signer, now - 3600);
        forge_keyblock(kb, &p, "B test key <B@example.invalid>", &(struct forge_sig){ .created = now - 3600 }, signer,
                       &(struct forge_sig){ .created = now - 3600, .expire_secs = 3600 + (uint32_t)lifetime });
        forge_key_done(&p);
}

/* A primary key that signs, whose only self-certification expires. */
static void make_selfsig_lapse(struct forge_buf *kb, struct forge_key *signer, uint32_t now, int lifetime) {
        forge_key_ed25519(signer, now - 3600);
        forge_keyblock(kb, signer, "C test key <C@example.invalid>",
                       &(struct forge_sig){ .created = now - 3600, .expire_secs = 3600 + (uint32_t)lifetime }, NULL, NULL);
}

static void test_fast_path_binding_lapse(void **state) {
        (void)state;
        /* gpg no longer knows the subkey as the key's: "Bad public key". */
        expect_lapse("lapse-binding", 8, make_binding_lapse, -MKM_E_SIG_BAD, "bad signature by key");
}

static void test_fast_path_selfsig_lapse(void **state) {
        (void)state;
        /* gpg 2.2 still accepts the key (its user ID is no longer self-certified, the key itself
         * has not expired): asked again, it says so, and the key is learned again. */
        expect_lapse("lapse-selfsig", 8, make_selfsig_lapse, 0, "");
}

/* Packager keys whose validity lapses during the build: PG's three certifications expire (its
 * keyblock says so), and the master keys that certified PQ expire (only gpg's trustdb knows: its
 * next check is due then, as its "tru:" record says). Each learned key is judged by gpg again
 * after the lapse, which no longer finds it valid. */
static void test_fast_path_cert_lapse(void **state) {
        (void)state;
        /* Long enough for the script and two pacman-style keyrings on a loaded machine. */
        const int lifetime = 20;
        _cleanup_free_ char *out = path_of("certlapse"), *script = NULL;
        const char *top = getenv("TOP");
        assert_true(asprintf(&script, "%s/tests/tools/mkkeys.sh", top ? top : ".") > 0);
        time_t made = time(NULL);
        pid_t pid = fork();
        if (pid == 0) {
                char secs[16];
                (void)snprintf(secs, sizeof secs, "%d", lifetime);
                execl("/bin/bash", "bash", script, "--expiring-cert", out, secs, (char *)NULL);
                _exit(127);
        }
        int status;
        assert_true(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        static const char *const cases[][2] = { { "certlapse/certs", "certlapse/data.PG.sig" },
                                                { "certlapse/masters", "certlapse/data.PQ.sig" } };
        struct verify_keyring *k[2] = {};
        size_t dlen;
        _cleanup_free_ char *data = slurp("certlapse/data", &dlen);
        for (int i = 0; i < 2; i++) {
                _cleanup_free_ char *dir = path_of(cases[i][0]);
                size_t slen;
                _cleanup_free_ char *sig = slurp(cases[i][1], &slen);
                struct mkm_err err = {};
                struct verify_result res = {};
                assert_int_equal(verify_keyring_new(NULL, dir, &k[i], &err), 0);
                int r = verify_detached(k[i], data, dlen, sig, slen, &res, &err);
                print_message("%s, %d s after the script started: %d %s\n", cases[i][0], (int)(time(NULL) - made), r,
                              err.msg);
                assert_int_equal(r, 0);
                assert_int_equal(verify_detached(k[i], data, dlen, sig, slen, &res, &err), 0);
                expect_stats(k[i], 1, 1);
        }
        /* Made after `made`: they lapse at made + lifetime at the earliest, and a second or two
         * later at the latest (the script may take that long). */
        while (time(NULL) < made + lifetime + 3)
                (void)usleep(100 * 1000);
        for (int i = 0; i < 2; i++) {
                _cleanup_free_ char *dir = path_of(cases[i][0]);
                size_t slen;
                _cleanup_free_ char *sig = slurp(cases[i][1], &slen);
                struct mkm_err gerr = {}, err = {};
                _cleanup_(verify_keyring_freep) struct verify_keyring *fresh = NULL;
                assert_int_equal(verify_keyring_new(NULL, dir, &fresh, &gerr), 0);
                int gr = verify_detached(fresh, data, dlen, sig, slen, NULL, &gerr);
                print_message("%s after the lapse, gpg: %d %s\n", cases[i][0], gr, gerr.msg);
                assert_int_equal(gr, -MKM_E_SIG_UNTRUSTED);
                assert_non_null(strstr(gerr.msg, "is not trusted"));
                int r = verify_detached(k[i], data, dlen, sig, slen, NULL, &err);
                print_message("%s after the lapse, the learned keyring: %d %s\n", cases[i][0], r, err.msg);
                assert_int_equal(r, gr);
                assert_string_equal(err.msg, gerr.msg);
                expect_stats(k[i], 1, 1);
                k[i] = verify_keyring_free(k[i]);
        }
}

/* ---- weak keys ---- */

static void expect_weak(const char *dir, const char *file, const char *key, const char *what, const char *why) {
        _cleanup_free_ char *d = path_of(dir), *f = path_of(file), *want = NULL;
        struct mkm_err err = {};
        struct verify_keyring *k = NULL;
        assert_true(asprintf(&want, "%s: %strusted key %s ", f, what, key) > 0);
        int r = verify_keyring_new(NULL, d, &k, &err);
        print_message("%s: %d %s\n", dir, r, err.msg);
        assert_int_equal(r, -EKEYREJECTED);
        assert_null(k);
        assert_int_equal(err.code, -EKEYREJECTED);
        assert_non_null(strstr(err.msg, want));
        assert_non_null(strstr(err.msg, why));
        /* Also through the cache, which then stores nothing. */
        _cleanup_free_ char *cache = path_of("cache-weak");
        err = (struct mkm_err){};
        assert_int_equal(verify_keyring_new_cached(NULL, d, cache, &k, &err), -EKEYREJECTED);
        assert_non_null(strstr(err.msg, want));
        _cleanup_free_ char *gdir = path_of("cache-weak/gnupg");
        DIR *dd = opendir(gdir);
        if (dd) {
                struct dirent *de;
                while ((de = readdir(dd)))
                        assert_true(de->d_name[0] == '.');
                closedir(dd);
        }
}

/* Write a keyring dir NAME holding one forged key (its self-signature by itself) and return the
 * key's fingerprint in fpr_out. */
static void forged_keyring(const char *name, struct forge_key *key, struct forge_buf *sig_pkt) {
        uint32_t now = (uint32_t)time(NULL);
        struct forge_buf kb = {}, sig = {};
        forge_keyblock(&kb, key, "W test key <W@example.invalid>", &(struct forge_sig){ .created = now - 3600 }, NULL, NULL);
        _cleanup_free_ char *dir = path_of(name), *keys = NULL;
        assert_int_equal(mkdir(dir, 0755), 0);
        assert_true(asprintf(&keys, "%s/keys.gpg", dir) > 0);
        forge_write(keys, kb.p, kb.len);
        size_t dlen;
        _cleanup_free_ char *data = slurp("data", &dlen);
        forge_sig_data(&sig, key, &(struct forge_sig){ .type = 0x00, .created = now - 10 }, data, dlen);
        *sig_pkt = (struct forge_buf){};
        forge_put_sig(sig_pkt, &sig);
        forge_buf_done(&sig);
        forge_buf_done(&kb);
}

static void test_weak_keys(void **state) {
        (void)state;
        _cleanup_free_ char *rw = fpr("RW"), *dw = fpr("DW"), *pg = fpr("PG");
        struct mkm_err err = {};
        /* Every key an anchor: a weak one refuses the keyring, naming the file it came from. */
        expect_weak("weak-rsa", "weak-rsa/b.asc", rw, "", "RSA with a 1024-bit modulus (at least 2048 bits are required)");
        expect_weak("weak-dsa", "weak-dsa/keys.gpg", dw, "", "DSA with a 1024-bit prime (at least 2048 bits are required)");
        /* A weak subkey that signs counts; one that only encrypts does not. */
        _cleanup_free_ char *sw = fpr("SW"), *swsub = fpr("SWsub"), *subwhat = NULL;
        assert_true(asprintf(&subwhat, "signing subkey %s of ", swsub) > 0);
        expect_weak("weak-sub", "weak-sub/keys.gpg", sw, subwhat, "RSA with a 1024-bit modulus (at least 2048 bits are required)");
        _cleanup_free_ char *we = path_of("weak-encr");
        _cleanup_(verify_keyring_freep) struct verify_keyring *enc = NULL;
        assert_int_equal(verify_keyring_new(NULL, we, &enc, &err), 0);

        /* Listed as revoked, it is not trusted: the keyring loads and refuses its signatures. */
        _cleanup_free_ char *rev = path_of("weak-rsa/x-revoked"), *wr = path_of("weak-rsa");
        assert_int_equal(fs_write_file_at(AT_FDCWD, rev, rw, strlen(rw), 0644), 0);
        _cleanup_(verify_keyring_freep) struct verify_keyring *k = NULL;
        assert_int_equal(verify_keyring_new(NULL, wr, &k, &err), 0);
        assert_int_equal(check_sig(k, "data.RW.sig", false, false, NULL, &err), -MKM_E_SIG_REVOKED);
        assert_int_equal(check_sig(k, "data.RS.sig", false, false, NULL, &err), 0);
        assert_int_equal(unlink(rev), 0);

        /* Pacman-style: weak keys nobody certified are not trusted, and do not stop the keyring. */
        _cleanup_free_ char *wu = path_of("weak-untrusted");
        _cleanup_(verify_keyring_freep) struct verify_keyring *p = NULL;
        assert_int_equal(verify_keyring_new(NULL, wu, &p, &err), 0);
        struct verify_result res = {};
        assert_int_equal(check_sig(p, "data.PG.sig", false, false, &res, &err), 0);
        assert_string_equal(res.fingerprint, pg);
        assert_int_equal(check_sig(p, "data.RW.sig", false, false, NULL, &err), -MKM_E_SIG_UNTRUSTED);
        assert_non_null(strstr(err.msg, rw));
        assert_int_equal(check_sig(p, "data.DW.sig", false, false, NULL, &err), -MKM_E_SIG_UNTRUSTED);

        /* RSA 2048 with e = 3 (gpg will not make one, but imports it): refused at the load. */
        uint32_t now = (uint32_t)time(NULL);
        struct forge_key e3, ok;
        struct forge_buf sig3 = {}, sigok = {};
        forge_key_rsa(&e3, now - 3600, 2048, 3);
        forged_keyring("weak-e3", &e3, &sig3);
        expect_weak("weak-e3", "weak-e3/keys.gpg", e3.fpr, "", "RSA with public exponent 3 (at least 65537 is required)");
        /* RSA 2048 with e = 65537 made the same way: loads, and its signature is good (twice: the
         * second in-process). */
        forge_key_rsa(&ok, now - 3600, 2048, 65537);
        forged_keyring("strong-rsa", &ok, &sigok);
        _cleanup_free_ char *sd = path_of("strong-rsa");
        _cleanup_(verify_keyring_freep) struct verify_keyring *s = NULL;
        assert_int_equal(verify_keyring_new(NULL, sd, &s, &err), 0);
        size_t dlen;
        _cleanup_free_ char *data = slurp("data", &dlen);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(verify_detached(s, data, dlen, sigok.p, sigok.len, &res, &err), 0);
                assert_string_equal(res.fingerprint, ok.fpr);
        }
        expect_stats(s, 1, 1);
        forge_buf_done(&sig3);
        forge_buf_done(&sigok);
        forge_key_done(&e3);
        forge_key_done(&ok);
}

static void test_stale_homes(void **state) {
        (void)state;
        /* Homes of a process that is gone go at once (the next build removes what a killed one
         * left); one whose creator still holds its lock stays although its pid is dead here (a
         * build in another pid namespace sharing /tmp), and so does a living process's. (TMPDIR
         * is the test's dir.) */
        pid_t dead = fork();
        if (dead == 0)
                _exit(0);
        assert_true(dead > 0);
        assert_int_equal(waitpid(dead, NULL, 0), dead);
        char gone_home[96], locked_home[96], mine[96];
        (void)snprintf(gone_home, sizeof gone_home, "%s/mkm-gnupg.%d.gone11", S.dir, (int)dead);
        (void)snprintf(locked_home, sizeof locked_home, "%s/mkm-gnupg.%d.locked", S.dir, (int)dead);
        (void)snprintf(mine, sizeof mine, "%s/mkm-gnupg.%d.mine11", S.dir, (int)getpid());
        const char *all[] = { gone_home, locked_home, mine };
        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                assert_int_equal(mkdir(all[i], 0700), 0);
        int lfd = open(locked_home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(lfd >= 0);
        /* held through another open file description, as another process's would be */
        assert_int_equal(flock(lfd, LOCK_EX | LOCK_NB), 0);
        verify_remove_stale_homes();
        assert_int_equal(access(gone_home, F_OK), -1);
        assert_int_equal(access(locked_home, F_OK), 0);
        assert_int_equal(access(mine, F_OK), 0);
        close(lfd);
        verify_remove_homes_of(dead);
        assert_int_equal(access(locked_home, F_OK), -1);
        assert_int_equal(rmdir(mine), 0);
}

static void test_clearsigned(void **state) {
        (void)state;
        size_t len, rlen;
        _cleanup_free_ char *in = slurp("inrelease.T", &len), *release = slurp("release", &rlen), *t = fpr("T");
        _cleanup_free_ char *text = NULL;
        size_t tlen = 0;
        struct verify_result res = {};
        struct mkm_err err = {};
        /* The input carries unsigned lines before and after the signed part. */
        assert_non_null(strstr(in, "INJECTED-BEFORE"));
        assert_non_null(strstr(in, "INJECTED-AFTER"));
        assert_int_equal(verify_clearsigned(S.simple, in, len, &text, &tlen, &res, &err), 0);
        assert_string_equal(res.fingerprint, t);
        /* Only the verified plaintext, dash escaping undone, and nothing around it. */
        assert_int_equal(tlen, rlen);
        assert_string_equal(text, release);
        assert_null(strstr(text, "INJECTED"));
        assert_null(strstr(text, "BEGIN PGP"));
}

static void test_clearsigned_bad(void **state) {
        (void)state;
        struct mkm_err err = {};
        char *text = NULL;
        size_t len;
        _cleanup_free_ char *u = slurp("inrelease.U", &len), *uf = fpr("U");
        assert_int_equal(verify_clearsigned(S.simple, u, len, &text, NULL, NULL, &err), -MKM_E_SIG_UNTRUSTED);
        assert_non_null(strstr(err.msg, "signed by unknown key"));
        assert_non_null(strstr(err.msg, uf + 24));
        assert_null(text);

        _cleanup_free_ char *dbl = slurp("inrelease.double", &len);
        assert_int_equal(verify_clearsigned(S.simple, dbl, len, &text, NULL, NULL, &err), -MKM_E_SIG_BAD);
        assert_string_equal(err.msg, "bad signature: 2 clearsigned messages in one file; refusing (only one is allowed)");

        _cleanup_free_ char *t = slurp("inrelease.T", &len);
        char *p = strstr(t, "Suite: stable");
        assert_non_null(p);
        p[7] = 'X';     /* one byte of the signed text */
        assert_int_equal(verify_clearsigned(S.simple, t, len, &text, NULL, NULL, &err), -MKM_E_SIG_BAD);
        assert_non_null(strstr(err.msg, "bad signature by key"));
        assert_null(text);

        _cleanup_free_ char *plain = slurp("release", &len);
        assert_int_equal(verify_clearsigned(S.simple, plain, len, &text, NULL, NULL, &err), -MKM_E_SIG_MISSING);
        assert_string_equal(err.msg, "signature missing: no clearsigned message (-----BEGIN PGP SIGNED MESSAGE-----) in the input");
        assert_int_equal(verify_clearsigned(S.simple, "", 0, &text, NULL, NULL, &err), -MKM_E_SIG_MISSING);
}

static void test_single_file_keyring(void **state) {
        (void)state;
        _cleanup_(verify_keyring_freep) struct verify_keyring *k = NULL;
        _cleanup_free_ char *p = path_of("simple/trusted.gpg"), *t = fpr("T"), *e = fpr("E");
        struct mkm_err err = {};
        assert_int_equal(verify_keyring_new(NULL, p, &k, &err), 0);
        assert_int_equal(verify_keyring_count(k), 1);
        expect_detached(k, "data.T.sig", 0, t, "T test key");
        expect_detached(k, "data.E.sig", -MKM_E_SIG_UNTRUSTED, "signed by unknown key", e + 24);
}

/* verify_keyring_new_cached_fd (a recipe's Keyring=, opened beside the recipe): a directory's
 * entries are opened inside it, and one that is a symbolic link is refused, since it could lead to
 * a file the recipe's author cannot read; the host's path API follows it. A FIFO entry is passed
 * over, not waited on. A single file is read from the fd. */
static void test_keyring_fd(void **state) {
        (void)state;
        _cleanup_free_ char *dir = path_of("fdkr"), *src = path_of("simple/trusted.gpg"), *lnk = path_of("fdkr/l.gpg"),
                            *fifo = path_of("fdkr/f.gpg"), *t = fpr("T");
        assert_int_equal(mkdir(dir, 0755), 0);
        assert_int_equal(symlink(src, lnk), 0);
        assert_int_equal(mkfifo(fifo, 0644), 0);
        struct mkm_err err = {};
        struct verify_keyring *k = NULL;
        /* the host's path: the link is followed, the FIFO passed over */
        assert_int_equal(verify_keyring_new_cached(NULL, dir, NULL, &k, &err), 0);
        assert_int_equal(verify_keyring_count(k), 1);
        k = verify_keyring_free(k);
        /* a recipe's fd: the link is refused, naming it */
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        assert_int_equal(verify_keyring_new_cached_fd(NULL, dfd, dir, NULL, NULL, &k, &err), -ELOOP);
        assert_null(k);
        char want[4200];
        snprintf(want, sizeof want, "%s: a symbolic link", lnk);
        if (!strstr(err.msg, want))
                fail_msg("got  %s\nwant %s", err.msg, want);
        /* a real file in its place is read */
        size_t len = 0;
        _cleanup_free_ char *bytes = slurp("simple/trusted.gpg", &len);
        assert_int_equal(unlink(lnk), 0);
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, lnk, bytes, len, 0644), 0);
        assert_int_equal(verify_keyring_new_cached_fd(NULL, dfd, dir, NULL, NULL, &k, &err), 0);
        assert_int_equal(verify_keyring_count(k), 1);
        expect_detached(k, "data.T.sig", 0, t, "T test key");
        k = verify_keyring_free(k);
        /* a hard link to another owner's file, in a directory the tenant owns: refused; the
         * tenant's own file is read */
        _cleanup_free_ char *hl = path_of("fdkr/h.gpg");
        assert_int_equal(link(src, hl), 0);
        assert_int_equal(chown(dir, 65534, 65534), 0);
        assert_int_equal(verify_keyring_new_cached_fd(NULL, dfd, dir, NULL, NULL, &k, &err), -EMLINK);
        assert_null(k);
        snprintf(want, sizeof want, "%s is a hard link to a file of another owner than its directory's", hl);
        if (!strstr(err.msg, want))
                fail_msg("got  %s\nwant %s", err.msg, want);
        assert_int_equal(unlink(hl), 0);
        assert_int_equal(chown(lnk, 65534, 65534), 0);
        assert_int_equal(verify_keyring_new_cached_fd(NULL, dfd, dir, NULL, NULL, &k, &err), 0);
        k = verify_keyring_free(k);
        /* a keyring directory anyone can write: its files may be anyone's */
        assert_int_equal(chmod(dir, 01777), 0);
        assert_int_equal(verify_keyring_new_cached_fd(NULL, dfd, dir, NULL, NULL, &k, &err), -MKM_E_ANYONE_WRITES);
        assert_non_null(strstr(err.msg, "a directory anyone can write"));
        assert_int_equal(verify_keyring_new_cached(NULL, dir, NULL, &k, &err), 0);      /* the host's path */
        k = verify_keyring_free(k);
        assert_int_equal(chmod(dir, 0755), 0);
        /* read as the recipe's owner: a key file they cannot read is refused, naming it, and the
         * same file readable is read; as root (no reader) it is read either way */
        struct fs_reader tenant;
        assert_int_equal(fs_reader_for_uid(65534, &tenant), 0);
        assert_int_equal(chown(lnk, 0, 0), 0);
        assert_int_equal(chmod(lnk, 0600), 0);
        assert_int_equal(verify_keyring_new_cached_fd(NULL, dfd, dir, &tenant, NULL, &k, &err), -EACCES);
        assert_null(k);
        snprintf(want, sizeof want, "%s is not readable by the recipe's owner", lnk);
        if (!strstr(err.msg, want))
                fail_msg("got  %s\nwant %s", err.msg, want);
        assert_int_equal(verify_keyring_new_cached_fd(NULL, dfd, dir, NULL, NULL, &k, &err), 0);
        k = verify_keyring_free(k);
        assert_int_equal(chmod(lnk, 0644), 0);
        assert_int_equal(verify_keyring_new_cached_fd(NULL, dfd, dir, &tenant, NULL, &k, &err), 0);
        assert_int_equal(verify_keyring_count(k), 1);
        k = verify_keyring_free(k);
        /* a single file from its fd (the path is only the label) */
        _cleanup_close_ int ffd = open(src, O_RDONLY | O_CLOEXEC);
        assert_true(ffd >= 0);
        assert_int_equal(verify_keyring_new_cached_fd(NULL, ffd, "/nowhere/label.gpg", NULL, NULL, &k, &err), 0);
        assert_int_equal(verify_keyring_count(k), 1);
        k = verify_keyring_free(k);
}

static void test_keyring_errors(void **state) {
        (void)state;
        struct verify_keyring *k = NULL;
        struct mkm_err err = {};
        _cleanup_free_ char *missing = path_of("nope");
        assert_int_equal(verify_keyring_new(NULL, missing, &k, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "cannot access keyring"));

        _cleanup_free_ char *empty = path_of("emptydir");
        assert_int_equal(mkdir(empty, 0755), 0);
        assert_int_equal(verify_keyring_new(NULL, empty, &k, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "no *.gpg or *.asc keyring files in the directory"));

        _cleanup_free_ char *bad = path_of("emptydir/bad.gpg");
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, bad, "garbage\n", 8, 0644), 0);
        assert_int_equal(verify_keyring_new(NULL, bad, &k, &err), -MKM_E_PARSE);
        assert_non_null(strstr(err.msg, "no OpenPGP public keys found in the keyring file"));

        /* A malformed -trusted file names the file and the line. */
        _cleanup_free_ char *kr = path_of("badtrust"), *kg = path_of("badtrust/k.gpg"), *src = path_of("simple/trusted.gpg");
        _cleanup_free_ char *tr = path_of("badtrust/k-trusted"), *keys = NULL;
        size_t klen;
        assert_int_equal(mkdir(kr, 0755), 0);
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, src, 1 << 20, &keys, &klen), 0);
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, kg, keys, klen, 0644), 0);
        static const char badline[] = "# comment\n\n0123456789ABCDEF0123456789ABCDEF01234567:9:\n";
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, tr, badline, strlen(badline), 0644), 0);
        assert_int_equal(verify_keyring_new(NULL, kr, &k, &err), -MKM_E_PARSE);
        assert_non_null(strstr(err.msg, "k-trusted:3: expected FINGERPRINT:LEVEL: (LEVEL 1-6)"));
        static const char badfpr[] = "XYZ:4:\n";
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, tr, badfpr, strlen(badfpr), 0644), 0);
        assert_int_equal(verify_keyring_new(NULL, kr, &k, &err), -MKM_E_PARSE);
        assert_non_null(strstr(err.msg, "k-trusted:1: expected a key fingerprint (40 hex digits), got 'XYZ:4:'"));
        assert_null(k);

        /* An empty -trusted file: the keyring loads, but no key is a trust anchor. */
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, tr, "", 0, 0644), 0);
        assert_int_equal(verify_keyring_new(NULL, kr, &k, &err), 0);
        _cleanup_free_ char *t = fpr("T");
        expect_detached(k, "data.T.sig", -MKM_E_SIG_UNTRUSTED, "is not trusted", t);
        k = verify_keyring_free(k);
}

/* ---- the cache of prepared homes (verify_keyring_new_cached) ---- */

static struct {
        char text[1 << 16];     /* every debug event, one a line */
        size_t len;
} EV;

static void on_event(void *userdata, const struct mkm_event *ev) {
        (void)userdata;
        if (ev->type != MKM_EV_LOG || !ev->text)
                return;
        int n = snprintf(EV.text + EV.len, sizeof EV.text - EV.len, "%s\n", ev->text);
        if (n > 0 && (size_t)n < sizeof EV.text - EV.len)
                EV.len += (size_t)n;
}

static struct mkm_ctx CTX = { .events = { .fn = on_event } };

static void events_clear(void) {
        EV.len = 0;
        EV.text[0] = 0;
}

/* Load path with the cache in S.dir/cachename; check where it came from. */
static struct verify_keyring *load_cached(const char *path, const char *cachename, bool from_cache) {
        _cleanup_free_ char *cache = path_of(cachename);
        struct verify_keyring *k = NULL;
        struct mkm_err err = {};
        events_clear();
        int r = verify_keyring_new_cached(&CTX, path, cache, &k, &err);
        print_message("%s%s", err.msg, EV.text);
        assert_int_equal(r, 0);
        assert_non_null(k);
        char needle[4300];
        (void)snprintf(needle, sizeof needle, "keyring %s: %u keys, ", path, verify_keyring_count(k));
        const char *hit = strstr(EV.text, needle);
        assert_non_null(hit);
        if (from_cache) {
                assert_non_null(strstr(hit, "revoked, from the cache ("));
                assert_null(strstr(EV.text, "stored in the cache"));
        } else {
                assert_null(strstr(EV.text, "from the cache"));
                assert_non_null(strstr(EV.text, "stored in the cache as "));
        }
        return k;
}

/* The one entry in S.dir/cachename/gnupg (and no temporary directory next to it). */
static char *cache_entry(const char *cachename, unsigned expect_n) {
        char g[200];
        (void)snprintf(g, sizeof g, "%s/gnupg", cachename);
        _cleanup_free_ char *gdir = path_of(g);
        DIR *d = opendir(gdir);
        assert_non_null(d);
        struct dirent *de;
        unsigned n = 0;
        char *entry = NULL;
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                assert_null(strstr(de->d_name, ".tmp."));
                assert_int_equal(strlen(de->d_name), 64);
                n++;
                free(entry);
                entry = fs_path_join(gdir, de->d_name);
        }
        closedir(d);
        assert_int_equal(n, expect_n);
        return entry;
}

/* Code and message of one verification, for comparing keyrings. */
static int verdict_of(struct verify_keyring *k, const char *sigfile, char msg[static 600]) {
        size_t dlen, slen;
        _cleanup_free_ char *data = slurp("data", &dlen), *sig = slurp(sigfile, &slen);
        struct mkm_err err = {};
        struct verify_result res = {};
        int r = verify_detached(k, data, dlen, sig, slen, &res, &err);
        (void)snprintf(msg, 600, "%s", r < 0 ? err.msg : res.fingerprint);
        return r;
}

static void expect_same(struct verify_keyring *a, struct verify_keyring *b, const char *const sigs[]) {
        for (size_t i = 0; sigs[i]; i++) {
                char ma[600], mb[600];
                int ra = verdict_of(a, sigs[i], ma), rb = verdict_of(b, sigs[i], mb);
                print_message("%s: %d %s\n", sigs[i], rb, mb);
                assert_int_equal(ra, rb);
                assert_string_equal(ma, mb);
        }
}

static void copy_file(const char *from, const char *to) {
        _cleanup_free_ char *f = path_of(from), *t = path_of(to), *buf = NULL;
        size_t len;
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, f, 1 << 20, &buf, &len), 0);
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, t, buf, len, 0644), 0);
}

/* No live home below S.dir holds a secret key: the throwaway key's secret part is deleted after
 * the trust setup (private-keys-v1.d may exist only empty). Returns the number of homes seen. */
static unsigned check_no_secret_keys(void) {
        static const char *const secret[] = { "private-keys-v1.d", "openpgp-revocs.d" };
        DIR *d = opendir(S.dir);
        assert_non_null(d);
        struct dirent *de;
        unsigned homes = 0;
        while ((de = readdir(d))) {
                if (strncmp(de->d_name, "mkm-gnupg.", 10) != 0)
                        continue;
                homes++;
                for (size_t i = 0; i < ELEMENTSOF(secret); i++) {
                        char sub[200];
                        (void)snprintf(sub, sizeof sub, "%s/%s", de->d_name, secret[i]);
                        _cleanup_free_ char *p = path_of(sub);
                        DIR *s = opendir(p);
                        if (!s)
                                continue;
                        struct dirent *f;
                        while ((f = readdir(s)))
                                assert_true(strcmp(f->d_name, ".") == 0 || strcmp(f->d_name, "..") == 0);
                        closedir(s);
                }
        }
        closedir(d);
        return homes;
}

static void test_cache_pacman(void **state) {
        (void)state;
        static const char *const sigs[] = { "data.PG.sig", "data.PW.sig", "data.PN.sig", "data.X.sig", "data.T.sig", NULL };
        _cleanup_free_ char *kr = path_of("pacman"), *pg = fpr("PG"), *pw = fpr("PW"), *x = fpr("X"), *t = fpr("T");
        _cleanup_(verify_keyring_freep) struct verify_keyring *cold = load_cached(kr, "cache-p", false);
        _cleanup_free_ char *entry = cache_entry("cache-p", 1);

        /* Exactly the public keyring, the trustdb and the digest: no secret key, no socket, no seed. */
        DIR *d = opendir(entry);
        assert_non_null(d);
        struct dirent *de;
        unsigned n = 0;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                print_message("entry file %s\n", de->d_name);
                assert_true(strcmp(de->d_name, "pubring.kbx") == 0 || strcmp(de->d_name, "trustdb.gpg") == 0 ||
                            strcmp(de->d_name, "digest") == 0);
                n++;
        }
        closedir(d);
        assert_int_equal(n, 3);

        _cleanup_(verify_keyring_freep) struct verify_keyring *warm = load_cached(kr, "cache-p", true);
        assert_int_equal(verify_keyring_count(warm), 7);       /* the local trust root is not counted */
        assert_non_null(strstr(EV.text, ": 7 keys, 1 revoked, from the cache ("));
        free(cache_entry("cache-p", 1));

        /* Same codes and messages as without the cache, built now or copied from the cache. */
        expect_same(S.pacman, cold, sigs);
        expect_same(S.pacman, warm, sigs);
        expect_detached(warm, "data.PG.sig", 0, pg, "PG test key");
        expect_detached(warm, "data.PW.sig", -MKM_E_SIG_UNTRUSTED, "is not trusted (validity marginal", pw);
        expect_detached(warm, "data.X.sig", -MKM_E_SIG_REVOKED, "which the keyring lists as revoked", x);
        expect_detached(warm, "data.T.sig", -MKM_E_SIG_UNTRUSTED, "signed by unknown key", t + 24);

        /* S.pacman, cold and warm are alive: none of their homes keeps the throwaway secret key. */
        assert_true(check_no_secret_keys() >= 3);

        /* A clone of a keyring served from the cache works the same. */
        _cleanup_(verify_keyring_freep) struct verify_keyring *c = NULL;
        assert_int_equal(verify_keyring_clone(warm, &c), 0);
        expect_detached(c, "data.PG.sig", 0, pg, "PG test key");
        c = verify_keyring_free(c);
}

static void test_cache_simple(void **state) {
        (void)state;
        static const char *const sigs[] = { "data.T.sig", "data.T.asc", "data.K.sig", "data.U.sig", "data.E.sig",
                                            "data.TS.sig", "data.R.sig", "data.TU.sig", NULL };
        _cleanup_free_ char *kr = path_of("simple"), *r = fpr("R"), *u = fpr("U");
        verify_keyring_free(load_cached(kr, "cache-s", false));
        _cleanup_(verify_keyring_freep) struct verify_keyring *warm = load_cached(kr, "cache-s", true);
        assert_int_equal(verify_keyring_count(warm), 5);
        expect_same(S.simple, warm, sigs);
        expect_detached(warm, "data.R.sig", -MKM_E_SIG_REVOKED, "signed by revoked key", r);
        expect_detached(warm, "data.U.sig", -MKM_E_SIG_UNTRUSTED, "signed by unknown key", u + 24);

        /* A gnupg/ others may write to is never trusted: its homes could carry any key. */
        _cleanup_free_ char *g = path_of("cache-s/gnupg");
        assert_int_equal(chmod(g, 0777), 0);
        events_clear();
        struct verify_keyring *k = NULL;
        struct mkm_err err = {};
        _cleanup_free_ char *cache = path_of("cache-s");
        assert_int_equal(verify_keyring_new_cached(&CTX, kr, cache, &k, &err), 0);
        print_message("%s", EV.text);
        assert_null(strstr(EV.text, "from the cache"));
        assert_non_null(strstr(EV.text, "is not private to this user"));
        verify_keyring_free(k);
        assert_int_equal(chmod(g, 0700), 0);

        /* A single-file keyring has its own entry. */
        _cleanup_free_ char *one = path_of("simple/trusted.gpg");
        verify_keyring_free(load_cached(one, "cache-s", false));
        verify_keyring_free(load_cached(one, "cache-s", true));
        free(cache_entry("cache-s", 2));
}

static void test_cache_key(void **state) {
        (void)state;
        _cleanup_free_ char *a = path_of("kr-a"), *b = path_of("kr-b"), *t = fpr("T");
        assert_int_equal(mkdir(a, 0755), 0);
        assert_int_equal(mkdir(b, 0755), 0);
        copy_file("simple/trusted.gpg", "kr-a/trusted.gpg");
        copy_file("simple/trusted.gpg", "kr-b/trusted.gpg");
        _cleanup_free_ char *rev = path_of("kr-a/x-revoked");
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, rev, "# a\n", 4, 0644), 0);
        copy_file("kr-a/x-revoked", "kr-b/x-revoked");

        verify_keyring_free(load_cached(a, "cache-k", false));
        /* The same names and bytes elsewhere: the key covers contents, not the directory's path. */
        verify_keyring_free(load_cached(b, "cache-k", true));
        free(cache_entry("cache-k", 1));

        /* One changed byte, even in a comment, is another keyring. */
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, rev, "# b\n", 4, 0644), 0);
        _cleanup_(verify_keyring_freep) struct verify_keyring *k = load_cached(a, "cache-k", false);
        free(cache_entry("cache-k", 2));
        expect_detached(k, "data.T.sig", 0, t, "T test key");
        /* So is a renamed file with the same bytes. */
        _cleanup_free_ char *rev2 = path_of("kr-b/y-revoked"), *rev1 = path_of("kr-b/x-revoked");
        assert_int_equal(rename(rev1, rev2), 0);
        verify_keyring_free(load_cached(b, "cache-k", false));
        free(cache_entry("cache-k", 3));
}

/* Fingerprints in -trusted and -revoked files may be written in lower case: they name the same
 * keys as gpg's upper-case ones. */
static void test_trust_files_lower_case(void **state) {
        (void)state;
        _cleanup_free_ char *dir = path_of("kr-lc"), *pg = fpr("PG"), *x = fpr("X");
        assert_int_equal(mkdir(dir, 0755), 0);
        copy_file("pacman/test.gpg", "kr-lc/test.gpg");
        char trusted[3 * 44 + 1] = "", revoked[42];
        static const char *const masters[] = { "M1", "M2", "M3" };
        for (size_t i = 0; i < ELEMENTSOF(masters); i++) {
                _cleanup_free_ char *m = fpr(masters[i]);
                (void)snprintf(trusted + strlen(trusted), sizeof trusted - strlen(trusted), "%s:4:\n", m);
        }
        (void)snprintf(revoked, sizeof revoked, "%s\n", x);
        for (char *c = trusted; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        for (char *c = revoked; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        _cleanup_free_ char *tp = path_of("kr-lc/test-trusted"), *rp = path_of("kr-lc/test-revoked");
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, tp, trusted, strlen(trusted), 0644), 0);
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, rp, revoked, strlen(revoked), 0644), 0);

        struct mkm_err err = {};
        _cleanup_(verify_keyring_freep) struct verify_keyring *k = NULL;
        if (verify_keyring_new(NULL, dir, &k, &err) < 0)
                fail_msg("%s", err.msg);
        expect_detached(k, "data.PG.sig", 0, pg, "PG test key");
        expect_detached(k, "data.X.sig", -MKM_E_SIG_REVOKED, "which the keyring lists as revoked", x);
}

static void damage_truncate_pubring(int efd) {
        struct stat st;
        assert_int_equal(fstatat(efd, "pubring.kbx", &st, 0), 0);
        _cleanup_close_ int fd = openat(efd, "pubring.kbx", O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, st.st_size / 2), 0);
}

static void damage_remove_digest(int efd) {
        assert_int_equal(unlinkat(efd, "digest", 0), 0);
}

static void damage_remove_trustdb(int efd) {
        assert_int_equal(unlinkat(efd, "trustdb.gpg", 0), 0);
}

static void damage_digest_key(int efd) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        assert_int_equal(fs_read_file_follow_at(efd, "digest", 4096, &text, &len), 0);
        char *key = strstr(text, "\nkey ");
        assert_non_null(key);
        key[5] = key[5] == '0' ? '1' : '0';
        assert_int_equal(fs_write_atomic_at(efd, "digest", text, len, 0600), 0);
}

static void damage_digest_sum(int efd) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        assert_int_equal(fs_read_file_follow_at(efd, "digest", 4096, &text, &len), 0);
        char *sum = strstr(text, "\ntrustdb.gpg ");
        assert_non_null(sum);
        sum[13] = sum[13] == 'a' ? 'b' : 'a';
        assert_int_equal(fs_write_atomic_at(efd, "digest", text, len, 0600), 0);
}

static void test_cache_damaged(void **state) {
        (void)state;
        static const struct {
                void (*damage)(int efd);
                const char *reason;
        } cases[] = {
                { damage_truncate_pubring, "pubring.kbx has sha256 " },
                { damage_remove_digest, "cannot read its digest file: " },
                { damage_remove_trustdb, "cannot open trustdb.gpg: No such file or directory" },
                { damage_digest_key, "the digest file names another key" },
                { damage_digest_sum, "trustdb.gpg has sha256 " },
                { NULL, "cannot open it: Not a directory" },     /* a file in place of the entry */
        };
        _cleanup_free_ char *kr = path_of("pacman"), *pg = fpr("PG"), *pw = fpr("PW");
        verify_keyring_free(load_cached(kr, "cache-d", false));
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *entry = cache_entry("cache-d", 1);
                if (cases[i].damage) {
                        _cleanup_close_ int efd = open(entry, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        assert_true(efd >= 0);
                        cases[i].damage(efd);
                } else {
                        assert_int_equal(fs_rm_rf_at(AT_FDCWD, entry), 0);
                        assert_int_equal(fs_write_atomic_at(AT_FDCWD, entry, "junk\n", 5, 0600), 0);
                }
                /* Detected, rebuilt and replaced; the keyring still decides as before. */
                _cleanup_(verify_keyring_freep) struct verify_keyring *k = load_cached(kr, "cache-d", false);
                char needle[300];
                (void)snprintf(needle, sizeof needle, "is damaged (%s", cases[i].reason);
                assert_non_null(strstr(EV.text, needle));
                assert_non_null(strstr(EV.text, "); rebuilding it\n"));
                expect_detached(k, "data.PG.sig", 0, pg, "PG test key");
                expect_detached(k, "data.PW.sig", -MKM_E_SIG_UNTRUSTED, "is not trusted (validity marginal", pw);
                k = verify_keyring_free(k);
                /* The replacement is whole: the next load is served from it. */
                k = load_cached(kr, "cache-d", true);
                expect_detached(k, "data.PG.sig", 0, pg, "PG test key");
                free(cache_entry("cache-d", 1));
        }
}

static void test_cache_unwritable(void **state) {
        (void)state;
        /* A cache directory that cannot be created: the keyring still loads, a debug event says why. */
        _cleanup_free_ char *kr = path_of("simple/trusted.gpg"), *cache = path_of("data/cache"), *t = fpr("T");
        _cleanup_(verify_keyring_freep) struct verify_keyring *k = NULL;
        struct mkm_err err = {};
        events_clear();
        assert_int_equal(verify_keyring_new_cached(&CTX, kr, cache, &k, &err), 0);
        print_message("%s", EV.text);
        assert_non_null(strstr(EV.text, ": cannot store it in the cache, going on without: cannot create "));
        assert_null(strstr(EV.text, "damaged"));
        expect_detached(k, "data.T.sig", 0, t, "T test key");
        /* Errors in the keyring itself are the same with a cache. */
        _cleanup_free_ char *missing = path_of("nope"), *c2 = path_of("cache-e");
        struct verify_keyring *k2 = NULL;
        assert_int_equal(verify_keyring_new_cached(&CTX, missing, c2, &k2, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "cannot access keyring"));
        assert_null(k2);
}

static void test_arch_keyring(void **state) {
        (void)state;
        const char *top = getenv("TOP");
        char dir[4096];
        (void)snprintf(dir, sizeof dir, "%s/keys/archlinux", top ? top : ".");
        char gpg[4200];
        (void)snprintf(gpg, sizeof gpg, "%s/archlinux.gpg", dir);
        if (access(gpg, R_OK) < 0) {
                print_message("skipping the real Arch keyring: %s is absent (run `make keys`)\n", gpg);
                skip();
        }
        _cleanup_(verify_keyring_freep) struct verify_keyring *k = NULL;
        struct mkm_err err = {};
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int r = verify_keyring_new(NULL, dir, &k, &err);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        print_message("Arch keyring: r=%d %s; %u keys in %.2f s\n", r, err.msg, verify_keyring_count(k), secs);
        assert_int_equal(r, 0);
        assert_true(verify_keyring_count(k) > 50);
        /* A signature by one of our throwaway keys is not trusted by Arch's keyring. */
        _cleanup_free_ char *t = fpr("T");
        expect_detached(k, "data.T.sig", -MKM_E_SIG_UNTRUSTED, "signed by unknown key", t + 24);
}

/* A real Debian InRelease from the host's apt lists (no network), against keys/debian. */
static void test_debian_inrelease(void **state) {
        (void)state;
        const char *top = getenv("TOP");
        char kr[4096], in[4400] = "";
        (void)snprintf(kr, sizeof kr, "%s/keys/debian/debian-archive-keyring.gpg", top ? top : ".");
        DIR *d = opendir("/var/lib/apt/lists");
        struct dirent *de;
        while (d && (de = readdir(d))) {
                size_t n = strlen(de->d_name);
                if (n > 10 && strcmp(de->d_name + n - 10, "_InRelease") == 0) {
                        (void)snprintf(in, sizeof in, "/var/lib/apt/lists/%s", de->d_name);
                        break;
                }
        }
        if (d)
                closedir(d);
        if (access(kr, R_OK) < 0 || !in[0]) {
                print_message("skipping the real Debian InRelease: %s\n",
                              access(kr, R_OK) < 0 ? "keys/debian is empty (run `make keys`)" : "no InRelease in /var/lib/apt/lists");
                skip();
        }
        _cleanup_(verify_keyring_freep) struct verify_keyring *k = NULL;
        struct mkm_err err = {};
        assert_int_equal(verify_keyring_new(NULL, kr, &k, &err), 0);
        assert_true(verify_keyring_count(k) >= 3);
        _cleanup_free_ char *data = NULL, *text = NULL;
        size_t len, tlen;
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, in, VERIFY_MAX_DATA, &data, &len), 0);
        struct verify_result res = {};
        int r = verify_clearsigned(k, data, len, &text, &tlen, &res, &err);
        print_message("%s: r=%d %s; signer %s '%s'\n", in, r, err.msg, res.fingerprint, res.uid);
        assert_int_equal(r, 0);
        assert_int_equal(strlen(res.fingerprint), 40);
        assert_true(tlen > 0 && tlen < len);
        assert_null(strstr(text, "-----BEGIN PGP"));
        assert_non_null(strstr(text, "SHA256:"));
        /* One changed byte in the signed text is caught. */
        char *p = strstr(data, "SHA256:");
        assert_non_null(p);
        p[0] = 'T';
        _cleanup_free_ char *text2 = NULL;
        assert_int_equal(verify_clearsigned(k, data, len, &text2, NULL, NULL, &err), -MKM_E_SIG_BAD);
        assert_non_null(strstr(err.msg, "bad signature by key"));
}

/* Runs last: after freeing, no temporary home and no gpg-agent for one may remain. */
static void test_no_leftovers(void **state) {
        (void)state;
        S.simple = verify_keyring_free(S.simple);
        S.pacman = verify_keyring_free(S.pacman);
        DIR *d = opendir(S.dir);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d)))
                assert_null(strstr(de->d_name, "mkm-gnupg."));
        closedir(d);

        bool found = false;
        for (int tries = 0; tries < 20; tries++) {
                found = false;
                DIR *p = opendir("/proc");
                assert_non_null(p);
                while ((de = readdir(p))) {
                        char f[300], buf[4096] = "";
                        (void)snprintf(f, sizeof f, "/proc/%s/cmdline", de->d_name);
                        int fd = open(f, O_RDONLY | O_CLOEXEC);
                        if (fd < 0)
                                continue;
                        ssize_t n = read(fd, buf, sizeof buf - 1);
                        close(fd);
                        for (ssize_t i = 0; i < n; i++)
                                if (buf[i] == 0)
                                        buf[i] = ' ';
                        if (n > 0 && strstr(buf, "gpg-agent") && strstr(buf, S.dir)) {
                                print_message("left running: %s\n", buf);
                                found = true;
                        }
                }
                closedir(p);
                if (!found)
                        break;
                usleep(100 * 1000);
        }
        assert_false(found);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good_binary),
                cmocka_unit_test(test_good_armored),
                cmocka_unit_test(test_subkey),
                cmocka_unit_test(test_multiple_signatures),
                cmocka_unit_test(test_tampered_data),
                cmocka_unit_test(test_tampered_signature),
                cmocka_unit_test(test_unknown_key),
                cmocka_unit_test(test_expired),
                cmocka_unit_test(test_revoked),
                cmocka_unit_test(test_pacman_trust),
                cmocka_unit_test(test_garbage_and_empty),
                cmocka_unit_test(test_fd),
                cmocka_unit_test(test_fast_path),
                cmocka_unit_test(test_fast_path_refusals),
                cmocka_unit_test(test_fast_path_expiry),
                cmocka_unit_test(test_fast_path_binding_lapse),
                cmocka_unit_test(test_fast_path_selfsig_lapse),
                cmocka_unit_test(test_fast_path_cert_lapse),
                cmocka_unit_test(test_weak_keys),
                cmocka_unit_test(test_stale_homes),
                cmocka_unit_test(test_clearsigned),
                cmocka_unit_test(test_clearsigned_bad),
                cmocka_unit_test(test_single_file_keyring),
                cmocka_unit_test(test_keyring_errors),
                cmocka_unit_test(test_keyring_fd),
                cmocka_unit_test(test_trust_files_lower_case),
                cmocka_unit_test(test_cache_pacman),
                cmocka_unit_test(test_cache_simple),
                cmocka_unit_test(test_cache_key),
                cmocka_unit_test(test_cache_damaged),
                cmocka_unit_test(test_cache_unwritable),
                cmocka_unit_test(test_arch_keyring),
                cmocka_unit_test(test_debian_inrelease),
                cmocka_unit_test(test_no_leftovers),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
