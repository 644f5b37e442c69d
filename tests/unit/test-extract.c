/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/extract: normal packages and hostile archives that try to leave the root. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <dirent.h>

#include <cmocka.h>

#include "extract.h"
#include "helpers.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strv.h"

/* One archive entry to write: type 'f' file, 'd' dir, 'l' symlink, 'h' hardlink, 'c' char dev. */
struct ent {
        char type;
        const char *path;
        const char *data;       /* file content, or link target */
        mode_t perm;
        const char *xattr;      /* "name=value[;name=value...]" or NULL */
};

/* What the Arch backend keeps in memory (the generic extractor knows no names of its own). */
static const char *const alpm_meta[] = { ".PKGINFO", ".MTREE", ".INSTALL", NULL };

static int setup(void **state) { return th_tree_setup(state, "extract"); }

/* Write the entries as a zstd tar into a temp file; return an fd positioned at 0. */
static int make_archive(const struct ent *ents, size_t n, bool truncate_half) {
        char path[] = "/tmp/mkm-test-archive.XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        unlink(path);
        struct archive *a = archive_write_new();
        archive_write_add_filter_zstd(a);
        archive_write_set_format_pax_restricted(a);
        assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
        for (size_t i = 0; i < n; i++) {
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, ents[i].path);
                archive_entry_set_mtime(e, 1700000000, 0);
                archive_entry_set_uid(e, 0);
                archive_entry_set_gid(e, 0);
                archive_entry_set_perm(e, ents[i].perm ? ents[i].perm : (ents[i].type == 'd' ? 0755 : 0644));
                size_t len = 0;
                switch (ents[i].type) {
                case 'f':
                        len = strlen(ents[i].data);
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_size(e, (la_int64_t)len);
                        break;
                case 'd':
                        archive_entry_set_filetype(e, AE_IFDIR);
                        break;
                case 'l':
                        archive_entry_set_filetype(e, AE_IFLNK);
                        archive_entry_set_symlink(e, ents[i].data);
                        break;
                case 'h':
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_hardlink(e, ents[i].data);
                        archive_entry_set_size(e, 0);
                        break;
                case 'c':
                        archive_entry_set_filetype(e, AE_IFCHR);
                        archive_entry_set_rdev(e, makedev(1, 3));
                        break;
                }
                for (const char *x = ents[i].xattr; x && *x;) {
                        const char *eq = strchr(x, '=');
                        size_t vlen = strcspn(eq + 1, ";");
                        char name[64];
                        snprintf(name, sizeof name, "%.*s", (int)(eq - x), x);
                        archive_entry_xattr_add_entry(e, name, eq + 1, vlen);
                        x = eq + 1 + vlen + (eq[1 + vlen] == ';');
                }
                assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
                if (len)
                        assert_int_equal(archive_write_data(a, ents[i].data, len), (la_ssize_t)len);
                archive_entry_free(e);
        }
        archive_write_close(a);
        archive_write_free(a);
        if (truncate_half) {
                off_t size = lseek(fd, 0, SEEK_END);
                assert_int_equal(ftruncate(fd, size / 2), 0);
        }
        lseek(fd, 0, SEEK_SET);
        return fd;
}

/* Write sparse regular files as a pax tar (GNU.sparse.* headers): each holds 16 bytes of data at
 * offset 0 and a hole up to its logical size. Returns an fd positioned at 0. */
static int make_sparse_archive(const char *const *paths, const la_int64_t *sizes, size_t n) {
        char path[] = "/tmp/mkm-test-archive.XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        unlink(path);
        struct archive *a = archive_write_new();
        archive_write_add_filter_zstd(a);
        archive_write_set_format_pax(a);
        assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
        for (size_t i = 0; i < n; i++) {
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, paths[i]);
                archive_entry_set_mtime(e, 1700000000, 0);
                archive_entry_set_filetype(e, AE_IFREG);
                archive_entry_set_perm(e, 0644);
                archive_entry_set_size(e, sizes[i]);
                archive_entry_sparse_add_entry(e, 0, 16);
                assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
                /* the writer takes the logical contents and stores only the data regions */
                _cleanup_free_ char *buf = calloc(1, (size_t)sizes[i]);
                assert_non_null(buf);
                memcpy(buf, "0123456789abcdef", 16);
                assert_int_equal(archive_write_data(a, buf, (size_t)sizes[i]), sizes[i]);
                archive_entry_free(e);
        }
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
        lseek(fd, 0, SEEK_SET);
        return fd;
}

static int run(struct th_tree *f, const struct ent *ents, size_t n, uint64_t max, struct extract_owners *owners,
               const char *label, struct extract_result *res, struct mkm_err *err) {
        _cleanup_close_ int fd = make_archive(ents, n, false);
        struct extract_opts o = { .label = label, .max_bytes = max, .meta_names = alpm_meta, .skip_dot_toplevel = true, .owners = owners };
        return extract_archive_fd(NULL, f->rootfd, fd, &o, res, err);
}

/* Nothing may appear outside the root: the sibling dir stays empty, /tmp gets no escape files. */
static void assert_nothing_outside(struct th_tree *f) {
        int n = 0;
        _cleanup_close_ int fd = open(f->outside, O_RDONLY | O_DIRECTORY);
        DIR *d = fdopendir(dup(fd));
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        assert_int_equal(n, 0);
        char p[256];
        snprintf(p, sizeof p, "%s/escape", f->top);
        assert_int_equal(access(p, F_OK), -1);
        assert_int_equal(access("/tmp/mkm-escape", F_OK), -1);
}

static void test_normal_package(void **state) {
        struct th_tree *f = *state;
        const struct ent ents[] = {
                { 'f', ".PKGINFO", "pkgname = demo\npkgver = 1.0-1\n" },
                { 'f', ".MTREE", "not really gzip" },
                { 'f', ".INSTALL", "post_install() { :; }\n" },
                { 'f', ".BUILDINFO", "format = 2\n" },
                { 'd', "usr/" },
                { 'd', "usr/bin/" },
                { 'f', "usr/bin/tool", "#!/bin/sh\necho hi\n", 04755 },
                { 'h', "usr/bin/tool-alias", "usr/bin/tool" },
                { 'l', "usr/bin/t", "tool" },
                { 'f', "./etc/demo.conf", "key=value\n", 0600, "user.test=yes" },
        };
        struct extract_result res = {};
        struct mkm_err err = {};
        assert_int_equal(run(f, ents, ELEMENTSOF(ents), 1000, NULL, "demo", &res, &err), 0);

        /* Metadata is captured, not written to the tree. */
        assert_string_equal(extract_result_meta(&res, ".PKGINFO")->data, "pkgname = demo\npkgver = 1.0-1\n");
        assert_int_equal(extract_result_meta(&res, ".MTREE")->len, strlen("not really gzip"));
        assert_non_null(extract_result_meta(&res, ".INSTALL"));
        assert_int_equal(faccessat(f->rootfd, ".PKGINFO", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(faccessat(f->rootfd, ".BUILDINFO", F_OK, AT_SYMLINK_NOFOLLOW), -1);

        /* pacman's %FILES% order: sorted, directories with a trailing slash; parents created. */
        const char *want[] = { "etc/demo.conf", "usr/", "usr/bin/", "usr/bin/t", "usr/bin/tool", "usr/bin/tool-alias" };
        assert_int_equal(strv_length(res.files), ELEMENTSOF(want));
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                assert_string_equal(res.files[i], want[i]);

        struct stat st, st2;
        assert_int_equal(fstatat(f->rootfd, "usr/bin/tool", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(st.st_mode & 07777, 04755);
        assert_int_equal(st.st_mtime, 1700000000);
        assert_int_equal(st.st_size, 18);
        assert_int_equal(fstatat(f->rootfd, "usr/bin/tool-alias", &st2, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(st.st_ino, st2.st_ino);
        assert_int_equal(st2.st_nlink, 2);
        char target[64] = {};
        assert_int_equal(readlinkat(f->rootfd, "usr/bin/t", target, sizeof target - 1), 4);
        assert_string_equal(target, "tool");
        assert_int_equal(fstatat(f->rootfd, "etc/demo.conf", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        char path[256], val[16] = {};
        snprintf(path, sizeof path, "%s/etc/demo.conf", f->root);
        assert_int_equal(getxattr(path, "user.test", val, sizeof val), 3);
        assert_string_equal(val, "yes");
        /* Hard links count once towards the size. */
        assert_int_equal(res.bytes, 18 + 10);
        extract_result_done(&res);
}

struct hostile {
        const char *name;
        struct ent ents[4];
        size_t n;
        int code;
        const char *msg;
};

/* Every mode comes out exactly (0 means 0644 in make_archive), whatever the umask (files are created with their final mode
 * only when the umask and the mode allow it, else chmod'ed). */
static void test_modes(void **state) {
        struct th_tree *f = *state;
        static const mode_t modes[] = { 0644, 0755, 0600, 0400, 0640, 0664, 0666, 0777, 0750,
                                        04755, 02755, 01755, 06711, 0444, 0711 };
        static const mode_t umasks[] = { 022, 077, 0, 027 };
        for (size_t u = 0; u < ELEMENTSOF(umasks); u++) {
                char names[ELEMENTSOF(modes)][32];
                struct ent ents[ELEMENTSOF(modes) + 1] = { { 'f', ".PKGINFO", "pkgname = m\npkgver = 1-1\n" } };
                for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                        (void)snprintf(names[i], sizeof names[i], "m%zu/f%04o", u, (unsigned)modes[i]);
                        ents[i + 1] = (struct ent){ 'f', names[i], "data", modes[i] };
                }
                mode_t old = umask(umasks[u]);
                struct extract_result res = {};
                struct mkm_err err = {};
                int r = run(f, ents, ELEMENTSOF(ents), 0, NULL, "m", &res, &err);
                (void)umask(old);
                assert_int_equal(r, 0);
                for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                        struct stat st;
                        assert_int_equal(fstatat(f->rootfd, names[i], &st, AT_SYMLINK_NOFOLLOW), 0);
                        if ((st.st_mode & 07777) != modes[i])
                                print_message("umask %03o: %s has %04o\n", (unsigned)umasks[u], names[i],
                                              (unsigned)(st.st_mode & 07777));
                        assert_int_equal(st.st_mode & 07777, modes[i]);
                }
                /* A parent the archive does not list is made 0755 whatever the umask (two builds
                 * give the same tree). */
                char dir[8];
                (void)snprintf(dir, sizeof dir, "m%zu", u);
                struct stat st;
                assert_int_equal(fstatat(f->rootfd, dir, &st, AT_SYMLINK_NOFOLLOW), 0);
                assert_int_equal(st.st_mode & 07777, 0755);
                extract_result_done(&res);
        }
}

/* The kernel's own say over new files: a set-gid directory passes on its group, a default ACL
 * replaces the umask. Owners and modes must still come out as the package says. */
static void test_setgid_and_default_acl(void **state) {
        struct th_tree *f = *state;
        assert_int_equal(fchown(f->rootfd, 0, 4321), 0);
        assert_int_equal(fchmod(f->rootfd, 02755), 0);
        /* system.posix_acl_default: version 2; user::rwx, group::r-x, other::--- */
        const uint8_t acl[] = { 2, 0, 0, 0,  0x01, 0, 7, 0, 0xff, 0xff, 0xff, 0xff,
                                0x04, 0, 5, 0, 0xff, 0xff, 0xff, 0xff,  0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff };
        bool have_acl = fsetxattr(f->rootfd, "system.posix_acl_default", acl, sizeof acl, 0) == 0;
        if (!have_acl)
                print_message("no default ACL here (%s): checking the set-gid directory only\n", strerror(errno));
        const struct ent ents[] = {
                { 'f', ".PKGINFO", "pkgname = g\npkgver = 1-1\n" },
                { 'f', "a644", "x", 0644 },
                { 'f', "b755", "x", 0755 },
                { 'f', "c600", "x", 0600 },
                { 'f', "d4755", "x", 04755 },
        };
        struct extract_result res = {};
        struct mkm_err err = {};
        assert_int_equal(run(f, ents, ELEMENTSOF(ents), 0, NULL, "g", &res, &err), 0);
        for (size_t i = 1; i < ELEMENTSOF(ents); i++) {
                struct stat st;
                assert_int_equal(fstatat(f->rootfd, ents[i].path, &st, AT_SYMLINK_NOFOLLOW), 0);
                print_message("%s: %04o %u:%u\n", ents[i].path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
                              (unsigned)st.st_gid);
                assert_int_equal(st.st_mode & 07777, ents[i].perm);
                assert_int_equal(st.st_uid, 0);
                assert_int_equal(st.st_gid, 0);
        }
        extract_result_done(&res);
}

static void test_hostile(void **state) {
        struct th_tree *f = *state;
        char abs_outside[256], rel_outside[256];
        snprintf(abs_outside, sizeof abs_outside, "%s", f->outside);
        snprintf(rel_outside, sizeof rel_outside, "../../../../../../../../..%s", f->outside);
        const struct hostile cases[] = {
                { "dotdot", { { 'f', "usr/../../escape", "x" } }, 1, -MKM_E_UNSAFE_PATH,
                  "evil: refusing entry 'usr/../../escape': path contains '..'" },
                { "dotdot-leading", { { 'f', "../escape", "x" } }, 1, -MKM_E_UNSAFE_PATH,
                  "evil: refusing entry '../escape': path contains '..'" },
                { "absolute", { { 'f', "/tmp/mkm-escape", "x" } }, 1, -MKM_E_UNSAFE_PATH,
                  "evil: refusing entry '/tmp/mkm-escape': absolute path" },
                { "symlink-then-write-abs", { { 'l', "usr/evil", abs_outside }, { 'f', "usr/evil/escape", "x" } }, 2,
                  -MKM_E_UNSAFE_PATH,
                  "evil: refusing entry 'usr/evil/escape': it writes through a symlink the same package creates" },
                { "symlink-then-write-rel", { { 'l', "evil", rel_outside }, { 'f', "evil/escape", "x" } }, 2,
                  -MKM_E_UNSAFE_PATH,
                  "evil: refusing entry 'evil/escape': it writes through a symlink the same package creates" },
                { "symlink-then-dir", { { 'l', "evil", rel_outside }, { 'd', "evil/sub/" } }, 2, -MKM_E_UNSAFE_PATH,
                  "evil: refusing entry 'evil/sub': it writes through a symlink the same package creates" },
                { "hardlink-abs", { { 'h', "usr/passwd", "/etc/passwd" } }, 1, -MKM_E_UNSAFE_PATH,
                  "evil: refusing entry 'usr/passwd': hard link target outside the package" },
                { "hardlink-dotdot", { { 'h', "usr/passwd", "../../../../etc/passwd" } }, 1, -MKM_E_UNSAFE_PATH,
                  "evil: refusing entry 'usr/passwd': hard link target outside the package" },
                { "hardlink-foreign", { { 'h', "usr/passwd", "etc/passwd" } }, 1, -MKM_E_UNSAFE_PATH,
                  "evil: refusing entry 'usr/passwd': hard link to a file the package does not contain" },
                { "device", { { 'c', "dev/evil" } }, 1, -MKM_E_UNSAFE_PATH,
                  "evil: refusing entry 'dev/evil': device nodes are not allowed in packages" },
                { "too-big", { { 'f', "usr/big", "0123456789abcdef" } }, 1, -MKM_E_TOO_BIG,
                  "evil: contents exceed the 8 bytes its metadata promised" },
                { "file-over-dir", { { 'd', "usr/x/" }, { 'f', "usr/x", "y" } }, 2, -MKM_E_CONFLICT,
                  "evil: cannot install 'usr/x': a directory is in the way" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct extract_result res = {};
                struct mkm_err err = {};
                _cleanup_close_ int fd = make_archive(cases[i].ents, cases[i].n, false);
                struct extract_opts o = { .label = "evil", .max_bytes = 8, .meta_names = alpm_meta, .skip_dot_toplevel = true };
                int r = extract_archive_fd(NULL, f->rootfd, fd, &o, &res, &err);
                print_message("case %s: %d %s\n", cases[i].name, r, err.msg);
                assert_int_equal(r, cases[i].code);
                assert_string_equal(err.msg, cases[i].msg);
                assert_null(res.files);
                assert_nothing_outside(f);
        }
}

/* A directory symlink from an earlier package (filesystem's bin -> usr/bin) is followed, inside. */
static void test_symlink_from_earlier_package(void **state) {
        struct th_tree *f = *state;
        const struct ent fs[] = { { 'd', "usr/" }, { 'd', "usr/bin/" }, { 'l', "bin", "usr/bin" }, { 'l', "up", "/../../.." } };
        struct extract_result res = {};
        struct mkm_err err = {};
        assert_int_equal(run(f, fs, ELEMENTSOF(fs), 0, NULL, "filesystem", &res, &err), 0);
        extract_result_done(&res);
        const struct ent pkg[] = { { 'f', "bin/tool", "x" }, { 'f', "up/escape", "y" } };
        assert_int_equal(run(f, pkg, ELEMENTSOF(pkg), 0, NULL, "tool", &res, &err), 0);
        extract_result_done(&res);
        struct stat st;
        assert_int_equal(fstatat(f->rootfd, "usr/bin/tool", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        /* "up" points far above the root, yet the write stays inside: it lands in the root itself. */
        assert_int_equal(fstatat(f->rootfd, "escape", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_nothing_outside(f);
}

/* The rule for symlinks, case by case: a link an earlier package made is followed (inside the
 * root), one this package made never is, whichever name leads to it (another package's link on
 * the way, a hard link of the link); what is in the way of a directory is named. */
static void test_symlink_rules(void **state) {
        struct th_tree *f = *state;
        const struct ent fs[] = {
                { 'd', "usr/" }, { 'd', "usr/lib/" }, { 'd', "usr/bin/" }, { 'd', "etc/" }, { 'f', "etc/file", "x" },
                { 'l', "lib", "usr/lib" }, { 'l', "bin", "usr/bin" }, { 'l', "sbin", "usr/bin" }, { 'l', "tofile", "etc/file" },
                { 'l', "dangling", "nowhere" }, { 'l', "loop", "loop" },
        };
        struct extract_result res = {};
        struct mkm_err err = {};
        assert_int_equal(run(f, fs, ELEMENTSOF(fs), 0, NULL, "filesystem", &res, &err), 0);
        extract_result_done(&res);
        char rel_outside[256];
        snprintf(rel_outside, sizeof rel_outside, "../../../../../../../../..%s", f->outside);
        static const char own[] = "it writes through a symlink the same package creates";
        const struct {
                const char *name;
                struct ent ents[4];
                size_t n;
                int code;
                const char *msg;        /* after "p: " */
        } cases[] = {
                /* this package's link, met through an earlier package's one (lib -> usr/lib) */
                { "own-via-earlier", { { 'l', "usr/lib/evil", rel_outside }, { 'f', "lib/evil/escape", "x" } }, 2,
                  -MKM_E_UNSAFE_PATH, "refusing entry 'lib/evil/escape': " },
                /* ... and through a hard link of itself */
                { "own-via-hardlink", { { 'f', "h1", "x" }, { 'l', "h1", "usr" }, { 'h', "h2", "h1" }, { 'f', "h2/escape", "y" } },
                  4, -MKM_E_UNSAFE_PATH, "refusing entry 'h2/escape': " },
                /* an earlier package's link this package replaces becomes its own */
                { "own-replacing-earlier", { { 'l', "sbin", "etc" }, { 'f', "sbin/passwd", "x" } }, 2, -MKM_E_UNSAFE_PATH,
                  "refusing entry 'sbin/passwd': " },
                /* a directory entry where this package put a link to a directory */
                { "own-then-dir", { { 'l', "d1", "usr" }, { 'd', "d1/" } }, 2, -MKM_E_CONFLICT,
                  "cannot create directory /d1: a file is in the way" },
                /* what is in the way of a directory */
                { "file-as-dir", { { 'd', "opt/" }, { 'f', "opt/file", "x" }, { 'f', "opt/file/sub/x", "y" } }, 3,
                  -MKM_E_CONFLICT, "cannot install 'opt/file/sub/x': /opt/file is not a directory" },
                { "earlier-link-to-file", { { 'f', "tofile/x", "y" } }, 1, -ENOTDIR,
                  "cannot install 'tofile/x': /tofile: Not a directory" },
                { "earlier-dangling", { { 'f', "dangling/x", "y" } }, 1, -ENOENT,
                  "cannot install 'dangling/x': /dangling: No such file or directory" },
                { "earlier-loop", { { 'f', "loop/x", "y" } }, 1, -ELOOP,
                  "cannot install 'loop/x': /loop: Too many levels of symbolic links" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = run(f, cases[i].ents, cases[i].n, 0, NULL, "p", &res, &err);
                print_message("case %s: %d %s\n", cases[i].name, r, err.msg);
                assert_int_equal(r, cases[i].code);
                char want[512];
                snprintf(want, sizeof want, "p: %s%s", cases[i].msg, cases[i].code == -MKM_E_UNSAFE_PATH ? own : "");
                assert_string_equal(err.msg, want);
                assert_null(res.files);
                assert_nothing_outside(f);
        }
        assert_int_equal(faccessat(f->rootfd, "usr/escape", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(faccessat(f->rootfd, "etc/passwd", F_OK, AT_SYMLINK_NOFOLLOW), -1);

        /* Earlier links are followed: a directory entry keeps the link, files land in its target,
         * and a new directory below it is made there. */
        const struct ent pkg[] = { { 'd', "bin/" }, { 'f', "bin/tool", "x" }, { 'd', "lib/new/" }, { 'f', "lib/new/sub/so", "y" } };
        assert_int_equal(run(f, pkg, ELEMENTSOF(pkg), 0, NULL, "tool", &res, &err), 0);
        extract_result_done(&res);
        struct stat st;
        assert_int_equal(fstatat(f->rootfd, "bin", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISLNK(st.st_mode));
        assert_int_equal(fstatat(f->rootfd, "usr/bin/tool", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(fstatat(f->rootfd, "usr/lib/new/sub/so", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(fstatat(f->rootfd, "usr/lib/new/sub", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        /* A link this package makes, and its own later entries beside it (not through it). */
        const struct ent pkg2[] = { { 'l', "usr/lib/alias", "new" }, { 'f', "usr/lib/alias2", "z" }, { 'l', "usr/lib/alias", "new/sub" } };
        assert_int_equal(run(f, pkg2, ELEMENTSOF(pkg2), 0, NULL, "tool2", &res, &err), 0);
        extract_result_done(&res);
        assert_nothing_outside(f);
}

static void test_file_conflict(void **state) {
        struct th_tree *f = *state;
        _cleanup_(extract_owners_freep) struct extract_owners *o = extract_owners_new();
        const struct ent a[] = { { 'd', "usr/" }, { 'f', "usr/shared", "a" } };
        const struct ent b[] = { { 'd', "usr/" }, { 'f', "usr/shared", "b" } };
        struct extract_result res = {};
        struct mkm_err err = {};
        assert_int_equal(run(f, a, 2, 0, o, "pkg-a", &res, &err), 0);
        extract_result_done(&res);
        assert_int_equal(run(f, b, 2, 0, o, "pkg-b", &res, &err), -MKM_E_CONFLICT);
        assert_string_equal(err.msg, "pkg-b: /usr/shared exists in both 'pkg-a' and 'pkg-b'");
        /* The first package's file is intact. */
        _cleanup_free_ char *buf = NULL;
        assert_int_equal(fs_read_file_follow_at(f->rootfd, "usr/shared", 10, &buf, NULL), 0);
        assert_string_equal(buf, "a");
}

static void test_truncated_archive(void **state) {
        struct th_tree *f = *state;
        char big[70000];
        for (size_t i = 0; i < sizeof big - 1; i++)
                big[i] = (char)('a' + (i * 7919) % 26);
        big[sizeof big - 1] = 0;
        const struct ent ents[] = { { 'f', "usr/a", big }, { 'f', "usr/b", big } };
        _cleanup_close_ int fd = make_archive(ents, 2, true);
        struct extract_opts o = { .label = "cut", .meta_names = alpm_meta, .skip_dot_toplevel = true };
        struct extract_result res = {};
        struct mkm_err err = {};
        int r = extract_archive_fd(NULL, f->rootfd, fd, &o, &res, &err);
        assert_int_equal(r, -MKM_E_ARCHIVE);
        assert_non_null(strstr(err.msg, "cut: "));
}

static void test_not_an_archive(void **state) {
        struct th_tree *f = *state;
        char path[] = "/tmp/mkm-test-junk.XXXXXX";
        _cleanup_close_ int fd = mkstemp(path);
        unlink(path);
        assert_int_equal(write(fd, "this is not a tar archive at all, just text\n", 44), 44);
        lseek(fd, 0, SEEK_SET);
        struct extract_opts o = { .label = "junk" };
        struct extract_result res = {};
        struct mkm_err err = {};
        assert_int_equal(extract_archive_fd(NULL, f->rootfd, fd, &o, &res, &err), -MKM_E_ARCHIVE);
        assert_non_null(strstr(err.msg, "junk: "));
}

/* The metadata table is generic: any top-level names, kept by name, the last copy of a repeated
 * one; without skip_dot_toplevel other dot files are ordinary files; a nested name is never meta. */
static void test_meta_table(void **state) {
        struct th_tree *f = *state;
        static const char *const names[] = { "control", "md5sums", NULL };
        const struct ent ents[] = {
                { 'f', "./control", "Package: a\n" },
                { 'f', ".hidden", "a dot file\n" },
                { 'd', "usr/" },
                { 'f', "usr/control", "not meta\n" },
                { 'f', "control", "Package: b\n" },
        };
        _cleanup_close_ int fd = make_archive(ents, ELEMENTSOF(ents), false);
        struct extract_opts o = { .label = "gen", .meta_names = names };
        struct extract_result res = {};
        struct mkm_err err = {};
        assert_int_equal(extract_archive_fd(NULL, f->rootfd, fd, &o, &res, &err), 0);
        assert_int_equal(res.n_meta, 1);
        const struct extract_member *m = extract_result_meta(&res, "control");
        assert_non_null(m);
        assert_string_equal(m->data, "Package: b\n");
        assert_int_equal(m->len, 11);
        assert_int_equal(m->mtime, 1700000000);
        assert_null(extract_result_meta(&res, "md5sums"));
        assert_null(extract_result_meta(&res, ".hidden"));
        assert_int_equal(faccessat(f->rootfd, "control", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(faccessat(f->rootfd, ".hidden", F_OK, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(faccessat(f->rootfd, "usr/control", F_OK, AT_SYMLINK_NOFOLLOW), 0);
        const char *want[] = { ".hidden", "usr/", "usr/control" };
        assert_int_equal(strv_length(res.files), ELEMENTSOF(want));
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                assert_string_equal(res.files[i], want[i]);
        extract_result_done(&res);

        /* A metadata member larger than the cap is refused, not truncated. */
        _cleanup_free_ char *big = malloc(EXTRACT_META_MAX + 2);
        assert_non_null(big);
        memset(big, 'x', EXTRACT_META_MAX + 1);
        big[EXTRACT_META_MAX + 1] = 0;
        const struct ent huge[] = { { 'f', "control", big } };
        _cleanup_close_ int fd2 = make_archive(huge, 1, false);
        assert_int_equal(extract_archive_fd(NULL, f->rootfd, fd2, &o, &res, &err), -MKM_E_ARCHIVE);
        assert_string_equal(err.msg, "gen: control is larger than 16777216 bytes");
        assert_null(res.files);
}

/* extract_archive() works on a reader the caller opened (here: from memory, as the Debian backend
 * reads data.tar from inside a .deb) and leaves it to the caller; its checks are the same. */
static void test_opened_reader(void **state) {
        struct th_tree *f = *state;
        const struct ent ents[] = { { 'd', "usr/" }, { 'f', "usr/a", "alpha\n" }, { 'f', "../escape", "x" } };
        for (size_t n = 2; n <= 3; n++) {
                _cleanup_close_ int fd = make_archive(ents, n, false);
                off_t size = lseek(fd, 0, SEEK_END);
                _cleanup_free_ char *buf = malloc((size_t)size);
                assert_non_null(buf);
                assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
                struct archive *a = archive_read_new();
                archive_read_support_filter_zstd(a);
                archive_read_support_format_tar(a);
                assert_int_equal(archive_read_open_memory(a, buf, (size_t)size), ARCHIVE_OK);
                struct extract_opts o = { .label = "mem" };
                struct extract_result res = {};
                struct mkm_err err = {};
                int r = extract_archive(NULL, f->rootfd, a, &o, &res, &err);
                /* still ours to close */
                assert_int_equal(archive_read_close(a), ARCHIVE_OK);
                assert_int_equal(archive_read_free(a), ARCHIVE_OK);
                if (n == 2) {
                        assert_int_equal(r, 0);
                        assert_int_equal(strv_length(res.files), 2);
                        assert_int_equal(res.bytes, 6);
                        _cleanup_free_ char *data = NULL;
                        assert_int_equal(fs_read_file_follow_at(f->rootfd, "usr/a", 16, &data, NULL), 0);
                        assert_string_equal(data, "alpha\n");
                        extract_result_done(&res);
                } else {
                        assert_int_equal(r, -MKM_E_UNSAFE_PATH);
                        assert_string_equal(err.msg, "mem: refusing entry '../escape': path contains '..'");
                        assert_nothing_outside(f);
                }
        }
}

static void test_normalize_table(void **state) {
        (void)state;
        static const struct { const char *in, *out; int r; } t[] = {
                { "usr/bin/x", "usr/bin/x", 0 },
                { "./usr//bin/./x/", "usr/bin/x", 0 },
                { "./", NULL, -ENOENT },
                { "/etc/passwd", NULL, -EPERM },
                { "a/../b", NULL, -EPERM },
                { "..", NULL, -EPERM },
                { "a/..b", "a/..b", 0 },
                { "a/b\n", NULL, -EINVAL },
                { "", NULL, -EINVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_free_ char *o = NULL;
                assert_int_equal(extract_normalize_path(t[i].in, &o), t[i].r);
                if (t[i].out)
                        assert_string_equal(o, t[i].out);
        }
}

/* A path named twice in one archive (found by fuzz-extract: a repeated .MTREE) is listed once. */
static void test_duplicate_entries(void **state) {
        struct th_tree *f = *state;
        static const struct ent ents[] = {
                { 'd', "usr" }, { 'd', "usr/" }, { 'f', "./usr/a", "1" }, { 'f', "usr/a", "22" }, { 'f', "usr/b", "3" },
        };
        struct extract_result res = {};
        struct mkm_err err = {};
        assert_int_equal(run(f, ents, ELEMENTSOF(ents), 0, NULL, "dup", &res, &err), 0);
        assert_int_equal(strv_length(res.files), 3);
        assert_string_equal(res.files[0], "usr/");
        assert_string_equal(res.files[1], "usr/a");
        assert_string_equal(res.files[2], "usr/b");
        /* the last copy wins, as tar -x does */
        _cleanup_free_ char *a = NULL;
        assert_int_equal(fs_read_file_follow_at(f->rootfd, "usr/a", 16, &a, NULL), 0);
        assert_string_equal(a, "22");
        extract_result_done(&res);
}

/* Holes count against the size cap like data: a sparse entry stores 16 bytes but would create
 * its whole logical size on disk. Kills the mutant that counts only the data bytes read. */
static void test_sparse_holes_count(void **state) {
        struct th_tree *f = *state;
        struct extract_opts o = { .label = "sparse", .max_bytes = 4096, .meta_names = alpm_meta, .skip_dot_toplevel = true };
        static const char *const one[] = { "usr/ok" };
        static const la_int64_t one_fits[] = { 4000 };
        static const la_int64_t one_huge[] = { 1 << 20 };
        static const char *const two[] = { "usr/a", "usr/b" };
        static const la_int64_t two_sizes[] = { 3000, 3000 };

        /* within the cap: extracted at its logical size, and the logical size is what counts */
        struct extract_result res = {};
        struct mkm_err err = {};
        _cleanup_close_ int fd = make_sparse_archive(one, one_fits, 1);
        assert_int_equal(extract_archive_fd(NULL, f->rootfd, fd, &o, &res, &err), 0);
        assert_int_equal(res.bytes, 4000);
        struct stat st;
        assert_int_equal(fstatat(f->rootfd, "usr/ok", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(st.st_size, 4000);
        extract_result_done(&res);

        /* one entry whose holes alone exceed the cap */
        _cleanup_close_ int fd1 = make_sparse_archive(one, one_huge, 1);
        assert_int_equal(extract_archive_fd(NULL, f->rootfd, fd1, &o, &res, &err), -MKM_E_TOO_BIG);
        assert_string_equal(err.msg, "sparse: contents exceed the 4096 bytes its metadata promised");
        assert_null(res.files);

        /* two entries, each within the cap, 32 bytes of data together, 6000 bytes once extracted */
        err = (struct mkm_err){};
        _cleanup_close_ int fd2 = make_sparse_archive(two, two_sizes, 2);
        assert_int_equal(extract_archive_fd(NULL, f->rootfd, fd2, &o, &res, &err), -MKM_E_TOO_BIG);
        assert_string_equal(err.msg, "sparse: contents exceed the 4096 bytes its metadata promised");
        assert_null(res.files);
}

/* Only user.*, file capabilities and ACLs reach the tree: a package must not plant trusted.* (read
 * by overlayfs and other root-only consumers) or a security.* label of its choosing. */
static void test_xattr_filter(void **state) {
        struct th_tree *f = *state;
        static const struct ent ents[] = {
                { 'f', "etc/x.conf", "x\n", 0644, "trusted.x=1;security.foo=2;user.ok=3" },
                { 'd', "var/", NULL, 0755, "trusted.d=4;security.bar=5;user.dir=6" },
        };
        struct extract_result res = {};
        struct mkm_err err = {};
        assert_int_equal(run(f, ents, ELEMENTSOF(ents), 0, NULL, "xattrs", &res, &err), 0);
        const char *paths[] = { "etc/x.conf", "var" };
        const char *kept[] = { "user.ok", "user.dir" };
        const char *kept_val[] = { "3", "6" };
        const char *dropped[][2] = { { "trusted.x", "security.foo" }, { "trusted.d", "security.bar" } };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                char path[256], val[16] = {};
                snprintf(path, sizeof path, "%s/%s", f->root, paths[i]);
                assert_int_equal(getxattr(path, kept[i], val, sizeof val), 1);
                assert_string_equal(val, kept_val[i]);
                for (size_t j = 0; j < 2; j++) {
                        errno = 0;
                        assert_int_equal(getxattr(path, dropped[i][j], val, sizeof val), -1);
                        assert_int_equal(errno, ENODATA);
                }
        }
        extract_result_done(&res);
}

/* extract_opts.hash (mkmachine import): the hash covers every byte of the file as extraction read
 * it, in order: the data of an entry the extractor passes over (read, never seeked past: a skip
 * would leave bytes unhashed that the file's owner could change) and whatever follows the archive's
 * end, up to the end of the file. */
static void test_hashing_reader(void **state) {
        struct th_tree *f = *state;
        char path[] = "/tmp/mkm-test-archive.XXXXXX";
        _cleanup_close_ int fd = mkstemp(path);
        assert_true(fd >= 0);
        unlink(path);
        /* An uncompressed tar: with a compression filter libarchive never asks to skip. */
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
        const size_t big = 1u << 20;
        _cleanup_free_ char *junk = malloc(big);
        assert_non_null(junk);
        memset(junk, 'j', big);
        const struct { const char *path; const char *data; size_t len; } ents[] = {
                { ".big", junk, big },  /* skipped: skip_dot_toplevel */
                { "usr/a", "alpha\n", 6 },
        };
        for (size_t i = 0; i < ELEMENTSOF(ents); i++) {
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, ents[i].path);
                archive_entry_set_filetype(e, AE_IFREG);
                archive_entry_set_perm(e, 0644);
                archive_entry_set_mtime(e, 1700000000, 0);
                archive_entry_set_size(e, (la_int64_t)ents[i].len);
                assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
                assert_int_equal(archive_write_data(a, ents[i].data, ents[i].len), (la_ssize_t)ents[i].len);
                archive_entry_free(e);
        }
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
        /* Bytes after the archive's end, which no tar reader looks at: more than libarchive reads
         * ahead, so that some are read only after the archive has ended. */
        const size_t tail_len = 256u << 10;
        _cleanup_free_ char *tail = malloc(tail_len);
        assert_non_null(tail);
        memset(tail, 't', tail_len);
        assert_int_equal(write(fd, tail, tail_len), (ssize_t)tail_len);
        off_t size = lseek(fd, 0, SEEK_CUR);
        _cleanup_free_ char *whole = malloc((size_t)size);
        assert_non_null(whole);
        assert_int_equal(pread(fd, whole, (size_t)size, 0), size);
        char want[HASH_SHA256_HEX], got[HASH_SHA256_HEX];
        assert_int_equal(hash_buf_hex(HASH_SHA256, whole, (size_t)size, want), 0);

        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        struct hash_ctx *h = hash_new(HASH_SHA256);
        assert_non_null(h);
        struct extract_opts o = { .label = "hashed", .skip_dot_toplevel = true, .hash = h };
        struct extract_result res = {};
        struct mkm_err err = {};
        assert_int_equal(extract_archive_fd(NULL, f->rootfd, fd, &o, &res, &err), 0);
        /* bytes read == bytes hashed == the file */
        assert_int_equal(lseek(fd, 0, SEEK_CUR), size);
        assert_int_equal(hash_final_hex(h, got), 0);
        assert_string_equal(got, want);
        assert_int_equal(strv_length(res.files), 1);
        assert_int_equal(faccessat(f->rootfd, ".big", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(faccessat(f->rootfd, "usr/a", F_OK, AT_SYMLINK_NOFOLLOW), 0);
        extract_result_done(&res);

        /* With hash_max, no more than that is read (a file someone keeps appending to ends):
         * the archive and part of the tail, hashed as far as read. */
        const size_t cut = (size_t)size - tail_len / 2;
        assert_int_equal(hash_buf_hex(HASH_SHA256, whole, cut, want), 0);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        o.hash = h = hash_new(HASH_SHA256);
        assert_non_null(h);
        o.hash_max = cut;
        assert_int_equal(extract_archive_fd(NULL, f->rootfd, fd, &o, &res, &err), 0);
        o.hash_max = 0;
        assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)cut);
        assert_int_equal(hash_final_hex(h, got), 0);
        assert_string_equal(got, want);
        extract_result_done(&res);
        /* and hash_fd_hex_max, the import's first reading, the same */
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        uint64_t hashed = 0;
        assert_int_equal(hash_fd_hex_max(HASH_SHA256, fd, cut, got, &hashed), 0);
        assert_int_equal(hashed, cut);
        assert_string_equal(got, want);

        /* A compressed archive with nothing after it: the same. */
        const struct ent zents[] = { { 'd', "usr/" }, { 'f', "usr/b", "beta\n" } };
        _cleanup_close_ int zfd = make_archive(zents, ELEMENTSOF(zents), false);
        off_t zsize = lseek(zfd, 0, SEEK_END);
        _cleanup_free_ char *zwhole = malloc((size_t)zsize);
        assert_non_null(zwhole);
        assert_int_equal(pread(zfd, zwhole, (size_t)zsize, 0), zsize);
        assert_int_equal(hash_buf_hex(HASH_SHA256, zwhole, (size_t)zsize, want), 0);
        assert_int_equal(lseek(zfd, 0, SEEK_SET), 0);
        o.hash = h = hash_new(HASH_SHA256);
        assert_non_null(h);
        assert_int_equal(extract_archive_fd(NULL, f->rootfd, zfd, &o, &res, &err), 0);
        assert_int_equal(hash_final_hex(h, got), 0);
        assert_string_equal(got, want);
        extract_result_done(&res);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_normalize_table),
                cmocka_unit_test_setup_teardown(test_normal_package, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_modes, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_setgid_and_default_acl, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_hostile, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_symlink_from_earlier_package, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_symlink_rules, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_file_conflict, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_truncated_archive, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_not_an_archive, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_meta_table, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_opened_reader, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_duplicate_entries, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_sparse_holes_count, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_xattr_filter, setup, th_tree_teardown),
                cmocka_unit_test_setup_teardown(test_hashing_reader, setup, th_tree_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
