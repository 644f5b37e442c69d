/* SPDX-License-Identifier: MIT */
/* The content-addressed download cache.
 *
 *   DIR/sha256/ab/abcdef…   a verified file, named by its sha256, read-only (0444)
 *   DIR/tmp/                downloads in progress (same file system, so rename() is atomic)
 *
 * A file appears under sha256/ only whole and verified: it is written in tmp/, fsync'ed, hashed,
 * compared with the expected digest and size, and then renamed into place. Several builds may
 * share a cache at once: a reader never sees a partial file, and two commits of the same digest
 * simply replace one verified copy by an identical one (readers keep the inode they opened).
 * Temporary files older than a day (left by killed builds) are removed by cache_open().
 *
 * DIR/lock is held shared by every process that has the cache open (cache_open() waits while
 * mkmachine clean holds it exclusively), so cache_prune() never removes what a build reads.
 *
 * Digests are 64 lower-case hex digits; anything else is refused with -EINVAL, so a digest from a
 * repository index can never name a path outside the cache. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mkm_ctx;
struct mkm_err;
struct cache;

#define CACHE_STALE_SECONDS (24 * 60 * 60)

/* Open (creating DIR, DIR/sha256 and DIR/tmp as needed) and clean stale temporaries.
 * The cache borrows ctx (for debug events), which must outlive it. Caller owns *ret. */
int cache_open(struct mkm_ctx *ctx, const char *dir, struct cache **ret, struct mkm_err *reterr);
struct cache *cache_free(struct cache *c);      /* accepts NULL, returns NULL */
static inline void cache_freep(struct cache **c) { (void)cache_free(*c); }

/* The cache's absolute directory; borrowed, valid until cache_free(). */
const char *cache_dir(const struct cache *c);

/* 0 and (if ret_path) the malloc'd absolute path when the digest is present, -ENOENT when not,
 * -EINVAL for a malformed digest. Cheap: one fstatat(), no hashing. */
int cache_lookup(struct cache *c, const char *sha256hex, char **ret_path);

enum {
        CACHE_CHECK_REHASH = 1 << 0,    /* re-read and hash the file; a corrupt one is deleted */
};

/* Like cache_lookup() but also checks the size (when expected_size != 0) and, with
 * CACHE_CHECK_REHASH, the content. A file that fails is removed from the cache and
 * -MKM_E_DIGEST_MISMATCH returned (message names the file and both values). */
int cache_check(struct cache *c, const char *sha256hex, uint64_t expected_size, unsigned flags, char **ret_path,
                struct mkm_err *reterr);

/* Reserve a unique file DIR/tmp/LABEL.XXXXXX (created empty, 0600) for a download; the caller
 * writes it (or PATH.part, renamed to PATH) and hands it to cache_commit(). LABEL is a plain
 * file name ([A-Za-z0-9._+~-], at most 128 bytes, not starting with '.'), else -EINVAL.
 * Caller owns *ret_path. */
int cache_tmp_path(struct cache *c, const char *label, char **ret_path);

/* A stable download name for a file whose sha256 is known: DIR/tmp/dl-<sha256>. A download
 * writes NAME.part and renames it to NAME; a killed build leaves NAME.part, which the next build
 * that wants the same file resumes (fetch.h). The name is held with an exclusive lock
 * (DIR/tmp/dl-<sha256>.lock, flock) until cache_tmp_release() or cache_free(); while another
 * process holds it (it downloads the same file right now), or when the lock cannot be taken at
 * all, a unique name as from cache_tmp_path() is returned instead (no resume; both commits are
 * identical). Nothing is created but the lock. -EINVAL for a malformed digest. Caller owns
 * *ret_path. A .part is resumed only when it is a regular file of ours with one link (fetch.c). */
int cache_tmp_path_for(struct cache *c, const char *sha256hex, char **ret_path);

/* Release a name from cache_tmp_path_for(): NAME goes (a finished but uncommitted body), NAME.part
 * stays for a later resume (a stale one goes after a day, as every temporary), the lock goes.
 * Returns false (and does nothing) when path is not such a held name. Thread-safe. */
bool cache_tmp_release(struct cache *c, const char *path);

/* Move the finished temporary file tmp_path (which must be a regular file directly inside
 * DIR/tmp, else -EINVAL) into the cache: hash it, compare with expected_sha256 (NULL = accept
 * any and report it) and expected_size (0 = any), make it 0444, fsync, rename into
 * sha256/xx/<digest>, fsync the directory. On mismatch tmp_path is deleted and
 * -MKM_E_DIGEST_MISMATCH returned, the message giving both digests (or both sizes). On success
 * tmp_path no longer exists and, if ret_sha256 is non-NULL, it receives the digest
 * (HASH_SHA256_HEX bytes). */
int cache_commit(struct cache *c, const char *tmp_path, const char *expected_sha256, uint64_t expected_size,
                 char *ret_sha256, struct mkm_err *reterr);

/* Batch durability: with deferred sync, cache_commit() skips its two fsyncs, and one
 * cache_sync() (syncfs of the cache's file system) makes every commit durable at once. A crash in
 * between can leave a visible entry whose content did not reach the disk; lookups check the size
 * and every package is signature-checked before use, so such an entry is caught, never trusted.
 * Concurrent readers are unaffected: a name still appears only after the whole file is written. */
void cache_set_deferred_sync(struct cache *c, bool deferred);
/* syncfs when a deferred commit is not durable yet (else nothing). Thread-safe. */
int cache_sync(struct cache *c);

/* Open the cached file read-only (O_CLOEXEC); -ENOENT if absent, -EINVAL for a bad digest. */
int cache_open_fd(struct cache *c, const char *sha256hex, int *ret_fd);

/* The whole entry sha256hex (up to max bytes) into memory, NUL-terminated; caller frees. */
int cache_read(struct cache *c, const char *sha256hex, size_t max, char **ret, size_t *ret_len);

/* mkmachine clean: hold the cache alone (DIR/lock exclusively, without waiting). -EBUSY with a
 * message when another process has it open. */
int cache_lock_exclusive(struct cache *c, struct mkm_err *reterr);

/* What cache_prune() removes (or would, with dry_run): an entry, or a temporary in tmp/ (a
 * partial download, a download's lock, an unfinished body). path is absolute, borrowed. */
typedef void (*cache_prune_fn)(void *userdata, const char *path, uint64_t size, bool temporary);

/* Remove every entry whose digest keep() rejects and every file in DIR/tmp (a download name
 * only under its lock, as cache_tmp_path_for() takes it). Requires cache_lock_exclusive().
 * With dry_run nothing is removed; report is called for each all the same. */
int cache_prune(struct cache *c, bool (*keep)(void *userdata, const char *sha256hex), void *userdata, bool dry_run,
                cache_prune_fn report, void *report_userdata, struct mkm_err *reterr);
