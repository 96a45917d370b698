#include "manifest.h"
#include "fs.h"
#include "yaml.h"

#include <errno.h>
#include <limits.h>

static const char *const type_names[] = {
        [INPUT_STRING] = "string",     [INPUT_INTEGER] = "integer", [INPUT_BOOLEAN] = "boolean",
        [INPUT_PASSWORD] = "password", [INPUT_SELECT] = "select",   [INPUT_EMAIL] = "email",
        [INPUT_PORT] = "port",
};

static const char *const frequency_names[] = {
        [FREQ_PER_INSTANCE] = "once-per-instance",
        [FREQ_ALWAYS] = "always",
        [FREQ_ONCE] = "once",
};

static const char *const manifest_keys[] = {
        "id",
        "name",
        "version",
        "description",
        "category",
        "author",
        "os_requirements",
        "resource_requirements",
        "inputs",
        "install_script",
        "timeout_seconds",
        "idempotent",
        "after",
        "requires",
        "frequency",
        "watches",
        "reprovision",
        NULL,
};
static const char *const os_keys[] = {"family", "min_version", NULL};
static const char *const resource_keys[] = {"min_ram_mb", "min_disk_mb", NULL};
static const char *const input_keys[] = {
        "name",    "type",       "label",      "description", "required",
        "default", "validation", "visible_if", "sensitive",   NULL,
};
static const char *const validation_keys[] = {
        "pattern", "min_length", "max_length", "min", "max", "allowed_values", NULL,
};

/* Environment variables an input must not replace: they change how the
 * shell running install.sh behaves, or firstboot sets them itself. */
static const char *const reserved_env[] = {
        "PATH",     "HOME", "SHELL",  "IFS",        "ENV",    "BASH_ENV",        "SHELLOPTS",
        "BASHOPTS", "PS4",  "CDPATH", "GLOBIGNORE", "TMPDIR", "DEBIAN_FRONTEND", "PROVISIONING_JOB",
        NULL,
};
static const char *const reserved_env_prefixes[] = {"LD_", "BASH_", "FIRSTBOOT_", NULL};

#define MAX_REQUIREMENT_MB (1LL << 30)

const char *input_type_to_string(enum input_type t)
{
        if ((size_t)t >= ARRAY_SIZE(type_names))
                return NULL;
        return type_names[t];
}

int input_type_from_string(const char *s, enum input_type *ret)
{
        for (size_t i = 0; i < ARRAY_SIZE(type_names); i++)
                if (streq(s, type_names[i])) {
                        *ret = (enum input_type)i;
                        return 0;
                }
        return -EINVAL;
}

const char *frequency_to_string(enum frequency f)
{
        if ((size_t)f >= ARRAY_SIZE(frequency_names))
                return NULL;
        return frequency_names[f];
}

int frequency_from_string(const char *s, enum frequency *ret)
{
        for (size_t i = 0; i < ARRAY_SIZE(frequency_names); i++)
                if (streq(s, frequency_names[i])) {
                        *ret = (enum frequency)i;
                        return 0;
                }
        return -EINVAL;
}

static bool is_lower_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool manifest_id_is_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > MANIFEST_ID_MAX || !is_lower_alnum(s[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_lower_alnum(s[i]) && s[i] != '-' && s[i] != '_')
                        return false;
        return true;
}

static bool input_name_is_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > MANIFEST_ID_MAX || s[0] < 'a' || s[0] > 'z')
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_lower_alnum(s[i]) && s[i] != '_')
                        return false;
        return true;
}

static char *env_name_of(const char *name)
{
        char *e = xstrdup(name);

        for (char *p = e; *p; p++) {
                if (*p >= 'a' && *p <= 'z')
                        *p = (char)(*p - 'a' + 'A');
                else if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
                        *p = '_';
        }
        return e;
}

static bool env_is_reserved(const char *env)
{
        for (size_t i = 0; reserved_env[i]; i++)
                if (streq(env, reserved_env[i]))
                        return true;
        for (size_t i = 0; reserved_env_prefixes[i]; i++)
                if (startswith(env, reserved_env_prefixes[i]))
                        return true;
        return false;
}

const struct manifest_input *manifest_find_input(const struct manifest *m, const char *name)
{
        for (size_t i = 0; i < m->n_inputs; i++)
                if (m->inputs[i].name && streq(m->inputs[i].name, name))
                        return &m->inputs[i];
        return NULL;
}

static bool is_text_type(enum input_type t)
{
        return t == INPUT_STRING || t == INPUT_PASSWORD || t == INPUT_SELECT || t == INPUT_EMAIL;
}

static bool is_int_type(enum input_type t)
{
        return t == INPUT_INTEGER || t == INPUT_PORT;
}

static void strv_add(char ***v, const char *s)
{
        if (strv_extend(v, s) < 0)
                abort();
}

static char *join(char *const *v, const char *sep)
{
        struct buf b = {0};

        for (size_t i = 0; v && v[i]; i++)
                buf_printf(&b, "%s%s", i ? sep : "", v[i]);
        buf_puts(&b, "");
        if (!b.data)
                abort();
        return buf_steal(&b);
}

static char *input_names(const struct manifest *m)
{
        struct buf b = {0};

        for (size_t i = 0; i < m->n_inputs; i++)
                buf_printf(&b, "%s%s", i ? ", " : "", m->inputs[i].name ? m->inputs[i].name : "?");
        buf_puts(&b, "");
        if (!b.data)
                abort();
        return buf_steal(&b);
}

/* The length in characters of UTF-8 text. */
static size_t utf8_length(const char *s)
{
        size_t n = 0;

        for (; *s; s++)
                if (((unsigned char)*s & 0xc0) != 0x80)
                        n++;
        return n;
}

/* The canonical text of a scalar: integers in decimal, booleans
 * "true"/"false", anything else as written. */
static char *canonical_scalar(const struct node *n)
{
        long long x;
        bool b;

        if (node_as_int(n, &x) == 0)
                return strprintf("%lld", x);
        if (node_as_bool(n, &b) == 0)
                return xstrdup(b ? "true" : "false");
        return xstrdup(n->value);
}

/* Reports a message at the place of n's key (for map values), else at n. */
_printf_(3, 4) static void diags_at_key(struct diags *d, const struct node *n, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        _cleanup_free_ char *msg = vstrprintf(fmt, ap);
        va_end(ap);
        if (!msg)
                abort();
        if (n->key_line)
                diags_add(d, n->file, n->key_line, n->key_column, "%s", msg);
        else
                diags_at(d, n, "%s", msg);
}

/* Compiles a validation pattern, reporting a bad one at its node p with
 * pcre2's message and where in the pattern it stopped. Returns whether it
 * compiled. */
static bool pattern_compile(struct diags *d, const struct node *p, const char *ctx,
                            const char *pattern, struct regex **ret)
{
        _cleanup_free_ char *error = NULL;
        size_t offset = 0;
        int r;

        r = regex_compile(pattern, ret, &error, &offset);
        if (r == -ENOMEM)
                abort();
        if (r < 0) {
                _cleanup_free_ char *q = quote_for_message(pattern);
                diags_at(d, p,
                         "%s'pattern' is not a valid regular expression: %s at offset %zu of %s",
                         ctx, error, offset, q);
                return false;
        }
        return true;
}

/* A sane check, not RFC 5322: one '@', a non-empty local part, a domain
 * of dot-separated non-empty labels, no spaces or quoting characters. */
static bool email_is_valid(const char *s)
{
        const char *at = strchr(s, '@');

        if (!at || at == s || strchr(at + 1, '@') || at - s > 64)
                return false;
        for (const char *p = s; p < at; p++) {
                unsigned char c = (unsigned char)*p;
                if (c <= ' ' || c == 0x7f || strchr("\"(),:;<>[\\]", c))
                        return false;
        }
        const char *dom = at + 1;
        if (!strchr(dom, '.') || *dom == '.' || dom[strlen(dom) - 1] == '.' || strstr(dom, ".."))
                return false;
        for (const char *p = dom; *p; p++) {
                unsigned char c = (unsigned char)*p;
                if (!(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '-' || c == '.'))
                        return false;
        }
        return true;
}

static const char *type_expectation(enum input_type t)
{
        switch (t) {
        case INPUT_INTEGER:
                return "an integer";
        case INPUT_PORT:
                return "a port number";
        case INPUT_BOOLEAN:
                return "true or false";
        case INPUT_EMAIL:
                return "an email address";
        default:
                return "a string";
        }
}

/* Checks value node v against in's type and validation. subject names
 * the value in messages ("module m: input 'x'"). On success *ret is the
 * canonical text. Sensitive values are never echoed. */
static bool check_value(const struct manifest_input *in, const struct node *v, const char *subject,
                        struct diags *d, char **ret)
{
        _cleanup_free_ char *canon = NULL, *q = NULL;
        bool ok = true, sens = in->sensitive;
        long long x;

        if (v->kind != NODE_SCALAR) {
                diags_at(d, v, "%s must be %s, not %s", subject, type_expectation(in->type),
                         node_kind_name(v));
                return false;
        }

        if (is_int_type(in->type)) {
                if (node_as_int(v, &x) < 0) {
                        long long y;
                        bool quoted_int =
                                node_resolve(v) == SCALAR_STR && parse_llong(v->value, &y) == 0;
                        diags_at(d, v, "%s must be %s, not %s%s", subject,
                                 type_expectation(in->type), node_kind_name(v),
                                 quoted_int ? " (write the number without quotes)" : "");
                        return false;
                }
                long long lo = in->type == INPUT_PORT ? 1 : LLONG_MIN;
                long long hi = in->type == INPUT_PORT ? 65535 : LLONG_MAX;
                if (in->has_min && in->min > lo)
                        lo = in->min;
                if (in->has_max && in->max < hi)
                        hi = in->max;
                if (x < lo || x > hi) {
                        _cleanup_free_ char *shown =
                                sens ? xstrdup("") : strprintf(", not %lld", x);
                        if (lo != LLONG_MIN && hi != LLONG_MAX)
                                diags_at(d, v, "%s must be between %lld and %lld%s", subject, lo,
                                         hi, shown);
                        else if (lo != LLONG_MIN)
                                diags_at(d, v, "%s must be at least %lld%s", subject, lo, shown);
                        else
                                diags_at(d, v, "%s must be at most %lld%s", subject, hi, shown);
                        ok = false;
                }
                canon = strprintf("%lld", x);
        } else if (in->type == INPUT_BOOLEAN) {
                bool b;
                if (node_as_bool(v, &b) < 0) {
                        diags_at(d, v, "%s must be true or false, not %s", subject,
                                 node_kind_name(v));
                        return false;
                }
                canon = xstrdup(b ? "true" : "false");
        } else {
                if (node_is_null(v)) {
                        diags_at(d, v, "%s has no value (write \"\" for an empty string)", subject);
                        return false;
                }
                canon = xstrdup(v->value);
        }
        if (!canon)
                abort();
        q = quote_for_message(canon);

        if (in->type == INPUT_EMAIL && !email_is_valid(canon)) {
                if (sens)
                        diags_at(d, v, "%s is not an email address like name@example.com", subject);
                else
                        diags_at(d, v, "%s must be an email address like name@example.com, not %s",
                                 subject, q);
                ok = false;
        }
        if (is_text_type(in->type)) {
                long long len = (long long)utf8_length(canon);
                _cleanup_free_ char *has = sens ? xstrdup("") : strprintf(" (it has %lld)", len);
                if ((in->min_length >= 0 && len < in->min_length) ||
                    (in->max_length >= 0 && len > in->max_length)) {
                        if (in->min_length >= 0 && in->max_length >= 0)
                                diags_at(d, v, "%s must be between %lld and %lld characters long%s",
                                         subject, in->min_length, in->max_length, has);
                        else if (in->min_length >= 0)
                                diags_at(d, v, "%s must be at least %lld characters long%s",
                                         subject, in->min_length, has);
                        else
                                diags_at(d, v, "%s must be at most %lld characters long%s", subject,
                                         in->max_length, has);
                        ok = false;
                }
                int m = in->regex ? regex_match(in->regex, canon, strlen(canon)) : 1;
                if (m == -ENOMEM)
                        abort();
                if (m == -E2BIG) {
                        diags_at(d, v,
                                 "%s could not be checked against the pattern %s: matching "
                                 "took more than %d steps (the pattern backtracks too much)",
                                 subject, in->pattern, REGEX_MATCH_LIMIT);
                        ok = false;
                } else if (m < 0) {
                        diags_at(d, v, "%s could not be checked against the pattern %s: %s",
                                 subject, in->pattern,
                                 m == -EILSEQ ? "it is not valid UTF-8" : strerror(-m));
                        ok = false;
                } else if (m == 0) {
                        if (sens)
                                diags_at(d, v, "%s does not match the pattern %s", subject,
                                         in->pattern);
                        else
                                diags_at(d, v, "%s must match the pattern %s, not %s", subject,
                                         in->pattern, q);
                        ok = false;
                }
        }
        if (in->allowed_values && !strv_contains(in->allowed_values, canon)) {
                _cleanup_free_ char *list = join(in->allowed_values, ", ");
                if (sens)
                        diags_at(d, v, "%s is not one of the allowed values", subject);
                else
                        diags_at(d, v, "%s must be one of: %s; not %s", subject, list, q);
                ok = false;
        }
        if (!ok)
                return false;
        *ret = TAKE_PTR(canon);
        return true;
}

/* Field readers for the manifest: each reports at the value, prefixed by
 * ctx ("" or "input 'x': "). Absent and null fields leave *ret alone. */
static void get_string(struct diags *d, const struct node *map, const char *key, const char *ctx,
                       char **ret)
{
        const struct node *n = node_get(map, key);

        if (!n || node_is_null(n))
                return;
        if (n->kind != NODE_SCALAR || node_resolve(n) == SCALAR_BOOL) {
                diags_at(d, n, "%s'%s' must be a string, not %s", ctx, key, node_kind_name(n));
                return;
        }
        free(*ret);
        *ret = xstrdup(n->value);
}

static void get_bool(struct diags *d, const struct node *map, const char *key, const char *ctx,
                     bool *ret)
{
        const struct node *n = node_get(map, key);

        if (!n || node_is_null(n))
                return;
        if (node_as_bool(n, ret) < 0)
                diags_at(d, n, "%s'%s' must be true or false, not %s", ctx, key, node_kind_name(n));
}

/* Returns whether the field was given and valid. */
static bool get_int(struct diags *d, const struct node *map, const char *key, const char *ctx,
                    long long lo, long long hi, long long *ret)
{
        const struct node *n = node_get(map, key);
        long long x;

        if (!n || node_is_null(n))
                return false;
        if (node_as_int(n, &x) < 0) {
                diags_at(d, n, "%s'%s' must be an integer, not %s", ctx, key, node_kind_name(n));
                return false;
        }
        if (x < lo || x > hi) {
                if (hi == LLONG_MAX)
                        diags_at(d, n, "%s'%s' must be at least %lld, not %lld", ctx, key, lo, x);
                else
                        diags_at(d, n, "%s'%s' must be between %lld and %lld, not %lld", ctx, key,
                                 lo, hi, x);
                return false;
        }
        *ret = x;
        return true;
}

static bool expect_map(struct diags *d, const struct node *n, const char *ctx)
{
        if (n->kind == NODE_MAP)
                return true;
        diags_at(d, n, "%s'%s' must be a mapping, not %s", ctx, n->key, node_kind_name(n));
        return false;
}

static void required_key(struct diags *d, const struct node *map, const char *key, const char *ctx)
{
        const struct node *n = node_get(map, key);

        if (!n || node_is_null(n))
                diags_at(d, map, "%smissing required key '%s'", ctx, key);
        else if (n->kind == NODE_SCALAR && !*n->value)
                diags_at(d, n, "%s'%s' must not be empty", ctx, key);
}

static bool version_is_valid(const char *s)
{
        bool digit = false;

        for (const char *p = s; *p; p++) {
                if (*p >= '0' && *p <= '9')
                        digit = true;
                else if (*p == '.' && digit)
                        digit = false;
                else
                        return false;
        }
        return digit;
}

static void parse_id_list(struct diags *d, const struct node *map, const char *key,
                          const char *self, char ***ret)
{
        const struct node *n = node_get(map, key);

        if (!n || node_is_null(n))
                return;
        if (n->kind != NODE_SEQ) {
                if (n->kind == NODE_SCALAR)
                        diags_at(d, n, "'%s' must be a sequence of module ids, not %s (write [%s])",
                                 key, node_kind_name(n), n->value);
                else
                        diags_at(d, n, "'%s' must be a sequence of module ids, not %s", key,
                                 node_kind_name(n));
                return;
        }
        for (size_t i = 0; i < n->n_items; i++) {
                const struct node *e = n->items[i];
                if (e->kind != NODE_SCALAR || node_is_null(e)) {
                        diags_at(d, e, "'%s' must list module ids, not %s", key, node_kind_name(e));
                        continue;
                }
                if (!manifest_id_is_valid(e->value)) {
                        _cleanup_free_ char *q = quote_for_message(e->value);
                        diags_at(d, e, "'%s' lists %s, which is not a valid module id", key, q);
                        continue;
                }
                if (self && streq(e->value, self)) {
                        diags_at(d, e, "module '%s' cannot be in its own '%s'", self, key);
                        continue;
                }
                if (strv_contains(*ret, e->value)) {
                        diags_at(d, e, "'%s' lists '%s' twice", key, e->value);
                        continue;
                }
                strv_add(ret, e->value);
        }
}

/* watches: absolute paths without "." or ".." components (the bundle's
 * files: paths), each once. A bundle need not ship them all (a stack
 * module watches what any site may render for it): one it does not ship
 * is left out of the digest (firstboot/digest.c). */
static void parse_watches(struct diags *d, struct manifest *m, const struct node *n)
{
        if (n->kind != NODE_SEQ) {
                diags_at(d, n, "'watches' must be a sequence of absolute paths, not %s",
                         node_kind_name(n));
                return;
        }
        m->watches = xcalloc(n->n_items + 1, sizeof(*m->watches));
        for (size_t i = 0; i < n->n_items; i++) {
                const struct node *e = n->items[i];
                if (e->kind != NODE_SCALAR || node_is_null(e)) {
                        diags_at(d, e, "'watches' must list absolute paths, not %s",
                                 node_kind_name(e));
                        continue;
                }
                bool ctl = false;
                for (const char *c = e->value; *c && !ctl; c++)
                        ctl = (unsigned char)*c < 0x20 || *c == 0x7f;
                if (e->value[0] != '/' || !path_is_safe_relative(e->value + 1) || ctl) {
                        _cleanup_free_ char *q = quote_for_message(e->value);
                        diags_at(d, e,
                                 "'watches' lists %s, which is not an absolute path without '.' "
                                 "or '..' components",
                                 q);
                        continue;
                }
                bool twice = false;
                for (size_t j = 0; j < m->n_watches && !twice; j++)
                        twice = streq(m->watches[j].path, e->value);
                if (twice) {
                        diags_at(d, e, "'watches' lists '%s' twice", e->value);
                        continue;
                }
                m->watches[m->n_watches++] = (struct manifest_watch){
                        .path = xstrdup(e->value),
                        .file = strdup_null(e->file),
                        .line = e->line,
                        .column = e->column,
                };
        }
}

/* An os-release(5) ID: 0-9, a-z, ".", "_" and "-"; upper case is
 * accepted too, since families match without regard to case. */
static bool os_id_is_valid(const char *s)
{
        if (!*s || strlen(s) > MANIFEST_ID_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if (!is_lower_alnum(*p) && !(*p >= 'A' && *p <= 'Z') && !strchr("._-", *p))
                        return false;
        return true;
}

static struct manifest_os *find_os(struct manifest *m, const char *family)
{
        for (size_t i = 0; i < m->n_os; i++)
                if (strcasecmp(m->os[i].family, family) == 0)
                        return &m->os[i];
        return NULL;
}

char *manifest_os_describe(const struct manifest_os *os, size_t n)
{
        struct buf b = {0};

        for (size_t i = 0; i < n; i++) {
                buf_printf(&b, "%s%s", i ? " or " : "", os[i].family);
                if (os[i].min_version)
                        buf_printf(&b, " >= %s", os[i].min_version);
        }
        buf_puts(&b, "");
        if (!b.data)
                abort();
        return buf_steal(&b);
}

/* A version for a min_version: a string or number like 12 or 22.04. */
static const char *os_version(struct diags *d, const struct node *v)
{
        if (v->kind != NODE_SCALAR || node_is_null(v) || node_resolve(v) == SCALAR_BOOL) {
                diags_at(d, v,
                         "os_requirements: a 'min_version' must be a version like \"12\" or "
                         "\"22.04\", not %s",
                         node_kind_name(v));
                return NULL;
        }
        if (!version_is_valid(v->value)) {
                _cleanup_free_ char *q = quote_for_message(v->value);
                diags_at(d, v,
                         "os_requirements: a 'min_version' must be a version like \"12\" or "
                         "\"22.04\", not %s",
                         q);
                return NULL;
        }
        return v->value;
}

/* os_requirements: family is one os-release ID or a list of them (the
 * system must be one); min_version is one version, the first family's, or
 * a mapping from families to versions. */
static void parse_os_requirements(struct diags *d, struct manifest *m, const struct node *n)
{
        const struct node *fam = node_get(n, "family"), *min = node_get(n, "min_version");
        size_t before = d->n;

        diags_check_keys(d, n, "os_requirements", os_keys);
        if (fam && !node_is_null(fam)) {
                bool one = fam->kind == NODE_SCALAR && node_resolve(fam) != SCALAR_BOOL;
                if (!one && (fam->kind != NODE_SEQ || fam->n_items == 0)) {
                        diags_at(d, fam,
                                 "os_requirements: 'family' must be an os-release ID like debian "
                                 "or a list of them like [ubuntu, debian], not %s",
                                 fam->kind == NODE_SEQ ? "an empty list" : node_kind_name(fam));
                        return;
                }
                size_t k = one ? 1 : fam->n_items;
                m->os = xcalloc(k, sizeof(*m->os));
                for (size_t i = 0; i < k; i++) {
                        const struct node *e = one ? fam : fam->items[i];
                        if (e->kind != NODE_SCALAR || node_is_null(e) ||
                            node_resolve(e) == SCALAR_BOOL) {
                                diags_at(d, e,
                                         "os_requirements: 'family' must list os-release IDs, "
                                         "not %s",
                                         node_kind_name(e));
                                continue;
                        }
                        if (!os_id_is_valid(e->value)) {
                                _cleanup_free_ char *q = quote_for_message(e->value);
                                diags_at(d, e,
                                         "os_requirements: 'family' lists %s, which is not an "
                                         "os-release ID (letters, digits, '.', '_' and '-', like "
                                         "debian)",
                                         q);
                                continue;
                        }
                        if (find_os(m, e->value)) {
                                diags_at(d, e, "os_requirements: 'family' lists '%s' twice",
                                         e->value);
                                continue;
                        }
                        m->os[m->n_os++].family = xstrdup(e->value);
                }
        }
        if (!min || node_is_null(min) || d->n > before)
                return;
        if (m->n_os == 0) {
                diags_at(d, n, "os_requirements: 'min_version' needs a 'family'");
                return;
        }
        if (min->kind != NODE_MAP) {
                const char *v = min->kind == NODE_SEQ ? NULL : os_version(d, min);
                if (min->kind == NODE_SEQ)
                        diags_at(d, min,
                                 "os_requirements: 'min_version' must be a version or a mapping "
                                 "of families to versions like {ubuntu: \"20.04\", debian: "
                                 "\"11\"}, not a sequence");
                if (!v)
                        return;
                m->os[0].min_version = xstrdup(v);
                m->os_min_first_only = m->n_os > 1;
                return;
        }
        for (size_t i = 0; i < min->n_items; i++) {
                const struct node *e = min->items[i];
                struct manifest_os *o = find_os(m, e->key);
                if (!o) {
                        _cleanup_free_ char *fams = manifest_os_describe(m->os, m->n_os);
                        diags_at_key(d, e,
                                     "os_requirements: 'min_version' names '%s', which is not "
                                     "in 'family' (%s)",
                                     e->key, fams);
                        continue;
                }
                if (o->min_version) {
                        diags_at_key(d, e, "os_requirements: 'min_version' names '%s' twice",
                                     e->key);
                        continue;
                }
                const char *v = os_version(d, e);
                if (v)
                        o->min_version = xstrdup(v);
        }
}

/* A list of scalars: one scalar or a non-empty sequence of them, as
 * canonical text or as written (for text inputs, where "007" is not 7). */
static bool scalar_list(struct diags *d, const struct node *n, const char *what, bool allow_one,
                        bool canonical, char ***ret)
{
        _cleanup_strv_free_ char **v = NULL;
        bool ok = true;

        if (n->kind == NODE_SCALAR && allow_one && !node_is_null(n)) {
                if (strv_push(&v, canonical ? canonical_scalar(n) : xstrdup(n->value)) < 0)
                        abort();
                *ret = TAKE_PTR(v);
                return true;
        }
        if (n->kind != NODE_SEQ || n->n_items == 0) {
                diags_at(d, n, "%s must be a non-empty sequence of values, not %s", what,
                         n->kind == NODE_SEQ ? "an empty one" : node_kind_name(n));
                return false;
        }
        for (size_t i = 0; i < n->n_items; i++) {
                const struct node *e = n->items[i];
                if (e->kind != NODE_SCALAR || node_is_null(e)) {
                        diags_at(d, e, "%s must be plain values, not %s", what, node_kind_name(e));
                        ok = false;
                        continue;
                }
                if (strv_push(&v, canonical ? canonical_scalar(e) : xstrdup(e->value)) < 0)
                        abort();
        }
        if (!ok)
                return false;
        *ret = TAKE_PTR(v);
        return true;
}

static void parse_validation(struct diags *d, struct manifest_input *in, bool type_ok,
                             const struct node *val, const char *what, const char *ctx)
{
        _cleanup_free_ char *where = strprintf("the validation of %s", what);
        static const char *const text_only[] = {"pattern", "min_length", "max_length", NULL};
        static const char *const int_only[] = {"min", "max", NULL};
        size_t before = d->n;

        if (!expect_map(d, val, ctx))
                return;
        diags_check_keys(d, val, where, validation_keys);

        if (type_ok) {
                for (size_t i = 0; text_only[i]; i++) {
                        const struct node *n = node_get(val, text_only[i]);
                        if (n && !is_text_type(in->type))
                                diags_at_key(d, n, "%s'%s' does not apply to inputs of type %s%s",
                                             ctx, text_only[i], type_names[in->type],
                                             is_int_type(in->type) && i > 0 ? " (use min and max)"
                                                                            : "");
                }
                for (size_t i = 0; int_only[i]; i++) {
                        const struct node *n = node_get(val, int_only[i]);
                        if (n && !is_int_type(in->type))
                                diags_at_key(d, n, "%s'%s' does not apply to inputs of type %s%s",
                                             ctx, int_only[i], type_names[in->type],
                                             is_text_type(in->type) ? (i ? " (use max_length)"
                                                                         : " (use min_length)")
                                                                    : "");
                }
                const struct node *n = node_get(val, "allowed_values");
                if (n && in->type == INPUT_BOOLEAN)
                        diags_at_key(d, n,
                                     "%s'allowed_values' does not apply to inputs of type boolean",
                                     ctx);
        }
        if (d->n > before)
                return;

        const struct node *p = node_get(val, "pattern");
        get_string(d, val, "pattern", ctx, &in->pattern);
        if (in->pattern)
                pattern_compile(d, p, ctx, in->pattern, &in->regex);
        get_int(d, val, "min_length", ctx, 0, LLONG_MAX, &in->min_length);
        get_int(d, val, "max_length", ctx, 0, LLONG_MAX, &in->max_length);
        if (in->min_length >= 0 && in->max_length >= 0 && in->min_length > in->max_length)
                diags_at(d, node_get(val, "min_length"),
                         "%s'min_length' (%lld) is greater than 'max_length' (%lld)", ctx,
                         in->min_length, in->max_length);
        in->has_min = get_int(d, val, "min", ctx, LLONG_MIN, LLONG_MAX, &in->min);
        in->has_max = get_int(d, val, "max", ctx, LLONG_MIN, LLONG_MAX, &in->max);
        if (in->has_min && in->has_max && in->min > in->max)
                diags_at(d, node_get(val, "min"), "%s'min' (%lld) is greater than 'max' (%lld)",
                         ctx, in->min, in->max);

        const struct node *av = node_get(val, "allowed_values");
        if (av && !node_is_null(av)) {
                _cleanup_free_ char *w = strprintf("%s'allowed_values'", ctx);
                if (scalar_list(d, av, w, false, !is_text_type(in->type), &in->allowed_values) &&
                    is_int_type(in->type))
                        for (size_t i = 0; i < av->n_items; i++) {
                                long long x;
                                if (node_as_int(av->items[i], &x) < 0)
                                        diags_at(d, av->items[i],
                                                 "%s'allowed_values' of %s input must be "
                                                 "integers, not %s",
                                                 ctx, type_names[in->type],
                                                 node_kind_name(av->items[i]));
                        }
        }
}

/* Parses inputs[idx] into in; its visible_if is checked later, when every
 * name is known. */
static void parse_input(struct diags *d, struct manifest_input *in, const struct node *n,
                        size_t idx)
{
        _cleanup_free_ char *what = NULL, *ctx = NULL;
        const struct node *name = node_get(n, "name");
        size_t before;
        bool type_ok = false;

        in->min_length = in->max_length = -1;
        if (n->kind != NODE_MAP) {
                diags_at(d, n, "input #%zu must be a mapping, not %s", idx + 1, node_kind_name(n));
                return;
        }
        if (name && name->kind == NODE_SCALAR && !node_is_null(name)) {
                if (!input_name_is_valid(name->value)) {
                        _cleanup_free_ char *q = quote_for_message(name->value);
                        diags_at(d, name,
                                 "input name %s must be lower-case letters, digits and '_', "
                                 "starting with a letter (at most %d characters)",
                                 q, MANIFEST_ID_MAX);
                } else {
                        in->name = xstrdup(name->value);
                        in->env_name = env_name_of(in->name);
                        if (env_is_reserved(in->env_name))
                                diags_at(d, name,
                                         "input name '%s' is reserved: it would replace the "
                                         "environment variable %s of install.sh",
                                         in->name, in->env_name);
                }
        } else if (name && !node_is_null(name)) {
                diags_at(d, name, "input #%zu: 'name' must be a string, not %s", idx + 1,
                         node_kind_name(name));
        }
        what = in->name ? strprintf("input '%s'", in->name) : strprintf("input #%zu", idx + 1);
        ctx = strprintf("%s: ", what);
        if (!name || node_is_null(name))
                required_key(d, n, "name", ctx);
        diags_check_keys(d, n, what, input_keys);

        const struct node *t = node_get(n, "type");
        if (!t || node_is_null(t))
                diags_at(d, n,
                         "%smissing required key 'type' (one of: string, integer, boolean, "
                         "password, select, email, port)",
                         ctx);
        else if (t->kind != NODE_SCALAR || input_type_from_string(t->value, &in->type) < 0) {
                _cleanup_free_ char *q =
                        t->kind == NODE_SCALAR ? quote_for_message(t->value) : NULL;
                diags_at(d, t,
                         "%s'type' must be one of: string, integer, boolean, password, select, "
                         "email, port; not %s",
                         ctx, q ? q : node_kind_name(t));
        } else
                type_ok = true;

        get_string(d, n, "label", ctx, &in->label);
        get_string(d, n, "description", ctx, &in->description);
        get_bool(d, n, "required", ctx, &in->required);
        get_bool(d, n, "sensitive", ctx, &in->sensitive);
        if (type_ok && in->type == INPUT_PASSWORD)
                in->sensitive = true;

        before = d->n;
        const struct node *val = node_get(n, "validation");
        if (val && !node_is_null(val))
                parse_validation(d, in, type_ok, val, what, ctx);
        if (type_ok && in->type == INPUT_SELECT && !in->allowed_values && d->n == before)
                diags_at(d, val && !node_is_null(val) ? val : n,
                         "%sa select input needs validation.allowed_values", ctx);

        const struct node *def = node_get(n, "default");
        if (def && !node_is_null(def) && type_ok && d->n == before) {
                _cleanup_free_ char *subject = strprintf("the default of %s", what);
                check_value(in, def, subject, d, &in->default_value);
        }
}

/* Checks visible_if of input i (node vis) now that every name is known. */
static void parse_visible_if(struct diags *d, struct manifest *m, size_t i, const struct node *vis)
{
        struct manifest_input *in = &m->inputs[i];
        _cleanup_free_ char *ctx = strprintf("input '%s': ", in->name ? in->name : "?");

        if (vis->kind != NODE_MAP) {
                diags_at(d, vis,
                         "%s'visible_if' must be a mapping of input names to values, not %s", ctx,
                         node_kind_name(vis));
                return;
        }
        in->visible_if = xcalloc(vis->n_items ? vis->n_items : 1, sizeof(*in->visible_if));
        for (size_t k = 0; k < vis->n_items; k++) {
                const struct node *c = vis->items[k];
                const struct manifest_input *other = manifest_find_input(m, c->key);
                _cleanup_strv_free_ char **values = NULL;

                if (!other) {
                        _cleanup_free_ char *known = input_names(m);
                        diags_at_key(d, c,
                                     "%s'visible_if' refers to unknown input '%s' (known inputs: "
                                     "%s)",
                                     ctx, c->key, known);
                        continue;
                }
                if (other == in) {
                        diags_at_key(d, c, "%s'visible_if' refers to the input itself", ctx);
                        continue;
                }
                _cleanup_free_ char *w = strprintf("%s'visible_if.%s'", ctx, c->key);
                if (!scalar_list(d, c, w, true, !is_text_type(other->type), &values))
                        continue;
                bool ok = true;
                for (size_t j = 0; values[j] && ok; j++) {
                        _cleanup_free_ char *q = quote_for_message(values[j]);
                        long long x;
                        if (other->type == INPUT_BOOLEAN && !streq(values[j], "true") &&
                            !streq(values[j], "false")) {
                                diags_at(d, c->kind == NODE_SEQ ? c->items[j] : c,
                                         "%s'%s' is a boolean input: 'visible_if.%s' must be true "
                                         "or false, not %s",
                                         ctx, c->key, c->key, q);
                                ok = false;
                        } else if (is_int_type(other->type) && parse_llong(values[j], &x) < 0) {
                                diags_at(d, c->kind == NODE_SEQ ? c->items[j] : c,
                                         "%s'%s' is %s input: 'visible_if.%s' must be an integer, "
                                         "not %s",
                                         ctx, c->key,
                                         other->type == INPUT_PORT ? "a port" : "an integer",
                                         c->key, q);
                                ok = false;
                        } else if (other->allowed_values &&
                                   !strv_contains(other->allowed_values, values[j])) {
                                _cleanup_free_ char *list = join(other->allowed_values, ", ");
                                diags_at(d, c->kind == NODE_SEQ ? c->items[j] : c,
                                         "%s'%s' is never %s (it is one of: %s)", ctx, c->key, q,
                                         list);
                                ok = false;
                        }
                }
                if (!ok)
                        continue;
                in->visible_if[in->n_visible_if++] = (struct manifest_condition){
                        .name = xstrdup(c->key),
                        .input = (size_t)(other - m->inputs),
                        .values = TAKE_PTR(values),
                };
        }
}

enum {
        WHITE,
        GREY,
        BLACK
};

static void find_visible_cycles(struct diags *d, const struct manifest *m, size_t i, int *color,
                                size_t *stack, size_t depth, const struct node *const *vis)
{
        color[i] = GREY;
        stack[depth] = i;
        for (size_t k = 0; k < m->inputs[i].n_visible_if; k++) {
                size_t j = m->inputs[i].visible_if[k].input;
                if (color[j] == WHITE) {
                        find_visible_cycles(d, m, j, color, stack, depth + 1, vis);
                } else if (color[j] == GREY) {
                        struct buf b = {0};
                        size_t s = 0;
                        while (stack[s] != j)
                                s++;
                        for (; s <= depth; s++)
                                buf_printf(&b, "%s -> ", m->inputs[stack[s]].name);
                        buf_puts(&b, m->inputs[j].name);
                        if (!b.data)
                                abort();
                        diags_at(d, vis[j], "'visible_if' cycle: %s", b.data);
                        buf_free(&b);
                }
        }
        color[i] = BLACK;
}

static void input_free(struct manifest_input *in)
{
        free(in->name);
        free(in->env_name);
        free(in->label);
        free(in->description);
        free(in->default_value);
        free(in->pattern);
        regex_free(in->regex);
        strv_free(in->allowed_values);
        for (size_t i = 0; i < in->n_visible_if; i++) {
                free(in->visible_if[i].name);
                strv_free(in->visible_if[i].values);
        }
        free(in->visible_if);
}

void manifest_free(struct manifest *m)
{
        if (!m)
                return;
        free(m->id);
        free(m->name);
        free(m->version);
        free(m->description);
        free(m->category);
        free(m->author);
        for (size_t i = 0; i < m->n_os; i++) {
                free(m->os[i].family);
                free(m->os[i].min_version);
        }
        free(m->os);
        for (size_t i = 0; i < m->n_inputs; i++)
                input_free(&m->inputs[i]);
        free(m->inputs);
        free(m->install_script);
        strv_free(m->after);
        strv_free(m->requires);
        strv_free(m->reprovision);
        for (size_t i = 0; i < m->n_watches; i++) {
                free(m->watches[i].path);
                free(m->watches[i].file);
        }
        free(m->watches);
        free(m);
}

/* reprovision: the names of this manifest's inputs the module cannot
 * change in place, each once. */
static void parse_reprovision(struct diags *d, struct manifest *m, const struct node *n)
{
        if (n->kind != NODE_SEQ) {
                diags_at(d, n, "'reprovision' must be a sequence of input names, not %s",
                         node_kind_name(n));
                return;
        }
        for (size_t i = 0; i < n->n_items; i++) {
                const struct node *e = n->items[i];
                if (e->kind != NODE_SCALAR || node_is_null(e)) {
                        diags_at(d, e, "'reprovision' must list input names, not %s",
                                 node_kind_name(e));
                        continue;
                }
                bool known = false;
                for (size_t j = 0; j < m->n_inputs && !known; j++)
                        known = streq_ptr(m->inputs[j].name, e->value);
                if (!known) {
                        _cleanup_free_ char *q = quote_for_message(e->value);
                        diags_at(d, e,
                                 "'reprovision' lists %s, which is not an input of this module", q);
                        continue;
                }
                if (strv_contains(m->reprovision, e->value)) {
                        diags_at(d, e, "'reprovision' lists '%s' twice", e->value);
                        continue;
                }
                strv_add(&m->reprovision, e->value);
        }
}

static void parse_inputs(struct diags *d, struct manifest *m, const struct node *inputs)
{
        if (inputs->kind != NODE_SEQ) {
                diags_at(d, inputs, "'inputs' must be a sequence of inputs, not %s",
                         node_kind_name(inputs));
                return;
        }
        m->inputs = xcalloc(inputs->n_items ? inputs->n_items : 1, sizeof(*m->inputs));
        m->n_inputs = inputs->n_items;
        for (size_t i = 0; i < inputs->n_items; i++)
                parse_input(d, &m->inputs[i], inputs->items[i], i);

        for (size_t i = 0; i < m->n_inputs; i++)
                for (size_t j = 0; j < i && m->inputs[i].name; j++)
                        if (m->inputs[j].name && streq(m->inputs[i].name, m->inputs[j].name)) {
                                diags_at(d, node_get(inputs->items[i], "name"),
                                         "duplicate input '%s' (first at line %u)",
                                         m->inputs[i].name,
                                         node_get(inputs->items[j], "name")->line);
                                break;
                        }

        _cleanup_free_ const struct node **vis = xcalloc(m->n_inputs + 1, sizeof(*vis));
        for (size_t i = 0; i < m->n_inputs; i++) {
                vis[i] = node_get(inputs->items[i], "visible_if");
                if (vis[i] && !node_is_null(vis[i]) && m->inputs[i].name)
                        parse_visible_if(d, m, i, vis[i]);
        }
        _cleanup_free_ int *color = xcalloc(m->n_inputs + 1, sizeof(int));
        _cleanup_free_ size_t *stack = xcalloc(m->n_inputs + 1, sizeof(size_t));
        for (size_t i = 0; i < m->n_inputs; i++)
                if (color[i] == WHITE)
                        find_visible_cycles(d, m, i, color, stack, 0, vis);
}

int manifest_parse(const struct node *doc, struct manifest **ret, struct diags *d)
{
        struct manifest *m;
        size_t before = d->n;
        const struct node *n;

        if (doc->kind != NODE_MAP) {
                diags_at(d, doc, "a module manifest must be a mapping, not %s",
                         node_kind_name(doc));
                return -EBADMSG;
        }
        m = xcalloc(1, sizeof(*m));
        m->timeout_seconds = MANIFEST_DEFAULT_TIMEOUT;
        m->frequency = FREQ_PER_INSTANCE;

        diags_check_keys(d, doc, "the manifest", (const char *const *)manifest_keys);
        required_key(d, doc, "id", "");
        required_key(d, doc, "name", "");
        required_key(d, doc, "version", "");

        n = node_get(doc, "id");
        if (n && n->kind == NODE_SCALAR && !node_is_null(n) && !manifest_id_is_valid(n->value)) {
                _cleanup_free_ char *q = quote_for_message(n->value);
                diags_at(d, n,
                         "'id' must be lower-case letters, digits, '-' and '_', starting with a "
                         "letter or digit (at most %d characters), not %s",
                         MANIFEST_ID_MAX, q);
        } else
                get_string(d, doc, "id", "", &m->id);
        get_string(d, doc, "name", "", &m->name);
        get_string(d, doc, "version", "", &m->version);
        get_string(d, doc, "description", "", &m->description);
        get_string(d, doc, "category", "", &m->category);
        get_string(d, doc, "author", "", &m->author);

        n = node_get(doc, "os_requirements");
        if (n && !node_is_null(n) && expect_map(d, n, ""))
                parse_os_requirements(d, m, n);

        n = node_get(doc, "resource_requirements");
        if (n && !node_is_null(n) && expect_map(d, n, "")) {
                diags_check_keys(d, n, "resource_requirements", resource_keys);
                get_int(d, n, "min_ram_mb", "resource_requirements: ", 0, MAX_REQUIREMENT_MB,
                        &m->min_ram_mb);
                get_int(d, n, "min_disk_mb", "resource_requirements: ", 0, MAX_REQUIREMENT_MB,
                        &m->min_disk_mb);
        }

        n = node_get(doc, "inputs");
        if (n && !node_is_null(n))
                parse_inputs(d, m, n);

        get_string(d, doc, "install_script", "", &m->install_script);
        if (m->install_script && !path_is_safe_relative(m->install_script)) {
                _cleanup_free_ char *q = quote_for_message(m->install_script);
                diags_at(d, node_get(doc, "install_script"),
                         "'install_script' must be a relative path inside the module directory, "
                         "not %s",
                         q);
        }
        if (!m->install_script)
                m->install_script = xstrdup("install.sh");
        get_int(d, doc, "timeout_seconds", "", 1, MANIFEST_MAX_TIMEOUT, &m->timeout_seconds);
        get_bool(d, doc, "idempotent", "", &m->idempotent);
        parse_id_list(d, doc, "after", m->id, &m->after);
        parse_id_list(d, doc, "requires", m->id, &m->requires);
        n = node_get(doc, "watches");
        if (n && !node_is_null(n))
                parse_watches(d, m, n);
        n = node_get(doc, "reprovision");
        if (n && !node_is_null(n))
                parse_reprovision(d, m, n);

        n = node_get(doc, "frequency");
        if (n && !node_is_null(n) &&
            (n->kind != NODE_SCALAR || frequency_from_string(n->value, &m->frequency) < 0)) {
                _cleanup_free_ char *q =
                        n->kind == NODE_SCALAR ? quote_for_message(n->value) : NULL;
                diags_at(d, n,
                         "'frequency' must be one of: once-per-instance, always, once; not %s",
                         q ? q : node_kind_name(n));
        }

        if (d->n > before) {
                manifest_free(m);
                return -EBADMSG;
        }
        *ret = m;
        return 0;
}

int manifest_load(const char *path, struct manifest **ret, struct diags *d)
{
        _cleanup_node_ struct node *doc = NULL;
        int r;

        r = yaml_parse_file(path, 0, &doc, d);
        if (r < 0)
                return r;
        return manifest_parse(doc, ret, d);
}

/* Resolution of given inputs. */

enum {
        VAL_NONE,
        VAL_SET,
        VAL_BAD
};
enum {
        VIS_PENDING,
        VIS_COMPUTING,
        VIS_YES,
        VIS_NO,
        VIS_UNKNOWN
};

struct slot {
        int state;
        int vis;
        char *value;
        const struct node *given;
};

/* Whether input i is visible: every condition's input visible, with a
 * value among the condition's. Unknown when that depends on a value that
 * was given but is invalid (already reported). */
static int visibility(const struct manifest *m, struct slot *s, size_t i)
{
        bool unknown = false;

        if (s[i].vis == VIS_COMPUTING)
                return VIS_NO; /* a cycle; manifest_parse() refuses those */
        if (s[i].vis != VIS_PENDING)
                return s[i].vis;
        s[i].vis = VIS_COMPUTING;
        for (size_t k = 0; k < m->inputs[i].n_visible_if; k++) {
                const struct manifest_condition *c = &m->inputs[i].visible_if[k];
                int v = visibility(m, s, c->input);
                if (v == VIS_NO || (v == VIS_YES && s[c->input].state == VAL_NONE) ||
                    (v == VIS_YES && s[c->input].state == VAL_SET &&
                     !strv_contains(c->values, s[c->input].value))) {
                        s[i].vis = VIS_NO;
                        return VIS_NO;
                }
                if (v == VIS_UNKNOWN || s[c->input].state == VAL_BAD)
                        unknown = true;
        }
        s[i].vis = unknown ? VIS_UNKNOWN : VIS_YES;
        return s[i].vis;
}

/* "auth_mode is keycloak or ldap and tls is true", and what they are now. */
static char *describe_condition(const struct manifest *m, const struct slot *s,
                                const struct manifest_input *in)
{
        struct buf b = {0};

        for (size_t k = 0; k < in->n_visible_if; k++) {
                const struct manifest_condition *c = &in->visible_if[k];
                _cleanup_free_ char *vals = join(c->values, " or ");
                buf_printf(&b, "%s%s is %s", k ? " and " : "", c->name, vals);
        }
        bool first = true;
        for (size_t k = 0; k < in->n_visible_if; k++) {
                const struct manifest_condition *c = &in->visible_if[k];
                const struct slot *o = &s[c->input];
                if (m->inputs[c->input].sensitive)
                        continue;
                if (o->vis == VIS_YES && o->state == VAL_SET && strv_contains(c->values, o->value))
                        continue;
                buf_printf(&b, "%s%s ", first ? " (here " : ", ", c->name);
                if (o->vis == VIS_YES && o->state == VAL_SET)
                        buf_printf(&b, "is %s", o->value);
                else
                        buf_puts(&b, "is not set");
                first = false;
        }
        if (!first)
                buf_puts(&b, ")");
        buf_puts(&b, "");
        if (!b.data)
                abort();
        return buf_steal(&b);
}

int manifest_resolve_inputs(const struct manifest *m, const struct node *given,
                            const struct node *where, struct diags *d, struct input_values *ret)
{
        _cleanup_free_ struct slot *s = xcalloc(m->n_inputs + 1, sizeof(*s));
        struct input_values out = {0};
        size_t before = d->n;

        if (given && node_is_null(given))
                given = NULL;
        if (given && given->kind != NODE_MAP) {
                diags_at(d, given,
                         "module %s: 'inputs' must be a mapping of input names to "
                         "values, not %s",
                         m->id, node_kind_name(given));
                return -EBADMSG;
        }
        for (size_t i = 0; given && i < given->n_items; i++) {
                const struct node *g = given->items[i];
                const struct manifest_input *in = manifest_find_input(m, g->key);
                if (!in) {
                        _cleanup_free_ char *known = input_names(m);
                        if (m->n_inputs)
                                diags_at_key(d, g,
                                             "module %s: unknown input '%s' (known inputs: %s)",
                                             m->id, g->key, known);
                        else
                                diags_at_key(d, g,
                                             "module %s: unknown input '%s' (the module has "
                                             "no inputs)",
                                             m->id, g->key);
                        continue;
                }
                s[in - m->inputs].given = g;
        }

        for (size_t i = 0; i < m->n_inputs; i++) {
                const struct manifest_input *in = &m->inputs[i];
                if (s[i].given) {
                        _cleanup_free_ char *subject =
                                strprintf("module %s: input '%s'", m->id, in->name);
                        s[i].state = check_value(in, s[i].given, subject, d, &s[i].value) ? VAL_SET
                                                                                          : VAL_BAD;
                } else if (in->default_value) {
                        s[i].value = xstrdup(in->default_value);
                        s[i].state = VAL_SET;
                }
        }

        for (size_t i = 0; i < m->n_inputs; i++) {
                const struct manifest_input *in = &m->inputs[i];
                int vis = visibility(m, s, i);
                if (vis == VIS_NO && s[i].given) {
                        _cleanup_free_ char *cond = describe_condition(m, s, in);
                        diags_at_key(d, s[i].given, "module %s: input '%s' is only used when %s",
                                     m->id, in->name, cond);
                } else if (vis == VIS_YES && s[i].state == VAL_NONE && in->required) {
                        if (in->label)
                                diags_at(d, where, "module %s: missing required input '%s' (%s)",
                                         m->id, in->name, in->label);
                        else
                                diags_at(d, where, "module %s: missing required input '%s'", m->id,
                                         in->name);
                }
        }

        if (d->n == before) {
                out.v = xcalloc(m->n_inputs + 1, sizeof(*out.v));
                for (size_t i = 0; i < m->n_inputs; i++) {
                        if (s[i].vis != VIS_YES || s[i].state != VAL_SET)
                                continue;
                        out.v[out.n++] = (struct input_value){
                                .name = xstrdup(m->inputs[i].name),
                                .env_name = xstrdup(m->inputs[i].env_name),
                                .value = TAKE_PTR(s[i].value),
                                .sensitive = m->inputs[i].sensitive,
                        };
                }
        }
        for (size_t i = 0; i < m->n_inputs; i++)
                free(s[i].value);
        if (d->n > before)
                return -EBADMSG;
        *ret = out;
        return 0;
}

const char *input_values_get(const struct input_values *v, const char *name)
{
        for (size_t i = 0; i < v->n; i++)
                if (streq(v->v[i].name, name))
                        return v->v[i].value;
        return NULL;
}

void input_values_free(struct input_values *v)
{
        if (!v)
                return;
        for (size_t i = 0; i < v->n; i++) {
                free(v->v[i].name);
                free(v->v[i].env_name);
                free(v->v[i].value);
        }
        free(v->v);
        *v = (struct input_values){0};
}
