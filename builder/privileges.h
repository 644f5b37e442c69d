/* SPDX-License-Identifier: MIT */
/* What a machine is granted on the host, derived from what a build writes there.
 *
 * A recipe is shared, untrusted input, and what it decides lands in /etc/systemd/nspawn/, where
 * systemd trusts privileged keys. Every grant is derived from the host files themselves (the
 * rendered NAME.nspawn, the systemd-nspawn@NAME drop-in and the modules-load.d entry), never from
 * a list of what each hook is known to add: whatever a hook adds is listed because it is in the
 * output. Each grant is then credited to where it comes from: the recipe's own key (file:line),
 * or the hook that added it (its reason, hooks_host_needs(), and its key's file:line).
 *
 * What counts (mkmachine.recipe(5), PRIVILEGES ON THE HOST; systemd-nspawn@.service runs
 * nspawn with -U and --network-veth, so an unset PrivateUsers= is "pick" and an unset [Network]
 * is a private veth):
 *   privileged      PrivateUsers=no (no user namespace: the machine's root is the host's root),
 *                   or identity / yes / a base of 0 (the machine's root is UID 0 on the host),
 *                   UIDs outside the container range ("host-uids"), more than 65536 of them
 *                   ("wide-uids"), UIDs that overlap another machine's on this host
 *                   ("shared-uids:OTHER", privileges_add_shared_uids), an idmapped Bind=
 *                   ("idmapped-bind"), a host file or PrivateUsers= value that cannot be parsed
 *                   ("unreadable": fail closed)
 *   capability      Capability=, AmbientCapability= (each capability, or "all")
 *   syscall         SystemCallFilter= allow-list words (a "~" deny list grants nothing)
 *   bind            Bind=, BindReadOnly=, Overlay=, OverlayReadOnly= host sources (not "+" ones)
 *   bind-user       BindUser= (a host user, with its home directory)
 *   device          a Bind of /dev or below, DeviceAllow= in the drop-in
 *   host-network    [Network] settings that leave no private network
 *   host-interface  Interface=, MACVLAN=, IPVLAN=, Bridge=, Zone=, VirtualEthernetExtra=
 *   port            Port= (a host port forwarded into the machine)
 *   module          a kernel module the host loads at boot (modules-load.d)
 *   service         any other drop-in setting of systemd-nspawn@NAME.service; OOMScoreAdjust=,
 *                   Limit*=, LinkJournal=host|try-host of the .nspawn (the host's resources)
 *   build-network   RunNetwork=yes: the build's Run= commands share the host's network namespace
 *                   (its loopback services, abstract unix sockets, what the host reaches); the
 *                   one grant no host file carries (privileges_add_build) */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nspawn.h"

struct host_files;
struct hooks_needs;
struct mkm_ctx;
struct mkm_err;
struct policy;
struct recipe;

enum priv_kind {
        PRIV_PRIVILEGED,
        PRIV_CAPABILITY,
        PRIV_SYSCALL,
        PRIV_BIND,
        PRIV_BIND_USER,
        PRIV_DEVICE,
        PRIV_HOST_NETWORK,
        PRIV_HOST_INTERFACE,
        PRIV_PORT,
        PRIV_MODULE,
        PRIV_SERVICE,
        PRIV_BUILD_NETWORK,
        _PRIV_KIND_MAX,
        _PRIV_KIND_INVALID = -1,
};

/* "privileged", "capability", ... as in the list above; NULL out of range. */
const char *priv_kind_to_string(enum priv_kind k);

/* Which host file carries the grant. */
enum priv_file {
        PRIV_FILE_NSPAWN,       /* NAME.nspawn */
        PRIV_FILE_DROPIN,       /* systemd-nspawn@NAME.service.d/mkmachine.conf */
        PRIV_FILE_MODULES,      /* modules-load.d/mkmachine-NAME.conf */
        PRIV_FILE_BUILD,        /* none: the build itself (RunNetwork=) */
        _PRIV_FILE_MAX,
};

struct priv_grant {
        enum priv_kind kind;
        char *value;            /* what is granted: "no"/"uid0" (privileged), "CAP_NET_ADMIN" or "all",
                                 * "@keyring", a host path, a user, "/dev/fuse", "host", "Bridge=br0",
                                 * "tcp:80:8080", "overlay", "Environment=X=1" */
        bool read_only;         /* bind: only read-only */
        enum priv_file in;
        char *setting;          /* the line as written: "[Exec] Capability=all", "[Service] DeviceAllow=
                                 * /dev/fuse rwm", "overlay" (modules-load.d) */
        char *key;              /* the recipe key it comes from, "[Files] Bind=" or, when a hook adds
                                 * it, the hook's "[Hooks] DockerStorageDriver="; NULL if unknown */
        char *file;             /* where that key is set; NULL (line 0) if unknown */
        unsigned line;
        char *added_by;         /* the hook's reason ("DockerStorageDriver=overlay2"); NULL when the
                                 * recipe asks for it itself */
        char *denied;           /* set by privileges_assess: the policy's refusal, NULL if allowed */
        bool fresh;             /* set by privileges_assess: the deployed generation lacks it */
};

struct privileges {
        struct priv_grant *items;
        size_t n;
};
void privileges_done(struct privileges *p);

/* Derive the grants from the host files hf. r and needs (each may be NULL) credit each grant:
 * the recipe's own assignment of the same value, else the hook addition or drop-in/modules line
 * (needs) with its reason and its key's origin in r. 0 or -ENOMEM. Caller: privileges_done. */
int privileges_from_host_files(const struct host_files *hf, const struct recipe *r, const struct hooks_needs *needs,
                               struct privileges *ret);

/* Add a privileged grant "shared-uids:OTHER" to p for each other machine on the host (hostfd; -1:
 * none) whose UIDs overlap the ones the .nspawn text gives machine name (its PrivateUsers=BASE
 * [:RANGE]): OTHER is the machine whose HOST/etc/systemd/nspawn/OTHER.nspawn (or, without one,
 * HOST/run/systemd/nspawn/OTHER.nspawn) sets an overlapping BASE[:RANGE], or
 * "/run/systemd/nspawn-uid/BASE" for a container systemd-nspawn runs with PrivateUsers=pick. The
 * machine's root would be the other machine's root on the host (its files, its processes).
 * Credited as privileges_from_host_files() credits the PrivateUsers= line. 0 or -errno. */
int privileges_add_shared_uids(int hostfd, const char *name, const char *nspawn_text, const struct recipe *r,
                               const struct hooks_needs *needs, struct privileges *p);

/* The machines on the host (hostfd; -1: none) but name whose UIDs overlap base..base+range-1, as
 * privileges_add_shared_uids() names them. Caller frees the strv (NULL: none). */
int privileges_sharers(int hostfd, const char *name, uint32_t base, uint32_t range, char ***ret);

/* A .nspawn text's user namespace as systemd-nspawn 252 settles it (NULL text: unset); a file it
 * would not read to the end is -MKM_E_PARSE. */
int privileges_nspawn_userns(const char *nspawn_text, enum nspawn_userns *ret_mode, uint32_t *ret_base,
                             uint32_t *ret_range);

/* Do any machine's settings on the host (hostfd), or a running PrivateUsers=pick container's lock,
 * claim UIDs of base..base+range-1 (as privileges_add_shared_uids() finds them)? true on error. */
bool privileges_uids_in_use(int hostfd, uint32_t base, uint32_t range);

/* Add what the build itself is granted on the host: "build-network" for RunNetwork=yes, credited to
 * r's key. 0 or -ENOMEM. */
int privileges_add_build(const struct recipe *r, struct privileges *p);

/* Is g already granted by old? Capabilities by name or "all", binds under an old source
 * (component-wise, read-write covering read-only), devices under an old device path, the rest
 * by equal value. */
bool privileges_cover(const struct privileges *old, const struct priv_grant *g);

/* "capability all", "host path /srv/x read-write", ...: what g grants, in words. Caller frees. */
char *priv_grant_what(const struct priv_grant *g);
/* One line for g: the setting, what it grants, where it comes from:
 *   [Exec] Capability=all: every capability; added by [Hooks] DockerStorageDriver=overlay2 at x.recipe:11
 *   [Files] Bind=/srv/a:/a: the host path /srv/a, read-write; x.recipe:7
 * Caller frees; NULL on ENOMEM. */
char *priv_grant_describe(const struct priv_grant *g);

/* Everything a decision needs, for the recipe r on this host (ctx: host root, systemd version). */
struct priv_report {
        struct privileges grants;       /* with denied and fresh filled in */
        char *policy_path;              /* HOST/etc/mkmachine/policy.conf when it exists, else NULL */
        size_t n_denied;
        int deployed;                   /* 1: a live generation exists and its grants are known;
                                         * 0: not deployed by mkmachine; -1: deployed, grants unknown */
        unsigned deployed_gen;
        size_t n_new;                   /* grants marked fresh (deployed == 1) */
};
void priv_report_done(struct priv_report *rep);

/* Does pol allow g? As policy_allows(), and a bind or device source that leads elsewhere through
 * a symlink under the host root hostfd (-1: not checked) is judged where it leads too. 1 yes, 0 no
 * (*ret_why, when given, says why; caller frees), negative on error. */
int privileges_judge(const struct policy *pol, int hostfd, const struct priv_grant *g, char **ret_why);

/* Judge every grant of p by pol (privileges_judge): each one refused gets its denied line
 * ("FILE:LINE: " when it has a source line, the setting, what it grants, and why: the policy's
 * FILE:LINE). *ret_denied: how many. Negative on error. */
int privileges_judge_all(const struct policy *pol, int hostfd, struct privileges *p, size_t *ret_denied);

/* Derive the grants of r (hooks_host_needs + the rendered host files), judge them by the host's
 * policy file (policy.h; a bad policy file fails with -MKM_E_PARSE naming its file:line) and
 * compare them with the live generation's host files (its host/ copies in the state). */
int privileges_assess(struct mkm_ctx *ctx, const struct recipe *r, struct priv_report *ret, struct mkm_err *reterr);

/* The grants of the live generation of name, from its host/ copies: -ENOENT when name has no
 * live generation, -ENODATA when it keeps no host/ directory (grants unknown). */
int privileges_deployed(struct mkm_ctx *ctx, const char *name, unsigned *ret_gen, struct privileges *ret,
                        struct mkm_err *reterr);

/* The refusal a build of machine name owes rep: -MKM_E_REFUSED with every grant beyond the policy
 * (each "FILE:LINE: KEY ...: the policy FILE:LINE ..."), else, unless allow_new, every grant the
 * deployed generation lacks (or, when its grants are unknown, every grant), one a line in
 * reterr. 0 when there is nothing to refuse. */
int privileges_refusal(const struct priv_report *rep, const char *name, bool allow_new, struct mkm_err *reterr);
