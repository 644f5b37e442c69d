/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the .deb container and control.tar reader (deb_read without a tree), and
 * the apt sources parsers. Build: make fuzz; run: build/fuzz/fuzz-deb CORPUS_DIR */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "debian/deb.h"
#include "debian/sources.h"
#include "util/err.h"
#include "util/strv.h"

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
        }
        close(fd);
        for (int kind = 0; kind < 2; kind++) {
                char **u = NULL;
                (void)deb_sources_parse((const char *)data, size, "fuzz", kind, "bookworm", &u, &err);
                strv_free(u);
        }
        return 0;
}
