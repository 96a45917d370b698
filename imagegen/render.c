#include "render.h"

#include "bundle.h"
#include "crypto.h"
#include "fs.h"
#include "pki.h"
#include "template.h"
#include "util.h"
#include "yaml.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SERVER_CERT_DAYS 825

/* The member a file on the server travels as: files/<path>. */
static char *member_for(const char *path)
{
        return strprintf("files%s", path);
}

static struct node *file_entry(const char *path, const char *member, unsigned mode,
                               const char *owner)
{
        struct node *f = node_new(NODE_MAP);
        char m[8];
        snprintf(m, sizeof(m), "%04o", mode & 07777);
        node_set_str(f, "path", path);
        node_set_str(f, "source", member);
        node_set_str(f, "mode", m);
        if (owner)
                node_set_str(f, "owner", owner);
        return f;
}

static int add_site_files(const struct site *s, const struct node *ctx, struct member_list *l,
                          struct node *files, struct diags *d)
{
        size_t before = d->n;

        for (size_t i = 0; i < s->n_files; i++) {
                const struct site_file *sf = &s->files[i];
                _cleanup_free_ char *text = NULL, *out = NULL;
                size_t len;
                int r = read_file(sf->source, 16 * 1024 * 1024, &text, &len);
                if (r < 0) {
                        diags_at(d, sf->where, "cannot read %s: %s", sf->source, strerror(-r));
                        continue;
                }
                if (sf->is_template) {
                        if (tmpl_render(sf->source, text, len, ctx, sf->format, &out, d) < 0)
                                continue;
                        free(text);
                        text = TAKE_PTR(out);
                        len = strlen(text);
                }
                _cleanup_free_ char *member = member_for(sf->path);
                member_list_add(l, member, text, len, sf->mode);
                node_append(files, NULL, file_entry(sf->path, member, sf->mode, sf->owner));
        }
        return d->n > before ? -EBADMSG : 0;
}

/* Self-signed TLS: the site's CA and server certificate, issued once and
 * reused, shipped under SITE_TLS_DIR. */
static int add_tls(const struct site *s, const struct render_options *o, struct member_list *l,
                   struct node *files, struct diags *d)
{
        static const struct {
                const char *name;
                unsigned mode;
                bool ca; /* in the CA's dir */
        } ship[] = {
                {"server.key", 0600, false},
                {"server.crt", 0644, false},
                {"fullchain.pem", 0644, false},
                {"ca.crt", 0644, true},
        };
        /* A fleet's hosts share the site's CA: one certificate for clients
         * to trust. */
        _cleanup_free_ char *ca_dir = strprintf("%s/pki", o->state_dir);
        _cleanup_free_ char *dir =
                s->hosts ? strprintf("%s/%s", ca_dir, s->hostname) : xstrdup(ca_dir);
        _cleanup_free_ char *err = NULL;
        struct pki_result res = {0};

        if (s->tls_mode != TLS_SELF_SIGNED)
                return 0;
        if (pki_ensure(ca_dir, dir, (const char *const *)s->tls_names,
                       (const char *const *)s->tls_ips, SERVER_CERT_DAYS, &res, &err) < 0) {
                diags_at(d, node_get(s->doc, "tls") ? node_get(s->doc, "tls") : s->doc, "TLS: %s",
                         err ? err : "cannot issue the certificate");
                return -EBADMSG;
        }
        if (!o->quiet)
                fprintf(stderr, "imagegen: TLS: %s\n", pki_result_describe(&res));
        for (size_t i = 0; i < ARRAY_SIZE(ship); i++) {
                _cleanup_free_ char *src =
                        strprintf("%s/%s", ship[i].ca ? ca_dir : dir, ship[i].name);
                _cleanup_free_ char *path = strprintf("%s/%s", SITE_TLS_DIR, ship[i].name);
                _cleanup_free_ char *member = member_for(path), *data = NULL;
                size_t len;
                int r = read_file(src, 1024 * 1024, &data, &len);
                if (r < 0) {
                        diags_add(d, src, 0, 0, "cannot read: %s", strerror(-r));
                        return -EBADMSG;
                }
                member_list_add(l, member, data, len, ship[i].mode);
                node_append(files, NULL, file_entry(path, member, ship[i].mode, NULL));
        }
        return 0;
}

/* jobs: the agent's firstboot.conf.d drop-in (it may hold the Redis
 * password) and the shared secret, both 0600 root's. */
static int add_jobs(const struct site *s, struct member_list *l, struct node *files,
                    struct diags *d)
{
        const struct {
                const char *path, *data;
        } ship[] = {{SITE_JOBS_CONF, s->jobs_conf}, {SITE_JOBS_SECRET, s->jobs_secret}};

        if (!s->jobs_conf)
                return 0;
        if (!s->jobs_secret) {
                diags_at(d, node_get(s->doc, "jobs"), "jobs: no secret (no state to keep one in)");
                return -EBADMSG;
        }
        for (size_t i = 0; i < ARRAY_SIZE(ship); i++) {
                _cleanup_free_ char *member = member_for(ship[i].path);
                _cleanup_free_ char *text =
                        strprintf("%s%s", ship[i].data, endswith(ship[i].data, "\n") ? "" : "\n");
                member_list_add(l, member, text, strlen(text), 0600);
                node_append(files, NULL, file_entry(ship[i].path, member, 0600, "root:root"));
                explicit_bzero(text, strlen(text));
        }
        return 0;
}

/* The modules' shared helpers (MODULES_LIB_DIR beside the modules), as
 * modules/_lib/ in the bundle, so a shipped module finds them beside its
 * own folder. A modules directory without them ships none; a shipped
 * module that sources them is then an error here rather than at boot. */
static int add_module_lib(const struct site *s, struct member_list *l, const char *needed_by,
                          struct diags *d)
{
        const struct site_module *sm = &s->modules[0];
        size_t n = strlen(sm->dir) - strlen(sm->id); /* "<modules_dir>/" */
        _cleanup_free_ char *dir = strprintf("%.*s%s", (int)n, sm->dir, MODULES_LIB_DIR);
        struct member_list ml = {0};

        if (!is_dir(dir)) {
                if (!needed_by)
                        return 0;
                diags_add(d, needed_by, 0, 0, "it sources %s/, which is missing: %s",
                          MODULES_LIB_DIR, dir);
                return -ENOENT;
        }
        if (bundle_members_from_dir(dir, &ml, d) < 0) {
                member_list_free(&ml);
                return -EBADMSG;
        }
        for (size_t k = 0; k < ml.n; k++) {
                _cleanup_free_ char *p = strprintf("modules/%s/%s", MODULES_LIB_DIR, ml.v[k].path);
                member_list_add(l, p, ml.v[k].data, ml.v[k].size, ml.v[k].mode);
        }
        member_list_free(&ml);
        return 0;
}

static int add_modules(const struct site *s, struct member_list *l, struct node *mods,
                       struct diags *d)
{
        _cleanup_free_ char *needs_lib = NULL;

        for (size_t i = 0; i < s->n_modules; i++) {
                const struct site_module *sm = &s->modules[i];
                struct node *e = node_new(NODE_MAP);
                node_set_str(e, "id", sm->id);
                if (sm->values.n > 0) {
                        struct node *in = node_new(NODE_MAP);
                        for (size_t k = 0; k < sm->values.n; k++) {
                                const struct input_value *v = &sm->values.v[k];
                                const struct manifest_input *mi =
                                        manifest_find_input(sm->m, v->name);
                                enum scalar_type t = SCALAR_STR;
                                if (mi && (mi->type == INPUT_INTEGER || mi->type == INPUT_PORT))
                                        t = SCALAR_INT;
                                else if (mi && mi->type == INPUT_BOOLEAN)
                                        t = SCALAR_BOOL;
                                node_set(in, v->name, node_new_scalar(t, v->value));
                        }
                        node_set(e, "inputs", in);
                }
                node_append(mods, NULL, e);
                if (!s->ship_modules)
                        continue;
                struct member_list ml = {0};
                if (bundle_members_from_dir(sm->dir, &ml, d) < 0) {
                        member_list_free(&ml);
                        return -EBADMSG;
                }
                for (size_t k = 0; k < ml.n; k++) {
                        _cleanup_free_ char *p = strprintf("modules/%s/%s", sm->id, ml.v[k].path);
                        if (!needs_lib && streq(ml.v[k].path, sm->m->install_script) &&
                            memmem(ml.v[k].data, ml.v[k].size, "/" MODULES_LIB_DIR "/",
                                   strlen("/" MODULES_LIB_DIR "/")))
                                needs_lib = strprintf("%s/%s", sm->dir, ml.v[k].path);
                        member_list_add(l, p, ml.v[k].data, ml.v[k].size, ml.v[k].mode);
                }
                member_list_free(&ml);
        }
        if (s->ship_modules && s->n_modules > 0)
                return add_module_lib(s, l, needs_lib, d);
        return 0;
}

char *render_serial_key(const struct site *s)
{
        return strprintf("%sbundle", s->secret_pfx ? s->secret_pfx : "");
}

int render_bundle(const struct site *s, const struct render_options *o, struct member_list *ret,
                  struct diags *d)
{
        _cleanup_node_ struct node *ctx = site_context(s);
        _cleanup_node_ struct node *doc = node_new(NODE_MAP);
        struct node *files = node_new(NODE_SEQ), *mods = node_new(NODE_SEQ);
        struct member_list l = {0};
        int r;

        node_set_int(doc, "version", 1);
        node_set_str(doc, "name", s->name);
        node_set_str(doc, "hostname", s->hostname);
        if (s->controller_url) {
                struct node *ph = node_new(NODE_MAP);
                node_set_str(ph, "url", s->controller_url);
                node_set_str(ph, "token", s->controller_token);
                node_set(doc, "phone_home", ph);
        }
        r = add_site_files(s, ctx, &l, files, d);
        if (r >= 0)
                r = add_tls(s, o, &l, files, d);
        if (r >= 0)
                r = add_jobs(s, &l, files, d);
        if (r >= 0)
                r = add_modules(s, &l, mods, d);
        node_set(doc, "files", files);
        node_set(doc, "modules", mods);
        if (r < 0) {
                member_list_free(&l);
                return r;
        }

        struct node *sums = node_new(NODE_MAP);
        for (size_t i = 0; i < l.n; i++) {
                char hex[65];
                sha256_hex(l.v[i].data, l.v[i].size, hex);
                node_set_str(sums, l.v[i].path, hex);
        }
        node_set(doc, "checksums", sums);
        _cleanup_free_ char *yaml = NULL;
        r = yaml_format(doc, &yaml);
        /* The serial: the same as last time when nothing else changed
         * (bundle.yaml covers every member by its sha256), else the next. */
        if (r >= 0 && o->state) {
                char digest[65];
                long long serial = 0;
                _cleanup_free_ char *key = render_serial_key(s);
                sha256_hex(yaml, strlen(yaml), digest);
                r = secrets_serial(o->state, key, digest, &serial);
                if (r == -EBADMSG)
                        diags_add(d, secrets_path(o->state), 0, 0,
                                  "serials: the entry \"%s\" (or the object) is not one imagegen "
                                  "wrote ({\"serial\": N, \"sha256\": \"...\"}): the bundle's "
                                  "serial cannot be kept; restore the file, or set the entry's "
                                  "serial to the highest one shipped for %s",
                                  key, s->hostname);
                else if (r < 0)
                        diags_add(d, secrets_path(o->state), 0, 0,
                                  "cannot keep the bundle's serial for %s: %s", s->hostname,
                                  strerror(-r));
                if (r < 0) {
                        member_list_free(&l);
                        return -EBADMSG;
                }
                node_set_int(doc, "serial", serial);
                free(yaml);
                yaml = NULL;
                r = yaml_format(doc, &yaml);
        }
        if (r < 0) {
                member_list_free(&l);
                return r;
        }
        /* The site's file name only: the same site renders the same bytes
         * wherever it is checked out. */
        const char *base = strrchr(s->path, '/') ? strrchr(s->path, '/') + 1 : s->path;
        _cleanup_free_ char *text = strprintf("# Rendered by imagegen from %s; every member of "
                                              "the bundle is listed with its sha256.\n%s",
                                              base, yaml);
        member_list_add(&l, BUNDLE_YAML, text, strlen(text), 0600);

        if (s->signing_key) {
                _cleanup_free_ char *pem = NULL;
                unsigned char sig[64];
                size_t pem_len;
                r = read_file(s->signing_key, 64 * 1024, &pem, &pem_len);
                if (r >= 0)
                        r = ed25519_sign(pem, pem_len, text, strlen(text), sig);
                if (r < 0) {
                        diags_at(d, node_get(s->doc, "signing_key"), "cannot sign with %s: %s",
                                 s->signing_key,
                                 r == -EINVAL ? "not an Ed25519 private key (PEM)" : strerror(-r));
                        member_list_free(&l);
                        return -EBADMSG;
                }
                member_list_add(&l, BUNDLE_SIG, sig, sizeof(sig), 0600);
        }

        /* What the agent will do with it. */
        struct member_list check = {0};
        for (size_t i = 0; i < l.n; i++)
                member_list_add(&check, l.v[i].path, l.v[i].data, l.v[i].size, l.v[i].mode);
        struct bundle *b = NULL;
        r = bundle_parse(&check, "rendered bundle", &b, d);
        bundle_free(b);
        member_list_free(&check);
        if (r < 0) {
                member_list_free(&l);
                return r;
        }
        *ret = l;
        return 0;
}

/* The regular files under the directory fd (which is closed here), or -1
 * when the tree holds what write_bundle_dir() never writes: a symlink or
 * other special entry, an empty directory, nesting past depth. */
static long count_files(int fd, int depth)
{
        DIR *d = fdopendir(fd);
        struct dirent *de;
        long n = 0, entries = 0;

        if (!d) {
                close(fd);
                return -1;
        }
        while (n >= 0 && (de = readdir(d))) {
                unsigned char type = de->d_type;
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                entries++;
                if (type == DT_UNKNOWN)
                        type = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0
                                       ? DT_UNKNOWN
                               : S_ISREG(st.st_mode) ? DT_REG
                               : S_ISDIR(st.st_mode) ? DT_DIR
                                                     : DT_UNKNOWN;
                if (type == DT_REG)
                        n++;
                else if (type == DT_DIR && depth > 0) {
                        int sub = openat(dirfd(d), de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        long k = sub < 0 ? -1 : count_files(sub, depth - 1);
                        n = k < 0 ? -1 : n + k;
                } else
                        n = -1;
        }
        closedir(d);
        return entries == 0 ? -1 : n;
}

/* Whether dir already holds exactly the members: the same files, bytes and
 * modes, and nothing else. */
static bool bundle_dir_is(const char *dir, const struct member_list *members)
{
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0 || count_files(fd, 64) != (long)members->n)
                return false;
        for (size_t i = 0; i < members->n; i++) {
                const struct archive_member *m = &members->v[i];
                _cleanup_free_ char *p = strprintf("%s/%s", dir, m->path);

                if (!file_has_contents(p, m->data, m->size, m->mode, (uid_t)-1, (gid_t)-1))
                        return false;
        }
        return true;
}

int write_bundle_dir(const struct member_list *members, const char *dir, char **err)
{
        _cleanup_free_ char *copy = xstrdup(dir);
        _cleanup_free_ char *parent = xstrdup(dirname(copy));
        _cleanup_free_ char *tmp = strprintf("%s.imagegen-new.XXXXXX", dir);
        _cleanup_free_ char *old = strprintf("%s.imagegen-old.%d", dir, (int)getpid());
        int r = 0;

        if (bundle_dir_is(dir, members))
                return 0;
        if (mkdir_p(parent, 0755) < 0 || !mkdtemp(tmp)) {
                *err = strprintf("cannot create the output directory next to %s: %s", dir,
                                 strerror(errno));
                return -errno;
        }
        for (size_t i = 0; r >= 0 && i < members->n; i++) {
                const struct archive_member *m = &members->v[i];
                _cleanup_free_ char *p = strprintf("%s/%s", tmp, m->path);
                r = mkdir_parents(p, 0700);
                if (r >= 0)
                        r = write_file_atomic_full(p, m->data, m->size, m->mode, (uid_t)-1,
                                                   (gid_t)-1, WRITE_IN_PLACE | WRITE_NOSYNC);
                if (r < 0)
                        *err = strprintf("cannot write %s: %s", p, strerror(-r));
        }
        if (r >= 0 && is_dir(dir) && rename(dir, old) < 0) {
                r = -errno;
                *err = strprintf("cannot replace %s: %s", dir, strerror(errno));
        }
        if (r >= 0 && rename(tmp, dir) < 0) {
                r = -errno;
                *err = strprintf("cannot rename %s to %s: %s", tmp, dir, strerror(errno));
                rename(old, dir);
        }
        if (r < 0) {
                rm_rf(tmp);
                return r;
        }
        rm_rf(old);
        return 0;
}
