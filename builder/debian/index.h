/* SPDX-License-Identifier: MIT */
/* Debian repository metadata: deb822 paragraphs, Release/InRelease, Packages indexes and the
 * relationship fields (Depends, Pre-Depends, Provides, Conflicts, Breaks).
 *
 * Everything here parses untrusted bytes: a Release only after its signature was checked (the
 * caller passes the signed text that gpgme returned), a Packages index only after its sha256
 * matched the Release. Still, every parser bounds what it keeps (DEB_* limits below), refuses
 * NUL bytes and control characters in names, and never trusts a length field.
 *
 * Memory: bookworm main/amd64 lists ~64k packages in ~50 MB of text. The index keeps only the
 * fields below, with strings interned in one arena per index (no malloc per field) and one-atom
 * relationship groups sharing their atom. Measured: 36 MB for the 50 MB text (15 MB of it the
 * struct deb_pkg array, 240 bytes a package; 6 MB the relationship groups), in ~0.3 s. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mkm_err;

#define DEB_INDEX_MAX_TEXT ((size_t)512 * 1024 * 1024)  /* decompressed Packages bytes */
#define DEB_INDEX_MAX_PKGS 1000000u
#define DEB_RELEASE_MAX ((size_t)16 * 1024 * 1024)
#define DEB_FIELD_MAX ((size_t)1024 * 1024)               /* one field's value */
#define DEB_RELEASE_MAX_FILES 100000u                     /* entries of a Release's SHA256: list */
#define DEB_RELEASE_MAX_LIST 1024u                        /* Architectures:, Components: words */
#define DEB_PKG_MAX_FIELDS 256u                           /* fields of one Packages paragraph */
#define DEB_NAME_MAX 255u                                 /* bytes of a package name */
#define DEB_VERSION_MAX 255u                              /* bytes of a version */
#define DEB_REL_MAX_GROUPS 65536u                         /* ", " groups of one relationship field */
#define DEB_REL_MAX_ALTS 1024u                            /* " | " alternatives of one group */

/* ---- deb822 ------------------------------------------------------------------------------- */

/* One field of a paragraph: views into the caller's buffer (not NUL-terminated). A folded
 * value keeps its continuation lines (each starts with "\n " in the view). */
struct deb822_field {
        const char *name;
        size_t name_len;
        const char *value;      /* leading blanks of the first line stripped, trailing ones too */
        size_t value_len;
        unsigned line;          /* 1-based line of the field name in the whole text */
};

/* Iterate the paragraphs of text: *pos starts at 0; each call fills ret (up to max fields,
 * *ret_n of them) with the next paragraph and advances *pos. Returns 1 for a paragraph, 0 at the
 * end, -MKM_E_PARSE (with "LABEL:LINE: why" in reterr) for malformed text: a line that is
 * neither "Name: value", a continuation, nor blank; a field name that is empty or holds bytes
 * outside 0x21..0x7e (':' excluded); a NUL byte; more than max fields; the same field twice. */
int deb822_next(const char *text, size_t len, size_t *pos, const char *label, struct deb822_field *ret, size_t max,
                size_t *ret_n, struct mkm_err *reterr);
/* Also refused: a carriage return (Debian metadata ends lines with LF alone), a field name that
 * starts with '-' (e.g. an InRelease passed with its armor), a continuation line before the
 * first field, a value longer than DEB_FIELD_MAX. A line of only blanks separates paragraphs. */

/* The field named name (ASCII case-insensitive, as dpkg), or NULL. */
const struct deb822_field *deb822_find(const struct deb822_field *f, size_t n, const char *name);

/* deb822_next() finds the line number of *pos by counting from the start of text, which is fine
 * for a Release (one paragraph) but quadratic over a whole Packages index. An iterator keeps the
 * line count and is what loops over many paragraphs use; same rules and messages otherwise.
 *     struct deb822_iter it;
 *     deb822_iter_init(&it, text, len, label);
 *     while ((r = deb822_iter_next(&it, fields, ELEMENTSOF(fields), &n, &err)) > 0) ...
 * On error the iterator stays at the bad paragraph. ret[] may be partly written on error. */
struct deb822_iter {
        const char *text;
        size_t len;
        const char *label;
        size_t pos;             /* next byte to read */
        unsigned line;          /* 1-based line number of text[pos] */
        bool allow_comments;    /* skip lines starting with '#' (apt's .sources allow them;
                                 * Release and Packages do not: there they are an error). A
                                 * comment between continuation lines stays inside that value's
                                 * view. */
        size_t max_value;       /* longest value, DEB_FIELD_MAX after init (a Release raises it:
                                 * its SHA256: list is one field) */
        size_t checked_;        /* internal: text[..checked_) was searched for NUL and CR */
        size_t bad_;            /* internal: offset of the first NUL or CR found, or SIZE_MAX */
};
void deb822_iter_init(struct deb822_iter *it, const char *text, size_t len, const char *label);
int deb822_iter_next(struct deb822_iter *it, struct deb822_field *ret, size_t max, size_t *ret_n,
                     struct mkm_err *reterr);

/* Debian policy §5.6.1 package name: [a-z0-9][a-z0-9+.-]+, at most DEB_NAME_MAX bytes. */
bool deb_name_valid(const char *s, size_t len);

/* ---- Release ------------------------------------------------------------------------------ */

struct deb_release_file {
        char *path;             /* "main/binary-amd64/Packages.xz", validated: no "..", no leading '/' */
        char sha256[65];
        uint64_t size;
};

struct deb_release {
        char *origin, *label, *suite, *codename, *version;
        int64_t date;           /* Date:, seconds since 1970 UTC; -1 if absent */
        int64_t valid_until;    /* Valid-Until:, -1 if absent */
        bool acquire_by_hash;
        char **architectures;   /* NULL-terminated */
        char **components;
        struct deb_release_file *files;  /* the SHA256: list, in file order */
        size_t n_files;
};

/* Parse a Release (the signed text of an InRelease, or a plain Release that was checked against
 * its Release.gpg). Dates in RFC 2822 form as in Release files ("Sat, 10 Aug 2024 09:54:18
 * UTC"); a Date that cannot be read is -MKM_E_PARSE. Lines of SHA256: need 3 fields. Caller
 * frees with deb_release_free().
 * Also -MKM_E_PARSE: no SHA256: list (MD5Sum and SHA1 alone are not trusted, and are ignored
 * when present), a second paragraph, a path that deb_index_parse would refuse as a Filename, the
 * same path twice, more than DEB_RELEASE_MAX_FILES entries, a one-line field (Origin, Suite, ...)
 * that is folded or holds a control character, Acquire-By-Hash other than yes/no. */
int deb_release_parse(const char *text, size_t len, const char *label, struct deb_release **ret,
                      struct mkm_err *reterr);
struct deb_release *deb_release_free(struct deb_release *r);
static inline void deb_release_freep(struct deb_release **r) { (void)deb_release_free(*r); }

/* The entry for path, or NULL. */
const struct deb_release_file *deb_release_find(const struct deb_release *r, const char *path);

/* RFC 2822-ish date of Release files ("Sat, 10 Aug 2024 09:54:18 UTC" or "+0000"): seconds. */
int deb_parse_date(const char *s, size_t len, int64_t *ret);

/* ---- relationships ------------------------------------------------------------------------ */

enum deb_relop {
        DEB_REL_ANY,    /* no version given */
        DEB_REL_LT,     /* << */
        DEB_REL_LE,     /* <= (and the obsolete '<') */
        DEB_REL_EQ,     /* = */
        DEB_REL_GE,     /* >= (and the obsolete '>') */
        DEB_REL_GT,     /* >> */
};

/* "name[:arch] [(op version)] [arch restriction ignored]"; profiles <...> are dropped as apt does
 * for a build with no profiles (a restriction list "[...]" appears only in source packages).
 * Precisely: an atom whose profile lists "<a !b> <c>" are all false with no profile active (a
 * list is true when each of its terms is: "!x" is true, "x" is false) is left out, and a group
 * left without alternatives is left out; "[...]" is skipped, the atom kept. In an index, a group
 * of one atom may share that atom with other packages: atoms are read-only. */
struct deb_atom {
        const char *name;       /* interned */
        const char *arch;       /* qualifier after ':' ("any", "native", "amd64"), NULL if none */
        const char *version;    /* NULL when op == DEB_REL_ANY */
        enum deb_relop op;
};

/* Alternatives "a | b | c". */
struct deb_group {
        struct deb_atom *atoms;
        uint32_t n;
};

struct deb_rel {
        struct deb_group *groups;
        uint32_t n;
};

/* ---- Packages ----------------------------------------------------------------------------- */

enum deb_priority {
        DEB_PRIO_REQUIRED,
        DEB_PRIO_IMPORTANT,
        DEB_PRIO_STANDARD,
        DEB_PRIO_OPTIONAL,
        DEB_PRIO_EXTRA,
        DEB_PRIO_UNKNOWN,
};

enum deb_multiarch {
        DEB_MA_NO,
        DEB_MA_SAME,
        DEB_MA_FOREIGN,
        DEB_MA_ALLOWED,
};

struct deb_pkg {
        const char *name, *version, *arch;      /* interned */
        const char *filename;                   /* "pool/main/a/apt/apt_2.6.1_amd64.deb", validated */
        const char *source;                     /* Source: without the "(version)"; NULL = name */
        char sha256[65];
        uint64_t size;
        uint64_t installed_size;                /* Installed-Size: in KiB, as the field */
        enum deb_priority priority;
        enum deb_multiarch multi_arch;
        bool essential;
        bool important;                         /* "Important: yes" (apt's protected packages;
                                                 * "Protected: yes", its newer name, too) */
        uint32_t index;                         /* which deb_index it came from (the caller's number) */
        struct deb_rel pre_depends, depends, recommends, provides, conflicts, breaks;
};

/* One parsed Packages index. Strings and arrays live in the index's arena. */
struct deb_index {
        struct deb_pkg *pkgs;
        size_t n;
        uint32_t number;        /* the caller's label for it (its position among the indexes) */
        char *label;            /* e.g. "bookworm/main/binary-amd64/Packages" for messages */
        void *arena;            /* internal */
};

/* Parse an uncompressed Packages index. Paragraphs without Package/Version/Architecture/
 * Filename/Size/SHA256 are -MKM_E_PARSE naming "LABEL:LINE". Filename must be a relative path
 * without "..", "//" or control characters (it ends up in a mirror URL). Caller frees.
 * Details: Package must be deb_name_valid(), Version as dpkg's parseversion() allows (a first
 * character that is not a digit is accepted, as dpkg only warns), Architecture [a-z0-9-]+;
 * these, Filename, Size, SHA256, Installed-Size, Priority, Multi-Arch, Essential, Important,
 * Protected and Source must fit on one line; an unknown Priority is DEB_PRIO_UNKNOWN, an unknown
 * Multi-Arch or a yes/no field that says neither is an error (as dpkg). Other fields are not
 * looked at. More than DEB_INDEX_MAX_PKGS paragraphs or DEB_INDEX_MAX_TEXT bytes: -E2BIG.
 * Measured on bookworm main/amd64 (63k packages, 50 MB): see packages.c. */
int deb_index_parse(const char *text, size_t len, const char *label, uint32_t number, struct deb_index **ret,
                    struct mkm_err *reterr);
struct deb_index *deb_index_free(struct deb_index *x);
static inline void deb_index_freep(struct deb_index **x) { (void)deb_index_free(*x); }

/* Parse one relationship field value (e.g. a Depends: line) into rel, allocating from x's
 * arena (x may be NULL: then rel is malloc'ed and freed with deb_rel_done). For the resolver's
 * own targets ("Packages=" items) and tests. */
int deb_rel_parse(struct deb_index *x, const char *value, size_t len, struct deb_rel *rel, struct mkm_err *reterr);
/* Errors are -MKM_E_PARSE with "why at byte N of 'value'" (the index parser adds LABEL:LINE and
 * the field); more than DEB_REL_MAX_GROUPS groups or DEB_REL_MAX_ALTS alternatives is an error.
 * rel is written only on success. Not thread-safe for one x (it allocates from x's arena). */
void deb_rel_done(struct deb_rel *rel);         /* only for x == NULL */
