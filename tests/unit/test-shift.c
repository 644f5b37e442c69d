/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/shift on temporary trees: IDs moved by the base with setuid/setgid bits
 * and modes kept, file capabilities rewritten as v3 (v2 in, v3 in), hard links shifted once,
 * symlinks changed themselves and never followed out of the tree, the root directory included,
 * base 0 a no-op, and every refusal (an ID or a capability root id outside the range, the root
 * directory outside it, a tree too deep) with its code and message. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctx.h"
#include "helpers.h"
#include "shift.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"

#define BASE 524288u
#define RANGE 65536u

struct fixture {
        struct th_tree t;       /* root/ (the tree) and outside/ (what the tree must not touch) */
        struct mkm_ctx ctx;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        th_tree_init(&f->t, "shift");
        f->ctx = (struct mkm_ctx){ .source_date_epoch = -1 };
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        th_tree_done(&f->t);
        free(f);
        return 0;
}

static void set_caps_v2(const char *path, uint32_t permitted) {
        struct vfs_cap_data c = {};
        c.magic_etc = htole32(VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE);
        c.data[0].permitted = htole32(permitted);
        assert_int_equal(lsetxattr(path, "security.capability", &c, XATTR_CAPS_SZ_2, 0), 0);
}

static void set_caps_v3(const char *path, uint32_t permitted, uint32_t rootid) {
        struct vfs_ns_cap_data c = {};
        c.magic_etc = htole32(VFS_CAP_REVISION_3);
        c.data[0].permitted = htole32(permitted);
        c.rootid = htole32(rootid);
        assert_int_equal(lsetxattr(path, "security.capability", &c, XATTR_CAPS_SZ_3, 0), 0);
}

static struct vfs_ns_cap_data get_caps(const char *path, ssize_t *ret_n) {
        struct vfs_ns_cap_data c = {};
        *ret_n = lgetxattr(path, "security.capability", &c, sizeof c);
        return c;
}

static void test_shift(void **state) {
        struct fixture *f = *state;
        th_write_file(f->t.root, "usr/bin/sudo", "x", 04755);
        th_write_file(f->t.root, "usr/bin/wall", "x", 02755);
        th_write_file(f->t.root, "usr/bin/ping", "x", 0755);
        th_write_file(f->t.root, "home/alice/notes", "x", 0600);
        th_write_file(f->t.root, "var/spool/mail", "x", 0660);
        _cleanup_free_ char *notes = fs_path_join(f->t.root, "home/alice/notes"), *home = fs_path_join(f->t.root, "home/alice");
        assert_int_equal(chown(notes, 1000, 1000), 0);
        assert_int_equal(chown(home, 1000, 100), 0);
        _cleanup_free_ char *wall = fs_path_join(f->t.root, "usr/bin/wall");
        assert_int_equal(chown(wall, 0, 5), 0);
        assert_int_equal(chmod(wall, 02755), 0);
        _cleanup_free_ char *ping = fs_path_join(f->t.root, "usr/bin/ping");
        set_caps_v2(ping, 1u << CAP_NET_RAW);
        _cleanup_free_ char *hl = fs_path_join(f->t.root, "usr/bin/sudo-link");
        _cleanup_free_ char *sudo = fs_path_join(f->t.root, "usr/bin/sudo");
        assert_int_equal(link(sudo, hl), 0);
        _cleanup_free_ char *sl = fs_path_join(f->t.root, "usr/bin/sh");
        assert_int_equal(symlink("busybox", sl), 0);
        assert_int_equal(lchown(sl, 0, 0), 0);

        struct mkm_err err = {};
        int q = shift_ownership(&f->ctx, f->t.rootfd, BASE, RANGE, &err);
        if (q < 0)
                fail_msg("%s", err.msg);
        struct stat st = th_lstat_in(f->t.root, "usr/bin/sudo");
        assert_int_equal(st.st_uid, BASE);
        assert_int_equal(st.st_gid, BASE);
        assert_int_equal(st.st_mode & 07777, 04755);   /* setuid kept */
        assert_int_equal(st.st_nlink, 2);              /* shifted once, through either name */
        st = th_lstat_in(f->t.root, "usr/bin/wall");
        assert_int_equal(st.st_gid, BASE + 5);
        assert_int_equal(st.st_mode & 07777, 02755);   /* setgid kept */
        st = th_lstat_in(f->t.root, "home/alice/notes");
        assert_int_equal(st.st_uid, BASE + 1000);
        assert_int_equal(st.st_gid, BASE + 1000);
        assert_int_equal(st.st_mode & 07777, 0600);
        st = th_lstat_in(f->t.root, "home/alice");
        assert_int_equal(st.st_uid, BASE + 1000);
        assert_int_equal(st.st_gid, BASE + 100);
        st = th_lstat_in(f->t.root, "usr/bin/sh");
        assert_true(S_ISLNK(st.st_mode));
        assert_int_equal(st.st_uid, BASE);
        st = th_lstat_in(f->t.root, "usr");
        assert_int_equal(st.st_uid, BASE);
        struct stat rst;
        assert_int_equal(fstat(f->t.rootfd, &rst), 0);
        assert_int_equal(rst.st_uid, BASE);
        assert_int_equal(rst.st_gid, BASE);
        assert_int_equal(rst.st_mode & 07777, 0755);

        /* The capability survived, now a v3 one owned by the machine's root. */
        ssize_t n;
        struct vfs_ns_cap_data c = get_caps(ping, &n);
        assert_int_equal(n, XATTR_CAPS_SZ_3);
        assert_int_equal(le32toh(c.magic_etc) & VFS_CAP_REVISION_MASK, VFS_CAP_REVISION_3);
        assert_int_equal(le32toh(c.magic_etc) & VFS_CAP_FLAGS_EFFECTIVE, VFS_CAP_FLAGS_EFFECTIVE);
        assert_int_equal(le32toh(c.rootid), BASE);
        assert_int_equal(le32toh(c.data[0].permitted), 1u << CAP_NET_RAW);
}

/* A v3 capability already names its root id: that id moves by the base like any owner (not 0,
 * which the kernel stores as v2 in the initial namespace). */
static void test_shift_caps_v3(void **state) {
        struct fixture *f = *state;
        th_write_file(f->t.root, "usr/bin/ping", "x", 0755);
        _cleanup_free_ char *ping = fs_path_join(f->t.root, "usr/bin/ping");
        set_caps_v3(ping, 1u << CAP_NET_RAW, 5);
        struct mkm_err err = {};
        if (shift_ownership(&f->ctx, f->t.rootfd, BASE, RANGE, &err) < 0)
                fail_msg("%s", err.msg);
        ssize_t n;
        struct vfs_ns_cap_data c = get_caps(ping, &n);
        assert_int_equal(n, XATTR_CAPS_SZ_3);
        assert_int_equal(le32toh(c.magic_etc) & VFS_CAP_REVISION_MASK, VFS_CAP_REVISION_3);
        assert_int_equal(le32toh(c.magic_etc) & VFS_CAP_FLAGS_EFFECTIVE, 0);
        assert_int_equal(le32toh(c.rootid), BASE + 5);
        assert_int_equal(le32toh(c.data[0].permitted), 1u << CAP_NET_RAW);
}

/* A symlink to a file outside the tree is re-owned itself; its target is left alone. */
static void test_shift_symlink_out(void **state) {
        struct fixture *f = *state;
        th_write_file(f->t.outside, "host-file", "x", 0644);
        _cleanup_free_ char *target = fs_path_join(f->t.outside, "host-file");
        _cleanup_free_ char *link = fs_path_join(f->t.root, "escape");
        assert_int_equal(symlink(target, link), 0);
        struct mkm_err err = {};
        if (shift_ownership(&f->ctx, f->t.rootfd, BASE, RANGE, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(th_lstat_in(f->t.root, "escape").st_uid, BASE);
        struct stat st = th_lstat_in(f->t.outside, "host-file");
        assert_int_equal(st.st_uid, 0);
        assert_int_equal(st.st_gid, 0);
}

/* Base 0 is no shift at all: not even an out-of-range owner is looked at. */
static void test_shift_base_zero(void **state) {
        struct fixture *f = *state;
        th_write_file(f->t.root, "srv/big", "x", 0644);
        _cleanup_free_ char *big = fs_path_join(f->t.root, "srv/big");
        assert_int_equal(chown(big, 70000, 7), 0);
        struct mkm_err err = {};
        assert_int_equal(shift_ownership(&f->ctx, f->t.rootfd, 0, RANGE, &err), 0);
        struct stat st = th_lstat_in(f->t.root, "srv/big");
        assert_int_equal(st.st_uid, 70000);
        assert_int_equal(st.st_gid, 7);
        assert_int_equal(th_lstat_in(f->t.root, "srv").st_uid, 0);
}

static void test_shift_out_of_range(void **state) {
        struct fixture *f = *state;
        th_write_file(f->t.root, "srv/big", "x", 0644);
        _cleanup_free_ char *big = fs_path_join(f->t.root, "srv/big");
        assert_int_equal(chown(big, 70000, 0), 0);
        struct mkm_err err = {};
        assert_int_equal(shift_ownership(&f->ctx, f->t.rootfd, BASE, RANGE, &err), -ERANGE);
        assert_string_equal(err.msg, "cannot shift the ownership of 'big': 70000:0 is outside the 65536 IDs mapped into "
                                     "the machine");
}

/* The last ID of the range is still inside it; the group is checked as the owner is. */
static void test_shift_range_edges(void **state) {
        struct fixture *f = *state;
        th_write_file(f->t.root, "srv/last", "x", 0644);
        _cleanup_free_ char *last = fs_path_join(f->t.root, "srv/last");
        assert_int_equal(chown(last, RANGE - 1, RANGE - 1), 0);
        struct mkm_err err = {};
        if (shift_ownership(&f->ctx, f->t.rootfd, BASE, RANGE, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(th_lstat_in(f->t.root, "srv/last").st_uid, BASE + RANGE - 1);

        /* One past the range, as owner and then as group (a tree of its own: walk order is the
         * directory's). */
        th_write_file(f->t.outside, "t/one", "x", 0644);
        _cleanup_free_ char *one = fs_path_join(f->t.outside, "t/one");
        _cleanup_close_ int tfd = open(f->t.outside, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(tfd >= 0);
        assert_int_equal(chown(one, RANGE, 0), 0);
        assert_int_equal(shift_ownership(&f->ctx, tfd, BASE, RANGE, &err), -ERANGE);
        assert_string_equal(err.msg, "cannot shift the ownership of 'one': 65536:0 is outside the 65536 IDs mapped into "
                                     "the machine");
        assert_int_equal(chown(one, 0, RANGE), 0);
        assert_int_equal(shift_ownership(&f->ctx, tfd, BASE, RANGE, &err), -ERANGE);
        assert_string_equal(err.msg, "cannot shift the ownership of 'one': 0:65536 is outside the 65536 IDs mapped into "
                                     "the machine");
}

static void test_shift_caps_out_of_range(void **state) {
        struct fixture *f = *state;
        th_write_file(f->t.root, "usr/bin/ping", "x", 0755);
        _cleanup_free_ char *ping = fs_path_join(f->t.root, "usr/bin/ping");
        set_caps_v3(ping, 1u << CAP_NET_RAW, RANGE);
        struct mkm_err err = {};
        assert_int_equal(shift_ownership(&f->ctx, f->t.rootfd, BASE, RANGE, &err), -ERANGE);
        assert_string_equal(err.msg, "cannot shift the file capabilities of 'ping': root id 65536 is outside the "
                                     "machine's range");
}

static void test_shift_root_out_of_range(void **state) {
        struct fixture *f = *state;
        assert_int_equal(fchown(f->t.rootfd, 0, 70000), 0);
        struct mkm_err err = {};
        assert_int_equal(shift_ownership(&f->ctx, f->t.rootfd, BASE, RANGE, &err), -ERANGE);
        assert_string_equal(err.msg, "cannot shift the ownership of the machine's root directory: 0:70000 is outside "
                                     "the 65536 IDs mapped into the machine");
}

static void test_shift_too_deep(void **state) {
        struct fixture *f = *state;
        _cleanup_close_ int dfd = fcntl(f->t.rootfd, F_DUPFD_CLOEXEC, 3);
        assert_true(dfd >= 0);
        for (int i = 0; i < 300; i++) {
                assert_int_equal(mkdirat(dfd, "d", 0755), 0);
                int next = openat(dfd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                assert_true(next >= 0);
                close(dfd);
                dfd = next;
        }
        struct mkm_err err = {};
        assert_int_equal(shift_ownership(&f->ctx, f->t.rootfd, BASE, RANGE, &err), -ELOOP);
        assert_string_equal(err.msg, "tree deeper than 256 levels");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_shift, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shift_caps_v3, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shift_symlink_out, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shift_base_zero, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shift_out_of_range, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shift_range_edges, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shift_caps_out_of_range, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shift_root_out_of_range, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shift_too_deep, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
