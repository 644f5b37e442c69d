/* SPDX-License-Identifier: MIT */
/* Distribution=debian: mmdebstrap's result without apt or dpkg on the host.
 *
 * Sources: Mirror= (for every suite, in failover order), else the host's apt sources for each
 * suite (sources.h). Trust: a digest chain from the archive key. InRelease is checked with gpgme
 * against keys/debian or Keyring= (Release + Release.gpg when a mirror has no InRelease), its
 * Valid-Until honoured, its Suite or Codename must be the suite asked for; every Packages index
 * is checked against the Release's SHA256 and size before it is parsed; every .deb against the
 * index's SHA256 and Size before any of it is read (pipeline.h, PIPELINE_TRUST_DIGEST).
 *
 * Install, with dpkg's semantics but dpkg doing only what only dpkg can do:
 *   begin   merged /usr from the start (bin, sbin, lib[, lib64] -> usr/...), dpkg's admin dir,
 *           a policy-rc.d that keeps services from starting
 *   one     data.tar is extracted by us (extract.h), as dpkg --unpack would place it: conffiles
 *           as PATH.dpkg-new; the control members are kept
 *   end     dpkg's database as `dpkg --unpack` leaves it (status "install ok unpacked",
 *           info/PKG.{list,md5sums,conffiles,preinst,...}, trigger interests), each preinst run
 *           with "install" (base-passwd's first: it makes /etc/passwd), then the machine's own
 *           `dpkg --configure -a` runs every postinst in dependency order, moves the conffiles
 *           into place and processes triggers, all in the sandbox. apt's sources and its
 *           auto-installed marks are written; policy-rc.d is removed.
 *
 * Activated triggers are not recorded: dpkg drops an activation for a package that is not yet
 * configured, and every package here is configured after everything is unpacked. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "control.h"
#include "deb.h"
#include "index.h"
#include "resolve.h"
#include "sources.h"
#include "version.h"
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
#include "../verify.h"
#include "../util/chase.h"
#include "../util/cleanup.h"
#include "../util/err.h"
#include "../util/fs.h"
#include "../util/hash.h"
#include "../util/strv.h"

#define DPKG_ADMIN "var/lib/dpkg"
#define RELEASE_MAX ((size_t)32 * 1024 * 1024)

struct suite_meta {
        char *name;                     /* borrowed from the recipe */
        char **mirrors;                 /* base URIs, failover order */
        struct deb_release *release;
        char digest[HASH_SHA256_HEX];   /* of the InRelease (or Release) as downloaded */
        const char *file;               /* "InRelease" or "Release" */
};

struct pkg_state {
        struct deb_control control;
        char **files;                   /* from extract: sorted, dirs end in '/' */
        char **conffiles;               /* absolute paths */
        char *name, *version, *arch;    /* from the control file */
        bool ma_same;
};

struct backend {
        struct build *b;
        struct mkm_ctx *ctx;
        const char *arch;
        struct suite_meta *suites;
        size_t n_suites;
        char **index_repo;              /* per index: "suite/component" */
        size_t *index_suite;            /* per index: its suite */
        struct deb_index **indexes;
        size_t n_indexes;
        struct verify_keyring *keyring;
        bool default_keyring;
        char *keyring_bytes;            /* Keyring=: the file as verified, copied into the machine */
        size_t keyring_len;
        bool keyring_armored;
        char **sources;                 /* for the lock header */

        const struct deb_pkg **pinned;  /* per lock package: its entry in the signed indexes */

        struct pipeline_item *items;
        char ***item_urls;
        size_t n_items;

        struct extract_owners *owners;
        struct pkg_state *ps;
};

static void deb_free(struct backend *d) {
        if (!d)
                return;
        for (size_t i = 0; i < d->n_suites; i++) {
                strv_free(d->suites[i].mirrors);
                deb_release_free(d->suites[i].release);
        }
        free(d->suites);
        for (size_t i = 0; i < d->n_indexes; i++)
                deb_index_free(d->indexes[i]);
        free(d->indexes);
        strv_free(d->index_repo);
        free(d->index_suite);
        verify_keyring_free(d->keyring);
        free(d->keyring_bytes);
        strv_free(d->sources);
        for (size_t i = 0; i < d->n_items; i++)
                strv_free(d->item_urls[i]);
        free(d->item_urls);
        free(d->items);
        free(d->pinned);
        if (d->ps)
                for (size_t i = 0; i < d->n_items; i++) {
                        deb_control_done(&d->ps[i].control);
                        strv_free(d->ps[i].files);
                        strv_free(d->ps[i].conffiles);
                        free(d->ps[i].name);
                        free(d->ps[i].version);
                        free(d->ps[i].arch);
                }
        free(d->ps);
        extract_owners_free(d->owners);
        free(d);
}

/* dpkg's architecture name for this machine, when the recipe gives none. */
static const char *native_arch(void) {
        struct utsname u;
        if (uname(&u) != 0)
                return "amd64";
        static const struct {
                const char *machine, *dpkg;
        } map[] = {
                { "x86_64", "amd64" }, { "aarch64", "arm64" }, { "i686", "i386" }, { "i386", "i386" },
                { "armv7l", "armhf" }, { "ppc64le", "ppc64el" }, { "s390x", "s390x" }, { "riscv64", "riscv64" },
        };
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (strcmp(u.machine, map[i].machine) == 0)
                        return map[i].dpkg;
        return "amd64";
}

static int deb_new(struct build *b, struct backend **ret, struct mkm_err *reterr) {
        struct backend *d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->b = b;
        d->ctx = b->ctx;
        d->arch = b->recipe->architecture && *b->recipe->architecture ? b->recipe->architecture : native_arch();
        *ret = d;
        return 0;
}

/* ---- sources and trust ----------------------------------------------------------------------- */

static int find_mirrors(struct backend *d, struct mkm_err *reterr) {
        const struct recipe *r = d->b->recipe;
        d->n_suites = strv_length(r->suites);
        if (d->n_suites == 0)
                return mkm_err_set(reterr, -MKM_E_RECIPE, "%s: [Bootstrap] Suite=: empty", r->path ? r->path : "recipe");
        d->suites = calloc(d->n_suites, sizeof *d->suites);
        if (!d->suites)
                return -ENOMEM;
        for (size_t s = 0; s < d->n_suites; s++) {
                struct suite_meta *m = &d->suites[s];
                m->name = r->suites[s];
                int q;
                if (r->mirrors && *r->mirrors) {
                        for (char **u = r->mirrors; *u; u++) {
                                size_t l = strlen(*u);
                                while (l > 0 && (*u)[l - 1] == '/')
                                        l--;
                                char *c = strndup(*u, l);
                                if (!c || (q = strv_consume(&m->mirrors, c)) < 0) {
                                        free(c);
                                        return -ENOMEM;
                                }
                        }
                } else {
                        q = deb_host_mirrors(d->ctx->host_root, m->name, &m->mirrors, reterr);
                        if (q < 0)
                                return q;
                }
                for (char **u = m->mirrors; *u; u++) {
                        char *s2 = NULL;
                        if (asprintf(&s2, "%s %s", m->name, *u) < 0 || strv_consume(&d->sources, s2) < 0) {
                                free(s2);
                                return -ENOMEM;
                        }
                }
        }
        return 0;
}

static int open_keyring(struct backend *d, struct mkm_err *reterr) {
        const struct recipe *r = d->b->recipe;
        _cleanup_free_ char *dflt = fs_path_join(d->ctx->keys_dir, "debian");
        if (!dflt)
                return -ENOMEM;
        d->default_keyring = !r->keyring;
        const char *path = r->keyring ? r->keyring : dflt;
        int q;
        if (r->keyring) {
                /* apt's Signed-By in the machine takes this one file: opened beside the recipe and
                 * read once, and the keyring made from those bytes, so that what the machine
                 * trusts is exactly what the build verified with. */
                struct stat st;
                _cleanup_close_ int fd = recipe_open_keyring_for_build(r, true, &st, reterr);
                if (fd < 0)
                        return fd;
                q = fs_read_fd(fd, VERIFY_MAX_KEYRING, &d->keyring_bytes, &d->keyring_len);
                if (q == -EFBIG)
                        return mkm_err_set(reterr, q, "keyring %s: larger than %zu bytes", r->keyring,
                                           (size_t)VERIFY_MAX_KEYRING);
                if (q < 0)
                        return mkm_err_set(reterr, q, "cannot read the keyring %s: %s", r->keyring, mkm_strerror(q));
                d->keyring_armored = d->keyring_len >= 10 && memmem(d->keyring_bytes, d->keyring_len,
                                                                     "-----BEGIN PGP PUBLIC KEY BLOCK-----", 36);
                _cleanup_close_ int mfd = memfd_create("keyring", MFD_CLOEXEC);
                if (mfd < 0 || fs_write_all(mfd, d->keyring_bytes, d->keyring_len) < 0 || lseek(mfd, 0, SEEK_SET) < 0)
                        return mkm_err_set(reterr, negative_errno(), "cannot hold the keyring %s: %m", r->keyring);
                q = verify_keyring_new_cached_fd(d->ctx, mfd, path, NULL, d->ctx->cache_dir, &d->keyring, reterr);
        } else
                q = verify_keyring_new_cached(d->ctx, path, d->ctx->cache_dir, &d->keyring, reterr);
        if (q < 0)
                return mkm_err_prefix(reterr, q, "keyring %s", path);
        mkm_debug(d->ctx, "keyring %s: %u keys", path, verify_keyring_count(d->keyring));
        return 0;
}

/* URLs of path (relative to the mirror's root) across suite s's mirrors. */
static int urls_for(const struct suite_meta *m, const char *path, char ***ret) {
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (char **u = m->mirrors; *u; u++) {
                char *x = NULL;
                if (asprintf(&x, "%s/%s", *u, path) < 0)
                        return -ENOMEM;
                int q = strv_consume(&l, x);
                if (q < 0) {
                        free(x);
                        return q;
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int check_release(struct backend *d, struct suite_meta *m, const char *label, struct mkm_err *reterr) {
        struct deb_release *rel = m->release;
        bool named = (rel->suite && strcmp(rel->suite, m->name) == 0) ||
                     (rel->codename && strcmp(rel->codename, m->name) == 0);
        if (!named)
                return mkm_err_set(reterr, -MKM_E_SIG_BAD,
                                   "%s: signed for suite '%s' (codename '%s'), not for '%s': refusing a Release of "
                                   "another suite",
                                   label, rel->suite ? rel->suite : "", rel->codename ? rel->codename : "", m->name);
        int64_t now = (int64_t)time(NULL);
        if (rel->valid_until >= 0 && rel->valid_until < now) {
                char when[64] = "";
                time_t t = (time_t)rel->valid_until;
                struct tm tm;
                if (gmtime_r(&t, &tm))
                        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
                return mkm_err_set(reterr, -MKM_E_SIG_EXPIRED,
                                   "%s: expired: Valid-Until is %s; the mirror serves stale metadata (a replay?)", label,
                                   when);
        }
        if (rel->date > now + 24 * 3600)
                return mkm_err_set(reterr, -MKM_E_SIG_BAD, "%s: its Date lies in the future (check the clock)", label);
        if (rel->architectures && !strv_contains(rel->architectures, d->arch))
                return mkm_err_set(reterr, -MKM_E_RECIPE, "%s: the suite has no architecture '%s' (it has: %s...)", label,
                                   d->arch, rel->architectures[0] ? rel->architectures[0] : "none");
        return 0;
}

/* Download dists/SUITE/NAME for the suites marked in want[] (one batch). */
static int fetch_release_files(struct backend *d, const char *name, const bool *want, struct pipeline_want *w,
                               char ***urls, char **labels, struct mkm_err *reterr) {
        size_t m = 0;
        for (size_t s = 0; s < d->n_suites; s++) {
                if (!want[s])
                        continue;
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "dists/%s/%s", d->suites[s].name, name) < 0)
                        return -ENOMEM;
                if (asprintf(&labels[s], "%s/%s", d->suites[s].name, name) < 0) {
                        labels[s] = NULL;
                        return -ENOMEM;
                }
                int q = urls_for(&d->suites[s], path, &urls[s]);
                if (q < 0)
                        return q;
                w[m++] = (struct pipeline_want){ .urls = urls[s], .label = labels[s], .optional = true };
        }
        if (m == 0)
                return 0;
        int q = pipeline_fetch_batch(d->ctx, d->b->cache, w, m, reterr);
        /* back to one slot per suite */
        for (size_t s = d->n_suites, k = m; s-- > 0;)
                if (want[s]) {
                        struct pipeline_want x = w[--k];
                        w[s] = x;
                } else
                        w[s] = (struct pipeline_want){};
        return q;
}

/* Fetch, verify and parse each suite's InRelease; Release + Release.gpg where a mirror has none. */
static int load_releases(struct backend *d, struct mkm_err *reterr) {
        size_t n = d->n_suites;
        struct pipeline_want *w[3] = {};
        char ***urls[3] = {}, **labels[3] = {};
        _cleanup_free_ bool *want = calloc(n, sizeof *want);
        int q = want ? 0 : -ENOMEM;
        for (size_t k = 0; k < 3 && q >= 0; k++) {
                w[k] = calloc(n, sizeof *w[k]);
                urls[k] = calloc(n, sizeof *urls[k]);
                labels[k] = calloc(n + 1, sizeof *labels[k]);
                if (!w[k] || !urls[k] || !labels[k])
                        q = -ENOMEM;
        }
        if (q >= 0) {
                mkm_emit(d->ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "fetching Release files" });
                for (size_t s = 0; s < n; s++)
                        want[s] = true;
                q = fetch_release_files(d, "InRelease", want, w[0], urls[0], labels[0], reterr);
        }
        if (q >= 0) {
                bool any = false;
                for (size_t s = 0; s < n; s++)
                        any |= want[s] = !w[0][s].present;
                if (any)
                        q = fetch_release_files(d, "Release", want, w[1], urls[1], labels[1], reterr);
                if (any && q >= 0)
                        q = fetch_release_files(d, "Release.gpg", want, w[2], urls[2], labels[2], reterr);
        }
        for (size_t s = 0; s < n && q >= 0; s++) {
                struct suite_meta *m = &d->suites[s];
                struct pipeline_want *in = &w[0][s], *rl = &w[1][s], *gpg = &w[2][s];
                _cleanup_free_ char *data = NULL, *sig = NULL, *text = NULL;
                size_t len = 0, siglen = 0, tlen = 0;
                struct verify_result vr;
                const char *label;
                if (in->present) {
                        label = in->label;
                        q = cache_read(d->b->cache, in->digest, RELEASE_MAX, &data, &len);
                        if (q >= 0)
                                q = verify_clearsigned(d->keyring, data, len, &text, &tlen, &vr, reterr);
                        if (q < 0) {
                                mkm_err_prefix(reterr, q, "%s", label);
                                break;
                        }
                        memcpy(m->digest, in->digest, HASH_SHA256_HEX);
                        m->file = "InRelease";
                } else if (rl->present) {
                        label = rl->label;
                        if (!gpg->present) {
                                q = mkm_err_set(reterr, -MKM_E_SIG_MISSING,
                                                "%s: no InRelease and no Release.gpg on any mirror: an unsigned Release "
                                                "is not trusted",
                                                label);
                                break;
                        }
                        q = cache_read(d->b->cache, rl->digest, RELEASE_MAX, &data, &len);
                        if (q >= 0)
                                q = cache_read(d->b->cache, gpg->digest, VERIFY_MAX_SIG, &sig, &siglen);
                        if (q >= 0)
                                q = verify_detached(d->keyring, data, len, sig, siglen, &vr, reterr);
                        if (q < 0) {
                                mkm_err_prefix(reterr, q, "%s", label);
                                break;
                        }
                        text = TAKE_PTR(data);
                        tlen = len;
                        memcpy(m->digest, rl->digest, HASH_SHA256_HEX);
                        m->file = "Release";
                } else {
                        q = mkm_err_set(reterr, -MKM_E_FETCH, "dists/%s/InRelease (or Release): not found on %s%s",
                                        m->name, m->mirrors[0], m->mirrors[1] ? " or the other mirrors" : "");
                        break;
                }
                mkm_debug(d->ctx, "%s: signed by %s (%s)", label, vr.fingerprint, vr.uid);
                q = deb_release_parse(text, tlen, label, &m->release, reterr);
                if (q < 0)
                        break;
                q = check_release(d, m, label, reterr);
        }
        for (size_t k = 0; k < 3; k++) {
                for (size_t s = 0; s < n; s++) {
                        if (urls[k])
                                strv_free(urls[k][s]);
                        if (labels[k])
                                free(labels[k][s]);
                }
                free(urls[k]);
                free(labels[k]);
                free(w[k]);
        }
        return q;
}

/* Decompress a cached index (xz, gz or plain) into memory. */
/* Decompress a cached index (xz, gz or plain) and parse it as it comes, a few MiB at a time: the
 * whole text (50 MB for bookworm main) is never in memory. expected: the uncompressed size the
 * Release lists for the plain index (0 = not listed); text of another length is refused. */
#define INDEX_CHUNK ((size_t)4 << 20)
static int read_index(struct backend *d, const char *digest, const char *label, uint64_t expected, uint32_t number,
                      struct deb_index **ret, struct mkm_err *reterr) {
        _cleanup_free_ char *path = NULL;
        int q = cache_lookup(d->b->cache, digest, &path);
        if (q < 0)
                return mkm_err_set(reterr, q, "%s: not in the cache: %s", label, mkm_strerror(q));
        if (expected > DEB_INDEX_MAX_TEXT)
                return mkm_err_set(reterr, -MKM_E_TOO_BIG, "%s: larger than %zu bytes uncompressed", label,
                                   DEB_INDEX_MAX_TEXT);
        _cleanup_(deb_index_stream_freep) struct deb_index_stream *st = NULL;
        q = deb_index_stream_new(label, number, (size_t)expected, &st, reterr);
        if (q < 0)
                return q;
        struct archive *a = archive_read_new();
        if (!a)
                return -ENOMEM;
        (void)archive_read_support_filter_xz(a);
        (void)archive_read_support_filter_gzip(a);
        (void)archive_read_support_format_raw(a);
        size_t cap = INDEX_CHUNK, have = 0;
        uint64_t total = 0;
        char *buf = malloc(cap);
        struct archive_entry *e;
        if (!buf) {
                q = -ENOMEM;
                goto out;
        }
        if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK || archive_read_next_header(a, &e) != ARCHIVE_OK) {
                q = mkm_err_set(reterr, -MKM_E_BADDATA, "%s: cannot decompress: %s", label, archive_error_string(a));
                goto out;
        }
        for (;;) {
                if (have == cap) {
                        /* one paragraph larger than the buffer: grow (the parser caps it) */
                        if (cap >= DEB_INDEX_MAX_TEXT) {
                                q = mkm_err_set(reterr, -MKM_E_TOO_BIG, "%s: a paragraph larger than %zu bytes", label, cap);
                                goto out;
                        }
                        char *nb = realloc(buf, cap * 2);
                        if (!nb) {
                                q = -ENOMEM;
                                goto out;
                        }
                        buf = nb;
                        cap *= 2;
                }
                la_ssize_t k = archive_read_data(a, buf + have, cap - have);
                if (k < 0) {
                        q = mkm_err_set(reterr, -MKM_E_BADDATA, "%s: cannot decompress: %s", label, archive_error_string(a));
                        goto out;
                }
                total += (uint64_t)k;
                if ((expected && total > expected) || total > DEB_INDEX_MAX_TEXT) {
                        q = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH,
                                        "%s: decompresses to more than the %" PRIu64 " bytes %s", label,
                                        expected ? expected : (uint64_t)DEB_INDEX_MAX_TEXT,
                                        expected ? "its Release lists" : "allowed");
                        goto out;
                }
                have += (size_t)k;
                /* hand over whole paragraphs: up to the last blank line */
                size_t cut = 0;
                if (k == 0)
                        cut = have;
                else
                        for (size_t j = have; j >= 2; j--)
                                if (buf[j - 1] == '\n' && buf[j - 2] == '\n') {
                                        cut = j;
                                        break;
                                }
                if (cut > 0) {
                        q = deb_index_stream_feed(st, buf, cut, reterr);
                        if (q < 0)
                                goto out;
                        memmove(buf, buf + cut, have - cut);
                        have -= cut;
                }
                if (k == 0)
                        break;
        }
        if (expected && total != expected) {
                q = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH,
                                "%s: decompresses to %" PRIu64 " bytes, its Release lists %" PRIu64, label, total, expected);
                goto out;
        }
        q = deb_index_stream_finish(st, ret);
out:
        free(buf);
        archive_read_free(a);
        return q;
}

/* Fetch the Packages index of every suite x component, checked against its Release, and parse it. */
static int load_indexes(struct backend *d, struct mkm_err *reterr) {
        const struct recipe *r = d->b->recipe;
        size_t nc = strv_length(r->components), n = d->n_suites * nc;
        d->indexes = calloc(n ? n : 1, sizeof *d->indexes);
        d->index_suite = calloc(n ? n : 1, sizeof *d->index_suite);
        _cleanup_free_ struct pipeline_want *w = calloc(n ? n : 1, sizeof *w);
        _cleanup_free_ uint64_t *plain_size = calloc(n ? n : 1, sizeof *plain_size);
        char ***urls = calloc(n + 1, sizeof *urls);
        _cleanup_strv_free_ char **labels = NULL;
        int q = 0;
        if (!d->indexes || !d->index_suite || !w || !urls || !plain_size) {
                free(urls);
                return -ENOMEM;
        }
        for (size_t s = 0; s < d->n_suites && q >= 0; s++)
                for (size_t c = 0; c < nc && q >= 0; c++) {
                        size_t i = s * nc + c;
                        const struct suite_meta *m = &d->suites[s];
                        const struct deb_release_file *f = NULL;
                        static const char *const exts[] = { ".xz", ".gz", "" };
                        char path[512];
                        for (size_t k = 0; k < ELEMENTSOF(exts) && !f; k++) {
                                snprintf(path, sizeof path, "%s/binary-%s/Packages%s", r->components[c], d->arch, exts[k]);
                                f = deb_release_find(m->release, path);
                        }
                        if (!f) {
                                q = mkm_err_set(reterr, -MKM_E_RECIPE,
                                                "dists/%s/%s lists no %s/binary-%s/Packages index: is '%s' a "
                                                "component of the suite?",
                                                m->name, m->file, r->components[c], d->arch, r->components[c]);
                                break;
                        }
                        _cleanup_strv_free_ char **u = NULL;
                        _cleanup_free_ char *plain = NULL, *byhash = NULL;
                        char *label = NULL, *repo = NULL;
                        if (asprintf(&plain, "dists/%s/%s", m->name, f->path) < 0 ||
                            asprintf(&label, "%s/%s", m->name, f->path) < 0) {
                                q = -ENOMEM;
                                break;
                        }
                        if ((q = strv_consume(&labels, label)) < 0) {
                                free(label);
                                break;
                        }
                        if (asprintf(&repo, "%s/%s", m->name, r->components[c]) < 0 ||
                            (q = strv_consume(&d->index_repo, repo)) < 0) {
                                free(repo);
                                q = -ENOMEM;
                                break;
                        }
                        /* by-hash first when the Release offers it: it cannot change under us while
                         * the mirror updates; the plain name is the fallback. */
                        if (m->release->acquire_by_hash) {
                                _cleanup_free_ char *dir = fs_path_dirname(f->path);
                                if (!dir || asprintf(&byhash, "dists/%s/%s/by-hash/SHA256/%s", m->name, dir, f->sha256) < 0) {
                                        q = -ENOMEM;
                                        break;
                                }
                                _cleanup_strv_free_ char **u1 = NULL;
                                if ((q = urls_for(m, byhash, &u1)) < 0 || (q = strv_extend(&u, u1)) < 0)
                                        break;
                        }
                        _cleanup_strv_free_ char **u2 = NULL;
                        if ((q = urls_for(m, plain, &u2)) < 0 || (q = strv_extend(&u, u2)) < 0)
                                break;
                        urls[i] = TAKE_PTR(u);
                        d->index_suite[i] = s;
                        snprintf(path, sizeof path, "%s/binary-%s/Packages", r->components[c], d->arch);
                        const struct deb_release_file *pf = deb_release_find(m->release, path);
                        plain_size[i] = pf ? pf->size : 0;
                        w[i] = (struct pipeline_want){ .urls = urls[i], .label = label, .sha256 = f->sha256,
                                                       .size = f->size };
                }
        if (q >= 0) {
                mkm_emit(d->ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "fetching package indexes" });
                q = pipeline_fetch_batch(d->ctx, d->b->cache, w, n, reterr);
        }
        for (size_t i = 0; i < n && q >= 0; i++) {
                q = read_index(d, w[i].digest, w[i].label, plain_size[i], (uint32_t)i, &d->indexes[i], reterr);
                if (q >= 0)
                        d->n_indexes++;
        }
        for (size_t i = 0; i < n; i++)
                strv_free(urls[i]);
        free(urls);
        return q;
}

/* ---- plan ------------------------------------------------------------------------------------ */

static int64_t newest_release(const struct backend *d) {
        int64_t max = 0;
        for (size_t s = 0; s < d->n_suites; s++)
                if (d->suites[s].release && d->suites[s].release->date > max)
                        max = d->suites[s].release->date;
        return max;
}

static const struct deb_pkg *find_pinned(const struct backend *d, const struct lock_pkg *p, size_t *ret_index) {
        for (size_t i = 0; i < d->n_indexes; i++) {
                if (strcmp(d->index_repo[i], p->repo) != 0)
                        continue;
                const struct deb_index *x = d->indexes[i];
                for (size_t k = 0; k < x->n; k++) {
                        const struct deb_pkg *q = &x->pkgs[k];
                        if (strcmp(q->name, p->name) == 0 && strcmp(q->version, p->version) == 0 &&
                            strcmp(q->sha256, p->sha256) == 0 && strcmp(q->filename, p->filename) == 0 &&
                            q->size == p->size) {
                                *ret_index = i;
                                return q;
                        }
                }
        }
        return NULL;
}

static int plan_from_lock(struct backend *d, struct mkm_err *reterr) {
        struct build *b = d->b;
        struct lock *l = b->lock_in;
        /* A lock comes with a shared recipe: it is trusted only as far as the signed indexes
         * list exactly its packages (name, version, file, size, sha256). */
        d->pinned = calloc(l->n ? l->n : 1, sizeof *d->pinned);
        if (!d->pinned)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                size_t idx;
                const struct deb_pkg *x = find_pinned(d, &l->pkgs[i], &idx);
                if (!x)
                        return mkm_err_set(reterr, -MKM_E_LOCK,
                                           "%s: %s %s (%s, sha256 %.12s...) is not in the signed indexes of '%s' any more "
                                           "(the archive moved on, or the lock was altered); run 'mkmachine lock' to "
                                           "resolve again",
                                           b->lock_path, l->pkgs[i].name, l->pkgs[i].version, l->pkgs[i].filename,
                                           l->pkgs[i].sha256, l->pkgs[i].repo);
                for (size_t k = 0; k < i; k++)
                        if (d->pinned[k] == x || (strcmp(d->pinned[k]->name, x->name) == 0 &&
                                                  strcmp(d->pinned[k]->arch, x->arch) == 0))
                                return mkm_err_set(reterr, -MKM_E_LOCK, "%s: %s:%s is pinned twice", b->lock_path,
                                                   x->name, x->arch);
                d->pinned[i] = x;
                /* the extraction cap comes from the signed index, not from the lock */
                l->pkgs[i].isize = x->installed_size * 1024;
        }
        mkm_debug(d->ctx, "installing the set pinned by %s", b->lock_path);
        b->lock_out = TAKE_PTR(b->lock_in);
        strv_free(b->lock_out->sources);
        b->lock_out->sources = strv_copy(d->sources);
        return b->lock_out->sources ? 0 : -ENOMEM;
}

static int plan_resolve(struct backend *d, struct mkm_err *reterr) {
        struct build *b = d->b;
        const struct recipe *r = b->recipe;
        enum deb_variant v = deb_variant_from_string(r->variant ? r->variant : "minbase");
        if (v == _DEB_VARIANT_INVALID)
                return mkm_err_set(reterr, -MKM_E_RECIPE, "%s: Variant=%s is not one of mmdebstrap's variants",
                                   r->path ? r->path : "recipe", r->variant);
        mkm_emit(d->ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "resolving dependencies" });
        _cleanup_(deb_plan_freep) struct deb_plan *plan = NULL;
        int q = deb_resolve(d->ctx, d->indexes, d->n_indexes, d->arch, v, r->packages, &plan, reterr);
        if (q < 0)
                return q;
        _cleanup_(lock_freep) struct lock *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->inputs = strdup(b->inputs);
        l->distribution = strdup("debian");
        l->sources = strv_copy(d->sources);
        if (!l->inputs || !l->distribution || !l->sources)
                return -ENOMEM;
        d->pinned = calloc(plan->n ? plan->n : 1, sizeof *d->pinned);
        if (!d->pinned)
                return -ENOMEM;
        for (size_t i = 0; i < plan->n; i++) {
                const struct deb_pkg *p = plan->items[i].pkg;
                d->pinned[i] = p;
                struct lock_pkg lp = { .name = (char *)p->name, .version = (char *)p->version,
                                       .repo = d->index_repo[p->index], .filename = (char *)p->filename,
                                       .size = p->size, .isize = p->installed_size * 1024, .order = (unsigned)i,
                                       /* apt marks automatic only what it pulled in as a dependency;
                                        * the essential set is installed by dpkg (mmdebstrap) and
                                        * stays manual, dependencies included */
                                       .explicit = plan->items[i].explicit || plan->items[i].essential_set };
                memcpy(lp.sha256, p->sha256, HASH_SHA256_HEX);
                q = lock_add(l, &lp);
                if (q < 0)
                        return q;
        }
        for (size_t s = 0; s < d->n_suites; s++) {
                char label[256];
                snprintf(label, sizeof label, "%s/%s", d->suites[s].name, d->suites[s].file);
                q = lock_add_index(l, label, d->suites[s].release->date, d->suites[s].digest);
                if (q < 0)
                        return q;
        }
        b->lock_out = TAKE_PTR(l);
        return 0;
}

static int deb_plan(struct backend *d, struct mkm_err *reterr) {
        const struct recipe *r = d->b->recipe;
        if (r->snapshot)
                return mkm_err_set(reterr, -MKM_E_RECIPE,
                                   "%s: Snapshot=%s is not supported for Debian yet (the snapshot archive is not "
                                   "reachable from here to test it); pin the package set with the lock instead",
                                   r->path ? r->path : "recipe", r->snapshot);
        int q = find_mirrors(d, reterr);
        if (q < 0)
                return q;
        q = open_keyring(d, reterr);
        if (q < 0)
                return q;
        q = load_releases(d, reterr);
        if (q < 0)
                return q;
        q = load_indexes(d, reterr);
        if (q < 0)
                return q;
        q = d->b->lock_in ? plan_from_lock(d, reterr) : plan_resolve(d, reterr);
        if (q < 0)
                return q;
        /* SOURCE_DATE_EPOCH: the Release dates the lock recorded, else the newest Release. */
        int64_t locked = lock_newest_index_date(d->b->lock_out);
        d->b->source_date_epoch = d->ctx->source_date_epoch >= 0 ? d->ctx->source_date_epoch
                                  : locked > 0                   ? locked
                                                                 : newest_release(d);
        return 0;
}

/* ---- sources: where each package comes from and how it is trusted ------------------------------ */

static size_t suite_of_repo(const struct backend *d, const char *repo) {
        size_t l = strcspn(repo, "/");
        for (size_t s = 0; s < d->n_suites; s++)
                if (strlen(d->suites[s].name) == l && strncmp(d->suites[s].name, repo, l) == 0)
                        return s;
        return 0;
}

static int deb_sources(struct backend *d, const struct pipeline_item **ret_items, enum pipeline_trust *ret_trust,
                       struct verify_keyring **ret_keyring, struct mkm_err *reterr) {
        struct lock *l = d->b->lock_out;
        d->n_items = l->n;
        d->items = calloc(l->n ? l->n : 1, sizeof *d->items);
        d->item_urls = calloc(l->n ? l->n : 1, sizeof *d->item_urls);
        if (!d->items || !d->item_urls)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                const struct lock_pkg *p = &l->pkgs[i];
                int q = urls_for(&d->suites[suite_of_repo(d, p->repo)], p->filename, &d->item_urls[i]);
                if (q < 0)
                        return q;
                const char *base = strrchr(p->filename, '/');
                d->items[i] = (struct pipeline_item){ .label = base ? base + 1 : p->filename, .urls = d->item_urls[i],
                                                      .sha256 = p->sha256, .size = p->size };
        }
        *ret_items = d->items;
        *ret_trust = PIPELINE_TRUST_DIGEST;
        *ret_keyring = d->keyring;
        return 0;
}

/* ---- install ----------------------------------------------------------------------------------- */

/* Write dir/name in the tree, which maintainer scripts have run in: dir is resolved inside it
 * with chase_in_root() (missing directories made 0755), name opened with O_NOFOLLOW (a symlink
 * there is an error, never followed). */
static int write_in_root(struct backend *d, const char *dir, const char *name, const void *data, size_t len,
                         mode_t mode, struct mkm_err *reterr) {
        _cleanup_close_ int dfd = -EBADF;
        int q = chase_in_root(d->b->deploy->root_fd, dir, CHASE_MKDIR_0755 | CHASE_MUST_BE_DIRECTORY, NULL, &dfd);
        if (q < 0)
                return mkm_err_set(reterr, q, "cannot create /%s: %s", dir, mkm_strerror(q));
        q = fs_write_file_at(dfd, name, data, len, mode);
        if (q < 0)
                return mkm_err_set(reterr, q, "cannot write /%s/%s: %s", dir, name, mkm_strerror(q));
        return 0;
}

/* The directories merged /usr links, as debootstrap's setup_merged_usr (which mmdebstrap's
 * merged-usr hook uses) does per architecture; usr-is-merged's postinst later removes the empty
 * ones (lib32, libx32 on amd64), as in mmdebstrap's result. */
static const char *const *merged_dirs(const char *arch) {
        static const struct {
                const char *arch;
                const char *dirs[7];
        } table[] = {
                { "amd64", { "bin", "sbin", "lib", "lib32", "lib64", "libx32", NULL } },
                { "i386", { "bin", "sbin", "lib", "lib64", "libx32", NULL } },
                { "mips", { "bin", "sbin", "lib", "lib32", "lib64", NULL } },
                { "mipsel", { "bin", "sbin", "lib", "lib32", "lib64", NULL } },
                { "mips64el", { "bin", "sbin", "lib", "lib32", "lib64", "libo32", NULL } },
                { "powerpc", { "bin", "sbin", "lib", "lib64", NULL } },
                { "ppc64", { "bin", "sbin", "lib", "lib32", "lib64", NULL } },
                { "ppc64el", { "bin", "sbin", "lib", "lib64", NULL } },
                { "s390x", { "bin", "sbin", "lib", "lib32", NULL } },
                { "sparc64", { "bin", "sbin", "lib", "lib32", "lib64", NULL } },
                { "x32", { "bin", "sbin", "lib", "lib32", "lib64", "libx32", NULL } },
        };
        static const char *const plain[] = { "bin", "sbin", "lib", NULL };
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (strcmp(arch, table[i].arch) == 0)
                        return table[i].dirs;
        return plain;
}

static int deb_install_begin(struct backend *d, struct mkm_err *reterr) {
        int rootfd = d->b->deploy->root_fd;
        d->owners = extract_owners_new();
        d->ps = calloc(d->n_items ? d->n_items : 1, sizeof *d->ps);
        if (!d->owners || !d->ps)
                return -ENOMEM;
        /* merged /usr from the start, as bookworm has it */
        for (const char *const *m = merged_dirs(d->arch); *m; m++) {
                char target[64], usr[64];
                snprintf(target, sizeof target, "usr/%s", *m);
                snprintf(usr, sizeof usr, "usr/%s", *m);
                _cleanup_close_ int ufd = fs_mkdir_p_in_root(rootfd, usr, 0755);
                if (ufd < 0)
                        return mkm_err_set(reterr, ufd, "cannot create /%s: %s", usr, mkm_strerror(ufd));
                if (symlinkat(target, rootfd, *m) < 0 && errno != EEXIST)
                        return mkm_err_set(reterr, -errno, "cannot link /%s to %s: %s", *m, target, strerror(errno));
        }
        static const char *const dirs[] = { DPKG_ADMIN "/info", DPKG_ADMIN "/updates", DPKG_ADMIN "/triggers",
                                            DPKG_ADMIN "/alternatives", DPKG_ADMIN "/parts", "var/lib/apt/lists/partial",
                                            "var/cache/apt/archives/partial", "etc/apt/apt.conf.d",
                                            "etc/apt/preferences.d", "etc/apt/sources.list.d", "etc/apt/trusted.gpg.d",
                                            "usr/sbin" };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_close_ int fd = fs_mkdir_p_in_root(rootfd, dirs[i], 0755);
                if (fd < 0)
                        return mkm_err_set(reterr, fd, "cannot create /%s: %s", dirs[i], mkm_strerror(fd));
        }
        int q = 0;
        static const char *const empty[] = { "status", "available", "diversions", "statoverride" };
        for (size_t i = 0; i < ELEMENTSOF(empty) && q >= 0; i++)
                q = write_in_root(d, DPKG_ADMIN, empty[i], "", 0, 0644, reterr);
        if (q >= 0)
                q = write_in_root(d, DPKG_ADMIN "/info", "format", "1\n", 2, 0644, reterr);
        if (q >= 0) {
                char line[64];
                int n = snprintf(line, sizeof line, "%s\n", d->arch);
                q = write_in_root(d, DPKG_ADMIN, "arch", line, (size_t)n, 0644, reterr);
        }
        /* Services stay down during the build (invoke-rc.d and deb-systemd-invoke ask it). */
        static const char policy[] = "#!/bin/sh\n# written by mkmachine for the build; removed after it\nexit 101\n";
        if (q >= 0)
                q = write_in_root(d, "usr/sbin", "policy-rc.d", policy, sizeof policy - 1, 0755, reterr);
        return q;
}

static int cmp_strp(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Conffiles as dpkg --unpack leaves them: each listed path is recorded ("newconffile" in the
 * status file), and the file the package shipped there waits as PATH.dpkg-new for
 * dpkg --configure to move into place. Only a regular file or symlink of this package's own data
 * is renamed, never another package's file or a directory. */
static int mark_conffiles(struct backend *d, struct pkg_state *ps, const char *label, struct mkm_err *reterr) {
        const struct deb_member *cf = deb_control_get(&ps->control, "conffiles");
        if (!cf)
                return 0;
        int q = deb_conffiles_parse(cf->data, label, &ps->conffiles, reterr);
        if (q < 0)
                return q;
        for (char **l = ps->conffiles; l && *l; l++) {
                const char *p = *l;
                const char *rel = p + 1;
                if (!ps->files || !bsearch(&rel, ps->files, strv_length(ps->files), sizeof(char *), cmp_strp))
                        continue;       /* listed, not shipped: recorded only, as dpkg does */
                _cleanup_free_ char *dir = fs_path_dirname(rel);
                if (!dir)
                        return -ENOMEM;
                const char *leaf = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
                _cleanup_close_ int pfd = fs_open_in_root(d->b->deploy->root_fd, dir, O_PATH | O_DIRECTORY, 0, 0);
                struct stat st;
                if (pfd < 0 || fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode))
                        continue;
                char newname[4096];
                if ((size_t)snprintf(newname, sizeof newname, "%s.dpkg-new", leaf) >= sizeof newname)
                        return mkm_err_set(reterr, -ENAMETOOLONG, "%s: conffile %s: name too long", label, p);
                if (renameat(pfd, leaf, pfd, newname) < 0)
                        return mkm_err_set(reterr, -errno, "%s: cannot stage conffile %s: %s", label, p, strerror(errno));
        }
        return 0;
}

/* The control file must describe exactly the package the signed index promised, in one
 * paragraph, without the fields only dpkg writes into its database. */
static int check_control(const struct deb_member *c, const struct deb_pkg *want, const struct lock_pkg *p,
                         struct pkg_state *ps, struct mkm_err *reterr) {
        struct deb_control_info info = {};
        struct mkm_err e = {};
        int q = deb_control_info_parse(c->data, c->len, "control", &info, &e);
        if (q < 0)
                return mkm_err_set(reterr, q, "%s (%s): %s", p->name, p->filename, e.msg);
        ps->name = info.name;
        ps->version = info.version;
        ps->arch = info.arch;
        ps->ma_same = info.ma_same;
        bool index_same = want->multi_arch == DEB_MA_SAME;
        if (!ps->name || !ps->version || !ps->arch || strcmp(ps->name, want->name) != 0 ||
            strcmp(ps->version, want->version) != 0 || strcmp(ps->arch, want->arch) != 0 || ps->ma_same != index_same)
                return mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH,
                                   "%s: %s contains %s %s (%s%s), the signed index lists %s %s (%s%s)", p->repo,
                                   p->filename, ps->name ? ps->name : "?", ps->version ? ps->version : "?",
                                   ps->arch ? ps->arch : "?", ps->ma_same ? ", Multi-Arch: same" : "", want->name,
                                   want->version, want->arch, index_same ? ", Multi-Arch: same" : "");
        return 0;
}

static int deb_install_one(struct backend *d, size_t i, int fd, const char *signer, struct mkm_err *reterr) {
        const struct lock_pkg *p = &d->b->lock_out->pkgs[i];
        struct pkg_state *ps = &d->ps[i];
        uint64_t cap = p->isize ? p->isize + p->isize / 4 + (16u << 20) : 0;
        struct extract_opts o = { .label = p->name, .max_bytes = cap, .owners = d->owners };
        struct extract_result res = {};
        int q = deb_read(d->ctx, fd, p->name, d->b->deploy->root_fd, &o, &ps->control, &res, reterr);
        if (q < 0)
                return q;
        ps->files = TAKE_PTR(res.files);
        extract_result_done(&res);
        /* The file must be the package the index promised (its digest already matched), and its
         * name and architecture become file names under /var/lib/dpkg/info. */
        q = check_control(deb_control_get(&ps->control, "control"), d->pinned[i], p, ps, reterr);
        if (q < 0)
                return q;
        q = mark_conffiles(d, ps, p->name, reterr);
        if (q < 0)
                return q;
        mkm_emit(d->ctx, &(struct mkm_event){ .type = MKM_EV_PROGRESS, .text = "unpacking", .n = (unsigned)i + 1,
                                              .count = (unsigned)d->n_items });
        return 0;
}

static bool name_ok(const char *s);

/* "pkg" or "pkg:arch" as dpkg names info files: only Multi-Arch: same packages carry the arch.
 * -EINVAL for anything that is not a plain file name (names and architectures were checked
 * against the signed index, this is the last guard before they become paths). */
static int info_name(const struct pkg_state *ps, char *buf, size_t len) {
        int n = ps->ma_same ? snprintf(buf, len, "%s:%s", ps->name, ps->arch) : snprintf(buf, len, "%s", ps->name);
        if (n < 0 || (size_t)n >= len || !name_ok(buf) || buf[0] == '.')
                return -EINVAL;
        return 0;
}

/* dpkg --unpack writes info/PKG.md5sums itself for a package that ships none: "MD5  path" for
 * each regular file (conffiles included, symlinks not), so that dpkg -V can check it. */
static int generate_md5sums(struct backend *d, struct pkg_state *ps, int ifd, const char *base,
                            struct mkm_err *reterr) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        int q = 0;
        for (char **x = ps->files; x && *x && q >= 0; x++) {
                size_t l = strlen(*x);
                if (l == 0 || (*x)[l - 1] == '/')
                        continue;
                /* a conffile waits as .dpkg-new: hash what dpkg will move into place */
                _cleanup_free_ char *path = NULL;
                bool conf = false;
                for (char **c = ps->conffiles; c && *c && !conf; c++)
                        conf = strcmp(*c + 1, *x) == 0;
                if (asprintf(&path, "%s%s", *x, conf ? ".dpkg-new" : "") < 0) {
                        q = -ENOMEM;
                        break;
                }
                _cleanup_close_ int fd = fs_open_in_root(d->b->deploy->root_fd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0, 0);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;       /* a symlink, or gone (a later package replaced it) */
                char md5[HASH_MD5_HEX];
                q = hash_fd_hex(HASH_MD5, fd, md5, NULL);
                if (q < 0)
                        q = mkm_err_set(reterr, q, "%s: cannot hash /%s: %s", ps->name, *x, mkm_strerror(q));
                else
                        fprintf(f, "%s  %s\n", md5, *x);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        if (q < 0)
                return q;
        char name[640];
        snprintf(name, sizeof name, "%s.md5sums", base);
        q = fs_write_file_at(ifd, name, text, len, 0644);
        if (q < 0)
                return mkm_err_set(reterr, q, "cannot write /" DPKG_ADMIN "/info/%s: %s", name, mkm_strerror(q));
        return 0;
}

static int write_info(struct backend *d, struct mkm_err *reterr) {
        _cleanup_close_ int ifd = fs_mkdir_p_in_root(d->b->deploy->root_fd, DPKG_ADMIN "/info", 0755);
        if (ifd < 0)
                return mkm_err_set(reterr, ifd, "cannot open /" DPKG_ADMIN "/info: %s", mkm_strerror(ifd));
        for (size_t i = 0; i < d->n_items; i++) {
                struct pkg_state *ps = &d->ps[i];
                char base[512], name[640];
                if (info_name(ps, base, sizeof base) < 0)
                        return mkm_err_set(reterr, -MKM_E_BADDATA, "refusing the package name '%s:%s'", ps->name, ps->arch);
                /* NAME.list: every path the package installed, "/." first, as dpkg -L shows them */
                _cleanup_free_ char *list = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&list, &len);
                if (!f)
                        return -ENOMEM;
                fputs("/.\n", f);
                for (char **x = ps->files; x && *x; x++) {
                        size_t l = strlen(*x);
                        fprintf(f, "/%.*s\n", (int)(l > 0 && (*x)[l - 1] == '/' ? l - 1 : l), *x);
                }
                if (fclose(f) != 0)
                        return -ENOMEM;
                snprintf(name, sizeof name, "%s.list", base);
                int q = fs_write_file_at(ifd, name, list, len, 0644);
                if (q >= 0 && !deb_control_get(&ps->control, "md5sums"))
                        q = generate_md5sums(d, ps, ifd, base, reterr);
                for (size_t m = 0; q >= 0 && m < ps->control.n; m++) {
                        const struct deb_member *mb = &ps->control.members[m];
                        if (strcmp(mb->name, "control") == 0)
                                continue;
                        bool script = strcmp(mb->name, "preinst") == 0 || strcmp(mb->name, "postinst") == 0 ||
                                      strcmp(mb->name, "prerm") == 0 || strcmp(mb->name, "postrm") == 0 ||
                                      strcmp(mb->name, "config") == 0;
                        snprintf(name, sizeof name, "%s.%s", base, mb->name);
                        q = fs_write_file_at(ifd, name, mb->data, mb->len, script ? 0755 : 0644);
                }
                if (q < 0)
                        return mkm_err_set(reterr, q, "cannot write /" DPKG_ADMIN "/info/%s: %s", name, mkm_strerror(q));
        }
        return 0;
}

static int cmp_ps(const void *a, const void *b) {
        const struct pkg_state *x = *(struct pkg_state *const *)a, *y = *(struct pkg_state *const *)b;
        int c = strcmp(x->name, y->name);
        return c ? c : strcmp(x->arch, y->arch);
}

/* /var/lib/dpkg/status as `dpkg --unpack` leaves it: "install ok unpacked", conffiles new. */
static int write_status(struct backend *d, struct mkm_err *reterr) {
        _cleanup_free_ struct pkg_state **sorted = calloc(d->n_items ? d->n_items : 1, sizeof *sorted);
        if (!sorted)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_items; i++)
                sorted[i] = &d->ps[i];
        qsort(sorted, d->n_items, sizeof *sorted, cmp_ps);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_items; i++) {
                const struct deb_member *c = deb_control_get(&sorted[i]->control, "control");
                size_t cl = c->len;
                while (cl > 0 && c->data[cl - 1] == '\n')
                        cl--;
                /* Package: first, then Status:, then the rest of the control file */
                const char *nl = memchr(c->data, '\n', cl);
                size_t first = nl ? (size_t)(nl - c->data) + 1 : cl;
                fwrite(c->data, 1, first, f);
                if (!nl)
                        fputc('\n', f);
                fputs("Status: install ok unpacked\n", f);
                fwrite(c->data + first, 1, cl - first, f);
                if (cl > first)
                        fputc('\n', f);
                if (sorted[i]->conffiles) {
                        fputs("Conffiles:\n", f);
                        for (char **x = sorted[i]->conffiles; *x; x++)
                                fprintf(f, " %s newconffile\n", *x);
                }
                fputc('\n', f);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        return write_in_root(d, DPKG_ADMIN, "status", text, len, 0644, reterr);
}

/* Trigger interests, as dpkg records them at unpack: triggers/File for paths, triggers/NAME for
 * explicit triggers. */
static int write_triggers(struct backend *d, struct mkm_err *reterr) {
        _cleanup_free_ char *file = NULL;
        size_t flen = 0;
        FILE *ff = open_memstream(&file, &flen);
        _cleanup_strv_free_ char **names = NULL;
        if (!ff)
                return -ENOMEM;
        int q = 0;
        for (size_t i = 0; i < d->n_items && q >= 0; i++) {
                struct pkg_state *ps = &d->ps[i];
                const struct deb_member *t = deb_control_get(&ps->control, "triggers");
                if (!t)
                        continue;
                char base[512];
                if (info_name(ps, base, sizeof base) < 0) {
                        q = mkm_err_set(reterr, -MKM_E_BADDATA, "refusing the package name '%s'", ps->name);
                        break;
                }
                _cleanup_strv_free_ char **lines = NULL;
                q = strv_split(t->data, "\n", &lines);
                for (char **l = lines; q >= 0 && l && *l; l++) {
                        char kw[32], nm[1024];
                        if (**l == '#' || sscanf(*l, "%31s %1023s", kw, nm) != 2)
                                continue;
                        const char *suffix;
                        if (strcmp(kw, "interest") == 0 || strcmp(kw, "interest-await") == 0)
                                suffix = "";
                        else if (strcmp(kw, "interest-noawait") == 0)
                                suffix = "/noawait";
                        else
                                continue;       /* activate*: see the comment at the top */
                        if (strchr(nm, '\n') || strchr(nm, ' ') || strstr(nm, ".."))
                                continue;
                        if (nm[0] == '/')
                                fprintf(ff, "%s %s%s\n", nm, base, suffix);
                        else {
                                char *line = NULL;
                                if (asprintf(&line, "%s %s%s", nm, base, suffix) < 0 || (q = strv_consume(&names, line)) < 0) {
                                        free(line);
                                        q = -ENOMEM;
                                }
                        }
                }
        }
        if (fclose(ff) != 0)
                return -ENOMEM;
        if (q < 0)
                return q;
        q = write_in_root(d, DPKG_ADMIN "/triggers", "File", file, flen, 0644, reterr);
        if (q >= 0)
                q = write_in_root(d, DPKG_ADMIN "/triggers", "Unincorp", "", 0, 0644, reterr);
        /* triggers/NAME: one interested package a line */
        strv_sort(names);
        for (char **l = names; q >= 0 && l && *l; l++) {
                char *sp = strchr(*l, ' ');
                *sp = 0;
                /* gather every line for this trigger name */
                _cleanup_free_ char *body = NULL;
                size_t blen = 0;
                FILE *bf = open_memstream(&body, &blen);
                if (!bf)
                        return -ENOMEM;
                const char *tname = *l;
                size_t tl = strlen(tname);
                fprintf(bf, "%s\n", sp + 1);
                while (l[1] && strncmp(l[1], tname, tl) == 0 && l[1][tl] == ' ') {
                        fprintf(bf, "%s\n", l[1] + tl + 1);
                        l++;
                }
                if (fclose(bf) != 0)
                        return -ENOMEM;
                if (strchr(tname, '/') || tname[0] == '.')
                        continue;
                q = write_in_root(d, DPKG_ADMIN "/triggers", tname, body, blen, 0644, reterr);
        }
        return q;
}

static bool name_ok(const char *s) {
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '+' || *s == '-' || *s == '.' ||
                      *s == ':'))
                        return false;
        return true;
}

static const char *dpkg_version(const struct backend *d) {
        for (size_t i = 0; i < d->n_items; i++)
                if (strcmp(d->ps[i].name, "dpkg") == 0)
                        return d->ps[i].version;
        return "";
}

static int run_in_tree(struct backend *d, char *const argv[], const struct sandbox_file *files, size_t n_files,
                       const char *what, struct mkm_err *reterr) {
        char running[128], arch[64];
        snprintf(running, sizeof running, "DPKG_RUNNING_VERSION=%s", dpkg_version(d));
        snprintf(arch, sizeof arch, "DPKG_MAINTSCRIPT_ARCH=%s", d->arch);
        char *env[] = { "DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true", "DPKG_ADMINDIR=/var/lib/dpkg",
                        "DPKG_ROOT=", running, arch, NULL };
        /* A build is a chroot, as debootstrap's and mmdebstrap's are, but in the sandbox PID 1 is
         * the command itself, so ischroot (which compares /proc/1's root and mounts with its own)
         * says "not a chroot": libc6's postinst then runs "telinit u; sleep 1". Answer as in their
         * chroot, for the time of the scripts only. */
        static const char *const mask[] = { "/usr/bin/ischroot", NULL };
        struct sandbox_opts o = { .hostname = d->b->deploy->name, .source_date_epoch = d->b->source_date_epoch, .env = env,
                                  .files = files, .n_files = n_files, .no_sync = true, .mask_true = mask };
        _cleanup_free_ char *out = NULL;
        int q = sandbox_run(d->ctx, d->b->deploy->staging, argv, &o, &out, reterr);
        if (q < 0)
                return mkm_err_prefix(reterr, q, "%s", what);
        return 0;
}

/* Each preinst with "install", as dpkg --unpack runs it: from /var/lib/dpkg/tmp.ci/ holding the
 * package's control members (debconf reads the package name from tmp.ci/control there, and loads
 * tmp.ci/templates), with dpkg's environment; base-passwd's first (it makes /etc/passwd and
 * /etc/group, which the others' users and groups go into). */
static int run_preinsts(struct backend *d, struct mkm_err *reterr) {
        static const char *const members[] = { "control", "preinst", "templates", "config" };
        _cleanup_free_ char *script = NULL;
        size_t len = 0;
        size_t cap = d->n_items * ELEMENTSOF(members) + 1, nf = 0;
        _cleanup_free_ struct sandbox_file *sf = calloc(cap, sizeof *sf);
        _cleanup_strv_free_ char **paths = NULL;
        FILE *f = sf ? open_memstream(&script, &len) : NULL;
        if (!f)
                return -ENOMEM;
        fputs("#!/bin/sh\n# mkmachine: each package's preinst, as dpkg --unpack runs it\nset -e\n"
              "T=/var/lib/dpkg/tmp.ci\n"
              "run() {\n"
              "  rm -rf $T; mkdir -m 0755 $T; cp -p /run/mkmachine/ci/$2/* $T/\n"
              "  rc=0\n"
              "  DPKG_MAINTSCRIPT_PACKAGE=$1 DPKG_MAINTSCRIPT_ARCH=$3 DPKG_MAINTSCRIPT_NAME=preinst \\\n"
              "  DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT=1 \\\n"
              "    $T/preinst install || rc=$?\n"
              "  rm -rf $T\n"
              "  if [ $rc -ne 0 ]; then echo \"mkmachine: $1: 'preinst install' exited with status $rc\" >&2; exit $rc; fi\n"
              "}\n",
              f);
        int q = 0;
        for (int pass = 0; pass < 2 && q >= 0; pass++)
                for (size_t i = 0; i < d->n_items && q >= 0; i++) {
                        struct pkg_state *ps = &d->ps[i];
                        bool first = strcmp(ps->name, "base-passwd") == 0;
                        if ((pass == 0) != first || !deb_control_get(&ps->control, "preinst"))
                                continue;
                        char base[512];
                        if (info_name(ps, base, sizeof base) < 0 || !name_ok(ps->name) || !name_ok(ps->arch)) {
                                q = mkm_err_set(reterr, -MKM_E_BADDATA, "refusing package name '%s'", ps->name);
                                break;
                        }
                        for (size_t m = 0; m < ELEMENTSOF(members) && q >= 0; m++) {
                                const struct deb_member *mb = deb_control_get(&ps->control, members[m]);
                                char *path = NULL;
                                if (!mb)
                                        continue;
                                if (asprintf(&path, "/run/mkmachine/ci/%s/%s", base, members[m]) < 0 ||
                                    (q = strv_consume(&paths, path)) < 0) {
                                        free(path);
                                        q = -ENOMEM;
                                        break;
                                }
                                sf[nf++] = (struct sandbox_file){ .path = path, .data = mb->data, .len = mb->len,
                                                                  .mode = strcmp(members[m], "preinst") == 0 ||
                                                                                          strcmp(members[m], "config") == 0
                                                                                  ? 0755
                                                                                  : 0644 };
                        }
                        fprintf(f, "run %s %s %s\n", ps->name, base, ps->arch);
                }
        if (fclose(f) != 0)
                return -ENOMEM;
        if (q < 0 || nf == 0)
                return q;
        mkm_emit(d->ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "running preinst scripts" });
        sf[nf++] = (struct sandbox_file){ .path = "/run/mkmachine/preinsts", .data = script, .len = len, .mode = 0755 };
        char *argv[] = { "/bin/sh", "/run/mkmachine/preinsts", NULL };
        return run_in_tree(d, argv, sf, nf, "preinst scripts", reterr);
}

/* Remove path (not a directory) from the tree if it is there; a symlink there is removed, not
 * what it points to. */
static int remove_in_root(struct backend *d, const char *path) {
        _cleanup_free_ char *leaf = NULL;
        _cleanup_close_ int pfd = -EBADF;
        int q = chase_in_root(d->b->deploy->root_fd, path, CHASE_PARENT | CHASE_NOFOLLOW, &leaf, &pfd);
        if (q == 0 || q == -ENOENT)
                return 0;
        if (q < 0)
                return q;
        if (unlinkat(pfd, leaf, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

/* apt in the machine points at the mirror it was built from and trusts the keys used. */
static int write_apt_config(struct backend *d, struct mkm_err *reterr) {
        const struct recipe *r = d->b->recipe;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        const char *signed_by = "/usr/share/keyrings/debian-archive-keyring.gpg";
        if (!d->default_keyring)
                signed_by = d->keyring_armored ? "/etc/apt/keyrings/mkmachine.asc" : "/etc/apt/keyrings/mkmachine.gpg";
        fputs("# Written by mkmachine: the mirror and suites this machine was built from.\n", f);
        bool *done = calloc(d->n_suites ? d->n_suites : 1, sizeof *done);
        if (!done) {
                fclose(f);
                return -ENOMEM;
        }
        for (size_t s = 0; s < d->n_suites; s++) {
                if (done[s])
                        continue;
                fputs("\nTypes: deb\nURIs:", f);
                for (char **u = d->suites[s].mirrors; *u; u++)
                        fprintf(f, " %s/", *u);
                fputs("\nSuites:", f);
                for (size_t t = s; t < d->n_suites; t++) {
                        if (done[t] || strv_length(d->suites[t].mirrors) != strv_length(d->suites[s].mirrors))
                                continue;
                        bool same = true;
                        for (size_t k = 0; d->suites[s].mirrors[k]; k++)
                                same = same && strcmp(d->suites[s].mirrors[k], d->suites[t].mirrors[k]) == 0;
                        if (!same)
                                continue;
                        done[t] = true;
                        fprintf(f, " %s", d->suites[t].name);
                }
                fputs("\nComponents:", f);
                for (char **c = r->components; c && *c; c++)
                        fprintf(f, " %s", *c);
                fprintf(f, "\nSigned-By: %s\n", signed_by);
        }
        free(done);
        if (fclose(f) != 0)
                return -ENOMEM;
        int q = write_in_root(d, "etc/apt/sources.list.d", "debian.sources", text, len, 0644, reterr);
        if (q < 0 || d->default_keyring)
                return q;
        /* A recipe's own Keyring= goes along, so that apt in the machine trusts what we trusted
         * (apt takes armored keys only from a .asc file). */
        return write_in_root(d, "etc/apt/keyrings", d->keyring_armored ? "mkmachine.asc" : "mkmachine.gpg",
                             d->keyring_bytes, d->keyring_len, 0644, reterr);
}

/* apt-mark's view: what only came in as a dependency is marked automatic, as apt would. */
static int write_extended_states(struct backend *d, struct mkm_err *reterr) {
        _cleanup_free_ struct pkg_state **sorted = calloc(d->n_items ? d->n_items : 1, sizeof *sorted);
        if (!sorted)
                return -ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < d->n_items; i++)
                if (!d->b->lock_out->pkgs[i].explicit)
                        sorted[n++] = &d->ps[i];
        qsort(sorted, n, sizeof *sorted, cmp_ps);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                fprintf(f, "Package: %s\nArchitecture: %s\nAuto-Installed: 1\n\n", sorted[i]->name,
                        d->arch);       /* apt writes the native one for "all" packages too */
        if (fclose(f) != 0)
                return -ENOMEM;
        return write_in_root(d, "var/lib/apt", "extended_states", text, len, 0644, reterr);
}

static int deb_install_end(struct backend *d, struct mkm_err *reterr) {
        int q = write_info(d, reterr);
        if (q >= 0)
                q = write_status(d, reterr);
        if (q >= 0)
                q = write_triggers(d, reterr);
        if (q < 0)
                return q;
        if (d->b->recipe->variant && strcmp(d->b->recipe->variant, "extract") == 0)
                mkm_info(d->ctx, "Variant=extract: packages unpacked, not configured");
        else {
                q = run_preinsts(d, reterr);
                if (q < 0)
                        return q;
                mkm_emit(d->ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "configuring packages (dpkg)" });
                char *argv[] = { "dpkg", "--configure", "-a", NULL };
                q = run_in_tree(d, argv, NULL, 0, "dpkg --configure -a", reterr);
                if (q < 0)
                        return q;
        }
        q = write_apt_config(d, reterr);
        if (q >= 0)
                q = write_extended_states(d, reterr);
        if (q < 0)
                return q;
        /* What the build alone needed, and dpkg's and debconf's backups of their own databases. */
        static const char *const drop[] = { "usr/sbin/policy-rc.d",       DPKG_ADMIN "/status-old",
                                            DPKG_ADMIN "/diversions-old", DPKG_ADMIN "/statoverride-old",
                                            DPKG_ADMIN "/available-old",  "var/cache/debconf/config.dat-old",
                                            "var/cache/debconf/templates.dat-old", "var/cache/debconf/passwords.dat-old" };
        for (size_t i = 0; i < ELEMENTSOF(drop); i++) {
                q = remove_in_root(d, drop[i]);
                if (q < 0)
                        return mkm_err_set(reterr, q, "cannot remove /%s: %s", drop[i], mkm_strerror(q));
        }
        return 0;
}

/* What decides the package set besides the packages: suites, components, variant. */
static int deb_inputs(const struct recipe *r, char **ret) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        fputs("suites", f);
        for (char **x = r->suites; x && *x; x++)
                fprintf(f, " %s", *x);
        fputs("\ncomponents", f);
        for (char **x = r->components; x && *x; x++)
                fprintf(f, " %s", *x);
        fprintf(f, "\nvariant %s\n", r->variant ? r->variant : "");
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}

const struct backend_ops backend_debian = {
        .distribution = "debian",
        .lock_needs_packages = false,
        .vercmp = debver_cmp,
        .inputs = deb_inputs,
        .new = deb_new,
        .plan = deb_plan,
        .sources = deb_sources,
        .install_begin = deb_install_begin,
        .install_one = deb_install_one,
        .install_end = deb_install_end,
        .free = deb_free,
};
