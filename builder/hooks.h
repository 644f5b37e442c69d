/* SPDX-License-Identifier: MIT */
/* The built-in hooks of [Hooks] and [Network], and the host-side files they imply.
 *
 * In the tree (hooks_apply, after the distro scripts and before normalize), in this order:
 *   1. Copy=                 files from beside the recipe, owners from the TREE's passwd/group
 *   2. RootAuthorizedKeys=   appended to /root/.ssh/authorized_keys (0600, dirs 0700, root)
 *   3. SSH host keys         made at first boot (normalize deletes what the build made) by the
 *                            distro's unit (Arch: sshdgenkeys.service, which sshd.service Wants=)
 *                            or by mkmachine-ssh-keygen.service (Debian has none)
 *   4. Fuse=yes              on systemd < 257: etc/tmpfiles.d/mkmachine-fuse.conf (char 10:229)
 *   5. DockerStorageDriver=  etc/docker/daemon.json "storage-driver" (merged), docker.service
 *   6. [Network] Address=    etc/systemd/network/50-mkmachine-IFACE.network, networkd enabled
 *   7. EnableServices=       with the units above, one units_enable() call (Copy= may add units)
 *   8. Run=                  each command in the sandbox (/bin/sh -c), in order
 *   9. [Exec] PrivateUsers=BASE|pick: every uid/gid of the tree shifted by BASE (shift.h; last,
 *                            so that what Run= created is shifted too). DockerStorageDriver=
 *                            without DockerPrivileged=yes makes pick the default (hooks_userns)
 * On the host (hooks_write_host_files, after deploy_swap): NAME.nspawn, the
 * systemd-nspawn@NAME.service.d/mkmachine.conf drop-in, modules-load.d/mkmachine-NAME.conf. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hostinfo.h"
#include "nspawn.h"

struct mkm_ctx;
struct mkm_err;
struct recipe;

/* Host-side file contents; NULL means "no such file" (a stale one is removed). */
struct host_files {
        char *nspawn;           /* HOST/etc/systemd/nspawn/NAME.nspawn */
        char *dropin;           /* HOST/etc/systemd/system/systemd-nspawn@NAME.service.d/mkmachine.conf */
        char *modules_load;     /* HOST/etc/modules-load.d/mkmachine-NAME.conf */
};
void host_files_done(struct host_files *hf);

/* What the host-side output depends on besides the recipe. */
struct hooks_host {
        unsigned systemd_version;       /* 0 = unknown: emit what every version accepts */
        enum hostinfo_cgroup cgroup;
        unsigned kernel_major, kernel_minor;    /* 0.0 = unknown (only hooks_precheck_host reads them) */
};

/* Docker in the machine (DockerStorageDriver= set), and how:
 *  - user namespaced (the default): the machine's root is an unprivileged host UID
 *    (PrivateUsers=pick unless the recipe says otherwise); the .nspawn gains only
 *    SystemCallFilter=@keyring, and on a hybrid (or unknown) cgroup host the drop-in sets
 *    SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1. Nothing of it is a privilege on the host: nspawn keeps
 *    its full capability set within the user namespace, which is what dockerd and runc need.
 *  - privileged (DockerPrivileged=yes): Capability=all, SystemCallFilter=@keyring bpf,
 *    PrivateUsers=no unless the recipe shifts the tree, SYSTEMD_NSPAWN_USE_CGNS=0 on v1 hosts:
 *    the machine's root is the host's root. */
enum hooks_docker_mode {
        HOOKS_DOCKER_NONE,
        HOOKS_DOCKER_USERNS,
        HOOKS_DOCKER_PRIVILEGED,
};
enum hooks_docker_mode hooks_docker_mode(const struct recipe *r);

/* The user namespace mapping the recipe asks for. */
struct hooks_userns {
        bool shift;             /* PrivateUsers=BASE[:RANGE] or pick: the tree is shifted at build time */
        bool picked;            /* the base was chosen from the machine name (pick) */
        bool implied;           /* pick because the Docker hook defaults to it (PrivateUsers= unset) */
        uint32_t base;
        uint32_t range;
};

#define HOOKS_USERNS_PICK_MIN 0x00080000u       /* systemd's UID_SHIFT_PICK_MIN */
#define HOOKS_USERNS_PICK_MAX 0x6FFF0000u       /* systemd's UID_SHIFT_PICK_MAX */
#define HOOKS_USERNS_RANGE 0x10000u

/* The base PrivateUsers=pick resolves to: sha256 of the name, first 4 bytes big-endian, modulo the
 * number of 64K slots in [PICK_MIN, PICK_MAX], as a slot start. Deterministic per name. */
uint32_t hooks_userns_pick(const char *name);

/* The UID/GID base of the build sandbox's user namespace for machine name (sandbox.h): a 64K slot
 * of the same range, chosen as for PrivateUsers=pick from "NAME/mkmachine-build-sandbox" and
 * never hooks_userns_pick(name) itself, so package code at build time never shares IDs with the
 * machine it builds when that machine runs with PrivateUsers=pick (or avoid, its explicit base).
 * By systemd's convention (UIDS-GIDS.md) no host user is given an ID in this range; a slot whose
 * first or last ID a host user or group has anyway (NSS), any ID of which a machine's settings on
 * the host claim (another machine's root must not be the sandbox's), or that a running
 * systemd-nspawn holds (/run/systemd/nspawn-uid/BASE), is passed over, and so is one whose ID the
 * user database cannot be asked about (a failed lookup). Deterministic per name on a given host.
 * 0 when none of HOOKS_SANDBOX_SLOT_TRIES slots is free. */
#define HOOKS_SANDBOX_SLOT_TRIES 256
uint32_t hooks_sandbox_uid_base(const char *name, uint32_t avoid);
/* Do a machine's settings under the host root hostfd (/etc/systemd/nspawn, /run/systemd/nspawn) or
 * a running container's lock (/run/systemd/nspawn-uid) claim any ID of the slot at base? */
bool hooks_sandbox_slot_taken(int hostfd, uint32_t base);
/* The same with the host check given (tests): avoid is the machine's own explicit PrivateUsers=
 * base (0: none); a slot taken() says is in use, or avoid, or the name's pick slot, is passed
 * over for the next one (at most HOOKS_SANDBOX_SLOT_TRIES tries; then 0). */
uint32_t hooks_sandbox_uid_base_with(const char *name, uint32_t avoid, bool (*taken)(uint32_t base));

/* Read [Exec] PrivateUsers= (the effective value). yes/no/identity/managed/booleans: no shift.
 * Unset with hooks_docker_mode() == HOOKS_DOCKER_USERNS: pick, with implied set.
 * A bad value is -MKM_E_RECIPE "[Exec] PrivateUsers=: expected yes, no, pick, identity or
 * UID[:RANGE] (UID + RANGE within 32 bits), got 'x'". */
int hooks_userns(const struct recipe *r, struct hooks_userns *ret, struct mkm_err *reterr);

/* Warnings before the build: `machinectl login` will fail (no D-Bus, no agetty, no systemd in
 * package_names, the resolved package set; NULL skips these), a host kernel module the hooks
 * need is not loaded, overlay2 over an overlayfs machines dir, Docker or OpenSSH hooks without
 * the package. Emits mkm_warn() and returns how many warnings it emitted. */
int hooks_precheck(struct mkm_ctx *ctx, const struct recipe *r, char *const *package_names);
/* The same with the host facts given (hooks_precheck reads them from ctx's host): also warns
 * when Docker in a user-namespaced machine cannot work or works with less on this host: a v1-only
 * cgroup host (runc cannot create cgroups there), a hybrid one (no resource limits), a kernel
 * before 5.11 with overlay2, a recipe that turns PrivateUsers= off without DockerPrivileged=yes. */
int hooks_precheck_host(struct mkm_ctx *ctx, const struct recipe *r, char *const *package_names,
                        const struct hooks_host *host);

/* What the hooks add on the host for this recipe on this host, before it is rendered: the .nspawn
 * additions (each with its reason, nspawn.h), the drop-in's [Service] lines and the kernel
 * modules, each line with the reason of the hook that asked for it ("Fuse=yes",
 * "DockerStorageDriver=overlay2": the hook's key and value first). privileges.h lists them. */
struct hooks_needs {
        struct hook_nspawn_additions add;
        char **modules;         /* modules-load.d lines, in the order the hooks asked */
        char **modules_why;     /* the reason of each, same length */
        char **service;         /* the drop-in's [Service] lines */
        char **service_why;
};
void hooks_needs_done(struct hooks_needs *n);
/* Pure apart from info lines via ctx (NULL: none). Caller frees *ret with hooks_needs_done. */
int hooks_host_needs(struct mkm_ctx *ctx, const struct recipe *r, const struct hooks_host *host,
                     struct hooks_needs *ret, struct mkm_err *reterr);
/* Why the hook whose reason is why ("DockerStorageDriver=overlay2", "Fuse=yes") needs what it
 * adds on the host, one sentence for the privileges listing; NULL when there is nothing to say.
 * Borrowed static string. */
const char *hooks_explain(const char *why);

/* Render the host files from n (warnings about contradictions via ctx). */
int hooks_render_host_files(struct mkm_ctx *ctx, const struct recipe *r, const struct hooks_needs *n,
                            struct host_files *ret);

/* The host files for this recipe on this host (pure apart from warnings via ctx): both of the
 * above. */
int hooks_host_files(struct mkm_ctx *ctx, const struct recipe *r, const struct hooks_host *host,
                     struct host_files *ret, struct mkm_err *reterr);

/* Run every hook on the staged tree (root: its absolute path, for the sandbox; rootfd: the same
 * directory) and compute the host files. systemd_version as hostinfo_systemd_version() gives it.
 * Files the hooks write get mtime source_date_epoch when >= 0. On failure the tree is left as
 * it is (the caller throws the staging root away). */
int hooks_apply(struct mkm_ctx *ctx, const struct recipe *r, const char *root, int rootfd, unsigned systemd_version,
                int64_t source_date_epoch, struct host_files *ret, struct mkm_err *reterr);

/* Remove the temporary files a killed process pid left while writing name's host files. */
void hooks_remove_host_temporaries(struct mkm_ctx *ctx, const char *name, pid_t pid);

/* The host files of machine name, relative to the host root, in the order of struct host_files:
 * ret[0] NAME.nspawn, ret[1] the drop-in, ret[2] the modules-load.d file. Caller frees each.
 * -EINVAL for a name that cannot be a file name. */
int hooks_host_file_paths(const char *name, char *ret[3]);

/* Write (atomically) or remove the host files of machine name under ctx->host_root. */
int hooks_write_host_files(struct mkm_ctx *ctx, const char *name, const struct host_files *hf,
                           struct mkm_err *reterr);

/* ---- the single steps, exposed for tests; each works through rootfd (chase_in_root) ---- */

int hooks_copy(struct mkm_ctx *ctx, const struct recipe *r, int rootfd, int64_t epoch, struct mkm_err *reterr);
int hooks_authorized_keys(struct mkm_ctx *ctx, const struct recipe *r, int rootfd, int64_t epoch,
                          struct mkm_err *reterr);
/* The unit that makes SSH host keys at first boot: *ret_unit is the one to enable (NULL when the
 * distro's unit does the job or the tree has no ssh-keygen). The keys a build made are removed by
 * normalize_remove_generated(). */
int hooks_ssh_host_keys(struct mkm_ctx *ctx, int rootfd, int64_t epoch, const char **ret_unit, struct mkm_err *reterr);
int hooks_fuse_tree(struct mkm_ctx *ctx, const struct recipe *r, int rootfd, unsigned systemd_version, int64_t epoch,
                    struct mkm_err *reterr);
int hooks_docker_tree(struct mkm_ctx *ctx, const struct recipe *r, int rootfd, int64_t epoch, struct mkm_err *reterr);
/* *ret_iface: the interface the .network file matches (NULL when no Address=). */
int hooks_network_tree(struct mkm_ctx *ctx, const struct recipe *r, int rootfd, int64_t epoch, char **ret_iface,
                       struct mkm_err *reterr);

/* Set the top-level string member key of the JSON object text (NULL or only white space: a new
 * object) and print the object canonically (json-c, pretty): members in their order (key replaced
 * in place or appended; of a repeated member, the last value at the first place), two-space
 * indent, one member or element a line, a newline at the end. -MKM_E_PARSE "not a JSON object
 * (at byte N: why)" for anything else, and for what json-c would not write back as the same
 * JSON (NaN, Infinity, integers beyond 64 bits). Caller owns *ret. */
int hooks_json_set_string(const char *text, size_t len, const char *key, const char *value, char **ret,
                          struct mkm_err *reterr);
