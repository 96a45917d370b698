/* Input patterns (a manifest's validation.pattern) in the dialect their
 * authors write: Perl-compatible regular expressions as Python's re,
 * JavaScript and PCRE read them ("[a-z0-9\-\.]", "\d", "(?:...)"),
 * through libpcre2-8. The only file that includes pcre2.h.
 *
 * A pattern must match the whole value, as if written ^(?:...)$ with a
 * '$' that matches only at the very end (never before a final newline).
 * Patterns and values are UTF-8; \d, \w and \s are ASCII, as in
 * JavaScript without the u flag. Patterns and values come from users, so
 * compiling and matching are bounded (REGEX_* below): a match that hits a
 * bound is an error, never a silent yes or no. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define REGEX_MAX_PATTERN 4096    /* bytes */
#define REGEX_MATCH_LIMIT 1000000 /* pcre2_set_match_limit(): backtracking steps */
#define REGEX_DEPTH_LIMIT 10000   /* pcre2_set_depth_limit(): nested backtracking points */
#define REGEX_HEAP_LIMIT  (16384) /* pcre2_set_heap_limit(), KiB */

struct regex;

/* Compiles pattern (a NUL-terminated string: a NUL inside it is refused
 * by the caller's format anyway). Returns 0, or -EINVAL when the pattern
 * is not valid: then *ret_error is pcre2's message ("missing closing
 * parenthesis") and *ret_offset the byte offset in pattern where pcre2
 * found the problem; or -ENOMEM. *ret is written only on success. */
int regex_compile(const char *pattern, struct regex **ret, char **ret_error, size_t *ret_offset);

/* Whether value (len bytes) matches as a whole: 1 yes, 0 no, -E2BIG
 * when the match hit one of the limits, -EILSEQ when value is not valid
 * UTF-8, -ENOMEM, or -EIO for another pcre2 error. */
int regex_match(const struct regex *re, const char *value, size_t len);

void regex_free(struct regex *re);
static inline void regex_freep(struct regex **re)
{
        regex_free(*re);
}
#define _cleanup_regex_ __attribute__((cleanup(regex_freep)))
