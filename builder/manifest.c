/* SPDX-License-Identifier: MIT */
/* The machine's manifest and digest (see manifest.h). */
#include "manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ctx.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "normalize.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strv.h"
#include "util/thread.h"

#define MAX_DEPTH 256
#define XATTR_LIST_MAX_BYTES 65536

struct entry {
        char *path;     /* "./a/b", raw bytes */
        char *line;     /* the formatted line without the path and time; a file's up to "size=N" */
        char *extra;    /* a file's " sha256=HEX[ xattr...]", filled by a hashing thread */
        int64_t mtime;
        ino_t ino;      /* a file's identity at walk time, checked when it is hashed */
        dev_t dev;
};

struct walk {
        struct mkm_ctx *ctx;
        struct mkm_err *reterr;
        int64_t clamp_epoch;    /* -1: do not clamp */
        struct entry *e;
        size_t n, cap;
        size_t *files;          /* indices of regular files in e, hashed by the threads */
        size_t nfiles, capfiles;
};

static void escape(FILE *f, const char *s) {
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p <= 0x20 || *p >= 0x7f || *p == '\\')
                        fprintf(f, "\\%03o", *p);
                else
                        fputc(*p, f);
}

static int xattrs(FILE *f, int fd) {
        char list[XATTR_LIST_MAX_BYTES];
        ssize_t n = flistxattr(fd, list, sizeof list);
        if (n < 0)
                return errno == ENOTSUP ? 0 : negative_errno();
        /* Sorted by name for a stable line. */
        _cleanup_strv_free_ char **names = calloc(1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1)
                if (strv_push(&names, list + i) < 0)
                        return -ENOMEM;
        strv_sort(names);
        for (char **x = names; *x; x++) {
                unsigned char val[XATTR_LIST_MAX_BYTES];
                ssize_t v = fgetxattr(fd, *x, val, sizeof val);
                if (v < 0)
                        return negative_errno();
                fputs(" xattr.", f);
                escape(f, *x);
                fputc('=', f);
                for (ssize_t i = 0; i < v; i++)
                        fprintf(f, "%02x", val[i]);
        }
        return 0;
}

static int add(struct walk *w, const char *path, const char *line, bool file, const struct stat *st) {
        if (mkm_grow((void **)&w->e, &w->cap, w->n, sizeof *w->e, 4096) < 0 ||
            (file && mkm_grow((void **)&w->files, &w->capfiles, w->nfiles, sizeof *w->files, 4096) < 0))
                return -ENOMEM;
        char *p = strdup(path), *l = strdup(line);
        if (!p || !l) {
                free(p);
                free(l);
                return -ENOMEM;
        }
        if (file)
                w->files[w->nfiles++] = w->n;
        w->e[w->n++] = (struct entry){ .path = p, .line = l, .mtime = (int64_t)st->st_mtim.tv_sec, .ino = st->st_ino,
                                       .dev = st->st_dev };
        return 0;
}

/* Describe the entry name in directory dfd (path is its "./..." name). */
static int describe(struct walk *w, int dfd, const char *name, const char *path, const struct stat *st) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        int r = 0;
        const char *type = S_ISDIR(st->st_mode) ? "dir" : S_ISREG(st->st_mode) ? "file" : S_ISLNK(st->st_mode) ? "link" : "other";
        fprintf(f, " type=%s mode=%04o uid=%u gid=%u", type, (unsigned)(st->st_mode & 07777), (unsigned)st->st_uid,
                (unsigned)st->st_gid);
        if (S_ISREG(st->st_mode)) {
                /* The content hash and xattrs come later, from the hashing threads. */
                fprintf(f, " size=%" PRIu64, (uint64_t)st->st_size);
        } else if (S_ISLNK(st->st_mode)) {
                char target[4097];
                ssize_t n = readlinkat(dfd, name, target, sizeof target - 1);
                if (n < 0)
                        r = negative_errno();
                else {
                        target[n] = 0;
                        fputs(" link=", f);
                        escape(f, target);
                }
        } else {
                if (!S_ISDIR(st->st_mode))
                        fprintf(f, " rdev=%u:%u", major(st->st_rdev), minor(st->st_rdev));
                else {
                        _cleanup_close_ int rfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        r = rfd < 0 ? negative_errno() : xattrs(f, rfd);
                }
        }
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        if (r >= 0)
                r = add(w, path, buf, S_ISREG(st->st_mode), st);
        else
                (void)mkm_err_set(w->reterr, r, "manifest: %s: %s", path, strerror(-r));
        free(buf);
        return r;
}

static int describe_entry(int dfd, const char *name, const char *path, const struct stat *st, void *userdata) {
        struct walk *w = userdata;
        struct stat copy = *st;
        if (w->clamp_epoch >= 0) {
                int r = normalize_clamp_at(dfd, name, &copy, w->clamp_epoch);
                if (r < 0)
                        return mkm_err_set(w->reterr, r, "clamping the time stamps of %s: %s", path, strerror(-r));
        }
        return describe(w, dfd, name, path, &copy);
}

/* ---- hashing the files, on a thread per CPU ---- */

struct pool {
        struct walk *w;
        int rootfd;
        atomic_size_t next;
        atomic_bool failed;
        pthread_mutex_t lock;   /* for err */
        int r;
        char err[512];
};

/* Hash file entry e (opened by its path inside the root, as the walk saw it). */
static int hash_entry(int rootfd, struct entry *e, char *err, size_t errlen) {
        int r;
        _cleanup_close_ int fd = fs_open_in_root(rootfd, e->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0,
                                                 RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
        if (fd < 0) {
                (void)snprintf(err, errlen, "manifest: %s: %s", e->path, strerror(-fd));
                return fd;
        }
        struct stat st;
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                (void)snprintf(err, errlen, "manifest: %s: %s", e->path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode) || st.st_ino != e->ino || st.st_dev != e->dev) {
                (void)snprintf(err, errlen, "manifest: %s changed while the manifest was written", e->path);
                return -ESTALE;
        }
        char hex[HASH_SHA256_HEX];
        r = hash_fd_hex(HASH_SHA256, fd, hex, NULL);
        if (r < 0) {
                (void)snprintf(err, errlen, "manifest: %s: %s", e->path, strerror(-r));
                return r;
        }
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, " sha256=%s", hex);
        r = xattrs(f, fd);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        if (r < 0) {
                free(buf);
                (void)snprintf(err, errlen, "manifest: %s: %s", e->path, strerror(-r));
                return r;
        }
        e->extra = buf;
        return 0;
}

static void *hash_worker(void *userdata) {
        struct pool *p = userdata;
        for (;;) {
                size_t i = atomic_fetch_add(&p->next, 1);
                if (i >= p->w->nfiles || atomic_load(&p->failed))
                        break;
                char err[512];
                int r = hash_entry(p->rootfd, &p->w->e[p->w->files[i]], err, sizeof err);
                if (r < 0) {
                        pthread_mutex_lock(&p->lock);
                        if (!atomic_exchange(&p->failed, true)) {
                                p->r = r;
                                memcpy(p->err, err, sizeof err);
                        }
                        pthread_mutex_unlock(&p->lock);
                }
        }
        return NULL;
}

/* Reading and hashing 200 MiB in 20k files is most of the manifest's time: spread the files
 * over the CPUs. Each thread opens its files by path inside the root and checks each is still
 * the file the walk saw. */
static int hash_files(struct walk *w, int rootfd) {
        struct pool p = { .w = w, .rootfd = rootfd };
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        size_t nt = cpus > 1 ? (size_t)cpus : 1, started = 0;
        if (nt > 8)
                nt = 8;
        if (nt > w->nfiles / 64 + 1)
                nt = w->nfiles / 64 + 1;        /* a small tree is not worth the threads */
        pthread_t th[8];
        if (pthread_mutex_init(&p.lock, NULL) != 0)
                return -ENOMEM;
        for (; started + 1 < nt; started++)
                if (thread_create_nosig(&th[started], hash_worker, &p) != 0)
                        break;
        hash_worker(&p);        /* this thread hashes too */
        for (size_t t = 0; t < started; t++)
                pthread_join(th[t], NULL);
        pthread_mutex_destroy(&p.lock);
        if (atomic_load(&p.failed))
                return mkm_err_set(w->reterr, p.r, "%s", p.err);
        return 0;
}

static int cmp_entry(const void *a, const void *b) {
        return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

int manifest_build(struct mkm_ctx *ctx, int rootfd, int64_t clamp_epoch, char **ret_text,
                   char ret_digest[MANIFEST_DIGEST_LEN], struct mkm_err *reterr) {
        struct walk w = { .ctx = ctx, .reterr = reterr, .clamp_epoch = clamp_epoch };
        struct stat st;
        int r;
        if (clamp_epoch >= 0)
                mkm_debug(ctx, "clamping time stamps to %lld", (long long)clamp_epoch);
        r = fs_walk(rootfd, MAX_DEPTH, describe_entry, &w);
        if (r == -ELOOP)
                r = mkm_err_set(reterr, r, "manifest: the tree is deeper than %d levels", MAX_DEPTH);
        else if (r < 0 && reterr && !reterr->msg[0])
                r = mkm_err_set(reterr, r, "manifest: walking the tree: %s", strerror(-r));
        /* The root last: the walk is post-order, and nothing below changes it any more. */
        if (r >= 0 && fstat(rootfd, &st) < 0)
                r = mkm_err_set(reterr, negative_errno(), "manifest: the root: %m");
        if (r >= 0 && clamp_epoch >= 0 && (r = normalize_clamp_at(rootfd, ".", &st, clamp_epoch)) < 0)
                mkm_err_set(reterr, r, "clamping the time stamp of the root: %s", strerror(-r));
        if (r >= 0)
                r = describe(&w, rootfd, ".", ".", &st);
        if (r >= 0)
                r = hash_files(&w, rootfd);
        char *text = NULL;
        size_t len = 0;
        if (r >= 0) {
                qsort(w.e, w.n, sizeof *w.e, cmp_entry);
                FILE *f = open_memstream(&text, &len);
                if (!f)
                        r = -ENOMEM;
                else {
                        for (size_t i = 0; i < w.n; i++) {
                                escape(f, w.e[i].path);
                                fputs(w.e[i].line, f);
                                if (w.e[i].extra)
                                        fputs(w.e[i].extra, f);
                                fprintf(f, " time=%lld\n", (long long)w.e[i].mtime);
                        }
                        if (fclose(f) != 0)
                                r = -ENOMEM;
                }
        }
        for (size_t i = 0; i < w.n; i++) {
                free(w.e[i].path);
                free(w.e[i].line);
                free(w.e[i].extra);
        }
        free(w.e);
        free(w.files);
        if (r < 0) {
                free(text);
                return r;
        }
        char hex[HASH_SHA256_HEX];
        r = hash_buf_hex(HASH_SHA256, text, len, hex);
        if (r < 0) {
                free(text);
                return r;
        }
        (void)snprintf(ret_digest, MANIFEST_DIGEST_LEN, "sha256:%s", hex);
        mkm_debug(ctx, "manifest: %zu entries, %s", w.n, ret_digest);
        *ret_text = text;
        return 0;
}
