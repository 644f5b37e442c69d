/* SPDX-License-Identifier: MIT */
/* OpenPGP signature verification through gpgme in a private, temporary GNUPGHOME.
 * The trust model and the decision table are documented in verify.h. Threats handled here: a
 * mirror serving altered data or signatures, signatures by keys outside the keyring or by keys the
 * distribution revoked, and unsigned text smuggled around a clearsigned InRelease. */
#include "verify.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gpgme.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "pgp.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/strv.h"

#define TRUST_FILE_MAX ((size_t)1024 * 1024)
#define STALE_HOME_SECONDS (10 * 60)   /* a dead creator's home older than this goes */

struct verify_keyring {
        struct mkm_ctx *ctx;
        char *home;                     /* the temporary GNUPGHOME, removed by _free */
        gpgme_ctx_t gctx;
        char *gpg;                      /* engine binary, from gpgme */
        char *gpgconf;
        char **revoked;                 /* upper-case fingerprints from *-revoked files */
        bool agent_started;
        unsigned n_keys;
        bool borrowed;                  /* a clone: home, revoked and engines belong to the original */
        gpgme_key_t *seen;              /* keys looked up so far (each gpgme_get_key costs two gpg runs) */
        size_t n_seen;
        struct fast *fast;              /* shared with the clones; the original frees it */
};

/* The native fast path (pgp.h): keys gpg accepted a signature from in this process, with their
 * public key material, so that further signatures by them are checked in-process. A key enters
 * only after gpg's full verdict (validity, revocation, expiry, usage, subkey binding) was good;
 * the keyring does not change while it exists, and a build lasts seconds. */
struct fast_key {
        struct pgp_key key;             /* the signing (sub)key; key.fpr names it */
        char primary[VERIFY_FPR_MAX];
        char uid[256];
        int64_t learned;                /* when gpg last accepted a signature by it */
        int64_t expires;                /* the earliest expiry of the key and its primary; 0 = never */
};

/* gpg's verdict on a key also depends on the time (expiry; certifications that expire): a
 * learnt key is used only until it expires and for a few minutes after gpg last judged it. */
#define FAST_TTL_SECONDS 300

struct fast {
        pthread_mutex_t lock;
        struct fast_key *keys;
        size_t n;
        unsigned native, gpg;           /* signatures accepted each way, for tests and logs */
};

static struct fast *fast_free(struct fast *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->n; i++)
                pgp_key_done(&f->keys[i].key);
        free(f->keys);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(gpgme_data_t, gpgme_data_release)
DEFINE_TRIVIAL_CLEANUP_FUNC(gpgme_key_t, gpgme_key_unref)

/* Translate a gpgme error at the module edge, keeping gpgme's message. */
static int gpg_to_errno(gpgme_error_t e) {
        int r = gpgme_err_code_to_errno(gpgme_err_code(e));
        return r > 0 ? -r : -EIO;
}

static bool is_fpr(const char *s, size_t len) {
        if (len != 40 && len != 64)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!isxdigit((unsigned char)s[i]))
                        return false;
        return true;
}

static void upcase(char *s) {
        for (; *s; s++)
                *s = (char)toupper((unsigned char)*s);
}

/* Run a GnuPG tool with argv (argv[0] is the absolute path) and a minimal environment; stdin
 * and stdout are /dev/null and stderr goes to HOME/tool.log, whose tail ends up in the error. */
static int run_tool(struct verify_keyring *k, const char *what, char *const argv[], struct mkm_err *reterr) {
        static char *const envp[] = { "LC_ALL=C", "PATH=/usr/local/bin:/usr/bin:/bin", NULL };
        _cleanup_free_ char *log = fs_path_join(k->home, "tool.log");
        if (!log)
                return -ENOMEM;
        _cleanup_close_ int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (logfd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot create %s: %m", log);
        _cleanup_close_ int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nullfd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open /dev/null: %m");

        pid_t pid = fork();
        if (pid < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot fork for %s: %m", argv[0]);
        if (pid == 0) {
                /* Only async-signal-safe calls from here on. dup2 clears O_CLOEXEC on the copies. */
                if (dup2(nullfd, 0) < 0 || dup2(nullfd, 1) < 0 || dup2(logfd, 2) < 0)
                        _exit(127);
                execve(argv[0], argv, envp);
                _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return mkm_err_set(reterr, negative_errno(), "waitpid: %m");
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;

        char tail[512] = "";
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        if (fs_read_file_at(AT_FDCWD, log, 1024 * 1024, &text, &len) >= 0) {
                while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
                        text[--len] = 0;
                (void)snprintf(tail, sizeof tail, ": %s", len > 400 ? text + len - 400 : text);
        }
        return mkm_err_set(reterr, -EIO, "%s %s failed (%s %d)%s", argv[0], what,
                           WIFEXITED(status) ? "exit status" : "signal",
                           WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), tail);
}

static int run_gpg(struct verify_keyring *k, struct mkm_err *reterr, const char *a1, const char *a2,
                   const char *a3, const char *a4, const char *a5) {
        /* --no-auto-check-trustdb: each step would otherwise recompute the whole trustdb (a third
         * of a second per step for Arch's keyring); verify_keyring_new() checks it once at the end. */
        char *argv[] = { k->gpg, "--homedir", k->home, "--batch", "--no-tty", "--quiet", "--yes", "--no-auto-check-trustdb",
                         "--pinentry-mode", "loopback", "--passphrase", "",
                         (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, NULL };
        return run_tool(k, a1, argv, reterr);
}

static int run_gpgconf(struct verify_keyring *k, const char *verb, const char *what, struct mkm_err *reterr) {
        char *argv[] = { k->gpgconf, "--homedir", k->home, (char *)verb, (char *)what, NULL };
        return run_tool(k, verb, argv, reterr);
}

static bool home_has_daemon(struct verify_keyring *k) {
        static const char *const sockets[] = { "S.gpg-agent", "S.dirmngr", "S.keyboxd" };
        _cleanup_close_ int dfd = open(k->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(sockets); i++)
                if (faccessat(dfd, sockets[i], F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                        return true;
        return false;
}

struct verify_keyring *verify_keyring_free(struct verify_keyring *k) {
        if (!k)
                return NULL;
        if (k->gctx)
                gpgme_release(k->gctx);
        for (size_t i = 0; i < k->n_seen; i++)
                gpgme_key_unref(k->seen[i]);
        free(k->seen);
        if (k->borrowed) {
                free(k);
                return NULL;
        }
        fast_free(k->fast);
        if (k->home) {
                /* An agent may still run if setup failed half-way; never leave one behind. */
                if (k->gpgconf && (k->agent_started || home_has_daemon(k))) {
                        (void)run_gpgconf(k, "--kill", "all", NULL);
                        (void)run_gpgconf(k, "--remove-socketdir", NULL, NULL);
                }
                (void)fs_rm_rf_at(AT_FDCWD, k->home);
                free(k->home);
        }
        free(k->gpg);
        free(k->gpgconf);
        strv_free(k->revoked);
        free(k);
        return NULL;
}

/* gpgme_get_key() through a per-handle cache: gpgme runs "gpg --version" and "gpg --list-keys"
 * for every lookup, and a build looks up the same few signing keys for every package. Within one
 * build (seconds) a key's state does not change. Returns a new reference, like gpgme_get_key. */
static gpgme_error_t get_key_cached(struct verify_keyring *k, const char *fpr, gpgme_key_t *ret) {
        size_t fl = strlen(fpr);
        for (size_t i = 0; i < k->n_seen; i++)
                for (gpgme_subkey_t sk = k->seen[i]->subkeys; sk; sk = sk->next)
                        /* A full fingerprint, or a 16-digit key ID (signatures without an
                         * issuer-fingerprint subpacket) matching its end. */
                        if (sk->fpr && (strcasecmp(sk->fpr, fpr) == 0 ||
                                        (fl == 16 && strlen(sk->fpr) > 16 && strcasecmp(sk->fpr + strlen(sk->fpr) - 16, fpr) == 0))) {
                                gpgme_key_ref(k->seen[i]);
                                *ret = k->seen[i];
                                return 0;
                        }
        gpgme_key_t key = NULL;
        gpgme_error_t e = gpgme_get_key(k->gctx, fpr, &key, 0);
        if (e || !key)
                return e ? e : gpg_error(GPG_ERR_NO_PUBKEY);
        gpgme_key_t *ns = mkm_reallocarray(k->seen, k->n_seen + 1, sizeof *ns);
        if (ns) {
                k->seen = ns;
                gpgme_key_ref(key);
                k->seen[k->n_seen++] = key;
        }
        *ret = key;
        return 0;
}

static const char *homes_dir(void);

/* Remove the homes in homes_dir() of pid, or (pid 0) of every process that no longer exists
 * and that were left alone for a while. */
static void remove_homes(pid_t pid) {
        _cleanup_close_ int dfd = open(homes_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return;
        DIR *d = fs_opendir_dup(dfd);
        if (!d)
                return;
        time_t now = time(NULL);
        struct dirent *de;
        while ((de = readdir(d))) {
                int owner, len = 0;
                if (sscanf(de->d_name, "mkm-gnupg.%d.%n", &owner, &len) != 1 || len == 0 || owner <= 0)
                        continue;
                if (pid > 0 ? owner != (int)pid : kill((pid_t)owner, 0) == 0 || errno != ESRCH)
                        continue;
                struct stat st;
                if (pid == 0 && (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
                                 st.st_mtime > now - STALE_HOME_SECONDS))
                        continue;
                /* A gpg-agent of that home notices its socket is gone and exits. */
                (void)fs_rm_rf_at(dfd, de->d_name);
        }
        (void)closedir(d);
}

void verify_remove_homes_of(pid_t pid) {
        if (pid > 0)
                remove_homes(pid);
}

void verify_remove_stale_homes(void) {
        remove_homes(0);
}

static int open_gctx(struct verify_keyring *k, struct mkm_err *reterr);

int verify_keyring_clone(const struct verify_keyring *k, struct verify_keyring **ret) {
        struct verify_keyring *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = (struct verify_keyring){ .ctx = NULL, .home = k->home, .gpg = k->gpg, .gpgconf = k->gpgconf,
                                      .revoked = k->revoked, .n_keys = k->n_keys, .borrowed = true,
                                      .fast = k->fast };
        int r = open_gctx(c, NULL);
        if (r < 0) {
                verify_keyring_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

unsigned verify_keyring_count(const struct verify_keyring *k) {
        return k ? k->n_keys : 0;
}

static bool has_suffix(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a > b && strcmp(s + a - b, suffix) == 0;
}

/* Import one keyring file, already read into memory (the same bytes the cache key covers). */
static int import_buf(struct verify_keyring *k, const char *path, const char *buf, size_t len, struct mkm_err *reterr) {
        _cleanup_(gpgme_data_releasep) gpgme_data_t d = NULL;
        gpgme_error_t e = gpgme_data_new_from_mem(&d, buf, len, 0);
        if (e)
                return mkm_err_set(reterr, gpg_to_errno(e), "%s: %s", path, gpgme_strerror(e));
        e = gpgme_op_import(k->gctx, d);
        gpgme_import_result_t res = gpgme_op_import_result(k->gctx);
        if (e && gpgme_err_code(e) != GPG_ERR_NO_DATA)
                return mkm_err_set(reterr, gpg_to_errno(e), "cannot import keyring %s: %s", path, gpgme_strerror(e));
        if (!res || res->considered == 0)
                return mkm_err_set(reterr, -MKM_E_PARSE, "%s: no OpenPGP public keys found in the keyring file", path);
        mkm_debug(k->ctx, "keyring %s: %d keys considered, %d imported, %d unchanged, %d not imported",
                  path, res->considered, res->imported, res->unchanged, res->not_imported);
        return 0;
}

/* Parse a pacman-style -trusted ("FPR:LEVEL:") or -revoked ("FPR") file's text (modified in place).
 * The fingerprints are appended to *fprs and, for -trusted, the levels to *levels. */
static int parse_trust_file(const char *path, char *text, bool trusted, char ***fprs, char ***levels,
                            struct mkm_err *reterr) {
        unsigned lineno = 0;
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                lineno++;
                size_t n = strlen(line);
                while (n > 0 && isspace((unsigned char)line[n - 1]))
                        line[--n] = 0;
                while (*line == ' ' || *line == '\t')
                        line++;
                if (!*line || *line == '#')
                        continue;
                size_t flen = strcspn(line, ":");
                if (!is_fpr(line, flen))
                        return mkm_err_set(reterr, -MKM_E_PARSE, "%s:%u: expected a key fingerprint (40 hex digits), got '%.80s'",
                                           path, lineno, line);
                const char *rest = line + flen;
                char level[2] = "";
                if (trusted) {
                        if (!(rest[0] == ':' && rest[1] >= '1' && rest[1] <= '6' && rest[2] == ':' && rest[3] == 0))
                                return mkm_err_set(reterr, -MKM_E_PARSE, "%s:%u: expected FINGERPRINT:LEVEL: (LEVEL 1-6), got '%.80s'",
                                                   path, lineno, line);
                        level[0] = rest[1];
                } else if (*rest)
                        return mkm_err_set(reterr, -MKM_E_PARSE, "%s:%u: expected one fingerprint a line, got '%.80s'",
                                           path, lineno, line);
                line[flen] = 0;
                upcase(line);
                if (strv_push(fprs, line) < 0 || (trusted && strv_push(levels, level) < 0))
                        return -ENOMEM;
        }
        return 0;
}

static int write_file(const char *dir, const char *name, const char *text, struct mkm_err *reterr) {
        _cleanup_free_ char *p = fs_path_join(dir, name);
        if (!p)
                return -ENOMEM;
        int r = fs_write_atomic_at(AT_FDCWD, p, text, strlen(text), 0600);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot write %s: %s", p, mkm_strerror(r));
        return 0;
}

/* Append "FPR:LEVEL:\n" to a growing string. */
static int append_line(char **s, size_t *len, const char *fpr, const char *level) {
        size_t add = strlen(fpr) + strlen(level) + 3;
        char *n = realloc(*s, *len + add + 1);
        if (!n)
                return -ENOMEM;
        *s = n;
        *len += (size_t)sprintf(n + *len, "%s:%s:\n", fpr, level);
        return 0;
}

/* Count the primary keys gpg lists in the home; with all_ot, collect "FPR:6:" lines for every
 * primary key not on the -revoked list. */
static int count_keys(struct verify_keyring *k, unsigned *ret_n, char **all_ot, size_t *all_len, struct mkm_err *reterr) {
        gpgme_error_t e = gpgme_op_keylist_start(k->gctx, NULL, 0);
        if (e)
                return mkm_err_set(reterr, gpg_to_errno(e), "cannot list keys: %s", gpgme_strerror(e));
        unsigned n = 0;
        for (;;) {
                _cleanup_(gpgme_key_unrefp) gpgme_key_t key = NULL;
                e = gpgme_op_keylist_next(k->gctx, &key);
                if (gpgme_err_code(e) == GPG_ERR_EOF)
                        break;
                if (e) {
                        (void)gpgme_op_keylist_end(k->gctx);
                        return mkm_err_set(reterr, gpg_to_errno(e), "cannot list keys: %s", gpgme_strerror(e));
                }
                n++;
                if (all_ot && key->subkeys && key->subkeys->fpr && !strv_contains(k->revoked, key->subkeys->fpr))
                        if (append_line(all_ot, all_len, key->subkeys->fpr, "6") < 0) {
                                (void)gpgme_op_keylist_end(k->gctx);
                                return -ENOMEM;
                        }
        }
        *ret_n = n;
        return 0;
}

static bool key_present(struct verify_keyring *k, const char *fpr) {
        _cleanup_(gpgme_key_unrefp) gpgme_key_t key = NULL;
        return gpgme_get_key(k->gctx, fpr, &key, 0) == 0 && key;
}

/* pacman-key --populate: ownertrust from -trusted, local signatures by a throwaway ultimately
 * trusted key, so that the listed keys are valid and gpg derives the packagers' validity. */
static int populate_trusted(struct verify_keyring *k, char **fprs, char **levels, struct mkm_err *reterr) {
        _cleanup_free_ char *ot = NULL;
        size_t otlen = 0;
        int r;

        for (size_t i = 0; fprs && fprs[i]; i++) {
                if (strv_contains(k->revoked, fprs[i])) {
                        mkm_debug(k->ctx, "key %s is both trusted and revoked; treating it as revoked", fprs[i]);
                        continue;
                }
                if (!key_present(k, fprs[i])) {
                        mkm_debug(k->ctx, "trusted key %s is not in the keyring; skipping it", fprs[i]);
                        continue;
                }
                if (append_line(&ot, &otlen, fprs[i], levels[i]) < 0)
                        return -ENOMEM;
        }
        if (!ot)
                return 0;       /* nothing to anchor: every signature will be untrusted */
        r = write_file(k->home, "ownertrust.txt", ot, reterr);
        if (r < 0)
                return r;
        _cleanup_free_ char *otpath = fs_path_join(k->home, "ownertrust.txt");
        if (!otpath)
                return -ENOMEM;
        r = run_gpg(k, reterr, "--import-ownertrust", otpath, NULL, NULL, NULL);
        if (r < 0)
                return r;

        /* gpg.conf says no-autostart; the local key's creation and the lsigns need an agent. */
        k->agent_started = true;
        r = run_gpgconf(k, "--launch", "gpg-agent", reterr);
        if (r < 0)
                return r;
        r = run_gpg(k, reterr, "--quick-gen-key", "mkmachine local trust root (throwaway) <root@mkmachine.invalid>",
                    "ed25519", "cert", "never");
        if (r < 0)
                return r;
        for (char *line = ot, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                line[strcspn(line, ":")] = 0;
                r = run_gpg(k, reterr, "--quick-lsign-key", line, NULL, NULL, NULL);
                if (r < 0)
                        return r;
        }
        r = run_gpgconf(k, "--kill", "all", reterr);
        if (r < 0)
                return r;
        k->agent_started = false;
        return 0;
}

static int collect_dir(const char *dir, char ***keyfiles, char ***trusted, char ***revoked, struct mkm_err *reterr) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open keyring directory %s: %m", dir);
        DIR *d = fdopendir(dfd);
        if (!d)
                return mkm_err_set(reterr, negative_errno(), "cannot read keyring directory %s: %m", dir);
        TAKE_FD(dfd);
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char ***list = has_suffix(de->d_name, ".gpg") || has_suffix(de->d_name, ".asc") ? keyfiles
                        : has_suffix(de->d_name, "-trusted") ? trusted
                        : has_suffix(de->d_name, "-revoked") ? revoked : NULL;
                if (!list)
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
                        continue;
                _cleanup_free_ char *p = fs_path_join(dir, de->d_name);
                if (!p || strv_push(list, p) < 0) {
                        r = -ENOMEM;
                        break;
                }
        }
        (void)closedir(d);
        if (r < 0)
                return r;
        if (strv_length(*keyfiles) == 0)
                return mkm_err_set(reterr, -ENOENT, "%s: no *.gpg or *.asc keyring files in the directory", dir);
        /* strv_sort(NULL) hands NULL to qsort (UB); sort only vectors that exist. */
        char **const *lists[] = { keyfiles, trusted, revoked };
        for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                if (*lists[i])
                        strv_sort(*lists[i]);
        return 0;
}

static int find_engines(struct verify_keyring *k, const char **ret_version, struct mkm_err *reterr) {
        gpgme_engine_info_t info;
        gpgme_error_t e = gpgme_get_engine_info(&info);
        if (e)
                return mkm_err_set(reterr, gpg_to_errno(e), "gpgme: %s", gpgme_strerror(e));
        for (; info; info = info->next)
                if (info->protocol == GPGME_PROTOCOL_OpenPGP && info->file_name) {
                        k->gpg = strdup(info->file_name);
                        *ret_version = info->version ? info->version : "";
                        break;
                }
        const char *gc = gpgme_get_dirinfo("gpgconf-name");
        k->gpgconf = gc ? strdup(gc) : NULL;
        if (!k->gpg || !k->gpgconf)
                return mkm_err_set(reterr, -ENOENT, "gpgme knows no gpg or gpgconf binary (is gnupg installed?)");
        return 0;
}

static const char gpg_conf[] =
        "# mkmachine's private verification home; removed after the build.\n"
        "no-autostart\n"
        "no-auto-key-retrieve\n"
        "trust-model pgp\n"
        "no-greeting\n";

/* Where private homes go. A short path: gpg-agent's socket name must fit in sun_path. */
static const char *homes_dir(void) {
        const char *tmp = getenv("TMPDIR");
        if (!tmp || tmp[0] != '/' || strlen(tmp) > 64)
                tmp = "/tmp";
        return tmp;
}

static int make_home(struct verify_keyring *k, struct mkm_err *reterr) {
        const char *tmp = homes_dir();
        /* The pid in the name lets whoever guards this process remove the home if it is killed
         * (verify_remove_homes_of), without touching other builds' homes. */
        char name[64];
        (void)snprintf(name, sizeof name, "mkm-gnupg.%d.XXXXXX", (int)getpid());
        _cleanup_free_ char *tmpl = fs_path_join(tmp, name);
        if (!tmpl)
                return -ENOMEM;
        if (!mkdtemp(tmpl))
                return mkm_err_set(reterr, negative_errno(), "cannot create a temporary GnuPG home in %s: %m", tmp);
        k->home = TAKE_PTR(tmpl);
        if (chmod(k->home, 0700) < 0)
                return mkm_err_set(reterr, negative_errno(), "chmod %s: %m", k->home);
        return write_file(k->home, "gpg.conf", gpg_conf, reterr);
}

static int open_gctx(struct verify_keyring *k, struct mkm_err *reterr) {
        gpgme_error_t e = gpgme_new(&k->gctx);
        if (!e)
                e = gpgme_set_protocol(k->gctx, GPGME_PROTOCOL_OpenPGP);
        if (!e)
                e = gpgme_ctx_set_engine_info(k->gctx, GPGME_PROTOCOL_OpenPGP, NULL, k->home);
        if (!e)
                e = gpgme_set_keylist_mode(k->gctx, GPGME_KEYLIST_MODE_LOCAL);
        if (e)
                return mkm_err_set(reterr, gpg_to_errno(e), "gpgme: %s", gpgme_strerror(e));
        gpgme_set_offline(k->gctx, 1);
        gpgme_set_armor(k->gctx, 0);
        return 0;
}

/* Forget a half-prepared home (no agent runs in one: only populate_trusted starts it). */
static void drop_home(struct verify_keyring *k) {
        if (k->gctx)
                gpgme_release(k->gctx);
        k->gctx = NULL;
        if (k->home)
                (void)fs_rm_rf_at(AT_FDCWD, k->home);
        free(k->home);
        k->home = NULL;
}

/* ---- the keyring's inputs ---- */

enum input_kind { INPUT_KEYS, INPUT_TRUSTED, INPUT_REVOKED, _INPUT_KIND_MAX };

struct input {
        enum input_kind kind;
        char *path;
        char *data;             /* the file's bytes, read once: hashed, parsed and imported from here */
        size_t len;
};

struct inputs {
        struct input *v;
        size_t n;
};

static void inputs_done(struct inputs *in) {
        for (size_t i = 0; i < in->n; i++) {
                free(in->v[i].path);
                free(in->v[i].data);
        }
        free(in->v);
        in->v = NULL;
        in->n = 0;
}

static bool inputs_have(const struct inputs *in, enum input_kind kind) {
        for (size_t i = 0; i < in->n; i++)
                if (in->v[i].kind == kind)
                        return true;
        return false;
}

static int inputs_add(struct inputs *in, enum input_kind kind, char **paths, struct mkm_err *reterr) {
        for (size_t i = 0; paths && paths[i]; i++) {
                struct input *v = mkm_reallocarray(in->v, in->n + 1, sizeof *v);
                if (!v)
                        return -ENOMEM;
                in->v = v;
                struct input *x = &in->v[in->n];
                *x = (struct input){ .kind = kind, .path = strdup(paths[i]) };
                if (!x->path)
                        return -ENOMEM;
                in->n++;
                int r;
                if (kind == INPUT_KEYS) {
                        r = fs_read_file_at(AT_FDCWD, x->path, VERIFY_MAX_KEYRING, &x->data, &x->len);
                        if (r == -EFBIG)
                                return mkm_err_set(reterr, r, "%s: keyring file larger than %zu bytes", x->path,
                                                   VERIFY_MAX_KEYRING);
                        if (r < 0)
                                return mkm_err_set(reterr, r, "cannot read keyring %s: %s", x->path, mkm_strerror(r));
                } else {
                        r = fs_read_file_at(AT_FDCWD, x->path, TRUST_FILE_MAX, &x->data, &x->len);
                        if (r < 0)
                                return mkm_err_set(reterr, r, "cannot read %s: %s", x->path, mkm_strerror(r));
                }
        }
        return 0;
}

/* Read every file verification depends on, in a fixed order: keys, -trusted, -revoked, each
 * sorted by name (collect_dir sorts). */
static int collect_inputs(const char *path, struct inputs *in, struct mkm_err *reterr) {
        _cleanup_strv_free_ char **keyfiles = NULL, **trustfiles = NULL, **revfiles = NULL;
        struct stat st;
        int r;

        if (stat(path, &st) < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot access keyring %s: %m", path);
        if (S_ISDIR(st.st_mode))
                r = collect_dir(path, &keyfiles, &trustfiles, &revfiles, reterr);
        else if (S_ISREG(st.st_mode))
                r = strv_push(&keyfiles, path);
        else
                r = mkm_err_set(reterr, -EINVAL, "keyring %s is neither a file nor a directory", path);
        if (r >= 0)
                r = inputs_add(in, INPUT_KEYS, keyfiles, reterr);
        if (r >= 0)
                r = inputs_add(in, INPUT_TRUSTED, trustfiles, reterr);
        if (r >= 0)
                r = inputs_add(in, INPUT_REVOKED, revfiles, reterr);
        return r;
}

/* ---- the cache of prepared homes ----
 * CACHE_DIR/gnupg/<key>/ holds the files below plus "digest": the format line, the key, the key
 * count, and each file's sha256. The key covers everything the prepared home depends on: the
 * format, gpg's version, gpg.conf, and every input file's kind, name and bytes. The cache is a
 * trusted local directory, like the package cache; the digest file guards against an entry that
 * a crash or a disk left half-written or that was altered since: it is then rebuilt. The
 * throwaway key's secret part is never stored (scrub_home removes it before the entry is made). */
#define CACHE_FORMAT "mkmachine gnupg cache 1"
#define CACHE_FILE_MAX ((size_t)256 * 1024 * 1024)
#define CACHE_DIGEST_MAX ((size_t)4096)
#define GNUPG_STALE_SECONDS (24 * 3600)   /* a crashed build's .tmp.* entry goes after a day */

static const char *const cached_files[] = { "pubring.kbx", "trustdb.gpg" };

static int hash_field(struct hash_ctx *h, const char *tag, const void *data, size_t len) {
        char hdr[64];
        int n = snprintf(hdr, sizeof hdr, "%s %zu\n", tag, len);
        int r = hash_update(h, hdr, (size_t)n);
        if (r >= 0)
                r = hash_update(h, data, len);
        return r;
}

static int cache_key(const struct inputs *in, const char *gpg_version, char key[static HASH_SHA256_HEX]) {
        static const char *const kind_name[_INPUT_KIND_MAX] = {
                [INPUT_KEYS] = "keys", [INPUT_TRUSTED] = "trusted", [INPUT_REVOKED] = "revoked",
        };
        _cleanup_(hash_freep) struct hash_ctx *h = hash_new(HASH_SHA256);
        if (!h)
                return -ENOMEM;
        int r = hash_field(h, "format", CACHE_FORMAT, strlen(CACHE_FORMAT));
        if (r >= 0)
                r = hash_field(h, "gpg", gpg_version, strlen(gpg_version));
        if (r >= 0)
                r = hash_field(h, "conf", gpg_conf, strlen(gpg_conf));
        for (size_t i = 0; r >= 0 && i < in->n; i++) {
                const char *slash = strrchr(in->v[i].path, '/');
                const char *name = slash ? slash + 1 : in->v[i].path;
                r = hash_field(h, kind_name[in->v[i].kind], name, strlen(name));
                if (r >= 0)
                        r = hash_field(h, "data", in->v[i].data, in->v[i].len);
        }
        if (r < 0)
                return r;
        return hash_final_hex(TAKE_PTR(h), key);
}

/* Parse a digest file: the expected format and key, then "keys N", "listed M" and one
 * "NAME SHA256" line per cached file, in order. */
static int parse_digest(char *text, const char *key, unsigned *ret_keys, unsigned *ret_listed,
                        char sums[][HASH_SHA256_HEX], struct mkm_err *reterr) {
        char *lines[4 + ELEMENTSOF(cached_files)];
        size_t n = 0;
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (!next)
                        return mkm_err_set(reterr, -EBADMSG, "the digest file is truncated");
                *next++ = 0;
                if (n == ELEMENTSOF(lines))
                        return mkm_err_set(reterr, -EBADMSG, "the digest file has more lines than expected");
                lines[n++] = line;
        }
        if (n != ELEMENTSOF(lines))
                return mkm_err_set(reterr, -EBADMSG, "the digest file has %zu lines, not %zu", n, ELEMENTSOF(lines));
        if (strcmp(lines[0], CACHE_FORMAT) != 0)
                return mkm_err_set(reterr, -EBADMSG, "the digest file is not in format '%s'", CACHE_FORMAT);
        if (strncmp(lines[1], "key ", 4) != 0 || strcmp(lines[1] + 4, key) != 0)
                return mkm_err_set(reterr, -EBADMSG, "the digest file names another key");
        char end;
        if (sscanf(lines[2], "keys %u%c", ret_keys, &end) != 1 || sscanf(lines[3], "listed %u%c", ret_listed, &end) != 1)
                return mkm_err_set(reterr, -EBADMSG, "the digest file has no key counts");
        for (size_t i = 0; i < ELEMENTSOF(cached_files); i++) {
                char *l = lines[4 + i];
                size_t nl = strlen(cached_files[i]);
                if (strncmp(l, cached_files[i], nl) != 0 || l[nl] != ' ' || !hash_is_sha256_hex(l + nl + 1))
                        return mkm_err_set(reterr, -EBADMSG, "the digest file has no sha256 for %s", cached_files[i]);
                memcpy(sums[i], l + nl + 1, HASH_SHA256_HEX);
        }
        return 0;
}

/* Fill a fresh home from CACHE_DIR/gnupg/<key>. Returns 1 when loaded, 0 when there is no entry,
 * and a negative errno (details in reterr) when the entry is damaged; the caller then rebuilds. */
static int cache_load(struct verify_keyring *k, const char *cache_dir, const char *key, struct mkm_err *reterr) {
        _cleanup_free_ char *gdir = fs_path_join(cache_dir, "gnupg");
        if (!gdir)
                return -ENOMEM;
        /* No gnupg/ (or no cache at all) is an empty cache, not a damaged entry. */
        _cleanup_close_ int gfd = open(gdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (gfd < 0)
                return 0;
        /* One fd for the whole load: a concurrent replacement swaps the name, never our files. */
        _cleanup_close_ int efd = openat(gfd, key, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (efd < 0 && errno == ENOENT)
                return 0;
        if (efd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open it: %m");
        /* A home someone else could have written would hand them the trust decisions. */
        struct stat gst, est;
        if (fstat(gfd, &gst) < 0 || fstat(efd, &est) < 0 || !fs_dir_is_private(&gst) || !fs_dir_is_private(&est))
                return mkm_err_set(reterr, -EPERM, "it or %s is not private to this user (owner or mode)", gdir);

        _cleanup_free_ char *text = NULL;
        int r = fs_read_file_at(efd, "digest", CACHE_DIGEST_MAX, &text, NULL);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot read its digest file: %s", mkm_strerror(r));
        unsigned nkeys, listed;
        char sums[ELEMENTSOF(cached_files)][HASH_SHA256_HEX];
        r = parse_digest(text, key, &nkeys, &listed, sums, reterr);
        if (r < 0)
                return r;

        r = make_home(k, reterr);
        if (r < 0)
                return r;
        _cleanup_close_ int hfd = open(k->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (hfd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %m", k->home);
        for (size_t i = 0; i < ELEMENTSOF(cached_files); i++) {
                _cleanup_close_ int fd = openat(efd, cached_files[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return mkm_err_set(reterr, negative_errno(), "cannot open %s: %m", cached_files[i]);
                _cleanup_free_ char *data = NULL;
                size_t len = 0;
                char sum[HASH_SHA256_HEX];
                r = fs_read_fd(fd, CACHE_FILE_MAX, &data, &len);
                if (r >= 0)
                        r = hash_buf_hex(HASH_SHA256, data, len, sum);
                if (r < 0)
                        return mkm_err_set(reterr, r, "cannot read %s: %s", cached_files[i], mkm_strerror(r));
                if (strcmp(sum, sums[i]) != 0)
                        return mkm_err_set(reterr, -EBADMSG, "%s has sha256 %s, the digest file says %s",
                                           cached_files[i], sum, sums[i]);
                /* A private copy: gpg writes lock files and trustdb updates into its home. */
                r = fs_write_file_at(hfd, cached_files[i], data, len, 0600);
                if (r < 0)
                        return mkm_err_set(reterr, r, "cannot write %s/%s: %s", k->home, cached_files[i], mkm_strerror(r));
        }
        r = open_gctx(k, reterr);
        if (r < 0)
                return r;
        unsigned n;
        r = count_keys(k, &n, NULL, NULL, reterr);
        if (r < 0)
                return r;
        if (n != listed)
                return mkm_err_set(reterr, -EBADMSG, "gpg lists %u keys in it, the digest file says %u", n, listed);
        k->n_keys = nkeys;
        return 1;
}

/* Remove .tmp.* directories that a crashed build left in CACHE_DIR/gnupg a day or more ago (a
 * younger one may be another build's entry in the making). */
static void cache_clean_stale(struct verify_keyring *k, int gfd) {
        DIR *d = fs_opendir_dup(gfd);
        if (!d)
                return;
        time_t now = time(NULL);
        struct dirent *de;
        while ((de = readdir(d))) {
                struct stat st;
                if (strncmp(de->d_name, ".tmp.", 5) != 0 || fstatat(gfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    st.st_mtime > now - GNUPG_STALE_SECONDS)
                        continue;
                int r = fs_rm_rf_at(gfd, de->d_name);
                mkm_debug(k->ctx, "keyring cache: %s stale %s%s%s", r < 0 ? "cannot remove" : "removed", de->d_name,
                          r < 0 ? ": " : "", r < 0 ? mkm_strerror(r) : "");
        }
        (void)closedir(d);
}

/* Store k's prepared home as CACHE_DIR/gnupg/<key>: built under .tmp.XXXXXX, then renamed. When
 * the entry appeared meanwhile (another build won the race) ours is dropped; when it is the
 * damaged entry we failed to load (replace), the two are swapped and the old one removed. */
static int cache_store(struct verify_keyring *k, const char *cache_dir, const char *key, bool replace,
                       struct mkm_err *reterr) {
        _cleanup_free_ char *gdir = fs_path_join(cache_dir, "gnupg");
        if (!gdir)
                return -ENOMEM;
        int r = fs_mkdir_p_at(AT_FDCWD, gdir, 0700);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot create %s: %s", gdir, mkm_strerror(r));
        _cleanup_close_ int gfd = open(gdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (gfd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %m", gdir);
        struct stat gst;
        if (fstat(gfd, &gst) < 0 || !fs_dir_is_private(&gst))
                return mkm_err_set(reterr, -EPERM, "%s is not private to this user (owner or mode)", gdir);
        cache_clean_stale(k, gfd);
        _cleanup_free_ char *tmp = fs_path_join(gdir, ".tmp.XXXXXX");
        if (!tmp)
                return -ENOMEM;
        if (!mkdtemp(tmp))
                return mkm_err_set(reterr, negative_errno(), "cannot create a directory in %s: %m", gdir);
        const char *tname = tmp + strlen(gdir) + 1;

        _cleanup_close_ int tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int hfd = open(k->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *digest = NULL;
        size_t dlen = 0;
        unsigned listed = 0;
        r = tfd < 0 || hfd < 0 ? mkm_err_set(reterr, negative_errno(), "cannot open %s: %m", tfd < 0 ? tmp : k->home) : 0;
        if (r >= 0)
                r = count_keys(k, &listed, NULL, NULL, reterr);
        FILE *f = r >= 0 ? open_memstream(&digest, &dlen) : NULL;
        if (r >= 0 && !f)
                r = -ENOMEM;
        if (f)
                fprintf(f, "%s\nkey %s\nkeys %u\nlisted %u\n", CACHE_FORMAT, key, k->n_keys, listed);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(cached_files); i++) {
                _cleanup_free_ char *data = NULL;
                size_t len = 0;
                char sum[HASH_SHA256_HEX];
                r = fs_read_file_at(hfd, cached_files[i], CACHE_FILE_MAX, &data, &len);
                if (r >= 0)
                        r = hash_buf_hex(HASH_SHA256, data, len, sum);
                if (r >= 0)
                        r = fs_write_file_at(tfd, cached_files[i], data, len, 0600);
                if (r < 0)
                        r = mkm_err_set(reterr, r, "cannot copy %s: %s", cached_files[i], mkm_strerror(r));
                else
                        fprintf(f, "%s %s\n", cached_files[i], sum);
        }
        if (f && fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        /* Written last and checked on every load, so a crash leaves an entry that is rebuilt. */
        if (r >= 0) {
                r = fs_write_atomic_at(tfd, "digest", digest, dlen, 0600);
                if (r < 0)
                        r = mkm_err_set(reterr, r, "cannot write %s/digest: %s", tmp, mkm_strerror(r));
        }
        if (r >= 0 && renameat(gfd, tname, gfd, key) < 0) {
                if (errno != EEXIST && errno != ENOTEMPTY && errno != ENOTDIR)
                        r = mkm_err_set(reterr, negative_errno(), "cannot rename %s to %s: %m", tmp, key);
                else if (!replace)
                        mkm_debug(k->ctx, "keyring cache entry %s/%s was stored by another build meanwhile", gdir, key);
                else if (renameat2(gfd, tname, gfd, key, RENAME_EXCHANGE) < 0)
                        r = mkm_err_set(reterr, negative_errno(), "cannot replace %s/%s: %m", gdir, key);
        }
        /* Whatever is under the temporary name now (ours, or the damaged entry) goes. */
        (void)fs_rm_rf_at(gfd, tname);
        return r;
}

/* Remove what must not outlive the trust setup: the throwaway key's secret part and its
 * revocation certificate, and the scratch files. Verification needs only the public keyring
 * and the trustdb (the ultimate ownertrust lives there, not in the secret key). */
static int scrub_home(struct verify_keyring *k, struct mkm_err *reterr) {
        static const char *const scratch[] = { "private-keys-v1.d", "openpgp-revocs.d", "random_seed",
                                               "ownertrust.txt", "pubring.kbx~" };
        _cleanup_close_ int hfd = open(k->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (hfd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open %s: %m", k->home);
        for (size_t i = 0; i < ELEMENTSOF(scratch); i++) {
                int r = fs_rm_rf_at(hfd, scratch[i]);
                if (r < 0 && r != -ENOENT)
                        return mkm_err_set(reterr, r, "cannot remove %s/%s: %s", k->home, scratch[i], mkm_strerror(r));
        }
        return 0;
}

/* Import the inputs into k's fresh home and set up trust (see verify.h). */
static int prepare_home(struct verify_keyring *k, const char *path, const struct inputs *in, char **tfprs,
                        char **tlevels, struct mkm_err *reterr) {
        int r = make_home(k, reterr);
        if (r < 0)
                return r;
        r = open_gctx(k, reterr);
        if (r < 0)
                return r;
        bool pacman_style = inputs_have(in, INPUT_TRUSTED);
        for (size_t i = 0; i < in->n; i++) {
                if (in->v[i].kind != INPUT_KEYS)
                        continue;
                r = import_buf(k, in->v[i].path, in->v[i].data, in->v[i].len, reterr);
                if (r < 0)
                        return r;
        }

        _cleanup_free_ char *all_ot = NULL;
        size_t all_len = 0;
        r = count_keys(k, &k->n_keys, pacman_style ? NULL : &all_ot, &all_len, reterr);
        if (r < 0)
                return r;
        if (pacman_style)
                r = populate_trusted(k, tfprs, tlevels, reterr);
        else if (all_ot) {
                r = write_file(k->home, "ownertrust.txt", all_ot, reterr);
                _cleanup_free_ char *otpath = fs_path_join(k->home, "ownertrust.txt");
                if (r >= 0 && !otpath)
                        r = -ENOMEM;
                if (r >= 0)
                        r = run_gpg(k, reterr, "--import-ownertrust", otpath, NULL, NULL, NULL);
        }
        if (r < 0)
                return mkm_err_prefix(reterr, r, "cannot set up trust for keyring %s", path);
        r = scrub_home(k, reterr);
        if (r < 0)
                return r;
        /* Compute validity now, once, rather than inside the first verification; after the scrub,
         * so that it is computed exactly as it will be for a home copied from the cache. */
        return run_gpg(k, reterr, "--check-trustdb", NULL, NULL, NULL, NULL);
}

int verify_keyring_new(struct mkm_ctx *ctx, const char *path, struct verify_keyring **ret, struct mkm_err *reterr) {
        return verify_keyring_new_cached(ctx, path, NULL, ret, reterr);
}

int verify_keyring_new_cached(struct mkm_ctx *ctx, const char *path, const char *cache_dir,
                              struct verify_keyring **ret, struct mkm_err *reterr) {
        _cleanup_(verify_keyring_freep) struct verify_keyring *k = mkm_new0(struct verify_keyring, 1);
        _cleanup_(inputs_done) struct inputs in = {};
        _cleanup_strv_free_ char **tfprs = NULL, **tlevels = NULL;
        char key[HASH_SHA256_HEX] = "";
        const char *gpg_version = "";
        int r;

        if (!k)
                return -ENOMEM;
        k->ctx = ctx;
        verify_remove_stale_homes();
        k->fast = calloc(1, sizeof *k->fast);
        if (!k->fast)
                return -ENOMEM;
        if (pthread_mutex_init(&k->fast->lock, NULL) != 0) {
                free(k->fast);
                k->fast = NULL;
                return -ENOMEM;
        }
        r = collect_inputs(path, &in, reterr);
        if (r < 0)
                return r;
        r = find_engines(k, &gpg_version, reterr);
        if (r < 0)
                return r;
        /* Before parsing, which edits the text in place. */
        if (cache_dir) {
                r = cache_key(&in, gpg_version, key);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < in.n; i++) {
                if (in.v[i].kind == INPUT_KEYS)
                        continue;
                bool trusted = in.v[i].kind == INPUT_TRUSTED;
                r = parse_trust_file(in.v[i].path, in.v[i].data, trusted, trusted ? &tfprs : &k->revoked,
                                     trusted ? &tlevels : NULL, reterr);
                if (r < 0)
                        return r;
        }

        bool damaged = false;
        if (cache_dir) {
                struct mkm_err cerr = {};
                r = cache_load(k, cache_dir, key, &cerr);
                if (r > 0) {
                        mkm_debug(ctx, "keyring %s: %u keys, %zu revoked, from the cache (%s/gnupg/%s), home %s", path,
                                  k->n_keys, strv_length(k->revoked), cache_dir, key, k->home);
                        *ret = TAKE_PTR(k);
                        return 0;
                }
                if (r < 0) {
                        damaged = true;
                        mkm_debug(ctx, "keyring %s: the cache entry %s/gnupg/%s is damaged (%s); rebuilding it", path,
                                  cache_dir, key, cerr.msg);
                }
                drop_home(k);
        }

        r = prepare_home(k, path, &in, tfprs, tlevels, reterr);
        if (r < 0)
                return r;
        if (cache_dir) {
                struct mkm_err cerr = {};
                r = cache_store(k, cache_dir, key, damaged, &cerr);
                if (r < 0)
                        mkm_debug(ctx, "keyring %s: cannot store it in the cache, going on without: %s", path,
                                  cerr.msg[0] ? cerr.msg : mkm_strerror(r));
                else
                        mkm_debug(ctx, "keyring %s: stored in the cache as %s/gnupg/%s", path, cache_dir, key);
        }
        mkm_debug(ctx, "keyring %s: %u keys, %s trust, %zu revoked, home %s", path, k->n_keys,
                  inputs_have(&in, INPUT_TRUSTED) ? "pacman-style" : "every-key", strv_length(k->revoked), k->home);
        *ret = TAKE_PTR(k);
        return 0;
}

/* ---- verification ---- */

enum { SEV_NONE, SEV_MISSING, SEV_UNTRUSTED, SEV_EXPIRED, SEV_REVOKED, SEV_BAD };

struct sig_verdict {
        int r;
        int severity;
        char msg[600];
};

static int sev_of(int r) {
        switch (-r) {
        case MKM_E_SIG_BAD: return SEV_BAD;
        case MKM_E_SIG_REVOKED: return SEV_REVOKED;
        case MKM_E_SIG_EXPIRED: return SEV_EXPIRED;
        case MKM_E_SIG_UNTRUSTED: return SEV_UNTRUSTED;
        default: return SEV_MISSING;
        }
}

static void verdict(struct sig_verdict *v, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void verdict(struct sig_verdict *v, int r, const char *fmt, ...) {
        va_list ap;
        v->r = r;
        v->severity = sev_of(r);
        va_start(ap, fmt);
        (void)vsnprintf(v->msg, sizeof v->msg, fmt, ap);
        va_end(ap);
}

static const char *fmt_time(int64_t t, char buf[static 32]) {
        struct tm tm;
        time_t tt = (time_t)t;
        if (!gmtime_r(&tt, &tm) || strftime(buf, 32, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                (void)snprintf(buf, 32, "@%" PRId64, t);
        return buf;
}

static const char *validity_name(gpgme_validity_t v) {
        switch (v) {
        case GPGME_VALIDITY_NEVER: return "never";
        case GPGME_VALIDITY_MARGINAL: return "marginal";
        case GPGME_VALIDITY_FULL: return "full";
        case GPGME_VALIDITY_ULTIMATE: return "ultimate";
        case GPGME_VALIDITY_UNDEFINED: return "undefined";
        default: return "unknown";
        }
}

/* Judge one signature. Returns true (and fills *res) when it is good and trusted. */
static bool judge(struct verify_keyring *k, gpgme_signature_t s, struct verify_result *res, struct sig_verdict *v) {
        const char *id = s->fpr ? s->fpr : "(no key id)";
        gpgme_err_code_t code = gpgme_err_code(s->status);
        char tbuf[32];

        if (code == GPG_ERR_BAD_SIGNATURE || (s->summary & GPGME_SIGSUM_RED && code != GPG_ERR_CERT_REVOKED &&
                                               code != GPG_ERR_KEY_EXPIRED && code != GPG_ERR_SIG_EXPIRED &&
                                               !(s->summary & (GPGME_SIGSUM_KEY_REVOKED | GPGME_SIGSUM_KEY_EXPIRED |
                                                               GPGME_SIGSUM_SIG_EXPIRED)))) {
                /* gpg names only the key id for a bad signature; name the key as elsewhere. */
                _cleanup_(gpgme_key_unrefp) gpgme_key_t bk = NULL;
                if (s->fpr && get_key_cached(k, s->fpr, &bk) == 0 && bk && bk->subkeys && bk->subkeys->fpr)
                        id = bk->subkeys->fpr;
                verdict(v, -MKM_E_SIG_BAD, "bad signature by key %s: the data or the signature was altered", id);
                return false;
        }
        if (code == GPG_ERR_NO_PUBKEY || (s->summary & GPGME_SIGSUM_KEY_MISSING)) {
                verdict(v, -MKM_E_SIG_UNTRUSTED, "signed by unknown key %s (not in the keyring)", id);
                return false;
        }
        if (code != GPG_ERR_NO_ERROR && code != GPG_ERR_KEY_EXPIRED && code != GPG_ERR_SIG_EXPIRED &&
            code != GPG_ERR_CERT_REVOKED) {
                verdict(v, -MKM_E_SIG_BAD, "bad signature by key %s: %s", id, gpgme_strerror(s->status));
                return false;
        }

        /* The signature is cryptographically sound; now the key. */
        _cleanup_(gpgme_key_unrefp) gpgme_key_t key = NULL;
        gpgme_error_t e = s->fpr ? get_key_cached(k, s->fpr, &key) : gpg_error(GPG_ERR_NO_PUBKEY);
        if (e || !key || !key->subkeys || !key->subkeys->fpr) {
                verdict(v, -MKM_E_SIG_UNTRUSTED, "signed by unknown key %s (not in the keyring)", id);
                return false;
        }
        const char *primary = key->subkeys->fpr;
        const char *uid = key->uids && key->uids->uid ? key->uids->uid : "";
        gpgme_subkey_t sub = key->subkeys;
        bool exact = false;     /* s->fpr is a full fingerprint naming this very (sub)key */
        for (gpgme_subkey_t sk = key->subkeys; sk; sk = sk->next)
                if (sk->fpr && strcasecmp(sk->fpr, s->fpr) == 0) {
                        sub = sk;
                        exact = strlen(sk->fpr) == 40;
                }

        if (strv_contains(k->revoked, primary) || strv_contains(k->revoked, sub->fpr)) {
                verdict(v, -MKM_E_SIG_REVOKED, "signed by key %s '%s', which the keyring lists as revoked", primary, uid);
                return false;
        }
        if (code == GPG_ERR_CERT_REVOKED || (s->summary & GPGME_SIGSUM_KEY_REVOKED) || key->revoked || sub->revoked) {
                verdict(v, -MKM_E_SIG_REVOKED, "signed by revoked key %s '%s'", primary, uid);
                return false;
        }
        if (code == GPG_ERR_SIG_EXPIRED || (s->summary & GPGME_SIGSUM_SIG_EXPIRED)) {
                verdict(v, -MKM_E_SIG_EXPIRED, "signature by key %s '%s' expired on %s", primary, uid,
                        fmt_time((int64_t)s->exp_timestamp, tbuf));
                return false;
        }
        if (code == GPG_ERR_KEY_EXPIRED || (s->summary & GPGME_SIGSUM_KEY_EXPIRED) || key->expired || sub->expired) {
                verdict(v, -MKM_E_SIG_EXPIRED, "signed by expired key %s '%s' (expired on %s)", primary, uid,
                        fmt_time((int64_t)(sub->expires ? sub->expires : key->subkeys->expires), tbuf));
                return false;
        }
        if (key->disabled || key->invalid || sub->invalid || s->wrong_key_usage || !sub->can_sign) {
                verdict(v, -MKM_E_SIG_UNTRUSTED, "signed by key %s '%s', which is not trusted: %s", primary, uid,
                        s->wrong_key_usage || !sub->can_sign ? "the key may not make signatures"
                                                             : "the key is disabled or invalid");
                return false;
        }
        if (s->validity != GPGME_VALIDITY_FULL && s->validity != GPGME_VALIDITY_ULTIMATE) {
                verdict(v, -MKM_E_SIG_UNTRUSTED,
                        "signed by key %s '%s', which is not trusted (validity %s: not certified by enough trusted keys)",
                        primary, uid, validity_name(s->validity));
                return false;
        }
        if (res) {
                (void)snprintf(res->fingerprint, sizeof res->fingerprint, "%s", primary);
                upcase(res->fingerprint);
                (void)snprintf(res->uid, sizeof res->uid, "%s", uid);
                /* Only an exact match may feed the fast path (which looks keys up by fingerprint). */
                (void)snprintf(res->signing_key, sizeof res->signing_key, "%s", exact ? sub->fpr : "");
                upcase(res->signing_key);
                /* The earliest expiry of the (sub)key and its primary key; 0: never. */
                int64_t ex = sub->expires, pex = key->subkeys->expires;
                res->key_expires = ex > 0 && (pex <= 0 || ex < pex) ? ex : pex > 0 ? pex : 0;
                res->created = (int64_t)s->timestamp;
        }
        return true;
}

static int verify_run(struct verify_keyring *k, gpgme_data_t sig, gpgme_data_t signed_text, gpgme_data_t plain,
                      const char *what, struct verify_result *ret, struct mkm_err *reterr) {
        gpgme_error_t e = gpgme_op_verify(k->gctx, sig, signed_text, plain);
        gpgme_verify_result_t res = gpgme_op_verify_result(k->gctx);

        if (e) {
                if (gpgme_err_code(e) == GPG_ERR_NO_DATA)
                        return mkm_err_set(reterr, -MKM_E_SIG_BAD,
                                           "bad signature: the %s is not an OpenPGP signature (no signature packets found)", what);
                return mkm_err_set(reterr, -MKM_E_SIG_BAD, "bad signature: cannot check the %s: %s", what, gpgme_strerror(e));
        }
        if (!res || !res->signatures)
                return mkm_err_set(reterr, -MKM_E_SIG_BAD,
                                   "bad signature: the %s is not an OpenPGP signature (no signature packets found)", what);

        struct verify_result good = {};
        struct sig_verdict worst = { .r = 0, .severity = SEV_NONE };
        bool have_good = false;
        unsigned n = 0;
        for (gpgme_signature_t s = res->signatures; s; s = s->next, n++) {
                struct sig_verdict v = {};
                struct verify_result one = {};
                if (judge(k, s, &one, &v)) {
                        if (!have_good)
                                good = one;
                        have_good = true;
                        continue;
                }
                mkm_debug(k->ctx, "signature %u: %s", n, v.msg);
                if (v.severity > worst.severity)
                        worst = v;
        }
        if (worst.severity == SEV_BAD || !have_good)
                return mkm_err_set(reterr, worst.r ? worst.r : -MKM_E_SIG_MISSING, "%s",
                                   worst.r ? worst.msg : "no usable signature");
        mkm_debug(k->ctx, "good signature by %s '%s'", good.fingerprint, good.uid);
        if (ret)
                *ret = good;
        return 0;
}

/* ---- the native fast path ---- */

#define FAST_READ_CHUNK ((size_t)256 * 1024)

/* Whether sig is one the fast path may accept at all (else gpg decides). */
static bool fast_eligible(const struct pgp_sig *sig) {
        return sig->type == 0x00 && sig->created >= 0 && sig->created <= (int64_t)time(NULL) && !sig->has_expiry &&
               !sig->unknown_critical && !sig->ambiguous && (sig->issuer_fpr[0] || sig->issuer_keyid[0]);
}

/* The confirmed key that made sig and may still be used now, or NULL. With f->lock held. */
static const struct fast_key *fast_find(const struct fast *f, const struct pgp_sig *sig, int64_t now) {
        for (size_t i = 0; i < f->n; i++) {
                const struct fast_key *fk = &f->keys[i];
                const char *fpr = fk->key.fpr;
                if (!(sig->issuer_fpr[0] ? strcmp(fpr, sig->issuer_fpr) == 0
                                         : strcmp(fpr + strlen(fpr) - 16, sig->issuer_keyid) == 0))
                        continue;
                if ((fk->expires > 0 && now >= fk->expires) || now - fk->learned >= FAST_TTL_SECONDS || now < fk->learned)
                        return NULL;    /* ask gpg again */
                return fk;
        }
        return NULL;
}

/* Check sig over data (len bytes) or, when data is NULL, over fd from offset off to its end,
 * without moving fd's offset. 0 and *ret filled when a confirmed key made a valid signature;
 * any other result means "ask gpg". */
static int fast_verify(struct verify_keyring *k, const void *data, size_t len, int fd, off_t off, const void *sigbuf,
                       size_t siglen, struct verify_result *ret) {
        struct fast *f = k->fast;
        if (!f)
                return -ENOTSUP;
        struct pgp_sig sig;
        int r = pgp_sig_parse(sigbuf, siglen, &sig);
        if (r < 0)
                return r;
        struct pgp_key key = {};
        struct verify_result res = {};
        pthread_mutex_lock(&f->lock);
        const struct fast_key *fk = fast_eligible(&sig) ? fast_find(f, &sig, (int64_t)time(NULL)) : NULL;
        if (fk) {
                /* Entries are never removed or changed while the keyring lives: borrow the key. */
                key = fk->key;
                (void)snprintf(res.fingerprint, sizeof res.fingerprint, "%s", fk->primary);
                (void)snprintf(res.uid, sizeof res.uid, "%s", fk->uid);
                (void)snprintf(res.signing_key, sizeof res.signing_key, "%s", fk->key.fpr);
                res.key_expires = fk->expires;
        }
        pthread_mutex_unlock(&f->lock);
        if (!fk) {
                pgp_sig_done(&sig);
                return -ENOKEY;
        }
        _cleanup_(pgp_hash_freep) struct pgp_hash *h = NULL;
        r = pgp_hash_new(&sig, &h);
        if (r >= 0 && data)
                r = pgp_hash_update(h, data, len);
        else if (r >= 0) {
                _cleanup_free_ uint8_t *buf = malloc(FAST_READ_CHUNK);
                if (!buf)
                        r = -ENOMEM;
                for (off_t pos = off; r >= 0;) {
                        ssize_t n = pread(fd, buf, FAST_READ_CHUNK, pos);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0) {
                                r = n < 0 ? negative_errno() : 0;
                                break;
                        }
                        r = pgp_hash_update(h, buf, (size_t)n);
                        pos += n;
                }
        }
        if (r >= 0)
                r = pgp_verify(&key, &sig, h);
        res.created = sig.created;
        pgp_sig_done(&sig);
        if (r < 0)
                return r;
        pthread_mutex_lock(&f->lock);
        f->native++;
        pthread_mutex_unlock(&f->lock);
        if (ret)
                *ret = res;
        return 0;
}

/* gpg accepted sig, made by res->signing_key: remember that key's material for the fast path.
 * Failing to is harmless (the next signature goes to gpg again). */
static void fast_learn(struct verify_keyring *k, const void *sigbuf, size_t siglen, const struct verify_result *res) {
        struct fast *f = k->fast;
        if (!f)
                return;
        int64_t now = (int64_t)time(NULL);
        bool known = false;
        pthread_mutex_lock(&f->lock);
        f->gpg++;
        for (size_t i = 0; i < f->n && !known; i++)
                if (strcmp(f->keys[i].key.fpr, res->signing_key) == 0) {
                        /* gpg judged it again: good for another while. */
                        f->keys[i].learned = now;
                        f->keys[i].expires = res->key_expires;
                        known = true;
                }
        pthread_mutex_unlock(&f->lock);
        struct pgp_sig sig;
        if (known || strlen(res->signing_key) != 40 || (res->key_expires > 0 && now >= res->key_expires) ||
            pgp_sig_parse(sigbuf, siglen, &sig) < 0)
                return;
        bool eligible = fast_eligible(&sig);
        pgp_sig_done(&sig);
        if (!eligible)
                return;
        _cleanup_(gpgme_data_releasep) gpgme_data_t out = NULL;
        if (gpgme_data_new(&out) || gpgme_op_export(k->gctx, res->signing_key, 0, out))
                return;
        size_t len = 0;
        char *buf = gpgme_data_release_and_get_mem(out, &len);
        out = NULL;
        if (!buf)
                return;
        struct pgp_key *keys = NULL;
        size_t n = 0;
        int r = pgp_keys_parse(buf, len, &keys, &n);
        gpgme_free(buf);
        if (r < 0)
                return;
        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; i < n; i++) {
                if (!keys[i].pkey || strcmp(keys[i].fpr, res->signing_key) != 0)
                        continue;
                bool again = false;     /* another thread may have learnt it meanwhile */
                for (size_t j = 0; j < f->n && !again; j++)
                        again = strcmp(f->keys[j].key.fpr, res->signing_key) == 0;
                struct fast_key *nk = again ? NULL : mkm_reallocarray(f->keys, f->n + 1, sizeof *nk);
                if (!nk)
                        break;
                f->keys = nk;
                nk[f->n] = (struct fast_key){ .key = keys[i], .learned = now, .expires = res->key_expires };
                keys[i].pkey = NULL;    /* moved */
                (void)snprintf(nk[f->n].primary, sizeof nk[f->n].primary, "%s", res->fingerprint);
                (void)snprintf(nk[f->n].uid, sizeof nk[f->n].uid, "%s", res->uid);
                f->n++;
                break;
        }
        pthread_mutex_unlock(&f->lock);
        pgp_keys_free(keys, n);
}

void verify_keyring_stats(const struct verify_keyring *k, unsigned *ret_native, unsigned *ret_gpg) {
        unsigned a = 0, b = 0;
        if (k && k->fast) {
                pthread_mutex_lock(&k->fast->lock);
                a = k->fast->native;
                b = k->fast->gpg;
                pthread_mutex_unlock(&k->fast->lock);
        }
        if (ret_native)
                *ret_native = a;
        if (ret_gpg)
                *ret_gpg = b;
}

static int check_sig_size(size_t siglen, struct mkm_err *reterr) {
        if (siglen == 0)
                return mkm_err_set(reterr, -MKM_E_SIG_MISSING, "signature missing: the signature is empty");
        if (siglen > VERIFY_MAX_SIG)
                return mkm_err_set(reterr, -MKM_E_SIG_BAD, "bad signature: %zu bytes, more than the %zu a signature may have",
                                   siglen, VERIFY_MAX_SIG);
        return 0;
}

/* gpg's verdict on a detached signature; a good one teaches the fast path its key. */
static int detached_by_gpg(struct verify_keyring *k, gpgme_data_t s, gpgme_data_t d, const void *sig, size_t siglen,
                           struct verify_result *ret, struct mkm_err *reterr) {
        struct verify_result res;
        int r = verify_run(k, s, d, NULL, "detached signature", &res, reterr);
        if (r < 0)
                return r;
        fast_learn(k, sig, siglen, &res);
        if (ret)
                *ret = res;
        return 0;
}

int verify_detached(struct verify_keyring *k, const void *data, size_t len, const void *sig, size_t siglen,
                    struct verify_result *ret, struct mkm_err *reterr) {
        int r = check_sig_size(siglen, reterr);
        if (r < 0)
                return r;
        if (len > VERIFY_MAX_DATA)
                return mkm_err_set(reterr, -EFBIG, "signed data of %zu bytes exceeds the %zu byte limit", len, VERIFY_MAX_DATA);
        if (fast_verify(k, len ? data : "", len, -EBADF, 0, sig, siglen, ret) == 0)
                return 0;
        _cleanup_(gpgme_data_releasep) gpgme_data_t s = NULL, d = NULL;
        gpgme_error_t e = gpgme_data_new_from_mem(&s, sig, siglen, 0);
        if (!e)
                e = gpgme_data_new_from_mem(&d, len ? data : "", len, 0);
        if (e)
                return mkm_err_set(reterr, gpg_to_errno(e), "gpgme: %s", gpgme_strerror(e));
        return detached_by_gpg(k, s, d, sig, siglen, ret, reterr);
}

int verify_detached_fd(struct verify_keyring *k, int fd, const void *sig, size_t siglen,
                       struct verify_result *ret, struct mkm_err *reterr) {
        int r = check_sig_size(siglen, reterr);
        if (r < 0)
                return r;
        off_t off = lseek(fd, 0, SEEK_CUR);
        if (off >= 0 && fast_verify(k, NULL, 0, fd, off, sig, siglen, ret) == 0)
                return 0;
        _cleanup_(gpgme_data_releasep) gpgme_data_t s = NULL, d = NULL;
        gpgme_error_t e = gpgme_data_new_from_mem(&s, sig, siglen, 0);
        if (!e)
                e = gpgme_data_new_from_fd(&d, fd);
        if (e)
                return mkm_err_set(reterr, gpg_to_errno(e), "gpgme: %s", gpgme_strerror(e));
        return detached_by_gpg(k, s, d, sig, siglen, ret, reterr);
}

/* Count lines that open a clearsigned message (gpg accepts trailing whitespace on armor lines). */
static unsigned count_clearsign_headers(const char *p, size_t len) {
        static const char hdr[] = "-----BEGIN PGP SIGNED MESSAGE-----";
        const size_t hl = sizeof hdr - 1;
        unsigned n = 0;
        for (size_t i = 0; i < len;) {
                const char *nl = memchr(p + i, '\n', len - i);
                size_t end = nl ? (size_t)(nl - p) : len;
                if (end - i >= hl && memcmp(p + i, hdr, hl) == 0) {
                        size_t j = i + hl;
                        while (j < end && (p[j] == ' ' || p[j] == '\t' || p[j] == '\r'))
                                j++;
                        if (j == end)
                                n++;
                }
                i = end + 1;
        }
        return n;
}

int verify_clearsigned(struct verify_keyring *k, const void *data, size_t len, char **ret_text, size_t *ret_len,
                       struct verify_result *ret, struct mkm_err *reterr) {
        if (len > VERIFY_MAX_DATA)
                return mkm_err_set(reterr, -EFBIG, "clearsigned file of %zu bytes exceeds the %zu byte limit", len, VERIFY_MAX_DATA);
        unsigned n = count_clearsign_headers(data, len);
        if (n == 0)
                return mkm_err_set(reterr, -MKM_E_SIG_MISSING,
                                   "signature missing: no clearsigned message (-----BEGIN PGP SIGNED MESSAGE-----) in the input");
        if (n > 1)
                return mkm_err_set(reterr, -MKM_E_SIG_BAD,
                                   "bad signature: %u clearsigned messages in one file; refusing (only one is allowed)", n);

        _cleanup_(gpgme_data_releasep) gpgme_data_t s = NULL, plain = NULL;
        gpgme_error_t e = gpgme_data_new_from_mem(&s, data, len, 0);
        if (!e)
                e = gpgme_data_new(&plain);
        if (e)
                return mkm_err_set(reterr, gpg_to_errno(e), "gpgme: %s", gpgme_strerror(e));
        struct verify_result res;
        int r = verify_run(k, s, NULL, plain, "clearsigned message", &res, reterr);
        if (r < 0)
                return r;

        size_t plen = 0;
        char *p = gpgme_data_release_and_get_mem(TAKE_PTR(plain), &plen);
        if (!p && plen > 0)
                return -ENOMEM;
        char *text = malloc(plen + 1);
        if (!text) {
                gpgme_free(p);
                return -ENOMEM;
        }
        if (plen)
                memcpy(text, p, plen);
        text[plen] = 0;
        gpgme_free(p);
        *ret_text = text;
        if (ret_len)
                *ret_len = plen;
        if (ret)
                *ret = res;
        return 0;
}
