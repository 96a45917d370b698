/* common/redis.c's URL parser (the connection itself is tested against a
 * real redis-server in tests/e2e/test-agent.sh). */
#include <errno.h>

#include "redis.h"
#include "util.h"
#include "tap.h"

TEST(url_forms)
{
        static const struct {
                const char *url, *host, *user, *password;
                int port, db;
                bool tls;
        } ok[] = {
                {"redis://127.0.0.1", "127.0.0.1", NULL, NULL, 6379, 0, false},
                {"redis://localhost:6380/2", "localhost", NULL, NULL, 6380, 2, false},
                {"redis://:pa%40ss@h:1", "h", NULL, "pa@ss", 1, 0, false},
                {"redis://agent:pw@redis.example.org:6379/0", "redis.example.org", "agent", "pw",
                 6379, 0, false},
                {"redis://secret@h", "h", NULL, "secret", 6379, 0, false},
                {"rediss://u:p@[::1]:7000", "::1", "u", "p", 7000, 0, true},
                {"redis://h/", "h", NULL, NULL, 6379, 0, false},
        };
        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                struct redis_url u;
                _cleanup_free_ char *err = NULL;
                int k = redis_url_parse(ok[i].url, &u, &err);
                if (k < 0)
                        fprintf(stderr, "  %s: %s\n", ok[i].url, err);
                REQUIRE(k == 0);
                CHECK(streq(u.host, ok[i].host));
                CHECK(streq_ptr(u.user, ok[i].user));
                CHECK(streq_ptr(u.password, ok[i].password));
                CHECK(u.port == ok[i].port && u.db == ok[i].db && u.tls == ok[i].tls);
                redis_url_done(&u);
        }
}

TEST(url_refused_without_the_password_in_the_error)
{
        static const char *const bad[] = {
                "http://h",     "redis://",    "redis://h:0",           "redis://h:65536",
                "redis://h:x",  "redis://h/x", "redis://h/-1",          "redis://h?db=1",
                "redis://u:@h", "redis://:@h", "redis://:p%zzsecret@h", "redis://[::1",
                "redis://h h",  "redis://h\n", "redis://h:1junk",       "redis://:p%00q@h",
                "redis://[]:1", "redis://a_b",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct redis_url u;
                _cleanup_free_ char *err = NULL;
                CHECK(redis_url_parse(bad[i], &u, &err) == -EINVAL);
                CHECK(err && !strstr(err, "secret"));
        }
}

TEST(rediss_connects_over_tcp_first)
{
        struct redis_url u;
        struct redis *r = NULL;
        _cleanup_free_ char *err = NULL;
        REQUIRE(redis_url_parse("rediss://127.0.0.1:1", &u, &err) == 0);
        CHECK(u.tls);
        int k = redis_connect(&u, 1000, &r, &err);
        CHECK(k == -ECONNREFUSED); /* hiredict is a build dependency */
        CHECK(!redis_error_is_final(-ECONNREFUSED));
        CHECK(r == NULL);
        redis_url_done(&u);
}

TEST(tls_client_cert_needs_its_key)
{
        struct redis_url u;
        struct redis *r = NULL;
        _cleanup_free_ char *err = NULL;
        REQUIRE(redis_url_parse("rediss://127.0.0.1:1", &u, &err) == 0);
        u.tls_cert_file = xstrdup("/nonexistent/client.pem");
        int k = redis_connect(&u, 1000, &r, &err);
        /* Refused before any connection is made, and final. */
        CHECK(k == -ENOKEY);
        CHECK(err && strstr(err, "key file"));
        CHECK(redis_error_is_final(k));
        CHECK(r == NULL);
        redis_url_done(&u);
}

TEST(connect_refused_fails_and_retry_stops)
{
        struct redis_url u;
        struct redis *r = NULL;
        _cleanup_free_ char *err = NULL;
        /* Port 1 on loopback: nothing listens there in a test. */
        REQUIRE(redis_url_parse("redis://127.0.0.1:1", &u, &err) == 0);
        int k = redis_connect(&u, 1000, &r, &err);
        CHECK(k < 0 && r == NULL && err);
        redis_url_done(&u);
}

TAP_MAIN
