/* age recipient lists as site.yaml gives them (imagegen/agekey.c): any
 * bytes must get 0 or -EINVAL with a reason, the index and offset of the
 * bad recipient inside the list; and the encoder and the checker agree:
 * the first 32 bytes, encoded as an "age1" recipient, always check. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../imagegen/agekey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 64 * 1024)
                return 0;
        char *list = malloc(size + 1);
        if (!list)
                return 0;
        memcpy(list, data, size);
        list[size] = '\0';
        size_t index = 0, offset = 0;
        const char *why = NULL;
        int r = age_recipients_check(list, &index, &offset, &why);
        if (r != 0 && (r != -EINVAL || !why || offset > strlen(list)))
                abort();
        free(list);

        /* A bounded, exact-size copy for the single checker. */
        size_t n = size < AGE_RECIPIENT_MAX + 2 ? size : AGE_RECIPIENT_MAX + 2;
        char *one = malloc(n ? n : 1);
        if (!one)
                return 0;
        memcpy(one, data, n);
        why = NULL;
        r = age_recipient_check(one, n, &why);
        if (r != 0 && (r != -EINVAL || !why))
                abort();
        free(one);

        if (size >= 32) {
                char *enc = NULL;
                if (bech32_encode("age", data, 32, false, &enc) < 0)
                        abort();
                if (strlen(enc) != 62 || age_recipient_check(enc, 62, NULL) != 0) {
                        /* A second '1' in the data part reads as a plugin
                         * recipient: age would take it so too. */
                        if (!strchr(enc + 4, '1'))
                                abort();
                }
                free(enc);
        }
        return 0;
}
