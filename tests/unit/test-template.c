/* The template renderer: syntax, sections, the standalone-line rule,
 * every error with its line and column, and each format's escaping. */
#include <errno.h>

#include "json.h"
#include "../../imagegen/template.h"
#include "yaml.h"
#include "tap.h"

/* A value with most of what breaks naive quoting. */
#define NASTY " pa$s'w\"o#rd \\x${HOME} {a}: b\t\xc3\xa9\xe2\x82\xac "

static struct node *ctx_json(const char *json)
{
        struct diags d = {0};
        struct node *n = NULL;
        if (json_parse("ctx.json", json, strlen(json), &n, &d) < 0) {
                diags_print(&d, stderr);
                n = NULL;
        }
        diags_free(&d);
        return n;
}

/* Renders tmpl with the JSON context; the output, or NULL on error. */
static char *render(const char *tmpl, const char *json, enum tmpl_format fmt)
{
        struct diags d = {0};
        struct node *ctx = ctx_json(json);
        char *out = NULL;
        if (tmpl_render("t.tmpl", tmpl, strlen(tmpl), ctx, fmt, &out, &d) < 0) {
                diags_print(&d, stderr);
                out = NULL;
        }
        node_free(ctx);
        diags_free(&d);
        return out;
}

/* Renders tmpl expecting failure; the first diagnostic, formatted. Sets
 * *n_diags to how many there were. */
static char *render_error(const char *tmpl, const char *json, enum tmpl_format fmt, size_t *n_diags)
{
        struct diags d = {0};
        struct node *ctx = ctx_json(json);
        char *out = (char *)"untouched", *msg = NULL;
        int r = tmpl_render("t.tmpl", tmpl, strlen(tmpl), ctx, fmt, &out, &d);
        if (r == -EINVAL && d.n > 0 && streq(out, "untouched"))
                msg = diag_format(&d.v[0]);
        else if (r >= 0)
                free(out);
        if (n_diags)
                *n_diags = d.n;
        node_free(ctx);
        diags_free(&d);
        return msg;
}

static char *err(const char *tmpl, const char *json)
{
        return render_error(tmpl, json, TMPL_RAW, NULL);
}

/* Renders `{{v}}` with v the string value, in format fmt. */
static char *esc(const char *value, enum tmpl_format fmt)
{
        struct node *ctx = node_new(NODE_MAP);
        struct diags d = {0};
        char *out = NULL;
        if (!ctx || node_set_str(ctx, "v", value) < 0 ||
            tmpl_render("t.tmpl", "{{v}}", 5, ctx, fmt, &out, &d) < 0) {
                diags_print(&d, stderr);
                out = NULL;
        }
        node_free(ctx);
        diags_free(&d);
        return out;
}

/* The same with v given as JSON, for typed values. */
static char *esc_json(const char *json_value, enum tmpl_format fmt)
{
        _cleanup_free_ char *json = strprintf("{\"v\": %s}", json_value);
        return render("{{v}}", json, fmt);
}

/* The value of key v after YAML-parsing text with libyaml. */
static char *yaml_value(const char *text)
{
        struct diags d = {0};
        struct node *n = NULL;
        char *v = NULL;
        if (yaml_parse("out.yaml", text, strlen(text), &n, &d) == 0 && node_get(n, "v"))
                v = xstrdup(node_get(n, "v")->value);
        else
                diags_print(&d, stderr);
        node_free(n);
        diags_free(&d);
        return v;
}

TEST(format_for_names)
{
        CHECK(tmpl_format_for("docker-compose.yml") == TMPL_COMPOSE);
        CHECK(tmpl_format_for("templates/compose.yaml.tmpl") == TMPL_COMPOSE);
        CHECK(tmpl_format_for("Docker-Compose.YML") == TMPL_COMPOSE);
        CHECK(tmpl_format_for("site.yaml") == TMPL_YAML);
        CHECK(tmpl_format_for("a/b/config.yml.tmpl") == TMPL_YAML);
        CHECK(tmpl_format_for("app.env") == TMPL_ENV);
        CHECK(tmpl_format_for("app.env.tmpl") == TMPL_ENV);
        CHECK(tmpl_format_for(".env") == TMPL_ENV);
        CHECK(tmpl_format_for("stack/env") == TMPL_ENV);
        CHECK(tmpl_format_for("env.tmpl") == TMPL_ENV);
        CHECK(tmpl_format_for("environment") == TMPL_RAW);
        CHECK(tmpl_format_for("nginx.conf") == TMPL_NGINX);
        CHECK(tmpl_format_for("colony-nginx-site.conf.tmpl") == TMPL_NGINX);
        CHECK(tmpl_format_for("nginx/site.conf") == TMPL_RAW);
        CHECK(tmpl_format_for("backup.sh") == TMPL_SHELL);
        CHECK(tmpl_format_for("update.sh.tmpl") == TMPL_SHELL);
        CHECK(tmpl_format_for("colonyos.service") == TMPL_RAW);
        CHECK(tmpl_format_for("README") == TMPL_RAW);
        CHECK(tmpl_format_for(".tmpl") == TMPL_RAW);
        CHECK(tmpl_format_for("x.yml.tmpl.bak") == TMPL_RAW);
        CHECK(tmpl_format_for("ecosystem.config.js.tmpl") == TMPL_JS);
        CHECK(tmpl_format_for("apps.env.CJS") == TMPL_JS);
        CHECK(tmpl_format_for("x.json") == TMPL_RAW);

        enum tmpl_format f;
        for (int i = TMPL_RAW; i <= TMPL_JS; i++) {
                CHECK(tmpl_format_from_string(tmpl_format_name((enum tmpl_format)i), &f) == 0);
                CHECK_INTEQ(f, i);
        }
        CHECK(tmpl_format_from_string("toml", &f) == -EINVAL);
}

TEST(variables_dotted_and_raw)
{
        _cleanup_free_ char *a = render("Hi {{name}}, {{ db.host }}:{{db.port}}{{a.b.c}}!\n",
                                        "{\"name\": \"Ann\", \"db\": {\"host\": \"h\", "
                                        "\"port\": 5432}, \"a\": {\"b\": {\"c\": \"deep\"}}}",
                                        TMPL_RAW);
        CHECK_STREQ(a, "Hi Ann, h:5432deep!\n");

        /* Escaped by default; {{{ }}} and {{& }} are not. */
        _cleanup_free_ char *b =
                render("{{v}} {{{v}}} {{&v}} {{& v }}", "{\"v\": \"it's\"}", TMPL_SHELL);
        CHECK_STREQ(b, "'it'\\''s' it's it's it's");

        /* Text with lone braces is left alone. */
        _cleanup_free_ char *c = render("{ } {x} }} {", "{}", TMPL_RAW);
        CHECK_STREQ(c, "{ } {x} }} {");

        /* A template without tags, and an empty one. */
        _cleanup_free_ char *e = render("", "{}", TMPL_RAW);
        CHECK_STREQ(e, "");

        /* Booleans and null as variables. */
        _cleanup_free_ char *f =
                render("[{{t}}|{{f}}|{{z}}]", "{\"t\": true, \"f\": false, \"z\": null}", TMPL_RAW);
        CHECK_STREQ(f, "[true|false|]");
}

TEST(sections_truthiness)
{
        const char *ctx = "{\"t\": true, \"f\": false, \"z\": null, \"e\": \"\", \"s\": \"str\", "
                          "\"zero\": 0, \"el\": [], \"em\": {}, \"m\": {\"k\": \"v\"}}";
        _cleanup_free_ char *a =
                render("{{#t}}T{{/t}}{{#f}}F{{/f}}{{#z}}Z{{/z}}{{#e}}E{{/e}}{{#s}}S{{/s}}"
                       "{{#zero}}0{{/zero}}{{#el}}L{{/el}}{{#em}}M{{/em}}{{#m}}m{{/m}}"
                       "{{#missing}}X{{/missing}}{{#m.nope}}N{{/m.nope}}",
                       ctx, TMPL_RAW);
        CHECK_STREQ(a, "TS0m");
        _cleanup_free_ char *b =
                render("{{^t}}T{{/t}}{{^f}}F{{/f}}{{^z}}Z{{/z}}{{^e}}E{{/e}}{{^s}}S{{/s}}"
                       "{{^zero}}0{{/zero}}{{^el}}L{{/el}}{{^em}}M{{/em}}{{^m}}m{{/m}}"
                       "{{^missing}}X{{/missing}}{{^m.nope}}N{{/m.nope}}",
                       ctx, TMPL_RAW);
        CHECK_STREQ(b, "FZELMXN");
        /* A truthy scalar is pushed: {{.}} is the value. */
        _cleanup_free_ char *c = render("{{#s}}<{{.}}>{{/s}}", ctx, TMPL_RAW);
        CHECK_STREQ(c, "<str>");
}

TEST(sections_loops_and_stack)
{
        const char *ctx = "{\"name\": \"outer\", \"list\": [\"a\", \"b\", \"c\"], "
                          "\"users\": [{\"name\": \"ann\", \"keys\": [\"k1\", \"k2\"]}, "
                          "{\"name\": \"bob\", \"keys\": []}], "
                          "\"db\": {\"host\": \"h\", \"port\": 1}}";
        _cleanup_free_ char *a = render("{{#list}}[{{.}}]{{/list}}", ctx, TMPL_RAW);
        CHECK_STREQ(a, "[a][b][c]");
        /* Inner names shadow outer ones; missing ones are found outward. */
        _cleanup_free_ char *b = render("{{#users}}{{name}}({{#keys}}{{.}}/{{name}} {{/keys}}"
                                        "{{^keys}}none{{/keys}}) {{/users}}{{name}}",
                                        ctx, TMPL_RAW);
        CHECK_STREQ(b, "ann(k1/ann k2/ann ) bob(none) outer");
        /* A map section pushes the map. */
        _cleanup_free_ char *c = render("{{#db}}{{host}}:{{port}} {{name}}{{/db}}", ctx, TMPL_RAW);
        CHECK_STREQ(c, "h:1 outer");
        /* Dotted names in sections, and a loop over a dotted name. */
        _cleanup_free_ char *e = render("{{#db.host}}{{.}}{{/db.host}}|"
                                        "{{#users}}{{#keys}}{{.}}{{/keys}}{{/users}}",
                                        ctx, TMPL_RAW);
        CHECK_STREQ(e, "h|k1k2");
        /* The same section name nested in itself. */
        _cleanup_free_ char *f =
                render("{{#a}}{{#a}}{{x}}{{/a}}{{/a}}", "{\"a\": {\"a\": {\"x\": 1}}}", TMPL_RAW);
        CHECK_STREQ(f, "1");
}

TEST(dotted_names_resolve_from_the_first_part)
{
        /* Only the first part walks outward (mustache's rule): here "b"
         * is found in a, which has no "c", so the outer b.c is not used. */
        size_t n;
        _cleanup_free_ char *e =
                render_error("{{#a}}{{b.c}}{{/a}}",
                             "{\"a\": {\"b\": {}}, \"b\": {\"c\": \"outer\"}}", TMPL_RAW, &n);
        CHECK_STREQ(e, "t.tmpl:1:7: variable 'b.c' is not defined: 'b' has no key 'c'");
        _cleanup_free_ char *ok = render(
                "{{#a}}{{b.c}}{{/a}}", "{\"a\": {\"x\": 1}, \"b\": {\"c\": \"outer\"}}", TMPL_RAW);
        CHECK_STREQ(ok, "outer");
}

TEST(standalone_lines)
{
        const char *ctx = "{\"items\": [{\"n\": \"a\"}, {\"n\": \"b\"}], \"on\": true, "
                          "\"off\": false}";
        /* Section tags on their own lines vanish with the line, so YAML
         * indentation stays as written. */
        _cleanup_free_ char *a = render("list:\n"
                                        "  {{#items}}\n"
                                        "  - name: {{n}}\n"
                                        "  {{/items}}\n"
                                        "end\n",
                                        ctx, TMPL_RAW);
        CHECK_STREQ(a, "list:\n  - name: a\n  - name: b\nend\n");
        /* Inverted and comment tags too, with tabs, CRLF and at the end
         * of the file without a newline. */
        _cleanup_free_ char *c = render("x\n"
                                        "\t{{^off}}  \r\n"
                                        "y\n"
                                        "{{/off}}\n"
                                        "  {{! a comment }}\n"
                                        "{{! a comment\n"
                                        "    over lines }}\n"
                                        "z\n"
                                        "{{#on}}\n"
                                        "{{/on}}",
                                        ctx, TMPL_RAW);
        CHECK_STREQ(c, "x\ny\nz\n");
        /* Not standalone: other text on the line, or a variable. */
        _cleanup_free_ char *e = render("a {{#on}}\nb\n{{/on}} c\n  {{off}}\n", ctx, TMPL_RAW);
        CHECK_STREQ(e, "a \nb\n c\n  false\n");
        /* Two tags on one line are not standalone. */
        _cleanup_free_ char *f = render("{{#on}}{{/on}}\nx\n", ctx, TMPL_RAW);
        CHECK_STREQ(f, "\nx\n");
        /* A standalone tag at the very start and end. */
        _cleanup_free_ char *g = render("{{#on}}\nbody\n{{/on}}\n", ctx, TMPL_RAW);
        CHECK_STREQ(g, "body\n");
        _cleanup_free_ char *h = render("  {{#off}}\nbody\n  {{/off}}\nafter", ctx, TMPL_RAW);
        CHECK_STREQ(h, "after");
}

TEST(set_delimiters)
{
        const char *ctx = "{\"name\": \"db\", \"on\": true, \"l\": [1, 2]}";
        /* Text with "{{" of its own, such as a docker format string; the
         * set-delimiter tags are standalone. */
        _cleanup_free_ char *a = render("check:\n"
                                        "  {{=<% %>=}}\n"
                                        "  docker inspect -f '{{.State.Health.Status}}' <%name%>\n"
                                        "  <%#l%><%.%>,<%/l%> <%{name}%> <%& name%><%! c %>\n"
                                        "  <%={{ }}=%>\n"
                                        "{{#on}}{{name}}{{/on}}\n",
                                        ctx, TMPL_SHELL);
        CHECK_STREQ(a, "check:\n"
                       "  docker inspect -f '{{.State.Health.Status}}' db\n"
                       "  1,2, db db\n"
                       "db\n");
        /* Delimiters of other lengths, and with '{' in them. */
        _cleanup_free_ char *b = render(
                "{{=[ ]=}}[name] {{name}} [={{{ }}}=]{{{name}}} {{{{name}}}}", ctx, TMPL_RAW);
        CHECK_STREQ(b, "db {{name}} db db");
}

TEST(whitespace_rules)
{
        struct {
                const char *tmpl, *ctx, *want;
        } cases[] = {
                /* Standalone with no line before, or none after. */
                {"  {{#b}}\n#{{/b}}\n/", "{\"b\": true}", "#\n/"},
                {"#{{#b}}\n/\n  {{/b}}", "{\"b\": true}", "#\n/\n"},
                {"|\r\n{{#b}}\r\n{{/b}}\r\n|", "{\"b\": true}", "|\r\n|"},
                /* Whitespace inside a section and inside tags. */
                {" | {{#b}} {{! x }}\n {{/b}} | \n", "{\"b\": true}", " |  \n  | \n"},
                {"|{{# b }}={{/ b }}|", "{\"b\": true}", "|=|"},
                {"  12 {{! 34 }}\n", "{}", "  12 \n"},
                {"a {{! one }} b", "{}", "a  b"},
                /* Set-delimiter tags: inline, standalone, padded. */
                {"| {{=@ @=}} |", "{}", "|  |"},
                {" | {{=@ @=}}\n", "{}", " | \n"},
                {"  {{=@ @=}}\n=", "{}", "="},
                {"=\n  {{=@ @=}}", "{}", "=\n"},
                {"|{{= @   @ =}}|", "{}", "||"},
                {"[\n{{^s}}\n  {{d}}\n{{/s}}\n{{= | | =}}\n|^s|\n  |d|\n|/s|\n]\n",
                 "{\"s\": false, \"d\": \"I\"}", "[\n  I\n  I\n]\n"},
                /* Sequences of sequences, walked with {{#.}}. */
                {"{{#l}}({{#.}}{{.}}{{/.}}){{/l}}", "{\"l\": [[1, 2], [\"a\", \"b\"]]}",
                 "(12)(ab)"},
                /* Outer names seen from three levels down. */
                {"{{#x}}{{#y}}{{#z}}{{p}}{{q}}{{r}}{{/z}}{{/y}}{{/x}}",
                 "{\"x\": {\"p\": 1}, \"y\": {\"q\": 2}, \"z\": {\"r\": 3}}", "123"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_free_ char *out = render(cases[i].tmpl, cases[i].ctx, TMPL_RAW);
                if (!out || !streq(out, cases[i].want))
                        fprintf(stderr, "  case %zu\n", i);
                CHECK_STREQ(out, cases[i].want);
        }
}

TEST(a_yaml_template)
{
        const char *tmpl = "services:\n"
                           "{{#services}}\n"
                           "  {{name}}:\n"
                           "    image: {{image}}\n"
                           "    environment:\n"
                           "{{#env}}\n"
                           "      {{key}}: {{value}}\n"
                           "{{/env}}\n"
                           "{{^env}}\n"
                           "      {}\n"
                           "{{/env}}\n"
                           "{{/services}}\n";
        const char *ctx = "{\"services\": [{\"name\": \"db\", \"image\": \"postgres:16\", "
                          "\"env\": [{\"key\": \"A\", \"value\": \"x: y\"}, "
                          "{\"key\": \"B\", \"value\": 5}]}, "
                          "{\"name\": \"cache\", \"image\": \"redis\", \"env\": []}]}";
        _cleanup_free_ char *out = render(tmpl, ctx, TMPL_YAML);
        CHECK_STREQ(out, "services:\n"
                         "  \"db\":\n"
                         "    image: \"postgres:16\"\n"
                         "    environment:\n"
                         "      \"A\": \"x: y\"\n"
                         "      \"B\": 5\n"
                         "  \"cache\":\n"
                         "    image: \"redis\"\n"
                         "    environment:\n"
                         "      {}\n");
        struct diags d = {0};
        struct node *n = NULL;
        REQUIRE(out);
        CHECK(yaml_parse("out.yaml", out, strlen(out), &n, &d) == 0);
        CHECK_STREQ(
                node_get_str(node_get(node_get(node_get(n, "services"), "db"), "environment"), "A"),
                "x: y");
        node_free(n);
        diags_free(&d);
}

TEST(errors_with_line_and_column)
{
        struct {
                const char *tmpl, *ctx, *want;
        } cases[] = {
                {"ok\n  {{name\n", "{}",
                 "t.tmpl:2:3: unclosed tag: '{{' without '}}' on the same line"},
                {"{{a\n}}", "{}", "t.tmpl:1:1: unclosed tag: '{{' without '}}' on the same line"},
                {"x {{{a}}", "{\"a\": 1}",
                 "t.tmpl:1:3: unclosed tag: '{{{' without '}}}' on the same line"},
                {"x\n{{! never closed\n", "{}", "t.tmpl:2:1: unclosed comment: '{{!' without '}}'"},
                {"a\n {{#s}}\nb\n", "{}", "t.tmpl:2:2: section 's' is not closed (no '{{/s}}')"},
                {"{{#a}}\n{{^b}}{{/b}}\n  {{#c}}", "{}",
                 "t.tmpl:3:3: section 'c' is not closed (no '{{/c}}')"},
                {"{{#y}}\n  {{/x}}\n", "{}",
                 "t.tmpl:2:3: '{{/x}}' does not close '{{#y}}' opened at line 1, column 1"},
                {"{{^y}}{{/x}}", "{}",
                 "t.tmpl:1:7: '{{/x}}' does not close '{{^y}}' opened at line 1, column 1"},
                {"text {{/x}}", "{}", "t.tmpl:1:6: '{{/x}}' closes no open section"},
                {"a {{}}", "{}", "t.tmpl:1:3: empty name in tag"},
                {"a\n\t{{ }}", "{}", "t.tmpl:2:2: empty name in tag"},
                {"{{#}}{{/}}", "{}", "t.tmpl:1:1: empty name in tag"},
                {"{{{ }}}", "{}", "t.tmpl:1:1: empty name in tag"},
                {"{{a b}}", "{}",
                 "t.tmpl:1:1: invalid name 'a b' (names are letters, digits, '_' and '-', joined "
                 "by '.')"},
                {"{{a..b}}", "{}",
                 "t.tmpl:1:1: invalid name 'a..b' (names are letters, digits, '_' and '-', joined "
                 "by '.')"},
                {"{{.a}}", "{}",
                 "t.tmpl:1:1: invalid name '.a' (names are letters, digits, '_' and '-', joined "
                 "by '.')"},
                {"{{>partial}}", "{}", "t.tmpl:1:1: partials ('{{>name}}') are not supported"},
                {"x\n {{=<%%>=}}", "{}",
                 "t.tmpl:2:2: invalid delimiters '<%%>' (expected two words without '=', such as "
                 "'{{=<% %>=}}')"},
                {"{{= < % >=}}", "{}",
                 "t.tmpl:1:1: invalid delimiters ' < % >' (expected two words without '=', such "
                 "as '{{=<% %>=}}')"},
                {"{{=}}", "{}", "t.tmpl:1:1: unclosed tag: '{{=' without '=}}' on the same line"},
                {"{{==}}", "{}",
                 "t.tmpl:1:1: invalid delimiters '' (expected two words without '=', such as "
                 "'{{=<% %>=}}')"},
                {"{{{}}", "{}", "t.tmpl:1:1: unclosed tag: '{{{' without '}}}' on the same line"},
                {"{{=<% %>}}", "{}",
                 "t.tmpl:1:1: unclosed tag: '{{=' without '=}}' on the same line"},
                {"{{=<% %>=}}\n<%a}}", "{}",
                 "t.tmpl:2:1: unclosed tag: '<%' without '%>' on the same line"},
                {"{{=<% %>=}}\n\n  <%{a%>", "{}",
                 "t.tmpl:3:3: unclosed tag: '<%{' without '}%>' on the same line"},
                {"{{=<% %>=}}<%!x", "{}", "t.tmpl:1:12: unclosed comment: '<%!' without '%>'"},
                {"line\n  pass: {{db_pasword}}\n", "{\"db_password\": \"x\"}",
                 "t.tmpl:2:9: variable 'db_pasword' is not defined"},
                {"{{db.pass}}", "{\"db\": {\"password\": \"x\"}}",
                 "t.tmpl:1:1: variable 'db.pass' is not defined: 'db' has no key 'pass'"},
                {"{{a.b.c}}", "{\"a\": {\"b\": \"s\"}}",
                 "t.tmpl:1:1: variable 'a.b.c' is not defined: 'a.b' is a string, not a mapping"},
                {"x: {{m}}", "{\"m\": {\"k\": 1}}",
                 "t.tmpl:1:4: variable 'm' is a mapping, not a scalar (a section '{{#m}}' walks "
                 "it)"},
                {"{{{l}}}", "{\"l\": [1]}",
                 "t.tmpl:1:1: variable 'l' is a sequence, not a scalar (a section '{{#l}}' walks "
                 "it)"},
                /* Columns count characters, not bytes. */
                {"\xc3\xa9\xe2\x82\xac {{nope}}", "{}",
                 "t.tmpl:1:4: variable 'nope' is not defined"},
                /* Positions after standalone lines and comments stay right. */
                {"{{#t}}\n{{! c\nc }}\n  {{u}}\n{{/t}}\n", "{\"t\": true}",
                 "t.tmpl:4:3: variable 'u' is not defined"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_free_ char *e = err(cases[i].tmpl, cases[i].ctx);
                if (!e || !streq(e, cases[i].want))
                        fprintf(stderr, "  case %zu: %s\n", i, cases[i].tmpl);
                CHECK_STREQ(e, cases[i].want);
        }
}

TEST(errors_nul_and_depth)
{
        struct diags d = {0};
        char *out = NULL;
        CHECK(tmpl_render("t.tmpl", "ab\n c\0d", 7, NULL, TMPL_RAW, &out, &d) == -EINVAL);
        REQUIRE(d.n == 1);
        _cleanup_free_ char *m = diag_format(&d.v[0]);
        CHECK_STREQ(m, "t.tmpl:2:3: template holds a NUL byte");
        diags_free(&d);

        struct buf b = {0};
        for (int i = 0; i < 101; i++)
                CHECK(buf_puts(&b, "{{#a}}") == 0);
        _cleanup_free_ char *deep = buf_steal(&b);
        _cleanup_free_ char *e = err(deep, "{}");
        CHECK_STREQ(e, "t.tmpl:1:601: sections nested deeper than 100");
        /* 100 levels are fine. */
        for (int i = 0; i < 100; i++)
                CHECK(buf_puts(&b, "{{#a}}") == 0);
        CHECK(buf_puts(&b, "{{x}}") == 0);
        for (int i = 0; i < 100; i++)
                CHECK(buf_puts(&b, "{{/a}}") == 0);
        _cleanup_free_ char *ok_t = buf_steal(&b);
        _cleanup_free_ char *ok = render(ok_t, "{\"a\": true, \"x\": \"deep\"}", TMPL_RAW);
        CHECK_STREQ(ok, "deep");
}

/* Sections nested over lists multiply: 30 levels over a two-item list
 * would render 2^30 times (libFuzzer found such a template taking
 * seconds); refused at the tag where the work passes its bound, as is
 * output past 64 MiB. */
TEST(errors_expansion_bounded)
{
        struct buf b = {0};
        for (int i = 0; i < 30; i++)
                CHECK(buf_puts(&b, "{{#a}}") == 0);
        CHECK(buf_puts(&b, "x") == 0);
        for (int i = 0; i < 30; i++)
                CHECK(buf_puts(&b, "{{/a}}") == 0);
        _cleanup_free_ char *t = buf_steal(&b);
        _cleanup_free_ char *e = err(t, "{\"a\": [1, 2]}");
        CHECK(e && startswith(e, "t.tmpl:1:") && strstr(e, "expands past 4194304 steps"));

        const size_t big = 1u << 20;
        _cleanup_free_ char *t2 = malloc(big + 32);
        REQUIRE(t2);
        strcpy(t2, "{{#a}}");
        memset(t2 + 6, 'y', big);
        strcpy(t2 + 6 + big, "{{/a}}");
        _cleanup_free_ char *list = NULL;
        struct buf l = {0};
        CHECK(buf_puts(&l, "{\"a\": [0") == 0);
        for (int i = 1; i < 70; i++)
                CHECK(buf_printf(&l, ", %d", i) == 0);
        CHECK(buf_puts(&l, "]}") == 0);
        list = buf_steal(&l);
        _cleanup_free_ char *e2 = err(t2, list);
        CHECK(e2 && strstr(e2, "output grows past 64 MiB"));
}

/* CI's fuzzing found a template timing out: a missing variable inside
 * eleven nested sections over a three-item list was reported 177,147
 * times, each copying every message before it. A tag that fails says so
 * once, however often a list renders it. */
TEST(errors_said_once_per_tag)
{
        struct buf b = {0};
        for (int i = 0; i < 11; i++)
                CHECK(buf_puts(&b, "{{#a}}") == 0);
        CHECK(buf_puts(&b, "{{nope}}{{x.y}}") == 0);
        for (int i = 0; i < 11; i++)
                CHECK(buf_puts(&b, "{{/a}}") == 0);
        _cleanup_free_ char *t = buf_steal(&b);
        struct diags d = {0};
        _cleanup_(node_freep) struct node *ctx = NULL;
        const char *json = "{\"a\": [1, 2, 3], \"x\": 1}";
        char *out = NULL;
        REQUIRE(json_parse("ctx.json", json, strlen(json), &ctx, &d) == 0);
        CHECK(tmpl_render("t.tmpl", t, strlen(t), ctx, TMPL_RAW, &out, &d) < 0);
        CHECK(!out);
        CHECK(d.n == 2);
        CHECK(d.n == 2 && strstr(d.v[0].message, "'nope' is not defined"));
        CHECK(d.n == 2 && strstr(d.v[1].message, "'x.y' is not defined: 'x' is a"));
        diags_free(&d);
}

/* Each name looked up walks every context on the stack and every key of
 * each: ten sections deep in maps of 4,000 keys, that is counted in the
 * bound too (not only the tags). */
TEST(errors_lookup_work_bounded)
{
        struct buf c = {0}, b = {0};
        CHECK(buf_puts(&c, "{\"l\": [{") == 0);
        for (int i = 0; i < 4000; i++)
                CHECK(buf_printf(&c, "%s\"k%d\": %d", i ? ", " : "", i, i) == 0);
        CHECK(buf_puts(&c, "}, {\"k\": 1}]}") == 0);
        for (int i = 0; i < 10; i++)
                CHECK(buf_puts(&b, "{{#l}}") == 0);
        CHECK(buf_puts(&b, "{{#zz}}x{{/zz}}") == 0);
        for (int i = 0; i < 10; i++)
                CHECK(buf_puts(&b, "{{/l}}") == 0);
        _cleanup_free_ char *ctx = buf_steal(&c), *t = buf_steal(&b);
        _cleanup_free_ char *e = err(t, ctx);
        CHECK(e && strstr(e, "expands past 4194304 steps"));
}

TEST(every_render_error_is_reported)
{
        size_t n = 0;
        _cleanup_free_ char *e =
                render_error("{{a}}\n{{#s}}{{b}}{{/s}}\n{{v}}\n{{#no}}{{c}}{{/no}}",
                             "{\"s\": [1, 2], \"v\": \"$\"}", TMPL_NGINX, &n);
        CHECK_STREQ(e, "t.tmpl:1:1: variable 'a' is not defined");
        /* a, b (once, though the list renders it twice), v; c is in a
         * skipped section. */
        CHECK_INTEQ(n, 3);
}

TEST(escape_yaml)
{
        _cleanup_free_ char *a = esc(NASTY, TMPL_YAML);
        CHECK_STREQ(a, "\" pa$s'w\\\"o#rd \\\\x${HOME} {a}: b\\t\xc3\xa9\xe2\x82\xac \"");
        _cleanup_free_ char *b = esc("line1\nline2\r\x01\x7f", TMPL_YAML);
        CHECK_STREQ(b, "\"line1\\nline2\\r\\x01\\x7F\"");
        /* Characters YAML reads as line breaks, and a BOM. */
        _cleanup_free_ char *c = esc("a\xc2\x85"
                                     "b\xe2\x80\xa8"
                                     "c\xe2\x80\xa9"
                                     "d\xef\xbb\xbf"
                                     "e\xc2\x80",
                                     TMPL_YAML);
        CHECK_STREQ(c, "\"a\\x85b\\u2028c\\u2029d\\uFEFFe\\x80\"");
        _cleanup_free_ char *e = esc("", TMPL_YAML);
        CHECK_STREQ(e, "\"\"");
        /* Types survive: canonical numbers, booleans and null are plain;
         * strings that look like them stay strings. */
        _cleanup_free_ char *f = render("{{i}} {{n}} {{r}} {{t}} {{z}} {{s}} {{b}}",
                                        "{\"i\": 8080, \"n\": -3, \"r\": 1.5, \"t\": true, "
                                        "\"z\": null, \"s\": \"8080\", \"b\": \"true\"}",
                                        TMPL_YAML);
        CHECK_STREQ(f, "8080 -3 1.5 true null \"8080\" \"true\"");
        /* Plain YAML scalars in the context resolve to their types; forms
         * YAML 1.1 readers would read differently are quoted. */
        struct diags d = {0};
        struct node *ctx = NULL;
        const char *y = "a: 0600\nb: 0x1f\nc: True\nd: ~\ne: 1e3\nf: 12\ng: yes\n";
        REQUIRE(yaml_parse("ctx.yaml", y, strlen(y), &ctx, &d) == 0);
        char *out = NULL;
        const char *t = "{{a}} {{b}} {{c}} {{d}} {{e}} {{f}} {{g}}";
        CHECK(tmpl_render("t.yml", t, strlen(t), ctx, TMPL_YAML, &out, &d) == 0);
        CHECK_STREQ(out, "\"0600\" \"0x1f\" true null \"1e3\" 12 \"yes\"");
        free(out);
        node_free(ctx);
        diags_free(&d);
}

TEST(escape_yaml_round_trips_through_libyaml)
{
        /* Every byte from 1 to 127, and UTF-8 of every length. */
        char all[200];
        size_t n = 0;
        for (int c = 1; c < 128; c++)
                all[n++] = (char)c;
        memcpy(all + n, "\xc2\x85\xc2\xa0\xe2\x80\xa8\xef\xbb\xbf\xf0\x9f\x94\x91", 14);
        all[n + 14] = '\0';
        const char *values[] = {all,  NASTY,  " ",    "\n",   "- x", "? y",  "'",    "\"",  "#",
                                "\\", "${X}", "a: b", "[1]",  "&a",  "*a",   "!tag", "%x",  "@x",
                                "`x", "|",    ">",    "null", "~",   "true", "1",    "0o7", ".inf"};
        for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
                struct node *ctx = node_new(NODE_MAP);
                REQUIRE(ctx && node_set_str(ctx, "v", values[i]) == 0);
                struct diags d = {0};
                char *out = NULL;
                CHECK(tmpl_render("t.yml", "v: {{v}}\n", 9, ctx, TMPL_YAML, &out, &d) == 0);
                _cleanup_free_ char *back = out ? yaml_value(out) : NULL;
                if (!back || !streq(back, values[i]))
                        fprintf(stderr, "  value %zu rendered as %s\n", i, out);
                CHECK(back && streq(back, values[i]));
                free(out);
                node_free(ctx);
                diags_free(&d);
        }
}

TEST(escape_yaml_refuses_invalid_utf8)
{
        const char *bad[] = {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct node *ctx = node_new(NODE_MAP);
                REQUIRE(ctx && node_set_str(ctx, "pw", bad[i]) == 0);
                struct diags d = {0};
                char *out = NULL;
                CHECK(tmpl_render("t.yml", "{{pw}}", 6, ctx, TMPL_COMPOSE, &out, &d) == -EINVAL);
                REQUIRE(d.n == 1);
                _cleanup_free_ char *m = diag_format(&d.v[0]);
                CHECK_STREQ(m, "t.yml:1:1: variable 'pw' is not valid UTF-8, which a YAML file "
                               "cannot hold (compose format)");
                node_free(ctx);
                diags_free(&d);
        }
}

TEST(escape_compose)
{
        _cleanup_free_ char *a = esc(NASTY, TMPL_COMPOSE);
        CHECK_STREQ(a, "\" pa$$s'w\\\"o#rd \\\\x$${HOME} {a}: b\\t\xc3\xa9\xe2\x82\xac \"");
        _cleanup_free_ char *b = esc("$$", TMPL_COMPOSE);
        CHECK_STREQ(b, "\"$$$$\"");
        _cleanup_free_ char *c = esc_json("5432", TMPL_COMPOSE);
        CHECK_STREQ(c, "5432");
}

TEST(escape_env)
{
        _cleanup_free_ char *a = esc(NASTY, TMPL_ENV);
        CHECK_STREQ(a, "' pa$s\\'w\"o#rd \\\\x${:-$}{HOME} {a}: b\t\xc3\xa9\xe2\x82\xac '");
        _cleanup_free_ char *b = esc("simple-1.2_x@y:z/w,%+=", TMPL_ENV);
        CHECK_STREQ(b, "simple-1.2_x@y:z/w,%+=");
        _cleanup_free_ char *c = esc("two\nlines\n", TMPL_ENV);
        CHECK_STREQ(c, "'two\nlines\n'");
        /* A trailing backslash cannot stand before the closing quote. */
        _cleanup_free_ char *e = esc("a\\b\\\\", TMPL_ENV);
        CHECK_STREQ(e, "'a\\\\b\\\\${:-\\\\}'");
        _cleanup_free_ char *f = esc("", TMPL_ENV);
        CHECK_STREQ(f, "''");
        _cleanup_free_ char *g = esc("$x $ ${", TMPL_ENV);
        CHECK_STREQ(g, "'$x $ ${:-$}{'");

        size_t n;
        _cleanup_free_ char *h =
                render_error("A=1\nB={{v}}\n", "{\"v\": \"x\\r\\ny\"}", TMPL_ENV, &n);
        CHECK_STREQ(h, "t.tmpl:2:3: variable 'v' holds a carriage return, which an env file "
                       "cannot hold (docker-compose reads it with newline translation) "
                       "(env format)");
        /* Raw output is not checked. */
        _cleanup_free_ char *i = render("{{{v}}}", "{\"v\": \"x\\ry\"}", TMPL_ENV);
        CHECK_STREQ(i, "x\ry");
}

TEST(escape_nginx)
{
        _cleanup_free_ char *a = esc(" pa's\\w\"o#rd {a}; b\t\xc3\xa9 ", TMPL_NGINX);
        CHECK_STREQ(a, "\" pa's\\\\w\\\"o#rd {a}; b\\t\xc3\xa9 \"");
        _cleanup_free_ char *b = esc("colony.example.com", TMPL_NGINX);
        CHECK_STREQ(b, "colony.example.com");
        _cleanup_free_ char *c = esc_json("50051", TMPL_NGINX);
        CHECK_STREQ(c, "50051");
        _cleanup_free_ char *e =
                render("proxy_pass http://127.0.0.1:{{port}};", "{\"port\": 8080}", TMPL_NGINX);
        CHECK_STREQ(e, "proxy_pass http://127.0.0.1:8080;");
        _cleanup_free_ char *f = esc("", TMPL_NGINX);
        CHECK_STREQ(f, "\"\"");

        size_t n;
        _cleanup_free_ char *g =
                render_error("  return 200 {{secret}};", "{\"secret\": \"a$b\"}", TMPL_NGINX, &n);
        CHECK_STREQ(g, "t.tmpl:1:14: variable 'secret' holds a '$', which nginx would expand as a "
                       "variable (nginx strings have no escape for '$') (nginx format)");
        _cleanup_free_ char *h =
                render_error("x {{secret}};", "{\"secret\": \"a\\nb\"}", TMPL_NGINX, &n);
        CHECK_STREQ(h, "t.tmpl:1:3: variable 'secret' holds a line break, which would split an "
                       "nginx directive's value (a header, for one) (nginx format)");
        _cleanup_free_ char *i =
                render_error("x {{secret}};", "{\"secret\": \"a\\rb\"}", TMPL_NGINX, &n);
        CHECK(i && strstr(i, "holds a line break"));
}

TEST(escape_shell)
{
        _cleanup_free_ char *a = esc(NASTY, TMPL_SHELL);
        CHECK_STREQ(a, "' pa$s'\\''w\"o#rd \\x${HOME} {a}: b\t\xc3\xa9\xe2\x82\xac '");
        _cleanup_free_ char *b = esc("/usr/bin/x", TMPL_SHELL);
        CHECK_STREQ(b, "/usr/bin/x");
        _cleanup_free_ char *c = esc("''", TMPL_SHELL);
        CHECK_STREQ(c, "''\\'''\\'''");
        _cleanup_free_ char *e = esc("", TMPL_SHELL);
        CHECK_STREQ(e, "''");
        _cleanup_free_ char *f = esc("a\nb", TMPL_SHELL);
        CHECK_STREQ(f, "'a\nb'");
        _cleanup_free_ char *g = esc("~root", TMPL_SHELL);
        CHECK_STREQ(g, "'~root'");
        _cleanup_free_ char *h = esc_json("null", TMPL_SHELL);
        CHECK_STREQ(h, "''");
}

TEST(escape_js)
{
        _cleanup_free_ char *a = esc(NASTY, TMPL_JS);
        CHECK_STREQ(a, "\" pa$s'w\\\"o#rd \\\\x${HOME} {a}: b\\t\xc3\xa9\xe2\x82\xac \"");
        /* Line terminators, other controls, DEL, C1 controls (U+0085 as
         * \x85, the same character), U+2028/U+2029 and a BOM: the literal
         * stays on one line. */
        _cleanup_free_ char *b = esc("a\nb\rc\x01\x1f\x7f`${x}`"
                                     "\xe2\x80\xa8"
                                     "\xe2\x80\xa9"
                                     "\xef\xbb\xbf"
                                     "\xc2\x85\xf0\x9f\x94\x91",
                                     TMPL_JS);
        CHECK_STREQ(b,
                    "\"a\\nb\\rc\\x01\\x1F\\x7F`${x}`\\u2028\\u2029\\uFEFF\\x85\xf0\x9f\x94\x91\"");
        _cleanup_free_ char *c = esc("", TMPL_JS);
        CHECK_STREQ(c, "\"\"");
        _cleanup_free_ char *e = esc("</script>'\\", TMPL_JS);
        CHECK_STREQ(e, "\"</script>'\\\\\"");
        /* Types survive; strings that look like numbers stay strings, and
         * an integer a double cannot hold exactly is a string. */
        _cleanup_free_ char *f = render("{{i}} {{n}} {{r}} {{t}} {{z}} {{s}} {{b}} {{big}} {{m15}}",
                                        "{\"i\": 8080, \"n\": -3, \"r\": 1.5, \"t\": false, "
                                        "\"z\": null, \"s\": \"8080\", \"b\": \"true\", "
                                        "\"big\": 9007199254740993, \"m15\": -999999999999999}",
                                        TMPL_JS);
        CHECK_STREQ(f, "8080 -3 1.5 false null \"8080\" \"true\" \"9007199254740993\" "
                       "-999999999999999");

        struct node *ctx = node_new(NODE_MAP);
        REQUIRE(ctx && node_set_str(ctx, "v", "a\xc3") == 0);
        struct diags d = {0};
        char *out = NULL;
        CHECK(tmpl_render("e.js", "x = {{v}};", 10, ctx, TMPL_JS, &out, &d) == -EINVAL);
        REQUIRE(d.n == 1);
        _cleanup_free_ char *m = diag_format(&d.v[0]);
        CHECK_STREQ(m, "e.js:1:5: variable 'v' is not valid UTF-8, which a JavaScript file cannot "
                       "hold (js format)");
        node_free(ctx);
        diags_free(&d);
}

TEST(escape_raw)
{
        _cleanup_free_ char *a = esc(NASTY, TMPL_RAW);
        CHECK_STREQ(a, NASTY);
        /* Raw tags bypass the format's refusals on purpose. */
        _cleanup_free_ char *b = render("{{{v}}} {{&v}}", "{\"v\": \"$host\\n\"}", TMPL_NGINX);
        CHECK_STREQ(b, "$host\n $host\n");
}

TAP_MAIN
