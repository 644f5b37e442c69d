/* SPDX-License-Identifier: MIT */
/* The manifest: a sorted, mtree-like listing of a machine tree, and its sha256, the machine's
 * digest. Two trees are the same machine exactly when their digests are equal; co-tenants compare
 * digests instead of trees. Kept outside the tree, in the state folder.
 *
 * One line per entry, sorted by path (byte order of the raw path), "." first, in this order:
 *   PATH type=dir|file|link|other mode=0755 uid=0 gid=0 [size=N sha256=HEX] [link=TARGET]
 *        [rdev=MAJOR:MINOR] [xattr.NAME=HEX ...] time=T
 * PATH is "." or starts with "./"; bytes outside printable ASCII, spaces and backslashes (in
 * PATH, TARGET and NAME) are written as \ooo (octal), as mtree does. size and sha256 are a
 * regular file's, link a symlink's target. Devices, fifos and sockets appear as type=other with
 * their rdev, so they are visible rather than silently skipped. xattrs (sorted by name, values
 * in lower-case hex) are recorded for files and directories, those that are content only
 * (normalize_xattr_is_content(): user.*, security.capability, the POSIX ACLs); a host's labels
 * (security.selinux, trusted.*, ...) are not, as atimes are not. T is the mtime in whole
 * seconds. */
#pragma once

#include <stdint.h>
#include <stdio.h>

struct mkm_ctx;
struct mkm_err;

#define MANIFEST_DIGEST_LEN 72  /* "sha256:" + 64 hex + NUL */

enum manifest_type {
        MANIFEST_DIR,
        MANIFEST_FILE,
        MANIFEST_LINK,
        MANIFEST_OTHER,         /* device, fifo, socket */
        _MANIFEST_TYPE_MAX,
        _MANIFEST_TYPE_INVALID = -1,
};

/* One entry, as a walk of a tree sees it or as manifest_parse() reads it. */
struct manifest_entry {
        char *path;             /* "." or "./a/b", raw bytes (unescaped) */
        enum manifest_type type;
        unsigned mode;          /* permission bits (07777) */
        unsigned uid, gid;
        uint64_t size;          /* MANIFEST_FILE only */
        char sha256[65];        /* MANIFEST_FILE: lower-case hex; "" otherwise */
        char *link;             /* MANIFEST_LINK: the target, raw bytes; NULL otherwise */
        unsigned rdev_major, rdev_minor;        /* MANIFEST_OTHER only */
        char *xattrs;           /* files and directories: " xattr.NAME=HEX" per attribute, as the
                                 * manifest writes them (NAME escaped); NULL when there are none */
        int64_t time;           /* mtime, whole seconds */
        unsigned line;          /* manifest_parse(): the line it came from (1-based); 0 from a walk */
};

/* "dir", "file", "link", "other"; NULL for an invalid type. */
const char *manifest_type_to_string(enum manifest_type t);

/* Write s escaped as the manifest writes paths, link targets and xattr names. */
void manifest_escape(FILE *f, const char *s);
/* The same into a new string (caller frees); NULL on ENOMEM. */
char *manifest_escape_str(const char *s);
/* One extended attribute as a manifest line lists it: " xattr.NAME=HEX" (NAME escaped). */
void manifest_write_xattr(FILE *f, const char *name, const void *value, size_t len);

/* Called by manifest_walk() once per entry, in manifest order (sorted by path, "." first). e is
 * borrowed for the duration of the call. A negative return stops the walk and is returned. */
typedef int (*manifest_entry_fn)(const struct manifest_entry *e, void *userdata);

/* Walk the tree under rootfd (without following symlinks or leaving its file system), hash its
 * files, and call fn for every entry, the root "." included. With clamp_epoch >= 0 every entry's
 * time stamps are first clamped to it (normalize_clamp_at()), in the same walk, and the entries
 * show the clamped times; with -1 the walk only reads: it writes nothing, not even access times
 * where O_NOATIME is allowed. */
int manifest_walk(struct mkm_ctx *ctx, int rootfd, int64_t clamp_epoch, manifest_entry_fn fn, void *userdata,
                  struct mkm_err *reterr);

/* manifest_walk() into the manifest text (caller frees) and its digest "sha256:HEX". */
int manifest_build(struct mkm_ctx *ctx, int rootfd, int64_t clamp_epoch, char **ret_text,
                   char ret_digest[MANIFEST_DIGEST_LEN], struct mkm_err *reterr);

/* The manifest of entries described elsewhere (export's tar writer describes what it archives):
 * sorts e by path, formats it as manifest_build() does into *ret_text (NULL: not wanted) and
 * its digest. */
int manifest_format(struct manifest_entry *e, size_t n, char **ret_text, char ret_digest[MANIFEST_DIGEST_LEN]);

/* Parse a manifest text into entries sorted by path (caller frees with manifest_entries_free()).
 * Strict: every line must be as manifest_build() writes it (keys in any order); a malformed one
 * fails with -MKM_E_PARSE and "line N: what was expected" in reterr, as does a path listed twice
 * or a manifest without the root ".". */
int manifest_parse(const char *text, struct manifest_entry **ret, size_t *ret_n, struct mkm_err *reterr);
void manifest_entries_free(struct manifest_entry *e, size_t n);

/* text without the " xattr.NAME=HEX" tokens whose NAME is not content: what manifest_build()
 * writes for the same tree now that host labels are left out. Manifests written before that
 * (on an SELinux host every entry has a security.selinux) are compared through it, by drift and
 * by export. Everything else, a malformed token included, is copied as it is, for
 * manifest_parse() to judge. Returns 1 when a token was left out, 0 when *ret_text is a copy of
 * text; the caller frees *ret_text. */
int manifest_strip_host_xattrs(const char *text, char **ret_text);
