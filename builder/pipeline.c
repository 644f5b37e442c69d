/* SPDX-License-Identifier: MIT */
/* The package pipeline both backends share (see pipeline.h): a fetcher thread, verify workers and
 * the caller's install overlap; batch downloads for metadata. */
#include "pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "ctx.h"
#include "fetch.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strv.h"
#include "util/thread.h"
#include "verify.h"

static uint64_t mono_ns(void) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Cache temporaries take plain labels; repository file names may hold ':' (epochs). */
static void safe_label(const char *in, char *out, size_t len) {
        size_t i = 0;
        for (; in[i] && i + 1 < len && i < 120; i++) {
                char c = in[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                          c == '_' || c == '+' || c == '-';
                out[i] = ok && !(i == 0 && c == '.') ? c : '_';
        }
        out[i] = 0;
}

/* Remove a reserved download file and its partial body: their names are random, so no later
 * run could resume from them. */
static void drop_tmp(const char *tmp) {
        char part[4096];
        (void)unlink(tmp);
        if ((size_t)snprintf(part, sizeof part, "%s.part", tmp) < sizeof part)
                (void)unlink(part);
}

/* Let go of a pipeline download name: a stable one (cache_tmp_path_for) keeps its partial body
 * for the next build to resume; a unique one goes with it. */
static void release_tmp(struct cache *c, const char *tmp) {
        if (!cache_tmp_release(c, tmp))
                drop_tmp(tmp);
}

/* ---- batch downloads (metadata) ----------------------------------------------------------- */

int pipeline_fetch_batch(struct mkm_ctx *ctx, struct cache *cache, struct pipeline_want *w, size_t n,
                         struct mkm_err *reterr) {
        _cleanup_free_ struct fetch_item *items = calloc(n ? n : 1, sizeof *items);
        _cleanup_free_ size_t *idx = calloc(n ? n : 1, sizeof *idx);
        char **tmps = calloc(n + 1, sizeof(char *));
        size_t m = 0;
        int r = 0;
        if (!items || !idx || !tmps) {
                free(tmps);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                if (w[i].sha256 && cache_check(cache, w[i].sha256, w[i].size, 0, NULL, NULL) == 0) {
                        memcpy(w[i].digest, w[i].sha256, HASH_SHA256_HEX);
                        w[i].present = true;
                        continue;
                }
                char label[128];
                safe_label(w[i].label, label, sizeof label);
                r = cache_tmp_path(cache, label, &tmps[m]);
                if (r < 0) {
                        mkm_err_set(reterr, r, "cannot reserve a download file for %s: %s", w[i].label, mkm_strerror(r));
                        goto out;
                }
                items[m] = (struct fetch_item){ .urls = (char **)w[i].urls, .dest = tmps[m], .expected_size = w[i].size,
                                                .label = w[i].label };
                idx[m++] = i;
        }
        if (m > 0) {
                mkm_emit(ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "downloading" });
                struct fetch_options fo;
                fetch_options_default(&fo);
                fo.no_fsync = true;
                struct mkm_err ferr = {};
                (void)fetch_all(ctx, items, m, &fo, &ferr);
        }
        for (size_t k = 0; k < m; k++) {
                struct pipeline_want *x = &w[idx[k]];
                if (items[k].result < 0) {
                        drop_tmp(tmps[k]);
                        /* Optional files (signatures) may be absent; any other failure is one. */
                        if (x->optional && items[k].not_found)
                                continue;
                        if (r == 0)
                                r = mkm_err_set(reterr, items[k].result, "cannot download %s: %s", x->label,
                                                items[k].error);
                        continue;
                }
                struct mkm_err cerr = {};
                int q = cache_commit(cache, tmps[k], x->sha256, x->size, x->digest, &cerr);
                if (q < 0) {
                        if (r == 0)
                                r = mkm_err_set(reterr, q, "%s from %s: %s", x->label, items[k].used_url, cerr.msg);
                        continue;
                }
                x->present = true;
        }
out:
        /* (made durable with everything else by the cache's one sync) */
        for (size_t k = 0; k < m; k++) {
                if (tmps[k])
                        drop_tmp(tmps[k]);
        }
        strv_free(tmps);
        return r;
}

int pipeline_store_blob(struct cache *cache, const char *label, const void *data, size_t len, char *ret_sha256,
                        struct mkm_err *reterr) {
        _cleanup_free_ char *tmp = NULL;
        char safe[128];
        safe_label(label, safe, sizeof safe);
        int r = cache_tmp_path(cache, safe, &tmp);
        if (r < 0)
                return r;
        r = fs_write_file_at(AT_FDCWD, tmp, data, len, 0600);
        if (r < 0) {
                (void)unlink(tmp);
                return mkm_err_set(reterr, r, "cannot write %s: %s", tmp, mkm_strerror(r));
        }
        return cache_commit(cache, tmp, NULL, 0, ret_sha256, reterr);
}

/* ---- the pipeline --------------------------------------------------------------------------
 *
 *   fetcher thread   fetch_all() over every want not in the cache yet, in install order; each
 *                    file is committed to the cache as it lands
 *   verify threads   one per CPU (at most 16); item i is checked once its wants are in the cache
 *                    (DETACHED_SIG: verify_detached_fd with the thread's own handle on the one
 *                    prepared keyring, in-process for a key gpg accepted before, else a gpg run;
 *                    DIGEST: an entry that was in the cache before is hashed again)
 *   caller           item i is opened (by any parser) only after pipeline_wait(i) said so
 *
 * A download failure becomes item i's result, so the build fails at the first item it cannot
 * install, with the download's message. pipeline_free() cancels whatever still runs. */

/* One file to have in the cache: an item, or (DETACHED_SIG) its signature. */
struct want {
        char *const *urls;
        const char *label;
        const char *sha256;
        uint64_t size;
        bool cached;                    /* in the cache before the start (not committed by us) */
        char digest[HASH_SHA256_HEX];   /* what the commit computed */
};

struct pipeline {
        struct mkm_ctx *ctx;
        struct cache *cache;
        enum pipeline_trust trust;
        struct verify_keyring *keyring; /* borrowed; DETACHED_SIG only */
        struct pipeline_item *items;    /* copied */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool have_sync;                 /* lock and cond are initialised */
        size_t next, n;                 /* items */
        bool stop;
        bool *ready;                    /* item i checked: results[i], errs[i], fprs[i] */
        int *results;
        struct mkm_err *errs;
        char (*fprs)[VERIFY_FPR_MAX];
        pthread_t *threads;
        size_t nthreads;
        uint64_t waited_ns;             /* in pipeline_wait(), by the caller's thread */

        /* downloads: want per*i is item i, per*i + 1 its signature (DETACHED_SIG) */
        size_t per, nw;
        struct want *w;                 /* nw */
        bool *w_done;                   /* in the cache (w_res 0) or failed */
        int *w_res;
        struct mkm_err *w_errs;
        struct fetch_item *fitems;      /* the wants not in the cache yet */
        size_t *idx;                    /* fitems[k] is want idx[k] */
        char **tmps;                    /* fitems[k].dest, in the cache's tmp/ */
        bool *released;                 /* tmps[k] was let go of (release_item) */
        size_t m;
        pthread_t fetcher;
        bool has_fetcher;
        atomic_bool cancel;
};

static const char *item_name(const struct pipeline_item *it) {
        return it->name ? it->name : it->label;
}

/* Record want k's outcome and wake whoever waits for it. */
static void want_finish(struct pipeline *p, size_t k, int r, const struct mkm_err *e) {
        pthread_mutex_lock(&p->lock);
        if (!p->w_done[k]) {
                p->w_done[k] = true;
                p->w_res[k] = r;
                if (r < 0 && e)
                        p->w_errs[k] = *e;
                pthread_cond_broadcast(&p->cond);
        }
        pthread_mutex_unlock(&p->lock);
}

/* Let go of item's download name, once (the fetcher's closing sweep comes after on_fetched). */
static void release_item(struct pipeline *p, size_t item) {
        if (p->released[item])
                return;
        p->released[item] = true;
        release_tmp(p->cache, p->tmps[item]);
}

/* fetch_all()'s callback, on the fetcher thread: commit the file to the cache (hash, size). */
static void on_fetched(struct fetch_item *it, void *userdata) {
        struct pipeline *p = userdata;
        size_t item = (size_t)(it - p->fitems), k = p->idx[item];
        struct want *x = &p->w[k];
        struct mkm_err e = {};
        int r = it->result;
        if (r < 0)
                mkm_err_set(&e, r, "cannot download %s: %s", x->label, it->error);
        else {
                struct mkm_err cerr = {};
                const char *url = it->used_url;
                r = cache_commit(p->cache, p->tmps[item], x->sha256, x->size, x->digest, &cerr);
                if (r == -MKM_E_DIGEST_MISMATCH && it->resumed && !atomic_load(&p->cancel)) {
                        /* The body continued an earlier build's partial download, which may have
                         * been wrong (cache_commit removed it): once more, from the first byte. */
                        mkm_debug(p->ctx, "%s: %s; it was resumed, so downloading it again from the start", x->label,
                                  cerr.msg);
                        struct fetch_item again = { .urls = (char **)x->urls, .dest = p->tmps[item],
                                                    .expected_size = x->size, .label = x->label };
                        struct fetch_options fo;
                        fetch_options_default(&fo);
                        fo.no_fsync = true;
                        fo.cancel = &p->cancel;
                        struct mkm_err ferr = {};
                        if (fetch_all(p->ctx, &again, 1, &fo, &ferr) == 0) {
                                url = again.used_url;
                                r = cache_commit(p->cache, p->tmps[item], x->sha256, x->size, x->digest, &cerr);
                        } else {
                                r = again.result < 0 ? again.result : -EIO;
                                (void)snprintf(cerr.msg, sizeof cerr.msg, "downloading it again: %s", again.error);
                                url = NULL;
                        }
                }
                if (r < 0)
                        mkm_err_set(&e, r, "%s from %s: %s", x->label, url ? url : "the mirrors", cerr.msg);
        }
        release_item(p, item);
        want_finish(p, k, r, &e);
}

static void *fetcher_thread(void *userdata) {
        struct pipeline *p = userdata;
        struct fetch_options fo;
        fetch_options_default(&fo);
        fo.no_fsync = true;     /* one syncfs at the end instead of four fsyncs per file (cache.h) */
        fo.on_item_done = on_fetched;
        fo.userdata = p;
        fo.cancel = &p->cancel;
        struct mkm_err ferr = {};
        int fr = fetch_all(p->ctx, p->fitems, p->m, &fo, &ferr);
        /* Items fetch_all() did not report (it stopped: cancelled, out of memory, libcurl). A
         * verify worker waiting for one must get a failure, never wait forever. */
        for (size_t item = 0; item < p->m; item++) {
                struct mkm_err e = {};
                int r = p->fitems[item].result < 0 ? p->fitems[item].result : fr < 0 ? fr : -ECANCELED;
                mkm_err_set(&e, r, "cannot download %s: %s", p->w[p->idx[item]].label,
                            p->fitems[item].error[0] ? p->fitems[item].error : ferr.msg[0] ? ferr.msg : mkm_strerror(r));
                want_finish(p, p->idx[item], r, &e);    /* no-op for the ones already reported */
                release_item(p, item);                  /* no-op for the ones released already */
        }
        (void)cache_sync(p->cache);     /* in the background; pipeline_finish() reports a failure */
        return NULL;
}

/* A detached signature over item i, checked with keyring k (this thread's own). */
static int check_signature(struct pipeline *p, struct verify_keyring *k, size_t i, char *ret_fpr,
                           struct mkm_err *reterr) {
        const struct pipeline_item *it = &p->items[i];
        _cleanup_free_ char *sig = NULL;
        size_t siglen = 0;
        int r = cache_read(p->cache, it->sig_sha256, VERIFY_MAX_SIG, &sig, &siglen);
        if (r < 0)
                return mkm_err_set(reterr, r, "%s: signature not in the cache: %s", item_name(it), mkm_strerror(r));
        _cleanup_close_ int fd = -EBADF;
        r = cache_open_fd(p->cache, it->sha256, &fd);
        if (r < 0)
                return mkm_err_set(reterr, r, "%s: package not in the cache: %s", item_name(it), mkm_strerror(r));
        struct verify_result vr;
        r = verify_detached_fd(k, fd, sig, siglen, &vr, reterr);
        if (r == -MKM_E_SIG_BAD || r == -MKM_E_SIG_MISSING) {
                /* The cache syncs once per build (cache.h): after a crash an entry may have the
                 * right size and the wrong bytes. Then the cache is at fault, not the signer:
                 * drop the entry so that the next build downloads it again, and say so. */
                const char *digests[] = { it->sha256, it->sig_sha256 };
                for (size_t d = 0; d < ELEMENTSOF(digests); d++) {
                        struct mkm_err cerr = {};
                        if (cache_check(p->cache, digests[d], d == 0 ? it->size : 0, CACHE_CHECK_REHASH, NULL, &cerr) ==
                            -MKM_E_DIGEST_MISMATCH)
                                return mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH,
                                                   "%s: the cached %s was damaged (%s); it was removed from the cache, "
                                                   "the next build downloads it again",
                                                   item_name(it), d == 0 ? "package" : "signature", cerr.msg);
                }
        }
        if (r < 0) {
                if (it->version)
                        return mkm_err_prefix(reterr, r, "%s-%s (%s)", item_name(it), it->version, it->label);
                return mkm_err_prefix(reterr, r, "%s (%s)", item_name(it), it->label);
        }
        memcpy(ret_fpr, vr.fingerprint, VERIFY_FPR_MAX);
        return 0;
}

/* The digest is the trust check: the commit of a file downloaded now hashed it; an entry that
 * was in the cache already is hashed again (the size alone is what cache_check looked at). */
static int check_digest(struct pipeline *p, size_t i, char *ret_fpr, struct mkm_err *reterr) {
        const struct pipeline_item *it = &p->items[i];
        ret_fpr[0] = 0;
        if (!p->w[i].cached)
                return 0;
        struct mkm_err cerr = {};
        int r = cache_check(p->cache, it->sha256, it->size, CACHE_CHECK_REHASH, NULL, &cerr);
        if (r == -MKM_E_DIGEST_MISMATCH)
                return mkm_err_set(reterr, r,
                                   "%s: the cached package was damaged (%s); it was removed from the cache, the next "
                                   "build downloads it again",
                                   item_name(it), cerr.msg);
        if (r < 0)
                return mkm_err_set(reterr, r, "%s: package not in the cache: %s", item_name(it), mkm_strerror(r));
        return 0;
}

/* Wait (with p->lock held) until item i's wants are in the cache; their failure, if any, in
 * *reterr. -ECANCELED when the pipeline stops first. */
static int wait_fetched(struct pipeline *p, size_t i, struct mkm_err *reterr) {
        for (size_t k = p->per * i; k < p->per * (i + 1); k++) {
                while (!p->w_done[k] && !p->stop)
                        pthread_cond_wait(&p->cond, &p->lock);
                if (!p->w_done[k])
                        return -ECANCELED;
                if (p->w_res[k] < 0) {
                        *reterr = p->w_errs[k];
                        return p->w_res[k];
                }
        }
        return 0;
}

static void *verify_worker(void *userdata) {
        struct pipeline *p = userdata;
        struct verify_keyring *k = NULL;
        int cr = p->trust == PIPELINE_TRUST_DETACHED_SIG ? verify_keyring_clone(p->keyring, &k) : 0;
        for (;;) {
                struct mkm_err e = {};
                pthread_mutex_lock(&p->lock);
                size_t i = p->stop ? p->n : p->next++;
                int r = i < p->n ? wait_fetched(p, i, &e) : 0;
                bool stop = p->stop;
                pthread_mutex_unlock(&p->lock);
                /* Only a requested stop ends the loop early: every other outcome, a failed
                 * download included, is published for pipeline_wait(). */
                if (i >= p->n || (stop && r == -ECANCELED))
                        break;
                if (r >= 0 && cr < 0)
                        r = cr;
                else if (r >= 0 && p->trust == PIPELINE_TRUST_DETACHED_SIG)
                        r = check_signature(p, k, i, p->fprs[i], &e);
                else if (r >= 0)
                        r = check_digest(p, i, p->fprs[i], &e);
                pthread_mutex_lock(&p->lock);
                p->results[i] = r;
                p->errs[i] = e;
                p->ready[i] = true;
                pthread_cond_broadcast(&p->cond);
                pthread_mutex_unlock(&p->lock);
        }
        verify_keyring_free(k);
        return NULL;
}

static void pipeline_release(struct pipeline *p) {
        strv_free(p->tmps);
        free(p->released);
        free(p->w);
        free(p->w_done);
        free(p->w_res);
        free(p->w_errs);
        free(p->fitems);
        free(p->idx);
        free(p->ready);
        free(p->results);
        free(p->errs);
        free(p->fprs);
        free(p->threads);
        free(p->items);
        free(p);
}

int pipeline_start(struct mkm_ctx *ctx, struct cache *cache, enum pipeline_trust trust, struct verify_keyring *keyring,
                   const struct pipeline_item *items, size_t n, struct pipeline **ret, struct mkm_err *reterr) {
        if ((unsigned)trust >= _PIPELINE_TRUST_MAX || (trust == PIPELINE_TRUST_DETACHED_SIG && !keyring))
                return mkm_err_set(reterr, -EINVAL, "pipeline: invalid trust model or no keyring");
        for (size_t i = 0; i < n; i++)
                if (!items[i].label || !items[i].sha256 ||
                    (trust == PIPELINE_TRUST_DETACHED_SIG && (!items[i].sig_label || !items[i].sig_sha256)))
                        return mkm_err_set(reterr, -EINVAL, "pipeline: item %zu (%s) lacks a label, a digest or a signature",
                                           i, items[i].label ? items[i].label : "?");
        size_t n1 = n ? n : 1, per = trust == PIPELINE_TRUST_DETACHED_SIG ? 2 : 1;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        struct pipeline *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->ctx = ctx;
        p->cache = cache;
        p->trust = trust;
        p->keyring = keyring;
        p->n = n;
        p->per = per;
        p->nw = per * n;
        p->nthreads = cpus > 0 ? (size_t)cpus : 1;
        if (p->nthreads > n)
                p->nthreads = n;
        if (p->nthreads > 16)
                p->nthreads = 16;
        p->items = calloc(n1, sizeof *p->items);
        p->ready = calloc(n1, sizeof *p->ready);
        p->results = calloc(n1, sizeof *p->results);
        p->errs = calloc(n1, sizeof *p->errs);
        p->fprs = calloc(n1, sizeof *p->fprs);
        p->threads = calloc(p->nthreads ? p->nthreads : 1, sizeof *p->threads);
        p->w = calloc(per * n1, sizeof *p->w);
        p->w_done = calloc(per * n1, sizeof *p->w_done);
        p->w_res = calloc(per * n1, sizeof *p->w_res);
        p->w_errs = calloc(per * n1, sizeof *p->w_errs);
        p->fitems = calloc(per * n1, sizeof *p->fitems);
        p->idx = calloc(per * n1, sizeof *p->idx);
        p->tmps = calloc(per * n1 + 1, sizeof *p->tmps);
        p->released = calloc(per * n1, sizeof *p->released);
        if (!p->items || !p->ready || !p->results || !p->errs || !p->fprs || !p->threads || !p->w || !p->w_done ||
            !p->w_res || !p->w_errs || !p->fitems || !p->idx || !p->tmps || !p->released) {
                pipeline_release(p);
                return -ENOMEM;
        }
        memcpy(p->items, items, n * sizeof *items);
        for (size_t i = 0; i < n; i++) {
                const struct pipeline_item *it = &items[i];
                p->w[per * i] = (struct want){ .urls = it->urls, .label = it->label, .sha256 = it->sha256, .size = it->size };
                if (per == 2)
                        p->w[per * i + 1] = (struct want){ .urls = it->sig_urls, .label = it->sig_label,
                                                           .sha256 = it->sig_sha256 };
        }
        /* Commits skip their fsyncs; pipeline_finish() syncs once (cache.h). */
        cache_set_deferred_sync(cache, true);
        for (size_t k = 0; k < p->nw; k++) {
                struct want *x = &p->w[k];
                if (cache_check(cache, x->sha256, x->size, 0, NULL, NULL) == 0) {
                        memcpy(x->digest, x->sha256, HASH_SHA256_HEX);
                        x->cached = p->w_done[k] = true;
                        continue;
                }
                if (!x->urls || !*x->urls) {
                        /* Nothing to download it from: the item fails when its turn comes. */
                        p->w_done[k] = true;
                        p->w_res[k] = -ENOENT;
                        mkm_err_set(&p->w_errs[k], -ENOENT, "cannot download %s: no URL to download it from", x->label);
                        continue;
                }
                /* Named after the digest: what a killed build downloaded in part is resumed. */
                int r = cache_tmp_path_for(cache, x->sha256, &p->tmps[p->m]);
                if (r < 0) {
                        mkm_err_set(reterr, r, "cannot reserve a download file for %s: %s", x->label, mkm_strerror(r));
                        for (size_t t = 0; t < p->m; t++)
                                release_tmp(cache, p->tmps[t]);
                        pipeline_release(p);
                        return r;
                }
                p->fitems[p->m] = (struct fetch_item){ .urls = (char **)x->urls, .dest = p->tmps[p->m],
                                                       .expected_size = x->size, .label = x->label };
                p->idx[p->m++] = k;
        }
        bool have_lock = pthread_mutex_init(&p->lock, NULL) == 0;
        if (!have_lock || pthread_cond_init(&p->cond, NULL) != 0) {
                if (have_lock)
                        pthread_mutex_destroy(&p->lock);
                for (size_t t = 0; t < p->m; t++)
                        release_tmp(cache, p->tmps[t]);
                pipeline_release(p);
                return -ENOMEM;
        }
        p->have_sync = true;
        if (p->m > 0) {
                mkm_emit(ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "downloading" });
                if (thread_create_nosig(&p->fetcher, fetcher_thread, p) != 0) {
                        fetcher_thread(p);      /* no thread: download everything first */
                } else
                        p->has_fetcher = true;
        }
        mkm_emit(ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "checking package integrity" });
        size_t started = 0;
        for (; started < p->nthreads; started++)
                if (thread_create_nosig(&p->threads[started], verify_worker, p) != 0)
                        break;
        p->nthreads = started;
        if (started == 0 && n > 0)
                verify_worker(p);       /* no thread could start: check everything here */
        *ret = p;
        return 0;
}

int pipeline_wait(struct pipeline *p, size_t i, char *ret_fpr, struct mkm_err *reterr) {
        if (i >= p->n)
                return -EINVAL;
        uint64_t t0 = mono_ns();
        pthread_mutex_lock(&p->lock);
        while (!p->ready[i])
                pthread_cond_wait(&p->cond, &p->lock);
        int r = p->results[i];
        pthread_mutex_unlock(&p->lock);
        p->waited_ns += mono_ns() - t0;
        if (r < 0) {
                if (reterr)
                        *reterr = p->errs[i];
                if (!p->errs[i].msg[0])
                        mkm_err_set(reterr, r, "%s: cannot verify: %s", item_name(&p->items[i]), mkm_strerror(r));
                return r;
        }
        if (ret_fpr)
                memcpy(ret_fpr, p->fprs[i], VERIFY_FPR_MAX);
        return 0;
}

/* Wait for the downloads to end (all of them are in the cache once every item was checked)
 * and make the cache's new entries durable (nothing to do when the fetcher's syncfs did). */
int pipeline_finish(struct pipeline *p, struct mkm_err *reterr) {
        if (p->has_fetcher) {
                pthread_join(p->fetcher, NULL);
                p->has_fetcher = false;
        }
        int r = cache_sync(p->cache);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot sync the cache %s: %s", cache_dir(p->cache), mkm_strerror(r));
        return 0;
}

int pipeline_wait_all(struct pipeline *p, struct mkm_err *reterr) {
        for (size_t i = 0; i < p->n; i++) {
                int r = pipeline_wait(p, i, NULL, reterr);
                if (r < 0)
                        return r;
                mkm_emit(p->ctx, &(struct mkm_event){ .type = MKM_EV_PROGRESS, .text = "verifying", .n = (unsigned)i + 1,
                                                      .count = (unsigned)p->n });
        }
        return pipeline_finish(p, reterr);
}

void pipeline_stats(const struct pipeline *p, uint64_t *ret_waited_ns, unsigned *ret_native, unsigned *ret_gpg) {
        unsigned native = 0, by_gpg = 0;
        if (p->keyring)
                verify_keyring_stats(p->keyring, &native, &by_gpg);
        if (ret_waited_ns)
                *ret_waited_ns = p->waited_ns;
        if (ret_native)
                *ret_native = native;
        if (ret_gpg)
                *ret_gpg = by_gpg;
}

/* Stop the downloads and the checks after their current file, join every thread, free. */
struct pipeline *pipeline_free(struct pipeline *p) {
        if (!p)
                return NULL;
        atomic_store(&p->cancel, true);
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        (void)pipeline_finish(p, NULL);
        for (size_t t = 0; t < p->nthreads; t++)
                pthread_join(p->threads[t], NULL);
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        pipeline_release(p);
        return NULL;
}
