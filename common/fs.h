/* File system helpers: paths under a root, atomic writes, directory
 * trees. Every function returns 0 (or >0 where documented) on success and
 * a negative errno on failure; none of them logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* root + "/" + path with duplicate slashes folded. A NULL, empty or "/"
 * root returns a copy of path. Returns NULL when out of memory. */
char *root_path(const char *root, const char *path);

/* Creates path and its parents with mode (existing ones are left). */
int mkdir_p(const char *path, mode_t mode);
/* Creates the parent directories of path. */
int mkdir_parents(const char *path, mode_t mode);

/* Writes data to path atomically: a temp file in the same directory,
 * fchmod/fchown, fsync, rename, fsync of the directory. uid/gid of -1
 * leave the owner alone. The file never exists with partial contents or
 * with a wider mode than requested. Returns 1 when the file changed, 0 when
 * it already had these contents, mode and owner. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode, uid_t uid,
                      gid_t gid);
/* The same with flags: WRITE_NOSYNC skips the fsyncs, for files that are
 * rebuilt anyway after a crash (caches, progress); the rename is still
 * atomic. */
#define WRITE_NOSYNC 1u
/* WRITE_IN_PLACE: nothing reads path until the caller says so (a file in
 * a directory being filled, a temporary name the caller renames, a mark
 * whose name is all that counts): written in place (created or
 * truncated), no temp file, no rename, the file (not its directory)
 * fsync'd unless WRITE_NOSYNC too; removed again on a failure. Anything
 * but a regular file there (a FIFO, a device) is -EINVAL, left alone. */
#define WRITE_IN_PLACE 2u
int write_file_atomic_full(const char *path, const void *data, size_t size, mode_t mode, uid_t uid,
                           gid_t gid, unsigned flags);

/* fsync() of a file or directory by name: a directory's entries for files
 * written with WRITE_NOSYNC become durable in one call. */
int fsync_path(const char *path);

/* syncfs() of the file system holding path: what many files written
 * with WRITE_NOSYNC need to be durable, in one call. */
int sync_fs(const char *path);

/* Whether path is a regular file (not followed) holding exactly data with
 * mode (and uid, gid unless -1). */
bool file_has_contents(const char *path, const void *data, size_t size, mode_t mode, uid_t uid,
                       gid_t gid);

/* Reads a whole file, at most max bytes (-EFBIG beyond). *ret is NUL
 * terminated; ret_size may be NULL. */
int read_file(const char *path, size_t max, char **ret, size_t *ret_size);
/* The same from an open descriptor, read to its end. */
int read_fd(int fd, size_t max, char **ret, size_t *ret_size);
/* Reads the first line of a small file, without the newline. */
int read_line_file(const char *path, char **ret);

/* Removes a file or a directory tree; missing is not an error. */
int rm_rf(const char *path);

/* Copies a tree (regular files, dirs, symlinks) from src to dst. */
int copy_tree(const char *src, const char *dst);

bool path_exists(const char *path);
bool is_dir(const char *path);

/* Resolves "user:group", "user", numeric ids, against root's
 * /etc/passwd and /etc/group (not NSS: the root may be an image). */
int parse_owner(const char *root, const char *spec, uid_t *ret_uid, gid_t *ret_gid);

/* Whether a relative path is safe to join under a directory: not empty,
 * not absolute, no "." or ".." components, no empty components. */
bool path_is_safe_relative(const char *path);

/* Paths under a root directory, resolved inside it as if chrooted there:
 * symlinks on the way are followed, but absolute targets start at the root
 * and ".." never climbs above it, so an image's links never lead to the
 * host's files. openat2(RESOLVE_IN_ROOT) does it (Linux 5.6); where the
 * kernel lacks it, a walk component by component with O_NOFOLLOW does the
 * same. path may be absolute or relative; both start at the root. A root
 * of / is ordinary resolution. rootfd comes from root_open_dir(). */

/* An O_PATH descriptor of root (NULL or "" is /). */
int root_open_dir(const char *root);
/* openat() of path inside the root: the fd, or a negative errno. With
 * O_NOFOLLOW a symlink as the last component is -ELOOP. */
int root_open(int rootfd, const char *path, int flags, mode_t mode);
/* Creates path and its missing parents inside the root (a dangling link on
 * the way is followed, inside the root, and its target made); returns an
 * O_DIRECTORY descriptor of it. */
int root_mkdir_p(int rootfd, const char *path, mode_t mode);
/* The parent directory of path inside the root, made with dir_mode when
 * dir_mode is not 0, and in *ret_name path's last component (pointing into
 * path). -EINVAL when path has none ("/", ends in "." or ".."). */
int root_open_parent(int rootfd, const char *path, mode_t dir_mode, const char **ret_name);
/* write_file_atomic_full() of path inside the root, its parents made with
 * dir_mode; a symlink as the last component is replaced, never written
 * through. Temp files a dead process left beside it are removed first. */
int root_write_file(int rootfd, const char *path, mode_t dir_mode, const void *data, size_t size,
                    mode_t mode, uid_t uid, gid_t gid, unsigned flags);
/* write_file_atomic_full() of name (one component) in the directory dirfd. */
int write_file_at(int dirfd, const char *name, const void *data, size_t size, mode_t mode,
                  uid_t uid, gid_t gid, unsigned flags);
/* read_file() of path inside the root: a regular file only (-EISDIR,
 * -EINVAL for a FIFO, socket or device, which is not waited on). */
int root_read_file(int rootfd, const char *path, size_t max, char **ret, size_t *ret_size);
/* The first line of a file under the root, as root_read_file() reads it
 * (inside the root, regular files only, 64 KiB at most), without its
 * newline. */
int root_read_line(int rootfd, const char *path, char **ret);
/* Removes path inside the root: a file, a symlink (not followed) or a
 * directory tree (no link in it followed). Missing is 0. */
int root_rm_rf(int rootfd, const char *path);
/* Removes the file (or symlink, not followed) path inside the root;
 * missing is 0. */
int root_unlink(int rootfd, const char *path);
/* fsync() of path inside the root. */
int root_fsync(int rootfd, const char *path);
/* Where fd is, as an absolute path inside the root ("/var/lib/x"): what
 * a path string names once its links were resolved inside the root. */
int root_fd_path(int rootfd, int fd, char **ret);
/* Removes the temp files (NAME.fbtmp.PID) a process that is gone left in
 * the directory dirfd: a write killed before its rename. Returns how many. */
int remove_stale_temps(int dirfd);
/* The part of path (made with root_path(root, ...)) inside root: path
 * itself for a NULL root, NULL when path is not under root. */
const char *path_in_root(const char *root, const char *path);
/* Tests: resolve with the walk even where openat2() works; write named
 * temp files even where O_TMPFILE works. */
extern bool root_chase_only, write_no_tmpfile;
