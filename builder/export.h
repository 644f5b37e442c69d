/* SPDX-License-Identifier: MIT */
/* Export a deployed machine as the directory systemd's importer pulls, and import one back.
 *
 *   DIR/NAME.tar.xz      the tree (or .tar.zst, .tar.gz): reproducible, see export_tar_fd()
 *   DIR/NAME.nspawn      the settings mkmachine installed (HOST/etc/systemd/nspawn/NAME.nspawn);
 *                        absent when the machine has none
 *   DIR/SHA256SUMS       "HEX  FILE" lines as sha256sum(1) writes them, sorted by file name
 *   DIR/SHA256SUMS.gpg   a detached binary signature of SHA256SUMS (--sign)
 *
 * This is the layout of `systemd-pull tar` (machinectl/importctl pull-tar): for URL .../NAME.tar.xz
 * it fetches .../NAME.nspawn (the URL's last component with the .tar.* suffix replaced,
 * pull_make_auxiliary_job() with tar_strip_suffixes() in src/import/pull-common.c,
 * src/shared/import-util.c), then .../NAME.tar.xz.sha256 and, on 404, .../SHA256SUMS
 * (pull_make_verification_jobs(), pull_job_restart_with_sha256sum()), and for --verify=signature
 * .../SHA256SUMS.gpg; verify_one() looks for the line "HEX *FILE\n" or "HEX  FILE\n" at the
 * start of a line, for the image and for the settings file alike. SHA256SUMS is per directory:
 * an export keeps the lines of other files in DIR, so one directory can serve many machines. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest.h"

struct mkm_ctx;
struct mkm_err;

enum export_compress {
        EXPORT_XZ,
        EXPORT_ZSTD,
        EXPORT_GZIP,
        _EXPORT_COMPRESS_MAX,
        _EXPORT_COMPRESS_INVALID = -22,
};

/* "xz" -> EXPORT_XZ ...; _EXPORT_COMPRESS_INVALID for anything else. */
enum export_compress export_compress_from_string(const char *s);
/* ".tar.xz", ".tar.zst", ".tar.gz". */
const char *export_compress_suffix(enum export_compress c);

/* Write the tree under rootfd as a tar archive to outfd, the same bytes for the same tree:
 * entries sorted by name, depth first, as "./PATH" (the root as "./"); pax headers only where
 * needed, with fixed names; numeric uid/gid only (no user or group names); the mtime in whole
 * seconds, clamped to clamp_epoch when >= 0 (the tree is not changed: it is walked read-only,
 * files opened with O_NOATIME); no atime or ctime; the extended attributes of directories and
 * regular files that the manifest lists (normalize_xattr_is_content(): user.*,
 * security.capability, the POSIX ACLs; not a host's security.selinux or trusted.*), sorted by
 * name, as SCHILY.xattr records that GNU tar and libarchive both read; hard links
 * as links to the first path; devices and fifos as such; sockets skipped with a warning; mount
 * points listed but not entered. Compression with fixed settings: xz level 6 single-threaded,
 * zstd level 12, gzip level 6 without a name or time stamp. outfd is written, not closed.
 * ret_digest (NULL: not wanted) gets the manifest digest of what was archived, from the same
 * stat, bytes and attributes the archive got: the digest an import of it computes, whatever
 * changed in the tree before or while it was read. Returns the number of sockets left out (0 or
 * more), or a negative errno with reterr set. */
int export_tar_fd(struct mkm_ctx *ctx, int rootfd, int64_t clamp_epoch, enum export_compress c, int outfd,
                  char ret_digest[MANIFEST_DIGEST_LEN], struct mkm_err *reterr);

/* One line of a SHA256SUMS file. */
struct export_sum {
        char *name;
        char hex[65];
};

/* Parse SHA256SUMS text (label names it in errors: "LABEL:LINE: expected ..."). Accepts the
 * text ("  ") and binary (" *") separators; refuses names with '/', escaped names (a leading
 * '\'), a hash that is not 64 hex digits, a name listed twice. Empty lines are skipped. The
 * caller frees *ret with export_sums_free(). */
int export_sums_parse(const char *text, size_t len, const char *label, struct export_sum **ret, size_t *ret_n,
                      struct mkm_err *reterr);
void export_sums_free(struct export_sum *s, size_t n);
/* The entry for name, or NULL. Borrowed from s. */
const struct export_sum *export_sums_find(const struct export_sum *s, size_t n, const char *name);

struct export_opts {
        enum export_compress compress;
        const char *sign_key;           /* key id / fingerprint / user id to sign with; NULL = no signature */
        const char *gpg_home;           /* GnuPG home with that secret key; NULL = GnuPG's default */
        bool force;                     /* export even when the tree differs from its manifest */
};

struct export_result {
        char *tarball;                  /* absolute paths of what was written; nspawn/signature NULL if none */
        char *nspawn;
        char *sums;
        char *signature;
        char digest[72];                /* the exported tree's manifest digest */
        int64_t source_date_epoch;
};
void export_result_done(struct export_result *r);

/* Export machine name into dir (created if missing). Every file is written to a temporary in
 * dir and renamed into place once all are complete (SHA256SUMS last), so a failed export
 * leaves the previous files of dir as they were. Holds the machine's lock (shared) meanwhile:
 * a build cannot swap the tree under it. The tree must have the generation's digest (else
 * -MKM_E_DIGEST_MISMATCH, unless opts->force), or, for a manifest written before a host's xattr
 * labels left it, the digest of that manifest without them (manifest_strip_host_xattrs(); with
 * a warning, and the tree's digest in ret). */
int export_machine(struct mkm_ctx *ctx, const char *name, const char *dir, const struct export_opts *opts,
                   struct export_result *ret, struct mkm_err *reterr);

struct import_opts {
        const char *name;               /* NULL = the file's base name without .tar.* */
        enum {
                IMPORT_VERIFY_AUTO,     /* check SHA256SUMS when it exists, warn when not */
                IMPORT_VERIFY_NO,
                IMPORT_VERIFY_CHECKSUM, /* SHA256SUMS must exist and list the files */
                IMPORT_VERIFY_SIGNATURE,/* and SHA256SUMS.gpg must verify against keyring */
        } verify;
        const char *keyring;            /* for IMPORT_VERIFY_SIGNATURE: a public keyring file */
        bool force;                     /* replace an existing machine */
        bool trust_settings;            /* install NAME.nspawn into /etc/systemd/nspawn (all its
                                         * settings apply, privileged ones too) instead of beside
                                         * the image (only the unprivileged subset applies) */
};

struct import_result {
        char *name;
        char *target;
        char *nspawn;                   /* the installed settings file, NULL if none came along */
        char digest[72];
        bool verified;                  /* SHA256SUMS checked */
        bool signed_ok;                 /* SHA256SUMS.gpg checked */
};
void import_result_done(struct import_result *r);

/* Import the tarball at source (a path, or a file:// or http(s):// URL; SHA256SUMS,
 * SHA256SUMS.gpg and NAME.nspawn are looked for beside it) as machine opts->name: extracted into
 * a staging root as packages are (nothing leaves the root), its manifest computed without
 * clamping (the archive's times are the exporter's), swapped into place, its settings installed
 * to HOST/etc/systemd/nspawn/, its state written. */
int import_machine(struct mkm_ctx *ctx, const char *source, const struct import_opts *opts,
                   struct import_result *ret, struct mkm_err *reterr);

/* The base name of a tarball without its .tar.* suffix ("x/foo.tar.xz" -> "foo"); NULL when it
 * has none of the suffixes above (or .tar). Caller frees. */
char *export_name_from_file(const char *path);
