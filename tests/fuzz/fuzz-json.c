/* json_parse(): metadata from the datasources (EC2, Hetzner,
 * DigitalOcean, ConfigDrive's meta_data.json), status.json, the secrets
 * store, template contexts. A parsed tree is written back with
 * json_format() and as YAML, and each must read back to the same JSON. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct diags d = {0};
        struct node *n = NULL, *again = NULL, *from_yaml = NULL;
        char *j = NULL, *j2 = NULL, *y = NULL, *j3 = NULL;

        if (json_parse("fuzz.json", (const char *)data, size, &n, &d) < 0)
                goto out;
        if (json_format(n, false, &j) < 0)
                abort();
        if (json_parse("again.json", j, strlen(j), &again, &d) < 0)
                abort();
        if (json_format(again, true, &j2) < 0)
                abort();
        /* YAML holds what JSON does, but for a NUL inside a string. */
        if (yaml_format(n, &y) < 0)
                abort();
        if (!memchr(data, 0, size) && !strstr((const char *)j, "\\u0000")) {
                if (yaml_parse("again.yaml", y, strlen(y), &from_yaml, &d) < 0) {
                        fprintf(stderr, "YAML:\n%s\n", y);
                        diags_print(&d, stderr);
                        abort();
                }
                if (json_format(from_yaml, false, &j3) < 0 || strcmp(j, j3) != 0) {
                        fprintf(stderr, "JSON:\n%s\nYAML:\n%s\nback:\n%s\n", j, y,
                                j3 ? j3 : "(none)");
                        abort();
                }
        }
out:
        free(j);
        free(j2);
        free(y);
        free(j3);
        node_free(n);
        node_free(again);
        node_free(from_yaml);
        diags_free(&d);
        return 0;
}
