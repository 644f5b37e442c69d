/* SPDX-License-Identifier: MIT */
/* mkmachine import FILE|URL [NAME] [--verify=auto|no|checksum|signature] [--keyring FILE]. */
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
#include "util/err.h"
#include "util/fs.h"

int cli_cmd_import(struct mkm_ctx *ctx, int argc, char **argv) {
        enum { OPT_VERIFY = 0x100, OPT_KEYRING, OPT_TRUST_SETTINGS };
        static const struct option options[] = {
                { "verify", required_argument, NULL, OPT_VERIFY },
                { "keyring", required_argument, NULL, OPT_KEYRING },
                { "trust-settings", no_argument, NULL, OPT_TRUST_SETTINGS },
                {},
        };
        struct import_opts opts = { .verify = IMPORT_VERIFY_AUTO, .force = ctx->force };
        const char *keyring = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case OPT_VERIFY:
                        if (strcmp(optarg, "auto") == 0)
                                opts.verify = IMPORT_VERIFY_AUTO;
                        else if (strcmp(optarg, "no") == 0)
                                opts.verify = IMPORT_VERIFY_NO;
                        else if (strcmp(optarg, "checksum") == 0)
                                opts.verify = IMPORT_VERIFY_CHECKSUM;
                        else if (strcmp(optarg, "signature") == 0)
                                opts.verify = IMPORT_VERIFY_SIGNATURE;
                        else
                                return cli_usage_error("import: --verify: expected auto, no, checksum or signature, got '%s'",
                                                       optarg);
                        break;
                case OPT_KEYRING:
                        keyring = optarg;
                        break;
                case OPT_TRUST_SETTINGS:
                        opts.trust_settings = true;
                        break;
                default:
                        return cli_usage_error("import: usage: mkmachine import FILE|URL [NAME] "
                                               "[--verify=auto|no|checksum|signature] [--keyring FILE] [--trust-settings]");
                }
        }
        if (argc - optind < 1 || argc - optind > 2)
                return cli_usage_error("import: expected FILE or URL, and optionally NAME");
        if (geteuid() != 0)
                return cli_usage_error("import: must run as root (the tree holds files of other users)");
        const char *source = argv[optind];
        opts.name = argc - optind == 2 ? argv[optind + 1] : NULL;
        /* As systemd-pull: the administrator's keyring, else the vendor's. */
        _cleanup_free_ char *etc_ring = fs_path_join(ctx->host_root, "etc/systemd/import-pubring.gpg");
        _cleanup_free_ char *usr_ring = fs_path_join(ctx->host_root, "usr/lib/systemd/import-pubring.gpg");
        if (!etc_ring || !usr_ring)
                return cli_fail(-ENOMEM, NULL, "import");
        if (keyring)
                opts.keyring = keyring;
        else
                opts.keyring = access(etc_ring, F_OK) == 0 ? etc_ring : usr_ring;

        struct mkm_err err = {};
        struct import_result res = {};
        int r = import_machine(ctx, source, &opts, &res, &err);
        if (r < 0)
                return cli_fail(r, &err, "import");
        if (ctx->json) {
                _cleanup_(cli_json_freep) struct json_object *o = json_object_new_object();
                if (!o || cli_json_add_string(o, "name", res.name) < 0 || cli_json_add_string(o, "path", res.target) < 0 ||
                    cli_json_add_string(o, "digest", res.digest) < 0 || cli_json_add_string(o, "nspawn", res.nspawn) < 0 ||
                    cli_json_add_bool(o, "checksum_verified", res.verified) < 0 ||
                    cli_json_add_bool(o, "signature_verified", res.signed_ok) < 0 ||
                    cli_json_print(stdout, o, CLI_JSON_LINE) < 0) {
                        import_result_done(&res);
                        return cli_fail(-ENOMEM, NULL, "import");
                }
        } else {
                fprintf(stderr, "machine '%s' imported to %s%s\n", res.name, res.target,
                        res.signed_ok ? " (signature and checksums verified)"
                        : res.verified ? " (checksums verified)" : " (not verified)");
                if (res.nspawn && ctx->verbosity >= 0)
                        fprintf(stderr, "settings %s\n", res.nspawn);
                fprintf(stderr, "digest %s\n", res.digest);
        }
        import_result_done(&res);
        return EXIT_OK;
}
