/* SPDX-License-Identifier: MIT */
/* Option parsing, the event renderer, error printing and subcommand dispatch. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "ini.h"
#include "util/fs.h"

struct renderer {
        int verbosity;
        struct timespec start;  /* for elapsed times on stage lines with -v */
        bool tty;               /* stderr is a terminal: one rewritten progress line */
        bool line_open;         /* a progress line is on screen and must be cleared first */
        /* Downloads run alongside the checks and the install: the line shows both. */
        char dl[96], other[96];
        int columns;            /* the terminal's width, 0 if unknown */
        uint64_t bytes;         /* downloaded so far (FILE_DONE events), for the summary line */
        unsigned files;
};

/* --json and the renderer's verbosity, for cli_fail() and cli_usage_error(), which every command
 * calls without a context (the only CLI globals: set once in cli_main). */
static bool arg_json;

static void clear_line(struct renderer *rd) {
        if (rd->line_open) {
                fputs("\r\033[K", stderr);
                rd->line_open = false;
        }
}

void cli_human_size(uint64_t n, char *buf, size_t len) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        double v = (double)n;
        unsigned u = 0;
        while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                u++;
        }
        if (u == 0)
                (void)snprintf(buf, len, "%llu B", (unsigned long long)n);
        else
                (void)snprintf(buf, len, "%.1f %s", v, units[u]);
}

static void render(void *userdata, const struct mkm_event *ev);
static void (*const render_fn)(void *, const struct mkm_event *) = render;

static double elapsed(const struct renderer *rd) {
        struct timespec now;
        (void)clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - rd->start.tv_sec) + (double)(now.tv_nsec - rd->start.tv_nsec) / 1e9;
}

void cli_progress_totals(const struct mkm_ctx *ctx, uint64_t *ret_bytes, unsigned *ret_files, double *ret_seconds) {
        /* The renderer cli_main installed; other callers (tests) have none. */
        const struct renderer *rd = ctx && ctx->events.fn == render_fn ? ctx->events.userdata : NULL;
        *ret_bytes = rd ? rd->bytes : 0;
        *ret_files = rd ? rd->files : 0;
        *ret_seconds = rd ? elapsed(rd) : 0;
}

static void render(void *userdata, const struct mkm_event *ev) {
        struct renderer *rd = userdata;
        char a[32], b[32];

        switch (ev->type) {
        case MKM_EV_LOG:
                if (ev->level == MKM_LOG_DEBUG && rd->verbosity < 1)
                        return;
                if (ev->level == MKM_LOG_INFO && rd->verbosity < 0)
                        return;
                clear_line(rd);
                if (ev->level == MKM_LOG_DEBUG) {
                        fprintf(stderr, "debug: [%.2f] %s\n", elapsed(rd), ev->text);
                        break;
                }
                fprintf(stderr, "%s%s\n",
                        ev->level == MKM_LOG_ERROR     ? "mkmachine: error: "
                        : ev->level == MKM_LOG_WARNING ? "mkmachine: warning: "
                                                       : "",
                        ev->text);
                break;
        case MKM_EV_STAGE:
                if (rd->verbosity < 0)
                        return;
                rd->other[0] = 0;       /* a new stage; downloads may go on across stages */
                clear_line(rd);
                if (rd->verbosity >= 1)
                        fprintf(stderr, ":: %s (%.2f s)\n", ev->text, elapsed(rd));
                else
                        fprintf(stderr, ":: %s\n", ev->text);
                break;
        case MKM_EV_PROGRESS: {
                /* Only a terminal gets the rewritten line; logs get the per-file lines. */
                if (!rd->tty || rd->verbosity < 0)
                        return;
                const char *text = ev->text ? ev->text : "";
                bool dl = strcmp(text, "downloading") == 0;
                char *slot = dl ? rd->dl : rd->other;
                if (ev->total > 0) {
                        cli_human_size(ev->done, a, sizeof a);
                        cli_human_size(ev->total, b, sizeof b);
                        (void)snprintf(slot, sizeof rd->dl, "%s %u/%u  %s / %s", text, ev->n, ev->count, a, b);
                } else
                        (void)snprintf(slot, sizeof rd->dl, "%s %u/%u", text, ev->n, ev->count);
                if (dl && ev->n >= ev->count)
                        rd->dl[0] = 0;          /* every download finished: the line is the rest's */
                /* One terminal line: a wrapped one could not be rewritten. */
                char line[200];
                int len = snprintf(line, sizeof line, "%s%s%s", rd->other, rd->other[0] && rd->dl[0] ? "  |  " : "",
                                   rd->dl);
                int width = rd->columns > 1 ? rd->columns - 1 : 79;
                if (len > width && width < (int)sizeof line)
                        line[width] = 0;
                fprintf(stderr, "\r\033[K%s", line);
                rd->line_open = true;
                break;
        }
        case MKM_EV_FILE_DONE:
                rd->bytes += ev->done;
                rd->files++;
                if (rd->verbosity < 0 || (rd->tty && rd->verbosity < 1))
                        return;
                clear_line(rd);
                cli_human_size(ev->done, a, sizeof a);
                fprintf(stderr, "fetched %s (%s)\n", ev->text, a);
                break;
        default:
                break;
        }
        (void)fflush(stderr);
}

static bool is_usage_code(int r) {
        return r == -MKM_E_USAGE || r == -MKM_E_PARSE || r == -MKM_E_RECIPE;
}

static int exit_code_of(int r) {
        return is_usage_code(r) ? EXIT_USAGE : EXIT_BUILD_FAILED;
}

static int json_add(struct json_object *o, const char *key, struct json_object *v);

/* Under --json an error is a document on stdout, {"error": {"message": M, "exit": N, "code": N}}
 * ("code" is the same number, the name the lifecycle commands' contract uses); stderr still gets
 * the plain message, for people watching a script. */
static void json_error(const char *message, int exit_code, struct json_object *details) {
        _cleanup_(cli_json_freep) struct json_object *o = json_object_new_object();
        _cleanup_(cli_json_freep) struct json_object *d = details;
        struct json_object *e = o ? cli_json_add_object(o, "error") : NULL;
        if (!e || cli_json_add_string(e, "message", message) < 0 || cli_json_add_int(e, "exit", exit_code) < 0 ||
            cli_json_add_int(e, "code", exit_code) < 0)
                return;
        if (d) {
                json_object_object_foreach(d, key, val) {
                        if (json_add(e, key, json_object_get(val)) < 0)
                                return;
                }
        }
        (void)cli_json_print(stdout, o, CLI_JSON_LINE);
        (void)fflush(stdout);
}

/* Each line of text with the prefix: a message may list several errors, one a line. */
static void print_prefixed(const char *prefix, const char *text) {
        for (const char *p = text; *p;) {
                size_t n = strcspn(p, "\n");
                fprintf(stderr, "%s%.*s\n", prefix, (int)n, p);
                p += n;
                if (*p)
                        p++;
        }
}

int cli_fail_with(int r, const struct mkm_err *err, const char *what, struct json_object *details) {
        _cleanup_free_ char *msg = NULL;
        const char *detail = err && err->msg[0] ? err->msg : mkm_strerror(r);
        /* "what: detail"; a detail of several lines (every error of a recipe) is one error a
         * line, each with the prefix and its own file:line. */
        if (what && *what && !strchr(detail, '\n') && asprintf(&msg, "%s: %s", what, detail) < 0)
                msg = NULL;
        int code = exit_code_of(r);
        print_prefixed("mkmachine: error: ", msg ? msg : detail);
        if (arg_json)
                json_error(msg ? msg : detail, code, details);
        else if (details)
                (void)json_object_put(details);
        return code;
}

int cli_fail(int r, const struct mkm_err *err, const char *what) {
        return cli_fail_with(r, err, what, NULL);
}

int cli_warning(const char *fmt, ...) {
        va_list ap;
        fputs("mkmachine: warning: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 0;
}

int cli_error(int exit_code, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (n < 0)
                return exit_code;
        print_prefixed("mkmachine: error: ", msg);
        if (arg_json)
                json_error(msg, exit_code, NULL);
        return exit_code;
}

/* --json: json-c quotes every string, so any name comes out as valid JSON. Two fixed flag sets:
 * a result (build, lock) is one line, as a stream of results stays one per line; a document
 * (check) is indented for people. "/" is not escaped: paths read as paths. */
#define CLI_JSON_FLAGS_LINE (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define CLI_JSON_FLAGS_PRETTY (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)

void cli_json_freep(struct json_object **o) {
        if (*o)
                (void)json_object_put(*o);
}

int cli_json_print(FILE *f, struct json_object *o, enum cli_json_style style) {
        const char *text = json_object_to_json_string_ext(o, style == CLI_JSON_PRETTY ? CLI_JSON_FLAGS_PRETTY
                                                                                       : CLI_JSON_FLAGS_LINE);
        if (!text)
                return -ENOMEM;
        fputs(text, f);
        fputc('\n', f);
        return 0;
}

/* Add v (which may be NULL: JSON null) under key; v is taken, also on failure. */
static int json_add(struct json_object *o, const char *key, struct json_object *v) {
        if (json_object_object_add(o, key, v) < 0) {
                (void)json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int cli_json_add_string(struct json_object *o, const char *key, const char *s) {
        struct json_object *v = NULL;
        if (s && !(v = json_object_new_string(s)))
                return -ENOMEM;
        return json_add(o, key, v);
}

int cli_json_add_strv(struct json_object *o, const char *key, char *const *l) {
        struct json_object *a = cli_json_add_array(o, key);
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; l && l[i]; i++) {
                struct json_object *v = json_object_new_string(l[i]);
                if (!v || json_object_array_add(a, v) < 0) {
                        (void)json_object_put(v);
                        return -ENOMEM;
                }
        }
        return 0;
}

int cli_json_add_int(struct json_object *o, const char *key, int64_t n) {
        struct json_object *v = json_object_new_int64(n);
        return v ? json_add(o, key, v) : -ENOMEM;
}

int cli_json_add_bool(struct json_object *o, const char *key, bool b) {
        struct json_object *v = json_object_new_boolean(b);
        return v ? json_add(o, key, v) : -ENOMEM;
}

int cli_json_add_null(struct json_object *o, const char *key) {
        return json_add(o, key, NULL);
}

struct json_object *cli_json_add_object(struct json_object *o, const char *key) {
        struct json_object *v = json_object_new_object();
        return v && json_add(o, key, v) >= 0 ? v : NULL;
}

struct json_object *cli_json_add_array(struct json_object *o, const char *key) {
        struct json_object *v = json_object_new_array();
        return v && json_add(o, key, v) >= 0 ? v : NULL;
}

struct json_object *cli_json_append_object(struct json_object *a) {
        struct json_object *v = json_object_new_object();
        if (!v || json_object_array_add(a, v) < 0) {
                (void)json_object_put(v);
                return NULL;
        }
        return v;
}

int cli_usage_error(const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&msg, fmt, ap);
        va_end(ap);
        print_prefixed("mkmachine: error: ", n >= 0 ? msg : "bad usage");
        fputs("Try 'mkmachine --help' for more information.\n", stderr);
        if (arg_json)
                json_error(n >= 0 ? msg : "bad usage", EXIT_USAGE, NULL);
        return EXIT_USAGE;
}

static void help(void) {
        printf("Usage: mkmachine [OPTIONS] RECIPE\n"
               "       mkmachine [OPTIONS] COMMAND ARGS...\n"
               "\n"
               "Build a systemd-nspawn machine from a recipe, reproducibly.\n"
               "\n"
               "Commands:\n"
               "  build RECIPE          build and deploy the machine (the default command)\n"
               "  check RECIPE          report every error, print the effective recipe and the\n"
               "                        files a build writes on the host\n"
               "  lock RECIPE           resolve the recipe again and rewrite RECIPE.lock\n"
               "  ls                    list the machines mkmachine made, with their generations\n"
               "  rollback NAME         swap the previous generation back in (again: undo)\n"
               "  rm NAME               remove a machine, its generations, host files and state\n"
               "  plan [--update] RECIPE  what a build would install: versions, sizes, changes\n"
               "                        (metadata only, no package downloaded)\n"
               "  rebuild [--update] NAME  build NAME again from its stored recipe and lock\n"
               "  clean [--dry-run]     drop cache files no deployed machine's lock needs\n"
               "  export NAME DIR       write NAME.tar.xz, NAME.nspawn and SHA256SUMS for systemd-pull\n"
               "  import FILE|URL [NAME]  deploy a machine from an export\n"
               "  vercmp A B            compare two pacman versions, print -1, 0 or 1\n"
               "  vercmp -              compare 'A B' pairs read from stdin, one result a line\n"
               "  vercmp --debian A B   compare two Debian versions as dpkg does (also with '-')\n"
               "  verify NAME           compare the machine's tree with its manifest: exit 0 clean,\n"
               "                        1 when a rebuild would lose changes made by hand\n"
               "\n"
               "Options:\n"
               "  -h, --help            show this help and exit\n"
               "  -V, --version         show the version and exit\n"
               "  -v, --verbose         show debug messages\n"
               "  -q, --quiet           show only warnings and errors\n"
               "      --host-root DIR   treat DIR as the host's / (default /)\n"
               "      --cache-dir DIR   download cache (default ./cache in a checkout,\n"
               "                        else /var/cache/mkmachine)\n"
               "      --keys-dir DIR    trusted keyrings (default keys/ of the checkout or install)\n"
               "  -j, --jobs N          parallel downloads (default 5)\n"
               "      --locked          fail if the lock file does not cover the recipe\n"
               "      --json            one JSON document on stdout, errors included\n"
               "      --systemd-version N  emit host files for this systemd version\n"
               "      --force           replace or remove a machine that would otherwise be refused\n"
               "                        (no state, drifted, running)\n"
               "      --keep-generations N  older generations kept for rollback (default 1)\n"
               "      --allow-new-privileges  let a build grant the machine more on the host than\n"
               "                        its deployed generation has\n"
               "\n"
               "Options may come before or after the command; '--' ends them. Relative paths are\n"
               "taken from the current directory.\n"
               "\n"
               "Exit status: 0 success, 1 build failed or refused (policy, new privileges, --force),\n"
               "2 usage or recipe error, 130 interrupted\n"
               "(SIGINT; 143 SIGTERM, 129 SIGHUP).\n"
               "See mkmachine(1) and mkmachine.recipe(5).\n");
}

/* A checkout is recognised by the binary sitting next to builder/main.c (or one level below,
 * for build/mkmachine and build/asan/mkmachine). Returns the checkout's top dir or NULL. */
static char *find_checkout(void) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0)
                return NULL;
        exe[n] = 0;
        for (int up = 0; up < 3; up++) {
                char *slash = strrchr(exe, '/');
                if (!slash || slash == exe)
                        return NULL;
                *slash = 0;
                _cleanup_free_ char *probe = fs_path_join(exe, "builder/main.c");
                struct stat st;
                if (probe && stat(probe, &st) == 0)
                        return strdup(exe);
        }
        return NULL;
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max || s[0] == '-')
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

/* A path the user gave, made absolute against the current directory once, here: the build
 * forks, sandboxes and opens these from other directories, and --json promises absolute paths.
 * Lexical (the directory may not exist yet): "." and ".." components are resolved, "//" merged. */
static char *absolute_path(const char *p) {
        _cleanup_free_ char *cwd = NULL, *joined = NULL;
        if (p[0] != '/') {
                cwd = getcwd(NULL, 0);
                if (!cwd || !(joined = fs_path_join(cwd, p)))
                        return NULL;
                p = joined;
        }
        char *out = malloc(strlen(p) + 2);
        if (!out)
                return NULL;
        size_t o = 0;
        for (const char *s = p; *s;) {
                s += strspn(s, "/");
                size_t n = strcspn(s, "/");
                if (n == 0 || (n == 1 && s[0] == '.')) {
                        /* nothing */
                } else if (n == 2 && s[0] == '.' && s[1] == '.') {
                        while (o > 0 && out[o - 1] != '/')
                                o--;
                        if (o > 0)
                                o--;
                } else {
                        out[o++] = '/';
                        memcpy(out + o, s, n);
                        o += n;
                }
                s += n;
        }
        if (o == 0)
                out[o++] = '/';
        out[o] = 0;
        return out;
}

enum { OPT_HOST_ROOT = 0x100, OPT_CACHE_DIR, OPT_KEYS_DIR, OPT_LOCKED, OPT_JSON, OPT_SYSTEMD_VERSION, OPT_FORCE, OPT_KEEP_GENERATIONS,
       OPT_ALLOW_NEW_PRIVILEGES };
static const struct option options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "jobs", required_argument, NULL, 'j' },
        { "host-root", required_argument, NULL, OPT_HOST_ROOT },
        { "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
        { "keys-dir", required_argument, NULL, OPT_KEYS_DIR },
        { "locked", no_argument, NULL, OPT_LOCKED },
        { "json", no_argument, NULL, OPT_JSON },
        { "systemd-version", required_argument, NULL, OPT_SYSTEMD_VERSION },
        { "force", no_argument, NULL, OPT_FORCE },
        { "keep-generations", required_argument, NULL, OPT_KEEP_GENERATIONS },
        { "allow-new-privileges", no_argument, NULL, OPT_ALLOW_NEW_PRIVILEGES },
        {},
};
static const char short_options[] = "hVvqj:";

/* One global option found in the argument list: its value (from options[].val) and argument. */
struct found_opt {
        int val;
        const char *arg;        /* NULL for no_argument */
        const char *spelled;    /* as written, for messages */
};

/* Match the long option in a ("--name" or "--name=value", without the dashes); NULL if unknown.
 * A unique prefix is accepted, as getopt_long accepts it. */
static const struct option *match_long(const char *a, size_t n) {
        const struct option *hit = NULL;
        unsigned hits = 0;
        for (const struct option *o = options; o->name; o++) {
                if (strncmp(o->name, a, n) != 0)
                        continue;
                if (o->name[n] == 0)
                        return o;       /* exact */
                hit = o;
                hits++;
        }
        return hits == 1 ? hit : NULL;
}

/* Is a a cluster of global short options ("-v", "-qv", "-j4", "-j 4")? Anything else that starts
 * with '-' after the command ("-1" as a version, "-" for stdin) belongs to the command. */
static bool is_short_cluster(const char *a) {
        if (a[0] != '-' || !a[1] || a[1] == '-')
                return false;
        for (const char *c = a + 1; *c; c++) {
                const char *k = strchr(short_options, *c);
                if (!k || *c == ':')
                        return false;
                if (k[1] == ':')
                        return true;    /* the rest is its argument */
        }
        return true;
}

/* Split argv into global options (anywhere on the line, as GNU getopt permutes them for git and
 * systemctl) and the command's own argv (the command word first, its arguments in order).
 * Before the command word an unknown option is a usage error; after it, an unknown option is the
 * command's (vercmp --debian, or a lifecycle command's own flags) and is passed on. "--" ends
 * option parsing: what follows reaches the command as it is. The command word itself is the
 * first argument that is not an option. vercmp takes its arguments literally, as pacman's
 * vercmp does ("--" and "-1" are versions): after it only long global options and -q/-v/-j
 * are taken, and -h/--help is its own. */
static int split_args(int argc, char **argv, struct found_opt *found, size_t *n_found, char **rest, int *n_rest) {
        bool after_command = false, vercmp = false;
        *n_found = 0;
        *n_rest = 0;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (strcmp(a, "--") == 0 && !vercmp) {
                        while (++i < argc)
                                rest[(*n_rest)++] = argv[i];
                        break;
                }
                if (a[0] == '-' && a[1] == '-') {
                        const char *eq = strchr(a + 2, '=');
                        size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
                        const struct option *o = match_long(a + 2, n);
                        if (!o || (vercmp && o->val == 'h')) {
                                if (!after_command)
                                        return cli_usage_error("unrecognized option '%s'", a);
                                rest[(*n_rest)++] = argv[i];
                                continue;
                        }
                        struct found_opt f = { .val = o->val, .spelled = a };
                        if (o->has_arg == required_argument) {
                                if (eq)
                                        f.arg = eq + 1;
                                else if (i + 1 < argc)
                                        f.arg = argv[++i];
                                else
                                        return cli_usage_error("option '--%s' requires an argument", o->name);
                        } else if (eq)
                                return cli_usage_error("option '--%s' doesn't allow an argument", o->name);
                        found[(*n_found)++] = f;
                        continue;
                }
                if (a[0] == '-' && a[1] && (!vercmp || (strchr("qvj", a[1]) && is_short_cluster(a)))) {
                        if (!is_short_cluster(a)) {
                                if (!after_command)
                                        return cli_usage_error("invalid option -- '%c'", a[1]);
                                rest[(*n_rest)++] = argv[i];
                                continue;
                        }
                        for (const char *c = a + 1; *c; c++) {
                                struct found_opt f = { .val = *c, .spelled = a };
                                if (strchr(short_options, *c)[1] == ':') {
                                        if (c[1])
                                                f.arg = c + 1;
                                        else if (i + 1 < argc)
                                                f.arg = argv[++i];
                                        else
                                                return cli_usage_error("option requires an argument -- '%c'", *c);
                                        found[(*n_found)++] = f;
                                        break;
                                }
                                found[(*n_found)++] = f;
                        }
                        continue;
                }
                if (!after_command) {
                        after_command = true;
                        vercmp = strcmp(a, "vercmp") == 0;
                }
                rest[(*n_rest)++] = argv[i];
        }
        rest[*n_rest] = NULL;
        return -1;
}

/* The host's own settings, HOST/etc/mkmachine/mkmachine.conf (systemd INI; a missing file is
 * no settings). Today one: [Generations] Keep=N, the older generations kept beside the live tree
 * when no --keep-generations is given. Strict like a recipe: an unknown section or key, or a bad
 * value, is an error naming the file and line. */
static int read_host_config(const char *host_root, unsigned *keep) {
        _cleanup_free_ char *path = fs_path_join(host_root, "etc/mkmachine/mkmachine.conf"), *text = NULL;
        if (!path)
                return cli_fail(-ENOMEM, NULL, "startup");
        size_t len = 0;
        int r = fs_read_file_follow_at(AT_FDCWD, path, 64u << 10, &text, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return cli_error(EXIT_USAGE, "cannot read %s: %s", path, mkm_strerror(r));
        struct ini_entry *e = NULL;
        size_t n = 0;
        struct mkm_err err = {};
        r = ini_parse(text, len, path, &e, &n, &err);
        if (r < 0)
                return cli_error(EXIT_USAGE, "%s", err.msg);
        int rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
                if (strcmp(e[i].section, "Generations") != 0)
                        rc = cli_error(EXIT_USAGE, "%s:%u: [%s]: unknown section; expected [Generations]", path, e[i].line,
                                       e[i].section);
                else if (!e[i].key)
                        continue;
                else if (strcmp(e[i].key, "Keep") != 0)
                        rc = cli_error(EXIT_USAGE, "%s:%u: [Generations] %s=: unknown key; expected Keep=", path, e[i].line,
                                       e[i].key);
                else if (parse_uint(e[i].value, 0, 100, keep) < 0)
                        rc = cli_error(EXIT_USAGE, "%s:%u: [Generations] Keep=: expected a number from 0 to 100, got '%s'",
                                       path, e[i].line, e[i].value);
        }
        ini_entries_free(e, n);
        return rc;
}

int cli_main(int argc, char **argv) {
        const char *arg_host_root = "/", *arg_cache_dir = NULL, *arg_keys_dir = NULL;
        unsigned arg_jobs = 5, arg_systemd_version = 0, arg_keep_generations = 1;
        bool arg_keep_generations_set = false;
        int arg_verbosity = 0;
        bool arg_locked = false, arg_force = false, arg_allow_new_privileges = false;

        /* --json first, so that errors about the other options come as JSON too. */
        for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
                if (strcmp(argv[i], "--json") == 0)
                        arg_json = true;

        _cleanup_free_ struct found_opt *found = calloc((size_t)argc + 1, sizeof *found);
        _cleanup_free_ char **rest = calloc((size_t)argc + 1, sizeof *rest);
        if (!found || !rest)
                return cli_fail(-ENOMEM, NULL, "startup");
        size_t n_found;
        int nrest;
        int k = split_args(argc, argv, found, &n_found, rest, &nrest);
        if (k >= 0)
                return k;

        for (size_t i = 0; i < n_found; i++) {
                const char *optarg_ = found[i].arg;
                switch (found[i].val) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 'V':
                        printf("mkmachine %s\n", MKM_VERSION);
                        return EXIT_OK;
                case 'v':
                        arg_verbosity = 1;
                        break;
                case 'q':
                        arg_verbosity = -1;
                        break;
                case 'j':
                        if (parse_uint(optarg_, 1, 64, &arg_jobs) < 0)
                                return cli_usage_error("--jobs: expected a number from 1 to 64, got '%s'", optarg_);
                        break;
                case OPT_HOST_ROOT:
                        arg_host_root = optarg_;
                        break;
                case OPT_CACHE_DIR:
                        arg_cache_dir = optarg_;
                        break;
                case OPT_KEYS_DIR:
                        arg_keys_dir = optarg_;
                        break;
                case OPT_LOCKED:
                        arg_locked = true;
                        break;
                case OPT_JSON:
                        arg_json = true;
                        break;
                case OPT_SYSTEMD_VERSION:
                        if (parse_uint(optarg_, 1, 100000, &arg_systemd_version) < 0)
                                return cli_usage_error("--systemd-version: expected a positive number, got '%s'", optarg_);
                        break;
                case OPT_FORCE:
                        arg_force = true;
                        break;
                case OPT_ALLOW_NEW_PRIVILEGES:
                        arg_allow_new_privileges = true;
                        break;
                case OPT_KEEP_GENERATIONS:
                        if (parse_uint(optarg_, 0, 100, &arg_keep_generations) < 0)
                                return cli_usage_error("--keep-generations: expected a number from 0 to 100, got '%s'", optarg_);
                        arg_keep_generations_set = true;
                        break;
                default:
                        return cli_usage_error("unrecognized option '%s'", found[i].spelled);
                }
        }
        if (nrest == 0)
                return cli_usage_error("no recipe given");
        if (!arg_host_root[0] || (arg_cache_dir && !arg_cache_dir[0]) || (arg_keys_dir && !arg_keys_dir[0]))
                return cli_usage_error("--host-root, --cache-dir, --keys-dir: expected a directory, got ''");
        _cleanup_free_ char *host_root = absolute_path(arg_host_root);
        _cleanup_free_ char *cache_dir = arg_cache_dir ? absolute_path(arg_cache_dir) : NULL;
        _cleanup_free_ char *keys_dir = arg_keys_dir ? absolute_path(arg_keys_dir) : NULL;
        if (!host_root || (arg_cache_dir && !cache_dir) || (arg_keys_dir && !keys_dir))
                return cli_fail(-errno, NULL, "cannot make a path absolute");
        if (!arg_keep_generations_set) {
                int rc = read_host_config(host_root, &arg_keep_generations);
                if (rc != 0)
                        return rc;
        }

        _cleanup_free_ char *checkout = find_checkout();
        _cleanup_free_ char *cache_default = checkout ? fs_path_join(checkout, "cache") : strdup("/var/cache/mkmachine");
        _cleanup_free_ char *keys_default = checkout ? fs_path_join(checkout, "keys") : strdup(MKM_DATADIR "/keys");
        if (!cache_default || !keys_default)
                return cli_fail(-ENOMEM, NULL, "startup");

        struct renderer rd = { .verbosity = arg_verbosity, .tty = isatty(STDERR_FILENO) == 1 };
        struct winsize ws;
        if (rd.tty && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0)
                rd.columns = ws.ws_col;
        (void)clock_gettime(CLOCK_MONOTONIC, &rd.start);
        struct mkm_ctx ctx = {
                .host_root = host_root,
                .cache_dir = cache_dir ? cache_dir : cache_default,
                .keys_dir = keys_dir ? keys_dir : keys_default,
                .jobs = arg_jobs,
                .verbosity = arg_verbosity,
                .json = arg_json,
                .locked = arg_locked,
                .force = arg_force,
                .allow_new_privileges = arg_allow_new_privileges,
                .keep_generations = arg_keep_generations,
                .systemd_version = arg_systemd_version,
                .source_date_epoch = -1,
                .events = { .fn = render, .userdata = &rd },
        };
        const char *sde = getenv("SOURCE_DATE_EPOCH");
        if (sde && *sde) {
                char *end;
                errno = 0;
                long long v = strtoll(sde, &end, 10);
                if (errno || *end || v < 0)
                        return cli_usage_error("SOURCE_DATE_EPOCH: expected seconds since 1970, got '%s'", sde);
                ctx.source_date_epoch = v;
        }

        static const struct {
                const char *name;
                int (*fn)(struct mkm_ctx *, int, char **);
        } commands[] = {
                { "build", cli_cmd_build },
                { "check", cli_cmd_check },
                { "clean", cli_cmd_clean },
                { "export", cli_cmd_export },
                { "import", cli_cmd_import },
                { "lock", cli_cmd_lock },
                { "ls", cli_cmd_ls },
                { "plan", cli_cmd_plan },
                { "rebuild", cli_cmd_rebuild },
                { "rm", cli_cmd_rm },
                { "rollback", cli_cmd_rollback },
                { "vercmp", cli_cmd_vercmp },
                { "verify", cli_cmd_verify },
        };
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(rest[0], commands[i].name) == 0) {
                        optind = 1;     /* let the subcommand run getopt on its own argv */
                        return commands[i].fn(&ctx, nrest, rest);
                }
        /* "mkmachine RECIPE" is "mkmachine build RECIPE". A bare word that is not a file is
         * most likely a misspelt command. */
        struct stat st;
        if (nrest == 1 && stat(rest[0], &st) < 0 && !strchr(rest[0], '.') && !strchr(rest[0], '/'))
                return cli_usage_error("unknown command '%s' (commands: build, check, clean, export, import, lock, ls, plan, "
                                       "rebuild, rollback, rm, vercmp, verify)", rest[0]);
        char *build_argv[3] = { (char *)"build", rest[0], NULL };
        if (nrest > 1)
                return rest[1][0] == '-' ? cli_usage_error("unrecognized option '%s'", rest[1])
                                         : cli_usage_error("unexpected argument '%s' after the recipe", rest[1]);
        optind = 1;
        return cli_cmd_build(&ctx, 2, build_argv);
}

int cli_parse_update_flag(const char *cmd, int argc, char **argv, bool *ret_update) {
        static const struct option opts[] = {
                { "update", no_argument, NULL, 'u' },
                {},
        };
        int c;
        opterr = 0;
        optind = 0;     /* glibc: re-initialise fully (the global parse may have used "+") */
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'u':
                        *ret_update = true;
                        break;
                default:
                        return cli_usage_error("%s: unknown option '%s'", cmd, argv[optind - 1]);
                }
        return 0;
}
