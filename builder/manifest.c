/* SPDX-License-Identifier: MIT */
/* The machine's manifest and digest (see manifest.h). */
#include "manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include "util/fs.h"
#include "util/hash.h"
#include "util/strv.h"

#define MAX_DEPTH 256
#define XATTR_LIST_MAX_BYTES 65536

struct entry {
        char *path;     /* "./a/b", raw bytes */
        char *line;     /* the formatted line without the path */
};

struct walk {
        struct mkm_ctx *ctx;
        struct mkm_err *reterr;
        struct entry *e;
        size_t n, cap;
};

static void escape(FILE *f, const char *s) {
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p <= 0x20 || *p >= 0x7f || *p == '\\')
                        fprintf(f, "\\%03o", *p);
                else
                        fputc(*p, f);
}

static int xattrs(FILE *f, int fd, const char *name_for_path) {
        char list[XATTR_LIST_MAX_BYTES];
        ssize_t n = name_for_path ? llistxattr(name_for_path, list, sizeof list) : flistxattr(fd, list, sizeof list);
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
                ssize_t v = name_for_path ? lgetxattr(name_for_path, *x, val, sizeof val) : fgetxattr(fd, *x, val, sizeof val);
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

static int add(struct walk *w, const char *path, const char *line) {
        if (w->n == w->cap) {
                size_t nc = w->cap ? w->cap * 2 : 4096;
                struct entry *ne = mkm_reallocarray(w->e, nc, sizeof *ne);
                if (!ne)
                        return -ENOMEM;
                w->e = ne;
                w->cap = nc;
        }
        char *p = strdup(path), *l = strdup(line);
        if (!p || !l) {
                free(p);
                free(l);
                return -ENOMEM;
        }
        w->e[w->n++] = (struct entry){ .path = p, .line = l };
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
                char hex[HASH_SHA256_HEX];
                _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        r = negative_errno();
                else
                        r = hash_fd_hex(HASH_SHA256, fd, hex, NULL);
                if (r >= 0) {
                        fprintf(f, " size=%" PRIu64 " sha256=%s", (uint64_t)st->st_size, hex);
                        r = xattrs(f, fd, NULL);
                }
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
                _cleanup_close_ int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        r = negative_errno();
                else if (S_ISDIR(st->st_mode)) {
                        _cleanup_close_ int rfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        r = rfd < 0 ? negative_errno() : xattrs(f, rfd, NULL);
                }
        }
        fprintf(f, " time=%lld", (long long)st->st_mtim.tv_sec);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        if (r >= 0)
                r = add(w, path, buf);
        else
                (void)mkm_err_set(w->reterr, r, "manifest: %s: %s", path, strerror(-r));
        free(buf);
        return r;
}

static int describe_entry(int dfd, const char *name, const char *path, const struct stat *st, void *userdata) {
        return describe(userdata, dfd, name, path, st);
}

static int cmp_entry(const void *a, const void *b) {
        return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

int manifest_build(struct mkm_ctx *ctx, int rootfd, char **ret_text, char ret_digest[MANIFEST_DIGEST_LEN],
                   struct mkm_err *reterr) {
        struct walk w = { .ctx = ctx, .reterr = reterr };
        struct stat st;
        int r;
        if (fstat(rootfd, &st) < 0)
                return negative_errno();
        r = describe(&w, rootfd, ".", ".", &st);
        if (r >= 0) {
                r = fs_walk(rootfd, MAX_DEPTH, describe_entry, &w);
                if (r == -ELOOP)
                        r = mkm_err_set(reterr, r, "manifest: the tree is deeper than %d levels", MAX_DEPTH);
        }
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
                                fputc('\n', f);
                        }
                        if (fclose(f) != 0)
                                r = -ENOMEM;
                }
        }
        for (size_t i = 0; i < w.n; i++) {
                free(w.e[i].path);
                free(w.e[i].line);
        }
        free(w.e);
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
