/* SPDX-License-Identifier: MIT */
/* mkmachine check RECIPE: load (following includes), validate as for a build, and print the
 * effective recipe and what a build writes on the host (NAME.nspawn, the systemd-nspawn@NAME
 * drop-in, the modules-load.d entry), so a user sees what a shared recipe asks of the host before
 * building it: the canonical text followed by the host files as comment lines, or JSON with
 * --json. Every error of the recipe is reported, each with its file and line. Exit 0, or 2. */
#include "cli.h"

#include <errno.h>
#include <json-c/json.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "hooks.h"
#include "hostinfo.h"
#include "privileges.h"
#include "recipe.h"
#include "util/cleanup.h"
#include "util/err.h"

/* The effective recipe as JSON (built with json-c; printed by the caller). */
static int json_bootstrap(struct json_object *o, const struct recipe *r) {
        if (cli_json_add_string(o, "distribution", recipe_distribution_to_string(r->distribution)) < 0 ||
            cli_json_add_strv(o, "mirrors", r->mirrors) < 0 || cli_json_add_string(o, "snapshot", r->snapshot) < 0 ||
            (r->snapshot_epoch >= 0 ? cli_json_add_int(o, "snapshot_epoch", r->snapshot_epoch)
                                    : cli_json_add_null(o, "snapshot_epoch")) < 0 ||
            cli_json_add_strv(o, "suites", r->suites) < 0 || cli_json_add_strv(o, "components", r->components) < 0 ||
            cli_json_add_strv(o, "repositories", r->repositories) < 0 || cli_json_add_strv(o, "packages", r->packages) < 0 ||
            cli_json_add_string(o, "variant", r->variant) < 0 || cli_json_add_string(o, "keyring", r->keyring) < 0 ||
            cli_json_add_string(o, "architecture", r->architecture) < 0 ||
            cli_json_add_strv(o, "providers", r->providers) < 0 ||
            cli_json_add_bool(o, "require_database_signature", r->require_db_signature) < 0)
                return -ENOMEM;
        return 0;
}

static int json_hooks(struct json_object *o, const struct recipe *r) {
        if (cli_json_add_strv(o, "enable_services", r->enable_services) < 0 ||
            (r->fuse == RECIPE_UNSET ? cli_json_add_null(o, "fuse") : cli_json_add_bool(o, "fuse", r->fuse == RECIPE_YES)) < 0 ||
            cli_json_add_string(o, "docker_storage_driver", r->docker_storage_driver) < 0 ||
            (r->docker_privileged == RECIPE_UNSET ? cli_json_add_null(o, "docker_privileged")
                                                  : cli_json_add_bool(o, "docker_privileged", r->docker_privileged == RECIPE_YES)) < 0 ||
            cli_json_add_strv(o, "root_authorized_keys", r->root_authorized_keys) < 0)
                return -ENOMEM;
        struct json_object *copies = cli_json_add_array(o, "copies");
        if (!copies)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_copies; i++) {
                const struct recipe_copy *c = &r->copies[i];
                struct json_object *e = cli_json_append_object(copies);
                char mode[16];
                (void)snprintf(mode, sizeof mode, "%04o", (unsigned)c->mode);
                if (!e || cli_json_add_string(e, "src", c->src) < 0 || cli_json_add_string(e, "dest", c->dest) < 0 ||
                    cli_json_add_string(e, "mode", c->has_mode ? mode : NULL) < 0 ||
                    cli_json_add_string(e, "owner", c->owner) < 0)
                        return -ENOMEM;
        }
        if (cli_json_add_strv(o, "run", r->runs) < 0 || cli_json_add_bool(o, "run_network", r->run_network) < 0)
                return -ENOMEM;
        return 0;
}

static int json_recipe(const struct recipe *r, struct json_object **ret) {
        _cleanup_(cli_json_freep) struct json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        struct json_object *machine, *bootstrap, *hooks, *network, *nspawn;
        if (cli_json_add_string(o, "path", r->path) < 0 || cli_json_add_strv(o, "files", r->files) < 0 ||
            !(machine = cli_json_add_object(o, "machine")) || cli_json_add_string(machine, "name", r->name) < 0 ||
            !(bootstrap = cli_json_add_object(o, "bootstrap")) || json_bootstrap(bootstrap, r) < 0 ||
            !(hooks = cli_json_add_object(o, "hooks")) || json_hooks(hooks, r) < 0 ||
            !(network = cli_json_add_object(o, "network")) ||
            cli_json_add_strv(network, "addresses", r->network_addresses) < 0 ||
            cli_json_add_strv(network, "gateways", r->network_gateways) < 0 || !(nspawn = cli_json_add_array(o, "nspawn")))
                return -ENOMEM;
        for (size_t i = 0; i < r->n_nspawn; i++) {
                const struct recipe_nspawn_setting *s = &r->nspawn[i];
                struct json_object *e = cli_json_append_object(nspawn);
                if (!e || cli_json_add_string(e, "section", s->section) < 0 || cli_json_add_string(e, "key", s->key) < 0 ||
                    cli_json_add_string(e, "value", s->value) < 0 || cli_json_add_string(e, "file", s->file) < 0 ||
                    cli_json_add_int(e, "line", s->line) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

/* Whose permissions the files the recipe names are read with (recipe_reader()): the user's name
 * (the caller frees it), or NULL when the user database does not know the uid (or cannot be
 * read: the load that read the recipe would have said so). */
static char *reader_name(const struct recipe *r) {
        struct passwd pw;
        _cleanup_free_ char *buf = NULL;
        if (fs_getpwuid(r->reader_uid, &pw, &buf) <= 0)
                return NULL;
        return strdup(pw.pw_name);
}

static int json_reader(struct json_object *o, const struct recipe *r) {
        _cleanup_free_ char *name = reader_name(r);
        struct json_object *e = cli_json_add_object(o, "reader");
        if (!e || cli_json_add_int(e, "uid", (int64_t)r->reader_uid) < 0 || cli_json_add_string(e, "user", name) < 0)
                return -ENOMEM;
        return 0;
}

static void print_reader(const struct recipe *r) {
        _cleanup_free_ char *name = reader_name(r);
        printf("#\n# The files it names (Include=, Keyring=, Copy=, RootAuthorizedKeys=, its lock) are read with\n"
               "# the permissions of %s%s(uid %u), %s\n",
               name ? name : "", name ? " " : "", (unsigned)r->reader_uid,
               r->reader_uid == RECIPE_READER_NOBODY
                       ? "the owner of its files, or no one's since they, its\n"
                         "# directories and links belong to more than one user, or root's are writable by others\n"
                         "# (mkmachine.recipe(5), Paths)."
                       : "the owner of its files.");
}

/* The three files a build writes on the host, by their absolute paths under --host-root. */
struct host_file_view {
        const char *what;       /* "nspawn", "dropin", "modules_load" */
        char *path;
        const char *content;    /* NULL: the build writes none (and removes a stale one) */
};

static int host_file_views(const struct mkm_ctx *ctx, const char *name, const struct host_files *hf,
                           struct host_file_view ret[3]) {
        const char *root = ctx->host_root ? ctx->host_root : "/";
        if (strcmp(root, "/") == 0)
                root = "";
        ret[0] = (struct host_file_view){ "nspawn", NULL, hf->nspawn };
        ret[1] = (struct host_file_view){ "dropin", NULL, hf->dropin };
        ret[2] = (struct host_file_view){ "modules_load", NULL, hf->modules_load };
        if (asprintf(&ret[0].path, "%s/etc/systemd/nspawn/%s.nspawn", root, name) < 0)
                ret[0].path = NULL;
        if (asprintf(&ret[1].path, "%s/etc/systemd/system/systemd-nspawn@%s.service.d/mkmachine.conf", root, name) < 0)
                ret[1].path = NULL;
        if (asprintf(&ret[2].path, "%s/etc/modules-load.d/mkmachine-%s.conf", root, name) < 0)
                ret[2].path = NULL;
        return ret[0].path && ret[1].path && ret[2].path ? 0 : -ENOMEM;
}

static void host_file_views_done(struct host_file_view v[3]) {
        for (size_t i = 0; i < 3; i++)
                free(v[i].path);
}

/* Plain: after the recipe, as comment lines, so the output stays a recipe that reads the same. */
static void print_host_files(const struct host_file_view v[3]) {
        static const char *const none[] = { "no .nspawn file (no settings)", "no drop-in", "no modules-load.d entry" };
        fputs("\n# What a build of this recipe writes on the host:\n", stdout);
        for (size_t i = 0; i < 3; i++) {
                if (!v[i].content) {
                        printf("#\n# %s: %s\n", v[i].path, none[i]);
                        continue;
                }
                printf("#\n# %s\n", v[i].path);
                for (const char *p = v[i].content; *p;) {
                        size_t n = strcspn(p, "\n");
                        if (n > 0)
                                printf("#   %.*s\n", (int)n, p);
                        else
                                fputs("#\n", stdout);
                        p += n;
                        if (*p)
                                p++;
                }
        }
}

static int json_host_files(struct json_object *o, const struct host_file_view v[3]) {
        struct json_object *h = cli_json_add_object(o, "host_files");
        if (!h)
                return -ENOMEM;
        for (size_t i = 0; i < 3; i++) {
                struct json_object *f = cli_json_add_object(h, v[i].what);
                if (!f || cli_json_add_string(f, "path", v[i].path) < 0 ||
                    cli_json_add_string(f, "content", v[i].content) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* --json: every recipe error with its file and line, in the error document. */
static struct json_object *json_errors(const struct recipe_errors *errs) {
        struct json_object *d = json_object_new_object();
        struct json_object *a = d ? cli_json_add_array(d, "errors") : NULL;
        if (!a) {
                (void)json_object_put(d);
                return NULL;
        }
        for (size_t i = 0; i < errs->n; i++) {
                struct json_object *e = cli_json_append_object(a);
                if (!e || cli_json_add_string(e, "file", errs->e[i].file) < 0 ||
                    (errs->e[i].line > 0 ? cli_json_add_int(e, "line", errs->e[i].line) : cli_json_add_null(e, "line")) < 0 ||
                    cli_json_add_string(e, "message", errs->e[i].message) < 0) {
                        (void)json_object_put(d);
                        return NULL;
                }
        }
        return d;
}

int cli_cmd_check(struct mkm_ctx *ctx, int argc, char **argv) {
        const char *path = NULL;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--json") == 0)
                        ctx->json = true;
                else if (argv[i][0] == '-' && argv[i][1])
                        return cli_usage_error("check: unknown option '%s'", argv[i]);
                else if (path)
                        return cli_usage_error("check: unexpected argument '%s' after the recipe", argv[i]);
                else
                        path = argv[i];
        }
        if (!path)
                return cli_usage_error("check: no recipe given");

        /* Every error at once, each with its file and line. */
        struct mkm_err err = {};
        _cleanup_(recipe_freep) struct recipe *r = NULL;
        _cleanup_(recipe_errors_done) struct recipe_errors errs = {};
        int k = recipe_check(ctx, path, &r, &errs, &err);
        if (k < 0)
                return cli_fail_with(k, &err, "check", errs.n ? json_errors(&errs) : NULL);

        /* What the build would write on the host, computed as the build does, written nowhere. */
        unsigned sdver = 0;
        (void)hostinfo_systemd_version(ctx, &sdver);
        struct hooks_host host = { .systemd_version = sdver, .cgroup = hostinfo_cgroup_mode(ctx) };
        _cleanup_(host_files_done) struct host_files hf = {};
        struct host_file_view views[3] = {};
        k = hooks_host_files(ctx, r, &host, &hf, &err);
        if (k < 0)
                return cli_fail(k, &err, "check");
        /* What those files grant the machine on the host, judged by the host's policy: a recipe
         * beyond it is refused here as a build would refuse it. */
        _cleanup_(priv_report_done) struct priv_report rep = {};
        k = privileges_assess(ctx, r, &rep, &err);
        if (k < 0)
                return cli_fail(k, &err, "check");
        struct mkm_err refusal = {};
        int refused = privileges_refusal(&rep, r->name, true, &refusal);
        if (refused < 0 && refused != -MKM_E_REFUSED)
                return cli_fail(refused, NULL, "check");
        if (refused < 0 && ctx->json)
                return cli_fail_with(refused, &refusal, "check", cli_privileges_details(&rep));
        k = host_file_views(ctx, r->name, &hf, views);
        if (k < 0) {
                host_file_views_done(views);
                return cli_fail(k, NULL, "check");
        }

        if (ctx->json) {
                _cleanup_(cli_json_freep) struct json_object *o = NULL;
                k = json_recipe(r, &o);
                if (k >= 0)
                        k = json_reader(o, r);
                if (k >= 0)
                        k = json_host_files(o, views);
                if (k >= 0)
                        k = cli_json_add_privileges(o, "privileges", &rep);
                if (k >= 0)
                        k = cli_json_print(stdout, o, CLI_JSON_PRETTY);
        } else {
                _cleanup_free_ char *text = NULL;
                k = recipe_format(r, &text);
                if (k >= 0) {
                        fputs(text, stdout);
                        print_host_files(views);
                        print_reader(r);
                        fputs("#\n", stdout);
                        cli_print_privileges(stdout, "# ", &rep, r->name);
                }
        }
        host_file_views_done(views);
        if (k < 0)
                return cli_fail(k, NULL, "check");
        if (fflush(stdout) != 0)
                return cli_fail(-errno, NULL, "check: writing the recipe");
        if (refused < 0)
                return cli_fail(refused, &refusal, "check");
        return EXIT_OK;
}
