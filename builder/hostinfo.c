/* SPDX-License-Identifier: MIT */
/* Host facts: systemd version, cgroup hierarchy, kernel modules, file system types. */
#include "hostinfo.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "ctx.h"
#include "util/cleanup.h"
#include "util/fs.h"

#define SHARED_PREFIX "libsystemd-shared-"

static const char *host_root(const struct mkm_ctx *ctx) {
        return ctx && ctx->host_root ? ctx->host_root : "/";
}

int hostinfo_parse_systemd_version(const char *s, unsigned *ret) {
        const char *p;
        if (strncmp(s, "systemd ", 8) == 0)
                p = s + 8;
        else if (strncmp(s, SHARED_PREFIX, strlen(SHARED_PREFIX)) == 0)
                p = s + strlen(SHARED_PREFIX);
        else
                return -EINVAL;
        if (!isdigit((unsigned char)*p))
                return -EINVAL;
        unsigned long v = 0;
        for (; isdigit((unsigned char)*p); p++) {
                v = v * 10 + (unsigned long)(*p - '0');
                if (v > 100000)
                        return -EINVAL;
        }
        /* "252 (…)", "252.39…", "252.so", "256.7-1-arch.so", "257~rc1…" */
        if (*p && *p != ' ' && *p != '.' && *p != '-' && *p != '~' && *p != '\n')
                return -EINVAL;
        if (v == 0)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

/* The highest libsystemd-shared-N in dir (relative to the host root fd); 0 if none. */
static unsigned scan_dir(int hostfd, const char *dir) {
        int fd = openat(hostfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        DIR *d = fdopendir(fd);
        if (!d) {
                (void)close(fd);
                return 0;
        }
        unsigned best = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                unsigned v;
                if (strstr(de->d_name, ".so") && hostinfo_parse_systemd_version(de->d_name, &v) >= 0 && v > best)
                        best = v;
        }
        (void)closedir(d);
        return best;
}

int hostinfo_systemd_version(struct mkm_ctx *ctx, unsigned *ret) {
        if (ctx && ctx->systemd_version) {
                *ret = ctx->systemd_version;
                return 0;
        }
        _cleanup_close_ int hostfd = open(host_root(ctx), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        unsigned best = 0;
        if (hostfd >= 0) {
                static const char *const dirs[] = { "usr/lib/systemd", "usr/lib64/systemd", "lib/systemd" };
                for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                        unsigned v = scan_dir(hostfd, dirs[i]);
                        if (v > best)
                                best = v;
                }
                /* Debian and Ubuntu: usr/lib/<triplet>/systemd */
                int lfd = openat(hostfd, "usr/lib", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
                if (!d && lfd >= 0)
                        (void)close(lfd);
                struct dirent *de;
                while (d && (de = readdir(d))) {
                        if (!strstr(de->d_name, "-linux-"))
                                continue;
                        char sub[512];
                        if (snprintf(sub, sizeof sub, "usr/lib/%s/systemd", de->d_name) >= (int)sizeof sub)
                                continue;
                        unsigned v = scan_dir(hostfd, sub);
                        if (v > best)
                                best = v;
                }
                if (d)
                        (void)closedir(d);
        }
        if (best)
                mkm_debug(ctx, "host systemd version %u (from libsystemd-shared under %s)", best, host_root(ctx));
        else
                mkm_debug(ctx, "cannot tell the host's systemd version (no libsystemd-shared-*.so under %s); "
                               "writing settings every version accepts", host_root(ctx));
        *ret = best;
        return 0;
}

enum hostinfo_cgroup hostinfo_cgroup_mode(struct mkm_ctx *ctx) {
        _cleanup_free_ char *p = fs_path_join(host_root(ctx), "sys/fs/cgroup");
        struct statfs sfs;
        if (!p || statfs(p, &sfs) < 0)
                return HOSTINFO_CGROUP_UNKNOWN;
        if ((unsigned long)sfs.f_type == (unsigned long)CGROUP2_SUPER_MAGIC)
                return HOSTINFO_CGROUP_UNIFIED;
        if ((unsigned long)sfs.f_type != (unsigned long)TMPFS_MAGIC)
                return HOSTINFO_CGROUP_UNKNOWN;
        /* systemd mounts the unified hierarchy at /sys/fs/cgroup/unified in hybrid mode. */
        _cleanup_free_ char *u = fs_path_join(p, "unified");
        if (u && statfs(u, &sfs) == 0 && (unsigned long)sfs.f_type == (unsigned long)CGROUP2_SUPER_MAGIC)
                return HOSTINFO_CGROUP_HYBRID;
        return HOSTINFO_CGROUP_LEGACY;
}

int hostinfo_parse_kernel_version(const char *s, unsigned *ret_major, unsigned *ret_minor) {
        char *end;
        errno = 0;
        unsigned long major = strtoul(s, &end, 10);
        if (errno || end == s || *end != '.' || !isdigit((unsigned char)end[1]) || major > 1000)
                return -EINVAL;
        const char *m = end + 1;
        unsigned long minor = strtoul(m, &end, 10);
        if (errno || end == m || minor > 1000)
                return -EINVAL;
        *ret_major = (unsigned)major;
        *ret_minor = (unsigned)minor;
        return 0;
}

int hostinfo_kernel_version(struct mkm_ctx *ctx, unsigned *ret_major, unsigned *ret_minor) {
        _cleanup_free_ char *p = fs_path_join(host_root(ctx), "proc/sys/kernel/osrelease");
        if (!p)
                return -ENOMEM;
        _cleanup_free_ char *text = NULL;
        int q = fs_read_file_follow_at(AT_FDCWD, p, 256, &text, NULL);
        if (q < 0)
                return q;
        return hostinfo_parse_kernel_version(text, ret_major, ret_minor);
}

int hostinfo_module_loaded(struct mkm_ctx *ctx, const char *name) {
        _cleanup_free_ char *sysmod = fs_path_join(host_root(ctx), "sys/module");
        _cleanup_free_ char *procmod = fs_path_join(host_root(ctx), "proc/modules");
        if (!sysmod || !procmod)
                return -ENOMEM;
        bool have_source = false;
        struct stat st;
        if (stat(sysmod, &st) == 0 && S_ISDIR(st.st_mode)) {
                have_source = true;
                _cleanup_free_ char *m = fs_path_join(sysmod, name);
                if (!m)
                        return -ENOMEM;
                if (stat(m, &st) == 0)
                        return 1;
        }
        _cleanup_free_ char *text = NULL;
        if (fs_read_file_follow_at(AT_FDCWD, procmod, 16u << 20, &text, NULL) >= 0) {
                have_source = true;
                size_t n = strlen(name);
                for (const char *l = text; *l;) {
                        if (strncmp(l, name, n) == 0 && l[n] == ' ')
                                return 1;
                        const char *nl = strchr(l, '\n');
                        if (!nl)
                                break;
                        l = nl + 1;
                }
        }
        return have_source ? 0 : -ENOENT;
}

int hostinfo_fs_type(struct mkm_ctx *ctx, const char *path, long *ret_type) {
        _cleanup_free_ char *p = fs_path_join(host_root(ctx), path);
        if (!p)
                return -ENOMEM;
        for (;;) {
                struct statfs sfs;
                if (statfs(p, &sfs) == 0) {
                        *ret_type = (long)sfs.f_type;
                        return 0;
                }
                if (errno != ENOENT)
                        return negative_errno();
                char *slash = strrchr(p, '/');
                if (!slash)
                        return -ENOENT;
                if (slash == p) {
                        p[1] = 0;
                        if (statfs(p, &sfs) < 0)
                                return negative_errno();
                        *ret_type = (long)sfs.f_type;
                        return 0;
                }
                *slash = 0;
        }
}
