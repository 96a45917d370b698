/* firstboot.conf: the agent's settings on a server, YAML, every key
 * optional. Paths are on the server and resolved under --root. */
#pragma once

#include <stdbool.h>

#include "diag.h"
#include "node.h"

struct config {
        char *datasource;   /* auto */
        char *metadata_url; /* http://169.254.169.254 */
        char *modules_dir;  /* /usr/lib/firstboot/modules */
        char *keys_dir;     /* /etc/firstboot/keys */
        char *state_dir;    /* /var/lib/firstboot */
        char *log_dir;      /* /var/log/firstboot */
        char *ready_marker; /* /var/lib/firstboot/ready */
        bool require_signature;
        long long max_user_data; /* bytes */
        long long http_timeout_ms;
        long long http_attempts;
        long long module_attempts;  /* for exit 2 */
        long long retry_backoff_ms; /* first delay (10 s); doubles */
        long long kill_grace_ms;    /* between TERM and KILL */
        long long max_module_log;   /* bytes of output per module attempt in its log */
        char *phone_home_url;       /* when the bundle names none */
        char *phone_home_token;
        long long phone_home_timeout_ms;
        long long phone_home_attempts;
        long long phone_home_backoff_ms;
        long long phone_home_deadline_ms;
        bool phone_home_progress;                 /* also POST module started/finished events */
        long long phone_home_progress_timeout_ms; /* per event, one attempt */
        char *ssh_keys_user;                      /* root: who gets the datasource's SSH keys */
        /* jobs: `firstboot agent`'s job queue (README "Jobs") */
        char *jobs_redis_url;   /* none: the agent refuses to start */
        char *jobs_agent_id;    /* none: the hostname */
        char *jobs_secret_file; /* /etc/firstboot/jobs.secret, 0600 */
        long long jobs_max_job_bytes;
        long long jobs_max_skew_s;
        long long jobs_result_ttl_s;   /* of job:{id}:result */
        long long jobs_stop_timeout_s; /* SIGTERM: how long the current job may still run */
        long long jobs_heartbeat_s;    /* agent:{id}:heartbeat, kept for 3 times that */
        char *jobs_metrics_file;       /* Prometheus text format; none: not written */
        char *jobs_tls_ca_file;        /* rediss://: trust only these CAs; none: the system's */
        char *jobs_tls_cert_file;      /* rediss://: a client certificate, with its key */
        char *jobs_tls_key_file;
};

#define CONFIG_DEFAULT_PATH "/etc/firstboot/firstboot.conf"

/* Fills defaults, then reads path (a missing file at the default path is
 * not an error; an explicitly given one is). */
int config_load(const char *path, bool must_exist, struct config *ret, struct diags *d);
/* Fills defaults, then reads data (size bytes; NULL: none) over them;
 * diagnostics name path. */
int config_parse(const char *path, const char *data, size_t size, struct config *ret,
                 struct diags *d);
/* The same for CONFIG_DEFAULT_PATH inside the root rootfd (root_read_file:
 * no link followed out of it, a FIFO or device refused, not waited on);
 * missing is the defaults. Diagnostics name display. */
int config_load_root(int rootfd, const char *display, struct config *ret, struct diags *d);
/* The drop-ins <path>.d/NAME.conf, in the order of their names, each a YAML
 * mapping with only jobs: (what a bundle ships to configure the jobs agent
 * without replacing the image's firstboot.conf); later files win. Read by
 * `firstboot agent` only. A missing directory is no error. */
#define CONFIG_MAX_DROPINS 64
int config_load_dropins(int rootfd, const char *path, const char *display, struct config *c,
                        struct diags *d);
/* Checks the jobs settings in map (a jobs: mapping from elsewhere, e.g.
 * site.yaml) the way firstboot.conf's are: types and ranges, each error at
 * its node. Keys in skip and keys not of jobs: are left to the caller. */
int config_check_jobs(const struct node *map, const char *const *skip, struct diags *d);

/* The rule for jobs.secret_file, the TLS files and jobs.metrics_file, in
 * firstboot.conf and in site.yaml (each says it in its own words): an
 * absolute path without '.' or '..' components, '//' or a trailing '/',
 * and no control character; metrics_file ends in .prom too
 * (node_exporter's textfile collector reads only those,
 * collector/textfile.go). */
bool config_jobs_path_ok(const char *key, const char *value);
void config_free(struct config *c);
