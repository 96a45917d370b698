/* The one file that talks to hiredict (the hiredis 1.x fork Debian 12
 * has in bookworm-backports: libhiredict1.3.1, with hiredict_ssl), and
 * to OpenSSL for rediss://. Both are dlopen()ed when first needed: only
 * `firstboot agent` and `imagegen job` use them. Commands go as an argv,
 * never through a format string. Nothing here logs; errors come back as
 * a negative errno and a sentence. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The sonames of libhiredict1.3.1 (its objdump -p), and of libssl3. */
#define SONAME_LIBHIREDICT     "libhiredict.so.1.3.1"
#define SONAME_LIBHIREDICT_SSL "libhiredict_ssl.so.1.3.1"
#define SONAME_LIBSSL          "libssl.so.3"

struct redis_url {
        char *host;
        int port;       /* 6379 when not given */
        char *user;     /* NULL: the default user (AUTH password) */
        char *password; /* NULL: no AUTH */
        int db;         /* SELECT, 0 when not given */
        bool tls;       /* rediss:// */
        /* Not in the URL: set by the caller for rediss://. NULL: the
         * system's CA store; no client certificate. */
        char *tls_ca_file;   /* PEM: trust only these CAs */
        char *tls_cert_file; /* PEM client certificate (chain) */
        char *tls_key_file;  /* its PEM private key */
        /* How the caller's user names tls_ca_file in messages (the
         * option or key, e.g. "--tls-ca-file"); not freed. */
        const char *tls_ca_option;
        /* How messages name those three files when they are not the
         * caller's own names (the agent hands OpenSSL /proc/self/fd/N):
         * the caller's paths; NULL: the file as above. Not freed. */
        const char *tls_ca_shown, *tls_cert_shown, *tls_key_shown;
};

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (USER and PASSWORD
 * percent-decoded, HOST a name, an IPv4 address or [IPv6]); rediss://
 * the same over TLS. -EINVAL with *ret_error saying what is wrong; the
 * error never repeats the password. */
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

/* Connects (timeout_ms for the connection, for the whole TLS handshake,
 * and for every reply later), then AUTH and SELECT as the URL says, then
 * PING: a server that drops the client right after connecting fails
 * here. rediss:// verifies the server's certificate chain (the system's
 * CA store, or only tls_ca_file) and that a subjectAltName names HOST (a
 * DNS name, or an IP address; never the CN), and sends HOST as SNI when
 * it is a name. -EINTR when a signal interrupted the handshake. -ELIBACC without libhiredict (or
 * its SSL library and libssl for rediss://), -ECONNREFUSED/-ETIMEDOUT/-EIO for the connection,
 * -EKEYREJECTED when the server's certificate is not trusted or not for HOST, -ENOKEY when a TLS
 * file cannot be loaded, -EPROTO for another TLS failure, -EACCES when AUTH is refused. */
int redis_connect(const struct redis_url *u, long long timeout_ms, struct redis **ret,
                  char **ret_error);

/* Whether another attempt may mend what redis_connect() returned: not
 * for a missing library, a refused AUTH, an untrusted certificate or a
 * TLS file that does not load. */
bool redis_error_is_final(int error);

/* redis_connect() until it works, waiting 100 ms after the first failure,
 * doubling up to max_backoff_ms, in slices of at most 100 ms so that stop
 * (may be NULL) is asked often. -ECANCELED when stop said so; errors that
 * another attempt cannot mend (redis_error_is_final()) at once. on_error
 * (may be NULL) hears each failure. */
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
 * for blocking commands. <0 (the connection is then broken: free it and
 * connect again) with *ret_error: the errno of the read or write that
 * failed, -ECONNRESET when the server closed it, -EPROTO for a TLS error
 * (OpenSSL's reason in *ret_error), -ETIMEDOUT, else -EIO. */
int redis_command(struct redis *r, int argc, const char *const *argv, const size_t *lens,
                  long long reply_timeout_ms, struct redis_reply **ret, char **ret_error);

/* After SUBSCRIBE (sent with redis_command(), whose reply is the first
 * confirmation): the next reply pushed by the server, waiting at most
 * timeout_ms. 0 and *ret NULL when none came in time; 1 with *ret. */
int redis_next_reply(struct redis *r, long long timeout_ms, struct redis_reply **ret,
                     char **ret_error);
