/* Diagnostics: messages tied to a file, line and column, collected so a
 * validator can report every problem at once, printed as
 * `file:line:column: message` like a compiler. */
#pragma once

#include <stdio.h>

#include "node.h"
#include "util.h"

struct diag {
        char *file;
        unsigned line, column; /* 0 when unknown */
        char *message;
};

struct diags {
        struct diag *v;
        size_t n;
};

void diags_add(struct diags *d, const char *file, unsigned line, unsigned column, const char *fmt,
               ...) _printf_(5, 6);
/* At the node's place; n may be NULL (then file only, when given). */
void diags_at(struct diags *d, const struct node *n, const char *fmt, ...) _printf_(3, 4);
void diags_print(const struct diags *d, FILE *f);
/* One diagnostic as "file:line:column: message" (newly allocated). */
char *diag_format(const struct diag *g);
void diags_free(struct diags *d);

/* Reports every key of map not in allowed (NULL-terminated) as
 * "unknown key 'k' in <what> (expected one of: a, b, c)". Returns how
 * many were reported. */
size_t diags_check_keys(struct diags *d, const struct node *map, const char *what,
                        const char *const *allowed);
/* Reports and returns false when n is not of the wanted kind:
 * "'key' must be a mapping, not a string". */
bool diags_expect_kind(struct diags *d, const struct node *n, enum node_kind kind);
/* A string scalar at map[key] (NULL when absent); reports a non-scalar. */
const char *diags_get_str(struct diags *d, const struct node *map, const char *key, bool required,
                          const char *what);
