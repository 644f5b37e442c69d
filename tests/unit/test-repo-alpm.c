/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/arch/repo-alpm: dbs written here with libarchive (gzip, zstd, xz, none),
 * hostile fixtures with their exact messages, and a db made by the real repo-add from packages
 * made by the real bsdtar (skipped when those tools are missing). */
#include <archive.h>
#include <archive_entry.h>
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/repo-alpm.h"
#include "helpers.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/strv.h"

enum tkind { T_FILE, T_DIR, T_SYMLINK };

struct tfile {
        const char *path;
        const char *data;       /* NULL for dirs; for T_SYMLINK the target */
        size_t len;             /* 0: strlen(data) */
        enum tkind kind;
};

#define DIRENT(p) { p, NULL, 0, T_DIR }
#define FILEENT(p, d) { p, d, 0, T_FILE }

/* Write a tar with the given filter (ARCHIVE_FILTER_NONE/GZIP/ZSTD/XZ) into a malloc'd buffer. */
static void *make_tar(int filter, const struct tfile *files, size_t n, size_t *ret_len) {
        size_t cap = 16u << 20, used = 0;
        char *buf = malloc(cap);
        assert_non_null(buf);
        struct archive *a = archive_write_new();
        assert_non_null(a);
        assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
        switch (filter) {
        case ARCHIVE_FILTER_GZIP:
                assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
                break;
        case ARCHIVE_FILTER_ZSTD:
                assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
                break;
        case ARCHIVE_FILTER_XZ:
                assert_int_equal(archive_write_add_filter_xz(a), ARCHIVE_OK);
                break;
        default:
                assert_int_equal(archive_write_add_filter_none(a), ARCHIVE_OK);
        }
        assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
        for (size_t i = 0; i < n; i++) {
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, files[i].path);
                archive_entry_set_mtime(e, 1700000000, 0);
                if (files[i].kind == T_DIR) {
                        archive_entry_set_filetype(e, AE_IFDIR);
                        archive_entry_set_perm(e, 0755);
                        archive_entry_set_size(e, 0);
                        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
                } else if (files[i].kind == T_SYMLINK) {
                        archive_entry_set_filetype(e, AE_IFLNK);
                        archive_entry_set_perm(e, 0777);
                        archive_entry_set_symlink(e, files[i].data);
                        archive_entry_set_size(e, 0);
                        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
                } else {
                        size_t len = files[i].len ? files[i].len : strlen(files[i].data);
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_perm(e, 0644);
                        archive_entry_set_size(e, (la_int64_t)len);
                        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
                        assert_int_equal(archive_write_data(a, files[i].data, len), (la_ssize_t)len);
                }
                archive_entry_free(e);
        }
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
        *ret_len = used;
        return buf;
}

#define SHA_A "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SIG "iHUEABYIAB0WIQQ="

static const char desc_full[] =
        "%FILENAME%\nfoo-1:2.0.1-3-x86_64.pkg.tar.zst\n\n"
        "%NAME%\nfoo\n\n"
        "%BASE%\nfoo-base\n\n"
        "%VERSION%\n1:2.0.1-3\n\n"
        "%DESC%\nThe foo tool: does things\n\n"
        "%GROUPS%\nbase\nbase-devel\n\n"
        "%CSIZE%\n123456\n\n"
        "%ISIZE%\n18446744073709551615\n\n"
        "%MD5SUM%\n900150983CD24FB0D6963F7D28E17F72\n\n"
        "%SHA256SUM%\n" SHA_A "\n\n"
        "%PGPSIG%\n" SIG "\n\n"
        "%URL%\nhttps://example.org/foo\n\n"
        "%LICENSE%\nGPL-2.0-or-later\nMIT\n\n"
        "%ARCH%\nx86_64\n\n"
        "%BUILDDATE%\n1700000000\n\n"
        "%PACKAGER%\nA Packager <a@example.org>\n\n"
        "%REPLACES%\nfoo-old<2\n\n"
        "%CONFLICTS%\nfoo-git\n\n"
        "%PROVIDES%\nlibfoo.so=2-64\nfoo-compat=2.0\n\n"
        "%DEPENDS%\nglibc>=2.38\nbash\n\n"
        "%OPTDEPENDS%\ngtk3: for the GUI\n\n"
        "%MAKEDEPENDS%\ncmake\n\n"
        "%CHECKDEPENDS%\npython-pytest\n\n"
        "%XDATA%\npkgtype=pkg\nmore=1\n\n";

static const char desc_min[] = "%NAME%\nbar\n\n%VERSION%\n0.1-1\n\n%FILENAME%\nbar-0.1-1-any.pkg.tar.xz\n";

static void check_foo(const struct repo_alpm_pkg *p) {
        assert_string_equal(p->name, "foo");
        assert_string_equal(p->version, "1:2.0.1-3");
        assert_string_equal(p->base, "foo-base");
        assert_string_equal(p->desc, "The foo tool: does things");
        assert_string_equal(p->filename, "foo-1:2.0.1-3-x86_64.pkg.tar.zst");
        assert_string_equal(p->sha256, SHA_A);
        assert_string_equal(p->md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_string_equal(p->pgpsig, SIG);
        assert_string_equal(p->arch, "x86_64");
        assert_string_equal(p->url, "https://example.org/foo");
        assert_string_equal(p->packager, "A Packager <a@example.org>");
        assert_int_equal(p->csize, 123456);
        assert_true(p->isize == UINT64_MAX);
        assert_int_equal(p->builddate, 1700000000);
        assert_int_equal(strv_length(p->groups), 2);
        assert_string_equal(p->groups[1], "base-devel");
        assert_int_equal(strv_length(p->licenses), 2);
        assert_string_equal(p->licenses[0], "GPL-2.0-or-later");
        assert_int_equal(strv_length(p->depends), 2);
        assert_string_equal(p->depends[0], "glibc>=2.38");
        assert_string_equal(p->depends[1], "bash");
        assert_string_equal(p->optdepends[0], "gtk3: for the GUI");
        assert_string_equal(p->makedepends[0], "cmake");
        assert_string_equal(p->checkdepends[0], "python-pytest");
        assert_int_equal(strv_length(p->provides), 2);
        assert_string_equal(p->provides[0], "libfoo.so=2-64");
        assert_string_equal(p->conflicts[0], "foo-git");
        assert_string_equal(p->replaces[0], "foo-old<2");
        assert_string_equal(p->repo, "core");
}

static void test_parse_filters(void **state) {
        (void)state;
        static const int filters[] = { ARCHIVE_FILTER_NONE, ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_ZSTD, ARCHIVE_FILTER_XZ };
        const struct tfile files[] = {
                DIRENT("foo-1:2.0.1-3/"),
                FILEENT("foo-1:2.0.1-3/desc", desc_full),
                DIRENT("bar-0.1-1/"),
                FILEENT("bar-0.1-1/desc", desc_min),
                FILEENT("bar-0.1-1/files", "%FILES%\nusr/\nusr/bin/bar\n"),
        };
        for (size_t i = 0; i < ELEMENTSOF(filters); i++) {
                size_t len;
                _cleanup_free_ void *buf = make_tar(filters[i], files, ELEMENTSOF(files), &len);
                _cleanup_(repo_alpm_db_freep) struct repo_alpm_db *db = NULL;
                struct mkm_err err = {};
                int r = repo_alpm_parse(NULL, "core", buf, len, &db, &err);
                if (r < 0)
                        fail_msg("filter %d: %s", filters[i], err.msg);
                assert_string_equal(db->name, "core");
                assert_int_equal(db->n, 2);
                /* sorted by name */
                assert_string_equal(db->pkgs[0].name, "bar");
                check_foo(&db->pkgs[1]);
                const struct repo_alpm_pkg *bar = repo_alpm_find(db, "bar");
                assert_ptr_equal(bar, &db->pkgs[0]);
                assert_string_equal(bar->version, "0.1-1");
                assert_null(bar->sha256);
                assert_null(bar->desc);
                assert_int_equal(bar->csize, 0);
                assert_non_null(bar->depends);
                assert_int_equal(strv_length(bar->depends), 0);
                assert_int_equal(strv_length(bar->licenses), 0);
                assert_ptr_equal(repo_alpm_find(db, "foo"), &db->pkgs[1]);
                assert_null(repo_alpm_find(db, "baz"));
                assert_null(repo_alpm_find(db, "a"));
                assert_null(repo_alpm_find(db, "zzz"));
        }
}

static void test_old_style_depends(void **state) {
        (void)state;
        const struct tfile files[] = {
                FILEENT("baz-3.0-2/depends", "%DEPENDS%\nfoo>=1\n\n%PROVIDES%\nbazz\n\n"),
                FILEENT("baz-3.0-2/desc", "%NAME%\nbaz\n\n%VERSION%\n3.0-2\n\n%FILENAME%\nbaz-3.0-2.pkg.tar.gz\n\r\n"),
                FILEENT("README", "top-level files are ignored\n"),
        };
        size_t len;
        _cleanup_free_ void *buf = make_tar(ARCHIVE_FILTER_GZIP, files, ELEMENTSOF(files), &len);
        _cleanup_(repo_alpm_db_freep) struct repo_alpm_db *db = NULL;
        struct mkm_err err = {};
        assert_int_equal(repo_alpm_parse(NULL, "extra", buf, len, &db, &err), 0);
        assert_int_equal(db->n, 1);
        assert_string_equal(db->pkgs[0].filename, "baz-3.0-2.pkg.tar.gz");
        assert_string_equal(db->pkgs[0].depends[0], "foo>=1");
        assert_string_equal(db->pkgs[0].provides[0], "bazz");
}

static void test_empty_db(void **state) {
        (void)state;
        static const int filters[] = { ARCHIVE_FILTER_NONE, ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_ZSTD, ARCHIVE_FILTER_XZ };
        for (size_t i = 0; i < ELEMENTSOF(filters); i++) {
                size_t len;
                _cleanup_free_ void *buf = make_tar(filters[i], NULL, 0, &len);
                _cleanup_(repo_alpm_db_freep) struct repo_alpm_db *db = NULL;
                struct mkm_err err = {};
                int r = repo_alpm_parse(NULL, "empty", buf, len, &db, &err);
                if (r < 0)
                        fail_msg("filter %d: %s", filters[i], err.msg);
                assert_int_equal(db->n, 0);
                assert_null(repo_alpm_find(db, "foo"));
        }
}

/* A desc for foo-1.0-1 with one line replaced or added. */
#define DESC_HEAD "%NAME%\nfoo\n\n%VERSION%\n1.0-1\n\n"
#define DESC_OK DESC_HEAD "%FILENAME%\nfoo-1.0-1-any.pkg.tar.zst\n\n"

struct hostile {
        const char *what;
        struct tfile files[3];
        const char *msg;
        int code;
        struct repo_alpm_limits limits;  /* all zero: defaults */
};

static char big_desc[(1u << 20) + 64];

static void test_hostile(void **state) {
        (void)state;
        memset(big_desc, 'x', sizeof big_desc - 1);
        memcpy(big_desc, DESC_OK "%DESC%\n", strlen(DESC_OK "%DESC%\n"));
        big_desc[sizeof big_desc - 2] = '\n';
        big_desc[sizeof big_desc - 1] = 0;

        static const char nul_desc[] = DESC_OK "%DESC%\na\0b\n";
        const struct hostile t[] = {
                { "filename with /", { FILEENT("foo-1.0-1/desc", DESC_HEAD "%FILENAME%\nsub/foo.pkg.tar.zst\n") },
                  "core.db: entry 'foo-1.0-1/desc': %FILENAME% 'sub/foo.pkg.tar.zst' contains '/'", -MKM_E_PARSE },
                { "filename ../x", { FILEENT("foo-1.0-1/desc", DESC_HEAD "%FILENAME%\n../x\n") },
                  "core.db: entry 'foo-1.0-1/desc': %FILENAME% '../x' contains '/'", -MKM_E_PARSE },
                { "filename leading dot", { FILEENT("foo-1.0-1/desc", DESC_HEAD "%FILENAME%\n.foo.pkg.tar.zst\n") },
                  "core.db: entry 'foo-1.0-1/desc': %FILENAME% '.foo.pkg.tar.zst' starts with '.'", -MKM_E_PARSE },
                { "filename ..", { FILEENT("foo-1.0-1/desc", DESC_HEAD "%FILENAME%\n..\n") },
                  "core.db: entry 'foo-1.0-1/desc': %FILENAME% '..' starts with '.'", -MKM_E_PARSE },
                { "filename control char", { FILEENT("foo-1.0-1/desc", DESC_HEAD "%FILENAME%\nfoo\033[2J.pkg\n") },
                  "core.db: entry 'foo-1.0-1/desc': %FILENAME% contains a control character", -MKM_E_PARSE },
                { "filename too long",
                  { FILEENT("foo-1.0-1/desc",
                            DESC_HEAD "%FILENAME%\n"
                                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n") },
                  "core.db: entry 'foo-1.0-1/desc': %FILENAME% is longer than 255 bytes", -MKM_E_PARSE },
                { "bad sha (63 digits)",
                  { FILEENT("foo-1.0-1/desc", DESC_OK "%SHA256SUM%\n" "a7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n") },
                  "core.db: entry 'foo-1.0-1/desc': %SHA256SUM% is not 64 hex digits", -MKM_E_PARSE },
                { "bad sha (not hex)",
                  { FILEENT("foo-1.0-1/desc", DESC_OK "%SHA256SUM%\n" "g a7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2001ad\n") },
                  "core.db: entry 'foo-1.0-1/desc': %SHA256SUM% is not 64 hex digits", -MKM_E_PARSE },
                { "size overflow", { FILEENT("foo-1.0-1/desc", DESC_OK "%CSIZE%\n18446744073709551616\n") },
                  "core.db: entry 'foo-1.0-1/desc': %CSIZE% '18446744073709551616' is not a decimal number in range",
                  -MKM_E_PARSE },
                { "negative size", { FILEENT("foo-1.0-1/desc", DESC_OK "%ISIZE%\n-1\n") },
                  "core.db: entry 'foo-1.0-1/desc': %ISIZE% '-1' is not a decimal number in range", -MKM_E_PARSE },
                { "builddate overflow", { FILEENT("foo-1.0-1/desc", DESC_OK "%BUILDDATE%\n9223372036854775808\n") },
                  "core.db: entry 'foo-1.0-1/desc': %BUILDDATE% '9223372036854775808' is not a decimal number in range",
                  -MKM_E_PARSE },
                { "missing NAME", { FILEENT("foo-1.0-1/desc", "%VERSION%\n1.0-1\n\n%FILENAME%\nfoo.pkg\n") },
                  "core.db: entry 'foo-1.0-1': missing %NAME%", -MKM_E_PARSE },
                { "missing FILENAME", { FILEENT("foo-1.0-1/desc", DESC_HEAD) },
                  "core.db: entry 'foo-1.0-1': missing %FILENAME%", -MKM_E_PARSE },
                { "depends without desc", { FILEENT("foo-1.0-1/depends", "%DEPENDS%\nbar\n") },
                  "core.db: entry 'foo-1.0-1': missing %NAME%", -MKM_E_PARSE },
                { "duplicate name",
                  { FILEENT("foo-1.0-1/desc", DESC_OK),
                    FILEENT("foo-2.0-1/desc", "%NAME%\nfoo\n\n%VERSION%\n2.0-1\n\n%FILENAME%\nfoo2.pkg\n") },
                  "core.db: package 'foo' appears twice ('foo-1.0-1' and 'foo-2.0-1')", -MKM_E_PARSE },
                { "same entry twice", { FILEENT("foo-1.0-1/desc", DESC_OK), FILEENT("foo-1.0-1/desc", DESC_OK) },
                  "core.db: entry 'foo-1.0-1/desc': appears twice in the archive", -MKM_E_PARSE },
                { "dir/name mismatch", { FILEENT("bar-1.0-1/desc", DESC_OK) },
                  "core.db: entry 'bar-1.0-1': directory does not match %NAME%-%VERSION% 'foo-1.0-1'", -MKM_E_PARSE },
                { "dir/version mismatch", { FILEENT("foo-1.0-2/desc", DESC_OK) },
                  "core.db: entry 'foo-1.0-2': directory does not match %NAME%-%VERSION% 'foo-1.0-1'", -MKM_E_PARSE },
                { "oversized desc", { FILEENT("foo-1.0-1/desc", big_desc) },
                  "core.db: entry 'foo-1.0-1/desc': file is larger than 1048576 bytes", -MKM_E_PARSE },
                { "field twice", { FILEENT("foo-1.0-1/desc", DESC_OK "%NAME%\nfoo\n") },
                  "core.db: entry 'foo-1.0-1/desc': %NAME% appears twice", -MKM_E_PARSE },
                { "field in desc and depends",
                  { FILEENT("foo-1.0-1/desc", DESC_OK "%DEPENDS%\nx\n"), FILEENT("foo-1.0-1/depends", "%DEPENDS%\ny\n") },
                  "core.db: entry 'foo-1.0-1/desc': %DEPENDS% is also in another file of 'foo-1.0-1'", -MKM_E_PARSE },
                { "two values", { FILEENT("foo-1.0-1/desc", DESC_OK "%ARCH%\nx86_64\nany\n") },
                  "core.db: entry 'foo-1.0-1/desc': %ARCH% has more than one value", -MKM_E_PARSE },
                { "no value", { FILEENT("foo-1.0-1/desc", DESC_OK "%URL%\n\n%ARCH%\nany\n") },
                  "core.db: entry 'foo-1.0-1/desc': %URL% has no value", -MKM_E_PARSE },
                { "bad name", { FILEENT("-x-1.0-1/desc", "%NAME%\n-x\n") },
                  "core.db: entry '-x-1.0-1/desc': %NAME% '-x' is not a valid package name", -MKM_E_PARSE },
                { "bad version", { FILEENT("foo-1.0/desc", "%NAME%\nfoo\n\n%VERSION%\n1.0\n") },
                  "core.db: entry 'foo-1.0/desc': %VERSION% '1.0' is not a valid [epoch:]pkgver-pkgrel", -MKM_E_PARSE },
                { "bad dependency", { FILEENT("foo-1.0-1/desc", DESC_OK "%DEPENDS%\nbar>=\n") },
                  "core.db: entry 'foo-1.0-1/desc': %DEPENDS%: dependency 'bar>=': empty version after '>='",
                  -MKM_E_PARSE },
                { "bad pgpsig", { FILEENT("foo-1.0-1/desc", DESC_OK "%PGPSIG%\nnot base64!\n") },
                  "core.db: entry 'foo-1.0-1/desc': %PGPSIG% is not base64", -MKM_E_PARSE },
                { "control char in desc", { FILEENT("foo-1.0-1/desc", DESC_OK "%DESC%\nhi\033]0;pwned\a\n") },
                  "core.db: entry 'foo-1.0-1/desc': %DESC% contains a control character", -MKM_E_PARSE },
                { "NUL in desc", { { "foo-1.0-1/desc", nul_desc, sizeof nul_desc - 1, T_FILE } },
                  "core.db: entry 'foo-1.0-1/desc': file contains a NUL byte", -MKM_E_PARSE },
                { "stray line", { FILEENT("foo-1.0-1/desc", "garbage\n" DESC_OK) },
                  "core.db: entry 'foo-1.0-1/desc': line 1: expected a %FIELD% header, got 'garbage'", -MKM_E_PARSE },
                { "symlink entry", { { "foo-1.0-1/desc", "/etc/shadow", 0, T_SYMLINK } },
                  "core.db: entry 'foo-1.0-1/desc': not a regular file or directory", -MKM_E_PARSE },
                { "nested", { FILEENT("foo-1.0-1/x/desc", DESC_OK) },
                  "core.db: entry 'foo-1.0-1/x/desc': nested too deep (expected NAME-VERSION/FILE)", -MKM_E_PARSE },
                { "absolute path", { FILEENT("/foo-1.0-1/desc", DESC_OK) },
                  "core.db: entry '/foo-1.0-1/desc': nested too deep (expected NAME-VERSION/FILE)", -MKM_E_PARSE },
                { "line too long", { FILEENT("foo-1.0-1/desc", DESC_OK "%DESC%\n0123456789abcdefX\n") },
                  "core.db: entry 'foo-1.0-1/desc': line 8 is longer than 16 bytes", -MKM_E_PARSE,
                  { REPO_ALPM_MAX_TOTAL, 100, 4096, 16 } },
                { "too many entries", { DIRENT("foo-1.0-1/"), FILEENT("foo-1.0-1/desc", DESC_OK) },
                  "core.db: more than 1 entries", -MKM_E_PARSE, { REPO_ALPM_MAX_TOTAL, 1, 4096, 4096 } },
                { "total too big (skipped file counts)",
                  { FILEENT("foo-1.0-1/desc", DESC_OK), FILEENT("foo-1.0-1/files", big_desc) },
                  "core.db: entry 'foo-1.0-1/files': archive is larger than 65536 bytes uncompressed", -MKM_E_PARSE,
                  { 65536, 100, 4096, 4096 } },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                size_t n = 0;
                while (n < ELEMENTSOF(t[i].files) && t[i].files[n].path)
                        n++;
                size_t len;
                _cleanup_free_ void *buf = make_tar(i % 2 ? ARCHIVE_FILTER_GZIP : ARCHIVE_FILTER_NONE, t[i].files, n, &len);
                struct repo_alpm_db *db = NULL;
                struct mkm_err err = {};
                int r = repo_alpm_parse_limits(NULL, "core", buf, len, t[i].limits.max_file ? &t[i].limits : NULL, &db,
                                               &err);
                if (r != t[i].code || strcmp(err.msg, t[i].msg) != 0)
                        fail_msg("%s: got %d '%s', want %d '%s'", t[i].what, r, err.msg, t[i].code, t[i].msg);
                assert_null(db);
                assert_int_equal(err.code, t[i].code);
        }
}

static void test_broken_archives(void **state) {
        (void)state;
        const struct tfile files[] = { FILEENT("foo-1.0-1/desc", DESC_OK), FILEENT("foo-1.0-1/files", big_desc) };
        memset(big_desc, 'y', sizeof big_desc - 1);
        size_t len;
        _cleanup_free_ char *zst = make_tar(ARCHIVE_FILTER_ZSTD, files, ELEMENTSOF(files), &len);
        struct repo_alpm_db *db = NULL;
        struct mkm_err err = {};

        /* truncated zstd stream */
        assert_true(len > 200);
        assert_int_equal(repo_alpm_parse(NULL, "core", zst, len - 40, &db, &err), -MKM_E_ARCHIVE);
        assert_null(db);
        assert_true(strncmp(err.msg, "core.db: ", 9) == 0);
        /* corrupt in the middle: flip bytes of the compressed data */
        for (size_t i = len / 2; i < len / 2 + 16; i++)
                zst[i] ^= 0x5a;
        err = (struct mkm_err){};
        int r = repo_alpm_parse(NULL, "core", zst, len, &db, &err);
        assert_true(r == -MKM_E_ARCHIVE || r == -MKM_E_PARSE);
        assert_null(db);
        assert_true(strncmp(err.msg, "core.db: ", 9) == 0);

        /* not an archive at all */
        static const char text[] = "<html>404 Not Found</html>\n";
        err = (struct mkm_err){};
        assert_int_equal(repo_alpm_parse(NULL, "core", text, sizeof text - 1, &db, &err), -MKM_E_ARCHIVE);
        assert_string_equal(err.msg, "core.db: not a readable tar archive: Unrecognized archive format");
        assert_null(db);

        /* zero bytes */
        err = (struct mkm_err){};
        assert_int_equal(repo_alpm_parse(NULL, "core", "", 0, &db, &err), -MKM_E_ARCHIVE);
        assert_true(strncmp(err.msg, "core.db: not a readable tar archive: ", 37) == 0);
}

/* ---- the real repo-add ---- */

static int run(char *const argv[], const char *cwd) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char *envp[] = { (char *)"PATH=/usr/bin:/bin", (char *)"LC_ALL=C", (char *)"HOME=/nonexistent", NULL };
                int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (fd >= 0) {
                        (void)dup2(fd, STDOUT_FILENO);
                        (void)dup2(fd, STDERR_FILENO);
                }
                if (chdir(cwd) < 0)
                        _exit(126);
                execve(argv[0], argv, envp);
                _exit(127);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void make_pkg(const char *top, const char *pkgname, const char *pkginfo, const char *out) {
        _cleanup_free_ char *dir = NULL;
        assert_true(asprintf(&dir, "%s/src-%s", top, pkgname) > 0);
        assert_int_equal(mkdir(dir, 0755), 0);
        th_write_file(dir, ".PKGINFO", pkginfo, 0644);
        _cleanup_free_ char *usr = NULL;
        assert_true(asprintf(&usr, "%s/usr", dir) > 0);
        assert_int_equal(mkdir(usr, 0755), 0);
        th_write_file(usr, "hello", "hello\n", 0644);
        _cleanup_free_ char *outp = NULL;
        assert_true(asprintf(&outp, "%s/%s", top, out) > 0);
        char *argv[] = { (char *)"/usr/bin/bsdtar", (char *)"--zstd", (char *)"-cf", outp, (char *)".PKGINFO",
                         (char *)"usr", NULL };
        assert_int_equal(run(argv, dir), 0);
}

static char top[] = "/tmp/test-repo-alpm.XXXXXX";

static int remove_top(void **state) {
        (void)state;
        if (strchr(top, 'X'))   /* never created */
                return 0;
        char *rm[] = { (char *)"/bin/rm", (char *)"-rf", top, NULL };
        return run(rm, "/") == 0 ? 0 : -1;
}

static void test_real_repo_add(void **state) {
        (void)state;
        if (access("/usr/bin/repo-add", X_OK) < 0 || access("/usr/bin/bsdtar", X_OK) < 0)
                skip();

        assert_non_null(mkdtemp(top));
        make_pkg(top, "hello",
                 "pkgname = hello\npkgbase = hello-base\npkgver = 1:2.3-4\npkgdesc = Says hello: loudly\n"
                 "url = https://example.org/\nbuilddate = 1700000123\npackager = Tester <t@example.org>\n"
                 "size = 4096\narch = x86_64\nlicense = MIT\ngroup = greeters\ndepend = glibc>=2.38\n"
                 "depend = sh\noptdepend = cowsay: for cows\nprovides = hi=1.0\nconflict = goodbye\n"
                 "replaces = hallo\nmakedepend = make\ncheckdepend = bats\n",
                 "hello-1:2.3-4-x86_64.pkg.tar.zst");
        make_pkg(top, "world", "pkgname = world\npkgver = 0.9-1\npkgdesc = The world\nsize = 1\narch = any\n"
                               "builddate = 1\npackager = Unknown Packager\n",
                 "world-0.9-1-any.pkg.tar.zst");

        char *argv[] = { (char *)"/usr/bin/repo-add", (char *)"-q", (char *)"test.db.tar.gz",
                         (char *)"hello-1:2.3-4-x86_64.pkg.tar.zst", (char *)"world-0.9-1-any.pkg.tar.zst", NULL };
        assert_int_equal(run(argv, top), 0);

        _cleanup_free_ char *dbpath = NULL, *pkgpath = NULL;
        assert_true(asprintf(&dbpath, "%s/test.db", top) > 0);   /* repo-add's symlink to test.db.tar.gz */
        assert_true(asprintf(&pkgpath, "%s/hello-1:2.3-4-x86_64.pkg.tar.zst", top) > 0);
        int fd = open(dbpath, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        _cleanup_free_ char *buf = malloc((size_t)st.st_size);
        assert_non_null(buf);
        assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
        close(fd);

        char sha[HASH_SHA256_HEX];
        uint64_t pkgsize = 0;
        fd = open(pkgpath, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(hash_fd_hex(HASH_SHA256, fd, sha, &pkgsize), 0);
        close(fd);

        _cleanup_(repo_alpm_db_freep) struct repo_alpm_db *db = NULL;
        struct mkm_err err = {};
        int r = repo_alpm_parse(NULL, "test", buf, (size_t)st.st_size, &db, &err);
        if (r < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(db->n, 2);
        const struct repo_alpm_pkg *h = repo_alpm_find(db, "hello");
        assert_non_null(h);
        assert_string_equal(h->version, "1:2.3-4");
        assert_string_equal(h->base, "hello-base");
        assert_string_equal(h->desc, "Says hello: loudly");
        assert_string_equal(h->filename, "hello-1:2.3-4-x86_64.pkg.tar.zst");
        assert_string_equal(h->sha256, sha);
        assert_non_null(h->md5);
        assert_int_equal(h->csize, pkgsize);
        assert_int_equal(h->isize, 4096);
        assert_int_equal(h->builddate, 1700000123);
        assert_string_equal(h->arch, "x86_64");
        assert_string_equal(h->url, "https://example.org/");
        assert_string_equal(h->packager, "Tester <t@example.org>");
        assert_string_equal(h->licenses[0], "MIT");
        assert_string_equal(h->groups[0], "greeters");
        assert_int_equal(strv_length(h->depends), 2);
        assert_string_equal(h->depends[0], "glibc>=2.38");
        assert_string_equal(h->depends[1], "sh");
        assert_string_equal(h->optdepends[0], "cowsay: for cows");
        assert_string_equal(h->provides[0], "hi=1.0");
        assert_string_equal(h->conflicts[0], "goodbye");
        assert_string_equal(h->replaces[0], "hallo");
        assert_string_equal(h->makedepends[0], "make");
        assert_string_equal(h->checkdepends[0], "bats");
        assert_null(h->pgpsig);
        const struct repo_alpm_pkg *w = repo_alpm_find(db, "world");
        assert_non_null(w);
        assert_string_equal(w->version, "0.9-1");
        assert_null(w->base);                       /* repo-add writes no %BASE% without pkgbase */
        assert_int_equal(strv_length(w->depends), 0);
        assert_int_equal(w->builddate, 1);
        assert_string_equal(w->packager, "Unknown Packager");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_filters),
                cmocka_unit_test(test_old_style_depends),
                cmocka_unit_test(test_empty_db),
                cmocka_unit_test(test_hostile),
                cmocka_unit_test(test_broken_archives),
                cmocka_unit_test_teardown(test_real_repo_add, remove_top),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
