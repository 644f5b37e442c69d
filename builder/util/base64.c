/* SPDX-License-Identifier: MIT */
/* Base64 decoding. */
#include "base64.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int val(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int base64_decode(const char *s, uint8_t **ret, size_t *ret_len) {
        size_t n = strlen(s);
        while (n > 0 && s[n - 1] == '=')
                n--;
        if (n % 4 == 1)
                return -EINVAL;
        uint8_t *out = malloc(n / 4 * 3 + 3);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        uint32_t acc = 0;
        int bits = 0;
        for (size_t i = 0; i < n; i++) {
                int v = val(s[i]);
                if (v < 0) {
                        free(out);
                        return -EINVAL;
                }
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (uint8_t)(acc >> bits);
                }
        }
        *ret = out;
        *ret_len = o;
        return 0;
}
