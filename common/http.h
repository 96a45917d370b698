/* HTTP requests with bounded retries: the one file that talks to libcurl.
 * Used by the datasources (metadata services) and the phone-home
 * callback. Proxies from the environment are ignored and only http:// and
 * https:// are spoken. Redirects are followed only for GET and HEAD, only
 * within the same scheme, host and port (a metadata service never leaves
 * its own origin, and its token header never goes anywhere else), and at
 * most 5 times. A request with a body (PUT, POST) is never sent twice: a
 * 3xx to it is the answer, returned with its Location for the caller to
 * judge; the phone-home callback counts it as not delivered. */
#pragma once

#include <stddef.h>

/* The cap on the pause between attempts. */
#define HTTP_MAX_BACKOFF_MS 30000LL
/* What max_response 0 means. */
#define HTTP_DEFAULT_MAX_RESPONSE (16U * 1024U * 1024U)

struct http_request {
        const char *method;   /* "GET" (also when NULL), "HEAD", "PUT", "POST", ... */
        const char *url;      /* http:// or https:// */
        char *const *headers; /* "Name: value", NULL-terminated; may be NULL */
        const void *body;     /* sent with every method but GET and HEAD */
        size_t body_len;
        long long timeout_ms;         /* per attempt, the whole exchange; 0 = 30000 */
        long long connect_timeout_ms; /* per attempt; 0 = timeout_ms */
        unsigned attempts;            /* total tries; 0 counts as 1 */
        long long backoff_ms;         /* first pause, doubled each retry, capped; 0 = none */
        size_t max_response;          /* body bytes; 0 = HTTP_DEFAULT_MAX_RESPONSE */
};

struct http_response {
        long status;    /* the HTTP status of the last answer */
        char *location; /* a 3xx not followed: its Location (absolute), else NULL */
        char *body;     /* NUL-terminated (not counted in body_len); never NULL on success */
        size_t body_len;
        unsigned attempts_made;
};

/* Performs req. Transport errors (refused, unresolvable, reset, timed out),
 * 5xx and 429 answers are retried up to req->attempts in total, pausing
 * backoff_ms, then twice that, ... up to HTTP_MAX_BACKOFF_MS. Any other
 * answer, 4xx included, ends the loop.
 *
 * Returns 0 with *ret filled whenever a server answered, whatever the status
 * (a 5xx after the last attempt too): the caller decides what a status
 * means. Otherwise a negative errno and, when ret_error is not NULL, a
 * message such as "GET http://host/x: Connection refused (3 attempts)":
 *   -ETIMEDOUT     the last attempt timed out;
 *   -EHOSTUNREACH  the last attempt could not reach or finish talking to the
 *                  server (refused, unresolvable, reset, TLS handshake);
 *   -EFBIG         the response body is over max_response (not retried);
 *                  ret->status is set and ret->body_len holds the size the
 *                  server announced (Content-Length), or 0 when it did not;
 *   -EPERM         a GET or HEAD redirected to another scheme, host or port;
 *   -ELOOP         a GET or HEAD redirected more than 5 times;
 *   -EINVAL        a bad request (URL, method, scheme);
 *   -EIO/-ENOMEM   anything else.
 * On every failure but -EFBIG *ret is zeroed. http_response_free() is safe
 * on it in every case. */
int http_do(const struct http_request *req, struct http_response *ret, char **ret_error);
void http_response_free(struct http_response *r);
