/* SPDX-License-Identifier: MIT */
/* Debian version comparison and validation, written to agree with dpkg 1.21 (lib/dpkg/version.c
 * verrevcmp and dpkg_version_compare, lib/dpkg/parsehelp.c parseversion, src/main/enquiry.c
 * cmpversions; deb-version(7)). tests/integration/debian-vercmp-oracle.sh checks it against the
 * real `dpkg --compare-versions` on every version of bookworm's main index.
 *
 * A version is "[epoch:]upstream[-revision]": the epoch is everything before the first ':', the
 * revision everything after the last '-'. Upstream and revision are compared alike: alternate
 * runs of non-digits and digits; in a non-digit run '~' sorts before everything (even the end of
 * the string), then the end, then letters, then every other byte; digit runs compare as numbers.
 *
 * Versions come from untrusted indexes, so nothing here converts digits to an integer: digit runs
 * (epochs included) are compared as strings without their leading zeros, which cannot overflow
 * however long they are. Everything works on (pointer, length) views of the caller's string: no
 * allocation, no failure, linear time.
 *
 * Versions dpkg refuses still get a deterministic order (a total preorder, so sorting works):
 * parse_lenient() below says how each refused form is read. */
#include "version.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

struct view {
        const char *p;
        size_t n;
};

/* dpkg's c_isdigit/c_isalpha/c_isblank/c_isspace: ASCII only, whatever the locale. */
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_blank(char c) { return c == ' ' || c == '\t'; }
static bool is_space(char c) { return is_blank(c) || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

/* A version split as dpkg's parseversion() splits it. */
struct debver {
        bool blank;             /* NULL or "": dpkg --compare-versions' "no version" */
        struct view epoch;      /* digits without leading zeros; empty means 0 */
        struct view upstream;
        struct view revision;   /* empty when there is no '-' */
};

/* The token dpkg looks at: leading blanks skipped, up to the next blank. dpkg refuses a second
 * word ("embedded spaces"); leniently it is ignored. */
static struct view token(const char *s) {
        while (*s && is_blank(*s))
                s++;
        const char *e = s;
        while (*e && !is_blank(*e))
                e++;
        return (struct view){ s, (size_t)(e - s) };
}

/* Split like parseversion(), without refusing anything:
 * - the epoch is what strtol() reads before the first ':' (dpkg lets strtol skip \n\v\f\r and
 *   take a sign, so "+1:2" has epoch 1 and "-0:2" epoch 0); an epoch dpkg refuses as empty, not
 *   a number or negative counts as absent, and the whole token is the upstream version; an epoch
 *   too big for dpkg is still compared by its digits;
 * - an empty revision ("1.0-") or upstream ("1:", "-1") is just empty. */
static struct debver parse_lenient(const char *s) {
        struct debver v = {};
        if (!s || !*s) {
                v.blank = true;
                return v;
        }
        struct view t = token(s);
        const char *end = t.p + t.n, *up = t.p;

        const char *colon = memchr(t.p, ':', t.n);
        if (colon) {
                const char *p = t.p;
                while (p < colon && is_space(*p))
                        p++;
                bool negative = p < colon && *p == '-';
                if (p < colon && (*p == '+' || *p == '-'))
                        p++;
                const char *digits = p;
                while (p < colon && is_digit(*p))
                        p++;
                if (p == colon && p > digits) {
                        while (digits < colon && *digits == '0')
                                digits++;
                        if (!negative || digits == colon) {
                                v.epoch = (struct view){ digits, (size_t)(colon - digits) };
                                up = colon + 1;
                        }
                }
        }

        const char *hyphen = NULL;
        for (const char *p = up; p < end; p++)
                if (*p == '-')
                        hyphen = p;
        if (hyphen) {
                v.upstream = (struct view){ up, (size_t)(hyphen - up) };
                v.revision = (struct view){ hyphen + 1, (size_t)(end - hyphen - 1) };
        } else
                v.upstream = (struct view){ up, (size_t)(end - up) };
        return v;
}

/* The weight of one byte of a non-digit run; the end of the string weighs 0 like a digit.
 * dpkg computes c + 256 from a plain char, which is signed on amd64: a byte >= 0x80 weighs
 * 128..255, after the letters but before the ASCII punctuation (which weighs 288..382). We
 * reproduce amd64's answer on every architecture. */
static int weight(char c) {
        if (is_digit(c))
                return 0;
        if (is_alpha(c))
                return c;
        if (c == '~')
                return -1;
        return (signed char)c + 256;
}

/* dpkg's verrevcmp on views: -1, 0 or 1. */
static int verrevcmp(struct view a, struct view b) {
        size_t i = 0, j = 0;

        while (i < a.n || j < b.n) {
                /* The non-digit runs, byte by byte. Equal weights mean both sides hold the same
                 * non-digit byte (the end weighs 0, every non-digit byte something else), so
                 * neither index runs past its end. */
                while ((i < a.n && !is_digit(a.p[i])) || (j < b.n && !is_digit(b.p[j]))) {
                        int wa = i < a.n ? weight(a.p[i]) : 0;
                        int wb = j < b.n ? weight(b.p[j]) : 0;
                        if (wa != wb)
                                return wa < wb ? -1 : 1;
                        i++;
                        j++;
                }

                /* The digit runs, as numbers: without leading zeros, the longer run is larger;
                 * at equal length the first differing digit decides. */
                while (i < a.n && a.p[i] == '0')
                        i++;
                while (j < b.n && b.p[j] == '0')
                        j++;
                int first_diff = 0;
                while (i < a.n && j < b.n && is_digit(a.p[i]) && is_digit(b.p[j])) {
                        if (first_diff == 0)
                                first_diff = a.p[i] - b.p[j];
                        i++;
                        j++;
                }
                if (i < a.n && is_digit(a.p[i]))
                        return 1;
                if (j < b.n && is_digit(b.p[j]))
                        return -1;
                if (first_diff != 0)
                        return first_diff < 0 ? -1 : 1;
        }
        return 0;
}

/* Epochs are digit strings without leading zeros: the longer is larger, else bytewise. */
static int epochcmp(struct view a, struct view b) {
        if (a.n != b.n)
                return a.n < b.n ? -1 : 1;
        if (a.n == 0)
                return 0;       /* both absent: the views' pointers are NULL */
        int r = memcmp(a.p, b.p, a.n);
        return r < 0 ? -1 : r > 0 ? 1 : 0;
}

int debver_cmp(const char *a, const char *b) {
        struct debver va = parse_lenient(a), vb = parse_lenient(b);

        /* As dpkg --compare-versions: no version is older than any version. (dpkg's
         * dpkg_version_compare alone would find "" equal to "0".) */
        if (va.blank || vb.blank)
                return va.blank == vb.blank ? 0 : va.blank ? -1 : 1;

        int r = epochcmp(va.epoch, vb.epoch);
        if (r != 0)
                return r;
        r = verrevcmp(va.upstream, vb.upstream);
        if (r != 0)
                return r;
        return verrevcmp(va.revision, vb.revision);
}

bool debver_satisfies(const char *version, enum deb_relop op, const char *ref) {
        if (op == DEB_REL_ANY)
                return true;

        int r = debver_cmp(version, ref);
        switch (op) {
        case DEB_REL_LT:
                return r < 0;
        case DEB_REL_LE:
                return r <= 0;
        case DEB_REL_EQ:
                return r == 0;
        case DEB_REL_GE:
                return r >= 0;
        case DEB_REL_GT:
                return r > 0;
        case DEB_REL_ANY:
                break;
        }
        return false;   /* not an operator: nothing satisfies it */
}

static int invalid(const char **ret_why, const char *why) {
        if (ret_why)
                *ret_why = why;
        return -EINVAL;
}

/* The checks of parseversion(), in its order, with its messages; dpkg only warns about the last
 * three, but a repository version that fails them is as wrong as the others. One difference:
 * dpkg reads the epoch with strtol(), which also takes a sign and leading white space; we want
 * plain digits. */
int debver_check(const char *v, const char **ret_why) {
        if (!v)
                return invalid(ret_why, "version string is empty");

        struct view t = token(v);
        if (t.n == 0)
                return invalid(ret_why, "version string is empty");
        const char *end = t.p + t.n;
        for (const char *p = end; *p; p++)
                if (!is_blank(*p))
                        return invalid(ret_why, "version string has embedded spaces");

        const char *up = t.p;
        const char *colon = memchr(t.p, ':', t.n);
        if (colon) {
                if (colon == t.p)
                        return invalid(ret_why, "epoch in version is empty");
                for (const char *p = t.p; p < colon; p++)
                        if (!is_digit(*p))
                                return invalid(ret_why, "epoch in version is not number");
                const char *d = t.p;
                while (d < colon - 1 && *d == '0')
                        d++;
                /* INT_MAX has 10 digits; compare at most that many as text. */
                if (colon - d > 10 || (colon - d == 10 && memcmp(d, "2147483647", 10) > 0))
                        return invalid(ret_why, "epoch in version is too big");
                if (colon + 1 == end)
                        return invalid(ret_why, "nothing after colon in version number");
                up = colon + 1;
        }

        const char *hyphen = NULL;
        for (const char *p = up; p < end; p++)
                if (*p == '-')
                        hyphen = p;
        if (hyphen && hyphen + 1 == end)
                return invalid(ret_why, "revision number is empty");
        const char *up_end = hyphen ? hyphen : end;

        if (up == up_end)
                return invalid(ret_why, "version number is empty");
        if (!is_digit(*up))
                return invalid(ret_why, "version number does not start with digit");
        for (const char *p = up + 1; p < up_end; p++)
                if (!is_digit(*p) && !is_alpha(*p) && !strchr(".-+~:", *p))
                        return invalid(ret_why, "invalid character in version number");
        if (hyphen)
                for (const char *p = hyphen + 1; p < end; p++)
                        if (!is_digit(*p) && !is_alpha(*p) && !strchr(".+~", *p))
                                return invalid(ret_why, "invalid character in revision number");
        return 0;
}
