/* SPDX-License-Identifier: MIT */
/* The keyring side of verify.h: a private, temporary GNUPGHOME per keyring (never the user's),
 * the keyring's input files read once, the imports and the trust setup (every key an anchor, or
 * pacman-key --populate's lsigns by a throwaway key), the cache of prepared homes under
 * CACHE_DIR/gnupg, clones for other threads, and the removal of homes whose creator died.
 * Threats handled here: a keyring home another user could write (it would hand them the trust
 * decisions), a damaged or altered cache entry, a throwaway secret key outliving the setup, and
 * gpg-agents or homes left behind by killed builds.
 *
 * No daemon is ever started on its own: gpg.conf says no-autostart (verification and public-key
 * imports need no agent), and the one agent the throwaway key needs runs as our child in
 * --supervised mode on a socket we made, with PR_SET_PDEATHSIG, so it dies with us even on
 * SIGKILL (a daemonised one outlived a killed build and re-created its home after the guard
 * removed it). Every home is flock'ed by its creator while it lives: a later build removes
 * the homes whose creator is gone (its pid dead and the lock free). */
#include "verify.h"
#include "verify-internal.h"

#include <ctype.h>
#include <dirent.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <gpgme.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pgp.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/strv.h"

#define TRUST_FILE_MAX ((size_t)1024 * 1024)

static bool is_fpr(const char *s, size_t len) {
        if (len != 40 && len != 64)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!isxdigit((unsigned char)s[i]))
                        return false;
        return true;
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

        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot fork for %s: %m", argv[0]);
        if (pid == 0) {
                /* Only async-signal-safe calls from here on. dup2 clears O_CLOEXEC on the copies.
                 * Dies with us (a killed build leaves no gpg behind). */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
                        _exit(127);
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
        if (fs_read_file_follow_at(AT_FDCWD, log, 1024 * 1024, &text, &len) >= 0) {
                while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
                        text[--len] = 0;
                (void)snprintf(tail, sizeof tail, ": %s", len > 400 ? text + len - 400 : text);
        }
        return mkm_err_set(reterr, -EIO, "%s %s failed (%s %d)%s", argv[0], what,
                           WIFEXITED(status) ? "exit status" : "signal",
                           WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), tail);
}

/* gpg --with-colons --list-keys FPR in k's home, for its "tru:" record (gpg's DETAILS: field 5
 * is when the trustdb must be checked again, 0 or empty for never). --no-auto-check-trustdb: this
 * only reads; gpg's own verification brings a stale trustdb up to date (check_trustdb_stale). The
 * output is capped; the tru record comes first. Thread-safe (clones call it). */
int verify_trustdb_nextcheck(struct verify_keyring *k, const char *fpr, int64_t *ret) {
        static char *const envp[] = { "LC_ALL=C", "PATH=/usr/local/bin:/usr/bin:/bin", NULL };
        char *argv[] = { k->gpg, "--homedir", k->home, "--batch", "--no-tty", "--quiet", "--no-auto-check-trustdb",
                         "--with-colons", "--list-keys", "--", (char *)fpr, NULL };
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        _cleanup_close_ int rfd = p[0], wfd = p[1];
        _cleanup_close_ int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nullfd < 0)
                return negative_errno();
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
                        _exit(127);
                if (dup2(nullfd, 0) < 0 || dup2(wfd, 1) < 0 || dup2(nullfd, 2) < 0)
                        _exit(127);
                execve(argv[0], argv, envp);
                _exit(127);
        }
        (void)close(TAKE_FD(wfd));
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        int r = fs_read_fd(rfd, 64 * 1024, &out, &len);
        (void)close(TAKE_FD(rfd));      /* a longer listing ends with SIGPIPE: the tru record came first */
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        if (r < 0 && r != -EFBIG)
                return r;
        /* tru:<staleness>:<model>:<created>:<nextcheck>:... */
        for (char *line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                if (strncmp(line, "tru:", 4) != 0)
                        continue;
                const char *f = line;
                for (int i = 0; i < 4 && f; i++)
                        f = strchr(f, ':') ? strchr(f, ':') + 1 : NULL;
                if (!f)
                        return -EBADMSG;
                int64_t v = 0;
                for (; *f >= '0' && *f <= '9'; f++) {
                        if (v > (INT64_MAX - 9) / 10)
                                return -EBADMSG;
                        v = v * 10 + (*f - '0');
                }
                if (*f != ':' && *f != '\n' && *f != 0)
                        return -EBADMSG;
                *ret = v;
                return 0;
        }
        return -ENODATA;        /* no trustdb (cannot happen: prepare_home checks it) */
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

/* Start gpg-agent for this home as our child: --supervised on a listening socket we create at
 * HOME/S.gpg-agent (passed as fd 3, as systemd would), never detached, killed when we die. */
static int start_agent(struct verify_keyring *k, struct mkm_err *reterr) {
        const char *agent = gpgme_get_dirinfo("agent-name");
        if (!agent || agent[0] != '/')
                return mkm_err_set(reterr, -ENOENT, "gpgme knows no gpg-agent binary (is gpg-agent installed?)");
        _cleanup_free_ char *sockpath = fs_path_join(k->home, "S.gpg-agent");
        if (!sockpath)
                return -ENOMEM;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(sockpath) >= sizeof sa.sun_path)
                return mkm_err_set(reterr, -ENAMETOOLONG, "%s: too long for a socket", sockpath);
        strcpy(sa.sun_path, sockpath);
        _cleanup_close_ int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sock < 0 || bind(sock, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(sock, 64) < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot listen on %s: %m", sockpath);
        _cleanup_close_ int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nullfd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot open /dev/null: %m");
        char *argv[] = { (char *)agent, "--homedir", k->home, "--supervised", NULL };
        char listen_pid[32] = "LISTEN_PID=";
        char *envp[] = { "LC_ALL=C", "PATH=/usr/local/bin:/usr/bin:/bin", "LISTEN_FDS=1", "LISTEN_FDNAMES=std",
                         listen_pid, NULL };
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot fork for %s: %m", agent);
        if (pid == 0) {
                /* Async-signal-safe only: the pid formatted by hand. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
                        _exit(127);
                char digits[16];
                int n = 0;
                for (unsigned v = (unsigned)getpid(); v; v /= 10)
                        digits[n++] = (char)('0' + v % 10);
                size_t l = strlen(listen_pid);
                while (n > 0)
                        listen_pid[l++] = digits[--n];
                listen_pid[l] = 0;
                if (sock == 3 ? fcntl(sock, F_SETFD, 0) < 0 : dup2(sock, 3) < 0)
                        _exit(127);
                if (dup2(nullfd, 0) < 0 || dup2(nullfd, 1) < 0 || dup2(nullfd, 2) < 0)
                        _exit(127);
                execve(argv[0], argv, envp);
                _exit(127);
        }
        k->agent_pid = pid;
        return 0;
}

static void stop_agent(struct verify_keyring *k, int sig) {
        if (k->agent_pid <= 0)
                return;
        (void)kill(k->agent_pid, sig);
        while (waitpid(k->agent_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        k->agent_pid = 0;
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
        verify_fast_free(k->fast);
        stop_agent(k, SIGKILL);
        if (k->home) {
                /* A daemon may run if something started one despite no-autostart; never leave one behind. */
                if (k->gpgconf && home_has_daemon(k)) {
                        (void)run_gpgconf(k, "--kill", "all", NULL);
                        (void)run_gpgconf(k, "--remove-socketdir", NULL, NULL);
                }
                (void)fs_rm_rf_at(AT_FDCWD, k->home);
                free(k->home);
        }
        if (k->home_lock_fd >= 0)
                (void)close(k->home_lock_fd);
        free(k->gpg);
        free(k->gpgconf);
        strv_free(k->revoked);
        free(k);
        return NULL;
}

static const char *homes_dir(void);

/* The homes in homes_dir() of pid, or (pid 0) of every process that no longer exists and whose
 * flock is free (fs_remove_dirs_of). A gpg-agent of a removed home notices its socket is gone and
 * exits. */
static void remove_homes(pid_t pid) {
        (void)fs_remove_dirs_of(homes_dir(), "mkm-gnupg", pid);
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
                                      .fast = k->fast, .home_lock_fd = -EBADF };
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

/* Import one keyring file, already read into memory (the same bytes the cache key covers). The
 * primary fingerprints it holds that no earlier file held are appended to *fprs, and its path, once
 * for each, to *from (to name the file a key came from). */
static int import_buf(struct verify_keyring *k, const char *path, const char *buf, size_t len, char ***fprs,
                      char ***from, struct mkm_err *reterr) {
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
        for (gpgme_import_status_t st = res->imports; st; st = st->next) {
                if (!st->fpr || st->result || strv_contains(*fprs, st->fpr))
                        continue;
                if (strv_push(fprs, st->fpr) < 0 || strv_push(from, path) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* The highest validity gpg computed for key (its user IDs'): what a signature by it gets. */
static gpgme_validity_t key_validity(gpgme_key_t key) {
        gpgme_validity_t v = GPGME_VALIDITY_UNKNOWN;
        for (gpgme_user_id_t u = key->uids; u; u = u->next)
                if (!u->revoked && !u->invalid && u->validity > v)
                        v = u->validity;
        return v;
}

/* Refuse a keyring that trusts a weak key (pgp_key_weakness): a primary key, or a subkey that
 * may sign, that is neither revoked nor expired, of a key whose signatures gpg would accept (full
 * or ultimate validity after the trust setup, not on the -revoked list). fprs and from say which
 * file each primary key came from. A weak key that is not trusted (real keyrings keep retired
 * packagers' DSA-1024 keys: Arch's, with no or marginal validity) is left alone with a debug
 * line: gpg refuses its signatures as untrusted anyway. */
static int check_weak_keys(struct verify_keyring *k, const char *path, char **fprs, char **from, struct mkm_err *reterr) {
        _cleanup_(gpgme_data_releasep) gpgme_data_t out = NULL;
        gpgme_error_t e = gpgme_data_new(&out);
        if (!e)
                e = gpgme_op_export(k->gctx, NULL, 0, out);
        if (e)
                return mkm_err_set(reterr, gpg_to_errno(e), "cannot export keyring %s to check its keys: %s", path,
                                   gpgme_strerror(e));
        size_t len = 0;
        char *buf = gpgme_data_release_and_get_mem(TAKE_PTR(out), &len);
        if (!buf && len > 0)
                return -ENOMEM;
        struct pgp_key *keys = NULL;
        size_t n = 0;
        int r = pgp_keys_parse(buf ? buf : "", len, &keys, &n);
        gpgme_free(buf);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot read keyring %s back from gpg: %s", path, mkm_strerror(r));

        e = gpgme_op_keylist_start(k->gctx, NULL, 0);
        if (e)
                r = mkm_err_set(reterr, gpg_to_errno(e), "cannot list keys: %s", gpgme_strerror(e));
        while (r >= 0) {
                _cleanup_(gpgme_key_unrefp) gpgme_key_t key = NULL;
                e = gpgme_op_keylist_next(k->gctx, &key);
                if (gpgme_err_code(e) == GPG_ERR_EOF)
                        break;
                if (e) {
                        r = mkm_err_set(reterr, gpg_to_errno(e), "cannot list keys: %s", gpgme_strerror(e));
                        break;
                }
                if (!key->subkeys || !key->subkeys->fpr)
                        continue;
                const char *primary = key->subkeys->fpr;
                bool trusted = !key->revoked && !key->expired && !key->disabled && !key->invalid &&
                               key_validity(key) >= GPGME_VALIDITY_FULL && !strv_contains(k->revoked, primary);
                for (gpgme_subkey_t sk = key->subkeys; sk && r >= 0; sk = sk->next) {
                        if (!sk->fpr || (sk != key->subkeys && (!sk->can_sign || sk->revoked || sk->expired || sk->invalid)))
                                continue;
                        const struct pgp_key *pk = NULL;
                        for (size_t i = 0; i < n && !pk; i++)
                                if (strcasecmp(keys[i].fpr, sk->fpr) == 0)
                                        pk = &keys[i];
                        char why[160];
                        if (!pk || !pgp_key_weakness(pk, why, sizeof why))
                                continue;
                        const char *file = path;
                        for (size_t i = 0; fprs && fprs[i]; i++)
                                if (strcasecmp(fprs[i], primary) == 0)
                                        file = from[i];
                        const char *uid = key->uids && key->uids->uid ? key->uids->uid : "";
                        char what[VERIFY_FPR_MAX + 32] = "";
                        if (sk != key->subkeys)
                                (void)snprintf(what, sizeof what, "signing subkey %s of ", sk->fpr);
                        if (!trusted) {
                                mkm_debug(k->ctx, "keyring %s: %skey %s '%s' is weak (%s), but not trusted; gpg refuses "
                                          "its signatures", file, what, primary, uid, why);
                                continue;
                        }
                        r = mkm_err_set(reterr, -EKEYREJECTED,
                                        "%s: %strusted key %s '%s' is too weak to be trusted: %s; refusing the "
                                        "keyring (remove the key from it or, in a keyring directory, list %s in a "
                                        "-revoked file)", file, what, primary, uid, why, primary);
                }
        }
        (void)gpgme_op_keylist_end(k->gctx);
        pgp_keys_free(keys, n);
        return r;
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
        r = start_agent(k, reterr);
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
        stop_agent(k, SIGTERM);
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
        /* Held until the home is removed: tells a later build that the home is in use. */
        k->home_lock_fd = open(k->home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (k->home_lock_fd < 0 || flock(k->home_lock_fd, LOCK_EX | LOCK_NB) < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot lock %s: %m", k->home);
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
        if (k->home_lock_fd >= 0)
                (void)close(k->home_lock_fd);
        k->home_lock_fd = -EBADF;
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

/* Read fd (the file label names, of the given kind) into a new input. */
static int inputs_add_fd(struct inputs *in, enum input_kind kind, int fd, const char *label, struct mkm_err *reterr) {
        struct input *v = mkm_reallocarray(in->v, in->n + 1, sizeof *v);
        if (!v)
                return -ENOMEM;
        in->v = v;
        struct input *x = &in->v[in->n];
        *x = (struct input){ .kind = kind, .path = strdup(label) };
        if (!x->path)
                return -ENOMEM;
        in->n++;
        size_t max = kind == INPUT_KEYS ? VERIFY_MAX_KEYRING : TRUST_FILE_MAX;
        int r = fs_read_fd(fd, max, &x->data, &x->len);
        if (r == -EFBIG && kind == INPUT_KEYS)
                return mkm_err_set(reterr, r, "%s: keyring file larger than %zu bytes", label, max);
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot read %s%s: %s", kind == INPUT_KEYS ? "keyring " : "", label,
                                   mkm_strerror(r));
        return 0;
}

static bool is_keyring_input(int dirfd, const char *name, void *userdata) {
        (void)dirfd, (void)userdata;
        return name[0] != '.' && (has_suffix(name, ".gpg") || has_suffix(name, ".asc") ||
                                  has_suffix(name, "-trusted") || has_suffix(name, "-revoked"));
}

/* A keyring directory's files: *.gpg and *.asc keys, NAME-trusted and NAME-revoked lists (others
 * are ignored, and so are entries that are not regular files). Each is opened inside dfd, without
 * blocking (a FIFO is not waited on), and read from the fd it was judged by; with confined, an
 * entry that is a symbolic link is refused, since it would lead out of the directory. */
static int collect_dir_fd(int dfd, const char *dir, bool confined, const struct fs_reader *as, struct inputs *in,
                          struct mkm_err *reterr) {
        struct stat dst;
        if (confined && fstat(dfd, &dst) == 0 && fs_anyone_writes(&dst))
                return mkm_err_set(reterr, -MKM_E_ANYONE_WRITES, "%s: a directory anyone can write: its files may be anyone's",
                                   dir);
        _cleanup_strv_free_ char **names = NULL;
        int r = fs_list_names(dfd, is_keyring_input, NULL, 0, &names);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot read keyring directory %s: %s", dir, mkm_strerror(r));
        size_t n = strv_length(names);
        uint64_t total = 0;
        /* keys, then -trusted, then -revoked, each sorted by name */
        for (enum input_kind kind = 0; kind < _INPUT_KIND_MAX; kind++)
                for (size_t i = 0; i < n; i++) {
                        const char *name = names[i];
                        enum input_kind k = has_suffix(name, "-trusted") ? INPUT_TRUSTED
                                : has_suffix(name, "-revoked") ? INPUT_REVOKED : INPUT_KEYS;
                        if (k != kind)
                                continue;
                        _cleanup_free_ char *label = fs_path_join(dir, name);
                        if (!label)
                                return -ENOMEM;
                        /* Judged before it is opened for reading: a device is never opened.
                         * Looked up and opened with the recipe owner's permissions (as). */
                        struct fs_reader_saved saved;
                        r = fs_reader_enter(as, &saved);
                        if (r == -MKM_E_IDENTITY)
                                return mkm_err_set(reterr, r, "%s " FS_IDENTITY_REFUSED, label);
                        if (r < 0)
                                return mkm_err_set(reterr, r, "cannot read %s as the recipe's owner: %s", label,
                                                   mkm_strerror(r));
                        _cleanup_close_ int pfd = openat(dfd, name, O_PATH | O_CLOEXEC | (confined ? O_NOFOLLOW : 0));
                        _cleanup_close_ int fd = -EBADF;
                        struct stat st, st2;
                        int e = 0;
                        bool judged = false;
                        if (pfd < 0 || fstat(pfd, &st) < 0)
                                e = errno;
                        else if ((judged = true) && S_ISREG(st.st_mode)) {
                                char proc[64];
                                (void)snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
                                fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                                e = fd < 0 ? errno : 0;
                        }
                        fs_reader_leave(&saved);
                        if (e == EACCES)
                                return mkm_err_set(reterr, -EACCES, "%s %s", label, FS_READER_REFUSED);
                        if (!judged)
                                continue;
                        if (S_ISLNK(st.st_mode))
                                return mkm_err_set(reterr, -ELOOP,
                                                   "%s: a symbolic link (a recipe's keyring directory holds its files "
                                                   "itself)",
                                                   label);
                        if (!S_ISREG(st.st_mode))
                                continue;
                        if (fd < 0)
                                return mkm_err_set(reterr, -e, "cannot read %s: %s", label, strerror(e));
                        if (fstat(fd, &st2) < 0)
                                return mkm_err_set(reterr, negative_errno(), "cannot read %s: %m", label);
                        if (st2.st_dev != st.st_dev || st2.st_ino != st.st_ino)
                                return mkm_err_set(reterr, -EBUSY, "%s changed while it was read", label);
                        if (confined) {
                                r = fs_check_own_link(dfd, name, &st2);
                                if (fs_beside_refusal(r))
                                        return mkm_err_set(reterr, r, "%s %s", label, fs_beside_refusal(r));
                                if (r < 0)
                                        return mkm_err_set(reterr, r, "cannot stat %s: %s", label, mkm_strerror(r));
                        }
                        /* All the files together, not each up to its cap. */
                        if ((uint64_t)st2.st_size > VERIFY_MAX_KEYRING - total)
                                return mkm_err_set(reterr, -EFBIG, "%s: the keyring's files hold more than %zu bytes",
                                                   dir, (size_t)VERIFY_MAX_KEYRING);
                        total += (uint64_t)st2.st_size;
                        r = inputs_add_fd(in, kind, fd, label, reterr);
                        if (r < 0)
                                return r;
                }
        if (!inputs_have(in, INPUT_KEYS))
                return mkm_err_set(reterr, -ENOENT, "%s: no *.gpg or *.asc keyring files in the directory", dir);
        return 0;
}

/* Read every file verification depends on, in a fixed order: keys, -trusted, -revoked, each
 * sorted by name. fd is the keyring, a file or a directory, that label names. */
static int collect_inputs_fd(int fd, const char *label, bool confined, const struct fs_reader *as, struct inputs *in,
                             struct mkm_err *reterr) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot access keyring %s: %m", label);
        if (S_ISDIR(st.st_mode))
                return collect_dir_fd(fd, label, confined, as, in, reterr);
        if (S_ISREG(st.st_mode))
                return inputs_add_fd(in, INPUT_KEYS, fd, label, reterr);
        return mkm_err_set(reterr, -EINVAL, "keyring %s is neither a file nor a directory", label);
}

/* ---- the cache of prepared homes ----
 * CACHE_DIR/gnupg/<key>/ holds the files below plus "digest": the format line, the key, the key
 * count, and each file's sha256. The key covers everything the prepared home depends on: the
 * format, gpg's version, gpg.conf, and every input file's kind, name and bytes. The cache is a
 * trusted local directory, like the package cache; the digest file guards against an entry that
 * a crash or a disk left half-written or that was altered since: it is then rebuilt. The
 * throwaway key's secret part is never stored (scrub_home removes it before the entry is made). */
#define CACHE_FORMAT "mkmachine gnupg cache 2"    /* 2: weak keys refused (check_weak_keys) */
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
        int r = fs_read_file_follow_at(efd, "digest", CACHE_DIGEST_MAX, &text, NULL);
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
                r = fs_read_file_follow_at(hfd, cached_files[i], CACHE_FILE_MAX, &data, &len);
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
        _cleanup_strv_free_ char **fprs = NULL, **from = NULL;
        for (size_t i = 0; i < in->n; i++) {
                if (in->v[i].kind != INPUT_KEYS)
                        continue;
                r = import_buf(k, in->v[i].path, in->v[i].data, in->v[i].len, &fprs, &from, reterr);
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
        r = run_gpg(k, reterr, "--check-trustdb", NULL, NULL, NULL, NULL);
        if (r < 0)
                return r;
        /* Before any signature is checked, and before the home can enter the cache (so a home
         * from the cache passed this check: the cache key covers every input byte). */
        return check_weak_keys(k, path, fprs, from, reterr);
}

int verify_keyring_new(struct mkm_ctx *ctx, const char *path, struct verify_keyring **ret, struct mkm_err *reterr) {
        return verify_keyring_new_cached(ctx, path, NULL, ret, reterr);
}

static int keyring_new(struct mkm_ctx *ctx, int fd, const char *path, bool confined, const struct fs_reader *as,
                       const char *cache_dir, struct verify_keyring **ret, struct mkm_err *reterr);

int verify_keyring_new_cached(struct mkm_ctx *ctx, const char *path, const char *cache_dir,
                              struct verify_keyring **ret, struct mkm_err *reterr) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return mkm_err_set(reterr, negative_errno(), "cannot access keyring %s: %m", path);
        return keyring_new(ctx, fd, path, false, NULL, cache_dir, ret, reterr);
}

int verify_keyring_new_cached_fd(struct mkm_ctx *ctx, int fd, const char *label, const struct fs_reader *as,
                                 const char *cache_dir, struct verify_keyring **ret, struct mkm_err *reterr) {
        return keyring_new(ctx, fd, label, true, as, cache_dir, ret, reterr);
}

static int keyring_new(struct mkm_ctx *ctx, int fd, const char *path, bool confined, const struct fs_reader *as,
                       const char *cache_dir, struct verify_keyring **ret, struct mkm_err *reterr) {
        _cleanup_(verify_keyring_freep) struct verify_keyring *k = mkm_new0(struct verify_keyring, 1);
        _cleanup_(inputs_done) struct inputs in = {};
        _cleanup_strv_free_ char **tfprs = NULL, **tlevels = NULL;
        char key[HASH_SHA256_HEX] = "";
        const char *gpg_version = "";
        int r;

        if (!k)
                return -ENOMEM;
        k->ctx = ctx;
        k->home_lock_fd = -EBADF;
        verify_remove_stale_homes();
        k->fast = verify_fast_new();
        if (!k->fast)
                return -ENOMEM;
        r = collect_inputs_fd(fd, path, confined, as, &in, reterr);
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
