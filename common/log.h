/* Logging. Messages go to the journal (with structured fields) when a
 * journald socket exists, and to stderr unless stderr is already connected
 * to the journal (JOURNAL_STREAM), so nothing is logged twice. Functions
 * return -abs(error) so callers can write `return log_error_errno(r, ...)`.
 * %m in a format prints strerror(error). */
#pragma once

#include <syslog.h>

#include "util.h"

void log_setup(const char *ident);
/* Messages above this priority are dropped (default LOG_INFO). */
void log_set_max_level(int prio);
/* Added as FIRSTBOOT_INSTANCE= to every journal entry once known. */
void log_set_instance(const char *instance_id);

/* The general form. fields is a NULL-terminated vector of extra
 * "KEY=value" journal fields, or NULL. */
int log_fullv(int prio, int error, char *const *fields, const char *fmt, va_list ap) _printf_(4, 0);
int log_full(int prio, int error, char *const *fields, const char *fmt, ...) _printf_(4, 5);

#define log_error_errno(e, ...)   log_full(LOG_ERR, (e), NULL, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full(LOG_WARNING, (e), NULL, __VA_ARGS__)
#define log_error(...)            log_full(LOG_ERR, 0, NULL, __VA_ARGS__)
#define log_warning(...)          log_full(LOG_WARNING, 0, NULL, __VA_ARGS__)
#define log_notice(...)           log_full(LOG_NOTICE, 0, NULL, __VA_ARGS__)
#define log_info(...)             log_full(LOG_INFO, 0, NULL, __VA_ARGS__)
#define log_debug(...)            log_full(LOG_DEBUG, 0, NULL, __VA_ARGS__)

/* Whether entries currently go to the journal. */
bool log_to_journal(void);
