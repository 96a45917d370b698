/* The template renderer (imagegen/template.c), driven as imagegen render
 * and tests/tools/tmpl-render drive it. The first byte picks the output
 * format; the rest is the template. After a line "#context", the rest is
 * the JSON context instead of the fixed one below (which has every kind
 * of value a site gives: strings needing each escape, numbers, booleans,
 * null, lists of maps, nested maps). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "../../imagegen/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed_context[] =
        "{\"name\": \"colony\", \"port\": 8080, \"on\": true, \"off\": false, \"none\": null,"
        " \"ratio\": 1.5, \"empty\": \"\", \"pw\": \"p$a's\\\"s\\\\w#${X}\\n\\t\\r\","
        " \"nonutf\": \"\\u00e9\\u2028\", \"list\": [\"a\", \"b c\", 3],"
        " \"hosts\": [{\"hostname\": \"h1\", \"ip\": \"10.0.0.1\"}, {\"hostname\": \"h2\"}],"
        " \"db\": {\"user\": \"u\", \"inner\": {\"deep\": \"x\", \"list\": []}}, \"map\": {}}";

static const char sep[] = "\n#context\n";

static bool has_line_break(const char *s, size_t n)
{
        return memchr(s, '\n', n) || memchr(s, '\r', n) || memmem(s, n, "\xe2\x80\xa8", 3) ||
               memmem(s, n, "\xe2\x80\xa9", 3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const enum tmpl_format formats[] = {TMPL_RAW,   TMPL_YAML,    TMPL_ENV, TMPL_NGINX,
                                                   TMPL_SHELL, TMPL_COMPOSE, TMPL_JS};
        struct diags d = {0};
        struct node *ctx = NULL;
        char *out = NULL;

        if (size < 1)
                return 0;
        enum tmpl_format fmt = formats[data[0] % (sizeof(formats) / sizeof(formats[0]))];
        const char *text = (const char *)data + 1;
        size_t len = size - 1;
        const char *at = memmem(text, len, sep, sizeof(sep) - 1);
        const char *json = fixed_context;
        size_t json_len = sizeof(fixed_context) - 1;
        if (at) {
                json = at + sizeof(sep) - 1;
                json_len = len - (size_t)(json - text);
                len = (size_t)(at - text) + 1;
        }
        if (json_parse("context.json", json, json_len, &ctx, &d) < 0) {
                if (!at)
                        abort(); /* the fixed context must parse */
                goto out;
        }
        if (tmpl_render("fuzz.tmpl", text, len, ctx, fmt, &out, &d) >= 0 && !out)
                abort();
        /* Escaped JS values are literals on one line: a template without
         * line terminators, raw tags or new delimiters renders none. */
        if (out && fmt == TMPL_JS && !has_line_break(text, len) && !memmem(text, len, "{{{", 3) &&
            !memmem(text, len, "{{&", 3) && !memmem(text, len, "{{=", 3) &&
            has_line_break(out, strlen(out)))
                abort();
out:
        free(out);
        node_free(ctx);
        diags_free(&d);
        return 0;
}
