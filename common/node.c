#include "node.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>

struct node *node_new(enum node_kind kind)
{
        struct node *n = calloc(1, sizeof(*n));
        if (n)
                n->kind = kind;
        return n;
}

struct node *node_new_scalar(enum scalar_type type, const char *value)
{
        struct node *n = node_new(NODE_SCALAR);
        if (!n)
                return NULL;
        n->type = type;
        n->value = strdup(value ? value : "");
        if (!n->value) {
                free(n);
                return NULL;
        }
        return n;
}

/* Iterative, so no tree is too deep to free: the children of each node
 * freed go onto a work list threaded through walk_next. */
void node_free(struct node *n)
{
        if (!n)
                return;
        n->walk_next = NULL;
        while (n) {
                struct node *next = n->walk_next;
                for (size_t i = 0; i < n->n_items; i++) {
                        n->items[i]->walk_next = next;
                        next = n->items[i];
                }
                free(n->items);
                free(n->sorted);
                free(n->key);
                free(n->value);
                free(n->owned_file);
                free(n);
                n = next;
        }
}

/* Maps smaller than this are searched from the start. */
#define NODE_INDEX_MIN 16

static const char *key_of(const struct node *n)
{
        return n->key ? n->key : "";
}

static int cmp_positions(const void *a, const void *b, void *userdata)
{
        const struct node *map = userdata;
        size_t i = *(const size_t *)a, j = *(const size_t *)b;
        int c = strcmp(key_of(map->items[i]), key_of(map->items[j]));
        if (c)
                return c;
        return i < j ? -1 : i > j;
}

static void drop_index(struct node *map)
{
        free(map->sorted);
        map->sorted = NULL;
        map->n_sorted = 0;
}

int node_index_keys(struct node *map, const struct node **ret_dup)
{
        size_t dup = SIZE_MAX;

        if (!map || map->kind != NODE_MAP)
                return 0;
        drop_index(map);
        if (map->n_items < NODE_INDEX_MIN) {
                for (size_t j = 1; j < map->n_items && dup == SIZE_MAX; j++)
                        for (size_t i = 0; i < j; i++)
                                if (streq(key_of(map->items[i]), key_of(map->items[j]))) {
                                        dup = j;
                                        break;
                                }
        } else {
                size_t *v = reallocarray(NULL, map->n_items, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                for (size_t i = 0; i < map->n_items; i++)
                        v[i] = i;
                qsort_r(v, map->n_items, sizeof(*v), cmp_positions, map);
                /* Equal keys sit together, in document order: the second
                 * of each run is where that key first repeats. */
                for (size_t i = 1; i < map->n_items; i++)
                        if (v[i] < dup &&
                            streq(key_of(map->items[v[i - 1]]), key_of(map->items[v[i]])) &&
                            (i < 2 ||
                             !streq(key_of(map->items[v[i - 2]]), key_of(map->items[v[i]]))))
                                dup = v[i];
                if (dup == SIZE_MAX) {
                        map->sorted = v;
                        map->n_sorted = map->n_items;
                } else
                        free(v);
        }
        if (dup == SIZE_MAX)
                return 0;
        if (ret_dup)
                *ret_dup = map->items[dup];
        return -EEXIST;
}

static ssize_t node_index(const struct node *map, const char *key)
{
        if (!map || map->kind != NODE_MAP)
                return -1;
        if (map->sorted && map->n_sorted == map->n_items) {
                size_t lo = 0, hi = map->n_sorted;
                while (lo < hi) {
                        size_t mid = lo + (hi - lo) / 2;
                        int c = strcmp(key_of(map->items[map->sorted[mid]]), key);
                        if (c == 0)
                                return (ssize_t)map->sorted[mid];
                        if (c < 0)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                return -1;
        }
        for (size_t i = 0; i < map->n_items; i++)
                if (streq(map->items[i]->key, key))
                        return (ssize_t)i;
        return -1;
}

int node_append(struct node *parent, const char *key, struct node *child)
{
        struct node **items;

        if (!child)
                return -ENOMEM;
        if (key) {
                free(child->key);
                child->key = strdup(key);
                if (!child->key) {
                        node_free(child);
                        return -ENOMEM;
                }
        }
        /* The array doubles when n_items reaches a power of two, so a map
         * of n keys costs O(n) copying, not O(n^2). */
        size_t n = parent->n_items;
        if (n == 0 || (n & (n - 1)) == 0) {
                items = reallocarray(parent->items, n < 4 ? 4 : n * 2, sizeof(*items));
                if (!items) {
                        node_free(child);
                        return -ENOMEM;
                }
                parent->items = items;
        }
        drop_index(parent);
        parent->items[parent->n_items++] = child;
        return 0;
}

int node_set(struct node *map, const char *key, struct node *child)
{
        ssize_t i = node_index(map, key);
        if (!child)
                return -ENOMEM;
        if (i >= 0) {
                child->key = strdup(key);
                if (!child->key) {
                        node_free(child);
                        return -ENOMEM;
                }
                node_free(map->items[i]);
                map->items[i] = child;
                return 0;
        }
        return node_append(map, key, child);
}

int node_set_str(struct node *map, const char *key, const char *value)
{
        return node_set(map, key, node_new_scalar(SCALAR_STR, value));
}

int node_set_int(struct node *map, const char *key, long long value)
{
        char b[32];
        snprintf(b, sizeof(b), "%lld", value);
        return node_set(map, key, node_new_scalar(SCALAR_INT, b));
}

int node_set_bool(struct node *map, const char *key, bool value)
{
        return node_set(map, key, node_new_scalar(SCALAR_BOOL, value ? "true" : "false"));
}

int node_set_real(struct node *map, const char *key, double value)
{
        char b[64];
        snprintf(b, sizeof(b), "%.17g", value);
        return node_set(map, key, node_new_scalar(SCALAR_REAL, b));
}

int node_set_null(struct node *map, const char *key)
{
        return node_set(map, key, node_new_scalar(SCALAR_NULL, ""));
}

void node_set_origin(struct node *n, const char *file)
{
        free(n->owned_file);
        n->owned_file = strdup_null(file);
        /* Iterative, like node_free(). */
        n->walk_next = NULL;
        for (struct node *c = n; c;) {
                struct node *next = c->walk_next;
                c->walk_next = NULL;
                c->file = n->owned_file;
                for (size_t i = 0; i < c->n_items; i++) {
                        c->items[i]->walk_next = next;
                        next = c->items[i];
                }
                c = next;
        }
}

struct node *node_get(const struct node *map, const char *key)
{
        ssize_t i = node_index(map, key);
        return i < 0 ? NULL : map->items[i];
}

const char *node_get_str(const struct node *map, const char *key)
{
        const struct node *n = node_get(map, key);
        if (!n || n->kind != NODE_SCALAR || node_is_null(n))
                return NULL;
        return n->value;
}

bool node_is_scalar(const struct node *n)
{
        return n && n->kind == NODE_SCALAR;
}

bool node_is_null(const struct node *n)
{
        return n && n->kind == NODE_SCALAR && node_resolve(n) == SCALAR_NULL;
}

static bool plain_is_null(const char *v)
{
        return !*v || streq(v, "~") || streq(v, "null") || streq(v, "Null") || streq(v, "NULL");
}

static int plain_bool(const char *v, bool *ret)
{
        if (streq(v, "true") || streq(v, "True") || streq(v, "TRUE")) {
                *ret = true;
                return 0;
        }
        if (streq(v, "false") || streq(v, "False") || streq(v, "FALSE")) {
                *ret = false;
                return 0;
        }
        return -EINVAL;
}

static int plain_int(const char *v, long long *ret)
{
        char *end;
        long long x;

        if (!*v)
                return -EINVAL;
        errno = 0;
        if (startswith(v, "0x"))
                x = strtoll(v + 2, &end, 16);
        else if (startswith(v, "0o"))
                x = strtoll(v + 2, &end, 8);
        else {
                /* YAML 1.2 core: [-+]?[0-9]+ */
                const char *p = v + (*v == '-' || *v == '+');
                if (!*p)
                        return -EINVAL;
                for (; *p; p++)
                        if (*p < '0' || *p > '9')
                                return -EINVAL;
                x = strtoll(v, &end, 10);
        }
        if (errno || *end || end == v)
                return -EINVAL;
        *ret = x;
        return 0;
}

static int plain_real(const char *v, double *ret)
{
        char *end;
        if (!*v || strchr(" \t", *v))
                return -EINVAL;
        errno = 0;
        double x = strtod(v, &end);
        if (errno || *end || !isfinite(x))
                return -EINVAL;
        *ret = x;
        return 0;
}

enum scalar_type node_resolve(const struct node *n)
{
        bool b;
        long long i;
        double d;

        if (!n || n->kind != NODE_SCALAR)
                return SCALAR_STR;
        if (n->type != SCALAR_PLAIN)
                return n->type;
        if (plain_is_null(n->value))
                return SCALAR_NULL;
        if (plain_bool(n->value, &b) == 0)
                return SCALAR_BOOL;
        if (plain_int(n->value, &i) == 0)
                return SCALAR_INT;
        if (plain_real(n->value, &d) == 0)
                return SCALAR_REAL;
        return SCALAR_STR;
}

int node_as_bool(const struct node *n, bool *ret)
{
        if (!n || node_resolve(n) != SCALAR_BOOL)
                return -EINVAL;
        return plain_bool(n->value, ret);
}

int node_as_int(const struct node *n, long long *ret)
{
        if (!n || node_resolve(n) != SCALAR_INT)
                return -EINVAL;
        return plain_int(n->value, ret);
}

int node_as_real(const struct node *n, double *ret)
{
        enum scalar_type t = node_resolve(n);
        if (!n || (t != SCALAR_REAL && t != SCALAR_INT))
                return -EINVAL;
        return plain_real(n->value, ret);
}

const char *node_kind_name(const struct node *n)
{
        if (!n)
                return "nothing";
        switch (n->kind) {
        case NODE_MAP:
                return "a mapping";
        case NODE_SEQ:
                return "a sequence";
        case NODE_SCALAR:
                break;
        }
        switch (node_resolve(n)) {
        case SCALAR_INT:
                return "an integer";
        case SCALAR_BOOL:
                return "a boolean";
        case SCALAR_NULL:
                return "null";
        case SCALAR_REAL:
                return "a number";
        default:
                return "a string";
        }
}

static struct node *copy_depth(const struct node *n, unsigned depth)
{
        if (depth > NODE_MAX_DEPTH)
                return NULL;
        struct node *c = node_new(n->kind);
        if (!c)
                return NULL;
        c->type = n->type;
        c->file = n->file;
        c->line = n->line;
        c->column = n->column;
        c->key_line = n->key_line;
        c->key_column = n->key_column;
        c->key = strdup_null(n->key);
        c->value = strdup_null(n->value);
        if ((n->key && !c->key) || (n->value && !c->value))
                goto fail;
        for (size_t i = 0; i < n->n_items; i++)
                if (node_append(c, NULL, copy_depth(n->items[i], depth + 1)) < 0)
                        goto fail;
        if (n->sorted && n->n_sorted == n->n_items) {
                c->sorted = reallocarray(NULL, n->n_sorted, sizeof(*c->sorted));
                if (!c->sorted)
                        goto fail;
                memcpy(c->sorted, n->sorted, n->n_sorted * sizeof(*c->sorted));
                c->n_sorted = n->n_sorted;
        }
        return c;
fail:
        node_free(c);
        return NULL;
}

struct node *node_copy(const struct node *n)
{
        return copy_depth(n, 0);
}
