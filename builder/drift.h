/* SPDX-License-Identifier: MIT */
/* Drift: how the live tree of a machine differs from the manifest it was deployed with. This is
 * what someone changed by hand (a repair that belongs in the recipe, or data a rebuild would
 * throw away), so builds, rollback and rm refuse to replace or delete a tree with blocking drift.
 *
 * What a running machine writes by itself does not block: paths on the runtime list (drift.c,
 * documented in mkmachine(1): resolv.conf, localtime, machine-id, the journal, /var/log,
 * /var/cache, /var/tmp, /var/lib/systemd, /tmp, /run, ...) are reported with runtime=true. A
 * change of the modification time alone, anywhere, is reported ("time") but does not block
 * either: it changes no byte a rebuild would lose. Everything else blocks: changed or removed
 * files, and new files outside the runtime list (/var/lib/docker, a database under /var/lib).
 *
 * xattrs count as the manifest lists them: only those that are content
 * (normalize_xattr_is_content()). A host's label set, changed or removed (security.selinux after
 * a relabel, trusted.*, security.ima) is no drift, not even shown: a rebuild or an import would
 * not carry it either. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct mkm_ctx;
struct mkm_err;

enum drift_kind {
        DRIFT_ADDED,            /* in the tree, not in the manifest */
        DRIFT_REMOVED,          /* in the manifest, not in the tree */
        DRIFT_CHANGED,
        _DRIFT_KIND_MAX,
};

/* One changed attribute of a DRIFT_CHANGED entry. old/new are the manifest's spelling of the
 * value (mode "0644", owner "0:0", size "3", content the sha256, link the escaped target, type
 * "file", rdev "1:3", time the epoch seconds; an xattr's hex value, NULL where it is absent). */
struct drift_change {
        const char *what;       /* static: "type" "content" "size" "mode" "owner" "link" "rdev" "xattr" "time" */
        char *name;             /* "xattr": the attribute's (escaped) name; NULL otherwise */
        char *old_value, *new_value;
};

struct drift_entry {
        char *path;             /* as the manifest writes it: "." or "./etc/hosts", escaped (\ooo) */
        enum drift_kind kind;
        char *what;             /* DRIFT_CHANGED: the changed attributes, space-separated, in the order
                                 * "type content size mode owner link rdev xattrs time"; "" otherwise */
        bool runtime;           /* on the runtime list: shown, not blocking */
        bool blocking;          /* neither runtime nor a change of time stamps alone */
        const char *type;       /* static "dir" "file" "link" "other": the live entry's (the
                                 * manifest's for DRIFT_REMOVED) */
        struct drift_change *changes;   /* DRIFT_CHANGED only */
        size_t n_changes;
};

struct drift {
        struct drift_entry *e;  /* sorted by path (byte order of the raw path) */
        size_t n;
        size_t n_blocking;      /* entries with blocking set */
        size_t n_runtime;       /* entries with runtime set */
        size_t n_kind[_DRIFT_KIND_MAX];
};

/* Compare the tree under rootfd with a manifest text (manifest.h). Reads only: nothing in the
 * tree is clamped, written or touched (O_NOATIME where allowed). *ret is set also when there is
 * no drift (n == 0); caller frees with drift_free(). A malformed manifest fails with
 * -MKM_E_PARSE and "line N: ..." in reterr (callers prefix the file's name). */
int drift_compute(struct mkm_ctx *ctx, int rootfd, const char *manifest, struct drift **ret, struct mkm_err *reterr);
struct drift *drift_free(struct drift *d);
static inline void drift_freep(struct drift **d) {
        (void)drift_free(*d);
}

/* Is path ("./var/log/x", raw or escaped) on the runtime list? */
bool drift_path_is_runtime(const char *path);

/* One line for people: "+ ./path", "- ./path", "M ./path (content, mode 0644→0600)", with
 * " [runtime]" for runtime entries. Caller frees; NULL on ENOMEM. */
char *drift_entry_to_string(const struct drift_entry *e);

/* "added", "removed", "changed". */
const char *drift_kind_to_string(enum drift_kind k);
