/* SPDX-License-Identifier: MIT */
/* Enabling systemd units offline in a machine tree, exactly as `systemctl --root=R enable` does:
 * the unit's [Install] section (WantedBy=, RequiredBy=, Alias=, Also=, DefaultInstance=), template
 * instances (foo@bar.service from foo@.service), unit search paths of the tree
 * (etc/systemd/system, run/systemd/system, usr/lib/systemd/system, lib/systemd/system ...),
 * symlinks created under etc/systemd/system/ with the same targets systemctl writes. Every path
 * is resolved inside the tree (chase_in_root), never on the host.
 *
 * Matched against systemd 252's systemctl (tests/unit/test-units.c runs it as an oracle): search
 * order, alias/linked/masked unit files, drop-ins (NAME.d/ and TEMPLATE.d/ *.conf), conf-parser
 * syntax, specifiers (install_name_printf: %i %j %n %N %p %u %U %g %G %m %a,
 * %A %B %M %o %w %W from the tree's os-release, %%), quoting, empty assignments resetting lists,
 * symlink targets (absolute, the unit file's path inside the tree), forced .wants/.requires links,
 * unforced alias links, equivalent existing links, and which failures fail the call.
 * Deliberate differences:
 *  - /usr/lib/systemd/system is searched before /lib/systemd/system (upstream order), except in
 *    a tree whose systemd package ships its units under /lib/systemd/system (dpkg's file list
 *    says so): that is Debian 12's split-usr build of 252, which searches /lib first and so
 *    writes /lib/... targets on merged trees; then so do we.
 *  - %b %H %l %v (boot ID, host name, kernel) are refused: they would tie the tree to the host.
 *  - No SysV init script fallback (systemd-sysv-install), no `systemctl link` of paths. */
#pragma once

struct mkm_ctx;
struct mkm_err;

/* Enable each unit name in units (NULL-terminated); a bare name gets ".service" as with systemctl.
 * Every named unit is first found and loaded; if one is missing, masked, generated or unparsable
 * nothing is created. A unit that does not exist in the tree is
 * -MKM_E_RECIPE "unit 'x.service' not found in the machine (looked in ...)"; a masked one
 * -MKM_E_RECIPE "unit file /etc/systemd/system/x.service is masked, cannot enable 'x.service'"; a
 * conflicting existing file or alias link -MKM_E_CONFLICT; bad [Install] content -MKM_E_PARSE.
 * Links are then created in systemd's order; failures there fail the call exactly when systemctl's
 * exit status would (others become "ignoring" warnings). A unit without an [Install] section is
 * enabled as systemctl does it (nothing to do, a debug message). Enabling twice is a no-op. */
int units_enable(struct mkm_ctx *ctx, int rootfd, char *const *units, struct mkm_err *reterr);

/* 0 if the unit file (or, for an instance, its template) exists in the tree's unit search path,
 * masked ones included; -ENOENT if not; -EINVAL for an invalid unit name; another negative code
 * when the search met what it cannot judge, as systemd's unit_file_exists() does: an alias
 * symlink to a unit of another name type -MKM_E_PARSE, a symlink loop -ELOOP, a unit "file" that
 * is a directory -EISDIR or a FIFO or socket -ENOTTY. Callers that ask "is it there" test == 0. */
int units_exists(int rootfd, const char *unit);
