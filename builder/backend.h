/* SPDX-License-Identifier: MIT */
/* One distribution behind one interface. build.c drives every backend the same way:
 *
 *     ops = backend_for(recipe)           the one table of distributions (build.c)
 *     ops->inputs(recipe)                 into the lock's inputs digest
 *     be = ops->new(b)
 *     ops->plan(be)                       b->lock_out: the exact, ordered package set
 *     (build.c: the SOURCE_DATE_EPOCH default and the hooks' precheck, unless plan_only)
 *     if plan_only and !ops->lock_needs_packages: done
 *     ops->sources(be, &items, &trust)    where each package comes from and how it is trusted
 *     pipeline_start(items, trust)        downloads + trust checks, overlapped (pipeline.h)
 *     if plan_only: pipeline_wait_all(); ops->lock_done(be, pipeline); done
 *     ops->install_begin(be)
 *     for i in order: pipeline_wait(i); ops->install_one(be, i, fd of the trusted file, signer)
 *     pipeline_finish(); ops->install_end(be)
 *     pipeline_free(); ops->free(be)      (also on every failure, in that order)
 *
 * Obligations of a backend (what build.c relies on):
 *   inputs         the recipe's distribution-specific [Bootstrap] inputs as "key value" lines
 *                  (build.c adds distribution, architecture, snapshot, packages, providers);
 *                  what it writes changes every existing lock's digest, so keep it stable.
 *   plan           set b->lock_out (from b->lock_in when set: re-check it against what the
 *                  recipe allows, never trust it blindly; else by resolving from the
 *                  repository metadata, which it downloads with pipeline_fetch_batch and
 *                  verifies before any parser runs). May propose b->source_date_epoch (e.g. the
 *                  Release's Date) for build.c's default, which is: --source-date-epoch, else
 *                  Snapshot=, else the backend's proposal, else the newest BUILDDATE of the
 *                  lock. Never download a package here. With b->metadata_only (mkmachine
 *                  plan) fetch nothing the set itself does not need (Arch: no package .sig).
 *   sources        one pipeline_item per lock package, in the lock's order: URLs in failover
 *                  order, sha256 and size from verified metadata, and the trust model (with
 *                  DETACHED_SIG, the keyring, owned by the backend). Refuse what cannot be
 *                  trusted here, before anything is downloaded.
 *   lock_done      (only with lock_needs_packages) record in b->lock_out what the checked
 *                  packages tell (Arch: the keys that signed them, from pipeline_wait's signer).
 *   install_begin  prepare the staging root (b->deploy->root_fd) for the first package.
 *   install_one    install package i from fd (read-only, at offset 0, borrowed: build.c
 *                  closes it; trusted by the pipeline; signer "" unless DETACHED_SIG): extract
 *                  through extract.h only, record it in the distribution's package db.
 *   install_end    what the distribution does after the last package (scriptlets, hooks,
 *                  configure), in the sandbox (sandbox.h), and the machine's own package
 *                  manager configuration (mirrors, keys).
 *   free           everything new() and the rest allocated; called after pipeline_free() (the
 *                  pipeline borrows the items and the keyring), also after any failure.
 *   Messages go into reterr (STYLE §4); progress through mkm_emit. build.c emits the stage
 *   "installing packages" after install_begin and the progress "installing" n/m after each
 *   install_one.
 *
 * How to add a backend: put it in builder/NAME/, one file NAME.c with a `const struct
 * backend_ops backend_NAME` (it completes `struct backend` for itself), its formats in their
 * own files beside it (repository index, package db, versions, resolver), add it to the table
 * in backend_for() (build.c: one line) and to recipe.h's enum, add its keyring to keys/ and its
 * recipes' keys to mkmachine.recipe(5). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "pipeline.h"

struct build;
struct mkm_err;
struct recipe;
struct backend;

struct backend_ops {
        const char *distribution;
        /* mkmachine lock must download and check the packages (Arch records their signers). */
        bool lock_needs_packages;
        /* The distribution's version order (<0, 0, >0), for lock_diff(). */
        int (*vercmp)(const char *a, const char *b);
        /* *ret: "key value\n" lines, caller frees. A pure function of the recipe. */
        int (*inputs)(const struct recipe *r, char **ret);
        int (*new)(struct build *b, struct backend **ret, struct mkm_err *reterr);
        int (*plan)(struct backend *be, struct mkm_err *reterr);
        /* *ret_items (n = the lock's count) is owned by the backend and valid until free. */
        int (*sources)(struct backend *be, const struct pipeline_item **ret_items, enum pipeline_trust *ret_trust,
                       struct verify_keyring **ret_keyring, struct mkm_err *reterr);
        /* After pipeline_wait_all for `mkmachine lock` (only when lock_needs_packages); p may be
         * asked again with pipeline_wait(). */
        int (*lock_done)(struct backend *be, struct pipeline *p, struct mkm_err *reterr);
        int (*install_begin)(struct backend *be, struct mkm_err *reterr);
        int (*install_one)(struct backend *be, size_t i, int fd, const char *signer, struct mkm_err *reterr);
        int (*install_end)(struct backend *be, struct mkm_err *reterr);
        void (*free)(struct backend *be);
};

extern const struct backend_ops backend_arch;
extern const struct backend_ops backend_debian;        /* builder/debian/debian.c */
