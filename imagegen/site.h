/* site.yaml: one server, described once. Loading checks everything that
 * can be checked without writing anything — unknown keys, types, the
 * provider, TLS settings, files, and every module's inputs against its
 * manifest (common/manifest.c, the validator firstboot uses) — and reports
 * each problem at its file:line:column.
 *
 * Missing sensitive inputs (type password or sensitive: true, no value and
 * no default) are filled from the secrets store, which generates them the
 * first time; the store is saved only by `render` and friends, never by
 * `validate`.
 *
 * A fleet: `hosts: [{hostname, instance_id}, ...]` describes many servers
 * alike but for their names; each is loaded on its own (site_options.host)
 * and has its own secrets and certificate. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "manifest.h"
#include "node.h"
#include "secrets.h"
#include "template.h"

enum provider {
        PROVIDER_HETZNER,
        PROVIDER_DIGITALOCEAN,
        PROVIDER_EC2,
        PROVIDER_NOCLOUD,
};

enum tls_mode {
        TLS_NONE,
        TLS_SELF_SIGNED,
        TLS_CERTBOT,
};

/* jobs: where the agent's drop-in and secret go; the module enabling it. */
#define SITE_JOBS_CONF   "/etc/firstboot/firstboot.conf.d/50-site-jobs.conf"
#define SITE_JOBS_SECRET "/etc/firstboot/jobs.secret"
#define SITE_JOBS_MODULE "jobs-agent"

/* Where firstboot puts the TLS files a self-signed site ships. */
#define SITE_TLS_DIR "/etc/firstboot/tls"

struct site_module {
        char *id;
        const struct node *where; /* the module's entry in site.yaml */
        struct manifest *m;
        char *dir; /* the module's directory (manifest.yml and scripts) */
        struct input_values values;
        /* More of modules.<id> in the render context, checked here because
         * a manifest's inputs are scalars: the node module's apps. */
        struct node *extra;
};

/* A file of the bundle: copied from the site (or a template rendered). */
struct site_file {
        char *path;   /* absolute, on the server */
        char *source; /* on this machine */
        unsigned mode;
        char *owner; /* NULL: root */
        bool is_template;
        enum tmpl_format format;
        const struct node *where;
};

struct site {
        char *path, *dir; /* site.yaml and its directory */
        struct node *doc;
        char *name, *hostname, *instance_id;
        enum provider provider;
        char *controller_url, *controller_token;
        enum tls_mode tls_mode;
        char *tls_domain, *tls_email;
        char **tls_names, **tls_ips; /* DNS and IP SANs, the domain first */
        char *signing_key;           /* absolute, or NULL */
        bool ship_modules;
        struct site_module *modules;
        size_t n_modules;
        struct site_file *files;
        size_t n_files;
        struct node *templates_index; /* templates/index.yml, kept for positions */
        char **hosts;     /* a fleet's hostnames (hosts:), in order; NULL for one server */
        char *secret_pfx; /* "" or, in a fleet, "<hostname>/": secrets are per host */
        bool borrowed;    /* doc, templates_index and the manifests are another site's */
        /* jobs: the firstboot.conf.d drop-in (YAML) and the shared secret;
         * NULL without jobs: (the secret also under validate, no state). */
        char *jobs_conf, *jobs_secret;
};

struct site_options {
        const char *modules_dir;   /* module manifests */
        const char *templates_dir; /* templates/ with index.yml */
        struct secrets *secrets;   /* fills missing sensitive inputs */
        const char *host;          /* in a fleet (hosts:), the one to load; NULL: the first */
        /* Another host of the same fleet, loaded already: its parsed
         * site.yaml, templates index and manifests are used, not parsed
         * again (they must outlive this site). */
        const struct site *like;
};

int site_load(const char *path, const struct site_options *o, struct site **ret, struct diags *d);
void site_free(struct site *s);
static inline void site_freep(struct site **s)
{
        site_free(*s);
}
#define _cleanup_site_ __attribute__((cleanup(site_freep)))

const char *provider_name(enum provider p);
/* The provider's user-data limit in bytes (EC2 16384, Hetzner 32768,
 * DigitalOcean 65536; NoCloud: none, 0). */
size_t provider_limit(enum provider p);
/* Whether the provider takes binary (gzip) user-data. */
bool provider_takes_binary(enum provider p);

/* The render context (see templates/index.yml and the README): site,
 * controller, tls, modules. */
struct node *site_context(const struct site *s);
