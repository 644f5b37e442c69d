/* SPDX-License-Identifier: MIT */
/* A machine's generations on disk, systemd's image lock, and recovery (state.h). */
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "hooks.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strv.h"

#define STATE_FILE_MAX (256u << 20)     /* a manifest of a big tree */
#define META_MAX (64u << 10)
#define HOST_FILE_MAX (1u << 20)

/* ---- small helpers ---------------------------------------------------------------------------- */

static char *machines_dir_of(struct mkm_ctx *ctx) {
        return fs_path_join(ctx->host_root ? ctx->host_root : "/", "var/lib/machines");
}

static char *state_top_of(struct mkm_ctx *ctx) {
        return fs_path_join(ctx->host_root ? ctx->host_root : "/", "var/lib/mkmachine");
}

static bool is_mkdtemp_suffix(const char *s) {
        size_t n = 0;
        for (; s[n]; n++)
                if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9')))
                        return false;
        return n == 6;
}

static bool parse_unsigned(const char *s, uint64_t max, uint64_t *ret) {
        if (!s[0] || s[0] == '-' || s[0] == '+' || (s[0] == '0' && s[1]))
                return false;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || v > max)
                return false;
        *ret = v;
        return true;
}

static bool parse_signed(const char *s, int64_t *ret) {
        if (s[0] == '-') {
                uint64_t v;
                if (!parse_unsigned(s + 1, (uint64_t)INT64_MAX, &v))
                        return false;
                *ret = -(int64_t)v;
                return true;
        }
        uint64_t v;
        if (!parse_unsigned(s, (uint64_t)INT64_MAX, &v))
                return false;
        *ret = (int64_t)v;
        return true;
}

/* ".#NAME.gen-N" -> N, 0 when name is not that. */
static unsigned gen_tree_number(const char *entry, const char *name) {
        size_t nl = strlen(name);
        if (strncmp(entry, ".#", 2) != 0 || strncmp(entry + 2, name, nl) != 0 || strncmp(entry + 2 + nl, ".gen-", 5) != 0)
                return 0;
        uint64_t v;
        return parse_unsigned(entry + 2 + nl + 5, 1000000000, &v) ? (unsigned)v : 0;
}

/* A staging root of name: ".#NAME." and mkdtemp's six characters ("foo" never matches "foo.bar"'s). */
static bool is_staging_tree(const char *entry, const char *name) {
        size_t nl = strlen(name);
        return strncmp(entry, ".#", 2) == 0 && strncmp(entry + 2, name, nl) == 0 && entry[2 + nl] == '.' &&
               is_mkdtemp_suffix(entry + 3 + nl);
}

static char *gen_tree_name(const char *name, unsigned gen) {
        char *s = NULL;
        return asprintf(&s, ".#%s.gen-%u", name, gen) < 0 ? NULL : s;
}

/* Write name in dfd (O_EXCL: dfd is a fresh directory) and fsync it. */
static int write_synced(int dfd, const char *name, const char *data, mode_t mode) {
        _cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return negative_errno();
        int r = fs_write_all(fd, data, strlen(data));
        if (r < 0)
                return r;
        if (fchmod(fd, mode) < 0 || fsync(fd) < 0)
                return negative_errno();
        return 0;
}

static int fsync_path(int dirfd, const char *path) {
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return fsync(fd) < 0 ? negative_errno() : 0;
}

/* ---- meta ------------------------------------------------------------------------------------- */

int state_meta_parse(const char *text, const char *path, struct state_meta *ret, struct mkm_err *reterr) {
        struct state_meta m = { .source_date_epoch = 0 };
        bool have_gen = false, have_root = false;
        unsigned line = 0;
        for (const char *p = text; *p;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                line++;
                _cleanup_free_ char *l = strndup(p, len);
                if (!l)
                        return -ENOMEM;
                p += len + (nl ? 1 : 0);
                if (!l[0] || l[0] == '#')
                        continue;
                char *eq = strchr(l, '=');
                if (!eq)
                        return mkm_err_set(reterr, -MKM_E_PARSE, "%s:%u: expected key=value, got '%s'", path, line, l);
                *eq = 0;
                const char *k = l, *v = eq + 1;
                uint64_t u;
                if (strcmp(k, "generation") == 0) {
                        if (!parse_unsigned(v, 1000000000, &u) || u == 0)
                                return mkm_err_set(reterr, -MKM_E_PARSE,
                                                   "%s:%u: generation=: expected a number from 1, got '%s'", path, line, v);
                        m.generation = (unsigned)u;
                        have_gen = true;
                } else if (strcmp(k, "root") == 0) {
                        const char *colon = strchr(v, ':');
                        _cleanup_free_ char *dev = colon ? strndup(v, (size_t)(colon - v)) : NULL;
                        if (colon && !dev)
                                return -ENOMEM;
                        if (!colon || !parse_unsigned(dev, UINT64_MAX, &m.root_dev) ||
                            !parse_unsigned(colon + 1, UINT64_MAX, &m.root_ino))
                                return mkm_err_set(reterr, -MKM_E_PARSE,
                                                   "%s:%u: root=: expected DEV:INO (two numbers), got '%s'", path, line, v);
                        have_root = true;
                } else if (strcmp(k, "built") == 0 || strcmp(k, "source_date_epoch") == 0) {
                        int64_t s;
                        if (!parse_signed(v, &s))
                                return mkm_err_set(reterr, -MKM_E_PARSE, "%s:%u: %s=: expected seconds since 1970, got '%s'",
                                                   path, line, k, v);
                        *(k[0] == 'b' ? &m.built : &m.source_date_epoch) = s;
                } else if (strcmp(k, "deployed") == 0 || strcmp(k, "packages") == 0) {
                        if (!parse_unsigned(v, UINT64_MAX, &u))
                                return mkm_err_set(reterr, -MKM_E_PARSE, "%s:%u: %s=: expected a number, got '%s'", path,
                                                   line, k, v);
                        if (k[0] == 'd')
                                m.deployed = u;
                        else
                                m.packages = (size_t)u;
                } else if (strcmp(k, "mkmachine") == 0)
                        (void)snprintf(m.mkmachine, sizeof m.mkmachine, "%s", v);
                /* other keys: written by a newer mkmachine; ignored */
        }
        if (!have_gen)
                return mkm_err_set(reterr, -MKM_E_PARSE, "%s: missing generation=", path);
        if (!have_root)
                return mkm_err_set(reterr, -MKM_E_PARSE, "%s: missing root=DEV:INO", path);
        *ret = m;
        return 0;
}

int state_meta_format(const struct state_meta *m, char **ret) {
        if (asprintf(ret,
                     "generation=%u\nroot=%" PRIu64 ":%" PRIu64 "\nbuilt=%" PRId64 "\ndeployed=%" PRIu64
                     "\npackages=%zu\nsource_date_epoch=%" PRId64 "\nmkmachine=%s\n",
                     m->generation, m->root_dev, m->root_ino, m->built, m->deployed, m->packages, m->source_date_epoch,
                     m->mkmachine[0] ? m->mkmachine : MKM_VERSION) < 0)
                return -ENOMEM;
        return 0;
}

/* ---- load ------------------------------------------------------------------------------------- */

struct machine_state *state_free(struct machine_state *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_gens; i++) {
                free(s->gens[i].dir);
                free(s->gens[i].tree);
        }
        free(s->gens);
        free(s->name);
        free(s->state_dir);
        free(s->machines_dir);
        free(s);
        return NULL;
}

static int cmp_gen(const void *a, const void *b) {
        const struct machine_gen *x = a, *y = b;
        return x->gen < y->gen ? -1 : x->gen > y->gen;
}

/* The trees of name in the machines dir: NAME, .#NAME.gen-N, .#NAME.prev and staging roots. */
struct tree_entry {
        char *name;
        uint64_t dev, ino;
        bool claimed;
};

/* Whether tree t is generation g's: the inode of its root, on the device it was recorded on or
 * on the machines directory's own (machines_dev). Device numbers are not stable across reboots
 * (btrfs numbers its mounts, dm and NVMe devices as they appear), inode numbers are; trees are
 * made in the machines directory, so a tree on another device (something mounted there) is
 * never one of ours by a changed number. */
static bool tree_is_gen(const struct tree_entry *t, const struct machine_gen *g, uint64_t machines_dev) {
        return t->ino == g->root_ino && (t->dev == g->root_dev || t->dev == machines_dev);
}

static void trees_free(struct tree_entry *t, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(t[i].name);
        free(t);
}

static int list_trees(int machines_fd, const char *name, struct tree_entry **ret, size_t *ret_n) {
        DIR *dir = fs_opendir_dup(machines_fd);
        if (!dir)
                return errno == ENOENT ? 0 : negative_errno();
        _cleanup_free_ char *prev = NULL;
        if (asprintf(&prev, ".#%s.prev", name) < 0) {
                closedir(dir);
                return -ENOMEM;
        }
        struct tree_entry *t = NULL;
        size_t n = 0;
        int r = 0;
        struct dirent *de;
        while ((errno = 0, de = readdir(dir))) {
                if (strcmp(de->d_name, name) != 0 && strcmp(de->d_name, prev) != 0 && !gen_tree_number(de->d_name, name) &&
                    !is_staging_tree(de->d_name, name))
                        continue;
                struct stat st;
                if (fstatat(machines_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                struct tree_entry *nt = mkm_reallocarray(t, n + 1, sizeof *t);
                if (!nt) {
                        r = -ENOMEM;
                        break;
                }
                t = nt;
                t[n] = (struct tree_entry){ .name = strdup(de->d_name), .dev = st.st_dev, .ino = st.st_ino };
                if (!t[n++].name) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r >= 0 && !de && errno != 0)        /* a tree missed could be one a build left */
                r = negative_errno();
        closedir(dir);
        if (r < 0) {
                trees_free(t, n);
                return r;
        }
        *ret = t;
        *ret_n = n;
        return 0;
}

/* Read and parse DIR/meta. */
static int read_meta(const char *dir, struct state_meta *ret, struct mkm_err *reterr) {
        _cleanup_free_ char *path = fs_path_join(dir, "meta"), *text = NULL;
        if (!path)
                return -ENOMEM;
        int r = fs_read_file_follow_at(AT_FDCWD, path, META_MAX, &text, NULL);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot read %s: %s", path, mkm_strerror(r));
        return state_meta_parse(text, path, ret, reterr);
}

static int load_gen(const char *gen_dir, unsigned n, struct machine_gen *g, struct mkm_err *reterr) {
        *g = (struct machine_gen){ .gen = n };
        if (asprintf(&g->dir, "%s/%u", gen_dir, n) < 0)
                return -ENOMEM;
        _cleanup_free_ char *meta_path = fs_path_join(g->dir, "meta");
        if (!meta_path)
                return -ENOMEM;
        struct state_meta m;
        int r = read_meta(g->dir, &m, reterr);
        if (r < 0)
                return r;
        if (m.generation != n)
                return mkm_err_set(reterr, -MKM_E_PARSE, "%s: generation=%u, but the directory is gen/%u", meta_path,
                                   m.generation, n);
        g->root_dev = m.root_dev;
        g->root_ino = m.root_ino;
        g->built = m.built;
        g->deployed_seq = m.deployed;
        g->packages = m.packages;
        g->source_date_epoch = m.source_date_epoch;
        _cleanup_free_ char *digest_path = fs_path_join(g->dir, "digest"), *digest = NULL;
        if (!digest_path)
                return -ENOMEM;
        if (fs_read_file_follow_at(AT_FDCWD, digest_path, 256, &digest, NULL) >= 0) {
                digest[strcspn(digest, "\n")] = 0;
                (void)snprintf(g->digest, sizeof g->digest, "%s", digest);
        }
        return 0;
}

int state_load(struct mkm_ctx *ctx, const char *name, struct machine_state **ret, struct mkm_err *reterr) {
        _cleanup_(state_freep) struct machine_state *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        _cleanup_free_ char *top = state_top_of(ctx);
        s->name = strdup(name);
        s->machines_dir = machines_dir_of(ctx);
        s->state_dir = top ? fs_path_join(top, name) : NULL;
        _cleanup_free_ char *gen_dir = s->state_dir ? fs_path_join(s->state_dir, "gen") : NULL;
        if (!s->name || !s->machines_dir || !gen_dir)
                return -ENOMEM;

        DIR *dir = opendir(gen_dir);
        if (!dir && errno != ENOENT && errno != ENOTDIR)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %s", gen_dir, strerror(errno));
        int r = 0;
        struct dirent *de;
        while (dir && (errno = 0, de = readdir(dir))) {
                uint64_t n;
                if (!parse_unsigned(de->d_name, 1000000000, &n) || n == 0)
                        continue;       /* ".", "..", a generation being written (".#...") */
                struct machine_gen *ng = mkm_reallocarray(s->gens, s->n_gens + 1, sizeof *s->gens);
                if (!ng) {
                        r = -ENOMEM;
                        break;
                }
                s->gens = ng;
                r = load_gen(gen_dir, (unsigned)n, &s->gens[s->n_gens], reterr);
                s->n_gens++;
                if (r < 0)
                        break;
        }
        if (dir && r >= 0 && !de && errno != 0)        /* a generation missed: rollback would not see it */
                r = mkm_err_set(reterr, negative_errno(), "cannot list %s: %s", gen_dir, strerror(errno));
        if (dir)
                closedir(dir);
        if (r < 0)
                return r;
        if (s->n_gens)
                qsort(s->gens, s->n_gens, sizeof *s->gens, cmp_gen);

        _cleanup_close_ int mfd = open(s->machines_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct tree_entry *t = NULL;
        size_t nt = 0;
        struct stat mst = {};
        if (mfd >= 0 && fstat(mfd, &mst) < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot stat %s: %m", s->machines_dir);
        if (mfd >= 0) {
                r = list_trees(mfd, name, &t, &nt);
                if (r < 0)
                        return mkm_err_set(reterr, r, "cannot list %s: %s", s->machines_dir, mkm_strerror(r));
        }
        struct stat tst;
        if (mfd >= 0 && fstatat(mfd, name, &tst, AT_SYMLINK_NOFOLLOW) == 0) {
                /* Not only a directory: a symlink there is a machine too (machined lists it). */
                s->tree_exists = true;
                s->tree_mode = tst.st_mode & S_IFMT;
                s->tree_dev = tst.st_dev;
                s->tree_ino = tst.st_ino;
        }
        for (size_t j = 0; j < s->n_gens; j++) {
                struct machine_gen *g = &s->gens[j];
                /* The live tree first: after a crash between a swap and the rename of the old tree,
                 * no two trees share a root, so the order only matters for clarity. */
                for (size_t i = 0; i < nt && !g->tree; i++) {
                        if (!tree_is_gen(&t[i], g, mst.st_dev))
                                continue;
                        g->tree = fs_path_join(s->machines_dir, t[i].name);
                        if (!g->tree) {
                                trees_free(t, nt);
                                return -ENOMEM;
                        }
                        if (strcmp(t[i].name, name) == 0) {
                                g->live = true;
                                s->live = g;
                        }
                }
        }
        trees_free(t, nt);
        *ret = TAKE_PTR(s);
        return 0;
}

/* A machine's state is a directory of its name; hidden names are temporaries. */
static bool is_machine_state(int dirfd, const char *name, void *userdata) {
        (void)userdata;
        struct stat st;
        return name[0] != '.' && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

int state_list(struct mkm_ctx *ctx, char ***ret_names, struct mkm_err *reterr) {
        _cleanup_free_ char *top = state_top_of(ctx);
        if (!top)
                return -ENOMEM;
        _cleanup_close_ int dfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                if (errno != ENOENT)
                        return mkm_err_set(reterr, negative_errno(), "cannot open %s: %s", top, strerror(errno));
                *ret_names = calloc(1, sizeof(char *));
                return *ret_names ? 0 : -ENOMEM;
        }
        int r = fs_list_names(dfd, is_machine_state, NULL, 0, ret_names);
        if (r < 0 && r != -ENOMEM)
                return mkm_err_set(reterr, r, "cannot list %s: %s", top, mkm_strerror(r));
        return r;
}

int state_read_file(const struct machine_gen *g, const char *file, char **ret_text, struct mkm_err *reterr) {
        _cleanup_free_ char *p = fs_path_join(g->dir, file);
        if (!p)
                return -ENOMEM;
        int r = fs_read_file_follow_at(AT_FDCWD, p, STATE_FILE_MAX, ret_text, NULL);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot read %s: %s", p, mkm_strerror(r));
        return 0;
}

uint64_t state_next_seq(const struct machine_state *s) {
        uint64_t max = 0;
        for (size_t i = 0; i < s->n_gens; i++)
                if (s->gens[i].deployed_seq > max)
                        max = s->gens[i].deployed_seq;
        return max + 1;
}

/* ---- systemd's image lock --------------------------------------------------------------------- */

/* systemd locks an image path in image_path_lock() (src/shared/machine-image.c): a "local" lock
 * file beside the image, make_lock_file_for() -> DIR/.#NAME.lck, and a "global" one,
 * /run/systemd/nspawn/locks/inode-%lu:%lu of the image's (unsigned long) st_dev and st_ino
 * (not major:minor), so that a tree mounted elsewhere is locked too. systemd-nspawn takes them
 * exclusively (LOCK_EX|LOCK_NB; LOCK_SH with --read-only). make_lock_file_at()
 * (src/basic/lock-util.c) opens with O_CREAT|O_RDWR|O_NOFOLLOW, 0600, and locks with "UNPOSIX"
 * (open file description, F_OFD_SETLK) locks; older versions fell back to flock() on kernels
 * without OFD locks. release_lock_file() unlinks the file when it held it exclusively.
 * OFD locks and flock() locks do not see each other, so we test and take both kinds. */

static int lock_both(int fd, bool exclusive) {
        struct flock fl = { .l_type = exclusive ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET };
        if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
                return errno == EAGAIN || errno == EACCES ? -EBUSY : negative_errno();
        if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : negative_errno();
        return 0;
}

/* Try a lock file without creating it: 1 held by someone, 0 free or absent. */
static int probe_lock(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? 0 : negative_errno();
        int r = lock_both(fd, true);
        return r == -EBUSY ? 1 : r < 0 ? r : 0;
}

static char *global_lock_path(const char *run, const struct stat *st) {
        char *p = NULL;
        if (asprintf(&p, "%s/systemd/nspawn/locks/inode-%lu:%lu", run, (unsigned long)st->st_dev,
                     (unsigned long)st->st_ino) < 0)
                return NULL;
        return p;
}

/* The global lock of the tree at NAME: 1 held, 0 not (or no tree). */
static int global_lock_held(struct mkm_ctx *ctx, const char *name) {
        _cleanup_free_ char *mdir = machines_dir_of(ctx), *tree = mdir ? fs_path_join(mdir, name) : NULL;
        if (!tree)
                return -ENOMEM;
        int r;
        struct stat st;
        if (stat(tree, &st) < 0)
                return 0;
        /* The global lock lives in the real /run (DEV:INO are the host's); a scratch host root's
         * HOST/run is looked at too. */
        const char *runs[2] = { "/run", NULL };
        _cleanup_free_ char *hrun = NULL;
        if (ctx->host_root && strcmp(ctx->host_root, "/") != 0)
                runs[1] = hrun = fs_path_join(ctx->host_root, "run");
        for (size_t i = 0; i < ELEMENTSOF(runs); i++) {
                if (!runs[i])
                        continue;
                _cleanup_free_ char *g = global_lock_path(runs[i], &st);
                if (!g)
                        return -ENOMEM;
                r = probe_lock(g);
                if (r != 0)
                        return r;
        }
        return 0;
}

int state_machine_running(struct mkm_ctx *ctx, const char *name) {
        _cleanup_free_ char *mdir = machines_dir_of(ctx), *local = NULL;
        if (!mdir || asprintf(&local, "%s/.#%s.lck", mdir, name) < 0)
                return -ENOMEM;
        int r = probe_lock(local);
        if (r != 0)
                return r;
        return global_lock_held(ctx, name);
}

int state_image_lock(struct mkm_ctx *ctx, const char *name, int *ret_fd, struct mkm_err *reterr) {
        _cleanup_free_ char *mdir = machines_dir_of(ctx), *local = NULL;
        if (!mdir || asprintf(&local, "%s/.#%s.lck", mdir, name) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = -EBADF;
        int r = 0;
        /* As systemd's make_lock_file_at(): its owner removes the file when it lets go, so a lock
         * on a file that is no longer there (taken between our open and its unlink) is retried. */
        for (unsigned attempt = 0;; attempt++) {
                fd = open(local, O_CREAT | O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
                if (fd < 0)
                        return mkm_err_set(reterr, negative_errno(), "cannot open %s: %s", local, strerror(errno));
                r = lock_both(fd, true);
                if (r == -EBUSY)
                        return mkm_err_set(reterr, r, "machine '%s' is running (systemd's image lock %s is held)", name,
                                           local);
                if (r < 0)
                        return mkm_err_set(reterr, r, "cannot lock %s: %s", local, mkm_strerror(r));
                if (fs_fd_is_path(fd, local))
                        break;
                if (attempt >= 100)
                        return mkm_err_set(reterr, -EBUSY, "cannot lock %s: it is removed each time it is locked", local);
                closep(&fd);
                fd = -EBADF;
        }
        /* Held: nspawn cannot start the machine now; but one started before from another path
         * (a bind mount of the tree) holds only the global lock. */
        r = global_lock_held(ctx, name);
        if (r > 0) {
                (void)unlink(local);
                return mkm_err_set(reterr, -EBUSY, "machine '%s' is running (systemd's lock of its tree in "
                                                   "/run/systemd/nspawn/locks is held)", name);
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

void state_image_unlock(const char *machines_dir, const char *name, int fd) {
        if (fd < 0)
                return;
        _cleanup_free_ char *local = NULL;
        if (asprintf(&local, "%s/.#%s.lck", machines_dir, name) >= 0)
                (void)unlink(local);    /* we held it exclusively, as release_lock_file() */
        (void)close(fd);
}

/* ---- writing a generation ------------------------------------------------------------------- */

static int write_host_copy(int dfd, const char *relpath, const char *content) {
        _cleanup_free_ char *dir = fs_path_dirname(relpath);
        if (!dir)
                return -ENOMEM;
        int r = fs_mkdir_p_at(dfd, dir, 0755);
        if (r < 0)
                return r;
        return write_synced(dfd, relpath, content, 0644);
}

/* fsync every directory below dfd (after the files were synced one by one). */
static int sync_dirs_fn(int dfd, const char *name, const char *path, const struct stat *st, void *userdata) {
        if (!S_ISDIR(st->st_mode))
                return 0;
        return fsync_path(dfd, name);
}

int state_write_gen(struct mkm_ctx *ctx, const struct machine_state *s, const struct state_new_gen *g,
                    unsigned *ret_gen, struct mkm_err *reterr) {
        unsigned n = 1;
        for (size_t i = 0; i < s->n_gens; i++)
                if (s->gens[i].gen >= n)
                        n = s->gens[i].gen + 1;
        _cleanup_free_ char *gen_dir = fs_path_join(s->state_dir, "gen"), *tmp = NULL, *final = NULL;
        if (!gen_dir)
                return -ENOMEM;
        int r = fs_mkdir_p_at(AT_FDCWD, gen_dir, 0755);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot create %s: %s", gen_dir, mkm_strerror(r));
        if (asprintf(&tmp, "%s/.#%u.%d.XXXXXX", gen_dir, n, (int)getpid()) < 0 || asprintf(&final, "%s/%u", gen_dir, n) < 0)
                return -ENOMEM;
        if (!mkdtemp(tmp))
                return mkm_err_set(reterr, negative_errno(), "cannot create a directory in %s: %s", gen_dir, strerror(errno));
        (void)chmod(tmp, 0755);
        /* Declared before the first goto: fail's path runs their cleanup. */
        _cleanup_free_ char *digest_line = NULL, *path_line = NULL, *meta = NULL;
        _cleanup_close_ int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                r = negative_errno();
                goto fail;
        }
        struct state_meta m = {
                .generation = n, .root_dev = g->root_dev, .root_ino = g->root_ino, .built = (int64_t)time(NULL),
                .deployed = state_next_seq(s), .packages = g->packages, .source_date_epoch = g->source_date_epoch,
        };
        if (asprintf(&digest_line, "%s\n", g->digest) < 0 || asprintf(&path_line, "%s\n", g->recipe_path) < 0 ||
            state_meta_format(&m, &meta) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        r = write_synced(dfd, "recipe", g->recipe, 0644);
        if (r >= 0)
                r = write_synced(dfd, "recipe-path", path_line, 0644);
        if (r >= 0 && g->recipe_files)
                r = write_synced(dfd, "recipe-files", g->recipe_files, 0644);
        if (r >= 0 && g->recipe_reader)
                r = write_synced(dfd, "recipe-reader", g->recipe_reader, 0644);
        if (r >= 0)
                r = write_synced(dfd, "lock", g->lock, 0644);
        if (r >= 0)
                r = write_synced(dfd, "manifest", g->manifest, 0644);
        if (r >= 0)
                r = write_synced(dfd, "digest", digest_line, 0644);
        if (r >= 0 && (r = mkdirat(dfd, "host", 0755) < 0 ? negative_errno() : 0) >= 0) {
                _cleanup_close_ int hfd = openat(dfd, "host", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (hfd < 0)
                        r = negative_errno();
                for (size_t i = 0; r >= 0 && i < g->n_host; i++)
                        if (g->host[i].content)
                                r = write_host_copy(hfd, g->host[i].path, g->host[i].content);
        }
        /* meta last: a generation directory is complete when it has one (and it only counts
         * once renamed into place anyway). */
        if (r >= 0)
                r = write_synced(dfd, "meta", meta, 0644);
        if (r >= 0)
                r = fs_walk(dfd, 64, sync_dirs_fn, NULL);
        if (r >= 0 && fsync(dfd) < 0)
                r = negative_errno();
        if (r < 0)
                goto fail;
        if (rename(tmp, final) < 0) {
                r = negative_errno();
                goto fail;
        }
        r = fsync_path(AT_FDCWD, gen_dir);
        if (r >= 0)
                r = fsync_path(AT_FDCWD, s->state_dir);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot sync %s: %s", gen_dir, mkm_strerror(r));
        mkm_debug(ctx, "wrote generation %u of '%s' (%s)", n, s->name, final);
        *ret_gen = n;
        return 0;
fail:
        (void)fs_rm_rf_at(AT_FDCWD, tmp);
        return mkm_err_set(reterr, r, "cannot write the state of '%s' in %s: %s", s->name, gen_dir, mkm_strerror(r));
}

int state_set_deployed(const struct machine_gen *g, uint64_t seq, struct mkm_err *reterr) {
        _cleanup_free_ char *p = fs_path_join(g->dir, "meta"), *out = NULL;
        if (!p)
                return -ENOMEM;
        struct state_meta m;
        int r = read_meta(g->dir, &m, reterr);
        if (r < 0)
                return r;
        m.deployed = seq;
        if (state_meta_format(&m, &out) < 0)
                return -ENOMEM;
        _cleanup_close_ int dfd = open(g->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %s", g->dir, strerror(errno));
        r = fs_write_atomic_at(dfd, "meta", out, strlen(out), 0644);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot write %s: %s", p, mkm_strerror(r));
        return 0;
}

/* ---- host files ------------------------------------------------------------------------------ */

struct collect {
        char ***paths;
};

static int collect_fn(int dfd, const char *name, const char *path, const struct stat *st, void *userdata) {
        struct collect *c = userdata;
        if (!S_ISREG(st->st_mode))
                return 0;
        const char *rel = strncmp(path, "./", 2) == 0 ? path + 2 : path;
        return strv_contains(*c->paths, rel) ? 0 : strv_push(c->paths, rel);
}

static int collect_host_paths(const char *gen_dir, char ***paths) {
        _cleanup_free_ char *h = fs_path_join(gen_dir, "host");
        if (!h)
                return -ENOMEM;
        _cleanup_close_ int fd = open(h, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? 0 : negative_errno();
        struct collect c = { .paths = paths };
        return fs_walk(fd, 64, collect_fn, &c);
}

/* Make a removal or creation in path's directory durable (fs_write_atomic_at syncs its own). */
static void sync_dir_of(int hostfd, const char *path) {
        _cleanup_free_ char *dir = fs_path_dirname(path);
        _cleanup_close_ int fd = dir ? openat(hostfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -EBADF;
        if (fd >= 0)
                (void)fsync(fd);
}

/* Is the host file path (relative to hostfd) a regular file (not a symlink to one, not a FIFO,
 * which a read would wait on) holding exactly want? */
static bool host_file_is(int hostfd, const char *path, const char *want) {
        struct stat st;
        if (fstatat(hostfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                return false;
        _cleanup_close_ int fd = openat(hostfd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        _cleanup_free_ char *have = NULL;
        return fd >= 0 && fs_read_fd(fd, HOST_FILE_MAX, &have, NULL) >= 0 && strcmp(have, want) == 0;
}

/* Every host file path of the machine (relative to the host root): the standard ones (a
 * generation may have lost its copies: the layout before generations kept none), but only for a
 * machine mkmachine made (for a name without generations, a typo given to rm or a tree of someone
 * else's, they are not ours), and every generation's; *mine: those the generation in gen_dir has
 * (gen_dir NULL: none). *dropin_dir (may be NULL): the machine's own drop-in directory. */
static int host_paths(const struct machine_state *s, const char *gen_dir, char ***ret_all, char ***ret_mine,
                      char **ret_dropin_dir, struct mkm_err *reterr) {
        _cleanup_strv_free_ char **all = calloc(1, sizeof(char *)), **mine = calloc(1, sizeof(char *));
        if (!all || !mine)
                return -ENOMEM;
        char *std[3] = {};
        int r = hooks_host_file_paths(s->name, std);
        _cleanup_free_ char *dropin_dir = r >= 0 ? fs_path_dirname(std[1]) : NULL;
        if (r >= 0 && !dropin_dir)
                r = -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(std); i++) {
                if (r >= 0 && std[i] && s->n_gens > 0)
                        r = strv_push(&all, std[i]);
                free(std[i]);
        }
        for (size_t i = 0; r >= 0 && i < s->n_gens; i++)
                r = collect_host_paths(s->gens[i].dir, &all);
        if (r >= 0 && gen_dir)
                r = collect_host_paths(gen_dir, &mine);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot read the host files kept in %s: %s", s->state_dir, mkm_strerror(r));
        *ret_all = TAKE_PTR(all);
        if (ret_mine)
                *ret_mine = TAKE_PTR(mine);
        if (ret_dropin_dir)
                *ret_dropin_dir = TAKE_PTR(dropin_dir);
        return 0;
}

/* Make the host files those of the generation in gen_dir (NULL: none): remove every host file of
 * the machine that gen_dir has not, or (write false) has with other content; with write, then
 * write what differs. */
static int host_files_apply(struct mkm_ctx *ctx, const struct machine_state *s, const char *gen_dir, bool write,
                            struct mkm_err *reterr) {
        const char *root = ctx->host_root ? ctx->host_root : "/";
        _cleanup_close_ int hostfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (hostfd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open the host root %s: %s", root, strerror(errno));
        _cleanup_strv_free_ char **all = NULL, **mine = NULL;
        _cleanup_free_ char *dropin_dir = NULL;
        int r = host_paths(s, gen_dir, &all, &mine, &dropin_dir, reterr);
        if (r < 0)
                return r;
        for (char **p = all; *p; p++) {
                if (strv_contains(mine, *p) && write)
                        continue;
                if (strv_contains(mine, *p)) {
                        /* Kept through the swap only when it is already the new generation's. */
                        _cleanup_free_ char *want = NULL, *copy = NULL;
                        if (asprintf(&copy, "%s/host/%s", gen_dir, *p) < 0)
                                return -ENOMEM;
                        if (fs_read_file_follow_at(AT_FDCWD, copy, HOST_FILE_MAX, &want, NULL) >= 0 &&
                            host_file_is(hostfd, *p, want))
                                continue;
                }
                if (unlinkat(hostfd, *p, 0) < 0) {
                        if (errno == ENOENT || errno == ENOTDIR)        /* (no file under a non-directory) */
                                continue;
                        return mkm_err_set(reterr, negative_errno(), "cannot remove the host file /%s: %s", *p,
                                           strerror(errno));
                }
                mkm_debug(ctx, "removed the host file /%s", *p);
                sync_dir_of(hostfd, *p);
                /* The machine's own drop-in directory goes when empty (never a shared one such
                 * as etc/modules-load.d, whatever the machine is called). */
                _cleanup_free_ char *dir = fs_path_dirname(*p);
                if (dir && strcmp(dir, dropin_dir) == 0 && unlinkat(hostfd, dir, AT_REMOVEDIR) == 0)
                        sync_dir_of(hostfd, dir);
        }
        for (char **p = mine; write && *p; p++) {
                _cleanup_free_ char *want = NULL, *copy = NULL, *dir = fs_path_dirname(*p);
                if (!dir || asprintf(&copy, "%s/host/%s", gen_dir, *p) < 0)
                        return -ENOMEM;
                r = fs_read_file_follow_at(AT_FDCWD, copy, HOST_FILE_MAX, &want, NULL);
                if (r < 0)
                        return mkm_err_set(reterr, r, "cannot read %s: %s", copy, mkm_strerror(r));
                if (host_file_is(hostfd, *p, want))
                        continue;
                bool new_dir = faccessat(hostfd, dir, F_OK, AT_SYMLINK_NOFOLLOW) < 0;
                r = fs_mkdir_p_at(hostfd, dir, 0755);
                if (r >= 0)
                        r = fs_write_atomic_at(hostfd, *p, want, strlen(want), 0644);
                if (r >= 0 && new_dir)
                        sync_dir_of(hostfd, dir);       /* the drop-in directory's own entry */
                if (r < 0)
                        return mkm_err_set(reterr, r, "cannot write the host file /%s: %s", *p, mkm_strerror(r));
                mkm_debug(ctx, "wrote the host file /%s", *p);
                if (strstr(*p, ".service.d/"))
                        mkm_info(ctx, "the drop-in /%s changed: run 'systemctl daemon-reload' before starting the "
                                      "machine", *p);
        }
        return 0;
}

int state_install_host_files(struct mkm_ctx *ctx, const struct machine_state *s, const struct machine_gen *live,
                             struct mkm_err *reterr) {
        return host_files_apply(ctx, s, live ? live->dir : NULL, true, reterr);
}

int state_retire_host_files(struct mkm_ctx *ctx, const struct machine_state *s, const char *gen_dir,
                            struct mkm_err *reterr) {
        return host_files_apply(ctx, s, gen_dir, false, reterr);
}

const char *state_host_change_to_string(enum state_host_change c) {
        static const char *const names[] = {
                [STATE_HOST_CHANGED] = "changed",
                [STATE_HOST_ADDED] = "added",
                [STATE_HOST_REMOVED] = "removed",
        };
        return c >= 0 && c < (int)ELEMENTSOF(names) ? names[c] : NULL;
}

void state_host_diffs_free(struct state_host_diff *d, size_t n) {
        for (size_t i = 0; d && i < n; i++)
                free(d[i].path);
        free(d);
}

int state_host_files_diff(struct mkm_ctx *ctx, const struct machine_state *s, struct state_host_diff **ret,
                          size_t *ret_n, struct mkm_err *reterr) {
        *ret = NULL;
        *ret_n = 0;
        /* What the live generation installed. Without a live tree there is nothing to compare
         * with: recovery removed the generation whose tree is gone, with its copies, and the
         * host files are still its own (an older kept generation's differ by design). */
        const struct machine_gen *ref = s->live;
        if (!ref)
                return 0;
        const char *root = ctx->host_root ? ctx->host_root : "/";
        _cleanup_close_ int hostfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (hostfd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open the host root %s: %s", root, strerror(errno));
        _cleanup_strv_free_ char **all = NULL, **mine = NULL;
        int r = host_paths(s, ref->dir, &all, &mine, NULL, reterr);
        if (r < 0)
                return r;
        struct state_host_diff *d = NULL;
        size_t n = 0, cap = 0;
        for (char **p = all; *p; p++) {
                _cleanup_free_ char *want = NULL, *copy = NULL;
                if (strv_contains(mine, *p)) {
                        if (asprintf(&copy, "%s/host/%s", ref->dir, *p) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        r = fs_read_file_follow_at(AT_FDCWD, copy, HOST_FILE_MAX, &want, NULL);
                        if (r < 0) {
                                r = mkm_err_set(reterr, r, "cannot read %s: %s", copy, mkm_strerror(r));
                                break;
                        }
                }
                /* What is at the path itself: a symlink or anything but a file is not what
                 * mkmachine wrote. */
                struct stat st;
                bool present = fstatat(hostfd, *p, &st, AT_SYMLINK_NOFOLLOW) == 0;
                if (!present && errno != ENOENT && errno != ENOTDIR) {        /* (nothing under a non-directory) */
                        r = mkm_err_set(reterr, negative_errno(), "cannot stat the host file /%s: %m", *p);
                        break;
                }
                enum state_host_change c;
                if (!present && !want)
                        continue;
                else if (!present)
                        c = STATE_HOST_REMOVED;
                else if (!want)
                        c = STATE_HOST_ADDED;
                else if (host_file_is(hostfd, *p, want))
                        continue;
                else
                        c = STATE_HOST_CHANGED;
                if (mkm_grow((void **)&d, &cap, n, sizeof *d, 4) < 0) {
                        r = -ENOMEM;
                        break;
                }
                d[n] = (struct state_host_diff){ .change = c, .gen = ref->gen };
                if (asprintf(&d[n].path, "%s%s%s", root, root[strlen(root) - 1] == '/' ? "" : "/", *p) < 0) {
                        d[n].path = NULL;
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        if (r < 0) {
                state_host_diffs_free(d, n);
                return r;
        }
        *ret = d;
        *ret_n = n;
        return 0;
}

/* The marker of host files being replaced: while it exists, they may be half the old
 * generation's and half missing (state_retire_host_files() ran, state_install_host_files() did
 * not), and recovery rewrites them from the live generation. Without it, what is there is what
 * mkmachine installed or what someone changed by hand since, and recovery leaves it alone. */
#define HOST_PENDING "host-pending"

int state_host_pending(const struct machine_state *s, bool pending, struct mkm_err *reterr) {
        _cleanup_close_ int dfd = open(s->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %m", s->state_dir);
        int r;
        if (pending)
                r = fs_write_atomic_at(dfd, HOST_PENDING, "", 0, 0644);
        else
                r = unlinkat(dfd, HOST_PENDING, 0) < 0 && errno != ENOENT ? negative_errno() : 0;
        if (r >= 0 && fsync(dfd) < 0)
                r = negative_errno();
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot %s %s/%s: %s", pending ? "write" : "remove", s->state_dir,
                                   HOST_PENDING, mkm_strerror(r));
        return 0;
}

bool state_host_is_pending(const struct machine_state *s) {
        _cleanup_free_ char *p = fs_path_join(s->state_dir, HOST_PENDING);
        return p && access(p, F_OK) == 0;
}

/* ---- recovery -------------------------------------------------------------------------------- */

/* Remove ".#X.PID.XXXXXX" regular files of processes that are gone (fs_write_atomic_at's). */
static void remove_dead_temporaries(struct mkm_ctx *ctx, const char *path) {
        int n = fs_remove_temporaries_of(path, 0);
        if (n > 0)
                mkm_debug(ctx, "removed %d temporar%s in %s left by processes that were killed", n,
                          n == 1 ? "y" : "ies", path);
}

static int copy_file_synced(int from_dfd, const char *from, int to_dfd, const char *to) {
        _cleanup_free_ char *text = NULL;
        int r = fs_read_file_follow_at(from_dfd, from, STATE_FILE_MAX, &text, NULL);
        if (r < 0)
                return r;
        return write_synced(to_dfd, to, text, 0644);
}

/* Write one migrated generation (meta last, renamed into place). */
static int migrate_gen(int state_fd, unsigned n, const struct stat *root, bool with_files, char *const *host_paths,
                       int hostfd, int64_t built, size_t packages) {
        _cleanup_free_ char *tmp = NULL, *final = NULL, *meta = NULL;
        if (asprintf(&tmp, "gen/.#%u.%d.migrate", n, (int)getpid()) < 0 || asprintf(&final, "gen/%u", n) < 0)
                return -ENOMEM;
        (void)fs_rm_rf_at(state_fd, tmp);
        if (mkdirat(state_fd, tmp, 0755) < 0)
                return negative_errno();
        _cleanup_close_ int dfd = openat(state_fd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        int r = 0;
        static const char *const files[] = { "recipe", "lock", "manifest", "digest" };
        for (size_t i = 0; with_files && r >= 0 && i < ELEMENTSOF(files); i++) {
                r = copy_file_synced(state_fd, files[i], dfd, files[i]);
                if (r == -ENOENT)
                        r = 0;
        }
        if (r >= 0 && mkdirat(dfd, "host", 0755) < 0)
                r = negative_errno();
        for (char *const *p = host_paths; r >= 0 && p && *p; p++) {
                _cleanup_free_ char *text = NULL;
                if (fs_read_file_follow_at(hostfd, *p, HOST_FILE_MAX, &text, NULL) < 0)
                        continue;
                _cleanup_close_ int hfd = openat(dfd, "host", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                r = hfd < 0 ? negative_errno() : write_host_copy(hfd, *p, text);
        }
        struct state_meta m = { .generation = n, .root_dev = root->st_dev, .root_ino = root->st_ino, .built = built,
                                .deployed = n, .packages = packages };
        if (r >= 0)
                r = state_meta_format(&m, &meta);
        if (r >= 0)
                r = write_synced(dfd, "meta", meta, 0644);
        if (r >= 0)
                r = fs_walk(dfd, 64, sync_dirs_fn, NULL);
        if (r >= 0 && fsync(dfd) < 0)
                r = negative_errno();
        if (r >= 0 && renameat(state_fd, tmp, state_fd, final) < 0)
                r = negative_errno();
        if (r < 0)
                (void)fs_rm_rf_at(state_fd, tmp);
        return r;
}

/* What the generations written so far say: the highest number, whether gen/1 is taken, and
 * whether one of them has the root inode ino (then that tree is migrated). */
struct gens_seen {
        unsigned max;
        bool one;
};

/* 1 or 0; a negative errno when gen/ could not be listed whole (a generation missed could take
 * the number of one that exists, or migrate a tree twice). */
static int gen_has_root(const char *state_dir, int gfd, uint64_t ino, struct gens_seen *seen) {
        *seen = (struct gens_seen){};
        DIR *d = gfd >= 0 ? fs_opendir_dup(gfd) : NULL;
        if (!d)
                return 0;
        bool found = false;
        struct dirent *de;
        uint64_t v;
        while ((errno = 0, de = readdir(d))) {
                if (!parse_unsigned(de->d_name, 1000000000, &v))
                        continue;
                seen->max = (unsigned)v > seen->max ? (unsigned)v : seen->max;
                seen->one = seen->one || v == 1;
                _cleanup_free_ char *dir = NULL;
                struct state_meta m;
                struct mkm_err err = {};
                if (asprintf(&dir, "%s/gen/%s", state_dir, de->d_name) >= 0 && read_meta(dir, &m, &err) >= 0 &&
                    m.root_ino == ino)
                        found = true;
        }
        int r = errno != 0 ? negative_errno() : found;
        closedir(d);
        return r;
}

/* The layout of mkmachine before generations: state_dir/{recipe,lock,manifest,digest} describe
 * the live tree, and .#NAME.prev (if any) is the previous one, without state of its own. Both
 * become generations (prev 1, live 2, or live 1); the host files of the day are copied into
 * both, as the old layout kept no others. An interrupted migration is finished: each tree that
 * no generation has (by its root's inode) is migrated, the live one first, and the old files go
 * only after that. */
static int migrate_old_layout(struct mkm_ctx *ctx, const char *name, const char *state_dir, int state_fd,
                              int machines_fd, struct mkm_err *reterr) {
        struct stat st;
        if (fstatat(state_fd, "digest", &st, AT_SYMLINK_NOFOLLOW) < 0 &&
            fstatat(state_fd, "manifest", &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
        int64_t built = st.st_mtime;
        int r = 0;
        _cleanup_free_ char *prev = NULL;
        if (asprintf(&prev, ".#%s.prev", name) < 0)
                return -ENOMEM;
        struct stat pst, lst;
        bool has_prev = fstatat(machines_fd, prev, &pst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(pst.st_mode);
        bool has_live = fstatat(machines_fd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(lst.st_mode);
        _cleanup_close_ int gfd = openat(state_fd, "gen", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct gens_seen seen = {};
        /* The live tree's generation first: the old files are its only state, and they go at the
         * end of this. .#NAME.prev takes gen/1 when it is free; else it stays unmigrated (and
         * recovery leaves a .#NAME.prev it does not know alone). */
        int in_live = has_live ? gen_has_root(state_dir, gfd, lst.st_ino, &seen) : 0;
        int in_prev = in_live >= 0 && has_prev ? gen_has_root(state_dir, gfd, pst.st_ino, &seen) : 0;
        if (in_live < 0 || in_prev < 0) {
                int e = in_live < 0 ? in_live : in_prev;
                return mkm_err_set(reterr, e, "cannot list %s/gen: %s", state_dir, mkm_strerror(e));
        }
        bool do_live = has_live && !in_live;
        bool do_prev = has_prev && !in_prev && !seen.one;
        unsigned live_n = (seen.max > 0 ? seen.max : do_prev ? 1 : 0) + 1;   /* above all, so live */
        if (do_live || do_prev) {
                mkm_info(ctx, "migrating the state of '%s' in %s to generations", name, state_dir);
                if (mkdirat(state_fd, "gen", 0755) < 0 && errno != EEXIST)
                        return mkm_err_set(reterr, negative_errno(), "cannot create %s/gen: %s", state_dir, strerror(errno));
                const char *root = ctx->host_root ? ctx->host_root : "/";
                _cleanup_close_ int hostfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                char *std[4] = {};
                r = hooks_host_file_paths(name, std);
                size_t packages = 0;
                _cleanup_free_ char *lock = NULL;
                if (fs_read_file_follow_at(state_fd, "lock", STATE_FILE_MAX, &lock, NULL) >= 0)
                        for (const char *p = lock; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                                if (strncmp(p, "package ", 8) == 0)
                                        packages++;
                if (r >= 0 && do_live)
                        r = migrate_gen(state_fd, live_n, &lst, true, std, hostfd, built, packages);
                if (r >= 0)
                        r = fsync_path(state_fd, "gen");
                if (r >= 0 && do_prev)
                        r = migrate_gen(state_fd, 1, &pst, false, std, hostfd, pst.st_mtime, 0);
                for (size_t i = 0; i < ELEMENTSOF(std); i++)
                        free(std[i]);
                if (r >= 0)
                        r = fsync_path(state_fd, "gen");
                if (r < 0)
                        return mkm_err_set(reterr, r, "cannot migrate the state in %s: %s", state_dir, mkm_strerror(r));
        }
        static const char *const old[] = { "recipe", "lock", "manifest", "digest" };
        for (size_t i = 0; i < ELEMENTSOF(old); i++)
                (void)unlinkat(state_fd, old[i], 0);
        (void)fsync(state_fd);
        return 0;
}

int state_remove_gen_dir(const char *dir) {
        _cleanup_free_ char *parent = fs_path_dirname(dir), *tmp = NULL;
        const char *base = strrchr(dir, '/');
        if (!parent || asprintf(&tmp, "%s/.#rm.%s.%d", parent, base ? base + 1 : dir, (int)getpid()) < 0)
                return -ENOMEM;
        if (rename(dir, tmp) < 0)
                return negative_errno();
        /* No longer a generation: a kill from here on leaves a ".#" entry, which recovery removes. */
        _cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd >= 0)
                (void)fsync(pfd);
        return fs_rm_rf_at(AT_FDCWD, tmp);
}

static int remove_gen_dir(struct mkm_ctx *ctx, const char *state_dir, unsigned n) {
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/gen/%u", state_dir, n) < 0)
                return -ENOMEM;
        int r = state_remove_gen_dir(p);
        if (r < 0 && r != -ENOENT)
                mkm_warn(ctx, "cannot remove %s: %s", p, mkm_strerror(r));
        return r;
}

int state_recover(struct mkm_ctx *ctx, const char *name, struct mkm_err *reterr) {
        _cleanup_free_ char *mdir = machines_dir_of(ctx), *top = state_top_of(ctx);
        _cleanup_free_ char *state_dir = top ? fs_path_join(top, name) : NULL;
        if (!mdir || !state_dir)
                return -ENOMEM;
        _cleanup_close_ int machines_fd = open(mdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int state_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (machines_fd < 0 || state_fd < 0)
                return 0;       /* nothing of this machine yet */

        int r = migrate_old_layout(ctx, name, state_dir, state_fd, machines_fd, reterr);
        if (r < 0)
                return r;

        /* Generation directories being written when a build died: never renamed into place. */
        _cleanup_close_ int gfd = openat(state_fd, "gen", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = gfd >= 0 ? fs_opendir_dup(gfd) : NULL;
        if (d) {
                struct dirent *de;
                while ((de = readdir(d)))
                        if (strncmp(de->d_name, ".#", 2) == 0) {
                                mkm_debug(ctx, "removing %s/gen/%s (an unfinished generation)", state_dir, de->d_name);
                                (void)fs_rm_rf_at(gfd, de->d_name);
                        }
                closedir(d);
        }

        _cleanup_(state_freep) struct machine_state *s = NULL;
        r = state_load(ctx, name, &s, reterr);
        if (r < 0)
                return r;
        struct tree_entry *t = NULL;
        size_t nt = 0;
        struct stat mst;
        if (fstat(machines_fd, &mst) < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot stat %s: %m", mdir);
        r = list_trees(machines_fd, name, &t, &nt);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot list %s: %s", mdir, mkm_strerror(r));
        /* A generation's tree at its own name that is not its tree (copied back from a backup,
         * replaced by hand): what recovery would remove is someone's data, so nothing is. */
        for (size_t j = 0; j < s->n_gens; j++) {
                const struct machine_gen *g = &s->gens[j];
                _cleanup_free_ char *own = gen_tree_name(name, g->gen);
                if (!own) {
                        trees_free(t, nt);
                        return -ENOMEM;
                }
                bool found = false;
                const struct tree_entry *at_own = NULL;
                for (size_t i = 0; i < nt; i++) {
                        found = found || tree_is_gen(&t[i], g, mst.st_dev);
                        if (strcmp(t[i].name, own) == 0)
                                at_own = &t[i];
                }
                if (!found && at_own) {
                        r = mkm_err_set(reterr, -MKM_E_REFUSED,
                                        "%s/%s is not the tree generation %u of '%s' recorded (its root is inode %" PRIu64
                                        ", %s/gen/%u/meta says %" PRIu64 "): replaced or restored from a copy? Nothing "
                                        "was removed; move it out of %s (or remove it) and run the command again",
                                        mdir, own, g->gen, name, at_own->ino, state_dir, g->gen, g->root_ino, mdir);
                        trees_free(t, nt);
                        return r;
                }
        }
        /* The same for the live tree: the generation deployed last has no tree, and something
         * no generation has is at NAME (replaced, or copied back from a backup). Dropping the
         * generation would lose its recipe and lock and leave the tree "not built by
         * mkmachine": only with --force. */
        const struct machine_gen *last = NULL;
        for (size_t j = 0; j < s->n_gens; j++)
                if (!last || s->gens[j].deployed_seq > last->deployed_seq)
                        last = &s->gens[j];
        struct stat nst;
        if (last && !ctx->force && fstatat(machines_fd, name, &nst, AT_SYMLINK_NOFOLLOW) == 0) {
                struct tree_entry at_name = { .dev = nst.st_dev, .ino = nst.st_ino };
                bool last_found = false, name_known = false;
                for (size_t i = 0; i < nt; i++)
                        last_found = last_found || tree_is_gen(&t[i], last, mst.st_dev);
                for (size_t j = 0; j < s->n_gens; j++)
                        name_known = name_known || tree_is_gen(&at_name, &s->gens[j], mst.st_dev);
                if (!last_found && !name_known) {
                        r = mkm_err_set(reterr, -MKM_E_REFUSED,
                                        "%s/%s is not the tree of generation %u of '%s', deployed last (its root is "
                                        "inode %" PRIu64 ", %s/gen/%u/meta says %" PRIu64 "): replaced or restored from "
                                        "a copy? Nothing was removed; --force keeps the tree as one mkmachine did not "
                                        "build and drops the generation's state",
                                        mdir, name, last->gen, name, (uint64_t)nst.st_ino, state_dir, last->gen,
                                        last->root_ino);
                        trees_free(t, nt);
                        return r;
                }
        }
        uint64_t live_seq = s->live ? s->live->deployed_seq : 0;
        bool changed = false;
        for (size_t j = 0; j < s->n_gens; j++) {
                struct machine_gen *g = &s->gens[j];
                struct tree_entry *te = NULL;
                for (size_t i = 0; i < nt; i++)
                        if (tree_is_gen(&t[i], g, mst.st_dev))
                                te = &t[i];
                if (g->live) {
                        if (te)
                                te->claimed = true;
                        continue;
                }
                if (!te) {
                        mkm_debug(ctx, "removing generation %u of '%s': its tree is gone", g->gen, name);
                        (void)remove_gen_dir(ctx, state_dir, g->gen);
                        continue;
                }
                if (is_staging_tree(te->name, name) && (!s->live || g->deployed_seq > live_seq)) {
                        /* Written, but the build stopped before the swap: never deployed. */
                        mkm_info(ctx, "removing generation %u of '%s', which was never deployed", g->gen, name);
                        (void)fs_rm_rf_at(machines_fd, te->name);
                        (void)remove_gen_dir(ctx, state_dir, g->gen);
                        changed = true;
                        continue;
                }
                te->claimed = true;
                _cleanup_free_ char *want = gen_tree_name(name, g->gen);
                if (!want) {
                        trees_free(t, nt);
                        return -ENOMEM;
                }
                if (strcmp(te->name, want) == 0)
                        continue;
                /* A stray tree in the way (no generation has its root) goes first. */
                for (size_t i = 0; i < nt; i++)
                        if (strcmp(t[i].name, want) == 0 && !tree_is_gen(&t[i], g, mst.st_dev)) {
                                (void)fs_rm_rf_at(machines_fd, want);
                                t[i].claimed = true;    /* gone: nothing left to remove below */
                        }
                mkm_debug(ctx, "renaming %s/%s to %s (generation %u)", mdir, te->name, want, g->gen);
                if (renameat(machines_fd, te->name, machines_fd, want) < 0)
                        mkm_warn(ctx, "cannot rename %s/%s to %s: %s", mdir, te->name, want, strerror(errno));
                changed = true;
        }
        /* Staging roots and gen-named trees that no generation claims (never NAME itself, nor a
         * .#NAME.prev that was not migrated: those may be someone's own). */
        for (size_t i = 0; i < nt; i++) {
                if (t[i].claimed || (!is_staging_tree(t[i].name, name) && !gen_tree_number(t[i].name, name)))
                        continue;
                mkm_debug(ctx, "removing %s/%s (no generation of '%s' has it)", mdir, t[i].name, name);
                int q = fs_rm_rf_at(machines_fd, t[i].name);
                if (q < 0)
                        mkm_warn(ctx, "cannot remove %s/%s: %s; ignoring", mdir, t[i].name, mkm_strerror(q));
                changed = true;
        }
        trees_free(t, nt);
        if (changed)
                (void)fsync(machines_fd);
        (void)fsync(gfd >= 0 ? gfd : state_fd);

        /* The host files: after an interrupted swap (the marker), the live generation's; when no
         * generation is left, they go (they were the generations', and nothing else would ever
         * remove them). Otherwise they stay as they are: what differs from the live generation's
         * was changed by hand, which verify shows and a rebuild refuses to throw away. */
        _cleanup_(state_freep) struct machine_state *before = TAKE_PTR(s);
        r = state_load(ctx, name, &s, reterr);
        if (r < 0)
                return r;
        bool pending = faccessat(state_fd, HOST_PENDING, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
        if (s->live && pending)
                r = state_install_host_files(ctx, s, s->live, reterr);
        else if (s->n_gens == 0 && before->n_gens > 0)
                r = state_install_host_files(ctx, before, NULL, reterr);
        if (r >= 0 && pending && (s->live || s->n_gens == 0)) {
                mkm_debug(ctx, "host files of '%s' rewritten after an interrupted swap", name);
                r = state_host_pending(s, false, reterr);
        }
        if (r < 0)
                return r;
        /* Temporaries of killed processes: the state dir and its generations (meta rewritten by
         * a rollback), the host files' dirs. */
        remove_dead_temporaries(ctx, state_dir);
        for (size_t i = 0; i < s->n_gens; i++)
                remove_dead_temporaries(ctx, s->gens[i].dir);
        char *std[3] = {};
        if (hooks_host_file_paths(name, std) >= 0) {
                const char *root = ctx->host_root ? ctx->host_root : "/";
                for (size_t i = 0; i < ELEMENTSOF(std); i++) {
                        _cleanup_free_ char *dir = std[i] ? fs_path_dirname(std[i]) : NULL;
                        _cleanup_free_ char *p = dir ? fs_path_join(root, dir) : NULL;
                        if (p)
                                remove_dead_temporaries(ctx, p);
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(std); i++)
                free(std[i]);
        return 0;
}
