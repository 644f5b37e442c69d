/* SPDX-License-Identifier: MIT */
/* Lock file reading and writing. */
#include "lock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/strv.h"

static void pkg_done(struct lock_pkg *p) {
        free(p->name);
        free(p->version);
        free(p->repo);
        free(p->filename);
}

struct lock *lock_free(struct lock *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n; i++)
                pkg_done(&l->pkgs[i]);
        free(l->pkgs);
        for (size_t i = 0; i < l->n_indexes; i++)
                free(l->indexes[i].label);
        free(l->indexes);
        free(l->inputs);
        free(l->distribution);
        strv_free(l->sources);
        strv_free(l->keys);
        free(l);
        return NULL;
}

int lock_add(struct lock *l, const struct lock_pkg *p) {
        struct lock_pkg *np = mkm_reallocarray(l->pkgs, l->n + 1, sizeof *np);
        if (!np)
                return -ENOMEM;
        l->pkgs = np;
        struct lock_pkg c = *p;
        c.name = strdup(p->name);
        c.version = strdup(p->version);
        c.repo = strdup(p->repo);
        c.filename = strdup(p->filename);
        if (!c.name || !c.version || !c.repo || !c.filename) {
                pkg_done(&c);
                return -ENOMEM;
        }
        l->pkgs[l->n++] = c;
        return 0;
}

/* A field of a lock line: no whitespace, no control characters. */
static bool token_ok(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if ((unsigned char)*s <= 0x20 || *s == 0x7f)
                        return false;
        return true;
}

int lock_add_index(struct lock *l, const char *label, int64_t date, const char *sha256) {
        if (!token_ok(label) || strlen(label) > LOCK_MAX_LABEL || date < 0 || !hash_is_sha256_hex(sha256))
                return -EINVAL;
        for (size_t i = 0; i < l->n_indexes; i++)
                if (strcmp(l->indexes[i].label, label) == 0)
                        return -EEXIST;
        if (l->n_indexes >= LOCK_MAX_INDEXES)
                return -E2BIG;
        struct lock_index *ni = mkm_reallocarray(l->indexes, l->n_indexes + 1, sizeof *ni);
        if (!ni)
                return -ENOMEM;
        l->indexes = ni;
        struct lock_index x = { .label = strdup(label), .date = date };
        if (!x.label)
                return -ENOMEM;
        memcpy(x.sha256, sha256, sizeof x.sha256);
        l->indexes[l->n_indexes++] = x;
        return 0;
}

int64_t lock_newest_index_date(const struct lock *l) {
        int64_t max = 0;
        for (size_t i = 0; l && i < l->n_indexes; i++)
                if (l->indexes[i].date > max)
                        max = l->indexes[i].date;
        return max;
}

static bool relative_path_ok(const char *s) {
        if (!*s || *s == '/')
                return false;
        for (const char *c = s; *c;) {
                size_t l = strcspn(c, "/");
                if (l == 0 || c[0] == '.')
                        return false;
                c += l;
                if (*c == '/') {
                        c++;
                        if (!*c)
                                return false;
                }
        }
        return true;
}

static int cmp_pkg_name(const void *a, const void *b) {
        return strcmp((*(struct lock_pkg *const *)a)->name, (*(struct lock_pkg *const *)b)->name);
}

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;
        if (!*s || *s == '-')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int lock_parse(const char *text, size_t len, const char *filename, struct lock **ret, struct mkm_err *reterr) {
        _cleanup_(lock_freep) struct lock *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        unsigned lineno = 0, inputs_line = 0, distribution_line = 0, first_package_line = 0;
        const char *s = text, *end = text + len;
        while (s < end) {
                const char *nl = memchr(s, '\n', (size_t)(end - s));
                size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
                _cleanup_free_ char *line = strndup(s, n);
                s += n + (nl ? 1 : 0);
                lineno++;
                if (!line)
                        return -ENOMEM;
                if (!line[0] || line[0] == '#')
                        continue;
                _cleanup_strv_free_ char **w = NULL;
                if (strv_split(line, " \t", &w) < 0)
                        return -ENOMEM;
                size_t nw = strv_length(w);
                if (nw == 0)
                        continue;       /* a line of blanks */
                for (size_t i = 0; i < nw; i++)
                        if (!token_ok(w[i]))
                                return mkm_err_set(reterr, -MKM_E_LOCK, "%s:%u: invalid character in '%s'", filename,
                                                   lineno, w[i]);
                int r = 0;
                /* inputs and distribution once each, distribution before the packages: how a
                 * package's file name is judged depends on it (found by fuzz-lock: a second
                 * distribution line after the packages let a path through as an Arch name). */
                if (strcmp(w[0], "inputs") == 0 && nw == 2) {
                        if (inputs_line)
                                return mkm_err_set(reterr, -MKM_E_LOCK, "%s:%u: 'inputs' is given twice (first on line %u)",
                                                   filename, lineno, inputs_line);
                        inputs_line = lineno;
                        l->inputs = strdup(w[1]);
                        r = l->inputs ? 0 : -ENOMEM;
                } else if (strcmp(w[0], "distribution") == 0 && nw == 2) {
                        if (distribution_line)
                                return mkm_err_set(reterr, -MKM_E_LOCK,
                                                   "%s:%u: 'distribution' is given twice (first on line %u)", filename,
                                                   lineno, distribution_line);
                        if (first_package_line)
                                return mkm_err_set(reterr, -MKM_E_LOCK,
                                                   "%s:%u: expected 'distribution' before the first 'package' line (line %u)",
                                                   filename, lineno, first_package_line);
                        distribution_line = lineno;
                        l->distribution = strdup(w[1]);
                        r = l->distribution ? 0 : -ENOMEM;
                } else if (strcmp(w[0], "source") == 0 && nw >= 2) {
                        _cleanup_free_ char *joined = NULL;
                        if (asprintf(&joined, "%s%s%s", w[1], nw > 2 ? " " : "", nw > 2 ? w[2] : "") < 0)
                                return -ENOMEM;
                        r = strv_consume(&l->sources, TAKE_PTR(joined));
                } else if (strcmp(w[0], "key") == 0 && nw == 2)
                        r = strv_push(&l->keys, w[1]);
                else if (strcmp(w[0], "index") == 0 && nw == 4) {
                        uint64_t date;
                        if (parse_u64(w[2], &date) < 0 || date > INT64_MAX)
                                return mkm_err_set(reterr, -MKM_E_LOCK, "%s:%u: expected the index's date as a number",
                                                   filename, lineno);
                        if (!hash_is_sha256_hex(w[3]))
                                return mkm_err_set(reterr, -MKM_E_LOCK, "%s:%u: expected sha256 digests (64 hex digits)",
                                                   filename, lineno);
                        r = lock_add_index(l, w[1], (int64_t)date, w[3]);
                        if (r == -EEXIST)
                                return mkm_err_set(reterr, -MKM_E_LOCK, "%s:%u: index '%s' is listed twice", filename,
                                                   lineno, w[1]);
                        if (r == -EINVAL)
                                return mkm_err_set(reterr, -MKM_E_LOCK, "%s:%u: index label longer than %u bytes",
                                                   filename, lineno, LOCK_MAX_LABEL);
                        if (r == -E2BIG)
                                return mkm_err_set(reterr, -MKM_E_LOCK, "%s:%u: more than %u index lines", filename,
                                                   lineno, LOCK_MAX_INDEXES);
                } else if (strcmp(w[0], "index") == 0)
                        return mkm_err_set(reterr, -MKM_E_LOCK,
                                           "%s:%u: expected 3 fields after 'index' (LABEL DATE SHA256), got %zu", filename,
                                           lineno, nw - 1);
                else if (strcmp(w[0], "package") == 0 && nw == 12) {
                        struct lock_pkg p = { .name = w[1], .version = w[2], .repo = w[3], .filename = w[4] };
                        if (!first_package_line)
                                first_package_line = lineno;
                        uint64_t order;
                        if (!hash_is_sha256_hex(w[5]) || (strcmp(w[8], "-") != 0 && !hash_is_sha256_hex(w[8])))
                                return mkm_err_set(reterr, -MKM_E_LOCK, "%s:%u: expected sha256 digests (64 hex digits)",
                                                   filename, lineno);
                        uint64_t bd;
                        if (parse_u64(w[6], &p.size) < 0 || parse_u64(w[7], &p.isize) < 0 ||
                            parse_u64(w[9], &order) < 0 || order > 1000000 || parse_u64(w[11], &bd) < 0 ||
                            bd > INT64_MAX)
                                return mkm_err_set(reterr, -MKM_E_LOCK,
                                                   "%s:%u: expected sizes, an order and a build date as numbers",
                                                   filename, lineno);
                        p.builddate = (int64_t)bd;
                        if (strcmp(w[10], "explicit") != 0 && strcmp(w[10], "dependency") != 0)
                                return mkm_err_set(reterr, -MKM_E_LOCK, "%s:%u: expected 'explicit' or 'dependency', got '%s'",
                                                   filename, lineno, w[10]);
                        /* A file name goes into a mirror URL. Arch repositories hold plain names;
                         * a Debian pool path ("pool/main/a/apt/apt_2.6.1_amd64.deb") is relative,
                         * without "." or ".." components. */
                        bool pool = l->distribution && strcmp(l->distribution, "debian") == 0;
                        if (pool ? !relative_path_ok(w[4]) : (strchr(w[4], '/') || w[4][0] == '.'))
                                return mkm_err_set(reterr, -MKM_E_LOCK,
                                                   pool ? "%s:%u: file name '%s' must be a relative path without '.' or '..'"
                                                        : "%s:%u: file name '%s' must be a plain name",
                                                   filename, lineno, w[4]);
                        memcpy(p.sha256, w[5], 65);
                        if (strcmp(w[8], "-") != 0)
                                memcpy(p.sig_sha256, w[8], 65);
                        p.order = (unsigned)order;
                        p.explicit = strcmp(w[10], "explicit") == 0;
                        r = lock_add(l, &p);
                } else if (strcmp(w[0], "package") == 0)
                        return mkm_err_set(reterr, -MKM_E_LOCK,
                                           "%s:%u: expected 11 fields after 'package' (NAME VERSION REPO FILE SHA256 SIZE "
                                           "ISIZE SIG ORDER REASON BUILDDATE), got %zu; rewrite it with 'mkmachine lock'",
                                           filename, lineno, nw - 1);
                else
                        return mkm_err_set(reterr, -MKM_E_LOCK, "%s:%u: unexpected line '%s'", filename, lineno, line);
                if (r < 0)
                        return r;
        }
        if (!l->inputs || !l->distribution)
                return mkm_err_set(reterr, -MKM_E_LOCK, "%s: missing the '%s' line", filename,
                                   !l->inputs ? "inputs" : "distribution");
        /* Each package once (a second line would install it twice). */
        _cleanup_free_ struct lock_pkg **names = calloc(l->n ? l->n : 1, sizeof *names);
        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++)
                names[i] = &l->pkgs[i];
        qsort(names, l->n, sizeof *names, cmp_pkg_name);
        for (size_t i = 1; i < l->n; i++)
                if (strcmp(names[i - 1]->name, names[i]->name) == 0)
                        return mkm_err_set(reterr, -MKM_E_LOCK, "%s: package '%s' is listed twice", filename,
                                           names[i]->name);
        /* Install order: each position exactly once. */
        struct lock_pkg *sorted = calloc(l->n ? l->n : 1, sizeof *sorted);
        if (!sorted)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                unsigned o = l->pkgs[i].order;
                if (o >= l->n || sorted[o].name) {
                        free(sorted);
                        return mkm_err_set(reterr, -MKM_E_LOCK, "%s: package '%s' has an invalid or repeated order %u",
                                           filename, l->pkgs[i].name, o);
                }
                sorted[o] = l->pkgs[i];
        }
        free(l->pkgs);
        l->pkgs = sorted;
        *ret = TAKE_PTR(l);
        return 0;
}

static int cmp_index(const void *a, const void *b) {
        return strcmp((*(struct lock_index *const *)a)->label, (*(struct lock_index *const *)b)->label);
}

static int cmp_name(const void *a, const void *b) {
        return strcmp((*(struct lock_pkg *const *)a)->name, (*(struct lock_pkg *const *)b)->name);
}

int lock_format(const struct lock *l, char **ret) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "# mkmachine lock file: generated by `mkmachine lock`, do not edit\n");
        fprintf(f, "inputs %s\n", l->inputs);
        fprintf(f, "distribution %s\n", l->distribution);
        for (char **s = l->sources; s && *s; s++)
                fprintf(f, "source %s\n", *s);
        _cleanup_strv_free_ char **keys = strv_copy(l->keys);
        if (!keys) {
                fclose(f);
                free(buf);
                return -ENOMEM;
        }
        strv_sort(keys);
        for (size_t i = 0; keys[i]; i++)
                if (i == 0 || strcmp(keys[i], keys[i - 1]) != 0)
                        fprintf(f, "key %s\n", keys[i]);
        _cleanup_free_ struct lock_index **byindex = calloc(l->n_indexes ? l->n_indexes : 1, sizeof *byindex);
        if (!byindex) {
                fclose(f);
                free(buf);
                return -ENOMEM;
        }
        for (size_t i = 0; i < l->n_indexes; i++)
                byindex[i] = &l->indexes[i];
        qsort(byindex, l->n_indexes, sizeof *byindex, cmp_index);
        for (size_t i = 0; i < l->n_indexes; i++)
                fprintf(f, "index %s %" PRId64 " %s\n", byindex[i]->label, byindex[i]->date, byindex[i]->sha256);
        _cleanup_free_ struct lock_pkg **byname = calloc(l->n ? l->n : 1, sizeof *byname);
        if (!byname) {
                fclose(f);
                free(buf);
                return -ENOMEM;
        }
        for (size_t i = 0; i < l->n; i++)
                byname[i] = &l->pkgs[i];
        qsort(byname, l->n, sizeof *byname, cmp_name);
        for (size_t i = 0; i < l->n; i++) {
                const struct lock_pkg *p = byname[i];
                fprintf(f, "package %s %s %s %s %s %" PRIu64 " %" PRIu64 " %s %u %s %" PRId64 "\n", p->name, p->version,
                        p->repo, p->filename, p->sha256, p->size, p->isize, p->sig_sha256[0] ? p->sig_sha256 : "-",
                        p->order, p->explicit ? "explicit" : "dependency", p->builddate);
        }
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

static const char *const change_names[_LOCK_CHANGE_MAX] = {
        [LOCK_ADDED] = "added",         [LOCK_REMOVED] = "removed", [LOCK_UPGRADED] = "upgraded",
        [LOCK_DOWNGRADED] = "downgraded", [LOCK_REBUILT] = "rebuilt",
};

const char *lock_change_to_string(enum lock_change c) {
        return c >= 0 && c < _LOCK_CHANGE_MAX ? change_names[c] : NULL;
}

struct lock_diff *lock_diff_free(struct lock_diff *d) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n; i++) {
                free(d->e[i].name);
                free(d->e[i].old_version);
                free(d->e[i].new_version);
        }
        free(d->e);
        free(d);
        return NULL;
}

/* The packages of l sorted by name (borrowed pointers); NULL l is empty. */
static int by_name(const struct lock *l, struct lock_pkg ***ret, size_t *ret_n) {
        size_t n = l ? l->n : 0;
        struct lock_pkg **v = calloc(n ? n : 1, sizeof *v);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                v[i] = &l->pkgs[i];
        qsort(v, n, sizeof *v, cmp_pkg_name);
        *ret = v;
        *ret_n = n;
        return 0;
}

static int diff_push(struct lock_diff *d, enum lock_change c, const struct lock_pkg *o, const struct lock_pkg *n) {
        struct lock_diff_entry *e = realloc(d->e, (d->n + 1) * sizeof *e);
        if (!e)
                return -ENOMEM;
        d->e = e;
        e = &d->e[d->n];
        *e = (struct lock_diff_entry){ .change = c, .name = strdup(n ? n->name : o->name),
                                       .old_version = o ? strdup(o->version) : NULL,
                                       .new_version = n ? strdup(n->version) : NULL };
        d->n++;         /* counted before the check, so lock_diff_free() frees what was copied */
        if (!e->name || (o && !e->old_version) || (n && !e->new_version))
                return -ENOMEM;
        d->count[c]++;
        return 0;
}

int lock_diff(const struct lock *old, const struct lock *new, int (*vercmp)(const char *a, const char *b),
              struct lock_diff **ret) {
        _cleanup_free_ struct lock_pkg **a = NULL, **b = NULL;
        size_t na = 0, nb = 0;
        int q = by_name(old, &a, &na);
        if (q >= 0)
                q = by_name(new, &b, &nb);
        if (q < 0)
                return q;
        _cleanup_(lock_diff_freep) struct lock_diff *d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        size_t i = 0, j = 0;
        while (q >= 0 && (i < na || j < nb)) {
                int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i]->name, b[j]->name);
                if (c < 0)
                        q = diff_push(d, LOCK_REMOVED, a[i++], NULL);
                else if (c > 0)
                        q = diff_push(d, LOCK_ADDED, NULL, b[j++]);
                else {
                        int v = vercmp ? vercmp(a[i]->version, b[j]->version) : strcmp(a[i]->version, b[j]->version);
                        if (v < 0)
                                q = diff_push(d, LOCK_UPGRADED, a[i], b[j]);
                        else if (v > 0)
                                q = diff_push(d, LOCK_DOWNGRADED, a[i], b[j]);
                        else if (strcmp(a[i]->sha256, b[j]->sha256) != 0)
                                q = diff_push(d, LOCK_REBUILT, a[i], b[j]);
                        i++;
                        j++;
                }
        }
        if (q < 0)
                return q;
        *ret = TAKE_PTR(d);
        return 0;
}

char *lock_diff_summary(const struct lock_diff *d) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        bool any = false;
        for (int c = 0; c < _LOCK_CHANGE_MAX; c++)
                if (d->count[c]) {
                        fprintf(f, "%s%zu %s", any ? ", " : "", d->count[c], change_names[c]);
                        any = true;
                }
        if (!any)
                fputs("no changes", f);
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}
