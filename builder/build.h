/* SPDX-License-Identifier: MIT */
/* The build pipeline: recipe -> plan (resolve or lock) -> fetch -> verify -> stage -> package db
 * -> distribution scripts -> recipe hooks -> normalize -> manifest -> deploy. Distribution
 * specifics sit behind backend_ops (backend.h); build.c drives every backend the same way. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mkm_ctx;
struct mkm_err;
struct recipe;
struct cache;
struct deploy;
struct lock;

struct build {
        struct mkm_ctx *ctx;
        const struct recipe *recipe;
        struct cache *cache;
        struct deploy *deploy;          /* NULL for plan-only runs (mkmachine lock) */
        struct lock *lock_in;           /* the recipe's existing lock, NULL if none or ignored */
        struct lock *lock_out;          /* set by the backend: what was (or would be) installed */
        char *inputs;                   /* digest of the recipe's [Bootstrap] inputs: "sha256:..." */
        char *lock_path;                /* RECIPE.lock */
        bool plan_only;
        int64_t source_date_epoch;      /* -1, or what the backend's plan proposes; then resolved by
                                         * build.c before the install: ctx's, else the snapshot's, else
                                         * the backend's proposal, else the newest BUILDDATE */
};

/* What a build did, for the CLI to report. */
struct build_result {
        char *name;
        char *target;           /* the deployed tree */
        char *lock_path;
        bool lock_written;      /* the lock was created or rewritten */
        size_t packages;
        int64_t source_date_epoch;
        char *digest;           /* "sha256:..." of the tree's manifest: equal digests, equal machines */
        unsigned generation;    /* the generation it deployed as (state.h) */
};
void build_result_done(struct build_result *r);


/* Build the recipe at path and deploy it. */
int build_machine(struct mkm_ctx *ctx, const char *recipe_path, struct build_result *ret, struct mkm_err *reterr);

/* Re-resolve the recipe and rewrite RECIPE.lock without building. */
int build_lock(struct mkm_ctx *ctx, const char *recipe_path, struct build_result *ret, struct mkm_err *reterr);

/* SOURCE_DATE_EPOCH for b after its plan: ctx's (--source-date-epoch), else the recipe's
 * Snapshot= date, else what the backend's plan proposed in b->source_date_epoch, else the newest
 * BUILDDATE in b->lock_out (0 when none is known). Exposed for tests. */
int64_t build_default_epoch(const struct build *b);

/* The digest of what determines the package set: distribution, architecture, snapshot, the
 * backend's inputs (repositories, or suite/components, ...), packages, providers. Caller owns
 * *ret ("sha256:<hex>"). -EOPNOTSUPP for a distribution no backend handles. */
int build_inputs_digest(const struct recipe *r, char **ret);

