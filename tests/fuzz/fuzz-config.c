/* firstboot.conf: config_load() reads a path, so the input is handed to it
 * as a memfd (/proc/self/fd/N), nothing on disk. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct diags d = {0};
        struct config c;
        char path[64];
        int fd = memfd_create("firstboot.conf", MFD_CLOEXEC);

        if (fd < 0)
                abort();
        for (size_t at = 0; at < size;) {
                ssize_t k = write(fd, data + at, size - at);
                if (k <= 0)
                        abort();
                at += (size_t)k;
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        if (config_load(path, true, &c, &d) >= 0) {
                if (!c.state_dir || !c.ready_marker || c.max_user_data <= 0)
                        abort();
                config_free(&c);
        }
        close(fd);
        diags_free(&d);
        return 0;
}
