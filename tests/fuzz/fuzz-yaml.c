/* yaml_parse(): every YAML file we read (bundle.yaml, manifests,
 * firstboot.conf, site.yaml, YAML metadata) goes through it first. A
 * parsed tree is formatted and parsed again: yaml_format() must emit
 * YAML that reads back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct diags d = {0};
        struct node *n = NULL;
        if (yaml_parse("fuzz.yaml", (const char *)data, size, &n, &d) >= 0) {
                char *text = NULL;
                if (yaml_format(n, &text) >= 0) {
                        struct node *again = NULL;
                        struct diags d2 = {0};
                        if (yaml_parse("again.yaml", text, strlen(text), &again, &d2) < 0) {
                                fprintf(stderr, "formatted:\n%s\n", text);
                                diags_print(&d2, stderr);
                                abort();
                        }
                        node_free(again);
                        diags_free(&d2);
                }
                free(text);
        }
        node_free(n);
        diags_free(&d);
        return 0;
}
