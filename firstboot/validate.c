/* firstboot validate: checks a bundle directory, a bundle archive or text,
 * a user-data file, a module directory or its manifest, and says exactly
 * where each problem is (file:line:column), like `ntpd -n`. */
#include "bundle.h"
#include "commands.h"
#include "fs.h"
#include "log.h"
#include "manifest.h"
#include "prepare.h"

#include <errno.h>
#include <getopt.h>

static int validate_bundle(struct member_list *members, const char *label, const char *modules_dir,
                           const char *keys_dir, struct diags *d)
{
        _cleanup_bundle_ struct bundle *b = NULL;
        struct planned *mods = NULL;
        size_t n = 0;
        int r;

        r = bundle_parse(members, label, &b, d);
        if (r < 0)
                return r;
        if (keys_dir) {
                r = bundle_verify_signature(b, keys_dir, true, d);
                if (r < 0)
                        return r;
        }
        struct prepare_options o = {.modules_dir = modules_dir};
        r = prepare_modules(b, &o, &mods, &n, d);
        if (r < 0)
                return r;
        printf("%s: ok: bundle '%s', %zu module%s, %zu file%s%s%s\n", label, b->name, n,
               n == 1 ? "" : "s", b->n_files, b->n_files == 1 ? "" : "s",
               b->signed_by ? ", signed by " : "", b->signed_by ? b->signed_by : "");
        if (n) {
                printf("order:");
                for (size_t i = 0; i < n; i++)
                        printf(" %s", mods[i].bm->id);
                printf("\n");
        }
        planned_free(mods, n);
        return 0;
}

/* A module: its manifest, and the install script it names next to it. */
static int validate_module(const char *manifest, struct diags *d)
{
        _cleanup_manifest_ struct manifest *m = NULL;
        _cleanup_free_ char *dir = xstrdup(manifest), *script = NULL;
        char *slash = strrchr(dir, '/');
        int r;

        r = manifest_load(manifest, &m, d);
        if (r < 0)
                return r;
        if (slash)
                slash[1] = '\0';
        script = strprintf("%s%s", slash ? dir : "", m->install_script);
        if (access(script, R_OK) < 0) {
                r = -errno;
                diags_add(d, manifest, 0, 0, "module '%s': its install script %s: %s", m->id,
                          script, strerror(-r));
                return r;
        }
        printf("%s: ok: module '%s' %s, %zu input%s\n", manifest, m->id, m->version, m->n_inputs,
               m->n_inputs == 1 ? "" : "s");
        if (m->n_os) {
                _cleanup_free_ char *os = manifest_os_describe(m->os, m->n_os);
                printf("os: %s\n", os);
                for (size_t i = 1; m->os_min_first_only && i < m->n_os; i++)
                        printf("note: %s has no min_version: a single min_version (%s) is the "
                               "first family's; write a mapping like {%s: \"%s\", %s: ...} "
                               "to give each family its own\n",
                               m->os[i].family, m->os[0].min_version, m->os[0].family,
                               m->os[0].min_version, m->os[i].family);
        }
        return 0;
}

int cmd_validate(int argc, char **argv)
{
        static const struct option opts[] = {
                {"modules-dir", required_argument, NULL, 'm'},
                {"keys", required_argument, NULL, 'k'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *modules_dir = "/usr/lib/firstboot/modules", *keys = NULL, *path;
        struct diags d = {0};
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'm':
                        modules_dir = optarg;
                        break;
                case 'k':
                        keys = optarg;
                        break;
                case 'h':
                        printf("Usage: firstboot validate [--modules-dir DIR] [--keys DIR] PATH\n\n"
                               "PATH is a bundle directory, a bundle archive or text, a user-data\n"
                               "file, a module directory or its manifest. Problems are printed as\n"
                               "file:line:column: message. With --keys the bundle must be\n"
                               "signed by one of the *.pub keys in DIR.\n");
                        return 0;
                default:
                        return 2;
                }
        }
        if (optind + 1 != argc) {
                fprintf(stderr, "Usage: firstboot validate [--modules-dir DIR] PATH\n");
                return 2;
        }
        path = argv[optind];

        _cleanup_free_ char *dir_bundle = strprintf("%s/%s", path, BUNDLE_YAML);
        _cleanup_free_ char *dir_manifest = strprintf("%s/%s", path, MANIFEST_FILE);
        if (is_dir(path) && !path_exists(dir_bundle) && path_exists(dir_manifest))
                r = validate_module(dir_manifest, &d); /* a module directory */
        else if (is_dir(path)) {
                struct member_list m = {0};
                r = bundle_members_from_dir(path, &m, &d);
                if (r >= 0)
                        r = validate_bundle(&m, path, modules_dir, keys, &d);
        } else if (endswith(path, "manifest.yml") || endswith(path, "manifest.yaml"))
                r = validate_module(path, &d);
        else {
                _cleanup_free_ char *data = NULL;
                size_t len;
                enum userdata_kind kind;
                struct member_list m = {0};
                r = read_file(path, BUNDLE_MAX_TOTAL, &data, &len);
                if (r < 0)
                        diags_add(&d, path, 0, 0, "cannot read: %s", strerror(-r));
                if (r >= 0)
                        r = userdata_decode(path, data, len, BUNDLE_MAX_TOTAL, &kind, &m, &d);
                if (r >= 0)
                        r = validate_bundle(&m, path, modules_dir, keys, &d);
        }
        diags_print(&d, stderr);
        diags_free(&d);
        return r < 0 ? 1 : 0;
}
