/* firstboot agent: jobs after boot, from the provisioning panel's signed
 * Redis queue (README "Jobs", firstboot(8)).
 *
 * One job at a time: BLMOVE agent:{id}:jobs -> agent:{id}:processing (so
 * a job taken by an agent that dies is found there at the next start and
 * reported failed, "agent restarted", never run again silently), verify
 * it (common/job.c, firstboot/jobs.c), run its module under the module
 * contract and the run lock that `firstboot run` takes, publish progress
 * on job:{id}:updates, set job:{id}:result, and only then LREM it from
 * processing. */
#include "commands.h"
#include "config.h"
#include "events.h"
#include "fs.h"
#include "job.h"
#include "jobs.h"
#include "journal.h"
#include "json.h"
#include "log.h"
#include "redis.h"
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/stat.h>

#define BLOCK_S         1    /* BLMOVE's timeout: SIGTERM is seen within it */
#define REPLY_SLACK_MS  5000 /* over that, a blocking reply is a dead connection */
#define MAX_BACKOFF_MS  5000 /* reconnecting to Redis, storing a refused result */
#define RETRY_STORE_MS  250
#define STOP_SLACK_MS   30000 /* after a job's stop bound: storing its result */
#define LOG_TAIL_LINES  20
#define VERIFY_ATTEMPTS 3 /* job_verify() failing for want of memory */
#define STR_(x)         #x
#define STR(x)          STR_(x)

static volatile sig_atomic_t got_term, got_hup;
static bool fatal;              /* an error no reconnect mends: exit 1, for Restart=on-failure */
static atomic_llong term_at_ms; /* monotonic, when SIGTERM came; 0 before */

static void on_signal(int sig)
{
        if (sig == SIGHUP) {
                got_hup = 1;
                return;
        }
        if (!got_term) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                atomic_store(&term_at_ms, (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        }
        got_term = 1;
}

/* The Prometheus text format (exposition_formats.md) for node_exporter's
 * textfile collector: counters since the agent started. */
static const double duration_buckets[] = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600};
#define N_BUCKETS (sizeof(duration_buckets) / sizeof(duration_buckets[0]))

struct job_count {
        char *app_id, *status;
        long long n;
};

struct metrics {
        struct job_count *jobs;
        size_t n_jobs;
        long long rejected[JOB_REFUSAL_MAX];
        long long buckets[N_BUCKETS]; /* cumulative when written */
        long long duration_count;
        double duration_sum;
        long long wait_count;
        double wait_sum;
};

struct agent {
        const char *root;
        int rootfd;
        struct config cfg;
        char *state_dir, *jobs_log_dir, *lock_path, *pgid_path;
        char *agent_id;
        char *secret;
        size_t secret_len;
        struct redis_url url;
        int tls_fds[3]; /* jobs.tls_*_file, opened in the root, -1: none */
        struct redis *r;
        /* The wait before the next connect: 0 once a command got its
         * reply; doubled (to MAX_BACKOFF_MS) each time the connection
         * broke before that, so a server that drops the agent right
         * after connecting is not asked again in a tight loop. */
        long long backoff_ms;
        char *k_jobs, *k_processing;
        char *instance_id;
        struct jobs_seen *seen; /* the job ids taken, read once (replays) */
        /* the job running now, for the stop watchdog */
        atomic_bool job_running;
        atomic_bool storing; /* report() at work: a result to store */
        atomic_bool quit;    /* the threads end */
        /* What the heartbeat says (under lock): the job running, the last one. */
        pthread_mutex_t lock;
        char current_job[JOB_ID_LEN + 1], last_job[JOB_ID_LEN + 1];
        char current_app[MANIFEST_ID_MAX + 1], last_status[16];
        long long jobs_done;
        struct metrics metrics;
};

static const char *in_root(const struct agent *a, const char *path)
{
        return path_in_root(a->root, path);
}

static bool should_stop(void *userdata)
{
        (void)userdata;
        return got_term;
}

static void on_redis_error(void *userdata, int error, const char *message)
{
        (void)userdata;
        if (redis_error_is_final(error))
                log_error("Redis: %s", message);
        else
                log_warning("Redis: %s (retrying)", message);
}

/* Connected, or NULL after SIGTERM (or an error no retry mends, logged). */
static struct redis *conn(struct agent *a)
{
        if (a->r)
                return a->r;
        for (long long waited = 0; waited < a->backoff_ms && !got_term; waited += 100)
                sleep_ms(100);
        if (got_term)
                return NULL;
        int k = redis_connect_retry(&a->url, REPLY_SLACK_MS, MAX_BACKOFF_MS, should_stop,
                                    on_redis_error, a, &a->r);
        if (k < 0 && k != -ECANCELED) {
                log_error_errno(k, "Cannot connect to Redis at %s:%d: %m", a->url.host,
                                a->url.port);
                fatal = true;
                got_term = 1;
        }
        if (k >= 0)
                log_info("Connected to Redis at %s:%d", a->url.host, a->url.port);
        return a->r;
}

/* One command on the connection, dropped (for a reconnect) when it
 * breaks. A server's error reply is -EREMOTEIO, its text in *ret_error
 * (then not logged) when ret_error is not NULL. */
static int command(struct agent *a, int argc, const char *const *argv, const size_t *lens,
                   long long timeout_ms, struct redis_reply **ret, char **ret_error)
{
        _cleanup_free_ char *err = NULL;
        if (!a->r)
                return -ENOTCONN;
        int k = redis_command(a->r, argc, argv, lens, timeout_ms, ret, &err);
        if (k < 0) {
                log_warning("Redis %s failed: %s", argv[0], err ? err : strerror(-k));
                redis_free(a->r);
                a->r = NULL;
                a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : 100;
                if (a->backoff_ms > MAX_BACKOFF_MS)
                        a->backoff_ms = MAX_BACKOFF_MS;
                return k;
        }
        a->backoff_ms = 0;
        if ((*ret)->type == REDIS_R_ERROR) {
                if (ret_error)
                        *ret_error = xstrdup((*ret)->str);
                else
                        log_warning("Redis %s: %s", argv[0], (*ret)->str);
                redis_reply_free(*ret);
                *ret = NULL;
                return -EREMOTEIO;
        }
        return 0;
}

/* Whether SIGTERM came over jobs.stop_timeout_s ago: what the agent still
 * had to do (store a result) is given up. */
static bool stop_overdue(const struct agent *a)
{
        return got_term && now_ms() - atomic_load(&term_at_ms) > a->cfg.jobs_stop_timeout_s * 1000;
}

/* A command that must get through: across reconnects, until it does or
 * SIGTERM came stop_timeout_s ago (-ECANCELED). The reply in *ret when
 * ret is not NULL; a server's error is -EREMOTEIO, its text in
 * *ret_error. */
static int command_reliably(struct agent *a, int argc, const char *const *argv, const size_t *lens,
                            struct redis_reply **ret, char **ret_error)
{
        for (;;) {
                _cleanup_redis_reply_ struct redis_reply *rep = NULL;
                if (!a->r && got_term) {
                        if (stop_overdue(a))
                                return -ECANCELED;
                        _cleanup_free_ char *err = NULL;
                        if (redis_connect(&a->url, REPLY_SLACK_MS, &a->r, &err) < 0) {
                                sleep_ms(500);
                                continue;
                        }
                } else if (!conn(a))
                        continue;
                int k = command(a, argc, argv, lens, 0, &rep, ret_error);
                if (k >= 0 && ret)
                        *ret = TAKE_PTR(rep);
                if (k >= 0 || k == -EREMOTEIO)
                        return k;
        }
}

static void publish(struct agent *a, const char *job_id, const struct node *msg)
{
        _cleanup_free_ char *text = NULL, *chan = strprintf("job:%s:updates", job_id);
        _cleanup_redis_reply_ struct redis_reply *rep = NULL;
        if (!a->r || json_format(msg, false, &text) < 0)
                return; /* progress is best effort; the result is not */
        const char *argv[] = {"PUBLISH", chan, text};
        (void)command(a, 3, argv, NULL, 0, &rep, NULL);
}

static void publish_status(struct agent *a, const char *job_id, const char *status, int progress,
                           const char *message)
{
        _cleanup_node_ struct node *n = node_new(NODE_MAP);
        node_set_str(n, "job_id", job_id);
        node_set_str(n, "status", status);
        node_set_int(n, "progress", progress);
        if (message)
                node_set_str(n, "message", message);
        publish(a, job_id, n);
}

static void log_job(int prio, const char *msgid, const char *job_id, const char *fmt, ...)
        _printf_(4, 5);
static void log_job(int prio, const char *msgid, const char *job_id, const char *fmt, ...)
{
        _cleanup_free_ char *f1 = strprintf("FIRSTBOOT_JOB=%s", job_id ? job_id : "");
        _cleanup_free_ char *f2 = strprintf("MESSAGE_ID=%s", msgid ? msgid : "");
        char *fields[3] = {f1, msgid ? f2 : NULL, NULL};
        va_list ap;
        va_start(ap, fmt);
        log_fullv(prio, job_id ? fields : fields + 1, fmt, ap);
        va_end(ap);
}

/* Sets job:{id}:result (with the TTL; only_new: NX, for ids nobody
 * authenticated and for reports that must not replace a real result) and
 * publishes it as the final update. A SET the server refuses (out of
 * memory under noeviction, a read-only replica, an ACL) is tried again,
 * every RETRY_STORE_MS doubling to MAX_BACKOFF_MS, until it is stored or
 * SIGTERM came stop_timeout_s ago: no job is taken meanwhile, and the job
 * stays in agent:{id}:processing until its result is stored. Returns 1
 * when stored; 0 when NX found a result there (the first run's: nothing
 * stored, nothing published); a negative errno when not stored. */
static int report_now(struct agent *a, const char *job_id, struct node *result, bool only_new)
{
        _cleanup_free_ char *text = NULL, *key = strprintf("job:%s:result", job_id);
        _cleanup_free_ char *ttl = strprintf("%lld", a->cfg.jobs_result_ttl_s);
        _cleanup_free_ char *told = NULL;
        node_set_str(result, "job_id", job_id);
        node_set_str(result, "agent_id", a->agent_id);
        node_set_int(result, "finished_at", now_realtime_ms() / 1000);
        int k = json_format(result, false, &text);
        if (k < 0)
                return k;
        const char *argv[] = {"SET", key, text, "EX", ttl, "NX"};
        for (long long delay = RETRY_STORE_MS;;) {
                _cleanup_redis_reply_ struct redis_reply *rep = NULL;
                _cleanup_free_ char *err = NULL;
                k = command_reliably(a, only_new ? 6 : 5, argv, NULL, &rep, &err);
                if (k >= 0) {
                        if (told)
                                log_job(LOG_NOTICE, NULL, job_id,
                                        "Redis took the result of job %s at last", job_id);
                        if (rep->type == REDIS_R_NIL)
                                return 0;
                        break;
                }
                if (k != -EREMOTEIO)
                        return k;
                /* Said once, and again when the server says something else. */
                if (!streq_ptr(told, err)) {
                        log_job(LOG_ERR, NULL, job_id,
                                "Redis refused the result of job %s: %s (tried again every %lld s "
                                "at most; the job stays in %s until it is stored)",
                                job_id, err, (long long)MAX_BACKOFF_MS / 1000, a->k_processing);
                        free(told);
                        told = TAKE_PTR(err);
                }
                for (long long w = 0; w < delay; w += 100) {
                        if (stop_overdue(a))
                                return -ECANCELED;
                        sleep_ms(delay - w < 100 ? delay - w : 100);
                }
                delay = delay * 2 < MAX_BACKOFF_MS ? delay * 2 : MAX_BACKOFF_MS;
        }
        node_set_int(result, "progress", 100);
        publish(a, job_id, result);
        return 1;
}

static int report(struct agent *a, const char *job_id, struct node *result, bool only_new)
{
        /* The stop watchdog asks systemd to wait while this runs. */
        atomic_store(&a->storing, true);
        int k = report_now(a, job_id, result, only_new);
        atomic_store(&a->storing, false);
        return k;
}

static void metrics_write(struct agent *a)
{
        const struct metrics *m = &a->metrics;
        struct buf b = {0};

        if (!a->cfg.jobs_metrics_file)
                return;
        buf_puts(&b, "# HELP firstboot_agent_jobs_total Jobs run by firstboot agent, by module and "
                     "final status.\n# TYPE firstboot_agent_jobs_total counter\n");
        for (size_t i = 0; i < m->n_jobs; i++)
                buf_printf(&b, "firstboot_agent_jobs_total{app_id=\"%s\",status=\"%s\"} %lld\n",
                           m->jobs[i].app_id, m->jobs[i].status, m->jobs[i].n);
        buf_puts(&b, "# HELP firstboot_agent_job_rejections_total Jobs refused, by reason.\n"
                     "# TYPE firstboot_agent_job_rejections_total counter\n");
        for (int r = 1; r < JOB_REFUSAL_MAX; r++)
                buf_printf(&b, "firstboot_agent_job_rejections_total{reason=\"%s\"} %lld\n",
                           job_refusal_to_string(r), m->rejected[r]);
        buf_puts(&b, "# HELP firstboot_agent_job_duration_seconds How long jobs ran.\n"
                     "# TYPE firstboot_agent_job_duration_seconds histogram\n");
        for (size_t i = 0; i < N_BUCKETS; i++)
                buf_printf(&b, "firstboot_agent_job_duration_seconds_bucket{le=\"%g\"} %lld\n",
                           duration_buckets[i], m->buckets[i]);
        buf_printf(&b,
                   "firstboot_agent_job_duration_seconds_bucket{le=\"+Inf\"} %lld\n"
                   "firstboot_agent_job_duration_seconds_sum %.3f\n"
                   "firstboot_agent_job_duration_seconds_count %lld\n",
                   m->duration_count, m->duration_sum, m->duration_count);
        buf_printf(&b,
                   "# HELP firstboot_agent_job_queue_wait_seconds From taking a job to starting "
                   "it.\n# TYPE firstboot_agent_job_queue_wait_seconds summary\n"
                   "firstboot_agent_job_queue_wait_seconds_sum %.3f\n"
                   "firstboot_agent_job_queue_wait_seconds_count %lld\n",
                   m->wait_sum, m->wait_count);
        _cleanup_free_ char *path = root_path(a->root, a->cfg.jobs_metrics_file);
        int k = root_write_file(a->rootfd, a->cfg.jobs_metrics_file, 0755, b.data, b.len, 0644,
                                (uid_t)-1, (gid_t)-1, WRITE_NOSYNC);
        if (k < 0)
                log_warning_errno(k, "Cannot write the metrics to %s: %m", path);
        buf_free(&b);
}

static void metrics_job(struct agent *a, const char *job_id, const char *app_id, const char *status,
                        long long duration_ms, long long wait_ms)
{
        struct metrics *m = &a->metrics;
        struct job_count *c = NULL;
        app_id = app_id ? app_id : "";
        for (size_t i = 0; i < m->n_jobs && !c; i++)
                if (streq(m->jobs[i].app_id, app_id) && streq(m->jobs[i].status, status))
                        c = &m->jobs[i];
        if (!c) {
                m->jobs = xrealloc(m->jobs, (m->n_jobs + 1) * sizeof(*m->jobs));
                c = &m->jobs[m->n_jobs++];
                *c = (struct job_count){.app_id = xstrdup(app_id), .status = xstrdup(status)};
        }
        c->n++;
        if (duration_ms >= 0) {
                double s = (double)duration_ms / 1000;
                for (size_t i = 0; i < N_BUCKETS; i++)
                        if (s <= duration_buckets[i])
                                m->buckets[i]++;
                m->duration_count++;
                m->duration_sum += s;
                m->wait_count++;
                m->wait_sum += (double)wait_ms / 1000;
        }
        pthread_mutex_lock(&a->lock);
        snprintf(a->last_job, sizeof(a->last_job), "%s", job_id);
        snprintf(a->last_status, sizeof(a->last_status), "%s", status);
        a->jobs_done++;
        pthread_mutex_unlock(&a->lock);
        metrics_write(a);
}

static void metrics_free(struct metrics *m)
{
        for (size_t i = 0; i < m->n_jobs; i++) {
                free(m->jobs[i].app_id);
                free(m->jobs[i].status);
        }
        free(m->jobs);
}

/* SET agent:{id}:heartbeat every jobs.heartbeat_s, with an expiry of
 * three times that, on a connection of its own (hiredis contexts are not
 * shared between threads): the panel sees a dead agent by the key's
 * absence. Deleted when the agent stops. */
static void *heartbeat(void *userdata)
{
        struct agent *a = userdata;
        _cleanup_free_ char *key = strprintf("agent:%s:heartbeat", a->agent_id);
        _cleanup_free_ char *ttl = strprintf("%lld", 3 * a->cfg.jobs_heartbeat_s);
        struct redis *r = NULL;
        long long next = 0;

        while (!atomic_load(&a->quit)) {
                if (now_ms() < next) {
                        sleep_ms(100);
                        continue;
                }
                next = now_ms() + a->cfg.jobs_heartbeat_s * 1000;
                _cleanup_free_ char *err = NULL, *text = NULL;
                _cleanup_redis_reply_ struct redis_reply *rep = NULL;
                if (!r && redis_connect(&a->url, REPLY_SLACK_MS, &r, &err) < 0)
                        continue;
                _cleanup_node_ struct node *n = node_new(NODE_MAP);
                node_set_str(n, "agent_id", a->agent_id);
                node_set_str(n, "version", FIRSTBOOT_VERSION);
                node_set_int(n, "time", now_realtime_ms() / 1000);
                pthread_mutex_lock(&a->lock);
                if (*a->current_job) {
                        node_set_str(n, "current_job", a->current_job);
                        node_set_str(n, "current_app", a->current_app);
                } else
                        node_set_null(n, "current_job");
                if (*a->last_job) {
                        node_set_str(n, "last_job", a->last_job);
                        node_set_str(n, "last_status", a->last_status);
                }
                node_set_int(n, "jobs_done", a->jobs_done);
                pthread_mutex_unlock(&a->lock);
                if (json_format(n, false, &text) < 0)
                        continue;
                const char *argv[] = {"SET", key, text, "EX", ttl};
                if (redis_command(r, 5, argv, NULL, 0, &rep, &err) < 0) {
                        redis_free(r);
                        r = NULL;
                }
        }
        if (r) {
                _cleanup_redis_reply_ struct redis_reply *rep = NULL;
                const char *argv[] = {"DEL", key};
                (void)redis_command(r, 2, argv, NULL, 0, &rep, NULL);
                redis_free(r);
        }
        return NULL;
}

/* report() and says what came of it: <0 not stored (the job stays in
 * processing), 0 a result was there already, 1 stored. */
static int report_logged(struct agent *a, const char *job_id, struct node *result, bool only_new)
{
        const char *status = node_get_str(result, "status");
        int k = report(a, job_id, result, only_new);
        if (k < 0)
                log_job(LOG_ERR, NULL, job_id,
                        "Cannot store the result of job %s (%s): %s; it stays in %s, and the next "
                        "start reports it failed (agent restarted)",
                        job_id, status, k == -ECANCELED ? "the agent is stopping" : strerror(-k),
                        a->k_processing);
        else if (k == 0)
                log_job(LOG_NOTICE, NULL, job_id,
                        "Job %s has a result already: this one (%s) is neither stored nor "
                        "published",
                        job_id, status);
        return k;
}

/* Returns what report() did, or 1 when there is nothing to report (no
 * job_id to report it under). */
static int reject(struct agent *a, const struct job_refusal_info *info)
{
        const char *reason = job_refusal_to_string(info->reason);
        if ((unsigned)info->reason < JOB_REFUSAL_MAX)
                a->metrics.rejected[info->reason]++;
        metrics_write(a);
        log_job(LOG_WARNING, MSGID_JOB_REJECTED, info->job_id, "Job %s rejected (%s): %s",
                info->job_id ? info->job_id : "without a job_id", reason, info->message);
        if (!info->job_id)
                return 1;
        _cleanup_node_ struct node *n = node_new(NODE_MAP);
        node_set_str(n, "status", "rejected");
        node_set_str(n, "reason", reason);
        node_set_str(n, "message", info->message);
        return report_logged(a, info->job_id, n, !info->authenticated);
}

static int fail_job(struct agent *a, const char *job_id, const char *app_id, const char *reason,
                    bool only_new)
{
        metrics_job(a, job_id, app_id, "failed", -1, 0);
        log_job(LOG_ERR, MSGID_JOB_FAILED, job_id, "Job %s failed: %s", job_id, reason);
        _cleanup_node_ struct node *n = node_new(NODE_MAP);
        node_set_str(n, "status", "failed");
        node_set_str(n, "reason", reason);
        return report_logged(a, job_id, n, only_new);
}

/* -------- running a job -------- */

struct line_ctx {
        struct agent *a;
        const char *job_id;
        char *fields[3];
};

static void on_line(void *userdata, int stream, const char *line)
{
        struct line_ctx *c = userdata;
        log_full(stream != 1 ? LOG_WARNING : LOG_INFO, c->fields, "%s", line);
        _cleanup_node_ struct node *n = node_new(NODE_MAP);
        node_set_str(n, "job_id", c->job_id);
        node_set_str(n, "status", "running");
        node_set_str(n, "stream", stream == 1 ? "stdout" : stream == 2 ? "stderr" : "firstboot");
        node_set_str(n, "output", line);
        publish(c->a, c->job_id, n);
}

static char **job_env(const struct agent *a, const struct job *j, const struct job_module *jm,
                      unsigned attempt)
{
        char **env = runner_env(a->root, a->instance_id, j->app_id, jm->dir, a->state_dir, attempt);
        strv_push(&env, strprintf("FIRSTBOOT_JOB_ID=%s", j->job_id));
        strv_push(&env, strprintf("FIRSTBOOT_AGENT_ID=%s", a->agent_id));
        runner_env_inputs(&env, &jm->in);
        return env;
}

/* Ends the running job's process group once SIGTERM came stop_timeout_s
 * ago: the runner then sees its script die and returns. While a job runs
 * or a result is being stored, up to stop_timeout_s, kill_grace_ms and
 * STOP_SLACK_MS after SIGTERM, it asks systemd every second to wait
 * (EXTEND_TIMEOUT_USEC, systemd.service(5) on TimeoutStopSec=): a job's
 * stop_timeout_s is not bound by the unit's TimeoutStopSec=. With neither
 * it asks nothing: an agent that hangs otherwise is bounded by
 * TimeoutStopSec=. */
static void *stop_watchdog(void *userdata)
{
        struct agent *a = userdata;
        long long told = 0;
        while (!atomic_load(&a->quit)) {
                sleep_ms(100);
                long long t = atomic_load(&term_at_ms);
                if (!t)
                        continue;
                long long until = t + a->cfg.jobs_stop_timeout_s * 1000 + a->cfg.kill_grace_ms +
                                  STOP_SLACK_MS;
                bool busy = atomic_load(&a->job_running) || atomic_load(&a->storing);
                if (busy && now_ms() < until && now_ms() - told >= 1000) {
                        told = now_ms();
                        (void)notify_extend_timeout((until - told) * 1000);
                }
                if (!atomic_load(&a->job_running))
                        continue;
                if (now_ms() - t < a->cfg.jobs_stop_timeout_s * 1000)
                        continue;
                struct runner_leftover left;
                int k = runner_end_leftover(a->pgid_path, a->cfg.kill_grace_ms, &left);
                if (k > 0)
                        log_warning("Stopping: ended job %s (process group %d%s) after %lld s",
                                    left.label, left.pgid, left.killed_hard ? ", with SIGKILL" : "",
                                    a->cfg.jobs_stop_timeout_s);
                for (int i = 0; i < 10 && !atomic_load(&a->quit); i++)
                        sleep_ms(100);
        }
        return NULL;
}

static int open_job_log(struct agent *a, const char *job_id, char **ret_path)
{
        _cleanup_free_ char *path = strprintf("%s/%s.log", a->jobs_log_dir, job_id);
        _cleanup_close_ int dfd = root_mkdir_p(a->rootfd, in_root(a, a->jobs_log_dir), 0700);
        if (dfd < 0)
                return dfd;
        int fd = root_open(a->rootfd, in_root(a, path),
                           O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return fd;
        if (fchmod(fd, 0600) < 0) {
                int k = -errno;
                close(fd);
                return k;
        }
        *ret_path = TAKE_PTR(path);
        return fd;
}

static int run_job(struct agent *a, const struct job *j, const struct job_module *jm,
                   long long taken_ms)
{
        _cleanup_strv_free_ char **mask = NULL;
        _cleanup_free_ char *script = strprintf("%s/%s", jm->dir, jm->m->install_script);
        _cleanup_free_ char *label = strprintf("job:%s", j->job_id);
        _cleanup_free_ char *logpath = NULL;
        struct runner_result res = {0};
        long long t0 = now_ms();
        unsigned attempt;
        int k;

        for (size_t i = 0; i < jm->in.n; i++)
                if (jm->in.v[i].sensitive && *jm->in.v[i].value)
                        strv_extend(&mask, jm->in.v[i].value);
        strv_extend(&mask, a->secret);

        _cleanup_close_ int logfd = open_job_log(a, j->job_id, &logpath);
        if (logfd < 0) {
                _cleanup_free_ char *why = strprintf("cannot open the job's log in %s: %s",
                                                     a->jobs_log_dir, strerror(-logfd));
                return fail_job(a, j->job_id, j->app_id, why, false);
        }
        log_job(LOG_INFO, MSGID_JOB_STARTED, j->job_id, "Job %s started: %s%s%s, waited %lld ms",
                j->job_id, j->app_id, j->user_id ? " for " : "", j->user_id ? j->user_id : "",
                t0 - taken_ms);
        publish_status(a, j->job_id, "running", 0, "started");
        notify_status(label);
        pthread_mutex_lock(&a->lock);
        snprintf(a->current_job, sizeof(a->current_job), "%s", j->job_id);
        snprintf(a->current_app, sizeof(a->current_app), "%s", j->app_id);
        pthread_mutex_unlock(&a->lock);
        atomic_store(&a->job_running, true);
        for (attempt = 1;; attempt++) {
                _cleanup_strv_free_ char **env = job_env(a, j, jm, attempt);
                char *argv[] = {script, NULL};
                struct line_ctx lc = {.a = a, .job_id = j->job_id};
                lc.fields[0] = strprintf("FIRSTBOOT_JOB=%s", j->job_id);
                lc.fields[1] = strprintf("FIRSTBOOT_MODULE=%s", j->app_id);
                dprintf(logfd, "--- %s attempt %u ---\n", j->app_id, attempt);
                struct runner_spec spec = {
                        .argv = argv,
                        .envp = env,
                        .cwd = jm->dir,
                        .timeout_ms = jm->m->timeout_seconds * 1000,
                        .kill_grace_ms = a->cfg.kill_grace_ms,
                        .mask = mask,
                        .log_fd = logfd,
                        .on_line = on_line,
                        .userdata = &lc,
                        .tail_lines = LOG_TAIL_LINES,
                        .log_max = a->cfg.max_module_log,
                        .pgid_file = a->pgid_path,
                        .pgid_label = label,
                };
                runner_result_free(&res);
                res = (struct runner_result){0};
                k = runner_exec(&spec, &res);
                free(lc.fields[0]);
                free(lc.fields[1]);
                if (k < 0) {
                        log_job(LOG_ERR, NULL, j->job_id, "Cannot start %s: %s", script,
                                strerror(-k));
                        res.exit_code = 127;
                }
                /* Without it a killed agent's successor cannot end the job's
                 * process group: said, as `firstboot run` says it. */
                if (res.pgid_error < 0)
                        log_job(LOG_WARNING, NULL, j->job_id,
                                "Cannot record job %s's process group in %s: %s", j->job_id,
                                a->pgid_path, strerror(-res.pgid_error));
                long long delay = runner_retry_delay_ms(res.exit_code, attempt,
                                                        (unsigned)a->cfg.module_attempts,
                                                        a->cfg.retry_backoff_ms);
                if (delay < 0 || got_term)
                        break;
                _cleanup_free_ char *msg =
                        strprintf("attempt %u exited 2, retrying in %lld ms", attempt, delay);
                log_job(LOG_NOTICE, NULL, j->job_id, "Job %s: %s", j->job_id, msg);
                publish_status(a, j->job_id, "running", 0, msg);
                for (long long w = 0; w < delay && !got_term; w += 100)
                        sleep_ms(delay - w < 100 ? delay - w : 100);
                if (got_term)
                        break;
        }
        atomic_store(&a->job_running, false);
        pthread_mutex_lock(&a->lock);
        a->current_job[0] = a->current_app[0] = '\0';
        pthread_mutex_unlock(&a->lock);

        long long duration = now_ms() - t0;
        bool ok = res.exit_code == 0 && res.log_error == 0;
        _cleanup_node_ struct node *n = node_new(NODE_MAP);
        node_set_str(n, "status", ok ? "succeeded" : "failed");
        node_set_str(n, "app_id", j->app_id);
        node_set_int(n, "exit_code", res.exit_code);
        node_set_int(n, "attempts", attempt);
        node_set_int(n, "duration_ms", duration);
        node_set_int(n, "queue_wait_ms", t0 - taken_ms);
        if (!ok) {
                _cleanup_free_ char *why =
                        res.exit_code == 0
                                ? strprintf("cannot write its log: %s", strerror(-res.log_error))
                        : res.timed_out ? strprintf("timed out after %lld s",
                                                    (long long)jm->m->timeout_seconds)
                        : got_term
                                ? strprintf("exit code %d (the agent was stopping)", res.exit_code)
                                : strprintf("exit code %d", res.exit_code);
                node_set_str(n, "reason", why);
        }
        struct node *tail = node_new(NODE_SEQ);
        for (char **l = res.tail; l && *l; l++)
                node_append(tail, NULL, node_new_scalar(SCALAR_STR, *l));
        node_set(n, "log_tail", tail);
        if (ok)
                log_job(LOG_INFO, MSGID_JOB_FINISHED, j->job_id, "Job %s (%s) succeeded in %lld ms",
                        j->job_id, j->app_id, duration);
        else
                log_job(LOG_ERR, MSGID_JOB_FAILED, j->job_id,
                        "Job %s (%s) failed: exit code %d after %u attempt%s", j->job_id, j->app_id,
                        res.exit_code, attempt, attempt == 1 ? "" : "s");
        runner_result_free(&res);
        metrics_job(a, j->job_id, j->app_id, ok ? "succeeded" : "failed", duration, t0 - taken_ms);
        return report_logged(a, j->job_id, n, false);
}

/* The run lock, as `firstboot run` takes it: waits while a run holds it.
 * -ECANCELED on SIGTERM. */
static int take_lock(struct agent *a, const char *job_id)
{
        int fd = root_open(a->rootfd, in_root(a, a->lock_path),
                           O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        bool told = false;
        if (fd < 0)
                return fd;
        while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno != EWOULDBLOCK) {
                        int k = -errno;
                        close(fd);
                        return k;
                }
                if (got_term) {
                        close(fd);
                        return -ECANCELED;
                }
                if (!told && job_id) {
                        publish_status(a, job_id, "queued", 0,
                                       "waiting for firstboot run to finish");
                        told = true;
                }
                sleep_ms(200);
        }
        return fd;
}

/* How this agent checks a job: its id, its secret, its limits, now. */
static struct job_verify_options verify_options(const struct agent *a)
{
        return (struct job_verify_options){
                .agent_id = a->agent_id,
                .secret = a->secret,
                .secret_len = a->secret_len,
                .now = now_realtime_ms() / 1000,
                .max_skew_s = a->cfg.jobs_max_skew_s,
                .max_bytes = (size_t)a->cfg.jobs_max_job_bytes,
        };
}

/* job_verify() on elem, tried again after a pause (1 s, then 2 s) when it
 * fails for a reason that is not the job's (out of memory): VERIFY_ATTEMPTS
 * in all, fewer after SIGTERM. Returns what the last attempt did. */
static int verify(struct agent *a, const char *elem, size_t len, struct job_verify_options *o,
                  struct job **ret, struct job_refusal_info *info)
{
        for (unsigned attempt = 1;; attempt++) {
                *o = verify_options(a);
                int k = job_verify(elem, len, o, ret, info);
                if (k >= 0 || attempt == VERIFY_ATTEMPTS || got_term)
                        return k;
                long long delay = 1000LL << (attempt - 1);
                log_warning("Cannot verify the job taken into %s (attempt %u of %d): %s; trying "
                            "again in %lld s",
                            a->k_processing, attempt, VERIFY_ATTEMPTS, strerror(-k), delay / 1000);
                job_refusal_info_done(info);
                for (long long waited = 0; waited < delay && !got_term; waited += 100)
                        sleep_ms(100);
                if (got_term)
                        return k;
        }
}

/* Verifies, runs and reports one job. <0 when its result (or refusal) is
 * not stored: the job then stays in processing, for the next start. */
static int handle(struct agent *a, const char *elem, size_t len, long long taken_ms)
{
        struct job_verify_options o;
        struct job_refusal_info info = {0};
        _cleanup_job_ struct job *j = NULL;
        int k = verify(a, elem, len, &o, &j, &info);

        if (k < 0 && info.job_id) {
                /* Its id was read: whoever waits for it is told. SET NX
                 * even when the signature was checked: the replay check
                 * has not run, and a replay never replaces a real result. */
                _cleanup_free_ char *why =
                        strprintf("the agent could not verify it: %s", strerror(-k));
                k = fail_job(a, info.job_id, NULL, why, true);
                job_refusal_info_done(&info);
                return k;
        }
        if (k < 0) {
                log_error("Cannot verify the job taken into %s: %s (%s); it stays there, and "
                          "the next start checks it again",
                          a->k_processing, strerror(-k),
                          got_term ? "the agent is stopping"
                                   : "tried " STR(VERIFY_ATTEMPTS) " times");
                return k;
        }
        if (k > 0) {
                k = reject(a, &info);
                job_refusal_info_done(&info);
                return k;
        }
        _cleanup_close_ int lockfd = take_lock(a, j->job_id);
        if (lockfd < 0) {
                _cleanup_free_ char *why =
                        lockfd == -ECANCELED
                                ? xstrdup("the agent stopped before the job started")
                                : strprintf("cannot take the run lock: %s", strerror(-lockfd));
                /* Not yet known to be new (the replay check comes under the
                 * lock): SET NX, so a replay never replaces a real result. */
                return fail_job(a, j->job_id, j->app_id, why, true);
        }
        _cleanup_free_ char *seen = strprintf("%s/" JOBS_SEEN_FILE, a->state_dir);
        k = jobs_seen_add(a->seen, j->job_id, j->issued_at + a->cfg.jobs_max_skew_s + 1, o.now);
        if (k == -EBADMSG)
                log_warning("%s had lines that make no sense: dropped", seen);
        else if (k == -EEXIST) {
                info = (struct job_refusal_info){
                        .reason = JOB_REPLAY,
                        .message = strprintf("job %s was taken before", j->job_id),
                        .job_id = xstrdup(j->job_id),
                        /* Reported as for an unchecked job (SET NX): the
                         * first run's result stays. */
                        .authenticated = false,
                };
                k = reject(a, &info);
                job_refusal_info_done(&info);
                return k;
        } else if (k < 0) {
                _cleanup_free_ char *why =
                        strprintf("cannot record the job id in %s: %s", seen, strerror(-k));
                return fail_job(a, j->job_id, j->app_id, why, false);
        }
        /* It may have waited for the lock past its expiry: checked again. */
        long long now_s = now_realtime_ms() / 1000;
        if (j->expires_at > 0 && now_s >= j->expires_at) {
                info = (struct job_refusal_info){
                        .reason = JOB_EXPIRED,
                        .message = strprintf("the job expired %lld s ago, while it waited for "
                                             "the run lock",
                                             now_s - j->expires_at),
                        .job_id = xstrdup(j->job_id),
                        .authenticated = true,
                };
                k = reject(a, &info);
                job_refusal_info_done(&info);
                return k;
        }
        struct job_module jm = {0};
        k = jobs_find_module(j, a->root, a->cfg.modules_dir, &jm, &info);
        if (k != 0) {
                if (k > 0)
                        k = reject(a, &info);
                else
                        k = fail_job(a, j->job_id, j->app_id, "out of memory", false);
                job_refusal_info_done(&info);
                return k;
        }
        k = run_job(a, j, &jm, taken_ms);
        job_module_done(&jm);
        return k;
}

static int lrem_processing(struct agent *a, const char *elem, size_t len)
{
        const char *argv[] = {"LREM", a->k_processing, "1", elem};
        const size_t lens[] = {4, strlen(a->k_processing), 1, len};
        return command_reliably(a, 4, argv, lens, NULL, NULL);
}

/* Jobs a killed agent left in processing: failed, "agent restarted"
 * (a result already there, of a job that finished before the kill,
 * stays), never run again. */
static void recover(struct agent *a)
{
        _cleanup_redis_reply_ struct redis_reply *rep = NULL;
        const char *argv[] = {"LRANGE", a->k_processing, "0", "-1"};
        if (!conn(a) || command(a, 4, argv, NULL, 0, &rep, NULL) < 0 || rep->type != REDIS_R_ARRAY)
                return;
        for (size_t i = 0; i < rep->n; i++) {
                const struct redis_reply *e = rep->items[i];
                if (e->type != REDIS_R_STRING)
                        continue;
                struct job_verify_options o = verify_options(a);
                struct job_refusal_info info = {0};
                _cleanup_job_ struct job *j = NULL;
                int k = job_verify(e->str, e->len, &o, &j, &info);
                if (k < 0) {
                        /* Not the element's fault: never dropped for it. */
                        log_error("Cannot verify an element left in %s: %s; it stays there, "
                                  "for the next start",
                                  a->k_processing, strerror(-k));
                        job_refusal_info_done(&info);
                        continue;
                }
                const char *id = k == 0 ? j->job_id : info.authenticated ? info.job_id : NULL;
                int stored = 1;
                if (id)
                        stored =
                                fail_job(a, id, k == 0 ? j->app_id : NULL, "agent restarted", true);
                else
                        log_warning("Dropped an element left in %s: %s", a->k_processing,
                                    k > 0 ? info.message : "unreadable");
                job_refusal_info_done(&info);
                if (stored >= 0)
                        lrem_processing(a, e->str, e->len);
        }
}

/* The shared secret, by the rules every reader of it follows (common/job.h),
 * with the agent's own: no symbolic link, owned by the agent's user. */
static int read_secret(struct agent *a)
{
        _cleanup_free_ char *why = NULL;
        int k = job_secret_read(a->rootfd, a->cfg.jobs_secret_file,
                                JOB_SECRET_NOFOLLOW | JOB_SECRET_OWNED, &a->secret, &a->secret_len,
                                &why);
        if (k < 0) {
                log_error("jobs.secret_file: %s", why);
                return k;
        }
        return 0;
}

/* jobs.tls_ca_file, tls_cert_file and tls_key_file, opened inside the
 * root (no link followed out of it) once at start, and handed to OpenSSL
 * as /proc/self/fd/N on every connection: a missing file stops the agent
 * at once, naming the key. A renewed file is read after a restart. */
static int open_tls_files(struct agent *a, const char *config_path)
{
        const char *const keys[] = {"tls_ca_file", "tls_cert_file", "tls_key_file"};
        const char *const files[] = {a->cfg.jobs_tls_ca_file, a->cfg.jobs_tls_cert_file,
                                     a->cfg.jobs_tls_key_file};
        char **dest[] = {&a->url.tls_ca_file, &a->url.tls_cert_file, &a->url.tls_key_file};
        const char **shown[] = {&a->url.tls_ca_shown, &a->url.tls_cert_shown,
                                &a->url.tls_key_shown};

        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                if (!files[i])
                        continue;
                if (!a->url.tls) {
                        log_error("%s: jobs.%s is set, but jobs.redis_url is not rediss:// (TLS)",
                                  config_path, keys[i]);
                        return -EINVAL;
                }
                a->tls_fds[i] =
                        root_open(a->rootfd, files[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
                if (a->tls_fds[i] < 0)
                        return log_error_errno(a->tls_fds[i], "%s: cannot open jobs.%s %s: %m",
                                               config_path, keys[i], files[i]);
                /* Opened without blocking (a FIFO would hang the open), then
                 * read only as a regular file; the key as job_secret_read()
                 * reads the secret: no access for group and others. */
                struct stat st;
                if (fstat(a->tls_fds[i], &st) < 0)
                        return log_error_errno(-errno, "%s: cannot stat jobs.%s %s: %m",
                                               config_path, keys[i], files[i]);
                if (!S_ISREG(st.st_mode)) {
                        log_error("%s: jobs.%s %s is not a regular file", config_path, keys[i],
                                  files[i]);
                        return -EINVAL;
                }
                if (i == 2 && (st.st_mode & 0077)) {
                        log_error("%s: jobs.%s %s is mode %04o: group and others must have no "
                                  "access (chmod 0600)",
                                  config_path, keys[i], files[i], (unsigned)(st.st_mode & 07777));
                        return -EPERM;
                }
                *dest[i] = strprintf("/proc/self/fd/%d", a->tls_fds[i]);
                *shown[i] = files[i]; /* OpenSSL's errors name the configured file */
        }
        a->url.tls_ca_option = "jobs.tls_ca_file";
        if (!a->url.tls_cert_file != !a->url.tls_key_file) {
                log_error("%s: jobs.tls_cert_file and jobs.tls_key_file go together", config_path);
                return -EINVAL;
        }
        return 0;
}

static void agent_free(struct agent *a)
{
        redis_free(a->r);
        redis_url_done(&a->url);
        for (size_t i = 0; i < ARRAY_SIZE(a->tls_fds); i++)
                if (a->tls_fds[i] >= 0)
                        close(a->tls_fds[i]);
        if (a->secret)
                explicit_bzero(a->secret, a->secret_len);
        free(a->secret);
        free(a->state_dir);
        free(a->jobs_log_dir);
        free(a->lock_path);
        free(a->pgid_path);
        free(a->agent_id);
        free(a->k_jobs);
        free(a->k_processing);
        free(a->instance_id);
        jobs_seen_free(a->seen);
        metrics_free(&a->metrics);
        config_free(&a->cfg);
        if (a->rootfd >= 0)
                close(a->rootfd);
}

static void usage(FILE *f)
{
        fprintf(f, "Usage: firstboot agent [OPTIONS]\n\n"
                   "Takes signed jobs from the Redis queue agent:{jobs.agent_id}:jobs and runs\n"
                   "their modules one at a time, reporting on job:{job_id}:updates and\n"
                   "job:{job_id}:result (README \"Jobs\", firstboot(8)).\n\n"
                   "  --root DIR            work on the system under DIR (tests)\n"
                   "  --config FILE         default " CONFIG_DEFAULT_PATH " (under the root),\n"
                   "                        then FILE.d/*.conf (jobs: only)\n"
                   "Exit status: 0 stopped by SIGTERM, 1 cannot start, 2 usage error.\n");
}

int cmd_agent(int argc, char **argv)
{
        static const struct option opts[] = {
                {"root", required_argument, NULL, 'r'},
                {"config", required_argument, NULL, 'c'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        struct agent a = {.rootfd = -1, .tls_fds = {-1, -1, -1}, .lock = PTHREAD_MUTEX_INITIALIZER};
        const char *config = NULL;
        struct diags d = {0};
        _cleanup_free_ char *config_path = NULL, *err = NULL, *root_abs = NULL;
        int c, k;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'r':
                        a.root = optarg;
                        break;
                case 'c':
                        config = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "firstboot agent: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (a.root && (streq(a.root, "/") || !*a.root))
                a.root = NULL;
        if (a.root) {
                root_abs = realpath(a.root, NULL);
                if (!root_abs || !is_dir(root_abs)) {
                        log_error("--root %s is not a directory", a.root);
                        return 2;
                }
                a.root = root_abs;
        }
        a.rootfd = root_open_dir(a.root);
        if (a.rootfd < 0) {
                log_error_errno(a.rootfd, "--root %s: %m", a.root ? a.root : "/");
                return 2;
        }
        config_path = config ? xstrdup(config) : root_path(a.root, CONFIG_DEFAULT_PATH);
        if ((config ? config_load(config_path, true, &a.cfg, &d)
                    : config_load_root(a.rootfd, config_path, &a.cfg, &d)) < 0 ||
            config_load_dropins(config ? -1 : a.rootfd, config ? config : CONFIG_DEFAULT_PATH,
                                config_path, &a.cfg, &d) < 0) {
                for (size_t i = 0; i < d.n; i++) {
                        _cleanup_free_ char *s = diag_format(&d.v[i]);
                        log_error("%s", s);
                }
                diags_free(&d);
                agent_free(&a);
                return 1;
        }
        if (!a.cfg.jobs_redis_url) {
                log_error("%s: jobs.redis_url is not set: the agent has no queue", config_path);
                agent_free(&a);
                return 1;
        }
        if (redis_url_parse(a.cfg.jobs_redis_url, &a.url, &err) < 0) {
                log_error("%s: jobs.redis_url: %s", config_path, err);
                agent_free(&a);
                return 1;
        }
        if (open_tls_files(&a, config_path) < 0) {
                agent_free(&a);
                return 1;
        }
        if (a.cfg.jobs_agent_id)
                a.agent_id = xstrdup(a.cfg.jobs_agent_id);
        else {
                char host[256] = "";
                gethostname(host, sizeof(host) - 1);
                a.agent_id = xstrdup(host);
        }
        if (!job_agent_id_is_valid(a.agent_id)) {
                log_error("%s: jobs.agent_id \"%s\" must be 1 to %d letters, digits, '.', '_' or "
                          "'-'",
                          config_path, a.agent_id, JOB_AGENT_ID_MAX);
                agent_free(&a);
                return 1;
        }
        if (read_secret(&a) < 0) {
                agent_free(&a);
                return 1;
        }
        a.state_dir = root_path(a.root, a.cfg.state_dir);
        _cleanup_free_ char *jobs_log = strprintf("%s/jobs", a.cfg.log_dir);
        a.jobs_log_dir = root_path(a.root, jobs_log);
        a.lock_path = strprintf("%s/run.lock", a.state_dir);
        a.pgid_path = strprintf("%s/" RUNNER_PGID_FILE, a.state_dir);
        a.k_jobs = strprintf("agent:%s:jobs", a.agent_id);
        a.k_processing = strprintf("agent:%s:processing", a.agent_id);
        {
                _cleanup_free_ char *seen = strprintf("%s/" JOBS_SEEN_FILE, a.state_dir);
                a.seen = jobs_seen_new(a.rootfd, in_root(&a, seen));
        }
        {
                _cleanup_close_ int fd = root_mkdir_p(a.rootfd, in_root(&a, a.state_dir), 0700);
                if (fd < 0) {
                        log_error_errno(fd, "Cannot create %s: %m", a.state_dir);
                        agent_free(&a);
                        return 1;
                }
                _cleanup_free_ char *iid = strprintf("%s/instance-id", a.state_dir);
                (void)root_read_line(a.rootfd, in_root(&a, iid), &a.instance_id);
        }

        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        pthread_t wd, hb;
        if ((k = pthread_create(&wd, NULL, stop_watchdog, &a)) != 0) {
                log_error_errno(k, "Cannot start a thread: %m");
                agent_free(&a);
                return 1;
        }

        /* What a killed agent (or run) left: its script's process group,
         * under the lock, then the jobs it had taken. */
        {
                _cleanup_close_ int lockfd = take_lock(&a, NULL);
                if (lockfd >= 0) {
                        struct runner_leftover left;
                        k = runner_end_leftover(a.pgid_path, a.cfg.kill_grace_ms, &left);
                        if (k > 0)
                                log_warning("Ended %s, left running by an earlier agent or run "
                                            "(process group %d)",
                                            left.label, left.pgid);
                }
        }
        if (conn(&a))
                recover(&a);
        if (fatal) {
                atomic_store(&a.quit, true);
                pthread_join(wd, NULL);
                agent_free(&a);
                return 1;
        }
        bool have_hb = !fatal && pthread_create(&hb, NULL, heartbeat, &a) == 0;
        metrics_write(&a);
        log_info("Agent %s waiting for jobs on %s", a.agent_id, a.k_jobs);
        notify_ready();
        {
                _cleanup_free_ char *st = strprintf("Waiting for jobs on %s", a.k_jobs);
                notify_status(st);
        }

        while (!got_term) {
                _cleanup_redis_reply_ struct redis_reply *rep = NULL;
                if (got_hup) {
                        got_hup = 0;
                        /* Manifests are read for each job: nothing is cached to reload. */
                        log_info("SIGHUP: manifests are read afresh for every job");
                }
                if (!conn(&a))
                        break;
                const char *cmd[] = {"BLMOVE", a.k_jobs, a.k_processing, "RIGHT", "LEFT", "1"};
                _cleanup_free_ char *why = NULL;
                k = command(&a, 6, cmd, NULL, BLOCK_S * 1000 + REPLY_SLACK_MS, &rep, &why);
                if (k == -EREMOTEIO) {
                        /* Only a server that does not know the command is
                         * too old (BLMOVE came with 6.2); anything else
                         * (WRONGTYPE, OOM, READONLY, NOPERM) is said as the
                         * server says it. */
                        if (startswith(why, "ERR unknown command"))
                                log_error("Redis refused BLMOVE on %s: %s (the agent needs Redis "
                                          "6.2 or later)",
                                          a.k_jobs, why);
                        else
                                log_error("Redis refused BLMOVE on %s: %s", a.k_jobs, why);
                        for (int i = 0; i < MAX_BACKOFF_MS / 100 && !got_term; i++)
                                sleep_ms(100);
                        continue;
                }
                if (k < 0 || rep->type != REDIS_R_STRING)
                        continue;
                long long taken = now_ms();
                if (handle(&a, rep->str, rep->len, taken) < 0)
                        continue; /* left in processing, said why */
                if (lrem_processing(&a, rep->str, rep->len) < 0)
                        log_warning("Cannot remove the job from %s: the next start reports it "
                                    "as agent restarted, unless its result is there",
                                    a.k_processing);
                notify_status("Waiting for jobs");
        }
        atomic_store(&a.quit, true);
        pthread_join(wd, NULL);
        if (have_hb)
                pthread_join(hb, NULL);
        log_info("Agent %s stopped%s", a.agent_id, fatal ? " on an error" : "");
        agent_free(&a);
        return fatal ? 1 : 0;
}
