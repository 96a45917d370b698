/* The site's CA, server certificate and signing keys with OpenSSL 3; see
 * pki.h. Failures clear OpenSSL's per-thread error queue, so a stale entry
 * never surfaces later in another user of the library. */
#include "pki.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include <openssl/asn1.h>
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

#define PEM_MAX_SIZE (256 * 1024)
#define DAY_SECONDS  86400
/* Certificates start an hour in the past, so a server whose clock is a
 * little behind the machine that rendered the bundle still accepts them. */
#define BACKDATE_SECONDS 3600

static void x509_freep(X509 **p)
{
        X509_free(*p);
}
static void pkey_freep(EVP_PKEY **p)
{
        EVP_PKEY_free(*p);
}
static void bio_freep(BIO **p)
{
        BIO_free(*p);
}
#define _cleanup_x509_ _cleanup_(x509_freep)
#define _cleanup_pkey_ _cleanup_(pkey_freep)
#define _cleanup_bio_  _cleanup_(bio_freep)

/* OpenSSL's first queued reason, for a message, and an empty queue. */
static const char *ossl_reason(void)
{
        unsigned long e = ERR_peek_error();
        const char *s = e ? ERR_reason_error_string(e) : NULL;

        ERR_clear_error();
        return s ? s : "unknown error";
}

/* --- names --- */

/* The names a certificate is asked for: DNS names lowercased, IP
 * addresses parsed, and the set of both as sorted "DNS:name" and
 * "IP:hex" strings for comparison with an existing certificate. */
struct names {
        char **dns;  /* lowercased, without duplicates */
        char **ip;   /* as given */
        char **set;  /* sorted, without duplicates */
        char *shown; /* "a.example, 10.0.0.1" for messages */
};

static void names_done(struct names *n)
{
        strv_free(n->dns);
        strv_free(n->ip);
        strv_free(n->set);
        free(n->shown);
}

static void strv_sort_unique(char **v)
{
        size_t n = strv_length(v), k = 0;

        if (n == 0)
                return;
        strv_sort(v, n);
        for (size_t i = 1; i < n; i++) {
                if (streq(v[i], v[k]))
                        free(v[i]);
                else
                        v[++k] = v[i];
        }
        v[k + 1] = NULL;
}

static char *hex_of(const unsigned char *p, size_t n)
{
        static const char digits[] = "0123456789abcdef";
        char *s = malloc(2 * n + 1);

        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                s[2 * i] = digits[p[i] >> 4];
                s[2 * i + 1] = digits[p[i] & 15];
        }
        s[2 * n] = '\0';
        return s;
}

/* A DNS name as a certificate holds it: LDH labels of 1..63 characters,
 * at most 253 in all, optionally "*." first. */
static bool is_dns_name(const char *s)
{
        size_t len = strlen(s), label = 0;

        if (startswith(s, "*."))
                s += 2, len -= 2;
        if (len == 0 || len > 253)
                return false;
        for (const char *p = s;; p++) {
                if (*p == '.' || *p == '\0') {
                        if (label == 0 || label > 63 || p[-1] == '-')
                                return false;
                        if (*p == '\0')
                                return true;
                        label = 0;
                        continue;
                }
                if (!isascii((unsigned char)*p) ||
                    !(isalnum((unsigned char)*p) || (*p == '-' && label > 0)))
                        return false;
                label++;
        }
}

static char *set_entry_for_ip(const ASN1_OCTET_STRING *o)
{
        _cleanup_free_ char *hex = hex_of(ASN1_STRING_get0_data(o), (size_t)ASN1_STRING_length(o));
        return hex ? strprintf("IP:%s", hex) : NULL;
}

static int names_init(struct names *n, const char *const *dns, const char *const *ip, char **err)
{
        struct buf shown = {0};

        for (size_t i = 0; dns && dns[i]; i++) {
                if (!is_dns_name(dns[i])) {
                        *err = strprintf("\"%s\" is not a DNS name", dns[i]);
                        return -EINVAL;
                }
                char *lower = strdup(dns[i]);
                if (!lower)
                        return -ENOMEM;
                for (char *p = lower; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
                if (strv_contains(n->dns, lower)) {
                        free(lower);
                        continue;
                }
                if (strv_push(&n->dns, lower) < 0 ||
                    strv_push(&n->set, strprintf("DNS:%s", lower)) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; ip && ip[i]; i++) {
                ASN1_OCTET_STRING *o = a2i_IPADDRESS(ip[i]);
                if (!o) {
                        ERR_clear_error();
                        *err = strprintf("\"%s\" is not an IP address", ip[i]);
                        return -EINVAL;
                }
                char *e = set_entry_for_ip(o);
                ASN1_OCTET_STRING_free(o);
                if (!e)
                        return -ENOMEM;
                if (strv_contains(n->set, e)) {
                        free(e);
                        continue;
                }
                if (strv_push(&n->set, e) < 0 || strv_extend(&n->ip, ip[i]) < 0)
                        return -ENOMEM;
        }
        if (strv_length(n->set) == 0) {
                *err = strprintf("no DNS name or IP address to issue the certificate for");
                return -EINVAL;
        }
        strv_sort_unique(n->set);
        for (char **v = n->dns; v && *v; v++)
                buf_printf(&shown, "%s%s", shown.len ? ", " : "", *v);
        for (char **v = n->ip; v && *v; v++)
                buf_printf(&shown, "%s%s", shown.len ? ", " : "", *v);
        n->shown = buf_steal(&shown);
        return n->shown ? 0 : -ENOMEM;
}

/* The subjectAltName entries of x in the form of names.set. */
static char **cert_name_set(X509 *x)
{
        GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        char **set = NULL;

        for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
                const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                char *e;
                if (g->type == GEN_DNS) {
                        const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
                        _cleanup_free_ char *lower =
                                strndup((const char *)d, (size_t)ASN1_STRING_length(g->d.dNSName));
                        if (!lower)
                                break;
                        for (char *p = lower; *p; p++)
                                *p = (char)tolower((unsigned char)*p);
                        e = strprintf("DNS:%s", lower);
                } else if (g->type == GEN_IPADD)
                        e = set_entry_for_ip(g->d.iPAddress);
                else
                        e = strprintf("OTHER:%d", g->type);
                if (strv_push(&set, e) < 0)
                        break;
        }
        GENERAL_NAMES_free(gens);
        ERR_clear_error();
        strv_sort_unique(set);
        return set;
}

static bool strv_equal(char *const *a, char *const *b)
{
        size_t n = strv_length(a);

        if (n != strv_length(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

/* --- files --- */

struct pem_file {
        const char *name;
        char *path;
        char *data; /* the file's bytes; NULL when missing */
        size_t len;
};

/* A file that is empty counts as missing when empty_is_missing: what a
 * crash can leave of a server's files (see pki_sync()), no bytes of the
 * user's to look at. */
static int pem_file_read(struct pem_file *f, const char *dir, const char *name,
                         bool empty_is_missing, char **err)
{
        int r;

        f->name = name;
        f->path = strprintf("%s/%s", dir, name);
        if (!f->path)
                return -ENOMEM;
        r = read_file(f->path, PEM_MAX_SIZE, &f->data, &f->len);
        if (r == -ENOENT)
                return 0;
        if (r >= 0 && f->len == 0 && empty_is_missing) {
                free(f->data);
                f->data = NULL;
                return 0;
        }
        if (r < 0) {
                *err = strprintf("%s: cannot read: %s", f->path, strerror(-r));
                return r;
        }
        return 0;
}

static void pem_file_done(struct pem_file *f)
{
        free(f->path);
        if (f->data)
                explicit_bzero(f->data, f->len);
        free(f->data);
}

/* Like ssh: a private key others can read is refused, not fixed, since it
 * may already have leaked. */
static int check_key_mode(const struct pem_file *f, char **err)
{
        struct stat st;

        if (stat(f->path, &st) < 0) {
                int r = -errno;
                *err = strprintf("%s: %s", f->path, strerror(errno));
                return r;
        }
        if (st.st_mode & 077) {
                *err = strprintf("%s: permissions %04o are too open for a private key: it must "
                                 "be accessible by its owner only (chmod 600 %s)",
                                 f->path, (unsigned)(st.st_mode & 07777), f->path);
                return -EPERM;
        }
        return 0;
}

/* Keys are never encrypted here; a key that asks for a passphrase is an
 * error instead of a prompt on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
        (void)buf, (void)size, (void)rwflag, (void)u;
        return -1;
}

static int parse_key(const struct pem_file *f, EVP_PKEY **ret, char **err)
{
        _cleanup_bio_ BIO *b = BIO_new_mem_buf(f->data, (int)f->len);
        EVP_PKEY *k;

        if (!b)
                return -ENOMEM;
        k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
        if (!k && strstr(f->data, "-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
                ERR_clear_error();
                *err = strprintf("%s: not a usable PEM private key: it is encrypted, and "
                                 "imagegen needs it unencrypted",
                                 f->path);
                return -EBADMSG;
        }
        if (!k) {
                *err = strprintf("%s: not a usable PEM private key (%s)", f->path, ossl_reason());
                return -EBADMSG;
        }
        *ret = k;
        return 0;
}

static int parse_cert(const struct pem_file *f, X509 **ret, char **err)
{
        _cleanup_bio_ BIO *b = BIO_new_mem_buf(f->data, (int)f->len);
        X509 *x;

        if (!b)
                return -ENOMEM;
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x) {
                *err = strprintf("%s: not a PEM certificate (%s)", f->path, ossl_reason());
                return -EBADMSG;
        }
        *ret = x;
        return 0;
}

static bool is_p256(EVP_PKEY *k)
{
        char group[64];

        if (!EVP_PKEY_is_a(k, "EC") ||
            !EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            NULL)) {
                ERR_clear_error();
                return false;
        }
        return streq(group, "prime256v1");
}

static bool key_matches(X509 *x, EVP_PKEY *k)
{
        bool ok = X509_check_private_key(x, k) == 1;
        ERR_clear_error();
        return ok;
}

static int asn1_time(const ASN1_TIME *t, time_t *ret)
{
        struct tm tm;

        if (!ASN1_TIME_to_tm(t, &tm)) {
                ERR_clear_error();
                return -EINVAL;
        }
        *ret = timegm(&tm);
        return 0;
}

static int not_after(X509 *x, time_t *ret)
{
        return asn1_time(X509_get0_notAfter(x), ret);
}

static bool expiring(time_t end, time_t now)
{
        return end - now < (time_t)PKI_RENEW_DAYS * DAY_SECONDS;
}

/* NULL when server verifies against ca at `now` for a TLS server, else
 * OpenSSL's reason. */
static const char *verify_error(X509 *ca, X509 *server, time_t now)
{
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        const char *why = "cannot set up the verification";

        if (store && ctx && X509_STORE_add_cert(store, ca) == 1 &&
            X509_STORE_CTX_init(ctx, store, server, NULL) == 1) {
                X509_STORE_CTX_set_time(ctx, 0, now);
                X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
                if (X509_verify_cert(ctx) == 1)
                        why = NULL;
                else
                        why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
        }
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        ERR_clear_error();
        return why;
}

/* --- issuing --- */

static EVP_PKEY *new_p256_key(void)
{
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static int set_random_serial(X509 *x)
{
        unsigned char b[16];
        BIGNUM *bn = NULL;
        ASN1_INTEGER *ai = NULL;
        int r = -EIO;

        do {
                BN_free(bn);
                if (random_bytes(b, sizeof(b)) < 0)
                        return -EIO;
                bn = BN_bin2bn(b, sizeof(b), NULL);
        } while (bn && BN_is_zero(bn));
        if (bn)
                ai = BN_to_ASN1_INTEGER(bn, NULL);
        if (ai && X509_set_serialNumber(x, ai) == 1)
                r = 0;
        ASN1_INTEGER_free(ai);
        BN_free(bn);
        return r;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
        X509V3_CTX ctx;
        X509_EXTENSION *ext;
        int ok;

        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        if (!ext)
                return -EIO;
        ok = X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        return ok == 1 ? 0 : -EIO;
}

static int add_san(X509 *x, const struct names *n)
{
        GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
        int r = -EIO;

        if (!gens)
                return -ENOMEM;
        for (char **v = n->dns; v && *v; v++) {
                GENERAL_NAME *g = GENERAL_NAME_new();
                ASN1_IA5STRING *s = ASN1_IA5STRING_new();
                if (!g || !s || ASN1_STRING_set(s, *v, -1) != 1) {
                        GENERAL_NAME_free(g);
                        ASN1_IA5STRING_free(s);
                        goto out;
                }
                GENERAL_NAME_set0_value(g, GEN_DNS, s);
                if (!sk_GENERAL_NAME_push(gens, g)) {
                        GENERAL_NAME_free(g);
                        goto out;
                }
        }
        for (char **v = n->ip; v && *v; v++) {
                GENERAL_NAME *g = GENERAL_NAME_new();
                ASN1_OCTET_STRING *o = a2i_IPADDRESS(*v);
                if (!g || !o) {
                        GENERAL_NAME_free(g);
                        ASN1_OCTET_STRING_free(o);
                        goto out;
                }
                GENERAL_NAME_set0_value(g, GEN_IPADD, o);
                if (!sk_GENERAL_NAME_push(gens, g)) {
                        GENERAL_NAME_free(g);
                        goto out;
                }
        }
        if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1)
                r = 0;
out:
        GENERAL_NAMES_free(gens);
        return r;
}

/* The certificate's subjectPublicKeyInfo for a P-256 key, set from the
 * point itself: X509_set_pubkey() encodes the key through OpenSSL 3's
 * encoder and decodes it back, 2M instructions per certificate, most of a
 * fleet host's cost. The same DER: id-ecPublicKey, the named curve, the
 * uncompressed point. */
static int set_p256_pubkey(X509 *x, EVP_PKEY *key)
{
        unsigned char pt[65], *copy;
        size_t n = 0;

        if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt),
                                            &n) != 1 ||
            n != sizeof(pt) || pt[0] != 0x04)
                return -EIO;
        copy = OPENSSL_memdup(pt, n);
        if (!copy)
                return -ENOMEM;
        if (X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                   V_ASN1_OBJECT, OBJ_nid2obj(NID_X9_62_prime256v1), copy,
                                   (int)n) != 1) {
                OPENSSL_free(copy);
                return -EIO;
        }
        return 0;
}

/* A v3 certificate with a random serial, the subject's common name cn and
 * validity from an hour before now to `end`; no key yet. */
static X509 *new_cert(const char *cn, time_t now, time_t end)
{
        X509 *x = X509_new();
        X509_NAME *name = X509_NAME_new();
        bool ok = x && name && X509_set_version(x, X509_VERSION_3) == 1 &&
                  set_random_serial(x) == 0 &&
                  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
                                             -1, -1, 0) == 1 &&
                  X509_set_subject_name(x, name) == 1 &&
                  X509_time_adj_ex(X509_getm_notBefore(x), 0, -BACKDATE_SECONDS, &now) &&
                  X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &end);

        X509_NAME_free(name);
        if (!ok) {
                X509_free(x);
                return NULL;
        }
        return x;
}

static int make_ca(time_t now, EVP_PKEY **ret_key, X509 **ret_cert)
{
        _cleanup_pkey_ EVP_PKEY *key = new_p256_key();
        _cleanup_x509_ X509 *x = NULL;
        unsigned char id[4];
        char cn[64];

        if (!key || random_bytes(id, sizeof(id)) < 0)
                return -EIO;
        /* A name of its own, so that the CAs of several sites (or the one
         * that replaced an expired CA) are told apart in a trust store. */
        snprintf(cn, sizeof(cn), "imagegen local CA %02x%02x%02x%02x", id[0], id[1], id[2], id[3]);
        x = new_cert(cn, now, now + (time_t)PKI_CA_DAYS * DAY_SECONDS);
        if (!x || set_p256_pubkey(x, key) < 0 ||
            X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
            add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
            add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
            add_ext(x, x, NID_subject_key_identifier, "hash") < 0 ||
            X509_sign(x, key, EVP_sha256()) <= 0)
                return -EIO;
        /* Parsed back, as if read from ca.crt: only a parsed certificate
         * holds the public key that verifying what the CA signs needs. */
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        const unsigned char *p = der;
        *ret_cert = len > 0 ? d2i_X509(NULL, &p, len) : NULL;
        OPENSSL_free(der);
        if (!*ret_cert || !X509_get0_pubkey(*ret_cert))
                return -EIO;
        *ret_key = TAKE_PTR(key);
        return 0;
}

static int make_server(const struct names *n, int days, time_t now, EVP_PKEY *ca_key, X509 *ca,
                       EVP_PKEY **ret_key, X509 **ret_cert)
{
        _cleanup_pkey_ EVP_PKEY *key = new_p256_key();
        _cleanup_x509_ X509 *x = NULL;
        time_t end = now + (time_t)days * DAY_SECONDS, ca_end;
        const char *cn = n->dns ? n->dns[0] : n->ip[0];

        if (!key || not_after(ca, &ca_end) < 0)
                return -EIO;
        /* A certificate that outlives its CA would fail once the CA
         * expires; the two are renewed together instead. */
        if (end > ca_end)
                end = ca_end;
        /* The common name is at most 64 characters; the names that count
         * are in subjectAltName. */
        x = new_cert(strlen(cn) <= 64 ? cn : "imagegen server", now, end);
        if (!x || set_p256_pubkey(x, key) < 0 ||
            X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 ||
            add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
            add_ext(x, ca, NID_key_usage, "critical,digitalSignature") < 0 ||
            add_ext(x, ca, NID_ext_key_usage, "serverAuth") < 0 ||
            add_ext(x, ca, NID_subject_key_identifier, "hash") < 0 ||
            add_ext(x, ca, NID_authority_key_identifier, "keyid:always") < 0 || add_san(x, n) < 0 ||
            X509_sign(x, ca_key, EVP_sha256()) <= 0)
                return -EIO;
        *ret_key = TAKE_PTR(key);
        *ret_cert = TAKE_PTR(x);
        return 0;
}

static char *bio_text(BIO *b)
{
        char *p;
        long n = BIO_get_mem_data(b, &p);
        return n >= 0 ? strndup(p, (size_t)n) : NULL;
}

/* A P-256 key as PKCS#8 PEM, laid out here: RFC 5208's PrivateKeyInfo
 * around RFC 5915's ECPrivateKey with the public key, the bytes
 * PEM_write_bio_PrivateKey() writes, which costs OpenSSL 3's encoder 0.8M
 * instructions a key. */
static char *key_pem(EVP_PKEY *k)
{
        static const unsigned char head[] = {
                0x30, 0x81, 0x87,                                          /* PrivateKeyInfo */
                0x02, 0x01, 0x00,                                          /* version 0 */
                0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,      /* id-ecPublicKey */
                0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,      /* prime256v1 */
                0x03, 0x01, 0x07, 0x04, 0x6d,                              /* privateKey */
                0x30, 0x6b,                                                /* ECPrivateKey */
                0x02, 0x01, 0x01,                                          /* version 1 */
                0x04, 0x20};                                               /* the scalar */
        static const unsigned char mid[] = {0xa1, 0x44, 0x03, 0x42, 0x00}; /* [1] the point */
        unsigned char der[sizeof(head) + 32 + sizeof(mid) + 65], *p = der;
        _cleanup_free_ char *b64 = NULL;
        BIGNUM *priv = NULL;
        size_t n = 0;
        char *ret = NULL;

        memcpy(p, head, sizeof(head));
        p += sizeof(head);
        if (is_p256(k) && EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &priv) == 1 &&
            BN_bn2binpad(priv, p, 32) == 32) {
                p += 32;
                memcpy(p, mid, sizeof(mid));
                p += sizeof(mid);
                if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, p, 65,
                                                    &n) == 1 &&
                    n == 65 && base64_encode(der, sizeof(der), 64, &b64) >= 0)
                        ret = strprintf("-----BEGIN PRIVATE KEY-----\n%s\n"
                                        "-----END PRIVATE KEY-----\n",
                                        b64);
        }
        BN_clear_free(priv);
        explicit_bzero(der, sizeof(der));
        if (b64)
                explicit_bzero(b64, strlen(b64));
        ERR_clear_error();
        return ret;
}

static char *cert_pem(X509 *x)
{
        _cleanup_bio_ BIO *b = BIO_new(BIO_s_mem());
        return b && PEM_write_bio_X509(b, x) == 1 ? bio_text(b) : NULL;
}

/* --- the result --- */

static void fmt_date(time_t t, char ret[16])
{
        struct tm tm;

        if (!gmtime_r(&t, &tm) || !strftime(ret, 16, "%Y-%m-%d", &tm))
                snprintf(ret, 16, "?");
}

static void describe_why(struct buf *b, unsigned why)
{
        static const struct {
                unsigned bit;
                const char *text;
        } words[] = {
                {PKI_WHY_MISSING, "a file was missing"},
                {PKI_WHY_EXPIRING, NULL},
                {PKI_WHY_NAMES, "names changed"},
                {PKI_WHY_UNTRUSTED, "did not verify against the CA"},
                {PKI_WHY_KEY, "server.key did not match"},
                {PKI_WHY_NEW_CA, "new CA"},
                {PKI_WHY_NOT_YET, "not valid yet (was the clock ahead?)"},
        };
        bool first = true;

        for (size_t i = 0; i < ARRAY_SIZE(words); i++)
                if (why & words[i].bit) {
                        buf_puts(b, first ? ": " : ", ");
                        if (words[i].text)
                                buf_puts(b, words[i].text);
                        else
                                buf_printf(b, "expiring within %d days", PKI_RENEW_DAYS);
                        first = false;
                }
}

static const char *action_word(enum pki_action a)
{
        switch (a) {
        case PKI_CREATED:
                return "created";
        case PKI_RENEWED:
                return "renewed";
        case PKI_REUSED:
                break;
        }
        return "reused";
}

static void fill_text(struct pki_result *res, const struct names *n)
{
        struct buf b = {0};
        char ca_date[16], server_date[16];

        fmt_date(res->ca_not_after, ca_date);
        fmt_date(res->server_not_after, server_date);
        buf_printf(&b, "CA %s", action_word(res->ca));
        describe_why(&b, res->ca == PKI_RENEWED ? res->ca_why : 0);
        buf_printf(&b, " (valid until %s); server certificate for %s %s", ca_date, n->shown,
                   action_word(res->server));
        describe_why(&b, res->server == PKI_RENEWED ? res->server_why : 0);
        buf_printf(&b, " (valid until %s)", server_date);
        if (res->fullchain_written && res->server == PKI_REUSED)
                buf_printf(&b, "; fullchain.pem rewritten");
        snprintf(res->text, sizeof(res->text), "%s", b.data ? b.data : "");
        /* A text cut by the buffer ends visibly. */
        if (b.len >= sizeof(res->text))
                memcpy(res->text + sizeof(res->text) - 4, "...", 4);
        buf_free(&b);
}

const char *pki_result_describe(const struct pki_result *res)
{
        return res->text;
}

/* --- staging and committing --- */

struct staged {
        const struct pem_file *f;
        char *tmp;
};

/* The directory whose files were last renamed into place unsynced, for
 * pki_sync(). */
static char *unsynced_dir;

/* Writes every file of out[] that has new contents to a temporary file
 * next to it, then renames them all into place in order; on a failure
 * before the renames nothing is changed and the temporary files are gone.
 * Without sync, nothing is fsync'd: pki_sync() does it for all at once. */
static int commit(const char *dir, struct pem_file *out, const char *const *data,
                  const mode_t *modes, size_t n, bool sync, char **err)
{
        struct staged st[8] = {{0}};
        size_t k = 0;
        int r = 0;

        for (size_t i = 0; i < n && i < ARRAY_SIZE(st); i++) {
                if (!data[i])
                        continue;
                st[k].f = &out[i];
                st[k].tmp = strprintf("%s/.%s.tmp", dir, out[i].name);
                if (!st[k].tmp) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = write_file_atomic_full(st[k].tmp, data[i], strlen(data[i]), modes[i], (uid_t)-1,
                                           (gid_t)-1, WRITE_IN_PLACE | (sync ? 0 : WRITE_NOSYNC));
                k++;
                if (r < 0) {
                        *err = strprintf("%s: cannot write: %s", st[k - 1].tmp, strerror(-r));
                        goto fail;
                }
        }
        if (k == 0)
                return 0;
        for (size_t i = 0; i < k; i++)
                if (rename(st[i].tmp, st[i].f->path) < 0) {
                        r = -errno;
                        *err = strprintf("%s: cannot rename into place: %s", st[i].f->path,
                                         strerror(errno));
                        goto fail;
                }
        for (size_t i = 0; i < k; i++)
                free(st[i].tmp);
        if (!sync) {
                free(unsynced_dir);
                unsynced_dir = xstrdup(dir);
                return 0;
        }
        r = fsync_path(dir);
        if (r < 0)
                *err = strprintf("%s: fsync: %s", dir, strerror(-r));
        return r;
fail:
        for (size_t i = 0; i < k; i++) {
                unlink(st[i].tmp);
                free(st[i].tmp);
        }
        return r;
}

/* --- pki_ensure --- */

enum {
        F_CA_KEY,
        F_CA_CRT,
        F_SERVER_KEY,
        F_SERVER_CRT,
        F_FULLCHAIN,
        N_FILES
};
static const char *const file_names[N_FILES] = {"ca.key", "ca.crt", "server.key", "server.crt",
                                                "fullchain.pem"};
static const mode_t file_modes[N_FILES] = {0600, 0644, 0600, 0644, 0644};

/* The CA last parsed and checked, or made, by the bytes of its two files:
 * a fleet's hosts share one CA, and decoding its key costs OpenSSL more
 * than issuing a host's certificate. Kept until the process ends. */
static struct {
        char *key, *crt;
        EVP_PKEY *k;
        X509 *x;
} ca_memo;

static void ca_memo_clear(void)
{
        if (ca_memo.key)
                explicit_bzero(ca_memo.key, strlen(ca_memo.key));
        free(ca_memo.key);
        free(ca_memo.crt);
        EVP_PKEY_free(ca_memo.k);
        X509_free(ca_memo.x);
        memset(&ca_memo, 0, sizeof(ca_memo));
}

static void ca_memo_put(const char *key, const char *crt, EVP_PKEY *k, X509 *x)
{
        ca_memo_clear();
        ca_memo.key = strdup(key);
        ca_memo.crt = strdup(crt);
        ca_memo.k = EVP_PKEY_up_ref(k) == 1 ? k : NULL;
        ca_memo.x = X509_up_ref(x) == 1 ? x : NULL;
        if (!ca_memo.key || !ca_memo.crt || !ca_memo.k || !ca_memo.x)
                ca_memo_clear();
}

static bool ca_memo_get(const struct pem_file *f, EVP_PKEY **key, X509 **cert)
{
        if (!ca_memo.key || !streq(ca_memo.key, f[F_CA_KEY].data) ||
            !streq(ca_memo.crt, f[F_CA_CRT].data) || EVP_PKEY_up_ref(ca_memo.k) != 1)
                return false;
        if (X509_up_ref(ca_memo.x) != 1) {
                EVP_PKEY_free(ca_memo.k);
                return false;
        }
        *key = ca_memo.k;
        *cert = ca_memo.x;
        return true;
}

/* Reads and checks the CA: sets *ca_why to the reasons to make it anew,
 * or returns an error for files that must not be replaced silently. */
static int load_ca(struct pem_file *f, EVP_PKEY **key, X509 **cert, time_t now, unsigned *ca_why,
                   char **err)
{
        time_t end;
        int r;

        if (!f[F_CA_KEY].data || !f[F_CA_CRT].data) {
                *ca_why = PKI_WHY_MISSING;
                return 0;
        }
        r = check_key_mode(&f[F_CA_KEY], err);
        if (r < 0)
                return r;
        if (ca_memo_get(f, key, cert))
                goto dates;
        r = parse_key(&f[F_CA_KEY], key, err);
        if (r < 0)
                return r;
        r = parse_cert(&f[F_CA_CRT], cert, err);
        if (r < 0)
                return r;
        if (!key_matches(*cert, *key)) {
                *err = strprintf("%s does not match %s: remove both to make a new CA (every "
                                 "server then needs the new ca.crt)",
                                 f[F_CA_KEY].path, f[F_CA_CRT].path);
                return -EBADMSG;
        }
        if (X509_check_ca(*cert) != 1) {
                ERR_clear_error();
                *err = strprintf("%s: not a CA certificate (basicConstraints CA:TRUE missing)",
                                 f[F_CA_CRT].path);
                return -EBADMSG;
        }
        ca_memo_put(f[F_CA_KEY].data, f[F_CA_CRT].data, *key, *cert);
dates:
        r = not_after(*cert, &end);
        if (r < 0) {
                *err = strprintf("%s: unreadable expiry date", f[F_CA_CRT].path);
                return -EBADMSG;
        }
        if (expiring(end, now))
                *ca_why |= PKI_WHY_EXPIRING;
        if (X509_cmp_time(X509_get0_notBefore(*cert), &now) > 0)
                *ca_why |= PKI_WHY_NOT_YET;
        ERR_clear_error();
        return 0;
}

/* Reads and checks the server certificate against the CA and the names:
 * sets *why to the reasons to issue it again. */
static int load_server(struct pem_file *f, X509 *ca, const struct names *n, time_t now,
                       EVP_PKEY **key, X509 **cert, unsigned *why, char **err)
{
        _cleanup_strv_free_ char **have = NULL;
        time_t end;
        int r;

        if (!f[F_SERVER_KEY].data || !f[F_SERVER_CRT].data) {
                *why = PKI_WHY_MISSING;
                return 0;
        }
        r = check_key_mode(&f[F_SERVER_KEY], err);
        if (r < 0)
                return r;
        r = parse_key(&f[F_SERVER_KEY], key, err);
        if (r < 0)
                return r;
        r = parse_cert(&f[F_SERVER_CRT], cert, err);
        if (r < 0)
                return r;
        if (!is_p256(*key) || !key_matches(*cert, *key))
                *why |= PKI_WHY_KEY;
        if (not_after(*cert, &end) < 0 || expiring(end, now))
                *why |= PKI_WHY_EXPIRING;
        have = cert_name_set(*cert);
        if (!strv_equal(have, n->set))
                *why |= PKI_WHY_NAMES;
        if (verify_error(ca, *cert, now))
                *why |= PKI_WHY_UNTRUSTED;
        return 0;
}

/* .checked: what the last full check found, so that a render that finds
 * the same files for the same names parses no key and no certificate
 * (OpenSSL's key decoders cost milliseconds, and a fleet has a directory
 * per host). One line: "v1 FILES NAMES CA_FROM CA_UNTIL SRV_FROM SRV_UNTIL",
 * FILES the SHA-256 of the five files' bytes, NAMES that of the sorted
 * names, the rest seconds since the epoch. It is trusted only when both
 * digests match; the times are then checked against now as a full check
 * would. */
#define CHECKED_FILE ".checked"

struct checked {
        char files[65], names[65];
        long long ca_from, ca_until, srv_from, srv_until;
};

static void checked_digests(char *const *data, const size_t *len, const struct names *n,
                            struct checked *c)
{
        struct buf b = {0};
        for (size_t i = 0; i < N_FILES; i++) {
                buf_printf(&b, "%s %zu\n", file_names[i], len[i]);
                buf_append(&b, data[i], len[i]);
        }
        sha256_hex(b.data, b.len, c->files);
        buf_free(&b);
        _cleanup_free_ char *names = strv_join(n->set, "\n");
        sha256_hex(names, strlen(names), c->names);
}

/* Whether the files in f are the ones last checked for these names and
 * are still good at `now`; fills *res as a reuse when they are. */
static bool checked_reuse(const char *dir, const struct pem_file *f, const struct names *n,
                          time_t now, struct pki_result *res)
{
        _cleanup_free_ char *path = strprintf("%s/" CHECKED_FILE, dir), *line = NULL;
        struct checked want, have;
        char *data[N_FILES];
        size_t len[N_FILES];

        for (size_t i = 0; i < N_FILES; i++) {
                if (!f[i].data)
                        return false;
                data[i] = f[i].data;
                len[i] = f[i].len;
        }
        if (!path || read_line_file(path, &line) < 0 ||
            sscanf(line, "v1 %64s %64s %lld %lld %lld %lld", have.files, have.names, &have.ca_from,
                   &have.ca_until, &have.srv_from, &have.srv_until) != 6)
                return false;
        checked_digests(data, len, n, &want);
        if (!streq(want.files, have.files) || !streq(want.names, have.names) ||
            have.ca_from > now || expiring((time_t)have.ca_until, now) || have.srv_from > now ||
            expiring((time_t)have.srv_until, now))
                return false;
        *res = (struct pki_result){.ca_not_after = (time_t)have.ca_until,
                                   .server_not_after = (time_t)have.srv_until};
        return true;
}

static void checked_save(const char *dir, char *const *data, const struct names *n, X509 *ca,
                         X509 *server)
{
        _cleanup_free_ char *path = strprintf("%s/" CHECKED_FILE, dir), *line = NULL;
        size_t len[N_FILES];
        struct checked c;
        time_t t[4];

        for (size_t i = 0; i < N_FILES; i++)
                len[i] = strlen(data[i]);
        if (!path || asn1_time(X509_get0_notBefore(ca), &t[0]) < 0 ||
            asn1_time(X509_get0_notAfter(ca), &t[1]) < 0 ||
            asn1_time(X509_get0_notBefore(server), &t[2]) < 0 ||
            asn1_time(X509_get0_notAfter(server), &t[3]) < 0)
                return;
        checked_digests(data, len, n, &c);
        line = strprintf("v1 %s %s %lld %lld %lld %lld\n", c.files, c.names, (long long)t[0],
                         (long long)t[1], (long long)t[2], (long long)t[3]);
        /* Only a cache: without it the next render checks everything. */
        if (line)
                (void)write_file_atomic_full(path, line, strlen(line), 0600, (uid_t)-1, (gid_t)-1,
                                             WRITE_NOSYNC);
}

/* fullchain.pem: the server certificate, then the CA. */
static char *chain_of(const char *server, const char *ca)
{
        size_t n = strlen(server);
        return strprintf("%s%s%s", server, n > 0 && server[n - 1] != '\n' ? "\n" : "", ca);
}

/* A server dir apart from the CA's (a fleet's host) holds no CA files;
 * those of a render from before the fleet CA are removed, ca.key being a
 * secret that should not lie around unused. */
static void drop_stale_ca(const char *ca_dir, const char *dir)
{
        if (streq(ca_dir, dir))
                return;
        for (size_t i = F_CA_KEY; i <= F_CA_CRT; i++) {
                _cleanup_free_ char *p = strprintf("%s/%s", dir, file_names[i]);
                if (p)
                        (void)unlink(p);
        }
}

int pki_ensure_at(const char *ca_dir, const char *dir, const char *const *dns_names,
                  const char *const *ip_addrs, int days, time_t now, struct pki_result *res,
                  char **err)
{
        struct names n = {0};
        struct pem_file f[N_FILES] = {{0}};
        _cleanup_pkey_ EVP_PKEY *ca_key = NULL, *server_key = NULL;
        _cleanup_x509_ X509 *ca = NULL, *server = NULL;
        char *out[N_FILES] = {0};
        struct pki_result rs = {0};
        int r;

        *err = NULL;
        if (days < 1 || days > PKI_MAX_DAYS) {
                *err = strprintf("certificate validity of %d days is out of range (1..%d)", days,
                                 PKI_MAX_DAYS);
                return -EINVAL;
        }
        r = names_init(&n, dns_names, ip_addrs, err);
        if (r < 0)
                goto out;
        for (size_t i = 0; i < 2; i++) {
                const char *d = i == 0 ? ca_dir : dir;
                r = mkdir_p(d, 0700);
                if (r < 0) {
                        *err = strprintf("%s: cannot create: %s", d, strerror(-r));
                        goto out;
                }
        }
        for (size_t i = 0; i < N_FILES; i++) {
                r = pem_file_read(&f[i], i <= F_CA_CRT ? ca_dir : dir, file_names[i], i > F_CA_CRT,
                                  err);
                if (r < 0)
                        goto out;
        }

        if (f[F_CA_KEY].data && f[F_SERVER_KEY].data) {
                r = check_key_mode(&f[F_CA_KEY], err);
                if (r >= 0)
                        r = check_key_mode(&f[F_SERVER_KEY], err);
                if (r < 0)
                        goto out;
                if (checked_reuse(dir, f, &n, now, &rs)) {
                        fill_text(&rs, &n);
                        *res = rs;
                        drop_stale_ca(ca_dir, dir);
                        goto out;
                }
        }
        r = load_ca(f, &ca_key, &ca, now, &rs.ca_why, err);
        if (r < 0)
                goto out;
        if (rs.ca_why) {
                EVP_PKEY_free(ca_key);
                X509_free(ca);
                ca_key = NULL;
                ca = NULL;
                r = make_ca(now, &ca_key, &ca);
                if (r < 0) {
                        *err = strprintf("cannot make the CA: %s", ossl_reason());
                        goto out;
                }
                rs.ca = rs.ca_why == PKI_WHY_MISSING && !f[F_CA_KEY].data && !f[F_CA_CRT].data
                                ? PKI_CREATED
                                : PKI_RENEWED;
                out[F_CA_KEY] = key_pem(ca_key);
                out[F_CA_CRT] = cert_pem(ca);
                if (!out[F_CA_KEY] || !out[F_CA_CRT]) {
                        r = -ENOMEM;
                        goto out;
                }
                ca_memo_put(out[F_CA_KEY], out[F_CA_CRT], ca_key, ca);
                /* A new CA makes the old server certificate useless. */
                rs.server_why = PKI_WHY_NEW_CA;
        } else {
                r = load_server(f, ca, &n, now, &server_key, &server, &rs.server_why, err);
                if (r < 0)
                        goto out;
        }
        if (rs.server_why) {
                EVP_PKEY_free(server_key);
                X509_free(server);
                server_key = NULL;
                server = NULL;
                r = make_server(&n, days, now, ca_key, ca, &server_key, &server);
                if (r < 0) {
                        *err = strprintf("cannot issue the server certificate: %s", ossl_reason());
                        goto out;
                }
                rs.server =
                        !f[F_SERVER_KEY].data && !f[F_SERVER_CRT].data ? PKI_CREATED : PKI_RENEWED;
                if (rs.server == PKI_CREATED)
                        rs.server_why = 0;
                out[F_SERVER_KEY] = key_pem(server_key);
                out[F_SERVER_CRT] = cert_pem(server);
                if (!out[F_SERVER_KEY] || !out[F_SERVER_CRT]) {
                        r = -ENOMEM;
                        goto out;
                }
        }
        if (rs.ca == PKI_CREATED)
                rs.ca_why = 0;

        out[F_FULLCHAIN] = chain_of(out[F_SERVER_CRT] ? out[F_SERVER_CRT] : f[F_SERVER_CRT].data,
                                    out[F_CA_CRT] ? out[F_CA_CRT] : f[F_CA_CRT].data);
        if (!out[F_FULLCHAIN]) {
                r = -ENOMEM;
                goto out;
        }
        if (f[F_FULLCHAIN].data && streq(out[F_FULLCHAIN], f[F_FULLCHAIN].data)) {
                free(out[F_FULLCHAIN]);
                out[F_FULLCHAIN] = NULL;
        }
        rs.fullchain_written = out[F_FULLCHAIN] != NULL;
        if (not_after(ca, &rs.ca_not_after) < 0 || not_after(server, &rs.server_not_after) < 0) {
                *err = strprintf("%s: unreadable expiry date", dir);
                r = -EBADMSG;
                goto out;
        }

        /* The CA first: a server certificate is never in place before the
         * CA that signed it. */
        r = commit(ca_dir, f, (const char *const *)out, file_modes, F_CA_CRT + 1, true, err);
        if (r >= 0)
                r = commit(dir, f + F_SERVER_KEY, (const char *const *)out + F_SERVER_KEY,
                           file_modes + F_SERVER_KEY, N_FILES - F_SERVER_KEY, false, err);
        if (r < 0)
                goto out;
        drop_stale_ca(ca_dir, dir);
        {
                char *now_data[N_FILES];
                for (size_t i = 0; i < N_FILES; i++)
                        now_data[i] = out[i] ? out[i] : f[i].data;
                checked_save(dir, now_data, &n, ca, server);
        }
        fill_text(&rs, &n);
        *res = rs;
out:
        if (r < 0 && !*err)
                *err = strprintf("%s: %s", dir, strerror(-r));
        for (size_t i = 0; i < N_FILES; i++) {
                if (out[i])
                        explicit_bzero(out[i], strlen(out[i]));
                free(out[i]);
                pem_file_done(&f[i]);
        }
        names_done(&n);
        ERR_clear_error();
        return r;
}

int pki_ensure(const char *ca_dir, const char *dir, const char *const *dns_names,
               const char *const *ip_addrs, int days, struct pki_result *res, char **err)
{
        return pki_ensure_at(ca_dir, dir, dns_names, ip_addrs, days, time(NULL), res, err);
}

int pki_sync(char **err)
{
        int r;

        if (!unsynced_dir)
                return 0;
        r = sync_fs(unsynced_dir);
        if (r < 0)
                *err = strprintf("%s: cannot sync: %s", unsynced_dir, strerror(-r));
        free(unsynced_dir);
        unsynced_dir = NULL;
        return r;
}

/* --- signing keys --- */

/* Puts data at dir/name through a temporary file, never replacing an
 * existing file: -EEXIST when one is there. */
static int place_new(const char *dir, const char *name, const char *data, mode_t mode, char **err)
{
        _cleanup_free_ char *tmp = strprintf("%s/.%s.tmp", dir, name);
        _cleanup_free_ char *path = strprintf("%s/%s", dir, name);
        int r;

        if (!tmp || !path)
                return -ENOMEM;
        r = write_file_atomic_full(tmp, data, strlen(data), mode, (uid_t)-1, (gid_t)-1,
                                   WRITE_IN_PLACE);
        if (r < 0) {
                *err = strprintf("%s: cannot write: %s", tmp, strerror(-r));
                return r;
        }
        r = renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE);
        if (r < 0 && (errno == EINVAL || errno == ENOSYS)) {
                /* A file system without RENAME_NOREPLACE: link() does not
                 * replace either. */
                r = link(tmp, path);
                if (r == 0)
                        unlink(tmp);
        }
        if (r < 0) {
                r = -errno;
                unlink(tmp);
                *err = r == -EEXIST ? strprintf("%s already exists: refusing to overwrite a "
                                                "signing key (move it away to make a new pair)",
                                                path)
                                    : strprintf("%s: cannot write: %s", path, strerror(-r));
                return r;
        }
        r = fsync_path(dir);
        if (r < 0)
                *err = strprintf("%s: fsync: %s", dir, strerror(-r));
        return r;
}

int signing_keygen(const char *dir, char **err)
{
        _cleanup_free_ char *priv = NULL, *pub = NULL, *key_path = NULL, *pub_path = NULL;
        int r;

        *err = NULL;
        key_path = strprintf("%s/signing.key", dir);
        pub_path = strprintf("%s/signing.pub", dir);
        if (!key_path || !pub_path)
                return -ENOMEM;
        /* Checked before anything is made, so that a refusal leaves no
         * trace; place_new() checks again without a race. */
        const char *const paths[] = {key_path, pub_path};
        for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
                struct stat st;
                if (lstat(paths[i], &st) == 0) {
                        *err = strprintf("%s already exists: refusing to overwrite a signing key "
                                         "(move it away to make a new pair)",
                                         paths[i]);
                        return -EEXIST;
                }
        }
        r = mkdir_p(dir, 0700);
        if (r < 0) {
                *err = strprintf("%s: cannot create: %s", dir, strerror(-r));
                return r;
        }
        r = ed25519_keygen(&priv, &pub);
        if (r < 0) {
                *err = strprintf("cannot make an Ed25519 key: %s", strerror(-r));
                return r;
        }
        r = place_new(dir, "signing.key", priv, 0600, err);
        explicit_bzero(priv, strlen(priv));
        if (r < 0)
                return r;
        r = place_new(dir, "signing.pub", pub, 0644, err);
        if (r < 0) {
                /* No half pair: a private key without its public key would
                 * block the next keygen. */
                unlink(key_path);
                return r;
        }
        return 0;
}
