/* SPDX-License-Identifier: MIT */
/* Event emission; rendering lives in the CLI. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "../ctx.h"

/* Downloads, signature checks and the install run on their own threads: one event at a time
 * reaches the renderer, whose state (the open progress line) is not shared otherwise. */
static pthread_mutex_t emit_lock = PTHREAD_MUTEX_INITIALIZER;

void mkm_emit(const struct mkm_ctx *ctx, const struct mkm_event *ev) {
        if (!ctx || !ctx->events.fn)
                return;
        pthread_mutex_lock(&emit_lock);
        ctx->events.fn(ctx->events.userdata, ev);
        pthread_mutex_unlock(&emit_lock);
}

void mkm_log(const struct mkm_ctx *ctx, enum mkm_level level, const char *fmt, ...) {
        char buf[4096];
        va_list ap;

        if (!ctx || !ctx->events.fn)
                return;
        va_start(ap, fmt);
        (void)vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        mkm_emit(ctx, &(struct mkm_event){ .type = MKM_EV_LOG, .level = level, .text = buf });
}
