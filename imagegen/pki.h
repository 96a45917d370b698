/* A site's TLS material and signing keys: the one file of imagegen that
 * talks to OpenSSL's X.509 and key APIs (hashes, signatures and random
 * bytes stay in common/crypto.c).
 *
 * pki_ensure() keeps, in a CA directory and a server directory (0700; the
 * same one for a single server, one server directory per host under the
 * site's CA directory for a fleet, whose hosts share the CA):
 *   ca.key         0600  in the CA directory: ECDSA P-256, PKCS#8 PEM
 *   ca.crt         0644  in the CA directory: self-signed CA:
 *                        basicConstraints CA:TRUE (critical),
 *                        keyUsage keyCertSign+cRLSign (critical),
 *                        subjectKeyIdentifier; valid PKI_CA_DAYS
 *   server.key     0600  ECDSA P-256, PKCS#8 PEM
 *   server.crt     0644  signed by the CA: subjectAltName DNS and IP names,
 *                        extendedKeyUsage serverAuth, basicConstraints
 *                        CA:FALSE, authority and subject key identifiers, a
 *                        random 128-bit serial; valid `days` (never past
 *                        the CA)
 *   fullchain.pem  0644  server.crt then ca.crt
 *   .checked       0600  what the last full check found: the SHA-256 of
 *                        the five files and of the names, the validity
 *                        dates. When it matches, nothing is parsed again
 *                        (OpenSSL's key decoding is what a fleet's
 *                        re-render would spend its time on); any change
 *                        to a file or a name means a full check.
 *
 * Everything present and valid is reused as it is (not a byte changes).
 * The server certificate is issued again, with a fresh key (a renewal is a
 * cheap moment to rotate it, and nothing outside the bundle pins it), when
 * it expires within PKI_RENEW_DAYS, when its names differ from those asked
 * for (in any order, DNS names in any case), when it does not verify
 * against the CA, or when server.key does not match it. The CA is made
 * anew only when ca.key or ca.crt is missing, when it expires within
 * PKI_RENEW_DAYS, or when it is not valid yet (made while the clock was
 * ahead: nothing it signs would verify); the server certificate is then
 * issued again too.
 *
 * A file that cannot be parsed, a private key readable by group or others,
 * a ca.key that does not match ca.crt, or a ca.crt that is not a CA is an
 * error naming the file: such files are the user's to look at, never
 * replaced silently. Nothing is half-written: new files are staged as
 * temporary files next to their final names and renamed into place only
 * once all of them are written; on any error the old files stay as they
 * were.
 *
 * The CA's files are fsync'd as they are written; the server's are not
 * (a fleet's first render spent most of its time in fsync): pki_sync()
 * makes them durable at once, before the caller reports success. A crash
 * before it can leave a server file empty; an empty server.key,
 * server.crt or fullchain.pem counts as missing. */
#pragma once

#include <stdbool.h>
#include <time.h>

#define PKI_CA_DAYS    3650
#define PKI_RENEW_DAYS 30
#define PKI_MAX_DAYS   PKI_CA_DAYS

enum pki_action {
        PKI_REUSED,
        PKI_CREATED, /* there was none */
        PKI_RENEWED, /* it replaced one, for the reasons in *_why */
};

/* Why a certificate was made (bits of pki_result's ca_why, server_why). */
enum {
        PKI_WHY_MISSING = 1u << 0,   /* a file of it was missing */
        PKI_WHY_EXPIRING = 1u << 1,  /* expired or expires within PKI_RENEW_DAYS */
        PKI_WHY_NAMES = 1u << 2,     /* its names differ from those asked for */
        PKI_WHY_UNTRUSTED = 1u << 3, /* it does not verify against the CA */
        PKI_WHY_KEY = 1u << 4,       /* server.key does not match it or is not P-256 */
        PKI_WHY_NEW_CA = 1u << 5,    /* the CA was made anew */
        PKI_WHY_NOT_YET = 1u << 6,   /* the CA is not valid yet: the clock went back */
};

struct pki_result {
        enum pki_action ca, server;
        unsigned ca_why, server_why;
        bool fullchain_written; /* fullchain.pem was (re)written */
        time_t ca_not_after, server_not_after;
        char text[1024]; /* what pki_result_describe() returns */
};

/* Makes or reuses the CA in ca_dir and the server certificate in dir
 * (which may be ca_dir; ca.key and ca.crt that an older layout left in a
 * dir apart from ca_dir are removed) for the DNS names and IP addresses
 * (NULL-terminated lists, either may be NULL; at least one name in all),
 * the certificate valid `days` (1..PKI_MAX_DAYS; note that one shorter
 * than PKI_RENEW_DAYS is renewed on every call).
 * Returns 0 with *res filled, or a negative errno with *err set to a
 * message that names the file or the name at fault. */
int pki_ensure(const char *ca_dir, const char *dir, const char *const *dns_names,
               const char *const *ip_addrs, int days, struct pki_result *res, char **err);
/* The same at another time than now, for tests: certificates are issued,
 * checked for expiry and verified as if the clock said `now`. */
int pki_ensure_at(const char *ca_dir, const char *dir, const char *const *dns_names,
                  const char *const *ip_addrs, int days, time_t now, struct pki_result *res,
                  char **err);

/* syncfs() of the file system that pki_ensure() last wrote server files
 * to unsynced (imagegen keeps them all in one state directory); 0 when
 * nothing is waiting. */
int pki_sync(char **err);

/* One line saying what pki_ensure() did and why, for `imagegen render`:
 * "CA reused (valid until 2035-11-23); server certificate for a.example,
 * 10.0.0.1 renewed: names changed (valid until 2028-02-26)". */
const char *pki_result_describe(const struct pki_result *res);

/* `imagegen keygen`: a new Ed25519 pair in dir (created 0700 when
 * missing): signing.key (0600, PKCS#8 PEM) and signing.pub (0644,
 * SubjectPublicKeyInfo PEM). Refuses, with -EEXIST and *err naming the
 * file, when either exists; never overwrites a key, and leaves no half
 * pair behind. */
int signing_keygen(const char *dir, char **err);
