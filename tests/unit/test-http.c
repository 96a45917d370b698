/* http_do() against the real metadata peer (tests/e2e/peers/metadata.py)
 * on loopback, through its /_test/ paths: methods and bodies, what is
 * retried and what is not, the messages, size limits, timeouts and
 * redirects. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "fs.h"
#include "http.h"
#include "util.h"
#include "tap.h"

struct peer {
        pid_t pid;
        char *dir, *log;
        unsigned port;
};

static void peer_stop(struct peer *p)
{
        if (p->pid > 0) {
                int status;
                bool reaped = false;

                kill(p->pid, SIGTERM);
                for (int i = 0; i < 500 && !reaped; i++) {
                        reaped = waitpid(p->pid, &status, WNOHANG) != 0;
                        if (!reaped)
                                sleep_ms(10);
                }
                if (!reaped) {
                        kill(p->pid, SIGKILL);
                        waitpid(p->pid, &status, 0);
                }
        }
        if (p->dir && !getenv("KEEP"))
                rm_rf(p->dir);
        free(p->dir);
        free(p->log);
        *p = (struct peer){0};
}

/* Starts metadata.py (hetzner) with --fail-first fail_first and waits, at
 * most 10 s, for its port. Returns 0 or -1. */
static int peer_start(struct peer *p, unsigned fail_first)
{
        const char *base = getenv("TESTTMP"), *top = getenv("TOP");
        _cleanup_free_ char *script = NULL, *portfile = NULL, *out = NULL, *ff = NULL;

        *p = (struct peer){0};
        p->dir = strprintf("%s/test-http.XXXXXX", base && *base ? base : "/tmp");
        if (!p->dir || !mkdtemp(p->dir))
                abort();
        script = strprintf("%s/tests/e2e/peers/metadata.py", top && *top ? top : ".");
        portfile = strprintf("%s/port", p->dir);
        out = strprintf("%s/peer.out", p->dir);
        p->log = strprintf("%s/requests.jsonl", p->dir);
        ff = strprintf("%u", fail_first);
        if (!script || !portfile || !out || !p->log || !ff)
                abort();
        char *argv[] = {
                (char *)"python3",
                script,
                (char *)"--port-file",
                portfile,
                (char *)"--log",
                p->log,
                (char *)"--provider",
                (char *)"hetzner",
                (char *)"--fail-first",
                ff,
                NULL,
        };

        p->pid = fork();
        if (p->pid < 0)
                abort();
        if (p->pid == 0) {
                int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
                int o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (in < 0 || o < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(o, STDOUT_FILENO) < 0 ||
                    dup2(o, STDERR_FILENO) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                _exit(127);
        }
        for (int i = 0; i < 1000; i++) {
                _cleanup_free_ char *line = NULL;
                int status;

                if (read_line_file(portfile, &line) >= 0 && parse_uint(line, &p->port) >= 0 &&
                    p->port > 0)
                        return 0;
                if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
                        p->pid = 0;
                        break;
                }
                sleep_ms(10);
        }
        CHECK(!"metadata.py started");
        return -1;
}

static char *mfree_ptr(char *p)
{
        free(p);
        return NULL;
}

static char *url_of(const struct peer *p, const char *path)
{
        char *u = strprintf("http://127.0.0.1:%u%s", p->port, path);
        if (!u)
                abort();
        return u;
}

/* How many requests the peer logged. */
static size_t logged(const struct peer *p)
{
        _cleanup_free_ char *text = NULL;
        size_t n = 0;

        if (read_file(p->log, 1 << 20, &text, NULL) < 0)
                return 0;
        for (const char *c = text; *c; c++)
                n += *c == '\n';
        return n;
}

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

TEST(get_put_post)
{
        _cleanup_(peer_stop) struct peer p = {0};
        _cleanup_free_ char *url = NULL;
        struct http_response r = {0};
        static const char *const methods[] = {"GET", "PUT", "POST"};

        if (peer_start(&p, 0) < 0)
                return;
        url = url_of(&p, "/_test/echo");
        for (size_t i = 0; i < ARRAY_SIZE(methods); i++) {
                _cleanup_free_ char *want =
                        strprintf("%s %s", methods[i], streq(methods[i], "GET") ? "" : "hello");
                struct http_request req = {
                        .method = methods[i], .url = url, .body = "hello", .body_len = 5};
                CHECK_INTEQ(http_do(&req, &r, NULL), 0);
                CHECK_INTEQ(r.status, 200);
                CHECK_STREQ(r.body, want);
                CHECK_INTEQ(r.body_len, strlen(want));
                CHECK_INTEQ(r.attempts_made, 1);
                http_response_free(&r);
        }
}

TEST(headers_are_sent)
{
        _cleanup_(peer_stop) struct peer p = {0};
        _cleanup_free_ char *url = NULL, *log = NULL;
        struct http_response r = {0};
        char *const headers[] = {(char *)"X-Test-Header: yes-it-is", NULL};

        if (peer_start(&p, 0) < 0)
                return;
        url = url_of(&p, "/_test/status?code=204");
        struct http_request req = {.url = url, .headers = headers};
        CHECK_INTEQ(http_do(&req, &r, NULL), 0);
        CHECK_INTEQ(r.status, 204);
        CHECK(r.body && r.body_len == 0);
        http_response_free(&r);
        CHECK(read_file(p.log, 1 << 20, &log, NULL) >= 0);
        CHECK(log && strstr(log, "\"X-Test-Header\": \"yes-it-is\""));
}

TEST(retries_5xx_then_succeeds)
{
        _cleanup_(peer_stop) struct peer p = {0};
        _cleanup_free_ char *url = NULL;
        struct http_response r = {0};

        if (peer_start(&p, 2) < 0)
                return;
        url = url_of(&p, "/_test/status?code=200");
        struct http_request req = {.url = url, .attempts = 3, .backoff_ms = 10};
        CHECK_INTEQ(http_do(&req, &r, NULL), 0);
        CHECK_INTEQ(r.status, 200);
        CHECK_INTEQ(r.attempts_made, 3);
        CHECK_INTEQ(logged(&p), 3);
        http_response_free(&r);
}

TEST(5xx_and_429_to_the_end_return_the_status)
{
        _cleanup_(peer_stop) struct peer p = {0};
        static const char *const paths[] = {"/_test/status?code=503", "/_test/status?code=429"};
        struct http_response r = {0};

        if (peer_start(&p, 0) < 0)
                return;
        for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
                _cleanup_free_ char *url = url_of(&p, paths[i]);
                struct http_request req = {.url = url, .attempts = 3, .backoff_ms = 5};
                CHECK_INTEQ(http_do(&req, &r, NULL), 0);
                CHECK_INTEQ(r.status, i == 0 ? 503 : 429);
                CHECK_INTEQ(r.attempts_made, 3);
                http_response_free(&r);
        }
        CHECK_INTEQ(logged(&p), 6);
}

TEST(4xx_is_not_retried)
{
        _cleanup_(peer_stop) struct peer p = {0};
        _cleanup_free_ char *url = NULL;
        struct http_response r = {0};

        if (peer_start(&p, 0) < 0)
                return;
        url = url_of(&p, "/_test/status?code=403");
        struct http_request req = {.url = url, .attempts = 5, .backoff_ms = 1000};
        long long start = now_ms();
        CHECK_INTEQ(http_do(&req, &r, NULL), 0);
        CHECK_INTEQ(r.status, 403);
        CHECK_INTEQ(r.attempts_made, 1);
        CHECK(now_ms() - start < 1000);
        CHECK_INTEQ(logged(&p), 1);
        http_response_free(&r);
}

TEST(refused_is_retried_and_named)
{
        _cleanup_free_ char *url = NULL, *error = NULL, *want = NULL;
        struct http_response r = {0};
        unsigned port = refused_port();

        url = strprintf("http://127.0.0.1:%u/x", port);
        want = strprintf("GET http://127.0.0.1:%u/x: Connection refused (3 attempts)", port);
        struct http_request req = {.url = url, .attempts = 3, .backoff_ms = 10};
        CHECK_INTEQ(http_do(&req, &r, &error), -EHOSTUNREACH);
        CHECK_STREQ(error, want);
        CHECK(!r.body);
        http_response_free(&r);
}

TEST(timeout)
{
        _cleanup_(peer_stop) struct peer p = {0};
        _cleanup_free_ char *url = NULL, *error = NULL;
        struct http_response r = {0};

        if (peer_start(&p, 0) < 0)
                return;
        url = url_of(&p, "/_test/sleep?ms=3000");
        struct http_request req = {.url = url, .timeout_ms = 200, .attempts = 2, .backoff_ms = 10};
        long long start = now_ms();
        CHECK_INTEQ(http_do(&req, &r, &error), -ETIMEDOUT);
        CHECK(now_ms() - start < 2000);
        CHECK(error && strstr(error, "timed out after 200 ms (2 attempts)"));
        http_response_free(&r);
}

TEST(response_limits)
{
        _cleanup_(peer_stop) struct peer p = {0};
        _cleanup_free_ char *exact = NULL, *over = NULL, *chunked = NULL, *error = NULL;
        struct http_response r = {0};

        if (peer_start(&p, 0) < 0)
                return;
        exact = url_of(&p, "/_test/big?n=1000");
        over = url_of(&p, "/_test/big?n=200000");
        chunked = url_of(&p, "/_test/big?n=200000&chunked=1");

        struct http_request req = {.url = exact, .max_response = 1000, .attempts = 3};
        CHECK_INTEQ(http_do(&req, &r, NULL), 0);
        CHECK_INTEQ(r.body_len, 1000);
        http_response_free(&r);

        req.url = over;
        CHECK_INTEQ(http_do(&req, &r, &error), -EFBIG);
        CHECK_INTEQ(r.body_len, 200000);
        CHECK_INTEQ(r.attempts_made, 1);
        CHECK(!r.body);
        CHECK(error && strstr(error, "response is 200000 bytes, over the limit of 1000"));
        http_response_free(&r);
        error = mfree_ptr(error);

        req.url = chunked;
        CHECK_INTEQ(http_do(&req, &r, &error), -EFBIG);
        CHECK_INTEQ(r.body_len, 0);
        CHECK(error && strstr(error, "response is over the limit of 1000 bytes"));
        http_response_free(&r);
}

TEST(redirects_stay_on_the_same_host)
{
        _cleanup_(peer_stop) struct peer p = {0};
        _cleanup_free_ char *same = NULL, *other = NULL, *see_other = NULL, *error = NULL;
        struct http_response r = {0};

        if (peer_start(&p, 0) < 0)
                return;
        same = url_of(&p, "/_test/redirect?to=/_test/echo&code=307");
        struct http_request req = {.url = same};
        CHECK_INTEQ(http_do(&req, &r, NULL), 0);
        CHECK_INTEQ(r.status, 200);
        CHECK_STREQ(r.body, "GET ");
        CHECK(!r.location);
        http_response_free(&r);

        see_other = url_of(&p, "/_test/redirect?to=/_test/echo&code=303");
        req.url = see_other;
        req.method = "HEAD";
        CHECK_INTEQ(http_do(&req, &r, NULL), 0);
        CHECK_INTEQ(r.status, 200);
        http_response_free(&r);

        other = strprintf("http://127.0.0.1:%u/_test/redirect?to=http://localhost:%u/_test/echo",
                          p.port, p.port);
        req = (struct http_request){.url = other, .attempts = 3};
        CHECK_INTEQ(http_do(&req, &r, &error), -EPERM);
        CHECK(error && strstr(error, "another host"));
        http_response_free(&r);
}

/* A request with a body is never sent twice: a POST answered 301 or 302
 * is not re-sent as a GET without its body (what libcurl and browsers do),
 * nor a PUT or POST re-sent where a 307 or 308 points. The 3xx is the
 * answer, with its Location. */
TEST(requests_with_a_body_are_not_redirected)
{
        _cleanup_(peer_stop) struct peer p = {0};
        static const char *const methods[] = {"POST", "PUT"};
        static const int codes[] = {301, 302, 303, 307, 308};

        if (peer_start(&p, 0) < 0)
                return;
        _cleanup_free_ char *want = strprintf("http://127.0.0.1:%u/_test/echo", p.port);
        for (size_t m = 0; m < ARRAY_SIZE(methods); m++)
                for (size_t i = 0; i < ARRAY_SIZE(codes); i++) {
                        _cleanup_free_ char *path =
                                strprintf("/_test/redirect?to=/_test/echo&code=%d", codes[i]);
                        _cleanup_free_ char *url = url_of(&p, path);
                        struct http_response r = {0};
                        struct http_request req = {
                                .method = methods[m], .url = url, .body = "b", .body_len = 1};
                        CHECK_INTEQ(http_do(&req, &r, NULL), 0);
                        CHECK_INTEQ(r.status, codes[i]);
                        CHECK_STREQ(r.location, want);
                        CHECK_INTEQ(r.attempts_made, 1);
                        CHECK_INTEQ(r.body_len, 0);
                        http_response_free(&r);
                }
        /* Only the redirects were asked for, never the echo. */
        CHECK_INTEQ(logged(&p), ARRAY_SIZE(methods) * ARRAY_SIZE(codes));
}

TEST(proxy_environment_is_ignored)
{
        _cleanup_(peer_stop) struct peer p = {0};
        _cleanup_free_ char *url = NULL;
        struct http_response r = {0};

        if (peer_start(&p, 0) < 0)
                return;
        url = url_of(&p, "/_test/echo");
        setenv("http_proxy", "http://127.0.0.1:9", 1);
        setenv("all_proxy", "http://127.0.0.1:9", 1);
        struct http_request req = {.url = url};
        CHECK_INTEQ(http_do(&req, &r, NULL), 0);
        CHECK_INTEQ(r.status, 200);
        unsetenv("http_proxy");
        unsetenv("all_proxy");
        http_response_free(&r);
}

TEST(bad_requests)
{
        _cleanup_free_ char *error = NULL;
        struct http_response r = {0};

        struct http_request req = {.url = "file:///etc/passwd"};
        CHECK_INTEQ(http_do(&req, &r, &error), -EINVAL);
        CHECK(error && strstr(error, "only http:// and https://"));
        error = mfree_ptr(error);
        req = (struct http_request){.url = "http://127.0.0.1:1/", .method = "get"};
        CHECK_INTEQ(http_do(&req, &r, &error), -EINVAL);
        CHECK(error && strstr(error, "invalid HTTP method"));
}

TAP_MAIN
