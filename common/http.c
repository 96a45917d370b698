/* The one file that includes libcurl. One easy handle per http_do() call,
 * reset before every exchange so no option leaks from one to the next, and
 * kept for the whole call so retries can reuse the connection. Redirects
 * are followed here rather than by libcurl: libcurl would carry our custom
 * headers (a metadata token, say) to whatever host a Location names, and
 * would re-send a POST answered 301 or 302 as a GET without its body. */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <strings.h>

#include "dl.h"
#include "util.h"

#ifndef FIRSTBOOT_VERSION
#define FIRSTBOOT_VERSION "unknown"
#endif

#define DEFAULT_TIMEOUT_MS 30000LL
#define MAX_REDIRECTS      5
#define MAX_METHOD         16

/* libcurl is loaded with the first request, not at start: it and the
 * libraries it pulls in (TLS, Kerberos, LDAP, IDN, ...) are most of the
 * agent's start-up time, and a boot with nothing to fetch or report (a
 * local datasource, nothing left to do) never needs them. */
#define CURL_SYMBOLS(X)                                                                            \
        X(curl_global_init)                                                                        \
        X(curl_easy_init)                                                                          \
        X(curl_easy_cleanup)                                                                       \
        X(curl_easy_reset)                                                                         \
        X(curl_easy_setopt)                                                                        \
        X(curl_easy_getinfo)                                                                       \
        X(curl_easy_perform)                                                                       \
        X(curl_easy_strerror)                                                                      \
        X(curl_free)                                                                               \
        X(curl_slist_append)                                                                       \
        X(curl_slist_free_all)                                                                     \
        X(curl_url)                                                                                \
        X(curl_url_cleanup)                                                                        \
        X(curl_url_get)                                                                            \
        X(curl_url_set)
DL_DEFINE(libcurl, SONAME_LIBCURL, CURL_SYMBOLS);

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result = CURLE_FAILED_INIT;
static char global_error[256];

static void global_init(void)
{
        if (dl_load(&libcurl) < 0) {
                snprintf(global_error, sizeof(global_error), "%s", libcurl.error);
                return;
        }
        global_result = sym_curl_global_init(CURL_GLOBAL_DEFAULT);
        if (global_result != CURLE_OK)
                snprintf(global_error, sizeof(global_error), "%s",
                         sym_curl_easy_strerror(global_result));
}

static void curl_easy_cleanupp(CURL **c)
{
        if (*c)
                sym_curl_easy_cleanup(*c);
}

static void curl_slist_free_allp(struct curl_slist **l)
{
        sym_curl_slist_free_all(*l);
}

static void curl_url_cleanupp(CURLU **u)
{
        if (*u)
                sym_curl_url_cleanup(*u);
}

/* Where a response body goes: a buffer that refuses to grow past max. */
struct sink {
        CURL *curl;
        struct buf b;
        size_t max;
        long long seen; /* the announced or read size, when over max */
        bool announced, too_big, oom;
};

static size_t sink_write(char *p, size_t size, size_t nmemb, void *userdata)
{
        struct sink *s = userdata;
        size_t n = size * nmemb;

        if (s->b.len == 0) {
                curl_off_t announced = -1;
                if (sym_curl_easy_getinfo(s->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
                                          &announced) == CURLE_OK &&
                    announced > 0 && (unsigned long long)announced > s->max) {
                        s->seen = (long long)announced;
                        s->announced = s->too_big = true;
                        return 0;
                }
        }
        if (n > s->max - s->b.len) {
                s->seen = (long long)(s->b.len + n);
                s->too_big = true;
                return 0;
        }
        if (buf_append(&s->b, p, n) < 0) {
                s->oom = true;
                return 0;
        }
        return n;
}

static void sink_reset(struct sink *s)
{
        buf_free(&s->b);
        s->seen = 0;
        s->announced = s->too_big = s->oom = false;
}

static bool method_is_valid(const char *m)
{
        size_t n = strlen(m);

        if (n == 0 || n > MAX_METHOD)
                return false;
        for (const char *p = m; *p; p++)
                if (*p < 'A' || *p > 'Z')
                        return false;
        return true;
}

static bool has_http_scheme(const char *url)
{
        return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

static bool is_redirect(long status)
{
        return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static bool is_retryable_status(long status)
{
        return status == 429 || (status >= 500 && status <= 599);
}

/* Whether a failed exchange is worth another attempt, and the errno it
 * becomes when it is the last one. */
static bool is_retryable_code(CURLcode code, int *ret_errno)
{
        switch (code) {
        case CURLE_OPERATION_TIMEDOUT:
                *ret_errno = ETIMEDOUT;
                return true;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                *ret_errno = EHOSTUNREACH;
                return true;
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_BAD_FUNCTION_ARGUMENT:
                *ret_errno = EINVAL;
                return false;
        case CURLE_OUT_OF_MEMORY:
                *ret_errno = ENOMEM;
                return false;
        default:
                *ret_errno = EIO;
                return false;
        }
}

/* Whether two absolute URLs share scheme, host and port. */
static bool same_origin(const char *a, const char *b)
{
        static const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
        _cleanup_(curl_url_cleanupp) CURLU *ua = sym_curl_url();
        _cleanup_(curl_url_cleanupp) CURLU *ub = sym_curl_url();

        if (!ua || !ub || sym_curl_url_set(ua, CURLUPART_URL, a, 0) != CURLUE_OK ||
            sym_curl_url_set(ub, CURLUPART_URL, b, 0) != CURLUE_OK)
                return false;
        for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
                char *pa = NULL, *pb = NULL;
                bool same = sym_curl_url_get(ua, parts[i], &pa, CURLU_DEFAULT_PORT) == CURLUE_OK &&
                            sym_curl_url_get(ub, parts[i], &pb, CURLU_DEFAULT_PORT) == CURLUE_OK &&
                            strcasecmp(pa, pb) == 0;
                sym_curl_free(pa);
                sym_curl_free(pb);
                if (!same)
                        return false;
        }
        return true;
}

struct exchange {
        const char *method;
        bool with_body;
        const void *body;
        size_t body_len;
        long long timeout_ms, connect_timeout_ms;
};

static CURLcode setup(CURL *c, const char *url, const struct exchange *x,
                      struct curl_slist *headers, struct sink *s, char *errbuf)
{
        CURLcode e = CURLE_OK;

        sym_curl_easy_reset(c);
#define SET(opt, val)                                                                              \
        do {                                                                                       \
                if (e == CURLE_OK)                                                                 \
                        e = sym_curl_easy_setopt(c, opt, val);                                     \
        } while (0)
        SET(CURLOPT_URL, url);
        SET(CURLOPT_ERRORBUFFER, errbuf);
        SET(CURLOPT_NOSIGNAL, 1L);
        /* An explicit empty proxy: http_proxy and friends in the
         * environment must not divert metadata requests. */
        SET(CURLOPT_PROXY, "");
#if LIBCURL_VERSION_NUM >= 0x075500
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
        SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        SET(CURLOPT_FOLLOWLOCATION, 0L);
        SET(CURLOPT_TIMEOUT_MS, (long)x->timeout_ms);
        SET(CURLOPT_CONNECTTIMEOUT_MS, (long)x->connect_timeout_ms);
        SET(CURLOPT_USERAGENT, "firstboot/" FIRSTBOOT_VERSION);
        SET(CURLOPT_HTTPHEADER, headers);
        SET(CURLOPT_WRITEFUNCTION, sink_write);
        SET(CURLOPT_WRITEDATA, s);
        if (streq(x->method, "GET")) {
                SET(CURLOPT_HTTPGET, 1L);
        } else if (streq(x->method, "HEAD")) {
                SET(CURLOPT_NOBODY, 1L);
        } else {
                if (!streq(x->method, "POST"))
                        SET(CURLOPT_CUSTOMREQUEST, x->method);
                SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
                SET(CURLOPT_POSTFIELDS, x->body_len > 0 ? x->body : "");
        }
#undef SET
        return e;
}

/* One attempt: an exchange plus, for GET and HEAD, the same-origin
 * redirects it leads to. Returns 0 with the status when a server answered
 * (and, for a 3xx not followed, *ret_location); otherwise a negative errno
 * with *ret_msg saying why and *ret_retry whether another attempt may
 * help. */
static int attempt(CURL *c, const struct http_request *req, struct exchange x,
                   struct curl_slist *headers, struct sink *s, long *ret_status,
                   char **ret_location, char **ret_msg, bool *ret_retry)
{
        _cleanup_free_ char *url = strdup(req->url);
        char errbuf[CURL_ERROR_SIZE];

        *ret_retry = false;
        if (!url)
                return fail_with(ret_msg, -ENOMEM, "out of memory");
        for (int hops = 0;; hops++) {
                long status = 0, os_errno = 0;

                sink_reset(s);
                errbuf[0] = '\0';
                CURLcode code = setup(c, url, &x, headers, s, errbuf);
                if (code != CURLE_OK)
                        return fail_with(ret_msg, -EINVAL, "%s", sym_curl_easy_strerror(code));
                code = sym_curl_easy_perform(c);
                (void)sym_curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
                *ret_status = status;
                if (s->too_big) {
                        if (s->announced)
                                return fail_with(ret_msg, -EFBIG,
                                                 "response is %lld bytes, over the limit of %zu",
                                                 s->seen, s->max);
                        return fail_with(ret_msg, -EFBIG, "response is over the limit of %zu bytes",
                                         s->max);
                }
                if (s->oom)
                        return fail_with(ret_msg, -ENOMEM, "out of memory");
                if (code != CURLE_OK) {
                        int e;
                        *ret_retry = is_retryable_code(code, &e);
                        (void)sym_curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
                        if (code == CURLE_OPERATION_TIMEDOUT)
                                return fail_with(ret_msg, -e, "timed out after %lld ms",
                                                 x.timeout_ms);
                        if (code == CURLE_COULDNT_CONNECT && os_errno > 0)
                                return fail_with(ret_msg, -e, "%s", strerror((int)os_errno));
                        return fail_with(ret_msg, -e, "%s",
                                         errbuf[0] ? errbuf : sym_curl_easy_strerror(code));
                }
                if (!is_redirect(status))
                        return 0;

                const char *location = NULL;
                if (sym_curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location) != CURLE_OK ||
                    !location)
                        return 0; /* a 3xx without a Location: the caller's to judge */
                /* A request that carries something (PUT, POST: a token
                 * request, the callback) is never sent again elsewhere:
                 * its 3xx is the answer, for the caller to judge. */
                if (!streq(x.method, "GET") && !streq(x.method, "HEAD")) {
                        free(*ret_location);
                        *ret_location = strdup(location);
                        return 0;
                }
                if (!same_origin(url, location))
                        return fail_with(ret_msg, -EPERM,
                                         "HTTP %ld redirects to %s, another host; not followed",
                                         status, location);
                if (hops >= MAX_REDIRECTS)
                        return fail_with(ret_msg, -ELOOP, "more than %d redirects", MAX_REDIRECTS);
                char *next = strdup(location);
                if (!next)
                        return fail_with(ret_msg, -ENOMEM, "out of memory");
                free(url);
                url = next;
        }
}

int http_do(const struct http_request *req, struct http_response *ret, char **ret_error)
{
        _cleanup_(curl_easy_cleanupp) CURL *c = NULL;
        _cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
        _cleanup_free_ char *msg = NULL, *location = NULL;
        struct sink s = {0};
        bool has_expect = false, retry = false;
        long status = 0;
        unsigned n;
        int r;

        *ret = (struct http_response){0};
        if (!req || !req->url)
                return fail_with(ret_error, -EINVAL, "no URL");
        const char *method = req->method ? req->method : "GET";
        if (!method_is_valid(method))
                return fail_with(ret_error, -EINVAL, "%s: invalid HTTP method '%s'", req->url,
                                 method);
        if (!has_http_scheme(req->url))
                return fail_with(ret_error, -EINVAL,
                                 "%s %s: only http:// and https:// URLs are allowed", method,
                                 req->url);

        pthread_once(&global_once, global_init);
        if (global_result != CURLE_OK)
                return fail_with(ret_error, -EIO, "cannot initialize libcurl: %s", global_error);
        c = sym_curl_easy_init();
        if (!c)
                return fail_with(ret_error, -ENOMEM, "cannot create a libcurl handle");

        for (char *const *h = req->headers; h && *h; h++) {
                struct curl_slist *l = sym_curl_slist_append(headers, *h);
                if (!l)
                        return fail_with(ret_error, -ENOMEM, "out of memory");
                headers = l;
                if (strncasecmp(*h, "Expect:", 7) == 0)
                        has_expect = true;
        }
        /* No "Expect: 100-continue" pause on large bodies: small servers
         * never answer it and the request would stall for a second. */
        if (!has_expect) {
                struct curl_slist *l = sym_curl_slist_append(headers, "Expect:");
                if (!l)
                        return fail_with(ret_error, -ENOMEM, "out of memory");
                headers = l;
        }

        long long timeout = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
        struct exchange x = {
                .method = method,
                .body = req->body,
                .body_len = req->body ? req->body_len : 0,
                .timeout_ms = timeout,
                .connect_timeout_ms =
                        req->connect_timeout_ms > 0 ? req->connect_timeout_ms : timeout,
        };
        unsigned attempts = req->attempts > 0 ? req->attempts : 1;
        long long pause = req->backoff_ms > 0 ? req->backoff_ms : 0;

        s.curl = c;
        s.max = req->max_response > 0 ? req->max_response : HTTP_DEFAULT_MAX_RESPONSE;
        for (n = 1;; n++) {
                free(msg);
                msg = NULL;
                free(location);
                location = NULL;
                r = attempt(c, req, x, headers, &s, &status, &location, &msg, &retry);
                if (r >= 0 && !is_retryable_status(status))
                        break;
                if (r < 0 && !retry)
                        break;
                if (n >= attempts)
                        break;
                if (pause > 0)
                        sleep_ms(pause);
                pause = pause * 2 < HTTP_MAX_BACKOFF_MS ? pause * 2 : HTTP_MAX_BACKOFF_MS;
        }

        if (r == -EFBIG) {
                ret->status = status;
                ret->body_len = s.announced ? (size_t)s.seen : 0;
                ret->attempts_made = n;
                sink_reset(&s);
                return fail_with(ret_error, r, "%s %s: %s", method, req->url,
                                 msg ? msg : "too big");
        }
        if (r < 0) {
                sink_reset(&s);
                if (retry)
                        return fail_with(ret_error, r, "%s %s: %s (%u attempt%s)", method, req->url,
                                         msg ? msg : strerror(-r), n, n == 1 ? "" : "s");
                return fail_with(ret_error, r, "%s %s: %s", method, req->url,
                                 msg ? msg : strerror(-r));
        }
        ret->status = status;
        ret->body_len = s.b.len;
        ret->body = buf_steal(&s.b);
        ret->location = TAKE_PTR(location);
        ret->attempts_made = n;
        return 0;
}

void http_response_free(struct http_response *r)
{
        if (!r)
                return;
        free(r->body);
        free(r->location);
        *r = (struct http_response){0};
}
