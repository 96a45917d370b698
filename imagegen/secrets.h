/* The site's secrets store: passwords, tokens and API keys that imagegen
 * generates once (libsodium's CSPRNG) and reuses on every later render, kept
 * in a JSON state file (SITE_DIR/.imagegen/state.json) that is private to
 * its owner:
 *
 *   {"version": 1, "secrets": {"postgres.db_password": "...", ...}}
 *
 * Other top-level keys are kept as they are. The file is written only when
 * a secret was generated, so rendering twice leaves it untouched. */
#pragma once

#include <stdbool.h>

enum secret_kind {
        SECRET_PASSWORD, /* 32 characters of [A-Za-z0-9]: safe in every format */
        SECRET_TOKEN,    /* 64 lowercase hex digits (256 bits), for HMAC keys */
        SECRET_API_KEY,  /* 40 characters of [A-Za-z0-9] */
        SECRET_KEY32,    /* base64 of 32 random bytes (an AES-256 key, 44 characters) */
};

struct secrets;

/* Loads the store from path; a missing file is an empty store. Fails,
 * with *err set to a message naming the file, when the file is readable by
 * group or others, is not valid JSON (with its line:column) or does not
 * hold a store. Returns 0 or a negative errno. */
int secrets_load(const char *path, struct secrets **ret, char **err);

/* The secret called name, generated as kind the first time it is asked
 * for (which marks the store to be saved). The string belongs to the
 * store. NULL only when the generator or memory fails. */
const char *secrets_get(struct secrets *s, const char *name, enum secret_kind kind);

/* The bundle serial for key (the site, or "<hostname>/" of a fleet's
 * host), kept with the sha256 of what it was rendered from in the state
 * file's "serials" object: the same digest keeps the serial, another one
 * (or none recorded) takes the next (the first is 1) and marks the store
 * to be saved. -ENOMEM, or -EBADMSG when the recorded entry is not one. */
int secrets_serial(struct secrets *s, const char *key, const char *digest, long long *ret);

/* What secrets_serial() recorded for key: its serial and sha256 (which
 * belongs to the store). -ENOENT when nothing is, -EBADMSG as above. */
int secrets_serial_get(const struct secrets *s, const char *key, long long *ret_serial,
                       const char **ret_digest);

/* The state file's path, for messages. */
const char *secrets_path(const struct secrets *s);

/* Whether secrets_save() has something to write. */
bool secrets_dirty(const struct secrets *s);

/* Writes the store when a secret was generated since it was loaded: the
 * directory is created 0700, the file written atomically with mode 0600.
 * Returns 1 when written, 0 when there was nothing to write, or a
 * negative errno with *err set. */
int secrets_save(struct secrets *s, char **err);

void secrets_free(struct secrets *s);
static inline void secrets_freep(struct secrets **s)
{
        secrets_free(*s);
}
#define _cleanup_secrets_ __attribute__((cleanup(secrets_freep)))
