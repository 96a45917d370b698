/* libpcre2-8, linked rather than dlopen()ed: every manifest of the stack
 * has patterns, so nearly every boot needs it, and Debian installs it
 * everywhere (grep, which is Essential, depends on libpcre2-8-0). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "regex.h"
#include "util.h"

#include <errno.h>

struct regex {
        pcre2_code *code;
};

/* ANCHORED and ENDANCHORED make the whole value match without wrapping
 * the pattern in text (a wrapper like "^(?:" P ")$" would let a P of
 * "a)|(b" escape it); DOLLAR_ENDONLY keeps a written '$' from matching
 * before a final newline, so "^[a-z]+$" refuses "abc\n". \C could split
 * a UTF-8 character. */
#define COMPILE_OPTIONS                                                                            \
        (PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOLLAR_ENDONLY |                   \
         PCRE2_NEVER_BACKSLASH_C)
#define PARENS_NEST_LIMIT 100

int regex_compile(const char *pattern, struct regex **ret, char **ret_error, size_t *ret_offset)
{
        pcre2_compile_context *cc = NULL;
        PCRE2_SIZE offset = 0;
        int code = 0, r = 0;
        struct regex *re = NULL;

        cc = pcre2_compile_context_create(NULL);
        if (!cc)
                return -ENOMEM;
        pcre2_set_max_pattern_length(cc, REGEX_MAX_PATTERN);
        pcre2_set_parens_nest_limit(cc, PARENS_NEST_LIMIT);
        re = calloc(1, sizeof(*re));
        if (!re) {
                r = -ENOMEM;
                goto out;
        }
        re->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, COMPILE_OPTIONS, &code,
                                 &offset, cc);
        if (!re->code) {
                PCRE2_UCHAR msg[256];
                if (code == PCRE2_ERROR_NOMEMORY) {
                        r = -ENOMEM;
                        goto out;
                }
                if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
                        snprintf((char *)msg, sizeof(msg), "error %d", code);
                *ret_error = strprintf("%s", (const char *)msg);
                if (!*ret_error) {
                        r = -ENOMEM;
                        goto out;
                }
                *ret_offset = offset;
                r = -EINVAL;
                goto out;
        }
        *ret = TAKE_PTR(re);
out:
        regex_free(re);
        pcre2_compile_context_free(cc);
        return r;
}

int regex_match(const struct regex *re, const char *value, size_t len)
{
        pcre2_match_context *mc = pcre2_match_context_create(NULL);
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        int r;

        if (!mc || !md) {
                r = -ENOMEM;
                goto out;
        }
        pcre2_set_match_limit(mc, REGEX_MATCH_LIMIT);
        pcre2_set_depth_limit(mc, REGEX_DEPTH_LIMIT);
        pcre2_set_heap_limit(mc, REGEX_HEAP_LIMIT);
        r = pcre2_match(re->code, (PCRE2_SPTR)value, len, 0, 0, md, mc);
        if (r >= 0)
                r = 1;
        else if (r == PCRE2_ERROR_NOMATCH)
                r = 0;
        else if (r == PCRE2_ERROR_MATCHLIMIT || r == PCRE2_ERROR_DEPTHLIMIT ||
                 r == PCRE2_ERROR_HEAPLIMIT)
                r = -E2BIG;
        else if (r <= PCRE2_ERROR_UTF8_ERR1 && r >= PCRE2_ERROR_UTF8_ERR21)
                r = -EILSEQ;
        else if (r == PCRE2_ERROR_NOMEMORY)
                r = -ENOMEM;
        else
                r = -EIO;
out:
        pcre2_match_data_free(md);
        pcre2_match_context_free(mc);
        return r;
}

void regex_free(struct regex *re)
{
        if (!re)
                return;
        pcre2_code_free(re->code);
        free(re);
}
