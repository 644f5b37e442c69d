/* SPDX-License-Identifier: MIT */
/* Dependency resolution for Debian indexes with apt's default choices, and mmdebstrap's variants.
 *
 * Variants (mmdebstrap(1)): extract (only Packages=, no dependencies, nothing configured), custom
 * (Packages= and their dependencies), essential (Essential: yes and their dependencies), apt
 * (essential + apt), required = minbase (apt + Priority: required), buildd (apt +
 * build-essential), important = debootstrap (required + Priority: important), standard
 * (important + Priority: standard). Packages= adds to the variant's set.
 *
 * Choices are deterministic and those of `apt-get install` with Install-Recommends off: an
 * alternative group is satisfied by any package already selected; otherwise the first
 * alternative that has a candidate satisfying the version (a real package first, else a
 * provider); the candidate of a name is the highest version among the indexes for the native
 * architecture or "all" (ties: the earlier index). Depends and Pre-Depends are followed;
 * Conflicts and Breaks among the selected set are refused, naming both packages. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct mkm_ctx;
struct mkm_err;
struct deb_index;
struct deb_pkg;

enum deb_variant {
        DEB_VARIANT_EXTRACT,
        DEB_VARIANT_CUSTOM,
        DEB_VARIANT_ESSENTIAL,
        DEB_VARIANT_APT,
        DEB_VARIANT_MINBASE,    /* also "required" */
        DEB_VARIANT_BUILDD,
        DEB_VARIANT_IMPORTANT,  /* also "debootstrap" */
        DEB_VARIANT_STANDARD,
        _DEB_VARIANT_MAX,
        _DEB_VARIANT_INVALID = -1,
};

/* "minbase", "required", ... (as mmdebstrap spells them); _DEB_VARIANT_INVALID if unknown. */
enum deb_variant deb_variant_from_string(const char *s);
const char *deb_variant_to_string(enum deb_variant v);

struct deb_plan_item {
        const struct deb_pkg *pkg;      /* borrowed from the indexes */
        bool explicit;                  /* asked for (variant set or Packages=), else a dependency */
        bool essential_set;             /* part of the essential set (Essential: yes and what it
                                         * needs): unpacked before anything is configured */
};

struct deb_plan {
        struct deb_plan_item *items;    /* install order: a package after its Pre-Depends and, where
                                         * no cycle prevents it, after its Depends; ties by name */
        size_t n;
};

/* indexes in priority order; arch: the native architecture ("amd64"). targets: Packages=
 * entries, each "name", "name=version" or "name:arch". Errors: -MKM_E_DEP_UNSAT naming the chain
 * ("openssh-server -> libssl3 (>= 3.0.9): only 3.0.8-1 in the indexes"), -MKM_E_CONFLICT naming
 * both packages and the field, -MKM_E_RECIPE for a target that is not a package. The plan borrows
 * from the indexes: keep them alive while it lives. */
int deb_resolve(struct mkm_ctx *ctx, struct deb_index *const *indexes, size_t n, const char *arch,
                enum deb_variant variant, char *const *targets, struct deb_plan **ret, struct mkm_err *reterr);

struct deb_plan *deb_plan_free(struct deb_plan *p);
static inline void deb_plan_freep(struct deb_plan **p) { (void)deb_plan_free(*p); }
