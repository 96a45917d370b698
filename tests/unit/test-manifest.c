/* The module manifest and the validation of given inputs. */
#include <errno.h>

#include "fs.h"
#include "manifest.h"
#include "regex.h"
#include "yaml.h"
#include "tap.h"

static char *all_diags(const struct diags *d)
{
        struct buf b = {0};

        for (size_t i = 0; i < d->n; i++) {
                _cleanup_free_ char *s = diag_format(&d->v[i]);
                buf_printf(&b, "%s%s", i ? "\n" : "", s);
        }
        buf_puts(&b, "");
        return buf_steal(&b);
}

static struct manifest *parse(const char *text, char **ret_errors)
{
        struct diags d = {0};
        struct node *doc = NULL;
        struct manifest *m = NULL;

        if (yaml_parse("manifest.yml", text, strlen(text), &doc, &d) == 0) {
                int r = manifest_parse(doc, &m, &d);
                CHECK((r == 0) == (m != NULL));
                CHECK(r == 0 || r == -EBADMSG);
                CHECK((r == 0) == (d.n == 0));
        }
        node_free(doc);
        if (ret_errors)
                *ret_errors = all_diags(&d);
        else if (d.n) {
                diags_print(&d, stderr);
                CHECK(!"unexpected diagnostics");
        }
        diags_free(&d);
        return m;
}

/* The diagnostics of a manifest that must be refused. */
static char *errors(const char *text)
{
        char *e = NULL;
        struct manifest *m = parse(text, &e);
        CHECK(!m);
        manifest_free(m);
        return e;
}

/* The input called name; a failed check and an empty input when missing. */
static const struct manifest_input *find(const struct manifest *m, const char *name)
{
        static const struct manifest_input none;
        const struct manifest_input *in = manifest_find_input(m, name);

        CHECK(in);
        return in ? in : &none;
}

#define HEAD "id: m\nname: M\nversion: \"1\"\n"

TEST(full_manifest)
{
        static const char text[] =
                "id: postgres\n"
                "name: PostgreSQL\n"
                "version: 16.2\n"
                "description: The database\n"
                "category: database\n"
                "author: Ops <ops@example.com>\n"
                "os_requirements: {family: debian, min_version: \"12\"}\n"
                "resource_requirements: {min_ram_mb: 1024, min_disk_mb: 2048}\n"
                "inputs:\n"
                "  - name: db_name\n"
                "    type: string\n"
                "    label: Database name\n"
                "    description: The name of the database\n"
                "    required: true\n"
                "    default: app\n"
                "    validation: {pattern: \"[a-z_]+\", min_length: 1, max_length: 63}\n"
                "    sensitive: false\n"
                "  - {name: db_port, type: port, default: 5432, validation: {min: 1024}}\n"
                "  - {name: db_password, type: password, required: true}\n"
                "  - name: auth_mode\n"
                "    type: select\n"
                "    default: local\n"
                "    validation: {allowed_values: [local, keycloak]}\n"
                "  - {name: keycloak_url, type: string, visible_if: {auth_mode: keycloak}}\n"
                "  - {name: admin_email, type: email}\n"
                "  - {name: enable_tls, type: boolean, default: false}\n"
                "  - {name: workers, type: integer, default: 0x10}\n"
                "  - {name: api_key, type: string, sensitive: true}\n"
                "install_script: scripts/setup.sh\n"
                "timeout_seconds: 900\n"
                "idempotent: true\n"
                "after: [docker]\n"
                "requires: [base, net-tools]\n"
                "frequency: always\n";
        struct manifest *m = parse(text, NULL);

        CHECK(m);
        if (!m)
                return;
        CHECK_STREQ(m->id, "postgres");
        CHECK_STREQ(m->name, "PostgreSQL");
        CHECK_STREQ(m->version, "16.2");
        CHECK_STREQ(m->description, "The database");
        CHECK_STREQ(m->category, "database");
        CHECK_STREQ(m->author, "Ops <ops@example.com>");
        CHECK_INTEQ(m->n_os, 1);
        CHECK_STREQ(m->os[0].family, "debian");
        CHECK_STREQ(m->os[0].min_version, "12");
        CHECK(!m->os_min_first_only);
        CHECK_INTEQ(m->min_ram_mb, 1024);
        CHECK_INTEQ(m->min_disk_mb, 2048);
        CHECK_STREQ(m->install_script, "scripts/setup.sh");
        CHECK_INTEQ(m->timeout_seconds, 900);
        CHECK(m->idempotent);
        CHECK_INTEQ(strv_length(m->after), 1);
        CHECK_STREQ(m->after[0], "docker");
        CHECK_INTEQ(strv_length(m->requires), 2);
        CHECK_STREQ(m->requires[1], "net-tools");
        CHECK(m->frequency == FREQ_ALWAYS);
        CHECK_STREQ(frequency_to_string(m->frequency), "always");
        CHECK_INTEQ(m->n_inputs, 9);

        const struct manifest_input *in = find(m, "db_name");
        CHECK(in->type == INPUT_STRING && in->required && !in->sensitive);
        CHECK_STREQ(in->env_name, "DB_NAME");
        CHECK_STREQ(in->label, "Database name");
        CHECK_STREQ(in->description, "The name of the database");
        CHECK_STREQ(in->default_value, "app");
        CHECK_STREQ(in->pattern, "[a-z_]+");
        CHECK_INTEQ(in->min_length, 1);
        CHECK_INTEQ(in->max_length, 63);
        CHECK(!in->has_min && !in->has_max);

        in = find(m, "db_port");
        CHECK(in->type == INPUT_PORT && in->has_min && in->min == 1024 && !in->has_max);
        CHECK_STREQ(in->default_value, "5432");
        CHECK_INTEQ(in->min_length, -1);
        in = find(m, "db_password");
        CHECK(in->type == INPUT_PASSWORD && in->sensitive && !in->default_value);
        in = find(m, "auth_mode");
        CHECK(in->type == INPUT_SELECT && strv_length(in->allowed_values) == 2);
        in = find(m, "keycloak_url");
        CHECK(in->n_visible_if == 1);
        CHECK_STREQ(in->visible_if[0].name, "auth_mode");
        CHECK_INTEQ(in->visible_if[0].input, 3);
        CHECK_STREQ(in->visible_if[0].values[0], "keycloak");
        in = find(m, "admin_email");
        CHECK(in->type == INPUT_EMAIL);
        in = find(m, "enable_tls");
        CHECK(in->type == INPUT_BOOLEAN);
        CHECK_STREQ(in->default_value, "false");
        in = find(m, "workers");
        CHECK_STREQ(in->default_value, "16");
        in = find(m, "api_key");
        CHECK(in->sensitive && in->type == INPUT_STRING);
        CHECK(!manifest_find_input(m, "nope"));
        manifest_free(m);
}

TEST(defaults)
{
        struct manifest *m = parse(HEAD, NULL);
        CHECK(m);
        if (!m)
                return;
        CHECK_STREQ(m->install_script, "install.sh");
        CHECK_INTEQ(m->timeout_seconds, 600);
        CHECK(m->frequency == FREQ_PER_INSTANCE);
        CHECK(!m->idempotent && !m->after && !m->requires && m->n_os == 0);
        CHECK_INTEQ(m->min_ram_mb, 0);
        CHECK_INTEQ(m->n_inputs, 0);
        CHECK_STREQ(frequency_to_string(FREQ_PER_INSTANCE), "once-per-instance");
        CHECK_STREQ(frequency_to_string(FREQ_ONCE), "once");
        manifest_free(m);
}

TEST(load_from_file)
{
        char dir[] = "/tmp/test-manifest.XXXXXX";
        struct diags d = {0};
        struct manifest *m = NULL;

        CHECK(mkdtemp(dir));
        _cleanup_free_ char *p = strprintf("%s/manifest.yml", dir);
        const char good[] = "id: hello\nname: Hello\nversion: \"1.0\"\n";
        CHECK(write_file_atomic(p, good, strlen(good), 0644, (uid_t)-1, (gid_t)-1) >= 0);
        CHECK(manifest_load(p, &m, &d) == 0);
        CHECK(m && streq(m->id, "hello"));
        manifest_free(m);
        m = NULL;

        const char bad[] = "id: hello\nname: Hello\nversion: \"1.0\"\ncolour: red\n";
        CHECK(write_file_atomic(p, bad, strlen(bad), 0644, (uid_t)-1, (gid_t)-1) >= 0);
        CHECK(manifest_load(p, &m, &d) == -EBADMSG);
        CHECK(!m && d.n == 1);
        _cleanup_free_ char *want = strprintf("%s:4:1: unknown key 'colour'", p);
        _cleanup_free_ char *got = all_diags(&d);
        CHECK(got && startswith(got, want));
        diags_free(&d);
        CHECK(rm_rf(dir) >= 0);
}

TEST(required_fields_and_top_level_errors)
{
        _cleanup_free_ char *a = errors("description: x\n");
        CHECK_STREQ(a, "manifest.yml:1:1: missing required key 'id'\n"
                       "manifest.yml:1:1: missing required key 'name'\n"
                       "manifest.yml:1:1: missing required key 'version'");
        _cleanup_free_ char *b = errors(HEAD "colour: blue\n");
        CHECK_STREQ(b, "manifest.yml:4:1: unknown key 'colour' in the manifest (expected one of: "
                       "id, name, version, description, category, author, os_requirements, "
                       "resource_requirements, inputs, install_script, timeout_seconds, "
                       "idempotent, after, requires, frequency, watches, reprovision)");
        _cleanup_free_ char *c = errors("- a\n- b\n");
        CHECK_STREQ(c, "manifest.yml:1:1: a module manifest must be a mapping, not a sequence");
        _cleanup_free_ char *f = errors("id: m\nname: \"\"\nversion: 1\n");
        CHECK_STREQ(f, "manifest.yml:2:7: 'name' must not be empty");
        _cleanup_free_ char *e = errors("");
        CHECK_STREQ(e, "manifest.yml:1:1: a module manifest must be a mapping, not null");
}

TEST(bad_id)
{
        _cleanup_free_ char *a = errors("id: Post gres\nname: M\nversion: \"1\"\n");
        CHECK_STREQ(a, "manifest.yml:1:5: 'id' must be lower-case letters, digits, '-' and '_', "
                       "starting with a letter or digit (at most 64 characters), not \"Post "
                       "gres\"");
        _cleanup_free_ char *b = errors("id: -x\nname: M\nversion: \"1\"\n");
        CHECK(b && startswith(b, "manifest.yml:1:5: 'id' must be"));
        _cleanup_free_ char *c = errors("id: [x]\nname: M\nversion: \"1\"\n");
        CHECK_STREQ(c, "manifest.yml:1:5: 'id' must be a string, not a sequence");
        char long_id[80];
        memset(long_id, 'a', 65);
        long_id[65] = 0;
        CHECK(!manifest_id_is_valid(long_id));
        long_id[64] = 0;
        CHECK(manifest_id_is_valid(long_id));
        CHECK(manifest_id_is_valid("0x_y-z"));
        CHECK(!manifest_id_is_valid("_x"));
        CHECK(!manifest_id_is_valid(""));
}

TEST(wrong_types)
{
        _cleanup_free_ char *a = errors(HEAD "timeout_seconds: ten\n");
        CHECK_STREQ(a, "manifest.yml:4:18: 'timeout_seconds' must be an integer, not a string");
        _cleanup_free_ char *b = errors(HEAD "timeout_seconds: 0\n");
        CHECK_STREQ(b, "manifest.yml:4:18: 'timeout_seconds' must be between 1 and 86400, not 0");
        _cleanup_free_ char *c = errors(HEAD "timeout_seconds: 86401\n");
        CHECK_STREQ(c,
                    "manifest.yml:4:18: 'timeout_seconds' must be between 1 and 86400, not 86401");
        _cleanup_free_ char *e = errors(HEAD "idempotent: \"yes\"\n");
        CHECK_STREQ(e, "manifest.yml:4:13: 'idempotent' must be true or false, not a string");
        _cleanup_free_ char *f = errors(HEAD "description: {a: b}\n");
        CHECK_STREQ(f, "manifest.yml:4:14: 'description' must be a string, not a mapping");
        _cleanup_free_ char *g = errors(HEAD "inputs: {a: b}\n");
        CHECK_STREQ(g, "manifest.yml:4:9: 'inputs' must be a sequence of inputs, not a mapping");
        _cleanup_free_ char *h = errors(HEAD "os_requirements: debian\n");
        CHECK_STREQ(h, "manifest.yml:4:18: 'os_requirements' must be a mapping, not a string");
        _cleanup_free_ char *i = errors(HEAD "resource_requirements: {min_ram_mb: -1, disk: 1}\n");
        CHECK_STREQ(i, "manifest.yml:4:41: unknown key 'disk' in resource_requirements (expected "
                       "one of: min_ram_mb, min_disk_mb)\n"
                       "manifest.yml:4:37: resource_requirements: 'min_ram_mb' must be between 0 "
                       "and 1073741824, not -1");
        _cleanup_free_ char *j = errors(HEAD "frequency: weekly\n");
        CHECK_STREQ(j, "manifest.yml:4:12: 'frequency' must be one of: once-per-instance, always, "
                       "once; not \"weekly\"");
        _cleanup_free_ char *k = errors(HEAD "os_requirements: {family: debian, min_version: "
                                             "twelve}\n");
        CHECK_STREQ(k, "manifest.yml:4:48: os_requirements: a 'min_version' must be a version "
                       "like \"12\" or \"22.04\", not \"twelve\"");
}

TEST(install_script_must_be_safe)
{
        _cleanup_free_ char *a = errors(HEAD "install_script: ../../bin/sh\n");
        CHECK_STREQ(a, "manifest.yml:4:17: 'install_script' must be a relative path inside the "
                       "module directory, not \"../../bin/sh\"");
        _cleanup_free_ char *b = errors(HEAD "install_script: /bin/sh\n");
        CHECK(b && startswith(b, "manifest.yml:4:17: 'install_script' must be a relative"));
}

TEST(after_and_requires)
{
        _cleanup_free_ char *a = errors(HEAD "after: docker\n");
        CHECK_STREQ(a, "manifest.yml:4:8: 'after' must be a sequence of module ids, not a string "
                       "(write [docker])");
        _cleanup_free_ char *b = errors(HEAD "requires: [ok, Not OK, ok, m]\n");
        CHECK_STREQ(b, "manifest.yml:4:16: 'requires' lists \"Not OK\", which is not a valid "
                       "module id\n"
                       "manifest.yml:4:24: 'requires' lists 'ok' twice\n"
                       "manifest.yml:4:28: module 'm' cannot be in its own 'requires'");
}

TEST(watches)
{
        struct manifest *m = parse(HEAD "watches: [/etc/a.conf, \"/opt/b c\"]\n", NULL);
        REQUIRE(m);
        CHECK_INTEQ(m->n_watches, 2);
        CHECK_STREQ(m->watches[0].path, "/etc/a.conf");
        CHECK_INTEQ(m->watches[0].line, 4);
        CHECK_INTEQ(m->watches[0].column, 11);
        CHECK_STREQ(m->watches[1].path, "/opt/b c");
        manifest_free(m);
        _cleanup_free_ char *a = errors(HEAD "watches: /etc/a\n");
        CHECK_STREQ(a, "manifest.yml:4:10: 'watches' must be a sequence of absolute paths, not a "
                       "string");
        _cleanup_free_ char *b =
                errors(HEAD "watches: [etc/a, /etc/../x, /a, /a, {x: 1}, \"/a\\nb\", /etc/]\n");
        CHECK_STREQ(b, "manifest.yml:4:11: 'watches' lists \"etc/a\", which is not an absolute "
                       "path without '.' or '..' components\n"
                       "manifest.yml:4:18: 'watches' lists \"/etc/../x\", which is not an "
                       "absolute path without '.' or '..' components\n"
                       "manifest.yml:4:33: 'watches' lists '/a' twice\n"
                       "manifest.yml:4:37: 'watches' must list absolute paths, not a mapping\n"
                       "manifest.yml:4:45: 'watches' lists \"/a\\nb\", which is not an absolute "
                       "path without '.' or '..' components\n"
                       "manifest.yml:4:54: 'watches' lists \"/etc/\", which is not an absolute "
                       "path without '.' or '..' components");
}

TEST(reprovision)
{
        struct manifest *m = parse(HEAD "inputs: [{name: mode, type: string}, {name: dir, type: "
                                        "string}]\nreprovision: [dir, mode]\n",
                                   NULL);
        REQUIRE(m);
        REQUIRE(m->reprovision);
        CHECK_STREQ(m->reprovision[0], "dir");
        CHECK_STREQ(m->reprovision[1], "mode");
        CHECK(!m->reprovision[2]);
        manifest_free(m);
        m = parse(HEAD "reprovision: []\n", NULL);
        REQUIRE(m);
        CHECK(!m->reprovision);
        manifest_free(m);
        _cleanup_free_ char *a = errors(HEAD "inputs: [{name: mode, type: string}]\n"
                                             "reprovision: mode\n");
        CHECK_STREQ(a, "manifest.yml:5:14: 'reprovision' must be a sequence of input names, not a "
                       "string");
        _cleanup_free_ char *b = errors(HEAD "inputs: [{name: mode, type: string}]\n"
                                             "reprovision: [mode, port, mode, [x], ~]\n");
        CHECK_STREQ(b, "manifest.yml:5:21: 'reprovision' lists \"port\", which is not an input of "
                       "this module\n"
                       "manifest.yml:5:27: 'reprovision' lists 'mode' twice\n"
                       "manifest.yml:5:33: 'reprovision' must list input names, not a sequence\n"
                       "manifest.yml:5:38: 'reprovision' must list input names, not null");
        /* Without inputs, nothing can be listed. */
        _cleanup_free_ char *c = errors(HEAD "reprovision: [mode]\n");
        CHECK_STREQ(c, "manifest.yml:4:15: 'reprovision' lists \"mode\", which is not an input of "
                       "this module");
}

TEST(input_errors)
{
        /* Unknown key in an input and in its validation. */
        _cleanup_free_ char *a = errors(HEAD "inputs:\n"
                                             "  - name: db_port\n"
                                             "    type: port\n"
                                             "    colour: red\n"
                                             "    validation:\n"
                                             "      minimum: 1\n");
        CHECK_STREQ(a, "manifest.yml:7:5: unknown key 'colour' in input 'db_port' (expected one "
                       "of: name, type, label, description, required, default, validation, "
                       "visible_if, sensitive)\n"
                       "manifest.yml:9:7: unknown key 'minimum' in the validation of input "
                       "'db_port' (expected one of: pattern, min_length, max_length, min, max, "
                       "allowed_values)");

        _cleanup_free_ char *b = errors(HEAD "inputs:\n"
                                             "  - {name: a, type: string}\n"
                                             "  - {name: b, type: string}\n"
                                             "  - {name: a, type: integer}\n");
        CHECK_STREQ(b, "manifest.yml:7:12: duplicate input 'a' (first at line 5)");

        _cleanup_free_ char *c =
                errors(HEAD "inputs:\n"
                            "  - {name: mode, type: select}\n"
                            "  - {name: m2, type: select, validation: {min_length: 1}}\n");
        CHECK_STREQ(c, "manifest.yml:5:5: input 'mode': a select input needs "
                       "validation.allowed_values\n"
                       "manifest.yml:6:42: input 'm2': a select input needs "
                       "validation.allowed_values");

        _cleanup_free_ char *e = errors(HEAD "inputs:\n"
                                             "  - {name: x, type: string, validation: {pattern: "
                                             "\"[a-z\"}}\n");
        CHECK_STREQ(e, "manifest.yml:5:51: input 'x': 'pattern' is not a valid regular "
                       "expression: missing terminating ] for character class at offset 4 of "
                       "\"[a-z\"");

        _cleanup_free_ char *f = errors(HEAD "inputs:\n"
                                             "  - name: port\n"
                                             "    type: port\n"
                                             "    default: 80\n"
                                             "    validation: {min: 1024}\n"
                                             "  - name: db\n"
                                             "    type: string\n"
                                             "    default: My-DB\n"
                                             "    validation: {pattern: \"[a-z]+\"}\n"
                                             "  - name: pw\n"
                                             "    type: password\n"
                                             "    default: short\n"
                                             "    validation: {min_length: 8}\n");
        CHECK_STREQ(f, "manifest.yml:7:14: the default of input 'port' must be between 1024 and "
                       "65535, not 80\n"
                       "manifest.yml:11:14: the default of input 'db' must match the pattern "
                       "[a-z]+, not \"My-DB\"\n"
                       "manifest.yml:15:14: the default of input 'pw' must be at least 8 "
                       "characters long");

        _cleanup_free_ char *g = errors(HEAD "inputs:\n"
                                             "  - {name: a, type: string, visible_if: {b: yes}}\n"
                                             "  - {name: c, type: string, visible_if: {c: x}}\n");
        CHECK_STREQ(g, "manifest.yml:5:42: input 'a': 'visible_if' refers to unknown input 'b' "
                       "(known inputs: a, c)\n"
                       "manifest.yml:6:42: input 'c': 'visible_if' refers to the input itself");

        _cleanup_free_ char *h = errors(HEAD "inputs:\n"
                                             "  - {name: Bad, type: string}\n"
                                             "  - {name: ok, type: text}\n"
                                             "  - {type: string}\n"
                                             "  - {name: path, type: string}\n");
        CHECK_STREQ(h, "manifest.yml:5:12: input name \"Bad\" must be lower-case letters, digits "
                       "and '_', starting with a letter (at most 64 characters)\n"
                       "manifest.yml:6:22: input 'ok': 'type' must be one of: string, integer, "
                       "boolean, password, select, email, port; not \"text\"\n"
                       "manifest.yml:7:5: input #3: missing required key 'name'\n"
                       "manifest.yml:8:12: input name 'path' is reserved: it would replace the "
                       "environment variable PATH of install.sh");

        _cleanup_free_ char *i = errors(HEAD "inputs:\n"
                                             "  - {name: a, type: integer, required: maybe, "
                                             "validation: {pattern: x, min: 5, max: 1}}\n"
                                             "  - {name: b, type: string, validation: {min: 1}}\n"
                                             "  - {name: c, type: boolean, default: \"true\"}\n");
        CHECK_STREQ(
                i,
                "manifest.yml:5:40: input 'a': 'required' must be true or false, not a "
                "string\n"
                "manifest.yml:5:60: input 'a': 'pattern' does not apply to inputs of type integer\n"
                "manifest.yml:6:42: input 'b': 'min' does not apply to inputs of type string (use "
                "min_length)\n"
                "manifest.yml:7:39: the default of input 'c' must be true or false, not a "
                "string");
}

TEST(visible_if_errors)
{
        _cleanup_free_ char *a =
                errors(HEAD "inputs:\n"
                            "  - {name: mode, type: select, validation: "
                            "{allowed_values: [local, keycloak]}}\n"
                            "  - {name: url, type: string, visible_if: {mode: keyclaok}}\n"
                            "  - {name: tls, type: boolean}\n"
                            "  - {name: cert, type: string, visible_if: {tls: on}}\n"
                            "  - {name: x, type: string, visible_if: {y: a}}\n"
                            "  - {name: y, type: string, visible_if: {x: b}}\n"
                            "  - {name: z, type: string, visible_if: [mode]}\n");
        CHECK_STREQ(a, "manifest.yml:6:50: input 'url': 'mode' is never \"keyclaok\" (it is one "
                       "of: local, keycloak)\n"
                       "manifest.yml:8:50: input 'cert': 'tls' is a boolean input: "
                       "'visible_if.tls' must be true or false, not \"on\"\n"
                       "manifest.yml:11:41: input 'z': 'visible_if' must be a mapping of input "
                       "names to values, not a sequence\n"
                       "manifest.yml:9:41: 'visible_if' cycle: x -> y -> x");
}

/* Resolution: a manifest, and a bundle.yaml whose first module gives the
 * inputs. */
static int resolve(const char *manifest_text, const char *bundle_text, struct input_values *ret,
                   char **ret_errors)
{
        struct diags d = {0};
        struct node *doc = NULL;
        struct manifest *m = parse(manifest_text, NULL);
        int r = -EINVAL;

        if (m && yaml_parse("bundle.yaml", bundle_text, strlen(bundle_text), &doc, &d) == 0) {
                const struct node *entry = node_get(doc, "modules")->items[0];
                *ret = (struct input_values){0};
                r = manifest_resolve_inputs(m, node_get(entry, "inputs"), entry, &d, ret);
                CHECK((r == 0) == (d.n == 0));
        }
        *ret_errors = all_diags(&d);
        diags_free(&d);
        node_free(doc);
        manifest_free(m);
        return r;
}

/* The first error of resolving inputs (a flow mapping after "inputs: ")
 * against manifest text, or NULL when accepted. */
static char *resolve_error(const char *manifest_text, const char *inputs)
{
        _cleanup_free_ char *bundle =
                strprintf("version: 1\nmodules:\n  - id: m\n    inputs: %s\n", inputs);
        struct input_values v = {0};
        char *e = NULL;
        int r = resolve(manifest_text, bundle, &v, &e);
        input_values_free(&v);
        if (r == 0) {
                free(e);
                return NULL;
        }
        return e;
}

#define TYPES                                                                                      \
        HEAD "inputs:\n"                                                                           \
             "  - {name: s, type: string}\n"                                                       \
             "  - {name: i, type: integer, validation: {min: -5, max: 10}}\n"                      \
             "  - {name: b, type: boolean}\n"                                                      \
             "  - {name: p, type: password, validation: {min_length: 4}}\n"                        \
             "  - {name: sel, type: select, validation: {allowed_values: [a, b]}}\n"               \
             "  - {name: e, type: email}\n"                                                        \
             "  - {name: port, type: port}\n"                                                      \
             "  - {name: hi, type: port, validation: {min: 1024}}\n"                               \
             "  - {name: re, type: string, validation: {pattern: \"[a-z]+\", max_length: 5}}\n"    \
             "  - {name: alt, type: string, validation: {pattern: \"ab|cd\"}}\n"                   \
             "  - {name: color, type: string, validation: {allowed_values: [red, green]}}\n"       \
             "  - {name: n, type: integer, validation: {allowed_values: [1, 0x2]}}\n"

TEST(resolve_each_type)
{
        struct input_values v = {0};
        _cleanup_free_ char *e = NULL;
        int r = resolve(TYPES,
                        "modules:\n  - id: m\n    inputs:\n"
                        "      s: 42\n      i: 0x0a\n      b: True\n      p: s3cret\n"
                        "      sel: b\n      e: ops@example.com\n      port: 443\n"
                        "      hi: 65535\n      re: abc\n      alt: cd\n      color: red\n"
                        "      n: 2\n",
                        &v, &e);
        CHECK_INTEQ(r, 0);
        CHECK_STREQ(e, "");
        CHECK_INTEQ(v.n, 12);
        CHECK_STREQ(input_values_get(&v, "s"), "42");
        CHECK_STREQ(input_values_get(&v, "i"), "10");
        CHECK_STREQ(input_values_get(&v, "b"), "true");
        CHECK_STREQ(input_values_get(&v, "p"), "s3cret");
        CHECK_STREQ(input_values_get(&v, "sel"), "b");
        CHECK_STREQ(input_values_get(&v, "e"), "ops@example.com");
        CHECK_STREQ(input_values_get(&v, "port"), "443");
        CHECK_STREQ(input_values_get(&v, "hi"), "65535");
        CHECK_STREQ(input_values_get(&v, "n"), "2");
        CHECK(!input_values_get(&v, "nope"));
        for (size_t i = 0; i < v.n; i++)
                CHECK(v.v[i].sensitive == streq(v.v[i].name, "p"));
        CHECK_STREQ(v.v[3].name, "p");
        CHECK_STREQ(v.v[3].env_name, "P");
        input_values_free(&v);
}

TEST(resolve_rejects)
{
        static const struct {
                const char *inputs, *error;
        } cases[] = {
                {"{s: {a: b}}", "bundle.yaml:4:17: module m: input 's' must be a string, not a "
                                "mapping"},
                {"{s: [a]}", "bundle.yaml:4:17: module m: input 's' must be a string, not a "
                             "sequence"},
                {"{s: ~}", "bundle.yaml:4:17: module m: input 's' has no value (write \"\" for an "
                           "empty string)"},
                {"{i: many}", "bundle.yaml:4:17: module m: input 'i' must be an integer, not a "
                              "string"},
                {"{i: \"5\"}", "bundle.yaml:4:17: module m: input 'i' must be an integer, not a "
                               "string (write the number without quotes)"},
                {"{i: 1.5}", "bundle.yaml:4:17: module m: input 'i' must be an integer, not a "
                             "number"},
                {"{i: 11}", "bundle.yaml:4:17: module m: input 'i' must be between -5 and 10, not "
                            "11"},
                {"{i: -6}", "bundle.yaml:4:17: module m: input 'i' must be between -5 and 10, not "
                            "-6"},
                {"{b: yes}", "bundle.yaml:4:17: module m: input 'b' must be true or false, not a "
                             "string"},
                {"{b: 1}", "bundle.yaml:4:17: module m: input 'b' must be true or false, not an "
                           "integer"},
                {"{sel: c}", "bundle.yaml:4:19: module m: input 'sel' must be one of: a, b; not "
                             "\"c\""},
                {"{e: ops}", "bundle.yaml:4:17: module m: input 'e' must be an email address like "
                             "name@example.com, not \"ops\""},
                {"{e: a@b@example.com}", NULL},
                {"{e: \"@example.com\"}", NULL},
                {"{e: ops@localhost}", NULL},
                {"{e: \"o ps@example.com\"}", NULL},
                {"{e: ops@example..com}", NULL},
                {"{e: ops@.example.com}", NULL},
                {"{port: 70000}", "bundle.yaml:4:20: module m: input 'port' must be between 1 and "
                                  "65535, not 70000"},
                {"{port: 0}", NULL},
                {"{port: http}", "bundle.yaml:4:20: module m: input 'port' must be a port number, "
                                 "not a string"},
                {"{hi: 80}", "bundle.yaml:4:18: module m: input 'hi' must be between 1024 and "
                             "65535, not 80"},
                {"{re: abc1}", "bundle.yaml:4:18: module m: input 're' must match the pattern "
                               "[a-z]+, not \"abc1\""},
                {"{re: 1abc}", NULL},
                {"{re: abcdef}", "bundle.yaml:4:18: module m: input 're' must be at most 5 "
                                 "characters long (it has 6)"},
                {"{alt: abcd}", "bundle.yaml:4:19: module m: input 'alt' must match the pattern "
                                "ab|cd, not \"abcd\""},
                {"{color: blue}", "bundle.yaml:4:21: module m: input 'color' must be one of: red, "
                                  "green; not \"blue\""},
                {"{n: 3}", "bundle.yaml:4:17: module m: input 'n' must be one of: 1, 2; not "
                           "\"3\""},
                {"{p: abc}", "bundle.yaml:4:17: module m: input 'p' must be at least 4 characters "
                             "long"},
                {"{s: \"x\\ny\", bogus: 1}", "bundle.yaml:4:25: module m: unknown input 'bogus' "
                                             "(known inputs: s, i, b, p, sel, e, port, hi, re, "
                                             "alt, color, n)"},
                {"[s, i]", "bundle.yaml:4:13: module m: 'inputs' must be a mapping of input names "
                           "to values, not a sequence"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_free_ char *e = resolve_error(TYPES, cases[i].inputs);
                if (!e) {
                        fprintf(stderr, "  accepted %s\n", cases[i].inputs);
                        CHECK(e);
                        continue;
                }
                if (cases[i].error)
                        CHECK_STREQ(e, cases[i].error);
        }
        /* Text stays as written: 007 is not 7 for a string or a select. */
        static const char leading_zeros[] =
                HEAD "inputs:\n"
                     "  - {name: s, type: string}\n"
                     "  - {name: sel, type: select, validation: {allowed_values: [007, 8]}}\n"
                     "  - {name: i, type: integer, validation: {allowed_values: [007, 8]}}\n";
        struct input_values v = {0};
        _cleanup_free_ char *e0 = NULL;
        CHECK_INTEQ(resolve(leading_zeros,
                            "modules:\n  - id: m\n    inputs: {s: 007, sel: 007, i: 7}\n", &v, &e0),
                    0);
        CHECK_STREQ(input_values_get(&v, "s"), "007");
        CHECK_STREQ(input_values_get(&v, "sel"), "007");
        CHECK_STREQ(input_values_get(&v, "i"), "7");
        input_values_free(&v);
        _cleanup_free_ char *e1 = resolve_error(leading_zeros, "{sel: 7}");
        CHECK_STREQ(e1, "bundle.yaml:4:19: module m: input 'sel' must be one of: 007, 8; not "
                        "\"7\"");

        /* The accepted edges. */
        static const char *const ok[] = {
                "{i: -5}",       "{i: 10}",
                "{port: 1}",     "{port: 65535}",
                "{re: a}",       "{re: abcde}",
                "{alt: ab}",     "{p: abcd}",
                "{s: \"\"}",     "{e: a.b+c@mail.example.org}",
                "{b: false}",    "{s: true}",
                "{p: \"äöüß\"}", /* four characters, eight bytes */
        };
        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                _cleanup_free_ char *e = resolve_error(TYPES, ok[i]);
                if (e)
                        fprintf(stderr, "  refused %s: %s\n", ok[i], e);
                CHECK(!e);
        }
}

TEST(resolve_collects_every_error)
{
        _cleanup_free_ char *e = resolve_error(TYPES, "{i: x, port: 0, sel: z, zz: 1}");
        CHECK_STREQ(e, "bundle.yaml:4:37: module m: unknown input 'zz' (known inputs: s, i, b, p, "
                       "sel, e, port, hi, re, alt, color, n)\n"
                       "bundle.yaml:4:17: module m: input 'i' must be an integer, not a string\n"
                       "bundle.yaml:4:34: module m: input 'sel' must be one of: a, b; not \"z\"\n"
                       "bundle.yaml:4:26: module m: input 'port' must be between 1 and 65535, not "
                       "0");
}

TEST(resolve_module_without_inputs)
{
        _cleanup_free_ char *e = resolve_error(HEAD, "{x: 1}");
        CHECK_STREQ(e, "bundle.yaml:4:14: module m: unknown input 'x' (the module has no inputs)");
        _cleanup_free_ char *f = resolve_error(HEAD, "{}");
        CHECK(!f);
        _cleanup_free_ char *g = resolve_error(HEAD, "~");
        CHECK(!g);
}

#define REQUIRED                                                                                   \
        HEAD "inputs:\n"                                                                           \
             "  - {name: db_name, type: string, required: true, default: app}\n"                   \
             "  - {name: db_user, type: string, required: true, label: Database user}\n"           \
             "  - {name: db_pass, type: password, required: true}\n"                               \
             "  - {name: opt, type: string}\n"                                                     \
             "  - {name: port, type: port, default: 5432}\n"

TEST(required_and_defaults)
{
        struct input_values v = {0};
        _cleanup_free_ char *e = NULL;
        int r = resolve(REQUIRED, "version: 1\nmodules:\n  - id: m\n    inputs: {opt: x}\n", &v,
                        &e);
        CHECK_INTEQ(r, -EBADMSG);
        CHECK_STREQ(e, "bundle.yaml:3:5: module m: missing required input 'db_user' (Database "
                       "user)\n"
                       "bundle.yaml:3:5: module m: missing required input 'db_pass'");
        CHECK(!v.v && v.n == 0);

        /* No inputs at all: the error points at the module entry. */
        _cleanup_free_ char *e2 = NULL;
        r = resolve(REQUIRED, "version: 1\nmodules:\n  - name: x\n    id: m\n", &v, &e2);
        CHECK_INTEQ(r, -EBADMSG);
        CHECK(e2 && startswith(e2, "bundle.yaml:3:5: module m: missing required input 'db_user'"));

        _cleanup_free_ char *e3 = NULL;
        r = resolve(REQUIRED,
                    "modules:\n  - id: m\n    inputs: {db_user: u, db_pass: p, port: 6432}\n", &v,
                    &e3);
        CHECK_INTEQ(r, 0);
        CHECK_INTEQ(v.n, 4);
        CHECK_STREQ(v.v[0].name, "db_name");
        CHECK_STREQ(v.v[0].env_name, "DB_NAME");
        CHECK_STREQ(v.v[0].value, "app");
        CHECK(!v.v[0].sensitive);
        CHECK_STREQ(v.v[1].value, "u");
        CHECK_STREQ(v.v[2].env_name, "DB_PASS");
        CHECK(v.v[2].sensitive);
        CHECK_STREQ(v.v[3].name, "port");
        CHECK_STREQ(v.v[3].value, "6432");
        CHECK(!input_values_get(&v, "opt"));
        input_values_free(&v);
        input_values_free(&v);
}

#define VISIBLE                                                                                    \
        HEAD "inputs:\n"                                                                           \
             "  - name: auth_mode\n"                                                               \
             "    type: select\n"                                                                  \
             "    default: local\n"                                                                \
             "    validation: {allowed_values: [local, keycloak, ldap]}\n"                         \
             "  - name: keycloak_url\n"                                                            \
             "    type: string\n"                                                                  \
             "    required: true\n"                                                                \
             "    visible_if: {auth_mode: keycloak}\n"                                             \
             "  - name: directory\n"                                                               \
             "    type: string\n"                                                                  \
             "    default: corp\n"                                                                 \
             "    visible_if: {auth_mode: [keycloak, ldap]}\n"                                     \
             "  - name: realm\n"                                                                   \
             "    type: string\n"                                                                  \
             "    required: true\n"                                                                \
             "    visible_if: {keycloak_url: \"https://sso\", auth_mode: keycloak}\n"

TEST(visible_if)
{
        struct input_values v = {0};

        /* Hidden: not required, defaults not passed. */
        _cleanup_free_ char *e1 = NULL;
        CHECK_INTEQ(resolve(VISIBLE, "modules:\n  - id: m\n", &v, &e1), 0);
        CHECK_INTEQ(v.n, 1);
        CHECK_STREQ(v.v[0].value, "local");
        input_values_free(&v);

        /* Shown: now required. */
        _cleanup_free_ char *e2 = NULL;
        CHECK_INTEQ(resolve(VISIBLE, "modules:\n  - id: m\n    inputs: {auth_mode: keycloak}\n", &v,
                            &e2),
                    -EBADMSG);
        CHECK_STREQ(e2, "bundle.yaml:2:5: module m: missing required input 'keycloak_url'");

        _cleanup_free_ char *e3 = NULL;
        CHECK_INTEQ(resolve(VISIBLE,
                            "modules:\n  - id: m\n    inputs: {auth_mode: keycloak, keycloak_url: "
                            "\"https://sso\", realm: r}\n",
                            &v, &e3),
                    0);
        CHECK_INTEQ(v.n, 4);
        CHECK_STREQ(input_values_get(&v, "directory"), "corp");
        CHECK_STREQ(input_values_get(&v, "realm"), "r");
        input_values_free(&v);

        /* One of a list of values. */
        _cleanup_free_ char *e4 = NULL;
        CHECK_INTEQ(
                resolve(VISIBLE, "modules:\n  - id: m\n    inputs: {auth_mode: ldap}\n", &v, &e4),
                0);
        CHECK_INTEQ(v.n, 2);
        CHECK_STREQ(input_values_get(&v, "directory"), "corp");
        input_values_free(&v);

        /* A value for a hidden input. */
        _cleanup_free_ char *e5 = NULL;
        CHECK_INTEQ(resolve(VISIBLE, "modules:\n  - id: m\n    inputs:\n      keycloak_url: x\n",
                            &v, &e5),
                    -EBADMSG);
        CHECK_STREQ(e5, "bundle.yaml:4:7: module m: input 'keycloak_url' is only used when "
                        "auth_mode is keycloak (here auth_mode is local)");
        _cleanup_free_ char *e6 = NULL;
        CHECK_INTEQ(resolve(VISIBLE,
                            "modules:\n  - id: m\n    inputs: {auth_mode: ldap, realm: r}\n", &v,
                            &e6),
                    -EBADMSG);
        CHECK_STREQ(e6, "bundle.yaml:3:31: module m: input 'realm' is only used when "
                        "keycloak_url is https://sso and auth_mode is keycloak (here keycloak_url "
                        "is not set, auth_mode is ldap)");

        /* An invalid value does not cascade into visibility errors. */
        _cleanup_free_ char *e7 = NULL;
        CHECK_INTEQ(resolve(VISIBLE,
                            "modules:\n  - id: m\n    inputs: {auth_mode: kc, keycloak_url: x}\n",
                            &v, &e7),
                    -EBADMSG);
        CHECK_STREQ(e7, "bundle.yaml:3:25: module m: input 'auth_mode' must be one of: local, "
                        "keycloak, ldap; not \"kc\"");
}

TEST(sensitive_values_never_in_messages)
{
        static const char manifest[] =
                HEAD "inputs:\n"
                     "  - {name: pw, type: password, validation: {pattern: \"[a-z]+\", "
                     "min_length: 30}}\n"
                     "  - {name: key, type: string, sensitive: true, validation: "
                     "{allowed_values: [a, b], max_length: 3}}\n"
                     "  - {name: mail, type: email, sensitive: true}\n"
                     "  - {name: pin, type: integer, sensitive: true, validation: {max: 9}}\n"
                     "  - {name: sport, type: port, sensitive: true}\n"
                     "  - {name: mode, type: select, sensitive: true, validation: "
                     "{allowed_values: [x]}}\n";
        const char *secrets[] = {"Hunter2-SECRET", "KEY-SECRET-9", "SECRET-MAIL",
                                 "31337",          "99999",        "SECRETMODE"};
        _cleanup_free_ char *inputs =
                strprintf("{pw: %s, key: %s, mail: %s, pin: %s, sport: %s, mode: %s}", secrets[0],
                          secrets[1], secrets[2], secrets[3], secrets[4], secrets[5]);
        _cleanup_free_ char *e = resolve_error(manifest, inputs);
        CHECK(e);
        if (!e)
                return;
        CHECK_INTEQ(strchr(e, '\n') ? 1 : 0, 1);
        for (size_t i = 0; i < ARRAY_SIZE(secrets); i++)
                if (strstr(e, secrets[i])) {
                        fprintf(stderr, "  leaked %s in:\n%s\n", secrets[i], e);
                        CHECK(!"leaked");
                }
        CHECK(strstr(e, "module m: input 'pw' does not match the pattern [a-z]+"));
        CHECK(strstr(e, "module m: input 'pw' must be at least 30 characters long\n"));
        CHECK(strstr(e, "module m: input 'key' is not one of the allowed values"));
        CHECK(strstr(e, "module m: input 'key' must be at most 3 characters long\n"));
        CHECK(strstr(e, "module m: input 'mail' is not an email address like name@example.com"));
        CHECK(strstr(e, "module m: input 'pin' must be at most 9\n"));
        CHECK(strstr(e, "module m: input 'sport' must be between 1 and 65535\n"));
        CHECK(strstr(e, "module m: input 'mode' is not one of the allowed values"));

        /* Nor a sensitive default in the manifest's own errors. */
        _cleanup_free_ char *f = errors(HEAD "inputs:\n  - {name: pw, type: password, default: "
                                             "Hunter2-SECRET, validation: {min_length: 20}}\n");
        CHECK(f && !strstr(f, "Hunter2-SECRET"));
        CHECK_STREQ(f, "manifest.yml:5:41: the default of input 'pw' must be at least 20 "
                       "characters long");
}

/* The installer contract's own example (seed 003), as written: a family
 * list, a single min_version, a pattern in the Python/JS/PCRE dialect. */
#define SEED_MANIFEST                                                                              \
        "id: nginx\n"                                                                              \
        "name: Nginx Web Server\n"                                                                 \
        "version: 1.24.0\n"                                                                        \
        "description: High-performance HTTP server\n"                                              \
        "category: web-servers\n"                                                                  \
        "author: Platform Team\n"                                                                  \
        "\n"                                                                                       \
        "os_requirements:\n"                                                                       \
        "  family: [ubuntu, debian]\n"                                                             \
        "  min_version: \"20.04\"\n"                                                               \
        "\n"                                                                                       \
        "resource_requirements:\n"                                                                 \
        "  min_ram_mb: 512\n"                                                                      \
        "  min_disk_mb: 100\n"                                                                     \
        "\n"                                                                                       \
        "inputs:\n"                                                                                \
        "  - name: server_name\n"                                                                  \
        "    type: string\n"                                                                       \
        "    label: Server Name\n"                                                                 \
        "    required: true\n"                                                                     \
        "    validation:\n"                                                                        \
        "      pattern: '^[a-z0-9\\-\\.]+$'\n"                                                     \
        "      max_length: 253\n"                                                                  \
        "\n"                                                                                       \
        "install_script: install.sh\n"                                                             \
        "timeout_seconds: 600\n"                                                                   \
        "idempotent: true\n"

TEST(seed_manifest_as_written)
{
        struct manifest *m = parse(SEED_MANIFEST, NULL);
        CHECK(m);
        if (!m)
                return;
        CHECK_INTEQ(m->n_os, 2);
        CHECK_STREQ(m->os[0].family, "ubuntu");
        CHECK_STREQ(m->os[0].min_version, "20.04");
        CHECK_STREQ(m->os[1].family, "debian");
        CHECK(!m->os[1].min_version);
        CHECK(m->os_min_first_only);
        _cleanup_free_ char *os = manifest_os_describe(m->os, m->n_os);
        CHECK_STREQ(os, "ubuntu >= 20.04 or debian");
        CHECK_STREQ(find(m, "server_name")->pattern, "^[a-z0-9\\-\\.]+$");
        CHECK_INTEQ(m->timeout_seconds, 600);
        CHECK(m->idempotent);
        manifest_free(m);

        /* Hyphens and dots: POSIX ERE read "\-" in brackets as a backslash
         * and a range, and refused these. */
        static const char *const ok[] = {"my-host.example.org", "a", "x-1.y-2", "0.0", "-", "."};
        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                _cleanup_free_ char *in = strprintf("{server_name: %s}", ok[i]);
                _cleanup_free_ char *e = resolve_error(SEED_MANIFEST, in);
                if (e)
                        fprintf(stderr, "  refused %s: %s\n", ok[i], e);
                CHECK(!e);
        }
        static const char *const bad[] = {
                "My-Host", "a_b", "a b", "\"a\\\\b\"", "\"\"", "\"abc\\n\"", "\"é\"", "a/b",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                _cleanup_free_ char *in = strprintf("{server_name: %s}", bad[i]);
                _cleanup_free_ char *e = resolve_error(SEED_MANIFEST, in);
                if (!e)
                        fprintf(stderr, "  accepted %s\n", bad[i]);
                CHECK(e && strstr(e, "module nginx: input 'server_name' must match the pattern "
                                     "^[a-z0-9\\-\\.]+$, not "));
        }
        _cleanup_free_ char *long_name = strprintf("{server_name: %0254d}", 0);
        _cleanup_free_ char *e = resolve_error(SEED_MANIFEST, long_name);
        CHECK(e && strstr(e, "must be at most 253 characters long (it has 254)"));
}

TEST(os_requirements_forms)
{
#define OSR(body) HEAD "os_requirements: " body "\n"
        struct manifest *m = parse(OSR("{family: debian}"), NULL);
        CHECK(m && m->n_os == 1 && streq(m->os[0].family, "debian") && !m->os[0].min_version);
        manifest_free(m);
        m = parse(OSR("{family: [debian], min_version: 12}"), NULL);
        CHECK(m && m->n_os == 1 && streq(m->os[0].min_version, "12") && !m->os_min_first_only);
        manifest_free(m);
        m = parse(OSR("{family: [ubuntu, debian, Rocky], min_version: {ubuntu: \"20.04\", "
                      "debian: 11}}"),
                  NULL);
        CHECK(m && m->n_os == 3 && !m->os_min_first_only);
        if (m) {
                _cleanup_free_ char *os = manifest_os_describe(m->os, m->n_os);
                CHECK_STREQ(os, "ubuntu >= 20.04 or debian >= 11 or Rocky");
        }
        manifest_free(m);
        /* A mapping may name families in another case, and leave some out. */
        m = parse(OSR("{family: [ubuntu, debian], min_version: {Debian: \"12\"}}"), NULL);
        CHECK(m && !m->os[0].min_version && streq(m->os[1].min_version, "12"));
        manifest_free(m);

        static const struct {
                const char *text, *error;
        } cases[] = {
                {OSR("{family: []}"), "manifest.yml:4:27: os_requirements: 'family' must be an "
                                      "os-release ID like debian or a list of them like [ubuntu, "
                                      "debian], not an empty list"},
                {OSR("{family: {a: b}}"), "manifest.yml:4:27: os_requirements: 'family' must be "
                                          "an os-release ID like debian or a list of them like "
                                          "[ubuntu, debian], not a mapping"},
                {OSR("{family: true}"), "manifest.yml:4:27: os_requirements: 'family' must be an "
                                        "os-release ID like debian or a list of them like "
                                        "[ubuntu, debian], not a boolean"},
                {OSR("{family: [debian, [x]]}"), "manifest.yml:4:36: os_requirements: 'family' "
                                                 "must list os-release IDs, not a sequence"},
                {OSR("{family: [\"red hat\"]}"), "manifest.yml:4:28: os_requirements: 'family' "
                                                 "lists \"red hat\", which is not an os-release "
                                                 "ID (letters, digits, '.', '_' and '-', like "
                                                 "debian)"},
                {OSR("{family: [debian, Debian]}"), "manifest.yml:4:36: os_requirements: 'family' "
                                                    "lists 'Debian' twice"},
                {OSR("{min_version: \"12\"}"), "manifest.yml:4:18: os_requirements: "
                                               "'min_version' needs a 'family'"},
                {OSR("{family: debian, min_version: bookworm}"),
                 "manifest.yml:4:48: os_requirements: a 'min_version' must be a version like "
                 "\"12\" or \"22.04\", not \"bookworm\""},
                {OSR("{family: debian, min_version: [12]}"),
                 "manifest.yml:4:48: os_requirements: 'min_version' must be a version or a "
                 "mapping of families to versions like {ubuntu: \"20.04\", debian: \"11\"}, not "
                 "a sequence"},
                {OSR("{family: [ubuntu, debian], min_version: {fedora: \"39\"}}"),
                 "manifest.yml:4:59: os_requirements: 'min_version' names 'fedora', which is not "
                 "in 'family' (ubuntu or debian)"},
                {OSR("{family: [ubuntu, debian], min_version: {debian: \"1.\"}}"),
                 "manifest.yml:4:67: os_requirements: a 'min_version' must be a version like "
                 "\"12\" or \"22.04\", not \"1.\""},
                {OSR("{family: [ubuntu, debian], min_version: {debian: 12, Debian: 11}}"),
                 "manifest.yml:4:71: os_requirements: 'min_version' names 'Debian' twice"},
                {OSR("{family: [ubuntu, debian], min_version: {debian: {a: 1}}}"),
                 "manifest.yml:4:67: os_requirements: a 'min_version' must be a version like "
                 "\"12\" or \"22.04\", not a mapping"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_free_ char *e = errors(cases[i].text);
                CHECK_STREQ(e, cases[i].error);
        }
#undef OSR
}

/* Patterns are read as Python, JavaScript and PCRE read them. */
TEST(pattern_dialect)
{
        static const struct {
                const char *pattern, *value;
                bool match;
        } cases[] = {
                {"[a-z0-9\\-\\.]+", "my-host.example.org", true},
                {"[a-z0-9\\-\\.]+", "a\\b", false},
                {"\\d{3}", "123", true},
                {"\\d{3}", "12a", false},
                {"\\d+", "١٢", false}, /* ASCII digits only */
                {"\\w+", "abc_1", true},
                {"\\w+", "ab-c", false},
                {"(?:ab)+", "abab", true},
                {"(?i)abc", "ABC", true},
                {"(?P<x>a)b", "ab", true},
                {"a(?=b)b", "ab", true},
                {"[[:alpha:]]+", "abc", true}, /* POSIX classes, as the stack's manifests use */
                {"[^[:space:]]+", "a b", false},
                /* The whole value, whatever the pattern's own anchors say. */
                {"abc", "xabc", false},
                {"abc", "abcx", false},
                {"ab|abc", "abc", true},
                {"a|b", "ab", false},
                {"^abc$", "abc\n", false},
                {"abc\\n?", "abc\n", true},
                {".", "é", true}, /* one character, two bytes */
                {"", "", true},
                {"", "a", false},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_regex_ struct regex *re = NULL;
                _cleanup_free_ char *error = NULL;
                size_t off = 0;
                CHECK_INTEQ(regex_compile(cases[i].pattern, &re, &error, &off), 0);
                if (!re)
                        continue;
                int r = regex_match(re, cases[i].value, strlen(cases[i].value));
                if (r != cases[i].match)
                        fprintf(stderr, "  %s on \"%s\": %d\n", cases[i].pattern, cases[i].value,
                                r);
                CHECK_INTEQ(r, cases[i].match);
        }

        /* Compile errors: pcre2's message and its offset, at the pattern. */
        static const struct {
                const char *pattern, *error;
                size_t offset;
        } bad[] = {
                {"(ab", "missing closing parenthesis", 3},
                {"a)|(b", "unmatched closing parenthesis", 1},
                {"[z-a]", "range out of order in character class", 3},
                {"a{2,1}", "numbers out of order in {} quantifier", 5},
                {"\\C", "using \\C is disabled by the application", 2},
                {"(?<=a+)b", "lookbehind assertion is not fixed length", 0},
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                _cleanup_regex_ struct regex *re = NULL;
                _cleanup_free_ char *error = NULL;
                size_t off = 99;
                CHECK_INTEQ(regex_compile(bad[i].pattern, &re, &error, &off), -EINVAL);
                CHECK(!re);
                if (!error || !streq(error, bad[i].error) || off != bad[i].offset)
                        fprintf(stderr, "  %s: %s at %zu\n", bad[i].pattern,
                                error ? error : "(no message)", off);
                CHECK_STREQ(error, bad[i].error);
                CHECK_INTEQ(off, bad[i].offset);
        }
        _cleanup_free_ char *big = xcalloc(REGEX_MAX_PATTERN + 2, 1);
        memset(big, 'a', REGEX_MAX_PATTERN + 1);
        _cleanup_regex_ struct regex *re = NULL;
        _cleanup_free_ char *error = NULL;
        size_t off;
        CHECK_INTEQ(regex_compile(big, &re, &error, &off), -EINVAL);
        CHECK_STREQ(error, "pattern string is longer than the limit set by the application");

        /* The manifest's message: the pattern's line:column, then pcre2's. */
        _cleanup_free_ char *e = errors(HEAD "inputs:\n"
                                             "  - name: x\n"
                                             "    type: string\n"
                                             "    validation:\n"
                                             "      pattern: '^[a-z]+(\\.[a-z]+$'\n");
        CHECK_STREQ(e, "manifest.yml:8:16: input 'x': 'pattern' is not a valid regular "
                       "expression: missing closing parenthesis at offset 17 of "
                       "\"^[a-z]+(\\\\.[a-z]+$\"");
}

/* A pattern that backtracks without end is stopped by the match limits
 * and the value refused, never accepted. */
TEST(pattern_limits)
{
        _cleanup_regex_ struct regex *re = NULL;
        _cleanup_free_ char *error = NULL, *value = xcalloc(64, 1);
        size_t off;

        CHECK_INTEQ(regex_compile("(a+)+", &re, &error, &off), 0);
        memset(value, 'a', 40);
        value[40] = '!';
        if (re)
                CHECK_INTEQ(regex_match(re, value, strlen(value)), -E2BIG);
        CHECK_INTEQ(regex_match(re, "\xff", 1), -EILSEQ);

        _cleanup_free_ char *in = strprintf("{s: %s}", value);
        _cleanup_free_ char *e =
                resolve_error(HEAD "inputs:\n  - {name: s, type: string, validation: {pattern: "
                                   "\"(a+)+\"}}\n",
                              in);
        CHECK_STREQ(e, "bundle.yaml:4:17: module m: input 's' could not be checked against the "
                       "pattern (a+)+: matching took more than 1000000 steps (the pattern "
                       "backtracks too much)");
        /* A pattern cannot raise the limits. */
        _cleanup_regex_ struct regex *re2 = NULL;
        CHECK_INTEQ(regex_compile("(*LIMIT_MATCH=100000000)(a+)+", &re2, &error, &off), 0);
        if (re2)
                CHECK_INTEQ(regex_match(re2, value, strlen(value)), -E2BIG);
}

TEST(quoting_of_odd_values)
{
        _cleanup_free_ char *e = resolve_error(TYPES, "{sel: \"a\\n\\\"b\\x01\"}");
        CHECK_STREQ(e, "bundle.yaml:4:19: module m: input 'sel' must be one of: a, b; not "
                       "\"a\\n\\\"b\\x01\"");
}

TAP_MAIN
