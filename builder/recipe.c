/* SPDX-License-Identifier: MIT */
/* The recipe model: key table, typed value parsers, Include= handling, defaults, canonical text.
 *
 * Recipes come from co-tenants, so they are untrusted input: the INI layer bounds sizes, this
 * layer bounds include depth, refuses include cycles, and checks every value against a narrow
 * grammar before any later stage turns it into a path, a URL or a command. */
#include "recipe.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "ctx.h"
#include "deploy.h"
#include "ini.h"
#include "nspawn.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/strv.h"

/* ---- the key table ------------------------------------------------------------------------ */

enum key_id {
        K_NAME,
        K_INCLUDE,
        K_DISTRIBUTION,
        K_MIRROR,
        K_SNAPSHOT,
        K_SUITE,
        K_COMPONENTS,
        K_REPOSITORIES,
        K_PACKAGES,
        K_VARIANT,
        K_KEYRING,
        K_ARCHITECTURE,
        K_PROVIDER,
        K_REQUIRE_DB_SIGNATURE,
        K_ENABLE_SERVICES,
        K_FUSE,
        K_DOCKER_STORAGE_DRIVER,
        K_DOCKER_PRIVILEGED,
        K_ROOT_AUTHORIZED_KEYS,
        K_COPY,
        K_RUN,
        K_RUN_NETWORK,
        K_ADDRESS,
        K_GATEWAY,
        _K_MKM_MAX,
        K_NSPAWN = _K_MKM_MAX,  /* every table entry from here on */
};

/* Entries [0, _K_MKM_MAX) are in enum key_id order; the rest are systemd.nspawn(5)'s keys
 * (systemd's src/nspawn/nspawn-gperf.gperf, v257). */
static const struct recipe_key keys[] = {
        { "Machine", "Name", false },
        { "Machine", "Include", false },
        { "Bootstrap", "Distribution", false },
        { "Bootstrap", "Mirror", false },
        { "Bootstrap", "Snapshot", false },
        { "Bootstrap", "Suite", false },
        { "Bootstrap", "Components", false },
        { "Bootstrap", "Repositories", false },
        { "Bootstrap", "Packages", false },
        { "Bootstrap", "Variant", false },
        { "Bootstrap", "Keyring", false },
        { "Bootstrap", "Architecture", false },
        { "Bootstrap", "Provider", false },
        { "Bootstrap", "RequireDatabaseSignature", false },
        { "Hooks", "EnableServices", false },
        { "Hooks", "Fuse", false },
        { "Hooks", "DockerStorageDriver", false },
        { "Hooks", "DockerPrivileged", false },
        { "Hooks", "RootAuthorizedKeys", false },
        { "Hooks", "Copy", false },
        { "Hooks", "Run", false },
        { "Hooks", "RunNetwork", false },
        { "Network", "Address", false },
        { "Network", "Gateway", false },

        { "Exec", "Boot", true },
        { "Exec", "Ephemeral", true },
        { "Exec", "ProcessTwo", true },
        { "Exec", "Parameters", true },
        { "Exec", "Environment", true },
        { "Exec", "User", true },
        { "Exec", "WorkingDirectory", true },
        { "Exec", "PivotRoot", true },
        { "Exec", "Capability", true },
        { "Exec", "DropCapability", true },
        { "Exec", "AmbientCapability", true },
        { "Exec", "NoNewPrivileges", true },
        { "Exec", "KillSignal", true },
        { "Exec", "Personality", true },
        { "Exec", "MachineID", true },
        { "Exec", "PrivateUsers", true },
        { "Exec", "NotifyReady", true },
        { "Exec", "SystemCallFilter", true },
        { "Exec", "LimitCPU", true },
        { "Exec", "LimitFSIZE", true },
        { "Exec", "LimitDATA", true },
        { "Exec", "LimitSTACK", true },
        { "Exec", "LimitCORE", true },
        { "Exec", "LimitRSS", true },
        { "Exec", "LimitNOFILE", true },
        { "Exec", "LimitAS", true },
        { "Exec", "LimitNPROC", true },
        { "Exec", "LimitMEMLOCK", true },
        { "Exec", "LimitLOCKS", true },
        { "Exec", "LimitSIGPENDING", true },
        { "Exec", "LimitMSGQUEUE", true },
        { "Exec", "LimitNICE", true },
        { "Exec", "LimitRTPRIO", true },
        { "Exec", "LimitRTTIME", true },
        { "Exec", "OOMScoreAdjust", true },
        { "Exec", "CPUAffinity", true },
        { "Exec", "Hostname", true },
        { "Exec", "ResolvConf", true },
        { "Exec", "Timezone", true },
        { "Exec", "LinkJournal", true },
        { "Exec", "SuppressSync", true },
        { "Files", "ReadOnly", true },
        { "Files", "Volatile", true },
        { "Files", "Bind", true },
        { "Files", "BindReadOnly", true },
        { "Files", "BindUser", true },
        { "Files", "TemporaryFileSystem", true },
        { "Files", "Inaccessible", true },
        { "Files", "Overlay", true },
        { "Files", "OverlayReadOnly", true },
        { "Files", "PrivateUsersOwnership", true },
        { "Files", "PrivateUsersChown", true },
        { "Network", "Private", true },
        { "Network", "VirtualEthernet", true },
        { "Network", "VirtualEthernetExtra", true },
        { "Network", "Interface", true },
        { "Network", "MACVLAN", true },
        { "Network", "IPVLAN", true },
        { "Network", "Bridge", true },
        { "Network", "Zone", true },
        { "Network", "Port", true },
};

static const char *const sections[] = { "Machine", "Bootstrap", "Hooks", "Exec", "Files", "Network" };

/* Unit settings people put into .nspawn files by mistake: they belong to the service that runs
 * systemd-nspawn, i.e. a drop-in for systemd-nspawn@NAME.service. */
static const char *const service_keys[] = {
        "DeviceAllow", "DevicePolicy", "MemoryMax", "MemoryHigh", "MemoryLow", "MemoryMin", "MemoryLimit",
        "MemorySwapMax", "CPUQuota", "CPUWeight", "CPUShares", "StartupCPUWeight", "AllowedCPUs",
        "TasksMax", "IOWeight", "BlockIOWeight", "IODeviceWeight", "IOReadBandwidthMax",
        "IOWriteBandwidthMax", "Delegate", "Slice", "Restart", "KillMode", "TimeoutStartSec",
        "TimeoutStopSec", "WatchdogSec", "ExecStart", "ExecStartPre", "ExecStartPost", "ExecStop",
};

const struct recipe_key *recipe_known_keys(size_t *ret_n) {
        if (ret_n)
                *ret_n = ELEMENTSOF(keys);
        return keys;
}

const char *recipe_distribution_to_string(enum recipe_distribution d) {
        switch (d) {
        case RECIPE_DISTRO_ARCH:
                return "arch";
        case RECIPE_DISTRO_DEBIAN:
                return "debian";
        default:
                return NULL;
        }
}

/* ---- did you mean ------------------------------------------------------------------------- */

/* Optimal string alignment distance over three rolling rows; names are short, but cap the work
 * anyway since the input is untrusted. A row's smallest cell never falls below the row before's
 * (a cell comes from that row, or from its own left neighbour, or by a transposition from two rows
 * back, which is never below the row before's diagonal less one: d[i-1][j-1] <= d[i-2][j-2] + 1),
 * so once a whole row reaches bound the distance cannot come below it: bound is returned then. */
static unsigned edit_distance_bounded(const char *a, const char *b, unsigned bound) {
        size_t la = strlen(a), lb = strlen(b);
        if (la > 64 || lb > 64)
                return UINT_MAX;
        unsigned rows[3][65];
        unsigned *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
        for (size_t j = 0; j <= lb; j++)
                prev[j] = (unsigned)j;
        for (size_t i = 1; i <= la; i++) {
                cur[0] = (unsigned)i;
                unsigned row_min = cur[0];
                for (size_t j = 1; j <= lb; j++) {
                        int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
                        unsigned cost = ca == cb ? 0 : 1;
                        unsigned v = prev[j] + 1;
                        if (cur[j - 1] + 1 < v)
                                v = cur[j - 1] + 1;
                        if (prev[j - 1] + cost < v)
                                v = prev[j - 1] + cost;
                        if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                            tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < v)
                                v = prev2[j - 2] + 1;
                        cur[j] = v;
                        if (v < row_min)
                                row_min = v;
                }
                if (row_min >= bound)
                        return bound;
                unsigned *t = prev2;
                prev2 = prev;
                prev = cur;
                cur = t;
        }
        return prev[lb];
}

unsigned recipe_edit_distance(const char *a, const char *b) {
        return edit_distance_bounded(a, b, UINT_MAX);
}

static unsigned suggest_threshold(const char *s) {
        size_t n = strlen(s);
        return n <= 4 ? 1 : n <= 8 ? 2 : 3;
}

/* The edit distance is at least the difference in length: a name that much longer or shorter
 * cannot come within bound, and the distance (quadratic) is not worth computing. */
static bool length_within(const char *a, const char *b, unsigned bound) {
        size_t la = strlen(a), lb = strlen(b);
        return (la > lb ? la - lb : lb - la) < bound;
}

/* The closest key of section (any section if NULL) within the threshold, or NULL. */
static const struct recipe_key *closest_key(const char *section, const char *key) {
        const struct recipe_key *best = NULL;
        unsigned bestd = suggest_threshold(key) + 1;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if ((section && strcmp(keys[i].section, section) != 0) || !length_within(key, keys[i].key, bestd))
                        continue;
                unsigned d = edit_distance_bounded(key, keys[i].key, bestd);
                if (d < bestd) {
                        bestd = d;
                        best = &keys[i];
                }
        }
        return best;
}

static const struct recipe_key *find_key(const char *section, const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].key, key) == 0)
                        return &keys[i];
        return NULL;
}

int recipe_key_origin(const struct recipe *r, const char *section, const char *key, const char **ret_file,
                      unsigned *ret_line) {
        const struct recipe_key *k = find_key(section, key);
        if (!k)
                return -ENOENT;
        size_t id = (size_t)(k - keys);
        const char *file = NULL;
        unsigned line = 0;
        if (id >= _K_MKM_MAX) {
                for (size_t i = 0; i < r->n_nspawn; i++)
                        if (strcmp(r->nspawn[i].section, section) == 0 && strcmp(r->nspawn[i].key, key) == 0) {
                                file = r->nspawn[i].file;
                                line = r->nspawn[i].line;
                        }
        } else if (r->origins) {
                file = r->origins[id].file;
                line = r->origins[id].line;
        }
        if (!file || line == 0)
                return -ENOENT;
        *ret_file = file;
        *ret_line = line;
        return 0;
}

static bool is_nspawn_section(const char *s) {
        return strcmp(s, "Exec") == 0 || strcmp(s, "Files") == 0 || strcmp(s, "Network") == 0;
}

/* ---- small validators --------------------------------------------------------------------- */

static bool chars_in(const char *s, const char *extra) {
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
                        return false;
        return true;
}

static bool valid_package_name(const char *s) {
        size_t n = strlen(s);
        return n >= 1 && n <= 256 && (isalnum((unsigned char)s[0]) || strchr("@_+", s[0])) &&
               chars_in(s, "@._+-");
}

static bool valid_unit_name(const char *s) {
        static const char *const suffixes[] = { ".service", ".socket", ".timer",     ".target", ".path",
                                                ".mount",   ".swap",   ".automount", ".slice" };
        size_t n = strlen(s);
        if (n < 2 || n > 255 || !chars_in(s, ":-_.\\@") || s[0] == '.' || s[0] == '-')
                return false;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t m = strlen(suffixes[i]);
                if (n > m && strcmp(s + n - m, suffixes[i]) == 0)
                        return true;
        }
        return false;
}

static bool valid_word(const char *s, const char *extra) {
        return s[0] && isalnum((unsigned char)s[0]) && strlen(s) <= 128 && chars_in(s, extra);
}

static bool valid_user_or_group(const char *s, size_t n) {
        if (n == 0 || n > 32)
                return false;
        bool digits = true;
        for (size_t i = 0; i < n; i++)
                if (!isdigit((unsigned char)s[i]))
                        digits = false;
        if (digits) {
                if (n > 10)
                        return false;
                unsigned long long v = strtoull(s, NULL, 10);
                return v < 4294967295ULL;       /* (uid_t)-1 is "no id" */
        }
        if (!(islower((unsigned char)s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' ||
                      (s[i] == '$' && i == n - 1)))
                        return false;
        return true;
}

int recipe_parse_boolean(const char *s) {
        static const char *const yes[] = { "yes", "true", "1", "on", "y", "t" };
        static const char *const no[] = { "no", "false", "0", "off", "n", "f" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

static int64_t days_from_civil(int y, unsigned m, unsigned d) {
        /* Howard Hinnant's algorithm: days since 1970-01-01 in the proleptic Gregorian calendar. */
        y -= m <= 2;
        int era = (y >= 0 ? y : y - 399) / 400;
        unsigned yoe = (unsigned)(y - era * 400);
        unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return (int64_t)era * 146097 + (int64_t)doe - 719468;
}

static bool all_digits(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!isdigit((unsigned char)s[i]))
                        return false;
        return true;
}

static unsigned num(const char *s, size_t n) {
        unsigned v = 0;
        for (size_t i = 0; i < n; i++)
                v = v * 10 + (unsigned)(s[i] - '0');
        return v;
}

static bool valid_date(unsigned y, unsigned m, unsigned d) {
        static const unsigned mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        if (y < 1970 || m < 1 || m > 12 || d < 1)
                return false;
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        return d <= mdays[m - 1] + (m == 2 && leap ? 1 : 0);
}

/* YYYY-MM-DD, YYYY/MM/DD or YYYYMMDDTHHMMSSZ; *ret_text is the canonical spelling. */
static int parse_snapshot(const char *s, char **ret_text, int64_t *ret_epoch) {
        size_t n = strlen(s);
        unsigned y, m, d, hh = 0, mm = 0, ss = 0;
        bool stamp = false;
        if (n == 10 && (s[4] == '-' || s[4] == '/') && s[7] == s[4] && all_digits(s, 4) && all_digits(s + 5, 2) &&
            all_digits(s + 8, 2)) {
                y = num(s, 4);
                m = num(s + 5, 2);
                d = num(s + 8, 2);
        } else if (n == 16 && all_digits(s, 8) && s[8] == 'T' && all_digits(s + 9, 6) && s[15] == 'Z') {
                y = num(s, 4);
                m = num(s + 4, 2);
                d = num(s + 6, 2);
                hh = num(s + 9, 2);
                mm = num(s + 11, 2);
                ss = num(s + 13, 2);
                stamp = true;
        } else
                return -EINVAL;
        if (!valid_date(y, m, d) || hh > 23 || mm > 59 || ss > 59)
                return -EINVAL;
        char buf[32];
        if (stamp)
                (void)snprintf(buf, sizeof buf, "%04u%02u%02uT%02u%02u%02uZ", y, m, d, hh, mm, ss);
        else
                (void)snprintf(buf, sizeof buf, "%04u-%02u-%02u", y, m, d);
        char *t = strdup(buf);
        if (!t)
                return -ENOMEM;
        *ret_text = t;
        *ret_epoch = days_from_civil((int)y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
        return 0;
}

/* Architectures: the Arch spelling, the Debian spelling (NULL where the distro lacks it). */
static const struct {
        const char *arch, *debian, *alias;
} architectures[] = {
        { "x86_64", "amd64", NULL },    { "aarch64", "arm64", NULL },  { "i686", "i386", NULL },
        { "armv7h", "armhf", "armv7l" }, { "riscv64", "riscv64", NULL }, { NULL, "ppc64el", "ppc64le" },
        { NULL, "s390x", NULL },        { NULL, "armel", NULL },       { NULL, "mips64el", NULL },
        { "loong64", "loong64", "loongarch64" },
};

static int find_architecture(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(architectures); i++)
                if ((architectures[i].arch && strcmp(s, architectures[i].arch) == 0) ||
                    (architectures[i].debian && strcmp(s, architectures[i].debian) == 0) ||
                    (architectures[i].alias && strcmp(s, architectures[i].alias) == 0))
                        return (int)i;
        return -ENOENT;
}

static const char *const docker_drivers[] = { "overlay2", "vfs", "btrfs", "fuse-overlayfs" };
static const char *const debian_variants[] = { "extract", "custom", "essential", "apt", "required",
                                               "minbase", "buildd", "important", "debootstrap", "standard" };

static bool in_list(const char *s, const char *const *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(s, l[i]) == 0)
                        return true;
        return false;
}

static bool valid_address(const char *s, bool with_prefix) {
        char buf[INET6_ADDRSTRLEN + 8];
        if (strlen(s) >= sizeof buf)
                return false;
        strcpy(buf, s);
        char *slash = strchr(buf, '/');
        unsigned max = 0;
        if (with_prefix) {
                if (!slash || !slash[1] || strlen(slash + 1) > 3 || !all_digits(slash + 1, strlen(slash + 1)))
                        return false;
                *slash = 0;
        } else if (slash)
                return false;
        unsigned char bin[16];
        if (inet_pton(AF_INET, buf, bin) == 1)
                max = 32;
        else if (inet_pton(AF_INET6, buf, bin) == 1)
                max = 128;
        else
                return false;
        return !with_prefix || num(slash + 1, strlen(slash + 1)) <= max;
}

/* Lexically normalise an absolute or relative path: collapse "//", drop ".", resolve "..".
 * ".." above the start of a relative path is kept; above "/" it stays at "/". */
static char *path_normalize(const char *p) {
        bool abs = p[0] == '/';
        size_t n = strlen(p);
        char *out = malloc(n + 2);
        if (!out)
                return NULL;
        size_t o = 0, floor = 0;
        if (abs)
                out[o++] = '/';
        floor = o;
        const char *s = p;
        while (*s) {
                while (*s == '/')
                        s++;
                if (!*s)
                        break;
                size_t len = strcspn(s, "/");
                if (len == 1 && s[0] == '.') {
                        /* skip */
                } else if (len == 2 && s[0] == '.' && s[1] == '.') {
                        if (o > floor) {
                                /* drop the last component unless it is itself ".." */
                                size_t start = o;
                                while (start > floor && out[start - 1] != '/')
                                        start--;
                                if (o - start == 2 && out[start] == '.' && out[start + 1] == '.') {
                                        out[o++] = '/';
                                        memcpy(out + o, "..", 2);
                                        o += 2;
                                } else
                                        o = start > floor ? start - 1 : floor;
                        } else if (!abs) {
                                memcpy(out + o, "..", 2);
                                o += 2;
                        }
                } else {
                        if (o > floor)
                                out[o++] = '/';
                        memcpy(out + o, s, len);
                        o += len;
                }
                s += len;
        }
        if (o == 0)
                out[o++] = '.';
        out[o] = 0;
        return out;
}

static char *resolve_path(const char *dir, const char *value) {
        if (value[0] == '/')
                return path_normalize(value);
        _cleanup_free_ char *j = fs_path_join(dir, value);
        return j ? path_normalize(j) : NULL;
}

/* ---- the loader --------------------------------------------------------------------------- */

struct frame {
        char *abs;              /* realpath of the file */
        char *shown;            /* as named in messages */
};

struct loader {
        struct mkm_ctx *ctx;
        struct recipe *r;
        bool allow_includes;
        struct frame stack[RECIPE_INCLUDE_DEPTH_MAX + 1];
        size_t depth;
        struct mkm_err *reterr;
        /* Every error found so far, in file order: one bad value does not hide the next. */
        struct recipe_errors errors;
        bool key_bad[_K_MKM_MAX];       /* an assignment of the key was refused: no "missing" for it */
        const char *parsing;            /* the file ini_parse_lenient is reading, for its errors */
        struct recipe_errors *syntax;   /* its syntax errors, merged into errors by line */
        bool had_syntax_error;          /* a key on a bad line may be what "missing" would name */
};

/* Record an error (message formatted in full, "FILE:LINE: ...") and return its code, which is
 * -MKM_E_RECIPE or -MKM_E_PARSE: the caller skips what it was doing and goes on with the next
 * assignment. Only -ENOMEM (the error could not be kept) stops everything. */
__attribute__((format(printf, 5, 0))) static int errors_addv(struct recipe_errors *errs, int code, const char *file, unsigned line, const char *fmt,
                       va_list ap) {
        struct recipe_error *n = mkm_reallocarray(errs->e, errs->n + 1, sizeof *n);
        if (!n)
                return -ENOMEM;
        errs->e = n;
        struct recipe_error e = { .code = code, .line = line };
        if (vasprintf(&e.message, fmt, ap) < 0) {
                e.message = NULL;
                return -ENOMEM;
        }
        if (file && !(e.file = strdup(file))) {
                free(e.message);
                return -ENOMEM;
        }
        errs->e[errs->n++] = e;
        return code;
}

static int errors_add(struct recipe_errors *errs, int code, const char *file, unsigned line, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static int errors_add(struct recipe_errors *errs, int code, const char *file, unsigned line, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = errors_addv(errs, code, file, line, fmt, ap);
        va_end(ap);
        return r;
}

void recipe_errors_done(struct recipe_errors *errs) {
        for (size_t i = 0; i < errs->n; i++) {
                free(errs->e[i].file);
                free(errs->e[i].message);
        }
        free(errs->e);
        *errs = (struct recipe_errors){};
}

/* A recorded error: skip the assignment (or item) and go on. */
static bool soft(int r) {
        return r == -MKM_E_RECIPE || r == -MKM_E_PARSE;
}

/* The code of a list of errors: the first that is not the recipe's own, else the first error's.
 * Those are the host's lacks that fs_source_failure_code() keeps (-MKM_E_IDENTITY,
 * -MKM_E_USERDB): no change to the recipe mends them (exit 1), though recipe errors may come
 * before them (a root's recipe with a bad key, then an include a tenant owns, read as the tenant);
 * as they are not soft, the load stops at them. */
static int errors_code(const struct recipe_errors *errs) {
        for (size_t i = 0; i < errs->n; i++)
                if (!soft(errs->e[i].code))
                        return errs->e[i].code;
        return errs->n > 0 ? errs->e[0].code : 0;
}

/* All errors into reterr, one a line (as much as fits), with their code (errors_code()). */
static int errors_to_err(const struct recipe_errors *errs, struct mkm_err *reterr) {
        if (errs->n == 0)
                return 0;
        int code = errors_code(errs);
        if (!reterr)
                return code;
        size_t o = 0, cap = sizeof reterr->msg;
        reterr->msg[0] = 0;
        for (size_t i = 0; i < errs->n; i++) {
                size_t need = strlen(errs->e[i].message) + 1;
                if (o + need + 64 > cap && i > 0) {
                        (void)snprintf(reterr->msg + o, cap - o, "\n(and %zu more errors)", errs->n - i);
                        break;
                }
                int w = snprintf(reterr->msg + o, cap - o, "%s%s", i ? "\n" : "", errs->e[i].message);
                if (w < 0 || (size_t)w >= cap - o)
                        break;
                o += (size_t)w;
        }
        reterr->code = code;
        return code;
}

/* Location of one assignment, for messages. */
struct where {
        const char *file;       /* shown name, owned by recipe->shown_files */
        const char *dir;        /* directory for relative paths */
        unsigned line;
        const char *section, *key, *value;
};

#define FAIL_CODE(w, code, fmt, ...)                                                                        \
        errors_add(&l->errors, (code), (w)->file, (w)->line, "%s:%u: [%s] %s=: " fmt, (w)->file, (w)->line,       \
                   (w)->section, (w)->key, ##__VA_ARGS__)
#define FAIL(w, fmt, ...) FAIL_CODE(w, -MKM_E_RECIPE, fmt, ##__VA_ARGS__)


static int set_string(char **field, const char *value) {
        char *c = NULL;
        if (value[0]) {
                c = strdup(value);
                if (!c)
                        return -ENOMEM;
        }
        free(*field);
        *field = c;
        return 0;
}

/* Fold who (as judged from a stat of what fd is open on) and who the file system says speaks for
 * it (fs_fuse_mounter(): on a user's FUSE mount, whatever owners it shows, that user). */
static uid_t fold_fd(uid_t reader, uid_t who, int fd) {
        return recipe_reader_fold(recipe_reader_fold(reader, who), fs_fuse_mounter(fd));
}

static int load_file(struct loader *l, int fd, const char *abs, const char *shown, const struct stat *dir_st,
                     const struct where *from);

/* Is path under dir (both absolute; "/" holds everything)? */
static bool under_dir(const char *path, const char *dir) {
        size_t n = strlen(dir);
        return strncmp(path, dir, n) == 0 && (path[n] == '/' || (n == 1 && dir[0] == '/'));
}

static int do_include(struct loader *l, const struct where *w, const char *item) {
        if (!l->allow_includes)
                return FAIL(w, "includes are not followed when parsing a single buffer");
        _cleanup_free_ char *path = resolve_path(w->dir, item);
        _cleanup_free_ char *shown_dir = fs_path_dirname(w->file);
        _cleanup_free_ char *shown = shown_dir ? (item[0] == '/' ? strdup(item) : resolve_path(shown_dir, item)) : NULL;
        if (!path || !shown)
                return -ENOMEM;
        /* Beside the including file (in its directory or below), as Copy= sources are: a shared
         * recipe must not read the host's other files into its machine or its output (another
         * tenant's recipe and what it copies, an .nspawn with its Environment= secrets, shadow).
         * Judged first as written, so that nothing outside is opened or even looked up (no device
         * opened, no existence told); then where it leads, by our own walk inside the directory
         * (fs_open_beside(): no magic link followed, nothing outside looked up);
         * and it is read from what that walk opened, never opened again by name. Only a regular
         * file named *.recipe. */
        if (!w->dir || !under_dir(path, w->dir))
                return FAIL(w, "'%s' is not beside this recipe file: includes must be in its directory (%s) or below",
                            shown, w->dir ? w->dir : "?");
        _cleanup_free_ char *abs = NULL;
        struct stat st;
        struct fs_reader rd;
        int q = recipe_reader(l->r, &rd);
        if (q < 0)
                return q == -ENOMEM ? q : FAIL_CODE(w, q, "'%s': %s", shown, mkm_strerror(q));
        struct stat dst;
        _cleanup_close_ int fd = fs_open_beside(w->dir, path, false, &rd, &abs, &st, &dst);
        if (fd == -EXDEV)
                return FAIL(w, "'%s' leads out of this recipe file's directory (%s): includes must be in it or below",
                            shown, w->dir);
        if (fd == -EBADFD)
                return FAIL(w, "expected a recipe file (a regular file named *.recipe), got '%s'", shown);
        if (fs_beside_refusal(fd))
                return FAIL_CODE(w, fs_source_failure_code(fd), "'%s' %s", shown, fs_beside_refusal(fd));
        if (fd < 0)
                return FAIL_CODE(w, fs_source_failure_code(fd), "cannot read '%s': %s", shown, mkm_strerror(fd));
        size_t alen = strlen(abs);
        if (alen <= 7 || strcmp(abs + alen - 7, ".recipe") != 0)
                return FAIL(w, "expected a recipe file (a regular file named *.recipe), got '%s'", shown);
        for (size_t i = 0; i < l->depth; i++)
                if (strcmp(l->stack[i].abs, abs) == 0) {
                        char chain[1024] = "";
                        size_t o = 0;
                        for (size_t j = i; j < l->depth && o < sizeof chain; j++)
                                o += (size_t)snprintf(chain + o, sizeof chain - o, "%s -> ", l->stack[j].shown);
                        if (o < sizeof chain)
                                (void)snprintf(chain + o, sizeof chain - o, "%s", shown);
                        return FAIL(w, "include cycle: %s", chain);
                }
        if (l->depth >= RECIPE_INCLUDE_DEPTH_MAX)
                return FAIL(w, "includes nested more than %d deep", RECIPE_INCLUDE_DEPTH_MAX);
        return load_file(l, fd, abs, shown, &dst, w);
}

static int push_nspawn(struct recipe *r, const struct where *w) {
        struct recipe_nspawn_setting *n = mkm_reallocarray(r->nspawn, r->n_nspawn + 1, sizeof *n);
        if (!n)
                return -ENOMEM;
        r->nspawn = n;
        struct recipe_nspawn_setting s = {
                .section = strdup(w->section),
                .key = strdup(w->key),
                .value = strdup(w->value),
                .file = strdup(w->file),
                .line = w->line,
        };
        if (!s.section || !s.key || !s.value || !s.file) {
                free(s.section);
                free(s.key);
                free(s.value);
                free(s.file);
                return -ENOMEM;
        }
        r->nspawn[r->n_nspawn++] = s;
        return 0;
}

static void copy_done(struct recipe_copy *c) {
        free(c->src);
        free(c->dest);
        free(c->owner);
        free(c->from_dir);
}

static int parse_copy(struct loader *l, const struct where *w, const char *item, struct recipe_copy *ret) {
        _cleanup_strv_free_ char **parts = NULL;
        /* Split by hand: strv_split skips empty fields, and "a::b" must be an error. */
        const char *p = item;
        for (;;) {
                size_t n = strcspn(p, ":");
                char *f = strndup(p, n);
                if (!f || strv_consume(&parts, f) < 0) {
                        free(f);
                        return -ENOMEM;
                }
                if (!p[n])
                        break;
                p += n + 1;
        }
        size_t n = strv_length(parts);
        if (n < 2 || n > 5 || !parts[0][0])
                return FAIL(w, "expected SRC:DEST[:MODE[:OWNER]], got '%s'", item);
        if (parts[1][0] != '/')
                return FAIL(w, "destination must be an absolute path, got '%s'", parts[1]);
        for (const char *s = parts[1]; *s;) {
                size_t len = strcspn(s, "/");
                if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
                        return FAIL(w, "destination must not contain '.' or '..' components, got '%s'", parts[1]);
                s += len;
                s += strspn(s, "/");
        }
        struct recipe_copy c = {};
        if (n >= 3) {
                const char *m = parts[2];
                size_t ml = strlen(m);
                if (ml < 1 || ml > 4 || strspn(m, "01234567") != ml)
                        return FAIL(w, "expected an octal mode such as 0644, got '%s'", m);
                c.mode = (mode_t)strtoul(m, NULL, 8);
                c.has_mode = true;
        }
        if (n >= 4) {
                const char *user = parts[3], *group = n == 5 ? parts[4] : NULL;
                if (!valid_user_or_group(user, strlen(user)) || (group && !valid_user_or_group(group, strlen(group))))
                        return FAIL(w, "expected OWNER as user[:group] or uid[:gid], got '%s%s%s'", user,
                                    group ? ":" : "", group ? group : "");
                if (group)
                        (void)asprintf(&c.owner, "%s:%s", user, group);
                else
                        c.owner = strdup(user);
                if (!c.owner)
                        return -ENOMEM;
        }
        c.src = resolve_path(w->dir, parts[0]);
        c.dest = path_normalize(parts[1]);
        c.from_dir = l->allow_includes && w->dir ? strdup(w->dir) : NULL;
        if (!c.src || !c.dest || (l->allow_includes && w->dir && !c.from_dir)) {
                copy_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

/* Validate one list item; returns 0 or a FAIL(). */
static int check_item(struct loader *l, const struct where *w, enum key_id id, const char *item) {
        switch (id) {
        case K_MIRROR:
                if (strncmp(item, "http://", 7) != 0 && strncmp(item, "https://", 8) != 0 &&
                    strncmp(item, "file://", 7) != 0)
                        return FAIL(w, "expected an http://, https:// or file:// URL, got '%s'", item);
                if (strlen(item) > 1024 || strchr(item, '\'') || strchr(item, '"'))
                        return FAIL(w, "expected a URL without quotes, got '%s'", item);
                return 0;
        case K_COMPONENTS:
                return valid_word(item, "-_./") ? 0 : FAIL(w, "expected an archive component such as 'main', got '%s'", item);
        case K_SUITE:
                return valid_word(item, "-_.+") ? 0 : FAIL(w, "expected a suite name such as 'bookworm', got '%s'", item);
        case K_REPOSITORIES:
                return valid_word(item, "-_.") ? 0 : FAIL(w, "expected a repository name such as 'core', got '%s'", item);
        case K_PACKAGES:
                return valid_package_name(item) ? 0 : FAIL(w, "expected a package name, got '%s'", item);
        case K_PROVIDER: {
                const char *colon = strchr(item, ':');
                if (!colon || colon == item)
                        return FAIL(w, "expected VIRTUAL:PACKAGE, got '%s'", item);
                _cleanup_free_ char *virt = strndup(item, (size_t)(colon - item));
                if (!virt)
                        return -ENOMEM;
                if (!valid_package_name(virt) || !valid_package_name(colon + 1))
                        return FAIL(w, "expected VIRTUAL:PACKAGE, got '%s'", item);
                return 0;
        }
        case K_ENABLE_SERVICES:
                return valid_unit_name(item) ? 0 : FAIL(w, "expected a unit name such as 'sshd.service', got '%s'", item);
        case K_ADDRESS:
                return valid_address(item, true) ? 0
                                                 : FAIL(w, "expected an IP address with a prefix length such as 192.168.1.2/24, got '%s'", item);
        case K_GATEWAY:
                return valid_address(item, false) ? 0 : FAIL(w, "expected an IP address, got '%s'", item);
        default:
                return 0;
        }
}

static char ***list_field(struct recipe *r, enum key_id id) {
        switch (id) {
        case K_MIRROR:
                return &r->mirrors;
        case K_COMPONENTS:
                return &r->components;
        case K_SUITE:
                return &r->suites;
        case K_REPOSITORIES:
                return &r->repositories;
        case K_PACKAGES:
                return &r->packages;
        case K_PROVIDER:
                return &r->providers;
        case K_ENABLE_SERVICES:
                return &r->enable_services;
        case K_ROOT_AUTHORIZED_KEYS:
                return &r->root_authorized_keys;
        case K_RUN:
                return &r->runs;
        case K_ADDRESS:
                return &r->network_addresses;
        case K_GATEWAY:
                return &r->network_gateways;
        default:
                return NULL;
        }
}

static int apply_list(struct loader *l, const struct where *w, enum key_id id) {
        struct recipe *r = l->r;
        char ***field = list_field(r, id);
        int ret, bad = 0;

        if (!w->value[0]) {     /* "Key=" resets the list, as in systemd */
                if (id == K_COPY) {
                        for (size_t i = 0; i < r->n_copies; i++)
                                copy_done(&r->copies[i]);
                        free(r->copies);
                        r->copies = NULL;
                        r->n_copies = 0;
                } else {
                        *field = strv_free(*field);
                        if (id == K_ROOT_AUTHORIZED_KEYS)
                                r->root_authorized_keys_dirs = strv_free(r->root_authorized_keys_dirs);
                }
                return 0;
        }
        if (id == K_RUN)        /* one command per assignment, spaces and all */
                return strv_push(field, w->value);

        _cleanup_strv_free_ char **items = NULL;
        ret = strv_split(w->value, " \t", &items);
        if (ret < 0)
                return ret;
        for (char **it = items; *it; it++) {
                if (id == K_COPY) {
                        struct recipe_copy c;
                        ret = parse_copy(l, w, *it, &c);
                        if (soft(ret)) {
                                bad = ret;
                                continue;
                        }
                        if (ret < 0)
                                return ret;
                        struct recipe_copy *nc = mkm_reallocarray(r->copies, r->n_copies + 1, sizeof *nc);
                        if (!nc) {
                                copy_done(&c);
                                return -ENOMEM;
                        }
                        r->copies = nc;
                        r->copies[r->n_copies++] = c;
                        continue;
                }
                ret = check_item(l, w, id, *it);
                if (soft(ret)) {
                        bad = ret;
                        continue;
                }
                if (ret < 0)
                        return ret;
                if (id == K_ROOT_AUTHORIZED_KEYS) {
                        char *p = resolve_path(w->dir, *it);
                        if (!p || strv_consume(field, p) < 0) {
                                free(p);
                                return -ENOMEM;
                        }
                        if (strv_push(&r->root_authorized_keys_dirs, l->allow_includes && w->dir ? w->dir : "") < 0)
                                return -ENOMEM;
                } else {
                        ret = strv_push(field, *it);
                        if (ret < 0)
                                return ret;
                }
        }
        return bad;     /* 0, or the code of an item's recorded error (every item was looked at) */
}

static int apply_scalar(struct loader *l, const struct where *w, enum key_id id) {
        struct recipe *r = l->r;
        const char *v = w->value;
        int b;

        switch (id) {
        case K_NAME:
                if (v[0] && !deploy_machine_name_is_valid(v))
                        return FAIL(w, "expected a machine name as systemd takes it (up to 64 letters, digits and '-' "
                                       "in labels joined by single dots, no label starting or ending with '-'), got '%s'",
                                    v);
                return set_string(&r->name, v);
        case K_DISTRIBUTION:
                if (!v[0])
                        r->distribution = _RECIPE_DISTRO_INVALID;
                else if (strcmp(v, "arch") == 0)
                        r->distribution = RECIPE_DISTRO_ARCH;
                else if (strcmp(v, "debian") == 0)
                        r->distribution = RECIPE_DISTRO_DEBIAN;
                else
                        return FAIL(w, "expected 'arch' or 'debian', got '%s'", v);
                return 0;
        case K_SNAPSHOT:
                if (!v[0]) {
                        free(r->snapshot);
                        r->snapshot = NULL;
                        r->snapshot_epoch = -1;
                        return 0;
                } else {
                        char *t = NULL;
                        int64_t e;
                        int ret = parse_snapshot(v, &t, &e);
                        if (ret == -ENOMEM)
                                return ret;
                        if (ret < 0)
                                return FAIL(w, "expected a date YYYY-MM-DD (or YYYY/MM/DD) or a time stamp YYYYMMDDTHHMMSSZ, got '%s'", v);
                        free(r->snapshot);
                        r->snapshot = t;
                        r->snapshot_epoch = e;
                        return 0;
                }
        case K_VARIANT:
                if (v[0] && !in_list(v, debian_variants, ELEMENTSOF(debian_variants)))
                        return FAIL(w, "expected one of extract, custom, essential, apt, required, minbase, buildd, important, debootstrap, standard, got '%s'", v);
                return set_string(&r->variant, v);
        case K_KEYRING:
                free(r->keyring_dir);
                r->keyring_dir = NULL;
                if (!v[0])
                        return set_string(&r->keyring, v);
                else {
                        char *p = resolve_path(w->dir, v);
                        if (!p)
                                return -ENOMEM;
                        free(r->keyring);
                        r->keyring = p;
                        if (l->allow_includes && w->dir && !(r->keyring_dir = strdup(w->dir)))
                                return -ENOMEM;
                        return 0;
                }
        case K_ARCHITECTURE:
                if (v[0] && find_architecture(v) < 0)
                        return FAIL(w, "expected an architecture such as x86_64, aarch64, amd64 or arm64, got '%s'", v);
                return set_string(&r->architecture, v);
        case K_FUSE:
                if (!v[0]) {
                        r->fuse = RECIPE_UNSET;
                        return 0;
                }
                b = recipe_parse_boolean(v);
                if (b < 0)
                        return FAIL(w, "expected a boolean (yes/no), got '%s'", v);
                r->fuse = b ? RECIPE_YES : RECIPE_NO;
                return 0;
        case K_REQUIRE_DB_SIGNATURE:
                if (!v[0]) {
                        r->require_db_signature = false;
                        return 0;
                }
                b = recipe_parse_boolean(v);
                if (b < 0)
                        return FAIL(w, "expected a boolean (yes/no), got '%s'", v);
                r->require_db_signature = b;
                return 0;
        case K_RUN_NETWORK:
                if (!v[0]) {
                        r->run_network = false;
                        return 0;
                }
                b = recipe_parse_boolean(v);
                if (b < 0)
                        return FAIL(w, "expected a boolean (yes/no), got '%s'", v);
                r->run_network = b;
                return 0;
        case K_DOCKER_STORAGE_DRIVER:
                if (v[0] && !in_list(v, docker_drivers, ELEMENTSOF(docker_drivers)))
                        return FAIL(w, "expected one of overlay2, vfs, btrfs, fuse-overlayfs, got '%s'", v);
                return set_string(&r->docker_storage_driver, v);
        case K_DOCKER_PRIVILEGED:
                if (!v[0]) {
                        r->docker_privileged = RECIPE_UNSET;
                        return 0;
                }
                b = recipe_parse_boolean(v);
                if (b < 0)
                        return FAIL(w, "expected a boolean (yes/no), got '%s'", v);
                r->docker_privileged = b ? RECIPE_YES : RECIPE_NO;
                return 0;
        default:
                return apply_list(l, w, id);
        }
}

static int unknown_section(struct loader *l, const char *file, unsigned line, const char *section) {
        const char *best = NULL;
        unsigned bestd = suggest_threshold(section) + 1;
        for (size_t i = 0; i < ELEMENTSOF(sections); i++) {
                if (!length_within(section, sections[i], bestd))
                        continue;
                unsigned d = edit_distance_bounded(section, sections[i], bestd);
                if (d < bestd) {
                        bestd = d;
                        best = sections[i];
                }
        }
        if (best)
                return errors_add(&l->errors, -MKM_E_RECIPE, file, line,
                                  "%s:%u: [%s]: unknown section; did you mean '[%s]'?", file, line, section, best);
        return errors_add(&l->errors, -MKM_E_RECIPE, file, line,
                          "%s:%u: [%s]: unknown section; expected [Machine], [Bootstrap], [Hooks], [Exec], [Files] or [Network]",
                          file, line, section);
}

static int unknown_key(struct loader *l, const struct where *w) {
        /* Known elsewhere? Say where it goes. */
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (strcmp(keys[i].key, w->key) == 0)
                        return FAIL(w, "unknown key in [%s]; %s= belongs in [%s]", w->section, w->key, keys[i].section);
        if (is_nspawn_section(w->section))
                for (size_t i = 0; i < ELEMENTSOF(service_keys); i++)
                        if (strcmp(service_keys[i], w->key) == 0)
                                return FAIL(w,
                                            "%s= is not a .nspawn setting: it belongs in a systemd-nspawn@NAME.service.d/ drop-in%s",
                                            w->key, strcmp(w->key, "DeviceAllow") == 0 ? " (the Fuse= hook writes it for you)" : "");
        const struct recipe_key *k = closest_key(w->section, w->key);
        if (k)
                return FAIL(w, "unknown key; did you mean '%s='?", k->key);
        k = closest_key(NULL, w->key);
        if (k)
                return FAIL(w, "unknown key; did you mean '[%s] %s='?", k->section, k->key);
        if (is_nspawn_section(w->section))
                return FAIL(w, "unknown key: not a setting of systemd.nspawn(5) nor of mkmachine");
        return FAIL(w, "unknown key");
}


static int record_syntax_error(void *userdata, int code, unsigned line, const char *msg) {
        struct loader *l = userdata;
        l->had_syntax_error = true;
        int q = errors_add(l->syntax, code, l->parsing, line, "%s", msg);
        return q == -ENOMEM ? q : 0;
}

/* Move the pending syntax errors before line (all of them for UINT_MAX) to the list, so that
 * errors come in line order. */
static int flush_syntax(struct loader *l, struct recipe_errors *syntax, size_t *next, unsigned line) {
        for (; *next < syntax->n && syntax->e[*next].line < line; (*next)++) {
                struct recipe_error *n = mkm_reallocarray(l->errors.e, l->errors.n + 1, sizeof *n);
                if (!n)
                        return -ENOMEM;
                l->errors.e = n;
                l->errors.e[l->errors.n++] = syntax->e[*next];
                syntax->e[*next] = (struct recipe_error){};
        }
        return 0;
}

static int apply_entries(struct loader *l, const struct ini_entry *e, size_t n, const char *shown, const char *dir,
                         struct recipe_errors *syntax) {
        struct recipe *r = l->r;
        int ret;
        bool skip_section = false;      /* the keys of an unknown section: its header was reported */
        size_t next_syntax = 0;

        for (size_t i = 0; i < n; i++) {
                if ((ret = flush_syntax(l, syntax, &next_syntax, e[i].line)) < 0)
                        return ret;
                if (!e[i].key) {
                        bool known = false;
                        for (size_t s = 0; s < ELEMENTSOF(sections); s++)
                                if (strcmp(sections[s], e[i].section) == 0)
                                        known = true;
                        skip_section = !known;
                        if (!known && (ret = unknown_section(l, shown, e[i].line, e[i].section)) == -ENOMEM)
                                return ret;
                        continue;
                }
                if (skip_section)
                        continue;
                struct where w = { .file = shown, .dir = dir, .line = e[i].line, .section = e[i].section,
                                   .key = e[i].key, .value = e[i].value };
                const struct recipe_key *k = find_key(e[i].section, e[i].key);
                if (!k) {
                        /* A case-only difference deserves the same suggestion as a typo. */
                        if ((ret = unknown_key(l, &w)) == -ENOMEM)
                                return ret;
                        continue;
                }
                size_t id = (size_t)(k - keys);
                /* "foo\ " is read as "foo\" (the blank is trimmed), but written back into a recipe
                 * or NAME.nspawn, a line ending in an odd run of backslashes continues into the next
                 * one (systemd's rule and ours): the next setting would become part of this value. */
                size_t vl = strlen(e[i].value), bs = 0;
                while (bs < vl && e[i].value[vl - 1 - bs] == '\\')
                        bs++;
                if (bs % 2 == 1) {
                        if ((ret = FAIL(&w, "a value cannot end in a backslash (written to a recipe or to the .nspawn "
                                            "file, the line would continue into the next one)")) == -ENOMEM)
                                return ret;
                        if (id < _K_MKM_MAX)
                                l->key_bad[id] = true;
                        continue;
                }
                const char *invalid = strcmp(w.section, "Network") == 0 ? nspawn_network_value_invalid(w.key, w.value)
                                                                        : NULL;
                if (invalid) {
                        if ((ret = FAIL(&w, "%s, got '%s' (systemd-nspawn would ignore it)", invalid, w.value)) ==
                            -ENOMEM)
                                return ret;
                        continue;
                }
                if (id >= _K_MKM_MAX) {
                        ret = push_nspawn(r, &w);
                        if (ret < 0)
                                return ret;
                        continue;
                }
                r->origins[id] = (struct recipe_origin){ .file = shown, .line = e[i].line };
                if (id == K_INCLUDE) {
                        if (!e[i].value[0]) {
                                if ((ret = FAIL(&w, "expected one or more recipe files, got ''")) == -ENOMEM)
                                        return ret;
                                continue;
                        }
                        _cleanup_strv_free_ char **items = NULL;
                        ret = strv_split(e[i].value, " \t", &items);
                        if (ret < 0)
                                return ret;
                        /* An include that fails is reported (with what went wrong inside it) and
                         * skipped; the rest of this file is still checked. */
                        for (char **it = items; *it; it++)
                                if ((ret = do_include(l, &w, *it)) < 0 && !soft(ret))
                                        return ret;
                        continue;
                }
                ret = apply_scalar(l, &w, (enum key_id)id);
                if (soft(ret)) {
                        l->key_bad[id] = true;
                        continue;
                }
                if (ret < 0)
                        return ret;
        }
        return flush_syntax(l, syntax, &next_syntax, UINT_MAX);
}

/* Remember a file name (shown) in the recipe so origins can borrow it; returns the stored copy. */
static const char *intern_shown(struct recipe *r, const char *shown) {
        for (char **s = r->shown_files; s && *s; s++)
                if (strcmp(*s, shown) == 0)
                        return *s;
        if (strv_push(&r->shown_files, shown) < 0)
                return NULL;
        return r->shown_files[strv_length(r->shown_files) - 1];
}

/* A bad line is recorded and skipped (ini_parse_lenient); the rest of the file is still read. */
static int parse_buffer(struct loader *l, const char *buf, size_t len, const char *shown, const char *dir) {
        struct ini_entry *e = NULL;
        size_t n = 0;
        struct mkm_err err = {};
        _cleanup_(recipe_errors_done) struct recipe_errors syntax = {};
        l->parsing = shown;
        l->syntax = &syntax;
        int ret = ini_parse_lenient(buf, len, shown, record_syntax_error, l, &e, &n, &err);
        size_t next = 0;
        if (ret < 0 && flush_syntax(l, &syntax, &next, UINT_MAX) < 0)
                ret = -ENOMEM;
        if (ret == -MKM_E_PARSE) {
                /* A limit (too many entries, a line too long): this file ends here. */
                int q = errors_add(&l->errors, ret, shown, 0, "%s", err.msg);
                return q == -ENOMEM ? q : ret;
        }
        if (ret < 0) {
                if (l->reterr)
                        *l->reterr = err;
                return ret;
        }
        ret = apply_entries(l, e, n, shown, dir, &syntax);
        ini_entries_free(e, n);
        return ret;
}

/* fd: the file, opened (an include), or -1: open abs. */
/* dir_st: the stat of the directory holding the file, as the walk that opened fd found it. */
static int load_file(struct loader *l, int fd, const char *abs, const char *shown_in, const struct stat *dir_st,
                     const struct where *from) {
        struct recipe *r = l->r;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int ret;

        const char *shown = intern_shown(r, shown_in);
        if (!shown)
                return -ENOMEM;
        mkm_debug(l->ctx, "reading recipe %s", shown);
        ret = fd >= 0 ? fs_read_fd(fd, RECIPE_FILE_MAX, &buf, &len)
                      : fs_read_file_follow_at(AT_FDCWD, abs, RECIPE_FILE_MAX, &buf, &len);
        if (ret < 0) {
                const char *why = ret == -EFBIG ? "file too large" : mkm_strerror(ret);
                if (from)
                        return FAIL(from, "cannot read '%s': %s", shown, why);
                return errors_add(&l->errors, -MKM_E_RECIPE, shown, 0, "cannot read recipe '%s': %s", shown, why);
        }
        /* From here on, what the recipe names (includes too) is read with this file's reader
         * folded in (recipe_reader_fold()). */
        struct stat st;
        if (fd >= 0 && dir_st) {
                if (fstat(fd, &st) < 0) {
                        if (from)
                                return FAIL(from, "cannot stat '%s': %s", shown, strerror(errno));
                        return errors_add(&l->errors, -MKM_E_RECIPE, shown, 0, "cannot stat recipe '%s': %s", shown,
                                          strerror(errno));
                }
                r->reader_uid = fold_fd(r->reader_uid, recipe_file_reader(&st, dir_st), fd);
        }
        if (!strv_contains(r->files, abs)) {
                ret = strv_push(&r->files, abs);
                if (ret < 0)
                        return ret;
        }
        _cleanup_free_ char *dir = fs_path_dirname(abs);
        if (!dir)
                return -ENOMEM;
        l->stack[l->depth++] = (struct frame){ .abs = (char *)abs, .shown = (char *)shown };
        ret = parse_buffer(l, buf, len, shown, dir);
        l->depth--;
        return ret;
}

/* ---- defaults and cross-key checks -------------------------------------------------------- */

/* rebuild reads a machine's recipe back from its canonical form (recipe_format, stored with each
 * generation): a recipe whose canonical form the INI layer would refuse (defaults and absolute
 * paths make it longer than what was read) could be built once and never rebuilt. */
static int canonical_fits(struct loader *l, const char *top) {
        _cleanup_free_ char *text = NULL;
        int q = recipe_format(l->r, &text);
        if (q < 0)
                return q;
        size_t entries = 0, longest = 0, len = strlen(text);
        char section[64] = "";
        for (const char *p = text; *p;) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t)(nl - p) : strlen(p);
                if (n > longest)
                        longest = n;
                entries += n > 0;
                if (n > 2 && p[0] == '[' && n - 2 < sizeof section) {
                        memcpy(section, p + 1, n - 2);
                        section[n - 2] = 0;
                }
                /* A value that ends in a backslash only once normalised (a path's trailing "/"
                 * dropped: Keyring=kr\/): the raw check could not see it. */
                size_t bs = 0;
                while (bs < n && p[n - 1 - bs] == '\\')
                        bs++;
                if (bs % 2 == 1) {
                        const char *eq = memchr(p, '=', n);
                        q = errors_add(&l->errors, -MKM_E_RECIPE, top, 0,
                                       "%s: [%s] %.*s=: a value ends in a backslash once made absolute and normalised "
                                       "(written to a recipe or to the .nspawn file, the line would continue into "
                                       "the next one)",
                                       top, section, eq ? (int)(eq - p) : 0, p);
                        return q == -ENOMEM ? q : 0;
                }
                p += n + (nl ? 1 : 0);
        }
        /* The limits rebuild meets reading it back: the file's size (load_file), a line (at most
         * INI_LINE_MAX bytes), the number of entries. */
        if (len > RECIPE_FILE_MAX)
                q = errors_add(&l->errors, -MKM_E_RECIPE, top, 0,
                               "%s: too large: its canonical form, which rebuild reads, would have %zu bytes (at most %u)",
                               top, len, RECIPE_FILE_MAX);
        else if (longest > INI_LINE_MAX)
                q = errors_add(&l->errors, -MKM_E_RECIPE, top, 0,
                               "%s: too large: its canonical form, which rebuild reads, would have a line of %zu bytes "
                               "(at most %u)", top, longest, INI_LINE_MAX);
        else if (entries > INI_ENTRIES_MAX)
                q = errors_add(&l->errors, -MKM_E_RECIPE, top, 0,
                               "%s: too large: its canonical form, which rebuild reads, would have %zu lines (at most %u)",
                               top, entries, INI_ENTRIES_MAX);
        return q == -ENOMEM ? q : 0;
}

/* Every check records its error and goes on, except where the rest depends on what is missing
 * (no distribution: nothing distro-specific can be checked). */
static int finalize(struct loader *l, const char *top) {
        struct recipe *r = l->r;
        const struct recipe_origin *o = r->origins;
        int ret;

#define FAIL_AT(id, fmt, ...)                                                                              \
        errors_add(&l->errors, -MKM_E_RECIPE, o[id].file, o[id].line, "%s:%u: [%s] %s=: " fmt, o[id].file,      \
                   o[id].line, keys[id].section, keys[id].key, ##__VA_ARGS__)
#define FAIL_TOP(fmt, ...) errors_add(&l->errors, -MKM_E_RECIPE, top, 0, "%s: " fmt, top, ##__VA_ARGS__)
#define CHECK(x)                                 \
        do {                                     \
                if ((ret = (x)) == -ENOMEM)      \
                        return ret;              \
        } while (0)

        /* After a syntax error the key may well be there, on the bad line: "missing" would mislead. */
        if (!r->name && !l->key_bad[K_NAME] && !l->had_syntax_error)
                CHECK(FAIL_TOP("[Machine] Name=: missing; every recipe needs a machine name"));
        if (r->distribution == _RECIPE_DISTRO_INVALID) {
                if (!l->key_bad[K_DISTRIBUTION] && !l->had_syntax_error)
                        CHECK(FAIL_TOP("[Bootstrap] Distribution=: missing; expected 'arch' or 'debian'"));
                return 0;
        }

        bool arch = r->distribution == RECIPE_DISTRO_ARCH;
        if (arch) {
                if (r->suites)
                        CHECK(FAIL_AT(K_SUITE, "only for Distribution=debian"));
                if (r->components)
                        CHECK(FAIL_AT(K_COMPONENTS, "only for Distribution=debian"));
                if (r->variant)
                        CHECK(FAIL_AT(K_VARIANT, "only for Distribution=debian"));
                if (!r->repositories) {
                        ret = strv_split("core extra", " ", &r->repositories);
                        if (ret < 0)
                                return ret;
                }
        } else {
                if (r->repositories)
                        CHECK(FAIL_AT(K_REPOSITORIES, "only for Distribution=arch (use Components= for Debian)"));
                if (!r->suites && (ret = strv_split("bookworm", " ", &r->suites)) < 0)
                        return ret;
                if (!r->components && (ret = strv_split("main", " ", &r->components)) < 0)
                        return ret;
                if (!r->variant && !(r->variant = strdup("minbase")))
                        return -ENOMEM;
        }
        if (r->network_gateways && !r->network_addresses)
                CHECK(FAIL_AT(K_GATEWAY, "needs Address= too (a gateway without an address is unreachable)"));
        /* A privilege with nothing to use it is a mistake (or a Trojan horse in a shared recipe). */
        if (r->docker_privileged == RECIPE_YES && !r->docker_storage_driver && !l->key_bad[K_DOCKER_STORAGE_DRIVER])
                CHECK(FAIL_AT(K_DOCKER_PRIVILEGED, "yes needs DockerStorageDriver= (it is how Docker gets a privileged machine)"));

        /* Architecture in the distro's own spelling; the host's by default. */
        int a;
        if (r->architecture)
                a = find_architecture(r->architecture);
        else if (l->key_bad[K_ARCHITECTURE])
                return 0;
        else {
                struct utsname u;
                if (uname(&u) < 0)
                        return negative_errno();
                a = find_architecture(u.machine);
                if (a < 0) {
                        CHECK(FAIL_TOP("[Bootstrap] Architecture=: cannot derive it from the host's '%s'; set it", u.machine));
                        return 0;
                }
        }
        const char *spelled = arch ? architectures[a].arch : architectures[a].debian;
        if (!spelled) {
                if (r->architecture)
                        CHECK(FAIL_AT(K_ARCHITECTURE, "'%s' is not available for Distribution=%s", r->architecture,
                                      recipe_distribution_to_string(r->distribution)));
                else
                        CHECK(FAIL_TOP("[Bootstrap] Architecture=: the host's architecture is not available for "
                                       "Distribution=%s; set it",
                                       recipe_distribution_to_string(r->distribution)));
                return 0;
        }
        return set_string(&r->architecture, spelled);
#undef FAIL_AT
#undef FAIL_TOP
#undef CHECK
}

static struct recipe *recipe_new(void) {
        struct recipe *r = calloc(1, sizeof *r);
        if (!r)
                return NULL;
        r->origins = calloc(_K_MKM_MAX, sizeof *r->origins);
        r->files = calloc(1, sizeof(char *));
        if (!r->origins || !r->files)
                return recipe_free(r);
        r->distribution = _RECIPE_DISTRO_INVALID;
        r->snapshot_epoch = -1;
        r->fuse = RECIPE_UNSET;
        r->docker_privileged = RECIPE_UNSET;
        return r;
}

/* A directory crossed on the way to the recipe: whoever owns it can rearrange what the path
 * names, and a root directory that others can write (group or world, not sticky) lets any of
 * them do so. */
static bool root_others_write(const struct stat *st, bool sticky_protects) {
        return st->st_uid == 0 && (st->st_mode & (S_IWGRP | S_IWOTH)) &&
               !(sticky_protects && (st->st_mode & S_ISVTX));
}

static uid_t dir_reader(const struct stat *st) {
        return root_others_write(st, true) ? RECIPE_READER_NOBODY : st->st_uid;
}

/* The recipe named on the command line, perhaps a co-tenant's: path is resolved once, one
 * component at a time (openat(O_PATH|O_NOFOLLOW) from "/" or the current directory, each
 * symbolic link read and spliced in by us), and every directory crossed (dir_reader()), every
 * link followed and the file itself fold their owners into *reader (recipe_reader_fold()). The
 * file is then opened, as that reader, from the very inode that was judged: never by name again,
 * without blocking, a regular file only (a FIFO or a device is not a recipe), not a symbolic
 * link of someone's to another owner's file, nor a hard link to one (fs_check_own_link()), so
 * that its lines, echoed in errors, are never a host file its author could not read. *ret_abs:
 * the path the walk resolved; *ret_dir_st: the stat of the directory holding it. */
/* One lookup of the walk, as the reader folded so far: what a tenant's link leads to is looked
 * up with the tenant's permissions, so errors tell nothing of directories they cannot search. */
struct walk_reader {
        uid_t uid;              /* whom rd was made for; (uid_t)-1: not yet */
        struct fs_reader rd;
};

/* The reader folded so far, as an fs_reader: looked up in the user database when it changed only
 * (a walk of many components folds to one or two readers). */
static int walk_reader_get(struct walk_reader *w, uid_t reader, const struct fs_reader **ret) {
        if (w->uid != reader) {
                int q = fs_reader_for_uid(reader, &w->rd);
                if (q < 0)
                        return q;
                w->uid = reader;
        }
        *ret = &w->rd;
        return 0;
}

static int lookup_as(const struct fs_reader *rd, int dfd, const char *name, struct stat *ret_st, char *target,
                     size_t size) {
        struct fs_reader_saved saved;
        int q = fs_reader_enter(rd, &saved);
        if (q < 0)
                return q;
        int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        q = fd < 0 ? negative_errno() : 0;
        if (q >= 0 && fstat(fd, ret_st) < 0)
                q = negative_errno();
        if (q >= 0 && S_ISLNK(ret_st->st_mode)) {
                ssize_t tl = readlinkat(fd, "", target, size - 1);
                q = tl < 0 ? negative_errno() : tl == 0 ? -ENOENT : 0;
                if (q >= 0)
                        target[tl] = 0;
        }
        fs_reader_leave(&saved);
        if (q < 0) {
                if (fd >= 0)
                        close(fd);
                return q;
        }
        return fd;
}

static int open_top(const char *path, uid_t *reader, char **ret_abs, struct stat *ret_dir_st, int *ret_fd,
                    const char **ret_why) {
        if (!path[0])
                return -ENOENT;
        /* A relative path from the current directory's path, walked from "/" like the rest: the
         * directories above it have their say too. */
        _cleanup_free_ char *todo = NULL;
        if (path[0] != '/') {
                _cleanup_free_ char *cwd = getcwd(NULL, 0);
                if (!cwd)
                        return negative_errno();
                if (asprintf(&todo, "%s/%s", cwd, path) < 0)
                        return -ENOMEM;
        } else if (!(todo = strdup(path)))
                return -ENOMEM;
        _cleanup_free_ char *done = strdup("");
        _cleanup_close_ int cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (!done)
                return -ENOMEM;
        if (cur < 0)
                return negative_errno();
        struct stat st, dst;
        if (fstat(cur, &dst) < 0)
                return negative_errno();
        *reader = fold_fd(*reader, dir_reader(&dst), cur);
        struct walk_reader wr = { .uid = (uid_t)-1 };
        unsigned links = 0;
        uid_t last_link = 0;
        bool via_last_link = false;
        _cleanup_close_ int child = -EBADF;
        char leaf[NAME_MAX + 1] = "";
        for (;;) {
                char *p = todo + strspn(todo, "/");
                size_t n = strcspn(p, "/");
                const char *rest = p + n;
                if (n == 0) {
                        if (child < 0)
                                return -EISDIR;         /* the path names a directory */
                        break;
                }
                if (child >= 0) {       /* the previous component was a directory: go into it */
                        close(cur);
                        cur = TAKE_FD(child);
                        dst = st;
                        *reader = fold_fd(*reader, dir_reader(&dst), cur);
                }
                if (n > NAME_MAX)
                        return -ENAMETOOLONG;
                char name[NAME_MAX + 1];
                memcpy(name, p, n);
                name[n] = 0;
                memmove(todo, rest, strlen(rest) + 1);
                if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
                        if (name[1]) {
                                int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                                if (up < 0)
                                        return negative_errno();
                                close(cur);
                                cur = up;
                                char *slash = strrchr(done, '/');
                                if (slash)
                                        *slash = 0;
                                if (fstat(cur, &dst) < 0)
                                        return negative_errno();
                                *reader = fold_fd(*reader, dir_reader(&dst), cur);
                        }
                        st = dst;
                        continue;
                }
                char target[PATH_MAX];
                const struct fs_reader *rd;
                int c = walk_reader_get(&wr, *reader, &rd);
                if (c >= 0)
                        c = lookup_as(rd, cur, name, &st, target, sizeof target);
                if (c < 0)
                        return c;
                if (S_ISLNK(st.st_mode)) {
                        /* whose link: on a user's FUSE mount, that user's (fs_owner_of()) */
                        uid_t owner = fs_owner_of(c, &st);
                        *reader = recipe_reader_fold(*reader, owner);
                        close(c);
                        if (++links > 40)
                                return -ELOOP;
                        via_last_link = !todo[strspn(todo, "/")];
                        if (via_last_link)
                                last_link = owner;
                        if (target[0] == '/') {
                                int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                                if (root < 0)
                                        return negative_errno();
                                close(cur);
                                cur = root;
                                done[0] = 0;
                        }
                        char *t = NULL;
                        if (asprintf(&t, "%s%s", target, todo) < 0)
                                return -ENOMEM;
                        free(todo);
                        todo = t;
                        continue;
                }
                char *d = NULL;
                if (asprintf(&d, "%s/%s", done, name) < 0) {
                        close(c);
                        return -ENOMEM;
                }
                free(done);
                done = d;
                child = c;
                memcpy(leaf, name, n + 1);
                if (!S_ISDIR(st.st_mode) && todo[0] == '/')
                        return -ENOTDIR;        /* more after a file, or a trailing "/" */
        }
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode)) {
                *ret_why = "not a regular file";
                return -EBADFD;
        }
        /* The file with its directory (recipe_file_reader(): root's file where others can write,
         * which may be a hard link they made, is nobody's). */
        *reader = fold_fd(*reader, recipe_file_reader(&st, &dst), child);
        if (via_last_link && last_link != 0 && last_link != st.st_uid) {
                *ret_why = "a symbolic link to a file of another owner than the link's";
                return -EPERM;
        }
        int q = fs_check_own_link(cur, leaf, &st);
        if (q == -EMLINK)
                *ret_why = "a hard link to a file of another owner than its directory's";
        else if (q == -EBUSY)
                *ret_why = "it changed while it was opened";
        if (q < 0)
                return q;
        /* Opened as the reader, from the inode judged. */
        const struct fs_reader *rd;
        struct fs_reader_saved saved;
        q = walk_reader_get(&wr, *reader, &rd);
        if (q < 0 || (q = fs_reader_enter(rd, &saved)) < 0)
                return q;
        char proc[64];
        (void)snprintf(proc, sizeof proc, "/proc/self/fd/%d", child);
        _cleanup_close_ int fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        int e = fd < 0 ? errno : 0;
        fs_reader_leave(&saved);
        if (e == EACCES && *reader != 0)
                *ret_why = "not readable by the recipe's reader (the owner of it, of its directories and of the "
                           "links on its path)";
        if (fd < 0)
                return -e;
        struct stat st2;
        if (fstat(fd, &st2) < 0)
                return negative_errno();
        if (st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
                *ret_why = "it changed while it was opened";
                return -EBUSY;
        }
        if (fcntl(fd, F_SETFL, 0) < 0)
                return negative_errno();
        if (done[0] != '/') {   /* the file is in "/" */
                char *d = NULL;
                if (asprintf(&d, "/%s", done) < 0)
                        return -ENOMEM;
                free(done);
                done = d;
        }
        *ret_abs = TAKE_PTR(done);
        *ret_dir_st = dst;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Load path, collecting every error into *errs; *ret only when there was none, or with
 * partial set also when there were recipe errors (what could be read, for more checks). */
static int load_collect(struct mkm_ctx *ctx, const char *path, bool partial, struct recipe **ret,
                        struct recipe_errors *errs, struct mkm_err *reterr) {
        _cleanup_(recipe_freep) struct recipe *r = recipe_new();
        if (!r)
                return -ENOMEM;
        /* Under --json every path is absolute, messages included. */
        bool absolute = ctx && ctx->json;
        _cleanup_free_ char *abs = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *why = NULL;
        struct stat dst;
        int q = open_top(path, &r->reader_uid, &abs, &dst, &fd, &why);
        if (q < 0) {
                if (q == -ENOMEM)
                        return q;
                _cleanup_free_ char *cwd = absolute && path[0] != '/' ? getcwd(NULL, 0) : NULL;
                _cleanup_free_ char *shown = cwd ? resolve_path(cwd, path) : NULL;
                const char *name = shown ? shown : path;
                return errors_add(errs, fs_source_failure_code(q), name, 0, "cannot read recipe '%s': %s", name,
                                  why ? why : mkm_strerror(q));
        }
        struct loader l = { .ctx = ctx, .r = r, .allow_includes = true, .reterr = reterr };
        const char *shown = absolute ? abs : path;
        int k = load_file(&l, fd, abs, shown, &dst, NULL);
        if (k >= 0)     /* not after a syntax error in the top file: nothing of it was applied */
                k = finalize(&l, shown);
        if (k >= 0 && l.errors.n == 0)
                k = canonical_fits(&l, shown);
        *errs = l.errors;
        if (k == -ENOMEM)
                return mkm_err_set(reterr, k, "%s: out of memory", path);
        if (errs->n > 0 && !(partial && r->files[0] && (k >= 0 || soft(k))))
                return errors_code(errs);
        if (k < 0 && !soft(k))
                return k;
        r->path = TAKE_PTR(abs);
        *ret = TAKE_PTR(r);
        return errors_code(errs);
}

int recipe_load(struct mkm_ctx *ctx, const char *path, struct recipe **ret, struct mkm_err *reterr) {
        _cleanup_(recipe_errors_done) struct recipe_errors errs = {};
        int k = load_collect(ctx, path, false, ret, &errs, reterr);
        if (errs.n > 0)
                return errors_to_err(&errs, reterr);
        return k;
}

int recipe_load_buffer(const char *buf, size_t len, const char *filename, struct recipe **ret,
                       struct mkm_err *reterr) {
        const char *fn = filename ? filename : "(buffer)";
        _cleanup_(recipe_freep) struct recipe *r = recipe_new();
        if (!r)
                return -ENOMEM;
        _cleanup_free_ char *dir = fs_path_dirname(fn);
        const char *shown = intern_shown(r, fn);
        if (!dir || !shown)
                return -ENOMEM;
        struct loader l = { .r = r, .allow_includes = false, .reterr = reterr };
        int k = parse_buffer(&l, buf, len, shown, dir);
        if (k >= 0)     /* after a syntax error nothing was applied: "missing" would be noise */
                k = finalize(&l, fn);
        if (k >= 0 && l.errors.n == 0)
                k = canonical_fits(&l, fn);
        if (l.errors.n > 0) {
                k = errors_to_err(&l.errors, reterr);
                recipe_errors_done(&l.errors);
                return k;
        }
        recipe_errors_done(&l.errors);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(r);
        return 0;
}

struct recipe *recipe_free(struct recipe *r) {
        if (!r)
                return NULL;
        free(r->path);
        strv_free(r->files);
        strv_free(r->shown_files);
        free(r->name);
        strv_free(r->mirrors);
        free(r->snapshot);
        strv_free(r->suites);
        strv_free(r->components);
        strv_free(r->repositories);
        strv_free(r->packages);
        free(r->variant);
        free(r->keyring);
        free(r->keyring_dir);
        free(r->architecture);
        strv_free(r->providers);
        strv_free(r->enable_services);
        free(r->docker_storage_driver);
        strv_free(r->root_authorized_keys);
        strv_free(r->root_authorized_keys_dirs);
        for (size_t i = 0; i < r->n_copies; i++)
                copy_done(&r->copies[i]);
        free(r->copies);
        strv_free(r->runs);
        for (size_t i = 0; i < r->n_nspawn; i++) {
                free(r->nspawn[i].section);
                free(r->nspawn[i].key);
                free(r->nspawn[i].value);
                free(r->nspawn[i].file);
        }
        free(r->nspawn);
        strv_free(r->network_addresses);
        strv_free(r->network_gateways);
        free(r->origins);
        free(r);
        return NULL;
}

/* ---- validation for a build --------------------------------------------------------------- */

#define FAIL_KEY_CODE(errs, r, id, code, fmt, ...)                                                              \
        errors_add((errs), (code), (r)->origins[id].file, (r)->origins[id].line, "%s:%u: [%s] %s=: " fmt,             \
                   (r)->origins[id].file ? (r)->origins[id].file : "?", (r)->origins[id].line, keys[id].section,   \
                   keys[id].key, ##__VA_ARGS__)
#define FAIL_KEY(errs, r, id, fmt, ...) FAIL_KEY_CODE(errs, r, id, -MKM_E_RECIPE, fmt, ##__VA_ARGS__)

static int check_readable(const struct recipe *r, enum key_id id, const char *path, struct recipe_errors *errs) {
        struct stat st;
        if (stat(path, &st) < 0)
                return FAIL_KEY(errs, r, id, "cannot read '%s': %s", path, strerror(errno));
        if (S_ISDIR(st.st_mode) && id != K_COPY && id != K_KEYRING)
                return FAIL_KEY(errs, r, id, "expected a file, '%s' is a directory", path);
        return 0;
}

/* A recipe shared by a co-tenant must not copy the builder's files into the machine it gets
 * (/etc/shadow, ~/.ssh/id_ed25519): Copy= and RootAuthorizedKeys= sources must resolve, symlinks
 * followed, to a path inside the directory of one of the recipe files that were read. */

uid_t recipe_reader_fold(uid_t a, uid_t b) {
        if (a == 0)
                return b;
        if (b == 0 || a == b)
                return a;
        return RECIPE_READER_NOBODY;
}

uid_t recipe_file_reader(const struct stat *file, const struct stat *dir) {
        /* Here even a sticky directory does not help: root's file in /tmp may be a hard link that
         * anyone made to a file they could not read. */
        uid_t u = recipe_reader_fold(file->st_uid, dir->st_uid);
        return u == 0 && (root_others_write(file, false) || root_others_write(dir, false)) ? RECIPE_READER_NOBODY : u;
}

int recipe_reader(const struct recipe *r, struct fs_reader *ret) {
        return fs_reader_for_uid(r->reader_uid, ret);
}

void recipe_reader_from_files(struct recipe *r) {
        r->reader_uid = 0;
        for (char **f = r->files; f && *f; f++) {
                struct stat st, dst;
                _cleanup_free_ char *d = fs_path_dirname(*f);
                _cleanup_close_ int fd = d ? open(*f, O_PATH | O_NOFOLLOW | O_CLOEXEC) : -EBADF;
                if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || stat(d, &dst) < 0) {
                        /* gone, or now a link someone made: who wrote it is not known */
                        r->reader_uid = RECIPE_READER_NOBODY;
                        return;
                }
                r->reader_uid = fold_fd(r->reader_uid, recipe_file_reader(&st, &dst), fd);
        }
}

int recipe_open_source(const struct recipe *r, const char *path, const char *dir, bool allow_dir, struct stat *ret_st) {
        struct fs_reader rd;
        int q = recipe_reader(r, &rd);
        if (q < 0)
                return q;
        /* The directory of the recipe file that set the source, and only that one: an include
         * elsewhere must not widen it. */
        if (dir && dir[0])
                return fs_open_beside(dir, path, allow_dir, &rd, NULL, ret_st, NULL);
        /* A stored recipe (rebuild): which file set the source is not known, only the files the
         * first build read. Walked inside each directory that holds the path as written, until
         * one holds where it leads too. */
        for (char **f = r->files; f && *f; f++) {
                _cleanup_free_ char *d = fs_path_dirname(*f);
                if (!d)
                        return -ENOMEM;
                if (!under_dir(path, d))
                        continue;
                int fd = fs_open_beside(d, path, allow_dir, &rd, NULL, ret_st, NULL);
                if (fd != -EXDEV)
                        return fd;
        }
        return -EXDEV;
}

static int check_copy_tree(const struct recipe *r, const char *path, int fd, struct recipe_errors *errs) {
        struct fs_reader rd;
        int q = recipe_reader(r, &rd);
        if (q < 0)
                return q == -ENOMEM ? q : FAIL_KEY_CODE(errs, r, K_COPY, fs_source_failure_code(q), "'%s': %s", path,
                                                        mkm_strerror(q));
        _cleanup_free_ char *where = NULL;
        const char *step = NULL;
        q = fs_judge_source_tree(fd, &rd, RECIPE_COPY_DEPTH_MAX, &where, &step);
        if (q >= 0 || q == -ENOMEM)
                return q;
        _cleanup_free_ char *shown = strcmp(where, ".") == 0 ? strdup(path) : fs_path_join(path, where);
        _cleanup_free_ char *what = NULL, *source = NULL;
        if (!shown || asprintf(&what, "'%s'", shown) < 0 || asprintf(&source, "'%s'", path) < 0)
                return -ENOMEM;
        _cleanup_free_ char *words = NULL;
        int code = fs_walk_refusal_words(q, step, what, source, RECIPE_COPY_DEPTH_MAX, &words);
        if (code == -ENOMEM)
                return code;
        if (code < 0)   /* the recipe's to mend, but for an identity this process cannot take */
                return FAIL_KEY_CODE(errs, r, K_COPY, fs_source_failure_code(code), "%s", words);
        return FAIL_KEY(errs, r, K_COPY, "%s '%s': %s", step ? step : "cannot read", shown, mkm_strerror(q));
}

static int check_beside(const struct recipe *r, enum key_id id, const char *path, const char *dir,
                        struct recipe_errors *errs) {
        /* Walked inside the recipe file's directory (recipe_open_source()): nothing outside is
         * looked up, opened, or told about. */
        int k = 1;
        {
                bool allow_dir = id == K_COPY || id == K_KEYRING;
                struct stat st;
                _cleanup_close_ int fd = recipe_open_source(r, path, dir, allow_dir, &st);
                /* The recipe's own directory (Copy=., Keyring=.), whose mode fs_open_beside()
                 * leaves to its caller: the build refuses one anyone can write, and so does this. */
                if (fd >= 0 && fs_anyone_writes(&st))
                        return FAIL_KEY(errs, r, id, "'%s' " FS_ANYONE_WRITES_REFUSED, path);
                /* A directory to copy: everything in it as the copy will take it, so that check
                 * says what the build would refuse, and the build refuses it before fetching. */
                if (fd >= 0 && id == K_COPY && S_ISDIR(st.st_mode))
                        return check_copy_tree(r, path, fd, errs);
                if (fd == -EXDEV)
                        k = 0;
                else if (fd == -EBADFD)
                        return FAIL_KEY(errs, r, id, "'%s' is %s", path,
                                        allow_dir ? "neither a file nor a directory" : "not a regular file");
                else if (fs_beside_refusal(fd))
                        return FAIL_KEY_CODE(errs, r, id, fs_source_failure_code(fd), "'%s' %s", path, fs_beside_refusal(fd));
                else if (fd < 0)
                        return FAIL_KEY_CODE(errs, r, id, fs_source_failure_code(fd), "cannot read '%s': %s", path,
                                             mkm_strerror(fd));
        }
        if (k != 0)
                return k < 0 ? k : 0;
        if (dir && dir[0])
                return FAIL_KEY(errs, r, id,
                                "'%s' is not beside the recipe that names it; sources must be in that recipe file's "
                                "directory (%s) or below",
                                path, dir);
        return FAIL_KEY(errs, r, id,
                        "'%s' is not beside the recipe; sources must be in the recipe's directory (or one of an "
                        "included recipe's)",
                        path);
}

void recipe_forget_source_dirs(struct recipe *r) {
        for (size_t i = 0; i < r->n_copies; i++) {
                free(r->copies[i].from_dir);
                r->copies[i].from_dir = NULL;
        }
        r->root_authorized_keys_dirs = strv_free(r->root_authorized_keys_dirs);
        free(r->keyring_dir);
        r->keyring_dir = NULL;
}

int recipe_open_keyring_for_build(const struct recipe *r, bool file_only, struct stat *ret_st, struct mkm_err *reterr) {
        const struct recipe_origin *o = r->origins ? &r->origins[K_KEYRING] : NULL;
        char where[PATH_MAX + 32] = "";
        if (o && o->file)
                (void)snprintf(where, sizeof where, "%s:%u: ", o->file, o->line);
        int fd = recipe_open_keyring(r, ret_st);
        if (fd == -EXDEV)
                return mkm_err_set(reterr, -MKM_E_RECIPE,
                                   "%s[Bootstrap] Keyring=: '%s' is not beside the recipe now (it changed after the recipe "
                                   "was checked); refusing",
                                   where, r->keyring);
        if (fd == -EBADFD || (fd >= 0 && !S_ISREG(ret_st->st_mode) && (file_only || !S_ISDIR(ret_st->st_mode)))) {
                if (fd >= 0)
                        close(fd);
                if (file_only && fd >= 0 && S_ISDIR(ret_st->st_mode))
                        return mkm_err_set(reterr, -MKM_E_RECIPE,
                                           "%s[Bootstrap] Keyring=: '%s': for Debian a single .gpg or .asc file (apt's "
                                           "Signed-By in the machine names one file), not a directory",
                                           where, r->keyring);
                return mkm_err_set(reterr, -MKM_E_RECIPE, "%s[Bootstrap] Keyring=: '%s' is %s", where, r->keyring,
                                   file_only ? "not a regular file" : "neither a file nor a directory");
        }
        if (fs_beside_refusal(fd))
                return mkm_err_set(reterr, fs_source_failure_code(fd), "%s[Bootstrap] Keyring=: '%s' %s", where, r->keyring,
                                   fs_beside_refusal(fd));
        if (fd < 0)
                return mkm_err_set(reterr, fd, "%s[Bootstrap] Keyring=: cannot read '%s': %s", where, r->keyring,
                                   mkm_strerror(fd));
        return fd;
}

int recipe_open_keyring(const struct recipe *r, struct stat *ret_st) {
        if (!r->keyring || !r->keyring[0])
                return -ENOENT;
        if (r->path)
                return recipe_open_source(r, r->keyring, r->keyring_dir, true, ret_st);
        _cleanup_close_ int fd = open(r->keyring, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, ret_st) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

/* Every check runs; each failure is recorded. -ENOMEM only. */
static int validate(const struct recipe *r, struct recipe_errors *errs) {
        /* A Debian variant may name the whole set (Variant=minbase alone is the smallest machine). */
        bool variant_names_set = r->distribution == RECIPE_DISTRO_DEBIAN && r->variant &&
                                 strcmp(r->variant, "extract") != 0 && strcmp(r->variant, "custom") != 0;
        if (!variant_names_set && (!r->packages || !r->packages[0])) {
                const char *f = r->shown_files && r->shown_files[0] ? r->shown_files[0] : "(recipe)";
                if (errors_add(errs, -MKM_E_RECIPE, f, 0,
                               "%s: [Bootstrap] Packages=: empty; a build needs at least one package (e.g. Packages=base)",
                               f) == -ENOMEM)
                        return -ENOMEM;
        }
        /* Sources of a recipe read from a file are judged beside it only (check_beside): nothing
         * outside is looked up first, so that an error cannot tell whether a host path exists.
         * A recipe parsed from a buffer (tests) has no directory. */
        if (r->keyring && r->keyring[0] &&
            (r->path ? check_beside(r, K_KEYRING, r->keyring, r->keyring_dir, errs)
                     : check_readable(r, K_KEYRING, r->keyring, errs)) == -ENOMEM)
                return -ENOMEM;
        for (size_t i = 0; r->root_authorized_keys && r->root_authorized_keys[i]; i++) {
                const char *p = r->root_authorized_keys[i];
                const char *dir = i < strv_length(r->root_authorized_keys_dirs) ? r->root_authorized_keys_dirs[i] : NULL;
                if ((r->path ? check_beside(r, K_ROOT_AUTHORIZED_KEYS, p, dir, errs)
                             : check_readable(r, K_ROOT_AUTHORIZED_KEYS, p, errs)) == -ENOMEM)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < r->n_copies; i++)
                if ((r->path ? check_beside(r, K_COPY, r->copies[i].src, r->copies[i].from_dir, errs)
                             : check_readable(r, K_COPY, r->copies[i].src, errs)) == -ENOMEM)
                        return -ENOMEM;
        return 0;
}

int recipe_validate_for_build(const struct recipe *r, struct mkm_err *reterr) {
        _cleanup_(recipe_errors_done) struct recipe_errors errs = {};
        int k = validate(r, &errs);
        if (k < 0)
                return mkm_err_set(reterr, k, "out of memory");
        return errors_to_err(&errs, reterr);
}

int recipe_check(struct mkm_ctx *ctx, const char *path, struct recipe **ret, struct recipe_errors *ret_errors,
                 struct mkm_err *reterr) {
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        _cleanup_(recipe_errors_done) struct recipe_errors errs = {};
        int k = load_collect(ctx, path, true, &r, &errs, reterr);
        /* What could be read is validated too, so that one run lists everything. */
        if (r && validate(r, &errs) == -ENOMEM)
                return mkm_err_set(reterr, -ENOMEM, "%s: out of memory", path);
        if (errs.n > 0) {
                k = errors_to_err(&errs, reterr);
                *ret_errors = errs;
                errs = (struct recipe_errors){};
                return k;
        }
        if (k < 0)
                return k;
        *ret = TAKE_PTR(r);
        return 0;
}

/* ---- canonical text ----------------------------------------------------------------------- */

struct buf {
        char *p;
        size_t len, cap;
        bool oom;
};

static void bputs(struct buf *b, const char *s) {
        size_t n = strlen(s);
        if (b->oom)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t nc = (b->len + n + 1) * 2;
                char *np = realloc(b->p, nc);
                if (!np) {
                        b->oom = true;
                        return;
                }
                b->p = np;
                b->cap = nc;
        }
        memcpy(b->p + b->len, s, n + 1);
        b->len += n;
}

static void bkey(struct buf *b, const char *key, const char *value) {
        bputs(b, key);
        bputs(b, "=");
        bputs(b, value);
        bputs(b, "\n");
}

static bool ends_in_escape(const char *s) {
        size_t n = strlen(s), bs = 0;
        while (bs < n && s[n - 1 - bs] == '\\')
                bs++;
        return bs % 2 == 1;
}

/* A list on as few lines as fit RECIPE_FORMAT_WIDTH bytes each (an item longer than that on a
 * line of its own): lines of one list key add up, so the text means the same, and a long
 * Packages= list stays far below the INI layer's line limit when rebuild reads it back. A line
 * never ends after an item ending in a backslash (it would continue the line): the next item
 * joins it. */
static void blist(struct buf *b, const char *key, char *const *l) {
        if (!l || !l[0])
                return;
        size_t width = 0;
        for (size_t i = 0; l[i]; i++) {
                size_t n = strlen(l[i]);
                if (i && width + 1 + n > RECIPE_FORMAT_WIDTH && !ends_in_escape(l[i - 1])) {
                        bputs(b, "\n");
                        width = 0;
                }
                if (width == 0) {
                        bputs(b, key);
                        bputs(b, "=");
                        width = strlen(key) + 1;
                } else {
                        bputs(b, " ");
                        width++;
                }
                bputs(b, l[i]);
                width += n;
        }
        bputs(b, "\n");
}

static void bsection(struct buf *b, const char *name) {
        if (b->len)
                bputs(b, "\n");
        bputs(b, "[");
        bputs(b, name);
        bputs(b, "]\n");
}

static void bnspawn(struct buf *b, const struct recipe *r, const char *section, bool *opened) {
        for (size_t i = 0; i < r->n_nspawn; i++) {
                if (strcmp(r->nspawn[i].section, section) != 0)
                        continue;
                if (!*opened) {
                        bsection(b, section);
                        *opened = true;
                }
                bkey(b, r->nspawn[i].key, r->nspawn[i].value);
        }
}

int recipe_format(const struct recipe *r, char **ret_text) {
        struct buf b = {};

        bsection(&b, "Machine");
        if (r->name)
                bkey(&b, "Name", r->name);

        bsection(&b, "Bootstrap");
        if (recipe_distribution_to_string(r->distribution))
                bkey(&b, "Distribution", recipe_distribution_to_string(r->distribution));
        blist(&b, "Mirror", r->mirrors);
        if (r->snapshot)
                bkey(&b, "Snapshot", r->snapshot);
        blist(&b, "Suite", r->suites);
        blist(&b, "Components", r->components);
        blist(&b, "Repositories", r->repositories);
        blist(&b, "Packages", r->packages);
        if (r->variant)
                bkey(&b, "Variant", r->variant);
        if (r->keyring)
                bkey(&b, "Keyring", r->keyring);
        if (r->architecture)
                bkey(&b, "Architecture", r->architecture);
        blist(&b, "Provider", r->providers);
        if (r->require_db_signature)
                bkey(&b, "RequireDatabaseSignature", "yes");

        bool hooks = r->enable_services || r->fuse != RECIPE_UNSET || r->docker_storage_driver ||
                     r->docker_privileged != RECIPE_UNSET ||
                     r->root_authorized_keys || r->n_copies || r->runs || r->run_network;
        if (hooks) {
                bsection(&b, "Hooks");
                blist(&b, "EnableServices", r->enable_services);
                if (r->fuse != RECIPE_UNSET)
                        bkey(&b, "Fuse", r->fuse == RECIPE_YES ? "yes" : "no");
                if (r->docker_storage_driver)
                        bkey(&b, "DockerStorageDriver", r->docker_storage_driver);
                if (r->docker_privileged != RECIPE_UNSET)
                        bkey(&b, "DockerPrivileged", r->docker_privileged == RECIPE_YES ? "yes" : "no");
                blist(&b, "RootAuthorizedKeys", r->root_authorized_keys);
                if (r->n_copies) {
                        char **items = calloc(r->n_copies + 1, sizeof *items);
                        for (size_t i = 0; items && i < r->n_copies; i++) {
                                const struct recipe_copy *c = &r->copies[i];
                                char mode[16] = "";
                                if (c->has_mode)
                                        (void)snprintf(mode, sizeof mode, ":%04o", (unsigned)c->mode);
                                if (asprintf(&items[i], "%s:%s%s%s%s", c->src, c->dest, mode, c->owner ? ":" : "",
                                             c->owner ? c->owner : "") < 0) {
                                        items[i] = NULL;
                                        b.oom = true;
                                        break;
                                }
                        }
                        if (!items)
                                b.oom = true;
                        else if (!b.oom)
                                blist(&b, "Copy", items);
                        strv_free(items);
                }
                for (char **c = r->runs; c && *c; c++)
                        bkey(&b, "Run", *c);
                if (r->run_network)
                        bkey(&b, "RunNetwork", "yes");
        }

        bool opened = false;
        bnspawn(&b, r, "Exec", &opened);
        opened = false;
        bnspawn(&b, r, "Files", &opened);
        opened = false;
        if (r->network_addresses || r->network_gateways) {
                bsection(&b, "Network");
                opened = true;
                blist(&b, "Address", r->network_addresses);
                blist(&b, "Gateway", r->network_gateways);
        }
        bnspawn(&b, r, "Network", &opened);

        if (b.oom || !b.p) {
                free(b.p);
                return -ENOMEM;
        }
        *ret_text = b.p;
        return 0;
}
