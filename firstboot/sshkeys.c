/* Provider SSH keys: strict checks and the authorized_keys merge; see
 * sshkeys.h. */
#include "sshkeys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "fs.h"
#include "util.h"

/* An existing authorized_keys bigger than this is not ours to rewrite. */
#define MAX_AUTHORIZED_KEYS (1024U * 1024U)

/* The key types accepted, and the SSH wire strings their blobs hold after
 * the type name (RFC 4253 6.6, RFC 5656 3.1, RFC 8709 4, OpenSSH
 * PROTOCOL.u2f): 'c' the curve name the type ends with, 'k' any string,
 * 'e' exactly 32 bytes. */
static const struct {
        const char *type;
        const char *fields;
        const char *curve;
} key_types[] = {
        {"ssh-ed25519", "e", NULL},
        {"ssh-rsa", "kk", NULL},
        {"ecdsa-sha2-nistp256", "ck", "nistp256"},
        {"ecdsa-sha2-nistp384", "ck", "nistp384"},
        {"ecdsa-sha2-nistp521", "ck", "nistp521"},
        {"sk-ssh-ed25519@openssh.com", "ek", NULL},
        {"sk-ecdsa-sha2-nistp256@openssh.com", "ckk", "nistp256"},
};

/* The SSH string at *offset in blob; advances *offset past it. */
static bool next_string(const unsigned char *blob, size_t len, size_t *offset,
                        const unsigned char **ret, size_t *ret_len)
{
        if (len - *offset < 4)
                return false;
        const unsigned char *p = blob + *offset;
        uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (n > len - *offset - 4)
                return false;
        *ret = p + 4;
        *ret_len = n;
        *offset += 4 + (size_t)n;
        return true;
}

static bool bytes_eq(const unsigned char *p, size_t n, const char *s)
{
        return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* Whether blob is a key of type key_types[t]: its name, then exactly the
 * fields the type has. */
static bool blob_matches(size_t t, const unsigned char *blob, size_t len)
{
        const unsigned char *s;
        size_t n, off = 0;

        if (!next_string(blob, len, &off, &s, &n) || !bytes_eq(s, n, key_types[t].type))
                return false;
        for (const char *f = key_types[t].fields; *f; f++) {
                if (!next_string(blob, len, &off, &s, &n) || n == 0)
                        return false;
                if (*f == 'c' && !bytes_eq(s, n, key_types[t].curve))
                        return false;
                if (*f == 'e' && n != 32)
                        return false;
        }
        return off == len;
}

static bool is_blank(char c)
{
        return c == ' ' || c == '\t';
}

int sshkey_parse(const char *text, char **ret, const char **ret_why)
{
        _cleanup_free_ unsigned char *blob = NULL;
        const char *p, *type, *data, *comment;
        size_t type_len, data_len, comment_len, blob_len, t;
        int r;

        *ret_why = NULL;
        if (strlen(text) > SSHKEY_MAX_LINE) {
                *ret_why = "longer than 16384 characters";
                return -EBADMSG;
        }
        for (p = text; *p; p++)
                if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) {
                        *ret_why = *p == '\n' || *p == '\r' ? "more than one line"
                                                            : "a control character in it";
                        return -EBADMSG;
                }
        type = text + strspn(text, " \t");
        type_len = strcspn(type, " \t");
        data = type + type_len + strspn(type + type_len, " \t");
        data_len = strcspn(data, " \t");
        comment = data + data_len + strspn(data + data_len, " \t");
        comment_len = strlen(comment);
        while (comment_len > 0 && is_blank(comment[comment_len - 1]))
                comment_len--;
        if (type_len == 0) {
                *ret_why = "empty";
                return -EBADMSG;
        }
        for (t = 0; t < ARRAY_SIZE(key_types); t++)
                if (type_len == strlen(key_types[t].type) &&
                    memcmp(type, key_types[t].type, type_len) == 0)
                        break;
        if (t == ARRAY_SIZE(key_types) && strstr(text, "PRIVATE KEY")) {
                *ret_why = "a private key; give the public key";
                return -EBADMSG;
        }
        if (t == ARRAY_SIZE(key_types)) {
                *ret_why = memchr(type, '=', type_len) || memchr(type, '"', type_len) ||
                                           memchr(type, ',', type_len)
                                   ? "options before the key type are not accepted"
                                   : "not a key type accepted (ssh-ed25519, ssh-rsa, "
                                     "ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, "
                                     "sk-ecdsa-sha2-nistp256@openssh.com)";
                return -EBADMSG;
        }
        if (data_len == 0) {
                *ret_why = "no key data after the type";
                return -EBADMSG;
        }
        r = base64_decode(data, data_len, &blob, &blob_len, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret_why = "the key data is not base64";
                return -EBADMSG;
        }
        if (!blob_matches(t, blob, blob_len)) {
                *ret_why = "the key data is not a key of the type it names";
                return -EBADMSG;
        }
        char *line = comment_len > 0
                             ? strprintf("%.*s %.*s %.*s", (int)type_len, type, (int)data_len, data,
                                         (int)comment_len, comment)
                             : strprintf("%.*s %.*s", (int)type_len, type, (int)data_len, data);
        if (!line)
                return -ENOMEM;
        *ret = line;
        return 0;
}

/* The base64 field of a key line sshkey_parse() made. */
static char *key_data(const char *line)
{
        const char *d = strchr(line, ' ') + 1;
        return xstrndup(d, strcspn(d, " "));
}

/* Whether an authorized_keys text holds a line with the key data (the
 * base64 of the blob, which names the key) as one of its fields. */
static bool has_key(const char *text, const char *data)
{
        size_t n = strlen(data);

        for (const char *p = text; (p = strstr(p, data)); p += n) {
                bool starts = p == text || is_blank(p[-1]);
                bool ends = p[n] == '\0' || p[n] == '\n' || p[n] == '\r' || is_blank(p[n]);
                if (starts && ends)
                        return true;
        }
        return false;
}

/* The uid, gid and home of user in the root's /etc/passwd, read inside
 * the root (an /etc linked out of it does not reach the host's; a FIFO is
 * refused, not waited on). */
static int passwd_entry(int rootfd, const char *user, uid_t *ret_uid, gid_t *ret_gid,
                        char **ret_home)
{
        _cleanup_free_ char *data = NULL;
        int r;

        r = root_read_file(rootfd, "/etc/passwd", 16U * 1024U * 1024U, &data, NULL);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        for (char *line = data, *next; line && *line; line = next) {
                char *f[7];
                size_t i = 0;
                unsigned uid, gid;

                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                for (char *tok = line; tok && i < ARRAY_SIZE(f); i++) {
                        f[i] = tok;
                        tok = strchr(tok, ':');
                        if (tok)
                                *tok++ = '\0';
                }
                if (i < 6 || !streq(f[0], user))
                        continue;
                if (parse_uint(f[2], &uid) < 0 || parse_uint(f[3], &gid) < 0 || f[5][0] != '/')
                        return -EBADMSG;
                *ret_uid = uid;
                *ret_gid = gid;
                *ret_home = xstrdup(f[5]);
                return 0;
        }
        return -ESRCH;
}

/* The directory name in dirfd with mode and owner, made when missing; a
 * link or anything but a directory there is refused. Returns its fd. */
static int ensure_dir_at(int dirfd, const char *name, mode_t mode, uid_t uid, gid_t gid)
{
        struct stat st;

        if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
                return -errno;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (S_ISLNK(st.st_mode))
                return -ELOOP;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0) ||
            ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)) {
                int k = -errno;
                close(fd);
                return k;
        }
        return fd;
}

/* Everything that touches the file system under the root is here, and all
 * of it resolves inside the root (fs.h's root_* calls, then the home's
 * descriptor): a home, .ssh or authorized_keys leading out is never
 * followed there. */
int sshkeys_install(int rootfd, const char *root, const char *user, char *const *keys,
                    char **ret_error)
{
        _cleanup_free_ char *home_rel = NULL, *file = NULL, *old = NULL;
        _cleanup_close_ int homefd = -EBADF, sshfd = -EBADF;
        struct buf out = {0};
        struct stat st;
        uid_t uid;
        gid_t gid;
        size_t old_len = 0;
        int added = 0, r;

        if (!keys || !keys[0])
                return 0;
        r = passwd_entry(rootfd, user, &uid, &gid, &home_rel);
        if (r == -ESRCH)
                return fail_with(ret_error, r, "ssh_keys_user '%s' is not in %s/etc/passwd", user,
                                 root && *root ? root : "");
        if (r < 0)
                return fail_with(ret_error, r, "cannot read the passwd entry of '%s': %s", user,
                                 strerror(-r));
        homefd = root_open(rootfd, home_rel, O_RDONLY | O_DIRECTORY, 0);
        if (homefd == -ENOENT) {
                homefd = root_mkdir_p(rootfd, home_rel, 0700);
                if (homefd >= 0 && fchown(homefd, uid, gid) < 0)
                        return fail_with(ret_error, -errno, "cannot create %s: %m", home_rel);
        }
        if (homefd < 0)
                return fail_with(ret_error, homefd, "cannot open the home of '%s', %s: %s", user,
                                 home_rel, strerror(-homefd));
        file = strprintf("%s/.ssh/authorized_keys", home_rel);
        if (!file)
                return fail_with(ret_error, -ENOMEM, "out of memory");
        sshfd = ensure_dir_at(homefd, ".ssh", 0700, uid, gid);
        if (sshfd < 0)
                return fail_with(ret_error, sshfd, "%s/.ssh: %s", home_rel,
                                 sshfd == -ELOOP ? "is a symbolic link; refusing to follow it"
                                                 : strerror(-sshfd));
        if (fstatat(sshfd, "authorized_keys", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            !S_ISREG(st.st_mode))
                return fail_with(ret_error, S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR,
                                 "%s: not a regular file%s", file,
                                 S_ISLNK(st.st_mode) ? " (a symbolic link); refusing to follow it"
                                                     : "");
        r = root_read_file(rootfd, file, MAX_AUTHORIZED_KEYS, &old, &old_len);
        if (r < 0 && r != -ENOENT)
                return fail_with(ret_error, r, "cannot read %s: %s", file, strerror(-r));

        struct buf add = {0};
        bool oom = false;
        for (char *const *k = keys; *k; k++) {
                _cleanup_free_ char *data = key_data(*k);
                if (has_key(old ? old : "", data) || (add.data && has_key(add.data, data)))
                        continue;
                oom = oom || buf_printf(&add, "%s\n", *k) < 0;
                added++;
        }
        if (old_len > 0)
                oom = oom || buf_append(&out, old, old_len) < 0;
        if (added > 0) {
                if (old_len > 0 && old[old_len - 1] != '\n')
                        oom = oom || buf_puts(&out, "\n") < 0;
                oom = oom || buf_append(&out, add.data, add.len) < 0;
        }
        buf_free(&add);
        if (oom) {
                buf_free(&out);
                return fail_with(ret_error, -ENOMEM, "out of memory");
        }
        /* Nothing new: the file stays byte for byte, its mode and owner
         * put right. */
        r = write_file_at(sshfd, "authorized_keys", out.data ? out.data : "", out.len, 0600, uid,
                          gid, 0);
        buf_free(&out);
        if (r < 0)
                return fail_with(ret_error, r, "cannot write %s: %s", file, strerror(-r));
        return added;
}
