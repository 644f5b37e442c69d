/* SPDX-License-Identifier: MIT */
/* A machine's generations: what mkmachine keeps on the host for each tree it deployed.
 *
 *   HOST/var/lib/machines/NAME             the live tree (the deployed generation)
 *   HOST/var/lib/machines/.#NAME.gen-N     kept older generations
 *   HOST/var/lib/machines/.#NAME.XXXXXX    staging roots (removed by recovery)
 *   HOST/var/lib/machines/.#NAME.lck       systemd's image lock (state_image_lock)
 *   HOST/var/lib/mkmachine/NAME/.lock      mkmachine's per-machine lock (deploy_begin)
 *   HOST/var/lib/mkmachine/NAME/gen/N/     recipe, recipe-path, lock, manifest, digest, host/, meta
 *
 * A generation directory is written completely and fsynced before its tree is swapped in; the
 * swap (renameat2 RENAME_EXCHANGE) is the single commit point. The live generation is the one
 * whose meta root=DEV:INO equals the live tree's: rename keeps st_dev and st_ino, so no "current"
 * pointer has to be kept in step (the inode decides: a reboot may renumber the device). Everything else (tree names, host files, leftovers of a killed
 * build) is repaired from that by state_recover(), under the per-machine lock. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mkm_ctx;
struct mkm_err;

/* One kept generation. */
struct machine_gen {
        unsigned gen;                   /* N */
        bool live;
        char *dir;                      /* HOST/var/lib/mkmachine/NAME/gen/N */
        char *tree;                     /* HOST/var/lib/machines/NAME or .#NAME.gen-N; NULL when
                                         * no tree carries its root (recovery removes such) */
        char digest[72];                /* "sha256:HEX", "" when unknown (a migrated old tree) */
        int64_t built, source_date_epoch;
        uint64_t deployed_seq;          /* grows each time the generation becomes live */
        size_t packages;
        uint64_t root_dev, root_ino;    /* meta root=DEV:INO */
};

/* A machine mkmachine manages. */
struct machine_state {
        char *name;
        char *state_dir;                /* HOST/var/lib/mkmachine/NAME */
        char *machines_dir;             /* HOST/var/lib/machines */
        struct machine_gen *gens;       /* sorted by gen ascending */
        size_t n_gens;
        struct machine_gen *live;       /* NULL when the live tree has no state (or is missing) */
        bool tree_exists;               /* something is at machines_dir/NAME (lstat) */
        mode_t tree_mode;               /* what it is (S_IFDIR for a tree, S_IFLNK for a link...) */
        uint64_t tree_dev, tree_ino;    /* and its identity when the state was loaded */
};

/* Read the state of machine name (no lock needed; nothing is changed). A machine without a state
 * directory gives a state with no generations (tree_exists tells whether a tree is there).
 * A malformed meta file fails with -MKM_E_PARSE "PATH:LINE: ...". Caller owns *ret. */
int state_load(struct mkm_ctx *ctx, const char *name, struct machine_state **ret, struct mkm_err *reterr);
struct machine_state *state_free(struct machine_state *s);
static inline void state_freep(struct machine_state **s) { (void)state_free(*s); }

/* The names with a state directory under HOST/var/lib/mkmachine, sorted. Caller owns the strv. */
int state_list(struct mkm_ctx *ctx, char ***ret_names, struct mkm_err *reterr);

/* Read one file of a generation ("manifest", "lock", "recipe", "recipe-path", "digest", "meta").
 * -ENOENT (with a message naming the path) when the generation has none. Caller owns *ret_text. */
int state_read_file(const struct machine_gen *g, const char *file, char **ret_text, struct mkm_err *reterr);

/* Is the machine running? 1 when systemd's image lock on HOST/var/lib/machines/.#NAME.lck, or the
 * global one on /run/systemd/nspawn/locks/inode-DEV:INO of the tree, is held by someone (as
 * systemd-nspawn and machinectl take them), 0 when not, <0 on error. */
int state_machine_running(struct mkm_ctx *ctx, const char *name);

/* Take systemd's image lock of name exclusively, the way systemd-nspawn takes it for a writable
 * image, so that nspawn and machinectl cannot start the machine while we replace or remove it.
 * -EBUSY when someone holds it (the machine runs). *ret_fd is released by state_image_unlock()
 * (machines_dir: HOST/var/lib/machines), which removes the lock file as systemd's
 * release_lock_file() does. */
int state_image_lock(struct mkm_ctx *ctx, const char *name, int *ret_fd, struct mkm_err *reterr);
void state_image_unlock(const char *machines_dir, const char *name, int fd);

/* ---- meta ------------------------------------------------------------------------------------ */

struct state_meta {
        unsigned generation;
        uint64_t root_dev, root_ino;
        int64_t built;
        uint64_t deployed;
        size_t packages;
        int64_t source_date_epoch;
        char mkmachine[64];             /* the version that wrote it */
};

/* Parse meta text read from path (for messages). Keys: generation= and root=DEV:INO are required;
 * built=, deployed=, packages=, source_date_epoch= are numbers; mkmachine= a version; unknown
 * keys are ignored (a newer mkmachine may add some). -MKM_E_PARSE "PATH:LINE: ..." otherwise. */
int state_meta_parse(const char *text, const char *path, struct state_meta *ret, struct mkm_err *reterr);
int state_meta_format(const struct state_meta *m, char **ret);

/* ---- writing (the caller holds the per-machine lock) --------------------------------------- */

/* A host file a generation installs: path relative to the host root; content NULL = none. */
struct state_host_file {
        const char *path;
        const char *content;
};

struct state_new_gen {
        const char *recipe, *recipe_path, *lock, *manifest, *digest;
        const char *recipe_files;       /* "PATH\n" for each recipe file read (the recipe and its
                                         * includes): rebuild checks Copy= and RootAuthorizedKeys=
                                         * sources against their directories; NULL: none */
        const char *recipe_reader;      /* "UID\n": whose permissions the sources were read with
                                         * (recipe.h reader_uid), for rebuild; NULL: none */
        const struct state_host_file *host;
        size_t n_host;
        uint64_t root_dev, root_ino;    /* the staging root, which becomes the live tree */
        int64_t source_date_epoch;
        size_t packages;
};

/* Write gen/N (N = one above every generation s has) completely, fsync every file and directory
 * and only then rename it into place: after this returns, a power loss keeps it whole. Its meta
 * says deployed = one above every generation's; *ret_gen = N. */
/* Remove a generation's state directory (".../gen/N"): renamed out of the way (".#rm.N.PID") first,
 * so that a kill during the removal never leaves a generation without its files (state_recover()
 * removes what is left); then removed. -ENOENT when it is not there. */
int state_remove_gen_dir(const char *dir);

int state_write_gen(struct mkm_ctx *ctx, const struct machine_state *s, const struct state_new_gen *g,
                    unsigned *ret_gen, struct mkm_err *reterr);

/* Rewrite g's meta with deployed=seq (atomically, synced). */
int state_set_deployed(const struct machine_gen *g, uint64_t seq, struct mkm_err *reterr);

/* The next deployed sequence number: one above every generation's. */
uint64_t state_next_seq(const struct machine_state *s);

/* Make the host files those of generation live (its host/ copies): write those that differ,
 * remove those another generation (or the standard set of name) has and live does not.
 * live NULL: remove them all (mkmachine rm). */
int state_install_host_files(struct mkm_ctx *ctx, const struct machine_state *s, const struct machine_gen *live,
                             struct mkm_err *reterr);

/* Before a swap to the generation in gen_dir (written completely): remove every host file of the
 * machine that this generation has not, or has with other content. A crash between the swap and
 * state_install_host_files() then leaves either tree with systemd's defaults for what is missing
 * (fewer privileges) until recovery writes them, never one tree with the other's settings (an
 * imported tree with the privileged .nspawn it replaced). */
int state_retire_host_files(struct mkm_ctx *ctx, const struct machine_state *s, const char *gen_dir,
                            struct mkm_err *reterr);

/* Host files that differ from what the live generation installed (none without a live one):
 * changed (other content, or no longer a regular file), added (the live generation has none:
 * a rebuild or rollback would remove it) or removed. Written by hand, most likely: recovery
 * rewrites them only after an interrupted swap (state_host_pending). path: absolute on the host
 * root. Caller frees with state_host_diffs_free(). */
enum state_host_change {
        STATE_HOST_CHANGED,
        STATE_HOST_ADDED,
        STATE_HOST_REMOVED,
};

struct state_host_diff {
        char *path;
        enum state_host_change change;
        unsigned gen;                   /* the generation compared with */
};

const char *state_host_change_to_string(enum state_host_change c);
int state_host_files_diff(struct mkm_ctx *ctx, const struct machine_state *s, struct state_host_diff **ret,
                          size_t *ret_n, struct mkm_err *reterr);
void state_host_diffs_free(struct state_host_diff *d, size_t n);

/* Mark (pending true) before state_retire_host_files(), unmark after state_install_host_files()
 * succeeded: synced, in s's state directory. While marked, state_recover() rewrites the host
 * files from the live generation; otherwise it leaves them as they are (a hand edit is kept, and
 * shown by verify and by the refusal of a rebuild). */
int state_host_pending(const struct machine_state *s, bool pending, struct mkm_err *reterr);
/* Is s marked so (a swap or rm that was interrupted, not yet recovered)? */
bool state_host_is_pending(const struct machine_state *s);

/* Repair everything from the live tree's generation (see the top of this file): migrate the old
 * single-generation layout, rename kept trees to .#NAME.gen-N, remove generations that were never
 * swapped in or whose tree is gone, staging roots and stray gen trees (never NAME itself),
 * temporaries of dead processes, and rewrite the host files from the live generation when a swap
 * was interrupted (state_host_pending; all of them go when no generation is left). The caller
 * holds the per-machine lock. */
int state_recover(struct mkm_ctx *ctx, const char *name, struct mkm_err *reterr);
