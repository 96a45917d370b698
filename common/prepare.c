#include "prepare.h"
#include "fs.h"
#include "plan.h"
#include "yaml.h"

#include <errno.h>

static int load_manifest(const struct bundle *b, const struct prepare_options *o, struct planned *p,
                         struct diags *d)
{
        const char *id = p->bm->id;
        _cleanup_free_ char *member = strprintf("modules/%s/manifest.yml", id);
        const struct archive_member *am = member_list_find(&b->members, member);
        _cleanup_node_ struct node *doc = NULL;
        int k;

        if (am) {
                /* Named as the user knows the bundle: "DIR/modules/x/manifest.yml". */
                _cleanup_free_ char *file =
                        b->label ? strprintf("%s/%s", b->label, member) : xstrdup(member);
                p->from_bundle = true;
                k = yaml_parse(file, (const char *)am->data, am->size, &doc, d);
                if (k < 0)
                        return k;
                k = manifest_parse(doc, &p->m, d);
                if (k < 0)
                        return k;
                p->dir = o->unpack_dir ? strprintf("%s/modules/%s", o->unpack_dir, id)
                                       : strprintf("modules/%s", id);
                _cleanup_free_ char *script = strprintf("modules/%s/%s", id, p->m->install_script);
                if (!member_list_find(&b->members, script)) {
                        diags_at(d, p->bm->where, "module '%s': the bundle has no %s", id, script);
                        return -ENOENT;
                }
        } else {
                _cleanup_free_ char *dir = strprintf("%s/%s", o->modules_dir, id);
                p->dir = root_path(o->root, dir);
                _cleanup_free_ char *path = strprintf("%s/manifest.yml", p->dir);
                if (!path_exists(path)) {
                        diags_at(d, p->bm->where,
                                 "module '%s' is neither in the bundle (modules/%s/) nor in %s", id,
                                 id, o->modules_dir);
                        return -ENOENT;
                }
                k = manifest_load(path, &p->m, d);
                if (k < 0)
                        return k;
                _cleanup_free_ char *script = strprintf("%s/%s", p->dir, p->m->install_script);
                if (access(script, R_OK) < 0) {
                        diags_add(d, path, 0, 0, "module '%s': %s is missing", id, script);
                        return -ENOENT;
                }
        }
        if (!streq(p->m->id, id)) {
                diags_at(d, p->bm->where, "module '%s': its manifest says id '%s'", id, p->m->id);
                return -EINVAL;
        }
        return 0;
}

int prepare_modules(const struct bundle *b, const struct prepare_options *o, struct planned **ret,
                    size_t *ret_n, struct diags *d)
{
        size_t n = b->n_modules, before = d->n;
        struct planned *mods = xcalloc(n, sizeof(*mods));
        _cleanup_free_ char *err = NULL;
        size_t culprit = 0;
        int k;

        for (size_t i = 0; i < n; i++) {
                struct planned *p = &mods[i];
                p->bm = &b->modules[i];
                if (load_manifest(b, o, p, d) < 0)
                        continue;
                manifest_resolve_inputs(p->m, p->bm->inputs, p->bm->where, d, &p->in);
                if (!o->check_host)
                        continue;
                if (p->m->n_os) {
                        _cleanup_free_ char *e = NULL;
                        if (plan_check_os(o->root, p->m->os, p->m->n_os, &e) < 0)
                                diags_at(d, p->bm->where, "module '%s': %s", p->bm->id, e);
                }
                if (p->m->min_ram_mb || p->m->min_disk_mb) {
                        _cleanup_free_ char *e = NULL;
                        if (plan_check_resources(o->root, "/proc/meminfo", p->m->min_ram_mb,
                                                 p->m->min_disk_mb, &e) < 0)
                                diags_at(d, p->bm->where, "module '%s': %s", p->bm->id, e);
                }
        }
        if (d->n > before) {
                planned_free(mods, n);
                return -EINVAL;
        }

        struct plan_item *items = xcalloc(n, sizeof(*items));
        size_t *order = xcalloc(n, sizeof(*order));
        for (size_t i = 0; i < n; i++)
                items[i] =
                        (struct plan_item){mods[i].bm->id, mods[i].m->after, mods[i].m->requires};
        k = plan_order(items, n, order, &err, &culprit);
        free(items);
        if (k < 0) {
                /* At the bundle.yaml entry of the module the error is about. */
                diags_at(d, culprit < n ? mods[culprit].bm->where : b->doc, "%s",
                         err ? err : "cannot order the modules");
                free(order);
                planned_free(mods, n);
                return k;
        }
        struct planned *sorted = xcalloc(n, sizeof(*sorted));
        for (size_t i = 0; i < n; i++)
                sorted[i] = mods[order[i]];
        free(order);
        free(mods);
        *ret = sorted;
        *ret_n = n;
        return 0;
}

void planned_free(struct planned *p, size_t n)
{
        for (size_t i = 0; p && i < n; i++) {
                manifest_free(p[i].m);
                free(p[i].dir);
                input_values_free(&p[i].in);
        }
        free(p);
}
