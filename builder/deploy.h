/* SPDX-License-Identifier: MIT */
/* Staging and atomic deployment of a machine tree.
 *
 *   HOST/var/lib/machines/.#NAME.XXXXXX   the staging root (same file system as the target)
 *   HOST/var/lib/machines/NAME            the deployed machine
 *   HOST/var/lib/machines/.#NAME.prev     the previous generation, kept for rollback
 *   HOST/var/lib/mkmachine/NAME/          state: recipe copy, lock, manifest; .lock serialises builds
 *
 * Until deploy_swap() the deployed machine is untouched: a failed build removes its staging root,
 * and one that was killed leaves a staging root the next build of that name removes (under the
 * same lock). machinectl ignores names starting with ".#". */
#pragma once

#include <stdbool.h>

struct mkm_ctx;
struct mkm_err;

struct deploy {
        char *name;
        char *machines_dir;     /* HOST/var/lib/machines */
        char *state_dir;        /* HOST/var/lib/mkmachine/NAME */
        char *target;           /* machines_dir/NAME */
        char *staging;          /* machines_dir/.#NAME.XXXXXX, NULL until deploy_stage() */
        int machines_fd;
        int lock_fd;
        int root_fd;            /* the staging root, -EBADF until deploy_stage() */
        struct deploy_writeback *wb;    /* background writeback, NULL when none runs */
};

/* Compute the paths, create the directories, take the per-machine build lock (fails at once with
 * a clear message when another build of NAME runs) and remove stale staging roots. */
int deploy_begin(struct mkm_ctx *ctx, const char *name, struct deploy **ret, struct mkm_err *reterr);

/* Create the staging root (0755) and open it (d->root_fd, d->staging). */
int deploy_stage(struct deploy *d, struct mkm_err *reterr);

/* Start writing the staging tree back to disk in a background thread (one syncfs), so the
 * syncfs in deploy_swap() finds little left to do: the file data is written while the later,
 * CPU-bound stages (hooks, normalize, manifest) run. Optional; a failure to start is ignored. */
void deploy_writeback_start(struct deploy *d);

/* syncfs the staging tree, then swap it into place with renameat2(RENAME_EXCHANGE) (or a plain
 * rename when there is no machine yet), keeping the old tree as .#NAME.prev. */
int deploy_swap(struct mkm_ctx *ctx, struct deploy *d, struct mkm_err *reterr);

/* Remove the staging root if it still exists (after a failure), release the lock, free. */
struct deploy *deploy_free(struct deploy *d);
static inline void deploy_freep(struct deploy **d) { (void)deploy_free(*d); }

/* Validate a machine name as systemd does for machine names (hostname-like). */
bool deploy_name_is_valid(const char *name);
