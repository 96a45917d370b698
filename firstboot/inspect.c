/* firstboot status, analyze and logs: what happened, from a shell or a
 * script, without reading a debug log. */
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
#include <sys/file.h>

/* Paths of a root's state, from its firstboot.conf when there is one. */
struct paths {
        char *state_dir, *status, *lock, *log_dir;
};

static int paths_load(const char *root, struct paths *ret)
{
        _cleanup_free_ char *conf = root_path(root, CONFIG_DEFAULT_PATH);
        struct config c;
        struct diags d = {0};

        if (config_load(conf, false, &c, &d) < 0) {
                for (size_t i = 0; i < d.n; i++) {
                        _cleanup_free_ char *s = diag_format(&d.v[i]);
                        log_error("%s", s);
                }
                diags_free(&d);
                return -EINVAL;
        }
        ret->state_dir = root_path(root, c.state_dir);
        ret->log_dir = root_path(root, c.log_dir);
        ret->status = strprintf("%s/status.json", ret->state_dir);
        ret->lock = strprintf("%s/run.lock", ret->state_dir);
        config_free(&c);
        return 0;
}

static void paths_free(struct paths *p)
{
        free(p->state_dir);
        free(p->status);
        free(p->lock);
        free(p->log_dir);
}

/* Whether a firstboot run holds the lock right now. */
static bool agent_running(const char *lock)
{
        _cleanup_close_ int fd = open(lock, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        if (flock(fd, LOCK_SH | LOCK_NB) < 0)
                return errno == EWOULDBLOCK;
        flock(fd, LOCK_UN);
        return false;
}

enum outcome {
        OUT_READY,
        OUT_FAILED,
        OUT_RUNNING,
        OUT_NOT_STARTED,
        OUT_DEAD,
};

static const char *const outcome_names[] = {"ready", "failed", "running", "not-started", "dead"};

static enum outcome observe(const struct paths *p, struct run_status *st)
{
        struct diags d = {0};
        int r = run_status_read(p->status, st, &d);
        diags_free(&d);
        if (r < 0)
                return agent_running(p->lock) ? OUT_RUNNING : OUT_NOT_STARTED;
        if (st->state == RUN_READY)
                return OUT_READY;
        if (st->state == RUN_FAILED)
                return OUT_FAILED;
        return agent_running(p->lock) ? OUT_RUNNING : OUT_DEAD;
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

static void print_status(enum outcome o, const struct run_status *st, bool json)
{
        if (json) {
                _cleanup_node_ struct node *n = run_status_to_node(st);
                _cleanup_free_ char *text = NULL;
                node_set_str(n, "state", outcome_names[o]);
                if (o == OUT_DEAD)
                        node_set_str(n, "error",
                                     "the agent stopped before finishing (no process "
                                     "holds the run lock)");
                json_format(n, true, &text);
                printf("%s\n", text ? text : "{}");
                return;
        }
        printf("state: %s\n", outcome_names[o]);
        if (st->instance_id)
                printf("instance: %s (%s)\n", st->instance_id, st->source ? st->source : "?");
        if (st->bundle)
                printf("bundle: %s\n", st->bundle);
        if (st->n_modules)
                printf("modules: %u done, %u failed, %u skipped, %u pending\n", count(st, MOD_DONE),
                       count(st, MOD_FAILED), count(st, MOD_SKIPPED),
                       count(st, MOD_PENDING) + count(st, MOD_RUNNING));
        if (st->current && o == OUT_RUNNING) {
                const struct module_status *m = run_status_find(st, st->current);
                long long el = m && m->started_ms ? now_realtime_ms() - m->started_ms : 0;
                printf("running: %s (attempt %u, %lld.%01lld s)\n", st->current,
                       m ? m->attempts : 0, el / 1000, (el % 1000) / 100);
        }
        for (size_t i = 0; i < st->n_modules; i++)
                if (st->modules[i].state == MOD_FAILED || st->modules[i].state == MOD_SKIPPED)
                        printf("%s: %s: %s\n", module_state_to_string(st->modules[i].state),
                               st->modules[i].id,
                               st->modules[i].reason ? st->modules[i].reason : "");
        if (st->error)
                printf("error: %s\n", st->error);
        if (o == OUT_DEAD)
                printf("error: the agent stopped before finishing (no process holds the run "
                       "lock); the next 'firstboot run' resumes\n");
        if (st->phone_home && !streq(st->phone_home, "none"))
                printf("phone-home: %s%s%s\n", st->phone_home, st->phone_home_error ? ": " : "",
                       st->phone_home_error ? st->phone_home_error : "");
}

int cmd_status(int argc, char **argv)
{
        static const struct option opts[] = {
                {"root", required_argument, NULL, 'r'},    {"wait", no_argument, NULL, 'w'},
                {"timeout", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},          {0},
        };
        const char *root = NULL;
        bool wait = false, json = false;
        long long timeout_s = 0;
        struct paths p = {0};
        int c;

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
                        if (parse_llong(optarg, &timeout_s) < 0 || timeout_s < 0) {
                                fprintf(stderr,
                                        "firstboot status: --timeout takes seconds, not "
                                        "'%s'\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        printf("Usage: firstboot status [--root DIR] [--wait [--timeout SEC]] "
                               "[--json]\n\nExit status: 0 ready, 1 failed, 2 not finished "
                               "(running, not started, or timed out).\n");
                        return 0;
                default:
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "firstboot status: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (paths_load(root, &p) < 0)
                return 1;

        long long deadline = timeout_s > 0 ? now_ms() + timeout_s * 1000 : 0;
        struct run_status st = {0};
        enum outcome o = observe(&p, &st);
        bool tty = isatty(STDOUT_FILENO) && !json;
        _cleanup_free_ char *last = NULL;
        while (wait && (o == OUT_RUNNING || o == OUT_NOT_STARTED)) {
                if (deadline && now_ms() >= deadline)
                        break;
                if (!json) {
                        _cleanup_free_ char *line = strprintf(
                                "%s: %u/%zu done%s%s", outcome_names[o], count(&st, MOD_DONE),
                                st.n_modules, st.current ? ", running " : "",
                                st.current ? st.current : "");
                        if (tty)
                                fprintf(stdout, "\r\033[K%s", line);
                        else if (!streq_ptr(line, last))
                                fprintf(stdout, "%s\n", line);
                        fflush(stdout);
                        free(last);
                        last = TAKE_PTR(line);
                }
                sleep_ms(200);
                run_status_free(&st);
                o = observe(&p, &st);
        }
        if (tty && wait)
                fprintf(stdout, "\r\033[K");
        print_status(o, &st, json);
        if (wait && deadline && (o == OUT_RUNNING || o == OUT_NOT_STARTED) && !json)
                printf("timed out after %lld s\n", timeout_s);
        int ret = outcome_exit(o);
        run_status_free(&st);
        paths_free(&p);
        return ret;
}

static int by_duration(const void *a, const void *b)
{
        const struct module_status *x = a, *y = b;
        return x->duration_ms < y->duration_ms ? 1 : x->duration_ms > y->duration_ms ? -1 : 0;
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
        struct diags d = {0};
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
                        printf("Usage: firstboot analyze [--root DIR] [--json]\n");
                        return 0;
                default:
                        return 2;
                }
        }
        if (paths_load(root, &p) < 0)
                return 1;
        r = run_status_read(p.status, &st, &d);
        if (r < 0) {
                if (r == -ENOENT)
                        log_error("No run recorded in %s", p.status);
                else
                        log_error_errno(r, "Failed to read %s: %m", p.status);
                diags_free(&d);
                paths_free(&p);
                return 1;
        }
        qsort(st.modules, st.n_modules, sizeof(*st.modules), by_duration);
        if (json) {
                _cleanup_node_ struct node *n = run_status_to_node(&st);
                _cleanup_free_ char *text = NULL;
                json_format(n, true, &text);
                printf("%s\n", text ? text : "{}");
        } else {
                long long total = 0;
                for (size_t i = 0; i < st.n_modules; i++)
                        total += st.modules[i].duration_ms;
                printf("%10s  %-8s  %8s  %4s  %s\n", "duration", "state", "attempts", "exit",
                       "module");
                for (size_t i = 0; i < st.n_modules; i++) {
                        const struct module_status *m = &st.modules[i];
                        char ec[16] = "-";
                        if (m->exit_code >= 0)
                                snprintf(ec, sizeof(ec), "%d", m->exit_code);
                        printf("%7lld ms  %-8s  %8u  %4s  %s%s\n", m->duration_ms,
                               module_state_to_string(m->state), m->attempts, ec, m->id,
                               m->ran ? "" : " (earlier run)");
                }
                printf("%7lld ms  modules in all\n%7lld ms  agent overhead (run %u of instance "
                       "%s)\n",
                       total, st.agent_ms, st.boot, st.instance_id ? st.instance_id : "?");
        }
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
        DIR *dd = opendir(p.log_dir);
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
                if (read_file(path, 64 * 1024 * 1024, &text, NULL) < 0)
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
