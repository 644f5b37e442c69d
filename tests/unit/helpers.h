/* SPDX-License-Identifier: MIT */
/* Small helpers the cmocka unit tests share (the Makefile links every non-test-*.c file here into
 * every test binary): scratch directories and trees under /tmp, writing and reading files in
 * them, and a growing printf buffer. One copy instead of one per test file, so a fix reaches
 * every test. A helper that asserts fails the calling test with the cmocka assertion the copies
 * made (the report names helpers.c). Paths are host paths the test made itself. */
#pragma once

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* A fresh directory /tmp/mkm-test-NAME.XXXXXX (mkdtemp: 0700). Caller owns the path; asserts. */
char *th_tmpdir_new(const char *name);
/* rm -rf dir (errors ignored) and free it; NULL is fine. */
void th_tmpdir_free(char *dir);

/* cmocka fixtures with a fresh /tmp/mkm-test-NAME.XXXXXX as the test's state: setup makes it and
 * sets *state to its path, or returns -1 (cmocka reports the setup as failed; no assertion);
 * teardown is th_tmpdir_free(*state). Call setup from a one-line wrapper that names the test. */
int th_tmpdir_setup(void **state, const char *name);
int th_tmpdir_teardown(void **state);

/* A scratch tree: top = /tmp/mkm-test-NAME.XXXXXX holding root/ (the tree under test, open as
 * rootfd) and outside/ (what the tree must never reach), both 0755. */
struct th_tree {
        char top[64];
        char root[128], outside[128];
        int rootfd;
};
/* Make the tree in caller storage; asserts. */
void th_tree_init(struct th_tree *t, const char *name);
/* Close rootfd and remove top; asserts that the removal succeeded. */
void th_tree_done(struct th_tree *t);
/* cmocka fixtures for a test whose state is the tree itself: setup allocates it into *state and
 * makes it (th_tree_init(), asserts), teardown is th_tree_done() and frees it. */
int th_tree_setup(void **state, const char *name);
int th_tree_teardown(void **state);

/* Write text to dir/rel with exactly mode (fchmod, whatever the umask), making missing parents
 * 0755; asserts. Uses fs_write_file_at(): what is at the name (a file, a symlink) is replaced,
 * never written through; no fsync, as a scratch tree needs none. */
void th_write_file(const char *dir, const char *rel, const char *text, mode_t mode);

/* dir/name whole (up to 1 MiB, symlinks followed), NUL-terminated; its length to *ret_len unless
 * ret_len is NULL. Caller owns the result. th_read_file() returns NULL if the file cannot be
 * read; th_read_file_ok() asserts that the read succeeded. */
char *th_read_file(const char *dir, const char *name, size_t *ret_len);
char *th_read_file_ok(const char *dir, const char *name, size_t *ret_len);

/* lstat() of dir/path; fails the test if it fails. */
struct stat th_lstat_in(const char *dir, const char *path);

/* A growing string for big generated inputs: p (NUL-terminated once anything was added; caller
 * frees), n bytes used, cap allocated. Start from (struct th_buf){}. */
struct th_buf {
        char *p;
        size_t n, cap;
};
/* Append printf output; asserts on allocation failure. */
void th_buf_add(struct th_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));


/* A child process whose words come back to the test. th_child_start() forks: in the child it
 * returns 0, and c->fd is the write end of a pipe (write what the test should see, or dup2 it onto
 * 2 for what the code prints; end with _exit); in the parent it returns the child's pid.
 * th_child_wait() reads all the child wrote into msg (NUL-terminated, cut to size), reaps it and
 * returns its wait status. Both assert. */
struct th_child {
        pid_t pid;
        int fd;
};
pid_t th_child_start(struct th_child *c);
int th_child_wait(struct th_child *c, char *msg, size_t size);

/* Take capability cap (CAP_*) out of this process's effective set (capset(2); no libcap): how a
 * test makes root without CAP_SETUID or CAP_SETGID, in a child. -1 with errno on failure. */
int th_drop_effective_cap(int cap);

/* A directory whose listing fails: readdir(3) of TOP/broken/d ends with EBADMSG, as a disk error
 * would end it. An ext4 image TOP/broken.img (mkfs.ext4 -d, e2fsck -D, debugfs: e2fsprogs) with
 * an indexed directory of 300 entries, one of its leaf blocks altered so that its checksum fails,
 * attached read-only to a loop device (losetup) and mounted at TOP/broken. Returns TOP/broken/d
 * (caller frees); asserts. th_broken_listing_done(TOP) unmounts it and detaches the device. */
char *th_broken_listing_new(const char *top);
void th_broken_listing_done(const char *top);

/* Bind src (such a failing listing) over DIR/REL, where the code under test will list it: 0, or -1
 * with errno (the test fails after its cleanup). th_unbind(DIR, REL) detaches it. */
int th_bind_over(const char *src, const char *dir, const char *rel);
void th_unbind(const char *dir, const char *rel);
