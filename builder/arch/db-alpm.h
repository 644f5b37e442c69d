/* SPDX-License-Identifier: MIT */
/* pacman's local database: write var/lib/pacman/local as pacman 6.0.2 does (ALPM_DB_VERSION 9; NAME-VERSION/{desc,files,mtree[,install]}), so that
 * `pacman --root R -Qkk` inside the machine is clean afterwards. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mkm_ctx;
struct mkm_err;
struct extract_result;
struct pkginfo;

/* A package's metadata members (extract_opts.meta_names; read back with extract_result_meta()). */
#define DB_ALPM_PKGINFO ".PKGINFO"
#define DB_ALPM_MTREE ".MTREE"          /* gzip'd mtree, copied verbatim to the db */
#define DB_ALPM_INSTALL ".INSTALL"      /* the scriptlet */
extern const char *const db_alpm_meta_names[];  /* the three above, NULL-terminated */

enum db_alpm_validation {
        DB_ALPM_VALIDATION_SHA256 = 1 << 0,     /* the file matched the db's %SHA256SUM% */
        DB_ALPM_VALIDATION_PGP = 1 << 1,        /* its signature verified */
};

/* Create var/lib/pacman/local/ALPM_DB_VERSION under rootfd. */
int db_alpm_init(int rootfd, struct mkm_err *reterr);

/* Write one package's entry. explicit: installed as a target (no %REASON%) or as a dependency
 * (%REASON% 1). installdate: SOURCE_DATE_EPOCH for reproducibility. */
int db_alpm_write_pkg(struct mkm_ctx *ctx, int rootfd, const struct pkginfo *pi, const struct extract_result *x,
                      bool explicit, int64_t installdate, unsigned validation, struct mkm_err *reterr);
