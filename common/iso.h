/* ISO9660 images: the NoCloud (cidata) and ConfigDrive (config-2) seeds
 * the agent reads and imagegen writes, through libarchive (dlopen()ed). */
#pragma once

#include <stddef.h>

#include "tar.h"

/* Reads one file by path (e.g. "user-data", "openstack/latest/user_data")
 * from an ISO9660 image file or block device, with the Rock Ridge (else
 * Joliet) names; a file stored once under two names is found under both.
 * *ret is NUL-terminated; ret_size may be NULL. -ENOENT when the member is
 * absent, -EISDIR when it is a directory, -EFBIG when it is over max bytes,
 * -EMEDIUMTYPE when image is not ISO9660, -EIO when it is damaged or
 * member is not among its first 4096 entries, or the error of opening
 * image. The member's size is checked before its data is read (zisofs
 * data inflates to that size at most). */
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
