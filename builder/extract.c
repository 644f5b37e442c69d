/* SPDX-License-Identifier: MIT */
/* Safe package extraction through the staging root's dirfd (see extract.h for the threat). */
#include "extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ctx.h"
#include "normalize.h"
#include "util/chase.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/forklock.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/hashmap.h"
#include "util/strv.h"

#define DEFAULT_MAX_BYTES (16ULL << 30) /* when the metadata promises nothing */
#define MAX_ENTRIES 1000000u
#define MAX_PATH_LEN 4000u

struct owner {
        const char *pkg;        /* borrowed from extract_owners.labels */
        bool dir;
};

struct extract_owners {
        struct hashmap *paths;  /* path -> struct owner* */
        struct owner **all;     /* for freeing */
        size_t n_all, cap_all;
        char **labels;
};

struct extract_owners *extract_owners_new(void) {
        struct extract_owners *o = calloc(1, sizeof *o);
        if (!o)
                return NULL;
        o->paths = hashmap_new();
        if (!o->paths)
                return extract_owners_free(o);
        return o;
}

struct extract_owners *extract_owners_free(struct extract_owners *o) {
        if (!o)
                return NULL;
        for (size_t i = 0; i < o->n_all; i++)
                free(o->all[i]);
        free(o->all);
        strv_free(o->labels);
        hashmap_free(o->paths);
        free(o);
        return NULL;
}

static const char *owners_intern(struct extract_owners *o, const char *label) {
        if (o->labels)
                for (char **l = o->labels; *l; l++)
                        if (strcmp(*l, label) == 0)
                                return *l;
        if (strv_push(&o->labels, label) < 0)
                return NULL;
        return o->labels[strv_length(o->labels) - 1];
}

/* Record that pkg owns path; fail on a second owner of a non-directory, as pacman does. */
static int owners_claim(struct extract_owners *o, const char *pkg, const char *path, bool dir,
                        struct mkm_err *reterr) {
        if (!o)
                return 0;
        struct owner *prev = hashmap_get(o->paths, path);
        if (prev) {
                if (prev->dir && dir)
                        return 0;
                if (strcmp(prev->pkg, pkg) == 0)
                        return 0;
                return mkm_err_set(reterr, -MKM_E_CONFLICT, "%s: /%s exists in both '%s' and '%s'", pkg, path,
                                   prev->pkg, pkg);
        }
        const char *interned = owners_intern(o, pkg);
        if (!interned)
                return -ENOMEM;
        if (mkm_grow((void **)&o->all, &o->cap_all, o->n_all, sizeof *o->all, 1024) < 0)
                return -ENOMEM;
        struct owner *e = malloc(sizeof *e);
        if (!e)
                return -ENOMEM;
        *e = (struct owner){ .pkg = interned, .dir = dir };
        o->all[o->n_all++] = e;
        return hashmap_put(o->paths, path, e);
}

int extract_normalize_path(const char *in, char **ret) {
        if (!in || !*in)
                return -EINVAL;
        if (in[0] == '/')
                return -EPERM;
        if (strlen(in) > MAX_PATH_LEN)
                return -ENAMETOOLONG;
        _cleanup_free_ char *out = malloc(strlen(in) + 1);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        const char *p = in;
        while (*p) {
                size_t n = strcspn(p, "/");
                if (n == 0 || (n == 1 && p[0] == '.')) {
                        /* empty or "." component: skip */
                } else if (n == 2 && p[0] == '.' && p[1] == '.') {
                        return -EPERM;
                } else {
                        for (size_t i = 0; i < n; i++)
                                if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
                                        return -EINVAL;
                        if (o > 0)
                                out[o++] = '/';
                        memcpy(out + o, p, n);
                        o += n;
                }
                p += n;
                if (*p == '/')
                        p++;
        }
        out[o] = 0;
        if (o == 0)
                return -ENOENT; /* the archive's root itself */
        *ret = TAKE_PTR(out);
        return 0;
}

struct xstate {
        struct mkm_ctx *ctx;
        int rootfd;
        const struct extract_opts *opts;
        struct mkm_err *reterr;
        const char *label;
        struct hashmap *own_symlinks;   /* "dev:ino" of the symlinks this package created: never followed */
        struct hashmap *own_files;      /* regular files of this package: valid hard-link targets */
        struct strv_builder files;      /* %FILES%, in archive order until sorted */
        uint64_t bytes;
        struct extract_member *meta;    /* kept metadata members */
        size_t n_meta, cap_meta;
        mode_t umask;                   /* the process's, as the kernel applies it to new files */
        /* the last parent directory opened, reused for consecutive entries */
        char *cached_parent;
        int cached_fd;
        /* opts->restore_dir_times: each directory's path and the mtime it must end with */
        struct dir_time { char *path; int64_t mtime; } *dirs;
        size_t n_dirs, cap_dirs;
};

static int unsafe(struct xstate *s, const char *entry, const char *why) {
        return mkm_err_set(s->reterr, -MKM_E_UNSAFE_PATH, "%s: refusing entry '%s': %s", s->label, entry, why);
}

/* A symlink's identity: this package's links are recorded by inode, so that no other name (a
 * path through an earlier package's link, a hard link of the link) leads through one. */
static void link_key(char key[static 48], dev_t dev, ino_t ino) {
        (void)snprintf(key, 48, "%llx:%llx", (unsigned long long)dev, (unsigned long long)ino);
}

/* chase_in_root()'s question before it follows a symlink: never one this package created (a
 * later entry written through it would land wherever the package chose); links of earlier
 * packages (bin -> usr/bin) are followed, as the machine would, inside the root. */
static int refuse_own_symlink(const char *dir, const char *name, int fd, const struct stat *st, void *userdata) {
        const struct xstate *s = userdata;
        char key[48];
        link_key(key, st->st_dev, st->st_ino);
        return hashmap_contains(s->own_symlinks, key) ? -MKM_E_UNSAFE_PATH : 0;
}

/* Resolve path in the root as the entries of this package may: see refuse_own_symlink(). */
static int chase_entry(struct xstate *s, const char *path, unsigned flags, int *ret_fd) {
        const struct chase_hooks hooks = { .symlink = refuse_own_symlink, .userdata = s };
        return chase_in_root_full(s->rootfd, path, flags, &hooks, NULL, ret_fd);
}

/* The chase of directory path failed with -ENOTDIR: name the component in the way (an error
 * path; it walks again, prefix by prefix). A file there is a conflict between packages. */
static int not_a_directory(struct xstate *s, const char *entry, const char *path) {
        _cleanup_free_ char *prefix = strdup(path);
        if (!prefix)
                return -ENOMEM;
        for (size_t i = 0;; i++) {
                char c = path[i];
                if (c != '/' && c != 0)
                        continue;
                prefix[i] = 0;
                if (chase_entry(s, prefix, CHASE_MUST_BE_DIRECTORY, NULL) == -ENOTDIR) {
                        _cleanup_close_ int fd = -EBADF;
                        struct stat st;
                        if (chase_entry(s, prefix, CHASE_NOFOLLOW, &fd) > 0 && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode))
                                break;  /* a link to a non-directory */
                        return mkm_err_set(s->reterr, -MKM_E_CONFLICT, "%s: cannot install '%s': /%s is not a directory",
                                           s->label, entry, prefix);
                }
                if (c == 0)
                        break;
                prefix[i] = c;
        }
        return mkm_err_set(s->reterr, -ENOTDIR, "%s: cannot install '%s': /%s: %s", s->label, entry, prefix,
                           strerror(ENOTDIR));
}

/* Open the directory "path" (relative, normalised) under the root, creating missing components
 * (0755, whatever the umask). Returns an O_PATH dirfd. */
static int open_dir_in_root(struct xstate *s, const char *entry, const char *path) {
        int fd = -EBADF;
        int r = chase_entry(s, path, CHASE_MKDIR_0755 | CHASE_MUST_BE_DIRECTORY, &fd);
        if (r == -MKM_E_UNSAFE_PATH)
                return unsafe(s, entry, "it writes through a symlink the same package creates");
        if (r == -ENOTDIR)
                return not_a_directory(s, entry, path);
        if (r < 0)
                return mkm_err_set(s->reterr, r, "%s: cannot install '%s': /%s: %s", s->label, entry, path,
                                   mkm_strerror(r));
        return fd;
}

/* The parent dirfd of path (borrowed from the cache; do not close) and its last component. */
static int parent_of(struct xstate *s, const char *entry, const char *path, int *ret_fd, const char **ret_leaf) {
        const char *slash = strrchr(path, '/');
        size_t plen = slash ? (size_t)(slash - path) : 0;
        *ret_leaf = slash ? slash + 1 : path;
        if (s->cached_parent && strlen(s->cached_parent) == plen && strncmp(s->cached_parent, path, plen) == 0) {
                *ret_fd = s->cached_fd;
                return 0;
        }
        _cleanup_free_ char *parent = strndup(path, plen);
        if (!parent)
                return -ENOMEM;
        int fd = open_dir_in_root(s, entry, parent);
        if (fd < 0)
                return fd;
        closep(&s->cached_fd);
        free(s->cached_parent);
        s->cached_parent = TAKE_PTR(parent);
        s->cached_fd = fd;
        *ret_fd = fd;
        return 0;
}

static void forget_parent_cache(struct xstate *s) {
        closep(&s->cached_fd);
        s->cached_fd = -EBADF;
        free(s->cached_parent);
        s->cached_parent = NULL;
}

/* Remove what sits at leaf unless it is a directory (a file entry replaces a file). */
static int clear_leaf(struct xstate *s, int pfd, const char *leaf, const char *entry) {
        struct stat st;
        if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (S_ISDIR(st.st_mode))
                return mkm_err_set(s->reterr, -MKM_E_CONFLICT, "%s: cannot install '%s': a directory is in the way",
                                   s->label, entry);
        if (unlinkat(pfd, leaf, 0) < 0)
                return negative_errno();
        return 0;
}

static int apply_xattrs(struct xstate *s, int fd, struct archive_entry *e, const char *entry) {
        const char *name;
        const void *value;
        size_t size;
        archive_entry_xattr_reset(e);
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
                /* Only what a package legitimately carries: user.*, file capabilities, ACLs; never a
                 * trusted.* or security.* label from an archive. */
                if (!normalize_xattr_is_content(name)) {
                        mkm_debug(s->ctx, "%s: skipping extended attribute '%s' on %s", s->label, name, entry);
                        continue;
                }
                if (fsetxattr(fd, name, value, size, 0) < 0)
                        return mkm_err_set(s->reterr, negative_errno(), "%s: cannot set %s on /%s: %s", s->label, name,
                                           entry, strerror(errno));
        }
        return 0;
}

/* Keep a metadata member in memory (a repeated name replaces the earlier copy). */
static int read_meta(struct xstate *s, struct archive *a, struct archive_entry *e, const char *name) {
        la_int64_t size = archive_entry_size(e);
        if (size < 0 || (uint64_t)size > EXTRACT_META_MAX)
                return mkm_err_set(s->reterr, -MKM_E_ARCHIVE, "%s: %s is larger than %u bytes", s->label, name,
                                   EXTRACT_META_MAX);
        _cleanup_free_ char *buf = malloc((size_t)size + 1);
        if (!buf)
                return -ENOMEM;
        size_t got = 0;
        while (got < (size_t)size) {
                la_ssize_t n = archive_read_data(a, buf + got, (size_t)size - got);
                if (n < 0)
                        return mkm_err_set(s->reterr, -MKM_E_ARCHIVE, "%s: %s: %s", s->label, name,
                                           archive_error_string(a));
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        buf[got] = 0;
        struct extract_member *m = NULL;
        for (size_t i = 0; i < s->n_meta; i++)
                if (strcmp(s->meta[i].name, name) == 0)
                        m = &s->meta[i];
        if (!m) {
                if (mkm_grow((void **)&s->meta, &s->cap_meta, s->n_meta, sizeof *s->meta, 4) < 0)
                        return -ENOMEM;
                char *n = strdup(name);
                if (!n)
                        return -ENOMEM;
                m = &s->meta[s->n_meta++];
                *m = (struct extract_member){ .name = n };
        }
        free(m->data);
        m->data = TAKE_PTR(buf);
        m->len = got;
        m->mtime = archive_entry_mtime(e);
        return 0;
}

static void members_free(struct extract_member *m, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(m[i].name);
                free(m[i].data);
        }
        free(m);
}

/* The umask without changing it (umask(2) can only set it, and other threads create files):
 * from /proc/self/status, once per archive (a caller may change it between archives; the tests
 * do); 07777 (never trust the create mode) when that cannot be read. */
static mode_t current_umask(void) {
        _cleanup_free_ char *text = NULL;
        if (fs_read_file_follow_at(AT_FDCWD, "/proc/self/status", 1 << 16, &text, NULL) < 0)
                return 07777;
        const char *u = strstr(text, "\nUmask:");
        unsigned long v;
        if (!u || sscanf(u + 8, "%lo", &v) != 1)
                return 07777;
        return (mode_t)v & 0777;
}

static int write_regular_locked(struct xstate *s, struct archive *a, struct archive_entry *e, const char *path) {
        int pfd;
        const char *leaf;
        int r = parent_of(s, path, path, &pfd, &leaf);
        if (r < 0)
                return r;
        mode_t mode = archive_entry_perm(e) & 07777;
        /* Created with its final mode when the umask leaves that alone and it has no set-id,
         * sticky or group/other write bit (those get it with fchmod once the content is in):
         * saves a syscall per file. */
        bool exact = !(mode & 07022) && !(mode & s->umask);
        mode_t create = exact ? mode : 0600;
        /* Most paths are new: create first, and clear what is in the way only when needed. */
        _cleanup_close_ int fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, create);
        if (fd < 0 && errno == EEXIST) {
                r = clear_leaf(s, pfd, leaf, path);
                if (r < 0)
                        return r;
                fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, create);
        }
        if (fd < 0)
                return mkm_err_set(s->reterr, negative_errno(), "%s: cannot create /%s: %s", s->label, path,
                                   strerror(errno));
        uint64_t max = s->opts->max_bytes ? s->opts->max_bytes : DEFAULT_MAX_BYTES;
        /* The declared size counts, not only the data stored: a sparse entry could otherwise
         * create terabytes of holes for whatever reads the tree later. */
        la_int64_t declared = archive_entry_size(e);
        uint64_t bytes_before = s->bytes;
        if (declared > 0 && (uint64_t)declared > max - (s->bytes < max ? s->bytes : max))
                return mkm_err_set(s->reterr, -MKM_E_TOO_BIG, "%s: contents exceed the %llu bytes its metadata promised",
                                   s->label, (unsigned long long)max);
        uint64_t pos = 0;       /* where the next write() goes */
        for (;;) {
                const void *buf;
                size_t len;
                la_int64_t off;
                int ar = archive_read_data_block(a, &buf, &len, &off);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN)
                        return mkm_err_set(s->reterr, -MKM_E_ARCHIVE, "%s: reading /%s: %s", s->label, path,
                                           archive_error_string(a));
                s->bytes += len;
                if (s->bytes > max)
                        return mkm_err_set(s->reterr, -MKM_E_TOO_BIG,
                                           "%s: contents exceed the %llu bytes its metadata promised", s->label,
                                           (unsigned long long)max);
                /* Sparse files: seek over holes (only then: a syscall per block adds up). */
                if (off >= 0 && (uint64_t)off != pos) {
                        if (lseek(fd, off, SEEK_SET) < 0)
                                return negative_errno();
                        pos = (uint64_t)off;
                }
                int q = fs_write_all(fd, buf, len);
                if (q < 0)
                        return mkm_err_set(s->reterr, q, "%s: writing /%s: %s", s->label, path, mkm_strerror(q));
                pos += len;
        }
        if (declared >= 0 && (uint64_t)declared != pos && ftruncate(fd, declared) < 0)
                return negative_errno();
        /* Holes count like data (see above); the check before the data already kept
         * bytes_before + declared within max. */
        if (declared > 0 && (uint64_t)declared > s->bytes - bytes_before)
                s->bytes = bytes_before + (uint64_t)declared;
        /* What the kernel made of our create: a set-gid parent gives its group, a default ACL
         * masks the mode instead of the umask. Fix only what differs (fstat dirties nothing). */
        uid_t uid = (uid_t)archive_entry_uid(e);
        gid_t gid = (gid_t)archive_entry_gid(e);
        struct stat now;
        if (fstat(fd, &now) < 0)
                return negative_errno();
        bool chowned = now.st_uid != uid || now.st_gid != gid;
        if (chowned && fchown(fd, uid, gid) < 0)
                return mkm_err_set(s->reterr, negative_errno(), "%s: chown /%s: %s", s->label, path, strerror(errno));
        /* chmod after chown: chown clears set-id bits. */
        if ((!exact || chowned || (now.st_mode & 07777) != mode) && fchmod(fd, mode) < 0)
                return negative_errno();
        r = apply_xattrs(s, fd, e, path);
        if (r < 0)
                return r;
        struct timespec ts[2] = { { .tv_sec = archive_entry_mtime(e), .tv_nsec = 0 },
                                  { .tv_sec = archive_entry_mtime(e), .tv_nsec = 0 } };
        (void)futimens(fd, ts);
        return hashmap_put(s->own_files, path, (void *)1);
}

/* A file being written must not be copied into a forked child (util/forklock.h). */
static int write_regular(struct xstate *s, struct archive *a, struct archive_entry *e, const char *path) {
        forklock_write_begin();
        int r = write_regular_locked(s, a, e, path);
        forklock_write_end();
        return r;
}

static int remember_dir_time(struct xstate *s, const char *path, int64_t mtime) {
        if (!s->opts->restore_dir_times)
                return 0;
        if (mkm_grow((void **)&s->dirs, &s->cap_dirs, s->n_dirs, sizeof *s->dirs, 1024) < 0)
                return -ENOMEM;
        char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        s->dirs[s->n_dirs++] = (struct dir_time){ .path = p, .mtime = mtime };
        return 0;
}

/* Setting a directory's times does not touch its parent's: any order will do. */
static int restore_dir_times(struct xstate *s) {
        for (size_t i = 0; i < s->n_dirs; i++) {
                struct timespec ts[2] = { { .tv_sec = s->dirs[i].mtime }, { .tv_sec = s->dirs[i].mtime } };
                int r;
                if (strcmp(s->dirs[i].path, ".") == 0)
                        r = futimens(s->rootfd, ts) < 0 ? negative_errno() : 0;
                else {
                        _cleanup_close_ int fd = fs_open_in_root(s->rootfd, s->dirs[i].path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                                                                 0, RESOLVE_NO_SYMLINKS);
                        r = fd < 0 ? fd : futimens(fd, ts) < 0 ? negative_errno() : 0;
                }
                if (r < 0)
                        return mkm_err_set(s->reterr, r, "%s: setting the time of /%s: %s", s->label, s->dirs[i].path,
                                           mkm_strerror(r));
        }
        return 0;
}

/* The archive's "./" entry describes the root itself (opts->apply_root). */
static int write_root(struct xstate *s, struct archive_entry *e) {
        if (archive_entry_filetype(e) != AE_IFDIR)
                return unsafe(s, archive_entry_pathname(e), "the root is not a directory");
        if (fchown(s->rootfd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) < 0 ||
            fchmod(s->rootfd, archive_entry_perm(e) & 07777) < 0)
                return mkm_err_set(s->reterr, negative_errno(), "%s: the root: %s", s->label, strerror(errno));
        int r = apply_xattrs(s, s->rootfd, e, ".");
        if (r < 0)
                return r;
        return remember_dir_time(s, ".", archive_entry_mtime(e));
}

/* Device nodes and fifos (opts->allow_special): created, never opened. */
static int write_special(struct xstate *s, struct archive_entry *e, const char *path) {
        int pfd;
        const char *leaf;
        int r = parent_of(s, path, path, &pfd, &leaf);
        if (r < 0)
                return r;
        r = clear_leaf(s, pfd, leaf, path);
        if (r < 0)
                return r;
        mode_t type = archive_entry_filetype(e);
        if (mknodat(pfd, leaf, type | (archive_entry_perm(e) & 0777 & ~07000), archive_entry_rdev(e)) < 0)
                return mkm_err_set(s->reterr, negative_errno(), "%s: mknod /%s: %s", s->label, path, strerror(errno));
        if (fchownat(pfd, leaf, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0 ||
            fchmodat(pfd, leaf, archive_entry_perm(e) & 07777, 0) < 0)
                return mkm_err_set(s->reterr, negative_errno(), "%s: /%s: %s", s->label, path, strerror(errno));
        struct timespec ts[2] = { { .tv_sec = archive_entry_mtime(e) }, { .tv_sec = archive_entry_mtime(e) } };
        (void)utimensat(pfd, leaf, ts, AT_SYMLINK_NOFOLLOW);
        return 0;
}

static int write_dir(struct xstate *s, struct archive_entry *e, const char *path) {
        int pfd;
        const char *leaf;
        int r = parent_of(s, path, path, &pfd, &leaf);
        if (r < 0)
                return r;
        struct stat st;
        if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISDIR(st.st_mode))
                        return 0;       /* shared directory: the first package's metadata wins, as in pacman */
                if (S_ISLNK(st.st_mode)) {
                        /* pacman keeps a symlink to a directory where a package has a directory,
                         * unless the package made the link itself. */
                        _cleanup_close_ int t = -EBADF;
                        if (chase_entry(s, path, CHASE_MUST_BE_DIRECTORY, &t) > 0)
                                return 0;
                }
                return mkm_err_set(s->reterr, -MKM_E_CONFLICT, "%s: cannot create directory /%s: a file is in the way",
                                   s->label, path);
        }
        if (mkdirat(pfd, leaf, 0700) < 0)
                return mkm_err_set(s->reterr, negative_errno(), "%s: mkdir /%s: %s", s->label, path, strerror(errno));
        _cleanup_close_ int fd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fchown(fd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) < 0)
                return negative_errno();
        if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
                return negative_errno();
        r = apply_xattrs(s, fd, e, path);
        if (r < 0)
                return r;
        struct timespec ts[2] = { { .tv_sec = archive_entry_mtime(e) }, { .tv_sec = archive_entry_mtime(e) } };
        (void)futimens(fd, ts);
        return remember_dir_time(s, path, archive_entry_mtime(e));
}

static int write_symlink(struct xstate *s, struct archive_entry *e, const char *path) {
        const char *target = archive_entry_symlink(e);
        if (!target || !*target || strlen(target) > MAX_PATH_LEN)
                return unsafe(s, path, "symlink without a valid target");
        int pfd;
        const char *leaf;
        int r = parent_of(s, path, path, &pfd, &leaf);
        if (r < 0)
                return r;
        r = clear_leaf(s, pfd, leaf, path);
        if (r < 0)
                return r;
        if (symlinkat(target, pfd, leaf) < 0)
                return mkm_err_set(s->reterr, negative_errno(), "%s: symlink /%s: %s", s->label, path, strerror(errno));
        if (fchownat(pfd, leaf, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        struct timespec ts[2] = { { .tv_sec = archive_entry_mtime(e) }, { .tv_sec = archive_entry_mtime(e) } };
        (void)utimensat(pfd, leaf, ts, AT_SYMLINK_NOFOLLOW);
        /* No later entry goes through it (it may replace an earlier package's link the cached
         * parent was reached by). */
        struct stat st;
        if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        forget_parent_cache(s);
        char key[48];
        link_key(key, st.st_dev, st.st_ino);
        return hashmap_put(s->own_symlinks, key, (void *)1);
}

static int write_hardlink(struct xstate *s, struct archive_entry *e, const char *path) {
        _cleanup_free_ char *target = NULL;
        int r = extract_normalize_path(archive_entry_hardlink(e), &target);
        if (r < 0)
                return unsafe(s, path, "hard link target outside the package");
        /* Only to a regular file this same package wrote: never to a host or another package's path. */
        if (!hashmap_contains(s->own_files, target))
                return unsafe(s, path, "hard link to a file the package does not contain");
        _cleanup_close_ int tfd = -EBADF;
        const char *tleaf;
        {
                int pfd;
                r = parent_of(s, target, target, &pfd, &tleaf);
                if (r < 0)
                        return r;
                tfd = fcntl(pfd, F_DUPFD_CLOEXEC, 3);
                if (tfd < 0)
                        return negative_errno();
        }
        _cleanup_free_ char *tleaf_copy = strdup(tleaf);
        if (!tleaf_copy)
                return -ENOMEM;
        int pfd;
        const char *leaf;
        r = parent_of(s, path, path, &pfd, &leaf);
        if (r < 0)
                return r;
        r = clear_leaf(s, pfd, leaf, path);
        if (r < 0)
                return r;
        if (linkat(tfd, tleaf_copy, pfd, leaf, 0) < 0)
                return mkm_err_set(s->reterr, negative_errno(), "%s: link /%s: %s", s->label, path, strerror(errno));
        return hashmap_put(s->own_files, path, (void *)1);
}

static int add_file(struct xstate *s, const char *path, bool dir) {
        if (!dir)
                return strv_builder_push(&s->files, path);
        char *p = NULL;
        if (asprintf(&p, "%s/", path) < 0)
                return -ENOMEM;
        int r = strv_builder_consume(&s->files, p);
        if (r < 0)
                free(p);
        return r;
}

static bool is_meta_name(const struct extract_opts *o, const char *path) {
        for (const char *const *m = o->meta_names; m && *m; m++)
                if (strcmp(*m, path) == 0)
                        return true;
        return false;
}

static int handle_entry(struct xstate *s, struct archive *a, struct archive_entry *e) {
        const char *raw = archive_entry_pathname(e);
        if (!raw)
                return unsafe(s, "(unnamed)", "entry without a name");
        _cleanup_free_ char *path = NULL;
        int r = extract_normalize_path(raw, &path);
        if (r == -ENOENT)       /* "./": the root itself */
                return s->opts->apply_root ? write_root(s, e) : 0;
        if (r == -EPERM)
                return unsafe(s, raw, raw[0] == '/' ? "absolute path" : "path contains '..'");
        if (r < 0)
                return unsafe(s, raw, "invalid path");

        if (!strchr(path, '/')) {
                /* Top-level metadata of the package format, never part of the tree. */
                if (is_meta_name(s->opts, path))
                        return read_meta(s, a, e, path);
                if (s->opts->skip_dot_toplevel && path[0] == '.')
                        return 0;
        }

        mode_t type = archive_entry_filetype(e);
        bool dir = type == AE_IFDIR;
        const char *hardlink = archive_entry_hardlink(e);
        bool special = type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO;
        if (!hardlink && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && !(special && s->opts->allow_special))
                return unsafe(s, raw, type == AE_IFCHR || type == AE_IFBLK ? "device nodes are not allowed in packages"
                                      : "special files (fifo, socket) are not allowed in packages");
        r = owners_claim(s->opts->owners, s->label, path, dir, s->reterr);
        if (r < 0)
                return r;
        if (hardlink)
                r = write_hardlink(s, e, path);
        else if (type == AE_IFREG)
                r = write_regular(s, a, e, path);
        else if (type == AE_IFDIR)
                r = write_dir(s, e, path);
        else if (special)
                r = write_special(s, e, path);
        else
                r = write_symlink(s, e, path);
        if (r < 0)
                return r;
        return add_file(s, path, dir);
}

int extract_archive(struct mkm_ctx *ctx, int rootfd, struct archive *a, const struct extract_opts *opts,
                    struct extract_result *ret, struct mkm_err *reterr) {
        struct xstate s = {
                .ctx = ctx,
                .rootfd = rootfd,
                .opts = opts,
                .reterr = reterr,
                .label = opts->label ? opts->label : "package",
                .cached_fd = -EBADF,
                .umask = current_umask(),
        };
        int r = 0;
        s.own_symlinks = hashmap_new();
        s.own_files = hashmap_new();
        if (!s.own_symlinks || !s.own_files) {
                r = -ENOMEM;
                goto out;
        }
        struct archive_entry *e;
        unsigned entries = 0;
        for (;;) {
                int ar = archive_read_next_header(a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN) {
                        r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s: malformed archive: %s", s.label,
                                        archive_error_string(a));
                        goto out;
                }
                if (++entries > MAX_ENTRIES) {
                        r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s: more than %u entries", s.label, MAX_ENTRIES);
                        goto out;
                }
                r = handle_entry(&s, a, e);
                if (r < 0)
                        goto out;
        }
        r = restore_dir_times(&s);
        if (r < 0)
                goto out;
        if (!s.files.l && !(s.files.l = calloc(1, sizeof(char *)))) {
                r = -ENOMEM;
                goto out;
        }
        strv_sort(s.files.l);
        /* An archive may name a path twice (a tar appended to, "d" and "d/"): list it once, as
         * dpkg's .list and pacman's %FILES% do (found by fuzz-extract). */
        size_t w = 0;
        for (size_t i = 0; s.files.l[i]; i++) {
                if (w > 0 && strcmp(s.files.l[w - 1], s.files.l[i]) == 0)
                        free(s.files.l[i]);
                else
                        s.files.l[w++] = s.files.l[i];
        }
        s.files.l[w] = NULL;
        *ret = (struct extract_result){ .files = TAKE_PTR(s.files.l), .bytes = s.bytes, .meta = TAKE_PTR(s.meta),
                                        .n_meta = s.n_meta };
        s.n_meta = 0;
out:
        members_free(s.meta, s.n_meta);
        for (size_t i = 0; i < s.n_dirs; i++)
                free(s.dirs[i].path);
        free(s.dirs);
        forget_parent_cache(&s);
        strv_free(s.files.l);
        hashmap_free(s.own_symlinks);
        hashmap_free(s.own_files);
        return r;
}

static void archive_freep(struct archive **a) {
        if (*a)
                (void)archive_read_free(*a);
}

#define HASHING_BUF (64u << 10)

/* extract_opts.hash: a libarchive reader over fd that hashes what it hands out. It has no skip
 * callback, so libarchive reads (and we hash) what it passes over instead of seeking past it. */
struct hashing_reader {
        int fd;
        struct hash_ctx *hash;
        uint8_t *buf;
        uint64_t left;          /* bytes it may still read (extract_opts.hash_max) */
};

static int hashing_read_some(struct hashing_reader *h, ssize_t *ret_n) {
        ssize_t n = 0;
        size_t want = h->left < HASHING_BUF ? (size_t)h->left : HASHING_BUF;
        if (want > 0)
                do
                        n = read(h->fd, h->buf, want);
                while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        if (n > 0) {
                h->left -= (uint64_t)n;
                int r = hash_update(h->hash, h->buf, (size_t)n);
                if (r < 0)
                        return r;
        }
        *ret_n = n;
        return 0;
}

static la_ssize_t hashing_read(struct archive *a, void *userdata, const void **ret_buf) {
        struct hashing_reader *h = userdata;
        ssize_t n = 0;
        int r = hashing_read_some(h, &n);
        if (r < 0) {
                archive_set_error(a, -r, "read: %s", mkm_strerror(r));
                return -1;
        }
        *ret_buf = h->buf;
        return n;
}

int extract_archive_fd(struct mkm_ctx *ctx, int rootfd, int fd, const struct extract_opts *opts,
                       struct extract_result *ret, struct mkm_err *reterr) {
        const char *label = opts->label ? opts->label : "package";
        _cleanup_free_ uint8_t *buf = opts->hash ? malloc(HASHING_BUF) : NULL;
        struct hashing_reader h = { .fd = fd, .hash = opts->hash, .buf = buf,
                                    .left = opts->hash_max ? opts->hash_max : UINT64_MAX };
        if (opts->hash && !buf)
                return -ENOMEM;
        _cleanup_(archive_freep) struct archive *a = archive_read_new();
        if (!a)
                return -ENOMEM;
        (void)archive_read_support_filter_all(a);
        (void)archive_read_support_format_tar(a);
        (void)archive_read_support_format_gnutar(a);
        int ar = opts->hash ? archive_read_open(a, &h, NULL, hashing_read, NULL) : archive_read_open_fd(a, fd, 65536);
        if (ar != ARCHIVE_OK)
                return mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s: not a readable archive: %s", label,
                                   archive_error_string(a));
        struct extract_result res = {};
        int r = extract_archive(ctx, rootfd, a, opts, &res, reterr);
        if (r < 0)
                return r;
        /* What follows the archive's end (tar's zero blocks past the ones libarchive stopped at,
         * anything appended) is part of the file that was checked: hash it too. */
        for (ssize_t n = 1; opts->hash && n > 0;) {
                r = hashing_read_some(&h, &n);
                if (r < 0) {
                        extract_result_done(&res);
                        return mkm_err_set(reterr, r, "%s: read: %s", label, mkm_strerror(r));
                }
        }
        *ret = res;
        return 0;
}

const struct extract_member *extract_result_meta(const struct extract_result *r, const char *name) {
        for (size_t i = 0; r && i < r->n_meta; i++)
                if (strcmp(r->meta[i].name, name) == 0)
                        return &r->meta[i];
        return NULL;
}

void extract_result_done(struct extract_result *r) {
        if (!r)
                return;
        strv_free(r->files);
        members_free(r->meta, r->n_meta);
        *r = (struct extract_result){};
}
