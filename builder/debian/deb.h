/* SPDX-License-Identifier: MIT */
/* A binary package (.deb, deb(5)): an ar archive of "debian-binary" ("2.x\n"), "control.tar[.gz|
 * .xz|.zst]" and "data.tar[.gz|.xz|.zst|.bz2]", in that order. The control members are kept in
 * memory (they become /var/lib/dpkg/info/PKG.*); data.tar is streamed into the tree through
 * extract.h, never through a temporary file.
 *
 * The .deb's sha256 and size were checked against a verified index before this runs (pipeline.h),
 * but its contents are still untrusted: member names are validated, control members are capped
 * (DEB_CONTROL_MAX each, DEB_CONTROL_TOTAL_MAX together, DEB_CONTROL_MEMBERS_MAX of them), and data.tar goes through extract's
 * checks (no "..", no absolute paths, no writes through symlinks, no device nodes). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mkm_ctx;
struct mkm_err;
struct extract_opts;
struct extract_result;

#define DEB_CONTROL_MAX ((size_t)16 * 1024 * 1024)
#define DEB_CONTROL_MEMBERS_MAX 64u
#define DEB_CONTROL_TOTAL_MAX ((size_t)32 * 1024 * 1024)     /* all members of one control.tar */

/* One member of control.tar ("control", "md5sums", "conffiles", "postinst", ...). */
struct deb_member {
        char *name;             /* a plain file name: [a-z0-9][a-z0-9._+-]* */
        char *data;             /* NUL-terminated copy */
        size_t len;
        unsigned mode;          /* permission bits from the archive */
};

struct deb_control {
        struct deb_member *members;     /* in name order */
        size_t n;
};

/* The member called name, or NULL. */
const struct deb_member *deb_control_get(const struct deb_control *c, const char *name);
void deb_control_done(struct deb_control *c);

/* Read the .deb from fd: its control members into *ret_control, and (when rootfd >= 0) its data
 * into the tree through extract_archive() with opts, filling *ret_data. With rootfd < 0 only the
 * control part is read. Errors name the label: -MKM_E_ARCHIVE for a malformed container (wrong
 * member order, unknown compression, a second data member), -MKM_E_UNSAFE_PATH for a bad control
 * member name, plus whatever extract reports. Outputs are written only on success. */
int deb_read(struct mkm_ctx *ctx, int fd, const char *label, int rootfd, const struct extract_opts *opts,
             struct deb_control *ret_control, struct extract_result *ret_data, struct mkm_err *reterr);
