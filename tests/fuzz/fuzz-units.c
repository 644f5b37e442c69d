/* SPDX-License-Identifier: MIT */
/* libFuzzer target for systemd unit files through units_enable() (builder/units.c: the
 * conf-parser syntax, [Install] assignments, specifiers, quoting, drop-ins, aliases, templates and
 * the symlinks they make). Unit files come from packages, so their bytes are untrusted, and what
 * they say becomes symlinks in the tree: nothing may crash, leak, read out of bounds, or create
 * anything outside the root (asserted after every input, scratch.h), and a refusal carries a
 * message.
 *
 * The input is up to six parts separated by lines "#---" (a comment to the unit parser, so a
 * plain unit file is a valid input as a whole). The first five are files, written into an empty
 * scratch tree as
 *   lib/systemd/system/a.service                      (vendor unit, the first part)
 *   usr/lib/systemd/system/b@.service                 (a template)
 *   etc/systemd/system/a.service.d/override.conf      (a drop-in)
 *   usr/lib/systemd/system/c.target                   (something to be wanted by or aliased to)
 *   etc/os-release                                    (for the %o %w %A %B %M %W specifiers)
 * and the sixth is symlinks a hostile package might have left in the tree, one "PATH -> TARGET"
 * a line (PATH relative, without ".."; e.g. "etc/systemd/system/c.target.wants -> ../../../..",
 * "etc/systemd/system/x.service -> /"); they are made first, and the files written through them
 * confined to the root, as the machine would see them.
 * Then "a" and "b@x.service" are enabled (separately: one missing unit fails the whole call) and
 * "a" again (enabling twice is a no-op or the same error), and units_exists() asked about both
 * (it answered -MKM_E_PARSE for an alias symlink to a unit of another type, which units.h did not
 * say; regression input corpus/units/regress-exists-bad-alias).
 *
 * Build: make fuzz; run (seeds in tests/fuzz/corpus/units/):
 *   build/fuzz/fuzz-units -max_total_time=60 build/fuzz/corpus/units tests/fuzz/corpus/units */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "units.h"
#include "util/err.h"
#include "util/fs.h"

#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const files[] = {
        "lib/systemd/system/a.service",
        "usr/lib/systemd/system/b@.service",
        "etc/systemd/system/a.service.d/override.conf",
        "usr/lib/systemd/system/c.target",
        "etc/os-release",
};

static void put(int rootfd, const char *path, const char *text, size_t len) {
        char dir[256];
        snprintf(dir, sizeof dir, "%s", path);
        *strrchr(dir, '/') = 0;
        int dfd = fs_mkdir_p_in_root(rootfd, dir, 0755);        /* the tree's symlinks stay inside */
        if (dfd < 0)
                return;         /* e.g. a symlink to a file on the way */
        (void)fs_write_file_at(dfd, strrchr(path, '/') + 1, text, len, 0644);
        close(dfd);
}

/* "PATH -> TARGET" lines: symlinks in the tree, made inside the root whatever they point to. */
static void put_symlinks(int rootfd, const char *text, size_t len) {
        char *s = strndup(text, len), *save = NULL;
        if (!s)
                abort();
        for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *arrow = strstr(line, " -> ");
                if (!arrow || arrow == line)
                        continue;
                *arrow = 0;
                const char *path = line, *target = arrow + 4;
                if (path[0] == '/' || strstr(path, "..") || memchr(path, 0, strlen(path)) || strlen(path) > 200)
                        continue;
                char dir[256];
                snprintf(dir, sizeof dir, "%s", path);
                char *slash = strrchr(dir, '/');
                const char *leaf = slash ? slash + 1 : dir;
                if (slash)
                        *slash = 0;
                int dfd = slash ? fs_mkdir_p_in_root(rootfd, dir, 0755) : dup(rootfd);
                if (dfd < 0)
                        continue;
                if (*leaf && strcmp(leaf, ".") != 0)
                        (void)symlinkat(target, dfd, leaf);
                close(dfd);
        }
        free(s);
}

/* Symlinks outside etc/systemd/system: in a tree without symlinks of its own, units_enable never
 * makes one. */
static int count_entry(int dfd, const char *name, const char *path, const struct stat *st, void *userdata) {
        if (S_ISLNK(st->st_mode) && strncmp(path, "./etc/systemd/system/", 21) != 0)
                ++*(unsigned *)userdata;
        return 0;
}

static unsigned foreign_symlinks(int rootfd) {
        unsigned n = 0;
        (void)fs_walk(rootfd, 64, count_entry, &n);
        return n;
}

static void enable(struct mkm_ctx *ctx, int rootfd, const char *unit) {
        char *const units[] = { (char *)unit, NULL };
        struct mkm_err err = {};
        int r = units_enable(ctx, rootfd, units, &err);
        if (r < 0 && (!err.msg[0] || err.code != r))
                abort();        /* a refusal always says why */
        scratch_check_outside();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 64 * 1024)
                return 0;
        int rootfd = scratch_reset("fuzz-units");
        const char *p = (const char *)data, *end = p + size;
        const char *part[6] = {};
        size_t part_len[6] = {};
        for (size_t i = 0; i < 6 && p <= end; i++) {
                const char *sep = memmem(p, (size_t)(end - p), "\n#---\n", 6);
                const char *stop = sep ? sep + 1 : end;
                part[i] = p;
                part_len[i] = (size_t)(stop - p);
                p = sep ? sep + 6 : end + 1;
        }
        if (part[5])
                put_symlinks(rootfd, part[5], part_len[5]);
        for (size_t i = 0; i < sizeof files / sizeof *files; i++)
                if (part[i])
                        put(rootfd, files[i], part[i], part_len[i]);
        scratch_check_outside();        /* the harness itself stayed inside */
        unsigned foreign = foreign_symlinks(rootfd);

        struct mkm_ctx ctx = {};        /* events dropped */
        enable(&ctx, rootfd, "a");
        enable(&ctx, rootfd, "b@x.service");
        enable(&ctx, rootfd, "a.service");
        /* Valid names: 0, -ENOENT, or what the search could not judge (units.h); never -EINVAL
         * (that is for the name), never a positive value. */
        int r = units_exists(rootfd, "a.service");
        if (r > 0 || r == -EINVAL)
                abort();
        r = units_exists(rootfd, "b@y.service");
        if (r > 0 || r == -EINVAL)
                abort();
        /* (A tree's own "c.target.wants -> /" makes links land anywhere inside the root, as
         * systemctl --root does: only for a tree without such is the place checked.) */
        if (!part[5] && foreign_symlinks(rootfd) > foreign) {
                fprintf(stderr, "fuzz-units: a symlink appeared outside etc/systemd/system\n");
                abort();
        }
        close(rootfd);
        return 0;
}
