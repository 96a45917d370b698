/* The job queue's wire format (common/job.c) and the agent's own checks
 * (firstboot/jobs.c): every refusal has its own reason, and a job that
 * passes comes out with its fields. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "crypto.h"
#include "fs.h"
#include "job.h"
#include "json.h"
#include "util.h"
#include "../../firstboot/jobs.h"
#include "tap.h"

#define SECRET "s3cr3t-shared-key"
#define NOW    1700000000LL
#define SKEW   300
#define JOB_ID "0f8fad5b-d9cb-469f-a165-70867728950e"
#define AGENT  "web-1"

static const struct job_verify_options opts = {
        .agent_id = AGENT,
        .secret = SECRET,
        .secret_len = sizeof(SECRET) - 1,
        .now = NOW,
        .max_skew_s = SKEW,
        .max_bytes = 4096,
};

static char *payload_text(const char *job_id, const char *agent, const char *app, long long issued,
                          const char *extra)
{
        return strprintf("{\"job_id\":\"%s\",\"agent_id\":\"%s\",\"app_id\":\"%s\","
                         "\"issued_at\":%lld%s}",
                         job_id, agent, app, issued, extra ? extra : "");
}

static char *signed_element(const char *payload)
{
        char *e = NULL;
        CHECK(job_sign(payload, SECRET, strlen(SECRET), &e) == 0);
        return e;
}

/* Verifies text; returns the reason, and the job through *ret when accepted. */
static int verify(const char *text, struct job **ret, struct job_refusal_info *info)
{
        struct job *j = NULL;
        int k = job_verify(text, strlen(text), &opts, &j, info);
        if (ret)
                *ret = j;
        else
                job_free(j);
        return k;
}

static int verify_payload(const char *payload, struct job_refusal_info *info)
{
        _cleanup_free_ char *e = signed_element(payload);
        return verify(e, NULL, info);
}

TEST(accepted_job_has_its_fields)
{
        _cleanup_free_ char *p = payload_text(
                JOB_ID, AGENT, "hello", NOW - 10,
                ",\"inputs\":{\"name\":\"x\",\"port\":8080,\"on\":true},\"user_id\":\"u-7\","
                "\"expires_at\":1700000100");
        _cleanup_free_ char *e = signed_element(p);
        struct job_refusal_info info;
        struct job *j = NULL;

        REQUIRE(verify(e, &j, &info) == 0);
        REQUIRE(j);
        CHECK(streq(j->job_id, JOB_ID));
        CHECK(streq(j->agent_id, AGENT));
        CHECK(streq(j->app_id, "hello"));
        CHECK(streq_ptr(j->user_id, "u-7"));
        CHECK(j->issued_at == NOW - 10);
        CHECK(j->expires_at == 1700000100);
        CHECK(j->inputs && j->inputs->kind == NODE_MAP && j->inputs->n_items == 3);
        CHECK(streq_ptr(node_get_str(j->inputs, "port"), "8080"));
        job_free(j);
}

TEST(accepted_without_inputs_has_an_empty_map)
{
        _cleanup_free_ char *p = payload_text(JOB_ID, AGENT, "hello", NOW, NULL);
        _cleanup_free_ char *e = signed_element(p);
        struct job_refusal_info info;
        struct job *j = NULL;

        REQUIRE(verify(e, &j, &info) == 0);
        REQUIRE(j);
        CHECK(j->inputs && j->inputs->kind == NODE_MAP && j->inputs->n_items == 0);
        CHECK(j->user_id == NULL && j->expires_at == 0);
        job_free(j);
}

TEST(oversize)
{
        struct job_refusal_info info;
        _cleanup_free_ char *big = xmalloc(5000);
        memset(big, ' ', 4999);
        big[4999] = '\0';
        CHECK(verify(big, NULL, &info) == JOB_OVERSIZE);
        CHECK(streq(job_refusal_to_string(info.reason), "oversize"));
        job_refusal_info_done(&info);
}

TEST(malformed_json)
{
        static const char *const cases[] = {
                "",
                "{",
                "[]",
                "\"payload\"",
                "{\"payload\": 1, \"signature\": \"sha256=00\"}",
                "{\"signature\": \"sha256=00\"}",
                "{\"payload\": \"{}\", \"signature\": \"x\", \"extra\": 1}",
                "{\"payload\": \"{}\"} trailing",
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct job_refusal_info info;
                CHECK(verify(cases[i], NULL, &info) == JOB_MALFORMED);
                CHECK(streq(job_refusal_to_string(info.reason), "malformed"));
                CHECK(info.message && *info.message);
                job_refusal_info_done(&info);
        }
}

TEST(missing_signature)
{
        _cleanup_free_ char *p = payload_text(JOB_ID, AGENT, "hello", NOW, NULL);
        _cleanup_node_ struct node *env = node_new(NODE_MAP);
        _cleanup_free_ char *text = NULL;
        struct job_refusal_info info;

        node_set_str(env, "payload", p);
        REQUIRE(json_format(env, false, &text) == 0);
        CHECK(verify(text, NULL, &info) == JOB_NO_SIGNATURE);
        CHECK(streq(job_refusal_to_string(info.reason), "missing_signature"));
        /* The id is read, for telling the panel, but not trusted. */
        CHECK(streq_ptr(info.job_id, JOB_ID) && !info.authenticated);
        job_refusal_info_done(&info);

        node_set_str(env, "signature", "");
        free(text);
        text = NULL;
        REQUIRE(json_format(env, false, &text) == 0);
        CHECK(verify(text, NULL, &info) == JOB_NO_SIGNATURE);
        job_refusal_info_done(&info);
}

TEST(bad_signature)
{
        _cleanup_free_ char *p = payload_text(JOB_ID, AGENT, "hello", NOW, NULL);
        char hex[SHA256_HEX_SIZE];
        const char *wrong_key = "another-secret";
        hmac_sha256_hex(wrong_key, strlen(wrong_key), p, strlen(p), hex);
        _cleanup_free_ char *sig_wrong_key = strprintf("sha256=%s", hex);
        hmac_sha256_hex(SECRET, strlen(SECRET), p, strlen(p), hex);
        _cleanup_free_ char *sig_upper = strprintf("sha256=%s", hex);
        for (char *c = sig_upper + 7; *c; c++)
                *c = (char)toupper((unsigned char)*c);
        _cleanup_free_ char *sig_short = strprintf("sha256=%.62s", hex);
        _cleanup_free_ char *sig_sha1 = strprintf("sha1=%s", hex);
        _cleanup_free_ char *sig_nonhex = strprintf("sha256=%.63sg", hex);
        const char *sigs[] = {sig_wrong_key, sig_short, sig_sha1, sig_nonhex};

        for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
                _cleanup_node_ struct node *env = node_new(NODE_MAP);
                _cleanup_free_ char *text = NULL;
                struct job_refusal_info info;
                node_set_str(env, "payload", p);
                node_set_str(env, "signature", sigs[i]);
                REQUIRE(json_format(env, false, &text) == 0);
                CHECK(verify(text, NULL, &info) == JOB_BAD_SIGNATURE);
                CHECK(streq(job_refusal_to_string(info.reason), "bad_signature"));
                CHECK(!info.authenticated);
                job_refusal_info_done(&info);
        }

        /* A payload changed after signing (one byte). */
        _cleanup_free_ char *e = signed_element(p);
        char *at = strstr(e, "hello");
        REQUIRE(at);
        at[0] = 'j';
        struct job_refusal_info info;
        CHECK(verify(e, NULL, &info) == JOB_BAD_SIGNATURE);
        job_refusal_info_done(&info);

        /* Upper-case hex is the same signature. */
        _cleanup_node_ struct node *env = node_new(NODE_MAP);
        _cleanup_free_ char *text = NULL;
        node_set_str(env, "payload", p);
        node_set_str(env, "signature", sig_upper);
        REQUIRE(json_format(env, false, &text) == 0);
        CHECK(verify(text, NULL, &info) == 0);
        job_refusal_info_done(&info);
}

TEST(malformed_payload_fields)
{
        const char *const bad[] = {
                "not json",
                "[1]",
                "{\"job_id\":\"" JOB_ID "\"}",
                "{\"job_id\":\"0F8FAD5B-D9CB-469F-A165-70867728950E\",\"agent_id\":\"" AGENT
                "\",\"app_id\":\"hello\",\"issued_at\":1700000000}",
                "{\"job_id\":\"" JOB_ID "\",\"agent_id\":\"a b\",\"app_id\":\"hello\","
                "\"issued_at\":1700000000}",
                "{\"job_id\":\"" JOB_ID "\",\"agent_id\":\"" AGENT
                "\",\"app_id\":\"../etc\",\"issued_at\":1700000000}",
                "{\"job_id\":\"" JOB_ID "\",\"agent_id\":\"" AGENT
                "\",\"app_id\":\"hello\",\"issued_at\":\"1700000000\"}",
                "{\"job_id\":\"" JOB_ID "\",\"agent_id\":\"" AGENT
                "\",\"app_id\":\"hello\",\"issued_at\":1700000000.5}",
                "{\"job_id\":\"" JOB_ID "\",\"agent_id\":\"" AGENT
                "\",\"app_id\":\"hello\",\"issued_at\":1700000000,\"expires_at\":1699999999}",
                "{\"job_id\":\"" JOB_ID "\",\"agent_id\":\"" AGENT
                "\",\"app_id\":\"hello\",\"issued_at\":1700000000,\"inputs\":[]}",
                "{\"job_id\":\"" JOB_ID "\",\"agent_id\":\"" AGENT
                "\",\"app_id\":\"hello\",\"issued_at\":1700000000,\"inputs\":{\"a\":{}}}",
                "{\"job_id\":\"" JOB_ID "\",\"agent_id\":\"" AGENT
                "\",\"app_id\":\"hello\",\"issued_at\":1700000000,\"user_id\":\"a\\nb\"}",
                "{\"job_id\":\"" JOB_ID "\",\"agent_id\":\"" AGENT
                "\",\"app_id\":\"hello\",\"issued_at\":1700000000,\"script\":\"rm -rf /\"}",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct job_refusal_info info;
                int k = verify_payload(bad[i], &info);
                if (k != JOB_MALFORMED)
                        fprintf(stderr, "  case %zu: %d %s\n", i, k, info.message);
                CHECK(k == JOB_MALFORMED);
                job_refusal_info_done(&info);
        }
}

TEST(other_agent)
{
        _cleanup_free_ char *p = payload_text(JOB_ID, "web-2", "hello", NOW, NULL);
        struct job_refusal_info info;
        CHECK(verify_payload(p, &info) == JOB_WRONG_AGENT);
        CHECK(streq(job_refusal_to_string(info.reason), "wrong_agent"));
        CHECK(info.authenticated && streq_ptr(info.job_id, JOB_ID));
        job_refusal_info_done(&info);
}

TEST(expired)
{
        _cleanup_free_ char *p =
                payload_text(JOB_ID, AGENT, "hello", NOW - 60, ",\"expires_at\":1700000000");
        struct job_refusal_info info;
        CHECK(verify_payload(p, &info) == JOB_EXPIRED);
        CHECK(streq(job_refusal_to_string(info.reason), "expired"));
        job_refusal_info_done(&info);
}

TEST(issued_at_outside_the_skew)
{
        long long when[] = {NOW - SKEW - 1, NOW + SKEW + 1, 1};
        for (size_t i = 0; i < ARRAY_SIZE(when); i++) {
                _cleanup_free_ char *p = payload_text(JOB_ID, AGENT, "hello", when[i], NULL);
                struct job_refusal_info info;
                CHECK(verify_payload(p, &info) == JOB_SKEW);
                CHECK(streq(job_refusal_to_string(info.reason), "skew"));
                job_refusal_info_done(&info);
        }
        long long ok[] = {NOW - SKEW, NOW + SKEW};
        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                _cleanup_free_ char *p = payload_text(JOB_ID, AGENT, "hello", ok[i], NULL);
                struct job_refusal_info info;
                CHECK(verify_payload(p, &info) == 0);
                job_refusal_info_done(&info);
        }
}

TEST(reasons_are_distinct)
{
        for (int a = 0; a < JOB_REFUSAL_MAX; a++)
                for (int b = a + 1; b < JOB_REFUSAL_MAX; b++)
                        CHECK(!streq(job_refusal_to_string(a), job_refusal_to_string(b)));
}

static char *make_tmpdir(void)
{
        char *d = xstrdup("/tmp/test-job-XXXXXX");
        if (!mkdtemp(d)) {
                perror("mkdtemp");
                abort();
        }
        return d;
}

TEST(replay_is_remembered_across_opens)
{
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_close_ int rootfd = root_open_dir(dir);
        const char *other = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
        REQUIRE(rootfd >= 0);

        CHECK(jobs_seen_record(rootfd, JOBS_SEEN_FILE, JOB_ID, NOW + SKEW, NOW) == 0);
        CHECK(jobs_seen_record(rootfd, JOBS_SEEN_FILE, JOB_ID, NOW + SKEW, NOW) == -EEXIST);
        CHECK(jobs_seen_record(rootfd, JOBS_SEEN_FILE, other, NOW + SKEW, NOW) == 0);
        /* Past its window the id is forgotten (the skew check refuses it then). */
        CHECK(jobs_seen_record(rootfd, JOBS_SEEN_FILE, JOB_ID, NOW + 2 * SKEW, NOW + SKEW + 1) ==
              0);
        CHECK(jobs_seen_record(rootfd, JOBS_SEEN_FILE, other, NOW + SKEW, NOW + SKEW + 2) == 0);

        struct stat st;
        _cleanup_free_ char *path = strprintf("%s/" JOBS_SEEN_FILE, dir);
        REQUIRE(stat(path, &st) == 0);
        CHECK((st.st_mode & 07777) == 0600);

        /* A damaged record: its good lines stay, the call says so. */
        _cleanup_free_ char *text = strprintf("garbage\n%s %lld\nxx", JOB_ID, NOW + 1000);
        REQUIRE(write_file_atomic(path, text, strlen(text), 0600, (uid_t)-1, (gid_t)-1) >= 0);
        CHECK(jobs_seen_record(rootfd, JOBS_SEEN_FILE, other, NOW + SKEW, NOW) == -EBADMSG);
        CHECK(jobs_seen_record(rootfd, JOBS_SEEN_FILE, JOB_ID, NOW + SKEW, NOW) == -EEXIST);
        CHECK(jobs_seen_record(rootfd, JOBS_SEEN_FILE, other, NOW + SKEW, NOW) == -EEXIST);
        CHECK(jobs_seen_record(rootfd, JOBS_SEEN_FILE, "not-a-uuid", NOW, NOW) == -EINVAL);
        rm_rf(dir);
}

/* A record is one line appended in place (no temp file, no rename); the
 * file is rewritten, and stays bounded, once expired lines outnumber the
 * live ones. */
TEST(replay_record_appends_and_stays_bounded)
{
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_close_ int rootfd = root_open_dir(dir);
        _cleanup_free_ char *path = strprintf("%s/" JOBS_SEEN_FILE, dir);
        char id[JOB_ID_LEN + 1];
        struct stat a, b;
        REQUIRE(rootfd >= 0);

        REQUIRE(job_new_id(id) == 0);
        CHECK(jobs_seen_record(rootfd, JOBS_SEEN_FILE, id, NOW + 10, NOW) == 0);
        REQUIRE(stat(path, &a) == 0);
        REQUIRE(job_new_id(id) == 0);
        CHECK(jobs_seen_record(rootfd, JOBS_SEEN_FILE, id, NOW + 10, NOW) == 0);
        REQUIRE(stat(path, &b) == 0);
        CHECK(a.st_ino == b.st_ino);
        CHECK(b.st_size == 2 * (JOB_ID_LEN + 1 + 10 + 1));
        CHECK((b.st_mode & 07777) == 0600);
        CHECK(jobs_seen_record(rootfd, JOBS_SEEN_FILE, id, NOW + 10, NOW) == -EEXIST);

        /* 500 ids, each remembered for one second of a clock that moves on
         * by one second per job: the file never holds more than twice the
         * live ids (plus the 64 below which it is never rewritten). */
        bool bounded = true;
        for (long long t = 0; t < 500; t++) {
                REQUIRE(job_new_id(id) == 0);
                CHECK(jobs_seen_record(rootfd, JOBS_SEEN_FILE, id, NOW + 20 + t + 1,
                                       NOW + 20 + t) == 0);
                REQUIRE(stat(path, &b) == 0);
                if (b.st_size > 130 * (JOB_ID_LEN + 1 + 10 + 1))
                        bounded = false;
        }
        CHECK(bounded);
        /* The last id is still a replay. */
        CHECK(jobs_seen_record(rootfd, JOBS_SEEN_FILE, id, NOW + 600, NOW + 519) == -EEXIST);
        rm_rf(dir);
}

static void write_module(const char *dir, const char *id, const char *manifest)
{
        _cleanup_free_ char *mdir = strprintf("%s/usr/lib/firstboot/modules/%s", dir, id);
        _cleanup_free_ char *mpath = strprintf("%s/manifest.yml", mdir);
        _cleanup_free_ char *spath = strprintf("%s/install.sh", mdir);
        REQUIRE(mkdir_p(mdir, 0755) >= 0);
        REQUIRE(write_file_atomic(mpath, manifest, strlen(manifest), 0644, (uid_t)-1, (gid_t)-1) >=
                0);
        REQUIRE(write_file_atomic(spath, "#!/bin/sh\nexit 0\n", 17, 0755, (uid_t)-1, (gid_t)-1) >=
                0);
}

static struct job *job_with(const char *app, const char *inputs)
{
        _cleanup_free_ char *extra = inputs ? strprintf(",\"inputs\":%s", inputs) : NULL;
        _cleanup_free_ char *p = payload_text(JOB_ID, AGENT, app, NOW, extra);
        _cleanup_free_ char *e = signed_element(p);
        struct job_refusal_info info;
        struct job *j = NULL;
        CHECK(verify(e, &j, &info) == 0);
        job_refusal_info_done(&info);
        return j;
}

TEST(app_whitelist_and_inputs)
{
        _cleanup_free_ char *dir = make_tmpdir();
        write_module(dir, "web",
                     "id: web\nname: Web\nversion: '1'\ndescription: d\n"
                     "category: c\nauthor: a\n"
                     "inputs:\n"
                     "  - {name: server_name, type: string, required: true,\n"
                     "     validation: {pattern: '^[a-z.]+$'}}\n"
                     "  - {name: admin_password, type: password}\n"
                     "  - {name: port, type: port, default: 80}\n");
        write_module(dir, "liar",
                     "id: other\nname: L\nversion: '1'\ndescription: d\n"
                     "category: c\nauthor: a\n");
        struct job_refusal_info info;
        struct job_module jm = {0};

        struct job *j = job_with("web", "{\"server_name\":\"a.example\",\"admin_password\":"
                                        "\"hunter2\"}");
        REQUIRE(j);
        REQUIRE(jobs_find_module(j, dir, "/usr/lib/firstboot/modules", &jm, &info) == 0);
        CHECK(streq(jm.m->id, "web"));
        CHECK(streq_ptr(input_values_get(&jm.in, "server_name"), "a.example"));
        CHECK(streq_ptr(input_values_get(&jm.in, "port"), "80"));
        CHECK(jm.in.n == 3 && jm.in.v[1].sensitive && streq(jm.in.v[0].env_name, "SERVER_NAME"));
        job_module_done(&jm);
        job_free(j);

        const char *unknown[] = {"nope", "liar"};
        for (size_t i = 0; i < ARRAY_SIZE(unknown); i++) {
                j = job_with(unknown[i], NULL);
                REQUIRE(j);
                CHECK(jobs_find_module(j, dir, "/usr/lib/firstboot/modules", &jm, &info) ==
                      JOB_UNKNOWN_APP);
                CHECK(streq(job_refusal_to_string(info.reason), "unknown_app"));
                CHECK(info.authenticated && streq_ptr(info.job_id, JOB_ID));
                job_refusal_info_done(&info);
                job_free(j);
        }

        const char *bad_inputs[] = {
                "{}",                                                   /* required missing */
                "{\"server_name\":\"UPPER\"}",                          /* pattern */
                "{\"server_name\":\"a\",\"port\":70000}",               /* range */
                "{\"server_name\":\"a\",\"what\":\"x\"}",               /* unknown input */
                "{\"server_name\":\"a\",\"admin_password\":\"x$'\\n\"," /* sensitive value */
                "\"port\":\"hunter2-secret\"}",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad_inputs); i++) {
                j = job_with("web", bad_inputs[i]);
                REQUIRE(j);
                CHECK(jobs_find_module(j, dir, "/usr/lib/firstboot/modules", &jm, &info) ==
                      JOB_BAD_INPUTS);
                CHECK(streq(job_refusal_to_string(info.reason), "bad_inputs"));
                CHECK(info.message && !strstr(info.message, "x$'"));
                job_refusal_info_done(&info);
                job_free(j);
        }
        rm_rf(dir);
}

/* The daemon's record: read once, then only what was appended, by it or
 * by another writer of the same file (under the run lock); a file that
 * was replaced is read again whole. */
TEST(replay_record_in_memory_follows_the_file)
{
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_close_ int rootfd = root_open_dir(dir);
        _cleanup_free_ char *path = strprintf("%s/" JOBS_SEEN_FILE, dir);
        char a[JOB_ID_LEN + 1], b[JOB_ID_LEN + 1], c[JOB_ID_LEN + 1];
        REQUIRE(rootfd >= 0);
        REQUIRE(job_new_id(a) == 0 && job_new_id(b) == 0 && job_new_id(c) == 0);

        struct jobs_seen *s1 = jobs_seen_new(rootfd, JOBS_SEEN_FILE);
        struct jobs_seen *s2 = jobs_seen_new(rootfd, JOBS_SEEN_FILE);
        CHECK(jobs_seen_add(s1, a, NOW + 10, NOW) == 0);
        CHECK(jobs_seen_add(s1, a, NOW + 10, NOW) == -EEXIST);
        CHECK(jobs_seen_add(s2, a, NOW + 10, NOW) == -EEXIST);
        CHECK(jobs_seen_add(s2, b, NOW + 10, NOW) == 0);
        CHECK(jobs_seen_add(s1, b, NOW + 10, NOW) == -EEXIST);

        /* Only appended bytes are read: a line changed in place (same
         * inode, same size) is not seen again... */
        struct stat st;
        REQUIRE(stat(path, &st) == 0);
        {
                _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
                REQUIRE(fd >= 0 && pwrite(fd, c, JOB_ID_LEN, 0) == JOB_ID_LEN);
        }
        CHECK(jobs_seen_add(s1, a, NOW + 10, NOW) == -EEXIST);
        /* ...while a file replaced (a rewrite) is read whole again. */
        _cleanup_free_ char *text = strprintf("%s %lld\n", c, NOW + 10);
        REQUIRE(write_file_atomic(path, text, strlen(text), 0600, (uid_t)-1, (gid_t)-1) >= 0);
        CHECK(jobs_seen_add(s1, c, NOW + 10, NOW) == -EEXIST);
        CHECK(jobs_seen_add(s1, a, NOW + 10, NOW) == 0);
        /* And a file removed starts afresh. */
        REQUIRE(unlink(path) == 0);
        CHECK(jobs_seen_add(s2, c, NOW + 10, NOW) == 0);
        CHECK(jobs_seen_add(s2, c, NOW + 10, NOW) == -EEXIST);
        jobs_seen_free(s1);
        jobs_seen_free(s2);
        rm_rf(dir);
}

/* Another writer replaces the file twice between two of our reads: ext4
 * hands the first file's freed inode to the second replacement, which
 * looked like the file we had read, grown; the ids before our offset
 * were never read and a replay was accepted. The record holds the file
 * it read open, so its inode is never reused while it is ours. */
TEST(replay_record_sees_a_file_replaced_twice)
{
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_close_ int rootfd = root_open_dir(dir);
        _cleanup_free_ char *path = strprintf("%s/" JOBS_SEEN_FILE, dir);
        char x[JOB_ID_LEN + 1], c[JOB_ID_LEN + 1], filler[JOB_ID_LEN + 1];
        REQUIRE(rootfd >= 0);
        REQUIRE(job_new_id(filler) == 0);

        struct jobs_seen *s = jobs_seen_new(rootfd, JOBS_SEEN_FILE);
        for (int round = 0; round < 60; round++) {
                struct stat st;
                REQUIRE(job_new_id(x) == 0 && job_new_id(c) == 0);
                CHECK(jobs_seen_add(s, x, NOW + 10, NOW) == 0);
                REQUIRE(stat(path, &st) == 0);
                /* The second file: c first, then as many lines as the
                 * one we read, so it is not shorter. */
                struct buf text = {0};
                buf_printf(&text, "%s %lld\n", c, NOW + 10);
                while ((off_t)text.len <= st.st_size)
                        buf_printf(&text, "%s %lld\n", filler, NOW + 10);
                REQUIRE(write_file_atomic(path, "", 0, 0600, (uid_t)-1, (gid_t)-1) >= 0);
                REQUIRE(write_file_atomic(path, text.data, text.len, 0600, (uid_t)-1, (gid_t)-1) >=
                        0);
                buf_free(&text);
                CHECK(jobs_seen_add(s, c, NOW + 10, NOW) == -EEXIST);
        }
        jobs_seen_free(s);
        rm_rf(dir);
}

/* Writes a secret file of size bytes ('k' repeated, then tail) with mode. */
static char *secret_file(const char *dir, const char *name, size_t size, const char *tail,
                         mode_t mode)
{
        char *path = strprintf("%s/%s", dir, name);
        size_t t = strlen(tail);
        char *data = xmalloc(size + 1);
        memset(data, 'k', size);
        memcpy(data + size - t, tail, t);
        if (write_file_atomic(path, data, size, mode, (uid_t)-1, (gid_t)-1) < 0 ||
            chmod(path, mode) < 0)
                abort();
        free(data);
        return path;
}

/* Reads name in dir with flags, in the root (as the agent) or by its
 * path (as imagegen); 0 or the errno, why checked to name the file. */
static int read_secret_as(const char *dir, const char *name, unsigned flags, bool in_root,
                          size_t *ret_len, const char *want_why)
{
        _cleanup_close_ int rootfd = root_open_dir(dir);
        _cleanup_free_ char *path = strprintf("%s/%s", dir, name);
        _cleanup_free_ char *secret = NULL, *why = NULL, *shown = NULL;
        size_t len = 0;
        int k = job_secret_read(in_root ? rootfd : AT_FDCWD, in_root ? name : path, flags, &secret,
                                &len, &why);
        if (k < 0) {
                CHECK(why && strstr(why, in_root ? name : path));
                if (want_why && !(why && strstr(why, want_why)))
                        fprintf(stderr, "# %s: %s\n", name, why ? why : "(null)");
                CHECK(!want_why || (why && strstr(why, want_why)));
                CHECK(!secret);
        } else {
                CHECK(!why && secret && strlen(secret) == len);
                if (ret_len)
                        *ret_len = len;
        }
        return k;
}

/* One reader for the agent, imagegen job submit and a site's secret: the
 * same bounds everywhere, the file named in every refusal. */
TEST(secret_file_rules)
{
        _cleanup_free_ char *dir = make_tmpdir();
        size_t len = 0;
        bool in_root = false;
        for (int pass = 0; pass < 2; pass++, in_root = true) {
                unsigned f = in_root ? JOB_SECRET_NOFOLLOW | JOB_SECRET_OWNED : 0;
                free(secret_file(dir, "ok", 33, "\n", 0600));
                CHECK(read_secret_as(dir, "ok", f, in_root, &len, NULL) == 0);
                CHECK(len == 32);
                free(secret_file(dir, "crlf", 20, "\r\n", 0400));
                CHECK(read_secret_as(dir, "crlf", f, in_root, &len, NULL) == 0);
                CHECK(len == 18);
                /* Exactly the most, with or without a newline in it. */
                free(secret_file(dir, "max", JOB_SECRET_FILE_MAX, "k", 0600));
                CHECK(read_secret_as(dir, "max", f, in_root, &len, NULL) == 0);
                CHECK(len == JOB_SECRET_FILE_MAX);
                free(secret_file(dir, "maxnl", JOB_SECRET_FILE_MAX, "\n", 0600));
                CHECK(read_secret_as(dir, "maxnl", f, in_root, &len, NULL) == 0);
                CHECK(len == JOB_SECRET_FILE_MAX - 1);
                free(secret_file(dir, "big", JOB_SECRET_FILE_MAX + 1, "\n", 0600));
                CHECK(read_secret_as(dir, "big", f, in_root, NULL, "is over 4096 bytes") == -EFBIG);
                free(secret_file(dir, "empty", 0, "", 0600));
                CHECK(read_secret_as(dir, "empty", f, in_root, NULL, "is empty") == -EINVAL);
                free(secret_file(dir, "nl", 1, "\n", 0600));
                CHECK(read_secret_as(dir, "nl", f, in_root, NULL, "is empty") == -EINVAL);
                free(secret_file(dir, "short", 15, "\n", 0600));
                CHECK(read_secret_as(dir, "short", f, in_root, NULL,
                                     "the secret must be at least 16") == -EINVAL);
                free(secret_file(dir, "twolines", 40, "a\nb\n", 0600));
                CHECK(read_secret_as(dir, "twolines", f, in_root, NULL, "one line") == -EINVAL);
                _cleanup_free_ char *nul = secret_file(dir, "nul", 40, "\n", 0600);
                {
                        _cleanup_close_ int fd = open(nul, O_WRONLY | O_CLOEXEC);
                        REQUIRE(fd >= 0 && pwrite(fd, "", 1, 3) == 1);
                }
                CHECK(read_secret_as(dir, "nul", f, in_root, NULL, "one line") == -EINVAL);
                free(secret_file(dir, "group", 33, "\n", 0640));
                CHECK(read_secret_as(dir, "group", f, in_root, NULL,
                                     "is mode 0640: group and others must have no access") ==
                      -EPERM);
                free(secret_file(dir, "others", 33, "\n", 0604));
                CHECK(read_secret_as(dir, "others", f, in_root, NULL, "is mode 0604") == -EPERM);
                free(secret_file(dir, "gx", 33, "\n", 0610));
                CHECK(read_secret_as(dir, "gx", f, in_root, NULL, "is mode 0610") == -EPERM);
                CHECK(read_secret_as(dir, "missing", f, in_root, NULL, "cannot open") == -ENOENT);
                CHECK(read_secret_as(dir, ".", f, in_root, NULL, "not a regular file") == -EINVAL);
                _cleanup_free_ char *fifo = strprintf("%s/fifo", dir);
                if (pass == 0)
                        REQUIRE(mkfifo(fifo, 0600) == 0);
                CHECK(read_secret_as(dir, "fifo", f, in_root, NULL, "not a regular file") ==
                      -EINVAL);
                /* A link: followed by imagegen, refused by the agent. */
                _cleanup_free_ char *link = strprintf("%s/link", dir);
                if (pass == 0)
                        REQUIRE(symlink("ok", link) == 0);
                CHECK(read_secret_as(dir, "link", f, in_root, NULL, "symbolic link") ==
                      (in_root ? -ELOOP : 0));
        }
        rm_rf(dir);
}

TAP_MAIN
