/* SPDX-License-Identifier: MIT */
/* The ownership shift of [Exec] PrivateUsers=BASE|pick: every uid and gid of a built tree moved up
 * by BASE at build time, so that systemd-nspawn can map the machine's IDs without
 * PrivateUsersOwnership= rewriting the tree at every boot. hooks_apply() runs it last, after Run=. */
#pragma once

#include <stdint.h>

struct mkm_ctx;
struct mkm_err;

/* Add base to every uid and gid under rootfd (the root included), keeping setuid/setgid bits and
 * file capabilities (v2 and v3 caps come out as v3 with rootid base, as setcap inside the
 * machine would store them). Hard links are shifted once. Symlinks are never followed and the
 * walk stays on rootfd's file system. base 0 does nothing. An id >= range is -ERANGE "cannot
 * shift the ownership of 'NAME': UID:GID is outside the RANGE IDs mapped into the machine"; a
 * tree deeper than 256 levels is -ELOOP. */
int shift_ownership(struct mkm_ctx *ctx, int rootfd, uint32_t base, uint32_t range, struct mkm_err *reterr);
