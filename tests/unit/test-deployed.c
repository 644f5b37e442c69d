/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/deployed: reading the live generation's files from the state under a
 * host root, every machine's lock for clean, and names that must not leave the state directory. */
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

#include <cmocka.h>

#include "ctx.h"
#include "deployed.h"
#include "helpers.h"
#include "lock.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"

#define SHA_A "1111111111111111111111111111111111111111111111111111111111111111"

static const char lock_a[] = "inputs sha256:a\ndistribution arch\n"
                             "package app 1.0-1 core app.pkg " SHA_A " 1 2 - 0 explicit 0\n";

/* A live tree HOST/var/lib/machines/NAME and its generation gen/N (meta root= its DEV:INO). */
static void live(const char *host, const char *name, unsigned gen) {
        char rel[256], meta[256];
        snprintf(rel, sizeof rel, "var/lib/machines/%s/etc/os-release", name);
        th_write_file(host, rel, "ID=test\n", 0644);
        _cleanup_free_ char *top = fs_path_join(host, "var/lib/machines");
        _cleanup_free_ char *tree = fs_path_join(top, name);
        struct stat st;
        assert_int_equal(stat(tree, &st), 0);
        snprintf(rel, sizeof rel, "var/lib/mkmachine/%s/gen/%u/meta", name, gen);
        snprintf(meta, sizeof meta, "generation=%u\nroot=%llu:%llu\n", gen, (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        th_write_file(host, rel, meta, 0644);
}

static int setup(void **state) { return th_tmpdir_setup(state, "deployed"); }

struct seen {
        char names[4][64];
        size_t n, pkgs;
};

static int each(void *userdata, const char *name, const char *path, const struct lock *l) {
        struct seen *s = userdata;
        assert_true(s->n < 4);
        assert_non_null(strstr(path, "/var/lib/mkmachine/"));
        snprintf(s->names[s->n++], sizeof s->names[0], "%s", name);
        s->pkgs += l->n;
        return 0;
}

static void test_deployed(void **state) {
        const char *host = *state;
        struct mkm_ctx ctx = { .host_root = host };
        struct mkm_err err = {};
        live(host, "web", 2);
        th_write_file(host, "var/lib/mkmachine/web/gen/2/lock", lock_a, 0644);
        th_write_file(host, "var/lib/mkmachine/web/gen/2/recipe", "[Machine]\nName=web\n", 0644);
        th_write_file(host, "var/lib/mkmachine/web/gen/1/meta", "generation=1\nroot=1:1\n", 0644); /* kept, not live */
        th_write_file(host, "var/lib/mkmachine/web/gen/1/lock", lock_a, 0644);
        live(host, "nolock", 1);
        th_write_file(host, "var/lib/mkmachine/nolock/gen/1/recipe", "[Machine]\nName=nolock\n", 0644);
        live(host, "imported", 1);      /* an import's generation: an empty lock file */
        th_write_file(host, "var/lib/mkmachine/imported/gen/1/lock", "", 0644);

        _cleanup_free_ char *text = NULL, *path = NULL;
        assert_int_equal(deployed_read(&ctx, "web", "recipe", &text, &path, &err), 0);
        assert_string_equal(text, "[Machine]\nName=web\n");
        assert_non_null(strstr(path, "/var/lib/mkmachine/web/gen/2/recipe"));
        _cleanup_free_ char *none = NULL;
        assert_int_equal(deployed_read(&ctx, "web", "recipe-path", &none, NULL, &err), -ENOENT);
        assert_int_equal(deployed_read(&ctx, "absent", "recipe", &none, NULL, &err), -ENOENT);
        /* A name is a machine name, never a path. */
        assert_int_equal(deployed_read(&ctx, "../web", "recipe", &none, NULL, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "not a valid machine name"));

        _cleanup_(lock_freep) struct lock *l = NULL;
        assert_int_equal(deployed_lock(&ctx, "web", &l, &err), 0);
        assert_int_equal(l->n, 1);
        assert_int_equal(deployed_lock(&ctx, "nolock", &l, &err), -ENOENT);
        assert_int_equal(deployed_lock(&ctx, "imported", &l, &err), -ENOENT);

        struct seen s = {};
        assert_int_equal(deployed_each_lock(&ctx, each, &s, &err), 0);
        assert_int_equal(s.n, 2);       /* both of web's generations; nolock and imported have none */
        assert_string_equal(s.names[0], "web");
        assert_string_equal(s.names[1], "web");
        assert_int_equal(s.pkgs, 2);

        /* A lock clean cannot read stops it: nothing may go that it cannot account for. */
        live(host, "broken", 1);
        th_write_file(host, "var/lib/mkmachine/broken/gen/1/lock", "package x\n", 0644);
        s = (struct seen){};
        assert_true(deployed_each_lock(&ctx, each, &s, &err) < 0);
        assert_non_null(strstr(err.msg, "broken/gen/1/lock"));

        /* No state at all: nothing deployed. */
        struct mkm_ctx empty = { .host_root = "/nonexistent-mkm-host" };
        s = (struct seen){};
        assert_int_equal(deployed_each_lock(&empty, each, &s, &err), 0);
        assert_int_equal(s.n, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_deployed, setup, th_tmpdir_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
