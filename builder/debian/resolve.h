/* SPDX-License-Identifier: MIT */
/* Dependency resolution for Debian indexes with apt's choices, in mmdebstrap's steps, so that a
 * variant gives the package set mmdebstrap installs (checked against mmdebstrap 1.3.5 / apt 2.6
 * on bookworm: tests/integration/debian-resolve-oracle.sh).
 *
 * Variants (mmdebstrap(1)): extract (Packages= and their dependencies, unpacked only), custom
 * (Packages= and their dependencies), essential (Essential: yes and their dependencies), apt
 * (essential + apt), required = minbase (essential + apt + Priority: required), buildd (minbase
 * + build-essential), important = debootstrap (minbase + Priority: important), standard
 * (important + Priority: standard). Packages= adds to the variant's set. ("extract" follows
 * dependencies too: mmdebstrap downloads what `apt-get install` would, then only unpacks it.)
 *
 * Two steps, as mmdebstrap: the essential set first (apt: Essential: yes plus "apt" for the
 * apt variant), from an empty system; then, with that set installed, Packages=, build-essential
 * for buildd and the non-Essential packages of the variant's priorities. What the first step
 * chose satisfies the second step's alternatives, which can change its choices. extract and
 * custom are one step. Merged /usr: usr-is-merged, when the indexes have it, counts as
 * installed before the first step and is in the plan (part of the essential set), as with
 * mmdebstrap's merged-usr hook and debootstrap; so "usrmerge | usr-is-merged" does not pull
 * usrmerge and perl. The caller must create the /usr symlinks before usr-is-merged's preinst.
 *
 * Choices are deterministic and those of `apt-get install` with Install-Recommends off (apt 2.6's
 * pkgDepCache::MarkInstall, see resolve.c), which are not "the first alternative": every target
 * is marked first, then targets' dependencies are walked depth-first, Pre-Depends then Depends,
 * targets in the order apt's cache numbers their names (first mention in the indexes). A group
 * already satisfied by a selected package (installed, a target, or chosen earlier) is left
 * alone. Otherwise its solutions are, alternative by alternative, the real package and the
 * providers whose candidate satisfies it (a versioned relation needs a versioned Provides),
 * ranked within an alternative as apt does: packages being installed or asked for first, then
 * the real package, Essential, Important (Protected), higher Priority, and the name apt's cache
 * met later; the first solution that can be installed with its own dependencies wins. A
 * candidate is the highest version among the indexes for the native architecture or "all"
 * (ties: the earlier index); "name=version" pins it. "foo:any" is satisfied only by Multi-Arch:
 * allowed packages and providers; other architectures never. Only Depends and Pre-Depends are
 * installed. Conflicts and Breaks: a new package's Conflicts/Breaks undo an earlier choice that
 * was neither asked for nor the only way to satisfy a dependency (apt's MarkKeep), and at the
 * end of each step apt's sweep drops new packages nothing leads to any more (through Depends,
 * Pre-Depends, Recommends from what was asked for, installed, Essential or Important): what only
 * an undone choice or a failed alternative pulled in. Otherwise a package that would conflict
 * (either way, also through a virtual name it provides) with a selected one is not taken as a
 * solution, and when there is no other, the error names both packages and the field (apt would
 * instead try to remove one of them with its problem resolver).
 *
 * Not modelled: foreign architectures, pinning; mmdebstrap narrows the variant's priority set to
 * its SUITE and installs that suite's version of each, we take candidates. Approximated: apt
 * numbers names also by Suggests, Replaces and Enhances and its sweep follows Suggests, which
 * the index does not keep (no difference seen on bookworm: 36 package sets, minbase to KDE,
 * compared with apt-get). */
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
        bool essential_set;             /* chosen in the first step (the essential set: Essential:
                                         * yes, what it needs, usr-is-merged; for extract and custom
                                         * everything): unpacked before anything is configured */
};

struct deb_plan {
        struct deb_plan_item *items;    /* install order: a package after its Pre-Depends and, where
                                         * no cycle prevents it, after its Depends; ties by name */
        size_t n;
};

/* indexes in priority order; arch: the native architecture ("amd64"). targets: Packages=
 * entries (NULL-terminated, may be NULL), each "name", "name=version" or "name:arch" (arch: the
 * native one); a virtual name with a single provider means that provider, as in apt-get.
 * Errors: -MKM_E_DEP_UNSAT naming the chain from the target ("openssh-server -> libssl3 (>=
 * 3.0.9): only 3.0.8-1 in the indexes"; an alternative or a virtual name is followed by the
 * package tried, "app -> mta [exim4] -> ..."), -MKM_E_CONFLICT naming both packages and the field
 * ("app -> exim: nomail conflicts with exim (Conflicts: mail-transport-agent)"), -MKM_E_RECIPE for
 * a target that is not a package, is a virtual package with several providers, or names a
 * version or architecture the indexes lack. The plan borrows from the indexes: keep them alive
 * while it lives. */
int deb_resolve(struct mkm_ctx *ctx, struct deb_index *const *indexes, size_t n, const char *arch,
                enum deb_variant variant, char *const *targets, struct deb_plan **ret, struct mkm_err *reterr);

struct deb_plan *deb_plan_free(struct deb_plan *p);
static inline void deb_plan_freep(struct deb_plan **p) { (void)deb_plan_free(*p); }
