/* SPDX-License-Identifier: MIT */
/* The package pipeline both backends share: downloads, trust checks and the install overlap.
 *
 *   fetcher thread   fetch_all() over every item (and detached signature) not in the cache yet,
 *                    in install order; each file is committed to the cache as it lands, checked
 *                    against the size and sha256 the plan promised
 *   verify threads   (PIPELINE_TRUST_DETACHED_SIG) one per CPU: item i is checked once it and its
 *                    signature are in the cache, in-process for a key gpg accepted before, else
 *                    by gpg
 *   caller           the backend's install: item i is opened (by any parser) only after
 *                    pipeline_wait(i) said it is in the cache and trusted
 *
 * The trust model is a parameter:
 *   PIPELINE_TRUST_DETACHED_SIG  each item has a detached OpenPGP signature checked against the
 *                                keyring (Arch: %PGPSIG% or FILE.sig)
 *   PIPELINE_TRUST_DIGEST        the item's sha256 and size come from an index whose own digest
 *                                chain was verified by the backend (Debian: InRelease -> Packages
 *                                -> .deb); the cache commit's digest check is the trust check
 *
 * A download failure becomes item i's result, so the build fails at the first item it cannot
 * install, with the download's message. pipeline_free() cancels whatever still runs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mkm_ctx;
struct mkm_err;
struct cache;
struct verify_keyring;

enum pipeline_trust {
        PIPELINE_TRUST_DETACHED_SIG,
        PIPELINE_TRUST_DIGEST,
        _PIPELINE_TRUST_MAX,
};

struct pipeline_item {
        const char *label;              /* file name, for messages */
        const char *name, *version;     /* the package, for messages (name NULL: label) */
        char *const *urls;              /* failover order, NULL-terminated; may be NULL when the
                                         * file is in the cache already */
        const char *sha256;             /* expected digest (hex) */
        uint64_t size;                  /* expected size, 0 = unknown */
        /* PIPELINE_TRUST_DETACHED_SIG only: */
        const char *sig_label;
        char *const *sig_urls;          /* may be NULL when the signature is in the cache already */
        const char *sig_sha256;
};

struct pipeline;

/* Start downloading and checking items[0..n) (copied; the strings they point to are borrowed
 * until pipeline_free). keyring is borrowed (until pipeline_free, which must come before the
 * keyring's free) and only used for DETACHED_SIG, where every item needs a sig_sha256. Turns
 * the cache's deferred sync on (cache.h): commits skip their fsyncs, pipeline_finish() syncs
 * once. Emits the stages "downloading" (when something is missing) and "checking package
 * integrity". With DIGEST, an item that was in the cache before the start is hashed again by
 * the workers (a crash after a deferred commit can leave an entry of the right size with the
 * wrong bytes, and no signature check would catch it); one downloaded now was hashed by its
 * commit. */
int pipeline_start(struct mkm_ctx *ctx, struct cache *cache, enum pipeline_trust trust, struct verify_keyring *keyring,
                   const struct pipeline_item *items, size_t n, struct pipeline **ret, struct mkm_err *reterr);

/* Wait until item i is in the cache and trusted. ret_fpr (may be NULL; VERIFY_FPR_MAX bytes)
 * receives the signer's fingerprint for DETACHED_SIG, "" otherwise. A damaged cache entry is
 * dropped and reported as -MKM_E_DIGEST_MISMATCH ("... the next build downloads it again").
 * May be called again for the same i (the result is kept until pipeline_free). */
int pipeline_wait(struct pipeline *p, size_t i, char *ret_fpr, struct mkm_err *reterr);

/* Wait for every item in order (for `mkmachine lock`; progress "verifying" n/m), then
 * pipeline_finish(). The first failure is returned. */
int pipeline_wait_all(struct pipeline *p, struct mkm_err *reterr);

/* Wait for the downloads to end and make the cache's new entries durable. */
int pipeline_finish(struct pipeline *p, struct mkm_err *reterr);

/* How long pipeline_wait() blocked in total, and how many signatures were checked in-process
 * and by gpg (for -v). Each pointer may be NULL. */
void pipeline_stats(const struct pipeline *p, uint64_t *ret_waited_ns, unsigned *ret_native, unsigned *ret_gpg);

/* Cancel, join every thread, sync the cache, free. Accepts NULL, returns NULL. */
struct pipeline *pipeline_free(struct pipeline *p);
static inline void pipeline_freep(struct pipeline **p) { (void)pipeline_free(*p); }

/* A simple batch download into the cache, for metadata (sync dbs, InRelease, indexes): every
 * file, then return. sha256 NULL = unknown (the digest is learnt: ret in digest[]); optional: a
 * 404 on every mirror is not an error (present stays false). A file already in the cache is not
 * downloaded again (known digest only). Emits the stage "downloading" when something is missing.
 * Commits follow the cache's deferred sync (build.c turns it on for the whole build). Returns
 * the first failure, naming the file; every want's present/digest is set either way. */
struct pipeline_want {
        char *const *urls;
        const char *label;
        const char *sha256;
        uint64_t size;
        bool optional;
        char digest[65];        /* out */
        bool present;           /* out */
};
int pipeline_fetch_batch(struct mkm_ctx *ctx, struct cache *cache, struct pipeline_want *w, size_t n,
                         struct mkm_err *reterr);

/* Put bytes that came inside verified metadata (Arch: a db's %PGPSIG%) into the cache, addressed
 * by their sha256 (in ret_sha256, 65 bytes), so that a lock can pin them. label names the
 * temporary file and the errors. */
int pipeline_store_blob(struct cache *cache, const char *label, const void *data, size_t len, char *ret_sha256,
                        struct mkm_err *reterr);
