/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/arch/resolve: pacman's choices on small in-memory repositories. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctx.h"
#include "arch/repo-alpm.h"
#include "arch/resolve.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/strv.h"

/* "name version [d:dep,dep] [p:prov,prov] [c:conf] [g:group]" */
static void make_pkg(struct repo_alpm_pkg *p, const char *repo, const char *spec) {
        _cleanup_strv_free_ char **w = NULL;
        assert_int_equal(strv_split(spec, " ", &w), 0);
        memset(p, 0, sizeof *p);
        p->name = strdup(w[0]);
        p->version = strdup(w[1]);
        p->repo = repo;
        char ***lists[] = { &p->depends, &p->provides, &p->conflicts, &p->groups, &p->replaces };
        for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                *lists[i] = calloc(1, sizeof(char *));
        for (size_t i = 2; w[i]; i++) {
                char ***l = w[i][0] == 'd' ? &p->depends
                          : w[i][0] == 'p' ? &p->provides
                          : w[i][0] == 'c' ? &p->conflicts
                          : w[i][0] == 'g' ? &p->groups
                                           : &p->replaces;
                _cleanup_strv_free_ char **items = NULL;
                assert_int_equal(strv_split(w[i] + 2, ",", &items), 0);
                assert_int_equal(strv_extend(l, items), 0);
        }
}

static int cmp_pkg(const void *a, const void *b) {
        return strcmp(((const struct repo_alpm_pkg *)a)->name, ((const struct repo_alpm_pkg *)b)->name);
}

static struct repo_alpm_db *make_db(const char *name, const char *const *specs, size_t n) {
        struct repo_alpm_db *db = calloc(1, sizeof *db);
        db->name = strdup(name);
        db->pkgs = calloc(n, sizeof *db->pkgs);
        db->n = n;
        for (size_t i = 0; i < n; i++)
                make_pkg(&db->pkgs[i], db->name, specs[i]);
        qsort(db->pkgs, n, sizeof *db->pkgs, cmp_pkg);
        return db;
}

static const char *const core_specs[] = {
        "filesystem 2024.01-1 g:base-test",
        "libc-fake 2.39-1 p:libc.so=6-64 d:filesystem",
        "busybox-sh 1.36-1 p:sh d:filesystem,libc.so g:base-test",
        "libfoo 1.4-1 p:libfoo.so=1-64 d:libc.so",
        "app 1.0-1 d:libfoo.so=1-64,libc.so,sh g:base-test",
        "cronie 1.7-1 p:cron d:sh",
        "fcron 3.2-1 p:cron d:sh",
        "cron-user 1.0-1 d:cron",
        "openssl 3.1.4-1",
        "needs-new-openssl 1.0-1 d:openssl>=3",
        "unsat 1.0-1 d:libfoo>=3",
        "middle 1.0-1 d:unsat",
        "depcycle-a 1.0-1 d:depcycle-b",
        "depcycle-b 1.0-1 d:depcycle-a",
        "old-tool 1.0-1",
        "new-tool 2.0-1 p:old-tool c:old-tool r:old-tool",
        "fighter-a 1.0-1 c:fighter-b",
        "fighter-b 1.0-1",
        "epochpkg 1:0.9-1",
        "vi-clone 1.0-1 p:editor",
        "editor-hater 1.0-1 c:editor",
        "old-editor-hater 1.0-1 c:editor<2",
};
static const char *const extra_specs[] = {
        "libfoo 2.0-1 p:libfoo.so=2-64 d:libc.so",
        "extra-only 1.0-1 d:libfoo>=2",
};

struct fx {
        struct repo_alpm_db *dbs[2];
        struct mkm_ctx ctx;
};

static int setup(void **state) {
        struct fx *f = calloc(1, sizeof *f);
        f->dbs[0] = make_db("core", core_specs, ELEMENTSOF(core_specs));
        f->dbs[1] = make_db("extra", extra_specs, ELEMENTSOF(extra_specs));
        *state = f;
        return 0;
}

static void free_db(struct repo_alpm_db *db) {
        for (size_t i = 0; i < db->n; i++) {
                struct repo_alpm_pkg *p = &db->pkgs[i];
                free(p->name);
                free(p->version);
                strv_free(p->depends);
                strv_free(p->provides);
                strv_free(p->conflicts);
                strv_free(p->groups);
                strv_free(p->replaces);
        }
        free(db->pkgs);
        free(db->name);
        free(db);
}

static int teardown(void **state) {
        struct fx *f = *state;
        free_db(f->dbs[0]);
        free_db(f->dbs[1]);
        free(f);
        return 0;
}

/* Resolve "targets" and compare the install order as "name@repo*" (* = explicit). */
static int resolve_str(struct fx *f, const char *targets, const char *providers, char *out, size_t outlen,
                       struct mkm_err *err) {
        _cleanup_strv_free_ char **t = NULL, **p = NULL;
        assert_int_equal(strv_split(targets, " ", &t), 0);
        if (providers)
                assert_int_equal(strv_split(providers, " ", &p), 0);
        _cleanup_(resolve_plan_freep) struct resolve_plan *plan = NULL;
        int r = resolve_arch(&f->ctx, f->dbs, 2, t, p, &plan, err);
        if (r < 0)
                return r;
        size_t o = 0;
        out[0] = 0;
        for (size_t i = 0; i < plan->n; i++)
                o += (size_t)snprintf(out + o, outlen - o, "%s%s@%s%s", i ? " " : "", plan->items[i].pkg->name,
                                      plan->items[i].pkg->repo, plan->items[i].explicit ? "*" : "");
        return 0;
}

static void test_order_and_sonames(void **state) {
        struct fx *f = *state;
        char out[1024];
        struct mkm_err err = {};
        assert_int_equal(resolve_str(f, "app", NULL, out, sizeof out, &err), 0);
        assert_string_equal(out, "filesystem@core libc-fake@core libfoo@core busybox-sh@core app@core*");
}

static void test_group_expands_in_name_order(void **state) {
        struct fx *f = *state;
        char out[1024];
        struct mkm_err err = {};
        assert_int_equal(resolve_str(f, "base-test", NULL, out, sizeof out, &err), 0);
        /* Members in name order (app, busybox-sh, filesystem) become explicit targets. */
        assert_string_equal(out, "filesystem@core* libc-fake@core libfoo@core busybox-sh@core* app@core*");
}

static void test_first_repo_wins_and_versioned(void **state) {
        struct fx *f = *state;
        char out[1024];
        struct mkm_err err = {};
        assert_int_equal(resolve_str(f, "libfoo", NULL, out, sizeof out, &err), 0);
        assert_non_null(strstr(out, "libfoo@core*"));
        /* A constraint the first repo cannot meet goes to the next repo that can. */
        assert_int_equal(resolve_str(f, "libfoo>=2", NULL, out, sizeof out, &err), 0);
        assert_non_null(strstr(out, "libfoo@extra*"));
        assert_int_equal(resolve_str(f, "extra-only", NULL, out, sizeof out, &err), 0);
        assert_non_null(strstr(out, "libfoo@extra "));
        assert_int_equal(resolve_str(f, "needs-new-openssl", NULL, out, sizeof out, &err), 0);
        assert_string_equal(out, "openssl@core needs-new-openssl@core*");
        assert_int_equal(resolve_str(f, "epochpkg>=1:0.5", NULL, out, sizeof out, &err), 0);
        assert_string_equal(out, "epochpkg@core*");
}

static void test_providers(void **state) {
        struct fx *f = *state;
        char out[1024];
        struct mkm_err err = {};
        /* pacman --noconfirm: the first provider in name order. */
        assert_int_equal(resolve_str(f, "cron-user", NULL, out, sizeof out, &err), 0);
        assert_non_null(strstr(out, "cronie@core "));
        assert_null(strstr(out, "fcron"));
        /* Provider= overrides. */
        assert_int_equal(resolve_str(f, "cron-user", "cron:fcron", out, sizeof out, &err), 0);
        assert_non_null(strstr(out, "fcron@core "));
        assert_null(strstr(out, "cronie"));
        /* A provider that is itself a target satisfies the dependency. */
        assert_int_equal(resolve_str(f, "cron-user fcron", NULL, out, sizeof out, &err), 0);
        assert_non_null(strstr(out, "fcron@core*"));
        assert_null(strstr(out, "cronie"));
        /* A target naming only a virtual package gets its first provider. */
        assert_int_equal(resolve_str(f, "cron", NULL, out, sizeof out, &err), 0);
        assert_non_null(strstr(out, "cronie@core*"));
}

static void test_cycle(void **state) {
        struct fx *f = *state;
        char out[1024];
        struct mkm_err err = {};
        assert_int_equal(resolve_str(f, "depcycle-a", NULL, out, sizeof out, &err), 0);
        /* pacman: the target is installed after the dependency it pulled in. */
        assert_string_equal(out, "depcycle-b@core depcycle-a@core*");
}

static void test_conflicts(void **state) {
        struct fx *f = *state;
        char out[1024];
        struct mkm_err err = {};
        assert_int_equal(resolve_str(f, "old-tool new-tool", NULL, out, sizeof out, &err), 0);
        assert_string_equal(out, "new-tool@core*");
        assert_int_equal(resolve_str(f, "fighter-a fighter-b", NULL, out, sizeof out, &err), -MKM_E_CONFLICT);
        assert_string_equal(err.msg, "'fighter-a' and 'fighter-b' are in conflict ('fighter-b'); remove one from Packages=");
}

/* A conflict names a virtual package: it matches a target that only provides that name, as
 * libalpm's _alpm_depcmp does (a resolver matching conflicts by name alone lets both in). */
static void test_conflict_with_a_provision(void **state) {
        struct fx *f = *state;
        char out[1024];
        struct mkm_err err = {};
        assert_int_equal(resolve_str(f, "editor-hater vi-clone", NULL, out, sizeof out, &err), -MKM_E_CONFLICT);
        assert_string_equal(err.msg, "'editor-hater' and 'vi-clone' are in conflict ('editor'); remove one from Packages=");
        assert_int_equal(resolve_str(f, "vi-clone editor-hater", NULL, out, sizeof out, &err), -MKM_E_CONFLICT);
        assert_string_equal(err.msg, "'vi-clone' and 'editor-hater' are in conflict ('editor'); remove one from Packages=");
        /* The virtual name as a target resolves to its provider, which is refused the same way. */
        assert_int_equal(resolve_str(f, "editor editor-hater", NULL, out, sizeof out, &err), -MKM_E_CONFLICT);
        /* Alone, each is fine. */
        assert_int_equal(resolve_str(f, "editor-hater", NULL, out, sizeof out, &err), 0);
        assert_string_equal(out, "editor-hater@core*");
        /* A versioned conflict does not match an unversioned provision (libalpm: such a provision
         * satisfies only an unversioned dependency). */
        assert_int_equal(resolve_str(f, "old-editor-hater vi-clone", NULL, out, sizeof out, &err), 0);
        assert_string_equal(out, "old-editor-hater@core* vi-clone@core*");
}

static void test_errors(void **state) {
        struct fx *f = *state;
        char out[1024];
        struct mkm_err err = {};
        assert_int_equal(resolve_str(f, "middle", NULL, out, sizeof out, &err), -MKM_E_DEP_UNSAT);
        assert_string_equal(err.msg, "middle -> unsat -> libfoo>=3: only 1.4-1 (core), 2.0-1 (extra) available");
        assert_int_equal(resolve_str(f, "nosuchpkg", NULL, out, sizeof out, &err), -MKM_E_DEP_UNSAT);
        assert_string_equal(err.msg, "target not found: nosuchpkg");
        assert_int_equal(resolve_str(f, "openssl>=4", NULL, out, sizeof out, &err), -MKM_E_DEP_UNSAT);
        assert_string_equal(err.msg, "openssl>=4: only 3.1.4-1 (core) available");
        assert_int_equal(resolve_str(f, "bad!name", NULL, out, sizeof out, &err), -MKM_E_RECIPE);
        assert_string_equal(err.msg, "[Bootstrap] Packages=: 'bad!name' is not a package name, group or 'name>=version'");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_order_and_sonames, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_expands_in_name_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_first_repo_wins_and_versioned, setup, teardown),
                cmocka_unit_test_setup_teardown(test_providers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cycle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_conflicts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_conflict_with_a_provision, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
