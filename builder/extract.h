/* SPDX-License-Identifier: MIT */
/* Extract one package archive into a staging root through its dirfd, never outside it.
 *
 * Threat: packages come from mirrors that co-tenants choose. A signed package may still carry
 * entries like "usr/../../x", "/etc/x", a symlink followed by a write through it, a hard link to a
 * host file, device nodes, or more bytes than the repository promised. pacman trusts signed
 * packages here (REFERENCE.md); we do not. Every entry is opened relative to the root dirfd,
 * component by component, with O_NOFOLLOW; a symlinked parent directory is followed only when an
 * earlier package created it, and then only through openat2(RESOLVE_IN_ROOT). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mkm_ctx;
struct mkm_err;
struct extract_owners;

/* Top-level metadata entries (".PKGINFO", ".MTREE", ...) are kept in memory, not written. */
struct extract_meta {
        char *pkginfo;          /* .PKGINFO text, NUL-terminated */
        size_t pkginfo_len;
        char *mtree;            /* .MTREE raw bytes (gzip'd mtree, copied verbatim to the db) */
        size_t mtree_len;
        char *install;          /* .INSTALL scriptlet, NUL-terminated */
        size_t install_len;
        int64_t install_mtime;  /* kept on the db's copy: pacman -Qkk compares it with .MTREE */
};

struct extract_result {
        char **files;           /* sorted, as pacman's %FILES%: relative paths, dirs end in '/' */
        uint64_t bytes;         /* regular-file bytes written (hard links counted once) */
        struct extract_meta meta;
};

struct extract_opts {
        const char *label;              /* package name, for messages and the ownership map */
        uint64_t max_bytes;             /* the size the metadata promised; 0 = 16 GiB cap */
        bool pacman_meta;               /* top-level dot entries are metadata (Arch packages) */
        struct extract_owners *owners;  /* borrowed; path ownership across packages, NULL = none */
};

/* Read an archive (any libarchive format/filter) from fd and write its entries under rootfd.
 * On failure nothing is promised about the partly written root (the caller discards the staging
 * tree); nothing outside the root is ever touched. ret is filled on success only. */
int extract_archive_fd(struct mkm_ctx *ctx, int rootfd, int fd, const struct extract_opts *opts,
                       struct extract_result *ret, struct mkm_err *reterr);

/* The same on an opened libarchive reader (e.g. data.tar inside a .deb); a is borrowed. */
struct archive;
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
