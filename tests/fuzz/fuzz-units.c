/* SPDX-License-Identifier: MIT */
/* libFuzzer target for systemd unit files through units_enable() (builder/units.c: the
 * conf-parser syntax, [Install] assignments, specifiers, quoting, drop-ins, aliases, templates and
 * the symlinks they make). Unit files come from packages, so their bytes are untrusted, and what
 * they say becomes symlinks in the tree: nothing may crash, leak, read out of bounds, or create
 * anything outside the root (asserted after every input, scratch.h), and a refusal carries a
 * message.
 *
 * The input is up to five files separated by lines "#---" (a comment to the unit parser, so a
 * plain unit file is a valid input as a whole), written into an empty scratch tree as
 *   lib/systemd/system/a.service                      (vendor unit, the first part)
 *   usr/lib/systemd/system/b@.service                 (a template)
 *   etc/systemd/system/a.service.d/override.conf      (a drop-in)
 *   usr/lib/systemd/system/c.target                   (something to be wanted by or aliased to)
 *   etc/os-release                                    (for the %o %w %A %B %M %W specifiers)
 * Then "a" and "b@x.service" are enabled (separately: one missing unit fails the whole call) and
 * "a" again (enabling twice is a no-op or the same error), and units_exists() asked about both.
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
        if (fs_mkdir_p_at(rootfd, dir, 0755) < 0)
                abort();
        int dfd = openat(rootfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 || fs_write_file_at(dfd, strrchr(path, '/') + 1, text, len, 0644) < 0)
                abort();
        close(dfd);
}

/* Every symlink the call made lies under etc/systemd/system (that is all `enable` writes). */
static int check_entry(int dfd, const char *name, const char *path, const struct stat *st, void *userdata) {
        if (S_ISLNK(st->st_mode) && strncmp(path, "./etc/systemd/system/", 21) != 0) {
                fprintf(stderr, "fuzz-units: symlink %s outside etc/systemd/system\n", path);
                abort();
        }
        return 0;
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
        for (size_t i = 0; i < sizeof files / sizeof *files && p <= end; i++) {
                const char *sep = memmem(p, (size_t)(end - p), "\n#---\n", 6);
                const char *stop = sep ? sep + 1 : end;
                put(rootfd, files[i], p, (size_t)(stop - p));
                p = sep ? sep + 6 : end + 1;
        }

        struct mkm_ctx ctx = {};        /* events dropped */
        enable(&ctx, rootfd, "a");
        enable(&ctx, rootfd, "b@x.service");
        enable(&ctx, rootfd, "a.service");
        int r = units_exists(rootfd, "a.service");
        if (r != 0 && r != -ENOENT)
                abort();
        r = units_exists(rootfd, "b@y.service");
        if (r != 0 && r != -ENOENT)
                abort();
        (void)fs_walk(rootfd, 64, check_entry, NULL);
        close(rootfd);
        return 0;
}
