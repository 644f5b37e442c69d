/* SPDX-License-Identifier: MIT */
/* pacman local database writer. */
#include "db-alpm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../ctx.h"
#include "../extract.h"
#include "../util/cleanup.h"
#include "../util/err.h"
#include "../util/fs.h"
#include "../util/hash.h"
#include "../util/strv.h"
#include "pkginfo.h"

#define LOCAL_DB "var/lib/pacman/local"

const char *const db_alpm_meta_names[] = { DB_ALPM_PKGINFO, DB_ALPM_MTREE, DB_ALPM_INSTALL, NULL };

int db_alpm_init(int rootfd, struct mkm_err *reterr) {
        _cleanup_close_ int dfd = fs_mkdir_p_in_root(rootfd, LOCAL_DB, 0755);
        if (dfd < 0)
                return mkm_err_set(reterr, dfd, "cannot create /%s: %s", LOCAL_DB, mkm_strerror(dfd));
        int r = fs_write_file_at(dfd, "ALPM_DB_VERSION", "9\n", 2, 0644);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot write /%s/ALPM_DB_VERSION: %s", LOCAL_DB, mkm_strerror(r));
        return 0;
}

static void field(FILE *b, const char *name, const char *value) {
        if (!value)
                return;
        fputs(name, b);
        fputs("\n", b);
        fputs(value, b);
        fputs("\n\n", b);
}

static void field_num(FILE *b, const char *name, int64_t v) {
        char num[32];
        if (!v)
                return;
        (void)snprintf(num, sizeof num, "%" PRId64, v);
        field(b, name, num);
}

static void field_list(FILE *b, const char *name, char **l) {
        if (!l || !*l)
                return;
        fputs(name, b);
        fputs("\n", b);
        for (; *l; l++) {
                fputs(*l, b);
                fputs("\n", b);
        }
        fputs("\n", b);
}

static int write_file(int dfd, const char *name, const void *data, size_t len, const char *what,
                      struct mkm_err *reterr) {
        int r = fs_write_file_at(dfd, name, data, len, 0644);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot write the local db entry %s/%s: %s", what, name, mkm_strerror(r));
        return 0;
}

int db_alpm_write_pkg(struct mkm_ctx *ctx, int rootfd, const struct pkginfo *pi, const struct extract_result *x,
                      bool explicit, int64_t installdate, unsigned validation, struct mkm_err *reterr) {
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, LOCAL_DB "/%s-%s", pi->name, pi->version) < 0)
                return -ENOMEM;
        if (strchr(pi->name, '/') || strchr(pi->version, '/'))
                return mkm_err_set(reterr, -MKM_E_PARSE, "%s: invalid name or version for the local db", pi->name);
        _cleanup_close_ int dfd = fs_mkdir_p_in_root(rootfd, dir, 0755);
        if (dfd < 0)
                return mkm_err_set(reterr, dfd, "cannot create /%s: %s", dir, mkm_strerror(dfd));
        int r;

        /* desc, in the order pacman 6.0.2's _alpm_local_db_write uses. */
        _cleanup_free_ char *desc = NULL;
        size_t desc_len = 0;
        FILE *d = open_memstream(&desc, &desc_len);
        if (!d)
                return -ENOMEM;
        field(d, "%NAME%", pi->name);
        field(d, "%VERSION%", pi->version);
        field(d, "%BASE%", pi->base);
        field(d, "%DESC%", pi->desc);
        field(d, "%URL%", pi->url);
        field(d, "%ARCH%", pi->arch);
        field_num(d, "%BUILDDATE%", pi->builddate);
        field_num(d, "%INSTALLDATE%", installdate);
        field(d, "%PACKAGER%", pi->packager);
        field_num(d, "%SIZE%", (int64_t)pi->size);
        if (!explicit)
                field(d, "%REASON%", "1");
        field_list(d, "%GROUPS%", pi->groups);
        field_list(d, "%LICENSE%", pi->licenses);
        if (validation) {
                fputs("%VALIDATION%\n", d);
                if (validation & DB_ALPM_VALIDATION_SHA256)
                        fputs("sha256\n", d);
                if (validation & DB_ALPM_VALIDATION_PGP)
                        fputs("pgp\n", d);
                fputs("\n", d);
        }
        field_list(d, "%REPLACES%", pi->replaces);
        field_list(d, "%DEPENDS%", pi->depends);
        field_list(d, "%OPTDEPENDS%", pi->optdepends);
        field_list(d, "%CONFLICTS%", pi->conflicts);
        field_list(d, "%PROVIDES%", pi->provides);
        if (fclose(d) != 0)
                return -ENOMEM;
        r = write_file(dfd, "desc", desc, desc_len, dir, reterr);
        if (r < 0)
                return r;

        /* files: %FILES% then %BACKUP% with the md5 of each backup file as installed. */
        _cleanup_free_ char *files = NULL;
        size_t files_len = 0;
        FILE *f = open_memstream(&files, &files_len);
        if (!f)
                return -ENOMEM;
        field_list(f, "%FILES%", x->files);
        if (pi->backup && *pi->backup) {
                fputs("%BACKUP%\n", f);
                for (char **b = pi->backup; *b; b++) {
                        char md5[HASH_MD5_HEX];
                        /* Only files the package itself installed (pacman skips the others), and
                         * only a regular file: an earlier scriptlet may have planted a FIFO or a
                         * device node at that path to hang or feed this read forever. */
                        struct stat st;
                        _cleanup_close_ int fd = -EBADF;
                        if (strv_contains(x->files, *b))
                                fd = fs_open_in_root(rootfd, *b, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0, 0);
                        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                                mkm_debug(ctx, "%s: backup file /%s is not a file of the package, skipping", pi->name, *b);
                                continue;
                        }
                        r = hash_fd_hex(HASH_MD5, fd, md5, NULL);
                        if (r < 0) {
                                (void)fclose(f);
                                return r;
                        }
                        fputs(*b, f);
                        fputs("\t", f);
                        fputs(md5, f);
                        fputs("\n", f);
                }
                fputs("\n", f);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        r = write_file(dfd, "files", files, files_len, dir, reterr);
        if (r < 0)
                return r;
        const struct extract_member *mtree = extract_result_meta(x, DB_ALPM_MTREE);
        if (mtree) {
                r = write_file(dfd, "mtree", mtree->data, mtree->len, dir, reterr);
                if (r < 0)
                        return r;
        }
        const struct extract_member *install = extract_result_meta(x, DB_ALPM_INSTALL);
        if (install) {
                r = write_file(dfd, "install", install->data, install->len, dir, reterr);
                if (r < 0)
                        return r;
                struct timespec ts[2] = { { .tv_sec = install->mtime }, { .tv_sec = install->mtime } };
                (void)utimensat(dfd, "install", ts, AT_SYMLINK_NOFOLLOW);
        }
        return 0;
}
