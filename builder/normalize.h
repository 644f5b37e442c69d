/* SPDX-License-Identifier: MIT */
/* Make the staged tree independent of when and where it was built: every time stamp later than
 * SOURCE_DATE_EPOCH is clamped to it (directories get "now" as their mtime when entries are
 * added to them; package files keep their own older times), and only the extended attributes
 * that are content count (normalize_xattr_is_content()). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct stat;

struct mkm_ctx;
struct mkm_err;

/* Remove what a build leaves that depends on the time, the host or chance, so that the machine
 * makes it itself at first boot or never needs it: logs of the package tools, ldconfig's
 * aux-cache, systemd's random seed and credential secret, a machine-id (emptied: systemd treats
 * an empty /etc/machine-id as "not yet initialised" and makes one at first boot), SSH host keys,
 * and the private half of pacman's local keyring master key. Every path is opened inside the
 * tree. Emits a debug line per removal. */
int normalize_remove_generated(struct mkm_ctx *ctx, int rootfd, struct mkm_err *reterr);

/* Clamp one entry's mtime and atime (name in directory dfd, not followed; st its lstat) to epoch
 * when later, and update st to what they are now. The build clamps the whole tree in the
 * manifest's walk (manifest_build() with a clamp epoch). */
int normalize_clamp_at(int dfd, const char *name, struct stat *st, int64_t epoch);

/* Is the extended attribute name part of a tree's content, as mkmachine makes and carries it?
 * true for user.*, security.capability, system.posix_acl_access and system.posix_acl_default:
 * what extraction applies (from packages and imports), what the manifest and so the digest and
 * drift cover, and what export writes. Everything else is the host's or a privileged label:
 * security.selinux (the kernel gives every file one on an SELinux host), security.ima and
 * security.evm, security.apparmor, trusted.*. Extraction must never apply those from an archive,
 * so the digest, drift and export leave them out as they leave out atimes: otherwise the same
 * recipe would get another digest on an SELinux host, and an import another digest than its
 * export. The one list for all three, so that they cannot disagree. */
bool normalize_xattr_is_content(const char *name);
