/* SPDX-License-Identifier: MIT */
/* NULL-terminated string vectors. */
#include "strv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

char **strv_free(char **l) {
        if (!l)
                return NULL;
        for (char **p = l; *p; p++)
                free(*p);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l) {
        size_t n = 0;
        if (l)
                while (l[n])
                        n++;
        return n;
}

bool strv_contains(char *const *l, const char *s) {
        if (l)
                for (; *l; l++)
                        if (strcmp(*l, s) == 0)
                                return true;
        return false;
}

int strv_consume(char ***l, char *s) {
        size_t n = strv_length(*l);
        char **nl = mkm_reallocarray(*l, n + 2, sizeof(char *));
        if (!nl)
                return -ENOMEM;
        nl[n] = s;
        nl[n + 1] = NULL;
        *l = nl;
        return 0;
}

int strv_builder_consume(struct strv_builder *b, char *s) {
        /* n + 1 strings and the NULL after them */
        if (b->n + 2 > b->cap) {
                size_t nc = b->cap ? b->cap * 2 : 16;
                char **nl = mkm_reallocarray(b->l, nc, sizeof(char *));
                if (!nl)
                        return -ENOMEM;
                b->l = nl;
                b->cap = nc;
        }
        b->l[b->n++] = s;
        b->l[b->n] = NULL;
        return 0;
}

int strv_builder_push(struct strv_builder *b, const char *s) {
        char *c = strdup(s);
        if (!c)
                return -ENOMEM;
        int r = strv_builder_consume(b, c);
        if (r < 0)
                free(c);
        return r;
}

int strv_push(char ***l, const char *s) {
        char *c = strdup(s);
        if (!c)
                return -ENOMEM;
        int r = strv_consume(l, c);
        if (r < 0)
                free(c);
        return r;
}

int strv_extend(char ***l, char *const *b) {
        if (b)
                for (; *b; b++) {
                        int r = strv_push(l, *b);
                        if (r < 0)
                                return r;
                }
        return 0;
}

int strv_split(const char *s, const char *separators, char ***ret) {
        char **l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        const char *p = s;
        while (*p) {
                p += strspn(p, separators);
                if (!*p)
                        break;
                size_t n = strcspn(p, separators);
                char *w = strndup(p, n);
                if (!w || strv_consume(&l, w) < 0) {
                        free(w);
                        strv_free(l);
                        return -ENOMEM;
                }
                p += n;
        }
        *ret = l;
        return 0;
}

static int cmp(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort(char **l) {
        if (l)
                qsort(l, strv_length(l), sizeof(char *), cmp);
}

char **strv_copy(char *const *l) {
        char **c = calloc(1, sizeof(char *));
        if (!c)
                return NULL;
        if (strv_extend(&c, l) < 0)
                return strv_free(c);
        return c;
}
