/* Hashes and HMAC (ours, against vectors and against OpenSSL), base64
 * (round trips and every strict refusal with its offset), Ed25519 against
 * keys and signatures made by openssl(1), and SSH fingerprints as
 * ssh-keygen -lf printed them. */
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crypto.h"
#include "fs.h"
#include "util.h"
#include "tap.h"

/* Made with `openssl genpkey -algorithm ed25519` and `openssl pkey
 * -pubout`; SIG is `openssl pkeyutl -sign -rawin` of MSG with it (Ed25519
 * is deterministic, so ours must give the same bytes). */
#define OSSL_PRIV                                                                                  \
        "-----BEGIN PRIVATE KEY-----\n"                                                            \
        "MC4CAQAwBQYDK2VwBCIEIKu/5A2RpYCeh/h6RgFYCTJPmS5It/kouszMsWnT+/hO\n"                       \
        "-----END PRIVATE KEY-----\n"
#define OSSL_PUB                                                                                   \
        "-----BEGIN PUBLIC KEY-----\n"                                                             \
        "MCowBQYDK2VwAyEAdFCGp0qYMFMBDZM/ErArLTxgjLSmsV2z9Cb1koNeH+k=\n"                           \
        "-----END PUBLIC KEY-----\n"
#define OSSL_MSG "firstboot bundle.yaml\n"
static const unsigned char ossl_sig[64] = {
        0x99, 0xcb, 0xeb, 0xa0, 0xdd, 0xde, 0x21, 0x51, 0x29, 0x8d, 0xda, 0xad, 0x6a,
        0x03, 0xb0, 0x17, 0xdb, 0x96, 0x2c, 0x6d, 0x91, 0xaa, 0xf3, 0xe6, 0x91, 0xd8,
        0x8b, 0xef, 0xde, 0x87, 0x8a, 0xd4, 0x2e, 0x77, 0x4a, 0x17, 0x48, 0x37, 0xe7,
        0x22, 0x70, 0x9d, 0x1a, 0x1e, 0xcc, 0xf9, 0x78, 0x48, 0x79, 0x6f, 0x65, 0xdc,
        0x90, 0x9b, 0xfa, 0xec, 0xd0, 0x7f, 0xa7, 0xb4, 0x8f, 0x55, 0xde, 0x0f,
};
/* A P-256 key: valid PEM, wrong algorithm. */
#define EC_PUB                                                                                     \
        "-----BEGIN PUBLIC KEY-----\n"                                                             \
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEA54RbbsavVKBfF5dSLvlqYHpn9Vj\n"                       \
        "edl53gHP8tW43P30BtndbyFw2C+KS754Tz+gzxvi+SoSZHexl1gPUno2Xw==\n"                           \
        "-----END PUBLIC KEY-----\n"

/* Keys made with ssh-keygen and what `ssh-keygen -lf` printed for them. */
#define SSH_ED25519                                                                                \
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMWm4fiYx0zNkXrBlmlrJ4jCSSYmfhc7mEUWbe1zNWhI "        \
        "test@vector\n"
#define SSH_ED25519_FP "SHA256:ZaVzBs+19yJmfgafrwuTSZqJYbl/SCHN02JE6rz4Ie4"
#define SSH_RSA                                                                                    \
        "ssh-rsa "                                                                                 \
        "AAAAB3NzaC1yc2EAAAADAQABAAAAgQDhr0KbhQUWAkArTyLj75DrYMPe4QyR4u9eowu77hYFFUn2GHNUAHAap4DI" \
        "7"                                                                                        \
        "7gNlcVY1kGnuuXQF3dYvwZdjxJ2L8QMUtCC55ZIraQGiRkOdZl4Bpqswv9811DaKAzkg+"                    \
        "pECAWZGmJxqVrXsVA5fw"                                                                     \
        "H0OE+T/UEJDy+9EURbybA/cw== rsa@vector"
#define SSH_RSA_FP "SHA256:j/ByF6/m4FiGPa8aTk3yUP4edPneWOeFiYnpVLp5lqQ"

TEST(sha256_vectors)
{
        char hex[SHA256_HEX_SIZE];
        unsigned char md[SHA256_BYTES];

        sha256_hex("", 0, hex);
        CHECK_STREQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        sha256_hex(NULL, 0, hex);
        CHECK_STREQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        sha256_hex("abc", 3, hex);
        CHECK_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
        CHECK_STREQ(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        sha256("abc", 3, md);
        CHECK(md[0] == 0xba && md[31] == 0xad);
}

TEST(hmac_rfc4231)
{
        char hex[SHA256_HEX_SIZE];
        unsigned char key1[20];

        /* Test case 2. */
        hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, hex);
        CHECK_STREQ(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        /* Test case 1. */
        memset(key1, 0x0b, sizeof(key1));
        hmac_sha256_hex(key1, sizeof(key1), "Hi There", 8, hex);
        CHECK_STREQ(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
        /* Test case 6: a key longer than the block, hashed first. */
        unsigned char key6[131];
        memset(key6, 0xaa, sizeof(key6));
        hmac_sha256_hex(key6, sizeof(key6),
                        "Test Using Larger Than Block-Size Key - Hash Key First", 54, hex);
        CHECK_STREQ(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
        /* An empty key and message (python3 hmac.new(b"", b"", sha256)). */
        hmac_sha256_hex(NULL, 0, NULL, 0, hex);
        CHECK_STREQ(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

/* libsodium's SHA-256 and HMAC (ours before) give OpenSSL's bytes for every length across the
 * padding boundaries (55, 56, 64, 119, 120 bytes...) and for keys shorter
 * and longer than the 64-byte block (a longer one is hashed first). */
TEST(sha256_hmac_match_openssl)
{
        static unsigned char buf[1100];
        unsigned char want[EVP_MAX_MD_SIZE], got[SHA256_BYTES];
        char hex[SHA256_HEX_SIZE], want_hex[SHA256_HEX_SIZE];
        unsigned len;
        int bad = 0;

        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = (unsigned char)(i * 131 + (i >> 3));
        for (size_t n = 0; n <= sizeof(buf); n++) {
                sha256(buf, n, got);
                if (EVP_Digest(buf, n, want, &len, EVP_sha256(), NULL) != 1 ||
                    memcmp(got, want, sizeof(got)) != 0)
                        bad++;
        }
        CHECK_INTEQ(bad, 0);
        for (size_t k = 0; k <= 150; k++) {
                hmac_sha256_hex(buf + 7, k, buf, 200 + k, hex);
                HMAC(EVP_sha256(), buf + 7, (int)k, buf, 200 + k, want, &len);
                for (unsigned i = 0; i < SHA256_BYTES; i++)
                        sprintf(want_hex + 2 * i, "%02x", want[i]);
                if (strcmp(hex, want_hex) != 0)
                        bad++;
        }
        CHECK_INTEQ(bad, 0);
        /* FIPS 180-2's long vector: a million 'a's. */
        _cleanup_free_ char *a = malloc(1000000);
        memset(a, 'a', 1000000);
        sha256_hex(a, 1000000, hex);
        CHECK_STREQ(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(random)
{
        unsigned char a[32] = {0}, b[32] = {0};

        CHECK_INTEQ(random_bytes(a, sizeof(a)), 0);
        CHECK_INTEQ(random_bytes(b, sizeof(b)), 0);
        CHECK(memcmp(a, b, sizeof(a)) != 0);
        CHECK_INTEQ(random_bytes(a, 0), 0);
}

static void check_encode(const char *in, size_t width, const char *want)
{
        _cleanup_free_ char *out = NULL;

        CHECK_INTEQ(base64_encode(in, strlen(in), width, &out), 0);
        CHECK_STREQ(out, want);
}

TEST(base64_encode_vectors)
{
        /* RFC 4648, section 10. */
        check_encode("", 0, "");
        check_encode("f", 0, "Zg==");
        check_encode("fo", 0, "Zm8=");
        check_encode("foo", 0, "Zm9v");
        check_encode("foob", 0, "Zm9vYg==");
        check_encode("fooba", 0, "Zm9vYmE=");
        check_encode("foobar", 0, "Zm9vYmFy");
        check_encode("\xff\xfe\xfd", 0, "//79");
        /* Wrapping: a newline between lines, none at the end. */
        check_encode("foobar", 4, "Zm9v\nYmFy");
        check_encode("foobar", 3, "Zm9\nvYm\nFy");
        check_encode("foobar", 8, "Zm9vYmFy");
        check_encode("foob", 5, "Zm9vY\ng==");
        check_encode("", 4, "");
}

static void check_decode(const char *text, const char *want)
{
        _cleanup_free_ unsigned char *out = NULL;
        size_t len = 99, bad = 12345;

        CHECK_INTEQ(base64_decode(text, strlen(text), &out, &len, &bad), 0);
        CHECK(out != NULL);
        if (!out)
                return;
        CHECK_INTEQ(len, strlen(want));
        CHECK(memcmp(out, want, strlen(want)) == 0);
        CHECK(out[len] == '\0');
        CHECK_INTEQ(bad, 12345); /* untouched on success */
}

TEST(base64_decode_vectors)
{
        check_decode("", "");
        check_decode(" \n\t\r\v\f", "");
        check_decode("Zg==", "f");
        check_decode("Zm8=", "fo");
        check_decode("Zm9v", "foo");
        check_decode("Zm9vYg==", "foob");
        check_decode("Zm9vYmE=", "fooba");
        check_decode("Zm9vYmFy", "foobar");
        check_decode("//79", "\xff\xfe\xfd");
        /* Whitespace anywhere, padding split by a newline included. */
        check_decode("Zm9v\nYmFy\r\n", "foobar");
        check_decode("  Z m 9 v\tY g = \n = \n\n", "foob");
        check_decode("Zg=\n=", "f");
}

static void check_bad(const char *text, size_t len, size_t want_offset)
{
        _cleanup_free_ unsigned char *out = NULL;
        size_t out_len = 77, bad = 12345;

        CHECK_INTEQ(base64_decode(text, len, &out, &out_len, &bad), -EBADMSG);
        CHECK_INTEQ(bad, want_offset);
        CHECK(out == NULL);
        CHECK_INTEQ(out_len, 77);
        /* The offset is optional. */
        CHECK_INTEQ(base64_decode(text, len, &out, &out_len, NULL), -EBADMSG);
}
#define BAD(text, offset) check_bad(text, sizeof(text) - 1, offset)

TEST(base64_decode_strict)
{
        /* Characters outside the alphabet. */
        BAD("Zm9v!mFy", 4);
        BAD("Zm9v-mFy", 4); /* base64url is not accepted */
        BAD("Zm9v_mFy", 4); /* ditto */
        BAD("Zm\0v", 2);    /* NUL inside the given length */
        BAD("Zm9v\xc3\xa9", 4);
        /* '=' where it cannot be. */
        BAD("=Zm9", 0);
        BAD("Z=m9", 1);
        BAD("====", 0);
        BAD("Zm=v", 3); /* a digit after "xx=" */
        /* Data after the padding. */
        BAD("Zm9vYg==Zm9v", 8);
        BAD("Zg==\nZg==", 5);
        BAD("Zm9vYg===", 8);
        BAD("Zm8==", 4);
        /* Truncated quantums: the offset of their first character. */
        BAD("Zm9vYg", 4);
        BAD("Zm9vY", 4);
        BAD("Zm9vYmF", 4);
        BAD("Zg=", 0);
        BAD("Zm9v\n  Yg", 7);
        /* Unused bits that are not zero. */
        BAD("Zh==", 1);
        BAD("Zm9=", 2);
        BAD("Zm9vZm9=", 6);
}

TEST(base64_round_trip)
{
        static const size_t widths[] = {0, 1, 3, 4, 5, 64, 76};
        unsigned char data[300];

        CHECK_INTEQ(random_bytes(data, sizeof(data)), 0);
        for (size_t w = 0; w < ARRAY_SIZE(widths); w++)
                for (size_t n = 0; n <= sizeof(data); n += (n < 20 ? 1 : 37)) {
                        _cleanup_free_ char *text = NULL;
                        _cleanup_free_ unsigned char *back = NULL;
                        size_t back_len = 0;

                        CHECK_INTEQ(base64_encode(data, n, widths[w], &text), 0);
                        if (!text)
                                continue;
                        if (widths[w] > 0) {
                                /* Every line but the last is exactly the width. */
                                const char *p = text;
                                for (const char *nl; (nl = strchr(p, '\n')); p = nl + 1)
                                        CHECK_INTEQ(nl - p, widths[w]);
                                CHECK(strlen(p) <= widths[w]);
                                CHECK(strlen(p) > 0 || n == 0);
                        } else {
                                CHECK(!strchr(text, '\n'));
                        }
                        CHECK_INTEQ(base64_decode(text, strlen(text), &back, &back_len, NULL), 0);
                        CHECK_INTEQ(back_len, n);
                        CHECK(back && memcmp(back, data, n) == 0);
                }
}

TEST(ed25519_keygen_sign_verify)
{
        _cleanup_free_ char *priv = NULL, *pub = NULL, *priv2 = NULL, *pub2 = NULL;
        unsigned char sig[ED25519_SIG_BYTES], sig2[ED25519_SIG_BYTES];
        const char msg[] = "version: 1\nname: colony-prod\n";

        CHECK_INTEQ(ed25519_keygen(&priv, &pub), 0);
        CHECK_INTEQ(ed25519_keygen(&priv2, &pub2), 0);
        if (!priv || !pub || !priv2 || !pub2)
                return;
        CHECK(startswith(priv, "-----BEGIN PRIVATE KEY-----\n"));
        CHECK(endswith(priv, "-----END PRIVATE KEY-----\n"));
        CHECK(startswith(pub, "-----BEGIN PUBLIC KEY-----\n"));
        CHECK(endswith(pub, "-----END PUBLIC KEY-----\n"));
        CHECK(!streq(pub, pub2));

        CHECK_INTEQ(ed25519_sign(priv, strlen(priv), msg, strlen(msg), sig), 0);
        CHECK_INTEQ(ed25519_verify(pub, strlen(pub), msg, strlen(msg), sig, sizeof(sig)), 0);
        /* Deterministic. */
        CHECK_INTEQ(ed25519_sign(priv, strlen(priv), msg, strlen(msg), sig2), 0);
        CHECK(memcmp(sig, sig2, sizeof(sig)) == 0);

        /* Every flipped bit of the signature, and one of the message, fails. */
        for (size_t i = 0; i < sizeof(sig) * 8; i++) {
                memcpy(sig2, sig, sizeof(sig));
                sig2[i / 8] ^= (unsigned char)(1u << (i % 8));
                int r = ed25519_verify(pub, strlen(pub), msg, strlen(msg), sig2, sizeof(sig2));
                if (r != -EBADMSG) {
                        fprintf(stderr, "  bit %zu: %d\n", i, r);
                        CHECK_INTEQ(r, -EBADMSG);
                        break;
                }
        }
        {
                char m2[sizeof(msg)];
                memcpy(m2, msg, sizeof(msg));
                m2[3] ^= 0x01;
                CHECK_INTEQ(ed25519_verify(pub, strlen(pub), m2, strlen(m2), sig, sizeof(sig)),
                            -EBADMSG);
        }
        /* A truncated or extended message. */
        CHECK_INTEQ(ed25519_verify(pub, strlen(pub), msg, strlen(msg) - 1, sig, sizeof(sig)),
                    -EBADMSG);
        CHECK_INTEQ(ed25519_verify(pub, strlen(pub), msg, sizeof(msg), sig, sizeof(sig)), -EBADMSG);
        /* The wrong key. */
        CHECK_INTEQ(ed25519_verify(pub2, strlen(pub2), msg, strlen(msg), sig, sizeof(sig)),
                    -EBADMSG);
        /* Wrong lengths. */
        CHECK_INTEQ(ed25519_verify(pub, strlen(pub), msg, strlen(msg), sig, 63), -EBADMSG);
        CHECK_INTEQ(ed25519_verify(pub, strlen(pub), msg, strlen(msg), sig, 0), -EBADMSG);
        CHECK_INTEQ(ed25519_verify(pub, strlen(pub), msg, strlen(msg), NULL, 0), -EBADMSG);

        /* An empty message signs and verifies. */
        CHECK_INTEQ(ed25519_sign(priv, strlen(priv), NULL, 0, sig), 0);
        CHECK_INTEQ(ed25519_verify(pub, strlen(pub), "", 0, sig, sizeof(sig)), 0);
}

TEST(ed25519_openssl_vector)
{
        unsigned char sig[ED25519_SIG_BYTES];
        const char priv[] = OSSL_PRIV, pub[] = OSSL_PUB, msg[] = OSSL_MSG;

        CHECK_INTEQ(ed25519_sign(priv, strlen(priv), msg, strlen(msg), sig), 0);
        CHECK(memcmp(sig, ossl_sig, sizeof(sig)) == 0);
        CHECK_INTEQ(ed25519_verify(pub, strlen(pub), msg, strlen(msg), ossl_sig, 64), 0);
        /* The PEM need not be NUL-terminated: only pem_len bytes count. */
        {
                char copy[sizeof(pub) + 8];
                memcpy(copy, pub, strlen(pub));
                memset(copy + strlen(pub), 'x', sizeof(copy) - strlen(pub));
                CHECK_INTEQ(ed25519_verify(copy, strlen(pub), msg, strlen(msg), ossl_sig, 64), 0);
        }
}

/* RFC 8032's test vectors 1 (an empty message) and 2, checked by libsodium;
 * and what openssl(1) accepts around a PEM: text before it. */
TEST(ed25519_rfc8032_vectors)
{
        static const char pub1[] = "-----BEGIN PUBLIC KEY-----\n"
                                   "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
                                   "-----END PUBLIC KEY-----\n";
        static const char pub2[] = "a comment line\n"
                                   "-----BEGIN PUBLIC KEY-----\n"
                                   "MCowBQYDK2VwAyEAPUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=\n"
                                   "-----END PUBLIC KEY-----\n";
        static const unsigned char sig1[64] = {
                0xe5, 0x56, 0x43, 0x00, 0xc3, 0x60, 0xac, 0x72, 0x90, 0x86, 0xe2, 0xcc, 0x80,
                0x6e, 0x82, 0x8a, 0x84, 0x87, 0x7f, 0x1e, 0xb8, 0xe5, 0xd9, 0x74, 0xd8, 0x73,
                0xe0, 0x65, 0x22, 0x49, 0x01, 0x55, 0x5f, 0xb8, 0x82, 0x15, 0x90, 0xa3, 0x3b,
                0xac, 0xc6, 0x1e, 0x39, 0x70, 0x1c, 0xf9, 0xb4, 0x6b, 0xd2, 0x5b, 0xf5, 0xf0,
                0x59, 0x5b, 0xbe, 0x24, 0x65, 0x51, 0x41, 0x43, 0x8e, 0x7a, 0x10, 0x0b};
        static const unsigned char sig2[64] = {
                0x92, 0xa0, 0x09, 0xa9, 0xf0, 0xd4, 0xca, 0xb8, 0x72, 0x0e, 0x82, 0x0b, 0x5f,
                0x64, 0x25, 0x40, 0xa2, 0xb2, 0x7b, 0x54, 0x16, 0x50, 0x3f, 0x8f, 0xb3, 0x76,
                0x22, 0x23, 0xeb, 0xdb, 0x69, 0xda, 0x08, 0x5a, 0xc1, 0xe4, 0x3e, 0x15, 0x99,
                0x6e, 0x45, 0x8f, 0x36, 0x13, 0xd0, 0xf1, 0x1d, 0x8c, 0x38, 0x7b, 0x2e, 0xae,
                0xb4, 0x30, 0x2a, 0xee, 0xb0, 0x0d, 0x29, 0x16, 0x12, 0xbb, 0x0c, 0x00};
        unsigned char bad[64];

        CHECK_INTEQ(ed25519_verify(pub1, strlen(pub1), NULL, 0, sig1, 64), 0);
        CHECK_INTEQ(ed25519_verify(pub2, strlen(pub2), "\x72", 1, sig2, 64), 0);
        /* The wrong message, key or signature. */
        CHECK_INTEQ(ed25519_verify(pub2, strlen(pub2), "\x73", 1, sig2, 64), -EBADMSG);
        CHECK_INTEQ(ed25519_verify(pub1, strlen(pub1), "\x72", 1, sig2, 64), -EBADMSG);
        for (unsigned bit = 0; bit < 512; bit += 37) {
                memcpy(bad, sig2, sizeof(bad));
                bad[bit / 8] ^= (unsigned char)(1u << (bit % 8));
                CHECK_INTEQ(ed25519_verify(pub2, strlen(pub2), "\x72", 1, bad, 64), -EBADMSG);
        }
}

TEST(ed25519_bad_keys)
{
        unsigned char sig[ED25519_SIG_BYTES] = {0};
        const char priv[] = OSSL_PRIV, pub[] = OSSL_PUB, ec[] = EC_PUB;
        const char *junk = "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n";

        /* Not Ed25519. */
        CHECK_INTEQ(ed25519_verify(ec, strlen(ec), "m", 1, ossl_sig, 64), -EINVAL);
        /* Also with a bad signature length: the key is checked first. */
        CHECK_INTEQ(ed25519_verify(ec, strlen(ec), "m", 1, ossl_sig, 3), -EINVAL);
        /* Not a public key, or not a key. */
        CHECK_INTEQ(ed25519_verify(priv, strlen(priv), "m", 1, ossl_sig, 64), -EINVAL);
        CHECK_INTEQ(ed25519_verify(junk, strlen(junk), "m", 1, ossl_sig, 64), -EINVAL);
        CHECK_INTEQ(ed25519_verify("", 0, "m", 1, ossl_sig, 64), -EINVAL);
        CHECK_INTEQ(ed25519_verify(pub, 30, "m", 1, ossl_sig, 64), -EINVAL);
        /* Signing wants a private key. */
        CHECK_INTEQ(ed25519_sign(pub, strlen(pub), "m", 1, sig), -EINVAL);
        CHECK_INTEQ(ed25519_sign(ec, strlen(ec), "m", 1, sig), -EINVAL);
        CHECK_INTEQ(ed25519_sign("", 0, "m", 1, sig), -EINVAL);
}

/* Runs argv with stdin from in_path (or /dev/null) and returns its stdout
 * (at most 64 KiB), or NULL when it could not run or failed. */
static char *run_capture(char *const argv[], const char *in_path)
{
        int pipefd[2], status;
        struct buf out = {0};
        char chunk[4096];
        pid_t pid;
        ssize_t n;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return NULL;
        pid = fork();
        if (pid < 0)
                return NULL;
        if (pid == 0) {
                int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
                int null = open("/dev/null", O_WRONLY);
                if (in < 0 || null < 0 || dup2(in, 0) < 0 || dup2(pipefd[1], 1) < 0 ||
                    dup2(null, 2) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(pipefd[1]);
        while ((n = read(pipefd[0], chunk, sizeof(chunk))) > 0 && out.len < 65536)
                if (buf_append(&out, chunk, (size_t)n) < 0)
                        break;
        close(pipefd[0]);
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                buf_free(&out);
                return NULL;
        }
        if (buf_append(&out, "", 0) < 0)
                return NULL;
        return buf_steal(&out);
}

static bool have_program(const char *name)
{
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)"command -v \"$0\"", (char *)name,
                        NULL};
        _cleanup_free_ char *out = run_capture(argv, NULL);
        return out && *out;
}

/* Keys we make are read by openssl(1), which derives the same public key
 * and verifies our signature. */
TEST(ed25519_openssl_interop)
{
        _cleanup_free_ char *priv = NULL, *pub = NULL, *dir = NULL, *kpath = NULL, *mpath = NULL,
                            *spath = NULL, *derived = NULL, *verified = NULL;
        const char *base = getenv("TESTTMP");
        unsigned char sig[ED25519_SIG_BYTES];
        const char msg[] = "signed by firstboot\n";

        if (!have_program("openssl")) {
                fprintf(stderr, "  # openssl not installed, skipped\n");
                return;
        }
        dir = strprintf("%s/test-crypto.XXXXXX", base && *base ? base : "/tmp");
        if (!dir || !mkdtemp(dir))
                abort();
        kpath = strprintf("%s/key.pem", dir);
        mpath = strprintf("%s/msg", dir);
        spath = strprintf("%s/sig", dir);
        CHECK_INTEQ(ed25519_keygen(&priv, &pub), 0);
        CHECK_INTEQ(ed25519_sign(priv, strlen(priv), msg, strlen(msg), sig), 0);
        CHECK(write_file_atomic(kpath, priv, strlen(priv), 0600, (uid_t)-1, (gid_t)-1) >= 0);
        CHECK(write_file_atomic(mpath, msg, strlen(msg), 0600, (uid_t)-1, (gid_t)-1) >= 0);
        CHECK(write_file_atomic(spath, sig, sizeof(sig), 0600, (uid_t)-1, (gid_t)-1) >= 0);

        char *pubout[] = {
                (char *)"openssl", (char *)"pkey", (char *)"-in", kpath, (char *)"-pubout", NULL};
        derived = run_capture(pubout, NULL);
        CHECK_STREQ(derived, pub);

        /* -in, not stdin: Ed25519 is one-shot and openssl needs the size. */
        char *verify[] = {(char *)"openssl",
                          (char *)"pkeyutl",
                          (char *)"-verify",
                          (char *)"-rawin",
                          (char *)"-inkey",
                          kpath,
                          (char *)"-sigfile",
                          spath,
                          (char *)"-in",
                          mpath,
                          NULL};
        verified = run_capture(verify, NULL);
        CHECK(verified && strstr(verified, "Signature Verified Successfully"));
        if (!getenv("KEEP"))
                rm_rf(dir);
}

TEST(ssh_fingerprint_vectors)
{
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        CHECK_INTEQ(ssh_key_fingerprint(SSH_ED25519, &a), 0);
        CHECK_STREQ(a, SSH_ED25519_FP);
        CHECK_INTEQ(ssh_key_fingerprint(SSH_RSA, &b), 0);
        CHECK_STREQ(b, SSH_RSA_FP);
        /* Leading blanks, no comment, CRLF. */
        CHECK_INTEQ(ssh_key_fingerprint("  ssh-ed25519 "
                                        "AAAAC3NzaC1lZDI1NTE5AAAAIMWm4fiYx0zNkXrBlmlrJ4jCSSYmfhc7mE"
                                        "UWbe1zNWhI\r\n",
                                        &c),
                    0);
        CHECK_STREQ(c, SSH_ED25519_FP);
}

TEST(ssh_fingerprint_bad)
{
        _cleanup_free_ char *fp = NULL;

        CHECK_INTEQ(ssh_key_fingerprint("", &fp), -EINVAL);
        CHECK_INTEQ(ssh_key_fingerprint("ssh-ed25519", &fp), -EINVAL);
        CHECK_INTEQ(ssh_key_fingerprint("ssh-ed25519 !!!! comment", &fp), -EINVAL);
        CHECK_INTEQ(ssh_key_fingerprint("ssh-ed25519 AAAA", &fp), -EINVAL);
        /* The blob names another type. */
        CHECK_INTEQ(ssh_key_fingerprint("ssh-rsa "
                                        "AAAAC3NzaC1lZDI1NTE5AAAAIMWm4fiYx0zNkXrBlmlrJ4jCSSYmfhc7mE"
                                        "UWbe1zNWhI",
                                        &fp),
                    -EINVAL);
        /* Blobs with the type but no key, or a key of the wrong size. */
        CHECK_INTEQ(ssh_key_fingerprint("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", &fp), -EINVAL);
        CHECK_INTEQ(ssh_key_fingerprint("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AA==", &fp), -EINVAL);
        CHECK_INTEQ(ssh_key_fingerprint("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAAQA=", &fp), -EINVAL);
        CHECK_INTEQ(ssh_key_fingerprint("ssh-rsa AAAAB3NzaC1yc2EAAAAEAQAB", &fp), -EINVAL);
        CHECK(fp == NULL);
}

/* Our fingerprint agrees with ssh-keygen's for a key made now. */
TEST(ssh_fingerprint_ssh_keygen)
{
        _cleanup_free_ char *dir = NULL, *key = NULL, *pub = NULL, *line = NULL, *ours = NULL,
                            *theirs = NULL;
        const char *base = getenv("TESTTMP");

        if (!have_program("ssh-keygen")) {
                fprintf(stderr, "  # ssh-keygen not installed, skipped\n");
                return;
        }
        dir = strprintf("%s/test-crypto.XXXXXX", base && *base ? base : "/tmp");
        if (!dir || !mkdtemp(dir))
                abort();
        key = strprintf("%s/key", dir);
        pub = strprintf("%s/key.pub", dir);
        char *gen[] = {(char *)"ssh-keygen", (char *)"-q", (char *)"-t", (char *)"ed25519",
                       (char *)"-N",         (char *)"",   (char *)"-C", (char *)"x@y",
                       (char *)"-f",         key,          NULL};
        _cleanup_free_ char *ignored = run_capture(gen, NULL);
        CHECK(ignored != NULL);
        char *lf[] = {(char *)"ssh-keygen", (char *)"-lf", pub, NULL};
        theirs = run_capture(lf, NULL);
        CHECK(read_line_file(pub, &line) >= 0);
        if (theirs && line) {
                CHECK_INTEQ(ssh_key_fingerprint(line, &ours), 0);
                CHECK(ours && strstr(theirs, ours) && strchr(theirs, ' ') &&
                      strncmp(strchr(theirs, ' ') + 1, ours, strlen(ours)) == 0);
        }
        if (!getenv("KEEP"))
                rm_rf(dir);
}

TAP_MAIN
