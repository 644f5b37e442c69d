/* SPDX-License-Identifier: MIT */
/* Internal to builder/debian: the per-index arena (a bump allocator over large chunks) and the
 * string set that interns names and versions into it, so that the ~64k packages of an index
 * cost no malloc per field and equal strings share one copy.
 *
 * Threat: the strings come from a mirror; the set hashes them with a per-set random key so that
 * a crafted index cannot pile its names into one probe chain. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct deb_atom;
struct deb_index;
struct deb_rel;
struct mkm_err;

struct arena_chunk;

struct arena {
        struct arena_chunk *chunks;     /* newest first */
        char *cur, *end;                /* free space of the current chunk */
        size_t total;                   /* bytes malloc'ed for chunks */
};

/* n bytes aligned to align (a power of two, at most 16), or NULL on ENOMEM. Never freed alone. */
void *arena_alloc(struct arena *a, size_t n, size_t align);
char *arena_strndup(struct arena *a, const char *s, size_t n);
void arena_done(struct arena *a);

/* A set of NUL-terminated strings in an arena. Each string is stored once, after its 32-bit
 * hash, so that growing the table does not hash again. */
struct intern_set {
        const char **slots;
        size_t cap, n;
        uint64_t key;
};

/* The interned copy of s[0..n) (which must not hold a NUL), or NULL on ENOMEM. */
const char *intern_str(struct intern_set *set, struct arena *a, const char *s, size_t n);
void intern_done(struct intern_set *set);

/* Shared atoms: "libc6 (>= 2.36)" appears in thousands of Depends; a group with that one
 * alternative points to the one copy. Keys are the interned pointers, so no string compares. */
struct atom_set {
        struct deb_atom **slots;
        size_t cap, n;
};

/* The shared atom equal to *atom (whose strings are already interned), or NULL on ENOMEM. */
struct deb_atom *atom_intern(struct atom_set *set, struct arena *a, const struct deb_atom *atom);
void atom_set_done(struct atom_set *set);

/* What struct deb_index.arena points to. */
struct deb_store {
        struct arena mem;
        struct intern_set strs;
        struct atom_set atoms;  /* only while the index is parsed */
};

/* deb_index_parse() with smaller caps than DEB_INDEX_MAX_TEXT and DEB_INDEX_MAX_PKGS, for tests and
 * the fuzzer (the code paths are the same). */
int deb_index_parse_capped(const char *text, size_t len, const char *label, uint32_t number, size_t max_text,
                           size_t max_pkgs, struct deb_index **ret, struct mkm_err *reterr);

/* ---- validators shared by the parsers ----------------------------------------------------- */

#include <stdbool.h>

/* Character classes (a table, as these run over every byte of 50 MB indexes). */
enum {
        DEB_CC_NAME = 1 << 0,   /* package name: a-z 0-9 + . - */
        DEB_CC_VER = 1 << 1,    /* upstream version: A-Z a-z 0-9 . + ~ : - */
        DEB_CC_REV = 1 << 2,    /* revision: A-Z a-z 0-9 . + ~ */
        DEB_CC_ARCH = 1 << 3,   /* architecture: a-z 0-9 - */
        DEB_CC_PATH = 1 << 4,   /* repository path component: A-Z a-z 0-9 - . _ ~ + % @ = , : */
        DEB_CC_DELIM = 1 << 5,  /* ends a word in a relationship field: blanks, NUL, : ( ) , | [ ] < > */
};
extern const uint8_t deb_cc[256];
static inline bool deb_cc_is(char c, unsigned cls) { return deb_cc[(unsigned char)c] & cls; }

/* ASCII case-insensitive: s[0..n) equals the lowercase-or-not literal lit. */
bool deb_ascii_ieq(const char *s, size_t n, const char *lit);

/* "yes"/"no" of Essential:, Acquire-By-Hash: ... (ASCII case-insensitive, as dpkg and apt);
 * -1 if neither. */
int deb_parse_yesno(const char *s, size_t n);

/* Decimal uint64 without sign or blanks. */
bool deb_parse_u64(const char *s, size_t n, uint64_t *ret);

/* 64 hex digits; writes them lowercase and NUL-terminated into out[65]. */
bool deb_parse_sha256(const char *s, size_t n, char out[65]);

/* A repository path (Filename:, a Release entry): relative, components separated by single
 * '/', none "." or "..", only [A-Za-z0-9] and "-._~+%@=,:" so that appending it to a mirror URL
 * cannot change the URL's meaning. NULL when fine, else a static reason. */
const char *deb_path_invalid(const char *s, size_t n);

/* Architecture name: [a-z0-9-]+, at most 64 bytes ("all", "amd64", "any", "native"). */
bool deb_arch_valid(const char *s, size_t n);

/* Version as dpkg's parseversion() checks it (epoch digits; upstream non-empty of
 * [A-Za-z0-9.+~:-]; revision non-empty of [A-Za-z0-9.+~]). NULL when fine, else a reason. */
const char *deb_version_invalid(const char *s, size_t n);

/* ---- relationship fields (rel.c) ---------------------------------------------------------- */

/* One alternative as read, before its strings are interned: views into the value. */
struct rel_tok {
        const char *name, *arch, *ver;
        uint16_t name_len, arch_len, ver_len;
        uint8_t op;             /* enum deb_relop */
        bool first;             /* the first alternative of its group */
};

/* Reused from field to field so that reading a field allocates only when a field is longer than
 * any before it. */
struct rel_scratch {
        struct rel_tok *toks;
        size_t n, cap;
        uint32_t n_groups;
};

/* Reads value into sc. 0, -ENOMEM, or -MKM_E_PARSE with *ret_why (static) and *ret_at (the byte
 * offset in value where reading stopped). */
int rel_scan(const char *value, size_t len, struct rel_scratch *sc, const char **ret_why, size_t *ret_at);

/* Builds rel from sc in st's arena (interning strings; sharing one-atom groups when share). 0 or
 * -ENOMEM. */
int rel_store(struct deb_store *st, bool share, const struct rel_scratch *sc, struct deb_rel *rel);

/* A printable excerpt of s for messages, NUL-terminated in buf: control bytes and non-ASCII as
 * '?' (a message must not carry terminal escapes from a mirror), newlines and tabs as ' ', and
 * "..." at the end when s does not fit. */
void deb_snippet(char *buf, size_t size, const char *s, size_t n);
