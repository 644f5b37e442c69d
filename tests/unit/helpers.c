/* SPDX-License-Identifier: MIT */
/* See helpers.h. */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include <cmocka.h>

#include "util/cleanup.h"
#include "util/fs.h"

/* /tmp/mkm-test-NAME.XXXXXX made, or NULL with errno set. */
static char *tmpdir_make(const char *name) {
        char *dir = NULL;
        if (asprintf(&dir, "/tmp/mkm-test-%s.XXXXXX", name) < 0)
                return NULL;
        if (!mkdtemp(dir)) {
                free(dir);
                return NULL;
        }
        return dir;
}

char *th_tmpdir_new(const char *name) {
        char *dir = tmpdir_make(name);
        assert_non_null(dir);
        return dir;
}

void th_tmpdir_free(char *dir) {
        if (dir)
                (void)fs_rm_rf_at(AT_FDCWD, dir);
        free(dir);
}

int th_tmpdir_setup(void **state, const char *name) {
        char *dir = tmpdir_make(name);
        if (!dir)
                return -1;
        *state = dir;
        return 0;
}

int th_tmpdir_teardown(void **state) {
        th_tmpdir_free(*state);
        return 0;
}

void th_tree_init(struct th_tree *t, const char *name) {
        snprintf(t->top, sizeof t->top, "/tmp/mkm-test-%s.XXXXXX", name);
        assert_non_null(mkdtemp(t->top));
        snprintf(t->root, sizeof t->root, "%s/root", t->top);
        snprintf(t->outside, sizeof t->outside, "%s/outside", t->top);
        assert_int_equal(mkdir(t->root, 0755), 0);
        assert_int_equal(mkdir(t->outside, 0755), 0);
        t->rootfd = open(t->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(t->rootfd >= 0);
}

void th_tree_done(struct th_tree *t) {
        close(t->rootfd);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, t->top), 0);
}

int th_tree_setup(void **state, const char *name) {
        struct th_tree *t = calloc(1, sizeof *t);
        assert_non_null(t);
        th_tree_init(t, name);
        *state = t;
        return 0;
}

int th_tree_teardown(void **state) {
        th_tree_done(*state);
        free(*state);
        return 0;
}

void th_write_file(const char *dir, const char *rel, const char *text, mode_t mode) {
        _cleanup_free_ char *path = fs_path_join(dir, rel), *parent = path ? fs_path_dirname(path) : NULL;
        assert_non_null(parent);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, parent, 0755), 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, path, text, strlen(text), mode), 0);
}

/* fs_read_file_follow_at() of dir/name: 0 or a negative errno. */
static int read_in(const char *dir, const char *name, char **ret, size_t *ret_len) {
        _cleanup_free_ char *path = fs_path_join(dir, name);
        assert_non_null(path);
        return fs_read_file_follow_at(AT_FDCWD, path, 1 << 20, ret, ret_len);
}

char *th_read_file(const char *dir, const char *name, size_t *ret_len) {
        char *text = NULL;
        return read_in(dir, name, &text, ret_len) < 0 ? NULL : text;
}

char *th_read_file_ok(const char *dir, const char *name, size_t *ret_len) {
        char *text = NULL;
        assert_int_equal(read_in(dir, name, &text, ret_len), 0);
        return text;
}

struct stat th_lstat_in(const char *dir, const char *path) {
        _cleanup_free_ char *full = fs_path_join(dir, path);
        struct stat st;
        if (lstat(full, &st) < 0)
                fail_msg("lstat %s: %m", full);
        return st;
}

void th_buf_add(struct th_buf *b, const char *fmt, ...) {
        va_list ap;
        for (;;) {
                va_start(ap, fmt);
                int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
                va_end(ap);
                assert_true(k >= 0);
                if (b->p && b->n + (size_t)k < b->cap) {
                        b->n += (size_t)k;
                        return;
                }
                b->cap = (b->cap + (size_t)k + 1) * 2;
                b->p = realloc(b->p, b->cap);
                assert_non_null(b->p);
        }
}


pid_t th_child_start(struct th_child *c) {
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        c->pid = fork();
        assert_true(c->pid >= 0);
        if (c->pid == 0) {
                close(p[0]);
                c->fd = p[1];
                return 0;
        }
        close(p[1]);
        c->fd = p[0];
        return c->pid;
}

int th_child_wait(struct th_child *c, char *msg, size_t size) {
        size_t n = 0;
        for (;;) {
                char buf[512];
                ssize_t got = read(c->fd, buf, sizeof buf);
                if (got < 0 && errno == EINTR)
                        continue;
                assert_true(got >= 0);
                if (got == 0)
                        break;
                size_t take = size > n + 1 ? size - n - 1 : 0;
                if (take > (size_t)got)
                        take = (size_t)got;
                memcpy(msg + n, buf, take);
                n += take;
        }
        if (size > 0)
                msg[n] = 0;
        close(c->fd);
        c->fd = -1;
        int status;
        assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
        return status;
}

int th_drop_effective_cap(int cap) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2];
        if (syscall(SYS_capget, &h, d) < 0)
                return -1;
        d[cap / 32].effective &= ~(1u << (cap % 32));
        return (int)syscall(SYS_capset, &h, d);
}

int th_bind_over(const char *src, const char *dir, const char *rel) {
        char at[PATH_MAX];
        (void)snprintf(at, sizeof at, "%s/%s", dir, rel);
        return mount(src, at, NULL, MS_BIND, NULL);
}

void th_unbind(const char *dir, const char *rel) {
        char at[PATH_MAX];
        (void)snprintf(at, sizeof at, "%s/%s", dir, rel);
        (void)umount2(at, MNT_DETACH);
}

char *th_broken_listing_new(const char *top) {
        char cmd[4096];
        /* Made without mounting it (mkfs -d, e2fsck -D builds the index), attached read-only and
         * its device's buffers dropped before the mount: what is read is what was altered. */
        snprintf(cmd, sizeof cmd,
                 "set -e; cd '%s'; mkdir -p broken.src/d broken; "
                 "for i in $(seq 300); do : >broken.src/d/file-with-a-rather-long-name-$i; done; "
                 "truncate -s 8M broken.img; "
                 "mkfs.ext4 -q -F -b 1024 -O metadata_csum,dir_index,^has_journal -d broken.src broken.img; "
                 "e2fsck -fyD broken.img >/dev/null 2>&1 || test $? -eq 1; "
                 "debugfs -R 'htree /d' broken.img 2>/dev/null | grep -q 'Root node dump'; "
                 /* logical block 1 of d: its first leaf, after the index root */
                 "b=$(debugfs -R 'blocks /d' broken.img 2>/dev/null | awk '{print $2}'); test -n \"$b\"; "
                 "printf X | dd of=broken.img bs=1 seek=$((b * 1024 + 40)) conv=notrunc status=none; "
                 "dev=$(losetup -f --show -r broken.img); echo \"$dev\" >broken.dev; blockdev --flushbufs \"$dev\"; "
                 "mount -o ro,errors=continue \"$dev\" broken",
                 top);
        assert_int_equal(system(cmd), 0);
        char *d = NULL;
        assert_true(asprintf(&d, "%s/broken/d", top) > 0);
        return d;
}

void th_broken_listing_done(const char *top) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "cd '%s' && umount -l broken; test -s broken.dev && losetup -d \"$(cat broken.dev)\"", top);
        (void)!system(cmd);
}
