/* SPDX-License-Identifier: MIT */
/* Packages indexes (dists/SUITE/COMPONENT/binary-ARCH/Packages) into struct deb_index.
 *
 * Threats: the index is checked against the Release's sha256 before it comes here, but the
 * repository itself may be hostile (a co-tenant's recipe can name any repository and key).
 * Filename ends up in a URL and a cache path, so it is held to deb_path_invalid(); names,
 * versions and architectures are checked against Debian's character sets; every count and size
 * is capped (DEB_INDEX_MAX_*, DEB_FIELD_MAX, DEB_REL_MAX_*), a field given twice or a required
 * one missing is an error naming LABEL:LINE.
 *
 * Speed and memory: one pass over the text with the deb822 iterator; values are views until
 * they are kept, and kept strings go to the index's arena, interned (names and versions repeat:
 * ~370k relationship atoms in bookworm main/amd64 name ~135k distinct strings, ~110k distinct
 * atoms). Measured on bookworm main/amd64 (63,440 packages, 50 MB), -O2, 2 CPUs: ~0.3 s of CPU,
 * 36 MB (arena 19 MB, package array 15 MB, string set 2 MB); `deb-index-dump bench` in
 * tests/tools shows it. Most of the time goes to the two hash sets' cache misses and to page
 * faults on fresh memory. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/cleanup.h"
#include "../util/err.h"
#include "arena.h"
#include "index.h"

enum pf {
        PF_PACKAGE,
        PF_VERSION,
        PF_ARCHITECTURE,
        PF_FILENAME,
        PF_SIZE,
        PF_SHA256,
        PF_INSTALLED_SIZE,
        PF_PRIORITY,
        PF_MULTI_ARCH,
        PF_ESSENTIAL,
        PF_IMPORTANT,
        PF_PROTECTED,
        PF_SOURCE,
        PF_PRE_DEPENDS,
        PF_DEPENDS,
        PF_RECOMMENDS,
        PF_PROVIDES,
        PF_CONFLICTS,
        PF_BREAKS,
        _PF_MAX,
        _PF_NONE = -1,
};

#define PF(k, lit) [k] = { lit, sizeof(lit) - 1 }
static const struct {
        const char *name;
        size_t len;
} pf_fields[_PF_MAX] = {
        PF(PF_PACKAGE, "Package"),
        PF(PF_VERSION, "Version"),
        PF(PF_ARCHITECTURE, "Architecture"),
        PF(PF_FILENAME, "Filename"),
        PF(PF_SIZE, "Size"),
        PF(PF_SHA256, "SHA256"),
        PF(PF_INSTALLED_SIZE, "Installed-Size"),
        PF(PF_PRIORITY, "Priority"),
        PF(PF_MULTI_ARCH, "Multi-Arch"),
        PF(PF_ESSENTIAL, "Essential"),
        PF(PF_IMPORTANT, "Important"),
        PF(PF_PROTECTED, "Protected"),
        PF(PF_SOURCE, "Source"),
        PF(PF_PRE_DEPENDS, "Pre-Depends"),
        PF(PF_DEPENDS, "Depends"),
        PF(PF_RECOMMENDS, "Recommends"),
        PF(PF_PROVIDES, "Provides"),
        PF(PF_CONFLICTS, "Conflicts"),
        PF(PF_BREAKS, "Breaks"),
};
#undef PF

/* Which field a name is (ASCII case-insensitive, as dpkg): the length decides most of the ~20
 * fields of a paragraph without comparing a byte. */
static enum pf field_of(const char *s, size_t n) {
        for (int k = 0; k < _PF_MAX; k++)
                if (pf_fields[k].len == n && deb_ascii_ieq(s, n, pf_fields[k].name))
                        return (enum pf)k;
        return _PF_NONE;
}

struct parser {
        struct deb_index *x;
        struct deb_store *st;
        const char *label;
        struct rel_scratch sc;
        struct mkm_err *err;
};

static int fail(struct parser *ps, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct parser *ps, unsigned line, const char *fmt, ...) {
        char why[1024];
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        return mkm_err_set(ps->err, -MKM_E_PARSE, "%s:%u: %s", ps->label, line, why);
}

static int fail_value(struct parser *ps, const struct deb822_field *f, const char *why) {
        char snip[96];
        deb_snippet(snip, sizeof snip, f->value, f->value_len);
        return fail(ps, f->line, "%.*s: %s: '%s'", (int)f->name_len, f->name, why, snip);
}

static int parse_rel_field(struct parser *ps, const struct deb822_field *f, const char *pkg, struct deb_rel *rel) {
        const char *why = NULL;
        size_t at = 0;
        int r = rel_scan(f->value, f->value_len, &ps->sc, &why, &at);
        if (r == -MKM_E_PARSE) {
                /* the line the error is on, in a folded value */
                unsigned line = f->line;
                for (size_t i = 0; i < at && i < f->value_len; i++)
                        line += f->value[i] == '\n';
                char snip[96];
                size_t from = at > 40 ? at - 40 : 0;
                deb_snippet(snip, sizeof snip, f->value + from, f->value_len - from);
                return fail(ps, line, "package '%s': %.*s: %s at byte %zu ('%s%s')", pkg, (int)f->name_len, f->name, why,
                            at, from ? "..." : "", snip);
        }
        if (r < 0)
                return mkm_err_set(ps->err, r, "%s: out of memory", ps->label);
        if ((r = rel_store(ps->st, true, &ps->sc, rel)) < 0)
                return mkm_err_set(ps->err, r, "%s: out of memory", ps->label);
        return 0;
}

static const char *intern(struct parser *ps, const char *s, size_t n) {
        return intern_str(&ps->st->strs, &ps->st->mem, s, n);
}

static int parse_pkg(struct parser *ps, const struct deb822_field *fields, size_t nf, struct deb_pkg *p) {
        const struct deb822_field *by[_PF_MAX] = { 0 };
        unsigned line = fields[0].line;
        int r;

        for (size_t i = 0; i < nf; i++) {
                enum pf k = field_of(fields[i].name, fields[i].name_len);
                if (k != _PF_NONE)
                        by[k] = &fields[i];     /* deb822 already refused a field given twice */
        }

        static const enum pf required[] = { PF_PACKAGE, PF_VERSION, PF_ARCHITECTURE, PF_FILENAME, PF_SIZE, PF_SHA256 };
        const struct deb822_field *f = by[PF_PACKAGE];
        if (!f)
                return fail(ps, line, "paragraph without a Package field");
        if (memchr(f->value, '\n', f->value_len) || !deb_name_valid(f->value, f->value_len))
                return fail_value(ps, f, "invalid package name");
        char name[DEB_NAME_MAX + 1];
        memcpy(name, f->value, f->value_len);
        name[f->value_len] = 0;
        for (size_t i = 1; i < ELEMENTSOF(required); i++)
                if (!by[required[i]])
                        return fail(ps, line, "package '%s' has no %s field", name, pf_fields[required[i]].name);
        /* One-line fields: a folded value is an error. */
        for (enum pf k = 0; k < PF_PRE_DEPENDS; k++)
                if (by[k] && memchr(by[k]->value, '\n', by[k]->value_len))
                        return fail_value(ps, by[k], "value spans several lines");

        *p = (struct deb_pkg){ .index = ps->x->number, .priority = DEB_PRIO_UNKNOWN, .multi_arch = DEB_MA_NO };
        if (!(p->name = intern(ps, f->value, f->value_len)))
                goto oom;

        f = by[PF_VERSION];
        const char *why = deb_version_invalid(f->value, f->value_len);
        if (why)
                return fail_value(ps, f, why);
        if (!(p->version = intern(ps, f->value, f->value_len)))
                goto oom;

        f = by[PF_ARCHITECTURE];
        if (!deb_arch_valid(f->value, f->value_len))
                return fail_value(ps, f, "invalid architecture");
        if (!(p->arch = intern(ps, f->value, f->value_len)))
                goto oom;

        f = by[PF_FILENAME];
        if ((why = deb_path_invalid(f->value, f->value_len)))
                return fail_value(ps, f, why);
        if (!(p->filename = arena_strndup(&ps->st->mem, f->value, f->value_len)))
                goto oom;

        f = by[PF_SIZE];
        if (!deb_parse_u64(f->value, f->value_len, &p->size))
                return fail_value(ps, f, "not a size in bytes");
        f = by[PF_SHA256];
        if (!deb_parse_sha256(f->value, f->value_len, p->sha256))
                return fail_value(ps, f, "not 64 hex digits");

        if ((f = by[PF_INSTALLED_SIZE]) && !deb_parse_u64(f->value, f->value_len, &p->installed_size))
                return fail_value(ps, f, "not a size in KiB");

        if ((f = by[PF_PRIORITY])) {
                static const char *const prios[] = {
                        [DEB_PRIO_REQUIRED] = "required", [DEB_PRIO_IMPORTANT] = "important",
                        [DEB_PRIO_STANDARD] = "standard", [DEB_PRIO_OPTIONAL] = "optional",
                        [DEB_PRIO_EXTRA] = "extra",
                };
                for (size_t i = 0; i < ELEMENTSOF(prios); i++)
                        if (deb_ascii_ieq(f->value, f->value_len, prios[i]))
                                p->priority = (enum deb_priority)i;
        }
        if ((f = by[PF_MULTI_ARCH])) {
                static const char *const mas[] = {
                        [DEB_MA_NO] = "no", [DEB_MA_SAME] = "same", [DEB_MA_FOREIGN] = "foreign",
                        [DEB_MA_ALLOWED] = "allowed",
                };
                size_t i;
                for (i = 0; i < ELEMENTSOF(mas); i++)
                        if (deb_ascii_ieq(f->value, f->value_len, mas[i]))
                                break;
                if (i == ELEMENTSOF(mas))
                        return fail_value(ps, f, "not no, same, foreign or allowed");
                p->multi_arch = (enum deb_multiarch)i;
        }
        static const enum pf flags[] = { PF_ESSENTIAL, PF_IMPORTANT, PF_PROTECTED };
        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                if (!(f = by[flags[i]]))
                        continue;
                int v = deb_parse_yesno(f->value, f->value_len);
                if (v < 0)
                        return fail_value(ps, f, "not yes or no");
                if (flags[i] == PF_ESSENTIAL)
                        p->essential = v;
                else
                        p->important = p->important || v;
        }
        if ((f = by[PF_SOURCE])) {
                /* "src" or "src (version)" */
                size_t n = 0;
                while (n < f->value_len && f->value[n] != ' ' && f->value[n] != '(')
                        n++;
                if (!deb_name_valid(f->value, n))
                        return fail_value(ps, f, "invalid source package name");
                size_t i = n;
                while (i < f->value_len && f->value[i] == ' ')
                        i++;
                if (i < f->value_len) {
                        size_t e = f->value_len - 1;
                        if (f->value[i] != '(' || f->value[e] != ')')
                                return fail_value(ps, f, "not 'name' or 'name (version)'");
                        i++;
                        while (i < e && f->value[i] == ' ')
                                i++;
                        while (e > i && f->value[e - 1] == ' ')
                                e--;
                        if ((why = deb_version_invalid(f->value + i, e - i)))
                                return fail_value(ps, f, why);
                }
                if (!(p->source = intern(ps, f->value, n)))
                        goto oom;
        }

        struct {
                enum pf k;
                struct deb_rel *rel;
        } rels[] = {
                { PF_PRE_DEPENDS, &p->pre_depends }, { PF_DEPENDS, &p->depends },   { PF_RECOMMENDS, &p->recommends },
                { PF_PROVIDES, &p->provides },       { PF_CONFLICTS, &p->conflicts }, { PF_BREAKS, &p->breaks },
        };
        for (size_t i = 0; i < ELEMENTSOF(rels); i++)
                if ((f = by[rels[i].k]) && (r = parse_rel_field(ps, f, p->name, rels[i].rel)) < 0)
                        return r;
        return 0;
oom:
        return mkm_err_set(ps->err, -ENOMEM, "%s: out of memory", ps->label);
}

struct deb_index *deb_index_free(struct deb_index *x) {
        if (!x)
                return NULL;
        struct deb_store *st = x->arena;
        if (st) {
                intern_done(&st->strs);
                atom_set_done(&st->atoms);
                arena_done(&st->mem);
                free(st);
        }
        free(x->pkgs);
        free(x);
        return NULL;
}

struct deb_index_stream {
        struct deb_index *x;
        struct deb_store *st;
        struct parser ps;
        size_t cap, max_pkgs, max_text, total;
        unsigned line;                  /* line number of the next chunk's first byte */
};

struct deb_index_stream *deb_index_stream_free(struct deb_index_stream *s) {
        if (!s)
                return NULL;
        free(s->ps.sc.toks);
        if (s->st)
                atom_set_done(&s->st->atoms);
        deb_index_free(s->x);
        free(s);
        return NULL;
}

static int stream_new(const char *label, uint32_t number, size_t size_hint, size_t max_text, size_t max_pkgs,
                      struct deb_index_stream **ret, struct mkm_err *reterr) {
        _cleanup_(deb_index_stream_freep) struct deb_index_stream *s = calloc(1, sizeof *s);
        if (!label)
                label = "Packages";
        if (!s || !(s->x = calloc(1, sizeof *s->x)))
                return mkm_err_set(reterr, -ENOMEM, "%s: out of memory", label);
        struct deb_store *st = calloc(1, sizeof *st);
        if (!st)
                return mkm_err_set(reterr, -ENOMEM, "%s: out of memory", label);
        s->x->arena = s->st = st;
        s->x->number = number;
        if (!(s->x->label = arena_strndup(&st->mem, label, strlen(label))))
                return mkm_err_set(reterr, -ENOMEM, "%s: out of memory", label);
        s->max_text = max_text;
        s->max_pkgs = max_pkgs;
        s->line = 1;
        /* bookworm's paragraphs average 790 bytes: a guess that rarely needs to grow (growing
         * a block this big is an mremap, not a copy), and pages of it never written are never
         * touched. */
        s->cap = (size_hint < max_text ? size_hint : max_text) / 512 + 16;
        if (s->cap > max_pkgs)
                s->cap = max_pkgs;
        if (!(s->x->pkgs = mkm_new(struct deb_pkg, s->cap)))
                return mkm_err_set(reterr, -ENOMEM, "%s: out of memory", label);
        s->ps = (struct parser){ .x = s->x, .st = st, .label = s->x->label };
        *ret = TAKE_PTR(s);
        return 0;
}

int deb_index_stream_new(const char *label, uint32_t number, size_t size_hint, struct deb_index_stream **ret,
                         struct mkm_err *reterr) {
        return stream_new(label, number, size_hint, DEB_INDEX_MAX_TEXT, DEB_INDEX_MAX_PKGS, ret, reterr);
}

int deb_index_stream_feed(struct deb_index_stream *s, const char *text, size_t len, struct mkm_err *reterr) {
        struct deb_index *x = s->x;
        struct deb822_field fields[DEB_PKG_MAX_FIELDS];
        struct deb822_iter it;
        size_t nf;
        int r;
        if (len > s->max_text - s->total)
                return mkm_err_set(reterr, -E2BIG, "%s: more than the limit of %zu bytes", x->label, s->max_text);
        s->total += len;
        s->ps.err = reterr;
        deb822_iter_init(&it, text, len, x->label);
        it.line = s->line;
        while ((r = deb822_iter_next(&it, fields, ELEMENTSOF(fields), &nf, reterr)) > 0) {
                if (x->n >= s->max_pkgs)
                        return mkm_err_set(reterr, -E2BIG, "%s:%u: more than %zu packages", x->label, fields[0].line,
                                           s->max_pkgs);
                if (x->n == s->cap && (r = mkm_grow((void **)&x->pkgs, &s->cap, x->n, sizeof *x->pkgs, 64)) < 0)
                        return mkm_err_set(reterr, r, "%s: out of memory", x->label);
                if ((r = parse_pkg(&s->ps, fields, nf, &x->pkgs[x->n])) < 0)
                        return r;
                x->n++;
        }
        if (r < 0)
                return r;
        s->line = it.line;
        return 0;
}

int deb_index_stream_finish(struct deb_index_stream *s, struct deb_index **ret) {
        struct deb_index *x = TAKE_PTR(s->x);
        /* The store goes with the index: the atom set (only the parse needs it) is dropped now,
         * so the stream no longer touches the store, whichever of the two is freed first. */
        atom_set_done(&s->st->atoms);
        s->st = NULL;
        if (x->n < s->cap) {
                struct deb_pkg *np = mkm_reallocarray(x->pkgs, x->n, sizeof *np);
                if (np)
                        x->pkgs = np;
        }
        *ret = x;
        return 0;
}

int deb_index_parse_capped(const char *text, size_t len, const char *label, uint32_t number, size_t max_text,
                           size_t max_pkgs, struct deb_index **ret, struct mkm_err *reterr) {
        if (!label)
                label = "Packages";
        if (len > max_text)
                return mkm_err_set(reterr, -E2BIG, "%s: %zu bytes, more than the limit of %zu", label, len, max_text);
        _cleanup_(deb_index_stream_freep) struct deb_index_stream *s = NULL;
        int r = stream_new(label, number, len, max_text, max_pkgs, &s, reterr);
        if (r >= 0)
                r = deb_index_stream_feed(s, text, len, reterr);
        if (r >= 0)
                r = deb_index_stream_finish(s, ret);
        return r;
}

int deb_index_parse(const char *text, size_t len, const char *label, uint32_t number, struct deb_index **ret,
                    struct mkm_err *reterr) {
        return deb_index_parse_capped(text, len, label, number, DEB_INDEX_MAX_TEXT, DEB_INDEX_MAX_PKGS, ret, reterr);
}
