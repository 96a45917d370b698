/* Module ordering and the host checks. */
#include <errno.h>

#include "fs.h"
#include "plan.h"
#include "util.h"
#include "tap.h"

/* A plan from a compact text: "a:b,c/d" is module a, after b and c,
 * requiring d. Items are separated by spaces. */
struct plan {
        struct plan_item items[16];
        char **strings[48];
        size_t n, n_strings;
};

static char **split(struct plan *p, const char *s, size_t len)
{
        char **v = NULL;
        _cleanup_free_ char *copy = xstrndup(s, len);
        char *save = NULL;

        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                CHECK(strv_extend(&v, t) == 0);
        p->strings[p->n_strings++] = v;
        return v;
}

static void plan_build(struct plan *p, const char *text)
{
        _cleanup_free_ char *copy = xstrdup(text);
        char *save = NULL;

        *p = (struct plan){0};
        for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
                struct plan_item *it = &p->items[p->n++];
                size_t idlen = strcspn(t, ":/");
                char **id = split(p, t, idlen);
                it->id = id[0];
                const char *rest = t + idlen;
                if (*rest == ':') {
                        rest++;
                        size_t len = strcspn(rest, "/");
                        it->after = split(p, rest, len);
                        rest += len;
                }
                if (*rest == '/')
                it->requires = split(p, rest + 1, strlen(rest + 1));
        }
}

static void plan_done(struct plan *p)
{
        for (size_t i = 0; i < p->n_strings; i++)
                strv_free(p->strings[i]);
}

/* The order as "a b c", or "error: ..." */
static char *order_of(const char *text, int *ret_r)
{
        struct plan p;
        size_t order[16];
        char *error = NULL;
        struct buf b = {0};

        plan_build(&p, text);
        for (size_t i = 0; i < 16; i++)
                order[i] = 99;
        size_t item = 99;
        int r = plan_order(p.items, p.n, order, &error, &item);
        if (ret_r)
                *ret_r = r;
        if (r < 0) {
                CHECK(error);
                CHECK(order[0] == 99);
                /* The item reported is the one the message starts with. */
                CHECK(item < p.n);
                if (item < p.n && error) {
                        _cleanup_free_ char *m = strprintf("module '%s'", p.items[item].id);
                        _cleanup_free_ char *c =
                                strprintf("dependency cycle: %s -> ", p.items[item].id);
                        CHECK(startswith(error, m) || startswith(error, c));
                }
                buf_printf(&b, "error: %s", error ? error : "(none)");
        } else {
                CHECK(!error);
                for (size_t i = 0; i < p.n; i++)
                        buf_printf(&b, "%s%s", i ? " " : "", p.items[order[i]].id);
        }
        free(error);
        plan_done(&p);
        buf_puts(&b, "");
        return buf_steal(&b);
}

#define ORDER(text, expected)                                                                      \
        do {                                                                                       \
                _cleanup_free_ char *_o = order_of(text, NULL);                                    \
                CHECK_STREQ(_o, expected);                                                         \
        } while (0)

TEST(order_linear)
{
        ORDER("c:b b:a a", "a b c");
        ORDER("c/b b/a a", "a b c");
        ORDER("a b c", "a b c");
        ORDER("", "");
        ORDER("only", "only");
}

TEST(order_diamond)
{
        ORDER("d:b,c c/a b/a a", "a c b d");
        ORDER("d/c,b b:a c:a a", "a b c d");
}

TEST(order_is_stable)
{
        /* Ready at the same time: the listing order wins. */
        ORDER("z y x", "z y x");
        ORDER("app:db web db cache", "web db app cache");
        ORDER("app:db,cache cache web db", "cache web db app");
        ORDER("b:a c a d", "c a b d");
}

TEST(order_after_absent_is_ignored)
{
        ORDER("app:docker,db db", "db app");
}

TEST(order_requires_missing)
{
        int r;
        _cleanup_free_ char *o = order_of("app/db,cache db", &r);
        CHECK_INTEQ(r, -ENOENT);
        CHECK_STREQ(o, "error: module 'app' requires 'cache', which is not in the plan");
}

TEST(order_cycles)
{
        int r;
        _cleanup_free_ char *a = order_of("a/b b:a", &r);
        CHECK_INTEQ(r, -ELOOP);
        CHECK_STREQ(a, "error: dependency cycle: a -> b -> a");
        /* Told from its first listed member, whatever the walk found. */
        ORDER("x:c a:b b/c c:a", "error: dependency cycle: a -> b -> c -> a");
        ORDER("c:a b/c a:b", "error: dependency cycle: c -> a -> b -> c");
        /* Items outside the cycle, before and after it. */
        ORDER("ok d:ok,e e:f f:e", "error: dependency cycle: e -> f -> e");
        _cleanup_free_ char *s = order_of("a s:s", &r);
        CHECK_INTEQ(r, -ELOOP);
        CHECK_STREQ(s, "error: dependency cycle: s -> s");
        ORDER("s/s", "error: dependency cycle: s -> s");
}

TEST(order_duplicates)
{
        int r;
        _cleanup_free_ char *o = order_of("a b a", &r);
        CHECK_INTEQ(r, -EINVAL);
        CHECK_STREQ(o, "error: module 'a' is listed twice");
}

struct tmp {
        char dir[64];
};

static void tmp_new(struct tmp *t)
{
        snprintf(t->dir, sizeof(t->dir), "/tmp/test-plan.XXXXXX");
        CHECK(mkdtemp(t->dir));
}

static void put(const struct tmp *t, const char *path, const char *text)
{
        _cleanup_free_ char *p = strprintf("%s/%s", t->dir, path);
        CHECK(mkdir_parents(p, 0755) >= 0);
        CHECK(write_file_atomic(p, text, strlen(text), 0644, (uid_t)-1, (gid_t)-1) >= 0);
}

/* plan_check_os() on a root with os-release text, for the families in
 * spec ("ubuntu>=20.04,debian"; NULL for none); the message or "". */
static char *os_check_list(const char *os_release, const char *spec, int *ret_r)
{
        struct tmp t = {{0}};
        struct manifest_os os[8] = {{0}};
        _cleanup_strv_free_ char **words = NULL;
        size_t n = 0;
        char *error = NULL;

        for (const char *p = spec; p && *p && n < ARRAY_SIZE(os); n++) {
                size_t len = strcspn(p, ",");
                _cleanup_free_ char *w = strndup(p, len);
                char *ge = strstr(w, ">=");
                if (ge)
                        *ge = '\0';
                CHECK(strv_extend(&words, w) >= 0);
                os[n].family = words[strv_length(words) - 1];
                if (ge) {
                        CHECK(strv_extend(&words, ge + 2) >= 0);
                        os[n].min_version = words[strv_length(words) - 1];
                }
                p += len + (p[len] == ',');
        }
        tmp_new(&t);
        if (os_release)
                put(&t, "etc/os-release", os_release);
        int r = plan_check_os(t.dir, os, n, &error);
        CHECK((r < 0) == (error != NULL));
        if (ret_r)
                *ret_r = r;
        CHECK(rm_rf(t.dir) >= 0);
        return error ? error : xstrdup("");
}

/* One family (NULL for no requirement) and its min_version (or NULL). */
static char *os_check(const char *os_release, const char *family, const char *min, int *ret_r)
{
        _cleanup_free_ char *spec =
                family ? strprintf("%s%s%s", family, min ? ">=" : "", min ? min : "") : NULL;
        return os_check_list(os_release, spec, ret_r);
}

#define OS(os_release, family, min, expected)                                                      \
        do {                                                                                       \
                _cleanup_free_ char *_e = os_check(os_release, family, min, NULL);                 \
                CHECK_STREQ(_e, expected);                                                         \
        } while (0)
#define OSL(os_release, spec, expected)                                                            \
        do {                                                                                       \
                _cleanup_free_ char *_e = os_check_list(os_release, spec, NULL);                   \
                CHECK_STREQ(_e, expected);                                                         \
        } while (0)

static const char debian12[] = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
                               "NAME=\"Debian GNU/Linux\"\n"
                               "VERSION_ID=\"12\"\n"
                               "VERSION=\"12 (bookworm)\"\n"
                               "ID=debian\n";
static const char ubuntu[] = "NAME=\"Ubuntu\"\n"
                             "VERSION_ID=\"22.04\"\n"
                             "ID=ubuntu\n"
                             "ID_LIKE=debian\n";
static const char rhel[] = "ID='rocky'\n"
                           "ID_LIKE=\"rhel centos fedora\"\n"
                           "VERSION_ID=\"9.3\"\n";

TEST(os_family_and_version)
{
        OS(debian12, "debian", NULL, "");
        OS(debian12, "Debian", "12", "");
        OS(debian12, "debian", "11.4", "");
        OS(debian12, "debian", "12.0", "");
        OS(debian12, "debian", "012", "");
        OS(debian12, "debian", "13", "requires debian >= 13, this is debian 12");
        OS(debian12, "debian", "12.1", "requires debian >= 12.1, this is debian 12");
        OS(debian12, "fedora", NULL, "requires fedora, this is debian 12");
        OS(debian12, "fedora", "39", "requires fedora >= 39, this is debian 12");
        OS(debian12, NULL, NULL, "");
        /* ID_LIKE, quoted values, several words. */
        OS(ubuntu, "debian", NULL, "");
        OS(ubuntu, "ubuntu", "22.04", "");
        OS(ubuntu, "ubuntu", "22.10", "requires ubuntu >= 22.10, this is ubuntu 22.04");
        OS(ubuntu, "deb", NULL, "requires deb, this is ubuntu 22.04");
        OS(rhel, "fedora", NULL, "");
        OS(rhel, "RHEL", "9", "");
        OS(rhel, "rhel", "9.10", "requires rhel >= 9.10, this is rocky 9.3");
        OS(rhel, "rocky", "10", "requires rocky >= 10, this is rocky 9.3");
        /* Numeric, not textual, comparison. */
        OS("ID=x\nVERSION_ID=10.2\n", "x", "9.12", "");
        OS("ID=x\nVERSION_ID=3.19.1\n", "x", "3.9", "");
        OS("ID=x\nVERSION_ID=3.9\n", "x", "3.19", "requires x >= 3.19, this is x 3.9");
        OS("ID=x\nVERSION_ID=99999999999999999999999\n", "x", "99999999999999999999998", "");
        OS("ID=x\n", "x", "1", "requires x >= 1, this is x without a VERSION_ID in os-release");
        OS("ID=x\nVERSION_ID=rolling\n", "x", "1",
           "requires x >= 1, this is x rolling, a version that cannot be compared");
}

/* Several families: the system is one of them, and only its own
 * min_version counts. The real os-release of Ubuntu 22.04 and Debian 12
 * (ID, VERSION_ID, ID_LIKE) are the ones above. */
TEST(os_several_families)
{
        /* The seed's manifest: [ubuntu, debian] with "20.04", Ubuntu's. */
        OSL(ubuntu, "ubuntu>=20.04,debian", "");
        OSL(debian12, "ubuntu>=20.04,debian", "");
        OSL("ID=ubuntu\nVERSION_ID=\"18.04\"\nID_LIKE=debian\n", "ubuntu>=20.04,debian",
            "requires ubuntu >= 20.04 or debian, this is ubuntu 18.04");
        OSL(rhel, "ubuntu>=20.04,debian", "requires ubuntu >= 20.04 or debian, this is rocky 9.3");
        /* Each family its own minimum. */
        OSL(debian12, "ubuntu>=20.04,debian>=11", "");
        OSL(debian12, "ubuntu>=20.04,debian>=13",
            "requires ubuntu >= 20.04 or debian >= 13, this is debian 12");
        OSL(ubuntu, "ubuntu>=22.10,debian>=11",
            "requires ubuntu >= 22.10 or debian >= 11, this is ubuntu 22.04");
        /* Ubuntu's own ID wins over its ID_LIKE=debian, whichever is
         * listed first: 22.04 is never compared with Debian's 13. */
        OSL(ubuntu, "debian>=13,ubuntu>=22.04", "");
        /* Not listed itself: the closest ID_LIKE word that is listed,
         * compared with the derivative's own VERSION_ID. */
        OSL(ubuntu, "fedora,debian>=11", "");
        OSL(rhel, "debian,fedora>=10,rhel>=9", "");
        OSL("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\nVERSION_ID=\"21.2\"\n",
            "debian>=11,ubuntu>=22.04",
            "requires debian >= 11 or ubuntu >= 22.04, this is linuxmint 21.2");
}

TEST(os_release_missing)
{
        int r;
        struct tmp t = {{0}};
        char *error = NULL;

        _cleanup_free_ char *e = os_check(NULL, "debian", NULL, &r);
        CHECK_INTEQ(r, -ENOENT);
        CHECK(startswith(e, "cannot check os_requirements: no /etc/os-release in /tmp/test-plan."));
        /* No requirement, no need for the file. */
        _cleanup_free_ char *f = os_check(NULL, NULL, NULL, &r);
        CHECK_INTEQ(r, 0);
        /* /usr/lib/os-release is the fallback os-release(5) names. */
        tmp_new(&t);
        put(&t, "usr/lib/os-release", debian12);
        CHECK_INTEQ(plan_check_os(t.dir, &(struct manifest_os){"debian", "12"}, 1, &error), 0);
        CHECK(!error);
        CHECK(rm_rf(t.dir) >= 0);
}

TEST(resources)
{
        struct tmp t = {{0}};
        char *error = NULL;

        tmp_new(&t);
        put(&t, "meminfo", "MemTotal:        2014256 kB\nMemFree:          123456 kB\n");
        _cleanup_free_ char *mi = strprintf("%s/meminfo", t.dir);

        CHECK_INTEQ(plan_check_resources(t.dir, mi, 0, 0, &error), 0);
        CHECK_INTEQ(plan_check_resources(t.dir, mi, 1024, 0, &error), 0);
        CHECK_INTEQ(plan_check_resources(t.dir, mi, 1967, 0, &error), 0);
        CHECK(!error);
        CHECK_INTEQ(plan_check_resources(t.dir, mi, 1968, 0, &error), -ERANGE);
        CHECK_STREQ(error, "requires 1968 MB of RAM, this machine has 1967 MB");
        free(error);
        error = NULL;

        /* The disk: 1 MB is there; a petabyte is not. */
        CHECK_INTEQ(plan_check_resources(t.dir, mi, 0, 1, &error), 0);
        CHECK(!error);
        CHECK_INTEQ(plan_check_resources(t.dir, mi, 0, 1LL << 30, &error), -ERANGE);
        _cleanup_free_ char *want = strprintf("requires 1073741824 MB of free disk space on %s, "
                                              "there are ",
                                              t.dir);
        CHECK(error && startswith(error, want));
        free(error);
        error = NULL;

        /* A meminfo without MemTotal, or none at all. */
        put(&t, "bad", "MemFree: 1 kB\n");
        _cleanup_free_ char *bad = strprintf("%s/bad", t.dir);
        CHECK_INTEQ(plan_check_resources(t.dir, bad, 1, 0, &error), -EBADMSG);
        CHECK(error && strstr(error, "no MemTotal"));
        free(error);
        error = NULL;
        _cleanup_free_ char *none = strprintf("%s/none", t.dir);
        CHECK_INTEQ(plan_check_resources(t.dir, none, 1, 0, &error), -ENOENT);
        free(error);
        error = NULL;
        CHECK(rm_rf(t.dir) >= 0);

        /* A root that does not exist. */
        CHECK_INTEQ(plan_check_resources(t.dir, mi, 0, 1, &error), -ENOENT);
        CHECK(error && strstr(error, "statvfs"));
        free(error);
}

TAP_MAIN
