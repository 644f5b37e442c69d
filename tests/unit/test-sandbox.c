/* SPDX-License-Identifier: MIT */
/* Unit tests for builder/sandbox: a tiny busybox tree run in namespaces. Needs root (skips
 * visibly otherwise) and Debian's static busybox at /bin/busybox (busybox-static). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctx.h"
#include "sandbox.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/forklock.h"
#include "util/fs.h"

struct fixture {
        char top[64];
        char root[128];
};

static const char *const applets[] = { "sh", "unshare", "cat", "id", "ls", "hostname", "sleep", "env", "mount", "ps", "echo",
                                       "touch", "head", "wc", "test", "readlink", "umask", "stat", "grep", "sort",
                                       "mkdir", "true", "false", "yes", NULL };

static bool can_run(void) {
        if (geteuid() != 0) {
                print_message("skipped: the sandbox needs root\n");
                return false;
        }
        if (access("/bin/busybox", X_OK) != 0) {
                print_message("skipped: /bin/busybox (busybox-static) missing\n");
                return false;
        }
        return true;
}

static void write_text(const char *path, const char *text, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static char *read_text(const char *path) {
        char *data = NULL;
        size_t len = 0;
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, path, 1u << 20, &data, &len), 0);
        return data;
}

static void copy_file(const char *from, const char *to, mode_t mode) {
        char *data = NULL;
        size_t len = 0;
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, from, 64u << 20, &data, &len), 0);
        int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t)len);
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
        free(data);
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        strcpy(f->top, "/tmp/mkm-test-sandbox.XXXXXX");
        assert_non_null(mkdtemp(f->top));
        snprintf(f->root, sizeof f->root, "%s/root", f->top);
        assert_int_equal(mkdir(f->root, 0755), 0);
        char p[256];
        snprintf(p, sizeof p, "%s/bin", f->root);
        assert_int_equal(mkdir(p, 0755), 0);
        if (access("/bin/busybox", R_OK) == 0) {
                snprintf(p, sizeof p, "%s/bin/busybox", f->root);
                copy_file("/bin/busybox", p, 0755);
                for (size_t i = 0; applets[i]; i++) {
                        snprintf(p, sizeof p, "%s/bin/%s", f->root, applets[i]);
                        assert_int_equal(symlink("busybox", p), 0);
                }
        }
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        assert_int_equal(fs_rm_rf_at(AT_FDCWD, f->top), 0);
        free(f);
        return 0;
}

static struct sandbox_opts base_opts(void) {
        return (struct sandbox_opts){ .hostname = "testbox", .source_date_epoch = 1700000000, .timeout_s = 20 };
}

/* Run argv; returns r, output in *out (caller frees). */
static int run(struct fixture *f, const struct sandbox_opts *o, char **out, struct mkm_err *err,
               const char *a0, ...) {
        char *argv[16];
        size_t n = 0;
        va_list ap;
        argv[n++] = (char *)a0;
        va_start(ap, a0);
        for (char *s; (s = va_arg(ap, char *));)
                argv[n++] = s;
        va_end(ap);
        argv[n] = NULL;
        return sandbox_run(NULL, f->root, argv, o, out, err);
}

static void test_echo(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        _cleanup_free_ char *out = NULL;
        assert_int_equal(run(f, &o, &out, &err, "sh", "-c", "echo hi; echo err >&2", NULL), 0);
        assert_string_equal(out, "hi\nerr\n");
}

static void test_exit_status(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        _cleanup_free_ char *out = NULL;
        int r = run(f, &o, &out, &err, "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do echo line$i; done; exit 3",
                    NULL);
        assert_int_equal(r, -MKM_E_SCRIPT);
        assert_int_equal(err.code, -MKM_E_SCRIPT);
        /* the last 12 lines follow the status */
        assert_string_equal(err.msg, "'sh -c for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do echo line$i; done; exit 3' "
                                     "exited with status 3:\nline3\nline4\nline5\nline6\nline7\nline8\nline9\nline10\n"
                                     "line11\nline12\nline13\nline14");
        assert_non_null(strstr(out, "line1\n"));

        /* silent failure: no colon, no tail */
        assert_int_equal(run(f, &o, NULL, &err, "false", NULL), -MKM_E_SCRIPT);
        assert_string_equal(err.msg, "'false' exited with status 1");
}

static void test_hostname_env_umask(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        char host_before[256] = "", host_after[256] = "";
        gethostname(host_before, sizeof host_before);
        struct sandbox_opts o = base_opts();
        char *extra[] = { "FOO=bar", "TZ=Europe/Paris", NULL };
        struct mkm_err err = {};
        _cleanup_free_ char *h = NULL, *e = NULL, *e2 = NULL, *u = NULL, *h2 = NULL;
        assert_int_equal(run(f, &o, &h, &err, "hostname", NULL), 0);
        assert_string_equal(h, "testbox\n");
        o.hostname = NULL;
        assert_int_equal(run(f, &o, &h2, &err, "hostname", NULL), 0);
        assert_string_equal(h2, "mkmachine\n");
        gethostname(host_after, sizeof host_after);
        assert_string_equal(host_before, host_after);

        o = base_opts();
        assert_int_equal(run(f, &o, &e, &err, "env", NULL), 0);
        assert_string_equal(e, "PATH=/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin\nLANG=C.UTF-8\n"
                               "TZ=UTC\nHOME=/root\nSOURCE_DATE_EPOCH=1700000000\n");
        o.env = extra;
        o.source_date_epoch = -1;
        assert_int_equal(run(f, &o, &e2, &err, "env", NULL), 0);
        assert_string_equal(e2, "PATH=/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin\nLANG=C.UTF-8\n"
                                "HOME=/root\nFOO=bar\nTZ=Europe/Paris\n");

        o = base_opts();
        assert_int_equal(run(f, &o, &u, &err, "sh", "-c", "umask; touch /tmp/x; stat -c %a /tmp/x", NULL), 0);
        assert_string_equal(u, "0022\n644\n");

        char *bad[] = { "NOEQUALS", NULL };
        o.env = bad;
        assert_int_equal(run(f, &o, NULL, &err, "true", NULL), -EINVAL);
}

static void test_pid_proc(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        _cleanup_free_ char *out = NULL, *c = NULL;
        assert_int_equal(run(f, &o, &out, &err, "sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'", NULL), 0);
        /* PID 1 is the shell; the only other process is the pipeline's (ls, grep) */
        int pid1 = 0, nprocs = 0;
        assert_int_equal(sscanf(out, "%d\n%d", &pid1, &nprocs), 2);
        assert_int_equal(pid1, 1);
        assert_true(nprocs <= 3);
        assert_int_equal(run(f, &o, &c, &err, "cat", "/proc/1/cmdline", NULL), 0);
        assert_memory_equal(c, "cat\0/proc/1/cmdline\0", 20);
}

static void test_dev(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        _cleanup_free_ char *out = NULL;
        assert_int_equal(run(f, &o, &out, &err, "sh", "-c",
                             "head -c 4 /dev/zero | wc -c; head -c 8 /dev/urandom | wc -c; echo x >/dev/null && echo null-ok; "
                             "test -e /dev/fuse || echo no-fuse; test -c /dev/pts/ptmx && echo pts; "
                             "readlink /dev/ptmx; readlink /dev/fd; ls /dev",
                             NULL),
                         0);
        assert_string_equal(out, "4\n8\nnull-ok\nno-fuse\npts\npts/ptmx\n/proc/self/fd\n"
                                 "fd\nfull\nnull\nptmx\npts\nrandom\nshm\nstderr\nstdin\nstdout\ntty\nurandom\nzero\n");
}

/* The tree is mounted nodev in the sandbox: a device node in it (nothing puts one there today)
 * opens nothing, while the sandbox's own /dev works. */
static void test_tree_nodev(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        _cleanup_free_ char *node = NULL;
        assert_true(asprintf(&node, "%s/zero-in-tree", f->root) > 0);
        if (mknod(node, S_IFCHR | 0666, makedev(1, 5)) < 0)
                skip();
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        _cleanup_free_ char *out = NULL;
        assert_int_equal(run(f, &o, &out, &err, "sh", "-c",
                             "head -c 4 /zero-in-tree >/dev/null 2>&1 && echo opened || echo refused; head -c 4 /dev/zero | wc -c",
                             NULL),
                         0);
        (void)unlink(node);
        assert_string_equal(out, "refused\n4\n");
}

static char *host_netns(void) {
        char buf[128];
        ssize_t n = readlink("/proc/self/ns/net", buf, sizeof buf - 1);
        assert_true(n > 0);
        buf[n] = 0;
        return strdup(buf);
}

static void test_network(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        _cleanup_free_ char *out = NULL, *ns1 = NULL, *ns2 = NULL, *hostns = host_netns();
        assert_int_equal(run(f, &o, &out, &err, "grep", "-c", ":", "/proc/net/dev", NULL), 0);
        assert_string_equal(out, "1\n");
        free(out);
        out = NULL;
        assert_int_equal(run(f, &o, &out, &err, "grep", "-q", "^ *lo:", "/proc/net/dev", NULL), 0);
        assert_int_equal(run(f, &o, &ns1, &err, "readlink", "/proc/self/ns/net", NULL), 0);
        assert_string_not_equal(ns1, "");
        ns1[strcspn(ns1, "\n")] = 0;
        assert_string_not_equal(ns1, hostns);

        /* root of the sandbox may bind ports below 1024 in its own network namespace (as before
         * it had a user namespace), not in the host's */
        _cleanup_free_ char *ports = NULL, *host_ports = NULL, *ports2 = NULL;
        assert_int_equal(run(f, &o, &ports, &err, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start", NULL), 0);
        assert_string_equal(ports, "0\n");
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, "/proc/sys/net/ipv4/ip_unprivileged_port_start", 64,
                                                &host_ports, NULL), 0);

        o.network = true;
        assert_int_equal(run(f, &o, &ns2, &err, "readlink", "/proc/self/ns/net", NULL), 0);
        ns2[strcspn(ns2, "\n")] = 0;
        assert_string_equal(ns2, hostns);
        assert_int_equal(run(f, &o, &ports2, &err, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start", NULL), 0);
        assert_string_equal(ports2, host_ports);
}

static void test_stdin(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        _cleanup_free_ char *out = NULL, *big_out = NULL, *none = NULL;
        o.stdin_data = "hello\nworld\n";
        o.stdin_len = 12;
        assert_int_equal(run(f, &o, &out, &err, "cat", NULL), 0);
        assert_string_equal(out, "hello\nworld\n");

        /* more than a pipe holds, to a reader that stops early: no SIGPIPE for us */
        size_t len = 4u << 20;
        _cleanup_free_ char *big = malloc(len);
        memset(big, 'a', len);
        o.stdin_data = big;
        o.stdin_len = len;
        assert_int_equal(run(f, &o, &big_out, &err, "head", "-c", "3", NULL), 0);
        assert_string_equal(big_out, "aaa");

        o.stdin_data = NULL;
        o.stdin_len = 0;
        assert_int_equal(run(f, &o, &none, &err, "cat", NULL), 0);
        assert_string_equal(none, "");
}

/* Processes on the host whose command line is exactly argv (NUL-separated). */
static int count_procs(const char *cmdline, size_t len) {
        DIR *d = opendir("/proc");
        assert_non_null(d);
        int n = 0;
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue;
                char p[64], buf[256];
                snprintf(p, sizeof p, "/proc/%s/cmdline", de->d_name);
                int fd = open(p, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                ssize_t r = read(fd, buf, sizeof buf);
                close(fd);
                if (r == (ssize_t)len && memcmp(buf, cmdline, len) == 0)
                        n++;
        }
        closedir(d);
        return n;
}

static void test_timeout_and_leftovers(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        struct sandbox_opts o = base_opts();
        o.timeout_s = 1;
        struct mkm_err err = {};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(run(f, &o, NULL, &err, "sleep", "98761", NULL), -MKM_E_SCRIPT);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_string_equal(err.msg, "'sleep 98761' timed out after 1 s");
        assert_true(t1.tv_sec - t0.tv_sec < 5);
        assert_int_equal(count_procs("sleep\00098761", 12), 0);

        /* a background child of a killed shell dies with it */
        assert_int_equal(run(f, &o, NULL, &err, "sh", "-c", "sleep 98762 & sleep 98763", NULL), -MKM_E_SCRIPT);
        assert_int_equal(count_procs("sleep\00098762", 12), 0);
        assert_int_equal(count_procs("sleep\00098763", 12), 0);

        /* a command that closes its output still times out */
        assert_int_equal(run(f, &o, NULL, &err, "sh", "-c", "exec >/dev/null 2>&1; sleep 98765", NULL), -MKM_E_SCRIPT);
        assert_string_equal(err.msg, "'sh -c exec >/dev/null 2>&1; sleep 98765' timed out after 1 s");
        assert_int_equal(count_procs("sleep\00098765", 12), 0);

        /* ... and one of a shell that exits normally, even holding the output pipe */
        o.timeout_s = 20;
        _cleanup_free_ char *out = NULL;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(run(f, &o, &out, &err, "sh", "-c", "sleep 98764 & echo started", NULL), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_string_equal(out, "started\n");
        assert_true(t1.tv_sec - t0.tv_sec < 5);
        assert_int_equal(count_procs("sleep\00098764", 12), 0);
}

static char *read_mountinfo(void) {
        char *s = NULL;
        assert_int_equal(fs_read_file_follow_at(AT_FDCWD, "/proc/self/mountinfo", 16u << 20, &s, NULL), 0);
        return s;
}

static void test_no_traces(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        _cleanup_free_ char *before = read_mountinfo(), *out = NULL;
        assert_null(strstr(before, f->root));
        assert_int_equal(run(f, &o, &out, &err, "sh", "-c",
                             "echo x >/tmp/inside && echo y >/run/inside && mkdir /dev/shm/d && cat /tmp/inside /run/inside", NULL),
                         0);
        assert_string_equal(out, "x\ny\n");
        _cleanup_free_ char *after = read_mountinfo();
        assert_null(strstr(after, f->root));
        assert_string_equal(before, after);
        char p[256];
        struct stat st;
        snprintf(p, sizeof p, "%s/tmp/inside", f->root);
        assert_int_equal(lstat(p, &st), -1);
        snprintf(p, sizeof p, "%s/run/inside", f->root);
        assert_int_equal(lstat(p, &st), -1);
        snprintf(p, sizeof p, "%s/dev/shm", f->root);
        assert_int_equal(lstat(p, &st), -1);
        /* the mount points were created with Arch's modes, owned by root, and are empty */
        static const struct {
                const char *name;
                mode_t mode;
        } mps[] = { { "proc", 0555 }, { "dev", 0755 }, { "tmp", 01777 }, { "run", 0755 } };
        for (size_t i = 0; i < 4; i++) {
                snprintf(p, sizeof p, "%s/%s", f->root, mps[i].name);
                assert_int_equal(lstat(p, &st), 0);
                assert_true(S_ISDIR(st.st_mode));
                assert_int_equal(st.st_mode & 07777, mps[i].mode);
                assert_int_equal(st.st_uid, 0);
                assert_int_equal(rmdir(p), 0); /* empty */
        }
}

static void test_files(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        struct sandbox_opts o = base_opts();
        struct sandbox_file files[] = { { .path = "/tmp/alpm_Ab12Cd/.INSTALL", .data = "post_install() { echo $1; }\n",
                                          .len = 28 } };
        o.files = files;
        o.n_files = 1;
        struct mkm_err err = {};
        _cleanup_free_ char *out = NULL;
        assert_int_equal(run(f, &o, &out, &err, "sh", "-c",
                             ". /tmp/alpm_Ab12Cd/.INSTALL; post_install 1.0-1; stat -c '%a %n' /tmp/alpm_Ab12Cd "
                             "/tmp/alpm_Ab12Cd/.INSTALL",
                             NULL),
                         0);
        assert_string_equal(out, "1.0-1\n700 /tmp/alpm_Ab12Cd\n644 /tmp/alpm_Ab12Cd/.INSTALL\n");
        char p[256];
        snprintf(p, sizeof p, "%s/tmp/alpm_Ab12Cd", f->root);
        assert_int_equal(access(p, F_OK), -1);

        struct sandbox_file bad[] = { { .path = "/etc/passwd", .data = "x", .len = 1 } };
        o.files = bad;
        assert_int_equal(run(f, &o, NULL, &err, "true", NULL), -EINVAL);
        assert_string_equal(err.msg, "sandbox: file '/etc/passwd' must be under /tmp/ or /run/");
        struct sandbox_file dots[] = { { .path = "/tmp/../etc/passwd", .data = "x", .len = 1 } };
        o.files = dots;
        assert_int_equal(run(f, &o, NULL, &err, "true", NULL), -EINVAL);
}

/* mask_true: a command is covered by the tree's /usr/bin/true while the sandbox runs (as the
 * Debian backend does with ischroot), read-only; the tree keeps its own file; a path missing from
 * the tree is left alone. */
static void test_mask_true(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        char p[512];
        snprintf(p, sizeof p, "%s/usr", f->root);
        (void)mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/usr/bin", f->root);
        (void)mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/usr/bin/true", f->root);
        write_text(p, "#!/bin/sh\nexit 0\n", 0755);
        snprintf(p, sizeof p, "%s/usr/bin/ischroot", f->root);
        write_text(p, "#!/bin/sh\nexit 1\n", 0755);
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        _cleanup_free_ char *out = NULL;
        assert_int_equal(run(f, &o, &out, &err, "sh", "-c", "/usr/bin/ischroot; echo $?", NULL), 0);
        assert_string_equal(out, "1\n");
        free(TAKE_PTR(out));
        o.mask_true = (const char *const[]){ "/usr/bin/ischroot", "/usr/bin/absent", NULL };
        assert_int_equal(run(f, &o, &out, &err, "sh", "-c",
                             "/usr/bin/ischroot; echo $?; echo x > /usr/bin/ischroot || echo read-only", NULL), 0);
        assert_non_null(strstr(out, "0\n"));
        assert_non_null(strstr(out, "read-only\n"));
        _cleanup_free_ char *kept = read_text(p);
        assert_string_equal(kept, "#!/bin/sh\nexit 1\n");
        o.mask_true = (const char *const[]){ "usr/bin/ischroot", NULL };
        assert_int_equal(run(f, &o, NULL, &err, "true", NULL), -EINVAL);
}

static void test_missing_command(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        assert_int_equal(run(f, &o, NULL, &err, "nosuchcmd", "arg", NULL), -MKM_E_SCRIPT);
        assert_string_equal(err.msg, "'nosuchcmd': command not found in the tree "
                                     "(PATH=/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin)");
        assert_int_equal(run(f, &o, NULL, &err, "/usr/bin/nope", NULL), -MKM_E_SCRIPT);
        assert_string_equal(err.msg, "'/usr/bin/nope': no such file in the tree");
        /* a host binary is not reachable through an absolute path */
        assert_int_equal(run(f, &o, NULL, &err, "/usr/bin/env", NULL), -MKM_E_SCRIPT);
        /* not executable */
        char p[256];
        snprintf(p, sizeof p, "%s/bin/notexec", f->root);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
        /* Found but not startable: the command never ran, a build error (not -MKM_E_SCRIPT, which
         * callers may downgrade to a warning). */
        assert_int_equal(run(f, &o, NULL, &err, "/bin/notexec", NULL), -EACCES);
        assert_string_equal(err.msg, "sandbox: cannot execute '/bin/notexec': Permission denied");
        /* a script whose interpreter is missing */
        snprintf(p, sizeof p, "%s/bin/badinterp", f->root);
        fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "#!/nope/interp\n", 15), 15);
        close(fd);
        assert_int_equal(run(f, &o, NULL, &err, "/bin/badinterp", NULL), -ENOENT);
        assert_string_equal(err.msg, "sandbox: cannot execute '/bin/badinterp': No such file or directory");
}

/* A thread forking like gpgme does (fork, a pause before exec) while the install writes a fresh
 * executable and runs it at once: the child would inherit the write fd and execve() in the sandbox
 * would fail with ETXTBSY ("Text file busy"). util/forklock.h and the bounded retry close it. */
static atomic_bool forker_stop;

static void *forker(void *arg) {
        (void)arg;
        pid_t kids[64] = {};    /* its own children only: the sandbox's are not ours to reap */
        for (unsigned n = 0; !atomic_load(&forker_stop); n++) {
                pid_t *slot = &kids[n % ELEMENTSOF(kids)];
                if (*slot > 0)
                        (void)waitpid(*slot, NULL, 0);
                *slot = fork();
                if (*slot == 0) {
                        struct timespec ts = { .tv_nsec = 20 * 1000 * 1000 };
                        (void)nanosleep(&ts, NULL);
                        _exit(0);
                }
                struct timespec ts = { .tv_nsec = 500 * 1000 };
                (void)nanosleep(&ts, NULL);
        }
        for (size_t i = 0; i < ELEMENTSOF(kids); i++)
                if (kids[i] > 0)
                        (void)waitpid(kids[i], NULL, 0);
        return NULL;
}

static void test_text_file_busy(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        forklock_write_begin();         /* registers the atfork handlers, as the first extract does */
        forklock_write_end();
        atomic_store(&forker_stop, false);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, forker, NULL), 0);
        struct sandbox_opts o = base_opts();
        int failures = 0;
        char first[512] = "";
        for (int i = 0; i < 30; i++) {
                char p[256], name[64];
                snprintf(name, sizeof name, "/bin/fresh%d", i);
                snprintf(p, sizeof p, "%s%s", f->root, name);
                forklock_write_begin();
                int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
                assert_true(fd >= 0);
                /* written in pieces, as a large binary is: a window that forks fall into */
                for (int k = 0; k < 4; k++) {
                        assert_int_equal(write(fd, k ? "\n" : "#!/bin/sh\n", k ? 1 : 10), k ? 1 : 10);
                        struct timespec ts = { .tv_nsec = 500 * 1000 };
                        (void)nanosleep(&ts, NULL);
                }
                close(fd);
                forklock_write_end();
                struct mkm_err err = {};
                int r = run(f, &o, NULL, &err, name, NULL);
                if (r < 0 && failures++ == 0)
                        snprintf(first, sizeof first, "%s", err.msg);
        }
        atomic_store(&forker_stop, true);
        assert_int_equal(pthread_join(t, NULL), 0);
        if (failures)
                print_message("%d of 30 runs failed, the first: %s\n", failures, first);
        assert_int_equal(failures, 0);
}

/* Inside a chroot into a plain directory, pivot_root(2) fails with EINVAL: say why instead. */
static void test_chroot_not_mount_point(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (chroot(f->top) < 0 || chdir("/") < 0)
                        _exit(3);
                char *argv[] = { "true", NULL };
                struct sandbox_opts o = base_opts();
                struct mkm_err err = {};
                int r = sandbox_run(NULL, "/root", argv, &o, NULL, &err);
                if (r != -EINVAL)
                        _exit(1);
                _exit(strstr(err.msg, "root directory is not a mount point (running inside a chroot?)") ? 0 : 2);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_hostile_mount_point(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        /* The tree's /run points "outside": it resolves inside the new root, never on the host. */
        char host_dir[192], p[256];
        snprintf(host_dir, sizeof host_dir, "%s/hostdir", f->top);
        assert_int_equal(mkdir(host_dir, 0755), 0);
        snprintf(p, sizeof p, "%s/run", f->root);
        char target[256];
        snprintf(target, sizeof target, "../../../../../..%s", host_dir);
        assert_int_equal(symlink(target, p), 0);
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        /* A setup failure keeps its errno: callers tell it from the command's own failure. */
        assert_int_equal(run(f, &o, NULL, &err, "true", NULL), -ENOENT);
        assert_string_equal(err.msg, "sandbox: mounting /run: No such file or directory");
        _cleanup_free_ char *mi = read_mountinfo();
        assert_null(strstr(mi, host_dir));
        assert_int_equal(rmdir(host_dir), 0);   /* still empty */
}

/* Package code runs as root in the tree, not as root of the host. */
static void test_privileges_dropped(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        _cleanup_free_ char *out = NULL;
        assert_int_equal(run(f, &o, &out, &err, "sh", "-c",
                             "grep -E '^Cap(Eff|Bnd)|^NoNewPrivs' /proc/self/status;"
                             "echo x > /proc/sys/kernel/core_pattern 2>/dev/null && echo core_pattern-written;"
                             "echo x > /proc/sysrq-trigger 2>/dev/null && echo sysrq-written;"
                             "mknod /blk b 7 0 2>/dev/null && echo mknod-ok;"
                             "mount -t tmpfs none /tmp 2>/dev/null && echo mount-ok;"
                             "hostname evil 2>/dev/null && echo hostname-ok;"
                             "unshare -U true 2>/dev/null && echo userns-ok;"
                             "grep '^Seccomp:' /proc/self/status;"
                             "touch /owned && chown 12:34 /owned && chmod 4755 /owned && stat -c '%u:%g %a' /owned",
                             NULL),
                         0);
        print_message("%s", out);
        /* CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_BROADCAST
         * IPC_LOCK IPC_OWNER SYS_CHROOT SYS_NICE SYS_RESOURCE LEASE AUDIT_WRITE SETFCAP: exactly,
         * whatever the host's bounding set, since they are the sandbox's user namespace's. */
        assert_non_null(strstr(out, "CapEff:\t00000000b184cdfb\n"));
        assert_non_null(strstr(out, "CapBnd:\t00000000b184cdfb\n"));
        assert_non_null(strstr(out, "NoNewPrivs:\t1\n"));
        assert_null(strstr(out, "core_pattern-written"));
        assert_null(strstr(out, "sysrq-written"));
        assert_null(strstr(out, "mknod-ok"));
        assert_null(strstr(out, "mount-ok"));
        assert_null(strstr(out, "hostname-ok"));
        /* seccomp: no new user namespace (it would hand back every capability). */
        assert_null(strstr(out, "userns-ok"));
        assert_non_null(strstr(out, "Seccomp:\t2\n"));
        /* What installing needs still works. */
        assert_non_null(strstr(out, "12:34 4755\n"));
}

/* The kernel keyring is not namespaced: package code must not reach root's keys. A tiny static
 * program calls keyctl, add_key, bpf, clone3, unshare(CLONE_NEWUSER) and clone(CLONE_NEWUSER)
 * directly. */
static void test_seccomp_syscalls(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        char src[256], bin[256], cmd[1024];
        snprintf(src, sizeof src, "%s/probe.c", f->top);
        snprintf(bin, sizeof bin, "%s/bin/probe", f->root);
        FILE *fp = fopen(src, "w");
        assert_non_null(fp);
        fputs("#define _GNU_SOURCE\n#include <errno.h>\n#include <sched.h>\n#include <stdio.h>\n#include <string.h>\n"
              "#include <signal.h>\n#include <sys/syscall.h>\n#include <sys/wait.h>\n#include <unistd.h>\n"
              "static void t(const char *n, long r) { printf(\"%s %s\\n\", n, r < 0 ? strerrorname_np(errno) : \"ok\"); }\n"
              "int main(void) {\n"
              "  t(\"keyctl\", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0));\n"
              "  t(\"add_key\", syscall(SYS_add_key, \"user\", \"k\", \"v\", 1, -3));\n"
              "  t(\"bpf\", syscall(SYS_bpf, 0, 0, 0));\n"
              "  t(\"clone3\", syscall(SYS_clone3, 0, 0));\n"
              "  t(\"unshare-user\", unshare(CLONE_NEWUSER));\n"
              "  long c = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);\n"
              "  if (c == 0) _exit(0);\n"
              "  if (c > 0) waitpid((pid_t)c, NULL, 0);\n"
              "  t(\"clone-user\", c);\n"
              "  t(\"getpid\", syscall(SYS_getpid));\n"
              "  return 0;\n}\n", fp);
        fclose(fp);
        snprintf(cmd, sizeof cmd, "cc -static -O0 -o '%s' '%s' 2>/dev/null", bin, src);
        if (system(cmd) != 0) {
                print_message("skipped: cannot build a static probe (no static libc)\n");
                skip();
        }
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        _cleanup_free_ char *out = NULL;
        assert_int_equal(run(f, &o, &out, &err, "/bin/probe", NULL), 0);
        print_message("%s", out);
        assert_non_null(strstr(out, "keyctl EPERM\n"));
        assert_non_null(strstr(out, "add_key EPERM\n"));
        assert_non_null(strstr(out, "bpf EPERM\n"));
        assert_non_null(strstr(out, "clone3 ENOSYS\n"));
        assert_non_null(strstr(out, "unshare-user EPERM\n"));
        assert_non_null(strstr(out, "clone-user EPERM\n"));
        assert_non_null(strstr(out, "getpid ok\n"));
}

/* no_sync: the sync calls return 0 without doing anything. Observable on a pipe, which fsync
 * and fdatasync refuse with EINVAL: busybox sync fails on it normally and succeeds with no_sync. */
static void test_no_sync(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        _cleanup_free_ char *out1 = NULL, *out2 = NULL, *out3 = NULL;
        o.stdin_data = "x";
        o.stdin_len = 1;
        assert_int_equal(run(f, &o, &out1, &err, "busybox", "sync", "-d", "/proc/self/fd/0", NULL), -MKM_E_SCRIPT);
        assert_non_null(strstr(err.msg, "Invalid argument"));   /* the command ran and fdatasync failed */
        o.no_sync = true;
        int q2 = run(f, &o, &out2, &err, "busybox", "sync", "-d", "/proc/self/fd/0", NULL);
        if (q2 != 0)
                fail_msg("%s", err.msg);
        int q3 = run(f, &o, &out3, &err, "busybox", "sync", "/proc/self/fd/0", NULL);
        if (q3 != 0)
                fail_msg("%s", err.msg);
}

/* Output beyond SANDBOX_OUTPUT_MAX is dropped, and the kept output ends saying how much was. */
static void test_output_cap(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        _cleanup_free_ char *out = NULL;
        char cmd[64];
        (void)snprintf(cmd, sizeof cmd, "yes | head -c %u", SANDBOX_OUTPUT_MAX + 100000u);
        assert_int_equal(run(f, &o, &out, &err, "sh", "-c", cmd, NULL), 0);
        static const char note[] = "\n[mkmachine: 100000 more bytes of output dropped]\n";
        size_t len = strlen(out);
        assert_int_equal(len, SANDBOX_OUTPUT_MAX);
        assert_string_equal(out + len - strlen(note), note);
        assert_memory_equal(out, "y\ny\ny\n", 6);
}

static void collect_debug(void *userdata, const struct mkm_event *ev) {
        char **log = userdata, *more = NULL;
        if (ev->type != MKM_EV_LOG || ev->level != MKM_LOG_DEBUG)
                return;
        assert_true(asprintf(&more, "%s%s|", *log, ev->text) > 0);
        free(*log);
        *log = more;
}

/* Each line of output is logged at debug level under the command's name, on success and failure. */
static void test_output_logged(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        char *log = strdup("");
        struct mkm_ctx ctx = { .events = { .fn = collect_debug, .userdata = &log } };
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        char *argv[] = { (char *)"sh", (char *)"-c", (char *)"echo one; echo two >&2; echo three; exit 4", NULL };
        assert_int_equal(sandbox_run(&ctx, f->root, argv, &o, NULL, &err), -MKM_E_SCRIPT);
        print_message("%s\n", log);
        const char *first = strstr(log, "sh: ");
        assert_non_null(first);
        assert_string_equal(first, "sh: one|sh: two|sh: three|");
        free(log);
}

static size_t count_in(const char *hay, const char *needle) {
        size_t n = 0;
        for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

struct cache_worker {
        struct fixture *f;
        struct mkm_ctx *ctx;
        int failures;
};

static void *cache_worker(void *userdata) {
        struct cache_worker *w = userdata;
        struct sandbox_opts o = base_opts();
        for (int i = 0; i < 3; i++) {
                struct mkm_err err = {};
                o.no_sync = i == 2;
                char *argv[] = { (char *)"true", NULL };
                if (sandbox_run(w->ctx, w->f->root, argv, &o, NULL, &err) != 0)
                        w->failures++;
        }
        return NULL;
}

/* The seccomp program is compiled once per build (per cache and variant), the user namespace
 * made once, also when several threads run commands at the same time; without a cache every
 * run makes its own. */
static void test_cache_once_per_build(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        char *log = strdup("");
        struct mkm_ctx ctx = { .events = { .fn = collect_debug, .userdata = &log } };
        assert_int_equal(sandbox_cache_new(0, &ctx.sandbox), -EINVAL);
        assert_int_equal(sandbox_cache_new(0xFFFF0001u, &ctx.sandbox), -EINVAL);
        assert_int_equal(sandbox_cache_new(0x00120000u, &ctx.sandbox), 0);
        assert_int_equal(sandbox_cache_uid_base(ctx.sandbox), 0x00120000u);
        struct cache_worker w[4];
        pthread_t t[4];
        for (size_t i = 0; i < 4; i++) {
                w[i] = (struct cache_worker){ .f = f, .ctx = &ctx };
                assert_int_equal(pthread_create(&t[i], NULL, cache_worker, &w[i]), 0);
        }
        for (size_t i = 0; i < 4; i++) {
                assert_int_equal(pthread_join(t[i], NULL), 0);
                assert_int_equal(w[i].failures, 0);
        }
        print_message("%s\n", log);
        assert_int_equal(count_in(log, "sandbox: compiled the seccomp filter ("), 1);
        assert_int_equal(count_in(log, "sandbox: compiled the seccomp filter with no-op syncs ("), 1);
        assert_int_equal(count_in(log, "sandbox: a user namespace for UIDs and GIDs 1179648-1245183|"), 1);
        /* the commands ran as the cache's base, seen from the host */
        _cleanup_free_ char *out = NULL;
        struct sandbox_opts o = base_opts();
        struct mkm_err err = {};
        char *argv[] = { (char *)"cat", (char *)"/proc/self/uid_map", (char *)"/proc/self/gid_map", NULL };
        assert_int_equal(sandbox_run(&ctx, f->root, argv, &o, &out, &err), 0);
        assert_string_equal(out, "         0    1179648      65536\n         0    1179648      65536\n");
        ctx.sandbox = sandbox_cache_free(ctx.sandbox);
        assert_null(ctx.sandbox);

        /* no cache: each run compiles again, and maps the default base */
        free(log);
        log = strdup("");
        for (int i = 0; i < 2; i++)
                assert_int_equal(sandbox_run(&ctx, f->root, (char *[]){ (char *)"true", NULL }, &o, NULL, &err), 0);
        assert_int_equal(count_in(log, "sandbox: compiled the seccomp filter ("), 2);
        char want[96];
        snprintf(want, sizeof want, "UIDs and GIDs %u-%u|", SANDBOX_UID_BASE_DEFAULT,
                 SANDBOX_UID_BASE_DEFAULT + SANDBOX_UID_RANGE - 1);
        assert_int_equal(count_in(log, want), 2);
        free(log);
}

/* Through the idmapped mount, owners in the tree are what root of the host would leave: UID 0 in
 * the sandbox reads and writes on-disk 0 (and 12:34 is 12:34), though the command runs as an
 * unprivileged UID of the host; what the sandbox makes for it (/dev, /tmp, /run, its pipes) is
 * its root's. */
static void test_owners_idmapped(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        char p[256];
        snprintf(p, sizeof p, "%s/hostmade", f->root);
        write_text(p, "x", 0600);
        assert_int_equal(chown(p, 1000, 1001), 0);
        snprintf(p, sizeof p, "%s/high", f->root);
        write_text(p, "x", 0644);
        assert_int_equal(chown(p, 70000, 70000), 0);
        struct sandbox_opts o = base_opts();
        o.stdin_data = "from stdin\n";
        o.stdin_len = 11;
        struct mkm_err err = {};
        _cleanup_free_ char *out = NULL;
        int r = run(f, &o, &out, &err, "sh", "-c",
                    "id -u; id -g; stat -c '%u:%g %n' /bin/busybox /hostmade /high /dev/null /dev/shm /tmp /run /proc/self/fd/0;"
                    "cat /dev/stdin; echo to-stdout >/dev/stdout;"
                    "mkdir /made && touch /made/file && chown 12:34 /made/file && chmod 4755 /made/file && ln -s x /made/link;"
                    "echo appended >> /hostmade && echo appended-ok;"
                    "chown 70000 /made/file 2>/dev/null || echo no-unmapped-chown",
                    NULL);
        print_message("%s\n", out);
        if (r != 0)
                fail_msg("%s", err.msg);
        assert_string_equal(out, "0\n0\n0:0 /bin/busybox\n1000:1001 /hostmade\n65534:65534 /high\n0:0 /dev/null\n"
                                 "0:0 /dev/shm\n0:0 /tmp\n0:0 /run\n0:0 /proc/self/fd/0\nfrom stdin\nto-stdout\n"
                                 "appended-ok\nno-unmapped-chown\n");
        struct stat st;
        snprintf(p, sizeof p, "%s/made", f->root);
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_uid, 0);
        assert_int_equal(st.st_gid, 0);
        snprintf(p, sizeof p, "%s/made/file", f->root);
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_uid, 12);
        assert_int_equal(st.st_gid, 34);
        assert_int_equal(st.st_mode & 07777, 04755);
        snprintf(p, sizeof p, "%s/made/link", f->root);
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_uid, 0);
        snprintf(p, sizeof p, "%s/hostmade", f->root);
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_uid, 1000);
        assert_int_equal(st.st_gid, 1001);
}

static atomic_bool spawner_stop;

static void *noop_thread(void *arg) {
        return arg;
}

/* Creates and joins threads without pause, as a build's pipeline does now and then. */
static void *spawner(void *arg) {
        (void)arg;
        while (!atomic_load(&spawner_stop)) {
                pthread_t t;
                if (pthread_create(&t, NULL, noop_thread, NULL) == 0)
                        (void)pthread_join(t, NULL);
        }
        return NULL;
}

/* The child of the sandbox's raw clone holds a copy of libc's thread list: a libc call that
 * talks to every thread (setresuid and friends "broadcast" to all threads) would wait forever
 * for one that was being created at the moment of the clone. Runs while threads come and go
 * must all finish. */
static void test_threads_being_created(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        atomic_store(&spawner_stop, false);
        pthread_t t[2];
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                assert_int_equal(pthread_create(&t[i], NULL, spawner, NULL), 0);
        struct sandbox_opts o = base_opts();
        o.timeout_s = 5;
        int failures = 0;
        char first[512] = "";
        for (int i = 0; i < 60; i++) {
                struct mkm_err err = {};
                if (run(f, &o, NULL, &err, "true", NULL) != 0 && failures++ == 0)
                        snprintf(first, sizeof first, "%s", err.msg);
        }
        atomic_store(&spawner_stop, true);
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                assert_int_equal(pthread_join(t[i], NULL), 0);
        if (failures)
                print_message("%d of 60 runs failed, the first: %s\n", failures, first);
        assert_int_equal(failures, 0);
}

/* A tree on a file system without idmapped mounts (ramfs has none) is refused, naming it. */
static void test_no_idmap_fs(void **state) {
        struct fixture *f = *state;
        if (!can_run())
                skip();
        char mnt[192], root[256];
        snprintf(mnt, sizeof mnt, "%s/ramfs", f->top);
        assert_int_equal(mkdir(mnt, 0755), 0);
        if (mount("ramfs", mnt, "ramfs", 0, "mode=0755") < 0) {
                print_message("skipped: cannot mount a ramfs: %s\n", strerror(errno));
                skip();
        }
        snprintf(root, sizeof root, "%s/root", mnt);
        assert_int_equal(mkdir(root, 0755), 0);
        struct mkm_err err = {};
        char *argv[] = { (char *)"/bin/busybox", (char *)"true", NULL };
        char p[300];
        snprintf(p, sizeof p, "%s/bin", root);
        assert_int_equal(mkdir(p, 0755), 0);
        snprintf(p, sizeof p, "%s/bin/busybox", root);
        copy_file("/bin/busybox", p, 0755);
        struct sandbox_opts o = base_opts();
        int r = sandbox_run(NULL, root, argv, &o, NULL, &err);
        (void)umount2(mnt, MNT_DETACH);
        assert_int_equal(r, -EOPNOTSUPP);
        print_message("%s\n", err.msg);
        char want[512];
        snprintf(want, sizeof want, "sandbox: cannot idmap the tree %s: Invalid argument; its file system (ramfs) does "
                                    "not support idmapped mounts", root);
        assert_memory_equal(err.msg, want, strlen(want));
}

static void test_bad_args(void **state) {
        struct fixture *f = *state;
        struct mkm_err err = {};
        char *argv[] = { "true", NULL };
        assert_int_equal(sandbox_run(NULL, "relative", argv, NULL, NULL, &err), -EINVAL);
        assert_string_equal(err.msg, "sandbox: needs an absolute root and a command");
        char *empty[] = { NULL };
        assert_int_equal(sandbox_run(NULL, f->root, empty, NULL, NULL, &err), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_echo, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exit_status, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostname_env_umask, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pid_proc, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tree_nodev, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dev, setup, teardown),
                cmocka_unit_test_setup_teardown(test_network, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stdin, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout_and_leftovers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_traces, setup, teardown),
                cmocka_unit_test_setup_teardown(test_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mask_true, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_command, setup, teardown),
                cmocka_unit_test_setup_teardown(test_text_file_busy, setup, teardown),
                cmocka_unit_test_setup_teardown(test_chroot_not_mount_point, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_mount_point, setup, teardown),
                cmocka_unit_test_setup_teardown(test_privileges_dropped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_seccomp_syscalls, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_sync, setup, teardown),
                cmocka_unit_test_setup_teardown(test_output_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_output_logged, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cache_once_per_build, setup, teardown),
                cmocka_unit_test_setup_teardown(test_owners_idmapped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_idmap_fs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_threads_being_created, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
