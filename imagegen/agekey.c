/* age recipients and keys; see agekey.h for what is checked and where it
 * comes from. */
#include "agekey.h"

#include "crypto.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char bech32_charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static char lower(char c)
{
        return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* BIP 173's checksum over the expanded hrp and the 5-bit values. */
static uint32_t bech32_polymod_step(uint32_t chk, unsigned v)
{
        static const uint32_t gen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
        uint32_t top = chk >> 25;

        chk = ((chk & 0x1ffffff) << 5) ^ v;
        for (int i = 0; i < 5; i++)
                if ((top >> i) & 1)
                        chk ^= gen[i];
        return chk;
}

static uint32_t bech32_hrp_checksum(const char *hrp, size_t n)
{
        uint32_t chk = 1;

        for (size_t i = 0; i < n; i++)
                chk = bech32_polymod_step(chk, (unsigned char)lower(hrp[i]) >> 5);
        chk = bech32_polymod_step(chk, 0);
        for (size_t i = 0; i < n; i++)
                chk = bech32_polymod_step(chk, (unsigned char)lower(hrp[i]) & 31);
        return chk;
}

static int bech32_value(char c)
{
        const char *p = c ? strchr(bech32_charset, c) : NULL;
        return p ? (int)(p - bech32_charset) : -1;
}

/* An "age1" X25519 recipient: 58 data characters (52 for 32 bytes, 6 of
 * checksum), all lowercase. */
static int check_x25519(const char *s, size_t n, const char **why)
{
        uint32_t chk = bech32_hrp_checksum("age", 3);
        unsigned acc = 0, bits = 0;
        size_t bytes = 0;

        if (memchr(s + 4, '1', n - 4)) {
                *why = "an age plugin recipient (age1NAME1...): no plugin is installed on the "
                       "server";
                return -EINVAL;
        }
        if (n != 4 + 58) {
                *why = "an age1 recipient is 62 characters long (age-keygen -y prints it)";
                return -EINVAL;
        }
        for (size_t i = 4; i < n; i++) {
                int v = bech32_value(s[i]);
                if (v < 0) {
                        *why = "an age1 recipient holds only lowercase bech32 characters "
                               "(no 1, b, i, o)";
                        return -EINVAL;
                }
                chk = bech32_polymod_step(chk, (unsigned)v);
                if (i >= n - 6)
                        continue;
                acc = (acc << 5) | (unsigned)v;
                bits += 5;
                if (bits >= 8) {
                        bits -= 8;
                        bytes++;
                        acc &= (1u << bits) - 1;
                }
        }
        if (chk != 1) {
                *why = "the bech32 checksum of this age1 recipient is wrong (a typo?)";
                return -EINVAL;
        }
        if (bytes != 32 || bits >= 5 || acc != 0) {
                *why = "this age1 recipient does not hold a 32-byte X25519 key";
                return -EINVAL;
        }
        return 0;
}

/* An SSH wire string at *p (a 32-bit big-endian length, then the bytes). */
static bool ssh_take(const unsigned char **p, size_t *left, const unsigned char **ret,
                     size_t *ret_len)
{
        if (*left < 4)
                return false;
        uint32_t n = (uint32_t)(*p)[0] << 24 | (uint32_t)(*p)[1] << 16 | (uint32_t)(*p)[2] << 8 |
                     (*p)[3];
        if (n > *left - 4)
                return false;
        *ret = *p + 4;
        *ret_len = n;
        *p += 4 + (size_t)n;
        *left -= 4 + (size_t)n;
        return true;
}

/* The bits of a non-negative mpint (RFC 4251: two's complement, big
 * endian, no needless leading zero byte). -1 for a negative or badly
 * encoded one. */
static long mpint_bits(const unsigned char *b, size_t n)
{
        if (n == 0)
                return 0;
        if (b[0] & 0x80)
                return -1;
        if (b[0] == 0 && (n == 1 || !(b[1] & 0x80)))
                return -1;
        size_t i = 0;
        while (i < n && b[i] == 0)
                i++;
        if (i == n)
                return 0;
        long bits = (long)(n - i - 1) * 8;
        for (unsigned v = b[i]; v; v >>= 1)
                bits++;
        return bits;
}

static int check_ssh(const char *s, size_t n, const char **why)
{
        size_t tlen = 0;
        while (tlen < n && s[tlen] != ' ')
                tlen++;
        bool ed = tlen == 11 && memcmp(s, "ssh-ed25519", 11) == 0;
        bool rsa = tlen == 7 && memcmp(s, "ssh-rsa", 7) == 0;
        if (!ed && !rsa) {
                *why = "an SSH recipient is ssh-ed25519 or ssh-rsa (age takes no other SSH key)";
                return -EINVAL;
        }
        if (tlen == n || tlen + 1 == n) {
                *why = "the key's base64 is missing after its type";
                return -EINVAL;
        }
        const char *b64 = s + tlen + 1;
        size_t blen = 0;
        while (tlen + 1 + blen < n && b64[blen] != ' ')
                blen++;
        /* A comment may follow; it must be one line (the caller split
         * the list at newlines). */
        _cleanup_free_ unsigned char *blob = NULL;
        size_t len;
        if (blen == 0 || memchr(b64, '\t', blen) ||
            base64_decode(b64, blen, &blob, &len, NULL) < 0) {
                *why = "the key is not valid base64";
                return -EINVAL;
        }
        const unsigned char *p = blob, *f;
        size_t left = len, flen;
        if (!ssh_take(&p, &left, &f, &flen) || flen != tlen || memcmp(f, s, tlen) != 0) {
                *why = "the key's blob does not start with its type (a key of another type?)";
                return -EINVAL;
        }
        if (ed) {
                if (!ssh_take(&p, &left, &f, &flen) || flen != 32 || left != 0) {
                        *why = "an ssh-ed25519 key holds exactly 32 bytes";
                        return -EINVAL;
                }
                if (!ed25519_public_key_converts(f)) {
                        *why = "this ssh-ed25519 key is not a usable Ed25519 point";
                        return -EINVAL;
                }
                return 0;
        }
        const unsigned char *e, *m;
        size_t elen, mlen;
        if (!ssh_take(&p, &left, &e, &elen) || !ssh_take(&p, &left, &m, &mlen) || left != 0) {
                *why = "an ssh-rsa key holds e and n and nothing more";
                return -EINVAL;
        }
        long ebits = mpint_bits(e, elen), nbits = mpint_bits(m, mlen);
        if (ebits < 2 || ebits > 24 || !(e[elen - 1] & 1) || nbits < 0) {
                *why = "this ssh-rsa key's exponent or modulus is malformed";
                return -EINVAL;
        }
        /* age wants pubKey.Size() >= 256: the modulus in bytes. */
        if ((nbits + 7) / 8 < 2048 / 8) {
                *why = "age refuses RSA keys under 2048 bits";
                return -EINVAL;
        }
        return 0;
}

int age_recipient_check(const char *s, size_t n, const char **ret_why)
{
        const char *why = NULL;
        int r;

        if (n > AGE_RECIPIENT_MAX) {
                why = "longer than the 8 KiB age reads on a line";
                r = -EINVAL;
        } else if (memchr(s, '\0', n) || memchr(s, '\n', n) || memchr(s, '\r', n)) {
                why = "a recipient is one line of text";
                r = -EINVAL;
        } else if (n >= 4 && memcmp(s, "age1", 4) == 0)
                r = check_x25519(s, n, &why);
        else if (n >= 4 && memcmp(s, "ssh-", 4) == 0)
                r = check_ssh(s, n, &why);
        else if (n >= 15 && memcmp(s, "AGE-SECRET-KEY-", 15) == 0) {
                why = "this is a private key: give its public key (age-keygen -y), the private "
                      "key never goes to the server";
                r = -EINVAL;
        } else {
                why = "not an age recipient (age1... or ssh-ed25519/ssh-rsa AAAA...)";
                r = -EINVAL;
        }
        if (r < 0 && ret_why)
                *ret_why = why;
        return r;
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r';
}

int age_recipients_check(const char *list, size_t *ret_index, size_t *ret_offset,
                         const char **ret_why)
{
        size_t index = 0;
        const char *p = list;

        for (;;) {
                size_t len = strcspn(p, ",\n");
                const char *a = p, *b = p + len;
                while (a < b && is_space(*a))
                        a++;
                while (b > a && is_space(b[-1]))
                        b--;
                if (b > a) {
                        index++;
                        const char *why = NULL;
                        if (age_recipient_check(a, (size_t)(b - a), &why) < 0) {
                                *ret_index = index;
                                *ret_offset = (size_t)(a - list);
                                *ret_why = why;
                                return -EINVAL;
                        }
                }
                if (!p[len])
                        break;
                p += len + 1;
        }
        if (index == 0) {
                *ret_index = 0;
                *ret_offset = 0;
                *ret_why = "no recipient: backups are never written unencrypted (age-keygen -y "
                           "KEYFILE prints one)";
                return -EINVAL;
        }
        return 0;
}

int bech32_encode(const char *hrp, const unsigned char *data, size_t n, bool upper, char **ret)
{
        size_t hlen = strlen(hrp);
        if (hlen == 0 || hlen > 83 || n > 1024)
                return -EINVAL;
        for (size_t i = 0; i < hlen; i++)
                if (hrp[i] < 33 || hrp[i] > 126)
                        return -EINVAL;
        size_t nvals = (n * 8 + 4) / 5;
        char *out = malloc(hlen + 1 + nvals + 6 + 1);
        if (!out)
                return -ENOMEM;
        char *o = out;
        for (size_t i = 0; i < hlen; i++)
                *o++ = lower(hrp[i]);
        *o++ = '1';
        uint32_t chk = bech32_hrp_checksum(hrp, hlen);
        unsigned acc = 0, bits = 0;
        for (size_t i = 0; i < n; i++) {
                acc = (acc << 8) | data[i];
                bits += 8;
                while (bits >= 5) {
                        bits -= 5;
                        unsigned v = (acc >> bits) & 31;
                        chk = bech32_polymod_step(chk, v);
                        *o++ = bech32_charset[v];
                }
                acc &= (1u << bits) - 1;
        }
        if (bits > 0) {
                unsigned v = (acc << (5 - bits)) & 31;
                chk = bech32_polymod_step(chk, v);
                *o++ = bech32_charset[v];
        }
        for (int i = 0; i < 6; i++)
                chk = bech32_polymod_step(chk, 0);
        chk ^= 1;
        for (int i = 0; i < 6; i++)
                *o++ = bech32_charset[(chk >> (5 * (5 - i))) & 31];
        *o = '\0';
        if (upper)
                for (o = out; *o; o++)
                        if (*o >= 'a' && *o <= 'z')
                                *o = (char)(*o - 'a' + 'A');
        *ret = out;
        return 0;
}

int age_keygen(char **ret_identity, char **ret_recipient)
{
        unsigned char sk[32], pk[32];
        char *id = NULL, *rc = NULL;
        int r;

        r = random_bytes(sk, sizeof(sk));
        if (r >= 0)
                r = x25519_public_key(sk, pk);
        if (r >= 0)
                r = bech32_encode("AGE-SECRET-KEY-", sk, sizeof(sk), true, &id);
        explicit_bzero(sk, sizeof(sk));
        if (r >= 0)
                r = bech32_encode("age", pk, sizeof(pk), false, &rc);
        if (r < 0) {
                if (id)
                        explicit_bzero(id, strlen(id));
                free(id);
                return r;
        }
        *ret_identity = id;
        *ret_recipient = rc;
        return 0;
}
