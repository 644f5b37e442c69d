/* SPDX-License-Identifier: MIT */
/* pacman .INSTALL scriptlets (pacman 6.0.2's _alpm_runscriptlet) and ldconfig, in the sandbox.
 *
 * For a package with an .INSTALL, pacman runs `pre_install VERSION` before extracting its files
 * and `post_install VERSION` after, each as
 *     /bin/sh -c ". /tmp/alpm_XXXXXX/.INSTALL; FUNCTION VERSION"
 * in the root, and only when the root has /bin/sh and the script text mentions FUNCTION
 * (pacman's "cheap grep": a substring search, line by line, ignoring what follows a '#').
 * We place the script at the same kind of path, but in the sandbox's own tmpfs /tmp (struct
 * sandbox_file): nothing is written into the tree, and the name (alpm_ + 6 characters derived
 * from the script's sha256) is reproducible. A failing scriptlet is what pacman makes of it:
 * a warning ("command failed to execute correctly", with the output) and the install goes on,
 * unless ALPM_SCRIPT_FAIL_FATAL asks for an error. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct mkm_ctx;
struct mkm_err;
struct sandbox_opts;

/* pacman's grep(): does the scriptlet text mention function outside '#' comments? */
bool alpm_script_has_function(const char *text, size_t len, const char *function);

/* Run FUNCTION (pre_install, post_install, ...) of the scriptlet install_text (len bytes) of
 * package pkgname at version (and oldversion for *_upgrade, else NULL) in the tree at root
 * (rootfd: the same tree). Returns 0 when it ran, when the function is absent, when the tree
 * has no /bin/sh (debug message, as pacman skips) or when it failed (a warning with the output,
 * as in pacman). Sandbox setup failures are errors. */
int alpm_script_run(struct mkm_ctx *ctx, const char *root, int rootfd, const char *pkgname, const char *install_text,
                    size_t len, const char *function, const char *version, const char *oldversion,
                    const struct sandbox_opts *base, struct mkm_err *reterr);

/* The .INSTALL of a package archive read from fd (from its current offset), before anything is
 * extracted: the metadata entries that makepkg puts first are scanned, stopping at the first
 * entry that is not a top-level dot file. Absent: NULL and length 0. Capped at 1 MiB. Caller
 * frees; the fd's offset is left wherever libarchive stopped. */
int alpm_script_read_install(int fd, char **ret_install, size_t *ret_install_len, struct mkm_err *reterr);

/* pacman's _alpm_ldconfig: when ROOT/etc/ld.so.conf exists and ROOT/sbin/ldconfig (resolved in
 * the tree) is executable, run "ldconfig" in the sandbox. A failure is a warning, as in pacman.
 * Returns 0, or a sandbox setup error. */
int alpm_run_ldconfig(struct mkm_ctx *ctx, const char *root, int rootfd, const struct sandbox_opts *base,
                      struct mkm_err *reterr);
