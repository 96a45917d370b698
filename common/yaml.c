#include "yaml.h"
#include "fs.h"

#include <ctype.h>
#include <errno.h>
#include <strings.h>
#include <yaml.h>

struct builder {
        const char *file;
        const char *buf;
        size_t len;
        yaml_parser_t parser;
        struct diags *d;
        unsigned depth; /* maps and sequences open around the current event */
};

static void set_mark(struct node *n, const yaml_mark_t *m)
{
        n->line = (unsigned)m->line + 1;
        n->column = (unsigned)m->column + 1;
}

/* The line and column (1-based, columns in characters as libyaml counts
 * them) of the byte at off. libyaml's reader reports a byte offset and no
 * mark: a NUL or a bad UTF-8 byte on line 5 would otherwise read 1:1. */
static void offset_position(const char *buf, size_t len, size_t off, unsigned *ret_line,
                            unsigned *ret_column)
{
        const unsigned char *p = (const unsigned char *)buf;
        unsigned line = 1, column = 1;
        size_t i = 0;

        if (off > len)
                off = len;
        if (len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
                i = 3; /* a byte order mark is not a character of line 1 */
        while (i < off) {
                size_t w = 0;
                if (p[i] == '\n' || (p[i] == '\r' && (i + 1 >= len || p[i + 1] != '\n')))
                        w = 1;
                else if (i + 1 < off && p[i] == 0xc2 && p[i + 1] == 0x85)
                        w = 2; /* NEL */
                else if (i + 2 < off && p[i] == 0xe2 && p[i + 1] == 0x80 &&
                         (p[i + 2] == 0xa8 || p[i + 2] == 0xa9))
                        w = 3; /* LS, PS */
                if (w) {
                        line++;
                        column = 1;
                        i += w;
                        continue;
                }
                if ((p[i] & 0xc0) != 0x80)
                        column++;
                i++;
        }
        *ret_line = line;
        *ret_column = column;
}

static int parse_error(struct builder *b)
{
        const yaml_parser_t *p = &b->parser;
        const yaml_mark_t *m = &p->problem_mark;

        if (p->error == YAML_MEMORY_ERROR)
                return -ENOMEM;
        if (p->error == YAML_READER_ERROR) {
                unsigned line, column;
                offset_position(b->buf, b->len, p->problem_offset, &line, &column);
                if (p->problem_value >= 0)
                        diags_add(b->d, b->file, line, column, "%s (#x%X)",
                                  p->problem ? p->problem : "invalid input", p->problem_value);
                else
                        diags_add(b->d, b->file, line, column, "%s",
                                  p->problem ? p->problem : "invalid input");
                return -EBADMSG;
        }
        if (p->context)
                diags_add(b->d, b->file, (unsigned)m->line + 1, (unsigned)m->column + 1, "%s %s",
                          p->problem ? p->problem : "invalid YAML", p->context);
        else
                diags_add(b->d, b->file, (unsigned)m->line + 1, (unsigned)m->column + 1, "%s",
                          p->problem ? p->problem : "invalid YAML");
        return -EBADMSG;
}

static int next_event(struct builder *b, yaml_event_t *e)
{
        if (!yaml_parser_parse(&b->parser, e))
                return parse_error(b);
        if (e->type == YAML_ALIAS_EVENT ||
            ((e->type == YAML_SCALAR_EVENT && e->data.scalar.anchor) ||
             (e->type == YAML_MAPPING_START_EVENT && e->data.mapping_start.anchor) ||
             (e->type == YAML_SEQUENCE_START_EVENT && e->data.sequence_start.anchor))) {
                diags_add(b->d, b->file, (unsigned)e->start_mark.line + 1,
                          (unsigned)e->start_mark.column + 1,
                          "anchors and aliases are not supported");
                yaml_event_delete(e);
                return -EBADMSG;
        }
        return 0;
}

static int parse_node(struct builder *b, yaml_event_t *e, struct node **ret);

static int parse_children(struct builder *b, struct node *n, bool map)
{
        for (;;) {
                yaml_event_t e;
                struct node *child = NULL;
                _cleanup_free_ char *key = NULL;
                unsigned line = 0, col = 0;
                int r = next_event(b, &e);
                if (r < 0)
                        return r;
                if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT) {
                        yaml_event_delete(&e);
                        if (!map)
                                return 0;
                        /* Duplicates in a big mapping are found by sorting
                         * its keys once, which also indexes it for
                         * node_get(). */
                        const struct node *dup = NULL;
                        r = node_index_keys(n, &dup);
                        if (r == -EEXIST) {
                                diags_add(b->d, b->file, dup->key_line, dup->key_column,
                                          "duplicate key '%s'", dup->key);
                                return -EBADMSG;
                        }
                        return r;
                }
                if (map) {
                        if (e.type != YAML_SCALAR_EVENT) {
                                diags_add(b->d, b->file, (unsigned)e.start_mark.line + 1,
                                          (unsigned)e.start_mark.column + 1,
                                          "mapping keys must be plain strings");
                                yaml_event_delete(&e);
                                return -EBADMSG;
                        }
                        key = strdup((const char *)e.data.scalar.value);
                        line = (unsigned)e.start_mark.line + 1;
                        col = (unsigned)e.start_mark.column + 1;
                        yaml_event_delete(&e);
                        if (!key)
                                return -ENOMEM;
                        /* A small mapping is checked at once (the error
                         * comes before any later one); all at the end. */
                        if (n->n_items < 16 && node_get(n, key)) {
                                diags_add(b->d, b->file, line, col, "duplicate key '%s'", key);
                                return -EBADMSG;
                        }
                        r = next_event(b, &e);
                        if (r < 0)
                                return r;
                }
                r = parse_node(b, &e, &child);
                if (r < 0)
                        return r;
                if (map) {
                        child->key_line = line;
                        child->key_column = col;
                }
                r = node_append(n, key, child);
                if (r < 0)
                        return r;
        }
}

/* Builds the node that starts with event e (consumed). */
static int parse_node(struct builder *b, yaml_event_t *e, struct node **ret)
{
        struct node *n;
        int r;

        switch (e->type) {
        case YAML_SCALAR_EVENT: {
                const char *tag = (const char *)e->data.scalar.tag;
                bool plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                             !(tag && streq(tag, YAML_STR_TAG));
                n = node_new_scalar(plain ? SCALAR_PLAIN : SCALAR_STR,
                                    (const char *)e->data.scalar.value);
                if (!n) {
                        yaml_event_delete(e);
                        return -ENOMEM;
                }
                set_mark(n, &e->start_mark);
                n->file = b->file;
                yaml_event_delete(e);
                *ret = n;
                return 0;
        }
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT: {
                bool map = e->type == YAML_MAPPING_START_EVENT;
                if (b->depth >= NODE_MAX_DEPTH) {
                        diags_add(b->d, b->file, (unsigned)e->start_mark.line + 1,
                                  (unsigned)e->start_mark.column + 1,
                                  "nested deeper than %d levels", NODE_MAX_DEPTH);
                        yaml_event_delete(e);
                        return -EBADMSG;
                }
                n = node_new(map ? NODE_MAP : NODE_SEQ);
                if (!n) {
                        yaml_event_delete(e);
                        return -ENOMEM;
                }
                set_mark(n, &e->start_mark);
                n->file = b->file;
                yaml_event_delete(e);
                b->depth++;
                r = parse_children(b, n, map);
                b->depth--;
                if (r < 0) {
                        node_free(n);
                        return r;
                }
                *ret = n;
                return 0;
        }
        default:
                diags_add(b->d, b->file, (unsigned)e->start_mark.line + 1,
                          (unsigned)e->start_mark.column + 1, "unexpected YAML event");
                yaml_event_delete(e);
                return -EBADMSG;
        }
}

int yaml_parse(const char *file, const char *buf, size_t len, struct node **ret, struct diags *d)
{
        struct builder b = {.file = file, .buf = buf, .len = len, .d = d};
        struct node *root = NULL;
        yaml_event_t e;
        int r;

        if (!yaml_parser_initialize(&b.parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&b.parser, (const unsigned char *)buf, len);

        r = next_event(&b, &e); /* stream start */
        if (r < 0)
                goto out;
        yaml_event_delete(&e);
        r = next_event(&b, &e);
        if (r < 0)
                goto out;
        if (e.type == YAML_STREAM_END_EVENT) {
                yaml_event_delete(&e);
                root = node_new_scalar(SCALAR_NULL, "");
                if (!root) {
                        r = -ENOMEM;
                        goto out;
                }
                root->line = root->column = 1;
                goto done;
        }
        yaml_event_delete(&e); /* document start */
        r = next_event(&b, &e);
        if (r < 0)
                goto out;
        r = parse_node(&b, &e, &root);
        if (r < 0)
                goto out;
        r = next_event(&b, &e); /* document end */
        if (r < 0)
                goto out;
        yaml_event_delete(&e);
        r = next_event(&b, &e);
        if (r < 0)
                goto out;
        if (e.type != YAML_STREAM_END_EVENT) {
                diags_add(d, file, (unsigned)e.start_mark.line + 1,
                          (unsigned)e.start_mark.column + 1,
                          "more than one YAML document; expected one");
                yaml_event_delete(&e);
                r = -EBADMSG;
                goto out;
        }
        yaml_event_delete(&e);
done:
        node_set_origin(root, file);
        *ret = TAKE_PTR(root);
        r = 0;
out:
        node_free(root);
        yaml_parser_delete(&b.parser);
        return r;
}

int yaml_parse_file(const char *path, size_t max, struct node **ret, struct diags *d)
{
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r = read_file(path, max ? max : 4 * 1024 * 1024, &data, &size);
        if (r < 0) {
                diags_add(d, path, 0, 0, "cannot read: %s", strerror(-r));
                return r;
        }
        return yaml_parse(path, data, size, ret, d);
}

int yaml_quote(struct buf *b, const char *s)
{
        int r = buf_puts(b, "\"");
        for (const unsigned char *p = (const unsigned char *)s; r >= 0 && *p; p++) {
                if (*p == '"' || *p == '\\')
                        r = buf_printf(b, "\\%c", *p);
                else if (*p == '\n')
                        r = buf_puts(b, "\\n");
                else if (*p == '\t')
                        r = buf_puts(b, "\\t");
                else if (*p < 0x20 || *p == 0x7f)
                        r = buf_printf(b, "\\x%02x", *p);
                else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
                        /* C1 controls, U+0085 among them: YAML reads that as a
                         * line break. */
                        r = buf_printf(b, "\\u%04x", p[1]);
                        p++;
                } else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
                        r = buf_printf(b, "\\u%04x", 0x2000 | (p[2] & 0x2f)); /* U+2028, U+2029 */
                        p += 2;
                } else if (p[0] == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf)) {
                        /* U+FFFE, U+FFFF: libyaml's reader refuses them. */
                        r = buf_printf(b, "\\u%04x", 0xff00 | p[2] | 0x40);
                        p += 2;
                } else
                        r = buf_append(b, p, 1);
        }
        return r < 0 ? r : buf_puts(b, "\"");
}

/* A string that reads back as the same string when written plain. */
static bool plain_safe(const char *s)
{
        static const char *const words[] = {"true", "false", "yes", "no", "on",
                                            "off",  "null",  "y",   "n",  "~"};
        if (!*s || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "0123456789_./-") != strlen(s))
                return false;
        if (!isalpha((unsigned char)s[0]) && s[0] != '/' && s[0] != '_')
                return false;
        for (size_t i = 0; i < ARRAY_SIZE(words); i++)
                if (strcasecmp(s, words[i]) == 0)
                        return false;
        return true;
}

static int format_scalar(struct buf *b, const struct node *n)
{
        switch (n->type == SCALAR_PLAIN ? node_resolve(n) : n->type) {
        case SCALAR_INT:
        case SCALAR_BOOL:
                return buf_puts(b, n->value);
        case SCALAR_REAL: {
                /* A real from JSON ("%.17g" of -3e10 is "-30000000000")
                 * must not read back as an integer. */
                struct node plain = {.kind = NODE_SCALAR, .type = SCALAR_PLAIN, .value = n->value};
                int r = buf_puts(b, n->value);
                if (r >= 0 && node_resolve(&plain) == SCALAR_INT)
                        r = buf_puts(b, ".0");
                return r;
        }
        case SCALAR_NULL:
                return buf_puts(b, "null");
        case SCALAR_PLAIN:
        case SCALAR_STR:
                break;
        }
        return plain_safe(n->value) ? buf_puts(b, n->value) : yaml_quote(b, n->value);
}

static int format_node(struct buf *b, const struct node *n, unsigned indent);

#define YAML_IMPLICIT_KEY_MAX 1000

/* A value after "key:" or "- ": inline when a scalar or empty, else on
 * the next lines, indented. */
static int format_value(struct buf *b, const struct node *n, unsigned indent)
{
        if (n->kind == NODE_SCALAR) {
                int r = buf_puts(b, " ");
                if (r >= 0)
                        r = format_scalar(b, n);
                return r < 0 ? r : buf_puts(b, "\n");
        }
        if (n->n_items == 0)
                return buf_puts(b, n->kind == NODE_MAP ? " {}\n" : " []\n");
        int r = buf_puts(b, "\n");
        return r < 0 ? r : format_node(b, n, indent + 2);
}

static int format_node(struct buf *b, const struct node *n, unsigned indent)
{
        int r = 0;
        /* Each level indents two more: a tree deeper than any reader
         * builds is refused, not recursed into. */
        if (indent > 2 * NODE_MAX_DEPTH)
                return -E2BIG;
        if (n->kind == NODE_SCALAR) {
                r = format_scalar(b, n);
                return r < 0 ? r : buf_puts(b, "\n");
        }
        for (size_t i = 0; r >= 0 && i < n->n_items; i++) {
                const struct node *c = n->items[i];
                if (n->kind == NODE_SEQ && c->kind == NODE_MAP && c->n_items > 0) {
                        /* "- key: value", the other keys under the first:
                         * the map's first line starts with indent + 2
                         * spaces, the last two of which become "- ". */
                        size_t at = b->len;
                        r = format_node(b, c, indent + 2);
                        if (r >= 0)
                                memcpy(b->data + at + indent, "- ", 2);
                        continue;
                }
                r = buf_printf(b, "%*s", (int)indent, "");
                if (r >= 0 && n->kind == NODE_MAP) {
                        size_t at = b->len;
                        r = plain_safe(c->key) ? buf_puts(b, c->key) : yaml_quote(b, c->key);
                        /* An implicit key is at most 1024 characters
                         * (YAML 1.2 7.4.2, libyaml enforces it): a longer
                         * one is written as "? key" then ": value". */
                        if (r >= 0 && b->len - at > YAML_IMPLICIT_KEY_MAX) {
                                b->len = at;
                                b->data[at] = '\0';
                                r = buf_puts(b, "? ");
                                if (r >= 0)
                                        r = yaml_quote(b, c->key);
                                if (r >= 0)
                                        r = buf_printf(b, "\n%*s", (int)indent, "");
                        }
                        if (r >= 0)
                                r = buf_puts(b, ":");
                } else if (r >= 0)
                        r = buf_puts(b, "-");
                if (r >= 0)
                        r = format_value(b, c, indent);
        }
        return r;
}

int yaml_format(const struct node *n, char **ret)
{
        struct buf b = {0};
        int r;
        /* An empty document root is written in flow style: nothing at
         * all would read back as null. */
        if (n->kind != NODE_SCALAR && n->n_items == 0)
                r = buf_puts(&b, n->kind == NODE_MAP ? "{}\n" : "[]\n");
        else
                r = format_node(&b, n, 0);
        if (r < 0) {
                buf_free(&b);
                return r;
        }
        *ret = buf_steal(&b);
        return *ret ? 0 : -ENOMEM;
}
