/* SPDX-License-Identifier: MIT */
/* libFuzzer target for archive entries through extract (builder/extract.c): the input is a
 * package archive (tar, tar.zst, tar.gz, .pkg.tar.*: whatever libarchive reads) as a mirror might
 * serve it, extracted into a scratch root. The threat is a package that writes outside the root
 * ("../", absolute names, symlinks followed by writes, hard links to outside files), so after
 * every input the target asserts that nothing outside the root changed: the scratch directory
 * holds exactly root/, outside/ (empty) and canary (its bytes unchanged), and the tree holds no
 * device node, FIFO or socket. Nothing may crash, leak or read out of bounds; a failure must
 * carry a message.
 *
 * The archive is extracted twice into the same root: once as a plain data.tar (ownership
 * recorded), then again over that tree as an Arch package (.PKGINFO and friends kept in memory,
 * other top-level dot names skipped). The second pass meets the first one's top-level dot
 * symlinks without creating them itself: that is how a symlink left by an earlier package
 * (followed only with RESOLVE_IN_ROOT) is reached. The scratch directory (scratch.h) is made once per process and
 * the root emptied for each input.
 *
 * Build: make fuzz; run (seeds in tests/fuzz/corpus/extract/):
 *   mkdir -p build/fuzz/corpus/extract
 *   build/fuzz/fuzz-extract -max_total_time=60 build/fuzz/corpus/extract tests/fuzz/corpus/extract */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "extract.h"
#include "util/err.h"
#include "util/fs.h"

#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_entry(int dfd, const char *name, const char *path, const struct stat *st, void *userdata) {
        if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) || S_ISFIFO(st->st_mode) || S_ISSOCK(st->st_mode)) {
                fprintf(stderr, "fuzz-extract: %s is a special file\n", path);
                abort();
        }
        return 0;
}

static void extract_once(int rootfd, int fd, const struct extract_opts *o) {
        struct extract_result res = {};
        struct mkm_err err = {};
        (void)lseek(fd, 0, SEEK_SET);
        if (extract_archive_fd(NULL, rootfd, fd, o, &res, &err) < 0) {
                if (!err.msg[0])
                        abort();        /* a refusal always says why */
                return;
        }
        for (size_t i = 0; res.files && res.files[i]; i++) {
                const char *p = res.files[i];
                if (!*p || p[0] == '/' || strstr(p, "../") || (i > 0 && strcmp(res.files[i - 1], p) >= 0))
                        abort();        /* relative, normalised, sorted, unique */
        }
        for (size_t i = 0; i < res.n_meta; i++)
                if (!res.meta[i].data || res.meta[i].data[res.meta[i].len] != 0 || res.meta[i].len > EXTRACT_META_MAX)
                        abort();
        extract_result_done(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        int rootfd = scratch_reset("fuzz-extract");
        int fd = memfd_create("fuzz-extract", MFD_CLOEXEC);
        if (fd < 0)
                abort();
        if (size && write(fd, data, size) != (ssize_t)size)
                abort();

        static const char *const meta[] = { ".PKGINFO", ".MTREE", ".INSTALL", NULL };
        struct extract_owners *owners = extract_owners_new();
        if (!owners)
                abort();
        /* small caps keep each run fast; the code paths are those of the defaults */
        struct extract_opts plain = { .label = "a", .max_bytes = 4u << 20, .owners = owners };
        extract_once(rootfd, fd, &plain);
        scratch_check_outside();
        /* The second package skips what the first created at the top level under a dot name, so
         * it meets the first one's symlinks (".up -> ../..") without creating them itself. */
        struct extract_opts arch = { .label = "b", .max_bytes = 4u << 20, .meta_names = meta,
                                     .skip_dot_toplevel = true };
        extract_once(rootfd, fd, &arch);
        scratch_check_outside();
        (void)fs_walk(rootfd, 4096, check_entry, NULL);        /* -ELOOP on a deep tree is fine */
        extract_owners_free(owners);
        close(fd);
        close(rootfd);
        return 0;
}
