/* SPDX-License-Identifier: MIT */
/* The host's apt sources, read the way apt reads them, for a build without Mirror= (as mmdebstrap
 * and debootstrap take the host's mirror). Only the mirror URIs are taken from the host: never its
 * apt options (this host's apt.conf turns off Valid-Until checks; we do not copy that). */
#pragma once

struct mkm_err;

/* The URIs of every enabled "deb" source under host_root (etc/apt/sources.list, then
 * etc/apt/sources.list.d/ *.list and *.sources in name order) whose suites include suite, in that
 * order, each once, without a trailing '/'. -ENOENT (with a message naming the files read) when
 * none lists the suite. A malformed file is -MKM_E_PARSE naming FILE:LINE. */
int deb_host_mirrors(const char *host_root, const char *suite, char ***ret_uris, struct mkm_err *reterr);

/* The same from one buffer (for tests): deb822 when is_deb822, else one-line form. Appends to
 * *uris (which may be NULL). */
int deb_sources_parse(const char *text, size_t len, const char *label, int is_deb822, const char *suite, char ***uris,
                      struct mkm_err *reterr);
