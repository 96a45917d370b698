/* The controller callback. The retry loop is ours rather than http_do()'s
 * so the whole delivery fits in one wall-clock budget: every attempt's
 * timeout and every pause is cut to what is left of the deadline. */
#include "phonehome.h"

#include <errno.h>
#include <strings.h>

#include "crypto.h"
#include "http.h"
#include "util.h"

#ifndef FIRSTBOOT_VERSION
#define FIRSTBOOT_VERSION "unknown"
#endif

#define DEFAULT_TIMEOUT_MS  10000LL
#define DEFAULT_ATTEMPTS    5U
#define DEFAULT_BACKOFF_MS  1000LL
#define DEFAULT_DEADLINE_MS 60000LL
#define MAX_BACKOFF_MS      30000LL
/* The controller's answer is not used; enough to hold an error page. */
#define MAX_RESPONSE (64U * 1024U)

static bool is_http_url(const char *url)
{
        return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

/* A 3xx is retried too: the callback is never re-sent where a Location
 * points (a redirect could turn the POST into a GET without its body, or
 * carry it to another host), so only a 2xx to the POST itself is delivery,
 * and a controller in the middle of a move may answer it next time. */
static bool is_retryable_status(long status)
{
        return status == 429 || (status >= 300 && status <= 399) ||
               (status >= 500 && status <= 599);
}

/* " (a redirect to URL, not followed)" for a 3xx, else "". */
static char *redirect_note(long status, const char *location)
{
        if (status < 300 || status > 399)
                return strdup("");
        if (!location)
                return strdup(" (a redirect without a Location, not followed)");
        _cleanup_free_ char *shown = strndup(location, 200);
        for (char *p = shown; p && *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
                        *p = '?';
        return shown ? strprintf(" (a redirect to %s, not followed)", shown) : NULL;
}

/* ": <first line of the answer>", short and printable, or "" when the
 * answer has no text: error pages often say what was wrong. */
static char *answer_snippet(const struct http_response *resp)
{
        size_t n = 0;

        if (resp->body)
                while (n < resp->body_len && n < 160 && resp->body[n] != '\n' &&
                       resp->body[n] != '\r')
                        n++;
        if (n == 0)
                return strdup("");
        char *s = strprintf(": %.*s", (int)n, resp->body);
        for (char *p = s ? s + 2 : NULL; p && *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
                        *p = '?';
        return s;
}

static bool is_final_error(int r)
{
        return r == -EPERM || r == -EINVAL || r == -ENOMEM;
}

static long long min_ll(long long a, long long b)
{
        return a < b ? a : b;
}

int phonehome_send(const struct phonehome_options *o, const char *body, char **ret_error)
{
        _cleanup_free_ char *signature = NULL, *last_error = NULL, *last_location = NULL;
        long last_status = 0;
        int last_r = 0, r;
        unsigned n = 0;

        if (o && o->ret_attempts)
                *o->ret_attempts = 0;
        if (!o || !o->url || !body)
                return fail_with(ret_error, -EINVAL, "no phone-home URL or body");
        if (!is_http_url(o->url))
                return fail_with(ret_error, -EINVAL,
                                 "phone-home URL must start with http:// or https://");

        long long timeout = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
        unsigned attempts = o->attempts > 0 ? o->attempts : DEFAULT_ATTEMPTS;
        long long pause = o->backoff_ms > 0 ? o->backoff_ms : DEFAULT_BACKOFF_MS;
        long long deadline = o->deadline_ms > 0 ? o->deadline_ms : DEFAULT_DEADLINE_MS;
        size_t body_len = strlen(body);

        if (o->token && *o->token) {
                char hex[65];
                hmac_sha256_hex(o->token, strlen(o->token), body, body_len, hex);
                signature = strprintf("X-Firstboot-Signature: sha256=%s", hex);
                if (!signature)
                        return fail_with(ret_error, -ENOMEM, "out of memory");
        }
        char *headers[] = {
                (char *)"Content-Type: application/json",
                (char *)"User-Agent: firstboot/" FIRSTBOOT_VERSION,
                signature,
                NULL,
        };

        long long start = now_ms(), end = start + deadline;
        for (;;) {
                long long left = end - now_ms();
                if (left <= 0)
                        break;

                long long t = min_ll(timeout, left);
                struct http_request req = {
                        .method = "POST",
                        .url = o->url,
                        .headers = headers,
                        .body = body,
                        .body_len = body_len,
                        .timeout_ms = t,
                        .connect_timeout_ms = t,
                        .attempts = 1,
                        .backoff_ms = 0,
                        .max_response = MAX_RESPONSE,
                };
                struct http_response resp = {0};
                char *error = NULL;

                n++;
                if (o->ret_attempts)
                        *o->ret_attempts = n;
                r = http_do(&req, &resp, &error);
                /* An answer too long to keep still is an answer: its status counts. */
                bool answered = r >= 0 || r == -EFBIG;
                long status = answered ? resp.status : 0;
                free(last_error);
                last_error = error;
                last_r = r;
                last_status = status;
                free(last_location);
                last_location = TAKE_PTR(resp.location);

                if (answered && status >= 200 && status <= 299) {
                        http_response_free(&resp);
                        return (int)n;
                }
                if (answered && !is_retryable_status(status)) {
                        _cleanup_free_ char *snippet = answer_snippet(&resp);
                        http_response_free(&resp);
                        return fail_with(ret_error, -EPROTO, "the controller answered HTTP %ld%s",
                                         status, snippet ? snippet : "");
                }
                http_response_free(&resp);
                /* A bad URL, no memory: no retry helps. */
                if (is_final_error(r))
                        return fail_with(ret_error, r, "%s", error ? error : strerror(-r));

                if (n >= attempts)
                        break;
                /* A pause that would use up the budget leaves no time for
                 * another attempt: give up now instead. */
                left = end - now_ms();
                if (pause >= left)
                        break;
                sleep_ms(pause);
                pause = min_ll(pause * 2, MAX_BACKOFF_MS);
        }

        long long elapsed = now_ms() - start;
        if (last_status > 0) {
                _cleanup_free_ char *note = redirect_note(last_status, last_location);
                return fail_with(ret_error, -ETIMEDOUT,
                                 "gave up after %u attempt%s in %lld ms: the controller answered "
                                 "HTTP %ld%s",
                                 n, n == 1 ? "" : "s", elapsed, last_status, note ? note : "");
        }
        const char *why = last_error ? last_error : last_r < 0 ? strerror(-last_r) : "no time left";
        return fail_with(
                ret_error, last_r == -ETIMEDOUT || last_r >= 0 ? -ETIMEDOUT : -EHOSTUNREACH,
                "gave up after %u attempt%s in %lld ms: %s", n, n == 1 ? "" : "s", elapsed, why);
}
