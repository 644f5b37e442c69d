/* SPDX-License-Identifier: MIT */
/* pacman version comparison (libalpm's alpm_pkg_vercmp, re-implemented) and pacman dependency
 * strings ("name", "name>=1.2-3", "libfoo.so=1-64", "name: description" for optdepends). */
#pragma once

#include <stdbool.h>

struct mkm_err;

/* Compare two versions "[epoch:]pkgver[-pkgrel]" as pacman does: -1 if a is older than b, 0 if
 * equal, 1 if newer. The pkgrel is compared only when both sides have one, so "1.5" == "1.5-1".
 * A NULL version is older than any string; two NULLs are equal. Never allocates, never fails. */
int alpm_vercmp(const char *a, const char *b);

/* Dependency operators. VERCMP_ANY means no version constraint. */
enum vercmp_op {
        VERCMP_ANY,
        VERCMP_EQ,      /* = */
        VERCMP_LT,      /* < */
        VERCMP_LE,      /* <= */
        VERCMP_GT,      /* > */
        VERCMP_GE,      /* >= */
        _VERCMP_OP_MAX,
        _VERCMP_OP_INVALID = -1,
};

/* The operator's text ("", "=", "<", "<=", ">", ">="). Borrowed static string; NULL if invalid. */
const char *vercmp_op_to_string(enum vercmp_op op);

/* Does a package at `version` satisfy "op wanted"? libalpm's dep_vercmp: VERCMP_ANY is always
 * true; otherwise alpm_vercmp(version, wanted) is tested against op. Because it ignores pkgrels
 * unless both sides have one, "foo=1.0" is satisfied by 1.0-1 and 1.0-7 alike. */
bool vercmp_satisfies(const char *version, enum vercmp_op op, const char *wanted);

/* A parsed dependency string. All strings are owned; version is NULL iff op == VERCMP_ANY;
 * desc (the text after ": ", optdepends only) is NULL when absent. */
struct vercmp_dep {
        char *name;
        enum vercmp_op op;
        char *version;
        char *desc;
};

/* Parse "name[OP version][: description]" as libalpm's alpm_dep_from_string splits it (the
 * description starts at the first ": "; the first '<', else '>', else '=' starts the operator),
 * but strictly: the name must be a valid package name (vercmp_name_is_valid) and a version
 * must be non-empty and valid (vercmp_version_is_valid). On failure returns -MKM_E_PARSE with
 * "dependency 'S': why" in reterr and leaves *ret untouched. On success the caller owns
 * *ret and frees it with vercmp_dep_done(). */
int vercmp_dep_parse(const char *s, struct vercmp_dep *ret, struct mkm_err *reterr);
void vercmp_dep_done(struct vercmp_dep *d);

/* Format back to "name", "name>=1.0" or "name: desc". Returns a malloc'd string or NULL. */
char *vercmp_dep_to_string(const struct vercmp_dep *d);

/* libalpm's _alpm_depcmp: is dep satisfied by a package called name at version that provides
 * `provides` (a NULL-terminated list of "name" or "name=version" strings, may be NULL)?
 * The package itself matches on name + version; a provision without a version matches only an
 * unversioned dependency; a provision "name=ver" matches when ver satisfies the constraint.
 * Unparseable provisions never match. */
bool vercmp_dep_satisfied_by(const struct vercmp_dep *dep, const char *name, const char *version,
                             char *const *provides);

/* pacman's package-name rule: 1..255 bytes of [A-Za-z0-9@._+-], not starting with '-' or '.'. */
bool vercmp_name_is_valid(const char *name);

/* A sane version for a dependency or provision: 1..255 bytes of [A-Za-z0-9._+~@:-], an optional
 * all-digit epoch before a single ':', and nothing empty around '-' and ':'. */
bool vercmp_version_is_valid(const char *version);

/* A full package version as a repository must carry it: "[epoch:]pkgver-pkgrel" with pkgver of
 * [A-Za-z0-9._+~@] (no '-' or ':'), pkgrel digits with an optional ".digits" (makepkg's rule). */
bool vercmp_pkg_version_is_valid(const char *version);
