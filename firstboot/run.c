/* firstboot run: from user-data to a provisioned, ready server.
 *
 * Everything that can be checked is checked before anything outside the
 * state directory is written: the user-data is decoded and verified in
 * memory, every module's manifest and inputs are validated, the order is
 * computed. Only then are files written and modules run. */
#include "bundle.h"
#include "change.h"
#include "commands.h"
#include "config.h"
#include "crypto.h"
#include "datasource.h"
#include "digest.h"
#include "events.h"
#include "facts.h"
#include "fs.h"
#include "journal.h"
#include "json.h"
#include "log.h"
#include "phonehome.h"
#include "prepare.h"
#include "runner.h"
#include "sshkeys.h"
#include "state.h"
#include "yaml.h"

#include <errno.h>
#include <sysexits.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/file.h>
#include <sys/stat.h>

struct run {
        const char *root;
        int rootfd; /* every write under the root goes through it (fs.h) */
        struct config cfg;
        char *state_dir, *log_dir, *marker, *status_path, *inst_dir;
        char **stale_markers; /* other markers an earlier run may have left */
        bool running;         /* status.json says this run is running (see mark_running) */
        struct ds_result ds;
        struct bundle *bundle;
        struct planned *mods;
        size_t n_mods;
        struct module_status **mst;    /* status of mods[i] */
        struct module_digest *digests; /* of mods[i], for its done-mark */
        bool *to_run;                  /* mods[i] runs (module_decide()) */
        char *reprovision;             /* the first module whose change needs a new server */
        struct run_status st;
        struct run_status prev; /* this instance's previous run, if any */
        long long t0, module_ms;
        char *fail_tail_module;
        char **fail_tail;
};

/* Logs a journal event with its MESSAGE_ID and the module and stage. */
/* Returns nothing: a failure is returned by its caller, never by a log
 * call (see log.h). */
_printf_(5, 6) static void log_event(int prio, const char *msgid, const char *module,
                                     const char *stage, const char *fmt, ...)
{
        _cleanup_free_ char *f1 = strprintf("MESSAGE_ID=%s", msgid ? msgid : "");
        _cleanup_free_ char *f2 = strprintf("FIRSTBOOT_MODULE=%s", module ? module : "");
        _cleanup_free_ char *f3 = strprintf("FIRSTBOOT_STAGE=%s", stage);
        char *fields[4] = {0};
        size_t n = 0;
        va_list ap;

        if (msgid)
                fields[n++] = f1;
        if (module)
                fields[n++] = f2;
        fields[n++] = f3;
        va_start(ap, fmt);
        log_fullv(prio, fields, fmt, ap);
        va_end(ap);
}

static void log_diags(const struct diags *d, const char *stage)
{
        for (size_t i = 0; i < d->n; i++) {
                _cleanup_free_ char *s = diag_format(&d->v[i]);
                log_event(LOG_ERR, NULL, NULL, stage, "%s", s);
        }
}

static char *diags_summary(const struct diags *d)
{
        if (d->n == 0)
                return xstrdup("unknown error");
        char *s = diag_format(&d->v[0]);
        if (d->n > 1) {
                char *t = strprintf("%s (and %zu more)", s, d->n - 1);
                free(s);
                s = t;
        }
        return s;
}

/* A path of this run (made under r->root) as the root sees it, for the
 * root_* calls of fs.h, which resolve it inside the root. */
static const char *in_root(const struct run *r, const char *path)
{
        return path_in_root(r->root, path);
}

/* Progress, once status.json says the run is running (see mark_running):
 * a lost update is only a stale view, which the run's end corrects. */
static void save_status(struct run *r, bool sync)
{
        if (!r->running)
                return;
        int k = run_status_write(r->rootfd, in_root(r, r->status_path), &r->st, sync);
        if (k < 0)
                log_warning_errno(k, "Failed to write %s: %m", r->status_path);
}

static void set_progress(const char *fmt, ...) _printf_(1, 2);
static void set_progress(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *s = vstrprintf(fmt, ap);
        va_end(ap);
        if (s)
                notify_status(s);
}

/* Instance ids become directory names: keep the safe ones as they are,
 * hash the rest. */
static char *instance_dir_name(const char *iid)
{
        char h[65];
        if (*iid && strlen(iid) <= 128 && !streq(iid, ".") && !streq(iid, "..") &&
            strspn(iid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
                    strlen(iid))
                return xstrdup(iid);
        sha256_hex(iid, strlen(iid), h);
        return strprintf("id-%.32s", h);
}

/* Makes *dir (a path under the root) inside the root, 0700, and sets
 * *dir to where its links led there: modules and messages then name the
 * directory the root_* calls write to, not one a link outside points at. */
static int make_dir(struct run *r, char **dir)
{
        _cleanup_close_ int fd = root_mkdir_p(r->rootfd, in_root(r, *dir), 0700);
        _cleanup_free_ char *rel = NULL;

        if (fd < 0)
                return fd;
        if (fchmod(fd, 0700) < 0)
                return -errno;
        if (root_fd_path(r->rootfd, fd, &rel) >= 0) {
                free(*dir);
                *dir = root_path(r->root, rel);
        }
        return 0;
}

/* -------- files -------- */

/* The owner of each file, resolved against the root's /etc/passwd and
 * /etc/group (the system being provisioned, not the host running us)
 * before any file is written: a missing user fails the run with nothing
 * written. Their spelling was checked by bundle_parse(). */
static int resolve_owners(const struct run *r, uid_t *uids, gid_t *gids)
{
        const struct bundle *b = r->bundle;

        for (size_t i = 0; i < b->n_files; i++) {
                const struct bundle_file *f = &b->files[i];
                uids[i] = 0;
                gids[i] = 0;
                if (!f->owner)
                        continue;
                int k = parse_owner(r->root, f->owner, &uids[i], &gids[i]);
                if (k == -ESRCH) {
                        log_event(LOG_ERR, NULL, NULL, "files",
                                  "%s: owner \"%s\" does not exist in %s/etc/passwd or "
                                  "%s/etc/group",
                                  f->path, f->owner, r->root ? r->root : "",
                                  r->root ? r->root : "");
                        return k;
                }
                if (k < 0)
                        return log_error_errno(k, "%s: cannot resolve owner \"%s\": %m", f->path,
                                               f->owner);
        }
        return 0;
}

/* A files entry with state: absent: the file goes (durably), a directory
 * there is left alone and fails the run. 1 removed, 0 not there. */
static int remove_absent(struct run *r, const char *path)
{
        int fd = root_open(r->rootfd, path, O_PATH | O_NOFOLLOW, 0);
        if (fd == -ENOENT)
                return 0;
        if (fd < 0)
                return fd;
        close(fd);
        int k = root_unlink(r->rootfd, path);
        if (k < 0)
                return k;
        _cleanup_free_ char *dir = xstrdup(path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir)
                *slash = '\0';
        k = root_fsync(r->rootfd, slash == dir ? "/" : dir);
        return k < 0 ? k : 1;
}

static int write_files(struct run *r)
{
        const struct bundle *b = r->bundle;
        _cleanup_free_ uid_t *uids = xcalloc(b->n_files + 1, sizeof(*uids));
        _cleanup_free_ gid_t *gids = xcalloc(b->n_files + 1, sizeof(*gids));
        int k = resolve_owners(r, uids, gids);

        if (k < 0)
                return k;
        for (size_t i = 0; i < b->n_files; i++) {
                const struct bundle_file *f = &b->files[i];
                _cleanup_free_ char *path = root_path(r->root, f->path);
                if (f->absent) {
                        k = remove_absent(r, f->path);
                        if (k < 0)
                                return log_error_errno(k, "Failed to remove %s: %m", path);
                        if (k > 0)
                                log_event(LOG_INFO, NULL, NULL, "files",
                                          "removed %s (state: absent)", f->path);
                        continue;
                }
                const struct archive_member *m = member_list_find(&b->members, f->source);
                uid_t uid = uids[i];
                gid_t gid = gids[i];

                if (getuid() != 0 && uid == 0 && gid == 0)
                        uid = (uid_t)-1, gid = (gid_t)-1; /* unprivileged test runs */
                k = root_write_file(r->rootfd, f->path, 0755, m->data, m->size, f->mode, uid, gid,
                                    0);
                if (k < 0)
                        return log_error_errno(k, "Failed to write %s: %m", path);
                log_event(LOG_INFO, NULL, NULL, "files", "%s %s (mode %04o%s%s)",
                          k > 0 ? "wrote" : "unchanged", f->path, f->mode,
                          f->owner ? ", owner " : "", f->owner ? f->owner : "");
        }
        const char *host = b->hostname ? b->hostname : r->ds.hostname;
        if (host) {
                _cleanup_free_ char *path = root_path(r->root, "/etc/hostname");
                _cleanup_free_ char *line = strprintf("%s\n", host);
                k = root_write_file(r->rootfd, "/etc/hostname", 0755, line, strlen(line), 0644,
                                    (uid_t)-1, (gid_t)-1, 0);
                if (k < 0)
                        return log_error_errno(k, "Failed to write %s: %m", path);
                if (!r->root && k > 0 && sethostname(host, strlen(host)) < 0)
                        log_warning_errno(errno, "Failed to set the hostname to %s: %m", host);
                if (k > 0)
                        log_event(LOG_INFO, NULL, NULL, "files", "hostname set to %s", host);
        }
        return 0;
}

/* -------- the controller -------- */

/* Where callbacks go: the bundle's phone_home, else firstboot.conf's. */
static const char *callback_url(const struct run *r, const char **ret_token)
{
        bool from_bundle = r->bundle && r->bundle->phone_url;
        *ret_token = from_bundle ? r->bundle->phone_token : r->cfg.phone_home_token;
        return from_bundle ? r->bundle->phone_url : r->cfg.phone_home_url;
}

/* A progress event (module started, finished or failed) to the
 * controller, when asked for: one attempt, bounded by
 * phone_home_progress_timeout_ms, signed like the final callback; a
 * failure only counts as dropped and never holds the run up for longer. */
static void progress_event(struct run *r, const char *event, const struct module_status *m)
{
        const char *token, *url = callback_url(r, &token);
        _cleanup_node_ struct node *n = NULL;
        _cleanup_free_ char *body = NULL, *err = NULL;

        if (!url || !(r->cfg.phone_home_progress || (r->bundle && r->bundle->phone_progress)))
                return;
        n = node_new(NODE_MAP);
        node_set_str(n, "event", event);
        node_set_str(n, "instance_id", r->st.instance_id);
        node_set_str(n, "module", m->id);
        node_set_int(n, "attempt", m->attempts);
        if (!streq(event, "module_started")) {
                node_set_int(n, "exit_code", m->exit_code);
                node_set_int(n, "duration_ms", m->duration_ms);
        }
        node_set_int(n, "time_ms", now_realtime_ms());
        struct phonehome_options o = {
                .url = url,
                .token = token,
                .timeout_ms = r->cfg.phone_home_progress_timeout_ms,
                .attempts = 1,
                .deadline_ms = r->cfg.phone_home_progress_timeout_ms,
        };
        if (json_format(n, false, &body) >= 0 && phonehome_send(&o, body, &err) > 0) {
                r->st.progress_sent++;
                return;
        }
        r->st.progress_dropped++;
        log_event(LOG_DEBUG, NULL, m->id, "phone-home", "Progress event %s dropped: %s", event,
                  err ? err : "cannot encode it");
}

/* -------- modules -------- */

static char *done_mark(struct run *r, const struct planned *p)
{
        if (p->m->frequency == FREQ_ALWAYS)
                return NULL;
        if (p->m->frequency == FREQ_ONCE)
                return strprintf("%s/once/%s", r->state_dir, p->bm->id);
        return strprintf("%s/done/%s", r->inst_dir, p->bm->id);
}

struct line_ctx {
        const char *module;
        char *fields[5];
        struct run *run;
        bool announced; /* status.json says the module is running */
};

/* status.json names the running module once it has run this long, and
 * then says when it ends: the many modules that finish at once cost no
 * status write of their own (a run of n of them would write n statuses of
 * n modules); the next write (the next module's, or the run's end) says
 * they are done. */
#define STATUS_RUNNING_AFTER_MS 50

static void on_running(void *userdata)
{
        struct line_ctx *c = userdata;
        save_status(c->run, false);
        c->announced = true;
}

static void on_line(void *userdata, int stream, const char *line)
{
        struct line_ctx *c = userdata;
        log_full(stream != 1 ? LOG_WARNING : LOG_INFO, c->fields, "%s", line);
}

static char **module_env(struct run *r, const struct planned *p, unsigned attempt)
{
        char **env =
                runner_env(r->root, r->st.instance_id, p->bm->id, p->dir, r->state_dir, attempt);
        strv_push(&env, strprintf("FIRSTBOOT_BUNDLE_DIR=%s/bundle", r->inst_dir));
        if (r->st.hostname)
                strv_push(&env, strprintf("FIRSTBOOT_HOSTNAME=%s", r->st.hostname));
        runner_env_inputs(&env, &p->in);
        return env;
}

static const char *exit_meaning(int code)
{
        switch (code) {
        case 0:
                return "success";
        case 1:
                return "validation error, not retried";
        case 2:
                return "installation error";
        case 3:
                return "configuration error, not retried";
        case 124:
                return "timed out";
        case 127:
                return "could not be executed";
        default:
                return "unexpected exit code, not retried";
        }
}

/* Runs one module with retries (exit 2 only, exponential backoff).
 * Returns 0 on success, -1 on failure. */
static int run_module(struct run *r, struct planned *p)
{
        struct module_status *st = r->mst[p - r->mods];
        _cleanup_strv_free_ char **mask = NULL;
        _cleanup_free_ char *script = strprintf("%s/%s", p->dir, p->m->install_script);
        _cleanup_free_ char *logpath = strprintf("%s/%s.log", r->log_dir, p->bm->id);
        _cleanup_free_ char *pgid_path = strprintf("%s/" RUNNER_PGID_FILE, r->state_dir);
        _cleanup_close_ int logfd = -1;
        long long t_start = now_ms();
        struct runner_result res = {0};
        int k, log_err = 0;

        for (size_t i = 0; i < p->in.n; i++)
                if (p->in.v[i].sensitive && *p->in.v[i].value)
                        strv_extend(&mask, p->in.v[i].value);
        if (r->bundle->phone_token && *r->bundle->phone_token)
                strv_extend(&mask, r->bundle->phone_token);

        k = root_mkdir_p(r->rootfd, in_root(r, r->log_dir), 0700);
        if (k >= 0) {
                close(k);
                k = logfd = root_open(r->rootfd, in_root(r, logpath),
                                      O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
                if (logfd >= 0)
                        fchmod(logfd, 0600);
        }
        if (k >= 0 && logfd < 0)
                k = -errno;
        /* The module's log is part of what a run leaves (firstboot logs,
         * the callback's tail on failure): a log that cannot be kept fails
         * the module, before it runs. */
        if (k < 0) {
                st->state = MOD_FAILED;
                st->ran = true;
                st->started_ms = now_realtime_ms();
                free(st->reason);
                st->reason = strprintf("cannot open its log %s: %s", logpath, strerror(-k));
                log_event(LOG_ERR, MSGID_MODULE_FAILED, p->bm->id, "module", "Module %s failed: %s",
                          p->bm->id, st->reason);
                progress_event(r, "module_failed", st);
                save_status(r, false);
                return k;
        }

        st->state = MOD_RUNNING;
        st->ran = true;
        st->started_ms = now_realtime_ms();
        st->attempts = 0;
        free(r->st.current);
        r->st.current = xstrdup(p->bm->id);
        bool announced = false; /* status.json names it: it must say when it ends */

        for (unsigned attempt = 1;; attempt++) {
                _cleanup_strv_free_ char **env = module_env(r, p, attempt);
                char *argv[] = {script, NULL};
                struct line_ctx lc = {.module = p->bm->id, .run = r};
                lc.fields[0] = strprintf("FIRSTBOOT_MODULE=%s", p->bm->id);
                lc.fields[1] = xstrdup("FIRSTBOOT_STAGE=module");
                lc.fields[2] = strprintf("FIRSTBOOT_ATTEMPT=%u", attempt);

                st->attempts = attempt;
                set_progress("Running %s (attempt %u)", p->bm->id, attempt);
                log_event(LOG_INFO, MSGID_MODULE_STARTED, p->bm->id, "module",
                          "Module %s started (attempt %u of %lld)", p->bm->id, attempt,
                          r->cfg.module_attempts);
                progress_event(r, "module_started", st);
                if (logfd >= 0)
                        dprintf(logfd, "--- %s attempt %u ---\n", p->bm->id, attempt);
                struct runner_spec spec = {
                        .argv = argv,
                        .envp = env,
                        .cwd = p->dir,
                        .timeout_ms = p->m->timeout_seconds * 1000,
                        .kill_grace_ms = r->cfg.kill_grace_ms,
                        .mask = mask,
                        .log_fd = logfd,
                        .on_line = on_line,
                        .on_running = on_running,
                        .running_after_ms = STATUS_RUNNING_AFTER_MS,
                        .userdata = &lc,
                        .tail_lines = 20,
                        .log_max = r->cfg.max_module_log,
                        .pgid_file = pgid_path,
                        .pgid_label = p->bm->id,
                };
                runner_result_free(&res);
                res = (struct runner_result){0};
                k = runner_exec(&spec, &res);
                announced = announced || lc.announced;
                if (res.log_error < 0 && log_err == 0)
                        log_err = res.log_error;
                for (size_t i = 0; i < 3; i++)
                        free(lc.fields[i]);
                if (k < 0) {
                        log_error_errno(k, "Failed to start module %s: %m", p->bm->id);
                        res.exit_code = 127;
                }
                if (res.pgid_error < 0)
                        log_warning_errno(res.pgid_error,
                                          "Failed to record %s's process group in %s: %m",
                                          p->bm->id, pgid_path);
                st->exit_code = res.exit_code;
                if (res.exit_code == 0)
                        break;
                log_event(LOG_WARNING, NULL, p->bm->id, "module",
                          "Module %s attempt %u exited %d (%s)", p->bm->id, attempt, res.exit_code,
                          exit_meaning(res.exit_code));
                long long delay = runner_retry_delay_ms(res.exit_code, attempt,
                                                        (unsigned)r->cfg.module_attempts,
                                                        r->cfg.retry_backoff_ms);
                if (delay < 0)
                        break;
                log_event(LOG_NOTICE, NULL, p->bm->id, "module", "Retrying %s in %lld ms",
                          p->bm->id, delay);
                save_status(r, false); /* the wait shows as this module's */
                announced = true;
                sleep_ms(delay);
        }
        st->duration_ms = now_ms() - t_start;
        r->module_ms += st->duration_ms;
        free(r->st.current);
        r->st.current = NULL;

        _cleanup_free_ char *mark_error = NULL;
        if (res.exit_code == 0 && log_err == 0) {
                _cleanup_free_ char *mark = done_mark(r, p);
                if (mark) {
                        _cleanup_free_ char *text = module_digest_format(
                                &r->digests[p - r->mods], r->st.instance_id, now_realtime_ms());
                        /* Not synced one by one: a mark lost with the power
                         * reruns an idempotent module, and what counts is
                         * the name, which finish() makes durable with one
                         * fsync of the directory before the ready marker. */
                        if (k >= 0)
                                k = root_write_file(r->rootfd, in_root(r, mark), 0700, text,
                                                    strlen(text), 0600, (uid_t)-1, (gid_t)-1,
                                                    WRITE_IN_PLACE | WRITE_NOSYNC);
                        /* Without its mark the state does not say it ran:
                         * the module fails (and runs again next time). */
                        if (k < 0)
                                mark_error = strprintf("cannot write its done-mark %s: %s", mark,
                                                       strerror(-k));
                }
        }
        if (res.exit_code == 0 && log_err == 0 && !mark_error) {
                st->state = MOD_DONE;
                log_event(LOG_INFO, MSGID_MODULE_FINISHED, p->bm->id, "module",
                          "Module %s finished in %lld ms", p->bm->id, st->duration_ms);
                if (announced)
                        save_status(r, false);
                progress_event(r, "module_finished", st);
                runner_result_free(&res);
                return 0;
        }
        st->state = MOD_FAILED;
        free(st->reason);
        if (mark_error)
                st->reason = TAKE_PTR(mark_error);
        else if (res.exit_code == 0) /* it succeeded, but what it said is lost */
                st->reason = strprintf("cannot write its log %s: %s", logpath, strerror(-log_err));
        else
                st->reason = strprintf("exit code %d (%s) after %u attempt%s", res.exit_code,
                                       exit_meaning(res.exit_code), st->attempts,
                                       st->attempts == 1 ? "" : "s");
        log_event(LOG_ERR, MSGID_MODULE_FAILED, p->bm->id, "module", "Module %s failed: %s",
                  p->bm->id, st->reason);
        progress_event(r, "module_failed", st);
        if (!r->fail_tail_module) {
                r->fail_tail_module = xstrdup(p->bm->id);
                r->fail_tail = TAKE_PTR(res.tail);
        }
        runner_result_free(&res);
        save_status(r, false);
        return -1;
}

/* Which modules run, and why (module_decide()): each one's done-mark
 * against its digest now. */
static int decide_modules(struct run *r)
{
        r->digests = xcalloc(r->n_mods + 1, sizeof(*r->digests));
        r->to_run = xcalloc(r->n_mods + 1, sizeof(*r->to_run));
        for (size_t i = 0; i < r->n_mods; i++) {
                const struct planned *p = &r->mods[i];
                _cleanup_free_ char *mark = done_mark(r, p), *text = NULL, *why = NULL;
                size_t len = 0;
                int k = mark ? root_read_file(r->rootfd, in_root(r, mark), DONE_MARK_MAX, &text,
                                              &len)
                             : -ENOENT;
                if (k < 0 && k != -ENOENT)
                        return log_error_errno(k, "Failed to read the done-mark %s: %m", mark);
                const struct module_status *old = run_status_find(&r->prev, p->bm->id);
                bool failed_last = old && (old->state == MOD_FAILED || old->state == MOD_RUNNING);
                k = module_decide(r->bundle, p, text, len, failed_last, &r->digests[i], &why);
                if (k < 0)
                        return log_error_errno(k, "Failed to compute module %s's digest: %m",
                                               p->bm->id);
                r->to_run[i] = k > 0;
                if (k == 2 && !r->reprovision)
                        r->reprovision = strprintf("module %s: %s", p->bm->id, why);
                free(r->mst[i]->why);
                r->mst[i]->why = TAKE_PTR(why);
        }
        return 0;
}

static bool module_failed_or_skipped(struct run *r, const char *id)
{
        struct module_status *m = run_status_find(&r->st, id);
        return m && (m->state == MOD_FAILED || m->state == MOD_SKIPPED);
}

static void run_modules(struct run *r)
{
        for (size_t i = 0; i < r->n_mods; i++) {
                struct planned *p = &r->mods[i];
                _cleanup_free_ char *mark = done_mark(r, p);
                const char *blocker = NULL;

                /* Not p->m->requires[j] in the condition: clang-format 14 takes
                 * "requires" for C++20's keyword and misindents the body. */
                char *const *needed = p->m->requires;
                for (size_t j = 0; needed && needed[j]; j++)
                        if (module_failed_or_skipped(r, needed[j]))
                                blocker = needed[j];
                if (blocker) {
                        r->mst[p - r->mods]->state = MOD_SKIPPED;
                        r->mst[p - r->mods]->reason =
                                strprintf("requires %s, which did not succeed", blocker);
                        log_event(LOG_WARNING, MSGID_MODULE_SKIPPED, p->bm->id, "module",
                                  "Module %s skipped: %s", p->bm->id, r->mst[p - r->mods]->reason);
                        save_status(r, false);
                        continue;
                }
                if (!r->to_run[i]) {
                        const struct module_status *old = run_status_find(&r->prev, p->bm->id);
                        r->mst[p - r->mods]->state = MOD_DONE;
                        if (old) {
                                r->mst[p - r->mods]->attempts = old->attempts;
                                r->mst[p - r->mods]->exit_code = old->exit_code;
                                r->mst[p - r->mods]->started_ms = old->started_ms;
                                r->mst[p - r->mods]->duration_ms = old->duration_ms;
                        } else
                                r->mst[p - r->mods]->exit_code = 0;
                        log_event(LOG_INFO, NULL, p->bm->id, "module", "Module %s not run: %s",
                                  p->bm->id, r->mst[i]->why);
                        continue;
                }
                /* Until it succeeds again, no mark says it is done: a rerun
                 * that fails leaves its work half done. */
                int k = mark ? root_unlink(r->rootfd, in_root(r, mark)) : 0;
                if (k < 0) {
                        r->mst[i]->state = MOD_FAILED;
                        r->mst[i]->ran = true;
                        r->mst[i]->reason =
                                strprintf("cannot remove its done-mark %s: %s", mark, strerror(-k));
                        log_event(LOG_ERR, MSGID_MODULE_FAILED, p->bm->id, "module",
                                  "Module %s failed: %s", p->bm->id, r->mst[i]->reason);
                        save_status(r, false);
                        continue;
                }
                log_event(LOG_INFO, NULL, p->bm->id, "module", "Module %s runs: %s", p->bm->id,
                          r->mst[i]->why);
                run_module(r, p);
        }
}

/* -------- readiness and the callback -------- */

static int write_marker(struct run *r)
{
        _cleanup_node_ struct node *n = node_new(NODE_MAP);
        _cleanup_free_ char *text = NULL, *line = NULL;
        int k;

        node_set_str(n, "instance_id", r->st.instance_id);
        node_set_str(n, "state", "ready");
        node_set_int(n, "finished_ms", r->st.finished_ms);
        k = json_format(n, false, &text);
        if (k < 0)
                return k;
        line = strprintf("%s\n", text);
        /* Only the instance matters; a rerun must not rewrite the marker
         * just for a new timestamp. */
        _cleanup_free_ char *old = NULL;
        size_t old_len;
        if (root_read_file(r->rootfd, in_root(r, r->marker), 4096, &old, &old_len) >= 0) {
                _cleanup_node_ struct node *o = NULL;
                struct diags ignore = {0};
                bool same = json_parse(r->marker, old, old_len, &o, &ignore) >= 0 &&
                            o->kind == NODE_MAP &&
                            streq_ptr(node_get_str(o, "instance_id"), r->st.instance_id);
                diags_free(&ignore);
                if (same)
                        return 0;
        }
        return root_write_file(r->rootfd, in_root(r, r->marker), 0700, line, strlen(line), 0644,
                               (uid_t)-1, (gid_t)-1, 0);
}

static char *callback_body(struct run *r)
{
        struct node *n = run_status_to_node(&r->st);
        struct node *facts = NULL;
        char *text = NULL;

        if (facts_ssh_host_keys(r->root, &facts) >= 0)
                node_set(n, "ssh_host_keys", facts);
        if (facts_addresses(&facts) >= 0)
                node_set(n, "addresses", facts);
        node_set_str(n, "agent_version", FIRSTBOOT_VERSION);
        if (r->fail_tail_module) {
                struct node *t = node_new(NODE_SEQ);
                for (size_t i = 0; r->fail_tail && r->fail_tail[i]; i++)
                        node_append(t, NULL, node_new_scalar(SCALAR_STR, r->fail_tail[i]));
                node_set_str(n, "failed_module", r->fail_tail_module);
                node_set(n, "log_tail", t);
        }
        json_format(n, false, &text);
        node_free(n);
        return text;
}

static void phone_home(struct run *r)
{
        const char *token, *url = callback_url(r, &token);
        _cleanup_free_ char *body = NULL, *err = NULL;
        unsigned attempts = 0;

        if (!url) {
                free(r->st.phone_home);
                r->st.phone_home = xstrdup("none");
                return;
        }
        /* Delivered already for this instance and nothing changed: a rerun
         * must not spam the controller. */
        if (streq_ptr(r->prev.phone_home, "sent") && r->prev.state == r->st.state && !r->st.error) {
                bool ran = false;
                for (size_t i = 0; i < r->st.n_modules; i++)
                        ran = ran || r->st.modules[i].ran;
                if (!ran) {
                        free(r->st.phone_home);
                        r->st.phone_home = xstrdup("sent");
                        r->st.phone_home_attempts = r->prev.phone_home_attempts;
                        return;
                }
        }
        free(r->st.phone_home);
        r->st.phone_home = xstrdup("sending");
        body = callback_body(r);
        set_progress("Calling back %s", url);
        struct phonehome_options o = {
                .url = url,
                .token = token,
                .timeout_ms = r->cfg.phone_home_timeout_ms,
                .attempts = (unsigned)r->cfg.phone_home_attempts,
                .backoff_ms = r->cfg.phone_home_backoff_ms,
                .deadline_ms = r->cfg.phone_home_deadline_ms,
                .ret_attempts = &attempts,
        };
        int k = body ? phonehome_send(&o, body, &err) : -ENOMEM;
        free(r->st.phone_home);
        r->st.phone_home_attempts = attempts;
        if (k > 0) {
                r->st.phone_home = xstrdup("sent");
                log_event(LOG_INFO, MSGID_PHONE_HOME_SENT, NULL, "phone-home",
                          "Called back %s (%s, %d attempt%s)", url,
                          run_state_to_string(r->st.state), k, k == 1 ? "" : "s");
        } else {
                r->st.phone_home = xstrdup("failed");
                r->st.phone_home_error = xstrdup(err ? err : strerror(-k));
                log_event(LOG_WARNING, MSGID_PHONE_HOME_FAILED, NULL, "phone-home",
                          "Callback to %s failed: %s (the ready state is not affected)", url,
                          r->st.phone_home_error);
        }
}

/* -------- the run -------- */

static void run_free(struct run *r)
{
        for (size_t i = 0; r->digests && i < r->n_mods; i++)
                module_digest_free(&r->digests[i]);
        free(r->digests);
        free(r->to_run);
        free(r->reprovision);
        planned_free(r->mods, r->n_mods);
        free(r->mst);
        bundle_free(r->bundle);
        ds_result_free(&r->ds);
        run_status_free(&r->st);
        run_status_free(&r->prev);
        config_free(&r->cfg);
        free(r->state_dir);
        free(r->log_dir);
        free(r->marker);
        strv_free(r->stale_markers);
        free(r->status_path);
        free(r->inst_dir);
        free(r->fail_tail_module);
        strv_free(r->fail_tail);
        if (r->rootfd >= 0)
                close(r->rootfd);
        r->rootfd = -1;
}

/* Turns the run into a failed one, for why (the first reason is kept). */
static void fail_run(struct run *r, char *why)
{
        r->st.state = RUN_FAILED;
        if (!r->st.error)
                r->st.error = why;
        else
                free(why);
}

/* Removes path, durably: a marker that comes back after a crash would
 * say ready for a run that did not finish. */
static int remove_durably(const struct run *r, const char *path)
{
        const char *p = in_root(r, path);
        if (!p)
                return -EINVAL;
        int k = root_unlink(r->rootfd, p);
        if (k < 0)
                return k;
        _cleanup_free_ char *dir = xstrdup(p);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir)
                *slash = '\0';
        /* No directory: there was no marker to remove either. */
        k = root_fsync(r->rootfd, dir);
        return k == -ENOENT ? 0 : k;
}

/* Removes the markers that earlier runs may have left (another path than
 * this run's) and, unless keep_current, this run's own. Logs each failure;
 * returns the first. */
static int remove_markers(const struct run *r, bool keep_current)
{
        int ret = 0;
        for (size_t i = 0; r->stale_markers && r->stale_markers[i]; i++) {
                if (streq_ptr(r->stale_markers[i], r->marker))
                        continue; /* an earlier run's is this run's */
                int k = remove_durably(r, r->stale_markers[i]);
                if (k < 0) {
                        log_error_errno(k, "Failed to remove the ready marker %s: %m",
                                        r->stale_markers[i]);
                        ret = ret < 0 ? ret : k;
                }
        }
        if (!keep_current && r->marker) {
                int k = remove_durably(r, r->marker);
                if (k < 0) {
                        log_error_errno(k, "Failed to remove the ready marker %s: %m", r->marker);
                        ret = ret < 0 ? ret : k;
                }
        }
        return ret;
}

/* Records another marker path than this run's as one to remove. */
static void add_stale_marker(struct run *r, const char *under_root)
{
        if (!under_root || under_root[0] != '/')
                return;
        _cleanup_free_ char *p = root_path(r->root, under_root);
        if (!p || streq_ptr(p, r->marker) || strv_contains(r->stale_markers, p))
                return;
        strv_push(&r->stale_markers, TAKE_PTR(p));
}

/* From here on the run may change what a ready run left: the markers go
 * (durably) and status.json says "running", in that order, so that the
 * marker never stands beside anything but a "ready" status. A run that
 * turns out to change nothing (a reboot of a ready server) never calls
 * this, and the marker and status stay as they were all along. */
static int mark_running(struct run *r)
{
        if (r->running)
                return 0;
        int k = remove_markers(r, false);
        if (k < 0)
                return k;
        k = run_status_write(r->rootfd, in_root(r, r->status_path), &r->st, false);
        if (k < 0)
                return log_error_errno(k, "Failed to write %s: %m", r->status_path);
        r->running = true;
        return 0;
}

/* Ends the run: state, marker, callback, notification. The marker comes
 * only after status.json says "ready" durably (and the done-marks are
 * synced), so a crash anywhere leaves either no marker or a marker with
 * the state behind it; any failure on the way fails the run, and a failed
 * run leaves no marker. */
static int finish(struct run *r, const char *error)
{
        bool ok = !error;
        for (size_t i = 0; i < r->st.n_modules; i++)
                ok = ok && r->st.modules[i].state == MOD_DONE;
        if (error && !r->st.error)
                r->st.error = xstrdup(error);
        r->st.finished_ms = now_realtime_ms();
        r->st.agent_ms = now_ms() - r->t0 - r->module_ms;
        r->st.state = ok ? RUN_READY : RUN_FAILED;
        /* Whether this boot changed anything: the done-marks it wrote (not
         * synced one by one) and status.json are made durable only then. */
        bool ran = r->prev.state != r->st.state;
        for (size_t i = 0; i < r->st.n_modules; i++)
                ran = ran || r->st.modules[i].ran;
        int k = 0;
        if (ran && r->inst_dir) {
                _cleanup_free_ char *done = strprintf("%s/done", r->inst_dir);
                _cleanup_free_ char *once = strprintf("%s/once", r->state_dir);
                const char *dirs[] = {done, once};
                for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
                        if ((k = root_fsync(r->rootfd, in_root(r, dirs[i]))) < 0 && k != -ENOENT) {
                                log_error_errno(k, "Failed to sync %s: %m", dirs[i]);
                                fail_run(r, strprintf("cannot sync %s: %s", dirs[i], strerror(-k)));
                        }
        }
        if (r->st.state == RUN_READY) {
                k = run_status_write(r->rootfd, in_root(r, r->status_path), &r->st, true);
                if (k < 0) {
                        log_error_errno(k, "Failed to write %s: %m", r->status_path);
                        fail_run(r, strprintf("cannot write %s: %s", r->status_path, strerror(-k)));
                }
        }
        if (r->st.state == RUN_READY) {
                k = write_marker(r);
                if (k < 0) {
                        log_error_errno(k, "Failed to write the ready marker %s: %m", r->marker);
                        fail_run(r, strprintf("cannot write the ready marker %s: %s", r->marker,
                                              strerror(-k)));
                } else if ((k = remove_markers(r, true)) < 0)
                        fail_run(r, strprintf("cannot remove an earlier ready marker: %s",
                                              strerror(-k)));
        }
        if (r->st.state != RUN_READY) {
                remove_markers(r, false);
                /* Said before the callback, in case it hangs: a failure
                 * that cannot be recorded still fails the run. */
                k = run_status_write(r->rootfd, in_root(r, r->status_path), &r->st, true);
                if (k < 0) {
                        log_error_errno(k, "Failed to write %s: %m", r->status_path);
                        /* Not an earlier run's "ready" standing for this one. */
                        int u = root_unlink(r->rootfd, in_root(r, r->status_path));
                        if (u < 0)
                                log_error_errno(u, "Failed to remove %s: %m", r->status_path);
                }
        }
        phone_home(r);
        r->st.agent_ms = now_ms() - r->t0 - r->module_ms;
        /* The callback's outcome. The run's own state is durable already:
         * a lost update leaves status.json with the callback unsent, which
         * the next run sends. */
        k = run_status_write(r->rootfd, in_root(r, r->status_path), &r->st, ran);
        if (k < 0)
                log_warning_errno(k, "Failed to record the callback's outcome in %s: %m",
                                  r->status_path);
        if (r->inst_dir && r->st.instance_id) {
                _cleanup_free_ char *hist =
                        strprintf("%s/runs/boot-%u.json", r->inst_dir, r->st.boot);
                k = run_status_write(r->rootfd, in_root(r, hist), &r->st, false);
                if (k < 0)
                        log_warning_errno(k, "Failed to write the run's history %s: %m", hist);
        }
        if (r->st.state == RUN_READY) {
                log_event(LOG_NOTICE, MSGID_READY, NULL, "ready",
                          "Provisioning ready: %zu module%s, agent %lld ms, modules %lld ms",
                          r->st.n_modules, r->st.n_modules == 1 ? "" : "s", r->st.agent_ms,
                          r->module_ms);
                set_progress("Ready (%zu module%s)", r->st.n_modules,
                             r->st.n_modules == 1 ? "" : "s");
        } else {
                /* Name the first module that failed, for journalctl and systemctl status. */
                _cleanup_free_ char *why = r->st.error ? xstrdup(r->st.error) : NULL;
                for (size_t i = 0; !why && i < r->st.n_modules; i++) {
                        const struct module_status *m = &r->st.modules[i];
                        if (m->state == MOD_FAILED)
                                why = strprintf("module %s failed: %s", m->id,
                                                m->reason ? m->reason : "no reason recorded");
                }
                log_event(LOG_ERR, MSGID_FAILED, NULL, "failed", "Provisioning failed: %s",
                          why ? why : "a module failed");
                set_progress("Failed: %s", why ? why : "a module failed");
        }
        /* Only a ready run finishes starting the service: a failed one
         * exits 1 without READY=1, so systemd fails the start job and
         * nothing that Requires= firstboot.service (firstboot-ready.target)
         * starts. */
        if (r->st.state != RUN_READY)
                return 1;
        notify_ready();
        return 0;
}

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: firstboot run [OPTIONS]\n\n"
                "Fetches user-data, verifies it, writes its files, runs its modules in order,\n"
                "writes the ready marker and calls the controller back.\n\n"
                "  --root DIR            work on the system under DIR (images, tests)\n"
                "  --config FILE         default " CONFIG_DEFAULT_PATH " (under the root)\n"
                "  --datasource NAME     auto|nocloud|configdrive|ec2|hetzner|digitalocean|file\n"
                "  --user-data FILE      read user-data from FILE (datasource file)\n"
                "  --seed PATH           a NoCloud/ConfigDrive seed directory or ISO image\n"
                "  --metadata-url URL    replaces http://169.254.169.254\n"
                "  --instance-id ID      override the instance id\n"
                "Exit status: 0 ready, 1 failed, 2 usage error.\n");
}

enum run_mode {
        MODE_RUN,   /* firstboot run: the datasource's user-data, at boot */
        MODE_APPLY, /* firstboot apply: a new bundle for this instance */
        MODE_PLAN,  /* firstboot plan: what run or apply would do, doing nothing */
};

/* A bundle that apply refuses (it does not decode, verify or prepare)
 * leaves a server an earlier run left ready as it is: status, marker and
 * callback untouched. At boot, and on a server not ready, the run fails
 * as it always has. */
static int refuse(struct run *r, enum run_mode mode, const char *why)
{
        if (mode == MODE_APPLY && !r->running) {
                log_event(LOG_ERR, NULL, NULL, "verify", "Bundle refused, nothing changed: %s",
                          why);
                return 1;
        }
        return finish(r, why);
}

/* Replay protection: the serial of the bundle last applied to this
 * instance, and the sha256 of its bundle.yaml, in <instance>/serial. A
 * lower serial (or none after one) is refused, and so is the same serial
 * with other bytes. 0 accepted, >0 refused (*ret_why says why), <0 an
 * error. */
static int check_serial(struct run *r, char **ret_why)
{
        const struct archive_member *y = member_list_find(&r->bundle->members, BUNDLE_YAML);
        _cleanup_free_ char *path = strprintf("%s/serial", r->inst_dir), *text = NULL;
        long long last = -1, serial = r->bundle->serial;
        char hash[65], last_hash[65] = "";
        size_t len = 0;

        sha256_hex(y->data, y->size, hash);
        int k = root_read_file(r->rootfd, in_root(r, path), 4096, &text, &len);
        if (k == -ENOENT)
                return 0;
        if (k < 0)
                return log_error_errno(k, "Failed to read %s: %m", path);
        if (sscanf(text, "none %64s", last_hash) == 1)
                last = -1; /* a bundle without a serial */
        else if (sscanf(text, "%lld %64s", &last, last_hash) != 2 || last < 0) {
                log_warning("%s does not read back: taken as serial 0", path);
                last = 0;
        }
        if (serial < 0 && last >= 0) {
                *ret_why = strprintf("bundle %s has no serial, and serial %lld was applied to "
                                     "this instance: refusing an outdated or replayed bundle",
                                     r->bundle->name, last);
                return 1;
        }
        if (serial >= 0 && serial < last) {
                *ret_why = strprintf("bundle %s has serial %lld, lower than serial %lld applied "
                                     "to this instance: refusing an outdated or replayed bundle",
                                     r->bundle->name, serial, last);
                return 1;
        }
        if (serial >= 0 && serial == last && *last_hash && !streq(hash, last_hash)) {
                *ret_why = strprintf("bundle %s has serial %lld, which was applied to this "
                                     "instance with other contents: raise the serial",
                                     r->bundle->name, serial);
                return 1;
        }
        return 0;
}

static int record_serial(struct run *r)
{
        const struct archive_member *y = member_list_find(&r->bundle->members, BUNDLE_YAML);
        _cleanup_free_ char *path = strprintf("%s/serial", r->inst_dir);
        char hash[65];

        sha256_hex(y->data, y->size, hash);
        _cleanup_free_ char *line = r->bundle->serial < 0
                                            ? strprintf("none %s\n", hash)
                                            : strprintf("%lld %s\n", r->bundle->serial, hash);
        int k = root_write_file(r->rootfd, in_root(r, path), 0700, line, strlen(line), 0600,
                                (uid_t)-1, (gid_t)-1, 0);
        if (k < 0)
                return log_error_errno(k, "Failed to write %s: %m", path);
        return 0;
}

/* The files the bundle applied last (its bundle.yaml, unpacked in bdir)
 * wrote that this one lists no more: left in place, and said. One that
 * does not read back says nothing. */
static void report_dropped_files(struct run *r, const char *bdir)
{
        _cleanup_free_ char *path = strprintf("%s/" BUNDLE_YAML, bdir), *text = NULL;
        _cleanup_node_ struct node *doc = NULL;
        struct diags ignore = {0};
        size_t len = 0;

        if (root_read_file(r->rootfd, in_root(r, path), 16 * 1024 * 1024, &text, &len) < 0 ||
            yaml_parse(path, text, len, &doc, &ignore) < 0) {
                diags_free(&ignore);
                return;
        }
        const struct node *files = node_get(doc, "files");
        for (size_t i = 0; files && files->kind == NODE_SEQ && i < files->n_items; i++) {
                const char *p = node_get_str(files->items[i], "path");
                const char *state = node_get_str(files->items[i], "state");
                if (!p || streq_ptr(state, "absent") || bundle_find_file(r->bundle, p) ||
                    strv_contains(r->st.dropped_files, p))
                        continue;
                strv_extend(&r->st.dropped_files, p);
                log_event(LOG_NOTICE, NULL, NULL, "files",
                          "%s is no longer in the bundle: left in place (list it with state: "
                          "absent to remove it)",
                          p);
        }
}

static void apply_usage(FILE *f)
{
        fprintf(f, "Usage: firstboot apply --user-data FILE|- [OPTIONS]\n\n"
                   "Applies a new bundle to this instance, as a boot with new user-data would:\n"
                   "verified as firstboot.conf requires, its files written, and each module whose\n"
                   "digest changed run again. See 'firstboot plan' for what it would do.\n\n"
                   "  --user-data FILE|-    the bundle (- reads standard input)\n"
                   "  --root DIR            work on the system under DIR (images, tests)\n"
                   "  --config FILE         default " CONFIG_DEFAULT_PATH " (under the root)\n"
                   "Exit status: 0 ready, 1 failed or refused, 2 usage error.\n");
}

static int run_main(int argc, char **argv, enum run_mode mode);

int cmd_plan(int argc, char **argv)
{
        return run_main(argc, argv, MODE_PLAN);
}

static void plan_usage(FILE *f)
{
        fprintf(f,
                "Usage: firstboot plan [OPTIONS]\n\n"
                "Shows what 'firstboot run' (or 'apply --user-data') would change, doing\n"
                "nothing: files new, changed (a unified diff when no secret is in them) or\n"
                "unchanged, the modules that would run and why, what the bundle no longer has.\n\n"
                "  --user-data FILE|-    a bundle for this instance (as apply takes it)\n"
                "  --json                the plan as JSON\n"
                "  --root, --config, --datasource, --seed, --metadata-url, --instance-id\n"
                "                        as for 'firstboot run'\n"
                "Exit status: 0 nothing to do, 2 changes pending, 1 error or refused, 64 usage "
                "error.\n");
}

/* firstboot plan, once the options and the config are read: the bundle
 * verified, its serial checked and its modules decided as a run would,
 * with nothing written. */
static int run_plan(struct run *r, const struct ds_options *dso, bool json)
{
        struct diags d = {0};
        _cleanup_free_ char *err = NULL, *iid_path = NULL, *old_iid = NULL, *dirname = NULL;
        _cleanup_free_ char *bdir = NULL, *last = NULL, *keys = NULL, *serial_why = NULL;
        int k;

        r->status_path = strprintf("%s/status.json", r->state_dir);
        if (run_status_read(r->rootfd, in_root(r, r->status_path), r->status_path, &r->prev, &d) <
            0)
                run_status_free(&r->prev);
        diags_free(&d);
        k = datasource_fetch(dso, &r->ds, &err);
        if (k < 0) {
                log_error("%s", err ? err : strerror(-k));
                return 1;
        }
        if (!r->ds.user_data) {
                log_error("%s returned no user-data", r->ds.source);
                return 1;
        }
        r->st.instance_id = xstrdup(r->ds.instance_id);
        iid_path = strprintf("%s/instance-id", r->state_dir);
        dirname = instance_dir_name(r->st.instance_id);
        r->inst_dir = strprintf("%s/instances/%s", r->state_dir, dirname);
        if (root_read_line(r->rootfd, in_root(r, iid_path), &old_iid) < 0 ||
            !streq(old_iid, r->st.instance_id) ||
            !streq_ptr(r->prev.instance_id, r->st.instance_id))
                run_status_free(&r->prev);

        enum userdata_kind kind;
        struct member_list members = {0};
        const char *origin = r->ds.user_data_origin ? r->ds.user_data_origin : "user-data";
        keys = root_path(r->root, r->cfg.keys_dir);
        if (userdata_decode(origin, r->ds.user_data, r->ds.user_data_len,
                            (size_t)r->cfg.max_user_data, &kind, &members, &d) < 0 ||
            bundle_parse(&members, NULL, &r->bundle, &d) < 0 ||
            bundle_verify_signature(r->bundle, keys, r->cfg.require_signature, &d) < 0) {
                diags_print(&d, stderr);
                diags_free(&d);
                return 1;
        }
        k = check_serial(r, &serial_why);
        if (k != 0) {
                if (serial_why)
                        log_error("%s", serial_why);
                return 1;
        }
        bdir = strprintf("%s/bundle", r->inst_dir);
        struct prepare_options po = {
                .root = r->root,
                .modules_dir = r->cfg.modules_dir,
                .unpack_dir = bdir,
                .check_host = true,
        };
        if (prepare_modules(r->bundle, &po, &r->mods, &r->n_mods, &d) < 0) {
                diags_print(&d, stderr);
                diags_free(&d);
                return 1;
        }
        for (size_t i = 0; i < r->n_mods; i++)
                run_status_add(&r->st, r->mods[i].bm->id);
        r->mst = xcalloc(r->n_mods + 1, sizeof(*r->mst));
        for (size_t i = 0; i < r->n_mods; i++)
                r->mst[i] = &r->st.modules[i];
        if (decide_modules(r) < 0)
                return 1;
        _cleanup_free_ char **why = xcalloc(r->n_mods + 1, sizeof(*why));
        for (size_t i = 0; i < r->n_mods; i++)
                why[i] = r->mst[i]->why;

        /* The serial and bundle.yaml last applied here. */
        _cleanup_free_ char *spath = strprintf("%s/serial", r->inst_dir), *stext = NULL;
        long long last_serial = -1;
        char last_hash[65] = "", hash[65];
        const struct archive_member *y = member_list_find(&r->bundle->members, BUNDLE_YAML);
        sha256_hex(y->data, y->size, hash);
        if (root_read_file(r->rootfd, in_root(r, spath), 4096, &stext, NULL) >= 0 &&
            sscanf(stext, "none %64s", last_hash) != 1 &&
            sscanf(stext, "%lld %64s", &last_serial, last_hash) != 2)
                last_serial = -1;
        last = strprintf("%s/" BUNDLE_YAML, bdir);
        _cleanup_close_ int lfd = root_open(r->rootfd, in_root(r, last), O_PATH | O_NOFOLLOW, 0);
        struct change_input ci = {
                .rootfd = r->rootfd,
                .b = r->bundle,
                .mods = r->mods,
                .n_mods = r->n_mods,
                .to_run = r->to_run,
                .why = why,
                .hostname = r->bundle->hostname ? r->bundle->hostname : r->ds.hostname,
                .last_bundle = lfd >= 0 ? in_root(r, last) : NULL,
                .instance_id = r->st.instance_id,
                .last_serial = last_serial,
                .same_bundle = streq(hash, last_hash),
                .json = json,
        };
        k = change_show(&ci);
        if (k < 0) {
                log_error_errno(k, "Failed to show the plan: %m");
                return 1;
        }
        return k;
}

int cmd_run(int argc, char **argv)
{
        return run_main(argc, argv, MODE_RUN);
}

int cmd_apply(int argc, char **argv)
{
        return run_main(argc, argv, MODE_APPLY);
}

static int run_main(int argc, char **argv, enum run_mode mode)
{
        static const struct option opts[] = {
                {"root", required_argument, NULL, 'r'},
                {"config", required_argument, NULL, 'c'},
                {"datasource", required_argument, NULL, 'd'},
                {"user-data", required_argument, NULL, 'u'},
                {"seed", required_argument, NULL, 's'},
                {"metadata-url", required_argument, NULL, 'm'},
                {"instance-id", required_argument, NULL, 'i'},
                {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        void (*show_usage)(FILE *) = mode == MODE_APPLY  ? apply_usage
                                     : mode == MODE_PLAN ? plan_usage
                                                         : usage;
        /* plan's 2 means "changes pending" (imagegen push applies on
         * it): its usage errors are EX_USAGE, not 2. */
        const int usage_rc = mode == MODE_PLAN ? EX_USAGE : 2;
        bool json = false;
        const char *config = NULL, *datasource = NULL, *user_data = NULL, *seed = NULL,
                   *metadata_url = NULL, *instance_id = NULL;
        struct run r = {0};
        struct diags d = {0};
        _cleanup_close_ int lockfd = -1;
        _cleanup_free_ char *config_path = NULL, *lock_path = NULL, *err = NULL;
        int c, k, ret;

        r.t0 = now_ms();
        r.rootfd = -1;
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'r':
                        r.root = optarg;
                        break;
                case 'c':
                        config = optarg;
                        break;
                case 'd':
                        datasource = optarg;
                        break;
                case 'u':
                        user_data = optarg;
                        break;
                case 's':
                        seed = optarg;
                        break;
                case 'm':
                        metadata_url = optarg;
                        break;
                case 'i':
                        instance_id = optarg;
                        break;
                case 'j':
                        if (mode != MODE_PLAN) {
                                show_usage(stderr);
                                return usage_rc;
                        }
                        json = true;
                        break;
                case 'h':
                        show_usage(stdout);
                        return 0;
                default:
                        show_usage(stderr);
                        return usage_rc;
                }
        }
        if (mode == MODE_APPLY && (!user_data || datasource || seed || metadata_url)) {
                fprintf(stderr, "firstboot apply: %s\n",
                        user_data ? "takes its bundle from --user-data only"
                                  : "--user-data FILE|- is required");
                return usage_rc;
        }
        if (user_data && streq(user_data, "-"))
                user_data = "/dev/stdin";
        if (optind < argc) {
                fprintf(stderr, "firstboot %s: unexpected argument '%s'\n",
                        mode == MODE_APPLY  ? "apply"
                        : mode == MODE_PLAN ? "plan"
                                            : "run",
                        argv[optind]);
                return usage_rc;
        }
        if (r.root && (streq(r.root, "/") || !*r.root))
                r.root = NULL;
        if (r.root && !is_dir(r.root)) {
                log_error("--root %s is not a directory", r.root);
                return usage_rc;
        }
        /* Absolute: modules run with their own working directory and get
         * FIRSTBOOT_ROOT. */
        _cleanup_free_ char *root_abs = r.root ? realpath(r.root, NULL) : NULL;
        if (r.root && !root_abs) {
                log_error_errno(errno, "--root %s: %m", r.root);
                return usage_rc;
        }
        if (root_abs)
                r.root = root_abs;
        r.rootfd = root_open_dir(r.root);
        if (r.rootfd < 0) {
                log_error_errno(r.rootfd, "--root %s: %m", r.root ? r.root : "/");
                return usage_rc;
        }
        if (user_data && !datasource)
                datasource = "file";

        config_path = config ? xstrdup(config) : root_path(r.root, CONFIG_DEFAULT_PATH);
        if ((config ? config_load(config_path, true, &r.cfg, &d)
                    : config_load_root(r.rootfd, config_path, &r.cfg, &d)) < 0) {
                log_diags(&d, "config");
                diags_free(&d);
                run_free(&r);
                return 1;
        }
        r.state_dir = root_path(r.root, r.cfg.state_dir);
        r.log_dir = root_path(r.root, r.cfg.log_dir);
        /* apply and plan work on this instance: the one the state names. */
        _cleanup_free_ char *this_instance = NULL;
        if (mode != MODE_RUN && user_data && !instance_id) {
                _cleanup_free_ char *p = strprintf("%s/instance-id", r.state_dir);
                if (root_read_line(r.rootfd, in_root(&r, p), &this_instance) >= 0 && *this_instance)
                        instance_id = this_instance;
                else if (mode == MODE_APPLY) {
                        log_error("Nothing was provisioned here yet (no %s): use firstboot run", p);
                        run_free(&r);
                        return 1;
                }
        }
        struct ds_options dso = {
                .root = r.root,
                .name = datasource ? datasource : r.cfg.datasource,
                .user_data_file = user_data,
                .seed = seed,
                .metadata_url = metadata_url ? metadata_url : r.cfg.metadata_url,
                .instance_id = instance_id,
                .timeout_ms = r.cfg.http_timeout_ms,
                .attempts = (unsigned)r.cfg.http_attempts,
                .backoff_ms = 500,
                .max_user_data = (size_t)r.cfg.max_user_data,
        };
        if (mode == MODE_PLAN) {
                ret = run_plan(&r, &dso, json);
                run_free(&r);
                return ret;
        }
        k = make_dir(&r, &r.state_dir);
        if (k < 0) {
                log_error_errno(k, "Failed to create %s: %m", r.state_dir);
                run_free(&r);
                return 1;
        }
        r.status_path = strprintf("%s/status.json", r.state_dir);
        lock_path = strprintf("%s/run.lock", r.state_dir);
        k = lockfd =
                root_open(r.rootfd, in_root(&r, lock_path), O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
        if (lockfd < 0) {
                log_error_errno(k, "Failed to open %s: %m", lock_path);
                run_free(&r);
                return 1;
        }
        if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
                log_error_errno(errno, "Another firstboot run holds %s: %m", lock_path);
                run_free(&r);
                return 1;
        }
        /* A run that was killed (kill -9, a crash) left its module running:
         * end it before anything runs again. Under systemd its cgroup ends it
         * too (units/firstboot.service). */
        {
                _cleanup_free_ char *pgid_path = strprintf("%s/" RUNNER_PGID_FILE, r.state_dir);
                struct runner_leftover left;
                k = runner_end_leftover(pgid_path, r.cfg.kill_grace_ms, &left);
                if (k > 0)
                        log_event(LOG_WARNING, NULL, left.label, "modules",
                                  "Ended module %s, left running by an earlier run (process "
                                  "group %d%s)",
                                  left.label, left.pgid, left.killed_hard ? ", with SIGKILL" : "");
                else if (k == -EBUSY) {
                        log_error("Module %s, left running by an earlier run (process group %d), "
                                  "survives SIGKILL: not running anything",
                                  left.label, left.pgid);
                        run_free(&r);
                        return 1;
                } else if (k < 0)
                        log_warning_errno(k, "Failed to read %s: %m", pgid_path);
        }

        /* The previous run's status, read before this run overwrites it:
         * it carries done modules, attempts and the boot count over. */
        {
                struct diags ignore = {0};
                if (run_status_read(r.rootfd, in_root(&r, r.status_path), r.status_path, &r.prev,
                                    &ignore) < 0)
                        run_status_free(&r.prev);
                diags_free(&ignore);
        }
        /* The marker this run writes, and the one an earlier run wrote if
         * it was another (a bundle's ready_marker): both go when this run
         * fails, even before its bundle is read. */
        r.marker = root_path(r.root, r.cfg.ready_marker);
        r.st.ready_marker = xstrdup(r.cfg.ready_marker);
        add_stale_marker(&r, r.prev.ready_marker);
        r.st.state = RUN_RUNNING;
        r.st.started_ms = now_realtime_ms();
        /* Running, unless an earlier run left this server ready: then
         * status.json and the marker keep saying so until this run finds
         * something to do (a new instance, modules to run) or fails. Not
         * synced (the run's end is), but it must be written: else an
         * earlier "failed" would stand while this run retries. */
        if (r.prev.state != RUN_READY && mark_running(&r) < 0) {
                ret = finish(&r, "cannot record that the run started");
                run_free(&r);
                return ret;
        }
        set_progress("Fetching user-data");

        k = datasource_fetch(&dso, &r.ds, &err);
        if (k < 0) {
                log_event(LOG_ERR, NULL, NULL, "datasource", "%s", err ? err : strerror(-k));
                ret = finish(&r, err ? err : "datasource failed");
                run_free(&r);
                return ret;
        }
        r.st.instance_id = xstrdup(r.ds.instance_id);
        r.st.source = xstrdup(r.ds.source);
        log_set_instance(r.st.instance_id);
        log_event(LOG_INFO, MSGID_RUN_STARTED, NULL, "datasource",
                  "Run started: instance %s from %s (%s), %zu bytes of user-data", r.st.instance_id,
                  r.ds.source, r.ds.origin ? r.ds.origin : "", r.ds.user_data_len);

        /* A new instance (a clone of a golden image) provisions again. */
        _cleanup_free_ char *iid_path = strprintf("%s/instance-id", r.state_dir);
        _cleanup_free_ char *old_iid = NULL;
        _cleanup_free_ char *dirname = instance_dir_name(r.st.instance_id);
        r.inst_dir = strprintf("%s/instances/%s", r.state_dir, dirname);
        bool new_instance = root_read_line(r.rootfd, in_root(&r, iid_path), &old_iid) < 0 ||
                            !streq(old_iid, r.st.instance_id);
        if (new_instance) {
                if (old_iid)
                        log_event(LOG_NOTICE, NULL, NULL, "datasource",
                                  "New instance %s (was %s): provisioning again", r.st.instance_id,
                                  old_iid);
                _cleanup_free_ char *line = strprintf("%s\n", r.st.instance_id);
                k = mark_running(&r);
                if (k >= 0) {
                        k = root_write_file(r.rootfd, in_root(&r, iid_path), 0700, line,
                                            strlen(line), 0600, (uid_t)-1, (gid_t)-1, 0);
                        if (k < 0)
                                log_error_errno(k, "Failed to write %s: %m", iid_path);
                }
                if (k < 0) {
                        ret = finish(&r, "cannot record the new instance");
                        run_free(&r);
                        return ret;
                }
        }
        if (!streq_ptr(r.prev.instance_id, r.st.instance_id))
                run_status_free(&r.prev);
        r.st.boot = r.prev.boot + 1;
        k = make_dir(&r, &r.inst_dir);
        if (k < 0) {
                log_error_errno(k, "Failed to create %s: %m", r.inst_dir);
                ret = finish(&r, "cannot create the instance's state directory");
                run_free(&r);
                return ret;
        }

        /* The provider's SSH keys, before anything (a module hardening
         * SSH) could lock the owner out; a bundle that fails later still
         * leaves the server reachable. */
        if (r.ds.ssh_keys) {
                _cleanup_free_ char *kerr = NULL;
                k = sshkeys_install(r.rootfd, r.root, r.cfg.ssh_keys_user, r.ds.ssh_keys, &kerr);
                if (k < 0) {
                        _cleanup_free_ char *e = strprintf("SSH keys from %s: %s", r.ds.source,
                                                           kerr ? kerr : strerror(-k));
                        log_event(LOG_ERR, NULL, NULL, "datasource", "%s", e);
                        ret = finish(&r, e);
                        run_free(&r);
                        return ret;
                }
                log_event(LOG_INFO, NULL, NULL, "datasource",
                          "SSH keys from %s for %s: %d added, %zu already there", r.ds.source,
                          r.cfg.ssh_keys_user, k, strv_length(r.ds.ssh_keys) - (size_t)k);
        }

        if (!r.ds.user_data) {
                _cleanup_free_ char *e = strprintf("%s returned no user-data", r.ds.source);
                log_event(LOG_ERR, NULL, NULL, "decode", "%s", e);
                ret = finish(&r, e);
                run_free(&r);
                return ret;
        }

        /* Decode and verify, in memory. */
        enum userdata_kind kind;
        struct member_list members = {0};
        const char *origin = r.ds.user_data_origin ? r.ds.user_data_origin : "user-data";
        if (userdata_decode(origin, r.ds.user_data, r.ds.user_data_len, (size_t)r.cfg.max_user_data,
                            &kind, &members, &d) < 0 ||
            bundle_parse(&members, NULL, &r.bundle, &d) < 0) {
                log_diags(&d, "decode");
                _cleanup_free_ char *e = diags_summary(&d);
                ret = refuse(&r, mode, e);
                diags_free(&d);
                run_free(&r);
                return ret;
        }
        _cleanup_free_ char *keys = root_path(r.root, r.cfg.keys_dir);
        if (bundle_verify_signature(r.bundle, keys, r.cfg.require_signature, &d) < 0) {
                log_diags(&d, "verify");
                _cleanup_free_ char *e = diags_summary(&d);
                ret = refuse(&r, mode, e);
                diags_free(&d);
                run_free(&r);
                return ret;
        }
        if (r.bundle->signed_by)
                log_event(LOG_INFO, NULL, NULL, "verify", "bundle.yaml signed by %s",
                          r.bundle->signed_by);
        {
                _cleanup_free_ char *why = NULL;
                k = check_serial(&r, &why);
                if (k > 0) {
                        log_event(LOG_ERR, NULL, NULL, "verify", "%s",
                                  why ? why : "bundle refused");
                        /* Nothing of it is written. At boot the datasource may
                         * still offer the bundle a later apply replaced: the
                         * server stays as that left it. */
                        if (!r.running) {
                                ret = mode == MODE_RUN && r.prev.state == RUN_READY ? 0 : 1;
                                run_free(&r);
                                return ret;
                        }
                }
                if (k != 0) {
                        ret = finish(&r, why ? why : "cannot check the bundle's serial");
                        run_free(&r);
                        return ret;
                }
        }
        r.st.bundle = xstrdup(r.bundle->name);
        r.st.hostname = strdup_null(r.bundle->hostname ? r.bundle->hostname : r.ds.hostname);
        if (r.bundle->ready_marker) {
                /* firstboot.conf's marker is then one this run must not leave. */
                _cleanup_free_ char *conf_marker = TAKE_PTR(r.marker);
                r.marker = root_path(r.root, r.bundle->ready_marker);
                free(r.st.ready_marker);
                r.st.ready_marker = xstrdup(r.bundle->ready_marker);
                if (!streq_ptr(conf_marker, r.marker))
                        strv_push(&r.stale_markers, TAKE_PTR(conf_marker));
                /* The previous instance's marker says nothing about this one. */
                if (new_instance && (k = remove_markers(&r, false)) < 0) {
                        ret = finish(&r, "cannot remove the previous instance's ready marker");
                        run_free(&r);
                        return ret;
                }
        }

        _cleanup_free_ char *bdir = strprintf("%s/bundle", r.inst_dir);
        struct prepare_options po = {
                .root = r.root,
                .modules_dir = r.cfg.modules_dir,
                .unpack_dir = bdir,
                .check_host = true,
        };
        if (prepare_modules(r.bundle, &po, &r.mods, &r.n_mods, &d) < 0) {
                log_diags(&d, "plan");
                _cleanup_free_ char *e = diags_summary(&d);
                ret = refuse(&r, mode, e);
                diags_free(&d);
                run_free(&r);
                return ret;
        }
        for (size_t i = 0; i < r.n_mods; i++) {
                struct module_status *m = run_status_add(&r.st, r.mods[i].bm->id);
                m->frequency = xstrdup(frequency_to_string(r.mods[i].m->frequency));
        }
        r.mst = xcalloc(r.n_mods, sizeof(*r.mst));
        for (size_t i = 0; i < r.n_mods; i++)
                r.mst[i] = &r.st.modules[i];
        /* A run that runs modules again (day 2, a module that failed or
         * runs always) takes the marker away until it is ready again. */
        if (decide_modules(&r) < 0) {
                save_status(&r, false);
                ret = finish(&r, "cannot read the modules' done-marks");
                run_free(&r);
                return ret;
        }
        /* An input its module cannot change in place (reprovision: in its
         * manifest) is refused, before anything is written: fail closed. */
        if (r.reprovision) {
                _cleanup_free_ char *e = strprintf(
                        "%s; it cannot change on a running server: create a new server with "
                        "this bundle, or keep the input as it was",
                        r.reprovision);
                ret = refuse(&r, mode, e);
                run_free(&r);
                return ret;
        }
        save_status(&r, false);
        bool will_run = false;
        for (size_t i = 0; i < r.n_mods; i++)
                will_run = will_run || r.to_run[i];
        if (will_run && (k = mark_running(&r)) < 0) {
                ret = finish(&r, "cannot remove the ready marker before running modules");
                run_free(&r);
                return ret;
        }

        report_dropped_files(&r, bdir);
        if (record_serial(&r) < 0) {
                ret = finish(&r, "cannot record the bundle's serial");
                run_free(&r);
                return ret;
        }
        k = bundle_unpack(r.bundle, r.rootfd, in_root(&r, bdir));
        if (k < 0) {
                log_error_errno(k, "Failed to unpack the bundle into %s: %m", bdir);
                ret = finish(&r, "cannot unpack the bundle");
                run_free(&r);
                return ret;
        }
        set_progress("Writing files");
        if (write_files(&r) < 0) {
                ret = finish(&r, "writing the bundle's files failed");
                run_free(&r);
                return ret;
        }
        run_modules(&r);
        ret = finish(&r, NULL);
        diags_free(&d);
        run_free(&r);
        return ret;
}
