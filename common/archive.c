/* libarchive behind a small interface; see archive.h. The file is named
 * like libarchive's header: "archive.h" (quotes, -iquote) is ours,
 * <archive.h> is libarchive's. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>
#include <stdbool.h>
#include <stdio.h>

#include "archive.h"
#include "dl.h"
#include "util.h"

/* libarchive is loaded when first needed, not at startup: with its
 * dependencies (libxml2, ICU, libstdc++) it costs 4.5 MB of memory and
 * most of the dynamic linker's time in a process that never opens an
 * archive (`firstboot status`, `imagegen render`). Each entry point below
 * calls archive_dl() first; the names are the pointers from here on. */
#define ARCHIVE_SYMBOLS(X)                                                                         \
        X(archive_entry_clear)                                                                     \
        X(archive_entry_filetype)                                                                  \
        X(archive_entry_free)                                                                      \
        X(archive_entry_gid)                                                                       \
        X(archive_entry_hardlink)                                                                  \
        X(archive_entry_new)                                                                       \
        X(archive_entry_pathname)                                                                  \
        X(archive_entry_pathname_utf8)                                                             \
        X(archive_entry_perm)                                                                      \
        X(archive_entry_set_filetype)                                                              \
        X(archive_entry_set_gid)                                                                   \
        X(archive_entry_set_gname)                                                                 \
        X(archive_entry_set_mtime)                                                                 \
        X(archive_entry_set_pathname)                                                              \
        X(archive_entry_set_perm)                                                                  \
        X(archive_entry_set_size)                                                                  \
        X(archive_entry_set_symlink)                                                               \
        X(archive_entry_set_uid)                                                                   \
        X(archive_entry_set_uname)                                                                 \
        X(archive_entry_size)                                                                      \
        X(archive_entry_sparse_clear)                                                              \
        X(archive_entry_symlink)                                                                   \
        X(archive_entry_uid)                                                                       \
        X(archive_errno)                                                                           \
        X(archive_error_string)                                                                    \
        X(archive_filter_code)                                                                     \
        X(archive_read_data)                                                                       \
        X(archive_read_free)                                                                       \
        X(archive_read_new)                                                                        \
        X(archive_read_next_header)                                                                \
        X(archive_read_open_fd)                                                                    \
        X(archive_read_open_filename)                                                              \
        X(archive_read_support_filter_all)                                                         \
        X(archive_read_support_format_iso9660)                                                     \
        X(archive_read_support_format_tar)                                                         \
        X(archive_set_error)                                                                       \
        X(archive_write_add_filter)                                                                \
        X(archive_write_add_filter_gzip)                                                           \
        X(archive_write_close)                                                                     \
        X(archive_write_data)                                                                      \
        X(archive_write_free)                                                                      \
        X(archive_write_header)                                                                    \
        X(archive_write_new)                                                                       \
        X(archive_write_open2)                                                                     \
        X(archive_write_open_fd)                                                                   \
        X(archive_write_set_bytes_in_last_block)                                                   \
        X(archive_write_set_filter_option)                                                         \
        X(archive_write_set_format_iso9660)                                                        \
        X(archive_write_set_format_option)                                                         \
        X(archive_write_set_format_pax)                                                            \
        X(archive_write_set_format_pax_restricted)
DL_DEFINE(libarchive, SONAME_LIBARCHIVE, ARCHIVE_SYMBOLS);

const char *archive_load_error(void)
{
        return libarchive.state < 0 ? libarchive.error : NULL;
}

/* 0, or -ELIBACC with *ret_error (when given) saying why. */
static int archive_dl(char **ret_error)
{
        if (dl_load(&libarchive) == 0)
                return 0;
        if (ret_error)
                *ret_error = strprintf("cannot load %s", libarchive.error);
        return -ELIBACC;
}

#define archive_entry_clear                     sym_archive_entry_clear
#define archive_entry_filetype                  sym_archive_entry_filetype
#define archive_entry_free                      sym_archive_entry_free
#define archive_entry_gid                       sym_archive_entry_gid
#define archive_entry_hardlink                  sym_archive_entry_hardlink
#define archive_entry_new                       sym_archive_entry_new
#define archive_entry_pathname                  sym_archive_entry_pathname
#define archive_entry_pathname_utf8             sym_archive_entry_pathname_utf8
#define archive_entry_perm                      sym_archive_entry_perm
#define archive_entry_set_filetype              sym_archive_entry_set_filetype
#define archive_entry_set_gid                   sym_archive_entry_set_gid
#define archive_entry_set_gname                 sym_archive_entry_set_gname
#define archive_entry_set_mtime                 sym_archive_entry_set_mtime
#define archive_entry_set_pathname              sym_archive_entry_set_pathname
#define archive_entry_set_perm                  sym_archive_entry_set_perm
#define archive_entry_set_size                  sym_archive_entry_set_size
#define archive_entry_set_symlink               sym_archive_entry_set_symlink
#define archive_entry_set_uid                   sym_archive_entry_set_uid
#define archive_entry_set_uname                 sym_archive_entry_set_uname
#define archive_entry_size                      sym_archive_entry_size
#define archive_entry_sparse_clear              sym_archive_entry_sparse_clear
#define archive_entry_symlink                   sym_archive_entry_symlink
#define archive_entry_uid                       sym_archive_entry_uid
#define archive_errno                           sym_archive_errno
#define archive_error_string                    sym_archive_error_string
#define archive_filter_code                     sym_archive_filter_code
#define archive_read_data                       sym_archive_read_data
#define archive_read_free                       sym_archive_read_free
#define archive_read_new                        sym_archive_read_new
#define archive_read_next_header                sym_archive_read_next_header
#define archive_read_open_fd                    sym_archive_read_open_fd
#define archive_read_open_filename              sym_archive_read_open_filename
#define archive_read_support_filter_all         sym_archive_read_support_filter_all
#define archive_read_support_format_iso9660     sym_archive_read_support_format_iso9660
#define archive_read_support_format_tar         sym_archive_read_support_format_tar
#define archive_set_error                       sym_archive_set_error
#define archive_write_add_filter                sym_archive_write_add_filter
#define archive_write_add_filter_gzip           sym_archive_write_add_filter_gzip
#define archive_write_close                     sym_archive_write_close
#define archive_write_data                      sym_archive_write_data
#define archive_write_free                      sym_archive_write_free
#define archive_write_header                    sym_archive_write_header
#define archive_write_new                       sym_archive_write_new
#define archive_write_open2                     sym_archive_write_open2
#define archive_write_open_fd                   sym_archive_write_open_fd
#define archive_write_set_bytes_in_last_block   sym_archive_write_set_bytes_in_last_block
#define archive_write_set_filter_option         sym_archive_write_set_filter_option
#define archive_write_set_format_iso9660        sym_archive_write_set_format_iso9660
#define archive_write_set_format_option         sym_archive_write_set_format_option
#define archive_write_set_format_pax            sym_archive_write_set_format_pax
#define archive_write_set_format_pax_restricted sym_archive_write_set_format_pax_restricted

#define ISO_SECTOR      2048
#define ISO_FIRST_VD    16 /* the volume descriptors start at sector 16 */
#define ISO_MAX_VDS     64 /* how many descriptors we look through for the primary */
#define ISO_VOLUME_ID   40 /* offset and size of the volume id in the primary descriptor */
#define ISO_VOLUME_ID_N 32

static void archive_read_freep(struct archive **a)
{
        if (*a)
                archive_read_free(*a);
}
static void archive_write_freep(struct archive **a)
{
        if (*a)
                archive_write_free(*a);
}
static void archive_entry_freep(struct archive_entry **e)
{
        if (*e)
                archive_entry_free(*e);
}
static void member_list_freep(struct member_list *l)
{
        member_list_free(l);
}
#define _cleanup_archive_read_  _cleanup_(archive_read_freep)
#define _cleanup_archive_write_ _cleanup_(archive_write_freep)
#define _cleanup_archive_entry_ _cleanup_(archive_entry_freep)
#define _cleanup_member_list_   _cleanup_(member_list_freep)

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

/* A member name for messages: quoted, with control characters, quotes,
 * backslashes and non-ASCII bytes escaped, since names come from
 * untrusted archives and end up in logs and terminals. */
static char *quote_name(const char *s)
{
        struct buf b = {0};
        int r = buf_puts(&b, "\"");

        for (const unsigned char *p = (const unsigned char *)s; r >= 0 && *p; p++) {
                if (*p == '"' || *p == '\\')
                        r = buf_printf(&b, "\\%c", *p);
                else if (*p < 0x20 || *p >= 0x7f)
                        r = buf_printf(&b, "\\x%02x", *p);
                else
                        r = buf_append(&b, p, 1);
        }
        if (r >= 0)
                r = buf_puts(&b, "\"");
        if (r < 0) {
                buf_free(&b);
                return NULL;
        }
        return buf_steal(&b);
}

/* Sets *ret_error (when not NULL) to 'member "NAME": REASON' and returns
 * -EBADMSG, or -ENOMEM when the message cannot be made. */
static int member_error(char **ret_error, const char *name, const char *fmt, ...) _printf_(3, 4);
static int member_error(char **ret_error, const char *name, const char *fmt, ...)
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

static int corrupt_error(char **ret_error, struct archive *a)
{
        const char *why = archive_error_string(a);
        char *msg;

        if (archive_errno(a) == ENOMEM)
                return -ENOMEM;
        if (!ret_error)
                return -EBADMSG;
        msg = strprintf("truncated or corrupt archive: %s", why ? why : "unknown error");
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
static bool member_path_ok(const char *path)
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

/* Reads the data of the current entry, which announced size bytes, into
 * a NUL-terminated buffer. */
static int read_entry_data(struct archive *a, size_t size, unsigned char **ret, char **ret_error)
{
        _cleanup_free_ unsigned char *d = NULL;
        size_t got = 0;

        d = malloc(size + 1);
        if (!d)
                return -ENOMEM;
        for (;;) {
                /* Ask for one byte more than announced, to notice more. */
                la_ssize_t n = archive_read_data(a, d + got, size + 1 - got);
                if (n < 0)
                        return corrupt_error(ret_error, a);
                if (n == 0)
                        break;
                got += (size_t)n;
                if (got > size) {
                        archive_set_error(a, EINVAL, "more data than the header announced");
                        return corrupt_error(ret_error, a);
                }
        }
        if (got != size) {
                archive_set_error(a, EINVAL, "less data than the header announced");
                return corrupt_error(ret_error, a);
        }
        d[size] = '\0';
        *ret = TAKE_PTR(d);
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

struct tar_src {
        const unsigned char *data; /* plain: what is left of the input */
        size_t left;
        bool gz, gz_ended;
        z_stream z;
        const char *why; /* after -EBADMSG: what is wrong, for tar_corrupt() */
};

static void tar_src_done(struct tar_src *s)
{
        if (s->gz)
                inflateEnd(&s->z);
}

/* Reads up to n bytes; fewer only at the end of the data. -EBADMSG with
 * s->why for corrupt compressed data, -ENOMEM. */
static ssize_t src_read(struct tar_src *s, unsigned char *buf, size_t n)
{
        size_t got = 0;

        if (!s->gz) {
                got = n < s->left ? n : s->left;
                if (got > 0)
                        memcpy(buf, s->data, got);
                s->data += got;
                s->left -= got;
                return (ssize_t)got;
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
        return (ssize_t)got;
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
        if (memchr(v, '\0', n))
                return -EBADMSG;
        free(*field);
        *field = n > 0 ? strndup(v, n) : NULL;
        return n > 0 && !*field ? -ENOMEM : 0;
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
                if (!eq)
                        return -EBADMSG;
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
        _cleanup_(tar_src_done) struct tar_src s = {.data = data, .left = size};
        _cleanup_member_list_ struct member_list l = {0};
        _cleanup_strv_free_ char **dirs = NULL;
        _cleanup_(tar_next_clear) struct tar_next next = {0};
        unsigned char h[TAR_BLOCK];
        size_t cap = 0, total = 0, count = 0, tail = 0;
        ssize_t got = 0;
        int r;

        if (size >= 2 && s.data[0] == 0x1f && s.data[1] == 0x8b) {
                if (size > UINT_MAX)
                        return -EFBIG;
                s.z.next_in = (unsigned char *)s.data;
                s.z.avail_in = (uInt)size;
                if (inflateInit2(&s.z, 16 + MAX_WBITS) != Z_OK)
                        return -ENOMEM;
                s.gz = true;
        }

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
                if (memcmp(h, h + 1, TAR_BLOCK - 1) == 0 && h[0] == 0)
                        break; /* the end-of-archive block */
                type = (char)h[156];
                if (!tar_checksum_ok(h))
                        s.why = "header checksum mismatch";
                else if (!tar_number(h + 124, 12, &esize) || !tar_number(h + 100, 8, &mode))
                        s.why = "bad number in a header";
                else
                        s.why = NULL;
                if (s.why)
                        return tar_corrupt(ret_error, &s, -EBADMSG);
                if (type && strchr("xgLK", type)) {
                        r = tar_meta(&s, type, esize, &next);
                        if (r < 0)
                                return tar_corrupt(ret_error, &s, r);
                        continue;
                }
                if (next.has_size)
                        esize = next.size;
                raw = tar_name(h, &next);
                link = next.link ? TAKE_PTR(next.link) : strndup((const char *)h + 157, 100);
                tar_next_clear(&next);
                if (!raw || !link)
                        return -ENOMEM;

                if (++count > max_members)
                        return member_error(ret_error, raw, "more than %zu members", max_members);
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
                if (esize > max_total || total > max_total - esize)
                        return member_error(ret_error, raw,
                                            "over the limit of %zu bytes of uncompressed data",
                                            max_total);
                total += esize;

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

static la_ssize_t buf_write_cb(struct archive *a _unused_, void *userdata, const void *p, size_t n)
{
        if (buf_append(userdata, p, n) < 0)
                return -1;
        return (la_ssize_t)n;
}

/* Writes the data of the entry just started, all of it. */
static int write_entry_data(struct archive *a, const void *data, size_t size)
{
        const unsigned char *p = data;

        while (size > 0) {
                la_ssize_t n = archive_write_data(a, p, size);
                if (n <= 0)
                        return archive_errno(a) == ENOMEM ? -ENOMEM : -EIO;
                p += n;
                size -= (size_t)n;
        }
        return 0;
}

int tar_write_gz(const struct member_list *l, unsigned char **ret, size_t *ret_size)
{
        _cleanup_archive_write_ struct archive *a = NULL;
        _cleanup_archive_entry_ struct archive_entry *e = NULL;
        struct buf out = {0};
        int r = -EIO;

        for (size_t i = 0; i < l->n; i++)
                if (!member_path_ok(l->v[i].path) || (!l->v[i].data && l->v[i].size > 0))
                        return -EINVAL;

        if (archive_dl(NULL) < 0)
                return -ELIBACC;
        a = archive_write_new();
        e = archive_entry_new();
        if (!a || !e)
                return -ENOMEM;
        /* ustar where it suffices, pax headers only for long or non-ASCII
         * names. Names are bytes: hdrcharset=BINARY keeps them as given
         * whatever the locale (in the C locale libarchive would fall back
         * to it with a warning anyway). No timestamp in the gzip header. */
        if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_set_format_option(a, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
            archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
            archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK)
                return -EIO;
        if (archive_write_open2(a, &out, NULL, buf_write_cb, NULL, NULL) != ARCHIVE_OK)
                goto fail;

        for (size_t i = 0; i < l->n; i++) {
                const struct archive_member *m = &l->v[i];

                archive_entry_clear(e);
                archive_entry_set_pathname(e, m->path);
                archive_entry_set_filetype(e, AE_IFREG);
                archive_entry_set_perm(e, m->mode & 07777);
                archive_entry_set_size(e, (la_int64_t)m->size);
                archive_entry_set_mtime(e, 0, 0);
                archive_entry_set_uid(e, 0);
                archive_entry_set_gid(e, 0);
                archive_entry_set_uname(e, "root");
                archive_entry_set_gname(e, "root");
                if (archive_write_header(a, e) != ARCHIVE_OK)
                        goto fail;
                r = write_entry_data(a, m->data, m->size);
                if (r < 0)
                        goto fail;
        }
        if (archive_write_close(a) != ARCHIVE_OK)
                goto fail;

        *ret_size = out.len;
        *ret = (unsigned char *)buf_steal(&out);
        if (!*ret)
                return -ENOMEM;
        return 0;
fail:
        if (r == -EIO && archive_errno(a) == ENOMEM)
                r = -ENOMEM;
        /* Freed before the buffer: freeing may still flush into it. */
        archive_write_free(TAKE_PTR(a));
        buf_free(&out);
        return r;
}

/* Finds the primary volume descriptor: its offset and contents. */
static int find_pvd(int fd, off_t *ret_offset, unsigned char vd[ISO_SECTOR])
{
        for (unsigned i = 0; i < ISO_MAX_VDS; i++) {
                off_t off = (off_t)(ISO_FIRST_VD + i) * ISO_SECTOR;
                ssize_t n = pread(fd, vd, ISO_SECTOR, off);

                if (n < 0)
                        return -errno;
                if (n < ISO_SECTOR || memcmp(vd + 1, "CD001", 5) != 0)
                        return -EMEDIUMTYPE;
                if (vd[0] == 255) /* the set terminator */
                        return -EMEDIUMTYPE;
                if (vd[0] == 1) {
                        *ret_offset = off;
                        return 0;
                }
        }
        return -EMEDIUMTYPE;
}

/* The primary volume descriptor's volume id, read from fd. */
static int read_volume_id(int fd, char ret[33])
{
        unsigned char vd[ISO_SECTOR];
        size_t len = ISO_VOLUME_ID_N;
        off_t off;
        int r;

        r = find_pvd(fd, &off, vd);
        if (r < 0)
                return r;
        memcpy(ret, vd + ISO_VOLUME_ID, ISO_VOLUME_ID_N);
        while (len > 0 && (ret[len - 1] == ' ' || ret[len - 1] == '\0'))
                len--;
        ret[len] = '\0';
        return 0;
}

int iso_volume_id(const char *image, char ret[33])
{
        _cleanup_close_ int fd = -1;
        char id[ISO_VOLUME_ID_N + 1];
        int r;

        fd = open(image, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        r = read_volume_id(fd, id);
        if (r < 0)
                return r;
        memcpy(ret, id, sizeof(id));
        return 0;
}

/* A path as the ISO reader gives it, without leading "./" or "/" and
 * trailing "/", compared with member. */
static bool iso_path_eq(const char *path, const char *member)
{
        size_t n;

        while (path[0] == '/' || (path[0] == '.' && path[1] == '/'))
                path += path[0] == '/' ? 1 : 2;
        n = strlen(path);
        while (n > 0 && path[n - 1] == '/')
                n--;
        return strlen(member) == n && strncmp(path, member, n) == 0;
}

/* One pass over the image for member. A hard link (libarchive reports
 * files sharing data that way) is returned as -EMLINK with its target in
 * *ret_link. */
static int iso_find(int fd, const char *member, size_t max, char **ret, size_t *ret_size,
                    char **ret_link)
{
        _cleanup_archive_read_ struct archive *a = NULL;
        struct archive_entry *e;
        int r;

        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        if (archive_dl(NULL) < 0)
                return -ELIBACC;
        a = archive_read_new();
        if (!a)
                return -ENOMEM;
        if (archive_read_support_format_iso9660(a) != ARCHIVE_OK)
                return -ENOMEM;
        if (archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK)
                return archive_errno(a) > 0 ? -archive_errno(a) : -EIO;

        for (;;) {
                const char *path;
                la_int64_t size;

                r = archive_read_next_header(a, &e);
                if (r == ARCHIVE_EOF)
                        return -ENOENT;
                if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
                        return archive_errno(a) == ENOMEM ? -ENOMEM : -EIO;
                path = archive_entry_pathname(e);
                if (!path)
                        path = archive_entry_pathname_utf8(e);
                if (!path || !iso_path_eq(path, member))
                        continue;

                if (archive_entry_hardlink(e)) {
                        char *target = strdup(archive_entry_hardlink(e));
                        if (!target)
                                return -ENOMEM;
                        *ret_link = target;
                        return -EMLINK;
                }
                if (archive_entry_filetype(e) == AE_IFDIR)
                        return -EISDIR;
                if (archive_entry_filetype(e) != AE_IFREG)
                        return -ENOENT;
                size = archive_entry_size(e);
                if (size < 0)
                        return -EIO;
                if ((uint64_t)size > max)
                        return -EFBIG;

                _cleanup_free_ char *d = malloc((size_t)size + 1);
                size_t got = 0;
                if (!d)
                        return -ENOMEM;
                while (got < (size_t)size) {
                        la_ssize_t n = archive_read_data(a, d + got, (size_t)size - got);
                        if (n < 0)
                                return archive_errno(a) == ENOMEM ? -ENOMEM : -EIO;
                        if (n == 0)
                                return -EIO;
                        got += (size_t)n;
                }
                d[got] = '\0';
                *ret = TAKE_PTR(d);
                if (ret_size)
                        *ret_size = got;
                return 0;
        }
}

int iso_read_member(const char *image, const char *member, size_t max, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *want = NULL;
        char id[ISO_VOLUME_ID_N + 1];
        int r;

        while (member[0] == '/' || (member[0] == '.' && member[1] == '/'))
                member += member[0] == '/' ? 1 : 2;
        if (!*member)
                return -EISDIR;
        want = strdup(member);
        if (!want)
                return -ENOMEM;

        fd = open(image, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        r = read_volume_id(fd, id);
        if (r < 0)
                return r;

        /* Follow hard links a few times; a cycle cannot happen in an image
         * libarchive read, but a bound costs nothing. */
        for (int hops = 0; hops < 4; hops++) {
                _cleanup_free_ char *link = NULL;

                r = iso_find(fd, want, max, ret, ret_size, &link);
                if (r != -EMLINK)
                        return r;
                free(want);
                want = TAKE_PTR(link);
                while (want[0] == '/')
                        memmove(want, want + 1, strlen(want));
        }
        return -ELOOP;
}

static bool volume_id_ok(const char *id)
{
        size_t n = strlen(id);

        if (n == 0 || n > ISO_VOLUME_ID_N)
                return false;
        for (const char *p = id; *p; p++)
                if (*p <= ' ' || *p >= 0x7f)
                        return false;
        return true;
}

/* Adds a directory entry for each parent of path not added yet. */
static int iso_add_parents(struct archive *a, struct archive_entry *e, const char *path,
                           char ***done, time_t now)
{
        for (const char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
                _cleanup_free_ char *dir = strndup(path, (size_t)(slash - path));
                if (!dir)
                        return -ENOMEM;
                if (strv_contains(*done, dir))
                        continue;
                archive_entry_clear(e);
                archive_entry_set_pathname(e, dir);
                archive_entry_set_filetype(e, AE_IFDIR);
                archive_entry_set_perm(e, 0755);
                archive_entry_set_mtime(e, now, 0);
                if (archive_write_header(a, e) != ARCHIVE_OK)
                        return archive_errno(a) == ENOMEM ? -ENOMEM : -EIO;
                if (strv_push(done, dir) < 0)
                        return -ENOMEM;
                dir = NULL;
        }
        return 0;
}

/* Writes the image to fd. */
static int iso_write_fd(int fd, const char *volume_id, const struct member_list *l)
{
        _cleanup_archive_write_ struct archive *a = NULL;
        _cleanup_archive_entry_ struct archive_entry *e = NULL;
        _cleanup_strv_free_ char **dirs = NULL;
        time_t now = time(NULL);
        int r;

        if (archive_dl(NULL) < 0)
                return -ELIBACC;
        a = archive_write_new();
        e = archive_entry_new();
        if (!a || !e)
                return -ENOMEM;
        /* Rock Ridge "strict" keeps the members' modes (like genisoimage
         * -R, which cloud-localds uses); the 300 KiB of padding for old CD
         * drives is not needed. */
        if (archive_write_set_format_iso9660(a) != ARCHIVE_OK ||
            archive_write_set_format_option(a, "iso9660", "volume-id", volume_id) != ARCHIVE_OK ||
            archive_write_set_format_option(a, "iso9660", "rockridge", "strict") != ARCHIVE_OK ||
            archive_write_set_format_option(a, "iso9660", "joliet", "1") != ARCHIVE_OK ||
            archive_write_set_format_option(a, "iso9660", "pad", NULL) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK)
                return -EIO;
        if (archive_write_open_fd(a, fd) != ARCHIVE_OK)
                return archive_errno(a) > 0 ? -archive_errno(a) : -EIO;

        for (size_t i = 0; i < l->n; i++) {
                const struct archive_member *m = &l->v[i];

                r = iso_add_parents(a, e, m->path, &dirs, now);
                if (r < 0)
                        return r;
                archive_entry_clear(e);
                archive_entry_set_pathname(e, m->path);
                archive_entry_set_filetype(e, AE_IFREG);
                archive_entry_set_perm(e, m->mode & 07777);
                archive_entry_set_size(e, (la_int64_t)m->size);
                archive_entry_set_mtime(e, now, 0);
                if (archive_write_header(a, e) != ARCHIVE_OK)
                        return archive_errno(a) == ENOMEM ? -ENOMEM : -EIO;
                r = write_entry_data(a, m->data, m->size);
                if (r < 0)
                        return r;
        }
        if (archive_write_close(a) != ARCHIVE_OK)
                return archive_errno(a) > 0 ? -archive_errno(a) : -EIO;
        return 0;
}

/* libarchive upper-cases the volume id ("CIDATA"), as ECMA-119 wants;
 * genisoimage, which cloud-localds uses, writes it as given, and that is
 * what people look for. The Joliet descriptor already has it as given. */
static int patch_volume_id(int fd, const char *volume_id)
{
        unsigned char vd[ISO_SECTOR];
        char id[ISO_VOLUME_ID_N];
        off_t off;
        int r;

        r = find_pvd(fd, &off, vd);
        if (r < 0)
                return r == -EMEDIUMTYPE ? -EIO : r;
        memset(id, ' ', sizeof(id));
        memcpy(id, volume_id, strlen(volume_id));
        if (pwrite(fd, id, sizeof(id), off + ISO_VOLUME_ID) != (ssize_t)sizeof(id))
                return errno > 0 ? -errno : -EIO;
        return 0;
}

int iso_write(const char *path, const char *volume_id, const struct member_list *l)
{
        _cleanup_free_ char *tmp = NULL, *dir = NULL;
        _cleanup_close_ int fd = -1, dfd = -1;
        const char *slash;
        int r;

        if (!volume_id_ok(volume_id))
                return -EINVAL;
        for (size_t i = 0; i < l->n; i++) {
                if (!member_path_ok(l->v[i].path) || (!l->v[i].data && l->v[i].size > 0))
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (streq(l->v[i].path, l->v[j].path))
                                return -EINVAL;
        }

        tmp = strprintf("%s.XXXXXX", path);
        slash = strrchr(path, '/');
        dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
        if (!tmp || !dir)
                return -ENOMEM;
        /* mkostemp() creates the file 0600: seeds hold secrets. */
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;

        r = iso_write_fd(fd, volume_id, l);
        if (r >= 0)
                r = patch_volume_id(fd, volume_id);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void)fsync(dfd);
        return 0;
}

/* --- Rootfs tarballs (imagegen bake --tar) --- */

static void tar_index_entry_free(struct tar_entry_info *x)
{
        free(x->path);
        free(x->link);
}

void tar_index_free(struct tar_index *x)
{
        if (!x)
                return;
        for (size_t i = 0; i < x->n; i++)
                tar_index_entry_free(&x->v[i]);
        free(x->v);
        *x = (struct tar_index){0};
}

/* A rootfs entry name without leading "/" and "./" and trailing "/";
 * unlike bundle members these are not checked, only compared. */
static char *rootfs_name(const char *raw)
{
        size_t n;

        for (;;) {
                if (raw[0] == '/')
                        raw++;
                else if (raw[0] == '.' && raw[1] == '/')
                        raw += 2;
                else
                        break;
        }
        if (streq(raw, "."))
                raw = "";
        n = strlen(raw);
        while (n > 0 && raw[n - 1] == '/')
                n--;
        return strndup(raw, n);
}

static char rootfs_type(struct archive_entry *e)
{
        if (archive_entry_hardlink(e))
                return 'h';
        switch (archive_entry_filetype(e)) {
        case AE_IFREG:
                return 'f';
        case AE_IFDIR:
                return 'd';
        case AE_IFLNK:
                return 'l';
        default:
                return 'o';
        }
}

/* Opens a rootfs tarball with any compression libarchive knows. */
static int rootfs_open(const char *path, struct archive **ret, char **ret_error)
{
        if (archive_dl(ret_error) < 0)
                return -ELIBACC;
        struct archive *a = archive_read_new();

        if (!a)
                return -ENOMEM;
        if (archive_read_support_filter_all(a) != ARCHIVE_OK ||
            archive_read_support_format_tar(a) != ARCHIVE_OK) {
                archive_read_free(a);
                return -ENOMEM;
        }
        if (archive_read_open_filename(a, path, 64 * 1024) != ARCHIVE_OK) {
                int e = archive_errno(a) > 0 ? archive_errno(a) : EIO;
                if (ret_error)
                        *ret_error = strdup(archive_error_string(a) ? archive_error_string(a)
                                                                    : strerror(e));
                archive_read_free(a);
                return -e;
        }
        *ret = a;
        return 0;
}

/* The next header, or 0 at the end (1 when there is one). */
static int rootfs_next(struct archive *a, struct archive_entry **e, char **ret_error)
{
        int r = archive_read_next_header(a, e);

        if (r == ARCHIVE_EOF)
                return 0;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
                return corrupt_error(ret_error, a);
        if (!archive_entry_pathname(*e))
                return member_error(ret_error, "", "no usable name");
        return 1;
}

int tar_index_read(const char *archive, struct tar_index *ret, char **ret_error)
{
        _cleanup_archive_read_ struct archive *a = NULL;
        struct tar_index x = {0};
        struct archive_entry *e;
        size_t cap = 0;
        int r;

        r = rootfs_open(archive, &a, ret_error);
        if (r < 0)
                return r;
        while ((r = rootfs_next(a, &e, ret_error)) > 0) {
                struct tar_entry_info info = {
                        .path = rootfs_name(archive_entry_pathname(e)),
                        .type = rootfs_type(e),
                        .mode = archive_entry_perm(e) & 07777,
                };
                if (info.type == 'h')
                        info.link = rootfs_name(archive_entry_hardlink(e));
                else if (info.type == 'l' && archive_entry_symlink(e))
                        info.link = strdup(archive_entry_symlink(e));
                if (!info.path || (info.type == 'h' && !info.link)) {
                        tar_index_entry_free(&info);
                        r = -ENOMEM;
                        break;
                }
                if (x.n == cap) {
                        size_t ncap = cap ? cap * 2 : 256;
                        struct tar_entry_info *v = realloc(x.v, ncap * sizeof(*v));
                        if (!v) {
                                tar_index_entry_free(&info);
                                r = -ENOMEM;
                                break;
                        }
                        x.v = v;
                        cap = ncap;
                }
                x.v[x.n++] = info;
        }
        if (r < 0) {
                tar_index_free(&x);
                return r;
        }
        *ret = x;
        return 0;
}

int tar_read_file(const char *archive, const char *member, size_t max, char **ret, size_t *ret_size)
{
        _cleanup_archive_read_ struct archive *a = NULL;
        _cleanup_free_ unsigned char *data = NULL;
        struct archive_entry *e;
        size_t size = 0;
        int r, found = -ENOENT;

        r = rootfs_open(archive, &a, NULL);
        if (r < 0)
                return r;
        while ((r = rootfs_next(a, &e, NULL)) > 0) {
                _cleanup_free_ char *name = rootfs_name(archive_entry_pathname(e));
                if (!name)
                        return -ENOMEM;
                if (!streq(name, member))
                        continue;
                free(data);
                data = NULL;
                if (rootfs_type(e) != 'f') {
                        found = -EINVAL;
                        continue;
                }
                if (archive_entry_size(e) < 0 || (uint64_t)archive_entry_size(e) > max) {
                        found = -EFBIG;
                        continue;
                }
                size = (size_t)archive_entry_size(e);
                r = read_entry_data(a, size, &data, NULL);
                if (r < 0)
                        return r;
                found = 0;
        }
        if (r < 0)
                return r;
        if (found < 0)
                return found;
        *ret = (char *)TAKE_PTR(data);
        if (ret_size)
                *ret_size = size;
        return 0;
}

/* Whether path or one of its parent directories matches a TAR_REMOVE
 * pattern (which is then marked changed). */
static bool rootfs_removed(const char *path, struct tar_change *c, size_t n)
{
        _cleanup_free_ char *p = strdup(path);

        if (!p || !*p)
                return false;
        for (char *slash = p;; slash++) {
                slash = strchrnul(slash, '/');
                char saved = *slash;
                *slash = '\0';
                for (size_t i = 0; i < n; i++)
                        if (c[i].kind == TAR_REMOVE && fnmatch(c[i].path, p, FNM_PATHNAME) == 0) {
                                c[i].changed = true;
                                return true;
                        }
                *slash = saved;
                if (!saved)
                        return false;
        }
}

static struct tar_change *rootfs_put(const char *path, struct tar_change *c, size_t n)
{
        for (size_t i = n; i > 0; i--)
                if (c[i - 1].kind != TAR_REMOVE && streq(c[i - 1].path, path))
                        return &c[i - 1];
        return NULL;
}

/* Whether the entry already is what the put asks for. data is the
 * entry's data for a regular file. */
static bool rootfs_same(struct archive_entry *e, const struct tar_change *c,
                        const unsigned char *data)
{
        char type = rootfs_type(e);

        if (c->kind == TAR_PUT_DIR)
                return type == 'd';
        if (archive_entry_uid(e) != 0 || archive_entry_gid(e) != 0)
                return false;
        if (c->kind == TAR_PUT_SYMLINK)
                return type == 'l' && streq_ptr(archive_entry_symlink(e), c->target);
        return type == 'f' && (archive_entry_perm(e) & 07777) == (c->mode & 07777) &&
               archive_entry_size(e) == (la_int64_t)c->size &&
               (c->size == 0 || memcmp(data, c->data, c->size) == 0);
}

static int rootfs_write_error(struct archive *w, char **ret_error)
{
        int e = archive_errno(w) > 0 ? archive_errno(w) : EIO;

        if (ret_error)
                *ret_error =
                        strprintf("cannot write the archive: %s",
                                  archive_error_string(w) ? archive_error_string(w) : strerror(e));
        return -e;
}

/* Writes a new root-owned entry for a put (or a parent directory). */
static int rootfs_write_new(struct archive *w, const char *prefix, const char *path, char type,
                            unsigned mode, const struct tar_change *c, char **ret_error)
{
        _cleanup_archive_entry_ struct archive_entry *e = archive_entry_new();
        _cleanup_free_ char *name = strprintf("%s%s", prefix, path);

        if (!e || !name)
                return -ENOMEM;
        archive_entry_set_pathname(e, name);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        archive_entry_set_uname(e, "root");
        archive_entry_set_gname(e, "root");
        archive_entry_set_mtime(e, time(NULL), 0);
        archive_entry_set_filetype(e, type == 'd' ? AE_IFDIR : type == 'l' ? AE_IFLNK : AE_IFREG);
        archive_entry_set_perm(e, type == 'l' ? 0777 : mode & 07777);
        if (type == 'l')
                archive_entry_set_symlink(e, c->target);
        archive_entry_set_size(e, type == 'f' ? (la_int64_t)c->size : 0);
        if (archive_write_header(w, e) < ARCHIVE_WARN)
                return rootfs_write_error(w, ret_error);
        if (type == 'f' && c->size > 0 && write_entry_data(w, c->data, c->size) < 0)
                return rootfs_write_error(w, ret_error);
        return 0;
}

/* Copies the current entry (header as read, data streamed). */
static int rootfs_copy(struct archive *a, struct archive *w, struct archive_entry *e,
                       const unsigned char *data, char **ret_error)
{
        unsigned char buf[64 * 1024];
        la_ssize_t n;

        /* The data is written whole, holes as zeros: a sparse map would
         * describe data this copy does not write. */
        archive_entry_sparse_clear(e);
        if (archive_write_header(w, e) < ARCHIVE_WARN)
                return rootfs_write_error(w, ret_error);
        if (data)
                return archive_entry_size(e) > 0 &&
                                       write_entry_data(w, data, (size_t)archive_entry_size(e)) < 0
                               ? rootfs_write_error(w, ret_error)
                               : 0;
        if (archive_entry_size(e) <= 0)
                return 0;
        while ((n = archive_read_data(a, buf, sizeof(buf))) > 0)
                if (write_entry_data(w, buf, (size_t)n) < 0)
                        return rootfs_write_error(w, ret_error);
        return n < 0 ? corrupt_error(ret_error, a) : 0;
}

struct rootfs_seen {
        char *path;
        char type;
};

static char rootfs_seen_type(const struct rootfs_seen *v, size_t n, const char *path)
{
        for (size_t i = n; i > 0; i--)
                if (streq(v[i - 1].path, path))
                        return v[i - 1].type;
        return 0;
}

static int rootfs_seen_add(struct rootfs_seen **v, size_t *n, size_t *cap, const char *path,
                           char type)
{
        if (*n == *cap) {
                size_t ncap = *cap ? *cap * 2 : 256;
                struct rootfs_seen *nv = realloc(*v, ncap * sizeof(**v));
                if (!nv)
                        return -ENOMEM;
                *v = nv;
                *cap = ncap;
        }
        (*v)[*n] = (struct rootfs_seen){strdup(path), type};
        if (!(*v)[*n].path)
                return -ENOMEM;
        (*n)++;
        return 0;
}

/* The rewrite itself, into the open file descriptor fd. */
static int rootfs_rewrite_fd(struct archive *a, int fd, struct tar_change *c, size_t n,
                             char **ret_error)
{
        _cleanup_archive_write_ struct archive *w = NULL;
        _cleanup_free_ struct rootfs_seen *seen = NULL;
        _cleanup_strv_free_ char **gone = NULL;
        _cleanup_free_ bool *found = calloc(n ? n : 1, sizeof(bool));
        size_t n_seen = 0, cap_seen = 0;
        const char *prefix = "";
        struct archive_entry *e;
        bool first = true;
        int r;

        if (!found)
                return -ENOMEM;
        if (archive_dl(ret_error) < 0)
                return -ELIBACC;
        w = archive_write_new();
        if (!w)
                return -ENOMEM;
        for (;;) {
                _cleanup_free_ char *path = NULL;
                _cleanup_free_ unsigned char *data = NULL;

                r = rootfs_next(a, &e, ret_error);
                if (r < 0)
                        goto out;
                if (first) {
                        /* The output keeps the input's compression and
                         * its "./" naming, in pax: it holds xattrs (in
                         * the SCHILY form GNU tar reads), ACLs, long
                         * names, big ids and sub-second times. */
                        int filter = archive_filter_code(a, 0);
                        first = false;
                        if (r > 0 && startswith(archive_entry_pathname(e), "./"))
                                prefix = "./";
                        if (archive_write_set_format_pax(w) != ARCHIVE_OK ||
                            archive_write_set_format_option(w, "pax", "xattrheader", "SCHILY") !=
                                    ARCHIVE_OK ||
                            (filter != ARCHIVE_FILTER_NONE &&
                             archive_write_add_filter(w, filter) != ARCHIVE_OK) ||
                            (filter == ARCHIVE_FILTER_GZIP &&
                             archive_write_set_filter_option(w, "gzip", "timestamp", NULL) !=
                                     ARCHIVE_OK) ||
                            archive_write_open_fd(w, fd) != ARCHIVE_OK) {
                                r = rootfs_write_error(w, ret_error);
                                goto out;
                        }
                }
                if (r == 0)
                        break;
                path = rootfs_name(archive_entry_pathname(e));
                if (!path) {
                        r = -ENOMEM;
                        goto out;
                }
                if (rootfs_removed(path, c, n)) {
                        if (strv_extend(&gone, path) < 0) {
                                r = -ENOMEM;
                                goto out;
                        }
                        continue;
                }
                if (archive_entry_hardlink(e)) {
                        _cleanup_free_ char *target = rootfs_name(archive_entry_hardlink(e));
                        if (!target) {
                                r = -ENOMEM;
                                goto out;
                        }
                        if (strv_contains(gone, target)) {
                                r = member_error(ret_error, archive_entry_pathname(e),
                                                 "hard link to %s, which is replaced or removed",
                                                 target);
                                goto out;
                        }
                }
                struct tar_change *put = rootfs_put(path, c, n);
                if (put) {
                        found[put - c] = true;
                        if (rootfs_type(e) == 'f' && put->kind == TAR_PUT_FILE &&
                            archive_entry_size(e) == (la_int64_t)put->size) {
                                r = read_entry_data(a, put->size, &data, ret_error);
                                if (r < 0)
                                        goto out;
                        }
                        if (!rootfs_same(e, put, data)) {
                                if (rootfs_type(e) == 'd') {
                                        r = member_error(ret_error, archive_entry_pathname(e),
                                                         "is a directory in the archive");
                                        goto out;
                                }
                                put->changed = true;
                                char type = put->kind == TAR_PUT_FILE      ? 'f'
                                            : put->kind == TAR_PUT_SYMLINK ? 'l'
                                                                           : 'd';
                                r = rootfs_write_new(w, prefix, path, type, put->mode, put,
                                                     ret_error);
                                if (r >= 0)
                                        r = rootfs_seen_add(&seen, &n_seen, &cap_seen, path, type);
                                if (r >= 0 && strv_extend(&gone, path) < 0)
                                        r = -ENOMEM;
                                if (r < 0)
                                        goto out;
                                continue;
                        }
                }
                r = rootfs_copy(a, w, e, data, ret_error);
                if (r >= 0)
                        r = rootfs_seen_add(&seen, &n_seen, &cap_seen, path, rootfs_type(e));
                if (r < 0)
                        goto out;
        }

        for (size_t i = 0; i < n; i++) {
                if (c[i].kind == TAR_REMOVE || found[i])
                        continue;
                _cleanup_free_ char *p = strdup(c[i].path);
                if (!p) {
                        r = -ENOMEM;
                        goto out;
                }
                for (char *slash = strchr(p, '/'); slash; slash = strchr(slash + 1, '/')) {
                        *slash = '\0';
                        char t = rootfs_seen_type(seen, n_seen, p);
                        if (t && t != 'd') {
                                r = member_error(ret_error, p,
                                                 "is not a directory in the archive; cannot "
                                                 "add %s under it",
                                                 c[i].path);
                                goto out;
                        }
                        if (!t) {
                                r = rootfs_write_new(w, prefix, p, 'd', 0755, &c[i], ret_error);
                                if (r >= 0)
                                        r = rootfs_seen_add(&seen, &n_seen, &cap_seen, p, 'd');
                                if (r < 0)
                                        goto out;
                        }
                        *slash = '/';
                }
                char type = c[i].kind == TAR_PUT_FILE      ? 'f'
                            : c[i].kind == TAR_PUT_SYMLINK ? 'l'
                                                           : 'd';
                r = rootfs_write_new(w, prefix, c[i].path, type, c[i].mode, &c[i], ret_error);
                if (r >= 0)
                        r = rootfs_seen_add(&seen, &n_seen, &cap_seen, c[i].path, type);
                if (r < 0)
                        goto out;
                c[i].changed = true;
        }
        r = archive_write_close(w) == ARCHIVE_OK ? 0 : rootfs_write_error(w, ret_error);
out:
        for (size_t i = 0; i < n_seen; i++)
                free(seen[i].path);
        return r;
}

int tar_rewrite(const char *in, const char *out, struct tar_change *changes, size_t n,
                char **ret_error)
{
        _cleanup_archive_read_ struct archive *a = NULL;
        _cleanup_free_ char *tmp = strprintf("%s.tmp", out);
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        if (!tmp)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                changes[i].changed = false;
        r = rootfs_open(in, &a, ret_error);
        if (r < 0)
                return r;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r = -errno;
                if (ret_error)
                        *ret_error = strprintf("%s: %s", tmp, strerror(-r));
                return r;
        }
        r = rootfs_rewrite_fd(a, fd, changes, n, ret_error);
        /* The output gets the input's permissions. */
        if (r >= 0 && stat(in, &st) == 0 && fchmod(fd, st.st_mode & 07777) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, out) < 0)
                r = -errno;
        if (r < 0) {
                if (ret_error && !*ret_error)
                        *ret_error = strprintf("%s: %s", out, strerror(-r));
                unlink(tmp);
                return r;
        }
        dir = strdup(out);
        if (dir) {
                char *slash = strrchr(dir, '/');
                _cleanup_close_ int dfd = -1;
                if (slash)
                        *(slash == dir ? slash + 1 : slash) = '\0';
                dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0)
                        (void)fsync(dfd);
        }
        return 0;
}
