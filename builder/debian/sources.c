/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "sources.h"
#include "../util/cleanup.h"
#include "../util/err.h"
#include "../util/fs.h"
#include "../util/strv.h"

#define SOURCES_FILE_MAX (1u << 20)

static bool word_in(const char *list, size_t len, const char *word) {
        size_t wl = strlen(word);
        for (size_t i = 0; i < len;) {
                while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == '\n'))
                        i++;
                size_t s = i;
                while (i < len && list[i] != ' ' && list[i] != '\t' && list[i] != '\n')
                        i++;
                if (i - s == wl && memcmp(list + s, word, wl) == 0)
                        return true;
        }
        return false;
}

static int add_uri(char ***uris, const char *u, size_t len) {
        while (len > 0 && u[len - 1] == '/')
                len--;
        if (len == 0)
                return 0;
        _cleanup_free_ char *s = strndup(u, len);
        if (!s)
                return -ENOMEM;
        if (strv_contains(*uris, s))
                return 0;
        int r = strv_consume(uris, s);
        if (r >= 0)
                s = NULL;
        return r;
}

static int parse_deb822(const char *in, size_t inlen, const char *label, const char *suite, char ***uris,
                        struct mkm_err *reterr) {
        /* apt allows '#' comment lines anywhere in .sources files (Release and Packages do not):
         * drop them, so that a comment between two fields does not end the paragraph. */
        _cleanup_free_ char *text = malloc(inlen + 1);
        size_t len = 0;
        if (!text)
                return -ENOMEM;
        for (size_t i = 0; i < inlen;) {
                const char *nl = memchr(in + i, '\n', inlen - i);
                size_t l = nl ? (size_t)(nl - (in + i)) + 1 : inlen - i;
                if (in[i] != '#') {
                        memcpy(text + len, in + i, l);
                        len += l;
                }
                i += l;
        }
        text[len] = 0;
        size_t pos = 0;
        struct deb822_field f[64];
        size_t n;
        int r;
        while ((r = deb822_next(text, len, &pos, label, f, ELEMENTSOF(f), &n, reterr)) > 0) {
                const struct deb822_field *types = deb822_find(f, n, "Types");
                const struct deb822_field *u = deb822_find(f, n, "URIs");
                const struct deb822_field *suites = deb822_find(f, n, "Suites");
                const struct deb822_field *enabled = deb822_find(f, n, "Enabled");
                if (!types || !u || !suites)
                        continue;
                if (!word_in(types->value, types->value_len, "deb"))
                        continue;
                if (enabled) {
                        /* apt's booleans: no, false, without, off, disable, 0 */
                        static const char *const off[] = { "no", "false", "without", "off", "disable", "0" };
                        bool is_off = false;
                        for (size_t k = 0; k < ELEMENTSOF(off); k++)
                                is_off |= enabled->value_len == strlen(off[k]) &&
                                          strncasecmp(enabled->value, off[k], enabled->value_len) == 0;
                        if (is_off)
                                continue;
                }
                if (!word_in(suites->value, suites->value_len, suite))
                        continue;
                for (size_t i = 0; i < u->value_len;) {
                        while (i < u->value_len && strchr(" \t\n", u->value[i]))
                                i++;
                        size_t s = i;
                        while (i < u->value_len && !strchr(" \t\n", u->value[i]))
                                i++;
                        if (i > s && (r = add_uri(uris, u->value + s, i - s)) < 0)
                                return r;
                }
        }
        return r;
}

/* deb [ options ] uri suite [component...] */
static int parse_oneline(const char *text, size_t len, const char *label, const char *suite, char ***uris,
                         struct mkm_err *reterr) {
        _cleanup_free_ char *copy = strndup(text, len);
        if (!copy)
                return -ENOMEM;
        unsigned lineno = 0;
        char *save = NULL;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                lineno++;
                char *hash = strchr(line, '#');
                if (hash)
                        *hash = 0;
                char *w[64];
                size_t nw = 0;
                char *s2 = NULL;
                for (char *t = strtok_r(line, " \t\r", &s2); t && nw < ELEMENTSOF(w); t = strtok_r(NULL, " \t\r", &s2))
                        w[nw++] = t;
                if (nw == 0 || strcmp(w[0], "deb") != 0)
                        continue;
                size_t i = 1;
                if (i < nw && w[i][0] == '[') {
                        while (i < nw && !strchr(w[i], ']'))
                                i++;
                        if (i >= nw)
                                return mkm_err_set(reterr, -MKM_E_PARSE, "%s:%u: '[' without ']'", label, lineno);
                        i++;
                }
                if (i + 1 >= nw)
                        return mkm_err_set(reterr, -MKM_E_PARSE, "%s:%u: expected 'deb URI SUITE [COMPONENT...]'", label,
                                           lineno);
                if (strcmp(w[i + 1], suite) != 0)
                        continue;
                int r = add_uri(uris, w[i], strlen(w[i]));
                if (r < 0)
                        return r;
        }
        return 0;
}

int deb_sources_parse(const char *text, size_t len, const char *label, int is_deb822, const char *suite, char ***uris,
                      struct mkm_err *reterr) {
        return is_deb822 ? parse_deb822(text, len, label, suite, uris, reterr)
                         : parse_oneline(text, len, label, suite, uris, reterr);
}

static int read_one(const char *path, int is_deb822, const char *suite, char ***uris, struct mkm_err *reterr) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = fs_read_file_follow_at(AT_FDCWD, path, SOURCES_FILE_MAX, &text, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return mkm_err_set(reterr, r, "cannot read %s: %s", path, mkm_strerror(r));
        return deb_sources_parse(text, len, path, is_deb822, suite, uris, reterr);
}

/* apt's own choice in sources.list.d: *.list and *.sources, no hidden files. */
static bool is_sources_name(int dirfd, const char *name, void *userdata) {
        (void)dirfd, (void)userdata;
        size_t l = strlen(name);
        return name[0] != '.' && ((l > 5 && strcmp(name + l - 5, ".list") == 0) ||
                                  (l > 8 && strcmp(name + l - 8, ".sources") == 0));
}

int deb_host_mirrors(const char *host_root, const char *suite, char ***ret_uris, struct mkm_err *reterr) {
        _cleanup_strv_free_ char **uris = NULL;
        _cleanup_free_ char *list = fs_path_join(host_root, "etc/apt/sources.list");
        _cleanup_free_ char *dir = fs_path_join(host_root, "etc/apt/sources.list.d");
        if (!list || !dir)
                return -ENOMEM;
        int r = read_one(list, 0, suite, &uris, reterr);
        if (r < 0)
                return r;
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0 && (r = fs_list_names(dfd, is_sources_name, NULL, 0, &names)) < 0)
                return r == -ENOMEM ? r : mkm_err_set(reterr, r, "cannot list %s: %s", dir, mkm_strerror(r));
        for (char **nm = names; nm && *nm; nm++) {
                _cleanup_free_ char *p = fs_path_join(dir, *nm);
                if (!p)
                        return -ENOMEM;
                size_t l = strlen(*nm);
                r = read_one(p, l > 8 && strcmp(*nm + l - 8, ".sources") == 0, suite, &uris, reterr);
                if (r < 0)
                        return r;
        }
        if (!uris || !uris[0])
                return mkm_err_set(reterr, -ENOENT,
                                   "no mirror for suite '%s': give Mirror= in [Bootstrap], or list the suite in %s or %s/",
                                   suite, list, dir);
        *ret_uris = TAKE_PTR(uris);
        return 0;
}
