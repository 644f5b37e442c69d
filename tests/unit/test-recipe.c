/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/recipe: typed values, defaults, list and scalar merging, includes
 * (relative paths, later-wins, cycles, depth), the canonical text, validation for a build, every
 * refusal with its exact message, and that the reference documents every key the parser knows. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include <cmocka.h>

#include "helpers.h"
#include "recipe.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strv.h"

static struct recipe *load_ok(const char *text) {
        struct mkm_err err = {};
        struct recipe *r = NULL;
        int k = recipe_load_buffer(text, strlen(text), "/srv/recipes/t.recipe", &r, &err);
        if (k < 0)
                fail_msg("unexpected failure %d: %s", k, err.msg);
        return r;
}

static void assert_strv(char *const *l, const char *joined) {
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);
        assert_non_null(f);
        for (size_t i = 0; l && l[i]; i++)
                fprintf(f, "%s%s", i ? " " : "", l[i]);
        fclose(f);
        assert_string_equal(s, joined);
}

static void test_full(void **state) {
        (void)state;
        _cleanup_(recipe_freep) struct recipe *r = load_ok(
                "[Machine]\n"
                "Name=web.example-1\n"
                "[Bootstrap]\n"
                "Distribution=arch\n"
                "Mirror=https://mirror.invalid/$repo/os/$arch file:///srv/mirror\n"
                "Snapshot=2024/06/01\n"
                "Repositories=core\n"
                "Repositories=extra multilib\n"
                "Packages=base \\\n"
                "  # comment lines inside a continuation are skipped\n"
                "  openssh\n"
                "Keyring=../keys/arch.gpg\n"
                "Architecture=arm64\n"
                "Provider=sh:bash initramfs:mkinitcpio\n"
                "[Hooks]\n"
                "EnableServices=sshd.service getty@tty1.service\n"
                "Fuse=on\n"
                "DockerStorageDriver=fuse-overlayfs\n"
                "DockerPrivileged=1\n"
                "RootAuthorizedKeys=admin.pub /etc/keys/other.pub\n"
                "Copy=files/motd:/etc/motd:644:root:root conf/x:/etc/x\n"
                "Copy=a:/opt/a:0600:1000\n"
                "Run=echo hello   world\n"
                "Run=/usr/bin/true\n"
                "RunNetwork=TRUE\n"
                "[Exec]\n"
                "Boot=yes\n"
                "[Network]\n"
                "Address=10.0.0.2/24 fd00::2/64\n"
                "Gateway=10.0.0.1\n"
                "VirtualEthernet=yes\n"
                "[Files]\n"
                "Bind=/srv/data:/data\n"
                "[Exec]\n"
                "Capability=all\n"
                "Environment=\n");
        assert_string_equal(r->name, "web.example-1");
        assert_int_equal(r->distribution, RECIPE_DISTRO_ARCH);
        assert_strv(r->mirrors, "https://mirror.invalid/$repo/os/$arch file:///srv/mirror");
        assert_string_equal(r->snapshot, "2024-06-01");
        assert_int_equal(r->snapshot_epoch, 1717200000);
        assert_null(r->suites);
        assert_null(r->components);
        assert_null(r->variant);
        assert_strv(r->repositories, "core extra multilib");
        assert_strv(r->packages, "base openssh");
        assert_string_equal(r->keyring, "/srv/keys/arch.gpg");
        assert_string_equal(r->architecture, "aarch64");       /* the Arch spelling */
        assert_strv(r->providers, "sh:bash initramfs:mkinitcpio");
        assert_strv(r->enable_services, "sshd.service getty@tty1.service");
        assert_int_equal(r->fuse, RECIPE_YES);
        assert_string_equal(r->docker_storage_driver, "fuse-overlayfs");
        assert_int_equal(r->docker_privileged, RECIPE_YES);
        assert_strv(r->root_authorized_keys, "/srv/recipes/admin.pub /etc/keys/other.pub");
        assert_int_equal(r->n_copies, 3);
        assert_string_equal(r->copies[0].src, "/srv/recipes/files/motd");
        assert_string_equal(r->copies[0].dest, "/etc/motd");
        assert_true(r->copies[0].has_mode);
        assert_int_equal(r->copies[0].mode, 0644);
        assert_string_equal(r->copies[0].owner, "root:root");
        assert_false(r->copies[1].has_mode);
        assert_null(r->copies[1].owner);
        assert_int_equal(r->copies[2].mode, 0600);
        assert_string_equal(r->copies[2].owner, "1000");
        assert_int_equal(strv_length(r->runs), 2);
        assert_string_equal(r->runs[0], "echo hello   world");
        assert_true(r->run_network);
        assert_strv(r->network_addresses, "10.0.0.2/24 fd00::2/64");
        assert_strv(r->network_gateways, "10.0.0.1");
        assert_int_equal(r->n_nspawn, 5);
        assert_string_equal(r->nspawn[0].key, "Boot");
        assert_int_equal(r->nspawn[0].line, 27);
        assert_string_equal(r->nspawn[1].section, "Network");
        assert_string_equal(r->nspawn[1].key, "VirtualEthernet");
        assert_string_equal(r->nspawn[2].value, "/srv/data:/data");
        assert_string_equal(r->nspawn[4].key, "Environment");
        assert_string_equal(r->nspawn[4].value, "");
        assert_string_equal(r->nspawn[4].file, "/srv/recipes/t.recipe");
        assert_null(r->path);

        _cleanup_free_ char *text = NULL;
        assert_int_equal(recipe_format(r, &text), 0);
        assert_string_equal(text,
                            "[Machine]\n"
                            "Name=web.example-1\n"
                            "\n"
                            "[Bootstrap]\n"
                            "Distribution=arch\n"
                            "Mirror=https://mirror.invalid/$repo/os/$arch file:///srv/mirror\n"
                            "Snapshot=2024-06-01\n"
                            "Repositories=core extra multilib\n"
                            "Packages=base openssh\n"
                            "Keyring=/srv/keys/arch.gpg\n"
                            "Architecture=aarch64\n"
                            "Provider=sh:bash initramfs:mkinitcpio\n"
                            "\n"
                            "[Hooks]\n"
                            "EnableServices=sshd.service getty@tty1.service\n"
                            "Fuse=yes\n"
                            "DockerStorageDriver=fuse-overlayfs\n"
                            "DockerPrivileged=yes\n"
                            "RootAuthorizedKeys=/srv/recipes/admin.pub /etc/keys/other.pub\n"
                            "Copy=/srv/recipes/files/motd:/etc/motd:0644:root:root /srv/recipes/conf/x:/etc/x "
                            "/srv/recipes/a:/opt/a:0600:1000\n"
                            "Run=echo hello   world\n"
                            "Run=/usr/bin/true\n"
                            "RunNetwork=yes\n"
                            "\n"
                            "[Exec]\n"
                            "Boot=yes\n"
                            "Capability=all\n"
                            "Environment=\n"
                            "\n"
                            "[Files]\n"
                            "Bind=/srv/data:/data\n"
                            "\n"
                            "[Network]\n"
                            "Address=10.0.0.2/24 fd00::2/64\n"
                            "Gateway=10.0.0.1\n"
                            "VirtualEthernet=yes\n");

        /* The canonical text is a fixed point: parsing it again gives the same text. */
        struct mkm_err err = {};
        _cleanup_(recipe_freep) struct recipe *again = NULL;
        assert_int_equal(recipe_load_buffer(text, strlen(text), "/x/canon.recipe", &again, &err), 0);
        _cleanup_free_ char *text2 = NULL;
        assert_int_equal(recipe_format(again, &text2), 0);
        assert_string_equal(text, text2);
}

static void test_merge_rules(void **state) {
        (void)state;
        _cleanup_(recipe_freep) struct recipe *r = load_ok(
                "[Machine]\nName=first\n"
                "[Bootstrap]\nDistribution=arch\nPackages=a b\nPackages=\nPackages=c\n"
                "Snapshot=2024-01-01\nSnapshot=\n"
                "[Machine]\nName=second\n"                    /* a repeated section continues */
                "[Hooks]\nFuse=yes\nFuse=no\nRun=x\nRun=\nRun=y\nDockerStorageDriver=vfs\nDockerStorageDriver=\n"
                "DockerPrivileged=yes\nDockerPrivileged=\n"
                "Copy=a:/a\nCopy=\nCopy=b:/b\n"
                "[Bootstrap]\nDistribution=debian\nArchitecture=x86_64\n");
        assert_string_equal(r->name, "second");
        assert_strv(r->packages, "c");
        assert_null(r->snapshot);
        assert_int_equal(r->snapshot_epoch, -1);
        assert_int_equal(r->fuse, RECIPE_NO);
        assert_strv(r->runs, "y");
        assert_null(r->docker_storage_driver);
        assert_int_equal(r->docker_privileged, RECIPE_UNSET);
        assert_int_equal(r->n_copies, 1);
        assert_string_equal(r->copies[0].dest, "/b");
        /* Later Distribution= wins and Debian defaults fill in. */
        assert_int_equal(r->distribution, RECIPE_DISTRO_DEBIAN);
        assert_string_equal(r->suites[0], "bookworm");
        assert_strv(r->components, "main");
        assert_string_equal(r->variant, "minbase");
        assert_null(r->repositories);
        assert_string_equal(r->architecture, "amd64");
}

static void test_defaults(void **state) {
        (void)state;
        _cleanup_(recipe_freep) struct recipe *a = load_ok("[Machine]\nName=a\n[Bootstrap]\nDistribution=arch\n");
        assert_strv(a->repositories, "core extra");
        assert_int_equal(a->fuse, RECIPE_UNSET);
        assert_false(a->run_network);
        assert_non_null(a->architecture);       /* the host's, in Arch spelling */
        _cleanup_free_ char *text = NULL;
        assert_int_equal(recipe_format(a, &text), 0);
        assert_non_null(strstr(text, "Repositories=core extra\n"));
        assert_null(strstr(text, "[Hooks]"));

        _cleanup_(recipe_freep) struct recipe *d = load_ok(
                "[Machine]\nName=d\n[Bootstrap]\nDistribution=debian\nArchitecture=aarch64\n"
                "Snapshot=20240601T123456Z\nSuite=trixie\nComponents=main contrib\nVariant=apt\n");
        assert_string_equal(d->architecture, "arm64");
        assert_string_equal(d->snapshot, "20240601T123456Z");
        assert_int_equal(d->snapshot_epoch, 1717200000 + 12 * 3600 + 34 * 60 + 56);
        assert_string_equal(d->suites[0], "trixie");
        assert_strv(d->components, "main contrib");
        assert_string_equal(d->variant, "apt");

        /* Leap days and the boolean spellings. */
        _cleanup_(recipe_freep) struct recipe *l = load_ok(
                "[Machine]\nName=l\n[Bootstrap]\nDistribution=arch\nSnapshot=2024-02-29\n[Hooks]\nFuse=0\nRunNetwork=on\n");
        assert_string_equal(l->snapshot, "2024-02-29");
        assert_int_equal(l->fuse, RECIPE_NO);
        assert_true(l->run_network);
}

#define P "[Machine]\nName=t\n[Bootstrap]\nDistribution=arch\n"     /* lines 1-4 */
#define NM "expected a machine name as systemd takes it (up to 64 letters, digits and '-' in labels joined by single dots, no label starting or ending with '-')"
#define SNAP "expected a date YYYY-MM-DD (or YYYY/MM/DD) or a time stamp YYYYMMDDTHHMMSSZ"

static const struct {
        const char *text;
        int code;
        const char *msg;
} bad[] = {
        { P "Pakages=base\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] Pakages=: unknown key; did you mean 'Packages='?" },
        { P "packages=base\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] packages=: unknown key; did you mean 'Packages='?" },
        { P "Distribtuion=arch\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] Distribtuion=: unknown key; did you mean 'Distribution='?" },
        /* Exactly the threshold (3 for a name of 12) away, the difference at the start: the bounded
         * distance must not give up on the rows after it. */
        { P "XYZtribution=arch\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] XYZtribution=: unknown key; did you mean 'Distribution='?" },
        { P "[Hooks]\nFuse=maybe\n", -MKM_E_RECIPE, "t.recipe:6: [Hooks] Fuse=: expected a boolean (yes/no), got 'maybe'" },
        { P "[Hooks]\nDockerStorageDriver=overlay2\nDockerPrivileged=root\n", -MKM_E_RECIPE,
          "t.recipe:7: [Hooks] DockerPrivileged=: expected a boolean (yes/no), got 'root'" },
        { P "[Hooks]\nDockerPrivileged=yes\n", -MKM_E_RECIPE,
          "t.recipe:6: [Hooks] DockerPrivileged=: yes needs DockerStorageDriver= (it is how Docker gets a privileged machine)" },
        { P "[Hooks]\nRunNetwork=2\n", -MKM_E_RECIPE, "t.recipe:6: [Hooks] RunNetwork=: expected a boolean (yes/no), got '2'" },
        { P "[Exec]\nDeviceAllow=/dev/fuse rwm\n", -MKM_E_RECIPE,
          "t.recipe:6: [Exec] DeviceAllow=: DeviceAllow= is not a .nspawn setting: it belongs in a "
          "systemd-nspawn@NAME.service.d/ drop-in (the Fuse= hook writes it for you)" },
        { P "[Files]\nMemoryMax=1G\n", -MKM_E_RECIPE,
          "t.recipe:6: [Files] MemoryMax=: MemoryMax= is not a .nspawn setting: it belongs in a "
          "systemd-nspawn@NAME.service.d/ drop-in" },
        { P "[Bootsrap]\n", -MKM_E_RECIPE, "t.recipe:5: [Bootsrap]: unknown section; did you mean '[Bootstrap]'?" },
        { P "[hooks]\n", -MKM_E_RECIPE, "t.recipe:5: [hooks]: unknown section; did you mean '[Hooks]'?" },
        { P "[Service]\n", -MKM_E_RECIPE,
          "t.recipe:5: [Service]: unknown section; expected [Machine], [Bootstrap], [Hooks], [Exec], [Files] or [Network]" },
        { P "[Exec]\nBind=/a:/b\n", -MKM_E_RECIPE, "t.recipe:6: [Exec] Bind=: unknown key in [Exec]; Bind= belongs in [Files]" },
        /* Names systemd-nspawn ignores ("ignoring"), which would leave Private=no on the host's network. */
        { P "[Network]\nZone=production-web\n", -MKM_E_RECIPE,
          "t.recipe:6: [Network] Zone=: the zone's interface name vz-ZONE must be a valid interface name of at most "
          "15 characters (no blanks, ':', '/' or '%'), got 'production-web' (systemd-nspawn would ignore it)" },
        { P "[Network]\nBridge=12345\n", -MKM_E_RECIPE,
          "t.recipe:6: [Network] Bridge=: a bridge must be a valid interface name of at most 15 characters (no blanks, "
          "':', '/' or '%', not all digits), got '12345' (systemd-nspawn would ignore it)" },
        { P "[Network]\nInterface=eth0 all\n", -MKM_E_RECIPE,
          "t.recipe:6: [Network] Interface=: expected interface names HOST[:CONTAINER], each a valid interface name of "
          "at most 15 characters, got 'eth0 all' (systemd-nspawn would ignore it)" },
        { P "[Hooks]\nPackages=vim\n", -MKM_E_RECIPE, "t.recipe:6: [Hooks] Packages=: unknown key in [Hooks]; Packages= belongs in [Bootstrap]" },
        { P "[Exec]\nBot=yes\n", -MKM_E_RECIPE, "t.recipe:6: [Exec] Bot=: unknown key; did you mean 'Boot='?" },
        /* A trailing backslash (kept once a blank after it is trimmed) would continue the line
         * it is written to, in NAME.nspawn and in the canonical recipe: refused, nspawn key or ours. */
        { P "[Exec]\nHostname=foo\\ \n", -MKM_E_RECIPE,
          "t.recipe:6: [Exec] Hostname=: a value cannot end in a backslash (written to a recipe or to the .nspawn file, "
          "the line would continue into the next one)" },
        { P "[Hooks]\nRun=echo a\\\\\\ \n", -MKM_E_RECIPE,
          "t.recipe:6: [Hooks] Run=: a value cannot end in a backslash (written to a recipe or to the .nspawn file, "
          "the line would continue into the next one)" },
        { P "[Hooks]\nEnableService=a.service\n", -MKM_E_RECIPE, "t.recipe:6: [Hooks] EnableService=: unknown key; did you mean 'EnableServices='?" },
        { P "[Hooks]\nPackage=vim\n", -MKM_E_RECIPE, "t.recipe:6: [Hooks] Package=: unknown key; did you mean '[Bootstrap] Packages='?" },
        { P "[Hooks]\nFrobnicate=1\n", -MKM_E_RECIPE, "t.recipe:6: [Hooks] Frobnicate=: unknown key" },
        { P "[Exec]\nQuuxishThing=1\n", -MKM_E_RECIPE,
          "t.recipe:6: [Exec] QuuxishThing=: unknown key: not a setting of systemd.nspawn(5) nor of mkmachine" },
        { "[Machine]\nName=-bad\n[Bootstrap]\nDistribution=arch\n", -MKM_E_RECIPE, "t.recipe:2: [Machine] Name=: " NM ", got '-bad'" },
        { "[Machine]\nName=.hidden\n[Bootstrap]\nDistribution=arch\n", -MKM_E_RECIPE, "t.recipe:2: [Machine] Name=: " NM ", got '.hidden'" },
        { "[Machine]\nName=a/b\n[Bootstrap]\nDistribution=arch\n", -MKM_E_RECIPE, "t.recipe:2: [Machine] Name=: " NM ", got 'a/b'" },
        { "[Machine]\nName=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n[Bootstrap]\nDistribution=arch\n", -MKM_E_RECIPE,
          "t.recipe:2: [Machine] Name=: " NM ", got 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'" },
        { "[Machine]\nName=t\n[Bootstrap]\nDistribution=gentoo\n", -MKM_E_RECIPE,
          "t.recipe:4: [Bootstrap] Distribution=: expected 'arch' or 'debian', got 'gentoo'" },
        { P "Snapshot=2024-02-30\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] Snapshot=: " SNAP ", got '2024-02-30'" },
        { P "Snapshot=2023-02-29\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] Snapshot=: " SNAP ", got '2023-02-29'" },
        { P "Snapshot=2024-13-01\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] Snapshot=: " SNAP ", got '2024-13-01'" },
        { P "Snapshot=2024-06/01\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] Snapshot=: " SNAP ", got '2024-06/01'" },
        { P "Snapshot=20240601T250000Z\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] Snapshot=: " SNAP ", got '20240601T250000Z'" },
        { P "Snapshot=yesterday\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] Snapshot=: " SNAP ", got 'yesterday'" },
        { P "Mirror=ftp://example.invalid/arch\n", -MKM_E_RECIPE,
          "t.recipe:5: [Bootstrap] Mirror=: expected an http://, https:// or file:// URL, got 'ftp://example.invalid/arch'" },
        { P "Packages=base -rf\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] Packages=: expected a package name, got '-rf'" },
        { P "Packages=base;reboot\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] Packages=: expected a package name, got 'base;reboot'" },
        { P "Provider=sh\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] Provider=: expected VIRTUAL:PACKAGE, got 'sh'" },
        { P "Provider=sh:\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] Provider=: expected VIRTUAL:PACKAGE, got 'sh:'" },
        { P "Architecture=sparc\n", -MKM_E_RECIPE,
          "t.recipe:5: [Bootstrap] Architecture=: expected an architecture such as x86_64, aarch64, amd64 or arm64, got 'sparc'" },
        { P "Architecture=ppc64el\n", -MKM_E_RECIPE,
          "t.recipe:5: [Bootstrap] Architecture=: 'ppc64el' is not available for Distribution=arch" },
        { P "Suite=bookworm\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] Suite=: only for Distribution=debian" },
        { P "Variant=minbase\n", -MKM_E_RECIPE, "t.recipe:5: [Bootstrap] Variant=: only for Distribution=debian" },
        { "[Machine]\nName=t\n[Bootstrap]\nDistribution=debian\nRepositories=core\n", -MKM_E_RECIPE,
          "t.recipe:5: [Bootstrap] Repositories=: only for Distribution=arch (use Components= for Debian)" },
        { "[Machine]\nName=t\n[Bootstrap]\nDistribution=debian\nVariant=tiny\n", -MKM_E_RECIPE,
          "t.recipe:5: [Bootstrap] Variant=: expected one of extract, custom, essential, apt, required, minbase, buildd, "
          "important, debootstrap, standard, got 'tiny'" },
        { "[Bootstrap]\nDistribution=arch\n", -MKM_E_RECIPE, "t.recipe: [Machine] Name=: missing; every recipe needs a machine name" },
        { "[Machine]\nName=t\n", -MKM_E_RECIPE, "t.recipe: [Bootstrap] Distribution=: missing; expected 'arch' or 'debian'" },
        { P "[Hooks]\nDockerStorageDriver=aufs\n", -MKM_E_RECIPE,
          "t.recipe:6: [Hooks] DockerStorageDriver=: expected one of overlay2, vfs, btrfs, fuse-overlayfs, got 'aufs'" },
        { P "[Hooks]\nEnableServices=sshd\n", -MKM_E_RECIPE,
          "t.recipe:6: [Hooks] EnableServices=: expected a unit name such as 'sshd.service', got 'sshd'" },
        { P "[Hooks]\nCopy=motd\n", -MKM_E_RECIPE, "t.recipe:6: [Hooks] Copy=: expected SRC:DEST[:MODE[:OWNER]], got 'motd'" },
        { P "[Hooks]\nCopy=:/etc/motd\n", -MKM_E_RECIPE, "t.recipe:6: [Hooks] Copy=: expected SRC:DEST[:MODE[:OWNER]], got ':/etc/motd'" },
        { P "[Hooks]\nCopy=motd:etc/motd\n", -MKM_E_RECIPE,
          "t.recipe:6: [Hooks] Copy=: destination must be an absolute path, got 'etc/motd'" },
        { P "[Hooks]\nCopy=motd:/etc/../../motd\n", -MKM_E_RECIPE,
          "t.recipe:6: [Hooks] Copy=: destination must not contain '.' or '..' components, got '/etc/../../motd'" },
        { P "[Hooks]\nCopy=motd:/etc/motd:0999\n", -MKM_E_RECIPE,
          "t.recipe:6: [Hooks] Copy=: expected an octal mode such as 0644, got '0999'" },
        { P "[Hooks]\nCopy=motd:/etc/motd:107777\n", -MKM_E_RECIPE,
          "t.recipe:6: [Hooks] Copy=: expected an octal mode such as 0644, got '107777'" },
        { P "[Hooks]\nCopy=motd:/etc/motd:0644:Root\n", -MKM_E_RECIPE,
          "t.recipe:6: [Hooks] Copy=: expected OWNER as user[:group] or uid[:gid], got 'Root'" },
        { P "[Hooks]\nCopy=motd:/etc/motd:0644:root:4294967295\n", -MKM_E_RECIPE,
          "t.recipe:6: [Hooks] Copy=: expected OWNER as user[:group] or uid[:gid], got 'root:4294967295'" },
        { P "[Hooks]\nCopy=a:/b:0644:root:root:x\n", -MKM_E_RECIPE,
          "t.recipe:6: [Hooks] Copy=: expected SRC:DEST[:MODE[:OWNER]], got 'a:/b:0644:root:root:x'" },
        { P "[Network]\nAddress=10.0.0.2\n", -MKM_E_RECIPE,
          "t.recipe:6: [Network] Address=: expected an IP address with a prefix length such as 192.168.1.2/24, got '10.0.0.2'" },
        { P "[Network]\nAddress=10.0.0.2/33\n", -MKM_E_RECIPE,
          "t.recipe:6: [Network] Address=: expected an IP address with a prefix length such as 192.168.1.2/24, got '10.0.0.2/33'" },
        { P "[Network]\nAddress=10.0.0.2/24\nGateway=fe80::1/64\n", -MKM_E_RECIPE,
          "t.recipe:7: [Network] Gateway=: expected an IP address, got 'fe80::1/64'" },
        { P "[Network]\nGateway=10.0.0.1\n", -MKM_E_RECIPE,
          "t.recipe:6: [Network] Gateway=: needs Address= too (a gateway without an address is unreachable)" },
        { "[Machine]\nName=t\nInclude=base.recipe\n[Bootstrap]\nDistribution=arch\n", -MKM_E_RECIPE,
          "t.recipe:3: [Machine] Include=: includes are not followed when parsing a single buffer" },
        { P "Packages\n", -MKM_E_PARSE, "t.recipe:5: expected 'Key=Value', got 'Packages'" },
        { "Name=t\n", -MKM_E_PARSE, "t.recipe:1: assignment outside any section: put a [Section] line above it" },
        { P "[Hooks\n", -MKM_E_PARSE, "t.recipe:5: unterminated section header '[Hooks': expected ']' at the end" },
};

static void test_bad(void **state) {
        (void)state;
        assert_true(ELEMENTSOF(bad) >= 25);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct mkm_err err = {};
                struct recipe *r = NULL;
                int k = recipe_load_buffer(bad[i].text, strlen(bad[i].text), "t.recipe", &r, &err);
                if (k != bad[i].code || strcmp(err.msg, bad[i].msg) != 0)
                        fail_msg("case %zu: code %d msg '%s'\n  expected %d '%s'", i, k, err.msg, bad[i].code, bad[i].msg);
                assert_null(r);
        }
}

static void test_validate_for_build(void **state) {
        (void)state;
        struct mkm_err err = {};
        _cleanup_(recipe_freep) struct recipe *r = load_ok(P);
        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
        assert_string_equal(err.msg, "/srv/recipes/t.recipe: [Bootstrap] Packages=: empty; a build needs at least one "
                                     "package (e.g. Packages=base)");

        _cleanup_(recipe_freep) struct recipe *k = load_ok(P "Packages=base\nKeyring=/nonexistent/k.gpg\n");
        assert_int_equal(recipe_validate_for_build(k, &err), -MKM_E_RECIPE);
        assert_string_equal(err.msg, "/srv/recipes/t.recipe:6: [Bootstrap] Keyring=: cannot read '/nonexistent/k.gpg': "
                                     "No such file or directory");

        _cleanup_(recipe_freep) struct recipe *d = load_ok(P "Packages=base\n[Hooks]\nRootAuthorizedKeys=/\n");
        assert_int_equal(recipe_validate_for_build(d, &err), -MKM_E_RECIPE);
        assert_string_equal(err.msg, "/srv/recipes/t.recipe:7: [Hooks] RootAuthorizedKeys=: expected a file, '/' is a directory");

        _cleanup_(recipe_freep) struct recipe *ok = load_ok(P "Packages=base\n[Hooks]\nCopy=/etc/hostname:/etc/x\n");
        assert_int_equal(recipe_validate_for_build(ok, &err), 0);
}

/* ---- includes, with real files ----------------------------------------------------------- */

static char *tmpdir;

static int setup_tmp(void **state) {
        int r = th_tmpdir_setup(state, "recipe");
        tmpdir = r < 0 ? NULL : *state;
        return r;
}

static int teardown_tmp(void **state) {
        tmpdir = NULL;
        return th_tmpdir_teardown(state);
}

static void write_file(const char *rel, const char *text) { th_write_file(tmpdir, rel, text, 0644); }

static char *tpath(const char *rel) {
        char *p = fs_path_join(tmpdir, rel);
        assert_non_null(p);
        return p;
}

static void test_include(void **state) {
        (void)state;
        write_file("site/common/base.recipe",
                   "# a shared base\n"
                   "[Machine]\nName=from-base\n"
                   "[Bootstrap]\nDistribution=arch\nPackages=base\nKeyring=keys/arch.gpg\n"
                   "[Hooks]\nFuse=yes\nEnableServices=sshd.service\n"
                   "[Machine]\nInclude=net.recipe\n");
        write_file("site/common/net.recipe", "[Network]\nVirtualEthernet=yes\n");
        write_file("site/top.recipe",
                   "[Hooks]\nDockerStorageDriver=vfs\n"
                   "[Machine]\nName=web\nInclude=common/base.recipe\n"
                   "[Bootstrap]\nPackages=nginx\n"
                   "[Hooks]\nFuse=no\nEnableServices=nginx.service\n"
                   "[Files]\nBind=/srv/web\n");
        _cleanup_free_ char *top = tpath("site/top.recipe");
        struct mkm_err err = {};
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        int k = recipe_load(NULL, top, &r, &err);
        if (k < 0)
                fail_msg("%s", err.msg);
        /* Name=web came before the include; the include's Name= is later and wins. */
        assert_string_equal(r->name, "from-base");
        assert_strv(r->packages, "base nginx");
        assert_int_equal(r->fuse, RECIPE_NO);
        assert_strv(r->enable_services, "sshd.service nginx.service");
        assert_string_equal(r->docker_storage_driver, "vfs");
        _cleanup_free_ char *kr = tpath("site/common/keys/arch.gpg");
        assert_string_equal(r->keyring, kr);    /* relative to the file that set it */
        assert_int_equal(r->n_nspawn, 2);
        assert_string_equal(r->nspawn[0].key, "VirtualEthernet");
        assert_string_equal(r->nspawn[1].key, "Bind");
        _cleanup_free_ char *shown_net = NULL;
        assert_true(asprintf(&shown_net, "%s/site/common/net.recipe", tmpdir) > 0);
        assert_string_equal(r->nspawn[0].file, shown_net);
        assert_int_equal(r->nspawn[0].line, 2);

        _cleanup_free_ char *real_top = realpath(top, NULL);
        assert_string_equal(r->path, real_top);
        assert_int_equal(strv_length(r->files), 3);
        assert_string_equal(r->files[0], real_top);
        assert_non_null(strstr(r->files[1], "/common/base.recipe"));
        assert_non_null(strstr(r->files[2], "/common/net.recipe"));

        /* Including the same file twice (not a cycle) is fine and lists it once. */
        write_file("site/twice.recipe", "[Machine]\nInclude=common/net.recipe ./common/../common/net.recipe\nName=x\n"
                                        "[Bootstrap]\nDistribution=arch\n");
        _cleanup_free_ char *twice = tpath("site/twice.recipe");
        _cleanup_(recipe_freep) struct recipe *t = NULL;
        assert_int_equal(recipe_load(NULL, twice, &t, &err), 0);
        assert_int_equal(strv_length(t->files), 2);
        assert_int_equal(t->n_nspawn, 2);

        /* Not beside: a sibling directory's recipe (../common) is refused, as Copy= sources are. */
        write_file("site/web/up.recipe", "[Machine]\nName=x\nInclude=../common/net.recipe\n[Bootstrap]\nDistribution=arch\n");
        _cleanup_free_ char *up = tpath("site/web/up.recipe"), *webdir = tpath("site/web");
        _cleanup_(recipe_freep) struct recipe *u = NULL;
        assert_true(recipe_load(NULL, up, &u, &err) < 0);
        char want[1024];
        snprintf(want, sizeof want, "[Machine] Include=: '%s/site/common/net.recipe' is not beside this recipe file: "
                                    "includes must be in its directory (%s) or below", tmpdir, webdir);
        if (!strstr(err.msg, want))
                fail_msg("got: %s\nwant: %s", err.msg, want);
}

/* Include= reads only recipe files beside the including one (its directory or below), judged as
 * written and where they lead, by a walk that follows no magic link: a shared recipe's
 * Include=/etc/shadow, another machine's .nspawn with its Environment= secrets, another tenant's
 * recipe, a link named x.recipe to any of them, or /proc/self/root/... must be neither printed
 * nor merged into this machine. Found by two reviews. */
static void test_include_not_echoed(void **state) {
        (void)state;
        write_file("host/shadow", "root:$6$saltsalt$HASHHASHHASH:19000:0:99999:7:::\n");
        write_file("host/other.nspawn", "[Exec]\nEnvironment=DB_PASSWORD=SECRET\n");
        write_file("host/base.recipe", "root:$6$HASHHASH\n");
        write_file("rec/sub/bad.recipe", "this line is shown\n");
        write_file("rec/ok.recipe", "[Hooks]\nFuse=yes\n");
        _cleanup_free_ char *shadow = tpath("host/shadow"), *nspawn = tpath("host/other.nspawn"),
                            *base = tpath("host/base.recipe"), *top = tpath("rec/top.recipe"),
                            *link = tpath("rec/evil.recipe"), *rec = tpath("rec"), *hostbase = tpath("host/base.recipe"),
                            *via_proc = NULL, *proclink = tpath("rec/viaproc.recipe");
        assert_int_equal(symlink(shadow, link), 0);
        assert_true(asprintf(&via_proc, "/proc/self/root%s/ok.recipe", rec) > 0);
        /* A link inside with an absolute target, even to a file beside (here through
         * /proc/self/root): the walk stays in the directory, and an absolute target names the
         * host's path, so it leads out. */
        assert_int_equal(symlink(via_proc, proclink), 0);
        char text[4096];
        snprintf(text, sizeof text,
                 "[Machine]\nName=x\nInclude=%s\nInclude=%s\nInclude=evil.recipe\nInclude=%s\nInclude=sub/bad.recipe\n"
                 "Include=sub\nInclude=%s\nInclude=viaproc.recipe\n[Bootstrap]\nDistribution=arch\nPackages=base\n",
                 shadow, nspawn, base, via_proc);
        write_file("rec/top.recipe", text);
        struct mkm_err err = {};
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        assert_true(recipe_load(NULL, top, &r, &err) < 0);
        assert_null(strstr(err.msg, "HASH"));
        assert_null(strstr(err.msg, "SECRET"));
        assert_null(strstr(err.msg, "root:"));
        char want[2048];
        snprintf(want, sizeof want, "top.recipe:3: [Machine] Include=: '%s' is not beside this recipe file: includes "
                                    "must be in its directory (%s) or below", shadow, rec);
        assert_non_null(strstr(err.msg, want));
        assert_non_null(strstr(err.msg, "top.recipe:4: [Machine] Include=: "));
        snprintf(want, sizeof want, "top.recipe:5: [Machine] Include=: '%s' leads out of this recipe file's directory "
                                    "(%s): includes must be in it or below", link, rec);
        assert_non_null(strstr(err.msg, want));
        assert_null(strstr(err.msg, "leads to"));               /* no link target told */
        snprintf(want, sizeof want, "top.recipe:6: [Machine] Include=: '%s' is not beside", hostbase);
        assert_non_null(strstr(err.msg, want));
        assert_non_null(strstr(err.msg, "bad.recipe:1: expected 'Key=Value', got 'this line is shown'"));
        assert_non_null(strstr(err.msg, "top.recipe:8: [Machine] Include=: expected a recipe file"));     /* a directory */
        snprintf(want, sizeof want, "top.recipe:9: [Machine] Include=: '%s' is not beside", via_proc);
        assert_non_null(strstr(err.msg, want));
        snprintf(want, sizeof want, "top.recipe:10: [Machine] Include=: '%s/viaproc.recipe' leads out", rec);
        assert_non_null(strstr(err.msg, want));

        /* Links that lead out tell nothing of what is there (a third review: "No such file", "a
         * directory" and "leads out" told a root-only directory's contents apart): one message,
         * whether the target exists, is a directory or a FIFO, absolute or through "..". */
        write_file("host/d/x", "");
        _cleanup_free_ char *fifo = tpath("host/fifo.recipe");
        assert_int_equal(mkfifo(fifo, 0600), 0);
        const char *const targets[] = { "../host/base.recipe", "../host/none.recipe", "../host/d", "../host/fifo.recipe",
                                        NULL };
        _cleanup_free_ char *hostdir = tpath("host");
        for (size_t i = 0; targets[i]; i++) {
                char name[64], abs_target[1024], linkp[1024];
                for (int absolute = 0; absolute < 2; absolute++) {
                        snprintf(name, sizeof name, "probe%zu%c.recipe", i, absolute ? 'a' : 'r');
                        snprintf(abs_target, sizeof abs_target, "%s/%s", hostdir, targets[i] + 8);
                        snprintf(linkp, sizeof linkp, "%s/%s", rec, name);
                        assert_int_equal(symlink(absolute ? abs_target : targets[i], linkp), 0);
                        snprintf(text, sizeof text, "[Machine]\nName=x\nInclude=%s\n[Bootstrap]\nDistribution=arch\n", name);
                        write_file("rec/probe.recipe", text);
                        _cleanup_free_ char *probe = tpath("rec/probe.recipe");
                        _cleanup_(recipe_freep) struct recipe *pr = NULL;
                        err = (struct mkm_err){};
                        assert_true(recipe_load(NULL, probe, &pr, &err) < 0);
                        snprintf(want, sizeof want, "probe.recipe:3: [Machine] Include=: '%s' leads out of this recipe "
                                                    "file's directory (%s): includes must be in it or below", linkp, rec);
                        if (strcmp(strstr(err.msg, "probe.recipe:3:") ? strstr(err.msg, "probe.recipe:3:") : err.msg,
                                   strstr(want, "probe.recipe:3:")) != 0)
                                fail_msg("%s -> %s:\n  got  %s\n  want %s", name, absolute ? abs_target : targets[i],
                                         err.msg, want);
                }
        }
}

/* Copy= sources lie beside the recipe file that names them, not beside any file read (an Include=
 * of a host file that parses as an empty recipe); a stored recipe (rebuild), which does not know
 * which file named them, needs the path as written and where it leads under one's directory. */
static void test_sources_beside(void **state) {
        (void)state;
        write_file("mine/sub/inc.recipe", "[Hooks]\nCopy=../files/motd:/etc/from-sub\n");
        write_file("mine/sub/empty.recipe", "");
        write_file("other/secret", "s\n");
        write_file("mine/files/motd", "m\n");
        _cleanup_free_ char *secret = tpath("other/secret"), *motd = tpath("mine/files/motd"),
                            *top = tpath("mine/top.recipe");
        char text[2048];
        snprintf(text, sizeof text,
                 "[Machine]\nName=x\nInclude=sub/empty.recipe\n[Bootstrap]\nDistribution=arch\nPackages=base\n"
                 "[Hooks]\nCopy=%s:/etc/s\n", secret);
        write_file("mine/top.recipe", text);
        struct mkm_err err = {};
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        assert_int_equal(recipe_load(NULL, top, &r, &err), 0);
        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "is not beside the recipe that names it"));
        recipe_free(r);
        r = NULL;
        /* An included recipe's source is judged by its own directory: sub/inc.recipe may not
         * reach up into the top recipe's files/. */
        write_file("mine/top.recipe",
                   "[Machine]\nName=x\nInclude=sub/inc.recipe\n[Bootstrap]\nDistribution=arch\nPackages=base\n");
        assert_int_equal(recipe_load(NULL, top, &r, &err), 0);
        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "files/motd' is not beside the recipe that names it"));
        recipe_free(r);
        r = NULL;
        write_file("mine/top.recipe",
                   "[Machine]\nName=x\nInclude=sub/empty.recipe\n[Bootstrap]\nDistribution=arch\nPackages=base\n"
                   "[Hooks]\nCopy=files/motd:/etc/motd\n");
        assert_int_equal(recipe_load(NULL, top, &r, &err), 0);
        if (recipe_validate_for_build(r, &err) < 0)
                fail_msg("%s", err.msg);
        /* As rebuild judges it: the source swapped for a link out of every recipe file's directory. */
        recipe_forget_source_dirs(r);
        if (recipe_validate_for_build(r, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(unlink(motd), 0);
        assert_int_equal(symlink(secret, motd), 0);
        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "is not beside the recipe"));
}

/* Keyring= lies beside the recipe file that names it, as Copy= sources do: for Debian its bytes
 * are copied into the machine, so a co-tenant's recipe naming a host file (another tenant's
 * exported key) must not get it. A path outside is refused as written, without telling whether it
 * exists; a link out is refused where it leads; a FIFO is not opened for reading; the build's
 * open (recipe_open_keyring_for_build) refuses what changed since the check. */
static void test_keyring_beside(void **state) {
        (void)state;
        write_file("other/secret.asc", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n");
        write_file("kr/keys/k.gpg", "k\n");
        write_file("kr/keys/sub/x.gpg", "x\n");
        _cleanup_free_ char *secret = tpath("other/secret.asc"), *nothere = tpath("other/nothing.gpg"),
                            *top = tpath("kr/top.recipe"), *k = tpath("kr/keys/k.gpg"), *link = tpath("kr/keys/l.gpg"),
                            *fifo = tpath("kr/keys/f.gpg"), *kdir = tpath("kr/keys");
        const char *head = "[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\nKeyring=";
        char text[2048];
        struct mkm_err err = {};
        struct recipe *r = NULL;
        /* outside, existing or not: the same refusal */
        const char *outside[] = { secret, nothere };
        for (size_t i = 0; i < ELEMENTSOF(outside); i++) {
                snprintf(text, sizeof text, "%s%s\n", head, outside[i]);
                write_file("kr/top.recipe", text);
                assert_int_equal(recipe_load(NULL, top, &r, &err), 0);
                assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
                char want[4096];
                snprintf(want, sizeof want, "%s:6: [Bootstrap] Keyring=: '%s' is not beside the recipe that names it",
                         top, outside[i]);
                if (!strstr(err.msg, want))
                        fail_msg("got  %s\nwant %s", err.msg, want);
                recipe_free(TAKE_PTR(r));
        }
        /* a link beside that leads out */
        assert_int_equal(symlink(secret, link), 0);
        snprintf(text, sizeof text, "%skeys/l.gpg\n", head);
        write_file("kr/top.recipe", text);
        assert_int_equal(recipe_load(NULL, top, &r, &err), 0);
        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "keys/l.gpg' is not beside the recipe that names it"));
        recipe_free(TAKE_PTR(r));
        /* a FIFO beside: refused, not waited on */
        assert_int_equal(mkfifo(fifo, 0644), 0);
        snprintf(text, sizeof text, "%skeys/f.gpg\n", head);
        write_file("kr/top.recipe", text);
        assert_int_equal(recipe_load(NULL, top, &r, &err), 0);
        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "keys/f.gpg' is neither a file nor a directory"));
        recipe_free(TAKE_PTR(r));
        /* the recipe's own directory */
        snprintf(text, sizeof text, "%s.\n", head);
        write_file("kr/top.recipe", text);
        assert_int_equal(recipe_load(NULL, top, &r, &err), 0);
        if (recipe_validate_for_build(r, &err) < 0)
                fail_msg("Keyring=.: %s", err.msg);
        /* ... but not when anyone can write it (the build refuses it: so does the check) */
        _cleanup_free_ char *krdir = tpath("kr");
        assert_int_equal(chmod(krdir, 01777), 0);
        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "Keyring=: '"));
        assert_non_null(strstr(err.msg, "' is in (or is) a directory anyone can write"));
        assert_int_equal(chmod(krdir, 0755), 0);
        recipe_free(TAKE_PTR(r));
        /* a file and a directory beside: accepted, and opened for the build */
        const char *good[] = { "keys/k.gpg", "keys" };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                snprintf(text, sizeof text, "%s%s\n", head, good[i]);
                write_file("kr/top.recipe", text);
                assert_int_equal(recipe_load(NULL, top, &r, &err), 0);
                if (recipe_validate_for_build(r, &err) < 0)
                        fail_msg("%s: %s", good[i], err.msg);
                struct stat st;
                int fd = recipe_open_keyring_for_build(r, false, &st, &err);
                if (fd < 0)
                        fail_msg("%s: %s", good[i], err.msg);
                close(fd);
                /* Debian takes one file */
                fd = recipe_open_keyring_for_build(r, true, &st, &err);
                if (i == 0) {
                        assert_true(fd >= 0);
                        close(fd);
                } else {
                        assert_int_equal(fd, -MKM_E_RECIPE);
                        assert_non_null(strstr(err.msg, "for Debian a single .gpg or .asc file"));
                }
                if (i == 1)
                        break;
                recipe_free(TAKE_PTR(r));
        }
        /* The directory swapped for a link out after the check: the build's open refuses it. */
        _cleanup_free_ char *kdir2 = tpath("kr/keys.real");
        assert_int_equal(rename(kdir, kdir2), 0);
        _cleanup_free_ char *otherdir = tpath("other");
        assert_int_equal(symlink(otherdir, kdir), 0);
        struct stat st;
        assert_int_equal(recipe_open_keyring_for_build(r, false, &st, &err), -MKM_E_RECIPE);
        char want[4096];
        snprintf(want, sizeof want, "%s:6: [Bootstrap] Keyring=: '%s' is not beside the recipe now", top, kdir);
        if (!strstr(err.msg, want))
                fail_msg("got  %s\nwant %s", err.msg, want);
        /* and so does a rebuild's check of the stored recipe */
        recipe_forget_source_dirs(r);
        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "is not beside the recipe"));
        recipe_free(TAKE_PTR(r));
        (void)k;
}

/* The recipe named on the command line, from a co-tenant's directory: a FIFO is refused at once
 * (not waited on), and so are the tenant's symbolic link to another owner's file and a hard link
 * to one (its lines would be echoed in errors); root's own link is followed. */
static void test_top_recipe_opened(void **state) {
        (void)state;
        write_file("host/secret", "root:$6$HASHHASH:19000\n");
        write_file("ten/ok.recipe", "[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\n");
        _cleanup_free_ char *secret = tpath("host/secret"), *ten = tpath("ten"), *fifo = tpath("ten/fifo.recipe"),
                            *sl = tpath("ten/sl.recipe"), *hl = tpath("ten/hl.recipe"), *ok = tpath("ten/ok.recipe"),
                            *rootlink = tpath("ten/root.recipe"), *pub = tpath("host/public"),
                            *slpub = tpath("ten/slpub.recipe"), *hostdir = tpath("host"), *dirlink = tpath("ten/d"),
                            *viadir = tpath("ten/d/secret");
        write_file("host/public", "[Machine]\nName=p\n");
        assert_int_equal(chmod(tmpdir, 0755), 0);     /* the tenant may walk to their files */
        assert_int_equal(symlink(pub, slpub), 0);
        assert_int_equal(lchown(slpub, 65534, 65534), 0);
        /* a link of the tenant's to a directory, on the way to a root-only file */
        assert_int_equal(symlink(hostdir, dirlink), 0);
        assert_int_equal(lchown(dirlink, 65534, 65534), 0);
        assert_int_equal(chmod(secret, 0600), 0);
        assert_int_equal(mkfifo(fifo, 0644), 0);
        assert_int_equal(symlink(secret, sl), 0);
        assert_int_equal(lchown(sl, 65534, 65534), 0);
        assert_int_equal(link(secret, hl), 0);
        assert_int_equal(symlink(ok, rootlink), 0);
        assert_int_equal(chown(ten, 65534, 65534), 0);
        struct mkm_err err = {};
        struct recipe *r = NULL;
        const struct { const char *path, *why; } refused[] = {
                { fifo, "not a regular file" },
                { sl, "a symbolic link to a file of another owner than the link's" },
                { slpub, "a symbolic link to a file of another owner than the link's" },
                { viadir, "not readable by the recipe's reader (the owner of it, of its directories and of the links "
                          "on its path)" },
                { hl, "a hard link to a file of another owner than its directory's" },
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                assert_int_equal(recipe_load(NULL, refused[i].path, &r, &err), -MKM_E_RECIPE);
                assert_null(r);
                char want[4096];
                snprintf(want, sizeof want, "cannot read recipe '%s': %s", refused[i].path, refused[i].why);
                if (!strstr(err.msg, want))
                        fail_msg("got  %s\nwant %s", err.msg, want);
                assert_null(strstr(err.msg, "HASH"));
        }
        assert_int_equal(recipe_load(NULL, rootlink, &r, &err), 0);
        recipe_free(TAKE_PTR(r));
        assert_int_equal(recipe_load(NULL, ok, &r, &err), 0);
        recipe_free(TAKE_PTR(r));
}

/* A recipe's sources are read with its owner's permissions (fs_reader): a tenant's recipe kept in
 * a directory they do not own (their mailbox in root's /var/mail) takes nothing another user's
 * from beside it, through Copy=, Include= or Keyring=; their own files it takes. The reader is the
 * first owner other than root among the recipe's files, so root's recipe that includes a tenant's
 * fragment reads as the tenant; a stored recipe's reader comes from its files as they are now. */
static void set_files(struct recipe *r, const char *a, const char *b) {
        r->files = strv_free(r->files);
        assert_int_equal(strv_push(&r->files, a), 0);
        if (b)
                assert_int_equal(strv_push(&r->files, b), 0);
}

static void test_recipe_reader(void **state) {
        (void)state;
        write_file("mail/alice", "alice's mail\n");
        write_file("mail/mine", "the tenant's\n");
        write_file("mail/root.recipe", "[Machine]\nName=r\n");
        _cleanup_free_ char *mail = tpath("mail"), *alice = tpath("mail/alice"), *mine = tpath("mail/mine"),
                            *rootinc = tpath("mail/root.recipe"), *top = tpath("mail/tenant.recipe");
        assert_int_equal(chmod(alice, 0600), 0);
        assert_int_equal(chown(alice, 4242, 4242), 0);
        assert_int_equal(chown(mine, 65534, 65534), 0);
        assert_int_equal(chmod(rootinc, 0600), 0);
        const char *base = "[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\n";
        struct mkm_err err = {};
        struct recipe *r = NULL;
        char text[4096], want[4096];

        /* Copy= of another user's file: refused; of the tenant's own: taken */
        const char *srcs[] = { "alice", "mine" };
        for (size_t i = 0; i < 2; i++) {
                snprintf(text, sizeof text, "%s[Hooks]\nCopy=%s:/etc/x\n", base, srcs[i]);
                write_file("mail/tenant.recipe", text);
                assert_int_equal(chown(top, 65534, 65534), 0);
                assert_int_equal(recipe_load(NULL, top, &r, &err), 0);
                assert_int_equal(r->reader_uid, 65534);
                if (i == 0) {
                        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
                        snprintf(want, sizeof want, "[Hooks] Copy=: '%s' is not readable by the recipe's owner", alice);
                        if (!strstr(err.msg, want))
                                fail_msg("got  %s\nwant %s", err.msg, want);
                        /* as the build opens it */
                        struct stat st;
                        assert_int_equal(recipe_open_source(r, alice, mail, true, &st), -EACCES);
                } else if (recipe_validate_for_build(r, &err) < 0)
                        fail_msg("%s", err.msg);
                recipe_free(TAKE_PTR(r));
        }
        /* Keyring= and Include= of another user's file */
        snprintf(text, sizeof text, "%sKeyring=alice\n", base);
        write_file("mail/tenant.recipe", text);
        assert_int_equal(chown(top, 65534, 65534), 0);
        assert_int_equal(recipe_load(NULL, top, &r, &err), 0);
        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "Keyring=: '"));
        assert_non_null(strstr(err.msg, "' is not readable by the recipe's owner"));
        recipe_free(TAKE_PTR(r));
        snprintf(text, sizeof text, "[Machine]\nInclude=root.recipe\n%s", base);
        write_file("mail/tenant.recipe", text);
        assert_int_equal(chown(top, 65534, 65534), 0);
        assert_int_equal(recipe_load(NULL, top, &r, &err), -MKM_E_RECIPE);
        snprintf(want, sizeof want, "Include=: '%s' is not readable by the recipe's owner", rootinc);
        if (!strstr(err.msg, want))
                fail_msg("got  %s\nwant %s", err.msg, want);
        assert_null(r);
        /* a root file it may read, included, changes nothing: still read as the tenant */
        assert_int_equal(chmod(rootinc, 0644), 0);
        snprintf(text, sizeof text, "[Machine]\nInclude=root.recipe\n%s[Hooks]\nCopy=alice:/etc/x\n", base);
        write_file("mail/tenant.recipe", text);
        assert_int_equal(chown(top, 65534, 65534), 0);
        if (recipe_load(NULL, top, &r, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(r->reader_uid, 65534);
        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "is not readable by the recipe's owner"));
        recipe_free(TAKE_PTR(r));
        /* root's own recipe reads as root; once it includes the tenant's file, as the tenant */
        snprintf(text, sizeof text, "%s[Hooks]\nCopy=alice:/etc/x\n", base);
        write_file("mail/top-root.recipe", text);
        _cleanup_free_ char *topr = tpath("mail/top-root.recipe");
        assert_int_equal(recipe_load(NULL, topr, &r, &err), 0);
        assert_int_equal(r->reader_uid, 0);
        if (recipe_validate_for_build(r, &err) < 0)
                fail_msg("%s", err.msg);
        recipe_free(TAKE_PTR(r));
        write_file("mail/frag.recipe", "[Hooks]\nEnableServices=sshd.service\n");
        _cleanup_free_ char *frag = tpath("mail/frag.recipe");
        assert_int_equal(chown(frag, 65534, 65534), 0);
        snprintf(text, sizeof text, "[Machine]\nInclude=frag.recipe\n%s[Hooks]\nCopy=alice:/etc/x\n", base);
        write_file("mail/top-root.recipe", text);
        if (recipe_load(NULL, topr, &r, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(r->reader_uid, 65534);
        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "is not readable by the recipe's owner"));
        /* a stored recipe from before readers were recorded (rebuild): the reader from its files
         * now; a file that is gone, or is now a link, gives nobody (who made it is not known) */
        recipe_forget_source_dirs(r);
        r->reader_uid = 0;
        set_files(r, topr, frag);
        recipe_reader_from_files(r);
        assert_int_equal(r->reader_uid, 65534);
        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "is not readable by the recipe's owner"));
        set_files(r, topr, NULL);
        recipe_reader_from_files(r);
        assert_int_equal(r->reader_uid, 0);
        if (recipe_validate_for_build(r, &err) < 0)
                fail_msg("%s", err.msg);
        _cleanup_free_ char *gone = tpath("mail/gone.recipe"), *lnk = tpath("mail/lnk.recipe");
        set_files(r, topr, gone);
        recipe_reader_from_files(r);
        assert_int_equal(r->reader_uid, RECIPE_READER_NOBODY);
        assert_int_equal(symlink("/etc/hostname", lnk), 0);
        set_files(r, lnk, NULL);
        recipe_reader_from_files(r);
        assert_int_equal(r->reader_uid, RECIPE_READER_NOBODY);
        recipe_free(TAKE_PTR(r));
}

/* Who reads: root gives way to anyone, one user stays that user, two give nobody; a recipe file
 * brings its owner and its directory's (who can replace it), and nobody when root owns both but
 * others can write either (its lines or neighbours may be theirs). Through loading: a root recipe
 * that a group can write, one in a tenant's directory, one including two tenants' fragments. */
/* A Copy= directory is judged as the build will copy it, when the recipe is checked (and by the
 * build's validation, before anything is fetched): each entry as the recipe's reader, no
 * directory anyone can write in it, no device or FIFO, no hard link to another owner's file, no
 * deeper than RECIPE_COPY_DEPTH_MAX. Each refusal names the entry; the tenant's own tree passes. */
static void test_copy_tree_judged(void **state) {
        (void)state;
        write_file("ten/files/etc/motd", "m\n");
        write_file("ten/files/etc/sub/note", "n\n");
        write_file("root-only", "r\n");
        _cleanup_free_ char *ten = tpath("ten"), *top = tpath("ten/t.recipe"), *rootonly = tpath("root-only");
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "chown -R 4321:4321 '%s'", ten);
        assert_int_equal(system(cmd), 0);
        write_file("ten/t.recipe",
                   "[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\n[Hooks]\nCopy=files/etc:/etc/x\n");
        assert_int_equal(chown(top, 4321, 4321), 0);
        struct mkm_err err = {};
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        assert_int_equal(recipe_load(NULL, top, &r, &err), 0);
        assert_int_equal(r->reader_uid, 4321);
        if (recipe_validate_for_build(r, &err) < 0)
                fail_msg("the tenant's own tree: %s", err.msg);

        struct {
                const char *make;       /* a shell command run in ten/files/etc */
                const char *undo;
                const char *want;       /* in the error, after "Copy=: '" */
        } cases[] = {
                { "echo s >sub/closed && chmod 600 sub/closed", "rm sub/closed",
                  "files/etc/sub/closed' is not readable by the recipe's owner" },
                { "mkdir -p sub/shut/in && chown -R 0:0 sub/shut && chmod 700 sub/shut", "rm -rf sub/shut",
                  "files/etc/sub/shut' is not readable by the recipe's owner" },
                { "mkdir -m 1777 sub/tmp", "rmdir sub/tmp",
                  "files/etc/sub/tmp' is in (or is) a directory anyone can write" },
                { "mkfifo sub/fifo && chown 4321:4321 sub/fifo", "rm sub/fifo",
                  "files/etc/sub/fifo' is a device, FIFO or socket" },
                { "ln ROOTONLY sub/hl", "rm sub/hl",
                  "files/etc/sub/hl' is a hard link to a file of another owner than its directory's" },
                { "mkdir -p $(printf 'd/%.0s' $(seq 257)) && chown -R 4321:4321 d", "rm -rf d",
                  "files/etc' is deeper than 256 levels" },
        };
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
                char make[1024];
                snprintf(make, sizeof make, "%s", cases[i].make);
                char *at = strstr(make, "ROOTONLY");
                if (at) {
                        char rest[1024];
                        snprintf(rest, sizeof rest, "%s", at + 8);
                        snprintf(at, sizeof make - (size_t)(at - make), "'%s'%s", rootonly, rest);
                }
                snprintf(cmd, sizeof cmd, "cd '%s/files/etc' && %s", ten, make);
                assert_int_equal(system(cmd), 0);
                err = (struct mkm_err){};
                if (recipe_validate_for_build(r, &err) != -MKM_E_RECIPE || !strstr(err.msg, "[Hooks] Copy=: '") ||
                    !strstr(err.msg, cases[i].want))
                        fail_msg("case %zu: got '%s'\nwant '%s'", i, err.msg, cases[i].want);
                snprintf(cmd, sizeof cmd, "cd '%s/files/etc' && %s", ten, cases[i].undo);
                assert_int_equal(system(cmd), 0);
        }
        /* and nothing left over that the last case missed */
        if (recipe_validate_for_build(r, &err) < 0)
                fail_msg("after the cases: %s", err.msg);
        /* 256 levels below the source are copied (257, above, are not) */
        snprintf(cmd, sizeof cmd, "cd '%s/files/etc' && mkdir -p $(printf 'd/%%.0s' $(seq 256)) && chown -R 4321:4321 d",
                 ten);
        assert_int_equal(system(cmd), 0);
        if (recipe_validate_for_build(r, &err) < 0)
                fail_msg("256 levels: %s", err.msg);
        snprintf(cmd, sizeof cmd, "rm -rf '%s/files/etc/d'", ten);
        assert_int_equal(system(cmd), 0);

        /* A root that cannot take the reader's identity (no CAP_SETGID: setgroups fails) says so,
         * at the load, at the judge walk and at the build's Keyring=; never "a directory anyone can write", whose code
         * (-EPERM) the failed switch once shared. Its code stays -MKM_E_IDENTITY (exit 1: no
         * change to the recipe mends it). In a child, as capabilities do not come back. */
        write_file("ten/k.recipe", "[Machine]\nName=k\n[Bootstrap]\nDistribution=arch\nPackages=base\nKeyring=files/etc/sub/note\n");
        _cleanup_free_ char *kpath = tpath("ten/k.recipe");
        assert_int_equal(chown(kpath, 4321, 4321), 0);
        _cleanup_(recipe_freep) struct recipe *kr = NULL;
        assert_int_equal(recipe_load(NULL, kpath, &kr, &err), 0);
        const char *const want[3] = { "cannot read recipe '", "files/etc' " FS_IDENTITY_REFUSED,
                                      "files/etc/sub/note' " FS_IDENTITY_REFUSED };
        for (int step = 0; step < 3; step++) {
                struct th_child child;
                if (th_child_start(&child) == 0) {
                        if (th_drop_effective_cap(CAP_SETGID) < 0)
                                _exit(10);
                        struct mkm_err e = {};
                        struct recipe *again = NULL;
                        struct stat kst;
                        int q = step == 0   ? recipe_load(NULL, top, &again, &e)
                                : step == 1 ? recipe_validate_for_build(r, &e)
                                            : recipe_open_keyring_for_build(kr, false, &kst, &e);
                        (void)!write(child.fd, e.msg, strlen(e.msg));
                        _exit(q >= 0 ? 11 : q != -MKM_E_IDENTITY || e.code != q ? 12 : 0);
                }
                char msg[2048];
                int status = th_child_wait(&child, msg, sizeof msg);
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        fail_msg("step %d: child status %#x, said '%s'", step, status, msg);
                if (!strstr(msg, want[step]) || strstr(msg, "anyone can write") ||
                    (step == 0 && !strstr(msg, "cannot take the recipe owner's permissions (needs CAP_SETUID and CAP_SETGID")))
                        fail_msg("step %d without CAP_SETGID: got '%s'\nwant '%s'", step, msg, want[step]);
        }

        /* An open's own EPERM (here a fanotify listener that denies opening motd; a FUSE daemon
         * or a seccomp filter could say it too) is told as what it is, not as the walk's "a
         * directory anyone can write". */
        _cleanup_free_ char *motd = tpath("ten/files/etc/motd");
        int ready[2];
        assert_int_equal(pipe(ready), 0);
        pid_t denier = fork();
        assert_true(denier >= 0);
        if (denier == 0) {
                close(ready[0]);
                int fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY | O_CLOEXEC);
                if (fan < 0 || fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD, motd) < 0)
                        _exit(1);
                if (write(ready[1], "r", 1) != 1)
                        _exit(2);
                for (;;) {
                        struct fanotify_event_metadata ev[8];
                        ssize_t n = read(fan, ev, sizeof ev);
                        if (n <= 0)
                                _exit(3);
                        for (struct fanotify_event_metadata *e = ev; FAN_EVENT_OK(e, n); e = FAN_EVENT_NEXT(e, n)) {
                                struct fanotify_response resp = { .fd = e->fd, .response = FAN_DENY };
                                (void)!write(fan, &resp, sizeof resp);
                                close(e->fd);
                        }
                }
        }
        close(ready[1]);
        char rd;
        ssize_t got = read(ready[0], &rd, 1);
        close(ready[0]);
        err = (struct mkm_err){};
        int q = got == 1 ? recipe_validate_for_build(r, &err) : 0;
        /* and the file named by Copy= itself (fs_open_beside()) */
        write_file("ten/f.recipe",
                   "[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\n[Hooks]\nCopy=files/etc/motd:/etc/m\n");
        _cleanup_free_ char *fpath = tpath("ten/f.recipe");
        assert_int_equal(chown(fpath, 4321, 4321), 0);
        _cleanup_(recipe_freep) struct recipe *f = NULL;
        struct mkm_err ferr = {};
        int fq = got == 1 ? recipe_load(NULL, fpath, &f, &ferr) : 0;
        if (fq >= 0 && got == 1)
                fq = recipe_validate_for_build(f, &ferr);
        (void)kill(denier, SIGKILL);
        (void)waitpid(denier, NULL, 0);
        assert_int_equal(got, 1);
        if (q != -MKM_E_RECIPE || !strstr(err.msg, "cannot open the source '") ||
            !strstr(err.msg, "files/etc/motd': Operation not permitted") || strstr(err.msg, "anyone can write"))
                fail_msg("an open denied with EPERM: %d, '%s'", q, err.msg);
        if (fq != -MKM_E_RECIPE || !strstr(ferr.msg, "files/etc/motd': Operation not permitted") ||
            strstr(ferr.msg, "anyone can write"))
                fail_msg("a Copy= file whose open is denied with EPERM: %d, '%s'", fq, ferr.msg);
}

/* A FUSE file system shows whatever owners its daemon reports: one a tenant mounted (allow_other,
 * user_allow_other on the host) can show root's ownership for the tenant's recipe, its directory
 * and its includes, and the fold would read as root. The kernel records who mounted it; the fold
 * takes that user for everything on it (fs_fuse_mounter(), by the mount ID of what was opened),
 * links beside a recipe included. Here bindfs, run as uid 4321 (with
 * the capabilities to mount directly, as a setuid fusermount would), shows 4321's files as
 * root's (its type named "fuse.user_id=0" and its mount point "m,user_id=0": the kernel's own
 * user_id= option must win); root's own FUSE mount keeps root. */
static char fuse_mnt[2][PATH_MAX];

static int teardown_fuse(void **state) {
        for (size_t i = 0; i < 2; i++)
                if (fuse_mnt[i][0]) {
                        (void)umount2(fuse_mnt[i], MNT_DETACH);
                        fuse_mnt[i][0] = 0;
                }
        return teardown_tmp(state);
}

static void test_fuse_owners(void **state) {
        (void)state;
        if (access("/dev/fuse", F_OK) != 0 || system("command -v bindfs >/dev/null") != 0) {
                print_message("skipping: needs /dev/fuse and bindfs (make deps installs it)\n");
                skip();
        }
        write_file("fuse/src/t.recipe", "[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\n");
        write_file("fuse/src/inc.recipe", "[Machine]\nName=x\n");
        write_file("fuse/closed/root.recipe", "[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\n");
        write_file("fuse/public.recipe", "[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\n");
        write_file("fuse/top.recipe",
                   "[Machine]\nInclude=m,user_id=0/inc.recipe\n[Bootstrap]\nDistribution=arch\nPackages=base\n");
        _cleanup_free_ char *src = tpath("fuse/src"), *mnt = tpath("fuse/m,user_id=0"), *rmnt = tpath("fuse/rmnt"),
                            *viafuse = tpath("fuse/m,user_id=0/t.recipe"), *viaroot = tpath("fuse/rmnt/t.recipe"),
                            *top = tpath("fuse/top.recipe");
        assert_int_equal(mkdir(mnt, 0755), 0);
        assert_int_equal(mkdir(rmnt, 0755), 0);
        _cleanup_free_ char *rootrecipe = tpath("fuse/closed/root.recipe"), *srclink = tpath("fuse/src/link.recipe"),
                            *vialink = tpath("fuse/m,user_id=0/link.recipe"), *closed = tpath("fuse/closed"),
                            *public = tpath("fuse/public.recipe"), *srcpub = tpath("fuse/src/pub.recipe"),
                            *viapub = tpath("fuse/m,user_id=0/pub.recipe");
        assert_int_equal(chmod(tmpdir, 0755), 0);       /* the tenant may look in, not in closed/ */
        assert_int_equal(chmod(closed, 0700), 0);
        assert_int_equal(symlink(rootrecipe, srclink), 0);
        assert_int_equal(symlink(public, srcpub), 0);
        write_file("fuse/secret.key", "ROOT-ONLY\n");
        write_file("fuse/copier.recipe", "[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\n"
                                         "[Hooks]\nCopy=m,user_id=0/app.conf:/etc/app.conf\n");
        _cleanup_free_ char *key = tpath("fuse/secret.key"), *applink = tpath("fuse/src/app.conf"),
                            *copier = tpath("fuse/copier.recipe");
        assert_int_equal(chmod(key, 0600), 0);
        assert_int_equal(symlink("../secret.key", applink), 0);
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "chown -hR 4321:4321 '%s'", src);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof cmd,
                 "setpriv --reuid 4321 --regid 4321 --clear-groups --inh-caps +sys_admin,+dac_override "
                 "--ambient-caps +sys_admin,+dac_override bindfs -o allow_other,subtype=user_id=0 --force-user=root "
                 "--force-group=root "
                 "'%s' '%s'",
                 src, mnt);
        assert_int_equal(system(cmd), 0);
        snprintf(fuse_mnt[0], sizeof fuse_mnt[0], "%s", mnt);
        snprintf(cmd, sizeof cmd, "bindfs -o allow_other --force-user=root --force-group=root '%s' '%s'", src, rmnt);
        assert_int_equal(system(cmd), 0);
        snprintf(fuse_mnt[1], sizeof fuse_mnt[1], "%s", rmnt);

        struct stat st;
        const struct {
                const char *path;
                uid_t mounter, owner;
        } on[] = { { viafuse, 4321, 4321 }, { viaroot, 0, 0 }, { "/", 0, 0 } };
        for (size_t i = 0; i < 3; i++) {
                _cleanup_close_ int fd = open(on[i].path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                assert_true(fd >= 0);
                assert_int_equal(fstat(fd, &st), 0);
                assert_int_equal(st.st_uid, 0); /* what each claims */
                assert_int_equal(fs_fuse_mounter(fd), on[i].mounter);
                assert_int_equal(fs_owner_of(fd, &st), on[i].owner);
        }

        struct mkm_err err = {};
        struct recipe *r = NULL;
        assert_int_equal(recipe_load(NULL, viafuse, &r, &err), 0);
        assert_int_equal(r->reader_uid, 4321);  /* the mounter's, not the claimed root */
        recipe_free(TAKE_PTR(r));
        /* the tenant's link on it (shown as root's) to root's recipe in a 0700 directory of root's:
         * looked up as the tenant, so not reached */
        assert_int_equal(recipe_load(NULL, vialink, &r, &err), -MKM_E_RECIPE);
        if (!strstr(err.msg, "link.recipe': Permission denied"))
                fail_msg("%s", err.msg);
        /* ... and to root's readable recipe: a link of the tenant's to another owner's file */
        assert_int_equal(recipe_load(NULL, viapub, &r, &err), -MKM_E_RECIPE);
        if (!strstr(err.msg, "pub.recipe': a symbolic link to a file of another owner than the link's"))
                fail_msg("%s", err.msg);
        assert_int_equal(recipe_load(NULL, top, &r, &err), 0);
        assert_int_equal(r->reader_uid, 4321);  /* root's recipe including a file on it */
        recipe_free(TAKE_PTR(r));
        assert_int_equal(recipe_load(NULL, viaroot, &r, &err), 0);
        assert_int_equal(r->reader_uid, 0);     /* root's own FUSE mount */
        recipe_free(TAKE_PTR(r));
        /* a stored recipe's files judged again (rebuild of an old state) */
        assert_int_equal(recipe_load(NULL, viaroot, &r, &err), 0);
        free(r->files[0]);
        assert_non_null(r->files[0] = strdup(viafuse));
        recipe_reader_from_files(r);
        assert_int_equal(r->reader_uid, 4321);
        recipe_free(TAKE_PTR(r));
        /* root's recipe copying through the tenant's link on it (shown as root's) to root's
         * key beside the recipe: a link that is the tenant's, refused (review of 47b1e79) */
        assert_int_equal(recipe_load(NULL, copier, &r, &err), 0);
        assert_int_equal(r->reader_uid, 0);
        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
        if (!strstr(err.msg, "app.conf' leads through a symbolic link that neither root nor the recipe's owner owns"))
                fail_msg("%s", err.msg);
        _cleanup_free_ char *fusedir = tpath("fuse"), *viaapp = tpath("fuse/m,user_id=0/app.conf");
        assert_int_equal(recipe_open_source(r, viaapp, fusedir, false, &st), -ENOLINK);
        recipe_free(TAKE_PTR(r));
        /* a mount no longer in the table (the tenant's lazy unmount while it was being walked):
         * whose it is cannot be told, so nobody's, never the claimed root's */
        _cleanup_close_ int held = open(viafuse, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        assert_true(held >= 0);
        assert_int_equal(umount2(mnt, MNT_DETACH), 0);
        fuse_mnt[0][0] = 0;
        assert_int_equal(fstat(held, &st), 0);
        assert_int_equal(fs_fuse_mounter(held), 65534);
        assert_int_equal(fs_owner_of(held, &st), 65534);
}

static void test_reader_fold(void **state) {
        (void)state;
        assert_int_equal(recipe_reader_fold(0, 0), 0);
        assert_int_equal(recipe_reader_fold(0, 4242), 4242);
        assert_int_equal(recipe_reader_fold(4242, 0), 4242);
        assert_int_equal(recipe_reader_fold(4242, 4242), 4242);
        assert_int_equal(recipe_reader_fold(4242, 4243), RECIPE_READER_NOBODY);
        struct stat f = { .st_uid = 0, .st_mode = S_IFREG | 0644 }, d = { .st_uid = 0, .st_mode = S_IFDIR | 0755 };
        assert_int_equal(recipe_file_reader(&f, &d), 0);
        f.st_mode = S_IFREG | 0664;
        assert_int_equal(recipe_file_reader(&f, &d), RECIPE_READER_NOBODY);
        f.st_mode = S_IFREG | 0646;
        assert_int_equal(recipe_file_reader(&f, &d), RECIPE_READER_NOBODY);
        f.st_mode = S_IFREG | 0644;
        d.st_mode = S_IFDIR | 02775;
        assert_int_equal(recipe_file_reader(&f, &d), RECIPE_READER_NOBODY);
        d.st_mode = S_IFDIR | 0757;
        assert_int_equal(recipe_file_reader(&f, &d), RECIPE_READER_NOBODY);
        d.st_mode = S_IFDIR | 0755;
        d.st_uid = 4242;
        assert_int_equal(recipe_file_reader(&f, &d), 4242);
        f.st_uid = 4242;
        f.st_mode = S_IFREG | 0664;     /* a tenant's own group-writable file (umask 002): theirs */
        d.st_mode = S_IFDIR | 0775;
        assert_int_equal(recipe_file_reader(&f, &d), 4242);
        f.st_uid = 4243;
        assert_int_equal(recipe_file_reader(&f, &d), RECIPE_READER_NOBODY);

        const char *body = "[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\n";
        write_file("team/r.recipe", body);
        _cleanup_free_ char *team = tpath("team"), *tr = tpath("team/r.recipe");
        struct mkm_err err = {};
        struct recipe *r = NULL;
        assert_int_equal(chmod(tr, 0664), 0);
        assert_int_equal(recipe_load(NULL, tr, &r, &err), 0);
        assert_int_equal(r->reader_uid, RECIPE_READER_NOBODY);
        recipe_free(TAKE_PTR(r));
        assert_int_equal(chmod(tr, 0644), 0);
        assert_int_equal(recipe_load(NULL, tr, &r, &err), 0);
        assert_int_equal(r->reader_uid, 0);
        recipe_free(TAKE_PTR(r));
        assert_int_equal(chown(team, 4242, 4242), 0);
        assert_int_equal(recipe_load(NULL, tr, &r, &err), 0);
        assert_int_equal(r->reader_uid, 4242);
        recipe_free(TAKE_PTR(r));
        assert_int_equal(chown(team, 0, 0), 0);
        write_file("two/a/a.recipe", "[Hooks]\nFuse=yes\n");
        write_file("two/b/b.recipe", "[Hooks]\nFuse=yes\n");
        write_file("two/top.recipe", "[Machine]\nName=x\nInclude=a/a.recipe b/b.recipe\n[Bootstrap]\nDistribution=arch\n"
                                     "Packages=base\n");
        _cleanup_free_ char *a = tpath("two/a/a.recipe"), *b = tpath("two/b/b.recipe"), *top = tpath("two/top.recipe");
        assert_int_equal(chown(a, 4242, 4242), 0);
        assert_int_equal(chown(b, 4243, 4243), 0);
        if (recipe_load(NULL, top, &r, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(r->reader_uid, RECIPE_READER_NOBODY);
        recipe_free(TAKE_PTR(r));
}

/* The path to the recipe and the walks beside it: a directory a tenant owns above root's recipe
 * makes the tenant its reader (they can rearrange what the path names), a root directory a group
 * can write (not sticky) makes it nobody, and another user's file moved into a tenant's directory
 * is opened as the reader, so it is refused before a line of it is read. Beside root's recipe, a
 * tenant's symbolic link is not followed, for Copy= or Include=: it could lead to root's files,
 * and the reader (root) could not tell. */
static void test_reader_walks(void **state) {
        (void)state;
        const char *body = "[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\n";
        write_file("up/sub/r.recipe", body);
        _cleanup_free_ char *up = tpath("up"), *r1 = tpath("up/sub/r.recipe");
        struct mkm_err err = {};
        struct recipe *r = NULL;
        assert_int_equal(recipe_load(NULL, r1, &r, &err), 0);
        assert_int_equal(r->reader_uid, 0);
        recipe_free(TAKE_PTR(r));
        assert_int_equal(chown(up, 4242, 4242), 0);
        assert_int_equal(chmod(tmpdir, 0755), 0);
        if (recipe_load(NULL, r1, &r, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(r->reader_uid, 4242);
        recipe_free(TAKE_PTR(r));
        assert_int_equal(chown(up, 0, 0), 0);
        assert_int_equal(chmod(up, 02775), 0);
        assert_int_equal(recipe_load(NULL, r1, &r, &err), 0);
        assert_int_equal(r->reader_uid, RECIPE_READER_NOBODY);
        recipe_free(TAKE_PTR(r));
        assert_int_equal(chmod(up, 01777), 0);        /* sticky: others cannot move root's entries */
        assert_int_equal(recipe_load(NULL, r1, &r, &err), 0);
        assert_int_equal(r->reader_uid, 0);
        recipe_free(TAKE_PTR(r));
        assert_int_equal(chmod(up, 0755), 0);

        /* another user's private file in a tenant's directory (moved there: one link) */
        write_file("ten3/bob.recipe", "BOBSECRET\n");
        _cleanup_free_ char *ten3 = tpath("ten3"), *bob = tpath("ten3/bob.recipe");
        assert_int_equal(chown(ten3, 65534, 65534), 0);
        assert_int_equal(chown(bob, 4243, 4243), 0);
        assert_int_equal(chmod(bob, 0600), 0);
        assert_int_equal(recipe_load(NULL, bob, &r, &err), -MKM_E_RECIPE);
        assert_null(r);
        assert_non_null(strstr(err.msg, "cannot read recipe"));
        assert_non_null(strstr(err.msg, "not readable by the recipe's reader"));
        assert_null(strstr(err.msg, "BOBSECRET"));

        /* a tenant's link on the path, in root's directory, to root's directory of a private file */
        write_file("priv/p.recipe", "PRIVSECRET\n");
        _cleanup_free_ char *lk = tpath("lk"), *lkd = tpath("lk/d"), *privp = tpath("priv/p.recipe"),
                            *via = tpath("lk/d/p.recipe");
        assert_int_equal(chmod(privp, 0600), 0);
        assert_int_equal(mkdir(lk, 0755), 0);
        assert_int_equal(symlink("../priv", lkd), 0);
        assert_true(recipe_load(NULL, via, &r, &err) < 0);       /* root's own link: read (a bad line) */
        assert_non_null(strstr(err.msg, "PRIVSECRET"));
        assert_int_equal(lchown(lkd, 4242, 4242), 0);
        assert_int_equal(recipe_load(NULL, via, &r, &err), -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "not readable by the recipe's reader"));
        assert_null(strstr(err.msg, "PRIVSECRET"));

        /* a tenant's link beside root's recipe */
        write_file("app/prodkey", "PRODSECRET\n");
        write_file("app/prod.recipe", "[Hooks]\nFuse=yes\n");
        _cleanup_free_ char *t = tpath("app/t"), *motd = tpath("app/t/motd"), *frag = tpath("app/t/frag.recipe"),
                            *top = tpath("app/r.recipe");
        assert_int_equal(mkdir(t, 0755), 0);
        assert_int_equal(symlink("../prodkey", motd), 0);
        assert_int_equal(symlink("../prod.recipe", frag), 0);
        assert_int_equal(lchown(motd, 4242, 4242), 0);
        assert_int_equal(lchown(frag, 4242, 4242), 0);
        assert_int_equal(chown(t, 4242, 4242), 0);
        char text[1024];
        snprintf(text, sizeof text, "%s[Hooks]\nCopy=t/motd:/etc/motd\n", body);
        write_file("app/r.recipe", text);
        assert_int_equal(recipe_load(NULL, top, &r, &err), 0);
        assert_int_equal(r->reader_uid, 0);
        assert_int_equal(recipe_validate_for_build(r, &err), -MKM_E_RECIPE);
        if (!strstr(err.msg, "t/motd' leads through a symbolic link that neither root nor the recipe's owner owns"))
                fail_msg("got %s", err.msg);
        struct stat st;
        assert_int_equal(recipe_open_source(r, motd, r->copies[0].from_dir, true, &st), -ENOLINK);
        recipe_free(TAKE_PTR(r));
        snprintf(text, sizeof text, "[Machine]\nInclude=t/frag.recipe\n%s", body);
        write_file("app/r.recipe", text);
        assert_int_equal(recipe_load(NULL, top, &r, &err), -MKM_E_RECIPE);
        if (!strstr(err.msg, "frag.recipe' leads through a symbolic link that neither root nor the recipe's owner owns"))
                fail_msg("got %s", err.msg);
        /* root's own link there is followed */
        assert_int_equal(lchown(motd, 0, 0), 0);
        snprintf(text, sizeof text, "%s[Hooks]\nCopy=t/motd:/etc/motd\n", body);
        write_file("app/r.recipe", text);
        assert_int_equal(recipe_load(NULL, top, &r, &err), 0);
        if (recipe_validate_for_build(r, &err) < 0)
                fail_msg("%s", err.msg);
        recipe_free(TAKE_PTR(r));
}

/* The walk to the recipe looks each name up as the reader folded so far: through a tenant's link
 * into a directory they cannot search, a file that is there and one that is not give the same
 * answer. Root's file in a directory others can write (a hard link someone made there) is
 * nobody's; a relative path counts the directories above the current one; a trailing "/" after a
 * file, an empty path and a removed current directory are the errors the kernel would give. */
static void test_top_walk(void **state) {
        (void)state;
        assert_int_equal(chmod(tmpdir, 0755), 0);
        write_file("secret/s.recipe", "SECRETLINE\n");
        write_file("tw/m.recipe", "[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\n");
        _cleanup_free_ char *sec = tpath("secret"), *tw = tpath("tw"), *l1 = tpath("tw/l1.recipe"),
                            *l2 = tpath("tw/l2.recipe"), *s1 = tpath("secret/s.recipe"), *s2 = tpath("secret/nope.recipe");
        assert_int_equal(chmod(sec, 0700), 0);
        assert_int_equal(symlink(s1, l1), 0);
        assert_int_equal(symlink(s2, l2), 0);
        assert_int_equal(lchown(l1, 4242, 4242), 0);
        assert_int_equal(lchown(l2, 4242, 4242), 0);
        assert_int_equal(chown(tw, 4242, 4242), 0);
        struct mkm_err err = {};
        struct recipe *r = NULL;
        char m1[4096], m2[4096];
        assert_int_equal(recipe_load(NULL, l1, &r, &err), -MKM_E_RECIPE);
        snprintf(m1, sizeof m1, "%s", strstr(err.msg, "': ") ? strstr(err.msg, "': ") : err.msg);
        assert_int_equal(recipe_load(NULL, l2, &r, &err), -MKM_E_RECIPE);
        snprintf(m2, sizeof m2, "%s", strstr(err.msg, "': ") ? strstr(err.msg, "': ") : err.msg);
        assert_string_equal(m1, "': Permission denied");
        assert_string_equal(m2, m1);
        assert_null(r);

        /* root's file linked into a sticky directory anyone can write */
        _cleanup_free_ char *st = tpath("sticky"), *hl = tpath("sticky/x.recipe");
        assert_int_equal(mkdir(st, 01777), 0);
        assert_int_equal(chmod(st, 01777), 0);
        assert_int_equal(chmod(s1, 0600), 0);
        assert_int_equal(link(s1, hl), 0);
        assert_int_equal(recipe_load(NULL, hl, &r, &err), -MKM_E_RECIPE);
        assert_null(strstr(err.msg, "SECRETLINE"));
        assert_non_null(strstr(err.msg, "not readable by the recipe's reader"));

        /* relative: from inside a tenant's directory under a root directory anyone can write */
        _cleanup_free_ char *ww = tpath("ww"), *a = tpath("ww/A"), *x = tpath("ww/A/x.recipe");
        write_file("ww/A/x.recipe", "[Machine]\nName=x\n[Bootstrap]\nDistribution=arch\nPackages=base\n");
        assert_int_equal(chmod(ww, 0777), 0);
        assert_int_equal(chown(a, 4242, 4242), 0);
        assert_int_equal(chown(x, 4242, 4242), 0);
        assert_int_equal(recipe_load(NULL, x, &r, &err), 0);
        assert_int_equal(r->reader_uid, RECIPE_READER_NOBODY);
        recipe_free(TAKE_PTR(r));
        char old[4096];
        assert_non_null(getcwd(old, sizeof old));
        assert_int_equal(chdir(a), 0);
        int q = recipe_load(NULL, "x.recipe", &r, &err);
        if (q == 0) {
                assert_int_equal(r->reader_uid, RECIPE_READER_NOBODY);
                recipe_free(TAKE_PTR(r));
        }
        /* a trailing "/" after a file, an empty path */
        int q2 = recipe_load(NULL, "x.recipe/", &r, &err);
        char msg2[4096];
        snprintf(msg2, sizeof msg2, "%s", err.msg);
        int q3 = recipe_load(NULL, "", &r, &err);
        char msg3[4096];
        snprintf(msg3, sizeof msg3, "%s", err.msg);
        /* a removed current directory */
        _cleanup_free_ char *gone = tpath("gone");
        assert_int_equal(mkdir(gone, 0755), 0);
        assert_int_equal(chdir(gone), 0);
        assert_int_equal(rmdir(gone), 0);
        int q4 = recipe_load(NULL, "../tw/m.recipe", &r, &err);
        assert_int_equal(chdir(old), 0);
        assert_int_equal(q, 0);
        assert_int_equal(q2, -MKM_E_RECIPE);
        assert_non_null(strstr(msg2, "Not a directory"));
        assert_int_equal(q3, -MKM_E_RECIPE);
        assert_non_null(strstr(msg3, "No such file or directory"));
        assert_int_equal(q4, -MKM_E_RECIPE);
        assert_non_null(strstr(err.msg, "No such file or directory"));
}

static void test_include_errors(void **state) {
        (void)state;
        struct mkm_err err = {};
        struct recipe *r = NULL;
        _cleanup_free_ char *expect = NULL;

        /* a -> b -> a */
        write_file("cyc/a.recipe", "[Machine]\nName=a\nInclude=b.recipe\n[Bootstrap]\nDistribution=arch\n");
        write_file("cyc/b.recipe", "# b\n[Machine]\nInclude=a.recipe\n");
        _cleanup_free_ char *a = tpath("cyc/a.recipe");
        assert_int_equal(recipe_load(NULL, a, &r, &err), -MKM_E_RECIPE);
        assert_true(asprintf(&expect, "%1$s/cyc/b.recipe:3: [Machine] Include=: include cycle: %1$s/cyc/a.recipe -> "
                                      "%1$s/cyc/b.recipe -> %1$s/cyc/a.recipe", tmpdir) > 0);
        assert_string_equal(err.msg, expect);
        assert_null(r);
        free(TAKE_PTR(expect));

        /* A cycle that does not pass through the top file: a -> b -> c -> b. It is a cycle (named
         * from where it closes), not "nested too deep". */
        write_file("cyc2/a.recipe", "[Machine]\nName=a\nInclude=b.recipe\n[Bootstrap]\nDistribution=arch\n");
        write_file("cyc2/b.recipe", "[Machine]\nInclude=c.recipe\n");
        write_file("cyc2/c.recipe", "# c\n\n[Machine]\nInclude=b.recipe\n");
        _cleanup_free_ char *a2 = tpath("cyc2/a.recipe");
        assert_int_equal(recipe_load(NULL, a2, &r, &err), -MKM_E_RECIPE);
        assert_true(asprintf(&expect, "%1$s/cyc2/c.recipe:4: [Machine] Include=: include cycle: %1$s/cyc2/b.recipe -> "
                                      "%1$s/cyc2/c.recipe -> %1$s/cyc2/b.recipe", tmpdir) > 0);
        assert_string_equal(err.msg, expect);
        assert_null(r);
        free(TAKE_PTR(expect));

        /* A file including itself, named through a different path. */
        write_file("cyc/self.recipe", "[Machine]\nInclude=../cyc/./self.recipe\nName=s\n[Bootstrap]\nDistribution=arch\n");
        _cleanup_free_ char *self = tpath("cyc/self.recipe");
        assert_int_equal(recipe_load(NULL, self, &r, &err), -MKM_E_RECIPE);
        assert_true(asprintf(&expect, "%1$s/cyc/self.recipe:2: [Machine] Include=: include cycle: %1$s/cyc/self.recipe -> "
                                      "%1$s/cyc/self.recipe", tmpdir) > 0);
        assert_string_equal(err.msg, expect);
        free(TAKE_PTR(expect));

        /* A missing include. */
        write_file("miss/top.recipe", "[Machine]\nName=m\n\nInclude=nope.recipe\n[Bootstrap]\nDistribution=arch\n");
        _cleanup_free_ char *miss = tpath("miss/top.recipe");
        assert_int_equal(recipe_load(NULL, miss, &r, &err), -MKM_E_RECIPE);
        assert_true(asprintf(&expect, "%1$s/miss/top.recipe:4: [Machine] Include=: cannot read '%1$s/miss/nope.recipe': "
                                      "No such file or directory", tmpdir) > 0);
        assert_string_equal(err.msg, expect);
        free(TAKE_PTR(expect));

        /* An error inside an included file names that file. */
        write_file("inner/top.recipe", "[Machine]\nName=m\nInclude=sub/bad.recipe\n[Bootstrap]\nDistribution=arch\n");
        write_file("inner/sub/bad.recipe", "[Hooks]\nFuse=perhaps\n");
        _cleanup_free_ char *inner = tpath("inner/top.recipe");
        assert_int_equal(recipe_load(NULL, inner, &r, &err), -MKM_E_RECIPE);
        assert_true(asprintf(&expect, "%s/inner/sub/bad.recipe:2: [Hooks] Fuse=: expected a boolean (yes/no), got 'perhaps'",
                             tmpdir) > 0);
        assert_string_equal(err.msg, expect);
        free(TAKE_PTR(expect));

        /* Depth: d0 -> d1 -> ... -> d17 is one too deep. */
        for (int i = 0; i <= RECIPE_INCLUDE_DEPTH_MAX + 1; i++) {
                char name[64], text[128];
                (void)snprintf(name, sizeof name, "deep/d%d.recipe", i);
                (void)snprintf(text, sizeof text, "[Machine]\nInclude=d%d.recipe\n", i + 1);
                write_file(name, i == RECIPE_INCLUDE_DEPTH_MAX + 1 ? "[Machine]\nName=deep\n" : text);
                if (i == 0)
                        write_file(name, "[Machine]\nInclude=d1.recipe\nName=deep\n[Bootstrap]\nDistribution=arch\n");
        }
        _cleanup_free_ char *d0 = tpath("deep/d0.recipe");
        assert_int_equal(recipe_load(NULL, d0, &r, &err), -MKM_E_RECIPE);
        assert_true(asprintf(&expect, "%s/deep/d15.recipe:2: [Machine] Include=: includes nested more than 16 deep", tmpdir) > 0);
        assert_string_equal(err.msg, expect);
        free(TAKE_PTR(expect));

        /* The top file missing. */
        _cleanup_free_ char *none = tpath("none.recipe");
        assert_int_equal(recipe_load(NULL, none, &r, &err), -MKM_E_RECIPE);
        assert_true(asprintf(&expect, "cannot read recipe '%s/none.recipe': No such file or directory", tmpdir) > 0);
        assert_string_equal(err.msg, expect);
        free(TAKE_PTR(expect));

        /* A directory given as the recipe. */
        assert_int_equal(recipe_load(NULL, tmpdir, &r, &err), -MKM_E_RECIPE);
        assert_true(asprintf(&expect, "cannot read recipe '%s': Is a directory", tmpdir) > 0);
        assert_string_equal(err.msg, expect);
}

/* ---- every error at once ------------------------------------------------------------------ */

/* One bad value does not hide the next: each is reported with its file and line, in file order
 * (an included file's where its Include= is), then what only the whole recipe shows. */
static void test_multi_errors(void **state) {
        (void)state;
        write_file("multi/top.recipe",
                   "[Machine]\n"                        /* 1 */
                   "Name=-bad\n"                        /* 2: bad name (no "missing" for it later) */
                   "Include=sub/inc.recipe\n"           /* 3 */
                   "[Bootstrap]\n"                      /* 4 */
                   "Distribution=arch\n"                /* 5 */
                   "Pakages=base\n"                     /* 6: unknown key */
                   "Snapshot=yesterday\n"               /* 7 */
                   "Packages=base -rf ok;no\n"          /* 8: two bad items in one assignment */
                   "Suite=bookworm\n"                   /* 9: only for debian (cross-key, at the end) */
                   "[Servce]\n"                         /* 10: unknown section ... */
                   "Anything=1\n"                       /* 11: ... whose keys are not reported */
                   "[Hooks]\n"                          /* 12 */
                   "Fuse=maybe\n"                       /* 13 */
                   "RootAuthorizedKeys=nokey.pub\n");   /* 14: missing file (validation) */
        write_file("multi/sub/inc.recipe",
                   "[Hooks]\n"
                   "RunNetwork=2\n"                     /* inc:2 */
                   "[Exec\n"                            /* inc:3: a bad line is skipped ... */
                   "Boot=yes\n"                         /* (quietly: its section is unknown) */
                   "[Hooks]\n"
                   "not an assignment\n"               /* inc:6 ... the rest is still read */
                   "Fuse=perhaps\n");                   /* inc:7 */
        _cleanup_free_ char *top = tpath("multi/top.recipe");
        _cleanup_free_ char *inc = tpath("multi/sub/inc.recipe");
        struct mkm_err err = {};
        struct recipe *r = NULL;
        struct recipe_errors errs = {};
        assert_int_equal(recipe_check(NULL, top, &r, &errs, &err), -MKM_E_RECIPE);
        assert_null(r);
        static const struct {
                bool inc;
                unsigned line;
                const char *text;
        } want[] = {
                { false, 2, "[Machine] Name=: expected a machine name" },
                { true, 2, "[Hooks] RunNetwork=: expected a boolean (yes/no), got '2'" },
                { true, 3, "unterminated section header '[Exec'" },
                { true, 6, "expected 'Key=Value', got 'not an assignment'" },
                { true, 7, "[Hooks] Fuse=: expected a boolean (yes/no), got 'perhaps'" },
                { false, 6, "[Bootstrap] Pakages=: unknown key; did you mean 'Packages='?" },
                { false, 7, "[Bootstrap] Snapshot=: expected a date" },
                { false, 8, "[Bootstrap] Packages=: expected a package name, got '-rf'" },
                { false, 8, "[Bootstrap] Packages=: expected a package name, got 'ok;no'" },
                { false, 10, "[Servce]: unknown section" },
                { false, 13, "[Hooks] Fuse=: expected a boolean (yes/no), got 'maybe'" },
                { false, 9, "[Bootstrap] Suite=: only for Distribution=debian" },
                { false, 14, "[Hooks] RootAuthorizedKeys=: cannot read '" },
        };
        for (size_t i = 0; i < errs.n; i++)
                print_message("error %zu: %s:%u: %s\n", i, errs.e[i].file, errs.e[i].line, errs.e[i].message);
        assert_int_equal(errs.n, ELEMENTSOF(want));
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                char prefix[1024];
                (void)snprintf(prefix, sizeof prefix, "%s:%u: ", want[i].inc ? inc : top, want[i].line);
                if (strncmp(errs.e[i].message, prefix, strlen(prefix)) != 0 || !strstr(errs.e[i].message, want[i].text) ||
                    errs.e[i].line != want[i].line || strcmp(errs.e[i].file, want[i].inc ? inc : top) != 0)
                        fail_msg("error %zu: '%s' (%s:%u)\n  expected '%s...%s'", i, errs.e[i].message, errs.e[i].file,
                                 errs.e[i].line, prefix, want[i].text);
        }
        assert_int_equal(errs.e[2].code, -MKM_E_PARSE);
        assert_int_equal(errs.e[3].code, -MKM_E_PARSE);
        assert_int_equal(errs.e[4].code, -MKM_E_RECIPE);
        /* reterr has the same list, one a line. */
        size_t lines = 1;
        for (const char *c = err.msg; *c; c++)
                lines += *c == '\n';
        assert_int_equal(lines, ELEMENTSOF(want));
        assert_ptr_equal(strstr(err.msg, errs.e[0].message), err.msg);
        recipe_errors_done(&errs);

        /* recipe_load: the same errors but for the build's own checks. */
        assert_int_equal(recipe_load(NULL, top, &r, &err), -MKM_E_RECIPE);
        assert_null(strstr(err.msg, "RootAuthorizedKeys"));
        assert_non_null(strstr(err.msg, "Suite="));

        /* Missing keys are reported together; a bad value is not also "missing". */
        const char *text = "[Machine]\n[Bootstrap]\nDistribution=gentoo\n";
        assert_int_equal(recipe_load_buffer(text, strlen(text), "t.recipe", &r, &err), -MKM_E_RECIPE);
        assert_string_equal(err.msg, "t.recipe:3: [Bootstrap] Distribution=: expected 'arch' or 'debian', got 'gentoo'\n"
                                     "t.recipe: [Machine] Name=: missing; every recipe needs a machine name");

        /* A syntax error does not hide what follows; "missing" is not said after one (the key
         * may be on the bad line). */
        text = "[Machine]\nName x\n[Hooks]\nFuse=maybe\n";
        assert_int_equal(recipe_load_buffer(text, strlen(text), "t.recipe", &r, &err), -MKM_E_PARSE);
        assert_string_equal(err.msg, "t.recipe:2: expected 'Key=Value', got 'Name x'\n"
                                     "t.recipe:4: [Hooks] Fuse=: expected a boolean (yes/no), got 'maybe'");

        /* A clean recipe: no errors, a recipe. */
        write_file("multi/ok.recipe", "[Machine]\nName=ok\n[Bootstrap]\nDistribution=arch\nPackages=base\n");
        _cleanup_free_ char *okp = tpath("multi/ok.recipe");
        assert_int_equal(recipe_check(NULL, okp, &r, &errs, &err), 0);
        assert_non_null(r);
        assert_int_equal(errs.n, 0);
        r = recipe_free(r);
}

/* ---- the reference documents every key ---------------------------------------------------- */

static void test_doc_coverage(void **state) {
        (void)state;
        const char *top = getenv("TOP");
        _cleanup_free_ char *doc = NULL;
        _cleanup_free_ char *path = fs_path_join(top ? top : ".", "docs/mkmachine.recipe.5.md");
        size_t len = 0;
        if (fs_read_file_follow_at(AT_FDCWD, path, 1 << 20, &doc, &len) < 0)
                fail_msg("cannot read %s (run from the repository top)", path);
        size_t n = 0;
        const struct recipe_key *k = recipe_known_keys(&n);
        assert_true(n > 60);
        unsigned missing = 0;
        for (size_t i = 0; i < n; i++) {
                char needle[128];
                (void)snprintf(needle, sizeof needle, "\n`%s=`", k[i].key);
                if (!strstr(doc, needle)) {
                        print_error("[%s] %s= is not documented in %s (a line starting with `%s=`)\n", k[i].section,
                                    k[i].key, path, k[i].key);
                        missing++;
                }
        }
        assert_int_equal(missing, 0);
}

static void test_edit_distance(void **state) {
        (void)state;
        assert_int_equal(recipe_edit_distance("Packages", "Packages"), 0);
        assert_int_equal(recipe_edit_distance("packages", "Packages"), 0);
        assert_int_equal(recipe_edit_distance("Pakages", "Packages"), 1);
        assert_int_equal(recipe_edit_distance("Pcakages", "Packages"), 1);      /* transposition */
        assert_int_equal(recipe_edit_distance("", "abc"), 3);
        assert_int_equal(recipe_edit_distance("kitten", "sitting"), 3);
}

/* The canonical text reads back, and formats again to itself (so every list, whose items hold no
 * blank, is what it was); returns count() of the recipe read back. */
static size_t assert_round_trip(const char *text, size_t (*count)(const struct recipe *)) {
        struct mkm_err err = {};
        struct recipe *back = NULL;
        _cleanup_free_ char *again = NULL;
        assert_int_equal(recipe_load_buffer(text, strlen(text), "t.recipe", &back, &err), 0);
        assert_int_equal(recipe_format(back, &again), 0);
        assert_string_equal(text, again);
        size_t n = count(back);
        recipe_free(back);
        return n;
}

static size_t n_packages(const struct recipe *r) {
        return strv_length(r->packages);
}

static size_t n_mirrors(const struct recipe *r) {
        return strv_length(r->mirrors);
}

/* rebuild reads the canonical form back: long lists are wrapped (and mean the same), and a
 * recipe whose canonical form the INI layer would refuse is refused when it is read. */
static void test_canonical_limits(void **state) {
        (void)state;
        static const char head[] = "[Machine]\nName=x\n[Bootstrap]\nDistribution=debian\nArchitecture=amd64\n";
        /* 340 packages of 200 bytes: 68 KB of one list, more than one INI line may hold. */
        size_t cap = sizeof head + 340 * 220 + 64;
        char *buf = malloc(cap), *p = buf;
        assert_non_null(buf);
        p += sprintf(p, "%s", head);
        for (int i = 0; i < 340; i++) {
                p += sprintf(p, "Packages=p%03d", i);
                memset(p, 'x', 196);
                p += 196;
                *p++ = '\n';
        }
        *p = 0;
        struct mkm_err err = {};
        struct recipe *r = NULL;
        assert_int_equal(recipe_load_buffer(buf, strlen(buf), "t.recipe", &r, &err), 0);
        _cleanup_free_ char *text = NULL;
        assert_int_equal(recipe_format(r, &text), 0);
        size_t lines = 0;
        for (const char *l = text; *l;) {
                size_t n = strcspn(l, "\n");
                assert_true(n <= RECIPE_FORMAT_WIDTH);
                lines += strncmp(l, "Packages=", 9) == 0;
                l += n + (l[n] == '\n');
        }
        assert_true(lines >= 17);       /* 68 KB in lines of at most 4000 bytes */
        assert_int_equal(assert_round_trip(text, n_packages), 340);
        recipe_free(r);
        free(buf);

        /* A backslash that ends a value only once the path is normalised ("kr\\/" -> ".../kr\\"),
         * which the check of the raw value cannot see: refused from the canonical form. */
        {
                static const char t[] = "[Machine]\nName=x\n[Bootstrap]\nDistribution=debian\nKeyring=kr\\/\n"
                                        "Architecture=amd64\n";
                r = NULL;
                assert_int_equal(recipe_load_buffer(t, strlen(t), "/d/t.recipe", &r, &err), -MKM_E_RECIPE);
                assert_null(r);
                if (!strstr(err.msg, "[Bootstrap] Keyring=: a value ends in a backslash once made absolute"))
                        fail_msg("unexpected: %s", err.msg);
        }
        /* Wrapped lists never end a line after an item that ends in a backslash (it would join
         * the next line): four Mirror= URLs of about 1020 bytes on one line, the third ending in
         * one; the fourth would be wrapped onto a line of its own just after it. */
        {
                char *t = malloc(8192), *q = t;
                assert_non_null(t);
                q += sprintf(q, "[Machine]\nName=x\n[Bootstrap]\nDistribution=debian\nArchitecture=amd64\nMirror=");
                for (int i = 0; i < 4; i++) {
                        q += sprintf(q, "%shttp://m%d.invalid/", i ? " " : "", i);
                        memset(q, 'u', 1000);
                        q += 1000;
                        if (i == 2)
                                *q++ = '\\';
                }
                q += sprintf(q, "\n");
                r = NULL;
                assert_int_equal(recipe_load_buffer(t, strlen(t), "t.recipe", &r, &err), 0);
                _cleanup_free_ char *c1 = NULL;
                assert_int_equal(recipe_format(r, &c1), 0);
                for (const char *l = c1; *l;) {
                        size_t n = strcspn(l, "\n");
                        if (n > 0 && l[n - 1] == '\\')
                                fail_msg("a canonical line ends in a backslash: ...%.40s", l + n - 40);
                        l += n + (l[n] == '\n');
                }
                assert_int_equal(assert_round_trip(c1, n_mirrors), 4);
                recipe_free(r);
                free(t);
        }
        /* Copy= is wrapped as the other lists: 100 lines of 1000-byte items, 100 KB in all. */
        {
                char *t = malloc(200000), *q = t;
                assert_non_null(t);
                q += sprintf(q, "[Machine]\nName=x\n[Bootstrap]\nDistribution=debian\nArchitecture=amd64\n[Hooks]\n");
                for (int i = 0; i < 100; i++) {
                        q += sprintf(q, "Copy=/s/%03d", i);
                        memset(q, 'c', 990);
                        q += 990;
                        q += sprintf(q, ":/d%03d:0644:root\n", i);
                }
                r = NULL;
                if (recipe_load_buffer(t, strlen(t), "t.recipe", &r, &err) != 0)
                        fail_msg("refused: %s", err.msg);
                _cleanup_free_ char *c1 = NULL;
                assert_int_equal(recipe_format(r, &c1), 0);
                struct recipe *back = NULL;
                assert_int_equal(recipe_load_buffer(c1, strlen(c1), "t.recipe", &back, &err), 0);
                assert_int_equal(back->n_copies, 100);
                assert_string_equal(back->copies[99].dest, "/d099");
                assert_true(back->copies[99].has_mode);
                assert_string_equal(back->copies[99].owner, "root");
                recipe_free(back);
                recipe_free(r);
                free(t);
        }
        /* The canonical form's size counts too (rebuild reads it as a file of at most 4 MiB):
         * 25000 key files named "a" in a directory whose path is 200 bytes long. */
        {
                char *t = malloc(60000), *q = t;
                assert_non_null(t);
                q += sprintf(q, "[Machine]\nName=x\n[Bootstrap]\nDistribution=debian\nArchitecture=amd64\n[Hooks]\n"
                                "RootAuthorizedKeys=");
                for (int i = 0; i < 25000; i++)
                        q += sprintf(q, "%sa", i ? " " : "");
                q += sprintf(q, "\n");
                char fn[300] = "/";
                memset(fn + 1, 'd', 200);
                strcpy(fn + 201, "/t.recipe");
                r = NULL;
                assert_int_equal(recipe_load_buffer(t, strlen(t), fn, &r, &err), -MKM_E_RECIPE);
                if (!strstr(err.msg, "too large: its canonical form, which rebuild reads, would have 5"))
                        fail_msg("unexpected: %s", err.msg);
                free(t);
        }
        /* One item alone can outgrow a line once made absolute: a key file name of 65400 bytes
         * (its line is within the limit) below a directory of 200. */
        {
                char *t = malloc(70000), *q = t;
                assert_non_null(t);
                q += sprintf(q, "[Machine]\nName=x\n[Bootstrap]\nDistribution=debian\nArchitecture=amd64\n[Hooks]\n"
                                "RootAuthorizedKeys=");
                memset(q, 'k', 65400);
                q += 65400;
                q += sprintf(q, "\n");
                char fn[300] = "/";
                memset(fn + 1, 'd', 200);
                strcpy(fn + 201, "/t.recipe");
                r = NULL;
                assert_int_equal(recipe_load_buffer(t, strlen(t), fn, &r, &err), -MKM_E_RECIPE);
                if (!strstr(err.msg, "too large: its canonical form, which rebuild reads, would have a line of 656"))
                        fail_msg("unexpected: %s", err.msg);
                free(t);
        }
        /* 9995 nspawn settings: the INI layer reads them (10000 entries), but the canonical form
         * adds the defaults and would not be read back. */
        static const char head2[] = "[Machine]\nName=x\n[Bootstrap]\nDistribution=debian\n[Exec]\n";
        buf = malloc(sizeof head2 + 9995 * 9);
        assert_non_null(buf);
        p = buf + sprintf(buf, "%s", head2);
        for (int i = 0; i < 9995; i++)
                p += sprintf(p, "Boot=yes\n");
        r = NULL;
        assert_int_equal(recipe_load_buffer(buf, strlen(buf), "t.recipe", &r, &err), -MKM_E_RECIPE);
        assert_null(r);
        if (!strstr(err.msg, "t.recipe: too large: its canonical form, which rebuild reads, would have 1000"))
                fail_msg("unexpected: %s", err.msg);
        free(buf);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_full),
                cmocka_unit_test(test_merge_rules),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_bad),
                cmocka_unit_test(test_validate_for_build),
                cmocka_unit_test_setup_teardown(test_sources_beside, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_keyring_beside, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_include_not_echoed, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_top_recipe_opened, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_recipe_reader, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_copy_tree_judged, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_fuse_owners, setup_tmp, teardown_fuse),
                cmocka_unit_test_setup_teardown(test_reader_fold, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_reader_walks, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_top_walk, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_include, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_include_errors, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_multi_errors, setup_tmp, teardown_tmp),
                cmocka_unit_test(test_doc_coverage),
                cmocka_unit_test(test_edit_distance),
                cmocka_unit_test(test_canonical_limits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
