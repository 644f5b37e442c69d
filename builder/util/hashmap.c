/* SPDX-License-Identifier: MIT */
/* String-keyed open-addressing hash map. */
#include "hashmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
        char *key;
        void *value;
        uint64_t hash;
};

struct hashmap {
        struct slot *slots;
        size_t cap, n;          /* cap is a power of two; load kept below 0.7 */
};

static uint64_t fnv1a(const char *s) {
        uint64_t h = 1469598103934665603ULL;
        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 1099511628211ULL;
        }
        return h;
}

struct hashmap *hashmap_new(void) {
        struct hashmap *m = calloc(1, sizeof *m);
        if (!m)
                return NULL;
        m->cap = 64;
        m->slots = calloc(m->cap, sizeof *m->slots);
        if (!m->slots) {
                free(m);
                return NULL;
        }
        return m;
}

struct hashmap *hashmap_free(struct hashmap *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->cap; i++)
                free(m->slots[i].key);
        free(m->slots);
        free(m);
        return NULL;
}

static struct slot *find(const struct hashmap *m, const char *key, uint64_t h) {
        size_t mask = m->cap - 1;
        for (size_t i = h & mask;; i = (i + 1) & mask) {
                struct slot *s = &m->slots[i];
                if (!s->key || (s->hash == h && strcmp(s->key, key) == 0))
                        return s;
        }
}

static int grow(struct hashmap *m) {
        size_t ncap = m->cap * 2;
        struct slot *ns = calloc(ncap, sizeof *ns);
        if (!ns)
                return -ENOMEM;
        for (size_t i = 0; i < m->cap; i++) {
                struct slot *s = &m->slots[i];
                if (!s->key)
                        continue;
                for (size_t j = s->hash & (ncap - 1);; j = (j + 1) & (ncap - 1))
                        if (!ns[j].key) {
                                ns[j] = *s;
                                break;
                        }
        }
        free(m->slots);
        m->slots = ns;
        m->cap = ncap;
        return 0;
}

int hashmap_put(struct hashmap *m, const char *key, void *value) {
        if ((m->n + 1) * 10 >= m->cap * 7) {
                int r = grow(m);
                if (r < 0)
                        return r;
        }
        uint64_t h = fnv1a(key);
        struct slot *s = find(m, key, h);
        if (!s->key) {
                s->key = strdup(key);
                if (!s->key)
                        return -ENOMEM;
                s->hash = h;
                m->n++;
        }
        s->value = value;
        return 0;
}

void *hashmap_get(const struct hashmap *m, const char *key) {
        struct slot *s = find(m, key, fnv1a(key));
        return s->key ? s->value : NULL;
}

bool hashmap_contains(const struct hashmap *m, const char *key) {
        return find(m, key, fnv1a(key))->key != NULL;
}

size_t hashmap_size(const struct hashmap *m) {
        return m->n;
}

bool hashmap_next(const struct hashmap *m, size_t *iter, const char **ret_key, void **ret_value) {
        for (; *iter < m->cap; (*iter)++) {
                struct slot *s = &m->slots[*iter];
                if (s->key) {
                        if (ret_key)
                                *ret_key = s->key;
                        if (ret_value)
                                *ret_value = s->value;
                        (*iter)++;
                        return true;
                }
        }
        return false;
}
