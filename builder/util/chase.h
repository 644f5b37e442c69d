/* SPDX-License-Identifier: MIT */
/* Paths inside an untrusted tree, resolved as the machine will resolve them once it runs: the
 * tree's directory is "/", ".." never climbs above it, and absolute symlinks start again at it.
 * After systemd's chaseat() with CHASE_AT_RESOLVE_IN_ROOT (src/basic/chase.c); our own walk. */
#pragma once

#include <sys/types.h>

struct stat;

/* Flags of chase_in_root(). */
enum {
        CHASE_NOFOLLOW          = 1 << 0, /* a symlink as the last component is the result itself */
        CHASE_PARENT            = 1 << 1, /* the result is the directory holding the last component:
                                           * *ret_fd is that directory, *ret_path the component's name
                                           * ("." when the path is the root itself); the component may
                                           * be missing */
        CHASE_MKDIR_0755        = 1 << 2, /* create missing directories on the way, mode 0755 whatever
                                           * the umask, owned by the caller; with CHASE_PARENT not the
                                           * last component. Names that come from a symlink's target
                                           * are never created (as mkdir -p: a dangling symlink stays
                                           * dangling, -ENOENT) */
        CHASE_MUST_BE_DIRECTORY = 1 << 3, /* the result must be a directory, else -ENOTDIR */
        CHASE_MUST_BE_REGULAR   = 1 << 4, /* the result must be a regular file, else -EISDIR for a
                                           * directory and -EBADFD for anything else */
        CHASE_NONEXISTENT       = 1 << 5, /* a missing tail is no error: *ret_path gets it appended,
                                           * normalised, and *ret_fd is -EBADF (with CHASE_PARENT too,
                                           * when a directory before the last component is missing);
                                           * a ".." in the missing tail gives -ENOENT */
        CHASE_PROHIBIT_SYMLINKS = 1 << 6, /* a symlink that would be followed is an error, -EREMCHG
                                           * (with CHASE_NOFOLLOW a last component may be one) */
        CHASE_REFUSE_ESCAPE     = 1 << 7, /* a ".." above the root (in the path or a symlink's target)
                                           * is an error, -EXDEV, instead of staying at the root */
        CHASE_REFUSE_ABSOLUTE   = 1 << 8, /* a symlink with an absolute target is an error, -EXDEV,
                                           * instead of starting again at the root: for a walk that
                                           * must stay in a host directory, where such a link means
                                           * the host's path */
};

/* How many symlinks one resolution follows (Linux's MAXSYMLINKS), and how many directory lookups
 * it may make in all (components, and the walks back down that ".." costs); past either, -ELOOP.
 * A hostile tree can thus neither loop nor make us walk for long. */
#define CHASE_SYMLINKS_MAX 40
#define CHASE_STEPS_MAX 4096

/* Resolve path (absolute or relative: both start at the root) inside the tree at rootfd.
 *
 * Each component is looked up on its own with openat(O_PATH|O_NOFOLLOW) in the directory the walk
 * has reached, and a symlink is read and spliced in by us, never followed by the kernel: no lookup
 * can leave the tree, whatever its symlinks say, and no magic link (/proc/self/root, ...) is ever
 * followed. ".." returns to the parent by walking down again from the root, never by opening "..".
 * Works without openat2(); the same answer as fs_open_in_root() (RESOLVE_IN_ROOT) otherwise.
 *
 * Returns 1 when the result exists, 0 when it does not (only with CHASE_PARENT or
 * CHASE_NONEXISTENT), or a negative errno: -ENOENT, -ENOTDIR, -ELOOP (loops, caps), -EXDEV and
 * -EREMCHG (the flags above), -ENAMETOOLONG, -EINVAL (contradicting flags).
 *
 * ret_path (may be NULL; the caller frees it): the path inside the tree with every symlink, "."
 * and ".." resolved, starting with "/" ("/" for the root); with CHASE_PARENT, the last component.
 * ret_fd (may be NULL; the caller closes it): an O_PATH|O_CLOEXEC fd of the result, usable as the
 * dirfd of *at() calls and with fstat(), not for reading (see chase_and_open_in_root()); -EBADF
 * when the result does not exist. Both are written only on success. */
int chase_in_root(int rootfd, const char *path, unsigned flags, char **ret_path, int *ret_fd);

/* Asked before the walk follows a symlink (every one: in the path, in a target, and the last
 * component unless CHASE_NOFOLLOW): dir is the resolved path of the directory holding it ("" for
 * the root, else "/a/b" as *ret_path has it), name its name, fd an O_PATH fd of it (borrowed),
 * st its lstat(). Return 0 to follow
 * it, or a negative code, which the chase returns as is (outputs untouched). Lets a caller refuse
 * links by identity, which no flag can say: extract never follows a symlink the package it is
 * unpacking created (st_dev/st_ino), while following those earlier packages made (bin -> usr/bin). */
typedef int (*chase_symlink_fn)(const char *dir, const char *name, int fd, const struct stat *st, void *userdata);

struct chase_hooks {
        chase_symlink_fn symlink;       /* NULL: every symlink is followed (as the flags allow) */
        void *userdata;                 /* passed to the hook */
};

/* chase_in_root() with hooks (borrowed; NULL = none). */
int chase_in_root_full(int rootfd, const char *path, unsigned flags, const struct chase_hooks *hooks, char **ret_path,
                       int *ret_fd);

/* chase_in_root() with CHASE_PARENT added, then open the last component in its directory with
 * open_flags | O_NOFOLLOW | O_CLOEXEC (mode for O_CREAT): a symlink there was followed inside the
 * tree by the chase, unless CHASE_NOFOLLOW, when opening it fails with -ELOOP. CHASE_MUST_BE_*
 * are checked before opening (a FIFO is never opened) and again on what was opened. Returns the
 * fd (the caller closes it) or a negative errno. */
int chase_and_open_in_root(int rootfd, const char *path, unsigned chase_flags, int open_flags, mode_t mode);
