/* SPDX-License-Identifier: MIT */
/* What mkmachine deployed on the host, as its state records it (HOST/var/lib/mkmachine/NAME):
 * the live generation's files for plan, rebuild and the package summary after a build, and
 * every kept generation's lock for clean.
 *
 * Through state.h: the live generation is state_load()'s live one (NAME/gen/N/...); every kept
 * generation counts for clean, live or not. */
#pragma once

#include <stdbool.h>

struct lock;
struct mkm_ctx;
struct mkm_err;

/* FILE ("recipe", "lock", "recipe-path", ...) of the live generation of machine NAME: its text
 * in *ret_text and, if ret_path, its absolute path in *ret_path (both caller-owned). -ENOENT
 * (without a message) when NAME has no state or the generation no such file; -EINVAL for an
 * invalid machine name. */
int deployed_read(struct mkm_ctx *ctx, const char *name, const char *file, char **ret_text, char **ret_path,
                  struct mkm_err *reterr);

/* The live generation's lock, parsed (caller frees); -ENOENT when there is none. */
int deployed_lock(struct mkm_ctx *ctx, const char *name, struct lock **ret, struct mkm_err *reterr);

/* Call fn for the lock of every kept generation of every machine under the host root, live or
 * not (path: the lock file). A lock that cannot be read or parsed is an error (clean must not
 * delete what it cannot account for). fn's negative return stops the walk and is returned. */
int deployed_each_lock(struct mkm_ctx *ctx, int (*fn)(void *userdata, const char *name, const char *path,
                                                      const struct lock *l),
                       void *userdata, struct mkm_err *reterr);
