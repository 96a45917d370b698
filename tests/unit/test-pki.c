/* The site's CA and server certificate, checked with OpenSSL directly
 * (not through pki.c): what a new pair holds (extensions, criticality,
 * key type, serial, validity, key identifiers), byte-identical reuse,
 * renewal on changed names, near expiry (a short certificate, and the
 * clock moved forward), an untrusted certificate or a foreign key, the CA
 * made anew near its own expiry or when it is not valid yet, and every
 * refusal leaving the old files as they were: corrupt files, a mismatched
 * CA, keys others can read, bad names, a write that fails half-way. Then
 * the Ed25519 signing pair of `imagegen keygen`. */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto.h"
#include "fs.h"
#include "util.h"
#include "../../imagegen/pki.h"
#include "tap.h"

#define DAY 86400L

static const char *const files[] = {"ca.key", "ca.crt", "server.key", "server.crt",
                                    "fullchain.pem"};

static char *make_tmpdir(void)
{
        const char *base = getenv("TESTTMP");
        char *t = strprintf("%s/test-pki.XXXXXX", base && *base ? base : "/tmp");
        if (!t || !mkdtemp(t))
                abort();
        return t;
}

static void drop_tmpdir(char *dir)
{
        if (dir && !getenv("KEEP"))
                rm_rf(dir);
        free(dir);
}

static char *slurp(const char *dir, const char *name)
{
        _cleanup_free_ char *p = strprintf("%s/%s", dir, name);
        char *data = NULL;
        return read_file(p, 1 << 20, &data, NULL) == 0 ? data : NULL;
}

/* Whether dir/name holds exactly want (NULL: is missing). */
static bool file_is(const char *dir, const char *name, const char *want)
{
        _cleanup_free_ char *data = slurp(dir, name);
        return streq_ptr(data, want);
}

static void put(const char *dir, const char *name, const char *data, mode_t mode)
{
        _cleanup_free_ char *p = strprintf("%s/%s", dir, name);
        if (write_file_atomic(p, data, strlen(data), mode, (uid_t)-1, (gid_t)-1) < 0)
                abort();
}

static void copy_file(const char *from_dir, const char *to_dir, const char *name)
{
        _cleanup_free_ char *data = slurp(from_dir, name);
        _cleanup_free_ char *p = strprintf("%s/%s", from_dir, name);
        struct stat st;
        if (!data || stat(p, &st) < 0)
                abort();
        put(to_dir, name, data, st.st_mode & 07777);
}

static mode_t mode_of(const char *dir, const char *name)
{
        _cleanup_free_ char *p = name ? strprintf("%s/%s", dir, name) : xstrdup(dir);
        struct stat st;
        return stat(p, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

/* Every file's bytes, inode and mtime, to tell "untouched" from
 * "rewritten with the same bytes". */
struct snapshot {
        char *data[ARRAY_SIZE(files)];
        struct stat st[ARRAY_SIZE(files)];
};

static void snap(const char *dir, struct snapshot *s)
{
        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                _cleanup_free_ char *p = strprintf("%s/%s", dir, files[i]);
                s->data[i] = slurp(dir, files[i]);
                if (stat(p, &s->st[i]) < 0)
                        memset(&s->st[i], 0, sizeof(s->st[i]));
        }
}

static bool snap_same(const struct snapshot *a, const struct snapshot *b)
{
        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                if (!streq_ptr(a->data[i], b->data[i]) || a->st[i].st_ino != b->st[i].st_ino ||
                    a->st[i].st_mtim.tv_sec != b->st[i].st_mtim.tv_sec ||
                    a->st[i].st_mtim.tv_nsec != b->st[i].st_mtim.tv_nsec ||
                    a->st[i].st_mode != b->st[i].st_mode) {
                        fprintf(stderr, "  # %s changed\n", files[i]);
                        return false;
                }
        }
        return true;
}

static void snap_free(struct snapshot *s)
{
        for (size_t i = 0; i < ARRAY_SIZE(files); i++)
                free(s->data[i]);
}

/* Only the five files: no temporary file left behind. */
static size_t count_entries(const char *dir)
{
        size_t n = 0;
        DIR *d = opendir(dir);
        struct dirent *e;

        if (!d)
                return 0;
        while ((e = readdir(d)))
                if (!streq(e->d_name, ".") && !streq(e->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

/* --- OpenSSL on the files, independently of pki.c --- */

static X509 *cert_of(const char *dir, const char *name)
{
        _cleanup_free_ char *data = slurp(dir, name);
        BIO *b = data ? BIO_new_mem_buf(data, -1) : NULL;
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        return x;
}

static EVP_PKEY *key_of(const char *dir, const char *name)
{
        _cleanup_free_ char *data = slurp(dir, name);
        BIO *b = data ? BIO_new_mem_buf(data, -1) : NULL;
        EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        return k;
}

/* A P-256 key in PKCS#8 PEM, byte for byte what OpenSSL writes for it
 * (pki.c lays the DER out itself). */
static bool is_p256_pkcs8(const char *dir, const char *name)
{
        _cleanup_free_ char *data = slurp(dir, name);
        EVP_PKEY *k = key_of(dir, name);
        BIO *b = BIO_new(BIO_s_mem());
        char group[64] = "", *pem = NULL;
        long n = 0;
        bool ok = data && startswith(data, "-----BEGIN PRIVATE KEY-----\n") && k && b &&
                  EVP_PKEY_is_a(k, "EC") &&
                  EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                 sizeof(group), NULL) &&
                  streq(group, "prime256v1") &&
                  PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1;
        if (ok) {
                n = BIO_get_mem_data(b, &pem);
                ok = n > 0 && (size_t)n == strlen(data) && memcmp(pem, data, (size_t)n) == 0;
        }
        BIO_free(b);
        EVP_PKEY_free(k);
        return ok;
}

static bool ext_critical(X509 *x, int nid)
{
        int i = X509_get_ext_by_NID(x, nid, -1);
        return i >= 0 && X509_EXTENSION_get_critical(X509_get_ext(x, i)) == 1;
}

static long long seconds_to(const ASN1_TIME *t, time_t from)
{
        struct tm tm;
        if (!ASN1_TIME_to_tm(t, &tm))
                return -1;
        return (long long)(timegm(&tm) - from);
}

static int serial_bits(X509 *x)
{
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        int n = bn && !BN_is_negative(bn) ? BN_num_bits(bn) : -1;
        BN_free(bn);
        return n;
}

/* "DNS:a,IP:7f000001,..." in the certificate's order. */
static char *sans(X509 *x)
{
        GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        struct buf b = {0};

        for (int i = 0; g && i < sk_GENERAL_NAME_num(g); i++) {
                const GENERAL_NAME *n = sk_GENERAL_NAME_value(g, i);
                if (n->type == GEN_DNS)
                        buf_printf(&b, "%sDNS:%s", b.len ? "," : "",
                                   (const char *)ASN1_STRING_get0_data(n->d.dNSName));
                else if (n->type == GEN_IPADD) {
                        buf_printf(&b, "%sIP:", b.len ? "," : "");
                        const unsigned char *p = ASN1_STRING_get0_data(n->d.iPAddress);
                        for (int k = 0; k < ASN1_STRING_length(n->d.iPAddress); k++)
                                buf_printf(&b, "%02x", p[k]);
                } else
                        buf_printf(&b, "%sOTHER", b.len ? "," : "");
        }
        GENERAL_NAMES_free(g);
        return b.data ? buf_steal(&b) : xstrdup("");
}

/* Whether server.crt verifies against ca.crt for a TLS server at t. */
/* Whether server.crt in dir verifies against ca.crt in ca_dir. */
static bool verifies_ca(const char *ca_dir, const char *dir, time_t t)
{
        X509 *ca = cert_of(ca_dir, "ca.crt"), *server = cert_of(dir, "server.crt");
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        bool ok = false;

        if (ca && server && store && ctx && X509_STORE_add_cert(store, ca) == 1 &&
            X509_STORE_CTX_init(ctx, store, server, NULL) == 1) {
                X509_STORE_CTX_set_time(ctx, 0, t);
                X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
                ok = X509_verify_cert(ctx) == 1;
                if (!ok)
                        fprintf(stderr, "  # verify: %s\n",
                                X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        }
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        X509_free(ca);
        X509_free(server);
        ERR_clear_error();
        return ok;
}

static bool verifies(const char *dir, time_t t)
{
        return verifies_ca(dir, dir, t);
}

static const char *const one_name[] = {"colony.example.org", NULL};
static const char *const two_names[] = {"colony.example.org", "www.example.org", NULL};
static const char *const ips[] = {"127.0.0.1", "2001:db8::7", NULL};

static int ensure(const char *dir, const char *const *dns, const char *const *ip, int days,
                  time_t now, struct pki_result *res)
{
        _cleanup_free_ char *err = NULL;
        int r = pki_ensure_at(dir, dir, dns, ip, days, now, res, &err);
        if (r < 0)
                fprintf(stderr, "  # pki_ensure: %s\n", err ? err : "(no message)");
        return r;
}

/* A fresh pki dir under base, made at now. */
static char *fresh(const char *base, time_t now)
{
        char *dir = strprintf("%s/pki", base);
        struct pki_result res;
        if (ensure(dir, two_names, ips, 825, now, &res) < 0)
                abort();
        return dir;
}

/* The error of pki_ensure_at(), or NULL when it succeeded. */
static char *ensure_error(const char *dir, const char *const *dns, const char *const *ip, int days,
                          time_t now)
{
        struct pki_result res;
        char *err = NULL;
        if (pki_ensure_at(dir, dir, dns, ip, days, now, &res, &err) == 0) {
                free(err);
                return NULL;
        }
        return err ? err : xstrdup("(no message)");
}

TEST(new_ca_and_server_certificate)
{
        char *base = make_tmpdir();
        _cleanup_free_ char *dir = strprintf("%s/state/pki", base);
        _cleanup_free_ char *crt = NULL, *cacrt = NULL, *chain = NULL, *want_chain = NULL;
        _cleanup_free_ char *san = NULL;
        struct pki_result res;
        time_t now = time(NULL);

        REQUIRE(ensure(dir, two_names, ips, 825, now, &res) == 0);
        CHECK_INTEQ(res.ca, PKI_CREATED);
        CHECK_INTEQ(res.server, PKI_CREATED);
        CHECK(res.fullchain_written);
        CHECK(strstr(pki_result_describe(&res), "CA created") != NULL);
        CHECK(strstr(pki_result_describe(&res), "colony.example.org, www.example.org, "
                                                "127.0.0.1, 2001:db8::7 created") != NULL);

        CHECK_INTEQ(mode_of(dir, NULL), 0700);
        CHECK_INTEQ(mode_of(dir, "ca.key"), 0600);
        CHECK_INTEQ(mode_of(dir, "server.key"), 0600);
        CHECK_INTEQ(mode_of(dir, "ca.crt"), 0644);
        CHECK_INTEQ(mode_of(dir, "server.crt"), 0644);
        CHECK_INTEQ(mode_of(dir, "fullchain.pem"), 0644);
        CHECK_INTEQ(count_entries(dir), 6); /* the five files and .checked */
        CHECK(is_p256_pkcs8(dir, "ca.key"));
        CHECK(is_p256_pkcs8(dir, "server.key"));

        X509 *ca = cert_of(dir, "ca.crt"), *server = cert_of(dir, "server.crt");
        REQUIRE(ca && server);
        /* The CA: self-signed, CA:TRUE and keyUsage critical, an SKI, ten
         * years. */
        CHECK(X509_check_issued(ca, ca) == X509_V_OK);
        CHECK(X509_check_ca(ca) == 1);
        CHECK(ext_critical(ca, NID_basic_constraints));
        CHECK(ext_critical(ca, NID_key_usage));
        CHECK(X509_get_key_usage(ca) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
        CHECK(X509_get0_subject_key_id(ca) != NULL);
        long long ca_life = seconds_to(X509_get0_notAfter(ca), now);
        CHECK(ca_life > 3650 * DAY - 60 && ca_life <= 3650 * DAY + 60);
        CHECK_INTEQ(X509_get_version(ca), X509_VERSION_3);
        CHECK(serial_bits(ca) > 64 && serial_bits(ca) <= 128);

        /* The server certificate. */
        CHECK(X509_check_issued(ca, server) == X509_V_OK);
        CHECK(X509_check_ca(server) == 0);
        CHECK(ext_critical(server, NID_basic_constraints));
        CHECK((X509_get_extension_flags(server) & EXFLAG_BCONS) != 0);
        CHECK((X509_get_extension_flags(server) & EXFLAG_CA) == 0);
        CHECK((X509_get_extended_key_usage(server) & XKU_SSL_SERVER) != 0);
        CHECK(X509_get_extended_key_usage(server) == XKU_SSL_SERVER);
        CHECK(X509_get0_authority_key_id(server) != NULL &&
              ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(server),
                                    X509_get0_subject_key_id(ca)) == 0);
        CHECK(X509_get0_subject_key_id(server) != NULL);
        san = sans(server);
        CHECK_STREQ(san, "DNS:colony.example.org,DNS:www.example.org,IP:7f000001,"
                         "IP:20010db8000000000000000000000007");
        long long life = seconds_to(X509_get0_notAfter(server), now);
        CHECK(life > 825 * DAY - 60 && life <= 825 * DAY + 60);
        /* Valid from a little before now: a server whose clock lags. */
        CHECK(seconds_to(X509_get0_notBefore(server), now) <= -600);
        CHECK(serial_bits(server) > 64 && serial_bits(server) <= 128);
        CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber(ca), X509_get0_serialNumber(server)) != 0);
        EVP_PKEY *sk = key_of(dir, "server.key");
        CHECK(sk && X509_check_private_key(server, sk) == 1);
        EVP_PKEY_free(sk);
        CHECK(verifies(dir, now));

        crt = slurp(dir, "server.crt");
        cacrt = slurp(dir, "ca.crt");
        chain = slurp(dir, "fullchain.pem");
        REQUIRE(crt && cacrt && chain);
        want_chain = strprintf("%s%s", crt, cacrt);
        CHECK_STREQ(chain, want_chain);
        X509_free(ca);
        X509_free(server);
        drop_tmpdir(base);
}

TEST(second_call_reuses_everything_byte_for_byte)
{
        char *base = make_tmpdir();
        time_t now = time(NULL);
        _cleanup_free_ char *dir = fresh(base, now);
        const char *const reordered[] = {"WWW.example.org", "colony.example.org",
                                         "colony.example.org", NULL};
        const char *const ips_other_spelling[] = {"2001:0db8:0:0:0:0:0:7", "127.0.0.1", NULL};
        struct snapshot a = {0}, b = {0};
        struct pki_result res;

        snap(dir, &a);
        REQUIRE(ensure(dir, two_names, ips, 825, now, &res) == 0);
        CHECK_INTEQ(res.ca, PKI_REUSED);
        CHECK_INTEQ(res.server, PKI_REUSED);
        CHECK(!res.fullchain_written);
        CHECK(strstr(pki_result_describe(&res), "CA reused") != NULL);
        /* Names in another order, case or spelling are the same set; a
         * later day, still far from expiry, changes nothing either. */
        REQUIRE(ensure(dir, reordered, ips_other_spelling, 825, now + 100 * DAY, &res) == 0);
        CHECK_INTEQ(res.ca, PKI_REUSED);
        CHECK_INTEQ(res.server, PKI_REUSED);
        snap(dir, &b);
        CHECK(snap_same(&a, &b));
        CHECK_INTEQ(count_entries(dir), 6); /* the five files and .checked */
        snap_free(&a);
        snap_free(&b);
        drop_tmpdir(base);
}

/* A fleet: each host's server files in a dir of its own, one CA for all;
 * CA files an older layout left in a host's dir go. */
TEST(fleet_hosts_share_one_ca)
{
        char *base = make_tmpdir();
        time_t now = time(NULL);
        _cleanup_free_ char *ca_dir = strprintf("%s/pki", base);
        _cleanup_free_ char *h1 = strprintf("%s/web-1", ca_dir),
                            *h2 = strprintf("%s/web-2", ca_dir);
        _cleanup_free_ char *ca_before = NULL, *err = NULL;
        const char *const web2[] = {"web-2.example.org", NULL};
        struct pki_result res;

        REQUIRE(mkdir_p(h2, 0700) >= 0);
        put(h2, "ca.key", "an old per-host CA key\n", 0600);
        put(h2, "ca.crt", "an old per-host CA\n", 0644);
        REQUIRE(pki_ensure_at(ca_dir, h1, one_name, NULL, 825, now, &res, &err) == 0);
        CHECK_INTEQ(res.ca, PKI_CREATED);
        CHECK_INTEQ(res.server, PKI_CREATED);
        ca_before = slurp(ca_dir, "ca.crt");
        REQUIRE(pki_ensure_at(ca_dir, h2, web2, NULL, 825, now, &res, &err) == 0);
        CHECK_INTEQ(res.ca, PKI_REUSED);
        CHECK_INTEQ(res.server, PKI_CREATED);
        CHECK(file_is(ca_dir, "ca.crt", ca_before));
        CHECK(verifies_ca(ca_dir, h1, now));
        CHECK(verifies_ca(ca_dir, h2, now));
        CHECK(file_is(h2, "ca.key", NULL) && file_is(h2, "ca.crt", NULL));
        CHECK(file_is(ca_dir, "server.key", NULL)); /* nothing of a host's in the CA's dir */
        /* Again: all reused, and the chain names the shared CA. */
        REQUIRE(pki_ensure_at(ca_dir, h1, one_name, NULL, 825, now, &res, &err) == 0);
        CHECK(res.ca == PKI_REUSED && res.server == PKI_REUSED);
        _cleanup_free_ char *chain = slurp(h1, "fullchain.pem");
        CHECK(chain && strstr(chain, ca_before) != NULL);
        drop_tmpdir(base);
}

TEST(changed_names_renew_the_server_certificate_only)
{
        char *base = make_tmpdir();
        time_t now = time(NULL);
        _cleanup_free_ char *dir = fresh(base, now);
        _cleanup_free_ char *ca_key = slurp(dir, "ca.key"), *ca_crt = slurp(dir, "ca.crt");
        _cleanup_free_ char *old_key = slurp(dir, "server.key"),
                            *old_crt = slurp(dir, "server.crt");
        _cleanup_free_ char *new_key = NULL, *new_crt = NULL, *san = NULL;
        const char *const ip4[] = {"127.0.0.1", NULL};
        struct pki_result res;

        /* One IP fewer. */
        REQUIRE(ensure(dir, two_names, ip4, 825, now, &res) == 0);
        CHECK_INTEQ(res.ca, PKI_REUSED);
        CHECK_INTEQ(res.server, PKI_RENEWED);
        CHECK_INTEQ(res.server_why, PKI_WHY_NAMES);
        CHECK(res.fullchain_written);
        CHECK(strstr(pki_result_describe(&res), "renewed: names changed") != NULL);
        new_key = slurp(dir, "server.key");
        new_crt = slurp(dir, "server.crt");
        CHECK(!streq_ptr(new_crt, old_crt));
        CHECK(!streq_ptr(new_key, old_key)); /* a fresh key, as documented */
        CHECK(file_is(dir, "ca.key", ca_key));
        CHECK(file_is(dir, "ca.crt", ca_crt));
        X509 *server = cert_of(dir, "server.crt");
        REQUIRE(server);
        san = sans(server);
        CHECK_STREQ(san, "DNS:colony.example.org,DNS:www.example.org,IP:7f000001");
        X509_free(server);
        CHECK(verifies(dir, now));

        /* One DNS name more is a change too; then the same set is reused. */
        const char *const three[] = {"colony.example.org", "www.example.org", "api.example.org",
                                     NULL};
        REQUIRE(ensure(dir, three, ip4, 825, now, &res) == 0);
        CHECK_INTEQ(res.server, PKI_RENEWED);
        CHECK_INTEQ(res.server_why, PKI_WHY_NAMES);
        REQUIRE(ensure(dir, three, ip4, 825, now, &res) == 0);
        CHECK_INTEQ(res.server, PKI_REUSED);
        drop_tmpdir(base);
}

TEST(short_certificate_is_renewed)
{
        char *base = make_tmpdir();
        _cleanup_free_ char *dir = strprintf("%s/pki", base);
        time_t now = time(NULL);
        struct pki_result res;

        REQUIRE(ensure(dir, one_name, NULL, 10, now, &res) == 0);
        CHECK_INTEQ(res.server, PKI_CREATED);
        X509 *x = cert_of(dir, "server.crt");
        REQUIRE(x);
        long long life = seconds_to(X509_get0_notAfter(x), now);
        CHECK(life > 10 * DAY - 60 && life <= 10 * DAY + 60);
        X509_free(x);

        REQUIRE(ensure(dir, one_name, NULL, 825, now, &res) == 0);
        CHECK_INTEQ(res.ca, PKI_REUSED);
        CHECK_INTEQ(res.server, PKI_RENEWED);
        CHECK_INTEQ(res.server_why, PKI_WHY_EXPIRING);
        CHECK(strstr(pki_result_describe(&res), "expiring within 30 days") != NULL);
        x = cert_of(dir, "server.crt");
        REQUIRE(x);
        life = seconds_to(X509_get0_notAfter(x), now);
        CHECK(life > 825 * DAY - 60 && life <= 825 * DAY + 60);
        X509_free(x);
        drop_tmpdir(base);
}

TEST(near_expiry_renews_the_server_certificate)
{
        char *base = make_tmpdir();
        time_t now = time(NULL);
        _cleanup_free_ char *dir = fresh(base, now);
        _cleanup_free_ char *ca_crt = slurp(dir, "ca.crt");
        struct pki_result res;

        /* 31 days left: kept. */
        REQUIRE(ensure(dir, two_names, ips, 825, now + 794 * DAY, &res) == 0);
        CHECK_INTEQ(res.server, PKI_REUSED);
        /* 29 days left: renewed, from then on. */
        time_t later = now + 796 * DAY;
        REQUIRE(ensure(dir, two_names, ips, 825, later, &res) == 0);
        CHECK_INTEQ(res.ca, PKI_REUSED);
        CHECK_INTEQ(res.server, PKI_RENEWED);
        CHECK_INTEQ(res.server_why, PKI_WHY_EXPIRING);
        CHECK(file_is(dir, "ca.crt", ca_crt));
        X509 *x = cert_of(dir, "server.crt");
        REQUIRE(x);
        long long life = seconds_to(X509_get0_notAfter(x), later);
        CHECK(life > 825 * DAY - 60 && life <= 825 * DAY + 60);
        X509_free(x);
        CHECK(verifies(dir, later));
        /* An expired one is renewed the same way (and did not verify). */
        REQUIRE(ensure(dir, two_names, ips, 825, later + 900 * DAY, &res) == 0);
        CHECK_INTEQ(res.server, PKI_RENEWED);
        CHECK(res.server_why & PKI_WHY_EXPIRING);
        CHECK(res.server_why & PKI_WHY_UNTRUSTED);
        drop_tmpdir(base);
}

TEST(server_certificate_never_outlives_the_ca)
{
        char *base = make_tmpdir();
        time_t now = time(NULL);
        _cleanup_free_ char *dir = fresh(base, now);
        struct pki_result res;

        /* 100 days before the CA expires, an 825-day certificate is cut
         * to the CA's end. */
        time_t t = now + 3550 * DAY;
        const char *const other[] = {"other.example.org", NULL};
        REQUIRE(ensure(dir, other, NULL, 825, t, &res) == 0);
        CHECK_INTEQ(res.ca, PKI_REUSED);
        CHECK_INTEQ(res.server, PKI_RENEWED);
        CHECK(res.server_not_after == res.ca_not_after);
        X509 *ca = cert_of(dir, "ca.crt"), *server = cert_of(dir, "server.crt");
        REQUIRE(ca && server);
        CHECK(ASN1_TIME_compare(X509_get0_notAfter(ca), X509_get0_notAfter(server)) == 0);
        X509_free(ca);
        X509_free(server);
        CHECK(verifies(dir, t));
        drop_tmpdir(base);
}

TEST(expiring_ca_is_made_anew_with_the_server_certificate)
{
        char *base = make_tmpdir();
        time_t now = time(NULL);
        _cleanup_free_ char *dir = fresh(base, now);
        _cleanup_free_ char *ca_key = slurp(dir, "ca.key"), *ca_crt = slurp(dir, "ca.crt");
        struct pki_result res;
        time_t t = now + 3630 * DAY; /* 20 days before the CA expires */

        REQUIRE(ensure(dir, two_names, ips, 825, t, &res) == 0);
        CHECK_INTEQ(res.ca, PKI_RENEWED);
        CHECK_INTEQ(res.ca_why, PKI_WHY_EXPIRING);
        CHECK_INTEQ(res.server, PKI_RENEWED);
        CHECK_INTEQ(res.server_why, PKI_WHY_NEW_CA);
        CHECK(strstr(pki_result_describe(&res), "CA renewed: expiring") != NULL);
        CHECK(!file_is(dir, "ca.key", ca_key));
        CHECK(!file_is(dir, "ca.crt", ca_crt));
        CHECK(verifies(dir, t));
        CHECK(res.ca_not_after - t > 3649 * DAY);
        CHECK_INTEQ(mode_of(dir, "ca.key"), 0600);
        CHECK_INTEQ(count_entries(dir), 6); /* the five files and .checked */
        drop_tmpdir(base);
}

/* A CA made while the clock was ahead signs nothing that verifies now:
 * it is made again, once. */
TEST(ca_from_the_future_is_made_anew)
{
        char *base = make_tmpdir();
        time_t now = time(NULL);
        _cleanup_free_ char *dir = fresh(base, now + 100 * DAY);
        struct pki_result res;

        REQUIRE(ensure(dir, two_names, ips, 825, now, &res) == 0);
        CHECK_INTEQ(res.ca, PKI_RENEWED);
        CHECK_INTEQ(res.ca_why, PKI_WHY_NOT_YET);
        CHECK_INTEQ(res.server, PKI_RENEWED);
        CHECK(verifies(dir, now));
        REQUIRE(ensure(dir, two_names, ips, 825, now, &res) == 0);
        CHECK_INTEQ(res.ca, PKI_REUSED);
        CHECK_INTEQ(res.server, PKI_REUSED);
        drop_tmpdir(base);
}

TEST(missing_files_are_made)
{
        char *base = make_tmpdir();
        time_t now = time(NULL);
        _cleanup_free_ char *dir = fresh(base, now);
        _cleanup_free_ char *chain_path = strprintf("%s/fullchain.pem", dir);
        _cleanup_free_ char *key_path = strprintf("%s/server.key", dir);
        _cleanup_free_ char *ca_path = strprintf("%s/ca.crt", dir);
        _cleanup_free_ char *chain = slurp(dir, "fullchain.pem");
        _cleanup_free_ char *ca_key = slurp(dir, "ca.key");
        struct pki_result res;

        /* fullchain.pem alone is derived again, the same bytes. */
        REQUIRE(unlink(chain_path) == 0);
        REQUIRE(ensure(dir, two_names, ips, 825, now, &res) == 0);
        CHECK_INTEQ(res.server, PKI_REUSED);
        CHECK(res.fullchain_written);
        CHECK(strstr(pki_result_describe(&res), "fullchain.pem rewritten") != NULL);
        CHECK(file_is(dir, "fullchain.pem", chain));

        /* No server.key: a new pair, the CA kept. */
        REQUIRE(unlink(key_path) == 0);
        REQUIRE(ensure(dir, two_names, ips, 825, now, &res) == 0);
        CHECK_INTEQ(res.ca, PKI_REUSED);
        CHECK_INTEQ(res.server, PKI_RENEWED);
        CHECK_INTEQ(res.server_why, PKI_WHY_MISSING);
        CHECK(verifies(dir, now));
        CHECK(file_is(dir, "ca.key", ca_key));

        /* No ca.crt: a new CA, and the server certificate with it. */
        REQUIRE(unlink(ca_path) == 0);
        REQUIRE(ensure(dir, two_names, ips, 825, now, &res) == 0);
        CHECK_INTEQ(res.ca, PKI_RENEWED);
        CHECK_INTEQ(res.ca_why, PKI_WHY_MISSING);
        CHECK_INTEQ(res.server_why, PKI_WHY_NEW_CA);
        CHECK(!file_is(dir, "ca.key", ca_key));
        CHECK(verifies(dir, now));
        drop_tmpdir(base);
}

TEST(foreign_server_certificate_or_key_is_replaced)
{
        char *base = make_tmpdir();
        time_t now = time(NULL);
        _cleanup_free_ char *a = strprintf("%s/a", base), *b = strprintf("%s/b", base);
        _cleanup_free_ char *pa = fresh(a, now), *pb = fresh(b, now);
        _cleanup_free_ char *ca_crt = slurp(pa, "ca.crt");
        struct pki_result res;

        /* b's certificate (same names) was not signed by a's CA. */
        copy_file(pb, pa, "server.crt");
        copy_file(pb, pa, "server.key");
        REQUIRE(ensure(pa, two_names, ips, 825, now, &res) == 0);
        CHECK_INTEQ(res.server, PKI_RENEWED);
        CHECK_INTEQ(res.server_why, PKI_WHY_UNTRUSTED);
        CHECK(strstr(pki_result_describe(&res), "did not verify against the CA") != NULL);
        CHECK(verifies(pa, now));
        CHECK(file_is(pa, "ca.crt", ca_crt));

        /* b's key next to a's certificate. */
        copy_file(pb, pa, "server.key");
        REQUIRE(ensure(pa, two_names, ips, 825, now, &res) == 0);
        CHECK_INTEQ(res.server, PKI_RENEWED);
        CHECK_INTEQ(res.server_why, PKI_WHY_KEY);
        EVP_PKEY *k = key_of(pa, "server.key");
        X509 *x = cert_of(pa, "server.crt");
        CHECK(k && x && X509_check_private_key(x, k) == 1);
        EVP_PKEY_free(k);
        X509_free(x);
        drop_tmpdir(base);
}

TEST(corrupt_files_are_errors_and_nothing_changes)
{
        char *base = make_tmpdir();
        time_t now = time(NULL);
        _cleanup_free_ char *dir = fresh(base, now);
        const char *const junk[] = {
                "not a PEM file\n",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE "
                "KEY-----\n",
                ""};

        for (size_t f = 0; f < 4; f++)
                for (size_t j = 0; j < ARRAY_SIZE(junk); j++) {
                        struct snapshot a = {0}, b = {0};
                        if (f >= 2 && !*junk[j])
                                continue; /* an empty server file is missing: below */
                        _cleanup_free_ char *good = slurp(dir, files[f]);
                        _cleanup_free_ char *path = strprintf("%s/%s", dir, files[f]);
                        put(dir, files[f], junk[j], mode_of(dir, files[f]));
                        snap(dir, &a);
                        /* Even with other names, which would renew. */
                        _cleanup_free_ char *err = ensure_error(dir, one_name, NULL, 825, now);
                        snap(dir, &b);
                        REQUIRE(err);
                        CHECK(startswith(err, path));
                        CHECK(strstr(err, f % 2 ? "not a PEM certificate"
                                                : "not a usable PEM private key") != NULL);
                        if (f % 2 == 0 && strstr(junk[j], "ENCRYPTED"))
                                CHECK(strstr(err, "it is encrypted") != NULL);
                        CHECK(snap_same(&a, &b));
                        CHECK_INTEQ(count_entries(dir), 6); /* the five files and .checked */
                        put(dir, files[f], good, mode_of(dir, files[f]));
                        snap_free(&a);
                        snap_free(&b);
                }
        drop_tmpdir(base);
}

/* What a crash before pki_sync() can leave: the server's files renamed into
 * place empty. They are issued again; the CA stays. */
TEST(empty_server_files_count_as_missing)
{
        for (size_t f = 2; f < ARRAY_SIZE(files); f++) {
                char *base = make_tmpdir();
                time_t now = time(NULL);
                _cleanup_free_ char *dir = fresh(base, now), *err = NULL;
                _cleanup_free_ char *cakey = slurp(dir, "ca.key"), *cacrt = slurp(dir, "ca.crt");
                _cleanup_free_ char *crt = slurp(dir, "server.crt");
                struct pki_result res;

                put(dir, files[f], "", mode_of(dir, files[f]));
                REQUIRE(ensure(dir, two_names, ips, 825, now, &res) == 0);
                CHECK(file_is(dir, "ca.key", cakey) && file_is(dir, "ca.crt", cacrt));
                CHECK_INTEQ(res.ca, PKI_REUSED);
                if (f == 4) {
                        CHECK_INTEQ(res.server, PKI_REUSED);
                        CHECK(file_is(dir, "server.crt", crt));
                } else {
                        CHECK_INTEQ(res.server, PKI_RENEWED);
                        CHECK_INTEQ(res.server_why, PKI_WHY_MISSING);
                        CHECK(!file_is(dir, "server.crt", crt));
                }
                CHECK(res.fullchain_written);
                _cleanup_free_ char *now_crt = slurp(dir, "server.crt");
                _cleanup_free_ char *chain = slurp(dir, "fullchain.pem");
                _cleanup_free_ char *want = strprintf("%s%s", now_crt, cacrt);
                CHECK(streq(chain, want));
                CHECK(verifies(dir, now));
                CHECK(pki_sync(&err) == 0);
                CHECK(pki_sync(&err) == 0); /* nothing waits */
                drop_tmpdir(base);
        }
}

TEST(ca_key_not_matching_ca_crt_is_an_error)
{
        char *base = make_tmpdir();
        time_t now = time(NULL);
        _cleanup_free_ char *a = strprintf("%s/a", base), *b = strprintf("%s/b", base);
        _cleanup_free_ char *pa = fresh(a, now), *pb = fresh(b, now);
        _cleanup_free_ char *key_path = strprintf("%s/ca.key", pa);
        struct snapshot s1 = {0}, s2 = {0};

        copy_file(pb, pa, "ca.key");
        snap(pa, &s1);
        _cleanup_free_ char *err = ensure_error(pa, two_names, ips, 825, now);
        snap(pa, &s2);
        REQUIRE(err);
        CHECK(startswith(err, key_path));
        CHECK(strstr(err, "does not match") != NULL);
        CHECK(snap_same(&s1, &s2));

        /* A server certificate in the place of the CA's. */
        copy_file(pb, pa, "server.key");
        copy_file(pb, pa, "server.crt");
        {
                _cleanup_free_ char *k = slurp(pb, "server.key"), *c = slurp(pb, "server.crt");
                REQUIRE(k && c);
                put(pa, "ca.key", k, 0600);
                put(pa, "ca.crt", c, 0644);
        }
        free(err);
        err = ensure_error(pa, two_names, ips, 825, now);
        REQUIRE(err);
        CHECK(strstr(err, "ca.crt: not a CA certificate") != NULL);
        snap_free(&s1);
        snap_free(&s2);
        drop_tmpdir(base);
}

TEST(private_keys_others_can_read_are_refused)
{
        char *base = make_tmpdir();
        time_t now = time(NULL);
        _cleanup_free_ char *dir = fresh(base, now);
        const char *const keys[] = {"ca.key", "server.key"};

        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                _cleanup_free_ char *path = strprintf("%s/%s", dir, keys[i]);
                struct snapshot a = {0}, b = {0};
                REQUIRE(chmod(path, 0640) == 0);
                snap(dir, &a);
                _cleanup_free_ char *err = ensure_error(dir, two_names, ips, 825, now);
                snap(dir, &b);
                REQUIRE(err);
                CHECK(startswith(err, path));
                CHECK(strstr(err, "too open") != NULL);
                CHECK(snap_same(&a, &b));
                REQUIRE(chmod(path, 0600) == 0);
                snap_free(&a);
                snap_free(&b);
        }
        struct pki_result res;
        CHECK(ensure(dir, two_names, ips, 825, now, &res) == 0);
        drop_tmpdir(base);
}

TEST(bad_names_and_days_are_refused_before_anything_is_made)
{
        char *base = make_tmpdir();
        _cleanup_free_ char *dir = strprintf("%s/pki", base);
        time_t now = time(NULL);
        static const struct {
                const char *dns, *ip, *want;
        } cases[] = {
                {"bad name.example", NULL, "\"bad name.example\" is not a DNS name"},
                {"-lead.example", NULL, "is not a DNS name"},
                {"trail-.example", NULL, "is not a DNS name"},
                {"a..example", NULL, "is not a DNS name"},
                {"a.example.", NULL, "is not a DNS name"},
                {"", NULL, "\"\" is not a DNS name"},
                {"caf\xc3\xa9.example", NULL, "is not a DNS name"},
                {NULL, "1.2.3", "\"1.2.3\" is not an IP address"},
                {NULL, "host.example", "is not an IP address"},
                {NULL, "::1::2", "is not an IP address"},
                {NULL, NULL, "no DNS name or IP address"},
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                const char *dns[] = {cases[i].dns, NULL}, *ip[] = {cases[i].ip, NULL};
                _cleanup_free_ char *err = ensure_error(dir, dns, ip, 825, now);
                REQUIRE(err);
                if (!strstr(err, cases[i].want))
                        fprintf(stderr, "  # case %zu: %s\n", i, err);
                CHECK(strstr(err, cases[i].want) != NULL);
        }
        _cleanup_free_ char *e0 = ensure_error(dir, one_name, NULL, 0, now);
        _cleanup_free_ char *e1 = ensure_error(dir, one_name, NULL, PKI_MAX_DAYS + 1, now);
        CHECK(e0 && strstr(e0, "out of range"));
        CHECK(e1 && strstr(e1, "out of range"));
        CHECK(!path_exists(dir));

        /* What is fine: a wildcard, upper case, IPv6. */
        const char *const ok_dns[] = {"*.Example.ORG", "x-1.example", NULL};
        const char *const ok_ip[] = {"::1", "10.0.2.15", NULL};
        struct pki_result res;
        CHECK(ensure(dir, ok_dns, ok_ip, 1, now, &res) == 0);
        drop_tmpdir(base);
}

/* A renewal whose second file cannot be staged changes nothing and leaves
 * no temporary file: the place of .server.crt.tmp is taken by a
 * directory. */
TEST(failed_write_leaves_the_old_files)
{
        char *base = make_tmpdir();
        time_t now = time(NULL);
        _cleanup_free_ char *dir = fresh(base, now);
        _cleanup_free_ char *blocker = strprintf("%s/.server.crt.tmp", dir);
        _cleanup_free_ char *staged_key = strprintf("%s/.server.key.tmp", dir);
        struct snapshot a = {0}, b = {0};

        REQUIRE(mkdir(blocker, 0700) == 0);
        snap(dir, &a);
        _cleanup_free_ char *err = ensure_error(dir, one_name, NULL, 825, now);
        snap(dir, &b);
        REQUIRE(err);
        CHECK(strstr(err, "cannot write") != NULL);
        CHECK(snap_same(&a, &b));
        CHECK(!path_exists(staged_key));
        REQUIRE(rmdir(blocker) == 0);
        CHECK_INTEQ(count_entries(dir), 6); /* the five files and .checked */

        struct pki_result res;
        REQUIRE(ensure(dir, one_name, NULL, 825, now, &res) == 0);
        CHECK_INTEQ(res.server, PKI_RENEWED);
        CHECK_INTEQ(count_entries(dir), 6); /* the five files and .checked */
        snap_free(&a);
        snap_free(&b);
        drop_tmpdir(base);
}

TEST(real_clock_entry_point)
{
        char *base = make_tmpdir();
        _cleanup_free_ char *dir = strprintf("%s/pki", base), *err = NULL;
        struct pki_result res;

        REQUIRE(pki_ensure(dir, dir, one_name, ips, 29, &res, &err) == 0);
        CHECK(verifies(dir, time(NULL)));
        /* Less than 30 days is within the renewal window: renewed each
         * time. */
        REQUIRE(pki_ensure(dir, dir, one_name, ips, 29, &res, &err) == 0);
        CHECK_INTEQ(res.server, PKI_RENEWED);
        REQUIRE(pki_ensure(dir, dir, one_name, ips, 31, &res, &err) == 0);
        REQUIRE(pki_ensure(dir, dir, one_name, ips, 31, &res, &err) == 0);
        CHECK_INTEQ(res.server, PKI_REUSED);
        drop_tmpdir(base);
}

/* --- signing keys --- */

TEST(keygen_makes_a_working_pair)
{
        char *base = make_tmpdir();
        _cleanup_free_ char *dir = strprintf("%s/keys", base), *err = NULL;
        _cleanup_free_ char *priv = NULL, *pub = NULL;
        unsigned char sig[ED25519_SIG_BYTES];
        const char msg[] = "version: 1\nname: test\n";

        REQUIRE(signing_keygen(dir, &err) == 0);
        CHECK_INTEQ(mode_of(dir, NULL), 0700);
        CHECK_INTEQ(mode_of(dir, "signing.key"), 0600);
        CHECK_INTEQ(mode_of(dir, "signing.pub"), 0644);
        priv = slurp(dir, "signing.key");
        pub = slurp(dir, "signing.pub");
        REQUIRE(priv && pub);
        CHECK(startswith(priv, "-----BEGIN PRIVATE KEY-----\n"));
        CHECK(startswith(pub, "-----BEGIN PUBLIC KEY-----\n"));
        EVP_PKEY *k = key_of(dir, "signing.key");
        CHECK(k && EVP_PKEY_is_a(k, "ED25519"));
        EVP_PKEY_free(k);
        REQUIRE(ed25519_sign(priv, strlen(priv), msg, strlen(msg), sig) == 0);
        CHECK(ed25519_verify(pub, strlen(pub), msg, strlen(msg), sig, sizeof(sig)) == 0);
        sig[0] ^= 1;
        CHECK(ed25519_verify(pub, strlen(pub), msg, strlen(msg), sig, sizeof(sig)) == -EBADMSG);
        CHECK_INTEQ(count_entries(dir), 2);
        drop_tmpdir(base);
}

TEST(keygen_never_overwrites)
{
        char *base = make_tmpdir();
        _cleanup_free_ char *dir = strprintf("%s/keys", base), *err = NULL;
        _cleanup_free_ char *key_path = strprintf("%s/signing.key", dir);
        _cleanup_free_ char *pub_path = strprintf("%s/signing.pub", dir);

        REQUIRE(signing_keygen(dir, &err) == 0);
        _cleanup_free_ char *priv = slurp(dir, "signing.key"), *pub = slurp(dir, "signing.pub");
        CHECK_INTEQ(signing_keygen(dir, &err), -EEXIST);
        REQUIRE(err);
        CHECK(startswith(err, key_path));
        CHECK(strstr(err, "already exists") != NULL);
        CHECK(file_is(dir, "signing.key", priv));
        CHECK(file_is(dir, "signing.pub", pub));

        /* A lone public key blocks too, and no private key appears. */
        REQUIRE(unlink(key_path) == 0);
        free(err);
        err = NULL;
        CHECK_INTEQ(signing_keygen(dir, &err), -EEXIST);
        CHECK(err && startswith(err, pub_path));
        CHECK(!path_exists(key_path));
        CHECK_INTEQ(count_entries(dir), 1);
        drop_tmpdir(base);
}

TAP_MAIN
