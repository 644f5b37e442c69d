/* SPDX-License-Identifier: MIT */
/* Relationship fields (Depends, Pre-Depends, Recommends, Provides, Conflicts, Breaks) as dpkg
 * and apt read them (deb-control(5), policy §7.1):
 *     name[:archqual] [(op version)] [[arch ...]] [<profile ...>]... | ... , ...
 * with op one of <<, <=, =, >=, >> and the obsolete < and > (meaning <= and >=).
 *
 * Threats: names and versions end up in lock files, messages and comparisons; each one is
 * checked against the characters Debian allows, and counts are capped (DEB_REL_MAX_*), so a
 * field of a megabyte cannot become an unbounded number of allocations. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/cleanup.h"
#include "../util/err.h"
#include "arena.h"
#include "index.h"

static inline bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n'; }

/* Ends a name, an architecture qualifier or a version. */
static inline bool is_delim(char c) { return deb_cc_is(c, DEB_CC_DELIM); }

static size_t skip_ws(const char *s, size_t len, size_t i) {
        while (i < len && is_ws(s[i]))
                i++;
        return i;
}

static size_t token_end(const char *s, size_t len, size_t i) {
        while (i < len && !is_delim(s[i]))
                i++;
        return i;
}

/* "[amd64 !i386]": skipped, but it must look like one. */
static int skip_arch_list(const char *s, size_t len, size_t *io, const char **ret_why) {
        size_t i = *io + 1, terms = 0;
        for (;;) {
                i = skip_ws(s, len, i);
                if (i >= len) {
                        *ret_why = "missing ']'";
                        return -MKM_E_PARSE;
                }
                if (s[i] == ']')
                        break;
                if (s[i] == '!')
                        i++;
                size_t e = token_end(s, len, i);
                if (!deb_arch_valid(s + i, e - i)) {
                        *ret_why = "invalid architecture in '[...]'";
                        *io = i;
                        return -MKM_E_PARSE;
                }
                i = e;
                terms++;
        }
        if (terms == 0) {
                *ret_why = "empty architecture list";
                *io = i;
                return -MKM_E_PARSE;
        }
        *io = i + 1;
        return 0;
}

/* "<!nocheck cross>": true when every term holds with no profile active (only negated ones do). */
static int read_profile_list(const char *s, size_t len, size_t *io, bool *ret_true, const char **ret_why) {
        size_t i = *io + 1, terms = 0;
        bool all = true;
        for (;;) {
                i = skip_ws(s, len, i);
                if (i >= len) {
                        *ret_why = "missing '>'";
                        *io = i;
                        return -MKM_E_PARSE;
                }
                if (s[i] == '>')
                        break;
                bool neg = s[i] == '!';
                if (neg)
                        i++;
                size_t e = token_end(s, len, i);
                if (e == i || e - i > 64) {
                        *ret_why = "invalid build profile";
                        *io = i;
                        return -MKM_E_PARSE;
                }
                for (size_t k = i; k < e; k++)
                        if (!deb_cc_is(s[k], DEB_CC_NAME)) {
                                *ret_why = "invalid build profile";
                                *io = k;
                                return -MKM_E_PARSE;
                        }
                if (!neg)
                        all = false;
                i = e;
                terms++;
        }
        if (terms == 0) {
                *ret_why = "empty build profile list";
                *io = i;
                return -MKM_E_PARSE;
        }
        *ret_true = all;
        *io = i + 1;
        return 0;
}

static int push_tok(struct rel_scratch *sc, const struct rel_tok *t) {
        if (sc->n == sc->cap) {
                size_t nc = sc->cap ? sc->cap * 2 : 64;
                struct rel_tok *nt = mkm_reallocarray(sc->toks, nc, sizeof *nt);
                if (!nt)
                        return -ENOMEM;
                sc->toks = nt;
                sc->cap = nc;
        }
        sc->toks[sc->n++] = *t;
        return 0;
}

int rel_scan(const char *s, size_t len, struct rel_scratch *sc, const char **ret_why, size_t *ret_at) {
        size_t i = skip_ws(s, len, 0);
        const char *why = NULL;
        int r;

        sc->n = 0;
        sc->n_groups = 0;
        if (i >= len)
                return 0;

        for (;;) {
                bool first = true;
                size_t alts = 0;
                for (;;) {
                        struct rel_tok t = { .op = DEB_REL_ANY };
                        i = skip_ws(s, len, i);
                        size_t e = token_end(s, len, i);
                        if (e == i) {
                                why = "missing package name";
                                goto fail;
                        }
                        if (!deb_name_valid(s + i, e - i)) {
                                why = "invalid package name";
                                goto fail;
                        }
                        t.name = s + i;
                        t.name_len = (uint16_t)(e - i);
                        i = e;
                        if (i < len && s[i] == ':') {
                                i++;
                                e = token_end(s, len, i);
                                if (!deb_arch_valid(s + i, e - i)) {
                                        why = "invalid architecture qualifier";
                                        goto fail;
                                }
                                t.arch = s + i;
                                t.arch_len = (uint16_t)(e - i);
                                i = e;
                        }
                        i = skip_ws(s, len, i);
                        if (i < len && s[i] == '(') {
                                i = skip_ws(s, len, i + 1);
                                char c0 = i < len ? s[i] : 0, c1 = i + 1 < len ? s[i + 1] : 0;
                                if (c0 == '<') {
                                        t.op = c1 == '<' ? DEB_REL_LT : DEB_REL_LE;
                                        i += (c1 == '<' || c1 == '=') ? 2 : 1;
                                } else if (c0 == '>') {
                                        t.op = c1 == '>' ? DEB_REL_GT : DEB_REL_GE;
                                        i += (c1 == '>' || c1 == '=') ? 2 : 1;
                                } else if (c0 == '=') {
                                        t.op = DEB_REL_EQ;
                                        i++;
                                } else {
                                        why = "expected a relation operator (<<, <=, =, >=, >>)";
                                        goto fail;
                                }
                                i = skip_ws(s, len, i);
                                e = token_end(s, len, i);
                                /* a version may hold ':' (the epoch) */
                                while (e < len && s[e] == ':')
                                        e = token_end(s, len, e + 1);
                                if (e == i) {
                                        why = "missing version";
                                        goto fail;
                                }
                                if ((why = deb_version_invalid(s + i, e - i)))
                                        goto fail;
                                t.ver = s + i;
                                t.ver_len = (uint16_t)(e - i);
                                i = skip_ws(s, len, e);
                                if (i >= len || s[i] != ')') {
                                        why = "missing ')'";
                                        goto fail;
                                }
                                i = skip_ws(s, len, i + 1);
                        }
                        if (i < len && s[i] == '[') {
                                if ((r = skip_arch_list(s, len, &i, &why)) < 0)
                                        goto fail;
                                i = skip_ws(s, len, i);
                        }
                        bool any_list = false, keep = false;
                        while (i < len && s[i] == '<') {
                                bool lt;
                                if ((r = read_profile_list(s, len, &i, &lt, &why)) < 0)
                                        goto fail;
                                any_list = true;
                                keep = keep || lt;
                                i = skip_ws(s, len, i);
                        }
                        if (!any_list || keep) {
                                if (++alts > DEB_REL_MAX_ALTS) {
                                        why = "too many alternatives";
                                        goto fail;
                                }
                                t.first = first;
                                if (first && ++sc->n_groups > DEB_REL_MAX_GROUPS) {
                                        why = "too many relations";
                                        goto fail;
                                }
                                first = false;
                                if ((r = push_tok(sc, &t)) < 0)
                                        return r;
                        }
                        if (i < len && s[i] == '|') {
                                i++;
                                continue;
                        }
                        break;
                }
                if (i >= len)
                        return 0;
                if (s[i] != ',') {
                        why = "unexpected character";
                        goto fail;
                }
                i = skip_ws(s, len, i + 1);
                if (i >= len)   /* a trailing comma, as dpkg allows */
                        return 0;
        }

fail:
        *ret_why = why;
        *ret_at = i;
        return -MKM_E_PARSE;
}

int rel_store(struct deb_store *st, bool share, const struct rel_scratch *sc, struct deb_rel *rel) {
        if (sc->n_groups == 0) {
                *rel = (struct deb_rel){ 0 };
                return 0;
        }
        struct deb_group *groups = arena_alloc(&st->mem, sc->n_groups * sizeof *groups, _Alignof(struct deb_group));
        if (!groups)
                return -ENOMEM;
        size_t g = 0;
        for (size_t i = 0; i < sc->n;) {
                size_t j = i + 1;
                while (j < sc->n && !sc->toks[j].first)
                        j++;
                struct deb_atom *atoms;
                if (j - i == 1 && share) {
                        const struct rel_tok *t = &sc->toks[i];
                        struct deb_atom a = { .op = t->op };
                        if (!(a.name = intern_str(&st->strs, &st->mem, t->name, t->name_len)) ||
                            (t->arch && !(a.arch = intern_str(&st->strs, &st->mem, t->arch, t->arch_len))) ||
                            (t->ver && !(a.version = intern_str(&st->strs, &st->mem, t->ver, t->ver_len))))
                                return -ENOMEM;
                        if (!(atoms = atom_intern(&st->atoms, &st->mem, &a)))
                                return -ENOMEM;
                } else {
                        atoms = arena_alloc(&st->mem, (j - i) * sizeof *atoms, _Alignof(struct deb_atom));
                        if (!atoms)
                                return -ENOMEM;
                        for (size_t k = i; k < j; k++) {
                                const struct rel_tok *t = &sc->toks[k];
                                struct deb_atom *a = &atoms[k - i];
                                *a = (struct deb_atom){ .op = t->op };
                                if (!(a->name = intern_str(&st->strs, &st->mem, t->name, t->name_len)) ||
                                    (t->arch && !(a->arch = intern_str(&st->strs, &st->mem, t->arch, t->arch_len))) ||
                                    (t->ver && !(a->version = intern_str(&st->strs, &st->mem, t->ver, t->ver_len))))
                                        return -ENOMEM;
                        }
                }
                groups[g++] = (struct deb_group){ .atoms = atoms, .n = (uint32_t)(j - i) };
                i = j;
        }
        *rel = (struct deb_rel){ .groups = groups, .n = (uint32_t)g };
        return 0;
}

/* Without an index: one malloc'ed block, groups first (so deb_rel_done frees it with groups). */
static int rel_malloc(const struct rel_scratch *sc, struct deb_rel *rel) {
        if (sc->n_groups == 0) {
                *rel = (struct deb_rel){ 0 };
                return 0;
        }
        size_t strbytes = 0;
        for (size_t i = 0; i < sc->n; i++) {
                const struct rel_tok *t = &sc->toks[i];
                strbytes += (size_t)t->name_len + 1 + (t->arch ? (size_t)t->arch_len + 1 : 0) +
                            (t->ver ? (size_t)t->ver_len + 1 : 0);
        }
        size_t size = sc->n_groups * sizeof(struct deb_group) + sc->n * sizeof(struct deb_atom) + strbytes;
        char *block = malloc(size);
        if (!block)
                return -ENOMEM;
        struct deb_group *groups = (struct deb_group *)block;
        struct deb_atom *atoms = (struct deb_atom *)(block + sc->n_groups * sizeof(struct deb_group));
        char *str = (char *)(atoms + sc->n);
        size_t g = 0;
        for (size_t i = 0; i < sc->n; i++) {
                const struct rel_tok *t = &sc->toks[i];
                if (t->first)
                        groups[g++] = (struct deb_group){ .atoms = &atoms[i], .n = 0 };
                groups[g - 1].n++;
                atoms[i] = (struct deb_atom){ .op = t->op, .name = str };
                memcpy(str, t->name, t->name_len);
                str += t->name_len;
                *str++ = 0;
                if (t->arch) {
                        atoms[i].arch = str;
                        memcpy(str, t->arch, t->arch_len);
                        str += t->arch_len;
                        *str++ = 0;
                }
                if (t->ver) {
                        atoms[i].version = str;
                        memcpy(str, t->ver, t->ver_len);
                        str += t->ver_len;
                        *str++ = 0;
                }
        }
        *rel = (struct deb_rel){ .groups = groups, .n = (uint32_t)g };
        return 0;
}

void deb_snippet(char *buf, size_t size, const char *s, size_t n) {
        size_t o = 0, keep = n;
        if (size < 5) {
                if (size)
                        buf[0] = 0;
                return;
        }
        if (keep > size - 1)
                keep = size - 4;        /* room for "..." */
        for (size_t i = 0; i < keep; i++) {
                unsigned char c = (unsigned char)s[i];
                buf[o++] = c == '\n' || c == '\t' ? ' ' : c < 0x20 || c >= 0x7f ? '?' : (char)c;
        }
        if (keep < n) {
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = 0;
}

int deb_rel_parse(struct deb_index *x, const char *value, size_t len, struct deb_rel *rel, struct mkm_err *reterr) {
        struct rel_scratch sc = { 0 };
        const char *why = NULL;
        size_t at = 0;
        int r;

        if (len > DEB_FIELD_MAX)
                return mkm_err_set(reterr, -MKM_E_PARSE, "relationship field longer than %zu bytes", DEB_FIELD_MAX);
        if (memchr(value, 0, len))
                return mkm_err_set(reterr, -MKM_E_PARSE, "NUL byte in relationship field");
        r = rel_scan(value, len, &sc, &why, &at);
        if (r == -MKM_E_PARSE) {
                char snip[128];
                deb_snippet(snip, sizeof snip, value, len);
                r = mkm_err_set(reterr, r, "%s at byte %zu of '%s'", why, at, snip);
        } else if (r < 0)
                r = mkm_err_set(reterr, r, "cannot read relationship field: %s", mkm_strerror(r));
        else if (x)
                r = rel_store(x->arena, false, &sc, rel);
        else
                r = rel_malloc(&sc, rel);
        if (r == -ENOMEM)
                (void)mkm_err_set(reterr, r, "out of memory");
        free(sc.toks);
        return r;
}

void deb_rel_done(struct deb_rel *rel) {
        if (!rel)
                return;
        free(rel->groups);
        *rel = (struct deb_rel){ 0 };
}
