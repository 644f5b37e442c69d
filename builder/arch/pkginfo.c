/* SPDX-License-Identifier: MIT */
/* A package's .PKGINFO (see pkginfo.h). */
#include "pkginfo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../util/cleanup.h"
#include "../util/err.h"
#include "../util/strv.h"

void pkginfo_done(struct pkginfo *p) {
        if (!p)
                return;
        free(p->name);
        free(p->base);
        free(p->version);
        free(p->desc);
        free(p->url);
        free(p->arch);
        free(p->packager);
        strv_free(p->licenses);
        strv_free(p->groups);
        strv_free(p->depends);
        strv_free(p->optdepends);
        strv_free(p->conflicts);
        strv_free(p->provides);
        strv_free(p->replaces);
        strv_free(p->backup);
        *p = (struct pkginfo){};
}

static int set_scalar(char **field, const char *v) {
        char *c = strdup(v);
        if (!c)
                return -ENOMEM;
        free(*field);
        *field = c;
        return 0;
}

static int parse_num(const char *v, bool allow_negative, int64_t *ret) {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end || (!allow_negative && n < 0))
                return -EINVAL;
        *ret = n;
        return 0;
}

int pkginfo_parse(const char *text, size_t len, const char *label, struct pkginfo *ret, struct mkm_err *reterr) {
        struct pkginfo p = {};
        unsigned lineno = 0;
        const char *s = text, *end = text + len;
        int r = 0;

        while (s < end) {
                const char *nl = memchr(s, '\n', (size_t)(end - s));
                size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
                _cleanup_free_ char *line = strndup(s, n);
                s += n + (nl ? 1 : 0);
                lineno++;
                if (!line) {
                        r = -ENOMEM;
                        goto fail;
                }
                if (memchr(line, 0, n)) {
                        r = mkm_err_set(reterr, -MKM_E_PARSE, "%s: .PKGINFO:%u: NUL byte", label, lineno);
                        goto fail;
                }
                if (line[0] == '#' || line[strspn(line, " \t")] == 0)
                        continue;
                char *eq = strstr(line, " = ");
                if (!eq) {
                        r = mkm_err_set(reterr, -MKM_E_PARSE, "%s: .PKGINFO:%u: expected 'key = value'", label, lineno);
                        goto fail;
                }
                *eq = 0;
                const char *k = line, *v = eq + 3;
                int64_t num;
                if (strcmp(k, "pkgname") == 0)
                        r = set_scalar(&p.name, v);
                else if (strcmp(k, "pkgbase") == 0)
                        r = set_scalar(&p.base, v);
                else if (strcmp(k, "pkgver") == 0)
                        r = set_scalar(&p.version, v);
                else if (strcmp(k, "pkgdesc") == 0)
                        r = set_scalar(&p.desc, v);
                else if (strcmp(k, "url") == 0)
                        r = set_scalar(&p.url, v);
                else if (strcmp(k, "arch") == 0)
                        r = set_scalar(&p.arch, v);
                else if (strcmp(k, "packager") == 0)
                        r = set_scalar(&p.packager, v);
                else if (strcmp(k, "builddate") == 0 || strcmp(k, "size") == 0) {
                        if (parse_num(v, false, &num) < 0) {
                                r = mkm_err_set(reterr, -MKM_E_PARSE, "%s: .PKGINFO:%u: %s: expected a number, got '%s'",
                                                label, lineno, k, v);
                                goto fail;
                        }
                        if (k[0] == 'b')
                                p.builddate = num;
                        else
                                p.size = (uint64_t)num;
                } else if (strcmp(k, "license") == 0)
                        r = strv_push(&p.licenses, v);
                else if (strcmp(k, "group") == 0)
                        r = strv_push(&p.groups, v);
                else if (strcmp(k, "depend") == 0)
                        r = strv_push(&p.depends, v);
                else if (strcmp(k, "optdepend") == 0)
                        r = strv_push(&p.optdepends, v);
                else if (strcmp(k, "conflict") == 0)
                        r = strv_push(&p.conflicts, v);
                else if (strcmp(k, "provides") == 0)
                        r = strv_push(&p.provides, v);
                else if (strcmp(k, "replaces") == 0)
                        r = strv_push(&p.replaces, v);
                else if (strcmp(k, "backup") == 0)
                        r = strv_push(&p.backup, v);
                /* makedepend, checkdepend, xdata, ...: not part of the local db in pacman 6.0 */
                if (r < 0)
                        goto fail;
        }
        if (!p.name || !p.version) {
                r = mkm_err_set(reterr, -MKM_E_PARSE, "%s: .PKGINFO lacks %s", label, !p.name ? "pkgname" : "pkgver");
                goto fail;
        }
        *ret = p;
        return 0;
fail:
        pkginfo_done(&p);
        return r;
}
