#include "log.h"
#include "journal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

static const char *log_ident = "firstboot";
static int log_max = LOG_INFO;
static char *log_instance;
static int journal_state = -1; /* -1 unknown, 0 no, 1 yes */
static int stderr_is_journal = -1;

void log_setup(const char *ident)
{
        log_ident = ident;
        journal_state = -1;
        stderr_is_journal = -1;
}

void log_set_max_level(int prio)
{
        log_max = prio;
}

void log_set_instance(const char *instance_id)
{
        free(log_instance);
        log_instance = strdup_null(instance_id);
}

bool log_to_journal(void)
{
        if (journal_state < 0)
                journal_state = journal_available();
        return journal_state;
}

/* systemd sets JOURNAL_STREAM=dev:inode when stderr is a stream to the
 * journal; logging to both would store every line twice. */
static bool stderr_to_journal(void)
{
        if (stderr_is_journal < 0) {
                const char *e = getenv("JOURNAL_STREAM");
                unsigned long long dev, ino;
                struct stat st;
                stderr_is_journal = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 &&
                                    fstat(STDERR_FILENO, &st) == 0 &&
                                    (unsigned long long)st.st_dev == dev &&
                                    (unsigned long long)st.st_ino == ino;
        }
        return stderr_is_journal;
}

/* Formats and sends one message; error (>= 0) is what %m prints. */
_printf_(4, 0) static void log_emit(int prio, int error, char *const *fields, const char *fmt,
                                    va_list ap)
{
        int saved = errno;
        char msg[4096];

        if (prio > log_max)
                return;
        errno = error;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        errno = saved;

        if (log_to_journal()) {
                char *extra[16];
                size_t n = 0;
                _cleanup_free_ char *inst = NULL;
                if (log_instance)
                        inst = strprintf("FIRSTBOOT_INSTANCE=%s", log_instance);
                if (inst)
                        extra[n++] = inst;
                for (size_t i = 0; fields && fields[i] && n < ARRAY_SIZE(extra) - 1; i++)
                        extra[n++] = fields[i];
                extra[n] = NULL;
                journal_send(prio, log_ident, msg, extra);
        }
        if (!log_to_journal() || !stderr_to_journal()) {
                const char *module = NULL;
                for (size_t i = 0; fields && fields[i]; i++)
                        if (startswith(fields[i], "FIRSTBOOT_MODULE="))
                                module = fields[i] + strlen("FIRSTBOOT_MODULE=");
                if (module)
                        fprintf(stderr, "%s[%s]: %s\n", log_ident, module, msg);
                else
                        fprintf(stderr, "%s: %s\n", log_ident, msg);
        }
}

void log_fullv(int prio, char *const *fields, const char *fmt, va_list ap)
{
        log_emit(prio, 0, fields, fmt, ap);
}

void log_full(int prio, char *const *fields, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        log_emit(prio, 0, fields, fmt, ap);
        va_end(ap);
}

int log_errno_fullv(const char *file, int line, int prio, int error, char *const *fields,
                    const char *fmt, va_list ap)
{
        /* An error of 0 would return success from a failure path: say it is
         * a bug, where, and fail anyway. INT_MIN has no positive value. */
        if (error == 0 || error == INT_MIN) {
                log_full(LOG_ERR, NULL,
                         "BUG: %s:%d logged an error with errno %d; reporting it as EIO", file,
                         line, error);
                error = EIO;
        }
        if (error < 0)
                error = -error;
        log_emit(prio, error, fields, fmt, ap);
        return -error;
}

int log_errno_full(const char *file, int line, int prio, int error, char *const *fields,
                   const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = log_errno_fullv(file, line, prio, error, fields, fmt, ap);
        va_end(ap);
        return r;
}
