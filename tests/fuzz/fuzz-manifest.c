/* A module manifest (manifest_parse(), as manifest_load() and bundled
 * modules use it) and the input validation a bundle's or site's inputs go
 * through (manifest_resolve_inputs()). The input is the manifest; after a
 * line "#inputs" comes the YAML mapping given as the module's inputs
 * (none when there is no such line). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char sep[] = "\n#inputs\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *text = (const char *)data;
        const char *at = memmem(text, size, sep, sizeof(sep) - 1);
        size_t head = at ? (size_t)(at - text) + 1 : size;
        struct node *doc = NULL, *given = NULL;
        struct manifest *m = NULL;
        struct diags d = {0};

        if (yaml_parse("manifest.yml", text, head, &doc, &d) < 0)
                goto out;
        if (manifest_parse(doc, &m, &d) < 0)
                goto out;
        if (at) {
                size_t off = head + sizeof(sep) - 2;
                if (yaml_parse("bundle.yaml", text + off, size - off, &given, &d) < 0)
                        goto out;
        }
        struct input_values v = {0};
        if (manifest_resolve_inputs(m, given, doc, &d, &v) >= 0) {
                for (size_t i = 0; i < v.n; i++)
                        if (!input_values_get(&v, v.v[i].name))
                                abort();
                input_values_free(&v);
        }
out:
        manifest_free(m);
        node_free(given);
        node_free(doc);
        diags_free(&d);
        return 0;
}
