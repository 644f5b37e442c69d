/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/privileges: the grants derived from a recipe's host files on hosts with
 * systemd 250 and 257 (each hook's, credited to its key and line; the recipe's own binds,
 * devices, capabilities, system calls, PrivateUsers=, network), what an older generation covers,
 * the words, and the assessment against a policy and a deployed generation in a scratch host
 * root, with the refusals' messages. */
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

#include "ctx.h"
#include "helpers.h"
#include "hooks.h"
#include "hostinfo.h"
#include "privileges.h"
#include "recipe.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strv.h"

#define FILE_ "/srv/recipes/web.recipe"

/* The recipe's own lines start at line 6. */
static struct recipe *load(const char *body) {
        _cleanup_free_ char *text = NULL;
        assert_true(asprintf(&text, "[Machine]\nName=web\n[Bootstrap]\nDistribution=arch\nArchitecture=x86_64\n%s", body) > 0);
        struct mkm_err err = {};
        struct recipe *r = NULL;
        if (recipe_load_buffer(text, strlen(text), FILE_, &r, &err) < 0)
                fail_msg("recipe: %s", err.msg);
        return r;
}

/* One grant as "kind value [ro] | setting | key@line | added_by". */
static char *show(const struct priv_grant *g) {
        char *s = NULL;
        assert_true(asprintf(&s, "%s %s%s | %s | %s@%u | %s", priv_kind_to_string(g->kind), g->value,
                             g->read_only ? " ro" : "", g->setting, g->key ? g->key : "-", g->line,
                             g->added_by ? g->added_by : "-") > 0);
        return s;
}

static void derive_on(const char *body, unsigned sdver, enum hostinfo_cgroup cg, const char *const *want) {
        _cleanup_(recipe_freep) struct recipe *r = load(body);
        _cleanup_(hooks_needs_done) struct hooks_needs needs = {};
        _cleanup_(host_files_done) struct host_files hf = {};
        _cleanup_(privileges_done) struct privileges p = {};
        struct hooks_host host = { .systemd_version = sdver, .cgroup = cg };
        struct mkm_err err = {};
        assert_int_equal(hooks_host_needs(NULL, r, &host, &needs, &err), 0);
        assert_int_equal(hooks_render_host_files(NULL, r, &needs, &hf), 0);
        assert_int_equal(privileges_from_host_files(&hf, r, &needs, &p), 0);
        size_t n = 0;
        while (want[n])
                n++;
        for (size_t i = 0; i < p.n || i < n; i++) {
                _cleanup_free_ char *got = i < p.n ? show(&p.items[i]) : NULL;
                if (i >= n)
                        fail_msg("unexpected grant %zu: %s", i, got);
                if (!got)
                        fail_msg("missing grant %zu: %s", i, want[i]);
                if (strcmp(got, want[i]) != 0)
                        fail_msg("grant %zu:\n  got  %s\n  want %s", i, got, want[i]);
        }
}

static void derive(const char *body, unsigned sdver, const char *const *want) {
        derive_on(body, sdver, HOSTINFO_CGROUP_UNIFIED, want);
}

static void test_docker(void **state) {
        (void)state;
        /* The default: a user-namespaced machine; its base is no grant, the keyring calls are.
         * [Hooks] is line 6, DockerStorageDriver= line 7. */
        derive("[Hooks]\nDockerStorageDriver=overlay2\n", 257,
               (const char *const[]){
                       "syscall @keyring | [Exec] SystemCallFilter=@keyring | [Hooks] DockerStorageDriver=@7 | "
                       "DockerStorageDriver=overlay2 (runc gives each container a session keyring; the keys belong to "
                       "the machine's unprivileged root)",
                       "module overlay | overlay | [Hooks] DockerStorageDriver=@7 | DockerStorageDriver=overlay2 (runc "
                       "gives each container a session keyring; the keys belong to the machine's unprivileged root)",
                       NULL });
        /* DockerPrivileged=yes (line 8): its grants are credited to that line. */
#define PRIV "DockerStorageDriver=overlay2 with DockerPrivileged=yes (the machine's root is the host's root)"
        derive("[Hooks]\nDockerStorageDriver=overlay2\nDockerPrivileged=yes\n", 257,
               (const char *const[]){
                       "capability all | [Exec] Capability=all | [Hooks] DockerPrivileged=@8 | " PRIV,
                       "privileged no | [Exec] PrivateUsers=no | [Hooks] DockerPrivileged=@8 | " PRIV,
                       "syscall @keyring | [Exec] SystemCallFilter=@keyring bpf | [Hooks] DockerPrivileged=@8 | " PRIV,
                       "syscall bpf | [Exec] SystemCallFilter=@keyring bpf | [Hooks] DockerPrivileged=@8 | " PRIV,
                       "module overlay | overlay | [Hooks] DockerPrivileged=@8 | " PRIV,
                       NULL });
#undef PRIV
        /* On the legacy cgroup hierarchy the drop-in's setting is the Docker hook's too. */
#define PRIV "DockerStorageDriver=vfs with DockerPrivileged=yes (the machine's root is the host's root)"
        derive_on("[Hooks]\nDockerStorageDriver=vfs\nDockerPrivileged=yes\n[Exec]\nPrivateUsers=pick\n", 250,
                  HOSTINFO_CGROUP_LEGACY,
                  (const char *const[]){
                          "capability all | [Exec] Capability=all | [Hooks] DockerPrivileged=@8 | " PRIV,
                          "syscall @keyring | [Exec] SystemCallFilter=@keyring bpf | [Hooks] DockerPrivileged=@8 | " PRIV,
                          "syscall bpf | [Exec] SystemCallFilter=@keyring bpf | [Hooks] DockerPrivileged=@8 | " PRIV,
                          "service Environment=SYSTEMD_NSPAWN_USE_CGNS=0 | [Service] Environment=SYSTEMD_NSPAWN_USE_CGNS=0 | "
                          "[Hooks] DockerPrivileged=@8 | " PRIV,
                          NULL });
#undef PRIV
}

static void test_fuse(void **state) {
        (void)state;
        derive("[Hooks]\nFuse=yes\n", 250,
               (const char *const[]){
                       "device /dev/fuse | [Files] Bind=/dev/fuse | [Hooks] Fuse=@7 | Fuse=yes",
                       "device /dev/fuse | [Service] DeviceAllow=/dev/fuse rwm | [Hooks] Fuse=@7 | Fuse=yes",
                       "module fuse | fuse | [Hooks] Fuse=@7 | Fuse=yes",
                       NULL });
        derive("[Hooks]\nFuse=yes\n", 257, (const char *const[]){ "module fuse | fuse | [Hooks] Fuse=@7 | Fuse=yes", NULL });
        /* The recipe binding /dev/fuse itself: its own line wins the credit. */
        derive("[Hooks]\nFuse=yes\n[Files]\nBind=/dev/fuse\n", 250,
               (const char *const[]){
                       "device /dev/fuse | [Files] Bind=/dev/fuse | [Files] Bind=@9 | -",
                       "device /dev/fuse | [Service] DeviceAllow=/dev/fuse rwm | [Hooks] Fuse=@7 | Fuse=yes",
                       "module fuse | fuse | [Hooks] Fuse=@7 | Fuse=yes",
                       NULL });
}

static void test_files(void **state) {
        (void)state;
        derive("[Files]\n"
               "Bind=/srv/a:/a\n"                       /* 7 */
               "BindReadOnly=/etc/ssl:/etc/ssl:norbind\n"
               "Bind=+/inside:/x\n"                     /* resolved on the host: any path */
               "Bind=/dev/net/tun\n"                    /* 10 */
               "Bind=/src\\:with\\:colons:/dst\n"
               "Overlay=/srv/low:+/up:/data\n"          /* 12 */
               "OverlayReadOnly=/srv/l1:/srv/l2:/ro\n"
               "BindUser=alice bob\n"                   /* 14 */
               "TemporaryFileSystem=/tmp\n"
               "Bind=/dev\n",                           /* 16 */
               0,
               (const char *const[]){
                       "bind /srv/a | [Files] Bind=/srv/a:/a | [Files] Bind=@7 | -",
                       "bind +/inside | [Files] Bind=+/inside:/x | [Files] Bind=@9 | -",
                       "device /dev/net/tun | [Files] Bind=/dev/net/tun | [Files] Bind=@10 | -",
                       "bind /src:with:colons | [Files] Bind=/src\\:with\\:colons:/dst | [Files] Bind=@11 | -",
                       "device /dev | [Files] Bind=/dev | [Files] Bind=@16 | -",
                       "bind /etc/ssl ro | [Files] BindReadOnly=/etc/ssl:/etc/ssl:norbind | [Files] BindReadOnly=@8 | -",
                       "bind-user alice | [Files] BindUser=alice bob | [Files] BindUser=@14 | -",
                       "bind-user bob | [Files] BindUser=alice bob | [Files] BindUser=@14 | -",
                       "bind /srv/low ro | [Files] Overlay=/srv/low:+/up:/data | [Files] Overlay=@12 | -",
                       "bind +/up | [Files] Overlay=/srv/low:+/up:/data | [Files] Overlay=@12 | -",
                       "bind /srv/l1 ro | [Files] OverlayReadOnly=/srv/l1:/srv/l2:/ro | [Files] OverlayReadOnly=@13 | -",
                       "bind /srv/l2 ro | [Files] OverlayReadOnly=/srv/l1:/srv/l2:/ro | [Files] OverlayReadOnly=@13 | -",
                       NULL });
        /* Two paths: the second is the upper directory on the host (written to) and the mount
         * point (systemd.nspawn(5)); the lower one is only read. */
        derive("[Files]\nOverlay=/srv/ok:/etc\n", 0,
               (const char *const[]){ "bind /srv/ok ro | [Files] Overlay=/srv/ok:/etc | [Files] Overlay=@7 | -",
                                      "bind /etc | [Files] Overlay=/srv/ok:/etc | [Files] Overlay=@7 | -", NULL });
        /* An idmapped bind: the machine's users own the files as the host's users do. */
        derive("[Files]\nBind=/srv/a:/a:idmap\n", 0,
               (const char *const[]){ "bind /srv/a | [Files] Bind=/srv/a:/a:idmap | [Files] Bind=@7 | -",
                                      "privileged idmapped-bind | [Files] Bind=/srv/a:/a:idmap | [Files] Bind=@7 | -",
                                      NULL });
        /* A "+" source idmapped: any host path, owned by the machine's users as the host's. */
        derive("[Files]\nBind=+/../../../etc:/hostetc:idmap\n", 0,
               (const char *const[]){ "bind +/../../../etc | [Files] Bind=+/../../../etc:/hostetc:idmap | [Files] Bind=@7 | -",
                                      "privileged idmapped-bind | [Files] Bind=+/../../../etc:/hostetc:idmap | [Files] Bind=@7 | -",
                                      NULL });
        /* A reset drops what came before it. */
        derive("[Files]\nBind=/:/host\nBind=\nBind=/srv/b\n", 0,
               (const char *const[]){ "bind /srv/b | [Files] Bind=/srv/b | [Files] Bind=@9 | -", NULL });
}

static void test_exec(void **state) {
        (void)state;
        derive("[Exec]\n"
               "Capability=cap_net_admin SYS_TIME\n"    /* 7 */
               "AmbientCapability=CAP_NET_RAW\n"
               "DropCapability=CAP_SYS_ADMIN\n"
               "SystemCallFilter=~@mount\n"             /* a deny list: nothing */
               "SystemCallFilter=add_key\n",            /* 11 */
               0,
               (const char *const[]){
                       "capability CAP_NET_ADMIN | [Exec] Capability=cap_net_admin SYS_TIME | [Exec] Capability=@7 | -",
                       "capability CAP_SYS_TIME | [Exec] Capability=cap_net_admin SYS_TIME | [Exec] Capability=@7 | -",
                       "capability CAP_NET_RAW | [Exec] AmbientCapability=CAP_NET_RAW | [Exec] AmbientCapability=@8 | -",
                       "syscall add_key | [Exec] SystemCallFilter=add_key | [Exec] SystemCallFilter=@11 | -",
                       NULL });
        /* Settings that reach the host's resources are service grants, judged by their key. */
        derive("[Exec]\nOOMScoreAdjust=-1000\nLimitMEMLOCK=infinity\nLinkJournal=try-host\n", 0,
               (const char *const[]){
                       "service LimitMEMLOCK=infinity | [Exec] LimitMEMLOCK=infinity | [Exec] LimitMEMLOCK=@8 | -",
                       "service OOMScoreAdjust=-1000 | [Exec] OOMScoreAdjust=-1000 | [Exec] OOMScoreAdjust=@7 | -",
                       "service LinkJournal=try-host | [Exec] LinkJournal=try-host | [Exec] LinkJournal=@9 | -",
                       NULL });
        derive("[Exec]\nLinkJournal=try-guest\n", 0, (const char *const[]){ NULL });
        derive("[Exec]\nLinkJournal=guest\n", 0, (const char *const[]){ NULL });
        derive("[Exec]\nLinkJournal=no\n", 0, (const char *const[]){ NULL });
        /* auto binds the host's directory for the machine's ID when it exists (systemd-nspawn(1)). */
        derive("[Exec]\nLinkJournal=auto\n", 0,
               (const char *const[]){ "service LinkJournal=auto | [Exec] LinkJournal=auto | [Exec] LinkJournal=@7 | -", NULL });
        /* systemd reads a number as the capability of that number: 21 is CAP_SYS_ADMIN. */
        derive("[Exec]\nCapability=21\n", 0,
               (const char *const[]){ "capability CAP_SYS_ADMIN | [Exec] Capability=21 | [Exec] Capability=@7 | -", NULL });
        /* PrivateUsers=: root as the host's root, or as UID 0 on the host, or not ("0" is a boolean to
         * nspawn, as to systemd's parser: no user namespace). */
        static const char *const t[][2] = {
                { "no", "no" },         { "false", "no" },     { "0", "no" },      { "0:65536", "uid0" },
                { "identity", "uid0" }, { "yes", "uid0" },     { "pick", NULL },   { "524288", NULL },
                { "managed", NULL },    { "65536:65536", "host-uids" }, { "1000", "host-uids" },
                { "524287", "host-uids" }, { "524288:65536", NULL },
                /* The top of the container range (0x6FFF0000 + 65536 = 0x70000000), and past it. */
                { "1878982656", NULL }, { "1878982657", "host-uids" }, { "1879048192", "host-uids" },
                { "524288:1879048192", "host-uids" },
                /* More than one machine's slot. */
                { "524288:65537", "wide-uids" }, { "589824:131072", "wide-uids" }, { "589824:1", NULL },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                _cleanup_free_ char *body = NULL, *line = NULL;
                assert_true(asprintf(&body, "[Exec]\nPrivateUsers=%s\n", t[i][0]) > 0);
                if (!t[i][1]) {
                        derive(body, 257, (const char *const[]){ NULL });
                        continue;
                }
                assert_true(asprintf(&line, "privileged %s | [Exec] PrivateUsers=%s | [Exec] PrivateUsers=@7 | -", t[i][1],
                                     t[i][0]) > 0);
                derive(body, 257, (const char *const[]){ line, NULL });
        }
}

static void test_network(void **state) {
        (void)state;
        /* No [Network] key: the unit's --network-veth, a private network. */
        derive("[Exec]\nBoot=yes\n", 0, (const char *const[]){ NULL });
        derive("[Network]\nVirtualEthernet=yes\nPort=tcp:80:8080\n", 0,
               (const char *const[]){ "port tcp:80:8080 | [Network] Port=tcp:80:8080 | [Network] Port=@8 | -", NULL });
        derive("[Network]\nVirtualEthernet=no\n", 0,
               (const char *const[]){ "host-network host | [Network] VirtualEthernet=no | [Network] VirtualEthernet=@7 | -", NULL });
        derive("[Network]\nPrivate=off\nVirtualEthernet=no\n", 0,
               (const char *const[]){ "host-network host | [Network] Private=off | [Network] Private=@7 | -", NULL });
        derive("[Network]\nPrivate=yes\n", 0, (const char *const[]){ NULL });
        /* An interface makes the network private, and is a grant of its own. */
        derive("[Network]\nVirtualEthernet=no\nBridge=br0\nInterface=eth1 eth2\n", 0,
               (const char *const[]){
                       "host-interface Interface=eth1 | [Network] Interface=eth1 eth2 | [Network] Interface=@9 | -",
                       "host-interface Interface=eth2 | [Network] Interface=eth1 eth2 | [Network] Interface=@9 | -",
                       "host-interface Bridge=br0 | [Network] Bridge=br0 | [Network] Bridge=@8 | -",
                       NULL });
        derive("[Network]\nVirtualEthernet=no\nBridge=br0\n", 0,
               (const char *const[]){ "host-interface Bridge=br0 | [Network] Bridge=br0 | [Network] Bridge=@8 | -", NULL });
        derive("[Network]\nZone=web\nMACVLAN=eth0\n", 0,
               (const char *const[]){
                       "host-interface MACVLAN=eth0 | [Network] MACVLAN=eth0 | [Network] MACVLAN=@8 | -",
                       "host-interface Zone=web | [Network] Zone=web | [Network] Zone=@7 | -",
                       NULL });
}

/* A host file mkmachine cannot parse (systemd skips a bad line and reads on) is judged as a
 * privileged machine, never as granting nothing, and is new every time. */
static void test_unreadable(void **state) {
        (void)state;
        /* A line longer than ours (systemd takes up to 1 MiB), e.g. two values joined by a
         * trailing backslash the renderer wrote. */
        _cleanup_free_ char *long_line = malloc(80000);
        assert_non_null(long_line);
        int off = snprintf(long_line, 80000, "[Exec]\nEnvironment=X=");
        memset(long_line + off, 'A', 70000);
        strcpy(long_line + off + 70000, "\nPrivateUsers=no\n");
        const char *const bad[] = {
                "junk line\n[Exec]\nPrivateUsers=no\nCapability=all\n[Files]\nBind=/:/host\n",
                long_line,
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                struct host_files hf = { .nspawn = (char *)bad[i] };
                _cleanup_(privileges_done) struct privileges p = {};
                assert_int_equal(privileges_from_host_files(&hf, NULL, NULL, &p), 0);
                assert_int_equal(p.n, 1);
                assert_int_equal(p.items[0].kind, PRIV_PRIVILEGED);
                assert_string_equal(p.items[0].value, "unreadable");
                assert_non_null(strstr(p.items[0].setting, "cannot be judged"));
                assert_false(privileges_cover(&p, &p.items[0]));
        }
        /* PrivateUsers= as systemd-nspawn 252 reads it (an imported .nspawn may say anything): a
         * value it ignores leaves the one before, or none; with none, PrivateUsersOwnership= or
         * PrivateUsersChown= runs the machine without a user namespace (found by a review, with
         * nspawn 252: a base "0524288" plus the ownership line the shift writes gave a privileged
         * machine that nothing listed). */
        static const struct {
                const char *nspawn, *grant, *setting;
        } t[] = {
                { "[Exec]\nPrivateUsers=524288: 5\n", NULL, NULL },          /* a range of 5 */
                { "[Exec]\nPrivateUsers=524288:0\n", NULL, NULL },           /* ignored */
                { "[Exec]\nPrivateUsers=4294901760\n", NULL, NULL },         /* past 32 bits: ignored */
                { "[Exec]\nPrivateUsers=0524288\n", NULL, NULL },            /* a leading zero: ignored */
                { "[Exec]\nPrivateUsers=\n", NULL, NULL },
                { "[Exec]\nPrivateUsers=0524288\n[Files]\nPrivateUsersOwnership=off\n", "no",
                  "[Files] PrivateUsersOwnership=off" },
                { "[Exec]\nPrivateUsers=65535\n[Files]\nPrivateUsersOwnership=off\n", "no",
                  "[Files] PrivateUsersOwnership=off" },
                { "[Files]\nPrivateUsersChown=no\n", "no", "[Files] PrivateUsersChown=no" },
                { "[Files]\nPrivateUsersOwnership=off\n", "no", "[Files] PrivateUsersOwnership=off" },
                { "[Files]\nPrivateUsersOwnership=auto\n", "no", "[Files] PrivateUsersOwnership=auto" },
                { "[Files]\nPrivateUsersOwnership=YES\n", "no", "[Files] PrivateUsersOwnership=YES" },
                /* values nspawn ignores (second review, with nspawn 252): no ownership, no "no" */
                { "[Files]\nPrivateUsersOwnership=Chown\n", NULL, NULL },
                { "[Files]\nPrivateUsersChown=bogus\n", NULL, NULL },
                { "[Files]\nPrivateUsersChown=map\n", NULL, NULL },
                { "[Exec]\nPrivateUsers=524288\nPrivateUsers=PICK\n[Files]\nPrivateUsersOwnership=off\n", NULL, NULL },
                { "[Exec]\nPrivateUsers=no\nPrivateUsers=bogus\n", "no", "[Exec] PrivateUsers=no" },
                { "[Exec]\nPrivateUsers=IDENTITY\n", NULL, NULL },           /* case matters */
                { "[Exec]\nPrivateUsers=1000:0x10\n", "host-uids", "[Exec] PrivateUsers=1000:0x10" },
                { "[Exec]\nPrivateUsers=524288:0x20000\n", "wide-uids", "[Exec] PrivateUsers=524288:0x20000" },
                { "[Exec]\nPrivateUsers=524288:+65537\n", "wide-uids", "[Exec] PrivateUsers=524288:+65537" },
                { "[Exec]\nPrivateUsers=524288:-1\n", NULL, NULL },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct host_files hf = { .nspawn = (char *)t[i].nspawn };
                _cleanup_(privileges_done) struct privileges p = {};
                assert_int_equal(privileges_from_host_files(&hf, NULL, NULL, &p), 0);
                if (p.n != (t[i].grant ? 1u : 0u))
                        fail_msg("%s: %zu grants, the first %s", t[i].nspawn, p.n, p.n ? p.items[0].value : "-");
                if (t[i].grant) {
                        assert_string_equal(p.items[0].value, t[i].grant);
                        assert_string_equal(p.items[0].setting, t[i].setting);
                }
        }

        struct host_files hf = { .dropin = (char *)"Environment=X=1\n" };      /* no section */
        _cleanup_(privileges_done) struct privileges p = {};
        assert_int_equal(privileges_from_host_files(&hf, NULL, NULL, &p), 0);
        assert_int_equal(p.n, 1);
        assert_string_equal(p.items[0].value, "unreadable");
}

/* A [Network] name systemd-nspawn ignores (it says "ignoring") gives no private network: with
 * Private=no the machine is on the host's network (found by a review, on nspawn 252). */
static void test_ignored_network_names(void **state) {
        (void)state;
        static const struct {
                const char *nspawn;
                bool host;
        } t[] = {
                { "[Network]\nPrivate=no\nZone=production-web\n", true },     /* vz-production-web: 17 */
                { "[Network]\nPrivate=no\nZone=web\n", false },
                { "[Network]\nPrivate=no\nBridge=12345\n", true },           /* all digits */
                { "[Network]\nPrivate=no\nBridge=br0\n", false },
                { "[Network]\nPrivate=no\nVirtualEthernetExtra=a/b\n", true },
                { "[Network]\nPrivate=no\nVirtualEthernetExtra=a:b\n", false },
                { "[Network]\nPrivate=no\nInterface=eth0 bad/name\n", true },
                { "[Network]\nPrivate=no\nMACVLAN=averyverylong\n", true },    /* mv-averyverylong: 16 */
                { "[Network]\nPrivate=no\nMACVLAN=eth0\n", false },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct host_files hf = { .nspawn = (char *)t[i].nspawn };
                _cleanup_(privileges_done) struct privileges p = {};
                assert_int_equal(privileges_from_host_files(&hf, NULL, NULL, &p), 0);
                bool host = false;
                for (size_t k = 0; k < p.n; k++)
                        host = host || p.items[k].kind == PRIV_HOST_NETWORK;
                if (host != t[i].host)
                        fail_msg("%s: the host's network %s", t[i].nspawn, host ? "granted" : "not granted");
        }
}

static struct priv_grant G(enum priv_kind k, const char *v, bool ro) {
        return (struct priv_grant){ .kind = k, .value = (char *)v, .read_only = ro };
}

static void test_cover(void **state) {
        (void)state;
        struct priv_grant old_items[] = {
                G(PRIV_BIND, "/srv", false),   G(PRIV_BIND, "/etc/ssl", true), G(PRIV_CAPABILITY, "all", false),
                G(PRIV_PRIVILEGED, "no", false), G(PRIV_DEVICE, "/dev/net", false), G(PRIV_MODULE, "fuse", false),
                G(PRIV_BIND, "/srv/../opt", false),
        };
        struct privileges old = { .items = old_items, .n = sizeof old_items / sizeof old_items[0] };
        static const struct {
                enum priv_kind k;
                const char *v;
                bool ro, covered;
        } t[] = {
                { PRIV_BIND, "/srv/a", false, true },      { PRIV_BIND, "/srv", true, true },
                { PRIV_BIND, "/srvx", false, false },      { PRIV_BIND, "/", false, false },
                { PRIV_BIND, "/etc/ssl/certs", true, true }, { PRIV_BIND, "/etc/ssl", false, false },
                { PRIV_CAPABILITY, "CAP_SYS_ADMIN", false, true }, { PRIV_PRIVILEGED, "uid0", false, true },
                { PRIV_DEVICE, "/dev/net/tun", false, true }, { PRIV_DEVICE, "/dev/fuse", false, false },
                { PRIV_MODULE, "fuse", false, true },      { PRIV_MODULE, "overlay", false, false },
                { PRIV_HOST_NETWORK, "host", false, false }, { PRIV_SYSCALL, "bpf", false, false },
                /* A path with ".." is under nothing, but what was granted stays granted (fuzz-privileges). */
                { PRIV_BIND, "/srv/../opt", false, true },   { PRIV_BIND, "/srv/../opt/x", false, false },
                /* A "+" path may lead anywhere on the host: /srv does not cover it (the same text would). */
                { PRIV_BIND, "+/srv", false, false },       { PRIV_BIND, "+/../../etc", true, false },
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
                struct priv_grant g = G(t[i].k, t[i].v, t[i].ro);
                if (privileges_cover(&old, &g) != t[i].covered)
                        fail_msg("%s %s%s should %sbe covered", priv_kind_to_string(t[i].k), t[i].v, t[i].ro ? " ro" : "",
                                 t[i].covered ? "" : "not ");
        }
        /* A "+" path may lead anywhere: only "/" covers it (without that rule nothing would). */
        struct priv_grant root_items[] = { G(PRIV_BIND, "/", false) };
        struct privileges root = { .items = root_items, .n = 1 };
        struct priv_grant plus = G(PRIV_BIND, "+/../../etc", false);
        assert_true(privileges_cover(&root, &plus));
        /* Root as UID 0 on the host does not cover no user namespace at all; nothing covers all. */
        struct priv_grant uid0 = G(PRIV_PRIVILEGED, "uid0", false), cap = G(PRIV_CAPABILITY, "CAP_X", false);
        struct privileges weak = { .items = &uid0, .n = 1 }, caps = { .items = &cap, .n = 1 };
        struct priv_grant no = G(PRIV_PRIVILEGED, "no", false), all = G(PRIV_CAPABILITY, "all", false);
        assert_false(privileges_cover(&weak, &no));
        assert_false(privileges_cover(&caps, &all));
        assert_false(privileges_cover(NULL, &all));
}

static void test_describe(void **state) {
        (void)state;
        struct priv_grant g = { .kind = PRIV_CAPABILITY, .value = (char *)"all", .setting = (char *)"[Exec] Capability=all",
                                .key = (char *)"[Hooks] DockerStorageDriver=", .file = (char *)"x.recipe", .line = 11,
                                .added_by = (char *)"DockerStorageDriver=overlay2" };
        _cleanup_free_ char *d = priv_grant_describe(&g);
        assert_string_equal(d, "[Exec] Capability=all: every capability; added by [Hooks] DockerStorageDriver=overlay2 at x.recipe:11");
        struct priv_grant b = { .kind = PRIV_BIND, .value = (char *)"/srv/a", .setting = (char *)"[Files] Bind=/srv/a:/a",
                                .key = (char *)"[Files] Bind=", .file = (char *)"x.recipe", .line = 7 };
        _cleanup_free_ char *db = priv_grant_describe(&b);
        assert_string_equal(db, "[Files] Bind=/srv/a:/a: the host path /srv/a, read-write; x.recipe:7");
        struct priv_grant m = { .kind = PRIV_MODULE, .value = (char *)"fuse", .setting = (char *)"fuse", .in = PRIV_FILE_MODULES };
        _cleanup_free_ char *dm = priv_grant_describe(&m);
        assert_string_equal(dm, "modules-load.d: fuse: the host kernel module fuse, loaded at boot");
        assert_non_null(strstr(hooks_explain("DockerStorageDriver=overlay2 (runc ...)"), "user-namespaced"));
        assert_non_null(strstr(hooks_explain("DockerStorageDriver=vfs with DockerPrivileged=yes (...)"), "privileged container"));
        assert_non_null(hooks_explain("Fuse=yes"));
        assert_null(hooks_explain("PrivateUsers=pick"));
}

/* ---- the assessment in a scratch host root ---------------------------------------------------- */

/* A deployed generation 1 of machine web whose .nspawn binds /srv/web (and nothing else). */
static void deploy_gen1(const char *host, bool with_host_dir) {
        _cleanup_free_ char *tree = fs_path_join(host, "var/lib/machines/web"), *meta = NULL;
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, tree, 0755), 0);
        struct stat st;
        assert_int_equal(stat(tree, &st), 0);
        assert_true(asprintf(&meta, "generation=1\nroot=%llu:%llu\n", (unsigned long long)st.st_dev,
                             (unsigned long long)st.st_ino) > 0);
        th_write_file(host, "var/lib/mkmachine/web/gen/1/meta", meta, 0644);
        if (with_host_dir)
                th_write_file(host, "var/lib/mkmachine/web/gen/1/host/etc/systemd/nspawn/web.nspawn",
                              "[Files]\nBind=/srv/web:/data\n", 0644);
}

static void test_assess(void **state) {
        (void)state;
        char host[] = "/tmp/mkm-test-privileges.XXXXXX";
        assert_non_null(mkdtemp(host));
        struct mkm_ctx ctx = { .host_root = host, .systemd_version = 257 };
        struct mkm_err err = {};

        /* Not deployed, no policy: listed, nothing refused. */
        _cleanup_(recipe_freep) struct recipe *r = load("[Files]\nBind=/srv/web:/data\nBind=/:/host\n");
        struct priv_report rep = {};
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        assert_int_equal(rep.grants.n, 2);
        assert_null(rep.policy_path);
        assert_int_equal(rep.deployed, 0);
        assert_int_equal(privileges_refusal(&rep, "web", false, &err), 0);
        priv_report_done(&rep);

        /* Deployed with Bind=/srv/web: Bind=/ is new, refused unless allowed. */
        deploy_gen1(host, true);
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        assert_int_equal(rep.deployed, 1);
        assert_int_equal(rep.deployed_gen, 1);
        assert_int_equal(rep.n_new, 1);
        assert_false(rep.grants.items[0].fresh);
        assert_true(rep.grants.items[1].fresh);
        assert_int_equal(privileges_refusal(&rep, "web", true, &err), 0);
        err = (struct mkm_err){};
        assert_int_equal(privileges_refusal(&rep, "web", false, &err), -MKM_E_REFUSED);
        assert_string_equal(err.msg, "refusing to build machine 'web': it would get privileges on the host that its deployed "
                                     "generation 1 was not granted (--allow-new-privileges grants them):\n"
                                     "new: [Files] Bind=/:/host: the host path /, read-write; " FILE_ ":8");
        priv_report_done(&rep);

        /* A policy: beyond it is refused whatever --allow-new-privileges says, with both lines. */
        th_write_file(host, "etc/mkmachine/policy.conf", "[Recipes]\nAllowBindSources=/srv\n", 0644);
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        assert_int_equal(rep.n_denied, 1);
        assert_null(rep.grants.items[0].denied);
        err = (struct mkm_err){};
        assert_int_equal(privileges_refusal(&rep, "web", true, &err), -MKM_E_REFUSED);
        _cleanup_free_ char *want = NULL;
        assert_true(asprintf(&want, "refusing to build machine 'web': its recipe asks for more than the host's policy "
                                    "%s/etc/mkmachine/policy.conf allows:\n"
                                    FILE_ ":8: [Files] Bind=/:/host, the host path /, read-write: the policy "
                                    "%s/etc/mkmachine/policy.conf:2 allows the bind sources /srv only (AllowBindSources=)",
                             host, host) > 0);
        assert_string_equal(err.msg, want);
        priv_report_done(&rep);

        /* A link under an allowed directory is judged by where it leads (inside the host root). */
        _cleanup_(recipe_freep) struct recipe *rl = load("[Files]\nBind=/srv/web/up:/x\nBind=/srv/web/in:/y\n");
        _cleanup_free_ char *srvweb = fs_path_join(host, "srv/web"), *up = NULL, *in = NULL;
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, srvweb, 0755), 0);
        assert_true(asprintf(&up, "%s/up", srvweb) > 0 && asprintf(&in, "%s/in", srvweb) > 0);
        assert_int_equal(symlink("../../etc", up), 0);
        assert_int_equal(symlink("/srv/web/data", in), 0);
        assert_int_equal(privileges_assess(&ctx, rl, &rep, &err), 0);
        assert_int_equal(rep.n_denied, 1);
        assert_non_null(rep.grants.items[0].denied);
        assert_non_null(strstr(rep.grants.items[0].denied, "[Files] Bind=/srv/web/up:/x, the host path /srv/web/up, "
                                                           "read-write: it leads to /etc on the host, and the policy "));
        assert_null(rep.grants.items[1].denied);        /* /srv/web/in leads to /srv/web/data */
        priv_report_done(&rep);

        /* A generation without host/: its grants are unknown, every grant needs the flag. */
        _cleanup_free_ char *hostdir = fs_path_join(host, "var/lib/mkmachine/web/gen/1/host");
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, hostdir), 0);
        _cleanup_free_ char *pol = fs_path_join(host, "etc/mkmachine/policy.conf");
        assert_int_equal(unlink(pol), 0);
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        assert_int_equal(rep.deployed, -1);
        err = (struct mkm_err){};
        assert_int_equal(privileges_refusal(&rep, "web", false, &err), -MKM_E_REFUSED);
        assert_non_null(strstr(err.msg, "keeps no copy of its host files"));
        assert_non_null(strstr(err.msg, "\nnew: [Files] Bind=/srv/web:/data"));
        priv_report_done(&rep);

        /* A bad policy fails the assessment as a usage error. */
        th_write_file(host, "etc/mkmachine/policy.conf", "[Recipes]\nAllowBindSources=srv\n", 0644);
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), -MKM_E_USAGE);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

/* UIDs that overlap another machine's on the host: its root would be that machine's root there.
 * Found by a review: PrivateUsers=524288:1879048192, or another machine's own base, was listed as
 * nothing under AllowPrivileged=no. */
static void test_shared_uids(void **state) {
        (void)state;
        char host[] = "/tmp/mkm-test-privileges.XXXXXX";
        assert_non_null(mkdtemp(host));
        struct mkm_ctx ctx = { .host_root = host, .systemd_version = 257 };
        struct mkm_err err = {};
        uint32_t base = hooks_userns_pick("web");
        char text[128];

        /* Alone on the host: nothing. */
        _cleanup_(recipe_freep) struct recipe *r = load("[Exec]\nPrivateUsers=pick\n");
        struct priv_report rep = {};
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        assert_int_equal(rep.grants.n, 0);
        priv_report_done(&rep);

        /* Neighbours: one right below and one right above the slot share nothing; web's own file
         * is itself; a FIFO is no machine (and does not hang the check); db overlaps by one UID
         * at each end; /run's below (on web's base) is shadowed by /etc's, /run's cache overlaps; a running pick
         * container holds web's slot. */
        (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%u:65536\n", base - 65536);
        th_write_file(host, "etc/systemd/nspawn/below.nspawn", text, 0644);
        (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%u\n", base + 65536);
        th_write_file(host, "etc/systemd/nspawn/above.nspawn", text, 0644);
        (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%u\n", base);
        th_write_file(host, "etc/systemd/nspawn/web.nspawn", text, 0644);
        _cleanup_free_ char *fifo = NULL;
        assert_true(asprintf(&fifo, "%s/etc/systemd/nspawn/fifo.nspawn", host) > 0);
        assert_int_equal(mkfifo(fifo, 0644), 0);
        (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%u:2\n", base - 1);
        th_write_file(host, "etc/systemd/nspawn/db.nspawn", text, 0644);
        (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%u\n", base);
        th_write_file(host, "run/systemd/nspawn/below.nspawn", text, 0644);
        (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%u\nPrivateUsers=%u:1\n", base + 65536, base + 65535);
        th_write_file(host, "run/systemd/nspawn/cache.nspawn", text, 0644);
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        char want[3][256];
        (void)snprintf(want[0], sizeof want[0],
                       "privileged shared-uids:cache | [Exec] PrivateUsers=%u | [Exec] PrivateUsers=@7 | PrivateUsers=pick",
                       base);
        (void)snprintf(want[1], sizeof want[1],
                       "privileged shared-uids:db | [Exec] PrivateUsers=%u | [Exec] PrivateUsers=@7 | PrivateUsers=pick", base);
        assert_int_equal(rep.grants.n, 2);
        for (size_t i = 0; i < 2; i++) {
                _cleanup_free_ char *got = show(&rep.grants.items[i]);
                assert_string_equal(got, want[i]);
        }
        _cleanup_free_ char *d = priv_grant_describe(&rep.grants.items[1]);
        assert_non_null(strstr(d, "a machine whose users are also those of the machine 'db' on the host"));
        priv_report_done(&rep);

        (void)snprintf(text, sizeof text, "%s/run/systemd/nspawn-uid", host);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, text, 0755), 0);
        (void)snprintf(text, sizeof text, "run/systemd/nspawn-uid/%u", base + 65536);
        th_write_file(host, text, "", 0644);
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        assert_int_equal(rep.grants.n, 2);
        priv_report_done(&rep);
        (void)snprintf(text, sizeof text, "run/systemd/nspawn-uid/%u", base);
        th_write_file(host, text, "", 0644);
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        assert_int_equal(rep.grants.n, 3);
        (void)snprintf(want[2], sizeof want[2], "privileged shared-uids:/run/systemd/nspawn-uid/%u | [Exec] PrivateUsers=%u "
                                                "| [Exec] PrivateUsers=@7 | PrivateUsers=pick", base, base);
        _cleanup_free_ char *got = show(&rep.grants.items[2]);
        assert_string_equal(got, want[2]);
        priv_report_done(&rep);

        /* A policy without AllowPrivileged= refuses it, naming the other machine. */
        th_write_file(host, "etc/mkmachine/policy.conf", "[Recipes]\n", 0644);
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        assert_int_equal(rep.n_denied, 3);
        err = (struct mkm_err){};
        assert_int_equal(privileges_refusal(&rep, "web", true, &err), -MKM_E_REFUSED);
        assert_non_null(strstr(err.msg, FILE_ ":7: [Exec] PrivateUsers=pick adds [Exec] PrivateUsers="));
        assert_non_null(strstr(err.msg, "also those of the machine 'db' on the host (their UID ranges overlap): the policy"));
        priv_report_done(&rep);

        /* Deployed with the same base: the machines it shares UIDs with now are no new grant. */
        _cleanup_free_ char *pol = fs_path_join(host, "etc/mkmachine/policy.conf");
        assert_int_equal(unlink(pol), 0);
        deploy_gen1(host, false);
        (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%u\n", base);
        th_write_file(host, "var/lib/mkmachine/web/gen/1/host/etc/systemd/nspawn/web.nspawn", text, 0644);
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        assert_int_equal(rep.deployed, 1);
        assert_int_equal(rep.grants.n, 3);
        assert_int_equal(rep.n_new, 0);
        priv_report_done(&rep);
        /* ... but a base that moves onto one it did not share is. */
        _cleanup_(recipe_freep) struct recipe *r2 = NULL;
        (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%u\n", base + 65536);
        r2 = load(text);
        assert_int_equal(privileges_assess(&ctx, r2, &rep, &err), 0);
        assert_int_equal(rep.n_new, 2);         /* above and the lock above */
        for (size_t i = 0; i < rep.grants.n; i++)
                assert_true(rep.grants.items[i].fresh);
        priv_report_done(&rep);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

/* Other machines' UIDs as systemd-nspawn 252 gives them (found by a review, each checked with the
 * real nspawn): range spellings it accepts, a bad last line it skips, lines it ignores, settings
 * too large to read (fail closed), and machines whose UIDs come from their tree's owner
 * (PrivateUsers=yes, pick, or no settings: the service's -U tries the owner's slot first). */
static void test_shared_uids_as_nspawn_reads(void **state) {
        (void)state;
        char host[] = "/tmp/mkm-test-privileges.XXXXXX";
        assert_non_null(mkdtemp(host));
        struct mkm_ctx ctx = { .host_root = host, .systemd_version = 257 };
        struct mkm_err err = {};
        uint32_t base = hooks_userns_pick("web");
        char text[256], path[512];
        _cleanup_(recipe_freep) struct recipe *r = load("[Exec]\nPrivateUsers=pick\n");
        (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%u: 0x10000\n", base);
        th_write_file(host, "etc/systemd/nspawn/a-hex.nspawn", text, 0644);
        (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%u\nPrivateUsers=PICK\n", base + 10);
        th_write_file(host, "etc/systemd/nspawn/b-lastbad.nspawn", text, 0644);
        (void)snprintf(text, sizeof text, "Foo Bar=1\n[X Y]\nA=b\n# comment\n[Exec]\nPrivateUsers=%u\n", base + 20);
        th_write_file(host, "run/systemd/nspawn/c-badlines.nspawn", text, 0644);
        /* trees owned by a UID of the slot: no settings, yes, pick; one with no user namespace
         * and one in another slot are not */
        const char *const trees[] = { "d-tree", "e-yes", "f-pick", "g-no", "h-elsewhere" };
        for (size_t i = 0; i < 5; i++) {
                (void)snprintf(path, sizeof path, "%s/var/lib/machines/%s", host, trees[i]);
                assert_int_equal(fs_mkdir_p_at(AT_FDCWD, path, 0755), 0);
                uint32_t owner = i == 4 ? base + HOOKS_USERNS_RANGE : base + 7;
                assert_int_equal(chown(path, owner, owner), 0);
        }
        th_write_file(host, "etc/systemd/nspawn/e-yes.nspawn", "[Exec]\nPrivateUsers=yes\n", 0644);
        th_write_file(host, "etc/systemd/nspawn/f-pick.nspawn", "[Exec]\nPrivateUsers=pick\n", 0644);
        th_write_file(host, "etc/systemd/nspawn/g-no.nspawn", "[Exec]\nPrivateUsers=no\n", 0644);
        /* settings beside an image are not trusted: their PrivateUsers= does not count */
        (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%u\n", base);
        th_write_file(host, "var/lib/machines/i-beside.nspawn", text, 0644);
        /* more than we read: fail closed */
        _cleanup_free_ char *huge = malloc((2u << 20) + 64);
        assert_non_null(huge);
        memset(huge, '#', 2u << 20);
        strcpy(huge + (2u << 20), "\n[Exec]\nPrivateUsers=1\n");
        th_write_file(host, "etc/systemd/nspawn/j-huge.nspawn", huge, 0644);
        /* what nspawn's line reader takes otherwise than ours (second review): a NUL, a bare CR,
         * a byte-order mark, a control character (even in a comment: the rule is kept simple, and
         * errs on the closed side): fail closed */
        static const struct {
                const char *name, *text;
                size_t len;
        } odd[] = {
#define ODD(name, lit) { name, lit, sizeof(lit) - 1 }
                ODD("k-nul", "[Exec]\nPrivateUsers=no\n\0\nPrivateUsers=1\n"),
                ODD("l-cr", "[Exec]\rPrivateUsers=524288\r"),
                ODD("m-bom", "\xEF\xBB\xBF[Exec]\nPrivateUsers=524288\n"),
                ODD("n-ctrl", "[Exec]\nEnvironment=A=\x01\\\nPrivateUsers=524288\n"),
#undef ODD
        };
        for (size_t i = 0; i < ELEMENTSOF(odd); i++) {
                (void)snprintf(path, sizeof path, "%s/etc/systemd/nspawn/%s.nspawn", host, odd[i].name);
                assert_int_equal(fs_write_file_at(AT_FDCWD, path, odd[i].text, odd[i].len, 0644), 0);
        }
        /* Absolute links inside the host root mean the host root's paths (--host-root). */
        (void)snprintf(path, sizeof path, "%s/srv/o-tree", host);
        assert_int_equal(fs_mkdir_p_at(AT_FDCWD, path, 0755), 0);
        assert_int_equal(chown(path, base + 3, base + 3), 0);
        (void)snprintf(path, sizeof path, "%s/var/lib/machines/o-abs", host);
        assert_int_equal(symlink("/srv/o-tree", path), 0);
        (void)snprintf(text, sizeof text, "[Exec]\nPrivateUsers=%u\n", base + 30);
        th_write_file(host, "srv/p.nspawn", text, 0644);
        (void)snprintf(path, sizeof path, "%s/etc/systemd/nspawn/p-abs.nspawn", host);
        assert_int_equal(symlink("/srv/p.nspawn", path), 0);
        struct priv_report rep = {};
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        const char *const want[] = { "shared-uids:a-hex", "shared-uids:b-lastbad", "shared-uids:c-badlines",
                                     "shared-uids:d-tree", "shared-uids:e-yes", "shared-uids:f-pick",
                                     "shared-uids:j-huge (unreadable settings)", "shared-uids:k-nul (unreadable settings)",
                                     "shared-uids:l-cr (unreadable settings)", "shared-uids:m-bom (unreadable settings)",
                                     "shared-uids:n-ctrl (unreadable settings)", "shared-uids:o-abs", "shared-uids:p-abs" };
        size_t nw = ELEMENTSOF(want);
        for (size_t i = 0; i < rep.grants.n || i < nw; i++) {
                if (i >= rep.grants.n || i >= nw)
                        fail_msg("grant %zu: got %s, want %s", i, i < rep.grants.n ? rep.grants.items[i].value : "-",
                                 i < nw ? want[i] : "-");
                assert_string_equal(rep.grants.items[i].value, want[i]);
        }
        priv_report_done(&rep);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

/* RunNetwork=yes: the build's Run= commands on the host's network, a grant no host file carries
 * (found by a review: not listed, and no policy could forbid it). */
static void test_build_network(void **state) {
        (void)state;
        char host[] = "/tmp/mkm-test-privileges.XXXXXX";
        assert_non_null(mkdtemp(host));
        struct mkm_ctx ctx = { .host_root = host, .systemd_version = 257 };
        struct mkm_err err = {};
        _cleanup_(recipe_freep) struct recipe *r = load("[Hooks]\nRun=true\nRunNetwork=yes\n");
        _cleanup_(recipe_freep) struct recipe *off = load("[Hooks]\nRun=true\nRunNetwork=no\n");
        struct priv_report rep = {};
        assert_int_equal(privileges_assess(&ctx, off, &rep, &err), 0);
        assert_int_equal(rep.grants.n, 0);
        priv_report_done(&rep);
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        assert_int_equal(rep.grants.n, 1);
        _cleanup_free_ char *got = show(&rep.grants.items[0]), *d = priv_grant_describe(&rep.grants.items[0]);
        assert_string_equal(got, "build-network host | [Hooks] RunNetwork=yes | [Hooks] RunNetwork=@8 | -");
        assert_int_equal(rep.grants.items[0].in, PRIV_FILE_BUILD);
        assert_string_equal(d, "[Hooks] RunNetwork=yes: the host's network for the Run= commands during the build (its "
                               "loopback services and abstract unix sockets, and whatever the host reaches); " FILE_ ":8");
        priv_report_done(&rep);

        /* A policy refuses it unless AllowBuildNetwork=yes. */
        th_write_file(host, "etc/mkmachine/policy.conf", "[Recipes]\nAllowHostNetwork=yes\n", 0644);
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        assert_int_equal(rep.n_denied, 1);
        err = (struct mkm_err){};
        assert_int_equal(privileges_refusal(&rep, "web", true, &err), -MKM_E_REFUSED);
        assert_non_null(strstr(err.msg, "\n" FILE_ ":8: [Hooks] RunNetwork=yes, the host's network for the Run= commands "
                                        "during the build"));
        assert_non_null(strstr(err.msg, "does not allow the host's network during the build (no AllowBuildNetwork=yes)"));
        priv_report_done(&rep);
        th_write_file(host, "etc/mkmachine/policy.conf", "[Recipes]\nAllowBuildNetwork=yes\n", 0644);
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        assert_int_equal(rep.n_denied, 0);
        priv_report_done(&rep);
        _cleanup_free_ char *pol = fs_path_join(host, "etc/mkmachine/policy.conf");
        assert_int_equal(unlink(pol), 0);

        /* Deployed: new unless the live generation's recipe had it too. */
        deploy_gen1(host, true);
        th_write_file(host, "var/lib/mkmachine/web/gen/1/recipe", "[Machine]\nName=web\n[Hooks]\nRun=true\n", 0644);
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        assert_int_equal(rep.deployed, 1);
        assert_int_equal(rep.n_new, 1);
        assert_true(rep.grants.items[0].fresh);
        priv_report_done(&rep);
        th_write_file(host, "var/lib/mkmachine/web/gen/1/recipe",
                      "[Machine]\nName=web\n[Hooks]\nRun=true\nRunNetwork=yes\n", 0644);
        assert_int_equal(privileges_assess(&ctx, r, &rep, &err), 0);
        assert_int_equal(rep.n_new, 0);
        priv_report_done(&rep);
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, host), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_docker),   cmocka_unit_test(test_fuse),     cmocka_unit_test(test_files),
                cmocka_unit_test(test_exec),     cmocka_unit_test(test_network),  cmocka_unit_test(test_cover),
                cmocka_unit_test(test_ignored_network_names), cmocka_unit_test(test_shared_uids),
                cmocka_unit_test(test_build_network), cmocka_unit_test(test_shared_uids_as_nspawn_reads),
                cmocka_unit_test(test_describe), cmocka_unit_test(test_assess),   cmocka_unit_test(test_unreadable),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
