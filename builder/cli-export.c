/* SPDX-License-Identifier: MIT */
/* mkmachine export NAME DIR [--compress=xz|zstd|gzip] [--sign KEY [--gpg-home DIR]]: the
 * directory systemd-pull tar / importctl pull-tar fetch (export.h). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctx.h"
#include "export.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/err.h"

int cli_cmd_export(struct mkm_ctx *ctx, int argc, char **argv) {
        enum { OPT_COMPRESS = 0x100, OPT_SIGN, OPT_GPG_HOME };
        static const struct option options[] = {
                { "compress", required_argument, NULL, OPT_COMPRESS },
                { "sign", required_argument, NULL, OPT_SIGN },
                { "gpg-home", required_argument, NULL, OPT_GPG_HOME },
                {},
        };
        struct export_opts opts = { .compress = EXPORT_XZ, .force = ctx->force };
        int c;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case OPT_COMPRESS: {
                        enum export_compress v = export_compress_from_string(optarg);
                        if (v < 0)
                                return cli_usage_error("export: --compress: expected xz, zstd or gzip, got '%s'", optarg);
                        opts.compress = v;
                        break;
                }
                case OPT_SIGN:
                        opts.sign_key = optarg;
                        break;
                case OPT_GPG_HOME:
                        opts.gpg_home = optarg;
                        break;
                default:
                        return cli_usage_error("export: usage: mkmachine export NAME DIR [--compress=xz|zstd|gzip] "
                                               "[--sign KEY [--gpg-home DIR]]");
                }
        }
        if (argc - optind != 2)
                return cli_usage_error("export: expected NAME and DIR");
        if (opts.gpg_home && !opts.sign_key)
                return cli_usage_error("export: --gpg-home is for --sign");
        const char *name = argv[optind], *dir = argv[optind + 1];
        /* Absolute, so that what is printed (--json above all) names the files wherever it is read. */
        _cleanup_free_ char *cwd = dir[0] == '/' ? NULL : getcwd(NULL, 0), *abs = NULL;
        if (dir[0] != '/') {
                if (!cwd || !(abs = fs_path_join(cwd, dir)))
                        return cli_fail(-ENOMEM, NULL, "export: the current directory");
                dir = abs;
        }
        struct mkm_err err = {};
        struct export_result res = {};
        int r = export_machine(ctx, name, dir, &opts, &res, &err);
        if (r < 0)
                return cli_fail(r, &err, "export");
        if (ctx->json) {
                _cleanup_(cli_json_freep) struct json_object *o = json_object_new_object();
                if (!o || cli_json_add_string(o, "name", name) < 0 || cli_json_add_string(o, "digest", res.digest) < 0 ||
                    cli_json_add_string(o, "tarball", res.tarball) < 0 || cli_json_add_string(o, "nspawn", res.nspawn) < 0 ||
                    cli_json_add_string(o, "sha256sums", res.sums) < 0 ||
                    cli_json_add_string(o, "signature", res.signature) < 0 ||
                    cli_json_add_int(o, "source_date_epoch", res.source_date_epoch) < 0 ||
                    cli_json_print(stdout, o, CLI_JSON_LINE) < 0) {
                        export_result_done(&res);
                        return cli_fail(-ENOMEM, NULL, "export");
                }
        } else {
                fprintf(stderr, "exported '%s' to %s\n", name, res.tarball);
                if (ctx->verbosity >= 0) {
                        if (res.nspawn)
                                fprintf(stderr, "settings %s\n", res.nspawn);
                        fprintf(stderr, "%s%s%s\n", res.sums, res.signature ? ", " : "", res.signature ? res.signature : "");
                }
                fprintf(stderr, "digest %s\n", res.digest);
        }
        export_result_done(&res);
        return EXIT_OK;
}
