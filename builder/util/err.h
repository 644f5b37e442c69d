/* SPDX-License-Identifier: MIT */
/* Error codes and the error context every fallible stage fills in.
 *
 * Fallible functions return int: >= 0 success, negative errno or negative MKM_E_* failure.
 * Domain codes start at 1024 so they never collide with errno (as apk's APKE_*). */
#pragma once

#include <stdarg.h>

enum {
        MKM_E_BASE = 1024,
        MKM_E_PARSE,            /* malformed input file (recipe, index, lock) */
        MKM_E_RECIPE,           /* recipe is well-formed but invalid */
        MKM_E_USAGE,            /* bad command line */
        MKM_E_FETCH,            /* download failed after retries on every mirror */
        MKM_E_HTTP,             /* permanent HTTP error (4xx) */
        MKM_E_TOO_BIG,          /* body larger than the metadata promised */
        MKM_E_DIGEST_MISMATCH,  /* sha256 or size differs from the metadata */
        MKM_E_SIG_BAD,          /* signature does not match the data */
        MKM_E_SIG_UNTRUSTED,    /* signed by a key not in the keyring */
        MKM_E_SIG_EXPIRED,      /* key or signature expired */
        MKM_E_SIG_REVOKED,      /* key revoked */
        MKM_E_SIG_MISSING,      /* no signature where one is required */
        MKM_E_DEP_UNSAT,        /* dependency cannot be satisfied */
        MKM_E_CONFLICT,         /* package conflict or file conflict */
        MKM_E_UNSAFE_PATH,      /* archive entry would escape the root or is not allowed */
        MKM_E_LOCK,             /* lock file missing, stale or not covering the recipe */
        MKM_E_SCRIPT,           /* install script or hook failed */
        MKM_E_ARCHIVE,          /* libarchive reported a malformed archive */
        MKM_E_BADDATA,          /* malformed repository or package data (not the user's input) */
        MKM_E_REFUSED,          /* would replace or delete what --force must confirm (no state, running) */
        MKM_E_IDENTITY,         /* cannot take a recipe owner's file system identity (no CAP_SETUID/CAP_SETGID) */
        MKM_E_ANYONE_WRITES,    /* a source in (or is) a directory anyone can write: not taken as the recipe's */
        MKM_E_USERDB,           /* the user database cannot tell a recipe owner's groups (NSS error, entry too large) */
        MKM_E_MAX,
};

/* Where and why something failed. Filled by whoever detects the failure; printed only by the CLI. */
struct mkm_err {
        int code;               /* the negative code that was returned, 0 if none */
        char msg[2048];         /* "file:line: [Section] Key=: what was expected", or similar */
};

/* Record a failure and return r (which must be negative), so callers can write
 *     return mkm_err_set(err, -EINVAL, "%s:%u: ...", file, line);
 * err may be NULL. A later call overwrites an earlier one. */
int mkm_err_set(struct mkm_err *err, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int mkm_err_setv(struct mkm_err *err, int r, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

/* Prefix the recorded message with "prefix: " (e.g. a file name or a package); returns r. */
int mkm_err_prefix(struct mkm_err *err, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Human text for a negative code (errno or MKM_E_*). Borrowed static string. */
const char *mkm_strerror(int r);
