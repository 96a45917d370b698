/* Bundle archives in memory: member lists and our own tar reader, over
 * zlib; see tar.h. It needs nothing but zlib, so that it can be fuzzed on
 * its own and differentially against libarchive (tests/fuzz/fuzz-tar.c). */
#include <errno.h>
#include <limits.h>
#include <stdint.h>

#include <zlib.h>
#include <stdbool.h>
#include <stdio.h>

#include "tar.h"
#include "util.h"

static void member_list_freep(struct member_list *l)
{
        member_list_free(l);
}
#define _cleanup_member_list_ _cleanup_(member_list_freep)

void member_list_free(struct member_list *l)
{
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].path);
                free(l->v[i].data);
        }
        free(l->v);
        l->v = NULL;
        l->n = 0;
}

/* Appends a member whose path and data are already allocated; takes them
 * over only on success. cap tracks l->v's allocation (one realloc per add
 * when NULL). */
static int list_push(struct member_list *l, size_t *cap, char *path, unsigned char *data,
                     size_t size, unsigned mode)
{
        size_t want = l->n + 1;

        if (!cap || want > *cap) {
                size_t n = cap ? (*cap ? *cap * 2 : 16) : want;
                struct archive_member *v;

                if (n < want || n > SIZE_MAX / sizeof(*v))
                        return -ENOMEM;
                v = realloc(l->v, n * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                if (cap)
                        *cap = n;
        }
        l->v[l->n++] = (struct archive_member){
                .path = path,
                .data = data,
                .size = size,
                .mode = mode & 07777,
        };
        return 0;
}

int member_list_add(struct member_list *l, const char *path, const void *data, size_t size,
                    unsigned mode)
{
        _cleanup_free_ char *p = NULL;
        _cleanup_free_ unsigned char *d = NULL;
        int r;

        if (!path || (!data && size > 0))
                return -EINVAL;
        if (size == SIZE_MAX)
                return -ENOMEM;
        p = strdup(path);
        d = malloc(size + 1);
        if (!p || !d)
                return -ENOMEM;
        if (size > 0)
                memcpy(d, data, size);
        d[size] = '\0';
        r = list_push(l, NULL, p, d, size, mode);
        if (r < 0)
                return r;
        p = NULL;
        d = NULL;
        return 0;
}

const struct archive_member *member_list_find(const struct member_list *l, const char *path)
{
        if (!l || !path)
                return NULL;
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->v[i].path, path))
                        return &l->v[i];
        return NULL;
}

#define QUOTE_MAX 256

/* A member name for messages: quoted, with control characters, quotes,
 * backslashes and non-ASCII bytes escaped, since names come from
 * untrusted archives and end up in logs and terminals; past 256 bytes
 * cut, with "..." after the quote (a pax path can be 64 KiB). */
static char *quote_name(const char *s)
{
        struct buf b = {0};
        size_t n = strnlen(s, QUOTE_MAX + 1);
        int r = buf_puts(&b, "\"");

        for (const unsigned char *p = (const unsigned char *)s;
             r >= 0 && *p && p < (const unsigned char *)s + QUOTE_MAX; p++) {
                if (*p == '"' || *p == '\\')
                        r = buf_printf(&b, "\\%c", *p);
                else if (*p < 0x20 || *p >= 0x7f)
                        r = buf_printf(&b, "\\x%02x", *p);
                else
                        r = buf_append(&b, p, 1);
        }
        if (r >= 0)
                r = buf_puts(&b, n > QUOTE_MAX ? "\"..." : "\"");
        if (r < 0) {
                buf_free(&b);
                return NULL;
        }
        return buf_steal(&b);
}

/* Sets *ret_error (when not NULL) to 'member "NAME": REASON' and returns
 * -EBADMSG, or -ENOMEM when the message cannot be made. */
int member_error(char **ret_error, const char *name, const char *fmt, ...)
{
        _cleanup_free_ char *quoted = NULL, *reason = NULL;
        va_list ap;
        char *msg;

        if (!ret_error)
                return -EBADMSG;
        va_start(ap, fmt);
        reason = vstrprintf(fmt, ap);
        va_end(ap);
        quoted = quote_name(name);
        if (!reason || !quoted)
                return -ENOMEM;
        msg = strprintf("member %s: %s", quoted, reason);
        if (!msg)
                return -ENOMEM;
        *ret_error = msg;
        return -EBADMSG;
}

/* Normalizes an archive path in place: strips leading "./" and, for a
 * directory, trailing slashes. Returns the path, "" for the top directory
 * itself, or NULL with *ret_reason when the path is unsafe. */
static char *normalize_path(char *p, bool is_dir, const char **ret_reason)
{
        size_t n;

        if (p[0] == '/') {
                *ret_reason = "absolute path";
                return NULL;
        }
        while (p[0] == '.' && p[1] == '/')
                p += 2;
        n = strlen(p);
        if (is_dir)
                while (n > 0 && p[n - 1] == '/')
                        p[--n] = '\0';
        if (n == 0 || streq(p, "."))
                return is_dir ? (char *)"" : NULL;

        for (const char *c = p; *c;) {
                size_t len = strcspn(c, "/");
                if (len == 2 && c[0] == '.' && c[1] == '.') {
                        *ret_reason = "path contains \"..\"";
                        return NULL;
                }
                if (len == 0 || (len == 1 && c[0] == '.')) {
                        *ret_reason = "path has an empty or \".\" component";
                        return NULL;
                }
                c += len;
                if (*c == '/')
                        c++;
                if (*c == '\0' && c[-1] == '/') {
                        *ret_reason = "path has an empty or \".\" component";
                        return NULL;
                }
        }
        return p;
}

/* Whether path is safe to write as a member: what normalize_path() would
 * leave unchanged. */
bool member_path_ok(const char *path)
{
        _cleanup_free_ char *copy = NULL;
        const char *reason = NULL;
        const char *n;

        if (!path || !*path)
                return false;
        copy = strdup(path);
        if (!copy)
                return false;
        n = normalize_path(copy, false, &reason);
        return n && streq(n, path);
}
/* One path seen while reading, for the duplicate and file-versus-directory
 * checks done once everything is read. */
struct seen {
        const char *path;
        bool is_dir;
};

/* Orders paths so that "a" is followed directly by every "a/..." ('/'
 * sorts before every other byte). */
static int seen_cmp(const void *x, const void *y)
{
        const unsigned char *a = (const unsigned char *)((const struct seen *)x)->path;
        const unsigned char *b = (const unsigned char *)((const struct seen *)y)->path;

        for (;; a++, b++) {
                unsigned ca = *a == '/' ? 1 : *a == 0 ? 0 : (unsigned)*a + 1;
                unsigned cb = *b == '/' ? 1 : *b == 0 ? 0 : (unsigned)*b + 1;
                if (ca != cb)
                        return ca < cb ? -1 : 1;
                if (ca == 0)
                        return 0;
        }
}

/* Refuses two files with one path, a file and a directory with one path,
 * and a file used as a directory ("a" and "a/b"). */
static int check_conflicts(const struct member_list *files, char *const *dirs, char **ret_error)
{
        _cleanup_free_ struct seen *v = NULL;
        size_t n_dirs = strv_length(dirs), n = 0;

        if (files->n > SIZE_MAX / sizeof(*v) - n_dirs - 1)
                return -ENOMEM;
        v = malloc((files->n + n_dirs + 1) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < files->n; i++)
                v[n++] = (struct seen){files->v[i].path, false};
        for (size_t i = 0; i < n_dirs; i++)
                v[n++] = (struct seen){dirs[i], true};
        qsort(v, n, sizeof(*v), seen_cmp);

        for (size_t i = 0; i + 1 < n; i++) {
                const struct seen *a = &v[i], *b = &v[i + 1];
                size_t len = strlen(a->path);

                if (streq(a->path, b->path)) {
                        if (a->is_dir && b->is_dir)
                                continue;
                        return member_error(
                                ret_error, b->path, "duplicate path%s",
                                a->is_dir != b->is_dir ? " (both a file and a directory)" : "");
                }
                if (!a->is_dir && strncmp(b->path, a->path, len) == 0 && b->path[len] == '/')
                        return member_error(ret_error, b->path, "its parent %s is a file", a->path);
        }
        return 0;
}
/* --- Reading bundles: our own tar reader, over zlib ---
 *
 * firstboot reads the bundle on every boot; libarchive with its
 * dependencies would cost that 4.5 MB and most of the dynamic linker's
 * time. A bundle is a gzip'd (or plain) tar, which takes: ustar headers
 * (with the prefix field), pax extended headers (path, linkpath, size),
 * GNU long names ('L', 'K') and zlib, which also checks the gzip trailer
 * (CRC-32 and length). */

#define TAR_BLOCK    512
#define TAR_MAX_META (64u << 10) /* a pax header or a GNU long name */
/* What may follow the end of the tar: zero padding to the record size
 * (10 KiB for tar(1), up to 64 KiB with -b 128). 1 MiB is plenty and
 * still bounds a bomb hidden there. */
#define TAR_MAX_TAIL (1u << 20)
/* Extended headers ('x', 'g', 'L', 'K') one after another: tar(1) writes
 * at most three before an entry (pax, or GNU's long name and link). */
#define TAR_MAX_META_RUN 8
/* A member path, after pax or GNU long names: PATH_MAX less its NUL. */
#define TAR_MAX_PATH 4095

struct tar_src {
        const unsigned char *data; /* plain: what is left of the input */
        size_t left;
        bool gz, gz_ended;
        z_stream z;
        const char *why; /* after -EBADMSG: what is wrong, for tar_corrupt() */
        /* Every byte read after decompression (headers, extended headers,
         * data, padding, what follows the end) counts against budget;
         * -EFBIG past it, so that a small input cannot make us inflate or
         * parse more than that. */
        size_t budget, used;
};

static void tar_src_done(struct tar_src *s)
{
        if (s->gz)
                inflateEnd(&s->z);
}

/* Counts got bytes read against the budget: got, or -EFBIG past it. */
static ssize_t src_count(struct tar_src *s, size_t got)
{
        if (got > s->budget - s->used)
                return -EFBIG;
        s->used += got;
        return (ssize_t)got;
}

/* Reads up to n bytes; fewer only at the end of the data. -EBADMSG with
 * s->why for corrupt compressed data, -EFBIG past the budget, -ENOMEM. */
static ssize_t src_read(struct tar_src *s, unsigned char *buf, size_t n)
{
        size_t got = 0, room = s->budget - s->used;

        /* One byte past the budget tells "over" from "exactly at it". */
        if (n > room && room < SIZE_MAX)
                n = room + 1;
        if (!s->gz) {
                got = n < s->left ? n : s->left;
                if (got > 0)
                        memcpy(buf, s->data, got);
                s->data += got;
                s->left -= got;
                return src_count(s, got);
        }
        while (got < n && !s->gz_ended) {
                size_t want = n - got < (1u << 30) ? n - got : (1u << 30);
                int r;

                s->z.next_out = buf + got;
                s->z.avail_out = (uInt)want;
                r = inflate(&s->z, Z_NO_FLUSH);
                got += want - s->z.avail_out;
                switch (r) {
                case Z_OK:
                        break;
                case Z_STREAM_END:
                        s->gz_ended = true;
                        /* Another gzip member, or anything else. */
                        if (s->z.avail_in > 0) {
                                s->why = "data after the end of the gzip stream";
                                return -EBADMSG;
                        }
                        break;
                case Z_MEM_ERROR:
                        return -ENOMEM;
                case Z_BUF_ERROR: /* no input left before the stream's end */
                        s->why = "unexpected end of compressed data";
                        return -EBADMSG;
                default:
                        s->why = s->z.msg && strstr(s->z.msg, "incorrect") &&
                                                 strstr(s->z.msg, "check")
                                         ? "gzip CRC-32 or length mismatch"
                                 : s->z.msg ? s->z.msg
                                            : "corrupt compressed data";
                        return -EBADMSG;
                }
        }
        return src_count(s, got);
}

/* Starts inflating when s->data is gzip'd (its magic). */
static int src_open(struct tar_src *s)
{
        if (s->left < 2 || s->data[0] != 0x1f || s->data[1] != 0x8b)
                return 0;
        if (s->left > UINT_MAX)
                return -EFBIG;
        s->z.next_in = (unsigned char *)s->data;
        s->z.avail_in = (uInt)s->left;
        if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK)
                return -ENOMEM;
        s->gz = true;
        return 0;
}

/* Reads exactly n bytes. */
static int src_exact(struct tar_src *s, unsigned char *buf, size_t n)
{
        ssize_t got = src_read(s, buf, n);

        if (got < 0)
                return (int)got;
        if ((size_t)got < n) {
                s->why = "unexpected end of data";
                return -EBADMSG;
        }
        return 0;
}

/* Skips the zero padding after n bytes of entry data. */
static int src_skip_padding(struct tar_src *s, uint64_t n)
{
        unsigned char pad[TAR_BLOCK];

        return n % TAR_BLOCK ? src_exact(s, pad, TAR_BLOCK - n % TAR_BLOCK) : 0;
}

static int tar_corrupt(char **ret_error, const struct tar_src *s, int r)
{
        if (r == -EFBIG) {
                if (ret_error) {
                        *ret_error = strprintf("archive over the limit of %zu bytes uncompressed "
                                               "(headers, padding and trailing data included)",
                                               s->budget);
                        if (!*ret_error)
                                return -ENOMEM;
                }
                return -EBADMSG;
        }
        if (r == -EBADMSG && ret_error) {
                *ret_error = strprintf("truncated or corrupt archive: %s", s->why);
                if (!*ret_error)
                        return -ENOMEM;
        }
        return r;
}

/* A header's number field: octal digits, maybe after spaces, ended by
 * spaces or NULs; or GNU's base-256 (the first byte 0x80). */
static bool tar_number(const unsigned char *f, size_t width, uint64_t *ret)
{
        uint64_t v = 0;
        size_t i = 0;

        if (f[0] & 0x80) {
                if (f[0] != 0x80)
                        return false; /* negative, or more than we take */
                for (i = 1; i < width; i++) {
                        if (v >> 56)
                                return false;
                        v = v << 8 | f[i];
                }
                *ret = v;
                return true;
        }
        while (i < width && f[i] == ' ')
                i++;
        for (; i < width && f[i] >= '0' && f[i] <= '7'; i++) {
                if (v >> 60)
                        return false;
                v = v * 8 + (unsigned)(f[i] - '0');
        }
        for (; i < width; i++)
                if (f[i] != ' ' && f[i] != '\0')
                        return false;
        *ret = v;
        return true;
}

/* Whether the other number fields (uid, gid, mtime, devmajor, devminor)
 * are well-formed too, like libarchive wants them (it recognizes no tar
 * otherwise) even though nothing here uses them. */
static bool tar_numbers_ok(const unsigned char *h)
{
        static const struct {
                unsigned off, width;
        } fields[] = {{108, 8}, {116, 8}, {136, 12}, {329, 8}, {337, 8}};
        uint64_t ignored;

        for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
                if (!tar_number(h + fields[i].off, fields[i].width, &ignored))
                        return false;
        return true;
}

/* The header checksum: the sum of its bytes with the checksum field read
 * as spaces; old tars summed signed chars. */
static bool tar_checksum_ok(const unsigned char *h)
{
        uint64_t want;
        int64_t sum_u = 0, sum_s = 0;

        if (!tar_number(h + 148, 8, &want))
                return false;
        for (unsigned i = 0; i < TAR_BLOCK; i++) {
                unsigned char c = i >= 148 && i < 156 ? ' ' : h[i];
                sum_u += c;
                sum_s += (signed char)c;
        }
        return (int64_t)want == sum_u || (int64_t)want == sum_s;
}

/* What pax and GNU headers say about the next entry. */
struct tar_next {
        char *path, *link;
        bool has_size;
        uint64_t size;
};

static void tar_next_clear(struct tar_next *x)
{
        free(x->path);
        free(x->link);
        *x = (struct tar_next){0};
}

static int set_text(char **field, const char *v, size_t n)
{
        /* Empty: libarchive then reads an empty name (a GNU long name
         * starting with a NUL) where the header's would otherwise stand. */
        if (n == 0 || memchr(v, '\0', n))
                return -EBADMSG;
        free(*field);
        *field = strndup(v, n);
        return *field ? 0 : -ENOMEM;
}

/* Whether the key [kv, eq) starts with prefix. */
static bool key_is(const char *kv, const char *eq, const char *prefix)
{
        size_t n = strlen(prefix);

        return (size_t)(eq - kv) >= n && memcmp(kv, prefix, n) == 0;
}

/* pax records, "LEN key=value\n" each; path, linkpath and size are kept. */
static int pax_parse(const char *p, size_t n, struct tar_next *x, const char **why)
{
        *why = "malformed pax header";
        while (n > 0) {
                size_t len = 0, i = 0;
                const char *kv, *eq, *end;
                int r = 0;

                for (; i < n && i < 8 && p[i] >= '0' && p[i] <= '9'; i++)
                        len = len * 10 + (size_t)(p[i] - '0');
                if (i == 0 || i >= n || p[i] != ' ' || len > n || len < i + 3 || p[len - 1] != '\n')
                        return -EBADMSG;
                kv = p + i + 1;
                end = p + len - 1;
                eq = memchr(kv, '=', (size_t)(end - kv));
                /* An empty key or one with a NUL: libarchive ignores the
                 * rest of the header then, so we cannot read it alike. */
                if (!eq || eq == kv || memchr(kv, '\0', (size_t)(eq - kv)))
                        return -EBADMSG;
                /* Sparse files: libarchive would assemble data (and a
                 * name and size) that these records describe. */
                if (key_is(kv, eq, "GNU.sparse.") || key_is(kv, eq, "SCHILY.realsize") ||
                    key_is(kv, eq, "SCHILY.filetype")) {
                        *why = "pax header for a sparse or special file";
                        return -EBADMSG;
                }
                if (eq - kv == 4 && memcmp(kv, "path", 4) == 0)
                        r = set_text(&x->path, eq + 1, (size_t)(end - eq - 1));
                else if (eq - kv == 8 && memcmp(kv, "linkpath", 8) == 0)
                        r = set_text(&x->link, eq + 1, (size_t)(end - eq - 1));
                else if (eq - kv == 4 && memcmp(kv, "size", 4) == 0) {
                        uint64_t v = 0;
                        if (eq + 1 == end)
                                return -EBADMSG;
                        for (const char *c = eq + 1; c < end; c++) {
                                if (*c < '0' || *c > '9' || v > UINT64_MAX / 10 - 1)
                                        return -EBADMSG;
                                v = v * 10 + (unsigned)(*c - '0');
                        }
                        x->has_size = true;
                        x->size = v;
                }
                if (r < 0)
                        return r;
                p += len;
                n -= len;
        }
        return 0;
}

/* A pax ('x', 'g') or GNU long name ('L', 'K') entry's data, applied to
 * x ('g' is read and ignored). */
static int tar_meta(struct tar_src *s, char type, uint64_t size, struct tar_next *x)
{
        _cleanup_free_ char *d = NULL;
        size_t n;
        int r;

        if (size > TAR_MAX_META) {
                s->why = "extended header over 64 KiB";
                return -EBADMSG;
        }
        if (size > s->budget - s->used)
                return -EFBIG;
        d = malloc(size + 1);
        if (!d)
                return -ENOMEM;
        r = src_exact(s, (unsigned char *)d, size);
        if (r >= 0)
                r = src_skip_padding(s, size);
        if (r < 0)
                return r;
        d[size] = '\0';
        switch (type) {
        case 'x':
                return pax_parse(d, size, x, &s->why);
        case 'L':
        case 'K':
                n = strnlen(d, size); /* GNU counts the NUL */
                r = set_text(type == 'L' ? &x->path : &x->link, d, n);
                if (r == -EBADMSG)
                        s->why = "malformed GNU long name";
                return r;
        default:
                return 0;
        }
}

/* The entry's name: from pax or GNU headers, else ustar's prefix/name. */
static char *tar_name(const unsigned char *h, struct tar_next *x)
{
        const char *name = (const char *)h, *prefix = (const char *)h + 345;

        if (x->path)
                return TAKE_PTR(x->path);
        /* POSIX ustar only: GNU's "ustar  " keeps other things there. */
        if (memcmp(h + 257, "ustar", 6) == 0 && prefix[0])
                return strprintf("%.155s/%.100s", prefix, name);
        return strndup(name, 100);
}

static const char *special_name(char type)
{
        switch (type) {
        case '3':
                return "character device";
        case '4':
                return "block device";
        case '6':
                return "FIFO";
        default:
                return "special file";
        }
}

int tar_read(const void *data, size_t size, size_t max_total, size_t max_members,
             struct member_list *ret, char **ret_error)
{
        _cleanup_(tar_src_done) struct tar_src s = {
                .data = data, .left = size, .budget = max_total};
        _cleanup_member_list_ struct member_list l = {0};
        _cleanup_strv_free_ char **dirs = NULL;
        _cleanup_(tar_next_clear) struct tar_next next = {0};
        unsigned char h[TAR_BLOCK];
        size_t cap = 0, count = 0, tail = 0, meta_run = 0;
        ssize_t got = 0;
        int r;

        r = src_open(&s);
        if (r < 0)
                return r;

        for (;;) {
                _cleanup_free_ char *raw = NULL, *link = NULL, *copy = NULL;
                unsigned char *d = NULL;
                const char *reason = NULL;
                char *path, type;
                uint64_t esize, mode;
                bool is_dir;

                r = src_exact(&s, h, TAR_BLOCK);
                if (r < 0)
                        return tar_corrupt(ret_error, &s, r);
                if (memcmp(h, h + 1, TAR_BLOCK - 1) == 0 && h[0] == 0) {
                        /* The end-of-archive block; libarchive refuses
                         * one right after an extended header. */
                        if (meta_run > 0) {
                                s.why = "extended header without an entry after it";
                                return tar_corrupt(ret_error, &s, -EBADMSG);
                        }
                        break;
                }
                type = (char)h[156];
                if (!tar_checksum_ok(h))
                        s.why = "header checksum mismatch";
                else if (!tar_number(h + 124, 12, &esize) || !tar_number(h + 100, 8, &mode) ||
                         !tar_numbers_ok(h))
                        s.why = "bad number in a header";
                else if (mode > 0177777)
                        /* Permissions, maybe with the file type bits some
                         * old tars add; anything more is not a mode. */
                        s.why = "bad mode in a header";
                else
                        s.why = NULL;
                if (s.why)
                        return tar_corrupt(ret_error, &s, -EBADMSG);
                if (type && strchr("xgLK", type)) {
                        if (++meta_run > TAR_MAX_META_RUN) {
                                s.why = "more than 8 extended headers in a row";
                                return tar_corrupt(ret_error, &s, -EBADMSG);
                        }
                        r = tar_meta(&s, type, esize, &next);
                        if (r < 0)
                                return tar_corrupt(ret_error, &s, r);
                        continue;
                }
                meta_run = 0;
                if (next.has_size)
                        esize = next.size;
                raw = tar_name(h, &next);
                link = next.link ? TAKE_PTR(next.link) : strndup((const char *)h + 157, 100);
                tar_next_clear(&next);
                if (!raw || !link)
                        return -ENOMEM;

                if (++count > max_members)
                        return member_error(ret_error, raw, "more than %zu members", max_members);
                if (strlen(raw) > TAR_MAX_PATH)
                        return member_error(ret_error, raw, "path longer than %u bytes",
                                            TAR_MAX_PATH);
                is_dir = type == '5' || type == 'D';
                copy = strdup(raw);
                if (!copy)
                        return -ENOMEM;
                path = normalize_path(copy, is_dir, &reason);
                if (!path)
                        return member_error(ret_error, raw, "%s", reason ? reason : "empty path");
                if (type == '1')
                        return member_error(ret_error, raw, "hard link (to %s)", link);
                if (type == '2')
                        return member_error(ret_error, raw, "symbolic link (to %s)", link);
                if (is_dir) {
                        /* GNU dumpdirs ('D') list the directory's names as
                         * data; nothing we make has any. */
                        if (esize != 0)
                                return member_error(ret_error, raw, "directory with data");
                        if (*path && strv_extend(&dirs, path) < 0)
                                return -ENOMEM;
                        continue;
                }
                if (type != '0' && type != '\0' && type != '7')
                        return member_error(ret_error, raw, "%s", special_name(type));
                if (esize > s.budget - s.used)
                        return member_error(ret_error, raw,
                                            "archive over the limit of %zu bytes uncompressed "
                                            "(headers, padding and trailing data included)",
                                            max_total);

                d = malloc(esize + 1);
                if (!d)
                        return -ENOMEM;
                r = src_exact(&s, d, esize);
                if (r >= 0)
                        r = src_skip_padding(&s, esize);
                if (r >= 0) {
                        d[esize] = '\0';
                        path = strdup(path);
                        r = path ? list_push(&l, &cap, path, d, esize, (unsigned)mode) : -ENOMEM;
                        if (r < 0)
                                free(path);
                }
                if (r < 0) {
                        free(d);
                        return tar_corrupt(ret_error, &s, r);
                }
        }

        /* A gzip'd tar: decompress what follows to the stream's end, so
         * that zlib checks the trailer (src_read() stops short only there).
         * A plain one's tail is already in memory and harmless. */
        while (s.gz && (got = src_read(&s, h, sizeof(h))) > 0)
                if ((tail += (size_t)got) > TAR_MAX_TAIL) {
                        s.why = "too much data after the end of the archive";
                        return tar_corrupt(ret_error, &s, -EBADMSG);
                }
        if (s.gz && got < 0)
                return tar_corrupt(ret_error, &s, (int)got);

        r = check_conflicts(&l, dirs, ret_error);
        if (r < 0)
                return r;
        *ret = l;
        l = (struct member_list){0};
        return 0;
}

/* --- gzip'd data that is not a tar (a "#!" script compressed to fit a
 * provider's user-data limit) --- */

ssize_t gzip_peek(const void *data, size_t size, unsigned char *buf, size_t n)
{
        _cleanup_(tar_src_done) struct tar_src s = {.data = data, .left = size, .budget = n};
        int r = src_open(&s);

        if (r < 0)
                return r;
        if (!s.gz)
                return -EMEDIUMTYPE;
        return src_read(&s, buf, n);
}

int gzip_inflate(const void *data, size_t size, size_t max, unsigned char **ret, size_t *ret_size,
                 char **ret_error)
{
        _cleanup_(tar_src_done) struct tar_src s = {.data = data, .left = size, .budget = max};
        _cleanup_free_ unsigned char *out = NULL;
        size_t len = 0, cap = 0;
        int r = src_open(&s);

        if (r < 0)
                return r;
        if (!s.gz)
                return -EMEDIUMTYPE;
        for (;;) {
                if (cap - len < 65536) {
                        size_t ncap = cap ? cap * 2 : 65536;
                        unsigned char *n = realloc(out, ncap + 1);
                        if (!n)
                                return -ENOMEM;
                        out = n;
                        cap = ncap;
                }
                ssize_t got = src_read(&s, out + len, cap - len);
                if (got == -EFBIG) {
                        if (ret_error && !(*ret_error = strprintf("over the limit of %zu bytes "
                                                                  "uncompressed",
                                                                  max)))
                                return -ENOMEM;
                        return -EFBIG;
                }
                if (got == -EBADMSG) {
                        if (ret_error && !(*ret_error = strprintf("corrupt gzip data: %s", s.why)))
                                return -ENOMEM;
                        return -EBADMSG;
                }
                if (got < 0)
                        return (int)got;
                len += (size_t)got;
                if (s.gz_ended)
                        break;
        }
        out[len] = '\0';
        *ret = TAKE_PTR(out);
        *ret_size = len;
        return 0;
}
