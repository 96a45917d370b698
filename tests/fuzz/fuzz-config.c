/* firstboot.conf, as config_parse() reads it for config_load() and
 * config_load_root(). */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct diags d = {0};
        struct config c;

        if (config_parse("firstboot.conf", (const char *)data, size, &c, &d) >= 0) {
                if (!c.state_dir || !c.ready_marker || c.max_user_data <= 0)
                        abort();
                config_free(&c);
        }
        diags_free(&d);
        return 0;
}
