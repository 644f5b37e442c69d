/* SPDX-License-Identifier: MIT */
/* deb822 paragraphs (Debian policy §5.1, deb822(5)) as Release and Packages files use them.
 *
 * Threats: the text comes from a mirror. A NUL or CR byte could make C string code downstream
 * see another value than we checked, a folded line or a comment could smuggle a field past a
 * line-based reader, a field given twice could mean different things to us and to apt. All of
 * these are errors here, with the line they are on. Values stay views into the caller's buffer:
 * nothing is allocated, and every read is bounded by len. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../util/err.h"
#include "arena.h"
#include "index.h"

/* How much text past the current line is searched for NUL and CR at a time (one memchr each). */
#define SCAN_WINDOW ((size_t)64 * 1024)

static int fail(const struct deb822_iter *it, unsigned line, struct mkm_err *reterr, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int fail(const struct deb822_iter *it, unsigned line, struct mkm_err *reterr, const char *fmt, ...) {
        char why[512];
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        return mkm_err_set(reterr, -MKM_E_PARSE, "%s:%u: %s", it->label ? it->label : "(text)", line, why);
}

void deb822_iter_init(struct deb822_iter *it, const char *text, size_t len, const char *label) {
        *it = (struct deb822_iter){
                .text = text,
                .len = len,
                .label = label,
                .pos = 0,
                .line = 1,
                .checked_ = 0,
                .bad_ = SIZE_MAX,
                .max_value = DEB_FIELD_MAX,
        };
}

/* The end of the line starting at p (offset of its '\n', or len), after making sure the line
 * holds no NUL and no CR. */
static int line_end(struct deb822_iter *it, size_t p, unsigned line, size_t *ret_end, struct mkm_err *reterr) {
        const char *t = it->text;
        const char *nl = memchr(t + p, '\n', it->len - p);
        size_t e = nl ? (size_t)(nl - t) : it->len;

        if (it->checked_ < p)
                it->checked_ = p;
        if (e >= it->checked_ && it->bad_ == SIZE_MAX) {
                size_t from = it->checked_;
                size_t upto = e + 1;
                if (upto - from < SCAN_WINDOW)
                        upto = from + SCAN_WINDOW;
                if (upto > it->len)
                        upto = it->len;
                const char *z = memchr(t + from, '\0', upto - from);
                const char *cr = memchr(t + from, '\r', (z ? (size_t)(z - t) : upto) - from);
                if (cr)
                        it->bad_ = (size_t)(cr - t);
                else if (z)
                        it->bad_ = (size_t)(z - t);
                it->checked_ = upto;
        }
        if (it->bad_ >= p && it->bad_ < e)
                return fail(it, line, reterr, "%s",
                            t[it->bad_] == '\r' ? "carriage return (lines end with LF alone)" : "NUL byte");
        *ret_end = e;
        return 0;
}

static bool blank_line(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (s[i] != ' ' && s[i] != '\t')
                        return false;
        return true;
}

static inline unsigned lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32u : c; }

static bool same_name(const char *a, const char *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
                        return false;
        return true;
}

/* A 64-bit filter over the names seen in a paragraph, so that the duplicate check compares
 * names only when it has to. */
static inline uint64_t name_bit(const char *s, size_t n) {
        unsigned h = (unsigned)n * 7u + lower((unsigned char)s[0]) * 3u + lower((unsigned char)s[n - 1]);
        return (uint64_t)1 << (h & 63);
}

int deb822_iter_next(struct deb822_iter *it, struct deb822_field *ret, size_t max, size_t *ret_n,
                     struct mkm_err *reterr) {
        const char *t = it->text;
        size_t len = it->len, p = it->pos, e, n = 0;
        unsigned line = it->line;
        uint64_t seen = 0;
        int r;

        if (p > len)
                return mkm_err_set(reterr, -EINVAL, "%s: position past the end", it->label ? it->label : "(text)");

        /* Blank lines (and comments where allowed) before the paragraph. */
        for (;;) {
                if (p >= len) {
                        it->pos = p;
                        it->line = line;
                        *ret_n = 0;
                        return 0;
                }
                if ((r = line_end(it, p, line, &e, reterr)) < 0)
                        return r;
                if (!blank_line(t + p, e - p) && !(it->allow_comments && t[p] == '#'))
                        break;
                p = e + 1;
                line++;
        }

        for (; p < len; p = e + 1, line++) {
                if ((r = line_end(it, p, line, &e, reterr)) < 0)
                        return r;
                const char *s = t + p;
                size_t ll = e - p;

                if (blank_line(s, ll)) {
                        /* the separator belongs to this paragraph */
                        p = e + 1;
                        line++;
                        break;
                }
                if (s[0] == ' ' || s[0] == '\t') {
                        if (n == 0)
                                return fail(it, line, reterr, "continuation line without a field before it");
                        struct deb822_field *f = &ret[n - 1];
                        if ((size_t)(t + e - f->value) > it->max_value)
                                return fail(it, f->line, reterr, "field '%.*s' longer than %zu bytes", (int)f->name_len,
                                            f->name, it->max_value);
                        f->value_len = (size_t)(t + e - f->value);
                        continue;
                }
                if (s[0] == '#') {
                        if (it->allow_comments)
                                continue;
                        return fail(it, line, reterr, "comment line ('#') where only fields may be");
                }
                if (s[0] == '-')
                        return fail(it, line, reterr, "field name starts with '-' (a PGP armor line?)");

                const char *colon = memchr(s, ':', ll);
                if (!colon)
                        return fail(it, line, reterr, "not a 'Name: value' line, a continuation or a blank line");
                size_t nl = (size_t)(colon - s);
                if (nl == 0)
                        return fail(it, line, reterr, "empty field name");
                for (size_t i = 0; i < nl; i++)
                        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
                                return fail(it, line, reterr, "byte 0x%02x in field name", (unsigned char)s[i]);
                uint64_t bit = name_bit(s, nl);
                if (seen & bit) {
                        for (size_t j = 0; j < n; j++)
                                if (ret[j].name_len == nl && same_name(ret[j].name, s, nl))
                                        return fail(it, line, reterr, "field '%.*s' given twice (first on line %u)",
                                                    (int)nl, s, ret[j].line);
                }
                seen |= bit;
                if (n >= max)
                        return fail(it, line, reterr, "more than %zu fields in one paragraph", max);

                size_t v = nl + 1;
                while (v < ll && (s[v] == ' ' || s[v] == '\t'))
                        v++;
                if (ll - v > it->max_value)
                        return fail(it, line, reterr, "field '%.*s' longer than %zu bytes", (int)nl, s, it->max_value);
                ret[n++] = (struct deb822_field){
                        .name = s,
                        .name_len = nl,
                        .value = s + v,
                        .value_len = ll - v,
                        .line = line,
                };
        }
        if (p > len)
                p = len;

        /* Trailing blanks of each value go (inner lines keep theirs). */
        for (size_t j = 0; j < n; j++) {
                struct deb822_field *f = &ret[j];
                while (f->value_len > 0 && (f->value[f->value_len - 1] == ' ' || f->value[f->value_len - 1] == '\t'))
                        f->value_len--;
        }
        it->pos = p;
        it->line = line;
        *ret_n = n;
        return 1;
}

int deb822_next(const char *text, size_t len, size_t *pos, const char *label, struct deb822_field *ret, size_t max,
                size_t *ret_n, struct mkm_err *reterr) {
        struct deb822_iter it;
        int r;

        deb822_iter_init(&it, text, len, label);
        if (*pos > len)
                return mkm_err_set(reterr, -EINVAL, "%s: position past the end", label ? label : "(text)");
        for (const char *q = text, *end = text + *pos; (q = memchr(q, '\n', (size_t)(end - q))); q++)
                it.line++;
        it.pos = *pos;
        r = deb822_iter_next(&it, ret, max, ret_n, reterr);
        if (r >= 0)
                *pos = it.pos;
        return r;
}

const struct deb822_field *deb822_find(const struct deb822_field *f, size_t n, const char *name) {
        size_t len = strlen(name);
        for (size_t i = 0; i < n; i++)
                if (f[i].name_len == len && deb_ascii_ieq(f[i].name, len, name))
                        return &f[i];
        return NULL;
}
