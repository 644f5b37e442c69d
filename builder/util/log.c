/* SPDX-License-Identifier: MIT */
/* Event emission; rendering lives in the CLI. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include "../ctx.h"

void mkm_emit(const struct mkm_ctx *ctx, const struct mkm_event *ev) {
        if (ctx && ctx->events.fn)
                ctx->events.fn(ctx->events.userdata, ev);
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
