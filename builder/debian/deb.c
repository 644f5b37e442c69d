/* SPDX-License-Identifier: MIT */
/* Reading a .deb: ar container, control.tar in memory, data.tar streamed into extract. */
#include "deb.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../extract.h"
#include "../util/cleanup.h"
#include "../util/err.h"

/* The member of the ar archive an inner reader draws from. */
struct inner_src {
        struct archive *outer;
        char buf[64 * 1024];
};

static la_ssize_t inner_read(struct archive *a, void *userdata, const void **ret_buf) {
        struct inner_src *s = userdata;
        la_ssize_t n = archive_read_data(s->outer, s->buf, sizeof s->buf);
        if (n < 0) {
                archive_set_error(a, EIO, "%s", archive_error_string(s->outer));
                return -1;
        }
        *ret_buf = s->buf;
        return n;
}

/* "control.tar", "control.tar.xz", ... -> 0 when name is base + an allowed compression suffix. */
static bool member_is(const char *name, const char *base, bool allow_bz2) {
        size_t bl = strlen(base);
        if (strncmp(name, base, bl) != 0)
                return false;
        const char *suffix = name + bl;
        return !*suffix || strcmp(suffix, ".gz") == 0 || strcmp(suffix, ".xz") == 0 || strcmp(suffix, ".zst") == 0 ||
               (allow_bz2 && strcmp(suffix, ".bz2") == 0);
}

static struct archive *inner_new(struct inner_src *src) {
        struct archive *in = archive_read_new();
        if (!in)
                return NULL;
        (void)archive_read_support_filter_gzip(in);
        (void)archive_read_support_filter_xz(in);
        (void)archive_read_support_filter_zstd(in);
        (void)archive_read_support_filter_bzip2(in);
        (void)archive_read_support_format_tar(in);
        (void)archive_read_support_format_gnutar(in);
        /* a failure to open stays readable on the handle: the first next_header reports it */
        (void)archive_read_open(in, src, NULL, inner_read, NULL);
        return in;
}

static bool control_name_ok(const char *n) {
        if (!((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= '0' && n[0] <= '9')))
                return false;
        for (const char *p = n; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '+' ||
                      *p == '-'))
                        return false;
        return strlen(n) <= 64;
}

static int cmp_member(const void *a, const void *b) {
        return strcmp(((const struct deb_member *)a)->name, ((const struct deb_member *)b)->name);
}

void deb_control_done(struct deb_control *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n; i++) {
                free(c->members[i].name);
                free(c->members[i].data);
        }
        free(c->members);
        *c = (struct deb_control){};
}

const struct deb_member *deb_control_get(const struct deb_control *c, const char *name) {
        for (size_t i = 0; c && i < c->n; i++)
                if (strcmp(c->members[i].name, name) == 0)
                        return &c->members[i];
        return NULL;
}

static int read_control(struct archive *outer, const char *label, struct deb_control *ret, struct mkm_err *reterr) {
        struct inner_src *src = malloc(sizeof *src);
        if (!src)
                return -ENOMEM;
        src->outer = outer;
        struct archive *in = inner_new(src);
        struct deb_control c = {};
        size_t total = 0;
        int r = 0;
        if (!in) {
                free(src);
                return -ENOMEM;
        }
        for (;;) {
                struct archive_entry *e;
                int ar = archive_read_next_header(in, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN) {
                        r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s: malformed control.tar: %s", label,
                                        archive_error_string(in));
                        goto out;
                }
                const char *raw = archive_entry_pathname(e);
                if (!raw) {
                        r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s: control.tar entry without a name", label);
                        goto out;
                }
                const char *name = raw;
                if (strncmp(name, "./", 2) == 0)
                        name += 2;
                if (!*name || strcmp(name, ".") == 0)
                        continue;       /* the directory itself */
                if (archive_entry_filetype(e) != AE_IFREG)
                        r = mkm_err_set(reterr, -MKM_E_UNSAFE_PATH, "%s: control.tar: '%s' is not a regular file", label,
                                        raw);
                else if (!control_name_ok(name))
                        r = mkm_err_set(reterr, -MKM_E_UNSAFE_PATH, "%s: control.tar: refusing member '%s'", label, raw);
                else if (c.n >= DEB_CONTROL_MEMBERS_MAX)
                        r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s: control.tar has more than %u members", label,
                                        DEB_CONTROL_MEMBERS_MAX);
                else if (deb_control_get(&c, name))
                        r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s: control.tar has '%s' twice", label, name);
                if (r < 0)
                        goto out;
                la_int64_t size = archive_entry_size(e);
                if (size < 0 || (uint64_t)size > DEB_CONTROL_MAX) {
                        r = mkm_err_set(reterr, -MKM_E_TOO_BIG, "%s: control.tar: '%s' is larger than %zu bytes", label,
                                        name, DEB_CONTROL_MAX);
                        goto out;
                }
                total += (size_t)size;
                if (total > DEB_CONTROL_TOTAL_MAX) {
                        r = mkm_err_set(reterr, -MKM_E_TOO_BIG, "%s: control.tar holds more than %zu bytes", label,
                                        DEB_CONTROL_TOTAL_MAX);
                        goto out;
                }
                struct deb_member *nm = realloc(c.members, (c.n + 1) * sizeof *nm);
                if (!nm) {
                        r = -ENOMEM;
                        goto out;
                }
                c.members = nm;
                struct deb_member *m = &c.members[c.n];
                *m = (struct deb_member){ .name = strdup(name), .data = malloc((size_t)size + 1),
                                          .mode = archive_entry_perm(e) & 07777 };
                c.n++;
                if (!m->name || !m->data) {
                        r = -ENOMEM;
                        goto out;
                }
                size_t got = 0;
                while (got < (size_t)size) {
                        la_ssize_t k = archive_read_data(in, m->data + got, (size_t)size - got);
                        if (k < 0) {
                                r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s: control.tar: reading '%s': %s", label, name,
                                                archive_error_string(in));
                                goto out;
                        }
                        if (k == 0)
                                break;
                        got += (size_t)k;
                }
                if (got != (size_t)size) {
                        r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s: control.tar: '%s' is truncated", label, name);
                        goto out;
                }
                m->data[got] = 0;
                m->len = got;
        }
        if (!deb_control_get(&c, "control")) {
                r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s: control.tar has no 'control' member", label);
                goto out;
        }
        if (c.n > 1)
                qsort(c.members, c.n, sizeof *c.members, cmp_member);
        *ret = c;
        c = (struct deb_control){};
out:
        deb_control_done(&c);
        archive_read_free(in);
        free(src);
        return r;
}

static int read_data(struct mkm_ctx *ctx, struct archive *outer, const char *label, int rootfd,
                     const struct extract_opts *opts, struct extract_result *ret, struct mkm_err *reterr) {
        struct inner_src *src = malloc(sizeof *src);
        if (!src)
                return -ENOMEM;
        src->outer = outer;
        struct archive *in = inner_new(src);
        if (!in) {
                free(src);
                return -ENOMEM;
        }
        int r = extract_archive(ctx, rootfd, in, opts, ret, reterr);
        archive_read_free(in);
        free(src);
        return r;
}

int deb_read(struct mkm_ctx *ctx, int fd, const char *label, int rootfd, const struct extract_opts *opts,
             struct deb_control *ret_control, struct extract_result *ret_data, struct mkm_err *reterr) {
        struct archive *a = archive_read_new();
        struct deb_control c = {};
        struct extract_result data = {};
        bool have_data = false;
        int r = 0, step = 0;    /* 0: want debian-binary, 1: control, 2: data, 3: done */
        if (!a)
                return -ENOMEM;
        (void)archive_read_support_format_ar(a);
        if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
                r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s: not a .deb: %s", label, archive_error_string(a));
                goto out;
        }
        for (;;) {
                struct archive_entry *e;
                int ar = archive_read_next_header(a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN) {
                        r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s: not a .deb: %s", label, archive_error_string(a));
                        goto out;
                }
                const char *name = archive_entry_pathname(e);
                if (!name)
                        name = "";
                if (step == 0) {
                        char buf[16] = "";
                        la_ssize_t k = strcmp(name, "debian-binary") == 0 ? archive_read_data(a, buf, sizeof buf - 1) : -1;
                        if (k < 4 || strncmp(buf, "2.", 2) != 0) {
                                r = mkm_err_set(reterr, -MKM_E_ARCHIVE,
                                                "%s: not a .deb: the first member must be 'debian-binary' with format 2.x",
                                                label);
                                goto out;
                        }
                        step = 1;
                } else if (name[0] == '_')
                        continue;       /* deb(5): members starting with '_' may be ignored */
                else if (step == 1 && member_is(name, "control.tar", false)) {
                        r = read_control(a, label, &c, reterr);
                        if (r < 0)
                                goto out;
                        step = 2;
                        if (rootfd < 0)
                                break;
                } else if (step == 2 && member_is(name, "data.tar", true)) {
                        r = read_data(ctx, a, label, rootfd, opts, &data, reterr);
                        if (r < 0)
                                goto out;
                        have_data = true;
                        step = 3;
                } else {
                        r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s: unexpected member '%s' in the .deb (%s)", label,
                                        name, step == 1 ? "expected control.tar" : step == 2 ? "expected data.tar"
                                                                                             : "after data.tar");
                        goto out;
                }
        }
        if (step < (rootfd < 0 ? 2 : 3)) {
                r = mkm_err_set(reterr, -MKM_E_ARCHIVE, "%s: the .deb has no %s member", label,
                                step < 2 ? "control.tar" : "data.tar");
                goto out;
        }
        *ret_control = c;
        c = (struct deb_control){};
        if (ret_data && have_data) {
                *ret_data = data;
                data = (struct extract_result){};
        }
out:
        deb_control_done(&c);
        extract_result_done(&data);
        archive_read_free(a);
        return r;
}
