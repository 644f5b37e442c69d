/* SPDX-License-Identifier: MIT */
/* Entry point: initialise library globals once, then hand over to the CLI. */
#include <curl/curl.h>
#include <gpgme.h>
#include <locale.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "cli.h"

int main(int argc, char **argv) {
        (void)setlocale(LC_ALL, "");
        /* Everything we create gets the same modes whatever the caller's umask: builds are
         * reproducible across hosts and users. */
        (void)umask(022);
        /* Removing a deep staging tree keeps one directory fd per level: allow as many as the
         * hard limit does, so a hostile tree cannot make its own cleanup fail. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                fprintf(stderr, "mkmachine: error: cannot initialise libcurl\n");
                return EXIT_BUILD_FAILED;
        }
        /* gpgme requires this call before any other; it also sets up its locale handling. */
        if (!gpgme_check_version(NULL)) {
                fprintf(stderr, "mkmachine: error: cannot initialise gpgme\n");
                return EXIT_BUILD_FAILED;
        }
        int r = cli_main(argc, argv);
        curl_global_cleanup();
        return r;
}
