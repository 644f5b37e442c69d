/* SPDX-License-Identifier: MIT */
/* NAME.nspawn: the recipe's [Exec] [Files] [Network] pass-through merged with what the hooks need.
 *
 * The rendering is pure (no I/O) and deterministic:
 *   - sections in the order Exec, Files, Network; empty sections are left out;
 *   - keys in the order of systemd.nspawn(5) as recipe_known_keys() lists them (the table in
 *     recipe.c, after systemd's nspawn-gperf.gperf), whatever the order in the recipe;
 *   - an empty assignment ("Key=") in the recipe resets what came before it (as systemd does), and
 *     the file holds the effective values only, never an empty assignment;
 *   - single-valued keys appear once: the recipe's last value, else a hook's default;
 *   - list keys (Bind=, Capability=, SystemCallFilter=, Port=, ...) keep every recipe value in
 *     recipe order, then the hooks' values; an exact duplicate line is written once.
 * A recipe value that contradicts what a hook needs wins, with a warning naming both. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct recipe;

enum nspawn_add_kind {
        NSPAWN_ADD_LIST,        /* appended to a list key */
        NSPAWN_ADD_DEFAULT,     /* a single-valued key, used unless the recipe sets it (or its alias) */
        NSPAWN_ADD_FORCE,       /* a single-valued key that replaces the recipe's value (derived from it,
                                 * e.g. PrivateUsers=pick resolved to a base) */
        _NSPAWN_ADD_KIND_MAX,
};

struct nspawn_addition {
        enum nspawn_add_kind kind;
        char *section;
        char *key;
        char *value;
        char *alias;            /* another key for the same setting (PrivateUsersChown=), or NULL */
        char *why;              /* what needs it, for warnings: "DockerStorageDriver=overlay2" */
};

struct hook_nspawn_additions {
        struct nspawn_addition *items;
        size_t n;
};

/* Append a copy of the given strings (alias may be NULL). 0 or -ENOMEM. */
int nspawn_additions_add(struct hook_nspawn_additions *a, enum nspawn_add_kind kind, const char *section,
                         const char *key, const char *value, const char *alias, const char *why);
void nspawn_additions_done(struct hook_nspawn_additions *a);

/* Whether systemd.nspawn(5) treats the key as a list (several assignments accumulate). */
bool nspawn_key_is_list(const char *key);

/* The recipe's effective value of a single-valued key: the last assignment, NULL if unset or
 * reset by an empty assignment. Borrowed from r. */
const char *nspawn_recipe_value(const struct recipe *r, const char *section, const char *key);

/* Render NAME.nspawn. name is for the header comment. *ret is NULL when nothing would be written
 * (no settings at all). *ret_warnings (may be NULL) receives one sentence per contradiction, NULL
 * if none. Caller owns both. 0 or -ENOMEM. */
int nspawn_render(const char *name, const struct recipe *r, const struct hook_nspawn_additions *add, char **ret,
                  char ***ret_warnings);

/* How systemd-nspawn (252) reads PrivateUsers= in a .nspawn file (config_parse_private_users): */
enum nspawn_userns {
        NSPAWN_USERNS_UNSET,    /* no line it accepts: the command line's (the service's -U: pick) */
        NSPAWN_USERNS_NO,       /* a false boolean */
        NSPAWN_USERNS_FIXED,    /* BASE[:RANGE]; or a true boolean, base UINT32_MAX: the tree owner's */
        NSPAWN_USERNS_PICK,     /* "pick" */
        NSPAWN_USERNS_IDENTITY, /* "identity" */
};

/* BASE[:RANGE] as systemd's parse_userns_uid_range() reads it: BASE decimal without sign,
 * whitespace or a leading zero (parse_uid()), not 65535 or 4294967295; RANGE as strtoul() with
 * base 0 reads it (hex, octal, leading blanks, '+'), 65536 when left out; RANGE > 0 and
 * BASE + RANGE within 32 bits. false for anything else (nspawn ignores such a line). */
bool nspawn_parse_uid_range(const char *v, uint32_t *ret_base, uint32_t *ret_range);

/* One PrivateUsers= value: false when nspawn ignores the line (a value it does not know:
 * "managed" counts as such, since systemd 252 does not know it). */
bool nspawn_parse_private_users(const char *v, enum nspawn_userns *ret_mode, uint32_t *ret_base, uint32_t *ret_range);

/* systemd's ifname_valid() (src/basic/socket-util.c, no flags): 1-15 bytes of printable ASCII
 * without blanks, ':', '/' or '%', not "." "..", "all" or "default", not all digits. */
bool nspawn_ifname_valid(const char *name);

/* Whether systemd-nspawn would act on a [Network] value of key (Zone=, Bridge=, Interface=,
 * MACVLAN=, IPVLAN=, VirtualEthernetExtra=): NULL when it would (or for other keys), else why
 * not (a static string). nspawn ignores such a line with a warning: a Zone= it ignores leaves
 * the machine on the host's network (Private=no), so an invalid one must never count as a
 * private network. */
const char *nspawn_network_value_invalid(const char *key, const char *value);
