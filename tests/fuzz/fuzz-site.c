/* site.yaml as `imagegen validate` loads it (site_load(): schema, hosts,
 * controller, TLS, files, every module's inputs against the manifests in
 * the repository's modules/ and the templates/ index), without a secrets
 * store, so nothing is generated or written, and the render context built
 * from it. The input is written to
 * site.yaml in a private temporary directory (site_load() reads a path
 * and resolves file sources next to it), which holds one file, a.txt. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "../../imagegen/site.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/fuzz-site.XXXXXX";
static char path[sizeof(dir) + 16];

static void cleanup(void)
{
        char p[sizeof(dir) + 16];
        snprintf(p, sizeof(p), "%s/a.txt", dir);
        unlink(p);
        unlink(path);
        rmdir(dir);
}

static void setup(void)
{
        char p[sizeof(dir) + 16];
        if (!mkdtemp(dir))
                abort();
        atexit(cleanup);
        snprintf(path, sizeof(path), "%s/site.yaml", dir);
        snprintf(p, sizeof(p), "%s/a.txt", dir);
        FILE *f = fopen(p, "w");
        if (!f || fputs("a\n", f) < 0 || fclose(f) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct site_options o = {.modules_dir = "modules", .templates_dir = "templates"};
        struct diags d = {0};
        struct site *s = NULL;

        if (!path[0])
                setup();
        FILE *f = fopen(path, "w");
        if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
                abort();
        /* The render context too: the node module's apps are added to it. */
        if (site_load(path, &o, &s, &d) == 0)
                node_free(site_context(s));
        site_free(s);
        diags_free(&d);
        return 0;
}
