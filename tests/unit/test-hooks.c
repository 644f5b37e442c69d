/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/hooks and builder/hostinfo on temporary trees and a temporary host root:
 * authorized keys (content, modes, owners, private keys refused), SSH host keys removed and made
 * at first boot, the FUSE tmpfiles rule per systemd version, daemon.json merging (exact text and
 * every refusal), Copy= (modes, owners from the tree's passwd/group, directories, symlinks, hostile
 * destinations), the networkd file, PrivateUsers= values, the host files (content, atomic
 * replacement, stale removal), the precheck warnings and the whole hooks_apply() with units,
 * Run= commands and the ownership shift last (the shift itself: test-shift.c). */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <linux/capability.h>

#include <cmocka.h>

#include "ctx.h"
#include "helpers.h"
#include "hooks.h"
#include "normalize.h"
#include "hostinfo.h"
#include "recipe.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strv.h"

struct fixture {
        char top[64];           /* holds root/ (the tree), host/ (the host root), src/ (beside the recipe) */
        char root[128], host[128], src[128];
        int rootfd;
        char **warnings, **infos;
        struct mkm_ctx ctx;
};

static void on_event(void *userdata, const struct mkm_event *ev) {
        struct fixture *f = userdata;
        if (ev->type != MKM_EV_LOG)
                return;
        if (ev->level == MKM_LOG_WARNING)
                assert_int_equal(strv_push(&f->warnings, ev->text), 0);
        else if (ev->level == MKM_LOG_INFO)
                assert_int_equal(strv_push(&f->infos, ev->text), 0);
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        strcpy(f->top, "/tmp/mkm-test-hooks.XXXXXX");
        assert_non_null(mkdtemp(f->top));
        snprintf(f->root, sizeof f->root, "%s/root", f->top);
        snprintf(f->host, sizeof f->host, "%s/host", f->top);
        snprintf(f->src, sizeof f->src, "%s/src", f->top);
        assert_int_equal(mkdir(f->root, 0755), 0);
        assert_int_equal(mkdir(f->host, 0755), 0);
        assert_int_equal(mkdir(f->src, 0755), 0);
        f->rootfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->rootfd >= 0);
        f->ctx = (struct mkm_ctx){ .host_root = f->host, .source_date_epoch = -1,
                                   .events = { .fn = on_event, .userdata = f } };
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        close(f->rootfd);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, f->top), 0);
        strv_free(f->warnings);
        strv_free(f->infos);
        free(f);
        return 0;
}

static bool exists_in(const char *dir, const char *path) {
        _cleanup_free_ char *full = fs_path_join(dir, path);
        struct stat st;
        return lstat(full, &st) == 0;
}

static struct recipe *load(struct fixture *f, const char *body) {
        _cleanup_free_ char *text = NULL, *name = NULL;
        assert_true(asprintf(&text, "[Machine]\nName=web\n[Bootstrap]\nDistribution=arch\nArchitecture=x86_64\n%s", body) > 0);
        assert_true(asprintf(&name, "%s/web.recipe", f->src) > 0);
        struct mkm_err err = {};
        struct recipe *r = NULL;
        int q = recipe_load_buffer(text, strlen(text), name, &r, &err);
        if (q < 0)
                fail_msg("recipe: %s", err.msg);
        return r;
}

static int count_entries(const char *dir) {
        DIR *d = opendir(dir);
        if (!d)
                return -1;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")))
                        n++;
        closedir(d);
        return n;
}

/* ---- RootAuthorizedKeys= ---------------------------------------------------------------- */

static void test_authorized_keys(void **state) {
        struct fixture *f = *state;
        th_write_file(f->src, "keys/admin.pub", "ssh-ed25519 AAAA admin@example\n", 0644);
        th_write_file(f->src, "keys/ops.pub", "ssh-rsa BBBB ops@example", 0644);       /* no final newline */
        th_write_file(f->root, "root/.ssh/authorized_keys", "ssh-ed25519 CCCC existing", 0644);
        assert_int_equal(chmod(f->root, 0755), 0);
        _cleanup_free_ char *root_ssh = fs_path_join(f->root, "root/.ssh");
        assert_int_equal(chmod(root_ssh, 0755), 0);
        _cleanup_(recipe_freep) struct recipe *r = load(f, "[Hooks]\nRootAuthorizedKeys=keys/admin.pub keys/ops.pub\n");
        struct mkm_err err = {};
        assert_int_equal(hooks_authorized_keys(&f->ctx, r, f->rootfd, 1700000000, &err), 0);
        _cleanup_free_ char *ak = th_read_file(f->root, "root/.ssh/authorized_keys", NULL);
        assert_string_equal(ak, "ssh-ed25519 CCCC existing\nssh-ed25519 AAAA admin@example\nssh-rsa BBBB ops@example\n");
        struct stat st = th_lstat_in(f->root, "root/.ssh/authorized_keys");
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_uid, 0);
        assert_int_equal(st.st_gid, 0);
        assert_int_equal(st.st_mtime, 1700000000);
        st = th_lstat_in(f->root, "root/.ssh");
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_true(S_ISDIR(st.st_mode));
}

static void test_authorized_keys_fresh_and_private(void **state) {
        struct fixture *f = *state;
        th_write_file(f->src, "keys/admin.pub", "ssh-ed25519 AAAA admin@example\n", 0644);
        th_write_file(f->src, "keys/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nxyz\n-----END OPENSSH PRIVATE KEY-----\n", 0600);
        _cleanup_(recipe_freep) struct recipe *r = load(f, "[Hooks]\nRootAuthorizedKeys=keys/admin.pub\n");
        struct mkm_err err = {};
        assert_int_equal(hooks_authorized_keys(&f->ctx, r, f->rootfd, -1, &err), 0);
        _cleanup_free_ char *ak = th_read_file(f->root, "root/.ssh/authorized_keys", NULL);
        assert_string_equal(ak, "ssh-ed25519 AAAA admin@example\n");
        assert_int_equal(th_lstat_in(f->root, "root").st_mode & 07777, 0700);

        _cleanup_(recipe_freep) struct recipe *bad = load(f, "[Hooks]\nRootAuthorizedKeys=keys/id_ed25519\n");
        assert_int_equal(hooks_authorized_keys(&f->ctx, bad, f->rootfd, -1, &err), -MKM_E_RECIPE);
        _cleanup_free_ char *msg = NULL;
        assert_true(asprintf(&msg, "[Hooks] RootAuthorizedKeys=%s/keys/id_ed25519: this is a private key; refusing to "
                                   "copy it into the machine (name the .pub file)", f->src) > 0);
        assert_string_equal(err.msg, msg);
        /* Nothing was appended. */
        _cleanup_free_ char *ak2 = th_read_file(f->root, "root/.ssh/authorized_keys", NULL);
        assert_string_equal(ak2, "ssh-ed25519 AAAA admin@example\n");
}

static void test_authorized_keys_symlinked_ssh_dir(void **state) {
        struct fixture *f = *state;
        /* A hostile tree points /root/.ssh out of the root: the write stays inside. */
        th_write_file(f->src, "keys/admin.pub", "ssh-ed25519 AAAA admin@example\n", 0644);
        _cleanup_free_ char *outside = fs_path_join(f->top, "outside");
        assert_int_equal(mkdir(outside, 0755), 0);
        _cleanup_free_ char *rootdir = fs_path_join(f->root, "root");
        assert_int_equal(mkdir(rootdir, 0700), 0);
        _cleanup_free_ char *link = fs_path_join(f->root, "root/.ssh");
        assert_int_equal(symlink("../../../outside", link), 0);
        _cleanup_(recipe_freep) struct recipe *r = load(f, "[Hooks]\nRootAuthorizedKeys=keys/admin.pub\n");
        struct mkm_err err = {};
        /* Inside the machine the link dangles (/outside does not exist there): refused. */
        assert_int_equal(hooks_authorized_keys(&f->ctx, r, f->rootfd, -1, &err), -EEXIST);
        assert_string_equal(err.msg, "[Hooks] RootAuthorizedKeys=: cannot create /root/.ssh: File exists");
        assert_int_equal(count_entries(outside), 0);
        /* Once /outside exists in the machine, the link leads there, never to the host's. */
        _cleanup_free_ char *inside = fs_path_join(f->root, "outside");
        assert_int_equal(mkdir(inside, 0755), 0);
        assert_int_equal(hooks_authorized_keys(&f->ctx, r, f->rootfd, -1, &err), 0);
        assert_int_equal(count_entries(outside), 0);
        _cleanup_free_ char *ak = th_read_file(f->root, "outside/authorized_keys", NULL);
        assert_string_equal(ak, "ssh-ed25519 AAAA admin@example\n");
        assert_int_equal(th_lstat_in(f->root, "outside").st_mode & 07777, 0700);
}

/* ---- SSH host keys ------------------------------------------------------------------------ */

static void test_ssh_host_keys(void **state) {
        struct fixture *f = *state;
        th_write_file(f->root, "etc/ssh/ssh_host_ed25519_key", "secret", 0600);
        th_write_file(f->root, "etc/ssh/ssh_host_ed25519_key.pub", "pub", 0644);
        th_write_file(f->root, "etc/ssh/ssh_host_rsa_key", "secret", 0600);
        th_write_file(f->root, "etc/ssh/sshd_config", "PermitRootLogin prohibit-password\n", 0644);
        th_write_file(f->root, "usr/bin/ssh-keygen", "#!/bin/sh\n", 0755);
        const char *unit = NULL;
        struct mkm_err err = {};
        assert_int_equal(hooks_ssh_host_keys(&f->ctx, f->rootfd, 1700000000, &unit, &err), 0);
        /* The keys themselves are normalize's business (after Run=): every type, every half. */
        th_write_file(f->root, "etc/ssh/ssh_host_dsa_key-cert.pub", "cert", 0644);
        assert_int_equal(normalize_remove_generated(&f->ctx, f->rootfd, &err), 0);
        assert_false(exists_in(f->root, "etc/ssh/ssh_host_ed25519_key"));
        assert_false(exists_in(f->root, "etc/ssh/ssh_host_ed25519_key.pub"));
        assert_false(exists_in(f->root, "etc/ssh/ssh_host_rsa_key"));
        assert_false(exists_in(f->root, "etc/ssh/ssh_host_dsa_key-cert.pub"));
        assert_true(exists_in(f->root, "etc/ssh/sshd_config"));
        assert_non_null(unit);
        assert_string_equal(unit, "mkmachine-ssh-keygen.service");
        _cleanup_free_ char *text = th_read_file(f->root, "etc/systemd/system/mkmachine-ssh-keygen.service", NULL);
        assert_non_null(text);
        assert_non_null(strstr(text, "\nConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n"));
        assert_non_null(strstr(text, "\nExecStart=/usr/bin/ssh-keygen -A\n"));
        assert_non_null(strstr(text, "\nBefore=ssh.service sshd.service ssh.socket sshd.socket\n"));
        assert_non_null(strstr(text, "\n[Install]\nWantedBy=multi-user.target\n"));

        /* Arch: the distribution's own unit does it. */
        th_write_file(f->root, "usr/lib/systemd/system/sshdgenkeys.service", "[Unit]\nDescription=SSH Key Generation\n", 0644);
        unit = "x";
        assert_int_equal(hooks_ssh_host_keys(&f->ctx, f->rootfd, 1700000000, &unit, &err), 0);
        assert_null(unit);
}

static void test_ssh_no_openssh(void **state) {
        struct fixture *f = *state;
        const char *unit = "x";
        struct mkm_err err = {};
        assert_int_equal(hooks_ssh_host_keys(&f->ctx, f->rootfd, -1, &unit, &err), 0);
        assert_null(unit);
        assert_false(exists_in(f->root, "etc/systemd/system/mkmachine-ssh-keygen.service"));
}

/* ---- Fuse= -------------------------------------------------------------------------------- */

static void test_fuse_tree(void **state) {
        struct fixture *f = *state;
        _cleanup_(recipe_freep) struct recipe *r = load(f, "[Hooks]\nFuse=yes\n");
        struct mkm_err err = {};
        assert_int_equal(hooks_fuse_tree(&f->ctx, r, f->rootfd, 257, -1, &err), 0);
        assert_false(exists_in(f->root, "etc/tmpfiles.d/mkmachine-fuse.conf"));
        assert_int_equal(hooks_fuse_tree(&f->ctx, r, f->rootfd, 252, -1, &err), 0);
        _cleanup_free_ char *t = th_read_file(f->root, "etc/tmpfiles.d/mkmachine-fuse.conf", NULL);
        assert_string_equal(t, "# Generated by mkmachine (Fuse=yes): systemd-nspawn before v257 does not create /dev/fuse.\n"
                               "c /dev/fuse 0666 root root - 10:229\n");
        assert_int_equal(th_lstat_in(f->root, "etc/tmpfiles.d/mkmachine-fuse.conf").st_mode & 07777, 0644);
}

/* ---- daemon.json -------------------------------------------------------------------------- */

static void json_ok(const char *in, const char *expect) {
        _cleanup_free_ char *out = NULL;
        struct mkm_err err = {};
        int q = hooks_json_set_string(in, in ? strlen(in) : 0, "storage-driver", "overlay2", &out, &err);
        if (q < 0)
                fail_msg("'%s': %s", in, err.msg);
        assert_string_equal(out, expect);
}

/* A refusal: -MKM_E_PARSE, the byte where it was found, and (when ours, not json-c's wording)
 * the whole message. */
static void json_bad_n(const char *in, size_t len, long at, const char *msg) {
        _cleanup_free_ char *out = NULL;
        struct mkm_err err = {};
        assert_int_equal(hooks_json_set_string(in, len, "storage-driver", "overlay2", &out, &err), -MKM_E_PARSE);
        assert_null(out);
        if (at >= 0) {
                char prefix[64];
                snprintf(prefix, sizeof prefix, "not a JSON object (at byte %ld: ", at);
                if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
                        fail_msg("'%s': '%s' does not start with '%s'", in, err.msg, prefix);
        }
        if (msg)
                assert_string_equal(err.msg, msg);
}

static void json_bad(const char *in, long at, const char *msg) {
        json_bad_n(in, strlen(in), at, msg);
}

static void test_json(void **state) {
        (void)state;
        json_ok(NULL, "{\n  \"storage-driver\": \"overlay2\"\n}\n");
        json_ok(" \n", "{\n  \"storage-driver\": \"overlay2\"\n}\n");
        json_ok("{}", "{\n  \"storage-driver\": \"overlay2\"\n}\n");
        /* Flat objects come out as before json-c (tests/integration/arch-hooks.sh compares bytes). */
        json_ok("{\"log-driver\":\"journald\",\"storage-driver\":\"vfs\",\"debug\":true}",
                "{\n  \"log-driver\": \"journald\",\n  \"storage-driver\": \"overlay2\",\n  \"debug\": true\n}\n");
        /* Nested values keep their content; numbers keep their spelling. */
        json_ok("{\n\t\"registry-mirrors\" : [ \"http://127.0.0.1:5000\" ,\"x\\\"y\\u00e9\\/\" ],\n"
                " \"log-opts\": {\"max-size\": \"10m\", \"n\": [-1.5e3, 0, null, false, {\"k\": -9223372036854775807}, []]}\n}\n",
                "{\n  \"registry-mirrors\": [\n    \"http://127.0.0.1:5000\",\n    \"x\\\"y\xc3\xa9/\"\n  ],\n"
                "  \"log-opts\": {\n    \"max-size\": \"10m\",\n    \"n\": [\n      -1.5e3,\n      0,\n      null,\n"
                "      false,\n      {\n        \"k\": -9223372036854775807\n      },\n      [\n      ]\n    ]\n  },\n"
                "  \"storage-driver\": \"overlay2\"\n}\n");
        /* A repeated member: the last value, at the first one's place. */
        json_ok("{\"a\": 1, \"b\": 2, \"a\": 3}", "{\n  \"a\": 3,\n  \"b\": 2,\n  \"storage-driver\": \"overlay2\"\n}\n");
        /* What we write is quoted by json-c: a quote, a backslash and a control character. */
        _cleanup_free_ char *out = NULL;
        struct mkm_err err = {};
        assert_int_equal(hooks_json_set_string("{}", 2, "k\"\\", "v\"\\\x01", &out, &err), 0);
        assert_string_equal(out, "{\n  \"k\\\"\\\\\": \"v\\\"\\\\\\u0001\"\n}\n");

        json_bad("[]", 0, "not a JSON object (at byte 0: expected '{')");
        json_bad(" \n 1", 3, "not a JSON object (at byte 3: expected '{')");
        json_bad("\"s\"", 0, NULL);
        json_bad("{\"a\" 1}", 5, NULL);
        json_bad("{\"a\": 1,}", 8, NULL);
        json_bad("{'a': 1,}", -1, NULL);
        json_bad("{\"a\": 01}", 8, NULL);
        json_bad("{\"a\": tru}", 9, NULL);
        json_bad("{\"a\": \"x\\q\"}", 9, NULL);
        json_bad("{\"a\": \"x", 8, "not a JSON object (at byte 8: unexpected end of data)");
        json_bad("{\"a\": 1} x", 9, NULL);
        json_bad_n("{\"a\": 1} \0x", 11, 9, "not a JSON object (at byte 9: trailing data after the object)");
        json_bad_n("{\"a\": 1}\0", 9, 8, "not a JSON object (at byte 8: trailing data after the object)");
        json_bad("{\"a\": [1 2]}", 9, NULL);
        json_bad("{\"a\": \"\xff\"}", 7, NULL);             /* not UTF-8 */
        /* Nesting is capped. */
        char deep[300];
        memset(deep, '[', sizeof deep);
        memcpy(deep, "{\"a\": ", 6);
        deep[sizeof deep - 1] = 0;
        json_bad(deep, 69, NULL);
        /* What json-c takes but would write back as something else. */
        static const char *const unfaithful[][2] = {
                { "{\"a\": NaN}", "a number that is not JSON (NaN, Infinity, '1.')" },
                { "{\"a\": [-Infinity]}", "a number that is not JSON (NaN, Infinity, '1.')" },
                { "{\"a\": {\"b\": 1.}}", "a number that is not JSON (NaN, Infinity, '1.')" },
                { "{\"a\": 99999999999999999999}", "an integer outside the 64-bit range" },
                { "{\"a\": -99999999999999999999}", "an integer outside the 64-bit range" },
        };
        for (size_t i = 0; i < ELEMENTSOF(unfaithful); i++) {
                char msg[160];
                snprintf(msg, sizeof msg, "not a JSON object as Docker reads it (%s)", unfaithful[i][1]);
                json_bad(unfaithful[i][0], -1, msg);
        }
}

static void test_docker_tree(void **state) {
        struct fixture *f = *state;
        th_write_file(f->root, "etc/docker/daemon.json", "{\"log-driver\": \"journald\"}", 0600);
        _cleanup_(recipe_freep) struct recipe *r = load(f, "[Hooks]\nDockerStorageDriver=overlay2\n");
        struct mkm_err err = {};
        assert_int_equal(hooks_docker_tree(&f->ctx, r, f->rootfd, -1, &err), 0);
        _cleanup_free_ char *t = th_read_file(f->root, "etc/docker/daemon.json", NULL);
        assert_string_equal(t, "{\n  \"log-driver\": \"journald\",\n  \"storage-driver\": \"overlay2\"\n}\n");
        assert_int_equal(th_lstat_in(f->root, "etc/docker/daemon.json").st_mode & 07777, 0644);

        /* A symlink at daemon.json is read inside the tree, then replaced, never written through. */
        th_write_file(f->root, "srv/victim.json", "{\"victim\": true}", 0644);
        _cleanup_free_ char *dj = fs_path_join(f->root, "etc/docker/daemon.json");
        assert_int_equal(unlink(dj), 0);
        assert_int_equal(symlink("../../../../srv/victim.json", dj), 0);
        assert_int_equal(hooks_docker_tree(&f->ctx, r, f->rootfd, -1, &err), 0);
        _cleanup_free_ char *t2 = th_read_file(f->root, "etc/docker/daemon.json", NULL);
        assert_string_equal(t2, "{\n  \"victim\": true,\n  \"storage-driver\": \"overlay2\"\n}\n");
        assert_true(S_ISREG(th_lstat_in(f->root, "etc/docker/daemon.json").st_mode));
        _cleanup_free_ char *v = th_read_file(f->root, "srv/victim.json", NULL);
        assert_string_equal(v, "{\"victim\": true}");

        th_write_file(f->root, "etc/docker/daemon.json", "{oops", 0644);
        assert_int_equal(hooks_docker_tree(&f->ctx, r, f->rootfd, -1, &err), -MKM_E_PARSE);
        /* json-c's words for the reason; ours around them. */
        static const char want[] = "[Hooks] DockerStorageDriver=: /etc/docker/daemon.json in the machine: not a JSON "
                                   "object (at byte 1: ";
        if (strncmp(err.msg, want, strlen(want)) != 0)
                fail_msg("'%s'", err.msg);
}

/* ---- Copy= -------------------------------------------------------------------------------- */

static void tree_users(struct fixture *f) {
        th_write_file(f->root, "etc/passwd",
                   "root:x:0:0::/root:/bin/bash\n"
                   "mastodon:x:991:990::/var/lib/mastodon:/usr/bin/nologin\n"
                   "broken line\n", 0644);
        th_write_file(f->root, "etc/group", "root:x:0:\nmastodon:x:990:\nwww:x:33:mastodon\n", 0644);
}

/* The copy's own depth limit, the one check judges with: 256 levels below the source are copied,
 * 257 refuse the copy (check_copy_tree() in test-recipe says the same before fetching). */
static void test_copy_depth(void **state) {
        struct fixture *f = *state;
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "cd '%s' && mkdir -p files/deep/$(printf 'd/%%.0s' $(seq 256))", f->src);
        assert_int_equal(system(cmd), 0);
        _cleanup_(recipe_freep) struct recipe *r = load(f, "[Hooks]\nCopy=files/deep:/srv/deep\n");
        struct mkm_err err = {};
        if (hooks_copy(&f->ctx, r, f->rootfd, -1, &err) < 0)
                fail_msg("256 levels: %s", err.msg);
        char deepest[1024] = "srv/deep";
        for (int i = 0; i < 256; i++)
                strcat(deepest, "/d");
        assert_true(exists_in(f->root, deepest));
        snprintf(cmd, sizeof cmd, "cd '%s' && mkdir files/deep/$(printf 'd/%%.0s' $(seq 256))d", f->src);
        assert_int_equal(system(cmd), 0);
        err = (struct mkm_err){};
        assert_int_equal(hooks_copy(&f->ctx, r, f->rootfd, -1, &err), -ELOOP);
        assert_non_null(strstr(err.msg, "/src/files/deep:/srv/deep: the source is deeper than 256 levels"));

        /* a source directory that cannot be listed (th_broken_listing_new()): no copy */
        _cleanup_free_ char *broken = th_broken_listing_new(f->src);     /* f->src/broken/d */
        assert_non_null(strstr(broken, "/src/broken/d"));
        _cleanup_(recipe_freep) struct recipe *b = load(f, "[Hooks]\nCopy=broken/d:/srv/b\n");
        err = (struct mkm_err){};
        int q = hooks_copy(&f->ctx, b, f->rootfd, -1, &err);
        th_broken_listing_done(f->src);
        if (q != -EBADMSG || !strstr(err.msg, "/src/broken/d:/srv/b: cannot list the source directory: Bad message"))
                fail_msg("a source that cannot be listed: %d, '%s'", q, err.msg);
}

static void test_copy(void **state) {
        struct fixture *f = *state;
        tree_users(f);
        th_write_file(f->src, "files/motd", "hello\n", 0640);
        th_write_file(f->src, "files/app.conf", "x=1\n", 0644);
        th_write_file(f->src, "files/site/index.html", "<p>hi</p>\n", 0644);
        th_write_file(f->src, "files/site/bin/run", "#!/bin/sh\n", 04755);
        _cleanup_free_ char *ln = fs_path_join(f->src, "files/site/current");
        assert_int_equal(symlink("index.html", ln), 0);
        /* usr/lib exists, lib is an absolute symlink to it (Arch): a legitimate destination. */
        _cleanup_free_ char *usrlib = fs_path_join(f->root, "usr/lib");
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, usrlib, 0755), 0);
        _cleanup_free_ char *lib = fs_path_join(f->root, "lib");
        assert_int_equal(symlink("/usr/lib", lib), 0);
        /* A package's symlink the copy replaces rather than writes through. */
        th_write_file(f->root, "etc/target", "keep\n", 0644);
        _cleanup_free_ char *motdlink = fs_path_join(f->root, "etc/motd");
        assert_int_equal(symlink("target", motdlink), 0);

        _cleanup_(recipe_freep) struct recipe *r = load(f,
                "[Hooks]\n"
                "Copy=files/motd:/etc/motd\n"
                "Copy=files/app.conf:/etc/app/app.conf:0600:mastodon\n"
                "Copy=files/app.conf:/etc/app/www.conf:0640:mastodon:www\n"
                "Copy=files/app.conf:/etc/app/num.conf:0644:1234:55\n"
                "Copy=files/site:/srv/site:0750:mastodon\n"
                "Copy=files/app.conf:/lib/mkm/app.conf\n");
        struct mkm_err err = {};
        int q = hooks_copy(&f->ctx, r, f->rootfd, 1700000000, &err);
        if (q < 0)
                fail_msg("%s", err.msg);
        struct stat st = th_lstat_in(f->root, "etc/motd");
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0640);    /* the source's mode */
        assert_int_equal(st.st_uid, 0);
        assert_int_equal(st.st_mtime, 1700000000);
        _cleanup_free_ char *motd = th_read_file(f->root, "etc/motd", NULL), *target = th_read_file(f->root, "etc/target", NULL);
        assert_string_equal(motd, "hello\n");
        assert_string_equal(target, "keep\n");

        st = th_lstat_in(f->root, "etc/app/app.conf");
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_uid, 991);
        assert_int_equal(st.st_gid, 990);              /* the user's primary group in the tree */
        st = th_lstat_in(f->root, "etc/app/www.conf");
        assert_int_equal(st.st_uid, 991);
        assert_int_equal(st.st_gid, 33);
        st = th_lstat_in(f->root, "etc/app/num.conf");
        assert_int_equal(st.st_uid, 1234);
        assert_int_equal(st.st_gid, 55);
        st = th_lstat_in(f->root, "etc/app");
        assert_int_equal(st.st_mode & 07777, 0755);
        assert_int_equal(st.st_uid, 0);

        st = th_lstat_in(f->root, "srv/site");
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0750);
        assert_int_equal(st.st_uid, 991);
        /* every time the epoch, directories once their entries are in, links too */
        const char *const clamped[] = { "srv/site", "srv/site/bin", "srv/site/bin/run", "srv/site/current",
                                        "srv/site/index.html" };
        for (size_t i = 0; i < sizeof clamped / sizeof *clamped; i++)
                if (th_lstat_in(f->root, clamped[i]).st_mtime != 1700000000)
                        fail_msg("%s: mtime %lld, not the epoch", clamped[i],
                                 (long long)th_lstat_in(f->root, clamped[i]).st_mtime);
        st = th_lstat_in(f->root, "srv/site/bin/run");
        assert_int_equal(st.st_mode & 07777, 04755);   /* kept, setuid included */
        assert_int_equal(st.st_uid, 991);
        assert_int_equal(st.st_gid, 990);
        st = th_lstat_in(f->root, "srv/site/current");
        assert_true(S_ISLNK(st.st_mode));
        assert_int_equal(st.st_uid, 991);
        char buf[64] = {};
        _cleanup_free_ char *cur = fs_path_join(f->root, "srv/site/current");
        assert_int_equal(readlink(cur, buf, sizeof buf - 1), 10);
        assert_string_equal(buf, "index.html");
        _cleanup_free_ char *html = th_read_file(f->root, "srv/site/index.html", NULL);
        assert_string_equal(html, "<p>hi</p>\n");
        /* Through the absolute symlink, inside the tree. */
        _cleanup_free_ char *viaLib = th_read_file(f->root, "usr/lib/mkm/app.conf", NULL);
        assert_string_equal(viaLib, "x=1\n");
}

/* A source checked when the recipe was loaded and swapped for a symlink out of its directory
 * before the hook runs (a co-tenant's directory, during the download): what the hook opened is
 * judged again, and refused (a review's TOCTOU). */
static void test_sources_swapped(void **state) {
        struct fixture *f = *state;
        th_write_file(f->src, "files/motd", "hello\n", 0644);
        th_write_file(f->src, "keys/admin.pub", "ssh-ed25519 AAAA admin@example\n", 0644);
        th_write_file(f->host, "secret", "the builder's secret\n", 0600);
        th_write_file(f->src, "web.recipe",
                      "[Machine]\nName=web\n[Bootstrap]\nDistribution=arch\nPackages=base\n"
                      "[Hooks]\nCopy=files/motd:/etc/motd\nRootAuthorizedKeys=keys/admin.pub\n", 0644);
        _cleanup_free_ char *path = fs_path_join(f->src, "web.recipe");
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        struct mkm_err err = {};
        if (recipe_load(&f->ctx, path, &r, &err) < 0)       /* from a file: its directory counts */
                fail_msg("%s", err.msg);
        int v = recipe_validate_for_build(r, &err);
        if (v < 0)
                fail_msg("validate: %d %s", v, err.msg);
        _cleanup_free_ char *motd = fs_path_join(f->src, "files/motd"), *key = fs_path_join(f->src, "keys/admin.pub"),
                            *secret = fs_path_join(f->host, "secret");
        assert_int_equal(unlink(motd), 0);
        assert_int_equal(symlink(secret, motd), 0);
        assert_int_equal(hooks_copy(&f->ctx, r, f->rootfd, -1, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "the source is not beside the recipe now (it changed after the recipe was checked)"));
        assert_false(exists_in(f->root, "etc/motd"));
        assert_int_equal(unlink(key), 0);
        assert_int_equal(symlink(secret, key), 0);
        assert_int_equal(hooks_authorized_keys(&f->ctx, r, f->rootfd, -1, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "RootAuthorizedKeys="));
        assert_non_null(strstr(err.msg, "it changed after the recipe was checked"));

        /* The recipe's whole directory swapped for a link to another that holds the same names
         * (a third review: the sources were judged against the directory's realpath taken again,
         * which the link moved too, and a root-only file was copied). */
        _cleanup_free_ char *moved = NULL, *other = NULL;
        assert_true(asprintf(&moved, "%s.old", f->src) > 0 && asprintf(&other, "%s/elsewhere", f->top) > 0);
        assert_int_equal(rename(f->src, moved), 0);
        th_write_file(other, "files/motd", "the builder's secret\n", 0600);
        th_write_file(other, "keys/admin.pub", "ssh-ed25519 BBBB secret@host\n", 0600);
        assert_int_equal(symlink(other, f->src), 0);
        err = (struct mkm_err){};
        assert_int_equal(hooks_copy(&f->ctx, r, f->rootfd, -1, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "the source is not beside the recipe now"));
        assert_false(exists_in(f->root, "etc/motd"));
        err = (struct mkm_err){};
        assert_int_equal(hooks_authorized_keys(&f->ctx, r, f->rootfd, -1, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "not beside the recipe now"));
        assert_false(exists_in(f->root, "root/.ssh/authorized_keys"));
        assert_int_equal(unlink(f->src), 0);
        assert_int_equal(rename(moved, f->src), 0);
}

static void copy_fails(struct fixture *f, const char *line, int code, const char *fmt) {
        _cleanup_free_ char *body = NULL, *msg = NULL;
        assert_true(asprintf(&body, "[Hooks]\nCopy=%s\n", line) > 0);
        _cleanup_(recipe_freep) struct recipe *r = load(f, body);
        struct mkm_err err = {};
        assert_int_equal(hooks_copy(&f->ctx, r, f->rootfd, -1, &err), code);
        /* fmt holds one "%s" for the source directory. */
        const char *at = strstr(fmt, "%s");
        assert_non_null(at);
        assert_true(asprintf(&msg, "%.*s%s%s", (int)(at - fmt), fmt, f->src, at + 2) > 0);
        assert_string_equal(err.msg, msg);
}

static void test_copy_refusals(void **state) {
        struct fixture *f = *state;
        tree_users(f);
        th_write_file(f->src, "files/a", "a\n", 0644);
        _cleanup_free_ char *fifo = fs_path_join(f->src, "files/dir/fifo");
        th_write_file(f->src, "files/dir/ok", "ok\n", 0644);
        assert_int_equal(mkfifo(fifo, 0644), 0);
        /* etc/evil -> ../../../../outside: leads out of the root through "..". */
        _cleanup_free_ char *etc = fs_path_join(f->root, "etc");
        _cleanup_free_ char *evil = fs_path_join(f->root, "etc/evil");
        assert_int_equal(symlink("../../../../outside", evil), 0);
        th_write_file(f->root, "var/dir/x", "", 0644);

        copy_fails(f, "files/a:/etc/a:0644:nobody", -MKM_E_RECIPE,
                   "[Hooks] Copy=%s/files/a:/etc/a: user 'nobody' does not exist in the machine's /etc/passwd");
        copy_fails(f, "files/a:/etc/a:0644:mastodon:staff", -MKM_E_RECIPE,
                   "[Hooks] Copy=%s/files/a:/etc/a: group 'staff' does not exist in the machine's /etc/group");
        copy_fails(f, "files/a:/etc/evil/a", -MKM_E_UNSAFE_PATH,
                   "[Hooks] Copy=%s/files/a:/etc/evil/a: the destination leads out of the machine through a symlink "
                   "with '..'; refusing");
        copy_fails(f, "files/missing:/etc/m", -MKM_E_RECIPE,
                   "[Hooks] Copy=%s/files/missing:/etc/m: cannot open the source: No such file or directory");
        copy_fails(f, "files/dir:/srv/dir", -MKM_E_RECIPE,
                   "[Hooks] Copy=%s/files/dir:/srv/dir: 'fifo' is a device, FIFO or socket; only files, directories "
                   "and symlinks are copied");
        copy_fails(f, "files/a:/var/dir", -MKM_E_RECIPE, "[Hooks] Copy=%s/files/a:/var/dir: '/var/dir' is a directory in the machine");
        copy_fails(f, "files/dir:/etc/passwd", -MKM_E_RECIPE,
                   "[Hooks] Copy=%s/files/dir:/etc/passwd: '/etc/passwd' exists in the machine and is not a directory");
        /* inside a copied directory, and onto /: the path in the machine, not the base name */
        th_write_file(f->src, "files/nest/dir", "a file where the machine has a directory\n", 0644);
        copy_fails(f, "files/nest:/var", -MKM_E_RECIPE, "[Hooks] Copy=%s/files/nest:/var: '/var/dir' is a directory in the machine");
        th_write_file(f->src, "files/onroot/etc/passwd/x", "a directory where the machine has a file\n", 0644);
        copy_fails(f, "files/onroot:/", -MKM_E_RECIPE,
                   "[Hooks] Copy=%s/files/onroot:/: '/etc/passwd' exists in the machine and is not a directory");
        copy_fails(f, "files/a:/", -MKM_E_RECIPE, "[Hooks] Copy=%s/files/a:/: only a directory can be copied onto /");
        /* Nothing left the root. */
        _cleanup_free_ char *outside = fs_path_join(f->top, "outside");
        struct stat st;
        assert_int_equal(lstat(outside, &st), -1);
        (void)etc;
}

/* Copy= of a hard link to a root-only file of the host's, made in a tenant's recipe directory
 * (anyone can where fs.protected_hardlinks is or was ever off; root can always): refused as a
 * source and inside a copied directory; the tenant's own linked files are copied. */
static void test_copy_hard_links(void **state) {
        struct fixture *f = *state;
        tree_users(f);
        th_write_file(f->host, "secret", "the builder's secret\n", 0600);
        th_write_file(f->src, "files/hl/ok", "ok\n", 0644);
        th_write_file(f->src, "files/mine", "mine\n", 0644);
        _cleanup_free_ char *secret = fs_path_join(f->host, "secret"), *in_dir = fs_path_join(f->src, "files/hl/x"),
                            *single = fs_path_join(f->src, "files/hx"), *rpath = fs_path_join(f->src, "hl.recipe"),
                            *hl = fs_path_join(f->src, "files/hl"), *files = fs_path_join(f->src, "files"),
                            *mine = fs_path_join(f->src, "files/mine"), *mine2 = fs_path_join(f->src, "files/mine2");
        assert_int_equal(link(secret, in_dir), 0);
        assert_int_equal(link(secret, single), 0);
        assert_int_equal(link(mine, mine2), 0);
        /* the tenant owns the directories and their own file */
        assert_int_equal(chown(hl, 65534, 65534), 0);
        assert_int_equal(chown(files, 65534, 65534), 0);
        assert_int_equal(chown(mine, 65534, 65534), 0);
        th_write_file(f->src, "hl.recipe",
                      "[Machine]\nName=web\n[Bootstrap]\nDistribution=arch\nArchitecture=x86_64\nPackages=base\n"
                      "[Hooks]\nCopy=files/hx:/etc/hx\n", 0644);
        _cleanup_(recipe_freep) struct recipe *dir = load(f, "[Hooks]\nCopy=files/hl:/etc/hl\n");
        _cleanup_(recipe_freep) struct recipe *own = load(f, "[Hooks]\nCopy=files/mine2:/etc/mine\n");
        _cleanup_(recipe_freep) struct recipe *file = NULL;
        struct mkm_err err = {};
        if (recipe_load(&f->ctx, rpath, &file, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(hooks_copy(&f->ctx, dir, f->rootfd, -1, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "Copy="));
        assert_non_null(strstr(err.msg, "'x' is a hard link to a file of another owner than its directory's"));
        assert_false(exists_in(f->root, "etc/hl/x"));
        assert_int_equal(recipe_validate_for_build(file, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "files/hx' is a hard link to a file of another owner"));
        /* a directory anyone can write, inside a copied one: its files may be anyone's */
        th_write_file(f->src, "files/pub/tmp/root-only", "root's\n", 0600);
        _cleanup_free_ char *tmpdir = fs_path_join(f->src, "files/pub/tmp");
        assert_int_equal(chmod(tmpdir, 01777), 0);
        _cleanup_(recipe_freep) struct recipe *pub = load(f, "[Hooks]\nCopy=files/pub:/srv/pub\n");
        assert_int_equal(hooks_copy(&f->ctx, pub, f->rootfd, -1, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "Copy="));
        if (!strstr(err.msg, "/src/files/pub:/srv/pub: 'tmp' is in (or is) a directory anyone can write"))
                fail_msg("%s", err.msg);
        assert_false(exists_in(f->root, "srv/pub/tmp/root-only"));
        /* the tenant's own linked file is theirs to copy */
        if (hooks_copy(&f->ctx, own, f->rootfd, -1, &err) < 0)
                fail_msg("%s", err.msg);
        _cleanup_free_ char *m = th_read_file(f->root, "etc/mine", NULL);
        assert_string_equal(m, "mine\n");
}

/* Copy= in a tenant's recipe is read with the tenant's permissions (fs_reader): a root-only file
 * beside it, or in a directory it copies, or a subdirectory the tenant cannot open, is refused
 * with words and nothing of it lands in the machine; what the tenant can read is copied, and the
 * copies are made as root (the reader's identity is left after each read). */
static void test_copy_as_reader(void **state) {
        struct fixture *f = *state;
        tree_users(f);
        assert_int_equal(chmod(f->src, 0755), 0);
        th_write_file(f->src, "files/mixed/open", "o\n", 0644);
        th_write_file(f->src, "files/mixed/closed", "root's\n", 0600);
        th_write_file(f->src, "files/mixed/sub/deep", "d\n", 0644);
        th_write_file(f->src, "files/alone", "root's too\n", 0600);
        _cleanup_free_ char *closed = fs_path_join(f->src, "files/mixed/closed"),
                            *sub = fs_path_join(f->src, "files/mixed/sub"), *rpath = fs_path_join(f->src, "t.recipe");
        assert_int_equal(chmod(sub, 0700), 0);
        const char *head = "[Machine]\nName=web\n[Bootstrap]\nDistribution=arch\nArchitecture=x86_64\nPackages=base\n";
        char text[1024];
        snprintf(text, sizeof text, "%s[Hooks]\nCopy=files/mixed:/srv/mixed\n", head);
        th_write_file(f->src, "t.recipe", text, 0644);
        assert_int_equal(chown(rpath, 65534, 65534), 0);
        struct mkm_err err = {};
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        if (recipe_load(&f->ctx, rpath, &r, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(r->reader_uid, 65534);
        assert_int_equal(hooks_copy(&f->ctx, r, f->rootfd, -1, &err), -MKM_E_RECIPE);
        if (!strstr(err.msg, "files/mixed:/srv/mixed: 'closed' is not readable by the recipe's owner"))
                fail_msg("got %s", err.msg);
        assert_false(exists_in(f->root, "srv/mixed/closed"));
        assert_int_equal(chmod(closed, 0644), 0);
        assert_int_equal(hooks_copy(&f->ctx, r, f->rootfd, -1, &err), -MKM_E_RECIPE);
        if (!strstr(err.msg, "'sub' is not readable by the recipe's owner"))
                fail_msg("got %s", err.msg);
        assert_false(exists_in(f->root, "srv/mixed/sub/deep"));
        assert_int_equal(chmod(sub, 0755), 0);
        if (hooks_copy(&f->ctx, r, f->rootfd, -1, &err) < 0)
                fail_msg("%s", err.msg);
        const char *made[] = { "srv/mixed", "srv/mixed/open", "srv/mixed/closed", "srv/mixed/sub", "srv/mixed/sub/deep" };
        for (size_t i = 0; i < ELEMENTSOF(made); i++) {
                struct stat st;
                assert_int_equal(fstatat(f->rootfd, made[i], &st, AT_SYMLINK_NOFOLLOW), 0);
                assert_int_equal(st.st_uid, 0);
                assert_int_equal(st.st_gid, 0);
        }
        /* a single file: opened beside the recipe as the tenant */
        recipe_free(TAKE_PTR(r));
        snprintf(text, sizeof text, "%s[Hooks]\nCopy=files/alone:/etc/alone\n", head);
        th_write_file(f->src, "t.recipe", text, 0644);
        assert_int_equal(chown(rpath, 65534, 65534), 0);
        if (recipe_load(&f->ctx, rpath, &r, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(hooks_copy(&f->ctx, r, f->rootfd, -1, &err), -MKM_E_RECIPE);
        if (!strstr(err.msg, "files/alone:/etc/alone: the source is not readable by the recipe's owner"))
                fail_msg("got %s", err.msg);
        assert_false(exists_in(f->root, "etc/alone"));
        /* root's own recipe copies it */
        assert_int_equal(chown(rpath, 0, 0), 0);
        recipe_free(TAKE_PTR(r));
        if (recipe_load(&f->ctx, rpath, &r, &err) < 0)
                fail_msg("%s", err.msg);
        if (hooks_copy(&f->ctx, r, f->rootfd, -1, &err) < 0)
                fail_msg("%s", err.msg);
        assert_true(exists_in(f->root, "etc/alone"));

        /* A build that cannot take the tenant's permissions (no CAP_SETGID: setgroups fails) says
         * so, with its own code (exit 1, not an invalid recipe's 2), and copies nothing. In a
         * child, as capabilities do not come back. */
        assert_int_equal(chown(rpath, 65534, 65534), 0);
        assert_int_equal(chmod(closed, 0644), 0);
        assert_int_equal(unlinkat(f->rootfd, "etc/alone", 0), 0);
        recipe_free(TAKE_PTR(r));
        if (recipe_load(&f->ctx, rpath, &r, &err) < 0)
                fail_msg("%s", err.msg);
        struct th_child child;
        if (th_child_start(&child) == 0) {
                if (th_drop_effective_cap(CAP_SETGID) < 0)
                        _exit(10);
                struct mkm_err e = {};
                int q = hooks_copy(&f->ctx, r, f->rootfd, -1, &e);
                (void)!write(child.fd, e.msg, strlen(e.msg));
                _exit(q >= 0 ? 11 : q != -MKM_E_IDENTITY || e.code != q ? 12 : 0);
        }
        char msg[2048];
        int status = th_child_wait(&child, msg, sizeof msg);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
            !strstr(msg, "files/alone:/etc/alone: the source " FS_IDENTITY_REFUSED))
                fail_msg("without CAP_SETGID: child status %#x, said '%s'", status, msg);
        assert_false(exists_in(f->root, "etc/alone"));
}

/* ---- [Network] ---------------------------------------------------------------------------- */

static void test_network(void **state) {
        struct fixture *f = *state;
        _cleanup_(recipe_freep) struct recipe *r = load(f, "[Network]\nAddress=192.168.100.2/24 fd00::2/64\n"
                                                          "Gateway=192.168.100.1 fd00::1\n");
        _cleanup_free_ char *iface = NULL;
        struct mkm_err err = {};
        assert_int_equal(hooks_network_tree(&f->ctx, r, f->rootfd, 1700000000, &iface, &err), 0);
        assert_string_equal(iface, "host0");
        _cleanup_free_ char *t = th_read_file(f->root, "etc/systemd/network/50-mkmachine-host0.network", NULL);
        assert_string_equal(t, "# Generated by mkmachine for the machine 'web'. Edit its recipe and rebuild instead.\n"
                               "\n[Match]\nName=host0\n\n[Network]\n"
                               "Address=192.168.100.2/24\nAddress=fd00::2/64\nGateway=192.168.100.1\nGateway=fd00::1\n");

        _cleanup_(recipe_freep) struct recipe *extra = load(f, "[Network]\nVirtualEthernet=no\nVirtualEthernetExtra=vb-web:eth1\n"
                                                              "Address=10.0.0.2/8\n");
        _cleanup_free_ char *iface2 = NULL;
        assert_int_equal(hooks_network_tree(&f->ctx, extra, f->rootfd, -1, &iface2, &err), 0);
        assert_string_equal(iface2, "eth1");
        _cleanup_free_ char *t2 = th_read_file(f->root, "etc/systemd/network/50-mkmachine-eth1.network", NULL);
        assert_non_null(strstr(t2, "[Match]\nName=eth1\n\n[Network]\nAddress=10.0.0.2/8\n"));

        /* Any spelling systemd takes for "no" turns the default veth off (here: n). */
        _cleanup_(recipe_freep) struct recipe *n = load(f, "[Network]\nVirtualEthernet=n\nVirtualEthernetExtra=vb-web:eth2\n"
                                                          "Address=10.0.0.3/8\n");
        _cleanup_free_ char *iface4 = NULL;
        assert_int_equal(hooks_network_tree(&f->ctx, n, f->rootfd, -1, &iface4, &err), 0);
        assert_string_equal(iface4, "eth2");

        _cleanup_(recipe_freep) struct recipe *none = load(f, "[Exec]\nBoot=yes\n");
        _cleanup_free_ char *iface3 = NULL;
        assert_int_equal(hooks_network_tree(&f->ctx, none, f->rootfd, -1, &iface3, &err), 0);
        assert_null(iface3);
}

/* ---- user namespace ----------------------------------------------------------------------- */

/* PrivateUsers=: any systemd boolean, identity or managed leave the tree alone; pick and a base
 * shift it; anything else is an error naming what is expected. */
static void test_userns_values(void **state) {
        struct fixture *f = *state;
        static const char *const none[] = { "yes", "no", "t", "F", "ON", "0", "identity", "managed" };
        for (size_t i = 0; i < ELEMENTSOF(none); i++) {
                char text[64];
                (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%s\n", none[i]);
                _cleanup_(recipe_freep) struct recipe *r = load(f, text);
                struct hooks_userns u;
                struct mkm_err err = {};
                assert_int_equal(hooks_userns(r, &u, &err), 0);
                assert_false(u.shift);
        }
        _cleanup_(recipe_freep) struct recipe *pick = load(f, "[Exec]\nPrivateUsers=pick\n");
        struct hooks_userns u;
        struct mkm_err err = {};
        assert_int_equal(hooks_userns(pick, &u, &err), 0);
        assert_true(u.shift && u.picked);
        _cleanup_(recipe_freep) struct recipe *bad = load(f, "[Exec]\nPrivateUsers=sometimes\n");
        assert_true(hooks_userns(bad, &u, &err) < 0);
        print_message("%s\n", err.msg);
        assert_non_null(strstr(err.msg, "sometimes"));
}

static uint32_t taken_slot;
static bool slot_is_taken(uint32_t base) {
        return base == taken_slot;
}
static bool every_slot_taken(uint32_t base) {
        (void)base;
        return true;
}

/* The build sandbox's range: a 64K slot of systemd's container range, the same for the same
 * name, never the machine's own PrivateUsers=pick slot, and spread over the range. */
static void test_sandbox_uid_base(void **state) {
        (void)state;
        size_t distinct = 0;
        uint32_t prev = 0;
        for (int i = 0; i < 3000; i++) {
                char name[32];
                (void)snprintf(name, sizeof name, "m%d", i);
                uint32_t b = hooks_sandbox_uid_base(name, 0);
                assert_int_equal(b % HOOKS_USERNS_RANGE, 0);
                assert_true(b >= HOOKS_USERNS_PICK_MIN && b <= HOOKS_USERNS_PICK_MAX);
                assert_int_not_equal(b, hooks_userns_pick(name));
                assert_int_equal(b, hooks_sandbox_uid_base(name, 0));
                distinct += b != prev;
                prev = b;
        }
        assert_true(distinct > 2990);
        assert_true(hooks_sandbox_uid_base("web", 0) >= 0x80000u);
        /* The machine's explicit base, and a slot in use on the host, are passed over. */
        uint32_t first = hooks_sandbox_uid_base_with("web", 0, NULL);
        uint32_t other = hooks_sandbox_uid_base_with("web", first, NULL);
        assert_int_not_equal(other, first);
        assert_int_not_equal(other, hooks_userns_pick("web"));
        taken_slot = first;
        assert_int_equal(hooks_sandbox_uid_base_with("web", 0, slot_is_taken), other);
        /* none free among those tried: 0, never a slot in use (once, the last one tried) */
        assert_int_equal(hooks_sandbox_uid_base_with("web", 0, every_slot_taken), 0);
}

/* In a child with a mount namespace of its own, /etc/FILE (passwd or group) gets one more line
 * (a user or group with id), bind-mounted over the host's; the child exits 0 when the sandbox
 * slot of name is no longer first. glibc's files backend reads the file on each lookup. id 0 in
 * passwd: a line over FS_PASSWD_ENTRY_MAX bytes instead, and exit 0 when no slot is free. */
static int slot_with_nss_entry(const char *file, uint32_t id, const char *name, uint32_t first) {
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                char src[64], dst[64], tmp[] = "/tmp/mkm-test-nss.XXXXXX";
                (void)snprintf(src, sizeof src, "/etc/%s", file);
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 || !mkdtemp(tmp))
                        _exit(2);
                (void)snprintf(dst, sizeof dst, "%s/%s", tmp, file);
                char *text = NULL;
                size_t len = 0;
                FILE *out = fopen(dst, "w");
                if (fs_read_file_follow_at(AT_FDCWD, src, 1u << 24, &text, &len) < 0 || !out)
                        _exit(2);
                fwrite(text, 1, len, out);
                if (strcmp(file, "passwd") == 0 && id == 0) {   /* an entry no lookup can hold: every
                                                                 * lookup that reads past it fails */
                        fprintf(out, "mkmhuge:x:4399:4399:");
                        for (int i = 0; i < FS_PASSWD_ENTRY_MAX + 1; i++)
                                fputc('h', out);
                        fprintf(out, ":/:/bin/false\n");
                } else if (strcmp(file, "passwd") == 0)
                        fprintf(out, "mkmslot:x:%" PRIu32 ":%" PRIu32 "::/:/bin/false\n", id, id);
                else
                        fprintf(out, "mkmslot:x:%" PRIu32 ":\n", id);
                if (fclose(out) != 0 || mount(dst, src, NULL, MS_BIND, NULL) < 0)
                        _exit(2);
                uint32_t b = hooks_sandbox_uid_base(name, 0);
                (void)umount2(src, MNT_DETACH);
                (void)fs_rm_rf_at(AT_FDCWD, tmp);
                if (id == 0)    /* every lookup failed: no slot is free */
                        _exit(b == 0 ? 0 : 1);
                _exit(b != first && b % HOOKS_USERNS_RANGE == 0 ? 0 : 1);
        }
        int status = 0;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
                return -1;
        return WEXITSTATUS(status);
}

/* The host's NSS half: a slot whose first UID is a host user, or whose last GID is a host
 * group, is passed over. */
static void test_sandbox_uid_base_nss(void **state) {
        (void)state;
        if (geteuid() != 0) {
                print_message("skipped: a private /etc/passwd needs root (mount namespace)\n");
                skip();
        }
        uint32_t first = hooks_sandbox_uid_base_with("web-nss-test", 0, NULL);
        assert_int_equal(hooks_sandbox_uid_base("web-nss-test", 0), first);
        assert_int_equal(slot_with_nss_entry("passwd", first, "web-nss-test", first), 0);
        assert_int_equal(slot_with_nss_entry("group", first + HOOKS_USERNS_RANGE - 1, "web-nss-test", first), 0);
        /* and an entry outside the slot changes nothing */
        assert_int_equal(slot_with_nss_entry("passwd", first + HOOKS_USERNS_RANGE, "web-nss-test", first), 1);
        /* a user database whose lookups fail (an entry too large to hold, after every user the host
         * has) takes no slot for free: none is */
        assert_int_equal(slot_with_nss_entry("passwd", 0, "web-nss-test", first), 0);
}

/* The host's own check: a slot a running systemd-nspawn holds (its lock file in
 * /run/systemd/nspawn-uid/, as PrivateUsers=pick takes it) is passed over. */
static void test_sandbox_uid_base_nspawn_lock(void **state) {
        (void)state;
        if (geteuid() != 0) {
                print_message("skipped: writing /run/systemd/nspawn-uid/ needs root\n");
                skip();
        }
        uint32_t first = hooks_sandbox_uid_base_with("web-lock-test", 0, NULL);
        assert_int_equal(hooks_sandbox_uid_base("web-lock-test", 0), first);      /* nothing holds it */
        bool made_parent = mkdir("/run/systemd", 0755) == 0;
        bool made_dir = mkdir("/run/systemd/nspawn-uid", 0755) == 0;
        char lock[64];
        (void)snprintf(lock, sizeof lock, "/run/systemd/nspawn-uid/%" PRIu32, first);
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        (void)close(fd);
        uint32_t b = hooks_sandbox_uid_base("web-lock-test", 0);
        (void)unlink(lock);
        if (made_dir)
                (void)rmdir("/run/systemd/nspawn-uid");
        if (made_parent)
                (void)rmdir("/run/systemd");
        assert_int_not_equal(b, first);
        assert_int_equal(b % HOOKS_USERNS_RANGE, 0);
        assert_int_not_equal(b, hooks_userns_pick("web-lock-test"));
}

/* A slot another machine's settings claim (any ID of it) is passed over: the build's package code
 * must not run as that machine's root. */
static void test_sandbox_uid_base_machines(void **state) {
        (void)state;
        _cleanup_free_ char *host = th_tmpdir_new("hooks-slot");
        _cleanup_close_ int hostfd = open(host, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(hostfd >= 0);
        uint32_t first = hooks_sandbox_uid_base_with("web-machine-test", 0, NULL);
        assert_false(hooks_sandbox_slot_taken(hostfd, first));
        char text[96];
        (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%" PRIu32 ":10\n", first + HOOKS_USERNS_RANGE - 5);
        th_write_file(host, "etc/systemd/nspawn/other.nspawn", text, 0644);
        assert_true(hooks_sandbox_slot_taken(hostfd, first));
        assert_true(hooks_sandbox_slot_taken(hostfd, first + HOOKS_USERNS_RANGE));
        assert_false(hooks_sandbox_slot_taken(hostfd, first + 2 * HOOKS_USERNS_RANGE));
        assert_false(hooks_sandbox_slot_taken(hostfd, first - HOOKS_USERNS_RANGE));
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);

        /* On this host (the sandbox runs here whatever --host-root says): a transient machine's
         * settings in /run. */
        if (geteuid() != 0) {
                print_message("skipped: writing /run/systemd/nspawn/ needs root\n");
                skip();
        }
        bool made_parent = mkdir("/run/systemd", 0755) == 0;
        bool made_dir = mkdir("/run/systemd/nspawn", 0755) == 0;
        const char *file = "/run/systemd/nspawn/mkm-test-slot-machine.nspawn";
        (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%" PRIu32 "\n", first);
        int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(fs_write_all(fd, text, strlen(text)), 0);
        (void)close(fd);
        uint32_t b = hooks_sandbox_uid_base("web-machine-test", 0);
        (void)unlink(file);
        if (made_dir)
                (void)rmdir("/run/systemd/nspawn");
        if (made_parent)
                (void)rmdir("/run/systemd");
        assert_int_not_equal(b, first);
        assert_int_equal(b % HOOKS_USERNS_RANGE, 0);
        assert_int_equal(hooks_sandbox_uid_base("web-machine-test", 0), first);
}

/* ---- host files --------------------------------------------------------------------------- */

static void test_write_host_files(void **state) {
        struct fixture *f = *state;
        struct host_files hf = { .nspawn = (char *)"[Exec]\nBoot=yes\n", .dropin = (char *)"[Service]\nX=1\n",
                                 .modules_load = (char *)"fuse\n" };
        struct mkm_err err = {};
        assert_int_equal(hooks_write_host_files(&f->ctx, "web", &hf, &err), 0);
        _cleanup_free_ char *n = th_read_file(f->host, "etc/systemd/nspawn/web.nspawn", NULL);
        _cleanup_free_ char *d = th_read_file(f->host, "etc/systemd/system/systemd-nspawn@web.service.d/mkmachine.conf", NULL);
        _cleanup_free_ char *m = th_read_file(f->host, "etc/modules-load.d/mkmachine-web.conf", NULL);
        assert_string_equal(n, "[Exec]\nBoot=yes\n");
        assert_string_equal(d, "[Service]\nX=1\n");
        assert_string_equal(m, "fuse\n");
        assert_int_equal(th_lstat_in(f->host, "etc/systemd/nspawn/web.nspawn").st_mode & 07777, 0644);
        assert_int_equal(strv_length(f->infos), 1);
        assert_string_equal(f->infos[0], "the drop-in for systemd-nspawn@web.service changed: run 'systemctl "
                                         "daemon-reload' before starting the machine");
        /* No temporary files left beside them. */
        _cleanup_free_ char *nd = fs_path_join(f->host, "etc/systemd/nspawn");
        assert_int_equal(count_entries(nd), 1);

        /* A rebuild with the same content changes nothing (the inode stays). */
        ino_t ino = th_lstat_in(f->host, "etc/systemd/nspawn/web.nspawn").st_ino;
        assert_int_equal(hooks_write_host_files(&f->ctx, "web", &hf, &err), 0);
        assert_int_equal(th_lstat_in(f->host, "etc/systemd/nspawn/web.nspawn").st_ino, ino);
        assert_int_equal(strv_length(f->infos), 1);

        /* A new content replaces the file (a new inode: renamed over); stale files go away. */
        struct hook_nspawn_out {
                int dummy;
        };
        struct host_files hf2 = { .nspawn = (char *)"[Exec]\nBoot=no\n" };
        th_write_file(f->host, "etc/systemd/system/systemd-nspawn@other.service.d/mkmachine.conf", "keep", 0644);
        assert_int_equal(hooks_write_host_files(&f->ctx, "web", &hf2, &err), 0);
        _cleanup_free_ char *n2 = th_read_file(f->host, "etc/systemd/nspawn/web.nspawn", NULL);
        assert_string_equal(n2, "[Exec]\nBoot=no\n");
        assert_int_not_equal(th_lstat_in(f->host, "etc/systemd/nspawn/web.nspawn").st_ino, ino);
        assert_false(exists_in(f->host, "etc/systemd/system/systemd-nspawn@web.service.d"));
        assert_false(exists_in(f->host, "etc/modules-load.d/mkmachine-web.conf"));
        assert_true(exists_in(f->host, "etc/systemd/system/systemd-nspawn@other.service.d/mkmachine.conf"));
        assert_int_equal(strv_length(f->infos), 2);

        /* Nothing at all: the .nspawn goes too. */
        struct host_files empty = {};
        assert_int_equal(hooks_write_host_files(&f->ctx, "web", &empty, &err), 0);
        assert_false(exists_in(f->host, "etc/systemd/nspawn/web.nspawn"));

        assert_int_equal(hooks_write_host_files(&f->ctx, "../x", &empty, &err), -EINVAL);
        assert_string_equal(err.msg, "invalid machine name '../x'");
}

/* ---- hostinfo ----------------------------------------------------------------------------- */

static void test_hostinfo(void **state) {
        struct fixture *f = *state;
        unsigned v = 1;
        assert_int_equal(hostinfo_systemd_version(&f->ctx, &v), 0);
        assert_int_equal(v, 0);
        th_write_file(f->host, "usr/lib/systemd/libsystemd-shared-247.so", "", 0644);
        th_write_file(f->host, "usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so", "", 0644);
        th_write_file(f->host, "usr/lib/x86_64-linux-gnu/systemd/libsystemd-core-260.so", "", 0644);
        assert_int_equal(hostinfo_systemd_version(&f->ctx, &v), 0);
        assert_int_equal(v, 252);
        f->ctx.systemd_version = 256;
        assert_int_equal(hostinfo_systemd_version(&f->ctx, &v), 0);
        assert_int_equal(v, 256);

        /* Modules: cannot tell without /sys/module and /proc/modules. */
        assert_int_equal(hostinfo_module_loaded(&f->ctx, "fuse"), -ENOENT);
        _cleanup_free_ char *fuse = fs_path_join(f->host, "sys/module/fuse");
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, fuse, 0755), 0);
        assert_int_equal(hostinfo_module_loaded(&f->ctx, "fuse"), 1);
        assert_int_equal(hostinfo_module_loaded(&f->ctx, "overlay"), 0);
        th_write_file(f->host, "proc/modules", "overlayfs_x 1 0 - Live 0x0\noverlay 151552 0 - Live 0x0\n", 0644);
        assert_int_equal(hostinfo_module_loaded(&f->ctx, "overlay"), 1);
        assert_int_equal(hostinfo_module_loaded(&f->ctx, "overlayfs"), 0);

        assert_int_equal(hostinfo_cgroup_mode(&f->ctx), HOSTINFO_CGROUP_UNKNOWN);
        /* This host's hierarchy, told by statfs, against what /proc/self/mountinfo lists. */
        FILE *mi = fopen("/proc/self/mountinfo", "re");
        if (mi) {
                char line[4096], top[64] = "", unified[64] = "";
                while (fgets(line, sizeof line, mi)) {
                        char mp[1024], fstype[64];
                        const char *dash = strstr(line, " - ");
                        if (!dash || sscanf(line, "%*s %*s %*s %*s %1023s", mp) != 1 || sscanf(dash + 3, "%63s", fstype) != 1)
                                continue;
                        if (strcmp(mp, "/sys/fs/cgroup") == 0)
                                snprintf(top, sizeof top, "%s", fstype);
                        else if (strcmp(mp, "/sys/fs/cgroup/unified") == 0)
                                snprintf(unified, sizeof unified, "%s", fstype);
                }
                fclose(mi);
                enum hostinfo_cgroup want = strcmp(top, "cgroup2") == 0 ? HOSTINFO_CGROUP_UNIFIED
                                            : strcmp(top, "tmpfs") != 0 ? HOSTINFO_CGROUP_UNKNOWN
                                            : strcmp(unified, "cgroup2") == 0 ? HOSTINFO_CGROUP_HYBRID
                                                                              : HOSTINFO_CGROUP_LEGACY;
                struct mkm_ctx real = { .host_root = "/" };
                assert_int_equal(hostinfo_cgroup_mode(&real), want);
        }
        unsigned maj = 0, min = 0;
        assert_int_equal(hostinfo_kernel_version(&f->ctx, &maj, &min), -ENOENT);
        th_write_file(f->host, "proc/sys/kernel/osrelease", "6.18.44-fc-v1272\n", 0644);
        assert_int_equal(hostinfo_kernel_version(&f->ctx, &maj, &min), 0);
        assert_int_equal(maj, 6);
        assert_int_equal(min, 18);
        static const char *const bad[] = { "", "6", "6.", ".18", "x.1", "6.x", "99999.1", "-1.2" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(hostinfo_parse_kernel_version(bad[i], &maj, &min), -EINVAL);
        assert_int_equal(hostinfo_parse_kernel_version("5.10", &maj, &min), 0);
        assert_int_equal(maj * 100 + min, 510);
        long t = 0;
        assert_int_equal(hostinfo_fs_type(&f->ctx, "var/lib/machines", &t), 0);
        assert_int_not_equal(t, 0);
}

static void test_precheck(void **state) {
        struct fixture *f = *state;
        _cleanup_free_ char *fuse = fs_path_join(f->host, "sys/module/fuse");
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, fuse, 0755), 0);
        _cleanup_(recipe_freep) struct recipe *r = load(f, "[Hooks]\nFuse=yes\nDockerStorageDriver=overlay2\n"
                                                          "RootAuthorizedKeys=keys/a.pub\n");
        char *full[] = { (char *)"systemd", (char *)"dbus-broker-units", (char *)"util-linux", (char *)"docker",
                         (char *)"openssh", NULL };
        assert_int_equal(hooks_precheck(&f->ctx, r, full), 1);
        assert_string_equal(f->warnings[0], "the host's kernel module 'overlay' is not loaded (DockerStorageDriver=overlay2 "
                                            "needs it): it is listed in /etc/modules-load.d/mkmachine-web.conf for the "
                                            "next boot; run 'modprobe overlay' to use the machine before");
        f->warnings = strv_free(f->warnings);

        char *bare[] = { (char *)"systemd", (char *)"bash", NULL };
        assert_int_equal(hooks_precheck(&f->ctx, r, bare), 5);
        assert_string_equal(f->warnings[0], "machinectl login will not work: the package set has no D-Bus, which machinectl "
                                            "talks to inside the machine (add 'dbus' or 'dbus-broker' to Packages=)");
        assert_string_equal(f->warnings[1], "machinectl login will not work: the package set has no agetty, which "
                                            "container-getty@.service runs (add 'util-linux' to Packages=)");
        assert_string_equal(f->warnings[2], "DockerStorageDriver=overlay2 is set but the package set has no Docker");
        assert_string_equal(f->warnings[3], "RootAuthorizedKeys= is set but the package set has no OpenSSH server");
        f->warnings = strv_free(f->warnings);

        /* A shifted machine cannot open a 0600 /dev/fuse of the host. */
        th_write_file(f->host, "dev/fuse", "", 0600);
        _cleanup_(recipe_freep) struct recipe *shifted = load(f, "[Hooks]\nFuse=yes\n[Exec]\nPrivateUsers=1048576\n");
        assert_int_equal(hooks_precheck(&f->ctx, shifted, NULL), 1);
        assert_string_equal(f->warnings[0], "Fuse=yes with PrivateUsers=1048576: the host's /dev/fuse is mode 0600, so the "
                                            "machine's root (not the host's) cannot open it; make it 0666 on the host (as "
                                            "udev does)");
        f->warnings = strv_free(f->warnings);
        _cleanup_free_ char *devfuse = fs_path_join(f->host, "dev/fuse");
        assert_int_equal(chmod(devfuse, 0666), 0);
        assert_int_equal(hooks_precheck(&f->ctx, shifted, NULL), 0);

        /* Docker in a user-namespaced machine: what this host cannot give it, and why. */
        _cleanup_free_ char *overlay = fs_path_join(f->host, "sys/module/overlay");
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, overlay, 0755), 0);
        _cleanup_(recipe_freep) struct recipe *dk = load(f, "[Hooks]\nDockerStorageDriver=overlay2\n");
        _cleanup_(recipe_freep) struct recipe *dkpriv = load(f, "[Hooks]\nDockerStorageDriver=overlay2\nDockerPrivileged=yes\n");
        _cleanup_(recipe_freep) struct recipe *dkoff = load(f, "[Hooks]\nDockerStorageDriver=vfs\n[Exec]\nPrivateUsers=off\n");
        _cleanup_(recipe_freep) struct recipe *dkvfs = load(f, "[Hooks]\nDockerStorageDriver=vfs\n");
        struct hooks_host good = { .systemd_version = 252, .cgroup = HOSTINFO_CGROUP_UNIFIED, .kernel_major = 5, .kernel_minor = 11 };
        f->infos = strv_free(f->infos);
        assert_int_equal(hooks_precheck_host(&f->ctx, dk, NULL, &good), 0);
        assert_int_equal(strv_length(f->infos), 1);
        _cleanup_free_ char *said = NULL;
        assert_true(asprintf(&said, "DockerStorageDriver=overlay2: the machine 'web' runs Docker with user namespacing "
                                    "(PrivateUsers=pick, the default with Docker): its root is the host's unprivileged UID "
                                    "%u (0x%08x), derived from its name; DockerPrivileged=yes gives the privileged form "
                                    "instead", (unsigned)hooks_userns_pick("web"), (unsigned)hooks_userns_pick("web")) > 0);
        assert_string_equal(f->infos[0], said);
        f->infos = strv_free(f->infos);
        struct hooks_host v1 = { .systemd_version = 252, .cgroup = HOSTINFO_CGROUP_LEGACY, .kernel_major = 6, .kernel_minor = 1 };
        assert_int_equal(hooks_precheck_host(&f->ctx, dk, NULL, &v1), 1);
        assert_non_null(strstr(f->warnings[0], "DockerStorageDriver=overlay2: Docker in a user-namespaced machine cannot run "
                                               "containers on this host (systemd 252, cgroup v1 only, no cgroup2 at "
                                               "/sys/fs/cgroup/unified): systemd-nspawn delegates only the name=systemd "
                                               "hierarchy to the machine's root (chown_cgroup() in src/nspawn/nspawn-cgroup.c)"));
        assert_non_null(strstr(f->warnings[0], "or set DockerPrivileged=yes"));
        f->warnings = strv_free(f->warnings);
        struct hooks_host hybrid = { .systemd_version = 0, .cgroup = HOSTINFO_CGROUP_HYBRID, .kernel_major = 6, .kernel_minor = 18 };
        assert_int_equal(hooks_precheck_host(&f->ctx, dk, NULL, &hybrid), 1);
        assert_non_null(strstr(f->warnings[0], "this host's cgroup hierarchy is hybrid (systemd of unknown version), so the "
                                               "machine gets only the unified hierarchy (SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 "
                                               "in the drop-in), where the host has bound no controller: Docker runs "
                                               "containers, but without resource limits"));
        f->warnings = strv_free(f->warnings);
        hybrid.systemd_version = 231;
        assert_int_equal(hooks_precheck_host(&f->ctx, dk, NULL, &hybrid), 1);
        assert_non_null(strstr(f->warnings[0], "cannot run containers on this host (systemd 231, hybrid cgroup hierarchy): "
                                               "nspawn before v232 does not read SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1"));
        f->warnings = strv_free(f->warnings);
        struct hooks_host oldkernel = { .systemd_version = 252, .cgroup = HOSTINFO_CGROUP_UNIFIED, .kernel_major = 5, .kernel_minor = 10 };
        assert_int_equal(hooks_precheck_host(&f->ctx, dk, NULL, &oldkernel), 1);
        assert_string_equal(f->warnings[0], "DockerStorageDriver=overlay2: this host runs Linux 5.10, and overlayfs mounts "
                                            "in a user namespace came with Linux 5.11 (commit 459c7c565ac3 'ovl: "
                                            "unprivieged mounts'): Docker in the user-namespaced machine will fall back to "
                                            "vfs unless the kernel carries a backport (use "
                                            "DockerStorageDriver=fuse-overlayfs, or DockerPrivileged=yes)");
        f->warnings = strv_free(f->warnings);
        oldkernel.kernel_major = 4;
        oldkernel.kernel_minor = 19;
        assert_int_equal(hooks_precheck_host(&f->ctx, dk, NULL, &oldkernel), 1);
        f->warnings = strv_free(f->warnings);
        assert_int_equal(hooks_precheck_host(&f->ctx, dkvfs, NULL, &oldkernel), 0);     /* vfs needs no overlayfs */
        /* None of it concerns the privileged form. */
        assert_int_equal(hooks_precheck_host(&f->ctx, dkpriv, NULL, &v1), 0);
        assert_int_equal(hooks_precheck_host(&f->ctx, dkpriv, NULL, &oldkernel), 0);
        /* A recipe that turns the user namespace off without asking for privileges. */
        assert_int_equal(hooks_precheck_host(&f->ctx, dkoff, NULL, &good), 1);
        assert_string_equal(f->warnings[0], "DockerStorageDriver=vfs with PrivateUsers=off but without DockerPrivileged=yes: "
                                            "the machine has neither a user namespace nor Docker's privileges, so Docker "
                                            "will not start containers (drop PrivateUsers=off for user namespacing, or set "
                                            "DockerPrivileged=yes)");
        f->warnings = strv_free(f->warnings);

        char *nosystemd[] = { (char *)"busybox", NULL };
        _cleanup_(recipe_freep) struct recipe *plain = load(f, "");
        assert_int_equal(hooks_precheck(&f->ctx, plain, nosystemd), 1);
        assert_string_equal(f->warnings[0], "machinectl login will not work: the package set has no systemd, so the "
                                            "machine cannot boot (add 'systemd' to Packages=)");
}

/* ---- everything together ------------------------------------------------------------------ */

static bool have_busybox(void) {
        return access("/bin/busybox", X_OK) == 0;
}

static void copy_busybox(struct fixture *f) {
        _cleanup_free_ char *bin = fs_path_join(f->root, "bin");
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, bin, 0755), 0);
        _cleanup_free_ char *sh = fs_path_join(f->root, "bin/sh");
        int in = open("/bin/busybox", O_RDONLY | O_CLOEXEC);
        assert_true(in >= 0);
        int out = open(sh, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
        assert_true(out >= 0);
        char buf[65536];
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0)
                assert_int_equal(write(out, buf, (size_t)n), n);
        close(in);
        close(out);
}

static void test_apply(void **state) {
        struct fixture *f = *state;
        if (!have_busybox())
                skip();
        copy_busybox(f);
        tree_users(f);
        th_write_file(f->src, "keys/admin.pub", "ssh-ed25519 AAAA admin@example\n", 0644);
        th_write_file(f->src, "files/app.service", "[Service]\nExecStart=/bin/sh -c true\n[Install]\nWantedBy=multi-user.target\n", 0644);
        th_write_file(f->root, "usr/lib/systemd/system/docker.service", "[Service]\nExecStart=/usr/bin/dockerd\n"
                                                                      "[Install]\nWantedBy=multi-user.target\n", 0644);
        th_write_file(f->root, "usr/lib/systemd/system/systemd-networkd.service", "[Service]\nExecStart=/x\n"
                                                                                "[Install]\nWantedBy=multi-user.target\n", 0644);
        th_write_file(f->root, "usr/lib/systemd/system/multi-user.target", "[Unit]\n", 0644);
        th_write_file(f->root, "usr/bin/ssh-keygen", "#!/bin/sh\n", 0755);
        th_write_file(f->root, "etc/ssh/ssh_host_ed25519_key", "secret", 0600);
        _cleanup_(recipe_freep) struct recipe *r = load(f,
                "[Hooks]\n"
                "EnableServices=app.service\n"
                "Fuse=yes\n"
                "DockerStorageDriver=overlay2\n"
                "RootAuthorizedKeys=keys/admin.pub\n"
                "Copy=files/app.service:/etc/systemd/system/app.service\n"
                "Run=echo \"ran as $(id -u) on $(hostname)\" > /ran; ls /etc/systemd/system/multi-user.target.wants > /wants\n"
                "[Network]\n"
                "Address=192.168.100.2/24\n");
        _cleanup_(host_files_done) struct host_files hf = {};
        struct mkm_err err = {};
        int q = hooks_apply(&f->ctx, r, f->root, f->rootfd, 252, 1700000000, &hf, &err);
        if (q == -EPERM || q == -ENOSYS) {
                print_message("sandbox unavailable here: %s\n", err.msg);
                skip();
        }
        if (q < 0)
                fail_msg("hooks_apply: %d %s", q, err.msg);
        uint32_t base = hooks_userns_pick("web");
        _cleanup_free_ char *ran = th_read_file(f->root, "ran", NULL), *wants = th_read_file(f->root, "wants", NULL);
        assert_string_equal(ran, "ran as 0 on web\n");
        assert_string_equal(wants, "app.service\ndocker.service\nmkmachine-ssh-keygen.service\nsystemd-networkd.service\n");
        /* The host key goes in the build's next step, normalize, which runs after every hook. */
        assert_int_equal(normalize_remove_generated(&f->ctx, f->rootfd, &err), 0);
        assert_false(exists_in(f->root, "etc/ssh/ssh_host_ed25519_key"));
        assert_true(exists_in(f->root, "etc/tmpfiles.d/mkmachine-fuse.conf"));
        assert_true(exists_in(f->root, "etc/docker/daemon.json"));
        assert_true(exists_in(f->root, "etc/systemd/network/50-mkmachine-host0.network"));
        /* Shifted last (PrivateUsers=pick is Docker's default): what Run= wrote belongs to the
         * machine's root too. */
        assert_int_equal(th_lstat_in(f->root, "ran").st_uid, base);
        assert_int_equal(th_lstat_in(f->root, "root/.ssh/authorized_keys").st_uid, base);
        assert_int_equal(th_lstat_in(f->root, "root/.ssh/authorized_keys").st_mode & 07777, 0600);

        _cleanup_free_ char *expect = NULL;
        assert_true(asprintf(&expect,
                             "# Generated by mkmachine for the machine 'web'. Edit its recipe and rebuild instead.\n"
                             "\n[Exec]\nPrivateUsers=%u\nSystemCallFilter=@keyring\n"
                             "\n[Files]\nBind=/dev/fuse\nPrivateUsersOwnership=off\n",
                             (unsigned)base) > 0);
        assert_string_equal(hf.nspawn, expect);
        assert_string_equal(hf.dropin, "# Generated by mkmachine for the machine 'web'. Edit its recipe and rebuild instead.\n"
                                       "\n[Service]\nDeviceAllow=/dev/fuse rwm\n"
                                       "Environment=SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1\n");
        assert_string_equal(hf.modules_load, "# Generated by mkmachine for the machine 'web'. Edit its recipe and rebuild "
                                             "instead.\nfuse\noverlay\n");
}

static void test_apply_run_fails(void **state) {
        struct fixture *f = *state;
        if (!have_busybox())
                skip();
        copy_busybox(f);
        _cleanup_(recipe_freep) struct recipe *r = load(f, "[Hooks]\nRun=true\nRun=echo boom; exit 3\nRun=touch /never\n");
        _cleanup_(host_files_done) struct host_files hf = {};
        struct mkm_err err = {};
        int q = hooks_apply(&f->ctx, r, f->root, f->rootfd, 257, -1, &hf, &err);
        if (q == -EPERM || q == -ENOSYS)
                skip();
        assert_int_equal(q, -MKM_E_SCRIPT);
        assert_non_null(strstr(err.msg, "[Hooks] Run= (command 2 of 3): "));
        assert_non_null(strstr(err.msg, "exited with status 3"));
        assert_non_null(strstr(err.msg, "boom"));
        assert_false(exists_in(f->root, "never"));
        assert_null(hf.nspawn);
}

static void test_apply_unknown_unit(void **state) {
        struct fixture *f = *state;
        _cleanup_(recipe_freep) struct recipe *r = load(f, "[Hooks]\nDockerStorageDriver=overlay2\n");
        _cleanup_(host_files_done) struct host_files hf = {};
        struct mkm_err err = {};
        assert_int_equal(hooks_apply(&f->ctx, r, f->root, f->rootfd, 257, -1, &hf, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "docker.service"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sandbox_uid_base),
                cmocka_unit_test(test_sandbox_uid_base_nspawn_lock),
                cmocka_unit_test(test_sandbox_uid_base_machines),
                cmocka_unit_test(test_sandbox_uid_base_nss),
                cmocka_unit_test_setup_teardown(test_authorized_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_authorized_keys_fresh_and_private, setup, teardown),
                cmocka_unit_test_setup_teardown(test_authorized_keys_symlinked_ssh_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ssh_host_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ssh_no_openssh, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fuse_tree, setup, teardown),
                cmocka_unit_test(test_json),
                cmocka_unit_test_setup_teardown(test_docker_tree, setup, teardown),
                cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
                cmocka_unit_test_setup_teardown(test_copy_depth, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sources_swapped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_copy_refusals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_copy_hard_links, setup, teardown),
                cmocka_unit_test_setup_teardown(test_copy_as_reader, setup, teardown),
                cmocka_unit_test_setup_teardown(test_network, setup, teardown),
                cmocka_unit_test_setup_teardown(test_userns_values, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_host_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostinfo, setup, teardown),
                cmocka_unit_test_setup_teardown(test_precheck, setup, teardown),
                cmocka_unit_test_setup_teardown(test_apply, setup, teardown),
                cmocka_unit_test_setup_teardown(test_apply_run_fails, setup, teardown),
                cmocka_unit_test_setup_teardown(test_apply_unknown_unit, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
