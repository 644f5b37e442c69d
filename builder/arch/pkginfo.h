/* SPDX-License-Identifier: MIT */
/* A pacman package's .PKGINFO (makepkg's "key = value" metadata): what the local db records
 * (db-alpm.h) and what the backend checks against the sync db's promise. The text comes from an
 * archive member whose signature was checked, but is parsed as untrusted: a NUL byte or a line
 * that is not "key = value" is refused, numbers are checked. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct mkm_err;

struct pkginfo {
        char *name, *base, *version, *desc, *url, *arch, *packager;
        int64_t builddate;
        uint64_t size;                  /* installed size ("size =") */
        char **licenses, **groups, **depends, **optdepends, **conflicts, **provides, **replaces, **backup;
};

/* Parse .PKGINFO text ("key = value" lines, '#' comments). label names the package in errors.
 * Requires pkgname and pkgver. Fills ret on success only; caller frees with pkginfo_done(). */
int pkginfo_parse(const char *text, size_t len, const char *label, struct pkginfo *ret, struct mkm_err *reterr);
void pkginfo_done(struct pkginfo *p);
