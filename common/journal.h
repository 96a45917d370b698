/* The one file that talks to journald and the service manager: sending
 * journal entries (the native protocol), sd_notify's protocol, and
 * reading entries back (libsystemd, dlopen()ed when first needed). */
#pragma once

#include <stdbool.h>

/* Whether a journald socket is there to send to. */
bool journal_available(void);
/* Sends MESSAGE=, PRIORITY=, SYSLOG_IDENTIFIER= and the extra "KEY=value"
 * fields to journald, as sd_journal_sendv() would. 0 or -errno. */
int journal_send(int prio, const char *ident, const char *message, char *const *fields);

/* sd_notify(3)'s protocol: a datagram to $NOTIFY_SOCKET. 1 when sent, 0
 * (nothing done) outside a service that expects it, or -errno. */
int notify_ready(void);
int notify_status(const char *status);
/* EXTEND_TIMEOUT_USEC=: the service manager waits usec more (a stop past
 * TimeoutStopSec=, for one) before it kills; to be sent again within it. */
int notify_extend_timeout(long long usec);

/* Reads the journal (the system's, or the directory dir when not NULL),
 * calling cb for each entry matching every "FIELD=value" in matches, in
 * order. With follow, waits for new entries until cb returns >0 or
 * should_stop returns true. Returns the number of entries or -errno
 * (-ELIBACC when libsystemd cannot be loaded). */
struct journal_entry {
        const char *message;
        const char *module;
        int priority;
        long long realtime_us;
};
typedef int (*journal_cb)(const struct journal_entry *e, void *userdata);
int journal_read(const char *dir, char *const *matches, bool follow, journal_cb cb,
                 bool (*should_stop)(void *userdata), void *userdata);
