/* SPDX-License-Identifier: MIT */
/* Arch sync database parser (pacman's be_sync.c sync_db_populate/sync_db_read, re-done for
 * untrusted input).
 *
 * Threats: the db is fetched from a mirror we do not trust beyond its signature (and real Arch
 * mirrors do not sign dbs), so it may try to
 *   - point %FILENAME% outside the cache dir ("../x", "a/b", ".hidden", control characters);
 *   - make us decompress or allocate without bound (zstd bombs, huge declared entry sizes,
 *     millions of entries, endless lines) -> caps on total bytes, entries, file and line size,
 *     checked against declared sizes before any data is skipped or read;
 *   - confuse later stages with inconsistent records (a directory that is not NAME-VERSION,
 *     two records for one name, a field given twice, sizes that overflow) -> hard errors.
 *
 * Flow: every desc/depends file is parsed into a partial record keyed by its directory; the
 * partials are sorted by directory and merged (old dbs keep %DEPENDS% in a separate file), then
 * checked and sorted by name. */
#include "repo-alpm.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../util/cleanup.h"
#include "../util/err.h"
#include "../util/log.h"
#include "../util/strv.h"
#include "vercmp.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive *, archive_read_free);

enum field_kind {
        FK_STRING,      /* one line of text */
        FK_NAME,        /* package name charset */
        FK_VERSION,     /* [epoch:]pkgver-pkgrel */
        FK_FILENAME,    /* plain file name */
        FK_SHA256,      /* 64 hex */
        FK_MD5,         /* 32 hex */
        FK_BASE64,      /* base64 */
        FK_SIZE,        /* uint64 decimal */
        FK_DATE,        /* int64 decimal, >= 0 */
        FK_LIST,        /* lines of text */
        FK_DEPLIST,     /* lines of dependency strings */
};

struct field {
        const char *key;
        enum field_kind kind;
        size_t offset;
};

#define F(key, kind, member) { key, kind, offsetof(struct repo_alpm_pkg, member) }
static const struct field fields[] = {
        F("%NAME%", FK_NAME, name),
        F("%VERSION%", FK_VERSION, version),
        F("%BASE%", FK_NAME, base),
        F("%DESC%", FK_STRING, desc),
        F("%FILENAME%", FK_FILENAME, filename),
        F("%CSIZE%", FK_SIZE, csize),
        F("%ISIZE%", FK_SIZE, isize),
        F("%SHA256SUM%", FK_SHA256, sha256),
        F("%MD5SUM%", FK_MD5, md5),
        F("%PGPSIG%", FK_BASE64, pgpsig),
        F("%URL%", FK_STRING, url),
        F("%LICENSE%", FK_LIST, licenses),
        F("%ARCH%", FK_STRING, arch),
        F("%BUILDDATE%", FK_DATE, builddate),
        F("%PACKAGER%", FK_STRING, packager),
        F("%DEPENDS%", FK_DEPLIST, depends),
        F("%OPTDEPENDS%", FK_DEPLIST, optdepends),
        F("%MAKEDEPENDS%", FK_DEPLIST, makedepends),
        F("%CHECKDEPENDS%", FK_DEPLIST, checkdepends),
        F("%PROVIDES%", FK_DEPLIST, provides),
        F("%CONFLICTS%", FK_DEPLIST, conflicts),
        F("%REPLACES%", FK_DEPLIST, replaces),
        F("%GROUPS%", FK_LIST, groups),
};
#undef F
_Static_assert(ELEMENTSOF(fields) <= 32, "seen mask is 32 bits");

enum { FIELD_NAME = 0, FIELD_VERSION = 1, FIELD_FILENAME = 4 };

static bool kind_is_list(enum field_kind k) { return k == FK_LIST || k == FK_DEPLIST; }

static char **field_str(struct repo_alpm_pkg *p, const struct field *f) { return (char **)((char *)p + f->offset); }
static char ***field_list(struct repo_alpm_pkg *p, const struct field *f) { return (char ***)((char *)p + f->offset); }

/* A parsed desc or depends file, before merging by directory. */
struct part {
        char *dir;              /* "foo-1.0-1" */
        char *path;             /* "foo-1.0-1/desc", for messages */
        uint32_t seen;          /* bit i: fields[i] was given */
        struct repo_alpm_pkg pkg;
};

struct parser {
        struct mkm_ctx *ctx;
        const char *repo;
        struct repo_alpm_limits lim;
        struct mkm_err *err;
        struct part *parts;
        size_t nparts, capparts;
};

static void pkg_done(struct repo_alpm_pkg *p) {
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                if (kind_is_list(fields[i].kind)) {
                        char ***l = field_list(p, &fields[i]);
                        *l = strv_free(*l);
                } else if (fields[i].kind != FK_SIZE && fields[i].kind != FK_DATE) {
                        char **s = field_str(p, &fields[i]);
                        free(*s);
                        *s = NULL;
                }
        }
}

static void part_done(struct part *pt) {
        free(pt->dir);
        free(pt->path);
        pkg_done(&pt->pkg);
}

static void parser_done(struct parser *ps) {
        for (size_t i = 0; i < ps->nparts; i++)
                part_done(&ps->parts[i]);
        free(ps->parts);
        ps->parts = NULL;
        ps->nparts = ps->capparts = 0;
}

static int fail_entry(struct parser *ps, int r, const char *entry, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int fail_entry(struct parser *ps, int r, const char *entry, const char *fmt, ...) {
        char detail[1024];
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
        if (entry)
                return mkm_err_set(ps->err, r, "%s.db: entry '%s': %s", ps->repo, entry, detail);
        return mkm_err_set(ps->err, r, "%s.db: %s", ps->repo, detail);
}

static bool has_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

static bool is_hex(const char *s, size_t n) {
        if (strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("0123456789abcdefABCDEF", s[i]) || s[i] == 0)
                        return false;
        return true;
}

static void lowercase(char *s) {
        for (; *s; s++)
                if (*s >= 'A' && *s <= 'Z')
                        *s = (char)(*s - 'A' + 'a');
}

static bool is_base64(const char *s) {
        size_t n = strlen(s), pad = 0;
        if (n == 0 || n % 4 != 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == '=') {
                        pad++;
                        continue;
                }
                if (pad > 0)    /* data after padding */
                        return false;
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                      c == '/'))
                        return false;
        }
        return pad <= 2;
}

static bool parse_u64(const char *s, uint64_t *ret) {
        uint64_t v = 0;
        if (!*s)
                return false;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return false;
                unsigned d = (unsigned)(*s - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        *ret = v;
        return true;
}

/* Checks one value of a field and stores it (scalars) or appends it (lists). Takes nothing:
 * value is copied. */
static int store_value(struct parser *ps, struct part *pt, const struct field *f, const char *value) {
        const char *key = f->key;
        const char *path = pt->path;

        if (has_control(value))
                return fail_entry(ps, -MKM_E_PARSE, path, "%s contains a control character", key);

        switch (f->kind) {
        case FK_NAME:
                if (!vercmp_name_is_valid(value))
                        return fail_entry(ps, -MKM_E_PARSE, path, "%s '%s' is not a valid package name", key, value);
                break;
        case FK_VERSION:
                if (!vercmp_pkg_version_is_valid(value))
                        return fail_entry(ps, -MKM_E_PARSE, path, "%s '%s' is not a valid [epoch:]pkgver-pkgrel", key,
                                          value);
                break;
        case FK_FILENAME: {
                /* alpm's _alpm_validate_filename, plus: no control characters (checked above),
                 * not empty, not "." or "..", at most NAME_MAX bytes. */
                size_t n = strlen(value);
                if (n == 0)
                        return fail_entry(ps, -MKM_E_PARSE, path, "%s is empty", key);
                if (strchr(value, '/'))
                        return fail_entry(ps, -MKM_E_PARSE, path, "%s '%s' contains '/'", key, value);
                if (value[0] == '.')
                        return fail_entry(ps, -MKM_E_PARSE, path, "%s '%s' starts with '.'", key, value);
                if (n > 255)
                        return fail_entry(ps, -MKM_E_PARSE, path, "%s is longer than 255 bytes", key);
                break;
        }
        case FK_SHA256:
                if (!is_hex(value, 64))
                        return fail_entry(ps, -MKM_E_PARSE, path, "%s is not 64 hex digits", key);
                break;
        case FK_MD5:
                if (!is_hex(value, 32))
                        return fail_entry(ps, -MKM_E_PARSE, path, "%s is not 32 hex digits", key);
                break;
        case FK_BASE64:
                if (!is_base64(value))
                        return fail_entry(ps, -MKM_E_PARSE, path, "%s is not base64", key);
                break;
        case FK_SIZE:
        case FK_DATE: {
                uint64_t v;
                if (!parse_u64(value, &v) || (f->kind == FK_DATE && v > (uint64_t)INT64_MAX))
                        return fail_entry(ps, -MKM_E_PARSE, path, "%s '%.40s' is not a decimal number in range", key,
                                          value);
                if (f->kind == FK_SIZE)
                        *(uint64_t *)((char *)&pt->pkg + f->offset) = v;
                else
                        *(int64_t *)((char *)&pt->pkg + f->offset) = (int64_t)v;
                return 0;
        }
        case FK_DEPLIST: {
                struct vercmp_dep d;
                struct mkm_err derr = {};
                int r = vercmp_dep_parse(value, &d, &derr);
                if (r == -ENOMEM)
                        return fail_entry(ps, r, path, "out of memory");
                if (r < 0)
                        return fail_entry(ps, r, path, "%s: %s", key, derr.msg);
                vercmp_dep_done(&d);
                break;
        }
        case FK_STRING:
        case FK_LIST:
                break;
        }

        if (kind_is_list(f->kind)) {
                if (strv_push(field_list(&pt->pkg, f), value) < 0)
                        return fail_entry(ps, -ENOMEM, path, "out of memory");
                return 0;
        }
        char *copy = strdup(value);
        if (!copy)
                return fail_entry(ps, -ENOMEM, path, "out of memory");
        if (f->kind == FK_SHA256 || f->kind == FK_MD5)
                lowercase(copy);
        *field_str(&pt->pkg, f) = copy;
        return 0;
}

static const struct field *find_field(const char *key, size_t *ret_index) {
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (strcmp(fields[i].key, key) == 0) {
                        *ret_index = i;
                        return &fields[i];
                }
        return NULL;
}

static bool is_header(const char *line) {
        size_t n = strlen(line);
        return n >= 3 && line[0] == '%' && line[n - 1] == '%';
}

/* Parse the text of one desc/depends file (data[0..len), NUL-free) into pt. Modifies data. */
static int parse_desc(struct parser *ps, struct part *pt, char *data, size_t len) {
        const struct field *cur = NULL;         /* the section we are in; NULL + in_unknown for unknown */
        size_t cur_index = 0, cur_values = 0;
        bool in_section = false;
        unsigned long lineno = 0;
        char *p = data, *end = data + len;

        while (p < end) {
                char *nl = memchr(p, '\n', (size_t)(end - p));
                char *eol = nl ? nl : end;
                size_t n = (size_t)(eol - p);
                lineno++;
                if (n > ps->lim.max_line)
                        return fail_entry(ps, -MKM_E_PARSE, pt->path, "line %lu is longer than %zu bytes", lineno,
                                          ps->lim.max_line);
                *eol = 0;
                if (n > 0 && p[n - 1] == '\r')
                        p[--n] = 0;
                char *line = p;
                p = nl ? nl + 1 : end;

                if (n == 0) {
                        if (in_section && cur && !kind_is_list(cur->kind) && cur_values == 0)
                                return fail_entry(ps, -MKM_E_PARSE, pt->path, "%s has no value", cur->key);
                        in_section = false;
                        cur = NULL;
                        continue;
                }
                if (!in_section) {
                        if (!is_header(line))
                                return fail_entry(ps, -MKM_E_PARSE, pt->path,
                                                  "line %lu: expected a %%FIELD%% header, got '%.40s'", lineno, line);
                        in_section = true;
                        cur_values = 0;
                        cur = find_field(line, &cur_index);
                        if (!cur) {
                                if (has_control(line))
                                        return fail_entry(ps, -MKM_E_PARSE, pt->path,
                                                          "line %lu: header contains a control character", lineno);
                                mkm_debug(ps->ctx, "%s.db: %s: ignoring unknown field '%s'", ps->repo, pt->path, line);
                                continue;
                        }
                        if (pt->seen & (UINT32_C(1) << cur_index))
                                return fail_entry(ps, -MKM_E_PARSE, pt->path, "%s appears twice", cur->key);
                        pt->seen |= UINT32_C(1) << cur_index;
                        continue;
                }
                if (!cur)       /* value of an unknown field */
                        continue;
                if (!kind_is_list(cur->kind) && cur_values > 0)
                        return fail_entry(ps, -MKM_E_PARSE, pt->path, "%s has more than one value", cur->key);
                cur_values++;
                int r = store_value(ps, pt, cur, line);
                if (r < 0)
                        return r;
        }
        if (in_section && cur && !kind_is_list(cur->kind) && cur_values == 0)
                return fail_entry(ps, -MKM_E_PARSE, pt->path, "%s has no value", cur->key);
        return 0;
}

static int read_entry_data(struct parser *ps, struct archive *a, const char *path, int64_t declared, char **ret,
                           size_t *ret_len) {
        if (declared < 0 || (uint64_t)declared > ps->lim.max_file)
                return fail_entry(ps, -MKM_E_PARSE, path, "file is larger than %zu bytes", ps->lim.max_file);
        size_t cap = (size_t)declared + 1, len = 0;
        _cleanup_free_ char *data = malloc(cap);
        if (!data)
                return fail_entry(ps, -ENOMEM, path, "out of memory");
        for (;;) {
                la_ssize_t n = archive_read_data(a, data + len, cap - len);
                if (n < 0)
                        return fail_entry(ps, -MKM_E_ARCHIVE, path, "%s", archive_error_string(a));
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len >= cap)         /* more than declared: never trust the stream over the header */
                        return fail_entry(ps, -MKM_E_PARSE, path, "file is larger than its header says");
        }
        if (memchr(data, 0, len))
                return fail_entry(ps, -MKM_E_PARSE, path, "file contains a NUL byte");
        data[len] = 0;
        *ret = TAKE_PTR(data);
        *ret_len = len;
        return 0;
}

static int add_part(struct parser *ps, const char *path, size_t dirlen, char *data, size_t len) {
        if (mkm_grow((void **)&ps->parts, &ps->capparts, ps->nparts, sizeof *ps->parts, 64) < 0)
                return fail_entry(ps, -ENOMEM, path, "out of memory");
        struct part *pt = &ps->parts[ps->nparts];
        *pt = (struct part){};
        pt->dir = strndup(path, dirlen);
        pt->path = strdup(path);
        if (!pt->dir || !pt->path) {
                part_done(pt);
                return fail_entry(ps, -ENOMEM, path, "out of memory");
        }
        ps->nparts++;
        return parse_desc(ps, pt, data, len);
}

static int read_archive(struct parser *ps, const void *buf, size_t len) {
        _cleanup_(archive_read_freep) struct archive *a = archive_read_new();
        if (!a)
                return fail_entry(ps, -ENOMEM, NULL, "out of memory");
        if (archive_read_support_filter_all(a) != ARCHIVE_OK || archive_read_support_format_tar(a) != ARCHIVE_OK)
                return fail_entry(ps, -MKM_E_ARCHIVE, NULL, "%s", archive_error_string(a));
        if (archive_read_open_memory(a, buf, len) != ARCHIVE_OK)
                return fail_entry(ps, -MKM_E_ARCHIVE, NULL, "not a readable tar archive: %s", archive_error_string(a));

        size_t entries = 0;
        uint64_t declared_total = 0;
        for (;;) {
                struct archive_entry *e;
                int ar = archive_read_next_header(a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar != ARCHIVE_OK)   /* warnings included: a db has no business being odd */
                        return fail_entry(ps, -MKM_E_ARCHIVE, NULL, "after %zu entries: %s", entries,
                                          archive_error_string(a) ? archive_error_string(a) : "unreadable entry");
                /* Headers (pax records included) are decompressed too: bound the whole stream. */
                if ((uint64_t)archive_filter_bytes(a, 0) > ps->lim.max_total)
                        return fail_entry(ps, -MKM_E_PARSE, NULL, "archive is larger than %llu bytes uncompressed",
                                          (unsigned long long)ps->lim.max_total);
                if (++entries > ps->lim.max_entries)
                        return fail_entry(ps, -MKM_E_PARSE, NULL, "more than %zu entries", ps->lim.max_entries);

                const char *path = archive_entry_pathname(e);
                if (!path || !*path)
                        return fail_entry(ps, -MKM_E_PARSE, NULL, "entry %zu has no name", entries);
                if (has_control(path))
                        return fail_entry(ps, -MKM_E_PARSE, NULL, "entry %zu: name contains a control character",
                                          entries);

                int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
                if (size < 0 || (uint64_t)size > ps->lim.max_total - declared_total)
                        return fail_entry(ps, -MKM_E_PARSE, path, "archive is larger than %llu bytes uncompressed",
                                          (unsigned long long)ps->lim.max_total);
                declared_total += (uint64_t)size;

                mode_t type = archive_entry_filetype(e);
                if (archive_entry_hardlink(e) || archive_entry_symlink(e) || (type != AE_IFREG && type != AE_IFDIR))
                        return fail_entry(ps, -MKM_E_PARSE, path, "not a regular file or directory");
                if (type == AE_IFDIR)
                        continue;

                const char *slash = strchr(path, '/');
                if (!slash) {
                        mkm_debug(ps->ctx, "%s.db: ignoring file '%s' outside a package directory", ps->repo, path);
                        continue;
                }
                const char *file = slash + 1;
                if (strchr(file, '/'))
                        return fail_entry(ps, -MKM_E_PARSE, path, "nested too deep (expected NAME-VERSION/FILE)");
                if (strcmp(file, "desc") != 0 && strcmp(file, "depends") != 0) {
                        /* "files" (of a .files db) and anything newer: skipped, but its declared
                         * size was counted above, so a bomb cannot hide here. */
                        mkm_debug(ps->ctx, "%s.db: ignoring '%s'", ps->repo, path);
                        continue;
                }

                _cleanup_free_ char *data = NULL;
                size_t dlen = 0;
                int r = read_entry_data(ps, a, path, size, &data, &dlen);
                if (r < 0)
                        return r;
                r = add_part(ps, path, (size_t)(slash - path), data, dlen);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int cmp_part(const void *x, const void *y) {
        const struct part *a = x, *b = y;
        int c = strcmp(a->dir, b->dir);
        return c ? c : strcmp(a->path, b->path);
}

static int cmp_pkg(const void *x, const void *y) {
        const struct repo_alpm_pkg *a = x, *b = y;
        return strcmp(a->name, b->name);
}

/* Move src's fields into dst (same directory, another file); a field in both is an error. */
static int merge_part(struct parser *ps, struct part *dst, struct part *src) {
        uint32_t both = dst->seen & src->seen;
        if (both) {
                for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                        if (both & (UINT32_C(1) << i))
                                return fail_entry(ps, -MKM_E_PARSE, src->path, "%s is also in another file of '%s'",
                                                  fields[i].key, dst->dir);
        }
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                if (!(src->seen & (UINT32_C(1) << i)))
                        continue;
                const struct field *f = &fields[i];
                if (kind_is_list(f->kind)) {
                        *field_list(&dst->pkg, f) = TAKE_PTR(*field_list(&src->pkg, f));
                } else if (f->kind == FK_SIZE) {
                        *(uint64_t *)((char *)&dst->pkg + f->offset) = *(uint64_t *)((char *)&src->pkg + f->offset);
                } else if (f->kind == FK_DATE) {
                        *(int64_t *)((char *)&dst->pkg + f->offset) = *(int64_t *)((char *)&src->pkg + f->offset);
                } else {
                        *field_str(&dst->pkg, f) = TAKE_PTR(*field_str(&src->pkg, f));
                }
        }
        dst->seen |= src->seen;
        return 0;
}

static int empty_list(char ***l) {
        if (*l)
                return 0;
        *l = mkm_new0(char *, 1);
        return *l ? 0 : -ENOMEM;
}

static int build_db(struct parser *ps, struct repo_alpm_db *db) {
        if (ps->nparts > 0)
                qsort(ps->parts, ps->nparts, sizeof *ps->parts, cmp_part);

        db->pkgs = mkm_new0(struct repo_alpm_pkg, ps->nparts);
        if (!db->pkgs)
                return fail_entry(ps, -ENOMEM, NULL, "out of memory");

        for (size_t i = 0; i < ps->nparts;) {
                struct part *pt = &ps->parts[i];
                size_t j = i + 1;
                for (; j < ps->nparts && strcmp(ps->parts[j].dir, pt->dir) == 0; j++) {
                        if (strcmp(ps->parts[j].path, ps->parts[j - 1].path) == 0)
                                return fail_entry(ps, -MKM_E_PARSE, pt->path, "appears twice in the archive");
                        int r = merge_part(ps, pt, &ps->parts[j]);
                        if (r < 0)
                                return r;
                }

                static const size_t required[] = { FIELD_NAME, FIELD_VERSION, FIELD_FILENAME };
                for (size_t k = 0; k < ELEMENTSOF(required); k++)
                        if (!(pt->seen & (UINT32_C(1) << required[k])))
                                return fail_entry(ps, -MKM_E_PARSE, pt->dir, "missing %s", fields[required[k]].key);

                size_t nl = strlen(pt->pkg.name), vl = strlen(pt->pkg.version);
                if (strlen(pt->dir) != nl + 1 + vl || strncmp(pt->dir, pt->pkg.name, nl) != 0 || pt->dir[nl] != '-' ||
                    strcmp(pt->dir + nl + 1, pt->pkg.version) != 0)
                        return fail_entry(ps, -MKM_E_PARSE, pt->dir, "directory does not match %%NAME%%-%%VERSION%% '%s-%s'",
                                          pt->pkg.name, pt->pkg.version);

                for (size_t k = 0; k < ELEMENTSOF(fields); k++)
                        if (kind_is_list(fields[k].kind) && empty_list(field_list(&pt->pkg, &fields[k])) < 0)
                                return fail_entry(ps, -ENOMEM, NULL, "out of memory");

                db->pkgs[db->n] = pt->pkg;
                db->pkgs[db->n].repo = db->name;
                db->n++;
                pt->pkg = (struct repo_alpm_pkg){};
                i = j;
        }

        if (db->n > 0)
                qsort(db->pkgs, db->n, sizeof *db->pkgs, cmp_pkg);
        for (size_t i = 1; i < db->n; i++)
                if (strcmp(db->pkgs[i - 1].name, db->pkgs[i].name) == 0)
                        return fail_entry(ps, -MKM_E_PARSE, NULL, "package '%s' appears twice ('%s-%s' and '%s-%s')",
                                          db->pkgs[i].name, db->pkgs[i - 1].name, db->pkgs[i - 1].version,
                                          db->pkgs[i].name, db->pkgs[i].version);
        return 0;
}

int repo_alpm_parse_limits(struct mkm_ctx *ctx, const char *repo_name, const void *buf, size_t len,
                           const struct repo_alpm_limits *limits, struct repo_alpm_db **ret,
                           struct mkm_err *reterr) {
        struct parser ps = {
                .ctx = ctx,
                .repo = repo_name,
                .err = reterr,
                .lim = limits ? *limits
                              : (struct repo_alpm_limits){ REPO_ALPM_MAX_TOTAL, REPO_ALPM_MAX_ENTRIES,
                                                           REPO_ALPM_MAX_FILE, REPO_ALPM_MAX_LINE },
        };
        _cleanup_(repo_alpm_db_freep) struct repo_alpm_db *db = mkm_new0(struct repo_alpm_db, 1);
        if (!db || !(db->name = strdup(repo_name)))
                return mkm_err_set(reterr, -ENOMEM, "%s.db: out of memory", repo_name);

        int r = read_archive(&ps, buf, len);
        if (r >= 0)
                r = build_db(&ps, db);
        parser_done(&ps);
        if (r < 0)
                return r;
        mkm_debug(ctx, "%s.db: %zu packages", repo_name, db->n);
        *ret = TAKE_PTR(db);
        return 0;
}

int repo_alpm_parse(struct mkm_ctx *ctx, const char *repo_name, const void *buf, size_t len,
                    struct repo_alpm_db **ret, struct mkm_err *reterr) {
        return repo_alpm_parse_limits(ctx, repo_name, buf, len, NULL, ret, reterr);
}

struct repo_alpm_db *repo_alpm_db_free(struct repo_alpm_db *db) {
        if (!db)
                return NULL;
        for (size_t i = 0; i < db->n; i++)
                pkg_done(&db->pkgs[i]);
        free(db->pkgs);
        free(db->name);
        free(db);
        return NULL;
}

const struct repo_alpm_pkg *repo_alpm_find(const struct repo_alpm_db *db, const char *name) {
        if (!db || db->n == 0)
                return NULL;
        struct repo_alpm_pkg key = { .name = (char *)name };
        return bsearch(&key, db->pkgs, db->n, sizeof *db->pkgs, cmp_pkg);
}
