#include "state.h"
#include "fs.h"
#include "json.h"

#include <errno.h>

static const char *const module_states[] = {
        [MOD_PENDING] = "pending", [MOD_RUNNING] = "running", [MOD_DONE] = "done",
        [MOD_FAILED] = "failed",   [MOD_SKIPPED] = "skipped",
};
static const char *const run_states[] = {
        [RUN_RUNNING] = "running",
        [RUN_READY] = "ready",
        [RUN_FAILED] = "failed",
};

const char *module_state_to_string(enum module_state s)
{
        return module_states[s];
}

const char *run_state_to_string(enum run_state s)
{
        return run_states[s];
}

struct module_status *run_status_add(struct run_status *s, const char *id)
{
        s->modules = xrealloc(s->modules, (s->n_modules + 1) * sizeof(*s->modules));
        struct module_status *m = &s->modules[s->n_modules++];
        *m = (struct module_status){.id = xstrdup(id), .exit_code = -1};
        return m;
}

struct module_status *run_status_find(const struct run_status *s, const char *id)
{
        for (size_t i = 0; i < s->n_modules; i++)
                if (streq(s->modules[i].id, id))
                        return &s->modules[i];
        return NULL;
}

static void set_opt_str(struct node *n, const char *key, const char *v)
{
        if (v)
                node_set_str(n, key, v);
        else
                node_set_null(n, key);
}

struct node *run_status_to_node(const struct run_status *s)
{
        struct node *n = node_new(NODE_MAP), *mods = node_new(NODE_SEQ), *ph = node_new(NODE_MAP);
        unsigned counts[5] = {0};

        if (!n || !mods || !ph)
                abort();
        node_set_int(n, "version", 1);
        node_set_str(n, "state", run_state_to_string(s->state));
        set_opt_str(n, "instance_id", s->instance_id);
        set_opt_str(n, "source", s->source);
        set_opt_str(n, "hostname", s->hostname);
        set_opt_str(n, "bundle", s->bundle);
        node_set_int(n, "boot", s->boot);
        node_set_int(n, "started_ms", s->started_ms);
        node_set_int(n, "finished_ms", s->finished_ms);
        node_set_int(n, "agent_ms", s->agent_ms);
        set_opt_str(n, "current", s->current);
        set_opt_str(n, "error", s->error);
        set_opt_str(n, "ready_marker", s->ready_marker);
        for (size_t i = 0; i < s->n_modules; i++) {
                const struct module_status *m = &s->modules[i];
                struct node *e = node_new(NODE_MAP);
                if (!e)
                        abort();
                counts[m->state]++;
                node_set_str(e, "id", m->id);
                node_set_str(e, "state", module_state_to_string(m->state));
                set_opt_str(e, "frequency", m->frequency);
                node_set_int(e, "attempts", m->attempts);
                if (m->exit_code >= 0)
                        node_set_int(e, "exit_code", m->exit_code);
                else
                        node_set_null(e, "exit_code");
                node_set_int(e, "started_ms", m->started_ms);
                node_set_int(e, "duration_ms", m->duration_ms);
                node_set_bool(e, "ran", m->ran);
                set_opt_str(e, "reason", m->reason);
                set_opt_str(e, "why", m->why);
                node_append(mods, NULL, e);
        }
        struct node *c = node_new(NODE_MAP);
        if (!c)
                abort();
        for (size_t i = 0; i < ARRAY_SIZE(module_states); i++)
                node_set_int(c, module_states[i], counts[i]);
        node_set(n, "counts", c);
        if (s->dropped_files) {
                struct node *df = node_new(NODE_SEQ);
                if (!df)
                        abort();
                for (size_t i = 0; s->dropped_files[i]; i++)
                        node_append(df, NULL, node_new_scalar(SCALAR_STR, s->dropped_files[i]));
                node_set(n, "dropped_files", df);
        }
        node_set(n, "modules", mods);
        node_set_str(ph, "state", s->phone_home ? s->phone_home : "none");
        node_set_int(ph, "attempts", s->phone_home_attempts);
        set_opt_str(ph, "error", s->phone_home_error);
        node_set_int(ph, "progress_sent", s->progress_sent);
        node_set_int(ph, "progress_dropped", s->progress_dropped);
        node_set(n, "phone_home", ph);
        return n;
}

int run_status_write(int rootfd, const char *path, const struct run_status *s, bool sync)
{
        _cleanup_node_ struct node *n = run_status_to_node(s);
        _cleanup_free_ char *text = NULL;
        int r = json_format(n, true, &text);
        if (r < 0)
                return r;
        _cleanup_free_ char *line = strprintf("%s\n", text);
        if (!line)
                return -ENOMEM;
        r = root_write_file(rootfd, path, 0700, line, strlen(line), 0600, (uid_t)-1, (gid_t)-1,
                            sync ? 0 : WRITE_NOSYNC);
        if (r < 0)
                return r;
        /* Unchanged: the same text may stand there from a write that was
         * not synced. Durable means synced, whoever wrote it. */
        if (r == 0 && sync) {
                _cleanup_free_ char *dir = xstrdup(path);
                char *slash = strrchr(dir, '/');
                if (slash && slash != dir)
                        *slash = '\0';
                r = root_fsync(rootfd, path);
                if (r >= 0 && slash)
                        r = root_fsync(rootfd, dir);
                if (r < 0)
                        return r;
        }
        return 0;
}

static char *get_str(const struct node *n, const char *key)
{
        return strdup_null(node_get_str(n, key));
}

static long long get_int(const struct node *n, const char *key)
{
        long long v = 0;
        node_as_int(node_get(n, key), &v);
        return v;
}

int run_status_read(int rootfd, const char *path, const char *label, struct run_status *ret,
                    struct diags *d)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_node_ struct node *n = NULL;
        struct run_status s = {0};
        size_t len;
        int r;

        if (!path)
                return -EINVAL;
        if (!label)
                label = path;
        r = root_read_file(rootfd, path, 16 * 1024 * 1024, &text, &len);
        if (r < 0)
                return r;
        r = json_parse(label, text, len, &n, d);
        if (r < 0)
                return r;
        if (n->kind != NODE_MAP) {
                diags_add(d, label, 0, 0, "not a status object");
                return -EBADMSG;
        }
        const char *st = node_get_str(n, "state");
        for (size_t i = 0; i < ARRAY_SIZE(run_states); i++)
                if (st && streq(st, run_states[i]))
                        s.state = (enum run_state)i;
        s.instance_id = get_str(n, "instance_id");
        s.source = get_str(n, "source");
        s.hostname = get_str(n, "hostname");
        s.bundle = get_str(n, "bundle");
        s.boot = (unsigned)get_int(n, "boot");
        s.started_ms = get_int(n, "started_ms");
        s.finished_ms = get_int(n, "finished_ms");
        s.agent_ms = get_int(n, "agent_ms");
        s.current = get_str(n, "current");
        s.error = get_str(n, "error");
        s.ready_marker = get_str(n, "ready_marker");
        const struct node *mods = node_get(n, "modules");
        for (size_t i = 0; mods && mods->kind == NODE_SEQ && i < mods->n_items; i++) {
                const struct node *e = mods->items[i];
                const char *id = node_get_str(e, "id");
                if (!id)
                        continue;
                struct module_status *m = run_status_add(&s, id);
                const char *ms = node_get_str(e, "state");
                for (size_t k = 0; k < ARRAY_SIZE(module_states); k++)
                        if (ms && streq(ms, module_states[k]))
                                m->state = (enum module_state)k;
                m->frequency = get_str(e, "frequency");
                m->attempts = (unsigned)get_int(e, "attempts");
                long long ec;
                m->exit_code = node_as_int(node_get(e, "exit_code"), &ec) == 0 ? (int)ec : -1;
                m->started_ms = get_int(e, "started_ms");
                m->duration_ms = get_int(e, "duration_ms");
                bool ran = false;
                node_as_bool(node_get(e, "ran"), &ran);
                m->ran = ran;
                m->reason = get_str(e, "reason");
                m->why = get_str(e, "why");
        }
        const struct node *df = node_get(n, "dropped_files");
        for (size_t i = 0; df && df->kind == NODE_SEQ && i < df->n_items; i++)
                if (df->items[i]->kind == NODE_SCALAR)
                        strv_extend(&s.dropped_files, df->items[i]->value);
        const struct node *ph = node_get(n, "phone_home");
        s.phone_home = get_str(ph, "state");
        s.phone_home_attempts = (unsigned)get_int(ph, "attempts");
        s.phone_home_error = get_str(ph, "error");
        s.progress_sent = (unsigned)get_int(ph, "progress_sent");
        s.progress_dropped = (unsigned)get_int(ph, "progress_dropped");
        *ret = s;
        return 0;
}

void run_status_free(struct run_status *s)
{
        for (size_t i = 0; i < s->n_modules; i++) {
                free(s->modules[i].id);
                free(s->modules[i].frequency);
                free(s->modules[i].reason);
                free(s->modules[i].why);
        }
        free(s->modules);
        free(s->instance_id);
        free(s->source);
        free(s->hostname);
        free(s->bundle);
        free(s->error);
        free(s->current);
        free(s->ready_marker);
        free(s->phone_home);
        free(s->phone_home_error);
        strv_free(s->dropped_files);
        *s = (struct run_status){0};
}
