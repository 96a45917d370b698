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
        /* null is a NULL json-c object: trailing text was let through. */
        CHECK(json_parse("x.json", "null x", 6, &n, &d) < 0);
        CHECK(json_parse("x.json", "{}\0", 3, &n, &d) < 0);
        CHECK(json_parse("x.json", "nul", 3, &n, &d) < 0);
        CHECK(json_parse("x.json", "[1", 2, &n, &d) < 0);
        diags_free(&d);
        /* A number or literal at the very end of the text was refused. */
        static const char *const ends[] = {"null", "123", "true", "-1.5", " 7 \n"};
        for (size_t i = 0; i < ARRAY_SIZE(ends); i++) {
                CHECK(json_parse("x.json", ends[i], strlen(ends[i]), &n, &d) == 0);
                CHECK(n && n->kind == NODE_SCALAR);
                node_free(n);
                n = NULL;
        }
        CHECK_INTEQ(d.n, 0);
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

/* An empty mapping or sequence at the root is written "{}" or "[]":
 * an empty document would read back as null (found by fuzz-json). */
TEST(yaml_format_empty_root)
{
        struct diags d = {0};
        const char *srcs[] = {"{}\n", "[]\n"};
        for (size_t i = 0; i < 2; i++) {
                _cleanup_node_ struct node *n = parse(srcs[i], &d);
                REQUIRE(n);
                _cleanup_free_ char *out = NULL;
                CHECK_INTEQ(yaml_format(n, &out), 0);
                CHECK_STREQ(out, srcs[i]);
        }
        CHECK_INTEQ(d.n, 0);
        diags_free(&d);
}

/* A key longer than YAML's 1024-character limit for implicit keys is
 * written as an explicit "? key" (found by fuzz-json: a 1.4 kB JSON key
 * did not read back), at the root, under a sequence item, and nested. */
TEST(yaml_format_long_keys)
{
        struct diags d = {0};
        char k[1501];
        memset(k, 'k', sizeof(k) - 1);
        k[sizeof(k) - 1] = '\0';
        _cleanup_free_ char *src = NULL;
        REQUIRE(asprintf(&src,
                         "? %s\n: 1\nlist:\n  - ? %s\n    : {a: 1}\n    b: 2\n"
                         "m:\n  ? \"%s\\n\"\n  : [1, 2]\n",
                         k, k, k) > 0);
        _cleanup_node_ struct node *n = parse(src, &d);
        REQUIRE(n);
        _cleanup_free_ char *out = NULL;
        CHECK_INTEQ(yaml_format(n, &out), 0);
        REQUIRE(out);
        _cleanup_node_ struct node *m = parse(out, &d);
        REQUIRE(m);
        _cleanup_free_ char *j1 = NULL, *j2 = NULL;
        CHECK_INTEQ(json_format(n, false, &j1), 0);
        CHECK_INTEQ(json_format(m, false, &j2), 0);
        CHECK_STREQ(j1, j2);
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

/* n nested flow sequences around a scalar, for the depth limit. */
static char *nested(size_t n, const char *open, const char *close)
{
        struct buf b = {0};
        buf_puts(&b, "a: ");
        for (size_t i = 0; i < n; i++)
                buf_puts(&b, open);
        buf_puts(&b, "x");
        for (size_t i = 0; i < n; i++)
                buf_puts(&b, close);
        buf_puts(&b, "\n");
        return buf_steal(&b);
}

TEST(yaml_depth_is_bounded_with_line_and_column)
{
        /* 40,000 unclosed: once a stack overflow (SIGSEGV). */
        _cleanup_free_ char *deep = nested(40000, "[", "");
        _cleanup_free_ char *a = first_diag(deep);
        _cleanup_free_ char *want = strprintf("t.yaml:1:%d: nested deeper than %d levels",
                                              3 + NODE_MAX_DEPTH, NODE_MAX_DEPTH);
        CHECK_STREQ(a, want);
        /* The limit counts the top-level mapping: NODE_MAX_DEPTH - 1
         * sequences inside it are fine, one more is not. */
        _cleanup_free_ char *ok = nested(NODE_MAX_DEPTH - 1, "[", "]");
        struct diags d = {0};
        _cleanup_node_ struct node *n = parse(ok, &d);
        REQUIRE(n != NULL);
        _cleanup_free_ char *out = NULL;
        CHECK_INTEQ(yaml_format(n, &out), 0);
        _cleanup_node_ struct node *back = out ? parse(out, &d) : NULL;
        CHECK(back != NULL);
        CHECK_INTEQ(d.n, 0);
        _cleanup_free_ char *over = nested(NODE_MAX_DEPTH, "[", "]");
        _cleanup_free_ char *b = first_diag(over);
        CHECK(b && strstr(b, "nested deeper than"));
        /* Block style, one level a line. */
        struct buf blk = {0};
        for (unsigned i = 0; i < 200; i++)
                buf_printf(&blk, "%*sk:\n", (int)(2 * i), "");
        _cleanup_free_ char *c = first_diag(blk.data);
        _cleanup_free_ char *wantc =
                strprintf("t.yaml:%d:%d: nested deeper than %d levels", NODE_MAX_DEPTH + 1,
                          2 * NODE_MAX_DEPTH + 1, NODE_MAX_DEPTH);
        CHECK_STREQ(c, wantc);
        buf_free(&blk);
        diags_free(&d);
}

TEST(json_depth_is_bounded)
{
        struct diags d = {0};
        struct node *n = NULL;
        struct buf b = {0};
        for (unsigned i = 0; i < 40000; i++)
                buf_puts(&b, "[");
        CHECK(json_parse("x.json", b.data, b.len, &n, &d) < 0);
        CHECK(d.n == 1 && strstr(d.v[0].message, "nesting too deep"));
        CHECK(n == NULL);
        diags_free(&d);
        buf_free(&b);
        /* As deep as YAML allows: read, and written back. */
        for (unsigned i = 0; i < NODE_MAX_DEPTH; i++)
                buf_puts(&b, "[");
        for (unsigned i = 0; i < NODE_MAX_DEPTH; i++)
                buf_puts(&b, "]");
        CHECK(json_parse("x.json", b.data, b.len, &n, &d) == 0);
        _cleanup_free_ char *j = NULL;
        CHECK(n && json_format(n, false, &j) == 0);
        CHECK_STREQ(j, b.data);
        node_free(n);
        n = NULL;
        buf_free(&b);
        for (unsigned i = 0; i <= NODE_MAX_DEPTH; i++)
                buf_puts(&b, "[");
        for (unsigned i = 0; i <= NODE_MAX_DEPTH; i++)
                buf_puts(&b, "]");
        CHECK(json_parse("x.json", b.data, b.len, &n, &d) < 0);
        CHECK(n == NULL);
        buf_free(&b);
        diags_free(&d);
}

/* Trees built in code have no depth limit: freeing one a million deep
 * must not recurse (once a stack overflow), and the walks that do recurse
 * refuse it. */
TEST(node_walks_on_a_deep_tree)
{
        struct node *root = node_new(NODE_SEQ), *at = root;
        REQUIRE(root);
        for (unsigned i = 0; i < 1000000; i++) {
                struct node *c = node_new(NODE_SEQ);
                REQUIRE(c && node_append(at, NULL, c) == 0);
                at = c;
        }
        node_set_origin(root, "deep");
        CHECK_STREQ(at->file, "deep");
        CHECK(node_copy(root) == NULL);
        char *s = NULL;
        CHECK(yaml_format(root, &s) < 0);
        CHECK(json_format(root, false, &s) < 0);
        node_free(root);
}

/* A NUL or a byte that is not UTF-8 is reported where it is (libyaml's
 * reader gives an offset, no mark: it read 1:1). */
TEST(yaml_encoding_errors_have_line_and_column)
{
        struct diags d = {0};
        struct node *n = NULL;
        static const char nul[] = "a: 1\nb: 2\nc: 3\nd: 4\ne: x\0y\n";
        CHECK(yaml_parse("t.yaml", nul, sizeof(nul) - 1, &n, &d) < 0);
        REQUIRE(d.n == 1);
        _cleanup_free_ char *a = diag_format(&d.v[0]);
        CHECK_STREQ(a, "t.yaml:5:5: control characters are not allowed (#x0)");
        diags_free(&d);
        /* Columns count characters: "é" is one. */
        _cleanup_free_ char *b = first_diag("a: 1\nb: 2\nc: 3\nd: 4\n\xc3\xa9: \xff\n");
        CHECK_STREQ(b, "t.yaml:5:4: invalid leading UTF-8 octet (#xFF)");
        _cleanup_free_ char *c = first_diag("a: 1\r\nb: 2\r\nc: \xc3\x28\n");
        CHECK_STREQ(c, "t.yaml:3:5: invalid trailing UTF-8 octet (#x28)");
        _cleanup_free_ char *e = first_diag("\xef\xbb\xbf"
                                            "a: \x01\n");
        CHECK_STREQ(e, "t.yaml:1:4: control characters are not allowed (#x1)");
        _cleanup_free_ char *f = first_diag("a: 1\nb: \xe2\x82");
        CHECK(f && startswith(f, "t.yaml:2:4: incomplete UTF-8 octet sequence"));
}

/* 400,000 keys: the duplicate check once scanned the mapping for each key
 * (80,000 took 13-23 s, this would take many minutes and meet run.sh's
 * timeout); node_get() over every key is a binary search. No time is
 * asserted. */
TEST(yaml_big_mapping_is_near_linear)
{
        enum {
                N = 400000
        };
        struct buf b = {0};
        for (unsigned i = 0; i < N; i++)
                buf_printf(&b, "key%u: %u\n", (i * 7919u) % N, i);
        struct diags d = {0};
        _cleanup_node_ struct node *n = parse(b.data, &d);
        REQUIRE(n && n->n_items == N);
        size_t found = 0;
        for (unsigned i = 0; i < N; i++) {
                char k[32];
                snprintf(k, sizeof(k), "key%u", i);
                const struct node *v = node_get(n, k);
                found += v && v->key && streq(v->key, k);
        }
        CHECK_INTEQ(found, N);
        CHECK(node_get(n, "key") == NULL && node_get(n, "key400000") == NULL);
        _cleanup_node_ struct node *copy = node_copy(n);
        CHECK(copy && node_get(copy, "key17") && node_get(copy, "key399999"));
        /* A duplicate in a big mapping: the first repeat, at its key. */
        buf_printf(&b, "key5: x\nkey3: y\nkey5: z\n");
        _cleanup_free_ char *e = first_diag(b.data);
        _cleanup_free_ char *want = strprintf("t.yaml:%d:1: duplicate key 'key5'", N + 1);
        CHECK_STREQ(e, want);
        buf_free(&b);
        diags_free(&d);
}

TEST(node_set_keeps_big_maps_searchable)
{
        struct diags d = {0};
        struct buf b = {0};
        for (unsigned i = 0; i < 100; i++)
                buf_printf(&b, "k%u: %u\n", i, i);
        _cleanup_node_ struct node *n = parse(b.data, &d);
        REQUIRE(n);
        CHECK_INTEQ(node_set_str(n, "k50", "new"), 0);
        CHECK_STREQ(node_get_str(n, "k50"), "new");
        CHECK_INTEQ(node_set_str(n, "added", "a"), 0);
        CHECK_STREQ(node_get_str(n, "added"), "a");
        CHECK_STREQ(node_get_str(n, "k99"), "99");
        CHECK_INTEQ(n->n_items, 101);
        const char *js = "{\"b\": 1, \"a\": 2, \"a\": 3}";
        struct node *j = NULL;
        CHECK(json_parse("x.json", js, strlen(js), &j, &d) == 0);
        CHECK(j && j->n_items == 2 && node_get_str(j, "a") && streq(node_get_str(j, "a"), "3"));
        node_free(j);
        buf_free(&b);
        diags_free(&d);
}

/* JSON is UTF-8: other bytes were let into strings, and a tree holding
 * them could not be written as YAML that reads back. */
TEST(json_refuses_bytes_that_are_not_utf8)
{
        struct diags d = {0};
        struct node *n = NULL;
        const char *bad = "{\n  \"a\": \"\xc3\xa9\xe7x\"\n}";
        CHECK(json_parse("x.json", bad, strlen(bad), &n, &d) < 0);
        REQUIRE(d.n == 1);
        _cleanup_free_ char *a = diag_format(&d.v[0]);
        CHECK_STREQ(a, "x.json:2:10: invalid JSON: not UTF-8 (byte #xE7)");
        diags_free(&d);
        const char *overlong = "[\"\xc0\xaf\"]", *surrogate = "[\"\xed\xa0\x80\"]";
        CHECK(json_parse("x.json", overlong, strlen(overlong), &n, &d) < 0);
        CHECK(json_parse("x.json", surrogate, strlen(surrogate), &n, &d) < 0);
        diags_free(&d);
        const char *good = "[\"\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbe\"]";
        CHECK(json_parse("x.json", good, strlen(good), &n, &d) == 0);
        _cleanup_free_ char *y = NULL;
        CHECK(n && yaml_format(n, &y) == 0);
        _cleanup_node_ struct node *back = y ? parse(y, &d) : NULL;
        CHECK(back && back->n_items == 1 &&
              streq(back->items[0]->value, "\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbe"));
        node_free(n);
        diags_free(&d);
}

/* json-c keeps \u0000 but its strings end there: what followed would be
 * checked and signed by nobody (a signed job payload ran with text after
 * it). Refused where it stands; an escaped backslash before "u0000" is
 * text, and accepted. */
TEST(json_refuses_nul_escape)
{
        struct diags d = {0};
        struct node *n = NULL;
        const char *bad = "{\"a\": \"x\\u0000{\\\"evil\\\": 1}\"}";
        CHECK(json_parse("x.json", bad, strlen(bad), &n, &d) < 0);
        REQUIRE(d.n == 1);
        _cleanup_free_ char *a = diag_format(&d.v[0]);
        CHECK_STREQ(a, "x.json:1:9: invalid JSON: \\u0000 (a NUL) in a string is refused");
        diags_free(&d);
        const char *key = "{\"k\\u0000x\": 1}";
        CHECK(json_parse("x.json", key, strlen(key), &n, &d) < 0);
        diags_free(&d);
        const char *text = "[\"\\\\u0000\"]";
        CHECK(json_parse("x.json", text, strlen(text), &n, &d) == 0);
        CHECK(n && n->n_items == 1 && streq(n->items[0]->value, "\\u0000"));
        node_free(n);
        diags_free(&d);
}

/* A real that prints like an integer is written so it reads back a real. */
TEST(yaml_format_keeps_reals_real)
{
        struct diags d = {0};
        struct node *n = NULL;
        const char *j = "[-3e10, 1.0, 2.5]";
        CHECK(json_parse("x.json", j, strlen(j), &n, &d) == 0);
        _cleanup_free_ char *y = NULL;
        CHECK(n && yaml_format(n, &y) == 0);
        CHECK_STREQ(y, "- -30000000000.0\n- 1.0\n- 2.5\n");
        _cleanup_node_ struct node *back = y ? parse(y, &d) : NULL;
        CHECK(back && node_resolve(back->items[0]) == SCALAR_REAL);
        node_free(n);
        diags_free(&d);
}

TAP_MAIN
