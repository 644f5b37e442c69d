/* SPDX-License-Identifier: MIT */
/* What a machine is granted on the host (privileges.h): derived from the host files a build
 * writes, credited to the recipe key or the hook that asks for each grant, judged by the host's
 * policy (policy.h) and compared with what the deployed generation was granted. */
#include "privileges.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "hooks.h"
#include "hostinfo.h"
#include "ini.h"
#include "nspawn.h"
#include "policy.h"
#include "recipe.h"
#include "state.h"
#include "util/chase.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strv.h"

#define HOST_COPY_MAX (1u << 20)

static const char *const kind_names[_PRIV_KIND_MAX] = {
        [PRIV_PRIVILEGED] = "privileged",
        [PRIV_CAPABILITY] = "capability",
        [PRIV_SYSCALL] = "syscall",
        [PRIV_BIND] = "bind",
        [PRIV_BIND_USER] = "bind-user",
        [PRIV_DEVICE] = "device",
        [PRIV_HOST_NETWORK] = "host-network",
        [PRIV_HOST_INTERFACE] = "host-interface",
        [PRIV_PORT] = "port",
        [PRIV_MODULE] = "module",
        [PRIV_SERVICE] = "service",
        [PRIV_BUILD_NETWORK] = "build-network",
};

const char *priv_kind_to_string(enum priv_kind k) {
        return k >= 0 && k < _PRIV_KIND_MAX ? kind_names[k] : NULL;
}

static void grant_done(struct priv_grant *g) {
        free(g->value);
        free(g->setting);
        free(g->key);
        free(g->file);
        free(g->added_by);
        free(g->denied);
}

void privileges_done(struct privileges *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++)
                grant_done(&p->items[i]);
        free(p->items);
        *p = (struct privileges){};
}

void priv_report_done(struct priv_report *rep) {
        if (!rep)
                return;
        privileges_done(&rep->grants);
        free(rep->policy_path);
        *rep = (struct priv_report){};
}

/* ---- crediting ------------------------------------------------------------------------------ */

/* Where a host file line comes from (all borrowed). */
struct credit {
        const char *section, *key;      /* the recipe key: the line's own, or the hook's */
        const char *file;
        unsigned line;
        const char *added_by;           /* the hook's reason; NULL: the recipe's own line */
};

/* The hook whose reason is why: its key, and where r sets it. The reason starts with the key and
 * value that ask ("DockerStorageDriver=overlay2") and may name more keys before its explanation in
 * parentheses ("DockerStorageDriver=overlay2 with DockerPrivileged=yes (...)"): the last of them
 * the recipe sets is the one credited, the key that made the difference. */
static void credit_hook(const struct recipe *r, const char *why, struct credit *c) {
        *c = (struct credit){ .added_by = why };
        size_t nkeys;
        const struct recipe_key *keys = recipe_known_keys(&nkeys);
        size_t limit = why ? strcspn(why, "(") : 0;
        for (size_t at = 0; at < limit;) {
                size_t n = 0;
                while (at + n < limit && isalnum((unsigned char)why[at + n]))
                        n++;
                if (n == 0) {
                        at++;
                        continue;
                }
                bool assignment = at + n < limit && why[at + n] == '=' && (at == 0 || !isalnum((unsigned char)why[at - 1]));
                for (size_t i = 0; assignment && i < nkeys; i++) {
                        if (strlen(keys[i].key) != n || strncmp(keys[i].key, why + at, n) != 0)
                                continue;
                        const char *file;
                        unsigned line;
                        if (r && recipe_key_origin(r, keys[i].section, keys[i].key, &file, &line) >= 0) {
                                *c = (struct credit){ .section = keys[i].section, .key = keys[i].key, .file = file,
                                                      .line = line, .added_by = why };
                                break;
                        }
                        if (!c->key) {  /* known, but not set in r (or no r): the key without a line */
                                c->section = keys[i].section;
                                c->key = keys[i].key;
                        }
                }
                at += n;
        }
}

/* A .nspawn line: the recipe's own assignment of that value, else the hook that added it. */
static void credit_nspawn(const struct recipe *r, const struct hooks_needs *needs, const char *section,
                          const char *key, const char *value, struct credit *c) {
        *c = (struct credit){};
        for (size_t i = 0; r && i < r->n_nspawn; i++) {
                const struct recipe_nspawn_setting *s = &r->nspawn[i];
                if (strcmp(s->section, section) == 0 && strcmp(s->key, key) == 0 && strcmp(s->value, value) == 0)
                        *c = (struct credit){ .section = s->section, .key = s->key, .file = s->file, .line = s->line };
        }
        if (c->key)
                return;
        for (size_t i = 0; needs && i < needs->add.n; i++) {
                const struct nspawn_addition *a = &needs->add.items[i];
                if (strcmp(a->section, section) == 0 && strcmp(a->key, key) == 0 && strcmp(a->value, value) == 0) {
                        credit_hook(r, a->why, c);
                        return;
                }
        }
}

/* A drop-in or modules-load.d line: the hook that asked for it. */
static void credit_line(const struct recipe *r, char *const *lines, char *const *whys, const char *line,
                        struct credit *c) {
        *c = (struct credit){};
        for (size_t i = 0; lines && lines[i]; i++)
                if (strcmp(lines[i], line) == 0) {
                        credit_hook(r, whys && i < strv_length(whys) ? whys[i] : NULL, c);
                        return;
                }
}

static int grant_add(struct privileges *p, enum priv_kind kind, const char *value, bool read_only, enum priv_file in,
                     const char *setting, const struct credit *c) {
        struct priv_grant *n = mkm_reallocarray(p->items, p->n + 1, sizeof *n);
        if (!n)
                return -ENOMEM;
        p->items = n;
        char *key = NULL;
        if (c->key && asprintf(&key, "[%s] %s=", c->section, c->key) < 0)
                return -ENOMEM;
        struct priv_grant g = { .kind = kind, .read_only = read_only, .in = in, .line = c->line, .key = key,
                                .value = strdup(value), .setting = strdup(setting),
                                .file = c->file ? strdup(c->file) : NULL,
                                .added_by = c->added_by ? strdup(c->added_by) : NULL };
        if (!g.value || !g.setting || (c->file && !g.file) || (c->added_by && !g.added_by)) {
                grant_done(&g);
                return -ENOMEM;
        }
        if (!g.file)
                g.line = 0;
        p->items[p->n++] = g;
        return 0;
}

/* ---- deriving --------------------------------------------------------------------------------- */

/* The components of a Bind=/Overlay= value: ':' separates, a backslash escapes the next
 * character (as nspawn's parser reads it). */
static int split_colons(const char *v, char ***ret) {
        _cleanup_strv_free_ char **out = NULL;
        _cleanup_free_ char *cur = malloc(strlen(v) + 1);
        if (!cur)
                return -ENOMEM;
        size_t n = 0;
        for (const char *s = v;; s++) {
                if (*s == '\\' && s[1]) {
                        cur[n++] = *++s;
                        continue;
                }
                if (*s == ':' || !*s) {
                        cur[n] = 0;
                        int q = strv_push(&out, cur);
                        if (q < 0)
                                return q;
                        n = 0;
                        if (!*s)
                                break;
                        continue;
                }
                cur[n++] = *s;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

static int add_words(struct privileges *p, enum priv_kind kind, const char *value, const char *prefix,
                     const char *setting, const struct credit *c) {
        _cleanup_strv_free_ char **words = NULL;
        int q = strv_split(value, " \t", &words);
        for (char **w = words; q >= 0 && w && *w; w++) {
                _cleanup_free_ char *v = NULL;
                if (kind == PRIV_CAPABILITY)
                        v = policy_capability_normalize(*w);
                else if (asprintf(&v, "%s%s", prefix ? prefix : "", *w) < 0)
                        v = NULL;
                q = v ? grant_add(p, kind, v, false, PRIV_FILE_NSPAWN, setting, c) : -ENOMEM;
        }
        return q;
}

/* A host path a bind or overlay reads: a device when it is /dev or below. A "+" path names a
 * path in the machine's own tree, but systemd joins it to the tree's directory and mounts it on
 * the host without confinement: its ".." climbs out, and a symlink the machine itself makes
 * there leads anywhere. So it is a grant of any host path (judged as "/", kept as written). */
static int add_source(struct privileges *p, const char *src, bool read_only, const char *setting,
                      const struct credit *c) {
        if (!src[0])
                return 0;
        if (policy_path_under(src, "/dev"))
                return grant_add(p, PRIV_DEVICE, src, read_only, PRIV_FILE_NSPAWN, setting, c);
        return grant_add(p, PRIV_BIND, src, read_only, PRIV_FILE_NSPAWN, setting, c);
}

/* A host file that cannot be parsed is judged as a privileged machine ("unreadable"), with the
 * parser's reason as its setting. */
static int unreadable(struct privileges *p, enum priv_file in, const char *what, const struct mkm_err *err) {
        _cleanup_free_ char *setting = NULL;
        if (asprintf(&setting, "%s cannot be judged (%s)", what, err->msg[0] ? err->msg : "unreadable") < 0)
                return -ENOMEM;
        return grant_add(p, PRIV_PRIVILEGED, "unreadable", false, in, setting, &(struct credit){});
}

/* The UIDs systemd gives containers (UIDS-GIDS.md): 0x00080000 to 0x6FFFFFFF, in slots of 65536. */
#define CONTAINER_UID_END ((uint64_t)HOOKS_USERNS_PICK_MAX + HOOKS_USERNS_RANGE)

static bool is_key(const struct ini_entry *e, const char *section, const char *key) {
        return strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0;
}

/* A .nspawn's user namespace as systemd-nspawn 252 settles it: the last PrivateUsers= line it
 * accepts (nspawn_parse_private_users(); it ignores the others); with none, a PrivateUsersOwnership=
 * or PrivateUsersChown= line means no user namespace at all (settings_load(): the mode is then
 * set to "no"), else the command line's (the service's -U). at: the deciding line. */
struct userns_eff {
        enum nspawn_userns mode;
        uint32_t base, range;
        const struct ini_entry *at;
};

/* A PrivateUsersOwnership= or PrivateUsersChown= line nspawn 252 accepts (any other it ignores):
 * a boolean, or for Ownership= exactly off, chown, map or auto. */
static bool ownership_valid(const struct ini_entry *e) {
        if (is_key(e, "Files", "PrivateUsersChown"))
                return recipe_parse_boolean(e->value) >= 0;
        if (!is_key(e, "Files", "PrivateUsersOwnership"))
                return false;
        return recipe_parse_boolean(e->value) >= 0 || strcmp(e->value, "off") == 0 || strcmp(e->value, "chown") == 0 ||
               strcmp(e->value, "map") == 0 || strcmp(e->value, "auto") == 0;
}

static void effective_userns(const struct ini_entry *e, size_t n, struct userns_eff *ret) {
        *ret = (struct userns_eff){ .mode = NSPAWN_USERNS_UNSET, .base = UINT32_MAX, .range = HOOKS_USERNS_RANGE };
        const struct ini_entry *ownership = NULL;
        for (size_t i = 0; i < n; i++) {
                if (!e[i].key)
                        continue;
                struct userns_eff u = { .at = &e[i] };
                if (is_key(&e[i], "Exec", "PrivateUsers") && nspawn_parse_private_users(e[i].value, &u.mode, &u.base, &u.range))
                        *ret = u;
                else if (ownership_valid(&e[i]))
                        ownership = &e[i];
        }
        if (ret->mode == NSPAWN_USERNS_UNSET && ownership)
                *ret = (struct userns_eff){ .mode = NSPAWN_USERNS_NO, .base = UINT32_MAX,
                                            .range = HOOKS_USERNS_RANGE, .at = ownership };
}

/* The grant of a user namespace: "no" without one, "uid0" when the machine's root is UID 0 on
 * the host anyway (identity, a base of 0, or yes on a tree owned by UID 0, whose owner nspawn
 * takes as the base), "host-uids" when its UIDs reach outside the container range
 * (PrivateUsers=1000: the machine's root is host UID 1000, its users host accounts), "wide-uids"
 * when it takes more than one machine's 65536 (they are other machines' UIDs, now or when they
 * are built), NULL when it maps root to a slot of its own (pick, the service's -U,
 * BASE[:RANGE] within the range). */
static const char *userns_grant(const struct userns_eff *u) {
        switch (u->mode) {
        case NSPAWN_USERNS_NO:
                return "no";
        case NSPAWN_USERNS_IDENTITY:
                return "uid0";
        case NSPAWN_USERNS_FIXED:
                if (u->base == UINT32_MAX || u->base == 0)
                        return "uid0";
                if (u->base < HOOKS_USERNS_PICK_MIN || (uint64_t)u->base + u->range > CONTAINER_UID_END)
                        return "host-uids";
                return u->range > HOOKS_USERNS_RANGE ? "wide-uids" : NULL;
        default:
                return NULL;
        }
}

static int from_nspawn(struct privileges *p, const char *text, const struct recipe *r, const struct hooks_needs *needs) {
        struct ini_entry *e = NULL;
        size_t n = 0;
        struct mkm_err err = {};
        int q = ini_parse(text, strlen(text), "NAME.nspawn", &e, &n, &err);
        if (q < 0)
                /* Fail closed: what we cannot read, systemd may (it skips bad lines, takes longer
                 * ones), so it may grant anything: a privileged machine until shown otherwise. */
                return q == -ENOMEM ? q : unreadable(p, PRIV_FILE_NSPAWN, "NAME.nspawn", &err);
        static const char *const net_keys[] = { "Private", "VirtualEthernet", "VirtualEthernetExtra", "Interface",
                                                "MACVLAN", "IPVLAN", "Bridge", "Zone" };
        struct userns_eff u;
        effective_userns(e, n, &u);
        bool net_set = false, net_private = false;
        const struct ini_entry *net_entry = NULL;       /* the line that leaves no private network */
        struct credit net_credit = {};
        for (size_t i = 0; i < n && q >= 0; i++) {
                if (!e[i].key)
                        continue;
                _cleanup_free_ char *setting = NULL;
                if (asprintf(&setting, "[%s] %s=%s", e[i].section, e[i].key, e[i].value) < 0) {
                        q = -ENOMEM;
                        break;
                }
                struct credit c;
                credit_nspawn(r, needs, e[i].section, e[i].key, e[i].value, &c);
                if (&e[i] == u.at) {    /* the line that settles the user namespace */
                        const char *g = userns_grant(&u);
                        if (g)
                                q = grant_add(p, PRIV_PRIVILEGED, g, false, PRIV_FILE_NSPAWN, setting, &c);
                } else if (is_key(&e[i], "Exec", "Capability") || is_key(&e[i], "Exec", "AmbientCapability"))
                        q = add_words(p, PRIV_CAPABILITY, e[i].value, NULL, setting, &c);
                else if (is_key(&e[i], "Exec", "SystemCallFilter")) {
                        if (e[i].value[0] != '~')       /* a deny list takes away */
                                q = add_words(p, PRIV_SYSCALL, e[i].value, NULL, setting, &c);
                } else if (is_key(&e[i], "Files", "Bind") || is_key(&e[i], "Files", "BindReadOnly")) {
                        _cleanup_strv_free_ char **parts = NULL;
                        q = split_colons(e[i].value, &parts);
                        if (q >= 0 && parts && parts[0])
                                q = add_source(p, parts[0], strcmp(e[i].key, "BindReadOnly") == 0, setting, &c);
                        /* idmap, rootidmap, owneridmap: the machine's users own the source as
                         * the host's do (its root acts as host root on root's files there). */
                        if (q >= 0 && parts && parts[0] && strv_length(parts) >= 3 && strstr(parts[2], "idmap"))
                                q = grant_add(p, PRIV_PRIVILEGED, "idmapped-bind", false, PRIV_FILE_NSPAWN, setting, &c);
                } else if (is_key(&e[i], "Files", "Overlay") || is_key(&e[i], "Files", "OverlayReadOnly")) {
                        /* systemd.nspawn(5): the lower directories, then the upper one (written
                         * to, unless OverlayReadOnly=), then the mount point in the machine; with
                         * only two paths the second is both the upper directory on the host and
                         * the mount point. */
                        _cleanup_strv_free_ char **parts = NULL;
                        q = split_colons(e[i].value, &parts);
                        size_t np = strv_length(parts), upper = np == 2 ? 1 : np >= 3 ? np - 2 : np;
                        bool ro = strcmp(e[i].key, "OverlayReadOnly") == 0;
                        for (size_t j = 0; q >= 0 && j < upper; j++)
                                q = add_source(p, parts[j], true, setting, &c);
                        if (q >= 0 && upper < np)
                                q = add_source(p, parts[upper], ro, setting, &c);
                } else if ((strcmp(e[i].section, "Exec") == 0 &&
                            (strcmp(e[i].key, "OOMScoreAdjust") == 0 || strncmp(e[i].key, "Limit", 5) == 0)) ||
                           (is_key(&e[i], "Exec", "LinkJournal") && strcmp(e[i].value, "guest") != 0 &&
                            strcmp(e[i].value, "try-guest") != 0 && recipe_parse_boolean(e[i].value) != 0)) {
                        /* The host's resources: OOM immunity, raised rlimits (e.g. unlimited
                         * mlock), the host's journal directory for the machine, read-write
                         * (host, try-host, and auto or yes, which bind it when it exists, as it
                         * does for a machine ID another machine used; any other value too:
                         * what systemd reads differently is listed, not lost). */
                        _cleanup_free_ char *v = NULL;
                        q = asprintf(&v, "%s=%s", e[i].key, e[i].value) < 0
                                    ? -ENOMEM
                                    : grant_add(p, PRIV_SERVICE, v, false, PRIV_FILE_NSPAWN, setting, &c);
                } else if (is_key(&e[i], "Files", "BindUser"))
                        q = add_words(p, PRIV_BIND_USER, e[i].value, NULL, setting, &c);
                else if (is_key(&e[i], "Network", "Port"))
                        q = grant_add(p, PRIV_PORT, e[i].value, false, PRIV_FILE_NSPAWN, setting, &c);
                else if (strcmp(e[i].section, "Network") == 0) {
                        for (size_t k = 0; k < ELEMENTSOF(net_keys); k++)
                                if (strcmp(e[i].key, net_keys[k]) == 0)
                                        net_set = true;
                        if (is_key(&e[i], "Network", "Private") || is_key(&e[i], "Network", "VirtualEthernet")) {
                                if (recipe_parse_boolean(e[i].value) > 0)
                                        net_private = true;
                                else if (!net_entry || strcmp(e[i].key, "Private") == 0) {
                                        net_entry = &e[i];
                                        net_credit = c;
                                }
                        } else if (is_key(&e[i], "Network", "Bridge") || is_key(&e[i], "Network", "Zone")) {
                                _cleanup_free_ char *v = NULL;
                                /* A name systemd-nspawn ignores gives no private network. */
                                if (!nspawn_network_value_invalid(e[i].key, e[i].value))
                                        net_private = true;
                                q = asprintf(&v, "%s=%s", e[i].key, e[i].value) < 0
                                            ? -ENOMEM
                                            : grant_add(p, PRIV_HOST_INTERFACE, v, false, PRIV_FILE_NSPAWN, setting, &c);
                        } else if (strcmp(e[i].key, "Interface") == 0 || strcmp(e[i].key, "MACVLAN") == 0 ||
                                   strcmp(e[i].key, "IPVLAN") == 0 || strcmp(e[i].key, "VirtualEthernetExtra") == 0) {
                                _cleanup_free_ char *prefix = NULL;
                                if (!nspawn_network_value_invalid(e[i].key, e[i].value))
                                        net_private = true;
                                q = asprintf(&prefix, "%s=", e[i].key) < 0
                                            ? -ENOMEM
                                            : add_words(p, PRIV_HOST_INTERFACE, e[i].value, prefix, setting, &c);
                        }
                }
        }
        /* systemd-nspawn@.service starts machines with --network-veth, which [Network] settings in a
         * trusted .nspawn file replace: without any, the machine has its own network. */
        if (q >= 0 && net_set && !net_private) {
                _cleanup_free_ char *setting = NULL;
                if (net_entry && asprintf(&setting, "[Network] %s=%s", net_entry->key, net_entry->value) < 0)
                        q = -ENOMEM;
                else
                        q = grant_add(p, PRIV_HOST_NETWORK, "host", false, PRIV_FILE_NSPAWN,
                                      setting ? setting : "[Network] (no private network)", &net_credit);
        }
        ini_entries_free(e, n);
        return q;
}

static int from_dropin(struct privileges *p, const char *text, const struct recipe *r, const struct hooks_needs *needs) {
        struct ini_entry *e = NULL;
        size_t n = 0;
        struct mkm_err err = {};
        int q = ini_parse(text, strlen(text), "mkmachine.conf", &e, &n, &err);
        if (q < 0)
                return q == -ENOMEM ? q : unreadable(p, PRIV_FILE_DROPIN, "the drop-in", &err);
        for (size_t i = 0; i < n && q >= 0; i++) {
                if (!e[i].key)
                        continue;
                _cleanup_free_ char *line = NULL, *setting = NULL;
                if (asprintf(&line, "%s=%s", e[i].key, e[i].value) < 0 ||
                    asprintf(&setting, "[%s] %s", e[i].section, line) < 0) {
                        q = -ENOMEM;
                        break;
                }
                struct credit c;
                credit_line(r, needs ? needs->service : NULL, needs ? needs->service_why : NULL, line, &c);
                if (strcmp(e[i].key, "DeviceAllow") == 0) {
                        _cleanup_free_ char *dev = strndup(e[i].value, strcspn(e[i].value, " \t"));
                        q = dev ? grant_add(p, PRIV_DEVICE, dev, false, PRIV_FILE_DROPIN, setting, &c) : -ENOMEM;
                } else
                        q = grant_add(p, PRIV_SERVICE, line, false, PRIV_FILE_DROPIN, setting, &c);
        }
        ini_entries_free(e, n);
        return q;
}

static int from_modules(struct privileges *p, const char *text, const struct recipe *r, const struct hooks_needs *needs) {
        int q = 0;
        for (const char *s = text; *s && q >= 0;) {
                size_t len = strcspn(s, "\n");
                _cleanup_free_ char *line = strndup(s, len);
                if (!line)
                        return -ENOMEM;
                s += len;
                if (*s)
                        s++;
                char *m = line + strspn(line, " \t");
                m[strcspn(m, " \t\r")] = 0;
                if (!*m || *m == '#' || *m == ';')
                        continue;
                struct credit c;
                credit_line(r, needs ? needs->modules : NULL, needs ? needs->modules_why : NULL, m, &c);
                q = grant_add(p, PRIV_MODULE, m, false, PRIV_FILE_MODULES, m, &c);
        }
        return q;
}

int privileges_from_host_files(const struct host_files *hf, const struct recipe *r, const struct hooks_needs *needs,
                               struct privileges *ret) {
        struct privileges p = {};
        int q = 0;
        if (hf->nspawn)
                q = from_nspawn(&p, hf->nspawn, r, needs);
        if (q >= 0 && hf->dropin)
                q = from_dropin(&p, hf->dropin, r, needs);
        if (q >= 0 && hf->modules_load)
                q = from_modules(&p, hf->modules_load, r, needs);
        if (q < 0) {
                privileges_done(&p);
                return q;
        }
        *ret = p;
        return 0;
}

/* ---- UIDs shared with other machines ---------------------------------------------------------- */

static bool nspawn_text_plain(const char *text, size_t len) {
        if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
                return false;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)text[i];
                if (c == '\r' && (i + 1 >= len || text[i + 1] != '\n'))
                        return false;
                if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F)
                        return false;
        }
        return true;
}

static int skip_bad_line(void *userdata, int code, unsigned line, const char *msg) {
        (void)userdata, (void)code, (void)line, (void)msg;
        return 0;
}

/* A .nspawn text read as systemd-nspawn reads it (a bad line skipped, effective_userns()); the
 * deciding line's value in *ret_value (NULL when unset). -MKM_E_PARSE for a file it would not read
 * to the end (a line too long, too many), -ENOMEM. */
static int nspawn_text_userns(const char *text, struct userns_eff *ret, char **ret_value) {
        struct ini_entry *e = NULL;
        size_t n = 0;
        struct mkm_err err = {};
        int q = ini_parse_lenient(text, strlen(text), "NAME.nspawn", skip_bad_line, NULL, &e, &n, &err);
        if (q < 0)
                return q;
        effective_userns(e, n, ret);
        *ret_value = NULL;
        if (ret->at && !(*ret_value = strdup(ret->at->value)))
                q = -ENOMEM;
        ret->at = NULL;
        ini_entries_free(e, n);
        return q < 0 ? q : 0;
}

static bool ranges_overlap(uint32_t a, uint32_t an, uint32_t b, uint32_t bn) {
        return (uint64_t)a < (uint64_t)b + bn && (uint64_t)b < (uint64_t)a + an;
}

static bool not_hidden(int dirfd, const char *name, void *userdata) {
        (void)dirfd, (void)userdata;
        return name[0] != '.';
}

/* The entries of HOST/dir, sorted (the grants come out in the same order every time); NULL when
 * the directory is not there. */
static int dir_names(int hostfd, const char *dir, char ***ret) {
        *ret = NULL;
        /* Inside the host root: an absolute link there means the host root's path (--host-root). */
        _cleanup_close_ int dfd = chase_and_open_in_root(hostfd, dir, CHASE_MUST_BE_DIRECTORY, O_RDONLY | O_DIRECTORY, 0);
        if (dfd < 0)
                return dfd == -ENOENT || dfd == -ENOTDIR ? 0 : dfd;
        return fs_list_names(dfd, not_hidden, NULL, 0, ret);
}

static int read_regular_at(int hostfd, const char *path, char **ret, size_t *ret_len) {
        /* Resolved inside the host root; anything but a regular file is never opened. */
        _cleanup_close_ int fd = chase_and_open_in_root(hostfd, path, CHASE_MUST_BE_REGULAR, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
        if (fd < 0)
                return fd == -EISDIR ? -EBADFD : fd;
        return fs_read_fd(fd, HOST_COPY_MAX, ret, ret_len);
}

/* The UIDs of a machine whose user namespace comes from its tree's owner (PrivateUsers=yes, and
 * pick, which is also the service's -U: nspawn tries the owner's slot first): the 64K slot of
 * the owner of its image directory, when that is in the container range. systemd's image
 * directories, first found wins (a raw image is not looked into). */
static bool tree_slot(int hostfd, const char *name, uint32_t *ret_base) {
        static const char *const image_dirs[] = { "etc/machines", "run/machines", "var/lib/machines",
                                                  "var/lib/container", "usr/local/lib/machines", "usr/lib/machines" };
        for (size_t k = 0; k < ELEMENTSOF(image_dirs); k++) {
                _cleanup_free_ char *path = NULL;
                _cleanup_close_ int fd = -EBADF;
                struct stat st;
                if (asprintf(&path, "%s/%s", image_dirs[k], name) < 0)
                        return false;
                if (chase_in_root(hostfd, path, 0, NULL, &fd) < 0 || fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                uint32_t b = (uint32_t)st.st_uid & 0xFFFF0000u;
                if (b < HOOKS_USERNS_PICK_MIN || b > HOOKS_USERNS_PICK_MAX)
                        return false;
                *ret_base = b;
                return true;
        }
        return false;
}

/* Call fn(ud, who) for each machine on the host (hostfd) but name (NULL: none left out) whose UIDs
 * overlap base..base+range-1: who is the machine's name ("NAME (unreadable settings)" when its
 * settings cannot be read to the end: fail closed), or "/run/systemd/nspawn-uid/BASE" for a
 * container systemd-nspawn runs with PrivateUsers=pick. fn returns < 0 to fail, > 0 to stop.
 * The machines are those with settings systemd-nspawn applies (HOST/etc/systemd/nspawn, else
 * HOST/run/systemd/nspawn: their PrivateUsers=, read as nspawn reads it) and those with an image
 * directory (PrivateUsers=yes, pick or none: the slot of the tree's owner). */
static int for_each_sharer(int hostfd, const char *name, uint32_t base, uint32_t range,
                           int (*fn)(void *ud, const char *who), void *ud) {
        static const char *const dirs[] = { "etc/systemd/nspawn", "run/systemd/nspawn", "etc/machines", "run/machines",
                                            "var/lib/machines", "var/lib/container", "usr/local/lib/machines",
                                            "usr/lib/machines" };
        _cleanup_strv_free_ char **machines = NULL;
        int q = 0;
        for (size_t k = 0; k < ELEMENTSOF(dirs) && q >= 0; k++) {
                _cleanup_strv_free_ char **names = NULL;
                q = dir_names(hostfd, dirs[k], &names);
                for (char **f = names; q >= 0 && f && *f; f++) {
                        size_t len = strlen(*f);
                        bool settings = k < 2;
                        if (settings && (len <= 7 || strcmp(*f + len - 7, ".nspawn") != 0))
                                continue;
                        if (!settings && len > 7 && strcmp(*f + len - 7, ".nspawn") == 0)
                                continue;       /* beside an image: not trusted, PrivateUsers= ignored */
                        _cleanup_free_ char *m = strndup(*f, settings ? len - 7 : len);
                        if (!m)
                                return -ENOMEM;
                        if ((!name || strcmp(m, name) != 0) && !strv_contains(machines, m))
                                q = strv_push(&machines, m);
                }
        }
        if (q < 0)
                return q;
        strv_sort(machines);
        for (char **m = machines; q == 0 && m && *m; m++) {
                _cleanup_free_ char *text = NULL, *v = NULL;
                size_t len = 0;
                int r = -ENOENT;
                for (size_t k = 0; k < 2 && r == -ENOENT; k++) {
                        _cleanup_free_ char *path = NULL;
                        if (asprintf(&path, "%s/%s.nspawn", dirs[k], *m) < 0)
                                return -ENOMEM;
                        r = read_regular_at(hostfd, path, &text, &len);
                }
                /* What nspawn's line reader takes otherwise than ours: a NUL (it ends a line
                 * there, we the text), a bare CR (a line end to it), a byte-order mark, other
                 * control characters (a line it continues past). Fail closed. */
                if (r >= 0 && !nspawn_text_plain(text, len))
                        r = -MKM_E_PARSE;
                struct userns_eff u = { .mode = NSPAWN_USERNS_UNSET };
                if (r == -EBADFD)
                        r = -ENOENT;    /* not a regular file (a FIFO would hang us): no settings */
                if (r >= 0)
                        r = nspawn_text_userns(text, &u, &v);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 && r != -ENOENT) {
                        /* Settings systemd reads and we cannot: they may give any UIDs. */
                        _cleanup_free_ char *who = NULL;
                        q = asprintf(&who, "%s (unreadable settings)", *m) < 0 ? -ENOMEM : fn(ud, who);
                        continue;
                }
                uint32_t ob = u.base, on = u.range;
                if (u.mode == NSPAWN_USERNS_NO || u.mode == NSPAWN_USERNS_IDENTITY)
                        continue;       /* the host's own UIDs: judged as such on this side */
                if ((u.mode != NSPAWN_USERNS_FIXED || u.base == UINT32_MAX) && !tree_slot(hostfd, *m, &ob))
                        continue;
                if (u.mode != NSPAWN_USERNS_FIXED || u.base == UINT32_MAX)
                        on = HOOKS_USERNS_RANGE;
                if (ranges_overlap(base, range, ob, on))
                        q = fn(ud, *m);
        }
        /* A container that systemd-nspawn started with PrivateUsers=pick holds its slot's lock
         * while it runs. */
        _cleanup_strv_free_ char **locks = NULL;
        if (q == 0)
                q = dir_names(hostfd, "run/systemd/nspawn-uid", &locks);
        for (char **f = locks; q == 0 && f && *f; f++) {
                uint32_t ob, on;
                if (strchr(*f, ':') || !nspawn_parse_uid_range(*f, &ob, &on) || !ranges_overlap(base, range, ob, on))
                        continue;
                _cleanup_free_ char *who = NULL;
                q = asprintf(&who, "/run/systemd/nspawn-uid/%s", *f) < 0 ? -ENOMEM : fn(ud, who);
        }
        return q < 0 ? q : 0;
}

struct shared_add {
        struct privileges *p;
        const char *setting;
        const struct credit *c;
};

static int shared_add_one(void *ud, const char *who) {
        struct shared_add *a = ud;
        _cleanup_free_ char *val = NULL;
        if (asprintf(&val, "shared-uids:%s", who) < 0)
                return -ENOMEM;
        return grant_add(a->p, PRIV_PRIVILEGED, val, false, PRIV_FILE_NSPAWN, a->setting, a->c);
}

int privileges_add_shared_uids(int hostfd, const char *name, const char *nspawn_text, const struct recipe *r,
                               const struct hooks_needs *needs, struct privileges *p) {
        if (hostfd < 0 || !nspawn_text)
                return 0;
        struct userns_eff u;
        _cleanup_free_ char *value = NULL, *setting = NULL;
        int q = nspawn_text_userns(nspawn_text, &u, &value);
        if (q < 0)
                return q == -ENOMEM ? q : 0;    /* unreadable: judged as privileged already */
        /* Only a fixed base takes UIDs another machine may have; the others are a privileged
         * machine (no, identity, yes) or a slot nspawn picks free (pick, the service's -U). */
        if (u.mode != NSPAWN_USERNS_FIXED || u.base == UINT32_MAX)
                return 0;
        if (asprintf(&setting, "[Exec] PrivateUsers=%s", value) < 0)
                return -ENOMEM;
        struct credit c;
        credit_nspawn(r, needs, "Exec", "PrivateUsers", value, &c);
        return for_each_sharer(hostfd, name, u.base, u.range, shared_add_one,
                               &(struct shared_add){ .p = p, .setting = setting, .c = &c });
}

static int collect(void *ud, const char *who) {
        return strv_push(ud, who);
}

int privileges_sharers(int hostfd, const char *name, uint32_t base, uint32_t range, char ***ret) {
        _cleanup_strv_free_ char **who = NULL;
        int q = hostfd >= 0 ? for_each_sharer(hostfd, name, base, range, collect, &who) : 0;
        if (q < 0)
                return q;
        *ret = TAKE_PTR(who);
        return 0;
}

int privileges_nspawn_userns(const char *nspawn_text, enum nspawn_userns *ret_mode, uint32_t *ret_base,
                             uint32_t *ret_range) {
        struct userns_eff u = { .mode = NSPAWN_USERNS_UNSET, .base = UINT32_MAX, .range = HOOKS_USERNS_RANGE };
        _cleanup_free_ char *v = NULL;
        int q = nspawn_text ? nspawn_text_userns(nspawn_text, &u, &v) : 0;
        if (q < 0)
                return q;
        *ret_mode = u.mode;
        *ret_base = u.base;
        *ret_range = u.range;
        return 0;
}

bool privileges_uids_in_use(int hostfd, uint32_t base, uint32_t range) {
        _cleanup_strv_free_ char **who = NULL;
        return privileges_sharers(hostfd, NULL, base, range, &who) < 0 || who;
}

/* ---- the build itself -------------------------------------------------------------------------- */

int privileges_add_build(const struct recipe *r, struct privileges *p) {
        if (!r || !r->run_network)
                return 0;
        struct credit c = { .section = "Hooks", .key = "RunNetwork" };
        if (recipe_key_origin(r, "Hooks", "RunNetwork", &c.file, &c.line) < 0)
                c = (struct credit){ .section = "Hooks", .key = "RunNetwork" };
        return grant_add(p, PRIV_BUILD_NETWORK, "host", false, PRIV_FILE_BUILD, "[Hooks] RunNetwork=yes", &c);
}

/* Whether the generation g was built with RunNetwork=yes: its stored recipe (recipe_format()'s
 * canonical text; an imported machine stores none) says so. */
static int gen_had_build_network(const struct machine_gen *g, bool *ret) {
        _cleanup_free_ char *text = NULL;
        struct mkm_err err = {};
        *ret = false;
        int q = state_read_file(g, "recipe", &text, &err);
        if (q == -ENOENT)
                return 0;
        if (q < 0)
                return q;
        struct ini_entry *e = NULL;
        size_t n = 0;
        q = ini_parse(text, strlen(text), "recipe", &e, &n, &err);
        if (q < 0)
                return q == -ENOMEM ? q : 0;
        for (size_t i = 0; i < n; i++)
                if (e[i].key && is_key(&e[i], "Hooks", "RunNetwork"))
                        *ret = recipe_parse_boolean(e[i].value) > 0;
        ini_entries_free(e, n);
        return 0;
}

/* ---- comparing ------------------------------------------------------------------------------- */

static bool covers(const struct priv_grant *o, const struct priv_grant *g) {
        if (o->kind != g->kind)
                return false;
        switch (g->kind) {
        case PRIV_CAPABILITY:
                return strcmp(o->value, "all") == 0 || strcmp(o->value, g->value) == 0;
        case PRIV_PRIVILEGED:
                /* No user namespace at all grants more than root mapped to UID 0. A file that
                 * cannot be judged is new every time: nothing says what it grants. */
                if (strcmp(g->value, "unreadable") == 0)
                        return false;
                return strcmp(o->value, "no") == 0 || strcmp(o->value, g->value) == 0;
        case PRIV_BIND:
                /* Equal text too: a path with ".." is under nothing, not even itself. A "+" path
                 * may be any host path: only "/" covers it. */
                return (strcmp(o->value, g->value) == 0 ||
                        policy_path_under(g->value[0] == '+' ? "/" : g->value, o->value)) &&
                       (!o->read_only || g->read_only);
        case PRIV_DEVICE:
                return strcmp(o->value, g->value) == 0 || policy_path_under(g->value, o->value);
        default:
                return strcmp(o->value, g->value) == 0;
        }
}

bool privileges_cover(const struct privileges *old, const struct priv_grant *g) {
        for (size_t i = 0; old && i < old->n; i++)
                if (covers(&old->items[i], g))
                        return true;
        return false;
}

/* ---- words -------------------------------------------------------------------------------------- */

char *priv_grant_what(const struct priv_grant *g) {
        char *s = NULL;
        int n = -1;
        switch (g->kind) {
        case PRIV_PRIVILEGED:
                n = strcmp(g->value, "no") == 0
                            ? asprintf(&s, "a privileged machine (no user namespace: its root is the host's root)")
                    : strcmp(g->value, "unreadable") == 0
                            ? asprintf(&s, "unknown, taken as a privileged machine (systemd may read what mkmachine cannot)")
                    : strcmp(g->value, "host-uids") == 0
                            ? asprintf(&s, "a machine whose users are the host's own (UIDs outside the container range "
                                           "524288-1879048191)")
                    : strcmp(g->value, "wide-uids") == 0
                            ? asprintf(&s, "a machine with more than 65536 UIDs (the slots of other machines, now or "
                                           "when they are built)")
                    : strncmp(g->value, "shared-uids:/", 13) == 0
                            ? asprintf(&s, "a machine whose users are also those of a running container (%s)",
                                       g->value + 12)
                    : strncmp(g->value, "shared-uids:", 12) == 0
                            ? asprintf(&s, "a machine whose users are also those of the machine '%s' on the host (their "
                                           "UID ranges overlap)",
                                       g->value + 12)
                    : strcmp(g->value, "idmapped-bind") == 0
                            ? asprintf(&s, "a bind whose files the machine's users own as the host's do (idmap)")
                            : asprintf(&s, "a privileged machine (its root is UID 0 on the host)");
                break;
        case PRIV_CAPABILITY:
                n = strcmp(g->value, "all") == 0 ? asprintf(&s, "every capability")
                                                 : asprintf(&s, "the capability %s", g->value);
                break;
        case PRIV_SYSCALL:
                n = asprintf(&s, "the system call%s %s", g->value[0] == '@' ? " group" : "", g->value);
                break;
        case PRIV_BIND:
                n = g->value[0] == '+'
                            ? asprintf(&s, "any host path, %s: %s is a path in the machine's tree that systemd "
                                           "resolves on the host, where its '..' and the links the machine makes "
                                           "lead anywhere (judged as the host path /)",
                                       g->read_only ? "read-only" : "read-write", g->value)
                            : asprintf(&s, "the host path %s, %s", g->value, g->read_only ? "read-only" : "read-write");
                break;
        case PRIV_BIND_USER:
                n = asprintf(&s, "the host user %s and its home directory", g->value);
                break;
        case PRIV_DEVICE:
                n = asprintf(&s, "the host device %s", g->value);
                break;
        case PRIV_HOST_NETWORK:
                n = asprintf(&s, "the host's network (no private network)");
                break;
        case PRIV_HOST_INTERFACE:
                n = asprintf(&s, "a host network interface (%s)", g->value);
                break;
        case PRIV_PORT:
                n = asprintf(&s, "a host port forwarded into the machine (%s)", g->value);
                break;
        case PRIV_MODULE:
                n = asprintf(&s, "the host kernel module %s, loaded at boot", g->value);
                break;
        case PRIV_SERVICE:
                n = asprintf(&s, "the service setting %s", g->value);
                break;
        case PRIV_BUILD_NETWORK:
                n = asprintf(&s, "the host's network for the Run= commands during the build (its loopback services "
                                 "and abstract unix sockets, and whatever the host reaches)");
                break;
        default:
                n = asprintf(&s, "%s", g->value);
                break;
        }
        return n < 0 ? NULL : s;
}

/* "[Hooks] DockerStorageDriver=overlay2" for a hook's grant, "[Files] Bind=" for the recipe's. */
static char *source_key(const struct priv_grant *g) {
        char *s = NULL;
        if (g->added_by) {
                /* Without the reason's explanation in parentheses: hooks_explain() says why. */
                const char *close = g->key ? strstr(g->key, "] ") : NULL;
                const char *paren = strstr(g->added_by, " (");
                int len = paren ? (int)(paren - g->added_by) : (int)strlen(g->added_by);
                int n = close ? asprintf(&s, "%.*s%.*s", (int)(close + 2 - g->key), g->key, len, g->added_by)
                              : asprintf(&s, "%.*s", len, g->added_by);
                return n < 0 ? NULL : s;
        }
        return strdup(g->key ? g->key : g->setting);
}

char *priv_grant_describe(const struct priv_grant *g) {
        _cleanup_free_ char *what = priv_grant_what(g), *src = source_key(g), *where = NULL;
        if (!what || !src)
                return NULL;
        if (g->file && asprintf(&where, "%s:%u", g->file, g->line) < 0)
                return NULL;
        const char *pre = g->in == PRIV_FILE_MODULES ? "modules-load.d: " : "";
        const char *post = g->in == PRIV_FILE_DROPIN ? " (drop-in)" : "";
        char *s = NULL;
        int n;
        if (g->added_by)
                n = asprintf(&s, "%s%s%s: %s; added by %s%s%s", pre, g->setting, post, what, src, where ? " at " : "",
                             where ? where : "");
        else if (where)
                n = asprintf(&s, "%s%s%s: %s; %s", pre, g->setting, post, what, where);
        else
                n = asprintf(&s, "%s%s%s: %s", pre, g->setting, post, what);
        return n < 0 ? NULL : s;
}

/* ---- the deployed generation ------------------------------------------------------------------ */

int privileges_deployed(struct mkm_ctx *ctx, const char *name, unsigned *ret_gen, struct privileges *ret,
                        struct mkm_err *reterr) {
        _cleanup_(state_freep) struct machine_state *s = NULL;
        int q = state_load(ctx, name, &s, reterr);
        if (q < 0)
                return q;
        if (!s->live)
                return -ENOENT;
        *ret_gen = s->live->gen;
        _cleanup_free_ char *host = fs_path_join(s->live->dir, "host");
        if (!host)
                return -ENOMEM;
        struct stat st;
        if (stat(host, &st) < 0 || !S_ISDIR(st.st_mode))
                return -ENODATA;
        char *paths[3] = {};
        q = hooks_host_file_paths(name, paths);
        if (q < 0)
                return q;
        char *texts[3] = {};
        for (size_t i = 0; q >= 0 && i < 3; i++) {
                _cleanup_free_ char *copy = fs_path_join(host, paths[i]);
                if (!copy) {
                        q = -ENOMEM;
                        break;
                }
                q = fs_read_file_follow_at(AT_FDCWD, copy, HOST_COPY_MAX, &texts[i], NULL);
                if (q == -ENOENT)
                        q = 0;
                else if (q < 0)
                        q = mkm_err_set(reterr, q, "cannot read %s: %s", copy, mkm_strerror(q));
        }
        struct host_files hf = { .nspawn = texts[0], .dropin = texts[1], .modules_load = texts[2] };
        if (q >= 0)
                q = privileges_from_host_files(&hf, NULL, NULL, ret);
        /* The machines it shares UIDs with as the host is now: a machine deployed next to it
         * since is not new on its rebuild. */
        if (q >= 0) {
                _cleanup_close_ int hostfd = open(ctx->host_root ? ctx->host_root : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                q = privileges_add_shared_uids(hostfd, name, hf.nspawn, NULL, NULL, ret);
                if (q < 0)
                        q = mkm_err_set(reterr, q, "cannot read the other machines' settings on the host: %s",
                                        mkm_strerror(q));
                bool net = false;
                if (q >= 0 && (q = gen_had_build_network(s->live, &net)) < 0)
                        q = mkm_err_set(reterr, q, "cannot read the recipe of generation %u of '%s': %s", s->live->gen,
                                        name, mkm_strerror(q));
                if (q >= 0 && net)
                        q = grant_add(ret, PRIV_BUILD_NETWORK, "host", false, PRIV_FILE_BUILD, "[Hooks] RunNetwork=yes",
                                      &(struct credit){ .section = "Hooks", .key = "RunNetwork" });
                if (q < 0)
                        privileges_done(ret);
        }
        host_files_done(&hf);
        for (size_t i = 0; i < 3; i++)
                free(paths[i]);
        return q;
}

/* ---- assessing -------------------------------------------------------------------------------- */

int privileges_judge(const struct policy *pol, int hostfd, const struct priv_grant *g, char **ret_why) {
        _cleanup_free_ char *why = NULL, *resolved = NULL;
        int q = policy_allows(pol, g, &why);
        if (q < 0)
                return q;
        /* nspawn follows the source's symlinks when the machine starts: a link under an
         * allowed directory must not lead out of it. What exists now is judged where it
         * leads too (resolved inside the host root); what a tenant links later is the
         * reason the policy page says to keep allowed directories free of their links. */
        if (q > 0 && hostfd >= 0 && (g->kind == PRIV_BIND || g->kind == PRIV_DEVICE) && g->value[0] == '/' &&
            chase_in_root(hostfd, g->value, CHASE_NONEXISTENT, &resolved, NULL) >= 0 &&
            !policy_path_under(resolved, g->value)) {
                struct priv_grant r2 = *g;
                r2.value = resolved;
                free(why);
                why = NULL;
                q = policy_allows(pol, &r2, &why);
                if (q < 0)
                        return q;
                if (q == 0) {
                        char *w = NULL;
                        if (asprintf(&w, "it leads to %s on the host, and %s", resolved, why) < 0)
                                return -ENOMEM;
                        free(why);
                        why = w;
                }
        }
        if (ret_why)
                *ret_why = q > 0 ? NULL : TAKE_PTR(why);
        return q;
}

int privileges_judge_all(const struct policy *pol, int hostfd, struct privileges *p, size_t *ret_denied) {
        size_t n_denied = 0;
        for (size_t i = 0; i < p->n; i++) {
                struct priv_grant *g = &p->items[i];
                _cleanup_free_ char *why = NULL, *what = NULL, *src = NULL;
                int q = privileges_judge(pol, hostfd, g, &why);
                if (q < 0)
                        return q;
                if (q > 0)
                        continue;
                if (!(what = priv_grant_what(g)) || !(src = source_key(g)))
                        return -ENOMEM;
                char *where = NULL;
                if (g->file && asprintf(&where, "%s:%u: ", g->file, g->line) < 0)
                        return -ENOMEM;
                const char *pre = g->in == PRIV_FILE_MODULES ? "modules-load.d: " : "";
                free(g->denied);
                int n = g->added_by ? asprintf(&g->denied, "%s%s adds %s%s, %s: %s", where ? where : "", src, pre,
                                               g->setting, what, why ? why : "refused by the policy")
                                    : asprintf(&g->denied, "%s%s%s, %s: %s", where ? where : "", pre, g->setting, what,
                                               why ? why : "refused by the policy");
                free(where);
                if (n < 0) {
                        g->denied = NULL;
                        return -ENOMEM;
                }
                n_denied++;
        }
        if (ret_denied)
                *ret_denied = n_denied;
        return 0;
}

int privileges_assess(struct mkm_ctx *ctx, const struct recipe *r, struct priv_report *ret, struct mkm_err *reterr) {
        _cleanup_(priv_report_done) struct priv_report rep = {};
        _cleanup_(hooks_needs_done) struct hooks_needs needs = {};
        _cleanup_(host_files_done) struct host_files hf = {};
        _cleanup_(policy_freep) struct policy *pol = NULL;
        unsigned sdver = 0;
        (void)hostinfo_systemd_version(ctx, &sdver);
        struct hooks_host host = { .systemd_version = sdver, .cgroup = hostinfo_cgroup_mode(ctx) };
        /* Quietly: the build (or check) says the same things when it computes the files itself. */
        int q = hooks_host_needs(NULL, r, &host, &needs, reterr);
        if (q < 0)
                return q;
        q = hooks_render_host_files(NULL, r, &needs, &hf);
        if (q < 0)
                return q;
        q = privileges_from_host_files(&hf, r, &needs, &rep.grants);
        if (q < 0)
                return q;
        /* Also without a policy: what is new is judged by where sources lead (below). A host root
         * that does not exist yet (a first build into a new --host-root) has no links to follow
         * and no other machines. */
        _cleanup_close_ int hostfd = open(ctx && ctx->host_root ? ctx->host_root : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (hostfd < 0 && errno != ENOENT)
                return mkm_err_set(reterr, negative_errno(), "cannot open the host root: %s", strerror(errno));
        q = privileges_add_shared_uids(hostfd, r->name, hf.nspawn, r, &needs, &rep.grants);
        if (q < 0)
                return mkm_err_set(reterr, q, "cannot read the other machines' settings on the host: %s",
                                   mkm_strerror(q));
        q = privileges_add_build(r, &rep.grants);
        if (q < 0)
                return q;

        q = policy_load(ctx, &pol, reterr);
        if (q < 0)
                return q;
        if (pol && !(rep.policy_path = strdup(pol->path)))
                return -ENOMEM;
        if (pol) {
                q = privileges_judge_all(pol, hostfd, &rep.grants, &rep.n_denied);
                if (q < 0)
                        return q;
        }

        _cleanup_(privileges_done) struct privileges old = {};
        struct mkm_err derr = {};
        q = privileges_deployed(ctx, r->name, &rep.deployed_gen, &old, &derr);
        if (q == -ENOENT)
                rep.deployed = 0;
        else if (q == -ENODATA)
                rep.deployed = -1;
        else if (q < 0) {
                if (reterr)
                        *reterr = derr;
                return q;
        } else {
                rep.deployed = 1;
                for (size_t i = 0; i < rep.grants.n; i++) {
                        struct priv_grant *g = &rep.grants.items[i];
                        bool covered = privileges_cover(&old, g);
                        /* A source under an old one that leads elsewhere through a symlink (the
                         * machine could have made it in a read-write bind: /srv/a/root -> /) is
                         * new unless where it leads was granted too. */
                        _cleanup_free_ char *resolved = NULL;
                        if (covered && hostfd >= 0 && (g->kind == PRIV_BIND || g->kind == PRIV_DEVICE) &&
                            g->value[0] == '/' && chase_in_root(hostfd, g->value, CHASE_NONEXISTENT, &resolved, NULL) >= 0 &&
                            !policy_path_under(resolved, g->value)) {
                                struct priv_grant r2 = *g;
                                r2.value = resolved;
                                covered = privileges_cover(&old, &r2);
                        }
                        if (!covered) {
                                g->fresh = true;
                                rep.n_new++;
                        }
                }
        }
        *ret = rep;
        rep = (struct priv_report){};
        return 0;
}

static int append(char **text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int append(char **text, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&m, fmt, ap);
        va_end(ap);
        char *all = NULL;
        if (n < 0 || asprintf(&all, "%s%s", *text ? *text : "", m) < 0)
                return -ENOMEM;
        free(*text);
        *text = all;
        return 0;
}

int privileges_refusal(const struct priv_report *rep, const char *name, bool allow_new, struct mkm_err *reterr) {
        _cleanup_free_ char *text = NULL;
        int q = 0;
        if (rep->n_denied > 0) {
                q = append(&text, "refusing to build machine '%s': its recipe asks for more than the host's policy %s "
                                  "allows:", name, rep->policy_path ? rep->policy_path : "");
                for (size_t i = 0; q >= 0 && i < rep->grants.n; i++)
                        if (rep->grants.items[i].denied)
                                q = append(&text, "\n%s", rep->grants.items[i].denied);
        } else if (!allow_new && ((rep->deployed > 0 && rep->n_new > 0) || (rep->deployed < 0 && rep->grants.n > 0))) {
                if (rep->deployed > 0)
                        q = append(&text, "refusing to build machine '%s': it would get privileges on the host that its "
                                          "deployed generation %u was not granted (--allow-new-privileges grants them):",
                                   name, rep->deployed_gen);
                else
                        q = append(&text, "refusing to build machine '%s': its deployed generation %u keeps no copy of "
                                          "its host files, so which of these privileges are new cannot be told "
                                          "(--allow-new-privileges grants them):",
                                   name, rep->deployed_gen);
                for (size_t i = 0; q >= 0 && i < rep->grants.n; i++) {
                        const struct priv_grant *g = &rep->grants.items[i];
                        if (rep->deployed > 0 && !g->fresh)
                                continue;
                        _cleanup_free_ char *d = priv_grant_describe(g);
                        q = d ? append(&text, "\nnew: %s", d) : -ENOMEM;
                }
        } else
                return 0;
        if (q < 0)
                return q;
        return mkm_err_set(reterr, -MKM_E_REFUSED, "%s", text);
}
