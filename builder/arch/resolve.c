/* SPDX-License-Identifier: MIT */
/* pacman-compatible dependency resolution (see resolve.h). */
#include "resolve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ctx.h"
#include "../util/cleanup.h"
#include "../util/err.h"
#include "../util/hashmap.h"
#include "../util/strv.h"
#include "repo-alpm.h"
#include "vercmp.h"

#define MAX_DEPTH 512

/* A list of borrowed packages, in order. */
struct plist {
        const struct repo_alpm_pkg **p;
        size_t n, cap;
};

static int plist_add(struct plist *l, const struct repo_alpm_pkg *pkg) {
        if (mkm_grow((void **)&l->p, &l->cap, l->n, sizeof *l->p, 64) < 0)
                return -ENOMEM;
        l->p[l->n++] = pkg;
        return 0;
}

static bool plist_has_name(const struct plist *l, const char *name) {
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->p[i]->name, name) == 0)
                        return true;
        return false;
}

static bool plist_has(const struct plist *l, const struct repo_alpm_pkg *pkg) {
        for (size_t i = 0; i < l->n; i++)
                if (l->p[i] == pkg)
                        return true;
        return false;
}

static bool satisfies(const struct repo_alpm_pkg *pkg, const struct vercmp_dep *dep) {
        return vercmp_dep_satisfied_by(dep, pkg->name, pkg->version, pkg->provides);
}

static const struct repo_alpm_pkg *find_satisfier(const struct plist *l, const struct vercmp_dep *dep) {
        for (size_t i = 0; i < l->n; i++)
                if (satisfies(l->p[i], dep))
                        return l->p[i];
        return NULL;
}

struct resolver {
        struct mkm_ctx *ctx;
        struct repo_alpm_db *const *dbs;
        size_t ndbs;
        char *const *providers;         /* "virtual:pkg" */
        struct plist targets;           /* pacman's "preferred" list */
        struct plist packages;          /* resolved, pkg before its deps (sorted afterwards) */
        struct mkm_err *reterr;
        const char *chain[MAX_DEPTH];   /* for messages: app -> libfoo>=2 */
        size_t depth;
};

static const char *preferred_provider(struct resolver *rs, const char *virtual) {
        size_t n = strlen(virtual);
        if (rs->providers)
                for (char *const *p = rs->providers; *p; p++)
                        if (strncmp(*p, virtual, n) == 0 && (*p)[n] == ':')
                                return *p + n + 1;
        return NULL;
}

/* libalpm resolvedep(): literals in db order, then providers in db and name order. */
static const struct repo_alpm_pkg *resolvedep(struct resolver *rs, const struct vercmp_dep *dep,
                                              const struct plist *excluding) {
        for (size_t i = 0; i < rs->ndbs; i++) {
                const struct repo_alpm_pkg *pkg = repo_alpm_find(rs->dbs[i], dep->name);
                if (pkg && vercmp_satisfies(pkg->version, dep->op, dep->version) &&
                    !(excluding && plist_has_name(excluding, pkg->name)))
                        return pkg;
        }
        const char *want = preferred_provider(rs, dep->name);
        const struct repo_alpm_pkg *first = NULL;
        for (size_t i = 0; i < rs->ndbs; i++)
                for (size_t j = 0; j < rs->dbs[i]->n; j++) {
                        const struct repo_alpm_pkg *pkg = &rs->dbs[i]->pkgs[j];
                        if (strcmp(pkg->name, dep->name) == 0 || !pkg->provides || !*pkg->provides)
                                continue;
                        if (!vercmp_dep_satisfied_by(dep, "", NULL, pkg->provides))
                                continue;
                        if (excluding && plist_has_name(excluding, pkg->name))
                                continue;
                        if (want && strcmp(pkg->name, want) == 0)
                                return pkg;
                        if (!first)
                                first = pkg;
                }
        if (want && first)
                mkm_warn(rs->ctx, "Provider=%s:%s: '%s' does not provide '%s'; using '%s'", dep->name, want, want,
                         dep->name, first->name);
        return first;
}

/* Why no package satisfies dep: the versions available under that name, if any. */
static void explain_unsat(struct resolver *rs, const char *depstr, const struct vercmp_dep *dep) {
        char chain[1024] = "";
        size_t off = 0;
        for (size_t i = 0; i < rs->depth && off < sizeof chain; i++)
                off += (size_t)snprintf(chain + off, sizeof chain - off, "%s -> ", rs->chain[i]);
        char avail[512] = "";
        off = 0;
        for (size_t i = 0; i < rs->ndbs && off < sizeof avail; i++) {
                const struct repo_alpm_pkg *pkg = repo_alpm_find(rs->dbs[i], dep->name);
                if (pkg)
                        off += (size_t)snprintf(avail + off, sizeof avail - off, "%s%s (%s)", off ? ", " : "",
                                                pkg->version, pkg->repo);
        }
        if (avail[0])
                (void)mkm_err_set(rs->reterr, -MKM_E_DEP_UNSAT, "%s%s: only %s available", chain, depstr, avail);
        else
                (void)mkm_err_set(rs->reterr, -MKM_E_DEP_UNSAT, "%s%s: no package provides it", chain, depstr);
}

/* libalpm _alpm_resolvedeps(): pkg joins the list before its dependencies, so cycles end. */
static int resolvedeps(struct resolver *rs, const struct repo_alpm_pkg *pkg) {
        if (plist_has_name(&rs->packages, pkg->name))
                return 0;
        if (rs->depth >= MAX_DEPTH)
                return mkm_err_set(rs->reterr, -MKM_E_DEP_UNSAT, "%s: dependency chain deeper than %d", pkg->name,
                                   MAX_DEPTH);
        int r = plist_add(&rs->packages, pkg);
        if (r < 0)
                return r;
        for (char **d = pkg->depends; d && *d; d++) {
                struct vercmp_dep dep;
                r = vercmp_dep_parse(*d, &dep, rs->reterr);
                if (r < 0)
                        return mkm_err_prefix(rs->reterr, r, "%s (%s)", pkg->name, pkg->repo);
                const struct repo_alpm_pkg *spkg = NULL;
                if (satisfies(pkg, &dep) || find_satisfier(&rs->packages, &dep)) {
                        vercmp_dep_done(&dep);
                        continue;
                }
                spkg = find_satisfier(&rs->targets, &dep);
                if (!spkg)
                        spkg = resolvedep(rs, &dep, &rs->packages);
                rs->chain[rs->depth++] = pkg->name;
                if (!spkg) {
                        explain_unsat(rs, *d, &dep);
                        vercmp_dep_done(&dep);
                        return -MKM_E_DEP_UNSAT;
                }
                mkm_debug(rs->ctx, "pulling dependency %s (needed by %s)", spkg->name, pkg->name);
                vercmp_dep_done(&dep);
                r = resolvedeps(rs, spkg);
                rs->depth--;
                if (r < 0)
                        return r;
        }
        return 0;
}

/* libalpm _alpm_sortbydeps(): post-order DFS over the list, children in list order. */
static int sortbydeps(struct resolver *rs, struct plist *out) {
        size_t n = rs->packages.n;
        const struct repo_alpm_pkg **v = rs->packages.p;
        _cleanup_free_ unsigned char *state = calloc(n ? n : 1, 1);   /* 0 new, 1 processing, 2 done */
        _cleanup_free_ size_t *parent = calloc(n ? n : 1, sizeof(size_t));
        _cleanup_free_ size_t *iter = calloc(n ? n : 1, sizeof(size_t));
        size_t nn = n * n;
        _cleanup_free_ unsigned char *edges = calloc(nn > 0 ? nn : 1, 1);
        if (!state || !parent || !iter || !edges)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                for (char **d = v[i]->depends; d && *d; d++) {
                        struct vercmp_dep dep;
                        if (vercmp_dep_parse(*d, &dep, NULL) < 0)
                                continue;
                        for (size_t j = 0; j < n; j++)
                                if (satisfies(v[j], &dep))
                                        edges[i * n + j] = 1;
                        vercmp_dep_done(&dep);
                }
        const size_t none = (size_t)-1;
        for (size_t root = 0; root < n; root++) {
                if (state[root])
                        continue;
                size_t cur = root;
                parent[cur] = none;
                while (cur != none) {
                        state[cur] = 1;
                        bool down = false;
                        while (iter[cur] < n && !down) {
                                size_t c = iter[cur]++;
                                if (!edges[cur * n + c])
                                        continue;
                                if (state[c] == 0) {
                                        parent[c] = cur;
                                        cur = c;
                                        down = true;
                                } else if (state[c] == 1 && c != cur)
                                        mkm_debug(rs->ctx, "dependency cycle detected: %s will be installed before its %s dependency",
                                                  v[c]->name, v[cur]->name);
                        }
                        if (!down) {
                                int r = plist_add(out, v[cur]);
                                if (r < 0)
                                        return r;
                                state[cur] = 2;
                                cur = parent[cur];
                        }
                }
        }
        return 0;
}

static int add_target(struct resolver *rs, const char *t) {
        struct vercmp_dep dep;
        int r = vercmp_dep_parse(t, &dep, NULL);
        if (r < 0 || dep.desc) {
                if (r >= 0)
                        vercmp_dep_done(&dep);
                return mkm_err_set(rs->reterr, -MKM_E_RECIPE,
                                   "[Bootstrap] Packages=: '%s' is not a package name, group or 'name>=version'", t);
        }
        const struct repo_alpm_pkg *pkg = resolvedep(rs, &dep, NULL);
        if (pkg) {
                vercmp_dep_done(&dep);
                if (!plist_has_name(&rs->targets, pkg->name))
                        return plist_add(&rs->targets, pkg);
                return 0;
        }
        /* Not a package: a group, all of its members (pacman --noconfirm selects all), first db wins. */
        bool found = false;
        if (dep.op == VERCMP_ANY)
                for (size_t i = 0; i < rs->ndbs; i++)
                        for (size_t j = 0; j < rs->dbs[i]->n; j++) {
                                const struct repo_alpm_pkg *p = &rs->dbs[i]->pkgs[j];
                                if (!strv_contains(p->groups, dep.name))
                                        continue;
                                found = true;
                                if (plist_has_name(&rs->targets, p->name))
                                        continue;
                                r = plist_add(&rs->targets, p);
                                if (r < 0) {
                                        vercmp_dep_done(&dep);
                                        return r;
                                }
                        }
        if (!found) {
                explain_unsat(rs, t, &dep);
                if (!strstr(rs->reterr ? rs->reterr->msg : "", "only"))
                        (void)mkm_err_set(rs->reterr, -MKM_E_DEP_UNSAT, "target not found: %s", t);
                vercmp_dep_done(&dep);
                return -MKM_E_DEP_UNSAT;
        }
        vercmp_dep_done(&dep);
        return 0;
}

/* Does a conflict string of a match b (by name or provision)? */
static bool conflicts_with(const struct repo_alpm_pkg *a, const struct repo_alpm_pkg *b, const char **ret_str) {
        for (char **c = a->conflicts; c && *c; c++) {
                struct vercmp_dep dep;
                if (vercmp_dep_parse(*c, &dep, NULL) < 0)
                        continue;
                bool hit = satisfies(b, &dep);
                vercmp_dep_done(&dep);
                if (hit) {
                        *ret_str = *c;
                        return true;
                }
        }
        return false;
}

static bool provides_dep_string(const struct repo_alpm_pkg *p, const char *depstr) {
        struct vercmp_dep dep;
        if (vercmp_dep_parse(depstr, &dep, NULL) < 0)
                return false;
        bool r = satisfies(p, &dep);
        vercmp_dep_done(&dep);
        return r;
}

/* libalpm _alpm_innerconflicts + the sync_prepare rule: if one side provides what the other's
 * conflict names, the other leaves the target list; otherwise the transaction fails. */
static int inner_conflicts(struct resolver *rs, struct plist *l) {
        for (size_t i = 0; i < l->n; i++)
                for (size_t j = i + 1; j < l->n; j++) {
                        const struct repo_alpm_pkg *a = l->p[i], *b = l->p[j];
                        const char *cs = NULL;
                        if (!a || !b || strcmp(a->name, b->name) == 0)
                                continue;
                        if (!conflicts_with(a, b, &cs) && !conflicts_with(b, a, &cs))
                                continue;
                        const struct repo_alpm_pkg *gone;
                        if (provides_dep_string(a, b->name))
                                gone = b;
                        else if (provides_dep_string(b, a->name))
                                gone = a;
                        else
                                return mkm_err_set(rs->reterr, -MKM_E_CONFLICT,
                                                   "'%s' and '%s' are in conflict ('%s'); remove one from Packages=",
                                                   a->name, b->name, cs);
                        mkm_warn(rs->ctx, "removing '%s' from target list because it conflicts with '%s'", gone->name,
                                 gone == a ? b->name : a->name);
                        if (gone == a)
                                l->p[i] = NULL;
                        else
                                l->p[j] = NULL;
                }
        size_t o = 0;
        for (size_t i = 0; i < l->n; i++)
                if (l->p[i])
                        l->p[o++] = l->p[i];
        l->n = o;
        return 0;
}

struct resolve_plan *resolve_plan_free(struct resolve_plan *p) {
        if (p) {
                free(p->items);
                free(p);
        }
        return NULL;
}

int resolve_arch(struct mkm_ctx *ctx, struct repo_alpm_db *const *dbs, size_t ndbs, char *const *targets,
                 char *const *providers, struct resolve_plan **ret, struct mkm_err *reterr) {
        struct resolver rs = { .ctx = ctx, .dbs = dbs, .ndbs = ndbs, .providers = providers, .reterr = reterr };
        struct plist sorted = {};
        int r = 0;

        if (!targets || !*targets) {
                r = mkm_err_set(reterr, -MKM_E_RECIPE, "[Bootstrap] Packages=: nothing to install");
                goto out;
        }
        for (char *const *t = targets; *t; t++) {
                r = add_target(&rs, *t);
                if (r < 0)
                        goto out;
        }
        for (size_t i = 0; i < rs.targets.n; i++) {
                rs.depth = 0;
                r = resolvedeps(&rs, rs.targets.p[i]);
                if (r < 0)
                        goto out;
        }
        r = sortbydeps(&rs, &sorted);
        if (r < 0)
                goto out;
        r = inner_conflicts(&rs, &sorted);
        if (r < 0)
                goto out;

        struct resolve_plan *plan = calloc(1, sizeof *plan);
        if (!plan) {
                r = -ENOMEM;
                goto out;
        }
        plan->items = calloc(sorted.n ? sorted.n : 1, sizeof *plan->items);
        if (!plan->items) {
                free(plan);
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < sorted.n; i++)
                plan->items[i] = (struct resolve_item){ .pkg = sorted.p[i], .explicit = plist_has(&rs.targets, sorted.p[i]) };
        plan->n = sorted.n;
        *ret = plan;
out:
        free(rs.targets.p);
        free(rs.packages.p);
        free(sorted.p);
        return r;
}
