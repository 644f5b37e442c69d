/* SPDX-License-Identifier: MIT */
/* Debian dependency resolution with apt's choices, in mmdebstrap's steps (see resolve.h).
 *
 * The point is to pick, alternative for alternative, what `apt-get install` picks, so that our
 * package set equals mmdebstrap's. apt's choices are not "the first alternative": they depend on
 * what is already marked, on the order apt visits packages and dependencies, and on how it ranks
 * the providers of a virtual name. This file follows apt 2.6 (bookworm) closely; the functions
 * below name the apt function each one stands for (apt-pkg/depcache.cc unless noted):
 *
 *  - a name is one of apt's packages (one architecture: the native one; "all" counts as native).
 *    Its candidate is the highest version in the indexes (no pinning: every index has apt's
 *    default priority). Its number is the order in which apt's cache generator first met the
 *    name: the stanza's own name, then the names in Pre-Depends, Depends, Conflicts, Breaks,
 *    Recommends, then Provides (deb822 index order). apt visits the packages given on its
 *    command line in that order (a std::set of PkgIterator), and it breaks the last tie between
 *    providers with it (the later name wins).
 *  - `apt-get install A B` (TryToInstall, doAutoInstall in apt-private/private-install.cc) first
 *    marks every target without its dependencies and protects it, then calls MarkInstall on each
 *    target in name-number order, which walks dependencies depth-first, Pre-Depends then
 *    Depends, each group in field order, skipping groups already satisfied by a marked or
 *    installed package.
 *  - an unsatisfied group lists its solutions per alternative, in group order: the real package,
 *    then the providers, each alternative's list sorted by CompareProviders (protected first,
 *    installed first, the real package first, Essential, Important, higher Priority, later name);
 *    the first solution whose MarkInstall succeeds wins. MarkInstall of a package whose
 *    dependency no candidate satisfies fails at once; one whose dependencies fail further down
 *    fails too and its candidate is dropped for the rest of the run (MarkInstall_DiscardInstall),
 *    while what it marked on the way stays marked, as in apt.
 *  - "protected" packages (the targets, and along single-solution dependency chains from them,
 *    and every package while its own dependencies are being installed) rank first among
 *    providers and have all their dependencies walked even when satisfied.
 *
 * Where apt would let its problem resolver undo a choice (a Conflicts or Breaks between a new
 * package and a marked one), we refuse the new package as an alternative, and fail naming both
 * when it was asked for or is the only way to satisfy a dependency.
 *
 * mmdebstrap runs apt twice: the essential set first (from an empty dpkg status), then the
 * variant's other packages and Packages= with the essential set installed. What the first step
 * chose is "installed" for the second, which can change its choices; we do the same. Before
 * the first step, usr-is-merged counts as installed, as mmdebstrap's merged-usr hook (and
 * debootstrap) arrange, so "usrmerge | usr-is-merged" does not pull usrmerge and perl. */
#include "resolve.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ctx.h"
#include "../util/cleanup.h"
#include "../util/err.h"
#include "../util/hashmap.h"
#include "index.h"
#include "version.h"

#define MAX_DEPTH 1000u         /* apt gives up at 3000; bookworm's deepest chain is ~30 */
#define MAX_TARGETS 100000u
#define NONE UINT32_MAX
#define MERGED_USR_PKG "usr-is-merged"

/* One of apt's packages: a name of the native architecture. */
struct rpkg {
        const char *name;               /* borrowed from an index */
        const struct deb_pkg *cand;     /* candidate version, NULL for a purely virtual name */
        uint32_t prov_off, n_prov;      /* candidates that Provide this name: rs->provs[off..] */
        uint32_t neg_off, n_neg;        /* candidates whose Conflicts/Breaks name it: rs->negs[] */
        bool installed;                 /* selected by an earlier step (apt: CurrentVer) */
        bool marked;                    /* selected by this step (apt: Mode == ModeInstall) */
        bool protect;                   /* apt's Protected flag */
        bool discarded;                 /* candidate dropped for this step (apt: CandidateVer = 0) */
        bool manual;                    /* a root for the sweep: asked for, or installed by dpkg */
        bool explicit, essential_set, in_plan;
        bool dropped_breaks;
        uint32_t dropped_by;            /* whose Conflicts/Breaks discarded it, or NONE */
        const struct deb_atom *dropped_atom;
        uint32_t node;                  /* position among the plan's nodes */
};

struct prov {
        uint32_t pkg;                   /* the providing name (its candidate provides) */
        const struct deb_atom *atom;    /* its Provides: entry */
};

struct neg {
        uint32_t pkg;                   /* the name whose candidate has the Conflicts/Breaks */
        const struct deb_atom *atom;
        bool breaks;
};

struct frame {
        uint32_t pkg;                   /* installing the dependencies of pkg... */
        const struct deb_group *grp;    /* ...this one right now */
};

struct resolver {
        struct mkm_ctx *ctx;
        const char *arch;
        struct rpkg *pk;
        size_t n, cap;
        struct hashmap *byname;         /* name -> index + 1 */
        struct prov *provs;
        struct neg *negs;
        struct frame stack[MAX_DEPTH + 2];
        unsigned depth;
        int why_code;                   /* last failure recorded, for the error of a target */
        unsigned n_why;
        char why[2048];
};

/* ---- names ---------------------------------------------------------------------------------- */

static uint32_t lookup(const struct resolver *rs, const char *name) {
        void *v = hashmap_get(rs->byname, name);
        return v ? (uint32_t)((uintptr_t)v - 1) : NONE;
}

static int intern(struct resolver *rs, const char *name, uint32_t *ret) {
        uint32_t i = lookup(rs, name);
        int r;

        if (i == NONE) {
                if (rs->n >= UINT32_MAX - 1)
                        return -E2BIG;
                if ((r = mkm_grow((void **)&rs->pk, &rs->cap, rs->n, sizeof *rs->pk, 1024)) < 0)
                        return r;
                i = (uint32_t)rs->n;
                rs->pk[i] = (struct rpkg){ .name = name, .node = NONE, .dropped_by = NONE };
                if ((r = hashmap_put(rs->byname, name, (void *)((uintptr_t)i + 1))) < 0)
                        return r;
                rs->n++;
        }
        if (ret)
                *ret = i;
        return 0;
}

static bool arch_native(const struct resolver *rs, const char *arch) {
        return strcmp(arch, rs->arch) == 0 || strcmp(arch, "all") == 0;
}

enum qual {
        Q_PLAIN,        /* "foo", "foo:native", "foo:<native arch>" */
        Q_ANY,          /* "foo:any": only Multi-Arch: allowed packages satisfy it */
        Q_FOREIGN,      /* another architecture: never, we resolve for one */
};

static enum qual atom_qual(const struct resolver *rs, const struct deb_atom *a) {
        if (!a->arch || strcmp(a->arch, "native") == 0 || arch_native(rs, a->arch))
                return Q_PLAIN;
        if (strcmp(a->arch, "any") == 0)
                return Q_ANY;
        return Q_FOREIGN;
}

/* Whether candidate c of the name a->name satisfies atom a (apt: DepIterator::IsSatisfied). */
static bool real_matches(const struct resolver *rs, const struct deb_pkg *c, const struct deb_atom *a) {
        enum qual q = atom_qual(rs, a);
        if (!c || q == Q_FOREIGN || (q == Q_ANY && c->multi_arch != DEB_MA_ALLOWED))
                return false;
        return debver_satisfies(c->version, a->op, a->version);
}

/* Whether owner, through its Provides: entry pa, satisfies atom a. A versioned relation needs a
 * versioned provide ("Provides: foo (= 1)"); a plain one satisfies only plain relations. */
static bool prov_matches(const struct resolver *rs, const struct deb_pkg *owner, const struct deb_atom *pa,
                         const struct deb_atom *a) {
        enum qual q = atom_qual(rs, a);
        if (q == Q_FOREIGN || (q == Q_ANY && owner->multi_arch != DEB_MA_ALLOWED))
                return false;
        if (a->op == DEB_REL_ANY)
                return true;
        if (pa->op != DEB_REL_EQ || !pa->version)
                return false;
        return debver_satisfies(pa->version, a->op, a->version);
}

static bool sel(const struct rpkg *p) {
        return p->installed || p->marked;
}

/* Satisfied by what is installed or marked (apt: DepInstall of the group). */
static bool atom_sat_install(const struct resolver *rs, const struct deb_atom *a) {
        uint32_t t = lookup(rs, a->name);
        if (t == NONE)
                return false;
        if (sel(&rs->pk[t]) && real_matches(rs, rs->pk[t].cand, a))
                return true;
        for (uint32_t k = 0; k < rs->pk[t].n_prov; k++) {
                const struct prov *v = &rs->provs[rs->pk[t].prov_off + k];
                if (sel(&rs->pk[v->pkg]) && prov_matches(rs, rs->pk[v->pkg].cand, v->atom, a))
                        return true;
        }
        return false;
}

static bool group_sat_install(const struct resolver *rs, const struct deb_group *g) {
        for (uint32_t i = 0; i < g->n; i++)
                if (atom_sat_install(rs, &g->atoms[i]))
                        return true;
        return false;
}

/* Satisfiable by a candidate that was not dropped (apt: DepCVer). */
static bool atom_sat_cand(const struct resolver *rs, const struct deb_atom *a) {
        uint32_t t = lookup(rs, a->name);
        if (t == NONE)
                return false;
        if (!rs->pk[t].discarded && real_matches(rs, rs->pk[t].cand, a))
                return true;
        for (uint32_t k = 0; k < rs->pk[t].n_prov; k++) {
                const struct prov *v = &rs->provs[rs->pk[t].prov_off + k];
                if (!rs->pk[v->pkg].discarded && prov_matches(rs, rs->pk[v->pkg].cand, v->atom, a))
                        return true;
        }
        return false;
}

/* ---- messages ------------------------------------------------------------------------------- */

static const char *relop_str(enum deb_relop op) {
        switch (op) {
        case DEB_REL_LT: return "<<";
        case DEB_REL_LE: return "<=";
        case DEB_REL_EQ: return "=";
        case DEB_REL_GE: return ">=";
        case DEB_REL_GT: return ">>";
        default: return "";
        }
}

/* Append to buf (always NUL-terminated, silently truncated). */
static void bprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void bprintf(char *buf, size_t size, const char *fmt, ...) {
        size_t len = strnlen(buf, size);
        va_list ap;

        if (len + 1 >= size)
                return;
        va_start(ap, fmt);
        (void)vsnprintf(buf + len, size - len, fmt, ap);
        va_end(ap);
}

static void fmt_atom(char *buf, size_t size, const struct deb_atom *a) {
        bprintf(buf, size, "%s%s%s", a->name, a->arch ? ":" : "", a->arch ? a->arch : "");
        if (a->op != DEB_REL_ANY)
                bprintf(buf, size, " (%s %s)", relop_str(a->op), a->version ? a->version : "");
}

static void fmt_group(char *buf, size_t size, const struct deb_group *g) {
        for (uint32_t i = 0; i < g->n; i++) {
                if (i > 0)
                        bprintf(buf, size, " | ");
                fmt_atom(buf, size, &g->atoms[i]);
        }
}

/* "target -> group -> group [chosen]" for the dependency being worked on, then last, a package
 * that was being tried for the innermost group (NONE if the failure is in that group). */
static void fmt_chain(const struct resolver *rs, uint32_t last, char *buf, size_t size) {
        buf[0] = 0;
        if (rs->depth == 0) {
                if (last != NONE)
                        bprintf(buf, size, "%s", rs->pk[last].name);
                return;
        }
        bprintf(buf, size, "%s", rs->pk[rs->stack[0].pkg].name);
        for (unsigned i = 0; i < rs->depth; i++) {
                const struct deb_group *g = rs->stack[i].grp;
                uint32_t next = i + 1 < rs->depth ? rs->stack[i + 1].pkg : last;
                bprintf(buf, size, " -> ");
                fmt_group(buf, size, g);
                if (next != NONE && !(g->n == 1 && strcmp(g->atoms[0].name, rs->pk[next].name) == 0))
                        bprintf(buf, size, " [%s]", rs->pk[next].name);
        }
}

static void note(struct resolver *rs, int code, const char *chain, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void note(struct resolver *rs, int code, const char *chain, const char *fmt, ...) {
        char what[1024];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        rs->why[0] = 0;
        if (chain[0])
                bprintf(rs->why, sizeof rs->why, "%s: ", chain);
        bprintf(rs->why, sizeof rs->why, "%s", what);
        rs->why_code = code;
        rs->n_why++;
}

/* Why no candidate satisfies atom a: "only 3.0.8-1 in the indexes", ...; true when the reason
 * is a Conflicts/Breaks of a selected package. */
static bool explain_atom(const struct resolver *rs, const struct deb_atom *a, char *buf, size_t size) {
        uint32_t t = lookup(rs, a->name);
        enum qual q = atom_qual(rs, a);

        if (q == Q_FOREIGN) {
                bprintf(buf, size, "architecture %s is not %s", a->arch, rs->arch);
                return false;
        }
        if (t == NONE || (!rs->pk[t].cand && rs->pk[t].n_prov == 0)) {
                bprintf(buf, size, "no package '%s' in the indexes", a->name);
                return false;
        }
        const struct rpkg *p = &rs->pk[t];
        /* A virtual name whose providers were all ruled out by a conflict: name the first. */
        for (uint32_t k = 0; !p->cand && k < p->n_prov; k++) {
                const struct prov *v = &rs->provs[p->prov_off + k];
                if (rs->pk[v->pkg].discarded && rs->pk[v->pkg].dropped_by != NONE &&
                    prov_matches(rs, rs->pk[v->pkg].cand, v->atom, a)) {
                        p = &rs->pk[v->pkg];
                        break;
                }
        }
        if (p->cand && p->discarded && p->dropped_by != NONE) {
                char atom[512] = "";
                fmt_atom(atom, sizeof atom, p->dropped_atom);
                bprintf(buf, size, "%s %s %s (%s: %s)", rs->pk[p->dropped_by].name,
                        p->dropped_breaks ? "breaks" : "conflicts with", p->name,
                        p->dropped_breaks ? "Breaks" : "Conflicts", atom);
                return true;
        }
        if (p->cand && p->discarded) {
                bprintf(buf, size, "%s %s cannot be installed", p->name, p->cand->version);
                return false;
        }
        if (p->cand && q == Q_ANY && p->cand->multi_arch != DEB_MA_ALLOWED) {
                bprintf(buf, size, "%s %s is not Multi-Arch: allowed", p->name, p->cand->version);
                return false;
        }
        if (p->cand) {
                bprintf(buf, size, "only %s in the indexes", p->cand->version);
                if (p->n_prov > 0)
                        bprintf(buf, size, " (and %u providers without a matching version)", p->n_prov);
                return false;
        }
        bprintf(buf, size, "a virtual package; no provider has a matching version (");
        for (uint32_t k = 0; k < p->n_prov && k < 8; k++) {
                const struct prov *v = &rs->provs[p->prov_off + k];
                bprintf(buf, size, "%s%s", k ? ", " : "", rs->pk[v->pkg].name);
                if (v->atom->op == DEB_REL_EQ && v->atom->version)
                        bprintf(buf, size, " provides %s", v->atom->version);
                else
                        bprintf(buf, size, " provides it unversioned");
        }
        bprintf(buf, size, "%s)", p->n_prov > 8 ? ", ..." : "");
        return false;
}

static __attribute__((noinline)) void note_unsat(struct resolver *rs, uint32_t last, const struct deb_group *g) {
        char chain[1024], why[1024] = "";

        fmt_chain(rs, last, chain, sizeof chain);
        bprintf(chain, sizeof chain, " -> ");
        fmt_group(chain, sizeof chain, g);
        bool all_conflicts = true;
        for (uint32_t i = 0; i < g->n; i++) {
                if (g->n > 1)
                        bprintf(why, sizeof why, "%s%s: ", i ? "; " : "", g->atoms[i].name);
                all_conflicts &= explain_atom(rs, &g->atoms[i], why, sizeof why);
        }
        note(rs, all_conflicts ? -MKM_E_CONFLICT : -MKM_E_DEP_UNSAT, chain, "%s", why);
}

/* ---- apt's MarkInstall ---------------------------------------------------------------------- */

static const struct deb_rel *positive_rels(const struct deb_pkg *c, size_t i) {
        return i == 0 ? &c->pre_depends : i == 1 ? &c->depends : NULL;
}

/* The ranking of apt's CompareProviders: < 0 when a comes first. target: the real package the
 * atom names (NONE for a "foo:any" atom, where apt has no real package to prefer). */
static int apt_priority(enum deb_priority p) {
        /* pkgCache::State::VerPriority: required 1 .. extra 5; an unknown word is extra */
        return p <= DEB_PRIO_EXTRA ? (int)p + 1 : 5;
}

static int compare_providers(const struct resolver *rs, uint32_t a, uint32_t b, uint32_t target) {
        const struct rpkg *A = &rs->pk[a], *B = &rs->pk[b];

        if (A->protect != B->protect)
                return A->protect ? -1 : 1;
        bool ia = A->cand->multi_arch == DEB_MA_SAME && A->installed;
        bool ib = B->cand->multi_arch == DEB_MA_SAME && B->installed;
        if (ia != ib)
                return ia ? -1 : 1;
        if (A->installed != B->installed)
                return A->installed ? -1 : 1;
        if (target != NONE && (a == target) != (b == target))
                return a == target ? -1 : 1;
        if (A->cand->essential != B->cand->essential)
                return A->cand->essential ? -1 : 1;
        if (A->cand->important != B->cand->important)
                return A->cand->important ? -1 : 1;
        if (apt_priority(A->cand->priority) != apt_priority(B->cand->priority))
                return apt_priority(A->cand->priority) < apt_priority(B->cand->priority) ? -1 : 1;
        return a > b ? -1 : a < b ? 1 : 0;
}

struct idlist {
        uint32_t *v;
        size_t n, cap;
};

static int idlist_add_unique(struct idlist *l, uint32_t x) {
        for (size_t i = 0; i < l->n; i++)
                if (l->v[i] == x)
                        return 0;
        if (mkm_grow((void **)&l->v, &l->cap, l->n, sizeof *l->v, 8) < 0)
                return -ENOMEM;
        l->v[l->n++] = x;
        return 0;
}

/* apt's getAllPossibleSolutions(CANDIDATE, sorted): per alternative, the real package and the
 * providers whose candidate satisfies it, sorted by compare_providers, in group order. */
static int solutions(const struct resolver *rs, const struct deb_group *g, struct idlist *out) {
        int r;

        out->n = 0;
        for (uint32_t i = 0; i < g->n; i++) {
                const struct deb_atom *a = &g->atoms[i];
                uint32_t t = lookup(rs, a->name);

                if (t == NONE)
                        continue;
                /* This alternative's list, ranked, then appended. */
                struct idlist alt = {};
                if (!rs->pk[t].discarded && real_matches(rs, rs->pk[t].cand, a))
                        if ((r = idlist_add_unique(&alt, t)) < 0)
                                goto fail;
                for (uint32_t k = 0; k < rs->pk[t].n_prov; k++) {
                        const struct prov *v = &rs->provs[rs->pk[t].prov_off + k];
                        if (!rs->pk[v->pkg].discarded && prov_matches(rs, rs->pk[v->pkg].cand, v->atom, a))
                                if ((r = idlist_add_unique(&alt, v->pkg)) < 0)
                                        goto fail;
                }
                uint32_t target = atom_qual(rs, a) == Q_ANY ? NONE : t;
                for (size_t x = 1; x < alt.n; x++)      /* insertion sort: lists are short */
                        for (size_t y = x; y > 0 && compare_providers(rs, alt.v[y], alt.v[y - 1], target) < 0; y--) {
                                uint32_t tmp = alt.v[y];
                                alt.v[y] = alt.v[y - 1];
                                alt.v[y - 1] = tmp;
                        }
                for (size_t x = 0; x < alt.n; x++) {
                        const struct rpkg *p = &rs->pk[alt.v[x]];
                        if (p->protect && !sel(p))      /* protected and kept out */
                                continue;
                        if ((r = idlist_add_unique(out, alt.v[x])) < 0)
                                goto fail;
                }
                free(alt.v);
                continue;
        fail:
                free(alt.v);
                return r;
        }
        return 0;
}

/* Whether exactly one package, selected or with a candidate, satisfies g (apt:
 * getAllPossibleSolutions with CANDANDINST has size 1); *ret_one is that package. */
static bool one_solution(const struct resolver *rs, const struct deb_group *g, uint32_t *ret_one) {
        uint32_t first = NONE;

        for (uint32_t i = 0; i < g->n; i++) {
                const struct deb_atom *a = &g->atoms[i];
                uint32_t t = lookup(rs, a->name);
                if (t == NONE)
                        continue;
                for (uint32_t k = 0; k <= rs->pk[t].n_prov; k++) {
                        uint32_t x = k == 0 ? t : rs->provs[rs->pk[t].prov_off + k - 1].pkg;
                        const struct rpkg *p = &rs->pk[x];
                        bool ok = k == 0 ? real_matches(rs, p->cand, a)
                                         : prov_matches(rs, p->cand, rs->provs[rs->pk[t].prov_off + k - 1].atom, a);
                        if (!ok || !(sel(p) || !p->discarded) || (p->protect && !sel(p)))
                                continue;
                        if (first != NONE && first != x)
                                return false;
                        first = x;
                }
        }
        *ret_one = first;
        return first != NONE;
}

/* apt's IsInstallOkDependenciesSatisfiableByCandidates: every Pre-Depends/Depends group has a
 * marked, installed or candidate solution. */
static __attribute__((noinline)) bool deps_satisfiable(struct resolver *rs, uint32_t pi) {
        const struct deb_pkg *c = rs->pk[pi].cand;

        for (size_t f = 0; f < 2; f++) {
                const struct deb_rel *rel = positive_rels(c, f);
                for (uint32_t gi = 0; gi < rel->n; gi++) {
                        const struct deb_group *g = &rel->groups[gi];
                        bool ok = false;
                        for (uint32_t i = 0; i < g->n && !ok; i++)
                                ok = atom_sat_install(rs, &g->atoms[i]) || atom_sat_cand(rs, &g->atoms[i]);
                        if (!ok) {
                                note_unsat(rs, pi, g);
                                return false;
                        }
                }
        }
        return true;
}

/* Whether a Conflicts/Breaks atom a of owner hits the selected package t or a selected provider
 * of its name; *ret_hit is the one hit. */
static bool neg_hits_selected(const struct resolver *rs, uint32_t owner, const struct deb_atom *a, uint32_t *ret_hit) {
        uint32_t t = lookup(rs, a->name);
        if (t == NONE)
                return false;
        if (t != owner && sel(&rs->pk[t]) && real_matches(rs, rs->pk[t].cand, a)) {
                *ret_hit = t;
                return true;
        }
        for (uint32_t k = 0; k < rs->pk[t].n_prov; k++) {
                const struct prov *v = &rs->provs[rs->pk[t].prov_off + k];
                if (v->pkg != owner && sel(&rs->pk[v->pkg]) && prov_matches(rs, rs->pk[v->pkg].cand, v->atom, a)) {
                        *ret_hit = v->pkg;
                        return true;
                }
        }
        return false;
}

/* Whether the Conflicts/Breaks atom a (of another package) hits candidate pi, by its own name or
 * by one of its Provides. */
static bool neg_hits_pkg(const struct resolver *rs, const struct deb_atom *a, uint32_t pi) {
        const struct deb_pkg *c = rs->pk[pi].cand;
        if (strcmp(a->name, rs->pk[pi].name) == 0 && real_matches(rs, c, a))
                return true;
        for (uint32_t gi = 0; gi < c->provides.n; gi++)
                for (uint32_t i = 0; i < c->provides.groups[gi].n; i++) {
                        const struct deb_atom *pa = &c->provides.groups[gi].atoms[i];
                        if (strcmp(pa->name, a->name) == 0 && atom_qual(rs, pa) == Q_PLAIN && prov_matches(rs, c, pa, a))
                                return true;
                }
        return false;
}

static __attribute__((noinline)) void note_conflict(struct resolver *rs, uint32_t pi, uint32_t owner, uint32_t other, const struct deb_atom *a,
                          bool breaks) {
        char chain[1024], atom[512] = "";

        fmt_chain(rs, pi, chain, sizeof chain);
        fmt_atom(atom, sizeof atom, a);
        note(rs, -MKM_E_CONFLICT, chain, "%s %s %s (%s: %s)", rs->pk[owner].name,
             breaks ? "breaks" : "conflicts with", rs->pk[other].name, breaks ? "Breaks" : "Conflicts", atom);
}

/* A protected package's Conflicts/Breaks atom a hits candidate t that is not selected: apt
 * discards that candidate and protects the decision. */
static void drop(struct resolver *rs, uint32_t t, uint32_t by, const struct deb_atom *a, bool breaks) {
        struct rpkg *p = &rs->pk[t];
        if (!p->discarded) {
                p->dropped_by = by;
                p->dropped_atom = a;
                p->dropped_breaks = breaks;
        }
        p->discarded = p->protect = true;
}

/* What apt's MarkInstall_RemoveConflictsIfNotUpgradeable does to a candidate y that pi's
 * Conflicts/Breaks atom a hits. false: pi cannot be installed. */
static bool conflict_hit(struct resolver *rs, uint32_t pi, uint32_t y, const struct deb_atom *a, bool breaks,
                         bool propagate) {
        struct rpkg *Y = &rs->pk[y];

        if (Y->installed || (Y->marked && Y->protect)) {
                /* apt would try to remove an installed one (and fail for what is protected or
                 * Essential): we refuse rather than take back an earlier step's choice. */
                note_conflict(rs, pi, pi, y, a, breaks);
                return false;
        }
        if (Y->marked)
                Y->marked = false;      /* MarkKeep: an earlier, unprotected choice is undone */
        if (propagate)
                drop(rs, y, pi, a, breaks);
        return true;
}

/* apt's MarkInstall_RemoveConflictsIfNotUpgradeable, without removing installed packages: pi's
 * Conflicts/Breaks against candidates (a marked, unprotected one is unmarked; when pi is
 * protected, the candidates it hits are dropped for the rest of the step), then, which apt
 * leaves to its problem resolver, selected packages' Conflicts/Breaks against pi: refused. */
static bool check_conflicts(struct resolver *rs, uint32_t pi, bool propagate) {
        const struct deb_pkg *c = rs->pk[pi].cand;

        for (size_t f = 0; f < 2; f++) {
                const struct deb_rel *rel = f == 0 ? &c->conflicts : &c->breaks;
                for (uint32_t gi = 0; gi < rel->n; gi++)
                        for (uint32_t i = 0; i < rel->groups[gi].n; i++) {
                                const struct deb_atom *a = &rel->groups[gi].atoms[i];
                                uint32_t t = lookup(rs, a->name);
                                if (t == NONE)
                                        continue;
                                if (t != pi && !(rs->pk[t].discarded && !sel(&rs->pk[t])) &&
                                    real_matches(rs, rs->pk[t].cand, a) && !conflict_hit(rs, pi, t, a, f == 1, propagate))
                                        return false;
                                for (uint32_t k = 0; k < rs->pk[t].n_prov; k++) {
                                        const struct prov *v = &rs->provs[rs->pk[t].prov_off + k];
                                        const struct rpkg *q = &rs->pk[v->pkg];
                                        if (v->pkg != pi && !(q->discarded && !sel(q)) &&
                                            prov_matches(rs, q->cand, v->atom, a) &&
                                            !conflict_hit(rs, pi, v->pkg, a, f == 1, propagate))
                                                return false;
                                }
                        }
        }

        /* Selected packages whose Conflicts/Breaks name pi or something pi provides. */
        for (uint32_t gi = 0; gi <= c->provides.n; gi++) {
                uint32_t n_atoms = gi < c->provides.n ? c->provides.groups[gi].n : 1;
                for (uint32_t i = 0; i < n_atoms; i++) {
                        uint32_t t = gi < c->provides.n ? lookup(rs, c->provides.groups[gi].atoms[i].name) : pi;
                        if (t == NONE)
                                continue;
                        for (uint32_t k = 0; k < rs->pk[t].n_neg; k++) {
                                const struct neg *ng = &rs->negs[rs->pk[t].neg_off + k];
                                if (ng->pkg == pi || !sel(&rs->pk[ng->pkg]) || !neg_hits_pkg(rs, ng->atom, pi))
                                        continue;
                                note_conflict(rs, pi, ng->pkg, pi, ng->atom, ng->breaks);
                                return false;
                        }
                }
        }
        return true;
}

/* apt's InstBroken for a selected package: a dependency group unsatisfied or a conflict. */
static bool inst_broken(const struct resolver *rs, uint32_t pi) {
        const struct deb_pkg *c = rs->pk[pi].cand;
        uint32_t hit;

        if (!sel(&rs->pk[pi]))
                return false;
        for (size_t f = 0; f < 2; f++) {
                const struct deb_rel *rel = positive_rels(c, f);
                for (uint32_t gi = 0; gi < rel->n; gi++)
                        if (!group_sat_install(rs, &rel->groups[gi]))
                                return true;
        }
        for (size_t f = 0; f < 2; f++) {
                const struct deb_rel *rel = f == 0 ? &c->conflicts : &c->breaks;
                for (uint32_t gi = 0; gi < rel->n; gi++)
                        for (uint32_t i = 0; i < rel->groups[gi].n; i++)
                                if (neg_hits_selected(rs, pi, &rel->groups[gi].atoms[i], &hit))
                                        return true;
        }
        return false;
}

static bool mark_install(struct resolver *rs, uint32_t pi, bool autoinst, bool from_user);

/* Out of line: mark_install recurses once per level and must keep its frame small. */
static __attribute__((noinline)) void note_too_deep(struct resolver *rs, uint32_t pi) {
        char chain[1024];
        fmt_chain(rs, pi, chain, sizeof chain);
        note(rs, -MKM_E_DEP_UNSAT, chain, "dependency chain deeper than %u", MAX_DEPTH);
}

/* One group of MarkInstall_InstallDependencies. */
static bool install_group(struct resolver *rs, const struct deb_group *g, bool propagate) {
        _cleanup_free_ uint32_t *mem = NULL;
        struct idlist sol = {};
        unsigned n_why = rs->n_why;
        uint32_t one;
        bool sat = group_sat_install(rs, g);

        if (sat && !propagate)
                return true;
        if (sat) {
                /* Protect the only way this is satisfied, and walk its dependencies too. */
                if (!one_solution(rs, g, &one) || rs->pk[one].protect)
                        return true;
                rs->pk[one].protect = true;
                return mark_install(rs, one, true, false);
        }

        if (solutions(rs, g, &sol) < 0) {
                free(sol.v);
                note(rs, -ENOMEM, "", "out of memory");
                return false;
        }
        mem = sol.v;
        if (sol.n == 0) {
                note_unsat(rs, NONE, g);
                return false;
        }
        for (size_t i = 0; i < sol.n; i++) {
                uint32_t s = sol.v[i];
                if (rs->pk[s].discarded)        /* dropped by an earlier attempt */
                        continue;
                if (propagate && sol.n == 1) {
                        if (!mark_install(rs, s, false, false))
                                continue;
                        rs->pk[s].protect = true;
                }
                if (mark_install(rs, s, true, false))
                        return true;
        }
        if (rs->n_why == n_why)
                note_unsat(rs, NONE, g);
        return false;
}

/* apt's pkgDepCache::MarkInstall(Pkg, AutoInst, Depth, FromUser). */
static bool mark_install(struct resolver *rs, uint32_t pi, bool autoinst, bool from_user) {
        struct rpkg *p = &rs->pk[pi];

        if (rs->depth >= MAX_DEPTH) {
                note_too_deep(rs, pi);
                return false;
        }
        if (p->protect && p->installed && !p->marked)
                ;       /* installed and protected: here to protect its dependencies */
        else if (!from_user && p->protect && !p->marked)
                return false;   /* IsModeChangeOk: kept out by a protected decision */
        if (!p->cand || p->discarded)
                return false;
        if (!p->protect && !inst_broken(rs, pi) && sel(p))
                return true;
        if (autoinst && !p->installed && !deps_satisfiable(rs, pi)) {
                if (!p->protect) {
                        p->discarded = true;
                        p->marked = false;
                }
                return false;
        }
        if (from_user && !p->installed)
                p->marked = true;
        if (!autoinst) {
                if (!p->installed)
                        p->marked = true;
                return true;
        }

        bool propagate = p->protect;
        bool fail_early = !p->protect && !from_user;
        bool failed = false;

        if (!check_conflicts(rs, pi, propagate)) {
                if (fail_early)
                        return false;
                failed = true;
        }
        if (!p->installed)
                p->marked = true;

        p->protect = true;      /* ScopedProtected, while its dependencies are installed */
        for (size_t f = 0; f < 2; f++) {
                const struct deb_rel *rel = positive_rels(p->cand, f);
                for (uint32_t gi = 0; gi < rel->n; gi++) {
                        rs->stack[rs->depth++] = (struct frame){ .pkg = pi, .grp = &rel->groups[gi] };
                        bool ok = install_group(rs, &rel->groups[gi], propagate);
                        rs->depth--;
                        if (!ok) {
                                failed = true;
                                if (!propagate && !from_user)
                                        goto done;
                        }
                }
        }
done:
        p = &rs->pk[pi];
        if (!propagate)
                p->protect = false;
        if (failed && fail_early) {
                /* MarkInstall_DiscardInstall: unmarked, and its candidate is gone. */
                if (!p->installed) {
                        p->marked = false;
                        p->discarded = true;
                }
                return false;
        }
        return !failed;
}

/* ---- the universe --------------------------------------------------------------------------- */

static int intern_rel(struct resolver *rs, const struct deb_rel *rel) {
        int r;
        for (uint32_t gi = 0; gi < rel->n; gi++)
                for (uint32_t i = 0; i < rel->groups[gi].n; i++)
                        if (atom_qual(rs, &rel->groups[gi].atoms[i]) == Q_PLAIN)
                                if ((r = intern(rs, rel->groups[gi].atoms[i].name, NULL)) < 0)
                                        return r;
        return 0;
}

/* Names in apt's cache-generator order, and each name's candidate. */
static int build_names(struct resolver *rs, struct deb_index *const *indexes, size_t n) {
        int r;

        for (size_t x = 0; x < n; x++) {
                const struct deb_index *ix = indexes[x];
                for (size_t j = 0; j < ix->n; j++) {
                        const struct deb_pkg *p = &ix->pkgs[j];
                        uint32_t i;
                        if (!arch_native(rs, p->arch))
                                continue;
                        if ((r = intern(rs, p->name, &i)) < 0)
                                return r;
                        if (!rs->pk[i].cand || debver_cmp(p->version, rs->pk[i].cand->version) > 0)
                                rs->pk[i].cand = p;
                        if ((r = intern_rel(rs, &p->pre_depends)) < 0 || (r = intern_rel(rs, &p->depends)) < 0 ||
                            (r = intern_rel(rs, &p->conflicts)) < 0 || (r = intern_rel(rs, &p->breaks)) < 0 ||
                            (r = intern_rel(rs, &p->recommends)) < 0 || (r = intern_rel(rs, &p->provides)) < 0)
                                return r;
                }
        }
        return 0;
}

/* Provides and Conflicts/Breaks of the candidates, indexed by the name they mention. */
static int build_links(struct resolver *rs) {
        size_t n_provs = 0, n_negs = 0;

        for (size_t i = 0; i < rs->n; i++)
                rs->pk[i].n_prov = rs->pk[i].n_neg = 0;
        for (int pass = 0; pass < 2; pass++) {
                for (size_t i = 0; i < rs->n; i++) {
                        const struct deb_pkg *c = rs->pk[i].cand;
                        if (!c)
                                continue;
                        for (uint32_t gi = 0; gi < c->provides.n; gi++)
                                for (uint32_t k = 0; k < c->provides.groups[gi].n; k++) {
                                        const struct deb_atom *a = &c->provides.groups[gi].atoms[k];
                                        uint32_t t = atom_qual(rs, a) == Q_PLAIN ? lookup(rs, a->name) : NONE;
                                        /* apt adds no self-referencing provides */
                                        if (t == NONE || (t == i && (!a->version || strcmp(a->version, c->version) == 0)))
                                                continue;
                                        if (pass == 1)
                                                rs->provs[rs->pk[t].prov_off + rs->pk[t].n_prov] =
                                                        (struct prov){ .pkg = (uint32_t)i, .atom = a };
                                        rs->pk[t].n_prov++;
                                }
                        for (size_t f = 0; f < 2; f++) {
                                const struct deb_rel *rel = f == 0 ? &c->conflicts : &c->breaks;
                                for (uint32_t gi = 0; gi < rel->n; gi++)
                                        for (uint32_t k = 0; k < rel->groups[gi].n; k++) {
                                                const struct deb_atom *a = &rel->groups[gi].atoms[k];
                                                uint32_t t = lookup(rs, a->name);
                                                if (t == NONE)
                                                        continue;
                                                if (pass == 1)
                                                        rs->negs[rs->pk[t].neg_off + rs->pk[t].n_neg] =
                                                                (struct neg){ .pkg = (uint32_t)i, .atom = a, .breaks = f == 1 };
                                                rs->pk[t].n_neg++;
                                        }
                        }
                }
                if (pass == 0) {
                        for (size_t i = 0; i < rs->n; i++) {
                                if (n_provs + rs->pk[i].n_prov > UINT32_MAX || n_negs + rs->pk[i].n_neg > UINT32_MAX)
                                        return -E2BIG;
                                rs->pk[i].prov_off = (uint32_t)n_provs;
                                rs->pk[i].neg_off = (uint32_t)n_negs;
                                n_provs += rs->pk[i].n_prov;
                                n_negs += rs->pk[i].n_neg;
                                rs->pk[i].n_prov = rs->pk[i].n_neg = 0;
                        }
                        free(rs->provs);
                        free(rs->negs);
                        rs->provs = mkm_new(struct prov, n_provs);
                        rs->negs = mkm_new(struct neg, n_negs);
                        if (!rs->provs || !rs->negs)
                                return -ENOMEM;
                }
        }
        return 0;
}

/* ---- targets -------------------------------------------------------------------------------- */

/* "name", "name=version", "name:arch": the name's index (a virtual name with one provider
 * becomes that provider, as apt-get says "Note, selecting"). A version pins the candidate. */
static int resolve_target(struct resolver *rs, struct deb_index *const *indexes, size_t n, const char *target,
                          bool *pinned, uint32_t *ret, struct mkm_err *reterr) {
        const char *eq = strchr(target, '='), *colon;
        size_t len = eq ? (size_t)(eq - target) : strlen(target);
        char name[256];

        colon = memchr(target, ':', len);
        size_t name_len = colon ? (size_t)(colon - target) : len;
        if (!deb_name_valid(target, name_len))
                return mkm_err_set(reterr, -MKM_E_RECIPE, "'%.300s' is not a valid package name", target);
        memcpy(name, target, name_len);
        name[name_len] = 0;
        if (colon) {
                char arch[64];
                size_t alen = len - name_len - 1;
                if (alen == 0 || alen >= sizeof arch)
                        return mkm_err_set(reterr, -MKM_E_RECIPE, "'%.300s': bad architecture", target);
                memcpy(arch, colon + 1, alen);
                arch[alen] = 0;
                if (strcmp(arch, rs->arch) != 0 && strcmp(arch, "native") != 0)
                        return mkm_err_set(reterr, -MKM_E_RECIPE, "'%.300s': only %s packages can be installed",
                                           target, rs->arch);
        }
        const char *why;
        if (eq && debver_check(eq + 1, &why) < 0)
                return mkm_err_set(reterr, -MKM_E_RECIPE, "'%.300s': bad version: %s", target, why);

        uint32_t t = lookup(rs, name);
        if (t != NONE && eq) {
                const struct deb_pkg *found = NULL;
                for (size_t x = 0; x < n && !found; x++)
                        for (size_t j = 0; j < indexes[x]->n && !found; j++) {
                                const struct deb_pkg *p = &indexes[x]->pkgs[j];
                                if (strcmp(p->name, name) == 0 && arch_native(rs, p->arch) &&
                                    debver_cmp(p->version, eq + 1) == 0)
                                        found = p;
                        }
                if (!found)
                        return mkm_err_set(reterr, -MKM_E_RECIPE, "'%.300s': no version %.100s of %s in the indexes%s%s",
                                           target, eq + 1, name, rs->pk[t].cand ? "; candidate: " : "",
                                           rs->pk[t].cand ? rs->pk[t].cand->version : "");
                if (rs->pk[t].cand != found) {
                        rs->pk[t].cand = found;
                        *pinned = true;
                }
                *ret = t;
                return 0;
        }
        if (t == NONE || (!rs->pk[t].cand && rs->pk[t].n_prov == 0) || (eq && !rs->pk[t].cand))
                return mkm_err_set(reterr, -MKM_E_RECIPE, "'%.300s' is not a package in the indexes", target);
        if (rs->pk[t].cand) {
                *ret = t;
                return 0;
        }
        /* A virtual name: apt installs the provider if there is only one. */
        uint32_t only = NONE;
        size_t count = 0;
        for (uint32_t k = 0; k < rs->pk[t].n_prov; k++) {
                uint32_t q = rs->provs[rs->pk[t].prov_off + k].pkg;
                if (q != only)
                        count++, only = q;
        }
        if (count == 1) {
                *ret = only;
                return 0;
        }
        char list[1024] = "";
        for (uint32_t k = 0; k < rs->pk[t].n_prov && k < 20; k++)
                bprintf(list, sizeof list, "%s%s", k ? ", " : "", rs->pk[rs->provs[rs->pk[t].prov_off + k].pkg].name);
        return mkm_err_set(reterr, -MKM_E_RECIPE, "'%.300s' is a virtual package provided by %s%s: name one of them",
                           target, list, rs->pk[t].n_prov > 20 ? ", ..." : "");
}

/* ---- steps ---------------------------------------------------------------------------------- */

/* apt's MarkAndSweep at the end of `apt-get install` (DoAutomaticRemove): a new package that
 * nothing leads to is not installed after all. Roots are the manual packages (asked for, or
 * installed by an earlier step: mmdebstrap installs those with dpkg, so apt knows no "auto"
 * mark for them), Essential and Important ones, and installed ones of Priority: required; the
 * way is Pre-Depends, Depends and Recommends to every selected alternative and provider. What
 * this unmarks was left over from an alternative that failed or a choice a Conflicts undid.
 * (apt follows Suggests too; the index keeps no Suggests.) */
static int sweep(struct resolver *rs) {
        _cleanup_free_ bool *reached = mkm_new0(bool, rs->n);
        struct idlist todo = {};
        int r = 0;

        if (!reached)
                return -ENOMEM;
        for (uint32_t i = 0; i < rs->n && r >= 0; i++) {
                const struct rpkg *p = &rs->pk[i];
                if (sel(p) && (p->manual || p->cand->essential || p->cand->important ||
                               (p->installed && p->cand->priority == DEB_PRIO_REQUIRED))) {
                        reached[i] = true;
                        r = idlist_add_unique(&todo, i);
                }
        }
        while (r >= 0 && todo.n > 0) {
                const struct deb_pkg *c = rs->pk[todo.v[--todo.n]].cand;
                for (size_t f = 0; f < 3 && r >= 0; f++) {
                        const struct deb_rel *rel = f < 2 ? positive_rels(c, f) : &c->recommends;
                        for (uint32_t gi = 0; gi < rel->n && r >= 0; gi++)
                                for (uint32_t i = 0; i < rel->groups[gi].n && r >= 0; i++) {
                                        const struct deb_atom *a = &rel->groups[gi].atoms[i];
                                        uint32_t t = lookup(rs, a->name);
                                        if (t == NONE)
                                                continue;
                                        if (!reached[t] && sel(&rs->pk[t]) && real_matches(rs, rs->pk[t].cand, a)) {
                                                reached[t] = true;
                                                if (mkm_grow((void **)&todo.v, &todo.cap, todo.n, sizeof *todo.v, 64) < 0)
                                                        r = -ENOMEM;
                                                else
                                                        todo.v[todo.n++] = t;
                                        }
                                        for (uint32_t k = 0; k < rs->pk[t].n_prov && r >= 0; k++) {
                                                const struct prov *v = &rs->provs[rs->pk[t].prov_off + k];
                                                if (reached[v->pkg] || !sel(&rs->pk[v->pkg]) ||
                                                    !prov_matches(rs, rs->pk[v->pkg].cand, v->atom, a))
                                                        continue;
                                                reached[v->pkg] = true;
                                                if (mkm_grow((void **)&todo.v, &todo.cap, todo.n, sizeof *todo.v, 64) < 0)
                                                        r = -ENOMEM;
                                                else
                                                        todo.v[todo.n++] = v->pkg;
                                        }
                                }
                }
        }
        free(todo.v);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < rs->n; i++)
                if (rs->pk[i].marked && !reached[i])
                        rs->pk[i].marked = false;
        return 0;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
        return x < y ? -1 : x > y;
}

/* One `apt-get install TARGETS`: marks, then what is installed afterwards becomes "installed". */
static int run_step(struct resolver *rs, uint32_t *targets, size_t n, bool essential_step,
                    struct mkm_err *reterr) {
        for (size_t i = 0; i < n; i++) {
                struct rpkg *p = &rs->pk[targets[i]];
                p->protect = p->explicit = p->manual = true;
                if (!p->installed)
                        p->marked = true;
        }
        if (n > 1)
                qsort(targets, n, sizeof *targets, cmp_u32);
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && targets[i] == targets[i - 1])
                        continue;
                rs->depth = 0;
                rs->why[0] = 0;
                rs->why_code = 0;
                if (!mark_install(rs, targets[i], true, true)) {
                        if (rs->why_code == -ENOMEM)
                                return mkm_err_set(reterr, -ENOMEM, "out of memory");
                        if (!rs->why[0])
                                return mkm_err_set(reterr, -MKM_E_DEP_UNSAT, "%s: cannot be installed",
                                                   rs->pk[targets[i]].name);
                        return mkm_err_set(reterr, rs->why_code ? rs->why_code : -MKM_E_DEP_UNSAT, "%s",
                                           rs->why);
                }
        }
        int r = sweep(rs);
        if (r < 0)
                return mkm_err_set(reterr, r, "out of memory");

        for (size_t i = 0; i < rs->n; i++) {
                struct rpkg *p = &rs->pk[i];
                if (p->marked) {
                        p->marked = false;
                        p->installed = p->manual = true;
                        if (essential_step)
                                p->essential_set = true;
                }
                p->protect = p->discarded = false;
        }
        return 0;
}

/* What each variant asks apt for in its second step (mmdebstrap's run_install). */
static bool variant_wants(enum deb_variant v, const struct deb_pkg *c) {
        if (c->essential)
                return false;
        switch (v) {
        case DEB_VARIANT_MINBASE:
        case DEB_VARIANT_BUILDD:
                return c->priority == DEB_PRIO_REQUIRED;
        case DEB_VARIANT_IMPORTANT:
                return c->priority == DEB_PRIO_REQUIRED || c->priority == DEB_PRIO_IMPORTANT;
        case DEB_VARIANT_STANDARD:
                return c->priority == DEB_PRIO_REQUIRED || c->priority == DEB_PRIO_IMPORTANT ||
                       c->priority == DEB_PRIO_STANDARD;
        default:
                return false;
        }
}

struct u32vec {
        uint32_t *v;
        size_t n, cap;
};

static int u32vec_push(struct u32vec *l, uint32_t x) {
        if (mkm_grow((void **)&l->v, &l->cap, l->n, sizeof *l->v, 64) < 0)
                return -ENOMEM;
        l->v[l->n++] = x;
        return 0;
}

/* Everything selected must hold together: each dependency satisfied, no Conflicts/Breaks. */
static int verify_selection(struct resolver *rs, struct mkm_err *reterr) {
        for (uint32_t i = 0; i < rs->n; i++) {
                const struct rpkg *p = &rs->pk[i];
                if (!p->installed)
                        continue;
                for (size_t f = 0; f < 2; f++) {
                        const struct deb_rel *rel = positive_rels(p->cand, f);
                        for (uint32_t gi = 0; gi < rel->n; gi++)
                                if (!group_sat_install(rs, &rel->groups[gi])) {
                                        char g[512] = "";
                                        fmt_group(g, sizeof g, &rel->groups[gi]);
                                        return mkm_err_set(reterr, -MKM_E_DEP_UNSAT, "%s -> %s: not satisfied by the selection",
                                                           p->name, g);
                                }
                }
                for (size_t f = 0; f < 2; f++) {
                        const struct deb_rel *rel = f == 0 ? &p->cand->conflicts : &p->cand->breaks;
                        for (uint32_t gi = 0; gi < rel->n; gi++)
                                for (uint32_t k = 0; k < rel->groups[gi].n; k++) {
                                        uint32_t hit;
                                        if (neg_hits_selected(rs, i, &rel->groups[gi].atoms[k], &hit)) {
                                                char a[512] = "";
                                                fmt_atom(a, sizeof a, &rel->groups[gi].atoms[k]);
                                                return mkm_err_set(reterr, -MKM_E_CONFLICT, "%s %s %s (%s: %s)", p->name,
                                                                   f ? "breaks" : "conflicts with", rs->pk[hit].name,
                                                                   f ? "Breaks" : "Conflicts", a);
                                        }
                                }
                }
        }
        return 0;
}

/* ---- install order -------------------------------------------------------------------------- */

struct edge {
        uint32_t to;            /* must come before the edge's owner */
        bool pre;
};

struct graph {
        uint32_t *nodes;        /* rpkg index per node, sorted by name */
        size_t n;
        uint32_t *eoff;         /* edges of node u: e[eoff[u]..eoff[u+1]) */
        struct edge *e;
};

static int cmp_name(const void *a, const void *b, void *userdata) {
        const struct resolver *rs = userdata;
        return strcmp(rs->pk[*(const uint32_t *)a].name, rs->pk[*(const uint32_t *)b].name);
}

/* The selected package that a group was satisfied with: the first alternative's real package,
 * else the first provider in name order. */
static uint32_t group_satisfier(const struct resolver *rs, const struct deb_group *g) {
        for (uint32_t i = 0; i < g->n; i++) {
                const struct deb_atom *a = &g->atoms[i];
                uint32_t t = lookup(rs, a->name), best = NONE;
                if (t == NONE)
                        continue;
                if (rs->pk[t].in_plan && real_matches(rs, rs->pk[t].cand, a))
                        return t;
                for (uint32_t k = 0; k < rs->pk[t].n_prov; k++) {
                        const struct prov *v = &rs->provs[rs->pk[t].prov_off + k];
                        if (rs->pk[v->pkg].in_plan && prov_matches(rs, rs->pk[v->pkg].cand, v->atom, a) &&
                            (best == NONE || strcmp(rs->pk[v->pkg].name, rs->pk[best].name) < 0))
                                best = v->pkg;
                }
                if (best != NONE)
                        return best;
        }
        return NONE;
}

static int build_graph(struct resolver *rs, struct graph *gr) {
        size_t ne = 0, cap = 0;

        gr->eoff = mkm_new(uint32_t, gr->n + 1);
        if (!gr->eoff)
                return -ENOMEM;
        for (size_t u = 0; u < gr->n; u++) {
                const struct deb_pkg *c = rs->pk[gr->nodes[u]].cand;
                gr->eoff[u] = (uint32_t)ne;
                for (size_t f = 0; f < 2; f++) {
                        const struct deb_rel *rel = positive_rels(c, f);
                        for (uint32_t gi = 0; gi < rel->n; gi++) {
                                uint32_t s = group_satisfier(rs, &rel->groups[gi]);
                                if (s == NONE || rs->pk[s].node == NONE || s == gr->nodes[u])
                                        continue;
                                if (mkm_grow((void **)&gr->e, &cap, ne, sizeof *gr->e, 256) < 0)
                                        return -ENOMEM;
                                gr->e[ne++] = (struct edge){ .to = rs->pk[s].node, .pre = f == 0 };
                        }
                }
        }
        gr->eoff[gr->n] = (uint32_t)ne;
        return 0;
}

/* Strongly connected components (Tarjan, iteratively); comp[u] numbers them in reverse
 * topological order of the "depends on" edges, i.e. dependencies get lower numbers first. */
static int tarjan(const struct graph *gr, uint32_t *comp, uint32_t *ret_ncomp) {
        size_t n = gr->n;
        _cleanup_free_ uint32_t *idx = mkm_new(uint32_t, n), *low = mkm_new(uint32_t, n), *stk = mkm_new(uint32_t, n),
                                *cs = mkm_new(uint32_t, n), *ci = mkm_new(uint32_t, n);
        _cleanup_free_ bool *on = mkm_new0(bool, n);
        uint32_t next = 0, ncomp = 0;
        size_t sp = 0, csp = 0;

        if (!idx || !low || !stk || !cs || !ci || !on)
                return -ENOMEM;
        for (size_t u = 0; u < n; u++)
                idx[u] = NONE;
        for (size_t root = 0; root < n; root++) {
                if (idx[root] != NONE)
                        continue;
                cs[csp] = (uint32_t)root;
                ci[csp++] = gr->eoff[root];
                idx[root] = low[root] = next++;
                stk[sp++] = (uint32_t)root;
                on[root] = true;
                while (csp > 0) {
                        uint32_t u = cs[csp - 1];
                        if (ci[csp - 1] < gr->eoff[u + 1]) {
                                uint32_t v = gr->e[ci[csp - 1]++].to;
                                if (idx[v] == NONE) {
                                        idx[v] = low[v] = next++;
                                        stk[sp++] = v;
                                        on[v] = true;
                                        cs[csp] = v;
                                        ci[csp++] = gr->eoff[v];
                                } else if (on[v] && idx[v] < low[u])
                                        low[u] = idx[v];
                                continue;
                        }
                        csp--;
                        if (csp > 0 && low[u] < low[cs[csp - 1]])
                                low[cs[csp - 1]] = low[u];
                        if (low[u] == idx[u]) {
                                uint32_t v;
                                do {
                                        v = stk[--sp];
                                        on[v] = false;
                                        comp[v] = ncomp;
                                } while (v != u);
                                ncomp++;
                        }
                }
        }
        *ret_ncomp = ncomp;
        return 0;
}

/* A min-heap of node numbers (node order is name order). */
static void heap_push(uint32_t *h, size_t *n, uint32_t x) {
        size_t i = (*n)++;
        while (i > 0 && h[(i - 1) / 2] > x) {
                h[i] = h[(i - 1) / 2];
                i = (i - 1) / 2;
        }
        h[i] = x;
}

static uint32_t heap_pop(uint32_t *h, size_t *n) {
        uint32_t top = h[0], x = h[--*n];
        size_t i = 0;
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= *n)
                        break;
                if (c + 1 < *n && h[c + 1] < h[c])
                        c++;
                if (h[c] >= x)
                        break;
                h[i] = h[c];
                i = c;
        }
        if (*n > 0)
                h[i] = x;
        return top;
}

/* Order the nodes: dependencies first; among what is ready, the smallest name. When a cycle
 * leaves nothing ready: in the cycle nothing outside waits for (the lowest Tarjan number among
 * the waiting), the smallest name whose Pre-Depends are placed (else the smallest name). */
static int order_graph(const struct graph *gr, uint32_t *out) {
        size_t n = gr->n, ne = gr->eoff[n], placed = 0, nheap = 0;
        uint32_t ncomp = 0;
        int r;
        _cleanup_free_ uint32_t *comp = mkm_new(uint32_t, n), *pending = mkm_new0(uint32_t, n),
                                *roff = mkm_new0(uint32_t, n + 1), *rev = mkm_new(uint32_t, ne), *heap = mkm_new(uint32_t, n);
        _cleanup_free_ bool *done = mkm_new0(bool, n), *queued = mkm_new0(bool, n);

        if (!comp || !pending || !roff || !rev || !heap || !done || !queued)
                return -ENOMEM;
        if ((r = tarjan(gr, comp, &ncomp)) < 0)
                return r;
        /* Reverse edges: who waits for v. Self-edges wait for nothing. */
        for (size_t u = 0; u < n; u++)
                for (uint32_t k = gr->eoff[u]; k < gr->eoff[u + 1]; k++)
                        if (gr->e[k].to != u) {
                                pending[u]++;
                                roff[gr->e[k].to + 1]++;
                        }
        for (size_t v = 0; v < n; v++)
                roff[v + 1] += roff[v];
        {
                _cleanup_free_ uint32_t *fill = mkm_new0(uint32_t, n);
                if (!fill)
                        return -ENOMEM;
                for (size_t u = 0; u < n; u++)
                        for (uint32_t k = gr->eoff[u]; k < gr->eoff[u + 1]; k++)
                                if (gr->e[k].to != u)
                                        rev[roff[gr->e[k].to] + fill[gr->e[k].to]++] = (uint32_t)u;
        }
        for (size_t u = 0; u < n; u++)
                if (pending[u] == 0) {
                        heap_push(heap, &nheap, (uint32_t)u);
                        queued[u] = true;
                }
        while (placed < n) {
                uint32_t pick = NONE;
                while (nheap > 0 && pick == NONE) {
                        uint32_t u = heap_pop(heap, &nheap);
                        if (!done[u])
                                pick = u;
                }
                if (pick == NONE) {
                        uint32_t best = NONE;
                        for (size_t u = 0; u < n; u++)
                                if (!done[u] && (best == NONE || comp[u] < best))
                                        best = comp[u];
                        for (int pass = 0; pass < 2 && pick == NONE; pass++)
                                for (size_t u = 0; u < n && pick == NONE; u++) {
                                        if (done[u] || comp[u] != best)
                                                continue;
                                        bool pre_ok = true;
                                        for (uint32_t k = gr->eoff[u]; k < gr->eoff[u + 1] && pass == 0; k++)
                                                if (gr->e[k].pre && !done[gr->e[k].to] && gr->e[k].to != u)
                                                        pre_ok = false;
                                        if (pre_ok)
                                                pick = (uint32_t)u;
                                }
                }
                done[pick] = true;
                out[placed++] = pick;
                for (uint32_t k = roff[pick]; k < roff[pick + 1]; k++) {
                        uint32_t u = rev[k];
                        if (--pending[u] == 0 && !done[u] && !queued[u]) {
                                heap_push(heap, &nheap, u);
                                queued[u] = true;
                        }
                }
        }
        return 0;
}

/* Append the plan items for the selected packages with essential_set == ess, in order. */
static int plan_part(struct resolver *rs, bool ess, struct deb_plan *plan) {
        struct graph gr = {};
        _cleanup_free_ uint32_t *order = NULL;
        int r;

        for (uint32_t i = 0; i < rs->n; i++)
                if (rs->pk[i].in_plan && rs->pk[i].essential_set == ess)
                        gr.n++;
        gr.nodes = mkm_new(uint32_t, gr.n);
        order = mkm_new(uint32_t, gr.n);
        if (!gr.nodes || !order) {
                r = -ENOMEM;
                goto out;
        }
        gr.n = 0;
        for (uint32_t i = 0; i < rs->n; i++)
                if (rs->pk[i].in_plan && rs->pk[i].essential_set == ess)
                        gr.nodes[gr.n++] = i;
        if (gr.n > 1)
                qsort_r(gr.nodes, gr.n, sizeof *gr.nodes, cmp_name, rs);
        for (uint32_t i = 0; i < rs->n; i++)
                rs->pk[i].node = NONE;
        for (size_t u = 0; u < gr.n; u++)
                rs->pk[gr.nodes[u]].node = (uint32_t)u;
        if ((r = build_graph(rs, &gr)) < 0 || (r = order_graph(&gr, order)) < 0)
                goto out;
        for (size_t k = 0; k < gr.n; k++) {
                const struct rpkg *p = &rs->pk[gr.nodes[order[k]]];
                plan->items[plan->n++] = (struct deb_plan_item){
                        .pkg = p->cand, .explicit = p->explicit, .essential_set = p->essential_set };
        }
        r = 0;
out:
        free(gr.nodes);
        free(gr.eoff);
        free(gr.e);
        return r;
}

/* ---- API ------------------------------------------------------------------------------------ */

static const char *const variant_names[_DEB_VARIANT_MAX] = {
        [DEB_VARIANT_EXTRACT] = "extract",
        [DEB_VARIANT_CUSTOM] = "custom",
        [DEB_VARIANT_ESSENTIAL] = "essential",
        [DEB_VARIANT_APT] = "apt",
        [DEB_VARIANT_MINBASE] = "minbase",
        [DEB_VARIANT_BUILDD] = "buildd",
        [DEB_VARIANT_IMPORTANT] = "important",
        [DEB_VARIANT_STANDARD] = "standard",
};

enum deb_variant deb_variant_from_string(const char *s) {
        if (!s)
                return _DEB_VARIANT_INVALID;
        for (int v = 0; v < _DEB_VARIANT_MAX; v++)
                if (strcmp(s, variant_names[v]) == 0)
                        return (enum deb_variant)v;
        if (strcmp(s, "required") == 0)
                return DEB_VARIANT_MINBASE;
        if (strcmp(s, "debootstrap") == 0 || strcmp(s, "-") == 0)
                return DEB_VARIANT_IMPORTANT;
        return _DEB_VARIANT_INVALID;
}

const char *deb_variant_to_string(enum deb_variant v) {
        return v >= 0 && v < _DEB_VARIANT_MAX ? variant_names[v] : NULL;
}

struct deb_plan *deb_plan_free(struct deb_plan *p) {
        if (p) {
                free(p->items);
                free(p);
        }
        return NULL;
}

static void resolver_done(struct resolver *rs) {
        free(rs->pk);
        free(rs->provs);
        free(rs->negs);
        hashmap_free(rs->byname);
}

int deb_resolve(struct mkm_ctx *ctx, struct deb_index *const *indexes, size_t n, const char *arch,
                enum deb_variant variant, char *const *targets, struct deb_plan **ret, struct mkm_err *reterr) {
        _cleanup_free_ struct resolver *rs = NULL;
        struct u32vec step1 = {}, step2 = {};
        _cleanup_(deb_plan_freep) struct deb_plan *plan = NULL;
        size_t n_targets = 0;
        bool pinned = false;
        int r;

        if (!arch || !*arch || variant < 0 || variant >= _DEB_VARIANT_MAX || (n > 0 && !indexes))
                return mkm_err_set(reterr, -EINVAL, "deb_resolve: bad arguments");
        for (char *const *t = targets; t && *t; t++)
                if (++n_targets > MAX_TARGETS)
                        return mkm_err_set(reterr, -MKM_E_RECIPE, "more than %u packages asked for", MAX_TARGETS);

        rs = calloc(1, sizeof *rs);
        if (!rs)
                return mkm_err_set(reterr, -ENOMEM, "out of memory");
        rs->ctx = ctx;
        rs->arch = arch;
        rs->byname = hashmap_new();
        if (!rs->byname) {
                r = mkm_err_set(reterr, -ENOMEM, "out of memory");
                goto out;
        }
        if ((r = build_names(rs, indexes, n)) < 0 || (r = build_links(rs)) < 0) {
                r = mkm_err_set(reterr, r, "cannot index the packages: %s", mkm_strerror(r));
                goto out;
        }

        /* Packages=: pins first (they change candidates, hence providers), then names. */
        for (size_t i = 0; i < n_targets; i++) {
                uint32_t t;
                if ((r = resolve_target(rs, indexes, n, targets[i], &pinned, &t, reterr)) < 0)
                        goto out;
        }
        if (pinned && (r = build_links(rs)) < 0) {
                r = mkm_err_set(reterr, r, "cannot index the packages: %s", mkm_strerror(r));
                goto out;
        }
        for (size_t i = 0; i < n_targets; i++) {
                uint32_t t;
                if ((r = resolve_target(rs, indexes, n, targets[i], &pinned, &t, reterr)) < 0 ||
                    (r = u32vec_push(&step2, t)) < 0)
                        goto out;
        }

        /* merged /usr: what mmdebstrap's merged-usr hook and debootstrap arrange. */
        uint32_t mu = lookup(rs, MERGED_USR_PKG);
        if (mu != NONE && rs->pk[mu].cand) {
                rs->pk[mu].installed = rs->pk[mu].manual = true;
                rs->pk[mu].essential_set = variant != DEB_VARIANT_EXTRACT;
        }

        if (variant == DEB_VARIANT_EXTRACT || variant == DEB_VARIANT_CUSTOM) {
                if ((r = run_step(rs, step2.v, step2.n, true, reterr)) < 0)
                        goto out;
        } else {
                for (uint32_t i = 0; i < rs->n; i++) {
                        const struct deb_pkg *c = rs->pk[i].cand;
                        if (c && (c->essential || (variant == DEB_VARIANT_APT && strcmp(rs->pk[i].name, "apt") == 0)))
                                if ((r = u32vec_push(&step1, i)) < 0)
                                        goto out;
                }
                if (variant == DEB_VARIANT_BUILDD) {
                        uint32_t be = lookup(rs, "build-essential");
                        if (be == NONE || !rs->pk[be].cand) {
                                r = mkm_err_set(reterr, -MKM_E_DEP_UNSAT, "variant buildd: no build-essential in the indexes");
                                goto out;
                        }
                        if ((r = u32vec_push(&step2, be)) < 0)
                                goto out;
                }
                for (uint32_t i = 0; i < rs->n; i++)
                        if (rs->pk[i].cand && variant_wants(variant, rs->pk[i].cand))
                                if ((r = u32vec_push(&step2, i)) < 0)
                                        goto out;
                if ((r = run_step(rs, step1.v, step1.n, true, reterr)) < 0) {
                        r = mkm_err_prefix(reterr, r, "the essential set");
                        goto out;
                }
                if ((r = run_step(rs, step2.v, step2.n, false, reterr)) < 0)
                        goto out;
        }
        if ((r = verify_selection(rs, reterr)) < 0)
                goto out;

        size_t count = 0;
        for (uint32_t i = 0; i < rs->n; i++) {
                struct rpkg *p = &rs->pk[i];
                p->in_plan = p->installed && !(i == mu && variant == DEB_VARIANT_EXTRACT);
                if (p->in_plan && (variant == DEB_VARIANT_EXTRACT || variant == DEB_VARIANT_CUSTOM))
                        p->essential_set = true;
                count += p->in_plan;
        }
        plan = calloc(1, sizeof *plan);
        if (!plan || !(plan->items = mkm_new(struct deb_plan_item, count))) {
                r = mkm_err_set(reterr, -ENOMEM, "out of memory");
                goto out;
        }
        if ((r = plan_part(rs, true, plan)) < 0 || (r = plan_part(rs, false, plan)) < 0) {
                r = mkm_err_set(reterr, r, "cannot order the packages: %s", mkm_strerror(r));
                goto out;
        }
        mkm_debug(ctx, "debian: %zu packages for variant %s (%zu names in the indexes)", plan->n,
                  deb_variant_to_string(variant), rs->n);
        *ret = TAKE_PTR(plan);
        r = 0;
out:
        free(step1.v);
        free(step2.v);
        resolver_done(rs);
        return r;
}
