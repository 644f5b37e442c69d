/* SPDX-License-Identifier: MIT */
/* mkmachine export: a reproducible tarball of a deployed machine, its settings file and
 * SHA256SUMS (+ SHA256SUMS.gpg) in the layout systemd-pull fetches (see export.h). */
#include "export.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gpgme.h>
#include <inttypes.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ctx.h"
#include "manifest.h"
#include "normalize.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/hashmap.h"
#include "util/strv.h"

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

#define MAX_DEPTH 256
#define XATTR_MAX 65536
#define SUMS_MAX (1u << 20)             /* systemd-pull caps SHA256SUMS at 1 MiB too */
#define NSPAWN_MAX (1u << 20)
#define STATE_MAX (256u << 20)

static const char *const compress_names[_EXPORT_COMPRESS_MAX] = {
        [EXPORT_XZ] = "xz",
        [EXPORT_ZSTD] = "zstd",
        [EXPORT_GZIP] = "gzip",
};
static const char *const compress_suffixes[_EXPORT_COMPRESS_MAX] = {
        [EXPORT_XZ] = ".tar.xz",
        [EXPORT_ZSTD] = ".tar.zst",
        [EXPORT_GZIP] = ".tar.gz",
};

enum export_compress export_compress_from_string(const char *s) {
        for (int i = 0; s && i < _EXPORT_COMPRESS_MAX; i++)
                if (strcmp(s, compress_names[i]) == 0)
                        return (enum export_compress)i;
        return _EXPORT_COMPRESS_INVALID;
}

const char *export_compress_suffix(enum export_compress c) {
        return c >= 0 && c < _EXPORT_COMPRESS_MAX ? compress_suffixes[c] : NULL;
}

char *export_name_from_file(const char *path) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        static const char *const extra[] = { ".tar.xz", ".tar.zst", ".tar.gz", ".tgz", ".tar.bz2", ".tar" };
        size_t n = strlen(base);
        for (size_t i = 0; i < ELEMENTSOF(extra); i++) {
                size_t l = strlen(extra[i]);
                if (n > l && strcmp(base + n - l, extra[i]) == 0)
                        return strndup(base, n - l);
        }
        return NULL;
}

/* ---- the tar writer ---- */

struct tw {
        struct mkm_ctx *ctx;
        struct archive *a;
        struct archive_entry *e;        /* reused for every entry (archive_entry_clear) */
        int64_t clamp;
        dev_t dev;
        struct hashmap *links;          /* "DEV:INO" of files with st_nlink > 1 -> struct first_link */
        struct manifest_entry *ents;    /* what was archived, as the manifest describes it */
        size_t n_ents, cap_ents;
        unsigned sockets;               /* sockets left out */
        struct mkm_err *reterr;
};

/* A hard-linked file's first path, and what its manifest entry says of the content: the later
 * paths are links to it in the archive and have the same content in the manifest. */
struct first_link {
        char *path;
        char sha256[65];
        char *xattrs;
};

static int ar_error(struct tw *w, const char *path) {
        return mkm_err_set(w->reterr, -MKM_E_ARCHIVE, "export: %s: %s", path, archive_error_string(w->a));
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The extended attributes of fd that are content (normalize_xattr_is_content(), as the manifest
 * lists them), sorted by name (listxattr's order depends on the file system). A host's labels
 * (security.selinux, trusted.*) stay out: the importer would not apply them anyway. */
static int add_xattrs(struct tw *w, int fd, const char *path, FILE *mx) {
        char list[XATTR_MAX];
        ssize_t n = flistxattr(fd, list, sizeof list);
        if (n < 0)
                return errno == ENOTSUP ? 0 : mkm_err_set(w->reterr, negative_errno(), "export: %s: %m", path);
        _cleanup_strv_free_ char **names = calloc(1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1)
                if (normalize_xattr_is_content(list + i) && strv_push(&names, list + i) < 0)
                        return -ENOMEM;
        qsort(names, strv_length(names), sizeof *names, cmp_str);
        for (char **x = names; *x; x++) {
                static unsigned char val[XATTR_MAX];    /* the walk is single-threaded */
                ssize_t v = fgetxattr(fd, *x, val, sizeof val);
                if (v < 0)
                        return mkm_err_set(w->reterr, negative_errno(), "export: %s: xattr %s: %m", path, *x);
                archive_entry_xattr_add_entry(w->e, *x, val, (size_t)v);
                /* and the same bytes into the entry's manifest line */
                manifest_write_xattr(mx, *x, val, (size_t)v);
        }
        return 0;
}

/* Open a regular file for reading without changing its atime (root may; others fall back). */
static int open_noatime(int dfd, const char *name) {
        int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | O_NOATIME);
        if (fd < 0 && errno == EPERM)
                fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

static int write_data(struct tw *w, int fd, uint64_t size, const char *path, struct hash_ctx *h) {
        static char buf[1 << 16];
        uint64_t done = 0;
        while (done < size) {
                size_t want = size - done < sizeof buf ? (size_t)(size - done) : sizeof buf;
                ssize_t n = read(fd, buf, want);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return mkm_err_set(w->reterr, negative_errno(), "export: reading %s: %m", path);
                if (n == 0)
                        return mkm_err_set(w->reterr, -ESTALE, "export: %s shrank while it was exported", path);
                if (archive_write_data(w->a, buf, (size_t)n) != n)
                        return ar_error(w, path);
                if (hash_update(h, buf, (size_t)n) < 0)
                        return -ENOMEM;
                done += (uint64_t)n;
        }
        return 0;
}

static int walk(struct tw *w, int dirfd, const char *path, unsigned depth);

/* One entry: name in dfd (NULL for the root, dfd itself), path "./..." as stored. */
static int emit(struct tw *w, int dfd, const char *name, const char *path, unsigned depth) {
        struct stat st;
        _cleanup_close_ int fd = -EBADF;
        if (!name) {
                if (fstat(dfd, &st) < 0)
                        return mkm_err_set(w->reterr, negative_errno(), "export: the root: %m");
        } else if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return mkm_err_set(w->reterr, negative_errno(), "export: %s: %m", path);
        if (S_ISSOCK(st.st_mode)) {
                mkm_warn(w->ctx, "export: %s is a socket, which tar cannot hold; skipping", path);
                w->sockets++;
                return 0;
        }
        /* Contents and metadata from the same open file: what we stat is what we read. */
        if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
                if (!name)
                        fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
                else if (S_ISREG(st.st_mode))
                        fd = open_noatime(dfd, name);
                else
                        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return mkm_err_set(w->reterr, fd < -1 ? fd : negative_errno(), "export: %s: %s", path,
                                           strerror(fd < -1 ? -fd : errno));
                struct stat now;
                if (fstat(fd, &now) < 0)
                        return negative_errno();
                if (now.st_ino != st.st_ino || now.st_dev != st.st_dev)
                        return mkm_err_set(w->reterr, -ESTALE, "export: %s changed while it was exported", path);
                st = now;
        }

        struct archive_entry *e = archive_entry_clear(w->e);
        archive_entry_set_pathname(e, path);
        archive_entry_set_mode(e, st.st_mode);
        archive_entry_set_uid(e, st.st_uid);
        archive_entry_set_gid(e, st.st_gid);
        int64_t mtime = st.st_mtim.tv_sec;
        if (w->clamp >= 0 && mtime > w->clamp)
                mtime = w->clamp;
        archive_entry_set_mtime(e, mtime, 0);
        /* Its manifest entry, from the same stat, bytes and attributes as the archive's (the
         * digest of what was archived: export_tar_fd()). */
        if (mkm_grow((void **)&w->ents, &w->cap_ents, w->n_ents, sizeof *w->ents, 1024) < 0)
                return -ENOMEM;
        struct manifest_entry *me = &w->ents[w->n_ents];
        *me = (struct manifest_entry){
                .type = S_ISDIR(st.st_mode)   ? MANIFEST_DIR
                        : S_ISREG(st.st_mode) ? MANIFEST_FILE
                        : S_ISLNK(st.st_mode) ? MANIFEST_LINK
                                              : MANIFEST_OTHER,
                .mode = (unsigned)(st.st_mode & 07777),
                .uid = (unsigned)st.st_uid,
                .gid = (unsigned)st.st_gid,
                .time = mtime,
                .path = strdup(name ? path : "."),
        };
        if (!me->path)
                return -ENOMEM;
        w->n_ents++;
        bool data = false;
        struct first_link *first = NULL;
        if (S_ISREG(st.st_mode)) {
                archive_entry_set_size(e, st.st_size);
                me->size = (uint64_t)st.st_size;
                data = true;
                if (st.st_nlink > 1) {
                        char key[64];
                        (void)snprintf(key, sizeof key, "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
                        first = hashmap_get(w->links, key);
                        if (first) {
                                archive_entry_set_hardlink(e, first->path);
                                archive_entry_set_size(e, 0);
                                data = false;
                                memcpy(me->sha256, first->sha256, sizeof me->sha256);
                                if (first->xattrs && !(me->xattrs = strdup(first->xattrs)))
                                        return -ENOMEM;
                        } else {
                                first = calloc(1, sizeof *first);
                                if (!first || !(first->path = strdup(path)) || hashmap_put(w->links, key, first) < 0) {
                                        if (first)
                                                free(first->path);
                                        free(first);
                                        return -ENOMEM;
                                }
                        }
                }
        } else if (S_ISLNK(st.st_mode)) {
                char target[4097];
                ssize_t n = readlinkat(dfd, name, target, sizeof target - 1);
                if (n < 0)
                        return mkm_err_set(w->reterr, negative_errno(), "export: %s: %m", path);
                target[n] = 0;
                archive_entry_set_symlink(e, target);
                if (!(me->link = strdup(target)))
                        return -ENOMEM;
        } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
                if (!S_ISFIFO(st.st_mode))
                        archive_entry_set_rdev(e, st.st_rdev);
                me->rdev_major = major(st.st_rdev);
                me->rdev_minor = minor(st.st_rdev);
        }
        /* The manifest records xattrs of directories and files; so does the archive. A hard
         * link's attributes are its first path's. */
        if (fd >= 0 && (S_ISDIR(st.st_mode) || data)) {
                char *xs = NULL;
                size_t xlen = 0;
                FILE *mx = open_memstream(&xs, &xlen);
                if (!mx)
                        return -ENOMEM;
                int r = add_xattrs(w, fd, path, mx);
                if (fclose(mx) != 0 && r >= 0)
                        r = -ENOMEM;
                if (r >= 0 && xlen > 0)
                        me->xattrs = xs;
                else
                        free(xs);
                if (r < 0)
                        return r;
                if (first && me->xattrs && !(first->xattrs = strdup(me->xattrs)))
                        return -ENOMEM;
        }
        if (archive_write_header(w->a, e) < ARCHIVE_WARN)
                return ar_error(w, path);
        if (data) {
                struct hash_ctx *h = hash_new(HASH_SHA256);
                if (!h)
                        return -ENOMEM;
                int r = write_data(w, fd, (uint64_t)st.st_size, path, h);
                if (r >= 0)
                        r = hash_final_hex(h, me->sha256);
                else
                        hash_free(h);
                if (r < 0)
                        return r;
                if (first)
                        memcpy(first->sha256, me->sha256, sizeof first->sha256);
        }
        if (archive_write_finish_entry(w->a) < ARCHIVE_WARN)
                return ar_error(w, path);
        /* A mount point is listed (as the manifest lists it) but not entered. */
        if (S_ISDIR(st.st_mode) && st.st_dev == w->dev)
                return walk(w, fd, path, depth + 1);
        return 0;
}

static int walk(struct tw *w, int dirfd, const char *path, unsigned depth) {
        if (depth > MAX_DEPTH)
                return mkm_err_set(w->reterr, -ELOOP, "export: the tree is deeper than %d levels", MAX_DEPTH);
        _cleanup_strv_free_ char **names = NULL;
        int r = fs_list_names(dirfd, NULL, NULL, 0, &names);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return mkm_err_set(w->reterr, r, "export: cannot list %s: %s", path, mkm_strerror(r));
        for (char **n = names; *n; n++) {
                _cleanup_free_ char *child = NULL;
                if (asprintf(&child, "%s%s%s", path, strcmp(path, "./") == 0 ? "" : "/", *n) < 0)
                        return -ENOMEM;
                r = emit(w, dirfd, *n, child, depth);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void archive_write_freep(struct archive **a) {
        if (*a)
                (void)archive_write_free(*a);
}

static void archive_entry_freep(struct archive_entry **e) {
        if (*e)
                archive_entry_free(*e);
}

static int set_filter(struct archive *a, enum export_compress c) {
        switch (c) {
        case EXPORT_XZ:
                /* liblzma's multi-threaded encoder splits blocks by thread count: one thread. */
                if (archive_write_add_filter_xz(a) != ARCHIVE_OK ||
                    archive_write_set_filter_option(a, "xz", "compression-level", "6") != ARCHIVE_OK ||
                    archive_write_set_filter_option(a, "xz", "threads", "1") != ARCHIVE_OK)
                        return -1;
                return 0;
        case EXPORT_ZSTD:
                if (archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
                    archive_write_set_filter_option(a, "zstd", "compression-level", "12") != ARCHIVE_OK)
                        return -1;
                return 0;
        case EXPORT_GZIP:
                /* No time stamp and no original name in the gzip header. */
                if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
                    archive_write_set_filter_option(a, "gzip", "compression-level", "6") != ARCHIVE_OK ||
                    archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK)
                        return -1;
                return 0;
        default:
                return -1;
        }
}

static void uselocale_restorep(locale_t *old) {
        if (*old) {
                locale_t ours = uselocale(*old);
                if (ours && ours != LC_GLOBAL_LOCALE)
                        freelocale(ours);
        }
}

int export_tar_fd(struct mkm_ctx *ctx, int rootfd, int64_t clamp_epoch, enum export_compress c, int outfd,
                  char ret_digest[MANIFEST_DIGEST_LEN], struct mkm_err *reterr) {
        /* libarchive converts names (pax headers, hdrcharset) through the thread's locale: the
         * same bytes for every caller need the same one, whatever LANG the user has. C.UTF-8
         * (glibc has it built in): UTF-8 names as they are, others marked binary. */
        locale_t cutf8 = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
        if (!cutf8)
                return mkm_err_set(reterr, -errno, "export: the C.UTF-8 locale: %m");
        _cleanup_(uselocale_restorep) locale_t old = uselocale(cutf8);
        (void)old;      /* only its cleanup is wanted (clang: -Wunused-variable) */
        _cleanup_(archive_write_freep) struct archive *a = archive_write_new();
        _cleanup_(archive_entry_freep) struct archive_entry *e = archive_entry_new();
        if (!a || !e)
                return -ENOMEM;
        /* pax_restricted: plain ustar headers unless a field needs more (long names, xattrs, big
         * ids); libarchive names its pax headers "DIR/PaxHeader/NAME", no PID in them. xattrs as
         * SCHILY.xattr only: GNU tar (which systemd-pull runs) reads those and warns about
         * LIBARCHIVE.xattr. */
        if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_set_format_option(a, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK)
                return mkm_err_set(reterr, -MKM_E_ARCHIVE, "export: libarchive: %s", archive_error_string(a));
        if (set_filter(a, c) < 0)
                return mkm_err_set(reterr, -MKM_E_ARCHIVE, "export: %s compression: %s",
                                   c >= 0 && c < _EXPORT_COMPRESS_MAX ? compress_names[c] : "unknown",
                                   archive_error_string(a));
        if (archive_write_open_fd(a, outfd) != ARCHIVE_OK)
                return mkm_err_set(reterr, -MKM_E_ARCHIVE, "export: %s", archive_error_string(a));
        struct stat st;
        if (fstat(rootfd, &st) < 0)
                return negative_errno();
        struct tw w = { .ctx = ctx, .a = a, .e = e, .clamp = clamp_epoch, .dev = st.st_dev, .reterr = reterr };
        w.links = hashmap_new();
        if (!w.links)
                return -ENOMEM;
        int r = emit(&w, rootfd, NULL, "./", 0);
        if (r >= 0 && archive_write_close(a) != ARCHIVE_OK)
                r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "export: finishing the archive: %s", archive_error_string(a));
        /* The digest of what was archived: what an import of it computes. */
        if (r >= 0 && ret_digest)
                r = manifest_format(w.ents, w.n_ents, NULL, ret_digest);
        if (r >= 0)
                r = w.sockets > INT_MAX ? INT_MAX : (int)w.sockets;
        size_t it = 0;
        const char *k;
        void *v;
        while (hashmap_next(w.links, &it, &k, &v)) {
                struct first_link *fl = v;
                free(fl->path);
                free(fl->xattrs);
                free(fl);
        }
        hashmap_free(w.links);
        manifest_entries_free(w.ents, w.n_ents);
        return r;
}

/* ---- SHA256SUMS ---- */

void export_sums_free(struct export_sum *s, size_t n) {
        for (size_t i = 0; s && i < n; i++)
                free(s[i].name);
        free(s);
}

const struct export_sum *export_sums_find(const struct export_sum *s, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(s[i].name, name) == 0)
                        return &s[i];
        return NULL;
}

static bool is_hex64(const char *p) {
        for (int i = 0; i < 64; i++)
                if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') || (p[i] >= 'A' && p[i] <= 'F')))
                        return false;
        return true;
}

int export_sums_parse(const char *text, size_t len, const char *label, struct export_sum **ret, size_t *ret_n,
                      struct mkm_err *reterr) {
        struct export_sum *s = NULL;
        size_t n = 0, cap = 0;
        unsigned line = 0;
        int r = 0;
        for (const char *p = text, *end = text + len; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *eol = nl ? nl : end;
                line++;
                size_t l = (size_t)(eol - p);
                if (l > 0 && p[l - 1] == '\r')
                        l--;
                if (l == 0) {
                        p = nl ? nl + 1 : end;
                        continue;
                }
                if (memchr(p, 0, l)) {
                        r = mkm_err_set(reterr, -MKM_E_PARSE, "%s:%u: expected text, found a NUL byte", label, line);
                        goto fail;
                }
                if (p[0] == '\\') {
                        r = mkm_err_set(reterr, -MKM_E_PARSE,
                                        "%s:%u: escaped file names (a leading '\\') are not supported", label, line);
                        goto fail;
                }
                if (l < 67 || !is_hex64(p) || p[64] != ' ' || (p[65] != ' ' && p[65] != '*')) {
                        r = mkm_err_set(reterr, -MKM_E_PARSE,
                                        "%s:%u: expected 'SHA256  FILE' (64 hex digits, two spaces or ' *', a name)",
                                        label, line);
                        goto fail;
                }
                _cleanup_free_ char *name = strndup(p + 66, l - 66);
                if (!name) {
                        r = -ENOMEM;
                        goto fail;
                }
                if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
                        r = mkm_err_set(reterr, -MKM_E_PARSE, "%s:%u: expected a file name without '/', got '%s'",
                                        label, line, name);
                        goto fail;
                }
                if (export_sums_find(s, n, name)) {
                        r = mkm_err_set(reterr, -MKM_E_PARSE, "%s:%u: '%s' is listed twice", label, line, name);
                        goto fail;
                }
                if (mkm_grow((void **)&s, &cap, n, sizeof *s, 8) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
                s[n].name = TAKE_PTR(name);
                for (int i = 0; i < 64; i++)
                        s[n].hex[i] = (char)(p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 'a' : p[i]);
                s[n].hex[64] = 0;
                n++;
                p = nl ? nl + 1 : end;
        }
        *ret = s;
        *ret_n = n;
        return 0;
fail:
        export_sums_free(s, n);
        return r;
}

/* ---- the machine's state (the one place that knows its layout) ---- */

struct machine_src {
        char *tree;                     /* HOST/var/lib/machines/NAME */
        char *state_dir;                /* HOST/var/lib/mkmachine/NAME */
        char *digest;                   /* "sha256:HEX" */
        char *manifest;                 /* the generation's manifest, whose sha256 digest is */
        int64_t source_date_epoch;
        char *nspawn_edited;            /* the installed NAME.nspawn, when it is not what the
                                         * generation installed (changed or added by hand) */
        unsigned gen;
};

static void machine_src_done(struct machine_src *m) {
        free(m->tree);
        free(m->state_dir);
        free(m->digest);
        free(m->manifest);
        free(m->nspawn_edited);
}

/* The live generation's tree, digest and SOURCE_DATE_EPOCH (state.h). */
static int machine_src_load(struct mkm_ctx *ctx, const char *name, struct machine_src *ret, struct mkm_err *reterr) {
        _cleanup_(state_freep) struct machine_state *st = NULL;
        int r = state_load(ctx, name, &st, reterr);
        if (r < 0)
                return r;
        if (!st->live || !st->live->tree || !st->live->digest[0])
                return mkm_err_set(reterr, -ENOENT, "machine '%s' has no deployed generation in %s%s", name,
                                   st->state_dir, st->tree_exists ? " (its tree was not built by mkmachine)" : "");
        struct machine_src m = { .source_date_epoch = st->live->source_date_epoch };
        m.tree = strdup(st->live->tree);
        m.state_dir = strdup(st->state_dir);
        m.digest = strdup(st->live->digest);
        if (!m.tree || !m.state_dir || !m.digest) {
                machine_src_done(&m);
                return -ENOMEM;
        }
        r = state_read_file(st->live, "manifest", &m.manifest, reterr);
        if (r < 0) {
                machine_src_done(&m);
                return r;
        }
        /* The settings go into the export as they are installed: one edited by hand is not the
         * generation's. */
        struct state_host_diff *hd = NULL;
        size_t nhd = 0;
        r = state_host_files_diff(ctx, st, &hd, &nhd, reterr);
        if (r < 0) {
                machine_src_done(&m);
                return r;
        }
        _cleanup_free_ char *leaf = NULL;
        if (asprintf(&leaf, "/%s.nspawn", name) < 0)
                leaf = NULL;
        for (size_t i = 0; leaf && i < nhd && !m.nspawn_edited; i++) {
                size_t pl = strlen(hd[i].path), ll = strlen(leaf);
                if (hd[i].change != STATE_HOST_REMOVED && pl >= ll && strcmp(hd[i].path + pl - ll, leaf) == 0)
                        m.nspawn_edited = strdup(hd[i].path);
        }
        state_host_diffs_free(hd, nhd);
        m.gen = st->live->gen;
        mkm_debug(ctx, "export: %s: generation %u, %s, SOURCE_DATE_EPOCH %lld", name, st->live->gen, m.digest,
                  (long long)m.source_date_epoch);
        *ret = m;
        return 0;
}

/* Is digest the sha256 of manifest without the xattrs that are not content? Then the tree is the
 * one built, and only the manifest is older than the rule that leaves a host's labels out (a
 * machine built on an SELinux host lists a security.selinux on every entry). 1 yes, 0 no. */
static int matches_without_host_xattrs(const char *manifest, const char *digest) {
        _cleanup_free_ char *content = NULL;
        int r = manifest_strip_host_xattrs(manifest, &content);
        if (r <= 0)
                return r;
        char hex[HASH_SHA256_HEX];
        r = hash_buf_hex(HASH_SHA256, content, strlen(content), hex);
        if (r < 0)
                return r;
        return strcmp(digest + 7, hex) == 0;
}

/* ---- writing DIR ---- */

struct tmpfile {
        char *name;                     /* the final name in dir */
        char *tmp;                      /* ".#NAME.PID.XXXXXX" in dir, NULL once renamed */
        char hex[HASH_SHA256_HEX];
};

static void tmpfile_drop(int dirfd, struct tmpfile *t) {
        if (t->tmp)
                (void)unlinkat(dirfd, t->tmp, 0);
        free(t->tmp);
        free(t->name);
        *t = (struct tmpfile){};
}

/* A temporary beside name in dirfd, opened for reading and writing. */
static int tmpfile_open(int dirfd, const char *name, struct tmpfile *t) {
        for (int attempt = 0; attempt < 100; attempt++) {
                char *tmp = NULL;
                if (asprintf(&tmp, ".#%s.%d.%06x", name, (int)getpid(), (unsigned)fs_random_ulong() & 0xffffff) < 0)
                        return -ENOMEM;
                int fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        t->tmp = tmp;
                        t->name = strdup(name);
                        if (!t->name) {
                                close(fd);
                                return -ENOMEM;
                        }
                        return fd;
                }
                free(tmp);
                if (errno != EEXIST)
                        return negative_errno();
        }
        return -EEXIST;
}

/* Temporaries a killed export left in dir: ".#FILE.PID.XXXXXX" of one of the files an export of
 * name writes, by a process that no longer exists. */
static void remove_stale_temporaries(struct mkm_ctx *ctx, int dirfd, const char *name) {
        DIR *d = fs_opendir_dup(dirfd);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                const char *p = de->d_name;
                if (strncmp(p, ".#", 2) != 0)
                        continue;
                p += 2;
                size_t l = strlen(name);
                const char *rest = NULL;
                if (strncmp(p, "SHA256SUMS.gpg.", 15) == 0)
                        rest = p + 15;
                else if (strncmp(p, "SHA256SUMS.", 11) == 0)
                        rest = p + 11;
                else if (strncmp(p, name, l) == 0 && p[l] == '.') {
                        const char *q = p + l;
                        if (strncmp(q, ".nspawn.", 8) == 0)
                                rest = q + 8;
                        for (int c = 0; !rest && c < _EXPORT_COMPRESS_MAX; c++) {
                                size_t sl = strlen(compress_suffixes[c]);
                                if (strncmp(q, compress_suffixes[c], sl) == 0 && q[sl] == '.')
                                        rest = q + sl + 1;
                        }
                }
                char *end;
                long pid = rest ? strtol(rest, &end, 10) : 0;
                if (pid <= 0 || *end != '.' || strlen(end + 1) != 6)
                        continue;
                if (!fs_pid_is_gone((pid_t)pid))
                        continue;
                if (unlinkat(dirfd, de->d_name, 0) == 0)
                        mkm_debug(ctx, "export: removed %s, left by a killed export", de->d_name);
        }
        closedir(d);
}

/* fsync, fchmod 0644 (umask-independent), hash from the start. */
static int tmpfile_finish(int fd, struct tmpfile *t) {
        if (fchmod(fd, 0644) < 0 || fsync(fd) < 0 || lseek(fd, 0, SEEK_SET) < 0)
                return negative_errno();
        return hash_fd_hex(HASH_SHA256, fd, t->hex, NULL);
}

static int tmpfile_write(int dirfd, const char *name, const void *data, size_t len, struct tmpfile *t) {
        _cleanup_close_ int fd = tmpfile_open(dirfd, name, t);
        if (fd < 0)
                return fd;
        int r = fs_write_all(fd, data, len);
        return r < 0 ? r : tmpfile_finish(fd, t);
}

static void gpgme_releasep(gpgme_ctx_t *c) {
        if (*c)
                gpgme_release(*c);
}
static void gpgme_data_releasep(gpgme_data_t *d) {
        if (*d)
                gpgme_data_release(*d);
}
static void gpgme_key_unrefp(gpgme_key_t *k) {
        if (*k)
                gpgme_key_unref(*k);
}

/* A detached binary signature of data by key (a secret key of gpg_home, or GnuPG's default home). */
static int sign_detached(const char *key_id, const char *gpg_home, const char *data, size_t len, char **ret,
                         size_t *ret_len, struct mkm_err *reterr) {
        _cleanup_(gpgme_releasep) gpgme_ctx_t g = NULL;
        _cleanup_(gpgme_data_releasep) gpgme_data_t in = NULL, out = NULL;
        _cleanup_(gpgme_key_unrefp) gpgme_key_t key = NULL;
        gpgme_error_t e = gpgme_new(&g);
        if (!e)
                e = gpgme_set_protocol(g, GPGME_PROTOCOL_OpenPGP);
        if (!e && gpg_home)
                e = gpgme_ctx_set_engine_info(g, GPGME_PROTOCOL_OpenPGP, NULL, gpg_home);
        if (e)
                return mkm_err_set(reterr, -MKM_E_SIG_BAD, "gpgme: %s", gpgme_strerror(e));
        gpgme_set_armor(g, 0);
        gpgme_set_offline(g, 1);
        e = gpgme_get_key(g, key_id, &key, 1);
        if (e)
                return mkm_err_set(reterr, -MKM_E_SIG_MISSING, "--sign %s: no such secret key in %s: %s", key_id,
                                   gpg_home ? gpg_home : "the default GnuPG home", gpgme_strerror(e));
        e = gpgme_signers_add(g, key);
        if (!e)
                e = gpgme_data_new_from_mem(&in, data, len, 0);
        if (!e)
                e = gpgme_data_new(&out);
        if (!e)
                e = gpgme_op_sign(g, in, out, GPGME_SIG_MODE_DETACH);
        if (e)
                return mkm_err_set(reterr, -MKM_E_SIG_BAD, "signing SHA256SUMS with %s: %s", key_id, gpgme_strerror(e));
        size_t n = 0;
        char *buf = gpgme_data_release_and_get_mem(out, &n);
        out = NULL;
        if (!buf || n == 0) {
                gpgme_free(buf);
                return mkm_err_set(reterr, -MKM_E_SIG_BAD, "signing SHA256SUMS with %s: no signature made", key_id);
        }
        char *copy = malloc(n);
        if (!copy) {
                gpgme_free(buf);
                return -ENOMEM;
        }
        memcpy(copy, buf, n);
        gpgme_free(buf);
        *ret = copy;
        *ret_len = n;
        return 0;
}

static bool is_own_tarball(const char *file, const char *name) {
        size_t l = strlen(name);
        if (strncmp(file, name, l) != 0)
                return false;
        for (int i = 0; i < _EXPORT_COMPRESS_MAX; i++)
                if (strcmp(file + l, compress_suffixes[i]) == 0)
                        return true;
        return false;
}

/* The new SHA256SUMS: the lines of dir's old one for other files that still exist, and ours;
 * sorted by name. */
static int make_sums(int dirfd, const char *dir, const char *name, struct tmpfile *files, size_t nfiles, char **ret,
                     struct mkm_err *reterr) {
        _cleanup_free_ char *old = NULL, *nspawn_name = NULL;
        size_t oldlen = 0;
        struct export_sum *s = NULL;
        size_t n = 0;
        if (asprintf(&nspawn_name, "%s.nspawn", name) < 0)
                return -ENOMEM;
        int r = 0;
        _cleanup_close_ int fd = openat(dirfd, "SHA256SUMS", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
                r = fs_read_fd(fd, SUMS_MAX, &old, &oldlen);
                if (r >= 0)
                        r = export_sums_parse(old, oldlen, "SHA256SUMS", &s, &n, reterr);
                if (r < 0)
                        return mkm_err_prefix(reterr, r, "%s", dir);
        }
        _cleanup_strv_free_ char **lines = calloc(1, sizeof(char *));
        if (!lines) {
                export_sums_free(s, n);
                return -ENOMEM;
        }
        for (size_t i = 0; r >= 0 && i < n; i++) {
                struct stat st;
                if (is_own_tarball(s[i].name, name) || strcmp(s[i].name, nspawn_name) == 0 ||
                    fstatat(dirfd, s[i].name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                char *line = NULL;
                if (asprintf(&line, "%s  %s\n", s[i].hex, s[i].name) < 0 || (r = strv_consume(&lines, line)) < 0)
                        r = -ENOMEM;
        }
        export_sums_free(s, n);
        for (size_t i = 0; r >= 0 && i < nfiles; i++) {
                char *line = NULL;
                if (asprintf(&line, "%s  %s\n", files[i].hex, files[i].name) < 0 || (r = strv_consume(&lines, line)) < 0)
                        r = -ENOMEM;
        }
        if (r < 0)
                return r;
        /* Sort by name: the hash prefix has a fixed length, so compare from the name on. */
        size_t nl = strv_length(lines);
        for (size_t i = 1; i < nl; i++)
                for (size_t j = i; j > 0 && strcmp(lines[j - 1] + 66, lines[j] + 66) > 0; j--) {
                        char *t = lines[j];
                        lines[j] = lines[j - 1];
                        lines[j - 1] = t;
                }
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < nl; i++)
                fputs(lines[i], f);
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}

void export_result_done(struct export_result *r) {
        if (!r)
                return;
        free(r->tarball);
        free(r->nspawn);
        free(r->sums);
        free(r->signature);
        *r = (struct export_result){};
}

static void unlock_closep(int *fd) {
        if (*fd >= 0) {
                (void)flock(*fd, LOCK_UN);
                (void)close(*fd);
        }
}

int export_machine(struct mkm_ctx *ctx, const char *name, const char *dir, const struct export_opts *opts,
                   struct export_result *ret, struct mkm_err *reterr) {
        struct machine_src m = {};
        struct tmpfile files[4] = {};   /* tarball, nspawn, signature, SHA256SUMS */
        enum { T_TAR, T_NSPAWN, T_SIG, T_SUMS };
        _cleanup_close_ int dirfd = -EBADF, rootfd = -EBADF, tarfd = -EBADF;
        _cleanup_(unlock_closep) int lockfd = -EBADF;
        _cleanup_free_ char *manifest = NULL, *sums = NULL, *sig = NULL, *nspawn = NULL, *nspawn_path = NULL,
                            *tar_name = NULL, *nspawn_name = NULL, *lock = NULL, *nspawn_dir = NULL;
        size_t sig_len = 0, nspawn_len = 0;
        char digest[MANIFEST_DIGEST_LEN];
        int r;

        if (export_compress_suffix(opts->compress) == NULL)
                return mkm_err_set(reterr, -MKM_E_USAGE, "unknown compression");
        r = machine_src_load(ctx, name, &m, reterr);
        if (r < 0)
                return r;
        if (asprintf(&tar_name, "%s%s", name, export_compress_suffix(opts->compress)) < 0 ||
            asprintf(&nspawn_name, "%s.nspawn", name) < 0) {
                r = -ENOMEM;
                goto out;
        }
        /* Shared: other exports may run, a build (exclusive) may not swap the tree meanwhile. */
        lock = fs_path_join(m.state_dir, ".lock");
        if (!lock) {
                r = -ENOMEM;
                goto out;
        }
        lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (lockfd < 0 || flock(lockfd, LOCK_SH | LOCK_NB) < 0) {
                r = mkm_err_set(reterr, errno == EWOULDBLOCK ? -EBUSY : negative_errno(),
                                errno == EWOULDBLOCK ? "a build of '%s' is running (%s is locked)" : "'%s': %s: %m",
                                name, lock);
                goto out;
        }
        rootfd = open(m.tree, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (rootfd < 0) {
                r = mkm_err_set(reterr, negative_errno(), "cannot open the machine's tree %s: %m", m.tree);
                goto out;
        }
        /* The archive is the digest's tree only if the tree still is what was built. */
        mkm_emit(ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "checking the tree against its manifest" });
        r = manifest_build(ctx, rootfd, -1, &manifest, digest, reterr);
        if (r < 0)
                goto out;
        bool same = strcmp(digest, m.digest) == 0;
        if (!same) {
                r = matches_without_host_xattrs(m.manifest, digest);
                if (r < 0)
                        goto out;
                same = r > 0;
                if (same)
                        mkm_warn(ctx,
                                 "export: the manifest of '%s' lists xattrs that are a host's labels (it was written "
                                 "before they left the digest); ignoring them: the tree is as built, exported as %s "
                                 "(a rebuild records that digest)",
                                 name, digest);
        }
        if (!same) {
                if (!opts->force) {
                        r = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH,
                                        "the tree %s differs from its manifest (it is %s, it was built as %s); "
                                        "'mkmachine verify -v %s' shows what changed (runtime changes too: they do "
                                        "not block a rebuild, but an export is the digest's tree), --force exports it "
                                        "as it is",
                                        m.tree, digest, m.digest, name);
                        goto out;
                }
                mkm_warn(ctx, "export: %s differs from its manifest; exporting it as it is (%s), because of --force",
                         m.tree, digest);
        }

        if (m.nspawn_edited) {
                if (!opts->force) {
                        r = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH,
                                        "%s was changed by hand since generation %u installed it, and an export "
                                        "carries the settings as installed; 'mkmachine verify %s' shows it, --force "
                                        "exports it as it is",
                                        m.nspawn_edited, m.gen, name);
                        goto out;
                }
                mkm_warn(ctx, "export: %s was changed by hand since generation %u installed it; exporting it as it "
                              "is, because of --force", m.nspawn_edited, m.gen);
        }

        r = fs_mkdir_p_at(AT_FDCWD, dir, 0755);
        if (r >= 0 && (dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
                r = negative_errno();
        if (r < 0) {
                r = mkm_err_set(reterr, r, "cannot open %s: %s", dir, mkm_strerror(r));
                goto out;
        }

        remove_stale_temporaries(ctx, dirfd, name);
        mkm_emit(ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "writing the archive" });
        tarfd = tmpfile_open(dirfd, tar_name, &files[T_TAR]);
        if (tarfd < 0) {
                r = mkm_err_set(reterr, tarfd, "cannot create a file in %s: %s", dir, mkm_strerror(tarfd));
                goto out;
        }
        char archived[MANIFEST_DIGEST_LEN];
        r = export_tar_fd(ctx, rootfd, m.source_date_epoch, opts->compress, tarfd, archived, reterr);
        if (r < 0)
                goto out;
        /* The check above read the tree once, the archive read it again: what was archived must
         * be what was checked (someone may write into the tree meanwhile, a running machine
         * does), and the digest printed is always the one of the archive. Sockets are in the
         * tree's manifest but cannot be in a tar: that is a difference of its own, said as such. */
        int sockets = r;
        r = 0;
        if (strcmp(archived, digest) != 0) {
                if (!opts->force && sockets > 0) {
                        r = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH,
                                        "the tree %s holds %d socket%s (named above), which tar cannot carry: the "
                                        "archive would be %s, not the tree's %s, and an import of it would not be "
                                        "this machine; nothing was exported. Remove %s from the tree (a socket "
                                        "left by the recipe's Run= is a process's, gone with it) or --force "
                                        "exports the tree without %s",
                                        m.tree, sockets, sockets == 1 ? "" : "s", archived, digest,
                                        sockets == 1 ? "it" : "them", sockets == 1 ? "it" : "them");
                        goto out;
                }
                if (!opts->force) {
                        r = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH,
                                        "the tree %s changed while it was exported (it was checked as %s, what was "
                                        "archived is %s); nothing was exported. Stop what writes into it (a running "
                                        "machine) and export again; --force exports it as it is",
                                        m.tree, digest, archived);
                        goto out;
                }
                mkm_warn(ctx, "export: what was archived of %s is %s (the tree was %s when checked), because of --force",
                         m.tree, archived, digest);
                memcpy(digest, archived, sizeof digest);
        }
        r = tmpfile_finish(tarfd, &files[T_TAR]);
        if (r < 0) {
                r = mkm_err_set(reterr, r, "writing %s/%s: %s", dir, tar_name, mkm_strerror(r));
                goto out;
        }

        /* The settings as mkmachine installed them on this host: in /etc/systemd/nspawn for a built
         * machine, beside the image for an import whose settings were not trusted. */
        nspawn_dir = fs_path_join(ctx->host_root, "etc/systemd/nspawn");
        nspawn_path = nspawn_dir ? fs_path_join(nspawn_dir, nspawn_name) : NULL;
        if (!nspawn_path) {
                r = -ENOMEM;
                goto out;
        }
        r = fs_read_file_follow_at(AT_FDCWD, nspawn_path, NSPAWN_MAX, &nspawn, &nspawn_len);
        if (r == -ENOENT) {
                free(nspawn_dir);
                free(nspawn_path);
                nspawn_dir = fs_path_join(ctx->host_root, "var/lib/machines");
                nspawn_path = nspawn_dir ? fs_path_join(nspawn_dir, nspawn_name) : NULL;
                if (!nspawn_path) {
                        r = -ENOMEM;
                        goto out;
                }
                r = fs_read_file_follow_at(AT_FDCWD, nspawn_path, NSPAWN_MAX, &nspawn, &nspawn_len);
        }
        if (r == -ENOENT) {
                mkm_debug(ctx, "export: %s does not exist: the export has no %s", nspawn_path, nspawn_name);
                nspawn_path = mfree(nspawn_path);
        } else if (r < 0) {
                r = mkm_err_set(reterr, r, "cannot read %s: %s", nspawn_path, mkm_strerror(r));
                goto out;
        } else if ((r = tmpfile_write(dirfd, nspawn_name, nspawn, nspawn_len, &files[T_NSPAWN])) < 0) {
                r = mkm_err_set(reterr, r, "writing %s/%s: %s", dir, nspawn_name, mkm_strerror(r));
                goto out;
        }

        struct tmpfile listed[2] = { files[T_TAR], files[T_NSPAWN] };
        r = make_sums(dirfd, dir, name, listed, files[T_NSPAWN].name ? 2 : 1, &sums, reterr);
        if (r < 0)
                goto out;
        if (opts->sign_key) {
                r = sign_detached(opts->sign_key, opts->gpg_home, sums, strlen(sums), &sig, &sig_len, reterr);
                if (r < 0)
                        goto out;
                r = tmpfile_write(dirfd, "SHA256SUMS.gpg", sig, sig_len, &files[T_SIG]);
                if (r < 0) {
                        r = mkm_err_set(reterr, r, "writing %s/SHA256SUMS.gpg: %s", dir, mkm_strerror(r));
                        goto out;
                }
        }
        r = tmpfile_write(dirfd, "SHA256SUMS", sums, strlen(sums), &files[T_SUMS]);
        if (r < 0) {
                r = mkm_err_set(reterr, r, "writing %s/SHA256SUMS: %s", dir, mkm_strerror(r));
                goto out;
        }

        /* Everything is written: rename into place, SHA256SUMS last (an interrupted export leaves
         * files that do not match the old SHA256SUMS, which every reader refuses, never a new
         * SHA256SUMS naming files not yet there). Then drop what the new SHA256SUMS no longer
         * vouches for: this machine's other tarballs, a settings file it has no more, an old
         * signature. */
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                if (!files[i].tmp)
                        continue;
                if (renameat(dirfd, files[i].tmp, dirfd, files[i].name) < 0) {
                        r = mkm_err_set(reterr, negative_errno(), "cannot rename %s/%s: %m", dir, files[i].tmp);
                        goto out;
                }
                files[i].tmp = mfree(files[i].tmp);
        }
        for (int c = 0; c < _EXPORT_COMPRESS_MAX; c++) {
                _cleanup_free_ char *other = NULL;
                if (c != (int)opts->compress && asprintf(&other, "%s%s", name, compress_suffixes[c]) >= 0)
                        (void)unlinkat(dirfd, other, 0);
        }
        if (!files[T_NSPAWN].name)
                (void)unlinkat(dirfd, nspawn_name, 0);
        if (!files[T_SIG].name)
                (void)unlinkat(dirfd, "SHA256SUMS.gpg", 0);
        if (fsync(dirfd) < 0) {
                r = mkm_err_set(reterr, negative_errno(), "fsync %s: %m", dir);
                goto out;
        }

        *ret = (struct export_result){
                .tarball = fs_path_join(dir, tar_name),
                .nspawn = files[T_NSPAWN].name ? fs_path_join(dir, nspawn_name) : NULL,
                .sums = fs_path_join(dir, "SHA256SUMS"),
                .signature = files[T_SIG].name ? fs_path_join(dir, "SHA256SUMS.gpg") : NULL,
                .source_date_epoch = m.source_date_epoch,
        };
        memcpy(ret->digest, digest, sizeof digest);
        r = 0;
out:
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                tmpfile_drop(dirfd, &files[i]);
        machine_src_done(&m);
        return r;
}
