/* SPDX-License-Identifier: MIT */
/* systemd-style INI parser: a pure function from bytes to entries (see ini.h).
 * The threat is a hostile or broken recipe: every allocation is bounded by INI_LINE_MAX and
 * INI_ENTRIES_MAX, NUL and control bytes are refused, and nothing is read beyond len. */
#include "ini.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/err.h"

struct parser {
        const char *filename;
        struct ini_entry *entries;
        size_t n, cap;
        char *section;          /* current section, owned; NULL before the first header */
        struct mkm_err *reterr;
        /* ini_parse_lenient: bad lines are reported here and skipped. */
        ini_error_fn on_error;
        void *userdata;
        bool fatal;             /* the error cannot be skipped (a limit) */
        bool bad_section;       /* the last header was refused: skip its assignments quietly */
};

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_name_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '_' || c == '.';
}

static bool valid_name(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_name_char(s[i]))
                        return false;
        return true;
}

/* Trim [*s, *s + *n) in place. */
static void trim(const char **s, size_t *n) {
        while (*n > 0 && is_blank((*s)[0])) {
                (*s)++;
                (*n)--;
        }
        while (*n > 0 && is_blank((*s)[*n - 1]))
                (*n)--;
}

static int add_entry(struct parser *p, unsigned line, const char *key, size_t keylen, const char *value,
                     size_t valuelen) {
        if (p->n >= INI_ENTRIES_MAX) {
                p->fatal = true;
                return mkm_err_set(p->reterr, -MKM_E_PARSE, "%s:%u: too many entries (more than %u)", p->filename,
                                   line, INI_ENTRIES_MAX);
        }
        if (mkm_grow((void **)&p->entries, &p->cap, p->n, sizeof *p->entries, 16) < 0)
                return -ENOMEM;
        struct ini_entry e = { .line = line };
        e.section = strdup(p->section);
        if (!e.section)
                return -ENOMEM;
        if (key) {
                e.key = strndup(key, keylen);
                e.value = strndup(value, valuelen);
                if (!e.key || !e.value) {
                        free(e.section);
                        free(e.key);
                        free(e.value);
                        return -ENOMEM;
                }
        }
        p->entries[p->n++] = e;
        return 0;
}

/* One logical line (continuations already joined). */
static int parse_line(struct parser *p, const char *l, size_t n, unsigned line) {
        trim(&l, &n);
        if (n == 0)
                return 0;

        if (l[0] == '[') {
                /* Until a header is accepted, its assignments have no section (lenient mode). */
                p->bad_section = true;
                if (n < 2 || l[n - 1] != ']')
                        return mkm_err_set(p->reterr, -MKM_E_PARSE,
                                           "%s:%u: unterminated section header '%.*s': expected ']' at the end",
                                           p->filename, line, (int)(n > 80 ? 80 : n), l);
                const char *name = l + 1;
                size_t namelen = n - 2;
                if (!valid_name(name, namelen))
                        return mkm_err_set(p->reterr, -MKM_E_PARSE,
                                           "%s:%u: invalid section name '%.*s': expected letters, digits, '-', '_' or '.'",
                                           p->filename, line, (int)(namelen > 80 ? 80 : namelen), name);
                char *s = strndup(name, namelen);
                if (!s)
                        return -ENOMEM;
                free(p->section);
                p->section = s;
                p->bad_section = false;
                return add_entry(p, line, NULL, 0, NULL, 0);
        }

        if (p->bad_section && p->on_error)
                return 0;       /* under a refused header: reported once, with the header */
        const char *eq = memchr(l, '=', n);
        if (!eq)
                return mkm_err_set(p->reterr, -MKM_E_PARSE, "%s:%u: expected 'Key=Value', got '%.*s'", p->filename,
                                   line, (int)(n > 80 ? 80 : n), l);
        if (!p->section)
                return mkm_err_set(p->reterr, -MKM_E_PARSE,
                                   "%s:%u: assignment outside any section: put a [Section] line above it",
                                   p->filename, line);
        const char *key = l, *value = eq + 1;
        size_t keylen = (size_t)(eq - l), valuelen = n - keylen - 1;
        trim(&key, &keylen);
        trim(&value, &valuelen);
        if (keylen == 0)
                return mkm_err_set(p->reterr, -MKM_E_PARSE, "%s:%u: [%s] missing key name before '='",
                                   p->filename, line, p->section);
        if (!valid_name(key, keylen))
                return mkm_err_set(p->reterr, -MKM_E_PARSE,
                                   "%s:%u: [%s] invalid key name '%.*s': expected letters, digits, '-', '_' or '.'",
                                   p->filename, line, p->section, (int)(keylen > 80 ? 80 : keylen), key);
        return add_entry(p, line, key, keylen, value, valuelen);
}

static int append(char **acc, size_t *acclen, const char *s, size_t n, bool space) {
        char *na = realloc(*acc, *acclen + n + 2);
        if (!na)
                return -ENOMEM;
        memcpy(na + *acclen, s, n);
        *acclen += n;
        if (space)
                na[(*acclen)++] = ' ';
        na[*acclen] = 0;
        *acc = na;
        return 0;
}

/* A bad line in lenient mode: report it and go on (0), unless it cannot be skipped. */
static int skip_bad_line(struct parser *p, int r, unsigned line) {
        if (!p->on_error || r != -MKM_E_PARSE || p->fatal)
                return r;
        int q = p->on_error(p->userdata, r, line, p->reterr->msg);
        return q < 0 ? q : 0;
}

static int parse(const char *buf, size_t len, const char *filename, ini_error_fn on_error, void *userdata,
                 struct ini_entry **ret, size_t *ret_n, struct mkm_err *reterr) {
        struct mkm_err local = {};
        struct parser p = { .filename = filename ? filename : "(buffer)", .reterr = reterr ? reterr : &local,
                            .on_error = on_error, .userdata = userdata };
        _cleanup_free_ char *acc = NULL;        /* a logical line being continued */
        size_t acclen = 0, pos = 0;
        unsigned lineno = 0, start = 0;
        bool continuing = false;
        int r = 0;

        if (!buf && len > 0)
                return mkm_err_set(p.reterr, -EINVAL, "%s: no buffer", p.filename);

        while (pos < len) {
                const char *l = buf + pos;
                const char *nl = memchr(l, '\n', len - pos);
                size_t n = nl ? (size_t)(nl - l) : len - pos;
                pos += n + (nl ? 1 : 0);
                lineno++;

                r = 0;
                if (n > INI_LINE_MAX) {
                        p.fatal = true;
                        r = mkm_err_set(p.reterr, -MKM_E_PARSE, "%s:%u: line too long (more than %u bytes)",
                                        p.filename, lineno, INI_LINE_MAX);
                        goto fail;
                }
                if (n > 0 && l[n - 1] == '\r')
                        n--;    /* CRLF */
                for (size_t i = 0; i < n; i++) {
                        unsigned char c = (unsigned char)l[i];
                        if (c == 0)
                                r = mkm_err_set(p.reterr, -MKM_E_PARSE, "%s:%u: NUL byte in line", p.filename,
                                                lineno);
                        else if ((c < 0x20 && c != '\t') || c == 0x7f)
                                r = mkm_err_set(p.reterr, -MKM_E_PARSE, "%s:%u: control character 0x%02x in line",
                                                p.filename, lineno, c);
                        else
                                continue;
                        break;
                }
                if (r < 0) {
                        if ((r = skip_bad_line(&p, r, lineno)) < 0)
                                goto fail;
                        continue;       /* the line is skipped (lenient) */
                }

                /* Comment lines are skipped wherever they are, also inside a continuation. */
                size_t lead = 0;
                while (lead < n && is_blank(l[lead]))
                        lead++;
                if (lead < n && (l[lead] == '#' || l[lead] == ';'))
                        continue;

                /* An odd run of trailing backslashes continues the line ("\\" is a literal). */
                size_t bs = 0;
                while (bs < n && l[n - 1 - bs] == '\\')
                        bs++;
                bool cont = bs % 2 == 1;

                if (!continuing)
                        start = lineno;
                /* At most INI_LINE_MAX bytes, a line of its own or lines joined: acc holds the
                 * pieces so far, each backslash already turned into the blank that joins them. */
                if (acclen + n > INI_LINE_MAX) {
                        p.fatal = true;
                        r = mkm_err_set(p.reterr, -MKM_E_PARSE, "%s:%u: continued line too long (more than %u bytes)",
                                        p.filename, start, INI_LINE_MAX);
                        goto fail;
                }
                if (cont) {
                        r = append(&acc, &acclen, l, n - 1, true);
                        if (r < 0)
                                goto fail;
                        continuing = true;
                        continue;
                }
                if (continuing) {
                        r = append(&acc, &acclen, l, n, false);
                        if (r < 0)
                                goto fail;
                        r = parse_line(&p, acc, acclen, start);
                        acclen = 0;
                        continuing = false;
                } else
                        r = parse_line(&p, l, n, start);
                if (r < 0 && (r = skip_bad_line(&p, r, start)) < 0)
                        goto fail;
        }
        if (continuing) {       /* a backslash on the last line: parse what we have, as systemd does */
                r = parse_line(&p, acc, acclen, start);
                if (r < 0 && (r = skip_bad_line(&p, r, start)) < 0)
                        goto fail;
        }

        free(p.section);
        *ret = p.entries;
        *ret_n = p.n;
        return 0;

fail:
        if (r == -ENOMEM)
                (void)mkm_err_set(reterr, r, "%s: out of memory", p.filename);
        free(p.section);
        ini_entries_free(p.entries, p.n);
        return r;
}

int ini_parse(const char *buf, size_t len, const char *filename,
              struct ini_entry **ret, size_t *ret_n, struct mkm_err *reterr) {
        return parse(buf, len, filename, NULL, NULL, ret, ret_n, reterr);
}

int ini_parse_lenient(const char *buf, size_t len, const char *filename, ini_error_fn on_error, void *userdata,
                      struct ini_entry **ret, size_t *ret_n, struct mkm_err *reterr) {
        return parse(buf, len, filename, on_error, userdata, ret, ret_n, reterr);
}

struct ini_entry *ini_entries_free(struct ini_entry *e, size_t n) {
        if (!e)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                free(e[i].section);
                free(e[i].key);
                free(e[i].value);
        }
        free(e);
        return NULL;
}
