/* firstboot status, analyze and logs: what happened, from a shell or a
 * script, without reading a debug log.
 *
 * The JSON output is stable: within a version fields may be added, none is
 * removed or changes meaning. firstboot(8) documents the same.
 *
 * `firstboot status --json`, version 1:
 *   version             1
 *   state               "ready", "failed", "running", "not-started" or "dead"
 *                       (dead: status.json says running but no process holds
 *                       STATE_DIR/run.lock, so the agent was killed or crashed)
 *   timed_out           true when --wait gave up at --timeout
 *   instance_id, source, hostname, bundle
 *                       strings, or null until the run knows them
 *   boot                this instance's run number, from 1 (0: no run)
 *   started_ms, finished_ms
 *                       wall clock, ms since the epoch (0: not yet)
 *   agent_ms            the agent's own time: the run less its modules
 *   current             the module running now, or null
 *   current_elapsed_ms  how long it has been running, or null
 *   error               why the run failed or died, or null
 *   counts              {"pending", "running", "done", "failed", "skipped"}
 *   modules             [{"id", "state" (pending, running, done, failed or
 *                       skipped), "frequency", "attempts", "exit_code" (null:
 *                       never finished), "started_ms", "duration_ms", "ran"
 *                       (executed by this run, not carried over from an
 *                       earlier one), "reason" (or null)}], in run order
 *   phone_home          {"state" (none, sent or failed), "attempts", "error"}
 *
 * `firstboot analyze --json`, version 1:
 *   version             1
 *   instance_id, source, bundle, boot
 *                       as in status
 *   state               "ready", "failed", "running" or "dead"
 *   started_ms, finished_ms
 *                       as in status
 *   duration_ms         the whole run, or null while it runs
 *   modules_ms          the time of the modules this run executed
 *   agent_ms            the rest, the agent's own overhead: datasource,
 *                       verification, unpacking, files, the callback
 *   modules             [{"id", "state", "boot" (the run that executed it,
 *                       or null when unknown or never started), "start_ms"
 *                       (from that run's start, or null), "started_ms",
 *                       "duration_ms", "attempts", "exit_code" (or null),
 *                       "ran"}], slowest first
 *   runs                [{"instance_id", "boot", "state", "started_ms",
 *                       "finished_ms", "duration_ms" (or null), "modules_ms",
 *                       "agent_ms", "ran" (modules executed), "failed"
 *                       (modules failed)}], every recorded run (STATE_DIR/
 *                       instances/ID/runs/boot-N.json and the current one),
 *                       oldest first */
#include "commands.h"
#include "config.h"
#include "fs.h"
#include "journal.h"
#include "json.h"
#include "log.h"
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

/* Paths of a root's state, from its firstboot.conf when there is one. */
/* The paths are root_path()s, for messages; every read resolves them
 * inside the root (rootfd), so a link in the root never leads a read to
 * the host's files. */
struct paths {
        char *root, *state_dir, *status, *lock, *log_dir;
        int rootfd;
};

/* Where a path of struct paths is inside the root. */
static const char *paths_rel(const struct paths *p, const char *path)
{
        return path_in_root(p->root, path);
}

static int paths_load(const char *root, struct paths *ret)
{
        _cleanup_free_ char *conf = root_path(root, CONFIG_DEFAULT_PATH);
        struct config c;
        struct diags d = {0};

        ret->rootfd = root_open_dir(root);
        if (ret->rootfd < 0) {
                log_error_errno(ret->rootfd, "Failed to open %s: %m", root ? root : "/");
                return ret->rootfd;
        }
        if (config_load_root(ret->rootfd, conf, &c, &d) < 0) {
                for (size_t i = 0; i < d.n; i++) {
                        _cleanup_free_ char *s = diag_format(&d.v[i]);
                        log_error("%s", s);
                }
                diags_free(&d);
                close(ret->rootfd);
                ret->rootfd = -1;
                return -EINVAL;
        }
        ret->root = root ? xstrdup(root) : NULL;
        ret->state_dir = root_path(root, c.state_dir);
        ret->log_dir = root_path(root, c.log_dir);
        ret->status = strprintf("%s/status.json", ret->state_dir);
        ret->lock = strprintf("%s/run.lock", ret->state_dir);
        config_free(&c);
        return 0;
}

static void paths_free(struct paths *p)
{
        if (p->rootfd >= 0)
                close(p->rootfd);
        p->rootfd = -1;
        free(p->root);
        free(p->state_dir);
        free(p->status);
        free(p->lock);
        free(p->log_dir);
}

/* Whether /proc/locks lists a lock on the file dev:ino. Returns 1 or 0,
 * or -errno when /proc/locks cannot be read. */
static int proc_locks_has(dev_t dev, ino_t ino)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/locks", "re");
        char line[256];

        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                /* "1: FLOCK  ADVISORY  WRITE 123 fe:00:456 0 EOF"; waiters
                 * ("1: -> FLOCK ...") hold nothing. */
                if (strstr(line, "->"))
                        continue;
                for (char *s = NULL, *t = strtok_r(line, " \t\n", &s); t;
                     t = strtok_r(NULL, " \t\n", &s)) {
                        unsigned maj, min;
                        unsigned long long i;
                        int end = 0;
                        if (sscanf(t, "%x:%x:%llu%n", &maj, &min, &i, &end) == 3 &&
                            t[end] == '\0' && makedev(maj, min) == dev &&
                            i == (unsigned long long)ino)
                                return 1;
                }
        }
        return 0;
}

/* Whether a firstboot run holds the lock now: 1 yes, 0 no, -errno when it
 * cannot be told. /proc/locks answers without touching the lock: even a
 * shared lock held for a moment would make an agent starting just then
 * refuse to run. Only without /proc is the lock itself tried. */
static int agent_running(const struct paths *p)
{
        struct stat sb;

        /* Inside the root, not waiting on a FIFO, not following a link out
         * of it: the lock is a regular file the agent made. */
        _cleanup_close_ int fd =
                root_open(p->rootfd, paths_rel(p, p->lock), O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
        if (fd < 0)
                return fd == -ENOENT ? 0 : fd;
        if (fstat(fd, &sb) < 0)
                return -errno;
        if (!S_ISREG(sb.st_mode))
                return -EINVAL;
        int r = proc_locks_has(sb.st_dev, sb.st_ino);
        if (r >= 0)
                return r;
        if (flock(fd, LOCK_SH | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? 1 : -errno;
        (void)flock(fd, LOCK_UN);
        return 0;
}

enum outcome {
        OUT_READY,
        OUT_FAILED,
        OUT_RUNNING,
        OUT_NOT_STARTED,
        OUT_DEAD,
};

static const char *const outcome_names[] = {
        [OUT_READY] = "ready",     [OUT_FAILED] = "failed",
        [OUT_RUNNING] = "running", [OUT_NOT_STARTED] = "not-started",
        [OUT_DEAD] = "dead",
};

#define DEAD_MESSAGE                                                                               \
        "the agent stopped before finishing (no process holds the run lock); the next "            \
        "'firstboot run' resumes"

static bool outcome_final(enum outcome o)
{
        return o == OUT_READY || o == OUT_FAILED || o == OUT_DEAD;
}

/* Reads status.json into *st. Returns 1 when read, 0 when there is none,
 * or a negative errno after logging why it cannot be read. */
static int status_load(const struct paths *p, const char *path, struct run_status *st)
{
        struct diags d = {0};
        int r = run_status_read(p->rootfd, paths_rel(p, path), path, st, &d);
        if (r == -ENOENT) {
                diags_free(&d);
                *st = (struct run_status){0};
                return 0;
        }
        if (r < 0) {
                if (d.n > 0)
                        diags_print(&d, stderr);
                else
                        log_error_errno(r, "Failed to read %s: %m", path);
                diags_free(&d);
                return r;
        }
        diags_free(&d);
        return 1;
}

/* What state provisioning is in, and the status behind it. An agent
 * writes its final status before it lets go of the lock, so when the lock
 * is found free the status is read again: a run that finished between the
 * two looks finished, not dead. */
static int observe(const struct paths *p, struct run_status *st, enum outcome *ret)
{
        for (int pass = 0;; pass++) {
                int r = status_load(p, p->status, st);
                if (r < 0)
                        return r;
                if (r > 0 && st->state == RUN_READY) {
                        *ret = OUT_READY;
                        return 0;
                }
                if (r > 0 && st->state == RUN_FAILED) {
                        *ret = OUT_FAILED;
                        return 0;
                }
                int a = agent_running(p);
                if (a < 0) {
                        run_status_free(st);
                        return log_error_errno(a, "Failed to check the lock %s: %m", p->lock);
                }
                if (a > 0) {
                        *ret = OUT_RUNNING;
                        return 0;
                }
                if (r == 0) {
                        *ret = OUT_NOT_STARTED;
                        return 0;
                }
                if (pass > 0) {
                        *ret = OUT_DEAD;
                        return 0;
                }
                run_status_free(st);
        }
}

static int outcome_exit(enum outcome o)
{
        switch (o) {
        case OUT_READY:
                return 0;
        case OUT_FAILED:
        case OUT_DEAD:
                return 1;
        default:
                return 2;
        }
}

static unsigned count(const struct run_status *st, enum module_state s)
{
        unsigned n = 0;
        for (size_t i = 0; i < st->n_modules; i++)
                n += st->modules[i].state == s;
        return n;
}

/* Durations as seconds with milliseconds: "12.345s", "-0.010s". */
static char *fmt_secs(long long ms)
{
        unsigned long long a = ms < 0 ? (unsigned long long)-ms : (unsigned long long)ms;
        return strprintf("%s%llu.%03llus", ms < 0 ? "-" : "", a / 1000, a % 1000);
}

/* Wall-clock times in UTC, so output does not depend on the reader's zone. */
static char *fmt_time(long long epoch_ms)
{
        time_t t = (time_t)(epoch_ms / 1000);
        struct tm tm;
        char b[64];

        if (epoch_ms <= 0 || !gmtime_r(&t, &tm) ||
            strftime(b, sizeof(b), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                return xstrdup("-");
        return xstrdup(b);
}

/* How long the module running now has run, or -1. */
static long long current_elapsed(enum outcome o, const struct run_status *st)
{
        const struct module_status *m = st->current ? run_status_find(st, st->current) : NULL;
        if (o != OUT_RUNNING || !m || m->started_ms <= 0)
                return -1;
        long long el = now_realtime_ms() - m->started_ms;
        return el < 0 ? 0 : el;
}

/* The one-line summary --wait shows while it waits. On a terminal it
 * carries the elapsed time and is redrawn in place; otherwise it leaves
 * the time out, so a new line appears only when something changed. */
static char *progress_line(enum outcome o, const struct run_status *st, bool with_time)
{
        if (o == OUT_NOT_STARTED)
                return xstrdup("not-started: waiting for 'firstboot run'");
        if (st->n_modules == 0)
                return xstrdup("running: preparing");

        unsigned failed = count(st, MOD_FAILED) + count(st, MOD_SKIPPED);
        _cleanup_free_ char *head =
                strprintf("running: %u/%zu done", count(st, MOD_DONE), st->n_modules);
        _cleanup_free_ char *fail = failed ? strprintf(", %u failed", failed) : xstrdup("");
        const struct module_status *m = st->current ? run_status_find(st, st->current) : NULL;
        if (!m)
                return strprintf("%s%s", head, fail);
        long long el = current_elapsed(o, st);
        _cleanup_free_ char *t = with_time && el >= 0 ? fmt_secs(el) : NULL;
        return strprintf("%s%s, %s (attempt %u%s%s)", head, fail, m->id, m->attempts, t ? ", " : "",
                         t ? t : "");
}

static size_t terminal_width(void)
{
        struct winsize w;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 1)
                return w.ws_col;
        return 80;
}

static void print_status(enum outcome o, const struct run_status *st, bool json, bool timed_out,
                         long long timeout_s)
{
        const char *error = st->error ? st->error : o == OUT_DEAD ? DEAD_MESSAGE : NULL;
        long long el = current_elapsed(o, st);

        if (json) {
                _cleanup_node_ struct node *n = run_status_to_node(st);
                _cleanup_free_ char *text = NULL;
                node_set_str(n, "state", outcome_names[o]);
                node_set_bool(n, "timed_out", timed_out);
                if (el >= 0)
                        node_set_int(n, "current_elapsed_ms", el);
                else
                        node_set_null(n, "current_elapsed_ms");
                if (error)
                        node_set_str(n, "error", error);
                if (json_format(n, true, &text) < 0)
                        abort();
                printf("%s\n", text);
                return;
        }
        printf("state: %s\n", outcome_names[o]);
        if (st->instance_id)
                printf("instance: %s (%s), boot %u\n", st->instance_id,
                       st->source ? st->source : "?", st->boot);
        if (st->bundle)
                printf("bundle: %s\n", st->bundle);
        if (st->n_modules)
                printf("modules: %u done, %u failed, %u skipped, %u pending\n", count(st, MOD_DONE),
                       count(st, MOD_FAILED), count(st, MOD_SKIPPED),
                       count(st, MOD_PENDING) + count(st, MOD_RUNNING));
        const struct module_status *m = st->current ? run_status_find(st, st->current) : NULL;
        if (m && o == OUT_RUNNING) {
                _cleanup_free_ char *t = fmt_secs(el >= 0 ? el : 0);
                printf("running: %s (attempt %u, %s)\n", m->id, m->attempts, t);
        } else if (m && o == OUT_DEAD)
                printf("interrupted: %s (attempt %u)\n", m->id, m->attempts);
        for (size_t i = 0; i < st->n_modules; i++)
                if (st->modules[i].state == MOD_FAILED || st->modules[i].state == MOD_SKIPPED)
                        printf("%s: %s: %s\n", module_state_to_string(st->modules[i].state),
                               st->modules[i].id,
                               st->modules[i].reason ? st->modules[i].reason : "");
        if (error)
                printf("error: %s\n", error);
        if (st->phone_home && !streq(st->phone_home, "none"))
                printf("phone-home: %s%s%s\n", st->phone_home, st->phone_home_error ? ": " : "",
                       st->phone_home_error ? st->phone_home_error : "");
        if (timed_out)
                printf("timed out after %lld s\n", timeout_s);
}

/* Waits up to ms for something to change in the state directory: an
 * agent renames status.json into place at every step, and the lock file
 * is closed when the agent exits or dies. Without a watch (no state
 * directory yet) this is a plain sleep, and the caller polls. */
static void wait_for_change(int ifd, int *wd, const char *dir, long long ms)
{
        if (ifd >= 0 && *wd < 0)
                *wd = inotify_add_watch(ifd, dir,
                                        IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE |
                                                IN_DELETE_SELF | IN_MOVE_SELF);
        if (ifd < 0 || *wd < 0) {
                sleep_ms(ms);
                return;
        }
        struct pollfd pfd = {.fd = ifd, .events = POLLIN};
        if (poll(&pfd, 1, (int)ms) <= 0)
                return;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t n;
        while ((n = read(ifd, buf, sizeof(buf))) > 0)
                for (char *q = buf; q < buf + n;) {
                        const struct inotify_event *e = (const struct inotify_event *)q;
                        if (e->mask & IN_IGNORED)
                                *wd = -1; /* the directory went away */
                        q += sizeof(*e) + e->len;
                }
}

static void status_usage(FILE *f)
{
        fprintf(f, "Usage: firstboot status [--root DIR] [--wait [--timeout SEC]] [--json]\n\n"
                   "Shows whether provisioning is ready, failed or still running, the module\n"
                   "running now and how long it has run, and how many modules are done.\n\n"
                   "  --root DIR      the system under DIR (default /)\n"
                   "  --wait          wait until the run is ready, failed or dead, with a\n"
                   "                  progress line on a terminal\n"
                   "  --timeout SEC   give up waiting after SEC seconds (0: look once)\n"
                   "  --json          print one JSON object (see firstboot(8))\n"
                   "  -h, --help      show this help\n\n"
                   "Exit status: 0 ready, 1 failed or dead (the agent stopped without\n"
                   "finishing) or unreadable state, 2 not finished (running, not started, or\n"
                   "timed out).\n");
}

int cmd_status(int argc, char **argv)
{
        static const struct option opts[] = {
                {"root", required_argument, NULL, 'r'},    {"wait", no_argument, NULL, 'w'},
                {"timeout", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},          {0},
        };
        const char *root = NULL;
        bool wait = false, json = false, timed_out = false;
        long long timeout_s = -1;
        struct paths p = {0};
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'r':
                        root = optarg;
                        break;
                case 'w':
                        wait = true;
                        break;
                case 't':
                        if (parse_llong(optarg, &timeout_s) < 0 || timeout_s < 0 ||
                            timeout_s > 31536000) {
                                fprintf(stderr,
                                        "firstboot status: --timeout takes seconds (0 to "
                                        "31536000), not '%s'\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        status_usage(stdout);
                        return 0;
                default:
                        status_usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "firstboot status: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (timeout_s >= 0 && !wait) {
                fprintf(stderr, "firstboot status: --timeout needs --wait\n");
                return 2;
        }
        if (paths_load(root, &p) < 0)
                return 1;

        long long deadline = timeout_s >= 0 ? now_ms() + timeout_s * 1000 : -1;
        bool tty = wait && !json && isatty(STDOUT_FILENO);
        _cleanup_close_ int ifd = wait ? inotify_init1(IN_NONBLOCK | IN_CLOEXEC) : -1;
        int wd = -1;
        _cleanup_free_ char *last = NULL;
        struct run_status st = {0};
        enum outcome o = OUT_NOT_STARTED;

        for (;;) {
                r = observe(&p, &st, &o);
                if (r < 0)
                        break;
                if (!wait || outcome_final(o))
                        break;
                long long left = deadline >= 0 ? deadline - now_ms() : -1;
                if (deadline >= 0 && left <= 0) {
                        timed_out = true;
                        break;
                }
                if (!json) {
                        _cleanup_free_ char *line = progress_line(o, &st, tty);
                        if (tty) {
                                size_t w = terminal_width() - 1;
                                printf("\r\033[K%.*s", (int)w, line);
                        } else if (!streq_ptr(line, last))
                                printf("%s\n", line);
                        fflush(stdout);
                        free(last);
                        last = TAKE_PTR(line);
                }
                /* A terminal redraws the elapsed time; elsewhere the watch
                 * wakes us, and the poll is only a safety net. */
                long long ms = tty ? 200 : 1000;
                if (left >= 0 && left < ms)
                        ms = left;
                run_status_free(&st);
                wait_for_change(ifd, &wd, p.state_dir, ms);
        }
        if (tty && last)
                printf("\r\033[K");
        if (r >= 0)
                print_status(o, &st, json, timed_out, timeout_s);
        run_status_free(&st);
        paths_free(&p);
        return r < 0 ? 1 : outcome_exit(o);
}

/* -------- analyze -------- */

/* Every recorded run, STATE_DIR/instances/ID/runs/boot-N.json, oldest
 * first (files that cannot be read are reported and skipped), then the
 * current run when it has no record yet. */
struct runs {
        struct run_status *v;
        size_t n;
        const struct run_status *current; /* not owned */
};

static size_t runs_count(const struct runs *rs)
{
        return rs->n + (rs->current != NULL);
}

static const struct run_status *runs_get(const struct runs *rs, size_t i)
{
        return i < rs->n ? &rs->v[i] : rs->current;
}

static void runs_free(struct runs *rs)
{
        for (size_t i = 0; i < rs->n; i++)
                run_status_free(&rs->v[i]);
        free(rs->v);
        *rs = (struct runs){0};
}

static int run_cmp(const void *a, const void *b)
{
        const struct run_status *x = a, *y = b;
        if (x->started_ms != y->started_ms)
                return x->started_ms < y->started_ms ? -1 : 1;
        int c = strcmp(x->instance_id ? x->instance_id : "", y->instance_id ? y->instance_id : "");
        if (c)
                return c;
        return x->boot < y->boot ? -1 : x->boot > y->boot;
}

/* opendir() of path (one of struct paths or under one) inside the root. */
static DIR *paths_opendir(const struct paths *p, const char *path)
{
        int fd = root_open(p->rootfd, paths_rel(p, path), O_RDONLY | O_DIRECTORY, 0);
        DIR *d;

        if (fd < 0) {
                errno = -fd;
                return NULL;
        }
        d = fdopendir(fd);
        if (!d)
                close(fd);
        return d;
}

static void runs_load(const struct paths *p, struct runs *rs)
{
        _cleanup_free_ char *idir = strprintf("%s/instances", p->state_dir);
        DIR *top = paths_opendir(p, idir);
        struct dirent *de;

        if (!top)
                return;
        while ((de = readdir(top))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *rdir = strprintf("%s/%s/runs", idir, de->d_name);
                DIR *dd = paths_opendir(p, rdir);
                struct dirent *fe;
                if (!dd)
                        continue;
                while ((fe = readdir(dd))) {
                        if (!startswith(fe->d_name, "boot-") || !endswith(fe->d_name, ".json"))
                                continue;
                        _cleanup_free_ char *path = strprintf("%s/%s", rdir, fe->d_name);
                        struct run_status one;
                        if (status_load(p, path, &one) <= 0)
                                continue;
                        rs->v = xrealloc(rs->v, (rs->n + 1) * sizeof(*rs->v));
                        rs->v[rs->n++] = one;
                }
                closedir(dd);
        }
        closedir(top);
        qsort(rs->v, rs->n, sizeof(*rs->v), run_cmp);
}

static long long modules_ms(const struct run_status *st)
{
        long long t = 0;
        for (size_t i = 0; i < st->n_modules; i++)
                if (st->modules[i].ran)
                        t += st->modules[i].duration_ms;
        return t;
}

static unsigned count_ran(const struct run_status *st)
{
        unsigned n = 0;
        for (size_t i = 0; i < st->n_modules; i++)
                n += st->modules[i].ran;
        return n;
}

/* The run that executed module m (a carried-over module keeps the start
 * time of the run that executed it), or NULL. */
static const struct run_status *module_run(const struct run_status *st, const struct runs *rs,
                                           const struct module_status *m)
{
        if (m->ran)
                return st;
        if (m->started_ms <= 0)
                return NULL;
        for (size_t i = rs->n; i-- > 0;) {
                if (!streq_ptr(rs->v[i].instance_id, st->instance_id))
                        continue;
                const struct module_status *o = run_status_find(&rs->v[i], m->id);
                if (o && o->ran && o->started_ms == m->started_ms)
                        return &rs->v[i];
        }
        return NULL;
}

/* How long a run took, or has run so far when live (its agent is still
 * running); -1 when that is not known. */
static long long run_duration(const struct run_status *st, bool live)
{
        if (st->finished_ms > 0)
                return st->finished_ms - st->started_ms;
        return live && st->started_ms > 0 ? now_realtime_ms() - st->started_ms : -1;
}

static int by_duration(const void *a, const void *b)
{
        const struct module_status *x = a, *y = b;
        if (x->duration_ms != y->duration_ms)
                return x->duration_ms < y->duration_ms ? 1 : -1;
        if (x->started_ms != y->started_ms)
                return x->started_ms < y->started_ms ? -1 : 1;
        return strcmp(x->id, y->id);
}

static void set_int_or_null(struct node *n, const char *key, long long v, bool have)
{
        if (have)
                node_set_int(n, key, v);
        else
                node_set_null(n, key);
}

static void set_str_or_null(struct node *n, const char *key, const char *v)
{
        if (v)
                node_set_str(n, key, v);
        else
                node_set_null(n, key);
}

static struct node *analyze_to_node(const struct run_status *st, const char *state, bool live,
                                    const struct runs *rs)
{
        struct node *n = node_new(NODE_MAP), *mods = node_new(NODE_SEQ), *runs = node_new(NODE_SEQ);
        if (!n || !mods || !runs)
                abort();
        long long dur = run_duration(st, live);

        node_set_int(n, "version", 1);
        set_str_or_null(n, "instance_id", st->instance_id);
        set_str_or_null(n, "source", st->source);
        set_str_or_null(n, "bundle", st->bundle);
        node_set_int(n, "boot", st->boot);
        node_set_str(n, "state", state);
        node_set_int(n, "started_ms", st->started_ms);
        node_set_int(n, "finished_ms", st->finished_ms);
        set_int_or_null(n, "duration_ms", dur, st->finished_ms > 0);
        node_set_int(n, "modules_ms", modules_ms(st));
        node_set_int(n, "agent_ms", st->agent_ms);
        for (size_t i = 0; i < st->n_modules; i++) {
                const struct module_status *m = &st->modules[i];
                const struct run_status *by = module_run(st, rs, m);
                struct node *e = node_new(NODE_MAP);
                if (!e)
                        abort();
                node_set_str(e, "id", m->id);
                node_set_str(e, "state", module_state_to_string(m->state));
                set_int_or_null(e, "boot", by ? by->boot : 0, by);
                set_int_or_null(e, "start_ms", by ? m->started_ms - by->started_ms : 0, by);
                node_set_int(e, "started_ms", m->started_ms);
                node_set_int(e, "duration_ms", m->duration_ms);
                node_set_int(e, "attempts", m->attempts);
                set_int_or_null(e, "exit_code", m->exit_code, m->exit_code >= 0);
                node_set_bool(e, "ran", m->ran);
                node_append(mods, NULL, e);
        }
        node_set(n, "modules", mods);
        for (size_t i = 0; i < runs_count(rs); i++) {
                const struct run_status *r = runs_get(rs, i);
                struct node *e = node_new(NODE_MAP);
                if (!e)
                        abort();
                set_str_or_null(e, "instance_id", r->instance_id);
                node_set_int(e, "boot", r->boot);
                node_set_str(e, "state", r == st ? state : run_state_to_string(r->state));
                node_set_int(e, "started_ms", r->started_ms);
                node_set_int(e, "finished_ms", r->finished_ms);
                set_int_or_null(e, "duration_ms", run_duration(r, false), r->finished_ms > 0);
                node_set_int(e, "modules_ms", modules_ms(r));
                node_set_int(e, "agent_ms", r->agent_ms);
                node_set_int(e, "ran", count_ran(r));
                node_set_int(e, "failed", count(r, MOD_FAILED));
                node_append(runs, NULL, e);
        }
        node_set(n, "runs", runs);
        return n;
}

static void analyze_print(const struct run_status *st, const char *state, bool live,
                          const struct runs *rs)
{
        long long dur = run_duration(st, live);
        _cleanup_free_ char *started = fmt_time(st->started_ms);
        _cleanup_free_ char *took = dur >= 0 ? fmt_secs(dur) : xstrdup("-");
        _cleanup_free_ char *mods = fmt_secs(modules_ms(st));
        /* The agent's overhead is known once the run has ended. */
        _cleanup_free_ char *agent = st->finished_ms > 0 ? fmt_secs(st->agent_ms) : xstrdup("-");

        printf("instance %s (%s), bundle %s: boot %u, %s\n",
               st->instance_id ? st->instance_id : "?", st->source ? st->source : "?",
               st->bundle ? st->bundle : "?", st->boot, state);
        if (live)
                printf("started %s, running for %s\n\n", started, took);
        else if (st->finished_ms > 0)
                printf("started %s, took %s\n\n", started, took);
        else
                printf("started %s; %s\n\n", started, DEAD_MESSAGE);
        printf("%10s %10s %8s %4s  %-8s %s\n", "START", "DURATION", "ATTEMPTS", "EXIT", "STATE",
               "MODULE");
        for (size_t i = 0; i < st->n_modules; i++) {
                const struct module_status *m = &st->modules[i];
                const struct run_status *by = module_run(st, rs, m);
                bool started_ = m->started_ms > 0;
                _cleanup_free_ char *off = NULL, *d = NULL, *note = NULL;
                char ec[16] = "-";

                if (by) {
                        _cleanup_free_ char *s = fmt_secs(m->started_ms - by->started_ms);
                        off = strprintf("+%s", s);
                } else
                        off = xstrdup("-");
                /* A module that was running when its agent died: unknown. */
                if (started_ && (m->state != MOD_RUNNING || live))
                        d = fmt_secs(m->duration_ms);
                else
                        d = xstrdup("-");
                if (m->exit_code >= 0)
                        snprintf(ec, sizeof(ec), "%d", m->exit_code);
                if (!m->ran && by)
                        note = strprintf(" (boot %u)", by->boot);
                else if (!m->ran && started_)
                        note = xstrdup(" (an earlier run)");
                printf("%10s %10s %8u %4s  %-8s %s%s\n", off, d, m->attempts, ec,
                       module_state_to_string(m->state), m->id, note ? note : "");
        }
        printf("\nmodules run this boot: %s; agent overhead: %s (datasource, verification, "
               "files, callback)\n",
               mods, agent);

        if (runs_count(rs) == 0)
                return;
        printf("\nruns:\n%5s  %-23s %10s %10s %10s  %-7s %3s %6s  %s\n", "BOOT", "STARTED",
               "DURATION", "MODULES", "AGENT", "STATE", "RAN", "FAILED", "INSTANCE");
        for (size_t i = 0; i < runs_count(rs); i++) {
                const struct run_status *r = runs_get(rs, i);
                long long rd = run_duration(r, live && r == st);
                _cleanup_free_ char *t = fmt_time(r->started_ms);
                _cleanup_free_ char *d = rd >= 0 ? fmt_secs(rd) : xstrdup("-");
                _cleanup_free_ char *m = fmt_secs(modules_ms(r));
                _cleanup_free_ char *a = r->finished_ms > 0 ? fmt_secs(r->agent_ms) : xstrdup("-");
                printf("%5u  %-23s %10s %10s %10s  %-7s %3u %6u  %s\n", r->boot, t, d, m, a,
                       r == st ? state : run_state_to_string(r->state), count_ran(r),
                       count(r, MOD_FAILED), r->instance_id ? r->instance_id : "?");
        }
}

static void analyze_usage(FILE *f)
{
        fprintf(f, "Usage: firstboot analyze [--root DIR] [--json]\n\n"
                   "Shows every module of the last run with its start (from the start of the\n"
                   "run that executed it), duration, attempts and exit code, slowest first; the\n"
                   "agent's own overhead; and every recorded run of this machine.\n\n"
                   "  --root DIR      the system under DIR (default /)\n"
                   "  --json          print one JSON object (see firstboot(8))\n"
                   "  -h, --help      show this help\n");
}

int cmd_analyze(int argc, char **argv)
{
        static const struct option opts[] = {
                {"root", required_argument, NULL, 'r'},
                {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *root = NULL;
        bool json = false;
        struct paths p = {0};
        struct run_status st = {0};
        struct runs rs = {0};
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'r':
                        root = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        analyze_usage(stdout);
                        return 0;
                default:
                        analyze_usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "firstboot analyze: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (paths_load(root, &p) < 0)
                return 1;
        r = status_load(&p, p.status, &st);
        if (r <= 0) {
                if (r == 0)
                        log_error("No run recorded in %s", p.status);
                paths_free(&p);
                return 1;
        }
        /* A run in progress: its running module's duration so far. */
        const char *state = run_state_to_string(st.state);
        bool live = st.state == RUN_RUNNING && agent_running(&p) != 0;
        if (st.state == RUN_RUNNING && !live)
                state = outcome_names[OUT_DEAD];
        for (size_t i = 0; live && i < st.n_modules; i++)
                if (st.modules[i].state == MOD_RUNNING && st.modules[i].started_ms > 0)
                        st.modules[i].duration_ms = now_realtime_ms() - st.modules[i].started_ms;

        runs_load(&p, &rs);
        /* The current run too, unless its record is among them already (it
         * is written when the run ends). */
        bool recorded = false;
        for (size_t i = 0; i < rs.n; i++)
                recorded = recorded || (streq_ptr(rs.v[i].instance_id, st.instance_id) &&
                                        rs.v[i].boot == st.boot);
        rs.current = recorded ? NULL : &st;

        qsort(st.modules, st.n_modules, sizeof(*st.modules), by_duration);
        if (json) {
                _cleanup_node_ struct node *n = analyze_to_node(&st, state, live, &rs);
                _cleanup_free_ char *text = NULL;
                if (json_format(n, true, &text) < 0)
                        abort();
                printf("%s\n", text);
        } else
                analyze_print(&st, state, live, &rs);
        runs_free(&rs);
        run_status_free(&st);
        paths_free(&p);
        return 0;
}

static int print_entry(const struct journal_entry *e, void *userdata)
{
        (void)userdata;
        printf("%s%s%s\n", e->module && *e->module ? e->module : "",
               e->module && *e->module ? ": " : "", e->message);
        return 0;
}

int cmd_logs(int argc, char **argv)
{
        static const struct option opts[] = {
                {"root", required_argument, NULL, 'r'},
                {"directory", required_argument, NULL, 'D'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *root = NULL, *dir = NULL, *module = NULL;
        struct paths p = {0};
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hD:", opts, NULL)) >= 0) {
                switch (c) {
                case 'r':
                        root = optarg;
                        break;
                case 'D':
                        dir = optarg;
                        break;
                case 'h':
                        printf("Usage: firstboot logs [--root DIR] [-D JOURNAL_DIR] [MODULE]\n");
                        return 0;
                default:
                        return 2;
                }
        }
        if (optind < argc)
                module = argv[optind++];
        if (optind < argc)
                return 2;
        if (paths_load(root, &p) < 0)
                return 1;

        /* The journal first, when there is one and it knows firstboot. */
        if (!root || dir) {
                char **matches = NULL;
                strv_push(&matches, xstrdup("SYSLOG_IDENTIFIER=firstboot"));
                if (module)
                        strv_push(&matches, strprintf("FIRSTBOOT_MODULE=%s", module));
                r = journal_read(dir, matches, false, print_entry, NULL, NULL);
                strv_free(matches);
                if (r > 0) {
                        paths_free(&p);
                        return 0;
                }
        }
        /* Else the 0600 log files. */
        r = 1;
        DIR *dd = paths_opendir(&p, p.log_dir);
        if (!dd) {
                log_error_errno(errno, "No journal entries and no logs in %s: %m", p.log_dir);
                paths_free(&p);
                return 1;
        }
        struct dirent *de;
        while ((de = readdir(dd))) {
                if (!endswith(de->d_name, ".log"))
                        continue;
                _cleanup_free_ char *id = xstrndup(de->d_name, strlen(de->d_name) - 4);
                if (module && !streq(id, module))
                        continue;
                _cleanup_free_ char *path = strprintf("%s/%s", p.log_dir, de->d_name);
                _cleanup_free_ char *text = NULL;
                if (root_read_file(p.rootfd, paths_rel(&p, path), 64 * 1024 * 1024, &text, NULL) <
                    0)
                        continue;
                for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n"))
                        printf("%s: %s\n", id, l);
                r = 0;
        }
        closedir(dd);
        if (r != 0)
                log_error("No logs for %s in %s", module ? module : "any module", p.log_dir);
        paths_free(&p);
        return r;
}
