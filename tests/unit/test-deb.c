/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/debian/deb (the .deb container) and builder/debian/sources (apt sources). */
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
#include <unistd.h>

#include <cmocka.h>

#include "debian/control.h"
#include "debian/deb.h"
#include "debian/sources.h"
#include "extract.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strv.h"

struct ent {
        const char *path;
        const char *data;       /* NULL: a directory */
        mode_t perm;
};

/* A tar (compressed with filter: "xz", "gz", "zst" or "") in memory. */
static void *make_tar(const struct ent *e, size_t n, const char *filter, size_t *ret_len) {
        size_t cap = 1 << 20, used = 0;
        void *buf = malloc(cap);
        struct archive *a = archive_write_new();
        archive_write_set_format_gnutar(a);
        if (strcmp(filter, "xz") == 0)
                archive_write_add_filter_xz(a);
        else if (strcmp(filter, "gz") == 0)
                archive_write_add_filter_gzip(a);
        else if (strcmp(filter, "zst") == 0)
                archive_write_add_filter_zstd(a);
        assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
        for (size_t i = 0; i < n; i++) {
                struct archive_entry *x = archive_entry_new();
                archive_entry_set_pathname(x, e[i].path);
                archive_entry_set_filetype(x, e[i].data ? AE_IFREG : AE_IFDIR);
                archive_entry_set_perm(x, e[i].perm ? e[i].perm : e[i].data ? 0644 : 0755);
                archive_entry_set_size(x, e[i].data ? (la_int64_t)strlen(e[i].data) : 0);
                archive_entry_set_mtime(x, 1700000000, 0);
                assert_int_equal(archive_write_header(a, x), ARCHIVE_OK);
                if (e[i].data)
                        archive_write_data(a, e[i].data, strlen(e[i].data));
                archive_entry_free(x);
        }
        archive_write_close(a);
        archive_write_free(a);
        *ret_len = used;
        return buf;
}

struct member {
        const char *name;
        const void *data;
        size_t len;
};

/* An ar archive of members, written to a temp file; returns an fd at offset 0. */
static int make_ar(const struct member *m, size_t n) {
        char path[] = "/tmp/mkm-test-deb.XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        unlink(path);
        struct archive *a = archive_write_new();
        archive_write_set_format_ar_svr4(a);
        assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
        for (size_t i = 0; i < n; i++) {
                struct archive_entry *x = archive_entry_new();
                archive_entry_set_pathname(x, m[i].name);
                archive_entry_set_filetype(x, AE_IFREG);
                archive_entry_set_perm(x, 0644);
                archive_entry_set_size(x, (la_int64_t)m[i].len);
                assert_int_equal(archive_write_header(a, x), ARCHIVE_OK);
                archive_write_data(a, m[i].data, m[i].len);
                archive_entry_free(x);
        }
        archive_write_close(a);
        archive_write_free(a);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

static const struct ent control_ok[] = {
        { "./", NULL, 0 },
        { "./control", "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\n", 0 },
        { "./md5sums", "d41d8cd98f00b204e9800998ecf8427e  usr/share/doc/hello/README\n", 0 },
        { "./postinst", "#!/bin/sh\nexit 0\n", 0755 },
        { "./conffiles", "/etc/hello.conf\n", 0 },
};

static const struct ent data_ok[] = {
        { "./", NULL, 0 },
        { "./etc/", NULL, 0 },
        { "./etc/hello.conf", "greeting=hi\n", 0 },
        { "./usr/", NULL, 0 },
        { "./usr/share/", NULL, 0 },
        { "./usr/share/doc/", NULL, 0 },
        { "./usr/share/doc/hello/", NULL, 0 },
        { "./usr/share/doc/hello/README", "", 0 },
};

struct fx {
        char top[64];
        int rootfd;
};

static int setup(void **state) {
        struct fx *f = calloc(1, sizeof *f);
        strcpy(f->top, "/tmp/mkm-test-deb-root.XXXXXX");
        assert_non_null(mkdtemp(f->top));
        f->rootfd = open(f->top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fx *f = *state;
        close(f->rootfd);
        (void)fs_rm_rf_at(AT_FDCWD, f->top);
        free(f);
        return 0;
}

static int build_deb(const char *ctl_filter, const char *data_filter, const struct ent *ctl, size_t nctl,
                     const struct ent *data, size_t ndata) {
        size_t cl, dl;
        void *c = make_tar(ctl, nctl, ctl_filter, &cl);
        void *d = make_tar(data, ndata, data_filter, &dl);
        char cn[32], dn[32];
        snprintf(cn, sizeof cn, "control.tar%s%s", *ctl_filter ? "." : "", ctl_filter);
        snprintf(dn, sizeof dn, "data.tar%s%s", *data_filter ? "." : "", data_filter);
        struct member m[] = { { "debian-binary", "2.0\n", 4 }, { cn, c, cl }, { dn, d, dl } };
        int fd = make_ar(m, 3);
        free(c);
        free(d);
        return fd;
}

static void test_read_ok(void **state) {
        struct fx *f = *state;
        static const char *const filters[] = { "xz", "gz", "zst", "" };
        for (size_t k = 0; k < 4; k++) {
                int fd = build_deb(filters[k], filters[(k + 1) % 4], control_ok, 5, data_ok, 8);
                struct deb_control c = {};
                struct extract_result r = {};
                struct extract_opts o = { .label = "hello" };
                struct mkm_err e = {};
                int q = deb_read(NULL, fd, "hello", f->rootfd, &o, &c, &r, &e);
                if (q < 0)
                        fail_msg("%s", e.msg);
                assert_int_equal(c.n, 4);
                assert_string_equal(c.members[0].name, "conffiles");    /* sorted */
                const struct deb_member *pi = deb_control_get(&c, "postinst");
                assert_non_null(pi);
                assert_int_equal(pi->mode, 0755);
                assert_string_equal(pi->data, "#!/bin/sh\nexit 0\n");
                assert_true(strv_contains(r.files, "etc/hello.conf"));
                assert_true(strv_contains(r.files, "usr/share/doc/hello/"));
                _cleanup_free_ char *conf = NULL;
                assert_int_equal(fs_read_file_follow_at(f->rootfd, "etc/hello.conf", 1024, &conf, NULL), 0);
                assert_string_equal(conf, "greeting=hi\n");
                deb_control_done(&c);
                extract_result_done(&r);
                close(fd);
                (void)fs_rm_rf_at(f->rootfd, "etc");
                (void)fs_rm_rf_at(f->rootfd, "usr");
        }
}

static void test_control_only(void **state) {
        int fd = build_deb("xz", "xz", control_ok, 5, data_ok, 8);
        struct deb_control c = {};
        struct mkm_err e = {};
        assert_int_equal(deb_read(NULL, fd, "hello", -1, NULL, &c, NULL, &e), 0);
        assert_non_null(deb_control_get(&c, "control"));
        deb_control_done(&c);
        close(fd);
        (void)state;
}

static void expect_fail(int fd, struct fx *f, int code, const char *needle) {
        struct deb_control c = {};
        struct extract_result r = {};
        struct extract_opts o = { .label = "bad" };
        struct mkm_err e = {};
        int q = deb_read(NULL, fd, "bad", f->rootfd, &o, &c, &r, &e);
        if (q != code || !strstr(e.msg, needle))
                fail_msg("expected %d with '%s', got %d: %s", code, needle, q, e.msg);
        assert_null(c.members);
        close(fd);
}

static void test_bad_containers(void **state) {
        struct fx *f = *state;
        size_t cl, dl;
        void *c = make_tar(control_ok, 5, "xz", &cl);
        void *d = make_tar(data_ok, 8, "xz", &dl);
        /* data before control */
        struct member m1[] = { { "debian-binary", "2.0\n", 4 }, { "data.tar.xz", d, dl }, { "control.tar.xz", c, cl } };
        expect_fail(make_ar(m1, 3), f, -MKM_E_ARCHIVE, "expected control.tar");
        /* wrong format version */
        struct member m2[] = { { "debian-binary", "3.0\n", 4 }, { "control.tar.xz", c, cl }, { "data.tar.xz", d, dl } };
        expect_fail(make_ar(m2, 3), f, -MKM_E_ARCHIVE, "format 2.x");
        /* an unknown compression */
        struct member m3[] = { { "debian-binary", "2.0\n", 4 }, { "control.tar.lz", c, cl }, { "data.tar.xz", d, dl } };
        expect_fail(make_ar(m3, 3), f, -MKM_E_ARCHIVE, "unexpected member 'control.tar.lz'");
        /* no data member */
        struct member m4[] = { { "debian-binary", "2.0\n", 4 }, { "control.tar.xz", c, cl } };
        expect_fail(make_ar(m4, 2), f, -MKM_E_ARCHIVE, "no data.tar");
        /* a second data member */
        struct member m5[] = { { "debian-binary", "2.0\n", 4 }, { "control.tar.xz", c, cl }, { "data.tar.xz", d, dl },
                               { "data.tar.gz", d, dl } };
        expect_fail(make_ar(m5, 4), f, -MKM_E_ARCHIVE, "after data.tar");
        free(c);
        free(d);
}

static void test_bad_control(void **state) {
        struct fx *f = *state;
        const struct ent traversal[] = { { "./control", "Package: x\n", 0 }, { "../../etc/evil", "x", 0 } };
        expect_fail(build_deb("xz", "xz", traversal, 2, data_ok, 8), f, -MKM_E_UNSAFE_PATH, "refusing member");
        const struct ent upper[] = { { "./control", "Package: x\n", 0 }, { "./PostInst", "x", 0 } };
        expect_fail(build_deb("xz", "xz", upper, 2, data_ok, 8), f, -MKM_E_UNSAFE_PATH, "refusing member");
        const struct ent nocontrol[] = { { "./md5sums", "", 0 } };
        expect_fail(build_deb("xz", "xz", nocontrol, 1, data_ok, 8), f, -MKM_E_ARCHIVE, "no 'control'");
}

static void test_data_escape(void **state) {
        struct fx *f = *state;
        const struct ent evil[] = { { "./", NULL, 0 }, { "./usr/../../escaped", "x", 0 } };
        expect_fail(build_deb("xz", "xz", control_ok, 5, evil, 2), f, -MKM_E_UNSAFE_PATH, "..");
        char p[128];
        snprintf(p, sizeof p, "%s/../escaped", f->top);
        assert_int_equal(access(p, F_OK), -1);
}

static void test_sources(void **state) {
        (void)state;
        char **u = NULL;
        struct mkm_err e = {};
        const char *d822 = "# written by hand\nTypes: deb deb-src\n# a comment between fields\nURIs: http://one.example/debian/ http://two.example/debian\n"
                           "Suites: bookworm bookworm-updates\nComponents: main\n\n"
                           "Types: deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\n"
                           "Components: main\n\n"
                           "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n";
        assert_int_equal(deb_sources_parse(d822, strlen(d822), "x.sources", 1, "bookworm", &u, &e), 0);
        assert_int_equal(strv_length(u), 2);
        assert_string_equal(u[0], "http://one.example/debian");
        assert_string_equal(u[1], "http://two.example/debian");
        strv_free(u);
        u = NULL;
        assert_int_equal(deb_sources_parse(d822, strlen(d822), "x.sources", 1, "bookworm-security", &u, &e), 0);
        assert_int_equal(strv_length(u), 1);
        strv_free(u);
        u = NULL;
        const char *one = "# comment\ndeb [arch=amd64 signed-by=/x.gpg] http://a.example/debian bookworm main\n"
                          "deb-src http://b.example/debian bookworm main\n"
                          "deb http://c.example/debian trixie main # later\n";
        assert_int_equal(deb_sources_parse(one, strlen(one), "sources.list", 0, "bookworm", &u, &e), 0);
        assert_int_equal(strv_length(u), 1);
        assert_string_equal(u[0], "http://a.example/debian");
        strv_free(u);
        u = NULL;
        const char *bad = "deb [arch=amd64 http://a.example/debian bookworm main\n";
        assert_int_equal(deb_sources_parse(bad, strlen(bad), "sources.list", 0, "bookworm", &u, &e), -MKM_E_PARSE);
        assert_non_null(strstr(e.msg, "sources.list:1:"));
        strv_free(u);
        u = NULL;
        assert_int_equal(deb_host_mirrors("/nonexistent-host", "bookworm", &u, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "no mirror for suite 'bookworm'"));
}

/* The control file: one paragraph, identity fields copied, dpkg's own database fields refused. */
static void test_control_info(void **state) {
        (void)state;
        static const char ok[] = "Package: libfoo1\nVersion: 1:2.0-1\nArchitecture: amd64\nMulti-Arch: SAME\n"
                                 "Description: x\n long\n";
        struct deb_control_info info = {};
        struct mkm_err e = {};
        assert_int_equal(deb_control_info_parse(ok, strlen(ok), "control", &info, &e), 0);
        assert_string_equal(info.name, "libfoo1");
        assert_string_equal(info.version, "1:2.0-1");
        assert_string_equal(info.arch, "amd64");
        assert_true(info.ma_same);
        deb_control_info_done(&info);
        /* not NUL-terminated: the parser stays inside len */
        assert_int_equal(deb_control_info_parse(ok, 17, "control", &info, &e), 0);
        assert_string_equal(info.name, "libfoo1");
        assert_null(info.version);
        deb_control_info_done(&info);

        static const struct {
                const char *text, *msg;
        } bad[] = {
                { "", "malformed control file: no paragraph" },
                { "Package: a\n\nPackage: b\n", "the control file has more than one paragraph" },
                { "Package: a\nstatus: install ok installed\n", "the control file has a Status: field" },
                { "Package: a\nConffiles:\n /etc/x 0\n", "the control file has a Conffiles: field" },
                { "Package: a\nPackage: b\n", "malformed control file: control:2:" },
                { "Package: a\r\n", "malformed control file: control:1:" },
                { " folded\n", "malformed control file: control:1:" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                e = (struct mkm_err){};
                assert_int_equal(deb_control_info_parse(bad[i].text, strlen(bad[i].text), "control", &info, &e),
                                 -MKM_E_BADDATA);
                print_message("%s -> %s\n", bad[i].text, e.msg);
                assert_non_null(strstr(e.msg, bad[i].msg));
        }
}

/* conffiles: absolute normalised paths; flags after a blank dropped; anything else refused. */
static void test_conffiles(void **state) {
        (void)state;
        char **l = NULL;
        struct mkm_err e = {};
        assert_int_equal(deb_conffiles_parse("/etc/a\n  /etc/b remove-on-upgrade\n\n\t\n/etc/c\r\n", "p", &l, &e), 0);
        assert_int_equal(strv_length(l), 3);
        assert_string_equal(l[0], "/etc/a");
        assert_string_equal(l[1], "/etc/b");
        assert_string_equal(l[2], "/etc/c");
        strv_free(l);
        l = NULL;
        assert_int_equal(deb_conffiles_parse("", "p", &l, &e), 0);
        assert_null(l);
        static const char *const bad[] = { "etc/a", "/etc/../a", "/etc/./a", "//etc/a", "/etc/", "/etc/.", "/etc/..",
                                           "/..", "/" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char text[64], want[96];
                snprintf(text, sizeof text, "/etc/ok\n%s\n", bad[i]);
                snprintf(want, sizeof want, "p: conffiles: refusing '%s'", bad[i]);
                l = NULL;
                assert_int_equal(deb_conffiles_parse(text, "p", &l, &e), -MKM_E_UNSAFE_PATH);
                assert_string_equal(e.msg, want);
                assert_null(l);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_read_ok, setup, teardown),
                cmocka_unit_test_setup_teardown(test_control_only, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_containers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_control, setup, teardown),
                cmocka_unit_test_setup_teardown(test_data_escape, setup, teardown),
                cmocka_unit_test(test_sources),
                cmocka_unit_test(test_control_info),
                cmocka_unit_test(test_conffiles),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
