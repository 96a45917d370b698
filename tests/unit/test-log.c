/* The log helpers' contract: the *_errno forms return -abs(error) and
 * refuse an error of 0 (a bug line, and -EIO, so a failure path never
 * returns success); %m prints the given error, not errno. (That a constant
 * 0 and `return log_error(...)` do not compile is tests/e2e/test-log-api.sh.) */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

/* Runs fn with stderr in a file and returns what it wrote. */
static char *capture_stderr(int (*fn)(int), int arg, int *ret)
{
        char path[] = "/tmp/test-log.XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0)
                return NULL;
        unlink(path);
        fflush(stderr);
        int saved = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);
        *ret = fn(arg);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        char *buf = xcalloc(1, 8192);
        ssize_t n = pread(fd, buf, 8191, 0);
        close(fd);
        if (n < 0)
                buf[0] = '\0';
        return buf;
}

static int error_errno(int e)
{
        return log_error_errno(e, "Failed to frob: %m");
}

static int warning_errno(int e)
{
        return log_warning_errno(e, "Could not frob: %m");
}

TEST(errno_sign_is_normalized)
{
        int r;
        _cleanup_free_ char *a = capture_stderr(error_errno, EACCES, &r);
        CHECK_INTEQ(r, -EACCES);
        CHECK(a && strstr(a, "Failed to frob: Permission denied"));
        _cleanup_free_ char *b = capture_stderr(error_errno, -ENOSPC, &r);
        CHECK_INTEQ(r, -ENOSPC);
        CHECK(b && strstr(b, "Failed to frob: No space left on device"));
        _cleanup_free_ char *c = capture_stderr(warning_errno, -EROFS, &r);
        CHECK_INTEQ(r, -EROFS);
        CHECK(c && strstr(c, "Could not frob: Read-only file system"));
}

TEST(errno_zero_is_a_failure_and_a_bug_line)
{
        volatile int zero = 0; /* not a constant: that would not compile */
        int r;
        _cleanup_free_ char *a = capture_stderr(error_errno, zero, &r);
        CHECK_INTEQ(r, -EIO);
        CHECK(a && strstr(a, "BUG: tests/unit/test-log.c:"));
        CHECK(a && strstr(a, "logged an error with errno 0"));
        CHECK(a && strstr(a, "Failed to frob: Input/output error"));
        _cleanup_free_ char *b = capture_stderr(warning_errno, zero, &r);
        CHECK_INTEQ(r, -EIO);
        CHECK(b && strstr(b, "BUG: "));
}

TEST(errno_int_min_is_a_failure)
{
        int r;
        _cleanup_free_ char *a = capture_stderr(error_errno, INT_MIN, &r);
        CHECK_INTEQ(r, -EIO);
        CHECK(a && strstr(a, "BUG: "));
}

TEST(errno_returned_when_dropped_by_level)
{
        log_set_max_level(LOG_CRIT);
        volatile int zero = 0;
        int r;
        _cleanup_free_ char *a = capture_stderr(warning_errno, -EPERM, &r);
        CHECK_INTEQ(r, -EPERM);
        CHECK(a && !strstr(a, "frob"));
        _cleanup_free_ char *b = capture_stderr(warning_errno, zero, &r);
        CHECK_INTEQ(r, -EIO);
        log_set_max_level(LOG_INFO);
}

TEST(constant_check_is_free_for_variables)
{
        /* LOG_NONZERO_CT evaluates nothing: a side effect in the argument
         * happens once. */
        int calls = 0, e = EBUSY;
        fflush(stderr);
        int saved = dup(STDERR_FILENO), devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        int r = log_error_errno((calls++, e), "x");
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(devnull);
        CHECK_INTEQ(r, -EBUSY);
        CHECK_INTEQ(calls, 1);
}

TAP_MAIN
