/* SPDX-License-Identifier: MIT */
/* mkmachine rebuild NAME [--update]: build the machine again from what its live generation was
 * built from: the canonical recipe and the lock stored in its state, not the recipe file (which
 * may have changed since, or be gone). With --update the packages are resolved afresh.
 *
 * The stored recipe is self-contained: includes are merged and every path in it (Keyring=,
 * RootAuthorizedKeys=, Copy= sources) is absolute, so it builds from the state directory as it
 * is. The files those paths name are read again: a changed key file changes the machine. They
 * are checked as the first build checked them: Copy= and RootAuthorizedKeys= sources must
 * resolve (symlinks followed) beside one of the recipe files the first build read, which the
 * state lists in recipe-files, so a co-tenant cannot swap a key file for a symlink to the
 * builder's secrets between the build and the rebuild. The lock beside the user's recipe is
 * left alone; the new generation's lock is in its state. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build.h"
#include "cli.h"
#include "ctx.h"
#include "deployed.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/strv.h"

int cli_cmd_rebuild(struct mkm_ctx *ctx, int argc, char **argv) {
        bool update = false;
        int r0 = cli_parse_update_flag("rebuild", argc, argv, &update);
        if (r0 != 0)
                return r0;
        if (argc - optind != 1)
                return cli_usage_error("rebuild: expected exactly one machine NAME");
        const char *name = argv[optind];
        if (geteuid() != 0)
                return cli_usage_error("rebuild: must run as root (it creates files owned by other users)");

        struct mkm_err err = {};
        _cleanup_free_ char *recipe = NULL, *recipe_path = NULL, *lock = NULL, *lock_path = NULL, *origin = NULL;
        int r = deployed_read(ctx, name, "recipe", &recipe, &recipe_path, &err);
        if (r == -ENOENT)
                return cli_fail(-ENOENT, NULL,
                                "rebuild: no machine of that name was built by mkmachine (no recipe in its state)");
        if (r < 0)
                return cli_fail(r, &err, "rebuild");
        if (!recipe[0])
                return cli_error(EXIT_BUILD_FAILED, "rebuild: machine '%s' was imported, not built here: it has no recipe "
                                 "to build it from (import it again, or build it from its recipe)", name);
        r = deployed_read(ctx, name, "lock", &lock, &lock_path, &err);
        if (r < 0 && r != -ENOENT)
                return cli_fail(r, &err, "rebuild");
        /* recipe-path: where the user's recipe was; only recorded, never read here. */
        r = deployed_read(ctx, name, "recipe-path", &origin, NULL, &err);
        if (r < 0 && r != -ENOENT)
                return cli_fail(r, &err, "rebuild");
        if (origin)
                origin[strcspn(origin, "\n")] = 0;
        /* recipe-files: the recipe and its includes as they were read; Copy= and
         * RootAuthorizedKeys= sources must still lie beside one of them (and be no symlink out). */
        _cleanup_free_ char *files_text = NULL;
        _cleanup_strv_free_ char **files = NULL;
        r = deployed_read(ctx, name, "recipe-files", &files_text, NULL, &err);
        if (r < 0 && r != -ENOENT)
                return cli_fail(r, &err, "rebuild");
        if (files_text && strv_split(files_text, "\n", &files) < 0)
                return cli_fail(-ENOMEM, NULL, "rebuild");
        if (!files && origin && origin[0] && strv_split(origin, "\n", &files) < 0)
                return cli_fail(-ENOMEM, NULL, "rebuild");
        /* recipe-reader: whose permissions the first build read the sources with; a co-tenant
         * cannot change it by replacing their recipe file with a link to root's. */
        _cleanup_free_ char *reader_text = NULL;
        r = deployed_read(ctx, name, "recipe-reader", &reader_text, NULL, &err);
        if (r < 0 && r != -ENOENT)
                return cli_fail(r, &err, "rebuild");
        unsigned long reader = 0;
        char *end = NULL;
        if (reader_text) {
                errno = 0;
                reader = strtoul(reader_text, &end, 10);
                if (errno || end == reader_text || (*end && *end != '\n') || reader > UINT32_MAX - 1)
                        return cli_fail(mkm_err_set(&err, -MKM_E_PARSE, "%s: the generation's recipe-reader is not a uid",
                                                    name),
                                        &err, "rebuild");
        }
        if (!lock_path && !update)
                fprintf(stderr, "mkmachine: warning: %s: no stored lock; resolving the packages again\n", name);
        struct build_opts o = {
                .stored = true,
                .lock_path = lock_path,
                .update = update,
                .origin = origin ? origin : "",
                .recipe_files = files,
                .has_reader = reader_text != NULL,
                .reader = (uid_t)reader,
        };
        return cli_build_with(ctx, recipe_path, &o);
}
