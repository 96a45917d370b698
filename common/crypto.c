/* OpenSSL 3 and libsodium behind a small interface; see crypto.h.
 * Failures clear
 * OpenSSL's per-thread error queue, so a stale entry never surfaces later
 * in another user of the library (libcurl). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "crypto.h"
#include "dl.h"
#include "util.h"

/* libcrypto is loaded when first needed: the agent hashes and checks
 * signatures with libsodium, so it never maps OpenSSL
 * (1.5 MB, and 2.5 MB more for its provider). imagegen links it anyway
 * (pki.c); there the dlopen() finds it loaded. */
#define CRYPTO_SYMBOLS(X)                                                                          \
        X(BIO_ctrl)                                                                                \
        X(BIO_free)                                                                                \
        X(BIO_new)                                                                                 \
        X(BIO_new_mem_buf)                                                                         \
        X(BIO_s_mem)                                                                               \
        X(ERR_clear_error)                                                                         \
        X(EVP_DigestSign)                                                                          \
        X(EVP_DigestSignInit)                                                                      \
        X(EVP_MD_CTX_free)                                                                         \
        X(EVP_MD_CTX_new)                                                                          \
        X(EVP_PKEY_Q_keygen)                                                                       \
        X(EVP_PKEY_free)                                                                           \
        X(EVP_PKEY_get_id)                                                                         \
        X(OPENSSL_cleanse)                                                                         \
        X(PEM_read_bio_PrivateKey)                                                                 \
        X(PEM_write_bio_PUBKEY)                                                                    \
        X(PEM_write_bio_PrivateKey)
DL_DEFINE(libcrypto, SONAME_LIBCRYPTO, CRYPTO_SYMBOLS);

#define BIO_ctrl                 sym_BIO_ctrl
#define BIO_free                 sym_BIO_free
#define BIO_new                  sym_BIO_new
#define BIO_new_mem_buf          sym_BIO_new_mem_buf
#define BIO_s_mem                sym_BIO_s_mem
#define ERR_clear_error          sym_ERR_clear_error
#define EVP_DigestSign           sym_EVP_DigestSign
#define EVP_DigestSignInit       sym_EVP_DigestSignInit
#define EVP_MD_CTX_free          sym_EVP_MD_CTX_free
#define EVP_MD_CTX_new           sym_EVP_MD_CTX_new
#define EVP_PKEY_Q_keygen        sym_EVP_PKEY_Q_keygen
#define EVP_PKEY_free            sym_EVP_PKEY_free
#define EVP_PKEY_get_id          sym_EVP_PKEY_get_id
#define OPENSSL_cleanse          sym_OPENSSL_cleanse
#define PEM_read_bio_PrivateKey  sym_PEM_read_bio_PrivateKey
#define PEM_write_bio_PUBKEY     sym_PEM_write_bio_PUBKEY
#define PEM_write_bio_PrivateKey sym_PEM_write_bio_PrivateKey

/* The objects below exist only once libcrypto is loaded. */
static void bio_freep(BIO **b)
{
        if (*b)
                BIO_free(*b);
}
static void pkey_freep(EVP_PKEY **k)
{
        if (*k)
                EVP_PKEY_free(*k);
}
static void md_ctx_freep(EVP_MD_CTX **c)
{
        if (*c)
                EVP_MD_CTX_free(*c);
}
#define _cleanup_bio_    _cleanup_(bio_freep)
#define _cleanup_pkey_   _cleanup_(pkey_freep)
#define _cleanup_md_ctx_ _cleanup_(md_ctx_freep)

/* Drops whatever OpenSSL queued and returns r, for failure paths. */
static int ossl_fail(int r)
{
        ERR_clear_error();
        return r;
}

static void hex_encode(const unsigned char *p, size_t n, char *ret)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                ret[2 * i] = digits[p[i] >> 4];
                ret[2 * i + 1] = digits[p[i] & 15];
        }
        ret[2 * n] = '\0';
}

/* SHA-256 and HMAC-SHA256 are libsodium's, linked rather than loaded:
 * every run hashes (the instance id, each bundle member's checksum, the
 * callback's signature), so loading it later would save nothing. It maps
 * 0.2 MB where OpenSSL 3 would first load its default provider (2.5 MB and
 * 5M instructions) to hash a few KB. Both functions are pure and cannot
 * fail; sodium_init() is still called once first, as libsodium asks of
 * every program, and its result checked where it matters (signatures). */
static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_result = -1;

static void sodium_setup(void)
{
        sodium_result = sodium_init() < 0 ? -1 : 0;
}

static int sodium_ready(void)
{
        pthread_once(&sodium_once, sodium_setup);
        return sodium_result;
}

void sha256(const void *data, size_t n, unsigned char ret[32])
{
        static const unsigned char empty;

        (void)sodium_ready();
        crypto_hash_sha256(ret, n > 0 ? data : &empty, n);
}

void sha256_hex(const void *data, size_t n, char ret[65])
{
        unsigned char md[SHA256_BYTES];

        sha256(data, n, md);
        hex_encode(md, sizeof(md), ret);
}

/* HMAC (RFC 2104) with a key of any length: libsodium's incremental API
 * (the one-shot crypto_auth_hmacsha256() takes only 32-byte keys) hashes
 * a key longer than the 64-byte block first, as the RFC says. */
void hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t n, char ret[65])
{
        static const unsigned char empty;
        crypto_auth_hmacsha256_state st;
        unsigned char md[crypto_auth_hmacsha256_BYTES];

        (void)sodium_ready();
        crypto_auth_hmacsha256_init(&st, keylen > 0 ? key : &empty, keylen);
        if (n > 0)
                crypto_auth_hmacsha256_update(&st, data, n);
        crypto_auth_hmacsha256_final(&st, md);
        sodium_memzero(&st, sizeof(st));
        hex_encode(md, sizeof(md), ret);
}

int hmac_sha256_verify_hex(const void *key, size_t keylen, const void *data, size_t n,
                           const char *hex, size_t hex_len)
{
        static const unsigned char empty;
        crypto_auth_hmacsha256_state st;
        unsigned char md[crypto_auth_hmacsha256_BYTES], given[crypto_auth_hmacsha256_BYTES];
        int r;

        if (hex_len != 2 * sizeof(given))
                return -EBADMSG;
        for (size_t i = 0; i < sizeof(given); i++) {
                int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EBADMSG;
                given[i] = (unsigned char)(hi << 4 | lo);
        }
        (void)sodium_ready();
        crypto_auth_hmacsha256_init(&st, keylen > 0 ? key : &empty, keylen);
        if (n > 0)
                crypto_auth_hmacsha256_update(&st, data, n);
        crypto_auth_hmacsha256_final(&st, md);
        sodium_memzero(&st, sizeof(st));
        r = sodium_memcmp(md, given, sizeof(md)) == 0 ? 0 : -EBADMSG;
        sodium_memzero(md, sizeof(md));
        return r;
}

/* libsodium's generator (getrandom(2) on Linux), not OpenSSL's: the
 * agent draws a salt for each module it runs and an id for each job, and
 * RAND_bytes() mapped libcrypto and set up its provider for 16 bytes. */
int random_bytes(void *buf, size_t n)
{
        if (sodium_ready() < 0)
                return -EIO;
        if (n > 0)
                randombytes_buf(buf, n);
        return 0;
}

static const char b64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_encode(const void *data, size_t n, size_t line_width, char **ret)
{
        const unsigned char *p = data;
        size_t len, total, col = 0;
        char *out, *o;

        if (n / 3 >= SIZE_MAX / 8)
                return -ENOMEM;
        len = (n + 2) / 3 * 4;
        total = len + (line_width > 0 && len > 0 ? (len - 1) / line_width : 0) + 1;
        out = malloc(total);
        if (!out)
                return -ENOMEM;

        o = out;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16;
                size_t left = n - i;
                char q[4];

                if (left > 1)
                        v |= (uint32_t)p[i + 1] << 8;
                if (left > 2)
                        v |= p[i + 2];
                q[0] = b64_alphabet[(v >> 18) & 63];
                q[1] = b64_alphabet[(v >> 12) & 63];
                q[2] = left > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
                q[3] = left > 2 ? b64_alphabet[v & 63] : '=';
                for (size_t k = 0; k < 4; k++) {
                        if (line_width > 0 && col == line_width) {
                                *o++ = '\n';
                                col = 0;
                        }
                        *o++ = q[k];
                        col++;
                }
        }
        *o = '\0';
        *ret = out;
        return 0;
}

/* The value of a base64 digit, or -1. */
static int b64_value(unsigned char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

static bool b64_space(unsigned char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int b64_bad(size_t offset, size_t *ret_bad_offset)
{
        if (ret_bad_offset)
                *ret_bad_offset = offset;
        return -EBADMSG;
}

int base64_decode(const char *text, size_t len, unsigned char **ret, size_t *ret_len,
                  size_t *ret_bad_offset)
{
        _cleanup_free_ unsigned char *out = NULL;
        size_t o = 0, quantum_start = 0, last_digit = 0;
        unsigned q = 0, pad = 0; /* digits (and '=') in the current quantum; '=' seen */
        uint32_t v = 0;

        out = malloc(len / 4 * 3 + 3 + 1);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)text[i];
                int d;

                if (b64_space(c))
                        continue;
                if (pad > 0 && q == 0)
                        /* Something after a padded quantum. */
                        return b64_bad(i, ret_bad_offset);
                if (q == 0)
                        quantum_start = i;
                if (c == '=') {
                        /* Only "xx==" and "xxx=" are padded quantums. */
                        if (q < 2)
                                return b64_bad(i, ret_bad_offset);
                        pad++;
                } else {
                        d = b64_value(c);
                        if (d < 0 || pad > 0)
                                return b64_bad(i, ret_bad_offset);
                        v = v << 6 | (uint32_t)d;
                        last_digit = i;
                }
                q++;
                if (q < 4)
                        continue;

                /* A whole quantum: 4 digits, or 3 + "=", or 2 + "==". */
                v <<= 6 * pad;
                out[o++] = (unsigned char)(v >> 16);
                if (pad < 2)
                        out[o++] = (unsigned char)(v >> 8);
                if (pad < 1)
                        out[o++] = (unsigned char)v;
                /* The bits the padding leaves unused must be zero, or two
                 * texts would decode to the same bytes. */
                if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0))
                        return b64_bad(last_digit, ret_bad_offset);
                q = 0;
                v = 0;
        }
        if (q != 0)
                return b64_bad(quantum_start, ret_bad_offset);

        out[o] = '\0';
        *ret = TAKE_PTR(out);
        *ret_len = o;
        return 0;
}

/* The contents of a memory BIO as a NUL-terminated string. */
static int bio_to_string(BIO *b, char **ret)
{
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        char *s;

        if (n < 0 || (n > 0 && !p))
                return -EIO;
        s = strndup(p ? p : "", (size_t)n);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int ed25519_keygen(char **ret_private_pem, char **ret_public_pem)
{
        _cleanup_pkey_ EVP_PKEY *key = NULL;
        _cleanup_bio_ BIO *priv = NULL, *pub = NULL;
        _cleanup_free_ char *priv_s = NULL, *pub_s = NULL;
        int r = dl_load(&libcrypto);

        if (r < 0)
                return r;
        key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        if (!key)
                return ossl_fail(-EIO);
        priv = BIO_new(BIO_s_mem());
        pub = BIO_new(BIO_s_mem());
        if (!priv || !pub)
                return ossl_fail(-ENOMEM);
        /* PEM_write_bio_PrivateKey() writes PKCS#8, like openssl genpkey. */
        if (PEM_write_bio_PrivateKey(priv, key, NULL, NULL, 0, NULL, NULL) != 1 ||
            PEM_write_bio_PUBKEY(pub, key) != 1)
                return ossl_fail(-EIO);
        r = bio_to_string(priv, &priv_s);
        if (r < 0)
                return r;
        r = bio_to_string(pub, &pub_s);
        if (r < 0) {
                OPENSSL_cleanse(priv_s, strlen(priv_s));
                return r;
        }
        *ret_private_pem = TAKE_PTR(priv_s);
        *ret_public_pem = TAKE_PTR(pub_s);
        return 0;
}

/* Refuses to prompt for a passphrase: an encrypted key simply fails. */
static int no_password(char *buf _unused_, int size _unused_, int rwflag _unused_, void *u _unused_)
{
        return -1;
}

/* Parses an Ed25519 private key from PEM text; -EINVAL for anything else. */
static int load_private_key(const char *pem, size_t pem_len, EVP_PKEY **ret)
{
        _cleanup_bio_ BIO *b = NULL;
        EVP_PKEY *key;

        if (!pem || pem_len == 0 || pem_len > INT_MAX)
                return -EINVAL;
        if (dl_load(&libcrypto) < 0)
                return -ELIBACC;
        b = BIO_new_mem_buf(pem, (int)pem_len);
        if (!b)
                return ossl_fail(-ENOMEM);
        key = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
        if (!key)
                return ossl_fail(-EINVAL);
        if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
                EVP_PKEY_free(key);
                return ossl_fail(-EINVAL);
        }
        *ret = key;
        return 0;
}

int ed25519_sign(const char *private_pem, size_t pem_len, const void *msg, size_t n,
                 unsigned char ret_sig[64])
{
        static const unsigned char empty;
        _cleanup_pkey_ EVP_PKEY *key = NULL;
        _cleanup_md_ctx_ EVP_MD_CTX *ctx = NULL;
        unsigned char sig[ED25519_SIG_BYTES];
        size_t siglen = sizeof(sig);
        int r;

        r = load_private_key(private_pem, pem_len, &key);
        if (r < 0)
                return r;
        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return ossl_fail(-ENOMEM);
        if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
            EVP_DigestSign(ctx, sig, &siglen, msg ? msg : &empty, n) != 1 ||
            siglen != ED25519_SIG_BYTES)
                return ossl_fail(-EIO);
        memcpy(ret_sig, sig, sizeof(sig));
        return 0;
}

/* Checking a signature is libsodium's too: OpenSSL would first initialize
 * its provider, which costs a boot 4 MB and 5M instructions for one check. */

/* An Ed25519 SubjectPublicKeyInfo (RFC 8410) in DER is always these 12
 * bytes, then the 32 bytes of the key. */
static const unsigned char ed25519_spki[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                               0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

/* The raw key of the first "PUBLIC KEY" PEM block in pem (text before it
 * is skipped, as openssl(1) does). -EINVAL when there is none, or it is
 * not an Ed25519 key. */
static int ed25519_public_key(const char *pem, size_t pem_len, unsigned char ret[32])
{
        static const char begin[] = "-----BEGIN PUBLIC KEY-----";
        static const char end[] = "-----END PUBLIC KEY-----";
        _cleanup_free_ unsigned char *der = NULL;
        const char *b, *e;
        size_t n;
        int r;

        if (!pem)
                return -EINVAL;
        b = memmem(pem, pem_len, begin, sizeof(begin) - 1);
        if (!b)
                return -EINVAL;
        b += sizeof(begin) - 1;
        e = memmem(b, pem_len - (size_t)(b - pem), end, sizeof(end) - 1);
        if (!e)
                return -EINVAL;
        r = base64_decode(b, (size_t)(e - b), &der, &n, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || n != sizeof(ed25519_spki) + 32 ||
            memcmp(der, ed25519_spki, sizeof(ed25519_spki)) != 0)
                return -EINVAL;
        memcpy(ret, der + sizeof(ed25519_spki), 32);
        return 0;
}

int ed25519_verify(const char *public_pem, size_t pem_len, const void *msg, size_t n,
                   const unsigned char *sig, size_t sig_len)
{
        static const unsigned char empty;
        unsigned char key[32];
        int r;

        r = ed25519_public_key(public_pem, pem_len, key);
        if (r < 0)
                return r;
        if (!sig || sig_len != ED25519_SIG_BYTES)
                return -EBADMSG;
        if (sodium_ready() < 0)
                return -ELIBACC;
        return crypto_sign_ed25519_verify_detached(sig, msg ? msg : &empty, n, key) == 0 ? 0
                                                                                         : -EBADMSG;
}

/* An SSH wire string (a 32-bit big-endian length, then the bytes) at
 * offset in blob. Returns the offset after it, or -EINVAL. */
static int ssh_string(const unsigned char *blob, size_t blob_len, size_t offset,
                      const unsigned char **ret, size_t *ret_len)
{
        uint32_t n;

        if (offset > blob_len || blob_len - offset < 4 || blob_len > INT_MAX)
                return -EINVAL;
        n = (uint32_t)blob[offset] << 24 | (uint32_t)blob[offset + 1] << 16 |
            (uint32_t)blob[offset + 2] << 8 | blob[offset + 3];
        offset += 4;
        if (n > blob_len - offset)
                return -EINVAL;
        *ret = blob + offset;
        *ret_len = n;
        return (int)(offset + n);
}

int ssh_key_fingerprint(const char *pubkey_line, char **ret)
{
        _cleanup_free_ unsigned char *blob = NULL;
        _cleanup_free_ char *b64 = NULL;
        unsigned char md[SHA256_BYTES];
        const char *type, *data;
        const unsigned char *name, *key;
        size_t type_len, data_len, blob_len, b64_len, name_len, key_len;
        char *fp;
        int r;

        if (!pubkey_line)
                return -EINVAL;
        type = pubkey_line + strspn(pubkey_line, " \t");
        type_len = strcspn(type, " \t\r\n");
        data = type + type_len;
        data += strspn(data, " \t");
        data_len = strcspn(data, " \t\r\n");
        if (type_len == 0 || data_len == 0)
                return -EINVAL;

        r = base64_decode(data, data_len, &blob, &blob_len, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EINVAL;
        /* The blob is the key type as an SSH string, then the key. */
        r = ssh_string(blob, blob_len, 0, &name, &name_len);
        if (r < 0)
                return r;
        if (name_len != type_len || memcmp(name, type, type_len) != 0)
                return -EINVAL;
        r = ssh_string(blob, blob_len, (size_t)r, &key, &key_len);
        if (r < 0)
                return r;
        if (type_len == strlen("ssh-ed25519") && memcmp(type, "ssh-ed25519", type_len) == 0 &&
            (key_len != 32 || (size_t)r != blob_len))
                return -EINVAL;

        sha256(blob, blob_len, md);
        r = base64_encode(md, sizeof(md), 0, &b64);
        if (r < 0)
                return r;
        b64_len = strlen(b64);
        while (b64_len > 0 && b64[b64_len - 1] == '=')
                b64_len--;
        fp = strprintf("SHA256:%.*s", (int)b64_len, b64);
        if (!fp)
                return -ENOMEM;
        *ret = fp;
        return 0;
}

int x25519_public_key(const unsigned char secret[32], unsigned char ret[32])
{
        if (sodium_ready() < 0)
                return -ELIBACC;
        return crypto_scalarmult_curve25519_base(ret, secret) == 0 ? 0 : -EIO;
}

bool ed25519_public_key_converts(const unsigned char key[32])
{
        unsigned char x[crypto_scalarmult_curve25519_BYTES];

        if (sodium_ready() < 0)
                return false;
        return crypto_sign_ed25519_pk_to_curve25519(x, key) == 0;
}
