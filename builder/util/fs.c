/* SPDX-License-Identifier: MIT */
/* File system helpers. */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/random.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "chase.h"
#include "cleanup.h"
#include "err.h"
#include "strv.h"

#define NGROUPS_MAX_GUESS 1024

int fs_open_in_root(int rootfd, const char *path, int flags, mode_t mode, uint64_t extra_resolve) {
        struct open_how how = {
                .flags = (uint64_t)(flags | O_CLOEXEC),
                .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra_resolve,
        };
        long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
        if (fd < 0)
                return negative_errno();
        return (int)fd;
}

int fs_read_fd(int fd, size_t max, char **ret, size_t *ret_len) {
        size_t cap = 4096, len = 0;
        _cleanup_free_ char *buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap > max)
                                return -EFBIG;
                        cap *= 2;
                        char *nb = realloc(buf, cap + 1);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = 0;
        if (ret_len)
                *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int fs_read_file_follow_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        return fs_read_fd(fd, max, ret, ret_len);
}

/* Reopen the walk's O_PATH fd pfd for reading: only a regular file, or with allow_dir a
 * directory, and the same inode. */
static int reopen_walked(int pfd, bool allow_dir, struct stat *ret_st) {
        struct stat st, st2;
        if (fstat(pfd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) && !(allow_dir && S_ISDIR(st.st_mode)))
                return -EBADFD;
        char proc[64];
        (void)snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
        _cleanup_close_ int fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
                                                    (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st2) < 0)
                return negative_errno();
        if (st2.st_dev != st.st_dev || st2.st_ino != st.st_ino)
                return -EBUSY;
        if (ret_st)
                *ret_st = st2;
        return TAKE_FD(fd);
}

/* getpwuid_r(3) (group false) or getgrgid_r(3) of id into *ret_entry, with a buffer that grows
 * (an entry larger than it is ERANGE) up to FS_PASSWD_ENTRY_MAX: fs_getpwuid()'s contract. */
static int db_lookup(bool group, unsigned id, void *ret_entry, char **ret_buf) {
        _cleanup_free_ char *buf = NULL;
        struct passwd *pw = NULL;
        struct group *gr = NULL;
        int e = ERANGE;
        for (size_t size = 16384; e == ERANGE && size <= FS_PASSWD_ENTRY_MAX; size *= 2) {
                free(buf);
                if (!(buf = malloc(size)))
                        return -ENOMEM;
                e = group ? getgrgid_r((gid_t)id, ret_entry, buf, size, &gr)
                          : getpwuid_r((uid_t)id, ret_entry, buf, size, &pw);
        }
        if (e != 0 && e != ENOENT && e != ESRCH)
                return -MKM_E_USERDB;
        if (!(group ? (void *)gr : (void *)pw))
                return 0;
        *ret_buf = TAKE_PTR(buf);
        return 1;
}

int fs_getpwuid(uid_t uid, struct passwd *ret_pw, char **ret_buf) {
        return db_lookup(false, uid, ret_pw, ret_buf);
}

int fs_getgrgid(gid_t gid, struct group *ret_gr, char **ret_buf) {
        return db_lookup(true, gid, ret_gr, ret_buf);
}

int fs_reader_for_uid(uid_t uid, struct fs_reader *ret) {
        *ret = (struct fs_reader){ .uid = uid, .gid = 65534 };
        if (uid == 0)
                return 0;
        struct passwd pw;
        _cleanup_free_ char *buf = NULL;
        int e = fs_getpwuid(uid, &pw, &buf);
        if (e <= 0)
                return e;       /* 0, unknown: the overflow group, no others */
        ret->gid = pw.pw_gid;
        gid_t groups[NGROUPS_MAX_GUESS];
        int n = NGROUPS_MAX_GUESS;
        if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
                n = NGROUPS_MAX_GUESS;  /* more than fit: the first ones (fewer can only read less) */
        for (int i = 0; i < n && ret->n_groups < FS_READER_GROUPS_MAX; i++)
                ret->groups[ret->n_groups++] = groups[i];
        return 0;
}

/* setfsuid()/setfsgid() act on the calling thread only (no glibc broadcast to the other threads,
 * which setgroups() and setuid() do): the raw setgroups syscall does the same for the groups. */
int fs_reader_enter(const struct fs_reader *rd, struct fs_reader_saved *s) {
        *s = (struct fs_reader_saved){};
        if (!rd || rd->uid == 0 || geteuid() != 0)
                return 0;
        s->fsuid = (uid_t)setfsuid((uid_t)-1);
        s->fsgid = (gid_t)setfsgid((gid_t)-1);
        int n = (int)syscall(SYS_getgroups, FS_READER_GROUPS_MAX, s->groups);
        if (n < 0)
                return negative_errno();
        s->n_groups = n;
        /* A setgroups that failed changed nothing: nothing to return from (and returning would
         * call it again, fail again and stop the process). */
        if (syscall(SYS_setgroups, (size_t)rd->n_groups, rd->groups) < 0)
                return -MKM_E_IDENTITY;
        s->active = true;
        (void)setfsgid(rd->gid);
        (void)setfsuid(rd->uid);
        /* setfsuid() says nothing of failure but its old value: ask again. */
        if ((uid_t)setfsuid((uid_t)-1) != rd->uid || (gid_t)setfsgid((gid_t)-1) != rd->gid) {
                fs_reader_leave(s);
                return -MKM_E_IDENTITY;
        }
        return 0;
}

void fs_reader_leave(struct fs_reader_saved *s) {
        if (!s->active)
                return;
        (void)setfsuid(s->fsuid);
        (void)setfsgid(s->fsgid);
        if (syscall(SYS_setgroups, (size_t)s->n_groups, s->groups) < 0 ||
            (uid_t)setfsuid((uid_t)-1) != s->fsuid || (gid_t)setfsgid((gid_t)-1) != s->fsgid) {
                /* Going on as the reader would create the machine's files as its owner. */
                fprintf(stderr, "mkmachine: cannot return to its own file system identity; stopping\n");
                abort();
        }
        s->active = false;
}

unsigned long fs_random_ulong(void) {
        unsigned long v;
        if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
                return v;
        /* no entropy yet (early boot): the time and a counter, still unknown in advance */
        static unsigned long n;
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (unsigned long)ts.tv_nsec ^ ((unsigned long)ts.tv_sec << 20) ^ (++n << 40) ^ (unsigned long)random();
}

static int fs_strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

const char *fs_beside_refusal(int r) {
        switch (r) {
        case -EACCES:
                return FS_READER_REFUSED;
        case -ENOLINK:
                return FS_FOREIGN_LINK_REFUSED;
        case -EMLINK:
                return FS_HARD_LINK_REFUSED;
        case -MKM_E_ANYONE_WRITES:
                return FS_ANYONE_WRITES_REFUSED;
        case -EBUSY:
                return "changed while it was opened";
        case -MKM_E_IDENTITY:
                return FS_IDENTITY_REFUSED;
        default:
                return NULL;
        }
}

int fs_source_failure_code(int r) {
        return r == -MKM_E_IDENTITY || r == -MKM_E_USERDB ? r : -MKM_E_RECIPE;
}

int fs_open_entry_as(int dirfd, const char *name, const struct fs_reader *as, struct stat *ret_st, int *ret_fd,
                     char *target, size_t size, const char **ret_step) {
        *ret_fd = -1;
        *ret_step = NULL;
        struct fs_reader_saved saved;
        int q = fs_reader_enter(as, &saved);
        if (q < 0) {
                *ret_step = "cannot take the recipe owner's permissions to read";
                return q;
        }
        _cleanup_close_ int fd = -EBADF;
        ssize_t tl = -1;
        int e = 0;
        if (fstatat(dirfd, name, ret_st, AT_SYMLINK_NOFOLLOW) < 0) {
                e = errno;
                *ret_step = "cannot stat the source";
        } else if (S_ISREG(ret_st->st_mode) || S_ISDIR(ret_st->st_mode)) {
                /* The entry may be swapped between the stat and the open (a co-tenant's
                 * directory): a FIFO would hang, so non-blocking, and what was opened must be what
                 * was judged. */
                fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
                                                 (S_ISDIR(ret_st->st_mode) ? O_DIRECTORY : 0));
                e = fd < 0 ? errno : 0;
                *ret_step = "cannot open the source";
        } else if (S_ISLNK(ret_st->st_mode)) {
                tl = readlinkat(dirfd, name, target, size - 1);
                e = tl < 0 ? errno : 0;
                *ret_step = "cannot read the symlink";
        }
        fs_reader_leave(&saved);
        if (e != 0)
                return -e;
        if (S_ISLNK(ret_st->st_mode))
                target[tl] = 0;
        if (fd < 0)
                return 0;
        struct stat ost;
        *ret_step = "cannot stat the source";
        if (fstat(fd, &ost) < 0)
                return negative_errno();
        if ((ost.st_mode & S_IFMT) != (ret_st->st_mode & S_IFMT) || ost.st_dev != ret_st->st_dev ||
            ost.st_ino != ret_st->st_ino)
                return -EBUSY;
        q = fs_check_own_link(dirfd, name, &ost);
        if (q < 0)
                return q;
        if (fcntl(fd, F_SETFL, 0) < 0)
                return negative_errno();
        *ret_step = NULL;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

struct source_walk {
        const struct fs_reader *as;
        unsigned max_depth;
        const struct fs_tree_visitor *v;
        const char **step;
        bool visitor;           /* the visitor failed, not the walk */
};

static int source_tree(struct source_walk *w, int dirfd, void *parent, unsigned depth, char **where) {
        if (depth > w->max_depth)
                return -ELOOP;
        struct stat dst;
        if (fstat(dirfd, &dst) < 0) {
                *w->step = "cannot stat the source directory";
                return negative_errno();
        }
        if (fs_anyone_writes(&dst))
                return -MKM_E_ANYONE_WRITES;
        DIR *d = fs_opendir_dup(dirfd);
        if (!d) {
                *w->step = "cannot list the source directory";
                return negative_errno();
        }
        int q = 0;
        struct dirent *de;
        while (q >= 0 && (errno = 0, de = readdir(d))) {
                const char *n = de->d_name;
                if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
                        continue;
                struct stat st;
                _cleanup_close_ int fd = -EBADF;
                char target[PATH_MAX];
                q = fs_open_entry_as(dirfd, n, w->as, &st, &fd, target, sizeof target, w->step);
                if (q >= 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
                        q = -EBADFD;
                void *child = NULL;
                if (q >= 0 && w->v && (q = w->v->entry(parent, n, &st, fd, S_ISLNK(st.st_mode) ? target : NULL,
                                                        &child)) < 0)
                        w->visitor = true;
                char *inner = NULL;
                if (q >= 0 && S_ISDIR(st.st_mode))
                        q = source_tree(w, fd, child, depth + 1, &inner);
                if (child && w->v->leave) {     /* whatever happened since entry set it */
                        int l = w->v->leave(child, q);
                        if (l < 0 && q >= 0) {  /* else the first failure stands */
                                w->visitor = true;
                                q = l;
                        }
                }
                if (q < 0) {    /* the path of what failed, from the inside out */
                        char *p = inner && strcmp(inner, ".") != 0 ? fs_path_join(n, inner) : strdup(n);
                        free(inner);
                        if (!p)
                                q = -ENOMEM;
                        *where = p;
                }
        }
        if (q >= 0 && errno != 0) {     /* the listing itself failed: not all of it was walked */
                q = negative_errno();
                *w->step = "cannot list the source directory";
        }
        (void)closedir(d);
        return q;
}

int fs_walk_source_tree(int dirfd, const struct fs_reader *as, unsigned max_depth, const struct fs_tree_visitor *v,
                        void *top, char **ret_where, const char **ret_step, bool *ret_visitor) {
        char *where = NULL;
        *ret_step = NULL;
        struct source_walk w = { .as = as, .max_depth = max_depth, .v = v, .step = ret_step };
        int q = source_tree(&w, dirfd, top, 0, &where);
        if (q < 0 && q != -ENOMEM && !where && !(where = strdup(".")))
                q = -ENOMEM;
        *ret_where = q < 0 ? where : NULL;
        if (q >= 0)
                free(where);
        if (ret_visitor)
                *ret_visitor = q < 0 && w.visitor;
        return q;
}

int fs_walk_refusal_words(int q, const char *step, const char *what, const char *source, unsigned max_depth,
                          char **ret_words) {
        int code, w;
        *ret_words = NULL;
        if (q == -EBADFD) {
                code = -MKM_E_RECIPE;
                w = asprintf(ret_words, "%s is a device, FIFO or socket; only files, directories and symlinks are copied",
                             what);
        } else if (q == -ELOOP && !step) {      /* the walk's own depth, not an open that met a link */
                code = -ELOOP;
                w = asprintf(ret_words, "%s is deeper than %u levels", source, max_depth);
        } else if (q == -EBUSY) {
                code = -EBUSY;
                w = asprintf(ret_words, "%s changed while it was read", what);
        } else if (fs_beside_refusal(q)) {
                code = fs_source_failure_code(q);
                w = asprintf(ret_words, "%s %s", what, fs_beside_refusal(q));
        } else
                return 0;
        if (w < 0) {
                *ret_words = NULL;
                return -ENOMEM;
        }
        return code;
}

int fs_judge_source_tree(int dirfd, const struct fs_reader *as, unsigned max_depth, char **ret_where,
                         const char **ret_step) {
        return fs_walk_source_tree(dirfd, as, max_depth, NULL, NULL, ret_where, ret_step, NULL);
}

/* Field k of a mountinfo line after its separator ("... - FSTYPE SOURCE SUPEROPTIONS": 0, 1, 2),
 * fields split at spaces (mountinfo escapes spaces in them as \040). */
static const char *mountinfo_field(const char *sep, int k, size_t *ret_len) {
        const char *p = sep;
        for (int i = 0; i < k; i++) {
                p = strchr(p, ' ');
                if (!p)
                        return NULL;
                p++;
        }
        *ret_len = strcspn(p, " \n");
        return p;
}

long fs_mountinfo_fuse_mounter(const char *line, uint64_t mnt_id) {
        unsigned long long id;
        if (sscanf(line, "%llu ", &id) != 1 || id != mnt_id)
                return -1;
        const char *sep = strstr(line, " - ");
        size_t tl, ol;
        const char *type = sep ? mountinfo_field(sep + 3, 0, &tl) : NULL;
        if (!type)
                return 65534;
        bool fuse = (tl == 4 && strncmp(type, "fuse", 4) == 0) || (tl == 7 && strncmp(type, "fuseblk", 7) == 0) ||
                    (tl > 5 && strncmp(type, "fuse.", 5) == 0) || (tl > 8 && strncmp(type, "fuseblk.", 8) == 0);
        if (tl == 8 && strncmp(type, "virtiofs", 8) == 0)
                return 0;       /* FUSE in the kernel, but a host's share that root mounted */
        if (!fuse)
                return 65534;   /* the kernel said FUSE: a kind not known here */
        /* user_id= in the kernel's super options, never in a type, source or mount point that
         * the daemon or its user chose */
        const char *opts = mountinfo_field(sep + 3, 2, &ol);
        for (const char *o = opts; o && o < opts + ol;) {
                size_t n = strcspn(o, ", \n");
                if (n > 8 && strncmp(o, "user_id=", 8) == 0) {
                        char num[24], end;
                        unsigned long uid;
                        if (n - 8 >= sizeof num)
                                return 65534;
                        memcpy(num, o + 8, n - 8);
                        num[n - 8] = 0;
                        if (sscanf(num, "%lu%c", &uid, &end) == 1 && uid < (uid_t)-1)
                                return (long)uid;
                        return 65534;
                }
                o += n + 1;
        }
        return 65534;
}

uid_t fs_fuse_mounter(int fd) {
        struct statfs sf;
        if (fstatfs(fd, &sf) < 0)
                return 65534;
        if ((unsigned long)sf.f_type != 0x65735546UL)   /* FUSE_SUPER_MAGIC, fuse and fuseblk */
                return 0;
        struct statx sx;
        if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &sx) < 0 || !(sx.stx_mask & STATX_MNT_ID))
                return 65534;
        FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return 65534;
        char *line = NULL;
        size_t size = 0;
        long r = -1;
        while (r < 0 && getline(&line, &size, f) > 0)
                r = fs_mountinfo_fuse_mounter(line, sx.stx_mnt_id);
        free(line);
        fclose(f);
        return r < 0 ? 65534 : (uid_t)r;        /* not in the table: detached since it was reached */
}

uid_t fs_owner_of(int fd, const struct stat *st) {
        uid_t m = fs_fuse_mounter(fd);
        if (m == 0 || m == st->st_uid)
                return st->st_uid;
        return st->st_uid == 0 ? m : 65534;
}

bool fs_anyone_writes(const struct stat *st) {
        return S_ISDIR(st->st_mode) && (st->st_mode & S_IWOTH);
}

int fs_check_own_link(int dirfd, const char *name, const struct stat *st) {
        if (!S_ISREG(st->st_mode))
                return 0;
        /* The name, now: still this inode (else it changed since it was opened), and how many
         * links the inode has while the name is there, in one stat. */
        struct stat now, dir;
        if (fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? -EBUSY : negative_errno();
        if (now.st_dev != st->st_dev || now.st_ino != st->st_ino)
                return -EBUSY;
        if (now.st_nlink <= 1)
                return 0;
        if (fstat(dirfd, &dir) < 0)
                return negative_errno();
        return now.st_uid == dir.st_uid ? 0 : -EMLINK;
}

/* Walk inner ("/a/b/leaf", a path without links inside dirfd, as chase_in_root() gave it) to the
 * directory holding its last component, without following anything: dirfd and every directory on
 * the way must not be writable by anyone (-MKM_E_ANYONE_WRITES), -EBUSY when one is no longer a directory. */
static int walk_parents(int dirfd, const char *inner, int *ret_parent, const char **ret_leaf) {
        _cleanup_close_ int cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return negative_errno();
        const char *p = inner;
        for (;;) {
                struct stat st;
                if (fstat(cur, &st) < 0)
                        return negative_errno();
                if (!S_ISDIR(st.st_mode))
                        return -EBUSY;
                if (fs_anyone_writes(&st))
                        return -MKM_E_ANYONE_WRITES;
                while (*p == '/')
                        p++;
                const char *slash = strchr(p, '/');
                if (!slash || !slash[strspn(slash, "/")])
                        break;
                char name[NAME_MAX + 1];
                size_t n = (size_t)(slash - p);
                if (n == 0 || n > NAME_MAX)
                        return -EINVAL;
                memcpy(name, p, n);
                name[n] = 0;
                int next = openat(cur, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
                if (next < 0)
                        return errno == ENOTDIR || errno == ELOOP || errno == ENOENT ? -EBUSY : negative_errno();
                close(cur);
                cur = next;
                p = slash;
        }
        *ret_leaf = p;
        *ret_parent = TAKE_FD(cur);
        return 0;
}

static int open_beside_inside(int dfd, const char *dir, const char *path, bool allow_dir, uid_t reader,
                              char **ret_real, struct stat *ret_st, struct stat *ret_dir_st);

int fs_open_beside(const char *dir, const char *path, bool allow_dir, const struct fs_reader *as, char **ret_real,
                   struct stat *ret_st, struct stat *ret_dir_st) {
        size_t n = strlen(dir);
        if (dir[0] != '/' || path[0] != '/')
                return -EINVAL;
        bool root = n == 1;
        if (!root && (strncmp(path, dir, n) != 0 || (path[n] != '/' && path[n] != 0)))
                return -EXDEV;
        _cleanup_close_ int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return negative_errno();
        _cleanup_free_ char *dreal = NULL;
        _cleanup_close_ int dfd = -EBADF;
        int r = chase_in_root(rootfd, dir, CHASE_MUST_BE_DIRECTORY, &dreal, &dfd);
        if (r < 0)
                return r;
        if (strcmp(dreal, dir) != 0)
                return -EXDEV;  /* the directory is a link now: not the one the recipe was read from */
        struct fs_reader_saved saved;
        r = fs_reader_enter(as, &saved);
        if (r < 0)
                return r;
        r = open_beside_inside(dfd, dir, path, allow_dir, as ? as->uid : 0, ret_real, ret_st, ret_dir_st);
        fs_reader_leave(&saved);
        return r;
}

/* A link followed inside the directory must be the reader's or root's: another user's link may
 * lead to what they can read and the reader cannot tell from their own. */
static int link_of_reader(const char *dir, const char *name, int fd, const struct stat *st, void *userdata) {
        uid_t reader = *(const uid_t *)userdata;
        uid_t owner = fs_owner_of(fd, st);      /* on a user's FUSE mount, that user's */
        return owner == 0 || owner == reader ? 0 : -ENOLINK;
}

/* fs_open_beside() from dfd, dir's fd, on: as whoever reads (reader, its uid). */
static int open_beside_inside(int dfd, const char *dir, const char *path, bool allow_dir, uid_t reader,
                              char **ret_real, struct stat *ret_st, struct stat *ret_dir_st) {
        bool root = strlen(dir) == 1;
        _cleanup_free_ char *inner = NULL;
        _cleanup_close_ int pfd = -EBADF;
        const char *rest = path + (root ? 0 : strlen(dir));
        const struct chase_hooks hooks = { .symlink = link_of_reader, .userdata = &reader };
        int r = chase_in_root_full(dfd, *rest ? rest : ".", CHASE_REFUSE_ESCAPE | CHASE_REFUSE_ABSOLUTE, &hooks, &inner,
                                   &pfd);
        if (r < 0)
                return r;
        struct stat st;
        int fd = reopen_walked(pfd, allow_dir, &st);
        bool itself = !*rest || strcmp(inner, "/") == 0;
        if (fd >= 0 && !itself) {
                /* Judged in the directory that holds it, walked again to its parent inside dir:
                 * not in a directory anyone can write (whose files may be anyone's: /tmp holds
                 * root's), not a directory anyone can write, and not a hard link to another
                 * user's file (fs_check_own_link()). */
                const char *leaf = NULL;
                _cleanup_close_ int parentfd = -EBADF;
                r = walk_parents(dfd, inner, &parentfd, &leaf);
                if (r >= 0 && fs_anyone_writes(&st))
                        r = -MKM_E_ANYONE_WRITES;
                if (r >= 0)
                        r = fs_check_own_link(parentfd, leaf, &st);
                if (r >= 0 && ret_dir_st && fstat(parentfd, ret_dir_st) < 0)
                        r = negative_errno();
                if (r < 0) {
                        close(fd);
                        return r;
                }
        } else if (fd >= 0 && ret_dir_st && fstat(dfd, ret_dir_st) < 0) {
                close(fd);
                return negative_errno();
        }
        if (fd >= 0 && ret_st)
                *ret_st = st;
        if (fd >= 0 && ret_real) {
                char *j = NULL;
                if (asprintf(&j, "%s%s", root ? "" : dir, inner) < 0) {
                        close(fd);
                        return -ENOMEM;
                }
                *ret_real = j;
        }
        return fd;
}

int fs_write_all(int fd, const void *data, size_t len) {
        const char *p = data;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int fs_write_file_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode) {
        /* Replace, never truncate in place: in a tree that scripts have run in, the old file may
         * be a hard link to another file of the tree, which a write through it would change. */
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
                return negative_errno();
        _cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return negative_errno();
        int r = fs_write_all(fd, data, len);
        if (r < 0)
                return r;
        if (fchmod(fd, mode) < 0)
                return negative_errno();
        return 0;
}

int fs_write_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode) {
        char tmp[4096];
        const char *slash = strrchr(name, '/');
        int r;

        /* The temporary name sits in the same directory, so rename() is atomic. */
        if (slash)
                r = snprintf(tmp, sizeof tmp, "%.*s/.#%s.%d.XXXXXX", (int)(slash - name), name, slash + 1, (int)getpid());
        else
                r = snprintf(tmp, sizeof tmp, ".#%s.%d.XXXXXX", name, (int)getpid());
        if (r < 0 || (size_t)r >= sizeof tmp)
                return -ENAMETOOLONG;

        /* mkostemp has no *at variant: fill the XXXXXX ourselves and retry on EEXIST. */
        _cleanup_close_ int fd = -EBADF;
        char *x = tmp + strlen(tmp) - 6;
        for (int attempt = 0; attempt < 100; attempt++) {
                static const char al[] = "abcdefghijklmnopqrstuvwxyz0123456789";
                unsigned long seed = fs_random_ulong();
                for (int i = 0; i < 6; i++) {
                        x[i] = al[seed % 36];
                        seed /= 36;
                }
                fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
                if (fd >= 0 || errno != EEXIST)
                        break;
        }
        if (fd < 0)
                return negative_errno();
        r = fs_write_all(fd, data, len);
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = negative_errno();
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && renameat(dirfd, tmp, dirfd, name) < 0)
                r = negative_errno();
        if (r < 0) {
                (void)unlinkat(dirfd, tmp, 0);
                return r;
        }
        /* Make the rename itself durable. */
        char dir[4096];
        if (slash)
                (void)snprintf(dir, sizeof dir, "%.*s", (int)(slash - name), name);
        else
                (void)snprintf(dir, sizeof dir, ".");
        _cleanup_close_ int dfd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void)fsync(dfd);
        return 0;
}

bool fs_fd_is_path(int fd, const char *path) {
        struct stat a, b;
        return fstat(fd, &a) == 0 && a.st_nlink > 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev &&
               a.st_ino == b.st_ino;
}

bool fs_dir_is_private(const struct stat *st) {
        return S_ISDIR(st->st_mode) && (st->st_uid == geteuid() || st->st_uid == 0) && !(st->st_mode & 022);
}

DIR *fs_opendir_dup(int dirfd) {
        int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return NULL;
        DIR *d = fdopendir(fd);
        if (!d) {
                int e = errno;
                (void)close(fd);
                errno = e;
                return NULL;
        }
        /* The duplicate shares dirfd's offset: start from the top. */
        rewinddir(d);
        return d;
}

int fs_list_names(int dirfd, fs_keep_fn keep, void *userdata, size_t max, char ***ret_names) {
        *ret_names = NULL;
        /* a builder: strv_push() would count the list at every name (a directory of 100,000) */
        struct strv_builder b = {};
        DIR *d = fs_opendir_dup(dirfd);
        if (!d)
                return negative_errno();
        int r = 0;
        struct dirent *de;
        while (r >= 0 && (errno = 0, de = readdir(d))) {
                const char *name = de->d_name;
                if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || (keep && !keep(dirfd, name, userdata)))
                        continue;
                r = max && b.n >= max ? -E2BIG : strv_builder_push(&b, name);
        }
        if (r >= 0 && errno != 0)       /* readdir's end or its failure */
                r = negative_errno();
        (void)closedir(d);
        if (r >= 0 && !b.l && !(b.l = calloc(1, sizeof *b.l)))
                r = -ENOMEM;
        if (r < 0) {
                strv_free(b.l);
                return r;
        }
        if (b.n > 1)
                qsort(b.l, b.n, sizeof *b.l, fs_strcmp_ptr);
        *ret_names = b.l;
        return 0;
}

/* The PID in a temporary's name ".#NAME.PID.XXXXXX", or 0 when the name is not one. */
static pid_t temporary_owner(const char *name) {
        size_t len = strlen(name);
        if (len < 2 + 1 + 2 + 6 || strncmp(name, ".#", 2) != 0 || name[len - 7] != '.')
                return 0;
        size_t end = len - 7, start = end;
        while (start > 2 && name[start - 1] >= '0' && name[start - 1] <= '9')
                start--;
        if (start == end || end - start > 9 || name[start - 1] != '.' || start - 1 <= 2)
                return 0;
        for (size_t i = len - 6; i < len; i++)  /* mkstemp's suffix: letters and digits */
                if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
                      (name[i] >= '0' && name[i] <= '9')))
                        return 0;
        pid_t pid = 0;
        for (size_t i = start; i < end; i++)
                pid = pid * 10 + (name[i] - '0');
        return pid;
}

/* The PID in a name "PREFIX.PID.ANYTHING", or 0 when the name is not one. */
static pid_t prefixed_owner(const char *name, const char *prefix) {
        size_t pl = strlen(prefix);
        if (strncmp(name, prefix, pl) != 0 || name[pl] != '.')
                return 0;
        const char *s = name + pl + 1;
        size_t n = strspn(s, "0123456789");
        if (n == 0 || n > 9 || s[n] != '.' || s[0] == '0')
                return 0;
        pid_t pid = 0;
        for (size_t i = 0; i < n; i++)
                pid = pid * 10 + (s[i] - '0');
        return pid;
}

/* What a process left in path: regular files named as temporary_owner() reads them (prefix NULL)
 * or directories named "PREFIX.PID.*"; of process pid, or (pid 0) of every process that is gone
 * but this one. Directories of pid 0 only when ours and nobody holds their flock: the PID alone
 * could name a process of another pid namespace sharing the directory, or have been reused. */
static int remove_left_in(int dfd, const char *prefix, pid_t pid);

static int remove_left_by(const char *path, const char *prefix, pid_t pid) {
        _cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return errno == ENOENT ? 0 : negative_errno();
        return remove_left_in(dfd, prefix, pid);
}

int fs_remove_temporaries_beside_recipe(const char *dir, pid_t pid) {
        _cleanup_close_ int dfd = fs_open_beside(dir, dir, true, NULL, NULL, NULL, NULL);
        if (dfd < 0)
                return dfd == -ENOENT ? 0 : dfd;
        return remove_left_in(dfd, NULL, pid);
}

static int remove_left_in(int dfd, const char *prefix, pid_t pid) {
        DIR *d = fs_opendir_dup(dfd);
        if (!d)
                return negative_errno();
        int n = 0;
        struct dirent *de;
        while ((errno = 0, de = readdir(d))) {
                const char *name = de->d_name;
                pid_t owner = prefix ? prefixed_owner(name, prefix) : temporary_owner(name);
                if (owner <= 0 || (pid > 0 ? owner != pid : owner == getpid() || !fs_pid_is_gone(owner)))
                        continue;
                if (!prefix) {
                        struct stat st;
                        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
                            unlinkat(dfd, name, 0) == 0)
                                n++;
                        continue;
                }
                _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0 ||
                    (pid == 0 && (st.st_uid != geteuid() || flock(fd, LOCK_EX | LOCK_NB) < 0)))
                        continue;
                if (fs_rm_rf_at(dfd, name) >= 0)
                        n++;
        }
        if (errno != 0)         /* the listing failed: what is left in the rest is not known */
                n = negative_errno();
        (void)closedir(d);
        return n;
}

int fs_remove_temporaries_of(const char *path, pid_t pid) {
        return remove_left_by(path, NULL, pid);
}

int fs_remove_dirs_of(const char *path, const char *prefix, pid_t pid) {
        return remove_left_by(path, prefix, pid);
}

int fs_mkdir_p_at(int dirfd, const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; ; s++) {
                if (*s == '/' || *s == 0) {
                        char c = *s;
                        *s = 0;
                        if (mkdirat(dirfd, p, mode) < 0 && errno != EEXIST)
                                return negative_errno();
                        *s = c;
                        if (!c)
                                break;
                }
        }
        struct stat st;
        if (fstatat(dirfd, path, &st, 0) < 0)
                return negative_errno();
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int fs_mkdir_p_in_root(int rootfd, const char *path, mode_t mode) {
        _cleanup_close_ int cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return negative_errno();
        _cleanup_free_ char *buf = strdup(path);
        if (!buf)
                return -ENOMEM;
        char *comp = buf;
        while (*comp) {
                char *slash = strchr(comp, '/');
                if (slash)
                        *slash = 0;
                if (!*comp || strcmp(comp, ".") == 0) {
                        /* empty or "." component */
                } else if (strcmp(comp, "..") == 0)
                        return -EPERM;
                else {
                        if (mkdirat(cur, comp, mode) < 0 && errno != EEXIST)
                                return negative_errno();
                        int fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
                                /* A symlink (or not a directory): resolve the prefix as the machine
                                 * would, confined to the tree. */
                                fd = fs_open_in_root(rootfd, buf, O_PATH | O_DIRECTORY, 0, 0);
                                if (fd < 0)
                                        return fd;
                        } else if (fd < 0)
                                return negative_errno();
                        closep(&cur);
                        cur = fd;
                }
                if (!slash)
                        break;
                *slash = '/';
                comp = slash + 1;
        }
        return TAKE_FD(cur);
}

/* Open a directory to read it, without updating its access time where we may (O_NOATIME needs
 * the owner or CAP_FOWNER): a walk that only reads (verify) writes nothing to the tree. */
static int open_dir_noatime(int dfd, const char *name, int flags) {
        int fd = openat(dfd, name, flags | O_NOATIME);
        if (fd < 0 && errno == EPERM)
                fd = openat(dfd, name, flags);
        return fd;
}

static int walk_dir(int fd, dev_t dev, const char *prefix, unsigned depth, unsigned max_depth, fs_walk_fn fn,
                    void *userdata) {
        if (depth > max_depth) {
                (void)close(fd);
                return -ELOOP;
        }
        DIR *d = fdopendir(fd);
        if (!d) {
                (void)close(fd);
                return negative_errno();
        }
        int r = 0;
        struct dirent *de;
        while ((errno = 0, de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                char *path = NULL;
                if (asprintf(&path, "%s/%s", prefix, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        r = negative_errno();
                else if (S_ISDIR(st.st_mode) && st.st_dev == dev) {
                        int cfd = open_dir_noatime(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        r = cfd < 0 ? negative_errno() : walk_dir(cfd, dev, path, depth + 1, max_depth, fn, userdata);
                }
                if (r >= 0)
                        r = fn(dirfd(d), de->d_name, path, &st, userdata);
                free(path);
                if (r < 0)
                        break;
        }
        if (r >= 0 && !de && errno != 0)        /* a listing cut short: the walk missed entries */
                r = negative_errno();
        (void)closedir(d);
        return r;
}

int fs_walk(int dirfd, unsigned max_depth, fs_walk_fn fn, void *userdata) {
        struct stat st;
        if (fstat(dirfd, &st) < 0)
                return negative_errno();
        int fd = open_dir_noatime(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return walk_dir(fd, st.st_dev, ".", 0, max_depth, fn, userdata);
}

/* The mount a directory entry belongs to (statx STATX_MNT_ID, Linux 5.8); 0 when unknown. */
static uint64_t mount_id_at(int dirfd, const char *name) {
        struct statx stx;
        if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (*name ? 0 : AT_EMPTY_PATH), STATX_MNT_ID,
                  &stx) < 0 ||
            !(stx.stx_mask & STATX_MNT_ID))
                return 0;
        return stx.stx_mnt_id;
}

/* Remove what is below fd, never crossing into another file system (st_dev) or another mount of
 * the same file system (a bind mount: its mount ID differs), where it refuses with -EXDEV. */
static int rm_rf_children(int fd, dev_t dev, uint64_t mnt) {
        DIR *d = fdopendir(fd);
        if (!d) {
                (void)close(fd);
                return negative_errno();
        }
        int r = 0;
        struct dirent *de;
        while ((errno = 0, de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT && r == 0)
                                r = negative_errno();
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        if (st.st_dev != dev) {
                                if (r == 0)
                                        r = -EXDEV;
                                continue;
                        }
                        int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (cfd < 0) {
                                if (r == 0)
                                        r = negative_errno();
                                continue;
                        }
                        /* The mount of what we opened (not of the name, which could change); when
                         * the top's mount is known, one we cannot tell counts as another. */
                        if (mnt && mount_id_at(cfd, "") != mnt) {
                                (void)close(cfd);
                                if (r == 0)
                                        r = -EXDEV;
                                continue;
                        }
                        int q = rm_rf_children(cfd, dev, mnt);
                        if (q < 0 && r == 0)
                                r = q;
                        if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                                r = negative_errno();
                } else if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT && r == 0)
                        r = negative_errno();
        }
        if (r == 0 && errno != 0)       /* the listing failed: not all of it was removed */
                r = negative_errno();
        (void)closedir(d);
        return r;
}

int fs_rm_rf_at(int dirfd, const char *name) {
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISDIR(st.st_mode))
                return unlinkat(dirfd, name, 0) < 0 ? negative_errno() : 0;
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        uint64_t mnt = mount_id_at(fd, "");
        /* Something mounted on the directory itself (".." leads back into the parent mount). */
        _cleanup_close_ int up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (mnt && up >= 0 && mount_id_at(up, "") != mnt) {
                (void)close(fd);
                return -EXDEV;
        }
        int r = rm_rf_children(fd, st.st_dev, mnt);
        if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && r == 0)
                r = negative_errno();
        return r;
}

char *fs_path_dirname(const char *path) {
        const char *slash = strrchr(path, '/');
        if (!slash)
                return strdup(".");
        if (slash == path)
                return strdup("/");
        return strndup(path, (size_t)(slash - path));
}

char *fs_path_join(const char *a, const char *b) {
        size_t la = strlen(a);
        while (la > 1 && a[la - 1] == '/')
                la--;
        while (*b == '/')
                b++;
        char *r = NULL;
        if (asprintf(&r, "%.*s%s%s", (int)la, a, (la > 0 && a[la - 1] == '/') ? "" : "/", b) < 0)
                return NULL;
        return r;
}

bool fs_pid_is_gone(pid_t pid) {
        if (pid <= 0)
                return false;
        if (kill(pid, 0) < 0)
                return errno == ESRCH;
        char path[64], buf[512];
        (void)snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        (void)close(fd);
        if (n <= 0)
                return false;
        buf[n] = 0;
        /* "PID (COMM) STATE ...": COMM may hold spaces and parentheses; the state follows the last ')'. */
        const char *rp = strrchr(buf, ')');
        return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}
