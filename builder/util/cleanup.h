/* SPDX-License-Identifier: MIT */
/* Scope-bound cleanup helpers (after systemd's alloc-util.h / fd-util.h and bubblewrap's utils.h).
 * Every destructor accepts NULL / -EBADF so half-built objects clean up safely. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                (void)close(*fd);
                errno = saved;
        }
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

/* Define `static inline void NAME##p(TYPE **p)` calling FUNC(*p) when non-NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                 \
        static inline void func##p(type *p) {                   \
                if (*p)                                         \
                        (void)func(*p);                         \
        }

/* Take ownership out of a cleanup-managed variable. */
#define TAKE_PTR(p)                                             \
        ({                                                      \
                __typeof__(p) _tp_ = (p);                       \
                (p) = NULL;                                     \
                _tp_;                                           \
        })

#define TAKE_FD(fd)                                             \
        ({                                                      \
                int _tf_ = (fd);                                \
                (fd) = -EBADF;                                  \
                _tf_;                                           \
        })

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

static inline int negative_errno(void) {
        /* errno is always positive after a failing libc call, but be defensive. */
        return errno > 0 ? -errno : -EIO;
}

/* Overflow-checked allocation of n elements of t (systemd's new()). */
#define mkm_new(t, n) ((t *)mkm_reallocarray(NULL, (n), sizeof(t)))
#define mkm_new0(t, n) ((t *)calloc((n) ? (n) : 1, sizeof(t)))

static inline void *mkm_reallocarray(void *p, size_t n, size_t sz) {
        if (sz != 0 && n > ((size_t)-1) / sz) {
                errno = ENOMEM;
                return NULL;
        }
        size_t total = n * sz;
        return realloc(p, total > 0 ? total : 1);
}

/* Make room for one more element in a growing array *p of *cap elements of size sz, n of them in
 * use: doubles the capacity (first: initial) when n == *cap. 0, or -ENOMEM leaving *p as it was.
 *   if ((r = mkm_grow((void **)&v->items, &v->cap, v->n, sizeof *v->items, 16)) < 0) return r; */
static inline int mkm_grow(void **p, size_t *cap, size_t n, size_t sz, size_t initial) {
        if (n < *cap)
                return 0;
        size_t nc = *cap ? *cap * 2 : initial;
        void *np = nc > *cap ? mkm_reallocarray(*p, nc, sz) : NULL;
        if (!np)
                return -ENOMEM;
        *p = np;
        *cap = nc;
        return 0;
}
