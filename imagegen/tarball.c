/* Tarballs written and rewritten through libarchive (dlopen()ed when
 * first needed): the bundle's tar.gz (`imagegen userdata`) and rootfs
 * tarballs (`imagegen bake --tar`); see tarball.h. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <stdio.h>

#include "dl.h"
#include "tarball.h"
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
        X(archive_read_open_filename)                                                              \
        X(archive_read_support_filter_all)                                                         \
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
        X(archive_write_set_format_option)                                                         \
        X(archive_write_set_format_pax)                                                            \
        X(archive_write_set_format_pax_restricted)
DL_DEFINE(libarchive, SONAME_LIBARCHIVE, ARCHIVE_SYMBOLS);

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
#define archive_read_open_filename              sym_archive_read_open_filename
#define archive_read_support_filter_all         sym_archive_read_support_filter_all
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
#define archive_write_set_format_option         sym_archive_write_set_format_option
#define archive_write_set_format_pax            sym_archive_write_set_format_pax
#define archive_write_set_format_pax_restricted sym_archive_write_set_format_pax_restricted

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
#define _cleanup_archive_read_  _cleanup_(archive_read_freep)
#define _cleanup_archive_write_ _cleanup_(archive_write_freep)
#define _cleanup_archive_entry_ _cleanup_(archive_entry_freep)

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
