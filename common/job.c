#include "job.h"
#include "crypto.h"
#include "diag.h"
#include "json.h"
#include "manifest.h"
#include "util.h"

#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const refusal_names[JOB_REFUSAL_MAX] = {
        [JOB_ACCEPTED] = "accepted",
        [JOB_OVERSIZE] = "oversize",
        [JOB_MALFORMED] = "malformed",
        [JOB_NO_SIGNATURE] = "missing_signature",
        [JOB_BAD_SIGNATURE] = "bad_signature",
        [JOB_WRONG_AGENT] = "wrong_agent",
        [JOB_EXPIRED] = "expired",
        [JOB_SKEW] = "skew",
        [JOB_REPLAY] = "replay",
        [JOB_UNKNOWN_APP] = "unknown_app",
        [JOB_BAD_INPUTS] = "bad_inputs",
};

const char *job_refusal_to_string(enum job_refusal r)
{
        return (unsigned)r < JOB_REFUSAL_MAX ? refusal_names[r] : "unknown";
}

bool job_id_is_valid(const char *s)
{
        if (!s || strlen(s) != JOB_ID_LEN)
                return false;
        for (size_t i = 0; i < JOB_ID_LEN; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!strchr("0123456789abcdef", s[i]) || !s[i])
                        return false;
        }
        return true;
}

bool job_agent_id_is_valid(const char *s)
{
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > JOB_AGENT_ID_MAX)
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

void job_free(struct job *j)
{
        if (!j)
                return;
        free(j->job_id);
        free(j->agent_id);
        free(j->app_id);
        free(j->user_id);
        node_free(j->doc);
        free(j);
}

void job_refusal_info_done(struct job_refusal_info *info)
{
        free(info->message);
        free(info->job_id);
        *info = (struct job_refusal_info){0};
}

_printf_(3, 4) static int refuse(struct job_refusal_info *info, enum job_refusal r, const char *fmt,
                                 ...)
{
        va_list ap;
        va_start(ap, fmt);
        free(info->message);
        info->message = vstrprintf(fmt, ap);
        va_end(ap);
        info->reason = r;
        return (int)r;
}

/* A string field of the payload: absent (NULL, 0), or a string. */
static int get_string(const struct node *map, const char *key, const char **ret)
{
        const struct node *n = node_get(map, key);
        *ret = NULL;
        if (!n)
                return 0;
        if (n->kind != NODE_SCALAR || n->type != SCALAR_STR)
                return -EINVAL;
        *ret = n->value;
        return 1;
}

static int get_int(const struct node *map, const char *key, long long *ret)
{
        const struct node *n = node_get(map, key);
        if (!n)
                return 0;
        if (n->kind != NODE_SCALAR || n->type != SCALAR_INT || node_as_int(n, ret) < 0)
                return -EINVAL;
        return 1;
}

static bool has_nul(const char *s, size_t n)
{
        return memchr(s, '\0', n) != NULL;
}

int job_verify(const char *buf, size_t len, const struct job_verify_options *o, struct job **ret,
               struct job_refusal_info *info)
{
        static const char *const payload_keys[] = {"job_id",    "agent_id",   "app_id", "inputs",
                                                   "issued_at", "expires_at", "user_id"};
        _cleanup_node_ struct node *env = NULL, *pl = NULL;
        struct diags d = {0};
        const char *payload, *sig, *s;
        size_t sig_len;
        int k;

        *info = (struct job_refusal_info){0};
        if (len > o->max_bytes)
                return refuse(info, JOB_OVERSIZE, "the job is %zu bytes, over the %zu allowed", len,
                              o->max_bytes);
        if (has_nul(buf, len))
                return refuse(info, JOB_MALFORMED, "the job holds a NUL byte");
        k = json_parse("job", buf, len, &env, &d);
        if (k == -ENOMEM) {
                diags_free(&d);
                return k;
        }
        if (k < 0) {
                _cleanup_free_ char *e = d.n ? diag_format(&d.v[0]) : xstrdup("invalid JSON");
                diags_free(&d);
                return refuse(info, JOB_MALFORMED, "%s", e);
        }
        if (env->kind != NODE_MAP)
                return refuse(info, JOB_MALFORMED, "the job is not a JSON object");
        for (size_t i = 0; i < env->n_items; i++)
                if (!streq(env->items[i]->key, "payload") &&
                    !streq(env->items[i]->key, "signature"))
                        return refuse(info, JOB_MALFORMED, "the job has an unknown key \"%.64s\"",
                                      env->items[i]->key);
        if (get_string(env, "payload", &payload) <= 0)
                return refuse(info, JOB_MALFORMED, "\"payload\" is missing or not a string");

        /* The payload's job_id, unauthenticated yet, so that a refusal
         * of a bad signature can still be told to whoever waits for it. */
        diags_free(&d);
        k = json_parse("payload", payload, strlen(payload), &pl, &d);
        if (k == -ENOMEM) {
                diags_free(&d);
                return k;
        }
        if (k >= 0 && pl->kind == NODE_MAP && get_string(pl, "job_id", &s) > 0 &&
            job_id_is_valid(s))
                info->job_id = xstrdup(s);

        k = get_string(env, "signature", &sig);
        if (k < 0) {
                diags_free(&d);
                return refuse(info, JOB_NO_SIGNATURE, "\"signature\" is not a string");
        }
        if (k == 0 || !*sig) {
                diags_free(&d);
                return refuse(info, JOB_NO_SIGNATURE, "the job is not signed (no \"signature\")");
        }
        if (!startswith(sig, "sha256=")) {
                diags_free(&d);
                return refuse(info, JOB_BAD_SIGNATURE,
                              "\"signature\" must be \"sha256=\" and 64 hex digits");
        }
        sig += strlen("sha256=");
        sig_len = strlen(sig);
        if (hmac_sha256_verify_hex(o->secret, o->secret_len, payload, strlen(payload), sig,
                                   sig_len) < 0) {
                diags_free(&d);
                return refuse(info, JOB_BAD_SIGNATURE,
                              "the signature does not match the payload and the shared secret");
        }
        info->authenticated = info->job_id != NULL;

        if (!pl) {
                _cleanup_free_ char *e = d.n ? diag_format(&d.v[0]) : xstrdup("invalid JSON");
                diags_free(&d);
                return refuse(info, JOB_MALFORMED, "%s", e);
        }
        diags_free(&d);
        if (pl->kind != NODE_MAP)
                return refuse(info, JOB_MALFORMED, "the payload is not a JSON object");
        for (size_t i = 0; i < pl->n_items; i++) {
                bool known = false;
                for (size_t j = 0; j < ARRAY_SIZE(payload_keys) && !known; j++)
                        known = streq(pl->items[i]->key, payload_keys[j]);
                if (!known)
                        return refuse(info, JOB_MALFORMED,
                                      "the payload has an unknown key \"%.64s\"",
                                      pl->items[i]->key);
        }

        _cleanup_job_ struct job *j = xcalloc(1, sizeof(*j));
        if (get_string(pl, "job_id", &s) <= 0 || !job_id_is_valid(s))
                return refuse(info, JOB_MALFORMED,
                              "\"job_id\" must be a lowercase UUID (8-4-4-4-12 hex digits)");
        j->job_id = xstrdup(s);
        if (get_string(pl, "agent_id", &s) <= 0 || !job_agent_id_is_valid(s))
                return refuse(info, JOB_MALFORMED,
                              "\"agent_id\" must be 1 to %d letters, digits, '.', '_' or '-'",
                              JOB_AGENT_ID_MAX);
        j->agent_id = xstrdup(s);
        if (get_string(pl, "app_id", &s) <= 0 || !manifest_id_is_valid(s))
                return refuse(info, JOB_MALFORMED,
                              "\"app_id\" must be a module id (lowercase letters, digits, '-', "
                              "'_', at most %d)",
                              MANIFEST_ID_MAX);
        j->app_id = xstrdup(s);
        k = get_string(pl, "user_id", &s);
        if (k < 0 || (k > 0 && (strlen(s) > JOB_USER_ID_MAX || !*s)))
                return refuse(info, JOB_MALFORMED, "\"user_id\" must be a string of 1 to %d bytes",
                              JOB_USER_ID_MAX);
        if (k > 0) {
                for (const char *c = s; *c; c++)
                        if ((unsigned char)*c < 0x20 || *c == 0x7f)
                                return refuse(info, JOB_MALFORMED,
                                              "\"user_id\" holds a control character");
                j->user_id = xstrdup(s);
        }
        if (get_int(pl, "issued_at", &j->issued_at) <= 0 || j->issued_at <= 0)
                return refuse(info, JOB_MALFORMED,
                              "\"issued_at\" must be a positive integer (unix seconds)");
        k = get_int(pl, "expires_at", &j->expires_at);
        if (k < 0 || (k > 0 && j->expires_at <= j->issued_at))
                return refuse(info, JOB_MALFORMED,
                              "\"expires_at\" must be an integer after \"issued_at\"");
        const struct node *in = node_get(pl, "inputs");
        if (in && node_is_null(in))
                in = NULL;
        if (in && in->kind != NODE_MAP)
                return refuse(info, JOB_MALFORMED, "\"inputs\" must be a JSON object");
        if (in)
                for (size_t i = 0; i < in->n_items; i++)
                        if (in->items[i]->kind != NODE_SCALAR || node_is_null(in->items[i]))
                                return refuse(info, JOB_MALFORMED,
                                              "input \"%.64s\" must be a string, a number or a "
                                              "boolean",
                                              in->items[i]->key);
        if (!in) {
                struct node *empty = node_new(NODE_MAP);
                if (!empty || node_set(pl, "inputs", empty) < 0)
                        return -ENOMEM;
                in = node_get(pl, "inputs");
                if (!in)
                        return -ENOMEM;
                ((struct node *)in)->file = pl->file;
                ((struct node *)in)->line = pl->line;
                ((struct node *)in)->column = pl->column;
        }
        j->inputs = (struct node *)in;
        j->doc = TAKE_PTR(pl);

        if (!streq(j->agent_id, o->agent_id))
                return refuse(info, JOB_WRONG_AGENT, "the job is for agent \"%s\", not this one",
                              j->agent_id);
        if (j->expires_at > 0 && o->now >= j->expires_at)
                return refuse(info, JOB_EXPIRED, "the job expired %lld s ago",
                              o->now - j->expires_at);
        if (j->issued_at < o->now - o->max_skew_s || j->issued_at > o->now + o->max_skew_s)
                return refuse(info, JOB_SKEW,
                              "\"issued_at\" is %lld s from this agent's clock, over the %lld s "
                              "allowed",
                              j->issued_at > o->now ? j->issued_at - o->now : o->now - j->issued_at,
                              o->max_skew_s);
        job_refusal_info_done(info);
        *ret = TAKE_PTR(j);
        return 0;
}

int job_sign(const char *payload, const void *secret, size_t secret_len, char **ret)
{
        _cleanup_node_ struct node *env = node_new(NODE_MAP);
        char hex[SHA256_HEX_SIZE];

        hmac_sha256_hex(secret, secret_len, payload, strlen(payload), hex);
        _cleanup_free_ char *sig = strprintf("sha256=%s", hex);
        if (!env || node_set_str(env, "payload", payload) < 0 ||
            node_set_str(env, "signature", sig) < 0)
                return -ENOMEM;
        return json_format(env, false, ret);
}

int job_new_id(char ret[JOB_ID_LEN + 1])
{
        unsigned char b[16];
        int k = random_bytes(b, sizeof(b));
        if (k < 0)
                return k;
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        snprintf(ret, JOB_ID_LEN + 1,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                 b[15]);
        return 0;
}

/* A secret's file: opened without waiting on a FIFO (O_NONBLOCK), checked
 * on the descriptor it is read from (no stat-then-open race), read into
 * one buffer that is wiped on every path. */
int job_secret_read(int rootfd, const char *path, unsigned flags, char **ret, size_t *ret_len,
                    char **ret_why)
{
        int oflags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
                     (flags & JOB_SECRET_NOFOLLOW ? O_NOFOLLOW : 0);
        _cleanup_close_ int fd = rootfd == AT_FDCWD ? openat(AT_FDCWD, path, oflags)
                                                    : root_open(rootfd, path, oflags, 0);
        struct stat st;
        size_t n = 0;
        int k = 0;

        *ret_why = NULL;
        if (fd < 0) {
                k = rootfd == AT_FDCWD ? -errno : fd;
                *ret_why = k == -ELOOP && (flags & JOB_SECRET_NOFOLLOW)
                                   ? strprintf("%s is a symbolic link: name the file itself", path)
                                   : strprintf("cannot open %s: %s", path, strerror(-k));
                return k;
        }
        if (fstat(fd, &st) < 0) {
                k = -errno;
                *ret_why = strprintf("cannot stat %s: %s", path, strerror(-k));
                return k;
        }
        if (!S_ISREG(st.st_mode)) {
                *ret_why = strprintf("%s is not a regular file", path);
                return -EINVAL;
        }
        if (st.st_mode & 0077) {
                *ret_why = strprintf("%s is mode %04o: group and others must have no access "
                                     "(chmod 0600)",
                                     path, (unsigned)(st.st_mode & 07777));
                return -EPERM;
        }
        if ((flags & JOB_SECRET_OWNED) && st.st_uid != geteuid()) {
                *ret_why = strprintf("%s belongs to uid %u, not to uid %u, which reads it", path,
                                     (unsigned)st.st_uid, (unsigned)geteuid());
                return -EPERM;
        }
        /* One byte over the bound tells a file that is too big. */
        char *buf = xmalloc(JOB_SECRET_FILE_MAX + 2);
        for (;;) {
                ssize_t r = read(fd, buf + n, JOB_SECRET_FILE_MAX + 1 - n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        k = -errno;
                        *ret_why = strprintf("cannot read %s: %s", path, strerror(-k));
                        goto fail;
                }
                if (r == 0)
                        break;
                n += (size_t)r;
                if (n > JOB_SECRET_FILE_MAX) {
                        *ret_why = strprintf("%s is over %d bytes", path, JOB_SECRET_FILE_MAX);
                        k = -EFBIG;
                        goto fail;
                }
        }
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                n--;
        if (n == 0) {
                *ret_why = strprintf("%s is empty: it must hold the secret, at least %d bytes",
                                     path, JOB_SECRET_MIN);
                k = -EINVAL;
        } else if (n < JOB_SECRET_MIN) {
                *ret_why = strprintf("%s holds %zu bytes: the secret must be at least %d", path, n,
                                     JOB_SECRET_MIN);
                k = -EINVAL;
        } else if (memchr(buf, '\0', n) || memchr(buf, '\n', n) || memchr(buf, '\r', n)) {
                *ret_why = strprintf("%s must hold the secret on one line (no NUL, no line break "
                                     "inside it)",
                                     path);
                k = -EINVAL;
        }
        if (k < 0)
                goto fail;
        buf[n] = '\0';
        *ret = buf;
        *ret_len = n;
        return 0;
fail:
        explicit_bzero(buf, JOB_SECRET_FILE_MAX + 2);
        free(buf);
        return k;
}
