/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/util: strv, err, hash, fs (including the in-root resolution). */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strv.h"

static void test_strv(void **state) {
        (void)state;
        _cleanup_strv_free_ char **l = NULL;
        assert_int_equal(strv_split("  b a\tc  ", " \t", &l), 0);
        assert_int_equal(strv_length(l), 3);
        strv_sort(l);
        assert_string_equal(l[0], "a");
        assert_string_equal(l[2], "c");
        assert_true(strv_contains(l, "b"));
        assert_false(strv_contains(l, "d"));
        _cleanup_strv_free_ char **c = strv_copy(l);
        assert_int_equal(strv_push(&c, "d"), 0);
        assert_int_equal(strv_length(c), 4);
        _cleanup_strv_free_ char **e = NULL;
        assert_int_equal(strv_split("", " ", &e), 0);
        assert_int_equal(strv_length(e), 0);
        /* The builder: a valid vector after every append, through several growths. */
        struct strv_builder b = {};
        for (int i = 0; i < 1000; i++) {
                char v[16];
                (void)snprintf(v, sizeof v, "%d", i);
                assert_int_equal(strv_builder_push(&b, v), 0);
                assert_int_equal(strv_length(b.l), (size_t)i + 1);
        }
        assert_string_equal(b.l[999], "999");
        assert_null(b.l[1000]);
        strv_free(b.l);
}

static void test_err(void **state) {
        (void)state;
        struct mkm_err err = {};
        assert_int_equal(mkm_err_set(&err, -MKM_E_SIG_BAD, "x.sig: %s", "bad"), -MKM_E_SIG_BAD);
        assert_string_equal(err.msg, "x.sig: bad");
        assert_int_equal(mkm_err_prefix(&err, err.code, "pkg %s", "foo"), -MKM_E_SIG_BAD);
        assert_string_equal(err.msg, "pkg foo: x.sig: bad");
        assert_string_equal(mkm_strerror(-MKM_E_DEP_UNSAT), "unsatisfiable dependency");
        assert_string_equal(mkm_strerror(-ENOENT), strerror(ENOENT));
        assert_int_equal(mkm_err_set(NULL, -EIO, "ignored"), -EIO);
}

static void test_hash(void **state) {
        (void)state;
        char hex[HASH_SHA256_HEX], md5[HASH_MD5_HEX];
        assert_int_equal(hash_buf_hex(HASH_SHA256, "abc", 3, hex), 0);
        assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_true(hash_is_sha256_hex(hex));
        assert_false(hash_is_sha256_hex("BA7816"));
        assert_int_equal(hash_buf_hex(HASH_MD5, "", 0, md5), 0);
        assert_string_equal(md5, "d41d8cd98f00b204e9800998ecf8427e");
}

/* A root with an escaping symlink: whatever the path, the open stays inside (sd test-chase.c). */
static void test_open_in_root(void **state) {
        (void)state;
        char tmpl[] = "/tmp/mkm-test-root.XXXXXX";
        assert_non_null(mkdtemp(tmpl));
        char outside[] = "/tmp/mkm-test-outside.XXXXXX";
        assert_non_null(mkdtemp(outside));
        _cleanup_close_ int root = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(root >= 0);
        assert_int_equal(fs_mkdir_p_at(root, "etc/sub", 0755), 0);
        assert_int_equal(symlinkat("../../../../..", root, "etc/up"), 0);
        assert_int_equal(symlinkat(outside, root, "etc/abs"), 0);

        /* Writing through ../, an absolute name or a symlink lands inside the root. */
        static const char *const paths[] = { "../../x1", "/x2", "etc/up/x3", "etc/abs/x4" };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                int fd = fs_open_in_root(root, paths[i], O_WRONLY | O_CREAT | O_EXCL, 0644, 0);
                if (fd == -ENOENT)      /* etc/abs resolves to tmpl/tmp/... which does not exist */
                        continue;
                assert_true(fd >= 0);
                close(fd);
        }
        struct stat st;
        assert_int_equal(fstatat(root, "x1", &st, 0), 0);
        assert_int_equal(fstatat(root, "x2", &st, 0), 0);
        assert_int_equal(fstatat(root, "x3", &st, 0), 0);
        /* Nothing appeared in the outside directory. */
        char probe[256];
        snprintf(probe, sizeof probe, "%s/x4", outside);
        assert_int_equal(access(probe, F_OK), -1);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, tmpl), 0);
        assert_int_equal(access(tmpl, F_OK), -1);
        assert_int_equal(rmdir(outside), 0);
}

/* A lock taken on a file its owner removed (or replaced) in the meantime is not the lock. */
static void test_fd_is_path(void **state) {
        (void)state;
        char dir[] = "/tmp/mkm-test-fdpath.XXXXXX";
        assert_non_null(mkdtemp(dir));
        char p[256];
        snprintf(p, sizeof p, "%s/.#m.lck", dir);
        int fd = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_true(fs_fd_is_path(fd, p));
        assert_int_equal(unlink(p), 0);
        assert_false(fs_fd_is_path(fd, p));             /* removed */
        int other = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        assert_true(other >= 0);
        assert_false(fs_fd_is_path(fd, p));             /* and another file there now */
        assert_true(fs_fd_is_path(other, p));
        char q[256];
        snprintf(q, sizeof q, "%s/hardlink", dir);
        assert_int_equal(link(p, q), 0);
        assert_int_equal(unlink(p), 0);
        assert_false(fs_fd_is_path(other, p));          /* still linked elsewhere, not at p */
        close(fd);
        close(other);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, dir), 0);
}

static void test_atomic_write_and_read(void **state) {
        (void)state;
        char tmpl[] = "/tmp/mkm-test-atomic.XXXXXX";
        assert_non_null(mkdtemp(tmpl));
        _cleanup_close_ int dfd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_int_equal(fs_mkdir_p_at(dfd, "a/b", 0755), 0);
        assert_int_equal(fs_write_atomic_at(dfd, "a/b/f", "hello", 5, 0600), 0);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        assert_int_equal(fs_read_file_follow_at(dfd, "a/b/f", 100, &buf, &len), 0);
        assert_int_equal(len, 5);
        assert_string_equal(buf, "hello");
        struct stat st;
        assert_int_equal(fstatat(dfd, "a/b/f", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        _cleanup_free_ char *big = NULL;
        assert_int_equal(fs_read_file_follow_at(dfd, "a/b/f", 3, &big, NULL), -EFBIG);
        /* No temporary file is left behind. */
        int n = 0;
        _cleanup_close_ int bfd = openat(dfd, "a/b", O_RDONLY | O_DIRECTORY);
        assert_true(bfd >= 0);
        assert_int_equal(fs_mkdir_p_at(dfd, "a/b/f", 0755), -ENOTDIR);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, tmpl), 0);
        (void)n;
}

/* What a killed writer left: only its own ".#NAME.PID.XXXXXX" files go. */
/* fs_write_file_at replaces: a hard link or a symlink at the name is not written through. */
static void test_write_file_replaces(void **state) {
        (void)state;
        char dir[] = "/tmp/mkm-test-util.XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        assert_int_equal(fs_write_file_at(dfd, "other", "precious", 8, 0600), 0);
        assert_int_equal(linkat(dfd, "other", dfd, "hard", 0), 0);
        assert_int_equal(symlinkat("other", dfd, "soft"), 0);
        assert_int_equal(fs_write_file_at(dfd, "hard", "new", 3, 0644), 0);
        assert_int_equal(fs_write_file_at(dfd, "soft", "new", 3, 0644), 0);
        _cleanup_free_ char *a = NULL, *b = NULL;
        assert_int_equal(fs_read_file_follow_at(dfd, "other", 64, &a, NULL), 0);
        assert_string_equal(a, "precious");
        assert_int_equal(fs_read_file_follow_at(dfd, "hard", 64, &b, NULL), 0);
        assert_string_equal(b, "new");
        struct stat st;
        assert_int_equal(fstatat(dfd, "soft", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(fstatat(dfd, "other", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(st.st_nlink, 1);
        assert_int_equal(mkdirat(dfd, "d", 0755), 0);
        assert_true(fs_write_file_at(dfd, "d", "x", 1, 0644) < 0);
        (void)fs_rm_rf_at(AT_FDCWD, dir);
}

static void test_remove_temporaries(void **state) {
        (void)state;
        char tmpl[] = "/tmp/mkm-test-temps.XXXXXX";
        assert_non_null(mkdtemp(tmpl));
        _cleanup_close_ int dfd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        static const char *const gone[] = { ".#x.recipe.lock.4242.ab12cd", ".#manifest.4242.zzzzzz" };
        static const char *const kept[] = { ".#x.recipe.lock.4243.ab12cd", ".#x.recipe.lock.14242.ab12cd",
                                            "x.recipe.lock.4242.ab12cd", ".#x.4242.abc", "x.recipe.lock",
                                            ".#dir.4242.aaaaaa" };
        for (size_t i = 0; i < ELEMENTSOF(gone); i++)
                assert_int_equal(fs_write_file_at(dfd, gone[i], "x", 1, 0600), 0);
        for (size_t i = 0; i < ELEMENTSOF(kept) - 1; i++)
                assert_int_equal(fs_write_file_at(dfd, kept[i], "x", 1, 0600), 0);
        assert_int_equal(mkdirat(dfd, kept[ELEMENTSOF(kept) - 1], 0700), 0);
        /* only regular files: not a symlink of the same name (nor what it points to) */
        assert_int_equal(symlinkat(gone[0], dfd, ".#link.4242.bbbbbb"), 0);
        assert_int_equal(fs_remove_temporaries_of(tmpl, 4242), 2);
        assert_int_equal(faccessat(dfd, ".#link.4242.bbbbbb", F_OK, AT_SYMLINK_NOFOLLOW), 0);
        for (size_t i = 0; i < ELEMENTSOF(gone); i++)
                assert_int_equal(faccessat(dfd, gone[i], F_OK, AT_SYMLINK_NOFOLLOW), -1);
        for (size_t i = 0; i < ELEMENTSOF(kept); i++)
                assert_int_equal(faccessat(dfd, kept[i], F_OK, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(fs_remove_temporaries_of("/nonexistent/mkm", 4242), 0);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, tmpl), 0);
}

/* The PID of a child that has exited and been reaped: a process that is gone. */
static pid_t dead_pid(void) {
        pid_t pid = fork();
        if (pid == 0)
                _exit(0);
        assert_true(pid > 0);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        return pid;
}

/* pid 0: what any process that no longer exists left (a kill of the whole group), not a living one's. */
static void test_remove_dead_temporaries(void **state) {
        (void)state;
        pid_t dead = dead_pid();
        char tmpl[] = "/tmp/mkm-test-temps.XXXXXX";
        assert_non_null(mkdtemp(tmpl));
        _cleanup_close_ int dfd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char gone[64], alive[64], other[64];
        snprintf(gone, sizeof gone, ".#x.recipe.lock.%d.ab12cd", (int)dead);
        snprintf(alive, sizeof alive, ".#manifest.%d.ab12cd", (int)getpid());
        snprintf(other, sizeof other, "x.recipe.lock.%d.ab12cd", (int)dead);
        const char *const all[] = { gone, alive, other };
        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                assert_int_equal(fs_write_file_at(dfd, all[i], "x", 1, 0600), 0);
        assert_int_equal(fs_remove_temporaries_of(tmpl, 0), 1);
        assert_int_equal(faccessat(dfd, gone, F_OK, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(faccessat(dfd, alive, F_OK, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(faccessat(dfd, other, F_OK, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, tmpl), 0);
}

/* The "PREFIX.PID.*" directories of GnuPG homes and import downloads: pid 0 removes those of dead
 * processes that we own and nobody holds; never a living process's, another user's, a held one,
 * a symlink, a file, or a name that only looks alike. */
static void test_remove_dirs_of(void **state) {
        (void)state;
        pid_t dead = dead_pid();
        char tmpl[] = "/tmp/mkm-test-dirs.XXXXXX";
        assert_non_null(mkdtemp(tmpl));
        _cleanup_close_ int dfd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char gone[64], gone2[64], mine[64], foreign[64], held[64], link[64], file[64], other[64], zero[64];
        snprintf(gone, sizeof gone, "mkm-import.%d.Ab12Cd", (int)dead);
        snprintf(gone2, sizeof gone2, "mkm-import.%d.x", (int)dead);
        snprintf(mine, sizeof mine, "mkm-import.%d.Ab12Cd", (int)getpid());
        snprintf(foreign, sizeof foreign, "mkm-import.%d.foreign", (int)dead);
        snprintf(held, sizeof held, "mkm-import.%d.held", (int)dead);
        snprintf(link, sizeof link, "mkm-import.%d.link", (int)dead);
        snprintf(file, sizeof file, "mkm-import.%d.file", (int)dead);
        snprintf(other, sizeof other, "mkm-importx.%d.Ab12Cd", (int)dead);
        snprintf(zero, sizeof zero, "mkm-import.0%d.Ab12Cd", (int)dead);
        const char *const dirs[] = { gone, gone2, mine, foreign, held, other, zero };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                assert_int_equal(mkdirat(dfd, dirs[i], 0700), 0);
                char sub[128];
                snprintf(sub, sizeof sub, "%s/content", dirs[i]);
                assert_int_equal(fs_write_file_at(dfd, sub, "x", 1, 0600), 0);
        }
        assert_int_equal(fchownat(dfd, foreign, 4242, 4242, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(symlinkat(tmpl, dfd, link), 0);
        assert_int_equal(fs_write_file_at(dfd, file, "x", 1, 0600), 0);
        _cleanup_close_ int hfd = openat(dfd, held, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(hfd >= 0);
        /* held by another open file description, as a running build holds its home */
        assert_int_equal(flock(hfd, LOCK_EX | LOCK_NB), 0);

        assert_int_equal(fs_remove_dirs_of(tmpl, "mkm-import", 0), 2);
        assert_int_equal(faccessat(dfd, gone, F_OK, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(faccessat(dfd, gone2, F_OK, AT_SYMLINK_NOFOLLOW), -1);
        const char *const kept[] = { mine, foreign, held, link, file, other, zero };
        for (size_t i = 0; i < ELEMENTSOF(kept); i++)
                if (faccessat(dfd, kept[i], F_OK, AT_SYMLINK_NOFOLLOW) != 0)
                        fail_msg("%s was removed", kept[i]);

        /* pid > 0 (the guard, once the worker is dead): that process's, whoever holds them. */
        assert_int_equal(fs_remove_dirs_of(tmpl, "mkm-import", dead), 2);     /* foreign, held */
        assert_int_equal(faccessat(dfd, held, F_OK, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(faccessat(dfd, mine, F_OK, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(faccessat(dfd, link, F_OK, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(faccessat(dfd, tmpl, F_OK, 0), 0);     /* the link's target */
        assert_int_equal(fs_remove_dirs_of("/nonexistent/mkm", "mkm-import", 0), 0);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, tmpl), 0);
}

/* rm -rf never goes into a bind mount of the same file system (st_dev alone cannot tell). */
static void test_rm_rf_stops_at_bind_mounts(void **state) {
        (void)state;
        char tree[] = "/tmp/mkm-test-rmrf.XXXXXX", outside[] = "/tmp/mkm-test-rmrf-out.XXXXXX";
        assert_non_null(mkdtemp(tree));
        assert_non_null(mkdtemp(outside));
        _cleanup_close_ int tfd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int ofd = open(outside, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_int_equal(fs_mkdir_p_at(tfd, "m/a/mnt", 0755), 0);
        assert_int_equal(fs_write_file_at(tfd, "m/a/file", "x", 1, 0644), 0);
        assert_int_equal(fs_write_file_at(ofd, "precious", "keep me", 7, 0644), 0);
        _cleanup_free_ char *mnt = fs_path_join(tree, "m/a/mnt");
        assert_non_null(mnt);
        if (mount(outside, mnt, NULL, MS_BIND, NULL) < 0) {
                print_message("skipped: cannot bind-mount here (%s); needs root with CAP_SYS_ADMIN\n", strerror(errno));
                assert_int_equal(fs_rm_rf_at(AT_FDCWD, tree), 0);
                assert_int_equal(fs_rm_rf_at(AT_FDCWD, outside), 0);
                skip();
        }
        /* The mount point itself, and a tree holding one. */
        _cleanup_free_ char *mnt_rel = strdup("m/a/mnt");
        assert_int_equal(fs_rm_rf_at(tfd, mnt_rel), -EXDEV);
        assert_int_equal(faccessat(ofd, "precious", F_OK, 0), 0);
        assert_int_equal(fs_rm_rf_at(tfd, "m"), -EXDEV);
        assert_int_equal(faccessat(ofd, "precious", F_OK, 0), 0);
        assert_int_equal(faccessat(tfd, "m/a/file", F_OK, 0), -1);   /* the rest went */
        assert_int_equal(umount2(mnt, MNT_DETACH), 0);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, tree), 0);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, outside), 0);
}

/* A directory bind-mounted onto itself: the same file system, the same inodes, only the mount
 * differs (st_dev cannot tell). rm -rf of the tree above it, or of the directory itself, leaves
 * what the bind mount shows (and so the directory under it) alone. */
static void test_rm_rf_stops_at_self_bind_mount(void **state) {
        (void)state;
        char tree[] = "/tmp/mkm-test-rmrf-self.XXXXXX";
        assert_non_null(mkdtemp(tree));
        _cleanup_close_ int tfd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_int_equal(fs_mkdir_p_at(tfd, "a/data/sub", 0755), 0);
        assert_int_equal(fs_write_file_at(tfd, "a/data/precious", "keep me", 7, 0644), 0);
        assert_int_equal(fs_write_file_at(tfd, "a/data/sub/deep", "me too", 6, 0644), 0);
        assert_int_equal(fs_write_file_at(tfd, "a/other", "x", 1, 0644), 0);
        _cleanup_free_ char *data = fs_path_join(tree, "a/data");
        assert_non_null(data);
        if (mount(data, data, NULL, MS_BIND, NULL) < 0) {
                print_message("skipped: cannot bind-mount here (%s); needs root with CAP_SYS_ADMIN\n", strerror(errno));
                assert_int_equal(fs_rm_rf_at(AT_FDCWD, tree), 0);
                skip();
        }
        struct stat in, out;
        assert_int_equal(fstatat(tfd, "a", &out, 0), 0);
        assert_int_equal(fstatat(tfd, "a/data", &in, 0), 0);
        assert_int_equal(in.st_dev, out.st_dev);        /* what st_dev alone would not see */
        assert_int_equal(fs_rm_rf_at(tfd, "a/data"), -EXDEV);
        assert_int_equal(fs_rm_rf_at(tfd, "a"), -EXDEV);
        assert_int_equal(faccessat(tfd, "a/other", F_OK, AT_SYMLINK_NOFOLLOW), -1);   /* the rest went */
        assert_int_equal(faccessat(tfd, "a/data/precious", F_OK, 0), 0);
        assert_int_equal(faccessat(tfd, "a/data/sub/deep", F_OK, 0), 0);
        assert_int_equal(umount2(data, MNT_DETACH), 0);
        /* and underneath, on the directory itself, too */
        assert_int_equal(faccessat(tfd, "a/data/precious", F_OK, 0), 0);
        assert_int_equal(faccessat(tfd, "a/data/sub/deep", F_OK, 0), 0);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, tree), 0);
}

/* Temporaries beside a recipe are removed only in its directory reached without a link (a
 * co-tenant's link must not make root remove files elsewhere); temporary names are not
 * foreseeable: two processes forked from one state draw different numbers. */
static void test_temporaries_beside_recipe(void **state) {
        (void)state;
        char top[] = "/tmp/mkm-test-tmpbeside.XXXXXX";
        assert_non_null(mkdtemp(top));
        char dir[256], lnk[256];
        (void)snprintf(dir, sizeof dir, "%s/d", top);
        (void)snprintf(lnk, sizeof lnk, "%s/l", top);
        assert_int_equal(mkdir(dir, 0755), 0);
        assert_int_equal(symlink(dir, lnk), 0);
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        pid_t gone = fork();
        if (gone == 0)
                _exit(0);
        assert_int_equal(waitpid(gone, NULL, 0), gone);
        char name[64];
        (void)snprintf(name, sizeof name, ".#r.recipe.lock.%d.abcdef", (int)gone);
        assert_int_equal(fs_write_file_at(dfd, name, "t", 1, 0644), 0);
        assert_int_equal(fs_remove_temporaries_beside_recipe(lnk, 0), -EXDEV);
        assert_int_equal(faccessat(dfd, name, F_OK, 0), 0);
        assert_int_equal(fs_remove_temporaries_beside_recipe(dir, 0), 1);
        assert_int_equal(faccessat(dfd, name, F_OK, 0), -1);
        (void)fs_rm_rf_at(AT_FDCWD, top);

        int fds[2];
        assert_int_equal(pipe(fds), 0);
        for (int i = 0; i < 2; i++) {
                pid_t p = fork();
                if (p == 0) {
                        unsigned long v = fs_random_ulong();
                        _exit(write(fds[1], &v, sizeof v) == (ssize_t)sizeof v ? 0 : 1);
                }
                assert_int_equal(waitpid(p, NULL, 0), p);
        }
        unsigned long v[2];
        assert_int_equal(read(fds[0], v, sizeof v), (ssize_t)sizeof v);
        assert_true(v[0] != v[1]);
        close(fds[0]);
        close(fds[1]);
}

/* The reader: a recipe's sources are read with its owner's permissions (fs_reader_enter()), the
 * calling thread only, and everything comes back on leave (files made after it are root's, and
 * root reads its 0000 file again). In a directory the tenant does not own (/var/mail, root's
 * 0755, holding a mailbox of theirs), another user's file is -EACCES from fs_open_beside(); so is a
 * file in a subdirectory they cannot search; their own opens; as the process (NULL) all open. */
static void test_reader(void **state) {
        (void)state;
        struct fs_reader rd;
        assert_int_equal(fs_reader_for_uid(0, &rd), 0);
        assert_int_equal(rd.uid, 0);
        assert_int_equal(fs_reader_for_uid(3999999, &rd), 0);  /* unknown: the overflow group only */
        assert_int_equal(rd.uid, 3999999);
        assert_int_equal(rd.gid, 65534);
        assert_int_equal(rd.n_groups, 0);
        struct passwd *pw = getpwuid(65534);
        assert_non_null(pw);
        gid_t nobody_gid = pw->pw_gid;
        assert_int_equal(fs_reader_for_uid(65534, &rd), 0);
        assert_int_equal(rd.uid, 65534);
        assert_int_equal(rd.gid, nobody_gid);

        char top[] = "/tmp/mkm-test-reader.XXXXXX";
        assert_non_null(mkdtemp(top));
        char dir[256], mail[256], theirs[256], sub[256], insub[256], zero[256];
        (void)snprintf(dir, sizeof dir, "%s/mail", top);
        (void)snprintf(mail, sizeof mail, "%s/mail/tenant", top);
        (void)snprintf(theirs, sizeof theirs, "%s/mail/alice", top);
        (void)snprintf(sub, sizeof sub, "%s/mail/private", top);
        (void)snprintf(insub, sizeof insub, "%s/mail/private/open", top);
        (void)snprintf(zero, sizeof zero, "%s/mail/zero", top);
        assert_int_equal(mkdir(dir, 0755), 0);
        assert_int_equal(mkdir(sub, 0700), 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, mail, "[Machine]\n", 10, 0600), 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, theirs, "alice's mail\n", 13, 0600), 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, insub, "o\n", 2, 0644), 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, zero, "z\n", 2, 0000), 0);
        assert_int_equal(chown(mail, 65534, 65534), 0);
        assert_int_equal(chown(theirs, 4242, 4242), 0);

        struct stat st;
        assert_int_equal(fs_open_beside(dir, theirs, false, &rd, NULL, &st, NULL), -EACCES);
        assert_non_null(fs_beside_refusal(-EACCES));
        assert_int_equal(fs_open_beside(dir, insub, false, &rd, NULL, &st, NULL), -EACCES);
        assert_int_equal(fs_open_beside(dir, zero, false, &rd, NULL, &st, NULL), -EACCES);
        int fd = fs_open_beside(dir, mail, false, &rd, NULL, &st, NULL);
        assert_true(fd >= 0);
        close(fd);
        const char *as_process[] = { theirs, insub, zero, mail };
        for (size_t i = 0; i < 4; i++) {
                fd = fs_open_beside(dir, as_process[i], false, NULL, NULL, &st, NULL);
                assert_true(fd >= 0);
                close(fd);
        }
        /* root's own recipe (uid 0) reads as the process too */
        struct fs_reader root;
        assert_int_equal(fs_reader_for_uid(0, &root), 0);
        fd = fs_open_beside(dir, theirs, false, &root, NULL, &st, NULL);
        assert_true(fd >= 0);
        close(fd);

        /* between enter and leave, this thread is the reader; after, root again */
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct fs_reader_saved saved;
        assert_int_equal(fs_reader_enter(&rd, &saved), 0);
        assert_int_equal(openat(dfd, "alice", O_RDONLY | O_CLOEXEC), -1);
        assert_int_equal(errno, EACCES);
        fd = openat(dfd, "tenant", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        close(fd);
        fs_reader_leave(&saved);
        fd = openat(dfd, "zero", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(fs_write_file_at(dfd, "made-after", "x", 1, 0644), 0);
        assert_int_equal(fstatat(dfd, "made-after", &st, 0), 0);
        assert_int_equal(st.st_uid, 0);
        assert_int_equal(st.st_gid, getegid());
        (void)fs_rm_rf_at(AT_FDCWD, top);
}

/* How a mountinfo line is read for a FUSE file system (fs_fuse_mounter()): the kernel's user_id=
 * in the super options, whatever the type, source or mount point say; virtiofs (FUSE inside the
 * kernel, a host's share) is root's; another mount's line is not the answer. */
static void test_mountinfo_fuse(void **state) {
        (void)state;
        const struct {
                const char *line;
                long want;
        } cases[] = {
                { "44 26 0:39 / /mnt rw,nosuid,nodev,relatime - fuse /src rw,user_id=4321,group_id=4321,allow_other\n", 4321 },
                { "44 26 0:39 / /mnt rw - fuse.bindfs /src rw,user_id=0,group_id=0,default_permissions\n", 0 },
                { "44 26 0:39 / /mnt rw - fuseblk /dev/sdb1 rw,user_id=1000,group_id=1000\n", 1000 },
                /* a type, a mount point and a source that name user_id=0: the super options win */
                { "44 26 0:39 / /m,user_id=0 rw - fuse.user_id=0 user_id=0 rw,user_id=4321,group_id=4321\n", 4321 },
                { "44 26 0:39 / /mnt rw - fuse /src rw,group_id=0\n", 65534 },        /* no user_id */
                { "44 26 0:39 / /mnt rw - fuse /src rw,user_id=x1\n", 65534 },
                { "44 26 0:39 / /mnt rw - fuse /src rw,user_id=99999999999999999999999\n", 65534 },
                { "44 26 0:39 / /mnt rw - virtiofs share rw\n", 0 },
                { "44 26 0:39 / /mnt rw - ext4 /dev/vda rw\n", 65534 },              /* not FUSE */
                { "44 26 0:39 / /mnt rw fuse /src rw,user_id=0\n", 65534 },            /* no separator */
                { "45 26 0:39 / /mnt rw - fuse /src rw,user_id=0\n", -1 },             /* another mount */
        };
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
                long got = fs_mountinfo_fuse_mounter(cases[i].line, 44);
                if (got != cases[i].want)
                        fail_msg("case %zu: got %ld, want %ld: %s", i, got, cases[i].want, cases[i].line);
        }
}

/* fs_reader_enter() that cannot become the reader says so and leaves the thread as it was
 * (without CAP_SETUID setfsuid does not take; without CAP_SETGID setgroups fails), and
 * fs_reader_leave() that cannot return stops the process rather than go on as the reader. Each in
 * a child, whose capabilities are dropped. */
static void test_reader_enter_fails(void **state) {
        (void)state;
        struct fs_reader rd;
        assert_int_equal(fs_reader_for_uid(65534, &rd), 0);
        gid_t before[64];
        int n_before = getgroups(64, before);
        assert_true(n_before >= 0);
        const int caps[] = { CAP_SETUID, CAP_SETGID };
        for (size_t i = 0; i < 2; i++) {
                pid_t pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        if (th_drop_effective_cap(caps[i]) < 0)
                                _exit(10);
                        struct fs_reader_saved saved;
                        if (fs_reader_enter(&rd, &saved) != -MKM_E_IDENTITY)
                                _exit(11);
                        if (saved.active)
                                _exit(12);
                        /* still root's file system identity and groups */
                        if (setfsuid((uid_t)-1) != 0 || (gid_t)setfsgid((gid_t)-1) != getegid())
                                _exit(13);
                        gid_t now[64];
                        int n = getgroups(64, now);
                        if (n != n_before || memcmp(now, before, (size_t)n * sizeof *now) != 0)
                                _exit(14);
                        fs_reader_leave(&saved);        /* nothing to undo: no abort */
                        _exit(0);
                }
                int status;
                assert_int_equal(waitpid(pid, &status, 0), pid);
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        fail_msg("without capability %d: child status %#x", caps[i], status);
        }
        /* Entered, then the way back taken away: leave aborts. */
        struct th_child child;
        if (th_child_start(&child) == 0) {
                (void)dup2(child.fd, 2);
                struct fs_reader_saved saved;
                if (fs_reader_enter(&rd, &saved) != 0 || setfsuid((uid_t)-1) != 65534)
                        _exit(20);
                if (th_drop_effective_cap(CAP_SETGID) < 0)
                        _exit(21);
                fs_reader_leave(&saved);
                _exit(0);       /* went on as the reader: wrong */
        }
        char msg[512];
        int status = th_child_wait(&child, msg, sizeof msg);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
                fail_msg("leave without the way back: child status %#x, said '%s'", status, msg);
        assert_non_null(strstr(msg, "cannot return to its own file system identity; stopping"));
}

/* mkdir -p inside an untrusted tree: its symlinks resolve inside it, never on the host. */
/* A hard link in a directory someone else owns to a file outside it (anyone can make one where
 * fs.protected_hardlinks is or was ever off; root can always): refused (-EMLINK), while the
 * directory owner's own files, linked or not, open. The directory itself opens as a directory. */
static void test_open_beside_hard_link(void **state) {
        (void)state;
        char top[] = "/tmp/mkm-test-hardlink.XXXXXX";
        assert_non_null(mkdtemp(top));
        char dir[256], secret[256], lnk[256], own[256], ownlink[256];
        (void)snprintf(dir, sizeof dir, "%s/recipes", top);
        (void)snprintf(secret, sizeof secret, "%s/secret", top);
        (void)snprintf(lnk, sizeof lnk, "%s/recipes/x.gpg", top);
        (void)snprintf(own, sizeof own, "%s/recipes/own.gpg", top);
        (void)snprintf(ownlink, sizeof ownlink, "%s/recipes/own2.gpg", top);
        assert_int_equal(mkdir(dir, 0755), 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, secret, "root only\n", 10, 0600), 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, own, "mine\n", 5, 0644), 0);
        assert_int_equal(link(secret, lnk), 0);
        assert_int_equal(link(own, ownlink), 0);
        /* the tenant's directory and file */
        assert_int_equal(chown(dir, 65534, 65534), 0);
        assert_int_equal(chown(own, 65534, 65534), 0);
        struct stat st;
        assert_int_equal(fs_open_beside(dir, lnk, false, NULL, NULL, &st, NULL), -EMLINK);
        int fd = fs_open_beside(dir, own, false, NULL, NULL, &st, NULL);
        assert_true(fd >= 0);
        assert_int_equal(st.st_nlink, 2);
        close(fd);
        fd = fs_open_beside(dir, ownlink, false, NULL, NULL, &st, NULL);
        assert_true(fd >= 0);
        close(fd);
        /* the same link in a directory root owns: root's own file */
        assert_int_equal(chown(dir, 0, 0), 0);
        fd = fs_open_beside(dir, lnk, false, NULL, NULL, &st, NULL);
        assert_true(fd >= 0);
        close(fd);
        /* dir itself (Keyring=.) */
        fd = fs_open_beside(dir, dir, true, NULL, NULL, &st, NULL);
        assert_true(fd >= 0 && S_ISDIR(st.st_mode));
        close(fd);
        assert_int_equal(fs_open_beside(dir, dir, false, NULL, NULL, NULL, NULL), -EBADFD);
        /* A directory anyone can write (as /tmp, which holds root's files): nothing in it, nor
         * itself, is taken; the recipe's own directory is the caller's to judge. */
        char shared[256], infile[256];
        (void)snprintf(shared, sizeof shared, "%s/recipes/shared", top);
        (void)snprintf(infile, sizeof infile, "%s/recipes/shared/root.gpg", top);
        assert_int_equal(mkdir(shared, 0755), 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, infile, "r\n", 2, 0600), 0);
        fd = fs_open_beside(dir, infile, false, NULL, NULL, &st, NULL);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(chmod(shared, 01777), 0);
        assert_int_equal(fs_open_beside(dir, infile, false, NULL, NULL, &st, NULL), -MKM_E_ANYONE_WRITES);
        assert_int_equal(fs_open_beside(dir, shared, true, NULL, NULL, &st, NULL), -MKM_E_ANYONE_WRITES);
        assert_int_equal(chmod(shared, 0755), 0);
        assert_int_equal(chmod(dir, 01777), 0);
        assert_int_equal(fs_open_beside(dir, infile, false, NULL, NULL, &st, NULL), -MKM_E_ANYONE_WRITES);     /* shared's parent */
        fd = fs_open_beside(dir, dir, true, NULL, NULL, &st, NULL);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(chmod(dir, 0755), 0);
        /* fs_check_own_link: a name that is gone, or another inode, is a change */
        struct stat sst;
        assert_int_equal(stat(secret, &sst), 0);
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_int_equal(fs_check_own_link(dfd, "nothing", &sst), -EBUSY);
        assert_int_equal(fs_check_own_link(dfd, "own.gpg", &sst), -EBUSY);
        (void)fs_rm_rf_at(AT_FDCWD, top);
}

/* fs_open_beside: a path that untrusted input names, opened only inside the directory it must lie
 * in. A path through /proc/PID/root of a process in another mount namespace reaches that
 * namespace's file when the kernel follows it (found by a review: Include= read a root-only file
 * an unprivileged user had bind-mounted in their own namespace); our walk never follows it, from
 * the path as written or from a link inside the directory. */
static void test_open_beside(void **state) {
        (void)state;
        char dir[] = "/tmp/mkm-test-beside.XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_int_equal(fs_write_file_at(dfd, "x.recipe", "host", 4, 0644), 0);
        assert_int_equal(mkfifoat(dfd, "fifo", 0644), 0);
        assert_int_equal(mkdirat(dfd, "sub", 0755), 0);
        assert_int_equal(symlinkat("../x.recipe", dfd, "sub/up.recipe"), 0);
        char path[256], want[256];
        (void)snprintf(want, sizeof want, "%s/x.recipe", dir);
        _cleanup_free_ char *real = NULL;
        struct stat st;
        /* A file, and through a relative link that stays inside. */
        int fd = fs_open_beside(dir, want, false, NULL, &real, &st, NULL);
        assert_true(fd >= 0 && S_ISREG(st.st_mode));
        assert_string_equal(real, want);
        close(fd);
        free(real);
        real = NULL;
        (void)snprintf(path, sizeof path, "%s/sub/up.recipe", dir);
        fd = fs_open_beside(dir, path, false, NULL, &real, NULL, NULL);
        assert_true(fd >= 0);
        assert_string_equal(real, want);
        close(fd);
        free(real);
        real = NULL;
        /* ... but not from sub, whose directory it leads out of; nor outside as written; nor a
         * relative path; a FIFO is never opened; a directory only when asked. */
        (void)snprintf(want, sizeof want, "%s/sub", dir);
        assert_int_equal(fs_open_beside(want, path, false, NULL, NULL, NULL, NULL), -EXDEV);
        assert_int_equal(fs_open_beside(want, "/etc/passwd", false, NULL, NULL, NULL, NULL), -EXDEV);
        assert_int_equal(fs_open_beside(dir, "x.recipe", false, NULL, NULL, NULL, NULL), -EINVAL);
        (void)snprintf(path, sizeof path, "%s/fifo", dir);
        assert_int_equal(fs_open_beside(dir, path, false, NULL, NULL, NULL, NULL), -EBADFD);
        (void)snprintf(path, sizeof path, "%s/sub", dir);
        assert_int_equal(fs_open_beside(dir, path, false, NULL, NULL, NULL, NULL), -EBADFD);
        fd = fs_open_beside(dir, path, true, NULL, NULL, &st, NULL);
        assert_true(fd >= 0 && S_ISDIR(st.st_mode));
        close(fd);

        int go[2], ready[2];
        assert_int_equal(pipe(go), 0);
        assert_int_equal(pipe(ready), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char c = 0;
                (void)snprintf(want, sizeof want, "%s/x.recipe", dir);
                int ok = unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
                         mount("tmpfs", dir, "tmpfs", 0, NULL) == 0;
                if (ok) {
                        int f = open(want, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                        ok = f >= 0 && write(f, "other namespace", 15) == 15;
                        if (f >= 0)
                                close(f);
                }
                c = ok ? 'y' : 'n';
                (void)!write(ready[1], &c, 1);
                (void)!read(go[0], &c, 1);
                _exit(0);
        }
        char c = 0;
        assert_int_equal(read(ready[0], &c, 1), 1);
        if (c != 'y') {
                (void)!write(go[1], "x", 1);
                (void)waitpid(pid, NULL, 0);
                assert_int_equal(fs_rm_rf_at(AT_FDCWD, dir), 0);
                print_message("skipped: no mount namespace here (needs root with CAP_SYS_ADMIN)\n");
                skip();
        }
        char magic[256];
        (void)snprintf(magic, sizeof magic, "/proc/%d/root%s/x.recipe", (int)pid, dir);
        _cleanup_free_ char *kernel = NULL;
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, magic, 64, &kernel, NULL), 0);
        assert_string_equal(kernel, "other namespace");         /* what open() would have read */
        assert_int_equal(symlinkat(magic, dfd, "sub/magic.recipe"), 0);
        (void)snprintf(path, sizeof path, "%s/sub/magic.recipe", dir);
        int by_link = fs_open_beside(dir, path, false, NULL, NULL, NULL, NULL);
        int by_name = fs_open_beside("/", magic, false, NULL, NULL, NULL, NULL);
        (void)!write(go[1], "x", 1);
        (void)waitpid(pid, NULL, 0);
        assert_int_equal(by_link, -EXDEV);
        assert_int_equal(by_name, -EXDEV);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, dir), 0);
}

static void test_mkdir_p_in_root(void **state) {
        (void)state;
        char top[] = "/tmp/mkm-test-mkdirp.XXXXXX";
        assert_non_null(mkdtemp(top));
        char root[128], escape[160];
        snprintf(root, sizeof root, "%s/root", top);
        snprintf(escape, sizeof escape, "%s/escape", top);
        assert_int_equal(mkdir(root, 0755), 0);
        _cleanup_close_ int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        /* var -> ../escape (relative, climbing out) and etc -> /absolute/elsewhere */
        assert_int_equal(symlinkat("../escape", rfd, "var"), 0);
        assert_int_equal(symlinkat(escape, rfd, "etc"), 0);
        /* Both resolve inside the tree ("../escape" from / is ROOT/escape, and the absolute one
         * is ROOT/<that path>), where nothing exists: like mkdir -p through a dangling symlink,
         * that fails, and nothing appears on the host. */
        assert_int_equal(fs_mkdir_p_in_root(rfd, "var/lib/pacman/local", 0755), -ENOENT);
        assert_int_equal(fs_mkdir_p_in_root(rfd, "etc/pacman.d", 0755), -ENOENT);
        assert_int_equal(access(escape, F_OK), -1);
        /* With the target inside the tree present, the symlink is followed inside it. */
        assert_int_equal(mkdirat(rfd, "escape", 0755), 0);
        int fd = fs_mkdir_p_in_root(rfd, "var/lib/pacman/local", 0755);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(faccessat(rfd, "escape/lib/pacman/local", F_OK, 0), 0);
        assert_int_equal(access(escape, F_OK), -1);      /* still nothing on the host */
        fd = fs_mkdir_p_in_root(rfd, "usr/share/x", 0750);
        assert_true(fd >= 0);
        close(fd);
        struct stat st;
        assert_int_equal(fstatat(rfd, "usr/share/x", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0750);
        assert_int_equal(fs_mkdir_p_in_root(rfd, "a/../b", 0755), -EPERM);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, top), 0);
}

static void test_path_join(void **state) {
        (void)state;
        static const struct { const char *a, *b, *want; } t[] = {
                { "/", "var/lib", "/var/lib" },
                { "/host/", "/var", "/host/var" },
                { "rel", "x", "rel/x" },
                { "/a//", "//b", "/a/b" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_free_ char *j = fs_path_join(t[i].a, t[i].b);
                assert_string_equal(j, t[i].want);
        }
}

static void test_path_dirname(void **state) {
        (void)state;
        static const char *const cases[][2] = { { "a/b", "a" }, { "/a", "/" }, { "a", "." }, { "/a/b/c", "/a/b" } };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *d = fs_path_dirname(cases[i][0]);
                assert_string_equal(d, cases[i][1]);
        }
}

/* A zombie (ended, not reaped) is gone: an init that reaps late must not keep a dead build's
 * GnuPG home or temporaries alive. A running process is not. */
static bool keep_no_x(int dirfd, const char *name, void *userdata) {
        (void)dirfd;
        ++*(int *)userdata;
        return name[0] != 'x';
}

static int count_walked(int dfd, const char *name, const char *path, const struct stat *st, void *userdata) {
        (void)dfd, (void)name, (void)path, (void)st;
        ++*(int *)userdata;
        return 0;
}

static void expect_names(char **names, const char *want) {
        char got[256] = "";
        for (char **n = names; n && *n; n++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", n == names ? "" : " ", *n);
        if (!names || strcmp(got, want) != 0)
                fail_msg("listed '%s'%s, want '%s'", got, names ? "" : " (NULL)", want);
}

/* Listings: fs_list_names() keeps what keep accepts, sorted, at most max, from the top however
 * often the same fd is listed; and a listing that fails (readdir(3) ends with EBADMSG on
 * th_broken_listing_new()'s directory, as on a disk error) is an error, in it, in fs_walk() (the
 * manifest and the shift walk), in fs_judge_source_tree() and in the removal of what killed builds
 * left: never a short or empty list taken for all of it. */
static void test_listings(void **state) {
        (void)state;
        char *dir = th_tmpdir_new("listings");
        th_write_file(dir, "b", "", 0644);
        th_write_file(dir, "x1", "", 0644);
        th_write_file(dir, ".h", "", 0644);
        th_write_file(dir, "sub/a", "", 0644);
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        char **names = NULL;
        for (int twice = 0; twice < 2; twice++) {
                assert_int_equal(fs_list_names(dfd, NULL, NULL, 0, &names), 0);
                expect_names(names, ".h b sub x1");
                names = strv_free(names);
        }
        int asked = 0;
        assert_int_equal(fs_list_names(dfd, keep_no_x, &asked, 3, &names), 0);
        expect_names(names, ".h b sub");
        assert_int_equal(asked, 4);     /* each name once, "." and ".." never */
        names = strv_free(names);
        assert_int_equal(fs_list_names(dfd, keep_no_x, &asked, 2, &names), -E2BIG);
        assert_null(names);

        _cleanup_close_ int sfd = openat(dfd, "sub", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(sfd >= 0);
        assert_int_equal(unlinkat(sfd, "a", 0), 0);
        assert_int_equal(fs_list_names(sfd, NULL, NULL, 0, &names), 0);
        expect_names(names, "");        /* empty, not NULL */
        names = strv_free(names);

        /* A listing that fails (a disk error: EBADMSG, th_broken_listing_new()). */
        _cleanup_free_ char *broken = th_broken_listing_new(dir);
        _cleanup_close_ int bfd = open(broken, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int e = bfd < 0 ? errno : 0;
        if (bfd >= 0) {
                int q = fs_list_names(bfd, NULL, NULL, 0, &names);
                int walked = 0;
                int w = fs_walk(bfd, 8, count_walked, &walked);
                char *where = NULL;
                const char *step = NULL;
                int j = fs_judge_source_tree(bfd, NULL, 8, &where, &step);
                /* the cleanups of what killed builds left: an error, not "nothing was there" */
                int t = fs_remove_temporaries_beside_recipe(broken, 0);
                int h = fs_remove_dirs_of(broken, "mkm-gnupg", 0);
                th_broken_listing_done(dir);
                if (q != -EBADMSG || names)
                        fail_msg("fs_list_names of a broken listing: %d (%s)", q, names ? "a list" : "no list");
                if (w != -EBADMSG)
                        fail_msg("fs_walk of a broken listing: %d after %d entries", w, walked);
                if (j != -EBADMSG || !where || strcmp(where, ".") != 0 || !step ||
                    strcmp(step, "cannot list the source directory") != 0)
                        fail_msg("fs_judge_source_tree of a broken listing: %d at '%s' (%s)", j, where ? where : "",
                                 step ? step : "");
                free(where);
                if (t != -EBADMSG || h != -EBADMSG)
                        fail_msg("removing temporaries in a broken listing: %d, directories: %d", t, h);
        } else
                th_broken_listing_done(dir);
        th_tmpdir_free(dir);
        if (e)
                fail_msg("cannot open %s: %s", broken, strerror(e));
}

static void test_pid_is_gone(void **state) {
        (void)state;
        assert_false(fs_pid_is_gone(getpid()));
        assert_false(fs_pid_is_gone(0));
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t running = fork();
        assert_true(running >= 0);
        if (running == 0) {
                char c;
                close(p[1]);
                (void)read(p[0], &c, 1);        /* until the parent closes its end */
                _exit(0);
        }
        close(p[0]);
        assert_false(fs_pid_is_gone(running));
        pid_t zombie = fork();
        assert_true(zombie >= 0);
        if (zombie == 0)
                _exit(0);
        /* Wait until it has exited, without reaping it. */
        siginfo_t si = {};
        assert_int_equal(waitid(P_PID, (id_t)zombie, &si, WEXITED | WNOWAIT), 0);
        assert_true(fs_pid_is_gone(zombie));
        assert_int_equal(waitpid(zombie, NULL, 0), zombie);
        assert_true(fs_pid_is_gone(zombie));    /* reaped: no such process */
        close(p[1]);
        assert_int_equal(waitpid(running, NULL, 0), running);
}

/* fs_walk_source_tree()'s visitor contract, with a visitor that records what it is given: every
 * entry once, with its parent's token; leave once for every child entry set, also when entry or
 * the walk failed after it was set (nothing leaks); the first failure stands (a leave that fails
 * after a refusal does not replace it); where, step and "the visitor failed" tell which. */
struct visit {
        const char *fail_entry;         /* entry fails (-ENOTRECOVERABLE) on this name, after setting a child */
        const char *fail_leave;         /* leave fails (-ESTALE) for this directory */
        int live;                       /* children set and not yet left */
        int entries;
        struct th_buf seen;             /* "parent/name" of each entry, as the tokens say */
        struct th_buf left;             /* "path=q" of each leave */
};
struct visit_node {
        struct visit *v;
        char path[256];
};

static int visit_entry(void *parent, const char *name, const struct stat *st, int fd, const char *target,
                       void **ret_child) {
        struct visit_node *p = parent;
        struct visit *v = p->v;
        v->entries++;
        th_buf_add(&v->seen, "%s/%s%s ", p->path, name, S_ISLNK(st->st_mode) ? (target ? "@" : "@?") : fd >= 0 ? "" : "?");
        if (S_ISDIR(st->st_mode) || (v->fail_entry && strcmp(name, v->fail_entry) == 0)) {
                struct visit_node *c = malloc(sizeof *c);
                assert_non_null(c);
                c->v = v;
                snprintf(c->path, sizeof c->path, "%s/%s", p->path, name);
                *ret_child = c;
                v->live++;
        }
        return v->fail_entry && strcmp(name, v->fail_entry) == 0 ? -ENOTRECOVERABLE : 0;
}

static int visit_leave(void *child, int q) {
        struct visit_node *c = child;
        struct visit *v = c->v;
        th_buf_add(&v->left, "%s=%d ", c->path, q);
        v->live--;
        const char *base = strrchr(c->path, '/') + 1;
        bool fail = v->fail_leave && strcmp(base, v->fail_leave) == 0;
        free(c);
        return fail ? -ESTALE : q;
}

static void test_walk_visitor(void **state) {
        (void)state;
        char top[] = "/tmp/mkm-test-visit.XXXXXX";
        assert_non_null(mkdtemp(top));
        th_write_file(top, "a/b/f", "f\n", 0644);
        th_write_file(top, "a/g", "g\n", 0644);
        char p[512];
        snprintf(p, sizeof p, "%s/a/l", top);
        assert_int_equal(symlink("g", p), 0);
        _cleanup_close_ int dfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        static const struct fs_tree_visitor visitor = { .entry = visit_entry, .leave = visit_leave };

        struct {
                const char *fail_entry, *fail_leave, *fifo;
                int q;
                const char *where;
                bool by_visitor;
                const char *left;       /* in what leave was given, besides "/a=<q> " */
        } cases[] = {
                { NULL, NULL, NULL, 0, NULL, false, "/a/b=0 " },
                /* entry fails after setting a child: left at once, with its failure */
                { "g", NULL, NULL, -ENOTRECOVERABLE, "a/g", true, "/a/g=-131 " },
                { "b", NULL, NULL, -ENOTRECOVERABLE, "a/b", true, "/a/b=-131 " },
                /* leave fails on success: its failure, named by the directory */
                { NULL, "b", NULL, -ESTALE, "a/b", true, "/a/b=0 " },
                /* the walk refuses inside b; b's leave fails too: the refusal stands */
                { NULL, "b", "a/b/p", -EBADFD, "a/b/p", false, "/a/b=-77 " },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                snprintf(p, sizeof p, "%s/a/b/p", top);
                (void)unlink(p);
                if (cases[i].fifo)
                        assert_int_equal(mkfifo(p, 0644), 0);
                struct visit v = { .fail_entry = cases[i].fail_entry, .fail_leave = cases[i].fail_leave };
                struct visit_node root = { .v = &v, .path = "" };
                _cleanup_free_ char *where = NULL;
                const char *step = "unset";
                bool by_visitor = !cases[i].by_visitor;
                int q = fs_walk_source_tree(dfd, NULL, 8, &visitor, &root, &where, &step, &by_visitor);
                char a_left[32];
                snprintf(a_left, sizeof a_left, "/a=%d ", q);
                if (q != cases[i].q || by_visitor != cases[i].by_visitor || v.live != 0 || !v.left.p ||
                    !strstr(v.left.p, cases[i].left) || !strstr(v.left.p, a_left) ||
                    (cases[i].where ? !where || strcmp(where, cases[i].where) != 0 : where != NULL))
                        fail_msg("case %zu: %d (visitor %d) at '%s', %d children not left; saw %s; left %s", i, q,
                                 by_visitor, where ? where : "(none)", v.live, v.seen.p ? v.seen.p : "",
                                 v.left.p ? v.left.p : "");
                if (i == 0) {
                        /* each entry once, under its parent's token; files and dirs opened, links read */
                        const char *want[] = { "/a ", "/a/b ", "/a/b/f ", "/a/g ", "/a/l@ " };
                        assert_int_equal(v.entries, 5);
                        for (size_t k = 0; k < ELEMENTSOF(want); k++)
                                if (!strstr(v.seen.p, want[k]))
                                        fail_msg("'%s' not in what the visitor saw: %s", want[k], v.seen.p);
                }
                free(v.seen.p);
                free(v.left.p);
        }
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, top), 0);
}

/* The words `check` and Copy= share for a walk's refusal, with their codes; an I/O error is none. */
static void test_walk_refusal_words(void **state) {
        (void)state;
        struct {
                int q;
                const char *step;
                int code;
                const char *words;
        } cases[] = {
                { -EBADFD, NULL, -MKM_E_RECIPE, "'x/p' is a device, FIFO or socket; only files, directories and symlinks are copied" },
                { -ELOOP, NULL, -ELOOP, "'x' is deeper than 256 levels" },
                { -ELOOP, "cannot open the source", 0, "" },    /* an open that met a link: not the depth */
                { -EBUSY, NULL, -EBUSY, "'x/p' changed while it was read" },
                { -EACCES, "cannot open the source", -MKM_E_RECIPE, "'x/p' " FS_READER_REFUSED },
                { -MKM_E_ANYONE_WRITES, NULL, -MKM_E_RECIPE, "'x/p' " FS_ANYONE_WRITES_REFUSED },
                { -MKM_E_IDENTITY, NULL, -MKM_E_IDENTITY, "'x/p' " FS_IDENTITY_REFUSED },
                { -EIO, "cannot list the source directory", 0, "" },
                { -EPERM, "cannot open the source", 0, "" },    /* an open's own EPERM: strerror's words */
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *words = NULL;
                int code = fs_walk_refusal_words(cases[i].q, cases[i].step, "'x/p'", "'x'", 256, &words);
                if (code != cases[i].code || strcmp(words ? words : "", cases[i].words) != 0 || (code == 0) != !words)
                        fail_msg("case %zu (%d): %d '%s', want %d '%s'", i, cases[i].q, code, words ? words : "(none)",
                                 cases[i].code, cases[i].words);
        }
        /* a path longer than any buffer a message had: the reason still follows it, whole */
        _cleanup_free_ char *deep = malloc(PATH_MAX * 2 + 3), *words = NULL;
        assert_non_null(deep);
        deep[0] = '\'';
        memset(deep + 1, 'd', PATH_MAX * 2);
        strcpy(deep + 1 + PATH_MAX * 2, "'");
        assert_int_equal(fs_walk_refusal_words(-EBADFD, NULL, deep, "'x'", 256, &words), -MKM_E_RECIPE);
        assert_int_equal(strlen(words), strlen(deep) + strlen(" is a device, FIFO or socket; only files, directories and symlinks are copied"));
        assert_non_null(strstr(words, "' is a device, FIFO or socket; only files, directories and symlinks are copied"));
}

/* The reader's user database entry: one larger than a first buffer is read whole (the buffer
 * grows), one over FS_PASSWD_ENTRY_MAX is -MKM_E_USERDB, never a guess. In a child with its own
 * mount namespace, whose /etc/passwd is a file of the test's (the files NSS module reads it). */
static void test_reader_user_database(void **state) {
        (void)state;
        char *dir = th_tmpdir_new("userdb");
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/passwd", dir);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fprintf(f, "root:x:0:0:root:/root:/bin/sh\nprobe:x:4320:4445::/:/bin/sh\n");
        fprintf(f, "big:x:4321:4444:");
        for (int i = 0; i < 40000; i++)
                fputc('g', f);
        fprintf(f, ":/home/big:/bin/sh\n");
        fprintf(f, "huge:x:4322:4444:");
        for (int i = 0; i < FS_PASSWD_ENTRY_MAX + 1; i++)
                fputc('h', f);
        fprintf(f, ":/home/huge:/bin/sh\n");
        assert_int_equal(fclose(f), 0);
        struct th_child child;
        if (th_child_start(&child) == 0) {
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                    mount(path, "/etc/passwd", NULL, MS_BIND, NULL) < 0)
                        _exit(10);
                /* a user only our file has: else the lookups are answered elsewhere (nscd, sssd) */
                struct fs_reader probe;
                if (fs_reader_for_uid(4320, &probe) != 0 || probe.gid != 4445)
                        _exit(77);
                struct fs_reader bigrd, hugerd;
                int big = fs_reader_for_uid(4321, &bigrd);
                int huge = fs_reader_for_uid(4322, &hugerd);
                dprintf(child.fd, "40 kB: %d, gid %u; over 1 MiB: %d", big, (unsigned)bigrd.gid, huge);
                _exit(big != 0 || bigrd.gid != 4444 ? 11 : huge != -MKM_E_USERDB ? 12 : 0);
        }
        char msg[256];
        int status = th_child_wait(&child, msg, sizeof msg);
        th_tmpdir_free(dir);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
                print_message("skipped: the user database is not read from /etc/passwd here (nscd or sssd answers)\n");
                skip();
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("user database entries of 40 kB and over 1 MiB: child status %#x, said '%s'", status, msg);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_strv),
                cmocka_unit_test(test_err),
                cmocka_unit_test(test_hash),
                cmocka_unit_test(test_open_in_root),
                cmocka_unit_test(test_atomic_write_and_read),
                cmocka_unit_test(test_write_file_replaces),
                cmocka_unit_test(test_remove_temporaries),
                cmocka_unit_test(test_remove_dead_temporaries),
                cmocka_unit_test(test_remove_dirs_of),
                cmocka_unit_test(test_pid_is_gone),
                cmocka_unit_test(test_listings),
                cmocka_unit_test(test_walk_visitor),
                cmocka_unit_test(test_walk_refusal_words),
                cmocka_unit_test(test_fd_is_path),
                cmocka_unit_test(test_rm_rf_stops_at_bind_mounts),
                cmocka_unit_test(test_rm_rf_stops_at_self_bind_mount),
                cmocka_unit_test(test_mkdir_p_in_root),
                cmocka_unit_test(test_open_beside),
                cmocka_unit_test(test_open_beside_hard_link),
                cmocka_unit_test(test_reader),
                cmocka_unit_test(test_reader_enter_fails),
                cmocka_unit_test(test_reader_user_database),
                cmocka_unit_test(test_mountinfo_fuse),
                cmocka_unit_test(test_temporaries_beside_recipe),
                cmocka_unit_test(test_path_join),
                cmocka_unit_test(test_path_dirname),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
