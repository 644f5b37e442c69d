/* SPDX-License-Identifier: MIT */
/* pacman version comparison and dependency strings.
 *
 * The comparison reproduces libalpm's alpm_pkg_vercmp bit for bit (tests/integration/
 * vercmp-oracle.sh checks it against the real vercmp): split "[epoch:]version[-release]", then
 * compare each part with rpm's segment algorithm. Quirks kept on purpose because pacman has them:
 * separators are any non-alphanumeric bytes (there is no '~' or '^' special case), a run of
 * separators longer than the other side's wins, a numeric segment beats an alpha one, a trailing
 * alpha segment loses against the end of the string, and the release is compared only when both
 * sides have one. Classification is ASCII only, as pacman's isalnum() in the C locale. This
 * implementation works on (pointer, length) views and never allocates. */
#include "vercmp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/cleanup.h"
#include "../util/err.h"

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }

struct view {
        const char *p;
        size_t n;
};

static int sign(int v) { return v < 0 ? -1 : v > 0 ? 1 : 0; }

/* rpm's segment comparison over two views (libalpm version.c rpmvercmp). */
static int segcmp(struct view a, struct view b) {
        if (a.n == b.n && memcmp(a.p, b.p, a.n) == 0)
                return 0;

        const char *ae = a.p + a.n, *be = b.p + b.n;
        const char *one = a.p, *two = b.p;      /* start of the current segment */
        const char *end1 = a.p, *end2 = b.p;    /* end of the previous segment */

        while (one < ae && two < be) {
                while (one < ae && !is_alnum(*one))
                        one++;
                while (two < be && !is_alnum(*two))
                        two++;
                if (one >= ae || two >= be)
                        break;

                /* Different separator run lengths decide on their own. */
                if (one - end1 != two - end2)
                        return one - end1 < two - end2 ? -1 : 1;

                end1 = one;
                end2 = two;
                bool isnum = is_digit(*one);
                if (isnum) {
                        while (end1 < ae && is_digit(*end1))
                                end1++;
                        while (end2 < be && is_digit(*end2))
                                end2++;
                } else {
                        while (end1 < ae && is_alpha(*end1))
                                end1++;
                        while (end2 < be && is_alpha(*end2))
                                end2++;
                }

                /* b's segment has the other type (it is empty as scanned): numbers are newer. */
                if (two == end2)
                        return isnum ? 1 : -1;

                if (isnum) {
                        while (one < end1 && *one == '0')
                                one++;
                        while (two < end2 && *two == '0')
                                two++;
                        if (end1 - one != end2 - two)
                                return end1 - one > end2 - two ? 1 : -1;
                }

                size_t l1 = (size_t)(end1 - one), l2 = (size_t)(end2 - two);
                int rc = memcmp(one, two, l1 < l2 ? l1 : l2);
                if (rc != 0)
                        return sign(rc);
                if (l1 != l2)
                        return l1 < l2 ? -1 : 1;

                one = end1;
                two = end2;
        }

        /* Everything compared equal; only the separators differed. */
        if (one >= ae && two >= be)
                return 0;

        /* A remaining alpha segment never beats the end of the other string:
         * a ended and b goes on with a non-alpha -> b newer; a goes on with an alpha -> b newer;
         * otherwise a is newer. */
        if ((one >= ae && !is_alpha(*two)) || (one < ae && is_alpha(*one)))
                return -1;
        return 1;
}

struct evr {
        struct view e, v, r;
        bool has_r;
};

/* libalpm's parseEVR: leading digits followed by ':' are the epoch (empty -> "0"); the last '-'
 * after those digits starts the release. */
static void parse_evr(const char *s, struct evr *ret) {
        size_t len = strlen(s);
        const char *p = s;
        while (is_digit(*p))
                p++;
        const char *dash = strrchr(p, '-');

        const char *vstart;
        if (*p == ':') {
                ret->e = p == s ? (struct view){ "0", 1 } : (struct view){ s, (size_t)(p - s) };
                vstart = p + 1;
        } else {
                ret->e = (struct view){ "0", 1 };
                vstart = s;
        }
        if (dash) {
                ret->v = (struct view){ vstart, (size_t)(dash - vstart) };
                ret->r = (struct view){ dash + 1, (size_t)(s + len - (dash + 1)) };
                ret->has_r = true;
        } else {
                ret->v = (struct view){ vstart, (size_t)(s + len - vstart) };
                ret->r = (struct view){ "", 0 };
                ret->has_r = false;
        }
}

int alpm_vercmp(const char *a, const char *b) {
        if (!a || !b)
                return a ? 1 : b ? -1 : 0;
        if (strcmp(a, b) == 0)
                return 0;

        struct evr x, y;
        parse_evr(a, &x);
        parse_evr(b, &y);

        int r = segcmp(x.e, y.e);
        if (r == 0)
                r = segcmp(x.v, y.v);
        if (r == 0 && x.has_r && y.has_r)
                r = segcmp(x.r, y.r);
        return r;
}

static const char *const op_strings[_VERCMP_OP_MAX] = {
        [VERCMP_ANY] = "", [VERCMP_EQ] = "=", [VERCMP_LT] = "<",
        [VERCMP_LE] = "<=", [VERCMP_GT] = ">", [VERCMP_GE] = ">=",
};

const char *vercmp_op_to_string(enum vercmp_op op) {
        if ((int)op < 0 || op >= _VERCMP_OP_MAX)
                return NULL;
        return op_strings[op];
}

bool vercmp_satisfies(const char *version, enum vercmp_op op, const char *wanted) {
        if (op == VERCMP_ANY)
                return true;
        int c = alpm_vercmp(version, wanted);
        switch (op) {
        case VERCMP_EQ:
                return c == 0;
        case VERCMP_LT:
                return c < 0;
        case VERCMP_LE:
                return c <= 0;
        case VERCMP_GT:
                return c > 0;
        case VERCMP_GE:
                return c >= 0;
        default:
                return false;
        }
}

bool vercmp_name_is_valid(const char *name) {
        size_t n = strlen(name);
        if (n == 0 || n > 255 || name[0] == '-' || name[0] == '.')
                return false;
        for (const char *p = name; *p; p++)
                if (!is_alnum(*p) && !strchr("@._+-", *p))
                        return false;
        return true;
}

static bool is_verchar(char c) { return is_alnum(c) || (c != 0 && strchr("._+~@", c)); }

bool vercmp_version_is_valid(const char *version) {
        size_t n = strlen(version);
        if (n == 0 || n > 255)
                return false;
        const char *colon = strchr(version, ':');
        const char *p = version;
        if (colon) {
                if (colon == version || strchr(colon + 1, ':'))
                        return false;
                for (; p < colon; p++)
                        if (!is_digit(*p))
                                return false;
                p = colon + 1;
        }
        const char *dash = strchr(p, '-');
        if (dash && (dash == p || dash[1] == 0 || strchr(dash + 1, '-')))
                return false;
        if (*p == 0)
                return false;
        for (; *p; p++)
                if (!is_verchar(*p) && *p != '-')
                        return false;
        return true;
}

bool vercmp_pkg_version_is_valid(const char *version) {
        if (!vercmp_version_is_valid(version))
                return false;
        const char *dash = strchr(version, '-');
        if (!dash)
                return false;
        /* pkgrel: digits, optionally ".digits". */
        const char *p = dash + 1;
        if (!is_digit(*p))
                return false;
        while (is_digit(*p))
                p++;
        if (*p == '.') {
                p++;
                if (!is_digit(*p))
                        return false;
                while (is_digit(*p))
                        p++;
        }
        return *p == 0;
}

void vercmp_dep_done(struct vercmp_dep *d) {
        if (!d)
                return;
        free(d->name);
        free(d->version);
        free(d->desc);
        *d = (struct vercmp_dep){};
}

int vercmp_dep_parse(const char *s, struct vercmp_dep *ret, struct mkm_err *reterr) {
        /* The description starts at ": " (with the space, so an epoch's ':' is not taken). */
        const char *desc = strstr(s, ": ");
        size_t deplen = desc ? (size_t)(desc - s) : strlen(s);

        enum vercmp_op op = VERCMP_ANY;
        const char *opp, *ver = NULL;
        if ((opp = memchr(s, '<', deplen))) {
                op = opp[1] == '=' ? VERCMP_LE : VERCMP_LT;
                ver = opp + (op == VERCMP_LE ? 2 : 1);
        } else if ((opp = memchr(s, '>', deplen))) {
                op = opp[1] == '=' ? VERCMP_GE : VERCMP_GT;
                ver = opp + (op == VERCMP_GE ? 2 : 1);
        } else if ((opp = memchr(s, '=', deplen))) {
                op = VERCMP_EQ;
                ver = opp + 1;
        } else
                opp = s + deplen;

        _cleanup_free_ char *name = strndup(s, (size_t)(opp - s));
        _cleanup_free_ char *version = ver ? strndup(ver, (size_t)(s + deplen - ver)) : NULL;
        _cleanup_free_ char *description = desc ? strdup(desc + 2) : NULL;
        if (!name || (ver && !version) || (desc && !description))
                return mkm_err_set(reterr, -ENOMEM, "dependency '%s': out of memory", s);

        if (name[0] == 0)
                return mkm_err_set(reterr, -MKM_E_PARSE, "dependency '%s': empty name", s);
        if (!vercmp_name_is_valid(name))
                return mkm_err_set(reterr, -MKM_E_PARSE, "dependency '%s': invalid name '%s'", s, name);
        if (version && version[0] == 0)
                return mkm_err_set(reterr, -MKM_E_PARSE, "dependency '%s': empty version after '%s'", s,
                                   vercmp_op_to_string(op));
        if (version && !vercmp_version_is_valid(version))
                return mkm_err_set(reterr, -MKM_E_PARSE, "dependency '%s': invalid version '%s'", s, version);

        *ret = (struct vercmp_dep){
                .name = TAKE_PTR(name),
                .op = op,
                .version = TAKE_PTR(version),
                .desc = TAKE_PTR(description),
        };
        return 0;
}

char *vercmp_dep_to_string(const struct vercmp_dep *d) {
        char *s = NULL;
        const char *op = vercmp_op_to_string(d->op);
        if (!op)
                return NULL;
        if (asprintf(&s, "%s%s%s%s%s", d->name, op, d->op != VERCMP_ANY && d->version ? d->version : "",
                     d->desc ? ": " : "", d->desc ? d->desc : "") < 0)
                return NULL;
        return s;
}

bool vercmp_dep_satisfied_by(const struct vercmp_dep *dep, const char *name, const char *version,
                             char *const *provides) {
        if (strcmp(dep->name, name) == 0 && vercmp_satisfies(version, dep->op, dep->version))
                return true;
        for (char *const *p = provides; p && *p; p++) {
                struct vercmp_dep prov;
                if (vercmp_dep_parse(*p, &prov, NULL) < 0)
                        continue;
                bool ok = false;
                if (strcmp(prov.name, dep->name) == 0) {
                        if (dep->op == VERCMP_ANY)
                                ok = true;
                        else if (prov.op == VERCMP_EQ)
                                ok = vercmp_satisfies(prov.version, dep->op, dep->version);
                }
                vercmp_dep_done(&prov);
                if (ok)
                        return true;
        }
        return false;
}
