/* ISO9660 images (NoCloud and ConfigDrive seeds) through libarchive,
 * dlopen()ed when first needed; see iso.h. The file includes libarchive's
 * <archive.h>; ours are "tar.h" and "iso.h". */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <stdio.h>

#include "dl.h"
#include "iso.h"
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
        X(archive_entry_hardlink)                                                                  \
        X(archive_entry_new)                                                                       \
        X(archive_entry_pathname)                                                                  \
        X(archive_entry_pathname_utf8)                                                             \
        X(archive_entry_set_filetype)                                                              \
        X(archive_entry_set_mtime)                                                                 \
        X(archive_entry_set_pathname)                                                              \
        X(archive_entry_set_perm)                                                                  \
        X(archive_entry_set_size)                                                                  \
        X(archive_entry_size)                                                                      \
        X(archive_errno)                                                                           \
        X(archive_read_data)                                                                       \
        X(archive_read_free)                                                                       \
        X(archive_read_new)                                                                        \
        X(archive_read_next_header)                                                                \
        X(archive_read_open_fd)                                                                    \
        X(archive_read_support_format_iso9660)                                                     \
        X(archive_write_close)                                                                     \
        X(archive_write_data)                                                                      \
        X(archive_write_free)                                                                      \
        X(archive_write_header)                                                                    \
        X(archive_write_new)                                                                       \
        X(archive_write_open_fd)                                                                   \
        X(archive_write_set_bytes_in_last_block)                                                   \
        X(archive_write_set_format_iso9660)                                                        \
        X(archive_write_set_format_option)
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

#define archive_entry_clear                   sym_archive_entry_clear
#define archive_entry_filetype                sym_archive_entry_filetype
#define archive_entry_free                    sym_archive_entry_free
#define archive_entry_hardlink                sym_archive_entry_hardlink
#define archive_entry_new                     sym_archive_entry_new
#define archive_entry_pathname                sym_archive_entry_pathname
#define archive_entry_pathname_utf8           sym_archive_entry_pathname_utf8
#define archive_entry_set_filetype            sym_archive_entry_set_filetype
#define archive_entry_set_mtime               sym_archive_entry_set_mtime
#define archive_entry_set_pathname            sym_archive_entry_set_pathname
#define archive_entry_set_perm                sym_archive_entry_set_perm
#define archive_entry_set_size                sym_archive_entry_set_size
#define archive_entry_size                    sym_archive_entry_size
#define archive_errno                         sym_archive_errno
#define archive_read_data                     sym_archive_read_data
#define archive_read_free                     sym_archive_read_free
#define archive_read_new                      sym_archive_read_new
#define archive_read_next_header              sym_archive_read_next_header
#define archive_read_open_fd                  sym_archive_read_open_fd
#define archive_read_support_format_iso9660   sym_archive_read_support_format_iso9660
#define archive_write_close                   sym_archive_write_close
#define archive_write_data                    sym_archive_write_data
#define archive_write_free                    sym_archive_write_free
#define archive_write_header                  sym_archive_write_header
#define archive_write_new                     sym_archive_write_new
#define archive_write_open_fd                 sym_archive_write_open_fd
#define archive_write_set_bytes_in_last_block sym_archive_write_set_bytes_in_last_block
#define archive_write_set_format_iso9660      sym_archive_write_set_format_iso9660
#define archive_write_set_format_option       sym_archive_write_set_format_option

#define ISO_SECTOR      2048
#define ISO_FIRST_VD    16 /* the volume descriptors start at sector 16 */
#define ISO_MAX_VDS     64 /* how many descriptors we look through for the primary */
#define ISO_VOLUME_ID   40 /* offset and size of the volume id in the primary descriptor */
#define ISO_VOLUME_ID_N 32
/* Entries looked at for a member: a seed holds a handful, and an image
 * (from the hypervisor, so untrusted) is not walked through without end. */
#define ISO_MAX_ENTRIES 4096

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

        for (unsigned seen = 0;; seen++) {
                const char *path;
                la_int64_t size;

                if (seen >= ISO_MAX_ENTRIES)
                        return -EIO;
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
