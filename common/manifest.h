/* The module manifest (manifest.yml, the module contract) and the
 * validation of the inputs given to a module. The agent checks a bundle's
 * inputs with it and imagegen checks site.yaml with it, so both report the
 * same problems in the same words, each at its file:line:column. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "node.h"
#include "regex.h"

enum input_type {
        INPUT_STRING,
        INPUT_INTEGER,
        INPUT_BOOLEAN,
        INPUT_PASSWORD,
        INPUT_SELECT,
        INPUT_EMAIL,
        INPUT_PORT,
};

enum frequency {
        FREQ_PER_INSTANCE,
        FREQ_ALWAYS,
        FREQ_ONCE,
};

/* One entry of an input's visible_if: the input is visible only when the
 * resolved value of inputs[input] is one of values. */
struct manifest_condition {
        char *name;    /* the other input */
        size_t input;  /* its index in manifest.inputs */
        char **values; /* canonical text, at least one */
};

/* Values are kept as canonical text: integers in decimal, booleans
 * "true"/"false", everything else as written. */
struct manifest_input {
        char *name;
        char *env_name; /* name uppercased: what install.sh sees */
        enum input_type type;
        char *label, *description; /* NULL when not given */
        bool required;
        bool sensitive;      /* sensitive: true, or a password */
        char *default_value; /* NULL when there is no default */
        /* validation; each only where it applies to the type */
        char *pattern;       /* as written: Perl-compatible, must match the whole value */
        struct regex *regex; /* pattern compiled (common/regex.h) */
        long long min_length, max_length; /* in characters; -1 when not given */
        bool has_min, has_max;
        long long min, max;
        char **allowed_values;                 /* strv, or NULL */
        struct manifest_condition *visible_if; /* every one must hold */
        size_t n_visible_if;
};

/* One family of os_requirements: an os-release ID (matched without
 * regard to case) and the lowest VERSION_ID it needs. */
struct manifest_os {
        char *family;
        char *min_version; /* NULL: any version */
};

/* A watches: entry, with where it was written (for errors found once the
 * bundle is known, e.g. a path the bundle does not ship). */
struct manifest_watch {
        char *path;
        char *file; /* NULL when unknown */
        unsigned line, column;
};

struct manifest {
        char *id, *name, *version, *description, *category, *author;
        /* os_requirements.family, in the order written; none when n_os is 0.
         * A single min_version (not a mapping) is the first family's: each
         * distribution numbers its releases its own way, so "20.04" with
         * [ubuntu, debian] is Ubuntu's, and os_min_first_only says so. */
        struct manifest_os *os;
        size_t n_os;
        bool os_min_first_only;
        long long min_ram_mb, min_disk_mb; /* 0 when not required */
        struct manifest_input *inputs;
        size_t n_inputs;
        char *install_script;      /* relative to the module dir; default install.sh */
        long long timeout_seconds; /* 1..86400; default 600 */
        bool idempotent;
        char **after, **requires; /* strv, maybe NULL */
        enum frequency frequency; /* default once-per-instance */
        /* watches: bundle files (absolute paths on the server, as in the
         * bundle's files: entries) whose bytes are part of the module's
         * digest: a change to one runs the module again (day 2). */
        struct manifest_watch *watches;
        size_t n_watches;
        /* reprovision: inputs the module cannot change in place (strv,
         * maybe NULL): a new value for one is refused by apply and shown
         * by plan as "requires reprovisioning: NAME". */
        char **reprovision;
};

#define MANIFEST_FILE            "manifest.yml"
#define MANIFEST_ID_MAX          64
#define MANIFEST_DEFAULT_TIMEOUT 600
#define MANIFEST_MAX_TIMEOUT     86400

/* Checks the whole manifest and reports every problem in d at its
 * file:line:column. Returns 0, -EBADMSG when something was reported, or
 * -ENOMEM. *ret is written only on success. */
int manifest_parse(const struct node *doc, struct manifest **ret, struct diags *d);
/* yaml_parse_file() + manifest_parse(). */
int manifest_load(const char *path, struct manifest **ret, struct diags *d);
void manifest_free(struct manifest *m);
static inline void manifest_freep(struct manifest **m)
{
        manifest_free(*m);
}
#define _cleanup_manifest_ __attribute__((cleanup(manifest_freep)))

/* "ubuntu >= 20.04 or debian", for messages; os with n entries. */
char *manifest_os_describe(const struct manifest_os *os, size_t n);

/* Whether s is a valid module id: ^[a-z0-9][a-z0-9_-]*$, at most 64. */
bool manifest_id_is_valid(const char *s);
const struct manifest_input *manifest_find_input(const struct manifest *m, const char *name);

const char *frequency_to_string(enum frequency f);
int frequency_from_string(const char *s, enum frequency *ret);
const char *input_type_to_string(enum input_type t);
int input_type_from_string(const char *s, enum input_type *ret);

struct input_value {
        char *name;
        char *env_name; /* NAME uppercased, non-alnum → '_' */
        char *value;    /* canonical text: integers in decimal, booleans "true"/"false" */
        bool sensitive; /* sensitive: true, or type password */
};

struct input_values {
        struct input_value *v;
        size_t n;
};

/* Checks the inputs given to module m and applies its defaults. given is
 * the `inputs:` mapping of a bundle.yaml or site.yaml module entry (NULL
 * or null when none were given); where is that module entry, the place
 * of "missing required input" errors. Every other problem points at the
 * given node. Messages start with "module <id>: " and never contain the
 * value of a sensitive input. Only visible inputs that have a value (given
 * or default) are in *ret, in manifest order. Returns 0, -EBADMSG when
 * something was reported, or -ENOMEM; *ret is written only on success. */
int manifest_resolve_inputs(const struct manifest *m, const struct node *given,
                            const struct node *where, struct diags *d, struct input_values *ret);
/* The value of input name, or NULL. */
const char *input_values_get(const struct input_values *v, const char *name);
void input_values_free(struct input_values *v);
