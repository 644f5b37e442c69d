/* SPDX-License-Identifier: MIT */
/* The content-addressed download cache (see cache.h). Threats handled here: a half-written or
 * corrupt download becoming visible to another build (commit = fsync + verify + atomic rename),
 * a repository-supplied digest or label naming a path outside the cache (strict validation),
 * and temporaries piling up after killed builds (stale cleanup). */
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strv.h"
#include "util/log.h"

#define LABEL_MAX 128

struct cache {
        struct mkm_ctx *ctx;
        char *dir;              /* absolute */
        int dirfd;
        int tmpfd;
        int lockfd;             /* DIR/lock: shared while open, exclusive for cache_prune() */
        struct stat tmp_st;     /* identity of DIR/tmp, to check commit paths */
        bool deferred_sync;     /* commits skip fsync; cache_sync() makes them durable at once */
        atomic_bool dirty;      /* a deferred commit has not been synced yet */
        pthread_mutex_t held_lock;
        struct held {           /* stable download names this process holds (cache_tmp_path_for) */
                char *path;
                int fd;         /* the flock on DIR/tmp/dl-<digest>.lock */
        } *held;
        size_t n_held;
};

static void release_held(struct cache *c, struct held *h);

struct cache *cache_free(struct cache *c) {
        if (!c)
                return NULL;
        while (c->n_held > 0)
                release_held(c, &c->held[c->n_held - 1]);
        free(c->held);
        pthread_mutex_destroy(&c->held_lock);
        if (c->dirfd >= 0)
                (void)close(c->dirfd);
        if (c->tmpfd >= 0)
                (void)close(c->tmpfd);
        if (c->lockfd >= 0)
                (void)close(c->lockfd);
        free(c->dir);
        free(c);
        return NULL;
}

const char *cache_dir(const struct cache *c) {
        return c->dir;
}

/* "sha256/ab/abcdef…" relative to the cache dir; hex must be validated. */
static void rel_path(const char *hex, char out[static 80]) {
        (void)snprintf(out, 80, "sha256/%.2s/%s", hex, hex);
}

static int mkdir_at(int dfd, const char *name) {
        if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

static bool same_file(const struct stat *a, const struct stat *b) {
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Take the download lock DIR/tmp/NAME (created when absent) without waiting: its fd, or -EAGAIN
 * when someone holds it (or a negative errno). The lock counts only while the name still is the
 * file we locked: a holder that is done unlinks it (while holding it), and a late opener of the
 * old file must not count as the holder of the new one, so that case is retried. */
static int take_dl_lock(struct cache *c, const char *name) {
        for (int attempt = 0; attempt < 5; attempt++) {
                int fd = openat(c->tmpfd, name, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
                if (fd < 0)
                        return negative_errno();
                if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                        int r = errno == EWOULDBLOCK ? -EAGAIN : negative_errno();
                        (void)close(fd);
                        return r;
                }
                struct stat a, b;
                if (fstat(fd, &a) == 0 && fstatat(c->tmpfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 && same_file(&a, &b))
                        return fd;
                (void)close(fd);
        }
        return -EAGAIN;
}

static void clean_stale(struct cache *c) {
        DIR *d = fs_opendir_dup(c->tmpfd);
        if (!d)
                return;
        time_t now = time(NULL);
        struct dirent *de;
        unsigned n = 0;
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                struct stat st;
                if (fstatat(c->tmpfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (st.st_mtime > now - CACHE_STALE_SECONDS)
                        continue;
                /* A download name (dl-<sha256>, .part, .lock) goes only while we hold its lock,
                 * taken as cache_tmp_path_for() takes it: another build may be about to resume
                 * into an old .part. The lock goes with it. */
                _cleanup_close_ int lfd = -EBADF;
                char digest[65], lock[96] = "";
                if (sscanf(de->d_name, "dl-%64[0-9a-f]", digest) == 1 && strlen(digest) == 64) {
                        (void)snprintf(lock, sizeof lock, "dl-%s.lock", digest);
                        lfd = take_dl_lock(c, lock);
                        if (lfd < 0)
                                continue;       /* held */
                }
                int r = 0;
                if (strcmp(de->d_name, lock) != 0)
                        r = S_ISDIR(st.st_mode) ? fs_rm_rf_at(c->tmpfd, de->d_name)
                                                : (unlinkat(c->tmpfd, de->d_name, 0) < 0 ? negative_errno() : 0);
                if (r < 0)
                        mkm_debug(c->ctx, "cannot remove stale %s/tmp/%s: %s; ignoring", c->dir, de->d_name, mkm_strerror(r));
                else
                        n++;
                if (lfd >= 0)
                        (void)unlinkat(c->tmpfd, lock, 0);      /* still holding it */
        }
        (void)closedir(d);
        if (n)
                mkm_debug(c->ctx, "cache %s: removed %u stale temporary files", c->dir, n);
}

/* Whoever else may write into the cache could swap a verified file for another between its
 * check and its use, or plant a partial download for a build to resume into: the cache's
 * directories (gnupg/ too: prepared key homes) must be ours or root's and writable by nobody else. */
static int check_owner(struct cache *c, struct mkm_err *reterr) {
        /* gnupg/ holds prepared key homes (verify.h): trusting a planted one trusts its keys. */
        static const char *const names[] = { ".", "sha256", "tmp", "gnupg" };
        uid_t me = geteuid();
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
                struct stat st;
                if (fstatat(c->dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT && strcmp(names[i], "gnupg") == 0)
                                continue;       /* made later, by us, inside a private top */
                        return mkm_err_set(reterr, negative_errno(), "cannot stat %s/%s: %m", c->dir, names[i]);
                }
                bool top = i == 0;
                if (!fs_dir_is_private(&st))
                        return mkm_err_set(reterr, -EPERM,
                                           "cache directory %s%s%s is owned by uid %u with mode %04o: it must belong to "
                                           "uid %u (or root) and be writable by nobody else (chown it, or use another "
                                           "--cache-dir)",
                                           c->dir, top ? "" : "/", top ? "" : names[i], (unsigned)st.st_uid,
                                           (unsigned)(st.st_mode & 07777), (unsigned)me);
        }
        return 0;
}

int cache_open(struct mkm_ctx *ctx, const char *dir, struct cache **ret, struct mkm_err *reterr) {
        _cleanup_(cache_freep) struct cache *c = mkm_new0(struct cache, 1);
        int r;

        if (!c)
                return -ENOMEM;
        if (pthread_mutex_init(&c->held_lock, NULL) != 0) {
                free(c);
                c = NULL;
                return -ENOMEM;
        }
        c->ctx = ctx;
        c->dirfd = c->tmpfd = c->lockfd = -EBADF;
        r = fs_mkdir_p_at(AT_FDCWD, dir, 0755);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot create cache directory %s: %s", dir, mkm_strerror(r));
        c->dir = realpath(dir, NULL);
        if (!c->dir)
                return mkm_err_set(reterr, negative_errno(), "cannot resolve cache directory %s: %m", dir);
        c->dirfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c->dirfd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open cache directory %s: %m", c->dir);
        if ((r = mkdir_at(c->dirfd, "sha256")) < 0 || (r = mkdir_at(c->dirfd, "tmp")) < 0)
                return mkm_err_set(reterr, r, "cannot create %s/sha256 or %s/tmp: %s", c->dir, c->dir, mkm_strerror(r));
        c->tmpfd = openat(c->dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (c->tmpfd < 0 || fstat(c->tmpfd, &c->tmp_st) < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s/tmp: %m", c->dir);
        r = check_owner(c, reterr);
        if (r < 0)
                return r;
        /* Every user holds DIR/lock shared, so that mkmachine clean (exclusive) never removes an
         * index or a partial download someone is reading or writing. A clean is short: wait. */
        c->lockfd = openat(c->dirfd, "lock", O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
        if (c->lockfd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s/lock: %m", c->dir);
        while (flock(c->lockfd, LOCK_SH) < 0)
                if (errno != EINTR)
                        return mkm_err_set(reterr, negative_errno(), "cannot lock %s/lock: %m", c->dir);
        clean_stale(c);
        *ret = TAKE_PTR(c);
        return 0;
}

int cache_lookup(struct cache *c, const char *sha256hex, char **ret_path) {
        char rel[80];
        struct stat st;

        if (!sha256hex || !hash_is_sha256_hex(sha256hex))
                return -EINVAL;
        rel_path(sha256hex, rel);
        if (fstatat(c->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT || errno == ENOTDIR ? -ENOENT : negative_errno();
        if (!S_ISREG(st.st_mode))
                return -ENOENT;
        if (ret_path) {
                char *p = fs_path_join(c->dir, rel);
                if (!p)
                        return -ENOMEM;
                *ret_path = p;
        }
        return 0;
}


int cache_check(struct cache *c, const char *sha256hex, uint64_t expected_size, unsigned flags, char **ret_path,
                struct mkm_err *reterr) {
        char rel[80], got[HASH_SHA256_HEX];
        struct stat st, now;
        int r;

        if (!sha256hex || !hash_is_sha256_hex(sha256hex))
                return mkm_err_set(reterr, -EINVAL, "invalid sha256 digest '%.80s'", sha256hex ? sha256hex : "(null)");
        rel_path(sha256hex, rel);
        _cleanup_close_ int fd = openat(c->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? -ENOENT : negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -ENOENT;
        if (expected_size && (uint64_t)st.st_size != expected_size) {
                r = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH,
                                "%s/%s: size mismatch: expected %" PRIu64 " bytes, the cached file has %" PRIu64,
                                c->dir, rel, expected_size, (uint64_t)st.st_size);
                goto drop;
        }
        if (flags & CACHE_CHECK_REHASH) {
                r = hash_fd_hex(HASH_SHA256, fd, got, NULL);
                if (r < 0)
                        return mkm_err_set(reterr, r, "cannot read %s/%s: %s", c->dir, rel, mkm_strerror(r));
                if (strcmp(got, sha256hex) != 0) {
                        r = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH,
                                        "%s/%s: corrupt cache file: sha256 expected %s, got %s", c->dir, rel, sha256hex, got);
                        goto drop;
                }
        }
        if (ret_path) {
                char *p = fs_path_join(c->dir, rel);
                if (!p)
                        return -ENOMEM;
                *ret_path = p;
        }
        return 0;
drop:
        /* Remove the bad file, unless another build already replaced it with a fresh copy. */
        if (fstatat(c->dirfd, rel, &now, AT_SYMLINK_NOFOLLOW) == 0 && same_file(&now, &st))
                (void)unlinkat(c->dirfd, rel, 0);
        mkm_debug(c->ctx, "%s", reterr ? reterr->msg : "removed a corrupt cache file");
        return r;
}

static bool label_ok(const char *label) {
        size_t n = strlen(label);
        if (n == 0 || n > LABEL_MAX || label[0] == '.')
                return false;
        for (const char *p = label; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("._+~-", *p)))
                        return false;
        return true;
}

int cache_tmp_path(struct cache *c, const char *label, char **ret_path) {
        if (!label || !label_ok(label))
                return -EINVAL;
        char *p = NULL;
        if (asprintf(&p, "%s/tmp/%s.XXXXXX", c->dir, label) < 0)
                return -ENOMEM;
        int fd = mkostemp(p, O_CLOEXEC);
        if (fd < 0) {
                int r = negative_errno();
                free(p);
                return r;
        }
        (void)close(fd);
        *ret_path = p;
        return 0;
}

int cache_tmp_path_for(struct cache *c, const char *sha256hex, char **ret_path) {
        if (!hash_is_sha256_hex(sha256hex))
                return -EINVAL;
        char lock[96], label[80];
        (void)snprintf(lock, sizeof lock, "dl-%s.lock", sha256hex);
        (void)snprintf(label, sizeof label, "dl-%.64s", sha256hex);
        int fd = take_dl_lock(c, lock);
        /* No lock (held elsewhere, or any failure: fds, locks): a unique name, without resume. */
        if (fd < 0)
                return cache_tmp_path(c, label, ret_path);
        char *p = NULL;
        if (asprintf(&p, "%s/tmp/dl-%s", c->dir, sha256hex) < 0) {
                (void)close(fd);
                return -ENOMEM;
        }
        pthread_mutex_lock(&c->held_lock);
        struct held *nh = mkm_reallocarray(c->held, c->n_held + 1, sizeof *nh);
        char *copy = nh ? strdup(p) : NULL;
        if (nh)
                c->held = nh;
        if (!copy) {
                pthread_mutex_unlock(&c->held_lock);
                (void)close(fd);
                free(p);
                return -ENOMEM;
        }
        c->held[c->n_held++] = (struct held){ .path = copy, .fd = fd };
        pthread_mutex_unlock(&c->held_lock);
        *ret_path = p;
        return 0;
}

/* With c->held_lock held or from cache_free(). */
static void release_held(struct cache *c, struct held *h) {
        const char *base = strrchr(h->path, '/') + 1;
        char lock[96];
        (void)snprintf(lock, sizeof lock, "%.80s.lock", base);
        (void)unlinkat(c->tmpfd, base, 0);      /* a finished but uncommitted body: not resumable */
        (void)unlinkat(c->tmpfd, lock, 0);      /* while still holding it: see cache_tmp_path_for() */
        (void)close(h->fd);
        free(h->path);
        *h = c->held[--c->n_held];
}

bool cache_tmp_release(struct cache *c, const char *path) {
        bool found = false;
        pthread_mutex_lock(&c->held_lock);
        for (size_t i = 0; i < c->n_held && !found; i++)
                if (strcmp(c->held[i].path, path) == 0) {
                        release_held(c, &c->held[i]);
                        found = true;
                }
        pthread_mutex_unlock(&c->held_lock);
        return found;
}

int cache_commit(struct cache *c, const char *tmp_path, const char *expected_sha256, uint64_t expected_size,
                 char *ret_sha256, struct mkm_err *reterr) {
        char got[HASH_SHA256_HEX], rel[80], sub[16];
        struct stat st, pst, again;
        uint64_t size = 0;
        int r;

        if (expected_sha256 && !hash_is_sha256_hex(expected_sha256))
                return mkm_err_set(reterr, -EINVAL, "invalid expected sha256 digest '%.80s'", expected_sha256);
        const char *slash = tmp_path ? strrchr(tmp_path, '/') : NULL;
        const char *base = slash ? slash + 1 : tmp_path;
        if (!tmp_path || !*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
                return mkm_err_set(reterr, -EINVAL, "'%s' is not a file name", tmp_path ? tmp_path : "(null)");

        /* The file must sit directly in DIR/tmp: same file system, and nothing else gets renamed. */
        _cleanup_free_ char *parent = slash ? strndup(tmp_path, (size_t)(slash - tmp_path) + (slash == tmp_path)) : strdup(".");
        if (!parent)
                return -ENOMEM;
        _cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0 || fstat(pfd, &pst) < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %m", parent);
        if (!same_file(&pst, &c->tmp_st))
                return mkm_err_set(reterr, -EINVAL, "%s is not inside the cache's temporary directory %s/tmp", tmp_path, c->dir);
        _cleanup_close_ int fd = openat(pfd, base, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %m", tmp_path);
        if (fstat(fd, &st) < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot stat %s: %m", tmp_path);
        if (!S_ISREG(st.st_mode))
                return mkm_err_set(reterr, -EINVAL, "%s is not a regular file", tmp_path);
        /* Nobody else may still hold a way to change it once it is verified. */
        if (st.st_uid != geteuid() || st.st_nlink != 1)
                return mkm_err_set(reterr, -EPERM, "%s is owned by uid %u with %u links: not committed", tmp_path,
                                   (unsigned)st.st_uid, (unsigned)st.st_nlink);

        r = hash_fd_hex(HASH_SHA256, fd, got, &size);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot read %s: %s", tmp_path, mkm_strerror(r));
        if (expected_size && size != expected_size) {
                (void)unlinkat(pfd, base, 0);
                return mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH, "%s: size mismatch: expected %" PRIu64 " bytes, got %" PRIu64,
                                   base, expected_size, size);
        }
        if (expected_sha256 && strcmp(got, expected_sha256) != 0) {
                (void)unlinkat(pfd, base, 0);
                return mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH, "%s: sha256 mismatch: expected %s, got %s",
                                   base, expected_sha256, got);
        }

        /* Read-only and durable before it becomes visible. */
        if (c->deferred_sync)
                atomic_store(&c->dirty, true);
        if (fchmod(fd, 0444) < 0 || (!c->deferred_sync && fsync(fd) < 0))
                return mkm_err_set(reterr, negative_errno(), "cannot finish %s: %m", tmp_path);
        (void)snprintf(sub, sizeof sub, "sha256/%.2s", got);
        r = mkdir_at(c->dirfd, sub);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot create %s/%s: %s", c->dir, sub, mkm_strerror(r));
        /* The name must still be the inode we hashed. */
        if (fstatat(pfd, base, &again, AT_SYMLINK_NOFOLLOW) < 0 || !same_file(&again, &st))
                return mkm_err_set(reterr, -ESTALE, "%s was replaced while it was being committed", tmp_path);
        rel_path(got, rel);
        /* rename() replaces an existing copy atomically; both are verified and identical. */
        if (renameat(pfd, base, c->dirfd, rel) < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot move %s to %s/%s: %m", tmp_path, c->dir, rel);
        if (!c->deferred_sync) {
                _cleanup_close_ int sfd = openat(c->dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (sfd >= 0)
                        (void)fsync(sfd);
        }
        mkm_debug(c->ctx, "cache: added %s (%" PRIu64 " bytes)", got, size);
        if (ret_sha256)
                memcpy(ret_sha256, got, HASH_SHA256_HEX);
        return 0;
}

void cache_set_deferred_sync(struct cache *c, bool deferred) {
        c->deferred_sync = deferred;
}

int cache_sync(struct cache *c) {
        if (!atomic_exchange(&c->dirty, false))
                return 0;
        if (syncfs(c->dirfd) < 0) {
                int r = negative_errno();
                atomic_store(&c->dirty, true);  /* still owed */
                return r;
        }
        return 0;
}

int cache_open_fd(struct cache *c, const char *sha256hex, int *ret_fd) {
        char rel[80];
        if (!sha256hex || !hash_is_sha256_hex(sha256hex))
                return -EINVAL;
        rel_path(sha256hex, rel);
        int fd = openat(c->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return errno == ELOOP ? -ENOENT : negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                (void)close(fd);
                return -ENOENT;
        }
        *ret_fd = fd;
        return 0;
}

int cache_read(struct cache *c, const char *sha256hex, size_t max, char **ret, size_t *ret_len) {
        _cleanup_free_ char *path = NULL;
        int r = cache_lookup(c, sha256hex, &path);
        if (r < 0)
                return r;
        return fs_read_file_follow_at(AT_FDCWD, path, max, ret, ret_len);
}

int cache_lock_exclusive(struct cache *c, struct mkm_err *reterr) {
        /* Converting the shared lock may drop it first (flock(2)); failing here ends the caller's
         * use of the cache anyway. */
        if (flock(c->lockfd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        return mkm_err_set(reterr, -EBUSY,
                                           "the cache %s is in use by a running build, plan or lock; try again when it "
                                           "has finished",
                                           c->dir);
                return mkm_err_set(reterr, negative_errno(), "cannot lock %s/lock: %m", c->dir);
        }
        return 0;
}

/* Whether someone holds the download lock NAME, without creating it (a dry run changes nothing). */
static bool dl_lock_held(struct cache *c, const char *name) {
        _cleanup_close_ int fd = openat(c->tmpfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return false;
        return flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
}

static bool is_hex2(int dirfd, const char *name, void *userdata) {
        (void)dirfd, (void)userdata;
        return strlen(name) == 2 && strspn(name, "0123456789abcdef") == 2;
}

/* Only what the cache itself names in sha256/xx/: anything else is not ours to judge. */
static bool is_entry_of(int dirfd, const char *name, void *userdata) {
        (void)dirfd;
        return hash_is_sha256_hex(name) && strncmp(name, (const char *)userdata, 2) == 0;
}

/* Entries under sha256/xx/ that keep() rejects. Each directory is listed whole before anything
 * in it goes: a listing that fails is an error, never a clean that stopped early and said done. */
static int prune_entries(struct cache *c, bool (*keep)(void *userdata, const char *sha256hex), void *userdata,
                         bool dry_run, cache_prune_fn report, void *report_userdata, struct mkm_err *reterr) {
        _cleanup_close_ int top = openat(c->dirfd, "sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (top < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s/sha256: %m", c->dir);
        _cleanup_strv_free_ char **subs = NULL;
        int q = fs_list_names(top, is_hex2, NULL, 0, &subs);
        if (q < 0)
                return q == -ENOMEM ? q : mkm_err_set(reterr, q, "cannot read %s/sha256: %s", c->dir, mkm_strerror(q));
        for (char **x = subs; q >= 0 && *x; x++) {
                _cleanup_close_ int sub = openat(top, *x, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                _cleanup_strv_free_ char **files = NULL;
                q = sub < 0 ? negative_errno() : fs_list_names(sub, is_entry_of, *x, 0, &files);
                if (q < 0)
                        return q == -ENOMEM ? q
                                            : mkm_err_set(reterr, q, "cannot read %s/sha256/%s: %s", c->dir, *x, mkm_strerror(q));
                for (char **f = files; q >= 0 && *f; f++) {
                        if (keep(userdata, *f))
                                continue;
                        struct stat st;
                        if (fstatat(sub, *f, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                                continue;
                        char path[PATH_MAX];
                        (void)snprintf(path, sizeof path, "%s/sha256/%s/%s", c->dir, *x, *f);
                        if (!dry_run && unlinkat(sub, *f, 0) < 0 && errno != ENOENT) {
                                q = mkm_err_set(reterr, negative_errno(), "cannot remove %s: %m", path);
                                break;
                        }
                        if (report)
                                report(report_userdata, path, (uint64_t)st.st_size, false);
                }
        }
        return q;
}

/* Everything in tmp/: with the cache held exclusively no download runs, so every file there
 * is left by a build that is gone. A download name still goes only under its own lock, as
 * clean_stale() takes it, in case a build of an older mkmachine (without DIR/lock) runs. */
static int prune_tmp(struct cache *c, bool dry_run, cache_prune_fn report, void *report_userdata,
                     struct mkm_err *reterr) {
        _cleanup_strv_free_ char **names = NULL;
        int q = fs_list_names(c->tmpfd, NULL, NULL, 0, &names);
        if (q < 0)
                return q == -ENOMEM ? q : mkm_err_set(reterr, q, "cannot read %s/tmp: %s", c->dir, mkm_strerror(q));
        for (char **n = names; q >= 0 && *n; n++) {
                struct stat st;
                if (fstatat(c->tmpfd, *n, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;       /* gone: a lock removed with its download, below */
                _cleanup_close_ int lfd = -EBADF;
                char digest[65], lock[96] = "";
                if (sscanf(*n, "dl-%64[0-9a-f]", digest) == 1 && strlen(digest) == 64) {
                        (void)snprintf(lock, sizeof lock, "dl-%s.lock", digest);
                        if (dry_run ? dl_lock_held(c, lock) : (lfd = take_dl_lock(c, lock)) < 0)
                                continue;       /* held: a download runs */
                }
                char path[PATH_MAX];
                (void)snprintf(path, sizeof path, "%s/tmp/%s", c->dir, *n);
                if (!dry_run) {
                        int r = 0;
                        if (strcmp(*n, lock) != 0)
                                r = S_ISDIR(st.st_mode) ? fs_rm_rf_at(c->tmpfd, *n)
                                                        : (unlinkat(c->tmpfd, *n, 0) < 0 ? negative_errno() : 0);
                        if (lfd >= 0)
                                (void)unlinkat(c->tmpfd, lock, 0);      /* still holding it */
                        if (r < 0 && r != -ENOENT) {
                                q = mkm_err_set(reterr, r, "cannot remove %s: %s", path, mkm_strerror(r));
                                break;
                        }
                }
                if (report)
                        report(report_userdata, path, S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0, true);
        }
        return q;
}

int cache_prune(struct cache *c, bool (*keep)(void *userdata, const char *sha256hex), void *userdata, bool dry_run,
                cache_prune_fn report, void *report_userdata, struct mkm_err *reterr) {
        int q = prune_entries(c, keep, userdata, dry_run, report, report_userdata, reterr);
        if (q >= 0)
                q = prune_tmp(c, dry_run, report, report_userdata, reterr);
        if (q >= 0 && !dry_run)
                (void)syncfs(c->dirfd);
        return q;
}
