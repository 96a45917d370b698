/* A done-mark as module_digest_parse() reads it from the state directory
 * (firstboot/digest.c): whatever it holds, it reads as a digest or as
 * none, and a digest read back formats to a mark that reads back the
 * same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../firstboot/digest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct module_digest d = {0}, back = {0};
        int k = module_digest_parse((const char *)data, size, &d);

        if (k < 0 || k > 1)
                abort();
        if (k == 0)
                return 0;
        char *text = module_digest_format(&d, "i-fuzz", 1);
        if (!text || module_digest_parse(text, strlen(text), &back) != 1 ||
            strcmp(back.digest, d.digest) != 0 || module_digest_changes(&d, &back))
                abort();
        free(text);
        module_digest_free(&back);
        module_digest_free(&d);
        return 0;
}
