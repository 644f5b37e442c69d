/* SPDX-License-Identifier: MIT */
/* A scratch root for fuzz targets that write trees (fuzz-extract, fuzz-units): TOP/root is the
 * tree, TOP/outside/ an empty directory and TOP/canary a file beside it. TOP is made once per
 * process (under $TMPDIR, else /dev/shm, else /tmp) and removed at exit; scratch_reset() empties
 * the root before each input and scratch_check_outside() aborts if anything next to the root
 * appeared, vanished or changed, or if /mkm-fuzz-escape exists (where the seeds' absolute
 * symlinks aim): the targets' way to assert that nothing is written outside. */
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

static const char scratch_canary[] = "the host's file: nothing may ever change it\n";
static char scratch_top[4096];
static int scratch_fd = -1;

static void scratch_cleanup(void) {
        if (scratch_fd >= 0) {
                (void)fs_rm_rf_at(scratch_fd, "root");
                (void)fs_rm_rf_at(scratch_fd, "outside");
                (void)unlinkat(scratch_fd, "canary", 0);
                close(scratch_fd);
                (void)rmdir(scratch_top);
        }
}

static void scratch_setup(const char *name) {
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp)
                tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(scratch_top, sizeof scratch_top, "%s/mkm-%s.XXXXXX", tmp, name);
        if (!mkdtemp(scratch_top))
                abort();
        scratch_fd = open(scratch_top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (scratch_fd < 0 || mkdirat(scratch_fd, "outside", 0755) < 0 ||
            fs_write_file_at(scratch_fd, "canary", scratch_canary, sizeof scratch_canary - 1, 0644) < 0)
                abort();
        atexit(scratch_cleanup);
}

/* An empty root (made on first use); returns its fd, which the caller closes. */
static int scratch_reset(const char *name) {
        if (scratch_fd < 0)
                scratch_setup(name);
        (void)fs_rm_rf_at(scratch_fd, "root");
        if (mkdirat(scratch_fd, "root", 0755) < 0)
                abort();
        int fd = openat(scratch_fd, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                abort();
        return fd;
}

/* Nothing but root/, outside/ (empty) and canary (unchanged) may exist next to the root. */
static void scratch_check_outside(void) {
        DIR *d = fs_opendir_dup(scratch_fd);
        if (!d)
                abort();
        struct dirent *e;
        while ((e = readdir(d))) {
                const char *n = e->d_name;
                if (strcmp(n, ".") && strcmp(n, "..") && strcmp(n, "root") && strcmp(n, "outside") &&
                    strcmp(n, "canary")) {
                        fprintf(stderr, "fuzz: '%s' appeared outside the root\n", n);
                        abort();
                }
        }
        closedir(d);

        int ofd = openat(scratch_fd, "outside", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *o = ofd >= 0 ? fdopendir(ofd) : NULL;
        if (!o)
                abort();
        while ((e = readdir(o)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                        fprintf(stderr, "fuzz: outside/%s was written\n", e->d_name);
                        abort();
                }
        closedir(o);

        char buf[sizeof scratch_canary + 8];
        int cfd = openat(scratch_fd, "canary", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        ssize_t n = cfd >= 0 ? read(cfd, buf, sizeof buf) : -1;
        if (cfd < 0 || fstat(cfd, &st) < 0 || n != (ssize_t)sizeof scratch_canary - 1 ||
            memcmp(buf, scratch_canary, (size_t)n) != 0 || st.st_nlink != 1 || (st.st_mode & 07777) != 0644) {
                fprintf(stderr, "fuzz: the canary outside the root changed\n");
                abort();
        }
        close(cfd);

        /* The seeds' absolute escapes aim here ("abs -> /", then "abs/mkm-fuzz-escape"). */
        if (access("/mkm-fuzz-escape", F_OK) == 0) {
                fprintf(stderr, "fuzz: /mkm-fuzz-escape was written on the host\n");
                abort();
        }
}
