/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/manifest (the machine's digest, which xattrs it covers) and normalize's
 * removals. */
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

/* Only the xattrs that are content count (normalize_xattr_is_content()): a host's or a
 * privileged label (trusted.*, security.selinux) is in neither the manifest nor the digest, so a
 * build on an SELinux host and one without get the same digest, and an import (which never
 * applies such labels) that of its export. trusted.* needs CAP_SYS_ADMIN; the tests run as root
 * on /tmp (ext4 or tmpfs, both hold trusted.* xattrs). */
static void test_manifest_host_xattrs(void **state) {
        struct fx *f = *state;
        if (geteuid() != 0) {
                print_message("skipping: trusted.* xattrs need root\n");
                skip();
        }
        make_tree(f);
        char p[256], d[256];
        snprintf(p, sizeof p, "%s/usr/bin/tool", f->root);
        snprintf(d, sizeof d, "%s/usr/bin", f->root);
        _cleanup_free_ char *t0 = NULL, *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL;
        char d0[MANIFEST_DIGEST_LEN], d1[MANIFEST_DIGEST_LEN], d2[MANIFEST_DIGEST_LEN], d3[MANIFEST_DIGEST_LEN],
                d4[MANIFEST_DIGEST_LEN];
        struct mkm_err err = {};
        assert_int_equal(manifest_build(NULL, f->rootfd, -1, &t0, d0, &err), 0);

        /* A label on a file and on a directory: the same manifest, the same digest. */
        if (setxattr(p, "trusted.x", "1", 1, 0) < 0)
                fail_msg("cannot set trusted.x on %s (as root): %m", p);
        assert_int_equal(setxattr(d, "trusted.y", "1", 1, 0), 0);
        assert_int_equal(manifest_build(NULL, f->rootfd, -1, &t1, d1, &err), 0);
        assert_null(strstr(t1, "trusted"));
        assert_non_null(strstr(t1, " xattr.user.a=31 xattr.user.b=32 time="));
        assert_string_equal(t0, t1);
        assert_string_equal(d0, d1);

        /* Changing it is no change of the machine either. */
        assert_int_equal(setxattr(p, "trusted.x", "other", 5, 0), 0);
        assert_int_equal(manifest_build(NULL, f->rootfd, -1, &t2, d2, &err), 0);
        assert_string_equal(d0, d2);

        /* A content xattr still is: user.a changed, and a user.* on the directory. */
        assert_int_equal(setxattr(p, "user.a", "2", 1, 0), 0);
        assert_int_equal(manifest_build(NULL, f->rootfd, -1, &t3, d3, &err), 0);
        assert_string_not_equal(d0, d3);
        assert_non_null(strstr(t3, " xattr.user.a=32 xattr.user.b=32 time="));
        assert_null(strstr(t3, "trusted"));
        assert_int_equal(setxattr(d, "user.z", "1", 1, 0), 0);
        stamp(f->rootfd, "usr/bin");
        assert_int_equal(manifest_build(NULL, f->rootfd, -1, &t4, d4, &err), 0);
        assert_string_not_equal(d3, d4);
        assert_non_null(strstr(t4, "./usr/bin type=dir mode=0755"));
        assert_non_null(strstr(t4, " xattr.user.z=31 time="));
}

/* The one list of xattrs that are content, for extraction, the manifest and export. */
static void test_xattr_is_content(void **state) {
        (void)state;
        static const struct {
                const char *name;
                bool content;
        } cases[] = {
                { "user.a", true },
                { "user.overlay.opaque", true },
                { "security.capability", true },
                { "system.posix_acl_access", true },
                { "system.posix_acl_default", true },
                { "security.selinux", false },
                { "security.ima", false },
                { "security.evm", false },
                { "security.apparmor", false },
                { "security.capability2", false },
                { "security.capabilit", false },
                { "trusted.x", false },
                { "trusted.overlay.opaque", false },
                { "system.nfs4_acl", false },
                { "system.posix_acl_accessx", false },
                { "User.a", false },
                { "user", false },
                { "", false },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (normalize_xattr_is_content(cases[i].name) != cases[i].content)
                        fail_msg("'%s': expected %s", cases[i].name, cases[i].content ? "content" : "not content");
}

/* A manifest written before the host's labels were left out: manifest_strip_host_xattrs() gives
 * what manifest_build() writes now, and keeps everything else as it was, malformed tokens too. */
static void test_manifest_strip_host_xattrs(void **state) {
        (void)state;
        static const struct {
                const char *in, *out;
                int dropped;
        } cases[] = {
                { ". type=dir mode=0755 uid=0 gid=0 xattr.security.selinux=7300 time=1\n",
                  ". type=dir mode=0755 uid=0 gid=0 time=1\n", 1 },
                { ". type=dir mode=0755 uid=0 gid=0 time=1\n"
                  "./f type=file mode=0644 uid=0 gid=0 size=0 sha256=00 xattr.security.capability=01 "
                  "xattr.security.ima=02 xattr.system.posix_acl_access=03 xattr.system.posix_acl_default=04 "
                  "xattr.trusted.overlay.opaque=79 xattr.user.a=31 time=1\n",
                  ". type=dir mode=0755 uid=0 gid=0 time=1\n"
                  "./f type=file mode=0644 uid=0 gid=0 size=0 sha256=00 xattr.security.capability=01 "
                  "xattr.system.posix_acl_access=03 xattr.system.posix_acl_default=04 xattr.user.a=31 time=1\n",
                  1 },
                /* The name is judged unescaped: \165 is 'u', \163 's'. */
                { "./a xattr.\\165ser.a=31 xattr.\\163ecurity.evm=00 time=1", "./a xattr.\\165ser.a=31 time=1", 1 },
                /* Nothing to leave out: a copy; a path that looks like an xattr stays. */
                { "xattr.trusted.x=00 type=dir\n\n", "xattr.trusted.x=00 type=dir\n\n", 0 },
                { "./a xattr.user.a=31 time=1\n", "./a xattr.user.a=31 time=1\n", 0 },
                /* Malformed tokens are the parser's to refuse. */
                { "./a xattr.trusted.x xattr.\\9x=00 xattr.=1 time=1\n", "./a xattr.trusted.x xattr.\\9x=00 xattr.=1 time=1\n",
                  0 },
                { "", "", 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *out = NULL;
                assert_int_equal(manifest_strip_host_xattrs(cases[i].in, &out), cases[i].dropped);
                assert_string_equal(out, cases[i].out);
        }
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
                cmocka_unit_test_setup_teardown(test_manifest_host_xattrs, setup, teardown),
                cmocka_unit_test(test_xattr_is_content),
                cmocka_unit_test(test_manifest_strip_host_xattrs),
                cmocka_unit_test_setup_teardown(test_manifest_clamps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_manifest_too_deep, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove_generated, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
