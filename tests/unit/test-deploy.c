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
#include "helpers.h"
#include "manifest.h"
#include "state.h"
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

/* Commit the staged tree with a state whose digest and .nspawn say what; returns the gen. */
static unsigned commit(struct mkm_ctx *ctx, struct deploy *d, const char *what) {
        char digest[80], nspawn[80], path[80];
        snprintf(digest, sizeof digest, "sha256:%s", what);
        snprintf(nspawn, sizeof nspawn, "[Exec]\n# %s\n", what);
        snprintf(path, sizeof path, "etc/systemd/nspawn/%s.nspawn", d->name);
        struct state_host_file host[] = { { path, nspawn } };
        struct mkm_err err = {};
        /* The tree's real manifest: a later replace compares the live tree with it (drift). */
        _cleanup_free_ char *manifest = NULL;
        char mdigest[MANIFEST_DIGEST_LEN];
        if (manifest_build(ctx, d->root_fd, -1, &manifest, mdigest, &err) < 0)
                fail_msg("manifest_build: %s", err.msg);
        struct state_new_gen g = { .recipe = "r\n", .recipe_path = "/x.recipe", .lock = "l\n", .manifest = manifest,
                                   .digest = digest, .host = host, .n_host = 1 };
        unsigned n = 0;
        int r = deploy_commit(ctx, d, &g, &n, &err);
        if (r < 0)
                fail_msg("deploy_commit: %s", err.msg);
        return n;
}

static void assert_tree(const char *host, const char *tree, const char *want) {
        char p[512];
        _cleanup_free_ char *text = NULL;
        snprintf(p, sizeof p, "%s/var/lib/machines/%s/gen", host, tree);
        if (fs_read_file_follow_at(AT_FDCWD, p, 64, &text, NULL) < 0)
                fail_msg("%s: missing", p);
        if (strcmp(text, want) != 0)
                fail_msg("%s: '%s', expected '%s'", p, text, want);
}

/* Does HOST/prefix + arg exist? */
static bool exists(const char *host, const char *prefix, const char *arg) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s%s", host, prefix, arg);
        return access(p, F_OK) == 0;
}

/* Build one more generation of m with content what (keep as ctx says). */
static unsigned deploy_one(struct mkm_ctx *ctx, const char *what) {
        struct deploy *d = NULL;
        struct mkm_err err = {};
        if (deploy_begin(ctx, "m", &d, &err) < 0)
                fail_msg("deploy_begin: %s", err.msg);
        assert_int_equal(deploy_stage(d, &err), 0);
        assert_int_equal(fs_write_file_at(d->root_fd, "gen", what, strlen(what), 0644), 0);
        unsigned n = commit(ctx, d, what);
        deploy_free(d);
        return n;
}

static void test_lifecycle(void **state) {
        (void)state;
        char host[] = "/tmp/mkm-test-deploy.XXXXXX";
        assert_non_null(mkdtemp(host));
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
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
        assert_int_equal(commit(&ctx, d, "1"), 1);
        assert_null(d->staging);
        d = deploy_free(d);

        /* Second deploy: exchange, the old tree kept as .#m.gen-1. */
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_stage(d, &err), 0);
        assert_int_equal(fs_write_file_at(d->root_fd, "gen", "2", 1, 0644), 0);
        assert_int_equal(commit(&ctx, d, "2"), 2);
        d = deploy_free(d);
        assert_tree(host, "m", "2");
        assert_tree(host, ".#m.gen-1", "1");

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

/* Three deploys keep the live tree and ctx.keep_generations older ones, the most recent first;
 * the kept tree is the generation its name says (the .#NAME.prev bug: a third deploy kept the
 * wrong tree, with only a warning). */
static void test_generations(void **state) {
        (void)state;
        for (unsigned keep = 0; keep <= 2; keep++) {
                _cleanup_free_ char *host = th_tmpdir_new("deploy");
                struct mkm_ctx ctx = { .host_root = host, .keep_generations = keep };
                assert_int_equal(deploy_one(&ctx, "1"), 1);
                assert_int_equal(deploy_one(&ctx, "2"), 2);
                assert_int_equal(deploy_one(&ctx, "3"), 3);
                assert_tree(host, "m", "3");
                assert_true(exists(host, "var/lib/mkmachine/m/gen/", "3"));
                assert_int_equal(exists(host, "var/lib/machines/.#m.gen-", "2"), keep >= 1);
                assert_int_equal(exists(host, "var/lib/mkmachine/m/gen/", "2"), keep >= 1);
                assert_int_equal(exists(host, "var/lib/machines/.#m.gen-", "1"), keep >= 2);
                assert_int_equal(exists(host, "var/lib/mkmachine/m/gen/", "1"), keep >= 2);
                if (keep >= 1)
                        assert_tree(host, ".#m.gen-2", "2");
                if (keep >= 2)
                        assert_tree(host, ".#m.gen-1", "1");
                /* the state says the same */
                struct machine_state *s = NULL;
                struct mkm_err err = {};
                assert_int_equal(state_load(&ctx, "m", &s, &err), 0);
                assert_int_equal(s->n_gens, 1 + keep);
                assert_non_null(s->live);
                assert_int_equal(s->live->gen, 3);
                assert_string_equal(s->live->digest, "sha256:3");
                for (size_t i = 0; i < s->n_gens; i++)
                        assert_non_null(s->gens[i].tree);
                state_free(s);
                /* the host file is the live generation's */
                _cleanup_free_ char *nspawn = NULL;
                char p[512];
                snprintf(p, sizeof p, "%s/etc/systemd/nspawn/m.nspawn", host);
                assert_int_equal(fs_read_file_follow_at(AT_FDCWD, p, 256, &nspawn, NULL), 0);
                assert_string_equal(nspawn, "[Exec]\n# 3\n");
                assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
        }
}

/* Whatever is in the way of .#NAME.gen-M when the old tree is kept goes first. */
static void test_in_the_way(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("deploy");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        struct mkm_err err = {};
        assert_int_equal(deploy_one(&ctx, "1"), 1);
        struct deploy *d = NULL;
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_stage(d, &err), 0);
        assert_int_equal(fs_write_file_at(d->root_fd, "gen", "2", 1, 0644), 0);
        /* after recovery ran: a stray tree where generation 1 is to be kept */
        char p[512];
        snprintf(p, sizeof p, "%s/var/lib/machines/.#m.gen-1/stray", host);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, p, 0755), 0);
        assert_int_equal(commit(&ctx, d, "2"), 2);
        deploy_free(d);
        assert_tree(host, "m", "2");
        assert_tree(host, ".#m.gen-1", "1");
        assert_false(exists(host, "var/lib/machines/.#m.gen-1/", "stray"));
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

static void assert_nspawn(const char *host, const char *want) {
        char p[512];
        _cleanup_free_ char *text = NULL;
        snprintf(p, sizeof p, "%s/etc/systemd/nspawn/m.nspawn", host);
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, p, 256, &text, NULL), 0);
        char w[64];
        snprintf(w, sizeof w, "[Exec]\n# %s\n", want);
        assert_string_equal(text, w);
}

static void rollback(struct mkm_ctx *ctx, unsigned want_from, unsigned want_to) {
        struct deploy *d = NULL;
        struct mkm_err err = {};
        unsigned from = 0, to = 0;
        assert_int_equal(deploy_begin(ctx, "m", &d, &err), 0);
        if (deploy_rollback(ctx, d, &from, &to, &err) < 0)
                fail_msg("rollback: %s", err.msg);
        deploy_free(d);
        assert_int_equal(from, want_from);
        assert_int_equal(to, want_to);
}

static void test_rollback(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("deploy");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 2 };
        struct mkm_err err = {};
        deploy_one(&ctx, "1");
        struct deploy *d = NULL;
        unsigned from, to;
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_rollback(&ctx, d, &from, &to, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "no other generation"));
        deploy_free(d);
        deploy_one(&ctx, "2");
        deploy_one(&ctx, "3");
        rollback(&ctx, 3, 2);
        assert_tree(host, "m", "2");
        assert_tree(host, ".#m.gen-3", "3");
        assert_tree(host, ".#m.gen-1", "1");
        assert_nspawn(host, "2");
        rollback(&ctx, 2, 3);   /* twice: back where we started */
        assert_tree(host, "m", "3");
        assert_tree(host, ".#m.gen-2", "2");
        assert_nspawn(host, "3");
        /* a build after a rollback keeps the generation rolled back from */
        rollback(&ctx, 3, 2);
        assert_int_equal(deploy_one(&ctx, "4"), 4);
        assert_tree(host, "m", "4");
        assert_tree(host, ".#m.gen-2", "2");
        assert_tree(host, ".#m.gen-3", "3");
        assert_false(exists(host, "var/lib/machines/.#m.gen-", "1"));
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

static void test_refuse_and_remove(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("deploy");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        struct mkm_err err = {};
        char p[512];
        /* a tree nobody built with mkmachine */
        snprintf(p, sizeof p, "%s/var/lib/machines/m/etc", host);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, p, 0755), 0);
        struct deploy *d = NULL;
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "replace", &err), -MKM_E_REFUSED);
        assert_non_null(strstr(err.msg, "refusing to replace machine 'm' (--force overrides):"));
        assert_non_null(strstr(err.msg, "no state: not built by mkmachine: 1 files would be lost"));
        d = deploy_free(d);
        ctx.force = true;
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "replace", &err), 0);
        assert_int_equal(deploy_stage(d, &err), 0);
        assert_int_equal(fs_write_file_at(d->root_fd, "gen", "1", 1, 0644), 0);
        assert_int_equal(commit(&ctx, d, "1"), 1);
        d = deploy_free(d);
        ctx.force = false;
        assert_tree(host, "m", "1");
        assert_false(exists(host, "var/lib/machines/m/", "etc"));     /* the hand-made tree went */
        deploy_one(&ctx, "2");

        /* drifted: a file of the live tree changed by hand; a change under /var/log alone is not drift */
        snprintf(p, sizeof p, "%s/var/lib/machines/m/var/log", host);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, p, 0755), 0);
        snprintf(p, sizeof p, "%s/var/lib/machines/m/var/log/boot", host);
        assert_int_equal(fs_write_file_at(AT_FDCWD, p, "x", 1, 0644), 0);
        snprintf(p, sizeof p, "%s/var/lib/machines/m/var", host);
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        if (deploy_check_replaceable(&ctx, d, "replace", &err) != -MKM_E_REFUSED)
                fail_msg("a new ./var was not drift: %s", err.msg);
        assert_non_null(strstr(err.msg, "drift: 1 path changed by hand since the build would be lost"));
        assert_non_null(strstr(err.msg, "\n    + ./var"));
        assert_null(strstr(err.msg, "var/log"));
        d = deploy_free(d);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, p), 0);
        snprintf(p, sizeof p, "%s/var/lib/machines/m/gen", host);
        assert_int_equal(fs_write_file_at(AT_FDCWD, p, "X", 1, 0644), 0);
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "remove", &err), -MKM_E_REFUSED);
        assert_non_null(strstr(err.msg, "refusing to remove machine 'm' (--force overrides):"));
        assert_non_null(strstr(err.msg, "\n    M ./gen (content"));
        d = deploy_free(d);
        ctx.force = true;
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "remove", &err), 0);
        d = deploy_free(d);
        ctx.force = false;
        assert_int_equal(fs_write_file_at(AT_FDCWD, p, "2", 1, 0644), 0);
        struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = 1 } };
        assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);      /* time alone: not drift */

        /* running: someone holds the image lock as nspawn does */
        snprintf(p, sizeof p, "%s/var/lib/machines/.#m.lck", host);
        int lfd = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        assert_true(lfd >= 0);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        assert_int_equal(fcntl(lfd, F_OFD_SETLK, &fl), 0);
        assert_int_equal(state_machine_running(&ctx, "m"), 1);
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "remove", &err), -MKM_E_REFUSED);
        assert_non_null(strstr(err.msg, "running: machine 'm' is running"));
        d = deploy_free(d);
        close(lfd);
        assert_int_equal(state_machine_running(&ctx, "m"), 0);
        /* systemd's global lock of the tree, by DEV:INO in /run (here: the host root's /run) */
        struct stat st;
        snprintf(p, sizeof p, "%s/var/lib/machines/m", host);
        assert_int_equal(stat(p, &st), 0);
        snprintf(p, sizeof p, "%s/run/systemd/nspawn/locks", host);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, p, 0700), 0);
        snprintf(p, sizeof p, "%s/run/systemd/nspawn/locks/inode-%lu:%lu", host, (unsigned long)st.st_dev,
                 (unsigned long)st.st_ino);
        lfd = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        assert_true(lfd >= 0);
        assert_int_equal(fcntl(lfd, F_OFD_SETLK, &fl), 0);
        assert_int_equal(state_machine_running(&ctx, "m"), 1);
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "remove", &err), -MKM_E_REFUSED);
        assert_non_null(strstr(err.msg, "/run/systemd/nspawn/locks is held"));
        d = deploy_free(d);
        close(lfd);
        assert_int_equal(state_machine_running(&ctx, "m"), 0);

        /* rm: nothing of the machine is left */
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "remove", &err), 0);
        if (deploy_remove(&ctx, d, &err) < 0)
                fail_msg("remove: %s", err.msg);
        d = deploy_free(d);
        assert_false(exists(host, "var/lib/machines/", "m"));
        assert_false(exists(host, "var/lib/machines/.#m.gen-", "1"));
        assert_false(exists(host, "var/lib/machines/.#m.", "lck"));
        assert_false(exists(host, "var/lib/mkmachine/", "m"));
        assert_false(exists(host, "etc/systemd/nspawn/", "m.nspawn"));
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_lifecycle),
                cmocka_unit_test(test_generations),
                cmocka_unit_test(test_in_the_way),
                cmocka_unit_test(test_rollback),
                cmocka_unit_test(test_refuse_and_remove),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
