/* Bundles travel as gzip'd tars (user-data), read with our own reader
 * over zlib, so that reading a bundle never loads libarchive. Reading is
 * defensive (bundles come from user-data): only regular files come out,
 * and everything that could escape a directory or exhaust memory is
 * refused before anything is returned. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

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

/* Whether path is safe to write as a member: relative, normalized (no
 * "./", "..", empty or "." components, no trailing "/"). */
bool member_path_ok(const char *path);
/* Sets *ret_error (when not NULL) to 'member "NAME": REASON', the name
 * quoted with control characters and non-ASCII bytes escaped, and returns
 * -EBADMSG, or -ENOMEM when the message cannot be made. */
int member_error(char **ret_error, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Reads a tar, gzip'd or not (detected), from memory, with our own reader
 * (ustar, pax and GNU long names; zlib for gzip), so that reading a bundle
 * never loads libarchive. Only regular files are returned; directories are
 * checked like files and skipped. A leading "./" is stripped and the entry
 * "./" itself skipped. Refused, with -EBADMSG and *ret_error (when not
 * NULL) naming the member and the reason: absolute paths, ".." components
 * (and empty or "." ones), symlinks and hard links, character and block
 * devices, FIFOs and other special entries, directories with data,
 * duplicate paths (and a file used as a directory), more than max_members
 * entries (directories included), paths over 4095 bytes, more than 8
 * extended headers in a row; over max_total bytes uncompressed, every
 * byte counted: headers, pax and GNU long-name headers, data, padding and
 * what follows the end ("archive over the limit of N bytes
 * uncompressed"), so that no input makes us inflate or parse more; and
 * truncated or corrupt data ("truncated or corrupt archive: <why>"): a bad
 * header checksum or number (any number field, as libarchive checks them),
 * mode bits beyond the file type's, a malformed pax header (an empty key
 * or one with a NUL too), pax records of sparse files, an extended header
 * right before the end, no end-of-archive block, a gzip CRC-32 or length
 * that does not match, a second gzip member or anything after the gzip
 * trailer, more than 1 MiB after the end of a gzip'd tar. What this
 * accepts, libarchive reads alike (tests/fuzz/fuzz-tar.c). Nothing is
 * returned on error; -ENOMEM comes without a message. */
int tar_read(const void *data, size_t size, size_t max_total, size_t max_members,
             struct member_list *ret, char **ret_error);

/* Inflates up to n bytes of gzip'd data into buf, for a look at what it
 * holds: the count (fewer at the end of the data), -EMEDIUMTYPE when it is
 * not gzip'd, -EBADMSG when corrupt. */
ssize_t gzip_peek(const void *data, size_t size, unsigned char *buf, size_t n);

/* Inflates a whole gzip stream (one member, nothing after its trailer)
 * into *ret (NUL-terminated, *ret_size bytes); -EFBIG over max bytes,
 * -EBADMSG corrupt or truncated, each with *ret_error (when not NULL)
 * saying so; -EMEDIUMTYPE when it is not gzip'd. */
int gzip_inflate(const void *data, size_t size, size_t max, unsigned char **ret, size_t *ret_size,
                 char **ret_error);
