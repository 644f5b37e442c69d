/* SPDX-License-Identifier: MIT */
/* mkmachine build RECIPE: build in a worker process while this one stands guard.
 *
 * Nothing may be lost when a build is interrupted: the worker builds into a staging root and
 * only swaps it in at the end. If the worker dies (a signal, a crash, an OOM kill) or we are
 * asked to stop (SIGINT/SIGTERM/SIGHUP, forwarded to the worker), this process takes the
 * machine's build lock once the worker has gone and removes the staging root, so the host is
 * left as it was.
 *
 * If this process itself is killed (SIGKILL, which cannot be forwarded), the worker must not go on
 * alone: it is created with PR_SET_PDEATHSIG = SIGKILL, so the kernel kills it as this process
 * exits. The signal is queued during our exit, before anyone can see us gone, and a process with
 * SIGKILL pending never runs another instruction of its own: a worker whose guard died cannot
 * reach the deploy's swap (a rename already inside the kernel completes; the state's consistency
 * after that is the recovery's job). Its children die with it: the sandbox's (pid namespace
 * init, PR_SET_PDEATHSIG) and the gpg-agent (verify-keyring.c); gpg processes gpgme runs end on
 * the EOF of their pipes. */
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "build.h"
#include "cli.h"
#include "ctx.h"
#include "deploy.h"
#include "hooks.h"
#include "lock.h"
#include "privileges.h"
#include "recipe.h"
#include "state.h"
#include "verify.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"

static volatile sig_atomic_t arg_worker_pid;    /* for the forwarding handler */
static volatile sig_atomic_t arg_signal;        /* the last signal forwarded */
static const struct build_opts *arg_build_opts;  /* mkmachine rebuild's (cli_build_with), else NULL */

static void forward(int sig) {
        arg_signal = sig;
        if (arg_worker_pid > 0)
                (void)kill((pid_t)arg_worker_pid, sig);
}

/* The privileges check of a build (build_opts.gate): list what the machine is granted on the host
 * before anything is fetched, and refuse what the host's policy forbids and, without
 * --allow-new-privileges, what the deployed generation was not granted. */
struct gate {
        struct priv_report rep;
        bool assessed;
};

static int privileges_gate(void *userdata, struct mkm_ctx *ctx, const struct recipe *r, struct mkm_err *reterr) {
        struct gate *g = userdata;
        int q = privileges_assess(ctx, r, &g->rep, reterr);
        if (q < 0)
                return q;
        g->assessed = true;
        if (!ctx->json && ctx->verbosity >= 0) {
                cli_print_privileges(stderr, "", &g->rep, r->name);
                (void)fflush(stderr);
        }
        return privileges_refusal(&g->rep, r->name, ctx->allow_new_privileges, reterr);
}

static void gate_done(struct gate *g) {
        priv_report_done(&g->rep);
}

static int print_result(const struct mkm_ctx *ctx, const struct build_result *res, const struct gate *gate) {
        if (ctx->json) {
                _cleanup_(cli_json_freep) struct json_object *o = json_object_new_object();
                if (!o || cli_json_add_string(o, "name", res->name) < 0 || cli_json_add_string(o, "path", res->target) < 0 ||
                    cli_json_add_string(o, "lock", res->lock_path) < 0 || cli_json_add_string(o, "digest", res->digest) < 0 ||
                    cli_json_add_int(o, "packages", (int64_t)res->packages) < 0 ||
                    cli_json_add_bool(o, "lock_written", res->lock_written) < 0 ||
                    cli_json_add_int(o, "source_date_epoch", res->source_date_epoch) < 0 ||
                    cli_json_add_int(o, "generation", res->generation) < 0 ||
                    cli_json_add_changes(o, "changes", res->changes) < 0 ||
                    (gate->assessed ? cli_json_add_privileges(o, "privileges", &gate->rep) : cli_json_add_null(o, "privileges")) < 0)
                        return -ENOMEM;
                return cli_json_print(stdout, o, CLI_JSON_LINE);
        }
        if (ctx->verbosity < 0) {
                /* -q: the one line a script needs, on stdout. */
                printf("%s %s\n", res->name, res->digest);
                return 0;
        }
        uint64_t bytes;
        unsigned files;
        double secs;
        char size[32];
        cli_progress_totals(ctx, &bytes, &files, &secs);
        cli_human_size(bytes, size, sizeof size);
        fprintf(stderr, "machine '%s' deployed to %s (generation %u, %zu packages)\n", res->name, res->target,
                res->generation, res->packages);
        fprintf(stderr, "digest %s\n", res->digest);
        /* After any build whose package set changed against the generation it replaced. */
        if (res->changes && res->changes->n > 0)
                cli_print_changes(stderr, "packages", res->changes);
        if (res->lock_written)
                fprintf(stderr, "wrote %s: commit it next to the recipe to pin this set\n", res->lock_path);
        fprintf(stderr, "done in %.1f s: %zu packages, %s downloaded (%u file%s)\n", secs, res->packages, size, files,
                files == 1 ? "" : "s");
        return 0;
}

/* The temporaries pid left beside the recipe at path, its path as loading resolved it
 * (fs_write_atomic_at's .#NAME.PID.XXXXXX of its lock); pid 0: of every process that is gone. */
static void remove_temporaries_beside(const char *path, pid_t pid) {
        _cleanup_free_ char *dir = fs_path_dirname(path);
        if (dir)
                (void)fs_remove_temporaries_beside_recipe(dir, pid);
}

/* What earlier builds killed with their whole process group (no guard left to clean up) left
 * beside the recipe and among the host files: the temporaries of processes that are gone. The
 * staging roots and GnuPG homes go in deploy_begin and verify_keyring_new. */
static void clean_before(struct mkm_ctx *ctx, const char *path) {
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        struct mkm_err err = {};
        if (recipe_load(NULL, path, &r, &err) < 0)
                return;         /* the build says why */
        if (r->path)
                remove_temporaries_beside(r->path, 0);
        if (r->name)
                hooks_remove_host_temporaries(ctx, r->name, 0);
}

static int worker(struct mkm_ctx *ctx, const char *path) {
        struct mkm_err err = {};
        struct build_result res = {};
        _cleanup_(gate_done) struct gate gate = {};
        clean_before(ctx, path);
        struct build_opts o = arg_build_opts ? *arg_build_opts : (struct build_opts){};
        o.gate = privileges_gate;
        o.gate_userdata = &gate;
        int r = build_machine_opts(ctx, path, &o, &res, &err);
        if (r < 0)
                return cli_fail_with(r, &err, "build failed",
                                     r == -MKM_E_REFUSED && gate.assessed ? cli_privileges_details(&gate.rep) : NULL);
        r = print_result(ctx, &res, &gate);
        build_result_done(&res);
        if (r < 0)
                return cli_fail(r, NULL, "printing the result");
        return EXIT_OK;
}

/* After a killed worker (not yet reaped, so its pid is not reused): remove its staging tree
 * (deploy_begin does, under the build lock) and the temporary files it may have been writing:
 * the lock beside the recipe (named after the recipe's real path), the state files, the host
 * files; all are written to a temporary and renamed. */
static void clean_after(struct mkm_ctx *ctx, const char *path, pid_t pid) {
        struct mkm_err err = {};
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        if (recipe_load(NULL, path, &r, &err) < 0) {
                cli_warning("cannot clean up after the interrupted build (%s); the next build of this machine "
                            "removes its staging tree", err.msg);
                return;
        }
        if (r->path)
                remove_temporaries_beside(r->path, pid);
        hooks_remove_host_temporaries(ctx, r->name, pid);
        _cleanup_(deploy_freep) struct deploy *d = NULL;
        /* The worker's lock may outlive it for a moment: a child it forked holds the lock's open
         * file description until its exec closes it (O_CLOEXEC). Wait for that, briefly. */
        int q;
        for (int i = 0; (q = deploy_begin(ctx, r->name, &d, &err)) == -EBUSY && i < 50; i++) {
                err = (struct mkm_err){};
                (void)usleep(100 * 1000);
        }
        if (q < 0)
                cli_warning("cannot clean up after the interrupted build: %s", err.msg);
        else {
                (void)fs_remove_temporaries_of(d->state_dir, pid);
                /* The worker held systemd's image lock (the kernel released it): take it and
                 * release it as systemd does, which removes the lock file. */
                int fd = -EBADF;
                if (state_image_lock(ctx, r->name, &fd, &err) >= 0)
                        state_image_unlock(d->machines_dir, r->name, fd);
        }
}

int cli_cmd_build(struct mkm_ctx *ctx, int argc, char **argv) {
        if (argc != 2)
                return cli_usage_error("build: expected exactly one RECIPE");
        const char *path = argv[1];
        if (geteuid() != 0)
                return cli_usage_error("build: must run as root (it creates files owned by other users)");

        /* Signals are held across the fork: the guard installs its forwarding handlers before it
         * can receive one, and the worker starts with default actions (even if we were started
         * with SIGINT ignored, as background jobs are) before it lets them in. */
        sigset_t guarded, old;
        sigemptyset(&guarded);
        sigaddset(&guarded, SIGINT);
        sigaddset(&guarded, SIGTERM);
        sigaddset(&guarded, SIGHUP);
        (void)sigprocmask(SIG_BLOCK, &guarded, &old);
        (void)fflush(NULL);
        pid_t guard = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                int e = errno;
                (void)sigprocmask(SIG_SETMASK, &old, NULL);
                return cli_fail(-e, NULL, "fork");
        }
        if (pid == 0) {
                /* Die with the guard; if it died before the prctl took effect, we have been
                 * re-parented already and stop here. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != guard)
                        _exit(EXIT_BUILD_FAILED);
                struct sigaction dfl = { .sa_handler = SIG_DFL };
                sigemptyset(&dfl.sa_mask);
                (void)sigaction(SIGINT, &dfl, NULL);
                (void)sigaction(SIGTERM, &dfl, NULL);
                (void)sigaction(SIGHUP, &dfl, NULL);
                (void)sigprocmask(SIG_SETMASK, &old, NULL);
                /* The worker dies with default signal actions; the guard decides what remains. */
                int rc = worker(ctx, path);
                (void)fflush(NULL);
                _exit(rc);
        }
        arg_worker_pid = pid;
        struct sigaction sa = { .sa_handler = forward };
        sigemptyset(&sa.sa_mask);
        (void)sigaction(SIGINT, &sa, NULL);
        (void)sigaction(SIGTERM, &sa, NULL);
        (void)sigaction(SIGHUP, &sa, NULL);
        (void)sigprocmask(SIG_SETMASK, &old, NULL);
        /* Wait without reaping: until the cleanup below is done, the worker's pid cannot be
         * reused, so the files named after it are its own. */
        siginfo_t info = {};
        while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0)
                if (errno != EINTR)
                        return cli_fail(-errno, NULL, "waitid");
        /* It has ended: nothing is forwarded any more. */
        (void)sigprocmask(SIG_BLOCK, &guarded, NULL);
        arg_worker_pid = 0;
        (void)sigprocmask(SIG_SETMASK, &old, NULL);
        if (info.si_code == CLD_EXITED) {
                /* A worker that exits removes its private GnuPG home itself; one that exits on a
                 * path that skipped it (an exit during a forwarded SIGTERM) must not leave it. */
                if (info.si_status != 0)
                        verify_remove_homes_of(pid);
                int status;
                (void)waitpid(pid, &status, 0);
                /* Interrupted (Ctrl-C, kill): 128 + the signal, as a shell reports it, unless the
                 * build was complete anyway. */
                return info.si_status != 0 && arg_signal ? 128 + arg_signal : info.si_status;
        }
        int sig = info.si_status;
        /* A signal we forwarded is the user's "stop" (130 for SIGINT, 143 for SIGTERM, as git and
         * systemctl exit by it); one only the worker got (a crash, the OOM killer) is a failure. */
        int code = cli_error(arg_signal ? 128 + arg_signal : EXIT_BUILD_FAILED,
                             "build of %s interrupted (%s); removing its staging tree", path, strsignal(sig));
        verify_remove_homes_of(pid);
        clean_after(ctx, path, pid);
        int status;
        (void)waitpid(pid, &status, 0);
        return code;
}

int cli_build_with(struct mkm_ctx *ctx, const char *path, const struct build_opts *o) {
        char *argv[] = { (char *)"build", (char *)path, NULL };
        arg_build_opts = o;
        int rc = cli_cmd_build(ctx, 2, argv);
        arg_build_opts = NULL;
        return rc;
}
