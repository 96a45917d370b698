/* Sending speaks journald's and the service manager's datagram protocols
 * directly; reading goes through libsystemd, loaded when first needed. */
#include "journal.h"
#include "dl.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-journal.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* libsystemd is only needed to read the journal (`firstboot logs`). The
 * agent sends with the two protocols below, which systemd documents as
 * stable for exactly this (systemd.io/JOURNAL_NATIVE_PROTOCOL, sd_notify(3)):
 * linking libsystemd would cost every boot 1.2 MB and the loading of
 * libgcrypt, lz4, zstd, lzma and libcap for two sendmsg() calls. */
#define SD_SYMBOLS(X)                                                                              \
        X(sd_journal_add_match)                                                                    \
        X(sd_journal_close)                                                                        \
        X(sd_journal_get_data)                                                                     \
        X(sd_journal_get_realtime_usec)                                                            \
        X(sd_journal_next)                                                                         \
        X(sd_journal_open)                                                                         \
        X(sd_journal_open_directory)                                                               \
        X(sd_journal_wait)
DL_DEFINE(libsystemd, SONAME_LIBSYSTEMD, SD_SYMBOLS);

#define sd_journal_add_match         sym_sd_journal_add_match
#define sd_journal_close             sym_sd_journal_close
#define sd_journal_get_data          sym_sd_journal_get_data
#define sd_journal_get_realtime_usec sym_sd_journal_get_realtime_usec
#define sd_journal_next              sym_sd_journal_next
#define sd_journal_open              sym_sd_journal_open
#define sd_journal_open_directory    sym_sd_journal_open_directory
#define sd_journal_wait              sym_sd_journal_wait

bool journal_available(void)
{
        return access(JOURNAL_SOCKET, W_OK) == 0;
}

/* One "KEY=value" field in the native format: "KEY=value\n", or, when the
 * value holds a newline, "KEY\n", its length as 64-bit little endian, the
 * value and "\n". */
static int append_field(struct buf *b, const char *field)
{
        const char *eq = strchr(field, '=');
        size_t klen, vlen;
        unsigned char le[8];
        int r;

        if (!eq || eq == field)
                return -EINVAL;
        klen = (size_t)(eq - field);
        vlen = strlen(eq + 1);
        if (!memchr(eq + 1, '\n', vlen)) {
                r = buf_append(b, field, klen + 1 + vlen);
                return r < 0 ? r : buf_append(b, "\n", 1);
        }
        for (unsigned i = 0; i < 8; i++)
                le[i] = (unsigned char)((uint64_t)vlen >> (8 * i));
        if ((r = buf_append(b, field, klen)) < 0 || (r = buf_append(b, "\n", 1)) < 0 ||
            (r = buf_append(b, le, sizeof(le))) < 0 || (r = buf_append(b, eq + 1, vlen)) < 0)
                return r;
        return buf_append(b, "\n", 1);
}

/* An entry too big for one datagram travels as a sealed memfd, passed with
 * SCM_RIGHTS, as journald expects. */
static int send_memfd(int sock, const struct sockaddr_un *sa, socklen_t salen, const struct buf *b)
{
        _cleanup_close_ int fd = memfd_create("journal-entry", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {0};
        struct msghdr mh = {
                .msg_name = (void *)sa,
                .msg_namelen = salen,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        struct cmsghdr *c;

        if (fd < 0)
                return -errno;
        for (size_t off = 0; off < b->len;) {
                ssize_t n = write(fd, b->data + off, b->len - off);
                if (n < 0)
                        return -errno;
                off += (size_t)n;
        }
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                return -errno;
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int journal_send(int prio, const char *ident, const char *message, char *const *fields)
{
        static int sock = -1;
        static const struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET};
        const socklen_t salen = offsetof(struct sockaddr_un, sun_path) + sizeof(JOURNAL_SOCKET);
        _cleanup_free_ char *m = strprintf("MESSAGE=%s", message);
        _cleanup_free_ char *id = strprintf("SYSLOG_IDENTIFIER=%s", ident);
        char prio_buf[32];
        struct buf b = {0};
        int r;

        if (!m || !id)
                return -ENOMEM;
        snprintf(prio_buf, sizeof(prio_buf), "PRIORITY=%d", prio);
        r = append_field(&b, m);
        if (r >= 0)
                r = append_field(&b, prio_buf);
        if (r >= 0)
                r = append_field(&b, id);
        for (size_t i = 0; r >= 0 && fields && fields[i]; i++)
                r = append_field(&b, fields[i]);
        if (r >= 0 && sock < 0) {
                sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (sock < 0)
                        r = -errno;
        }
        if (r >= 0 &&
            sendto(sock, b.data, b.len, MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen) < 0) {
                r = -errno;
                if (r == -EMSGSIZE || r == -ENOBUFS)
                        r = send_memfd(sock, &sa, salen, &b);
        }
        buf_free(&b);
        return r;
}

/* Sends state to $NOTIFY_SOCKET (a path, or "@" for an abstract name):
 * 1 when sent, 0 outside a service that expects it. */
static int notify(const char *state)
{
        const char *e = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;
        size_t len;

        if (!e || !*e)
                return 0;
        len = strlen(e);
        if ((e[0] != '/' && e[0] != '@') || len < 2 || len >= sizeof(sa.sun_path))
                return -EAFNOSUPPORT;
        memcpy(sa.sun_path, e, len);
        if (e[0] == '@')
                sa.sun_path[0] = '\0';
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&sa,
                   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (e[0] == '/'))) < 0)
                return -errno;
        return 1;
}

int notify_ready(void)
{
        return notify("READY=1");
}

int notify_status(const char *status)
{
        _cleanup_free_ char *s = strprintf("STATUS=%s", status);
        if (!s)
                return -ENOMEM;
        return notify(s);
}

int notify_extend_timeout(long long usec)
{
        char s[64];
        snprintf(s, sizeof(s), "EXTEND_TIMEOUT_USEC=%lld", usec);
        return notify(s);
}

/* Copies the value of field into buf, or "" when the entry lacks it. */
static const char *entry_field(sd_journal *j, const char *field, char *buf, size_t size)
{
        const void *data;
        size_t len, fl = strlen(field);

        buf[0] = '\0';
        if (sd_journal_get_data(j, field, &data, &len) < 0 || len <= fl + 1)
                return buf;
        len -= fl + 1;
        if (len >= size)
                len = size - 1;
        memcpy(buf, (const char *)data + fl + 1, len);
        buf[len] = '\0';
        return buf;
}

int journal_read(const char *dir, char *const *matches, bool follow, journal_cb cb,
                 bool (*should_stop)(void *userdata), void *userdata)
{
        sd_journal *j = NULL;
        int r, count = 0;

        if (dl_load(&libsystemd) < 0)
                return -ELIBACC;
        r = dir ? sd_journal_open_directory(&j, dir, 0)
                : sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
        if (r < 0)
                return r;
        for (size_t i = 0; matches && matches[i]; i++) {
                r = sd_journal_add_match(j, matches[i], 0);
                if (r < 0)
                        goto out;
        }
        for (;;) {
                r = sd_journal_next(j);
                if (r < 0)
                        goto out;
                if (r == 0) {
                        if (!follow || (should_stop && should_stop(userdata)))
                                break;
                        r = sd_journal_wait(j, 250000);
                        if (r < 0)
                                goto out;
                        continue;
                }
                char msg[8192], mod[256], prio[16];
                struct journal_entry e = {
                        .message = entry_field(j, "MESSAGE", msg, sizeof(msg)),
                        .module = entry_field(j, "FIRSTBOOT_MODULE", mod, sizeof(mod)),
                        .priority = 6,
                };
                entry_field(j, "PRIORITY", prio, sizeof(prio));
                if (prio[0])
                        e.priority = prio[0] - '0';
                uint64_t usec;
                if (sd_journal_get_realtime_usec(j, &usec) >= 0)
                        e.realtime_us = (long long)usec;
                count++;
                r = cb(&e, userdata);
                if (r != 0)
                        break;
        }
        r = count;
out:
        sd_journal_close(j);
        return r;
}
