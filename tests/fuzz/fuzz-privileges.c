/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the privileges derivation and the host policy (privileges.c, policy.c):
 * the input is up to four parts separated by NUL bytes: NAME.nspawn, the drop-in, the
 * modules-load.d file (the values in them come from untrusted recipes: binds with escaped
 * colons, capability and system call lists, network keys), and a policy.conf. Every grant is
 * described and judged by the policy when it parses. Beyond "no crash, no leak": every grant has
 * a kind, a value and a setting; a grant covers itself unless it is the "unreadable" one (a file
 * that could not be judged is new every time); policy_path_under agrees with
 * itself for a path and the same path with a trailing slash; and the first line of the .nspawn
 * part, read as a PrivateUsers= value (nspawn_parse_private_users), gives only ranges systemd
 * can use (RANGE > 0, BASE not 65535 or 4294967295, BASE + RANGE within 32 bits) that read back
 * the same from their decimal form. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "hooks.h"
#include "nspawn.h"
#include "policy.h"
#include "privileges.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *part(const uint8_t **p, const uint8_t *end) {
        if (*p > end)
                return NULL;
        const uint8_t *z = memchr(*p, 0, (size_t)(end - *p));
        size_t n = z ? (size_t)(z - *p) : (size_t)(end - *p);
        char *s = malloc(n + 1);
        if (!s)
                abort();
        memcpy(s, *p, n);
        s[n] = 0;
        *p = z ? z + 1 : end + 1;
        return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *p = data, *end = data + size;
        char *parts[4];
        for (size_t i = 0; i < 4; i++)
                parts[i] = part(&p, end);
        if (parts[0]) {
                char line[256];
                (void)snprintf(line, sizeof line, "%.*s", (int)strcspn(parts[0], "\n"), parts[0]);
                enum nspawn_userns mode;
                uint32_t base, range, b2, r2;
                if (nspawn_parse_private_users(line, &mode, &base, &range) && mode == NSPAWN_USERNS_FIXED &&
                    base != UINT32_MAX) {
                        if (range == 0 || base == 0xFFFF || (uint64_t)base + range > UINT32_MAX)
                                abort();
                        char canon[32];
                        (void)snprintf(canon, sizeof canon, "%" PRIu32 ":%" PRIu32, base, range);
                        if (!nspawn_parse_uid_range(canon, &b2, &r2) || b2 != base || r2 != range)
                                abort();
                }
        }
        struct host_files hf = { .nspawn = parts[0], .dropin = parts[1], .modules_load = parts[2] };
        struct privileges pr = {};
        struct policy *pol = NULL;
        struct mkm_err err = {};
        if (parts[3])
                (void)policy_parse(parts[3], strlen(parts[3]), "/fuzz/policy.conf", &pol, &err);
        if (privileges_from_host_files(&hf, NULL, NULL, &pr) == 0) {
                for (size_t i = 0; i < pr.n; i++) {
                        struct priv_grant *g = &pr.items[i];
                        if (!priv_kind_to_string(g->kind) || !g->value || !g->setting)
                                abort();
                        struct privileges one = { .items = g, .n = 1 };
                        /* What was granted covers itself, except a file that could not be
                         * judged: that is new every time, whatever was granted before. */
                        bool unreadable = g->kind == PRIV_PRIVILEGED && strcmp(g->value, "unreadable") == 0;
                        if (privileges_cover(&one, g) == unreadable)
                                abort();
                        char *d = priv_grant_describe(g);
                        if (!d)
                                abort();
                        free(d);
                        char *why = NULL;
                        if (pol && policy_allows(pol, g, &why) < 0)
                                abort();
                        free(why);
                        if (g->kind == PRIV_BIND && policy_path_under(g->value, "/") &&
                            !policy_path_under(g->value, g->value))
                                abort();
                }
                privileges_done(&pr);
        }
        policy_free(pol);
        for (size_t i = 0; i < 4; i++)
                free(parts[i]);
        return 0;
}
