/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/deploy: names, the per-machine lock, stale staging trees, the swap. */
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctx.h"
#include "deploy.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"

static void test_names(void **state) {
        (void)state;
        static const struct { const char *name; bool ok; } t[] = {
                { "mastodon", true }, { "a-b_c.d", true }, { "x", true }, { "", false }, { ".hidden", false },
                { "-dash", false }, { "a/b", false }, { "..", false }, { "a b", false },
                { "0123456789012345678901234567890123456789012345678901234567890123", true },
                { "01234567890123456789012345678901234567890123456789012345678901234", false },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                assert_int_equal(deploy_name_is_valid(t[i].name), t[i].ok);
}

static void test_lifecycle(void **state) {
        (void)state;
        char host[] = "/tmp/mkm-test-deploy.XXXXXX";
        assert_non_null(mkdtemp(host));
        struct mkm_ctx ctx = { .host_root = host };
        struct mkm_err err = {};
        char p[512];

        /* A stale staging tree from a killed build is removed once we hold the lock. */
        snprintf(p, sizeof p, "%s/var/lib/machines/.#m.stale1/usr", host);   /* mkdtemp-like: 6 chars */
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, p, 0755), 0);
        snprintf(p, sizeof p, "%s/var/lib/machines/.#other.stale", host);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, p, 0755), 0);
        /* "m.bar" is another machine: its rollback and its build in progress are not ours. */
        snprintf(p, sizeof p, "%s/var/lib/machines/.#m.bar.prev", host);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, p, 0755), 0);
        snprintf(p, sizeof p, "%s/var/lib/machines/.#m.bar.Ab12Cd", host);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, p, 0755), 0);

        struct deploy *d = NULL;
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        snprintf(p, sizeof p, "%s/var/lib/machines/.#m.stale1", host);
        assert_int_equal(access(p, F_OK), -1);
        snprintf(p, sizeof p, "%s/var/lib/machines/.#other.stale", host);
        assert_int_equal(access(p, F_OK), 0);   /* another machine's: not ours to touch */
        snprintf(p, sizeof p, "%s/var/lib/machines/.#m.bar.prev", host);
        assert_int_equal(access(p, F_OK), 0);
        snprintf(p, sizeof p, "%s/var/lib/machines/.#m.bar.Ab12Cd", host);
        assert_int_equal(access(p, F_OK), 0);

        /* A second build of the same machine is refused while the first holds the lock. */
        pid_t pid = fork();
        if (pid == 0) {
                struct deploy *d2 = NULL;
                struct mkm_err e2 = {};
                int r = deploy_begin(&ctx, "m", &d2, &e2);
                _exit(r == -EBUSY && strstr(e2.msg, "another build of 'm' is running") ? 0 : 1);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        /* First deploy: a plain rename. */
        assert_int_equal(deploy_stage(d, &err), 0);
        assert_int_equal(fs_write_file_at(d->root_fd, "gen", "1", 1, 0644), 0);
        assert_int_equal(deploy_swap(&ctx, d, &err), 0);
        assert_null(d->staging);
        d = deploy_free(d);

        /* Second deploy: exchange, the old tree kept as .#m.prev. */
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_stage(d, &err), 0);
        assert_int_equal(fs_write_file_at(d->root_fd, "gen", "2", 1, 0644), 0);
        assert_int_equal(deploy_swap(&ctx, d, &err), 0);
        d = deploy_free(d);
        _cleanup_free_ char *cur = NULL, *prev = NULL;
        snprintf(p, sizeof p, "%s/var/lib/machines/m/gen", host);
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, p, 8, &cur, NULL), 0);
        assert_string_equal(cur, "2");
        snprintf(p, sizeof p, "%s/var/lib/machines/.#m.prev/gen", host);
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, p, 8, &prev, NULL), 0);
        assert_string_equal(prev, "1");

        /* A failed build (staged, never swapped) leaves nothing behind. */
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_stage(d, &err), 0);
        char staging[512];
        snprintf(staging, sizeof staging, "%s", d->staging);
        assert_int_equal(access(staging, F_OK), 0);
        d = deploy_free(d);
        assert_int_equal(access(staging, F_OK), -1);

        assert_int_equal(deploy_begin(&ctx, "bad/name", &d, &err), -MKM_E_RECIPE);
        assert_string_equal(err.msg, "'bad/name' is not a valid machine name");
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_lifecycle),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
