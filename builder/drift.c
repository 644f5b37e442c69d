/* SPDX-License-Identifier: MIT */
/* Drift: the live tree against its manifest (see drift.h). One walk, the manifest's own
 * (manifest_walk, never clamping), merged with the parsed manifest in path order. */
#include "drift.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctx.h"
#include "manifest.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/strv.h"

/* What a running machine writes by itself: shown by verify, never blocking. Each entry covers
 * the path itself and everything below it. Keep docs/mkmachine.1.md (VERIFY) in step. */
static const char *const runtime_paths[] = {
        "./etc/resolv.conf",            /* nspawn --resolv-conf= copies, binds or links the host's */
        "./etc/localtime",              /* nspawn --timezone= */
        "./etc/machine-id",             /* written at the first boot */
        "./etc/.updated",               /* systemd-update-done, at boot (ConditionNeedsUpdate=) */
        "./var/.updated",
        "./etc/.pwd.lock",              /* lckpwdf(3), taken by systemd-sysusers at boot */
        "./etc/ld.so.cache",            /* ldconfig.service, at boot: derived from the tree itself */
        "./var/log",                    /* logs and the persistent journal (var/log/journal) */
        "./var/cache",
        "./var/tmp",
        "./var/lib/systemd",            /* random-seed, timers, catalog, coredumps, ... */
        "./var/lib/dbus/machine-id",
        "./tmp",
        "./run",                        /* the volatile journal (run/log/journal), when not a tmpfs */
};

bool drift_path_is_runtime(const char *path) {
        for (size_t i = 0; i < ELEMENTSOF(runtime_paths); i++) {
                size_t n = strlen(runtime_paths[i]);
                if (strncmp(path, runtime_paths[i], n) == 0 && (path[n] == 0 || path[n] == '/'))
                        return true;
        }
        return false;
}

const char *drift_kind_to_string(enum drift_kind k) {
        static const char *const names[_DRIFT_KIND_MAX] = {
                [DRIFT_ADDED] = "added",
                [DRIFT_REMOVED] = "removed",
                [DRIFT_CHANGED] = "changed",
        };
        return k < _DRIFT_KIND_MAX ? names[k] : NULL;
}

static void entry_done(struct drift_entry *e) {
        free(e->path);
        free(e->what);
        for (size_t i = 0; i < e->n_changes; i++) {
                free(e->changes[i].name);
                free(e->changes[i].old_value);
                free(e->changes[i].new_value);
        }
        free(e->changes);
}

struct drift *drift_free(struct drift *d) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n; i++)
                entry_done(&d->e[i]);
        free(d->e);
        free(d);
        return NULL;
}

/* ---- building one entry ---- */

static int change_add(struct drift_entry *e, size_t *cap, const char *what, const char *name, const char *old_value,
                      const char *new_value) {
        if (mkm_grow((void **)&e->changes, cap, e->n_changes, sizeof *e->changes, 4) < 0)
                return -ENOMEM;
        struct drift_change c = {
                .what = what,
                .name = name ? strdup(name) : NULL,
                .old_value = old_value ? strdup(old_value) : NULL,
                .new_value = new_value ? strdup(new_value) : NULL,
        };
        if ((name && !c.name) || (old_value && !c.old_value) || (new_value && !c.new_value)) {
                free(c.name);
                free(c.old_value);
                free(c.new_value);
                return -ENOMEM;
        }
        e->changes[e->n_changes++] = c;
        return 0;
}

/* The xattrs string " xattr.NAME=HEX ..." as parallel vectors of names and values. */
static int split_xattrs(const char *s, char ***ret_names, char ***ret_values) {
        _cleanup_strv_free_ char **names = NULL, **values = NULL;
        _cleanup_strv_free_ char **tokens = NULL;
        if (s && strv_split(s, " ", &tokens) < 0)
                return -ENOMEM;
        for (char **t = tokens; t && *t; t++) {
                const char *eq = strchr(*t, '=');
                if (strncmp(*t, "xattr.", 6) != 0 || !eq)
                        continue;       /* the parser and the walk write nothing else */
                char *name = strndup(*t + 6, (size_t)(eq - *t - 6));
                if (!name || strv_consume(&names, name) < 0) {
                        free(name);
                        return -ENOMEM;
                }
                if (strv_push(&values, eq + 1) < 0)
                        return -ENOMEM;
        }
        *ret_names = TAKE_PTR(names);
        *ret_values = TAKE_PTR(values);
        return 0;
}

static const char *lookup(char **names, char **values, const char *name) {
        for (size_t i = 0; names && names[i]; i++)
                if (strcmp(names[i], name) == 0)
                        return values[i];
        return NULL;
}

static int compare_xattrs(struct drift_entry *e, size_t *cap, const char *old_s, const char *new_s) {
        _cleanup_strv_free_ char **on = NULL, **ov = NULL, **nn = NULL, **nv = NULL, **all = NULL;
        if (split_xattrs(old_s, &on, &ov) < 0 || split_xattrs(new_s, &nn, &nv) < 0 || strv_extend(&all, on) < 0)
                return -ENOMEM;
        for (char **x = nn; x && *x; x++)
                if (!strv_contains(all, *x) && strv_push(&all, *x) < 0)
                        return -ENOMEM;
        strv_sort(all);
        for (char **x = all; x && *x; x++) {
                const char *o = lookup(on, ov, *x), *n = lookup(nn, nv, *x);
                if ((!o || !n || strcmp(o, n) != 0) && change_add(e, cap, "xattr", *x, o, n) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* The keywords of e's changes, in their order, each once. */
static char *what_of(const struct drift_entry *e) {
        static const char *const order[] = { "type", "content", "size", "mode", "owner", "link", "rdev", "xattr", "time" };
        char buf[128] = "";
        for (size_t k = 0; k < ELEMENTSOF(order); k++)
                for (size_t i = 0; i < e->n_changes; i++)
                        if (strcmp(e->changes[i].what, order[k]) == 0) {
                                if (buf[0])
                                        strcat(buf, " ");
                                strcat(buf, strcmp(order[k], "xattr") == 0 ? "xattrs" : order[k]);
                                break;
                        }
        return strdup(buf);
}

/* Compare m (the manifest's) with l (the tree's) into e's changes. */
static int compare(struct drift_entry *e, const struct manifest_entry *m, const struct manifest_entry *l) {
        size_t cap = 0;
        int r = 0;
        if (m->type != l->type)
                /* Another kind of object: its other attributes are not comparable. */
                return change_add(e, &cap, "type", NULL, manifest_type_to_string(m->type),
                                  manifest_type_to_string(l->type));
        if (m->type == MANIFEST_FILE && strcmp(m->sha256, l->sha256) != 0)
                r = change_add(e, &cap, "content", NULL, m->sha256, l->sha256);
        char o[48], n[48];
        if (r >= 0 && m->type == MANIFEST_FILE && m->size != l->size) {
                (void)snprintf(o, sizeof o, "%" PRIu64, m->size);
                (void)snprintf(n, sizeof n, "%" PRIu64, l->size);
                r = change_add(e, &cap, "size", NULL, o, n);
        }
        if (r >= 0 && m->mode != l->mode) {
                (void)snprintf(o, sizeof o, "%04o", m->mode);
                (void)snprintf(n, sizeof n, "%04o", l->mode);
                r = change_add(e, &cap, "mode", NULL, o, n);
        }
        if (r >= 0 && (m->uid != l->uid || m->gid != l->gid)) {
                (void)snprintf(o, sizeof o, "%u:%u", m->uid, m->gid);
                (void)snprintf(n, sizeof n, "%u:%u", l->uid, l->gid);
                r = change_add(e, &cap, "owner", NULL, o, n);
        }
        if (r >= 0 && m->type == MANIFEST_LINK && strcmp(m->link, l->link) != 0) {
                _cleanup_free_ char *ol = manifest_escape_str(m->link), *nl = manifest_escape_str(l->link);
                r = ol && nl ? change_add(e, &cap, "link", NULL, ol, nl) : -ENOMEM;
        }
        if (r >= 0 && m->type == MANIFEST_OTHER && (m->rdev_major != l->rdev_major || m->rdev_minor != l->rdev_minor)) {
                (void)snprintf(o, sizeof o, "%u:%u", m->rdev_major, m->rdev_minor);
                (void)snprintf(n, sizeof n, "%u:%u", l->rdev_major, l->rdev_minor);
                r = change_add(e, &cap, "rdev", NULL, o, n);
        }
        if (r >= 0 && strcmp(m->xattrs ? m->xattrs : "", l->xattrs ? l->xattrs : "") != 0)
                r = compare_xattrs(e, &cap, m->xattrs, l->xattrs);
        if (r >= 0 && m->time != l->time) {
                (void)snprintf(o, sizeof o, "%" PRId64, m->time);
                (void)snprintf(n, sizeof n, "%" PRId64, l->time);
                r = change_add(e, &cap, "time", NULL, o, n);
        }
        return r;
}

/* ---- the merge of the manifest with the walk ---- */

struct merge {
        const struct manifest_entry *m;
        size_t nm, i;
        struct drift *d;
        size_t cap;
};

static int emit(struct merge *mg, enum drift_kind kind, const struct manifest_entry *m, const struct manifest_entry *l) {
        const struct manifest_entry *any = l ? l : m;
        struct drift_entry e = {
                .kind = kind,
                .runtime = drift_path_is_runtime(any->path),
                .type = manifest_type_to_string(any->type),
        };
        int r = kind == DRIFT_CHANGED ? compare(&e, m, l) : 0;
        if (r >= 0 && kind == DRIFT_CHANGED && e.n_changes == 0)
                return 0;       /* the same */
        if (r >= 0 && (!(e.path = manifest_escape_str(any->path)) || !(e.what = kind == DRIFT_CHANGED ? what_of(&e) : strdup("")) ||
                       mkm_grow((void **)&mg->d->e, &mg->cap, mg->d->n, sizeof *mg->d->e, 64) < 0))
                r = -ENOMEM;
        if (r < 0) {
                entry_done(&e);
                return r;
        }
        bool time_only = kind == DRIFT_CHANGED && e.n_changes == 1 && strcmp(e.changes[0].what, "time") == 0;
        e.blocking = !e.runtime && !time_only;
        struct drift *d = mg->d;
        d->n_blocking += e.blocking;
        d->n_runtime += e.runtime;
        d->n_kind[kind]++;
        d->e[d->n++] = e;
        return 0;
}

static int on_live(const struct manifest_entry *l, void *userdata) {
        struct merge *mg = userdata;
        int r;
        /* Both sides are sorted by strcmp of the raw path. */
        while (mg->i < mg->nm && strcmp(mg->m[mg->i].path, l->path) < 0)
                if ((r = emit(mg, DRIFT_REMOVED, &mg->m[mg->i++], NULL)) < 0)
                        return r;
        if (mg->i < mg->nm && strcmp(mg->m[mg->i].path, l->path) == 0)
                return emit(mg, DRIFT_CHANGED, &mg->m[mg->i++], l);
        return emit(mg, DRIFT_ADDED, NULL, l);
}

int drift_compute(struct mkm_ctx *ctx, int rootfd, const char *manifest, struct drift **ret, struct mkm_err *reterr) {
        struct manifest_entry *m = NULL;
        size_t nm = 0;
        /* The walk lists only the xattrs that are content; a manifest from before host labels
         * were left out may list a security.selinux on every entry, which is no drift either. */
        _cleanup_free_ char *content = NULL;
        int r = manifest_strip_host_xattrs(manifest, &content);
        if (r < 0)
                return r;
        if (r > 0)
                mkm_debug(ctx, "drift: the manifest lists xattrs that are not content (a host's labels); ignoring them");
        r = manifest_parse(content, &m, &nm, reterr);
        if (r < 0)
                return r;
        _cleanup_(drift_freep) struct drift *d = calloc(1, sizeof *d);
        if (!d) {
                manifest_entries_free(m, nm);
                return -ENOMEM;
        }
        struct merge mg = { .m = m, .nm = nm, .d = d };
        /* clamp -1: the walk only reads. */
        r = manifest_walk(ctx, rootfd, -1, on_live, &mg, reterr);
        while (r >= 0 && mg.i < nm)
                r = emit(&mg, DRIFT_REMOVED, &m[mg.i++], NULL);
        manifest_entries_free(m, nm);
        if (r < 0)
                return r;
        mkm_debug(ctx, "drift: %zu entries (%zu blocking, %zu runtime)", d->n, d->n_blocking, d->n_runtime);
        *ret = TAKE_PTR(d);
        return 0;
}

/* ---- for people ---- */

static void format_time(char *buf, size_t len, const char *epoch) {
        struct tm tm;
        time_t t = (time_t)strtoll(epoch, NULL, 10);
        if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                (void)snprintf(buf, len, "%s", epoch);
}

char *drift_entry_to_string(const struct drift_entry *e) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        fprintf(f, "%c %s", e->kind == DRIFT_ADDED ? '+' : e->kind == DRIFT_REMOVED ? '-' : 'M', e->path);
        for (size_t i = 0; i < e->n_changes; i++) {
                const struct drift_change *c = &e->changes[i];
                fputs(i == 0 ? " (" : ", ", f);
                if (strcmp(c->what, "content") == 0)
                        fputs("content", f);
                else if (strcmp(c->what, "xattr") == 0)
                        fprintf(f, "xattr %s %s", c->name, !c->old_value ? "added" : !c->new_value ? "removed" : "changed");
                else if (strcmp(c->what, "time") == 0) {
                        char o[32], n[32];
                        format_time(o, sizeof o, c->old_value);
                        format_time(n, sizeof n, c->new_value);
                        fprintf(f, "time %s→%s", o, n);
                } else
                        fprintf(f, "%s %s→%s", c->what, c->old_value, c->new_value);
                if (i + 1 == e->n_changes)
                        fputc(')', f);
        }
        if (e->runtime)
                fputs(" [runtime]", f);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
