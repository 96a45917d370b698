/* tmpl-render [--format FORMAT] TEMPLATE CONTEXT.json: renders TEMPLATE
 * with the JSON context and writes the output to standard output, for the
 * end-to-end escaping tests. The format comes from the template's name
 * unless given. Exit 0, 1 on a template error (printed as
 * file:line:column: message), 2 on a usage error. */
#include <errno.h>

#include "fs.h"
#include "json.h"
#include "../../imagegen/template.h"

int main(int argc, char **argv)
{
        _cleanup_free_ char *tmpl = NULL, *json = NULL, *out = NULL;
        struct diags d = {0};
        _cleanup_node_ struct node *ctx = NULL;
        size_t tmpl_len, json_len;
        enum tmpl_format fmt;
        int i = 1, r;

        if (argc == 5 && streq(argv[1], "--format")) {
                if (tmpl_format_from_string(argv[2], &fmt) < 0) {
                        fprintf(stderr, "tmpl-render: unknown format '%s'\n", argv[2]);
                        return 2;
                }
                i = 3;
        } else if (argc != 3) {
                fprintf(stderr, "usage: tmpl-render [--format FORMAT] TEMPLATE CONTEXT.json\n");
                return 2;
        } else
                fmt = tmpl_format_for(argv[1]);

        r = read_file(argv[i], 1 << 20, &tmpl, &tmpl_len);
        if (r < 0) {
                fprintf(stderr, "tmpl-render: %s: %s\n", argv[i], strerror(-r));
                return 1;
        }
        r = read_file(argv[i + 1], 1 << 20, &json, &json_len);
        if (r < 0) {
                fprintf(stderr, "tmpl-render: %s: %s\n", argv[i + 1], strerror(-r));
                return 1;
        }
        if (json_parse(argv[i + 1], json, json_len, &ctx, &d) < 0 ||
            tmpl_render(argv[i], tmpl, tmpl_len, ctx, fmt, &out, &d) < 0) {
                diags_print(&d, stderr);
                diags_free(&d);
                return 1;
        }
        diags_free(&d);
        size_t n = strlen(out);
        if (fwrite(out, 1, n, stdout) != n || fflush(stdout) != 0) {
                fprintf(stderr, "tmpl-render: writing the output: %s\n", strerror(errno));
                return 1;
        }
        return 0;
}
