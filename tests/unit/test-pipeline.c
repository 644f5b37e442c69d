/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/pipeline: both trust models over file:// and a loopback HTTP server
 * (tests/tools/httpd.py), with throwaway keys from tests/tools/mkkeys.sh: what pipeline_wait()
 * promises (in the cache and trusted, or the download's or the check's message), a damaged cache
 * entry, a wrong partial body from an earlier build, cancellation, and the batch download. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <gpgme.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache.h"
#include "ctx.h"
#include "pipeline.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "verify.h"

static struct {
        char dir[64];           /* everything: keys (mkkeys.sh), src/ (served), cache-N/ */
        char src[128];
        pid_t pid;              /* httpd.py */
        int port;
        struct verify_keyring *keyring;
        unsigned ncache;
} S = { .pid = -1 };

static char *path_in(const char *name) {
        static char buf[8][512];
        static unsigned next;
        char *b = buf[next++ % ELEMENTSOF(buf)];
        (void)snprintf(b, sizeof buf[0], "%s/%s", S.dir, name);
        return b;
}

/* ---- setup: keys, the server ---------------------------------------------------------------- */

static int run_script(const char *script, const char *arg) {
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);
                (void)dup2(null, 1);
                execl("/bin/bash", "bash", script, arg, (char *)NULL);
                _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) < 0)
                return -1;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int start_server(void) {
        char port_file[160], log[160];
        (void)snprintf(port_file, sizeof port_file, "%s/port", S.dir);
        (void)snprintf(log, sizeof log, "%s/requests.log", S.dir);
        static const char *const proxies[] = { "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY" };
        for (size_t i = 0; i < ELEMENTSOF(proxies); i++)
                (void)unsetenv(proxies[i]);
        const char *top = getenv("TOP");
        char script[512];
        (void)snprintf(script, sizeof script, "%s/tests/tools/httpd.py", top && *top ? top : ".");
        S.pid = fork();
        if (S.pid < 0)
                return -1;
        if (S.pid == 0) {
                (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
                char *const argv[] = { "python3", script, "--root", S.src, "--port-file", port_file, "--log", log, NULL };
                execvp("python3", argv);
                _exit(127);
        }
        for (int i = 0; i < 200; i++) {
                _cleanup_free_ char *data = NULL;
                if (fs_read_file_follow_at(AT_FDCWD, port_file, 64, &data, NULL) == 0) {
                        S.port = atoi(data);
                        return S.port > 0 ? 0 : -1;
                }
                (void)nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000000L }, NULL);
        }
        return -1;
}

static int group_setup(void **state) {
        (void)state;
        if (!gpgme_check_version(NULL))
                return -1;
        (void)snprintf(S.dir, sizeof S.dir, "/tmp/mkm-test-pipeline.XXXXXX");
        if (!mkdtemp(S.dir))
                return -1;
        (void)snprintf(S.src, sizeof S.src, "%s/src", S.dir);
        if (mkdir(S.src, 0755) < 0 || setenv("TMPDIR", S.dir, 1) < 0)
                return -1;
        const char *top = getenv("TOP");
        char script[512];
        (void)snprintf(script, sizeof script, "%s/tests/tools/mkkeys.sh", top && *top ? top : ".");
        struct mkm_err err = {};
        if (run_script(script, S.dir) != 0 || verify_keyring_new(NULL, path_in("simple"), &S.keyring, &err) < 0) {
                fprintf(stderr, "keys: %s\n", err.msg);
                return -1;
        }
        return start_server();
}

static int group_teardown(void **state) {
        (void)state;
        if (S.pid > 0) {
                (void)kill(S.pid, SIGTERM);
                (void)waitpid(S.pid, NULL, 0);
        }
        S.keyring = verify_keyring_free(S.keyring);
        (void)fs_rm_rf_at(AT_FDCWD, S.dir);
        return 0;
}

/* ---- helpers --------------------------------------------------------------------------------- */

struct file {
        char name[64];
        char sha[HASH_SHA256_HEX];
        uint64_t size;
        char url[256], http[256];
        char *urls[2], *http_urls[2];
};

/* Serve name with content (len bytes) and describe it. */
static void serve(struct file *f, const char *name, const void *data, size_t len) {
        *f = (struct file){};
        (void)snprintf(f->name, sizeof f->name, "%s", name);
        char path[256];
        (void)snprintf(path, sizeof path, "%s/%s", S.src, name);
        assert_int_equal(fs_write_file_at(AT_FDCWD, path, data, len, 0644), 0);
        assert_int_equal(hash_buf_hex(HASH_SHA256, data, len, f->sha), 0);
        f->size = len;
        (void)snprintf(f->url, sizeof f->url, "file://%s", path);
        (void)snprintf(f->http, sizeof f->http, "http://127.0.0.1:%d/%s", S.port, name);
        f->urls[0] = f->url;
        f->http_urls[0] = f->http;
}

/* Serve a copy of a file mkkeys.sh made. */
static void serve_key_file(struct file *f, const char *name, const char *from) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, path_in(from), 1 << 20, &data, &len), 0);
        serve(f, name, data, len);
}

static struct cache *new_cache(char *ret_dir, size_t size) {
        (void)snprintf(ret_dir, size, "%s/cache-%u", S.dir, S.ncache++);
        struct cache *c = NULL;
        struct mkm_err err = {};
        assert_int_equal(cache_open(NULL, ret_dir, &c, &err), 0);
        return c;
}

static struct pipeline_item digest_item(const struct file *f, const char *name) {
        return (struct pipeline_item){ .label = f->name, .name = name, .urls = f->urls, .sha256 = f->sha, .size = f->size };
}

static struct mkm_ctx ctx = { .jobs = 3 };

/* ---- DIGEST ---------------------------------------------------------------------------------- */

static void test_digest(void **state) {
        (void)state;
        char dir[128];
        _cleanup_(cache_freep) struct cache *c = new_cache(dir, sizeof dir);
        struct file a, b, d;
        serve(&a, "a_1.0_all.deb", "alpha", 5);
        serve(&b, "b_1.0_all.deb", "bravo!", 6);
        serve(&d, "d_1.0_all.deb", "delta", 5);
        struct pipeline_item items[] = { digest_item(&a, "a"), digest_item(&b, "b"), digest_item(&d, "d") };
        _cleanup_(pipeline_freep) struct pipeline *p = NULL;
        struct mkm_err err = {};
        assert_int_equal(pipeline_start(&ctx, c, PIPELINE_TRUST_DIGEST, NULL, items, ELEMENTSOF(items), &p, &err), 0);
        /* Any order; each is in the cache once pipeline_wait() says so. */
        for (size_t k = 0; k < ELEMENTSOF(items); k++) {
                size_t i = ELEMENTSOF(items) - 1 - k;
                char fpr[VERIFY_FPR_MAX] = "junk";
                assert_int_equal(pipeline_wait(p, i, fpr, &err), 0);
                assert_string_equal(fpr, "");
                assert_int_equal(cache_check(c, items[i].sha256, items[i].size, CACHE_CHECK_REHASH, NULL, &err), 0);
        }
        /* Again: the result is kept. */
        assert_int_equal(pipeline_wait(p, 1, NULL, &err), 0);
        assert_int_equal(pipeline_wait(p, 3, NULL, &err), -EINVAL);
        assert_int_equal(pipeline_wait_all(p, &err), 0);
        uint64_t waited = 1;
        unsigned native = 9, by_gpg = 9;
        pipeline_stats(p, &waited, &native, &by_gpg);
        assert_int_equal(native, 0);
        assert_int_equal(by_gpg, 0);
        assert_int_equal(pipeline_finish(p, &err), 0);
}

static void test_digest_failures(void **state) {
        (void)state;
        char dir[128];
        _cleanup_(cache_freep) struct cache *c = new_cache(dir, sizeof dir);
        struct file good, wrong, gone, nourl;
        serve(&good, "good.deb", "good", 4);
        serve(&wrong, "wrong.deb", "served", 6);
        serve(&gone, "gone.deb", "gone", 4);
        serve(&nourl, "nourl.deb", "nourl", 5);
        char other[HASH_SHA256_HEX];
        assert_int_equal(hash_buf_hex(HASH_SHA256, "expect", 6, other), 0);
        char gone_path[256];
        (void)snprintf(gone_path, sizeof gone_path, "%s/gone.deb", S.src);
        assert_int_equal(unlink(gone_path), 0);
        struct pipeline_item items[] = { digest_item(&good, "good"), digest_item(&wrong, "wrong"),
                                         digest_item(&gone, "gone"), digest_item(&nourl, "nourl") };
        items[1].sha256 = other;        /* the index promised other bytes */
        items[3].urls = NULL;
        _cleanup_(pipeline_freep) struct pipeline *p = NULL;
        struct mkm_err err = {};
        assert_int_equal(pipeline_start(&ctx, c, PIPELINE_TRUST_DIGEST, NULL, items, ELEMENTSOF(items), &p, &err), 0);
        assert_int_equal(pipeline_wait(p, 3, NULL, &err), -ENOENT);
        assert_string_equal(err.msg, "cannot download nourl.deb: no URL to download it from");
        assert_int_equal(pipeline_wait(p, 2, NULL, &err), err.code);
        assert_true(err.code < 0);
        assert_non_null(strstr(err.msg, "cannot download gone.deb: "));
        assert_int_equal(pipeline_wait(p, 1, NULL, &err), -MKM_E_DIGEST_MISMATCH);
        assert_non_null(strstr(err.msg, "wrong.deb from file://"));
        assert_int_equal(cache_lookup(c, other, NULL), -ENOENT);
        /* One item's failure is its own. */
        assert_int_equal(pipeline_wait(p, 0, NULL, &err), 0);
        /* wait_all stops at the first failure, in order. */
        assert_int_equal(pipeline_wait_all(p, &err), -MKM_E_DIGEST_MISMATCH);
        assert_non_null(strstr(err.msg, "wrong.deb"));
}

/* The cache syncs once per build: after a crash an entry may have the right size and the wrong
 * bytes. With no signature to catch it, the pipeline hashes what it did not download itself. */
static void test_digest_damaged_cache(void **state) {
        (void)state;
        char dir[128];
        _cleanup_(cache_freep) struct cache *c = new_cache(dir, sizeof dir);
        struct file a;
        serve(&a, "a.deb", "original bytes", 14);
        struct pipeline_item it = digest_item(&a, "a");
        struct mkm_err err = {};
        struct pipeline *p = NULL;
        assert_int_equal(pipeline_start(&ctx, c, PIPELINE_TRUST_DIGEST, NULL, &it, 1, &p, &err), 0);
        assert_int_equal(pipeline_wait(p, 0, NULL, &err), 0);
        p = pipeline_free(p);
        /* Damage the entry, same size. */
        _cleanup_free_ char *path = NULL;
        assert_int_equal(cache_lookup(c, a.sha, &path), 0);
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, path, "damaged bytes!", 14, 0444), 0);
        assert_int_equal(pipeline_start(&ctx, c, PIPELINE_TRUST_DIGEST, NULL, &it, 1, &p, &err), 0);
        assert_int_equal(pipeline_wait(p, 0, NULL, &err), -MKM_E_DIGEST_MISMATCH);
        print_message("%s\n", err.msg);
        assert_non_null(strstr(err.msg, "a: the cached package was damaged ("));
        assert_non_null(strstr(err.msg, "); it was removed from the cache, the next build downloads it again"));
        p = pipeline_free(p);
        assert_int_equal(cache_lookup(c, a.sha, NULL), -ENOENT);
        /* The next run downloads it again. */
        assert_int_equal(pipeline_start(&ctx, c, PIPELINE_TRUST_DIGEST, NULL, &it, 1, &p, &err), 0);
        assert_int_equal(pipeline_wait(p, 0, NULL, &err), 0);
        p = pipeline_free(p);
        assert_int_equal(cache_check(c, a.sha, a.size, CACHE_CHECK_REHASH, NULL, &err), 0);
}

/* A partial body an earlier build left (tmp/dl-SHA.part) is resumed; when the whole turns out
 * wrong, it is downloaded once more from the first byte. */
static void test_digest_bad_partial_over_http(void **state) {
        (void)state;
        char dir[128];
        _cleanup_(cache_freep) struct cache *c = new_cache(dir, sizeof dir);
        char body[4096];
        for (size_t i = 0; i < sizeof body; i++)
                body[i] = (char)('a' + i % 23);
        struct file a;
        serve(&a, "big.deb", body, sizeof body);
        char part[512];
        (void)snprintf(part, sizeof part, "%s/tmp/dl-%s.part", dir, a.sha);
        assert_int_equal(fs_write_file_at(AT_FDCWD, part, "WRONG WRONG", 11, 0600), 0);
        struct pipeline_item it = digest_item(&a, "big");
        it.urls = a.http_urls;
        struct mkm_err err = {};
        _cleanup_(pipeline_freep) struct pipeline *p = NULL;
        assert_int_equal(pipeline_start(&ctx, c, PIPELINE_TRUST_DIGEST, NULL, &it, 1, &p, &err), 0);
        assert_int_equal(pipeline_wait(p, 0, NULL, &err), 0);
        assert_int_equal(pipeline_finish(p, &err), 0);
        assert_int_equal(cache_check(c, a.sha, a.size, CACHE_CHECK_REHASH, NULL, &err), 0);
        _cleanup_free_ char *log = NULL;
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, path_in("requests.log"), 1 << 20, &log, NULL), 0);
        assert_non_null(strstr(log, "GET /big.deb bytes=11-"));
}

/* ---- DETACHED_SIG ---------------------------------------------------------------------------- */

static void test_detached_sig(void **state) {
        (void)state;
        char dir[128];
        _cleanup_(cache_freep) struct cache *c = new_cache(dir, sizeof dir);
        struct file pkg, sig, tampered, tsig, unsigned_sig;
        serve_key_file(&pkg, "good-1.0-1-any.pkg.tar.zst", "data");
        serve_key_file(&sig, "good-1.0-1-any.pkg.tar.zst.sig", "data.T.sig");
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, path_in("data"), 1 << 20, &data, &len), 0);
        data[0] ^= 1;
        serve(&tampered, "evil-1.0-1-any.pkg.tar.zst", data, len);
        serve_key_file(&tsig, "evil-1.0-1-any.pkg.tar.zst.sig", "data.T.sig");
        serve_key_file(&unsigned_sig, "other.sig", "data.U.sig");
        struct file ksig;
        serve_key_file(&ksig, "sub.sig", "data.K.sig");
        struct pipeline_item items[] = {
                { .label = pkg.name, .name = "good", .version = "1.0-1", .urls = pkg.urls, .sha256 = pkg.sha,
                  .size = pkg.size, .sig_label = sig.name, .sig_urls = sig.urls, .sig_sha256 = sig.sha },
                { .label = tampered.name, .name = "evil", .version = "1.0-1", .urls = tampered.urls,
                  .sha256 = tampered.sha, .size = tampered.size, .sig_label = tsig.name, .sig_urls = tsig.urls,
                  .sig_sha256 = tsig.sha },
                /* the same payload, signed by a key the keyring does not have */
                { .label = pkg.name, .name = "stranger", .version = "2-1", .urls = pkg.urls, .sha256 = pkg.sha,
                  .size = pkg.size, .sig_label = unsigned_sig.name, .sig_urls = unsigned_sig.urls,
                  .sig_sha256 = unsigned_sig.sha },
                /* made by K's signing subkey: the signer is K's primary key */
                { .label = pkg.name, .name = "sub", .urls = pkg.urls, .sha256 = pkg.sha, .size = pkg.size,
                  .sig_label = ksig.name, .sig_urls = ksig.urls, .sig_sha256 = ksig.sha },
        };
        struct mkm_err err = {};
        _cleanup_(pipeline_freep) struct pipeline *p = NULL;
        /* DETACHED_SIG needs a keyring and every signature's digest. */
        assert_int_equal(pipeline_start(&ctx, c, PIPELINE_TRUST_DETACHED_SIG, NULL, items, ELEMENTSOF(items), &p, &err), -EINVAL);
        items[0].sig_sha256 = NULL;
        assert_int_equal(pipeline_start(&ctx, c, PIPELINE_TRUST_DETACHED_SIG, S.keyring, items, ELEMENTSOF(items), &p, &err), -EINVAL);
        items[0].sig_sha256 = sig.sha;
        assert_null(p);
        assert_int_equal(pipeline_start(&ctx, c, PIPELINE_TRUST_DETACHED_SIG, S.keyring, items, ELEMENTSOF(items), &p, &err), 0);
        char fpr[VERIFY_FPR_MAX] = "";
        assert_int_equal(pipeline_wait(p, 0, fpr, &err), 0);
        _cleanup_free_ char *want = NULL;
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, path_in("fpr.T"), 128, &want, NULL), 0);
        want[strcspn(want, "\n")] = 0;
        assert_string_equal(fpr, want);
        int r = pipeline_wait(p, 1, fpr, &err);
        print_message("tampered: %d %s\n", r, err.msg);
        assert_int_equal(r, -MKM_E_SIG_BAD);
        assert_non_null(strstr(err.msg, "evil-1.0-1 (evil-1.0-1-any.pkg.tar.zst): "));
        r = pipeline_wait(p, 2, fpr, &err);
        print_message("unknown key: %d %s\n", r, err.msg);
        assert_true(r < 0);
        assert_non_null(strstr(err.msg, "stranger-2-1 (good-1.0-1-any.pkg.tar.zst): "));
        assert_int_equal(pipeline_wait(p, 3, fpr, &err), 0);
        _cleanup_free_ char *kfpr = NULL;
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, path_in("fpr.K"), 128, &kfpr, NULL), 0);
        kfpr[strcspn(kfpr, "\n")] = 0;
        assert_string_equal(fpr, kfpr);
        /* Both trust checks stay in place: the cache entries of the bad ones are intact. */
        assert_int_equal(cache_check(c, tampered.sha, tampered.size, CACHE_CHECK_REHASH, NULL, &err), 0);
        unsigned native = 0, by_gpg = 0;
        pipeline_stats(p, NULL, &native, &by_gpg);
        assert_int_equal(native + by_gpg, 2);
}

/* A package is checked only once its signature is in the cache too, however late that comes. */
static void test_detached_sig_waits_for_signature(void **state) {
        (void)state;
        char dir[128];
        _cleanup_(cache_freep) struct cache *c = new_cache(dir, sizeof dir);
        struct file pkg, sig;
        serve_key_file(&pkg, "late-1-1-any.pkg.tar.zst", "data");
        serve_key_file(&sig, "late-1-1-any.pkg.tar.zst.sig", "data.T.sig");
        char slow[256];
        (void)snprintf(slow, sizeof slow, "http://127.0.0.1:%d/fault/slow/%s", S.port, sig.name);
        char *slow_urls[] = { slow, NULL };
        struct pipeline_item it = { .label = pkg.name, .name = "late", .version = "1-1", .urls = pkg.urls,
                                    .sha256 = pkg.sha, .size = pkg.size, .sig_label = sig.name, .sig_urls = slow_urls,
                                    .sig_sha256 = sig.sha };
        struct mkm_err err = {};
        _cleanup_(pipeline_freep) struct pipeline *p = NULL;
        assert_int_equal(pipeline_start(&ctx, c, PIPELINE_TRUST_DETACHED_SIG, S.keyring, &it, 1, &p, &err), 0);
        int r = pipeline_wait(p, 0, NULL, &err);
        if (r < 0)
                print_message("%s\n", err.msg);
        assert_int_equal(r, 0);
}

/* A damaged package entry is the cache's fault, not the signer's: dropped and said so. */
static void test_detached_sig_damaged_cache(void **state) {
        (void)state;
        char dir[128];
        _cleanup_(cache_freep) struct cache *c = new_cache(dir, sizeof dir);
        struct file pkg, sig;
        serve_key_file(&pkg, "good-1.0-1-any.pkg.tar.zst", "data");
        serve_key_file(&sig, "good-1.0-1-any.pkg.tar.zst.sig", "data.T.sig");
        struct pipeline_item it = { .label = pkg.name, .name = "good", .version = "1.0-1", .urls = pkg.urls,
                                    .sha256 = pkg.sha, .size = pkg.size, .sig_label = sig.name, .sig_urls = sig.urls,
                                    .sig_sha256 = sig.sha };
        struct mkm_err err = {};
        struct pipeline *p = NULL;
        assert_int_equal(pipeline_start(&ctx, c, PIPELINE_TRUST_DETACHED_SIG, S.keyring, &it, 1, &p, &err), 0);
        assert_int_equal(pipeline_wait(p, 0, NULL, &err), 0);
        p = pipeline_free(p);
        _cleanup_free_ char *path = NULL, *data = NULL;
        size_t len = 0;
        assert_int_equal(cache_lookup(c, pkg.sha, &path), 0);
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, path, 1 << 20, &data, &len), 0);
        data[len / 2] ^= 0x20;
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, path, data, len, 0444), 0);
        assert_int_equal(pipeline_start(&ctx, c, PIPELINE_TRUST_DETACHED_SIG, S.keyring, &it, 1, &p, &err), 0);
        assert_int_equal(pipeline_wait(p, 0, NULL, &err), -MKM_E_DIGEST_MISMATCH);
        assert_non_null(strstr(err.msg, "good: the cached package was damaged ("));
        p = pipeline_free(p);
        assert_int_equal(cache_lookup(c, pkg.sha, NULL), -ENOENT);
}

/* ---- cancellation, batch, blobs -------------------------------------------------------------- */

/* Freed right away, with downloads and checks still to do: every thread ends, nothing leaks
 * (ASan), and what is in the cache is whole. */
static void test_free_cancels(void **state) {
        (void)state;
        char dir[128];
        _cleanup_(cache_freep) struct cache *c = new_cache(dir, sizeof dir);
        enum { N = 12 };
        struct file f[N];
        struct pipeline_item items[N];
        static char body[N][2048];
        for (size_t i = 0; i < N; i++) {
                char name[32];
                (void)snprintf(name, sizeof name, "p%zu.deb", i);
                memset(body[i], (int)('a' + i), sizeof body[i]);
                serve(&f[i], name, body[i], sizeof body[i]);
                items[i] = digest_item(&f[i], NULL);
                items[i].urls = f[i].http_urls;
        }
        for (int round = 0; round < 3; round++) {
                struct pipeline *p = NULL;
                struct mkm_err err = {};
                assert_int_equal(pipeline_start(&ctx, c, PIPELINE_TRUST_DIGEST, NULL, items, N, &p, &err), 0);
                assert_null(pipeline_free(p));
        }
        for (size_t i = 0; i < N; i++) {
                struct mkm_err err = {};
                int r = cache_check(c, f[i].sha, f[i].size, CACHE_CHECK_REHASH, NULL, &err);
                assert_true(r == 0 || r == -ENOENT);
        }
        assert_null(pipeline_free(NULL));
}

static void test_fetch_batch(void **state) {
        (void)state;
        char dir[128];
        _cleanup_(cache_freep) struct cache *c = new_cache(dir, sizeof dir);
        struct file db, sig;
        serve(&db, "core.db", "a db", 4);
        serve(&sig, "missing.db.sig", "x", 1);
        char sigpath[256];
        (void)snprintf(sigpath, sizeof sigpath, "%s/missing.db.sig", S.src);
        assert_int_equal(unlink(sigpath), 0);
        struct pipeline_want w[] = {
                { .urls = db.urls, .label = "core.db" },                        /* digest unknown: learnt */
                { .urls = sig.urls, .label = "missing.db.sig", .optional = true },
        };
        struct mkm_err err = {};
        assert_int_equal(pipeline_fetch_batch(&ctx, c, w, 2, &err), 0);
        assert_true(w[0].present);
        assert_string_equal(w[0].digest, db.sha);
        assert_false(w[1].present);
        /* Not optional: the same absence is an error naming the file. */
        w[1].optional = false;
        assert_true(pipeline_fetch_batch(&ctx, c, &w[1], 1, &err) < 0);
        assert_non_null(strstr(err.msg, "cannot download missing.db.sig: "));
        /* A known digest already in the cache is not downloaded again. */
        char dbpath[256];
        (void)snprintf(dbpath, sizeof dbpath, "%s/core.db", S.src);
        assert_int_equal(unlink(dbpath), 0);
        struct pipeline_want again = { .urls = db.urls, .label = "core.db", .sha256 = db.sha, .size = db.size };
        assert_int_equal(pipeline_fetch_batch(&ctx, c, &again, 1, &err), 0);
        assert_true(again.present);
        assert_string_equal(again.digest, db.sha);
        /* A blob from inside verified metadata, by digest; labels need no care. */
        char blob[HASH_SHA256_HEX], want[HASH_SHA256_HEX];
        assert_int_equal(pipeline_store_blob(c, "foo-1:2.0-1.pkg.tar.zst.sig", "SIG", 3, blob, &err), 0);
        assert_int_equal(hash_buf_hex(HASH_SHA256, "SIG", 3, want), 0);
        assert_string_equal(blob, want);
        assert_int_equal(cache_check(c, blob, 3, CACHE_CHECK_REHASH, NULL, &err), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_digest),
                cmocka_unit_test(test_digest_failures),
                cmocka_unit_test(test_digest_damaged_cache),
                cmocka_unit_test(test_digest_bad_partial_over_http),
                cmocka_unit_test(test_detached_sig),
                cmocka_unit_test(test_detached_sig_damaged_cache),
                cmocka_unit_test(test_detached_sig_waits_for_signature),
                cmocka_unit_test(test_free_cancels),
                cmocka_unit_test(test_fetch_batch),
        };
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return 1;
        int r = cmocka_run_group_tests(tests, group_setup, group_teardown);
        curl_global_cleanup();
        return r;
}
