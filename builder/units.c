/* SPDX-License-Identifier: MIT */
/* Enabling systemd units offline, as `systemctl --root=R enable` (systemd 252, src/shared/install.c)
 * does it: the unit is looked up in the tree's unit search path, symlinks are followed the way
 * install_info_traverse() follows them, the [Install] section of the unit file and its drop-ins is
 * parsed with systemd's conf-parser rules, specifiers are expanded as install_name_printf() does,
 * and the symlinks are created under etc/systemd/system/ with the targets systemctl writes.
 *
 * The threat is a hostile tree: every path is resolved inside it (chase_in_root()), symlinks are
 * created with symlinkat() relative to a directory fd that was resolved inside the tree, symlink
 * chains are capped, files are read with a size cap, only regular files are opened, and every
 * name that ends up in a path is a validated unit name (no '/', no "..").
 *
 * Deliberate differences from systemctl are listed in units.h. */
#include "units.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "ctx.h"
#include "util/chase.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/strv.h"

#define UNIT_NAME_MAX 256               /* systemd: names are shorter than this */
#define UNIT_FOLLOW_MAX 64              /* systemd: UNIT_FILE_FOLLOW_SYMLINK_MAX */
#define UNIT_FILE_MAX (16u << 20)       /* bytes read from one unit file or drop-in */
#define UNIT_LINE_MAX (1u << 20)        /* systemd: LONG_LINE_MAX */
#define UNIT_DROPINS_MAX 1024u          /* drop-ins read for one unit */
#define UNIT_CONTEXT_MAX 4096u          /* units one enable call may touch (Also= fan-out) */

#define CONFIG_PATH "/etc/systemd/system"

/* The system manager's search path in --root mode (systemd's lookup_paths_init() for the system
 * scope, the control, transient, attached and generator directories included). Order matters: the
 * first directory holding a name wins. Upstream order: /usr/lib before /lib (see units.h). */
static const char *const search_path[] = {
        "/etc/systemd/system.control",
        "/run/systemd/system.control",
        "/run/systemd/transient",
        "/run/systemd/generator.early",
        "/etc/systemd/system",
        "/etc/systemd/system.attached",
        "/run/systemd/system",
        "/run/systemd/system.attached",
        "/run/systemd/generator",
        "/usr/local/lib/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
        "/run/systemd/generator.late",
};

/* The same for a systemd built with split-usr (Debian 12's 252): /lib before /usr/lib, so that its
 * systemctl writes /lib/systemd/system/... link targets. */
static const char *const search_path_split_usr[ELEMENTSOF(search_path)] = {
        "/etc/systemd/system.control",
        "/run/systemd/system.control",
        "/run/systemd/transient",
        "/run/systemd/generator.early",
        "/etc/systemd/system",
        "/etc/systemd/system.attached",
        "/run/systemd/system",
        "/run/systemd/system.attached",
        "/run/systemd/generator",
        "/usr/local/lib/systemd/system",
        "/lib/systemd/system",
        "/usr/lib/systemd/system",
        "/run/systemd/generator.late",
};

static const char *const generator_dirs[] = {
        "/run/systemd/generator.early",
        "/run/systemd/generator",
        "/run/systemd/generator.late",
};

/* ---- unit names (systemd's unit-name.c) ---- */

enum {
        NAME_PLAIN = 1 << 0,    /* foo.service */
        NAME_TEMPLATE = 1 << 1, /* foo@.service */
        NAME_INSTANCE = 1 << 2, /* foo@bar.service */
        NAME_ANY = NAME_PLAIN | NAME_TEMPLATE | NAME_INSTANCE,
};

enum unit_type {
        TYPE_SERVICE,
        TYPE_MOUNT,
        TYPE_SWAP,
        TYPE_SOCKET,
        TYPE_TARGET,
        TYPE_DEVICE,
        TYPE_AUTOMOUNT,
        TYPE_TIMER,
        TYPE_PATH,
        TYPE_SLICE,
        TYPE_SCOPE,
        _TYPE_MAX,
        _TYPE_INVALID = -1,
};

static const char *const type_names[_TYPE_MAX] = {
        [TYPE_SERVICE] = "service", [TYPE_MOUNT] = "mount",         [TYPE_SWAP] = "swap",
        [TYPE_SOCKET] = "socket",   [TYPE_TARGET] = "target",       [TYPE_DEVICE] = "device",
        [TYPE_AUTOMOUNT] = "automount", [TYPE_TIMER] = "timer",     [TYPE_PATH] = "path",
        [TYPE_SLICE] = "slice",     [TYPE_SCOPE] = "scope",
};

static bool name_char_ok(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' || c == '-' ||
               c == '_' || c == '.' || c == '\\';
}

static int type_from_string(const char *s) {
        for (int t = 0; t < _TYPE_MAX; t++)
                if (strcmp(s, type_names[t]) == 0)
                        return t;
        return _TYPE_INVALID;
}

static bool name_is_valid(const char *n, int flags) {
        if (!n || !*n || strlen(n) >= UNIT_NAME_MAX)
                return false;
        const char *e = strrchr(n, '.');
        if (!e || e == n || type_from_string(e + 1) < 0)
                return false;
        const char *at = NULL;
        for (const char *i = n; i < e; i++) {
                if (*i == '@' && !at)
                        at = i;
                if (*i != '@' && !name_char_ok(*i))
                        return false;
        }
        if (at == n)
                return false;
        if ((flags & NAME_PLAIN) && !at)
                return true;
        if ((flags & NAME_INSTANCE) && at && e > at + 1)
                return true;
        if ((flags & NAME_TEMPLATE) && at && e == at + 1)
                return true;
        return false;
}

static int name_classify(const char *n) {
        if (name_is_valid(n, NAME_PLAIN))
                return NAME_PLAIN;
        if (name_is_valid(n, NAME_TEMPLATE))
                return NAME_TEMPLATE;
        if (name_is_valid(n, NAME_INSTANCE))
                return NAME_INSTANCE;
        return -EINVAL;
}

static int name_type(const char *n) {
        const char *e = strrchr(n, '.');
        return e ? type_from_string(e + 1) : _TYPE_INVALID;
}

static bool type_may_alias(int t) {
        return t == TYPE_SERVICE || t == TYPE_SOCKET || t == TYPE_TARGET || t == TYPE_DEVICE || t == TYPE_TIMER ||
               t == TYPE_PATH;
}

static bool type_may_template(int t) {
        return t == TYPE_SERVICE || t == TYPE_SOCKET || t == TYPE_TARGET || t == TYPE_TIMER || t == TYPE_PATH;
}

static bool instance_is_valid(const char *s) {
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (*s != '@' && !name_char_ok(*s))
                        return false;
        return true;
}

/* "foo" of foo@bar.service or foo.service. */
static char *name_prefix(const char *n) {
        const char *p = strchr(n, '@');
        if (!p)
                p = strrchr(n, '.');
        return strndup(n, (size_t)(p - n));
}

/* "bar" of foo@bar.service, "" for a template or a plain name. */
static char *name_instance(const char *n) {
        const char *p = strchr(n, '@');
        if (!p)
                return strdup("");
        const char *d = strrchr(p, '.');
        return strndup(p + 1, (size_t)(d - p - 1));
}

/* foo@.service of foo@bar.service; NULL with errno EINVAL when n is no instance or template. */
static char *name_template(const char *n) {
        if (!name_is_valid(n, NAME_INSTANCE | NAME_TEMPLATE)) {
                errno = EINVAL;
                return NULL;
        }
        const char *p = strchr(n, '@'), *e = strrchr(n, '.');
        char *s;
        if (asprintf(&s, "%.*s%s", (int)(p - n + 1), n, e) < 0)
                return NULL;
        return s;
}

/* foo@INST.service from foo@.service or foo@x.service; NULL with errno EINVAL if invalid. */
static char *name_replace_instance(const char *n, const char *inst) {
        if (!name_is_valid(n, NAME_INSTANCE | NAME_TEMPLATE) || !instance_is_valid(inst)) {
                errno = EINVAL;
                return NULL;
        }
        const char *p = strchr(n, '@'), *e = strrchr(n, '.');
        char *s;
        if (asprintf(&s, "%.*s%s%s", (int)(p - n + 1), n, inst, e) < 0)
                return NULL;
        if (!name_is_valid(s, NAME_INSTANCE)) {
                free(s);
                errno = EINVAL;
                return NULL;
        }
        return s;
}

/* ---- paths (root-relative, always starting with '/') ---- */

static const char *path_basename(const char *p) {
        const char *s = strrchr(p, '/');
        return s ? s + 1 : p;
}

static char *path_dirname(const char *p) {
        const char *s = strrchr(p, '/');
        if (!s || s == p)
                return strdup("/");
        return strndup(p, (size_t)(s - p));
}

/* Next component of *p, skipping empty and "." ones (systemd's path_find_first_component). */
static size_t next_component(const char **p, const char **ret) {
        for (;;) {
                while (**p == '/')
                        (*p)++;
                if (!**p)
                        return 0;
                const char *s = *p;
                while (**p && **p != '/')
                        (*p)++;
                size_t n = (size_t)(*p - s);
                if (n == 1 && s[0] == '.')
                        continue;
                *ret = s;
                return n;
        }
}

/* Component-wise prefix test; ".." is not resolved, as in systemd's path_startswith(). */
static bool path_startswith(const char *path, const char *prefix) {
        for (;;) {
                const char *a, *b;
                size_t nb = next_component(&prefix, &b);
                if (nb == 0)
                        return true;
                size_t na = next_component(&path, &a);
                if (na != nb || memcmp(a, b, na) != 0)
                        return false;
        }
}

static bool path_equal(const char *a, const char *b) {
        for (;;) {
                const char *x, *y;
                size_t nx = next_component(&a, &x), ny = next_component(&b, &y);
                if (nx != ny || memcmp(x, y, nx) != 0)
                        return false;
                if (nx == 0)
                        return true;
        }
}

static bool path_in_list(const char *dir, const char *const *list, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (path_equal(dir, list[i]))
                        return true;
        return false;
}

static bool path_under_search_path(const char *p) {
        for (size_t i = 0; i < ELEMENTSOF(search_path); i++)
                if (path_startswith(p, search_path[i]))
                        return true;
        return false;
}

/* The parent directory of p is one of list. */
static int parent_in(const char *p, const char *const *list, size_t n) {
        _cleanup_free_ char *d = path_dirname(p);
        if (!d)
                return -ENOMEM;
        return path_in_list(d, list, n);
}

static int in_search_path(const char *p) {
        return parent_in(p, search_path, ELEMENTSOF(search_path));
}

static int path_is_config(const char *p) {
        static const char *const config[] = { "/etc/systemd/system", "/run/systemd/system" };
        return parent_in(p, config, ELEMENTSOF(config));
}

static int path_is_generated_or_transient(const char *p) {
        static const char *const transient[] = { "/run/systemd/transient" };
        int r = parent_in(p, generator_dirs, ELEMENTSOF(generator_dirs));
        if (r != 0)
                return r;
        return parent_in(p, transient, ELEMENTSOF(transient));
}

/* ---- the install context ---- */

enum install_mode {
        MODE_INVALID,
        MODE_REGULAR,
        MODE_LINKED,    /* a symlink to a file outside the search path */
        MODE_ALIAS,     /* a symlink to a file inside the search path */
        MODE_MASKED,    /* empty, or a symlink to /dev/null */
};

struct unit_info {
        char *name;
        char *path;             /* root-relative path of the unit file (or symlink), once found */
        char *symlink_target;   /* for MODE_LINKED/MODE_ALIAS: root-relative, chased */
        enum install_mode mode;
        bool auxiliary;         /* only pulled in by Also=: failures are warnings */
        char **aliases, **wanted_by, **required_by, **also;
        char *default_instance;
};

struct uctx {
        const struct mkm_ctx *ctx;
        int rootfd;
        const char *const *sp;          /* search_path or search_path_split_usr */
        struct unit_info **items;       /* insertion order = systemd's will_process order */
        size_t n, cap;
        struct hashmap *by_name;        /* items by name (systemd's ordered hashmap): a unit's
                                         * Also= list is looked up once per entry, and a
                                         * linear search made a 4096-unit fan-out take minutes */
        struct mkm_err last;            /* detail of the most recent failure, not yet reported */
        struct mkm_err *reterr;
        struct mkm_err first;           /* the first failure reported (systemctl prints them all) */
        bool oom;
        /* search_dir_gone(): which search directories do not resolve to a directory in the tree,
         * as of the writes-th create_symlink() (which may make one). Most of the thirteen do not
         * exist in a tree, and a unit's search looks in each up to four times. */
        unsigned writes;
        struct {
                unsigned writes;
                int gone;               /* -ENOENT or -ENOTDIR, or 0: look in it */
                bool known;
        } dirs[13];
};

_Static_assert(sizeof ((struct uctx *)0)->dirs / sizeof ((struct uctx *)0)->dirs[0] == ELEMENTSOF(search_path),
               "one cache entry per search directory");

/* What chase_in_root() says of search directory d itself, when that is that it is missing or not
 * a directory: then every path below it fails the same way at the same component (the walk is
 * component by component), so a lookup there can be answered without one. 0 otherwise (it exists,
 * or failed otherwise: the lookup itself then says how). */
static int search_dir_gone(struct uctx *u, size_t d) {
        if (!u->dirs[d].known || u->dirs[d].writes != u->writes) {
                int r = chase_in_root(u->rootfd, u->sp[d], CHASE_MUST_BE_DIRECTORY, NULL, NULL);
                u->dirs[d].gone = r == -ENOENT || r == -ENOTDIR ? r : 0;
                u->dirs[d].writes = u->writes;
                u->dirs[d].known = true;
        }
        return u->dirs[d].gone;
}

static void unit_info_free(struct unit_info *i) {
        if (!i)
                return;
        free(i->name);
        free(i->path);
        free(i->symlink_target);
        strv_free(i->aliases);
        strv_free(i->wanted_by);
        strv_free(i->required_by);
        strv_free(i->also);
        free(i->default_instance);
        free(i);
}

static void uctx_done(struct uctx *u) {
        for (size_t i = 0; i < u->n; i++)
                unit_info_free(u->items[i]);
        free(u->items);
        hashmap_free(u->by_name);
}

/* Record the detail of a failure (it becomes the error only if promoted). Returns r. */
__attribute__((format(printf, 3, 4))) static int note(struct uctx *u, int r, const char *fmt, ...) {
        /* Formatted aside first: callers wrap the previous note ("FILE:LINE: Also=: %s",
         * u->last.msg), which formatting straight into u->last would overwrite as it reads it. */
        struct mkm_err e = {};
        va_list ap;
        va_start(ap, fmt);
        (void)mkm_err_setv(&e, r, fmt, ap);
        va_end(ap);
        u->last = e;
        return r;
}

static void clear_note(struct uctx *u) {
        u->last.code = 0;
        u->last.msg[0] = 0;
}

/* Report failure r (its detail from the last note()): logged at debug level, and the first one is
 * kept; whether it fails the call is decided as systemctl decides its exit status. Returns r. */
static int promote(struct uctx *u, int r, const char *what) {
        char msg[sizeof u->last.msg];
        if (r == -ENOMEM)
                u->oom = true;
        if (u->last.code == r && u->last.msg[0])
                (void)snprintf(msg, sizeof msg, "%s", u->last.msg);
        else
                (void)snprintf(msg, sizeof msg, "%s: %s", what, mkm_strerror(r));
        mkm_debug(u->ctx, "units: %s", msg);
        if (u->first.code == 0)
                (void)mkm_err_set(&u->first, r, "%s", msg);
        clear_note(u);
        return r;
}

static struct unit_info *uctx_find(struct uctx *u, const char *name) {
        return u->by_name ? hashmap_get(u->by_name, name) : NULL;
}

/* systemd's install_info_add(): the existing entry or a new one at the end. */
static int uctx_add(struct uctx *u, const char *name, const char *path, bool auxiliary, struct unit_info **ret) {
        if (!name_is_valid(name, NAME_ANY))
                return note(u, -MKM_E_PARSE, "'%s' is not a valid unit name", name);
        struct unit_info *i = uctx_find(u, name);
        if (i) {
                i->auxiliary = i->auxiliary && auxiliary;
                if (ret)
                        *ret = i;
                return 0;
        }
        if (u->n >= UNIT_CONTEXT_MAX)
                return note(u, -E2BIG, "more than %u units to enable (Also= fan-out)", UNIT_CONTEXT_MAX);
        if (!u->by_name && !(u->by_name = hashmap_new()))
                return -ENOMEM;
        if (mkm_grow((void **)&u->items, &u->cap, u->n, sizeof *u->items, 16) < 0)
                return -ENOMEM;
        i = calloc(1, sizeof *i);
        if (!i)
                return -ENOMEM;
        i->auxiliary = auxiliary;
        i->name = strdup(name);
        i->path = path ? strdup(path) : NULL;
        if (!i->name || (path && !i->path)) {
                unit_info_free(i);
                return -ENOMEM;
        }
        if (hashmap_put(u->by_name, i->name, i) < 0) {
                unit_info_free(i);
                return -ENOMEM;
        }
        u->items[u->n++] = i;
        if (ret)
                *ret = i;
        return 1;
}

/* ---- file system access inside the tree ---- */

static int lstat_in_root(struct uctx *u, const char *p, struct stat *st) {
        _cleanup_close_ int fd = -EBADF;
        int r = chase_in_root(u->rootfd, p, CHASE_NOFOLLOW, NULL, &fd);
        if (r < 0)
                return r;
        return fstat(fd, st) < 0 ? negative_errno() : 0;
}

static int stat_in_root(struct uctx *u, const char *p, struct stat *st) {
        _cleanup_close_ int fd = -EBADF;
        int r = chase_in_root(u->rootfd, p, 0, NULL, &fd);
        if (r < 0)
                return r;
        return fstat(fd, st) < 0 ? negative_errno() : 0;
}

static int readlink_in_root(struct uctx *u, const char *p, char **ret) {
        _cleanup_close_ int fd = -EBADF;
        int r = chase_in_root(u->rootfd, p, CHASE_NOFOLLOW, NULL, &fd);
        if (r < 0)
                return r;
        char buf[PATH_MAX];
        ssize_t n = readlinkat(fd, "", buf, sizeof buf - 1);
        if (n < 0)
                return negative_errno();
        buf[n] = 0;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

static bool null_or_empty(const struct stat *st) {
        if (S_ISREG(st->st_mode))
                return st->st_size <= 0;
        return S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode);
}

/* systemd's chase(CHASE_NOFOLLOW|CHASE_NONEXISTENT): the directories of p are resolved inside the
 * tree (as far as they exist), the last component is kept as it is. p is root-relative. */
static int chase_nofollow(struct uctx *u, const char *p, char **ret) {
        int r = chase_in_root(u->rootfd, p, CHASE_NOFOLLOW | CHASE_NONEXISTENT, ret, NULL);
        return r < 0 ? r : 0;
}

/* ---- specifiers (install_name_printf) ---- */

static char *mfree_str(char *p) {
        free(p);
        return NULL;
}

/* Read all of fd, at most max bytes (-EFBIG above), NUL-terminated. */
static int read_os_release(struct uctx *u, const char *key, char **ret) {
        static const char *const files[] = { "/etc/os-release", "/usr/lib/os-release" };
        for (size_t f = 0; f < ELEMENTSOF(files); f++) {
                _cleanup_close_ int fd = chase_and_open_in_root(u->rootfd, files[f], CHASE_MUST_BE_REGULAR,
                                                                O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
                if (fd < 0) {
                        if (fd == -ENOENT)
                                continue;
                        return fd;
                }
                _cleanup_free_ char *buf = NULL;
                int r = fs_read_fd(fd, 1u << 20, &buf, NULL);
                if (r < 0)
                        return r;
                size_t kl = strlen(key);
                for (char *l = buf; l && *l;) {
                        char *nl = strchr(l, '\n');
                        if (nl)
                                *nl = 0;
                        while (*l == ' ' || *l == '\t')
                                l++;
                        if (strncmp(l, key, kl) == 0 && l[kl] == '=') {
                                char *v = l + kl + 1;
                                size_t vl = strlen(v);
                                while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t' || v[vl - 1] == '\r'))
                                        vl--;
                                if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
                                        v++;
                                        vl -= 2;
                                }
                                if (vl == 0)
                                        return -ENOENT;
                                *ret = strndup(v, vl);
                                return *ret ? 0 : -ENOMEM;
                        }
                        l = nl ? nl + 1 : NULL;
                }
                return -ENOENT; /* the first file that exists is the only one read */
        }
        return -ENOENT;
}

static int read_machine_id(struct uctx *u, char **ret) {
        _cleanup_close_ int fd = chase_and_open_in_root(u->rootfd, "/etc/machine-id", CHASE_MUST_BE_REGULAR,
                                                        O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
        if (fd < 0)
                return fd;
        char buf[34];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 32)
                return -ENOMEDIUM;
        for (int i = 0; i < 32; i++)
                if (!((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f')))
                        return -ENOMEDIUM;
        if (n > 32 && buf[32] != '\n')
                return -ENOMEDIUM;
        *ret = strndup(buf, 32);
        return *ret ? 0 : -ENOMEM;
}

static char *host_architecture(void) {
        static const struct { const char *uname, *sd; } map[] = {
                { "x86_64", "x86-64" }, { "i386", "x86" },       { "i486", "x86" },     { "i586", "x86" },
                { "i686", "x86" },      { "aarch64", "arm64" },  { "armv7l", "arm" },   { "armv6l", "arm" },
                { "ppc64le", "ppc64-le" }, { "ppc64", "ppc64" }, { "s390x", "s390x" }, { "riscv64", "riscv64" },
                { "loongarch64", "loongarch64" },
        };
        struct utsname un;
        if (uname(&un) < 0)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (strcmp(un.machine, map[i].uname) == 0)
                        return strdup(map[i].sd);
        return strdup(un.machine);
}

/* Expand the specifiers systemctl expands in [Install] values for the unit named name. */
static int install_printf(struct uctx *u, const char *name, const char *fmt, char **ret) {
        size_t cap = strlen(fmt) + 1, len = 0;
        _cleanup_free_ char *out = malloc(cap);
        if (!out)
                return -ENOMEM;
        for (const char *f = fmt; *f; f++) {
                _cleanup_free_ char *v = NULL;
                char lit[2] = { *f, 0 };
                const char *add = lit;
                if (*f == '%' && f[1]) {
                        int r = 0;
                        char c = *++f;
                        switch (c) {
                        case '%': lit[0] = '%'; break;
                        case 'n': add = name; break;
                        case 'N': v = strndup(name, (size_t)(strrchr(name, '.') - name)); break;
                        case 'p': v = name_prefix(name); break;
                        case 'i': v = name_instance(name); break;
                        case 'j': {
                                _cleanup_free_ char *p = name_prefix(name);
                                if (p) {
                                        const char *dash = strrchr(p, '-');
                                        v = strdup(dash ? dash + 1 : p);
                                }
                                break;
                        }
                        case 'u': case 'g': add = "root"; break;
                        case 'U': case 'G': add = "0"; break;
                        case 'a': v = host_architecture(); break;
                        case 'm': r = read_machine_id(u, &v); break;
                        case 'A': r = read_os_release(u, "IMAGE_VERSION", &v); break;
                        case 'B': r = read_os_release(u, "BUILD_ID", &v); break;
                        case 'M': r = read_os_release(u, "IMAGE_ID", &v); break;
                        case 'o': r = read_os_release(u, "ID", &v); break;
                        case 'w': r = read_os_release(u, "VERSION_ID", &v); break;
                        case 'W': r = read_os_release(u, "VARIANT_ID", &v); break;
                        case 'b': case 'H': case 'l': case 'v':
                                return note(u, -MKM_E_PARSE,
                                            "specifier '%%%c' in \"%s\" names the build host (boot ID, host name or "
                                            "kernel), refusing it in a reproducible build",
                                            c, fmt);
                        default:
                                return note(u, -MKM_E_PARSE, "invalid specifier in \"%s\"", fmt);
                        }
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return note(u, -MKM_E_PARSE, "cannot resolve specifiers in \"%s\"", fmt);
                        if (v)
                                add = v;
                        else if (add == lit && c != '%')
                                return -ENOMEM;
                }
                size_t al = strlen(add);
                if (len + al + 1 > cap) {
                        cap = (len + al + 1) * 2;
                        char *no = realloc(out, cap);
                        if (!no)
                                return -ENOMEM;
                        out = no;
                }
                memcpy(out + len, add, al);
                len += al;
        }
        out[len] = 0;
        *ret = TAKE_PTR(out);
        return 0;
}

/* ---- [Install] parsing (systemd's conf-parser + config_parse_strv/also/default_instance) ---- */

static bool is_ws(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* extract_first_word(): unquote mode is EXTRACT_UNQUOTE|EXTRACT_RETAIN_ESCAPE (quotes group and are
 * dropped, backslashes are literal); otherwise flags 0 (quotes literal, a backslash escapes the next
 * character). Returns 1 and a word, 0 at the end, -EINVAL on an open quote or trailing backslash. */
static int extract_word(const char **p, bool unquote, char **ret) {
        const char *s = *p;
        while (*s && is_ws(*s))
                s++;
        if (!*s) {
                *p = s;
                return 0;
        }
        char *w = malloc(strlen(s) + 1);
        if (!w)
                return -ENOMEM;
        size_t n = 0;
        char quote = 0;
        for (;; s++) {
                char c = *s;
                if (quote) {
                        if (!c) {
                                free(w);
                                *p = s;
                                return -EINVAL;
                        }
                        if (c == quote)
                                quote = 0;
                        else
                                w[n++] = c;
                        continue;
                }
                if (!c || is_ws(c))
                        break;
                if (unquote && (c == '"' || c == '\'')) {
                        quote = c;
                        continue;
                }
                if (!unquote && c == '\\') {
                        if (!s[1]) {
                                free(w);
                                *p = s + 1;
                                return -EINVAL;
                        }
                        c = *++s;
                }
                w[n++] = c;
        }
        w[n] = 0;
        *p = s;
        *ret = w;
        return 1;
}

/* config_parse_strv(): an empty value resets the list; a syntax error keeps the words before it. */
static int parse_strv(struct uctx *u, const char *file, unsigned line, const char *value, char ***l) {
        if (!*value) {
                *l = strv_free(*l);
                return 0;
        }
        for (const char *p = value;;) {
                char *w = NULL;
                int r = extract_word(&p, true, &w);
                if (r == 0)
                        return 0;
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        mkm_debug(u->ctx, "units: %s:%u: invalid syntax, ignoring: %s", file, line, value);
                        return 0;
                }
                r = strv_consume(l, w);
                if (r < 0) {
                        free(w);
                        return r;
                }
        }
}

static int parse_assignment(struct uctx *u, struct unit_info *info, const char *file, unsigned line,
                            const char *key, const char *value) {
        int r;
        if (strcmp(key, "WantedBy") == 0)
                return parse_strv(u, file, line, value, &info->wanted_by);
        if (strcmp(key, "RequiredBy") == 0)
                return parse_strv(u, file, line, value, &info->required_by);
        if (strcmp(key, "Alias") == 0) {
                int t = name_type(info->name);
                if (!type_may_alias(t)) {
                        mkm_debug(u->ctx, "units: %s:%u: Alias= is not allowed for %s units, ignoring", file, line,
                                  type_names[t]);
                        return 0;
                }
                return parse_strv(u, file, line, value, &info->aliases);
        }
        if (strcmp(key, "DefaultInstance") == 0) {
                if (name_is_valid(info->name, NAME_INSTANCE))
                        return 0;       /* enabling an instance: silently ignored */
                if (!name_is_valid(info->name, NAME_TEMPLATE)) {
                        mkm_debug(u->ctx, "units: %s:%u: DefaultInstance= only makes sense for template units, ignoring",
                                  file, line);
                        return 0;
                }
                _cleanup_free_ char *printed = NULL;
                r = install_printf(u, info->name, value, &printed);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        mkm_debug(u->ctx, "units: %s:%u: %s, ignoring DefaultInstance=", file, line, u->last.msg);
                        clear_note(u);
                        return 0;
                }
                if (!*printed) {
                        info->default_instance = mfree_str(info->default_instance);
                        return 0;
                }
                if (!instance_is_valid(printed)) {
                        mkm_debug(u->ctx, "units: %s:%u: invalid DefaultInstance= value \"%s\", ignoring", file, line,
                                  printed);
                        return 0;
                }
                free(info->default_instance);
                info->default_instance = TAKE_PTR(printed);
                return 0;
        }
        if (strcmp(key, "Also") == 0) {
                for (const char *p = value;;) {
                        _cleanup_free_ char *w = NULL, *printed = NULL;
                        r = extract_word(&p, false, &w);
                        if (r == 0)
                                return 0;
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return note(u, -MKM_E_PARSE, "%s:%u: invalid syntax in Also=%s", file, line, value);
                        r = install_printf(u, info->name, w, &printed);
                        if (r < 0)
                                return r == -ENOMEM ? r : note(u, r, "%s:%u: Also=: %s", file, line, u->last.msg);
                        r = uctx_add(u, printed, NULL, true, NULL);
                        if (r < 0)
                                return r == -ENOMEM ? r : note(u, r, "%s:%u: Also=: %s", file, line, u->last.msg);
                        r = strv_consume(&info->also, printed);
                        if (r < 0)
                                return r;
                        printed = NULL;
                }
        }
        return 0;       /* other keys of [Install] are not ours to judge */
}

static bool utf8_valid(const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *)s;
        for (size_t i = 0; i < n;) {
                unsigned char c = p[i];
                size_t len;
                uint32_t cp;
                if (c < 0x80) {
                        i++;
                        continue;
                } else if ((c & 0xe0) == 0xc0) {
                        len = 2;
                        cp = c & 0x1f;
                } else if ((c & 0xf0) == 0xe0) {
                        len = 3;
                        cp = c & 0x0f;
                } else if ((c & 0xf8) == 0xf0) {
                        len = 4;
                        cp = c & 0x07;
                } else
                        return false;
                if (i + len > n)
                        return false;
                for (size_t k = 1; k < len; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i + k] & 0x3f);
                }
                if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
                    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += len;
        }
        return true;
}

static char *strstrip(char *s) {
        while (*s && is_ws(*s))
                s++;
        size_t n = strlen(s);
        while (n > 0 && is_ws(s[n - 1]))
                s[--n] = 0;
        return s;
}

struct parse_state {
        bool in_install;        /* the current section is [Install] */
        bool have_section;
};

/* systemd's parse_line() for one logical line; only [Install] assignments are applied. */
static int parse_logical_line(struct uctx *u, struct unit_info *info, const char *file, unsigned line,
                              struct parse_state *ps, char *l) {
        l = strstrip(l);
        if (!*l)
                return 0;
        if (!utf8_valid(l, strlen(l))) {
                mkm_debug(u->ctx, "units: %s:%u: invalid UTF-8, ignoring line", file, line);
                return 0;
        }
        if (l[0] == '[') {
                size_t k = strlen(l);
                if (l[k - 1] != ']')
                        return note(u, -MKM_E_PARSE, "%s:%u: invalid section header '%s'", file, line, l);
                l[k - 1] = 0;
                const char *n = l + 1;
                for (const char *c = n; *c; c++)
                        if ((unsigned char)*c < ' ' || *c == 0x7f || *c == '\\' || *c == '"' || *c == '\'')
                                return note(u, -MKM_E_PARSE, "%s:%u: bad characters in section header '[%s]'",
                                            file, line, n);
                ps->in_install = strcmp(n, "Install") == 0;
                ps->have_section = true;
                return 0;
        }
        if (!ps->have_section || !ps->in_install)
                return 0;
        char *e = strchr(l, '=');
        if (!e || e == l) {
                mkm_debug(u->ctx, "units: %s:%u: missing key or '=', ignoring line", file, line);
                return 0;
        }
        *e = 0;
        return parse_assignment(u, info, file, line, strstrip(l), strstrip(e + 1));
}

/* systemd's config_parse(): lines end at \n, \r, \r\n or NUL; comment lines (# or ;) are skipped,
 * also inside a continuation; an unescaped trailing backslash joins the next line, becoming a
 * space; a UTF-8 byte order mark at the start is skipped. */
static int parse_unit_buffer(struct uctx *u, struct unit_info *info, const char *file, const char *buf,
                             size_t len) {
        struct parse_state ps = {};
        _cleanup_free_ char *cont = NULL;
        size_t contlen = 0, pos = 0;
        unsigned line = 0;
        bool bom_done = false;
        int r;

        while (pos < len) {
                size_t s = pos;
                while (pos < len && buf[pos] != '\n' && buf[pos] != '\r' && buf[pos] != 0)
                        pos++;
                size_t n = pos - s;
                if (pos < len) {
                        if (buf[pos] == '\r' && pos + 1 < len && buf[pos + 1] == '\n')
                                pos++;
                        pos++;
                }
                line++;
                if (n > UNIT_LINE_MAX)
                        return note(u, -MKM_E_PARSE, "%s:%u: line too long", file, line);
                _cleanup_free_ char *l = strndup(buf + s, n);
                if (!l)
                        return -ENOMEM;
                const char *lead = l;
                while (*lead && is_ws(*lead))
                        lead++;
                if (*lead == '#' || *lead == ';')
                        continue;
                char *text = l;
                if (!bom_done && strncmp(text, "\xef\xbb\xbf", 3) == 0) {
                        text += 3;
                        bom_done = true;
                }
                char *p;
                if (cont) {
                        size_t tl = strlen(text);
                        if (contlen + tl > UNIT_LINE_MAX)
                                return note(u, -MKM_E_PARSE, "%s:%u: continuation line too long", file, line);
                        char *nc = realloc(cont, contlen + tl + 1);
                        if (!nc)
                                return -ENOMEM;
                        cont = nc;
                        memcpy(cont + contlen, text, tl + 1);
                        contlen += tl;
                        p = cont;
                } else
                        p = text;
                bool escaped = false;
                char *e;
                for (e = p; *e; e++)
                        escaped = escaped ? false : *e == '\\';
                if (escaped) {
                        e[-1] = ' ';
                        if (!cont) {
                                cont = strdup(text);
                                if (!cont)
                                        return -ENOMEM;
                                contlen = strlen(cont);
                        }
                        continue;
                }
                r = parse_logical_line(u, info, file, line, &ps, p);
                if (r < 0)
                        return r;
                cont = mfree_str(cont);
                contlen = 0;
        }
        if (cont) {
                r = parse_logical_line(u, info, file, ++line, &ps, cont);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Read an open regular file (at most UNIT_FILE_MAX bytes) and parse it into info. */
static int parse_unit_fd(struct uctx *u, struct unit_info *info, const char *file, int fd) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = fs_read_fd(fd, UNIT_FILE_MAX, &buf, &len);
        if (r == -EFBIG)
                return note(u, -MKM_E_PARSE, "%s: larger than %u bytes", file, UNIT_FILE_MAX);
        if (r < 0)
                return note(u, r, "%s: cannot read: %s", file, mkm_strerror(r));
        return parse_unit_buffer(u, info, file, buf, len);
}

/* ---- finding and loading unit files (unit_file_search and friends) ---- */

/* systemd's unit_validate_alias_symlink_or_warn(): may the alias name src point at unit dst?
 * 0 if so, -ELOOP for an alias to itself, -EXDEV if not. */
static int validate_alias(const char *src, const char *dst) {
        int st = name_classify(src);
        if (st < 0)
                return -EXDEV;
        int t = name_type(src);
        if (!type_may_alias(t))
                return -EXDEV;
        if (st != NAME_PLAIN && !type_may_template(t))
                return -EXDEV;
        if (strcmp(src, dst) == 0)
                return -ELOOP;
        int dt = name_classify(dst);
        if (dt < 0)
                return -EXDEV;
        if (!(dt == st || (st == NAME_INSTANCE && dt == NAME_TEMPLATE)))
                return -EXDEV;
        if (dt == NAME_INSTANCE) {
                _cleanup_free_ char *si = name_instance(src), *di = name_instance(dst);
                if (!si || !di)
                        return -ENOMEM;
                if (strcmp(si, di) != 0)
                        return -EXDEV;
        }
        if (name_type(dst) != t)
                return -EXDEV;
        return 0;
}

/* unit_file_load(): stat (and with load, parse) the unit file at path for info. Returns the number
 * of [Install] rules, -ELOOP if path is a symlink, -ENOENT etc. if it is not there. */
/* What unit_file_load() checks of the name before it looks at path. */
static int unit_name_checks(struct uctx *u, const struct unit_info *info, const char *path) {
        int t = name_type(info->name);
        if (t < 0)
                return note(u, -MKM_E_PARSE, "'%s' is not a valid unit name", info->name);
        if (name_is_valid(info->name, NAME_TEMPLATE | NAME_INSTANCE) && !type_may_template(t))
                return note(u, -MKM_E_PARSE, "%s: unit type %s cannot be templated", path, type_names[t]);
        return 0;
}

static int unit_file_load(struct uctx *u, struct unit_info *info, const char *path, bool load, bool dropin) {
        struct stat st;
        int r;

        if (!dropin) {
                r = unit_name_checks(u, info, path);
                if (r < 0)
                        return r;
                r = lstat_in_root(u, path, &st);
                if (r < 0)
                        return r;
                if (S_ISLNK(st.st_mode))
                        return -ELOOP;
                if (!load || null_or_empty(&st)) {
                        if (null_or_empty(&st))
                                info->mode = MODE_MASKED;
                        else if (S_ISREG(st.st_mode))
                                info->mode = MODE_REGULAR;
                        else
                                return note(u, S_ISDIR(st.st_mode) ? -EISDIR : -ENOTTY,
                                            "unit file %s is not a regular file", path);
                        return 0;
                }
        } else if (!load)
                return 0;

        /* Drop-ins are followed (inside the tree); the unit file itself is known not to be a link.
         * Only a regular file is opened: a device node of the tree is the host's device. */
        unsigned follow = dropin ? 0 : CHASE_NOFOLLOW;
        _cleanup_close_ int pfd = -EBADF;
        r = chase_in_root(u->rootfd, path, follow, NULL, &pfd);
        if (r < 0)
                return note(u, r, "cannot open %s: %s", path, mkm_strerror(r));
        if (fstat(pfd, &st) < 0)
                return negative_errno();
        if (null_or_empty(&st)) {
                if (!dropin)
                        info->mode = MODE_MASKED;
                return 0;
        }
        if (!S_ISREG(st.st_mode))
                return note(u, S_ISDIR(st.st_mode) ? -EISDIR : -EBADFD, "%s is not a regular file", path);
        _cleanup_close_ int fd = chase_and_open_in_root(u->rootfd, path, follow | CHASE_MUST_BE_REGULAR,
                                                        O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
        if (fd < 0)
                return note(u, fd, "cannot open %s: %s", path, mkm_strerror(fd));
        r = parse_unit_fd(u, info, path, fd);
        if (r < 0)
                return r;
        if (!dropin)
                info->mode = MODE_REGULAR;
        return (int)(strv_length(info->aliases) + strv_length(info->wanted_by) + strv_length(info->required_by));
}

/* unit_file_load_or_readlink(): a symlink is read (one level) and its target chased inside the
 * tree; it is a mask (-> /dev/null or an empty file), an alias (target inside the search path)
 * or a linked unit file (outside). */
static int unit_file_load_or_readlink(struct uctx *u, struct unit_info *info, const char *path, bool load,
                                      bool dropin) {
        int r = unit_file_load(u, info, path, load, dropin);
        if (r != -ELOOP || dropin)
                return r;

        _cleanup_free_ char *target = NULL, *abs = NULL, *chased = NULL;
        r = readlink_in_root(u, path, &target);
        if (r < 0)
                return note(u, r, "cannot read symlink %s: %s", path, mkm_strerror(r));
        if (target[0] == '/')
                abs = strdup(target);
        else {
                _cleanup_free_ char *d = path_dirname(path);
                if (!d || asprintf(&abs, "%s/%s", d, target) < 0)
                        abs = NULL;
        }
        if (!abs)
                return -ENOMEM;
        r = chase_nofollow(u, abs, &chased);
        if (r < 0)
                return note(u, r, "cannot resolve symlink %s -> %s: %s", path, target, mkm_strerror(r));

        bool outside = !path_under_search_path(chased);
        if (!outside) {
                r = validate_alias(path_basename(path), path_basename(chased));
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return note(u, -MKM_E_PARSE, "%s is an invalid alias symlink to %s", path, chased);
        }

        bool masked = path_equal(chased, "/dev/null");
        if (!masked) {
                struct stat st;
                r = stat_in_root(u, chased, &st);
                if (r < 0 && r != -ENOENT)
                        return note(u, r, "cannot stat %s: %s", chased, mkm_strerror(r));
                masked = r >= 0 && null_or_empty(&st);
        }
        info->mode = masked ? MODE_MASKED : outside ? MODE_LINKED : MODE_ALIAS;
        free(info->symlink_target);
        info->symlink_target = TAKE_PTR(chased);
        return 0;
}

static int cmp_basename(const void *a, const void *b) {
        return strcmp(path_basename(*(char *const *)a), path_basename(*(char *const *)b));
}

/* conf_files_list_strv(): the *.conf files of dirs, one per file name (the first directory wins),
 * sorted by file name; returned as root-relative paths. */
static int list_dropins(struct uctx *u, char **dirs, char ***ret) {
        _cleanup_strv_free_ char **names = NULL, **paths = NULL;
        for (size_t d = 0; dirs && dirs[d]; d++) {
                _cleanup_close_ int fd = chase_and_open_in_root(u->rootfd, dirs[d], CHASE_MUST_BE_DIRECTORY, O_RDONLY, 0);
                if (fd < 0) {
                        if (fd == -ENOENT || fd == -ENOTDIR)
                                continue;
                        return note(u, fd, "cannot open %s: %s", dirs[d], mkm_strerror(fd));
                }
                DIR *dir = fdopendir(fd);
                if (!dir)
                        return negative_errno();
                fd = -EBADF;
                struct dirent *de;
                int r = 0;
                while ((errno = 0, de = readdir(dir))) {
                        size_t nl = strlen(de->d_name);
                        if (de->d_name[0] == '.' || nl < 6 || strcmp(de->d_name + nl - 5, ".conf") != 0)
                                continue;
                        if (strv_contains(names, de->d_name))
                                continue;
                        if (strv_length(names) >= UNIT_DROPINS_MAX) {
                                r = note(u, -E2BIG, "more than %u drop-ins in %s", UNIT_DROPINS_MAX, dirs[d]);
                                break;
                        }
                        r = strv_push(&names, de->d_name);
                        if (r < 0)
                                break;
                        char *p;
                        if (asprintf(&p, "%s/%s", dirs[d], de->d_name) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        r = strv_consume(&paths, p);
                        if (r < 0) {
                                free(p);
                                break;
                        }
                }
                if (r >= 0 && !de && errno != 0)        /* a drop-in missed would change what is enabled */
                        r = note(u, negative_errno(), "cannot list %s: %s", dirs[d], strerror(errno));
                closedir(dir);
                if (r < 0)
                        return r;
        }
        /* Sorted by file name, as conf_files_list does. */
        if (paths)
                qsort(paths, strv_length(paths), sizeof *paths, cmp_basename);
        *ret = TAKE_PTR(paths);
        return 0;
}

/* unit_file_search(): find info->name (or its template) in the search path; with load, parse it
 * and its drop-ins. -ENOENT if it is nowhere. */
static int unit_file_search(struct uctx *u, struct unit_info *info, bool load) {
        _cleanup_free_ char *template = NULL;
        int r, result = 0;

        if (info->mode != MODE_INVALID)
                return 0;
        if (info->path) {
                _cleanup_free_ char *p = strdup(info->path);
                return p ? unit_file_load_or_readlink(u, info, p, load, false) : -ENOMEM;
        }
        if (name_is_valid(info->name, NAME_INSTANCE)) {
                template = name_template(info->name);
                if (!template)
                        return -ENOMEM;
        }

        bool found = false;
        for (int pass = 0; pass < 2 && !found; pass++) {
                const char *name = pass == 0 ? info->name : template;
                if (!name)
                        break;
                for (size_t d = 0; d < ELEMENTSOF(search_path); d++) {
                        _cleanup_free_ char *path = NULL;
                        if (asprintf(&path, "%s/%s", u->sp[d], name) < 0)
                                return -ENOMEM;
                        /* In a directory that is not there, the lookup would fail as the
                         * directory does, after the checks of the name. */
                        int gone = search_dir_gone(u, d);
                        r = gone ? unit_name_checks(u, info, path) : 0;
                        if (r >= 0)
                                r = gone ? gone : unit_file_load_or_readlink(u, info, path, load, false);
                        if (r >= 0) {
                                info->path = TAKE_PTR(path);
                                result = r;
                                found = true;
                                break;
                        }
                        if (r != -ENOENT && r != -ENOTDIR && r != -EACCES)
                                return r;
                }
        }
        if (!found)
                return -ENOENT;
        if (info->mode == MODE_MASKED || !load)
                return result;

        /* Drop-ins: NAME.d/ in every search directory, then TEMPLATE.d/ for an instance. */
        _cleanup_strv_free_ char **dirs = NULL, **files = NULL;
        for (int pass = 0; pass < 2; pass++) {
                const char *name = pass == 0 ? info->name : template;
                if (!name)
                        break;
                for (size_t d = 0; d < ELEMENTSOF(search_path); d++) {
                        char *p;
                        if (search_dir_gone(u, d))
                                continue;       /* list_dropins() would skip it, finding nothing */
                        if (asprintf(&p, "%s/%s.d", u->sp[d], name) < 0)
                                return -ENOMEM;
                        r = strv_consume(&dirs, p);
                        if (r < 0) {
                                free(p);
                                return r;
                        }
                }
        }
        r = list_dropins(u, dirs, &files);
        if (r < 0)
                return r;
        for (size_t i = 0; files && files[i]; i++) {
                r = unit_file_load_or_readlink(u, info, files[i], true, true);
                if (r < 0)
                        return r;
                mkm_debug(u->ctx, "units: %s: read drop-in %s", info->name, files[i]);
        }
        return result;
}

/* install_info_follow(): continue with the symlink's target as the unit file. */
static int install_info_follow(struct uctx *u, struct unit_info *info, bool load, bool ignore_different_name) {
        if ((info->mode != MODE_ALIAS && info->mode != MODE_LINKED) || !info->symlink_target)
                return -EINVAL;
        if (!ignore_different_name && strcmp(path_basename(info->symlink_target), info->name) != 0)
                return -EXDEV;
        free(info->path);
        info->path = TAKE_PTR(info->symlink_target);
        info->mode = MODE_INVALID;
        _cleanup_free_ char *p = strdup(info->path);
        return p ? unit_file_load_or_readlink(u, info, p, load, false) : -ENOMEM;
}

/* install_info_traverse(): search, then follow symlinks (at most UNIT_FOLLOW_MAX), switching to a
 * new entry when an alias points at a unit of another name (with the instance carried over). */
static int install_info_traverse(struct uctx *u, struct unit_info *start, bool load, bool follow_config,
                                 struct unit_info **ret) {
        int r = unit_file_search(u, start, load);
        if (r < 0)
                return r;
        struct unit_info *i = start;
        unsigned k = 0;
        while (i->mode == MODE_ALIAS || i->mode == MODE_LINKED) {
                if (++k > UNIT_FOLLOW_MAX)
                        return note(u, -ELOOP, "too many levels of symlinks resolving unit '%s'", start->name);
                if (!follow_config) {
                        r = path_is_config(i->path);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                return note(u, -MKM_E_RECIPE,
                                            "refusing to operate on linked unit file %s (an alias in %s; enable "
                                            "the unit it points to)",
                                            i->name, CONFIG_PATH);
                }
                r = install_info_follow(u, i, load, i->mode == MODE_LINKED);
                if (r == -EXDEV && i->symlink_target) {
                        _cleanup_free_ char *buffer = NULL;
                        const char *bn = path_basename(i->symlink_target);
                        if (name_is_valid(i->name, NAME_INSTANCE) && name_is_valid(bn, NAME_TEMPLATE)) {
                                _cleanup_free_ char *inst = name_instance(i->name);
                                if (!inst)
                                        return -ENOMEM;
                                buffer = name_replace_instance(bn, inst);
                                if (!buffer)
                                        return errno == EINVAL ? note(u, -MKM_E_PARSE, "cannot instantiate %s with '%s'", bn, inst) : -ENOMEM;
                                if (strcmp(buffer, i->name) == 0) {
                                        /* Same name once instantiated: honour the link as it is. */
                                        r = install_info_follow(u, i, load, true);
                                        if (r < 0)
                                                return r;
                                        continue;
                                }
                                bn = buffer;
                        }
                        r = uctx_add(u, bn, NULL, false, &i);
                        if (r < 0)
                                return r;
                        r = unit_file_search(u, i, load);
                        if (r == -ENOENT)
                                return note(u, -MKM_E_RECIPE, "unit '%s' is an alias of '%s', which does not exist",
                                            start->name, bn);
                }
                if (r < 0)
                        return r;
        }
        if (ret)
                *ret = i;
        return 0;
}

static int not_found(struct uctx *u, const char *name) {
        char dirs[1024];
        size_t o = 0;
        dirs[0] = 0;
        for (size_t d = 0; d < ELEMENTSOF(search_path) && o < sizeof dirs; d++) {
                int n = snprintf(dirs + o, sizeof dirs - o, "%s%s", d ? ", " : "", u->sp[d]);
                if (n < 0)
                        break;
                o += (size_t)n;
        }
        _cleanup_free_ char *template = name_is_valid(name, NAME_INSTANCE) ? name_template(name) : NULL;
        if (template)
                return note(u, -MKM_E_RECIPE, "unit '%s' not found in the machine (nor its template '%s'; looked in %s)",
                            name, template, dirs);
        return note(u, -MKM_E_RECIPE, "unit '%s' not found in the machine (looked in %s)", name, dirs);
}

/* ---- creating the symlinks ---- */

/* chroot_unit_symlinks_equivalent(): does an existing link (at src, pointing to a) already say
 * what b says? The same path, the same file, or the same unit file name inside the search path. */
static int symlinks_equivalent(struct uctx *u, const char *src, const char *a, const char *b) {
        _cleanup_free_ char *d = path_dirname(src), *pa = NULL, *pb = NULL;
        if (!d)
                return -ENOMEM;
        if (asprintf(&pa, "%s/%s", a[0] == '/' ? "" : d, a) < 0 || asprintf(&pb, "%s/%s", b[0] == '/' ? "" : d, b) < 0)
                return -ENOMEM;
        if (path_equal(pa, pb))
                return 1;
        struct stat sa, sb;
        if (stat_in_root(u, pa, &sa) >= 0 && stat_in_root(u, pb, &sb) >= 0 && sa.st_dev == sb.st_dev &&
            sa.st_ino == sb.st_ino)
                return 1;
        return strcmp(path_basename(pa), path_basename(pb)) == 0 && path_under_search_path(pa) &&
               path_under_search_path(pb);
}

/* create_symlink(): new_path -> old_path (both root-relative). An equivalent link is fine; another
 * link is replaced only with force; anything else that is there is a conflict. */
static int create_symlink(struct uctx *u, const char *old_path, const char *new_path, bool force) {
        _cleanup_free_ char *base = NULL;
        _cleanup_close_ int dfd = -EBADF;
        u->writes++;    /* the only writer of the tree here: search_dir_gone() looks again */
        int r = chase_in_root(u->rootfd, new_path, CHASE_PARENT | CHASE_NOFOLLOW | CHASE_MKDIR_0755, &base, &dfd);
        if (r < 0) {
                /* -ENOENT: a directory on the way is a symlink whose target is missing. */
                _cleanup_free_ char *d = path_dirname(new_path);
                if (!d)
                        return -ENOMEM;
                return note(u, r, "cannot %s directory %s: %s", r == -ENOENT ? "open" : "create", d, mkm_strerror(r));
        }

        if (symlinkat(old_path, dfd, base) >= 0) {
                mkm_debug(u->ctx, "units: created symlink %s -> %s", new_path, old_path);
                return 1;
        }
        if (errno != EEXIST)
                return note(u, negative_errno(), "cannot create symlink %s: %s", new_path, strerror(errno));

        char dest[PATH_MAX];
        ssize_t n = readlinkat(dfd, base, dest, sizeof dest - 1);
        if (n < 0) {
                if (errno == EINVAL)
                        return note(u, -MKM_E_CONFLICT, "cannot enable unit: file '%s' already exists", new_path);
                return note(u, negative_errno(), "cannot read symlink %s: %s", new_path, strerror(errno));
        }
        dest[n] = 0;
        r = symlinks_equivalent(u, new_path, dest, old_path);
        if (r < 0)
                return r;
        if (r > 0) {
                mkm_debug(u->ctx, "units: symlink %s -> %s already exists", new_path, dest);
                return 1;
        }
        if (!force)
                return note(u, -MKM_E_CONFLICT,
                            "cannot enable unit: file '%s' already exists and is a symlink to '%s'", new_path, dest);

        /* Replace atomically: a temporary link beside it, renamed over it. */
        char tmp[NAME_MAX + 1];
        (void)snprintf(tmp, sizeof tmp, ".#mkm-%d-%.200s", (int)getpid(), base);
        (void)unlinkat(dfd, tmp, 0);
        if (symlinkat(old_path, dfd, tmp) < 0)
                return note(u, negative_errno(), "cannot create symlink %s: %s", new_path, strerror(errno));
        if (renameat(dfd, tmp, dfd, base) < 0) {
                r = negative_errno();
                (void)unlinkat(dfd, tmp, 0);
                return note(u, r, "cannot replace %s: %s", new_path, mkm_strerror(r));
        }
        mkm_debug(u->ctx, "units: replaced symlink %s -> %s (was -> %s)", new_path, old_path, dest);
        return 1;
}

/* unit_symlink_name_compatible() for legacy "Alias=foo.target.wants/bar.service". */
static int symlink_name_compatible(const char *symlink, const char *target, bool instance_propagation) {
        int t1 = name_classify(symlink);
        if (strcmp(symlink, target) == 0 && (t1 == NAME_PLAIN || t1 == NAME_INSTANCE))
                return 1;
        _cleanup_free_ char *template = name_template(symlink);
        if (!template)
                return errno == EINVAL ? 0 : -ENOMEM;
        int t2 = name_classify(target);
        if (t1 == NAME_INSTANCE && t2 == NAME_TEMPLATE && strcmp(template, target) == 0)
                return 1;
        if (instance_propagation && t1 == NAME_TEMPLATE && t2 == NAME_TEMPLATE && strcmp(template, target) == 0)
                return 1;
        return 0;
}

/* unit_file_verify_alias(): 0 (and maybe an instantiated *ret_dst), -ELOOP for a self-alias. */
static int verify_alias(struct uctx *u, const struct unit_info *info, const char *dst, char **ret_dst) {
        const char *slash = strrchr(dst, '/');
        if (slash) {
                _cleanup_free_ char *dir = strndup(dst, (size_t)(slash - dst));
                if (!dir)
                        return -ENOMEM;
                size_t dl = strlen(dir);
                if (dl > 6 && strcmp(dir + dl - 6, ".wants") == 0)
                        dir[dl - 6] = 0;
                else if (dl > 9 && strcmp(dir + dl - 9, ".requires") == 0)
                        dir[dl - 9] = 0;
                else
                        return note(u, -MKM_E_PARSE, "cannot enable unit: invalid unit reference \"%s\" in Alias=", dst);
                int type = name_classify(dir);
                if (type < 0)
                        return note(u, -MKM_E_PARSE, "cannot enable unit: invalid unit reference \"%s\" in Alias=", dst);
                int r = symlink_name_compatible(slash + 1, info->name, type == NAME_TEMPLATE);
                if (r < 0)
                        return r;
                if (r == 0)
                        return note(u, -MKM_E_PARSE, "cannot enable unit: cannot alias %s as %s", info->name, dst);
                return 0;
        }
        _cleanup_free_ char *updated = NULL;
        if (name_is_valid(dst, NAME_TEMPLATE) && name_is_valid(info->name, NAME_INSTANCE)) {
                _cleanup_free_ char *inst = name_instance(info->name);
                if (!inst)
                        return -ENOMEM;
                updated = name_replace_instance(dst, inst);
                if (!updated)
                        return errno == EINVAL ? note(u, -MKM_E_PARSE, "cannot enable unit: cannot alias %s as %s",
                                                      info->name, dst)
                                               : -ENOMEM;
        }
        int r = validate_alias(updated ? updated : dst, info->name);
        if (r == -ELOOP || r == -ENOMEM)
                return r;
        if (r < 0)
                return note(u, -MKM_E_PARSE, "cannot enable unit: cannot alias %s as %s", info->name,
                            updated ? updated : dst);
        *ret_dst = TAKE_PTR(updated);
        return 0;
}

/* install_info_symlink_alias(). The result is combined as systemd 252 does it: the last result,
 * unless an earlier one failed. */
static int symlink_aliases(struct uctx *u, struct unit_info *info) {
        int r = 0;
        for (size_t k = 0; info->aliases && info->aliases[k]; k++) {
                _cleanup_free_ char *dst = NULL, *dst_updated = NULL, *alias_path = NULL;
                clear_note(u);
                int q = install_printf(u, info->name, info->aliases[k], &dst);
                if (q == 0) {
                        q = verify_alias(u, info, dst, &dst_updated);
                        if (q == -ELOOP)
                                continue;       /* an alias to itself: quietly nothing */
                }
                if (q == 0) {
                        if (asprintf(&alias_path, "%s/%s", CONFIG_PATH, dst_updated ? dst_updated : dst) < 0)
                                q = -ENOMEM;
                        else
                                q = create_symlink(u, info->path, alias_path, false);
                }
                if (q < 0)
                        (void)promote(u, q, info->name);
                r = r < 0 ? r : q;
        }
        return r;
}

static void unit_info_clear(struct unit_info *i) {
        free(i->name);
        free(i->path);
        free(i->symlink_target);
}

/* install_info_symlink_wants(): CONFIG_PATH/TARGET{suffix}/NAME -> the unit file, for each target
 * of list (WantedBy=, RequiredBy=). Existing links are replaced (systemctl forces these). */
static int symlink_wants(struct uctx *u, struct unit_info *info, char **list, const char *suffix) {
        struct unit_info instance = { .mode = MODE_INVALID };
        int valid_dst = NAME_ANY, r = 0;
        const char *n;

        if (!list || !list[0])
                return 0;
        if (name_is_valid(info->name, NAME_PLAIN | NAME_INSTANCE))
                n = info->name;
        else if (info->default_instance) {
                clear_note(u);
                instance.name = name_replace_instance(info->name, info->default_instance);
                if (!instance.name)
                        return promote(u, errno == EINVAL ? note(u, -MKM_E_PARSE, "invalid DefaultInstance=%s for %s",
                                                                 info->default_instance, info->name)
                                                          : -ENOMEM,
                                       info->name);
                r = unit_file_search(u, &instance, false);
                if (r >= 0 && instance.mode == MODE_MASKED)
                        r = note(u, -MKM_E_RECIPE, "cannot enable unit: unit %s is masked", instance.path);
                if (r < 0) {
                        (void)promote(u, r, instance.name);
                        unit_info_clear(&instance);
                        return r;
                }
                n = instance.name;
        } else {
                /* A template without an instance: only template or instance targets make sense. */
                valid_dst = NAME_INSTANCE | NAME_TEMPLATE;
                n = info->name;
        }

        r = 0;
        for (size_t k = 0; list[k]; k++) {
                _cleanup_free_ char *dst = NULL, *path = NULL;
                clear_note(u);
                int q = install_printf(u, info->name, list[k], &dst);
                if (q == 0 && !name_is_valid(dst, valid_dst)) {
                        if (name_is_valid(dst, NAME_ANY))
                                q = note(u, -MKM_E_PARSE,
                                         "cannot enable %s: destination unit %s is a non-template unit", n, dst);
                        else
                                q = note(u, -MKM_E_PARSE, "cannot enable unit: \"%s\" is not a valid unit name", dst);
                }
                if (q < 0) {
                        (void)promote(u, q, info->name);
                        if (r >= 0)
                                r = q;
                        continue;
                }
                if (asprintf(&path, "%s/%s%s/%s", CONFIG_PATH, dst, suffix, n) < 0)
                        q = -ENOMEM;
                else
                        q = create_symlink(u, info->path, path, true);
                if (q < 0)
                        (void)promote(u, q, info->name);
                if ((q < 0 && r >= 0) || r == 0)
                        r = q;
                /* Only for a debug line (systemctl prints it too): a search-path scan per target. */
                if (q >= 0 && u->ctx && u->ctx->verbosity > 0 && units_exists(u->rootfd, dst) == -ENOENT)
                        mkm_debug(u->ctx, "units: unit %s is added as a dependency to a non-existent unit %s",
                                  info->path, dst);
        }
        unit_info_clear(&instance);
        return r;
}

/* install_info_apply(): link a unit file from outside the search path, then Alias=, WantedBy=,
 * RequiredBy= (systemd 252 has no [Install] UpheldBy=; it is ignored as an unknown key). As in
 * systemd 252, a failure of WantedBy=/RequiredBy= counts only when Alias= gave 0. */
static int install_info_apply(struct uctx *u, struct unit_info *info) {
        int r = in_search_path(info->path);
        if (r < 0)
                return promote(u, r, info->name);
        if (r == 0) {
                _cleanup_free_ char *p = NULL;
                clear_note(u);
                if (asprintf(&p, "%s/%s", CONFIG_PATH, info->name) < 0)
                        return promote(u, -ENOMEM, info->name);
                r = create_symlink(u, info->path, p, false);
                if (r < 0)
                        return promote(u, r, info->name);
        }
        r = symlink_aliases(u, info);
        int q = symlink_wants(u, info, info->wanted_by, ".wants");
        if (r == 0)
                r = q;
        q = symlink_wants(u, info, info->required_by, ".requires");
        if (r == 0)
                r = q;
        return r;
}

/* The name as systemctl would take it: a valid unit name, or a bare name that gets ".service". */
static int mangle_name(struct uctx *u, const char *in, char **ret) {
        if (name_is_valid(in, NAME_ANY)) {
                *ret = strdup(in);
                return *ret ? 0 : -ENOMEM;
        }
        if (!strchr(in, '/')) {
                char *s;
                if (asprintf(&s, "%s.service", in) < 0)
                        return -ENOMEM;
                if (name_is_valid(s, NAME_ANY)) {
                        mkm_debug(u->ctx, "units: '%s' taken as '%s'", in, s);
                        *ret = s;
                        return 0;
                }
                free(s);
        }
        return note(u, -MKM_E_RECIPE, "'%s' is not a valid unit name", in);
}

/* Whether the tree's systemd was built with split-usr: its package (dpkg's file list) ships the
 * units under /lib/systemd/system, as Debian 12's does. Upstream and Arch ship /usr/lib. */
static bool tree_split_usr(int rootfd) {
        _cleanup_close_ int fd = fs_open_in_root(rootfd, "var/lib/dpkg/info/systemd.list", O_RDONLY, 0, 0);
        _cleanup_free_ char *text = NULL;
        if (fd < 0 || fs_read_fd(fd, 16u << 20, &text, NULL) < 0)
                return false;
        return strstr(text, "\n/lib/systemd/system/") != NULL;
}

int units_enable(struct mkm_ctx *ctx, int rootfd, char *const *units, struct mkm_err *reterr) {
        struct uctx u = { .ctx = ctx, .rootfd = rootfd, .reterr = reterr };
        u.sp = tree_split_usr(rootfd) ? search_path_split_usr : search_path;
        _cleanup_strv_free_ char **named = NULL;
        int r;

        /* Discovery: every named unit must exist, load and be enableable before anything is
         * created (systemctl fails the whole call here too). */
        for (size_t k = 0; units && units[k]; k++) {
                _cleanup_free_ char *name = NULL;
                struct unit_info *info = NULL, *final = NULL;
                clear_note(&u);
                r = mangle_name(&u, units[k], &name);
                if (r >= 0)
                        r = uctx_add(&u, name, NULL, false, &info);
                if (r >= 0) {
                        r = install_info_traverse(&u, info, true, true, &final);
                        if (r == -ENOENT)
                                r = not_found(&u, name);
                }
                if (r >= 0 && final->mode == MODE_MASKED)
                        r = note(&u, -MKM_E_RECIPE, "unit file %s is masked, cannot enable '%s'", final->path, name);
                if (r >= 0) {
                        r = path_is_generated_or_transient(final->path);
                        if (r > 0)
                                r = note(&u, -MKM_E_RECIPE, "unit %s is transient or generated, cannot enable it",
                                         final->path);
                }
                if (r >= 0)
                        r = strv_push(&named, final->name);
                if (r < 0) {
                        r = promote(&u, r, units[k]);
                        goto out;
                }
        }

        /* Apply, in systemd's order (install_context_apply); Also= units join the end of the list as
         * they are loaded. The result is combined as systemd 252 combines it, so a call fails exactly
         * when systemctl's would; failures it would only print become warnings. */
        int total = 0;
        for (size_t k = 0; k < u.n; k++) {
                struct unit_info *i = u.items[k];
                clear_note(&u);
                r = install_info_traverse(&u, i, true, false, NULL);
                if (r == -ENOENT)
                        r = not_found(&u, i->name);
                if (r < 0) {
                        if (i->auxiliary && r != -ENOMEM) {
                                mkm_warn(ctx, "units: failed to enable auxiliary unit %s (Also=), ignoring: %s", i->name,
                                         u.last.msg[0] ? u.last.msg : mkm_strerror(r));
                                continue;
                        }
                        total = promote(&u, r, i->name);
                        break;
                }
                if (i->mode == MODE_MASKED) {
                        mkm_warn(ctx, "units: unit %s is masked, ignoring", i->path);
                        if (total >= 0)
                                total++;
                        continue;
                }
                if (i->mode != MODE_REGULAR)
                        continue;
                if (strv_contains(named, i->name) && !i->aliases && !i->wanted_by && !i->required_by && !i->also)
                        mkm_debug(ctx,
                                  "units: %s has no installation config (WantedBy=, RequiredBy=, Also=, "
                                  "Alias= in [Install]); nothing to enable, as systemctl says",
                                  i->name);
                int q = install_info_apply(&u, i);
                if (total >= 0)
                        total = q < 0 ? q : total + q;
                if (u.oom)
                        break;
        }
        r = total;
        if (r >= 0 && u.first.code < 0 && !u.oom)
                mkm_warn(ctx, "units: %s; ignoring, as systemctl does", u.first.msg);

out:
        if (u.oom || r == -ENOMEM)
                r = mkm_err_set(reterr, -ENOMEM, "out of memory enabling units");
        else if (r < 0) {
                if (u.first.code < 0)
                        r = mkm_err_set(reterr, u.first.code, "%s", u.first.msg);
                else
                        r = mkm_err_set(reterr, r, "cannot enable units: %s", mkm_strerror(r));
        }
        uctx_done(&u);
        return r < 0 ? r : 0;
}

int units_exists(int rootfd, const char *unit) {
        struct uctx u = { .rootfd = rootfd, .sp = tree_split_usr(rootfd) ? search_path_split_usr : search_path };
        struct unit_info info = { .mode = MODE_INVALID };
        if (!name_is_valid(unit, NAME_ANY))
                return -EINVAL;
        info.name = strdup(unit);
        if (!info.name)
                return -ENOMEM;
        int r = unit_file_search(&u, &info, false);
        free(info.name);
        free(info.path);
        free(info.symlink_target);
        uctx_done(&u);
        return r < 0 ? r : 0;
}
