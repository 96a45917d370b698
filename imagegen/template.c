/* The template renderer: the source is cut into tokens (text, variables,
 * section tags) with the standalone-line rule applied, then rendered
 * against a stack of contexts. See template.h for the language and the
 * escaping of each format. */
#include "template.h"

#include <errno.h>
#include <stdint.h>
#include <strings.h>

/* Sections nested deeper than this are refused, which bounds the
 * recursion of the renderer and the context stack. */
#define TMPL_MAX_DEPTH 100

enum tok_kind {
        TOK_TEXT,
        TOK_VAR,      /* {{name}}: escaped */
        TOK_RAW,      /* {{{name}}}, {{&name}}: as is */
        TOK_SECTION,  /* {{#name}} */
        TOK_INVERTED, /* {{^name}} */
        TOK_CLOSE,    /* {{/name}} */
};

struct tok {
        enum tok_kind kind;
        const char *text; /* TOK_TEXT: points into the source */
        size_t len;
        char *name;
        char sigil; /* the character that opened a section: '#' or '^' */
        unsigned line, column;
        size_t end;    /* TOK_SECTION, TOK_INVERTED: index of the TOK_CLOSE */
        bool reported; /* rendering failed here once: said once, not per list item */
};

struct parser {
        const char *file;
        const char *src;
        size_t len;
        struct tok *toks;
        size_t n_toks, cap_toks;
        /* The current delimiters ("{{" and "}}" until a set-delimiter
         * tag changes them); they point into the source or are literals. */
        const char *open, *close;
        size_t open_len, close_len;
        /* A cursor that only moves forward, for line:column. */
        size_t cur_off;
        unsigned cur_line, cur_column;
        struct diags *d;
};

static void toks_free(struct tok *toks, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(toks[i].name);
        free(toks);
}

/* The line and column (characters, from 1) of offset off, which must not
 * be before the previous offset asked for. */
static void where(struct parser *p, size_t off, unsigned *ret_line, unsigned *ret_column)
{
        for (; p->cur_off < off; p->cur_off++)
                if (p->src[p->cur_off] == '\n') {
                        p->cur_line++;
                        p->cur_column = 1;
                } else if (((unsigned char)p->src[p->cur_off] & 0xC0) != 0x80)
                        p->cur_column++;
        *ret_line = p->cur_line;
        *ret_column = p->cur_column;
}

static int push_tok(struct parser *p, const struct tok *t)
{
        if (p->n_toks == p->cap_toks) {
                size_t cap = p->cap_toks ? p->cap_toks * 2 : 32;
                struct tok *n = realloc(p->toks, cap * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                p->toks = n;
                p->cap_toks = cap;
        }
        p->toks[p->n_toks++] = *t;
        return 0;
}

static int push_text(struct parser *p, size_t from, size_t to)
{
        if (to <= from)
                return 0;
        return push_tok(p,
                        &(struct tok){.kind = TOK_TEXT, .text = p->src + from, .len = to - from});
}

static bool is_name_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
}

/* "." or parts of name characters joined by single dots. */
static bool name_is_valid(const char *s, size_t n)
{
        if (n == 1 && s[0] == '.')
                return true;
        bool part = false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '.') {
                        if (!part)
                                return false;
                        part = false;
                } else if (is_name_char(s[i]))
                        part = true;
                else
                        return false;
        }
        return part;
}

static const char *find_in(const char *s, size_t from, size_t to, const char *needle, size_t n)
{
        if (to < from + n)
                return NULL;
        return memmem(s + from, to - from, needle, n);
}

/* The first closing delimiter in [from, to); when before is not NUL, the
 * first one preceded by before, which must come after the sigil at from:
 * "}" + close ends a triple mustache, "=" + close a set-delimiter tag. */
static const char *find_close(const struct parser *p, size_t from, size_t to, char before)
{
        for (size_t at = before ? from + 2 : from;;) {
                const char *c = find_in(p->src, at, to, p->close, p->close_len);
                if (!c || !before || c[-1] == before)
                        return c;
                at = (size_t)(c - p->src) + 1;
        }
}

static bool is_blank(char c)
{
        return c == ' ' || c == '\t';
}

/* Reads the new delimiters of a set-delimiter tag: two words without
 * '=' separated by blanks. */
static int set_delimiters(struct parser *p, size_t from, size_t to, const struct tok *t)
{
        const char *s = p->src;
        size_t a = from, a_end, b, b_end;

        while (a < to && is_blank(s[a]))
                a++;
        for (a_end = a; a_end < to && !is_blank(s[a_end]) && s[a_end] != '='; a_end++)
                ;
        for (b = a_end; b < to && is_blank(s[b]); b++)
                ;
        for (b_end = b; b_end < to && !is_blank(s[b_end]) && s[b_end] != '='; b_end++)
                ;
        size_t rest = b_end;
        while (rest < to && is_blank(s[rest]))
                rest++;
        if (a == a_end || b_end == b || b == a_end || rest != to) {
                diags_add(p->d, p->file, t->line, t->column,
                          "invalid delimiters '%.*s' (expected two words without '=', such as "
                          "'{{=<%% %%>=}}')",
                          (int)(to - from), s + from);
                return -EINVAL;
        }
        p->open = s + a;
        p->open_len = a_end - a;
        p->close = s + b;
        p->close_len = b_end - b;
        return 0;
}

/* Reads one tag starting at src[at] (the open delimiter). Returns 0 with
 * the offset after it in *ret_after and the token (kind, name) in *t, 1
 * for a comment or a set-delimiter tag, or -EINVAL after a diagnostic. */
static int read_tag(struct parser *p, size_t at, struct tok *t, size_t *ret_after)
{
        const char *src = p->src;
        size_t inner = at + p->open_len, eol;
        const char *close;
        char sigil = inner < p->len ? src[inner] : '\0';

        where(p, at, &t->line, &t->column);

        if (sigil == '!') {
                close = find_in(src, inner, p->len, p->close, p->close_len);
                if (!close) {
                        diags_add(p->d, p->file, t->line, t->column,
                                  "unclosed comment: '%.*s!' without '%.*s'", (int)p->open_len,
                                  p->open, (int)p->close_len, p->close);
                        return -EINVAL;
                }
                *ret_after = (size_t)(close - src) + p->close_len;
                return 1;
        }

        const char *nl = memchr(src + inner, '\n', p->len - inner);
        eol = nl ? (size_t)(nl - src) : p->len;
        char before = sigil == '{' ? '}' : sigil == '=' ? '=' : '\0';
        close = find_close(p, inner, eol, before);
        if (!close) {
                if (before)
                        diags_add(p->d, p->file, t->line, t->column,
                                  "unclosed tag: '%.*s%c' without '%c%.*s' on the same line",
                                  (int)p->open_len, p->open, sigil, before, (int)p->close_len,
                                  p->close);
                else
                        diags_add(p->d, p->file, t->line, t->column,
                                  "unclosed tag: '%.*s' without '%.*s' on the same line",
                                  (int)p->open_len, p->open, (int)p->close_len, p->close);
                return -EINVAL;
        }
        *ret_after = (size_t)(close - src) + p->close_len;

        size_t from = inner, to = (size_t)(close - src) - (before ? 1 : 0);
        switch (sigil) {
        case '=':
                return set_delimiters(p, from + 1, to, t) < 0 ? -EINVAL : 1;
        case '{':
        case '&':
                t->kind = TOK_RAW;
                from++;
                break;
        case '#':
        case '^':
                t->kind = sigil == '#' ? TOK_SECTION : TOK_INVERTED;
                t->sigil = sigil;
                from++;
                break;
        case '/':
                t->kind = TOK_CLOSE;
                from++;
                break;
        case '>':
                diags_add(p->d, p->file, t->line, t->column,
                          "partials ('{{>name}}') are not supported");
                return -EINVAL;
        default:
                t->kind = TOK_VAR;
                break;
        }
        while (from < to && is_blank(src[from]))
                from++;
        while (to > from && is_blank(src[to - 1]))
                to--;
        if (from == to) {
                diags_add(p->d, p->file, t->line, t->column, "empty name in tag");
                return -EINVAL;
        }
        if (!name_is_valid(src + from, to - from)) {
                diags_add(p->d, p->file, t->line, t->column,
                          "invalid name '%.*s' (names are letters, digits, '_' and '-', "
                          "joined by '.')",
                          (int)(to - from), src + from);
                return -EINVAL;
        }
        t->name = strndup(src + from, to - from);
        return t->name ? 0 : -ENOMEM;
}

/* Whether the tag at [at, after) stands alone on its line; if so the
 * line's start and where the next line begins. */
static bool standalone(const struct parser *p, size_t at, size_t after, size_t *ret_line_start,
                       size_t *ret_next)
{
        size_t s = at, e = after;
        while (s > 0 && is_blank(p->src[s - 1]))
                s--;
        if (s > 0 && p->src[s - 1] != '\n')
                return false;
        while (e < p->len && is_blank(p->src[e]))
                e++;
        if (e < p->len) {
                if (p->src[e] == '\n')
                        e++;
                else if (p->src[e] == '\r' && e + 1 < p->len && p->src[e + 1] == '\n')
                        e += 2;
                else
                        return false;
        }
        *ret_line_start = s;
        *ret_next = e;
        return true;
}

static int tokenize(struct parser *p)
{
        size_t open[TMPL_MAX_DEPTH];
        size_t depth = 0, pos = 0;
        int r;

        const char *nul = memchr(p->src, '\0', p->len);
        if (nul) {
                unsigned line, column;
                where(p, (size_t)(nul - p->src), &line, &column);
                diags_add(p->d, p->file, line, column, "template holds a NUL byte");
                return -EINVAL;
        }

        for (;;) {
                const char *o = find_in(p->src, pos, p->len, p->open, p->open_len);
                if (!o)
                        break;
                size_t at = (size_t)(o - p->src), after, line_start, next;
                struct tok t = {0};

                r = read_tag(p, at, &t, &after);
                if (r < 0)
                        return r;
                bool comment = r == 1; /* or a set-delimiter tag */
                if ((comment || t.kind == TOK_SECTION || t.kind == TOK_INVERTED ||
                     t.kind == TOK_CLOSE) &&
                    standalone(p, at, after, &line_start, &next)) {
                        r = push_text(p, pos, line_start);
                        pos = next;
                } else {
                        r = push_text(p, pos, at);
                        pos = after;
                }
                if (r < 0) {
                        free(t.name);
                        return r;
                }
                if (comment)
                        continue;

                if (t.kind == TOK_CLOSE) {
                        if (depth == 0) {
                                diags_add(p->d, p->file, t.line, t.column,
                                          "'{{/%s}}' closes no open section", t.name);
                                free(t.name);
                                return -EINVAL;
                        }
                        struct tok *o_tok = &p->toks[open[depth - 1]];
                        if (!streq(o_tok->name, t.name)) {
                                diags_add(p->d, p->file, t.line, t.column,
                                          "'{{/%s}}' does not close '{{%c%s}}' opened at line %u, "
                                          "column %u",
                                          t.name, o_tok->sigil, o_tok->name, o_tok->line,
                                          o_tok->column);
                                free(t.name);
                                return -EINVAL;
                        }
                        o_tok->end = p->n_toks;
                        depth--;
                } else if (t.kind == TOK_SECTION || t.kind == TOK_INVERTED) {
                        if (depth == TMPL_MAX_DEPTH) {
                                diags_add(p->d, p->file, t.line, t.column,
                                          "sections nested deeper than %d", TMPL_MAX_DEPTH);
                                free(t.name);
                                return -EINVAL;
                        }
                        open[depth++] = p->n_toks;
                }
                r = push_tok(p, &t);
                if (r < 0) {
                        free(t.name);
                        return r;
                }
        }
        r = push_text(p, pos, p->len);
        if (r < 0)
                return r;
        if (depth > 0) {
                const struct tok *o_tok = &p->toks[open[depth - 1]];
                diags_add(p->d, p->file, o_tok->line, o_tok->column,
                          "section '%s' is not closed (no '{{/%s}}')", o_tok->name, o_tok->name);
                return -EINVAL;
        }
        return 0;
}

struct render {
        const char *file;
        enum tmpl_format fmt;
        struct tok *toks;
        const struct node *stack[TMPL_MAX_DEPTH + 1];
        size_t n_stack;
        struct buf out;
        struct diags *d;
        bool failed;
        size_t steps; /* tags and texts rendered and keys looked at, bounded by TMPL_MAX_STEPS */
        unsigned line, column; /* of the last tag rendered (texts have none) */
};

/* Sections nested over lists multiply: twenty nested {{#list}} over a
 * two-item list render their body a million times, and each name looked
 * up there walks every context on the stack. A step is a tag or text
 * rendered, a byte compared in a lookup or a byte of a value looked at.
 * Real templates take some ten thousand steps and a few hundred kB; past
 * these the template is refused at the tag where it got there. */
#define TMPL_MAX_STEPS  (1u << 22)
#define TMPL_MAX_OUTPUT (64u << 20)

/* The key of map named by key[0..n), or NULL. Each byte compared is a
 * step: names and keys can be as long as the input. */
static const struct node *map_get_n(struct render *r, const struct node *map, const char *key,
                                    size_t n)
{
        if (!map || map->kind != NODE_MAP)
                return NULL;
        for (size_t i = 0; i < map->n_items; i++) {
                const char *k = map->items[i]->key;
                size_t j = 0;
                if (!k)
                        continue;
                while (j < n && k[j] == key[j])
                        j++;
                r->steps += j + 1;
                if (j == n && k[n] == '\0')
                        return map->items[i];
        }
        return NULL;
}

/* Looks name up like mustache: the first part in the innermost context
 * that has it, the other parts in what it found. When not found,
 * *ret_prefix is how much of name did resolve (0: not even the first
 * part) and *ret_last what it resolved to. */
static const struct node *lookup(struct render *r, const char *name, size_t *ret_prefix,
                                 const struct node **ret_last)
{
        *ret_prefix = 0;
        *ret_last = NULL;
        if (streq(name, "."))
                return r->n_stack > 0 ? r->stack[r->n_stack - 1] : NULL;

        size_t n = strcspn(name, ".");
        const struct node *v = NULL;
        for (size_t i = r->n_stack; i-- > 0 && !v;)
                v = map_get_n(r, r->stack[i], name, n);
        const char *p = name + n;
        while (v && *p == '.') {
                n = strcspn(p + 1, ".");
                const struct node *c = map_get_n(r, v, p + 1, n);
                if (!c) {
                        *ret_prefix = (size_t)(p - name);
                        *ret_last = v;
                        return NULL;
                }
                v = c;
                p += 1 + n;
        }
        return v;
}

static bool truthy(const struct node *v)
{
        bool b;

        if (!v)
                return false;
        if (v->kind != NODE_SCALAR)
                return v->n_items > 0;
        switch (node_resolve(v)) {
        case SCALAR_NULL:
                return false;
        case SCALAR_BOOL:
                return node_as_bool(v, &b) == 0 && b;
        default:
                return v->value && *v->value;
        }
}

/* The length of the UTF-8 sequence at s with its code point, or 0 when it
 * is not valid UTF-8 (truncated, overlong, a surrogate, past U+10FFFF). */
static size_t utf8_next(const unsigned char *s, uint32_t *ret_cp)
{
        uint32_t cp, min;
        size_t n;

        if (s[0] < 0x80) {
                *ret_cp = s[0];
                return 1;
        }
        if ((s[0] & 0xE0) == 0xC0) {
                cp = s[0] & 0x1F;
                n = 2;
                min = 0x80;
        } else if ((s[0] & 0xF0) == 0xE0) {
                cp = s[0] & 0x0F;
                n = 3;
                min = 0x800;
        } else if ((s[0] & 0xF8) == 0xF0) {
                cp = s[0] & 0x07;
                n = 4;
                min = 0x10000;
        } else
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        *ret_cp = cp;
        return n;
}

static bool utf8_valid(const char *s)
{
        uint32_t cp;
        for (const unsigned char *p = (const unsigned char *)s; *p;) {
                size_t n = utf8_next(p, &cp);
                if (n == 0)
                        return false;
                p += n;
        }
        return true;
}

/* Values made only of these characters read the same bare as quoted in
 * env files, shell and nginx. */
static bool is_bare_word(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (!is_name_char(*s) && !strchr("@%+=:,./", *s))
                        return false;
        return true;
}

/* -?(0|[1-9][0-9]*), optionally followed by a fraction: the forms that
 * YAML 1.1 readers (PyYAML, docker-compose) and 1.2 readers agree on. */
static bool is_plain_number(const char *s, bool fraction)
{
        if (*s == '-')
                s++;
        if (*s == '0')
                s++;
        else if (*s >= '1' && *s <= '9')
                while (*s >= '0' && *s <= '9')
                        s++;
        else
                return false;
        if (!fraction)
                return *s == '\0';
        if (*s++ != '.' || !(*s >= '0' && *s <= '9'))
                return false;
        while (*s >= '0' && *s <= '9')
                s++;
        return *s == '\0';
}

/* A double-quoted YAML scalar (compose: '$' doubled, as docker-compose
 * interpolates it) or JavaScript string literal (ECMA-262 "StringLiteral"),
 * or a bare number, true, false or null where YAML typed the value so.
 * Inside double quotes both take the same escapes for '"', '\\' and
 * control characters, so one loop writes both: every control character
 * (C1 ones too: U+0085 is a line break to YAML 1.1), U+2028, U+2029,
 * U+FEFF and the non-characters U+FFFE/U+FFFF as \xNN or \uNNNN, which
 * keeps the value on one line in either language ("${" is not special in a
 * JavaScript string literal: no template literal is written). JavaScript
 * integers are bare only up to 15 digits, which a double holds exactly;
 * longer ones are strings. Values must be valid UTF-8 (node reads a source
 * file as UTF-8 and would turn a stray byte into U+FFFD). */
static int escape_quoted(struct buf *b, const struct node *v, const char *s, enum tmpl_format fmt,
                         const char **ret_why)
{
        bool js = fmt == TMPL_JS, x;
        int r = 0;

        switch (node_resolve(v)) {
        case SCALAR_NULL:
                return buf_puts(b, "null");
        case SCALAR_BOOL:
                if (node_as_bool(v, &x) == 0)
                        return buf_puts(b, x ? "true" : "false");
                break;
        case SCALAR_INT:
                if (is_plain_number(s, false) && (!js || strlen(s) - (s[0] == '-') <= 15))
                        return buf_puts(b, s);
                break;
        case SCALAR_REAL:
                if (is_plain_number(s, true) && (!js || strlen(s) <= 16))
                        return buf_puts(b, s);
                break;
        default:
                break;
        }
        if (!utf8_valid(s)) {
                *ret_why = js ? "is not valid UTF-8, which a JavaScript file cannot hold"
                              : "is not valid UTF-8, which a YAML file cannot hold";
                return -EINVAL;
        }

        r = buf_puts(b, "\"");
        for (const unsigned char *p = (const unsigned char *)s; r >= 0 && *p;) {
                uint32_t cp;
                size_t n = utf8_next(p, &cp);
                if (cp == '"')
                        r = buf_puts(b, "\\\"");
                else if (cp == '\\')
                        r = buf_puts(b, "\\\\");
                else if (cp == '\n')
                        r = buf_puts(b, "\\n");
                else if (cp == '\t')
                        r = buf_puts(b, "\\t");
                else if (cp == '\r')
                        r = buf_puts(b, "\\r");
                else if (cp == '$' && fmt == TMPL_COMPOSE)
                        r = buf_puts(b, "$$");
                else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
                        r = buf_printf(b, "\\x%02X", (unsigned)cp);
                else if (cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF || cp == 0xFFFE ||
                         cp == 0xFFFF)
                        r = buf_printf(b, "\\u%04X", (unsigned)cp);
                else
                        r = buf_append(b, p, n);
                p += n;
        }
        return r < 0 ? r : buf_puts(b, "\"");
}

static int escape_env(struct buf *b, const char *s, const char **ret_why)
{
        int r;

        if (strchr(s, '\r')) {
                *ret_why = "holds a carriage return, which an env file cannot hold "
                           "(docker-compose reads it with newline translation)";
                return -EINVAL;
        }
        if (!utf8_valid(s)) {
                *ret_why = "is not valid UTF-8, which docker-compose cannot read in an env file";
                return -EINVAL;
        }
        if (is_bare_word(s))
                return buf_puts(b, s);

        r = buf_puts(b, "'");
        for (const char *p = s; r >= 0 && *p; p++) {
                if (*p == '\\')
                        r = buf_puts(b, p[1] ? "\\\\" : "${:-\\\\}");
                else if (*p == '\'')
                        r = buf_puts(b, "\\'");
                else if (*p == '$' && p[1] == '{')
                        r = buf_puts(b, "${:-$}");
                else
                        r = buf_append(b, p, 1);
        }
        return r < 0 ? r : buf_puts(b, "'");
}

static int escape_nginx(struct buf *b, const char *s, const char **ret_why)
{
        int r;

        if (strchr(s, '$')) {
                *ret_why = "holds a '$', which nginx would expand as a variable "
                           "(nginx strings have no escape for '$')";
                return -EINVAL;
        }
        if (strpbrk(s, "\r\n")) {
                *ret_why = "holds a line break, which would split an nginx directive's value "
                           "(a header, for one)";
                return -EINVAL;
        }
        if (is_bare_word(s))
                return buf_puts(b, s);

        r = buf_puts(b, "\"");
        for (const char *p = s; r >= 0 && *p; p++) {
                if (*p == '"')
                        r = buf_puts(b, "\\\"");
                else if (*p == '\\')
                        r = buf_puts(b, "\\\\");
                else if (*p == '\t')
                        r = buf_puts(b, "\\t");
                else
                        r = buf_append(b, p, 1);
        }
        return r < 0 ? r : buf_puts(b, "\"");
}

static int escape_shell(struct buf *b, const char *s)
{
        int r;

        if (is_bare_word(s))
                return buf_puts(b, s);
        r = buf_puts(b, "'");
        for (const char *p = s; r >= 0 && *p; p++)
                r = *p == '\'' ? buf_puts(b, "'\\''") : buf_append(b, p, 1);
        return r < 0 ? r : buf_puts(b, "'");
}

/* Appends the scalar v escaped for fmt. Returns 0, -ENOMEM, or -EINVAL
 * with the reason in *ret_why when fmt cannot hold the value. */
static int escape_value(struct buf *b, enum tmpl_format fmt, const struct node *v,
                        const char **ret_why)
{
        const char *s = node_resolve(v) == SCALAR_NULL || !v->value ? "" : v->value;

        switch (fmt) {
        case TMPL_YAML:
        case TMPL_COMPOSE:
        case TMPL_JS:
                return escape_quoted(b, v, s, fmt, ret_why);
        case TMPL_ENV:
                return escape_env(b, s, ret_why);
        case TMPL_NGINX:
                return escape_nginx(b, s, ret_why);
        case TMPL_SHELL:
                return escape_shell(b, s);
        case TMPL_RAW:
                break;
        }
        return buf_puts(b, s);
}

static int render_var(struct render *r, struct tok *t)
{
        const struct node *v, *last;
        const char *why = NULL;
        size_t prefix;
        int k;

        v = lookup(r, t->name, &prefix, &last);
        if (!v || v->kind != NODE_SCALAR) {
                r->failed = true;
                if (t->reported)
                        return 0;
                t->reported = true;
        }
        if (!v) {
                if (prefix == 0)
                        diags_add(r->d, r->file, t->line, t->column, "variable '%s' is not defined",
                                  t->name);
                else if (last->kind == NODE_MAP)
                        diags_add(r->d, r->file, t->line, t->column,
                                  "variable '%s' is not defined: '%.*s' has no key '%.*s'", t->name,
                                  (int)prefix, t->name, (int)strcspn(t->name + prefix + 1, "."),
                                  t->name + prefix + 1);
                else
                        diags_add(r->d, r->file, t->line, t->column,
                                  "variable '%s' is not defined: '%.*s' is %s, not a mapping",
                                  t->name, (int)prefix, t->name, node_kind_name(last));
                return 0;
        }
        if (v->kind != NODE_SCALAR) {
                diags_add(r->d, r->file, t->line, t->column,
                          "variable '%s' is %s, not a scalar (a section '{{#%s}}' walks it)",
                          t->name, node_kind_name(v), t->name);
                return 0;
        }
        r->steps += v->value ? strlen(v->value) : 0;
        k = escape_value(&r->out, t->kind == TOK_RAW ? TMPL_RAW : r->fmt, v, &why);
        if (k == -EINVAL) {
                r->failed = true;
                if (!t->reported)
                        diags_add(r->d, r->file, t->line, t->column, "variable '%s' %s (%s format)",
                                  t->name, why, tmpl_format_name(r->fmt));
                t->reported = true;
                return 0;
        }
        return k;
}

static int render_range(struct render *r, size_t from, size_t to);

static int render_with(struct render *r, const struct node *ctx, size_t from, size_t to)
{
        r->stack[r->n_stack++] = ctx;
        int k = render_range(r, from, to);
        r->n_stack--;
        return k;
}

static int render_section(struct render *r, const struct tok *t, size_t at)
{
        const struct node *v, *last;
        size_t prefix;
        int k = 0;

        v = lookup(r, t->name, &prefix, &last);
        if (v && v->kind == NODE_SCALAR && v->value)
                r->steps += strlen(v->value);
        if (t->kind == TOK_INVERTED)
                return truthy(v) ? 0 : render_range(r, at + 1, t->end);
        if (!truthy(v))
                return 0;
        if (v->kind != NODE_SEQ)
                return render_with(r, v, at + 1, t->end);
        for (size_t i = 0; k >= 0 && i < v->n_items; i++)
                k = render_with(r, v->items[i], at + 1, t->end);
        return k;
}

static int render_range(struct render *r, size_t from, size_t to)
{
        int k = 0;

        for (size_t i = from; k >= 0 && i < to; i++) {
                struct tok *t = &r->toks[i];
                if (t->line > 0) {
                        r->line = t->line;
                        r->column = t->column;
                }
                if (++r->steps > TMPL_MAX_STEPS || r->out.len > TMPL_MAX_OUTPUT) {
                        if (r->steps > TMPL_MAX_STEPS)
                                diags_add(r->d, r->file, r->line, r->column,
                                          "the template expands past %u steps here (sections "
                                          "nested over lists multiply what they hold)",
                                          TMPL_MAX_STEPS);
                        else
                                diags_add(r->d, r->file, r->line, r->column,
                                          "the template's output grows past %u MiB here",
                                          TMPL_MAX_OUTPUT >> 20);
                        return -EINVAL;
                }
                switch (t->kind) {
                case TOK_TEXT:
                        k = buf_append(&r->out, t->text, t->len);
                        break;
                case TOK_VAR:
                case TOK_RAW:
                        k = render_var(r, t);
                        break;
                case TOK_SECTION:
                case TOK_INVERTED:
                        k = render_section(r, t, i);
                        i = t->end;
                        break;
                case TOK_CLOSE:
                        break;
                }
        }
        return k;
}

int tmpl_render(const char *name, const char *text, size_t len, const struct node *ctx,
                enum tmpl_format fmt, char **ret, struct diags *d)
{
        struct parser p = {.file = name,
                           .src = text,
                           .len = len,
                           .open = "{{",
                           .close = "}}",
                           .open_len = 2,
                           .close_len = 2,
                           .cur_line = 1,
                           .cur_column = 1,
                           .d = d};
        struct render r = {.file = name, .fmt = fmt, .d = d};
        int k;

        k = tokenize(&p);
        if (k < 0)
                goto out;
        r.toks = p.toks;
        if (ctx)
                r.stack[r.n_stack++] = ctx;
        k = render_range(&r, 0, p.n_toks);
        if (k >= 0 && r.failed)
                k = -EINVAL;
        if (k >= 0) {
                *ret = buf_steal(&r.out);
                k = 0;
        }
out:
        buf_free(&r.out);
        toks_free(p.toks, p.n_toks);
        return k;
}

static const char *const format_names[] = {
        [TMPL_RAW] = "raw",     [TMPL_YAML] = "yaml",   [TMPL_ENV] = "env",
        [TMPL_NGINX] = "nginx", [TMPL_SHELL] = "shell", [TMPL_COMPOSE] = "compose",
        [TMPL_JS] = "js",
};

const char *tmpl_format_name(enum tmpl_format fmt)
{
        if ((size_t)fmt < ARRAY_SIZE(format_names))
                return format_names[fmt];
        return "unknown";
}

int tmpl_format_from_string(const char *s, enum tmpl_format *ret)
{
        for (size_t i = 0; i < ARRAY_SIZE(format_names); i++)
                if (streq(s, format_names[i])) {
                        *ret = (enum tmpl_format)i;
                        return 0;
                }
        return -EINVAL;
}

static bool has_suffix(const char *s, size_t n, const char *suffix)
{
        size_t k = strlen(suffix);
        return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

static bool has_infix(const char *s, size_t n, const char *infix)
{
        size_t k = strlen(infix);
        for (size_t i = 0; i + k <= n; i++)
                if (strncasecmp(s + i, infix, k) == 0)
                        return true;
        return false;
}

enum tmpl_format tmpl_format_for(const char *name)
{
        const char *base = strrchr(name, '/');
        base = base ? base + 1 : name;
        size_t n = strlen(base);

        if (n > 5 && has_suffix(base, n, ".tmpl"))
                n -= 5;
        if (has_suffix(base, n, ".yml") || has_suffix(base, n, ".yaml"))
                return has_infix(base, n, "compose") ? TMPL_COMPOSE : TMPL_YAML;
        if (has_suffix(base, n, ".env") || (n == 3 && strncasecmp(base, "env", 3) == 0))
                return TMPL_ENV;
        if (has_suffix(base, n, ".conf") && has_infix(base, n, "nginx"))
                return TMPL_NGINX;
        if (has_suffix(base, n, ".sh"))
                return TMPL_SHELL;
        if (has_suffix(base, n, ".js") || has_suffix(base, n, ".cjs"))
                return TMPL_JS;
        return TMPL_RAW;
}
