/* The one file that talks to libyaml: YAML text to a struct node tree
 * with line and column on every node (1-based). Anchors and aliases,
 * duplicate keys, non-scalar keys and more than one document are refused:
 * our files are configuration, and each of those is a mistake or an
 * attack there. */
#pragma once

#include "diag.h"
#include "node.h"

/* Parses buf; file names the source in the tree and in diagnostics. An
 * empty document is a null scalar. On error appends one diagnostic to d
 * and returns -EBADMSG. */
int yaml_parse(const char *file, const char *buf, size_t len, struct node **ret, struct diags *d);
/* Reads and parses a file (at most max bytes; 0 means 4 MiB). */
int yaml_parse_file(const char *path, size_t max, struct node **ret, struct diags *d);

/* Writes a scalar as a YAML double-quoted string (always valid YAML,
 * whatever the bytes), for emitters that build YAML by hand. */
int yaml_quote(struct buf *b, const char *s);

/* Writes a node tree as block-style YAML that yaml_parse() reads back to
 * the same tree: strings double-quoted unless plainly safe, integers,
 * booleans, reals and null plain. For generated files people read
 * (bundle.yaml). */
int yaml_format(const struct node *n, char **ret);
