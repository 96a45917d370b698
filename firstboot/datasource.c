/* The datasources; the order "auto" follows is described in
 * datasource.h. Local seeds are read through one small abstraction (a
 * directory or an ISO image) so NoCloud and ConfigDrive share the search,
 * the size checks and the messages. Metadata services go through http_do()
 * with the caller's timeouts and attempts. */
#include "datasource.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <strings.h>
#include <sys/stat.h>

#include "iso.h"
#include "crypto.h"
#include "diag.h"
#include "fs.h"
#include "http.h"
#include "json.h"
#include "node.h"
#include "sshkeys.h"
#include "util.h"
#include "yaml.h"

/* meta-data documents, tokens and single values. */
#define MAX_METADATA (1024U * 1024U)
#define MAX_TOKEN    4096U
#define MAX_ID       128
#define MAX_HOSTNAME 253

static const char *const names[] = {
        "auto", "nocloud", "configdrive", "ec2", "hetzner", "digitalocean", "file", "default", NULL,
};

const char *const *datasource_names(void)
{
        return names;
}

struct ctx {
        const struct ds_options *o;
        const char *root;
        char *base; /* metadata URL without trailing slashes */
        long long timeout_ms, backoff_ms;
        unsigned attempts;
        size_t max;
};

static int too_big(char **ret_error, const char *source, const char *origin, long long size,
                   size_t max)
{
        if (size > 0)
                return fail_with(ret_error, -EFBIG,
                                 "%s: user-data from %s is %lld bytes, over the limit of %zu",
                                 source, origin, size, max);
        return fail_with(ret_error, -EFBIG, "%s: user-data from %s is over the limit of %zu bytes",
                         source, origin, max);
}

/* Untrusted text for a message: printable ASCII, at most 64 characters. */
static char *printable(const char *s)
{
        struct buf b = {0};
        size_t n = 0;

        for (const char *p = s; *p && n < 64; p++, n++) {
                char c = isprint((unsigned char)*p) ? *p : '?';
                if (buf_append(&b, &c, 1) < 0)
                        break;
        }
        if (*s && n == 64)
                buf_puts(&b, "...");
        return buf_steal(&b);
}

/* Removes leading and trailing whitespace in place. */
static char *strstrip(char *s)
{
        size_t skip = 0, n;

        while (isspace((unsigned char)s[skip]))
                skip++;
        if (skip > 0)
                memmove(s, s + skip, strlen(s + skip) + 1);
        n = strlen(s);
        while (n > 0 && isspace((unsigned char)s[n - 1]))
                s[--n] = '\0';
        return s;
}

static bool instance_id_is_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > MAX_ID || s[0] == '.')
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("._:-", *p))
                        return false;
        return true;
}

static bool hostname_is_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > MAX_HOSTNAME)
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
                        return false;
        return true;
}

/* Checks and stores the id and hostname a source gave (hostname may be
 * NULL or empty: none). */
static int set_identity(struct ds_result *res, const char *source, const char *where,
                        const char *id, const char *hostname, char **ret_error)
{
        if (!id || !instance_id_is_valid(id)) {
                _cleanup_free_ char *shown = printable(id ? id : "");
                return fail_with(ret_error, -EBADMSG,
                                 "%s: instance id '%s' from %s is not valid (1 to %d characters of "
                                 "A-Z a-z 0-9 . _ : -, not starting with '.')",
                                 source, shown, where, MAX_ID);
        }
        if (hostname && *hostname && !hostname_is_valid(hostname)) {
                _cleanup_free_ char *shown = printable(hostname);
                return fail_with(ret_error, -EBADMSG,
                                 "%s: hostname '%s' from %s is not valid (1 to %d characters of "
                                 "A-Z a-z 0-9 . _ -)",
                                 source, shown, where, MAX_HOSTNAME);
        }
        /* Copies first: id or hostname may be res's own strings. */
        char *new_id = xstrdup(id);
        char *new_host = hostname && *hostname ? xstrdup(hostname) : NULL;
        free(res->instance_id);
        free(res->hostname);
        res->instance_id = new_id;
        res->hostname = new_host;
        return 0;
}

/* Takes data (n bytes) as the user-data, NUL-terminated, read from "from". */
static int set_user_data(struct ds_result *res, char *data, size_t n, const char *from)
{
        char *p = realloc(data, n + 1);
        if (!p) {
                free(data);
                return -ENOMEM;
        }
        p[n] = '\0';
        free(res->user_data);
        res->user_data = (unsigned char *)p;
        res->user_data_len = n;
        free(res->user_data_origin);
        res->user_data_origin = xstrdup(from);
        return 0;
}

/* The first diagnostic as a message with the source in front. */
static int fail_diags(char **ret_error, int r, const char *source, const struct diags *d,
                      const char *fallback)
{
        _cleanup_free_ char *m = d->n > 0 ? diag_format(&d->v[0]) : NULL;
        return fail_with(ret_error, r, "%s: %s", source, m ? m : fallback);
}

/* "file:line:column" of n, or file when n has no position. */
static char *node_where(const char *file, const struct node *n)
{
        if (n && n->line > 0)
                return strprintf("%s:%u:%u", file, n->line, n->column);
        return xstrdup(file);
}

/* Checks and adds the keys in text: one per line, blank lines and lines
 * starting with '#' skipped (authorized_keys syntax, and what cloud-init
 * does with a string of keys); with single, text is one key (a list item,
 * an openssh-key answer), a trailing newline allowed but no other. field
 * names where they came from. */
static int add_keys_text(const char *source, const char *where, const char *field, const char *text,
                         size_t len, bool single, struct ds_result *res, char **ret_error)
{
        size_t n_line = 0, end_len = len;

        while (end_len > 0 && (text[end_len - 1] == '\n' || text[end_len - 1] == '\r'))
                end_len--;
        bool multi = memchr(text, '\n', end_len) != NULL;
        if (single && multi)
                return fail_with(ret_error, -EBADMSG, "%s: %s: %s: not an SSH public key: %s",
                                 source, where, field, "more than one line");

        for (const char *p = text, *end = text + len; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
                const char *why = memchr(p, '\0', n) ? "a NUL byte in it" : NULL;
                _cleanup_free_ char *line = xstrndup(p, n), *key = NULL;
                p += n + (nl ? 1 : 0);
                n_line++;

                /* Not n: a NUL byte ends line early. */
                size_t n_text = strlen(line);
                if (n_text > 0 && line[n_text - 1] == '\r')
                        line[n_text - 1] = '\0';
                const char *s = line + strspn(line, " \t");
                if (!why && (*s == '\0' || *s == '#'))
                        continue;
                int r = why ? -EBADMSG : sshkey_parse(line, &key, &why);
                if (r == -ENOMEM)
                        return fail_with(ret_error, r, "out of memory");
                if (r < 0) {
                        if (multi)
                                return fail_with(ret_error, -EBADMSG,
                                                 "%s: %s: %s, line %zu: not an SSH public key: %s",
                                                 source, where, field, n_line, why);
                        return fail_with(ret_error, -EBADMSG,
                                         "%s: %s: %s: not an SSH public key: %s", source, where,
                                         field, why);
                }
                if (strv_length(res->ssh_keys) >= SSHKEYS_MAX)
                        return fail_with(ret_error, -EBADMSG, "%s: %s: %s: more than %d SSH keys",
                                         source, where, field, SSHKEYS_MAX);
                if (strv_extend(&res->ssh_keys, key) < 0)
                        return fail_with(ret_error, -ENOMEM, "out of memory");
        }
        return 0;
}

/* The keys a metadata value holds, as cloud-init reads them
 * (normalize_pubkey_data): a string of lines, a list of strings, or a map
 * of names to a string or a list of strings (ConfigDrive's public_keys).
 * Anything else is refused, naming the place. */
static int add_keys_node(const char *source, const char *file, const char *field,
                         const struct node *v, struct ds_result *res, char **ret_error)
{
        _cleanup_free_ char *where = node_where(file, v);
        int r;

        if (!v || node_is_null(v))
                return 0;
        if (v->kind == NODE_SCALAR) {
                if (node_resolve(v) != SCALAR_STR)
                        return fail_with(ret_error, -EBADMSG,
                                         "%s: %s: %s: expected SSH public keys, not %s", source,
                                         where, field, node_kind_name(v));
                return add_keys_text(source, where, field, v->value, strlen(v->value), false, res,
                                     ret_error);
        }
        for (size_t i = 0; i < v->n_items; i++) {
                const struct node *item = v->items[i];
                _cleanup_free_ char *name = v->kind == NODE_MAP
                                                    ? strprintf("%s.%s", field, item->key)
                                                    : strprintf("%s[%zu]", field, i);
                if (!name)
                        return fail_with(ret_error, -ENOMEM, "out of memory");
                if (v->kind == NODE_MAP && item->kind == NODE_SEQ) {
                        r = add_keys_node(source, file, name, item, res, ret_error);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (item->kind != NODE_SCALAR || node_resolve(item) != SCALAR_STR) {
                        _cleanup_free_ char *at = node_where(file, item);
                        return fail_with(ret_error, -EBADMSG,
                                         "%s: %s: %s: expected an SSH public key, not %s", source,
                                         at, name, node_kind_name(item));
                }
                _cleanup_free_ char *at = node_where(file, item);
                r = add_keys_text(source, at, name, item->value, strlen(item->value), true, res,
                                  ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A metadata document (YAML, or JSON when json is set): the instance id
 * from id_key and the hostname from host_key, both scalars, and the SSH
 * keys in keys_key. */
static int parse_metadata(const char *source, const char *file, const char *buf, size_t len,
                          bool json, const char *id_key, const char *host_key, const char *keys_key,
                          struct ds_result *res, char **ret_error)
{
        _cleanup_node_ struct node *doc = NULL;
        struct diags d = {0};
        const char *what = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
        int r;

        r = json ? json_parse(file, buf, len, &doc, &d) : yaml_parse(file, buf, len, &doc, &d);
        if (r < 0) {
                r = fail_diags(ret_error, -EBADMSG, source, &d, "cannot parse metadata");
                diags_free(&d);
                return r;
        }
        if (!doc || doc->kind != NODE_MAP) {
                diags_free(&d);
                return fail_with(ret_error, -EBADMSG,
                                 "%s: %s: expected a mapping with '%s', not %s", source, file,
                                 id_key, doc ? node_kind_name(doc) : "nothing");
        }
        const char *id = diags_get_str(&d, doc, id_key, true, what);
        const char *host = diags_get_str(&d, doc, host_key, false, what);
        if (d.n > 0) {
                r = fail_diags(ret_error, -EBADMSG, source, &d, "bad metadata");
                diags_free(&d);
                return r;
        }
        r = set_identity(res, source, file, id, host, ret_error);
        if (r < 0)
                return r;
        return add_keys_node(source, file, keys_key, node_get(doc, keys_key), res, ret_error);
}

/* --- Local seeds: a directory or an ISO9660 image (file or device). --- */

struct seed {
        char *dir, *image; /* exactly one is set */
};

static void seed_done(struct seed *s)
{
        free(s->dir);
        free(s->image);
        *s = (struct seed){0};
}

static const char *seed_origin(const struct seed *s)
{
        return s->dir ? s->dir : s->image;
}

/* How a member is named in messages: "dir/member" or "image:member". */
static char *seed_member_name(const struct seed *s, const char *member)
{
        if (s->dir)
                return strprintf("%s/%s", s->dir, member);
        return strprintf("%s:%s", s->image, member);
}

/* What seed_read()'s error r means, for a message. */
static const char *seed_error(int r)
{
        const char *why = r == -ELIBACC ? archive_load_error() : NULL;
        return why ? why : strerror(-r);
}

/* Reads a member, at most max bytes. -ENOENT when absent; -EFBIG when over
 * max, with *ret_actual the size when it is known (else 0). */
static int seed_read(const struct seed *s, const char *member, size_t max, char **ret,
                     size_t *ret_size, long long *ret_actual)
{
        *ret_actual = 0;
        if (s->image)
                return iso_read_member(s->image, member, max, ret, ret_size);

        _cleanup_free_ char *path = strprintf("%s/%s", s->dir, member);
        struct stat st;
        if (!path)
                return -ENOMEM;
        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        if ((unsigned long long)st.st_size > max) {
                *ret_actual = (long long)st.st_size;
                return -EFBIG;
        }
        int r = read_file(path, max, ret, ret_size);
        if (r == -EFBIG && stat(path, &st) == 0)
                *ret_actual = (long long)st.st_size;
        return r;
}

struct local_kind {
        const char *source;
        const char *label;        /* the volume label, matched in any case */
        const char *seed_dirs[3]; /* under the root, NULL-terminated */
        const char *meta, *user;
        bool meta_is_json;
        const char *id_key, *host_key, *keys_key;
};

static const struct local_kind nocloud = {
        .source = "nocloud",
        .label = "cidata",
        .seed_dirs = {"/var/lib/cloud/seed/nocloud", "/var/lib/cloud/seed/nocloud-net", NULL},
        .meta = "meta-data",
        .user = "user-data",
        .id_key = "instance-id",
        .host_key = "local-hostname",
        .keys_key = "public-keys",
};

static const struct local_kind configdrive = {
        .source = "configdrive",
        .label = "config-2",
        .seed_dirs = {"/var/lib/cloud/seed/config_drive", NULL},
        .meta = "openstack/latest/meta_data.json",
        .user = "openstack/latest/user_data",
        .meta_is_json = true,
        .id_key = "uuid",
        .host_key = "hostname",
        .keys_key = "public_keys",
};

/* The volume id of an image, trailing blanks dropped; "" when it is not
 * an ISO9660 image or cannot be read. */
static void volume_id(const char *image, char ret[33])
{
        size_t n;

        if (iso_volume_id(image, ret) < 0) {
                ret[0] = '\0';
                return;
        }
        ret[32] = '\0';
        n = strlen(ret);
        while (n > 0 && ret[n - 1] == ' ')
                ret[--n] = '\0';
}

static int name_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A block device carrying the label: <root>/dev/disk/by-label/<label> in
 * lower or upper case, else the first <root>/dev/NAME, NAME from
 * <root>/sys/class/block in name order, whose ISO9660 volume id matches.
 * Devices that cannot be opened or read are skipped. Returns 0 and the
 * device path, or -ENOENT. */
static int find_labelled_device(const char *root, const char *label, char **ret)
{
        _cleanup_strv_free_ char **found = NULL;
        _cleanup_free_ char *upper = xstrdup(label), *sysdir = NULL;
        const char *labels[] = {label, upper};
        DIR *dir;
        struct dirent *de;

        for (char *p = upper; *p; p++)
                *p = (char)toupper((unsigned char)*p);
        for (size_t i = 0; i < ARRAY_SIZE(labels); i++) {
                _cleanup_free_ char *rel = strprintf("/dev/disk/by-label/%s", labels[i]);
                char *path = rel ? root_path(root, rel) : NULL;
                if (!path)
                        return -ENOMEM;
                struct stat st;
                if (stat(path, &st) == 0) { /* a dangling link is no device */
                        *ret = path;
                        return 0;
                }
                free(path);
        }

        sysdir = root_path(root, "/sys/class/block");
        if (!sysdir)
                return -ENOMEM;
        dir = opendir(sysdir);
        if (!dir)
                return -ENOENT;
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.' && strv_extend(&found, de->d_name) < 0) {
                        closedir(dir);
                        return -ENOMEM;
                }
        closedir(dir);
        if (!found)
                return -ENOENT;
        qsort(found, strv_length(found), sizeof(char *), name_cmp);
        for (char **n = found; *n; n++) {
                _cleanup_free_ char *rel = strprintf("/dev/%s", *n);
                char *dev = rel ? root_path(root, rel) : NULL;
                char vid[33];
                if (!dev)
                        return -ENOMEM;
                volume_id(dev, vid);
                if (strcasecmp(vid, label) == 0) {
                        *ret = dev;
                        return 0;
                }
                free(dev);
        }
        return -ENOENT;
}

/* Where a local source's seed is: --seed, the seed directories, a
 * labelled device. Returns -ENOENT when there is none, with a message
 * saying what was tried, also added to *tried when not NULL. */
static int locate(const struct ctx *c, const struct local_kind *k, struct seed *ret,
                  struct buf *tried, char **ret_error)
{
        struct buf here = {0};
        struct stat st;
        int r;

        if (c->o->seed) {
                if (stat(c->o->seed, &st) < 0) {
                        int e = errno;
                        return fail_with(ret_error, -e, "%s: --seed %s: %s", k->source, c->o->seed,
                                         strerror(e));
                }
                if (S_ISDIR(st.st_mode))
                        *ret = (struct seed){.dir = xstrdup(c->o->seed)};
                else
                        *ret = (struct seed){.image = xstrdup(c->o->seed)};
                return 0;
        }
        for (size_t i = 0; k->seed_dirs[i]; i++) {
                char *dir = root_path(c->root, k->seed_dirs[i]);
                if (!dir)
                        return fail_with(ret_error, -ENOMEM, "out of memory");
                if (is_dir(dir)) {
                        *ret = (struct seed){.dir = dir};
                        return 0;
                }
                buf_printf(&here, "%s, ", dir);
                free(dir);
        }
        char *dev = NULL;
        r = find_labelled_device(c->root, k->label, &dev);
        if (r == 0) {
                buf_free(&here);
                *ret = (struct seed){.image = dev};
                return 0;
        }
        if (r != -ENOENT) {
                buf_free(&here);
                return fail_with(ret_error, r, "%s: %s", k->source, strerror(-r));
        }
        buf_printf(&here, "a block device labelled %s", k->label);
        if (tried)
                buf_printf(tried, "%s%s: %s", tried->len ? "; " : "", k->source, here.data);
        r = fail_with(ret_error, -ENOENT, "%s: no seed found (tried %s)", k->source, here.data);
        buf_free(&here);
        return r;
}

static int read_seed(const struct ctx *c, const struct local_kind *k, const struct seed *s,
                     struct ds_result *res, char **ret_error)
{
        _cleanup_free_ char *meta_name = seed_member_name(s, k->meta);
        _cleanup_free_ char *user_name = seed_member_name(s, k->user);
        _cleanup_free_ char *buf = NULL;
        long long actual;
        size_t len = 0;
        int r;

        if (!meta_name || !user_name)
                return fail_with(ret_error, -ENOMEM, "out of memory");
        r = seed_read(s, k->meta, MAX_METADATA, &buf, &len, &actual);
        if (r == -ENOENT)
                return fail_with(ret_error, r, "%s: %s: not found", k->source, meta_name);
        if (r == -EFBIG)
                return fail_with(ret_error, r, "%s: %s: over the limit of %u bytes", k->source,
                                 meta_name, MAX_METADATA);
        if (r == -EMEDIUMTYPE)
                return fail_with(ret_error, r, "%s: %s is neither a directory nor an ISO9660 image",
                                 k->source, s->image);
        if (r < 0)
                return fail_with(ret_error, r, "%s: cannot read %s: %s", k->source, meta_name,
                                 seed_error(r));
        r = parse_metadata(k->source, meta_name, buf, len, k->meta_is_json, k->id_key, k->host_key,
                           k->keys_key, res, ret_error);
        if (r < 0)
                return r;

        free(buf);
        buf = NULL;
        r = seed_read(s, k->user, c->max, &buf, &len, &actual);
        if (r == -ENOENT)
                return 0;
        if (r == -EFBIG)
                return too_big(ret_error, k->source, user_name, actual, c->max);
        if (r < 0)
                return fail_with(ret_error, r, "%s: cannot read %s: %s", k->source, user_name,
                                 seed_error(r));
        return set_user_data(res, TAKE_PTR(buf), len, user_name);
}

static int fetch_local(const struct ctx *c, const struct local_kind *k, struct ds_result *res,
                       struct buf *tried, char **ret_error)
{
        struct seed s = {0};
        int r;

        r = locate(c, k, &s, tried, ret_error);
        if (r < 0)
                return r;
        r = read_seed(c, k, &s, res, ret_error);
        if (r >= 0) {
                res->source = xstrdup(k->source);
                res->origin = xstrdup(seed_origin(&s));
        }
        seed_done(&s);
        return r;
}

/* --- file --- */

static bool is_machine_id(const char *s)
{
        size_t n = 0;

        for (; s[n]; n++)
                if (!isxdigit((unsigned char)s[n]))
                        return false;
        return n == 32;
}

/* User-data from a file; the instance id is the root's machine id when
 * it is one (32 hex digits), else source + "-" + 16 hex digits of the
 * user-data's sha256. -ENOENT (with a message) when the file is absent. */
static int fetch_user_data_file(const struct ctx *c, const char *source, const char *path,
                                struct ds_result *res, char **ret_error)
{
        _cleanup_free_ char *data = NULL, *mid_path = NULL, *mid = NULL;
        char hex[65];
        size_t len = 0;
        int r;

        r = read_file(path, c->max, &data, &len);
        if (r == -EFBIG) {
                struct stat st;
                return too_big(ret_error, source, path, stat(path, &st) == 0 ? st.st_size : 0,
                               c->max);
        }
        if (r < 0)
                return fail_with(ret_error, r, "%s: cannot read %s: %s", source, path,
                                 strerror(-r));

        mid_path = root_path(c->root, "/etc/machine-id");
        if (!mid_path)
                return fail_with(ret_error, -ENOMEM, "out of memory");
        if (!c->o->instance_id && read_line_file(mid_path, &mid) >= 0 &&
            is_machine_id(strstrip(mid))) {
                r = set_identity(res, source, mid_path, mid, NULL, ret_error);
        } else {
                _cleanup_free_ char *id = NULL;
                sha256_hex(data, len, hex);
                id = strprintf("%s-%.16s", source, hex);
                if (!id)
                        return fail_with(ret_error, -ENOMEM, "out of memory");
                r = set_identity(res, source, path, id, NULL, ret_error);
        }
        if (r < 0)
                return r;
        r = set_user_data(res, TAKE_PTR(data), len, path);
        if (r < 0)
                return fail_with(ret_error, r, "out of memory");
        res->source = xstrdup(source);
        res->origin = xstrdup(path);
        return 0;
}

static int fetch_file(const struct ctx *c, struct ds_result *res, char **ret_error)
{
        if (!c->o->user_data_file)
                return fail_with(ret_error, -EINVAL,
                                 "file: no user-data file given (--user-data FILE)");
        return fetch_user_data_file(c, "file", c->o->user_data_file, res, ret_error);
}

/* --- default: the bundle baked into the image --- */

static int fetch_default(const struct ctx *c, struct ds_result *res, struct buf *tried,
                         char **ret_error)
{
        _cleanup_free_ char *path = root_path(c->root, DS_DEFAULT_USER_DATA);

        if (!path)
                return fail_with(ret_error, -ENOMEM, "out of memory");
        if (!path_exists(path)) {
                if (tried)
                        buf_printf(tried, "%sdefault: %s", tried->len ? "; " : "", path);
                return fail_with(ret_error, -ENOENT, "default: no default bundle (%s)", path);
        }
        return fetch_user_data_file(c, "default", path, res, ret_error);
}

/* --- Metadata services --- */

/* One request to base + path. Returns 0 on a 2xx answer; 1 on a 404 when
 * allow_404 (nothing in *ret); otherwise a negative errno with a message
 * naming the source, the request and the status. user_data makes a body
 * over max a user-data limit error. */
static int request(const struct ctx *c, const char *source, const char *method, const char *path,
                   char *const *headers, size_t max, bool user_data, bool allow_404,
                   struct http_response *ret, char **ret_error)
{
        _cleanup_free_ char *url = strprintf("%s%s", c->base, path);
        _cleanup_free_ char *error = NULL;
        struct http_response resp = {0};
        int r;

        if (!url)
                return fail_with(ret_error, -ENOMEM, "out of memory");
        struct http_request req = {
                .method = method,
                .url = url,
                .headers = headers,
                .timeout_ms = c->timeout_ms,
                .connect_timeout_ms = c->timeout_ms,
                .attempts = c->attempts,
                .backoff_ms = c->backoff_ms,
                .max_response = max,
        };
        r = http_do(&req, &resp, &error);
        if (r == -EFBIG && user_data) {
                long long n = (long long)resp.body_len;
                http_response_free(&resp);
                return too_big(ret_error, source, url, n, max);
        }
        if (r < 0) {
                http_response_free(&resp);
                return fail_with(ret_error, r, "%s: %s", source, error ? error : strerror(-r));
        }
        if (resp.status >= 200 && resp.status <= 299) {
                *ret = resp;
                return 0;
        }
        long status = resp.status;
        unsigned n = resp.attempts_made;
        http_response_free(&resp);
        if (status == 404 && allow_404)
                return 1;
        if (n > 1)
                return fail_with(ret_error, -EPROTO, "%s: %s %s: HTTP %ld (%u attempts)", source,
                                 method, url, status, n);
        return fail_with(ret_error, -EPROTO, "%s: %s %s: HTTP %ld", source, method, url, status);
}

/* User-data from a metadata service: an absent (404 when allowed) or
 * empty answer is none. */
static int request_user_data(const struct ctx *c, const char *source, const char *path,
                             char *const *headers, bool allow_404, struct ds_result *res,
                             char **ret_error)
{
        _cleanup_free_ char *url = strprintf("%s%s", c->base, path);
        struct http_response resp = {0};
        int r;

        if (!url)
                return fail_with(ret_error, -ENOMEM, "out of memory");
        r = request(c, source, "GET", path, headers, c->max, true, allow_404, &resp, ret_error);
        if (r != 0)
                return r < 0 ? r : 0;
        if (resp.body_len == 0) {
                http_response_free(&resp);
                return 0;
        }
        r = set_user_data(res, TAKE_PTR(resp.body), resp.body_len, url);
        http_response_free(&resp);
        if (r < 0)
                return fail_with(ret_error, r, "out of memory");
        return 0;
}

/* The indexes of EC2's public-keys/ listing: lines "N=name" (IMDS
 * "public-keys/" and cloud-init's ec2 helper). At most SSHKEYS_MAX. */
static int parse_ec2_key_list(const char *where, const char *text, size_t len,
                              unsigned ret[SSHKEYS_MAX], size_t *ret_n, char **ret_error)
{
        size_t n = 0, n_line = 0;

        for (const char *p = text, *end = text + len; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t k = nl ? (size_t)(nl - p) : (size_t)(end - p);
                _cleanup_free_ char *line = xstrndup(p, k);
                unsigned idx;
                p += k + (nl ? 1 : 0);
                n_line++;

                strstrip(line);
                if (!*line)
                        continue;
                char *eq = strchr(line, '=');
                if (eq)
                        *eq = '\0';
                if (!eq || strspn(line, "0123456789") != strlen(line) ||
                    parse_uint(line, &idx) < 0 || idx >= 100000)
                        return fail_with(
                                ret_error, -EBADMSG,
                                "ec2: %s, line %zu: expected N=name (a key's index and name)",
                                where, n_line);
                if (n >= SSHKEYS_MAX)
                        return fail_with(ret_error, -EBADMSG, "ec2: %s: more than %d SSH keys",
                                         where, SSHKEYS_MAX);
                ret[n++] = idx;
        }
        *ret_n = n;
        return 0;
}

/* The instance's SSH keys: the public-keys/ listing (404: none), then
 * public-keys/N/openssh-key for each, with the IMDSv2 token. */
static int fetch_ec2_keys(const struct ctx *c, char *const *headers, struct ds_result *res,
                          char **ret_error)
{
        static const char list_path[] = "/latest/meta-data/public-keys/";
        _cleanup_free_ char *list_url = strprintf("%s%s", c->base, list_path);
        struct http_response list = {0};
        unsigned idx[SSHKEYS_MAX];
        size_t n = 0;
        int r;

        if (!list_url)
                return fail_with(ret_error, -ENOMEM, "out of memory");
        r = request(c, "ec2", "GET", list_path, headers, MAX_METADATA, false, true, &list,
                    ret_error);
        if (r != 0)
                return r < 0 ? r : 0;
        r = parse_ec2_key_list(list_url, list.body, list.body_len, idx, &n, ret_error);
        http_response_free(&list);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path =
                        strprintf("/latest/meta-data/public-keys/%u/openssh-key", idx[i]);
                _cleanup_free_ char *url = path ? strprintf("%s%s", c->base, path) : NULL;
                struct http_response key = {0};
                if (!url)
                        return fail_with(ret_error, -ENOMEM, "out of memory");
                r = request(c, "ec2", "GET", path, headers, SSHKEY_MAX_LINE + 2, false, false, &key,
                            ret_error);
                if (r < 0)
                        return r;
                r = add_keys_text("ec2", url, "openssh-key", key.body, key.body_len, true, res,
                                  ret_error);
                http_response_free(&key);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int fetch_ec2(const struct ctx *c, struct ds_result *res, char **ret_error)
{
        static const char *const ttl[] = {"X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL};
        _cleanup_free_ char *auth = NULL, *where = NULL;
        struct http_response token = {0}, id = {0}, host = {0};
        int r;

        r = request(c, "ec2", "PUT", "/latest/api/token", (char *const *)ttl, MAX_TOKEN, false,
                    false, &token, ret_error);
        if (r < 0)
                return r;
        strstrip(token.body);
        bool ok = token.body[0] != '\0';
        for (const char *p = token.body; *p; p++)
                ok = ok && isgraph((unsigned char)*p);
        if (ok)
                auth = strprintf("X-aws-ec2-metadata-token: %s", token.body);
        http_response_free(&token);
        if (!ok)
                return fail_with(ret_error, -EPROTO,
                                 "ec2: PUT %s/latest/api/token: the answer is not a token",
                                 c->base);
        if (!auth)
                return fail_with(ret_error, -ENOMEM, "out of memory");
        char *const headers[] = {auth, NULL};

        r = request(c, "ec2", "GET", "/latest/meta-data/instance-id", headers, MAX_METADATA, false,
                    false, &id, ret_error);
        if (r < 0)
                return r;
        r = request(c, "ec2", "GET", "/latest/meta-data/local-hostname", headers, MAX_METADATA,
                    false, true, &host, ret_error);
        if (r < 0) {
                http_response_free(&id);
                return r;
        }
        where = strprintf("%s/latest/meta-data", c->base);
        r = set_identity(res, "ec2", where ? where : c->base, strstrip(id.body),
                         r == 0 ? strstrip(host.body) : NULL, ret_error);
        http_response_free(&id);
        http_response_free(&host);
        if (r < 0)
                return r;
        r = fetch_ec2_keys(c, headers, res, ret_error);
        if (r < 0)
                return r;
        return request_user_data(c, "ec2", "/latest/user-data", headers, true, res, ret_error);
}

static int fetch_metadata_doc(const struct ctx *c, const char *source, const char *path, bool json,
                              const char *id_key, const char *host_key, const char *keys_key,
                              struct ds_result *res, char **ret_error)
{
        _cleanup_free_ char *url = strprintf("%s%s", c->base, path);
        struct http_response doc = {0};
        int r;

        if (!url)
                return fail_with(ret_error, -ENOMEM, "out of memory");
        r = request(c, source, "GET", path, NULL, MAX_METADATA, false, false, &doc, ret_error);
        if (r < 0)
                return r;
        r = parse_metadata(source, url, doc.body, doc.body_len, json, id_key, host_key, keys_key,
                           res, ret_error);
        http_response_free(&doc);
        return r;
}

static int fetch_hetzner(const struct ctx *c, struct ds_result *res, char **ret_error)
{
        int r = fetch_metadata_doc(c, "hetzner", "/hetzner/v1/metadata", false, "instance-id",
                                   "hostname", "public-keys", res, ret_error);
        if (r < 0)
                return r;
        return request_user_data(c, "hetzner", "/hetzner/v1/userdata", NULL, false, res, ret_error);
}

static int fetch_digitalocean(const struct ctx *c, struct ds_result *res, char **ret_error)
{
        int r = fetch_metadata_doc(c, "digitalocean", "/metadata/v1.json", true, "droplet_id",
                                   "hostname", "public_keys", res, ret_error);
        if (r < 0)
                return r;
        return request_user_data(c, "digitalocean", "/metadata/v1/user-data", NULL, true, res,
                                 ret_error);
}

static int fetch_remote(const struct ctx *c, const char *name, struct ds_result *res,
                        char **ret_error)
{
        int r;

        if (strncasecmp(c->base, "http://", 7) != 0 && strncasecmp(c->base, "https://", 8) != 0)
                return fail_with(
                        ret_error, -EINVAL,
                        "%s: the metadata URL must start with http:// or https://, not '%s'", name,
                        c->base);
        if (streq(name, "ec2"))
                r = fetch_ec2(c, res, ret_error);
        else if (streq(name, "hetzner"))
                r = fetch_hetzner(c, res, ret_error);
        else
                r = fetch_digitalocean(c, res, ret_error);
        if (r < 0)
                return r;
        res->source = xstrdup(name);
        res->origin = xstrdup(c->base);
        return 0;
}

/* --- auto --- */

/* A DMI string under the root, stripped; NULL when absent. */
static char *dmi(const char *root, const char *name)
{
        _cleanup_free_ char *rel = strprintf("/sys/class/dmi/id/%s", name);
        _cleanup_free_ char *path = rel ? root_path(root, rel) : NULL;
        char *line = NULL;

        if (!path || read_line_file(path, &line) < 0)
                return NULL;
        strstrip(line);
        return line;
}

/* The source the DMI strings name, or NULL. */
static const char *dmi_source(const char *root, char **ret_vendor)
{
        _cleanup_free_ char *sys_vendor = dmi(root, "sys_vendor");
        _cleanup_free_ char *product_name = dmi(root, "product_name");
        _cleanup_free_ char *bios_vendor = dmi(root, "bios_vendor");
        _cleanup_free_ char *asset_tag = dmi(root, "chassis_asset_tag");
        _cleanup_free_ char *uuid = dmi(root, "product_uuid");

        *ret_vendor = sys_vendor ? xstrdup(sys_vendor) : NULL;
        if (streq_ptr(sys_vendor, "Hetzner"))
                return "hetzner";
        if (streq_ptr(sys_vendor, "DigitalOcean"))
                return "digitalocean";
        if (streq_ptr(sys_vendor, "Amazon EC2") || streq_ptr(bios_vendor, "Amazon EC2") ||
            (uuid && strncasecmp(uuid, "ec2", 3) == 0))
                return "ec2";
        if (streq_ptr(asset_tag, "OpenStack Nova") || streq_ptr(product_name, "OpenStack Nova") ||
            streq_ptr(asset_tag, "OpenStack Compute") ||
            streq_ptr(product_name, "OpenStack Compute"))
                return "configdrive";
        return NULL;
}

/* With --seed and "auto": a ConfigDrive seed or, by default, NoCloud. */
static const struct local_kind *seed_kind(const char *seed)
{
        if (is_dir(seed)) {
                _cleanup_free_ char *p = strprintf("%s/%s", seed, configdrive.meta);
                return p && path_exists(p) ? &configdrive : &nocloud;
        }
        char vid[33];
        volume_id(seed, vid);
        return strcasecmp(vid, configdrive.label) == 0 ? &configdrive : &nocloud;
}

/* The order (datasource.h has the details): --user-data gives file;
 * --seed gives configdrive or nocloud by what the seed holds; then DMI:
 * Hetzner, DigitalOcean, Amazon EC2 (sys_vendor, bios_vendor or an "ec2"
 * product_uuid), OpenStack Nova (configdrive); then nocloud (seed
 * directories, a cidata device), then configdrive (its seed directory, a
 * config-2 device), then the default bundle baked into the image; else
 * an error listing all that was tried. Only "not
 * found" moves on to the next local source. */
static int fetch_auto(const struct ctx *c, struct ds_result *res, char **ret_error)
{
        _cleanup_free_ char *vendor = NULL, *tried_text = NULL;
        struct buf tried = {0};
        const char *name;
        int r;

        if (c->o->user_data_file)
                return fetch_file(c, res, ret_error);
        if (c->o->seed)
                return fetch_local(c, seed_kind(c->o->seed), res, NULL, ret_error);
        name = dmi_source(c->root, &vendor);
        if (name && streq(name, "configdrive"))
                return fetch_local(c, &configdrive, res, NULL, ret_error);
        if (name)
                return fetch_remote(c, name, res, ret_error);

        const struct local_kind *local[] = {&nocloud, &configdrive};
        for (size_t i = 0; i < ARRAY_SIZE(local); i++) {
                char *error = NULL;
                r = fetch_local(c, local[i], res, &tried, &error);
                if (r != -ENOENT) {
                        buf_free(&tried);
                        if (ret_error)
                                *ret_error = error;
                        else
                                free(error);
                        return r;
                }
                free(error);
        }
        /* Last: the image's own default bundle (imagegen bake --bundle). */
        char *error = NULL;
        r = fetch_default(c, res, &tried, &error);
        if (r != -ENOENT) {
                buf_free(&tried);
                if (ret_error)
                        *ret_error = error;
                else
                        free(error);
                return r;
        }
        free(error);
        tried_text = buf_steal(&tried);
        _cleanup_free_ char *shown = vendor ? printable(vendor) : NULL;
        return fail_with(ret_error, -ENOENT,
                         "auto: no datasource found: DMI names no known cloud (sys_vendor %s%s%s); "
                         "tried %s",
                         shown ? "'" : "", shown ? shown : "unknown", shown ? "'" : "", tried_text);
}

int datasource_fetch(const struct ds_options *o, struct ds_result *ret, char **ret_error)
{
        struct ds_result res = {0};
        const char *name = o->name ? o->name : "auto";
        const char *url = o->metadata_url ? o->metadata_url : DS_DEFAULT_METADATA_URL;
        size_t n;
        int r;

        struct ctx c = {
                .o = o,
                .root = o->root,
                .timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DS_DEFAULT_TIMEOUT_MS,
                .attempts = o->attempts > 0 ? o->attempts : DS_DEFAULT_ATTEMPTS,
                .backoff_ms = o->backoff_ms > 0 ? o->backoff_ms : DS_DEFAULT_BACKOFF_MS,
                .max = o->max_user_data > 0 ? o->max_user_data : DS_DEFAULT_MAX_USERDATA,
        };
        n = strlen(url);
        while (n > 0 && url[n - 1] == '/')
                n--;
        c.base = xstrndup(url, n);

        if (streq(name, "auto"))
                r = fetch_auto(&c, &res, ret_error);
        else if (streq(name, "file"))
                r = fetch_file(&c, &res, ret_error);
        else if (streq(name, "nocloud"))
                r = fetch_local(&c, &nocloud, &res, NULL, ret_error);
        else if (streq(name, "configdrive"))
                r = fetch_local(&c, &configdrive, &res, NULL, ret_error);
        else if (streq(name, "default"))
                r = fetch_default(&c, &res, NULL, ret_error);
        else if (streq(name, "ec2") || streq(name, "hetzner") || streq(name, "digitalocean"))
                r = fetch_remote(&c, name, &res, ret_error);
        else {
                _cleanup_free_ char *shown = printable(name);
                r = fail_with(
                        ret_error, -EINVAL,
                        "unknown datasource '%s' (expected one of: auto, nocloud, configdrive, "
                        "ec2, hetzner, digitalocean, file, default)",
                        shown);
        }
        if (r >= 0 && o->instance_id)
                r = set_identity(&res, res.source, "--instance-id", o->instance_id, res.hostname,
                                 ret_error);
        free(c.base);
        if (r < 0) {
                ds_result_free(&res);
                return r;
        }
        *ret = res;
        return 0;
}

void ds_result_free(struct ds_result *r)
{
        if (!r)
                return;
        free(r->source);
        free(r->origin);
        free(r->instance_id);
        free(r->hostname);
        free(r->user_data);
        free(r->user_data_origin);
        strv_free(r->ssh_keys);
        *r = (struct ds_result){0};
}

int ds_parse_metadata(const char *source, const char *buf, size_t len, struct ds_result *ret,
                      char **ret_error)
{
        struct ds_result res = {0};
        int r;

        if (streq(source, "ec2")) {
                unsigned idx[SSHKEYS_MAX];
                size_t n;
                r = parse_ec2_key_list("public-keys/", buf, len, idx, &n, ret_error);
        } else if (streq(source, "ec2-key")) {
                r = add_keys_text("ec2", "openssh-key", "openssh-key", buf, len, true, &res,
                                  ret_error);
        } else if (streq(source, "nocloud") || streq(source, "configdrive")) {
                const struct local_kind *k = streq(source, "nocloud") ? &nocloud : &configdrive;
                r = parse_metadata(k->source, k->meta, buf, len, k->meta_is_json, k->id_key,
                                   k->host_key, k->keys_key, &res, ret_error);
        } else if (streq(source, "hetzner"))
                r = parse_metadata(source, "metadata", buf, len, false, "instance-id", "hostname",
                                   "public-keys", &res, ret_error);
        else if (streq(source, "digitalocean"))
                r = parse_metadata(source, "v1.json", buf, len, true, "droplet_id", "hostname",
                                   "public_keys", &res, ret_error);
        else
                r = fail_with(ret_error, -EINVAL, "unknown datasource");
        if (r < 0) {
                ds_result_free(&res);
                return r;
        }
        *ret = res;
        return 0;
}
