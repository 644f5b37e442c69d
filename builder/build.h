/* SPDX-License-Identifier: MIT */
/* The build pipeline: recipe -> plan (resolve or lock) -> fetch -> verify -> stage -> package db
 * -> distribution scripts -> recipe hooks -> normalize -> manifest -> deploy. Distribution
 * specifics sit behind backend_ops (backend.h); build.c drives every backend the same way. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mkm_ctx;
struct mkm_err;
struct recipe;
struct cache;
struct deploy;
struct lock;
struct lock_diff;

struct build {
        struct mkm_ctx *ctx;
        const struct recipe *recipe;
        struct cache *cache;
        struct deploy *deploy;          /* NULL for plan-only runs (mkmachine lock) */
        struct lock *lock_in;           /* the recipe's existing lock, NULL if none or ignored */
        struct lock *lock_out;          /* set by the backend: what was (or would be) installed */
        char *inputs;                   /* digest of the recipe's [Bootstrap] inputs: "sha256:..." */
        char *lock_path;                /* RECIPE.lock (or build_opts' lock_path) */
        bool lock_beside;               /* lock_path is RECIPE.lock: it came with the recipe, read
                                         * and written only beside it (read_lock_file()) */
        uid_t lock_reader;              /* with lock_beside: it is read with this owner's
                                         * permissions, as the recipe's sources are */
        const char *origin;             /* the recipe file the state records (build_opts) */
        bool plan_only;
        bool metadata_only;             /* with plan_only: stop after the plan, download no package
                                         * and nothing only a package check needs (mkmachine plan) */
        bool write_lock;                /* write lock_out to lock_path when it changed */
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
        struct lock_diff *changes;      /* the packages against the generation this build replaced;
                                         * NULL when there was none (or its lock was unreadable) */
};
void build_result_done(struct build_result *r);


/* Build the recipe at path and deploy it. */
int build_machine(struct mkm_ctx *ctx, const char *recipe_path, struct build_result *ret, struct mkm_err *reterr);

/* How a build finds its lock (mkmachine rebuild). Zero means build_machine()'s way. */
struct build_opts {
        bool stored;            /* the recipe is a generation's stored one (rebuild): no lock is
                                 * read or written beside it */
        const char *lock_path;  /* with stored: the lock to build from; NULL: resolve */
        bool update;            /* ignore every lock: resolve from the repositories again */
        const char *origin;     /* the recipe file the user wrote, as the state records it
                                 * (recipe-path); NULL: recipe_path; "": unknown, none recorded */
        char *const *recipe_files;      /* the files the stored recipe was made from (its
                                         * recipe-files): Copy= and RootAuthorizedKeys= sources
                                         * must lie beside one of them, as at the first build */
        bool has_reader;        /* reader: the generation's recipe-reader, whose permissions the
                                 * first build read the sources with (recipe.h reader_uid) */
        uid_t reader;
        /* Called with the loaded recipe once the machine's build lock is held and before anything
         * is fetched or staged (the CLI's privileges check, privileges.h): a negative return stops
         * the build with it. NULL: none. */
        int (*gate)(void *userdata, struct mkm_ctx *ctx, const struct recipe *r, struct mkm_err *reterr);
        void *gate_userdata;
};
int build_machine_opts(struct mkm_ctx *ctx, const char *recipe_path, const struct build_opts *o,
                       struct build_result *ret, struct mkm_err *reterr);

/* mkmachine plan: what a build of the recipe would install, from the metadata alone. */
struct build_plan {
        char *name;             /* the machine */
        char *lock_path;        /* RECIPE.lock */
        bool from_lock;         /* the set is RECIPE.lock's (it covers the recipe), not resolved */
        struct lock *set;       /* the set, in install order, with sizes */
        struct lock *lock;      /* RECIPE.lock as it is (even when it no longer covers the
                                 * recipe); NULL when there is none */
        struct lock *deployed;  /* the deployed machine's lock; NULL when not deployed */
        struct lock_diff *vs_lock;      /* lock -> set; NULL when there is no lock */
        struct lock_diff *vs_deployed;  /* deployed -> set; NULL when not deployed */
};
void build_plan_done(struct build_plan *p);

/* Resolve (or, unless update, take RECIPE.lock when it covers the recipe) without building:
 * only repository metadata is downloaded, never a package or its signature. */
int build_plan(struct mkm_ctx *ctx, const char *recipe_path, bool update, struct build_plan *ret,
               struct mkm_err *reterr);

/* lock_diff() with the version order of old's and new's distribution (strcmp when they differ
 * or no backend knows it). */
int build_lock_diff(const struct lock *old, const struct lock *new, struct lock_diff **ret);

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

