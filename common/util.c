#include "util.h"

#include <errno.h>
#include <limits.h>
#include <time.h>

bool endswith(const char *s, const char *suffix)
{
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

char *vstrprintf(const char *fmt, va_list ap)
{
        char *s;
        if (vasprintf(&s, fmt, ap) < 0)
                return NULL;
        return s;
}

char *strprintf(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char *s = vstrprintf(fmt, ap);
        va_end(ap);
        return s;
}

char *strdup_null(const char *s)
{
        return s ? strdup(s) : NULL;
}

void *xmalloc(size_t n)
{
        void *p = malloc(n ? n : 1);
        if (!p)
                abort();
        return p;
}

void *xcalloc(size_t n, size_t size)
{
        void *p = calloc(n ? n : 1, size ? size : 1);
        if (!p)
                abort();
        return p;
}

void *xrealloc(void *p, size_t n)
{
        p = realloc(p, n ? n : 1);
        if (!p)
                abort();
        return p;
}

char *xstrdup(const char *s)
{
        char *r = strdup(s);
        if (!r)
                abort();
        return r;
}

char *xstrndup(const char *s, size_t n)
{
        char *r = strndup(s, n);
        if (!r)
                abort();
        return r;
}

int parse_llong(const char *s, long long *ret)
{
        char *end;
        long long v;

        if (!s || !*s || strchr(" \t\n", *s))
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (errno || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_uint(const char *s, unsigned *ret)
{
        long long v;
        int r = parse_llong(s, &v);
        if (r < 0)
                return r;
        if (v < 0 || v > UINT_MAX)
                return -ERANGE;
        *ret = (unsigned)v;
        return 0;
}

int parse_mode(const char *s, unsigned *ret)
{
        unsigned v = 0;
        size_t n = strlen(s);

        if (n == 0 || n > 5)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '7')
                        return -EINVAL;
                v = v * 8 + (unsigned)(s[i] - '0');
        }
        if (v > 07777)
                return -ERANGE;
        *ret = v;
        return 0;
}

int str_replace_all(char **s, const char *needle, const char *repl)
{
        struct buf b = {0};
        const char *p = *s, *q;
        size_t nl = strlen(needle);

        if (nl == 0 || !strstr(*s, needle))
                return 0;
        while ((q = strstr(p, needle))) {
                if (buf_append(&b, p, (size_t)(q - p)) < 0 || buf_puts(&b, repl) < 0)
                        goto oom;
                p = q + nl;
        }
        if (buf_puts(&b, p) < 0)
                goto oom;
        free(*s);
        *s = buf_steal(&b);
        return 0;
oom:
        buf_free(&b);
        return -ENOMEM;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *d = realloc(b->data, cap);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = cap;
        }
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

int buf_puts(struct buf *b, const char *s)
{
        return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char *s = vstrprintf(fmt, ap);
        va_end(ap);
        if (!s)
                return -ENOMEM;
        int r = buf_puts(b, s);
        free(s);
        return r;
}

void buf_free(struct buf *b)
{
        free(b->data);
        *b = (struct buf){0};
}

char *buf_steal(struct buf *b)
{
        char *d = b->data;
        if (!d)
                d = xstrdup("");
        *b = (struct buf){0};
        return d;
}

char **strv_free(char **v)
{
        if (v)
                for (char **p = v; *p; p++)
                        free(*p);
        free(v);
        return NULL;
}

size_t strv_length(char *const *v)
{
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

int strv_push(char ***v, char *s)
{
        size_t n = strv_length(*v);
        char **nv;

        if (!s)
                return -ENOMEM;
        nv = realloc(*v, (n + 2) * sizeof(char *));
        if (!nv) {
                free(s);
                return -ENOMEM;
        }
        nv[n] = s;
        nv[n + 1] = NULL;
        *v = nv;
        return 0;
}

int strv_extend(char ***v, const char *s)
{
        return strv_push(v, strdup(s));
}

bool strv_contains(char *const *v, const char *s)
{
        for (size_t i = 0; v && v[i]; i++)
                if (streq(v[i], s))
                        return true;
        return false;
}

/* s in double quotes for a message: control characters escaped, long
 * values cut short. */
char *quote_for_message(const char *s)
{
        struct buf b = {0};
        size_t n = 0;

        buf_puts(&b, "\"");
        for (const char *p = s; *p; p++, n++) {
                unsigned char c = (unsigned char)*p;
                if (n >= 60) {
                        buf_puts(&b, "...");
                        break;
                }
                if (c == '"' || c == '\\')
                        buf_printf(&b, "\\%c", c);
                else if (c == '\n')
                        buf_puts(&b, "\\n");
                else if (c == '\t')
                        buf_puts(&b, "\\t");
                else if (c < 0x20 || c == 0x7f)
                        buf_printf(&b, "\\x%02x", c);
                else
                        buf_append(&b, p, 1);
        }
        buf_puts(&b, "\"");
        if (!b.data)
                abort();
        return buf_steal(&b);
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort(char **v, size_t n)
{
        if (n > 1)
                qsort(v, n, sizeof(*v), cmp_str);
}

long long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long now_realtime_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(long long ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

char *strv_join(char *const *v, const char *sep)
{
        struct buf b = {0};
        for (size_t i = 0; v && v[i]; i++)
                if ((i > 0 && buf_puts(&b, sep) < 0) || buf_puts(&b, v[i]) < 0) {
                        buf_free(&b);
                        return NULL;
                }
        return buf_steal(&b);
}

int fail_with(char **ret_error, int r, const char *fmt, ...)
{
        if (ret_error) {
                va_list ap;
                va_start(ap, fmt);
                *ret_error = vstrprintf(fmt, ap);
                va_end(ap);
        }
        return r;
}
