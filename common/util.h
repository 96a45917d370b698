/* Small helpers every part of firstboot and imagegen uses: cleanup
 * attributes, string helpers and number parsing. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_       __attribute__((unused))
#define ARRAY_SIZE(a)  (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)      ((a) < (b) ? (a) : (b))

static inline void freep(void *p)
{
        free(*(void **)p);
}
static inline void closep(const int *fd)
{
        if (*fd >= 0)
                close(*fd);
}
static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}
#define _cleanup_free_   _cleanup_(freep)
#define _cleanup_close_  _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Hands ownership of *p to the caller and leaves NULL behind, so a
 * cleanup attribute does not free it. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _t = (p);                                                            \
                (p) = NULL;                                                                        \
                _t;                                                                                \
        })
#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _t = (fd);                                                                     \
                (fd) = -1;                                                                         \
                _t;                                                                                \
        })

/* The value of a hexadecimal digit (either case), or -1. */
static inline int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static inline bool streq(const char *a, const char *b)
{
        return strcmp(a, b) == 0;
}
static inline bool streq_ptr(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
static inline bool startswith(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}
bool endswith(const char *s, const char *suffix);

/* asprintf() that returns the string, or NULL when out of memory. */
char *strprintf(const char *fmt, ...) _printf_(1, 2);
char *vstrprintf(const char *fmt, va_list ap) _printf_(1, 0);
/* For functions that describe their failure in *ret_error (when not NULL)
 * for the caller to log: sets it and returns r (negative). */
int fail_with(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
/* strdup() of NULL is NULL. */
char *strdup_null(const char *s);
/* Duplicates; aborts on out of memory. For the rare place where
 * propagating ENOMEM would only add noise. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Strict number parsing: the whole string, no sign surprises, range
 * checked. Return 0 or -EINVAL / -ERANGE. */
int parse_llong(const char *s, long long *ret);
int parse_uint(const char *s, unsigned *ret);
/* Octal file mode like "0600" or "600", at most 07777. */
int parse_mode(const char *s, unsigned *ret);

/* Replaces every occurrence of needle in *s by repl; returns 0 or -ENOMEM. */
int str_replace_all(char **s, const char *needle, const char *repl);

/* A growable byte buffer. */
struct buf {
        char *data;
        size_t len, cap;
};
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) _printf_(2, 3);
void buf_free(struct buf *b);
/* Detaches the NUL-terminated contents. */
char *buf_steal(struct buf *b);

/* A NULL-terminated vector of strings. */
char **strv_free(char **v);
size_t strv_length(char *const *v);
int strv_push(char ***v, char *s);         /* takes ownership of s */
int strv_extend(char ***v, const char *s); /* copies s */
bool strv_contains(char *const *v, const char *s);
void strv_sort(char **v, size_t n); /* the first n, by strcmp */
/* s in double quotes for a message: control characters escaped, cut
 * short after 60 bytes. Never NULL. */
char *quote_for_message(const char *s);
char *strv_join(char *const *v, const char *sep); /* "" for NULL or empty */
static inline void strv_freep(char ***v)
{
        strv_free(*v);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* Milliseconds on the monotonic and realtime clocks. */
long long now_ms(void);
long long now_realtime_ms(void);
/* Sleeps ms milliseconds, resuming after signals. */
void sleep_ms(long long ms);
