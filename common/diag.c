#include "diag.h"

#include <stdarg.h>

_printf_(5, 0) static void diags_addv(struct diags *d, const char *file, unsigned line,
                                      unsigned column, const char *fmt, va_list ap)
{
        /* Grows by doubling: at 0, 1, 2, 4, 8... (a copy per message
         * made a validator with many messages quadratic). */
        if ((d->n & (d->n - 1)) == 0)
                d->v = xrealloc(d->v, (d->n ? 2 * d->n : 1) * sizeof(*d->v));
        char *msg = vstrprintf(fmt, ap);
        if (!msg)
                abort();
        d->v[d->n++] = (struct diag){
                .file = file ? xstrdup(file) : NULL,
                .line = line,
                .column = column,
                .message = msg,
        };
}

void diags_add(struct diags *d, const char *file, unsigned line, unsigned column, const char *fmt,
               ...)
{
        va_list ap;
        va_start(ap, fmt);
        diags_addv(d, file, line, column, fmt, ap);
        va_end(ap);
}

void diags_at(struct diags *d, const struct node *n, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        diags_addv(d, n ? n->file : NULL, n ? n->line : 0, n ? n->column : 0, fmt, ap);
        va_end(ap);
}

char *diag_format(const struct diag *g)
{
        if (g->file && g->line)
                return strprintf("%s:%u:%u: %s", g->file, g->line, g->column, g->message);
        if (g->file)
                return strprintf("%s: %s", g->file, g->message);
        return xstrdup(g->message);
}

void diags_print(const struct diags *d, FILE *f)
{
        for (size_t i = 0; i < d->n; i++) {
                _cleanup_free_ char *s = diag_format(&d->v[i]);
                fprintf(f, "%s\n", s);
        }
}

void diags_free(struct diags *d)
{
        for (size_t i = 0; i < d->n; i++) {
                free(d->v[i].file);
                free(d->v[i].message);
        }
        free(d->v);
        *d = (struct diags){0};
}

size_t diags_check_keys(struct diags *d, const struct node *map, const char *what,
                        const char *const *allowed)
{
        size_t bad = 0;

        if (!map || map->kind != NODE_MAP)
                return 0;
        for (size_t i = 0; i < map->n_items; i++) {
                const char *k = map->items[i]->key;
                bool ok = false;
                for (size_t j = 0; allowed[j]; j++)
                        ok = ok || streq(k, allowed[j]);
                if (ok)
                        continue;
                struct buf b = {0};
                for (size_t j = 0; allowed[j]; j++)
                        buf_printf(&b, "%s%s", j ? ", " : "", allowed[j]);
                const struct node *v = map->items[i];
                diags_add(d, v->file, v->key_line ? v->key_line : v->line,
                          v->key_line ? v->key_column : v->column,
                          "unknown key '%s' in %s (expected one of: %s)", k, what,
                          b.data ? b.data : "");
                buf_free(&b);
                bad++;
        }
        return bad;
}

static const char *kind_word(enum node_kind k)
{
        return k == NODE_MAP ? "a mapping" : k == NODE_SEQ ? "a sequence" : "a scalar";
}

bool diags_expect_kind(struct diags *d, const struct node *n, enum node_kind kind)
{
        if (!n || n->kind == kind)
                return true;
        if (n->key)
                diags_at(d, n, "'%s' must be %s, not %s", n->key, kind_word(kind),
                         node_kind_name(n));
        else
                diags_at(d, n, "expected %s, not %s", kind_word(kind), node_kind_name(n));
        return false;
}

const char *diags_get_str(struct diags *d, const struct node *map, const char *key, bool required,
                          const char *what)
{
        const struct node *n = node_get(map, key);

        if (!n || node_is_null(n)) {
                if (required)
                        diags_at(d, map, "%s: missing '%s'", what, key);
                return NULL;
        }
        if (n->kind != NODE_SCALAR) {
                diags_at(d, n, "'%s' must be a string, not %s", key, node_kind_name(n));
                return NULL;
        }
        return n->value;
}
