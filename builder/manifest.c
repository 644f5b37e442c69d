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

/* One entry of the walk: what the manifest shows, and a file's identity at walk time, checked
 * when it is hashed. */
struct item {
        struct manifest_entry e;
        ino_t ino;
        dev_t dev;
};

struct walk {
        struct mkm_ctx *ctx;
        struct mkm_err *reterr;
        int64_t clamp_epoch;    /* -1: do not clamp */
        struct item *it;
        size_t n, cap;
        size_t *files;          /* indices of regular files in it, hashed by the threads */
        size_t nfiles, capfiles;
};

static const char *const type_names[_MANIFEST_TYPE_MAX] = {
        [MANIFEST_DIR] = "dir",
        [MANIFEST_FILE] = "file",
        [MANIFEST_LINK] = "link",
        [MANIFEST_OTHER] = "other",
};

const char *manifest_type_to_string(enum manifest_type t) {
        return t >= 0 && t < _MANIFEST_TYPE_MAX ? type_names[t] : NULL;
}

static bool must_escape(unsigned char c) {
        return c <= 0x20 || c >= 0x7f || c == '\\';
}

void manifest_escape(FILE *f, const char *s) {
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (must_escape(*p))
                        fprintf(f, "\\%03o", *p);
                else
                        fputc(*p, f);
}

char *manifest_escape_str(const char *s) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        manifest_escape(f, s);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

void manifest_write_xattr(FILE *f, const char *name, const void *value, size_t len) {
        fputs(" xattr.", f);
        manifest_escape(f, name);
        fputc('=', f);
        for (size_t i = 0; i < len; i++)
                fprintf(f, "%02x", ((const unsigned char *)value)[i]);
}

/* The xattrs of fd that are content (normalize_xattr_is_content()) as " xattr.NAME=HEX ..."
 * (sorted by name) in *ret, NULL when it has none. */
static int xattrs(int fd, char **ret) {
        char list[XATTR_LIST_MAX_BYTES];
        *ret = NULL;
        ssize_t n = flistxattr(fd, list, sizeof list);
        if (n < 0)
                return errno == ENOTSUP ? 0 : negative_errno();
        if (n == 0)
                return 0;
        /* Sorted by name for a stable line. */
        _cleanup_strv_free_ char **names = calloc(1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1)
                if (normalize_xattr_is_content(list + i) && strv_push(&names, list + i) < 0)
                        return -ENOMEM;
        strv_sort(names);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        int r = 0;
        for (char **x = names; *x; x++) {
                unsigned char val[XATTR_LIST_MAX_BYTES];
                ssize_t v = fgetxattr(fd, *x, val, sizeof val);
                if (v < 0) {
                        r = negative_errno();
                        break;
                }
                manifest_write_xattr(f, *x, val, (size_t)v);
        }
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0 || len == 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        return 0;
}

static void entry_done(struct manifest_entry *e) {
        free(e->path);
        free(e->link);
        free(e->xattrs);
}

/* Open for reading only, without updating the access time where we may (O_NOATIME needs the
 * file's owner or CAP_FOWNER): a verifying walk must not write to the tree at all. */
static int open_noatime(int dfd, const char *name, int flags) {
        int fd = openat(dfd, name, flags | O_NOATIME | O_CLOEXEC);
        if (fd < 0 && errno == EPERM)
                fd = openat(dfd, name, flags | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

/* Describe the entry name in directory dfd (path is its "./..." name). */
static int describe(struct walk *w, int dfd, const char *name, const char *path, const struct stat *st) {
        struct manifest_entry e = {
                .type = S_ISDIR(st->st_mode)   ? MANIFEST_DIR
                        : S_ISREG(st->st_mode) ? MANIFEST_FILE
                        : S_ISLNK(st->st_mode) ? MANIFEST_LINK
                                               : MANIFEST_OTHER,
                .mode = (unsigned)(st->st_mode & 07777),
                .uid = (unsigned)st->st_uid,
                .gid = (unsigned)st->st_gid,
                .time = (int64_t)st->st_mtim.tv_sec,
        };
        int r = 0;
        switch (e.type) {
        case MANIFEST_FILE:
                /* The content hash and xattrs come later, from the hashing threads. */
                e.size = (uint64_t)st->st_size;
                break;
        case MANIFEST_LINK: {
                char target[4097];
                ssize_t n = readlinkat(dfd, name, target, sizeof target - 1);
                if (n < 0)
                        r = negative_errno();
                else {
                        target[n] = 0;
                        if (!(e.link = strdup(target)))
                                r = -ENOMEM;
                }
                break;
        }
        case MANIFEST_DIR: {
                int rfd = open_noatime(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
                r = rfd < 0 ? rfd : xattrs(rfd, &e.xattrs);
                if (rfd >= 0)
                        (void)close(rfd);
                break;
        }
        default:
                e.rdev_major = major(st->st_rdev);
                e.rdev_minor = minor(st->st_rdev);
                break;
        }
        bool file = e.type == MANIFEST_FILE;
        if (r >= 0 && (mkm_grow((void **)&w->it, &w->cap, w->n, sizeof *w->it, 4096) < 0 ||
                       (file && mkm_grow((void **)&w->files, &w->capfiles, w->nfiles, sizeof *w->files, 4096) < 0) ||
                       !(e.path = strdup(path))))
                r = -ENOMEM;
        if (r < 0) {
                entry_done(&e);
                if (r != -ENOMEM)
                        (void)mkm_err_set(w->reterr, r, "manifest: %s: %s", path, mkm_strerror(r));
                return r;
        }
        if (file)
                w->files[w->nfiles++] = w->n;
        w->it[w->n++] = (struct item){ .e = e, .ino = st->st_ino, .dev = st->st_dev };
        return 0;
}

static int describe_entry(int dfd, const char *name, const char *path, const struct stat *st, void *userdata) {
        struct walk *w = userdata;
        struct stat copy = *st;
        if (w->clamp_epoch >= 0) {
                int r = normalize_clamp_at(dfd, name, &copy, w->clamp_epoch);
                if (r < 0)
                        return mkm_err_set(w->reterr, r, "clamping the time stamps of %s: %s", path, mkm_strerror(r));
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

/* Hash file item (opened by its path inside the root, as the walk saw it). */
static int hash_entry(int rootfd, struct item *item, char *err, size_t errlen) {
        struct manifest_entry *e = &item->e;
        int r;
        const int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
        const uint64_t resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV;
        _cleanup_close_ int fd = fs_open_in_root(rootfd, e->path, flags | O_NOATIME, 0, resolve);
        if (fd == -EPERM)       /* O_NOATIME needs the owner or CAP_FOWNER */
                fd = fs_open_in_root(rootfd, e->path, flags, 0, resolve);
        if (fd < 0) {
                (void)snprintf(err, errlen, "manifest: %s: %s", e->path, mkm_strerror(fd));
                return fd;
        }
        struct stat st;
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                (void)snprintf(err, errlen, "manifest: %s: %s", e->path, mkm_strerror(r));
                return r;
        }
        if (!S_ISREG(st.st_mode) || st.st_ino != item->ino || st.st_dev != item->dev) {
                (void)snprintf(err, errlen, "manifest: %s changed while the manifest was written", e->path);
                return -ESTALE;
        }
        r = hash_fd_hex(HASH_SHA256, fd, e->sha256, NULL);
        if (r >= 0)
                r = xattrs(fd, &e->xattrs);
        if (r < 0) {
                (void)snprintf(err, errlen, "manifest: %s: %s", e->path, mkm_strerror(r));
                return r;
        }
        return 0;
}

static void *hash_worker(void *userdata) {
        struct pool *p = userdata;
        for (;;) {
                size_t i = atomic_fetch_add(&p->next, 1);
                if (i >= p->w->nfiles || atomic_load(&p->failed))
                        break;
                char err[512];
                int r = hash_entry(p->rootfd, &p->w->it[p->w->files[i]], err, sizeof err);
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

static int cmp_item(const void *a, const void *b) {
        return strcmp(((const struct item *)a)->e.path, ((const struct item *)b)->e.path);
}

int manifest_walk(struct mkm_ctx *ctx, int rootfd, int64_t clamp_epoch, manifest_entry_fn fn, void *userdata,
                  struct mkm_err *reterr) {
        struct walk w = { .ctx = ctx, .reterr = reterr, .clamp_epoch = clamp_epoch };
        struct stat st;
        int r;
        if (clamp_epoch >= 0)
                mkm_debug(ctx, "clamping time stamps to %lld", (long long)clamp_epoch);
        r = fs_walk(rootfd, MAX_DEPTH, describe_entry, &w);
        if (r == -ELOOP)
                r = mkm_err_set(reterr, r, "manifest: the tree is deeper than %d levels", MAX_DEPTH);
        else if (r < 0 && reterr && !reterr->msg[0])
                r = mkm_err_set(reterr, r, "manifest: walking the tree: %s", mkm_strerror(r));
        /* The root last: the walk is post-order, and nothing below changes it any more. */
        if (r >= 0 && fstat(rootfd, &st) < 0)
                r = mkm_err_set(reterr, negative_errno(), "manifest: the root: %m");
        if (r >= 0 && clamp_epoch >= 0 && (r = normalize_clamp_at(rootfd, ".", &st, clamp_epoch)) < 0)
                mkm_err_set(reterr, r, "clamping the time stamp of the root: %s", mkm_strerror(r));
        if (r >= 0)
                r = describe(&w, rootfd, ".", ".", &st);
        if (r >= 0)
                r = hash_files(&w, rootfd);
        if (r >= 0) {
                qsort(w.it, w.n, sizeof *w.it, cmp_item);
                for (size_t i = 0; i < w.n && r >= 0; i++)
                        r = fn(&w.it[i].e, userdata);
        }
        if (r >= 0)
                mkm_debug(ctx, "manifest: %zu entries walked", w.n);
        for (size_t i = 0; i < w.n; i++)
                entry_done(&w.it[i].e);
        free(w.it);
        free(w.files);
        return r;
}

static void format_entry(FILE *f, const struct manifest_entry *e) {
        manifest_escape(f, e->path);
        fprintf(f, " type=%s mode=%04o uid=%u gid=%u", type_names[e->type], e->mode, e->uid, e->gid);
        switch (e->type) {
        case MANIFEST_FILE:
                fprintf(f, " size=%" PRIu64 " sha256=%s", e->size, e->sha256);
                break;
        case MANIFEST_LINK:
                fputs(" link=", f);
                manifest_escape(f, e->link);
                break;
        case MANIFEST_OTHER:
                fprintf(f, " rdev=%u:%u", e->rdev_major, e->rdev_minor);
                break;
        default:
                break;
        }
        if (e->xattrs)
                fputs(e->xattrs, f);
        fprintf(f, " time=%lld\n", (long long)e->time);
}

/* A manifest's digest: "sha256:" and the hash of its text (manifest_build, manifest_format). */
static int text_digest(const char *text, size_t len, char ret_digest[MANIFEST_DIGEST_LEN]) {
        char hex[HASH_SHA256_HEX];
        int r = hash_buf_hex(HASH_SHA256, text, len, hex);
        if (r < 0)
                return r;
        (void)snprintf(ret_digest, MANIFEST_DIGEST_LEN, "sha256:%s", hex);
        return 0;
}

static int cmp_entry_path(const void *a, const void *b) {
        return strcmp(((const struct manifest_entry *)a)->path, ((const struct manifest_entry *)b)->path);
}

int manifest_format(struct manifest_entry *e, size_t n, char **ret_text, char ret_digest[MANIFEST_DIGEST_LEN]) {
        qsort(e, n, sizeof *e, cmp_entry_path);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                format_entry(f, &e[i]);
        if (fclose(f) != 0)
                return -ENOMEM;
        int r = text_digest(text, len, ret_digest);
        if (r < 0)
                return r;
        if (ret_text)
                *ret_text = TAKE_PTR(text);
        return 0;
}

static int format_cb(const struct manifest_entry *e, void *userdata) {
        format_entry(userdata, e);
        return 0;
}

int manifest_build(struct mkm_ctx *ctx, int rootfd, int64_t clamp_epoch, char **ret_text,
                   char ret_digest[MANIFEST_DIGEST_LEN], struct mkm_err *reterr) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        int r = manifest_walk(ctx, rootfd, clamp_epoch, format_cb, f, reterr);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0)
                return r;
        r = text_digest(text, len, ret_digest);
        if (r < 0)
                return r;
        mkm_debug(ctx, "manifest: %s", ret_digest);
        *ret_text = TAKE_PTR(text);
        return 0;
}

/* ---- reading a manifest back ---- */

void manifest_entries_free(struct manifest_entry *e, size_t n) {
        for (size_t i = 0; i < n; i++)
                entry_done(&e[i]);
        free(e);
}

/* Unescape the token [s, end) (\ooo as the writer escapes) into a new string. NULL with *what set
 * when it is not as the writer would have written it. */
static char *unescape(const char *s, const char *end, const char **what) {
        const char *why = NULL;
        char *out = malloc((size_t)(end - s) + 1), *o = out;
        *what = NULL;
        if (!out)
                return NULL;
        for (const char *p = s; p < end && !why; p++) {
                unsigned char c = (unsigned char)*p;
                if (c == '\\') {
                        if (end - p < 4 || p[1] < '0' || p[1] > '3' || p[2] < '0' || p[2] > '7' || p[3] < '0' ||
                            p[3] > '7')
                                why = "a backslash not followed by three octal digits";
                        else if (!(c = (unsigned char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'))))
                                why = "an escaped NUL byte";
                        p += 3;
                } else if (must_escape(c))
                        why = "a byte that should have been escaped as \\ooo";
                *o++ = (char)c;
        }
        if (why) {
                free(out);
                *what = why;
                return NULL;
        }
        *o = 0;
        return out;
}

/* 1 when the token [t, end) is "xattr.NAME=HEX" with a NAME that is not content, 0 when it is
 * anything else (malformed ones too: manifest_parse() judges them). */
static int is_host_xattr(const char *t, const char *end) {
        if (end - t <= 6 || memcmp(t, "xattr.", 6) != 0)
                return 0;
        const char *eq = memchr(t, '=', (size_t)(end - t)), *what = NULL;
        if (!eq || eq == t + 6)
                return 0;
        _cleanup_free_ char *name = unescape(t + 6, eq, &what);
        if (!name)
                return what ? 0 : -ENOMEM;
        return !normalize_xattr_is_content(name);
}

int manifest_strip_host_xattrs(const char *text, char **ret_text) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        int r = 0, dropped = 0;
        for (const char *s = text; *s && r >= 0;) {
                const char *nl = strchr(s, '\n');
                const char *end = nl ? nl : s + strlen(s);
                const char *sp = memchr(s, ' ', (size_t)(end - s));
                const char *p = sp ? sp : end;
                fwrite(s, 1, (size_t)(p - s), f);       /* the path */
                while (p < end && r >= 0) {
                        const char *t = p + 1, *te = memchr(t, ' ', (size_t)(end - t));
                        if (!te)
                                te = end;
                        r = is_host_xattr(t, te);
                        if (r == 0)
                                fwrite(p, 1, (size_t)(te - p), f);      /* with its space */
                        else if (r > 0)
                                dropped = 1;
                        p = te;
                }
                if (nl)
                        fputc('\n', f);
                s = nl ? nl + 1 : end;
        }
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret_text = buf;
        return dropped;
}

static bool parse_u64(const char *s, const char *end, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;
        if (s == end || (end - s > 1 && *s == '0'))
                return false;
        for (const char *p = s; p < end; p++) {
                if (*p < '0' || *p > '9' || v > (max - (uint64_t)(*p - '0')) / 10)
                        return false;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        *ret = v;
        return true;
}

static bool is_lower_hex(const char *s, const char *end) {
        for (const char *p = s; p < end; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

/* "." or "./a/b" without empty, "." or ".." components and without a trailing slash. */
static bool path_is_valid(const char *p) {
        if (strcmp(p, ".") == 0)
                return true;
        if (strncmp(p, "./", 2) != 0)
                return false;
        for (const char *c = p + 2;;) {
                const char *slash = strchr(c, '/');
                size_t n = slash ? (size_t)(slash - c) : strlen(c);
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                if (!slash)
                        return true;
                c = slash + 1;
        }
}

enum {
        SEEN_TYPE = 1 << 0,
        SEEN_MODE = 1 << 1,
        SEEN_UID = 1 << 2,
        SEEN_GID = 1 << 3,
        SEEN_SIZE = 1 << 4,
        SEEN_SHA256 = 1 << 5,
        SEEN_LINK = 1 << 6,
        SEEN_RDEV = 1 << 7,
        SEEN_TIME = 1 << 8,
        SEEN_XATTR = 1 << 9,
};

/* Parse one line [s, end) into e (zeroed by the caller). On failure reterr says "line N: ...". */
static int parse_line(const char *s, const char *end, unsigned lineno, struct manifest_entry *e,
                      struct mkm_err *reterr) {
        const char *what = NULL;
        e->line = lineno;
        e->type = _MANIFEST_TYPE_INVALID;
        if (s == end)
                return mkm_err_set(reterr, -MKM_E_PARSE, "line %u: empty line (expected PATH type=... )", lineno);
        const char *sp = memchr(s, ' ', (size_t)(end - s));
        const char *tok_end = sp ? sp : end;
        e->path = unescape(s, tok_end, &what);
        if (!e->path)
                return what ? mkm_err_set(reterr, -MKM_E_PARSE, "line %u: the path has %s", lineno, what) : -ENOMEM;
        if (!path_is_valid(e->path))
                return mkm_err_set(reterr, -MKM_E_PARSE, "line %u: '%.*s': expected a path '.' or './...'", lineno,
                                   (int)(tok_end - s), s);
        unsigned seen = 0;
        _cleanup_strv_free_ char **xnames = NULL;
        char *xbuf = NULL;
        size_t xlen = 0;
        FILE *xf = NULL;
        int r = 0;
        for (const char *p = tok_end; p < end && r >= 0;) {
                p++;    /* the space */
                const char *t = p, *te = memchr(t, ' ', (size_t)(end - t));
                if (!te)
                        te = end;
                p = te;
                const char *eq = memchr(t, '=', (size_t)(te - t));
                if (t == te || !eq) {
                        r = mkm_err_set(reterr, -MKM_E_PARSE, "line %u: '%.*s': expected KEY=VALUE", lineno,
                                        (int)(te - t), t);
                        break;
                }
                const char *v = eq + 1;
                size_t klen = (size_t)(eq - t);
                what = NULL;
                unsigned bit = 0;
                bool ok = true;
                uint64_t n = 0;
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(t, k, klen) == 0)
                if (KEY("type")) {
                        bit = SEEN_TYPE;
                        ok = false;
                        for (int i = 0; i < _MANIFEST_TYPE_MAX; i++)
                                if ((size_t)(te - v) == strlen(type_names[i]) && memcmp(v, type_names[i], (size_t)(te - v)) == 0) {
                                        e->type = (enum manifest_type)i;
                                        ok = true;
                                }
                        what = "dir, file, link or other";
                } else if (KEY("mode")) {
                        bit = SEEN_MODE;
                        ok = te - v == 4;
                        for (const char *c = v; ok && c < te; c++)
                                ok = *c >= '0' && *c <= '7';
                        if (ok)
                                e->mode = (unsigned)strtoul(v, NULL, 8);
                        what = "four octal digits";
                } else if (KEY("uid") || KEY("gid")) {
                        bit = t[0] == 'u' ? SEEN_UID : SEEN_GID;
                        ok = parse_u64(v, te, UINT32_MAX, &n);
                        *(t[0] == 'u' ? &e->uid : &e->gid) = (unsigned)n;
                        what = "a decimal number";
                } else if (KEY("size")) {
                        bit = SEEN_SIZE;
                        ok = parse_u64(v, te, UINT64_MAX, &e->size);
                        what = "a decimal number";
                } else if (KEY("sha256")) {
                        bit = SEEN_SHA256;
                        ok = te - v == 64 && is_lower_hex(v, te);
                        if (ok)
                                memcpy(e->sha256, v, 64);
                        what = "64 lower-case hex digits";
                } else if (KEY("link")) {
                        bit = SEEN_LINK;
                        free(e->link);  /* a second link= is refused below; the first must not leak */
                        e->link = unescape(v, te, &what);
                        if (!e->link && !what)
                                r = -ENOMEM;
                        ok = e->link != NULL;
                } else if (KEY("rdev")) {
                        bit = SEEN_RDEV;
                        const char *colon = memchr(v, ':', (size_t)(te - v));
                        uint64_t ma = 0, mi = 0;
                        ok = colon && parse_u64(v, colon, UINT32_MAX, &ma) && parse_u64(colon + 1, te, UINT32_MAX, &mi);
                        e->rdev_major = (unsigned)ma;
                        e->rdev_minor = (unsigned)mi;
                        what = "MAJOR:MINOR";
                } else if (KEY("time")) {
                        bit = SEEN_TIME;
                        bool neg = v < te && *v == '-';
                        ok = parse_u64(v + neg, te, (uint64_t)INT64_MAX, &n) && !(neg && n == 0);
                        e->time = neg ? -(int64_t)n : (int64_t)n;
                        what = "a number of seconds";
                } else if (klen > 6 && memcmp(t, "xattr.", 6) == 0) {
                        bit = SEEN_XATTR;
                        _cleanup_free_ char *name = unescape(t + 6, eq, &what);
                        if (!name && !what)
                                r = -ENOMEM;
                        ok = name && (te - v) % 2 == 0 && is_lower_hex(v, te);
                        if (name && !ok)
                                what = "an even number of lower-case hex digits";
                        if (ok && strv_contains(xnames, name)) {
                                /* The same name twice would make a comparison ambiguous. */
                                ok = false;
                                what = "each attribute once";
                        }
                        if (ok && (strv_push(&xnames, name) < 0 || (!xf && !(xf = open_memstream(&xbuf, &xlen)))))
                                r = -ENOMEM;
                        if (ok && xf)
                                fprintf(xf, " %.*s", (int)(te - t), t);
                } else {
                        r = mkm_err_set(reterr, -MKM_E_PARSE,
                                        "line %u: unknown key '%.*s' (expected type, mode, uid, gid, size, sha256, "
                                        "link, rdev, xattr.NAME or time)",
                                        lineno, (int)klen, t);
                        break;
                }
#undef KEY
                if (r < 0)
                        break;
                if (!ok) {
                        r = mkm_err_set(reterr, -MKM_E_PARSE, "line %u: %.*s: expected %s", lineno, (int)(te - t), t,
                                        what ? what : "a valid value");
                        break;
                }
                if ((seen & bit) && bit != SEEN_XATTR) {
                        r = mkm_err_set(reterr, -MKM_E_PARSE, "line %u: '%.*s' given twice", lineno, (int)klen, t);
                        break;
                }
                seen |= bit;
        }
        if (xf && fclose(xf) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(xbuf);
                return r;
        }
        e->xattrs = xbuf;
        static const struct {
                unsigned bit;
                const char *key;
        } keys[] = {
                { SEEN_TYPE, "type" }, { SEEN_MODE, "mode" },     { SEEN_UID, "uid" },   { SEEN_GID, "gid" },
                { SEEN_TIME, "time" }, { SEEN_SIZE, "size" },     { SEEN_SHA256, "sha256" },
                { SEEN_LINK, "link" }, { SEEN_RDEV, "rdev" },     { SEEN_XATTR, "xattr.NAME" },
        };
        unsigned need = SEEN_TYPE | SEEN_MODE | SEEN_UID | SEEN_GID | SEEN_TIME, allow = need;
        switch (e->type) {
        case MANIFEST_FILE:
                need |= SEEN_SIZE | SEEN_SHA256;
                allow = need | SEEN_XATTR;
                break;
        case MANIFEST_DIR:
                allow |= SEEN_XATTR;
                break;
        case MANIFEST_LINK:
                need |= SEEN_LINK;
                allow = need;
                break;
        case MANIFEST_OTHER:
                need |= SEEN_RDEV;
                allow = need;
                break;
        default:
                break;
        }
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if ((need & keys[i].bit) && !(seen & keys[i].bit))
                        return mkm_err_set(reterr, -MKM_E_PARSE, "line %u: %s has no %s=", lineno,
                                           e->type == _MANIFEST_TYPE_INVALID ? "the entry" : type_names[e->type],
                                           keys[i].key);
                if (!(allow & keys[i].bit) && (seen & keys[i].bit))
                        return mkm_err_set(reterr, -MKM_E_PARSE, "line %u: %s= does not belong to type=%s", lineno,
                                           keys[i].key, type_names[e->type]);
        }
        return 0;
}

static int cmp_entry_line(const void *a, const void *b) {
        const struct manifest_entry *x = a, *y = b;
        int c = strcmp(x->path, y->path);
        return c ? c : (x->line > y->line) - (x->line < y->line);
}

int manifest_parse(const char *text, struct manifest_entry **ret, size_t *ret_n, struct mkm_err *reterr) {
        struct manifest_entry *v = NULL;
        size_t n = 0, cap = 0;
        unsigned lineno = 0;
        int r = 0;
        for (const char *s = text; *s && r >= 0;) {
                const char *nl = strchr(s, '\n');
                const char *end = nl ? nl : s + strlen(s);
                lineno++;
                if ((r = mkm_grow((void **)&v, &cap, n, sizeof *v, 1024)) < 0)
                        break;
                v[n] = (struct manifest_entry){};
                r = parse_line(s, end, lineno, &v[n], reterr);
                n++;
                s = nl ? nl + 1 : end;
        }
        if (r >= 0 && n > 0) {
                qsort(v, n, sizeof *v, cmp_entry_line);
                for (size_t i = 1; i < n && r >= 0; i++)
                        if (strcmp(v[i - 1].path, v[i].path) == 0) {
                                _cleanup_free_ char *esc = manifest_escape_str(v[i].path);
                                r = mkm_err_set(reterr, -MKM_E_PARSE, "line %u: '%s' is listed twice (also on line %u)",
                                                v[i].line, esc ? esc : "?", v[i - 1].line);
                        }
        }
        if (r >= 0 && n == 0)
                r = mkm_err_set(reterr, -MKM_E_PARSE, "the manifest is empty (expected lines 'PATH type=... time=T')");
        else if (r >= 0 && strcmp(v[0].path, ".") != 0)
                r = mkm_err_set(reterr, -MKM_E_PARSE, "the manifest has no entry '.' (the root)");
        if (r < 0) {
                manifest_entries_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}
