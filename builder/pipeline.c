/* SPDX-License-Identifier: MIT */
/* TEMPORARY (debian branch): a sequential stand-in for the shared pipeline, DIGEST trust only,
 * until the real one (extracted from arch.c) is merged. */
#include "pipeline.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "ctx.h"
#include "fetch.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/strv.h"

struct pipeline {
        struct cache *cache;
        size_t n;
        int *res;
        struct mkm_err *errs;
};

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

static void drop_tmp(const char *tmp) {
        char part[4096];
        (void)unlink(tmp);
        if ((size_t)snprintf(part, sizeof part, "%s.part", tmp) < sizeof part)
                (void)unlink(part);
}

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
                        mkm_err_set(reterr, r, "cannot reserve a download file for %s: %s", w[i].label, strerror(-r));
                        goto out;
                }
                items[m] = (struct fetch_item){ .urls = (char **)w[i].urls, .dest = tmps[m], .expected_size = w[i].size,
                                                .label = w[i].label };
                idx[m++] = i;
        }
        if (m > 0) {
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
                        if (x->optional && items[k].not_found)
                                continue;
                        if (r == 0)
                                r = mkm_err_set(reterr, items[k].result, "cannot download %s: %s", x->label, items[k].error);
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
        for (size_t k = 0; k < m; k++)
                if (tmps[k])
                        drop_tmp(tmps[k]);
        strv_free(tmps);
        return r;
}

int pipeline_start(struct mkm_ctx *ctx, struct cache *cache, enum pipeline_trust trust, struct verify_keyring *keyring,
                   const struct pipeline_item *items, size_t n, struct pipeline **ret, struct mkm_err *reterr) {
        if (trust != PIPELINE_TRUST_DIGEST)
                return -EOPNOTSUPP;
        struct pipeline *p = calloc(1, sizeof *p);
        struct pipeline_want *w = calloc(n ? n : 1, sizeof *w);
        if (!p || !w) {
                free(p);
                free(w);
                return -ENOMEM;
        }
        p->cache = cache;
        p->n = n;
        p->res = calloc(n ? n : 1, sizeof *p->res);
        p->errs = calloc(n ? n : 1, sizeof *p->errs);
        for (size_t i = 0; i < n; i++)
                w[i] = (struct pipeline_want){ .urls = items[i].urls, .label = items[i].label, .sha256 = items[i].sha256,
                                               .size = items[i].size };
        mkm_emit(ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "downloading" });
        int r = pipeline_fetch_batch(ctx, cache, w, n, reterr);
        free(w);
        if (r < 0) {
                pipeline_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

int pipeline_wait(struct pipeline *p, size_t i, char *ret_fpr, struct mkm_err *reterr) {
        if (ret_fpr)
                ret_fpr[0] = 0;
        return 0;
}

int pipeline_wait_all(struct pipeline *p, struct mkm_err *reterr) {
        return pipeline_finish(p, reterr);
}

int pipeline_finish(struct pipeline *p, struct mkm_err *reterr) {
        int r = cache_sync(p->cache);
        return r < 0 ? mkm_err_set(reterr, r, "cannot sync the cache: %s", strerror(-r)) : 0;
}

void pipeline_stats(const struct pipeline *p, uint64_t *ret_waited_ns, unsigned *ret_native, unsigned *ret_gpg) {
        *ret_waited_ns = 0;
        *ret_native = *ret_gpg = 0;
}

struct pipeline *pipeline_free(struct pipeline *p) {
        if (p) {
                free(p->res);
                free(p->errs);
                free(p);
        }
        return NULL;
}
