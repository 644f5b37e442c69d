/* SPDX-License-Identifier: MIT */
/* Rendering NAME.nspawn from the recipe's pass-through settings and the hooks' additions. */
#include "nspawn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "recipe.h"
#include "util/cleanup.h"
#include "util/strv.h"

static const char *const sections[] = { "Exec", "Files", "Network" };

/* Keys whose assignments accumulate in systemd.nspawn(5) (config_parse_strv and friends in
 * nspawn-gperf.gperf). Parameters= is a list too, but its words are a command line: repeated
 * words are meaningful there, so it is never de-duplicated. */
static const char *const list_keys[] = {
        "Parameters", "Environment", "Capability", "DropCapability", "AmbientCapability", "SystemCallFilter",
        "Bind", "BindReadOnly", "BindUser", "TemporaryFileSystem", "Inaccessible", "Overlay", "OverlayReadOnly",
        "Interface", "MACVLAN", "IPVLAN", "VirtualEthernetExtra", "Port",
};

bool nspawn_parse_uid_range(const char *v, uint32_t *ret_base, uint32_t *ret_range) {
        size_t n = strcspn(v, ":");
        if (n == 0 || n > 10 || (v[0] == '0' && n > 1))
                return false;
        uint64_t base = 0, range = 0x10000;
        for (size_t i = 0; i < n; i++) {
                if (v[i] < '0' || v[i] > '9')
                        return false;
                base = base * 10 + (uint64_t)(v[i] - '0');
        }
        if (base >= UINT32_MAX || base == 0xFFFF)
                return false;
        if (v[n] == ':') {
                const char *r = v + n + 1;
                r += strspn(r, " \t\n\r");
                if (*r == '-')
                        return false;
                char *end = NULL;
                errno = 0;
                unsigned long long x = strtoull(r, &end, 0);
                if (errno != 0 || end == r || *end || x > UINT32_MAX)
                        return false;
                range = x;
        }
        if (range == 0 || base > UINT32_MAX - range)
                return false;
        *ret_base = (uint32_t)base;
        *ret_range = (uint32_t)range;
        return true;
}

bool nspawn_parse_private_users(const char *v, enum nspawn_userns *ret_mode, uint32_t *ret_base, uint32_t *ret_range) {
        *ret_base = UINT32_MAX;
        *ret_range = 0x10000;
        int b = recipe_parse_boolean(v);
        if (b >= 0) {
                *ret_mode = b ? NSPAWN_USERNS_FIXED : NSPAWN_USERNS_NO;
                return true;
        }
        if (strcmp(v, "pick") == 0 || strcmp(v, "identity") == 0) {
                *ret_mode = v[0] == 'p' ? NSPAWN_USERNS_PICK : NSPAWN_USERNS_IDENTITY;
                if (*ret_mode == NSPAWN_USERNS_IDENTITY)
                        *ret_base = 0;
                return true;
        }
        if (!nspawn_parse_uid_range(v, ret_base, ret_range))
                return false;
        *ret_mode = NSPAWN_USERNS_FIXED;
        return true;
}

bool nspawn_key_is_list(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(list_keys); i++)
                if (strcmp(list_keys[i], key) == 0)
                        return true;
        return false;
}

int nspawn_additions_add(struct hook_nspawn_additions *a, enum nspawn_add_kind kind, const char *section,
                         const char *key, const char *value, const char *alias, const char *why) {
        struct nspawn_addition *n = mkm_reallocarray(a->items, a->n + 1, sizeof *n);
        if (!n)
                return -ENOMEM;
        a->items = n;
        struct nspawn_addition it = {
                .kind = kind,
                .section = strdup(section),
                .key = strdup(key),
                .value = strdup(value),
                .alias = alias ? strdup(alias) : NULL,
                .why = strdup(why ? why : "a hook"),
        };
        if (!it.section || !it.key || !it.value || (alias && !it.alias) || !it.why) {
                free(it.section);
                free(it.key);
                free(it.value);
                free(it.alias);
                free(it.why);
                return -ENOMEM;
        }
        a->items[a->n++] = it;
        return 0;
}

void nspawn_additions_done(struct hook_nspawn_additions *a) {
        if (!a)
                return;
        for (size_t i = 0; i < a->n; i++) {
                free(a->items[i].section);
                free(a->items[i].key);
                free(a->items[i].value);
                free(a->items[i].alias);
                free(a->items[i].why);
        }
        free(a->items);
        *a = (struct hook_nspawn_additions){};
}

const char *nspawn_recipe_value(const struct recipe *r, const char *section, const char *key) {
        const char *v = NULL;
        for (size_t i = 0; i < r->n_nspawn; i++) {
                const struct recipe_nspawn_setting *s = &r->nspawn[i];
                if (strcmp(s->section, section) == 0 && strcmp(s->key, key) == 0)
                        v = s->value[0] ? s->value : NULL;
        }
        return v;
}

static int push_unique(char ***l, const char *v, bool dedupe) {
        if (dedupe && strv_contains(*l, v))
                return 0;
        return strv_push(l, v);
}

/* Booleans compare by meaning (PrivateUsers=false is PrivateUsers=no; PrivateUsersOwnership=off
 * is PrivateUsersChown=no), everything else as text. */
static const char *bool_class(const char *v) {
        int b = recipe_parse_boolean(v);
        return b < 0 ? v : b ? "yes" : "no";
}

static bool same_value(const char *a, const char *b) {
        return strcmp(bool_class(a), bool_class(b)) == 0;
}

static int warn(char ***warnings, const char *section, const char *key, const char *value,
                const struct nspawn_addition *a) {
        char *w = NULL;
        if (asprintf(&w, "[%s] %s=%s from the recipe wins, but %s needs %s=%s", section, key, value, a->why, a->key,
                     a->value) < 0)
                return -ENOMEM;
        if (strv_consume(warnings, w) < 0) {
                free(w);
                return -ENOMEM;
        }
        return 0;
}

/* The lines of one key, in output order. */
static int key_values(const struct recipe *r, const struct hook_nspawn_additions *add, const char *section,
                      const char *key, char ***ret, char ***warnings) {
        _cleanup_strv_free_ char **vals = NULL;
        int q;
        if (nspawn_key_is_list(key)) {
                bool dedupe = strcmp(key, "Parameters") != 0;
                for (size_t i = 0; i < r->n_nspawn; i++) {
                        const struct recipe_nspawn_setting *s = &r->nspawn[i];
                        if (strcmp(s->section, section) != 0 || strcmp(s->key, key) != 0)
                                continue;
                        if (!s->value[0]) {
                                vals = strv_free(vals);
                                continue;
                        }
                        if ((q = push_unique(&vals, s->value, dedupe)) < 0)
                                return q;
                }
                for (size_t i = 0; add && i < add->n; i++) {
                        const struct nspawn_addition *a = &add->items[i];
                        if (strcmp(a->section, section) == 0 && strcmp(a->key, key) == 0 &&
                            (q = push_unique(&vals, a->value, dedupe)) < 0)
                                return q;
                }
                *ret = TAKE_PTR(vals);
                return 0;
        }

        const char *v = nspawn_recipe_value(r, section, key);
        bool from_recipe = v;
        for (size_t i = 0; add && i < add->n; i++) {
                const struct nspawn_addition *a = &add->items[i];
                if (strcmp(a->section, section) != 0 || strcmp(a->key, key) != 0)
                        continue;
                if (a->kind == NSPAWN_ADD_FORCE) {
                        v = a->value;
                        from_recipe = false;
                        continue;
                }
                const char *alias_v = a->alias ? nspawn_recipe_value(r, section, a->alias) : NULL;
                if (alias_v) {
                        /* The recipe spelled the setting with its other name: that wins, and this
                         * key is not added (the file would say the same thing twice). */
                        if (!same_value(alias_v, a->value) && (q = warn(warnings, section, a->alias, alias_v, a)) < 0)
                                return q;
                        continue;
                }
                if (!v)
                        v = a->value;   /* the first hook's default; later ones agree or lose */
                else if (from_recipe && !same_value(v, a->value) && (q = warn(warnings, section, key, v, a)) < 0)
                        return q;
        }
        if (v && (q = strv_push(&vals, v)) < 0)
                return q;
        *ret = TAKE_PTR(vals);
        return 0;
}

int nspawn_render(const char *name, const struct recipe *r, const struct hook_nspawn_additions *add, char **ret,
                  char ***ret_warnings) {
        size_t nkeys;
        const struct recipe_key *keys = recipe_known_keys(&nkeys);
        _cleanup_strv_free_ char **warnings = NULL;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        int q = 0;
        bool any = false;
        fprintf(f, "# Generated by mkmachine for the machine '%s'. Edit its recipe and rebuild instead.\n", name);
        for (size_t s = 0; s < ELEMENTSOF(sections) && q >= 0; s++) {
                bool opened = false;
                for (size_t k = 0; k < nkeys && q >= 0; k++) {
                        if (!keys[k].nspawn || strcmp(keys[k].section, sections[s]) != 0)
                                continue;
                        _cleanup_strv_free_ char **vals = NULL;
                        q = key_values(r, add, sections[s], keys[k].key, &vals, &warnings);
                        for (char **v = vals; q >= 0 && v && *v; v++) {
                                if (!opened) {
                                        fprintf(f, "\n[%s]\n", sections[s]);
                                        opened = true;
                                }
                                fprintf(f, "%s=%s\n", keys[k].key, *v);
                                any = true;
                        }
                }
        }
        if (fclose(f) != 0 && q >= 0)
                q = -ENOMEM;
        if (q < 0)
                return q;
        *ret = any ? TAKE_PTR(text) : NULL;
        if (ret_warnings)
                *ret_warnings = TAKE_PTR(warnings);
        return 0;
}

bool nspawn_ifname_valid(const char *name) {
        size_t n = strlen(name);
        if (n == 0 || n > 15 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, "all") == 0 ||
            strcmp(name, "default") == 0)
                return false;
        bool numeric = true;
        for (const unsigned char *t = (const unsigned char *)name; *t; t++) {
                if (*t <= 32 || *t >= 127 || *t == ':' || *t == '/' || *t == '%')
                        return false;
                numeric = numeric && *t >= '0' && *t <= '9';
        }
        return !numeric;
}

/* "HOST[:CONTAINER]": both valid names; without CONTAINER, prefix+HOST is its name. */
static bool iface_pair_valid(const char *word, const char *prefix) {
        char buf[64];
        const char *colon = strchr(word, ':');
        size_t hn = colon ? (size_t)(colon - word) : strlen(word);
        if (hn >= sizeof buf)
                return false;
        memcpy(buf, word, hn);
        buf[hn] = 0;
        if (!nspawn_ifname_valid(buf))
                return false;
        if (colon)
                return nspawn_ifname_valid(colon + 1);
        if (!prefix)
                return true;
        char full[80];
        (void)snprintf(full, sizeof full, "%s%s", prefix, buf);
        return nspawn_ifname_valid(full);
}

const char *nspawn_network_value_invalid(const char *key, const char *value) {
        if (!value[0])
                return NULL;    /* a reset */
        if (strcmp(key, "Zone") == 0) {
                char full[300];
                if (strlen(value) > 200)
                        return "the zone's interface name vz-ZONE must be a valid interface name of at most 15 "
                               "characters";
                (void)snprintf(full, sizeof full, "vz-%s", value);
                return nspawn_ifname_valid(full) ? NULL
                                                 : "the zone's interface name vz-ZONE must be a valid interface name "
                                                   "of at most 15 characters (no blanks, ':', '/' or '%')";
        }
        if (strcmp(key, "Bridge") == 0)
                return nspawn_ifname_valid(value) ? NULL
                                                  : "a bridge must be a valid interface name of at most 15 characters "
                                                    "(no blanks, ':', '/' or '%', not all digits)";
        const char *prefix = strcmp(key, "MACVLAN") == 0 ? "mv-" : strcmp(key, "IPVLAN") == 0 ? "iv-" : NULL;
        if (strcmp(key, "VirtualEthernetExtra") == 0)
                return iface_pair_valid(value, NULL) ? NULL
                                                     : "expected HOST[:CONTAINER], valid interface names of at most 15 "
                                                       "characters";
        if (strcmp(key, "Interface") != 0 && !prefix)
                return NULL;
        _cleanup_strv_free_ char **words = NULL;
        if (strv_split(value, " \t", &words) < 0)
                return "out of memory";
        for (char **w = words; w && *w; w++)
                if (!iface_pair_valid(*w, prefix))
                        return prefix ? "expected interface names HOST[:CONTAINER] whose container side (mv- or iv- "
                                        "and the host name when not given) is a valid interface name of at most 15 "
                                        "characters"
                                      : "expected interface names HOST[:CONTAINER], each a valid interface name of "
                                        "at most 15 characters";
        return NULL;
}
