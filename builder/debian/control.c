/* SPDX-License-Identifier: MIT */
/* Control members of a .deb: the control file's identity and the conffiles list (control.h). */
#include "control.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../util/cleanup.h"
#include "../util/err.h"
#include "../util/strv.h"
#include "index.h"

int deb_control_info_parse(const char *text, size_t len, const char *label, struct deb_control_info *ret,
                           struct mkm_err *reterr) {
        size_t pos = 0, n = 0, n2 = 0;
        struct deb822_field f[128], f2[4];
        struct mkm_err e = {};
        if (deb822_next(text, len, &pos, label, f, ELEMENTSOF(f), &n, &e) <= 0)
                return mkm_err_set(reterr, -MKM_E_BADDATA, "malformed control file: %s",
                                   e.msg[0] ? e.msg : "no paragraph");
        if (deb822_next(text, len, &pos, label, f2, ELEMENTSOF(f2), &n2, &e) != 0)
                return mkm_err_set(reterr, -MKM_E_BADDATA, "the control file has more than one paragraph");
        static const char *const forbidden[] = { "Status", "Conffiles", "Config-Version", "Triggers-Pending",
                                                 "Triggers-Awaited" };
        for (size_t k = 0; k < ELEMENTSOF(forbidden); k++)
                if (deb822_find(f, n, forbidden[k]))
                        return mkm_err_set(reterr, -MKM_E_BADDATA, "the control file has a %s: field", forbidden[k]);
        static const char *const names[] = { "Package", "Version", "Architecture", "Multi-Arch" };
        char *vals[4] = {};
        for (size_t k = 0; k < ELEMENTSOF(names); k++) {
                const struct deb822_field *x = deb822_find(f, n, names[k]);
                if (x && !(vals[k] = strndup(x->value, x->value_len))) {
                        for (size_t j = 0; j < k; j++)
                                free(vals[j]);
                        return -ENOMEM;
                }
        }
        *ret = (struct deb_control_info){ .name = vals[0], .version = vals[1], .arch = vals[2],
                                          .ma_same = vals[3] && strcasecmp(vals[3], "same") == 0 };
        free(vals[3]);
        return 0;
}

void deb_control_info_done(struct deb_control_info *info) {
        free(info->name);
        free(info->version);
        free(info->arch);
        *info = (struct deb_control_info){};
}

int deb_conffiles_parse(const char *text, const char *label, char ***ret, struct mkm_err *reterr) {
        _cleanup_strv_free_ char **lines = NULL, **out = NULL;
        int q = strv_split(text, "\n", &lines);
        if (q < 0)
                return q;
        for (char **l = lines; l && *l; l++) {
                char *p = *l;
                p += strspn(p, " \t");
                p[strcspn(p, " \t\r")] = 0;     /* "remove-on-upgrade" and other flags follow a blank */
                if (!*p)
                        continue;
                size_t pl = strlen(p);
                if (p[0] != '/' || strstr(p, "/../") || strstr(p, "/./") || strstr(p, "//") || p[pl - 1] == '/' ||
                    (pl >= 2 && strcmp(p + pl - 2, "/.") == 0) || (pl >= 3 && strcmp(p + pl - 3, "/..") == 0))
                        return mkm_err_set(reterr, -MKM_E_UNSAFE_PATH, "%s: conffiles: refusing '%s'", label, p);
                q = strv_push(&out, p);
                if (q < 0)
                        return q;
        }
        *ret = TAKE_PTR(out);
        return 0;
}
