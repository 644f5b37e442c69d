/* SPDX-License-Identifier: MIT */
/* libalpm hooks (alpm-hooks(5), pacman 6.0.2's lib/libalpm/hook.c) run in the sandbox.
 *
 * Hook files are read from ROOT/etc/pacman.d/hooks (first: a file there overrides the same name
 * in the other directory; a symlink to /dev/null, or any triggerless hook, disables it) and
 * ROOT/usr/share/libalpm/hooks, and run sorted by file name ignoring the ".hook" suffix.
 * For an initial install every transaction package is new, so only Operation = Install triggers
 * can match: Path triggers against the packages' file lists (relative paths, directories with a
 * trailing '/', fnmatch without flags so "dir/" followed by '*' also matches "dir/" itself and '*' crosses
 * '/'),
 * Package triggers against package names. The last matching Target wins; "!" negates it.
 * NeedsTargets feeds the matches, sorted and de-duplicated, one per line on stdin.
 *
 * Failures, as pacman: a hook whose command fails is a warning, except AbortOnFail on a
 * PreTransaction hook (an error). A hook file that cannot be read or parsed aborts a
 * PreTransaction run and is skipped with a warning in a PostTransaction run. Stricter than
 * pacman: a hook whose Depends= are not installed is an error ("unable to run hook NAME: could not
 * satisfy dependencies"), not just a message. NetworkAccess = allowed (pacman 7) is accepted, but
 * hooks run without network all the same: packages from a co-tenant's mirror never reach it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct mkm_ctx;
struct mkm_err;
struct sandbox_opts;

enum alpm_hook_when {
        ALPM_HOOK_PRE_TRANSACTION = 1,
        ALPM_HOOK_POST_TRANSACTION,
};

enum alpm_hook_op {
        ALPM_HOOK_OP_INSTALL = 1 << 0,
        ALPM_HOOK_OP_UPGRADE = 1 << 1,
        ALPM_HOOK_OP_REMOVE = 1 << 2,
};

enum alpm_hook_type {
        ALPM_HOOK_TYPE_PACKAGE = 1,
        ALPM_HOOK_TYPE_PATH,            /* "File" is its deprecated alias */
};

struct alpm_hook_trigger {
        unsigned ops;                   /* enum alpm_hook_op bits */
        enum alpm_hook_type type;       /* 0 when not given (invalid) */
        char **targets;                 /* in file order; "!pattern" negates */
};

struct alpm_hook {
        char *name;                     /* the file name, e.g. "50-test.hook" */
        char *desc;                     /* Description=, or NULL */
        struct alpm_hook_trigger *triggers;
        size_t n_triggers;              /* 0: a dummy hook that only masks a lower one */
        char **depends;                 /* Depends=, dependency strings, may be NULL */
        char **cmd;                     /* Exec= split as pacman's wordsplit does */
        enum alpm_hook_when when;
        bool abort_on_fail, needs_targets, allow_net;
};

/* A package of the transaction (or an installed one, for Depends=). Borrowed strings. */
struct alpm_hook_pkg {
        const char *name;
        const char *version;
        char *const *provides;          /* "name" or "name=version", may be NULL */
        char *const *files;             /* the package's file list (extract_result.files), may be NULL */
};

/* Parse one hook file's text (len bytes, need not be NUL-terminated). filename is used in
 * messages and as the hook's name (its last path component). Warnings ("overwriting previous
 * definition of ...", "AbortOnFail set for PostTransaction hook") go to ctx (may be NULL).
 * On failure returns -MKM_E_PARSE with pacman's message(s) in reterr, "; "-separated, e.g.
 * "hook F line 3: invalid value Instal" or "Missing trigger targets in hook: F"; *ret untouched.
 * On success the caller owns *ret (alpm_hook_free). */
int alpm_hook_parse(struct mkm_ctx *ctx, const char *text, size_t len, const char *filename, struct alpm_hook **ret,
                    struct mkm_err *reterr);
struct alpm_hook *alpm_hook_free(struct alpm_hook *h);
static inline void alpm_hook_freep(struct alpm_hook **h) { (void)alpm_hook_free(*h); }

/* pacman's wordsplit: split on whitespace, '...' and "..." group (a backslash escapes the quote
 * inside them), outside quotes a backslash escapes ', " and \. Unbalanced quotes: -EINVAL.
 * Caller owns *ret. */
int alpm_hook_wordsplit(const char *s, char ***ret);

/* libalpm's _alpm_fnmatch_patterns: 0 if the last pattern matching s is positive, 1 if it is
 * negated ("!pat"), -1 if none matches. A leading "\" escapes a literal "!". */
int alpm_hook_fnmatch_patterns(char *const *patterns, const char *s);

/* Would the hook run for an initial install of pkgs[0..n)? Returns 1 (and, when the hook has
 * NeedsTargets, the sorted, de-duplicated matches in *ret_targets, caller frees) or 0. */
int alpm_hook_match(const struct alpm_hook *h, const struct alpm_hook_pkg *pkgs, size_t n, char ***ret_targets);

/* The hooks present in the tree, overrides applied, sorted as pacman runs them. Unparseable or
 * unreadable files are errors when `strict`, else warnings ("skipping"). Caller frees each hook
 * and the array. */
int alpm_hooks_load(struct mkm_ctx *ctx, int rootfd, bool strict, struct alpm_hook ***ret, size_t *ret_n,
                    struct mkm_err *reterr);

/* Run the hooks of the tree at root (rootfd: the same tree) for `when`, for an install of
 * pkgs[0..n). installed[0..n_installed) is every package in the local db, for Depends=.
 * base: the sandbox options (hostname, epoch, timeout); stdin and network are set per hook.
 * Returns 0, or the first error as described above. */
int alpm_hooks_run(struct mkm_ctx *ctx, const char *root, int rootfd, enum alpm_hook_when when,
                   const struct alpm_hook_pkg *pkgs, size_t n, const struct alpm_hook_pkg *installed, size_t n_installed,
                   const struct sandbox_opts *base, struct mkm_err *reterr);
