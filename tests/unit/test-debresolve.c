/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/debian/resolve.h on small hand-written Packages paragraphs: which
 * alternative and which provider apt would pick (and why: already selected, version, priority,
 * Essential, name order), versioned Provides, unsatisfiable dependencies and the chain in the
 * message, Conflicts/Breaks (also against a virtual name nobody is called), architecture
 * qualifiers and Multi-Arch, cycles and install order, each variant's selection, mmdebstrap's
 * two steps and merged /usr. The real bookworm sets are tests/integration/
 * debian-resolve-oracle.sh's job (against mmdebstrap itself). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "debian/index.h"
#include "debian/resolve.h"
#include "helpers.h"
#include "util/cleanup.h"
#include "util/err.h"

#define SHA "9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5"

/* Paragraphs separated by blank lines, with the fields a Packages index needs added: Version 1
 * and Architecture amd64 unless given, a Filename, Size and SHA256. */
static struct deb_index *mkindex(const char *text, uint32_t number) {
        struct th_buf b = {};
        struct deb_index *x = NULL;
        struct mkm_err err = {};
        const char *p = text;
        unsigned k = 0;

        while (*p) {
                const char *end = strstr(p, "\n\n");
                size_t len = end ? (size_t)(end - p) + 1 : strlen(p);
                char *para = strndup(p, len);
                assert_non_null(para);
                th_buf_add(&b, "%s%s", para, para[len - 1] == '\n' ? "" : "\n");
                if (!strstr(para, "Version:"))
                        th_buf_add(&b, "Version: 1\n");
                if (!strstr(para, "Architecture:"))
                        th_buf_add(&b, "Architecture: amd64\n");
                th_buf_add(&b, "Filename: pool/main/p%u-%u.deb\nSize: 1\nSHA256: " SHA "\n\n", number, k++);
                free(para);
                p += len;
                while (*p == '\n')
                        p++;
        }
        int r = deb_index_parse(b.p, b.n, "test", number, &x, &err);
        if (r < 0)
                fail_msg("index: %s", err.msg);
        free(b.p);
        return x;
}

struct fx {
        struct deb_index *ix[4];
        size_t n;
        struct deb_plan *plan;
        struct mkm_err err;
        char out[8192];
};

static int teardown(void **state) {
        struct fx *f = *state;
        for (size_t i = 0; i < f->n; i++)
                deb_index_free(f->ix[i]);
        deb_plan_free(f->plan);
        free(f);
        return 0;
}

static int setup(void **state) {
        *state = calloc(1, sizeof(struct fx));
        return *state ? 0 : -1;
}

static void add_index(struct fx *f, const char *text) {
        assert_true(f->n < ELEMENTSOF(f->ix));
        f->ix[f->n] = mkindex(text, (uint32_t)f->n);
        f->n++;
}

/* Resolve; targets space-separated (or NULL). The plan's names in order go to f->out. */
static int run(struct fx *f, enum deb_variant v, const char *targets) {
        char *tv[32] = {}, *copy = targets ? strdup(targets) : NULL, *save = NULL;
        size_t n = 0;

        for (char *t = copy ? strtok_r(copy, " ", &save) : NULL; t; t = strtok_r(NULL, " ", &save)) {
                assert_true(n + 1 < ELEMENTSOF(tv));
                tv[n++] = t;
        }
        f->plan = deb_plan_free(f->plan);
        f->out[0] = 0;
        memset(&f->err, 0, sizeof f->err);
        int r = deb_resolve(NULL, f->ix, f->n, "amd64", v, targets ? tv : NULL, &f->plan, &f->err);
        if (r >= 0)
                for (size_t i = 0; i < f->plan->n; i++) {
                        size_t len = strlen(f->out);
                        snprintf(f->out + len, sizeof f->out - len, "%s%s", i ? " " : "", f->plan->items[i].pkg->name);
                }
        free(copy);
        return r;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The plan's names sorted, space-separated. */
static const char *set_of(struct fx *f) {
        static char out[8192];
        const char *names[512];
        size_t n = f->plan ? f->plan->n : 0;
        assert_true(n <= ELEMENTSOF(names));
        for (size_t i = 0; i < n; i++)
                names[i] = f->plan->items[i].pkg->name;
        qsort(names, n, sizeof *names, cmp_str);
        out[0] = 0;
        for (size_t i = 0; i < n; i++) {
                size_t len = strlen(out);
                snprintf(out + len, sizeof out - len, "%s%s", i ? " " : "", names[i]);
        }
        return out;
}

static const struct deb_plan_item *item(struct fx *f, const char *name) {
        for (size_t i = 0; f->plan && i < f->plan->n; i++)
                if (strcmp(f->plan->items[i].pkg->name, name) == 0)
                        return &f->plan->items[i];
        fail_msg("%s is not in the plan: %s", name, f->out);
        return NULL;
}

static size_t pos(struct fx *f, const char *name) {
        for (size_t i = 0; f->plan && i < f->plan->n; i++)
                if (strcmp(f->plan->items[i].pkg->name, name) == 0)
                        return i;
        fail_msg("%s is not in the plan: %s", name, f->out);
        return SIZE_MAX;
}

#define assert_set(f, want) assert_string_equal(set_of(f), want)
#define assert_ok(f, v, t)                                                      \
        do {                                                                    \
                int r_ = run((f), (v), (t));                                    \
                if (r_ < 0)                                                     \
                        fail_msg("resolve: %s (%d)", (f)->err.msg, r_);         \
        } while (0)
#define assert_fails(f, v, t, want, text)                                       \
        do {                                                                    \
                assert_int_equal(run((f), (v), (t)), (want));                   \
                assert_int_equal((f)->err.code, (want));                        \
                if (!strstr((f)->err.msg, (text)))                              \
                        fail_msg("message '%s' lacks '%s'", (f)->err.msg, (text)); \
        } while (0)

#define C DEB_VARIANT_CUSTOM

/* ---- alternatives ----------------------------------------------------------------------- */

static void test_alternative_first(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: app\nDepends: bb | cc\n\n"
                     "Package: bb\n\n"
                     "Package: cc\n");
        assert_ok(f, C, "app");
        assert_set(f, "app bb");
        assert_false(item(f, "bb")->explicit);
        assert_true(item(f, "app")->explicit);
}

static void test_alternative_already_selected(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: app\nDepends: bb | cc\n\n"
                     "Package: bb\n\n"
                     "Package: cc\n");
        /* cc is marked before any dependency is followed: it satisfies the group */
        assert_ok(f, C, "app cc");
        assert_set(f, "app cc");
        /* ...whatever the order of the targets */
        assert_ok(f, C, "cc app");
        assert_set(f, "app cc");
}

static void test_alternative_version(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: app\nDepends: bb (>= 2) | cc\n\n"
                     "Package: bb\nVersion: 1.5\n\n"
                     "Package: cc\n");
        assert_ok(f, C, "app");
        assert_set(f, "app cc");
}

static void test_alternative_uninstallable(void **state) {
        struct fx *f = *state;
        /* bb needs what does not exist: apt refuses it before marking and takes cc; dd fails
         * deeper (ee is missing), so bb2 is dropped with it and nothing of it stays */
        add_index(f, "Package: app\nDepends: bb | cc\n\n"
                     "Package: bb\nDepends: missing\n\n"
                     "Package: cc\n\n"
                     "Package: app2\nDepends: bb2 | cc\n\n"
                     "Package: bb2\nDepends: dd\n\n"
                     "Package: dd\nDepends: ee (>= 2)\n\n"
                     "Package: ee\n");
        assert_ok(f, C, "app");
        assert_set(f, "app cc");
        assert_ok(f, C, "app2");
        assert_set(f, "app2 cc");
}

static void test_alternative_leftovers_swept(void **state) {
        struct fx *f = *state;
        /* bb is marked, marks dd, then fails on ff: apt drops bb but not dd, and its final
         * sweep drops dd as nothing leads to it; unless something installed Recommends it */
        add_index(f, "Package: app\nDepends: bb | cc\n\n"
                     "Package: bb\nDepends: dd, ff\n\n"
                     "Package: cc\n\n"
                     "Package: dd\n\n"
                     "Package: ff\nDepends: gg (>= 2)\n\n"
                     "Package: gg\n\n"
                     "Package: fan\nRecommends: dd\n");
        assert_ok(f, C, "app");
        assert_set(f, "app cc");
        assert_ok(f, C, "app fan");
        assert_set(f, "app cc dd fan");
}

static void test_conflict_undoes_earlier_choice(void **state) {
        struct fx *f = *state;
        /* libreoffice-writer in bookworm: base-core takes nogui (first alternative), then
         * writer's own "core" conflicts with it: apt unmarks nogui, core satisfies base-core
         * too, and the sweep drops what only nogui needed */
        add_index(f, "Package: writer\nDepends: base-core, core\n\n"
                     "Package: base-core\nDepends: core-nogui | core\n\n"
                     "Package: core-nogui\nDepends: common, nogui-only\nConflicts: core\n\n"
                     "Package: core\nDepends: common\nConflicts: core-nogui\n\n"
                     "Package: common\n\n"
                     "Package: nogui-only\n");
        assert_ok(f, C, "writer");
        assert_set(f, "base-core common core writer");
        /* both asked for: neither gives way */
        assert_fails(f, C, "core core-nogui", -MKM_E_CONFLICT, "core conflicts with core-nogui (Conflicts: core-nogui)");
}

/* ---- virtual packages ------------------------------------------------------------------- */

static void test_virtual_providers(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: app\nDepends: mta\n\n"
                     "Package: exim\nProvides: mta\nPriority: optional\n\n"
                     "Package: postfix\nProvides: mta\nPriority: important\n\n"
                     "Package: sendmail\nProvides: mta\nPriority: extra\n");
        /* higher Priority wins */
        assert_ok(f, C, "app");
        assert_set(f, "app postfix");
        /* a provider already asked for satisfies it */
        assert_ok(f, C, "app sendmail");
        assert_set(f, "app sendmail");
}

static void test_virtual_tie_later_name(void **state) {
        struct fx *f = *state;
        /* Same priority, nothing else to tell them apart: apt takes the name its cache met
         * last (CompareProviders: A->ID > B->ID), not the alphabetically first one. */
        add_index(f, "Package: app\nDepends: mta\n\n"
                     "Package: aaa\nProvides: mta\n\n"
                     "Package: zzz\nProvides: mta\n\n"
                     "Package: mmm\nProvides: mta\n");
        assert_ok(f, C, "app");
        assert_set(f, "app mmm");
}

static void test_virtual_essential_and_real(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: app\nDepends: awk\n\n"
                     "Package: gawk\nProvides: awk\nPriority: required\n\n"
                     "Package: mawk\nProvides: awk\nEssential: yes\nPriority: optional\n\n"
                     "Package: app2\nDepends: shell\n\n"
                     "Package: shell\nPriority: extra\n\n"
                     "Package: bash\nProvides: shell\nEssential: yes\nPriority: required\n");
        /* Essential beats Priority */
        assert_ok(f, C, "app");
        assert_set(f, "app mawk");
        /* the real package beats every provider */
        assert_ok(f, C, "app2");
        assert_set(f, "app2 shell");
}

static void test_virtual_target(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: only\nProvides: one-virtual, two-virtual\n\n"
                     "Package: other\nProvides: two-virtual\n");
        assert_ok(f, C, "one-virtual");
        assert_set(f, "only");
        assert_true(item(f, "only")->explicit);
        assert_fails(f, C, "two-virtual", -MKM_E_RECIPE, "'two-virtual' is a virtual package provided by only, other");
        assert_fails(f, C, "nothing", -MKM_E_RECIPE, "'nothing' is not a package in the indexes");
}

static void test_versioned_provides(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: app\nDepends: api (>= 2)\n\n"
                     "Package: old\nProvides: api (= 1)\nPriority: required\n\n"
                     "Package: plain\nProvides: api\nPriority: required\n\n"
                     "Package: new\nProvides: api (= 3)\nPriority: optional\n\n"
                     "Package: app2\nDepends: api\n\n"
                     "Package: app3\nDepends: api (>= 4)\n");
        /* an unversioned Provides never satisfies a versioned dependency */
        assert_ok(f, C, "app");
        assert_set(f, "app new");
        /* an unversioned dependency takes any provider: the required ones rank first, and of
         * those, the later name */
        assert_ok(f, C, "app2");
        assert_set(f, "app2 plain");
        assert_fails(f, C, "app3", -MKM_E_DEP_UNSAT,
                     "app3 -> api (>= 4): a virtual package; no provider has a matching version (");
        assert_true(strstr(f->err.msg, "new provides 3"));
        assert_true(strstr(f->err.msg, "plain provides it unversioned"));
}

/* ---- unsatisfiable ------------------------------------------------------------------------ */

static void test_unsat_chain(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: openssh-server\nDepends: libssl3 (>= 3.0.9)\n\n"
                     "Package: libssl3\nVersion: 3.0.8-1\n\n"
                     "Package: top\nDepends: mid\n\n"
                     "Package: mid\nPre-Depends: low | lower\n\n"
                     "Package: low\nDepends: openssh-server\n\n"
                     "Package: lower\nDepends: gone\n\n"
                     "Package: app\nDepends: nosuch:any, bb\n\n"
                     "Package: bb\n");
        assert_fails(f, C, "openssh-server", -MKM_E_DEP_UNSAT,
                     "openssh-server -> libssl3 (>= 3.0.9): only 3.0.8-1 in the indexes");
        assert_string_equal(f->err.msg, "openssh-server -> libssl3 (>= 3.0.9): only 3.0.8-1 in the indexes");
        /* through an alternative: both fail; the chain names the way down */
        assert_fails(f, C, "top", -MKM_E_DEP_UNSAT, "top -> mid -> ");
        assert_true(strstr(f->err.msg, "gone") || strstr(f->err.msg, "libssl3 (>= 3.0.9): only 3.0.8-1"));
        assert_fails(f, C, "app", -MKM_E_DEP_UNSAT, "app -> nosuch:any: no package 'nosuch' in the indexes");
        assert_null(f->plan);
}

static void test_unsat_deep_chain_named(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: top\nDepends: mid\n\n"
                     "Package: mid\nDepends: low\n\n"
                     "Package: low\nDepends: libx (>= 2)\n\n"
                     "Package: libx\n");
        assert_fails(f, C, "top", -MKM_E_DEP_UNSAT, "top -> mid -> low -> libx (>= 2): only 1 in the indexes");
}

/* ---- conflicts ------------------------------------------------------------------------------ */

static void test_conflicts_targets(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: aa\nConflicts: bb\n\n"
                     "Package: bb\n\n"
                     "Package: cc\nBreaks: dd (<< 2)\n\n"
                     "Package: dd\nVersion: 1\n\n"
                     "Package: ee\nBreaks: dd (<< 1)\n");
        assert_fails(f, C, "aa bb", -MKM_E_CONFLICT, "aa conflicts with bb (Conflicts: bb)");
        assert_fails(f, C, "cc dd", -MKM_E_CONFLICT, "cc breaks dd (Breaks: dd (<< 2))");
        assert_ok(f, C, "ee dd");
        assert_set(f, "dd ee");
}

static void test_conflicts_virtual(void **state) {
        struct fx *f = *state;
        /* nothing is called "mail-transport-agent": the conflict is with whoever provides it */
        add_index(f, "Package: nomail\nConflicts: mail-transport-agent\n\n"
                     "Package: exim\nProvides: mail-transport-agent\nConflicts: mail-transport-agent\n\n"
                     "Package: app\nDepends: exim\n\n"
                     "Package: app2\nDepends: nomail\n\n"
                     "Package: app3\nDepends: nomail | other\n\n"
                     "Package: other\n");
        assert_fails(f, C, "nomail exim", -MKM_E_CONFLICT,
                     "nomail conflicts with exim (Conflicts: mail-transport-agent)");
        /* ...also when the provider comes in as a dependency */
        assert_fails(f, C, "nomail app", -MKM_E_CONFLICT,
                     "app -> exim: nomail conflicts with exim (Conflicts: mail-transport-agent)");
        /* the other way round: exim is there first, nomail is what a dependency wants */
        assert_fails(f, C, "exim app2", -MKM_E_CONFLICT,
                     "app2 -> nomail: nomail conflicts with exim (Conflicts: mail-transport-agent)");
        assert_ok(f, C, "exim app3");
        assert_set(f, "app3 exim other");
        /* a package that provides and conflicts with the same name is fine alone */
        assert_ok(f, C, "exim");
        assert_set(f, "exim");
}

static void test_conflicts_steer_alternatives(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: app\nDepends: bb | cc\n\n"
                     "Package: bb\n\n"
                     "Package: cc\n\n"
                     "Package: nobb\nConflicts: bb\n\n"
                     "Package: hatesall\nBreaks: bb, cc\n");
        /* our own Conflicts, and a selected package's Conflicts against us, rule bb out */
        assert_ok(f, C, "nobb app");
        assert_set(f, "app cc nobb");
        assert_fails(f, C, "hatesall app", -MKM_E_CONFLICT, "app -> bb | cc [cc]: hatesall breaks cc (Breaks: cc)");
}

/* ---- architectures -------------------------------------------------------------------------- */

static void test_arch_qualifiers(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: perl\nMulti-Arch: allowed\n\n"
                     "Package: python3\nMulti-Arch: foreign\n\n"
                     "Package: libfoo\nMulti-Arch: same\n\n"
                     "Package: data\nArchitecture: all\n\n"
                     "Package: i386only\nArchitecture: i386\n\n"
                     "Package: a1\nDepends: perl:any\n\n"
                     "Package: a2\nDepends: python3:any\n\n"
                     "Package: a3\nDepends: python3, libfoo:amd64, data\n\n"
                     "Package: a4\nDepends: libfoo:i386\n\n"
                     "Package: a5\nDepends: i386only\n\n"
                     "Package: a6\nDepends: api:any\n\n"
                     "Package: prov-ma\nProvides: api\nMulti-Arch: allowed\n\n"
                     "Package: a7\nDepends: api2:any\n\n"
                     "Package: prov-no\nProvides: api2\n");
        assert_ok(f, C, "a1");
        assert_set(f, "a1 perl");
        /* "foo:any" needs Multi-Arch: allowed; foreign is for plain dependencies */
        assert_fails(f, C, "a2", -MKM_E_DEP_UNSAT, "a2 -> python3:any: python3 1 is not Multi-Arch: allowed");
        assert_ok(f, C, "a3");
        assert_set(f, "a3 data libfoo python3");
        assert_fails(f, C, "a4", -MKM_E_DEP_UNSAT, "a4 -> libfoo:i386: architecture i386 is not amd64");
        /* a package of another architecture in the index is not ours */
        assert_fails(f, C, "a5", -MKM_E_DEP_UNSAT, "a5 -> i386only: no package 'i386only' in the indexes");
        assert_fails(f, C, "i386only", -MKM_E_RECIPE, "'i386only' is not a package in the indexes");
        assert_ok(f, C, "a6");
        assert_set(f, "a6 prov-ma");
        assert_fails(f, C, "a7", -MKM_E_DEP_UNSAT, "a7 -> api2:any");
}

static void test_targets_syntax(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: tool\nVersion: 1.0\nDepends: lib (>= 1.0)\n\n"
                     "Package: lib\nVersion: 1.0\n");
        add_index(f, "Package: tool\nVersion: 2.0\nDepends: lib (>= 2.0)\n\n"
                     "Package: lib\nVersion: 2.0\n\n"
                     "Package: lib\nVersion: 1.0\n");
        /* the highest version; of equal versions, the earlier index's */
        assert_ok(f, C, "tool");
        assert_string_equal(item(f, "tool")->pkg->version, "2.0");
        assert_int_equal(item(f, "tool")->pkg->index, 1);
        assert_ok(f, C, "lib=1.0");
        assert_int_equal(item(f, "lib")->pkg->index, 0);
        /* a pinned version changes what satisfies the others */
        assert_fails(f, C, "tool lib=1.0", -MKM_E_DEP_UNSAT, "tool -> lib (>= 2.0): only 1.0 in the indexes");
        assert_ok(f, C, "tool=1.0 lib=1.0");
        assert_set(f, "lib tool");
        assert_ok(f, C, "tool:amd64");
        assert_set(f, "lib tool");
        assert_fails(f, C, "tool=3", -MKM_E_RECIPE, "no version 3 of tool in the indexes; candidate: 2.0");
        assert_fails(f, C, "tool:i386", -MKM_E_RECIPE, "only amd64 packages can be installed");
        assert_fails(f, C, "Tool", -MKM_E_RECIPE, "'Tool' is not a valid package name");
        assert_fails(f, C, "tool=", -MKM_E_RECIPE, "bad version");
        assert_fails(f, C, "../x", -MKM_E_RECIPE, "not a valid package name");
}

/* ---- order ---------------------------------------------------------------------------------- */

static void test_order(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: aa\nDepends: zz\n\n"
                     "Package: zz\nPre-Depends: mm\n\n"
                     "Package: mm\n\n"
                     "Package: c1\nDepends: c2\n\n"
                     "Package: c2\nDepends: c1\n\n"
                     "Package: p1\nDepends: p2\n\n"
                     "Package: p2\nPre-Depends: p1x\n\n"
                     "Package: p1x\nDepends: p2\n");
        assert_ok(f, C, "aa");
        assert_string_equal(f->out, "mm zz aa");
        /* a cycle: the smaller name first when nothing else decides */
        assert_ok(f, C, "c2");
        assert_string_equal(f->out, "c1 c2");
        /* in a cycle, Pre-Depends still hold: p2 after p1x although "p1x" < "p2" would not
         * matter, and p1x before p2 although p1x depends on p2 */
        assert_ok(f, C, "p1");
        assert_string_equal(f->out, "p1x p2 p1");
        /* the same twice */
        char first[sizeof f->out];
        strcpy(first, f->out);
        assert_ok(f, C, "p1");
        assert_string_equal(f->out, first);
}

static void test_order_predepends_break_cycle(void **state) {
        struct fx *f = *state;
        /* aa Pre-Depends bb, bb Depends aa: bb must come first even though "aa" < "bb" */
        add_index(f, "Package: aa\nPre-Depends: bb\n\n"
                     "Package: bb\nDepends: aa\n");
        assert_ok(f, C, "aa");
        assert_string_equal(f->out, "bb aa");
        assert_true(pos(f, "bb") < pos(f, "aa"));
}

/* ---- variants ------------------------------------------------------------------------------- */

static const char variant_index[] =
        "Package: e1\nEssential: yes\nPriority: required\nDepends: d1\n\n"
        "Package: d1\nPriority: optional\n\n"
        "Package: e2\nEssential: yes\nPriority: optional\n\n"
        "Package: r1\nPriority: required\nDepends: d2\n\n"
        "Package: d2\nPriority: optional\n\n"
        "Package: apt\nPriority: required\n\n"
        "Package: i1\nPriority: important\n\n"
        "Package: s1\nPriority: standard\n\n"
        "Package: o1\nPriority: optional\n\n"
        "Package: x1\nPriority: extra\n\n"
        "Package: build-essential\nPriority: optional\nDepends: gcc\n\n"
        "Package: gcc\nPriority: optional\n\n"
        "Package: e3\nEssential: yes\nArchitecture: i386\n";

static void test_variants(void **state) {
        struct fx *f = *state;
        add_index(f, variant_index);
        assert_ok(f, DEB_VARIANT_EXTRACT, "o1");
        assert_set(f, "o1");
        assert_ok(f, DEB_VARIANT_CUSTOM, "r1");
        assert_set(f, "d2 r1");
        assert_true(item(f, "d2")->essential_set);      /* custom installs all in one step */
        assert_ok(f, DEB_VARIANT_ESSENTIAL, NULL);
        assert_set(f, "d1 e1 e2");
        assert_ok(f, DEB_VARIANT_APT, NULL);
        assert_set(f, "apt d1 e1 e2");
        assert_ok(f, DEB_VARIANT_MINBASE, NULL);
        assert_set(f, "apt d1 d2 e1 e2 r1");
        assert_ok(f, DEB_VARIANT_BUILDD, NULL);
        assert_set(f, "apt build-essential d1 d2 e1 e2 gcc r1");
        assert_ok(f, DEB_VARIANT_IMPORTANT, NULL);
        assert_set(f, "apt d1 d2 e1 e2 i1 r1");
        assert_ok(f, DEB_VARIANT_STANDARD, "x1");
        assert_set(f, "apt d1 d2 e1 e2 i1 r1 s1 x1");

        /* flags, and the essential set comes first */
        assert_ok(f, DEB_VARIANT_MINBASE, "o1");
        assert_true(item(f, "e1")->explicit && item(f, "e1")->essential_set);
        assert_true(!item(f, "d1")->explicit && item(f, "d1")->essential_set);
        assert_true(item(f, "r1")->explicit && !item(f, "r1")->essential_set);
        assert_true(!item(f, "d2")->explicit && !item(f, "d2")->essential_set);
        assert_true(item(f, "o1")->explicit && !item(f, "o1")->essential_set);
        for (size_t i = 0; i + 1 < f->plan->n; i++)
                assert_true(f->plan->items[i].essential_set || !f->plan->items[i + 1].essential_set);
        assert_string_equal(f->out, "d1 e1 e2 apt d2 o1 r1");
}

static void test_variant_names(void **state) {
        (void)state;
        static const struct {
                const char *s;
                enum deb_variant v;
        } t[] = {
                { "extract", DEB_VARIANT_EXTRACT },     { "custom", DEB_VARIANT_CUSTOM },
                { "essential", DEB_VARIANT_ESSENTIAL }, { "apt", DEB_VARIANT_APT },
                { "minbase", DEB_VARIANT_MINBASE },     { "required", DEB_VARIANT_MINBASE },
                { "buildd", DEB_VARIANT_BUILDD },       { "important", DEB_VARIANT_IMPORTANT },
                { "debootstrap", DEB_VARIANT_IMPORTANT }, { "-", DEB_VARIANT_IMPORTANT },
                { "standard", DEB_VARIANT_STANDARD },   { "Minbase", _DEB_VARIANT_INVALID },
                { "", _DEB_VARIANT_INVALID },           { "minbase ", _DEB_VARIANT_INVALID },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                assert_int_equal(deb_variant_from_string(t[i].s), t[i].v);
        assert_int_equal(deb_variant_from_string(NULL), _DEB_VARIANT_INVALID);
        for (int v = 0; v < _DEB_VARIANT_MAX; v++)
                assert_int_equal(deb_variant_from_string(deb_variant_to_string(v)), v);
        assert_null(deb_variant_to_string(_DEB_VARIANT_MAX));
        assert_null(deb_variant_to_string(_DEB_VARIANT_INVALID));
}

static void test_two_steps(void **state) {
        struct fx *f = *state;
        /* In one `apt-get install` of everything, r1 (met first) would take alt2 and e1's group
         * would be satisfied by it. mmdebstrap installs the essential set first: e1 takes alt1,
         * then r1 still needs alt2. */
        add_index(f, "Package: r1\nPriority: required\nDepends: alt2\n\n"
                     "Package: e1\nEssential: yes\nDepends: alt1 | alt2\n\n"
                     "Package: alt1\n\n"
                     "Package: alt2\n");
        assert_ok(f, DEB_VARIANT_MINBASE, NULL);
        assert_set(f, "alt1 alt2 e1 r1");
        assert_true(item(f, "alt1")->essential_set);
        assert_false(item(f, "alt2")->essential_set);
        /* custom: one step */
        assert_ok(f, C, "r1 e1");
        assert_set(f, "alt2 e1 r1");
}

static void test_merged_usr(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: init-system-helpers\nEssential: yes\nDepends: usrmerge | usr-is-merged\n\n"
                     "Package: usrmerge\nDepends: perl:any\nProvides: usr-is-merged\n\n"
                     "Package: perl\nMulti-Arch: allowed\n\n"
                     "Package: usr-is-merged\nArchitecture: all\nMulti-Arch: foreign\n");
        assert_ok(f, DEB_VARIANT_ESSENTIAL, NULL);
        assert_set(f, "init-system-helpers usr-is-merged");
        assert_true(item(f, "usr-is-merged")->essential_set);
        assert_false(item(f, "usr-is-merged")->explicit);
        assert_ok(f, DEB_VARIANT_EXTRACT, "init-system-helpers");
        assert_set(f, "init-system-helpers");
}

static void test_without_usr_is_merged(void **state) {
        struct fx *f = *state;
        add_index(f, "Package: init-system-helpers\nEssential: yes\nDepends: usrmerge | usr-is-merged\n\n"
                     "Package: usrmerge\nDepends: perl:any\nProvides: usr-is-merged\n\n"
                     "Package: perl\nMulti-Arch: allowed\n");
        assert_ok(f, DEB_VARIANT_ESSENTIAL, NULL);
        assert_set(f, "init-system-helpers perl usrmerge");
}

/* ---- limits ----------------------------------------------------------------------------- */

static void test_deep_chain(void **state) {
        struct fx *f = *state;
        struct th_buf b = {};
        /* 1500 packages each depending on the next: past our depth cap, an error, no crash */
        for (int i = 0; i < 1500; i++)
                th_buf_add(&b, "Package: n%d\nDepends: n%d\n\n", i, i + 1);
        th_buf_add(&b, "Package: n1500\n");
        add_index(f, b.p);
        free(b.p);
        assert_fails(f, C, "n0", -MKM_E_DEP_UNSAT, "dependency chain deeper than");
        assert_ok(f, C, "n900");
        assert_int_equal(f->plan->n, 601);
        assert_string_equal(f->plan->items[0].pkg->name, "n1500");
}

static void test_empty(void **state) {
        struct fx *f = *state;
        assert_ok(f, C, NULL);
        assert_int_equal(f->plan->n, 0);
        assert_fails(f, DEB_VARIANT_BUILDD, NULL, -MKM_E_DEP_UNSAT, "no build-essential");
        assert_int_equal(deb_resolve(NULL, f->ix, 0, "", C, NULL, &f->plan, &f->err), -EINVAL);
        assert_int_equal(deb_resolve(NULL, f->ix, 0, "amd64", _DEB_VARIANT_MAX, NULL, &f->plan, &f->err), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
                T(test_alternative_first),
                T(test_alternative_already_selected),
                T(test_alternative_version),
                T(test_alternative_uninstallable),
                T(test_alternative_leftovers_swept),
                T(test_conflict_undoes_earlier_choice),
                T(test_virtual_providers),
                T(test_virtual_tie_later_name),
                T(test_virtual_essential_and_real),
                T(test_virtual_target),
                T(test_versioned_provides),
                T(test_unsat_chain),
                T(test_unsat_deep_chain_named),
                T(test_conflicts_targets),
                T(test_conflicts_virtual),
                T(test_conflicts_steer_alternatives),
                T(test_arch_qualifiers),
                T(test_targets_syntax),
                T(test_order),
                T(test_order_predepends_break_cycle),
                T(test_variants),
                T(test_variant_names),
                T(test_two_steps),
                T(test_merged_usr),
                T(test_without_usr_is_merged),
                T(test_deep_chain),
                T(test_empty),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
