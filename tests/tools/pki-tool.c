/* pki-tool: drives imagegen's PKI and secrets store for the end-to-end
 * tests.
 *   pki-tool ensure DIR [--days N] [--at-days N] [--dns NAME]... [--ip ADDR]...
 *       pki_ensure() with the CA and the server in DIR; prints what it did.
 *       --at-days N acts N days from now.
 *   pki-tool keygen DIR
 *       signing_keygen().
 *   pki-tool secret STATE NAME password|token|api-key
 *       prints the secret from the store at STATE (made the first time)
 *       and saves the store.
 * Exit 0, 1 on an error (printed on stderr), 2 on a usage error. */
#include <errno.h>
#include <time.h>

#include "util.h"
#include "../../imagegen/pki.h"
#include "../../imagegen/secrets.h"

static int usage(void)
{
        fprintf(stderr, "usage: pki-tool ensure DIR [--days N] [--at-days N] [--dns NAME]... "
                        "[--ip ADDR]...\n"
                        "       pki-tool keygen DIR\n"
                        "       pki-tool secret STATE NAME password|token|api-key\n");
        return 2;
}

static int cmd_ensure(int argc, char **argv)
{
        _cleanup_strv_free_ char **dns = NULL, **ip = NULL;
        _cleanup_free_ char *err = NULL;
        struct pki_result res;
        long long days = 825, at_days = 0;

        for (int i = 3; i < argc; i++) {
                if (i + 1 >= argc)
                        return usage();
                if (streq(argv[i], "--dns"))
                        strv_extend(&dns, argv[++i]);
                else if (streq(argv[i], "--ip"))
                        strv_extend(&ip, argv[++i]);
                else if (streq(argv[i], "--days")) {
                        if (parse_llong(argv[++i], &days) < 0 || days > 100000 || days < -100000)
                                return usage();
                } else if (streq(argv[i], "--at-days")) {
                        if (parse_llong(argv[++i], &at_days) < 0 || at_days > 100000 ||
                            at_days < -100000)
                                return usage();
                } else
                        return usage();
        }
        time_t now = time(NULL) + (time_t)at_days * 86400;
        if (pki_ensure_at(argv[2], argv[2], (const char *const *)dns, (const char *const *)ip,
                          (int)days, now, &res, &err) < 0) {
                fprintf(stderr, "pki-tool: %s\n", err);
                return 1;
        }
        printf("%s\n", pki_result_describe(&res));
        return 0;
}

static int cmd_secret(char **argv)
{
        static const struct {
                const char *name;
                enum secret_kind kind;
        } kinds[] = {
                {"password", SECRET_PASSWORD},
                {"token", SECRET_TOKEN},
                {"api-key", SECRET_API_KEY},
        };
        _cleanup_secrets_ struct secrets *s = NULL;
        _cleanup_free_ char *err = NULL;
        size_t k;

        for (k = 0; k < ARRAY_SIZE(kinds); k++)
                if (streq(argv[4], kinds[k].name))
                        break;
        if (k == ARRAY_SIZE(kinds))
                return usage();
        if (secrets_load(argv[2], &s, &err) < 0) {
                fprintf(stderr, "pki-tool: %s\n", err);
                return 1;
        }
        const char *v = secrets_get(s, argv[3], kinds[k].kind);
        if (!v) {
                fprintf(stderr, "pki-tool: cannot generate a secret\n");
                return 1;
        }
        printf("%s\n", v);
        if (secrets_save(s, &err) < 0) {
                fprintf(stderr, "pki-tool: %s\n", err);
                return 1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        _cleanup_free_ char *err = NULL;

        if (argc >= 3 && streq(argv[1], "ensure"))
                return cmd_ensure(argc, argv);
        if (argc == 3 && streq(argv[1], "keygen")) {
                if (signing_keygen(argv[2], &err) < 0) {
                        fprintf(stderr, "pki-tool: %s\n", err);
                        return 1;
                }
                return 0;
        }
        if (argc == 5 && streq(argv[1], "secret"))
                return cmd_secret(argv);
        return usage();
}
