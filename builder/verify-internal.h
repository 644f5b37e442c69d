/* SPDX-License-Identifier: MIT */
/* What verify.c (the verdicts, the fast path) and verify-keyring.c (the private GNUPGHOME) share.
 * Private to those two files: other modules include verify.h. */
#pragma once

#include <ctype.h>
#include <errno.h>
#include <gpgme.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/cleanup.h"

struct fast;
struct mkm_ctx;

/* A keyring handle (verify.h). verify-keyring.c makes, clones and frees it; verify.c reads gctx,
 * revoked and ctx, and fills seen and fast as it verifies. */
struct verify_keyring {
        struct mkm_ctx *ctx;
        char *home;                     /* the temporary GNUPGHOME, removed by _free */
        gpgme_ctx_t gctx;
        char *gpg;                      /* engine binary, from gpgme */
        char *gpgconf;
        char **revoked;                 /* upper-case fingerprints from *-revoked files */
        pid_t agent_pid;                /* our gpg-agent (populate_trusted), 0 when none runs */
        int home_lock_fd;               /* flock'ed home while we live (verify_remove_stale_homes) */
        unsigned n_keys;
        bool borrowed;                  /* a clone: home, revoked and engines belong to the original */
        gpgme_key_t *seen;              /* keys looked up so far (each gpgme_get_key costs two gpg runs) */
        size_t n_seen;
        struct fast *fast;              /* shared with the clones; the original frees it */
};

DEFINE_TRIVIAL_CLEANUP_FUNC(gpgme_data_t, gpgme_data_release)
DEFINE_TRIVIAL_CLEANUP_FUNC(gpgme_key_t, gpgme_key_unref)

/* Translate a gpgme error at the module edge, keeping gpgme's message. */
static inline int gpg_to_errno(gpgme_error_t e) {
        int r = gpgme_err_code_to_errno(gpgme_err_code(e));
        return r > 0 ? -r : -EIO;
}

/* Upper-case an ASCII string (a fingerprint) in place. */
static inline void upcase(char *s) {
        for (; *s; s++)
                *s = (char)toupper((unsigned char)*s);
}

/* The fast path's state, made with each new keyring and shared with its clones; the original frees
 * it (verify_keyring_free). verify_fast_new() returns NULL when out of memory; verify_fast_free()
 * accepts NULL and returns NULL. */
struct fast *verify_fast_new(void);
/* When gpg checks k's trustdb next (the "tru:" record's field 5: "next trustdb check due at"),
 * 0 for never. Runs gpg, reads only; thread-safe. -ENODATA when gpg lists no trustdb record. */
int verify_trustdb_nextcheck(struct verify_keyring *k, const char *fpr, int64_t *ret);
struct fast *verify_fast_free(struct fast *f);
