/* The controller callback against the real test receiver
 * (tests/e2e/peers/receiver.py) on loopback: signing, retries, the
 * deadline, and the answers that must not be retried. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "fs.h"
#include "json.h"
#include "util.h"
#include "../../firstboot/phonehome.h"
#include "tap.h"

#define TOKEN "s3cret-token"
#define BODY  "{\"instance_id\":\"i-123\",\"status\":\"ready\"}"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

struct receiver {
        pid_t pid;
        char *dir, *record;
        unsigned port;
};

static char *receiver_script(void)
{
        const char *top = getenv("TOP");
        char *p = strprintf("%s/tests/e2e/peers/receiver.py", top && *top ? top : ".");
        if (!p)
                abort();
        return p;
}

static void receiver_stop(struct receiver *rc)
{
        if (rc->pid > 0) {
                int status;
                bool reaped = false;

                kill(rc->pid, SIGTERM);
                /* Bounded: 5 s for a clean exit, then KILL. */
                for (int i = 0; i < 500 && !reaped; i++) {
                        reaped = waitpid(rc->pid, &status, WNOHANG) != 0;
                        if (!reaped)
                                sleep_ms(10);
                }
                if (!reaped) {
                        kill(rc->pid, SIGKILL);
                        waitpid(rc->pid, &status, 0);
                }
        }
        if (rc->dir && !getenv("KEEP"))
                rm_rf(rc->dir);
        free(rc->dir);
        free(rc->record);
        *rc = (struct receiver){0};
}

/* Starts receiver.py with the extra arguments (a NULL-terminated array, or
 * NULL) and waits, at most 10 s, for its port. Returns 0 or -1. */
static int receiver_start(struct receiver *rc, const char *const *extra)
{
        const char *base = getenv("TESTTMP");
        _cleanup_free_ char *script = receiver_script();
        _cleanup_free_ char *portfile = NULL, *log = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        *rc = (struct receiver){0};
        rc->dir = strprintf("%s/test-phonehome.XXXXXX", base && *base ? base : "/tmp");
        if (!rc->dir || !mkdtemp(rc->dir))
                abort();
        rc->record = strprintf("%s/record.jsonl", rc->dir);
        portfile = strprintf("%s/port", rc->dir);
        log = strprintf("%s/receiver.log", rc->dir);
        if (!rc->record || !portfile || !log)
                abort();

        if (strv_extend(&argv, "python3") < 0 || strv_extend(&argv, script) < 0 ||
            strv_extend(&argv, "--port-file") < 0 || strv_extend(&argv, portfile) < 0 ||
            strv_extend(&argv, "--record") < 0 || strv_extend(&argv, rc->record) < 0 ||
            strv_extend(&argv, "--token") < 0 || strv_extend(&argv, TOKEN) < 0)
                abort();
        for (size_t i = 0; extra && extra[i]; i++)
                if (strv_extend(&argv, extra[i]) < 0)
                        abort();

        rc->pid = fork();
        if (rc->pid < 0)
                abort();
        if (rc->pid == 0) {
                int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
                int out = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (in < 0 || out < 0 || dup2(in, STDIN_FILENO) < 0 ||
                    dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                _exit(127);
        }

        for (int i = 0; i < 1000; i++) {
                _cleanup_free_ char *line = NULL;
                int status;

                if (read_line_file(portfile, &line) >= 0 && parse_uint(line, &rc->port) >= 0 &&
                    rc->port > 0)
                        return 0;
                if (waitpid(rc->pid, &status, WNOHANG) == rc->pid) {
                        rc->pid = 0;
                        break;
                }
                sleep_ms(10);
        }
        _cleanup_free_ char *text = NULL;
        if (read_file(log, 65536, &text, NULL) >= 0)
                fprintf(stderr, "  receiver did not start:\n%s\n", text);
        CHECK(!"receiver.py started");
        return -1;
}

static char *url_of(const struct receiver *rc, const char *path)
{
        char *u = strprintf("http://127.0.0.1:%u%s", rc->port, path);
        if (!u)
                abort();
        return u;
}

/* The recorded POSTs as a sequence of nodes (empty when none). */
static struct node *records(const struct receiver *rc)
{
        _cleanup_free_ char *text = NULL;
        struct node *seq = node_new(NODE_SEQ);
        char *save = NULL;

        if (!seq)
                abort();
        if (read_file(rc->record, 16 * 1024 * 1024, &text, NULL) < 0)
                return seq;
        for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                struct diags d = {0};
                struct node *n = NULL;
                CHECK(json_parse("record", l, strlen(l), &n, &d) >= 0);
                diags_free(&d);
                if (n && node_append(seq, NULL, n) < 0)
                        abort();
        }
        return seq;
}

static const char *header(const struct node *rec, const char *name)
{
        const struct node *h = node_get(rec, "headers");
        for (size_t i = 0; h && i < h->n_items; i++)
                if (h->items[i]->key && strcasecmp(h->items[i]->key, name) == 0)
                        return h->items[i]->value;
        return NULL;
}

static const char *signature_ok(const struct node *rec)
{
        const struct node *s = node_get(rec, "signature_ok");
        return !s ? "(absent)" : node_is_null(s) ? "null" : s->value;
}

/* A port on loopback that nothing listens on: bound, never listened, closed. */
static unsigned refused_port(void)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        unsigned port = 0;

        if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
                port = ntohs(sa.sin_port);
        if (fd >= 0)
                close(fd);
        return port;
}

TEST(delivered_and_signed)
{
        _cleanup_(receiver_stop) struct receiver rc = {0};
        _cleanup_free_ char *url = NULL, *error = NULL;

        if (receiver_start(&rc, NULL) < 0)
                return;
        url = url_of(&rc, "/callback");
        struct phonehome_options o = {.url = url, .token = TOKEN, .backoff_ms = 10};
        CHECK_INTEQ(phonehome_send(&o, BODY, &error), 1);
        CHECK(!error);

        _cleanup_node_ struct node *recs = records(&rc);
        CHECK_INTEQ(recs->n_items, 1);
        if (recs->n_items == 1) {
                const struct node *r = recs->items[0];
                CHECK_STREQ(node_get_str(r, "path"), "/callback");
                CHECK_STREQ(node_get_str(r, "body"), BODY);
                CHECK_STREQ(signature_ok(r), "true");
                CHECK_STREQ(header(r, "Content-Type"), "application/json");
                const char *ua = header(r, "User-Agent");
                CHECK(ua && startswith(ua, "firstboot/"));
                const char *sig = header(r, "X-Firstboot-Signature");
                CHECK(sig && startswith(sig, "sha256=") && strlen(sig) == 7 + 64);
        }
}

TEST(unsigned_without_token)
{
        _cleanup_(receiver_stop) struct receiver rc = {0};
        _cleanup_free_ char *url = NULL, *error = NULL;
        /* A body over 1 KiB, where libcurl would otherwise wait for "100 Continue". */
        _cleanup_free_ char *big = NULL;
        struct buf b = {0};

        CHECK(buf_puts(&b, "{\"log\":\"") == 0);
        for (int i = 0; i < 300; i++)
                CHECK(buf_puts(&b, "line ") == 0);
        CHECK(buf_puts(&b, "\"}") == 0);
        big = buf_steal(&b);

        if (receiver_start(&rc, NULL) < 0)
                return;
        url = url_of(&rc, "/callback");
        /* The receiver knows a token, the agent has none: no header, so not ok. */
        struct phonehome_options o = {.url = url, .token = "", .backoff_ms = 10};
        long long t0 = now_ms();
        CHECK_INTEQ(phonehome_send(&o, big, &error), 1);
        CHECK(now_ms() - t0 < 5000);

        _cleanup_node_ struct node *recs = records(&rc);
        CHECK_INTEQ(recs->n_items, 1);
        if (recs->n_items == 1) {
                CHECK_STREQ(node_get_str(recs->items[0], "body"), big);
                CHECK_STREQ(signature_ok(recs->items[0]), "false");
                CHECK(!header(recs->items[0], "X-Firstboot-Signature"));
        }
}

TEST(retried_until_success)
{
        _cleanup_(receiver_stop) struct receiver rc = {0};
        _cleanup_free_ char *url = NULL, *error = NULL;

        if (receiver_start(&rc, ARGS("--fail-first", "2")) < 0)
                return;
        url = url_of(&rc, "/callback");
        struct phonehome_options o = {.url = url, .token = TOKEN, .attempts = 5, .backoff_ms = 10};
        CHECK_INTEQ(phonehome_send(&o, BODY, &error), 3);
        CHECK(!error);

        _cleanup_node_ struct node *recs = records(&rc);
        CHECK_INTEQ(recs->n_items, 3);
        for (size_t i = 0; i < recs->n_items; i++) {
                CHECK_STREQ(node_get_str(recs->items[i], "body"), BODY);
                CHECK_STREQ(signature_ok(recs->items[i]), "true");
        }
}

TEST(too_many_requests_is_retried)
{
        _cleanup_(receiver_stop) struct receiver rc = {0};
        _cleanup_free_ char *url = NULL, *error = NULL;

        if (receiver_start(&rc, ARGS("--fail-first", "1", "--fail-status", "429")) < 0)
                return;
        url = url_of(&rc, "/callback");
        struct phonehome_options o = {.url = url, .token = TOKEN, .attempts = 3, .backoff_ms = 10};
        CHECK_INTEQ(phonehome_send(&o, BODY, &error), 2);
}

TEST(gives_up_after_attempts)
{
        _cleanup_(receiver_stop) struct receiver rc = {0};
        _cleanup_free_ char *url = NULL, *error = NULL;

        if (receiver_start(&rc, ARGS("--mode", "fail")) < 0)
                return;
        url = url_of(&rc, "/callback");
        struct phonehome_options o = {.url = url, .token = TOKEN, .attempts = 3, .backoff_ms = 10};
        int r = phonehome_send(&o, BODY, &error);
        CHECK_INTEQ(r, -ETIMEDOUT);
        CHECK(error && strstr(error, "3 attempts") && strstr(error, "HTTP 500"));
        if (error)
                printf("# %s\n", error);

        _cleanup_node_ struct node *recs = records(&rc);
        CHECK_INTEQ(recs->n_items, 3);
}

TEST(deadline_bounds_many_attempts)
{
        _cleanup_(receiver_stop) struct receiver rc = {0};
        _cleanup_free_ char *url = NULL, *error = NULL;

        if (receiver_start(&rc, ARGS("--mode", "fail")) < 0)
                return;
        url = url_of(&rc, "/callback");
        /* 100 attempts with doubling 100 ms pauses would take minutes. */
        struct phonehome_options o = {
                .url = url, .token = TOKEN, .attempts = 100, .backoff_ms = 100, .deadline_ms = 700};
        long long t0 = now_ms();
        CHECK(phonehome_send(&o, BODY, &error) < 0);
        CHECK(now_ms() - t0 < 5000);
        CHECK(error != NULL);

        _cleanup_node_ struct node *recs = records(&rc);
        CHECK(recs->n_items >= 1 && recs->n_items < 10);
}

TEST(hanging_controller)
{
        _cleanup_(receiver_stop) struct receiver rc = {0};
        _cleanup_free_ char *url = NULL, *error = NULL;

        if (receiver_start(&rc, ARGS("--mode", "hang")) < 0)
                return;
        url = url_of(&rc, "/callback");
        struct phonehome_options o = {.url = url,
                                      .token = TOKEN,
                                      .timeout_ms = 300,
                                      .attempts = 5,
                                      .backoff_ms = 50,
                                      .deadline_ms = 1000};
        long long t0 = now_ms();
        int r = phonehome_send(&o, BODY, &error);
        long long elapsed = now_ms() - t0;
        CHECK_INTEQ(r, -ETIMEDOUT);
        CHECK(error != NULL);
        /* About 1 s; only a safety bound is asserted. */
        CHECK(elapsed < 5000);
        printf("# hang: gave up after %lld ms: %s\n", elapsed, error ? error : "");

        _cleanup_node_ struct node *recs = records(&rc);
        CHECK(recs->n_items >= 1);
}

TEST(client_error_not_retried)
{
        _cleanup_(receiver_stop) struct receiver rc = {0};
        _cleanup_free_ char *url = NULL, *error = NULL;

        if (receiver_start(&rc, NULL) < 0)
                return;
        url = url_of(&rc, "/no-such-callback");
        struct phonehome_options o = {.url = url, .token = TOKEN, .attempts = 5, .backoff_ms = 10};
        CHECK_INTEQ(phonehome_send(&o, BODY, &error), -EPROTO);
        /* The status and the first line of the answer, for the operator. */
        CHECK(error && strstr(error, "HTTP 404") && strstr(error, "no such callback"));
        if (error)
                printf("# 404: %s\n", error);

        _cleanup_node_ struct node *recs = records(&rc);
        CHECK_INTEQ(recs->n_items, 1);
}

TEST(connection_refused)
{
        _cleanup_free_ char *url = NULL, *error = NULL;
        unsigned port = refused_port();

        CHECK(port > 0);
        url = strprintf("http://127.0.0.1:%u/callback", port);
        struct phonehome_options o = {
                .url = url, .token = TOKEN, .attempts = 3, .backoff_ms = 10, .deadline_ms = 2000};
        long long t0 = now_ms();
        int r = phonehome_send(&o, BODY, &error);
        CHECK_INTEQ(r, -EHOSTUNREACH);
        CHECK(error && strstr(error, "3 attempts"));
        CHECK(now_ms() - t0 < 5000);
        if (error)
                printf("# refused: %s\n", error);
}

TEST(bad_urls)
{
        _cleanup_free_ char *e1 = NULL, *e2 = NULL, *e3 = NULL;
        struct phonehome_options ftp = {.url = "ftp://127.0.0.1/callback"};
        struct phonehome_options file = {.url = "file:///etc/passwd"};
        struct phonehome_options none = {.url = NULL};

        CHECK_INTEQ(phonehome_send(&ftp, BODY, &e1), -EINVAL);
        CHECK(e1 != NULL);
        CHECK_INTEQ(phonehome_send(&file, BODY, &e2), -EINVAL);
        CHECK_INTEQ(phonehome_send(&none, BODY, &e3), -EINVAL);
        /* ret_error may be NULL. */
        CHECK_INTEQ(phonehome_send(&ftp, BODY, NULL), -EINVAL);
}

TAP_MAIN
