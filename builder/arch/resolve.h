/* SPDX-License-Identifier: MIT */
/* Dependency resolution for Arch sync dbs, with pacman's semantics (libalpm deps.c/sync.c as of
 * pacman 6): a target is a package name, a versioned name ("openssl>=3") or a group; the first
 * db whose package of that name satisfies the constraint wins, then providers in db order and
 * name order (the first is what `pacman --noconfirm` picks) unless the recipe names one with
 * Provider=virtual:pkg; a provider that is itself a target satisfies a dependency; cycles are
 * broken as _alpm_sortbydeps breaks them; inner conflicts remove the package another target
 * provides, or fail. The result is pacman's install order: dependencies first. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct mkm_ctx;
struct mkm_err;
struct repo_alpm_db;
struct repo_alpm_pkg;

struct resolve_item {
        const struct repo_alpm_pkg *pkg;        /* borrowed from the dbs */
        bool explicit;                          /* a target (no %REASON%), else a dependency */
};

struct resolve_plan {
        struct resolve_item *items;             /* install order */
        size_t n;
};

/* dbs in priority order (the recipe's Repositories=). targets: Packages= entries. providers:
 * "virtual:pkg" strings (may be NULL). Errors: -MKM_E_DEP_UNSAT naming the chain
 * ("app -> libfoo>=2: only 1.4-1 available"), -MKM_E_CONFLICT, -MKM_E_RECIPE for a malformed
 * target. ret is borrowed from dbs: keep them alive while it lives. */
int resolve_arch(struct mkm_ctx *ctx, struct repo_alpm_db *const *dbs, size_t ndbs, char *const *targets,
                 char *const *providers, struct resolve_plan **ret, struct mkm_err *reterr);

struct resolve_plan *resolve_plan_free(struct resolve_plan *p);
static inline void resolve_plan_freep(struct resolve_plan **p) { (void)resolve_plan_free(*p); }
