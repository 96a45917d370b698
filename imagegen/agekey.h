/* age recipients, checked as age itself takes them, so a typo in
 * site.yaml is an error at its line and column, not a backup that fails
 * on the server at night; and a new X25519 key pair for `imagegen init`.
 *
 * What age v1.1.1 (Debian 12's; FiloSottile/age cmd/age/parse.go
 * parseRecipient) accepts and this checks:
 *   - "age1" and bech32 (BIP 173; age's internal/bech32, all lowercase)
 *     of a 32-byte X25519 key: 58 data characters, the checksum right,
 *     the padding bits zero (x25519.go ParseX25519Recipient). A second
 *     '1' makes it a plugin recipient ("age1NAME1..."), refused here: no
 *     plugin is installed on the server.
 *   - "ssh-ed25519 BASE64 [comment]": the blob the SSH wire string
 *     "ssh-ed25519" then a 32-byte string, nothing after, a point that
 *     converts to X25519 (agessh.go NewEd25519Recipient).
 *   - "ssh-rsa BASE64 [comment]": the blob "ssh-rsa", mpint e, mpint n,
 *     nothing after (golang.org/x/crypto/ssh keys.go parseRSA: e odd,
 *     3 <= e < 2^24), n of 2048 bits or more (agessh.go NewRSARecipient).
 * Helpers never log; every function returns 0 or a negative errno. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Longest recipient line age reads from a file (8 KiB, like sshd). */
#define AGE_RECIPIENT_MAX 8192

/* Checks one recipient (n bytes, no NUL needed). 0, or -EINVAL with
 * *ret_why (when not NULL) a static sentence saying what is wrong. */
int age_recipient_check(const char *s, size_t n, const char **ret_why);

/* Checks a list of recipients separated by commas or newlines, spaces
 * around each ignored. 0 when there is at least one and each is good;
 * -EINVAL otherwise, with *ret_index the 1-based number of the bad one (0
 * for an empty list), *ret_offset its byte offset in list and *ret_why
 * the reason. */
int age_recipients_check(const char *list, size_t *ret_index, size_t *ret_offset,
                         const char **ret_why);

/* Bech32 (BIP 173) of n bytes under hrp, lowercase, or uppercase when
 * upper (age's secret keys are written so). -EINVAL for an hrp that is
 * empty, too long or not printable ASCII. */
int bech32_encode(const char *hrp, const unsigned char *data, size_t n, bool upper, char **ret);

/* A new X25519 key pair as age-keygen writes it: the identity
 * "AGE-SECRET-KEY-1..." and the recipient "age1...". The caller frees
 * both (the identity after wiping it). */
int age_keygen(char **ret_identity, char **ret_recipient);
