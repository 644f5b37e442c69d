/* SPDX-License-Identifier: MIT */
/* NULL-terminated string vectors (char **). A vector owns its strings unless noted. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Frees every string and the vector; returns NULL. Accepts NULL. */
char **strv_free(char **l);
static inline void strv_freep(char ***l) { (void)strv_free(*l); }
#define _cleanup_strv_free_ __attribute__((cleanup(strv_freep)))

size_t strv_length(char *const *l);
bool strv_contains(char *const *l, const char *s);
/* Append a copy of s. On failure *l is unchanged. Returns 0 or -ENOMEM. */
int strv_push(char ***l, const char *s);
/* Append s itself: takes ownership of s on success only. */
int strv_consume(char ***l, char *s);
/* A vector being built one string at a time: strv_push() finds the end on every call (O(n)), so
 * a loop that appends thousands of strings (a package's files) uses this instead. b->l stays a
 * valid NULL-terminated vector (or NULL before the first append); take it when done. */
struct strv_builder {
        char **l;
        size_t n, cap;
};
/* Append s itself (ownership taken on success only), or a copy of it. 0 or -ENOMEM. */
int strv_builder_consume(struct strv_builder *b, char *s);
int strv_builder_push(struct strv_builder *b, const char *s);

/* Append copies of every string of b. */
int strv_extend(char ***l, char *const *b);
/* Split s at any of the separator characters, skipping empty fields. Caller owns *ret. */
int strv_split(const char *s, const char *separators, char ***ret);
/* Sort in place with strcmp. */
void strv_sort(char **l);
/* Deep copy. NULL in gives an empty vector. */
char **strv_copy(char *const *l);
