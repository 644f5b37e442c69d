/* SPDX-License-Identifier: MIT */
/* The host's policy file and its judgement of a machine's grants (policy.h). */
#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>

#include "ctx.h"
#include "ini.h"
#include "privileges.h"
#include "recipe.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strv.h"

enum policy_value {
        PV_BOOL,
        PV_CAPS,
        PV_WORDS,       /* system call names and @groups */
        PV_PATHS,       /* absolute paths */
        PV_DEVICES,     /* absolute paths under /dev */
        PV_NAMES,       /* user, module or setting names */
};

struct policy_key {
        const char *key;
        enum policy_value type;
        size_t offset;
};

#define BOOL_KEY(k, m) { k, PV_BOOL, offsetof(struct policy, m) }
#define LIST_KEY(k, t, m) { k, t, offsetof(struct policy, m) }
static const struct policy_key policy_keys[] = {
        BOOL_KEY("AllowPrivileged", privileged),
        LIST_KEY("AllowCapabilities", PV_CAPS, capabilities),
        LIST_KEY("AllowSystemCallFilter", PV_WORDS, syscalls),
        LIST_KEY("AllowBindSources", PV_PATHS, bind_sources),
        LIST_KEY("AllowBindUsers", PV_NAMES, bind_users),
        LIST_KEY("AllowDevices", PV_DEVICES, devices),
        BOOL_KEY("AllowHostNetwork", host_network),
        BOOL_KEY("AllowBuildNetwork", build_network),
        BOOL_KEY("AllowHostInterfaces", host_interfaces),
        BOOL_KEY("AllowPorts", ports),
        LIST_KEY("AllowModules", PV_NAMES, modules),
        LIST_KEY("AllowServiceSettings", PV_NAMES, service_settings),
};

struct policy *policy_free(struct policy *p) {
        if (!p)
                return NULL;
        free(p->path);
        struct policy_list *lists[] = { &p->capabilities, &p->syscalls, &p->bind_sources, &p->bind_users,
                                        &p->devices, &p->modules, &p->service_settings };
        for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                strv_free(lists[i]->items);
        free(p);
        return NULL;
}

/* A path's components: no ".", no "..", absolute. */
static bool path_is_clean(const char *p) {
        if (p[0] != '/')
                return false;
        for (const char *s = p; *s;) {
                s += strspn(s, "/");
                size_t n = strcspn(s, "/");
                if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                        return false;
                s += n;
        }
        return true;
}

bool policy_path_under(const char *path, const char *prefix) {
        if (!path_is_clean(path) || !path_is_clean(prefix))
                return false;
        /* Compare component by component: "//" and a trailing "/" mean nothing. */
        const char *a = path, *b = prefix;
        for (;;) {
                b += strspn(b, "/");
                a += strspn(a, "/");
                if (!*b)
                        return true;
                size_t nb = strcspn(b, "/"), na = strcspn(a, "/");
                if (na != nb || strncmp(a, b, na) != 0)
                        return false;
                a += na;
                b += nb;
        }
}

/* The kernel's names by number (linux/capability.h, to CAP_CHECKPOINT_RESTORE in 5.9):
 * systemd reads a decimal number in Capability= as the capability of that number. */
static const char *const cap_names[] = {
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
        "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
        "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
};

/* A number as systemd's safe_atoi() reads it (capability_from_name() tries that first):
 * strtol() with base 0 (a sign, 0x for hex, a leading 0 for octal) after systemd's own "0b" and
 * "0o" prefixes, the whole word, within int. */
static bool systemd_atoi(const char *s, long *ret) {
        int base = 0;
        if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
                base = 2;
                s += 2;
        } else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O')) {
                base = 8;
                s += 2;
        }
        char *end = NULL;
        errno = 0;
        long v = strtol(s, &end, base);
        if (errno != 0 || end == s || *end || v < INT_MIN || v > INT_MAX)
                return false;
        *ret = v;
        return true;
}

char *policy_capability_normalize(const char *name) {
        if (strcasecmp(name, "all") == 0)
                return strdup("all");
        /* A number names the capability of that number, however systemd lets it be spelled
         * (21, +21, 0x15, 025, 0b10101 are CAP_SYS_ADMIN); one beyond the kernel's list is
         * "CAP_<number>", which only "all" covers. */
        long num;
        if (systemd_atoi(name, &num) && num >= 0) {
                char *out = NULL;
                if ((size_t)num < sizeof cap_names / sizeof cap_names[0])
                        return strdup(cap_names[num]);
                return asprintf(&out, "CAP_%ld", num) < 0 ? NULL : out;
        }
        char *out = NULL;
        bool prefixed = strncasecmp(name, "cap_", 4) == 0;
        if (asprintf(&out, "%s%s", prefixed ? "" : "CAP_", name) < 0)
                return NULL;
        for (char *c = out; *c; c++)
                *c = (char)toupper((unsigned char)*c);
        return out;
}

static bool valid_word(const char *w, enum policy_value t) {
        switch (t) {
        case PV_CAPS: {
                const char *s = strncasecmp(w, "cap_", 4) == 0 ? w + 4 : w;
                if (!*s)
                        return false;
                for (; *s; s++)
                        if (!isalnum((unsigned char)*s) && *s != '_')
                                return false;
                return true;
        }
        case PV_WORDS:
                for (const char *s = w + (w[0] == '@'); *s; s++)
                        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
                                return false;
                return w[w[0] == '@'] != 0;
        case PV_PATHS:
                return path_is_clean(w);
        case PV_DEVICES:
                return path_is_clean(w) && policy_path_under(w, "/dev");
        case PV_NAMES:
                for (const char *s = w; *s; s++)
                        if (!isalnum((unsigned char)*s) && !strchr("_-.@", *s))
                                return false;
                return true;
        case PV_BOOL:
                break;
        }
        return false;
}

static const char *expected(enum policy_value t) {
        switch (t) {
        case PV_BOOL:
                return "yes or no";
        case PV_CAPS:
                return "capability names (CAP_NET_ADMIN ...), all or none";
        case PV_WORDS:
                return "system call names or @groups, all or none";
        case PV_PATHS:
                return "absolute paths without '.' or '..' components, or none";
        case PV_DEVICES:
                return "device paths under /dev, all or none";
        case PV_NAMES:
                return "names, all or none";
        }
        return "?";
}

static int add_error(char **errors, const char *path, unsigned line, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int add_error(char **errors, const char *path, unsigned line, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL, *all = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (n < 0 || asprintf(&all, "%s%s%s:%u: %s", *errors ? *errors : "", *errors ? "\n" : "", path, line, m) < 0)
                return -ENOMEM;
        free(*errors);
        *errors = TAKE_PTR(all);
        return 0;
}

static int assign(struct policy *p, const struct policy_key *k, const struct ini_entry *e, char **errors) {
        char *base = (char *)p + k->offset;
        if (k->type == PV_BOOL) {
                int b = recipe_parse_boolean(e->value);
                if (b < 0)
                        return add_error(errors, p->path, e->line, "[Recipes] %s=: expected %s, got '%s'", k->key,
                                         expected(k->type), e->value);
                *(struct policy_bool *)base = (struct policy_bool){ .allow = b, .line = e->line };
                return 0;
        }
        struct policy_list *l = (struct policy_list *)base;
        _cleanup_strv_free_ char **words = NULL;
        int q = strv_split(e->value, " \t", &words);
        if (q < 0)
                return q;
        l->line = e->line;
        if (!words || !words[0] || (strcasecmp(words[0], "none") == 0 && !words[1])) {
                l->items = strv_free(l->items);
                l->all = false;
                return 0;
        }
        if (strcasecmp(words[0], "all") == 0 && !words[1] && k->type != PV_PATHS) {
                l->items = strv_free(l->items);
                l->all = true;
                return 0;
        }
        for (char **w = words; *w; w++) {
                if (!valid_word(*w, k->type) || strcasecmp(*w, "all") == 0 || strcasecmp(*w, "none") == 0)
                        return add_error(errors, p->path, e->line, "[Recipes] %s=: expected %s, got '%s'", k->key,
                                         expected(k->type), *w);
        }
        for (char **w = words; *w; w++) {
                _cleanup_free_ char *v = k->type == PV_CAPS ? policy_capability_normalize(*w) : strdup(*w);
                if (!v)
                        return -ENOMEM;
                if (!strv_contains(l->items, v) && (q = strv_push(&l->items, v)) < 0)
                        return q;
        }
        return 0;
}

int policy_parse(const char *text, size_t len, const char *path, struct policy **ret, struct mkm_err *reterr) {
        struct ini_entry *e = NULL;
        size_t n = 0;
        int q = ini_parse(text, len, path, &e, &n, reterr);
        if (q < 0)
                return q;
        _cleanup_(policy_freep) struct policy *p = calloc(1, sizeof *p);
        _cleanup_free_ char *errors = NULL;
        if (!p || !(p->path = strdup(path))) {
                ini_entries_free(e, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n && q >= 0; i++) {
                if (strcmp(e[i].section, "Recipes") != 0) {
                        if (!e[i].key)
                                q = add_error(&errors, path, e[i].line, "[%s]: unknown section; expected [Recipes]",
                                              e[i].section);
                        continue;
                }
                if (!e[i].key)
                        continue;
                const struct policy_key *k = NULL;
                for (size_t j = 0; j < ELEMENTSOF(policy_keys); j++)
                        if (strcmp(policy_keys[j].key, e[i].key) == 0)
                                k = &policy_keys[j];
                if (!k) {
                        q = add_error(&errors, path, e[i].line, "[Recipes] %s=: unknown key; expected one of "
                                      "AllowPrivileged=, AllowCapabilities=, AllowSystemCallFilter=, AllowBindSources=, "
                                      "AllowBindUsers=, AllowDevices=, AllowHostNetwork=, AllowBuildNetwork=, AllowHostInterfaces=, "
                                      "AllowPorts=, AllowModules=, AllowServiceSettings=",
                                      e[i].key);
                        continue;
                }
                q = assign(p, k, &e[i], &errors);
        }
        ini_entries_free(e, n);
        if (q < 0)
                return q;
        if (errors)
                return mkm_err_set(reterr, -MKM_E_PARSE, "%s", errors);
        *ret = TAKE_PTR(p);
        return 0;
}

int policy_load(struct mkm_ctx *ctx, struct policy **ret, struct mkm_err *reterr) {
        const char *root = ctx && ctx->host_root ? ctx->host_root : "/";
        _cleanup_free_ char *path = fs_path_join(root, "etc/mkmachine/policy.conf"), *text = NULL;
        if (!path)
                return -ENOMEM;
        size_t len = 0;
        int q = fs_read_file_follow_at(AT_FDCWD, path, POLICY_FILE_MAX, &text, &len);
        /* No policy only when there is nothing at the path: a symlink to nothing (a policy
         * moved away, or a link into a file system not mounted yet) fails closed. */
        struct stat st;
        if (q == -ENOENT && lstat(path, &st) < 0 && errno == ENOENT) {
                *ret = NULL;
                return 0;
        }
        /* A host configuration error, as mkmachine.conf's: exit status 2 (usage), also where a
         * build would count a parse error as bad repository data. */
        if (q < 0)
                return mkm_err_set(reterr, -MKM_E_USAGE, "cannot read the policy %s: %s", path, mkm_strerror(q));
        q = policy_parse(text, len, path, ret, reterr);
        if (q == -MKM_E_PARSE && reterr)
                reterr->code = -MKM_E_USAGE;
        return q == -MKM_E_PARSE ? -MKM_E_USAGE : q;
}

/* "the policy FILE:LINE allows WHAT only (KEY=)", or "the policy FILE allows no WHAT (no KEY=)". */
static int why_list(const struct policy *p, const struct policy_list *l, const char *key, const char *what,
                    char **ret) {
        if (!ret)
                return 0;
        if (l->line == 0)
                return asprintf(ret, "the policy %s allows no %s (no %s=)", p->path, what, key) < 0 ? -ENOMEM : 0;
        if (!l->items)
                return asprintf(ret, "the policy %s:%u allows no %s (%s=)", p->path, l->line, what, key) < 0 ? -ENOMEM : 0;
        _cleanup_free_ char *joined = NULL;
        for (char **i = l->items; *i; i++) {
                char *n = NULL;
                if (asprintf(&n, "%s%s%s", joined ? joined : "", joined ? " " : "", *i) < 0)
                        return -ENOMEM;
                free(joined);
                joined = n;
        }
        return asprintf(ret, "the policy %s:%u allows the %s %s only (%s=)", p->path, l->line, what, joined, key) < 0
                       ? -ENOMEM
                       : 0;
}

static int why_bool(const struct policy *p, const struct policy_bool *b, const char *key, const char *what,
                    char **ret) {
        if (!ret)
                return 0;
        if (b->line == 0)
                return asprintf(ret, "the policy %s does not allow %s (no %s=yes)", p->path, what, key) < 0 ? -ENOMEM : 0;
        return asprintf(ret, "the policy %s:%u forbids %s (%s=no)", p->path, b->line, what, key) < 0 ? -ENOMEM : 0;
}

static int judge_bool(const struct policy *p, const struct policy_bool *b, const char *key, const char *what,
                      char **ret_why) {
        if (b->allow)
                return 1;
        int q = why_bool(p, b, key, what, ret_why);
        return q < 0 ? q : 0;
}

enum match { MATCH_EXACT, MATCH_PATH };

static int judge_list(const struct policy *p, const struct policy_list *l, const char *key, const char *what,
                      const char *value, enum match m, char **ret_why) {
        if (l->all)
                return 1;
        for (char **i = l->items; i && *i; i++)
                if (m == MATCH_PATH ? policy_path_under(value, *i) : strcmp(value, *i) == 0)
                        return 1;
        int q = why_list(p, l, key, what, ret_why);
        return q < 0 ? q : 0;
}

int policy_allows(const struct policy *p, const struct priv_grant *g, char **ret_why) {
        if (ret_why)
                *ret_why = NULL;
        switch (g->kind) {
        case PRIV_PRIVILEGED:
                return judge_bool(p, &p->privileged, "AllowPrivileged", "privileged machines", ret_why);
        case PRIV_CAPABILITY:
                /* "all" is allowed only by AllowCapabilities=all, never by a list. */
                return judge_list(p, &p->capabilities, "AllowCapabilities", "capabilities", g->value, MATCH_EXACT,
                                  ret_why);
        case PRIV_SYSCALL:
                return judge_list(p, &p->syscalls, "AllowSystemCallFilter", "system calls", g->value, MATCH_EXACT,
                                  ret_why);
        case PRIV_BIND:
                /* A "+" path (privileges.c): any host path, allowed only with "/". */
                return judge_list(p, &p->bind_sources, "AllowBindSources", "bind sources",
                                  g->value[0] == '+' ? "/" : g->value, MATCH_PATH, ret_why);
        case PRIV_BIND_USER:
                return judge_list(p, &p->bind_users, "AllowBindUsers", "host users", g->value, MATCH_EXACT, ret_why);
        case PRIV_DEVICE:
                return judge_list(p, &p->devices, "AllowDevices", "devices", g->value, MATCH_PATH, ret_why);
        case PRIV_HOST_NETWORK:
                return judge_bool(p, &p->host_network, "AllowHostNetwork", "the host's network", ret_why);
        case PRIV_BUILD_NETWORK:
                return judge_bool(p, &p->build_network, "AllowBuildNetwork", "the host's network during the build",
                                  ret_why);
        case PRIV_HOST_INTERFACE:
                return judge_bool(p, &p->host_interfaces, "AllowHostInterfaces", "host interfaces", ret_why);
        case PRIV_PORT:
                return judge_bool(p, &p->ports, "AllowPorts", "forwarded host ports", ret_why);
        case PRIV_MODULE:
                return judge_list(p, &p->modules, "AllowModules", "kernel modules", g->value, MATCH_EXACT, ret_why);
        case PRIV_SERVICE: {
                /* By the setting's key: "Environment=X=1" is allowed by Environment. */
                _cleanup_free_ char *k = strndup(g->value, strcspn(g->value, "="));
                if (!k)
                        return -ENOMEM;
                return judge_list(p, &p->service_settings, "AllowServiceSettings", "service settings", k, MATCH_EXACT,
                                  ret_why);
        }
        default:
                break;
        }
        /* A kind this policy does not know is refused: a new grant must be allowed explicitly. */
        if (ret_why && asprintf(ret_why, "the policy %s has no key for it", p->path) < 0)
                return -ENOMEM;
        return 0;
}
