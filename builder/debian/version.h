/* SPDX-License-Identifier: MIT */
/* Debian version comparison, exactly as dpkg (lib/dpkg/version.c, deb-version(7)):
 * [epoch:]upstream[-revision]; '~' sorts before everything, even the end; letters before
 * non-letters; digit runs compared numerically. */
#pragma once

#include <stdbool.h>

#include "index.h"

/* <0, 0, >0 as a is older, equal, newer than b. Invalid versions compare as dpkg would parse
 * them leniently (a missing epoch is 0, a missing revision is ""). */
int debver_cmp(const char *a, const char *b);

/* Whether version satisfies "op ref" (DEB_REL_ANY is always true). */
bool debver_satisfies(const char *version, enum deb_relop op, const char *ref);

/* Strict validity as dpkg's parseversion(): epoch digits only, upstream starting with a digit,
 * allowed characters only. 0 or -EINVAL with *ret_why set to a static reason. */
int debver_check(const char *v, const char **ret_why);
