#include "config.h"
#include "fs.h"
#include "yaml.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX_BYTES (4u << 20)

struct field {
        const char *key;
        size_t offset;
        enum {
                STR,
                BOOL,
                NUM
        } type;
        long long min, max;
};

static const struct field fields[] = {
#define S(k)                                                                                       \
        {                                                                                          \
#k, offsetof(struct config, k), STR, 0, 0                                          \
        }
#define N(k, lo, hi)                                                                               \
        {                                                                                          \
#k, offsetof(struct config, k), NUM, lo, hi                                        \
        }
        S(datasource),
        S(metadata_url),
        S(modules_dir),
        S(keys_dir),
        S(state_dir),
        S(log_dir),
        S(ready_marker),
        {"require_signature", offsetof(struct config, require_signature), BOOL, 0, 0},
        N(max_user_data, 1024, 1LL << 30),
        N(http_timeout_ms, 1, 600000),
        N(http_attempts, 1, 100),
        N(module_attempts, 1, 100),
        N(retry_backoff_ms, 0, 3600000),
        N(kill_grace_ms, 0, 600000),
        N(max_module_log, 65536, 1LL << 32),
        S(phone_home_url),
        S(phone_home_token),
        N(phone_home_timeout_ms, 1, 600000),
        N(phone_home_attempts, 1, 100),
        N(phone_home_backoff_ms, 0, 600000),
        N(phone_home_deadline_ms, 1, 3600000),
        {"phone_home_progress", offsetof(struct config, phone_home_progress), BOOL, 0, 0},
        N(phone_home_progress_timeout_ms, 1, 60000),
        S(ssh_keys_user),
#undef S
#undef N
};

/* The keys of the `jobs:` mapping, the same way (config field jobs_<key>). */
static const struct field jobs_fields[] = {
#define J(k, type, lo, hi)                                                                         \
        {                                                                                          \
#k, offsetof(struct config, jobs_##k), type, lo, hi                                \
        }
        J(redis_url, STR, 0, 0),          J(agent_id, STR, 0, 0),
        J(secret_file, STR, 0, 0),        J(max_job_bytes, NUM, 1024, 16777216),
        J(max_skew_s, NUM, 1, 86400),     J(result_ttl_s, NUM, 60, 31536000),
        J(stop_timeout_s, NUM, 1, 86400), J(heartbeat_s, NUM, 1, 3600),
        J(metrics_file, STR, 0, 0),       J(tls_ca_file, STR, 0, 0),
        J(tls_cert_file, STR, 0, 0),      J(tls_key_file, STR, 0, 0),
#undef J
};

static void set_defaults(struct config *c)
{
        *c = (struct config){
                .datasource = xstrdup("auto"),
                .metadata_url = xstrdup("http://169.254.169.254"),
                .modules_dir = xstrdup("/usr/lib/firstboot/modules"),
                .keys_dir = xstrdup("/etc/firstboot/keys"),
                .state_dir = xstrdup("/var/lib/firstboot"),
                .log_dir = xstrdup("/var/log/firstboot"),
                .ready_marker = xstrdup("/var/lib/firstboot/ready"),
                .max_user_data = 16 * 1024 * 1024,
                .http_timeout_ms = 5000,
                .http_attempts = 5,
                /* The installer contract's schedule: 3 attempts, and
                 * 2**attempt * 10 s after a failed one (10 s, then 20 s). */
                .module_attempts = 3,
                .retry_backoff_ms = 10000,
                .kill_grace_ms = 10000,
                .max_module_log = 16 * 1024 * 1024,
                .phone_home_timeout_ms = 10000,
                .phone_home_attempts = 5,
                .phone_home_backoff_ms = 1000,
                .phone_home_deadline_ms = 60000,
                .phone_home_progress_timeout_ms = 2000,
                .ssh_keys_user = xstrdup("root"),
                .jobs_secret_file = xstrdup("/etc/firstboot/jobs.secret"),
                .jobs_max_job_bytes = 65536,
                .jobs_max_skew_s = 300,
                .jobs_result_ttl_s = 7 * 86400,
                .jobs_stop_timeout_s = 60,
                .jobs_heartbeat_s = 10,
        };
}

static void read_fields(const struct node *map, const struct field *t, size_t n_t, struct config *c,
                        struct diags *d)
{
        for (size_t i = 0; i < n_t; i++) {
                const struct node *n = node_get(map, t[i].key);
                char *p = (char *)c + t[i].offset;
                long long v;
                if (!n)
                        continue;
                switch (t[i].type) {
                case STR:
                        if (n->kind != NODE_SCALAR || node_is_null(n)) {
                                diags_at(d, n, "'%s' must be a string", t[i].key);
                                break;
                        }
                        free(*(char **)p);
                        *(char **)p = xstrdup(n->value);
                        break;
                case BOOL:
                        if (node_as_bool(n, (bool *)p) < 0)
                                diags_at(d, n, "'%s' must be true or false, not %s", t[i].key,
                                         node_kind_name(n));
                        break;
                case NUM:
                        if (node_as_int(n, &v) < 0)
                                diags_at(d, n, "'%s' must be an integer, not %s", t[i].key,
                                         node_kind_name(n));
                        else if (v < t[i].min || v > t[i].max)
                                diags_at(d, n, "'%s' must be between %lld and %lld, not %lld",
                                         t[i].key, t[i].min, t[i].max, v);
                        else
                                *(long long *)p = v;
                        break;
                }
        }
}

bool config_jobs_path_ok(const char *key, const char *value)
{
        if (value[0] != '/' || strstr(value, "/../") || strstr(value, "/./") ||
            strstr(value, "//") || endswith(value, "/..") || endswith(value, "/.") ||
            (strlen(value) > 1 && endswith(value, "/")))
                return false;
        for (const char *c = value; *c; c++)
                if ((unsigned char)*c < ' ' || *c == 0x7f)
                        return false;
        return !streq(key, "metrics_file") || endswith(value, ".prom");
}

/* jobs.secret_file, the TLS files and jobs.metrics_file, each at its
 * line:column (config_jobs_path_ok()). */
static void check_jobs_paths(const struct node *jobs, struct diags *d)
{
        static const char *const paths[] = {"secret_file", "tls_ca_file", "tls_cert_file",
                                            "tls_key_file", "metrics_file"};

        for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
                const struct node *n = node_get(jobs, paths[i]);
                bool metrics = streq(paths[i], "metrics_file");
                if (!n || n->kind != NODE_SCALAR || !n->value || (metrics && node_is_null(n)) ||
                    config_jobs_path_ok(paths[i], n->value))
                        continue;
                _cleanup_free_ char *q = quote_for_message(n->value);
                diags_at(d, n,
                         "'jobs.%s' must be an absolute path%s, without '.' or '..' "
                         "components, not %s",
                         paths[i], metrics ? " ending in .prom" : "", q);
        }
}

/* The jobs: mapping of doc, if any, into c. */
static void read_jobs(const struct node *doc, struct config *c, struct diags *d)
{
        const struct node *jobs = node_get(doc, "jobs");
        if (jobs && !node_is_null(jobs) && diags_expect_kind(d, jobs, NODE_MAP)) {
                const char *jallowed[ARRAY_SIZE(jobs_fields) + 1];
                for (size_t i = 0; i < ARRAY_SIZE(jobs_fields); i++)
                        jallowed[i] = jobs_fields[i].key;
                jallowed[ARRAY_SIZE(jobs_fields)] = NULL;
                diags_check_keys(d, jobs, "jobs", jallowed);
                read_fields(jobs, jobs_fields, ARRAY_SIZE(jobs_fields), c, d);
                check_jobs_paths(jobs, d);
        }
}

int config_check_jobs(const struct node *map, const char *const *skip, struct diags *d)
{
        struct field t[ARRAY_SIZE(jobs_fields)];
        struct config c;
        size_t n = 0, before = d->n;

        for (size_t i = 0; i < ARRAY_SIZE(jobs_fields); i++)
                if (!skip || !strv_contains((char **)skip, jobs_fields[i].key))
                        t[n++] = jobs_fields[i];
        set_defaults(&c);
        read_fields(map, t, n, &c, d);
        config_free(&c);
        return d->n > before ? -EBADMSG : 0;
}

/* The bytes of the regular file name in the directory dfd, not waiting on
 * a FIFO and not following a link. */
static int read_dropin(int dfd, const char *name, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        return read_fd(fd, CONFIG_MAX_BYTES, ret, ret_size);
}

int config_load_dropins(int rootfd, const char *path, const char *display, struct config *c,
                        struct diags *d)
{
        static const char *const allowed[] = {"jobs", NULL};
        _cleanup_free_ char *dir = strprintf("%s.d", path), *shown = strprintf("%s.d", display);
        _cleanup_strv_free_ char **names = NULL;
        size_t before = d->n, n = 0;
        int dfd = rootfd >= 0 ? root_open(rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
                              : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *dh;
        struct dirent *de;

        if (dfd < 0)
                dfd = rootfd >= 0 ? dfd : -errno;
        if (dfd == -ENOENT)
                return 0;
        if (dfd < 0) {
                diags_add(d, shown, 0, 0, "cannot read: %s", strerror(-dfd));
                return dfd;
        }
        dh = fdopendir(dfd);
        if (!dh) {
                close(dfd);
                return -errno;
        }
        while ((de = readdir(dh))) {
                size_t l = strlen(de->d_name);
                if (de->d_name[0] == '.' || l <= 5 || !streq(de->d_name + l - 5, ".conf"))
                        continue;
                if (n == CONFIG_MAX_DROPINS) {
                        diags_add(d, shown, 0, 0, "more than %d drop-ins (*.conf)",
                                  CONFIG_MAX_DROPINS);
                        break;
                }
                if (strv_push(&names, xstrdup(de->d_name)) < 0)
                        abort();
                n++;
        }
        if (names)
                strv_sort(names, n);
        for (size_t i = 0; i < n && d->n == before; i++) {
                _cleanup_free_ char *p = strprintf("%s/%s", shown, names[i]), *data = NULL;
                _cleanup_node_ struct node *doc = NULL;
                size_t size = 0;
                /* Only a regular file: a FIFO would hang the read. */
                int k = read_dropin(dirfd(dh), names[i], &data, &size);
                if (k == -EINVAL || k == -ELOOP) {
                        diags_add(d, p, 0, 0, "a drop-in must be a regular file");
                        break;
                }
                if (k < 0) {
                        diags_add(d, p, 0, 0, "cannot read: %s", strerror(-k));
                        break;
                }
                if (yaml_parse(p, data, size, &doc, d) < 0)
                        break;
                if (node_is_null(doc))
                        continue;
                if (!diags_expect_kind(d, doc, NODE_MAP))
                        break;
                /* A drop-in (a bundle may ship one) sets the jobs agent's
                 * queue and nothing that the image's firstboot.conf decides
                 * (require_signature, the state directory...). */
                diags_check_keys(d, doc, "a firstboot.conf.d drop-in (jobs: only)", allowed);
                read_jobs(doc, c, d);
        }
        closedir(dh);
        return d->n > before ? -EBADMSG : 0;
}

int config_parse(const char *path, const char *data, size_t size, struct config *ret,
                 struct diags *d)
{
        _cleanup_node_ struct node *doc = NULL;
        const char *allowed[ARRAY_SIZE(fields) + 2];
        struct config c;
        size_t before = d->n;
        int r;

        set_defaults(&c);
        if (!data) {
                *ret = c;
                return 0;
        }
        r = yaml_parse(path, data, size, &doc, d);
        if (r < 0) {
                config_free(&c);
                return r;
        }
        if (node_is_null(doc)) {
                *ret = c;
                return 0;
        }
        if (!diags_expect_kind(d, doc, NODE_MAP)) {
                config_free(&c);
                return -EBADMSG;
        }
        for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
                allowed[i] = fields[i].key;
        allowed[ARRAY_SIZE(fields)] = "jobs";
        allowed[ARRAY_SIZE(fields) + 1] = NULL;
        diags_check_keys(d, doc, "firstboot.conf", allowed);
        read_fields(doc, fields, ARRAY_SIZE(fields), &c, d);
        read_jobs(doc, &c, d);
        const char *paths[] = {c.modules_dir, c.keys_dir, c.state_dir, c.log_dir, c.ready_marker};
        for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
                if (paths[i][0] != '/')
                        diags_add(d, path, 0, 0, "paths must be absolute: \"%s\"", paths[i]);
        if (d->n > before) {
                config_free(&c);
                return -EBADMSG;
        }
        *ret = c;
        return 0;
}

int config_load(const char *path, bool must_exist, struct config *ret, struct diags *d)
{
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        int r;

        if (!must_exist && !path_exists(path))
                return config_parse(path, NULL, 0, ret, d);
        r = read_file(path, CONFIG_MAX_BYTES, &data, &size);
        if (r < 0) {
                diags_add(d, path, 0, 0, "cannot read: %s", strerror(-r));
                return r;
        }
        return config_parse(path, data, size, ret, d);
}

int config_load_root(int rootfd, const char *display, struct config *ret, struct diags *d)
{
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        int r;

        r = root_read_file(rootfd, CONFIG_DEFAULT_PATH, CONFIG_MAX_BYTES, &data, &size);
        if (r == -ENOENT)
                return config_parse(display, NULL, 0, ret, d);
        if (r < 0) {
                diags_add(d, display, 0, 0, "cannot read: %s", strerror(-r));
                return r;
        }
        return config_parse(display, data, size, ret, d);
}

void config_free(struct config *c)
{
        for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
                if (fields[i].type == STR)
                        free(*(char **)((char *)c + fields[i].offset));
        for (size_t i = 0; i < ARRAY_SIZE(jobs_fields); i++)
                if (jobs_fields[i].type == STR)
                        free(*(char **)((char *)c + jobs_fields[i].offset));
}
