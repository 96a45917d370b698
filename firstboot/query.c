/* firstboot query: asks a datasource what it holds for this machine, the
 * way `run` would, and prints it without provisioning anything. Settings
 * come from <root>/etc/firstboot/firstboot.conf (datasource, metadata_url,
 * http_timeout_ms, http_attempts, max_user_data) like for `run`; options
 * override them. */
#include <errno.h>
#include <getopt.h>

#include "commands.h"
#include "config.h"
#include "crypto.h"
#include "datasource.h"
#include "fs.h"
#include "json.h"
#include "log.h"
#include "node.h"
#include "util.h"

static void usage(FILE *f)
{
        fprintf(f, "Usage: firstboot query [OPTIONS]\n"
                   "\n"
                   "Shows what a datasource returns (source, origin, instance id, hostname,\n"
                   "user-data size and sha256, SSH public keys) without provisioning anything.\n"
                   "\n"
                   "Options:\n"
                   "  --root DIR            work on the system under DIR (default /)\n"
                   "  --datasource NAME     auto, nocloud, configdrive, ec2, hetzner,\n"
                   "                        digitalocean or file (default: firstboot.conf, auto)\n"
                   "  --user-data FILE      the user-data file for the file datasource\n"
                   "  --seed PATH           a NoCloud/ConfigDrive seed directory or ISO image\n"
                   "  --metadata-url URL    replaces http://169.254.169.254\n"
                   "  --instance-id ID      overrides the instance id the source gives\n"
                   "  --max-user-data BYTES refuse larger user-data (default: firstboot.conf,\n"
                   "                        16 MiB)\n"
                   "  --json                print a JSON object\n"
                   "  -h, --help            show this help\n");
}

static bool is_known_datasource(const char *name)
{
        for (const char *const *n = datasource_names(); *n; n++)
                if (streq(*n, name))
                        return true;
        return false;
}

static int print_json(const struct ds_result *r, const char *sha)
{
        _cleanup_node_ struct node *n = node_new(NODE_MAP);
        _cleanup_free_ char *text = NULL;
        int k = n ? 0 : -ENOMEM;

        if (k >= 0)
                k = node_set_str(n, "source", r->source);
        if (k >= 0)
                k = node_set_str(n, "origin", r->origin);
        if (k >= 0)
                k = node_set_str(n, "instance_id", r->instance_id);
        if (k >= 0)
                k = r->hostname ? node_set_str(n, "hostname", r->hostname)
                                : node_set_null(n, "hostname");
        if (k >= 0)
                k = r->user_data ? node_set_int(n, "user_data_size", (long long)r->user_data_len)
                                 : node_set_null(n, "user_data_size");
        if (k >= 0)
                k = sha ? node_set_str(n, "user_data_sha256", sha)
                        : node_set_null(n, "user_data_sha256");
        if (k >= 0) {
                struct node *keys = node_new(NODE_SEQ);
                k = keys ? node_set(n, "ssh_keys", keys) : -ENOMEM;
                for (char **key = r->ssh_keys; k >= 0 && key && *key; key++) {
                        struct node *v = node_new_scalar(SCALAR_STR, *key);
                        k = v ? node_append(keys, NULL, v) : -ENOMEM;
                }
        }
        if (k >= 0)
                k = json_format(n, true, &text);
        if (k < 0)
                return k;
        printf("%s\n", text);
        return 0;
}

static void print_plain(const struct ds_result *r, const char *sha)
{
        printf("source: %s\n", r->source);
        printf("origin: %s\n", r->origin);
        printf("instance_id: %s\n", r->instance_id);
        printf("hostname: %s\n", r->hostname ? r->hostname : "(none)");
        if (r->user_data)
                printf("user_data_size: %zu\n", r->user_data_len);
        else
                printf("user_data_size: (none)\n");
        printf("user_data_sha256: %s\n", sha ? sha : "(none)");
        if (!r->ssh_keys)
                printf("ssh_keys: (none)\n");
        for (char **key = r->ssh_keys; key && *key; key++)
                printf("ssh_key: %s\n", *key);
}

int cmd_query(int argc, char **argv)
{
        enum {
                OPT_ROOT = 0x100,
                OPT_DATASOURCE,
                OPT_USER_DATA,
                OPT_SEED,
                OPT_METADATA_URL,
                OPT_INSTANCE_ID,
                OPT_MAX_USER_DATA,
                OPT_JSON,
        };
        static const struct option options[] = {
                {"root", required_argument, NULL, OPT_ROOT},
                {"datasource", required_argument, NULL, OPT_DATASOURCE},
                {"user-data", required_argument, NULL, OPT_USER_DATA},
                {"seed", required_argument, NULL, OPT_SEED},
                {"metadata-url", required_argument, NULL, OPT_METADATA_URL},
                {"instance-id", required_argument, NULL, OPT_INSTANCE_ID},
                {"max-user-data", required_argument, NULL, OPT_MAX_USER_DATA},
                {"json", no_argument, NULL, OPT_JSON},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        _cleanup_free_ char *config_path = NULL, *error = NULL;
        struct ds_options o = {0};
        struct ds_result res = {0};
        struct config cfg = {0};
        struct diags d = {0};
        long long max_user_data = 0;
        bool json = false;
        int c, r;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case OPT_ROOT:
                        o.root = optarg;
                        break;
                case OPT_DATASOURCE:
                        if (!is_known_datasource(optarg)) {
                                fprintf(stderr,
                                        "firstboot query: unknown datasource '%s' (expected "
                                        "one of: auto, nocloud, configdrive, ec2, hetzner, "
                                        "digitalocean, file, default)\n",
                                        optarg);
                                return 2;
                        }
                        o.name = optarg;
                        break;
                case OPT_USER_DATA:
                        o.user_data_file = optarg;
                        break;
                case OPT_SEED:
                        o.seed = optarg;
                        break;
                case OPT_METADATA_URL:
                        o.metadata_url = optarg;
                        break;
                case OPT_INSTANCE_ID:
                        o.instance_id = optarg;
                        break;
                case OPT_MAX_USER_DATA:
                        if (parse_llong(optarg, &max_user_data) < 0 || max_user_data <= 0) {
                                fprintf(stderr,
                                        "firstboot query: --max-user-data needs a positive "
                                        "number of bytes, not '%s'\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case ':':
                        fprintf(stderr, "firstboot query: %s needs an argument\n",
                                argv[optind - 1]);
                        return 2;
                default:
                        fprintf(stderr, "firstboot query: unknown option '%s'\n", argv[optind - 1]);
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "firstboot query: unexpected argument '%s'\n", argv[optind]);
                usage(stderr);
                return 2;
        }

        config_path = root_path(o.root, CONFIG_DEFAULT_PATH);
        if (!config_path) {
                log_error_errno(-ENOMEM, "Out of memory.");
                return 1;
        }
        _cleanup_close_ int rootfd = root_open_dir(o.root);
        if (rootfd < 0) {
                log_error_errno(rootfd, "--root %s: %m", o.root ? o.root : "/");
                return 2;
        }
        r = config_load_root(rootfd, config_path, &cfg, &d);
        if (r < 0) {
                for (size_t i = 0; i < d.n; i++) {
                        _cleanup_free_ char *m = diag_format(&d.v[i]);
                        log_error("%s", m);
                }
                if (d.n == 0)
                        log_error_errno(r, "Failed to read %s: %m", config_path);
                diags_free(&d);
                return 1;
        }
        diags_free(&d);
        if (!o.name)
                o.name = cfg.datasource;
        if (!o.metadata_url)
                o.metadata_url = cfg.metadata_url;
        o.timeout_ms = cfg.http_timeout_ms;
        o.attempts = (unsigned)cfg.http_attempts;
        o.max_user_data = (size_t)(max_user_data > 0 ? max_user_data : cfg.max_user_data);

        r = datasource_fetch(&o, &res, &error);
        if (r < 0) {
                log_error("%s", error ? error : strerror(-r));
                config_free(&cfg);
                return 1;
        }

        char hex[65];
        if (res.user_data)
                sha256_hex(res.user_data, res.user_data_len, hex);
        const char *sha = res.user_data ? hex : NULL;
        if (json) {
                r = print_json(&res, sha);
                if (r < 0)
                        log_error_errno(r, "Failed to format JSON: %m");
        } else {
                print_plain(&res, sha);
                r = 0;
        }
        ds_result_free(&res);
        config_free(&cfg);
        if (fflush(stdout) != 0 && r >= 0)
                r = log_error_errno(-EIO, "Failed to write the output: %m");
        return r < 0 ? 1 : 0;
}
