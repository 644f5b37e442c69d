/* SPDX-License-Identifier: MIT */
/* The manifest: a sorted, mtree-like listing of a machine tree, and its sha256, the machine's
 * digest. Two trees are the same machine exactly when their digests are equal; co-tenants compare
 * digests instead of trees. Kept outside the tree, in the state folder.
 *
 * One line per entry, sorted by path (byte order), "." first:
 *   PATH type=dir|file|link mode=0755 uid=0 gid=0 [size=N sha256=HEX] [link=TARGET] time=T
 *        [xattr.NAME=HEX ...]
 * PATH starts with "./"; bytes outside printable ASCII, spaces and backslashes are written as
 * \ooo (octal), as mtree does. Other file types (devices, fifos, sockets) appear as type=other
 * with their rdev, so they are visible rather than silently skipped. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct mkm_ctx;
struct mkm_err;

#define MANIFEST_DIGEST_LEN 72  /* "sha256:" + 64 hex + NUL */

/* Walk the tree under rootfd (without following symlinks or leaving its file system) and return
 * the manifest text (caller frees) and its digest "sha256:HEX". With clamp_epoch >= 0 every
 * entry's time stamps are first clamped to it (normalize_clamp_at()), in the same walk, and the
 * manifest shows the clamped times; -1 leaves the tree as it is. */
int manifest_build(struct mkm_ctx *ctx, int rootfd, int64_t clamp_epoch, char **ret_text,
                   char ret_digest[MANIFEST_DIGEST_LEN], struct mkm_err *reterr);
