/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/policy (the host's policy.conf): the parser (lists that accumulate and
 * reset, all/none, booleans, every error with its line), paths by components, capability names,
 * the judgement of each kind of grant with the policy line it names, and policy_load under a
 * host root. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctx.h"
#include "policy.h"
#include "privileges.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strv.h"

#define PATH "/etc/mkmachine/policy.conf"

static struct policy *parse_ok(const char *text) {
        struct policy *p = NULL;
        struct mkm_err err = {};
        int q = policy_parse(text, strlen(text), PATH, &p, &err);
        if (q < 0)
                fail_msg("policy: %s", err.msg);
        return p;
}

static void test_parse(void **state) {
        (void)state;
        _cleanup_(policy_freep) struct policy *p = parse_ok("# comment\n"
                                                            "[Recipes]\n"
                                                            "AllowBindSources=/srv/ /home\n"
                                                            "AllowBindSources=/var/lib/data\n"
                                                            "AllowCapabilities=net_admin CAP_SYS_NICE\n"
                                                            "AllowModules=fuse\n"
                                                            "AllowModules=\n"
                                                            "AllowDevices=all\n"
                                                            "AllowSystemCallFilter=none\n"
                                                            "AllowPrivileged=yes\n"
                                                            "AllowHostNetwork=off\n");
        const char *binds[] = { "/srv/", "/home", "/var/lib/data", NULL };
        assert_int_equal(strv_length(p->bind_sources.items), 3);
        for (size_t i = 0; binds[i]; i++)
                assert_string_equal(p->bind_sources.items[i], binds[i]);
        assert_int_equal(p->bind_sources.line, 4);      /* the last assignment */
        assert_string_equal(p->capabilities.items[0], "CAP_NET_ADMIN");
        assert_string_equal(p->capabilities.items[1], "CAP_SYS_NICE");
        assert_null(p->modules.items);                  /* reset by the empty assignment */
        assert_int_equal(p->modules.line, 7);
        assert_false(p->modules.all);
        assert_true(p->devices.all);
        assert_null(p->syscalls.items);
        assert_int_equal(p->syscalls.line, 9);
        assert_true(p->privileged.allow);
        assert_int_equal(p->privileged.line, 10);
        assert_false(p->host_network.allow);
        assert_int_equal(p->host_network.line, 11);
        assert_int_equal(p->ports.line, 0);             /* not set */
        assert_string_equal(p->path, PATH);
}

static void test_parse_errors(void **state) {
        (void)state;
        const char *text = "[Recipes]\n"
                           "AllowBindSources=srv\n"
                           "AllowEverything=yes\n"
                           "AllowPrivileged=maybe\n"
                           "AllowDevices=/etc/passwd\n"
                           "AllowCapabilities=all CAP_SYS_ADMIN\n"
                           "AllowCapabilities=CAP-X\n"
                           "AllowBindSources=/srv/../etc\n"
                           "[Other]\n"
                           "AllowPorts=yes\n";
        struct policy *p = NULL;
        struct mkm_err err = {};
        assert_int_equal(policy_parse(text, strlen(text), PATH, &p, &err), -MKM_E_PARSE);
        assert_null(p);
        assert_int_equal(err.code, -MKM_E_PARSE);
        const char *want = PATH ":2: [Recipes] AllowBindSources=: expected absolute paths without '.' or '..' components, or none, got 'srv'\n"
                           PATH ":3: [Recipes] AllowEverything=: unknown key; expected one of AllowPrivileged=, AllowCapabilities=, "
                           "AllowSystemCallFilter=, AllowBindSources=, AllowBindUsers=, AllowDevices=, AllowHostNetwork=, "
                           "AllowBuildNetwork=, AllowHostInterfaces=, AllowPorts=, AllowModules=, AllowServiceSettings=\n"
                           PATH ":4: [Recipes] AllowPrivileged=: expected yes or no, got 'maybe'\n"
                           PATH ":5: [Recipes] AllowDevices=: expected device paths under /dev, all or none, got '/etc/passwd'\n"
                           PATH ":6: [Recipes] AllowCapabilities=: expected capability names (CAP_NET_ADMIN ...), all or none, got 'all'\n"
                           PATH ":7: [Recipes] AllowCapabilities=: expected capability names (CAP_NET_ADMIN ...), all or none, got 'CAP-X'\n"
                           PATH ":8: [Recipes] AllowBindSources=: expected absolute paths without '.' or '..' components, or none, got '/srv/../etc'\n"
                           PATH ":9: [Other]: unknown section; expected [Recipes]";
        assert_string_equal(err.msg, want);

        /* A syntax error is the INI parser's, with its line. */
        assert_int_equal(policy_parse("[Recipes\n", 9, PATH, &p, &err), -MKM_E_PARSE);
        assert_non_null(strstr(err.msg, PATH ":1:"));
        /* "all" is no bind source: "/" is. */
        static const char all_src[] = "[Recipes]\nAllowBindSources=all\n";
        assert_int_equal(policy_parse(all_src, strlen(all_src), PATH, &p, &err), -MKM_E_PARSE);
        /* "all" in a list, in any case, is an error, never a list item that allows everything;
         * alone, in any case, it is all. */
        static const char mixed[] = "[Recipes]\nAllowCapabilities=CAP_NET_ADMIN All\n";
        assert_int_equal(policy_parse(mixed, strlen(mixed), PATH, &p, &err), -MKM_E_PARSE);
        assert_non_null(strstr(err.msg, "got 'All'"));
        static const char upper[] = "[Recipes]\nAllowCapabilities=ALL\n";
        struct policy *pu = NULL;
        assert_int_equal(policy_parse(upper, strlen(upper), PATH, &pu, &err), 0);
        assert_true(pu->capabilities.all);
        policy_free(pu);
}

static void test_path_under(void **state) {
        (void)state;
        static const struct {
                const char *path, *prefix;
                bool under;
        } t[] = {
                { "/srv/a", "/srv", true },        { "/srv/a", "/srv/", true },      { "/srv", "/srv/", true },
                { "/srvx", "/srv", false },        { "/srvx/a", "/srv/", false },    { "/sr", "/srv", false },
                { "/", "/", true },                { "/etc/shadow", "/", true },     { "//srv//a/", "/srv", true },
                { "/srv/../etc", "/srv", false },  { "/srv/./a", "/srv", false },    { "/srv/..", "/", false },
                { "srv/a", "/srv", false },        { "/srv/a", "srv", false },       { "/home/alice", "/home/alice/", true },
                { "/home", "/home/alice", false }, { "/dev/net/tun", "/dev", true }, { "/dev/fuse", "/dev/fuse", true },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
                if (policy_path_under(t[i].path, t[i].prefix) != t[i].under)
                        fail_msg("policy_path_under('%s', '%s') should be %s", t[i].path, t[i].prefix,
                                 t[i].under ? "true" : "false");
}

static void test_capability_names(void **state) {
        (void)state;
        static const char *const t[][2] = {
                { "net_admin", "CAP_NET_ADMIN" }, { "cap_net_admin", "CAP_NET_ADMIN" },
                { "CAP_SYS_ADMIN", "CAP_SYS_ADMIN" }, { "all", "all" }, { "ALL", "all" },
                /* numbers as systemd reads them: the first, CAP_SYS_ADMIN, the last known */
                { "0", "CAP_CHOWN" }, { "21", "CAP_SYS_ADMIN" }, { "40", "CAP_CHECKPOINT_RESTORE" },
                { "31", "CAP_SETFCAP" },
                /* every spelling systemd's safe_atoi() reads: sign, hex, octal, 0o, 0b */
                { "+21", "CAP_SYS_ADMIN" }, { "0x15", "CAP_SYS_ADMIN" }, { "025", "CAP_SYS_ADMIN" },
                { "021", "CAP_SYS_RAWIO" }, { "0o25", "CAP_SYS_ADMIN" }, { "0b10101", "CAP_SYS_ADMIN" },
                { "0X15", "CAP_SYS_ADMIN" }, { "-0", "CAP_CHOWN" },
                /* beyond the table: a word only "all" covers */
                { "41", "CAP_41" }, { "99999", "CAP_99999" }, { "0x29", "CAP_41" },
                /* not numbers: names */
                { "0x", "CAP_0X" }, { "21a", "CAP_21A" }, { "-1", "CAP_-1" },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                _cleanup_free_ char *n = policy_capability_normalize(t[i][0]);
                assert_string_equal(n, t[i][1]);
        }
}

static int judge(const struct policy *p, enum priv_kind kind, const char *value, char **why) {
        struct priv_grant g = { .kind = kind, .value = (char *)value, .setting = (char *)"x" };
        return policy_allows(p, &g, why);
}

static void expect(const struct policy *p, enum priv_kind kind, const char *value, const char *why_want) {
        _cleanup_free_ char *why = NULL;
        int q = judge(p, kind, value, &why);
        assert_true(q >= 0);
        if (!why_want) {
                if (q != 1)
                        fail_msg("%s '%s' should be allowed, got: %s", priv_kind_to_string(kind), value, why);
                assert_null(why);
                return;
        }
        if (q != 0)
                fail_msg("%s '%s' should be refused", priv_kind_to_string(kind), value);
        assert_string_equal(why, why_want);
}

static void test_allows(void **state) {
        (void)state;
        _cleanup_(policy_freep) struct policy *p = parse_ok("[Recipes]\n"
                                                            "AllowBindSources=/srv/ /home\n"
                                                            "AllowCapabilities=CAP_NET_ADMIN\n"
                                                            "AllowDevices=/dev/fuse /dev/net\n"
                                                            "AllowModules=fuse\n"
                                                            "AllowPrivileged=no\n"
                                                            "AllowPorts=yes\n"
                                                            "AllowSystemCallFilter=@keyring\n"
                                                            "AllowServiceSettings=Environment\n"
                                                            "AllowBindUsers=all\n");
        expect(p, PRIV_BIND, "/srv/web/data", NULL);
        expect(p, PRIV_BIND, "/home", NULL);
        expect(p, PRIV_BIND, "/srvx", "the policy " PATH ":2 allows the bind sources /srv/ /home only (AllowBindSources=)");
        expect(p, PRIV_BIND, "/", "the policy " PATH ":2 allows the bind sources /srv/ /home only (AllowBindSources=)");
        expect(p, PRIV_BIND, "/srv/../etc", "the policy " PATH ":2 allows the bind sources /srv/ /home only (AllowBindSources=)");
        /* A path in the machine's tree ("+"): resolved on the host, any path; never under /srv. */
        expect(p, PRIV_BIND, "+/srv/web", "the policy " PATH ":2 allows the bind sources /srv/ /home only (AllowBindSources=)");
        expect(p, PRIV_BIND, "+/../../etc", "the policy " PATH ":2 allows the bind sources /srv/ /home only (AllowBindSources=)");
        expect(p, PRIV_CAPABILITY, "CAP_NET_ADMIN", NULL);
        expect(p, PRIV_CAPABILITY, "all", "the policy " PATH ":3 allows the capabilities CAP_NET_ADMIN only (AllowCapabilities=)");
        expect(p, PRIV_CAPABILITY, "CAP_SYS_ADMIN", "the policy " PATH ":3 allows the capabilities CAP_NET_ADMIN only (AllowCapabilities=)");
        expect(p, PRIV_DEVICE, "/dev/net/tun", NULL);
        expect(p, PRIV_DEVICE, "/dev/fuse", NULL);
        expect(p, PRIV_DEVICE, "/dev/sda", "the policy " PATH ":4 allows the devices /dev/fuse /dev/net only (AllowDevices=)");
        expect(p, PRIV_MODULE, "fuse", NULL);
        expect(p, PRIV_MODULE, "overlay", "the policy " PATH ":5 allows the kernel modules fuse only (AllowModules=)");
        expect(p, PRIV_PRIVILEGED, "no", "the policy " PATH ":6 forbids privileged machines (AllowPrivileged=no)");
        expect(p, PRIV_PRIVILEGED, "uid0", "the policy " PATH ":6 forbids privileged machines (AllowPrivileged=no)");
        expect(p, PRIV_PORT, "tcp:80:8080", NULL);
        expect(p, PRIV_SYSCALL, "@keyring", NULL);
        expect(p, PRIV_SYSCALL, "bpf", "the policy " PATH ":8 allows the system calls @keyring only (AllowSystemCallFilter=)");
        expect(p, PRIV_SERVICE, "Environment=SYSTEMD_NSPAWN_USE_CGNS=0", NULL);
        expect(p, PRIV_SERVICE, "Delegate=yes", "the policy " PATH ":9 allows the service settings Environment only (AllowServiceSettings=)");
        expect(p, PRIV_BIND_USER, "alice", NULL);
        /* Keys left out allow nothing, and say so. */
        expect(p, PRIV_HOST_NETWORK, "host", "the policy " PATH " does not allow the host's network (no AllowHostNetwork=yes)");
        expect(p, PRIV_BUILD_NETWORK, "host",
               "the policy " PATH " does not allow the host's network during the build (no AllowBuildNetwork=yes)");
        expect(p, PRIV_HOST_INTERFACE, "Bridge=br0", "the policy " PATH " does not allow host interfaces (no AllowHostInterfaces=yes)");

        _cleanup_(policy_freep) struct policy *empty = parse_ok("[Recipes]\nAllowCapabilities=none\n");
        expect(empty, PRIV_CAPABILITY, "CAP_NET_ADMIN", "the policy " PATH ":2 allows no capabilities (AllowCapabilities=)");
        expect(empty, PRIV_BIND, "/srv", "the policy " PATH " allows no bind sources (no AllowBindSources=)");
        expect(empty, PRIV_BIND_USER, "root", "the policy " PATH " allows no host users (no AllowBindUsers=)");

        _cleanup_(policy_freep) struct policy *all = parse_ok("[Recipes]\nAllowCapabilities=all\nAllowBindSources=/\n"
                                                              "AllowPrivileged=yes\nAllowHostNetwork=yes\n"
                                                              "AllowBuildNetwork=no\n");
        expect(all, PRIV_CAPABILITY, "all", NULL);
        expect(all, PRIV_BIND, "/", NULL);
        expect(all, PRIV_BIND, "/etc/shadow", NULL);
        expect(all, PRIV_BIND, "+/../../etc", NULL);
        expect(all, PRIV_PRIVILEGED, "no", NULL);
        expect(all, PRIV_HOST_NETWORK, "host", NULL);
        /* The machine's host network is not the build's. */
        expect(all, PRIV_BUILD_NETWORK, "host",
               "the policy " PATH ":6 forbids the host's network during the build (AllowBuildNetwork=no)");
        _cleanup_(policy_freep) struct policy *build = parse_ok("[Recipes]\nAllowBuildNetwork=yes\n");
        expect(build, PRIV_BUILD_NETWORK, "host", NULL);
        expect(build, PRIV_HOST_NETWORK, "host", "the policy " PATH " does not allow the host's network (no AllowHostNetwork=yes)");
}

static void test_load(void **state) {
        (void)state;
        char dir[] = "/tmp/mkm-test-policy.XXXXXX";
        assert_non_null(mkdtemp(dir));
        struct mkm_ctx ctx = { .host_root = dir };
        struct policy *p = (struct policy *)1;
        struct mkm_err err = {};
        assert_int_equal(policy_load(&ctx, &p, &err), 0);
        assert_null(p);         /* no file: no policy */

        _cleanup_free_ char *etc = NULL, *file = NULL;
        assert_true(asprintf(&etc, "%s/etc/mkmachine", dir) > 0);
        assert_true(asprintf(&file, "%s/policy.conf", etc) > 0);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, etc, 0755), 0);
        assert_int_equal(fs_write_file_at(AT_FDCWD, file, "[Recipes]\nAllowPorts=yes\n", 25, 0644), 0);
        assert_int_equal(policy_load(&ctx, &p, &err), 0);
        assert_non_null(p);
        assert_true(p->ports.allow);
        assert_string_equal(p->path, file);
        p = policy_free(p);

        /* An error in the host's policy is a usage error (exit 2), as one in mkmachine.conf. */
        assert_int_equal(fs_write_file_at(AT_FDCWD, file, "[Recipes]\nAllowPorts=perhaps\n", 29, 0644), 0);
        assert_int_equal(policy_load(&ctx, &p, &err), -MKM_E_USAGE);
        assert_int_equal(err.code, -MKM_E_USAGE);
        assert_non_null(strstr(err.msg, ":2: [Recipes] AllowPorts=: expected yes or no, got 'perhaps'"));
        /* A symlink to nothing is not "no policy" (which allows everything): it fails closed. */
        assert_int_equal(unlink(file), 0);
        assert_int_equal(symlink("/nonexistent/policy.conf", file), 0);
        assert_int_equal(policy_load(&ctx, &p, &err), -MKM_E_USAGE);
        assert_null(p);
        assert_non_null(strstr(err.msg, "cannot read the policy"));
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_path_under),
                cmocka_unit_test(test_capability_names),
                cmocka_unit_test(test_allows),
                cmocka_unit_test(test_load),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
