#include "fs.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

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

static int fsync_dir_of(const char *path)
{
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        return fsync_path(dirname(p));
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode, uid_t uid,
                      gid_t gid)
{
        return write_file_atomic_full(path, data, size, mode, uid, gid, 0);
}

int write_file_atomic_full(const char *path, const void *data, size_t size, mode_t mode, uid_t uid,
                           gid_t gid, unsigned flags)
{
        _cleanup_free_ char *tmp = NULL;
        const char *p = data;
        size_t left = size;
        int fd, r;

        if (!(flags & WRITE_IN_PLACE) && file_has_contents(path, data, size, mode, uid, gid))
                return 0;
        tmp = flags & WRITE_IN_PLACE ? strdup(path) : strprintf("%s.fbtmp.%d", path, (int)getpid());
        if (!tmp)
                return -ENOMEM;
        /* 0600 at creation: the final mode is set before any data is written
         * and before the name becomes visible. */
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) < 0)
                goto fail;
        if (fchmod(fd, mode & 07777) < 0)
                goto fail;
        while (left > 0) {
                ssize_t k = write(fd, p, left);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        goto fail;
                }
                p += k;
                left -= (size_t)k;
        }
        if (!(flags & WRITE_NOSYNC) && fsync(fd) < 0)
                goto fail;
        if (close(fd) < 0) {
                fd = -1;
                goto fail;
        }
        fd = -1;
        if (flags & WRITE_IN_PLACE)
                return 1;
        if (rename(tmp, path) < 0)
                goto fail;
        r = flags & WRITE_NOSYNC ? 0 : fsync_dir_of(path);
        return r < 0 ? r : 1;
fail:
        r = -errno;
        if (fd >= 0)
                close(fd);
        unlink(tmp);
        return r;
}

int read_file(const char *path, size_t max, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct buf b = {0};
        char chunk[65536];

        if (fd < 0)
                return -errno;
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
        _cleanup_free_ char *path = NULL, *data = NULL;
        int r;

        if (parse_uint(name, ret) == 0)
                return 0;
        path = root_path(root, file);
        if (!path)
                return -ENOMEM;
        r = read_file(path, 16 * 1024 * 1024, &data, NULL);
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
