/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/build: the SOURCE_DATE_EPOCH default, and the [Bootstrap] inputs digest a lock carries. Its text must stay
 * what it was when the distribution-specific part moved into the backends (backend_ops.inputs):
 * a changed digest makes every committed lock "changed" (and --locked builds fail). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "build.h"
#include "ctx.h"
#include "lock.h"
#include "recipe.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/hash.h"

static struct recipe *load(const char *text) {
        struct mkm_err err = {};
        struct recipe *r = NULL;
        int k = recipe_load_buffer(text, strlen(text), "/srv/recipes/t.recipe", &r, &err);
        if (k < 0)
                fail_msg("unexpected failure %d: %s", k, err.msg);
        return r;
}

static void digest_of_text(const char *text, char *ret, size_t size) {
        char hex[HASH_SHA256_HEX];
        assert_int_equal(hash_buf_hex(HASH_SHA256, text, strlen(text), hex), 0);
        (void)snprintf(ret, size, "sha256:%s", hex);
}

static void test_arch_inputs_text(void **state) {
        (void)state;
        _cleanup_(recipe_freep) struct recipe *r = load("[Machine]\nName=m\n[Bootstrap]\nDistribution=arch\n"
                                                        "Architecture=x86_64\nSnapshot=2024-06-01\n"
                                                        "Repositories=core extra\nPackages=base openssh\n"
                                                        "Provider=sh:bash\n");
        _cleanup_free_ char *got = NULL;
        assert_int_equal(build_inputs_digest(r, &got), 0);
        /* The text build_inputs_digest hashed before the backends existed. */
        char want[80];
        digest_of_text("distribution arch\n"
                       "architecture x86_64\n"
                       "snapshot 2024-06-01\n"
                       "repositories core extra\n"
                       "packages base openssh\n"
                       "providers sh:bash\n",
                       want, sizeof want);
        assert_string_equal(got, want);

        /* No snapshot, no providers, the default repositories ("core extra"). */
        _cleanup_(recipe_freep) struct recipe *d = load("[Machine]\nName=m\n[Bootstrap]\nDistribution=arch\n"
                                                        "Architecture=x86_64\nPackages=base\n");
        _cleanup_free_ char *got2 = NULL;
        assert_int_equal(build_inputs_digest(d, &got2), 0);
        digest_of_text("distribution arch\narchitecture x86_64\nsnapshot \nrepositories core extra\npackages base\nproviders\n",
                       want, sizeof want);
        assert_string_equal(got2, want);
}

/* Every input counts: the repositories (the backend's part) as much as the packages. */
static void test_inputs_sensitivity(void **state) {
        (void)state;
        static const char *const variants[] = {
                "Repositories=core extra\nPackages=base\n",
                "Repositories=core\nPackages=base\n",
                "Repositories=extra core\nPackages=base\n",
                "Repositories=core extra\nPackages=base vim\n",
                "Repositories=core extra\nPackages=base\nProvider=sh:bash\n",
        };
        char *digests[ELEMENTSOF(variants)] = {};
        for (size_t i = 0; i < ELEMENTSOF(variants); i++) {
                char text[512];
                (void)snprintf(text, sizeof text, "[Machine]\nName=m\n[Bootstrap]\nDistribution=arch\n%s", variants[i]);
                _cleanup_(recipe_freep) struct recipe *r = load(text);
                assert_int_equal(build_inputs_digest(r, &digests[i]), 0);
                for (size_t j = 0; j < i; j++)
                        assert_string_not_equal(digests[i], digests[j]);
        }
        for (size_t i = 0; i < ELEMENTSOF(variants); i++)
                free(digests[i]);
}

static void test_default_epoch(void **state) {
        (void)state;
        struct lock_pkg pkgs[] = { { .builddate = 1700000000 }, { .builddate = 1710000000 }, { .builddate = 0 } };
        struct lock l = { .pkgs = pkgs, .n = ELEMENTSOF(pkgs) };
        struct mkm_ctx ctx = { .source_date_epoch = -1 };
        struct recipe r = { .snapshot_epoch = -1 };
        struct build b = { .ctx = &ctx, .recipe = &r, .lock_out = &l, .source_date_epoch = -1 };
        /* the newest package */
        assert_int_equal(build_default_epoch(&b), 1710000000);
        /* what the backend's plan proposed (a Release's Date) beats the packages */
        b.source_date_epoch = 1720000000;
        assert_int_equal(build_default_epoch(&b), 1720000000);
        b.source_date_epoch = 0;
        assert_int_equal(build_default_epoch(&b), 0);
        /* the snapshot beats both */
        r.snapshot_epoch = 1717200000;
        assert_int_equal(build_default_epoch(&b), 1717200000);
        /* --source-date-epoch beats everything */
        ctx.source_date_epoch = 42;
        assert_int_equal(build_default_epoch(&b), 42);
        /* nothing known: 0 */
        struct mkm_ctx ctx0 = { .source_date_epoch = -1 };
        struct recipe r0 = { .snapshot_epoch = -1 };
        struct lock empty = {};
        struct build none = { .ctx = &ctx0, .recipe = &r0, .lock_out = &empty, .source_date_epoch = -1 };
        assert_int_equal(build_default_epoch(&none), 0);
}

static struct lock *one(const char *dist, const char *version) {
        struct lock *l = calloc(1, sizeof *l);
        assert_non_null(l);
        l->distribution = strdup(dist);
        struct lock_pkg p = { .name = (char *)"p", .version = (char *)version, .repo = (char *)"r",
                              .filename = (char *)"f" };
        assert_int_equal(lock_add(l, &p), 0);
        return l;
}

static enum lock_change change(const char *da, const char *va, const char *db, const char *vb) {
        _cleanup_(lock_freep) struct lock *a = one(da, va), *b = one(db, vb);
        _cleanup_(lock_diff_freep) struct lock_diff *d = NULL;
        assert_int_equal(build_lock_diff(a, b, &d), 0);
        assert_int_equal(d->n, 1);
        return d->e[0].change;
}

/* The summary after a build compares versions as the locks' distribution does. */
static void test_lock_diff_vercmp(void **state) {
        (void)state;
        /* pacman: 1.10 > 1.9 and an epoch outranks (strcmp says otherwise both times) */
        assert_int_equal(change("arch", "1.9-1", "arch", "1.10-1"), LOCK_UPGRADED);
        assert_int_equal(change("arch", "1:0.9-1", "arch", "2.0-1"), LOCK_DOWNGRADED);
        /* dpkg: ~ sorts before the end: 1.0~rc1 < 1.0 */
        assert_int_equal(change("debian", "1.0~rc1-1", "debian", "1.0-1"), LOCK_UPGRADED);
        assert_int_equal(change("debian", "1.0-1", "debian", "1.0~rc1-1"), LOCK_DOWNGRADED);
        /* another distribution altogether: no order to trust, strcmp */
        assert_int_equal(change("arch", "1.9", "debian", "1.10"), LOCK_DOWNGRADED);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_arch_inputs_text),
                cmocka_unit_test(test_inputs_sensitivity),
                cmocka_unit_test(test_default_epoch),
                cmocka_unit_test(test_lock_diff_vercmp),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
