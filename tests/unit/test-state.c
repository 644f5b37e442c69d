/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/state: meta parsing, state_load/list/read, and recovery from each state
 * an interrupted command can leave (and from the layout before generations). */
#include <errno.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
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
#include "deploy.h"
#include "helpers.h"
#include "manifest.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strv.h"

static void test_meta(void **state) {
        (void)state;
        struct state_meta m;
        struct mkm_err err = {};
        assert_int_equal(state_meta_parse("generation=3\nroot=2049:1234\nbuilt=1700000000\ndeployed=7\npackages=12\n"
                                          "source_date_epoch=1600000000\nmkmachine=0.1.0\nfuture=ignored\n",
                                          "/s/gen/3/meta", &m, &err),
                         0);
        assert_int_equal(m.generation, 3);
        assert_int_equal(m.root_dev, 2049);
        assert_int_equal(m.root_ino, 1234);
        assert_int_equal(m.built, 1700000000);
        assert_int_equal(m.deployed, 7);
        assert_int_equal(m.packages, 12);
        assert_int_equal(m.source_date_epoch, 1600000000);
        assert_string_equal(m.mkmachine, "0.1.0");
        _cleanup_free_ char *text = NULL;
        assert_int_equal(state_meta_format(&m, &text), 0);
        struct state_meta m2;
        assert_int_equal(state_meta_parse(text, "x", &m2, &err), 0);
        assert_memory_equal(&m, &m2, sizeof m);

        static const struct {
                const char *text, *msg;
        } bad[] = {
                { "generation=1\nroot=1:2\nbroken line\n", "/m:3: expected key=value, got 'broken line'" },
                { "generation=x\nroot=1:2\n", "/m:1: generation=: expected a number from 1, got 'x'" },
                { "generation=0\nroot=1:2\n", "/m:1: generation=: expected a number from 1, got '0'" },
                { "generation=1\nroot=12\n", "/m:2: root=: expected DEV:INO (two numbers), got '12'" },
                { "generation=1\nroot=1:-2\n", "/m:2: root=: expected DEV:INO (two numbers), got '1:-2'" },
                { "generation=1\nroot=1:2\nbuilt=yesterday\n", "/m:3: built=: expected seconds since 1970, got 'yesterday'" },
                { "generation=1\nroot=1:2\ndeployed=-1\n", "/m:3: deployed=: expected a number, got '-1'" },
                { "root=1:2\n", "/m: missing generation=" },
                { "generation=1\n", "/m: missing root=DEV:INO" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err = (struct mkm_err){};
                assert_int_equal(state_meta_parse(bad[i].text, "/m", &m, &err), -MKM_E_PARSE);
                assert_string_equal(err.msg, bad[i].msg);
        }
}

static bool exists(const char *host, const char *rel) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", host, rel);
        return access(p, F_OK) == 0;
}

static int unlink_in(const char *host, const char *rel) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", host, rel);
        return unlink(p);
}

static void must_rename(const char *host, const char *from, const char *to) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/%s", host, from);
        snprintf(b, sizeof b, "%s/%s", host, to);
        assert_int_equal(rename(a, b), 0);
}

/* Deploy a generation of m whose tree has file "gen" = what; host files: the .nspawn always, the
 * modules-load.d file when modules. */
static unsigned deploy_one(struct mkm_ctx *ctx, const char *what, bool modules) {
        struct deploy *d = NULL;
        struct mkm_err err = {};
        if (deploy_begin(ctx, "m", &d, &err) < 0)
                fail_msg("deploy_begin: %s", err.msg);
        assert_int_equal(deploy_stage(d, &err), 0);
        assert_int_equal(fs_write_file_at(d->root_fd, "gen", what, strlen(what), 0644), 0);
        char digest[64], nspawn[64];
        snprintf(digest, sizeof digest, "sha256:%s", what);
        snprintf(nspawn, sizeof nspawn, "# %s\n", what);
        struct state_host_file host[] = { { "etc/systemd/nspawn/m.nspawn", nspawn },
                                          { "etc/modules-load.d/mkmachine-m.conf", modules ? "fuse\n" : NULL } };
        struct state_new_gen g = { .recipe = "recipe\n", .recipe_path = "/r/m.recipe", .lock = "lock\n",
                                   .manifest = what, .digest = digest, .host = host, .n_host = 2, .packages = 5 };
        unsigned n = 0;
        if (deploy_commit(ctx, d, &g, &n, &err) < 0)
                fail_msg("deploy_commit: %s", err.msg);
        deploy_free(d);
        return n;
}

static void recover(struct mkm_ctx *ctx) {
        struct mkm_err err = {};
        struct deploy *d = NULL;
        /* as every command that takes the lock does */
        if (deploy_begin(ctx, "m", &d, &err) < 0)
                fail_msg("deploy_begin: %s", err.msg);
        deploy_free(d);
}

static void test_load(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("state");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        struct mkm_err err = {};
        struct machine_state *s = NULL;
        /* no such machine: no generations, no tree */
        assert_int_equal(state_load(&ctx, "m", &s, &err), 0);
        assert_int_equal(s->n_gens, 0);
        assert_null(s->live);
        assert_false(s->tree_exists);
        s = state_free(s);

        deploy_one(&ctx, "one", true);
        deploy_one(&ctx, "two", false);
        assert_int_equal(state_load(&ctx, "m", &s, &err), 0);
        assert_int_equal(s->n_gens, 2);
        assert_true(s->tree_exists);
        assert_ptr_equal(s->live, &s->gens[1]);
        assert_int_equal(s->gens[0].gen, 1);
        assert_false(s->gens[0].live);
        assert_string_equal(s->gens[0].digest, "sha256:one");
        assert_string_equal(s->gens[1].digest, "sha256:two");
        assert_int_equal(s->gens[1].packages, 5);
        assert_true(s->gens[1].deployed_seq > s->gens[0].deployed_seq);
        assert_non_null(strstr(s->gens[0].tree, "/var/lib/machines/.#m.gen-1"));
        _cleanup_free_ char *manifest = NULL, *rp = NULL;
        assert_int_equal(state_read_file(s->live, "manifest", &manifest, &err), 0);
        assert_string_equal(manifest, "two");
        assert_int_equal(state_read_file(s->live, "recipe-path", &rp, &err), 0);
        assert_string_equal(rp, "/r/m.recipe\n");
        char *none = NULL;
        assert_int_equal(state_read_file(s->live, "nope", &none, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "/var/lib/mkmachine/m/gen/2/nope"));
        s = state_free(s);

        _cleanup_strv_free_ char **names = NULL;
        th_write_file(host, "var/lib/mkmachine/a-other/gen/.keep", "", 0644);
        assert_int_equal(state_list(&ctx, &names, &err), 0);
        assert_int_equal(strv_length(names), 2);
        assert_string_equal(names[0], "a-other");
        assert_string_equal(names[1], "m");

        /* a bad meta: the error names the file and the line */
        th_write_file(host, "var/lib/mkmachine/m/gen/1/meta", "generation=1\nroot=oops\n", 0644);
        assert_int_equal(state_load(&ctx, "m", &s, &err), -MKM_E_PARSE);
        assert_non_null(strstr(err.msg, "/var/lib/mkmachine/m/gen/1/meta:2: root=: expected DEV:INO"));
        th_write_file(host, "var/lib/mkmachine/m/gen/1/meta", "generation=4\nroot=1:2\n", 0644);
        assert_int_equal(state_load(&ctx, "m", &s, &err), -MKM_E_PARSE);
        assert_non_null(strstr(err.msg, "gen/1/meta: generation=4, but the directory is gen/1"));
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

static void old_layout(const char *host);

/* A listing that fails (th_broken_listing_new(), bound over each directory the state lists) fails
 * the load: a generation or a tree missed would hide one from ls, rollback and the cleanup. */
static void test_listings_fail(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("state");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        deploy_one(&ctx, "one", false);
        _cleanup_free_ char *broken = th_broken_listing_new(host);
        const char *const over[] = { "var/lib/mkmachine", "var/lib/mkmachine/m/gen", "var/lib/machines" };
        char msg[3][2048] = {};
        int got[3] = {};
        for (size_t i = 0; i < 3; i++) {
                if (th_bind_over(broken, host, over[i]) < 0) {
                        got[i] = 1;
                        continue;
                }
                struct mkm_err err = {};
                struct machine_state *s = NULL;
                char **names = NULL;
                got[i] = i == 0 ? state_list(&ctx, &names, &err) : state_load(&ctx, "m", &s, &err);
                snprintf(msg[i], sizeof msg[i], "%s", err.msg);
                strv_free(names);
                state_free(s);
                th_unbind(host, over[i]);
        }
        for (size_t i = 0; i < 3; i++) {
                char want[4096];
                snprintf(want, sizeof want, "cannot list %s/%s: Bad message", host, over[i]);
                if (got[i] != -EBADMSG || strcmp(msg[i], want) != 0) {
                        th_broken_listing_done(host);
                        fail_msg("%s that cannot be listed: %d, '%s'\nwant '%s'", over[i], got[i], msg[i], want);
                }
        }

        /* The migration of a state from before generations reads gen/ whole, or not at all: a
         * generation missed could give the live tree the number of one that exists. */
        _cleanup_free_ char *old = th_tmpdir_new("state-old");
        struct mkm_ctx octx = { .host_root = old, .keep_generations = 1 };
        old_layout(old);
        th_write_file(old, "var/lib/mkmachine/m/gen/.keep", "", 0644);
        int bound = th_bind_over(broken, old, "var/lib/mkmachine/m/gen");
        struct mkm_err err = {};
        struct deploy *d = NULL;
        int q = bound == 0 ? deploy_begin(&octx, "m", &d, &err) : 0;
        deploy_free(d);
        th_unbind(old, "var/lib/mkmachine/m/gen");
        th_broken_listing_done(host);
        assert_int_equal(bound, 0);
        char want[4096];
        snprintf(want, sizeof want, "cannot list %s/var/lib/mkmachine/m/gen: Bad message", old);
        if (q != -EBADMSG || !strstr(err.msg, want))
                fail_msg("a migration whose gen/ cannot be listed: %d, '%s'\nwant '%s'", q, err.msg, want);
        assert_true(exists(old, "var/lib/mkmachine/m/digest"));        /* the old state is still all there */
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, old), 0);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

/* A kill or power loss at each point of a deploy, as the state it leaves, then recovery. */
static void test_recover(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("state");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        deploy_one(&ctx, "one", true);
        deploy_one(&ctx, "two", false);
        assert_false(exists(host, "etc/modules-load.d/mkmachine-m.conf"));

        /* After the swap, before the old tree was renamed: it is still at its staging name. */
        must_rename(host, "var/lib/machines/.#m.gen-1", "var/lib/machines/.#m.Xy12Zq");
        /* ... and before the host files were written: the old generation's that the new one has
         * otherwise or not at all were retired before the swap, with the marker. */
        assert_int_equal(unlink_in(host, "etc/systemd/nspawn/m.nspawn"), 0);
        th_write_file(host, "var/lib/mkmachine/m/host-pending", "", 0644);
        /* temporaries of a dead process, and of a live one (ours) */
        pid_t dead = fork();
        if (dead == 0)
                _exit(0);
        assert_int_equal(waitpid(dead, NULL, 0), dead);
        char tmp[128], mine[128];
        snprintf(tmp, sizeof tmp, "etc/systemd/nspawn/.#m.nspawn.%d.AbC123", (int)dead);
        snprintf(mine, sizeof mine, "var/lib/mkmachine/m/.#x.%d.AbC123", (int)getpid());
        th_write_file(host, tmp, "half", 0644);
        th_write_file(host, mine, "mine", 0644);
        /* a generation being written when the build died */
        th_write_file(host, "var/lib/mkmachine/m/gen/.#3.123.AbCdEf/recipe", "r", 0644);
        /* a stray gen tree nobody claims, and another machine's trees */
        th_write_file(host, "var/lib/machines/.#m.gen-9/x", "x", 0644);
        th_write_file(host, "var/lib/machines/.#m.b.gen-1/x", "x", 0644);
        th_write_file(host, "var/lib/machines/.#mm.Ab12Cd/x", "x", 0644);
        recover(&ctx);
        _cleanup_free_ char *g1 = th_read_file(host, "var/lib/machines/.#m.gen-1/gen", NULL),
                            *ns = th_read_file(host, "etc/systemd/nspawn/m.nspawn", NULL);
        assert_non_null(g1);
        assert_string_equal(g1, "one");
        assert_false(exists(host, "var/lib/machines/.#m.Xy12Zq"));
        assert_string_equal(ns, "# two\n");
        assert_false(exists(host, "etc/modules-load.d/mkmachine-m.conf"));
        assert_false(exists(host, "var/lib/mkmachine/m/host-pending"));
        assert_false(exists(host, tmp));
        assert_true(exists(host, mine));
        assert_false(exists(host, "var/lib/mkmachine/m/gen/.#3.123.AbCdEf"));
        assert_false(exists(host, "var/lib/machines/.#m.gen-9"));
        assert_true(exists(host, "var/lib/machines/.#m.b.gen-1"));
        assert_true(exists(host, "var/lib/machines/.#mm.Ab12Cd"));

        /* Before the swap: generation 3 written, its tree still staged. Never deployed: both go. */
        struct deploy *d = NULL;
        struct mkm_err err = {};
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_stage(d, &err), 0);
        struct stat st;
        assert_int_equal(fstat(d->root_fd, &st), 0);
        struct state_new_gen g = { .recipe = "", .recipe_path = "/r", .lock = "", .manifest = "three",
                                   .digest = "sha256:three", .root_dev = st.st_dev, .root_ino = st.st_ino };
        unsigned n = 0;
        assert_int_equal(state_write_gen(&ctx, d->state, &g, &n, &err), 0);
        assert_int_equal(n, 3);
        _cleanup_free_ char *staging = strdup(strrchr(d->staging, '/') + 1);
        free(d->staging);
        d->staging = NULL;      /* as if killed: nothing cleans up */
        d = deploy_free(d);
        recover(&ctx);
        assert_false(exists(host, "var/lib/mkmachine/m/gen/3"));
        char p[256];
        snprintf(p, sizeof p, "var/lib/machines/%s", staging);
        assert_false(exists(host, p));
        _cleanup_free_ char *live = th_read_file(host, "var/lib/machines/m/gen", NULL);
        assert_string_equal(live, "two");

        /* A generation whose tree is gone is removed; the live one never. */
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, strcat(strcpy(p, host), "/var/lib/machines/.#m.gen-1")), 0);
        recover(&ctx);
        assert_false(exists(host, "var/lib/mkmachine/m/gen/1"));
        assert_true(exists(host, "var/lib/mkmachine/m/gen/2"));
        assert_true(exists(host, "var/lib/machines/m/gen"));
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

static int set_immutable(const char *path, bool on) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        int flags = 0;
        int r = ioctl(fd, FS_IOC_GETFLAGS, &flags);
        if (r == 0) {
                flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
                r = ioctl(fd, FS_IOC_SETFLAGS, &flags);
        }
        close(fd);
        return r;
}

/* A generation's state removed by a build that dies midway (here: a file it cannot remove)
 * is no longer a generation at all: never one without its meta, which state_load() would refuse
 * ("cannot read .../gen/N/meta") so that every later build of the machine failed; what is left
 * has a ".#" name, which recovery removes. */
static void test_remove_gen_interrupted(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("state");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        deploy_one(&ctx, "one", true);
        deploy_one(&ctx, "two", false);
        char gen1[512], stuck[512], left[512];
        snprintf(gen1, sizeof gen1, "%s/var/lib/mkmachine/m/gen/1", host);
        snprintf(stuck, sizeof stuck, "%s/zz-stuck", gen1);
        snprintf(left, sizeof left, "var/lib/mkmachine/m/gen/.#rm.1.%d", (int)getpid());
        th_write_file(gen1, "zz-stuck", "x", 0644);
        if (set_immutable(stuck, true) < 0)
                skip();         /* the file system has no immutable flag: said by the runner */
        assert_true(state_remove_gen_dir(gen1) < 0);
        assert_false(exists(host, "var/lib/mkmachine/m/gen/1"));
        assert_true(exists(host, left));
        struct machine_state *s = NULL;
        struct mkm_err err = {};
        if (state_load(&ctx, "m", &s, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(s->n_gens, 1);
        s = state_free(s);
        char moved[512];
        snprintf(moved, sizeof moved, "%s/%s/zz-stuck", host, left);
        assert_int_equal(set_immutable(moved, false), 0);
        recover(&ctx);
        assert_false(exists(host, left));
        assert_true(exists(host, "var/lib/mkmachine/m/gen/2"));
        assert_int_equal(state_remove_gen_dir(gen1), -ENOENT);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

/* Host files changed, added or removed by hand: recovery leaves them (only an interrupted swap,
 * the marker, makes it rewrite them), state_host_files_diff() reports each, and a rebuild, rm or
 * rollback is refused for what it would throw away (not for a removed one) unless --force. */
static void test_host_by_hand(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("state");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        deploy_one(&ctx, "one", false);
        deploy_one(&ctx, "two", false);
        /* A real manifest for the live tree, so that the drift check finds none. */
        struct mkm_err merr = {};
        char tree[512], digest[MANIFEST_DIGEST_LEN];
        snprintf(tree, sizeof tree, "%s/var/lib/machines/m", host);
        _cleanup_close_ int tfd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *manifest = NULL;
        assert_true(tfd >= 0);
        if (manifest_build(&ctx, tfd, -1, &manifest, digest, &merr) < 0)
                fail_msg("manifest_build: %s", merr.msg);
        th_write_file(host, "var/lib/mkmachine/m/gen/2/manifest", manifest, 0644);
        th_write_file(host, "etc/systemd/nspawn/m.nspawn", "# mine\n", 0644);
        th_write_file(host, "etc/modules-load.d/mkmachine-m.conf", "fuse\n", 0644);
        recover(&ctx);
        _cleanup_free_ char *ns = th_read_file(host, "etc/systemd/nspawn/m.nspawn", NULL);
        assert_string_equal(ns, "# mine\n");
        assert_true(exists(host, "etc/modules-load.d/mkmachine-m.conf"));

        struct mkm_err err = {};
        struct machine_state *s = NULL;
        assert_int_equal(state_load(&ctx, "m", &s, &err), 0);
        struct state_host_diff *hd = NULL;
        size_t n = 0;
        assert_int_equal(state_host_files_diff(&ctx, s, &hd, &n, &err), 0);
        assert_int_equal(n, 2);
        char want[512];
        snprintf(want, sizeof want, "%s/etc/systemd/nspawn/m.nspawn", host);
        bool seen_changed = false, seen_added = false;
        for (size_t i = 0; i < n; i++) {
                if (hd[i].change == STATE_HOST_CHANGED) {
                        assert_string_equal(hd[i].path, want);
                        seen_changed = true;
                } else if (hd[i].change == STATE_HOST_ADDED) {
                        assert_non_null(strstr(hd[i].path, "/etc/modules-load.d/mkmachine-m.conf"));
                        seen_added = true;
                }
        }
        assert_true(seen_changed && seen_added);
        state_host_diffs_free(hd, n);
        state_free(s);

        /* Refused, naming both; the files stay. */
        struct deploy *d = NULL;
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "replace", &err), -MKM_E_REFUSED);
        assert_non_null(strstr(err.msg, "m.nspawn was changed by hand since generation 2"));
        assert_non_null(strstr(err.msg, "mkmachine-m.conf was added by hand (generation 2 has none)"));
        d = deploy_free(d);
        ctx.force = true;       /* --force: a warning, and on */
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "replace", &err), 0);
        d = deploy_free(d);
        ctx.force = false;
        free(ns);
        ns = th_read_file(host, "etc/systemd/nspawn/m.nspawn", NULL);
        assert_string_equal(ns, "# mine\n");

        /* A removed one is reported, is no loss, and stays removed until a swap writes it. */
        assert_int_equal(unlink_in(host, "etc/systemd/nspawn/m.nspawn"), 0);
        assert_int_equal(unlink_in(host, "etc/modules-load.d/mkmachine-m.conf"), 0);
        recover(&ctx);
        assert_false(exists(host, "etc/systemd/nspawn/m.nspawn"));
        assert_int_equal(state_load(&ctx, "m", &s, &err), 0);
        assert_int_equal(state_host_files_diff(&ctx, s, &hd, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(hd[0].change, STATE_HOST_REMOVED);
        assert_string_equal(state_host_change_to_string(hd[0].change), "removed");
        state_host_diffs_free(hd, n);
        state_free(s);
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_check_replaceable(&ctx, d, "replace", &err), 0);
        d = deploy_free(d);
        deploy_one(&ctx, "three", false);
        free(ns);
        ns = th_read_file(host, "etc/systemd/nspawn/m.nspawn", NULL);
        assert_string_equal(ns, "# three\n");
        assert_false(exists(host, "var/lib/mkmachine/m/host-pending"));

        /* Not a regular file: a symlink to the very content, or a FIFO (which a read would wait
         * on), is changed; a file where a directory of a host path should be is nothing there. */
        char fifo[512], target[512];
        snprintf(target, sizeof target, "%s/elsewhere", host);
        th_write_file(host, "elsewhere", "# three\n", 0644);
        assert_int_equal(unlink_in(host, "etc/systemd/nspawn/m.nspawn"), 0);
        snprintf(fifo, sizeof fifo, "%s/etc/systemd/nspawn/m.nspawn", host);
        assert_int_equal(symlink(target, fifo), 0);
        th_write_file(host, "etc/systemd/system/systemd-nspawn@m.service.d", "in the way\n", 0644);
        assert_int_equal(state_load(&ctx, "m", &s, &err), 0);
        assert_int_equal(state_host_files_diff(&ctx, s, &hd, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(hd[0].change, STATE_HOST_CHANGED);
        state_host_diffs_free(hd, n);
        state_free(s);
        assert_int_equal(unlink(fifo), 0);
        assert_int_equal(mkfifo(fifo, 0644), 0);
        assert_int_equal(state_load(&ctx, "m", &s, &err), 0);
        assert_int_equal(state_host_files_diff(&ctx, s, &hd, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(hd[0].change, STATE_HOST_CHANGED);
        state_host_diffs_free(hd, n);
        state_free(s);
        /* A swap (what --force lets through) replaces the FIFO with a regular file: no read
         * waits on it. */
        assert_int_equal(unlink_in(host, "etc/systemd/system/systemd-nspawn@m.service.d"), 0);
        deploy_one(&ctx, "four", false);
        struct stat fst;
        assert_int_equal(lstat(fifo, &fst), 0);
        assert_true(S_ISREG(fst.st_mode));
        free(ns);
        ns = th_read_file(host, "etc/systemd/nspawn/m.nspawn", NULL);
        assert_string_equal(ns, "# four\n");
        /* And a symlink to the same content is replaced too, by a regular file. */
        assert_int_equal(unlink(fifo), 0);
        assert_int_equal(symlink(target, fifo), 0);
        deploy_one(&ctx, "five", false);
        assert_int_equal(lstat(fifo, &fst), 0);
        assert_true(S_ISREG(fst.st_mode));

        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

/* The swap happened but the host files could not be written: the commit fails saying so, the
 * marker stays, and the next command's recovery writes them once it can. */
static void test_host_install_fails(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("state");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        deploy_one(&ctx, "one", false);
        th_write_file(host, "etc/modules-load.d", "in the way\n", 0644);      /* not a directory */
        struct deploy *d = NULL;
        struct mkm_err err = {};
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_stage(d, &err), 0);
        assert_int_equal(fs_write_file_at(d->root_fd, "gen", "two", 3, 0644), 0);
        struct state_host_file hf[] = { { "etc/systemd/nspawn/m.nspawn", "# two\n" },
                                        { "etc/modules-load.d/mkmachine-m.conf", "fuse\n" } };
        struct state_new_gen g = { .recipe = "r\n", .recipe_path = "/r", .lock = "l\n", .manifest = "two",
                                   .digest = "sha256:two", .host = hf, .n_host = 2 };
        unsigned n = 0;
        assert_true(deploy_commit(&ctx, d, &g, &n, &err) < 0);
        assert_non_null(strstr(err.msg, "machine 'm' is deployed, but its host files are not"));
        d = deploy_free(d);
        _cleanup_free_ char *live = th_read_file(host, "var/lib/machines/m/gen", NULL);
        assert_string_equal(live, "two");
        assert_true(exists(host, "var/lib/mkmachine/m/host-pending"));
        assert_int_equal(unlink_in(host, "etc/modules-load.d"), 0);
        recover(&ctx);
        _cleanup_free_ char *ml = th_read_file(host, "etc/modules-load.d/mkmachine-m.conf", NULL),
                            *ns = th_read_file(host, "etc/systemd/nspawn/m.nspawn", NULL);
        assert_non_null(ml);
        assert_string_equal(ml, "fuse\n");
        assert_string_equal(ns, "# two\n");
        assert_false(exists(host, "var/lib/mkmachine/m/host-pending"));

        /* The same for a rollback (to generation 1, whose .nspawn cannot be written). */
        char nsdir[512];
        snprintf(nsdir, sizeof nsdir, "%s/etc/systemd/nspawn", host);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, nsdir), 0);
        th_write_file(host, "etc/systemd/nspawn", "in the way\n", 0644);
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        unsigned from = 0, to = 0;
        assert_true(deploy_rollback(&ctx, d, &from, &to, &err) < 0);
        assert_non_null(strstr(err.msg, "machine 'm' is rolled back, but its host files are not"));
        d = deploy_free(d);
        free(live);
        live = th_read_file(host, "var/lib/machines/m/gen", NULL);
        assert_string_equal(live, "one");
        assert_true(exists(host, "var/lib/mkmachine/m/host-pending"));
        assert_int_equal(unlink_in(host, "etc/systemd/nspawn"), 0);
        recover(&ctx);
        free(ns);
        ns = th_read_file(host, "etc/systemd/nspawn/m.nspawn", NULL);
        assert_non_null(ns);
        assert_string_equal(ns, "# one\n");
        assert_false(exists(host, "etc/modules-load.d/mkmachine-m.conf"));
        assert_false(exists(host, "var/lib/mkmachine/m/host-pending"));
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

/* Generation N's meta with another device number in root= (as after a reboot renumbered it). */
static void renumber_device(const char *host, unsigned gen) {
        char rel[128];
        snprintf(rel, sizeof rel, "var/lib/mkmachine/m/gen/%u/meta", gen);
        _cleanup_free_ char *meta = th_read_file(host, rel, NULL);
        assert_non_null(meta);
        char *root = strstr(meta, "\nroot=");
        assert_non_null(root);
        char out[4096];
        snprintf(out, sizeof out, "%.*s\nroot=999%s", (int)(root - meta), meta, root + 6);
        th_write_file(host, rel, out, 0644);
}

/* Trees are matched to generations by inode: a changed device number loses nothing, and a tree
 * at a generation's name that is not its tree stops recovery before it removes anything. */
static void test_recover_identity(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("state");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        struct mkm_err err = {};
        deploy_one(&ctx, "one", false);
        deploy_one(&ctx, "two", false);
        renumber_device(host, 1);
        renumber_device(host, 2);
        recover(&ctx);
        struct machine_state *s = NULL;
        assert_int_equal(state_load(&ctx, "m", &s, &err), 0);
        assert_int_equal(s->n_gens, 2);
        assert_non_null(s->live);
        assert_int_equal(s->live->gen, 2);
        assert_non_null(s->gens[0].tree);
        s = state_free(s);
        assert_true(exists(host, "var/lib/machines/.#m.gen-1/gen"));
        /* and the next build goes on from there */
        assert_int_equal(deploy_one(&ctx, "three", false), 3);
        assert_true(exists(host, "var/lib/machines/.#m.gen-2/gen"));
        assert_false(exists(host, "var/lib/machines/.#m.gen-1"));

        /* generation 2's tree copied back from a backup (a new inode at its name) */
        must_rename(host, "var/lib/machines/.#m.gen-2", "var/lib/machines/saved");
        th_write_file(host, "var/lib/machines/.#m.gen-2/gen", "two", 0644);
        struct deploy *d = NULL;
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), -MKM_E_REFUSED);
        assert_null(d);
        assert_non_null(strstr(err.msg, "/var/lib/machines/.#m.gen-2 is not the tree generation 2 of 'm' recorded"));
        assert_non_null(strstr(err.msg, "Nothing was removed"));
        assert_true(exists(host, "var/lib/machines/.#m.gen-2/gen"));
        assert_true(exists(host, "var/lib/mkmachine/m/gen/2/meta"));
        assert_true(exists(host, "var/lib/mkmachine/m/gen/3/meta"));
        /* moved out of the way, recovery goes on: generation 2 has no tree any more */
        must_rename(host, "var/lib/machines/.#m.gen-2", "var/lib/machines/copy");
        recover(&ctx);
        assert_false(exists(host, "var/lib/mkmachine/m/gen/2"));
        assert_true(exists(host, "var/lib/machines/copy/gen"));
        assert_true(exists(host, "var/lib/machines/saved/gen"));
        _cleanup_free_ char *live = th_read_file(host, "var/lib/machines/m/gen", NULL);
        assert_string_equal(live, "three");
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

/* Host files are removed only when mkmachine wrote them, and never a shared directory. */
static void test_host_files_not_ours(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("state");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        struct mkm_err err = {};
        /* no machine foo (a typo given to rm or rollback): someone's own files for it stay */
        th_write_file(host, "etc/systemd/nspawn/foo.nspawn", "[Exec]\n", 0644);
        th_write_file(host, "etc/systemd/system/systemd-nspawn@foo.service.d/mkmachine.conf", "[Service]\n", 0644);
        th_write_file(host, "etc/modules-load.d/mkmachine-foo.conf", "fuse\n", 0644);
        struct deploy *d = NULL;
        assert_int_equal(deploy_begin(&ctx, "foo", &d, &err), 0);
        assert_int_equal(d->state->n_gens, 0);
        assert_int_equal(deploy_remove(&ctx, d, &err), 0);
        d = deploy_free(d);
        assert_true(exists(host, "etc/systemd/nspawn/foo.nspawn"));
        assert_true(exists(host, "etc/systemd/system/systemd-nspawn@foo.service.d/mkmachine.conf"));
        assert_true(exists(host, "etc/modules-load.d/mkmachine-foo.conf"));
        assert_false(exists(host, "var/lib/mkmachine/foo"));

        /* machine m: its modules-load.d file goes, the directory (whose name has an "m") stays */
        deploy_one(&ctx, "one", true);
        assert_true(exists(host, "etc/modules-load.d/mkmachine-m.conf"));
        deploy_one(&ctx, "two", false);
        assert_false(exists(host, "etc/modules-load.d/mkmachine-m.conf"));
        assert_true(exists(host, "etc/modules-load.d/mkmachine-foo.conf"));
        assert_int_equal(unlink(strcat(strcpy((char[512]){ 0 }, host), "/etc/modules-load.d/mkmachine-foo.conf")), 0);
        deploy_one(&ctx, "three", true);
        deploy_one(&ctx, "four", false);
        assert_true(exists(host, "etc/modules-load.d"));
        /* rm: its own drop-in directory goes with the drop-in; the shared directories stay */
        th_write_file(host, "etc/systemd/system/systemd-nspawn@m.service.d/mkmachine.conf", "[Service]\n", 0644);
        assert_int_equal(deploy_begin(&ctx, "m", &d, &err), 0);
        assert_int_equal(deploy_remove(&ctx, d, &err), 0);
        d = deploy_free(d);
        assert_false(exists(host, "etc/systemd/nspawn/m.nspawn"));
        assert_false(exists(host, "etc/systemd/system/systemd-nspawn@m.service.d"));
        assert_true(exists(host, "etc/systemd/system"));
        assert_true(exists(host, "etc/systemd/nspawn"));
        assert_true(exists(host, "etc/systemd/nspawn/foo.nspawn"));
        assert_true(exists(host, "etc/modules-load.d"));
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

/* The layout of an older mkmachine: live tree m ("new"), .#m.prev ("old"), the state files. */
static void old_layout(const char *host) {
        th_write_file(host, "var/lib/machines/m/gen", "new", 0644);
        th_write_file(host, "var/lib/machines/.#m.prev/gen", "old", 0644);
        th_write_file(host, "var/lib/mkmachine/m/recipe", "[Machine]\nName=m\n", 0644);
        th_write_file(host, "var/lib/mkmachine/m/lock", "package a 1\npackage b 2\n", 0644);
        th_write_file(host, "var/lib/mkmachine/m/manifest", "./x type=file\n", 0644);
        th_write_file(host, "var/lib/mkmachine/m/digest", "sha256:abc\n", 0644);
        th_write_file(host, "etc/systemd/nspawn/m.nspawn", "[Exec]\n", 0644);
}

/* The layout before generations: state_dir/{recipe,lock,manifest,digest} and .#NAME.prev. */
static void test_migrate(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("state");
        struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
        old_layout(host);
        recover(&ctx);
        struct machine_state *s = NULL;
        struct mkm_err err = {};
        assert_int_equal(state_load(&ctx, "m", &s, &err), 0);
        assert_int_equal(s->n_gens, 2);
        assert_non_null(s->live);
        assert_int_equal(s->live->gen, 2);
        assert_string_equal(s->live->digest, "sha256:abc");
        assert_int_equal(s->live->packages, 2);
        assert_string_equal(s->gens[0].digest, "");
        assert_non_null(strstr(s->gens[0].tree, "/.#m.gen-1"));
        s = state_free(s);
        _cleanup_free_ char *old = th_read_file(host, "var/lib/machines/.#m.gen-1/gen", NULL),
                            *man = th_read_file(host, "var/lib/mkmachine/m/gen/2/manifest", NULL),
                            *hostcopy = th_read_file(host, "var/lib/mkmachine/m/gen/1/host/etc/systemd/nspawn/m.nspawn", NULL);
        assert_string_equal(old, "old");
        assert_string_equal(man, "./x type=file\n");
        assert_string_equal(hostcopy, "[Exec]\n");
        assert_false(exists(host, "var/lib/machines/.#m.prev"));
        assert_false(exists(host, "var/lib/mkmachine/m/digest"));
        assert_false(exists(host, "var/lib/mkmachine/m/manifest"));
        /* and the next build goes on from there */
        assert_int_equal(deploy_one(&ctx, "three", false), 3);
        assert_false(exists(host, "var/lib/machines/.#m.gen-1"));
        _cleanup_free_ char *kept = th_read_file(host, "var/lib/machines/.#m.gen-2/gen", NULL);
        assert_string_equal(kept, "new");

        /* an interrupted migration (generations written, old files still there) is finished */
        th_write_file(host, "var/lib/mkmachine/m/digest", "sha256:abc\n", 0644);
        recover(&ctx);
        assert_false(exists(host, "var/lib/mkmachine/m/digest"));
        assert_int_equal(state_load(&ctx, "m", &s, &err), 0);
        assert_int_equal(s->live->gen, 3);
        s = state_free(s);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

/* The old layout, with the generation a killed migration wrote for the tree at rel (1 or 2). */
static void old_layout_with_gen(const char *host, const char *rel, unsigned gen) {
        old_layout(host);
        char p[512], meta[256], mrel[64];
        snprintf(p, sizeof p, "%s/var/lib/machines/%s", host, rel);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        snprintf(meta, sizeof meta, "generation=%u\nroot=%llu:%llu\ndeployed=%u\n", gen,
                 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, gen);
        snprintf(mrel, sizeof mrel, "var/lib/mkmachine/m/gen/%u/meta", gen);
        th_write_file(host, mrel, meta, 0644);
}

/* A migration killed after its first generation: the next command finishes it, and the live
 * tree never loses the state the old files held. */
static void test_migrate_interrupted(void **state) {
        (void)state;
        for (int order = 0; order < 2; order++) {
                _cleanup_free_ char *host = th_tmpdir_new("state");
                struct mkm_ctx ctx = { .host_root = host, .keep_generations = 1 };
                if (order == 0)
                        old_layout_with_gen(host, ".#m.prev", 1);       /* an older mkmachine: prev first */
                else
                        old_layout_with_gen(host, "m", 2);              /* this one: the live tree first */
                recover(&ctx);
                struct machine_state *s = NULL;
                struct mkm_err err = {};
                assert_int_equal(state_load(&ctx, "m", &s, &err), 0);
                assert_int_equal(s->n_gens, 2);
                assert_non_null(s->live);
                assert_int_equal(s->live->gen, 2);
                if (order == 0)
                        assert_string_equal(s->live->digest, "sha256:abc");
                assert_non_null(s->gens[0].tree);
                assert_non_null(strstr(s->gens[0].tree, "/.#m.gen-1"));
                s = state_free(s);
                _cleanup_free_ char *old = th_read_file(host, "var/lib/machines/.#m.gen-1/gen", NULL);
                assert_string_equal(old, "old");
                assert_false(exists(host, "var/lib/mkmachine/m/digest"));
                if (order == 0) {
                        _cleanup_free_ char *recipe = th_read_file(host, "var/lib/mkmachine/m/gen/2/recipe", NULL);
                        assert_string_equal(recipe, "[Machine]\nName=m\n");
                }
                assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_meta),
                cmocka_unit_test(test_load),
                cmocka_unit_test(test_listings_fail),
                cmocka_unit_test(test_recover),
                cmocka_unit_test(test_remove_gen_interrupted),
                cmocka_unit_test(test_host_by_hand),
                cmocka_unit_test(test_host_install_fails),
                cmocka_unit_test(test_host_files_not_ours),
                cmocka_unit_test(test_recover_identity),
                cmocka_unit_test(test_migrate),
                cmocka_unit_test(test_migrate_interrupted),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
