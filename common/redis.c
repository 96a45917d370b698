#include "redis.h"
#include "dl.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/time.h>

#include <hiredis.h>

/* hiredis is loaded, not linked: firstboot's first boot never needs it.
 * Debian 12 ships 0.14.1 (libhiredis0.14), whose blocking API is all this
 * file uses. */
#define HIREDIS_SYMBOLS(X)                                                                         \
        X(redisConnectWithTimeout)                                                                 \
        X(redisSetTimeout)                                                                         \
        X(redisEnableKeepAlive)                                                                    \
        X(redisCommandArgv)                                                                        \
        X(redisGetReplyFromReader)                                                                 \
        X(redisBufferRead)                                                                         \
        X(redisFree)                                                                               \
        X(freeReplyObject)
DL_DEFINE(libhiredis, SONAME_LIBHIREDIS, HIREDIS_SYMBOLS);

struct redis {
        redisContext *c;
        long long timeout_ms;
};

void redis_url_done(struct redis_url *u)
{
        free(u->host);
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
static struct redis_reply *copy_reply(const redisReply *h, unsigned depth)
{
        struct redis_reply *r = xcalloc(1, sizeof(*r));
        switch (h->type) {
        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
        case REDIS_REPLY_ERROR:
                r->type = h->type == REDIS_REPLY_STRING   ? REDIS_R_STRING
                          : h->type == REDIS_REPLY_STATUS ? REDIS_R_STATUS
                                                          : REDIS_R_ERROR;
                r->str = xmalloc(h->len + 1);
                if (h->len)
                        memcpy(r->str, h->str, h->len);
                r->str[h->len] = '\0';
                r->len = h->len;
                break;
        case REDIS_REPLY_INTEGER:
                r->type = REDIS_R_INTEGER;
                r->integer = h->integer;
                break;
        case REDIS_REPLY_ARRAY:
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

static int context_error(const redisContext *c)
{
        switch (c->err) {
        case REDIS_ERR_IO:
                return errno > 0 ? -errno : -EIO;
        case REDIS_ERR_EOF:
                return -ECONNRESET;
        default:
                return -EIO;
        }
}

int redis_command(struct redis *r, int argc, const char *const *argv, const size_t *lens,
                  long long reply_timeout_ms, struct redis_reply **ret, char **ret_error)
{
        size_t *l = NULL;
        redisReply *h;

        if (!r->c || r->c->err)
                return fail_with(ret_error, -EIO, "the connection to Redis is broken");
        if (!lens) {
                l = xcalloc((size_t)argc, sizeof(*l));
                for (int i = 0; i < argc; i++)
                        l[i] = strlen(argv[i]);
        }
        if (reply_timeout_ms > 0)
                sym_redisSetTimeout(r->c, tv_of(reply_timeout_ms));
        h = sym_redisCommandArgv(r->c, argc, (const char **)argv, lens ? lens : l);
        if (reply_timeout_ms > 0 && h)
                sym_redisSetTimeout(r->c, tv_of(r->timeout_ms));
        free(l);
        if (!h) {
                int k = context_error(r->c);
                return fail_with(ret_error, k, "Redis %s: %s", argv[0], r->c->errstr);
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
                if (sym_redisGetReplyFromReader(r->c, &h) != REDIS_OK)
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
                struct pollfd pfd = {.fd = r->c->fd, .events = POLLIN};
                int n = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
                if (n < 0 && errno != EINTR)
                        return fail_with(ret_error, -errno, "poll: %s", strerror(errno));
                if (n > 0 && sym_redisBufferRead(r->c) != REDIS_OK)
                        return fail_with(ret_error, context_error(r->c), "Redis: %s", r->c->errstr);
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
        }
        return 0;
}

int redis_connect(const struct redis_url *u, long long timeout_ms, struct redis **ret,
                  char **ret_error)
{
        int k = dl_load(&libhiredis);

        if (k < 0)
                return fail_with(ret_error, k, "cannot load hiredis: %s", libhiredis.error);
        if (u->tls)
                return fail_with(ret_error, -EPROTONOSUPPORT,
                                 "rediss:// (TLS) needs hiredis 1.0 with hiredis_ssl; Debian 12's "
                                 "libhiredis0.14 has no TLS: use redis:// over a trusted network "
                                 "or a TLS tunnel (stunnel) on 127.0.0.1");
        struct redis *r = xcalloc(1, sizeof(*r));
        r->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
        r->c = sym_redisConnectWithTimeout(u->host, u->port, tv_of(r->timeout_ms));
        if (!r->c) {
                free(r);
                return fail_with(ret_error, -ENOMEM, "cannot allocate a Redis connection");
        }
        if (r->c->err) {
                k = context_error(r->c);
                if (k == -EIO && strstr(r->c->errstr, "refused"))
                        k = -ECONNREFUSED;
                fail_with(ret_error, k, "cannot connect to Redis at %s:%d: %s", u->host, u->port,
                          r->c->errstr);
                redis_free(r);
                return k;
        }
        sym_redisSetTimeout(r->c, tv_of(r->timeout_ms));
        sym_redisEnableKeepAlive(r->c);
        k = auth_and_select(r, u, ret_error);
        if (k < 0) {
                redis_free(r);
                return k;
        }
        *ret = r;
        return 0;
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
                if (k == -ELIBACC || k == -EPROTONOSUPPORT || k == -EACCES || k == -ENOMEM)
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
        if (r->c)
                sym_redisFree(r->c);
        free(r);
}
