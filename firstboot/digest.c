#include "digest.h"
#include "crypto.h"
#include "fs.h"

#include <errno.h>

#define MODULE_FILE_MAX (16 * 1024 * 1024)
#define MARK_PARTS_MAX  4096

static bool is_hex(const char *s, size_t n)
{
        if (strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("0123456789abcdef", s[i]))
                        return false;
        return true;
}

#define LIB_MARKER "/" MODULES_LIB_DIR "/"

/* The sha256 of a module file: the bundle's member, or the file in the
 * modules directory. *ret_uses_lib (when asked): whether it names the
 * shared helpers' folder, as a script sourcing them does. */
static int hash_module_file(const struct bundle *b, const struct planned *p, const char *name,
                            char ret[65], bool *ret_uses_lib)
{
        _cleanup_free_ char *data = NULL;
        const void *bytes;
        size_t len = 0;

        if (p->from_bundle) {
                _cleanup_free_ char *member = strprintf("modules/%s/%s", p->bm->id, name);
                const struct archive_member *am = member_list_find(&b->members, member);
                if (!am)
                        return -ENOENT;
                bytes = am->data;
                len = am->size;
        } else {
                _cleanup_free_ char *path = strprintf("%s/%s", p->dir, name);
                int k = read_file(path, MODULE_FILE_MAX, &data, &len);
                if (k < 0)
                        return k;
                bytes = data;
        }
        sha256_hex(bytes, len, ret);
        if (ret_uses_lib)
                *ret_uses_lib = len > 0 && memmem(bytes, len, LIB_MARKER, strlen(LIB_MARKER));
        return 0;
}

/* The sha256 of the modules' shared helpers (modules/_lib/), over "PATH
 * SHA256" lines in path order: the bundle's when the module came in it,
 * else those beside the module in the modules directory. None there is
 * the hash of no lines: the module then fails saying what is missing. */
static int hash_module_lib(const struct bundle *b, const struct planned *p, char ret[65])
{
        _cleanup_strv_free_ char **lines = NULL;
        struct member_list ml = {0};
        const struct member_list *from = &b->members;
        const char *prefix = "modules/" MODULES_LIB_DIR "/";

        if (!p->from_bundle) {
                _cleanup_free_ char *dir = strprintf("%s/../%s", p->dir, MODULES_LIB_DIR);
                struct diags d = {0};
                if (is_dir(dir) && bundle_members_from_dir(dir, &ml, &d) < 0) {
                        diags_free(&d);
                        return -EBADMSG;
                }
                diags_free(&d);
                from = &ml;
                prefix = "";
        }
        for (size_t i = 0; i < from->n; i++) {
                const struct archive_member *m = &from->v[i];
                char h[65];
                if (!startswith(m->path, prefix))
                        continue;
                sha256_hex(m->data, m->size, h);
                _cleanup_free_ char *line = strprintf("%s %s", m->path + strlen(prefix), h);
                strv_extend(&lines, line);
        }
        member_list_free(&ml);
        size_t n = strv_length(lines);
        if (n > 1)
                strv_sort(lines, n);
        _cleanup_free_ char *all = strv_join(lines, "\n");
        sha256_hex(all, strlen(all), ret);
        return 0;
}

static void add_part(struct digest_part **v, size_t *n, const char *name, const char *hash)
{
        *v = xrealloc(*v, (*n + 1) * sizeof(**v));
        (*v)[*n].name = xstrdup(name);
        memcpy((*v)[*n].hash, hash, 65);
        (*n)++;
}

/* The digest covers the parts as the mark lists them, so a mark that was
 * edited by hand does not match its digest line. */
static void seal(struct module_digest *d)
{
        struct buf b = {0};
        buf_printf(&b, "manifest %s\nscript %s\n", d->manifest, d->script);
        if (d->lib[0])
                buf_printf(&b, "lib %s\n", d->lib);
        for (size_t i = 0; i < d->n_inputs; i++)
                buf_printf(&b, "input %s %s\n", d->inputs[i].name, d->inputs[i].hash);
        for (size_t i = 0; i < d->n_watches; i++)
                buf_printf(&b, "watch %s %s\n", d->watches[i].hash, d->watches[i].name);
        sha256_hex(b.data ? b.data : "", b.len, d->digest);
        buf_free(&b);
}

int module_digest_compute(const struct bundle *b, const struct planned *p, const char *salt,
                          struct module_digest *ret)
{
        struct module_digest d = {0};
        int k;

        if (!is_hex(salt, 32))
                return -EINVAL;
        memcpy(d.salt, salt, 33);
        bool uses_lib = false;
        k = hash_module_file(b, p, MANIFEST_FILE, d.manifest, NULL);
        if (k >= 0)
                k = hash_module_file(b, p, p->m->install_script, d.script, &uses_lib);
        if (k >= 0 && uses_lib)
                k = hash_module_lib(b, p, d.lib);
        if (k < 0)
                return k;
        for (size_t i = 0; i < p->in.n; i++) {
                const struct input_value *v = &p->in.v[i];
                char h[65];
                struct buf text = {0};
                /* Name and value, NUL between: "a"+"bc" is not "ab"+"c". */
                buf_append(&text, v->name, strlen(v->name) + 1);
                buf_append(&text, v->value, strlen(v->value));
                hmac_sha256_hex(d.salt, 32, text.data, text.len, h);
                explicit_bzero(text.data, text.len);
                buf_free(&text);
                add_part(&d.inputs, &d.n_inputs, v->name, h);
        }
        for (size_t i = 0; i < p->m->n_watches; i++) {
                const char *path = p->m->watches[i].path;
                const struct bundle_file *f = bundle_find_file(b, path);
                const struct archive_member *am =
                        f && f->source ? member_list_find(&b->members, f->source) : NULL;
                char h[65];
                /* A watched file this bundle does not ship (or removes)
                 * is no part: the stack's modules watch what every
                 * configuration of a site may write, and one appearing
                 * or going away is a change like any other. A source
                 * the bundle lists but lacks was refused when it was
                 * parsed. */
                if (!f || f->absent)
                        continue;
                if (!am) {
                        module_digest_free(&d);
                        return -ENOENT;
                }
                sha256_hex(am->data, am->size, h);
                add_part(&d.watches, &d.n_watches, path, h);
        }
        seal(&d);
        *ret = d;
        return 0;
}

char *module_digest_format(const struct module_digest *d, const char *instance_id,
                           long long finished_ms)
{
        struct buf b = {0};
        buf_printf(&b,
                   DONE_MARK_MAGIC "\ninstance %s\nfinished_ms %lld\nsalt %s\ndigest %s\n"
                                   "manifest %s\nscript %s\n",
                   instance_id, finished_ms, d->salt, d->digest, d->manifest, d->script);
        if (d->lib[0])
                buf_printf(&b, "lib %s\n", d->lib);
        for (size_t i = 0; i < d->n_inputs; i++)
                buf_printf(&b, "input %s %s\n", d->inputs[i].name, d->inputs[i].hash);
        for (size_t i = 0; i < d->n_watches; i++)
                buf_printf(&b, "watch %s %s\n", d->watches[i].hash, d->watches[i].name);
        return buf_steal(&b);
}

/* "KEY HEX" into out (65 bytes), or false. */
static bool hex_field(const char *line, const char *key, char *out)
{
        size_t n = strlen(key);
        if (strncmp(line, key, n) != 0 || line[n] != ' ' || !is_hex(line + n + 1, 64))
                return false;
        memcpy(out, line + n + 1, 65);
        return true;
}

int module_digest_parse(const char *text, size_t len, struct module_digest *ret)
{
        struct module_digest d = {0};
        bool has_salt = false, has_digest = false, has_manifest = false, has_script = false,
             has_lib = false;
        size_t n_lines = 0;

        if (len > DONE_MARK_MAX || memchr(text, '\0', len))
                return 0;
        _cleanup_free_ char *copy = xstrndup(text, len);
        char *save = NULL;
        char *line = strtok_r(copy, "\n", &save);
        if (!line || !streq(line, DONE_MARK_MAGIC))
                return 0;
        while ((line = strtok_r(NULL, "\n", &save))) {
                if (++n_lines > MARK_PARTS_MAX)
                        goto bad;
                if (startswith(line, "instance ") || startswith(line, "finished_ms "))
                        continue;
                if (startswith(line, "salt ")) {
                        if (has_salt || !is_hex(line + 5, 32))
                                goto bad;
                        memcpy(d.salt, line + 5, 33);
                        has_salt = true;
                } else if (startswith(line, "digest ")) {
                        if (has_digest || !hex_field(line, "digest", d.digest))
                                goto bad;
                        has_digest = true;
                } else if (startswith(line, "manifest ")) {
                        if (has_manifest || !hex_field(line, "manifest", d.manifest))
                                goto bad;
                        has_manifest = true;
                } else if (startswith(line, "script ")) {
                        if (has_script || !hex_field(line, "script", d.script))
                                goto bad;
                        has_script = true;
                } else if (startswith(line, "lib ")) {
                        if (has_lib || !hex_field(line, "lib", d.lib))
                                goto bad;
                        has_lib = true;
                } else if (startswith(line, "input ")) {
                        /* "input NAME HEX": names have no spaces (manifest.c). */
                        char *name = line + 6, *sp = strchr(name, ' ');
                        if (!sp || sp == name || !is_hex(sp + 1, 64))
                                goto bad;
                        *sp = '\0';
                        add_part(&d.inputs, &d.n_inputs, name, sp + 1);
                } else if (startswith(line, "watch ")) {
                        /* "watch HEX PATH": the path last, whatever it holds. */
                        char h[65];
                        if (strlen(line) < 6 + 64 + 2 || line[6 + 64] != ' ' ||
                            line[6 + 64 + 1] != '/')
                                goto bad;
                        memcpy(h, line + 6, 64);
                        h[64] = '\0';
                        if (!is_hex(h, 64))
                                goto bad;
                        add_part(&d.watches, &d.n_watches, line + 6 + 64 + 1, h);
                } else
                        goto bad;
        }
        if (!has_salt || !has_digest || !has_manifest || !has_script)
                goto bad;
        /* A mark whose parts do not give its digest was changed by hand
         * or torn: the module runs again. */
        char check[65];
        memcpy(check, d.digest, 65);
        seal(&d);
        if (!streq(check, d.digest))
                goto bad;
        *ret = d;
        return 1;
bad:
        module_digest_free(&d);
        return 0;
}

static const struct digest_part *find_part(const struct digest_part *v, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (streq(v[i].name, name))
                        return &v[i];
        return NULL;
}

/* Names in a (then those only in b) whose hashes differ, into out. */
static void changed_parts(const struct digest_part *a, size_t na, const struct digest_part *b,
                          size_t nb, char ***out)
{
        for (size_t i = 0; i < na; i++) {
                const struct digest_part *o = find_part(b, nb, a[i].name);
                if (!o || !streq(o->hash, a[i].hash))
                        strv_extend(out, a[i].name);
        }
        for (size_t i = 0; i < nb; i++)
                if (!find_part(a, na, b[i].name))
                        strv_extend(out, b[i].name);
}

char *module_digest_changes(const struct module_digest *old, const struct module_digest *now)
{
        _cleanup_strv_free_ char **inputs = NULL, **watches = NULL;
        struct buf b = {0};

        if (streq(old->digest, now->digest))
                return NULL;
        if (!streq(old->manifest, now->manifest))
                buf_printf(&b, "%smanifest changed", b.len ? "; " : "");
        if (!streq(old->script, now->script))
                buf_printf(&b, "%sscript changed", b.len ? "; " : "");
        if (!streq(old->lib, now->lib))
                buf_printf(&b, "%smodules' shared library changed", b.len ? "; " : "");
        changed_parts(now->inputs, now->n_inputs, old->inputs, old->n_inputs, &inputs);
        if (inputs) {
                _cleanup_free_ char *j = strv_join(inputs, ", ");
                buf_printf(&b, "%sinputs changed: %s", b.len ? "; " : "", j);
        }
        changed_parts(now->watches, now->n_watches, old->watches, old->n_watches, &watches);
        for (size_t i = 0; watches && watches[i]; i++)
                buf_printf(&b, "%swatched file changed: %s", b.len ? "; " : "", watches[i]);
        if (!b.len) /* the same parts in another order */
                buf_puts(&b, "digest changed");
        return buf_steal(&b);
}

void module_digest_free(struct module_digest *d)
{
        for (size_t i = 0; i < d->n_inputs; i++)
                free(d->inputs[i].name);
        for (size_t i = 0; i < d->n_watches; i++)
                free(d->watches[i].name);
        free(d->inputs);
        free(d->watches);
        *d = (struct module_digest){0};
}

static int new_salt(char ret[33])
{
        unsigned char raw[16];
        int k = random_bytes(raw, sizeof(raw));
        if (k < 0)
                return k;
        for (size_t i = 0; i < sizeof(raw); i++)
                snprintf(ret + 2 * i, 3, "%02x", raw[i]);
        return 0;
}

int module_decide(const struct bundle *b, const struct planned *p, const char *mark,
                  size_t mark_len, bool failed_last, struct module_digest *ret_now, char **ret_why)
{
        struct module_digest old = {0}, now = {0};
        char salt[33];
        int k, has = mark ? module_digest_parse(mark, mark_len, &old) : 0;

        if (has < 0)
                return has;
        if (has > 0)
                memcpy(salt, old.salt, 33);
        else if ((k = new_salt(salt)) < 0)
                return k;
        k = module_digest_compute(b, p, salt, &now);
        if (k < 0) {
                module_digest_free(&old);
                return k;
        }
        char *why = NULL;
        int run = 1;
        _cleanup_strv_free_ char **changed = NULL, **reprov = NULL;
        if (has > 0 && p->m->frequency != FREQ_ONCE && p->m->reprovision) {
                changed_parts(now.inputs, now.n_inputs, old.inputs, old.n_inputs, &changed);
                for (size_t i = 0; changed && changed[i]; i++)
                        if (strv_contains(p->m->reprovision, changed[i]))
                                strv_extend(&reprov, changed[i]);
        }
        if (reprov) {
                _cleanup_free_ char *j = strv_join(reprov, ", ");
                why = strprintf("requires reprovisioning: %s", j);
                run = 2;
        } else if (p->m->frequency == FREQ_ALWAYS)
                why = xstrdup("frequency: always");
        else if (!mark)
                why = xstrdup(failed_last ? "failed last time" : "first run");
        else if (p->m->frequency == FREQ_ONCE) {
                why = xstrdup("done (frequency: once)");
                run = 0;
        } else if (has == 0)
                why = xstrdup("first run with digests (its done-mark has none)");
        else {
                _cleanup_free_ char *changes = module_digest_changes(&old, &now);
                /* A rerun that failed left what it changed half done,
                 * whatever its mark says. */
                if (failed_last)
                        why = changes ? strprintf("failed last time; %s", changes)
                                      : xstrdup("failed last time");
                else if (changes)
                        why = TAKE_PTR(changes);
                else {
                        why = xstrdup("unchanged");
                        run = 0;
                }
        }
        module_digest_free(&old);
        *ret_now = now;
        *ret_why = why;
        return run;
}
