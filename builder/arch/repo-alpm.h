/* SPDX-License-Identifier: MIT */
/* Arch sync databases (pacman's REPO.db): a tar archive (gzip, zstd, xz, bzip2 or none) of
 * NAME-VERSION/desc records (and old-style NAME-VERSION/depends), parsed into packages.
 *
 * The db comes from an untrusted mirror, so the parser is strict where pacman is lenient:
 * every value is checked (names, versions, %FILENAME% as alpm's _alpm_validate_filename and
 * more, %SHA256SUM% as 64 hex digits, sizes as overflow-free decimals, no control characters),
 * sizes, entry counts and line lengths are capped, and inconsistencies (a directory that does
 * not match %NAME%-%VERSION%, a package twice, a field twice) are errors, not warnings. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct mkm_ctx;
struct mkm_err;

/* One package of a sync db. Every pointer is owned by the db, except repo (borrowed from
 * repo_alpm_db.name). Optional strings are NULL when absent; lists are NULL-terminated and
 * never NULL (possibly empty). Dependency lists hold the raw strings ("foo>=1.0",
 * "bar: why" for optdepends), each already checked with vercmp_dep_parse(). */
struct repo_alpm_pkg {
        char *name;             /* %NAME%, required, pacman's name charset */
        char *version;          /* %VERSION%, required, "[epoch:]pkgver-pkgrel" */
        char *base;             /* %BASE% */
        char *desc;             /* %DESC% */
        char *filename;         /* %FILENAME%, required, a plain file name (no '/', no leading '.') */
        char *sha256;           /* %SHA256SUM%, 64 lowercase hex digits (upper case is folded) */
        char *md5;              /* %MD5SUM%, 32 lowercase hex digits */
        char *pgpsig;           /* %PGPSIG%, base64 of the detached signature */
        char *arch;             /* %ARCH% */
        char *url;              /* %URL% */
        char *packager;         /* %PACKAGER% */
        uint64_t csize;         /* %CSIZE%, bytes of the package file, 0 if absent */
        uint64_t isize;         /* %ISIZE%, installed bytes, 0 if absent */
        int64_t builddate;      /* %BUILDDATE%, seconds since 1970, 0 if absent */
        char **depends;         /* %DEPENDS% */
        char **optdepends;      /* %OPTDEPENDS% */
        char **makedepends;     /* %MAKEDEPENDS% */
        char **checkdepends;    /* %CHECKDEPENDS% */
        char **provides;        /* %PROVIDES% */
        char **conflicts;       /* %CONFLICTS% */
        char **replaces;        /* %REPLACES% */
        char **groups;          /* %GROUPS% */
        char **licenses;        /* %LICENSE% */
        const char *repo;       /* borrowed: the db's name */
};

/* A parsed db: packages sorted by name (strcmp), names unique. */
struct repo_alpm_db {
        char *name;
        struct repo_alpm_pkg *pkgs;
        size_t n;
};

/* Caps on what a hostile mirror can make us decompress and hold. */
struct repo_alpm_limits {
        uint64_t max_total;     /* uncompressed bytes of the whole archive (declared sizes and read) */
        size_t max_entries;     /* archive entries, directories included */
        size_t max_file;        /* bytes of one desc/depends file */
        size_t max_line;        /* bytes of one line */
};

#define REPO_ALPM_MAX_TOTAL (UINT64_C(256) << 20)
#define REPO_ALPM_MAX_ENTRIES ((size_t)200000)
#define REPO_ALPM_MAX_FILE ((size_t)1 << 20)
#define REPO_ALPM_MAX_LINE ((size_t)64 << 10)

/* Parse the db archive in buf (len bytes; borrowed, not kept). repo_name ("core") names the db
 * in messages ("core.db: entry 'foo-1.0-1/desc': ...") and in the result. ctx may be NULL
 * (only debug events are emitted). On success *ret is a new db the caller frees with
 * repo_alpm_db_free(). Failures: -MKM_E_ARCHIVE when libarchive cannot read the archive (not
 * an archive, truncated or corrupt stream), -MKM_E_PARSE for bad contents and exceeded caps,
 * -ENOMEM; reterr names the entry and the problem. An archive without entries is an empty db. */
int repo_alpm_parse(struct mkm_ctx *ctx, const char *repo_name, const void *buf, size_t len,
                    struct repo_alpm_db **ret, struct mkm_err *reterr);

/* The same with explicit caps; limits NULL means the REPO_ALPM_MAX_* defaults. */
int repo_alpm_parse_limits(struct mkm_ctx *ctx, const char *repo_name, const void *buf, size_t len,
                           const struct repo_alpm_limits *limits, struct repo_alpm_db **ret,
                           struct mkm_err *reterr);

/* Frees the db and every package; accepts NULL, returns NULL. */
struct repo_alpm_db *repo_alpm_db_free(struct repo_alpm_db *db);
static inline void repo_alpm_db_freep(struct repo_alpm_db **db) { (void)repo_alpm_db_free(*db); }

/* The package called name (binary search), or NULL. Borrowed, valid while db lives. */
const struct repo_alpm_pkg *repo_alpm_find(const struct repo_alpm_db *db, const char *name);
