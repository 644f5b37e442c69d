/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/units: enabling systemd units in a tree as `systemctl --root enable` does.
 * Small trees are built in temp dirs; every test asserts the exact symlinks (readlink targets)
 * created under etc/ and the exact error messages. When /usr/bin/systemctl exists, the oracle
 * test runs the real `systemctl --root=A enable` and our units_enable() on identical trees for a
 * fixture set covering every [Install] key, and compares the symlinks both created. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctx.h"
#include "helpers.h"
#include "units.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strv.h"

#define SYSTEMCTL "/usr/bin/systemctl"
#define U "usr/lib/systemd/system/"
#define E "etc/systemd/system/"

/* ---- tree helpers ---- */

static void mkparents(const char *root, const char *rel) {
        char *p = fs_path_join(root, rel);
        assert_non_null(p);
        char *s = strrchr(p, '/');
        *s = 0;
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, p, 0755), 0);
        free(p);
}

static void put(const char *root, const char *rel, const char *content) { th_write_file(root, rel, content, 0644); }

static void link_(const char *root, const char *rel, const char *target) {
        mkparents(root, rel);
        char *p = fs_path_join(root, rel);
        assert_int_equal(symlink(target, p), 0);
        free(p);
}

/* Every symlink under dir/sub, as "path -> target" lines sorted (path relative to dir). */
static void collect(const char *dir, const char *sub, char ***acc) {
        char *p = fs_path_join(dir, sub);
        DIR *d = opendir(p);
        if (!d) {
                free(p);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                char *rel = fs_path_join(sub, de->d_name), *full = fs_path_join(dir, rel);
                struct stat st;
                assert_int_equal(lstat(full, &st), 0);
                if (S_ISLNK(st.st_mode)) {
                        char buf[4096];
                        ssize_t n = readlink(full, buf, sizeof buf - 1);
                        assert_true(n >= 0);
                        buf[n] = 0;
                        char *line;
                        assert_true(asprintf(&line, "%s -> %s", rel, buf) > 0);
                        assert_int_equal(strv_consume(acc, line), 0);
                } else if (S_ISDIR(st.st_mode))
                        collect(dir, rel, acc);
                free(rel);
                free(full);
        }
        closedir(d);
        free(p);
}

/* All symlinks under etc/, one "path -> target\n" per line, sorted. Caller frees. */
static char *links(const char *root) {
        char **l = NULL;
        collect(root, "etc", &l);
        strv_sort(l);
        size_t len = 1;
        for (size_t i = 0; l && l[i]; i++)
                len += strlen(l[i]) + 1;
        char *s = calloc(1, len);
        assert_non_null(s);
        for (size_t i = 0; l && l[i]; i++) {
                strcat(s, l[i]);
                strcat(s, "\n");
        }
        strv_free(l);
        return s;
}

/* ---- event capture ---- */

struct events {
        char text[16384];
};

static void on_event(void *userdata, const struct mkm_event *ev) {
        struct events *e = userdata;
        if (ev->type != MKM_EV_LOG)
                return;
        size_t o = strlen(e->text);
        (void)snprintf(e->text + o, sizeof e->text - o, "%d:%s\n", (int)ev->level, ev->text);
}

static int enable(const char *root, const char *const *names, struct mkm_err *err, struct events *ev) {
        struct mkm_ctx ctx = { .events = { .fn = on_event, .userdata = ev } };
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        int r = units_enable(&ctx, fd, (char *const *)names, err);
        close(fd);
        return r;
}

#define ENABLE_OK(root, ...)                                                                      \
        do {                                                                                      \
                struct mkm_err err_ = {};                                                         \
                struct events ev_ = {};                                                           \
                const char *names_[] = { __VA_ARGS__, NULL };                                     \
                int r_ = enable((root), names_, &err_, &ev_);                                     \
                if (r_ < 0)                                                                       \
                        fail_msg("units_enable failed %d: %s", r_, err_.msg);                     \
        } while (0)

static void expect_fail(const char *root, const char *const *names, int code, const char *msg) {
        struct mkm_err err = {};
        struct events ev = {};
        int r = enable(root, names, &err, &ev);
        assert_int_equal(r, code);
        assert_int_equal(err.code, code);
        assert_string_equal(err.msg, msg);
}

static void expect_links(const char *root, const char *want) {
        char *got = links(root);
        assert_string_equal(got, want);
        free(got);
}

/* ---- the fixture set (also used by the oracle) ---- */

static void fixture(const char *r) {
        put(r, "etc/machine-id", "0123456789abcdef0123456789abcdef\n");
        put(r, U "a.service",
            "[Unit]\nDescription=a\n[Service]\nExecStart=/bin/true\n"
            "[Install]\nWantedBy=multi-user.target  foo.target\nRequiredBy=b.target\nAlias=aa.service\nAlso=b.service\n");
        put(r, U "b.service", "[Install]\nWantedBy=x-%p-%n-%N-%i.target\nAlso=a.service\n");
        put(r, U "t@.service", "[Install]\nWantedBy=multi-user.target\nDefaultInstance=bar\nAlias=tt@.service\n");
        put(r, U "n.service", "[Service]\nExecStart=/bin/true\n");
        put(r, U "multi.service",
            "# comment\n; comment\n[Install]\nWantedBy=x.target \\\n"
            "# a comment inside a continuation\n"
            "  y.target\nWantedBy=z.target\nRequiredBy=gone.target\nRequiredBy=\nRequiredBy=r1.target r2.target\n"
            "[X-Other]\nWantedBy=not-this.target\n[Install]\r\nUpheldBy=up.target\r\n");
        put(r, U "over.service", "[Install]\nWantedBy=usr.target\n");
        put(r, E "over.service", "[Install]\nWantedBy=etc.target\n");
        put(r, U "real.service", "[Install]\nWantedBy=multi-user.target\nAlias=real-alias.service\n");
        link_(r, U "dbus-real.service", "real.service");
        put(r, "opt/linked.service", "[Install]\nWantedBy=multi-user.target\n");
        link_(r, E "linked.service", "/opt/linked.service");
        put(r, U "dr.service", "[Install]\nWantedBy=base.target\n");
        put(r, U "dr.service.d/10-x.conf", "[Install]\nWantedBy=dropin.target\n");
        put(r, U "sp@.service", "[Install]\nWantedBy=w-%i-%j-%p-%N-%n-%u-%U-%g-%G-%m.target\n");
        put(r, U "m.service", "[Install]\nWantedBy=multi-user.target\n");
        link_(r, E "m.service", "/dev/null");
        put(r, U "also-masked.service", "[Install]\nAlso=m.service missing.service\nWantedBy=multi-user.target\n");
        put(r, U "tpl@.service", "[Install]\nWantedBy=multi-user.target\n");
        put(r, U "ti@.service", "[Install]\nWantedBy=foo@.target bar@k.target\n");
        put(r, U "tpl2@.service", "[Install]\nAlias=notpl.service\nWantedBy=multi-user.target\nDefaultInstance=z\n");
        put(r, U "dev@.service", "[Install]\nAlias=dev@.service dev@x.service\n");
        put(r, U "q.service",
            "[Install]\nWantedBy=\"a b.target\" c\\x2d.target 'd.target' e\"f g\".target x.target\n");
        put(r, U "q2.service", "[Install]\nWantedBy=\"a.target\" b.target \"c.target\n");
        link_(r, E "etcalias.service", "/usr/lib/systemd/system/real.service");
        put(r, U "leg.service", "[Install]\nAlias=multi-user.target.wants/leg.service\n");
        put(r, U "mnt.mount", "[Install]\nAlias=mnt2.mount\nWantedBy=local-fs.target\n");
        put(r, U "dm@.service", "[Install]\nWantedBy=multi-user.target\nDefaultInstance=mm\n");
        link_(r, E "dm@mm.service", "/dev/null");
        put(r, U "empty.service", "");
        put(r, U "al.socket", "[Install]\nAlias=al.service\n");
        put(r, U "bad.service", "[Install\nWantedBy=x.target\n");
        put(r, U "spec.service", "[Install]\nWantedBy=w-%f.target\n");
        put(r, "lib/systemd/system/libonly.service", "[Install]\nWantedBy=multi-user.target\n");
        put(r, "run/systemd/generator/gen.service", "[Install]\nWantedBy=multi-user.target\n");
        put(r, U "dt@.service", "[Install]\nWantedBy=base.target\n");
        put(r, U "dt@.service.d/x.conf", "[Install]\nWantedBy=dt.target\nRequiredBy=req.target\n");
        put(r, U "dt@.service.d/masked.conf", "[Install]\nWantedBy=never.target\n");
        link_(r, E "dt@.service.d/masked.conf", "/dev/null");
        put(r, U "sa.service", "[Install]\nAlso=%p-helper.service\nWantedBy=multi-user.target\n");
        put(r, U "sa-helper.service", "[Install]\nWantedBy=helper.target\n");
        put(r, U "ib@.service", "[Install]\nWantedBy=multi-user.target\nAlias=ibb@.service\n");
        link_(r, U "ia@.service", "ib@.service");
        /* A link to a link outside the search path: only the first is read (chased without
         * following its last component), so the unit is linked, not an alias of real.service. */
        link_(r, U "hop.service", "/opt/hop.service");
        link_(r, "opt/hop.service", "/usr/lib/systemd/system/real.service");
}

/* ---- explicit cases ---- */

static void test_wantedby_requiredby_alias_also_cycle(void **state) {
        (void)state;
        char *r = th_tmpdir_new("units");
        fixture(r);
        ENABLE_OK(r, "a.service");
        expect_links(r,
                     "etc/systemd/system/aa.service -> /usr/lib/systemd/system/a.service\n"
                     "etc/systemd/system/b.target.requires/a.service -> /usr/lib/systemd/system/a.service\n"
                     "etc/systemd/system/dm@mm.service -> /dev/null\n"
                     "etc/systemd/system/dt@.service.d/masked.conf -> /dev/null\n"
                     "etc/systemd/system/etcalias.service -> /usr/lib/systemd/system/real.service\n"
                     "etc/systemd/system/foo.target.wants/a.service -> /usr/lib/systemd/system/a.service\n"
                     "etc/systemd/system/linked.service -> /opt/linked.service\n"
                     "etc/systemd/system/m.service -> /dev/null\n"
                     "etc/systemd/system/multi-user.target.wants/a.service -> /usr/lib/systemd/system/a.service\n"
                     "etc/systemd/system/x-b-b.service-b-.target.wants/b.service -> /usr/lib/systemd/system/b.service\n");
        /* Idempotent: a second run changes nothing and succeeds. */
        ENABLE_OK(r, "a.service", "b.service");
        char *again = links(r);
        assert_non_null(strstr(again, "aa.service -> /usr/lib/systemd/system/a.service\n"));
        assert_int_equal(strv_length(NULL), 0);
        free(again);
        th_tmpdir_free(r);
}

/* Only the links a call created: a fresh tree without the fixture's own etc/ links. */
static char *fresh(void) {
        char *r = th_tmpdir_new("units");
        fixture(r);
        return r;
}

static void expect_new_links(const char *root, const char *want) {
        static const char base[] = "etc/systemd/system/dm@mm.service -> /dev/null\n"
                                   "etc/systemd/system/dt@.service.d/masked.conf -> /dev/null\n"
                                   "etc/systemd/system/etcalias.service -> /usr/lib/systemd/system/real.service\n"
                                   "etc/systemd/system/linked.service -> /opt/linked.service\n"
                                   "etc/systemd/system/m.service -> /dev/null\n";
        char *got = links(root);
        /* Drop the fixture's own links from got. */
        char *out = calloc(1, strlen(got) + 1);
        assert_non_null(out);
        for (char *l = got; *l;) {
                char *nl = strchr(l, '\n');
                size_t n = (size_t)(nl - l) + 1;
                char line[4096];
                assert_true(n < sizeof line);
                memcpy(line, l, n);
                line[n] = 0;
                if (!strstr(base, line))
                        strcat(out, line);
                l = nl + 1;
        }
        assert_string_equal(out, want);
        free(out);
        free(got);
}

static void test_templates(void **state) {
        (void)state;
        char *r = fresh();
        ENABLE_OK(r, "t@.service", "t@x.service");
        expect_new_links(r,
                         "etc/systemd/system/multi-user.target.wants/t@bar.service -> /usr/lib/systemd/system/t@.service\n"
                         "etc/systemd/system/multi-user.target.wants/t@x.service -> /usr/lib/systemd/system/t@.service\n"
                         "etc/systemd/system/tt@.service -> /usr/lib/systemd/system/t@.service\n"
                         "etc/systemd/system/tt@x.service -> /usr/lib/systemd/system/t@.service\n");
        th_tmpdir_free(r);

        r = fresh();
        ENABLE_OK(r, "ti@.service", "ti@t.service");
        expect_new_links(r,
                         "etc/systemd/system/bar@k.target.wants/ti@.service -> /usr/lib/systemd/system/ti@.service\n"
                         "etc/systemd/system/bar@k.target.wants/ti@t.service -> /usr/lib/systemd/system/ti@.service\n"
                         "etc/systemd/system/foo@.target.wants/ti@.service -> /usr/lib/systemd/system/ti@.service\n"
                         "etc/systemd/system/foo@.target.wants/ti@t.service -> /usr/lib/systemd/system/ti@.service\n");
        th_tmpdir_free(r);

        /* A template without DefaultInstance= and a plain target: systemctl's EIDRM. */
        r = fresh();
        expect_fail(r, (const char *[]){ "tpl@.service", NULL }, -MKM_E_PARSE,
                    "cannot enable tpl@.service: destination unit multi-user.target is a non-template unit");
        expect_new_links(r, "");
        th_tmpdir_free(r);

        /* DefaultInstance= whose instance is masked. */
        r = fresh();
        expect_fail(r, (const char *[]){ "dm@.service", NULL }, -MKM_E_RECIPE,
                    "cannot enable unit: unit /etc/systemd/system/dm@mm.service is masked");
        th_tmpdir_free(r);
}

static void test_specifiers_and_syntax(void **state) {
        (void)state;
        char *r = fresh();
        ENABLE_OK(r, "sp@q-r.service", "multi.service");
        expect_new_links(
                r,
                "etc/systemd/system/r1.target.requires/multi.service -> /usr/lib/systemd/system/multi.service\n"
                "etc/systemd/system/r2.target.requires/multi.service -> /usr/lib/systemd/system/multi.service\n"
                "etc/systemd/system/w-q-r-sp-sp-sp@q-r-sp@q-r.service-root-0-root-0-0123456789abcdef0123456789abcdef.target.wants/"
                "sp@q-r.service -> /usr/lib/systemd/system/sp@.service\n"
                "etc/systemd/system/x.target.wants/multi.service -> /usr/lib/systemd/system/multi.service\n"
                "etc/systemd/system/y.target.wants/multi.service -> /usr/lib/systemd/system/multi.service\n"
                "etc/systemd/system/z.target.wants/multi.service -> /usr/lib/systemd/system/multi.service\n");
        th_tmpdir_free(r);

        /* Quotes group words; an open quote drops the rest of the line; invalid names fail alone. */
        r = fresh();
        expect_fail(r, (const char *[]){ "q.service", "q2.service", NULL }, -MKM_E_PARSE,
                    "cannot enable unit: \"a b.target\" is not a valid unit name");
        expect_new_links(r,
                         "etc/systemd/system/a.target.wants/q2.service -> /usr/lib/systemd/system/q2.service\n"
                         "etc/systemd/system/b.target.wants/q2.service -> /usr/lib/systemd/system/q2.service\n"
                         "etc/systemd/system/c\\x2d.target.wants/q.service -> /usr/lib/systemd/system/q.service\n"
                         "etc/systemd/system/d.target.wants/q.service -> /usr/lib/systemd/system/q.service\n"
                         "etc/systemd/system/x.target.wants/q.service -> /usr/lib/systemd/system/q.service\n");
        th_tmpdir_free(r);

        r = fresh();
        expect_fail(r, (const char *[]){ "spec.service", NULL }, -MKM_E_PARSE, "invalid specifier in \"w-%f.target\"");
        expect_fail(r, (const char *[]){ "bad.service", NULL }, -MKM_E_PARSE,
                    "/usr/lib/systemd/system/bad.service:1: invalid section header '[Install'");
        expect_new_links(r, "");
        th_tmpdir_free(r);

        /* Host specifiers are refused: they would make the tree depend on the build host. */
        r = fresh();
        put(r, U "host.service", "[Install]\nWantedBy=w-%H.target\n");
        expect_fail(r, (const char *[]){ "host.service", NULL }, -MKM_E_PARSE,
                    "specifier '%H' in \"w-%H.target\" names the build host (boot ID, host name or kernel), refusing "
                    "it in a reproducible build");
        th_tmpdir_free(r);

        /* os-release specifiers come from the tree. */
        r = fresh();
        put(r, "usr/lib/os-release", "ID=arch\nVERSION_ID=\"2024.01\"\n");
        put(r, U "os.service", "[Install]\nWantedBy=w-%o-%w.target\n");
        ENABLE_OK(r, "os.service");
        expect_new_links(r, "etc/systemd/system/w-arch-2024.01.target.wants/os.service -> /usr/lib/systemd/system/os.service\n");
        put(r, U "os2.service", "[Install]\nWantedBy=w-%W.target\n");
        expect_fail(r, (const char *[]){ "os2.service", NULL }, -MKM_E_PARSE, "cannot resolve specifiers in \"w-%W.target\"");
        th_tmpdir_free(r);
}

static void test_symlinked_units(void **state) {
        (void)state;
        char *r = fresh();
        /* etc overrides usr; an alias symlink in usr enables the unit it points to; a linked unit
         * file outside the search path is enabled with links to it; drop-ins add rules. */
        ENABLE_OK(r, "over.service", "dbus-real.service", "linked.service", "dr.service");
        expect_new_links(r,
                         "etc/systemd/system/base.target.wants/dr.service -> /usr/lib/systemd/system/dr.service\n"
                         "etc/systemd/system/dropin.target.wants/dr.service -> /usr/lib/systemd/system/dr.service\n"
                         "etc/systemd/system/etc.target.wants/over.service -> /etc/systemd/system/over.service\n"
                         "etc/systemd/system/multi-user.target.wants/linked.service -> /opt/linked.service\n"
                         "etc/systemd/system/multi-user.target.wants/real.service -> /usr/lib/systemd/system/real.service\n"
                         "etc/systemd/system/real-alias.service -> /usr/lib/systemd/system/real.service\n");
        th_tmpdir_free(r);

        r = fresh();
        expect_fail(r, (const char *[]){ "etcalias.service", NULL }, -MKM_E_RECIPE,
                    "refusing to operate on linked unit file etcalias.service (an alias in /etc/systemd/system; enable "
                    "the unit it points to)");
        th_tmpdir_free(r);

        /* Legacy Alias= into a .wants directory; Alias= is ignored for mount units. */
        r = fresh();
        ENABLE_OK(r, "leg.service", "mnt.mount");
        expect_new_links(r,
                         "etc/systemd/system/local-fs.target.wants/mnt.mount -> /usr/lib/systemd/system/mnt.mount\n"
                         "etc/systemd/system/multi-user.target.wants/leg.service -> /usr/lib/systemd/system/leg.service\n");
        th_tmpdir_free(r);

        /* Alias rules: a type change, an instance mismatch, a plain alias of a template. */
        r = fresh();
        expect_fail(r, (const char *[]){ "al.socket", NULL }, -MKM_E_PARSE,
                    "cannot enable unit: cannot alias al.socket as al.service");
        expect_fail(r, (const char *[]){ "dev@y.service", NULL }, -MKM_E_PARSE,
                    "cannot enable unit: cannot alias dev@y.service as dev@x.service");
        expect_fail(r, (const char *[]){ "tpl2@.service", NULL }, -MKM_E_PARSE,
                    "cannot enable unit: cannot alias tpl2@.service as notpl.service");
        /* ...the other rules of tpl2@ still apply, as with systemctl. */
        expect_new_links(r, "etc/systemd/system/multi-user.target.wants/tpl2@z.service -> /usr/lib/systemd/system/tpl2@.service\n");
        th_tmpdir_free(r);
}

static void test_no_install_masked_missing(void **state) {
        (void)state;
        char *r = fresh();
        struct mkm_err err = {};
        struct events ev = {};
        assert_int_equal(enable(r, (const char *[]){ "n.service", NULL }, &err, &ev), 0);
        assert_non_null(strstr(ev.text, "3:units: n.service has no installation config (WantedBy=, RequiredBy=, "
                                        "Also=, Alias= in [Install]); nothing to enable, as systemctl says\n"));
        expect_new_links(r, "");

        expect_fail(r, (const char *[]){ "m.service", NULL }, -MKM_E_RECIPE,
                    "unit file /etc/systemd/system/m.service is masked, cannot enable 'm.service'");
        expect_fail(r, (const char *[]){ "empty.service", NULL }, -MKM_E_RECIPE,
                    "unit file /usr/lib/systemd/system/empty.service is masked, cannot enable 'empty.service'");
        expect_fail(r, (const char *[]){ "nosuch.service", NULL }, -MKM_E_RECIPE,
                    "unit 'nosuch.service' not found in the machine (looked in /etc/systemd/system.control, "
                    "/run/systemd/system.control, /run/systemd/transient, /run/systemd/generator.early, "
                    "/etc/systemd/system, /etc/systemd/system.attached, /run/systemd/system, "
                    "/run/systemd/system.attached, /run/systemd/generator, /usr/local/lib/systemd/system, "
                    "/usr/lib/systemd/system, /lib/systemd/system, /run/systemd/generator.late)");
        assert_int_equal(enable(r, (const char *[]){ "nosuch@x.service", NULL }, &err, &ev), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "unit 'nosuch@x.service' not found in the machine (nor its template "
                                        "'nosuch@.service'; looked in /etc/systemd/system.control, "));
        /* A missing unit anywhere in the list: nothing at all is created. */
        expect_fail(r, (const char *[]){ "a.service", "nosuch.service", NULL }, -MKM_E_RECIPE,
                    "unit 'nosuch.service' not found in the machine (looked in /etc/systemd/system.control, "
                    "/run/systemd/system.control, /run/systemd/transient, /run/systemd/generator.early, "
                    "/etc/systemd/system, /etc/systemd/system.attached, /run/systemd/system, "
                    "/run/systemd/system.attached, /run/systemd/generator, /usr/local/lib/systemd/system, "
                    "/usr/lib/systemd/system, /lib/systemd/system, /run/systemd/generator.late)");
        expect_new_links(r, "");
        expect_fail(r, (const char *[]){ "../x.service", NULL }, -MKM_E_RECIPE, "'../x.service' is not a valid unit name");
        expect_fail(r, (const char *[]){ "a b", NULL }, -MKM_E_RECIPE, "'a b' is not a valid unit name");

        /* Also= of a masked and of a missing unit: warnings, the unit itself is enabled. */
        memset(&ev, 0, sizeof ev);
        assert_int_equal(enable(r, (const char *[]){ "also-masked", NULL }, &err, &ev), 0);
        assert_non_null(strstr(ev.text, "1:units: unit /etc/systemd/system/m.service is masked, ignoring\n"));
        assert_non_null(strstr(ev.text, "1:units: failed to enable auxiliary unit missing.service (Also=), ignoring: "
                                        "unit 'missing.service' not found in the machine"));
        expect_new_links(r, "etc/systemd/system/multi-user.target.wants/also-masked.service -> "
                            "/usr/lib/systemd/system/also-masked.service\n");

        int fd = open(r, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_int_equal(units_exists(fd, "a.service"), 0);
        close(fd);
        th_tmpdir_free(r);
}

/* A drop-in directory whose listing fails (a disk error: th_broken_listing_new()) fails the call:
 * a drop-in missed would change what is enabled, and the tree with it. */
static void test_dropin_listing_fails(void **state) {
        (void)state;
        char *r = th_tmpdir_new("units");
        put(r, U "dr.service", "[Install]\nWantedBy=base.target\n");
        put(r, U "dr.service.d/10-x.conf", "[Install]\nWantedBy=dropin.target\n");
        ENABLE_OK(r, "dr.service");
        expect_new_links(r, "etc/systemd/system/base.target.wants/dr.service -> /usr/lib/systemd/system/dr.service\n"
                            "etc/systemd/system/dropin.target.wants/dr.service -> /usr/lib/systemd/system/dr.service\n");
        _cleanup_free_ char *broken = th_broken_listing_new(r);
        int bound = th_bind_over(broken, r, U "dr.service.d");
        struct mkm_err err = {};
        struct events ev = {};
        int q = bound == 0 ? enable(r, (const char *[]){ "dr.service", NULL }, &err, &ev) : 0;
        th_unbind(r, U "dr.service.d");
        th_broken_listing_done(r);
        assert_int_equal(bound, 0);
        if (q != -EBADMSG || !strstr(err.msg, "cannot list /usr/lib/systemd/system/dr.service.d: Bad message"))
                fail_msg("a drop-in directory that cannot be listed: %d, '%s'", q, err.msg);
        th_tmpdir_free(r);
}

/* The search skips a search directory that is not there (search_dir_gone()) without changing a
 * result: the name is still judged first, a directory that fails otherwise (a symlink loop) is
 * still looked in, and one that the call itself creates (the first link into /etc/systemd/system)
 * is looked in from then on. */
static void test_search_dirs(void **state) {
        (void)state;
        /* only /usr/lib/systemd/system: /etc/systemd/system is made by the first link */
        char *r = th_tmpdir_new("units");
        put(r, U "x.service", "[Install]\nAlias=xa.service\nAlso=xa.service\nWantedBy=multi-user.target\n");
        struct mkm_err err = {};
        struct events ev = {};
        assert_int_equal(enable(r, (const char *[]){ "x.service", NULL }, &err, &ev), 0);
        /* Also=xa.service is looked for after x's links were made: found as the alias just made */
        if (!strstr(ev.text, "failed to enable auxiliary unit xa.service (Also=), ignoring: refusing to operate on "
                             "linked unit file xa.service"))
                fail_msg("%s", ev.text);
        expect_links(r, "etc/systemd/system/multi-user.target.wants/x.service -> /usr/lib/systemd/system/x.service\n"
                        "etc/systemd/system/xa.service -> /usr/lib/systemd/system/x.service\n");
        th_tmpdir_free(r);

        /* a name that cannot be templated, in a tree where the first search directory is missing */
        r = th_tmpdir_new("units");
        put(r, U "s.slice", "[Install]\nWantedBy=x.target\n");
        expect_fail(r, (const char *[]){ "s@i.slice", NULL }, -MKM_E_PARSE,
                    "/etc/systemd/system.control/s@i.slice: unit type slice cannot be templated");
        /* a search directory that is a symlink loop: looked in, and the loop reported */
        link_(r, "run/systemd/transient", "transient");
        put(r, U "y.service", "[Install]\nWantedBy=multi-user.target\n");
        memset(&ev, 0, sizeof ev);
        int q = enable(r, (const char *[]){ "y.service", NULL }, &err, &ev);
        if (q >= 0 || !strstr(err.msg, "/run/systemd/transient/y.service"))
                fail_msg("a looping search directory: %d %s", q, err.msg);
        th_tmpdir_free(r);
}

/* Also= fan-out: one name listed thousands of times is one unit (found by name, as systemd's
 * hashmap finds it: a linear search made a fuzzed 4096-unit fan-out take minutes), and more than
 * UNIT_CONTEXT_MAX distinct units is refused with the reason. */
static void test_also_fanout(void **state) {
        (void)state;
        char *r = th_tmpdir_new("units");
        size_t cap = 5000 * 24 + 256;
        char *text = malloc(cap), *wide = malloc(cap);
        assert_non_null(text);
        assert_non_null(wide);
        size_t o = (size_t)snprintf(text, cap, "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nAlso=");
        size_t w = (size_t)snprintf(wide, cap, "%s", text);
        for (int i = 0; i < 5000; i++) {
                o += (size_t)snprintf(text + o, cap - o, " dup.service");
                w += (size_t)snprintf(wide + w, cap - w, " tpl@%d.service", i);
        }
        (void)snprintf(text + o, cap - o, "\n");
        (void)snprintf(wide + w, cap - w, "\n");
        put(r, U "fan.service", text);
        put(r, U "wide.service", wide);
        put(r, U "dup.service", "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n");
        struct mkm_err err = {};
        struct events ev = {};
        if (enable(r, (const char *[]){ "fan.service", NULL }, &err, &ev) < 0)
                fail_msg("%s", err.msg);
        expect_new_links(r, "etc/systemd/system/multi-user.target.wants/dup.service -> /usr/lib/systemd/system/dup.service\n"
                            "etc/systemd/system/multi-user.target.wants/fan.service -> /usr/lib/systemd/system/fan.service\n");
        assert_int_equal(enable(r, (const char *[]){ "wide.service", NULL }, &err, &ev), -E2BIG);
        if (!strstr(err.msg, "more than 4096 units to enable (Also= fan-out)"))
                fail_msg("got %s", err.msg);
        free(text);
        free(wide);
        th_tmpdir_free(r);
}

static void test_exists(void **state) {
        (void)state;
        char *r = fresh();
        int fd = open(r, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_int_equal(units_exists(fd, "a.service"), 0);
        assert_int_equal(units_exists(fd, "t@foo.service"), 0);     /* via its template */
        assert_int_equal(units_exists(fd, "m.service"), 0);         /* masked still exists */
        assert_int_equal(units_exists(fd, "nope.service"), -ENOENT);
        assert_int_equal(units_exists(fd, "../a.service"), -EINVAL);
        /* What the search cannot judge is an error of its own, neither "there" nor "not there":
         * an alias symlink to a unit of another type (found by fuzz-units). */
        link_(r, E "bad.socket", "/usr/lib/systemd/system/real.service");
        assert_int_equal(units_exists(fd, "bad.socket"), -MKM_E_PARSE);
        close(fd);
        th_tmpdir_free(r);
}

static void test_conflicts_and_idempotence(void **state) {
        (void)state;
        char *r = fresh();
        /* An alias name taken by another unit: systemctl's "already exists and is a symlink". */
        link_(r, E "aa.service", "/usr/lib/systemd/system/n.service");
        expect_fail(r, (const char *[]){ "a.service", NULL }, -MKM_E_CONFLICT,
                    "cannot enable unit: file '/etc/systemd/system/aa.service' already exists and is a symlink to "
                    "'/usr/lib/systemd/system/n.service'");
        th_tmpdir_free(r);

        /* A regular file where a .wants link goes. */
        r = fresh();
        put(r, E "base.target.wants/dr.service", "x");
        expect_fail(r, (const char *[]){ "dr.service", NULL }, -MKM_E_CONFLICT,
                    "cannot enable unit: file '/etc/systemd/system/base.target.wants/dr.service' already exists");
        /* ...the other rules still apply. */
        expect_new_links(r, "etc/systemd/system/dropin.target.wants/dr.service -> /usr/lib/systemd/system/dr.service\n");
        th_tmpdir_free(r);

        /* As systemctl 252 decides its exit status: once Alias= made a link, a failing WantedBy=
         * link is reported (a warning) but does not fail the call. */
        r = fresh();
        put(r, E "multi-user.target.wants/real.service", "x");
        struct mkm_err err = {};
        struct events ev = {};
        assert_int_equal(enable(r, (const char *[]){ "real.service", NULL }, &err, &ev), 0);
        assert_non_null(strstr(ev.text, "1:units: cannot enable unit: file "
                                        "'/etc/systemd/system/multi-user.target.wants/real.service' already exists; "
                                        "ignoring, as systemctl does\n"));
        expect_new_links(r, "etc/systemd/system/real-alias.service -> /usr/lib/systemd/system/real.service\n");
        th_tmpdir_free(r);

        /* .wants links are replaced (systemctl forces them); equivalent links are kept as they are. */
        r = fresh();
        link_(r, E "multi-user.target.wants/real.service", "/some/where/real.service");
        link_(r, E "real-alias.service", "../../../usr/lib/systemd/system/real.service");
        ENABLE_OK(r, "real.service");
        link_(r, E "base.target.wants/dr.service", "/lib/systemd/system/dr.service");
        ENABLE_OK(r, "dr.service");
        ENABLE_OK(r, "dr.service", "real.service");
        expect_new_links(r,
                         "etc/systemd/system/base.target.wants/dr.service -> /lib/systemd/system/dr.service\n"
                         "etc/systemd/system/dropin.target.wants/dr.service -> /usr/lib/systemd/system/dr.service\n"
                         "etc/systemd/system/multi-user.target.wants/real.service -> /usr/lib/systemd/system/real.service\n"
                         "etc/systemd/system/real-alias.service -> ../../../usr/lib/systemd/system/real.service\n");
        th_tmpdir_free(r);
}

/* A hostile tree: symlinked directories pointing outside must resolve inside the tree. */
static void test_escape(void **state) {
        (void)state;
        char *outside = th_tmpdir_new("units");
        char *r = th_tmpdir_new("units");
        put(r, U "esc.service", "[Install]\nWantedBy=multi-user.target\n");
        /* etc/systemd/system/multi-user.target.wants -> OUTSIDE (absolute host path) and
         * etc/systemd -> ../../../../../.. would leave the tree if resolved on the host. */
        char *target;
        assert_true(asprintf(&target, "%s/wants", outside) > 0);
        link_(r, E "multi-user.target.wants", target);
        /* Dangling inside the tree: refused, and nothing is written on the host. */
        struct mkm_err err = {};
        struct events ev = {};
        assert_int_equal(enable(r, (const char *[]){ "esc.service", NULL }, &err, &ev), -ENOENT);
        assert_string_equal(err.msg, "cannot open directory /etc/systemd/system/multi-user.target.wants: No such file "
                                     "or directory");
        char *host = fs_path_join(outside, "wants");
        struct stat st;
        assert_int_equal(lstat(host, &st), -1);        /* nothing written outside */
        /* Once the directory exists inside the tree, the link goes there. */
        char *inside = fs_path_join(r, target + 1);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, inside, 0755), 0);
        ENABLE_OK(r, "esc.service");
        assert_int_equal(lstat(host, &st), -1);
        char *inlink = fs_path_join(inside, "esc.service");
        char buf[256];
        ssize_t n = readlink(inlink, buf, sizeof buf - 1);
        assert_true(n > 0);
        buf[n] = 0;
        assert_string_equal(buf, "/usr/lib/systemd/system/esc.service");
        free(inlink);
        free(inside);
        free(host);
        free(target);
        th_tmpdir_free(r);

        /* A unit file symlink climbing out with ".." stays inside: it resolves to the tree's root. */
        r = th_tmpdir_new("units");
        put(outside, "x.service", "[Install]\nWantedBy=multi-user.target\n");
        assert_true(asprintf(&target, "../../../../../../../../../..%s/x.service", outside) > 0);
        link_(r, E "x.service", target);
        struct mkm_err err2 = {};
        struct events ev2 = {};
        assert_int_equal(enable(r, (const char *[]){ "x.service", NULL }, &err2, &ev2), -MKM_E_RECIPE);
        assert_non_null(strstr(err2.msg, "unit 'x.service' not found in the machine (looked in "));
        assert_int_equal(lstat(r, &st), 0);
        free(target);
        th_tmpdir_free(r);
        th_tmpdir_free(outside);
}

/* ---- the oracle: the real systemctl on an identical tree ---- */

static int run_systemctl(const char *root, const char *const *names) {
        char *argv[32];
        size_t a = 0;
        char *rootarg;
        assert_true(asprintf(&rootarg, "--root=%s", root) > 0);
        argv[a++] = (char *)SYSTEMCTL;
        argv[a++] = rootarg;
        argv[a++] = (char *)"--no-reload";
        argv[a++] = (char *)"enable";
        for (size_t i = 0; names[i] && a < ELEMENTSOF(argv) - 1; i++)
                argv[a++] = (char *)names[i];
        argv[a] = NULL;
        char *envp[] = { (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", (char *)"SYSTEMD_LOG_LEVEL=err", NULL };
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null >= 0) {
                        (void)dup2(null, 1);
                        (void)dup2(null, 2);
                }
                execve(SYSTEMCTL, argv, envp);
                _exit(127);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        free(rootarg);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

struct oracle_case {
        const char *units[6];
        const char *pre_link, *pre_target;      /* a link present before enabling */
        const char *pre_file;                    /* a regular file present before enabling */
        bool twice;                              /* enable twice (idempotence) */
};

static void test_oracle(void **state) {
        (void)state;
        if (access(SYSTEMCTL, X_OK) < 0) {
                print_message("SKIP oracle: %s not installed (apt-get install systemd)\n", SYSTEMCTL);
                skip();
        }
        static const struct oracle_case cases[] = {
                { { "a.service" } },
                { { "b.service" } },
                { { "a.service", "b.service" }, .twice = true },
                { { "t@.service", "t@x.service" } },
                { { "n.service" } },
                { { "multi.service" } },
                { { "over.service" } },
                { { "dbus-real.service" } },
                { { "linked.service" } },
                { { "dr.service" } },
                { { "sp@q-r.service" } },
                { { "m.service" } },
                { { "empty.service" } },
                { { "also-masked.service" } },
                { { "tpl@.service" } },
                { { "ti@.service", "ti@t.service" } },
                { { "tpl2@.service" } },
                { { "dev@y.service" } },
                { { "q.service" } },
                { { "q2.service" } },
                { { "etcalias.service" } },
                { { "leg.service" } },
                { { "mnt.mount" } },
                { { "dm@.service" } },
                { { "al.socket" } },
                { { "bad.service" } },
                { { "spec.service" } },
                { { "nosuch.service" } },
                { { "a.service", "nosuch.service" } },
                { { "real" }, .twice = true },
                { { "a.service" }, E "aa.service", "/usr/lib/systemd/system/n.service" },
                { { "real.service" }, E "multi-user.target.wants/real.service", "/some/where/real.service" },
                { { "real.service" }, E "real-alias.service", "../../../usr/lib/systemd/system/real.service" },
                { { "dr.service" }, E "base.target.wants/dr.service", "/lib/systemd/system/dr.service" },
                { { "a.service" }, E "aa.service", "/nonexistent/aa.service" },
                { { "libonly.service" } },
                { { "dr.service" }, .pre_file = E "base.target.wants/dr.service" },
                { { "real.service" }, .pre_file = E "multi-user.target.wants/real.service" },
                { { "real.service" }, .pre_file = E "real-alias.service" },
                { { "linked.service" }, .pre_file = E "multi-user.target.wants/linked.service" },
                { { "a.service", "real.service" }, E "foo.target.wants", "/nonexistent" },
                { { "gen.service" } },
                { { "dt@x.service" } },
                { { "sa" } },
                { { "ia@x.service" } },
                { { "ia@.service" } },
                { { "dbus-real.service", "real.service", "etcalias.service" } },
                { { "hop.service" } },
        };
        unsigned compared = 0;
        for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
                const struct oracle_case *k = &cases[c];
                char *a = th_tmpdir_new("units"), *b = th_tmpdir_new("units");
                fixture(a);
                fixture(b);
                if (k->pre_link) {
                        link_(a, k->pre_link, k->pre_target);
                        link_(b, k->pre_link, k->pre_target);
                }
                if (k->pre_file) {
                        put(a, k->pre_file, "x");
                        put(b, k->pre_file, "x");
                }
                int rc = run_systemctl(a, k->units);
                if (k->twice)
                        rc = run_systemctl(a, k->units);
                struct mkm_err err = {};
                struct events ev = {};
                int r = enable(b, k->units, &err, &ev);
                if (k->twice)
                        r = enable(b, k->units, &err, &ev);
                char *la = links(a), *lb = links(b);
                if (strcmp(la, lb) != 0 || (rc == 0) != (r == 0))
                        fail_msg("case %zu (%s ...): systemctl rc=%d, ours r=%d (%s)\n--- systemctl:\n%s--- ours:\n%s", c,
                                 k->units[0], rc, r, err.msg, la, lb);
                compared++;
                free(la);
                free(lb);
                th_tmpdir_free(a);
                th_tmpdir_free(b);
        }
        assert_int_equal(compared, ELEMENTSOF(cases));
}

/* Debian 12's systemd is a split-usr build: a tree whose systemd package ships its units under
 * /lib/systemd/system (dpkg's file list) gets /lib/... link targets, as its own systemctl writes
 * them on a merged /usr; without that file list the upstream /usr/lib order holds. */
static void test_split_usr_tree(void **state) {
        (void)state;
        for (int split = 0; split < 2; split++) {
                char *r = th_tmpdir_new("units");
                put(r, "usr/lib/systemd/system/ssh.service", "[Service]\nExecStart=/x\n[Install]\nWantedBy=multi-user.target\n");
                link_(r, "lib", "usr/lib");
                if (split)
                        put(r, "var/lib/dpkg/info/systemd.list", "/.\n/lib\n/lib/systemd\n/lib/systemd/system\n"
                                                                 "/lib/systemd/system/systemd-journald.service\n");
                ENABLE_OK(r, "ssh.service");
                char *got = links(r);
                assert_string_equal(got, split ? "etc/systemd/system/multi-user.target.wants/ssh.service -> /lib/systemd/system/ssh.service\n"
                                               : "etc/systemd/system/multi-user.target.wants/ssh.service -> /usr/lib/systemd/system/ssh.service\n");
                free(got);
                th_tmpdir_free(r);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_wantedby_requiredby_alias_also_cycle),
                cmocka_unit_test(test_templates),
                cmocka_unit_test(test_specifiers_and_syntax),
                cmocka_unit_test(test_symlinked_units),
                cmocka_unit_test(test_no_install_masked_missing),
                cmocka_unit_test(test_also_fanout),
                cmocka_unit_test(test_search_dirs),
                cmocka_unit_test(test_dropin_listing_fails),
                cmocka_unit_test(test_exists),
                cmocka_unit_test(test_conflicts_and_idempotence),
                cmocka_unit_test(test_escape),
                cmocka_unit_test(test_oracle),
                cmocka_unit_test(test_split_usr_tree),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
