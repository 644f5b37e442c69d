/* SPDX-License-Identifier: MIT */
/* The recipe: load (with includes), validate, and print in canonical form.
 * The syntax is systemd's INI (ini.h); the reference is docs/mkmachine.recipe.5.md.
 *
 * Every error is "FILE:LINE: [Section] Key=: what was expected, got 'value'" in reterr, with
 * -MKM_E_PARSE for syntax errors and -MKM_E_RECIPE for everything else (unknown keys, bad
 * values, missing files, include cycles). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/fs.h"

struct mkm_ctx;
struct mkm_err;

#define RECIPE_INCLUDE_DEPTH_MAX 16
#define RECIPE_FILE_MAX (4u * 1024u * 1024u)    /* bytes in one recipe file */
#define RECIPE_FORMAT_WIDTH 4000u               /* bytes a list line of recipe_format() fills */

enum recipe_distribution {
        RECIPE_DISTRO_ARCH,
        RECIPE_DISTRO_DEBIAN,
        _RECIPE_DISTRO_MAX,
        _RECIPE_DISTRO_INVALID = -1,
};

/* "arch", "debian"; NULL for out-of-range values. */
const char *recipe_distribution_to_string(enum recipe_distribution d);

enum recipe_tristate {
        RECIPE_UNSET = -1,
        RECIPE_NO = 0,
        RECIPE_YES = 1,
};

/* Copy=SRC:DEST[:MODE[:OWNER]] */
struct recipe_copy {
        char *src;              /* absolute, resolved against the directory of the recipe that set it */
        char *dest;             /* absolute path inside the machine, no "." or ".." components */
        mode_t mode;            /* valid only if has_mode */
        bool has_mode;
        char *owner;            /* "user", "user:group", "uid" or "uid:gid"; NULL if not given */
        char *from_dir;         /* the directory of the recipe file that set it (sources must be
                                 * there or below); NULL when parsed from a buffer */
};

/* One [Exec]/[Files]/[Network] assignment passed verbatim to NAME.nspawn, in recipe order. */
struct recipe_nspawn_setting {
        char *section;          /* "Exec", "Files" or "Network" */
        char *key;
        char *value;            /* verbatim; "" resets the setting as systemd does */
        char *file;             /* the recipe file (as shown in messages) and line that set it */
        unsigned line;
};

/* Where the last assignment of a key came from (internal bookkeeping; also used in messages). */
struct recipe_origin {
        const char *file;       /* borrowed from recipe->shown_files */
        unsigned line;
};

struct recipe {
        char *path;             /* absolute path of the top recipe; NULL for recipe_load_buffer() */
        char **files;           /* absolute paths of every file read, top first, each once */
        char **shown_files;     /* the same files as named in messages (internal) */
        uid_t reader_uid;       /* whose permissions its sources are read with (fs_reader):
                                 * recipe_file_reader() of each of files and the owners of the
                                 * symbolic links on the top recipe's path, folded with
                                 * recipe_reader_fold(); 0 when all are root's */

        /* [Machine] */
        char *name;

        /* [Bootstrap] */
        enum recipe_distribution distribution;
        char **mirrors;         /* empty: use the host's configuration */
        char *snapshot;         /* "YYYY-MM-DD" or "YYYYMMDDTHHMMSSZ", NULL if none */
        int64_t snapshot_epoch; /* the snapshot as seconds since 1970 (UTC), -1 if none */
        char **suites;          /* debian only; default "bookworm"; the first is the release, the
                                 * others (bookworm-updates, ...) add to it */
        char **components;      /* debian only; default "main" */
        char **repositories;    /* arch only; default "core extra" */
        char **packages;
        char *variant;          /* debian only (mmdebstrap variants); default "minbase" */
        char *keyring;          /* absolute path or NULL (use the distro keyring in keys/) */
        char *keyring_dir;      /* the directory of the recipe file that set it (it must be there or
                                 * below); NULL when parsed from a buffer */
        char *architecture;     /* in the distro's own spelling (x86_64 for arch, amd64 for debian) */
        char **providers;       /* "virtual:package" items */
        bool require_db_signature;      /* refuse a repository db without a valid signature */

        /* [Hooks] */
        char **enable_services;
        enum recipe_tristate fuse;
        char *docker_storage_driver;    /* NULL if unset */
        enum recipe_tristate docker_privileged; /* yes: today's privileged machine for Docker; else
                                                 * a user-namespaced one (hooks.h) */
        char **root_authorized_keys;    /* absolute paths */
        char **root_authorized_keys_dirs; /* for each, the directory of the recipe file that set it
                                           * ("" when parsed from a buffer) */
        struct recipe_copy *copies;
        size_t n_copies;
        char **runs;                    /* one shell command line per item */
        bool run_network;

        /* [Exec] [Files] [Network] pass-through, in order */
        struct recipe_nspawn_setting *nspawn;
        size_t n_nspawn;

        /* [Network] Address= Gateway=: mkmachine keys (a networkd .network file for host0) */
        char **network_addresses;
        char **network_gateways;

        struct recipe_origin *origins;  /* internal: indexed by key id */
};

/* A key the parser knows. */
struct recipe_key {
        const char *section;
        const char *key;
        bool nspawn;            /* passed through to NAME.nspawn */
};

/* Every (section, key) the parser accepts, mkmachine's first, then the .nspawn ones.
 * Borrowed static table; *ret_n receives its length. */
const struct recipe_key *recipe_known_keys(size_t *ret_n);

/* Where a key's effective value was set: the file (as named in messages; borrowed from r) and
 * line of its last assignment (for an [Exec]/[Files]/[Network] pass-through key, the last one in
 * r->nspawn). -ENOENT when no file sets it (a default, or an unknown key). */
int recipe_key_origin(const struct recipe *r, const char *section, const char *key, const char **ret_file,
                      unsigned *ret_line);

/* One error found in a recipe. */
struct recipe_error {
        int code;               /* -MKM_E_RECIPE, or -MKM_E_PARSE for a syntax error */
        char *file;             /* the file as named in messages; NULL if none applies */
        unsigned line;          /* 0 when the error is about the recipe as a whole (a missing key) */
        char *message;          /* the whole message, "FILE:LINE: [Section] Key=: what was expected" */
};

/* Errors in file order (an included file's where its Include= is), then what only the whole
 * recipe shows (missing keys, keys that contradict each other). */
struct recipe_errors {
        struct recipe_error *e;
        size_t n;
};
void recipe_errors_done(struct recipe_errors *errs);

/* Read the recipe at path, following Include= (relative to the including file's directory,
 * cycles and depth beyond RECIPE_INCLUDE_DEPTH_MAX refused), apply defaults and validate the
 * values. A missing or unreadable file is -MKM_E_RECIPE naming the file. ctx may be NULL.
 * A bad value does not stop the reading: every error is found, and reterr gets them all, one a
 * line, with the first one's code (-MKM_E_PARSE or -MKM_E_RECIPE). A syntax error ends the file
 * it is in (an included file's: the including file is still read). With ctx->json, files are
 * named by their absolute paths in messages.
 * On success the caller owns *ret (recipe_free). */
int recipe_load(struct mkm_ctx *ctx, const char *path, struct recipe **ret, struct mkm_err *reterr);

/* The same for one buffer, without I/O: Include= is refused. Relative paths are resolved
 * against the directory part of filename. For tests and the fuzzer. */
int recipe_load_buffer(const char *buf, size_t len, const char *filename, struct recipe **ret,
                       struct mkm_err *reterr);

struct recipe *recipe_free(struct recipe *r);
static inline void recipe_freep(struct recipe **r) {
        (void)recipe_free(*r);
}

/* The canonical text: fixed section and key order, lists space-joined, includes merged,
 * defaults filled in, no comments. Deterministic for equal recipes. Caller owns *ret_text. */
int recipe_format(const struct recipe *r, char **ret_text);

/* A stored recipe (rebuild) was loaded from the state, not from the files that set its Copy=,
 * RootAuthorizedKeys= and Keyring= sources: forget the directories recorded for them, so that validation
 * judges them against r->files (the files the first build read), the path as written and where
 * it leads both under one's directory. */
void recipe_forget_source_dirs(struct recipe *r);

/* Open a Copy= or RootAuthorizedKeys= source path (absolute) set in the recipe file in directory
 * dir (NULL or "": a stored recipe, judged against the directories of r->files), walked inside
 * that directory (fs_open_beside()): nothing outside it is looked up, opened or told about, and
 * a directory or source swapped for a link since the recipe was read is refused. A regular file,
 * or with allow_dir a directory. Returns the fd (O_RDONLY|O_NONBLOCK) or a negative errno:
 * -EXDEV when it is not beside, -EBADFD for another type. The build opens its sources with it,
 * so what it copies is what lies beside the recipe then. */
struct stat;
/* Who reads a recipe's sources when several files and links have a say: root (0) gives way to
 * anyone, one user stays that user, and two different users give nobody (neither may read with
 * the other's permissions). */
#define RECIPE_READER_NOBODY ((uid_t)65534)

/* Levels of directories a Copy= source may have below itself (check judges them, the build copies
 * them). */
#define RECIPE_COPY_DEPTH_MAX 256
uid_t recipe_reader_fold(uid_t a, uid_t b);
/* The reader a recipe file brings, from its stat and its directory's: its owner folded with the
 * directory's (who can replace it and what lies beside it); nobody when root owns both but
 * others can write the file or the directory (group or world), since its lines or its
 * neighbours may then be any of theirs. */
uid_t recipe_file_reader(const struct stat *file, const struct stat *dir);

/* The identity r's sources are opened with (r->reader_uid; fs_reader_for_uid()). */
int recipe_reader(const struct recipe *r, struct fs_reader *ret);

/* A stored recipe (rebuild) whose state recorded no reader (built before readers were recorded),
 * with r->files set to the files it was first read from: the reader from those files as they are
 * now, as loading would fold it; nobody when one is gone or is no longer a regular file (a link
 * now: who made it is not known). */
void recipe_reader_from_files(struct recipe *r);

int recipe_open_source(const struct recipe *r, const char *path, const char *dir, bool allow_dir, struct stat *ret_st);

/* Keyring= opened for the build: as recipe_open_source() (a file or a directory), or for a recipe
 * parsed from a buffer (tests) opened as it is. The fd or a negative errno, as there. */
int recipe_open_keyring(const struct recipe *r, struct stat *ret_st);

/* The same for a backend, with the build's messages: the recipe's file:line, "not beside the
 * recipe now" when it changed since it was checked; file_only for a backend that takes one file
 * (Debian: apt's Signed-By names one). */
struct mkm_err;
int recipe_open_keyring_for_build(const struct recipe *r, bool file_only, struct stat *ret_st, struct mkm_err *reterr);

/* What a build needs beyond a valid recipe: Packages= non-empty, Keyring= and
 * RootAuthorizedKeys= and Copy= sources readable. -MKM_E_RECIPE with file:line on failure (every
 * failure, one a line). */
int recipe_validate_for_build(const struct recipe *r, struct mkm_err *reterr);

/* recipe_load and recipe_validate_for_build in one, for `mkmachine check`: on recipe errors
 * returns the first one's code with the list in *ret_errors (caller: recipe_errors_done) and the
 * same text in reterr; other failures (ENOMEM) in reterr alone. *ret on success only. */
int recipe_check(struct mkm_ctx *ctx, const char *path, struct recipe **ret, struct recipe_errors *ret_errors,
                 struct mkm_err *reterr);

/* Exposed for tests: the Damerau-Levenshtein (optimal string alignment) distance, ASCII
 * case-insensitive. */
unsigned recipe_edit_distance(const char *a, const char *b);

/* systemd's booleans (yes/no, true/false, on/off, 1/0, y/n, t/f; any case): 1, 0, or -EINVAL. */
int recipe_parse_boolean(const char *s);
