/* SPDX-License-Identifier: MIT */
/* Make the staged tree independent of when and where it was built: every time stamp later than
 * SOURCE_DATE_EPOCH is clamped to it (directories get "now" as their mtime when entries are
 * added to them; package files keep their own older times). */
#pragma once

#include <stdint.h>

struct mkm_ctx;
struct mkm_err;

/* Walk the tree under rootfd without following symlinks or leaving its file system, and clamp
 * mtime and atime to epoch. */
int normalize_clamp_mtimes(struct mkm_ctx *ctx, int rootfd, int64_t epoch, struct mkm_err *reterr);
