/* SPDX-License-Identifier: MIT */
/* The host's policy: what recipes on this host may ask for (mkmachine.policy(5)).
 *
 * HOST/etc/mkmachine/policy.conf, systemd INI (ini.h), one section [Recipes]. Without the file
 * every grant is allowed (as before there was a policy); with it, a grant is allowed only when
 * a key allows it, and a key left out allows nothing:
 *   AllowPrivileged=no|yes           PrivateUsers=no, identity, yes or a base of 0
 *   AllowCapabilities=CAP_X ...|all  Capability=, AmbientCapability=
 *   AllowSystemCallFilter=W ...|all  SystemCallFilter= allow-list words
 *   AllowBindSources=PATH ...        Bind=, BindReadOnly=, Overlay= sources under a PATH (by
 *                                    components: /srv allows /srv/x, not /srvx); "/" allows all
 *   AllowBindUsers=USER ...|all      BindUser=
 *   AllowDevices=PATH ...|all        Bind= of /dev/..., DeviceAllow= (by components)
 *   AllowHostNetwork=no|yes          no private network
 *   AllowBuildNetwork=no|yes         RunNetwork=yes (the build's Run= steps on the host's network)
 *   AllowHostInterfaces=no|yes       Interface=, MACVLAN=, IPVLAN=, Bridge=, Zone=,
 *                                    VirtualEthernetExtra=
 *   AllowPorts=no|yes                Port=
 *   AllowModules=NAME ...|all        modules-load.d
 *   AllowServiceSettings=KEY ...|all other drop-in settings (by key, "Environment")
 * List keys accumulate over repeated assignments; an empty value or "none" resets the list. An
 * unknown section or key, or a bad value, is -MKM_E_PARSE "FILE:LINE: [Recipes] Key=: expected
 * ..., got '...'" (every error, one a line). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct mkm_ctx;
struct mkm_err;
struct priv_grant;

#define POLICY_FILE_MAX (1u << 20)

struct policy_bool {
        bool allow;
        unsigned line;          /* 0: not set (allow is false) */
};

struct policy_list {
        char **items;           /* NULL: nothing (or all, see below) */
        bool all;
        unsigned line;          /* of the last assignment; 0: not set */
};

struct policy {
        char *path;             /* as named in messages */
        struct policy_bool privileged, host_network, build_network, host_interfaces, ports;
        struct policy_list capabilities, syscalls, bind_sources, bind_users, devices, modules, service_settings;
};

/* Parse a policy (path for messages). Caller owns *ret (policy_free). */
int policy_parse(const char *text, size_t len, const char *path, struct policy **ret, struct mkm_err *reterr);

/* Read HOST/etc/mkmachine/policy.conf (ctx->host_root). *ret is NULL when there is no such file.
 * A bad or unreadable policy is -MKM_E_USAGE (exit status 2, as for mkmachine.conf). */
int policy_load(struct mkm_ctx *ctx, struct policy **ret, struct mkm_err *reterr);

struct policy *policy_free(struct policy *p);
static inline void policy_freep(struct policy **p) {
        (void)policy_free(*p);
}

/* Does p allow g? 1 yes, 0 no (then *ret_why, when ret_why, says which policy line refuses it:
 * "the policy FILE:LINE allows the capabilities CAP_NET_ADMIN only (AllowCapabilities=)", or
 * "the policy FILE allows none (no AllowCapabilities=)"; caller frees), -ENOMEM. */
int policy_allows(const struct policy *p, const struct priv_grant *g, char **ret_why);

/* Is path equal to prefix or below it, by whole components ("/srv" and "/srv/" cover "/srv/a",
 * not "/srvx"; "/" covers every absolute path)? Paths with "." or ".." components never are. */
bool policy_path_under(const char *path, const char *prefix);

/* "CAP_NET_ADMIN" for "net_admin", "cap_net_admin", "CAP_NET_ADMIN" and "12", "0xc" (systemd
 * reads a number, as its safe_atoi() does, as the capability of that number); "all" stays. Caller frees. */
char *policy_capability_normalize(const char *name);
