/* SPDX-License-Identifier: MIT */
/* The build-time ownership shift (shift.h). The tree is untrusted: the walk never follows a
 * symlink or leaves the tree's file system (fs_walk), files are opened O_NOFOLLOW relative to
 * their directory, and an ID outside the mapped range is refused rather than wrapped. */
#include "shift.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ctx.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hashmap.h"

#define SHIFT_DEPTH_MAX 256
#define XATTR_NAME_CAPS "security.capability"

struct shift {
        uint32_t base, range;
        dev_t dev;
        struct hashmap *seen;   /* "dev:ino" of hard-linked files already shifted */
        struct mkm_err *reterr;
};

static int shift_one(struct shift *s, int dfd, const char *name, const struct stat *st) {
        if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
                char key[64];
                (void)snprintf(key, sizeof key, "%lu:%lu", (unsigned long)st->st_dev, (unsigned long)st->st_ino);
                if (hashmap_contains(s->seen, key))
                        return 0;
                if (hashmap_put(s->seen, key, NULL) < 0)
                        return -ENOMEM;
        }
        if (st->st_uid >= s->range || st->st_gid >= s->range)
                return mkm_err_set(s->reterr, -ERANGE,
                                   "cannot shift the ownership of '%s': %u:%u is outside the %" PRIu32
                                   " IDs mapped into the machine",
                                   name, (unsigned)st->st_uid, (unsigned)st->st_gid, s->range);
        uid_t uid = st->st_uid + s->base;
        gid_t gid = st->st_gid + s->base;
        if (S_ISREG(st->st_mode)) {
                _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0)
                        return negative_errno();
                struct vfs_ns_cap_data caps = {};
                ssize_t n = fgetxattr(fd, XATTR_NAME_CAPS, &caps, sizeof caps);
                if (n < 0 && errno != ENODATA && errno != ENOTSUP && errno != EOPNOTSUPP)
                        return negative_errno();
                if (fchown(fd, uid, gid) < 0 || fchmod(fd, st->st_mode & 07777) < 0)
                        return negative_errno();
                if (n > 0) {
                        uint32_t magic = le32toh(caps.magic_etc);
                        uint32_t rev = magic & VFS_CAP_REVISION_MASK;
                        size_t size = (size_t)n;
                        if (rev == VFS_CAP_REVISION_2 && n == XATTR_CAPS_SZ_2) {
                                /* Applies in every namespace; store it as setcap inside would: v3,
                                 * owned by the machine's root. */
                                caps.magic_etc = htole32(VFS_CAP_REVISION_3 | (magic & VFS_CAP_FLAGS_EFFECTIVE));
                                caps.rootid = htole32(s->base);
                                size = XATTR_CAPS_SZ_3;
                        } else if (rev == VFS_CAP_REVISION_3 && n == XATTR_CAPS_SZ_3) {
                                uint32_t root = le32toh(caps.rootid);
                                if (root >= s->range)
                                        return mkm_err_set(s->reterr, -ERANGE,
                                                           "cannot shift the file capabilities of '%s': root id %" PRIu32
                                                           " is outside the machine's range",
                                                           name, root);
                                caps.rootid = htole32(root + s->base);
                        }
                        if (fsetxattr(fd, XATTR_NAME_CAPS, &caps, size, 0) < 0)
                                return negative_errno();
                }
                return 0;
        }
        if (fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        if (!S_ISLNK(st->st_mode) && fchmodat(dfd, name, st->st_mode & 07777, 0) < 0)
                return negative_errno();
        return 0;
}

static int shift_entry(int dfd, const char *name, const char *path, const struct stat *st, void *userdata) {
        struct shift *s = userdata;
        int q = shift_one(s, dfd, name, st);
        if (q < 0 && q != -ERANGE && q != -ENOMEM)
                q = mkm_err_set(s->reterr, q, "cannot shift the ownership of '%s': %s", path + 2, mkm_strerror(q));
        return q;
}

int shift_ownership(struct mkm_ctx *ctx, int rootfd, uint32_t base, uint32_t range, struct mkm_err *reterr) {
        if (base == 0)
                return 0;
        struct stat st;
        if (fstat(rootfd, &st) < 0)
                return negative_errno();
        _cleanup_(hashmap_freep) struct hashmap *seen = hashmap_new();
        if (!seen)
                return -ENOMEM;
        struct shift s = { .base = base, .range = range, .dev = st.st_dev, .seen = seen, .reterr = reterr };
        mkm_debug(ctx, "shifting the tree's ownership to the UID base %" PRIu32, base);
        int q = fs_walk(rootfd, SHIFT_DEPTH_MAX, shift_entry, &s);
        if (q == -ELOOP)
                return mkm_err_set(reterr, q, "tree deeper than %d levels", SHIFT_DEPTH_MAX);
        if (q < 0)
                return q;
        if (st.st_uid >= range || st.st_gid >= range)
                return mkm_err_set(reterr, -ERANGE, "cannot shift the ownership of the machine's root directory: %u:%u "
                                                    "is outside the %" PRIu32 " IDs mapped into the machine",
                                   (unsigned)st.st_uid, (unsigned)st.st_gid, range);
        if (fchownat(rootfd, "", st.st_uid + base, st.st_gid + base, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ||
            fchmod(rootfd, st.st_mode & 07777) < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot shift the ownership of the machine's root: %s",
                                   strerror(errno));
        return 0;
}
