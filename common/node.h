/* A document tree shared by the YAML and JSON readers and the JSON
 * writer: maps, sequences and scalars, each with the file, line and column
 * it came from, so every validator can point at the exact place. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* How deep a tree read from a file may nest (maps and sequences in
 * maps and sequences). The YAML and JSON readers refuse deeper input, so
 * every recursive walk over a tree stays within this many frames; our
 * files nest a handful of levels. */
#define NODE_MAX_DEPTH 100

enum node_kind {
        NODE_SCALAR,
        NODE_MAP,
        NODE_SEQ,
};

/* What a scalar is. YAML's plain scalars stay SCALAR_PLAIN and are
 * resolved when asked (as int, bool, ...); quoted ones are SCALAR_STR.
 * Nodes built in code, and JSON, carry their exact type. */
enum scalar_type {
        SCALAR_PLAIN,
        SCALAR_STR,
        SCALAR_INT,
        SCALAR_BOOL,
        SCALAR_NULL,
        SCALAR_REAL,
};

struct node {
        enum node_kind kind;
        enum scalar_type type;
        char *key;   /* this node's key, when it is a map value */
        char *value; /* scalar text; "true"/"false" for booleans, "" for null */
        struct node **items;
        size_t n_items;
        const char *file; /* shared with the root; owned by the root */
        unsigned line, column;
        unsigned key_line, key_column; /* where the key stands, for map values */
        char *owned_file;
        /* For maps read from a file: item positions sorted by key, so
         * node_get() is a binary search. Valid while n_sorted == n_items;
         * node_append() drops it. */
        size_t *sorted;
        size_t n_sorted;
        struct node *walk_next; /* node_free()'s and node_set_origin()'s work list */
};

struct node *node_new(enum node_kind kind);
struct node *node_new_scalar(enum scalar_type type, const char *value);
void node_free(struct node *n);
static inline void node_freep(struct node **n)
{
        node_free(*n);
}
#define _cleanup_node_ __attribute__((cleanup(node_freep)))

/* Appends child to a map (with key) or a sequence (key NULL); takes
 * ownership of child. Returns 0 or -ENOMEM. */
int node_append(struct node *parent, const char *key, struct node *child);
/* Builders for maps; each replaces an existing key. */
int node_set_str(struct node *map, const char *key, const char *value);
int node_set_int(struct node *map, const char *key, long long value);
int node_set_bool(struct node *map, const char *key, bool value);
int node_set_real(struct node *map, const char *key, double value);
int node_set_null(struct node *map, const char *key);
int node_set(struct node *map, const char *key, struct node *child);
/* Sets file/line/column of n and every descendant that has none. */
void node_set_origin(struct node *n, const char *file);

/* Sorts the keys of a map for node_get() (nothing for a map of a few
 * keys). When a key stands twice, *ret_dup (may be NULL) is the second
 * item of the duplicate pair whose second item comes first, and the
 * return is -EEXIST; otherwise 0, or -ENOMEM. O(n log n). */
int node_index_keys(struct node *map, const struct node **ret_dup);

/* The value for key in a map, or NULL (also when n is not a map). */
struct node *node_get(const struct node *map, const char *key);
/* The scalar text of map[key], or NULL when absent, null or not a scalar. */
const char *node_get_str(const struct node *map, const char *key);

bool node_is_scalar(const struct node *n);
bool node_is_null(const struct node *n);
/* Resolution by YAML 1.2's core schema for plain scalars: true/false,
 * decimal integers (and 0x/0o), null/~/empty. A quoted scalar is always a
 * string. Return 0 or -EINVAL when n is not of that type. */
int node_as_bool(const struct node *n, bool *ret);
int node_as_int(const struct node *n, long long *ret);
int node_as_real(const struct node *n, double *ret);
/* What a scalar resolves to, as one of SCALAR_STR/INT/BOOL/NULL/REAL. */
enum scalar_type node_resolve(const struct node *n);
/* "a mapping", "a sequence", "a string", "an integer", ... for messages. */
const char *node_kind_name(const struct node *n);

/* A deep copy; NULL when out of memory or deeper than NODE_MAX_DEPTH. */
struct node *node_copy(const struct node *n);
