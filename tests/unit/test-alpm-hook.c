/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/arch/alpm-hook (parser, wordsplit, matcher, loading from a tree, running)
 * and pacman's scriptlet grep from builder/arch/alpm-script. Expected messages are pacman 6.0.2's. */
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
#include <unistd.h>

#include <cmocka.h>

#include "arch/alpm-hook.h"
#include "arch/alpm-script.h"
#include "ctx.h"
#include "helpers.h"
#include "sandbox.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strv.h"

/* ------------------------------------------------------------------ captured events */

struct captured {
        char text[8192];
};

static void capture(void *userdata, const struct mkm_event *ev) {
        struct captured *c = userdata;
        if (ev->type != MKM_EV_LOG || ev->level > MKM_LOG_WARNING)
                return;
        size_t l = strlen(c->text);
        snprintf(c->text + l, sizeof c->text - l, "%s: %s\n", ev->level == MKM_LOG_WARNING ? "warning" : "error",
                 ev->text);
}

static int parse(struct mkm_ctx *ctx, const char *text, struct alpm_hook **h, struct mkm_err *err) {
        return alpm_hook_parse(ctx, text, strlen(text), "/etc/pacman.d/hooks/t.hook", h, err);
}

/* ------------------------------------------------------------------ parser */

static void test_parse_good(void **state) {
        struct captured cap = {};
        struct mkm_ctx ctx = { .events = { capture, &cap } };
        struct mkm_err err = {};
        _cleanup_(alpm_hook_freep) struct alpm_hook *h = NULL;
        const char *text = "# a comment\n"
                           "  [Trigger]  \n"
                           "Operation = Install\n"
                           "Operation=Upgrade\n"
                           "Type = File\n"
                           "Target = usr/lib/modules/*/vmlinuz\n"
                           "Target = !usr/lib/modules/*/extra\n"
                           "\n"
                           "[Trigger]\r\n"
                           "Operation = Remove\n"
                           "Type = Package\n"
                           "Target = linux*\n"
                           "[Action]\n"
                           "Description = Updating \"things\"...\n"
                           "When = PreTransaction\n"
                           "Exec = /usr/bin/sh -c 'echo \"a b\"; exit 0' x\\ y\n"
                           "Depends = coreutils\n"
                           "Depends = sh>=1\n"
                           "AbortOnFail\n"
                           "NeedsTargets = yes\n"
                           "NetworkAccess = allowed\n";
        assert_int_equal(parse(&ctx, text, &h, &err), 0);
        assert_string_equal(h->name, "t.hook");
        assert_string_equal(h->desc, "Updating \"things\"...");
        assert_int_equal(h->n_triggers, 2);
        assert_int_equal(h->triggers[0].ops, ALPM_HOOK_OP_INSTALL | ALPM_HOOK_OP_UPGRADE);
        assert_int_equal(h->triggers[0].type, ALPM_HOOK_TYPE_PATH);
        assert_int_equal(strv_length(h->triggers[0].targets), 2);
        assert_string_equal(h->triggers[0].targets[1], "!usr/lib/modules/*/extra");
        assert_int_equal(h->triggers[1].ops, ALPM_HOOK_OP_REMOVE);
        assert_int_equal(h->triggers[1].type, ALPM_HOOK_TYPE_PACKAGE);
        assert_int_equal(h->when, ALPM_HOOK_PRE_TRANSACTION);
        assert_int_equal(strv_length(h->cmd), 5);
        assert_string_equal(h->cmd[0], "/usr/bin/sh");
        assert_string_equal(h->cmd[2], "echo \"a b\"; exit 0");
        assert_string_equal(h->cmd[3], "x\\");
        assert_string_equal(h->cmd[4], "y");
        assert_int_equal(strv_length(h->depends), 2);
        assert_true(h->abort_on_fail);
        assert_true(h->needs_targets);
        assert_true(h->allow_net);
        assert_string_equal(cap.text, "");
}

static void test_parse_warnings(void **state) {
        struct captured cap = {};
        struct mkm_ctx ctx = { .events = { capture, &cap } };
        struct mkm_err err = {};
        _cleanup_(alpm_hook_freep) struct alpm_hook *h = NULL;
        const char *text = "[Trigger]\nOperation = Install\nType = Path\nType = Package\nTarget = x\n"
                           "[Action]\nWhen = PreTransaction\nWhen = PostTransaction\nExec = /a\nExec = /b\n"
                           "Description = one\nDescription = two\nAbortOnFail\n";
        assert_int_equal(parse(&ctx, text, &h, &err), 0);
        assert_string_equal(cap.text,
                            "warning: hook /etc/pacman.d/hooks/t.hook line 4: overwriting previous definition of Type\n"
                            "warning: hook /etc/pacman.d/hooks/t.hook line 8: overwriting previous definition of When\n"
                            "warning: hook /etc/pacman.d/hooks/t.hook line 10: overwriting previous definition of Exec\n"
                            "warning: hook /etc/pacman.d/hooks/t.hook line 12: overwriting previous definition of Description\n"
                            "warning: AbortOnFail set for PostTransaction hook: /etc/pacman.d/hooks/t.hook\n");
        assert_int_equal(h->triggers[0].type, ALPM_HOOK_TYPE_PACKAGE);
        assert_int_equal(h->when, ALPM_HOOK_POST_TRANSACTION);
        assert_string_equal(h->cmd[0], "/b");
        assert_string_equal(h->desc, "two");
}

static void test_parse_dummy(void **state) {
        struct mkm_err err = {};
        _cleanup_(alpm_hook_freep) struct alpm_hook *h1 = NULL, *h2 = NULL;
        /* a triggerless hook (e.g. an empty file, /dev/null) is valid: it only masks others */
        assert_int_equal(parse(NULL, "", &h1, &err), 0);
        assert_int_equal(h1->n_triggers, 0);
        assert_int_equal(parse(NULL, "[Action]\nWhen = PostTransaction\n", &h2, &err), 0);
        assert_null(h2->cmd);
}

static void test_parse_bad(void **state) {
        static const struct {
                const char *text, *msg;
        } cases[] = {
                { "Operation = Install\n", "hook F line 1: invalid option Operation" },
                { "[Trigger]\n[Foo]\n", "hook F line 2: invalid section Foo" },
                { "[]\n", "hook F line 1: invalid section " },
                { "[Trigger]\nOperation = Instal\n", "hook F line 2: invalid value Instal" },
                { "[Trigger]\nOperation = install\n", "hook F line 2: invalid value install" },
                { "[Trigger]\nType = Paths\n", "hook F line 2: invalid value Paths" },
                { "[Trigger]\nWhen = PostTransaction\n", "hook F line 2: invalid option When" },
                { "[Trigger]\nOperation\n", "hook F line 2: Operation needs a value" },
                { "[Action]\nExec\n", "hook F line 2: Exec needs a value" },
                { "[Action]\nWhen = Later\n", "hook F line 2: invalid value Later" },
                { "[Action]\nTarget = x\n", "hook F line 2: invalid option Target" },
                { "[Action]\nExec = /bin/sh -c 'echo\n", "hook F line 2: invalid value /bin/sh -c 'echo" },
                { "[Action]\nExec = \"\n", "hook F line 2: invalid value \"" },
                { "[Action]\nExec =\n", "hook F line 2: invalid value " },
                { "[Action]\nNetworkAccess = yes\n", "hook F line 2: invalid value yes" },
                { "[Action]\n= x\n", "hook F line 2: invalid option " },
                { "[Trigger]\n", "Missing trigger targets in hook: F; Missing trigger type in hook: F; Missing trigger "
                                 "operation in hook: F; Missing Exec option in hook: F; Missing When option in hook: F" },
                { "[Trigger]\nOperation = Install\nType = Path\nTarget = x\n[Trigger]\nType = Package\n[Action]\n"
                  "When = PostTransaction\nExec = /x\n",
                  "Missing trigger targets in hook: F; Missing trigger operation in hook: F" },
                { "[Trigger]\nOperation = Install\nType = Path\nTarget = x\n[Action]\nExec = /x\n",
                  "Missing When option in hook: F" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct mkm_err err = {};
                struct alpm_hook *h = NULL;
                int r = alpm_hook_parse(NULL, cases[i].text, strlen(cases[i].text), "F", &h, &err);
                if (r != -MKM_E_PARSE || strcmp(err.msg, cases[i].msg) != 0)
                        fail_msg("case %zu: r=%d msg '%s', want '%s'", i, r, err.msg, cases[i].msg);
                assert_null(h);
        }
        struct mkm_err err = {};
        struct alpm_hook *h = NULL;
        assert_int_equal(alpm_hook_parse(NULL, "[Action]\0x", 10, "F", &h, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "hook F: contains a NUL byte");
        /* the length is honoured: the text need not be NUL-terminated */
        assert_int_equal(alpm_hook_parse(NULL, "[Foo]", 3, "F", &h, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "hook F line 1: invalid option [Fo");
}

static void test_wordsplit(void **state) {
        static const struct {
                const char *in;
                const char *out[6];
        } cases[] = {
                { "", { NULL } },
                { "   ", { NULL } },
                { "a", { "a", NULL } },
                { "  a  b\tc ", { "a", "b", "c", NULL } },
                { "'a b' \"c d\"", { "a b", "c d", NULL } },
                { "x'a b'y", { "xa by", NULL } },
                { "'it\\'s'", { "it's", NULL } },
                { "\"say \\\"hi\\\"\"", { "say \"hi\"", NULL } },
                { "a\\ b", { "a\\", "b", NULL } },
                { "a\\'b a\\\"b a\\\\b a\\xb", { "a'b", "a\"b", "a\\b", "a\\xb", NULL } },
                { "''", { "", NULL } },
                { "'a\\b'", { "a\\b", NULL } },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_strv_free_ char **w = NULL;
                assert_int_equal(alpm_hook_wordsplit(cases[i].in, &w), 0);
                size_t n = 0;
                for (; cases[i].out[n]; n++) {
                        if (!w[n] || strcmp(w[n], cases[i].out[n]) != 0)
                                fail_msg("case %zu word %zu: '%s' want '%s'", i, n, w[n] ? w[n] : "(null)",
                                         cases[i].out[n]);
                }
                assert_null(w[n]);
        }
        char **w = NULL;
        assert_int_equal(alpm_hook_wordsplit("a 'b", &w), -EINVAL);
        assert_int_equal(alpm_hook_wordsplit("\"", &w), -EINVAL);
        assert_null(w);
}

/* ------------------------------------------------------------------ matching */

static void test_fnmatch_patterns(void **state) {
        char *p1[] = { "usr/lib/*", "!usr/lib/*.a", NULL };
        assert_int_equal(alpm_hook_fnmatch_patterns(p1, "usr/lib/libx.so"), 0);
        assert_int_equal(alpm_hook_fnmatch_patterns(p1, "usr/lib/libx.a"), 1);
        assert_int_equal(alpm_hook_fnmatch_patterns(p1, "usr/bin/x"), -1);
        assert_int_equal(alpm_hook_fnmatch_patterns(p1, "usr/lib/sub/dir/x.so"), 0);  /* '*' crosses '/' */
        /* the last matching pattern wins */
        char *p2[] = { "!usr/lib/*.a", "usr/lib/*", NULL };
        assert_int_equal(alpm_hook_fnmatch_patterns(p2, "usr/lib/libx.a"), 0);
        char *p3[] = { "\\!weird", NULL };
        assert_int_equal(alpm_hook_fnmatch_patterns(p3, "!weird"), 0);
        char *p4[] = { "dir/*", NULL }, *p5[] = { "dir/?*", NULL };
        assert_int_equal(alpm_hook_fnmatch_patterns(p4, "dir/"), 0);
        assert_int_equal(alpm_hook_fnmatch_patterns(p5, "dir/"), -1);
        assert_int_equal(alpm_hook_fnmatch_patterns(p5, "dir/a"), 0);
}

static struct alpm_hook *hook_from(const char *text) {
        struct alpm_hook *h = NULL;
        struct mkm_err err = {};
        if (alpm_hook_parse(NULL, text, strlen(text), "m.hook", &h, &err) < 0)
                fail_msg("%s", err.msg);
        return h;
}

static char *joined(char **l) {
        static char buf[1024];
        buf[0] = 0;
        for (char **p = l; p && *p; p++) {
                strcat(buf, *p);
                strcat(buf, "|");
        }
        return buf;
}

static void test_match(void **state) {
        char *f1[] = { "usr/", "usr/share/", "usr/share/test-hook/", "usr/share/test-hook/one", "usr/share/test-hook/sub/",
                       "usr/share/test-hook/sub/two", NULL };
        char *f2[] = { "usr/", "usr/share/", "usr/share/test-hook/", "usr/share/test-hook/three", "usr/share/x.a", NULL };
        struct alpm_hook_pkg pkgs[] = { { .name = "hooktarget", .version = "1.0-1", .files = f1 },
                                        { .name = "other", .version = "2-1", .files = f2 } };
        char **t = NULL;

        _cleanup_(alpm_hook_freep) struct alpm_hook *star = hook_from(
                "[Trigger]\nOperation = Install\nType = Path\nTarget = usr/share/test-hook/*\n[Action]\n"
                "When = PostTransaction\nExec = /x\nNeedsTargets\n");
        assert_int_equal(alpm_hook_match(star, pkgs, 2, &t), 1);
        /* sorted, de-duplicated across packages, the glob includes "dir/" itself */
        assert_string_equal(joined(t), "usr/share/test-hook/|usr/share/test-hook/one|usr/share/test-hook/sub/|"
                                       "usr/share/test-hook/sub/two|usr/share/test-hook/three|");
        strv_free(t);

        _cleanup_(alpm_hook_freep) struct alpm_hook *qstar = hook_from(
                "[Trigger]\nOperation = Install\nType = Path\nTarget = usr/share/test-hook/?*\nTarget = !*/sub/*\n"
                "[Action]\nWhen = PostTransaction\nExec = /x\nNeedsTargets\n");
        assert_int_equal(alpm_hook_match(qstar, pkgs, 2, &t), 1);
        /* "?*" needs a character after "dir/"; the negation's '*' also matches the empty rest of "sub/" */
        assert_string_equal(joined(t), "usr/share/test-hook/one|usr/share/test-hook/three|");
        strv_free(t);

        /* Package triggers match names; two triggers merge their targets */
        _cleanup_(alpm_hook_freep) struct alpm_hook *pkg = hook_from(
                "[Trigger]\nOperation = Install\nType = Package\nTarget = hook*\n"
                "[Trigger]\nOperation = Install\nType = Path\nTarget = usr/share/*.a\n"
                "[Trigger]\nOperation = Install\nType = Package\nTarget = *\nTarget = !other\n"
                "[Action]\nWhen = PostTransaction\nExec = /x\nNeedsTargets\n");
        assert_int_equal(alpm_hook_match(pkg, pkgs, 2, &t), 1);
        assert_string_equal(joined(t), "hooktarget|usr/share/x.a|");
        strv_free(t);

        /* without NeedsTargets no list is made */
        _cleanup_(alpm_hook_freep) struct alpm_hook *plain = hook_from(
                "[Trigger]\nOperation = Install\nType = Package\nTarget = other\n[Action]\nWhen = PostTransaction\nExec = /x\n");
        assert_int_equal(alpm_hook_match(plain, pkgs, 2, &t), 1);
        assert_null(t);

        /* an initial install upgrades and removes nothing */
        _cleanup_(alpm_hook_freep) struct alpm_hook *upg = hook_from(
                "[Trigger]\nOperation = Upgrade\nOperation = Remove\nType = Package\nTarget = *\n[Action]\n"
                "When = PostTransaction\nExec = /x\n");
        assert_int_equal(alpm_hook_match(upg, pkgs, 2, &t), 0);
        _cleanup_(alpm_hook_freep) struct alpm_hook *none = hook_from(
                "[Trigger]\nOperation = Install\nType = Path\nTarget = etc/*\n[Action]\nWhen = PostTransaction\nExec = /x\n");
        assert_int_equal(alpm_hook_match(none, pkgs, 2, &t), 0);
        /* a leading '/' never matches: file lists are relative */
        _cleanup_(alpm_hook_freep) struct alpm_hook *abs = hook_from(
                "[Trigger]\nOperation = Install\nType = Path\nTarget = /usr/*\n[Action]\nWhen = PostTransaction\nExec = /x\n");
        assert_int_equal(alpm_hook_match(abs, pkgs, 2, &t), 0);
}

/* ------------------------------------------------------------------ loading from a tree */

struct tree {
        char top[64];
        int rootfd;
};

/* Write text to path in the tree (top, the directory rootfd is open on), 0644. */
static void put(struct tree *t, const char *path, const char *text) { th_write_file(t->top, path, text, 0644); }

static int tree_setup(void **state) {
        struct tree *t = calloc(1, sizeof *t);
        strcpy(t->top, "/tmp/mkm-test-hook.XXXXXX");
        assert_non_null(mkdtemp(t->top));
        t->rootfd = open(t->top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(t->rootfd >= 0);
        *state = t;
        return 0;
}

static int tree_teardown(void **state) {
        struct tree *t = *state;
        close(t->rootfd);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, t->top), 0);
        free(t);
        return 0;
}

#define SIMPLE(exec) "[Trigger]\nOperation = Install\nType = Package\nTarget = *\n[Action]\nWhen = PostTransaction\nExec = " exec "\n"

static void free_hooks(struct alpm_hook **h, size_t n) {
        for (size_t i = 0; i < n; i++)
                alpm_hook_free(h[i]);
        free(h);
}

static void test_load(void **state) {
        struct tree *t = *state;
        put(t, "usr/share/libalpm/hooks/a.hook", SIMPLE("/usr/a"));
        put(t, "usr/share/libalpm/hooks/a-b.hook", SIMPLE("/usr/a-b"));
        put(t, "usr/share/libalpm/hooks/ab.hook", SIMPLE("/usr/ab"));
        put(t, "usr/share/libalpm/hooks/over.hook", SIMPLE("/usr/over"));
        put(t, "usr/share/libalpm/hooks/masked.hook", SIMPLE("/usr/masked"));
        put(t, "usr/share/libalpm/hooks/README", "not a hook");
        put(t, "usr/share/libalpm/hooks/dir.hook/x", "a directory is skipped");
        put(t, "etc/pacman.d/hooks/over.hook", SIMPLE("/etc/over"));
        put(t, "etc/pacman.d/hooks/zz.hook", SIMPLE("/etc/zz"));
        assert_int_equal(symlinkat("/dev/null", t->rootfd, "etc/pacman.d/hooks/masked.hook"), 0);
        /* a symlinked hook resolves inside the tree */
        put(t, "etc/real/linked.txt", SIMPLE("/etc/linked"));
        assert_int_equal(symlinkat("/etc/real/linked.txt", t->rootfd, "etc/pacman.d/hooks/linked.hook"), 0);

        struct alpm_hook **h = NULL;
        size_t n = 0;
        struct mkm_err err = {};
        assert_int_equal(alpm_hooks_load(NULL, t->rootfd, true, &h, &n, &err), 0);
        /* pacman's order: by name without ".hook", so "a" < "a-b" < "ab" (strcmp of the full
         * names would put "a-b.hook" first) */
        static const char *const want[][2] = { { "a.hook", "/usr/a" },       { "a-b.hook", "/usr/a-b" },
                                               { "ab.hook", "/usr/ab" },     { "linked.hook", "/etc/linked" },
                                               { "masked.hook", NULL },      { "over.hook", "/etc/over" },
                                               { "zz.hook", "/etc/zz" } };
        assert_int_equal(n, ELEMENTSOF(want));
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(h[i]->name, want[i][0]);
                if (want[i][1])
                        assert_string_equal(h[i]->cmd[0], want[i][1]);
                else
                        assert_int_equal(h[i]->n_triggers, 0);  /* /dev/null: a dummy that masks */
        }
        free_hooks(h, n);
}

static void test_load_errors(void **state) {
        struct tree *t = *state;
        struct captured cap = {};
        struct mkm_ctx ctx = { .events = { capture, &cap } };
        put(t, "usr/share/libalpm/hooks/good.hook", SIMPLE("/usr/good"));
        put(t, "usr/share/libalpm/hooks/broken.hook", SIMPLE("/usr/broken"));
        put(t, "etc/pacman.d/hooks/broken.hook", "[Trigger]\nOperation = Sometimes\n");
        /* a link that would leave the tree resolves inside it, where nothing is */
        assert_int_equal(symlinkat("../../../../../../../etc/hostname", t->rootfd, "etc/pacman.d/hooks/escape.hook"), 0);

        struct alpm_hook **h = NULL;
        size_t n = 0;
        struct mkm_err err = {};
        /* PreTransaction: an unreadable or broken hook aborts */
        int r = alpm_hooks_load(&ctx, t->rootfd, true, &h, &n, &err);
        assert_int_equal(r, -MKM_E_PARSE);
        assert_string_equal(err.msg, "hook /etc/pacman.d/hooks/broken.hook line 2: invalid value Sometimes");
        /* PostTransaction: warnings, and the broken override does not mask the good lower one */
        assert_int_equal(alpm_hooks_load(&ctx, t->rootfd, false, &h, &n, &err), 0);
        assert_string_equal(cap.text, "warning: hook /etc/pacman.d/hooks/broken.hook line 2: invalid value Sometimes; "
                                      "skipping the hook\n"
                                      "warning: could not stat file /etc/pacman.d/hooks/escape.hook: No such file or "
                                      "directory; skipping the hook\n");
        assert_int_equal(n, 2);
        assert_string_equal(h[0]->name, "broken.hook");
        assert_string_equal(h[0]->cmd[0], "/usr/broken");
        assert_string_equal(h[1]->name, "good.hook");
        free_hooks(h, n);

        /* no hook dirs at all: nothing, no error */
        struct tree empty = {};
        strcpy(empty.top, "/tmp/mkm-test-hook-empty.XXXXXX");
        assert_non_null(mkdtemp(empty.top));
        int efd = open(empty.top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_int_equal(alpm_hooks_load(NULL, efd, true, &h, &n, &err), 0);
        assert_int_equal(n, 0);
        free(h);
        close(efd);
        rmdir(empty.top);
}

/* At most 4096 hooks in a directory (a hostile package's thousands would each be parsed and
 * matched): the 4097th refuses the load, other files in the directory do not count. */
static void test_load_cap(void **state) {
        struct tree *t = *state;
        char name[64];
        for (int i = 0; i < 4096; i++) {
                snprintf(name, sizeof name, "etc/pacman.d/hooks/h%04d.hook", i);
                put(t, name, "[Trigger]\nOperation = Sometimes\n");
        }
        put(t, "etc/pacman.d/hooks/README", "not a hook");
        struct alpm_hook **h = NULL;
        size_t n = 0;
        struct mkm_err err = {};
        /* 4096: listed, then the first one's parse error (strict) */
        assert_int_equal(alpm_hooks_load(NULL, t->rootfd, true, &h, &n, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "hook /etc/pacman.d/hooks/h0000.hook line 2: invalid value Sometimes");
        put(t, "etc/pacman.d/hooks/h4096.hook", "[Trigger]\nOperation = Sometimes\n");
        assert_int_equal(alpm_hooks_load(NULL, t->rootfd, true, &h, &n, &err), -E2BIG);
        assert_string_equal(err.msg, "/etc/pacman.d/hooks: more than 4096 hooks");
}

/* ------------------------------------------------------------------ running (root + busybox) */

static void test_run(void **state) {
        struct tree *t = *state;
        if (geteuid() != 0 || access("/bin/busybox", X_OK) != 0) {
                print_message("skipped: needs root and /bin/busybox\n");
                skip();
        }
        assert_int_equal(fs_mkdir_p_at(t->rootfd, "bin", 0755), 0);
        assert_int_equal(fs_mkdir_p_at(t->rootfd, "var/lib", 0755), 0);
        char *bb = NULL;
        size_t bl = 0;
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, "/bin/busybox", 64u << 20, &bb, &bl), 0);
        assert_int_equal(fs_write_file_at(t->rootfd, "bin/busybox", bb, bl, 0755), 0);
        free(bb);
        for (const char *const *a = (const char *const[]){ "sh", "cat", "false", NULL }; *a; a++) {
                char p[32];
                snprintf(p, sizeof p, "bin/%s", *a);
                assert_int_equal(symlinkat("busybox", t->rootfd, p), 0);
        }
        put(t, "usr/share/libalpm/hooks/10-targets.hook",
            "[Trigger]\nOperation = Install\nType = Path\nTarget = usr/share/x/*\n[Action]\nDescription = Recording\n"
            "When = PostTransaction\nExec = /bin/sh -c 'cat > /var/lib/targets; echo ran >> /var/lib/order'\nNeedsTargets\n");
        put(t, "usr/share/libalpm/hooks/20-fails.hook",
            "[Trigger]\nOperation = Install\nType = Package\nTarget = *\n[Action]\nWhen = PostTransaction\n"
            "Exec = /bin/sh -c 'echo oops; exit 4'\n");
        put(t, "usr/share/libalpm/hooks/30-pre.hook",
            "[Trigger]\nOperation = Install\nType = Package\nTarget = pkg\n[Action]\nWhen = PreTransaction\n"
            "Exec = /bin/false\nAbortOnFail\n");
        put(t, "usr/share/libalpm/hooks/40-dep.hook",
            "[Trigger]\nOperation = Install\nType = Package\nTarget = *\n[Action]\nWhen = PostTransaction\n"
            "Depends = sh>=2\nExec = /bin/sh -c 'echo dep >> /var/lib/order'\n");
        char *files[] = { "usr/", "usr/share/", "usr/share/x/", "usr/share/x/b", "usr/share/x/a", NULL };
        char *prov[] = { "sh=1.35", NULL };
        struct alpm_hook_pkg pkgs[] = { { .name = "pkg", .version = "1-1", .provides = prov, .files = files } };
        char root[128];
        snprintf(root, sizeof root, "%s", t->top);
        struct sandbox_opts o = { .hostname = "hooktest", .source_date_epoch = 1, .timeout_s = 20 };
        struct captured cap = {};
        struct mkm_ctx ctx = { .events = { capture, &cap } };
        struct mkm_err err = {};

        /* PreTransaction with AbortOnFail: an error */
        assert_int_equal(alpm_hooks_run(&ctx, root, t->rootfd, ALPM_HOOK_PRE_TRANSACTION, pkgs, 1, pkgs, 1, &o, &err),
                         -MKM_E_SCRIPT);
        assert_string_equal(err.msg, "hook 30-pre.hook failed (AbortOnFail): '/bin/false' exited with status 1");

        /* PostTransaction: the failing hook is a warning; the unsatisfied Depends= an error */
        assert_int_equal(alpm_hooks_run(&ctx, root, t->rootfd, ALPM_HOOK_POST_TRANSACTION, pkgs, 1, pkgs, 1, &o, &err),
                         -MKM_E_DEP_UNSAT);
        assert_string_equal(err.msg, "unable to run hook 40-dep.hook: could not satisfy dependencies ('sh>=2' is not "
                                     "installed)");
        assert_string_equal(cap.text, "warning: hook 20-fails.hook: command failed to execute correctly, ignoring: "
                                      "'/bin/sh -c echo oops; exit 4' exited with status 4:\noops\n");
        char *s = NULL;
        assert_int_equal(fs_read_file_follow_at(t->rootfd, "var/lib/targets", 4096, &s, NULL), 0);
        assert_string_equal(s, "usr/share/x/\nusr/share/x/a\nusr/share/x/b\n");
        free(s);

        /* with the dependency satisfied, every post hook runs, in order */
        char *prov2[] = { "sh=2.0", NULL };
        pkgs[0].provides = prov2;
        assert_int_equal(unlinkat(t->rootfd, "var/lib/order", 0), 0);
        assert_int_equal(alpm_hooks_run(&ctx, root, t->rootfd, ALPM_HOOK_POST_TRANSACTION, pkgs, 1, pkgs, 1, &o, &err), 0);
        assert_int_equal(fs_read_file_follow_at(t->rootfd, "var/lib/order", 4096, &s, NULL), 0);
        assert_string_equal(s, "ran\ndep\n");
        free(s);
}

/* ------------------------------------------------------------------ scriptlet grep */

static void test_script_grep(void **state) {
        static const struct {
                const char *text, *fn;
                bool want;
        } cases[] = {
                { "post_install() {\n\ttrue\n}\n", "post_install", true },
                { "post_install() {\n\ttrue\n}\n", "pre_install", false },
                { "# pre_install is not here\npost_install() { :; }\n", "pre_install", false },
                { "post_install() { :; } # pre_install\n", "pre_install", false },
                { "echo '#'; pre_install() { :; }\n", "pre_install", false },   /* pacman cuts at any '#' */
                { "x=1\npre_upgrade() { :; }", "pre_upgrade", true },         /* no final newline */
                { "", "post_install", false },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (alpm_script_has_function(cases[i].text, strlen(cases[i].text), cases[i].fn) != cases[i].want)
                        fail_msg("case %zu", i);
        /* pacman reads 1023-byte chunks: a name split across two chunks is not found */
        char buf[1100];
        memset(buf, ' ', sizeof buf);
        memcpy(buf + 1020, "post_install", 12);
        assert_false(alpm_script_has_function(buf, sizeof buf, "post_install"));
        memcpy(buf + 1000, "post_install", 12);
        assert_true(alpm_script_has_function(buf, sizeof buf, "post_install"));
        /* a NUL ends what strstr sees of a chunk */
        assert_false(alpm_script_has_function("a\0post_install\n", 15, "post_install"));
        assert_true(alpm_script_has_function("a\0b\npost_install\n", 17, "post_install"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_good),
                cmocka_unit_test(test_parse_warnings),
                cmocka_unit_test(test_parse_dummy),
                cmocka_unit_test(test_parse_bad),
                cmocka_unit_test(test_wordsplit),
                cmocka_unit_test(test_fnmatch_patterns),
                cmocka_unit_test(test_match),
                cmocka_unit_test_setup_teardown(test_load, tree_setup, tree_teardown),
                cmocka_unit_test_setup_teardown(test_load_errors, tree_setup, tree_teardown),
                cmocka_unit_test_setup_teardown(test_load_cap, tree_setup, tree_teardown),
                cmocka_unit_test_setup_teardown(test_run, tree_setup, tree_teardown),
                cmocka_unit_test(test_script_grep),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
