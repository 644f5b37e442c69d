/* SPDX-License-Identifier: MIT */
/* One distribution behind one interface. build.c drives every backend the same way:
 *
 *     be = ops->new(b)
 *     ops->plan(be)                       b->lock_out: the exact, ordered package set
 *     ops->sources(be, &items, &trust)    where each package comes from and how it is trusted
 *     pipeline_start(items, trust)        downloads + trust checks, overlapped (pipeline.h)
 *     if plan_only: ops->lock_done(be) after pipeline_wait_all when ops->lock_needs_packages
 *     ops->install_begin(be)
 *     for i in order: pipeline_wait(i); ops->install_one(be, i, fd of the trusted file)
 *     pipeline_finish(); ops->install_end(be)
 *     ops->free(be)
 *
 * Obligations of a backend (what build.c relies on):
 *   plan           set b->lock_out (from b->lock_in when set: re-check it against what the
 *                  recipe allows, never trust it blindly; else by resolving from the
 *                  repository metadata, which it downloads with pipeline_fetch_batch and
 *                  verifies before any parser runs). Set b->source_date_epoch's default. Never
 *                  download a package here.
 *   sources        one pipeline_item per lock package, in the lock's order: URLs in failover
 *                  order, sha256 and size from verified metadata, and the trust model.
 *   install_begin  prepare the staging root (b->deploy->root_fd) for the first package.
 *   install_one    install package i from fd (read-only, trusted by the pipeline): extract
 *                  through extract.h only, record it in the distribution's package db.
 *   install_end    what the distribution does after the last package (scriptlets, hooks,
 *                  configure), in the sandbox (sandbox.h), and the machine's own package
 *                  manager configuration (mirrors, keys).
 *   Messages go into reterr (STYLE §4); progress through mkm_emit.
 *
 * How to add a backend: put it in builder/NAME/, one file NAME.c with a `const struct
 * backend_ops backend_NAME`, its formats in their own files beside it (repository index,
 * package db, versions, resolver), register it in backend_for() (build.c) and in
 * recipe.h's enum, add its keyring to keys/ and its recipes' keys to mkmachine.recipe(5). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "pipeline.h"

struct build;
struct mkm_err;
struct backend;

struct backend_ops {
        const char *distribution;
        /* mkmachine lock must download and check the packages (Arch records their signers). */
        bool lock_needs_packages;
        int (*new)(struct build *b, struct backend **ret, struct mkm_err *reterr);
        int (*plan)(struct backend *be, struct mkm_err *reterr);
        /* *ret_items (n = the lock's count) is owned by the backend and valid until free. */
        int (*sources)(struct backend *be, const struct pipeline_item **ret_items, enum pipeline_trust *ret_trust,
                       struct verify_keyring **ret_keyring, struct mkm_err *reterr);
        /* After pipeline_wait_all for `mkmachine lock` (only when lock_needs_packages). */
        int (*lock_done)(struct backend *be, struct pipeline *p, struct mkm_err *reterr);
        int (*install_begin)(struct backend *be, struct mkm_err *reterr);
        int (*install_one)(struct backend *be, size_t i, int fd, const char *signer, struct mkm_err *reterr);
        int (*install_end)(struct backend *be, struct mkm_err *reterr);
        void (*free)(struct backend *be);
};

extern const struct backend_ops backend_arch;
extern const struct backend_ops backend_debian;
