/* SPDX-License-Identifier: MIT */
/* OpenPGP signature verification through gpgme: the verdict on each signature, the decision over
 * several, and the native fast path. The private GNUPGHOME the checks run in (its keys, trust,
 * cache and removal) is verify-keyring.c's. The trust model and the decision table are documented
 * in verify.h. Threats handled here: a mirror serving altered data or signatures, signatures by
 * keys outside the keyring or by keys the distribution revoked, and unsigned text smuggled around
 * a clearsigned InRelease. */
#include "verify.h"
#include "verify-internal.h"

#include <errno.h>
#include <gpgme.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgp.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/log.h"
#include "util/strv.h"

/* The native fast path (pgp.h): keys gpg accepted a signature from in this process, with their
 * public key material, so that further signatures by them are checked in-process. A key enters
 * only after gpg's full verdict (validity, revocation, expiry, usage, subkey binding) was good;
 * the keyring does not change while it exists, and a build lasts seconds. */
struct fast_key {
        struct pgp_key key;             /* the signing (sub)key; key.fpr names it */
        char primary[VERIFY_FPR_MAX];
        char uid[256];
        int64_t learned;                /* when gpg last judged it (the time before its verdict) */
        int64_t expires;                /* the earliest expiry of the key and its primary; 0 = never */
        int64_t until;                  /* used no longer than this; 0 = only FAST_TTL_SECONDS (below) */
};

/* gpg's verdict on a key depends on the time: a key, a signature on it (its binding, its
 * self-certification, a certification that makes it valid) or the trustdb's cached validity can
 * lapse. A learned key is used in-process only while none of these has lapsed since gpg judged
 * it: until the earliest of the key's expiry, the earliest signature expiration in its keyblock
 * (pgp_keyblock_sig_expiry) and the trustdb's next check (gpg recomputes validity then); and in
 * any case for at most FAST_TTL_SECONDS after gpg last judged it, for what no field says. */
#define FAST_TTL_SECONDS 300

struct fast {
        pthread_mutex_t lock;
        struct fast_key *keys;
        size_t n;
        unsigned native, gpg;           /* signatures accepted each way, for tests and logs */
        int64_t nextcheck;              /* the trustdb's next check as last read; 0 = never */
        bool have_nextcheck;
};

/* The earliest of two times, where 0 means never. */
static int64_t earliest(int64_t a, int64_t b) {
        return a <= 0 ? b : b <= 0 ? a : a < b ? a : b;
}

/* Whether fk may still be used at now. */
static bool fast_usable(const struct fast_key *fk, int64_t now) {
        return !(fk->until > 0 && now >= fk->until) && !(fk->expires > 0 && now >= fk->expires) && now >= fk->learned &&
               now - fk->learned < FAST_TTL_SECONDS;
}

struct fast *verify_fast_new(void) {
        struct fast *f = calloc(1, sizeof *f);
        if (!f)
                return NULL;
        if (pthread_mutex_init(&f->lock, NULL) != 0) {
                free(f);
                return NULL;
        }
        return f;
}

struct fast *verify_fast_free(struct fast *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->n; i++)
                pgp_key_done(&f->keys[i].key);
        free(f->keys);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return NULL;
}

/* gpgme_get_key() through a per-handle cache: gpgme runs "gpg --version" and "gpg --list-keys"
 * for every lookup, and a build looks up the same few signing keys for every package. Within one
 * build (seconds) a key's state does not change. Returns a new reference, like gpgme_get_key. */
static gpgme_error_t get_key_cached(struct verify_keyring *k, const char *fpr, gpgme_key_t *ret) {
        size_t fl = strlen(fpr);
        for (size_t i = 0; i < k->n_seen; i++)
                for (gpgme_subkey_t sk = k->seen[i]->subkeys; sk; sk = sk->next)
                        /* A full fingerprint, or a 16-digit key ID (signatures without an
                         * issuer-fingerprint subpacket) matching its end. */
                        if (sk->fpr && (strcasecmp(sk->fpr, fpr) == 0 ||
                                        (fl == 16 && strlen(sk->fpr) > 16 && strcasecmp(sk->fpr + strlen(sk->fpr) - 16, fpr) == 0))) {
                                gpgme_key_ref(k->seen[i]);
                                *ret = k->seen[i];
                                return 0;
                        }
        gpgme_key_t key = NULL;
        gpgme_error_t e = gpgme_get_key(k->gctx, fpr, &key, 0);
        if (e || !key)
                return e ? e : gpg_error(GPG_ERR_NO_PUBKEY);
        gpgme_key_t *ns = mkm_reallocarray(k->seen, k->n_seen + 1, sizeof *ns);
        if (ns) {
                k->seen = ns;
                gpgme_key_ref(key);
                k->seen[k->n_seen++] = key;
        }
        *ret = key;
        return 0;
}

/* ---- verification ---- */

enum { SEV_NONE, SEV_MISSING, SEV_UNTRUSTED, SEV_EXPIRED, SEV_REVOKED, SEV_BAD };

struct sig_verdict {
        int r;
        int severity;
        char msg[600];
};

static int sev_of(int r) {
        switch (-r) {
        case MKM_E_SIG_BAD: return SEV_BAD;
        case MKM_E_SIG_REVOKED: return SEV_REVOKED;
        case MKM_E_SIG_EXPIRED: return SEV_EXPIRED;
        case MKM_E_SIG_UNTRUSTED: return SEV_UNTRUSTED;
        default: return SEV_MISSING;
        }
}

static void verdict(struct sig_verdict *v, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void verdict(struct sig_verdict *v, int r, const char *fmt, ...) {
        va_list ap;
        v->r = r;
        v->severity = sev_of(r);
        va_start(ap, fmt);
        (void)vsnprintf(v->msg, sizeof v->msg, fmt, ap);
        va_end(ap);
}

static const char *fmt_time(int64_t t, char buf[static 32]) {
        struct tm tm;
        time_t tt = (time_t)t;
        if (!gmtime_r(&tt, &tm) || strftime(buf, 32, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                (void)snprintf(buf, 32, "@%" PRId64, t);
        return buf;
}

static const char *validity_name(gpgme_validity_t v) {
        switch (v) {
        case GPGME_VALIDITY_NEVER: return "never";
        case GPGME_VALIDITY_MARGINAL: return "marginal";
        case GPGME_VALIDITY_FULL: return "full";
        case GPGME_VALIDITY_ULTIMATE: return "ultimate";
        case GPGME_VALIDITY_UNDEFINED: return "undefined";
        default: return "unknown";
        }
}

/* Judge one signature. Returns true (and fills *res) when it is good and trusted. */
static bool judge(struct verify_keyring *k, gpgme_signature_t s, struct verify_result *res, struct sig_verdict *v) {
        const char *id = s->fpr ? s->fpr : "(no key id)";
        gpgme_err_code_t code = gpgme_err_code(s->status);
        char tbuf[32];

        if (code == GPG_ERR_BAD_SIGNATURE || (s->summary & GPGME_SIGSUM_RED && code != GPG_ERR_CERT_REVOKED &&
                                               code != GPG_ERR_KEY_EXPIRED && code != GPG_ERR_SIG_EXPIRED &&
                                               !(s->summary & (GPGME_SIGSUM_KEY_REVOKED | GPGME_SIGSUM_KEY_EXPIRED |
                                                               GPGME_SIGSUM_SIG_EXPIRED)))) {
                /* gpg names only the key id for a bad signature; name the key as elsewhere. */
                _cleanup_(gpgme_key_unrefp) gpgme_key_t bk = NULL;
                if (s->fpr && get_key_cached(k, s->fpr, &bk) == 0 && bk && bk->subkeys && bk->subkeys->fpr)
                        id = bk->subkeys->fpr;
                verdict(v, -MKM_E_SIG_BAD, "bad signature by key %s: the data or the signature was altered", id);
                return false;
        }
        if (code == GPG_ERR_NO_PUBKEY || (s->summary & GPGME_SIGSUM_KEY_MISSING)) {
                verdict(v, -MKM_E_SIG_UNTRUSTED, "signed by unknown key %s (not in the keyring)", id);
                return false;
        }
        if (code != GPG_ERR_NO_ERROR && code != GPG_ERR_KEY_EXPIRED && code != GPG_ERR_SIG_EXPIRED &&
            code != GPG_ERR_CERT_REVOKED) {
                verdict(v, -MKM_E_SIG_BAD, "bad signature by key %s: %s", id, gpgme_strerror(s->status));
                return false;
        }

        /* The signature is cryptographically sound; now the key. */
        _cleanup_(gpgme_key_unrefp) gpgme_key_t key = NULL;
        gpgme_error_t e = s->fpr ? get_key_cached(k, s->fpr, &key) : gpg_error(GPG_ERR_NO_PUBKEY);
        if (e || !key || !key->subkeys || !key->subkeys->fpr) {
                verdict(v, -MKM_E_SIG_UNTRUSTED, "signed by unknown key %s (not in the keyring)", id);
                return false;
        }
        const char *primary = key->subkeys->fpr;
        const char *uid = key->uids && key->uids->uid ? key->uids->uid : "";
        gpgme_subkey_t sub = key->subkeys;
        bool exact = false;     /* s->fpr is a full fingerprint naming this very (sub)key */
        for (gpgme_subkey_t sk = key->subkeys; sk; sk = sk->next)
                if (sk->fpr && strcasecmp(sk->fpr, s->fpr) == 0) {
                        sub = sk;
                        exact = strlen(sk->fpr) == 40;
                }

        if (strv_contains(k->revoked, primary) || strv_contains(k->revoked, sub->fpr)) {
                verdict(v, -MKM_E_SIG_REVOKED, "signed by key %s '%s', which the keyring lists as revoked", primary, uid);
                return false;
        }
        if (code == GPG_ERR_CERT_REVOKED || (s->summary & GPGME_SIGSUM_KEY_REVOKED) || key->revoked || sub->revoked) {
                verdict(v, -MKM_E_SIG_REVOKED, "signed by revoked key %s '%s'", primary, uid);
                return false;
        }
        if (code == GPG_ERR_SIG_EXPIRED || (s->summary & GPGME_SIGSUM_SIG_EXPIRED)) {
                verdict(v, -MKM_E_SIG_EXPIRED, "signature by key %s '%s' expired on %s", primary, uid,
                        fmt_time((int64_t)s->exp_timestamp, tbuf));
                return false;
        }
        if (code == GPG_ERR_KEY_EXPIRED || (s->summary & GPGME_SIGSUM_KEY_EXPIRED) || key->expired || sub->expired) {
                verdict(v, -MKM_E_SIG_EXPIRED, "signed by expired key %s '%s' (expired on %s)", primary, uid,
                        fmt_time((int64_t)(sub->expires ? sub->expires : key->subkeys->expires), tbuf));
                return false;
        }
        if (key->disabled || key->invalid || sub->invalid || s->wrong_key_usage || !sub->can_sign) {
                verdict(v, -MKM_E_SIG_UNTRUSTED, "signed by key %s '%s', which is not trusted: %s", primary, uid,
                        s->wrong_key_usage || !sub->can_sign ? "the key may not make signatures"
                                                             : "the key is disabled or invalid");
                return false;
        }
        if (s->validity != GPGME_VALIDITY_FULL && s->validity != GPGME_VALIDITY_ULTIMATE) {
                verdict(v, -MKM_E_SIG_UNTRUSTED,
                        "signed by key %s '%s', which is not trusted (validity %s: not certified by enough trusted keys)",
                        primary, uid, validity_name(s->validity));
                return false;
        }
        if (res) {
                (void)snprintf(res->fingerprint, sizeof res->fingerprint, "%s", primary);
                upcase(res->fingerprint);
                (void)snprintf(res->uid, sizeof res->uid, "%s", uid);
                /* Only an exact match may feed the fast path (which looks keys up by fingerprint). */
                (void)snprintf(res->signing_key, sizeof res->signing_key, "%s", exact ? sub->fpr : "");
                upcase(res->signing_key);
                /* The earliest expiry of the (sub)key and its primary key; 0: never. */
                int64_t ex = sub->expires, pex = key->subkeys->expires;
                res->key_expires = ex > 0 && (pex <= 0 || ex < pex) ? ex : pex > 0 ? pex : 0;
                res->created = (int64_t)s->timestamp;
        }
        return true;
}

static int verify_run(struct verify_keyring *k, gpgme_data_t sig, gpgme_data_t signed_text, gpgme_data_t plain,
                      const char *what, struct verify_result *ret, struct mkm_err *reterr) {
        gpgme_error_t e = gpgme_op_verify(k->gctx, sig, signed_text, plain);
        gpgme_verify_result_t res = gpgme_op_verify_result(k->gctx);

        if (e) {
                if (gpgme_err_code(e) == GPG_ERR_NO_DATA)
                        return mkm_err_set(reterr, -MKM_E_SIG_BAD,
                                           "bad signature: the %s is not an OpenPGP signature (no signature packets found)", what);
                return mkm_err_set(reterr, -MKM_E_SIG_BAD, "bad signature: cannot check the %s: %s", what, gpgme_strerror(e));
        }
        if (!res || !res->signatures)
                return mkm_err_set(reterr, -MKM_E_SIG_BAD,
                                   "bad signature: the %s is not an OpenPGP signature (no signature packets found)", what);

        struct verify_result good = {};
        struct sig_verdict worst = { .r = 0, .severity = SEV_NONE };
        bool have_good = false;
        unsigned n = 0;
        for (gpgme_signature_t s = res->signatures; s; s = s->next, n++) {
                struct sig_verdict v = {};
                struct verify_result one = {};
                if (judge(k, s, &one, &v)) {
                        if (!have_good)
                                good = one;
                        have_good = true;
                        continue;
                }
                mkm_debug(k->ctx, "signature %u: %s", n, v.msg);
                if (v.severity > worst.severity)
                        worst = v;
        }
        if (worst.severity == SEV_BAD || !have_good)
                return mkm_err_set(reterr, worst.r ? worst.r : -MKM_E_SIG_MISSING, "%s",
                                   worst.r ? worst.msg : "no usable signature");
        mkm_debug(k->ctx, "good signature by %s '%s'", good.fingerprint, good.uid);
        if (ret)
                *ret = good;
        return 0;
}

/* ---- the native fast path ---- */

#define FAST_READ_CHUNK ((size_t)256 * 1024)

/* Whether sig is one the fast path may accept at all (else gpg decides). */
static bool fast_eligible(const struct pgp_sig *sig) {
        return sig->type == 0x00 && sig->created >= 0 && sig->created <= (int64_t)time(NULL) && !sig->has_expiry &&
               !sig->unknown_critical && !sig->ambiguous && (sig->issuer_fpr[0] || sig->issuer_keyid[0]);
}

/* The confirmed key that made sig and may still be used now, or NULL. With f->lock held. */
static const struct fast_key *fast_find(const struct fast *f, const struct pgp_sig *sig, int64_t now) {
        for (size_t i = 0; i < f->n; i++) {
                const struct fast_key *fk = &f->keys[i];
                const char *fpr = fk->key.fpr;
                if (!(sig->issuer_fpr[0] ? strcmp(fpr, sig->issuer_fpr) == 0
                                         : strcmp(fpr + strlen(fpr) - 16, sig->issuer_keyid) == 0))
                        continue;
                return fast_usable(fk, now) ? fk : NULL;        /* else: ask gpg again */
        }
        return NULL;
}

/* Check sig over data (len bytes) or, when data is NULL, over fd from offset off to its end,
 * without moving fd's offset. 0 and *ret filled when a confirmed key made a valid signature;
 * any other result means "ask gpg". */
static int fast_verify(struct verify_keyring *k, const void *data, size_t len, int fd, off_t off, const void *sigbuf,
                       size_t siglen, struct verify_result *ret) {
        struct fast *f = k->fast;
        if (!f)
                return -ENOTSUP;
        struct pgp_sig sig;
        int r = pgp_sig_parse(sigbuf, siglen, &sig);
        if (r < 0)
                return r;
        struct pgp_key key = {};
        struct verify_result res = {};
        pthread_mutex_lock(&f->lock);
        const struct fast_key *fk = fast_eligible(&sig) ? fast_find(f, &sig, (int64_t)time(NULL)) : NULL;
        if (fk) {
                /* Entries are never removed or changed while the keyring lives: borrow the key. */
                key = fk->key;
                (void)snprintf(res.fingerprint, sizeof res.fingerprint, "%s", fk->primary);
                (void)snprintf(res.uid, sizeof res.uid, "%s", fk->uid);
                (void)snprintf(res.signing_key, sizeof res.signing_key, "%s", fk->key.fpr);
                res.key_expires = fk->expires;
        }
        pthread_mutex_unlock(&f->lock);
        if (!fk) {
                pgp_sig_done(&sig);
                return -ENOKEY;
        }
        _cleanup_(pgp_hash_freep) struct pgp_hash *h = NULL;
        r = pgp_hash_new(&sig, &h);
        if (r >= 0 && data)
                r = pgp_hash_update(h, data, len);
        else if (r >= 0) {
                _cleanup_free_ uint8_t *buf = malloc(FAST_READ_CHUNK);
                if (!buf)
                        r = -ENOMEM;
                for (off_t pos = off; r >= 0;) {
                        ssize_t n = pread(fd, buf, FAST_READ_CHUNK, pos);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0) {
                                r = n < 0 ? negative_errno() : 0;
                                break;
                        }
                        r = pgp_hash_update(h, buf, (size_t)n);
                        pos += n;
                }
        }
        if (r >= 0)
                r = pgp_verify(&key, &sig, h);
        res.created = sig.created;
        pgp_sig_done(&sig);
        if (r < 0)
                return r;
        pthread_mutex_lock(&f->lock);
        f->native++;
        pthread_mutex_unlock(&f->lock);
        if (ret)
                *ret = res;
        return 0;
}

/* The trustdb's next check as of judged: the value read last while it lies ahead, else read
 * again (gpg's verification at judged brought a stale trustdb up to date). */
static int fast_nextcheck(struct verify_keyring *k, const char *fpr, int64_t judged, int64_t *ret) {
        struct fast *f = k->fast;
        pthread_mutex_lock(&f->lock);
        bool cached = f->have_nextcheck && (f->nextcheck == 0 || judged < f->nextcheck);
        *ret = f->nextcheck;
        pthread_mutex_unlock(&f->lock);
        if (cached)
                return 0;
        int64_t nc;
        int r = verify_trustdb_nextcheck(k, fpr, &nc);
        if (r < 0)
                return r;
        pthread_mutex_lock(&f->lock);
        f->nextcheck = nc;
        f->have_nextcheck = true;
        pthread_mutex_unlock(&f->lock);
        *ret = nc;
        return 0;
}

/* gpg accepted sig, made by res->signing_key, judging it at `judged` (the time before its
 * verdict): remember that key's material for the fast path, usable until the first of the times
 * that could change gpg's verdict (see FAST_TTL_SECONDS). Failing to is harmless (the next
 * signature goes to gpg again). */
static void fast_learn(struct verify_keyring *k, const void *sigbuf, size_t siglen, const struct verify_result *res,
                       int64_t judged) {
        struct fast *f = k->fast;
        if (!f)
                return;
        bool known = false, fresh = false;
        pthread_mutex_lock(&f->lock);
        f->gpg++;
        for (size_t i = 0; i < f->n && !known; i++)
                if (strcmp(f->keys[i].key.fpr, res->signing_key) == 0) {
                        known = true;
                        fresh = fast_usable(&f->keys[i], judged);
                }
        pthread_mutex_unlock(&f->lock);
        if (fresh || strlen(res->signing_key) != 40 || (res->key_expires > 0 && judged >= res->key_expires))
                return;
        if (!known) {
                struct pgp_sig sig;
                if (pgp_sig_parse(sigbuf, siglen, &sig) < 0)
                        return;
                bool eligible = fast_eligible(&sig);
                pgp_sig_done(&sig);
                if (!eligible)
                        return;
        }
        _cleanup_(gpgme_data_releasep) gpgme_data_t out = NULL;
        if (gpgme_data_new(&out) || gpgme_op_export(k->gctx, res->signing_key, 0, out))
                return;
        size_t len = 0;
        char *buf = gpgme_data_release_and_get_mem(out, &len);
        out = NULL;
        if (!buf)
                return;
        struct pgp_key *keys = NULL;
        size_t n = 0;
        int64_t sig_until = 0, nextcheck = 0;
        int r = pgp_keyblock_sig_expiry(buf, len, res->signing_key, judged, &sig_until);
        if (r >= 0)
                r = pgp_keys_parse(buf, len, &keys, &n);
        gpgme_free(buf);
        if (r < 0)
                return;
        if (fast_nextcheck(k, res->signing_key, judged, &nextcheck) < 0) {
                pgp_keys_free(keys, n);
                return;
        }
        int64_t until = earliest(earliest(res->key_expires, sig_until), nextcheck);
        if (until > 0 && judged >= until) {
                pgp_keys_free(keys, n);
                return;         /* stale trustdb: gpg alone, until it has brought it up to date */
        }
        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; i < n; i++) {
                if (!keys[i].pkey || strcmp(keys[i].fpr, res->signing_key) != 0)
                        continue;
                struct fast_key *have = NULL;   /* known, or another thread learnt it meanwhile */
                for (size_t j = 0; j < f->n && !have; j++)
                        if (strcmp(f->keys[j].key.fpr, res->signing_key) == 0)
                                have = &f->keys[j];
                if (have) {
                        /* gpg judged it again: good for another while. The material stays (the
                         * fast path may be reading it). */
                        have->learned = judged;
                        have->expires = res->key_expires;
                        have->until = until;
                        break;
                }
                struct fast_key *nk = mkm_reallocarray(f->keys, f->n + 1, sizeof *nk);
                if (!nk)
                        break;
                f->keys = nk;
                nk[f->n] = (struct fast_key){ .key = keys[i], .learned = judged, .expires = res->key_expires, .until = until };
                keys[i].pkey = NULL;    /* moved */
                (void)snprintf(nk[f->n].primary, sizeof nk[f->n].primary, "%s", res->fingerprint);
                (void)snprintf(nk[f->n].uid, sizeof nk[f->n].uid, "%s", res->uid);
                f->n++;
                break;
        }
        pthread_mutex_unlock(&f->lock);
        pgp_keys_free(keys, n);
}

void verify_keyring_stats(const struct verify_keyring *k, unsigned *ret_native, unsigned *ret_gpg) {
        unsigned a = 0, b = 0;
        if (k && k->fast) {
                pthread_mutex_lock(&k->fast->lock);
                a = k->fast->native;
                b = k->fast->gpg;
                pthread_mutex_unlock(&k->fast->lock);
        }
        if (ret_native)
                *ret_native = a;
        if (ret_gpg)
                *ret_gpg = b;
}

static int check_sig_size(size_t siglen, struct mkm_err *reterr) {
        if (siglen == 0)
                return mkm_err_set(reterr, -MKM_E_SIG_MISSING, "signature missing: the signature is empty");
        if (siglen > VERIFY_MAX_SIG)
                return mkm_err_set(reterr, -MKM_E_SIG_BAD, "bad signature: %zu bytes, more than the %zu a signature may have",
                                   siglen, VERIFY_MAX_SIG);
        return 0;
}

/* gpg's verdict on a detached signature; a good one teaches the fast path its key. */
static int detached_by_gpg(struct verify_keyring *k, gpgme_data_t s, gpgme_data_t d, const void *sig, size_t siglen,
                           struct verify_result *ret, struct mkm_err *reterr) {
        struct verify_result res;
        int64_t judged = (int64_t)time(NULL);
        int r = verify_run(k, s, d, NULL, "detached signature", &res, reterr);
        if (r < 0)
                return r;
        fast_learn(k, sig, siglen, &res, judged);
        if (ret)
                *ret = res;
        return 0;
}

int verify_detached(struct verify_keyring *k, const void *data, size_t len, const void *sig, size_t siglen,
                    struct verify_result *ret, struct mkm_err *reterr) {
        int r = check_sig_size(siglen, reterr);
        if (r < 0)
                return r;
        if (len > VERIFY_MAX_DATA)
                return mkm_err_set(reterr, -EFBIG, "signed data of %zu bytes exceeds the %zu byte limit", len, VERIFY_MAX_DATA);
        if (fast_verify(k, len ? data : "", len, -EBADF, 0, sig, siglen, ret) == 0)
                return 0;
        _cleanup_(gpgme_data_releasep) gpgme_data_t s = NULL, d = NULL;
        gpgme_error_t e = gpgme_data_new_from_mem(&s, sig, siglen, 0);
        if (!e)
                e = gpgme_data_new_from_mem(&d, len ? data : "", len, 0);
        if (e)
                return mkm_err_set(reterr, gpg_to_errno(e), "gpgme: %s", gpgme_strerror(e));
        return detached_by_gpg(k, s, d, sig, siglen, ret, reterr);
}

int verify_detached_fd(struct verify_keyring *k, int fd, const void *sig, size_t siglen,
                       struct verify_result *ret, struct mkm_err *reterr) {
        int r = check_sig_size(siglen, reterr);
        if (r < 0)
                return r;
        off_t off = lseek(fd, 0, SEEK_CUR);
        if (off >= 0 && fast_verify(k, NULL, 0, fd, off, sig, siglen, ret) == 0)
                return 0;
        _cleanup_(gpgme_data_releasep) gpgme_data_t s = NULL, d = NULL;
        gpgme_error_t e = gpgme_data_new_from_mem(&s, sig, siglen, 0);
        if (!e)
                e = gpgme_data_new_from_fd(&d, fd);
        if (e)
                return mkm_err_set(reterr, gpg_to_errno(e), "gpgme: %s", gpgme_strerror(e));
        return detached_by_gpg(k, s, d, sig, siglen, ret, reterr);
}

/* Count lines that open a clearsigned message (gpg accepts trailing whitespace on armor lines). */
static unsigned count_clearsign_headers(const char *p, size_t len) {
        static const char hdr[] = "-----BEGIN PGP SIGNED MESSAGE-----";
        const size_t hl = sizeof hdr - 1;
        unsigned n = 0;
        for (size_t i = 0; i < len;) {
                const char *nl = memchr(p + i, '\n', len - i);
                size_t end = nl ? (size_t)(nl - p) : len;
                if (end - i >= hl && memcmp(p + i, hdr, hl) == 0) {
                        size_t j = i + hl;
                        while (j < end && (p[j] == ' ' || p[j] == '\t' || p[j] == '\r'))
                                j++;
                        if (j == end)
                                n++;
                }
                i = end + 1;
        }
        return n;
}

int verify_clearsigned(struct verify_keyring *k, const void *data, size_t len, char **ret_text, size_t *ret_len,
                       struct verify_result *ret, struct mkm_err *reterr) {
        if (len > VERIFY_MAX_DATA)
                return mkm_err_set(reterr, -EFBIG, "clearsigned file of %zu bytes exceeds the %zu byte limit", len, VERIFY_MAX_DATA);
        unsigned n = count_clearsign_headers(data, len);
        if (n == 0)
                return mkm_err_set(reterr, -MKM_E_SIG_MISSING,
                                   "signature missing: no clearsigned message (-----BEGIN PGP SIGNED MESSAGE-----) in the input");
        if (n > 1)
                return mkm_err_set(reterr, -MKM_E_SIG_BAD,
                                   "bad signature: %u clearsigned messages in one file; refusing (only one is allowed)", n);

        _cleanup_(gpgme_data_releasep) gpgme_data_t s = NULL, plain = NULL;
        gpgme_error_t e = gpgme_data_new_from_mem(&s, data, len, 0);
        if (!e)
                e = gpgme_data_new(&plain);
        if (e)
                return mkm_err_set(reterr, gpg_to_errno(e), "gpgme: %s", gpgme_strerror(e));
        struct verify_result res;
        int r = verify_run(k, s, NULL, plain, "clearsigned message", &res, reterr);
        if (r < 0)
                return r;

        size_t plen = 0;
        char *p = gpgme_data_release_and_get_mem(TAKE_PTR(plain), &plen);
        if (!p && plen > 0)
                return -ENOMEM;
        char *text = malloc(plen + 1);
        if (!text) {
                gpgme_free(p);
                return -ENOMEM;
        }
        if (plen)
                memcpy(text, p, plen);
        text[plen] = 0;
        gpgme_free(p);
        *ret_text = text;
        if (ret_len)
                *ret_len = plen;
        if (ret)
                *ret = res;
        return 0;
}
