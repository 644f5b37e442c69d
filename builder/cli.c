/* SPDX-License-Identifier: MIT */
/* Option parsing, the event renderer, error printing and subcommand dispatch. */
#include "cli.h"

#include <errno.h>
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
#include "util/fs.h"

struct renderer {
        int verbosity;
        struct timespec start;  /* for elapsed times on stage lines with -v */
        bool tty;               /* stderr is a terminal: one rewritten progress line */
        bool line_open;         /* a progress line is on screen and must be cleared first */
        /* Downloads run alongside the checks and the install: the line shows both. */
        char dl[96], other[96];
        int columns;            /* the terminal's width, 0 if unknown */
};

static void clear_line(struct renderer *rd) {
        if (rd->line_open) {
                fputs("\r\033[K", stderr);
                rd->line_open = false;
        }
}

static void human_size(uint64_t n, char *buf, size_t len) {
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

static double elapsed(const struct renderer *rd) {
        struct timespec now;
        (void)clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)(now.tv_sec - rd->start.tv_sec) + (double)(now.tv_nsec - rd->start.tv_nsec) / 1e9;
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
                        ev->level == MKM_LOG_ERROR     ? "error: "
                        : ev->level == MKM_LOG_WARNING ? "warning: "
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
                        human_size(ev->done, a, sizeof a);
                        human_size(ev->total, b, sizeof b);
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
                if (rd->verbosity < 0 || (rd->tty && rd->verbosity < 1))
                        return;
                clear_line(rd);
                human_size(ev->done, a, sizeof a);
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

int cli_fail(int r, const struct mkm_err *err, const char *what) {
        if (err && err->msg[0])
                fprintf(stderr, "mkmachine: %s: %s\n", what, err->msg);
        else
                fprintf(stderr, "mkmachine: %s: %s\n", what, mkm_strerror(r));
        return is_usage_code(r) ? EXIT_USAGE : EXIT_BUILD_FAILED;
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
        va_list ap;
        fputs("mkmachine: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nTry 'mkmachine --help' for more information.\n", stderr);
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
               "  check RECIPE          parse, merge includes, validate, print the effective recipe\n"
               "  lock RECIPE           resolve the recipe again and rewrite RECIPE.lock\n"
               "  export NAME DIR       write NAME.tar.xz, NAME.nspawn and SHA256SUMS for systemd-pull\n"
               "  import FILE|URL [NAME]  deploy a machine from an export\n"
               "  vercmp A B            compare two pacman versions, print -1, 0 or 1\n"
               "  vercmp -              compare 'A B' pairs read from stdin, one result a line\n"
               "  vercmp --debian A B   compare two Debian versions as dpkg does (also with '-')\n"
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
               "      --json            machine-readable output where a command supports it\n"
               "      --systemd-version N  emit host files for this systemd version\n"
               "      --force           replace or remove a machine that would otherwise be refused\n"
               "                        (no state, drifted, running)\n"
               "      --keep-generations N  older generations kept for rollback (default 1)\n"
               "\n"
               "Exit status: 0 success, 1 build failed, 2 usage or recipe error.\n"
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

int cli_main(int argc, char **argv) {
        enum { OPT_HOST_ROOT = 0x100, OPT_CACHE_DIR, OPT_KEYS_DIR, OPT_LOCKED, OPT_JSON, OPT_SYSTEMD_VERSION, OPT_FORCE, OPT_KEEP_GENERATIONS };
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
                {},
        };
        const char *arg_host_root = "/", *arg_cache_dir = NULL, *arg_keys_dir = NULL;
        unsigned arg_jobs = 5, arg_systemd_version = 0, arg_keep_generations = 1;
        int arg_verbosity = 0;
        bool arg_locked = false, arg_json = false, arg_force = false;
        int c;

        /* '+': stop at the first non-option so subcommands (vercmp -) get their own arguments. */
        while ((c = getopt_long(argc, argv, "+hVvqj:", options, NULL)) >= 0) {
                switch (c) {
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
                        if (parse_uint(optarg, 1, 64, &arg_jobs) < 0)
                                return cli_usage_error("--jobs: expected a number from 1 to 64, got '%s'", optarg);
                        break;
                case OPT_HOST_ROOT:
                        arg_host_root = optarg;
                        break;
                case OPT_CACHE_DIR:
                        arg_cache_dir = optarg;
                        break;
                case OPT_KEYS_DIR:
                        arg_keys_dir = optarg;
                        break;
                case OPT_LOCKED:
                        arg_locked = true;
                        break;
                case OPT_JSON:
                        arg_json = true;
                        break;
                case OPT_SYSTEMD_VERSION:
                        if (parse_uint(optarg, 1, 100000, &arg_systemd_version) < 0)
                                return cli_usage_error("--systemd-version: expected a positive number, got '%s'", optarg);
                        break;
                case OPT_FORCE:
                        arg_force = true;
                        break;
                case OPT_KEEP_GENERATIONS:
                        if (parse_uint(optarg, 0, 100, &arg_keep_generations) < 0)
                                return cli_usage_error("--keep-generations: expected a number from 0 to 100, got '%s'", optarg);
                        break;
                default:
                        fputs("Try 'mkmachine --help' for more information.\n", stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc)
                return cli_usage_error("no recipe given");

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
                .host_root = arg_host_root,
                .cache_dir = arg_cache_dir ? arg_cache_dir : cache_default,
                .keys_dir = arg_keys_dir ? arg_keys_dir : keys_default,
                .jobs = arg_jobs,
                .verbosity = arg_verbosity,
                .json = arg_json,
                .locked = arg_locked,
                .force = arg_force,
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
                { "export", cli_cmd_export },
                { "import", cli_cmd_import },
                { "lock", cli_cmd_lock },
                { "vercmp", cli_cmd_vercmp },
        };
        char **rest = argv + optind;
        int nrest = argc - optind;
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(rest[0], commands[i].name) == 0) {
                        optind = 1;     /* let the subcommand run getopt on its own argv */
                        return commands[i].fn(&ctx, nrest, rest);
                }
        /* "mkmachine RECIPE" is "mkmachine build RECIPE". A bare word that is not a file is
         * most likely a misspelt command. */
        struct stat st;
        if (nrest == 1 && stat(rest[0], &st) < 0 && !strchr(rest[0], '.') && !strchr(rest[0], '/'))
                return cli_usage_error("unknown command '%s' (commands: build, check, export, import, lock, vercmp)", rest[0]);
        char *build_argv[3] = { (char *)"build", rest[0], NULL };
        if (nrest > 1)
                return cli_usage_error("unexpected argument '%s' after the recipe", rest[1]);
        optind = 1;
        return cli_cmd_build(&ctx, 2, build_argv);
}
