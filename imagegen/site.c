#include "site.h"

#include "agekey.h"
#include "config.h"
#include "job.h"
#include "redis.h"
#include "fs.h"
#include "util.h"
#include "yaml.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const provider_names[] = {"hetzner", "digitalocean", "ec2", "nocloud"};

const char *provider_name(enum provider p)
{
        return provider_names[p];
}

size_t provider_limit(enum provider p)
{
        switch (p) {
        case PROVIDER_EC2:
                return 16384;
        case PROVIDER_HETZNER:
                return 32768;
        case PROVIDER_DIGITALOCEAN:
                return 65536;
        case PROVIDER_NOCLOUD:
                break;
        }
        return 0;
}

bool provider_takes_binary(enum provider p)
{
        return p == PROVIDER_EC2 || p == PROVIDER_NOCLOUD;
}

static bool is_name(const char *s)
{
        size_t n = strlen(s);
        return n > 0 && n <= 63 && strchr("abcdefghijklmnopqrstuvwxyz0123456789", s[0]) &&
               strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* RFC 1123 host name: dot-separated labels of [A-Za-z0-9-], not starting
 * or ending with '-', each 1..63, in all at most 253. */
static bool is_hostname(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > 253)
                return false;
        for (const char *p = s; *p;) {
                size_t l = strcspn(p, ".");
                if (l == 0 || l > 63 || p[0] == '-' || p[l - 1] == '-' ||
                    strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") !=
                            l)
                        return false;
                p += l;
                if (*p == '.' && *++p == '\0')
                        return false;
        }
        return true;
}

static bool is_ip(const char *s)
{
        unsigned char buf[16];
        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A value written as {env: NAME}: the variable's value, or an error at
 * the node. Returns NULL (nothing reported) when n is not such a map. */
static const char *env_ref(const struct node *n, struct diags *d, bool *failed)
{
        *failed = false;
        if (!n || n->kind != NODE_MAP)
                return NULL;
        const char *name = node_get_str(n, "env");
        if (n->n_items != 1 || !name) {
                diags_at(d, n, "'%s' must be a value or {env: VARIABLE}", n->key ? n->key : "");
                *failed = true;
                return NULL;
        }
        const char *v = getenv(name);
        if (!v) {
                diags_at(d, node_get(n, "env"),
                         "'%s' is taken from the environment variable %s, which is not set",
                         n->key ? n->key : "", name);
                *failed = true;
        }
        return v;
}

static const char *const site_keys[] = {
        "name",        "hostname",     "provider", "instance_id", "controller", "tls",  "hosts",
        "signing_key", "ship_modules", "modules",  "files",       "templates",  "jobs", NULL};

static void parse_controller(struct site *s, const struct node *c, struct secrets *sec,
                             struct diags *d)
{
        static const char *const keys[] = {"url", "token", NULL};
        if (!c || node_is_null(c) || !diags_expect_kind(d, c, NODE_MAP))
                return;
        diags_check_keys(d, c, "controller", keys);
        const char *url = diags_get_str(d, c, "url", true, "controller");
        if (url && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
                diags_at(d, node_get(c, "url"),
                         "'url' must be an http:// or https:// URL, not \"%s\"", url);
        s->controller_url = strdup_null(url);

        const struct node *t = node_get(c, "token");
        bool failed;
        const char *token = env_ref(t, d, &failed);
        if (failed)
                return;
        if (!token && t && !node_is_null(t))
                token = diags_get_str(d, c, "token", false, "controller");
        if (!token && (!t || node_is_null(t)) && sec) {
                _cleanup_free_ char *key = strprintf("%scontroller.token", s->secret_pfx);
                token = secrets_get(sec, key, SECRET_TOKEN);
        }
        if (token && strlen(token) < 16)
                diags_at(d, t ? t : c, "the controller token must be at least 16 characters");
        s->controller_token = strdup_null(token);
}

static void parse_tls(struct site *s, const struct node *t, bool want_tls, struct diags *d)
{
        static const char *const keys[] = {"mode", "domain", "email", "names", "ips", NULL};
        const char *mode = NULL;

        s->tls_mode = want_tls ? TLS_SELF_SIGNED : TLS_NONE;
        if (t && !node_is_null(t)) {
                if (!diags_expect_kind(d, t, NODE_MAP))
                        return;
                diags_check_keys(d, t, "tls", keys);
                s->tls_mode = TLS_SELF_SIGNED;
                mode = diags_get_str(d, t, "mode", false, "tls");
        }
        if (mode && streq(mode, "certbot"))
                s->tls_mode = TLS_CERTBOT;
        else if (mode && streq(mode, "none"))
                s->tls_mode = TLS_NONE;
        else if (mode && !streq(mode, "self-signed"))
                diags_at(d, node_get(t, "mode"),
                         "'mode' must be one of self-signed, certbot, none, not \"%s\"", mode);
        if (s->tls_mode == TLS_NONE)
                return;

        const char *domain = diags_get_str(d, t, "domain", s->tls_mode == TLS_CERTBOT, "tls");
        const char *email = diags_get_str(d, t, "email", s->tls_mode == TLS_CERTBOT, "tls");
        if (domain && !is_hostname(domain))
                diags_at(d, node_get(t, "domain"), "'domain' must be a DNS name, not \"%s\"",
                         domain);
        if (email && (!strchr(email, '@') || strchr(email, ' ')))
                diags_at(d, node_get(t, "email"), "'email' must be an e-mail address, not \"%s\"",
                         email);
        s->tls_domain = xstrdup(domain ? domain : s->hostname ? s->hostname : "localhost");
        s->tls_email = strdup_null(email);
        strv_extend(&s->tls_names, s->tls_domain);

        const char *lists[] = {"names", "ips"};
        for (size_t k = 0; k < ARRAY_SIZE(lists); k++) {
                const struct node *l = node_get(t, lists[k]);
                if (!l || node_is_null(l) || !diags_expect_kind(d, l, NODE_SEQ))
                        continue;
                for (size_t i = 0; i < l->n_items; i++) {
                        const struct node *e = l->items[i];
                        if (e->kind != NODE_SCALAR || (k == 0 && !is_hostname(e->value)) ||
                            (k == 1 && !is_ip(e->value))) {
                                diags_at(d, e, "tls %s: \"%s\" is not %s", lists[k],
                                         e->kind == NODE_SCALAR ? e->value : "a string",
                                         k == 0 ? "a DNS name" : "an IP address");
                                continue;
                        }
                        if (!strv_contains(k == 0 ? s->tls_names : s->tls_ips, e->value))
                                strv_extend(k == 0 ? &s->tls_names : &s->tls_ips, e->value);
                }
        }
}

/* The kind of secret an input's name asks for. */
static enum secret_kind secret_kind_for(const char *name)
{
        /* agent-manager's ENCRYPTION_KEY: base64 of exactly 32 bytes. */
        if (streq(name, "encryption_key"))
                return SECRET_KEY32;
        if (strstr(name, "token"))
                return SECRET_TOKEN;
        if (strstr(name, "key"))
                return SECRET_API_KEY;
        return SECRET_PASSWORD;
}

/* Whether in's visible_if holds for the values given (or defaulted):
 * a hidden input gets no generated secret (the agent would refuse it). */
static bool input_visible(const struct manifest *m, const struct manifest_input *in,
                          const struct node *given)
{
        for (size_t c = 0; c < in->n_visible_if; c++) {
                const struct manifest_condition *cond = &in->visible_if[c];
                const char *v = node_get_str(given, cond->name);
                if (!v)
                        v = m->inputs[cond->input].default_value;
                if (!v || !strv_contains(cond->values, v))
                        return false;
        }
        return true;
}

/* The inputs given in site.yaml, with {env: X} values replaced and
 * missing secrets filled in, ready for manifest_resolve_inputs(). */
static struct node *effective_inputs(const struct site *s, const struct site_module *sm,
                                     const struct node *given, struct secrets *sec, struct diags *d)
{
        struct node *eff = given && given->kind == NODE_MAP ? node_copy(given) : node_new(NODE_MAP);
        if (!eff)
                return NULL;
        if (given && given->kind == NODE_MAP)
                for (size_t i = 0; i < eff->n_items; i++) {
                        struct node *e = eff->items[i];
                        bool failed;
                        const char *v = env_ref(e, d, &failed);
                        if (!v)
                                continue;
                        struct node *sc = node_new_scalar(SCALAR_STR, v);
                        sc->key = e->key;
                        e->key = NULL;
                        sc->file = e->file;
                        sc->line = e->line;
                        sc->column = e->column;
                        sc->key_line = e->key_line;
                        sc->key_column = e->key_column;
                        node_free(e);
                        eff->items[i] = sc;
                }
        for (size_t i = 0; sec && i < sm->m->n_inputs; i++) {
                const struct manifest_input *in = &sm->m->inputs[i];
                /* A client secret is issued by another system (Keycloak):
                 * one made up here could never work, so it stays missing. */
                if (!in->sensitive || in->default_value || node_get(eff, in->name) ||
                    strstr(in->name, "client_secret") || !input_visible(sm->m, in, eff))
                        continue;
                _cleanup_free_ char *key = strprintf("%s%s.%s", s->secret_pfx, sm->id, in->name);
                const char *v = secrets_get(sec, key, secret_kind_for(in->name));
                if (v)
                        node_set_str(eff, in->name, v);
        }
        return eff;
}

/* The node module's apps (a list of maps, which a manifest's scalar
 * inputs cannot hold), checked here and handed to the templates as
 * modules.node.apps: ecosystem.config.js.tmpl and apps.env.js.tmpl. The
 * names and forms are PM2's (Unitech/pm2 lib/API/schema.json: exec_mode
 * cluster|fork, instances a number, cron_restart a cron pattern,
 * max_memory_restart /^\d+(G|M|K)?$/, autorestart a boolean, env). An
 * app's env values go only to apps.env.js (0600), never the ecosystem
 * file; a value may be {env: VARIABLE}. */
#define NODE_MAX_APPS 32

static char *absolute_clean_path(const char *p);

static bool is_app_name(const char *s)
{
        size_t n = strlen(s);
        /* PM2 takes "all" and a number as process ids, not names. */
        return n > 0 && n <= 64 && isalpha((unsigned char)s[0]) && !streq(s, "all") &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* What in an app name makes PM2 take it for a configuration file: PM2
 * 7.0.4's lib/Common.js isConfigFile looks for each of its
 * knonwConfigFileExtensions anywhere in the name (indexOf, case as is), and
 * lib/API.js delete, stop, restart and reload then read the name as a file
 * (actionFromJson), never as an app's: the node module's `pm2 delete NAME`
 * would open a file. NULL when the name holds none of them. */
static const char *pm2_config_part(const char *name)
{
        static const char *const parts[] = {".json",       ".yml",        ".yaml", ".config.js",
                                            ".config.cjs", ".config.mjs", NULL};
        for (size_t i = 0; parts[i]; i++)
                if (strstr(name, parts[i]))
                        return parts[i];
        return NULL;
}

static bool is_env_name(const char *s)
{
        size_t n = strlen(s);
        return n > 0 && n <= 128 && (isalpha((unsigned char)s[0]) || s[0] == '_') &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

/* Five or six fields of [0-9*,/-] or names (JAN, MON): what PM2's cron
 * library reads; a newline or a quote cannot be in one. */
static bool is_cron(const char *s)
{
        size_t fields = 0;
        for (const char *p = s; *p;) {
                size_t l = strspn(
                        p,
                        "0123456789*,/-?LW#ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
                if (l == 0)
                        return false;
                fields++;
                p += l;
                if (*p == ' ')
                        while (*p == ' ')
                                p++;
                else if (*p)
                        return false;
        }
        return fields == 5 || fields == 6;
}

static bool is_memory_size(const char *s)
{
        size_t n = strspn(s, "0123456789");
        return n > 0 && n <= 12 && (s[n] == '\0' || (strchr("GMK", s[n]) && s[n + 1] == '\0'));
}

/* A string scalar, or {env: NAME} (its value); NULL after a diagnostic. */
static const char *app_str(const struct node *n, const char *what, struct diags *d)
{
        bool failed;
        if (n->kind == NODE_MAP && (n->n_items != 1 || !node_get_str(n, "env"))) {
                diags_at(d, n, "%s must be a string or {env: VARIABLE}", what);
                return NULL;
        }
        const char *v = env_ref(n, d, &failed);
        if (failed)
                return NULL;
        if (v)
                return v;
        if (n->kind != NODE_SCALAR || node_is_null(n)) {
                diags_at(d, n, "%s must be a string, not %s", what, node_kind_name(n));
                return NULL;
        }
        return n->value;
}

/* An app's public_ports: a TCP port or a list of them (at most
 * NODE_MAX_PUBLIC_PORTS), each an integer 1-65535, which base's firewall
 * opens (open_app_ports()). Always a sequence, empty when none. */
#define NODE_MAX_PUBLIC_PORTS 8

static struct node *parse_public_ports(const struct node *n, const char *name, struct diags *d)
{
        struct node *list = node_new(NODE_SEQ);
        if (!n || node_is_null(n))
                return list;
        if (n->kind == NODE_MAP) {
                diags_at(d, n, "app %s: 'public_ports' must be a port number or a list of them",
                         name);
                return list;
        }
        size_t count = n->kind == NODE_SEQ ? n->n_items : 1;
        if (count > NODE_MAX_PUBLIC_PORTS)
                diags_at(d, n, "app %s: at most %d public_ports", name, NODE_MAX_PUBLIC_PORTS);
        for (size_t i = 0; i < count && i < NODE_MAX_PUBLIC_PORTS; i++) {
                const struct node *p = n->kind == NODE_SEQ ? n->items[i] : n;
                long long port;
                if (p->kind != NODE_SCALAR || node_resolve(p) != SCALAR_INT ||
                    node_as_int(p, &port) < 0 || port < 1 || port > 65535) {
                        bool scalar = p->kind == NODE_SCALAR;
                        /* "3000" quoted is a string: said, or the message
                         * would seem to refuse the number 3000. */
                        diags_at(d, p,
                                 "app %s: a public port must be an integer from 1 to 65535, not "
                                 "%s%s%s%s",
                                 name, scalar && node_resolve(p) == SCALAR_STR ? "the string " : "",
                                 scalar ? "\"" : "", scalar ? p->value : node_kind_name(p),
                                 scalar ? "\"" : "");
                        continue;
                }
                _cleanup_free_ char *text = strprintf("%lld", port);
                node_append(list, NULL, node_new_scalar(SCALAR_INT, text));
        }
        return list;
}

static struct node *parse_app(const struct node *a, const char *app_dir, struct diags *d)
{
        static const char *const keys[] = {
                "name",        "cwd",       "script",       "args",
                "exec_mode",   "instances", "cron_restart", "max_memory_restart",
                "autorestart", "env",       "public_ports", NULL};
        size_t before = d->n;

        if (!diags_expect_kind(d, a, NODE_MAP))
                return NULL;
        diags_check_keys(d, a, "an app (module node)", keys);
        const char *name = diags_get_str(d, a, "name", true, "app");
        const char *script = diags_get_str(d, a, "script", true, "app");
        const char *cwd = diags_get_str(d, a, "cwd", false, "app");
        const char *mode = diags_get_str(d, a, "exec_mode", false, "app");
        const char *cron = diags_get_str(d, a, "cron_restart", false, "app");
        const char *mem = diags_get_str(d, a, "max_memory_restart", false, "app");
        const struct node *inst = node_get(a, "instances");
        const struct node *autorestart = node_get(a, "autorestart");
        const struct node *args = node_get(a, "args");
        const struct node *env = node_get(a, "env");
        long long instances = 1;
        bool restart = true;

        if (name && !is_app_name(name))
                diags_at(d, node_get(a, "name"),
                         "app name must be a letter then letters, digits, '_', '.' or '-' (at "
                         "most 64, not \"all\"), not \"%s\"",
                         name);
        else if (name && pm2_config_part(name))
                diags_at(d, node_get(a, "name"),
                         "app %s: 'name' must not hold \"%s\": PM2 takes a name holding .json, "
                         ".yml, .yaml, .config.js, .config.cjs or .config.mjs for a configuration "
                         "file (pm2 delete would read it as one)",
                         name, pm2_config_part(name));
        if (script && (!*script || strlen(script) > 4096 || strchr(script, '\n')))
                diags_at(d, node_get(a, "script"),
                         "app %s: 'script' must be a file name or path on one line", name);
        _cleanup_free_ char *cwd_clean = cwd ? absolute_clean_path(cwd) : xstrdup(app_dir);
        if (!cwd_clean)
                diags_at(d, node_get(a, "cwd"),
                         "app %s: 'cwd' must be an absolute path without '.' or '..' components, "
                         "not \"%s\"",
                         name, cwd);
        if (mode && !streq(mode, "fork") && !streq(mode, "cluster"))
                diags_at(d, node_get(a, "exec_mode"),
                         "app %s: 'exec_mode' must be fork or cluster, not \"%s\"", name, mode);
        if (inst && (node_as_int(inst, &instances) < 0 || instances < 1 || instances > 256))
                diags_at(d, inst, "app %s: 'instances' must be a number from 1 to 256", name);
        if (cron && !is_cron(cron))
                diags_at(d, node_get(a, "cron_restart"),
                         "app %s: 'cron_restart' must be a cron pattern of 5 or 6 fields, not "
                         "\"%s\"",
                         name, cron);
        if (mem && !is_memory_size(mem))
                diags_at(d, node_get(a, "max_memory_restart"),
                         "app %s: 'max_memory_restart' must be a number of bytes or like 300M, "
                         "512K, 1G, not \"%s\"",
                         name, mem);
        if (autorestart && node_as_bool(autorestart, &restart) < 0)
                diags_at(d, autorestart, "app %s: 'autorestart' must be true or false", name);

        struct node *out = node_new(NODE_MAP);
        struct node *argv = node_new(NODE_SEQ);
        if (args && !node_is_null(args)) {
                if (args->kind == NODE_SCALAR)
                        node_append(argv, NULL, node_new_scalar(SCALAR_STR, args->value));
                else if (args->kind == NODE_SEQ)
                        for (size_t i = 0; i < args->n_items; i++) {
                                const char *v = app_str(args->items[i], "an argument", d);
                                if (v)
                                        node_append(argv, NULL, node_new_scalar(SCALAR_STR, v));
                        }
                else
                        diags_at(d, args, "app %s: 'args' must be a list of strings", name);
        }
        struct node *ports = parse_public_ports(node_get(a, "public_ports"), name, d);
        struct node *envs = node_new(NODE_SEQ);
        if (env && !node_is_null(env) && diags_expect_kind(d, env, NODE_MAP)) {
                for (size_t i = 0; i < env->n_items; i++) {
                        const struct node *e = env->items[i];
                        if (!is_env_name(e->key)) {
                                diags_add(d, e->file, e->key_line, e->key_column,
                                          "app %s: '%s' is not an environment variable name", name,
                                          e->key);
                                continue;
                        }
                        const char *v = app_str(e, "an environment value", d);
                        if (!v)
                                continue;
                        struct node *kv = node_new(NODE_MAP);
                        node_set_str(kv, "key", e->key);
                        node_set_str(kv, "value", v);
                        node_append(envs, NULL, kv);
                }
        }
        node_set_str(out, "name", name);
        node_set_str(out, "script", script);
        node_set_str(out, "cwd", cwd_clean);
        node_set(out, "args", argv);
        node_set_str(out, "exec_mode", mode ? mode : "fork");
        node_set_int(out, "instances", instances);
        if (cron)
                node_set_str(out, "cron_restart", cron);
        if (mem)
                node_set_str(out, "max_memory_restart", mem);
        node_set_bool(out, "autorestart", restart);
        node_set(out, "env", envs);
        node_set(out, "public_ports", ports);
        if (d->n > before) {
                node_free(out);
                return NULL;
        }
        return out;
}

static struct node *parse_node_apps(const struct node *apps, const char *app_dir, struct diags *d)
{
        struct node *list = node_new(NODE_SEQ);
        if (!apps || node_is_null(apps) || !diags_expect_kind(d, apps, NODE_SEQ))
                return list;
        if (apps->n_items > NODE_MAX_APPS)
                diags_at(d, apps, "module node: at most %d apps", NODE_MAX_APPS);
        for (size_t i = 0; i < apps->n_items && i < NODE_MAX_APPS; i++) {
                struct node *app = parse_app(apps->items[i], app_dir, d);
                if (!app)
                        continue;
                const char *name = node_get_str(app, "name");
                for (size_t k = 0; k < list->n_items; k++)
                        if (streq(node_get_str(list->items[k], "name"), name))
                                diags_at(d, node_get(apps->items[i], "name"),
                                         "module node: app %s is listed twice", name);
                node_append(list, NULL, app);
        }
        return list;
}

static struct manifest *find_manifest(const struct site *s, const char *id)
{
        for (size_t i = 0; i < s->n_modules; i++)
                if (streq(s->modules[i].id, id))
                        return s->modules[i].m;
        return NULL;
}

static void parse_modules(struct site *s, const struct node *mods, const struct site_options *o,
                          struct diags *d)
{
        if (!mods || node_is_null(mods))
                return;
        if (!diags_expect_kind(d, mods, NODE_MAP))
                return;
        s->modules = xcalloc(mods->n_items, sizeof(*s->modules));
        for (size_t i = 0; i < mods->n_items; i++) {
                const struct node *e = mods->items[i];
                struct site_module *sm = &s->modules[s->n_modules];
                if (!manifest_id_is_valid(e->key)) {
                        diags_at(d, e, "'%s' is not a valid module id", e->key);
                        continue;
                }
                _cleanup_free_ char *dir = strprintf("%s/%s", o->modules_dir, e->key);
                _cleanup_free_ char *mpath = strprintf("%s/%s", dir, MANIFEST_FILE);
                if (!path_exists(mpath)) {
                        diags_add(d, e->file, e->key_line, e->key_column,
                                  "module '%s' not found (no %s)", e->key, mpath);
                        continue;
                }
                struct manifest *m = o->like ? find_manifest(o->like, e->key) : NULL;
                if (!m && manifest_load(mpath, &m, d) < 0)
                        continue;
                if (!streq(m->id, e->key)) {
                        diags_add(d, e->file, e->key_line, e->key_column,
                                  "module '%s': %s declares id '%s'", e->key, mpath, m->id);
                        manifest_free(m);
                        continue;
                }
                sm->id = xstrdup(e->key);
                sm->where = e;
                sm->m = m;
                sm->dir = TAKE_PTR(dir);
                s->n_modules++;
                if (!node_is_null(e) && e->kind != NODE_MAP) {
                        diags_at(d, e, "module %s: the inputs must be a mapping, not %s", sm->id,
                                 node_kind_name(e));
                        continue;
                }
                /* The node module's apps are not a manifest input. */
                _cleanup_node_ struct node *given = NULL;
                const struct node *apps = NULL;
                if (streq(sm->id, "node") && (apps = node_get(e, "apps"))) {
                        given = node_new(NODE_MAP);
                        for (size_t k = 0; k < e->n_items; k++)
                                if (e->items[k] != apps)
                                        node_append(given, e->items[k]->key,
                                                    node_copy(e->items[k]));
                }
                _cleanup_node_ struct node *eff =
                        effective_inputs(s, sm, given ? given : e, o->secrets, d);
                if (eff)
                        manifest_resolve_inputs(m, eff, e, d, &sm->values);
                if (streq(sm->id, "node")) {
                        const char *app_dir = input_values_get(&sm->values, "app_dir");
                        sm->extra = node_new(NODE_MAP);
                        node_set(sm->extra, "apps",
                                 parse_node_apps(apps, app_dir ? app_dir : "/", d));
                }
        }
}

/* jobs: the jobs agent (README "Jobs"), configured by a firstboot.conf.d
 * drop-in and the shared secret, both shipped 0600, and enabled at first
 * boot by the module SITE_JOBS_MODULE, added here as if listed. The keys
 * are firstboot.conf's jobs.* (checked by config.c), but for secret_file:
 * the secret is generated (in the state, like every other secret) or
 * {file: PATH}, and always lands at SITE_JOBS_SECRET. */
static void parse_jobs(struct site *s, const struct node *j, const struct site_options *o,
                       struct diags *d)
{
        static const char *const keys[] = {
                "redis_url",     "agent_id",       "secret",      "max_job_bytes", "max_skew_s",
                "result_ttl_s",  "stop_timeout_s", "heartbeat_s", "metrics_file",  "tls_ca_file",
                "tls_cert_file", "tls_key_file",   NULL};
        static const char *const own[] = {"redis_url",    "agent_id",    "metrics_file",
                                          "secret_file",  "tls_ca_file", "tls_cert_file",
                                          "tls_key_file", NULL};
        static const char *const tls[] = {"tls_ca_file", "tls_cert_file", "tls_key_file"};
        bool plain = false; /* a redis:// URL, parsed: no TLS files then */
        static const char *const nums[] = {"max_job_bytes", "max_skew_s", "result_ttl_s",
                                           "stop_timeout_s", "heartbeat_s"};
        size_t before = d->n;
        bool failed;

        if (!j || node_is_null(j) || !diags_expect_kind(d, j, NODE_MAP))
                return;
        diags_check_keys(d, j, "jobs", keys);
        config_check_jobs(j, own, d);
        _cleanup_node_ struct node *conf = node_new(NODE_MAP);
        struct node *jobs = node_new(NODE_MAP);
        node_set(conf, "jobs", jobs);

        const struct node *u = node_get(j, "redis_url");
        const char *url = env_ref(u, d, &failed);
        if (!url && !failed)
                url = diags_get_str(d, j, "redis_url", true, "jobs");
        if (url) {
                struct redis_url ru = {0};
                _cleanup_free_ char *err = NULL;
                if (redis_url_parse(url, &ru, &err) < 0)
                        diags_at(d, u, "jobs: 'redis_url': %s", err);
                else
                        plain = !ru.tls;
                redis_url_done(&ru);
                node_set_str(jobs, "redis_url", url);
        }
        const char *agent = diags_get_str(d, j, "agent_id", false, "jobs");
        if (agent && !job_agent_id_is_valid(agent))
                diags_at(d, node_get(j, "agent_id"),
                         "jobs: 'agent_id' must be 1 to %d letters, digits, '.', '_' or '-', not "
                         "\"%s\"",
                         JOB_AGENT_ID_MAX, agent);
        else if (agent)
                node_set_str(jobs, "agent_id", agent);
        node_set_str(jobs, "secret_file", SITE_JOBS_SECRET);
        for (size_t i = 0; i < ARRAY_SIZE(nums); i++) {
                long long v;
                const struct node *n = node_get(j, nums[i]);
                if (n && node_as_int(n, &v) >= 0)
                        node_set_int(jobs, nums[i], v);
        }
        /* Paths in the image (put there by a module or the image itself). */
        for (size_t i = 0; i < ARRAY_SIZE(tls); i++) {
                const char *f = diags_get_str(d, j, tls[i], false, "jobs");
                if (!f)
                        continue;
                if (!config_jobs_path_ok(tls[i], f)) {
                        _cleanup_free_ char *q = quote_for_message(f);
                        diags_at(d, node_get(j, tls[i]),
                                 "jobs: '%s' must be an absolute path in the image, not %s", tls[i],
                                 q);
                } else if (plain)
                        diags_at(d, node_get(j, tls[i]),
                                 "jobs: '%s' is for a rediss:// (TLS) redis_url", tls[i]);
                else
                        node_set_str(jobs, tls[i], f);
        }
        if (!node_get(j, "tls_cert_file") != !node_get(j, "tls_key_file"))
                diags_at(d,
                         node_get(j,
                                  node_get(j, "tls_cert_file") ? "tls_cert_file" : "tls_key_file"),
                         "jobs: 'tls_cert_file' and 'tls_key_file' go together");
        const char *metrics = diags_get_str(d, j, "metrics_file", false, "jobs");
        if (metrics) {
                if (!config_jobs_path_ok("metrics_file", metrics)) {
                        _cleanup_free_ char *q = quote_for_message(metrics);
                        diags_at(d, node_get(j, "metrics_file"),
                                 "jobs: 'metrics_file' must be an absolute path to a .prom file "
                                 "(in node_exporter's --collector.textfile.directory), not %s",
                                 q);
                } else
                        node_set_str(jobs, "metrics_file", metrics);
        }

        const struct node *sec = node_get(j, "secret");
        _cleanup_free_ char *secret = NULL;
        if (sec && !node_is_null(sec)) {
                const char *file = sec->kind == NODE_MAP && sec->n_items == 1
                                           ? node_get_str(sec, "file")
                                           : NULL;
                if (!file || !*file) {
                        diags_at(d, sec,
                                 "jobs: 'secret' must be {file: PATH} (or left out: generated)");
                } else {
                        _cleanup_free_ char *path =
                                file[0] == '/' ? xstrdup(file) : strprintf("%s/%s", s->dir, file);
                        const struct node *at = node_get(sec, "file");
                        _cleanup_free_ char *why = NULL;
                        size_t len = 0;
                        if (job_secret_read(AT_FDCWD, path, 0, &secret, &len, &why) < 0)
                                diags_at(d, at, "jobs: 'secret': %s", why);
                }
        } else if (o->secrets) {
                _cleanup_free_ char *key = strprintf("%sjobs.secret", s->secret_pfx);
                const char *v = secrets_get(o->secrets, key, SECRET_TOKEN);
                secret = strdup_null(v);
        }

        if (find_manifest(s, SITE_JOBS_MODULE))
                diags_at(d, node_get(node_get(s->doc, "modules"), SITE_JOBS_MODULE),
                         "module %s is added by jobs: (it enables the agent); do not list it",
                         SITE_JOBS_MODULE);
        _cleanup_free_ char *dir = strprintf("%s/%s", o->modules_dir, SITE_JOBS_MODULE);
        _cleanup_free_ char *mpath = strprintf("%s/%s", dir, MANIFEST_FILE);
        struct manifest *m = o->like ? find_manifest(o->like, SITE_JOBS_MODULE) : NULL;
        if (!m && !path_exists(mpath)) {
                diags_at(d, j, "jobs: the module %s, which enables the agent, is not in %s",
                         SITE_JOBS_MODULE, o->modules_dir);
                return;
        }
        if (!m && manifest_load(mpath, &m, d) < 0)
                return;
        if (d->n > before) {
                if (!o->like)
                        manifest_free(m);
                return;
        }
        s->modules = xrealloc(s->modules, (s->n_modules + 1) * sizeof(*s->modules));
        s->modules[s->n_modules++] = (struct site_module){
                .id = xstrdup(SITE_JOBS_MODULE), .where = j, .m = m, .dir = TAKE_PTR(dir)};
        _cleanup_free_ char *yaml = NULL;
        if (yaml_format(conf, &yaml) < 0)
                abort();
        s->jobs_conf =
                strprintf("# The jobs agent's settings (firstboot.conf(5), jobs:), rendered by "
                          "imagegen from site.yaml.\n%s",
                          yaml);
        s->jobs_secret = TAKE_PTR(secret);
}

static bool module_enabled(const struct site *s, const char *id)
{
        for (size_t i = 0; i < s->n_modules; i++)
                if (streq(s->modules[i].id, id))
                        return true;
        return false;
}

static char *absolute_clean_path(const char *p)
{
        if (p[0] != '/' || strstr(p, "/../") || strstr(p, "/./") || strstr(p, "//") ||
            endswith(p, "/..") || endswith(p, "/.") || (strlen(p) > 1 && endswith(p, "/")))
                return NULL;
        return xstrdup(p);
}

/* One file or template entry: {path, source|template, mode, owner, when,
 * format}; base is the directory source/template is relative to. */
static void add_file(struct site *s, const struct node *f, const char *base, bool is_template,
                     bool check_when, struct diags *d)
{
        static const char *const file_keys[] = {"path", "source", "mode", "owner", NULL};
        static const char *const tmpl_keys[] = {"template", "path",   "mode",
                                                "owner",    "format", NULL};
        static const char *const index_keys[] = {"template", "path", "mode", "owner",
                                                 "format",   "when", NULL};
        const char *what = is_template ? "a templates entry" : "a files entry";

        if (!diags_expect_kind(d, f, NODE_MAP))
                return;
        diags_check_keys(d, f, what, check_when ? index_keys : is_template ? tmpl_keys : file_keys);
        if (check_when) {
                const struct node *w = node_get(f, "when");
                if (w && !node_is_null(w)) {
                        if (!diags_expect_kind(d, w, NODE_SEQ))
                                return;
                        for (size_t i = 0; i < w->n_items; i++)
                                if (w->items[i]->kind != NODE_SCALAR ||
                                    !module_enabled(s, w->items[i]->value))
                                        return;
                }
        }
        const char *src_key = is_template ? "template" : "source";
        const char *path = diags_get_str(d, f, "path", true, what);
        const char *src = diags_get_str(d, f, src_key, true, what);
        const char *mode = diags_get_str(d, f, "mode", false, what);
        const char *owner = diags_get_str(d, f, "owner", false, what);
        const char *format = is_template ? diags_get_str(d, f, "format", false, what) : NULL;
        struct site_file sf = {.mode = 0644, .is_template = is_template, .where = f};

        if (path && !(sf.path = absolute_clean_path(path)))
                diags_at(d, node_get(f, "path"),
                         "'path' must be an absolute path without '.' or '..' components, not "
                         "\"%s\"",
                         path);
        if (src && !path_is_safe_relative(src))
                diags_at(d, node_get(f, src_key),
                         "'%s' must be a relative path without '..', not \"%s\"", src_key, src);
        else if (src) {
                sf.source = strprintf("%s/%s", base, src);
                if (access(sf.source, R_OK) < 0)
                        diags_at(d, node_get(f, src_key), "cannot read %s: %s", sf.source,
                                 strerror(errno));
        }
        if (mode && parse_mode(mode, &sf.mode) < 0)
                diags_at(d, node_get(f, "mode"),
                         "'mode' must be an octal mode like \"0600\", not \"%s\"", mode);
        if (owner && (!*owner || strchr(owner, ' ')))
                diags_at(d, node_get(f, "owner"), "'owner' must be \"user\" or \"user:group\"");
        sf.owner = strdup_null(owner);
        if (is_template)
                sf.format = tmpl_format_for(src ? src : "");
        if (format && tmpl_format_from_string(format, &sf.format) < 0)
                diags_at(d, node_get(f, "format"),
                         "'format' must be one of raw, yaml, compose, env, nginx, shell, js, not "
                         "\"%s\"",
                         format);
        /* An earlier entry without a valid path has none (NULL). */
        for (size_t i = 0; sf.path && i < s->n_files; i++)
                if (s->files[i].path && streq(s->files[i].path, sf.path))
                        diags_at(d, node_get(f, "path"), "%s is already written by %s:%u", sf.path,
                                 s->files[i].where->file, s->files[i].where->line);
        s->files = xrealloc(s->files, (s->n_files + 1) * sizeof(*s->files));
        s->files[s->n_files++] = sf;
}

static void parse_files(struct site *s, const struct node *l, const char *base, bool is_template,
                        bool check_when, struct diags *d)
{
        if (!l || node_is_null(l) || !diags_expect_kind(d, l, NODE_SEQ))
                return;
        for (size_t i = 0; i < l->n_items; i++)
                add_file(s, l->items[i], base, is_template, check_when, d);
}

/* hosts: [{hostname, instance_id}]: checks them all, and picks the one
 * asked for (or the first): its names replace the site's. */
static int cmp_host(const void *a, const void *b)
{
        const struct node *const *x = a, *const *y = b;
        int c = strcmp(node_get_str(*x, "hostname"), node_get_str(*y, "hostname"));
        /* Equal names in the order they are listed: the later is reported. */
        return c                          ? c
               : (*x)->line != (*y)->line ? ((*x)->line < (*y)->line ? -1 : 1)
                                          : ((*x)->column < (*y)->column ? -1 : 1);
}

static int pick_host(struct site *s, const struct node *h, const char **hostname, const char **iid)
{
        *hostname = node_get_str(h, "hostname");
        *iid = node_get_str(h, "instance_id");
        if (!*iid)
                *iid = *hostname;
        free(s->secret_pfx);
        s->secret_pfx = strprintf("%s/", *hostname);
        return 0;
}

/* Checks the whole list; not with o->like (another host's site, which did). */
static int parse_hosts(struct site *s, const struct node *hosts, const struct site_options *o,
                       const char **hostname, const char **iid, struct diags *d)
{
        static const char *const keys[] = {"hostname", "instance_id", NULL};
        const char *want = o->host;
        const struct node *picked = NULL;
        size_t before = d->n, n = 0;

        if (o->like) {
                for (size_t i = 0; !picked && i < hosts->n_items; i++)
                        if (streq_ptr(want, node_get_str(hosts->items[i], "hostname")))
                                picked = hosts->items[i];
                if (!picked) {
                        diags_at(d, hosts, "no host %s in 'hosts'", want);
                        return -EBADMSG;
                }
                /* Only this host: a fleet's list is the first site's. */
                s->hosts = xcalloc(2, sizeof(char *));
                s->hosts[0] = xstrdup(node_get_str(picked, "hostname"));
                return pick_host(s, picked, hostname, iid);
        }
        if (!diags_expect_kind(d, hosts, NODE_SEQ))
                return -EBADMSG;
        if (hosts->n_items == 0)
                diags_at(d, hosts, "'hosts' must list at least one host");
        if (node_get(s->doc, "hostname") || node_get(s->doc, "instance_id"))
                diags_at(d, hosts,
                         "with 'hosts', each host has its own hostname and instance_id: remove "
                         "the top-level ones");
        _cleanup_free_ const struct node **named = xcalloc(hosts->n_items + 1, sizeof(*named));
        for (size_t i = 0; i < hosts->n_items; i++) {
                const struct node *h = hosts->items[i];
                if (!diags_expect_kind(d, h, NODE_MAP))
                        continue;
                diags_check_keys(d, h, "a hosts entry", keys);
                const char *hn = diags_get_str(d, h, "hostname", true, "hosts entry");
                const char *id = diags_get_str(d, h, "instance_id", false, "hosts entry");
                if (!hn)
                        continue;
                if (!is_hostname(hn))
                        diags_at(d, node_get(h, "hostname"),
                                 "'hostname' must be a host name, not \"%s\"", hn);
                else
                        named[n++] = h;
                if (id && (!*id || strlen(id) > 128 || strpbrk(id, " \t\n/")))
                        diags_at(d, node_get(h, "instance_id"),
                                 "'instance_id' must be 1..128 characters without spaces or '/'");
                if (!picked && (!want || streq(want, hn)))
                        picked = h;
        }
        /* The names in order for the caller; duplicates found sorted. */
        s->hosts = xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
                s->hosts[i] = xstrdup(node_get_str(named[i], "hostname"));
        qsort(named, n, sizeof(*named), cmp_host);
        for (size_t i = 1; i < n; i++)
                if (streq(node_get_str(named[i - 1], "hostname"),
                          node_get_str(named[i], "hostname")))
                        diags_at(d, node_get(named[i], "hostname"), "host %s is listed twice",
                                 node_get_str(named[i], "hostname"));
        if (d->n > before)
                return -EBADMSG;
        if (!picked) {
                diags_at(d, hosts, "no host %s in 'hosts'", want);
                return -EBADMSG;
        }
        return pick_host(s, picked, hostname, iid);
}

/* colonyos' grpc_upstream is for a colonies build that serves gRPC. No
 * colonies release has a gRPC listener (v1.8.19 run, v1.9.12 read: its
 * only gRPC endpoint is the embedded etcd's), so the route set with a
 * released image or release download is refused here, not left to fail
 * on the server. A binary already on the server (no binary_url) or
 * another image may be such a build. */
static void check_colonyos(const struct site *s, struct diags *d)
{
        for (size_t i = 0; i < s->n_modules; i++) {
                const struct site_module *sm = &s->modules[i];
                if (!streq(sm->id, "colonyos"))
                        continue;
                const char *grpc = input_values_get(&sm->values, "grpc_upstream");
                if (!grpc || !*grpc)
                        return;
                const char *image = input_values_get(&sm->values, "image");
                const char *url = input_values_get(&sm->values, "binary_url");
                const char *rel = NULL;
                if (image && (startswith(image, "colonyos/colonies:") ||
                              startswith(image, "colonyos/colonies@") ||
                              startswith(image, "docker.io/colonyos/colonies:") ||
                              streq(image, "colonyos/colonies")))
                        rel = image;
                else if (url && strstr(url, "github.com/colonyos/colonies/releases/"))
                        rel = url;
                if (!rel)
                        return;
                const struct node *at = node_get(sm->where, "grpc_upstream");
                diags_at(d, at ? at : sm->where,
                         "module colonyos: grpc_upstream is for a colonies build that serves gRPC, "
                         "and %s is a colonies release: none has a gRPC listener (its API is HTTP "
                         "on http_port, which nginx serves); leave grpc_upstream empty or point "
                         "%s at such a build",
                         rel, rel == image ? "image" : "binary_url");
                return;
        }
}

/* The ports of one host that agent-manager's four must not share: nginx
 * listens on http_port and ws_port on every address, the app on app_port
 * and app_ws_port (on every address with the host's network), beside
 * nginx's 80 and 443, colonies' API and its embedded etcd (2379-2381,
 * every interface: ../shared/upstream-facts/colonies.md), PostgreSQL and
 * Redis. Two of them the same is refused at the agent-manager input. */
static void check_agent_manager(const struct site *s, struct diags *d)
{
        static const char *const am_ports[] = {"http_port", "ws_port", "app_port", "app_ws_port"};
        struct {
                const char *what;
                unsigned long port;
        } taken[16];
        size_t n = 0;
        const struct site_module *am = NULL;

        for (size_t i = 0; i < s->n_modules; i++) {
                const struct site_module *sm = &s->modules[i];
                const char *v;
                if (streq(sm->id, "agent-manager"))
                        am = sm;
                else if (streq(sm->id, "nginx")) {
                        taken[n++] = (typeof(taken[0])){"nginx's HTTP port", 80};
                        taken[n++] = (typeof(taken[0])){"nginx's HTTPS port", 443};
                } else if (streq(sm->id, "colonyos")) {
                        if ((v = input_values_get(&sm->values, "http_port")))
                                taken[n++] = (typeof(taken[0])){"colonyos' http_port",
                                                                strtoul(v, NULL, 10)};
                        taken[n++] = (typeof(taken[0])){"colonies' etcd client port", 2379};
                        taken[n++] = (typeof(taken[0])){"colonies' etcd peer port", 2380};
                        taken[n++] = (typeof(taken[0])){"colonies' relay port", 2381};
                } else if (streq(sm->id, "postgres") || streq(sm->id, "redis")) {
                        if ((v = input_values_get(&sm->values, "port")))
                                taken[n++] = (typeof(taken[0])){streq(sm->id, "postgres")
                                                                        ? "postgres' port"
                                                                        : "redis' port",
                                                                strtoul(v, NULL, 10)};
                }
        }
        if (!am)
                return;
        for (size_t k = 0; k < ARRAY_SIZE(am_ports); k++) {
                const char *v = input_values_get(&am->values, am_ports[k]);
                if (!v)
                        continue;
                unsigned long p = strtoul(v, NULL, 10);
                const struct node *at = node_get(am->where, am_ports[k]);
                for (size_t j = 0; j < n; j++)
                        if (taken[j].port == p) {
                                diags_at(d, at ? at : am->where,
                                         "module agent-manager: %s %lu is also %s: each needs "
                                         "a port of its own",
                                         am_ports[k], p, taken[j].what);
                                break;
                        }
                taken[n++] = (typeof(taken[0])){am_ports[k], p};
        }
}

/* Whether the firewall_ports text list already opens TCP port p (as
 * "P" or "P/tcp"; a range is left to ufw, which keeps both). */
static bool ports_list_has(const char *list, const char *p)
{
        size_t n = strlen(p);
        for (const char *t = list; *t;) {
                size_t l = strcspn(t, " ,");
                if (l >= n && strncmp(t, p, n) == 0 &&
                    (l == n || (l == n + 4 && strncmp(t + n, "/tcp", 4) == 0)))
                        return true;
                t += l;
                t += strspn(t, " ,");
        }
        return false;
}

/* The node apps' public_ports are opened by base's firewall: added here to
 * base's firewall_ports, so the modules stay apart (node knows nothing of
 * ufw) and base, whose digest the input is part of, runs again when an
 * app's port comes or goes, and closes a port no longer listed. Without
 * base, or with its firewall off (firewall_ports is then no input),
 * nothing filters the ports and nothing is added. */
static void open_app_ports(struct site *s, struct diags *d)
{
        struct site_module *base = NULL, *node = NULL;
        for (size_t i = 0; i < s->n_modules; i++) {
                if (streq(s->modules[i].id, "base"))
                        base = &s->modules[i];
                else if (streq(s->modules[i].id, "node"))
                        node = &s->modules[i];
        }
        if (!base || !node || !node->extra)
                return;
        struct input_value *fw = NULL;
        for (size_t k = 0; k < base->values.n; k++)
                if (streq(base->values.v[k].name, "firewall_ports"))
                        fw = &base->values.v[k];
        if (!fw)
                return;
        _cleanup_(buf_free) struct buf b = {0};
        buf_puts(&b, fw->value);
        const struct node *apps = node_get(node->extra, "apps");
        for (size_t i = 0; apps && i < apps->n_items; i++) {
                const struct node *ports = node_get(apps->items[i], "public_ports");
                for (size_t k = 0; ports && k < ports->n_items; k++) {
                        const char *p = ports->items[k]->value;
                        if (ports_list_has(b.data ? b.data : "", p))
                                continue;
                        buf_printf(&b, "%s%s/tcp", b.len ? " " : "", p);
                }
        }
        const struct manifest_input *mi = manifest_find_input(base->m, "firewall_ports");
        if (mi && mi->max_length >= 0 && (long long)b.len > mi->max_length) {
                const struct node *at = node_get(node->where, "apps");
                diags_at(d, at ? at : node->where,
                         "module node: the apps' public_ports and base's firewall_ports are "
                         "%zu characters together; base takes at most %lld",
                         b.len, mi->max_length);
                return;
        }
        free(fw->value);
        fw->value = buf_steal(&b);
}

/* node: an https repo_url with a user or token before the host
 * (https://TOKEN@host/..., which git hosts take) is refused: repo_url is
 * not sensitive and lands in the bundle and the logs; the token belongs
 * in deploy_token. The value is not repeated in the message. */
static void check_node(const struct site *s, struct diags *d)
{
        for (size_t i = 0; i < s->n_modules; i++) {
                const struct site_module *sm = &s->modules[i];
                if (!streq(sm->id, "node"))
                        continue;
                const char *url = input_values_get(&sm->values, "repo_url");
                if (!url || !startswith(url, "https://"))
                        return;
                const char *host = url + strlen("https://");
                if (memchr(host, '@', strcspn(host, "/?#"))) {
                        const struct node *at = node_get(sm->where, "repo_url");
                        diags_at(d, at ? at : sm->where,
                                 "module node: repo_url holds a user, password or token before "
                                 "the host (https://TOKEN@host/...): give the token as "
                                 "deploy_token, which is kept secret");
                }
                return;
        }
}

/* backup: the age recipients checked as age takes them (agekey.h), so a
 * typo is refused here and not at the first backup; and something to back
 * up (the postgres module or mysql_database). */
static void check_backup(const struct site *s, struct diags *d)
{
        for (size_t i = 0; i < s->n_modules; i++) {
                const struct site_module *sm = &s->modules[i];
                if (!streq(sm->id, "backup"))
                        continue;
                const char *list = input_values_get(&sm->values, "age_recipients");
                const struct node *at = node_get(sm->where, "age_recipients");
                size_t index, offset;
                const char *why;
                if (list && age_recipients_check(list, &index, &offset, &why) < 0) {
                        if (index == 0)
                                diags_at(d, at ? at : sm->where,
                                         "module backup: age_recipients: %s", why);
                        else
                                diags_at(d, at ? at : sm->where,
                                         "module backup: age_recipients: recipient %zu "
                                         "(\"%.16s...\"): "
                                         "%s",
                                         index, list + offset, why);
                }
                const char *mysql = input_values_get(&sm->values, "mysql_database");
                if (!module_enabled(s, "postgres") && (!mysql || !*mysql))
                        diags_at(d, sm->where,
                                 "module backup: nothing to back up: add the postgres module or "
                                 "set mysql_database");
                return;
        }
}

int site_load(const char *path, const struct site_options *o, struct site **ret, struct diags *d)
{
        _cleanup_site_ struct site *s = xcalloc(1, sizeof(*s));
        size_t before = d->n;
        int r;

        s->path = xstrdup(path);
        _cleanup_free_ char *copy = xstrdup(path);
        s->dir = xstrdup(dirname(copy));
        if (o->like) {
                s->borrowed = true;
                s->doc = o->like->doc;
        } else {
                r = yaml_parse_file(path, 0, &s->doc, d);
                if (r < 0)
                        return r;
        }
        const struct node *doc = s->doc;
        if (!diags_expect_kind(d, doc, NODE_MAP))
                return -EBADMSG;
        diags_check_keys(d, doc, "site.yaml", site_keys);

        const struct node *hosts = node_get(doc, "hosts");
        const char *name = diags_get_str(d, doc, "name", true, "site.yaml");
        const char *hostname = diags_get_str(d, doc, "hostname", !hosts, "site.yaml");
        const char *provider = diags_get_str(d, doc, "provider", true, "site.yaml");
        const char *iid = diags_get_str(d, doc, "instance_id", false, "site.yaml");
        const char *key = diags_get_str(d, doc, "signing_key", false, "site.yaml");
        if (name && !is_name(name))
                diags_at(d, node_get(doc, "name"),
                         "'name' must be lowercase letters, digits and '-' (at most 63), not "
                         "\"%s\"",
                         name);
        if (hostname && !is_hostname(hostname))
                diags_at(d, node_get(doc, "hostname"), "'hostname' must be a host name, not \"%s\"",
                         hostname);
        s->secret_pfx = xstrdup("");
        if (hosts && parse_hosts(s, hosts, o, &hostname, &iid, d) < 0)
                return -EBADMSG;
        s->name = strdup_null(name);
        s->hostname = strdup_null(hostname);
        s->provider = PROVIDER_NOCLOUD;
        if (provider) {
                size_t i;
                for (i = 0; i < ARRAY_SIZE(provider_names); i++)
                        if (streq(provider, provider_names[i]))
                                break;
                if (i < ARRAY_SIZE(provider_names))
                        s->provider = (enum provider)i;
                else
                        diags_at(d, node_get(doc, "provider"),
                                 "'provider' must be one of hetzner, digitalocean, ec2, nocloud, "
                                 "not \"%s\"",
                                 provider);
        }
        if (iid && (!*iid || strlen(iid) > 128 || strpbrk(iid, " \t\n/")))
                diags_at(d, node_get(doc, "instance_id"),
                         "'instance_id' must be 1..128 characters without spaces or '/'");
        s->instance_id = xstrdup(iid ? iid : name ? name : "site");
        if (key) {
                s->signing_key = key[0] == '/' ? xstrdup(key) : strprintf("%s/%s", s->dir, key);
                if (access(s->signing_key, R_OK) < 0)
                        diags_at(d, node_get(doc, "signing_key"), "cannot read %s: %s",
                                 s->signing_key, strerror(errno));
        }
        s->ship_modules = true;
        const struct node *ship = node_get(doc, "ship_modules");
        if (ship && node_as_bool(ship, &s->ship_modules) < 0)
                diags_at(d, ship, "'ship_modules' must be true or false, not %s",
                         node_kind_name(ship));

        parse_controller(s, node_get(doc, "controller"), o->secrets, d);
        parse_modules(s, node_get(doc, "modules"), o, d);
        parse_jobs(s, node_get(doc, "jobs"), o, d);
        open_app_ports(s, d);
        check_node(s, d);
        check_colonyos(s, d);
        check_agent_manager(s, d);
        check_backup(s, d);
        parse_tls(s, node_get(doc, "tls"), module_enabled(s, "nginx"), d);

        if (o->templates_dir) {
                _cleanup_free_ char *index = strprintf("%s/index.yml", o->templates_dir);
                if (o->like)
                        s->templates_index = o->like->templates_index;
                else if (path_exists(index))
                        yaml_parse_file(index, 0, &s->templates_index, d);
                if (s->templates_index)
                        parse_files(s, s->templates_index, o->templates_dir, true, true, d);
        }
        parse_files(s, node_get(doc, "files"), s->dir, false, false, d);
        parse_files(s, node_get(doc, "templates"), s->dir, true, false, d);

        if (d->n > before)
                return -EBADMSG;
        *ret = TAKE_PTR(s);
        return 0;
}

void site_free(struct site *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->n_modules; i++) {
                free(s->modules[i].id);
                free(s->modules[i].dir);
                if (!s->borrowed)
                        manifest_free(s->modules[i].m);
                input_values_free(&s->modules[i].values);
                node_free(s->modules[i].extra);
        }
        free(s->modules);
        for (size_t i = 0; i < s->n_files; i++) {
                free(s->files[i].path);
                free(s->files[i].source);
                free(s->files[i].owner);
        }
        free(s->files);
        free(s->path);
        free(s->dir);
        if (!s->borrowed) {
                node_free(s->doc);
                node_free(s->templates_index);
        }
        free(s->name);
        free(s->hostname);
        free(s->instance_id);
        free(s->controller_url);
        free(s->controller_token);
        free(s->tls_domain);
        free(s->tls_email);
        strv_free(s->tls_names);
        strv_free(s->tls_ips);
        free(s->signing_key);
        strv_free(s->hosts);
        free(s->secret_pfx);
        free(s->jobs_conf);
        if (s->jobs_secret)
                explicit_bzero(s->jobs_secret, strlen(s->jobs_secret));
        free(s->jobs_secret);
        free(s);
}

/* An input's value with the type its manifest gives it. */
static struct node *typed_value(const struct manifest *m, const struct input_value *v)
{
        const struct manifest_input *in = manifest_find_input(m, v->name);
        enum scalar_type t = SCALAR_STR;
        if (in && (in->type == INPUT_INTEGER || in->type == INPUT_PORT))
                t = SCALAR_INT;
        else if (in && in->type == INPUT_BOOLEAN)
                t = SCALAR_BOOL;
        return node_new_scalar(t, v->value);
}

struct node *site_context(const struct site *s)
{
        struct node *ctx = node_new(NODE_MAP);
        struct node *site = node_new(NODE_MAP);
        node_set_str(site, "name", s->name);
        node_set_str(site, "hostname", s->hostname);
        node_set_str(site, "provider", provider_name(s->provider));
        node_set_str(site, "instance_id", s->instance_id);
        node_set(ctx, "site", site);

        if (s->controller_url) {
                struct node *c = node_new(NODE_MAP);
                node_set_str(c, "url", s->controller_url);
                node_set_str(c, "token", s->controller_token);
                node_set(ctx, "controller", c);
        }

        struct node *tls = node_new(NODE_MAP);
        static const char *const modes[] = {"none", "self-signed", "certbot"};
        node_set_str(tls, "mode", modes[s->tls_mode]);
        node_set_bool(tls, "enabled", s->tls_mode != TLS_NONE);
        node_set_bool(tls, "self_signed", s->tls_mode == TLS_SELF_SIGNED);
        node_set_bool(tls, "certbot", s->tls_mode == TLS_CERTBOT);
        if (s->tls_mode != TLS_NONE) {
                node_set_str(tls, "domain", s->tls_domain);
                if (s->tls_email)
                        node_set_str(tls, "email", s->tls_email);
                struct node *names = node_new(NODE_SEQ);
                for (size_t i = 0; s->tls_names && s->tls_names[i]; i++)
                        node_append(names, NULL, node_new_scalar(SCALAR_STR, s->tls_names[i]));
                node_set(tls, "names", names);
                if (s->tls_mode == TLS_SELF_SIGNED) {
                        node_set_str(tls, "dir", SITE_TLS_DIR);
                        node_set_str(tls, "cert", SITE_TLS_DIR "/fullchain.pem");
                        node_set_str(tls, "key", SITE_TLS_DIR "/server.key");
                        node_set_str(tls, "ca", SITE_TLS_DIR "/ca.crt");
                } else {
                        _cleanup_free_ char *live =
                                strprintf("/etc/letsencrypt/live/%s", s->tls_domain);
                        _cleanup_free_ char *cert = strprintf("%s/fullchain.pem", live);
                        _cleanup_free_ char *key = strprintf("%s/privkey.pem", live);
                        node_set_str(tls, "dir", live);
                        node_set_str(tls, "cert", cert);
                        node_set_str(tls, "key", key);
                }
        }
        node_set(ctx, "tls", tls);

        struct node *mods = node_new(NODE_MAP);
        for (size_t i = 0; i < s->n_modules; i++) {
                const struct site_module *sm = &s->modules[i];
                struct node *m = node_new(NODE_MAP);
                node_set_bool(m, "enabled", true);
                for (size_t k = 0; k < sm->values.n; k++)
                        node_set(m, sm->values.v[k].name, typed_value(sm->m, &sm->values.v[k]));
                for (size_t k = 0; sm->extra && k < sm->extra->n_items; k++)
                        node_set(m, sm->extra->items[k]->key, node_copy(sm->extra->items[k]));
                _cleanup_free_ char *key = xstrdup(sm->id);
                for (char *p = key; *p; p++)
                        if (*p == '-')
                                *p = '_';
                node_set(mods, key, m);
        }
        node_set(ctx, "modules", mods);
        return ctx;
}
