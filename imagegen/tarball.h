/* Tarballs imagegen writes: the bundle's gzip'd tar and rewritten rootfs
 * tarballs, through libarchive (dlopen()ed). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "tar.h"

/* A gzip'd tar (ustar, pax only for what ustar cannot hold) of the
 * members in their order, byte for byte the same for the same input:
 * mtime 0, uid/gid 0, owner "root:root", modes from the members, no
 * directory entries, no timestamp or name in the gzip header. */
int tar_write_gz(const struct member_list *l, unsigned char **ret, size_t *ret_size);

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
