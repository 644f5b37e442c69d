/* SPDX-License-Identifier: MIT */
/* Release files (the signed text of dists/SUITE/InRelease): the suite's identity and dates,
 * and the SHA256: list through which every index is trusted.
 *
 * Threats: the text has passed its signature check, but the key may be a third party's. A path
 * in the SHA256: list is joined to the mirror URL and the cache, so it is held to
 * deb_path_invalid() (no "..", no absolute path, no odd characters); a path listed twice could
 * be checked against one digest and used with the other, so it is an error; MD5Sum and SHA1
 * lists are never used, and a Release with only those is refused. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/cleanup.h"
#include "../util/err.h"
#include "../util/hashmap.h"
#include "../util/strv.h"
#include "arena.h"
#include "index.h"

/* ---- dates -------------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        y -= m <= 2;
        const int64_t era = (y >= 0 ? y : y - 399) / 400;
        const unsigned yoe = (unsigned)(y - era * 400);
        const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

static bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Reads exactly n digits at s[*i]. */
static bool digits(const char *s, size_t len, size_t *i, size_t min, size_t max, unsigned *ret) {
        size_t k = 0;
        unsigned v = 0;
        while (*i + k < len && k < max && s[*i + k] >= '0' && s[*i + k] <= '9') {
                v = v * 10 + (unsigned)(s[*i + k] - '0');
                k++;
        }
        if (k < min || (*i + k < len && s[*i + k] >= '0' && s[*i + k] <= '9'))
                return false;
        *i += k;
        *ret = v;
        return true;
}

static bool spaces(const char *s, size_t len, size_t *i) {
        size_t k = *i;
        while (k < len && s[k] == ' ')
                k++;
        if (k == *i)
                return false;
        *i = k;
        return true;
}

int deb_parse_date(const char *s, size_t len, int64_t *ret) {
        static const char months[12][4] = { "jan", "feb", "mar", "apr", "may", "jun",
                                            "jul", "aug", "sep", "oct", "nov", "dec" };
        static const char wdays[7][4] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
        static const unsigned mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        size_t i = 0;
        unsigned day, year, hh, mm, ss, mon = 0;

        if (!s)
                return -EINVAL;
        while (i < len && s[i] == ' ')
                i++;
        /* optional "Sat," */
        if (len - i >= 4 && s[i + 3] == ',') {
                size_t w;
                for (w = 0; w < 7; w++)
                        if (deb_ascii_ieq(s + i, 3, wdays[w]))
                                break;
                if (w == 7)
                        return -EINVAL;
                i += 4;
                if (!spaces(s, len, &i))
                        return -EINVAL;
        }
        if (!digits(s, len, &i, 1, 2, &day) || !spaces(s, len, &i))
                return -EINVAL;
        if (len - i < 3)
                return -EINVAL;
        for (mon = 0; mon < 12; mon++)
                if (deb_ascii_ieq(s + i, 3, months[mon]))
                        break;
        if (mon == 12)
                return -EINVAL;
        i += 3;
        if (!spaces(s, len, &i) || !digits(s, len, &i, 4, 4, &year) || !spaces(s, len, &i))
                return -EINVAL;
        if (!digits(s, len, &i, 2, 2, &hh) || i >= len || s[i++] != ':' || !digits(s, len, &i, 2, 2, &mm) ||
            i >= len || s[i++] != ':' || !digits(s, len, &i, 2, 2, &ss))
                return -EINVAL;
        if (year < 1970 || day < 1 || day > mdays[mon] + (mon == 1 && leap(year)) || hh > 23 || mm > 59 || ss > 60)
                return -EINVAL;
        if (!spaces(s, len, &i))
                return -EINVAL;

        int64_t offset = 0;
        size_t zl = len - i;
        const char *z = s + i;
        while (zl > 0 && z[zl - 1] == ' ')
                zl--;
        if ((zl == 3 && (memcmp(z, "UTC", 3) == 0 || memcmp(z, "GMT", 3) == 0)) || (zl == 1 && z[0] == 'Z'))
                offset = 0;
        else if (zl == 5 && (z[0] == '+' || z[0] == '-')) {
                size_t k = 1;
                unsigned oh, om;
                if (!digits(z, 3, &k, 2, 2, &oh) || (k = 3, !digits(z, 5, &k, 2, 2, &om)) || oh > 23 || om > 59)
                        return -EINVAL;
                offset = (int64_t)(oh * 3600 + om * 60) * (z[0] == '-' ? -1 : 1);
        } else
                return -EINVAL;

        *ret = days_from_civil(year, mon + 1, day) * 86400 + (int64_t)hh * 3600 + mm * 60 + ss - offset;
        return 0;
}

/* ---- Release ------------------------------------------------------------------------------ */

struct deb_release *deb_release_free(struct deb_release *r) {
        if (!r)
                return NULL;
        free(r->origin);
        free(r->label);
        free(r->suite);
        free(r->codename);
        free(r->version);
        strv_free(r->architectures);
        strv_free(r->components);
        for (size_t i = 0; i < r->n_files; i++)
                free(r->files[i].path);
        free(r->files);
        free(r);
        return NULL;
}

const struct deb_release_file *deb_release_find(const struct deb_release *r, const char *path) {
        if (!r || !path)
                return NULL;
        for (size_t i = 0; i < r->n_files; i++)
                if (strcmp(r->files[i].path, path) == 0)
                        return &r->files[i];
        return NULL;
}

struct rparser {
        const char *label;
        struct mkm_err *err;
};

static int rfail(const struct rparser *ps, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int rfail(const struct rparser *ps, unsigned line, const char *fmt, ...) {
        char why[1024];
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        return mkm_err_set(ps->err, -MKM_E_PARSE, "%s:%u: %s", ps->label, line, why);
}

static int rfail_value(const struct rparser *ps, const struct deb822_field *f, const char *why) {
        char snip[96];
        deb_snippet(snip, sizeof snip, f->value, f->value_len);
        return rfail(ps, f->line, "%.*s: %s: '%s'", (int)f->name_len, f->name, why, snip);
}

static int one_line(const struct rparser *ps, const struct deb822_field *f, char **ret) {
        for (size_t i = 0; i < f->value_len; i++) {
                unsigned char c = (unsigned char)f->value[i];
                if (c == '\n')
                        return rfail_value(ps, f, "value spans several lines");
                if (c < 0x20 || c == 0x7f)
                        return rfail_value(ps, f, "control character");
        }
        char *s = strndup(f->value, f->value_len);
        if (!s)
                return mkm_err_set(ps->err, -ENOMEM, "%s: out of memory", ps->label);
        free(*ret);
        *ret = s;
        return 0;
}

/* Architectures: and Components: (blank-separated words, possibly folded). */
static int word_list(const struct rparser *ps, const struct deb822_field *f, bool arch, char ***ret) {
        struct strv_builder b = { 0 };
        size_t i = 0, n = f->value_len;
        const char *v = f->value;
        int r = 0;

        for (;;) {
                while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n'))
                        i++;
                if (i >= n)
                        break;
                size_t e = i;
                while (e < n && v[e] != ' ' && v[e] != '\t' && v[e] != '\n')
                        e++;
                bool ok = arch ? deb_arch_valid(v + i, e - i) : deb_path_invalid(v + i, e - i) == NULL;
                if (!ok) {
                        r = rfail_value(ps, f, arch ? "invalid architecture" : "invalid component");
                        goto out;
                }
                if (b.n >= DEB_RELEASE_MAX_LIST) {
                        r = rfail(ps, f->line, "%.*s: more than %u words", (int)f->name_len, f->name, DEB_RELEASE_MAX_LIST);
                        goto out;
                }
                char *w = strndup(v + i, e - i);
                if (!w || (r = strv_builder_consume(&b, w)) < 0) {
                        free(w);
                        r = mkm_err_set(ps->err, -ENOMEM, "%s: out of memory", ps->label);
                        goto out;
                }
                i = e;
        }
        if (!b.l && !(b.l = calloc(1, sizeof(char *)))) {
                r = mkm_err_set(ps->err, -ENOMEM, "%s: out of memory", ps->label);
                goto out;
        }
        strv_free(*ret);
        *ret = TAKE_PTR(b.l);
out:
        strv_free(b.l);
        return r;
}

static int sha256_list(const struct rparser *ps, const struct deb822_field *f, struct deb_release *rel) {
        _cleanup_(hashmap_freep) struct hashmap *seen = hashmap_new();
        const char *v = f->value, *end = f->value + f->value_len;
        unsigned line = f->line;
        size_t cap = 0;
        int r;

        if (!seen)
                return mkm_err_set(ps->err, -ENOMEM, "%s: out of memory", ps->label);
        for (const char *p = v; p < end; line++) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *le = nl ? nl : end;
                const char *w[4];
                size_t wl[4], nw = 0;

                for (const char *q = p; q < le;) {
                        while (q < le && (*q == ' ' || *q == '\t'))
                                q++;
                        if (q >= le)
                                break;
                        const char *s = q;
                        while (q < le && *q != ' ' && *q != '\t')
                                q++;
                        if (nw == 4)
                                break;
                        w[nw] = s;
                        wl[nw++] = (size_t)(q - s);
                }
                p = nl ? nl + 1 : end;
                if (nw == 0)
                        continue;       /* the empty first line */
                if (nw != 3)
                        return rfail(ps, line, "SHA256: line of %s%zu words, not 'digest size path'", nw == 4 ? "more than " : "",
                                     nw == 4 ? (size_t)3 : nw);
                if (rel->n_files >= DEB_RELEASE_MAX_FILES)
                        return rfail(ps, line, "SHA256: more than %u files", DEB_RELEASE_MAX_FILES);
                struct deb_release_file file = { 0 };
                if (!deb_parse_sha256(w[0], wl[0], file.sha256))
                        return rfail(ps, line, "SHA256: digest is not 64 hex digits");
                if (!deb_parse_u64(w[1], wl[1], &file.size))
                        return rfail(ps, line, "SHA256: size is not a number");
                const char *why = deb_path_invalid(w[2], wl[2]);
                if (why) {
                        char snip[96];
                        deb_snippet(snip, sizeof snip, w[2], wl[2]);
                        return rfail(ps, line, "SHA256: %s: '%s'", why, snip);
                }
                if ((r = mkm_grow((void **)&rel->files, &cap, rel->n_files, sizeof *rel->files, 64)) < 0 ||
                    !(file.path = strndup(w[2], wl[2])))
                        return mkm_err_set(ps->err, -ENOMEM, "%s: out of memory", ps->label);
                rel->files[rel->n_files++] = file;
                if (hashmap_contains(seen, file.path))
                        return rfail(ps, line, "SHA256: '%s' listed twice", file.path);
                if ((r = hashmap_put(seen, file.path, NULL)) < 0)
                        return mkm_err_set(ps->err, r, "%s: out of memory", ps->label);
        }
        return 0;
}

int deb_release_parse(const char *text, size_t len, const char *label, struct deb_release **ret,
                      struct mkm_err *reterr) {
        _cleanup_(deb_release_freep) struct deb_release *rel = NULL;
        struct deb822_field fields[DEB_PKG_MAX_FIELDS];
        struct rparser ps = { .label = label ? label : "Release", .err = reterr };
        struct deb822_iter it;
        size_t nf;
        int r;

        if (len > DEB_RELEASE_MAX)
                return mkm_err_set(reterr, -E2BIG, "%s: %zu bytes, more than the limit of %zu", ps.label, len,
                                   DEB_RELEASE_MAX);
        deb822_iter_init(&it, text, len, ps.label);
        it.max_value = DEB_RELEASE_MAX;
        if ((r = deb822_iter_next(&it, fields, ELEMENTSOF(fields), &nf, reterr)) < 0)
                return r;
        if (r == 0)
                return mkm_err_set(reterr, -MKM_E_PARSE, "%s: empty", ps.label);
        /* Only blank lines may follow. */
        unsigned line = it.line;
        for (size_t i = it.pos; i < len; i++) {
                if (text[i] == '\n')
                        line++;
                else if (text[i] != ' ' && text[i] != '\t')
                        return rfail(&ps, line, "a second paragraph (a Release has one)");
        }

        if (!(rel = calloc(1, sizeof *rel)))
                return mkm_err_set(reterr, -ENOMEM, "%s: out of memory", ps.label);
        rel->date = rel->valid_until = -1;

        bool have_sha256 = false;
        for (size_t i = 0; i < nf; i++) {
                const struct deb822_field *f = &fields[i];
                const char *nm = f->name;
                size_t nl = f->name_len;
                r = 0;
                if (deb_ascii_ieq(nm, nl, "Origin"))
                        r = one_line(&ps, f, &rel->origin);
                else if (deb_ascii_ieq(nm, nl, "Label"))
                        r = one_line(&ps, f, &rel->label);
                else if (deb_ascii_ieq(nm, nl, "Suite"))
                        r = one_line(&ps, f, &rel->suite);
                else if (deb_ascii_ieq(nm, nl, "Codename"))
                        r = one_line(&ps, f, &rel->codename);
                else if (deb_ascii_ieq(nm, nl, "Version"))
                        r = one_line(&ps, f, &rel->version);
                else if (deb_ascii_ieq(nm, nl, "Date") || deb_ascii_ieq(nm, nl, "Valid-Until")) {
                        int64_t *t = nm[0] == 'D' || nm[0] == 'd' ? &rel->date : &rel->valid_until;
                        if (deb_parse_date(f->value, f->value_len, t) < 0)
                                r = rfail_value(&ps, f, "not a date like 'Sat, 10 Aug 2024 09:54:18 UTC'");
                } else if (deb_ascii_ieq(nm, nl, "Acquire-By-Hash")) {
                        int v = deb_parse_yesno(f->value, f->value_len);
                        if (v < 0)
                                r = rfail_value(&ps, f, "not yes or no");
                        rel->acquire_by_hash = v > 0;
                } else if (deb_ascii_ieq(nm, nl, "Architectures"))
                        r = word_list(&ps, f, true, &rel->architectures);
                else if (deb_ascii_ieq(nm, nl, "Components"))
                        r = word_list(&ps, f, false, &rel->components);
                else if (deb_ascii_ieq(nm, nl, "SHA256")) {
                        r = sha256_list(&ps, f, rel);
                        have_sha256 = true;
                }
                if (r < 0)
                        return r;
        }
        if (!have_sha256)
                return rfail(&ps, fields[0].line, "no SHA256 list (MD5Sum and SHA1 are not trusted)");
        if (!rel->architectures && !(rel->architectures = calloc(1, sizeof(char *))))
                return mkm_err_set(reterr, -ENOMEM, "%s: out of memory", ps.label);
        if (!rel->components && !(rel->components = calloc(1, sizeof(char *))))
                return mkm_err_set(reterr, -ENOMEM, "%s: out of memory", ps.label);
        *ret = TAKE_PTR(rel);
        return 0;
}
