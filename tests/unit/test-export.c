/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/export: the tarball is the same bytes for the same tree (owner names
 * absent, mtimes clamped, no atime/ctime, content xattrs and hard links kept, a host's xattr labels
 * left out, the tree left untouched), an import of it (extract with the whole-tree options) has
 * the same manifest digest, and
 * SHA256SUMS parsing refuses what it must, naming the line. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <locale.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctx.h"
#include "export.h"
#include "extract.h"
#include "manifest.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"

#define CLAMP 1600000000
#define LATER 1900000000

struct fx {
        char top[64], root[96], copy[96];
        int rootfd, copyfd;
};

static int setup(void **state) {
        struct fx *f = calloc(1, sizeof *f);
        strcpy(f->top, "/tmp/mkm-test-export.XXXXXX");
        assert_non_null(mkdtemp(f->top));
        snprintf(f->root, sizeof f->root, "%s/root", f->top);
        snprintf(f->copy, sizeof f->copy, "%s/copy", f->top);
        assert_int_equal(mkdir(f->root, 0755), 0);
        assert_int_equal(mkdir(f->copy, 0700), 0);
        f->rootfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        f->copyfd = open(f->copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->rootfd >= 0 && f->copyfd >= 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fx *f = *state;
        close(f->rootfd);
        close(f->copyfd);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, f->top), 0);
        free(f);
        return 0;
}

static void stamp(int dfd, const char *name, time_t t) {
        struct timespec ts[2] = { { .tv_sec = t, .tv_nsec = 123 }, { .tv_sec = t, .tv_nsec = 456 } };
        assert_int_equal(utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static bool have_user_xattrs;
static bool have_trusted_xattrs;

/* A tree with what an export must carry. Times: some later than CLAMP (to clamp), some earlier. */
static void make_tree(struct fx *f, bool late) {
        assert_int_equal(fs_mkdir_p_at(f->rootfd, "usr/bin", 0755), 0);
        assert_int_equal(fs_mkdir_p_at(f->rootfd, "etc/empty", 0700), 0);
        assert_int_equal(fs_write_file_at(f->rootfd, "usr/bin/tool", "abc", 3, 0755), 0);
        assert_int_equal(fchmodat(f->rootfd, "usr/bin/tool", 04755, 0), 0);
        assert_int_equal(linkat(f->rootfd, "usr/bin/tool", f->rootfd, "usr/bin/tool2", 0), 0);
        assert_int_equal(symlinkat("usr/bin", f->rootfd, "bin"), 0);
        assert_int_equal(fs_write_file_at(f->rootfd, "etc/a file", "x\n", 2, 0640), 0);
        assert_int_equal(mkfifoat(f->rootfd, "etc/fifo", 0600), 0);
        if (geteuid() == 0) {
                assert_int_equal(fchownat(f->rootfd, "etc/a file", 1234, 5678, 0), 0);
                assert_int_equal(fchownat(f->rootfd, "bin", 4321, 8765, AT_SYMLINK_NOFOLLOW), 0);
        }
        _cleanup_close_ int fd = openat(f->rootfd, "etc/a file", O_RDONLY | O_CLOEXEC);
        have_user_xattrs = fsetxattr(fd, "user.b", "2", 1, 0) == 0 && fsetxattr(fd, "user.a", "1", 1, 0) == 0;
        /* A host's label (as root: trusted.* needs CAP_SYS_ADMIN), on a file and a directory: not
         * content, so neither in the archive nor in the digest (an import never applies it). */
        if (geteuid() == 0) {
                _cleanup_close_ int dfd = openat(f->rootfd, "etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fsetxattr(fd, "trusted.x", "host", 4, 0) < 0 || fsetxattr(dfd, "trusted.y", "host", 4, 0) < 0)
                        fail_msg("cannot set a trusted.* xattr as root: %m");
                have_trusted_xattrs = true;
        }
        const char *names[] = { "usr/bin/tool", "bin", "etc/a file", "etc/fifo", "etc/empty", "usr/bin", "usr", "etc", "." };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                stamp(f->rootfd, names[i], late && i % 2 == 0 ? LATER : CLAMP - 1000 * (time_t)i);
}

static int tmp_fd(void) {
        int fd = memfd_create("export", MFD_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

static void read_all(int fd, char **ret, size_t *ret_len) {
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(fs_read_fd(fd, 64u << 20, ret, ret_len), 0);
}

static void test_same_bytes(void **state) {
        struct fx *f = *state;
        struct mkm_ctx ctx = {};
        make_tree(f, true);
        struct stat before;
        assert_int_equal(fstatat(f->rootfd, "usr/bin/tool", &before, AT_SYMLINK_NOFOLLOW), 0);
        for (int c = 0; c < _EXPORT_COMPRESS_MAX; c++) {
                _cleanup_close_ int a = tmp_fd(), b = tmp_fd();
                struct mkm_err err = {};
                assert_int_equal(export_tar_fd(&ctx, f->rootfd, CLAMP, (enum export_compress)c, a, NULL, &err), 0);
                /* Reading the tree again must not matter: another walk, the same bytes. */
                assert_int_equal(export_tar_fd(&ctx, f->rootfd, CLAMP, (enum export_compress)c, b, NULL, &err), 0);
                _cleanup_free_ char *x = NULL, *y = NULL;
                size_t xl, yl;
                read_all(a, &x, &xl);
                read_all(b, &y, &yl);
                assert_true(xl > 0);
                assert_int_equal(xl, yl);
                assert_memory_equal(x, y, xl);
        }
        /* The export clamps what it writes, not the tree. */
        struct stat after;
        assert_int_equal(fstatat(f->rootfd, "usr/bin/tool", &after, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
        assert_int_equal(after.st_mtim.tv_sec, LATER);
        assert_int_equal(after.st_atim.tv_sec, before.st_atim.tv_sec);
}

static void test_entries(void **state) {
        struct fx *f = *state;
        struct mkm_ctx ctx = {};
        make_tree(f, true);
        _cleanup_close_ int fd = tmp_fd();
        struct mkm_err err = {};
        assert_int_equal(export_tar_fd(&ctx, f->rootfd, CLAMP, EXPORT_GZIP, fd, NULL, &err), 0);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        struct archive *a = archive_read_new();
        archive_read_support_filter_all(a);
        archive_read_support_format_tar(a);
        assert_int_equal(archive_read_open_fd(a, fd, 4096), ARCHIVE_OK);
        struct archive_entry *e;
        char order[1024] = "";
        bool saw_link = false, saw_fifo = false, saw_xattr = false;
        while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
                const char *p = archive_entry_pathname(e);
                /* No entry carries a host's label. */
                const char *xn;
                const void *xv;
                size_t xl;
                archive_entry_xattr_reset(e);
                while (archive_entry_xattr_next(e, &xn, &xv, &xl) == ARCHIVE_OK)
                        if (strncmp(xn, "user.", 5) != 0)
                                fail_msg("%s carries the xattr %s", p, xn);
                strcat(order, p);
                strcat(order, " ");
                /* Numeric owners only, no names. */
                const char *un = archive_entry_uname(e), *gn = archive_entry_gname(e);
                assert_true(!un || !*un);
                assert_true(!gn || !*gn);
                /* Clamped whole seconds, no atime or ctime. */
                assert_true(archive_entry_mtime(e) <= CLAMP);
                assert_int_equal(archive_entry_mtime_nsec(e), 0);
                assert_false(archive_entry_atime_is_set(e));
                assert_false(archive_entry_ctime_is_set(e));
                if (strcmp(p, "./usr/bin/tool2") == 0) {
                        assert_string_equal(archive_entry_hardlink(e), "./usr/bin/tool");
                        saw_link = true;
                }
                if (strcmp(p, "./etc/fifo") == 0)
                        saw_fifo = archive_entry_filetype(e) == AE_IFIFO;
                if (strcmp(p, "./usr/bin/tool") == 0)
                        assert_int_equal(archive_entry_perm(e), 04755);
                if (strcmp(p, "./etc/a file") == 0) {
                        if (geteuid() == 0) {
                                assert_int_equal(archive_entry_uid(e), 1234);
                                assert_int_equal(archive_entry_gid(e), 5678);
                        }
                        const char *name;
                        const void *v;
                        size_t n;
                        char names[64] = "";
                        archive_entry_xattr_reset(e);
                        while (archive_entry_xattr_next(e, &name, &v, &n) == ARCHIVE_OK) {
                                strcat(names, name);
                                strcat(names, " ");
                        }
                        if (have_user_xattrs) {
                                assert_string_equal(names, "user.a user.b ");     /* sorted */
                                saw_xattr = true;
                        }
                }
        }
        archive_read_free(a);
        /* Sorted, depth first, the root first. */
        assert_string_equal(order, "./ ./bin ./etc/ ./etc/a file ./etc/empty/ ./etc/fifo ./usr/ ./usr/bin/ ./usr/bin/tool "
                                   "./usr/bin/tool2 ");
        assert_true(saw_link);
        assert_true(saw_fifo);
        assert_true(saw_xattr || !have_user_xattrs);
        if (!have_trusted_xattrs)
                print_message("not checked without root: trusted.* xattrs left out\n");
}

/* Only what the tree holds decides the bytes: a tree made in another order (other inodes, other
 * directory order on disk) gives the same archive. */
static void test_creation_order(void **state) {
        struct fx *f = *state;
        struct mkm_ctx ctx = {};
        make_tree(f, false);
        _cleanup_close_ int a = tmp_fd(), b = tmp_fd();
        struct mkm_err err = {};
        assert_int_equal(export_tar_fd(&ctx, f->rootfd, CLAMP, EXPORT_XZ, a, NULL, &err), 0);
        /* Rebuild the same content with entries created in another order. */
        assert_int_equal(fs_rm_rf_at(f->rootfd, "etc"), 0);
        assert_int_equal(mkdirat(f->rootfd, "etc", 0700), 0);  /* as fs_mkdir_p_at made it */
        assert_int_equal(mkfifoat(f->rootfd, "etc/fifo", 0600), 0);
        assert_int_equal(mkdirat(f->rootfd, "etc/empty", 0700), 0);
        assert_int_equal(fs_write_file_at(f->rootfd, "etc/a file", "x\n", 2, 0640), 0);
        assert_int_equal(fchmodat(f->rootfd, "etc/a file", 0640, 0), 0);
        if (geteuid() == 0)
                assert_int_equal(fchownat(f->rootfd, "etc/a file", 1234, 5678, 0), 0);
        _cleanup_close_ int fd = openat(f->rootfd, "etc/a file", O_RDONLY | O_CLOEXEC);
        if (have_user_xattrs) {
                assert_int_equal(fsetxattr(fd, "user.a", "1", 1, 0), 0);
                assert_int_equal(fsetxattr(fd, "user.b", "2", 1, 0), 0);
        }
        const char *names[] = { "usr/bin/tool", "bin", "etc/a file", "etc/fifo", "etc/empty", "usr/bin", "usr", "etc", "." };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                stamp(f->rootfd, names[i], CLAMP - 1000 * (time_t)i);
        assert_int_equal(export_tar_fd(&ctx, f->rootfd, CLAMP, EXPORT_XZ, b, NULL, &err), 0);
        _cleanup_free_ char *x = NULL, *y = NULL;
        size_t xl, yl;
        read_all(a, &x, &xl);
        read_all(b, &y, &yl);
        if (getenv("EXPORT_DUMP")) {
                int o = open("/tmp/h3-a.tar.xz", O_WRONLY | O_CREAT | O_TRUNC, 0644);
                (void)!write(o, x, xl);
                close(o);
                o = open("/tmp/h3-b.tar.xz", O_WRONLY | O_CREAT | O_TRUNC, 0644);
                (void)!write(o, y, yl);
                close(o);
        }
        assert_int_equal(xl, yl);
        assert_memory_equal(x, y, xl);
}

/* export -> extract with the whole-tree options: the same manifest digest (the tree's trusted.*
 * labels, which the import does not apply, count in neither). */
static void test_roundtrip_digest(void **state) {
        struct fx *f = *state;
        struct mkm_ctx ctx = {};
        if (geteuid() != 0) {
                skip();
                return;
        }
        make_tree(f, false);
        _cleanup_close_ int fd = tmp_fd();
        struct mkm_err err = {};
        char archived[MANIFEST_DIGEST_LEN];
        assert_int_equal(export_tar_fd(&ctx, f->rootfd, -1, EXPORT_ZSTD, fd, archived, &err), 0);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        struct extract_opts xo = { .label = "t", .apply_root = true, .restore_dir_times = true, .allow_special = true };
        struct extract_result xr = {};
        int r = extract_archive_fd(&ctx, f->copyfd, fd, &xo, &xr, &err);
        if (r < 0)
                fail_msg("%s", err.msg);
        extract_result_done(&xr);
        _cleanup_free_ char *m1 = NULL, *m2 = NULL;
        char d1[MANIFEST_DIGEST_LEN], d2[MANIFEST_DIGEST_LEN];
        assert_int_equal(manifest_build(&ctx, f->rootfd, -1, &m1, d1, &err), 0);
        assert_int_equal(manifest_build(&ctx, f->copyfd, -1, &m2, d2, &err), 0);
        assert_string_equal(m1, m2);
        assert_string_equal(d1, d2);
        assert_string_equal(archived, d2);      /* the digest of what was archived is the import's */
        /* ... though the tree has a label that the copy has not. */
        char v[16];
        _cleanup_close_ int a = openat(f->rootfd, "etc/a file", O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int b = openat(f->copyfd, "etc/a file", O_RDONLY | O_CLOEXEC);
        assert_int_equal(fgetxattr(a, "trusted.x", v, sizeof v), 4);
        assert_int_equal(fgetxattr(b, "trusted.x", v, sizeof v), -1);
        assert_int_equal(errno, ENODATA);
        assert_int_equal(fgetxattr(b, "user.a", v, sizeof v), have_user_xattrs ? 1 : -1);

        /* Without restoring directory times the digest differs: the options matter. */
        _cleanup_close_ int fd2 = tmp_fd();
        assert_int_equal(export_tar_fd(&ctx, f->rootfd, -1, EXPORT_GZIP, fd2, NULL, &err), 0);
        assert_int_equal(lseek(fd2, 0, SEEK_SET), 0);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, f->copy), 0);
        assert_int_equal(mkdir(f->copy, 0700), 0);
        close(f->copyfd);
        f->copyfd = open(f->copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        xo.restore_dir_times = false;
        assert_int_equal(extract_archive_fd(&ctx, f->copyfd, fd2, &xo, &xr, &err), 0);
        extract_result_done(&xr);
        _cleanup_free_ char *m3 = NULL;
        char d3[MANIFEST_DIGEST_LEN];
        assert_int_equal(manifest_build(&ctx, f->copyfd, -1, &m3, d3, &err), 0);
        assert_string_not_equal(d1, d3);
}

/* The same bytes whatever the caller's locale (libarchive converts names through it): a UTF-8
 * name and one that is not UTF-8, exported under C and under C.UTF-8. */
static void test_locale_independent(void **state) {
        struct fx *f = *state;
        struct mkm_ctx ctx = {};
        make_tree(f, false);
        assert_int_equal(fs_write_file_at(f->rootfd, "etc/caf\xc3\xa9", "x", 1, 0644), 0);
        assert_int_equal(fs_write_file_at(f->rootfd, "etc/bin\xff", "y", 1, 0644), 0);
        assert_int_equal(symlinkat("caf\xc3\xa9", f->rootfd, "etc/link"), 0);
        static const char *const locales[] = { "C", "C.UTF-8" };
        char *bytes[2] = {};
        size_t len[2] = {};
        struct mkm_err err = {};
        for (size_t i = 0; i < 2; i++) {
                if (!setlocale(LC_ALL, locales[i]))
                        fail_msg("the %s locale is missing", locales[i]);
                _cleanup_close_ int fd = tmp_fd();
                assert_int_equal(export_tar_fd(&ctx, f->rootfd, CLAMP, EXPORT_GZIP, fd, NULL, &err), 0);
                read_all(fd, &bytes[i], &len[i]);
        }
        (void)setlocale(LC_ALL, "C");
        assert_int_equal(len[0], len[1]);
        assert_memory_equal(bytes[0], bytes[1], len[0]);
        free(bytes[0]);
        free(bytes[1]);
}

/* The digest export_tar_fd() reports is the one of what it archived: with times clamped and a
 * socket left out, it is not the tree's, but it is what an import of the archive computes. */
static void test_archived_digest(void **state) {
        struct fx *f = *state;
        struct mkm_ctx ctx = {};
        if (geteuid() != 0) {
                skip();
                return;
        }
        make_tree(f, true);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        (void)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/etc/sock", f->root);
        _cleanup_close_ int sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(sk >= 0);
        assert_int_equal(bind(sk, (struct sockaddr *)&sa, sizeof sa), 0);
        _cleanup_close_ int fd = tmp_fd();
        struct mkm_err err = {};
        char archived[MANIFEST_DIGEST_LEN], tree[MANIFEST_DIGEST_LEN], copy[MANIFEST_DIGEST_LEN];
        /* 1: the socket, left out */
        assert_int_equal(export_tar_fd(&ctx, f->rootfd, CLAMP, EXPORT_GZIP, fd, archived, &err), 1);
        _cleanup_free_ char *mt = NULL, *mc = NULL;
        assert_int_equal(manifest_build(&ctx, f->rootfd, -1, &mt, tree, &err), 0);
        assert_string_not_equal(archived, tree);        /* late times, the socket */
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        struct extract_opts xo = { .label = "t", .apply_root = true, .restore_dir_times = true, .allow_special = true };
        struct extract_result xr = {};
        if (extract_archive_fd(&ctx, f->copyfd, fd, &xo, &xr, &err) < 0)
                fail_msg("%s", err.msg);
        extract_result_done(&xr);
        assert_int_equal(manifest_build(&ctx, f->copyfd, -1, &mc, copy, &err), 0);
        assert_string_equal(archived, copy);
}

/* A package may not carry a fifo; an import may (allow_special). */
static void test_special_refused_in_packages(void **state) {
        struct fx *f = *state;
        struct mkm_ctx ctx = {};
        make_tree(f, false);
        _cleanup_close_ int fd = tmp_fd();
        struct mkm_err err = {};
        assert_int_equal(export_tar_fd(&ctx, f->rootfd, -1, EXPORT_GZIP, fd, NULL, &err), 0);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        struct extract_opts xo = { .label = "pkg" };
        struct extract_result xr = {};
        assert_int_equal(extract_archive_fd(&ctx, f->copyfd, fd, &xo, &xr, &err), -MKM_E_UNSAFE_PATH);
        assert_non_null(strstr(err.msg, "fifo"));
}

static void test_sums_parse(void **state) {
        (void)state;
        const char *h = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        char text[512];
        snprintf(text, sizeof text, "%s  a.tar.xz\n\n%s *b.nspawn\r\n%.64s  c", h, h, "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855");
        struct export_sum *s = NULL;
        size_t n = 0;
        struct mkm_err err = {};
        assert_int_equal(export_sums_parse(text, strlen(text), "SUMS", &s, &n, &err), 0);
        assert_int_equal(n, 3);
        assert_string_equal(s[0].name, "a.tar.xz");
        assert_string_equal(s[1].name, "b.nspawn");
        assert_string_equal(s[2].name, "c");
        assert_string_equal(s[2].hex, h);       /* lower-cased */
        assert_non_null(export_sums_find(s, n, "b.nspawn"));
        assert_null(export_sums_find(s, n, "d"));
        export_sums_free(s, n);
        assert_int_equal(export_sums_parse("", 0, "SUMS", &s, &n, &err), 0);
        assert_int_equal(n, 0);
        export_sums_free(s, n);
}

static void test_sums_errors(void **state) {
        (void)state;
        const char *h = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        static const struct {
                const char *fmt;        /* %s = a good hash */
                const char *msg;
        } cases[] = {
                { "%.63s  a\n", "SUMS:1: expected 'SHA256  FILE'" },
                { "%s a\n", "SUMS:1: expected 'SHA256  FILE'" },
                { "%s  \n", "SUMS:1: expected 'SHA256  FILE'" },
                { "%.63sg  a\n", "SUMS:1: expected 'SHA256  FILE'" },
                { "%s  a\n%s  dir/b\n", "SUMS:2: expected a file name without '/', got 'dir/b'" },
                { "%s  a\n\n%s  a\n", "SUMS:3: 'a' is listed twice" },
                { "\\%s  a\\nb\n", "SUMS:1: escaped file names" },
                { "%s  ..\n", "SUMS:1: expected a file name without '/'" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char text[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                snprintf(text, sizeof text, cases[i].fmt, h, h);
#pragma GCC diagnostic pop
                struct export_sum *s = NULL;
                size_t n = 0;
                struct mkm_err err = {};
                int r = export_sums_parse(text, strlen(text), "SUMS", &s, &n, &err);
                if (r != -MKM_E_PARSE || !strstr(err.msg, cases[i].msg))
                        fail_msg("case %zu: r=%d msg '%s', expected '%s'", i, r, err.msg, cases[i].msg);
        }
        /* A NUL byte. */
        char nul[80];
        snprintf(nul, sizeof nul, "%s  a", h);
        nul[66] = 0;
        struct export_sum *s = NULL;
        size_t n = 0;
        struct mkm_err err = {};
        assert_int_equal(export_sums_parse(nul, 67, "SUMS", &s, &n, &err), -MKM_E_PARSE);
        assert_non_null(strstr(err.msg, "SUMS:1: expected text"));
}

static void test_names(void **state) {
        (void)state;
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "/x/y/foo.tar.xz", "foo" }, { "foo.tar.zst", "foo" }, { "a.b.tar.gz", "a.b" },
                { "foo.tar", "foo" },         { "foo.tgz", "foo" },     { "foo.xz", NULL },
                { ".tar.xz", NULL },          { "dir/", NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *n = export_name_from_file(cases[i].in);
                if (cases[i].out)
                        assert_string_equal(n, cases[i].out);
                else
                        assert_null(n);
        }
        assert_int_equal(export_compress_from_string("zstd"), EXPORT_ZSTD);
        assert_int_equal(export_compress_from_string("bzip2"), _EXPORT_COMPRESS_INVALID);
        assert_string_equal(export_compress_suffix(EXPORT_GZIP), ".tar.gz");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_same_bytes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_entries, setup, teardown),
                cmocka_unit_test_setup_teardown(test_creation_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_roundtrip_digest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_archived_digest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_locale_independent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_special_refused_in_packages, setup, teardown),
                cmocka_unit_test(test_sums_parse),
                cmocka_unit_test(test_sums_errors),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
