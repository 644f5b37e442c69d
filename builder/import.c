/* SPDX-License-Identifier: MIT */
/* mkmachine import: a tarball made by mkmachine export (or any tree tarball), checked against
 * the SHA256SUMS (and SHA256SUMS.gpg) beside it, extracted as safely as a package, deployed with
 * the same atomic swap as a build. */
#include "export.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "deploy.h"
#include "extract.h"
#include "fetch.h"
#include "hooks.h"
#include "manifest.h"
#include "policy.h"
#include "privileges.h"
#include "state.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strv.h"
#include "verify.h"

#define SIDE_MAX (1u << 20)     /* SHA256SUMS, its signature, the settings: systemd-pull's cap too */
#define TARBALL_MAX (UINT64_C(256) << 30)

void import_result_done(struct import_result *r) {
        if (!r)
                return;
        free(r->name);
        free(r->target);
        free(r->nspawn);
        *r = (struct import_result){};
}

static bool is_url(const char *s) {
        return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

static int unhex(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* file:///PATH or file://localhost/PATH -> PATH, percent-decoded. A file:// import is a local
 * import: downloading it (libcurl opens the path as it is) would follow a co-tenant's symbolic
 * links and wait on a FIFO, which open_source() refuses, and would copy the tarball for nothing. */
static int file_url_to_path(const char *url, char **ret, struct mkm_err *reterr) {
        /* The scheme and host are case-insensitive (RFC 3986); file:/PATH is file:///PATH. */
        const char *p = url + strlen("file:");
        if (strncmp(p, "//", 2) == 0) {
                p += 2;
                if (strncasecmp(p, "localhost/", 10) == 0)
                        p += strlen("localhost");
        }
        if (*p != '/')
                return mkm_err_set(reterr, -MKM_E_USAGE, "'%s': expected file:///PATH", url);
        size_t n = strcspn(p, "?#");
        _cleanup_free_ char *path = malloc(n + 1);
        if (!path)
                return -ENOMEM;
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
                if (p[i] != '%') {
                        path[w++] = p[i];
                        continue;
                }
                int hi = i + 2 < n ? unhex(p[i + 1]) : -1, lo = hi >= 0 ? unhex(p[i + 2]) : -1;
                if (lo < 0 || (hi == 0 && lo == 0))
                        return mkm_err_set(reterr, -MKM_E_USAGE, "'%s': bad percent escape", url);
                path[w++] = (char)(hi << 4 | lo);
                i += 2;
        }
        path[w] = '\0';
        *ret = TAKE_PTR(path);
        return 0;
}

/* The files of an import, local or downloaded into a private directory. */
struct sources {
        char *tmpdir;           /* downloads, removed at the end; NULL for a local file */
        int tmpdir_lock;        /* tmpdir, flocked while in use (fs_remove_dirs_of leaves it) */
        char *tarball;          /* local paths, for messages; the side files NULL when absent */
        char *sums;
        char *sig;
        char *nspawn;
        int tarball_fd;         /* each opened once by open_source(), and only read through this;
                                 * -EBADF when absent */
        int sums_fd;
        int sig_fd;
        int nspawn_fd;
        char *base;             /* the tarball's file name, as SHA256SUMS lists it */
        char *stem;             /* the base name without .tar.* */
};
#define SOURCES_INIT { .tmpdir_lock = -EBADF, .tarball_fd = -EBADF, .sums_fd = -EBADF, .sig_fd = -EBADF, .nspawn_fd = -EBADF }

/* The download directories of imports that were killed (mkm-import.PID.* of a PID that is gone,
 * ours by owner): nothing else removes them. */
static void remove_stale_downloads(struct mkm_ctx *ctx, const char *tmp) {
        int n = fs_remove_dirs_of(tmp, "mkm-import", 0);
        if (n < 0)
                mkm_warn(ctx, "cannot look for downloads that killed imports left in %s: %s", tmp, mkm_strerror(n));
        if (n > 0)
                mkm_debug(ctx, "removed %d download director%s in %s left by imports that were killed", n,
                          n == 1 ? "y" : "ies", tmp);
}

static void sources_done(struct sources *s) {
        if (s->tmpdir)
                (void)fs_rm_rf_at(AT_FDCWD, s->tmpdir);
        if (s->tmpdir_lock >= 0)
                (void)close(s->tmpdir_lock);
        closep(&s->tarball_fd);
        closep(&s->sums_fd);
        closep(&s->sig_fd);
        closep(&s->nspawn_fd);
        free(s->tmpdir);
        free(s->tarball);
        free(s->sums);
        free(s->sig);
        free(s->nspawn);
        free(s->base);
        free(s->stem);
}

/* "DIR/NAME" from a path or URL whose last component is replaced (systemd's
 * import_url_change_last_component()). */
static char *sibling(const char *pathish, const char *name) {
        const char *slash = strrchr(pathish, '/');
        if (!slash)
                return strdup(name);
        char *s = NULL;
        if (asprintf(&s, "%.*s/%s", (int)(slash - pathish), pathish, name) < 0)
                return NULL;
        return s;
}

/* Open one file of an import, name in dirfd (path names it in messages). Root reads it, from a
 * directory others may write: never through a symbolic link (a co-tenant's NAME.nspawn ->
 * /root/secret would be copied into the machine's world-readable state, and with
 * --trust-settings into /etc/systemd/nspawn), never waiting (O_NONBLOCK: a FIFO opens at once
 * instead of hanging the import until someone writes to it), and only a regular file. The
 * tarball is held to the same rule as the files found beside it, which follow its path. A side
 * file (optional) that does not exist is absent: *ret_fd = -EBADF. */
static int open_source(int dirfd, const char *name, const char *path, bool optional, int *ret_fd,
                       struct mkm_err *reterr) {
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        struct stat st;
        if (fd < 0) {
                int r = negative_errno();
                if (r == -ENOENT && optional) {
                        *ret_fd = -EBADF;
                        return 0;
                }
                if (r == -ELOOP)
                        return mkm_err_set(reterr, -MKM_E_UNSAFE_PATH, "%s is a symbolic link; import follows none%s", path,
                                           optional ? "" : " (give the path of the file it points to)");
                /* A socket: ENXIO. */
                if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
                        return mkm_err_set(reterr, -MKM_E_UNSAFE_PATH, "%s is not a regular file", path);
                return mkm_err_set(reterr, r, "%s: %s", path, mkm_strerror(r));
        }
        if (fstat(fd, &st) < 0)
                return mkm_err_set(reterr, negative_errno(), "%s: %m", path);
        if (!S_ISREG(st.st_mode))
                return mkm_err_set(reterr, -MKM_E_UNSAFE_PATH, "%s is not a regular file", path);
        /* Nor a hard link: with fs.protected_hardlinks=0 anyone may link a root-only file into
         * their directory under the name we look for. */
        if (st.st_nlink > 1)
                return mkm_err_set(reterr, -MKM_E_UNSAFE_PATH, "%s has %ju hard links; import reads only a file of one",
                                   path, (uintmax_t)st.st_nlink);
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
                return mkm_err_set(reterr, negative_errno(), "%s: %m", path);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int sources_get(struct mkm_ctx *ctx, const char *source, const struct import_opts *opts, struct sources *s,
                       struct mkm_err *reterr) {
        _cleanup_free_ char *local = NULL;
        if (strncasecmp(source, "file:/", 6) == 0) {
                int r = file_url_to_path(source, &local, reterr);
                if (r < 0)
                        return r;
                source = local;
        }
        /* A URL's query and fragment are not part of its file name; a path's '?' and '#' are. */
        _cleanup_free_ char *clean = is_url(source) ? strndup(source, strcspn(source, "?#")) : strdup(source);
        if (!clean)
                return -ENOMEM;
        const char *slash = strrchr(clean, '/');
        s->base = strdup(slash ? slash + 1 : clean);
        if (!s->base)
                return -ENOMEM;
        s->stem = export_name_from_file(s->base);
        if (!s->stem)
                return mkm_err_set(reterr, -MKM_E_USAGE, "'%s': expected a file name ending in .tar.xz, .tar.zst, .tar.gz or .tar",
                                   source);
        _cleanup_free_ char *nspawn_name = NULL;
        if (asprintf(&nspawn_name, "%s.nspawn", s->stem) < 0)
                return -ENOMEM;
        const char *names[4] = { s->base, "SHA256SUMS", "SHA256SUMS.gpg", nspawn_name };
        char **slots[4] = { &s->tarball, &s->sums, &s->sig, &s->nspawn };
        int *fd_slots[4] = { &s->tarball_fd, &s->sums_fd, &s->sig_fd, &s->nspawn_fd };

        if (!is_url(source)) {
                /* All four from one directory, opened once: its path is followed as the
                 * administrator typed it, the files in it are not (open_source()). */
                const char *lslash = strrchr(source, '/');
                _cleanup_free_ char *dir = !lslash            ? strdup(".")
                                           : lslash == source ? strdup("/")
                                                              : strndup(source, (size_t)(lslash - source));
                if (!dir)
                        return -ENOMEM;
                _cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dirfd < 0)
                        return mkm_err_set(reterr, negative_errno(), "%s: %m", dir);
                for (size_t i = 0; i < 4; i++) {
                        /* Only what this import reads, as a download fetches only that. */
                        if ((i == 1 && opts->verify == IMPORT_VERIFY_NO) || (i == 2 && opts->verify != IMPORT_VERIFY_SIGNATURE))
                                continue;
                        _cleanup_free_ char *p = i == 0 ? strdup(source) : sibling(source, names[i]);
                        if (!p)
                                return -ENOMEM;
                        int r = open_source(dirfd, i == 0 ? (lslash ? lslash + 1 : source) : names[i], p, i > 0,
                                            fd_slots[i], reterr);
                        if (r < 0)
                                return r;
                        if (*fd_slots[i] >= 0)
                                *slots[i] = TAKE_PTR(p);
                }
                return 0;
        }

        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp)
                tmp = "/var/tmp";
        remove_stale_downloads(ctx, tmp);
        if (asprintf(&s->tmpdir, "%s/mkm-import.%d.XXXXXX", tmp, (int)getpid()) < 0)
                return -ENOMEM;
        if (!mkdtemp(s->tmpdir)) {
                int r = mkm_err_set(reterr, negative_errno(), "cannot create a directory for the download: %s: %m",
                                    s->tmpdir);
                free(s->tmpdir);
                s->tmpdir = NULL;
                return r;
        }
        /* Held until the import ends: an import in another pid namespace sharing the directory
         * sees our PID as gone, and leaves a directory whose lock is held. */
        s->tmpdir_lock = open(s->tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->tmpdir_lock < 0 || flock(s->tmpdir_lock, LOCK_EX | LOCK_NB) < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot lock %s: %m", s->tmpdir);
        struct fetch_item items[4] = {};
        char *urls[4][2] = {};
        char *dests[4] = {};
        int r = 0;
        /* Only what this import reads (as for a local one): the tarball and the settings, and
         * SHA256SUMS unless --verify=no, SHA256SUMS.gpg with --verify=signature. */
        size_t want[4], n = 0;
        want[n++] = 0;
        want[n++] = 3;
        if (opts->verify != IMPORT_VERIFY_NO)
                want[n++] = 1;
        if (opts->verify == IMPORT_VERIFY_SIGNATURE)
                want[n++] = 2;
        const char *order[4];
        char **order_slots[4];
        int *order_fds[4];
        for (size_t i = 0; i < n; i++) {
                order[i] = names[want[i]];
                order_slots[i] = slots[want[i]];
                order_fds[i] = fd_slots[want[i]];
        }
        for (size_t i = 0; i < n; i++) {
                urls[i][0] = i == 0 ? strdup(clean) : sibling(clean, order[i]);
                dests[i] = fs_path_join(s->tmpdir, order[i]);
                if (!urls[i][0] || !dests[i]) {
                        r = -ENOMEM;
                        goto out;
                }
                /* The side files' cap is enforced as they download: a server answering SHA256SUMS
                 * with gigabytes is cut off at SIDE_MAX, not only refused once it is all on disk. */
                items[i] = (struct fetch_item){ .urls = urls[i], .dest = dests[i], .label = order[i],
                                                .max_size = i == 0 ? TARBALL_MAX : SIDE_MAX };
        }
        struct fetch_options fo;
        fetch_options_default(&fo);
        fo.max_size = TARBALL_MAX;
        fo.retries = 1;
        (void)fetch_all(ctx, items, n, &fo, reterr);
        for (size_t i = 0; i < n; i++) {
                if (items[i].result >= 0) {
                        /* Our own download, in our private directory: opened as a local one. */
                        r = open_source(s->tmpdir_lock, order[i], dests[i], false, order_fds[i], reterr);
                        if (r < 0)
                                goto out;
                        *order_slots[i] = TAKE_PTR(dests[i]);
                        continue;
                }
                if (i > 0 && items[i].not_found) {
                        mkm_debug(ctx, "import: %s: not there", urls[i][0]);
                        continue;
                }
                r = mkm_err_set(reterr, items[i].result, "cannot download %s: %s", urls[i][0], items[i].error);
                goto out;
        }
        if (reterr)
                *reterr = (struct mkm_err){};
out:
        for (size_t i = 0; i < 4; i++) {
                free(urls[i][0]);
                free(dests[i]);
        }
        return r;
}

/* Read a small side file whole, through the fd open_source() opened. */
static int read_side(int fd, const char *path, char **ret, size_t *ret_len, struct mkm_err *reterr) {
        int r = fs_read_fd(fd, SIDE_MAX, ret, ret_len);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot read %s: %s", path, mkm_strerror(r));
        return 0;
}

/* What systemd-pull --verify=checksum checks: the tarball and the settings file against
 * SHA256SUMS, and with --verify=signature SHA256SUMS against SHA256SUMS.gpg first. When verified,
 * ret_tarball_hex is the tarball's sha256 as SHA256SUMS lists it (else ""): the extraction must
 * read exactly these bytes again (import_machine()). */
static int check_sources(struct mkm_ctx *ctx, const struct sources *s, const struct import_opts *opts, int tarfd,
                         const char *nspawn, size_t nspawn_len, bool *ret_verified, bool *ret_signed,
                         char ret_tarball_hex[static HASH_SHA256_HEX], uint64_t *ret_tarball_size,
                         struct mkm_err *reterr) {
        *ret_verified = *ret_signed = false;
        ret_tarball_hex[0] = '\0';
        *ret_tarball_size = 0;
        if (opts->verify == IMPORT_VERIFY_NO)
                return 0;
        if (!s->sums) {
                if (opts->verify != IMPORT_VERIFY_AUTO)
                        return mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH, "no SHA256SUMS beside %s: cannot verify it",
                                           s->base);
                mkm_warn(ctx, "import: no SHA256SUMS beside %s; importing it unverified", s->base);
                return 0;
        }
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_side(s->sums_fd, s->sums, &text, &len, reterr);
        if (r < 0)
                return r;
        if (opts->verify == IMPORT_VERIFY_SIGNATURE) {
                if (!s->sig)
                        return mkm_err_set(reterr, -MKM_E_SIG_MISSING, "no SHA256SUMS.gpg beside %s", s->base);
                _cleanup_free_ char *sig = NULL;
                size_t siglen = 0;
                r = read_side(s->sig_fd, s->sig, &sig, &siglen, reterr);
                if (r < 0)
                        return r;
                _cleanup_(verify_keyring_freep) struct verify_keyring *k = NULL;
                r = verify_keyring_new(ctx, opts->keyring, &k, reterr);
                if (r < 0)
                        return mkm_err_prefix(reterr, r, "keyring %s", opts->keyring);
                struct verify_result vr;
                r = verify_detached(k, text, len, sig, siglen, &vr, reterr);
                if (r < 0)
                        return mkm_err_prefix(reterr, r, "%s", s->sig);
                mkm_info(ctx, "SHA256SUMS signed by %s (%s)", vr.fingerprint, vr.uid);
                *ret_signed = true;
        }
        struct export_sum *sums = NULL;
        size_t n = 0;
        r = export_sums_parse(text, len, s->sums, &sums, &n, reterr);
        if (r < 0)
                return r;
        char hex[HASH_SHA256_HEX], tar_hex[HASH_SHA256_HEX] = "";
        struct stat tst;
        uint64_t tsize = 0;
        const struct export_sum *e = export_sums_find(sums, n, s->base);
        if (!e)
                r = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH, "%s does not list %s", s->sums, s->base);
        else if (fstat(tarfd, &tst) < 0)
                r = mkm_err_set(reterr, negative_errno(), "%s: %m", s->tarball);
        /* Its size now and one byte more: a file that grows meanwhile is read that far (and
         * differs), not for as long as someone appends to it. */
        else if ((r = hash_fd_hex_max(HASH_SHA256, tarfd, (uint64_t)tst.st_size + 1, hex, &tsize)) < 0)
                r = mkm_err_set(reterr, r, "reading %s: %s", s->tarball, mkm_strerror(r));
        else if (strcmp(hex, e->hex) != 0)
                r = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH, "%s: sha256 %s, but %s says %s", s->tarball, hex,
                                s->sums, e->hex);
        else
                memcpy(tar_hex, hex, sizeof tar_hex);
        if (r >= 0 && nspawn) {
                const char *nbase = strrchr(s->nspawn, '/');
                nbase = nbase ? nbase + 1 : s->nspawn;
                e = export_sums_find(sums, n, nbase);
                if (!e)
                        r = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH, "%s does not list %s", s->sums, nbase);
                else if ((r = hash_buf_hex(HASH_SHA256, nspawn, nspawn_len, hex)) >= 0 && strcmp(hex, e->hex) != 0)
                        r = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH, "%s: sha256 %s, but %s says %s", s->nspawn,
                                        hex, s->sums, e->hex);
        }
        export_sums_free(sums, n);
        if (r < 0)
                return r;
        memcpy(ret_tarball_hex, tar_hex, HASH_SHA256_HEX);
        *ret_tarball_size = tar_hex[0] ? tsize : 0;
        *ret_verified = true;
        return 0;
}

/* Whether the tarball at fd no longer has the bytes verified (size, sha256 hex): read from its start
 * as far as the verified size and a byte more. A read error counts as changed. */
static bool changed_since_verified(int fd, uint64_t size, const char *hex) {
        char now[HASH_SHA256_HEX];
        uint64_t n = 0;
        if (lseek(fd, 0, SEEK_SET) < 0 || hash_fd_hex_max(HASH_SHA256, fd, size + 1, now, &n) < 0)
                return true;
        return n != size || strcmp(now, hex) != 0;
}

/* --trust-settings puts the exporter's NAME.nspawn where systemd applies its privileged keys: list
 * what it grants the machine on the host and judge it by the host's policy (privileges.h), as a
 * build judges a recipe, before anything is extracted. label names the file in messages. */
static int judge_trusted_settings(struct mkm_ctx *ctx, const char *name, const char *label, char *nspawn,
                                  struct mkm_err *reterr) {
        struct host_files hf = { .nspawn = nspawn };
        _cleanup_(privileges_done) struct privileges p = {};
        int r = privileges_from_host_files(&hf, NULL, NULL, &p);
        if (r < 0)
                return r;
        _cleanup_(policy_freep) struct policy *pol = NULL;
        r = policy_load(ctx, &pol, reterr);
        if (r < 0)
                return r;
        _cleanup_close_ int hostfd = open(ctx->host_root ? ctx->host_root : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (hostfd < 0 && (pol || errno != ENOENT))
                return mkm_err_set(reterr, negative_errno(), "cannot open the host root: %s", strerror(errno));
        r = privileges_add_shared_uids(hostfd, name, nspawn, NULL, NULL, &p);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot read the other machines' settings on the host: %s", mkm_strerror(r));
        if (p.n == 0)
                mkm_info(ctx, "--trust-settings: %s grants the machine '%s' nothing on the host", label, name);
        for (size_t i = 0; i < p.n; i++) {
                _cleanup_free_ char *d = priv_grant_describe(&p.items[i]);
                if (!d)
                        return -ENOMEM;
                mkm_info(ctx, "--trust-settings: %s grants the machine '%s' %s", label, name, d);
        }
        if (!pol)
                return 0;
        size_t n_refused = 0;
        r = privileges_judge_all(pol, hostfd, &p, &n_refused);
        if (r < 0)
                return r;
        _cleanup_free_ char *refused = NULL;
        for (size_t i = 0; i < p.n; i++) {
                if (!p.items[i].denied)
                        continue;
                char *n = NULL;
                if (asprintf(&n, "%s\n  %s: %s", refused ? refused : "", label, p.items[i].denied) < 0)
                        return -ENOMEM;
                free(refused);
                refused = n;
        }
        if (n_refused > 0)
                return mkm_err_set(reterr, -MKM_E_REFUSED,
                                   "import --trust-settings of '%s': %zu setting%s beyond the host's policy %s "
                                   "(import without --trust-settings places them beside the image, where nspawn "
                                   "applies only the unprivileged ones):%s",
                                   name, n_refused, n_refused == 1 ? "" : "s", pol->path, refused);
        return 0;
}

/* A tree owned by a UID of the container range runs in that UID's 64K slot unless trusted settings
 * give it a base of its own: systemd-nspawn's -U (pick, the service's default) and
 * PrivateUsers=yes take the tree owner's slot first, checking only running containers' locks and
 * host users. The exporter chose the owner: a slot another machine here has would make the two
 * machines' roots one. Refused by a policy without privileged machines, else a warning. */
static int judge_tree_slot(struct mkm_ctx *ctx, const char *name, int rootfd, const char *trusted_nspawn,
                           struct mkm_err *reterr) {
        enum nspawn_userns mode = NSPAWN_USERNS_UNSET;
        uint32_t base = UINT32_MAX, range = 0;
        int r = trusted_nspawn ? privileges_nspawn_userns(trusted_nspawn, &mode, &base, &range) : 0;
        if (r < 0)
                return r == -ENOMEM ? r : 0;    /* judged (as privileged) with the settings */
        if (mode == NSPAWN_USERNS_NO || mode == NSPAWN_USERNS_IDENTITY || (mode == NSPAWN_USERNS_FIXED && base != UINT32_MAX))
                return 0;
        struct stat st;
        if (fstat(rootfd, &st) < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot stat the imported tree: %m");
        uint32_t slot = (uint32_t)st.st_uid & 0xFFFF0000u;
        if (slot < HOOKS_USERNS_PICK_MIN || slot > HOOKS_USERNS_PICK_MAX)
                return 0;
        _cleanup_close_ int hostfd = open(ctx->host_root ? ctx->host_root : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_strv_free_ char **who = NULL;
        r = privileges_sharers(hostfd, name, slot, HOOKS_USERNS_RANGE, &who);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot read the other machines' settings on the host: %s", mkm_strerror(r));
        if (!who)
                return 0;
        _cleanup_free_ char *list = NULL;
        for (char **w = who; *w; w++) {
                char *n = NULL;
                if (asprintf(&n, "%s%s'%s'", list ? list : "", list ? ", " : "", *w) < 0)
                        return -ENOMEM;
                free(list);
                list = n;
        }
        _cleanup_(policy_freep) struct policy *pol = NULL;
        r = policy_load(ctx, &pol, reterr);
        if (r < 0)
                return r;
        char what[1024];
        (void)snprintf(what, sizeof what,
                       "its tree is owned by UID %" PRIu32 ", and systemd-nspawn starts it in that UID's slot "
                       "(%" PRIu32 "-%" PRIu32 ", -U and PrivateUsers=yes or pick take the tree owner's slot first), "
                       "whose UIDs %s %s %s on this host: the machine's root would be theirs",
                       (uint32_t)st.st_uid, slot, slot + HOOKS_USERNS_RANGE - 1,
                       strv_length(who) == 1 ? "the machine" : "the machines", list, strv_length(who) == 1 ? "has" : "have");
        if (pol && !pol->privileged.allow) {
                if (pol->privileged.line)
                        return mkm_err_set(reterr, -MKM_E_REFUSED,
                                           "refusing to import machine '%s': %s; the policy %s:%u forbids privileged "
                                           "machines (AllowPrivileged=no)",
                                           name, what, pol->path, pol->privileged.line);
                return mkm_err_set(reterr, -MKM_E_REFUSED,
                                   "refusing to import machine '%s': %s; the policy %s does not allow privileged machines "
                                   "(no AllowPrivileged=yes)",
                                   name, what, pol->path);
        }
        mkm_warn(ctx, "machine '%s': %s", name, what);
        return 0;
}

int import_machine(struct mkm_ctx *ctx, const char *source, const struct import_opts *opts,
                   struct import_result *ret, struct mkm_err *reterr) {
        struct sources s = SOURCES_INIT;
        _cleanup_(deploy_freep) struct deploy *d = NULL;
        _cleanup_close_ int tarfd = -EBADF;
        _cleanup_free_ char *nspawn = NULL, *manifest = NULL, *installed = NULL;
        size_t nspawn_len = 0;
        char digest[MANIFEST_DIGEST_LEN], tarball_hex[HASH_SHA256_HEX];
        uint64_t tarball_size = 0;
        bool verified = false, signed_ok = false;
        _cleanup_(hash_freep) struct hash_ctx *extracted_hash = NULL;
        struct extract_result xr = {};
        /* Declared here: every goto out below runs their cleanup. */
        _cleanup_free_ char *settings_path = NULL;
        _cleanup_(state_freep) struct machine_state *ms = NULL;

        int r = sources_get(ctx, source, opts, &s, reterr);
        if (r < 0)
                goto out;
        const char *name = opts->name ? opts->name : s.stem;
        if (!deploy_machine_name_is_valid(name)) {
                r = mkm_err_set(reterr, -MKM_E_USAGE, "'%s' is not a valid machine name; give one: mkmachine import FILE NAME",
                                name);
                goto out;
        }
        tarfd = TAKE_FD(s.tarball_fd);
        if (s.nspawn && (r = read_side(s.nspawn_fd, s.nspawn, &nspawn, &nspawn_len, reterr)) < 0)
                goto out;
        r = check_sources(ctx, &s, opts, tarfd, nspawn, nspawn_len, &verified, &signed_ok, tarball_hex, &tarball_size,
                         reterr);
        if (r < 0)
                goto out;
        if (opts->trust_settings && nspawn &&
            (r = judge_trusted_settings(ctx, name, strrchr(s.nspawn, '/') ? strrchr(s.nspawn, '/') + 1 : s.nspawn,
                                        nspawn, reterr)) < 0)
                goto out;
        /* The tarball is read again to be extracted, and whoever owns a local one can rewrite it
         * in place meanwhile (or while it is extracted): the stream extraction reads is hashed
         * as it is read (extract_opts.hash), and the tree is deployed only when that is the
         * sha256 just verified. */
        if (lseek(tarfd, 0, SEEK_SET) < 0) {
                r = mkm_err_set(reterr, negative_errno(), "%s: %m", s.tarball);
                goto out;
        }
        if (verified && !(extracted_hash = hash_new(HASH_SHA256))) {
                r = -ENOMEM;
                goto out;
        }

        r = deploy_begin(ctx, name, &d, reterr);
        if (r < 0)
                goto out;
        struct stat st;
        if (fstatat(d->machines_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (!opts->force) {
                        r = mkm_err_set(reterr, -EEXIST, "machine '%s' exists (%s); --force replaces it", name, d->target);
                        goto out;
                }
                /* What would refuse a build's replacement (the machine runs, its tree drifted,
                 * mkmachine did not build it or host files of its name) is listed; --force, which
                 * brought us here, overrides it as for a build: a running machine's tree is
                 * swapped under it. */
                r = deploy_check_replaceable(ctx, d, "replace", reterr);
                if (r < 0)
                        goto out;
        } else {
                /* A new name: still systemd's image lock (held to the end, as a build holds it),
                 * and no host files or raw image of the name that mkmachine did not make. */
                r = deploy_check_replaceable(ctx, d, "import", reterr);
                if (r < 0)
                        goto out;
                /* Nor settings beside the image that someone else put there (they go with the
                 * machine once it is ours: rm removes them). */
                struct stat nst;
                _cleanup_free_ char *beside = NULL;
                if (asprintf(&beside, "%s.nspawn", name) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                if (!opts->force && fstatat(d->machines_fd, beside, &nst, AT_SYMLINK_NOFOLLOW) == 0) {
                        r = mkm_err_set(reterr, -MKM_E_REFUSED,
                                        "refusing to import machine '%s' (--force overrides):\n  host file: %s/%s was "
                                        "not written by mkmachine and would be replaced",
                                        name, d->machines_dir, beside);
                        goto out;
                }
        }
        r = deploy_stage(d, reterr);
        if (r < 0)
                goto out;
        mkm_emit(ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "extracting" });
        /* The same checks as a package's entries (nothing leaves the root, no hard link out of the
         * archive), plus what a whole tree has: the root's own metadata, directory times restored
         * after their contents, devices and fifos. */
        struct extract_opts xo = {
                .label = s.base,
                .max_bytes = TARBALL_MAX,
                .apply_root = true,
                .restore_dir_times = true,
                .allow_special = true,
                .hash = extracted_hash,
                .hash_max = tarball_size + 1,   /* what was verified, and a byte more if it grew */
        };
        r = extract_archive_fd(ctx, d->root_fd, tarfd, &xo, &xr, reterr);
        if (r < 0) {
                /* A verified tarball rewritten meanwhile fails to extract as often as it extracts
                 * to something else (a longer one is cut at the verified size, a shorter one ends
                 * early): say it changed, as below, when its bytes are no longer the verified
                 * ones, and keep the extraction's error as the detail. */
                if (verified && changed_since_verified(tarfd, tarball_size, tarball_hex)) {
                        char why[sizeof reterr->msg];
                        (void)snprintf(why, sizeof why, "%s",
                                       reterr && reterr->code == r && reterr->msg[0] ? reterr->msg : mkm_strerror(r));
                        r = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH,
                                        "%s changed while it was imported (its sha256 is no longer the verified %s; "
                                        "extracting it failed: %s); nothing deployed",
                                        s.tarball, tarball_hex, why);
                }
                goto out;
        }
        if (extracted_hash) {
                char hex[HASH_SHA256_HEX];
                r = hash_final_hex(TAKE_PTR(extracted_hash), hex);
                if (r < 0)
                        goto out;
                if (strcmp(hex, tarball_hex) != 0) {
                        r = mkm_err_set(reterr, -MKM_E_DIGEST_MISMATCH,
                                        "%s changed while it was imported: the bytes extracted have sha256 %s, not the "
                                        "verified %s; nothing deployed",
                                        s.tarball, hex, tarball_hex);
                        goto out;
                }
        }
        r = judge_tree_slot(ctx, name, d->root_fd, opts->trust_settings ? nspawn : NULL, reterr);
        if (r < 0)
                goto out;
        /* No clamping: the archive's times are the exporter's, already clamped when it was built;
         * clamping here to anything else would change the digest. */
        mkm_emit(ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "writing the manifest" });
        r = manifest_build(ctx, d->root_fd, -1, &manifest, digest, reterr);
        if (r < 0)
                goto out;
        mkm_emit(ctx, &(struct mkm_event){ .type = MKM_EV_STAGE, .text = "deploying" });
        /* The settings come from the exporter: beside the image (where nspawn applies only the
         * unprivileged subset, as importctl places them) unless the host's owner trusts them. */
        if (asprintf(&settings_path, "%s/%s.nspawn", opts->trust_settings ? "etc/systemd/nspawn" : "var/lib/machines",
                     name) < 0) {
                r = -ENOMEM;
                goto out;
        }
        struct state_host_file host[1] = { { settings_path, nspawn } };
        r = state_load(ctx, name, &ms, reterr);
        if (r < 0)
                goto out;
        /* Its SOURCE_DATE_EPOCH (for a re-export): the exporter clamped every time stamp to its own,
         * so the newest one clamps exactly as that would. */
        int64_t sde = 0;
        for (const char *p = manifest; (p = strstr(p, " time=")); p += 6) {
                long long t = strtoll(p + 6, NULL, 10);
                if (t > sde)
                        sde = t;
        }
        /* An imported machine was not built here: no recipe and no lock (rebuild refuses it). */
        struct state_new_gen g = {
                .recipe = "", .recipe_path = "", .lock = "", .manifest = manifest, .digest = digest,
                .host = host, .n_host = nspawn ? 1 : 0, .source_date_epoch = sde, .packages = 0,
        };
        unsigned gen = 0;
        r = deploy_commit(ctx, d, &g, &gen, reterr);
        if (r < 0)
                goto out;
        if (nspawn) {
                installed = fs_path_join(ctx->host_root, settings_path);
                if (!installed) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        *ret = (struct import_result){ .name = strdup(name), .target = strdup(d->target),
                                       .nspawn = TAKE_PTR(installed), .verified = verified, .signed_ok = signed_ok };
        memcpy(ret->digest, digest, sizeof digest);
        if (!ret->name || !ret->target) {
                import_result_done(ret);
                r = -ENOMEM;
        }
out:
        extract_result_done(&xr);
        sources_done(&s);
        return r;
}
