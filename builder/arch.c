/* SPDX-License-Identifier: MIT */
/* Distribution=arch: pacstrap without pacman on the host.
 *
 * Mirrors: Mirror= (pacman's "Server" form with $repo and $arch, repeatable for failover), else
 * Snapshot= on the Arch Linux Archive (its base URL from MKMACHINE_ARCH_ARCHIVE), else the
 * host's /etc/pacman.d/mirrorlist as pacstrap uses it. Package signatures are required: the
 * db's %PGPSIG% or the mirror's FILE.sig, checked against keys/archlinux or Keyring=. A db
 * signature (REPO.db.sig) is verified when the mirror has one. */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "alpm-hook.h"
#include "alpm-script.h"
#include "build.h"
#include "cache.h"
#include "ctx.h"
#include "db-alpm.h"
#include "deploy.h"
#include "extract.h"
#include "fetch.h"
#include "hooks.h"
#include "lock.h"
#include "recipe.h"
#include "repo-alpm.h"
#include "resolve.h"
#include "sandbox.h"
#include "util/base64.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strv.h"
#include "util/thread.h"
#include "verify.h"

#define MIRRORLIST_MAX (1u << 20)

struct arch {
        struct build *b;
        char **mirrors;                 /* templates with $repo/$arch */
        char **sources;                 /* for the lock header */
        const char *arch;
        struct verify_keyring *keyring;
        struct repo_alpm_db **dbs;
        size_t ndbs;
        char **keys_used;               /* signer fingerprints */
        struct verify_job *vj;          /* downloads and signature checks running alongside the install */
};

static void verify_stop(struct arch *a);

static uint64_t mono_ns(void) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void arch_done(struct arch *a) {
        verify_stop(a);
        for (size_t i = 0; i < a->ndbs; i++)
                repo_alpm_db_free(a->dbs[i]);
        free(a->dbs);
        strv_free(a->mirrors);
        strv_free(a->sources);
        strv_free(a->keys_used);
        verify_keyring_free(a->keyring);
}

/* Replace $repo and $arch in a mirror template. */
static char *expand(const char *tmpl, const char *repo, const char *arch) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        for (const char *p = tmpl; *p;) {
                if (strncmp(p, "$repo", 5) == 0) {
                        fputs(repo, f);
                        p += 5;
                } else if (strncmp(p, "$arch", 5) == 0) {
                        fputs(arch, f);
                        p += 5;
                } else
                        fputc(*p++, f);
        }
        if (fclose(f) != 0) {
                free(out);
                return NULL;
        }
        return out;
}

/* URLs of file in repo across all mirrors, in failover order. */
static int urls_for(struct arch *a, const char *repo, const char *file, char ***ret) {
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (char **m = a->mirrors; *m; m++) {
                _cleanup_free_ char *base = expand(*m, repo, a->arch);
                char *u = NULL;
                if (!base || asprintf(&u, "%s/%s", base, file) < 0)
                        return -ENOMEM;
                int r = strv_consume(&l, u);
                if (r < 0) {
                        free(u);
                        return r;
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* Mirrors from the recipe, the snapshot, or the host's mirrorlist (pacstrap's behaviour). */
static int find_mirrors(struct arch *a, struct mkm_err *reterr) {
        const struct recipe *r = a->b->recipe;
        struct mkm_ctx *ctx = a->b->ctx;
        int q;
        if (r->mirrors && *r->mirrors) {
                a->mirrors = strv_copy(r->mirrors);
                if (!a->mirrors)
                        return -ENOMEM;
                for (char **m = r->mirrors; *m; m++) {
                        char *s = NULL;
                        if (asprintf(&s, "mirror %s", *m) < 0 || strv_consume(&a->sources, s) < 0) {
                                free(s);
                                return -ENOMEM;
                        }
                }
                return 0;
        }
        if (r->snapshot) {
                /* The archive's address is configuration, not code: the environment, else
                 * HOST/etc/mkmachine/arch-archive (one line, the base URL). */
                const char *archive = getenv("MKMACHINE_ARCH_ARCHIVE");
                _cleanup_free_ char *conf = NULL, *conf_text = NULL;
                if (!archive || !*archive) {
                        conf = fs_path_join(ctx->host_root, "etc/mkmachine/arch-archive");
                        if (!conf)
                                return -ENOMEM;
                        if (fs_read_file_at(AT_FDCWD, conf, 4096, &conf_text, NULL) >= 0) {
                                conf_text[strcspn(conf_text, " \t\r\n")] = 0;
                                archive = conf_text;
                        }
                }
                if (!archive || !*archive)
                        return mkm_err_set(reterr, -MKM_E_RECIPE,
                                           "%s: Snapshot=%s needs the address of the Arch Linux Archive: set "
                                           "MKMACHINE_ARCH_ARCHIVE or write it to %s, or give Mirror=",
                                           r->path ? r->path : "recipe", r->snapshot, conf ? conf : "etc/mkmachine/arch-archive");
                if (strncmp(archive, "http://", 7) != 0 && strncmp(archive, "https://", 8) != 0 &&
                    strncmp(archive, "file://", 7) != 0)
                        return mkm_err_set(reterr, -MKM_E_RECIPE, "the Arch Linux Archive address '%s' is not an http(s):// or file:// URL",
                                           archive);
                char y[5], m[3], d[3];
                if (sscanf(r->snapshot, "%4[0-9]%*[-/]%2[0-9]%*[-/]%2[0-9]", y, m, d) != 3)
                        return mkm_err_set(reterr, -MKM_E_RECIPE, "Snapshot=%s: expected YYYY-MM-DD", r->snapshot);
                char *t = NULL;
                if (asprintf(&t, "%s/%s/%s/%s/$repo/os/$arch", archive, y, m, d) < 0)
                        return -ENOMEM;
                q = strv_consume(&a->mirrors, t);
                if (q < 0) {
                        free(t);
                        return q;
                }
                char *s = NULL;
                if (asprintf(&s, "snapshot %s", r->snapshot) < 0 || strv_consume(&a->sources, s) < 0) {
                        free(s);
                        return -ENOMEM;
                }
                return 0;
        }
        _cleanup_free_ char *ml = fs_path_join(ctx->host_root, "etc/pacman.d/mirrorlist");
        _cleanup_free_ char *text = NULL;
        if (!ml)
                return -ENOMEM;
        q = fs_read_file_at(AT_FDCWD, ml, MIRRORLIST_MAX, &text, NULL);
        if (q == -ENOENT)
                return mkm_err_set(reterr, -MKM_E_RECIPE,
                                   "%s: no mirror: give Mirror= or Snapshot= in [Bootstrap], or provide %s as pacstrap "
                                   "would use it",
                                   r->path ? r->path : "recipe", ml);
        if (q < 0)
                return mkm_err_set(reterr, q, "cannot read %s: %s", ml, strerror(-q));
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                line += strspn(line, " \t");
                if (strncmp(line, "Server", 6) != 0)
                        continue;
                char *eq = strchr(line, '=');
                if (!eq)
                        continue;
                eq++;
                eq += strspn(eq, " \t");
                eq[strcspn(eq, " \t\r")] = 0;
                if (!*eq)
                        continue;
                q = strv_push(&a->mirrors, eq);
                if (q < 0)
                        return q;
                char *s = NULL;
                if (asprintf(&s, "mirror %s", eq) < 0 || strv_consume(&a->sources, s) < 0) {
                        free(s);
                        return -ENOMEM;
                }
        }
        if (!a->mirrors || !*a->mirrors)
                return mkm_err_set(reterr, -MKM_E_RECIPE, "%s has no 'Server =' line", ml);
        return 0;
}

static int open_keyring(struct arch *a, struct mkm_err *reterr) {
        const struct recipe *r = a->b->recipe;
        _cleanup_free_ char *dflt = fs_path_join(a->b->ctx->keys_dir, "archlinux");
        if (!dflt)
                return -ENOMEM;
        const char *path = r->keyring ? r->keyring : dflt;
        int q = verify_keyring_new_cached(a->b->ctx, path, a->b->ctx->cache_dir, &a->keyring, reterr);
        if (q < 0)
                return mkm_err_prefix(reterr, q, "keyring %s", path);
        mkm_debug(a->b->ctx, "keyring %s: %u keys", path, verify_keyring_count(a->keyring));
        return 0;
}

static int note_key(struct arch *a, const char *fpr) {
        if (strv_contains(a->keys_used, fpr))
                return 0;
        return strv_push(&a->keys_used, fpr);
}

/* Download a set of files into the cache by expected digest (NULL = unknown, for dbs).
 * On success ret_paths[i] is the cache path (or, for unknown digests, the committed digest in
 * ret_digests[i]). */
struct want {
        char **urls;            /* owned */
        const char *label;
        const char *sha256;     /* expected, or NULL */
        uint64_t size;          /* expected, or 0 */
        bool optional;          /* a 404 everywhere is not an error (db signatures) */
        char digest[HASH_SHA256_HEX];   /* out */
        bool present;           /* out */
        char *owned;            /* freed with the want (a label made for it) */
        size_t pkg;             /* the plan's package it belongs to, where that matters */
};

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

static int fetch_into_cache(struct arch *a, struct want *w, size_t n, struct mkm_err *reterr) {
        struct build *b = a->b;
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
                if (w[i].sha256 && cache_check(b->cache, w[i].sha256, w[i].size, 0, NULL, NULL) == 0) {
                        memcpy(w[i].digest, w[i].sha256, HASH_SHA256_HEX);
                        w[i].present = true;
                        continue;
                }
                char label[128];
                safe_label(w[i].label, label, sizeof label);
                r = cache_tmp_path(b->cache, label, &tmps[m]);
                if (r < 0) {
                        mkm_err_set(reterr, r, "cannot reserve a download file for %s: %s", w[i].label, strerror(-r));
                        goto out;
                }
                items[m] = (struct fetch_item){ .urls = w[i].urls, .dest = tmps[m], .expected_size = w[i].size,
                                                .label = w[i].label };
                idx[m++] = i;
        }
        if (m > 0) {
                mkm_emit(b->ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "downloading" });
                struct fetch_options fo;
                fetch_options_default(&fo);
                fo.no_fsync = true;
                struct mkm_err ferr = {};
                (void)fetch_all(b->ctx, items, m, &fo, &ferr);
        }
        for (size_t k = 0; k < m; k++) {
                struct want *x = &w[idx[k]];
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
                int q = cache_commit(b->cache, tmps[k], x->sha256, x->size, x->digest, &cerr);
                if (q < 0) {
                        if (r == 0)
                                r = mkm_err_set(reterr, q, "%s from %s: %s", x->label, items[k].used_url, cerr.msg);
                        continue;
                }
                x->present = true;
        }
out:
        /* (made durable with everything else by fetch_finish()) */
        for (size_t k = 0; k < m; k++) {
                if (tmps[k])
                        drop_tmp(tmps[k]);
        }
        strv_free(tmps);
        return r;
}

static void want_done(struct want *w, size_t n) {
        for (size_t i = 0; w && i < n; i++) {
                strv_free(w[i].urls);
                free(w[i].owned);
        }
}

struct wants {
        struct want *w;
        size_t n;
};

static void wants_done(struct wants *ws) {
        want_done(ws->w, ws->n);
        free(ws->w);
}

static int read_cached(struct arch *a, const char *digest, size_t max, char **ret, size_t *ret_len) {
        _cleanup_free_ char *path = NULL;
        int r = cache_lookup(a->b->cache, digest, &path);
        if (r < 0)
                return r;
        return fs_read_file_at(AT_FDCWD, path, max, ret, ret_len);
}

/* Fetch, verify (when a signature exists) and parse every REPO.db. */
static int load_dbs(struct arch *a, struct mkm_err *reterr) {
        struct build *b = a->b;
        char **repos = b->recipe->repositories;
        size_t n = strv_length(repos);
        if (n == 0)
                return mkm_err_set(reterr, -MKM_E_RECIPE, "[Bootstrap] Repositories=: no repository given");
        _cleanup_free_ struct want *w = calloc(2 * n, sizeof *w);
        _cleanup_strv_free_ char **labels = calloc(1, sizeof(char *));
        if (!w || !labels)
                return -ENOMEM;
        int r = 0;
        for (size_t i = 0; i < n && r >= 0; i++) {
                char *l1 = NULL, *l2 = NULL;
                if (asprintf(&l1, "%s.db", repos[i]) < 0 || strv_consume(&labels, l1) < 0) {
                        free(l1);       /* not consumed */
                        r = -ENOMEM;
                        break;
                }
                if (asprintf(&l2, "%s.db.sig", repos[i]) < 0 || strv_consume(&labels, l2) < 0) {
                        free(l2);       /* l1 belongs to labels now */
                        r = -ENOMEM;
                        break;
                }
                w[2 * i] = (struct want){ .label = l1 };
                w[2 * i + 1] = (struct want){ .label = l2, .optional = true };
                r = urls_for(a, repos[i], l1, &w[2 * i].urls);
                if (r >= 0)
                        r = urls_for(a, repos[i], l2, &w[2 * i + 1].urls);
        }
        if (r >= 0) {
                mkm_emit(b->ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "synchronizing package databases" });
                r = fetch_into_cache(a, w, 2 * n, reterr);
        }
        if (r < 0) {
                want_done(w, 2 * n);
                return r;
        }
        a->dbs = calloc(n, sizeof *a->dbs);
        if (!a->dbs) {
                want_done(w, 2 * n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_free_ char *data = NULL, *sig = NULL;
                size_t len = 0, siglen = 0;
                r = read_cached(a, w[2 * i].digest, REPO_ALPM_MAX_TOTAL, &data, &len);
                if (r < 0) {
                        mkm_err_set(reterr, r, "%s: cannot read from the cache: %s", w[2 * i].label, strerror(-r));
                        break;
                }
                /* A db signature that exists is checked before the db is parsed (as pacman does). */
                if (w[2 * i + 1].present) {
                        r = read_cached(a, w[2 * i + 1].digest, VERIFY_MAX_SIG, &sig, &siglen);
                        if (r >= 0) {
                                struct verify_result vr;
                                r = verify_detached(a->keyring, data, len, sig, siglen, &vr, reterr);
                                if (r < 0)
                                        mkm_err_prefix(reterr, r, "%s", w[2 * i].label);
                        }
                        if (r < 0)
                                break;
                } else if (b->recipe->require_db_signature) {
                        r = mkm_err_set(reterr, -MKM_E_SIG_MISSING,
                                        "%s: no signature (%s.sig) on any mirror, and RequireDatabaseSignature=yes",
                                        w[2 * i].label, w[2 * i].label);
                        break;
                } else
                        mkm_debug(b->ctx, "%s has no signature (Arch mirrors do not sign their dbs)", w[2 * i].label);
                r = repo_alpm_parse(b->ctx, repos[i], data, len, &a->dbs[i], reterr);
                if (r >= 0)
                        a->ndbs++;
        }
        want_done(w, 2 * n);
        return r;
}

/* A stored signature: its bytes go to the cache, addressed by digest, so a lock can pin it. */
static int store_blob(struct arch *a, const char *label, const void *data, size_t len, char *ret_digest,
                      struct mkm_err *reterr) {
        _cleanup_free_ char *tmp = NULL;
        char safe[128];
        safe_label(label, safe, sizeof safe);
        int r = cache_tmp_path(a->b->cache, safe, &tmp);
        if (r < 0)
                return r;
        r = fs_write_file_at(AT_FDCWD, tmp, data, len, 0600);
        if (r < 0) {
                (void)unlink(tmp);
                return mkm_err_set(reterr, r, "cannot write %s: %s", tmp, strerror(-r));
        }
        return cache_commit(a->b->cache, tmp, NULL, 0, ret_digest, reterr);
}

/* Resolve the recipe against the dbs and describe the result as a lock. */
static int plan_from_repos(struct arch *a, struct mkm_err *reterr) {
        struct build *b = a->b;
        int r = load_dbs(a, reterr);
        if (r < 0)
                return r;
        mkm_emit(b->ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "resolving dependencies" });
        _cleanup_(resolve_plan_freep) struct resolve_plan *plan = NULL;
        r = resolve_arch(b->ctx, a->dbs, a->ndbs, b->recipe->packages, b->recipe->providers, &plan, reterr);
        if (r < 0)
                return r;
        _cleanup_(lock_freep) struct lock *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->inputs = strdup(b->inputs);
        l->distribution = strdup("arch");
        l->sources = strv_copy(a->sources);
        if (!l->inputs || !l->distribution || !l->sources)
                return -ENOMEM;

        /* Signatures missing from the db come from the mirror (FILE.sig). */
        _cleanup_(wants_done) struct wants ws = { .w = calloc(plan->n ? plan->n : 1, sizeof *ws.w) };
        if (!ws.w)
                return -ENOMEM;
        for (size_t i = 0; i < plan->n; i++) {
                const struct repo_alpm_pkg *p = plan->items[i].pkg;
                if (!p->sha256)
                        return mkm_err_set(reterr, -MKM_E_PARSE, "%s.db: %s has no %%SHA256SUM%%", p->repo, p->name);
                struct lock_pkg lp = { .name = p->name, .version = p->version, .repo = (char *)p->repo,
                                       .filename = p->filename, .size = p->csize, .isize = p->isize,
                                       .order = (unsigned)i, .explicit = plan->items[i].explicit,
                                       .builddate = p->builddate };
                memcpy(lp.sha256, p->sha256, HASH_SHA256_HEX);
                if (p->pgpsig) {
                        _cleanup_free_ uint8_t *sig = NULL;
                        size_t siglen;
                        if (base64_decode(p->pgpsig, &sig, &siglen) < 0)
                                return mkm_err_set(reterr, -MKM_E_PARSE, "%s.db: %s: %%PGPSIG%% is not base64",
                                                   p->repo, p->name);
                        char label[160];
                        snprintf(label, sizeof label, "%.120s.sig", p->filename);
                        r = store_blob(a, label, sig, siglen, lp.sig_sha256, reterr);
                        if (r < 0)
                                return r;
                } else {
                        struct want *x = &ws.w[ws.n];
                        *x = (struct want){ .optional = true, .pkg = i };
                        if (asprintf(&x->owned, "%s.sig", p->filename) < 0) {
                                x->owned = NULL;
                                return -ENOMEM;
                        }
                        x->label = x->owned;
                        ws.n++;
                        r = urls_for(a, p->repo, x->label, &x->urls);
                        if (r < 0)
                                return r;
                }
                r = lock_add(l, &lp);
                if (r < 0)
                        return r;
        }
        if (ws.n > 0) {
                r = fetch_into_cache(a, ws.w, ws.n, reterr);
                if (r < 0)
                        return r;
                /* lock_add() kept the plan's order: package i is l->pkgs[i]. */
                for (size_t k = 0; k < ws.n; k++)
                        if (ws.w[k].present)
                                memcpy(l->pkgs[ws.w[k].pkg].sig_sha256, ws.w[k].digest, HASH_SHA256_HEX);
        }
        b->lock_out = TAKE_PTR(l);
        return 0;
}

/* The package pipeline: downloads, signature checks and the install overlap.
 *
 *   fetcher thread   fetch_all() over every package and signature not in the cache yet, in
 *                    install order; each file is committed to the cache as it lands
 *   verify threads   one per CPU; package i is checked once it and its signature are in the
 *                    cache (verify_detached_fd with the thread's own handle on the one prepared
 *                    keyring: in-process for a key gpg accepted before, else a gpg run)
 *   caller           install(): package i is opened (by any parser) only after verify_wait(i)
 *                    said its signature is good
 *
 * A download failure becomes package i's result, so the build fails at the first package it
 * cannot install, with the download's message. verify_stop() cancels whatever still runs. */
struct verify_job {
        struct arch *a;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        size_t next, n;                 /* packages */
        bool stop;
        bool *ready;                    /* package i checked: results[i], errs[i], fprs[i] */
        int *results;
        struct mkm_err *errs;
        char (*fprs)[VERIFY_FPR_MAX];
        pthread_t *threads;
        size_t nthreads;

        /* downloads: want 2i is package i, 2i + 1 its signature */
        struct want *w;                 /* owned, 2n */
        bool *w_done;                   /* in the cache (w_res 0) or failed */
        int *w_res;
        struct mkm_err *w_errs;
        struct fetch_item *items;       /* the wants not in the cache yet */
        size_t *idx;                    /* items[k] is want idx[k] */
        char **tmps;                    /* items[k].dest, in the cache's tmp/ */
        bool *released;                 /* tmps[k] was let go of (release_item) */
        size_t m;
        pthread_t fetcher;
        bool has_fetcher;
        atomic_bool cancel;
};

/* Record want k's outcome and wake whoever waits for it. */
static void want_finish(struct verify_job *j, size_t k, int r, const struct mkm_err *e) {
        pthread_mutex_lock(&j->lock);
        if (!j->w_done[k]) {
                j->w_done[k] = true;
                j->w_res[k] = r;
                if (r < 0 && e)
                        j->w_errs[k] = *e;
                pthread_cond_broadcast(&j->cond);
        }
        pthread_mutex_unlock(&j->lock);
}

/* Let go of item's download name, once (the fetcher's closing sweep comes after on_fetched). */
static void release_item(struct verify_job *j, size_t item) {
        if (j->released[item])
                return;
        j->released[item] = true;
        release_tmp(j->a->b->cache, j->tmps[item]);
}

/* fetch_all()'s callback, on the fetcher thread: commit the file to the cache (hash, size). */
static void on_fetched(struct fetch_item *it, void *userdata) {
        struct verify_job *j = userdata;
        size_t item = (size_t)(it - j->items), k = j->idx[item];
        struct want *x = &j->w[k];
        struct mkm_err e = {};
        int r = it->result;
        if (r < 0)
                mkm_err_set(&e, r, "cannot download %s: %s", x->label, it->error);
        else {
                struct mkm_err cerr = {};
                const char *url = it->used_url;
                r = cache_commit(j->a->b->cache, j->tmps[item], x->sha256, x->size, x->digest, &cerr);
                if (r == -MKM_E_DIGEST_MISMATCH && it->resumed && !atomic_load(&j->cancel)) {
                        /* The body continued an earlier build's partial download, which may have
                         * been wrong (cache_commit removed it): once more, from the first byte. */
                        mkm_debug(j->a->b->ctx, "%s: %s; it was resumed, so downloading it again from the start",
                                  x->label, cerr.msg);
                        struct fetch_item again = { .urls = x->urls, .dest = j->tmps[item], .expected_size = x->size,
                                                    .label = x->label };
                        struct fetch_options fo;
                        fetch_options_default(&fo);
                        fo.no_fsync = true;
                        fo.cancel = &j->cancel;
                        struct mkm_err ferr = {};
                        if (fetch_all(j->a->b->ctx, &again, 1, &fo, &ferr) == 0) {
                                url = again.used_url;
                                r = cache_commit(j->a->b->cache, j->tmps[item], x->sha256, x->size, x->digest, &cerr);
                        } else {
                                r = again.result < 0 ? again.result : -EIO;
                                (void)snprintf(cerr.msg, sizeof cerr.msg, "downloading it again: %s", again.error);
                                url = NULL;
                        }
                }
                if (r < 0)
                        mkm_err_set(&e, r, "%s from %s: %s", x->label, url ? url : "the mirrors", cerr.msg);
                else
                        x->present = true;
        }
        release_item(j, item);
        want_finish(j, k, r, &e);
}

static void *fetcher_thread(void *userdata) {
        struct verify_job *j = userdata;
        struct build *b = j->a->b;
        struct fetch_options fo;
        fetch_options_default(&fo);
        fo.no_fsync = true;     /* one syncfs at the end instead of four fsyncs per file (cache.h) */
        fo.on_item_done = on_fetched;
        fo.userdata = j;
        fo.cancel = &j->cancel;
        struct mkm_err ferr = {};
        int fr = fetch_all(b->ctx, j->items, j->m, &fo, &ferr);
        /* Items fetch_all() did not report (it stopped: cancelled, out of memory, libcurl). A
         * verify worker waiting for one must get a failure, never wait forever. */
        for (size_t item = 0; item < j->m; item++) {
                struct mkm_err e = {};
                int r = j->items[item].result < 0 ? j->items[item].result : fr < 0 ? fr : -ECANCELED;
                mkm_err_set(&e, r, "cannot download %s: %s", j->w[j->idx[item]].label,
                            j->items[item].error[0] ? j->items[item].error : ferr.msg[0] ? ferr.msg : mkm_strerror(r));
                want_finish(j, j->idx[item], r, &e);    /* no-op for the ones already reported */
                release_item(j, item);                  /* no-op for the ones released already */
        }
        (void)cache_sync(b->cache);     /* in the background; fetch_finish() reports a failure */
        return NULL;
}

static int verify_one(struct arch *a, struct verify_keyring *k, size_t i, char *ret_fpr, struct mkm_err *reterr) {
        struct lock_pkg *p = &a->b->lock_out->pkgs[i];
        _cleanup_free_ char *sig = NULL;
        size_t siglen = 0;
        int r = read_cached(a, p->sig_sha256, VERIFY_MAX_SIG, &sig, &siglen);
        if (r < 0)
                return mkm_err_set(reterr, r, "%s: signature not in the cache: %s", p->name, strerror(-r));
        _cleanup_close_ int fd = -EBADF;
        r = cache_open_fd(a->b->cache, p->sha256, &fd);
        if (r < 0)
                return mkm_err_set(reterr, r, "%s: package not in the cache: %s", p->name, strerror(-r));
        struct verify_result vr;
        r = verify_detached_fd(k, fd, sig, siglen, &vr, reterr);
        if (r == -MKM_E_SIG_BAD || r == -MKM_E_SIG_MISSING) {
                /* The cache syncs once per build (cache.h): after a crash an entry may have the
                 * right size and the wrong bytes. Then the cache is at fault, not the signer:
                 * drop the entry so that the next build downloads it again, and say so. */
                const char *digests[] = { p->sha256, p->sig_sha256 };
                for (size_t d = 0; d < ELEMENTSOF(digests); d++) {
                        struct mkm_err cerr = {};
                        if (cache_check(a->b->cache, digests[d], d == 0 ? p->size : 0, CACHE_CHECK_REHASH, NULL, &cerr) ==
                            -MKM_E_DIGEST_MISMATCH)
                                return mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH,
                                                   "%s: the cached %s was damaged (%s); it was removed from the cache, "
                                                   "the next build downloads it again",
                                                   p->name, d == 0 ? "package" : "signature", cerr.msg);
                }
        }
        if (r < 0)
                return mkm_err_prefix(reterr, r, "%s-%s (%s)", p->name, p->version, p->filename);
        memcpy(ret_fpr, vr.fingerprint, VERIFY_FPR_MAX);
        return 0;
}

/* Wait (with j->lock held) until package i and its signature are in the cache; their failure,
 * if any, in *reterr. -ECANCELED when the job stops first. */
static int wait_fetched(struct verify_job *j, size_t i, struct mkm_err *reterr) {
        for (size_t k = 2 * i; k <= 2 * i + 1; k++) {
                while (!j->w_done[k] && !j->stop)
                        pthread_cond_wait(&j->cond, &j->lock);
                if (!j->w_done[k])
                        return -ECANCELED;
                if (j->w_res[k] < 0) {
                        *reterr = j->w_errs[k];
                        return j->w_res[k];
                }
        }
        return 0;
}

static void *verify_worker(void *userdata) {
        struct verify_job *j = userdata;
        struct verify_keyring *k = NULL;
        int cr = verify_keyring_clone(j->a->keyring, &k);
        for (;;) {
                struct mkm_err e = {};
                pthread_mutex_lock(&j->lock);
                size_t i = j->stop ? j->n : j->next++;
                int r = i < j->n ? wait_fetched(j, i, &e) : 0;
                bool stop = j->stop;
                pthread_mutex_unlock(&j->lock);
                /* Only a requested stop ends the loop early: every other outcome, a failed
                 * download included, is published for verify_wait(). */
                if (i >= j->n || (stop && r == -ECANCELED))
                        break;
                if (r >= 0)
                        r = cr < 0 ? cr : verify_one(j->a, k, i, j->fprs[i], &e);
                pthread_mutex_lock(&j->lock);
                j->results[i] = r;
                j->errs[i] = e;
                j->ready[i] = true;
                pthread_cond_broadcast(&j->cond);
                pthread_mutex_unlock(&j->lock);
        }
        verify_keyring_free(k);
        return NULL;
}

static void verify_job_free(struct verify_job *j) {
        if (!j)
                return;
        want_done(j->w, 2 * j->n);
        strv_free(j->tmps);
        free(j->released);
        free(j->w);
        free(j->w_done);
        free(j->w_res);
        free(j->w_errs);
        free(j->items);
        free(j->idx);
        free(j->ready);
        free(j->results);
        free(j->errs);
        free(j->fprs);
        free(j->threads);
        free(j);
}

/* Start the pipeline over the plan: the downloads of what the cache lacks, and the checks.
 * Takes w (2n wants, package then signature) in every case. */
static int verify_start(struct arch *a, struct want *w, struct mkm_err *reterr) {
        size_t n = a->b->lock_out->n, n1 = n ? n : 1;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        struct verify_job *j = calloc(1, sizeof *j);
        if (!j) {
                want_done(w, 2 * n);
                free(w);
                return -ENOMEM;
        }
        j->a = a;
        j->n = n;
        j->w = w;
        j->nthreads = cpus > 0 ? (size_t)cpus : 1;
        if (j->nthreads > n)
                j->nthreads = n;
        if (j->nthreads > 16)
                j->nthreads = 16;
        j->ready = calloc(n1, sizeof *j->ready);
        j->results = calloc(n1, sizeof *j->results);
        j->errs = calloc(n1, sizeof *j->errs);
        j->fprs = calloc(n1, sizeof *j->fprs);
        j->threads = calloc(j->nthreads ? j->nthreads : 1, sizeof *j->threads);
        j->w_done = calloc(2 * n1, sizeof *j->w_done);
        j->w_res = calloc(2 * n1, sizeof *j->w_res);
        j->w_errs = calloc(2 * n1, sizeof *j->w_errs);
        j->items = calloc(2 * n1, sizeof *j->items);
        j->idx = calloc(2 * n1, sizeof *j->idx);
        j->tmps = calloc(2 * n1 + 1, sizeof *j->tmps);
        j->released = calloc(2 * n1, sizeof *j->released);
        if (!j->ready || !j->results || !j->errs || !j->fprs || !j->threads || !j->w_done || !j->w_res ||
            !j->w_errs || !j->items || !j->idx || !j->tmps || !j->released) {
                verify_job_free(j);
                return -ENOMEM;
        }
        for (size_t k = 0; k < 2 * n; k++) {
                if (cache_check(a->b->cache, w[k].sha256, w[k].size, 0, NULL, NULL) == 0) {
                        memcpy(w[k].digest, w[k].sha256, HASH_SHA256_HEX);
                        w[k].present = j->w_done[k] = true;
                        continue;
                }
                /* Named after the digest: what a killed build downloaded in part is resumed. */
                int r = cache_tmp_path_for(a->b->cache, w[k].sha256, &j->tmps[j->m]);
                if (r < 0) {
                        mkm_err_set(reterr, r, "cannot reserve a download file for %s: %s", w[k].label, strerror(-r));
                        for (size_t t = 0; t < j->m; t++)
                                release_tmp(a->b->cache, j->tmps[t]);
                        verify_job_free(j);     /* frees w and its labels */
                        return r;
                }
                j->items[j->m] = (struct fetch_item){ .urls = w[k].urls, .dest = j->tmps[j->m],
                                                      .expected_size = w[k].size, .label = w[k].label };
                j->idx[j->m++] = k;
        }
        bool have_lock = pthread_mutex_init(&j->lock, NULL) == 0;
        if (!have_lock || pthread_cond_init(&j->cond, NULL) != 0) {
                if (have_lock)
                        pthread_mutex_destroy(&j->lock);
                for (size_t t = 0; t < j->m; t++)
                        release_tmp(a->b->cache, j->tmps[t]);
                verify_job_free(j);
                return -ENOMEM;
        }
        a->vj = j;
        if (j->m > 0) {
                mkm_emit(a->b->ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "downloading" });
                if (thread_create_nosig(&j->fetcher, fetcher_thread, j) != 0) {
                        fetcher_thread(j);      /* no thread: download everything first */
                } else
                        j->has_fetcher = true;
        }
        mkm_emit(a->b->ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "checking package integrity" });
        size_t started = 0;
        for (; started < j->nthreads; started++)
                if (thread_create_nosig(&j->threads[started], verify_worker, j) != 0)
                        break;
        j->nthreads = started;
        if (started == 0 && n > 0)
                verify_worker(j);       /* no thread could start: check everything here */
        return 0;
}

/* Wait until package i is checked; its failure, if any, in reterr. */
static int verify_wait(struct arch *a, size_t i, struct mkm_err *reterr) {
        struct verify_job *j = a->vj;
        pthread_mutex_lock(&j->lock);
        while (!j->ready[i])
                pthread_cond_wait(&j->cond, &j->lock);
        int r = j->results[i];
        pthread_mutex_unlock(&j->lock);
        if (r < 0) {
                if (reterr)
                        *reterr = j->errs[i];
                if (!j->errs[i].msg[0])
                        mkm_err_set(reterr, r, "%s: cannot verify: %s", a->b->lock_out->pkgs[i].name, mkm_strerror(r));
                return r;
        }
        return note_key(a, j->fprs[i]);
}

/* Wait for the downloads to end (all of them are in the cache once every package was checked)
 * and make the cache's new entries durable (nothing to do when the fetcher's syncfs did). */
static int fetch_finish(struct arch *a, struct mkm_err *reterr) {
        struct verify_job *j = a->vj;
        if (j && j->has_fetcher) {
                pthread_join(j->fetcher, NULL);
                j->has_fetcher = false;
        }
        int r = cache_sync(a->b->cache);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot sync the cache %s: %s", cache_dir(a->b->cache), strerror(-r));
        return 0;
}

/* Stop the downloads and the checks after their current file, and join every thread. */
static void verify_stop(struct arch *a) {
        struct verify_job *j = a->vj;
        if (!j) {
                (void)fetch_finish(a, NULL);    /* the plan's cache entries still get their sync */
                return;
        }
        atomic_store(&j->cancel, true);
        pthread_mutex_lock(&j->lock);
        j->stop = true;
        pthread_cond_broadcast(&j->cond);
        pthread_mutex_unlock(&j->lock);
        (void)fetch_finish(a, NULL);
        for (size_t t = 0; t < j->nthreads; t++)
                pthread_join(j->threads[t], NULL);
        pthread_cond_destroy(&j->cond);
        pthread_mutex_destroy(&j->lock);
        verify_job_free(j);
        a->vj = NULL;
}

/* Wait for every package (mkmachine lock), then record the signers in the lock. */
static int verify_all(struct arch *a, struct mkm_err *reterr) {
        struct lock *l = a->b->lock_out;
        for (size_t i = 0; i < l->n; i++) {
                int r = verify_wait(a, i, reterr);
                if (r < 0)
                        return r;
                mkm_emit(a->b->ctx, &(struct mkm_event){ .type = MKM_EV_PROGRESS, .text = "verifying",
                                                         .n = (unsigned)i + 1, .count = (unsigned)l->n });
        }
        int r = fetch_finish(a, reterr);
        if (r < 0)
                return r;
        strv_free(l->keys);
        l->keys = strv_copy(a->keys_used);
        return l->keys ? 0 : -ENOMEM;
}

/* Start downloading what the plan lists and checking every package's signature. */
static int fetch_and_verify(struct arch *a, struct mkm_err *reterr) {
        struct lock *l = a->b->lock_out;
        /* Refuse an unsigned package before downloading anything. */
        for (size_t i = 0; i < l->n; i++)
                if (!l->pkgs[i].sig_sha256[0])
                        return mkm_err_set(reterr, -MKM_E_SIG_MISSING,
                                           "%s: no signature (neither %%PGPSIG%% in %s.db nor %s.sig on the mirror); "
                                           "package signatures are required",
                                           l->pkgs[i].name, l->pkgs[i].repo, l->pkgs[i].filename);
        struct want *w = calloc(2 * l->n + 1, sizeof *w);
        if (!w)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                struct lock_pkg *p = &l->pkgs[i];
                w[2 * i] = (struct want){ .label = p->filename, .sha256 = p->sha256, .size = p->size };
                w[2 * i + 1] = (struct want){ .sha256 = p->sig_sha256 };
        }
        int r = 0;
        for (size_t k = 0; k < 2 * l->n && r >= 0; k++) {
                struct lock_pkg *p = &l->pkgs[k / 2];
                if (k % 2 && asprintf(&w[k].owned, "%s.sig", p->filename) < 0) {
                        w[k].owned = NULL;
                        r = -ENOMEM;
                        break;
                }
                if (k % 2)
                        w[k].label = w[k].owned;
                r = urls_for(a, p->repo, w[k].label, &w[k].urls);
        }
        if (r < 0) {
                want_done(w, 2 * l->n);
                free(w);
                return r;
        }
        return verify_start(a, w, reterr);
}

static int64_t default_epoch(struct build *b, struct lock *l) {
        if (b->ctx->source_date_epoch >= 0)
                return b->ctx->source_date_epoch;
        if (b->recipe->snapshot_epoch >= 0)
                return b->recipe->snapshot_epoch;
        int64_t max = 0;
        for (size_t i = 0; i < l->n; i++)
                if (l->pkgs[i].builddate > max)
                        max = l->pkgs[i].builddate;
        return max;
}

static int write_mirrorlist(struct arch *a, int rootfd, struct mkm_err *reterr) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "# Written by mkmachine from the mirrors this machine was built from.\n");
        for (char **m = a->mirrors; *m; m++)
                fprintf(f, "Server = %s\n", *m);
        if (fclose(f) != 0)
                return -ENOMEM;
        _cleanup_close_ int dfd = fs_mkdir_p_in_root(rootfd, "etc/pacman.d", 0755);
        if (dfd < 0)
                return mkm_err_set(reterr, dfd, "cannot create /etc/pacman.d: %s", strerror(-dfd));
        int r = fs_write_file_at(dfd, "mirrorlist", text, len, 0644);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot write /etc/pacman.d/mirrorlist: %s", strerror(-r));
        return 0;
}

/* Extract every package in order and record it in the local db, running .INSTALL scriptlets
 * (pre_install before a package's files, post_install after its db entry, as pacman) and the
 * libalpm hooks (PreTransaction before the first package, PostTransaction after the last, then
 * ldconfig) in the sandbox. */
static int install(struct arch *a, struct mkm_err *reterr) {
        struct build *b = a->b;
        struct lock *l = b->lock_out;
        int rootfd = b->deploy->root_fd;
        const char *root = b->deploy->staging;
        size_t n1 = l->n ? l->n : 1;
        uint64_t waited = 0;
        _cleanup_(extract_owners_freep) struct extract_owners *owners = extract_owners_new();
        struct extract_result *results = calloc(n1, sizeof *results);
        struct pkginfo *infos = calloc(n1, sizeof *infos);
        char **installs = calloc(n1, sizeof *installs);
        size_t *install_lens = calloc(n1, sizeof *install_lens);
        struct alpm_hook_pkg *hpkgs = calloc(n1, sizeof *hpkgs);
        int r = 0;
        if (!owners || !results || !infos || !installs || !install_lens || !hpkgs) {
                r = -ENOMEM;
                goto out;
        }
        b->source_date_epoch = default_epoch(b, l);
        struct sandbox_opts sbx = { .hostname = b->deploy->name, .source_date_epoch = b->source_date_epoch };

        r = db_alpm_init(rootfd, reterr);
        if (r < 0)
                goto out;
        /* PreTransaction hooks see the tree as it was (a fresh tree has none) and, since nothing
         * is extracted yet, only the package names. */
        for (size_t i = 0; i < l->n; i++)
                hpkgs[i] = (struct alpm_hook_pkg){ .name = l->pkgs[i].name, .version = l->pkgs[i].version };
        r = alpm_hooks_run(b->ctx, root, rootfd, ALPM_HOOK_PRE_TRANSACTION, hpkgs, l->n, NULL, 0, &sbx, reterr);
        if (r < 0)
                goto out;
        mkm_emit(b->ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "installing packages" });
        for (size_t i = 0; i < l->n; i++) {
                struct lock_pkg *p = &l->pkgs[i];
                /* Nothing parses a package before its signature is known to be good. */
                uint64_t t0 = mono_ns();
                r = verify_wait(a, i, reterr);
                waited += mono_ns() - t0;
                if (r < 0)
                        goto out;
                _cleanup_close_ int fd = -EBADF;
                r = cache_open_fd(b->cache, p->sha256, &fd);
                if (r < 0) {
                        mkm_err_set(reterr, r, "%s: package not in the cache: %s", p->name, strerror(-r));
                        goto out;
                }
                /* pre_install runs before the package's files exist, as in pacman. */
                r = alpm_script_read_install(fd, &installs[i], &install_lens[i], reterr);
                if (r < 0) {
                        mkm_err_prefix(reterr, r, "%s (%s)", p->name, p->filename);
                        goto out;
                }
                r = alpm_script_run(b->ctx, root, rootfd, p->name, installs[i], install_lens[i], "pre_install", p->version,
                                    NULL, &sbx, reterr);
                if (r < 0)
                        goto out;
                if (lseek(fd, 0, SEEK_SET) < 0) {
                        r = negative_errno();
                        goto out;
                }
                struct extract_opts o = { .label = p->name, .max_bytes = p->isize, .meta_names = db_alpm_meta_names,
                                          .skip_dot_toplevel = true, .owners = owners };
                r = extract_archive_fd(b->ctx, rootfd, fd, &o, &results[i], reterr);
                if (r < 0)
                        goto out;
                const struct extract_member *pkginfo = extract_result_meta(&results[i], DB_ALPM_PKGINFO);
                if (!pkginfo) {
                        r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s (%s): no .PKGINFO: not a pacman package", p->name,
                                        p->filename);
                        goto out;
                }
                r = pkginfo_parse(pkginfo->data, pkginfo->len, p->name, &infos[i], reterr);
                if (r < 0)
                        goto out;
                /* The file must be the package the db promised, not another one served in its place. */
                if (strcmp(infos[i].name, p->name) != 0 || strcmp(infos[i].version, p->version) != 0) {
                        r = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH, "%s: %s contains %s-%s, not %s-%s", p->repo,
                                        p->filename, infos[i].name, infos[i].version, p->name, p->version);
                        goto out;
                }
                r = db_alpm_write_pkg(b->ctx, rootfd, &infos[i], &results[i], p->explicit, b->source_date_epoch,
                                      DB_ALPM_VALIDATION_PGP, reterr);
                if (r < 0)
                        goto out;
                const struct extract_member *install = extract_result_meta(&results[i], DB_ALPM_INSTALL);
                if (install && !installs[i])
                        mkm_warn(b->ctx, "%s: its .INSTALL comes after its files in the archive: pre_install was skipped",
                                 p->name);
                r = alpm_script_run(b->ctx, root, rootfd, p->name, install ? install->data : NULL,
                                    install ? install->len : 0, "post_install", p->version, NULL, &sbx, reterr);
                if (r < 0)
                        goto out;
                mkm_emit(b->ctx, &(struct mkm_event){ .type = MKM_EV_PROGRESS, .text = "installing", .n = (unsigned)i + 1,
                                                      .count = (unsigned)l->n });
        }
        unsigned native = 0, by_gpg = 0;
        verify_keyring_stats(a->keyring, &native, &by_gpg);
        mkm_debug(b->ctx, "the install waited %.2f s for downloads and signature checks (%u checked in-process, %u by gpg)",
                  (double)waited / 1e9, native, by_gpg);
        r = fetch_finish(a, reterr);
        if (r < 0)
                goto out;
        r = write_mirrorlist(a, rootfd, reterr);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < l->n; i++)
                hpkgs[i] = (struct alpm_hook_pkg){ .name = infos[i].name, .version = infos[i].version,
                                                   .provides = infos[i].provides, .files = results[i].files };
        r = alpm_hooks_run(b->ctx, root, rootfd, ALPM_HOOK_POST_TRANSACTION, hpkgs, l->n, hpkgs, l->n, &sbx, reterr);
        if (r < 0)
                goto out;
        r = alpm_run_ldconfig(b->ctx, root, rootfd, &sbx, reterr);
        if (r < 0)
                goto out;
        strv_free(l->keys);
        l->keys = strv_copy(a->keys_used);
        if (!l->keys)
                r = -ENOMEM;
out:
        for (size_t i = 0; l && i < l->n && results; i++) {
                extract_result_done(&results[i]);
                if (infos)
                        pkginfo_done(&infos[i]);
                if (installs)
                        free(installs[i]);
        }
        free(results);
        free(infos);
        free(installs);
        free(install_lens);
        free(hpkgs);
        return r;
}

static int arch_run(struct build *b, struct mkm_err *reterr) {
        struct arch a = { .b = b };
        struct utsname u;
        int r;

        /* Cache commits skip their fsyncs; fetch_finish() syncs once (cache.h). */
        cache_set_deferred_sync(b->cache, true);
        a.arch = b->recipe->architecture;
        if (!a.arch || !*a.arch)
                a.arch = uname(&u) == 0 ? u.machine : "x86_64";
        r = find_mirrors(&a, reterr);
        if (r < 0)
                goto out;
        r = open_keyring(&a, reterr);
        if (r < 0)
                goto out;
        if (b->lock_in) {
                /* A lock comes with a shared recipe: its repo names end up in mirror URLs. */
                for (size_t i = 0; i < b->lock_in->n; i++)
                        if (!strv_contains(b->recipe->repositories, b->lock_in->pkgs[i].repo)) {
                                r = mkm_err_set(reterr, -MKM_E_LOCK,
                                                "%s: package '%s' comes from repository '%s', which is not in Repositories=",
                                                b->lock_path, b->lock_in->pkgs[i].name, b->lock_in->pkgs[i].repo);
                                goto out;
                        }
                mkm_debug(b->ctx, "installing the set pinned by %s", b->lock_path);
                b->lock_out = b->lock_in;
                b->lock_in = NULL;
                strv_free(b->lock_out->sources);
                b->lock_out->sources = strv_copy(a.sources);
                if (!b->lock_out->sources) {
                        r = -ENOMEM;
                        goto out;
                }
        } else {
                r = plan_from_repos(&a, reterr);
                if (r < 0)
                        goto out;
        }
        if (!b->plan_only) {
                /* Warn now, not after the download, about what the hooks cannot make work. */
                _cleanup_strv_free_ char **names = calloc(1, sizeof(char *));
                if (!names) {
                        r = -ENOMEM;
                        goto out;
                }
                for (size_t i = 0; i < b->lock_out->n; i++)
                        if ((r = strv_push(&names, b->lock_out->pkgs[i].name)) < 0)
                                goto out;
                (void)hooks_precheck(b->ctx, b->recipe, names);
        }
        /* Even `mkmachine lock` verifies: the lock names the keys that signed. */
        r = fetch_and_verify(&a, reterr);
        if (r < 0)
                goto out;
        if (b->plan_only) {
                r = verify_all(&a, reterr);
                goto out;
        }
        r = install(&a, reterr);
out:
        arch_done(&a);
        return r;
}

const struct build_ops build_ops_arch = {
        .distribution = "arch",
        .run = arch_run,
};
