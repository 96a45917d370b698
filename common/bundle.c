#include "bundle.h"
#include "crypto.h"
#include "fs.h"
#include "yaml.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

/* -------- user-data recognition -------- */

static bool is_gzip(const unsigned char *p, size_t len)
{
        return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

/* A tar without compression: "ustar" at offset 257. */
static bool is_tar(const unsigned char *p, size_t len)
{
        return len >= 512 && memcmp(p + 257, "ustar", 5) == 0;
}

/* Describes unrecognized user-data for the error message. */
static char *describe(const unsigned char *p, size_t len)
{
        char first[41];
        size_t n = 0;

        if (len == 0)
                return xstrdup("it is empty");
        if (len >= 13 && memcmp(p, "#cloud-config", 13) == 0)
                return xstrdup("it is cloud-config (cloud-init's format), not a firstboot bundle");
        if (len >= 4 && memcmp(p, "PK\3\4", 4) == 0)
                return xstrdup("it is a zip archive; a bundle is a gzip'd tar");
        if (len >= 3 && memcmp(p, "BZh", 3) == 0)
                return xstrdup("it is bzip2 data; a bundle is a gzip'd tar");
        if (len >= 6 && memcmp(p,
                               "\xfd"
                               "7zXZ",
                               5) == 0)
                return xstrdup("it is xz data; a bundle is a gzip'd tar");
        for (size_t i = 0; i < len && n < sizeof(first) - 1 && p[i] != '\n'; i++)
                first[n++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
        first[n] = '\0';
        return strprintf("its first line is \"%s\"", first);
}

static const char *const script_manifest = "id: " USER_SCRIPT_MODULE "\n"
                                           "name: user-data script\n"
                                           "version: \"1\"\n"
                                           "description: The plain script given as user-data.\n"
                                           "timeout_seconds: 3600\n"
                                           "frequency: once-per-instance\n";

/* A plain script becomes a bundle with one module, so everything after
 * decoding deals with bundles only. */
static int script_bundle(const void *data, size_t len, struct member_list *ret)
{
        struct member_list m = {0};
        char h1[65], h2[65];
        struct buf y = {0};
        int r;

        sha256_hex(script_manifest, strlen(script_manifest), h1);
        sha256_hex(data, len, h2);
        buf_printf(&y,
                   "version: 1\nname: user-data-script\nmodules:\n  - id: " USER_SCRIPT_MODULE
                   "\nchecksums:\n  modules/" USER_SCRIPT_MODULE "/manifest.yml: \"%s\"\n"
                   "  modules/" USER_SCRIPT_MODULE "/install.sh: \"%s\"\n",
                   h1, h2);
        r = member_list_add(&m, BUNDLE_YAML, y.data, y.len, 0600);
        if (r >= 0)
                r = member_list_add(&m, "modules/" USER_SCRIPT_MODULE "/manifest.yml",
                                    script_manifest, strlen(script_manifest), 0600);
        if (r >= 0)
                r = member_list_add(&m, "modules/" USER_SCRIPT_MODULE "/install.sh", data, len,
                                    0700);
        buf_free(&y);
        if (r < 0) {
                member_list_free(&m);
                return r;
        }
        *ret = m;
        return 0;
}

static int read_tar(const char *origin, const void *data, size_t len, size_t max_size,
                    struct member_list *ret, struct diags *d)
{
        _cleanup_free_ char *err = NULL;
        int r = tar_read(data, len, max_size, BUNDLE_MAX_MEMBERS, ret, &err);
        if (r < 0)
                diags_add(d, origin, 0, 0, "%s", err ? err : strerror(-r));
        return r;
}

int userdata_decode(const char *origin, const void *data, size_t len, size_t max_size,
                    enum userdata_kind *ret_kind, struct member_list *ret, struct diags *d)
{
        const unsigned char *p = data;
        size_t ml = strlen(BUNDLE_TEXT_MAGIC);
        int r;

        if (len > max_size) {
                diags_add(d, origin, 0, 0, "%zu bytes, over the limit of %zu bytes", len, max_size);
                return -EFBIG;
        }
        if (is_gzip(p, len)) {
                /* A "#!" script gzip'd to fit a provider's limit, as
                 * cloud-init reads it. */
                unsigned char head[2];
                if (gzip_peek(p, len, head, 2) == 2 && head[0] == '#' && head[1] == '!') {
                        _cleanup_free_ unsigned char *plain = NULL;
                        _cleanup_free_ char *err = NULL;
                        size_t plain_len = 0;
                        r = gzip_inflate(p, len, max_size, &plain, &plain_len, &err);
                        if (r < 0) {
                                diags_add(d, origin, 0, 0, "%s", err ? err : strerror(-r));
                                return r;
                        }
                        r = script_bundle(plain, plain_len, ret);
                        if (r >= 0)
                                *ret_kind = USERDATA_SCRIPT;
                        return r;
                }
        }
        if (is_gzip(p, len) || is_tar(p, len)) {
                r = read_tar(origin, data, len, max_size, ret, d);
                if (r >= 0)
                        *ret_kind = USERDATA_TAR;
                return r;
        }
        if (len >= ml && memcmp(p, BUNDLE_TEXT_MAGIC, ml) == 0 &&
            (len == ml || p[ml] == '\n' || p[ml] == '\r')) {
                _cleanup_free_ unsigned char *raw = NULL;
                size_t raw_len, bad = 0;
                r = base64_decode((const char *)p + ml, len - ml, &raw, &raw_len, &bad);
                if (r < 0) {
                        /* Point at the line and column of the bad byte. */
                        unsigned line = 1, col = 1;
                        for (size_t i = 0; i < ml + bad && i < len; i++) {
                                if (p[i] == '\n') {
                                        line++;
                                        col = 1;
                                } else
                                        col++;
                        }
                        diags_add(d, origin, line, col, "invalid base64 in the bundle text");
                        return -EBADMSG;
                }
                if (!is_gzip(raw, raw_len)) {
                        diags_add(d, origin, 2, 1,
                                  "the base64 text does not decode to a gzip'd tar");
                        return -EBADMSG;
                }
                r = read_tar(origin, raw, raw_len, max_size, ret, d);
                if (r >= 0)
                        *ret_kind = USERDATA_TEXT;
                return r;
        }
        if (len >= 2 && p[0] == '#' && p[1] == '!') {
                r = script_bundle(data, len, ret);
                if (r >= 0)
                        *ret_kind = USERDATA_SCRIPT;
                return r;
        }
        _cleanup_free_ char *what = describe(p, len);
        diags_add(d, origin, 0, 0,
                  "not firstboot user-data: %s (expected a gzip'd tar bundle, a \"%s\" text "
                  "bundle, or a \"#!\" script, gzip'd or not)",
                  what, BUNDLE_TEXT_MAGIC);
        return -EMEDIUMTYPE;
}

/* -------- bundle directories -------- */

static int add_dir(const char *top, const char *rel, struct member_list *m, struct diags *d)
{
        _cleanup_free_ char *path = rel ? strprintf("%s/%s", top, rel) : xstrdup(top);
        DIR *dir = opendir(path);
        struct dirent *de;
        int r = 0;

        if (!dir) {
                diags_add(d, path, 0, 0, "cannot open: %s", strerror(errno));
                return -errno;
        }
        while ((de = readdir(dir)) && r >= 0) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *sub =
                        rel ? strprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
                _cleanup_free_ char *full = strprintf("%s/%s", top, sub);
                struct stat st;
                if (lstat(full, &st) < 0) {
                        r = -errno;
                        diags_add(d, full, 0, 0, "cannot stat: %s", strerror(errno));
                } else if (S_ISDIR(st.st_mode))
                        r = add_dir(top, sub, m, d);
                else if (S_ISREG(st.st_mode)) {
                        _cleanup_free_ char *data = NULL;
                        size_t size;
                        r = read_file(full, BUNDLE_MAX_TOTAL, &data, &size);
                        if (r < 0)
                                diags_add(d, full, 0, 0, "cannot read: %s", strerror(-r));
                        else
                                r = member_list_add(m, sub, data, size, st.st_mode & 0777);
                } else {
                        diags_add(d, full, 0, 0,
                                  "not a regular file or directory (links and devices are "
                                  "refused in bundles)");
                        r = -EBADMSG;
                }
        }
        closedir(dir);
        return r;
}

int bundle_members_from_dir(const char *dir, struct member_list *ret, struct diags *d)
{
        struct member_list m = {0};
        int r = add_dir(dir, NULL, &m, d);
        if (r < 0) {
                member_list_free(&m);
                return r;
        }
        *ret = m;
        return 0;
}

/* -------- bundle.yaml -------- */

static const char *const top_keys[] = {"version",    "name",  "hostname", "ready_marker",
                                       "phone_home", "files", "modules",  "checksums",
                                       "serial",     NULL};
static const char *const file_keys[] = {"path", "source", "mode", "owner", "state", NULL};
static const char *const module_keys[] = {"id", "inputs", NULL};
static const char *const phone_keys[] = {"url", "token", "progress", NULL};

static bool absolute_clean(const char *p)
{
        return p[0] == '/' && path_is_safe_relative(p + 1);
}

/* One side of an owner: a decimal id (not -1, which chown() reads as
 * "unchanged"), or a name as shadow's useradd/groupadd accept it
 * (shadow-maint/shadow, lib/chkname.c: [A-Za-z0-9_.][A-Za-z0-9_.-]*, an
 * optional final '$', not "." or "..", not all digits), at most 32
 * characters (Debian builds shadow with group names of at most 32; a user
 * name that long is rare). Why not, or NULL when it is valid. */
static const char *owner_part_error(const char *s, size_t n)
{
        static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789_.-";
        size_t digits = 0;

        if (n == 0)
                return "is empty";
        while (digits < n && s[digits] >= '0' && s[digits] <= '9')
                digits++;
        if (digits == n) {
                unsigned long long v = 0;
                for (size_t i = 0; i < n && v <= 0xffffffffULL; i++)
                        v = v * 10 + (unsigned)(s[i] - '0');
                return v >= 0xffffffffULL ? "is a number too large for an id" : NULL;
        }
        if (n > 32)
                return "is longer than 32 characters";
        if (s[0] == '-')
                return "starts with '-'";
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                return "is \".\" or \"..\"";
        size_t len = s[n - 1] == '$' ? n - 1 : n;
        for (size_t i = 0; i < len; i++)
                if (!strchr(name_chars, s[i]) || s[i] == '\0')
                        return "has a character other than letters, digits, '_', '.', '-' (and a "
                               "final '$')";
        return NULL;
}

/* "user" or "user:group", each a name or a number (see owner_part_error).
 * Only the spelling: whether they exist is for the system being
 * provisioned to say, when the files are written. */
static void check_owner(struct diags *d, const struct node *where, const char *owner)
{
        const char *colon = strchr(owner, ':');
        size_t ulen = colon ? (size_t)(colon - owner) : strlen(owner);
        const char *why;

        if (colon && strchr(colon + 1, ':')) {
                diags_at(d, where,
                         "'owner' must be \"user\" or \"user:group\", not \"%s\" (more than one "
                         "':')",
                         owner);
                return;
        }
        if ((why = owner_part_error(owner, ulen)))
                diags_at(d, where, "'owner' \"%s\": the user %s", owner, why);
        else if (colon && (why = owner_part_error(colon + 1, strlen(colon + 1))))
                diags_at(d, where, "'owner' \"%s\": the group %s", owner, why);
}

static void parse_files(struct bundle *b, const struct node *files, struct diags *d)
{
        if (!files || !diags_expect_kind(d, files, NODE_SEQ))
                return;
        b->files = xcalloc(files->n_items, sizeof(*b->files));
        for (size_t i = 0; i < files->n_items; i++) {
                const struct node *f = files->items[i];
                if (!diags_expect_kind(d, f, NODE_MAP))
                        continue;
                diags_check_keys(d, f, "a files entry", file_keys);
                const char *state = diags_get_str(d, f, "state", false, "files entry");
                bool absent = state && streq(state, "absent");
                if (state && !absent && !streq(state, "present"))
                        diags_at(d, node_get(f, "state"),
                                 "'state' must be present or absent, not \"%s\"", state);
                const char *path = diags_get_str(d, f, "path", true, "files entry");
                /* A file to remove has nothing to write. */
                const char *source = diags_get_str(d, f, "source", !absent, "files entry");
                const char *mode = diags_get_str(d, f, "mode", false, "files entry");
                const char *owner = diags_get_str(d, f, "owner", false, "files entry");
                unsigned m = 0644;
                if (absent && (source || mode || owner))
                        diags_at(d,
                                 node_get(f, source ? "source"
                                             : mode ? "mode"
                                                    : "owner"),
                                 "a files entry with state: absent takes only 'path'");
                if (path && !absolute_clean(path))
                        diags_at(d, node_get(f, "path"),
                                 "'path' must be an absolute path without '.' or '..' "
                                 "components, not \"%s\"",
                                 path);
                else if (path && bundle_find_file(b, path))
                        diags_at(d, node_get(f, "path"), "'%s' is listed twice in files", path);
                if (absent)
                        source = mode = owner = NULL;
                if (source && !path_is_safe_relative(source))
                        diags_at(d, node_get(f, "source"),
                                 "'source' must be a relative path inside the bundle, not \"%s\"",
                                 source);
                else if (source && !member_list_find(&b->members, source))
                        diags_at(d, node_get(f, "source"),
                                 "'source' names \"%s\", which is not in the bundle", source);
                if (mode && parse_mode(mode, &m) < 0)
                        diags_at(d, node_get(f, "mode"),
                                 "'mode' must be an octal mode like \"0600\", not \"%s\"", mode);
                if (owner)
                        check_owner(d, node_get(f, "owner"), owner);
                b->files[b->n_files++] = (struct bundle_file){
                        .path = strdup_null(path),
                        .source = strdup_null(source),
                        .mode = m,
                        .owner = strdup_null(owner),
                        .absent = absent,
                        .where = f,
                };
        }
}

const struct bundle_file *bundle_find_file(const struct bundle *b, const char *path)
{
        for (size_t i = 0; i < b->n_files; i++)
                if (streq_ptr(b->files[i].path, path))
                        return &b->files[i];
        return NULL;
}

static void parse_modules(struct bundle *b, const struct node *mods, struct diags *d)
{
        if (!mods || !diags_expect_kind(d, mods, NODE_SEQ))
                return;
        b->modules = xcalloc(mods->n_items, sizeof(*b->modules));
        for (size_t i = 0; i < mods->n_items; i++) {
                const struct node *m = mods->items[i];
                if (!diags_expect_kind(d, m, NODE_MAP))
                        continue;
                diags_check_keys(d, m, "a modules entry", module_keys);
                const char *id = diags_get_str(d, m, "id", true, "modules entry");
                const struct node *inputs = node_get(m, "inputs");
                if (inputs && node_is_null(inputs))
                        inputs = NULL;
                if (inputs && !diags_expect_kind(d, inputs, NODE_MAP))
                        inputs = NULL;
                if (!id)
                        continue;
                for (size_t j = 0; j < b->n_modules; j++)
                        if (streq(b->modules[j].id, id))
                                diags_at(d, node_get(m, "id"), "module '%s' is listed twice", id);
                b->modules[b->n_modules++] = (struct bundle_module){
                        .id = xstrdup(id),
                        .inputs = inputs,
                        .where = m,
                };
        }
}

/* Every member but bundle.yaml and its signature is listed with its
 * sha256, and every listed one exists. */
static void check_checksums(struct bundle *b, const struct node *sums, struct diags *d)
{
        const struct node *where = sums ? sums : b->doc;

        if (node_is_null(sums)) /* "checksums:" with nothing to list */
                sums = NULL;
        if (sums && !diags_expect_kind(d, sums, NODE_MAP))
                return;
        for (size_t i = 0; i < b->members.n; i++) {
                const struct archive_member *m = &b->members.v[i];
                if (streq(m->path, BUNDLE_YAML) || streq(m->path, BUNDLE_SIG))
                        continue;
                const char *want = node_get_str(sums, m->path);
                if (!want) {
                        diags_at(d, where,
                                 "member \"%s\" is not listed in checksums (every file of the "
                                 "bundle must be)",
                                 m->path);
                        continue;
                }
                char have[65];
                sha256_hex(m->data, m->size, have);
                if (strcasecmp(have, want) != 0)
                        diags_at(d, node_get(sums, m->path),
                                 "checksum mismatch for \"%s\": the bundle has sha256 %s", m->path,
                                 have);
        }
        for (size_t i = 0; sums && i < sums->n_items; i++) {
                const struct node *s = sums->items[i];
                if (s->kind != NODE_SCALAR || strlen(s->value) != 64 ||
                    strspn(s->value, "0123456789abcdefABCDEF") != 64)
                        diags_at(d, s, "checksum of \"%s\" must be 64 hex digits (sha256)", s->key);
                if (!member_list_find(&b->members, s->key))
                        diags_at(d, s, "checksums lists \"%s\", which is not in the bundle",
                                 s->key);
        }
}

int bundle_parse(struct member_list *members, const char *label, struct bundle **ret,
                 struct diags *d)
{
        struct bundle *b = xcalloc(1, sizeof(*b));
        size_t before = d->n;
        _cleanup_free_ char *file =
                label ? strprintf("%s/%s", label, BUNDLE_YAML) : xstrdup(BUNDLE_YAML);
        const struct archive_member *y;
        long long version;
        int r;

        b->members = *members;
        *members = (struct member_list){0};
        b->label = strdup_null(label);
        y = member_list_find(&b->members, BUNDLE_YAML);
        if (!y) {
                diags_add(d, label, 0, 0, "no %s at the top of the bundle", BUNDLE_YAML);
                bundle_free(b);
                return -EBADMSG;
        }
        r = yaml_parse(file, (const char *)y->data, y->size, &b->doc, d);
        if (r < 0) {
                bundle_free(b);
                return r;
        }
        if (!diags_expect_kind(d, b->doc, NODE_MAP)) {
                bundle_free(b);
                return -EBADMSG;
        }
        b->is_script = member_list_find(&b->members, "modules/" USER_SCRIPT_MODULE "/install.sh") &&
                       streq_ptr(node_get_str(b->doc, "name"), "user-data-script");
        diags_check_keys(d, b->doc, BUNDLE_YAML, top_keys);
        const struct node *v = node_get(b->doc, "version");
        if (!v)
                diags_at(d, b->doc, "missing 'version' (this agent reads version: 1)");
        else if (node_as_int(v, &version) < 0 || version != 1)
                diags_at(d, v, "unsupported bundle version \"%s\" (this agent reads version: 1)",
                         v->value ? v->value : "");
        b->name = strdup_null(diags_get_str(d, b->doc, "name", true, BUNDLE_YAML));
        b->hostname = strdup_null(diags_get_str(d, b->doc, "hostname", false, BUNDLE_YAML));
        if (b->hostname &&
            (strlen(b->hostname) > 63 ||
             strspn(b->hostname, "abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != strlen(b->hostname)))
                diags_at(d, node_get(b->doc, "hostname"),
                         "'hostname' must be letters, digits, '-' and '.', at most 63");
        b->ready_marker = strdup_null(diags_get_str(d, b->doc, "ready_marker", false, BUNDLE_YAML));
        if (b->ready_marker && !absolute_clean(b->ready_marker))
                diags_at(d, node_get(b->doc, "ready_marker"),
                         "'ready_marker' must be an absolute path");
        const struct node *ph = node_get(b->doc, "phone_home");
        if (ph && diags_expect_kind(d, ph, NODE_MAP)) {
                diags_check_keys(d, ph, "phone_home", phone_keys);
                b->phone_url = strdup_null(diags_get_str(d, ph, "url", true, "phone_home"));
                b->phone_token = strdup_null(diags_get_str(d, ph, "token", false, "phone_home"));
                const struct node *pr = node_get(ph, "progress");
                if (pr && node_as_bool(pr, &b->phone_progress) < 0)
                        diags_at(d, pr, "'progress' must be true or false");
                if (b->phone_url && !startswith(b->phone_url, "http://") &&
                    !startswith(b->phone_url, "https://"))
                        diags_at(d, node_get(ph, "url"),
                                 "'url' must start with http:// or https://");
        }
        b->serial = -1;
        const struct node *sn = node_get(b->doc, "serial");
        if (sn && (sn->kind != NODE_SCALAR || node_as_int(sn, &b->serial) < 0 || b->serial < 0)) {
                diags_at(d, sn, "'serial' must be a non-negative whole number, not %s",
                         sn->kind == NODE_SCALAR ? (sn->value ? sn->value : "")
                                                 : node_kind_name(sn));
                b->serial = -1;
        }
        parse_files(b, node_get(b->doc, "files"), d);
        parse_modules(b, node_get(b->doc, "modules"), d);
        check_checksums(b, node_get(b->doc, "checksums"), d);
        for (size_t i = 0; i < b->members.n; i++)
                if (!path_is_safe_relative(b->members.v[i].path))
                        diags_add(d, label, 0, 0, "unsafe member path \"%s\"",
                                  b->members.v[i].path);
        if (d->n > before) {
                bundle_free(b);
                return -EBADMSG;
        }
        *ret = b;
        return 0;
}

int bundle_verify_signature(struct bundle *b, const char *keys_dir, bool required, struct diags *d)
{
        const struct archive_member *y = member_list_find(&b->members, BUNDLE_YAML);
        const struct archive_member *sig = member_list_find(&b->members, BUNDLE_SIG);
        struct dirent **ents = NULL;
        int n, r = -ENOKEY;

        if (!sig) {
                if (!required)
                        return 0;
                diags_add(d, BUNDLE_YAML, 0, 0,
                          "the bundle is not signed and require_signature is set");
                return -EPERM;
        }
        n = keys_dir ? scandir(keys_dir, &ents, NULL, alphasort) : -1;
        for (int i = 0; i < n; i++) {
                if (r == -ENOKEY || r == -EBADMSG) {
                        if (endswith(ents[i]->d_name, ".pub")) {
                                _cleanup_free_ char *path =
                                        strprintf("%s/%s", keys_dir, ents[i]->d_name);
                                _cleanup_free_ char *pem = NULL;
                                size_t len;
                                if (read_file(path, 64 * 1024, &pem, &len) >= 0) {
                                        int k = ed25519_verify(pem, len, y->data, y->size,
                                                               sig->data, sig->size);
                                        if (k == 0) {
                                                b->signed_by = TAKE_PTR(path);
                                                r = 0;
                                        } else if (k == -EBADMSG)
                                                r = -EBADMSG;
                                }
                        }
                }
                free(ents[i]);
        }
        free(ents);
        if (r == 0)
                return 0;
        if (r == -ENOKEY && !required)
                return 0; /* signed, but this machine trusts no key: nothing to check against */
        if (r == -ENOKEY)
                diags_add(d, BUNDLE_SIG, 0, 0,
                          "no trusted key to check the signature with (no *.pub in %s)",
                          keys_dir ? keys_dir : "(none)");
        else
                diags_add(d, BUNDLE_SIG, 0, 0,
                          "the signature of bundle.yaml does not verify with any key in %s",
                          keys_dir);
        return -EPERM;
}

int bundle_unpack(const struct bundle *b, int rootfd, const char *dir)
{
        const struct archive_member *y = member_list_find(&b->members, BUNDLE_YAML);
        _cleanup_free_ char *stamp_path = strprintf("%s/.unpacked", dir), *stamp = NULL;
        _cleanup_close_ int dfd = -1;
        char digest[65];
        int r;

        if (!y || !stamp_path)
                return -EINVAL;
        sha256_hex(y->data, y->size, digest);
        if (root_read_file(rootfd, stamp_path, 4096, &stamp, NULL) >= 0 &&
            strncmp(stamp, digest, 64) == 0 && streq(stamp + 64, "\n"))
                return 0;
        r = root_rm_rf(rootfd, dir);
        if (r < 0)
                return r;
        dfd = root_mkdir_p(rootfd, dir, 0700);
        if (dfd < 0)
                return dfd;
        /* dir is new and empty, and counts as unpacked only once the stamp
         * is written last: each member is written in place. */
        for (size_t i = 0; i < b->members.n; i++) {
                const struct archive_member *m = &b->members.v[i];
                mode_t mode = (m->mode & 0111) || endswith(m->path, ".sh") ? 0700 : 0600;
                r = root_write_file(dfd, m->path, 0700, m->data, m->size, mode, (uid_t)-1,
                                    (gid_t)-1, WRITE_IN_PLACE | WRITE_NOSYNC);
                if (r < 0)
                        return r;
        }
        char line[66];
        snprintf(line, sizeof(line), "%s\n", digest);
        r = write_file_at(dfd, ".unpacked", line, strlen(line), 0600, (uid_t)-1, (gid_t)-1,
                          WRITE_NOSYNC);
        return r < 0 ? r : 0;
}

void bundle_free(struct bundle *b)
{
        if (!b)
                return;
        for (size_t i = 0; i < b->n_files; i++) {
                free(b->files[i].path);
                free(b->files[i].source);
                free(b->files[i].owner);
        }
        free(b->files);
        for (size_t i = 0; i < b->n_modules; i++)
                free(b->modules[i].id);
        free(b->modules);
        member_list_free(&b->members);
        node_free(b->doc);
        free(b->label);
        free(b->name);
        free(b->hostname);
        free(b->ready_marker);
        free(b->phone_url);
        free(b->phone_token);
        free(b->signed_by);
        free(b);
}
