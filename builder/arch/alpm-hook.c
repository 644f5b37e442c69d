/* SPDX-License-Identifier: MIT */
/* libalpm hooks: parse .hook files as pacman 6.0.2 does, match them against an initial
 * install, and run the triggered ones in the sandbox.
 *
 * Threat: hook files come from packages. They are read through the root dirfd (a symlinked hook
 * resolves inside the tree), capped in size, and their Exec= is split into an argv (never handed
 * to a shell by us) and run only inside the sandbox. */
#include "alpm-hook.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../ctx.h"
#include "../sandbox.h"
#include "../util/cleanup.h"
#include "../util/err.h"
#include "../util/fs.h"
#include "../util/log.h"
#include "../util/strv.h"
#include "vercmp.h"

#define HOOK_SUFFIX ".hook"
#define HOOK_FILE_MAX (1u << 20)
#define HOOKS_MAX 4096

static const char *const hook_dirs[] = { "etc/pacman.d/hooks", "usr/share/libalpm/hooks" };

struct alpm_hook *alpm_hook_free(struct alpm_hook *h) {
        if (!h)
                return NULL;
        free(h->name);
        free(h->desc);
        for (size_t i = 0; i < h->n_triggers; i++)
                strv_free(h->triggers[i].targets);
        free(h->triggers);
        strv_free(h->depends);
        strv_free(h->cmd);
        free(h);
        return NULL;
}

/* ------------------------------------------------------------------ wordsplit */

int alpm_hook_wordsplit(const char *s, char ***ret) {
        _cleanup_strv_free_ char **out = calloc(1, sizeof(char *));
        if (!out)
                return -ENOMEM;
        const char *c = s;
        while (isspace((unsigned char)*c))
                c++;
        while (*c) {
                size_t cap = strlen(c) + 1;
                _cleanup_free_ char *word = malloc(cap);
                if (!word)
                        return -ENOMEM;
                size_t w = 0;
                const char *end = c;
                while (*end && !isspace((unsigned char)*end)) {
                        if (*end == '\'' || *end == '"') {
                                char quote = *end++;
                                while (*end && *end != quote) {
                                        if (*end == '\\' && end[1] == quote)
                                                end++;
                                        word[w++] = *end++;
                                }
                                if (*end != quote)
                                        return -EINVAL;
                                end++;
                        } else {
                                if (*end == '\\' && (end[1] == '\'' || end[1] == '"' || end[1] == '\\'))
                                        end++;
                                word[w++] = *end++;
                        }
                }
                word[w] = 0;
                int r = strv_consume(&out, word);
                if (r < 0)
                        return r;
                word = NULL;
                c = end;
                while (isspace((unsigned char)*c))
                        c++;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

/* ------------------------------------------------------------------ parser */

static void trim(char **s) {
        char *p = *s;
        while (isspace((unsigned char)*p))
                p++;
        size_t l = strlen(p);
        while (l > 0 && isspace((unsigned char)p[l - 1]))
                p[--l] = 0;
        *s = p;
}

struct parse_state {
        struct mkm_ctx *ctx;
        const char *file;
        struct alpm_hook *h;
        struct mkm_err *reterr;
};

static int perr(struct parse_state *ps, unsigned line, const char *what, const char *arg) {
        return mkm_err_set(ps->reterr, -MKM_E_PARSE, "hook %s line %u: %s %s", ps->file, line, what, arg);
}

static void overwriting(struct parse_state *ps, unsigned line, const char *key) {
        mkm_warn(ps->ctx, "hook %s line %u: overwriting previous definition of %s", ps->file, line, key);
}

static int on_section(struct parse_state *ps, unsigned line, const char *name) {
        if (strcmp(name, "Trigger") == 0) {
                struct alpm_hook_trigger *t = mkm_reallocarray(ps->h->triggers, ps->h->n_triggers + 1, sizeof *t);
                if (!t)
                        return -ENOMEM;
                ps->h->triggers = t;
                t[ps->h->n_triggers++] = (struct alpm_hook_trigger){};
                return 0;
        }
        if (strcmp(name, "Action") == 0)
                return 0;
        return perr(ps, line, "invalid section", name);
}

static int on_key(struct parse_state *ps, unsigned line, const char *section, const char *key, const char *value) {
        struct alpm_hook *h = ps->h;
        int r;
        if (!section)
                return perr(ps, line, "invalid option", key);
        bool is_trigger = strcmp(section, "Trigger") == 0;
        /* Keys that take a value (pacman would dereference the missing one). */
        static const char *const valued[] = { "Operation", "Type", "Target", "When", "Description", "Depends",
                                              "Exec", "NetworkAccess" };
        for (size_t i = 0; i < ELEMENTSOF(valued); i++)
                if (!value && strcmp(key, valued[i]) == 0)
                        return mkm_err_set(ps->reterr, -MKM_E_PARSE, "hook %s line %u: %s needs a value", ps->file, line,
                                           key);
        if (is_trigger) {
                struct alpm_hook_trigger *t = &h->triggers[h->n_triggers - 1];
                if (strcmp(key, "Operation") == 0) {
                        if (strcmp(value, "Install") == 0)
                                t->ops |= ALPM_HOOK_OP_INSTALL;
                        else if (strcmp(value, "Upgrade") == 0)
                                t->ops |= ALPM_HOOK_OP_UPGRADE;
                        else if (strcmp(value, "Remove") == 0)
                                t->ops |= ALPM_HOOK_OP_REMOVE;
                        else
                                return perr(ps, line, "invalid value", value);
                } else if (strcmp(key, "Type") == 0) {
                        if (t->type != 0)
                                overwriting(ps, line, "Type");
                        if (strcmp(value, "Package") == 0)
                                t->type = ALPM_HOOK_TYPE_PACKAGE;
                        else if (strcmp(value, "File") == 0) {
                                mkm_debug(ps->ctx, "hook %s: File targets are deprecated, use Path instead", ps->file);
                                t->type = ALPM_HOOK_TYPE_PATH;
                        } else if (strcmp(value, "Path") == 0)
                                t->type = ALPM_HOOK_TYPE_PATH;
                        else
                                return perr(ps, line, "invalid value", value);
                } else if (strcmp(key, "Target") == 0) {
                        r = strv_push(&t->targets, value);
                        if (r < 0)
                                return r;
                } else
                        return perr(ps, line, "invalid option", key);
                return 0;
        }
        /* [Action] */
        if (strcmp(key, "When") == 0) {
                if (h->when != 0)
                        overwriting(ps, line, "When");
                if (strcmp(value, "PreTransaction") == 0)
                        h->when = ALPM_HOOK_PRE_TRANSACTION;
                else if (strcmp(value, "PostTransaction") == 0)
                        h->when = ALPM_HOOK_POST_TRANSACTION;
                else
                        return perr(ps, line, "invalid value", value);
        } else if (strcmp(key, "Description") == 0) {
                if (h->desc) {
                        overwriting(ps, line, "Description");
                        free(h->desc);
                }
                if (!(h->desc = strdup(value)))
                        return -ENOMEM;
        } else if (strcmp(key, "Depends") == 0) {
                r = strv_push(&h->depends, value);
                if (r < 0)
                        return r;
        } else if (strcmp(key, "AbortOnFail") == 0) {
                h->abort_on_fail = true;
        } else if (strcmp(key, "NeedsTargets") == 0) {
                h->needs_targets = true;
        } else if (strcmp(key, "NetworkAccess") == 0) {
                /* pacman 7; 6.0.2 would reject the key. Hooks built for today's Arch carry it. */
                if (strcmp(value, "allowed") != 0)
                        return perr(ps, line, "invalid value", value);
                h->allow_net = true;
        } else if (strcmp(key, "Exec") == 0) {
                if (h->cmd) {
                        overwriting(ps, line, "Exec");
                        h->cmd = strv_free(h->cmd);
                }
                r = alpm_hook_wordsplit(value, &h->cmd);
                if (r == -EINVAL || (r >= 0 && !h->cmd[0])) {
                        h->cmd = strv_free(h->cmd);
                        return perr(ps, line, "invalid value", value);
                }
                if (r < 0)
                        return mkm_err_set(ps->reterr, r, "hook %s line %u: unable to set option (%s)", ps->file, line,
                                           mkm_strerror(r));
        } else
                return perr(ps, line, "invalid option", key);
        return 0;
}

static void append_msg(char *buf, size_t size, const char *what, const char *file) {
        size_t l = strlen(buf);
        if (l >= size - 1)
                return;
        (void)snprintf(buf + l, size - l, "%sMissing %s in hook: %s", l ? "; " : "", what, file);
}

static int validate(struct parse_state *ps) {
        const struct alpm_hook *h = ps->h;
        char msg[sizeof ps->reterr->msg] = "";
        if (h->n_triggers == 0)
                return 0;       /* a triggerless hook is a dummy that masks a lower-priority one */
        for (size_t i = 0; i < h->n_triggers; i++) {
                const struct alpm_hook_trigger *t = &h->triggers[i];
                if (!t->targets)
                        append_msg(msg, sizeof msg, "trigger targets", ps->file);
                if (t->type == 0)
                        append_msg(msg, sizeof msg, "trigger type", ps->file);
                if (t->ops == 0)
                        append_msg(msg, sizeof msg, "trigger operation", ps->file);
        }
        if (!h->cmd)
                append_msg(msg, sizeof msg, "Exec option", ps->file);
        if (h->when == 0)
                append_msg(msg, sizeof msg, "When option", ps->file);
        else if (h->when != ALPM_HOOK_PRE_TRANSACTION && h->abort_on_fail)
                mkm_warn(ps->ctx, "AbortOnFail set for PostTransaction hook: %s", ps->file);
        if (msg[0])
                return mkm_err_set(ps->reterr, -MKM_E_PARSE, "%s", msg);
        return 0;
}

int alpm_hook_parse(struct mkm_ctx *ctx, const char *text, size_t len, const char *filename, struct alpm_hook **ret,
                    struct mkm_err *reterr) {
        if (memchr(text, 0, len))
                return mkm_err_set(reterr, -MKM_E_PARSE, "hook %s: contains a NUL byte", filename);
        _cleanup_free_ char *buf = strndup(text, len);
        _cleanup_free_ char *section = NULL;
        _cleanup_(alpm_hook_freep) struct alpm_hook *h = calloc(1, sizeof *h);
        if (!buf || !h)
                return -ENOMEM;
        const char *base = strrchr(filename, '/');
        if (!(h->name = strdup(base ? base + 1 : filename)))
                return -ENOMEM;
        struct parse_state ps = { .ctx = ctx, .file = filename, .h = h, .reterr = reterr };
        unsigned lineno = 0;
        int r;
        for (char *next = buf, *line; next;) {
                line = next;
                char *nl = strchr(line, '\n');
                next = nl ? nl + 1 : NULL;
                if (nl)
                        *nl = 0;
                lineno++;
                trim(&line);
                size_t ll = strlen(line);
                if (ll == 0 || line[0] == '#')
                        continue;
                if (line[0] == '[' && line[ll - 1] == ']') {
                        line[ll - 1] = 0;
                        const char *name = ll >= 2 ? line + 1 : "";
                        r = on_section(&ps, lineno, name);
                        if (r < 0)
                                return r;
                        free(section);
                        if (!(section = strdup(name)))
                                return -ENOMEM;
                        continue;
                }
                char *key = line, *value = strchr(line, '=');
                if (value) {
                        *value++ = 0;
                        trim(&value);
                }
                trim(&key);
                r = on_key(&ps, lineno, section, key, value);
                if (r < 0)
                        return r;
        }
        r = validate(&ps);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(h);
        return 0;
}

/* ------------------------------------------------------------------ matching */

int alpm_hook_fnmatch_patterns(char *const *patterns, const char *s) {
        size_t n = strv_length(patterns);
        for (size_t i = n; i-- > 0;) {
                const char *p = patterns[i];
                bool inverted = p[0] == '!';
                if (inverted || p[0] == '\\')
                        p++;
                if (fnmatch(p, s, 0) == 0)
                        return inverted ? 1 : 0;
        }
        return -1;
}

int alpm_hook_match(const struct alpm_hook *h, const struct alpm_hook_pkg *pkgs, size_t n, char ***ret_targets) {
        struct strv_builder mb = {};
        _cleanup_strv_free_ char **matches = NULL;
        bool triggered = false;
        int r;
        if (ret_targets)
                *ret_targets = NULL;
        for (size_t t = 0; t < h->n_triggers; t++) {
                const struct alpm_hook_trigger *tr = &h->triggers[t];
                /* An initial install: nothing is upgraded or removed. */
                if (!(tr->ops & ALPM_HOOK_OP_INSTALL))
                        continue;
                bool hit = false;
                for (size_t i = 0; i < n; i++) {
                        if (tr->type == ALPM_HOOK_TYPE_PACKAGE) {
                                if (alpm_hook_fnmatch_patterns(tr->targets, pkgs[i].name) != 0)
                                        continue;
                                hit = true;
                                if (!h->needs_targets)
                                        break;
                                if ((r = strv_builder_push(&mb, pkgs[i].name)) < 0)
                                        goto fail;
                                continue;
                        }
                        for (char *const *f = pkgs[i].files; f && *f; f++) {
                                if (alpm_hook_fnmatch_patterns(tr->targets, *f) != 0)
                                        continue;
                                hit = true;
                                if (!h->needs_targets)
                                        break;
                                if ((r = strv_builder_push(&mb, *f)) < 0)
                                        goto fail;
                        }
                        if (hit && !h->needs_targets)
                                break;
                }
                if (hit) {
                        triggered = true;
                        if (!h->needs_targets)
                                break;
                }
        }
        matches = TAKE_PTR(mb.l);
        if (!triggered)
                return 0;
        if (h->needs_targets && ret_targets) {
                size_t m = mb.n, k = 0;
                if (!matches && !(matches = calloc(1, sizeof(char *))))
                        return -ENOMEM;
                strv_sort(matches);
                for (size_t i = 0; i < m; i++) {
                        if (k > 0 && strcmp(matches[k - 1], matches[i]) == 0) {
                                free(matches[i]);
                                continue;
                        }
                        matches[k++] = matches[i];
                }
                matches[k] = NULL;
                *ret_targets = TAKE_PTR(matches);
        }
        return 1;
fail:
        strv_free(mb.l);
        return r;
}

/* ------------------------------------------------------------------ loading */

/* pacman's _alpm_hook_cmp: by name without the suffix; a prefix sorts first. */
static int hook_cmp(const void *a, const void *b) {
        const struct alpm_hook *h1 = *(struct alpm_hook *const *)a, *h2 = *(struct alpm_hook *const *)b;
        size_t sl = strlen(HOOK_SUFFIX), l1 = strlen(h1->name) - sl, l2 = strlen(h2->name) - sl;
        int r = strncmp(h1->name, h2->name, l1 <= l2 ? l1 : l2);
        if (r == 0 && l1 != l2)
                return l1 < l2 ? -1 : 1;
        return r;
}

static bool have_hook(struct alpm_hook **l, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(l[i]->name, name) == 0)
                        return true;
        return false;
}

/* Read one hook file. Returns 1 with *ret_text (an empty text for /dev/null), 0 to skip it
 * (a directory), or a negative errno with reterr set. */
static int read_hook_file(struct mkm_ctx *ctx, int rootfd, int dfd, const char *dir, const char *name, char **ret_text,
                          size_t *ret_len, struct mkm_err *reterr) {
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return mkm_err_set(reterr, negative_errno(), "could not stat file /%s/%s: %m", dir, name);
        if (S_ISLNK(st.st_mode)) {
                char target[64];
                ssize_t tl = readlinkat(dfd, name, target, sizeof target - 1);
                if (tl >= 0) {
                        target[tl] = 0;
                        if (strcmp(target, "/dev/null") == 0) {
                                *ret_text = strdup("");
                                *ret_len = 0;
                                return *ret_text ? 1 : -ENOMEM;
                        }
                }
        }
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = fs_open_in_root(rootfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, 0);
        if (fd < 0)
                return mkm_err_set(reterr, fd, "could not stat file /%s: %s", path, mkm_strerror(fd));
        if (fstat(fd, &st) < 0)
                return mkm_err_set(reterr, negative_errno(), "could not stat file /%s: %m", path);
        if (S_ISDIR(st.st_mode)) {
                mkm_debug(ctx, "skipping directory /%s", path);
                return 0;
        }
        if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
                *ret_text = strdup("");
                *ret_len = 0;
                return *ret_text ? 1 : -ENOMEM;
        }
        if (!S_ISREG(st.st_mode))
                return mkm_err_set(reterr, -EINVAL, "hook /%s: not a regular file", path);
        int r = fs_read_fd(fd, HOOK_FILE_MAX, ret_text, ret_len);
        if (r < 0)
                return mkm_err_set(reterr, r, "error while reading hook /%s: %s", path,
                                   r == -EFBIG ? "larger than 1 MiB" : mkm_strerror(r));
        return 1;
}

struct hook_dir_walk {
        struct mkm_ctx *ctx;
        const char *dir;
};

static bool is_hook_name(int dirfd, const char *name, void *userdata) {
        (void)dirfd;
        const struct hook_dir_walk *hw = userdata;
        size_t nl = strlen(name), sl = strlen(HOOK_SUFFIX);
        if (nl >= sl && strcmp(name + nl - sl, HOOK_SUFFIX) == 0)
                return true;
        mkm_debug(hw->ctx, "skipping non-hook file /%s/%s", hw->dir, name);
        return false;
}

int alpm_hooks_load(struct mkm_ctx *ctx, int rootfd, bool strict, struct alpm_hook ***ret, size_t *ret_n,
                    struct mkm_err *reterr) {
        struct alpm_hook **hooks = NULL;
        size_t n = 0;
        int r = 0;
        for (size_t d = 0; d < ELEMENTSOF(hook_dirs) && r >= 0; d++) {
                _cleanup_close_ int dfd = fs_open_in_root(rootfd, hook_dirs[d], O_RDONLY | O_DIRECTORY, 0, 0);
                if (dfd == -ENOENT || dfd == -ENOTDIR)
                        continue;
                if (dfd < 0) {
                        r = mkm_err_set(reterr, dfd, "could not open directory: /%s: %s", hook_dirs[d], mkm_strerror(dfd));
                        break;
                }
                _cleanup_strv_free_ char **names = NULL;
                struct hook_dir_walk hw = { .ctx = ctx, .dir = hook_dirs[d] };
                r = fs_list_names(dfd, is_hook_name, &hw, HOOKS_MAX, &names);
                if (r == -E2BIG)
                        r = mkm_err_set(reterr, r, "/%s: more than %u hooks", hook_dirs[d], HOOKS_MAX);
                else if (r < 0 && r != -ENOMEM)
                        r = mkm_err_set(reterr, r, "could not read directory: /%s: %s", hook_dirs[d], mkm_strerror(r));
                if (r < 0)
                        break;
                for (char **nm = names; nm && *nm; nm++) {
                        if (have_hook(hooks, n, *nm)) {
                                mkm_debug(ctx, "skipping overridden hook /%s/%s", hook_dirs[d], *nm);
                                continue;
                        }
                        _cleanup_free_ char *text = NULL, *shown = NULL;
                        size_t len = 0;
                        struct mkm_err e = {};
                        struct alpm_hook *h = NULL;
                        int q = read_hook_file(ctx, rootfd, dfd, hook_dirs[d], *nm, &text, &len, &e);
                        if (q == 0)
                                continue;
                        if (q > 0) {
                                if (asprintf(&shown, "/%s/%s", hook_dirs[d], *nm) < 0) {
                                        r = -ENOMEM;
                                        break;
                                }
                                mkm_debug(ctx, "parsing hook file %s", shown);
                                q = alpm_hook_parse(ctx, text, len, shown, &h, &e);
                        }
                        if (q == -ENOMEM) {
                                r = q;
                                break;
                        }
                        if (q < 0) {
                                if (strict) {
                                        r = mkm_err_set(reterr, q, "%s", e.msg);
                                        break;
                                }
                                mkm_warn(ctx, "%s; skipping the hook", e.msg);
                                continue;
                        }
                        struct alpm_hook **nh = mkm_reallocarray(hooks, n + 1, sizeof *nh);
                        if (!nh) {
                                alpm_hook_free(h);
                                r = -ENOMEM;
                                break;
                        }
                        hooks = nh;
                        hooks[n++] = h;
                }
        }
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        alpm_hook_free(hooks[i]);
                free(hooks);
                return r;
        }
        if (n > 0)
                qsort(hooks, n, sizeof *hooks, hook_cmp);
        *ret = hooks;
        *ret_n = n;
        return 0;
}

/* ------------------------------------------------------------------ running */

static const char *unsatisfied_dep(const struct alpm_hook *h, const struct alpm_hook_pkg *installed, size_t n) {
        for (char **d = h->depends; d && *d; d++) {
                struct vercmp_dep dep;
                struct mkm_err e = {};
                bool ok = false;
                if (vercmp_dep_parse(*d, &dep, &e) == 0) {
                        for (size_t i = 0; i < n && !ok; i++)
                                ok = vercmp_dep_satisfied_by(&dep, installed[i].name, installed[i].version,
                                                             installed[i].provides);
                        vercmp_dep_done(&dep);
                }
                if (!ok)
                        return *d;
        }
        return NULL;
}

static char *join_lines(char **l) {
        size_t len = 0;
        for (char **p = l; p && *p; p++)
                len += strlen(*p) + 1;
        char *s = malloc(len + 1), *w = s;
        if (!s)
                return NULL;
        for (char **p = l; p && *p; p++)
                w = stpcpy(stpcpy(w, *p), "\n");
        *w = 0;
        return s;
}

int alpm_hooks_run(struct mkm_ctx *ctx, const char *root, int rootfd, enum alpm_hook_when when,
                   const struct alpm_hook_pkg *pkgs, size_t n, const struct alpm_hook_pkg *installed, size_t n_installed,
                   const struct sandbox_opts *base, struct mkm_err *reterr) {
        struct alpm_hook **hooks = NULL;
        size_t nh = 0;
        bool pre = when == ALPM_HOOK_PRE_TRANSACTION;
        int r = alpm_hooks_load(ctx, rootfd, pre, &hooks, &nh, reterr);
        if (r < 0)
                return r;
        _cleanup_free_ size_t *run = calloc(nh ? nh : 1, sizeof *run);
        char ***targets = calloc(nh ? nh : 1, sizeof *targets);
        size_t nrun = 0;
        if (!run || !targets) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < nh; i++) {
                if (hooks[i]->when != when)
                        continue;
                int m = alpm_hook_match(hooks[i], pkgs, n, &targets[i]);
                if (m < 0) {
                        r = m;
                        goto out;
                }
                if (m > 0)
                        run[nrun++] = i;
        }
        if (nrun > 0)
                mkm_emit(ctx, &(struct mkm_event){ .type = MKM_EV_STAGE,
                                                   .text = pre ? "running pre-transaction hooks"
                                                               : "running post-transaction hooks" });
        for (size_t k = 0; k < nrun; k++) {
                const struct alpm_hook *h = hooks[run[k]];
                mkm_emit(ctx, &(struct mkm_event){ .type = MKM_EV_PROGRESS, .text = h->desc ? h->desc : h->name,
                                                   .n = (unsigned)k + 1, .count = (unsigned)nrun });
                mkm_debug(ctx, "running '%s'...", h->name);
                const char *dep = unsatisfied_dep(h, installed, n_installed);
                if (dep) {
                        r = mkm_err_set(reterr, -MKM_E_DEP_UNSAT,
                                        "unable to run hook %s: could not satisfy dependencies ('%s' is not installed)",
                                        h->name, dep);
                        goto out;
                }
                _cleanup_free_ char *in = NULL;
                struct sandbox_opts o = base ? *base : (struct sandbox_opts){ .source_date_epoch = -1 };
                /* Never from the tree: a hook is package content, and the host's network namespace
                 * is not the package's to ask for. NetworkAccess= is parsed and ignored. */
                o.network = false;
                if (h->allow_net)
                        mkm_debug(ctx, "hook %s asks for network access; ignoring (hooks run without network)", h->name ? h->name : "?");
                o.stdin_data = NULL;
                o.stdin_len = 0;
                if (h->needs_targets) {
                        if (!(in = join_lines(targets[run[k]]))) {
                                r = -ENOMEM;
                                goto out;
                        }
                        o.stdin_data = in;
                        o.stdin_len = strlen(in);
                }
                struct mkm_err e = {};
                int q = sandbox_run(ctx, root, h->cmd, &o, NULL, &e);
                if (q == -MKM_E_SCRIPT) {
                        /* pacman: "command failed to execute correctly", and the transaction goes on
                         * unless a PreTransaction hook says AbortOnFail. */
                        if (pre && h->abort_on_fail) {
                                r = mkm_err_set(reterr, -MKM_E_SCRIPT, "hook %s failed (AbortOnFail): %s", h->name, e.msg);
                                goto out;
                        }
                        mkm_warn(ctx, "hook %s: command failed to execute correctly, ignoring: %s", h->name, e.msg);
                        continue;
                }
                if (q < 0) {
                        r = mkm_err_set(reterr, q, "hook %s: %s", h->name, e.msg);
                        goto out;
                }
        }
        r = 0;
out:
        for (size_t i = 0; i < nh; i++) {
                if (targets)
                        strv_free(targets[i]);
                alpm_hook_free(hooks[i]);
        }
        free(targets);
        free(hooks);
        return r;
}
