/* SPDX-License-Identifier: MIT */
/* What the host offers the machines mkmachine builds: its systemd version (which decides what the
 * .nspawn file and the drop-ins must say), its cgroup hierarchy, its loaded kernel modules and the
 * file system under /var/lib/machines. Every path is under ctx->host_root (the host is trusted;
 * --host-root lets tests point at a fake one). */
#pragma once

#include <stdbool.h>

struct mkm_ctx;

/* Version thresholds (systemd/systemd on GitHub; a release contains what was merged before it):
 *
 * - FUSE: systemd-nspawn creates /dev/fuse in the container and allows it in its device cgroup
 *   by itself since v257: PR #34067 "nspawn: enable FUSE in containers" (merged for v257, opened
 *   2024-08-21 after v256 shipped), made unconditional by PR #36407 (v258). Older versions need
 *   Bind=/dev/fuse plus DeviceAllow=/dev/fuse rwm (issues #2178, #7669, #17607).
 * - PrivateUsersOwnership= replaced the boolean PrivateUsersChown= in v249, with idmapped mounts
 *   (PR #19438 "nspawn: add support for kernel 5.12 ID mapping mounts"). Newer versions still
 *   read PrivateUsersChown= (src/nspawn/nspawn-gperf.gperf, v257), so it is the safe spelling
 *   when the version is unknown.
 * - SYSTEMD_NSPAWN_USE_CGNS= exists since v232 (PR #3809). It only matters on hosts with the
 *   legacy (v1 or hybrid) cgroup hierarchy, where Docker inside needs the host's controllers; on
 *   a unified (v2) host, turning the cgroup namespace off exposes the whole read-only tree and
 *   breaks Docker (moby/moby#44402), and with it on Docker works (REFERENCE.md: docker info
 *   inside nspawn v252 on cgroup v2 reports overlay2).
 * - SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 (docs/ENVIRONMENT.md: "force systemd-nspawn into unified
 *   cgroup hierarchy mode"; read by detect_unified_cgroup_hierarchy_from_environment() in
 *   src/nspawn/nspawn.c, which still accepts the older name $UNIFIED_CGROUP_HIERARCHY) is the
 *   name since v232. On a hybrid host it gives a user-namespaced machine only the unified
 *   hierarchy, the one part nspawn delegates to the machine's root (chown_cgroup() in
 *   src/nspawn/nspawn-cgroup.c chowns the name=systemd and unified cgroups, never the v1
 *   controllers'), so Docker's runc can create its cgroups there.
 *
 * The kernel: overlayfs may be mounted inside a user namespace since Linux 5.11 (torvalds/linux
 * 459c7c565ac3 "ovl: unprivieged mounts", with 2d2f2d7322ff "ovl: user xattr" for the
 * user.overlay.* xattrs Docker's overlay2 then uses); Docker falls back to vfs on older kernels
 * (unless the distribution carries Ubuntu's old patch). */
#define HOSTINFO_SYSTEMD_FUSE_BUILTIN 257u
#define HOSTINFO_SYSTEMD_USERNS_OWNERSHIP 249u
#define HOSTINFO_SYSTEMD_USE_CGNS_ENV 232u
#define HOSTINFO_SYSTEMD_UNIFIED_HIERARCHY_ENV 232u
#define HOSTINFO_KERNEL_OVERLAY_USERNS_MAJOR 5u
#define HOSTINFO_KERNEL_OVERLAY_USERNS_MINOR 11u

/* The host's systemd version: ctx->systemd_version when set (--systemd-version), else the N of
 * the host's libsystemd-shared-N*.so (usr/lib/systemd, usr/lib/<multiarch>/systemd,
 * usr/lib64/systemd, lib/systemd under ctx->host_root; the highest if several). *ret = 0 when it
 * cannot be told (a debug message says so); callers then emit what works on every version.
 * Returns 0 (also when unknown) or -ENOMEM. */
int hostinfo_systemd_version(struct mkm_ctx *ctx, unsigned *ret);

/* Parse a version out of "systemd 252 (252.39-1~deb12u2)" (the first line of systemd --version)
 * or a file name "libsystemd-shared-256.7-1-arch.so". 0 on success, -EINVAL otherwise. */
int hostinfo_parse_systemd_version(const char *s, unsigned *ret);

/* True when v is known and older than threshold; unknown (0) counts as old, so the output is
 * the one every version accepts. */
static inline bool hostinfo_systemd_older(unsigned v, unsigned threshold) {
        return v == 0 || v < threshold;
}

enum hostinfo_cgroup {
        HOSTINFO_CGROUP_UNKNOWN,
        HOSTINFO_CGROUP_UNIFIED,        /* cgroup2 at /sys/fs/cgroup */
        HOSTINFO_CGROUP_LEGACY,         /* tmpfs with v1 controllers only */
        HOSTINFO_CGROUP_HYBRID,         /* tmpfs with v1 controllers, cgroup2 at /sys/fs/cgroup/unified */
};

/* statfs(HOST/sys/fs/cgroup) and, for a tmpfs there, statfs(HOST/sys/fs/cgroup/unified). */
enum hostinfo_cgroup hostinfo_cgroup_mode(struct mkm_ctx *ctx);

/* The host kernel's MAJOR.MINOR from HOST/proc/sys/kernel/osrelease ("6.18.44-fc-v1272").
 * 0, -EINVAL for text that does not start with MAJOR.MINOR, or the read's -errno. */
int hostinfo_kernel_version(struct mkm_ctx *ctx, unsigned *ret_major, unsigned *ret_minor);
int hostinfo_parse_kernel_version(const char *s, unsigned *ret_major, unsigned *ret_minor);

/* 1 if the kernel module is loaded or built in (HOST/sys/module/NAME, or a line of
 * HOST/proc/modules), 0 if not, -ENOENT if neither source exists (cannot tell). */
int hostinfo_module_loaded(struct mkm_ctx *ctx, const char *name);

/* The statfs f_type of HOST/path, or of its nearest existing ancestor. 0 or -errno. */
int hostinfo_fs_type(struct mkm_ctx *ctx, const char *path, long *ret_type);
