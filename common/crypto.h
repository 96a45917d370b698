/* Hashes, HMAC, random bytes, base64, Ed25519 signatures and SSH key
 * fingerprints: the one file that talks to OpenSSL (keys, signing) and
 * libsodium (SHA-256, HMAC-SHA256, random bytes, checking signatures), so
 * that the agent never initializes OpenSSL. Used for
 * bundle checksums and signatures, the phone-home signature header,
 * generated secrets and the host key fingerprints sent to the controller.
 * Every function that can fail returns 0 or a negative errno; none logs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define SHA256_BYTES      32
#define SHA256_HEX_SIZE   65 /* 64 hex digits and the NUL */
#define ED25519_SIG_BYTES 64

/* The SHA-256 of n bytes (data may be NULL when n is 0), raw or as
 * lowercase hex, by libsodium: cannot fail. */
void sha256(const void *data, size_t n, unsigned char ret[32]);
void sha256_hex(const void *data, size_t n, char ret[65]);

/* The lowercase hex HMAC-SHA256 (RFC 2104, a key of any length) of data
 * with key, as sent in X-Firstboot-Signature; by libsodium. */
void hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t n, char ret[65]);

/* Checks hex_len characters of hex (64 hex digits, either case) against
 * the HMAC-SHA256 of data with key, in constant time (sodium_memcmp). 0
 * when they match; -EBADMSG when not, or when hex is not 64 hex digits. */
int hmac_sha256_verify_hex(const void *key, size_t keylen, const void *data, size_t n,
                           const char *hex, size_t hex_len);

/* Fills buf with n bytes from libsodium's CSPRNG (randombytes_buf), for
 * salts, job ids, secrets and tokens. -EIO when libsodium cannot be
 * initialized (sodium_init() checks the system's generator). */
int random_bytes(void *buf, size_t n);

/* The standard base64 (RFC 4648 alphabet, '=' padding) of n bytes, NUL
 * terminated. line_width 0 gives one line; otherwise a '\n' follows every
 * line_width characters except at the very end (no trailing newline). */
int base64_encode(const void *data, size_t n, size_t line_width, char **ret);

/* Decodes len bytes of base64 text, strictly: ASCII whitespace anywhere is
 * ignored, anything else outside the alphabet, '=' where it cannot be,
 * data after the padding, an incomplete last quantum (padding missing) and
 * non-zero unused bits in the last character are -EBADMSG, with
 * *ret_bad_offset (when not NULL) set to the offset in text of the
 * offending character, or of the first character of the incomplete
 * quantum. *ret is NUL terminated (not counted in *ret_len), never NULL on
 * success, even for empty input. */
int base64_decode(const char *text, size_t len, unsigned char **ret, size_t *ret_len,
                  size_t *ret_bad_offset);

/* A new Ed25519 key pair, as PEM text interoperable with openssl(1): the
 * private key in PKCS#8 ("BEGIN PRIVATE KEY", unencrypted), the public key
 * as SubjectPublicKeyInfo ("BEGIN PUBLIC KEY"). */
int ed25519_keygen(char **ret_private_pem, char **ret_public_pem);

/* Signs msg with a PKCS#8 PEM Ed25519 private key (pem need not be NUL
 * terminated). -EINVAL when the PEM is not an unencrypted Ed25519 private
 * key. */
int ed25519_sign(const char *private_pem, size_t pem_len, const void *msg, size_t n,
                 unsigned char ret_sig[64]);

/* Checks an Ed25519 signature of msg against a "BEGIN PUBLIC KEY" PEM
 * (the first such block; text before it is skipped), with libsodium. 0
 * when it is valid; -EBADMSG when it is not (also when sig_len is not 64,
 * or the key is one of the small-order points libsodium refuses);
 * -EINVAL when the PEM is not an Ed25519 public key; -ELIBACC without
 * libsodium. */
int ed25519_verify(const char *public_pem, size_t pem_len, const void *msg, size_t n,
                   const unsigned char *sig, size_t sig_len);

/* The fingerprint of one line of an OpenSSH .pub file ("ssh-ed25519
 * AAAA... comment"), exactly as `ssh-keygen -lf` prints it:
 * "SHA256:" and the unpadded base64 of the SHA-256 of the key blob.
 * -EINVAL when the line is not "TYPE BASE64...": the blob must start with
 * TYPE and hold a key after it (for ssh-ed25519 exactly 32 bytes). */
int ssh_key_fingerprint(const char *pubkey_line, char **ret);

/* The X25519 public key of a 32-byte secret scalar (RFC 7748, clamped as
 * X25519 does), by libsodium: age's X25519 recipients (age-keygen). -EIO
 * when libsodium refuses (an all-zero result), -ELIBACC without it. */
int x25519_public_key(const unsigned char secret[32], unsigned char ret[32]);

/* Whether a 32-byte Ed25519 public key is a point that converts to
 * X25519 (libsodium's crypto_sign_ed25519_pk_to_curve25519: a valid
 * encoding, not of small order), as age's ssh-ed25519 recipients need. */
bool ed25519_public_key_converts(const unsigned char key[32]);
