/* redis_url_parse(): jobs.redis_url from firstboot.conf and imagegen job
 * --redis. A parsed URL has a host and a port in range, and its error
 * never repeats a password. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 4096 || memchr(data, '\0', size))
                return 0;
        char *s = xstrndup((const char *)data, size), *err = NULL;
        struct redis_url u;
        int k = redis_url_parse(s, &u, &err);
        if (k == 0) {
                if (!u.host || !*u.host || u.port < 1 || u.port > 65535 || u.db < 0 ||
                    (u.password && !*u.password))
                        abort();
                redis_url_done(&u);
        } else if (k != -EINVAL || !err)
                abort();
        free(err);
        free(s);
        return 0;
}
