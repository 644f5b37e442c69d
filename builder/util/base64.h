/* SPDX-License-Identifier: MIT */
/* Standard base64 (RFC 4648) decoding, strict: padding optional, whitespace refused. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Decode s into a malloc'd buffer (*ret, *ret_len). -EINVAL on any invalid character. */
int base64_decode(const char *s, uint8_t **ret, size_t *ret_len);
