/* Archives in memory and ISO9660 images: the one file that talks to
 * libarchive (and zlib). Bundles travel as gzip'd tars, NoCloud and ConfigDrive seeds
 * as ISO9660 images. Reading is defensive (bundles come from user-data):
 * only regular files come out, and everything that could escape a
 * directory or exhaust memory is refused before anything is returned. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* One regular file of an archive. data is NUL-terminated (not counted in
 * size), so text members can be used as strings. */
struct archive_member {
        char *path; /* relative, normalized: no "./", "..", "//" */
        unsigned char *data;
        size_t size;
        unsigned mode; /* permission bits, & 07777 */
};

struct member_list {
        struct archive_member *v;
        size_t n;
};

/* Frees every member and leaves an empty list; NULL is fine. */
void member_list_free(struct member_list *l);
/* Appends a copy of path and data. -ENOMEM, or -EINVAL for a NULL path. */
int member_list_add(struct member_list *l, const char *path, const void *data, size_t size,
                    unsigned mode);
/* The member with exactly this path, or NULL. */
const struct archive_member *member_list_find(const struct member_list *l, const char *path);

/* Reads a tar, gzip'd or not (detected), from memory, with our own reader
 * (ustar, pax and GNU long names; zlib for gzip), so that reading a bundle
 * never loads libarchive. Only regular files are returned; directories are
 * checked like files and skipped. A leading "./" is stripped and the entry
 * "./" itself skipped. Refused, with -EBADMSG and *ret_error (when not
 * NULL) naming the member and the reason: absolute paths, ".." components
 * (and empty or "." ones), symlinks and hard links, character and block
 * devices, FIFOs and other special entries, directories with data,
 * duplicate paths (and a file used as a directory), more than max_members
 * entries (directories included), over max_total bytes of member data; and
 * truncated or corrupt data ("truncated or corrupt archive: <why>"): a bad
 * header checksum or number, a malformed pax header, no end-of-archive
 * block, a gzip CRC-32 or length that does not match, a second gzip member
 * or anything after the gzip trailer, more than 1 MiB after the end of a
 * gzip'd tar. Nothing is returned on error; -ENOMEM comes without a
 * message. */
int tar_read(const void *data, size_t size, size_t max_total, size_t max_members,
             struct member_list *ret, char **ret_error);

/* A gzip'd tar (ustar, pax only for what ustar cannot hold) of the
 * members in their order, byte for byte the same for the same input:
 * mtime 0, uid/gid 0, owner "root:root", modes from the members, no
 * directory entries, no timestamp or name in the gzip header. */
int tar_write_gz(const struct member_list *l, unsigned char **ret, size_t *ret_size);

/* Reads one file by path (e.g. "user-data", "openstack/latest/user_data")
 * from an ISO9660 image file or block device, with the Rock Ridge (else
 * Joliet) names; a file stored once under two names is found under both.
 * *ret is NUL-terminated; ret_size may be NULL. -ENOENT when the member is
 * absent, -EISDIR when it is a directory, -EFBIG when it is over max bytes,
 * -EMEDIUMTYPE when image is not ISO9660, -EIO when it is damaged, or the
 * error of opening image. */
int iso_read_member(const char *image, const char *member, size_t max, char **ret,
                    size_t *ret_size);

/* Why libarchive could not be loaded (the functions above and below that
 * need it return -ELIBACC then), or NULL when it was not tried or loaded. */
const char *archive_load_error(void);

/* The volume id of an ISO9660 image or device (the primary volume
 * descriptor at byte 32768), trailing spaces trimmed, NUL-terminated.
 * -EMEDIUMTYPE when it is not ISO9660. */
int iso_volume_id(const char *image, char ret[33]);

/* Writes an ISO9660 image with Rock Ridge (modes kept) and Joliet, the
 * given volume id (e.g. "cidata", "config-2"; 1 to 32 printable ASCII
 * characters, no spaces; kept as given, not upper-cased, like genisoimage
 * does) and the members (their parent directories are made), atomically:
 * a 0600 temp file in the same directory, fsync, rename. cloud-init,
 * isoinfo and xorriso read it. -EINVAL for a bad volume id, an unsafe or
 * duplicate member path. */
int iso_write(const char *path, const char *volume_id, const struct member_list *l);

/* Rootfs tarballs, for `imagegen bake --tar`. Unlike bundles these hold
 * every kind of entry (symlinks, hard links, devices, absolute link
 * targets), and all of them are kept. Paths are given and returned
 * normalized: relative, without a leading "/" or "./", no trailing "/";
 * the top directory itself is "". */
struct tar_entry_info {
        char *path;
        char type;     /* 'f' file, 'd' directory, 'l' symlink, 'h' hard link, 'o' other */
        unsigned mode; /* permission bits */
        char *link;    /* symlink target as stored, or hard link target (normalized) */
};
struct tar_index {
        struct tar_entry_info *v;
        size_t n;
};
/* Lists every entry of a tar file (compressed with anything libarchive
 * reads), in archive order. -EBADMSG with *ret_error for a damaged one. */
int tar_index_read(const char *archive, struct tar_index *ret, char **ret_error);
void tar_index_free(struct tar_index *x);
/* The data of the regular file member (the last one when it occurs more
 * than once), NUL-terminated. -ENOENT when absent, -EINVAL when it is not
 * a regular file, -EFBIG when over max bytes, -EBADMSG when damaged. */
int tar_read_file(const char *archive, const char *member, size_t max, char **ret,
                  size_t *ret_size);

enum tar_change_kind {
        TAR_PUT_FILE,    /* data, size, mode; owned by root */
        TAR_PUT_SYMLINK, /* target */
        TAR_PUT_DIR,     /* mode; an existing directory is kept as it is */
        TAR_REMOVE,      /* path is an fnmatch(3) pattern (FNM_PATHNAME); the entries
                          * it matches and everything under them go */
};
struct tar_change {
        enum tar_change_kind kind;
        const char *path;
        const void *data;
        size_t size;
        const char *target;
        unsigned mode;
        bool changed; /* out: whether the output differs from the input here */
};
/* Copies the tar in to out with the changes: an entry a put names is kept
 * when it already is what the put asks for (type, data, mode, target,
 * root-owned), else replaced in place by a new entry (uid/gid 0, mtime
 * now); puts that name no entry are appended at the end, after any
 * missing parent directories (0755). Every other entry is copied with its
 * metadata: owner, mode, times, link targets, device numbers, xattrs and
 * ACLs (pax format, the input's compression). out is written atomically
 * (a temp file next to it, fsync, rename). Refused with -EBADMSG and
 * *ret_error: a damaged input, a hard link to an entry that is removed or
 * replaced, a put whose parent is not a directory in the archive. */
int tar_rewrite(const char *in, const char *out, struct tar_change *changes, size_t n,
                char **ret_error);
