/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/util/chase, in the manner of systemd's src/test/test-chase.c: a hostile
 * tree ("../../.." symlinks, absolute symlinks to host paths, loops, magic-link look-alikes) beside
 * an "outside" directory that must stay empty; what each path resolves to, each flag, the caps, and
 * that the answers agree with the kernel's RESOLVE_IN_ROOT (fs_open_in_root). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "util/chase.h"
#include "util/cleanup.h"
#include "util/fs.h"

static char *mfree_str(char *p) {
        free(p);
        return NULL;
}

static void link_in(struct th_tree *f, const char *target, const char *name) {
        if (symlinkat(target, f->rootfd, name) < 0)
                fail_msg("symlink %s -> %s: %m", name, target);
}

static int setup(void **state) {
        (void)th_tree_setup(state, "chase"); /* root/ gets the links below; outside/ must stay empty */
        struct th_tree *f = *state;
        int r = f->rootfd;
        assert_int_equal(fs_mkdir_p_at(r, "etc", 0755), 0);
        assert_int_equal(fs_mkdir_p_at(r, "usr/lib", 0755), 0);
        assert_int_equal(fs_write_file_at(r, "etc/passwd", "root:x:0:0::/root:/bin/sh\n", 26, 0644), 0);
        assert_int_equal(mkfifoat(r, "etc/fifo", 0644), 0);
        link_in(f, ".", "dot");
        link_in(f, "..", "dotdot");
        link_in(f, "../../..", "6dots");                /* escapes on the host, not in the tree */
        link_in(f, "../../../usr", "6dotsusr");
        link_in(f, "../../../../usr", "etc/8dotsusr");
        link_in(f, "/usr/lib", "abs");
        link_in(f, "/usr/lib", "etc/abs");                /* absolute, from a subdirectory */
        link_in(f, "///usr///", "slashslash");
        link_in(f, "dot/dotdot/etc/passwd", "start");
        link_in(f, "loop", "loop");
        link_in(f, "ping", "pong");
        link_in(f, "pong", "ping");
        link_in(f, "/proc/self/root", "magic");         /* a magic link on the host; nothing here */
        link_in(f, "s2", "s1");
        link_in(f, "nonexistent", "s2");
        /* An absolute link to the host's outside directory: inside the tree that path is missing. */
        link_in(f, f->outside, "host");
        return 0;
}

static void assert_outside_empty(struct th_tree *f) {
        DIR *d = opendir(f->outside);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        fail_msg("something was written outside the tree: %s", de->d_name);
        closedir(d);
}

/* The inode of fd is the one of path inside the tree (not following a last symlink). */
static void assert_fd_is(struct th_tree *f, int fd, const char *path) {
        struct stat a, b;
        assert_int_equal(fstat(fd, &a), 0);
        assert_int_equal(fstatat(f->rootfd, path, &b, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH), 0);
        if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
                fail_msg("the fd is not %s", path);
}

static void expect_path(struct th_tree *f, const char *path, unsigned flags, int want_r, const char *want) {
        _cleanup_free_ char *got = NULL;
        int r = chase_in_root(f->rootfd, path, flags, &got, NULL);
        if (r != want_r)
                fail_msg("chase '%s' (flags %#x): %d, want %d", path, flags, r, want_r);
        if (want && (!got || strcmp(got, want) != 0))
                fail_msg("chase '%s' (flags %#x): '%s', want '%s'", path, flags, got ? got : "(null)", want);
        if (r < 0)
                assert_null(got);       /* outputs only on success */
}

/* "../../.." symlinks stay inside; absolute symlinks resolve inside; repeated slashes go. */
static void test_resolution(void **state) {
        struct th_tree *f = *state;
        expect_path(f, "", 0, 1, "/");
        expect_path(f, "/", 0, 1, "/");
        expect_path(f, "//./", 0, 1, "/");
        expect_path(f, "etc", 0, 1, "/etc");
        expect_path(f, "/etc//passwd", 0, 1, "/etc/passwd");
        expect_path(f, "../../../etc", 0, 1, "/etc");
        expect_path(f, "/../.././//../../etc/./", 0, 1, "/etc");
        expect_path(f, "etc/../usr/./lib/..", 0, 1, "/usr");
        expect_path(f, "6dots", 0, 1, "/");
        expect_path(f, "6dots/etc/passwd", 0, 1, "/etc/passwd");
        expect_path(f, "6dotsusr", 0, 1, "/usr");
        expect_path(f, "etc/8dotsusr/lib", 0, 1, "/usr/lib");
        expect_path(f, "abs", 0, 1, "/usr/lib");
        expect_path(f, "etc/abs", 0, 1, "/usr/lib");
        expect_path(f, "etc/abs/../../etc/abs/..", 0, 1, "/usr");
        expect_path(f, "etc/../abs/../../etc", 0, 1, "/etc");
        expect_path(f, "slashslash", 0, 1, "/usr");
        expect_path(f, "start", 0, 1, "/etc/passwd");
        expect_path(f, "dotdot/dotdot/dot/etc", 0, 1, "/etc");
        /* A host path is only a name inside the tree, where it does not exist. */
        expect_path(f, "host", 0, -ENOENT, NULL);
        expect_path(f, "magic", 0, -ENOENT, NULL);
        expect_path(f, "magic/etc/passwd", 0, -ENOENT, NULL);
        expect_path(f, "missing", 0, -ENOENT, NULL);
        expect_path(f, "missing/..", 0, -ENOENT, NULL);
        expect_path(f, "etc/passwd/x", 0, -ENOTDIR, NULL);
        expect_path(f, "etc/passwd/", 0, -ENOTDIR, NULL);
        expect_path(f, "s1", 0, -ENOENT, NULL);
        /* Loops end in -ELOOP. */
        expect_path(f, "loop", 0, -ELOOP, NULL);
        expect_path(f, "ping/x", 0, -ELOOP, NULL);
        expect_path(f, "etc/../ping", 0, -ELOOP, NULL);
        /* A name longer than NAME_MAX, as the kernel says. */
        char longname[NAME_MAX + 8];
        memset(longname, 'n', sizeof longname - 1);
        longname[sizeof longname - 1] = 0;
        expect_path(f, longname, CHASE_PARENT, -ENAMETOOLONG, NULL);
        longname[NAME_MAX] = 0;
        expect_path(f, longname, CHASE_NONEXISTENT, 0, NULL);
        assert_outside_empty(f);
}

/* The fd is the inode the path names inside the tree. */
static void test_fd(void **state) {
        struct th_tree *f = *state;
        _cleanup_close_ int fd = -EBADF;
        assert_int_equal(chase_in_root(f->rootfd, "6dotsusr/lib", 0, NULL, &fd), 1);
        assert_fd_is(f, fd, "usr/lib");
        /* An O_PATH fd serves as a directory for *at() calls. */
        struct stat st;
        assert_int_equal(fstatat(fd, "..", &st, 0), 0);
        closep(&fd);
        assert_int_equal(chase_in_root(f->rootfd, "start", 0, NULL, &fd), 1);
        assert_fd_is(f, fd, "etc/passwd");
        closep(&fd);
        assert_int_equal(chase_in_root(f->rootfd, "/", 0, NULL, &fd), 1);
        assert_fd_is(f, fd, "");
        closep(&fd);
        /* Nothing is written on failure. */
        fd = 12345;
        assert_int_equal(chase_in_root(f->rootfd, "loop", 0, NULL, &fd), -ELOOP);
        assert_int_equal(fd, 12345);
        fd = -EBADF;
}

static void test_nofollow(void **state) {
        struct th_tree *f = *state;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *p = NULL;
        assert_int_equal(chase_in_root(f->rootfd, "abs", CHASE_NOFOLLOW, &p, &fd), 1);
        assert_string_equal(p, "/abs");
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
        /* s1 -> s2 -> nonexistent: the link itself. */
        expect_path(f, "s1", CHASE_NOFOLLOW, 1, "/s1");
        expect_path(f, "loop", CHASE_NOFOLLOW, 1, "/loop");
        /* Only the last component: the directories are followed. */
        expect_path(f, "6dotsusr/lib", CHASE_NOFOLLOW, 1, "/usr/lib");
        expect_path(f, "dot/abs", CHASE_NOFOLLOW, 1, "/abs");
}

static void test_parent(void **state) {
        struct th_tree *f = *state;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *name = NULL;
        /* The last symlink is followed: the directory holding its target. */
        assert_int_equal(chase_in_root(f->rootfd, "abs", CHASE_PARENT, &name, &fd), 1);
        assert_string_equal(name, "lib");
        assert_fd_is(f, fd, "usr");
        closep(&fd);
        name = mfree_str(name);
        /* ... not with CHASE_NOFOLLOW. */
        assert_int_equal(chase_in_root(f->rootfd, "abs", CHASE_PARENT | CHASE_NOFOLLOW, &name, &fd), 1);
        assert_string_equal(name, "abs");
        assert_fd_is(f, fd, "");
        closep(&fd);
        name = mfree_str(name);
        /* A missing last component is fine (0), a missing directory is not. */
        assert_int_equal(chase_in_root(f->rootfd, "6dots/etc/new", CHASE_PARENT, &name, &fd), 0);
        assert_string_equal(name, "new");
        assert_fd_is(f, fd, "etc");
        closep(&fd);
        name = mfree_str(name);
        assert_int_equal(chase_in_root(f->rootfd, "missing/new", CHASE_PARENT, &name, &fd), -ENOENT);
        /* A dangling last symlink: the directory its target would be in. */
        assert_int_equal(chase_in_root(f->rootfd, "s1", CHASE_PARENT, &name, &fd), 0);
        assert_string_equal(name, "nonexistent");
        assert_fd_is(f, fd, "");
        closep(&fd);
        name = mfree_str(name);
        /* Paths that end in a directory of their own, and the root. */
        expect_path(f, "usr/lib/..", CHASE_PARENT, 1, "usr");
        expect_path(f, "usr/lib/.", CHASE_PARENT, 1, "lib");
        expect_path(f, "/", CHASE_PARENT, 1, ".");
        expect_path(f, "6dots", CHASE_PARENT, 1, ".");
        assert_int_equal(chase_in_root(f->rootfd, "usr/lib/..", CHASE_PARENT, NULL, &fd), 1);
        assert_fd_is(f, fd, "");
        assert_outside_empty(f);
}

static void test_mkdir(void **state) {
        struct th_tree *f = *state;
        mode_t old = umask(077);
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *p = NULL;
        assert_int_equal(chase_in_root(f->rootfd, "new/a/b", CHASE_MKDIR_0755, &p, &fd), 1);
        assert_string_equal(p, "/new/a/b");
        assert_fd_is(f, fd, "new/a/b");
        closep(&fd);
        struct stat st;
        assert_int_equal(fstatat(f->rootfd, "new/a", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0755);     /* whatever the umask */
        assert_int_equal(fstatat(f->rootfd, "new/a/b", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        /* Existing directories are kept as they are. */
        assert_int_equal(fchmodat(f->rootfd, "new/a", 0700, 0), 0);
        assert_int_equal(chase_in_root(f->rootfd, "new/a/c", CHASE_MKDIR_0755, NULL, NULL), 1);
        assert_int_equal(fstatat(f->rootfd, "new/a", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        /* Through symlinks, inside the tree. */
        assert_int_equal(chase_in_root(f->rootfd, "6dots/abs/x/y", CHASE_MKDIR_0755, NULL, NULL), 1);
        assert_int_equal(fstatat(f->rootfd, "usr/lib/x/y", &st, 0), 0);
        /* With CHASE_PARENT the last component is not made. */
        p = mfree_str(p);
        assert_int_equal(chase_in_root(f->rootfd, "m1/m2/file", CHASE_MKDIR_0755 | CHASE_PARENT, &p, &fd), 0);
        assert_fd_is(f, fd, "m1/m2");
        assert_int_equal(faccessat(f->rootfd, "m1/m2/file", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        closep(&fd);
        /* A symlink's target is never made: dangling stays dangling, and nothing on the host. */
        assert_int_equal(chase_in_root(f->rootfd, "host/x", CHASE_MKDIR_0755, NULL, NULL), -ENOENT);
        assert_int_equal(chase_in_root(f->rootfd, "s1/x", CHASE_MKDIR_0755, NULL, NULL), -ENOENT);
        assert_int_equal(faccessat(f->rootfd, "tmp", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(faccessat(f->rootfd, "nonexistent", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        /* ... while what follows the link in the path is the caller's, and made. */
        assert_int_equal(chase_in_root(f->rootfd, "abs/z", CHASE_MKDIR_0755, NULL, NULL), 1);
        assert_int_equal(fstatat(f->rootfd, "usr/lib/z", &st, 0), 0);
        /* A file in the way. */
        assert_int_equal(chase_in_root(f->rootfd, "etc/passwd/x", CHASE_MKDIR_0755, NULL, NULL), -ENOTDIR);
        umask(old);
        assert_outside_empty(f);
}

static void test_must_be(void **state) {
        struct th_tree *f = *state;
        expect_path(f, "etc", CHASE_MUST_BE_DIRECTORY, 1, "/etc");
        expect_path(f, "start", CHASE_MUST_BE_DIRECTORY, -ENOTDIR, NULL);
        /* A wanted directory is looked up with O_DIRECTORY first: links and other types still
         * take the full way. */
        expect_path(f, "abs", CHASE_MUST_BE_DIRECTORY, 1, "/usr/lib");
        expect_path(f, "usr/lib/", 0, 1, "/usr/lib");
        expect_path(f, "etc/abs/", 0, 1, "/usr/lib");
        expect_path(f, "abs", CHASE_MUST_BE_DIRECTORY | CHASE_NOFOLLOW, -ENOTDIR, NULL);
        expect_path(f, "etc/fifo", CHASE_MUST_BE_DIRECTORY, -ENOTDIR, NULL);
        expect_path(f, "loop", CHASE_MUST_BE_DIRECTORY, -ELOOP, NULL);
        expect_path(f, "s1", CHASE_MUST_BE_DIRECTORY, -ENOENT, NULL);
        expect_path(f, "6dots", CHASE_MUST_BE_DIRECTORY | CHASE_PARENT, 1, ".");
        expect_path(f, "start", CHASE_MUST_BE_REGULAR, 1, "/etc/passwd");
        expect_path(f, "etc", CHASE_MUST_BE_REGULAR, -EISDIR, NULL);
        expect_path(f, "etc/fifo", CHASE_MUST_BE_REGULAR, -EBADFD, NULL);
        expect_path(f, "abs", CHASE_MUST_BE_REGULAR | CHASE_NOFOLLOW, -EBADFD, NULL);
        expect_path(f, "etc", CHASE_MUST_BE_REGULAR | CHASE_MUST_BE_DIRECTORY, -EINVAL, NULL);
        /* With CHASE_PARENT: the entry when it is there. */
        expect_path(f, "etc/passwd", CHASE_PARENT | CHASE_MUST_BE_REGULAR, 1, "passwd");
        expect_path(f, "etc/fifo", CHASE_PARENT | CHASE_MUST_BE_REGULAR, -EBADFD, NULL);
        expect_path(f, "etc/new", CHASE_PARENT | CHASE_MUST_BE_REGULAR, 0, "new");
}

static void test_nonexistent(void **state) {
        struct th_tree *f = *state;
        int fd = 5;
        expect_path(f, "host/x", CHASE_NONEXISTENT, 0, NULL);
        _cleanup_free_ char *p = NULL, *want = NULL;
        assert_int_equal(chase_in_root(f->rootfd, "host//x/", CHASE_NONEXISTENT, &p, &fd), 0);
        assert_int_equal(fd, -EBADF);
        assert_true(asprintf(&want, "%s/x", f->outside) > 0);
        assert_string_equal(p, want);   /* the host path, as a path inside the tree */
        expect_path(f, "6dotsusr/missing/./y", CHASE_NONEXISTENT, 0, "/usr/missing/y");
        expect_path(f, "s1", CHASE_NONEXISTENT, 0, "/nonexistent");
        expect_path(f, "etc/passwd", CHASE_NONEXISTENT, 1, "/etc/passwd");
        expect_path(f, "missing/../etc", CHASE_NONEXISTENT, -ENOENT, NULL);
        /* With CHASE_PARENT, a missing directory gives the whole path and no fd. */
        fd = 5;
        p = mfree_str(p);
        assert_int_equal(chase_in_root(f->rootfd, "missing/a/b", CHASE_NONEXISTENT | CHASE_PARENT, &p, &fd), 0);
        assert_string_equal(p, "/missing/a/b");
        assert_int_equal(fd, -EBADF);
        (void)fd;
}

static void test_prohibit_symlinks(void **state) {
        struct th_tree *f = *state;
        expect_path(f, "etc/passwd", CHASE_PROHIBIT_SYMLINKS, 1, "/etc/passwd");
        expect_path(f, "dot/etc", CHASE_PROHIBIT_SYMLINKS, -EREMCHG, NULL);
        expect_path(f, "abs", CHASE_PROHIBIT_SYMLINKS, -EREMCHG, NULL);
        expect_path(f, "abs", CHASE_PROHIBIT_SYMLINKS | CHASE_NOFOLLOW, 1, "/abs");
        expect_path(f, "abs", CHASE_PROHIBIT_SYMLINKS | CHASE_NOFOLLOW | CHASE_PARENT, 1, "abs");
        expect_path(f, "../etc", CHASE_PROHIBIT_SYMLINKS, 1, "/etc");
}

static void test_refuse_escape(void **state) {
        struct th_tree *f = *state;
        expect_path(f, "6dots", CHASE_REFUSE_ESCAPE, -EXDEV, NULL);
        expect_path(f, "etc/8dotsusr", CHASE_REFUSE_ESCAPE, -EXDEV, NULL);
        expect_path(f, "../etc", CHASE_REFUSE_ESCAPE, -EXDEV, NULL);
        expect_path(f, "dotdot", CHASE_REFUSE_ESCAPE, -EXDEV, NULL);
        /* ".." that stays inside, and absolute symlinks, are fine. */
        expect_path(f, "etc/../usr", CHASE_REFUSE_ESCAPE, 1, "/usr");
        expect_path(f, "abs/..", CHASE_REFUSE_ESCAPE, 1, "/usr");
        expect_path(f, "usr/lib/../../etc", CHASE_REFUSE_ESCAPE, 1, "/etc");
}

/* The symlink hook: asked for every link the walk would follow (in the path, in targets, a last
 * component unless CHASE_NOFOLLOW), with where it is; its refusal is the chase's answer. */
struct hook_log {
        char seen[512];         /* "dir|name;" per call */
        dev_t dev;              /* the link refused (st_ino 0: none) */
        ino_t ino;
};

static int log_and_refuse(const char *dir, const char *name, int fd, const struct stat *st, void *userdata) {
        struct hook_log *l = userdata;
        assert_true(S_ISLNK(st->st_mode));
        size_t n = strlen(l->seen);
        snprintf(l->seen + n, sizeof l->seen - n, "%s|%s;", dir, name);
        return st->st_dev == l->dev && st->st_ino == l->ino ? -EPERM : 0;
}

static void expect_hooked(struct th_tree *f, const char *path, unsigned flags, const char *refuse, int want_r,
                          const char *want, const char *want_seen) {
        struct hook_log l = {};
        if (refuse) {
                struct stat st;
                assert_int_equal(fstatat(f->rootfd, refuse, &st, AT_SYMLINK_NOFOLLOW), 0);
                l.dev = st.st_dev;
                l.ino = st.st_ino;
        }
        const struct chase_hooks hooks = { .symlink = log_and_refuse, .userdata = &l };
        _cleanup_free_ char *untouched = strdup("untouched");
        char *got = untouched;
        int fd = 12345;
        int r = chase_in_root_full(f->rootfd, path, flags, &hooks, &got, &fd);
        if (r != want_r || strcmp(l.seen, want_seen) != 0)
                fail_msg("chase '%s' refusing %s: %d, want %d; hook saw '%s', want '%s'", path, refuse ? refuse : "-", r,
                         want_r, l.seen, want_seen);
        if (r < 0) {
                assert_string_equal(got, "untouched");
                assert_int_equal(fd, 12345);
        } else {
                assert_string_equal(got, want);
                if (fd >= 0)
                        close(fd);
                if (got != untouched)
                        free(got);
        }
}

static void test_symlink_hook(void **state) {
        struct th_tree *f = *state;
        /* Every link on the way, with the resolved directory it is in. */
        expect_hooked(f, "etc/passwd", 0, NULL, 1, "/etc/passwd", "");
        expect_hooked(f, "etc/abs", 0, NULL, 1, "/usr/lib", "/etc|abs;");
        expect_hooked(f, "start", 0, NULL, 1, "/etc/passwd", "|start;|dot;|dotdot;");
        expect_hooked(f, "6dots/abs/..", 0, NULL, 1, "/usr", "|6dots;|abs;");
        expect_hooked(f, "s1", CHASE_NONEXISTENT, NULL, 0, "/nonexistent", "|s1;|s2;");
        /* A last component under CHASE_NOFOLLOW is not followed, so not asked about. */
        expect_hooked(f, "etc/abs", CHASE_NOFOLLOW, NULL, 1, "/etc/abs", "");
        expect_hooked(f, "etc/abs", CHASE_NOFOLLOW | CHASE_PARENT, NULL, 1, "abs", "");
        expect_hooked(f, "etc/abs", CHASE_PARENT, NULL, 1, "lib", "/etc|abs;");
        /* Refused by identity: wherever the link is met, by whichever name; others pass. */
        expect_hooked(f, "abs", 0, "abs", -EPERM, NULL, "|abs;");
        expect_hooked(f, "dot/abs/x", CHASE_MKDIR_0755, "abs", -EPERM, NULL, "|dot;|abs;");
        expect_hooked(f, "etc/abs", 0, "abs", 1, "/usr/lib", "/etc|abs;");
        expect_hooked(f, "start", 0, "dotdot", -EPERM, NULL, "|start;|dot;|dotdot;");
        expect_hooked(f, "abs", CHASE_NOFOLLOW, "abs", 1, "/abs", "");
        /* The refusal comes before anything is made. */
        assert_int_equal(faccessat(f->rootfd, "usr/lib/x", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        /* CHASE_PROHIBIT_SYMLINKS refuses first; no hook is asked. */
        expect_hooked(f, "abs", CHASE_PROHIBIT_SYMLINKS, NULL, -EREMCHG, NULL, "");
        /* A hard link to a refused link is the same link. */
        assert_int_equal(linkat(f->rootfd, "abs", f->rootfd, "etc/abs2", 0), 0);
        expect_hooked(f, "etc/abs2/x", 0, "abs", -EPERM, NULL, "/etc|abs2;");
        assert_outside_empty(f);
}

/* The caps: symlink hops and lookups. */
static void test_caps(void **state) {
        struct th_tree *f = *state;
        /* l0 -> l1 -> ... -> lN -> etc */
        for (int i = 0; i <= CHASE_SYMLINKS_MAX; i++) {
                char name[16], target[16];
                snprintf(name, sizeof name, "l%d", i);
                if (i == CHASE_SYMLINKS_MAX)
                        snprintf(target, sizeof target, "etc");
                else
                        snprintf(target, sizeof target, "l%d", i + 1);
                link_in(f, target, name);
        }
        char p[16];
        snprintf(p, sizeof p, "l%d", 1);                /* CHASE_SYMLINKS_MAX links: fine */
        expect_path(f, p, 0, 1, "/etc");
        expect_path(f, "l0", 0, -ELOOP, NULL);          /* one more: too many */
        /* "usr/.." many times over: each ".." walks down again, and the walk is capped. */
        size_t n = CHASE_STEPS_MAX;
        char *many = malloc(n * 7 + 1);
        for (size_t i = 0; i < n; i++)
                memcpy(many + i * 7, "usr/../", 7);
        many[n * 7] = 0;
        expect_path(f, many, 0, -ELOOP, NULL);
        many[100 * 7] = 0;
        expect_path(f, many, 0, 1, "/");
        free(many);
}

/* chase_and_open_in_root(): the last component opened in the directory the chase found. */
static void test_open(void **state) {
        struct th_tree *f = *state;
        _cleanup_close_ int fd = chase_and_open_in_root(f->rootfd, "6dotsusr/../start", CHASE_MUST_BE_REGULAR, O_RDONLY, 0);
        assert_true(fd >= 0);
        _cleanup_free_ char *text = NULL;
        assert_int_equal(fs_read_fd(fd, 100, &text, NULL), 0);
        assert_string_equal(text, "root:x:0:0::/root:/bin/sh\n");
        closep(&fd);
        /* O_CREAT through a symlinked directory lands inside. */
        fd = chase_and_open_in_root(f->rootfd, "6dots/abs/new", 0, O_WRONLY | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        closep(&fd);
        struct stat st;
        assert_int_equal(fstatat(f->rootfd, "usr/lib/new", &st, 0), 0);
        /* A symlink as the last component with CHASE_NOFOLLOW is not opened. */
        assert_int_equal(chase_and_open_in_root(f->rootfd, "start", CHASE_NOFOLLOW, O_RDONLY, 0), -ELOOP);
        fd = chase_and_open_in_root(f->rootfd, "start", CHASE_NOFOLLOW, O_PATH, 0);
        assert_true(fd >= 0);
        assert_fd_is(f, fd, "start");
        closep(&fd);
        /* A FIFO is refused before it is opened (O_RDONLY without O_NONBLOCK would block). */
        assert_int_equal(chase_and_open_in_root(f->rootfd, "etc/fifo", CHASE_MUST_BE_REGULAR, O_RDONLY, 0), -EBADFD);
        assert_int_equal(chase_and_open_in_root(f->rootfd, "etc", CHASE_MUST_BE_REGULAR, O_RDONLY, 0), -EISDIR);
        assert_int_equal(chase_and_open_in_root(f->rootfd, "start", CHASE_MUST_BE_DIRECTORY, O_RDONLY, 0), -ENOTDIR);
        /* The root itself. */
        fd = chase_and_open_in_root(f->rootfd, "6dots", CHASE_MUST_BE_DIRECTORY, O_RDONLY, 0);
        assert_true(fd >= 0);
        assert_fd_is(f, fd, "");
        closep(&fd);
        assert_int_equal(chase_and_open_in_root(f->rootfd, "missing", 0, O_RDONLY, 0), -ENOENT);
        assert_int_equal(chase_and_open_in_root(f->rootfd, "host/x", 0, O_WRONLY | O_CREAT, 0644), -ENOENT);
        assert_outside_empty(f);
}

/* The walk and the kernel's RESOLVE_IN_ROOT agree on every path of a table ("" aside: the kernel
 * refuses an empty path, the chase takes it for the root, as systemd's does). */
static void test_agrees_with_openat2(void **state) {
        struct th_tree *f = *state;
        static const char *const paths[] = {
                "/", ".", "etc", "etc/passwd", "../../etc", "6dots", "6dots/etc/passwd", "6dotsusr", "etc/8dotsusr/lib",
                "abs", "abs/..", "slashslash", "start", "dotdot/dot/etc", "host", "magic", "missing", "etc/passwd/x",
                "s1", "loop", "ping", "usr/lib/../../../etc/./passwd",
        };
        int probe = fs_open_in_root(f->rootfd, ".", O_PATH, 0, 0);
        if (probe == -ENOSYS)
                skip();
        close(probe);
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                _cleanup_close_ int a = -EBADF;
                int r = chase_in_root(f->rootfd, paths[i], 0, NULL, &a);
                _cleanup_close_ int b = fs_open_in_root(f->rootfd, paths[i], O_PATH, 0, 0);
                if (r < 0 || b < 0) {
                        if (r != b)
                                fail_msg("'%s': chase %d, openat2 %d", paths[i], r, b);
                        continue;
                }
                struct stat sa, sb;
                assert_int_equal(fstat(a, &sa), 0);
                assert_int_equal(fstat(b, &sb), 0);
                if (sa.st_ino != sb.st_ino || sa.st_dev != sb.st_dev)
                        fail_msg("'%s': chase and openat2 reach different files", paths[i]);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_resolution, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_fd, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_nofollow, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_parent, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_mkdir, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_must_be, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_nonexistent, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_prohibit_symlinks, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_refuse_escape, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_symlink_hook, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_caps, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_open, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_agrees_with_openat2, setup, th_tree_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
