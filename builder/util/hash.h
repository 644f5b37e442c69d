/* SPDX-License-Identifier: MIT */
/* SHA-256 and MD5 (pacman's %BACKUP%) over OpenSSL's libcrypto, which libcurl already pulls in. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define HASH_SHA256_HEX 65      /* 64 hex digits + NUL */
#define HASH_MD5_HEX 33

struct hash_ctx;

enum hash_algo { HASH_SHA256, HASH_MD5, _HASH_ALGO_MAX };

/* Streaming interface. hash_new returns NULL on ENOMEM. */
struct hash_ctx *hash_new(enum hash_algo algo);
int hash_update(struct hash_ctx *h, const void *data, size_t len);
/* Writes lowercase hex into out (HASH_*_HEX bytes) and frees h. */
int hash_final_hex(struct hash_ctx *h, char *out);
struct hash_ctx *hash_free(struct hash_ctx *h);
static inline void hash_freep(struct hash_ctx **h) { (void)hash_free(*h); }

/* One-shot helpers. */
int hash_buf_hex(enum hash_algo algo, const void *data, size_t len, char *out);
int hash_fd_hex(enum hash_algo algo, int fd, char *out, uint64_t *ret_size);
/* The same, reading at most max bytes (a file that grows while it is read ends there). */
int hash_fd_hex_max(enum hash_algo algo, int fd, uint64_t max, char *out, uint64_t *ret_size);

/* True if s is exactly 64 lowercase hex digits. */
int hash_is_sha256_hex(const char *s);
