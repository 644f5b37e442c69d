/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the .deb container and control.tar reader (deb_read without a tree), and
 * the apt sources parsers. A .deb whose control part reads is then read again with its data.tar
 * extracted into a scratch root (scratch.h), which must leave everything outside the root as it
 * was. Build: make fuzz; run:
 *   build/fuzz/fuzz-deb -max_total_time=60 build/fuzz/corpus/deb tests/fuzz/corpus/deb */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "debian/deb.h"
#include "extract.h"
#include "debian/sources.h"
#include "util/err.h"
#include "util/strv.h"

#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        int fd = memfd_create("fuzz-deb", MFD_CLOEXEC);
        if (fd < 0)
                abort();
        if (size && write(fd, data, size) != (ssize_t)size)
                abort();
        (void)lseek(fd, 0, SEEK_SET);
        struct deb_control c = {};
        struct mkm_err err = {};
        if (deb_read(NULL, fd, "fuzz", -1, NULL, &c, NULL, &err) >= 0) {
                if (!deb_control_get(&c, "control"))
                        abort();        /* promised by deb_read */
                deb_control_done(&c);

                /* the data too, into a scratch root */
                int rootfd = scratch_reset("fuzz-deb");
                struct extract_opts o = { .label = "fuzz", .max_bytes = 4u << 20 };
                struct extract_result res = {};
                (void)lseek(fd, 0, SEEK_SET);
                if (deb_read(NULL, fd, "fuzz", rootfd, &o, &c, &res, &err) >= 0) {
                        deb_control_done(&c);
                        extract_result_done(&res);
                } else if (!err.msg[0])
                        abort();
                scratch_check_outside();
                close(rootfd);
        }
        close(fd);
        for (int kind = 0; kind < 2; kind++) {
                char **u = NULL;
                (void)deb_sources_parse((const char *)data, size, "fuzz", kind, "bookworm", &u, &err);
                strv_free(u);
        }
        return 0;
}
