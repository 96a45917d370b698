#include "json.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <json-c/json.h>

/* json-c represents null as a NULL object, so failure is told apart by
 * *ok. A tree deeper than NODE_MAX_DEPTH is a failure too (no reader
 * builds one). */
static struct json_object *to_json(const struct node *n, unsigned depth, bool *ok)
{
        struct json_object *o;
        long long i;
        double d;
        bool b;

        if (n->kind != NODE_SCALAR && depth >= NODE_MAX_DEPTH) {
                *ok = false;
                return NULL;
        }
        switch (n->kind) {
        case NODE_MAP:
                o = json_object_new_object();
                *ok = o != NULL;
                for (size_t k = 0; o && k < n->n_items; k++) {
                        struct json_object *c = to_json(n->items[k], depth + 1, ok);
                        if (!*ok || json_object_object_add(o, n->items[k]->key, c) < 0) {
                                *ok = false;
                                json_object_put(c);
                                json_object_put(o);
                                return NULL;
                        }
                }
                return o;
        case NODE_SEQ:
                o = json_object_new_array();
                *ok = o != NULL;
                for (size_t k = 0; o && k < n->n_items; k++) {
                        struct json_object *c = to_json(n->items[k], depth + 1, ok);
                        if (!*ok || json_object_array_add(o, c) < 0) {
                                *ok = false;
                                json_object_put(c);
                                json_object_put(o);
                                return NULL;
                        }
                }
                return o;
        case NODE_SCALAR:
                break;
        }
        switch (node_resolve(n)) {
        case SCALAR_NULL:
                return NULL;
        case SCALAR_BOOL:
                node_as_bool(n, &b);
                o = json_object_new_boolean(b);
                *ok = o != NULL;
                return o;
        case SCALAR_INT:
                if (node_as_int(n, &i) == 0) {
                        o = json_object_new_int64(i);
                        *ok = o != NULL;
                        return o;
                }
                break;
        case SCALAR_REAL:
                if (node_as_real(n, &d) == 0) {
                        o = json_object_new_double(d);
                        *ok = o != NULL;
                        return o;
                }
                break;
        default:
                break;
        }
        o = json_object_new_string(n->value);
        *ok = o != NULL;
        return o;
}

int json_format(const struct node *n, bool pretty, char **ret)
{
        bool ok = true;
        struct json_object *o = to_json(n, 0, &ok);
        if (!ok)
                return -ENOMEM;
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
                    (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
                            : JSON_C_TO_STRING_PLAIN);
        char *s = strdup(o ? json_object_to_json_string_ext(o, flags) : "null");
        json_object_put(o);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static struct node *from_json(struct json_object *o)
{
        struct node *n;
        char b[64];

        switch (json_object_get_type(o)) {
        case json_type_object:
                n = node_new(NODE_MAP);
                if (!n)
                        return NULL;
                json_object_object_foreach(o, key, val)
                {
                        if (node_append(n, key, from_json(val)) < 0) {
                                node_free(n);
                                return NULL;
                        }
                }
                /* json-c keeps one value per key: this only sorts. */
                if (node_index_keys(n, NULL) == -ENOMEM) {
                        node_free(n);
                        return NULL;
                }
                return n;
        case json_type_array:
                n = node_new(NODE_SEQ);
                if (!n)
                        return NULL;
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        if (node_append(n, NULL, from_json(json_object_array_get_idx(o, i))) < 0) {
                                node_free(n);
                                return NULL;
                        }
                return n;
        case json_type_null:
                return node_new_scalar(SCALAR_NULL, "");
        case json_type_boolean:
                return node_new_scalar(SCALAR_BOOL, json_object_get_boolean(o) ? "true" : "false");
        case json_type_int:
                snprintf(b, sizeof(b), "%lld", (long long)json_object_get_int64(o));
                return node_new_scalar(SCALAR_INT, b);
        case json_type_double:
                snprintf(b, sizeof(b), "%.17g", json_object_get_double(o));
                return node_new_scalar(SCALAR_REAL, b);
        case json_type_string:
                return node_new_scalar(SCALAR_STR, json_object_get_string(o));
        }
        return NULL;
}

/* The length of the UTF-8 character at p (RFC 3629: no overlong forms,
 * no surrogates, nothing past U+10FFFF), or 0 when it is not one. */
static size_t utf8_char(const unsigned char *p, size_t left)
{
        uint32_t cp;
        size_t w;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                w = 2, cp = p[0] & 0x1f;
        else if (p[0] >= 0xe0 && p[0] <= 0xef)
                w = 3, cp = p[0] & 0x0f;
        else if (p[0] >= 0xf0 && p[0] <= 0xf4)
                w = 4, cp = p[0] & 0x07;
        else
                return 0;
        if (w > left)
                return 0;
        for (size_t i = 1; i < w; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((w == 3 && cp < 0x800) || (w == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return w;
}

/* Line and column (characters) of byte off, for messages. */
static void position(const char *buf, size_t off, unsigned *ret_line, unsigned *ret_column)
{
        unsigned line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
                if (buf[i] == '\n') {
                        line++;
                        col = 1;
                } else if (((unsigned char)buf[i] & 0xc0) != 0x80)
                        col++;
        }
        *ret_line = line;
        *ret_column = col;
}

int json_parse(const char *file, const char *buf, size_t len, struct node **ret, struct diags *d)
{
        /* JSON text is UTF-8 (RFC 8259, 8.1); json-c lets other bytes
         * through into strings, which no YAML or JSON we write could hold. */
        for (size_t i = 0, w; i < len; i += w) {
                /* \u0000: json-c keeps it, but its strings end at the NUL,
                 * so what follows would be read by nobody (and covered by
                 * no check made on the string, a signature's included). */
                if (buf[i] == '\\' && i + 1 < len && buf[i + 1] != 'u' &&
                    (unsigned char)buf[i + 1] < 0x80) {
                        w = 2;
                        continue;
                }
                if (buf[i] == '\\' && len - i >= 6 && memcmp(buf + i + 1, "u0000", 5) == 0) {
                        unsigned line, col;
                        position(buf, i, &line, &col);
                        diags_add(d, file, line, col,
                                  "invalid JSON: \\u0000 (a NUL) in a string is refused");
                        return -EBADMSG;
                }
                w = utf8_char((const unsigned char *)buf + i, len - i);
                if (w == 0) {
                        unsigned line, col;
                        position(buf, i, &line, &col);
                        diags_add(d, file, line, col, "invalid JSON: not UTF-8 (byte #x%02X)",
                                  (unsigned char)buf[i]);
                        return -EBADMSG;
                }
        }

        /* json-c admits NODE_MAX_DEPTH nested arrays and objects, like
         * yaml_parse() (its own default is 32), so from_json() recurses
         * that deep at most. */
        struct json_tokener *t = json_tokener_new_ex(NODE_MAX_DEPTH);
        struct json_object *o;
        enum json_tokener_error err;

        if (!t)
                return -ENOMEM;
        if (len >= INT_MAX) {
                json_tokener_free(t);
                diags_add(d, file, 0, 0, "invalid JSON: over %d bytes", INT_MAX - 1);
                return -EBADMSG;
        }
        o = json_tokener_parse_ex(t, buf, (int)len);
        err = json_tokener_get_error(t);
        size_t off = t->char_offset;
        if (err == json_tokener_continue) {
                /* A number or a literal at the very end ("123", "null")
                 * ends only at a terminator: hand json-c one. */
                o = json_tokener_parse_ex(t, "", 1);
                err = json_tokener_get_error(t);
                if (err == json_tokener_continue)
                        err = json_tokener_error_parse_eof;
                off = len;
        }
        /* Only white space may follow the value (o is NULL for null). */
        if (err == json_tokener_success) {
                for (size_t i = off; i < len; i++)
                        if (!buf[i] || !strchr(" \t\r\n", buf[i])) {
                                err = json_tokener_error_parse_unexpected;
                                off = i;
                                break;
                        }
        }
        json_tokener_free(t);
        if (err != json_tokener_success) {
                unsigned line, col;
                position(buf, off < len ? off : len, &line, &col);
                diags_add(d, file, line, col, "invalid JSON: %s", json_tokener_error_desc(err));
                json_object_put(o);
                return -EBADMSG;
        }
        struct node *n = from_json(o);
        json_object_put(o);
        if (!n)
                return -ENOMEM;
        node_set_origin(n, file);
        *ret = n;
        return 0;
}
