/* bundle_parse() and prepare_modules(), as `firstboot validate` and
 * `firstboot run` use them, with the input as bundle.yaml, then each
 * module's digest (firstboot/digest.c) and its done-mark read back. The other
 * members are fixed (their sha256 are in bundle.dict), so checksums,
 * files and a bundled module can match; modules not in the bundle are
 * looked up in the repository's modules/ (the fuzzer runs from the top
 * of the tree). */
#include <stdint.h>
#include <stdlib.h>

#include <string.h>

#include "../../firstboot/digest.h"
#include "bundle.h"
#include "prepare.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char hello_manifest[] =
        "id: hello\nname: Hello\nversion: \"1\"\ndescription: d\ncategory: c\nauthor: a\n"
        "inputs:\n  - {name: who, type: string, required: true,\n"
        "     validation: {pattern: \"[a-z]+\", max_length: 8}}\n"
        "  - {name: port, type: port, default: 80}\n"
        "  - {name: pw, type: password, visible_if: {who: admin}}\n";
static const char hello_script[] = "#!/bin/sh\necho hello\n";
static const char watcher_manifest[] = "id: watcher\nname: W\nversion: \"1\"\nwatches: [/etc/a]\n";
static const char file_a[] = "a\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct member_list m = {0};
        struct diags d = {0};
        struct bundle *b = NULL;

        if (member_list_add(&m, BUNDLE_YAML, data, size, 0600) < 0 ||
            member_list_add(&m, "files/a", file_a, sizeof(file_a) - 1, 0644) < 0 ||
            member_list_add(&m, "modules/hello/manifest.yml", hello_manifest,
                            sizeof(hello_manifest) - 1, 0644) < 0 ||
            member_list_add(&m, "modules/hello/install.sh", hello_script, sizeof(hello_script) - 1,
                            0755) < 0 ||
            member_list_add(&m, "modules/watcher/manifest.yml", watcher_manifest,
                            sizeof(watcher_manifest) - 1, 0644) < 0 ||
            member_list_add(&m, "modules/watcher/install.sh", hello_script,
                            sizeof(hello_script) - 1, 0755) < 0) {
                member_list_free(&m);
                return 0;
        }
        if (bundle_parse(&m, "fuzz", &b, &d) >= 0) {
                struct prepare_options o = {.modules_dir = "modules"};
                struct planned *mods = NULL;
                size_t n = 0;
                if (prepare_modules(b, &o, &mods, &n, &d) >= 0) {
                        for (size_t i = 0; i < n; i++) {
                                struct module_digest g = {0}, back = {0};
                                if (module_digest_compute(b, &mods[i],
                                                          "00112233445566778899aabbccddeeff",
                                                          &g) < 0)
                                        continue;
                                char *mark = module_digest_format(&g, "i", 1);
                                if (module_digest_parse(mark, strlen(mark), &back) != 1 ||
                                    module_digest_changes(&g, &back))
                                        abort();
                                free(mark);
                                module_digest_free(&back);
                                module_digest_free(&g);
                        }
                        planned_free(mods, n);
                }
        }
        bundle_free(b);
        diags_free(&d);
        return 0;
}
