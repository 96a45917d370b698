/* The YAML and JSON readers and the node tree. */
#include "json.h"
#include "yaml.h"
#include "tap.h"

static struct node *parse(const char *text, struct diags *d)
{
        struct node *n = NULL;
        if (yaml_parse("t.yaml", text, strlen(text), &n, d) < 0)
                return NULL;
        return n;
}

static char *first_diag(const char *text)
{
        struct diags d = {0};
        struct node *n = parse(text, &d);
        node_free(n);
        char *s = d.n ? diag_format(&d.v[0]) : NULL;
        diags_free(&d);
        return s;
}

TEST(yaml_map_positions)
{
        struct diags d = {0};
        struct node *n = parse("a: 1\nb:\n  - x\n  - \"y\"\nc: {k: v}\n", &d);
        REQUIRE(n && n->kind == NODE_MAP);
        CHECK_INTEQ(n->n_items, 3);
        struct node *b = node_get(n, "b");
        REQUIRE(b && b->kind == NODE_SEQ && b->n_items == 2);
        CHECK_INTEQ(b->items[1]->line, 4);
        CHECK_INTEQ(b->items[1]->column, 5);
        CHECK(b->items[1]->type == SCALAR_STR);
        CHECK_STREQ(node_get_str(node_get(n, "c"), "k"), "v");
        CHECK_STREQ(node_get(n, "a")->file, "t.yaml");
        node_free(n);
        diags_free(&d);
}

TEST(yaml_scalar_resolution)
{
        struct diags d = {0};
        struct node *n =
                parse("i: 42\nh: 0x1f\nb: true\nq: \"true\"\nz: ~\ne:\ns: 0600\nf: 1.5\n", &d);
        long long i;
        bool b;
        CHECK(node_as_int(node_get(n, "i"), &i) == 0 && i == 42);
        CHECK(node_as_int(node_get(n, "h"), &i) == 0 && i == 31);
        CHECK(node_as_bool(node_get(n, "b"), &b) == 0 && b);
        CHECK(node_as_bool(node_get(n, "q"), &b) < 0);
        CHECK(node_is_null(node_get(n, "z")));
        CHECK(node_is_null(node_get(n, "e")));
        CHECK(node_resolve(node_get(n, "f")) == SCALAR_REAL);
        CHECK_STREQ(node_get_str(n, "s"), "0600");
        node_free(n);
        diags_free(&d);
}

TEST(yaml_errors_have_line_and_column)
{
        _cleanup_free_ char *a = first_diag("a: 1\nb: [1, 2\n");
        CHECK(a && startswith(a, "t.yaml:3:1: "));
        _cleanup_free_ char *b = first_diag("a: 1\na: 2\n");
        CHECK_STREQ(b, "t.yaml:2:1: duplicate key 'a'");
        _cleanup_free_ char *c = first_diag("a: &x 1\nb: *x\n");
        CHECK(c && strstr(c, "anchors and aliases are not supported"));
        _cleanup_free_ char *e = first_diag("a: 1\n---\nb: 2\n");
        CHECK(e && strstr(e, "t.yaml:2:1: more than one YAML document"));
        _cleanup_free_ char *f = first_diag("a:\n\tb: 1\n");
        CHECK(f && startswith(f, "t.yaml:2:"));
        _cleanup_free_ char *g = first_diag("? [a]\n: 1\n");
        CHECK(g && strstr(g, "mapping keys must be plain strings"));
}

TEST(yaml_empty_document_is_null)
{
        struct diags d = {0};
        struct node *n = parse("", &d);
        CHECK(n && node_is_null(n));
        node_free(n);
        diags_free(&d);
}

TEST(json_round_trip_keeps_types)
{
        struct diags d = {0};
        struct node *n =
                parse("s: \"12\"\ni: 12\nb: false\nz: null\nl: [a, 1]\nm: \"x\\ny\"\n", &d);
        _cleanup_free_ char *j = NULL;
        CHECK(json_format(n, false, &j) == 0);
        CHECK_STREQ(
                j,
                "{\"s\":\"12\",\"i\":12,\"b\":false,\"z\":null,\"l\":[\"a\",1],\"m\":\"x\\ny\"}");
        struct node *back = NULL;
        CHECK(json_parse("x.json", j, strlen(j), &back, &d) == 0);
        CHECK(back && node_resolve(node_get(back, "s")) == SCALAR_STR);
        CHECK(node_resolve(node_get(back, "i")) == SCALAR_INT);
        CHECK_STREQ(node_get_str(back, "m"), "x\ny");
        node_free(back);
        node_free(n);
        diags_free(&d);
}

TEST(json_errors)
{
        struct diags d = {0};
        struct node *n = NULL;
        const char *bad = "{\n  \"a\": 1,\n  \"b\": ]\n}";
        CHECK(json_parse("x.json", bad, strlen(bad), &n, &d) < 0);
        CHECK(d.n == 1 && d.v[0].line == 3);
        diags_free(&d);
        CHECK(json_parse("x.json", "{} x", 4, &n, &d) < 0);
        diags_free(&d);
}

TEST(yaml_format_round_trip)
{
        struct diags d = {0};
        const char *src =
                "name: demo\nempty: {}\nnone: []\nn: 5\nb: true\nz: null\n"
                "s: \"yes\"\nq: \"a: b # c\\n'x'\"\nlist:\n  - id: x\n    inputs: {a: 1}\n"
                "  - plain\n\"key with space\": \"007\"\n";
        _cleanup_node_ struct node *n = parse(src, &d);
        REQUIRE(n);
        _cleanup_free_ char *out = NULL;
        CHECK_INTEQ(yaml_format(n, &out), 0);
        REQUIRE(out);
        _cleanup_node_ struct node *m = parse(out, &d);
        REQUIRE(m);
        _cleanup_free_ char *j1 = NULL, *j2 = NULL;
        json_format(n, false, &j1);
        json_format(m, false, &j2);
        CHECK_STREQ(j1, j2);
        CHECK(strstr(out, "s: \"yes\"\n") != NULL);
        CHECK(strstr(out, "name: demo\n") != NULL);
        CHECK_INTEQ(d.n, 0);
        diags_free(&d);
}

TEST(yaml_quote_line_breaks_and_controls)
{
        struct diags d = {0};
        const char *v = "a\xc2\x85"
                        "b\xe2\x80\xa8"
                        "c\xe2\x80\xa9"
                        "d\x01\xc2\x9f"
                        "e\xc3\xa9\"\\";
        struct buf b = {0};
        buf_puts(&b, "k: ");
        CHECK_INTEQ(yaml_quote(&b, v), 0);
        REQUIRE(b.data);
        CHECK(strstr(b.data, "\\u0085") && strstr(b.data, "\\u2028") && strstr(b.data, "\\u2029"));
        _cleanup_node_ struct node *n = parse(b.data, &d);
        REQUIRE(n);
        CHECK_STREQ(node_get_str(n, "k"), v);
        buf_free(&b);
        diags_free(&d);
}

TAP_MAIN
