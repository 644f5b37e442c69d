/* SPDX-License-Identifier: MIT */
/* The control members of a .deb that the unpacker reads (deb.h keeps them in memory): the
 * control file's identity fields and the conffiles list. Both come from inside a package whose
 * digest matched a signed index, but whoever built the package wrote them: they are parsed with
 * the same care as the index (fuzz-deb-control), and paths are refused rather than cleaned up. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct mkm_err;

/* What the unpacker takes from a control file. */
struct deb_control_info {
        char *name, *version, *arch;    /* Package:, Version:, Architecture: as written; NULL
                                         * when absent (the caller compares them with the index) */
        bool ma_same;                   /* Multi-Arch: same (ASCII case-insensitive) */
};

/* Parse a control file (len bytes, need not be NUL-terminated): exactly one deb822 paragraph
 * without the fields only dpkg writes into its database (Status, Conffiles, Config-Version,
 * Triggers-Pending, Triggers-Awaited). -MKM_E_BADDATA with "malformed control file:
 * LABEL:LINE: why", "the control file has more than one paragraph" or "the control file has a
 * Status: field". ret is written only on success; free with deb_control_info_done(). */
int deb_control_info_parse(const char *text, size_t len, const char *label, struct deb_control_info *ret,
                           struct mkm_err *reterr);
void deb_control_info_done(struct deb_control_info *info);

/* Parse a conffiles member (NUL-terminated text): one absolute path a line, flags such as
 * "remove-on-upgrade" after a blank ignored, blank lines skipped. A path that is not absolute,
 * ends in '/' or holds "//", "/./" or "/../" (or ends in "/." or "/..") is -MKM_E_UNSAFE_PATH
 * "LABEL: conffiles: refusing 'PATH'". *ret is a NULL-terminated list (NULL when empty), owned
 * by the caller, written only on success. */
int deb_conffiles_parse(const char *text, const char *label, char ***ret, struct mkm_err *reterr);
