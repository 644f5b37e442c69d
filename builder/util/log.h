/* SPDX-License-Identifier: MIT */
/* Typed events from the stages to whoever renders them (the CLI).
 * Stages never print; they emit events through ctx->events (alpm's EVENT() -> cb_event). */
#pragma once

#include <stdint.h>

struct mkm_ctx;

enum mkm_level {
        MKM_LOG_ERROR,
        MKM_LOG_WARNING,        /* the text says "ignoring"/"skipping" when it goes on */
        MKM_LOG_INFO,
        MKM_LOG_DEBUG,
        _MKM_LOG_MAX,
};

enum mkm_event_type {
        MKM_EV_LOG,             /* level + text */
        MKM_EV_STAGE,           /* text = stage name ("fetch", "extract", ...), a stage begins */
        MKM_EV_PROGRESS,        /* text = label; done/total bytes, n/count items */
        MKM_EV_FILE_DONE,       /* text = file name; done = bytes; a download finished */
        _MKM_EV_MAX,
};

struct mkm_event {
        enum mkm_event_type type;
        enum mkm_level level;
        const char *text;       /* borrowed, valid for the callback's duration */
        uint64_t done, total;
        unsigned n, count;
};

struct mkm_events {
        void (*fn)(void *userdata, const struct mkm_event *ev);
        void *userdata;
};

/* Emit an event; a NULL ctx or a NULL callback drops it. Thread-safe: calls to the callback are
 * serialised by one lock, held during the call, so the callback must not emit itself. */
void mkm_emit(const struct mkm_ctx *ctx, const struct mkm_event *ev);
void mkm_log(const struct mkm_ctx *ctx, enum mkm_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define mkm_debug(ctx, ...) mkm_log((ctx), MKM_LOG_DEBUG, __VA_ARGS__)
#define mkm_warn(ctx, ...) mkm_log((ctx), MKM_LOG_WARNING, __VA_ARGS__)
#define mkm_info(ctx, ...) mkm_log((ctx), MKM_LOG_INFO, __VA_ARGS__)
