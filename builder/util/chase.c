/* SPDX-License-Identifier: MIT */
/* chase_in_root(): resolving a path inside an untrusted tree (see chase.h for the contract).
 *
 * The threat is the tree: packages and Run= commands put any symlink they like in it ("..", "/",
 * "../../..", loops, links to /proc/self/root). The walk keeps two things: "done", the path
 * resolved so far (only real directories, no "." or ".."), and an O_PATH fd of it. Every lookup is
 * openat(fd, NAME, O_PATH|O_NOFOLLOW) of a single name that is neither "." nor "..", so the kernel
 * never follows a symlink and never climbs: the only ways up are ".." (we return to the parent by
 * walking "done" down again from the root) and an absolute symlink (we start again at the root).
 * Nothing in the tree can lead the walk out of it. Caps on symlinks and lookups end loops. */
#include "chase.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"

static bool is_dot(const char *c, size_t n) {
        return n == 1 && c[0] == '.';
}

static bool is_dot_dot(const char *c, size_t n) {
        return n == 2 && c[0] == '.' && c[1] == '.';
}

static int open_root(int rootfd) {
        int fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

/* Open "done" again, one component at a time from the root, each a real directory. */
static int walk_down(int rootfd, const char *done, unsigned *steps) {
        _cleanup_close_ int fd = -EBADF;        /* -EBADF: at the root */
        for (const char *p = done; *p;) {
                p += strspn(p, "/");
                size_t n = strcspn(p, "/");
                if (n == 0)
                        break;
                if (++*steps > CHASE_STEPS_MAX)
                        return -ELOOP;
                _cleanup_free_ char *c = strndup(p, n);
                if (!c)
                        return -ENOMEM;
                int nfd = openat(fd >= 0 ? fd : rootfd, c, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
                if (nfd < 0)
                        return negative_errno();
                closep(&fd);
                fd = nfd;
                p += n;
        }
        return fd >= 0 ? TAKE_FD(fd) : open_root(rootfd);
}

static int done_append(char **done, const char *c, size_t n) {
        size_t len = strlen(*done);
        char *d = realloc(*done, len + 1 + n + 1);
        if (!d)
                return -ENOMEM;
        d[len] = '/';
        memcpy(d + len + 1, c, n);
        d[len + 1 + n] = 0;
        *done = d;
        return 0;
}

/* Drop the last component of done ("/a/b" -> "/a", "/a" -> ""). */
static void done_pop(char *done) {
        char *slash = strrchr(done, '/');
        if (slash)
                *slash = 0;
}

/* Create dfd/name as a directory of mode 0755 exactly (the umask does not matter: two builds give
 * the same tree), or take the directory that is there; return an O_PATH fd of it. */
static int mkdir_0755(int dfd, const char *name) {
        bool created = mkdirat(dfd, name, 0755) >= 0;
        if (!created && errno != EEXIST)
                return negative_errno();
        _cleanup_close_ int d = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d < 0)
                return negative_errno();
        if (created && fchmod(d, 0755) < 0)
                return negative_errno();
        int p = openat(d, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        return p < 0 ? negative_errno() : p;
}

/* CHASE_NONEXISTENT: append the missing component c and what is left of todo, normalised. */
static int append_missing(char **done, const char *c, size_t n, const char *todo) {
        int r = done_append(done, c, n);
        while (r >= 0) {
                todo += strspn(todo, "/");
                size_t k = strcspn(todo, "/");
                if (k == 0)
                        break;
                if (is_dot_dot(todo, k))
                        return -ENOENT; /* ".." of something that does not exist */
                if (!is_dot(todo, k))
                        r = done_append(done, todo, k);
                todo += k;
        }
        return r;
}

static int check_type(unsigned flags, bool must_dir, const struct stat *st) {
        if ((must_dir || (flags & CHASE_MUST_BE_DIRECTORY)) && !S_ISDIR(st->st_mode))
                return -ENOTDIR;
        if ((flags & CHASE_MUST_BE_REGULAR) && !S_ISREG(st->st_mode))
                return S_ISDIR(st->st_mode) ? -EISDIR : -EBADFD;
        return 0;
}

int chase_in_root_full(int rootfd, const char *path, unsigned flags, const struct chase_hooks *hooks, char **ret_path,
                       int *ret_fd) {
        if ((flags & CHASE_MUST_BE_DIRECTORY) && (flags & CHASE_MUST_BE_REGULAR))
                return -EINVAL;
        if (!path)
                path = "";
        size_t plen = strlen(path);
        /* "a/" names a directory, as in the kernel. */
        bool must_dir = plen > 0 && path[plen - 1] == '/';

        _cleanup_free_ char *buffer = strdup(path), *done = strdup(""), *name = NULL;
        if (!buffer || !done)
                return -ENOMEM;
        /* The directory the walk is in: fd, or rootfd itself while fd is -EBADF (at the root,
         * where every walk starts: no open of the root unless it is the result). */
        _cleanup_close_ int fd = -EBADF;

        /* todo: what is left to resolve; the bytes before link_end came from symlink targets
         * (CHASE_MKDIR_0755 never creates those). st: of the entry reached last; when a lookup
         * with O_DIRECTORY found a directory, only its st_mode is set (all that is read of it). */
        const char *todo = buffer, *link_end = buffer;
        bool want_dir = must_dir || (flags & CHASE_MUST_BE_DIRECTORY);
        struct stat st;
        bool exists = true, have_st = false;
        unsigned steps = 0, hops = 0;
        int r;

        for (;;) {
                todo += strspn(todo, "/");
                size_t n = strcspn(todo, "/");
                if (n == 0)
                        break;
                const char *comp = todo;
                todo += n;
                bool from_link = comp < link_end;
                bool last = todo[strspn(todo, "/")] == 0;

                if (is_dot(comp, n))
                        continue;
                if (++steps > CHASE_STEPS_MAX)
                        return -ELOOP;
                if (is_dot_dot(comp, n)) {
                        if (!*done) {
                                /* Already at the root: ".." stays there, as the kernel does at "/". */
                                if (flags & CHASE_REFUSE_ESCAPE)
                                        return -EXDEV;
                                continue;
                        }
                        done_pop(done);
                        closep(&fd);
                        fd = -EBADF;
                        if (*done) {
                                int up = walk_down(rootfd, done, &steps);
                                if (up < 0)
                                        return up;
                                fd = up;
                        }
                        have_st = false;
                        continue;
                }

                if (n > NAME_MAX)
                        return -ENAMETOOLONG;
                char c[NAME_MAX + 1];
                memcpy(c, comp, n);
                c[n] = 0;
                int here = fd >= 0 ? fd : rootfd;
                /* Most components are directories, and O_DIRECTORY says so without an fstat()
                 * (the old walkers this replaced made one lookup per component; so do we). It
                 * fails with ENOTDIR (or ELOOP) on a symlink, which the plain lookup then opens. */
                _cleanup_close_ int child = -EBADF;
                bool is_dir = false, missing = false;
                if (!last || (want_dir && !(flags & CHASE_PARENT))) {
                        child = openat(here, c, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
                        if (child >= 0)
                                is_dir = true;
                        else if (errno == ENOENT)
                                missing = true;
                        else if (errno != ENOTDIR && errno != ELOOP)
                                return negative_errno();
                }
                if (child < 0 && !missing) {
                        child = openat(here, c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                        if (child < 0 && errno != ENOENT)
                                return negative_errno();
                        missing = child < 0;
                }
                if (missing) {
                        if (last && (flags & CHASE_PARENT)) {
                                name = strdup(c);
                                if (!name)
                                        return -ENOMEM;
                                exists = false;
                                break;
                        }
                        if ((flags & CHASE_MKDIR_0755) && !from_link) {
                                child = mkdir_0755(here, c);
                                if (child < 0)
                                        return child;
                                is_dir = true;
                        } else if (flags & CHASE_NONEXISTENT) {
                                r = append_missing(&done, comp, n, todo);
                                if (r < 0)
                                        return r;
                                exists = false;
                                break;
                        } else
                                return -ENOENT;
                }
                if (is_dir)
                        st = (struct stat){ .st_mode = S_IFDIR };
                else if (fstat(child, &st) < 0)
                        return negative_errno();

                if (S_ISLNK(st.st_mode) && !(last && (flags & CHASE_NOFOLLOW))) {
                        if (flags & CHASE_PROHIBIT_SYMLINKS)
                                return -EREMCHG;
                        if (hooks && hooks->symlink) {
                                r = hooks->symlink(done, c, child, &st, hooks->userdata);
                                if (r < 0)
                                        return r;
                        }
                        if (++hops > CHASE_SYMLINKS_MAX)
                                return -ELOOP;
                        char target[PATH_MAX];
                        ssize_t tl = readlinkat(child, "", target, sizeof target);
                        if (tl < 0)
                                return negative_errno();
                        if ((size_t)tl >= sizeof target)
                                return -ENAMETOOLONG;
                        if (tl == 0)
                                return -ENOENT;
                        /* The new todo is TARGET "/" REST; the target, and whatever of REST came
                         * from an earlier link, count as coming from a link. */
                        size_t rest = strlen(todo), link_rest = link_end > todo ? (size_t)(link_end - todo) : 0;
                        char *nb = malloc((size_t)tl + 1 + rest + 1);
                        if (!nb)
                                return -ENOMEM;
                        memcpy(nb, target, (size_t)tl);
                        nb[tl] = '/';
                        memcpy(nb + tl + 1, todo, rest + 1);
                        free(buffer);
                        buffer = nb;
                        todo = buffer;
                        link_end = buffer + tl + (link_rest ? 1 + link_rest : 0);
                        if (target[0] == '/' && (flags & CHASE_REFUSE_ABSOLUTE))
                                /* Absolute, in a walk that must stay where it began (a directory
                                 * of the host, not a machine's tree): it means the host's path. */
                                return -EXDEV;
                        if (target[0] == '/') {
                                /* Absolute: starts again at the tree's root, not the host's. */
                                done[0] = 0;
                                closep(&fd);
                                fd = -EBADF;
                        }
                        have_st = false;
                        continue;
                }

                if (last && (flags & CHASE_PARENT)) {
                        /* fd stays the directory that holds it. */
                        name = strdup(c);
                        if (!name)
                                return -ENOMEM;
                        have_st = true;
                        break;
                }
                if (!last && !S_ISDIR(st.st_mode))
                        return -ENOTDIR;
                r = done_append(&done, comp, n);
                if (r < 0)
                        return r;
                closep(&fd);
                fd = TAKE_FD(child);
                have_st = true;
        }

        /* Without a stat of a last lookup, fd is a directory: the root, a walk down after "..",
         * or the directory a symlink was met in. */
        if (exists && !have_st)
                st = (struct stat){ .st_mode = S_IFDIR };
        if ((flags & CHASE_PARENT) && exists && !name) {
                /* The path ended in a directory of its own ("a/b/..", "a/.", "/"): its parent holds it. */
                if (!*done)
                        name = strdup(".");
                else {
                        name = strdup(strrchr(done, '/') + 1);
                        done_pop(done);
                        int up = walk_down(rootfd, done, &steps);
                        if (up < 0)
                                return up;
                        closep(&fd);
                        fd = up;
                }
                if (!name)
                        return -ENOMEM;
        }
        if (exists) {
                r = check_type(flags, must_dir, &st);
                if (r < 0)
                        return r;
        }

        /* With CHASE_PARENT the parent was found unless a directory before it is missing
         * (CHASE_NONEXISTENT): then the answer is the one without CHASE_PARENT. */
        bool parent = (flags & CHASE_PARENT) && name;
        if (ret_fd && (exists || parent) && fd < 0) {
                fd = open_root(rootfd);   /* the result is the root */
                if (fd < 0)
                        return fd;
        }
        if (ret_path) {
                if (parent)
                        *ret_path = TAKE_PTR(name);
                else if (*done)
                        *ret_path = TAKE_PTR(done);
                else if (!(*ret_path = strdup("/")))
                        return -ENOMEM;
        }
        if (ret_fd)
                *ret_fd = exists || parent ? TAKE_FD(fd) : -EBADF;
        return exists;
}

int chase_in_root(int rootfd, const char *path, unsigned flags, char **ret_path, int *ret_fd) {
        return chase_in_root_full(rootfd, path, flags, NULL, ret_path, ret_fd);
}

int chase_and_open_in_root(int rootfd, const char *path, unsigned chase_flags, int open_flags, mode_t mode) {
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int dfd = -EBADF;
        int r = chase_in_root(rootfd, path, chase_flags | CHASE_PARENT, &name, &dfd);
        if (r < 0)
                return r;
        if (chase_flags & CHASE_MUST_BE_DIRECTORY)
                open_flags |= O_DIRECTORY;
        _cleanup_close_ int fd = openat(dfd, name, open_flags | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return negative_errno();
        if (chase_flags & (CHASE_MUST_BE_DIRECTORY | CHASE_MUST_BE_REGULAR)) {
                /* Again on what was opened: the entry may have changed since the chase looked. */
                struct stat st;
                if (fstat(fd, &st) < 0)
                        return negative_errno();
                r = check_type(chase_flags, false, &st);
                if (r < 0)
                        return r;
        }
        return TAKE_FD(fd);
}
