/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/debian/index.h: deb822 paragraphs, Release files and dates, Packages
 * indexes and relationship fields. Hand-written paragraphs cover every field the parsers keep
 * and every error path, each with its exact message (tables, one row a case); hostile inputs
 * (paths with "..", NUL bytes, counts past every cap) are among them. The real bookworm index is
 * tests/integration/debian-index.sh's job. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "debian/arena.h"
#include "debian/index.h"
#include "helpers.h"
#include "util/cleanup.h"
#include "util/err.h"

#define SHA_A "9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5"
#define SHA_B "d6c9c82f4e61b4662f9ba16b9ebb379c57b4943f8b7813091d1f637325ddfb79"

static bool view_is(const char *s, size_t n, const char *want) { return strlen(want) == n && memcmp(s, want, n) == 0; }

/* ---- deb822 ------------------------------------------------------------------------------- */

static void test_deb822_paragraphs(void **state) {
        (void)state;
        static const char text[] = "\n  \n"
                                   "Package: a\n"
                                   "Description:  short  \n"
                                   " long line one\n"
                                   "\tand a tab line  \n"
                                   "SHA256:\n"
                                   " x 1 y\n"
                                   "Empty:   \n"
                                   " \t \n"                  /* blanks only: a separator */
                                   "package: b\n"
                                   "X-Odd!~: v:w: z\n"
                                   "\n\n"
                                   "Last: no newline";
        struct deb822_field f[8];
        struct mkm_err err = { 0 };
        size_t pos = 0, n = 99;

        assert_int_equal(deb822_next(text, strlen(text), &pos, "T", f, ELEMENTSOF(f), &n, &err), 1);
        assert_int_equal(n, 4);
        assert_true(view_is(f[0].name, f[0].name_len, "Package"));
        assert_true(view_is(f[0].value, f[0].value_len, "a"));
        assert_int_equal(f[0].line, 3);
        assert_true(view_is(f[1].name, f[1].name_len, "Description"));
        assert_true(view_is(f[1].value, f[1].value_len, "short  \n long line one\n\tand a tab line"));
        assert_int_equal(f[1].line, 4);
        assert_true(view_is(f[2].value, f[2].value_len, "\n x 1 y"));
        assert_int_equal(f[2].line, 7);
        assert_true(view_is(f[3].name, f[3].name_len, "Empty"));
        assert_int_equal(f[3].value_len, 0);
        assert_int_equal(f[3].line, 9);
        assert_ptr_equal(deb822_find(f, n, "PACKAGE"), &f[0]);
        assert_ptr_equal(deb822_find(f, n, "sha256"), &f[2]);
        assert_null(deb822_find(f, n, "Pack"));
        assert_null(deb822_find(f, n, "Packages"));

        assert_int_equal(deb822_next(text, strlen(text), &pos, "T", f, ELEMENTSOF(f), &n, &err), 1);
        assert_int_equal(n, 2);
        assert_true(view_is(f[0].value, f[0].value_len, "b"));
        assert_int_equal(f[0].line, 11);
        assert_true(view_is(f[1].name, f[1].name_len, "X-Odd!~"));
        assert_true(view_is(f[1].value, f[1].value_len, "v:w: z"));

        assert_int_equal(deb822_next(text, strlen(text), &pos, "T", f, ELEMENTSOF(f), &n, &err), 1);
        assert_int_equal(n, 1);
        assert_true(view_is(f[0].value, f[0].value_len, "no newline"));
        assert_int_equal(f[0].line, 15);
        assert_int_equal(pos, strlen(text));
        assert_int_equal(deb822_next(text, strlen(text), &pos, "T", f, ELEMENTSOF(f), &n, &err), 0);
        assert_int_equal(n, 0);

        /* the iterator agrees, paragraph by paragraph, line by line */
        struct deb822_iter it;
        unsigned lines[] = { 3, 11, 15 };
        deb822_iter_init(&it, text, strlen(text), "T");
        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                assert_int_equal(deb822_iter_next(&it, f, ELEMENTSOF(f), &n, &err), 1);
                assert_int_equal(f[0].line, lines[i]);
        }
        assert_int_equal(deb822_iter_next(&it, f, ELEMENTSOF(f), &n, &err), 0);

        /* nothing, or only blank lines: no paragraph */
        pos = 0;
        assert_int_equal(deb822_next("", 0, &pos, "T", f, ELEMENTSOF(f), &n, &err), 0);
        assert_int_equal(deb822_next("\n \n\t\n", 5, &pos, "T", f, ELEMENTSOF(f), &n, &err), 0);
        assert_int_equal(pos, 5);
        pos = 6;
        assert_int_equal(deb822_next("\n \n\t\n", 5, &pos, "T", f, ELEMENTSOF(f), &n, &err), -EINVAL);
}

static void test_deb822_comments_where_allowed(void **state) {
        (void)state;
        static const char text[] = "# a .sources file\nTypes: deb\n# inside\nURIs: http://x/\n";
        struct deb822_field f[4];
        struct deb822_iter it;
        struct mkm_err err = { 0 };
        size_t n;

        deb822_iter_init(&it, text, strlen(text), "s.sources");
        it.allow_comments = true;
        assert_int_equal(deb822_iter_next(&it, f, ELEMENTSOF(f), &n, &err), 1);
        assert_int_equal(n, 2);
        assert_true(view_is(f[1].value, f[1].value_len, "http://x/"));
        assert_int_equal(f[1].line, 4);

        deb822_iter_init(&it, text, strlen(text), "s.sources");
        assert_int_equal(deb822_iter_next(&it, f, ELEMENTSOF(f), &n, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "s.sources:1: comment line ('#') where only fields may be");
}

static void test_deb822_errors(void **state) {
        (void)state;
        static const struct {
                const char *text;
                size_t len;     /* 0: strlen */
                size_t max;     /* 0: 8 */
                const char *msg;
        } t[] = {
                { " cont\nA: b\n", 0, 0, "L:1: continuation line without a field before it" },
                { "A: b\n\n cont\n", 0, 0, "L:3: continuation line without a field before it" },
                { "A: b\nno colon here\n", 0, 0, "L:2: not a 'Name: value' line, a continuation or a blank line" },
                { "A: b\n: v\n", 0, 0, "L:2: empty field name" },
                { "A B: v\n", 0, 0, "L:1: byte 0x20 in field name" },
                { "A\x7f: v\n", 0, 0, "L:1: byte 0x7f in field name" },
                { "A\xc3\xa9: v\n", 0, 0, "L:1: byte 0xc3 in field name" },
                { "A: b\n#c: d\n", 0, 0, "L:2: comment line ('#') where only fields may be" },
                { "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n", 0, 0,
                  "L:1: field name starts with '-' (a PGP armor line?)" },
                { "A: b\nB: c\x00" "d\n", 12, 0, "L:2: NUL byte" },
                { "A: b\nB: c\n\x00", 11, 0, "L:3: NUL byte" },
                { "A: b\r\nB: c\n", 0, 0, "L:1: carriage return (lines end with LF alone)" },
                { "A: b\nB: c\n\nC: d\r", 0, 0, "L:4: carriage return (lines end with LF alone)" },
                { "A: b\nB: c\n a: b\nb: again\n", 0, 0, "L:4: field 'b' given twice (first on line 2)" },
                { "Package: a\nVersion: 1\nPACKAGE: b\n", 0, 0, "L:3: field 'PACKAGE' given twice (first on line 1)" },
                { "A: 1\nB: 2\nC: 3\n", 0, 2, "L:3: more than 2 fields in one paragraph" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct deb822_field f[8];
                struct mkm_err err = { 0 };
                size_t pos = 0, n = 77;
                size_t len = t[i].len ? t[i].len : strlen(t[i].text);
                int r;
                while ((r = deb822_next(t[i].text, len, &pos, "L", f, t[i].max ? t[i].max : ELEMENTSOF(f), &n, &err)) > 0)
                        ;
                print_message("case %zu: %s\n", i, err.msg);
                assert_int_equal(r, -MKM_E_PARSE);
                assert_string_equal(err.msg, t[i].msg);
        }
}

static void test_deb822_field_too_long(void **state) {
        (void)state;
        struct th_buf b = { 0 };
        struct deb822_field f[4];
        struct mkm_err err = { 0 };
        size_t pos = 0, n;

        /* one line */
        th_buf_add(&b, "A: b\nBig: ");
        for (size_t i = 0; i <= DEB_FIELD_MAX / 64; i++)
                th_buf_add(&b, "%s", "0123456789012345678901234567890123456789012345678901234567890123");
        th_buf_add(&b, "\n");
        assert_int_equal(deb822_next(b.p, b.n, &pos, "L", f, 4, &n, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "L:2: field 'Big' longer than 1048576 bytes");

        /* folded: each line is short, the value is not */
        b.n = 0;
        pos = 0;
        th_buf_add(&b, "Big:\n");
        for (size_t i = 0; i <= DEB_FIELD_MAX / 64; i++)
                th_buf_add(&b, " %s\n", "012345678901234567890123456789012345678901234567890123456789012");
        assert_int_equal(deb822_next(b.p, b.n, &pos, "L", f, 4, &n, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "L:1: field 'Big' longer than 1048576 bytes");
        free(b.p);
}

/* ---- dates -------------------------------------------------------------------------------- */

static void test_dates(void **state) {
        (void)state;
        static const struct {
                const char *s;
                int64_t t;
        } good[] = {
                { "Sat, 10 Aug 2024 09:54:18 UTC", 1723283658 },
                { "Sat, 10 Aug 2024 09:54:18 GMT", 1723283658 },
                { "Sat, 10 Aug 2024 09:54:18 +0000", 1723283658 },
                { "Sat, 10 Aug 2024 09:54:18 Z", 1723283658 },
                { "10 Aug 2024 09:54:18 UTC", 1723283658 },
                { "sat, 10 aug 2024 09:54:18 UTC", 1723283658 },
                { "Sat, 10 Aug 2024 11:54:18 +0200", 1723283658 },
                { "Sat, 10 Aug 2024 08:24:18 -0130", 1723283658 },
                { "Sat,  10  Aug 2024  09:54:18  UTC ", 1723283658 },
                { "Thu, 29 Feb 2024 00:00:00 UTC", 1709164800 },
                { "Sat, 11 Jul 2026 10:16:37 UTC", 1783764997 },
                { "Thu, 1 Jan 1970 00:00:00 UTC", 0 },
                { "Tue, 19 Jan 2038 03:14:08 UTC", 2147483648 },
                { "Mon, 01 Mar 2100 00:00:00 UTC", 4107542400 },
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                int64_t t = -5;
                print_message("good %zu: %s\n", i, good[i].s);
                assert_int_equal(deb_parse_date(good[i].s, strlen(good[i].s), &t), 0);
                assert_int_equal(t, good[i].t);
        }
        static const char *const bad[] = {
                "",
                "Sat, 10 Aug 2024 09:54:18",            /* no zone */
                "Sat, 10 Aug 2024 09:54:18 CEST",
                "Sat, 10 Aug 2024 09:54:18 +02",
                "Sat, 10 Aug 2024 09:54:18 +2400",
                "Sat, 10 Aug 2024 09:54 UTC",
                "Sat, 10 Aug 2024 24:00:00 UTC",
                "Sat, 10 Aug 2024 09:60:00 UTC",
                "Sat, 10 Aug 2024 09:54:61 UTC",
                "Sat, 10 Aug 24 09:54:18 UTC",
                "Sat, 10 Aug 20245 09:54:18 UTC",
                "Sat, 32 Aug 2024 09:54:18 UTC",
                "Sat, 0 Aug 2024 09:54:18 UTC",
                "Sat, 100 Aug 2024 09:54:18 UTC",
                "Fri, 30 Feb 2024 09:54:18 UTC",
                "Wed, 29 Feb 2023 09:54:18 UTC",
                "Sat, 10 Foo 2024 09:54:18 UTC",
                "Xyz, 10 Aug 2024 09:54:18 UTC",
                "Sat 10 Aug 2024 09:54:18 UTC",
                "Sat,10 Aug 2024 09:54:18 UTC",
                "Wed, 31 Dec 1969 23:59:59 UTC",
                "2024-08-10T09:54:18Z",
                "Sat, 10 Aug 2024 09:54:18 UTC x",
                "Sat, 10 Aug 2024 9:54:18 UTC",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int64_t t = -5;
                print_message("bad %zu: %s\n", i, bad[i]);
                assert_int_equal(deb_parse_date(bad[i], strlen(bad[i]), &t), -EINVAL);
                assert_int_equal(t, -5);
        }
        /* the length bounds the read */
        int64_t t;
        assert_int_equal(deb_parse_date("Sat, 10 Aug 2024 09:54:18 UTC", 27, &t), -EINVAL);
        assert_int_equal(deb_parse_date("Sat, 10 Aug 2024 09:54:18 UTCX", 29, &t), 0);
}

/* ---- Release ------------------------------------------------------------------------------ */

#define RELEASE_HEAD                                                            \
        "Origin: Debian\n"                                                      \
        "Label: Debian\n"                                                       \
        "Suite: oldstable\n"                                                    \
        "Version: 12.15\n"                                                      \
        "Codename: bookworm\n"                                                  \
        "Changelogs: https://example.invalid/@CHANGEPATH@_changelog\n"          \
        "Date: Sat, 11 Jul 2026 10:16:37 UTC\n"                                 \
        "Valid-Until: Sat, 10 Aug 2024 09:54:18 UTC\n"                          \
        "Acquire-By-Hash: yes\n"                                                \
        "No-Support-for-Architecture-all: Packages\n"                           \
        "Architectures: all amd64\n"                                            \
        " arm64\n"                                                              \
        "Components: main contrib non-free-firmware updates/main\n"            \
        "Description: Debian 12.15 Released 11 July 2026\n"                     \
        "MD5Sum:\n"                                                             \
        " 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 ../not/used\n"             \
        "SHA1:\n"                                                               \
        " zz nonsense\n"

static void test_release(void **state) {
        (void)state;
        static const char text[] = RELEASE_HEAD
                "SHA256:\n"
                " " SHA_A "  8790396 main/binary-amd64/Packages.xz\n"
                " " SHA_B " 1484322 contrib/Contents-all\n"
                " 9E0B5AABB2465B3D2E7A7FE27F9913846277833F7A2826E7767ACCCFF5B588C5    0 main/i18n/Translation-en\n"
                " " SHA_A " 18446744073709551615 main/dep11/icons-48x48@2.tar.gz\n";
        _cleanup_(deb_release_freep) struct deb_release *r = NULL;
        struct mkm_err err = { 0 };

        assert_int_equal(deb_release_parse(text, strlen(text), "InRelease", &r, &err), 0);
        assert_string_equal(r->origin, "Debian");
        assert_string_equal(r->label, "Debian");
        assert_string_equal(r->suite, "oldstable");
        assert_string_equal(r->version, "12.15");
        assert_string_equal(r->codename, "bookworm");
        assert_int_equal(r->date, 1783764997);
        assert_int_equal(r->valid_until, 1723283658);
        assert_true(r->acquire_by_hash);
        assert_string_equal(r->architectures[0], "all");
        assert_string_equal(r->architectures[1], "amd64");
        assert_string_equal(r->architectures[2], "arm64");
        assert_null(r->architectures[3]);
        assert_string_equal(r->components[3], "updates/main");
        assert_null(r->components[4]);
        assert_int_equal(r->n_files, 4);
        assert_string_equal(r->files[0].path, "main/binary-amd64/Packages.xz");
        assert_string_equal(r->files[0].sha256, SHA_A);
        assert_int_equal(r->files[0].size, 8790396);
        assert_string_equal(r->files[1].path, "contrib/Contents-all");
        assert_string_equal(r->files[2].sha256, SHA_A);     /* lowercased */
        assert_int_equal(r->files[2].size, 0);
        assert_int_equal(r->files[3].size, UINT64_MAX);

        const struct deb_release_file *f = deb_release_find(r, "contrib/Contents-all");
        assert_ptr_equal(f, &r->files[1]);
        assert_string_equal(f->sha256, SHA_B);
        assert_null(deb_release_find(r, "../not/used"));
        assert_null(deb_release_find(r, "main/binary-amd64/Packages"));
        assert_null(deb_release_find(NULL, "x"));
}

static void test_release_minimal(void **state) {
        (void)state;
        /* Fields absent: -1 dates, empty lists, NULL strings; a trailing blank line is fine. */
        static const char text[] = "SHA256:\n " SHA_A " 1 Packages\n\n\n";
        _cleanup_(deb_release_freep) struct deb_release *r = NULL;
        struct mkm_err err = { 0 };

        assert_int_equal(deb_release_parse(text, strlen(text), NULL, &r, &err), 0);
        assert_null(r->origin);
        assert_null(r->suite);
        assert_int_equal(r->date, -1);
        assert_int_equal(r->valid_until, -1);
        assert_false(r->acquire_by_hash);
        assert_non_null(r->architectures);
        assert_null(r->architectures[0]);
        assert_null(r->components[0]);
        assert_int_equal(r->n_files, 1);
        assert_string_equal(r->files[0].path, "Packages");
}

static void test_release_errors(void **state) {
        (void)state;
        static const struct {
                const char *text, *msg;
        } t[] = {
                { "", "R: empty" },
                { "Origin: Debian\nMD5Sum:\n 0ed6d4c8891eb86358b94bb35d9e4da4 1 main/Packages\n",
                  "R:1: no SHA256 list (MD5Sum and SHA1 are not trusted)" },
                { "Date: Sat, 30 Feb 2024 09:54:18 UTC\nSHA256:\n",
                  "R:1: Date: not a date like 'Sat, 10 Aug 2024 09:54:18 UTC': 'Sat, 30 Feb 2024 09:54:18 UTC'" },
                { "Valid-Until: tomorrow\nSHA256:\n",
                  "R:1: Valid-Until: not a date like 'Sat, 10 Aug 2024 09:54:18 UTC': 'tomorrow'" },
                { "SHA256:\n " SHA_A " 1 main/../../etc/passwd\n", "R:2: SHA256: '.' or '..' in path: 'main/../../etc/passwd'" },
                { "SHA256:\n " SHA_A " 1 /etc/passwd\n", "R:2: SHA256: absolute path: '/etc/passwd'" },
                { "SHA256:\n " SHA_A " 1 main//Packages\n", "R:2: SHA256: empty path component ('//'): 'main//Packages'" },
                { "SHA256:\n " SHA_A " 1 main/Pack?ages\n", "R:2: SHA256: character not allowed in a path: 'main/Pack?ages'" },
                { "SHA256:\n " SHA_A " 1 main/\x1b[31m\n", "R:2: SHA256: control character in path: 'main/?[31m'" },
                { "SHA256:\n " SHA_A " 1 main/Packages\n " SHA_B " 2 main/Packages\n",
                  "R:3: SHA256: 'main/Packages' listed twice" },
                { "SHA256:\n " SHA_A " 1\n", "R:2: SHA256: line of 2 words, not 'digest size path'" },
                { "SHA256:\n " SHA_A " 1 a b\n", "R:2: SHA256: line of more than 3 words, not 'digest size path'" },
                { "SHA256:\n 9e0b5aab 1 main/Packages\n", "R:2: SHA256: digest is not 64 hex digits" },
                { "SHA256:\n " SHA_A "g 1 a\n", "R:2: SHA256: digest is not 64 hex digits" },
                { "SHA256:\n " SHA_A " 18446744073709551616 a\n", "R:2: SHA256: size is not a number" },
                { "SHA256:\n " SHA_A " -1 a\n", "R:2: SHA256: size is not a number" },
                { "Origin: Debian\n Evil\nSHA256:\n", "R:1: Origin: value spans several lines: 'Debian  Evil'" },
                { "Suite: stable\x1b[2J\nSHA256:\n", "R:1: Suite: control character: 'stable?[2J'" },
                { "Acquire-By-Hash: maybe\nSHA256:\n", "R:1: Acquire-By-Hash: not yes or no: 'maybe'" },
                { "Architectures: amd64 AMD64\nSHA256:\n", "R:1: Architectures: invalid architecture: 'amd64 AMD64'" },
                { "Components: main ../x\nSHA256:\n", "R:1: Components: invalid component: 'main ../x'" },
                { "SHA256:\n\nOrigin: again\n", "R:3: a second paragraph (a Release has one)" },
                { "SHA256:\n\n \n\t\nx", "R:5: a second paragraph (a Release has one)" },
                { "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\n",
                  "R:1: field name starts with '-' (a PGP armor line?)" },
                { "SHA256:\nSHA256:\n", "R:2: field 'SHA256' given twice (first on line 1)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct deb_release *r = NULL;
                struct mkm_err err = { 0 };
                print_message("case %zu\n", i);
                assert_int_equal(deb_release_parse(t[i].text, strlen(t[i].text), "R", &r, &err), -MKM_E_PARSE);
                assert_string_equal(err.msg, t[i].msg);
                assert_null(r);
        }
}

static void test_release_caps(void **state) {
        (void)state;
        struct th_buf b = { 0 };
        struct deb_release *r = NULL;
        struct mkm_err err = { 0 };

        /* exactly the cap is fine, one more is not */
        th_buf_add(&b, "SHA256:\n");
        for (unsigned i = 0; i < DEB_RELEASE_MAX_FILES; i++)
                th_buf_add(&b, " %s %u f/%u\n", SHA_A, i, i);
        assert_int_equal(deb_release_parse(b.p, b.n, "R", &r, &err), 0);
        assert_int_equal(r->n_files, DEB_RELEASE_MAX_FILES);
        assert_string_equal(deb_release_find(r, "f/99999")->path, "f/99999");
        r = deb_release_free(r);
        th_buf_add(&b, " %s 1 g\n", SHA_A);
        assert_int_equal(deb_release_parse(b.p, b.n, "R", &r, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "R:100002: SHA256: more than 100000 files");
        assert_null(r);

        b.n = 0;
        th_buf_add(&b, "Architectures:");
        for (unsigned i = 0; i <= DEB_RELEASE_MAX_LIST; i++)
                th_buf_add(&b, " a%u", i);
        th_buf_add(&b, "\nSHA256:\n");
        assert_int_equal(deb_release_parse(b.p, b.n, "R", &r, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "R:1: Architectures: more than 1024 words");
        free(b.p);

        /* the size cap comes before anything is read */
        char *big = calloc(1, DEB_RELEASE_MAX + 1);
        assert_non_null(big);
        assert_int_equal(deb_release_parse(big, DEB_RELEASE_MAX + 1, "R", &r, &err), -E2BIG);
        assert_string_equal(err.msg, "R: 16777217 bytes, more than the limit of 16777216");
        free(big);
}

/* ---- Packages ----------------------------------------------------------------------------- */

static void test_packages_all_fields(void **state) {
        (void)state;
        static const char text[] =
                "Package: libfoo1\n"
                "Source: foo (1.2-3)\n"
                "Version: 1:1.2-3+b1\n"
                "Installed-Size: 1234\n"
                "Maintainer: Someone <someone@example.invalid>\n"
                "Architecture: amd64\n"
                "Multi-Arch: same\n"
                "Pre-Depends: dpkg (>= 1.15.6~)\n"
                "Depends: libc6 (>= 2.34), libbar2 (<< 3) | libbaz (>> 1:0.9), awk:any,\n"
                " libold (< 2), libold2 (> 2), exact (= 1.2-3+b1),\n"
                "\tlibnative:native (>= 1~rc1) [amd64 !i386] <!nocheck>, onlytest <nocheck>,\n"
                " either <stage1> | other <!stage1 !cross> <cross>\n"
                "Recommends: foo-data\n"
                "Provides: libfoo (= 1.2-3+b1), libfoo-abi-1\n"
                "Conflicts: libfoo0\n"
                "Breaks: libfoo-dev (<< 1.2)\n"
                "Description: a library\n"
                " with a long description\n"
                " .\n"
                " over lines\n"
                "Priority: important\n"
                "Essential: yes\n"
                "Protected: yes\n"
                "Filename: pool/main/f/foo/libfoo1_1.2-3+b1_amd64.deb\n"
                "Size: 98765\n"
                "MD5sum: 0ed6d4c8891eb86358b94bb35d9e4da4\n"
                "SHA256: " SHA_A "\n"
                "\n"
                "package: foo-data\n"
                "version: 1:1.2-3+b1\n"
                "architecture: all\n"
                "filename: pool/main/f/foo/foo-data_1.2-3_all.deb\n"
                "size: 0\n"
                "sha256: 9E0B5AABB2465B3D2E7A7FE27F9913846277833F7A2826E7767ACCCFF5B588C5\n"
                "priority: Extra\n"
                "multi-arch: foreign\n"
                "important: YES\n"         /* case-insensitive, as dpkg and apt */
                "depends: libc6 (>= 2.34)\n"
                "\n"
                "Package: tool\n"
                "Version: 2.0\n"
                "Architecture: amd64\n"
                "Filename: pool/main/t/tool/tool_2.0_amd64.deb\n"
                "Size: 1\n"
                "SHA256: " SHA_B "\n"
                "Priority: custom\n"
                "Multi-Arch: allowed\n"
                "Essential: no\n"
                "Source: toolsrc\n"
                "Depends: libc6 (>= 2.34)\n";
        _cleanup_(deb_index_freep) struct deb_index *x = NULL;
        struct mkm_err err = { 0 };

        assert_int_equal(deb_index_parse(text, strlen(text), "bookworm/main/binary-amd64/Packages", 3, &x, &err), 0);
        assert_int_equal(x->n, 3);
        assert_int_equal(x->number, 3);
        assert_string_equal(x->label, "bookworm/main/binary-amd64/Packages");

        const struct deb_pkg *p = &x->pkgs[0];
        assert_string_equal(p->name, "libfoo1");
        assert_string_equal(p->version, "1:1.2-3+b1");
        assert_string_equal(p->arch, "amd64");
        assert_string_equal(p->filename, "pool/main/f/foo/libfoo1_1.2-3+b1_amd64.deb");
        assert_string_equal(p->source, "foo");
        assert_string_equal(p->sha256, SHA_A);
        assert_int_equal(p->size, 98765);
        assert_int_equal(p->installed_size, 1234);
        assert_int_equal(p->priority, DEB_PRIO_IMPORTANT);
        assert_int_equal(p->multi_arch, DEB_MA_SAME);
        assert_true(p->essential);
        assert_true(p->important);
        assert_int_equal(p->index, 3);

        assert_int_equal(p->pre_depends.n, 1);
        assert_string_equal(p->pre_depends.groups[0].atoms[0].name, "dpkg");
        assert_int_equal(p->pre_depends.groups[0].atoms[0].op, DEB_REL_GE);
        assert_string_equal(p->pre_depends.groups[0].atoms[0].version, "1.15.6~");

        static const struct {
                unsigned group, n, alt;
                const char *name, *arch, *version;
                enum deb_relop op;
        } d[] = {
                { 0, 1, 0, "libc6", NULL, "2.34", DEB_REL_GE },
                { 1, 2, 0, "libbar2", NULL, "3", DEB_REL_LT },
                { 1, 2, 1, "libbaz", NULL, "1:0.9", DEB_REL_GT },
                { 2, 1, 0, "awk", "any", NULL, DEB_REL_ANY },
                { 3, 1, 0, "libold", NULL, "2", DEB_REL_LE },
                { 4, 1, 0, "libold2", NULL, "2", DEB_REL_GE },
                { 5, 1, 0, "exact", NULL, "1.2-3+b1", DEB_REL_EQ },
                { 6, 1, 0, "libnative", "native", "1~rc1", DEB_REL_GE },
                /* "onlytest <nocheck>" is gone; "either <stage1>" too, "other" stays */
                { 7, 1, 0, "other", NULL, NULL, DEB_REL_ANY },
        };
        assert_int_equal(p->depends.n, 8);
        for (size_t i = 0; i < ELEMENTSOF(d); i++) {
                const struct deb_group *g = &p->depends.groups[d[i].group];
                const struct deb_atom *a = &g->atoms[d[i].alt];
                print_message("depends %zu: %s\n", i, d[i].name);
                assert_int_equal(g->n, d[i].n);
                assert_string_equal(a->name, d[i].name);
                if (d[i].arch)
                        assert_string_equal(a->arch, d[i].arch);
                else
                        assert_null(a->arch);
                if (d[i].version)
                        assert_string_equal(a->version, d[i].version);
                else
                        assert_null(a->version);
                assert_int_equal(a->op, d[i].op);
        }
        assert_int_equal(p->recommends.n, 1);
        assert_string_equal(p->recommends.groups[0].atoms[0].name, "foo-data");
        assert_int_equal(p->provides.n, 2);
        assert_int_equal(p->provides.groups[0].atoms[0].op, DEB_REL_EQ);
        assert_string_equal(p->provides.groups[1].atoms[0].name, "libfoo-abi-1");
        assert_int_equal(p->conflicts.n, 1);
        assert_string_equal(p->conflicts.groups[0].atoms[0].name, "libfoo0");
        assert_int_equal(p->breaks.n, 1);
        assert_int_equal(p->breaks.groups[0].atoms[0].op, DEB_REL_LT);

        const struct deb_pkg *q = &x->pkgs[1];
        assert_string_equal(q->name, "foo-data");
        assert_string_equal(q->arch, "all");
        assert_string_equal(q->sha256, SHA_A);          /* lowercased */
        assert_int_equal(q->size, 0);
        assert_int_equal(q->installed_size, 0);         /* absent */
        assert_null(q->source);
        assert_int_equal(q->priority, DEB_PRIO_EXTRA);  /* case-insensitive, as dpkg */
        assert_int_equal(q->multi_arch, DEB_MA_FOREIGN);
        assert_false(q->essential);
        assert_true(q->important);
        assert_int_equal(q->pre_depends.n, 0);
        assert_null(q->pre_depends.groups);
        assert_int_equal(q->breaks.n, 0);

        const struct deb_pkg *t = &x->pkgs[2];
        assert_int_equal(t->priority, DEB_PRIO_UNKNOWN);
        assert_int_equal(t->multi_arch, DEB_MA_ALLOWED);
        assert_false(t->essential);
        assert_false(t->important);
        assert_string_equal(t->source, "toolsrc");

        /* interned: equal strings are one copy; a one-atom group shares its atom */
        assert_ptr_equal(p->version, q->version);
        assert_ptr_equal(p->recommends.groups[0].atoms[0].name, q->name);
        assert_ptr_equal(p->depends.groups[0].atoms, q->depends.groups[0].atoms);
        assert_ptr_equal(q->depends.groups[0].atoms, t->depends.groups[0].atoms);
        assert_ptr_equal(p->arch, t->arch);
}

static void test_packages_empty_and_blank(void **state) {
        (void)state;
        _cleanup_(deb_index_freep) struct deb_index *x = NULL;
        struct mkm_err err = { 0 };
        assert_int_equal(deb_index_parse("\n\n", 2, "P", 0, &x, &err), 0);
        assert_int_equal(x->n, 0);
        x = deb_index_free(x);
        assert_int_equal(deb_index_parse("", 0, NULL, 0, &x, &err), 0);
        assert_string_equal(x->label, "Packages");
        assert_null(deb_index_free(NULL));
}

#define PKG_OK(extra)                                                                                       \
        "Package: a1\nVersion: 1.0-1\nArchitecture: amd64\nFilename: pool/main/a/a1/a1_1.0-1_amd64.deb\n" \
        "Size: 10\nSHA256: " SHA_A "\n" extra

static void test_packages_errors(void **state) {
        (void)state;
        static const struct {
                const char *text;
                size_t len;
                const char *msg;
        } t[] = {
                { "Version: 1\nArchitecture: all\n", 0, "P:1: paragraph without a Package field" },
                { PKG_OK("") "\nPackage: bb\nArchitecture: all\nFilename: b.deb\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:8: package 'bb' has no Version field" },
                { "Package: bb\nVersion: 1\nFilename: b.deb\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:1: package 'bb' has no Architecture field" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:1: package 'bb' has no Filename field" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: b.deb\nSHA256: " SHA_A "\n", 0,
                  "P:1: package 'bb' has no Size field" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: b.deb\nSize: 1\n", 0,
                  "P:1: package 'bb' has no SHA256 field" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: ../../etc/passwd\nSize: 1\nSHA256: " SHA_A "\n",
                  0, "P:4: Filename: '.' or '..' in path: '../../etc/passwd'" },
                /* curl decodes %2e%2e in a file:// URL into "..": no '%' in a path at all */
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: pool/%2e%2e/%2e%2e/etc/hostname\nSize: 1\nSHA256: " SHA_A "\n",
                  0, "P:4: Filename: character not allowed in a path: 'pool/%2e%2e/%2e%2e/etc/hostname'" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: pool/../x.deb\nSize: 1\nSHA256: " SHA_A "\n",
                  0, "P:4: Filename: '.' or '..' in path: 'pool/../x.deb'" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: pool/./x.deb\nSize: 1\nSHA256: " SHA_A "\n",
                  0, "P:4: Filename: '.' or '..' in path: 'pool/./x.deb'" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: pool/..\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:4: Filename: '.' or '..' in path: 'pool/..'" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: /etc/passwd\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:4: Filename: absolute path: '/etc/passwd'" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: pool//x.deb\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:4: Filename: empty path component ('//'): 'pool//x.deb'" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: pool/\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:4: Filename: path ends in '/': 'pool/'" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: pool/x y.deb\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:4: Filename: character not allowed in a path: 'pool/x y.deb'" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: pool/x.deb?a=b\nSize: 1\nSHA256: " SHA_A "\n",
                  0, "P:4: Filename: character not allowed in a path: 'pool/x.deb?a=b'" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: pool/\x01x.deb\nSize: 1\nSHA256: " SHA_A "\n",
                  0, "P:4: Filename: control character in path: 'pool/?x.deb'" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: pool/\xc3\xa9.deb\nSize: 1\nSHA256: " SHA_A
                  "\n",
                  0, "P:4: Filename: character not allowed in a path: 'pool/??.deb'" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename:\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:4: Filename: empty path: ''" },
                { "Package: bb\nVersion: 1\nArchitecture: all\nFilename: pool/x.deb\n .evil\nSize: 1\nSHA256: " SHA_A
                  "\n",
                  0, "P:4: Filename: value spans several lines: 'pool/x.deb  .evil'" },
                { "Package: Foo\nVersion: 1\n", 0, "P:1: Package: invalid package name: 'Foo'" },
                { "Package: a\nVersion: 1\n", 0, "P:1: Package: invalid package name: 'a'" },
                { "Package: -a\nVersion: 1\n", 0, "P:1: Package: invalid package name: '-a'" },
                { "Package: a_b\nVersion: 1\n", 0, "P:1: Package: invalid package name: 'a_b'" },
                { "Package:\nVersion: 1\n", 0, "P:1: Package: invalid package name: ''" },
                { "Package: ab\n cd\nVersion: 1\n", 0, "P:1: Package: invalid package name: 'ab  cd'" },
                { PKG_OK("") "\nPackage: b1\nVersion: 1.0_1\nArchitecture: all\nFilename: b.deb\nSize: 1\nSHA256: " SHA_A
                  "\n",
                  0, "P:9: Version: invalid character in version: '1.0_1'" },
                { "Package: b1\nVersion: a:1\nArchitecture: all\nFilename: b.deb\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:2: Version: epoch is not a number: 'a:1'" },
                { "Package: b1\nVersion: :1\nArchitecture: all\nFilename: b.deb\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:2: Version: empty epoch: ':1'" },
                { "Package: b1\nVersion: 1-\nArchitecture: all\nFilename: b.deb\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:2: Version: empty revision: '1-'" },
                { "Package: b1\nVersion: 1-a_b\nArchitecture: all\nFilename: b.deb\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:2: Version: invalid character in revision: '1-a_b'" },
                { "Package: b1\nVersion: 1:-1\nArchitecture: all\nFilename: b.deb\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:2: Version: empty upstream version: '1:-1'" },
                { "Package: b1\nVersion: 1234567890:1\nArchitecture: all\nFilename: b.deb\nSize: 1\nSHA256: " SHA_A
                  "\n",
                  0, "P:2: Version: epoch too large: '1234567890:1'" },
                { "Package: b1\nVersion: 1\nArchitecture: AMD64\nFilename: b.deb\nSize: 1\nSHA256: " SHA_A "\n", 0,
                  "P:3: Architecture: invalid architecture: 'AMD64'" },
                { "Package: b1\nVersion: 1\nArchitecture: all\nFilename: b.deb\nSize: 1k\nSHA256: " SHA_A "\n", 0,
                  "P:5: Size: not a size in bytes: '1k'" },
                { "Package: b1\nVersion: 1\nArchitecture: all\nFilename: b.deb\nSize: 18446744073709551616\nSHA256: " SHA_A
                  "\n",
                  0, "P:5: Size: not a size in bytes: '18446744073709551616'" },
                { "Package: b1\nVersion: 1\nArchitecture: all\nFilename: b.deb\nSize: 1\nSHA256: abc\n", 0,
                  "P:6: SHA256: not 64 hex digits: 'abc'" },
                { PKG_OK("Installed-Size: -5\n"), 0, "P:7: Installed-Size: not a size in KiB: '-5'" },
                { PKG_OK("Multi-Arch: sometimes\n"), 0, "P:7: Multi-Arch: not no, same, foreign or allowed: 'sometimes'" },
                { PKG_OK("Essential: maybe\n"), 0, "P:7: Essential: not yes or no: 'maybe'" },
                { PKG_OK("Important: ja\n"), 0, "P:7: Important: not yes or no: 'ja'" },
                { PKG_OK("Protected: 1\n"), 0, "P:7: Protected: not yes or no: '1'" },
                { PKG_OK("Source: Foo\n"), 0, "P:7: Source: invalid source package name: 'Foo'" },
                { PKG_OK("Source: foo (1.0\n"), 0, "P:7: Source: not 'name' or 'name (version)': 'foo (1.0'" },
                { PKG_OK("Source: foo bar\n"), 0, "P:7: Source: not 'name' or 'name (version)': 'foo bar'" },
                { PKG_OK("Source: foo (1_0)\n"), 0, "P:7: Source: invalid character in version: 'foo (1_0)'" },
                { PKG_OK("Version: 2\n"), 0, "P:7: field 'Version' given twice (first on line 2)" },
                { PKG_OK("Description: x\n\x00y\n"), sizeof(PKG_OK("Description: x\n\x00y\n")) - 1, "P:8: NUL byte" },
                { PKG_OK("# comment\n"), 0, "P:7: comment line ('#') where only fields may be" },
                { PKG_OK("Depends: libc6 (>= 2.34\n"), 0,
                  "P:7: package 'a1': Depends: missing ')' at byte 14 ('libc6 (>= 2.34')" },
                { PKG_OK("Depends: libc6 (~ 2)\n"), 0,
                  "P:7: package 'a1': Depends: expected a relation operator (<<, <=, =, >=, >>) at byte 7 ('libc6 (~ 2)')" },
                { PKG_OK("Depends: libc6 (>= )\n"), 0, "P:7: package 'a1': Depends: missing version at byte 10 ('libc6 (>= )')" },
                { PKG_OK("Depends: libc6 (>= 2_0)\n"), 0,
                  "P:7: package 'a1': Depends: invalid character in version at byte 10 ('libc6 (>= 2_0)')" },
                { PKG_OK("Depends: LibC6\n"), 0, "P:7: package 'a1': Depends: invalid package name at byte 0 ('LibC6')" },
                { PKG_OK("Depends: a1 | | b1\n"), 0, "P:7: package 'a1': Depends: missing package name at byte 5 ('a1 | | b1')" },
                { PKG_OK("Depends: a1, , b1\n"), 0, "P:7: package 'a1': Depends: missing package name at byte 4 ('a1, , b1')" },
                { PKG_OK("Depends: a1 b1\n"), 0, "P:7: package 'a1': Depends: unexpected character at byte 3 ('a1 b1')" },
                { PKG_OK("Depends: a1:\n"), 0, "P:7: package 'a1': Depends: invalid architecture qualifier at byte 3 ('a1:')" },
                { PKG_OK("Depends: a1 [amd64\n"), 0, "P:7: package 'a1': Depends: missing ']' at byte 3 ('a1 [amd64')" },
                { PKG_OK("Depends: a1 []\n"), 0, "P:7: package 'a1': Depends: empty architecture list at byte 4 ('a1 []')" },
                { PKG_OK("Depends: a1 <!nocheck\n"), 0, "P:7: package 'a1': Depends: missing '>' at byte 12 ('a1 <!nocheck')" },
                { PKG_OK("Depends: a1 <>\n"), 0, "P:7: package 'a1': Depends: empty build profile list at byte 4 ('a1 <>')" },
                { PKG_OK("Pre-Depends: a1,\n b1,\n (>= 1)\n"), 0,
                  "P:9: package 'a1': Pre-Depends: missing package name at byte 10 ('a1,  b1,  (>= 1)')" },
                { PKG_OK("Breaks: a1 (>= 1\n"), 0, "P:7: package 'a1': Breaks: missing ')' at byte 8 ('a1 (>= 1')" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct deb_index *x = NULL;
                struct mkm_err err = { 0 };
                print_message("case %zu\n", i);
                size_t len = t[i].len ? t[i].len : strlen(t[i].text);
                assert_int_equal(deb_index_parse(t[i].text, len, "P", 0, &x, &err), -MKM_E_PARSE);
                assert_string_equal(err.msg, t[i].msg);
                assert_null(x);
        }
}

/* Long values are quoted in part, and never with their control bytes. */
static void test_message_excerpts(void **state) {
        (void)state;
        struct th_buf b = { 0 };
        struct deb_index *x = NULL;
        struct mkm_err err = { 0 };
        char want[256];

        th_buf_add(&b, "Package: bb\nVersion: 1\nArchitecture: all\nSize: 1\nSHA256: %s\nFilename: pool/", SHA_A);
        for (int i = 0; i < 20; i++)
                th_buf_add(&b, "abcde");
        th_buf_add(&b, "/../x.deb\n");
        assert_int_equal(deb_index_parse(b.p, b.n, "P", 0, &x, &err), -MKM_E_PARSE);
        /* 92 bytes of the value, then "..." */
        snprintf(want, sizeof want, "P:6: Filename: '.' or '..' in path: 'pool/%.87s...'",
                 "abcdeabcdeabcdeabcdeabcdeabcdeabcdeabcdeabcdeabcdeabcdeabcdeabcdeabcdeabcdeabcdeabcdeabcde");
        assert_string_equal(err.msg, want);
        free(b.p);

        char snip[8];
        deb_snippet(snip, sizeof snip, "ab\x1b\n\t\x80", 6);
        assert_string_equal(snip, "ab?  ?");
        deb_snippet(snip, sizeof snip, "abcdefgh", 8);
        assert_string_equal(snip, "abcd...");
        deb_snippet(snip, sizeof snip, "abcdefg", 7);
        assert_string_equal(snip, "abcdefg");
}

static void test_packages_caps(void **state) {
        (void)state;
        struct th_buf b = { 0 };
        struct deb_index *x = NULL;
        struct mkm_err err = { 0 };

        for (unsigned i = 0; i < 101; i++)
                th_buf_add(&b, "Package: p%u\nVersion: 1\nArchitecture: all\nFilename: p%u.deb\nSize: 1\nSHA256: %s\n\n", i, i,
                           SHA_A);
        assert_int_equal(deb_index_parse_capped(b.p, b.n, "P", 0, SIZE_MAX, 101, &x, &err), 0);
        assert_int_equal(x->n, 101);
        assert_string_equal(x->pkgs[100].name, "p100");
        x = deb_index_free(x);
        assert_int_equal(deb_index_parse_capped(b.p, b.n, "P", 0, SIZE_MAX, 100, &x, &err), -E2BIG);
        assert_string_equal(err.msg, "P:701: more than 100 packages");
        assert_null(x);
        assert_int_equal(deb_index_parse_capped(b.p, b.n, "P", 0, b.n - 1, 1000, &x, &err), -E2BIG);
        assert_null(x);

        /* more paragraphs than the first guess of the array's size (short ones, blank-only lines) */
        b.n = 0;
        for (unsigned i = 0; i < 3000; i++)
                th_buf_add(&b, "Package: p%u\nVersion: 1\nArchitecture: all\nFilename: p\nSize: 1\nSHA256: %s\n \n", i, SHA_A);
        assert_int_equal(deb_index_parse(b.p, b.n, "P", 0, &x, &err), 0);
        assert_int_equal(x->n, 3000);
        assert_string_equal(x->pkgs[2999].name, "p2999");
        x = deb_index_free(x);

        /* fields in one paragraph */
        b.n = 0;
        th_buf_add(&b, PKG_OK(""));
        for (unsigned i = 6; i < DEB_PKG_MAX_FIELDS; i++)
                th_buf_add(&b, "X-%u: v\n", i);
        assert_int_equal(deb_index_parse(b.p, b.n, "P", 0, &x, &err), 0);
        x = deb_index_free(x);
        th_buf_add(&b, "X-last: v\n");
        assert_int_equal(deb_index_parse(b.p, b.n, "P", 0, &x, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "P:257: more than 256 fields in one paragraph");

        /* relationship groups and alternatives */
        b.n = 0;
        th_buf_add(&b, PKG_OK("Depends: "));
        for (unsigned i = 0; i < DEB_REL_MAX_GROUPS; i++)
                th_buf_add(&b, "d%u, ", i);
        th_buf_add(&b, "\n");
        assert_int_equal(deb_index_parse(b.p, b.n, "P", 0, &x, &err), 0);
        assert_int_equal(x->pkgs[0].depends.n, DEB_REL_MAX_GROUPS);
        x = deb_index_free(x);
        b.n--;
        th_buf_add(&b, "last\n");
        assert_int_equal(deb_index_parse(b.p, b.n, "P", 0, &x, &err), -MKM_E_PARSE);
        assert_non_null(strstr(err.msg, "P:7: package 'a1': Depends: too many relations at byte "));

        b.n = 0;
        th_buf_add(&b, PKG_OK("Depends: "));
        for (unsigned i = 0; i < DEB_REL_MAX_ALTS; i++)
                th_buf_add(&b, "d%u | ", i);
        th_buf_add(&b, "z1\n");
        assert_int_equal(deb_index_parse(b.p, b.n, "P", 0, &x, &err), -MKM_E_PARSE);
        assert_non_null(strstr(err.msg, "P:7: package 'a1': Depends: too many alternatives at byte "));
        free(b.p);
}

/* ---- relationships ------------------------------------------------------------------------ */

static void test_rel_parse(void **state) {
        (void)state;
        static const struct {
                const char *in, *out;
        } t[] = {
                { "", "" },
                { " \n\t ", "" },
                { "a1", "a1" },
                { "a1,", "a1" },
                { "a1(>=1)", "a1 (>= 1)" },
                { "a1 ( >= 1 )", "a1 (>= 1)" },
                { "a1 (<<1), b1 (<=1), c1 (=1), d1 (>=1), e1 (>>1), f1 (<1), g1 (>1)",
                  "a1 (<< 1), b1 (<= 1), c1 (= 1), d1 (>= 1), e1 (>> 1), f1 (<= 1), g1 (>= 1)" },
                { "a1:any | b1:amd64 (= 2:1.0-1~bpo12+1)", "a1:any | b1:amd64 (= 2:1.0-1~bpo12+1)" },
                { "a1,\n b1\n |\n c1", "a1, b1 | c1" },
                { "c1 [amd64]", "c1" },
                { "c1 [!i386 !armel] <!nocheck>", "c1" },
                { "c1 <!nocheck>", "c1" },
                { "c1 <nocheck>", "" },
                { "c1 <nocheck> <!cross>", "c1" },
                { "c1 <!x y>", "" },
                { "c1 <nocheck> | d1", "d1" },
                { "c1 <nocheck>, d1", "d1" },
                { "x1 (>= 1) [amd64] <!a> <!b>, y1", "x1 (>= 1), y1" },
                { "lib+plus.dots-1.0", "lib+plus.dots-1.0" },
        };
        static const char *const ops[] = { "", "<<", "<=", "=", ">=", ">>" };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct deb_rel rel = { .n = 99 };
                struct mkm_err err = { 0 };
                char out[512] = "";
                print_message("case %zu: %s\n", i, t[i].in);
                assert_int_equal(deb_rel_parse(NULL, t[i].in, strlen(t[i].in), &rel, &err), 0);
                for (uint32_t g = 0; g < rel.n; g++) {
                        assert_true(rel.groups[g].n > 0);
                        for (uint32_t a = 0; a < rel.groups[g].n; a++) {
                                const struct deb_atom *x = &rel.groups[g].atoms[a];
                                char one[128];
                                snprintf(one, sizeof one, "%s%s%s%s", g && !a ? ", " : a ? " | " : "", x->name,
                                         x->arch ? ":" : "", x->arch ? x->arch : "");
                                strcat(out, one);
                                if (x->op != DEB_REL_ANY) {
                                        snprintf(one, sizeof one, " (%s %s)", ops[x->op], x->version);
                                        strcat(out, one);
                                } else
                                        assert_null(x->version);
                        }
                }
                assert_string_equal(out, t[i].out);
                deb_rel_done(&rel);
                assert_null(rel.groups);
                assert_int_equal(rel.n, 0);
        }
}

static void test_rel_parse_errors(void **state) {
        (void)state;
        static const struct {
                const char *in;
                size_t len;
                const char *msg;
        } t[] = {
                { "a1 (>= 1", 0, "missing ')' at byte 8 of 'a1 (>= 1'" },
                { "a1 |", 0, "missing package name at byte 4 of 'a1 |'" },
                { ",a1", 0, "missing package name at byte 0 of ',a1'" },
                { "a1 (>= 1) (<< 2)", 0, "unexpected character at byte 10 of 'a1 (>= 1) (<< 2)'" },
                { "a1 (>= 1:)", 0, "empty upstream version at byte 7 of 'a1 (>= 1:)'" },
                { "a1\x1b[31m", 0, "invalid package name at byte 0 of 'a1?[31m'" },
                { "a1 \x1b[31m", 0, "unexpected character at byte 3 of 'a1 ?[31m'" },
                { "a1\0b", 4, "NUL byte in relationship field" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct deb_rel rel = { .n = 99 };
                struct mkm_err err = { 0 };
                print_message("case %zu\n", i);
                assert_int_equal(deb_rel_parse(NULL, t[i].in, t[i].len ? t[i].len : strlen(t[i].in), &rel, &err),
                                 -MKM_E_PARSE);
                assert_string_equal(err.msg, t[i].msg);
                assert_int_equal(rel.n, 99);    /* untouched */
        }
        struct deb_rel rel;
        struct mkm_err err = { 0 };
        char *big = malloc(DEB_FIELD_MAX + 1);
        assert_non_null(big);
        memset(big, 'a', DEB_FIELD_MAX + 1);
        assert_int_equal(deb_rel_parse(NULL, big, DEB_FIELD_MAX + 1, &rel, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "relationship field longer than 1048576 bytes");
        free(big);
}

static void test_rel_parse_into_index(void **state) {
        (void)state;
        static const char text[] = PKG_OK("Depends: b1 (>= 2)\n");
        _cleanup_(deb_index_freep) struct deb_index *x = NULL;
        struct mkm_err err = { 0 };
        struct deb_rel rel;

        assert_int_equal(deb_index_parse(text, strlen(text), "P", 0, &x, &err), 0);
        assert_int_equal(deb_rel_parse(x, "a1 (= 1.0-1) | b1 (>= 2), amd64:any", 35, &rel, &err), 0);
        assert_int_equal(rel.n, 2);
        assert_int_equal(rel.groups[0].n, 2);
        /* the index's own strings */
        assert_ptr_equal(rel.groups[0].atoms[0].name, x->pkgs[0].name);
        assert_ptr_equal(rel.groups[0].atoms[0].version, x->pkgs[0].version);
        assert_ptr_equal(rel.groups[0].atoms[1].name, x->pkgs[0].depends.groups[0].atoms[0].name);
        assert_ptr_equal(rel.groups[1].atoms[0].name, x->pkgs[0].arch);
        assert_string_equal(rel.groups[1].atoms[0].arch, "any");
        /* no deb_rel_done: the arena owns it */
}

/* ---- validators --------------------------------------------------------------------------- */

static void test_names(void **state) {
        (void)state;
        static const char *const good[] = { "a1", "libc6", "g++", "libstdc++6", "0ad", "a.b-c+d", "xz-utils" };
        static const char *const bad[] = { "", "a", "A1", "-ab", "+ab", ".ab", "a_b", "a b", "a:b", "ab\x01" };
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                assert_true(deb_name_valid(good[i], strlen(good[i])));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_false(deb_name_valid(bad[i], strlen(bad[i])));
        char longname[DEB_NAME_MAX + 2];
        memset(longname, 'a', sizeof longname);
        assert_true(deb_name_valid(longname, DEB_NAME_MAX));
        assert_false(deb_name_valid(longname, DEB_NAME_MAX + 1));
}

/* The class table in arena.c, byte by byte, against the words of arena.h. */
static void test_char_classes(void **state) {
        (void)state;
        for (unsigned c = 0; c < 256; c++) {
                bool lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z', digit = c >= '0' && c <= '9';
                bool in = c && c < 128;
                unsigned want = 0;
                if (lower || digit || (in && strchr("+.-", (int)c)))
                        want |= DEB_CC_NAME;
                if (lower || upper || digit || (in && strchr(".+~:-", (int)c)))
                        want |= DEB_CC_VER;
                if (lower || upper || digit || (in && strchr(".+~", (int)c)))
                        want |= DEB_CC_REV;
                if (lower || digit || c == '-')
                        want |= DEB_CC_ARCH;
                if (lower || upper || digit || (in && strchr("-._~+@=,:", (int)c)))
                        want |= DEB_CC_PATH;
                if (c == 0 || (in && strchr(" \t\n:(),|[]<>", (int)c)))
                        want |= DEB_CC_DELIM;
                if (deb_cc[c] != want)
                        print_message("byte 0x%02x: table 0x%02x, want 0x%02x\n", c, deb_cc[c], want);
                assert_int_equal(deb_cc[c], want);
        }
}

/* The stream API: whole paragraphs fed in pieces give the same index as one parse, and line
 * numbers in errors count across pieces. */
static void test_stream(void **state) {
        (void)state;
        static const char a[] = "Package: aa\nVersion: 1\nArchitecture: all\nFilename: pool/a.deb\nSize: 1\nSHA256: " SHA_A "\n\n";
        static const char b[] = "Package: bb\nVersion: 2\nArchitecture: amd64\nFilename: pool/b.deb\nSize: 2\nSHA256: " SHA_B "\n";
        struct mkm_err err = { 0 };
        _cleanup_(deb_index_stream_freep) struct deb_index_stream *s = NULL;
        assert_int_equal(deb_index_stream_new("P", 3, 0, &s, &err), 0);
        assert_int_equal(deb_index_stream_feed(s, a, strlen(a), &err), 0);
        assert_int_equal(deb_index_stream_feed(s, b, strlen(b), &err), 0);
        _cleanup_(deb_index_freep) struct deb_index *x = NULL;
        assert_int_equal(deb_index_stream_finish(s, &x), 0);
        assert_int_equal(x->n, 2);
        assert_int_equal(x->number, 3);
        assert_string_equal(x->pkgs[0].name, "aa");
        assert_string_equal(x->pkgs[1].name, "bb");
        assert_int_equal(x->pkgs[1].size, 2);

        /* an error in the second piece names its line in the whole text (line 8) */
        static const char bad[] = "Package: cc\nVersion: 1\nArchitecture: all\nFilename: ../x.deb\nSize: 1\nSHA256: " SHA_A "\n";
        _cleanup_(deb_index_stream_freep) struct deb_index_stream *t = NULL;
        assert_int_equal(deb_index_stream_new("P", 0, 0, &t, &err), 0);
        assert_int_equal(deb_index_stream_feed(t, a, strlen(a), &err), 0);
        assert_int_equal(deb_index_stream_feed(t, bad, strlen(bad), &err), -MKM_E_PARSE);
        if (!strstr(err.msg, "P:11:"))
                fail_msg("expected line 11: %s", err.msg);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_deb822_paragraphs),
                cmocka_unit_test(test_deb822_comments_where_allowed),
                cmocka_unit_test(test_deb822_errors),
                cmocka_unit_test(test_deb822_field_too_long),
                cmocka_unit_test(test_dates),
                cmocka_unit_test(test_release),
                cmocka_unit_test(test_release_minimal),
                cmocka_unit_test(test_release_errors),
                cmocka_unit_test(test_release_caps),
                cmocka_unit_test(test_packages_all_fields),
                cmocka_unit_test(test_packages_empty_and_blank),
                cmocka_unit_test(test_packages_errors),
                cmocka_unit_test(test_message_excerpts),
                cmocka_unit_test(test_packages_caps),
                cmocka_unit_test(test_rel_parse),
                cmocka_unit_test(test_rel_parse_errors),
                cmocka_unit_test(test_rel_parse_into_index),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_char_classes),
                cmocka_unit_test(test_stream),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
