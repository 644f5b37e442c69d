/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/fetch: parallel downloads, retries, mirror failover, resume, size caps and
 * scheme limits, against tests/tools/httpd.py (a loopback server this test starts and stops) and
 * file:// URLs. Every fault the server can inject has a test here. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctx.h"
#include "fetch.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/hash.h"

/* ---- the server ---------------------------------------------------------------------------- */

static struct {
        pid_t pid;
        int port;
        char dir[64];           /* everything of this test run: root/, out/, the logs */
        char root[128];         /* served files */
        char out[128];          /* downloads land here */
        char log[128];          /* the server's request log */
} srv = { .pid = -1 };

static char *path_in(const char *dir, const char *name) {
        static char buf[8][512];
        static unsigned next;
        char *b = buf[next++ % ELEMENTSOF(buf)];
        (void)snprintf(b, sizeof buf[0], "%s/%s", dir, name);
        return b;
}

static char *url(const char *path) {
        static char buf[16][512];
        static unsigned next;
        char *b = buf[next++ % ELEMENTSOF(buf)];
        (void)snprintf(b, sizeof buf[0], "http://127.0.0.1:%d/%s", srv.port, path);
        return b;
}

/* Deterministic content: size bytes from a xorshift seeded by seed. */
static void make_content(uint8_t *p, size_t size, uint64_t seed) {
        uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
        for (size_t i = 0; i < size; i++) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                p[i] = (uint8_t)s;
        }
}

static void write_file(const char *path, const void *data, size_t len) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
}

/* Create root/name with size pseudo-random bytes. */
static void make_served(const char *name, size_t size, uint64_t seed) {
        _cleanup_free_ uint8_t *p = malloc(size ? size : 1);
        assert_non_null(p);
        make_content(p, size, seed);
        write_file(path_in(srv.root, name), p, size);
}

static void sha256_of(const char *path, char *hex, uint64_t *size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(hash_fd_hex(HASH_SHA256, fd, hex, size), 0);
}

/* The download at out/name has exactly the bytes of root/name, and no .part is left. */
static void assert_same_file(const char *name) {
        char a[HASH_SHA256_HEX], b[HASH_SHA256_HEX];
        uint64_t sa, sb;
        sha256_of(path_in(srv.root, name), a, &sa);
        sha256_of(path_in(srv.out, name), b, &sb);
        assert_int_equal(sa, sb);
        assert_string_equal(a, b);
        char part[512];
        (void)snprintf(part, sizeof part, "%s/%s.part", srv.out, name);
        assert_int_equal(access(part, F_OK), -1);
}

static bool exists(const char *path) {
        return access(path, F_OK) == 0;
}

/* The server log's lines for requests of path, as "RANGE" entries joined by ','. */
static unsigned server_requests(const char *path, char *ranges, size_t size) {
        _cleanup_free_ char *data = NULL;
        size_t len;
        unsigned n = 0;
        char prefix[600];

        if (ranges)
                ranges[0] = '\0';
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, srv.log, 1 << 24, &data, &len), 0);
        (void)snprintf(prefix, sizeof prefix, "GET /%s ", path);
        for (char *line = data, *nl; line && *line; line = nl ? nl + 1 : NULL) {
                nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                if (strncmp(line, prefix, strlen(prefix)) != 0)
                        continue;
                n++;
                if (ranges) {
                        size_t used = strlen(ranges);
                        (void)snprintf(ranges + used, size - used, "%s%s", used ? "," : "", line + strlen(prefix));
                }
        }
        return n;
}

static int start_server(void **state) {
        (void)state;
        char port_file[160];
        int pfd[2];

        (void)snprintf(srv.dir, sizeof srv.dir, "/tmp/mkm-test-fetch.XXXXXX");
        if (!mkdtemp(srv.dir))
                return -1;
        (void)snprintf(srv.root, sizeof srv.root, "%s/root", srv.dir);
        (void)snprintf(srv.out, sizeof srv.out, "%s/out", srv.dir);
        (void)snprintf(srv.log, sizeof srv.log, "%s/requests.log", srv.dir);
        (void)snprintf(port_file, sizeof port_file, "%s/port", srv.dir);
        if (mkdir(srv.root, 0755) < 0 || mkdir(srv.out, 0755) < 0)
                return -1;
        /* Proxies from the environment would send loopback requests elsewhere. */
        static const char *const proxies[] = { "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY" };
        for (size_t i = 0; i < ELEMENTSOF(proxies); i++)
                (void)unsetenv(proxies[i]);

        const char *top = getenv("TOP");
        char script[512];
        (void)snprintf(script, sizeof script, "%s/tests/tools/httpd.py", top && *top ? top : ".");
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return -1;
        srv.pid = fork();
        if (srv.pid < 0)
                return -1;
        if (srv.pid == 0) {
                /* The server dies with us even if this test crashes. */
                (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
                char *const argv[] = { "python3", script, "--root", srv.root, "--port-file", port_file,
                                       "--log", srv.log, NULL };
                execvp("python3", argv);
                _exit(127);
        }
        close(pfd[0]);
        close(pfd[1]);
        for (int i = 0; i < 200; i++) {
                _cleanup_free_ char *data = NULL;
                int status;
                if (fs_read_file_follow_at(AT_FDCWD, port_file, 64, &data, NULL) == 0) {
                        srv.port = atoi(data);
                        return srv.port > 0 ? 0 : -1;
                }
                if (waitpid(srv.pid, &status, WNOHANG) == srv.pid) {
                        fprintf(stderr, "tests/tools/httpd.py exited with status %d\n", status);
                        srv.pid = -1;
                        return -1;
                }
                (void)nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000000L }, NULL);
        }
        fprintf(stderr, "tests/tools/httpd.py did not write its port within 10 s\n");
        return -1;
}

static int stop_server(void **state) {
        (void)state;
        if (srv.pid > 0) {
                (void)kill(srv.pid, SIGTERM);
                (void)waitpid(srv.pid, NULL, 0);
                srv.pid = -1;
        }
        if (srv.dir[0])
                (void)fs_rm_rf_at(AT_FDCWD, srv.dir);
        return 0;
}

/* ---- events -------------------------------------------------------------------------------- */

static struct sink {
        unsigned progress, file_done;
        struct mkm_event last;          /* the last progress event (text not kept) */
        bool done_went_past_total;
        char files[4096];               /* FILE_DONE "label=bytes" joined by ',' */
        char logs[32768];               /* debug lines joined by '\n' */
        char warnings[8192];            /* warnings joined by '\n' */
} sink;

static void sink_fn(void *userdata, const struct mkm_event *ev) {
        struct sink *s = userdata;
        size_t used;

        switch (ev->type) {
        case MKM_EV_PROGRESS:
                assert_string_equal(ev->text, "downloading");
                s->progress++;
                s->last = *ev;
                s->last.text = NULL;
                if (ev->done > ev->total || ev->n > ev->count)
                        s->done_went_past_total = true;
                break;
        case MKM_EV_FILE_DONE:
                s->file_done++;
                used = strlen(s->files);
                (void)snprintf(s->files + used, sizeof s->files - used, "%s%s=%" PRIu64, used ? "," : "", ev->text,
                               ev->done);
                break;
        case MKM_EV_LOG:
                if (ev->level == MKM_LOG_WARNING) {
                        used = strlen(s->warnings);
                        (void)snprintf(s->warnings + used, sizeof s->warnings - used, "%s\n", ev->text);
                        break;
                }
                used = strlen(s->logs);
                (void)snprintf(s->logs + used, sizeof s->logs - used, "%s\n", ev->text);
                break;
        default:
                break;
        }
}

static struct mkm_ctx test_ctx(void) {
        memset(&sink, 0, sizeof sink);
        return (struct mkm_ctx){ .jobs = 5, .events = { .fn = sink_fn, .userdata = &sink } };
}

/* Small timeouts and backoffs so the whole file runs in seconds. */
static struct fetch_options test_opts(void) {
        return (struct fetch_options){
                .jobs = 5,
                .retries = 2,
                .connect_timeout_ms = 2000,
                .low_speed_time_s = 1,
                .low_speed_limit = 100,
                .backoff_ms = 1,
        };
}

/* Fetch one file from the given URLs (NULL-terminated) into out/name. */
static int fetch_one(const char *name, uint64_t expected, const struct fetch_options *opts, struct fetch_item *ret_item,
                     struct mkm_err *err, ...) {
        static char *urls[8];
        static char dest[512];
        va_list ap;
        size_t n = 0;

        va_start(ap, err);
        for (char *u; (u = va_arg(ap, char *)) && n < ELEMENTSOF(urls) - 1;)
                urls[n++] = u;
        va_end(ap);
        urls[n] = NULL;
        (void)snprintf(dest, sizeof dest, "%s/%s", srv.out, name);
        *ret_item = (struct fetch_item){ .urls = urls, .dest = dest, .expected_size = expected, .label = name };
        struct mkm_ctx ctx = test_ctx();
        return fetch_all(&ctx, ret_item, 1, opts, err);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_plain(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};

        make_served("plain.bin", 12345, 1);
        assert_int_equal(fetch_one("plain.bin", 12345, &o, &it, &err, url("plain.bin"), NULL), 0);
        assert_int_equal(it.result, 0);
        assert_string_equal(it.error, "");
        assert_string_equal(it.used_url, url("plain.bin"));
        assert_same_file("plain.bin");
        assert_int_equal(server_requests("plain.bin", NULL, 0), 1);

        /* Events: one file done with its size, progress that ends at 1/1 with every byte. */
        assert_int_equal(sink.file_done, 1);
        assert_string_equal(sink.files, "plain.bin=12345");
        assert_true(sink.progress >= 2);
        assert_int_equal(sink.last.n, 1);
        assert_int_equal(sink.last.count, 1);
        assert_int_equal(sink.last.done, 12345);
        assert_int_equal(sink.last.total, 12345);
        assert_false(sink.done_went_past_total);

        /* The request names us. */
        _cleanup_free_ char *headers = NULL;
        assert_int_equal(fetch_one("headers.txt", 0, &o, &it, &err, url("fault/headers/x"), NULL), 0);
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, path_in(srv.out, "headers.txt"), 65536, &headers, NULL), 0);
        assert_non_null(strstr(headers, "\nUser-Agent: mkmachine/" MKM_VERSION "\n"));
        assert_null(strstr(headers, "Range:"));

        /* Unknown size, and the defaults (opts == NULL) work too; the file is replaced. */
        assert_int_equal(fetch_one("plain.bin", 0, NULL, &it, &err, url("plain.bin"), NULL), 0);
        assert_same_file("plain.bin");
        assert_string_equal(sink.files, "plain.bin=12345");
}

static void test_parallel(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item items[20];
        char *urls[20][2];
        char dests[20][512], names[20][32];
        struct mkm_err err = {};
        uint64_t total = 0;

        for (size_t i = 0; i < 20; i++) {
                (void)snprintf(names[i], sizeof names[i], "par-%02zu.bin", i);
                make_served(names[i], 1000 + i * 7919, 100 + i);
                total += 1000 + i * 7919;
                urls[i][0] = strdup(url(names[i]));
                assert_non_null(urls[i][0]);
                urls[i][1] = NULL;
                (void)snprintf(dests[i], sizeof dests[i], "%s/%s", srv.out, names[i]);
                items[i] = (struct fetch_item){ .urls = urls[i], .dest = dests[i],
                                                .expected_size = i % 2 ? 1000 + i * 7919 : 0 };
        }
        struct mkm_ctx ctx = test_ctx();
        assert_int_equal(fetch_all(&ctx, items, 20, &o, &err), 0);
        for (size_t i = 0; i < 20; i++) {
                assert_int_equal(items[i].result, 0);
                assert_ptr_equal(items[i].used_url, urls[i][0]);
                assert_same_file(names[i]);
                assert_int_equal(server_requests(names[i], NULL, 0), 1);
                /* No label: the file name stands in. */
                assert_non_null(strstr(sink.files, names[i]));
                free(urls[i][0]);
        }
        assert_int_equal(sink.file_done, 20);
        assert_int_equal(sink.last.n, 20);
        assert_int_equal(sink.last.count, 20);
        assert_int_equal(sink.last.done, total);
        assert_int_equal(sink.last.total, total);
        assert_false(sink.done_went_past_total);
}

/* Fetch n slow (~1 s) bodies, out/PREFIX-I.bin, with o: every one must arrive whole. Returns the
 * seconds it took. */
static double fetch_slow(const char *prefix, size_t n, uint64_t seed, const struct fetch_options *o) {
        struct fetch_item items[8];
        char *urls[8][2];
        char dests[8][512], names[8][32];
        struct mkm_err err = {};
        struct timespec t0, t1;

        assert_true(n <= ELEMENTSOF(items));
        for (size_t i = 0; i < n; i++) {
                char path[64];
                (void)snprintf(names[i], sizeof names[i], "%s-%zu.bin", prefix, i);
                make_served(names[i], 5000, seed + i);
                (void)snprintf(path, sizeof path, "fault/slow/%s", names[i]);
                urls[i][0] = strdup(url(path));
                urls[i][1] = NULL;
                (void)snprintf(dests[i], sizeof dests[i], "%s/%s", srv.out, names[i]);
                items[i] = (struct fetch_item){ .urls = urls[i], .dest = dests[i], .expected_size = 5000,
                                                .label = names[i] };
        }
        struct mkm_ctx ctx = test_ctx();
        (void)clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(fetch_all(&ctx, items, n, o, &err), 0);
        (void)clock_gettime(CLOCK_MONOTONIC, &t1);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(items[i].result, 0);
                assert_same_file(names[i]);
                free(urls[i][0]);
        }
        return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

/* Five slow (~1 s) bodies with jobs=5 finish together: the transfers really run in parallel, and a
 * slow but steady server is not mistaken for a stall. jobs=0 takes ctx->jobs (5). */
static void test_slow_in_parallel(void **state) {
        (void)state;
        struct fetch_options o = test_opts();

        o.jobs = 0;
        double secs = fetch_slow("slow", 5, 200, &o);
        assert_true(secs >= 0.8);       /* the server really was slow */
        assert_true(secs < 3.5);        /* one after another would take 5 s */
        /* Throttled, but a second of transfer gives several progress lines. */
        assert_true(sink.progress >= 4);
        assert_true(sink.progress <= 2 + 10 * (unsigned)(secs + 1));
}

/* Four slow bodies with jobs=2 take two rounds: no more than jobs transfers run at once. */
static void test_jobs_cap(void **state) {
        (void)state;
        struct fetch_options o = test_opts();

        o.jobs = 2;
        double secs = fetch_slow("cap", 4, 300, &o);
        print_message("4 slow bodies, jobs=2: %.2f s\n", secs);
        assert_true(secs >= 1.7);       /* all four at once would take 1 s */
}

static void test_404_fails_over(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char want[2048];

        make_served("m404.bin", 4000, 3);
        assert_int_equal(fetch_one("m404.bin", 4000, &o, &it, &err, url("fault/404/m404.bin"), url("m404.bin"), NULL), 0);
        assert_string_equal(it.used_url, url("m404.bin"));
        assert_same_file("m404.bin");
        /* Permanent: the first mirror was asked once, not retried. */
        assert_int_equal(server_requests("fault/404/m404.bin", NULL, 0), 1);
        assert_int_equal(server_requests("m404.bin", NULL, 0), 1);
        (void)snprintf(want, sizeof want,
                       "falling back to mirror '%s' after '%s' failed: The requested URL returned error: 404\n",
                       url("m404.bin"), url("fault/404/m404.bin"));
        assert_string_equal(sink.logs, want);

        /* 403 alone: -MKM_E_HTTP, naming the URL. */
        assert_int_equal(fetch_one("m404.bin", 4000, &o, &it, &err, url("fault/403/m404.bin"), NULL), -MKM_E_HTTP);
        (void)snprintf(want, sizeof want, "'%s': The requested URL returned error: 403", url("fault/403/m404.bin"));
        assert_string_equal(it.error, want);
        /* 403 is a refusal, not an absence (signatures may be absent; refused is a failure). */
        assert_false(it.not_found);
        /* 404 and 410 on every mirror: the file does not exist. */
        assert_int_equal(fetch_one("m404.bin", 4000, &o, &it, &err, url("fault/404/gone.bin"), url("fault/410/gone.bin"),
                                   NULL),
                         -MKM_E_HTTP);
        assert_true(it.not_found);
        /* 404 on one mirror but another failing otherwise: not "absent". */
        assert_int_equal(fetch_one("m404.bin", 4000, &o, &it, &err, url("fault/404/m404.bin"), url("fault/403/other.bin"),
                                   NULL),
                         -MKM_E_HTTP);
        assert_false(it.not_found);
        assert_null(it.used_url);
        assert_int_equal(server_requests("fault/403/m404.bin", NULL, 0), 1);
}

static void test_500_everywhere(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char want[2048], e[2048];

        make_served("m500.bin", 4000, 4);
        o.retries = 1;
        assert_int_equal(fetch_one("m500.bin", 4000, &o, &it, &err, url("fault/500/m500.bin"), url("fault/503/m500.bin"),
                                   NULL),
                         -MKM_E_FETCH);
        assert_false(it.not_found);
        (void)snprintf(e, sizeof e,
                       "'%s': The requested URL returned error: 500 (gave up after 2 attempts); "
                       "'%s': The requested URL returned error: 503 (gave up after 2 attempts)",
                       url("fault/500/m500.bin"), url("fault/503/m500.bin"));
        assert_string_equal(it.error, e);
        assert_int_equal(it.result, -MKM_E_FETCH);
        assert_int_equal(err.code, -MKM_E_FETCH);
        (void)snprintf(want, sizeof want, "m500.bin: %s", e);
        assert_string_equal(err.msg, want);
        assert_int_equal(server_requests("fault/500/m500.bin", NULL, 0), 2);
        assert_int_equal(server_requests("fault/503/m500.bin", NULL, 0), 2);
        assert_false(exists(path_in(srv.out, "m500.bin")));
        assert_false(exists(path_in(srv.out, "m500.bin.part")));
        (void)snprintf(want, sizeof want,
                       "retrying '%s' in 1ms: The requested URL returned error: 500\n"
                       "falling back to mirror '%s' after '%s' failed: The requested URL returned error: 500\n"
                       "retrying '%s' in 1ms: The requested URL returned error: 503\n",
                       url("fault/500/m500.bin"), url("fault/503/m500.bin"), url("fault/500/m500.bin"),
                       url("fault/503/m500.bin"));
        assert_string_equal(sink.logs, want);
        /* The user hears of it while it retries: once for the mirror (one server here), with the
         * reason and the wait, not once per attempt. */
        char mirror[256];
        const char *u = url("x");
        (void)snprintf(mirror, sizeof mirror, "%.*s", (int)(strchr(strstr(u, "://") + 3, '/') - u), u);
        (void)snprintf(want, sizeof want,
                       "mirror '%s' failed (The requested URL returned error: 500); retrying in 1 ms\n", mirror);
        assert_string_equal(sink.warnings, want);
        assert_int_equal(sink.file_done, 0);
        assert_int_equal(sink.last.n, 1);       /* finished, if not successfully */

        /* Backoff doubles: 1, 2, 4 ms with three retries; 408 and 429 are transient too. */
        o.retries = 3;
        assert_int_equal(fetch_one("m500.bin", 4000, &o, &it, &err, url("fault/429/m500.bin"), NULL), -MKM_E_FETCH);
        (void)snprintf(want, sizeof want,
                       "retrying '%1$s' in 1ms: The requested URL returned error: 429\n"
                       "retrying '%1$s' in 2ms: The requested URL returned error: 429\n"
                       "retrying '%1$s' in 4ms: The requested URL returned error: 429\n",
                       url("fault/429/m500.bin"));
        assert_string_equal(sink.logs, want);
        o.retries = 0;
        assert_int_equal(fetch_one("m500.bin", 4000, &o, &it, &err, url("fault/408/m500.bin"), NULL), -MKM_E_FETCH);
        (void)snprintf(want, sizeof want, "'%s': The requested URL returned error: 408", url("fault/408/m500.bin"));
        assert_string_equal(it.error, want);

        /* Several items failing: the first one is reported, with a count of the others. */
        struct fetch_item items[3];
        char *u1[] = { url("fault/500/many-1"), NULL }, *u2[] = { url("m500.bin"), NULL },
             *u3[] = { url("fault/404/many-3"), NULL };
        items[0] = (struct fetch_item){ .urls = u1, .dest = path_in(srv.out, "many-1") };
        items[1] = (struct fetch_item){ .urls = u2, .dest = path_in(srv.out, "m500.bin"), .expected_size = 4000 };
        items[2] = (struct fetch_item){ .urls = u3, .dest = path_in(srv.out, "many-3") };
        struct mkm_ctx ctx = test_ctx();
        assert_int_equal(fetch_all(&ctx, items, 3, &o, &err), -MKM_E_FETCH);
        (void)snprintf(want, sizeof want,
                       "many-1: '%s': The requested URL returned error: 500 (and 1 more failed downloads)",
                       url("fault/500/many-1"));
        assert_string_equal(err.msg, want);
        assert_int_equal(items[1].result, 0);
        assert_int_equal(items[2].result, -MKM_E_HTTP);
        assert_same_file("m500.bin");
        assert_int_equal(sink.file_done, 1);
        assert_int_equal(sink.last.n, 3);
}

static void test_500_once(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char want[1024];

        make_served("once.bin", 7000, 5);
        assert_int_equal(fetch_one("once.bin", 7000, &o, &it, &err, url("fault/500-once/once.bin"), url("once.bin"), NULL), 0);
        assert_string_equal(it.used_url, url("fault/500-once/once.bin"));
        assert_same_file("once.bin");
        assert_int_equal(server_requests("fault/500-once/once.bin", NULL, 0), 2);
        assert_int_equal(server_requests("once.bin", NULL, 0), 0);
        (void)snprintf(want, sizeof want, "retrying '%s' in 1ms: The requested URL returned error: 500\n",
                       url("fault/500-once/once.bin"));
        assert_string_equal(sink.logs, want);
}

static void test_truncated_resumes(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char ranges[256], want[1024];

        make_served("trunc.bin", 100000, 6);
        assert_int_equal(fetch_one("trunc.bin", 100000, &o, &it, &err, url("fault/truncate/trunc.bin"), NULL), 0);
        assert_same_file("trunc.bin");
        assert_int_equal(server_requests("fault/truncate/trunc.bin", ranges, sizeof ranges), 2);
        assert_string_equal(ranges, "-,bytes=50000-");
        (void)snprintf(want, sizeof want,
                       "retrying '%1$s' in 1ms: transfer closed with 50000 bytes remaining to read\n"
                       "resuming '%1$s' at byte 50000\n",
                       url("fault/truncate/trunc.bin"));
        assert_string_equal(sink.logs, want);
        assert_string_equal(sink.files, "trunc.bin=100000");

        /* Unknown size: libcurl's Content-Length check catches it the same way. */
        make_served("trunc2.bin", 30001, 7);
        assert_int_equal(fetch_one("trunc2.bin", 0, &o, &it, &err, url("fault/truncate-once/trunc2.bin"), NULL), 0);
        assert_same_file("trunc2.bin");
        assert_int_equal(server_requests("fault/truncate-once/trunc2.bin", ranges, sizeof ranges), 2);
        assert_string_equal(ranges, "-,bytes=15000-");
}

/* A server that closes early without a Content-Length: the body is shorter than expected_size. */
static void test_short_body_is_retried(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char want[1024];

        /* Expecting 1000 bytes of a 900-byte file is refused up front by the Content-Length... */
        make_served("short.bin", 900, 8);
        assert_int_equal(fetch_one("short.bin", 1000, &o, &it, &err, url("short.bin"), NULL), -MKM_E_DIGEST_MISMATCH);
        (void)snprintf(want, sizeof want, "'%s': announces 900 bytes, fewer than the expected 1000", url("short.bin"));
        assert_string_equal(it.error, want);
        assert_false(exists(path_in(srv.out, "short.bin.part")));

        /* ...and found after the fact when the size is only known from the metadata. */
        o.retries = 1;
        assert_int_equal(fetch_one("short.bin", 10000, &o, &it, &err, url("fault/big-nolen/short.bin"), NULL),
                         -MKM_E_FETCH);
        (void)snprintf(want, sizeof want, "'%s': body ended after 4996 of 10000 bytes (gave up after 2 attempts)",
                       url("fault/big-nolen/short.bin"));
        assert_string_equal(it.error, want);
        char ranges[256];
        assert_int_equal(server_requests("fault/big-nolen/short.bin", ranges, sizeof ranges), 2);
        assert_string_equal(ranges, "-,bytes=4996-");
        /* What came is kept for a later run to resume. */
        struct stat s;
        assert_int_equal(stat(path_in(srv.out, "short.bin.part"), &s), 0);
        assert_int_equal(s.st_size, 4996);
        assert_int_equal(unlink(path_in(srv.out, "short.bin.part")), 0);
}

static void test_part_file_resumed(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char ranges[256];
        uint8_t buf[80000];

        make_served("part.bin", sizeof buf, 9);
        make_content(buf, sizeof buf, 9);
        write_file(path_in(srv.out, "part.bin.part"), buf, 30000);
        assert_int_equal(fetch_one("part.bin", sizeof buf, &o, &it, &err, url("part.bin"), NULL), 0);
        assert_same_file("part.bin");
        assert_int_equal(server_requests("part.bin", ranges, sizeof ranges), 1);
        assert_string_equal(ranges, "bytes=30000-");
        assert_string_equal(sink.files, "part.bin=80000");

        /* A part as large as the whole file cannot be resumed: it starts over without a Range. */
        write_file(path_in(srv.out, "part.bin.part"), buf, sizeof buf);
        assert_int_equal(fetch_one("part.bin", sizeof buf, &o, &it, &err, url("part.bin"), NULL), 0);
        assert_same_file("part.bin");
        assert_int_equal(server_requests("part.bin", ranges, sizeof ranges), 2);
        assert_string_equal(ranges, "bytes=30000-,-");
}

/* A .part that is not ours alone (a hard link to someone's file, a FIFO) is never resumed into:
 * it is replaced, the download starts from zero, and the linked file keeps its bytes. */
static void test_foreign_part_replaced(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char ranges[256];
        uint8_t buf[50000], junk[20000];

        make_served("linked.bin", sizeof buf, 11);
        memset(junk, 'J', sizeof junk);
        char other[512];
        (void)snprintf(other, sizeof other, "%s", path_in(srv.out, "someone-elses-file"));
        write_file(other, junk, sizeof junk);
        assert_int_equal(link(other, path_in(srv.out, "linked.bin.part")), 0);
        assert_int_equal(fetch_one("linked.bin", sizeof buf, &o, &it, &err, url("linked.bin"), NULL), 0);
        assert_same_file("linked.bin");
        assert_int_equal(server_requests("linked.bin", ranges, sizeof ranges), 1);
        assert_string_equal(ranges, "-");
        struct stat st;
        assert_int_equal(stat(other, &st), 0);
        assert_int_equal(st.st_size, (off_t)sizeof junk);
        assert_int_equal(st.st_nlink, 1);

        make_served("fifo.bin", sizeof buf, 12);
        assert_int_equal(mkfifo(path_in(srv.out, "fifo.bin.part"), 0644), 0);
        assert_int_equal(fetch_one("fifo.bin", sizeof buf, &o, &it, &err, url("fifo.bin"), NULL), 0);
        assert_same_file("fifo.bin");
}

/* A server ignoring Range: the 200 body replaces the part (here garbage, to prove it is not kept). */
static void test_norange_restarts(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char ranges[256], want[512];
        uint8_t junk[30000];

        make_served("norange.bin", 60000, 10);
        memset(junk, 'J', sizeof junk);
        write_file(path_in(srv.out, "norange.bin.part"), junk, sizeof junk);
        assert_int_equal(fetch_one("norange.bin", 60000, &o, &it, &err, url("fault/norange/norange.bin"), NULL), 0);
        assert_same_file("norange.bin");
        assert_int_equal(server_requests("fault/norange/norange.bin", ranges, sizeof ranges), 1);
        assert_string_equal(ranges, "bytes=30000-");
        (void)snprintf(want, sizeof want,
                       "resuming '%1$s' at byte 30000\n'%1$s' ignored the Range request; restarting from zero\n",
                       url("fault/norange/norange.bin"));
        assert_string_equal(sink.logs, want);
}

/* A 206 for another range than the one asked: restart without a Range rather than splice. */
static void test_wrong_range_restarts(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char ranges[256], want[512];
        uint8_t buf[20000];

        o.retries = 0;  /* a restart is not a retry */
        make_served("badrange.bin", sizeof buf, 18);
        make_content(buf, sizeof buf, 18);
        write_file(path_in(srv.out, "badrange.bin.part"), buf, 1000);
        assert_int_equal(fetch_one("badrange.bin", sizeof buf, &o, &it, &err, url("fault/badrange/badrange.bin"), NULL), 0);
        assert_same_file("badrange.bin");
        assert_int_equal(server_requests("fault/badrange/badrange.bin", ranges, sizeof ranges), 2);
        assert_string_equal(ranges, "bytes=1000-,-");
        (void)snprintf(want, sizeof want,
                       "resuming '%1$s' at byte 1000\n"
                       "restarting '%1$s' from zero: answered a request for bytes 1000- with another range\n",
                       url("fault/badrange/badrange.bin"));
        assert_string_equal(sink.logs, want);
}

/* A part longer than the file (size unknown): 416, then a fresh start. */
static void test_416_restarts(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char ranges[256];
        uint8_t junk[5000];

        o.retries = 0;  /* a restart is not a retry */
        make_served("r416.bin", 3000, 11);
        memset(junk, 'J', sizeof junk);
        write_file(path_in(srv.out, "r416.bin.part"), junk, sizeof junk);
        assert_int_equal(fetch_one("r416.bin", 0, &o, &it, &err, url("r416.bin"), NULL), 0);
        assert_same_file("r416.bin");
        assert_int_equal(server_requests("r416.bin", ranges, sizeof ranges), 2);
        assert_string_equal(ranges, "bytes=5000-,-");
        char want[512];
        (void)snprintf(want, sizeof want,
                       "resuming '%1$s' at byte 5000\n"
                       "restarting '%1$s' from zero: The requested URL returned error: 416\n",
                       url("r416.bin"));
        assert_string_equal(sink.logs, want);
}

static void test_stall_fails_over(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char want[1024];

        o.retries = 0;
        make_served("stall.bin", 20000, 12);
        assert_int_equal(fetch_one("stall.bin", 20000, &o, &it, &err, url("fault/stall/stall.bin"), url("stall.bin"), NULL), 0);
        assert_string_equal(it.used_url, url("stall.bin"));
        assert_same_file("stall.bin");
        (void)snprintf(want, sizeof want,
                       "falling back to mirror '%1$s' after '%2$s' failed: Operation too slow. Less than 100 bytes/sec "
                       "transferred the last 1 seconds\n"
                       "resuming '%1$s' at byte 16\n",
                       url("stall.bin"), url("fault/stall/stall.bin"));
        assert_string_equal(sink.logs, want);
        char ranges[64];
        assert_int_equal(server_requests("stall.bin", ranges, sizeof ranges), 1);
        assert_string_equal(ranges, "bytes=16-");
}

static void test_too_big(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char want[1024];

        make_served("big.bin", 10000, 13);
        /* Content-Length says too much: refused before the body. */
        assert_int_equal(fetch_one("big.bin", 10000, &o, &it, &err, url("fault/big/big.bin"), NULL), -MKM_E_TOO_BIG);
        (void)snprintf(want, sizeof want, "'%s': announces 14096 bytes, more than the expected 10000",
                       url("fault/big/big.bin"));
        assert_string_equal(it.error, want);
        assert_int_equal(err.code, -MKM_E_TOO_BIG);
        assert_false(exists(path_in(srv.out, "big.bin")));
        assert_false(exists(path_in(srv.out, "big.bin.part")));
        assert_int_equal(server_requests("fault/big/big.bin", NULL, 0), 1);      /* not retried */

        /* No Content-Length: the write callback stops the body at the limit. */
        assert_int_equal(fetch_one("big.bin", 10000, &o, &it, &err, url("fault/big-nolen/big.bin"), NULL), -MKM_E_TOO_BIG);
        (void)snprintf(want, sizeof want, "'%s': sent more than the expected 10000 bytes", url("fault/big-nolen/big.bin"));
        assert_string_equal(it.error, want);
        (void)snprintf(want, sizeof want, "big.bin: '%s': sent more than the expected 10000 bytes",
                       url("fault/big-nolen/big.bin"));
        assert_string_equal(err.msg, want);
        assert_false(exists(path_in(srv.out, "big.bin")));
        assert_false(exists(path_in(srv.out, "big.bin.part")));

        /* Unknown size: max_size is the cap. */
        o.max_size = 12000;
        assert_int_equal(fetch_one("big.bin", 0, &o, &it, &err, url("fault/big-nolen/big.bin"), NULL), -MKM_E_TOO_BIG);
        (void)snprintf(want, sizeof want, "'%s': sent more than the limit of 12000 bytes", url("fault/big-nolen/big.bin"));
        assert_string_equal(it.error, want);
        assert_int_equal(fetch_one("big.bin", 0, &o, &it, &err, url("fault/big/big.bin"), NULL), -MKM_E_TOO_BIG);
        (void)snprintf(want, sizeof want, "'%s': announces 14096 bytes, more than the limit of 12000",
                       url("fault/big/big.bin"));
        assert_string_equal(it.error, want);
        assert_false(exists(path_in(srv.out, "big.bin.part")));

        /* A too-big mirror is skipped for a good one. */
        assert_int_equal(fetch_one("big.bin", 10000, &o, &it, &err, url("fault/big/big.bin"), url("big.bin"), NULL), 0);
        assert_same_file("big.bin");
}

/* fetch_item.max_size caps one item of a call below fetch_options.max_size (import: SHA256SUMS
 * beside a tarball), while its sibling keeps the call's cap. */
static void test_item_max_size(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        o.max_size = 1 << 20;
        char dests[2][512], want[1024];
        char *urls[2][2] = { { url("cap-small.bin") }, { url("cap-big.bin") } };
        make_served("cap-small.bin", 10000, 23);
        make_served("cap-big.bin", 10000, 29);
        struct fetch_item items[2];
        for (size_t i = 0; i < 2; i++) {
                (void)snprintf(dests[i], sizeof dests[i], "%s/%s", srv.out, i == 0 ? "cap-small.bin" : "cap-big.bin");
                items[i] = (struct fetch_item){ .urls = urls[i], .dest = dests[i], .max_size = i == 0 ? 4096 : 0 };
        }
        struct mkm_ctx ctx = test_ctx();
        struct mkm_err err = {};
        assert_int_equal(fetch_all(&ctx, items, 2, &o, &err), -MKM_E_TOO_BIG);
        assert_int_equal(items[0].result, -MKM_E_TOO_BIG);
        (void)snprintf(want, sizeof want, "'%s': announces 10000 bytes, more than the limit of 4096", urls[0][0]);
        assert_string_equal(items[0].error, want);
        assert_false(exists(path_in(srv.out, "cap-small.bin")));
        assert_false(exists(path_in(srv.out, "cap-small.bin.part")));
        assert_int_equal(items[1].result, 0);
        assert_same_file("cap-big.bin");
}

/* The cap counts the bytes a resumed part already holds: a 206 without Content-Length and with
 * an unknown total ("bytes N-LAST/ *") is cut off once offset + received passes it, even though
 * this transfer alone stays under it. Kills the mutant that compares only the bytes received. */
static void test_too_big_resumed(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char ranges[256], want[1024];
        uint8_t buf[10000];

        make_served("bigres.bin", sizeof buf, 19);
        make_content(buf, sizeof buf, 19);
        o.max_size = 12000;     /* 6000 kept + 8096 sent: only the sum is over */
        write_file(path_in(srv.out, "bigres.bin.part"), buf, 6000);
        assert_int_equal(fetch_one("bigres.bin", 0, &o, &it, &err, url("fault/big-range/bigres.bin"), NULL),
                         -MKM_E_TOO_BIG);
        (void)snprintf(want, sizeof want, "'%s': sent more than the limit of 12000 bytes",
                       url("fault/big-range/bigres.bin"));
        assert_string_equal(it.error, want);
        assert_int_equal(server_requests("fault/big-range/bigres.bin", ranges, sizeof ranges), 1);
        assert_string_equal(ranges, "bytes=6000-");
        assert_false(exists(path_in(srv.out, "bigres.bin")));
        assert_false(exists(path_in(srv.out, "bigres.bin.part")));

        /* Exactly the cap is allowed: the whole 14096 bytes, resumed. */
        o.max_size = 14096;
        write_file(path_in(srv.out, "bigres.bin.part"), buf, 6000);
        assert_int_equal(fetch_one("bigres.bin", 0, &o, &it, &err, url("fault/big-range/bigres.bin"), NULL), 0);
        assert_int_equal(server_requests("fault/big-range/bigres.bin", ranges, sizeof ranges), 2);
        assert_string_equal(ranges, "bytes=6000-,bytes=6000-");
        assert_string_equal(sink.files, "bigres.bin=14096");
}

static void test_reset_retried_then_fails_over(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};

        make_served("reset.bin", 5000, 14);
        assert_int_equal(fetch_one("reset.bin", 5000, &o, &it, &err, url("fault/reset/reset.bin"), url("reset.bin"), NULL), 0);
        assert_string_equal(it.used_url, url("reset.bin"));
        assert_same_file("reset.bin");
        assert_int_equal(server_requests("fault/reset/reset.bin", NULL, 0), 3);  /* 1 + 2 retries */
        assert_int_equal(server_requests("reset.bin", NULL, 0), 1);
        /* Two retries then the failover, each naming the reset URL. */
        char needle[512];
        (void)snprintf(needle, sizeof needle, "retrying '%s' in 2ms: ", url("fault/reset/reset.bin"));
        assert_non_null(strstr(sink.logs, needle));
        (void)snprintf(needle, sizeof needle, "falling back to mirror '%s' after '%s' failed: ", url("reset.bin"),
                       url("fault/reset/reset.bin"));
        assert_non_null(strstr(sink.logs, needle));

        /* Nothing listening: connection refused is transient, then the error says so. */
        o.retries = 1;
        char dead[64];
        (void)snprintf(dead, sizeof dead, "http://127.0.0.1:1/reset.bin");
        assert_int_equal(fetch_one("reset.bin", 5000, &o, &it, &err, dead, NULL), -MKM_E_FETCH);
        assert_true(strncmp(it.error, "'http://127.0.0.1:1/reset.bin': Failed to connect to 127.0.0.1 port 1",
                            strlen("'http://127.0.0.1:1/reset.bin': Failed to connect to 127.0.0.1 port 1")) == 0);
        assert_non_null(strstr(it.error, "(gave up after 2 attempts)"));
}

static void test_file_scheme(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char u[600], want[1400];
        uint8_t junk[100];

        make_served("local.bin", 33333, 15);
        (void)snprintf(u, sizeof u, "file://%s/local.bin", srv.root);
        /* A stale part is not resumed over file://: the copy starts over. */
        memset(junk, 'J', sizeof junk);
        write_file(path_in(srv.out, "local.bin.part"), junk, sizeof junk);
        assert_int_equal(fetch_one("local.bin", 33333, &o, &it, &err, u, NULL), 0);
        assert_string_equal(it.used_url, u);
        assert_same_file("local.bin");
        assert_string_equal(sink.files, "local.bin=33333");

        /* A missing file is permanent: no retries, straight to the next URL. */
        (void)snprintf(u, sizeof u, "file://%s/missing.bin", srv.root);
        assert_int_equal(fetch_one("missing.bin", 0, &o, &it, &err, u, NULL), -ENOENT);
        assert_true(it.not_found);
        (void)snprintf(want, sizeof want, "'%s': Couldn't open file %s/missing.bin", u, srv.root);
        assert_string_equal(it.error, want);
        assert_false(exists(path_in(srv.out, "missing.bin")));
        assert_false(exists(path_in(srv.out, "missing.bin.part")));
        assert_string_equal(sink.logs, "");

        /* Too big over file:// too. */
        (void)snprintf(u, sizeof u, "file://%s/local.bin", srv.root);
        assert_int_equal(fetch_one("local.bin", 1000, &o, &it, &err, u, NULL), -MKM_E_TOO_BIG);
        (void)snprintf(want, sizeof want, "'%s': sent more than the expected 1000 bytes", u);
        assert_string_equal(it.error, want);
}

static void test_schemes_and_redirects(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char want[1400];

        make_served("redir.bin", 2000, 16);
        assert_int_equal(fetch_one("redir.bin", 2000, &o, &it, &err, "ftp://127.0.0.1/redir.bin", NULL), -EPROTONOSUPPORT);
        assert_string_equal(it.error, "'ftp://127.0.0.1/redir.bin': Protocol \"ftp\" not supported or disabled in libcurl");
        assert_false(exists(path_in(srv.out, "redir.bin.part")));

        /* An http redirect to another http URL is followed... */
        assert_int_equal(fetch_one("redir.bin", 2000, &o, &it, &err, url("fault/redirect/redir.bin"), NULL), 0);
        assert_same_file("redir.bin");
        assert_int_equal(unlink(path_in(srv.out, "redir.bin")), 0);

        /* ...one to file:// is not, even though the file exists... */
        assert_int_equal(fetch_one("redir.bin", 2000, &o, &it, &err, url("fault/redirect-file/redir.bin"), NULL),
                         -EPROTONOSUPPORT);
        (void)snprintf(want, sizeof want, "'%s': Protocol \"file\" not supported or disabled in libcurl",
                       url("fault/redirect-file/redir.bin"));
        assert_string_equal(it.error, want);
        assert_false(exists(path_in(srv.out, "redir.bin")));
        assert_int_equal(server_requests("fault/redirect-file/redir.bin", NULL, 0), 1);

        /* ...and redirects are capped. */
        assert_int_equal(fetch_one("redir.bin", 2000, &o, &it, &err, url("fault/redirect-loop/redir.bin"), NULL), -MKM_E_HTTP);
        (void)snprintf(want, sizeof want, "'%s': Maximum (5) redirects followed", url("fault/redirect-loop/redir.bin"));
        assert_string_equal(it.error, want);
        assert_int_equal(server_requests("fault/redirect-loop/redir.bin", NULL, 0), 6);
}

/* A local failure (the destination's directory is missing) fails the item without asking anyone. */
static void test_local_error(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        struct fetch_item it;
        struct mkm_err err = {};
        char want[1024];
        char *urls[] = { url("local-err.bin"), url("fault/404/local-err.bin"), NULL };

        make_served("local-err.bin", 100, 17);
        it = (struct fetch_item){ .urls = urls, .dest = path_in(srv.out, "no-such-dir/local-err.bin") };
        struct mkm_ctx ctx = test_ctx();
        assert_int_equal(fetch_all(&ctx, &it, 1, &o, &err), -ENOENT);
        (void)snprintf(want, sizeof want, "cannot open '%s/no-such-dir/local-err.bin.part': No such file or directory",
                       srv.out);
        assert_string_equal(it.error, want);
        assert_int_equal(server_requests("local-err.bin", NULL, 0), 0);
        assert_int_equal(server_requests("fault/404/local-err.bin", NULL, 0), 0);
        /* The label defaults to the base name. */
        char full[1200];
        (void)snprintf(full, sizeof full, "local-err.bin: %s", want);
        assert_string_equal(err.msg, full);

        /* An item without URLs. */
        char *none[] = { NULL };
        it = (struct fetch_item){ .urls = none, .dest = path_in(srv.out, "x"), .label = "x" };
        assert_int_equal(fetch_all(&ctx, &it, 1, &o, &err), -EINVAL);
        assert_string_equal(err.msg, "x: no URL given");

        /* Nothing to do is fine. */
        assert_int_equal(fetch_all(&ctx, NULL, 0, &o, &err), 0);
}

static void *cancel_later(void *userdata) {
        (void)nanosleep(&(struct timespec){ .tv_nsec = 300 * 1000000L }, NULL);
        atomic_store((atomic_bool *)userdata, true);
        return NULL;
}

/* Cancelling stops fetch_all() at once, also while every transfer waits out a long backoff, and
 * every unfinished item says so. */
static void test_cancel(void **state) {
        (void)state;
        struct fetch_options o = test_opts();
        atomic_bool cancel = true;
        struct mkm_err err = {};
        char *urls_a[] = { url("fault/500/cancel-a.bin"), NULL }, *urls_b[] = { url("cancel-b.bin"), NULL };
        struct fetch_item items[2];
        struct timespec t0, t1;

        make_served("cancel-b.bin", 100, 18);
        items[0] = (struct fetch_item){ .urls = urls_a, .dest = path_in(srv.out, "cancel-a.bin") };
        items[1] = (struct fetch_item){ .urls = urls_b, .dest = path_in(srv.out, "cancel-b.bin") };
        o.cancel = &cancel;
        struct mkm_ctx ctx = test_ctx();

        /* Cancelled before anything started. */
        assert_int_equal(fetch_all(&ctx, items, 2, &o, &err), -ECANCELED);
        assert_string_equal(err.msg, "cancelled");
        for (size_t i = 0; i < 2; i++) {
                assert_int_equal(items[i].result, -ECANCELED);
                assert_string_equal(items[i].error, "not downloaded: cancelled");
        }
        assert_false(exists(path_in(srv.out, "cancel-b.bin")));
        assert_int_equal(server_requests("cancel-b.bin", NULL, 0), 0);

        /* Cancelled 0.3 s in, while the only transfer left backs off for 10 s. */
        atomic_store(&cancel, false);
        o.retries = 1;
        o.backoff_ms = 10000;
        pthread_t t;
        (void)clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(pthread_create(&t, NULL, cancel_later, &cancel), 0);
        assert_int_equal(fetch_all(&ctx, items, 2, &o, &err), -ECANCELED);
        (void)clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_int_equal(pthread_join(t, NULL), 0);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        print_message("cancelled during a backoff after %.2f s\n", secs);
        assert_true(secs < 2.0);
        assert_int_equal(items[0].result, -ECANCELED);
        assert_string_equal(items[0].error, "not downloaded: cancelled");
        assert_int_equal(items[1].result, 0);
        assert_int_equal(server_requests("fault/500/cancel-a.bin", NULL, 0), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain),
                cmocka_unit_test(test_parallel),
                cmocka_unit_test(test_slow_in_parallel),
                cmocka_unit_test(test_404_fails_over),
                cmocka_unit_test(test_500_everywhere),
                cmocka_unit_test(test_500_once),
                cmocka_unit_test(test_truncated_resumes),
                cmocka_unit_test(test_short_body_is_retried),
                cmocka_unit_test(test_part_file_resumed),
                cmocka_unit_test(test_foreign_part_replaced),
                cmocka_unit_test(test_norange_restarts),
                cmocka_unit_test(test_wrong_range_restarts),
                cmocka_unit_test(test_416_restarts),
                cmocka_unit_test(test_stall_fails_over),
                cmocka_unit_test(test_too_big),
                cmocka_unit_test(test_too_big_resumed),
                cmocka_unit_test(test_item_max_size),
                cmocka_unit_test(test_reset_retried_then_fails_over),
                cmocka_unit_test(test_file_scheme),
                cmocka_unit_test(test_schemes_and_redirects),
                cmocka_unit_test(test_local_error),
                cmocka_unit_test(test_jobs_cap),
                cmocka_unit_test(test_cancel),
        };
        /* main() of mkmachine does this once; so does this test. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return 1;
        int r = cmocka_run_group_tests(tests, start_server, stop_server);
        curl_global_cleanup();
        return r;
}
