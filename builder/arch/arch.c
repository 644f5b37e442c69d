/* SPDX-License-Identifier: MIT */
/* Distribution=arch: pacstrap without pacman on the host, as a backend (backend.h).
 *
 * Mirrors: Mirror= (pacman's "Server" form with $repo and $arch, repeatable for failover), else
 * Snapshot= on the Arch Linux Archive (its base URL from MKMACHINE_ARCH_ARCHIVE), else the
 * host's /etc/pacman.d/mirrorlist as pacstrap uses it. Package signatures are required: the
 * db's %PGPSIG% or the mirror's FILE.sig, checked against keys/archlinux or Keyring=. A db
 * signature (REPO.db.sig) is verified when the mirror has one. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "../backend.h"
#include "../build.h"
#include "../cache.h"
#include "../ctx.h"
#include "../deploy.h"
#include "../extract.h"
#include "../lock.h"
#include "../pipeline.h"
#include "../recipe.h"
#include "../sandbox.h"
#include "../util/base64.h"
#include "../util/cleanup.h"
#include "../util/err.h"
#include "../util/fs.h"
#include "../util/hash.h"
#include "../util/strv.h"
#include "../verify.h"
#include "alpm-hook.h"
#include "alpm-script.h"
#include "db-alpm.h"
#include "pkginfo.h"
#include "repo-alpm.h"
#include "resolve.h"
#include "vercmp.h"

#define MIRRORLIST_MAX (1u << 20)

/* The Arch backend's state (backend.h leaves struct backend to each backend). */
struct backend {
        struct build *b;
        char **mirrors;                 /* templates with $repo/$arch */
        char **sources;                 /* for the lock header */
        const char *arch;
        struct verify_keyring *keyring;
        struct repo_alpm_db **dbs;
        size_t ndbs;
        char **keys_used;               /* signer fingerprints */
        struct pipeline_item *items;    /* the lock's packages, for the pipeline */
        char ***urls;                   /* 2n: package i's URLs, then its signature's */
        char **sig_labels;              /* n: FILE.sig */
        size_t nitems;
        /* the install, from install_begin to install_end */
        struct sandbox_opts sbx;
        struct extract_owners *owners;
        struct extract_result *results;
        struct pkginfo *infos;
        char **installs;                /* .INSTALL read before the package's files, for pre_install */
        size_t *install_lens;
        struct alpm_hook_pkg *hpkgs;
        size_t ninstalled;              /* results[0..ninstalled) and infos[...] are filled */
        struct utsname uts;
};

static void arch_free(struct backend *a) {
        if (!a)
                return;
        for (size_t i = 0; i < a->ndbs; i++)
                repo_alpm_db_free(a->dbs[i]);
        free(a->dbs);
        for (size_t i = 0; a->urls && i < 2 * a->nitems; i++)
                strv_free(a->urls[i]);
        free(a->urls);
        for (size_t i = 0; a->sig_labels && i < a->nitems; i++)
                free(a->sig_labels[i]);
        free(a->sig_labels);
        free(a->items);
        for (size_t i = 0; i < a->ninstalled; i++) {
                extract_result_done(&a->results[i]);
                pkginfo_done(&a->infos[i]);
        }
        for (size_t i = 0; a->installs && i < a->nitems; i++)
                free(a->installs[i]);
        extract_owners_free(a->owners);
        free(a->results);
        free(a->infos);
        free(a->installs);
        free(a->install_lens);
        free(a->hpkgs);
        strv_free(a->mirrors);
        strv_free(a->sources);
        strv_free(a->keys_used);
        verify_keyring_free(a->keyring);
        free(a);
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
static int urls_for(struct backend *a, const char *repo, const char *file, char ***ret) {
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
static int find_mirrors(struct backend *a, struct mkm_err *reterr) {
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
                        if (fs_read_file_follow_at(AT_FDCWD, conf, 4096, &conf_text, NULL) >= 0) {
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
        q = fs_read_file_follow_at(AT_FDCWD, ml, MIRRORLIST_MAX, &text, NULL);
        if (q == -ENOENT)
                return mkm_err_set(reterr, -MKM_E_RECIPE,
                                   "%s: no mirror: give Mirror= or Snapshot= in [Bootstrap], or provide %s as pacstrap "
                                   "would use it",
                                   r->path ? r->path : "recipe", ml);
        if (q < 0)
                return mkm_err_set(reterr, q, "cannot read %s: %s", ml, mkm_strerror(q));
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

static int open_keyring(struct backend *a, struct mkm_err *reterr) {
        const struct recipe *r = a->b->recipe;
        _cleanup_free_ char *dflt = fs_path_join(a->b->ctx->keys_dir, "archlinux");
        if (!dflt)
                return -ENOMEM;
        const char *path = r->keyring ? r->keyring : dflt;
        int q;
        if (r->keyring) {
                /* The recipe's: opened beside it, and read from that fd. */
                struct stat st;
                _cleanup_close_ int fd = -EBADF;
                fd = recipe_open_keyring_for_build(r, false, &st, reterr);
                if (fd < 0)
                        return fd;      /* the message names the recipe's line */
                struct fs_reader rd;
                q = recipe_reader(r, &rd);
                if (q < 0)
                        return q == -ENOMEM ? q : mkm_err_set(reterr, q, "keyring %s: %s", path, mkm_strerror(q));
                q = verify_keyring_new_cached_fd(a->b->ctx, fd, path, &rd, a->b->ctx->cache_dir, &a->keyring, reterr);
        } else
                q = verify_keyring_new_cached(a->b->ctx, path, a->b->ctx->cache_dir, &a->keyring, reterr);
        if (q < 0)
                return mkm_err_prefix(reterr, q, "keyring %s", path);
        mkm_debug(a->b->ctx, "keyring %s: %u keys", path, verify_keyring_count(a->keyring));
        return 0;
}

static int note_key(struct backend *a, const char *fpr) {
        if (strv_contains(a->keys_used, fpr))
                return 0;
        return strv_push(&a->keys_used, fpr);
}

/* Files for pipeline_fetch_batch() and the strings they point to. */
struct wants {
        struct pipeline_want *w;
        char ***urls;                   /* owned, w[i].urls */
        char **labels;                  /* owned, w[i].label */
        size_t *pkg;                    /* the plan's package it belongs to, where that matters */
        size_t n, cap;
};

static int wants_init(struct wants *ws, size_t cap) {
        size_t c = cap ? cap : 1;
        ws->w = calloc(c, sizeof *ws->w);
        ws->urls = calloc(c, sizeof *ws->urls);
        ws->labels = calloc(c, sizeof *ws->labels);
        ws->pkg = calloc(c, sizeof *ws->pkg);
        ws->cap = c;
        return ws->w && ws->urls && ws->labels && ws->pkg ? 0 : -ENOMEM;
}

static void wants_done(struct wants *ws) {
        for (size_t i = 0; i < ws->n; i++) {
                strv_free(ws->urls[i]);
                free(ws->labels[i]);
        }
        free(ws->w);
        free(ws->urls);
        free(ws->labels);
        free(ws->pkg);
}

/* Add the file label (taken, also on failure) of repo, from every mirror. */
static int wants_add(struct backend *a, struct wants *ws, const char *repo, char *label, bool optional, size_t pkg) {
        if (!label)
                return -ENOMEM;
        assert(ws->n < ws->cap);
        size_t i = ws->n++;
        ws->labels[i] = label;
        ws->pkg[i] = pkg;
        int r = urls_for(a, repo, label, &ws->urls[i]);
        if (r < 0)
                return r;
        ws->w[i] = (struct pipeline_want){ .urls = ws->urls[i], .label = label, .optional = optional };
        return 0;
}

/* a + b, malloc'd; NULL when out of memory. */
static char *concat(const char *a, const char *b) {
        char *s = NULL;
        return asprintf(&s, "%s%s", a, b) < 0 ? NULL : s;
}

/* Fetch, verify (when a signature exists) and parse every REPO.db. */
static int load_dbs(struct backend *a, struct mkm_err *reterr) {
        struct build *b = a->b;
        char **repos = b->recipe->repositories;
        size_t n = strv_length(repos);
        if (n == 0)
                return mkm_err_set(reterr, -MKM_E_RECIPE, "[Bootstrap] Repositories=: no repository given");
        _cleanup_(wants_done) struct wants ws = {};
        int r = wants_init(&ws, 2 * n);
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = wants_add(a, &ws, repos[i], concat(repos[i], ".db"), false, i);
                if (r >= 0)
                        r = wants_add(a, &ws, repos[i], concat(repos[i], ".db.sig"), true, i);
        }
        if (r < 0)
                return r;
        mkm_emit(b->ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "synchronizing package databases" });
        struct pipeline_want *w = ws.w;
        r = pipeline_fetch_batch(b->ctx, b->cache, w, 2 * n, reterr);
        if (r < 0)
                return r;
        a->dbs = calloc(n, sizeof *a->dbs);
        if (!a->dbs)
                return -ENOMEM;
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_free_ char *data = NULL, *sig = NULL;
                size_t len = 0, siglen = 0;
                r = cache_read(a->b->cache, w[2 * i].digest, REPO_ALPM_MAX_TOTAL, &data, &len);
                if (r < 0) {
                        mkm_err_set(reterr, r, "%s: cannot read from the cache: %s", w[2 * i].label, mkm_strerror(r));
                        break;
                }
                /* A db signature that exists is checked before the db is parsed (as pacman does). */
                if (w[2 * i + 1].present) {
                        r = cache_read(a->b->cache, w[2 * i + 1].digest, VERIFY_MAX_SIG, &sig, &siglen);
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
        return r;
}

/* Resolve the recipe against the dbs and describe the result as a lock. */
static int plan_from_repos(struct backend *a, struct mkm_err *reterr) {
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
        _cleanup_(wants_done) struct wants ws = {};
        if (wants_init(&ws, plan->n) < 0)
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
                        /* mkmachine plan leaves the cache as it was, but for the dbs. */
                        r = b->metadata_only ? 0 : pipeline_store_blob(b->cache, label, sig, siglen, lp.sig_sha256, reterr);
                        if (r < 0)
                                return r;
                } else {
                        r = wants_add(a, &ws, p->repo, concat(p->filename, ".sig"), true, i);
                        if (r < 0)
                                return r;
                }
                r = lock_add(l, &lp);
                if (r < 0)
                        return r;
        }
        /* mkmachine plan shows the set, it does not check it: no .sig is fetched. */
        if (ws.n > 0 && !b->metadata_only) {
                r = pipeline_fetch_batch(b->ctx, b->cache, ws.w, ws.n, reterr);
                if (r < 0)
                        return r;
                /* lock_add() kept the plan's order: package i is l->pkgs[i]. */
                for (size_t k = 0; k < ws.n; k++)
                        if (ws.w[k].present)
                                memcpy(l->pkgs[ws.pkg[k]].sig_sha256, ws.w[k].digest, HASH_SHA256_HEX);
        }
        b->lock_out = TAKE_PTR(l);
        return 0;
}


/* Where every package of the lock and its signature come from. */
static int make_sources(struct backend *a, struct mkm_err *reterr) {
        struct lock *l = a->b->lock_out;
        size_t n1 = l->n ? l->n : 1;
        /* Refuse an unsigned package before downloading anything. */
        for (size_t i = 0; i < l->n; i++)
                if (!l->pkgs[i].sig_sha256[0])
                        return mkm_err_set(reterr, -MKM_E_SIG_MISSING,
                                           "%s: no signature (neither %%PGPSIG%% in %s.db nor %s.sig on the mirror); "
                                           "package signatures are required",
                                           l->pkgs[i].name, l->pkgs[i].repo, l->pkgs[i].filename);
        a->items = calloc(n1, sizeof *a->items);
        a->urls = calloc(2 * n1, sizeof *a->urls);
        a->sig_labels = calloc(n1, sizeof *a->sig_labels);
        if (!a->items || !a->urls || !a->sig_labels)
                return -ENOMEM;
        a->nitems = l->n;
        for (size_t i = 0; i < l->n; i++) {
                struct lock_pkg *p = &l->pkgs[i];
                a->sig_labels[i] = concat(p->filename, ".sig");
                if (!a->sig_labels[i])
                        return -ENOMEM;
                int r = urls_for(a, p->repo, p->filename, &a->urls[2 * i]);
                if (r >= 0)
                        r = urls_for(a, p->repo, a->sig_labels[i], &a->urls[2 * i + 1]);
                if (r < 0)
                        return r;
                a->items[i] = (struct pipeline_item){ .label = p->filename, .name = p->name, .version = p->version,
                                                      .urls = a->urls[2 * i], .sha256 = p->sha256, .size = p->size,
                                                      .sig_label = a->sig_labels[i], .sig_urls = a->urls[2 * i + 1],
                                                      .sig_sha256 = p->sig_sha256 };
        }
        return 0;
}

static int write_mirrorlist(struct backend *a, int rootfd, struct mkm_err *reterr) {
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
                return mkm_err_set(reterr, dfd, "cannot create /etc/pacman.d: %s", mkm_strerror(dfd));
        int r = fs_write_file_at(dfd, "mirrorlist", text, len, 0644);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot write /etc/pacman.d/mirrorlist: %s", mkm_strerror(r));
        return 0;
}

static int arch_inputs(const struct recipe *r, char **ret) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        fputs("repositories", f);
        for (char **l = r->repositories; l && *l; l++)
                fprintf(f, " %s", *l);
        fputc('\n', f);
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}

static int arch_new(struct build *b, struct backend **ret, struct mkm_err *reterr) {
        struct backend *a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        a->b = b;
        a->arch = b->recipe->architecture;
        if (!a->arch || !*a->arch)
                a->arch = uname(&a->uts) == 0 ? a->uts.machine : "x86_64";
        int r = find_mirrors(a, reterr);
        if (r >= 0)
                r = open_keyring(a, reterr);
        if (r < 0) {
                arch_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

/* The lock's set (re-checked against the recipe), else a resolution against the sync dbs. */
static int arch_plan(struct backend *a, struct mkm_err *reterr) {
        struct build *b = a->b;
        if (!b->lock_in)
                return plan_from_repos(a, reterr);
        /* A lock comes with a shared recipe: its repo names end up in mirror URLs. */
        for (size_t i = 0; i < b->lock_in->n; i++)
                if (!strv_contains(b->recipe->repositories, b->lock_in->pkgs[i].repo))
                        return mkm_err_set(reterr, -MKM_E_LOCK,
                                           "%s: package '%s' comes from repository '%s', which is not in Repositories=",
                                           b->lock_path, b->lock_in->pkgs[i].name, b->lock_in->pkgs[i].repo);
        mkm_debug(b->ctx, "installing the set pinned by %s", b->lock_path);
        b->lock_out = b->lock_in;
        b->lock_in = NULL;
        strv_free(b->lock_out->sources);
        b->lock_out->sources = strv_copy(a->sources);
        return b->lock_out->sources ? 0 : -ENOMEM;
}

/* Every package and its detached signature, checked against the keyring (even by `mkmachine
 * lock`: the lock names the keys that signed). */
static int arch_sources(struct backend *a, const struct pipeline_item **ret_items, enum pipeline_trust *ret_trust,
                        struct verify_keyring **ret_keyring, struct mkm_err *reterr) {
        int r = make_sources(a, reterr);
        if (r < 0)
                return r;
        *ret_items = a->items;
        *ret_trust = PIPELINE_TRUST_DETACHED_SIG;
        *ret_keyring = a->keyring;
        return 0;
}

/* Record the keys that signed in the lock. */
static int arch_lock_done(struct backend *a, struct pipeline *p, struct mkm_err *reterr) {
        struct lock *l = a->b->lock_out;
        for (size_t i = 0; i < l->n; i++) {
                char fpr[VERIFY_FPR_MAX];
                int r = pipeline_wait(p, i, fpr, reterr);
                if (r >= 0)
                        r = note_key(a, fpr);
                if (r < 0)
                        return r;
        }
        strv_free(l->keys);
        l->keys = strv_copy(a->keys_used);
        return l->keys ? 0 : -ENOMEM;
}

/* The local db, and the PreTransaction hooks: they see the tree as it was (a fresh tree has
 * none) and, since nothing is extracted yet, only the package names. */
static int arch_install_begin(struct backend *a, struct mkm_err *reterr) {
        struct build *b = a->b;
        struct lock *l = b->lock_out;
        size_t n1 = l->n ? l->n : 1;
        a->owners = extract_owners_new();
        a->results = calloc(n1, sizeof *a->results);
        a->infos = calloc(n1, sizeof *a->infos);
        a->installs = calloc(n1, sizeof *a->installs);
        a->install_lens = calloc(n1, sizeof *a->install_lens);
        a->hpkgs = calloc(n1, sizeof *a->hpkgs);
        if (!a->owners || !a->results || !a->infos || !a->installs || !a->install_lens || !a->hpkgs)
                return -ENOMEM;
        a->sbx = (struct sandbox_opts){ .hostname = b->deploy->name, .source_date_epoch = b->source_date_epoch };
        int r = db_alpm_init(b->deploy->root_fd, reterr);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l->n; i++)
                a->hpkgs[i] = (struct alpm_hook_pkg){ .name = l->pkgs[i].name, .version = l->pkgs[i].version };
        return alpm_hooks_run(b->ctx, b->deploy->staging, b->deploy->root_fd, ALPM_HOOK_PRE_TRANSACTION, a->hpkgs, l->n,
                              NULL, 0, &a->sbx, reterr);
}

/* One package, as pacman: pre_install before its files, the files, its local db entry,
 * post_install. fd's signature was checked (by signer). */
static int arch_install_one(struct backend *a, size_t i, int fd, const char *signer, struct mkm_err *reterr) {
        struct build *b = a->b;
        struct lock_pkg *p = &b->lock_out->pkgs[i];
        int rootfd = b->deploy->root_fd;
        const char *root = b->deploy->staging;
        assert(i == a->ninstalled && i < b->lock_out->n);
        int r = note_key(a, signer);
        if (r < 0)
                return r;
        /* pre_install runs before the package's files exist, as in pacman. */
        r = alpm_script_read_install(fd, &a->installs[i], &a->install_lens[i], reterr);
        if (r < 0)
                return mkm_err_prefix(reterr, r, "%s (%s)", p->name, p->filename);
        r = alpm_script_run(b->ctx, root, rootfd, p->name, a->installs[i], a->install_lens[i], "pre_install", p->version,
                            NULL, &a->sbx, reterr);
        if (r < 0)
                return r;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return negative_errno();
        struct extract_opts o = { .label = p->name, .max_bytes = p->isize, .meta_names = db_alpm_meta_names,
                                  .skip_dot_toplevel = true, .owners = a->owners };
        struct extract_result *x = &a->results[i];
        struct pkginfo *info = &a->infos[i];
        r = extract_archive_fd(b->ctx, rootfd, fd, &o, x, reterr);
        if (r < 0)
                return r;
        const struct extract_member *pkginfo = extract_result_meta(x, DB_ALPM_PKGINFO);
        if (!pkginfo) {
                extract_result_done(x);
                return mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s (%s): no .PKGINFO: not a pacman package", p->name,
                                   p->filename);
        }
        r = pkginfo_parse(pkginfo->data, pkginfo->len, p->name, info, reterr);
        if (r < 0) {
                extract_result_done(x);
                return r;
        }
        a->ninstalled++;        /* results[i] and infos[i] are arch_free()'s now */
        /* The file must be the package the db promised, not another one served in its place. */
        if (strcmp(info->name, p->name) != 0 || strcmp(info->version, p->version) != 0)
                return mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH, "%s: %s contains %s-%s, not %s-%s", p->repo,
                                   p->filename, info->name, info->version, p->name, p->version);
        r = db_alpm_write_pkg(b->ctx, rootfd, info, x, p->explicit, b->source_date_epoch, DB_ALPM_VALIDATION_PGP, reterr);
        if (r < 0)
                return r;
        const struct extract_member *install = extract_result_meta(x, DB_ALPM_INSTALL);
        if (install && !a->installs[i])
                mkm_warn(b->ctx, "%s: its .INSTALL comes after its files in the archive: pre_install was skipped", p->name);
        return alpm_script_run(b->ctx, root, rootfd, p->name, install ? install->data : NULL, install ? install->len : 0,
                               "post_install", p->version, NULL, &a->sbx, reterr);
}

/* After the last package: the machine's mirrorlist, the PostTransaction hooks, ldconfig, and
 * the signers in the lock. */
static int arch_install_end(struct backend *a, struct mkm_err *reterr) {
        struct build *b = a->b;
        struct lock *l = b->lock_out;
        int rootfd = b->deploy->root_fd;
        const char *root = b->deploy->staging;
        assert(a->ninstalled == l->n);
        int r = write_mirrorlist(a, rootfd, reterr);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l->n; i++)
                a->hpkgs[i] = (struct alpm_hook_pkg){ .name = a->infos[i].name, .version = a->infos[i].version,
                                                      .provides = a->infos[i].provides, .files = a->results[i].files };
        r = alpm_hooks_run(b->ctx, root, rootfd, ALPM_HOOK_POST_TRANSACTION, a->hpkgs, l->n, a->hpkgs, l->n, &a->sbx,
                           reterr);
        if (r < 0)
                return r;
        r = alpm_run_ldconfig(b->ctx, root, rootfd, &a->sbx, reterr);
        if (r < 0)
                return r;
        strv_free(l->keys);
        l->keys = strv_copy(a->keys_used);
        return l->keys ? 0 : -ENOMEM;
}

const struct backend_ops backend_arch = {
        .distribution = "arch",
        .lock_needs_packages = true,
        .vercmp = alpm_vercmp,
        .inputs = arch_inputs,
        .new = arch_new,
        .plan = arch_plan,
        .sources = arch_sources,
        .lock_done = arch_lock_done,
        .install_begin = arch_install_begin,
        .install_one = arch_install_one,
        .install_end = arch_install_end,
        .free = arch_free,
};
