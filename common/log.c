#include "log.h"
#include "journal.h"

#include <errno.h>
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

int log_fullv(int prio, int error, char *const *fields, const char *fmt, va_list ap)
{
        int saved = errno;
        char msg[4096];

        if (error < 0)
                error = -error;
        if (prio > log_max)
                return -error;
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
        return -error;
}

int log_full(int prio, int error, char *const *fields, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = log_fullv(prio, error, fields, fmt, ap);
        va_end(ap);
        return r;
}
