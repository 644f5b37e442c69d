/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/arch/vercmp: the comparison (cases re-expressed from pacman's
 * test/util/vercmptest.sh, each checked in both directions, plus corner cases of our own),
 * vercmp_satisfies, the dependency-string parser and the name/version validators. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/cleanup.h"
#include "util/err.h"
#include "arch/vercmp.h"

static const struct {
        const char *a, *b;
        int want;
} cmp_cases[] = {
        /* same length, no pkgrel */
        { "1.5.0", "1.5.0", 0 },
        { "1.5.1", "1.5.0", 1 },
        /* different lengths */
        { "1.5.1", "1.5", 1 },
        /* simple pkgrels */
        { "1.5.0-1", "1.5.0-1", 0 },
        { "1.5.0-1", "1.5.0-2", -1 },
        { "1.5.0-1", "1.5.1-1", -1 },
        { "1.5.0-2", "1.5.1-1", -1 },
        /* pkgrels with different version lengths */
        { "1.5-1", "1.5.1-1", -1 },
        { "1.5-2", "1.5.1-1", -1 },
        { "1.5-2", "1.5.1-2", -1 },
        /* pkgrel on one side only: it is ignored */
        { "1.5", "1.5-1", 0 },
        { "1.5-1", "1.5", 0 },
        { "1.1-1", "1.1", 0 },
        { "1.0-1", "1.1", -1 },
        { "1.1-1", "1.0", 1 },
        /* alphanumeric versions */
        { "1.5b-1", "1.5-1", -1 },
        { "1.5b", "1.5", -1 },
        { "1.5b-1", "1.5", -1 },
        { "1.5b", "1.5.1", -1 },
        /* the man page's ordering */
        { "1.0a", "1.0alpha", -1 },
        { "1.0alpha", "1.0b", -1 },
        { "1.0b", "1.0beta", -1 },
        { "1.0beta", "1.0rc", -1 },
        { "1.0rc", "1.0", -1 },
        /* alpha segments after dots */
        { "1.5.a", "1.5", 1 },
        { "1.5.b", "1.5.a", 1 },
        { "1.5.1", "1.5.b", 1 },
        /* alpha after dots, with dashes */
        { "1.5.b-1", "1.5.b", 0 },
        { "1.5-1", "1.5.b", -1 },
        /* same content, other separators */
        { "2.0", "2_0", 0 },
        { "2.0_a", "2_0.a", 0 },
        { "2.0a", "2.0.a", -1 },
        { "2___a", "2_a", 1 },
        /* epochs */
        { "0:1.0", "0:1.0", 0 },
        { "0:1.0", "0:1.1", -1 },
        { "1:1.0", "0:1.0", 1 },
        { "1:1.0", "0:1.1", 1 },
        { "1:1.0", "2:1.1", -1 },
        /* epoch with a pkgrel on one side */
        { "1:1.0", "0:1.0-1", 1 },
        { "1:1.0-1", "0:1.1-1", 1 },
        /* epoch on one side only */
        { "0:1.0", "1.0", 0 },
        { "0:1.0", "1.1", -1 },
        { "0:1.1", "1.0", 1 },
        { "1:1.0", "1.0", 1 },
        { "1:1.0", "1.1", 1 },
        { "1:1.1", "1.1", 1 },
        /* our own corners: no tilde special case (unlike rpm/dpkg) */
        { "1.0~rc1", "1.0", 1 },
        { "1~1", "1.1", 0 },
        /* leading zeros and long numbers (no overflow) */
        { "1.01", "1.1", 0 },
        { "1.001", "1.0001", 0 },
        { "99999999999999999999999", "100000000000000000000000", -1 },
        { "00", "0", 0 },
        /* empty epoch is 0; zero-padded epoch */
        { ":1.0", "0:1.0", 0 },
        { "00:2", "0:2", 0 },
        /* not an epoch: non-digits before ':' keep it in the version */
        { "a:1", "1", -1 },
        /* pkgrel: the last '-' splits; dotted pkgrels */
        { "1.0-1.1", "1.0-1", 1 },
        { "1-2-3", "1-2-4", -1 },
        /* empty segments and trailing separators */
        { "1..0", "1.0", 1 },
        { "1.0.", "1.0", 1 },
        { ".1", "1", 1 },
        { "1.", "1", 1 },
        /* numeric beats alpha in the same position */
        { "1.1", "1.a", 1 },
        { "a", "1", -1 },
        /* case-sensitive alpha ordering (ASCII) */
        { "1.0A", "1.0a", -1 },
        /* non-ASCII bytes are separators, one per byte */
        { "1\xe9" "2", "1.2", 0 },
        { "1\xc3\xa9" "2", "1.2", 1 },
};

static void test_vercmp_table(void **state) {
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cmp_cases); i++) {
                int got = alpm_vercmp(cmp_cases[i].a, cmp_cases[i].b);
                int back = alpm_vercmp(cmp_cases[i].b, cmp_cases[i].a);
                if (got != cmp_cases[i].want || back != -cmp_cases[i].want)
                        fail_msg("alpm_vercmp('%s', '%s') = %d and reverse %d, want %d", cmp_cases[i].a, cmp_cases[i].b,
                                 got, back, cmp_cases[i].want);
        }
}

static void test_vercmp_null(void **state) {
        (void)state;
        assert_int_equal(alpm_vercmp(NULL, NULL), 0);
        assert_int_equal(alpm_vercmp(NULL, "1"), -1);
        assert_int_equal(alpm_vercmp("1", NULL), 1);
        assert_int_equal(alpm_vercmp("", ""), 0);
        assert_int_equal(alpm_vercmp("", "1"), -1);
}

static void test_satisfies(void **state) {
        (void)state;
        static const struct {
                const char *version;
                enum vercmp_op op;
                const char *wanted;
                bool want;
        } t[] = {
                { "1.0-1", VERCMP_ANY, NULL, true },
                { "1.0-1", VERCMP_EQ, "1.0-1", true },
                { "1.0-1", VERCMP_EQ, "1.0-2", false },
                /* a wanted version without pkgrel ignores the candidate's pkgrel */
                { "1.0-7", VERCMP_EQ, "1.0", true },
                { "1.0-7", VERCMP_LT, "1.0", false },
                { "1.0-7", VERCMP_GT, "1.0", false },
                { "1.0-7", VERCMP_GE, "1.0", true },
                { "1.0-7", VERCMP_LE, "1.0", true },
                { "1.1-1", VERCMP_GE, "1.0-9", true },
                { "1.0-1", VERCMP_GE, "1.0-2", false },
                { "1.0-1", VERCMP_LT, "1.0-2", true },
                { "1.0-2", VERCMP_LE, "1.0-2", true },
                { "2:0.1-1", VERCMP_GT, "1:9.9", true },
                { "0.9", VERCMP_GT, "1.0", false },
                { "1.0rc1-1", VERCMP_LT, "1.0", true },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                if (vercmp_satisfies(t[i].version, t[i].op, t[i].wanted) != t[i].want)
                        fail_msg("satisfies('%s' %s '%s') != %d", t[i].version, vercmp_op_to_string(t[i].op),
                                 t[i].wanted ? t[i].wanted : "(null)", t[i].want);
        assert_null(vercmp_op_to_string(_VERCMP_OP_MAX));
        assert_null(vercmp_op_to_string(_VERCMP_OP_INVALID));
}

static void test_dep_parse(void **state) {
        (void)state;
        static const struct {
                const char *s;
                const char *name;
                enum vercmp_op op;
                const char *version, *desc, *formatted;
        } t[] = {
                { "glibc", "glibc", VERCMP_ANY, NULL, NULL, "glibc" },
                { "bash>=5.1-2", "bash", VERCMP_GE, "5.1-2", NULL, NULL },
                { "python<=3.12", "python", VERCMP_LE, "3.12", NULL, NULL },
                { "foo<2", "foo", VERCMP_LT, "2", NULL, NULL },
                { "foo>2", "foo", VERCMP_GT, "2", NULL, NULL },
                { "name=1:2.0", "name", VERCMP_EQ, "1:2.0", NULL, NULL },
                { "libfoo.so=1-64", "libfoo.so", VERCMP_EQ, "1-64", NULL, NULL },
                { "gtk3: for the GUI", "gtk3", VERCMP_ANY, NULL, "for the GUI", NULL },
                { "python-foo>=1.0: support: with colons", "python-foo", VERCMP_GE, "1.0", "support: with colons", NULL },
                { "perl-lib=1:5.36-1: perl bits", "perl-lib", VERCMP_EQ, "1:5.36-1", "perl bits", NULL },
                { "c++utils@x", "c++utils@x", VERCMP_ANY, NULL, NULL, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct vercmp_dep d = {};
                struct mkm_err err = {};
                int r = vercmp_dep_parse(t[i].s, &d, &err);
                if (r < 0)
                        fail_msg("'%s': %s", t[i].s, err.msg);
                assert_string_equal(d.name, t[i].name);
                assert_int_equal(d.op, t[i].op);
                if (t[i].version)
                        assert_string_equal(d.version, t[i].version);
                else
                        assert_null(d.version);
                if (t[i].desc)
                        assert_string_equal(d.desc, t[i].desc);
                else
                        assert_null(d.desc);
                _cleanup_free_ char *f = vercmp_dep_to_string(&d);
                assert_non_null(f);
                assert_string_equal(f, t[i].formatted ? t[i].formatted : t[i].s);
                vercmp_dep_done(&d);
                assert_null(d.name);
        }
}

static void test_dep_parse_bad(void **state) {
        (void)state;
        static const struct {
                const char *s, *msg;
        } t[] = {
                { "", "dependency '': empty name" },
                { ">=1.0", "dependency '>=1.0': empty name" },
                { ": only a description", "dependency ': only a description': empty name" },
                { "foo>=", "dependency 'foo>=': empty version after '>='" },
                { "foo=", "dependency 'foo=': empty version after '='" },
                { "foo<>1", "dependency 'foo<>1': invalid version '>1'" },
                { "foo=1 2", "dependency 'foo=1 2': invalid version '1 2'" },
                { "foo=1:2:3", "dependency 'foo=1:2:3': invalid version '1:2:3'" },
                { "foo=a:1", "dependency 'foo=a:1': invalid version 'a:1'" },
                { "foo=1-", "dependency 'foo=1-': invalid version '1-'" },
                { "-foo", "dependency '-foo': invalid name '-foo'" },
                { ".foo", "dependency '.foo': invalid name '.foo'" },
                { "foo bar", "dependency 'foo bar': invalid name 'foo bar'" },
                { "foo/../x=1", "dependency 'foo/../x=1': invalid name 'foo/../x'" },
                { "f\to", "dependency 'f\to': invalid name 'f\to'" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct vercmp_dep d = { .name = (char *)"untouched" };
                struct mkm_err err = {};
                assert_int_equal(vercmp_dep_parse(t[i].s, &d, &err), -MKM_E_PARSE);
                assert_string_equal(err.msg, t[i].msg);
                assert_int_equal(err.code, -MKM_E_PARSE);
                assert_string_equal(d.name, "untouched");
        }
}

static void test_dep_satisfied_by(void **state) {
        (void)state;
        char *provides[] = { (char *)"sh", (char *)"libfoo.so=2-64", (char *)"java-runtime=17", (char *)"bad name=1",
                             NULL };
        static const struct {
                const char *dep;
                bool want;
        } t[] = {
                { "bash", true },               /* the package itself */
                { "bash>=5.0", true },
                { "bash=5.2.15-1", true },
                { "bash=5.2.15", true },        /* pkgrel ignored */
                { "bash>5.2.15", false },
                { "bash<5", false },
                { "sh", true },                 /* unversioned provision */
                { "sh>=1", false },             /* ...never satisfies a versioned dependency */
                { "libfoo.so", true },
                { "libfoo.so=2-64", true },
                { "libfoo.so>=2", true },
                { "libfoo.so>=3", false },
                { "java-runtime<17", false },
                { "java-runtime<=17", true },
                { "zsh", false },
                { "bad", false },               /* unparseable provisions never match */
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                struct vercmp_dep d;
                assert_int_equal(vercmp_dep_parse(t[i].dep, &d, NULL), 0);
                if (vercmp_dep_satisfied_by(&d, "bash", "5.2.15-1", provides) != t[i].want)
                        fail_msg("'%s' satisfied by bash 5.2.15-1 != %d", t[i].dep, t[i].want);
                vercmp_dep_done(&d);
        }
        struct vercmp_dep d;
        assert_int_equal(vercmp_dep_parse("bash", &d, NULL), 0);
        assert_true(vercmp_dep_satisfied_by(&d, "bash", "1-1", NULL));
        vercmp_dep_done(&d);
}

static void test_validators(void **state) {
        (void)state;
        assert_true(vercmp_name_is_valid("gcc-libs"));
        assert_true(vercmp_name_is_valid("lib32-foo_bar+baz@x"));
        assert_true(vercmp_name_is_valid("0ad"));
        assert_false(vercmp_name_is_valid(""));
        assert_false(vercmp_name_is_valid("-foo"));
        assert_false(vercmp_name_is_valid(".hidden"));
        assert_false(vercmp_name_is_valid("a/b"));
        assert_false(vercmp_name_is_valid("a:b"));
        assert_false(vercmp_name_is_valid("caf\xc3\xa9"));
        char longname[300];
        memset(longname, 'a', sizeof longname - 1);
        longname[sizeof longname - 1] = 0;
        assert_false(vercmp_name_is_valid(longname));
        longname[255] = 0;
        assert_true(vercmp_name_is_valid(longname));

        assert_true(vercmp_version_is_valid("1.0"));
        assert_true(vercmp_version_is_valid("1:1.0_rc1+git~2-3"));
        assert_false(vercmp_version_is_valid(""));
        assert_false(vercmp_version_is_valid(":1"));
        assert_false(vercmp_version_is_valid("1:"));
        assert_false(vercmp_version_is_valid("1:-1"));
        assert_false(vercmp_version_is_valid("1-2-3"));
        assert_false(vercmp_version_is_valid("1.0 "));
        assert_false(vercmp_version_is_valid("1/0"));

        assert_true(vercmp_pkg_version_is_valid("1.0-1"));
        assert_true(vercmp_pkg_version_is_valid("2:1.0.r12.gabc-3.1"));
        assert_false(vercmp_pkg_version_is_valid("1.0"));
        assert_false(vercmp_pkg_version_is_valid("1.0-a"));
        assert_false(vercmp_pkg_version_is_valid("1.0-1."));
        assert_false(vercmp_pkg_version_is_valid("1.0-1.2.3"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vercmp_table),
                cmocka_unit_test(test_vercmp_null),
                cmocka_unit_test(test_satisfies),
                cmocka_unit_test(test_dep_parse),
                cmocka_unit_test(test_dep_parse_bad),
                cmocka_unit_test(test_dep_satisfied_by),
                cmocka_unit_test(test_validators),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
