/* imagegen/agekey.c: age recipients checked as age v1.1.1 takes them
 * (keys made by the real age-keygen and ssh-keygen; each refusal is one
 * that age makes too, seen with `age -r`, but one: "ssh-rsa" in front of
 * an Ed25519 blob, which age reads by the blob and we refuse as a paste
 * error), and bech32 against BIP 173's test vectors. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../imagegen/agekey.h"
#include "tap.h"
#include "util.h"

/* From age-keygen (age 1.1.1). */
#define AGE1 "age1a0jfl9nlzp0w3gq79m8gt6qldx3wsf4cw5rjrlsaz4ra58lfqveq9czzn8"
#define ED                                                                                         \
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGWT5pCWPf6ZY1+VqRg9/iTmQHtIw5Ija6azK/cbrXzX root@vm"
static const char rsa2048[] =
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDJ7Y2dkqadXC0vVtElmySrw+WBpSY9ZN"
        "Jtj/fUYZT0Q9OTnnnyQK6O8A9Msy/37p18yDvW9bHCViT+7Ad2m35CkoYfBiSQ6Yd9P4rp"
        "7F/xYLg+a63UxVKrYz1mbJXiDPa5BdjZmM4tif9sgTg67xUgySo+6LambXNjj4MoLjoYd2"
        "BXA9W3V8ch4PxX8y0t2RdQ3KrD1OBKi8JL91SX9qTJQ3J7BpD+mON2oCO0j4qsogG3a5A6"
        "ENDA6Bq8v8O7YZPyMwlINOePJKBVX8Lnb92RjXqyeBIwMlxMA7uD3VbJ2gh+l+AIuVB2lC"
        "obAeIAqz13gIEIfSFrU6YfdIEUfrWf ops";
static const char rsa1024[] =
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDHcWlRezhTJpOqmCorlsDEayDK+sAB/A"
        "qO1x/tn8M5z1ZlBEfcTWAI+GgDmqqSrQvhwFYUx6p4U/jgcsy4Fq/n963M9LmpdEv2sS8G"
        "D3ctMIQAafZ0SexgfTbXVr+eQ0GoHtwrDXTedKD1TiBnLlwE3KyGL9QvEzt1PFGIf+T13w"
        "==";

static int check(const char *s)
{
        const char *why = NULL;
        int r = age_recipient_check(s, strlen(s), &why);
        if (r < 0 && !why)
                return -999;
        return r;
}

TEST(recipients_age_accepts)
{
        CHECK_INTEQ(check(AGE1), 0);
        CHECK_INTEQ(check(ED), 0);
        CHECK_INTEQ(check("ssh-ed25519 "
                          "AAAAC3NzaC1lZDI1NTE5AAAAIGWT5pCWPf6ZY1+VqRg9/iTmQHtIw5Ija6azK/cbrXzX"),
                    0);
        CHECK_INTEQ(check(rsa2048), 0);
}

TEST(recipients_age_refuses)
{
        /* The last character changed: the checksum (age: "invalid checksum"). */
        CHECK_INTEQ(check("age1a0jfl9nlzp0w3gq79m8gt6qldx3wsf4cw5rjrlsaz4ra58lfqveq9czzn9"),
                    -EINVAL);
        /* One character short, one too many, uppercase, a 'b'. */
        CHECK_INTEQ(check("age1a0jfl9nlzp0w3gq79m8gt6qldx3wsf4cw5rjrlsaz4ra58lfqveq9czzn"),
                    -EINVAL);
        CHECK_INTEQ(check(AGE1 "q"), -EINVAL);
        CHECK_INTEQ(check("AGE1A0JFL9NLZP0W3GQ79M8GT6QLDX3WSF4CW5RJRLSAZ4RA58LFQVEQ9CZZN8"),
                    -EINVAL);
        CHECK_INTEQ(check("age1b0jfl9nlzp0w3gq79m8gt6qldx3wsf4cw5rjrlsaz4ra58lfqveq9czzn8"),
                    -EINVAL);
        /* A plugin recipient, a private key, an RSA key under 2048 bits. */
        CHECK_INTEQ(check("age1yubikey1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"),
                    -EINVAL);
        CHECK_INTEQ(
                check("AGE-SECRET-KEY-1KWVXXLEA5D54N06JXELVCZLA9TRHLTKWVDNJ3LWA34K90SDRJMQSY344T7"),
                -EINVAL);
        CHECK_INTEQ(check(rsa1024), -EINVAL);
        /* The type of the line and of the blob differ; a key cut short;
         * not base64; no key; another SSH type. */
        CHECK_INTEQ(check("ssh-rsa "
                          "AAAAC3NzaC1lZDI1NTE5AAAAIGWT5pCWPf6ZY1+VqRg9/iTmQHtIw5Ija6azK/cbrXzX"),
                    -EINVAL);
        CHECK_INTEQ(check("ssh-ed25519 "
                          "AAAAC3NzaC1lZDI1NTE5AAAAIGWT5pCWPf6ZY1+VqRg9/iTmQHtIw5Ija6azK/cbrXw="),
                    -EINVAL);
        CHECK_INTEQ(check("ssh-ed25519 AAAA!!!!"), -EINVAL);
        CHECK_INTEQ(check("ssh-ed25519"), -EINVAL);
        CHECK_INTEQ(check("ssh-ed25519 "), -EINVAL);
        CHECK_INTEQ(check("ssh-dss AAAAB3NzaC1kc3M="), -EINVAL);
        CHECK_INTEQ(check(""), -EINVAL);
        CHECK_INTEQ(check("age1"), -EINVAL);
        CHECK_INTEQ(age_recipient_check(AGE1 "\n", strlen(AGE1) + 1, NULL), -EINVAL);
}

TEST(recipient_lists)
{
        size_t idx = 99, off = 99;
        const char *why = NULL;

        CHECK_INTEQ(age_recipients_check(AGE1, &idx, &off, &why), 0);
        CHECK_INTEQ(age_recipients_check(" " AGE1 " ,\n" ED "\n\n", &idx, &off, &why), 0);
        CHECK_INTEQ(age_recipients_check("", &idx, &off, &why), -EINVAL);
        CHECK(idx == 0 && why);
        CHECK_INTEQ(age_recipients_check(" , \n", &idx, &off, &why), -EINVAL);
        CHECK(idx == 0);
        CHECK_INTEQ(age_recipients_check(AGE1 ",\n  age1xyz", &idx, &off, &why), -EINVAL);
        CHECK(idx == 2 && off == strlen(AGE1) + 4);
}

/* BIP 173's valid test strings, re-encoded from their data, and the
 * recipient above from the key age-keygen printed it for. */
TEST(bech32_encode_vectors)
{
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        REQUIRE(bech32_encode("a", NULL, 0, false, &a) == 0);
        CHECK_STREQ(a, "a12uel5l");
        REQUIRE(bech32_encode("A", NULL, 0, true, &b) == 0);
        CHECK_STREQ(b, "A12UEL5L");
        const unsigned char zero[] = {0};
        CHECK_INTEQ(bech32_encode("", zero, 1, false, &c), -EINVAL);
        _cleanup_free_ char *d = NULL;
        /* "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw": the 5-bit values
         * 0..31 are 20 bytes exactly. */
        const unsigned char v[20] = {0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6, 0x35, 0xcf,
                                     0x84, 0x65, 0x3a, 0x56, 0xd7, 0xc6, 0x75, 0xbe, 0x77, 0xdf};
        REQUIRE(bech32_encode("abcdef", v, sizeof(v), false, &d) == 0);
        CHECK_STREQ(d, "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw");
}

TEST(keygen_gives_a_recipient_that_checks)
{
        _cleanup_free_ char *id = NULL, *rc = NULL;
        REQUIRE(age_keygen(&id, &rc) == 0);
        CHECK(strncmp(id, "AGE-SECRET-KEY-1", 16) == 0 && strlen(id) == 74);
        CHECK_INTEQ(check(rc), 0);
        CHECK(strlen(rc) == 62);
}

TAP_MAIN
