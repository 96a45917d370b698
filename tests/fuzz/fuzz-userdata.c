/* User-data as `firstboot run` reads it, without writing anything:
 * userdata_decode() (gzip'd or plain tar, the "#firstboot-bundle v1"
 * base64 text, a "#!" script), then bundle_parse() (bundle.yaml, the
 * checksums of every member, the files' sources). What is accepted must
 * hold what the agent relies on: members with safe, distinct paths, a
 * bundle.yaml, and never more than the limit of inflated bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"

#define MAX_SIZE (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct member_list m = {0};
        struct bundle *b = NULL;
        struct diags d = {0};
        enum userdata_kind kind;
        size_t total = 0;

        if (userdata_decode("fuzz", data, size, MAX_SIZE, &kind, &m, &d) < 0) {
                if (d.n == 0 || m.n != 0)
                        abort(); /* a refusal says why and returns nothing */
                diags_free(&d);
                return 0;
        }
        for (size_t i = 0; i < m.n; i++) {
                if (!member_path_ok(m.v[i].path) || m.v[i].data[m.v[i].size] != '\0')
                        abort();
                for (size_t j = 0; j < i; j++)
                        if (strcmp(m.v[i].path, m.v[j].path) == 0)
                                abort();
                total += m.v[i].size;
        }
        if (kind != USERDATA_SCRIPT && total > MAX_SIZE)
                abort();
        if (bundle_parse(&m, NULL, &b, &d) >= 0) {
                if (!member_list_find(&b->members, BUNDLE_YAML) || !b->doc)
                        abort();
        } else if (d.n == 0)
                abort();
        bundle_free(b);
        diags_free(&d);
        return 0;
}
