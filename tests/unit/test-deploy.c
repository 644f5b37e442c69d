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
#include "util/strv.h"

static void test_names(void **state) {
        (void)state;
        static const struct { const char *name; bool ok; } t[] = {
                { "mastodon", true }, { "a-b.c", true }, { "x", true }, { "", false }, { ".hidden", false },
                { "-dash", false }, { "a/b", false }, { "..", false }, { "a b", false }, { "A1.b2-c", true },
                { "é", false },
                { "0123456789012345678901234567890123456789012345678901234567890123", true },
                { "01234567890123456789012345678901234567890123456789012345678901234", false },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                assert_int_equal(deploy_name_is_valid(t[i].name), t[i].ok);
                assert_int_equal(deploy_machine_name_is_valid(t[i].name), t[i].ok);
        }
        /* systemd-nspawn --machine= refuses these (its hostname_is_valid()): no new machine gets
         * such a name, but one an older mkmachine made can still be listed, rolled back, removed */
        static const char *const old_only[] = { "my_vm", "a..b", "web-", "x.", "a.-b", "a-.b" };
        for (size_t i = 0; i < ELEMENTSOF(old_only); i++) {
                assert_true(deploy_name_is_valid(old_only[i]));
                assert_false(deploy_machine_name_is_valid(old_only[i]));
        }
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

/* A build replaces only what deploy_begin saw and the checks judged: a tree that appears at
 * NAME, or replaces the one there, while the build runs is never swapped out and deleted. A
 * symlink at NAME is a machine mkmachine did not build. */
static void test_changed_during_build(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("deploy");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        struct mkm_err err = {};
        char p[512], q[512];
        struct deploy *d = NULL;
        unsigned n = 0;
        struct state_new_gen g = { .recipe = "r\n", .recipe_path = "/x.recipe", .lock = "l\n", .manifest = "",
                                   .digest = "sha256:x" };
        /* nothing at NAME when the build began; someone's tree there when it ends */
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "replace", &err), 0);
        assert_int_equal(deploy_stage(d, &err), 0);
        assert_int_equal(fs_write_file_at(d->root_fd, "gen", "new", 3, 0644), 0);
        snprintf(p, sizeof p, "%s/var/lib/machines/m/gen", host);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, strcat(strcpy(q, host), "/var/lib/machines/m"), 0755), 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, p, "precious", 8, 0644), 0);
        assert_int_equal(deploy_commit(&ctx, d, &g, &n, &err), -MKM_E_REFUSED);
        assert_non_null(strstr(err.msg, "/var/lib/machines/m appeared while the build ran; nothing was deployed"));
        d = deploy_free(d);
        assert_tree(host, "m", "precious");
        assert_false(exists(host, "var/lib/mkmachine/m/gen/", "1"));
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, q), 0);

        /* the live tree replaced by another while a build ran */
        deploy_one(&ctx, "1");
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "replace", &err), 0);
        assert_int_equal(deploy_stage(d, &err), 0);
        assert_int_equal(fs_write_file_at(d->root_fd, "gen", "2", 1, 0644), 0);
        snprintf(p, sizeof p, "%s/var/lib/machines/elsewhere", host);
        assert_int_equal(rename(q, p), 0);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, q, 0755), 0);
        snprintf(p, sizeof p, "%s/var/lib/machines/m/gen", host);
        assert_int_equal(fs_write_file_at(AT_FDCWD, p, "by hand", 7, 0644), 0);
        assert_int_equal(deploy_commit(&ctx, d, &g, &n, &err), -MKM_E_REFUSED);
        assert_non_null(strstr(err.msg, "/var/lib/machines/m was replaced while the build ran; nothing was deployed"));
        d = deploy_free(d);
        assert_tree(host, "m", "by hand");
        assert_tree(host, "elsewhere", "1");
        assert_false(exists(host, "var/lib/mkmachine/m/gen/", "2"));
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, q), 0);

        /* m's live tree gone (it is "elsewhere" now) and another made at m by hand: recovery
         * does not drop generation 1's state for it, unless --force; then its host files go too */
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, q, 0755), 0);
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), -MKM_E_REFUSED);
        assert_non_null(strstr(err.msg, "/var/lib/machines/m is not the tree of generation 1 of 'm', deployed last"));
        assert_non_null(strstr(err.msg, "Nothing was removed"));
        assert_true(exists(host, "var/lib/mkmachine/m/gen/", "1"));
        assert_true(exists(host, "etc/systemd/nspawn/", "m.nspawn"));
        ctx.force = true;
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(d->state->n_gens, 0);
        assert_true(d->state->tree_exists);
        d = deploy_free(d);
        ctx.force = false;
        assert_false(exists(host, "etc/systemd/nspawn/", "m.nspawn"));
        assert_true(exists(host, "var/lib/machines/", "m"));
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, q), 0);

        /* a symlink at NAME (machined lists it as an image): not replaced without --force */
        snprintf(p, sizeof p, "%s/var/lib/machines/elsewhere", host);
        assert_int_equal(symlink(p, q), 0);
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_true(d->state->tree_exists);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "replace", &err), -MKM_E_REFUSED);
        assert_non_null(strstr(err.msg, "no state: not built by mkmachine: "));
        assert_non_null(strstr(err.msg, "/var/lib/machines/m is a symbolic link"));
        d = deploy_free(d);
        struct stat st;
        assert_int_equal(lstat(q, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
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

/* A first build that fails (or a name only looked at) leaves no state directory behind: ls would
 * list it as a machine with no generation. One with generations keeps its state. */
static void test_no_ghost_state(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("deploy");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        struct mkm_err err = {};
        struct deploy *d = NULL;
        assert_int_equal(deploy_begin(&ctx, "x", &d, &err), 0);
        assert_int_equal(deploy_stage(d, &err), 0);
        assert_true(exists(host, "var/lib/mkmachine/x/", ".lock"));
        /* another command on x meanwhile: refused, and it must not take away the lock we hold */
        struct deploy *other = NULL;
        assert_int_equal(deploy_begin(&ctx, "x", &other, &err), -EBUSY);
        assert_null(other);
        char lock[512];
        snprintf(lock, sizeof lock, "%s/var/lib/mkmachine/x/.lock", host);
        assert_true(fs_fd_is_path(d->lock_fd, lock));
        d = deploy_free(d);             /* the build failed */
        assert_false(exists(host, "var/lib/mkmachine/", "x"));
        char **names = NULL;
        assert_int_equal(state_list(&ctx, &names, &err), 0);
        assert_null(names[0]);
        strv_free(names);
        deploy_one(&ctx, "1");
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        d = deploy_free(d);
        assert_true(exists(host, "var/lib/mkmachine/m/gen/", "1"));

        /* rm of m done, but not yet ended, while the next build of m begins: the end of rm must
         * not take the new build's lock file away (a third command would lock a new one) */
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_remove(&ctx, d, &err), 0);
        assert_int_equal(deploy_begin(&ctx, "m", &other, &err), 0);
        assert_int_equal(deploy_stage(other, &err), 0);
        d = deploy_free(d);
        struct deploy *third = NULL;
        assert_int_equal(deploy_begin(&ctx, "m", &third, &err), -EBUSY);
        snprintf(lock, sizeof lock, "%s/var/lib/mkmachine/m/.lock", host);
        assert_true(fs_fd_is_path(other->lock_fd, lock));
        other = deploy_free(other);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

/* A first build of a name also refuses (without --force) host files mkmachine did not write and
 * a raw image of the same name, which the new directory would hide. */
static void test_refuse_foreign_host_files(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("deploy");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        struct mkm_err err = {};
        char p[512];
        snprintf(p, sizeof p, "%s/etc/systemd/nspawn", host);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, p, 0755), 0);
        snprintf(p, sizeof p, "%s/etc/systemd/nspawn/m.nspawn", host);
        assert_int_equal(fs_write_file_at(AT_FDCWD, p, "[Exec]\nBoot=yes\n", 16, 0644), 0);
        struct deploy *d = NULL;
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "replace", &err), -MKM_E_REFUSED);
        assert_non_null(strstr(err.msg, "host file: "));
        assert_non_null(strstr(err.msg, "/etc/systemd/nspawn/m.nspawn was not written by mkmachine"));
        d = deploy_free(d);
        assert_int_equal(unlink(p), 0);
        snprintf(p, sizeof p, "%s/var/lib/machines/m.raw", host);
        assert_int_equal(fs_write_file_at(AT_FDCWD, p, "", 0, 0644), 0);
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "replace", &err), -MKM_E_REFUSED);
        assert_non_null(strstr(err.msg, "another image: "));
        assert_non_null(strstr(err.msg, "/var/lib/machines/m.raw has the same name"));
        d = deploy_free(d);
        ctx.force = true;
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "replace", &err), 0);
        d = deploy_free(d);
        ctx.force = false;
        assert_int_equal(unlink(p), 0);
        /* once mkmachine made the machine, its own host files are no reason, nor a raw image
         * that its tree hides already (rm un-hides it) */
        deploy_one(&ctx, "1");
        assert_int_equal(fs_write_file_at(AT_FDCWD, p, "", 0, 0644), 0);
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "replace", &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "remove", &err), 0);
        d = deploy_free(d);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

/* The old generation's host files never stay with the new tree: they go before the swap, the
 * new ones are written after it. A failure right after the swap (as a crash there) leaves the
 * new tree without a .nspawn (systemd's defaults) until recovery writes its own. */
static void test_host_files_around_swap(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("deploy");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        struct mkm_err err = {};
        char p[512];
        deploy_one(&ctx, "1");
        struct deploy *d = NULL;
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "replace", &err), 0);
        assert_int_equal(deploy_stage(d, &err), 0);
        assert_int_equal(fs_write_file_at(d->root_fd, "gen", "2", 1, 0644), 0);
        /* generation 1's meta unreadable from now on: the state cannot be read again after the
         * swap, so deploy_commit stops between the swap and the host files */
        snprintf(p, sizeof p, "%s/var/lib/mkmachine/m/gen/1/meta", host);
        assert_int_equal(fs_write_file_at(AT_FDCWD, p, "garbage\n", 8, 0644), 0);
        struct state_host_file hf[] = { { "etc/systemd/nspawn/m.nspawn", "[Exec]\n# 2\n" } };
        struct state_new_gen g = { .recipe = "r\n", .recipe_path = "/x.recipe", .lock = "l\n", .manifest = "",
                                   .digest = "sha256:2", .host = hf, .n_host = 1 };
        unsigned n = 0;
        assert_true(deploy_commit(&ctx, d, &g, &n, &err) < 0);
        assert_non_null(strstr(err.msg, "machine 'm' is deployed, but its host files are not"));
        d = deploy_free(d);
        assert_tree(host, "m", "2");
        snprintf(p, sizeof p, "%s/etc/systemd/nspawn/m.nspawn", host);
        _cleanup_free_ char *nspawn = NULL;
        if (fs_read_file_follow_at(AT_FDCWD, p, 256, &nspawn, NULL) >= 0)
                fail_msg("the new tree is deployed with a .nspawn of before the swap: %s", nspawn);
        /* the next command repairs */
        snprintf(p, sizeof p, "%s/var/lib/mkmachine/m/gen/1", host);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, p), 0);
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        d = deploy_free(d);
        assert_nspawn(host, "2");

        /* the swap itself fails after the old host files were retired (the staged tree is gone):
         * nothing is deployed, and generation 2's .nspawn is back, unmarked */
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_stage(d, &err), 0);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, d->staging), 0);
        struct state_host_file hf3[] = { { "etc/systemd/nspawn/m.nspawn", "[Exec]\n# 3\n" } };
        struct state_new_gen g3 = { .recipe = "r\n", .recipe_path = "/x.recipe", .lock = "l\n", .manifest = "",
                                    .digest = "sha256:3", .host = hf3, .n_host = 1 };
        err = (struct mkm_err){};
        assert_int_equal(deploy_commit(&ctx, d, &g3, &n, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "cannot swap "));
        d = deploy_free(d);
        assert_tree(host, "m", "2");
        assert_nspawn(host, "2");
        assert_false(exists(host, "var/lib/mkmachine/m/", "host-pending"));
        assert_false(exists(host, "var/lib/mkmachine/m/gen/", "3"));

        /* the same for a rollback (4 -> 3), stopped between its swap and the host files */
        ctx.keep_generations = 2;
        deploy_one(&ctx, "3");
        deploy_one(&ctx, "4");
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        snprintf(p, sizeof p, "%s/var/lib/mkmachine/m/gen/2/meta", host);
        assert_int_equal(fs_write_file_at(AT_FDCWD, p, "garbage\n", 8, 0644), 0);
        unsigned from = 0, to = 0;
        assert_true(deploy_rollback(&ctx, d, &from, &to, &err) < 0);
        assert_non_null(strstr(err.msg, "machine 'm' is rolled back, but its host files are not"));
        d = deploy_free(d);
        assert_tree(host, "m", "3");
        snprintf(p, sizeof p, "%s/etc/systemd/nspawn/m.nspawn", host);
        free(nspawn);
        nspawn = NULL;
        if (fs_read_file_follow_at(AT_FDCWD, p, 256, &nspawn, NULL) >= 0)
                fail_msg("the rolled-back tree has the .nspawn of before the swap: %s", nspawn);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
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
                cmocka_unit_test(test_changed_during_build),
                cmocka_unit_test(test_host_files_around_swap),
                cmocka_unit_test(test_refuse_foreign_host_files),
                cmocka_unit_test(test_no_ghost_state),
                cmocka_unit_test(test_rollback),
                cmocka_unit_test(test_refuse_and_remove),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
