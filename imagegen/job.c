/* imagegen job: the controller's side of the job queue (README "Jobs"):
 * sign a job and LPUSH it onto agent:{id}:jobs, follow its updates, read
 * its result. What a panel does, for scripts, CI and the tests. */
#include "imagegen.h"
#include "job.h"
#include "json.h"
#include "log.h"
#include "redis.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sysexits.h>

/* Exit codes of `job submit --wait` and `job status`. */
#define EXIT_SUCCEEDED 0
#define EXIT_FAILED    1
#define EXIT_TIMEOUT   2
#define EXIT_REJECTED  3
/* A usage error: not 2, which --wait and status say for "no result in
 * time" (sysexits.h's EX_USAGE). */
#define EXIT_USAGE EX_USAGE

/* The shared secret, as the agent reads it (common/job.h), but that a
 * symbolic link is followed and any owner will do: a controller's secret
 * may be a mounted one (Kubernetes links its secrets' files). */
static int read_secret(const char *file, char **ret, size_t *ret_len)
{
        _cleanup_free_ char *why = NULL;
        int k = job_secret_read(AT_FDCWD, file, 0, ret, ret_len, &why);
        if (k < 0)
                fprintf(stderr, "imagegen job: --secret-file: %s\n", why);
        return k;
}

/* --tls-ca-file, --tls-cert-file, --tls-key-file: for rediss:// only. */
enum {
        OPT_TLS_CA = 0x100,
        OPT_TLS_CERT,
        OPT_TLS_KEY
};
#define TLS_USAGE "[--tls-ca-file F] [--tls-cert-file F --tls-key-file F]"
static const char *tls_files[3];

static bool tls_option(int c)
{
        if (c < OPT_TLS_CA || c > OPT_TLS_KEY)
                return false;
        tls_files[c - OPT_TLS_CA] = optarg;
        return true;
}

static int connect_to(const char *url, struct redis **ret)
{
        struct redis_url u;
        _cleanup_free_ char *err = NULL;
        int k = redis_url_parse(url, &u, &err);
        if (k < 0) {
                fprintf(stderr, "imagegen job: --redis: %s\n", err);
                return k;
        }
        if (!u.tls && (tls_files[0] || tls_files[1] || tls_files[2])) {
                fprintf(stderr, "imagegen job: --tls-* options need a rediss:// (TLS) URL\n");
                redis_url_done(&u);
                return -EINVAL;
        }
        u.tls_ca_file = tls_files[0] ? xstrdup(tls_files[0]) : NULL;
        u.tls_cert_file = tls_files[1] ? xstrdup(tls_files[1]) : NULL;
        u.tls_key_file = tls_files[2] ? xstrdup(tls_files[2]) : NULL;
        u.tls_ca_option = "--tls-ca-file";
        k = redis_connect(&u, 5000, ret, &err);
        redis_url_done(&u);
        if (k < 0)
                fprintf(stderr, "imagegen job: %s\n", err);
        return k;
}

/* The exit code a result's status means; -1 for none. */
static int exit_for(const struct node *result)
{
        const char *s = node_get_str(result, "status");
        if (streq_ptr(s, "succeeded"))
                return EXIT_SUCCEEDED;
        if (streq_ptr(s, "failed"))
                return EXIT_FAILED;
        if (streq_ptr(s, "rejected"))
                return EXIT_REJECTED;
        return -1;
}

/* GET job:{id}:result: 1 and *ret when there, 0 when not, <0. */
static int get_result(struct redis *r, const char *job_id, char **ret_text)
{
        _cleanup_free_ char *key = strprintf("job:%s:result", job_id), *err = NULL;
        _cleanup_redis_reply_ struct redis_reply *rep = NULL;
        const char *argv[] = {"GET", key};
        int k = redis_command(r, 2, argv, NULL, 0, &rep, &err);
        if (k < 0) {
                fprintf(stderr, "imagegen job: %s\n", err);
                return k;
        }
        if (rep->type == REDIS_R_ERROR) {
                fprintf(stderr, "imagegen job: GET %s: %s\n", key, rep->str);
                return -EREMOTEIO;
        }
        if (rep->type != REDIS_R_STRING)
                return 0;
        *ret_text = TAKE_PTR(rep->str);
        return 1;
}

static int print_result(const char *text)
{
        _cleanup_node_ struct node *n = NULL;
        struct diags d = {0};
        printf("%s\n", text);
        fflush(stdout);
        if (json_parse("result", text, strlen(text), &n, &d) < 0) {
                diags_free(&d);
                fprintf(stderr, "imagegen job: the result is not JSON\n");
                return EXIT_FAILED;
        }
        int e = exit_for(n);
        return e < 0 ? EXIT_FAILED : e;
}

/* Follows job:{id}:updates (output lines to stderr) until the result is
 * there or the timeout; asks for the result every second too, so an
 * update missed while subscribing costs nothing. */
static int wait_for(struct redis *sub, struct redis *r, const char *job_id, long long timeout_ms)
{
        long long deadline = now_ms() + timeout_ms;
        for (;;) {
                _cleanup_free_ char *text = NULL, *err = NULL;
                int k = get_result(r, job_id, &text);
                if (k < 0)
                        return EXIT_FAILED;
                if (k > 0)
                        return print_result(text);
                long long left = deadline - now_ms();
                if (left <= 0) {
                        fprintf(stderr, "imagegen job: no result for %s within %lld s\n", job_id,
                                timeout_ms / 1000);
                        return EXIT_TIMEOUT;
                }
                long long until = now_ms() + (left < 1000 ? left : 1000);
                while (now_ms() < until) {
                        _cleanup_redis_reply_ struct redis_reply *m = NULL;
                        k = redis_next_reply(sub, until - now_ms(), &m, &err);
                        if (k < 0) {
                                fprintf(stderr, "imagegen job: %s\n", err);
                                return EXIT_FAILED;
                        }
                        if (k == 0)
                                break;
                        if (m->type != REDIS_R_ARRAY || m->n != 3 ||
                            m->items[2]->type != REDIS_R_STRING)
                                continue;
                        _cleanup_node_ struct node *u = NULL;
                        struct diags d = {0};
                        if (json_parse("update", m->items[2]->str, m->items[2]->len, &u, &d) < 0) {
                                diags_free(&d);
                                continue;
                        }
                        const char *out = node_get_str(u, "output");
                        const char *msg = node_get_str(u, "message");
                        const char *status = node_get_str(u, "status");
                        if (out)
                                fprintf(stderr, "%s\n", out);
                        else if (status)
                                fprintf(stderr, "[%s]%s%s\n", status, msg ? " " : "",
                                        msg ? msg : "");
                        if (exit_for(u) >= 0)
                                break; /* the result is set before its update */
                }
        }
}

static int submit(int argc, char **argv)
{
        static const struct option opts[] = {
                {"redis", required_argument, NULL, 'r'},
                {"agent", required_argument, NULL, 'a'},
                {"secret-file", required_argument, NULL, 's'},
                {"wait", no_argument, NULL, 'w'},
                {"timeout", required_argument, NULL, 't'},
                {"expires", required_argument, NULL, 'e'},
                {"user", required_argument, NULL, 'u'},
                {"tls-ca-file", required_argument, NULL, OPT_TLS_CA},
                {"tls-cert-file", required_argument, NULL, OPT_TLS_CERT},
                {"tls-key-file", required_argument, NULL, OPT_TLS_KEY},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *url = NULL, *agent = NULL, *secret_file = NULL, *user = NULL;
        long long timeout_s = 600, expires_s = 0;
        bool wait = false;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'r':
                        url = optarg;
                        break;
                case 'a':
                        agent = optarg;
                        break;
                case 's':
                        secret_file = optarg;
                        break;
                case 'w':
                        wait = true;
                        break;
                case 't':
                case 'e': {
                        long long v;
                        if (parse_llong(optarg, &v) < 0 || v < 1 || v > 31536000) {
                                fprintf(stderr,
                                        "imagegen job submit: --%s takes 1 to 31536000 "
                                        "seconds\n",
                                        c == 't' ? "timeout" : "expires");
                                return EXIT_USAGE;
                        }
                        *(c == 't' ? &timeout_s : &expires_s) = v;
                        break;
                }
                case 'u':
                        user = optarg;
                        break;
                case 'h':
                        printf("Usage: imagegen job submit --redis URL --agent ID --secret-file F "
                               "APP_ID [key=value ...]\n"
                               "           [--wait] [--timeout S] [--expires S] [--user ID]\n"
                               "           " TLS_USAGE "\n"
                               "Exit status: 0 queued (with --wait: succeeded), 1 failed, 2 no "
                               "result in time,\n"
                               "3 rejected, 64 usage error.\n");
                        return 0;
                default:
                        if (tls_option(c))
                                break;
                        return EXIT_USAGE;
                }
        }
        if (!url || !agent || !secret_file || optind >= argc) {
                fprintf(stderr, "imagegen job submit: needs --redis, --agent, --secret-file and "
                                "an APP_ID\n");
                return EXIT_USAGE;
        }
        if (!job_agent_id_is_valid(agent)) {
                fprintf(stderr, "imagegen job submit: --agent \"%s\" is not a valid agent id\n",
                        agent);
                return EXIT_USAGE;
        }
        const char *app = argv[optind++];
        _cleanup_node_ struct node *inputs = node_new(NODE_MAP);
        for (; optind < argc; optind++) {
                const char *eq = strchr(argv[optind], '=');
                if (!eq || eq == argv[optind]) {
                        fprintf(stderr, "imagegen job submit: '%s' is not key=value\n",
                                argv[optind]);
                        return EXIT_USAGE;
                }
                _cleanup_free_ char *key = xstrndup(argv[optind], (size_t)(eq - argv[optind]));
                /* Typed as YAML would read it: 8080 an integer, true a boolean. */
                node_set(inputs, key, node_new_scalar(SCALAR_PLAIN, eq + 1));
        }

        _cleanup_free_ char *secret = NULL, *payload = NULL, *element = NULL;
        size_t secret_len = 0;
        char id[JOB_ID_LEN + 1];
        long long now = now_realtime_ms() / 1000;
        if (read_secret(secret_file, &secret, &secret_len) < 0)
                return 1;
        int k = job_new_id(id);
        if (k < 0) {
                fprintf(stderr, "imagegen job submit: no random bytes: %s\n", strerror(-k));
                return 1;
        }
        _cleanup_node_ struct node *p = node_new(NODE_MAP);
        node_set_str(p, "job_id", id);
        node_set_str(p, "agent_id", agent);
        node_set_str(p, "app_id", app);
        node_set(p, "inputs", TAKE_PTR(inputs));
        node_set_int(p, "issued_at", now);
        if (expires_s)
                node_set_int(p, "expires_at", now + expires_s);
        if (user)
                node_set_str(p, "user_id", user);
        if (json_format(p, false, &payload) < 0 ||
            job_sign(payload, secret, secret_len, &element) < 0) {
                fprintf(stderr, "imagegen job submit: cannot encode the job\n");
                return 1;
        }
        explicit_bzero(secret, secret_len);

        _cleanup_redis_ struct redis *r = NULL, *sub = NULL;
        if (connect_to(url, &r) < 0 || (wait && connect_to(url, &sub) < 0))
                return 1;
        _cleanup_free_ char *chan = strprintf("job:%s:updates", id), *err = NULL;
        _cleanup_free_ char *queue = strprintf("agent:%s:jobs", agent);
        if (wait) {
                _cleanup_redis_reply_ struct redis_reply *rep = NULL;
                const char *a[] = {"SUBSCRIBE", chan};
                if (redis_command(sub, 2, a, NULL, 0, &rep, &err) < 0) {
                        fprintf(stderr, "imagegen job submit: %s\n", err);
                        return 1;
                }
        }
        {
                _cleanup_redis_reply_ struct redis_reply *rep = NULL;
                const char *a[] = {"LPUSH", queue, element};
                if (redis_command(r, 3, a, NULL, 0, &rep, &err) < 0 || rep->type == REDIS_R_ERROR) {
                        fprintf(stderr, "imagegen job submit: LPUSH %s: %s\n", queue,
                                err ? err : rep->str);
                        return 1;
                }
        }
        printf("%s\n", id);
        fflush(stdout);
        if (!wait)
                return 0;
        return wait_for(sub, r, id, timeout_s * 1000);
}

static int status(int argc, char **argv)
{
        static const struct option opts[] = {
                {"redis", required_argument, NULL, 'r'},
                {"tls-ca-file", required_argument, NULL, OPT_TLS_CA},
                {"tls-cert-file", required_argument, NULL, OPT_TLS_CERT},
                {"tls-key-file", required_argument, NULL, OPT_TLS_KEY},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *url = NULL;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'r':
                        url = optarg;
                        break;
                case 'h':
                        printf("Usage: imagegen job status --redis URL " TLS_USAGE " JOB_ID\n");
                        return 0;
                default:
                        if (tls_option(c))
                                break;
                        return EXIT_USAGE;
                }
        }
        if (!url || optind + 1 != argc || !job_id_is_valid(argv[optind])) {
                fprintf(stderr, "imagegen job status: needs --redis URL and one JOB_ID (a "
                                "lowercase UUID)\n");
                return EXIT_USAGE;
        }
        _cleanup_redis_ struct redis *r = NULL;
        _cleanup_free_ char *text = NULL;
        if (connect_to(url, &r) < 0)
                return 1;
        int k = get_result(r, argv[optind], &text);
        if (k < 0)
                return 1;
        if (k == 0) {
                fprintf(stderr,
                        "imagegen job status: no result for %s (not finished, unknown or "
                        "expired)\n",
                        argv[optind]);
                return EXIT_TIMEOUT;
        }
        return print_result(text);
}

int cmd_job(int argc, char **argv)
{
        /* A peer that closes the connection is an error said, not a
         * silent death by SIGPIPE (OpenSSL writes with write()). */
        signal(SIGPIPE, SIG_IGN);
        if (argc >= 2 && streq(argv[1], "submit"))
                return submit(argc - 1, argv + 1);
        if (argc >= 2 && streq(argv[1], "status"))
                return status(argc - 1, argv + 1);
        fprintf(stderr, "Usage: imagegen job submit --redis URL --agent ID --secret-file F APP_ID "
                        "[key=value ...] [--wait] [--timeout S]\n"
                        "       imagegen job status --redis URL JOB_ID\n"
                        "--redis rediss:// (TLS) takes " TLS_USAGE ".\n"
                        "submit --wait and status exit 0 succeeded, 1 failed, 3 rejected, 2 no "
                        "result (timeout); 64 is a usage error.\n");
        return EXIT_USAGE;
}
