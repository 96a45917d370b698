/* The secrets store; see secrets.h. */
#include "secrets.h"

#include <errno.h>
#include <limits.h>
#include <libgen.h>
#include <sys/stat.h>

#include "crypto.h"
#include "diag.h"
#include "fs.h"
#include "json.h"
#include "util.h"

#define STATE_MAX_SIZE (4 * 1024 * 1024)
#define STATE_VERSION  1

struct secrets {
        char *path;
        struct node *doc;   /* the whole state file */
        struct node *store; /* doc["secrets"] */
        bool dirty;
};

static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* n characters drawn uniformly from [A-Za-z0-9]: bytes of 248 and above
 * are dropped so that every character is equally likely (248 = 4 * 62). */
static int random_alnum(char *ret, size_t n)
{
        unsigned char b[64];
        size_t i = 0;

        while (i < n) {
                int r = random_bytes(b, sizeof(b));
                if (r < 0)
                        return r;
                for (size_t k = 0; k < sizeof(b) && i < n; k++)
                        if (b[k] < 248)
                                ret[i++] = alnum[b[k] % 62];
        }
        ret[n] = '\0';
        return 0;
}

static int random_hex(char *ret, size_t n_bytes)
{
        static const char digits[] = "0123456789abcdef";
        unsigned char b[64];

        if (n_bytes > sizeof(b))
                return -EINVAL;
        int r = random_bytes(b, n_bytes);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_bytes; i++) {
                ret[2 * i] = digits[b[i] >> 4];
                ret[2 * i + 1] = digits[b[i] & 15];
        }
        ret[2 * n_bytes] = '\0';
        return 0;
}

static int random_base64(char *ret, size_t n_bytes)
{
        unsigned char b[64];
        _cleanup_free_ char *text = NULL;

        if (n_bytes > sizeof(b))
                return -EINVAL;
        int r = random_bytes(b, n_bytes);
        if (r >= 0)
                r = base64_encode(b, n_bytes, 0, &text);
        explicit_bzero(b, sizeof(b));
        if (r < 0)
                return r;
        if (strlen(text) > 128)
                return -EINVAL;
        strcpy(ret, text);
        explicit_bzero(text, strlen(text));
        return 0;
}

static int generate(enum secret_kind kind, char ret[129])
{
        switch (kind) {
        case SECRET_KEY32:
                return random_base64(ret, 32);
        case SECRET_TOKEN:
                return random_hex(ret, 32);
        case SECRET_API_KEY:
                return random_alnum(ret, 40);
        case SECRET_PASSWORD:
                break;
        }
        return random_alnum(ret, 32);
}

/* Checks what a state file holds: a map, "version" 1 when given, and
 * "secrets" a map of non-empty strings (created when absent). */
static int check_doc(struct secrets *s, char **err)
{
        struct node *doc = s->doc, *v;
        long long version;

        if (doc->kind != NODE_MAP) {
                *err = strprintf("%s: not a secrets store: the top level must be an object, not %s",
                                 s->path, node_kind_name(doc));
                return -EBADMSG;
        }
        v = node_get(doc, "version");
        if (v && (node_as_int(v, &version) < 0 || version != STATE_VERSION)) {
                *err = strprintf("%s: unsupported \"version\" %s (this imagegen reads version %d)",
                                 s->path, v->kind == NODE_SCALAR ? v->value : "", STATE_VERSION);
                return -EBADMSG;
        }
        s->store = node_get(doc, "secrets");
        if (!s->store) {
                if (node_set(doc, "secrets", node_new(NODE_MAP)) < 0)
                        return -ENOMEM;
                s->store = node_get(doc, "secrets");
                return 0;
        }
        if (s->store->kind != NODE_MAP) {
                *err = strprintf("%s: \"secrets\" must be an object, not %s", s->path,
                                 node_kind_name(s->store));
                return -EBADMSG;
        }
        for (size_t i = 0; i < s->store->n_items; i++) {
                const struct node *e = s->store->items[i];
                if (e->kind != NODE_SCALAR || node_resolve(e) != SCALAR_STR) {
                        *err = strprintf("%s: secret \"%s\" must be a string, not %s", s->path,
                                         e->key, node_kind_name(e));
                        return -EBADMSG;
                }
                if (!e->value[0]) {
                        *err = strprintf("%s: secret \"%s\" is empty", s->path, e->key);
                        return -EBADMSG;
                }
        }
        return 0;
}

static int load_file(struct secrets *s, char **err)
{
        _cleanup_free_ char *text = NULL;
        struct diags d = {0};
        struct stat st;
        size_t len;
        int r;

        if (stat(s->path, &st) < 0) {
                if (errno == ENOENT)
                        return 0;
                r = -errno;
                *err = strprintf("%s: %s", s->path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                *err = strprintf("%s: not a regular file", s->path);
                return -EINVAL;
        }
        /* Like ssh with its keys: a store others can read is refused, not
         * silently fixed, since its secrets may already have leaked. */
        if (st.st_mode & 077) {
                *err = strprintf("%s: permissions %04o are too open: the file holds secrets and "
                                 "must be accessible by its owner only (chmod 600 %s)",
                                 s->path, (unsigned)(st.st_mode & 07777), s->path);
                return -EPERM;
        }
        r = read_file(s->path, STATE_MAX_SIZE, &text, &len);
        if (r < 0) {
                *err = strprintf("%s: %s", s->path, strerror(-r));
                return r;
        }
        node_free(s->doc);
        s->doc = NULL;
        s->store = NULL;
        r = json_parse(s->path, text, len, &s->doc, &d);
        explicit_bzero(text, len);
        if (r < 0) {
                if (d.n > 0) {
                        _cleanup_free_ char *m = diag_format(&d.v[0]);
                        *err = strprintf("%s (the secrets store is corrupt)", m);
                } else
                        *err = strprintf("%s: %s", s->path, strerror(-r));
                diags_free(&d);
                return r;
        }
        return check_doc(s, err);
}

int secrets_load(const char *path, struct secrets **ret, char **err)
{
        struct secrets *s = calloc(1, sizeof(*s));
        int r;

        *err = NULL;
        if (!s)
                return -ENOMEM;
        s->path = strdup(path);
        s->doc = node_new(NODE_MAP);
        if (!s->path || !s->doc || node_set_int(s->doc, "version", STATE_VERSION) < 0 ||
            node_set(s->doc, "secrets", node_new(NODE_MAP)) < 0) {
                secrets_free(s);
                return -ENOMEM;
        }
        s->store = node_get(s->doc, "secrets");
        r = load_file(s, err);
        if (r < 0) {
                if (!*err)
                        *err = strprintf("%s: %s", path, strerror(-r));
                secrets_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

const char *secrets_get(struct secrets *s, const char *name, enum secret_kind kind)
{
        char value[129];
        struct node *n = node_get(s->store, name);

        if (n)
                return n->value;
        if (generate(kind, value) < 0)
                return NULL;
        n = node_new_scalar(SCALAR_STR, value);
        explicit_bzero(value, sizeof(value));
        if (node_append(s->store, name, n) < 0)
                return NULL;
        s->dirty = true;
        return n->value;
}

bool secrets_dirty(const struct secrets *s)
{
        return s->dirty;
}

int secrets_serial_get(const struct secrets *s, const char *key, long long *ret_serial,
                       const char **ret_digest)
{
        const struct node *all = node_get(s->doc, "serials");
        long long serial;

        if (!all)
                return -ENOENT;
        if (all->kind != NODE_MAP)
                return -EBADMSG;
        const struct node *e = node_get(all, key);
        if (!e)
                return -ENOENT;
        const char *digest = e->kind == NODE_MAP ? node_get_str(e, "sha256") : NULL;
        if (!digest || node_as_int(node_get(e, "serial"), &serial) < 0 || serial < 0)
                return -EBADMSG;
        *ret_serial = serial;
        *ret_digest = digest;
        return 0;
}

int secrets_serial(struct secrets *s, const char *key, const char *digest, long long *ret)
{
        struct node *all = node_get(s->doc, "serials");
        const char *last = NULL;
        long long serial = 0;
        int r = secrets_serial_get(s, key, &serial, &last);

        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0 && streq(last, digest)) {
                *ret = serial;
                return 0;
        }
        if (serial == LLONG_MAX)
                return -EOVERFLOW;
        if (!all) {
                all = node_new(NODE_MAP);
                if (!all || node_set(s->doc, "serials", all) < 0)
                        return -ENOMEM;
        }
        struct node *n = node_new(NODE_MAP);
        if (!n || node_set_int(n, "serial", serial + 1) < 0 ||
            node_set_str(n, "sha256", digest) < 0 || node_set(all, key, n) < 0)
                return -ENOMEM;
        s->dirty = true;
        *ret = serial + 1;
        return 0;
}

const char *secrets_path(const struct secrets *s)
{
        return s->path;
}

int secrets_save(struct secrets *s, char **err)
{
        _cleanup_free_ char *copy = NULL, *text = NULL, *data = NULL;
        int r;

        *err = NULL;
        if (!s->dirty)
                return 0;
        copy = strdup(s->path);
        if (!copy)
                return -ENOMEM;
        r = mkdir_p(dirname(copy), 0700);
        if (r < 0) {
                *err = strprintf("%s: cannot create its directory: %s", s->path, strerror(-r));
                return r;
        }
        r = json_format(s->doc, true, &text);
        if (r < 0) {
                *err = strprintf("%s: %s", s->path, strerror(-r));
                return r;
        }
        data = strprintf("%s\n", text);
        if (!data)
                return -ENOMEM;
        r = write_file_atomic(s->path, data, strlen(data), 0600, (uid_t)-1, (gid_t)-1);
        explicit_bzero(data, strlen(data));
        explicit_bzero(text, strlen(text));
        if (r < 0) {
                *err = strprintf("%s: cannot write: %s", s->path, strerror(-r));
                return r;
        }
        s->dirty = false;
        return 1;
}

void secrets_free(struct secrets *s)
{
        if (!s)
                return;
        for (size_t i = 0; s->store && i < s->store->n_items; i++) {
                char *v = s->store->items[i]->value;
                if (v)
                        explicit_bzero(v, strlen(v));
        }
        node_free(s->doc);
        free(s->path);
        free(s);
}
