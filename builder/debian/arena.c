/* SPDX-License-Identifier: MIT */
/* The per-index arena, its string and atom sets, and the small validators the Debian metadata
 * parsers share (see arena.h). */
#include "arena.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "index.h"

/* Chunks grow from 16 KiB (an index of updates or security holds a few packages) to 1 MiB, each
 * as big as all before it. */
#define ARENA_CHUNK_MIN ((size_t)16 << 10)
#define ARENA_CHUNK ((size_t)1 << 20)

struct arena_chunk {
        struct arena_chunk *next;
        size_t size;
        _Alignas(16) char data[];
};

static struct arena_chunk *chunk_new(size_t size) {
        if (size > SIZE_MAX - sizeof(struct arena_chunk))
                return NULL;
        struct arena_chunk *c = malloc(sizeof *c + size);
        if (c)
                c->size = size;
        return c;
}

void *arena_alloc(struct arena *a, size_t n, size_t align) {
        uintptr_t cur = (uintptr_t)a->cur;
        uintptr_t p = (cur + (align - 1)) & ~(uintptr_t)(align - 1);

        if (a->cur && p <= (uintptr_t)a->end && n <= (uintptr_t)a->end - p) {
                a->cur = (char *)(p + n);
                return (void *)p;
        }
        if (n > ARENA_CHUNK / 4) {
                /* A big array gets a chunk of its own, behind the current one, so the rest of the
                 * current chunk stays in use. */
                struct arena_chunk *c = chunk_new(n);
                if (!c)
                        return NULL;
                a->total += n;
                if (a->chunks) {
                        c->next = a->chunks->next;
                        a->chunks->next = c;
                } else {
                        c->next = NULL;
                        a->chunks = c;
                        a->cur = a->end = c->data + n;
                }
                return c->data;
        }
        size_t size = a->total < ARENA_CHUNK_MIN ? ARENA_CHUNK_MIN : a->total > ARENA_CHUNK ? ARENA_CHUNK : a->total;
        if (size < n)
                size = ARENA_CHUNK;
        struct arena_chunk *c = chunk_new(size);
        if (!c)
                return NULL;
        a->total += size;
        c->next = a->chunks;
        a->chunks = c;
        a->cur = c->data + n;   /* data is 16-aligned */
        a->end = c->data + size;
        return c->data;
}

char *arena_strndup(struct arena *a, const char *s, size_t n) {
        if (n == SIZE_MAX)
                return NULL;
        char *p = arena_alloc(a, n + 1, 1);
        if (!p)
                return NULL;
        memcpy(p, s, n);
        p[n] = 0;
        return p;
}

void arena_done(struct arena *a) {
        while (a->chunks) {
                struct arena_chunk *c = a->chunks;
                a->chunks = c->next;
                free(c);
        }
        a->cur = a->end = NULL;
        a->total = 0;
}

/* ---- strings ------------------------------------------------------------------------------ */

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* A keyed multiply-rotate hash: quick on the short names of an index, and, keyed at random,
 * not something an index can be written against. */
static uint32_t hash_str(uint64_t key, const char *s, size_t n) {
        uint64_t h = key ^ ((uint64_t)n * 0x9e3779b97f4a7c15u);
        while (n >= 8) {
                uint64_t v;
                memcpy(&v, s, 8);
                h = rotl64(h ^ (v * 0xbf58476d1ce4e5b9u), 31) * 0x94d049bb133111ebu;
                s += 8;
                n -= 8;
        }
        uint64_t v = 0;
        memcpy(&v, s, n);
        h = rotl64(h ^ (v * 0xbf58476d1ce4e5b9u), 31) * 0x94d049bb133111ebu;
        h ^= h >> 29;
        h *= 0xbf58476d1ce4e5b9u;
        h ^= h >> 32;
        return (uint32_t)h;
}

static inline uint32_t stored_hash(const char *s) {
        uint32_t h;
        memcpy(&h, s - sizeof h, sizeof h);
        return h;
}

static int intern_grow(struct intern_set *set) {
        size_t ncap = set->cap ? set->cap * 2 : 1024;
        const char **ns = calloc(ncap, sizeof *ns);
        if (!ns)
                return -ENOMEM;
        for (size_t i = 0; i < set->cap; i++) {
                const char *s = set->slots[i];
                if (!s)
                        continue;
                size_t j = stored_hash(s) & (ncap - 1);
                while (ns[j])
                        j = (j + 1) & (ncap - 1);
                ns[j] = s;
        }
        free(set->slots);
        set->slots = ns;
        set->cap = ncap;
        return 0;
}

const char *intern_str(struct intern_set *set, struct arena *a, const char *s, size_t n) {
        if (set->cap == 0) {
                if (getrandom(&set->key, sizeof set->key, GRND_NONBLOCK) != (ssize_t)sizeof set->key)
                        set->key = (uint64_t)(uintptr_t)set ^ 0x2545f4914f6cdd1du;
        }
        /* load factor at most 5/8 */
        if ((set->n + 1) * 8 > set->cap * 5 && intern_grow(set) < 0)
                return NULL;

        uint32_t h = hash_str(set->key, s, n);
        size_t mask = set->cap - 1;
        for (size_t i = h & mask;; i = (i + 1) & mask) {
                const char *e = set->slots[i];
                if (!e) {
                        if (n > SIZE_MAX - 8)
                                return NULL;
                        char *p = arena_alloc(a, sizeof h + n + 1, 4);
                        if (!p)
                                return NULL;
                        memcpy(p, &h, sizeof h);
                        p += sizeof h;
                        memcpy(p, s, n);
                        p[n] = 0;
                        set->slots[i] = p;
                        set->n++;
                        return p;
                }
                if (stored_hash(e) == h && memcmp(e, s, n) == 0 && e[n] == 0)
                        return e;
        }
}

void intern_done(struct intern_set *set) {
        free(set->slots);
        *set = (struct intern_set){ 0 };
}

/* ---- atoms -------------------------------------------------------------------------------- */

static size_t hash_atom(const struct deb_atom *x) {
        uint64_t h = (uint64_t)(uintptr_t)x->name * 0x9e3779b97f4a7c15u;
        h = rotl64(h ^ (uint64_t)(uintptr_t)x->arch, 27) * 0xbf58476d1ce4e5b9u;
        h = rotl64(h ^ (uint64_t)(uintptr_t)x->version, 27) * 0x94d049bb133111ebu;
        h ^= (uint64_t)x->op;
        h ^= h >> 31;
        return (size_t)h;
}

static int atom_grow(struct atom_set *set) {
        size_t ncap = set->cap ? set->cap * 2 : 1024;
        struct deb_atom **ns = calloc(ncap, sizeof *ns);
        if (!ns)
                return -ENOMEM;
        for (size_t i = 0; i < set->cap; i++) {
                if (!set->slots[i])
                        continue;
                size_t j = hash_atom(set->slots[i]) & (ncap - 1);
                while (ns[j])
                        j = (j + 1) & (ncap - 1);
                ns[j] = set->slots[i];
        }
        free(set->slots);
        set->slots = ns;
        set->cap = ncap;
        return 0;
}

struct deb_atom *atom_intern(struct atom_set *set, struct arena *a, const struct deb_atom *atom) {
        if ((set->n + 1) * 8 > set->cap * 5 && atom_grow(set) < 0)
                return NULL;
        size_t mask = set->cap - 1;
        for (size_t i = hash_atom(atom) & mask;; i = (i + 1) & mask) {
                struct deb_atom *e = set->slots[i];
                if (!e) {
                        e = arena_alloc(a, sizeof *e, _Alignof(struct deb_atom));
                        if (!e)
                                return NULL;
                        *e = *atom;
                        set->slots[i] = e;
                        set->n++;
                        return e;
                }
                if (e->name == atom->name && e->arch == atom->arch && e->version == atom->version &&
                    e->op == atom->op)
                        return e;
        }
}

void atom_set_done(struct atom_set *set) {
        free(set->slots);
        *set = (struct atom_set){ 0 };
}

/* ---- validators --------------------------------------------------------------------------- */

static inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

bool deb_ascii_ieq(const char *s, size_t n, const char *lit) {
        for (size_t i = 0; i < n; i++) {
                if (!lit[i] || ascii_lower(s[i]) != ascii_lower(lit[i]))
                        return false;
        }
        return lit[n] == 0;
}

int deb_parse_yesno(const char *s, size_t n) {
        if (deb_ascii_ieq(s, n, "yes"))
                return 1;
        if (deb_ascii_ieq(s, n, "no"))
                return 0;
        return -1;
}

bool deb_parse_u64(const char *s, size_t n, uint64_t *ret) {
        uint64_t v = 0;
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                unsigned d = (unsigned)(s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        *ret = v;
        return true;
}

bool deb_parse_sha256(const char *s, size_t n, char out[65]) {
        if (n != 64)
                return false;
        for (size_t i = 0; i < 64; i++) {
                char c = s[i];
                if (c >= '0' && c <= '9')
                        out[i] = c;
                else if (c >= 'a' && c <= 'f')
                        out[i] = c;
                else if (c >= 'A' && c <= 'F')
                        out[i] = (char)(c - 'A' + 'a');
                else
                        return false;
        }
        out[64] = 0;
        return true;
}

/* The classes of arena.h, byte by byte (generated once from their definitions there). */
const uint8_t deb_cc[256] = {
        0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0x00 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0x10 */
        0x20, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x20, 0x20, 0x00, 0x17, 0x30, 0x1b, 0x17, 0x00,  /* 0x20 */
        0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x32, 0x00, 0x20, 0x10, 0x20, 0x00,  /* 0x30 */
        0x10, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16,  /* 0x40 */
        0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x20, 0x00, 0x20, 0x00, 0x10,  /* 0x50 */
        0x00, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f,  /* 0x60 */
        0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x00, 0x20, 0x00, 0x16, 0x00,  /* 0x70 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0x80 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0x90 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0xa0 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0xb0 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0xc0 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0xd0 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0xe0 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0xf0 */
};

const char *deb_path_invalid(const char *s, size_t n) {
        if (n == 0)
                return "empty path";
        if (n > 4096)
                return "path longer than 4096 bytes";
        if (s[0] == '/')
                return "absolute path";
        size_t start = 0;
        for (size_t i = 0; i <= n; i++) {
                if (i < n && s[i] != '/') {
                        if (!deb_cc_is(s[i], DEB_CC_PATH))
                                return (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? "control character in path"
                                                                                 : "character not allowed in a path";
                        continue;
                }
                size_t len = i - start;
                if (len == 0)
                        return i == n ? "path ends in '/'" : "empty path component ('//')";
                if (s[start] == '.' && (len == 1 || (len == 2 && s[start + 1] == '.')))
                        return "'.' or '..' in path";
                start = i + 1;
        }
        return NULL;
}

bool deb_arch_valid(const char *s, size_t n) {
        if (n == 0 || n > 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!deb_cc_is(s[i], DEB_CC_ARCH))
                        return false;
        return true;
}

bool deb_name_valid(const char *s, size_t n) {
        if (n < 2 || n > DEB_NAME_MAX)
                return false;
        /* the first character is a letter or digit */
        if (!deb_cc_is(s[0], DEB_CC_NAME) || s[0] == '+' || s[0] == '-' || s[0] == '.')
                return false;
        for (size_t i = 1; i < n; i++)
                if (!deb_cc_is(s[i], DEB_CC_NAME))
                        return false;
        return true;
}

const char *deb_version_invalid(const char *s, size_t n) {
        if (n == 0)
                return "empty version";
        if (n > DEB_VERSION_MAX)
                return "version too long";
        const char *colon = memchr(s, ':', n);
        size_t up = 0;
        if (colon) {
                size_t e = (size_t)(colon - s);
                if (e == 0)
                        return "empty epoch";
                if (e > 9)
                        return "epoch too large";
                for (size_t i = 0; i < e; i++)
                        if (s[i] < '0' || s[i] > '9')
                                return "epoch is not a number";
                up = e + 1;
        }
        size_t end = n, hyphen = n;
        for (size_t i = n; i > up; i--)
                if (s[i - 1] == '-') {
                        hyphen = i - 1;
                        break;
                }
        if (hyphen < n) {
                if (hyphen + 1 == n)
                        return "empty revision";
                for (size_t i = hyphen + 1; i < n; i++)
                        if (!deb_cc_is(s[i], DEB_CC_REV))
                                return "invalid character in revision";
                end = hyphen;
        }
        if (end == up)
                return "empty upstream version";
        for (size_t i = up; i < end; i++)
                if (!deb_cc_is(s[i], DEB_CC_VER))
                        return "invalid character in version";
        return NULL;
}
