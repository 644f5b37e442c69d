/* SPDX-License-Identifier: MIT */
/* Downloads: several transfers at once (libcurl multi), retries with exponential backoff,
 * mirror failover, resume of partial files, and a hard cap on what a server may send.
 *
 * libcurl stays inside fetch.c: callers see neither its headers nor its codes. The process must
 * have called curl_global_init() once (main() does) before fetch_all(). */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mkm_ctx;
struct mkm_err;

/* One file to download. The caller owns the struct and every string it points to; fetch_all()
 * only fills the "out" fields. */
struct fetch_item {
        char **urls;            /* borrowed: NULL-terminated candidate URLs in failover order (mirrors);
                                 * http://, https:// and file:// only */
        const char *dest;       /* borrowed: final path. The body goes to dest + ".part" (kept between runs
                                 * and resumed), which is fsync'd and renamed to dest on success */
        uint64_t expected_size; /* 0 = unknown (then max_size caps the body); otherwise a body larger
                                 * is refused (-MKM_E_TOO_BIG) and a smaller one is an error */
        uint64_t max_size;      /* the cap when expected_size is 0, for an item smaller than the others
                                 * of the call (a checksum list beside a tarball); 0 = fetch_options.max_size */
        const char *label;      /* borrowed, may be NULL (then dest's base name): for progress and logs */
        int result;             /* out: 0 or a negative errno / -MKM_E_* code */
        char error[512];        /* out: why it failed, naming each URL tried and its failure */
        const char *used_url;   /* out: borrowed from urls, the one that succeeded; NULL on failure */
        bool resumed;           /* out: on success, the body continued a partial dest.part (Range) */
        bool not_found;         /* out: failed because every URL said it does not exist (HTTP 404/410,
                                 * a missing file://), as opposed to any other failure */
};

struct fetch_options {
        unsigned jobs;          /* parallel transfers; 0 = ctx->jobs, or FETCH_DEFAULT_JOBS if that is 0 */
        unsigned retries;       /* extra attempts per URL on transient failures before the next mirror */
        long connect_timeout_ms;/* 0 = libcurl's default */
        long low_speed_time_s;  /* abort a transfer slower than low_speed_limit bytes/s for this long */
        long low_speed_limit;   /* bytes per second; 0 disables the stall check */
        unsigned backoff_ms;    /* delay before the first retry; doubles on each further retry */
        uint64_t max_size;      /* cap for items whose expected_size and max_size are 0; 0 = FETCH_DEFAULT_MAX_SIZE */
        bool no_fsync;          /* skip the per-file fsync: the caller syncs in one go (the cache does) */
        /* Called in fetch_all()'s thread as soon as an item has finished (result, error, used_url
         * and not_found set; on success dest is in place), in completion order, so a caller can
         * use each file while the others still download. Not called for items still unfinished
         * when fetch_all() stops on a setup or libcurl failure: their result says so on return. */
        void (*on_item_done)(struct fetch_item *item, void *userdata);
        void *userdata;
        /* When it reads true, fetch_all() stops: unfinished items fail with -ECANCELED. It is
         * checked between rounds of the transfer loop, at least every 100 ms while waiting for
         * the network; a file:// copy or an on_item_done call in progress finishes first.
         * NULL = never. */
        const atomic_bool *cancel;
};

#define FETCH_DEFAULT_JOBS 5
#define FETCH_DEFAULT_RETRIES 3
#define FETCH_DEFAULT_CONNECT_TIMEOUT_MS 30000L
#define FETCH_DEFAULT_LOW_SPEED_TIME_S 30L
#define FETCH_DEFAULT_LOW_SPEED_LIMIT 1L
#define FETCH_DEFAULT_BACKOFF_MS 1000u
#define FETCH_DEFAULT_MAX_SIZE (UINT64_C(1) << 30)
#define FETCH_MAX_REDIRECTS 5

/* Fill *ret with the defaults above (what opts == NULL means). */
void fetch_options_default(struct fetch_options *ret);

/* Download every item, up to opts->jobs at once. Transient failures (timeouts, refused or reset
 * connections, stalls, truncated bodies, HTTP 5xx/408/429) are retried on the same URL with
 * exponential backoff, resuming from the bytes already in dest.part; permanent ones (other 4xx,
 * a file:// path that does not exist, an unsupported scheme, a wrong size) move on to the next
 * URL at once. A failure writing locally (dest.part, the rename) fails the item without failover.
 * Emits MKM_EV_PROGRESS ("downloading", bytes and files across all items, at most 10 a second)
 * and MKM_EV_FILE_DONE per finished file; retries and failovers are logged at debug level.
 *
 * Returns 0 when every item succeeded, else the result of the first failed item (in array order),
 * with reterr naming its label and error. Every item's result/error/used_url is set either way.
 * A failed item leaves no dest; its dest.part stays only when it may be resumed later. */
int fetch_all(struct mkm_ctx *ctx, struct fetch_item *items, size_t n, const struct fetch_options *opts,
              struct mkm_err *reterr);
