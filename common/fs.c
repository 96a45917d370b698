#include "fs.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>

char *root_path(const char *root, const char *path)
{
        struct buf b = {0};
        const char *parts[2] = {root, path};

        if (!root || !*root || streq(root, "/"))
                return strdup(path);
        for (size_t i = 0; i < 2; i++) {
                for (const char *p = parts[i]; *p; p++) {
                        if (*p == '/' && b.len > 0 && b.data[b.len - 1] == '/')
                                continue;
                        if (buf_append(&b, p, 1) < 0) {
                                buf_free(&b);
                                return NULL;
                        }
                }
                if (i == 0 && buf_puts(&b, "/") < 0) {
                        buf_free(&b);
                        return NULL;
                }
        }
        if (b.len > 1 && b.data[b.len - 1] == '/')
                b.data[--b.len] = '\0';
        return buf_steal(&b);
}

/* From the deepest missing directory down: a deep path under an existing
 * tree costs a few calls, not one per component. */
static int mkdir_down(char *p, mode_t mode)
{
        if (mkdir(p, mode) == 0 || errno == EEXIST)
                return is_dir(p) ? 0 : -ENOTDIR;
        if (errno != ENOENT)
                return -errno;
        char *slash = strrchr(p, '/');
        if (!slash || slash == p)
                return -ENOENT;
        *slash = '\0';
        int r = mkdir_down(p, mode);
        *slash = '/';
        if (r < 0)
                return r;
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return is_dir(p) ? 0 : -ENOTDIR;
}

int mkdir_p(const char *path, mode_t mode)
{
        if (is_dir(path))
                return 0;
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--)
                p[n - 1] = '\0';
        return mkdir_down(p, mode);
}

int mkdir_parents(const char *path, mode_t mode)
{
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        char *slash = strrchr(p, '/');
        if (!slash || slash == p)
                return 0;
        *slash = '\0';
        return mkdir_p(p, mode);
}

bool file_has_contents(const char *path, const void *data, size_t size, mode_t mode, uid_t uid,
                       gid_t gid)
{
        struct stat st;
        _cleanup_free_ char *old = NULL;
        size_t n;

        if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != size)
                return false;
        if ((st.st_mode & 07777) != (mode & 07777))
                return false;
        if ((uid != (uid_t)-1 && st.st_uid != uid) || (gid != (gid_t)-1 && st.st_gid != gid))
                return false;
        if (read_file(path, size + 1, &old, &n) < 0 || n != size)
                return false;
        return memcmp(old, data, size) == 0;
}

int fsync_path(const char *path)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return fsync(fd) < 0 ? -errno : 0;
}

int sync_fs(const char *path)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return syncfs(fd) < 0 ? -errno : 0;
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode, uid_t uid,
                      gid_t gid)
{
        return write_file_atomic_full(path, data, size, mode, uid, gid, 0);
}

int write_file_atomic_full(const char *path, const void *data, size_t size, mode_t mode, uid_t uid,
                           gid_t gid, unsigned flags)
{
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        const char *name = slash ? path + (slash - dir) + 1 : path;
        if (slash)
                *slash = '\0';
        _cleanup_close_ int dfd = open(!slash ? "."
                                       : *dir ? dir
                                              : "/",
                                       O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        return write_file_at(dfd, name, data, size, mode, uid, gid, flags);
}

int read_fd(int fd, size_t max, char **ret, size_t *ret_size)
{
        struct buf b = {0};
        char chunk[65536];

        for (;;) {
                ssize_t k = read(fd, chunk, sizeof(chunk));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        buf_free(&b);
                        return r;
                }
                if (k == 0)
                        break;
                if (b.len + (size_t)k > max) {
                        buf_free(&b);
                        return -EFBIG;
                }
                if (buf_append(&b, chunk, (size_t)k) < 0) {
                        buf_free(&b);
                        return -ENOMEM;
                }
        }
        if (ret_size)
                *ret_size = b.len;
        *ret = buf_steal(&b);
        return 0;
}

int read_file(const char *path, size_t max, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return read_fd(fd, max, ret, ret_size);
}

int read_line_file(const char *path, char **ret)
{
        char *s;
        int r = read_file(path, 64 * 1024, &s, NULL);
        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = '\0';
        *ret = s;
        return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        if (flag == FTW_DP)
                return rmdir(path) < 0 ? -1 : 0;
        return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int rm_rf(const char *path)
{
        struct stat st;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISDIR(st.st_mode))
                return unlink(path) < 0 ? -errno : 0;
        if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0)
                return -errno;
        return 0;
}

int copy_tree(const char *src, const char *dst)
{
        struct stat st;
        if (lstat(src, &st) < 0)
                return -errno;
        if (S_ISLNK(st.st_mode)) {
                char target[PATH_MAX];
                ssize_t n = readlink(src, target, sizeof(target) - 1);
                if (n < 0)
                        return -errno;
                target[n] = '\0';
                unlink(dst);
                return symlink(target, dst) < 0 ? -errno : 0;
        }
        if (S_ISREG(st.st_mode)) {
                _cleanup_free_ char *data = NULL;
                size_t size;
                int r = read_file(src, (size_t)1 << 31, &data, &size);
                if (r < 0)
                        return r;
                r = write_file_atomic(dst, data, size, st.st_mode & 07777, (uid_t)-1, (gid_t)-1);
                return r < 0 ? r : 0;
        }
        if (!S_ISDIR(st.st_mode))
                return -EBADF;
        if (mkdir(dst, st.st_mode & 07777) < 0 && errno != EEXIST)
                return -errno;
        DIR *d = opendir(src);
        if (!d)
                return -errno;
        struct dirent *de;
        int r = 0;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *s = strprintf("%s/%s", src, de->d_name);
                _cleanup_free_ char *t = strprintf("%s/%s", dst, de->d_name);
                if (!s || !t) {
                        r = -ENOMEM;
                        break;
                }
                r = copy_tree(s, t);
                if (r < 0)
                        break;
        }
        closedir(d);
        return r;
}

bool path_exists(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0;
}

bool is_dir(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Looks name (or a number) up in a passwd/group style file under root;
 * field 2 is the id. */
static int lookup_id(const char *root, const char *file, const char *name, unsigned *ret)
{
        _cleanup_free_ char *data = NULL;
        _cleanup_close_ int rootfd = -1;
        int r;

        if (parse_uint(name, ret) == 0)
                return 0;
        rootfd = root_open_dir(root);
        if (rootfd < 0)
                return rootfd;
        r = root_read_file(rootfd, file, 16 * 1024 * 1024, &data, NULL);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        for (char *line = data, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                char *f[3] = {0};
                char *save = NULL, *tok = line;
                size_t i;
                for (i = 0; i < 3; i++) {
                        f[i] = tok;
                        tok = strchr(tok, ':');
                        if (!tok)
                                break;
                        *tok++ = '\0';
                }
                (void)save;
                if (i < 2 || !f[2] || !streq(f[0], name))
                        continue;
                char *colon = strchr(f[2], ':');
                if (colon)
                        *colon = '\0';
                return parse_uint(f[2], ret) < 0 ? -EBADMSG : 0;
        }
        return -ESRCH;
}

int parse_owner(const char *root, const char *spec, uid_t *ret_uid, gid_t *ret_gid)
{
        _cleanup_free_ char *user = strdup(spec);
        unsigned uid, gid;
        char *group;
        int r;

        if (!user)
                return -ENOMEM;
        group = strchr(user, ':');
        if (group)
                *group++ = '\0';
        if (!*user || (group && !*group))
                return -EINVAL;
        r = lookup_id(root, "/etc/passwd", user, &uid);
        if (r < 0)
                return r;
        if (group) {
                r = lookup_id(root, "/etc/group", group, &gid);
                if (r < 0)
                        return r;
        } else {
                /* The user's primary group: field 4 of passwd. Look it up as
                 * the group with the user's name, the common case. */
                r = lookup_id(root, "/etc/group", user, &gid);
                if (r < 0)
                        gid = uid;
        }
        *ret_uid = uid;
        *ret_gid = gid;
        return 0;
}

bool path_is_safe_relative(const char *path)
{
        if (!*path || *path == '/')
                return false;
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, "/");
                if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                p += n;
                if (*p == '/') {
                        p++;
                        if (!*p)
                                return false;
                }
        }
        return true;
}

/* -------- paths under a root -------- */

#define MAX_LINKS    40 /* as the kernel's */
#define RM_MAX_DEPTH 256
#define TEMP_INFIX   ".fbtmp."

bool root_chase_only, write_no_tmpfile;

int root_open_dir(const char *root)
{
        int fd = open(root && *root ? root : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* openat2() with RESOLVE_IN_ROOT: the kernel resolves path as if rootfd
 * were "/", and refuses magic links (/proc/self/fd/N) that would jump out.
 * -EAGAIN means a rename raced with ".."; it is retried a few times. */
static int openat2_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
        struct open_how how = {
                .flags = (unsigned long long)(unsigned)(flags | O_CLOEXEC),
                .mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? mode & 07777 : 0,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        for (int i = 0; i < 16; i++) {
                long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
                if (fd >= 0)
                        return (int)fd;
                if (errno != EAGAIN && errno != EINTR)
                        return -errno;
        }
        return -EAGAIN;
}

/* Whether openat2() works here, asked once: kernels before 5.6 lack it,
 * and some seccomp filters refuse it with ENOSYS or EPERM. */
static bool have_openat2(void)
{
        static int known; /* 1 yes, -1 no, 0 not asked yet */

        if (root_chase_only)
                return false;
        if (known == 0) {
                int fd = openat2_in_root(AT_FDCWD, "/", O_PATH, 0);
                known = fd >= 0 || (fd != -ENOSYS && fd != -EPERM) ? 1 : -1;
                if (fd >= 0)
                        close(fd);
        }
        return known > 0;
}

static bool same_inode(int a, int b)
{
        struct stat sa, sb;
        return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
               sa.st_ino == sb.st_ino;
}

/* What openat2(RESOLVE_IN_ROOT) does, for kernels without it: a walk one
 * component at a time, each opened O_PATH|O_NOFOLLOW; a symlink's target
 * is put in front of what is left (from the root when absolute); ".." at
 * the root stays there. At most MAX_LINKS links, then -ELOOP. */
static int chase_open(int rootfd, const char *path, int flags, mode_t mode)
{
        _cleanup_free_ char *todo = strdup(path);
        _cleanup_close_ int cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        unsigned links = 0;

        if (!todo)
                return -ENOMEM;
        if (cur < 0)
                return -errno;
        for (;;) {
                char *s = todo + strspn(todo, "/");
                size_t len = strcspn(s, "/");
                const char *rest = s + len;
                bool last = rest[strspn(rest, "/")] == '\0';
                bool slash = *rest == '/'; /* last: it must be a directory */
                char comp[NAME_MAX + 1];
                struct stat st;
                int fd;

                if (len == 0) { /* nothing left: the directory reached */
                        fd = openat(cur, ".", flags | O_CLOEXEC, mode);
                        return fd < 0 ? -errno : fd;
                }
                if (len > NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(comp, s, len);
                comp[len] = '\0';
                memmove(todo, rest, strlen(rest) + 1);
                if (streq(comp, "."))
                        continue;
                if (streq(comp, "..")) {
                        if (same_inode(cur, rootfd))
                                continue;
                        fd = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (fd < 0)
                                return -errno;
                        close(cur);
                        cur = fd;
                        continue;
                }
                fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                        if (errno != ENOENT || !last)
                                return -errno;
                        if (slash)
                                return flags & O_CREAT ? -EISDIR : -ENOENT;
                        fd = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
                        return fd < 0 ? -errno : fd;
                }
                if (fstat(fd, &st) < 0) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
                if (S_ISLNK(st.st_mode) && !(last && (flags & O_NOFOLLOW))) {
                        char target[PATH_MAX];
                        ssize_t n = readlinkat(fd, "", target, sizeof(target) - 1);
                        close(fd);
                        if (n < 0)
                                return -errno;
                        if (++links > MAX_LINKS)
                                return -ELOOP;
                        target[n] = '\0';
                        /* "%s/%s" with nothing left would ask for a
                         * directory, as a trailing slash does. */
                        char *joined = *todo ? strprintf("%s/%s", target, todo) : strdup(target);
                        if (!joined)
                                return -ENOMEM;
                        if (strlen(joined) >= PATH_MAX) {
                                free(joined);
                                return -ENAMETOOLONG;
                        }
                        free(todo);
                        todo = joined;
                        if (target[0] == '/') {
                                fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
                                if (fd < 0)
                                        return -errno;
                                close(cur);
                                cur = fd;
                        }
                        continue;
                }
                if (last) {
                        close(fd);
                        if (slash && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
                                return -ENOTDIR;
                        fd = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
                        return fd < 0 ? -errno : fd;
                }
                if (!S_ISDIR(st.st_mode)) {
                        close(fd);
                        return -ENOTDIR;
                }
                close(cur);
                cur = fd;
        }
}

int root_open(int rootfd, const char *path, int flags, mode_t mode)
{
        if (!path)
                return -EINVAL;
        if (strlen(path) >= PATH_MAX)
                return -ENAMETOOLONG;
        if (have_openat2())
                return openat2_in_root(rootfd, *path ? path : ".", flags, mode);
        return chase_open(rootfd, path, flags, mode);
}

static int mkdir_in_root(int rootfd, const char *path, mode_t mode, unsigned links);

/* The parent of path (made when dir_mode is not 0) and its last component. */
static int open_parent(int rootfd, const char *path, mode_t dir_mode, unsigned links,
                       const char **ret_name)
{
        size_t n = strlen(path);
        const char *slash = memrchr(path, '/', n);
        const char *name = slash ? slash + 1 : path;
        _cleanup_free_ char *parent = NULL;
        int fd;

        if (!*name || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        parent = slash ? strndup(path, (size_t)(slash - path)) : strdup("");
        if (!parent)
                return -ENOMEM;
        fd = dir_mode ? mkdir_in_root(rootfd, parent, dir_mode, links)
                      : root_open(rootfd, parent, O_RDONLY | O_DIRECTORY, 0);
        if (fd >= 0)
                *ret_name = name;
        return fd;
}

/* mkdir -p inside the root. A component that exists but does not resolve
 * is a dangling symlink: its target is made instead, inside the root, as
 * openat2 would then resolve it (links counts those, against loops). */
static int mkdir_in_root(int rootfd, const char *path, mode_t mode, unsigned links)
{
        _cleanup_free_ char *p = NULL, *next = NULL;
        _cleanup_close_ int pfd = -1;
        const char *name;
        int fd;

        fd = root_open(rootfd, path, O_RDONLY | O_DIRECTORY, 0);
        if (fd != -ENOENT)
                return fd;
        p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (size_t n = strlen(p); n > 0 && p[n - 1] == '/'; n--)
                p[n - 1] = '\0';
        char *slash = strrchr(p, '/');
        const char *last = slash ? slash + 1 : p;
        if (streq(last, ".") || streq(last, "..")) {
                /* What it is relative to, made first; then it resolves. */
                if (!slash || slash == p)
                        return -ENOENT;
                *slash = '\0';
                fd = mkdir_in_root(rootfd, p, mode, links);
                if (fd < 0)
                        return fd;
                close(fd);
                return root_open(rootfd, path, O_RDONLY | O_DIRECTORY, 0);
        }
        pfd = open_parent(rootfd, p, mode, links, &name);
        if (pfd < 0)
                return pfd;
        if (mkdirat(pfd, name, mode) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 || (errno != ELOOP && errno != ENOTDIR))
                return fd >= 0 ? fd : -errno;
        char target[PATH_MAX];
        ssize_t n = readlinkat(pfd, name, target, sizeof(target) - 1);
        if (n < 0)
                return errno == EINVAL ? -ENOTDIR : -errno;
        if (++links > MAX_LINKS)
                return -ELOOP;
        target[n] = '\0';
        next = target[0] == '/' ? strdup(target) : strprintf("%.*s%s", (int)(name - p), p, target);
        if (!next)
                return -ENOMEM;
        if (strlen(next) >= PATH_MAX)
                return -ENAMETOOLONG;
        return mkdir_in_root(rootfd, next, mode, links);
}

int root_mkdir_p(int rootfd, const char *path, mode_t mode)
{
        if (!path)
                return -EINVAL;
        if (strlen(path) >= PATH_MAX)
                return -ENAMETOOLONG;
        return mkdir_in_root(rootfd, path, mode, 0);
}

int root_open_parent(int rootfd, const char *path, mode_t dir_mode, const char **ret_name)
{
        if (!path)
                return -EINVAL;
        if (strlen(path) >= PATH_MAX)
                return -ENAMETOOLONG;
        return open_parent(rootfd, path, dir_mode, 0, ret_name);
}

static int write_all(int fd, const void *data, size_t size)
{
        const char *p = data;
        while (size > 0) {
                ssize_t k = write(fd, p, size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                size -= (size_t)k;
        }
        return 0;
}

/* Owner and mode first (the file was created 0600), then the data: the
 * file never holds it with a wider mode than requested. */
static int fill_fd(int fd, const void *data, size_t size, mode_t mode, uid_t uid, gid_t gid,
                   unsigned flags)
{
        if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) < 0)
                return -errno;
        if (fchmod(fd, mode & 07777) < 0)
                return -errno;
        int r = write_all(fd, data, size);
        if (r < 0)
                return r;
        if (!(flags & WRITE_NOSYNC) && fsync(fd) < 0)
                return -errno;
        return 0;
}

static bool has_contents_at(int dirfd, const char *name, const void *data, size_t size, mode_t mode,
                            uid_t uid, gid_t gid)
{
        struct stat st;
        _cleanup_free_ char *old = NULL;
        size_t n;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            (size_t)st.st_size != size)
                return false;
        if ((st.st_mode & 07777) != (mode & 07777))
                return false;
        if ((uid != (uid_t)-1 && st.st_uid != uid) || (gid != (gid_t)-1 && st.st_gid != gid))
                return false;
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || read_fd(fd, size + 1, &old, &n) < 0 || n != size)
                return false;
        return memcmp(old, data, size) == 0;
}

/* An O_TMPFILE file, filled, then named tmp. Unprivileged linkat() of an
 * fd needs /proc (AT_EMPTY_PATH wants CAP_DAC_READ_SEARCH). -EOPNOTSUPP
 * when neither the file system nor the kernel can: use a named temp. */
static int write_tmpfile(int dirfd, const char *tmp, const void *data, size_t size, mode_t mode,
                         uid_t uid, gid_t gid, unsigned flags)
{
        _cleanup_close_ int fd = -1;
        char proc[64];
        int r;

        if (write_no_tmpfile)
                return -EOPNOTSUPP;
        fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0)
                return errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL ? -EOPNOTSUPP
                                                                                 : -errno;
        r = fill_fd(fd, data, size, mode, uid, gid, flags);
        if (r < 0)
                return r;
        (void)unlinkat(dirfd, tmp, 0); /* this pid's, from a crash before a reboot */
        if (linkat(fd, "", dirfd, tmp, AT_EMPTY_PATH) == 0)
                return 0;
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, dirfd, tmp, AT_SYMLINK_FOLLOW) == 0)
                return 0;
        return errno == ENOENT ? -EOPNOTSUPP : -errno;
}

static int write_named_temp(int dirfd, const char *tmp, const void *data, size_t size, mode_t mode,
                            uid_t uid, gid_t gid, unsigned flags)
{
        (void)unlinkat(dirfd, tmp, 0);
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        int r = fill_fd(fd, data, size, mode, uid, gid, flags);
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r < 0)
                (void)unlinkat(dirfd, tmp, 0);
        return r;
}

/* The data goes to an O_TMPFILE file first: it has no name while it is
 * written, so a crash (kill -9, power loss) in a long write leaves nothing
 * behind. It is named only once complete and synced, and that name is
 * renamed over the target at once, which also replaces a symlink there
 * instead of writing through it. Where the file system has no O_TMPFILE,
 * a named temp file NAME.fbtmp.PID; remove_stale_temps() sweeps those up
 * after a crash. */
int write_file_at(int dirfd, const char *name, const void *data, size_t size, mode_t mode,
                  uid_t uid, gid_t gid, unsigned flags)
{
        char tmp[NAME_MAX + 1];
        int fd, r;

        if (!*name || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        if (flags & WRITE_IN_PLACE) {
                struct stat st;

                /* O_NONBLOCK: a FIFO there would wait for a reader. */
                fd = openat(dirfd, name,
                            O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                            0600);
                if (fd < 0 && errno == ELOOP && unlinkat(dirfd, name, 0) == 0)
                        fd = openat(dirfd, name,
                                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return errno == ENXIO ? -EINVAL : -errno;
                r = fstat(fd, &st) < 0 ? -errno : S_ISREG(st.st_mode) ? 0 : -EINVAL;
                if (r < 0) {
                        close(fd);
                        return r;
                }
                r = fill_fd(fd, data, size, mode, uid, gid, flags);
                if (close(fd) < 0 && r >= 0)
                        r = -errno;
                if (r < 0)
                        (void)unlinkat(dirfd, name, 0);
                return r < 0 ? r : 1;
        }
        if (has_contents_at(dirfd, name, data, size, mode, uid, gid))
                return 0;
        snprintf(tmp, sizeof(tmp), "%.200s" TEMP_INFIX "%d", name, (int)getpid());
        r = write_tmpfile(dirfd, tmp, data, size, mode, uid, gid, flags);
        if (r == -EOPNOTSUPP)
                r = write_named_temp(dirfd, tmp, data, size, mode, uid, gid, flags);
        if (r < 0)
                return r;
        if (renameat(dirfd, tmp, dirfd, name) < 0) {
                r = -errno;
                (void)unlinkat(dirfd, tmp, 0);
                return r;
        }
        if (!(flags & WRITE_NOSYNC) && fsync(dirfd) < 0)
                return -errno;
        return 1;
}

int root_write_file(int rootfd, const char *path, mode_t dir_mode, const void *data, size_t size,
                    mode_t mode, uid_t uid, gid_t gid, unsigned flags)
{
        const char *name;
        _cleanup_close_ int dfd = root_open_parent(rootfd, path, dir_mode, &name);

        if (dfd < 0)
                return dfd;
        if (!(flags & WRITE_IN_PLACE))
                (void)remove_stale_temps(dfd);
        return write_file_at(dfd, name, data, size, mode, uid, gid, flags);
}

int root_read_file(int rootfd, const char *path, size_t max, char **ret, size_t *ret_size)
{
        /* O_NONBLOCK: a FIFO there would wait for a writer without end. */
        _cleanup_close_ int fd = root_open(rootfd, path, O_RDONLY | O_NONBLOCK, 0);
        struct stat st;

        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        return read_fd(fd, max, ret, ret_size);
}

int root_read_line(int rootfd, const char *path, char **ret)
{
        char *s;
        int r = root_read_file(rootfd, path, 64 * 1024, &s, NULL);
        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = '\0';
        *ret = s;
        return 0;
}

/* name in dirfd and, for a directory, everything in it; no link is
 * followed. Depth is bounded: each level holds a descriptor. */
static int rm_at(int dirfd, const char *name, unsigned depth)
{
        struct stat st;
        int r = 0;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISDIR(st.st_mode))
                return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        if (depth >= RM_MAX_DEPTH)
                return -ELOOP;
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        for (struct dirent *de; r >= 0 && (de = readdir(d));)
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        r = rm_at(fd, de->d_name, depth + 1);
        closedir(d);
        if (r < 0)
                return r;
        return unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

int root_rm_rf(int rootfd, const char *path)
{
        const char *name;
        _cleanup_close_ int pfd = root_open_parent(rootfd, path, 0, &name);

        if (pfd == -ENOENT || pfd == -ENOTDIR)
                return 0;
        if (pfd < 0)
                return pfd;
        return rm_at(pfd, name, 0);
}

int root_unlink(int rootfd, const char *path)
{
        const char *name;
        _cleanup_close_ int pfd = root_open_parent(rootfd, path, 0, &name);

        if (pfd == -ENOENT || pfd == -ENOTDIR)
                return 0;
        if (pfd < 0)
                return pfd;
        return unlinkat(pfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
}

int root_fsync(int rootfd, const char *path)
{
        _cleanup_close_ int fd = root_open(rootfd, path, O_RDONLY, 0);
        if (fd < 0)
                return fd;
        return fsync(fd) < 0 ? -errno : 0;
}

static int fd_path(int fd, char *buf, size_t size)
{
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(proc, buf, size - 1);
        if (n < 0)
                return -errno;
        if ((size_t)n >= size - 1)
                return -ENAMETOOLONG;
        buf[n] = '\0';
        return 0;
}

int root_fd_path(int rootfd, int fd, char **ret)
{
        char root[PATH_MAX], p[PATH_MAX];
        int r = fd_path(rootfd, root, sizeof(root));

        if (r >= 0)
                r = fd_path(fd, p, sizeof(p));
        if (r < 0)
                return r;
        size_t n = streq(root, "/") ? 0 : strlen(root);
        if (strncmp(p, root, n) != 0 || (p[n] != '/' && p[n] != '\0'))
                return -EXDEV;
        char *s = strdup(p[n] ? p + n : "/");
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int remove_stale_temps(int dirfd)
{
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        for (struct dirent *de; (de = readdir(d));) {
                const char *t = NULL;
                for (const char *s = de->d_name; (s = strstr(s, TEMP_INFIX)); s++)
                        t = s;
                unsigned pid;
                if (!t || t == de->d_name || parse_uint(t + strlen(TEMP_INFIX), &pid) < 0 ||
                    pid == 0 || pid > INT_MAX)
                        continue;
                if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                        continue; /* alive: maybe still writing it */
                if (unlinkat(dirfd, de->d_name, 0) == 0)
                        n++;
        }
        closedir(d);
        return n;
}

const char *path_in_root(const char *root, const char *path)
{
        if (!path)
                return NULL;
        if (!root || !*root || streq(root, "/"))
                return path;
        size_t n = strlen(root);
        while (n > 1 && root[n - 1] == '/')
                n--;
        if (strncmp(path, root, n) != 0 || (path[n] != '/' && path[n] != '\0'))
                return NULL;
        return path[n] ? path + n : "/";
}
