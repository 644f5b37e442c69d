/* SPDX-License-Identifier: MIT */
/* Extract one package archive into a staging root through its dirfd, never outside it.
 *
 * Threat: packages come from mirrors that co-tenants choose. A signed package may still carry
 * entries like "usr/../../x", "/etc/x", a symlink followed by a write through it, a hard link to a
 * host file, device nodes, or more bytes than the repository promised. pacman trusts signed
 * packages here (REFERENCE.md); we do not. An entry's directory is resolved with
 * chase_in_root() (util/chase.h), one component at a time, inside the root: a symlink on the way
 * is followed, as the machine would, only when an earlier package created it (bin -> usr/bin),
 * never when this package did (known by inode, whatever name leads to it); the entry itself is
 * created with O_NOFOLLOW in that directory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct archive;
struct hash_ctx;
struct mkm_ctx;
struct mkm_err;
struct extract_owners;

#define EXTRACT_META_MAX (16u << 20)    /* bytes of one metadata member kept in memory */

/* A top-level member kept in memory instead of written (extract_opts.meta_names): a package
 * format's own metadata (Arch: .PKGINFO, .MTREE, .INSTALL). */
struct extract_member {
        char *name;             /* the name it matched in meta_names */
        char *data;             /* its bytes, NUL-terminated (len does not count the NUL) */
        size_t len;
        int64_t mtime;          /* the member's mtime (a package db may keep it with the copy) */
};

struct extract_result {
        char **files;           /* sorted relative paths, directories end in '/' (pacman's %FILES% form) */
        uint64_t bytes;         /* regular-file bytes written (hard links counted once) */
        struct extract_member *meta;    /* the meta_names members the archive had, in archive order
                                         * (a repeated one: the last copy) */
        size_t n_meta;
};

/* The kept member called name, or NULL when the archive had none. Borrowed from r. */
const struct extract_member *extract_result_meta(const struct extract_result *r, const char *name);

struct extract_opts {
        const char *label;              /* package name, for messages and the ownership map */
        uint64_t max_bytes;             /* the size the metadata promised; 0 = 16 GiB cap */
        /* Top-level members that are metadata, not part of the tree: a member whose normalised
         * name is in meta_names (NULL-terminated; NULL = none) is read into ret->meta (at most
         * EXTRACT_META_MAX bytes) and not written; with skip_dot_toplevel, every other top-level
         * name starting with '.' is skipped (libalpm: top-level dot files are never installed). */
        const char *const *meta_names;
        bool skip_dot_toplevel;
        struct extract_owners *owners;  /* borrowed; path ownership across packages, NULL = none */
        /* A whole machine tree (mkmachine import), not a package: */
        bool apply_root;                /* the "./" entry's owner, mode, xattrs and mtime go to the root */
        bool restore_dir_times;         /* directory mtimes are set again once every entry is in, as tar
                                         * does (creating an entry changes its directory's mtime) */
        bool allow_special;             /* device nodes and fifos are created (a package may carry none) */
        /* The bytes extracted are the bytes hashed (mkmachine import: a local tarball's owner can
         * rewrite it in place after it was checked against SHA256SUMS, so what was checked must
         * be what is extracted). When set (borrowed; the caller finalises it), extract_archive_fd()
         * feeds every byte it reads from fd to hash, in order, seeks nowhere (what the archive
         * does not need is read and hashed, not skipped), and once the archive has ended reads the
         * rest of fd, up to its end, into hash too: hash then covers the bytes from fd's offset to
         * its end exactly as they were read. Ignored by extract_archive(). */
        struct hash_ctx *hash;
        /* With hash: read (and hash) at most this many bytes of fd, 0 for no limit. A file that
         * someone keeps appending to then ends there (and its hash differs) instead of holding
         * the reader forever. */
        uint64_t hash_max;
};

/* Read an archive (tar, any libarchive filter) from fd and write its entries under rootfd.
 * On failure nothing is promised about the partly written root (the caller discards the staging
 * tree); nothing outside the root is ever touched. ret is filled on success only. */
int extract_archive_fd(struct mkm_ctx *ctx, int rootfd, int fd, const struct extract_opts *opts,
                       struct extract_result *ret, struct mkm_err *reterr);

/* The same on a libarchive reader the caller opened (borrowed; read up to its end, not closed):
 * e.g. data.tar.* read from inside a .deb (an ar archive) without a temporary file. Errors name
 * opts->label; a malformed entry is -MKM_E_ARCHIVE with libarchive's message. */
int extract_archive(struct mkm_ctx *ctx, int rootfd, struct archive *a, const struct extract_opts *opts,
                    struct extract_result *ret, struct mkm_err *reterr);

void extract_result_done(struct extract_result *r);

/* Ownership of paths across the packages of one transaction: two packages owning the same
 * non-directory path is a conflict, as in pacman. */
struct extract_owners *extract_owners_new(void);
struct extract_owners *extract_owners_free(struct extract_owners *o);
static inline void extract_owners_freep(struct extract_owners **o) { (void)extract_owners_free(*o); }

/* Normalise an archive path: strip "./" and trailing '/', refuse absolute paths, "..", empty
 * components after normalisation, and control characters. Caller owns *ret. Exposed for tests. */
int extract_normalize_path(const char *in, char **ret);
