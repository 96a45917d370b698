/* The job queue's wire format (README "Jobs", firstboot(8)): what the
 * panel pushes onto agent:{agent_id}:jobs and `firstboot agent` takes.
 * Each list element is one JSON object
 *
 *   {"payload": "<JSON text>", "signature": "sha256=<hex HMAC-SHA256>"}
 *
 * where the HMAC is of the payload text exactly as sent, keyed with the
 * shared secret, and the payload text is the JSON object
 *
 *   {"job_id": "<uuid>", "agent_id": "...", "app_id": "<module id>",
 *    "inputs": {...}, "issued_at": <unix s>, "expires_at": <unix s>,
 *    "user_id": "..."}
 *
 * (expires_at, user_id and inputs optional; no other key). Both sides
 * live here: `imagegen job submit` signs with job_sign(), the agent
 * checks with job_verify(). Nothing here logs or touches Redis. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "node.h"

/* Why a job was refused: each has its own reason string (the result's
 * "reason", a metric label). */
enum job_refusal {
        JOB_ACCEPTED = 0,
        JOB_OVERSIZE,
        JOB_MALFORMED,
        JOB_NO_SIGNATURE,
        JOB_BAD_SIGNATURE,
        JOB_WRONG_AGENT,
        JOB_EXPIRED,
        JOB_SKEW,
        JOB_REPLAY,
        JOB_UNKNOWN_APP,
        JOB_BAD_INPUTS,
        JOB_REFUSAL_MAX,
};

/* "oversize", "malformed", "missing_signature", "bad_signature",
 * "wrong_agent", "expired", "skew", "replay", "unknown_app",
 * "bad_inputs"; "accepted" for JOB_ACCEPTED. */
const char *job_refusal_to_string(enum job_refusal r);

#define JOB_ID_LEN        36 /* a UUID: 8-4-4-4-12 lowercase hex digits */
#define JOB_AGENT_ID_MAX  64
#define JOB_USER_ID_MAX   256
#define JOB_DEFAULT_BYTES 65536

struct job {
        char *job_id;
        char *agent_id;
        char *app_id;
        char *user_id;        /* NULL when not given */
        struct node *inputs;  /* a mapping, empty when not given; inside doc */
        struct node *doc;     /* the payload's tree */
        long long issued_at;  /* unix seconds */
        long long expires_at; /* unix seconds; 0 when not given */
};

struct job_verify_options {
        const char *agent_id; /* ours */
        const void *secret;
        size_t secret_len;
        long long now;        /* unix seconds */
        long long max_skew_s; /* |now - issued_at| allowed */
        size_t max_bytes;     /* of the whole element */
};

/* What a refusal says. job_id is the payload's job_id when one could be
 * read (a UUID), authenticated only when the signature was checked. */
struct job_refusal_info {
        enum job_refusal reason;
        char *message; /* a sentence naming the field; never a secret or an input value */
        char *job_id;  /* or NULL */
        bool authenticated;
};

/* Parses and checks one element: size, JSON, signature (constant time),
 * payload fields, agent_id, expiry and skew. Replay, the whitelist and
 * the inputs are the agent's to check (firstboot/jobs.h). Returns 0 and
 * fills *ret, or JOB_* > 0 and fills *info; -ENOMEM. */
int job_verify(const char *buf, size_t len, const struct job_verify_options *o, struct job **ret,
               struct job_refusal_info *info);

void job_free(struct job *j);
static inline void job_freep(struct job **j)
{
        job_free(*j);
}
#define _cleanup_job_ __attribute__((cleanup(job_freep)))
void job_refusal_info_done(struct job_refusal_info *info);

bool job_id_is_valid(const char *s);
bool job_agent_id_is_valid(const char *s);

/* The element for payload text (signed with secret), as JSON text. */
int job_sign(const char *payload, const void *secret, size_t secret_len, char **ret);

/* The shared HMAC secret's file, read by the agent (jobs.secret_file),
 * `imagegen job submit --secret-file` and imagegen for a site's
 * jobs.secret, all by job_secret_read(), so that one file is taken or
 * refused alike everywhere: a regular file, no access at all for group
 * and others, at most JOB_SECRET_FILE_MAX bytes, holding one line of at
 * least JOB_SECRET_MIN bytes (trailing CR and LF are not part of it; no
 * NUL and no line break inside). */
#define JOB_SECRET_MIN      16
#define JOB_SECRET_FILE_MAX 4096
/* The agent's stricter rules: a symbolic link as the last component is
 * refused (O_NOFOLLOW), and the file must belong to the effective uid. */
#define JOB_SECRET_NOFOLLOW 1u
#define JOB_SECRET_OWNED    2u
/* Reads the secret from path: inside the root rootfd (root_open()), or,
 * with rootfd AT_FDCWD, as open(2) would. Returns 0 with the secret in
 * *ret (NUL terminated) and its length in *ret_len; or a negative errno
 * with *ret_why a sentence naming path and what is wrong (never the
 * secret): the caller says it, the same everywhere. */
int job_secret_read(int rootfd, const char *path, unsigned flags, char **ret, size_t *ret_len,
                    char **ret_why);

/* A fresh random (version 4) UUID, lowercase, from random_bytes(). */
int job_new_id(char ret[JOB_ID_LEN + 1]);
