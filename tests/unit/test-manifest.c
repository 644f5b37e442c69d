/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/manifest (the machine's digest) and normalize's removals. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "manifest.h"
#include "normalize.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"

struct fx {
        char top[64], root[96];
        int rootfd;
};

static int setup(void **state) {
        struct fx *f = calloc(1, sizeof *f);
        strcpy(f->top, "/tmp/mkm-test-manifest.XXXXXX");
        assert_non_null(mkdtemp(f->top));
        snprintf(f->root, sizeof f->root, "%s/root", f->top);
        assert_int_equal(mkdir(f->root, 0755), 0);
        f->rootfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->rootfd >= 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fx *f = *state;
        close(f->rootfd);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, f->top), 0);
        free(f);
        return 0;
}

static void stamp(int dfd, const char *name) {
        struct timespec ts[2] = { { .tv_sec = 1700000000 }, { .tv_sec = 1700000000 } };
        assert_int_equal(utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void make_tree(struct fx *f) {
        assert_int_equal(fs_mkdir_p_at(f->rootfd, "usr/bin", 0755), 0);
        assert_int_equal(fs_write_file_at(f->rootfd, "usr/bin/tool", "abc", 3, 04755), 0);
        assert_int_equal(fchmodat(f->rootfd, "usr/bin/tool", 04755, 0), 0);
        assert_int_equal(symlinkat("usr/bin", f->rootfd, "bin"), 0);
        assert_int_equal(fs_write_file_at(f->rootfd, "usr/a file\\x", "", 0, 0600), 0);
        char p[256];
        snprintf(p, sizeof p, "%s/usr/bin/tool", f->root);
        assert_int_equal(setxattr(p, "user.b", "2", 1, 0), 0);
        assert_int_equal(setxattr(p, "user.a", "1", 1, 0), 0);
        const char *all[] = { "usr/bin/tool", "usr/a file\\x", "bin", "usr/bin", "usr", "." };
        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                stamp(f->rootfd, all[i]);
}

static void test_manifest_text(void **state) {
        struct fx *f = *state;
        make_tree(f);
        _cleanup_free_ char *text = NULL;
        char digest[MANIFEST_DIGEST_LEN];
        struct mkm_err err = {};
        assert_int_equal(manifest_build(NULL, f->rootfd, -1, &text, digest, &err), 0);
        uid_t u = getuid();
        gid_t g = getgid();
        char want[2048];
        snprintf(want, sizeof want,
                 ". type=dir mode=0755 uid=%u gid=%u time=1700000000\n"
                 "./bin type=link mode=0777 uid=%u gid=%u link=usr/bin time=1700000000\n"
                 "./usr type=dir mode=0755 uid=%u gid=%u time=1700000000\n"
                 "./usr/a\\040file\\134x type=file mode=0600 uid=%u gid=%u size=0 "
                 "sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 time=1700000000\n"
                 "./usr/bin type=dir mode=0755 uid=%u gid=%u time=1700000000\n"
                 "./usr/bin/tool type=file mode=4755 uid=%u gid=%u size=3 "
                 "sha256=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad xattr.user.a=31 xattr.user.b=32 "
                 "time=1700000000\n",
                 u, g, u, g, u, g, u, g, u, g, u, g);
        assert_string_equal(text, want);
        assert_int_equal(strncmp(digest, "sha256:", 7), 0);
        assert_int_equal(strlen(digest), 71);

        /* The same tree gives the same digest; one byte, one mode bit or one time stamp changes it. */
        _cleanup_free_ char *t2 = NULL;
        char d2[MANIFEST_DIGEST_LEN];
        assert_int_equal(manifest_build(NULL, f->rootfd, -1, &t2, d2, &err), 0);
        assert_string_equal(digest, d2);
        assert_int_equal(fs_write_file_at(f->rootfd, "usr/bin/tool", "abd", 3, 04755), 0);
        assert_int_equal(fchmodat(f->rootfd, "usr/bin/tool", 04755, 0), 0);
        stamp(f->rootfd, "usr/bin/tool");
        _cleanup_free_ char *t3 = NULL;
        char d3[MANIFEST_DIGEST_LEN];
        assert_int_equal(manifest_build(NULL, f->rootfd, -1, &t3, d3, &err), 0);
        assert_string_not_equal(digest, d3);
        assert_int_equal(fchmodat(f->rootfd, "usr/bin/tool", 0755, 0), 0);
        _cleanup_free_ char *t4 = NULL;
        char d4[MANIFEST_DIGEST_LEN];
        assert_int_equal(manifest_build(NULL, f->rootfd, -1, &t4, d4, &err), 0);
        assert_string_not_equal(d3, d4);
}

/* A directory's xattrs are part of its line and of the digest, like a file's. */
static void test_manifest_dir_xattr(void **state) {
        struct fx *f = *state;
        make_tree(f);
        _cleanup_free_ char *t1 = NULL, *t2 = NULL;
        char d1[MANIFEST_DIGEST_LEN], d2[MANIFEST_DIGEST_LEN];
        struct mkm_err err = {};
        assert_int_equal(manifest_build(NULL, f->rootfd, -1, &t1, d1, &err), 0);
        char p[256];
        snprintf(p, sizeof p, "%s/usr/bin", f->root);
        assert_int_equal(setxattr(p, "user.x", "1", 1, 0), 0);
        stamp(f->rootfd, "usr/bin");
        assert_int_equal(manifest_build(NULL, f->rootfd, -1, &t2, d2, &err), 0);
        assert_string_not_equal(t1, t2);
        assert_string_not_equal(d1, d2);
        char want[256];
        snprintf(want, sizeof want, "\n./usr/bin type=dir mode=0755 uid=%u gid=%u xattr.user.x=31 time=1700000000\n",
                 getuid(), getgid());
        assert_non_null(strstr(t2, want));
}

static void test_remove_generated(void **state) {
        struct fx *f = *state;
        char outside[128];
        snprintf(outside, sizeof outside, "%s/outside", f->top);
        assert_int_equal(mkdir(outside, 0755), 0);
        char keep[160];
        snprintf(keep, sizeof keep, "%s/pacman.log", outside);
        assert_int_equal(fs_write_file_at(AT_FDCWD, keep, "host log", 8, 0644), 0);

        assert_int_equal(fs_mkdir_p_at(f->rootfd, "var/cache/ldconfig", 0755), 0);
        assert_int_equal(fs_write_file_at(f->rootfd, "var/cache/ldconfig/aux-cache", "x", 1, 0600), 0);
        assert_int_equal(fs_mkdir_p_at(f->rootfd, "etc/pacman.d/gnupg/private-keys-v1.d", 0700), 0);
        assert_int_equal(fs_write_file_at(f->rootfd, "etc/pacman.d/gnupg/private-keys-v1.d/k.key", "s", 1, 0600), 0);
        assert_int_equal(fs_write_file_at(f->rootfd, "etc/pacman.d/gnupg/pubring.gpg", "p", 1, 0644), 0);
        assert_int_equal(fs_write_file_at(f->rootfd, "etc/machine-id", "0123456789abcdef0123456789abcdef\n", 33, 0444), 0);
        /* A tree whose var/log points out of it: nothing there may be touched. */
        assert_int_equal(symlinkat(outside, f->rootfd, "var/log"), 0);
        /* Nor through a symlinked directory inside it: only the real var/lib/systemd is cleaned. */
        assert_int_equal(fs_mkdir_p_at(f->rootfd, "srv/state", 0755), 0);
        assert_int_equal(fs_write_file_at(f->rootfd, "srv/state/random-seed", "r", 1, 0600), 0);
        assert_int_equal(fs_mkdir_p_at(f->rootfd, "var/lib", 0755), 0);
        assert_int_equal(symlinkat("../../srv/state", f->rootfd, "var/lib/systemd"), 0);
        /* dbus's random machine id (dbus-uuidgen in its postinst) */
        assert_int_equal(fs_mkdir_p_at(f->rootfd, "var/lib/dbus", 0755), 0);
        assert_int_equal(fs_write_file_at(f->rootfd, "var/lib/dbus/machine-id", "0123456789abcdef0123456789abcdef\n", 33, 0444), 0);

        struct mkm_err err = {};
        assert_int_equal(normalize_remove_generated(NULL, f->rootfd, &err), 0);
        struct stat st;
        assert_int_equal(fstatat(f->rootfd, "var/cache/ldconfig/aux-cache", &st, 0), -1);
        assert_int_equal(fstatat(f->rootfd, "var/lib/dbus/machine-id", &st, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(fstatat(f->rootfd, "etc/pacman.d/gnupg/private-keys-v1.d", &st, 0), -1);
        assert_int_equal(fstatat(f->rootfd, "etc/pacman.d/gnupg/pubring.gpg", &st, 0), 0);
        assert_int_equal(fstatat(f->rootfd, "etc/machine-id", &st, 0), 0);
        assert_int_equal(st.st_size, 0);
        assert_int_equal(access(keep, F_OK), 0);
        assert_int_equal(fstatat(f->rootfd, "srv/state/random-seed", &st, 0), 0);
}

/* With an epoch, the manifest's walk clamps every later time stamp (links and the root
 * included) and lists the clamped times; older ones stay. */
static void test_manifest_clamps(void **state) {
        struct fx *f = *state;
        make_tree(f);
        struct timespec old[2] = { { .tv_sec = 1600000000 }, { .tv_sec = 1600000000 } };
        assert_int_equal(utimensat(f->rootfd, "usr/bin/tool", old, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(fs_write_file_at(f->rootfd, "usr/new", "n", 1, 0644), 0);  /* now */
        assert_int_equal(symlinkat("new", f->rootfd, "usr/newlink"), 0);           /* now */
        _cleanup_free_ char *text = NULL;
        char digest[MANIFEST_DIGEST_LEN];
        struct mkm_err err = {};
        assert_int_equal(manifest_build(NULL, f->rootfd, 1700000000, &text, digest, &err), 0);
        static const char *const entries[] = { ".", "usr", "usr/new", "usr/newlink", "bin", "usr/bin" };
        for (size_t i = 0; i < ELEMENTSOF(entries); i++) {
                struct stat st;
                assert_int_equal(fstatat(f->rootfd, entries[i], &st, AT_SYMLINK_NOFOLLOW), 0);
                assert_int_equal(st.st_mtim.tv_sec, 1700000000);
        }
        assert_non_null(strstr(text, "./usr/new type=file mode=0644"));
        assert_non_null(strstr(text, "time=1600000000\n"));            /* the tool kept its older time */
        assert_null(strstr(text, "time=17000000001"));
        for (const char *p = text; (p = strstr(p, "time=")); p += 5)
                assert_true(strncmp(p + 5, "1700000000\n", 11) == 0 || strncmp(p + 5, "1600000000\n", 11) == 0);
        /* The same tree, already clamped, without clamping: the same manifest. */
        _cleanup_free_ char *t2 = NULL;
        char d2[MANIFEST_DIGEST_LEN];
        assert_int_equal(manifest_build(NULL, f->rootfd, -1, &t2, d2, &err), 0);
        assert_string_equal(text, t2);
}

/* A tree deeper than the walk goes is refused with a message, not walked forever. */
static void test_manifest_too_deep(void **state) {
        struct fx *f = *state;
        int fd = fcntl(f->rootfd, F_DUPFD_CLOEXEC, 3);
        for (int i = 0; i < 260; i++) {
                assert_int_equal(mkdirat(fd, "d", 0755), 0);
                int nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                assert_true(nfd >= 0);
                close(fd);
                fd = nfd;
        }
        close(fd);
        _cleanup_free_ char *text = NULL;
        char digest[MANIFEST_DIGEST_LEN];
        struct mkm_err err = {};
        assert_int_equal(manifest_build(NULL, f->rootfd, -1, &text, digest, &err), -ELOOP);
        assert_string_equal(err.msg, "manifest: the tree is deeper than 256 levels");
        assert_null(text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_manifest_text, setup, teardown),
                cmocka_unit_test_setup_teardown(test_manifest_dir_xattr, setup, teardown),
                cmocka_unit_test_setup_teardown(test_manifest_clamps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_manifest_too_deep, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove_generated, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
