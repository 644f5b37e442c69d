/* SPDX-License-Identifier: MIT */
/* pacman .INSTALL scriptlets and ldconfig, run in the sandbox.
 *
 * Threat: the scriptlet is package-supplied shell. It is never interpolated into a command line
 * of ours: the command line is pacman's fixed ". PATH; FUNCTION VERSION" where PATH is ours and
 * VERSION comes from the signed package's .PKGINFO, checked against pacman's version charset
 * before use; the text runs only inside the sandbox. */
#include "alpm-script.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../ctx.h"
#include "../sandbox.h"
#include "../util/cleanup.h"
#include "../util/err.h"
#include "../util/fs.h"
#include "../util/hash.h"
#include "../util/log.h"

#define INSTALL_MAX (1u << 20)
#define GREP_CHUNK 1023 /* pacman reads the script with fgets(line, 1024) */

bool alpm_script_has_function(const char *text, size_t len, const char *function) {
        size_t fl = strlen(function);
        const char *p = text, *end = text + len;
        if (fl == 0)
                return false;
        while (p < end) {
                /* one fgets() chunk: through the newline, at most GREP_CHUNK bytes */
                size_t cl = (size_t)(end - p) < GREP_CHUNK ? (size_t)(end - p) : GREP_CHUNK;
                const char *nl = memchr(p, '\n', cl);
                if (nl)
                        cl = (size_t)(nl - p) + 1;
                /* strstr sees the chunk up to a NUL or, after pacman cuts it, a '#' */
                size_t sl = 0;
                while (sl < cl && p[sl] != '\0' && p[sl] != '#')
                        sl++;
                if (memmem(p, sl, function, fl))
                        return true;
                p += cl;
        }
        return false;
}

static bool safe_word(const char *s) {
        if (!s || !*s)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("._+~@:-", *p)))
                        return false;
        return true;
}

int alpm_script_run(struct mkm_ctx *ctx, const char *root, int rootfd, const char *pkgname, const char *install_text,
                    size_t len, const char *function, const char *version, const char *oldversion,
                    const struct sandbox_opts *base, struct mkm_err *reterr) {
        if (!install_text)
                return 0;
        if (!safe_word(function) || strchr(function, ':') || !safe_word(version) ||
            (oldversion && !safe_word(oldversion)))
                return mkm_err_set(reterr, -EINVAL, "%s: refusing to run scriptlet %s with version '%s'", pkgname,
                                   function ? function : "(null)", version ? version : "(null)");
        if (!alpm_script_has_function(install_text, len, function)) {
                mkm_debug(ctx, "%s: scriptlet has no %s", pkgname, function);
                return 0;
        }
        if (!sandbox_tree_has_exec(rootfd, "bin/sh")) {
                mkm_debug(ctx, "%s: no /bin/sh in the tree, skipping its %s scriptlet", pkgname, function);
                return 0;
        }

        /* Reproducible stand-in for mkdtemp's random part. */
        char digest[HASH_SHA256_HEX];
        int r = hash_buf_hex(HASH_SHA256, install_text, len, digest);
        if (r < 0)
                return r;
        static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        char rnd[7];
        for (size_t i = 0; i < 6; i++) {
                unsigned v = 0;
                (void)sscanf(digest + 2 * i, "%2x", &v);
                rnd[i] = alnum[v % (sizeof alnum - 1)];
        }
        rnd[6] = 0;
        char path[64], cmdline[768];
        (void)snprintf(path, sizeof path, "/tmp/alpm_%s/.INSTALL", rnd);
        if (oldversion)
                (void)snprintf(cmdline, sizeof cmdline, ". %s; %s %s %s", path, function, version, oldversion);
        else
                (void)snprintf(cmdline, sizeof cmdline, ". %s; %s %s", path, function, version);
        mkm_debug(ctx, "%s: executing \"%s\"", pkgname, cmdline);

        struct sandbox_file file = { .path = path, .data = install_text, .len = len, .mode = 0644 };
        struct sandbox_opts o = base ? *base : (struct sandbox_opts){ .source_date_epoch = -1 };
        o.files = &file;
        o.n_files = 1;
        o.stdin_data = NULL;
        o.stdin_len = 0;
        char *argv[] = { "/bin/sh", "-c", cmdline, NULL };
        struct mkm_err e = {};
        r = sandbox_run(ctx, root, argv, &o, NULL, &e);
        if (r == -MKM_E_SCRIPT) {
                mkm_warn(ctx, "%s: %s scriptlet: command failed to execute correctly, ignoring: %s", pkgname, function,
                         e.msg);
                return 0;
        }
        if (r < 0)
                return mkm_err_set(reterr, r, "%s: %s scriptlet: %s", pkgname, function, e.msg);
        return 0;
}

static int read_entry(struct archive *a, struct archive_entry *e, const char *name, char **ret, size_t *ret_len,
                      struct mkm_err *reterr) {
        if (archive_entry_size(e) > (la_int64_t)INSTALL_MAX || archive_entry_size(e) < 0)
                return mkm_err_set(reterr, -EFBIG, "%s is larger than 1 MiB", name);
        size_t size = (size_t)archive_entry_size(e);
        char *buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        size_t have = 0;
        while (have < size) {
                la_ssize_t got = archive_read_data(a, buf + have, size - have);
                if (got <= 0) {
                        free(buf);
                        return mkm_err_set(reterr, -MKM_E_ARCHIVE, "cannot read %s: %s", name,
                                           got < 0 ? archive_error_string(a) : "short read");
                }
                have += (size_t)got;
        }
        buf[size] = 0;
        free(*ret);
        *ret = buf;
        *ret_len = size;
        return 0;
}

int alpm_script_read_install(int fd, char **ret_install, size_t *ret_install_len, struct mkm_err *reterr) {
        _cleanup_free_ char *install = NULL;
        size_t install_len = 0;
        struct archive *a = archive_read_new();
        int r = 0;
        if (!a)
                return -ENOMEM;
        archive_read_support_filter_all(a);
        archive_read_support_format_all(a);
        if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
                r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "cannot read package: %s", archive_error_string(a));
                goto out;
        }
        for (;;) {
                struct archive_entry *e;
                int ar = archive_read_next_header(a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN) {
                        r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "cannot read package: %s", archive_error_string(a));
                        goto out;
                }
                const char *name = archive_entry_pathname(e);
                if (!name)
                        break;
                if (strncmp(name, "./", 2) == 0)
                        name += 2;
                if (name[0] != '.' || strchr(name, '/'))
                        break;  /* the files begin: makepkg puts every metadata entry before them */
                if (strcmp(name, ".INSTALL") == 0) {
                        r = read_entry(a, e, name, &install, &install_len, reterr);
                        if (r < 0)
                                goto out;
                        break;
                }
        }
        *ret_install = TAKE_PTR(install);
        *ret_install_len = install_len;
out:
        archive_read_free(a);
        return r;
}

int alpm_run_ldconfig(struct mkm_ctx *ctx, const char *root, int rootfd, const struct sandbox_opts *base,
                      struct mkm_err *reterr) {
        _cleanup_close_ int conf = fs_open_in_root(rootfd, "etc/ld.so.conf", O_PATH, 0, 0);
        if (conf < 0)
                return 0;
        if (!sandbox_tree_has_exec(rootfd, "sbin/ldconfig")) {
                mkm_debug(ctx, "no /sbin/ldconfig in the tree, skipping ldconfig");
                return 0;
        }
        mkm_debug(ctx, "running ldconfig");
        struct sandbox_opts o = base ? *base : (struct sandbox_opts){ .source_date_epoch = -1 };
        o.stdin_data = NULL;
        o.stdin_len = 0;
        o.files = NULL;
        o.n_files = 0;
        /* pacman: execv("/sbin/ldconfig", { "ldconfig", NULL }); we run the same file. */
        char *argv[] = { "/sbin/ldconfig", NULL };
        struct mkm_err e = {};
        int r = sandbox_run(ctx, root, argv, &o, NULL, &e);
        if (r == -MKM_E_SCRIPT) {
                mkm_warn(ctx, "ldconfig: command failed to execute correctly, ignoring: %s", e.msg);
                return 0;
        }
        if (r < 0)
                return mkm_err_set(reterr, r, "ldconfig: %s", e.msg);
        return 0;
}
