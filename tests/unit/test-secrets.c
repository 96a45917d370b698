/* The secrets store: each kind's alphabet and length, reuse across loads,
 * a second save that touches nothing (bytes, inode and mtime), the
 * file's and directory's modes, and every refusal: a store others can
 * read, corrupt JSON with its line:column, wrong types, an unwritable
 * place. */
#include <errno.h>
#include <sys/stat.h>

#include "crypto.h"
#include "fs.h"
#include "util.h"
#include "../../imagegen/secrets.h"
#include "tap.h"

static char *make_tmpdir(void)
{
        const char *base = getenv("TESTTMP");
        char *t = strprintf("%s/test-secrets.XXXXXX", base && *base ? base : "/tmp");
        if (!t || !mkdtemp(t))
                abort();
        return t;
}

static void drop_tmpdir(char *dir)
{
        if (dir && !getenv("KEEP"))
                rm_rf(dir);
        free(dir);
}

static bool all_in(const char *s, const char *alphabet)
{
        return s[strspn(s, alphabet)] == '\0';
}

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

static void write_text(const char *path, const char *text, mode_t mode)
{
        if (write_file_atomic(path, text, strlen(text), mode, (uid_t)-1, (gid_t)-1) < 0)
                abort();
}

/* A store at path written with the given text (mode 0600); the error of
 * loading it, or NULL when it loaded. */
static char *load_error(const char *path, const char *text)
{
        struct secrets *s = NULL;
        char *err = NULL;

        write_text(path, text, 0600);
        if (secrets_load(path, &s, &err) == 0) {
                secrets_free(s);
                return NULL;
        }
        return err ? err : xstrdup("(no message)");
}

TEST(missing_file_is_an_empty_store)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = strprintf("%s/site/.imagegen/state.json", dir), *err = NULL;
        _cleanup_free_ char *sub = strprintf("%s/site", dir);
        struct secrets *s = NULL;

        REQUIRE(secrets_load(path, &s, &err) == 0);
        CHECK(!secrets_dirty(s));
        CHECK_INTEQ(secrets_save(s, &err), 0);
        CHECK(!path_exists(path));
        CHECK(!path_exists(sub)); /* nothing generated: nothing created */
        secrets_free(s);
        drop_tmpdir(dir);
}

TEST(each_kind_has_its_alphabet_and_length)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = strprintf("%s/state.json", dir), *err = NULL;
        struct secrets *s = NULL;

        REQUIRE(secrets_load(path, &s, &err) == 0);
        const char *pw = secrets_get(s, "postgres.password", SECRET_PASSWORD);
        const char *tok = secrets_get(s, "controller.token", SECRET_TOKEN);
        const char *key = secrets_get(s, "agent_manager.api_key", SECRET_API_KEY);
        REQUIRE(pw && tok && key);
        CHECK_INTEQ(strlen(pw), 32);
        CHECK(all_in(pw, ALNUM));
        CHECK_INTEQ(strlen(tok), 64);
        CHECK(all_in(tok, "0123456789abcdef"));
        CHECK_INTEQ(strlen(key), 40);
        CHECK(all_in(key, ALNUM));
        /* agent-manager's ENCRYPTION_KEY: base64 that decodes to exactly
         * 32 bytes (the app exits otherwise). */
        const char *k32 = secrets_get(s, "agent-manager.encryption_key", SECRET_KEY32);
        REQUIRE(k32);
        CHECK_INTEQ(strlen(k32), 44);
        _cleanup_free_ unsigned char *raw = NULL;
        size_t raw_len = 0;
        CHECK(base64_decode(k32, strlen(k32), &raw, &raw_len, NULL) == 0);
        CHECK_INTEQ(raw_len, 32);
        CHECK(secrets_dirty(s));
        /* The same name is the same secret, whatever kind is asked. */
        CHECK(secrets_get(s, "postgres.password", SECRET_PASSWORD) == pw);
        CHECK_STREQ(secrets_get(s, "postgres.password", SECRET_TOKEN), pw);
        /* Another name is another secret. */
        const char *pw2 = secrets_get(s, "redis.password", SECRET_PASSWORD);
        REQUIRE(pw2);
        CHECK(strcmp(pw, pw2) != 0);
        secrets_free(s);
        drop_tmpdir(dir);
}

/* 300 passwords are 9600 characters: every one of the 62 appears unless
 * the alphabet is wrong (the odds of a miss are below 1e-40). */
TEST(passwords_use_the_whole_alphabet)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = strprintf("%s/state.json", dir), *err = NULL;
        struct secrets *s = NULL;
        bool seen[256] = {false};

        REQUIRE(secrets_load(path, &s, &err) == 0);
        for (int i = 0; i < 300; i++) {
                char name[32];
                snprintf(name, sizeof(name), "pw%d", i);
                const char *v = secrets_get(s, name, SECRET_PASSWORD);
                REQUIRE(v);
                for (const char *p = v; *p; p++)
                        seen[(unsigned char)*p] = true;
        }
        int n = 0;
        for (int c = 0; c < 256; c++)
                n += seen[c];
        CHECK_INTEQ(n, 62);
        for (const char *p = ALNUM; *p; p++)
                CHECK(seen[(unsigned char)*p]);
        secrets_free(s);
        drop_tmpdir(dir);
}

TEST(saved_store_is_private_and_reused)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *state_dir = strprintf("%s/site/.imagegen", dir);
        _cleanup_free_ char *path = strprintf("%s/state.json", state_dir), *err = NULL;
        _cleanup_free_ char *pw = NULL, *tok = NULL;
        struct secrets *s = NULL;
        struct stat st;

        REQUIRE(secrets_load(path, &s, &err) == 0);
        pw = xstrdup(secrets_get(s, "postgres.password", SECRET_PASSWORD));
        tok = xstrdup(secrets_get(s, "controller.token", SECRET_TOKEN));
        CHECK_INTEQ(secrets_save(s, &err), 1);
        CHECK(!secrets_dirty(s));
        CHECK_INTEQ(secrets_save(s, &err), 0);
        secrets_free(s);

        REQUIRE(stat(path, &st) == 0);
        CHECK_INTEQ(st.st_mode & 07777, 0600);
        REQUIRE(stat(state_dir, &st) == 0);
        CHECK_INTEQ(st.st_mode & 07777, 0700);

        REQUIRE(secrets_load(path, &s, &err) == 0);
        CHECK_STREQ(secrets_get(s, "postgres.password", SECRET_PASSWORD), pw);
        CHECK_STREQ(secrets_get(s, "controller.token", SECRET_TOKEN), tok);
        CHECK(!secrets_dirty(s));
        secrets_free(s);
        drop_tmpdir(dir);
}

/* Rendering twice changes nothing: the second save writes nothing, so the
 * file keeps its bytes, its inode and its mtime. */
TEST(second_render_leaves_the_file_alone)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = strprintf("%s/state.json", dir), *err = NULL;
        _cleanup_free_ char *before = NULL, *after = NULL;
        struct secrets *s = NULL;
        struct stat st1, st2;
        const char *names[] = {"a.password", "b.token", "c.api_key", "d.encryption_key"};
        const enum secret_kind kinds[] = {SECRET_PASSWORD, SECRET_TOKEN, SECRET_API_KEY,
                                          SECRET_KEY32};

        for (int round = 0; round < 2; round++) {
                REQUIRE(secrets_load(path, &s, &err) == 0);
                for (size_t i = 0; i < ARRAY_SIZE(names); i++)
                        CHECK(secrets_get(s, names[i], kinds[i]) != NULL);
                CHECK_INTEQ(secrets_save(s, &err), round == 0 ? 1 : 0);
                secrets_free(s);
                s = NULL;
                if (round == 0) {
                        REQUIRE(stat(path, &st1) == 0);
                        REQUIRE(read_file(path, 1 << 20, &before, NULL) == 0);
                }
        }
        REQUIRE(stat(path, &st2) == 0);
        REQUIRE(read_file(path, 1 << 20, &after, NULL) == 0);
        CHECK_STREQ(after, before);
        CHECK(st1.st_ino == st2.st_ino);
        CHECK(st1.st_mtim.tv_sec == st2.st_mtim.tv_sec &&
              st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec);
        drop_tmpdir(dir);
}

/* A new secret is added next to the old ones, which stay as they were, and
 * keys imagegen does not know are kept. */
TEST(new_secret_keeps_the_old_ones_and_other_keys)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = strprintf("%s/state.json", dir), *err = NULL;
        _cleanup_free_ char *text = NULL;
        struct secrets *s = NULL;

        write_text(path,
                   "{\"version\": 1, \"note\": {\"by\": \"hand\"},\n"
                   " \"secrets\": {\"redis.password\": \"chosen by hand $#'\\\"\"}}\n",
                   0600);
        REQUIRE(secrets_load(path, &s, &err) == 0);
        CHECK_STREQ(secrets_get(s, "redis.password", SECRET_PASSWORD), "chosen by hand $#'\"");
        CHECK(!secrets_dirty(s));
        const char *tok = secrets_get(s, "controller.token", SECRET_TOKEN);
        REQUIRE(tok);
        _cleanup_free_ char *tok_copy = xstrdup(tok);
        CHECK_INTEQ(secrets_save(s, &err), 1);
        secrets_free(s);

        REQUIRE(read_file(path, 1 << 20, &text, NULL) == 0);
        CHECK(strstr(text, "\"note\"") && strstr(text, "\"hand\""));
        REQUIRE(secrets_load(path, &s, &err) == 0);
        CHECK_STREQ(secrets_get(s, "redis.password", SECRET_PASSWORD), "chosen by hand $#'\"");
        CHECK_STREQ(secrets_get(s, "controller.token", SECRET_TOKEN), tok_copy);
        CHECK(!secrets_dirty(s));
        secrets_free(s);
        drop_tmpdir(dir);
}

TEST(store_readable_by_others_is_refused)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = strprintf("%s/state.json", dir);
        const mode_t modes[] = {0644, 0640, 0604, 0660, 0602};

        for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
                _cleanup_free_ char *err = NULL;
                struct secrets *s = NULL;
                write_text(path, "{\"version\": 1, \"secrets\": {}}\n", modes[i]);
                CHECK_INTEQ(secrets_load(path, &s, &err), -EPERM);
                CHECK(s == NULL);
                REQUIRE(err);
                CHECK(startswith(err, path));
                CHECK(strstr(err, "too open") != NULL);
                CHECK(strstr(err, "chmod 600") != NULL);
        }
        /* 0400 is fine: only the owner can read it. */
        {
                _cleanup_free_ char *err = NULL;
                struct secrets *s = NULL;
                write_text(path, "{\"version\": 1, \"secrets\": {}}\n", 0400);
                CHECK_INTEQ(secrets_load(path, &s, &err), 0);
                secrets_free(s);
        }
        drop_tmpdir(dir);
}

TEST(corrupt_store_names_file_line_and_column)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = strprintf("%s/state.json", dir);
        _cleanup_free_ char *want = strprintf("%s:3:", path);
        const char *text = "{\"version\": 1,\n"
                           " \"secrets\": {\n"
                           "  \"a\": \"x\" \"b\": \"y\"}}\n";
        _cleanup_free_ char *err = load_error(path, text);
        _cleanup_free_ char *after = NULL;

        REQUIRE(err);
        CHECK(startswith(err, want));
        CHECK(strstr(err, "invalid JSON") != NULL);
        CHECK(strstr(err, "corrupt") != NULL);
        /* Loading never touches the file. */
        REQUIRE(read_file(path, 1 << 20, &after, NULL) == 0);
        CHECK_STREQ(after, text);
        drop_tmpdir(dir);
}

TEST(truncated_or_empty_store_is_an_error)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = strprintf("%s/state.json", dir);
        _cleanup_free_ char *e1 = load_error(path, "{\"version\": 1, \"secrets\": {\"a\": \"x");
        _cleanup_free_ char *e2 = load_error(path, "");
        _cleanup_free_ char *e3 = load_error(path, "{\"version\": 1} trailing");

        CHECK(e1 && startswith(e1, path) && strstr(e1, "invalid JSON"));
        CHECK(e2 && startswith(e2, path) && strstr(e2, "invalid JSON"));
        CHECK(e3 && startswith(e3, path) && strstr(e3, ":1:"));
        drop_tmpdir(dir);
}

TEST(wrong_shapes_are_named)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = strprintf("%s/state.json", dir);
        _cleanup_free_ char *e1 = load_error(path, "[1, 2]");
        _cleanup_free_ char *e2 = load_error(path, "{\"secrets\": [\"a\"]}");
        _cleanup_free_ char *e3 = load_error(path, "{\"secrets\": {\"db.password\": 12}}");
        _cleanup_free_ char *e4 = load_error(path, "{\"secrets\": {\"db.password\": {}}}");
        _cleanup_free_ char *e5 = load_error(path, "{\"secrets\": {\"db.password\": \"\"}}");
        _cleanup_free_ char *e6 = load_error(path, "{\"version\": 2, \"secrets\": {}}");
        _cleanup_free_ char *ok = load_error(path, "{\"secrets\": {\"db.password\": \"x\"}}");

        CHECK(e1 && startswith(e1, path) && strstr(e1, "top level"));
        CHECK(e2 && strstr(e2, "\"secrets\" must be an object"));
        CHECK(e3 && strstr(e3, "\"db.password\"") && strstr(e3, "must be a string"));
        CHECK(e4 && strstr(e4, "\"db.password\"") && strstr(e4, "must be a string"));
        CHECK(e5 && strstr(e5, "\"db.password\"") && strstr(e5, "empty"));
        CHECK(e6 && strstr(e6, "version"));
        CHECK(ok == NULL);
        drop_tmpdir(dir);
}

TEST(unwritable_place_is_an_error_and_the_store_stays_dirty)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *file = strprintf("%s/.imagegen", dir);
        _cleanup_free_ char *path = strprintf("%s/state.json", file), *err = NULL;
        struct secrets *s = NULL;

        REQUIRE(secrets_load(path, &s, &err) == 0);
        REQUIRE(secrets_get(s, "x.password", SECRET_PASSWORD));
        /* The state directory's place is taken by a file meanwhile. */
        write_text(file, "not a directory\n", 0644);
        CHECK(secrets_save(s, &err) < 0);
        REQUIRE(err);
        CHECK(startswith(err, path));
        CHECK(secrets_dirty(s));
        secrets_free(s);
        drop_tmpdir(dir);
}

TEST(serials_are_kept_per_key_raised_on_change_and_read_back)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = strprintf("%s/state.json", dir), *err = NULL;
        struct secrets *s = NULL;
        const char *digest = NULL;
        long long n = 0, got = 0;

        REQUIRE(secrets_load(path, &s, &err) == 0);
        CHECK_INTEQ(secrets_serial_get(s, "web-1/bundle", &got, &digest), -ENOENT);
        CHECK_INTEQ(secrets_serial(s, "web-1/bundle", "aa", &n), 0);
        CHECK(n == 1);
        CHECK_INTEQ(secrets_serial(s, "web-2/bundle", "bb", &n), 0);
        CHECK(n == 1);
        CHECK_INTEQ(secrets_serial(s, "web-1/bundle", "cc", &n), 0);
        CHECK(n == 2);
        CHECK_INTEQ(secrets_serial_get(s, "web-1/bundle", &got, &digest), 0);
        CHECK(got == 2 && digest && streq(digest, "cc"));
        CHECK(secrets_dirty(s));
        CHECK_INTEQ(secrets_save(s, &err), 1);
        secrets_free(s);
        s = NULL;

        /* Loaded again: the same digest keeps, nothing to save. */
        REQUIRE(secrets_load(path, &s, &err) == 0);
        CHECK_INTEQ(secrets_serial(s, "web-1/bundle", "cc", &n), 0);
        CHECK(n == 2);
        CHECK_INTEQ(secrets_serial(s, "web-2/bundle", "bb", &n), 0);
        CHECK(n == 1);
        CHECK(!secrets_dirty(s));
        CHECK(streq(secrets_path(s), path));
        secrets_free(s);
        s = NULL;

        /* Entries imagegen did not write are refused, not restarted at 1. */
        write_text(path,
                   "{\"serials\": {\"a\": {\"serial\": \"x\", \"sha256\": \"aa\"}, \"b\": 3, "
                   "\"c\": {\"serial\": -1, \"sha256\": \"aa\"}, \"d\": {\"serial\": 1}}}",
                   0600);
        REQUIRE(secrets_load(path, &s, &err) == 0);
        CHECK_INTEQ(secrets_serial(s, "a", "aa", &n), -EBADMSG);
        CHECK_INTEQ(secrets_serial(s, "b", "aa", &n), -EBADMSG);
        CHECK_INTEQ(secrets_serial(s, "c", "aa", &n), -EBADMSG);
        CHECK_INTEQ(secrets_serial(s, "d", "aa", &n), -EBADMSG);
        CHECK_INTEQ(secrets_serial_get(s, "d", &got, &digest), -EBADMSG);
        CHECK(!secrets_dirty(s));
        secrets_free(s);
        s = NULL;
        write_text(path, "{\"serials\": [1]}", 0600);
        REQUIRE(secrets_load(path, &s, &err) == 0);
        CHECK_INTEQ(secrets_serial(s, "a", "aa", &n), -EBADMSG);
        CHECK_INTEQ(secrets_serial_get(s, "a", &got, &digest), -EBADMSG);
        secrets_free(s);
        drop_tmpdir(dir);
}

TAP_MAIN
