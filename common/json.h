/* The one file that talks to json-c: struct node trees to JSON text and
 * back. Scalars keep their types (SCALAR_PLAIN ones are resolved the YAML
 * way), so a tree read from YAML can be written as JSON. */
#pragma once

#include "diag.h"
#include "node.h"

int json_format(const struct node *n, bool pretty, char **ret);
/* On a syntax error appends a diagnostic with the line and column. */
int json_parse(const char *file, const char *buf, size_t len, struct node **ret, struct diags *d);
