/* SPDX-License-Identifier: MIT */
/* Downloads over libcurl's multi interface: up to `jobs` transfers at once, per-URL retries with
 * exponential backoff, mirror failover, resume from dest.part, and size caps enforced while the
 * bytes arrive (a hostile or broken mirror must not fill the disk: the Content-Length is checked
 * before the body, and the write callback aborts as soon as the body passes the expected size).
 *
 * Resume uses CURLOPT_RANGE rather than CURLOPT_RESUME_FROM_LARGE: libcurl then leaves a 200
 * answer to us, and we restart from zero within the same response instead of failing and asking
 * again; and we check the Content-Range start ourselves, so a server answering a different range
 * cannot splice wrong bytes into the file. CURLcode never leaves this file. */
#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/log.h"

#ifndef MKM_VERSION
#define MKM_VERSION "unknown"
#endif

#define PROGRESS_INTERVAL_MS 100u      /* at most 10 progress events a second */
#define BACKOFF_MAX_MS 60000u

enum xfer_state {
        XFER_READY,     /* may start now */
        XFER_WAITING,   /* backing off until not_before */
        XFER_RUNNING,
        XFER_DONE,      /* item->result is final */
};

/* How one attempt ended. */
enum outcome {
        OUT_OK,
        OUT_TRANSIENT,  /* retry this URL (after backoff), then fail over */
        OUT_PERMANENT,  /* fail over to the next URL at once */
        OUT_RESTART,    /* the range did not work out: start over from byte zero, not counted as an attempt */
        OUT_LOCAL,      /* our side failed (disk, memory): the item fails, no failover */
};

struct fetch_state;

struct xfer {
        struct fetch_state *st;
        struct fetch_item *item;
        const char *label;
        char *part;                     /* dest + ".part" */
        enum xfer_state state;
        size_t url;                     /* index into item->urls */
        unsigned attempts;              /* attempts made on item->urls[url] */
        bool no_resume;                 /* the next attempt starts from zero */
        uint64_t not_before_ms;
        uint64_t limit;                 /* the most bytes the body may have */

        /* One attempt. */
        CURL *easy;
        int fd;
        bool is_http;
        bool range_sent;
        uint64_t offset;                /* bytes kept in the .part file when the body started */
        uint64_t written;               /* bytes written by this attempt */
        uint64_t announced;             /* total size the server announced, 0 = unknown */
        long status;                    /* status of the response being received */
        size_t n_missing;               /* URLs that answered "not there" (404, 410, no such file) */
        int64_t content_length;         /* of that response, -1 = none */
        int64_t range_start, range_total;
        bool has_content_range;
        enum outcome abort_outcome;     /* set when a callback aborted the transfer */
        int abort_code;                 /* 0 = no callback abort */
        char abort_msg[256];
        char errbuf[CURL_ERROR_SIZE];
};

struct fetch_state {
        struct mkm_ctx *ctx;
        const struct fetch_options *opts;
        struct xfer *xs;
        size_t n;
        unsigned finished;
        unsigned running;               /* transfers in the multi handle */
        uint64_t last_progress_ms;
        /* Mirrors (scheme://host:port) already said to be failing in this call: one warning per
         * mirror while it retries, not one per file. */
        char warned[8][128];
        unsigned n_warned;
};

void fetch_options_default(struct fetch_options *ret) {
        *ret = (struct fetch_options){
                .jobs = 0,
                .retries = FETCH_DEFAULT_RETRIES,
                .connect_timeout_ms = FETCH_DEFAULT_CONNECT_TIMEOUT_MS,
                .low_speed_time_s = FETCH_DEFAULT_LOW_SPEED_TIME_S,
                .low_speed_limit = FETCH_DEFAULT_LOW_SPEED_LIMIT,
                .backoff_ms = FETCH_DEFAULT_BACKOFF_MS,
                .max_size = FETCH_DEFAULT_MAX_SIZE,
        };
}

static uint64_t now_ms(void) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *url_of(const struct xfer *x) {
        return x->item->urls[x->url];
}

/* The mirror a URL belongs to, as people name it: scheme://host[:port] (file:// URLs: "file://"). */
static void mirror_of(const char *url, char *buf, size_t len) {
        const char *p = strstr(url, "://");
        size_t n = p ? (size_t)(p + 3 - url) + strcspn(p + 3, "/?#") : strlen(url);
        (void)snprintf(buf, len, "%.*s", (int)n, url);
}

/* Tell the user now, while the transfer waits, that a mirror is failing: once per mirror and
 * call (the debug line still has every attempt). Returns true if it was said before. */
static bool warned_before(struct fetch_state *st, const char *mirror) {
        for (unsigned i = 0; i < st->n_warned; i++)
                if (strcmp(st->warned[i], mirror) == 0)
                        return true;
        if (st->n_warned < ELEMENTSOF(st->warned))
                (void)snprintf(st->warned[st->n_warned++], sizeof st->warned[0], "%s", mirror);
        return false;
}

static bool has_prefix_ci(const char *s, const char *prefix) {
        return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- progress ------------------------------------------------------------------------------ */

static uint64_t xfer_bytes(const struct xfer *x) {
        if (x->state == XFER_RUNNING)
                return x->offset + x->written;
        if (x->state == XFER_DONE && x->item->result == 0)
                return x->offset + x->written;
        return 0;
}

static void emit_progress(struct fetch_state *st, bool force) {
        uint64_t now = now_ms();
        uint64_t done = 0, total = 0;

        if (!force && now - st->last_progress_ms < PROGRESS_INTERVAL_MS)
                return;
        st->last_progress_ms = now;
        for (size_t i = 0; i < st->n; i++) {
                const struct xfer *x = &st->xs[i];
                done += xfer_bytes(x);
                if (x->item->expected_size > 0)
                        total += x->item->expected_size;
                else if (x->announced > 0)
                        total += x->announced;
                else
                        total += xfer_bytes(x);
        }
        mkm_emit(st->ctx, &(struct mkm_event){
                .type = MKM_EV_PROGRESS,
                .text = "downloading",
                .done = done,
                .total = total,
                .n = st->finished,
                .count = (unsigned)st->n,
        });
}

/* ---- curl callbacks ------------------------------------------------------------------------ */

static size_t abort_with(struct xfer *x, enum outcome o, int code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static size_t abort_with(struct xfer *x, enum outcome o, int code, const char *fmt, ...) {
        va_list ap;

        x->abort_outcome = o;
        x->abort_code = code;
        va_start(ap, fmt);
        (void)vsnprintf(x->abort_msg, sizeof x->abort_msg, fmt, ap);
        va_end(ap);
        return 0;       /* anything but the size given makes libcurl stop with CURLE_WRITE_ERROR */
}

static const char *limit_word(const struct xfer *x) {
        return x->item->expected_size > 0 ? "the expected" : "the limit of";
}

/* The headers of a 2xx response are complete: decide where the body goes before it arrives. */
static size_t response_begin(struct fetch_state *st, struct xfer *x) {
        if (x->status == 200) {
                if (x->offset > 0) {
                        mkm_debug(st->ctx, "'%s' ignored the Range request; restarting from zero", url_of(x));
                        if (ftruncate(x->fd, 0) < 0 || lseek(x->fd, 0, SEEK_SET) < 0)
                                return abort_with(x, OUT_LOCAL, negative_errno(), "cannot truncate '%s': %s",
                                                  x->part, strerror(errno));
                        x->offset = 0;
                }
                if (x->content_length >= 0)
                        x->announced = (uint64_t)x->content_length;
        } else if (x->status == 206) {
                if (!x->range_sent)
                        return abort_with(x, OUT_PERMANENT, -MKM_E_HTTP,
                                          "partial content (206) to a request without a Range header");
                /* Bytes from elsewhere in the file must not be appended at our offset. */
                if (!x->has_content_range || x->range_start < 0 || (uint64_t)x->range_start != x->offset)
                        return abort_with(x, OUT_RESTART, -MKM_E_FETCH,
                                          "answered a request for bytes %" PRIu64 "- with another range",
                                          x->offset);
                if (x->range_total >= 0)
                        x->announced = (uint64_t)x->range_total;
                else if (x->content_length >= 0)
                        x->announced = x->offset + (uint64_t)x->content_length;
        } else
                return abort_with(x, OUT_PERMANENT, -MKM_E_HTTP, "unexpected HTTP status %ld", x->status);

        if (x->announced > x->limit)
                return abort_with(x, OUT_PERMANENT, -MKM_E_TOO_BIG,
                                  "announces %" PRIu64 " bytes, more than %s %" PRIu64, x->announced,
                                  limit_word(x), x->limit);
        if (x->item->expected_size > 0 && x->announced > 0 && x->announced < x->item->expected_size)
                return abort_with(x, OUT_PERMANENT, -MKM_E_DIGEST_MISMATCH,
                                  "announces %" PRIu64 " bytes, fewer than the expected %" PRIu64, x->announced,
                                  x->item->expected_size);
        return 1;
}

static int parse_u64(const char *s, const char **end, int64_t *ret) {
        uint64_t v = 0;
        const char *p = s;

        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (v > (uint64_t)INT64_MAX / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t)(*p - '0');
                if (v > (uint64_t)INT64_MAX)
                        return -ERANGE;
        }
        *end = p;
        *ret = (int64_t)v;
        return 0;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *userdata) {
        struct xfer *x = userdata;
        size_t len = size * nitems;
        char line[512];
        const char *end;

        /* Headers we care about are short; a longer line is copied in part, which is harmless. */
        size_t l = len < sizeof line - 1 ? len : sizeof line - 1;
        memcpy(line, buf, l);
        line[l] = '\0';
        while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == '\n'))
                line[--l] = '\0';

        if (strncmp(line, "HTTP/", 5) == 0) {
                /* A new response (after a redirect or a 100 Continue): forget the previous one. */
                const char *sp = strchr(line, ' ');
                x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
                x->content_length = -1;
                x->range_start = x->range_total = -1;
                x->has_content_range = false;
                return len;
        }
        if (l == 0) {
                if (x->status >= 200 && x->status < 300)
                        return response_begin(x->st, x) ? len : 0;
                return len;
        }
        if (has_prefix_ci(line, "content-length:")) {
                const char *p = line + strlen("content-length:");
                p += strspn(p, " \t");
                if (parse_u64(p, &end, &x->content_length) < 0)
                        x->content_length = -1;
        } else if (has_prefix_ci(line, "content-range:")) {
                /* "bytes START-END/TOTAL" or "bytes START-END/ *" */
                const char *p = line + strlen("content-range:");
                p += strspn(p, " \t");
                if (has_prefix_ci(p, "bytes ")) {
                        int64_t start, last;
                        p += strlen("bytes ");
                        if (parse_u64(p, &end, &start) == 0 && *end == '-' &&
                            parse_u64(end + 1, &end, &last) == 0 && *end == '/' && last >= start) {
                                x->has_content_range = true;
                                x->range_start = start;
                                if (parse_u64(end + 1, &end, &x->range_total) < 0)
                                        x->range_total = -1;
                        }
                }
        }
        return len;
}

static size_t write_cb(char *buf, size_t size, size_t nmemb, void *userdata) {
        struct xfer *x = userdata;
        size_t len = size * nmemb;

        if (len == 0)
                return 0;
        if (x->is_http && x->status != 200 && x->status != 206)
                return abort_with(x, OUT_PERMANENT, -MKM_E_HTTP, "unexpected HTTP status %ld", x->status);
        if (len > x->limit || x->offset + x->written > x->limit - len)
                return abort_with(x, OUT_PERMANENT, -MKM_E_TOO_BIG, "sent more than %s %" PRIu64 " bytes",
                                  limit_word(x), x->limit);
        for (size_t off = 0; off < len;) {
                ssize_t k = write(x->fd, buf + off, len - off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return abort_with(x, OUT_LOCAL, negative_errno(), "cannot write '%s': %s", x->part,
                                          strerror(errno));
                }
                off += (size_t)k;
        }
        x->written += len;
        return len;
}

/* ---- one attempt --------------------------------------------------------------------------- */

static void xfer_close(struct xfer *x) {
        if (x->easy) {
                curl_easy_cleanup(x->easy);
                x->easy = NULL;
        }
        if (x->fd >= 0) {
                (void)close(x->fd);
                x->fd = -EBADF;
        }
}

/* Start the next attempt of x. A negative return is a local failure, with x->abort_msg set. */
static int xfer_start(struct fetch_state *st, CURLM *multi, struct xfer *x) {
        const struct fetch_options *o = st->opts;
        const char *url = url_of(x);
        struct stat s;
        CURLcode c = CURLE_OK;
        char range[32];

        x->is_http = has_prefix_ci(url, "http://") || has_prefix_ci(url, "https://");
        x->written = x->offset = x->announced = 0;
        x->status = 0;
        x->content_length = x->range_start = x->range_total = -1;
        x->has_content_range = x->range_sent = false;
        x->abort_code = 0;
        x->abort_msg[0] = x->errbuf[0] = '\0';

        x->fd = open(x->part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
        if (x->fd >= 0 && fstat(x->fd, &s) == 0 && (!S_ISREG(s.st_mode) || s.st_uid != geteuid() || s.st_nlink != 1)) {
                /* Not a partial body we wrote (planted, or linked elsewhere): start afresh. */
                (void)close(x->fd);
                x->fd = -EBADF;
                if (unlink(x->part) == 0 || errno == ENOENT)
                        x->fd = open(x->part, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        }
        if (x->fd < 0 || fstat(x->fd, &s) < 0) {
                int r = negative_errno();
                (void)snprintf(x->abort_msg, sizeof x->abort_msg, "cannot open '%s': %s", x->part, mkm_strerror(r));
                return r;
        }
        /* Resume what an earlier attempt or run left, over HTTP only: a file:// copy is cheap.
         * A part that is already as large as allowed cannot be resumed (the server would say 416). */
        if (x->is_http && !x->no_resume && s.st_size > 0 && (uint64_t)s.st_size < x->limit &&
            (x->item->expected_size == 0 || (uint64_t)s.st_size < x->item->expected_size))
                x->offset = (uint64_t)s.st_size;
        x->no_resume = false;
        if ((x->offset == 0 && s.st_size > 0 && ftruncate(x->fd, 0) < 0) ||
            lseek(x->fd, (off_t)x->offset, SEEK_SET) < 0) {
                int r = negative_errno();
                (void)snprintf(x->abort_msg, sizeof x->abort_msg, "cannot truncate '%s': %s", x->part,
                               mkm_strerror(r));
                return r;
        }

        x->easy = curl_easy_init();
        if (!x->easy) {
                (void)snprintf(x->abort_msg, sizeof x->abort_msg, "cannot create a transfer: out of memory");
                return -ENOMEM;
        }
#define SET(opt, val)                                                   \
        do {                                                            \
                if (c == CURLE_OK)                                      \
                        c = curl_easy_setopt(x->easy, (opt), (val));    \
        } while (0)
        SET(CURLOPT_ERRORBUFFER, x->errbuf);
        SET(CURLOPT_URL, url);
        SET(CURLOPT_PRIVATE, (void *)x);
        SET(CURLOPT_WRITEFUNCTION, write_cb);
        SET(CURLOPT_WRITEDATA, (void *)x);
        SET(CURLOPT_HEADERFUNCTION, header_cb);
        SET(CURLOPT_HEADERDATA, (void *)x);
        /* Only these schemes, and never file:// (or anything else) through a server's redirect. */
        SET(CURLOPT_PROTOCOLS_STR, "http,https,file");
        SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_FOLLOWLOCATION, 1L);
        SET(CURLOPT_MAXREDIRS, (long)FETCH_MAX_REDIRECTS);
        SET(CURLOPT_FAILONERROR, 1L);
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_TCP_KEEPALIVE, 1L);
        SET(CURLOPT_USERAGENT, "mkmachine/" MKM_VERSION);
        if (o->connect_timeout_ms > 0)
                SET(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
        if (o->low_speed_limit > 0 && o->low_speed_time_s > 0) {
                SET(CURLOPT_LOW_SPEED_LIMIT, o->low_speed_limit);
                SET(CURLOPT_LOW_SPEED_TIME, o->low_speed_time_s);
        }
        if (x->offset > 0) {
                (void)snprintf(range, sizeof range, "%" PRIu64 "-", x->offset);
                SET(CURLOPT_RANGE, range);
                x->range_sent = true;
        }
#undef SET
        if (c != CURLE_OK) {
                /* An option this libcurl lacks (e.g. the protocol allowlist): refuse rather than run without it. */
                (void)snprintf(x->abort_msg, sizeof x->abort_msg, "cannot set up the transfer of '%s': %s", url,
                               curl_easy_strerror(c));
                return c == CURLE_OUT_OF_MEMORY ? -ENOMEM : -ENOTSUP;
        }
        if (x->range_sent)
                mkm_debug(st->ctx, "resuming '%s' at byte %" PRIu64, url, x->offset);
        CURLMcode mc = curl_multi_add_handle(multi, x->easy);
        if (mc != CURLM_OK) {
                (void)snprintf(x->abort_msg, sizeof x->abort_msg, "cannot start the transfer of '%s': %s", url,
                               curl_multi_strerror(mc));
                return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
        }
        x->attempts++;
        x->state = XFER_RUNNING;
        return 0;
}

static bool curl_transient(CURLcode c) {
        switch (c) {
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_PARTIAL_FILE:
        case CURLE_GOT_NOTHING:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_HTTP3:
        case CURLE_QUIC_CONNECT_ERROR:
                return true;
        default:
                return false;
        }
}

/* The code a permanent libcurl failure stands for. */
static int curl_code_to_error(CURLcode c) {
        switch (c) {
        case CURLE_UNSUPPORTED_PROTOCOL:
                return -EPROTONOSUPPORT;
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        case CURLE_FILE_COULDNT_READ_FILE:
                return -ENOENT;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_TOO_MANY_REDIRECTS:
        case CURLE_HTTP_RETURNED_ERROR:
                return -MKM_E_HTTP;
        default:
                return -MKM_E_FETCH;
        }
}

/* Classify a finished attempt; *ret_code and reason describe a failure. */
static enum outcome classify(struct xfer *x, CURLcode c, int *ret_code, char *reason, size_t reason_size) {
        long status = 0;

        if (x->abort_code != 0) {
                /* One of our callbacks stopped the transfer; its reason beats libcurl's "write error". */
                *ret_code = x->abort_code;
                (void)snprintf(reason, reason_size, "%s", x->abort_msg);
                return x->abort_outcome;
        }
        (void)curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        if (c != CURLE_OK) {
                (void)snprintf(reason, reason_size, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(c));
                if (c == CURLE_HTTP_RETURNED_ERROR) {
                        if (status == 416 && x->range_sent)
                                return *ret_code = -MKM_E_FETCH, OUT_RESTART;
                        if (status == 408 || status == 429 || status >= 500)
                                return *ret_code = -MKM_E_FETCH, OUT_TRANSIENT;
                        return *ret_code = -MKM_E_HTTP, OUT_PERMANENT;
                }
                if (curl_transient(c))
                        return *ret_code = -MKM_E_FETCH, OUT_TRANSIENT;
                *ret_code = curl_code_to_error(c);
                return OUT_PERMANENT;
        }
        if (x->is_http && status != 200 && status != 206) {
                (void)snprintf(reason, reason_size, "unexpected HTTP status %ld", status);
                return *ret_code = -MKM_E_HTTP, OUT_PERMANENT;
        }
        uint64_t got = x->offset + x->written;
        uint64_t want = x->item->expected_size > 0 ? x->item->expected_size : x->announced;
        if (want > 0 && got < want) {
                (void)snprintf(reason, reason_size, "body ended after %" PRIu64 " of %" PRIu64 " bytes", got, want);
                if (x->is_http)
                        return *ret_code = -MKM_E_FETCH, OUT_TRANSIENT;
                return *ret_code = -MKM_E_DIGEST_MISMATCH, OUT_PERMANENT;
        }
        return OUT_OK;
}

static int fsync_parent_dir(const char *path) {
        _cleanup_free_ char *dir = fs_path_dirname(path);
        _cleanup_close_ int fd = -EBADF;

        if (!dir)
                return -ENOMEM;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return negative_errno();
        return 0;
}

/* The body is complete: make it durable, then give it its name. */
static int xfer_commit(struct xfer *x, bool sync) {
        int r;

        if (sync && fsync(x->fd) < 0) {
                r = negative_errno();
                (void)snprintf(x->abort_msg, sizeof x->abort_msg, "cannot sync '%s': %s", x->part, mkm_strerror(r));
                return r;
        }
        (void)close(x->fd);
        x->fd = -EBADF;
        if (rename(x->part, x->item->dest) < 0) {
                r = negative_errno();
                (void)snprintf(x->abort_msg, sizeof x->abort_msg, "cannot rename '%s' to '%s': %s", x->part,
                               x->item->dest, mkm_strerror(r));
                return r;
        }
        r = sync ? fsync_parent_dir(x->item->dest) : 0;
        if (r < 0) {
                (void)snprintf(x->abort_msg, sizeof x->abort_msg, "cannot sync the directory of '%s': %s",
                               x->item->dest, mkm_strerror(r));
                return r;
        }
        return 0;
}

/* Append "'URL': reason" to the item's error, "; "-separated. */
static void add_reason(struct xfer *x, const char *url, const char *reason) {
        char *e = x->item->error;
        size_t used = strlen(e), size = sizeof x->item->error;
        char attempts[48] = "";

        if (used + 1 >= size)
                return;
        if (x->attempts > 1)
                (void)snprintf(attempts, sizeof attempts, " (gave up after %u attempts)", x->attempts);
        if (url)
                (void)snprintf(e + used, size - used, "%s'%s': %s%s", used ? "; " : "", url, reason, attempts);
        else
                (void)snprintf(e + used, size - used, "%s%s", used ? "; " : "", reason);
}

static void item_fail(struct fetch_state *st, struct xfer *x, int code) {
        struct stat s;

        x->item->result = code;
        x->item->used_url = NULL;
        x->state = XFER_DONE;
        st->finished++;
        /* An empty part helps no later run; a non-empty one is resumed by the next attempt. */
        if (x->part && stat(x->part, &s) == 0 && s.st_size == 0)
                (void)unlink(x->part);
        if (st->opts->on_item_done)
                st->opts->on_item_done(x->item, st->opts->userdata);
}

static void item_succeed(struct fetch_state *st, struct xfer *x) {
        x->item->result = 0;
        x->item->resumed = x->offset > 0;
        x->item->error[0] = '\0';
        x->item->used_url = url_of(x);
        x->state = XFER_DONE;
        st->finished++;
        mkm_emit(st->ctx, &(struct mkm_event){
                .type = MKM_EV_FILE_DONE,
                .text = x->label,
                .done = x->offset + x->written,
                .total = x->offset + x->written,
                .n = st->finished,
                .count = (unsigned)st->n,
        });
        if (st->opts->on_item_done)
                st->opts->on_item_done(x->item, st->opts->userdata);
}

/* Move on after a failure of the current URL: next mirror, or give up. */
static void next_url(struct fetch_state *st, struct xfer *x, int code, const char *reason) {
        const char *failed = url_of(x);

        add_reason(x, failed, reason);
        if (x->status == 404 || x->status == 410 || code == -ENOENT)
                x->n_missing++;
        x->url++;
        x->attempts = 0;
        if (!x->item->urls[x->url]) {
                x->item->not_found = x->n_missing == x->url;
                item_fail(st, x, code);
                return;
        }
        mkm_debug(st->ctx, "falling back to mirror '%s' after '%s' failed: %s", url_of(x), failed, reason);
        char from[128], to[128];
        mirror_of(failed, from, sizeof from);
        mirror_of(url_of(x), to, sizeof to);
        if (strcmp(from, to) != 0 && !warned_before(st, from))
                mkm_warn(st->ctx, "mirror '%s' failed (%s); trying the next mirror, '%s'", from, reason, to);
        x->state = XFER_READY;
}

static void xfer_done(struct fetch_state *st, struct xfer *x, CURLcode c) {
        char reason[CURL_ERROR_SIZE + 64];
        int code = 0;
        enum outcome o = classify(x, c, &code, reason, sizeof reason);

        if (o == OUT_OK) {
                int r = xfer_commit(x, !st->opts->no_fsync);
                xfer_close(x);
                if (r < 0) {
                        add_reason(x, NULL, x->abort_msg);
                        item_fail(st, x, r);
                } else
                        item_succeed(st, x);
                return;
        }
        if (o == OUT_PERMANENT && (code == -MKM_E_TOO_BIG || code == -MKM_E_DIGEST_MISMATCH)) {
                /* Whatever this server sent is not the file: do not resume from it. */
                if (ftruncate(x->fd, 0) < 0) {
                        o = OUT_LOCAL;
                        code = negative_errno();
                        (void)snprintf(reason, sizeof reason, "cannot truncate '%s': %s", x->part, mkm_strerror(code));
                }
        }
        xfer_close(x);

        switch (o) {
        case OUT_LOCAL:
                add_reason(x, NULL, reason);
                item_fail(st, x, code);
                return;
        case OUT_RESTART:
                x->no_resume = true;
                x->attempts--;          /* not the server's fault so far: it does not count */
                x->state = XFER_READY;
                mkm_debug(st->ctx, "restarting '%s' from zero: %s", url_of(x), reason);
                return;
        case OUT_TRANSIENT:
                if (x->attempts <= st->opts->retries) {
                        unsigned shift = x->attempts - 1 < 16 ? x->attempts - 1 : 16;
                        uint64_t delay = (uint64_t)st->opts->backoff_ms << shift;
                        if (delay > BACKOFF_MAX_MS)
                                delay = BACKOFF_MAX_MS;
                        mkm_debug(st->ctx, "retrying '%s' in %" PRIu64 "ms: %s", url_of(x), delay, reason);
                        char mirror[128];
                        mirror_of(url_of(x), mirror, sizeof mirror);
                        if (!warned_before(st, mirror)) {
                                char when[32];
                                if (delay < 1000)
                                        (void)snprintf(when, sizeof when, "%" PRIu64 " ms", delay);
                                else
                                        (void)snprintf(when, sizeof when, "%.1f s", (double)delay / 1000.0);
                                mkm_warn(st->ctx, "mirror '%s' failed (%s); retrying in %s", mirror, reason, when);
                        }
                        x->not_before_ms = now_ms() + delay;
                        x->state = XFER_WAITING;
                        return;
                }
                next_url(st, x, code, reason);
                return;
        case OUT_PERMANENT:
                next_url(st, x, code, reason);
                return;
        case OUT_OK:
                break;
        }
}

/* ---- the loop ------------------------------------------------------------------------------ */

static void multi_cleanupp(CURLM **m) {
        if (*m)
                (void)curl_multi_cleanup(*m);
}

/* opts, or the defaults, with jobs and max_size resolved. */
static void resolve_options(const struct mkm_ctx *ctx, const struct fetch_options *opts, struct fetch_options *o) {
        if (opts)
                *o = *opts;
        else
                fetch_options_default(o);
        if (o->jobs == 0)
                o->jobs = ctx && ctx->jobs > 0 ? ctx->jobs : FETCH_DEFAULT_JOBS;
        if (o->max_size == 0)
                o->max_size = FETCH_DEFAULT_MAX_SIZE;
}

/* A failure before any transfer state existed: every item says what happened, as on every other exit. */
static void fail_all(struct fetch_item *items, size_t n, int r) {
        for (size_t i = 0; i < n; i++) {
                items[i].result = r;
                items[i].used_url = NULL;
                (void)snprintf(items[i].error, sizeof items[i].error, "not downloaded: %s", mkm_strerror(r));
        }
}

/* Set up each item's transfer and clear its out fields; an item without URL or destination fails at once. */
static int xfers_init(struct fetch_state *st, struct fetch_item *items, struct mkm_err *reterr) {
        for (size_t i = 0; i < st->n; i++) {
                struct xfer *x = &st->xs[i];
                struct fetch_item *it = &items[i];
                const char *base = it->dest ? strrchr(it->dest, '/') : NULL;

                x->st = st;
                x->item = it;
                x->fd = -EBADF;
                x->label = it->label ? it->label : base ? base + 1 : it->dest ? it->dest : "?";
                x->limit = it->expected_size > 0 ? it->expected_size : it->max_size > 0 ? it->max_size : st->opts->max_size;
                it->result = 0;
                it->error[0] = '\0';
                it->used_url = NULL;
                it->resumed = false;
                it->not_found = false;
                if (!it->dest || !it->urls || !it->urls[0]) {
                        (void)snprintf(it->error, sizeof it->error, "no %s given", it->dest ? "URL" : "destination");
                        item_fail(st, x, -EINVAL);
                        continue;
                }
                if (asprintf(&x->part, "%s.part", it->dest) < 0) {
                        x->part = NULL;
                        return mkm_err_set(reterr, -ENOMEM, "out of memory");
                }
        }
        return 0;
}

/* Add ready transfers (and those whose backoff is over) to multi while fewer than jobs run. */
static void start_ready(struct fetch_state *st, CURLM *multi, uint64_t now) {
        for (size_t i = 0; i < st->n && st->running < st->opts->jobs; i++) {
                struct xfer *x = &st->xs[i];
                if (x->state == XFER_WAITING && x->not_before_ms <= now)
                        x->state = XFER_READY;
                if (x->state != XFER_READY)
                        continue;
                int r = xfer_start(st, multi, x);
                if (r < 0) {
                        xfer_close(x);
                        add_reason(x, NULL, x->abort_msg);
                        item_fail(st, x, r);
                        continue;
                }
                st->running++;
        }
}

/* When the first backing-off transfer may start again; UINT64_MAX when none waits. */
static uint64_t next_wake(const struct fetch_state *st) {
        uint64_t wake = UINT64_MAX;
        for (size_t i = 0; i < st->n; i++)
                if (st->xs[i].state == XFER_WAITING && st->xs[i].not_before_ms < wake)
                        wake = st->xs[i].not_before_ms;
        return wake;
}

/* Nothing runs: sleep toward wake, at most a progress interval (to stay responsive to o.cancel). */
static void idle_until(struct fetch_state *st, uint64_t now, uint64_t wake) {
        uint64_t d = wake > now ? wake - now : 0;
        if (d > PROGRESS_INTERVAL_MS)
                d = PROGRESS_INTERVAL_MS;
        struct timespec ts = { .tv_sec = (time_t)(d / 1000), .tv_nsec = (long)(d % 1000) * 1000000L };
        (void)nanosleep(&ts, NULL);
        emit_progress(st, false);
}

/* Hand every attempt curl finished to xfer_done (completion, retry or failover); true if there was one. */
static bool reap_finished(struct fetch_state *st, CURLM *multi) {
        bool progressed = false;
        int left = 0;
        CURLMsg *msg;

        while ((msg = curl_multi_info_read(multi, &left))) {
                char *priv = NULL;
                if (msg->msg != CURLMSG_DONE)
                        continue;
                (void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
                struct xfer *x = (struct xfer *)(void *)priv;
                CURLcode c = msg->data.result;  /* msg is invalid after remove_handle */
                (void)curl_multi_remove_handle(multi, msg->easy_handle);
                if (!x)
                        continue;
                st->running--;
                xfer_done(st, x, c);
                progressed = true;
        }
        return progressed;
}

/* Wait for the network, the next progress event or the first retry due (wake), whichever comes first. */
static int wait_network(CURLM *multi, uint64_t wake, struct mkm_err *reterr) {
        uint64_t now = now_ms();
        int timeout = (int)PROGRESS_INTERVAL_MS;
        if (wake != UINT64_MAX) {
                uint64_t d = wake > now ? wake - now : 0;
                if (d < (uint64_t)timeout)
                        timeout = (int)d;
        }
        CURLMcode mc = curl_multi_poll(multi, NULL, 0, timeout, NULL);
        if (mc != CURLM_OK)
                return mkm_err_set(reterr, -EIO, "libcurl: %s", curl_multi_strerror(mc));
        return 0;
}

/* Run the transfers until every item has finished; a cancel or a libcurl failure stops them all. */
static int transfer_loop(struct fetch_state *st, CURLM *multi, struct mkm_err *reterr) {
        const struct fetch_options *o = st->opts;

        emit_progress(st, true);
        while (st->finished < st->n) {
                uint64_t now = now_ms();
                int still = 0;

                if (o->cancel && atomic_load(o->cancel))
                        return mkm_err_set(reterr, -ECANCELED, "cancelled");
                start_ready(st, multi, now);
                uint64_t wake = next_wake(st);
                if (st->running == 0) {
                        if (wake == UINT64_MAX)
                                continue;       /* everything finished (or failed to start) */
                        idle_until(st, now, wake);
                        continue;
                }

                CURLMcode mc = curl_multi_perform(multi, &still);
                if (mc != CURLM_OK)
                        return mkm_err_set(reterr, -EIO, "libcurl: %s", curl_multi_strerror(mc));
                bool progressed = reap_finished(st, multi);
                emit_progress(st, false);
                if (st->finished == st->n)
                        break;
                /* A slot came free: start the next transfer now instead of sleeping in poll
                 * (file:// transfers finish inside curl_multi_perform; polling after each batch
                 * cost 100 ms per batch). */
                if (progressed)
                        continue;
                int r = wait_network(multi, wake, reterr);
                if (r < 0)
                        return r;
        }
        emit_progress(st, true);
        return 0;
}

/* 0 when every item succeeded, else the first failed item's result (in array order) in reterr. */
static int first_failure(const struct fetch_state *st, struct mkm_err *reterr) {
        size_t failed = 0;
        const struct xfer *first = NULL;
        for (size_t i = 0; i < st->n; i++)
                if (st->xs[i].item->result < 0) {
                        failed++;
                        if (!first)
                                first = &st->xs[i];
                }
        if (!first)
                return 0;
        if (failed > 1)
                return mkm_err_set(reterr, first->item->result, "%s: %s (and %zu more failed downloads)",
                                   first->label, first->item->error, failed - 1);
        return mkm_err_set(reterr, first->item->result, "%s: %s", first->label, first->item->error);
}

/* Close every transfer; after a failure that stopped them (r < 0), mark each unfinished item with it. */
static void teardown(struct fetch_state *st, struct fetch_item *items, CURLM *multi, int r,
                     const struct mkm_err *reterr) {
        for (size_t i = 0; i < st->n; i++) {
                struct xfer *x = &st->xs[i];
                if (x->easy && multi)
                        (void)curl_multi_remove_handle(multi, x->easy);
                xfer_close(x);
                if (r < 0 && x->state != XFER_DONE) {
                        /* A setup or libcurl failure stopped everything: say so in every unfinished item. */
                        items[i].result = r;
                        (void)snprintf(items[i].error, sizeof items[i].error, "not downloaded: %s",
                                       reterr ? reterr->msg : mkm_strerror(r));
                }
                free(x->part);
        }
}

int fetch_all(struct mkm_ctx *ctx, struct fetch_item *items, size_t n, const struct fetch_options *opts,
              struct mkm_err *reterr) {
        struct fetch_options o;
        _cleanup_(multi_cleanupp) CURLM *multi = NULL;
        _cleanup_free_ struct xfer *xs = NULL;
        struct fetch_state st = { .ctx = ctx, .opts = &o, .n = n };
        int r = 0;

        resolve_options(ctx, opts, &o);
        if (n == 0)
                return 0;
        if (n > UINT32_MAX)
                r = mkm_err_set(reterr, -E2BIG, "too many downloads (%zu)", n);
        else if (!(xs = mkm_new0(struct xfer, n)))
                r = mkm_err_set(reterr, -ENOMEM, "out of memory");
        if (r < 0) {
                fail_all(items, n, r);
                return r;
        }
        st.xs = xs;

        r = xfers_init(&st, items, reterr);
        if (r >= 0 && !(multi = curl_multi_init()))
                r = mkm_err_set(reterr, -ENOMEM, "cannot initialise libcurl");
        if (r >= 0)
                r = transfer_loop(&st, multi, reterr);
        if (r >= 0)
                r = first_failure(&st, reterr);
        teardown(&st, items, multi, r, reterr);
        return r;
}
