/* SPDX-License-Identifier: MIT */
/* The context main() builds and passes to every stage. No other global state exists. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/log.h"

struct sandbox_cache;

struct mkm_ctx {
        const char *host_root;          /* "/" unless --host-root; every host path is under it */
        const char *cache_dir;          /* content-addressed download cache */
        const char *keys_dir;           /* trusted keyrings (keys/ in a checkout) */
        unsigned jobs;                  /* parallel transfers, >= 1 */
        int verbosity;                  /* -1 quiet, 0 normal, 1 verbose */
        bool json;                      /* machine-readable output requested */
        bool locked;                    /* --locked: the lock must cover the recipe */
        bool force;                     /* --force: replace or delete what would otherwise be refused */
        bool allow_new_privileges;      /* --allow-new-privileges: a build may grant the machine more on
                                         * the host than its deployed generation has (privileges.h) */
        unsigned keep_generations;      /* older generations kept beside the live tree (default 1) */
        int64_t source_date_epoch;      /* clamps every time stamp the build writes */
        unsigned systemd_version;       /* host systemd version, 0 = detect */
        struct mkm_events events;
        struct sandbox_cache *sandbox;  /* shared by a build's sandbox runs (sandbox.h); set by
                                         * build_machine_opts() for its duration; NULL: each run
                                         * makes its own */
};
