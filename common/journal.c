#include "journal.h"
#include "util.h"

#include <errno.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

bool journal_available(void)
{
        return access("/run/systemd/journal/socket", W_OK) == 0;
}

int journal_send(int prio, const char *ident, const char *message, char *const *fields)
{
        struct iovec iov[24];
        char prio_buf[32];
        _cleanup_free_ char *m = strprintf("MESSAGE=%s", message);
        _cleanup_free_ char *id = strprintf("SYSLOG_IDENTIFIER=%s", ident);
        size_t n = 0;

        if (!m || !id)
                return -ENOMEM;
        snprintf(prio_buf, sizeof(prio_buf), "PRIORITY=%d", prio);
        iov[n++] = (struct iovec){m, strlen(m)};
        iov[n++] = (struct iovec){prio_buf, strlen(prio_buf)};
        iov[n++] = (struct iovec){id, strlen(id)};
        for (size_t i = 0; fields && fields[i] && n < ARRAY_SIZE(iov); i++)
                iov[n++] = (struct iovec){fields[i], strlen(fields[i])};
        return sd_journal_sendv(iov, (int)n);
}

int notify_ready(void)
{
        return sd_notify(0, "READY=1");
}

int notify_status(const char *status)
{
        _cleanup_free_ char *s = strprintf("STATUS=%s", status);
        if (!s)
                return -ENOMEM;
        return sd_notify(0, s);
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
