#include "redis.h"
#include "dl.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/time.h>

#include <hiredict/hiredict.h>
#include <hiredict/hiredict_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

/* hiredict is loaded, not linked: firstboot's first boot never needs it.
 * Its blocking API is all this file uses. It is loaded RTLD_GLOBAL:
 * libhiredict_ssl uses its symbols without naming it as needed. */
#define HIREDICT_SYMBOLS(X)                                                                        \
        X(redictConnectWithTimeout)                                                                \
        X(redictSetTimeout)                                                                        \
        X(redictEnableKeepAlive)                                                                   \
        X(redictCommandArgv)                                                                       \
        X(redictGetReplyFromReader)                                                                \
        X(redictBufferRead)                                                                        \
        X(redictFree)                                                                              \
        X(freeReplyObject)
DL_DEFINE_GLOBAL(libhiredict, SONAME_LIBHIREDICT, HIREDICT_SYMBOLS);

/* rediss://: hiredict_ssl reads and writes through an SSL made here, as
 * its redictCreateSSLContext() sets SNI but never checks the certificate
 * is for the host (it calls no SSL_set1_host or X509_check_host): the
 * chain alone would let any certificate from a trusted CA pass. */
#define HIREDICT_SSL_SYMBOLS(X) X(redictInitiateSSL)
DL_DEFINE(libhiredict_ssl, SONAME_LIBHIREDICT_SSL, HIREDICT_SSL_SYMBOLS);

#define SSL_SYMBOLS(X)                                                                             \
        X(TLS_client_method)                                                                       \
        X(SSL_CTX_new)                                                                             \
        X(SSL_CTX_free)                                                                            \
        X(SSL_CTX_ctrl)                                                                            \
        X(SSL_CTX_set_verify)                                                                      \
        X(SSL_CTX_set_default_verify_paths)                                                        \
        X(SSL_CTX_load_verify_locations)                                                           \
        X(SSL_CTX_use_certificate_chain_file)                                                      \
        X(SSL_CTX_use_PrivateKey_file)                                                             \
        X(SSL_CTX_check_private_key)                                                               \
        X(SSL_new)                                                                                 \
        X(SSL_free)                                                                                \
        X(SSL_ctrl)                                                                                \
        X(SSL_set1_host)                                                                           \
        X(SSL_set_hostflags)                                                                       \
        X(SSL_get_verify_result)                                                                   \
        X(SSL_do_handshake)                                                                        \
        X(SSL_get_error)                                                                           \
        X(SSL_pending)
DL_DEFINE(libssl, SONAME_LIBSSL, SSL_SYMBOLS);

#define TLS_CRYPTO_SYMBOLS(X)                                                                      \
        X(ERR_get_error)                                                                           \
        X(ERR_clear_error)                                                                         \
        X(ERR_error_string_n)                                                                      \
        X(X509_verify_cert_error_string)
DL_DEFINE(libcrypto_tls, SONAME_LIBCRYPTO, TLS_CRYPTO_SYMBOLS);

struct redis {
        redictContext *c;
        SSL_CTX *ssl_ctx; /* rediss:// */
        SSL *ssl;         /* owned by c once the handshake is done */
        long long timeout_ms;
};

void redis_url_done(struct redis_url *u)
{
        free(u->host);
        free(u->tls_ca_file);
        free(u->tls_cert_file);
        free(u->tls_key_file);
        free(u->user);
        if (u->password)
                explicit_bzero(u->password, strlen(u->password));
        free(u->password);
        *u = (struct redis_url){0};
}

/* Percent-decodes n bytes of s; NULL for a bad escape or a NUL. */
static char *percent_decode(const char *s, size_t n)
{
        char *out = xmalloc(n + 1), *o = out;
        for (size_t i = 0; i < n; i++) {
                if (s[i] != '%') {
                        *o++ = s[i];
                        continue;
                }
                int hi = i + 1 < n ? hex_digit(s[i + 1]) : -1;
                int lo = i + 2 < n ? hex_digit(s[i + 2]) : -1;
                if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                        free(out);
                        return NULL;
                }
                *o++ = (char)(hi << 4 | lo);
                i += 2;
        }
        *o = '\0';
        return out;
}

int redis_url_parse(const char *url, struct redis_url *ret, char **ret_error)
{
        struct redis_url u = {.port = 6379};
        const char *p, *at, *hostend, *end;
        long long v;

        if (startswith(url, "redis://"))
                p = url + strlen("redis://");
        else if (startswith(url, "rediss://")) {
                p = url + strlen("rediss://");
                u.tls = true;
        } else
                return fail_with(ret_error, -EINVAL,
                                 "a Redis URL starts with redis:// or rediss://");
        for (const char *c = p; *c; c++)
                if ((unsigned char)*c <= ' ' || *c == 0x7f)
                        return fail_with(ret_error, -EINVAL,
                                         "a Redis URL holds no space or control character");
        end = p + strcspn(p, "/?#");
        if (*end == '?' || *end == '#')
                return fail_with(ret_error, -EINVAL,
                                 "a Redis URL takes no query or fragment (?...)");
        at = memrchr(p, '@', (size_t)(end - p));
        if (at) {
                const char *colon = memchr(p, ':', (size_t)(at - p));
                if (!colon) {
                        /* redis://secret@host: the form redis-cli takes as a password. */
                        u.password = percent_decode(p, (size_t)(at - p));
                } else {
                        if (colon > p)
                                u.user = percent_decode(p, (size_t)(colon - p));
                        u.password = percent_decode(colon + 1, (size_t)(at - colon - 1));
                        if (colon > p && !u.user) {
                                redis_url_done(&u);
                                return fail_with(ret_error, -EINVAL,
                                                 "the Redis URL's user has a bad %% escape");
                        }
                }
                if (!u.password || !*u.password) {
                        redis_url_done(&u);
                        return fail_with(ret_error, -EINVAL,
                                         "the Redis URL's password is empty or has a bad %% "
                                         "escape");
                }
                p = at + 1;
        }
        if (*p == '[') {
                hostend = memchr(p, ']', (size_t)(end - p));
                if (!hostend || hostend == p + 1) {
                        redis_url_done(&u);
                        return fail_with(ret_error, -EINVAL,
                                         "the Redis URL's [IPv6] host is "
                                         "not closed");
                }
                u.host = xstrndup(p + 1, (size_t)(hostend - p - 1));
                hostend++;
        } else {
                hostend = p + strcspn(p, ":/");
                if (hostend > end)
                        hostend = end;
                u.host = xstrndup(p, (size_t)(hostend - p));
        }
        if (!*u.host || strspn(u.host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789.-:") != strlen(u.host)) {
                redis_url_done(&u);
                return fail_with(ret_error, -EINVAL, "the Redis URL has no valid host");
        }
        if (*hostend == ':') {
                _cleanup_free_ char *port = xstrndup(hostend + 1, (size_t)(end - hostend - 1));
                if (parse_llong(port, &v) < 0 || v < 1 || v > 65535) {
                        redis_url_done(&u);
                        return fail_with(ret_error, -EINVAL,
                                         "the Redis URL's port must be 1 to 65535");
                }
                u.port = (int)v;
        } else if (hostend != end) {
                redis_url_done(&u);
                return fail_with(ret_error, -EINVAL, "the Redis URL's host is followed by junk");
        }
        if (*end == '/' && end[1]) {
                if (parse_llong(end + 1, &v) < 0 || v < 0 || v > INT_MAX) {
                        redis_url_done(&u);
                        return fail_with(ret_error, -EINVAL,
                                         "the Redis URL's path must be a database number");
                }
                u.db = (int)v;
        }
        *ret = u;
        return 0;
}

void redis_reply_free(struct redis_reply *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n; i++)
                redis_reply_free(r->items[i]);
        free(r->items);
        free(r->str);
        free(r);
}

/* Replies nest only as deep as the commands we send make them (2). */
static struct redis_reply *copy_reply(const redictReply *h, unsigned depth)
{
        struct redis_reply *r = xcalloc(1, sizeof(*r));
        switch (h->type) {
        case REDICT_REPLY_STRING:
        case REDICT_REPLY_STATUS:
        case REDICT_REPLY_ERROR:
                r->type = h->type == REDICT_REPLY_STRING   ? REDIS_R_STRING
                          : h->type == REDICT_REPLY_STATUS ? REDIS_R_STATUS
                                                           : REDIS_R_ERROR;
                r->str = xmalloc(h->len + 1);
                if (h->len)
                        memcpy(r->str, h->str, h->len);
                r->str[h->len] = '\0';
                r->len = h->len;
                break;
        case REDICT_REPLY_INTEGER:
                r->type = REDIS_R_INTEGER;
                r->integer = h->integer;
                break;
        case REDICT_REPLY_ARRAY:
                r->type = REDIS_R_ARRAY;
                if (depth > 8)
                        break;
                r->items = xcalloc(h->elements + 1, sizeof(*r->items));
                for (size_t i = 0; i < h->elements; i++)
                        r->items[r->n++] = copy_reply(h->element[i], depth + 1);
                break;
        default:
                r->type = REDIS_R_NIL;
        }
        return r;
}

static struct timeval tv_of(long long ms)
{
        return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

/* c's error as a negative errno; saved_errno is errno as the failed call
 * into hiredict left it (read at once: anything after may change it). */
static int context_error(const redictContext *c, int saved_errno)
{
        switch (c->err) {
        case REDICT_ERR_IO:
                return saved_errno > 0 ? -saved_errno : -EIO;
        case REDICT_ERR_EOF:
                return -ECONNRESET;
        case REDICT_ERR_TIMEOUT:
                return -ETIMEDOUT;
        default:
                return -EIO;
        }
}

/* The last OpenSSL error as a sentence, or fallback. */
static const char *openssl_error(char *buf, size_t size, const char *fallback)
{
        unsigned long e = sym_ERR_get_error();

        if (!e)
                return fallback;
        sym_ERR_error_string_n(e, buf, size);
        return buf;
}

/* Why a call into hiredict on r failed (errno set to 0 before it, and
 * saved_errno read right after), as a negative errno and a sentence in
 * buf. Over TLS hiredict says strerror(errno) for any failure of
 * OpenSSL's, and errno is then from an earlier call, or 0 ("Success"):
 * OpenSSL's queued reason is said instead (an alert from the server,
 * such as "tlsv13 alert certificate required", says more than hiredict's
 * words), else errno if the call set one, else that the peer closed the
 * connection (SSL_ERROR_SYSCALL with errno 0, SSL_get_error(3)). */
static int io_error(const struct redis *r, int saved_errno, char *buf, size_t size)
{
        if (r->ssl && openssl_error(buf, size, NULL))
                return -EPROTO;
        if (r->ssl && r->c->err == REDICT_ERR_IO) {
                if (saved_errno == EAGAIN)
                        /* SO_RCVTIMEO ran out: hiredict's own words. */
                        snprintf(buf, size, "%s", r->c->errstr);
                else
                        snprintf(buf, size, "%s",
                                 saved_errno > 0 ? strerror(saved_errno)
                                                 : "connection closed by peer");
                return saved_errno > 0 ? -saved_errno : -ECONNRESET;
        }
        snprintf(buf, size, "%s", r->c->errstr);
        return context_error(r->c, saved_errno);
}

int redis_command(struct redis *r, int argc, const char *const *argv, const size_t *lens,
                  long long reply_timeout_ms, struct redis_reply **ret, char **ret_error)
{
        size_t *l = NULL;
        redictReply *h;

        if (!r->c || r->c->err)
                return fail_with(ret_error, -EIO, "the connection to Redis is broken");
        if (!lens) {
                l = xcalloc((size_t)argc, sizeof(*l));
                for (int i = 0; i < argc; i++)
                        l[i] = strlen(argv[i]);
        }
        if (reply_timeout_ms > 0)
                sym_redictSetTimeout(r->c, tv_of(reply_timeout_ms));
        if (r->ssl)
                sym_ERR_clear_error();
        errno = 0;
        h = sym_redictCommandArgv(r->c, argc, (const char **)argv, lens ? lens : l);
        int saved_errno = errno;
        if (reply_timeout_ms > 0 && h)
                sym_redictSetTimeout(r->c, tv_of(r->timeout_ms));
        free(l);
        if (!h) {
                char e[256];
                int k = io_error(r, saved_errno, e, sizeof(e));
                return fail_with(ret_error, k, "Redis %s: %s", argv[0], e);
        }
        *ret = copy_reply(h, 0);
        sym_freeReplyObject(h);
        return 0;
}

int redis_next_reply(struct redis *r, long long timeout_ms, struct redis_reply **ret,
                     char **ret_error)
{
        long long deadline = now_ms() + timeout_ms;
        void *h = NULL;

        if (!r->c || r->c->err)
                return fail_with(ret_error, -EIO, "the connection to Redis is broken");
        for (;;) {
                if (sym_redictGetReplyFromReader(r->c, &h) != REDICT_OK)
                        return fail_with(ret_error, -EIO, "Redis: %s", r->c->errstr);
                if (h) {
                        *ret = copy_reply(h, 0);
                        sym_freeReplyObject(h);
                        return 1;
                }
                long long left = deadline - now_ms();
                if (left <= 0) {
                        *ret = NULL;
                        return 0;
                }
                /* OpenSSL may hold decrypted bytes the socket no longer shows. */
                struct pollfd pfd = {.fd = r->c->fd, .events = POLLIN};
                int n = r->ssl && sym_SSL_pending(r->ssl) > 0
                                ? 1
                                : poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
                if (n < 0 && errno != EINTR)
                        return fail_with(ret_error, -errno, "poll: %s", strerror(errno));
                if (n > 0) {
                        if (r->ssl)
                                sym_ERR_clear_error();
                        errno = 0;
                        int ok = sym_redictBufferRead(r->c);
                        int saved_errno = errno;
                        if (ok != REDICT_OK) {
                                char e[256];
                                int k = io_error(r, saved_errno, e, sizeof(e));
                                return fail_with(ret_error, k, "Redis: %s", e);
                        }
                }
                if (n < 0) {
                        *ret = NULL;
                        return 0; /* a signal: the caller looks at its flags */
                }
        }
}

static int auth_and_select(struct redis *r, const struct redis_url *u, char **ret_error)
{
        _cleanup_redis_reply_ struct redis_reply *rep = NULL;
        int k;

        if (u->password) {
                const char *argv[] = {"AUTH", u->user ? u->user : u->password, u->password};
                k = redis_command(r, u->user ? 3 : 2, argv, NULL, 0, &rep, ret_error);
                if (k < 0)
                        return k;
                if (rep->type == REDIS_R_ERROR)
                        /* The server's words name no password. */
                        return fail_with(ret_error, -EACCES, "Redis refused AUTH%s%s: %s",
                                         u->user ? " as " : "", u->user ? u->user : "", rep->str);
                redis_reply_free(TAKE_PTR(rep));
        }
        if (u->db != 0) {
                _cleanup_free_ char *db = strprintf("%d", u->db);
                const char *argv[] = {"SELECT", db};
                k = redis_command(r, 2, argv, NULL, 0, &rep, ret_error);
                if (k < 0)
                        return k;
                if (rep->type == REDIS_R_ERROR)
                        return fail_with(ret_error, -EINVAL, "Redis refused SELECT %d: %s", u->db,
                                         rep->str);
                redis_reply_free(TAKE_PTR(rep));
        }
        /* A round trip: a server that takes the connection and drops it
         * (TLS 1.3 refusing a client without a certificate after the
         * handshake, a listener that closes) fails here, as a connect. */
        const char *ping[] = {"PING"};
        k = redis_command(r, 1, ping, NULL, 0, &rep, ret_error);
        if (k < 0)
                return k;
        if (rep->type == REDIS_R_ERROR) {
                /* A password missing from the URL or an ACL user without
                 * PING: no retry mends it. */
                bool denied = startswith(rep->str, "NOAUTH") || startswith(rep->str, "WRONGPASS") ||
                              startswith(rep->str, "NOPERM");
                return fail_with(ret_error, denied ? -EACCES : -EIO, "Redis refused PING: %s",
                                 rep->str);
        }
        return 0;
}

/* How a TLS file is named in a message: as the caller names it. */
static const char *shown(const char *name, const char *file)
{
        return name ? name : file;
}

/* The SSL_CTX for u: TLS 1.2 or later, the server's certificate verified
 * (the system's CA store, or only tls_ca_file), and the client
 * certificate if one is given. */
static int tls_context(const struct redis_url *u, SSL_CTX **ret, char **ret_error)
{
        char e[256];
        SSL_CTX *ctx;

        sym_ERR_clear_error();
        ctx = sym_SSL_CTX_new(sym_TLS_client_method());
        if (!ctx)
                return fail_with(ret_error, -ENOMEM, "cannot make a TLS context: %s",
                                 openssl_error(e, sizeof(e), "out of memory"));
        /* SSL_CTX_set_min_proto_version(), a macro of SSL_CTX_ctrl(). */
        sym_SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL);
        sym_SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (u->tls_ca_file ? sym_SSL_CTX_load_verify_locations(ctx, u->tls_ca_file, NULL) != 1
                           : sym_SSL_CTX_set_default_verify_paths(ctx) != 1) {
                int k = fail_with(ret_error, -ENOKEY, "cannot load the TLS CA file %s: %s",
                                  u->tls_ca_file ? shown(u->tls_ca_shown, u->tls_ca_file)
                                                 : "(the system's)",
                                  openssl_error(e, sizeof(e), "no certificate in it"));
                sym_SSL_CTX_free(ctx);
                return k;
        }
        if (u->tls_cert_file &&
            (sym_SSL_CTX_use_certificate_chain_file(ctx, u->tls_cert_file) != 1 ||
             sym_SSL_CTX_use_PrivateKey_file(ctx, u->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
             sym_SSL_CTX_check_private_key(ctx) != 1)) {
                int k = fail_with(ret_error, -ENOKEY,
                                  "cannot load the TLS client certificate %s with the key %s: %s",
                                  shown(u->tls_cert_shown, u->tls_cert_file),
                                  shown(u->tls_key_shown, u->tls_key_file),
                                  openssl_error(e, sizeof(e), "unreadable"));
                sym_SSL_CTX_free(ctx);
                return k;
        }
        *ret = ctx;
        return 0;
}

static int set_nonblock(int fd, bool on)
{
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

/* The handshake within r->timeout_ms in all (a per-read timeout alone
 * lets a peer that trickles a byte now and then hold it forever): hiredict
 * is handed the SSL on a non-blocking socket, where its SSL_connect()
 * stops at the first wait (hiredict_ssl's redictSSLConnect() leaves the
 * SSL with the context then), and the handshake is driven here with
 * poll() up to the deadline; the socket and the context are blocking
 * again after. It must be hiredict's SSL_connect() that starts it: its
 * SSL_set_connect_state() would reset a finished handshake. -EPROTO when
 * the handshake failed (the caller says why), r->c->errstr set or
 * OpenSSL's error queued. */
static int handshake(struct redis *r, const struct redis_url *u, char **ret_error)
{
        long long deadline = now_ms() + r->timeout_ms;
        int fd = r->c->fd, k;

        k = set_nonblock(fd, true);
        if (k < 0)
                return fail_with(ret_error, k, "fcntl: %s", strerror(-k));
        r->c->flags &= ~REDICT_BLOCK;
        errno = 0;
        int ok = sym_redictInitiateSSL(r->c, r->ssl);
        int saved_errno = errno;
        r->c->flags |= REDICT_BLOCK;
        if (ok != REDICT_OK) {
                /* hiredict took no ownership: the SSL stays ours, freed by
                 * redis_free(). Its "SSL_connect failed: " is followed by
                 * strerror(errno) on SSL_ERROR_SYSCALL: errno 0 is the
                 * peer closing. */
                if (r->c->err == REDICT_ERR_IO && saved_errno == 0 &&
                    endswith(r->c->errstr, strerror(0)))
                        snprintf(r->c->errstr, sizeof(r->c->errstr), "connection closed by peer");
                (void)set_nonblock(fd, false);
                return -EPROTO;
        }
        for (;;) {
                errno = 0;
                int rv = sym_SSL_do_handshake(r->ssl);
                saved_errno = errno; /* SSL_get_error() and poll() may change it */
                if (rv == 1)
                        break;
                int e = sym_SSL_get_error(r->ssl, rv);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                        if (e == SSL_ERROR_SYSCALL)
                                snprintf(r->c->errstr, sizeof(r->c->errstr), "%s",
                                         saved_errno > 0 ? strerror(saved_errno)
                                                         : "connection closed by peer");
                        else if (e == SSL_ERROR_ZERO_RETURN)
                                snprintf(r->c->errstr, sizeof(r->c->errstr),
                                         "connection closed by peer");
                        return -EPROTO;
                }
                long long left = deadline - now_ms();
                struct pollfd pfd = {.fd = fd,
                                     .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
                int n = left > 0 ? poll(&pfd, 1, (int)left) : 0;
                if (n < 0 && errno == EINTR)
                        return fail_with(ret_error, -EINTR,
                                         "TLS handshake with Redis at %s:%d: interrupted by a "
                                         "signal",
                                         u->host, u->port);
                if (n < 0)
                        return fail_with(ret_error, -errno, "poll: %s", strerror(errno));
                if (n == 0)
                        return fail_with(ret_error, -ETIMEDOUT,
                                         "TLS handshake with Redis at %s:%d failed: not done "
                                         "within %lld ms (does that port speak TLS?)",
                                         u->host, u->port, r->timeout_ms);
        }
        k = set_nonblock(fd, false);
        if (k < 0)
                return fail_with(ret_error, k, "fcntl: %s", strerror(-k));
        return 0;
}

/* The TLS handshake on r's connection, the certificate checked for
 * u->host. */
static int tls_start(struct redis *r, const struct redis_url *u, char **ret_error)
{
        unsigned char addr[sizeof(struct in6_addr)];
        char e[256];
        int k;

        k = tls_context(u, &r->ssl_ctx, ret_error);
        if (k < 0)
                return k;
        r->ssl = sym_SSL_new(r->ssl_ctx);
        if (!r->ssl)
                return fail_with(ret_error, -ENOMEM, "cannot make a TLS connection: %s",
                                 openssl_error(e, sizeof(e), "out of memory"));
        /* SNI takes a name, never an address (RFC 6066, 3);
         * SSL_set_tlsext_host_name() is a macro of SSL_ctrl(). */
        bool is_ip =
                inet_pton(AF_INET, u->host, addr) == 1 || inet_pton(AF_INET6, u->host, addr) == 1;
        if ((!is_ip && sym_SSL_ctrl(r->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                                    u->host) != 1) ||
            sym_SSL_set1_host(r->ssl, u->host) != 1)
                return fail_with(ret_error, -EPROTO, "cannot check TLS certificates for %s: %s",
                                 u->host, openssl_error(e, sizeof(e), "refused"));
        /* The host must be in a subjectAltName: never the subject's CN
         * (X509_check_host(3)). */
        sym_SSL_set_hostflags(r->ssl, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
        sym_ERR_clear_error();
        k = handshake(r, u, ret_error);
        if (k != -EPROTO)
                return k;
        long v = sym_SSL_get_verify_result(r->ssl);
        if (v != X509_V_OK) {
                bool issuer = v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                              v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
                              v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                              v == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
                _cleanup_free_ char *hint =
                        v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH
                                ? xstrdup(" (the URL's host is not among its names)")
                        : issuer && u->tls_ca_file
                                ? strprintf(" (not signed by the CA of %s)",
                                            u->tls_ca_option ? u->tls_ca_option : "the CA file")
                        : issuer ? xstrdup(" (not signed by a CA of the system's store)")
                                 : xstrdup("");
                return fail_with(ret_error, -EKEYREJECTED,
                                 "TLS: the certificate of Redis at %s:%d is refused: %s%s", u->host,
                                 u->port, sym_X509_verify_cert_error_string(v), hint);
        }
        return fail_with(
                ret_error, -EPROTO,
                "TLS handshake with Redis at %s:%d failed: %s (does that port speak TLS?)", u->host,
                u->port,
                openssl_error(e, sizeof(e),
                              r->c->errstr[0] ? r->c->errstr : "connection closed by peer"));
}

int redis_connect(const struct redis_url *u, long long timeout_ms, struct redis **ret,
                  char **ret_error)
{
        int k = dl_load(&libhiredict);

        if (k < 0)
                return fail_with(ret_error, k, "cannot load hiredict: %s", libhiredict.error);
        if (u->tls && !!u->tls_cert_file != !!u->tls_key_file)
                return fail_with(ret_error, -ENOKEY,
                                 "a TLS client certificate needs both its file and its key file");
        if (u->tls) {
                if (dl_load(&libhiredict_ssl) < 0 || dl_load(&libssl) < 0 ||
                    dl_load(&libcrypto_tls) < 0)
                        return fail_with(ret_error, -ELIBACC, "rediss:// (TLS) cannot load %s",
                                         libhiredict_ssl.state < 0 ? libhiredict_ssl.error
                                         : libssl.state < 0        ? libssl.error
                                                                   : libcrypto_tls.error);
        }
        struct redis *r = xcalloc(1, sizeof(*r));
        r->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
        errno = 0;
        r->c = sym_redictConnectWithTimeout(u->host, u->port, tv_of(r->timeout_ms));
        int saved_errno = errno;
        if (!r->c) {
                free(r);
                return fail_with(ret_error, -ENOMEM, "cannot allocate a Redis connection");
        }
        if (r->c->err) {
                k = context_error(r->c, saved_errno);
                if (k == -EIO && strstr(r->c->errstr, "refused"))
                        k = -ECONNREFUSED;
                fail_with(ret_error, k, "cannot connect to Redis at %s:%d: %s", u->host, u->port,
                          r->c->errstr);
                redis_free(r);
                return k;
        }
        /* The timeout bounds the TLS handshake too. */
        sym_redictSetTimeout(r->c, tv_of(r->timeout_ms));
        sym_redictEnableKeepAlive(r->c);
        if (u->tls) {
                k = tls_start(r, u, ret_error);
                if (k < 0) {
                        redis_free(r);
                        return k;
                }
        }
        k = auth_and_select(r, u, ret_error);
        if (k < 0) {
                redis_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

bool redis_error_is_final(int error)
{
        return error == -ELIBACC || error == -EACCES || error == -ENOMEM ||
               error == -EKEYREJECTED || error == -ENOKEY;
}

int redis_connect_retry(const struct redis_url *u, long long timeout_ms, long long max_backoff_ms,
                        bool (*stop)(void *userdata),
                        void (*on_error)(void *userdata, int error, const char *message),
                        void *userdata, struct redis **ret)
{
        long long backoff = 100;

        for (;;) {
                _cleanup_free_ char *err = NULL;
                if (stop && stop(userdata))
                        return -ECANCELED;
                int k = redis_connect(u, timeout_ms, ret, &err);
                if (k >= 0)
                        return 0;
                if (on_error)
                        on_error(userdata, k, err ? err : strerror(-k));
                if (redis_error_is_final(k))
                        return k;
                for (long long waited = 0; waited < backoff; waited += 100) {
                        if (stop && stop(userdata))
                                return -ECANCELED;
                        sleep_ms(backoff - waited < 100 ? backoff - waited : 100);
                }
                backoff = backoff * 2 > max_backoff_ms ? max_backoff_ms : backoff * 2;
                if (backoff < 100)
                        backoff = 100;
        }
}

void redis_free(struct redis *r)
{
        if (!r)
                return;
        /* After a handshake, c owns the SSL and frees it. */
        bool ssl_owned = r->c && r->ssl && r->c->privctx;
        if (r->c)
                sym_redictFree(r->c);
        if (r->ssl && !ssl_owned)
                sym_SSL_free(r->ssl);
        if (r->ssl_ctx)
                sym_SSL_CTX_free(r->ssl_ctx);
        free(r);
}
