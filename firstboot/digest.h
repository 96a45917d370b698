/* A module's identity on day 2: its id plus a digest of what it runs with
 * (its inputs after defaults, its manifest and script bytes, the bundle
 * files it watches), kept in its done-mark. A module whose digest differs
 * from its last success runs again, and the difference says why. None of
 * these functions logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "prepare.h"

#define DONE_MARK_MAGIC "firstboot-done-mark 2"
#define DONE_MARK_MAX   (256 * 1024)

struct digest_part {
        char *name; /* an input's name, a watched file's path */
        char hash[65];
};

struct module_digest {
        /* Keys the input hashes: a done-mark holds no bare hash of a
         * password (one per mark, hex of 16 random bytes). */
        char salt[33];
        char digest[65]; /* of everything below */
        char manifest[65], script[65];
        char lib[65]; /* modules/_lib/, for a script that sources it; else "" */
        struct digest_part *inputs, *watches;
        size_t n_inputs, n_watches;
};

/* The digest of module p of bundle b with salt (32 hex digits). The
 * manifest and script bytes come from the bundle, or from p->dir for a
 * module of the modules directory (and from the same place, for a script
 * that names modules/_lib/, the shared helpers it sources); a watched
 * file's bytes from the bundle (prepare_modules() checked it ships them).
 * Inputs are taken in manifest order after defaults, so the order keys
 * are written in and a default written out make no difference. -ENOENT
 * when something is missing, another negative errno when it cannot be
 * read. */
int module_digest_compute(const struct bundle *b, const struct planned *p, const char *salt,
                          struct module_digest *ret);

/* The done-mark text for d (instance id and time for people reading it). */
char *module_digest_format(const struct module_digest *d, const char *instance_id,
                           long long finished_ms);

/* Reads a done-mark. 1 and *ret for a mark with a digest; 0 for a mark
 * without one (written before digests, "INSTANCE-ID MS", or one that does
 * not read back: the module then runs again); -ENOMEM. */
int module_digest_parse(const char *text, size_t len, struct module_digest *ret);

/* What changed from old to now, for people: "script changed; inputs
 * changed: port, password; watched file changed: /etc/x" (names, never
 * values), or NULL when the digests are equal. */
char *module_digest_changes(const struct module_digest *old, const struct module_digest *now);

void module_digest_free(struct module_digest *d);

/* Whether module p runs this time, and why. mark is its done-mark's text
 * (NULL when it has none); failed_last says the last run of this instance
 * left it failed (it then runs, mark or not). *ret_now is its digest now (with the mark's salt,
 * when it has one, else a new one), for the mark a success writes; *ret_why is the reason: "first
 * run", "failed last time", "inputs changed: a, b", "unchanged", ... Returns 1 (runs), 0 (skipped),
 * 2 when an input its manifest lists in reprovision: changed (why: "requires reprovisioning: a",
 * which apply refuses and plan shows) or a negative errno. */
int module_decide(const struct bundle *b, const struct planned *p, const char *mark,
                  size_t mark_len, bool failed_last, struct module_digest *ret_now, char **ret_why);
