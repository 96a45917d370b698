/* The one file that talks to hiredis (Debian's libhiredis, dlopen()ed
 * when first needed: only `firstboot agent` and `imagegen job` use it).
 * Commands go as an argv, never through a format string. Nothing here
 * logs; errors come back as a negative errno and a sentence. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define SONAME_LIBHIREDIS "libhiredis.so.0.14"

struct redis_url {
        char *host;
        int port;       /* 6379 when not given */
        char *user;     /* NULL: the default user (AUTH password) */
        char *password; /* NULL: no AUTH */
        int db;         /* SELECT, 0 when not given */
        bool tls;       /* rediss:// */
};

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (USER and PASSWORD
 * percent-decoded, HOST a name, an IPv4 address or [IPv6]). rediss://
 * is parsed, and redis_connect() refuses it: Debian 12's hiredis 0.14
 * has no TLS. -EINVAL with *ret_error saying what is wrong; the error
 * never repeats the password. */
int redis_url_parse(const char *url, struct redis_url *ret, char **ret_error);
void redis_url_done(struct redis_url *u);

enum redis_reply_type {
        REDIS_R_NIL,
        REDIS_R_STRING,
        REDIS_R_INTEGER,
        REDIS_R_ARRAY,
        REDIS_R_STATUS,
        REDIS_R_ERROR,
};

struct redis_reply {
        enum redis_reply_type type;
        long long integer;
        char *str; /* STRING, STATUS, ERROR: NUL terminated, len bytes */
        size_t len;
        struct redis_reply **items; /* ARRAY */
        size_t n;
};
void redis_reply_free(struct redis_reply *r);
static inline void redis_reply_freep(struct redis_reply **r)
{
        redis_reply_free(*r);
}
#define _cleanup_redis_reply_ __attribute__((cleanup(redis_reply_freep)))

struct redis;

/* Connects (timeout_ms for the connection and every reply later), then
 * AUTH and SELECT as the URL says. -ELIBACC without libhiredis,
 * -EPROTONOSUPPORT for rediss://, -ECONNREFUSED/-ETIMEDOUT/-EIO for the
 * connection, -EACCES when AUTH is refused. */
int redis_connect(const struct redis_url *u, long long timeout_ms, struct redis **ret,
                  char **ret_error);

/* redis_connect() until it works, waiting 100 ms after the first failure,
 * doubling up to max_backoff_ms, in slices of at most 100 ms so that stop
 * (may be NULL) is asked often. -ECANCELED when stop said so; errors that
 * another attempt cannot mend (-ELIBACC, -EPROTONOSUPPORT, -EACCES) at
 * once. on_error (may be NULL) hears each failure. */
int redis_connect_retry(const struct redis_url *u, long long timeout_ms, long long max_backoff_ms,
                        bool (*stop)(void *userdata),
                        void (*on_error)(void *userdata, int error, const char *message),
                        void *userdata, struct redis **ret);

void redis_free(struct redis *r);
static inline void redis_freep(struct redis **r)
{
        redis_free(*r);
}
#define _cleanup_redis_ __attribute__((cleanup(redis_freep)))

/* Runs one command; argv[i] is lens[i] bytes (lens NULL: strlen). A reply
 * of type REDIS_R_ERROR is returned as a reply (the connection is fine).
 * reply_timeout_ms (0: the connection's) bounds the wait for the reply,
 * for blocking commands. -EIO (the connection is then broken: free it and
 * connect again) with *ret_error. */
int redis_command(struct redis *r, int argc, const char *const *argv, const size_t *lens,
                  long long reply_timeout_ms, struct redis_reply **ret, char **ret_error);

/* After SUBSCRIBE (sent with redis_command(), whose reply is the first
 * confirmation): the next reply pushed by the server, waiting at most
 * timeout_ms. 0 and *ret NULL when none came in time; 1 with *ret. */
int redis_next_reply(struct redis *r, long long timeout_ms, struct redis_reply **ret,
                     char **ret_error);
