/* SPDX-License-Identifier: MIT */
/* A string-keyed hash map (open addressing, FNV-1a). Keys are copied; values are borrowed
 * pointers the caller manages. Iteration order is unspecified: sort before output. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct hashmap;

struct hashmap *hashmap_new(void);
struct hashmap *hashmap_free(struct hashmap *m);
static inline void hashmap_freep(struct hashmap **m) { (void)hashmap_free(*m); }

/* Insert or replace. Returns 0, or -ENOMEM. */
int hashmap_put(struct hashmap *m, const char *key, void *value);
/* Borrowed value or NULL when absent. */
void *hashmap_get(const struct hashmap *m, const char *key);
bool hashmap_contains(const struct hashmap *m, const char *key);
size_t hashmap_size(const struct hashmap *m);

/* Iterate: start with *iter = 0; returns false at the end. Key and value are borrowed. */
bool hashmap_next(const struct hashmap *m, size_t *iter, const char **ret_key, void **ret_value);
