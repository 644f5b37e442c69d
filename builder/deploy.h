/* SPDX-License-Identifier: MIT */
/* Staging, the atomic deployment of a machine tree, rollback and removal.
 *
 * The layout is state.h's: the live tree HOST/var/lib/machines/NAME, kept generations beside it
 * as .#NAME.gen-N, staging roots .#NAME.XXXXXX, and HOST/var/lib/mkmachine/NAME/ with the
 * per-machine lock (.lock) and one gen/N directory per kept generation.
 *
 * Until the swap in deploy_commit() the deployed machine is untouched: a failed build removes its
 * staging root, and one that was killed leaves a staging root (and maybe an unfinished or
 * never-swapped generation) that the next command on that machine removes, under the same lock
 * (state_recover). machinectl ignores names starting with ".#". */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct mkm_ctx;
struct mkm_err;
struct machine_state;
struct state_new_gen;

struct deploy {
        char *name;
        char *machines_dir;     /* HOST/var/lib/machines */
        char *state_dir;        /* HOST/var/lib/mkmachine/NAME */
        char *target;           /* machines_dir/NAME */
        char *staging;          /* machines_dir/.#NAME.XXXXXX, NULL until deploy_stage() */
        int machines_fd;
        int lock_fd;            /* HOST/var/lib/mkmachine/NAME/.lock */
        bool locked;            /* ... and we hold it (deploy_begin succeeded in taking it) */
        int root_fd;            /* the staging root, -EBADF until deploy_stage() */
        int image_lock_fd;      /* systemd's image lock, held from deploy_check_replaceable() */
        struct machine_state *state;    /* loaded (after recovery) by deploy_begin() */
        struct deploy_writeback *wb;    /* background writeback, NULL when none runs */
};

/* Compute the paths, create the directories, take the per-machine lock (fails at once with a
 * clear message when another command on NAME runs), repair what an interrupted command left
 * (state_recover) and load the state into d->state. */
int deploy_begin(struct mkm_ctx *ctx, const char *name, struct deploy **ret, struct mkm_err *reterr);

/* May the live tree be replaced (action "replace", "roll back") or deleted ("remove")? Takes
 * systemd's image lock of the machine (state_image_lock) and keeps it until deploy_free(), so that
 * nspawn cannot start the machine meanwhile. Refused with -MKM_E_REFUSED, listing every reason,
 * unless ctx->force: the machine runs; a tree is at NAME without mkmachine's state ("not built by
 * mkmachine: N files would be lost"); the live tree drifted from its generation's manifest
 * (drift.h: changes made by hand that a rebuild would lose; runtime and time-only changes do not
 * count), listing the first 20 drift entries and how many more. */
int deploy_check_replaceable(struct mkm_ctx *ctx, struct deploy *d, const char *action, struct mkm_err *reterr);

/* Create the staging root (0755) and open it (d->root_fd, d->staging). */
int deploy_stage(struct deploy *d, struct mkm_err *reterr);

/* Start writing the staging tree back to disk in a background thread (one syncfs), so the
 * syncfs in deploy_commit() finds little left to do: the file data is written while the later,
 * CPU-bound stages (hooks, normalize, manifest) run. Optional; a failure to start is ignored. */
void deploy_writeback_start(struct deploy *d);

/* Deploy the staging tree as a new generation, in an order that leaves the old machine or the
 * new one after a crash or power loss at any point:
 *   1. syncfs the staging tree; write gen/N (g, with the staging root's DEV:INO) and fsync it;
 *   2. swap the tree into place: renameat2(RENAME_EXCHANGE) (a rename for the first one), fsync
 *      the machines dir -- the commit point;
 *   3. rename the old tree to .#NAME.gen-M (removing whatever is in the way first), fsync;
 *   4. install the host files from gen/N/host (and remove those the old generation had);
 *   5. prune the older generations beyond ctx->keep_generations (the most recently live kept).
 * *ret_gen = N. An error after step 2 says the machine is deployed. */
int deploy_commit(struct mkm_ctx *ctx, struct deploy *d, const struct state_new_gen *g, unsigned *ret_gen,
                  struct mkm_err *reterr);

/* Remove the non-live generations beyond ctx->keep_generations (those live most recently are
 * kept): each tree, then its state. Failures are warnings. deploy_commit() calls it; so may a
 * cleaner holding d (after deploy_begin). */
void deploy_prune(struct mkm_ctx *ctx, struct deploy *d);

/* Swap in the non-live generation that was live most recently (highest deployed SEQ), with its
 * host files, and keep the live one as .#NAME.gen-M. Twice returns to the start. */
int deploy_rollback(struct mkm_ctx *ctx, struct deploy *d, unsigned *ret_from, unsigned *ret_to,
                    struct mkm_err *reterr);

/* Remove the machine: its host files, its live tree, the kept generations, its state. */
int deploy_remove(struct mkm_ctx *ctx, struct deploy *d, struct mkm_err *reterr);

/* Remove the staging root if it still exists (after a failure), release the locks, free. */
struct deploy *deploy_free(struct deploy *d);
static inline void deploy_freep(struct deploy **d) { (void)deploy_free(*d); }

/* A name commands on an existing machine accept: 1 to 64 letters, digits, '-', '_' and '.', not
 * starting with '-' or '.' (a plain file name). */
bool deploy_name_is_valid(const char *name);
/* A name a new machine may get (build's Name=, import): what systemd takes as a machine name
 * (hostname_is_valid()), which systemd-nspawn and machinectl require. */
bool deploy_machine_name_is_valid(const char *name);
