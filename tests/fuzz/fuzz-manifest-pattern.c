/* Input patterns through common/regex.c (libpcre2-8): patterns and the
 * values matched against them both come from users. The input is a
 * pattern, a NUL byte, then a value. A pattern that compiles must give a
 * match result or one of regex_match()'s documented errors, and the
 * whole-value rule must hold: a value with a byte appended past a match
 * of "x" never matches "x". */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "regex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *nul = memchr(data, 0, size);
        size_t plen = nul ? (size_t)(nul - data) : size;
        char *pattern = malloc(plen + 1);
        struct regex *re = NULL;
        char *error = NULL;
        size_t offset = 0;

        if (!pattern)
                return 0;
        memcpy(pattern, data, plen);
        pattern[plen] = '\0';
        int r = regex_compile(pattern, &re, &error, &offset);
        if (r == -EINVAL) {
                if (!error || re || offset > plen)
                        abort();
        } else if (r == 0) {
                if (!re || error)
                        abort();
                const char *value = nul ? (const char *)nul + 1 : "";
                size_t vlen = nul ? size - plen - 1 : 0;
                /* An exact-size copy, so ASan sees a read past its end. */
                char *v = malloc(vlen ? vlen : 1);
                if (v) {
                        memcpy(v, value, vlen);
                        int m = regex_match(re, v, vlen);
                        if (m != 0 && m != 1 && m != -E2BIG && m != -EILSEQ && m != -ENOMEM)
                                abort();
                        free(v);
                }
        } else if (r != -ENOMEM)
                abort();
        bool literal = plen > 0 && plen < 64 &&
                       strspn(pattern, "abcdefghijklmnopqrstuvwxyz0123456789") == plen;
        regex_free(re);
        free(error);
        free(pattern);

        /* A pattern of only letters and digits matches itself, and not
         * itself with a byte more. */
        if (literal) {
                struct regex *lit = NULL;
                char *e = NULL, buf[80];
                size_t off;
                memcpy(buf, data, plen);
                buf[plen] = '\0';
                if (regex_compile(buf, &lit, &e, &off) != 0)
                        abort();
                if (regex_match(lit, buf, plen) != 1)
                        abort();
                buf[plen] = 'x';
                if (regex_match(lit, buf, plen + 1) != 0)
                        abort();
                regex_free(lit);
        }
        return 0;
}
