/* imagegen's template renderer: a small mustache-like language whose
 * variables are escaped for the format of the file being written, so a
 * value (a password with '$', quotes, '#', spaces, a newline) reaches the
 * program that reads the file byte for byte.
 *
 * Syntax:
 *   {{name}} {{a.b.c}}     a scalar, escaped for the format
 *   {{{name}}} {{& name}}  a scalar as is, not escaped
 *   {{#name}}...{{/name}}  a section: skipped when name is missing, false,
 *                          null, an empty string, an empty sequence or an
 *                          empty map; looped once per item of a sequence
 *                          (the item pushed as the context); otherwise
 *                          rendered once with the value pushed
 *   {{^name}}...{{/name}}  inverted: rendered only when the section would
 *                          be skipped
 *   {{! comment }}         nothing (may span lines)
 *   {{.}}                  the current context itself (a loop's item)
 *   {{=<% %>=}}            from here on the tags are <%name%>, <%#name%>,
 *                          ...; for text that holds "{{" itself, such as
 *                          `docker inspect -f '{{.State.Status}}'`
 * A name is looked up in the innermost context first and then outward; in
 * a dotted name only the first part walks outward, the rest must be keys
 * of what it found. Names are made of [A-Za-z0-9_-] parts joined by '.'.
 * A section, inverted, close, comment or set-delimiter tag alone on its
 * line (with only spaces or tabs around it) removes the whole line, so the
 * indentation of the lines it wraps stays as written. Partials ({{>x}})
 * are not supported.
 *
 * A variable that is not defined is an error, not empty output: a typo in
 * a template must not silently render an empty password. A missing name
 * in a section or inverted tag is just false. A variable holding a map or
 * a sequence is an error. A null renders as an empty string (as `null` in
 * YAML). Diagnostics never include the value.
 *
 * A variable stands for one whole value (a YAML scalar, an env value, a
 * shell word, an nginx argument). Where a value may be written without
 * quotes and still read back the same, it is, so `http://127.0.0.1:{{port}}`
 * works for a port; a value that needs quoting placed inside a larger word
 * would not survive, so give it its own variable.
 *
 * Escaping per format:
 *   RAW     as is.
 *   YAML    strings become a double-quoted scalar ("\"", "\\", "\n", "\t",
 *           "\xNN" for control characters, "\uNNNN" for the characters
 *           YAML reads as line breaks); integers in canonical decimal form,
 *           booleans and simple reals keep their type and are written
 *           plain (`retries: {{n}}` stays an integer); null is `null`.
 *           Values must be valid UTF-8.
 *   COMPOSE YAML, and every '$' doubled, because docker-compose expands
 *           "$VAR" and "${VAR}" in every string of a compose file.
 *   ENV     for docker-compose's env_file and its project .env (Debian's
 *           docker-compose, which reads them with python-dotenv): values
 *           made only of [A-Za-z0-9_@%+=:,./-] are written bare, others
 *           single-quoted with "\\" and "\'" escapes; newlines are kept
 *           (the quotes span lines). That reader expands "${NAME}" even
 *           inside quotes and has no escape for it, so a "${" is written as
 *           "${:-$}{" (an empty name with the default "$"), and a trailing
 *           backslash as "${:-\\}" (an escaped backslash before the
 *           closing quote would be read as an escaped quote). A carriage
 *           return is refused: the file is read with newline translation.
 *           systemd's EnvironmentFile= reads single quotes without any
 *           escapes, so it reads the same value only when the value has no
 *           quote, backslash or "${".
 *   NGINX   a double-quoted nginx string ("\"", "\\", "\t"), bare when
 *           made only of [A-Za-z0-9_@%+=:,./-]. A '$' is refused: nginx
 *           expands variables in the strings of most directives (return,
 *           add_header, proxy_set_header, ...) and has no escape for '$'.
 *           Line breaks are refused: they would split a header or a
 *           directive value in two.
 *   SHELL   a single-quoted shell word ('\'' for a quote), bare when made
 *           only of [A-Za-z0-9_@%+=:,./-]; for bash, dash and any POSIX sh.
 *   JS      a double-quoted JavaScript string literal, never a template
 *           literal (so "${" and "`" need nothing): "\"", "\\", "\n",
 *           "\r", "\t", "\xNN" for the other control characters and DEL,
 *           "\u2028", "\u2029" and "\uFEFF"; the literal is on one line.
 *           Integers of at most 15 digits, simple reals, booleans and null
 *           are written bare (`instances: {{n}}` stays a number), like
 *           YAML. Values must be valid UTF-8 (a NUL cannot be in a value).
 */
#pragma once

#include <stddef.h>

#include "diag.h"
#include "node.h"

enum tmpl_format {
        TMPL_RAW,
        TMPL_YAML,
        TMPL_ENV,
        TMPL_NGINX,
        TMPL_SHELL,
        TMPL_COMPOSE,
        TMPL_JS,
};

/* The format for a template file, by its base name with a trailing
 * ".tmpl" removed first, case-insensitively:
 *   *compose*.yml, *compose*.yaml  COMPOSE
 *   *.yml, *.yaml                  YAML
 *   *.env, "env"                   ENV (so ".env", "app.env.tmpl", "env")
 *   *nginx*.conf                   NGINX
 *   *.sh                           SHELL
 *   *.js, *.cjs                    JS
 *   anything else                  RAW */
enum tmpl_format tmpl_format_for(const char *name);

/* "raw", "yaml", "env", "nginx", "shell", "compose", "js"; and back (0 or
 * -EINVAL). */
const char *tmpl_format_name(enum tmpl_format fmt);
int tmpl_format_from_string(const char *s, enum tmpl_format *ret);

/* Renders text (len bytes, read from the file called name, which is used
 * in diagnostics) with the context ctx (may be NULL: then every variable is
 * undefined). Returns 0 and the NUL-terminated output in *ret, or -EINVAL
 * after adding one diagnostic per problem at name:line:column (columns
 * count characters, from 1), or -ENOMEM. */
int tmpl_render(const char *name, const char *text, size_t len, const struct node *ctx,
                enum tmpl_format fmt, char **ret, struct diags *d);
