/* SPDX-License-Identifier: MIT */
/* Error codes and the error context. */
#include "err.h"

#include <stdio.h>
#include <string.h>

int mkm_err_setv(struct mkm_err *err, int r, const char *fmt, va_list ap) {
        if (err) {
                err->code = r;
                (void)vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        }
        return r;
}

int mkm_err_set(struct mkm_err *err, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        (void)mkm_err_setv(err, r, fmt, ap);
        va_end(ap);
        return r;
}

int mkm_err_prefix(struct mkm_err *err, int r, const char *fmt, ...) {
        char prefix[512], old[sizeof err->msg];
        va_list ap;

        if (!err)
                return r;
        va_start(ap, fmt);
        (void)vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, err->msg, sizeof old);
        if (old[0])
                (void)snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
        else
                (void)snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, mkm_strerror(r));
        err->code = r;
        return r;
}

static const char *const domain_msgs[MKM_E_MAX - MKM_E_BASE] = {
        [MKM_E_PARSE - MKM_E_BASE] = "malformed input",
        [MKM_E_RECIPE - MKM_E_BASE] = "invalid recipe",
        [MKM_E_USAGE - MKM_E_BASE] = "invalid usage",
        [MKM_E_FETCH - MKM_E_BASE] = "download failed",
        [MKM_E_HTTP - MKM_E_BASE] = "server refused the request",
        [MKM_E_TOO_BIG - MKM_E_BASE] = "file larger than promised",
        [MKM_E_DIGEST_MISMATCH - MKM_E_BASE] = "checksum mismatch",
        [MKM_E_SIG_BAD - MKM_E_BASE] = "bad signature",
        [MKM_E_SIG_UNTRUSTED - MKM_E_BASE] = "signature by an unknown or untrusted key",
        [MKM_E_SIG_EXPIRED - MKM_E_BASE] = "signature or key expired",
        [MKM_E_SIG_REVOKED - MKM_E_BASE] = "signing key revoked",
        [MKM_E_SIG_MISSING - MKM_E_BASE] = "signature missing",
        [MKM_E_DEP_UNSAT - MKM_E_BASE] = "unsatisfiable dependency",
        [MKM_E_CONFLICT - MKM_E_BASE] = "conflict",
        [MKM_E_UNSAFE_PATH - MKM_E_BASE] = "unsafe path in archive",
        [MKM_E_LOCK - MKM_E_BASE] = "lock file problem",
        [MKM_E_SCRIPT - MKM_E_BASE] = "install script failed",
        [MKM_E_ARCHIVE - MKM_E_BASE] = "malformed archive",
        [MKM_E_ANYONE_WRITES - MKM_E_BASE] = "in (or is) a directory anyone can write",
        [MKM_E_IDENTITY - MKM_E_BASE] = "cannot take the recipe owner's permissions (needs CAP_SETUID and CAP_SETGID; in a user "
                                              "namespace, the owner's uid and groups mapped and setgroups allowed)",
        [MKM_E_BADDATA - MKM_E_BASE] = "malformed repository data",
        [MKM_E_USERDB - MKM_E_BASE] = "cannot look up the recipe owner's groups in the user database (its entry "
                                      "cannot be read, or is larger than 1 MiB)",
        [MKM_E_REFUSED - MKM_E_BASE] = "refused (--force overrides)",
};

const char *mkm_strerror(int r) {
        if (r < 0)
                r = -r;
        if (r > MKM_E_BASE && r < MKM_E_MAX && domain_msgs[r - MKM_E_BASE])
                return domain_msgs[r - MKM_E_BASE];
        if (r > 0 && r < MKM_E_BASE)
                return strerror(r);
        return "unknown error";
}
