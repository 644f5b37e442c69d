/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/debian/version: debver_cmp against dpkg's own test vectors
 * (scripts/t/Dpkg_Version.t and lib/dpkg/t/t-version.c, re-expressed; every expectation of the
 * comparison table was also checked with `dpkg --compare-versions` 1.21.22), corner cases of our
 * own (tilde, '+', letters against other bytes, leading zeros, "-0", digit runs far beyond 64
 * bits), a chain that must come out strictly increasing for every pair, debver_satisfies, and
 * debver_check's verdicts with parseversion()'s reasons. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "debian/version.h"
#include "util/cleanup.h"

static const struct {
        const char *a, *b;
        int want;
} cmp_cases[] = {
        /* dpkg scripts/t/Dpkg_Version.t, __DATA__ */
        { "1.0-1", "2.0-2", -1 },
        { "2.2~rc-4", "2.2-1", -1 },
        { "2.2-1", "2.2~rc-4", 1 },
        { "1.0000-1", "1.0-1", 0 },
        { "1", "0:1", 0 },
        { "0", "0:0-0", 0 },
        { "2:2.5", "1:7.5", 1 },
        { "1:0foo", "0foo", 1 },
        { "0:0foo", "0foo", 0 },
        { "0foo", "0foo", 0 },
        { "0foo-0", "0foo", 0 },
        { "0foo", "0foo-0", 0 },
        { "0foo", "0fo", 1 },
        { "0foo-0", "0foo+", -1 },
        { "0foo~1", "0foo", -1 },
        { "0foo~foo+Bar", "0foo~foo+bar", -1 },
        { "0foo~~", "0foo~", -1 },
        { "1~", "1", -1 },
        { "12345+that-really-is-some-ver-0", "12345+that-really-is-some-ver-10", -1 },
        { "0foo-0", "0foo-01", -1 },
        { "0foo.bar", "0foobar", 1 },
        { "0foo.bar", "0foo1bar", 1 },
        { "0foo.bar", "0foo0bar", 1 },
        { "0foo1bar-1", "0foobar-1", -1 },
        { "0foo2.0", "0foo2", 1 },
        { "0foo2.0.0", "0foo2.10.0", -1 },
        { "0foo2.0", "0foo2.0.0", -1 },
        { "0foo2.0", "0foo2.10", -1 },
        { "0foo2.1", "0foo2.10", -1 },
        { "1.09", "1.9", 0 },
        { "1.0.8+nmu1", "1.0.8", 1 },
        { "3.11", "3.10+nmu1", 1 },
        { "0.9j-20080306-4", "0.9i-20070324-2", 1 },
        { "1.2.0~b7-1", "1.2.0~b6-1", 1 },
        { "1.011-1", "1.06-2", 1 },
        { "0.0.9+dfsg1-1", "0.0.8+dfsg1-3", 1 },
        { "4.6.99+svn6582-1", "4.6.99+svn6496-1", 1 },
        { "53", "52", 1 },
        { "0.9.9~pre122-1", "0.9.9~pre111-1", 1 },
        { "2:2.3.2-2+lenny2", "2:2.3.2-2", 1 },
        { "1:3.8.1-1", "3.8.GA-1", 1 },
        { "1.0.1+gpl-1", "1.0.1-2", 1 },
        { "1a", "1000a", -1 },

        /* dpkg lib/dpkg/t/t-version.c, as strings */
        { "0", "0:0", 0 },
        { "0:0-0", "0", 0 },
        { "0:0.0-0.0", "0.0-0.0", 0 },
        { "1:0", "0:9", 1 },
        { "5:1", "5:1-0", 0 },
        { "0-00", "00-0", 0 },
        { "1:2-3", "1:2-3", 0 },
        { "0:0-0", "1:0-0", -1 },
        { "0:a-0", "0:b-0", -1 },
        { "0:0-a", "0:0-b", -1 },
        { "0:0-0-0", "0-0-0", 0 },          /* upstream "0-0", revision "0" */
        { "0:0-0-0-0", "0:0-0-0", 1 },
        { "0:0:0-0", "0:0-0", 1 },           /* upstream "0:0" */
        { "0:0:0:0-0", "0:0:0-0", 1 },
        { "0:0-0:0-0", "0:0-0-0", 1 },
        { "1.0-1-1", "1.0-10", 1 },          /* the last '-' splits: upstream "1.0-1" */
        { "0:09azAZ.-+~:-0", "0:09azAZ.-+~:-00", 0 },
        { "  \t0:0-1", "0-1", 0 },
        { "0:0-1\t  ", "0-1", 0 },

        /* '~' sorts before everything, even the end */
        { "1.0~rc1", "1.0", -1 },
        { "1.0~~", "1.0~", -1 },
        { "1.0~~a", "1.0~", -1 },
        { "1.0~~", "1.0~~a", -1 },
        { "1.0~rc1", "1.0~rc2", -1 },
        { "1.0~rc1-1", "1.0-0", -1 },
        { "1.0-1~bpo1", "1.0-1", -1 },
        { "1.0-~", "1.0", -1 },
        { "2~", "1.9", 1 },                  /* the digits decide first */
        /* '+' is after the end and after letters, but before '.' */
        { "1.0+b1", "1.0", 1 },
        { "1.0+dfsg", "1.0a", 1 },
        { "1.0+dfsg", "1.0.1", -1 },
        { "2.36-9+deb12u4", "2.36-9", 1 },
        { "2.36-9+deb12u4", "2.36-10", -1 },
        { "2.36-9+deb12u10", "2.36-9+deb12u9", 1 },
        /* letters before non-letters, case-sensitive ASCII, the end before letters */
        { "1a", "1", 1 },
        { "1a", "1.", -1 },
        { "1a", "1+", -1 },
        { "1A", "1a", -1 },
        { "1Z", "1a", -1 },
        { "1z", "1~", 1 },
        { "1.", "1+", 1 },
        /* a digit run against a non-digit run */
        { "1.a", "1.1", 1 },
        { "1a1", "11", -1 },                 /* the first digit runs decide */
        /* leading zeros */
        { "1.001", "1.1", 0 },
        { "001", "1", 0 },
        { "0:01", "1", 0 },
        { "00:1", "0:1", 0 },
        { "007:1", "7:1", 0 },
        { "1.0-001", "1.0-1", 0 },
        { "1.00", "1", 1 },                   /* ".00" against the end: '.' wins */
        /* a missing revision is "", which equals "0" */
        { "1.0", "1.0-0", 0 },
        { "1.0", "1.0-00", 0 },
        { "1.0", "1.0-0.0", -1 },
        { "1.0", "1.0-1", -1 },
        { "1.0-0", "1.0-0+b1", -1 },
        /* epochs outrank everything */
        { "1:0", "99999", 1 },
        { "2:1", "10:0", -1 },
        /* digit runs longer than any integer type */
        { "4294967296", "4294967295", 1 },
        { "18446744073709551616", "18446744073709551615", 1 },
        { "1.123456789012345678901234567890", "1.123456789012345678901234567891", -1 },
        { "1.000000000000000000000000000000000000000001", "1.1", 0 },
        { "99999999999999999999999999999999999999", "100000000000000000000000000000000000000", -1 },
        /* a byte >= 0x80 weighs as amd64's dpkg (signed char): after letters, before '.' */
        { "1\xe9", "1z", 1 },
        { "1\xe9", "1.", -1 },
        { "1\xe9", "1~", 1 },
};

static void test_cmp_table(void **state) {
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cmp_cases); i++) {
                int got = debver_cmp(cmp_cases[i].a, cmp_cases[i].b);
                int back = debver_cmp(cmp_cases[i].b, cmp_cases[i].a);
                if (got != cmp_cases[i].want || back != -cmp_cases[i].want)
                        fail_msg("debver_cmp('%s', '%s') = %d and reverse %d, want %d", cmp_cases[i].a,
                                 cmp_cases[i].b, got, back, cmp_cases[i].want);
        }
}

/* Each version is strictly older than the next; every pair must agree (this checks
 * transitivity across the special cases, not just neighbours). */
static void test_cmp_chain(void **state) {
        (void)state;
        static const char *const chain[] = {
                "",             /* no version at all */
                "~~",
                "~~a",
                "~",
                "0",
                "0-0.1",
                "0a",
                "0.",
                "0.1~~",
                "0.1~",
                "0.1",
                "0.1-1~bpo12+1",
                "0.1-1",
                "0.1-1+b1",
                "0.1-1.1",
                "0.1a",
                "0.1+dfsg",
                "0.1.0",
                "0.2",
                "0.10",
                "1~rc1",
                "1",
                "1-1",
                "9999999999999999999999",
                "1:0",
                "1:1~",
                "1:1",
                "2:0",
                "10:0",
        };
        for (size_t i = 0; i < ELEMENTSOF(chain); i++)
                for (size_t j = 0; j < ELEMENTSOF(chain); j++) {
                        int want = i < j ? -1 : i > j ? 1 : 0;
                        int got = debver_cmp(chain[i], chain[j]);
                        if (got != want)
                                fail_msg("debver_cmp('%s', '%s') = %d, want %d", chain[i], chain[j], got, want);
                }
}

/* Digit runs of thousands of digits: compared as strings, never converted. */
static void test_cmp_huge(void **state) {
        (void)state;
        enum { N = 5000 };
        _cleanup_free_ char *a = malloc(N + 16), *b = malloc(N + 16), *c = malloc(N + 16);
        assert_non_null(a);
        assert_non_null(b);
        assert_non_null(c);
        memset(a, '9', N);
        memcpy(a + N, "-1", 3);
        memset(b, '0', N);
        b[0] = '1';
        memcpy(b + N, "-1", 3);          /* 1 followed by N-1 zeros: smaller than N nines */
        memset(c, '0', N);
        memcpy(c + N, "10-1", 5);        /* N leading zeros, then 10 */
        assert_int_equal(debver_cmp(a, b), 1);
        assert_int_equal(debver_cmp(b, a), -1);
        assert_int_equal(debver_cmp(c, "10-1"), 0);
        assert_int_equal(debver_cmp(c, b), -1);
        assert_int_equal(debver_cmp(a, a), 0);

        /* the same as epochs */
        memcpy(a + N, ":1", 3);
        memcpy(b + N, ":2", 3);
        assert_int_equal(debver_cmp(a, b), 1);
        assert_int_equal(debver_cmp(b, a), -1);
        assert_int_equal(debver_cmp(b, "1:2"), 1);
}

/* How versions dpkg refuses are read (the header's lenient contract). */
static void test_cmp_lenient(void **state) {
        (void)state;
        /* no version: older than any, equal to itself; NULL is the same as "" */
        assert_int_equal(debver_cmp("", ""), 0);
        assert_int_equal(debver_cmp(NULL, ""), 0);
        assert_int_equal(debver_cmp(NULL, NULL), 0);
        assert_int_equal(debver_cmp("", "0"), -1);
        assert_int_equal(debver_cmp("~", ""), 1);
        assert_int_equal(debver_cmp("0", NULL), 1);
        /* strtol's epoch: a sign and leading \n\v\f\r are accepted by dpkg */
        assert_int_equal(debver_cmp("+1:2", "1:2"), 0);
        assert_int_equal(debver_cmp("-0:2", "2"), 0);
        assert_int_equal(debver_cmp("\v1:2", "1:2"), 0);
        /* refused epochs: the whole token is the upstream version */
        assert_int_equal(debver_cmp("a:1", "0:a:1"), 0);
        assert_int_equal(debver_cmp(":1", "0::1"), 0);
        assert_int_equal(debver_cmp("-1:2", "0:-1:2"), 0);
        /* empty parts */
        assert_int_equal(debver_cmp("1:", "1:0"), 0);
        assert_int_equal(debver_cmp("-1", "0-1"), 0);
        assert_int_equal(debver_cmp("1-", "1"), 0);
        /* only the first word counts */
        assert_int_equal(debver_cmp("1.0 2.0", "1.0"), 0);
        assert_int_equal(debver_cmp(" \t1.0\t ", "1.0"), 0);
}

static void test_satisfies(void **state) {
        (void)state;
        static const struct {
                const char *version;
                enum deb_relop op;
                const char *ref;
                bool want;
        } t[] = {
                { "2.36-9+deb12u4", DEB_REL_ANY, NULL, true },
                { "2.36-9+deb12u4", DEB_REL_GE, "2.36", true },
                { "2.36-9+deb12u4", DEB_REL_GE, "2.37", false },
                { "2.36-9+deb12u4", DEB_REL_GT, "2.36-9", true },
                { "2.36-9", DEB_REL_GT, "2.36-9", false },
                { "2.36-9", DEB_REL_GE, "2.36-9", true },
                { "2.36-9", DEB_REL_LE, "2.36-9", true },
                { "2.36-9", DEB_REL_LT, "2.36-9", false },
                { "2.36-9", DEB_REL_EQ, "2.36-9", true },
                { "2.36-9", DEB_REL_EQ, "0:2.36-9", true },
                { "2.36-9", DEB_REL_EQ, "2.36", false },
                { "1.0~rc1", DEB_REL_LT, "1.0", true },
                { "1.0~rc1", DEB_REL_LE, "1.0~rc1", true },
                { "1.0~rc1", DEB_REL_GE, "1.0", false },
                { "1:1.0", DEB_REL_GT, "9.9", true },
                { "1:1.0", DEB_REL_LT, "9.9", false },
                { "1.0", DEB_REL_LE, "1.0-0", true },
                { "1.0", DEB_REL_GE, "1.0-0", true },
                { "1.0", DEB_REL_LE, "0.9", false },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                if (debver_satisfies(t[i].version, t[i].op, t[i].ref) != t[i].want)
                        fail_msg("debver_satisfies('%s', %d, '%s') != %d", t[i].version, (int)t[i].op,
                                 t[i].ref ? t[i].ref : "(null)", t[i].want);
        assert_false(debver_satisfies("1", (enum deb_relop)99, "1"));
}

static void test_check_valid(void **state) {
        (void)state;
        static const char *const ok[] = {
                "0",
                "0:0",
                "0:0-0",
                "1.0",
                "1:2.36-9+deb12u4",
                "2:1.2.3~rc1+dfsg-1~bpo12+1",
                "0:09azAZ.-+~:-0",
                "0:0-azAZ09.+~",
                "0:0-0-0-0",
                "0:0:0:0-0",
                "  \t0:0-1",
                "0:0-1\t  ",
                "1.0 ",
                "2147483647:1",
                "00000000002147483647:1",
                "1a",
                "1.0-1.",
                "99999999999999999999999999999999999999",
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                const char *why = "untouched";
                if (debver_check(ok[i], &why) != 0)
                        fail_msg("debver_check('%s') refused it: %s", ok[i], why);
                assert_string_equal(why, "untouched");
        }
        assert_int_equal(debver_check("1.0", NULL), 0);
}

static void test_check_invalid(void **state) {
        (void)state;
        static const struct {
                const char *v, *why;
        } bad[] = {
                { "", "version string is empty" },
                { "  \t", "version string is empty" },
                { "0:0 0-1", "version string has embedded spaces" },
                { ":1.0", "epoch in version is empty" },
                { "a:0-0", "epoch in version is not number" },
                { "A:0-0", "epoch in version is not number" },
                { "10a:5.2", "epoch in version is not number" },
                { "-1:0-1", "epoch in version is not number" },
                { "+1:0", "epoch in version is not number" },   /* dpkg's strtol takes it; we want digits */
                { "999999999999999999999999:0-1", "epoch in version is too big" },
                { "2147483648:1", "epoch in version is too big" },
                { "0:", "nothing after colon in version number" },
                { "1.0-", "revision number is empty" },
                { "0:0-", "revision number is empty" },
                { "-0", "version number is empty" },
                { "0:-0", "version number is empty" },
                { "0:abc3-0", "version number does not start with digit" },
                { "foo5.2", "version number does not start with digit" },
                { "~1", "version number does not start with digit" },
                { "5.2@3-2", "invalid character in version number" },
                { "1.0\xe9", "invalid character in version number" },
                { "0:0-0:0", "invalid character in revision number" },
                { "1.0-1_2", "invalid character in revision number" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *why = NULL;
                int r = debver_check(bad[i].v, &why);
                if (r != -EINVAL || !why || strcmp(why, bad[i].why) != 0)
                        fail_msg("debver_check('%s') = %d '%s', want -EINVAL '%s'", bad[i].v, r, why ? why : "(null)",
                                 bad[i].why);
        }
        assert_int_equal(debver_check(NULL, NULL), -EINVAL);

        /* Every character parseversion() rejects, in the upstream version and in the revision. */
        char up[] = "0:0a-0", rev[] = "0:0-0";
        for (const char *p = "!#@$%&/|\\<>()[]{};,_=*^'\""; *p; p++) {
                const char *why = NULL;
                up[3] = *p;
                assert_int_equal(debver_check(up, &why), -EINVAL);
                assert_string_equal(why, "invalid character in version number");
        }
        for (const char *p = "!#@$%&/|\\<>()[]{}:;,_=*^'\"-"; *p; p++) {
                const char *why = NULL;
                rev[4] = *p;
                int r = debver_check(rev, &why);
                if (*p == '-') {
                        /* "0:0--": the last '-' leaves an empty revision */
                        assert_int_equal(r, -EINVAL);
                        assert_string_equal(why, "revision number is empty");
                        continue;
                }
                assert_int_equal(r, -EINVAL);
                assert_string_equal(why, "invalid character in revision number");
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cmp_table),
                cmocka_unit_test(test_cmp_chain),
                cmocka_unit_test(test_cmp_huge),
                cmocka_unit_test(test_cmp_lenient),
                cmocka_unit_test(test_satisfies),
                cmocka_unit_test(test_check_valid),
                cmocka_unit_test(test_check_invalid),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
