/* SPDX-License-Identifier: MIT */
/* systemd-style INI parsing as a pure function over a buffer: no I/O, no globals, hard caps on
 * line length and entry count, so a hostile recipe (or a fuzzer) can only make it fail cleanly.
 *
 * Syntax (as systemd's conf-parser): "[Section]" headers, "Key=Value" assignments (whitespace
 * around '=' and at both ends trimmed), lines whose first non-blank character is '#' or ';' are
 * comments and are skipped everywhere (also between continued lines), and a trailing backslash
 * joins the next line, the backslash becoming a space. A doubled trailing backslash does not
 * continue. Keys are case-sensitive; repeated keys are all returned, in order. */
#pragma once

#include <stddef.h>

struct mkm_err;

#define INI_LINE_MAX (64u * 1024u)      /* bytes in one physical or joined line */
#define INI_ENTRIES_MAX 10000u          /* assignments + section headers in one buffer */

struct ini_entry {
        char *section;          /* the section name without brackets; never NULL */
        char *key;              /* NULL for a section header entry (one per "[Section]" line) */
        char *value;            /* NULL for a section header entry; "" for "Key=" */
        unsigned line;          /* 1-based line where the (first part of the) line starts */
};

/* Parse len bytes of buf (need not be NUL-terminated). filename is used only in messages.
 * On success *ret is an array of *ret_n entries in file order, owned by the caller (free with
 * ini_entries_free). On failure returns -MKM_E_PARSE (or -ENOMEM) and reterr says
 * "FILE:LINE: what is wrong"; *ret is untouched. */
int ini_parse(const char *buf, size_t len, const char *filename,
              struct ini_entry **ret, size_t *ret_n, struct mkm_err *reterr);

/* A line ini_parse_lenient skips: code -MKM_E_PARSE, line, msg "FILE:LINE: what is wrong"
 * (borrowed for the call). Return 0 to go on, a negative code (-ENOMEM) to stop with it. */
typedef int (*ini_error_fn)(void *userdata, int code, unsigned line, const char *msg);

/* ini_parse that reports a bad line through on_error and goes on with the next one, so a
 * checker can list every error at once. The assignments under a refused section header are
 * skipped without a word (the header's error covers them). What cannot be skipped still ends the
 * parse as in ini_parse: too many entries, a line too long, ENOMEM. */
int ini_parse_lenient(const char *buf, size_t len, const char *filename, ini_error_fn on_error, void *userdata,
                      struct ini_entry **ret, size_t *ret_n, struct mkm_err *reterr);

/* Frees the entries and the array; returns NULL. Accepts NULL. */
struct ini_entry *ini_entries_free(struct ini_entry *e, size_t n);
