/* Delivering the controller callback: one signed JSON POST, retried with
 * backoff within a fixed wall-clock budget, so a controller that is down or
 * hangs never holds up the boot for longer than deadline_ms. */
#pragma once

struct phonehome_options {
        const char *url;
        const char *token;     /* HMAC key; NULL or "" = unsigned */
        long long timeout_ms;  /* per attempt; 0 = 10000 */
        unsigned attempts;     /* 0 = 5 */
        long long backoff_ms;  /* first pause between attempts, doubling; 0 = 1000 */
        long long deadline_ms; /* total wall time; 0 = 60000; never exceeded */
        /* When not NULL: set to the number of attempts made, also on failure. */
        unsigned *ret_attempts;
};

/* POSTs body (JSON text) to o->url with Content-Type: application/json,
 * User-Agent: firstboot/<version> and, with a token,
 * X-Firstboot-Signature: sha256=<hex HMAC-SHA256 of the body bytes>.
 * Transport errors, 5xx, 429 and 3xx are retried with a doubling backoff,
 * bounded by o->attempts and o->deadline_ms. Only a 2xx answer to the POST
 * itself is delivery: a redirect is never followed (the message names its
 * Location).
 *
 * Returns the number of attempts used (>0) on a 2xx answer; -EPROTO on any
 * other answer but 5xx/429/3xx (not retried); -EHOSTUNREACH when giving up and
 * the last attempt could not reach the controller (refused, unresolvable,
 * reset); -ETIMEDOUT when giving up otherwise (timeouts, 5xx/429/3xx to
 * the end, the deadline spent); -EINVAL for a URL that is not http:// or
 * https://, -EPERM for a redirect to another host (neither retried). On
 * failure *ret_error (when not NULL) says why, naming the HTTP status and
 * the first line of the controller's answer. */
int phonehome_send(const struct phonehome_options *o, const char *body, char **ret_error);
