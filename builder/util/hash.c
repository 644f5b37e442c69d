/* SPDX-License-Identifier: MIT */
/* Digests via libcrypto's EVP interface. */
#include "hash.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct hash_ctx {
        EVP_MD_CTX *md;
};

struct hash_ctx *hash_new(enum hash_algo algo) {
        struct hash_ctx *h = calloc(1, sizeof *h);
        if (!h)
                return NULL;
        h->md = EVP_MD_CTX_new();
        if (!h->md || EVP_DigestInit_ex(h->md, algo == HASH_MD5 ? EVP_md5() : EVP_sha256(), NULL) != 1)
                return hash_free(h);
        return h;
}

int hash_update(struct hash_ctx *h, const void *data, size_t len) {
        return EVP_DigestUpdate(h->md, data, len) == 1 ? 0 : -EIO;
}

int hash_final_hex(struct hash_ctx *h, char *out) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        int r = EVP_DigestFinal_ex(h->md, md, &n) == 1 ? 0 : -EIO;
        hash_free(h);
        if (r < 0)
                return r;
        static const char hx[] = "0123456789abcdef";
        for (unsigned i = 0; i < n; i++) {
                out[2 * i] = hx[md[i] >> 4];
                out[2 * i + 1] = hx[md[i] & 15];
        }
        out[2 * n] = 0;
        return 0;
}

struct hash_ctx *hash_free(struct hash_ctx *h) {
        if (h) {
                EVP_MD_CTX_free(h->md);
                free(h);
        }
        return NULL;
}

int hash_buf_hex(enum hash_algo algo, const void *data, size_t len, char *out) {
        struct hash_ctx *h = hash_new(algo);
        if (!h)
                return -ENOMEM;
        int r = hash_update(h, data, len);
        if (r < 0) {
                hash_free(h);
                return r;
        }
        return hash_final_hex(h, out);
}

int hash_fd_hex(enum hash_algo algo, int fd, char *out, uint64_t *ret_size) {
        return hash_fd_hex_max(algo, fd, UINT64_MAX, out, ret_size);
}

int hash_fd_hex_max(enum hash_algo algo, int fd, uint64_t max, char *out, uint64_t *ret_size) {
        struct hash_ctx *h = hash_new(algo);
        char buf[65536];
        uint64_t total = 0;
        if (!h)
                return -ENOMEM;
        while (total < max) {
                ssize_t n = read(fd, buf, max - total < sizeof buf ? (size_t)(max - total) : sizeof buf);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        hash_free(h);
                        return r;
                }
                if (n == 0)
                        break;
                (void)hash_update(h, buf, (size_t)n);
                total += (uint64_t)n;
        }
        if (ret_size)
                *ret_size = total;
        return hash_final_hex(h, out);
}

int hash_is_sha256_hex(const char *s) {
        size_t i;
        for (i = 0; s[i]; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return i == 64;
}
