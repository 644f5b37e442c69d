/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/cache: commit and lookup, digest and size mismatches, hostile digests
 * and labels, corruption detection, stale temporaries, and concurrent builds sharing a cache
 * (a reader must never see a partial or wrong file). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache.h"
#include "helpers.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"

/* sha256("abc") and sha256("") */
#define ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static int setup(void **state) { return th_tmpdir_setup(state, "cache"); }

static char *write_tmp(struct cache *c, const char *label, const void *data, size_t len) {
        char *p = NULL;
        assert_int_equal(cache_tmp_path(c, label, &p), 0);
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, p, data, len, 0600), 0);
        return p;
}

static size_t count_entries(const char *dir) {
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

static void test_commit_good(void **state) {
        const char *dir = *state;
        _cleanup_(cache_freep) struct cache *c = NULL;
        struct mkm_err err = {};
        assert_int_equal(cache_open(NULL, dir, &c, &err), 0);

        _cleanup_free_ char *tmp = write_tmp(c, "abc.pkg.tar.zst", "abc", 3);
        assert_non_null(strstr(tmp, "/tmp/abc.pkg.tar.zst."));
        char got[HASH_SHA256_HEX] = "";
        assert_int_equal(cache_commit(c, tmp, ABC, 3, got, &err), 0);
        assert_string_equal(got, ABC);
        assert_int_equal(access(tmp, F_OK), -1);        /* moved, not copied */

        _cleanup_free_ char *path = NULL, *want = NULL, *content = NULL;
        assert_int_equal(cache_lookup(c, ABC, &path), 0);
        assert_int_equal(asprintf(&want, "%s/sha256/ba/%s", cache_dir(c), ABC) > 0, 1);
        assert_string_equal(path, want);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0444);
        size_t len;
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, path, 100, &content, &len), 0);
        assert_int_equal(len, 3);
        assert_memory_equal(content, "abc", 3);

        /* open_fd reads the same bytes. */
        _cleanup_close_ int fd = -EBADF;
        assert_int_equal(cache_open_fd(c, ABC, &fd), 0);
        char buf[8];
        assert_int_equal(read(fd, buf, sizeof buf), 3);
        assert_memory_equal(buf, "abc", 3);

        /* NULL expected digest: computed and returned. Size 0 means any. Empty files are fine. */
        _cleanup_free_ char *t2 = write_tmp(c, "empty", "", 0);
        assert_int_equal(cache_commit(c, t2, NULL, 0, got, &err), 0);
        assert_string_equal(got, EMPTY);
        assert_int_equal(cache_lookup(c, EMPTY, NULL), 0);

        /* Committing the same content again replaces it with an identical copy. */
        _cleanup_free_ char *t3 = write_tmp(c, "abc-again", "abc", 3);
        assert_int_equal(cache_commit(c, t3, ABC, 0, NULL, &err), 0);
        assert_int_equal(cache_check(c, ABC, 3, CACHE_CHECK_REHASH, NULL, &err), 0);
        _cleanup_free_ char *tmpdir = NULL;
        assert_int_equal(asprintf(&tmpdir, "%s/tmp", dir) > 0, 1);
        assert_int_equal(count_entries(tmpdir), 0);

        /* Deferred sync: the commit is visible and verified at once, durable after cache_sync. */
        cache_set_deferred_sync(c, true);
        _cleanup_free_ char *t4 = write_tmp(c, "deferred", "abc", 3);
        assert_int_equal(cache_commit(c, t4, ABC, 3, NULL, &err), 0);
        assert_int_equal(cache_check(c, ABC, 3, CACHE_CHECK_REHASH, NULL, &err), 0);
        _cleanup_free_ char *t5 = write_tmp(c, "deferred-bad", "abd", 3);
        assert_int_equal(cache_commit(c, t5, ABC, 3, NULL, &err), -MKM_E_DIGEST_MISMATCH);
        assert_int_equal(cache_sync(c), 0);
        cache_set_deferred_sync(c, false);
}

static void test_commit_mismatch(void **state) {
        const char *dir = *state;
        _cleanup_(cache_freep) struct cache *c = NULL;
        struct mkm_err err = {};
        assert_int_equal(cache_open(NULL, dir, &c, &err), 0);

        _cleanup_free_ char *tmp = write_tmp(c, "evil", "abd", 3);
        char got[HASH_SHA256_HEX] = "untouched";
        assert_int_equal(cache_commit(c, tmp, ABC, 3, got, &err), -MKM_E_DIGEST_MISMATCH);
        assert_int_equal(err.code, -MKM_E_DIGEST_MISMATCH);
        char want[512];
        char abd[HASH_SHA256_HEX];
        assert_int_equal(hash_buf_hex(HASH_SHA256, "abd", 3, abd), 0);
        const char *base = strrchr(tmp, '/') + 1;
        (void)snprintf(want, sizeof want, "%s: sha256 mismatch: expected %s, got %s", base, ABC, abd);
        assert_string_equal(err.msg, want);
        assert_string_equal(got, "untouched");
        assert_int_equal(access(tmp, F_OK), -1);        /* the bad download is gone */
        assert_int_equal(cache_lookup(c, ABC, NULL), -ENOENT);
        assert_int_equal(cache_lookup(c, abd, NULL), -ENOENT);
        _cleanup_free_ char *sha = NULL, *tmpdir = NULL;
        assert_int_equal(asprintf(&sha, "%s/sha256", dir) > 0, 1);
        assert_int_equal(asprintf(&tmpdir, "%s/tmp", dir) > 0, 1);
        assert_int_equal(count_entries(sha), 0);
        assert_int_equal(count_entries(tmpdir), 0);

        /* Right digest, wrong size (as promised by the index). */
        _cleanup_free_ char *t2 = write_tmp(c, "short", "abc", 3);
        assert_int_equal(cache_commit(c, t2, ABC, 4, NULL, &err), -MKM_E_DIGEST_MISMATCH);
        base = strrchr(t2, '/') + 1;
        (void)snprintf(want, sizeof want, "%s: size mismatch: expected 4 bytes, got 3", base);
        assert_string_equal(err.msg, want);
        assert_int_equal(access(t2, F_OK), -1);
        assert_int_equal(count_entries(sha), 0);
        assert_int_equal(count_entries(tmpdir), 0);
}

static void test_hostile_names(void **state) {
        const char *dir = *state;
        _cleanup_(cache_freep) struct cache *c = NULL;
        struct mkm_err err = {};
        assert_int_equal(cache_open(NULL, dir, &c, &err), 0);
        char *p = NULL;
        int fd = -1;
        static const char *const bad_digests[] = {
                "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",     /* upper case */
                "ba7816bf",                                                              /* short */
                ABC "00",                                                                /* long */
                "../../../../../../../../etc/passwd",
                "ba/../../7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2001",
                "",
                "g a7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_digests); i++) {
                assert_int_equal(cache_lookup(c, bad_digests[i], &p), -EINVAL);
                assert_int_equal(cache_open_fd(c, bad_digests[i], &fd), -EINVAL);
                assert_int_equal(cache_check(c, bad_digests[i], 0, 0, NULL, &err), -EINVAL);
                assert_non_null(strstr(err.msg, "invalid sha256 digest"));
        }
        assert_null(p);
        assert_int_equal(cache_lookup(c, NULL, NULL), -EINVAL);
        assert_int_equal(cache_lookup(c, ABC, &p), -ENOENT);
        assert_int_equal(cache_open_fd(c, ABC, &fd), -ENOENT);
        assert_int_equal(cache_check(c, ABC, 0, CACHE_CHECK_REHASH, NULL, &err), -ENOENT);

        static const char *const bad_labels[] = { "", "../x", "a/b", ".hidden", "sp ace", "x\n", NULL };
        for (size_t i = 0; bad_labels[i]; i++)
                assert_int_equal(cache_tmp_path(c, bad_labels[i], &p), -EINVAL);
        char longlabel[200];
        memset(longlabel, 'a', sizeof longlabel - 1);
        longlabel[sizeof longlabel - 1] = 0;
        assert_int_equal(cache_tmp_path(c, longlabel, &p), -EINVAL);
        assert_null(p);

        _cleanup_free_ char *t = write_tmp(c, "x", "abc", 3);
        assert_int_equal(cache_commit(c, t, "ABC", 0, NULL, &err), -EINVAL);
        assert_string_equal(err.msg, "invalid expected sha256 digest 'ABC'");
        assert_int_equal(access(t, F_OK), 0);           /* a caller error deletes nothing */

        /* Only files directly in DIR/tmp are committed (never e.g. a file of the user's). */
        _cleanup_free_ char *outside = NULL;
        assert_int_equal(asprintf(&outside, "%s/outside", dir) > 0, 1);
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, outside, "abc", 3, 0644), 0);
        assert_int_equal(cache_commit(c, outside, ABC, 3, NULL, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "is not inside the cache's temporary directory"));
        assert_int_equal(access(outside, F_OK), 0);
        _cleanup_free_ char *sub = NULL;
        assert_int_equal(asprintf(&sub, "%s/tmp/..", dir) > 0, 1);
        assert_int_equal(cache_commit(c, sub, NULL, 0, NULL, &err), -EINVAL);

        /* A symlink in tmp/ is not followed. */
        _cleanup_free_ char *link = NULL;
        assert_int_equal(asprintf(&link, "%s/tmp/link", dir) > 0, 1);
        assert_int_equal(symlink(outside, link), 0);
        assert_int_equal(cache_commit(c, link, NULL, 0, NULL, &err), -ELOOP);
        assert_int_equal(cache_lookup(c, ABC, NULL), -ENOENT);
}

static void test_corruption(void **state) {
        const char *dir = *state;
        _cleanup_(cache_freep) struct cache *c = NULL;
        struct mkm_err err = {};
        assert_int_equal(cache_open(NULL, dir, &c, &err), 0);
        _cleanup_free_ char *t = write_tmp(c, "x", "abc", 3), *path = NULL;
        assert_int_equal(cache_commit(c, t, ABC, 3, NULL, &err), 0);
        assert_int_equal(cache_lookup(c, ABC, &path), 0);
        /* Someone (root ignores 0444) flips content without changing the size. */
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, path, "abd", 3, 0444), 0);
        assert_int_equal(cache_check(c, ABC, 3, 0, NULL, &err), 0);  /* the cheap check cannot tell */
        assert_int_equal(cache_check(c, ABC, 4, 0, NULL, &err), -MKM_E_DIGEST_MISMATCH);
        assert_non_null(strstr(err.msg, "size mismatch: expected 4 bytes, the cached file has 3"));
        assert_int_equal(cache_lookup(c, ABC, NULL), -ENOENT);     /* removed */

        _cleanup_free_ char *t2 = write_tmp(c, "x", "abc", 3);
        assert_int_equal(cache_commit(c, t2, ABC, 3, NULL, &err), 0);
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, path, "abd", 3, 0444), 0);
        assert_int_equal(cache_check(c, ABC, 3, CACHE_CHECK_REHASH, NULL, &err), -MKM_E_DIGEST_MISMATCH);
        char abd[HASH_SHA256_HEX];
        assert_int_equal(hash_buf_hex(HASH_SHA256, "abd", 3, abd), 0);
        char want[512];
        (void)snprintf(want, sizeof want, "%s/sha256/ba/%s: corrupt cache file: sha256 expected %s, got %s",
                       cache_dir(c), ABC, ABC, abd);
        assert_string_equal(err.msg, want);
        assert_int_equal(cache_lookup(c, ABC, NULL), -ENOENT);
}

static void test_stale_cleanup(void **state) {
        const char *dir = *state;
        struct mkm_err err = {};
        _cleanup_(cache_freep) struct cache *c = NULL;
        assert_int_equal(cache_open(NULL, dir, &c, &err), 0);
        _cleanup_free_ char *old = write_tmp(c, "old", "x", 1), *fresh = write_tmp(c, "fresh", "y", 1);
        _cleanup_free_ char *olddir = NULL, *oldpart = NULL;
        assert_int_equal(asprintf(&olddir, "%s/tmp/olddir", dir) > 0, 1);
        assert_int_equal(asprintf(&oldpart, "%s/tmp/olddir/f.part", dir) > 0, 1);
        assert_int_equal(mkdir(olddir, 0755), 0);
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, oldpart, "z", 1, 0644), 0);
        struct timespec ts[2] = { { .tv_sec = time(NULL) - 2 * 86400 }, { .tv_sec = time(NULL) - 2 * 86400 } };
        assert_int_equal(utimensat(AT_FDCWD, old, ts, 0), 0);
        assert_int_equal(utimensat(AT_FDCWD, olddir, ts, 0), 0);
        /* Younger than a day: a build may still be writing it. */
        struct timespec young[2] = { { .tv_sec = time(NULL) - 3600 }, { .tv_sec = time(NULL) - 3600 } };
        assert_int_equal(utimensat(AT_FDCWD, fresh, young, 0), 0);

        c = cache_free(c);
        assert_int_equal(cache_open(NULL, dir, &c, &err), 0);
        assert_int_equal(access(old, F_OK), -1);
        assert_int_equal(access(olddir, F_OK), -1);
        assert_int_equal(access(fresh, F_OK), 0);
}

/* Stable download names: resumable, held by one process at a time, released cleanly. */
static void test_stable_names(void **state) {
        const char *dir = *state;
        struct mkm_err err = {};
        _cleanup_(cache_freep) struct cache *c = NULL;
        assert_int_equal(cache_open(NULL, dir, &c, &err), 0);
        _cleanup_free_ char *a = NULL, *b = NULL, *again = NULL, *want = NULL, *lock = NULL, *part = NULL;
        assert_true(asprintf(&want, "%s/tmp/dl-%s", dir, ABC) > 0);
        assert_true(asprintf(&lock, "%s/tmp/dl-%s.lock", dir, ABC) > 0);
        assert_true(asprintf(&part, "%s/tmp/dl-%s.part", dir, ABC) > 0);
        assert_int_equal(cache_tmp_path_for(c, ABC, &a), 0);
        assert_string_equal(a, want);
        assert_int_equal(access(lock, F_OK), 0);
        /* While it is held (here by this same process, through another open file), a second
         * reservation gets a unique name: nobody writes into the other's partial body. */
        assert_int_equal(cache_tmp_path_for(c, ABC, &b), 0);
        assert_string_not_equal(a, b);
        assert_false(cache_tmp_release(c, b));
        (void)unlink(b);
        /* A partial body survives the release (for the next build); the lock and the name go. */
        assert_int_equal(fs_write_file_at(AT_FDCWD, part, "ab", 2, 0644), 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, a, "abc", 3, 0644), 0);
        assert_true(cache_tmp_release(c, a));
        assert_false(cache_tmp_release(c, a));
        assert_int_equal(access(lock, F_OK), -1);
        assert_int_equal(access(a, F_OK), -1);
        assert_int_equal(access(part, F_OK), 0);
        assert_int_equal(cache_tmp_path_for(c, ABC, &again), 0);
        assert_string_equal(again, want);
        /* A held name commits like any other. */
        assert_int_equal(fs_write_file_at(AT_FDCWD, again, "abc", 3, 0644), 0);
        char got[HASH_SHA256_HEX];
        assert_int_equal(cache_commit(c, again, ABC, 3, got, &err), 0);
        assert_true(cache_tmp_release(c, again));
        assert_int_equal(cache_lookup(c, ABC, NULL), 0);
        _cleanup_free_ char *bad = NULL;
        assert_int_equal(cache_tmp_path_for(c, "../../etc/passwd", &bad), -EINVAL);
        assert_int_equal(cache_tmp_path_for(c, "ABC", &bad), -EINVAL);
}

/* The stale cleanup removes an old download lock only when nobody holds it. */
static void test_stale_locks(void **state) {
        const char *dir = *state;
        struct mkm_err err = {};
        _cleanup_(cache_freep) struct cache *c = NULL, *c2 = NULL;
        assert_int_equal(cache_open(NULL, dir, &c, &err), 0);
        _cleanup_free_ char *held = NULL, *lheld = NULL, *lfree = NULL;
        assert_int_equal(cache_tmp_path_for(c, ABC, &held), 0);
        assert_true(asprintf(&lheld, "%s/tmp/dl-%s.lock", dir, ABC) > 0);
        assert_true(asprintf(&lfree, "%s/tmp/dl-%s.lock", dir, EMPTY) > 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, lfree, "", 0, 0600), 0);
        struct timespec ts[2] = { { .tv_sec = time(NULL) - 2 * 86400 }, { .tv_sec = time(NULL) - 2 * 86400 } };
        assert_int_equal(utimensat(AT_FDCWD, lheld, ts, 0), 0);
        assert_int_equal(utimensat(AT_FDCWD, lfree, ts, 0), 0);
        assert_int_equal(cache_open(NULL, dir, &c2, &err), 0);  /* cleans up */
        assert_int_equal(access(lheld, F_OK), 0);
        assert_int_equal(access(lfree, F_OK), -1);
}

/* A cache someone else can write into is refused: they could swap verified files, plant partial
 * downloads or prepared key homes. */
static void test_foreign_owner(void **state) {
        const char *dir = *state;
        struct mkm_err err = {};
        struct cache *c = NULL;
        assert_int_equal(cache_open(NULL, dir, &c, &err), 0);
        c = cache_free(c);
        _cleanup_free_ char *tmp = NULL, *sha = NULL;
        assert_true(asprintf(&tmp, "%s/tmp", dir) > 0);
        assert_true(asprintf(&sha, "%s/sha256", dir) > 0);
        if (geteuid() == 0) {
                assert_int_equal(chown(tmp, 1234, 1234), 0);
                assert_int_equal(cache_open(NULL, dir, &c, &err), -EPERM);
                print_message("%s\n", err.msg);
                assert_non_null(strstr(err.msg, "owned by uid 1234"));
                assert_int_equal(chown(tmp, 0, 0), 0);
        }
        assert_int_equal(chmod(sha, 0775), 0);
        assert_int_equal(cache_open(NULL, dir, &c, &err), -EPERM);
        assert_non_null(strstr(err.msg, "writable by nobody else"));
        assert_int_equal(chmod(sha, 0755), 0);
        /* Not even a sticky top: others could create gnupg/ (the prepared key homes) in it. */
        assert_int_equal(chmod(dir, 01777), 0);
        assert_int_equal(cache_open(NULL, dir, &c, &err), -EPERM);
        assert_int_equal(chmod(dir, 0700), 0);
        _cleanup_free_ char *gnupg = NULL;
        assert_true(asprintf(&gnupg, "%s/gnupg", dir) > 0);
        assert_int_equal(mkdir(gnupg, 0777), 0);
        assert_int_equal(chmod(gnupg, 0777), 0);
        assert_int_equal(cache_open(NULL, dir, &c, &err), -EPERM);
        assert_non_null(strstr(err.msg, "/gnupg"));
        assert_int_equal(chmod(gnupg, 0700), 0);
        /* A temporary that is not ours alone is not committed. */
        assert_int_equal(cache_open(NULL, dir, &c, &err), 0);
        _cleanup_free_ char *p = NULL, *link2 = NULL;
        assert_int_equal(cache_tmp_path(c, "x", &p), 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, p, "abc", 3, 0644), 0);
        assert_true(asprintf(&link2, "%s/tmp/second-link", dir) > 0);
        assert_int_equal(link(p, link2), 0);
        assert_int_equal(cache_commit(c, p, ABC, 3, NULL, &err), -EPERM);
        assert_non_null(strstr(err.msg, "2 links"));
        c = cache_free(c);
}

/* ---- concurrency ---- */

#define WRITERS 3
#define SHARED 4
#define RUN_MS 1000

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void fill(char *buf, size_t len, unsigned seed) {
        for (size_t i = 0; i < len; i++)
                buf[i] = (char)((i * 31 + seed * 7919) >> 3);
}

/* A writer: commits the SHARED contents every writer commits, plus its own unique ones,
 * writing each in several chunks so a non-atomic commit would be visible. Exit 0 on success. */
static int writer(const char *dir, unsigned id) {
        struct cache *c = NULL;
        struct mkm_err err = {};
        if (cache_open(NULL, dir, &c, &err) < 0)
                return 10;
        static char buf[256 * 1024];
        uint64_t end = now_ms() + RUN_MS;
        int rc = 0;
        for (unsigned it = 0; now_ms() < end && rc == 0; it++) {
                unsigned seed = it % 2 == 0 ? it / 2 % SHARED : 1000 + id * 100000 + it;
                size_t len = 65536 + (size_t)seed % 4 * 50000;
                fill(buf, len, seed);
                char want[HASH_SHA256_HEX], got[HASH_SHA256_HEX];
                (void)hash_buf_hex(HASH_SHA256, buf, len, want);
                char *p = NULL;
                if (cache_tmp_path(c, "blob", &p) < 0) {
                        rc = 11;
                        break;
                }
                int fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
                for (size_t off = 0; fd >= 0 && off < len; off += 16384)
                        if (write(fd, buf + off, len - off < 16384 ? len - off : 16384) < 0)
                                rc = 12;
                if (fd < 0 || close(fd) < 0)
                        rc = 13;
                if (rc == 0 && (cache_commit(c, p, want, len, got, &err) < 0 || strcmp(got, want) != 0))
                        rc = 14;
                free(p);
        }
        cache_free(c);
        return rc;
}

/* A reader: every file under sha256/ it can open must be complete and hash to its name. */
static int reader(const char *dir, unsigned *seen) {
        struct cache *c = NULL;
        struct mkm_err err = {};
        if (cache_open(NULL, dir, &c, &err) < 0)
                return 20;
        char shadir[4096];
        (void)snprintf(shadir, sizeof shadir, "%s/sha256", dir);
        uint64_t end = now_ms() + RUN_MS + 200;
        *seen = 0;
        while (now_ms() < end) {
                DIR *d = opendir(shadir);
                if (!d)
                        return 21;
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (de->d_name[0] == '.')
                                continue;
                        char sub[4200];
                        (void)snprintf(sub, sizeof sub, "%s/%s", shadir, de->d_name);
                        DIR *s = opendir(sub);
                        if (!s)
                                continue;
                        struct dirent *fe;
                        while ((fe = readdir(s))) {
                                if (fe->d_name[0] == '.')
                                        continue;
                                if (!hash_is_sha256_hex(fe->d_name) || strncmp(fe->d_name, de->d_name, 2) != 0)
                                        return 22;      /* a temporary name leaked into sha256/ */
                                int fd = -1;
                                int r = cache_open_fd(c, fe->d_name, &fd);
                                if (r == -ENOENT)
                                        continue;
                                if (r < 0)
                                        return 23;
                                struct stat st;
                                char got[HASH_SHA256_HEX];
                                if (fstat(fd, &st) < 0 || (st.st_mode & 07777) != 0444 ||
                                    hash_fd_hex(HASH_SHA256, fd, got, NULL) < 0 || strcmp(got, fe->d_name) != 0) {
                                        close(fd);
                                        return 24;      /* partial or wrong content */
                                }
                                close(fd);
                                (*seen)++;
                        }
                        closedir(s);
                }
                closedir(d);
        }
        cache_free(c);
        return 0;
}

static void test_concurrent(void **state) {
        const char *dir = *state;
        pid_t pids[WRITERS + 1];
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        for (unsigned i = 0; i <= WRITERS; i++) {
                pids[i] = fork();
                assert_true(pids[i] >= 0);
                if (pids[i] == 0) {
                        int rc;
                        if (i == WRITERS) {
                                unsigned seen = 0;
                                rc = reader(dir, &seen);
                                (void)!write(fds[1], &seen, sizeof seen);
                        } else
                                rc = writer(dir, i);
                        _exit(rc);
                }
        }
        close(fds[1]);
        for (unsigned i = 0; i <= WRITERS; i++) {
                int status;
                assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
                assert_true(WIFEXITED(status));
                if (WEXITSTATUS(status))
                        print_message("%s %u exited with %d\n", i == WRITERS ? "reader" : "writer", i, WEXITSTATUS(status));
                assert_int_equal(WEXITSTATUS(status), 0);
        }
        unsigned seen = 0;
        assert_int_equal(read(fds[0], &seen, sizeof seen), (ssize_t)sizeof seen);
        close(fds[0]);
        print_message("reader checked %u files\n", seen);
        assert_true(seen > 0);

        /* Afterwards: nothing left in tmp/, every shared content present once, every file good. */
        _cleanup_free_ char *tmpdir = NULL;
        assert_int_equal(asprintf(&tmpdir, "%s/tmp", dir) > 0, 1);
        assert_int_equal(count_entries(tmpdir), 0);
        _cleanup_(cache_freep) struct cache *c = NULL;
        struct mkm_err err = {};
        assert_int_equal(cache_open(NULL, dir, &c, &err), 0);
        static char buf[256 * 1024];
        for (unsigned s = 0; s < SHARED; s++) {
                size_t len = 65536 + (size_t)s % 4 * 50000;
                char want[HASH_SHA256_HEX];
                fill(buf, len, s);
                assert_int_equal(hash_buf_hex(HASH_SHA256, buf, len, want), 0);
                assert_int_equal(cache_check(c, want, len, CACHE_CHECK_REHASH, NULL, &err), 0);
        }
}

static bool keep_abc(void *userdata, const char *hex) {
        (void)userdata;
        return strcmp(hex, ABC) == 0;
}

struct pruned {
        char paths[8][512];
        bool temporary[8];
        size_t n;
};

static void on_prune(void *userdata, const char *path, uint64_t size, bool temporary) {
        struct pruned *p = userdata;
        (void)size;
        assert_true(p->n < 8);
        snprintf(p->paths[p->n], sizeof p->paths[p->n], "%s", path);
        p->temporary[p->n++] = temporary;
}

/* mkmachine clean: only with the cache to itself; keeps what keep() names, removes the rest and
 * every temporary (a partial download and its lock too); a dry run removes nothing. */
static void test_prune(void **state) {
        const char *dir = *state;
        _cleanup_(cache_freep) struct cache *c = NULL, *other = NULL;
        struct mkm_err err = {};
        assert_int_equal(cache_open(NULL, dir, &c, &err), 0);
        _cleanup_free_ char *t1 = write_tmp(c, "abc", "abc", 3), *t2 = write_tmp(c, "empty", "", 0);
        assert_int_equal(cache_commit(c, t1, ABC, 3, NULL, &err), 0);
        assert_int_equal(cache_commit(c, t2, EMPTY, 0, NULL, &err), 0);
        _cleanup_free_ char *dl = NULL;
        assert_int_equal(cache_tmp_path_for(c, ABC, &dl), 0);
        _cleanup_free_ char *part = NULL;
        assert_int_equal(asprintf(&part, "%s.part", dl), (int)strlen(dl) + 5);
        assert_int_equal(fs_write_atomic_at(AT_FDCWD, part, "ab", 2, 0600), 0);

        /* A second user of the cache (a running build) holds it shared: no prune. */
        assert_int_equal(cache_open(NULL, dir, &other, &err), 0);
        assert_int_equal(cache_lock_exclusive(c, &err), -EBUSY);
        assert_non_null(strstr(err.msg, "in use by a running build"));
        other = cache_free(other);
        /* The download name is still held by c itself: its .part stays in the prune. */
        assert_int_equal(cache_lock_exclusive(c, &err), 0);

        struct pruned p = {};
        assert_int_equal(cache_prune(c, keep_abc, NULL, true, on_prune, &p, &err), 0);
        assert_int_equal(p.n, 1);       /* EMPTY; the held download name is skipped */
        assert_false(p.temporary[0]);
        assert_non_null(strstr(p.paths[0], EMPTY));
        assert_int_equal(cache_lookup(c, EMPTY, NULL), 0);      /* dry run */

        assert_true(cache_tmp_release(c, dl));                  /* as a finished build does */
        p = (struct pruned){};
        assert_int_equal(cache_prune(c, keep_abc, NULL, false, on_prune, &p, &err), 0);
        assert_int_equal(p.n, 2);       /* EMPTY and the stale .part */
        assert_int_equal(cache_lookup(c, EMPTY, NULL), -ENOENT);
        assert_int_equal(cache_lookup(c, ABC, NULL), 0);
        assert_int_equal(access(part, F_OK), -1);
        _cleanup_free_ char *tmpdir = NULL;
        assert_int_equal(asprintf(&tmpdir, "%s/tmp", dir), (int)strlen(dir) + 4);
        assert_int_equal(count_entries(tmpdir), 0);

        /* A directory of the cache that cannot be listed (th_broken_listing_new(), bound over it)
         * fails the prune, dry run or not: never a clean that stopped early and said done. */
        c = cache_free(c);
        _cleanup_free_ char *top = th_tmpdir_new("cache-broken");
        _cleanup_free_ char *broken = th_broken_listing_new(top);
        const char *const over[] = { "sha256/ba", "tmp" };      /* ABC's directory; downloads */
        char msg[2][2048] = {};
        int got[2] = {};
        for (size_t i = 0; i < 2; i++) {
                if (th_bind_over(broken, dir, over[i]) < 0) {
                        got[i] = 1;
                        continue;
                }
                err = (struct mkm_err){};
                int q = cache_open(NULL, dir, &c, &err);
                if (q >= 0)
                        q = cache_lock_exclusive(c, &err);
                if (q >= 0)
                        q = cache_prune(c, keep_abc, NULL, i == 0, on_prune, &p, &err);
                got[i] = q;
                snprintf(msg[i], sizeof msg[i], "%s", err.msg);
                c = cache_free(c);
                th_unbind(dir, over[i]);
        }
        th_broken_listing_done(top);
        th_tmpdir_free(TAKE_PTR(top));
        for (size_t i = 0; i < 2; i++) {
                char want[4096];
                snprintf(want, sizeof want, "cannot read %s/%s: Bad message", dir, over[i]);
                if (got[i] != -EBADMSG || strcmp(msg[i], want) != 0)
                        fail_msg("%s that cannot be listed: %d, '%s'\nwant '%s'", over[i], got[i], msg[i], want);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_commit_good, setup, th_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_commit_mismatch, setup, th_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_hostile_names, setup, th_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_corruption, setup, th_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_stale_cleanup, setup, th_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_stable_names, setup, th_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_stale_locks, setup, th_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_foreign_owner, setup, th_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_concurrent, setup, th_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_prune, setup, th_tmpdir_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
