/* Logging. Messages go to the journal (with structured fields) when a
 * journald socket exists, and to stderr unless stderr is already connected
 * to the journal (JOURNAL_STREAM), so nothing is logged twice.
 *
 * Only the *_errno forms return a value: -abs(error), so callers can write
 * `return log_error_errno(r, ...)`, and %m in their format prints
 * strerror(error). They refuse an error of 0, which would turn a failure
 * into success: a constant 0 does not compile, and a 0 at run time is
 * logged as a bug and returned as -EIO (the caller still fails). The plain
 * forms (log_error() ...) return void, so they cannot be returned as a
 * result: the compiler rejects `return log_error(...)` in a function
 * returning int. (systemd's src/basic/log.h makes the same split:
 * log_full() is cast to void, log_full_errno() asserts a non-zero error.) */
#pragma once

#include <syslog.h>

#include "util.h"

void log_setup(const char *ident);
/* Messages above this priority are dropped (default LOG_INFO). */
void log_set_max_level(int prio);
/* Added as FIRSTBOOT_INSTANCE= to every journal entry once known. */
void log_set_instance(const char *instance_id);

/* A message that reports no error. fields is a NULL-terminated vector of
 * extra "KEY=value" journal fields, or NULL. */
void log_fullv(int prio, char *const *fields, const char *fmt, va_list ap) _printf_(3, 0);
void log_full(int prio, char *const *fields, const char *fmt, ...) _printf_(3, 4);

/* A message about an error (errno-style, either sign): returns -abs(error),
 * or -EIO after a bug line when error is 0. Called through
 * log_full_errno(); file and line name the caller in that bug line. */
int log_errno_fullv(const char *file, int line, int prio, int error, char *const *fields,
                    const char *fmt, va_list ap) _printf_(6, 0);
int log_errno_full(const char *file, int line, int prio, int error, char *const *fields,
                   const char *fmt, ...) _printf_(6, 7);

/* Breaks the build when e is an integer constant expression equal to 0
 * (a bit-field of negative width); any other e costs nothing and is not
 * evaluated. LOG_IS_ICE is the kernel's __is_constexpr() idea: a null
 * pointer constant only when e is a constant expression. */
#define LOG_IS_ICE(e) (sizeof(int) == sizeof(*(8 ? ((void *)((long)(e)*0l)) : (int *)8)))
#define LOG_NONZERO_CT(e)                                                                          \
        ((void)sizeof(struct {                                                                     \
                int log_errno_must_not_be_0 : __builtin_choose_expr(LOG_IS_ICE(e), (e) != 0, 1)    \
                                              ? 1                                                  \
                                              : -1;                                                \
        }))

#define log_full_errno(prio, e, fields, ...)                                                       \
        (LOG_NONZERO_CT(e), log_errno_full(__FILE__, __LINE__, (prio), (e), (fields), __VA_ARGS__))

#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, e, NULL, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, NULL, __VA_ARGS__)
#define log_error(...)            log_full(LOG_ERR, NULL, __VA_ARGS__)
#define log_warning(...)          log_full(LOG_WARNING, NULL, __VA_ARGS__)
#define log_notice(...)           log_full(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_info(...)             log_full(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...)            log_full(LOG_DEBUG, NULL, __VA_ARGS__)

/* Whether entries currently go to the journal. */
bool log_to_journal(void);
