/* A module's digest (firstboot/digest.c): stable across the order inputs
 * are written in and defaults written out, and the reasons a module runs
 * again, by name and never by value. */
#include "tap.h"

#include "bundle.h"
#include "crypto.h"
#include "../../firstboot/digest.h"
#include "prepare.h"

#include <errno.h>

static const char salt[] = "00112233445566778899aabbccddeeff";

#define MANIFEST                                                                                   \
        "id: web\nname: Web\nversion: '1'\n"                                                       \
        "watches: [/etc/web.conf]\n"                                                               \
        "inputs:\n"                                                                                \
        "  - {name: port, type: port, default: 8080}\n"                                            \
        "  - {name: password, type: password}\n"                                                   \
        "  - {name: motd, type: string}\n"

/* The modules' shared helpers the bundle ships (modules/_lib/), or none. */
static const char *lib_text;

struct fixture {
        struct bundle *b;
        struct planned *mods;
        size_t n;
};

/* A bundle with module web shipped in it; inputs is the flow mapping
 * of its bundle.yaml entry. */
static int load(struct fixture *f, const char *inputs, const char *manifest, const char *script,
                const char *conf)
{
        struct member_list l = {0};
        struct diags d = {0};
        struct buf y = {0};
        const char *paths[] = {"modules/web/manifest.yml", "modules/web/install.sh",
                               "files/web.conf", "modules/_lib/firstboot-module.sh"};
        const char *data[] = {manifest, script, conf, lib_text};
        char h[65];

        buf_printf(&y,
                   "version: 1\nname: t\nserial: 3\nfiles:\n"
                   "  - {path: /etc/web.conf, source: files/web.conf}\n"
                   "modules:\n  - {id: web, inputs: %s}\nchecksums:\n",
                   inputs);
        for (size_t i = 0; i < (lib_text ? 4u : 3u); i++) {
                sha256_hex(data[i], strlen(data[i]), h);
                buf_printf(&y, "  %s: \"%s\"\n", paths[i], h);
                member_list_add(&l, paths[i], data[i], strlen(data[i]), 0644);
        }
        member_list_add(&l, BUNDLE_YAML, y.data, y.len, 0644);
        buf_free(&y);
        *f = (struct fixture){0};
        int k = bundle_parse(&l, NULL, &f->b, &d);
        struct prepare_options o = {.modules_dir = "/nonexistent"};
        if (k >= 0)
                k = prepare_modules(f->b, &o, &f->mods, &f->n, &d);
        diags_print(&d, stderr);
        diags_free(&d);
        if (k < 0) {
                bundle_free(f->b);
                f->b = NULL;
        }
        return k;
}

static void unload(struct fixture *f)
{
        planned_free(f->mods, f->n);
        bundle_free(f->b);
}

static void digest_of(const char *inputs, const char *manifest, const char *script,
                      const char *conf, struct module_digest *ret)
{
        struct fixture f;
        *ret = (struct module_digest){0};
        REQUIRE(load(&f, inputs, manifest, script, conf) == 0);
        CHECK_INTEQ(module_digest_compute(f.b, &f.mods[0], salt, ret), 0);
        unload(&f);
}

TEST(stable_across_key_order_and_defaults)
{
        struct module_digest a, b, c;
        digest_of("{password: s3cret, motd: hi}", MANIFEST, "#!/bin/sh\n", "x=1\n", &a);
        digest_of("{motd: hi, port: 8080, password: s3cret}", MANIFEST, "#!/bin/sh\n", "x=1\n", &b);
        digest_of("{port: 8080, password: s3cret, motd: hi}", MANIFEST, "#!/bin/sh\n", "x=1\n", &c);
        CHECK_STREQ(a.digest, b.digest);
        CHECK_STREQ(a.digest, c.digest);
        CHECK(!module_digest_changes(&a, &b));
        module_digest_free(&a);
        module_digest_free(&b);
        module_digest_free(&c);
}

TEST(reasons_name_what_changed)
{
        struct module_digest a, b;
        char *why;

        digest_of("{password: s3cret, motd: hi}", MANIFEST, "#!/bin/sh\n", "x=1\n", &a);
        digest_of("{password: other-pw, motd: hi, port: 9090}", MANIFEST, "#!/bin/sh\n", "x=1\n",
                  &b);
        why = module_digest_changes(&a, &b);
        CHECK_STREQ(why, "inputs changed: port, password");
        free(why);
        module_digest_free(&b);

        digest_of("{password: s3cret, motd: hi}", MANIFEST, "#!/bin/sh\necho 2\n", "x=1\n", &b);
        why = module_digest_changes(&a, &b);
        CHECK_STREQ(why, "script changed");
        free(why);
        module_digest_free(&b);

        digest_of("{password: s3cret, motd: hi}", MANIFEST, "#!/bin/sh\n", "x=2\n", &b);
        why = module_digest_changes(&a, &b);
        CHECK_STREQ(why, "watched file changed: /etc/web.conf");
        free(why);
        module_digest_free(&b);

        digest_of("{password: s3cret, motd: hi}", MANIFEST "description: d\n", "#!/bin/sh\n",
                  "x=1\n", &b);
        why = module_digest_changes(&a, &b);
        CHECK_STREQ(why, "manifest changed");
        free(why);
        module_digest_free(&b);

        /* An input given no more (motd is optional) counts as changed. */
        digest_of("{password: s3cret}", MANIFEST, "#!/bin/sh\n", "x=1\n", &b);
        why = module_digest_changes(&a, &b);
        CHECK_STREQ(why, "inputs changed: motd");
        free(why);
        module_digest_free(&b);
        module_digest_free(&a);
}

/* A script sourcing modules/_lib/ runs with those bytes too: a change
 * there reruns it, and the mark keeps the library's hash. A script that
 * does not source it is not affected. */
TEST(shared_library_in_digest)
{
        const char *uses = "#!/bin/bash\n. \"$(dirname \"$0\")/../_lib/firstboot-module.sh\"\n";
        struct module_digest a, b, c, back;
        char *why;

        lib_text = "die() { exit 1; }\n";
        digest_of("{password: s3cret}", MANIFEST, uses, "x=1\n", &a);
        digest_of("{password: s3cret}", MANIFEST, "#!/bin/sh\n", "x=1\n", &c);
        lib_text = "die() { exit 2; }\n";
        digest_of("{password: s3cret}", MANIFEST, uses, "x=1\n", &b);
        CHECK(a.lib[0] && !c.lib[0]);
        why = module_digest_changes(&a, &b);
        CHECK_STREQ(why, "modules' shared library changed");
        free(why);
        module_digest_free(&b);
        digest_of("{password: s3cret}", MANIFEST, "#!/bin/sh\n", "x=1\n", &b);
        CHECK_STREQ(b.digest, c.digest);
        module_digest_free(&b);

        _cleanup_free_ char *mark = module_digest_format(&a, "i-1", 1);
        CHECK_INTEQ(module_digest_parse(mark, strlen(mark), &back), 1);
        CHECK_STREQ(back.lib, a.lib);
        CHECK_STREQ(back.digest, a.digest);
        module_digest_free(&back);
        lib_text = NULL;
        module_digest_free(&a);
        module_digest_free(&c);
}

TEST(mark_round_trip_holds_no_value)
{
        struct module_digest a, back;
        digest_of("{password: s3cret, motd: hi}", MANIFEST, "#!/bin/sh\n", "x=1\n", &a);
        char *text = module_digest_format(&a, "i-1", 1234);
        REQUIRE(text);
        CHECK(!strstr(text, "s3cret"));
        CHECK(strstr(text, "input password "));
        CHECK_INTEQ(module_digest_parse(text, strlen(text), &back), 1);
        CHECK_STREQ(back.digest, a.digest);
        CHECK(!module_digest_changes(&a, &back));
        module_digest_free(&back);

        /* Old marks, torn or edited ones read as "no digest". */
        const char *old = "i-1 1700000000000\n";
        CHECK_INTEQ(module_digest_parse(old, strlen(old), &back), 0);
        CHECK_INTEQ(module_digest_parse(text, strlen(text) / 2, &back), 0);
        char *p = strstr(text, "script ");
        REQUIRE(p);
        p[7] = p[7] == 'a' ? 'b' : 'a';
        CHECK_INTEQ(module_digest_parse(text, strlen(text), &back), 0);
        CHECK_INTEQ(module_digest_parse("", 0, &back), 0);
        free(text);
        module_digest_free(&a);
}

TEST(decide)
{
        struct fixture f;
        struct module_digest now = {0}, first = {0};
        char *why = NULL;

        REQUIRE(load(&f, "{password: s3cret}", MANIFEST, "#!/bin/sh\n", "x=1\n") == 0);
        struct planned *p = &f.mods[0];
        CHECK_INTEQ(module_decide(f.b, p, NULL, 0, false, &first, &why), 1);
        CHECK_STREQ(why, "first run");
        free(why);
        CHECK_INTEQ(module_decide(f.b, p, NULL, 0, true, &now, &why), 1);
        CHECK_STREQ(why, "failed last time");
        free(why);
        module_digest_free(&now);

        char *mark = module_digest_format(&first, "i-1", 1);
        CHECK_INTEQ(module_decide(f.b, p, mark, strlen(mark), false, &now, &why), 0);
        CHECK_STREQ(why, "unchanged");
        CHECK_STREQ(now.salt, first.salt);
        free(why);
        module_digest_free(&now);
        CHECK_INTEQ(module_decide(f.b, p, mark, strlen(mark), true, &now, &why), 1);
        CHECK_STREQ(why, "failed last time");
        free(why);
        module_digest_free(&now);
        const char *old = "i-1 1700000000000\n";
        CHECK_INTEQ(module_decide(f.b, p, old, strlen(old), false, &now, &why), 1);
        CHECK(why && strstr(why, "first run with digests"));
        free(why);
        module_digest_free(&now);

        p->m->frequency = FREQ_ONCE;
        CHECK_INTEQ(module_decide(f.b, p, old, strlen(old), false, &now, &why), 0);
        free(why);
        module_digest_free(&now);
        p->m->frequency = FREQ_ALWAYS;
        CHECK_INTEQ(module_decide(f.b, p, mark, strlen(mark), false, &now, &why), 1);
        CHECK_STREQ(why, "frequency: always");
        free(why);
        module_digest_free(&now);
        free(mark);
        module_digest_free(&first);
        unload(&f);
}

/* An input the manifest lists in reprovision: that changed is 2, "requires
 * reprovisioning: NAME", whatever else changed, failed last time or
 * frequency: always; other inputs changing are an ordinary rerun. */
TEST(decide_reprovision)
{
        struct fixture f1, f2, f3;
        struct module_digest now = {0}, first = {0};
        char *why = NULL;
#define REPROV MANIFEST "reprovision: [port]\n"
        REQUIRE(load(&f1, "{password: a, port: 8080}", REPROV, "#!/bin/sh\n", "x=1\n") == 0);
        REQUIRE(load(&f2, "{password: b, port: 9090}", REPROV, "#!/bin/sh\n", "x=1\n") == 0);
        REQUIRE(load(&f3, "{password: b, port: 8080}", REPROV, "#!/bin/sh\n", "x=1\n") == 0);
#undef REPROV
        CHECK_INTEQ(module_decide(f1.b, &f1.mods[0], NULL, 0, false, &first, &why), 1);
        free(why);
        char *mark = module_digest_format(&first, "i-1", 1);
        CHECK_INTEQ(module_decide(f2.b, &f2.mods[0], mark, strlen(mark), false, &now, &why), 2);
        CHECK_STREQ(why, "requires reprovisioning: port");
        free(why);
        module_digest_free(&now);
        CHECK_INTEQ(module_decide(f2.b, &f2.mods[0], mark, strlen(mark), true, &now, &why), 2);
        free(why);
        module_digest_free(&now);
        f2.mods[0].m->frequency = FREQ_ALWAYS;
        CHECK_INTEQ(module_decide(f2.b, &f2.mods[0], mark, strlen(mark), false, &now, &why), 2);
        free(why);
        module_digest_free(&now);
        CHECK_INTEQ(module_decide(f3.b, &f3.mods[0], mark, strlen(mark), false, &now, &why), 1);
        CHECK_STREQ(why, "inputs changed: password");
        free(why);
        module_digest_free(&now);
        free(mark);
        module_digest_free(&first);
        unload(&f1);
        unload(&f2);
        unload(&f3);
}

/* A watched file the bundle does not ship is no part of the digest (a
 * stack module watches what any site may render for it); one that comes
 * or goes is a change, named. */
TEST(watches_not_shipped_are_left_out)
{
        struct fixture f;
        struct module_digest now = {0}, old = {0};
        REQUIRE(load(&f, "{password: x}",
                     "id: web\nname: Web\nversion: '1'\nwatches: [/etc/other.conf, /etc/web.conf]\n"
                     "inputs: [{name: password, type: password}]\n",
                     "#!/bin/sh\n", "x\n") == 0);
        REQUIRE(module_digest_compute(f.b, &f.mods[0], salt, &now) == 0);
        CHECK_INTEQ(now.n_watches, 1);
        CHECK_STREQ(now.watches[0].name, "/etc/web.conf");
        /* The same parts and one more watched file: it went away. */
        char *mark = module_digest_format(&now, "i-1", 1);
        REQUIRE(module_digest_parse(mark, strlen(mark), &old) == 1);
        old.watches = xrealloc(old.watches, 2 * sizeof(*old.watches));
        old.watches[1].name = xstrdup("/etc/other.conf");
        memcpy(old.watches[1].hash, now.watches[0].hash, 65);
        old.n_watches = 2;
        memset(old.digest, 'f', 64);
        char *why = module_digest_changes(&old, &now);
        CHECK_STREQ(why, "watched file changed: /etc/other.conf");
        free(why);
        why = module_digest_changes(&now, &old);
        CHECK_STREQ(why, "watched file changed: /etc/other.conf");
        free(why);
        free(mark);
        module_digest_free(&old);
        module_digest_free(&now);
        unload(&f);
}

/* bundle.yaml's day-2 fields: the diagnostics of head (with one files/f
 * member listed), or "" when it parses. */
static char *bundle_errors(const char *head, long long *ret_serial)
{
        struct member_list l = {0};
        struct diags d = {0};
        struct bundle *b = NULL;
        char h[65];
        sha256_hex("x", 1, h);
        char *y = strprintf("version: 1\nname: t\n%schecksums: {files/f: \"%s\"}\n", head, h);
        member_list_add(&l, "files/f", "x", 1, 0644);
        member_list_add(&l, BUNDLE_YAML, y, strlen(y), 0644);
        free(y);
        struct buf out = {0};
        if (bundle_parse(&l, NULL, &b, &d) < 0)
                for (size_t i = 0; i < d.n; i++) {
                        char *m = diag_format(&d.v[i]);
                        buf_printf(&out, "%s%s", i ? "\n" : "", m);
                        free(m);
                }
        else if (ret_serial)
                *ret_serial = b->serial;
        bundle_free(b);
        diags_free(&d);
        return out.data ? buf_steal(&out) : strdup("");
}

TEST(bundle_serial)
{
        long long serial = -2;
        char *e = bundle_errors("serial: 0\n", &serial);
        CHECK_STREQ(e, "");
        CHECK(serial == 0);
        free(e);
        e = bundle_errors("", &serial);
        CHECK(serial == -1);
        free(e);
        e = bundle_errors("serial: 9223372036854775807\n", &serial);
        CHECK_STREQ(e, "");
        free(e);
        const char *bad[] = {"serial: -1\n",
                             "serial: \"3\"\n",
                             "serial: 1.5\n",
                             "serial: [1]\n",
                             "serial: 99999999999999999999\n",
                             "serial: x\n"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                e = bundle_errors(bad[i], NULL);
                CHECK(startswith(e,
                                 "bundle.yaml:3:9: 'serial' must be a non-negative whole number"));
                free(e);
        }
}

TEST(bundle_files_state)
{
        char *e = bundle_errors("files:\n  - {path: /etc/a, state: absent}\n"
                                "  - {path: /etc/b, source: files/f, state: present}\n",
                                NULL);
        CHECK_STREQ(e, "");
        free(e);
        e = bundle_errors("files:\n  - {path: /etc/a, state: gone}\n", NULL);
        CHECK_STREQ(e, "bundle.yaml:4:27: 'state' must be present or absent, not \"gone\"\n"
                       "bundle.yaml:4:5: files entry: missing 'source'");
        free(e);
        e = bundle_errors("files:\n  - {path: /etc/a, state: absent, source: files/f}\n", NULL);
        CHECK_STREQ(e, "bundle.yaml:4:43: a files entry with state: absent takes only 'path'");
        free(e);
        e = bundle_errors("files:\n  - {path: /etc/a, source: files/f}\n"
                          "  - {path: /etc/a, state: absent}\n",
                          NULL);
        CHECK_STREQ(e, "bundle.yaml:5:12: '/etc/a' is listed twice in files");
        free(e);
}

TAP_MAIN
