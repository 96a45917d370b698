/* A tiny test harness: TEST(name) { ... } functions registered by a
 * constructor, CHECK()s that report the file and line, and a main that
 * runs them all and prints "ok - name" / "not ok - name" lines that
 * tests/run.sh counts. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tap_test {
        const char *name;
        void (*fn)(void);
};
extern struct tap_test tap_tests[256];
extern int tap_n_tests, tap_failed_now;

#define TEST(name)                                                                                 \
        static void test_##name(void);                                                             \
        __attribute__((constructor)) static void register_##name(void)                             \
        {                                                                                          \
                tap_tests[tap_n_tests++] = (struct tap_test){#name, test_##name};                  \
        }                                                                                          \
        static void test_##name(void)

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
                        tap_failed_now = 1;                                                        \
                }                                                                                  \
        } while (0)

/* REQUIRE(cond): like CHECK, but ends the test when cond is false (for
 * pointers the rest of the test dereferences). */
#define REQUIRE(cond)                                                                              \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "  %s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__,       \
                                #cond);                                                            \
                        tap_failed_now = 1;                                                        \
                        return;                                                                    \
                }                                                                                  \
        } while (0)

#define CHECK_STREQ(a, b)                                                                          \
        do {                                                                                       \
                const char *_a = (a), *_b = (b);                                                   \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                           \
                        fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__,         \
                                _a ? _a : "(null)", _b ? _b : "(null)");                           \
                        tap_failed_now = 1;                                                        \
                }                                                                                  \
        } while (0)

#define CHECK_INTEQ(a, b)                                                                          \
        do {                                                                                       \
                long long _a = (long long)(a), _b = (long long)(b);                                \
                if (_a != _b) {                                                                    \
                        fprintf(stderr, "  %s:%d: %s == %lld, expected %lld\n", __FILE__,          \
                                __LINE__, #a, _a, _b);                                             \
                        tap_failed_now = 1;                                                        \
                }                                                                                  \
        } while (0)

#define TAP_MAIN                                                                                   \
        struct tap_test tap_tests[256];                                                            \
        int tap_n_tests, tap_failed_now;                                                           \
        int main(int argc, char **argv)                                                            \
        {                                                                                          \
                int failed = 0;                                                                    \
                for (int i = 0; i < tap_n_tests; i++) {                                            \
                        if (argc > 1 && strcmp(argv[1], tap_tests[i].name) != 0)                   \
                                continue;                                                          \
                        tap_failed_now = 0;                                                        \
                        tap_tests[i].fn();                                                         \
                        printf("%s - %s\n", tap_failed_now ? "not ok" : "ok", tap_tests[i].name);  \
                        fflush(stdout);                                                            \
                        failed += tap_failed_now;                                                  \
                }                                                                                  \
                return failed ? 1 : 0;                                                             \
        }
