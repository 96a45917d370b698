/* The process runner, against small shell scripts written at run time
 * into a directory under /tmp. Every run has a timeout, so a runner bug
 * fails a test instead of hanging it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fs.h"
#include "util.h"
#include "../../firstboot/runner.h"
#include "tap.h"

#define BOUND_MS 10000

static char *const default_env[] = {"PATH=/usr/bin:/bin", NULL};

/* What on_line saw, as "1:line" (stdout), "2:line" (stderr) and "0:note"
 * (the runner's own). */
struct capture {
        char **lines;
};

static void capture_line(void *userdata, int stream, const char *line)
{
        struct capture *c = userdata;

        CHECK(stream >= 0 && stream <= 2);
        CHECK(strv_push(&c->lines, strprintf("%d:%s", stream, line)) == 0);
}

/* The lines of one stream (0: both), joined by '|'. */
static char *joined(const struct capture *c, int stream)
{
        struct buf b = {0};

        for (char **l = c->lines; l && *l; l++) {
                if (stream != 0 && (*l)[0] != '0' + stream)
                        continue;
                if (b.len > 0)
                        buf_puts(&b, "|");
                buf_puts(&b, *l);
        }
        buf_puts(&b, "");
        return buf_steal(&b);
}

static char *make_tmpdir(void)
{
        char *dir = xstrdup("/tmp/test-runner.XXXXXX");

        if (!mkdtemp(dir))
                abort();
        return dir;
}

static char *script(const char *dir, const char *name, const char *text, mode_t mode)
{
        char *path = strprintf("%s/%s", dir, name);

        CHECK(write_file_atomic(path, text, strlen(text), mode, (uid_t)-1, (gid_t)-1) >= 0);
        return path;
}

/* Runs with the capture, the default environment and a timeout unless the
 * spec has them. */
static int run(struct runner_spec *spec, struct capture *c, struct runner_result *res)
{
        if (!spec->envp)
                spec->envp = default_env;
        if (spec->timeout_ms == 0)
                spec->timeout_ms = BOUND_MS;
        if (!spec->on_line) {
                spec->on_line = capture_line;
                spec->userdata = c;
        }
        if (spec->log_fd == 0)
                spec->log_fd = -1;
        /* Should the runner itself hang, the test dies instead. */
        alarm(BOUND_MS / 1000 + 20);
        int r = runner_exec(spec, res);
        alarm(0);
        return r;
}

static int run_script(const char *path, struct capture *c, struct runner_result *res)
{
        char *const argv[] = {(char *)path, NULL};
        struct runner_spec spec = {.argv = argv};

        return run(&spec, c, res);
}

static void check_no_children(void)
{
        int e;
        pid_t k = waitpid(-1, NULL, WNOHANG);

        e = errno;
        CHECK(k < 0 && e == ECHILD);
}

/* Alive and not a zombie (in a container, orphans may never be reaped). */
static bool pid_alive(pid_t pid)
{
        char path[64];
        _cleanup_free_ char *stat = NULL;
        const char *p;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (read_file(path, 4096, &stat, NULL) < 0)
                return false;
        p = strrchr(stat, ')');
        return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static bool wait_gone(pid_t pid, long long ms)
{
        long long end = now_ms() + ms;

        while (pid_alive(pid)) {
                if (now_ms() > end)
                        return false;
                sleep_ms(10);
        }
        return true;
}

static pid_t read_pid(const char *path)
{
        _cleanup_free_ char *line = NULL;
        long long v = 0;

        if (read_line_file(path, &line) < 0 || parse_llong(line, &v) < 0 || v <= 1)
                return -1;
        return (pid_t)v;
}

static void done(char *dir, struct capture *c, struct runner_result *res)
{
        rm_rf(dir);
        free(dir);
        strv_free(c->lines);
        runner_result_free(res);
        check_no_children();
}

TEST(exit_codes)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = script(dir, "s", "#!/bin/sh\nexit \"$1\"\n", 0755);
        struct capture c = {0};
        struct runner_result res = {0};

        for (int code = 0; code <= 3; code++) {
                char arg[16];
                snprintf(arg, sizeof(arg), "%d", code);
                char *const argv[] = {path, arg, NULL};
                struct runner_spec spec = {.argv = argv};

                CHECK_INTEQ(run(&spec, &c, &res), 0);
                CHECK_INTEQ(res.exit_code, code);
                CHECK(!res.timed_out && !res.killed_hard);
                CHECK(res.tail && !res.tail[0]);
                runner_result_free(&res);
        }
        CHECK(!c.lines);
        done(dir, &c, &res);
}

TEST(killed_by_signal)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = script(dir, "s", "#!/bin/sh\nkill -USR1 $$\nsleep 5\n", 0755);
        struct capture c = {0};
        struct runner_result res = {0};

        CHECK_INTEQ(run_script(path, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 128 + SIGUSR1);
        CHECK(!res.timed_out);
        done(dir, &c, &res);
}

/* An ignored SIGTERM and a blocked SIGUSR2 would survive exec; the child
 * must start from the defaults. The caller's own settings stay. */
TEST(signals_reset)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *term =
                script(dir, "t", "#!/bin/sh\nkill -TERM $$\necho alive\n", 0755);
        _cleanup_free_ char *usr2 =
                script(dir, "u", "#!/bin/sh\nkill -USR2 $$\necho alive\n", 0755);
        struct capture c = {0};
        struct runner_result res = {0};
        struct sigaction ign = {.sa_handler = SIG_IGN}, old, now;
        sigset_t set, oldset, nowset;

        sigemptyset(&set);
        sigaddset(&set, SIGUSR2);
        CHECK(sigaction(SIGTERM, &ign, &old) == 0);
        CHECK(sigprocmask(SIG_BLOCK, &set, &oldset) == 0);

        CHECK_INTEQ(run_script(term, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 128 + SIGTERM);
        runner_result_free(&res);
        CHECK_INTEQ(run_script(usr2, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 128 + SIGUSR2);
        CHECK(!c.lines);

        CHECK(sigaction(SIGTERM, NULL, &now) == 0);
        CHECK(now.sa_handler == SIG_IGN);
        CHECK(sigprocmask(SIG_SETMASK, NULL, &nowset) == 0);
        CHECK(sigismember(&nowset, SIGUSR2) == 1);
        CHECK(sigaction(SIGTERM, &old, NULL) == 0);
        CHECK(sigprocmask(SIG_SETMASK, &oldset, NULL) == 0);
        done(dir, &c, &res);
}

static volatile sig_atomic_t chld_seen;
static void on_chld(int sig)
{
        (void)sig;
        chld_seen++;
}

/* A caller's SIGCHLD handler (without SA_RESTART, so poll gets EINTR)
 * neither breaks the runner nor is replaced by it; an ignored SIGCHLD is
 * refused, since the exit status would be lost. */
TEST(sigchld_left_alone)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path =
                script(dir, "s", "#!/bin/sh\nsleep 0.1\necho hi\nexit 2\n", 0755);
        struct capture c = {0};
        struct runner_result res = {0};
        struct sigaction sa = {.sa_handler = on_chld}, old, now;
        struct sigaction ign = {.sa_handler = SIG_IGN};

        chld_seen = 0;
        CHECK(sigaction(SIGCHLD, &sa, &old) == 0);
        CHECK_INTEQ(run_script(path, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 2);
        CHECK(chld_seen >= 1);
        CHECK(sigaction(SIGCHLD, NULL, &now) == 0);
        CHECK(now.sa_handler == on_chld);
        runner_result_free(&res);

        CHECK(sigaction(SIGCHLD, &ign, NULL) == 0);
        CHECK_INTEQ(run_script(path, &c, &res), -ECHILD);
        CHECK(sigaction(SIGCHLD, &old, NULL) == 0);
        _cleanup_free_ char *all = joined(&c, 0);
        CHECK_STREQ(all, "1:hi");
        done(dir, &c, &res);
}

TEST(stdin_is_dev_null)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = script(dir, "s", "#!/bin/sh\ncat\necho \"eof $?\"\n", 0755);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv[] = {path, NULL};
        struct runner_spec spec = {.argv = argv, .timeout_ms = 3000};
        int p[2], saved = dup(0);

        /* Our own stdin is a pipe that never ends: inherited, cat would hang. */
        CHECK(saved >= 0 && pipe(p) == 0 && dup2(p[0], 0) == 0);
        CHECK_INTEQ(run(&spec, &c, &res), 0);
        CHECK(dup2(saved, 0) == 0);
        close(saved);
        close(p[0]);
        close(p[1]);
        CHECK_INTEQ(res.exit_code, 0);
        CHECK(!res.timed_out);
        CHECK(res.duration_ms < 2000);
        _cleanup_free_ char *all = joined(&c, 0);
        CHECK_STREQ(all, "1:eof 0");
        done(dir, &c, &res);
}

/* Only 0, 1 and 2 are open in the child, whatever the caller has open. */
TEST(other_fds_closed)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = script(
                dir, "s",
                "#!/bin/sh\nfor fd in \"$@\"; do [ -e /proc/$$/fd/$fd ] && echo \"open $fd\"; "
                "done\n[ -e /proc/$$/fd/0 ] && [ -e /proc/$$/fd/2 ] && echo checked\n",
                0755);
        struct capture c = {0};
        struct runner_result res = {0};
        int fd = open("/dev/null", O_RDONLY); /* no O_CLOEXEC, on purpose */
        int high = dup2(fd, 50);
        char a[16], b[16];

        CHECK(fd >= 3 && high == 50);
        snprintf(a, sizeof(a), "%d", fd);
        snprintf(b, sizeof(b), "%d", high);
        char *const argv[] = {path, a, b, NULL};
        struct runner_spec spec = {.argv = argv};
        CHECK_INTEQ(run(&spec, &c, &res), 0);
        _cleanup_free_ char *all = joined(&c, 0);
        CHECK_STREQ(all, "1:checked");
        close(fd);
        close(high);
        done(dir, &c, &res);
}

/* The environment is exactly envp. A shell adds PWD when it is missing,
 * so the script gets one that agrees with cwd; /usr/bin/env run directly
 * shows the bare environment. */
TEST(environment_exact)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = script(dir, "s", "#!/bin/sh\nenv | sort\n", 0755);
        _cleanup_free_ char *pwd = strprintf("PWD=%s", dir);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const env[] = {"PATH=/usr/bin:/bin", "FOO=bar baz", pwd, "EMPTY=", NULL};
        char *const argv[] = {path, NULL};
        struct runner_spec spec = {.argv = argv, .envp = env, .cwd = dir};

        CHECK(setenv("RUNNER_TEST_LEAK", "1", 1) == 0);
        CHECK_INTEQ(run(&spec, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 0);
        _cleanup_free_ char *all = joined(&c, 0);
        _cleanup_free_ char *want =
                strprintf("1:EMPTY=|1:FOO=bar baz|1:PATH=/usr/bin:/bin|1:%s", pwd);
        CHECK_STREQ(all, want);
        strv_free(TAKE_PTR(c.lines));
        runner_result_free(&res);

        char *const env2[] = {"ONLY=this", NULL};
        char *const argv2[] = {"/usr/bin/env", NULL};
        struct runner_spec spec2 = {.argv = argv2, .envp = env2};
        CHECK_INTEQ(run(&spec2, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 0);
        _cleanup_free_ char *all2 = joined(&c, 0);
        CHECK_STREQ(all2, "1:ONLY=this");
        strv_free(TAKE_PTR(c.lines));
        runner_result_free(&res);

        char *const env3[] = {NULL};
        struct runner_spec spec3 = {.argv = argv2, .envp = env3};
        CHECK_INTEQ(run(&spec3, &c, &res), 0);
        CHECK(!c.lines);
        unsetenv("RUNNER_TEST_LEAK");
        done(dir, &c, &res);
}

TEST(cwd)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = script(dir, "s", "#!/bin/sh\npwd -P\n", 0755);
        _cleanup_free_ char *missing = strprintf("%s/nope", dir);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv[] = {path, NULL};
        struct runner_spec spec = {.argv = argv, .cwd = dir};

        CHECK_INTEQ(run(&spec, &c, &res), 0);
        _cleanup_free_ char *all = joined(&c, 0);
        _cleanup_free_ char *want = strprintf("1:%s", dir);
        CHECK_STREQ(all, want);
        strv_free(TAKE_PTR(c.lines));
        runner_result_free(&res);

        struct runner_spec bad = {.argv = argv, .cwd = missing};
        CHECK_INTEQ(run(&bad, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 127);
        _cleanup_free_ char *err = joined(&c, 0);
        _cleanup_free_ char *want_err =
                strprintf("2:failed to change directory to %s: No such file or directory", missing);
        CHECK_STREQ(err, want_err);
        done(dir, &c, &res);
}

TEST(streams_and_order)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path =
                script(dir, "s",
                       "#!/bin/sh\necho o1\necho e1 >&2\necho o2\necho e2 >&2\necho\necho o3\n"
                       "printf 'e3\\n\\ne4\\n' >&2\n",
                       0755);
        struct capture c = {0};
        struct runner_result res = {0};

        CHECK_INTEQ(run_script(path, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 0);
        _cleanup_free_ char *o = joined(&c, 1), *e = joined(&c, 2);
        CHECK_STREQ(o, "1:o1|1:o2|1:|1:o3");
        CHECK_STREQ(e, "2:e1|2:e2|2:e3|2:|2:e4");
        CHECK_INTEQ(strv_length(c.lines), 9);
        done(dir, &c, &res);
}

TEST(final_line_without_newline)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path =
                script(dir, "s", "#!/bin/sh\nprintf 'a\\nlast'\nprintf 'err-last' >&2\n", 0755);
        struct capture c = {0};
        struct runner_result res = {0};

        CHECK_INTEQ(run_script(path, &c, &res), 0);
        _cleanup_free_ char *o = joined(&c, 1), *e = joined(&c, 2);
        CHECK_STREQ(o, "1:a|1:last");
        CHECK_STREQ(e, "2:err-last");
        done(dir, &c, &res);
}

/* A 10000-byte line comes as 4096 + 4096 + 1808; one of exactly 8192
 * bytes as two pieces, without an empty third; NUL bytes become '?'. */
TEST(long_line_split)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = script(
                dir, "s",
                "#!/bin/sh\nhead -c 10000 /dev/zero | tr '\\0' x\necho\n"
                "head -c 8192 /dev/zero | tr '\\0' y\necho\nprintf 'a\\000b\\n'\necho after\n",
                0755);
        struct capture c = {0};
        struct runner_result res = {0};
        size_t sizes[] = {4096, 4096, 1808, 4096, 4096};

        CHECK_INTEQ(run_script(path, &c, &res), 0);
        CHECK_INTEQ(strv_length(c.lines), 7);
        for (size_t i = 0; i < ARRAY_SIZE(sizes) && i < strv_length(c.lines); i++) {
                const char *l = c.lines[i];
                CHECK_INTEQ(strlen(l) - 2, sizes[i]);
                CHECK(strspn(l + 2, i < 3 ? "x" : "y") == sizes[i]);
        }
        if (strv_length(c.lines) == 7) {
                CHECK_STREQ(c.lines[5], "1:a?b");
                CHECK_STREQ(c.lines[6], "1:after");
        }
        done(dir, &c, &res);
}

static char *read_all(const char *path)
{
        char *s = NULL;

        CHECK(read_file(path, 1 << 20, &s, NULL) >= 0);
        return s;
}

TEST(masking)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = script(dir, "s",
                                           "#!/bin/sh\n"
                                           "echo \"pw=hunter2 end\"\n"
                                           "echo \"hunter2 and hunter2\" >&2\n"
                                           "echo xabcdefghiy\n"
                                           "echo \"my password! pass\"\n"
                                           "echo hunter2hunter2\n"
                                           "echo hunter\n"
                                           "echo xabababy\n",
                                           0755);
        _cleanup_free_ char *log = strprintf("%s/log", dir);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv[] = {path, NULL};
        char *const mask[] = {"pass", "", "hunter2", "abcdef", "defghi", "password", "abab", NULL};
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        struct runner_spec spec = {.argv = argv, .mask = mask, .log_fd = fd, .tail_lines = 10};

        CHECK(fd >= 0);
        CHECK_INTEQ(run(&spec, &c, &res), 0);
        close(fd);
        CHECK_INTEQ(res.exit_code, 0);
        CHECK_INTEQ(res.log_error, 0);
        _cleanup_free_ char *o = joined(&c, 1), *e = joined(&c, 2);
        CHECK_STREQ(o, "1:pw=******** end|1:x********y|1:my ********! "
                       "********|1:********|1:hunter|1:x********y");
        CHECK_STREQ(e, "2:******** and ********");
        _cleanup_free_ char *text = read_all(log);
        /* The order between the streams is the order the runner read them. */
        CHECK(text && strstr(text, "pw=******** end\n"));
        CHECK(text && strstr(text, "\nstderr: ******** and ********\n"));
        CHECK(text && strstr(text, "\nx********y\n") && strstr(text, "\nmy ********! ********\n"));
        CHECK(text && strstr(text, "\n********\n") && strstr(text, "\nhunter\n"));
        CHECK(text && !strstr(text, "hunter2") && !strstr(text, "abc") && !strstr(text, "ghi") &&
              !strstr(text, "word"));
        CHECK_INTEQ(strv_length(res.tail), 7);
        for (char **l = res.tail; l && *l; l++)
                CHECK(!strstr(*l, "hunter2") && !strstr(*l, "pass"));
        done(dir, &c, &res);
}

/* A secret across the 4096-byte cut of a long line moves the cut before
 * it, so neither piece holds a part of it. */
TEST(masking_across_split)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = script(dir, "s",
                                           "#!/bin/sh\nhead -c 4093 /dev/zero | tr '\\0' x\n"
                                           "printf 'hunter2yyy\\n'\n",
                                           0755);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv[] = {path, NULL};
        char *const mask[] = {"hunter2", NULL};
        struct runner_spec spec = {.argv = argv, .mask = mask};

        CHECK_INTEQ(run(&spec, &c, &res), 0);
        CHECK_INTEQ(strv_length(c.lines), 2);
        if (strv_length(c.lines) == 2) {
                CHECK_INTEQ(strlen(c.lines[0]), 2 + 4093);
                CHECK_STREQ(c.lines[1], "1:********yyy");
        }
        done(dir, &c, &res);
}

/* The script and its background child (in the same process group) are
 * gone after a timeout. */
TEST(timeout_kills_group)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *pidfile = strprintf("%s/pid", dir);
        _cleanup_free_ char *text =
                strprintf("#!/bin/sh\nsleep 1000 &\necho $! > %s\necho started\nwait\n", pidfile);
        _cleanup_free_ char *path = script(dir, "s", text, 0755);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv[] = {path, NULL};
        struct runner_spec spec = {.argv = argv, .timeout_ms = 300};
        long long t0 = now_ms();

        CHECK_INTEQ(run(&spec, &c, &res), 0);
        CHECK(now_ms() - t0 < 3000);
        CHECK_INTEQ(res.exit_code, 124);
        CHECK(res.timed_out);
        CHECK(!res.killed_hard);
        CHECK(res.duration_ms >= 300 && res.duration_ms < 3000);
        _cleanup_free_ char *all = joined(&c, 0);
        CHECK_STREQ(all, "1:started");
        pid_t bg = read_pid(pidfile);
        CHECK(bg > 1);
        if (bg > 1) {
                CHECK(wait_gone(bg, 2000));
                if (pid_alive(bg))
                        kill(bg, SIGKILL);
        }
        done(dir, &c, &res);
}

/* A script that ignores TERM (and so does its child) is killed after the
 * grace; one that cleans up on TERM is not, and its output is kept. */
TEST(timeout_term_ignored)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *pidfile = strprintf("%s/pid", dir);
        _cleanup_free_ char *text =
                strprintf("#!/bin/sh\ntrap '' TERM\nsleep 1000 &\necho $! > %s\nwait\n", pidfile);
        _cleanup_free_ char *path = script(dir, "s", text, 0755);
        _cleanup_free_ char *nice = script(dir, "n",
                                           "#!/bin/sh\ntrap 'echo cleaning up; exit 0' TERM\n"
                                           "sleep 1000 &\nwait\n",
                                           0755);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv[] = {path, NULL};
        struct runner_spec spec = {.argv = argv, .timeout_ms = 200, .kill_grace_ms = 300};

        CHECK_INTEQ(run(&spec, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 124);
        CHECK(res.timed_out);
        CHECK(res.killed_hard);
        CHECK(res.duration_ms >= 500 && res.duration_ms < 3000);
        pid_t bg = read_pid(pidfile);
        CHECK(bg > 1);
        if (bg > 1) {
                CHECK(wait_gone(bg, 2000));
                if (pid_alive(bg))
                        kill(bg, SIGKILL);
        }
        runner_result_free(&res);

        char *const argv2[] = {nice, NULL};
        struct runner_spec spec2 = {.argv = argv2, .timeout_ms = 200, .kill_grace_ms = 3000};
        CHECK_INTEQ(run(&spec2, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 124);
        CHECK(res.timed_out);
        CHECK(!res.killed_hard);
        CHECK(res.duration_ms < 2000);
        _cleanup_free_ char *all = joined(&c, 0);
        CHECK_STREQ(all, "1:cleaning up");
        done(dir, &c, &res);
}

/* A daemon left behind holding stdout does not hold the runner up, and is
 * not killed. */
TEST(daemon_left_behind)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *pidfile = strprintf("%s/pid", dir);
        _cleanup_free_ char *text =
                strprintf("#!/bin/sh\nsleep 30 &\necho $! > %s\necho started\nexit 0\n", pidfile);
        _cleanup_free_ char *path = script(dir, "s", text, 0755);
        struct capture c = {0};
        struct runner_result res = {0};
        long long t0 = now_ms();

        CHECK_INTEQ(run_script(path, &c, &res), 0);
        CHECK(now_ms() - t0 < 2000);
        CHECK_INTEQ(res.exit_code, 0);
        CHECK(!res.timed_out && !res.killed_hard);
        CHECK(res.duration_ms < 2000);
        _cleanup_free_ char *all = joined(&c, 0);
        CHECK_STREQ(all, "1:started");
        pid_t bg = read_pid(pidfile);
        CHECK(bg > 1);
        if (bg > 1) {
                CHECK(pid_alive(bg));
                kill(bg, SIGKILL);
                CHECK(wait_gone(bg, 2000));
        }
        done(dir, &c, &res);
}

/* No "#!": the kernel says ENOEXEC and /bin/sh runs it, as execvp does,
 * with $0 the script. Not executable at all: 127 and the reason. */
TEST(no_shebang)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = script(dir, "s", "echo \"via-sh $0 $1\"\nexit 3\n", 0755);
        _cleanup_free_ char *plain = script(dir, "p", "#!/bin/sh\necho hi\n", 0644);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv[] = {path, "arg", NULL};
        struct runner_spec spec = {.argv = argv};

        CHECK_INTEQ(run(&spec, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 3);
        _cleanup_free_ char *all = joined(&c, 0);
        _cleanup_free_ char *want = strprintf("1:via-sh %s arg", path);
        CHECK_STREQ(all, want);
        strv_free(TAKE_PTR(c.lines));
        runner_result_free(&res);

        CHECK_INTEQ(run_script(plain, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 127);
        _cleanup_free_ char *err = joined(&c, 0);
        _cleanup_free_ char *want_err =
                strprintf("2:failed to execute %s: Permission denied", plain);
        CHECK_STREQ(err, want_err);
        done(dir, &c, &res);
}

TEST(missing_program)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *log = strprintf("%s/log", dir);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv[] = {"/nonexistent/prog", NULL};
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        struct runner_spec spec = {.argv = argv, .log_fd = fd, .tail_lines = 5};

        CHECK_INTEQ(run(&spec, &c, &res), 0);
        close(fd);
        CHECK_INTEQ(res.exit_code, 127);
        CHECK(!res.timed_out);
        _cleanup_free_ char *all = joined(&c, 0);
        CHECK_STREQ(all, "2:failed to execute /nonexistent/prog: No such file or directory");
        CHECK(res.tail && res.tail[0] && !res.tail[1]);
        _cleanup_free_ char *text = read_all(log);
        CHECK_STREQ(text,
                    "stderr: failed to execute /nonexistent/prog: No such file or directory\n");
        done(dir, &c, &res);
}

/* A log that cannot be written is reported, and the script runs on. */
TEST(log_error)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path =
                script(dir, "s", "#!/bin/sh\necho one\necho two\nexit 1\n", 0755);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv[] = {path, NULL};
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        struct runner_spec spec = {.argv = argv, .log_fd = fd};

        CHECK(fd > 0);
        CHECK_INTEQ(run(&spec, &c, &res), 0);
        close(fd);
        CHECK_INTEQ(res.exit_code, 1);
        CHECK_INTEQ(res.log_error, -EBADF);
        _cleanup_free_ char *all = joined(&c, 0);
        CHECK_STREQ(all, "1:one|1:two");
        done(dir, &c, &res);
}

TEST(tail)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = script(
                dir, "s",
                "#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do\n"
                "  echo \"line $i\"\ndone\necho oops >&2\nsleep 0.05\necho secret-ish last\n",
                0755);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv[] = {path, NULL};
        char *const mask[] = {"secret", NULL};
        struct runner_spec spec = {.argv = argv, .tail_lines = 3, .mask = mask};

        CHECK_INTEQ(run(&spec, &c, &res), 0);
        CHECK_INTEQ(strv_length(res.tail), 3);
        if (strv_length(res.tail) == 3) {
                CHECK_STREQ(res.tail[0], "line 20");
                CHECK_STREQ(res.tail[1], "oops");
                CHECK_STREQ(res.tail[2], "********-ish last");
        }
        runner_result_free(&res);

        /* Fewer lines than asked for, and none asked for. */
        spec.tail_lines = 100;
        CHECK_INTEQ(run(&spec, &c, &res), 0);
        CHECK_INTEQ(strv_length(res.tail), 22);
        if (strv_length(res.tail) == 22) {
                CHECK_STREQ(res.tail[0], "line 1");
                CHECK_STREQ(res.tail[21], "********-ish last");
        }
        runner_result_free(&res);
        spec.tail_lines = 0;
        CHECK_INTEQ(run(&spec, &c, &res), 0);
        CHECK(res.tail && !res.tail[0]);
        done(dir, &c, &res);
}

static int running_calls;
static long long running_called_at;
static void count_running(void *userdata)
{
        (void)userdata;
        running_calls++;
        running_called_at = now_ms();
}

/* on_running: once, after running_after_ms, for a child still running;
 * never for one that is done before. */
TEST(on_running)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *slow = script(dir, "slow", "#!/bin/sh\nsleep 0.5\n", 0755);
        _cleanup_free_ char *quick = script(dir, "quick", "#!/bin/sh\nexit 0\n", 0755);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv_slow[] = {slow, NULL};
        struct runner_spec spec = {
                .argv = argv_slow, .on_running = count_running, .running_after_ms = 100};

        running_calls = 0;
        long long t0 = now_ms();
        CHECK_INTEQ(run(&spec, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 0);
        CHECK_INTEQ(running_calls, 1);
        CHECK(running_called_at - t0 >= 100);
        runner_result_free(&res);

        char *const argv_quick[] = {quick, NULL};
        spec.argv = argv_quick;
        spec.running_after_ms = 5000;
        running_calls = 0;
        CHECK_INTEQ(run(&spec, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 0);
        CHECK_INTEQ(running_calls, 0);
        done(dir, &c, &res);
}

/* Whether any line on_line saw, the tail or the log holds s. */
static bool leaked(const struct capture *c, const struct runner_result *res, const char *log,
                   const char *s)
{
        for (char **l = c->lines; l && *l; l++)
                if (strstr(*l, s))
                        return true;
        for (char **l = res->tail; l && *l; l++)
                if (strstr(*l, s))
                        return true;
        return log && strstr(log, s);
}

/* A secret that spans lines (a YAML block scalar with its trailing
 * newline, a value with "\r\n") is masked a line at a time: each of its
 * lines is a secret too, also when a line comes in two reads of the pipe.
 * A line of blanks in it masks nothing. */
TEST(masking_multiline)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path =
                script(dir, "s",
                       "#!/bin/sh\n"
                       "printf '%s' \"$BLOCK\"\n"
                       "printf 'crlf: %s\\n' \"$CRLF\"\n"
                       "echo \"$BLOCK\" | tr -d '\\r' >&2\n"
                       "printf 'again block-line-'; sleep 0.2; printf 'two-0451 and more\\n'\n"
                       "printf 'spaced  out\\n'\n"
                       "printf 'no newline: crlf-second-'; sleep 0.2; printf '7730'\n",
                       0755);
        _cleanup_free_ char *log = strprintf("%s/log", dir);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv[] = {path, NULL};
        char *const env[] = {"PATH=/usr/bin:/bin",
                             "BLOCK=block-line-one-8812\nblock-line-two-0451\n  \n",
                             "CRLF=crlf-first-3391\r\ncrlf-second-7730", NULL};
        char *const mask[] = {env[1] + 6, env[2] + 5, NULL};
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        struct runner_spec spec = {
                .argv = argv, .envp = env, .mask = mask, .log_fd = fd, .tail_lines = 20};

        CHECK(fd >= 0);
        CHECK_INTEQ(run(&spec, &c, &res), 0);
        close(fd);
        CHECK_INTEQ(res.exit_code, 0);
        _cleanup_free_ char *text = read_all(log);
        CHECK(text != NULL);
        const char *parts[] = {"block-line-one-8812",
                               "block-line-two-0451",
                               "crlf-first-3391",
                               "crlf-second-7730",
                               "8812",
                               "0451",
                               "3391",
                               "7730"};
        for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
                CHECK(!leaked(&c, &res, text, parts[i]));
        _cleanup_free_ char *all = joined(&c, 0);
        CHECK_STREQ(all, "1:********|1:********|1:  |1:crlf: ********\r|1:********|"
                         "2:********|2:********|2:  |2:|1:again ******** and more|"
                         "1:spaced  out|1:no newline: ********");
        done(dir, &c, &res);
}

/* Past log_max the log keeps the first and the last half, and a note of
 * how many bytes were dropped between them; on_line sees the same. */
TEST(log_cap)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *full = strprintf("%s/full", dir);
        _cleanup_free_ char *text =
                strprintf("#!/bin/sh\necho the start >&2\n"
                          "seq -f 'line %%g of the output of a chatty module' 1 50000 | tee %s\n",
                          full);
        _cleanup_free_ char *path = script(dir, "s", text, 0755);
        _cleanup_free_ char *log = strprintf("%s/log", dir);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv[] = {path, NULL};
        char *const mask[] = {"chatty", NULL};
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        struct runner_spec spec = {
                .argv = argv, .mask = mask, .log_fd = fd, .tail_lines = 2, .log_max = 65536};
        struct stat stf, stl;

        CHECK(fd >= 0);
        CHECK_INTEQ(run(&spec, &c, &res), 0);
        close(fd);
        CHECK_INTEQ(res.exit_code, 0);
        CHECK_INTEQ(res.log_error, 0);
        CHECK(stat(full, &stf) == 0 && stat(log, &stl) == 0);
        _cleanup_free_ char *got = read_all(log);
        _cleanup_free_ char *note =
                strprintf("firstboot: dropped %lld bytes of output here", res.log_dropped);
        CHECK(got != NULL);
        CHECK(res.log_dropped > 0);
        CHECK(stl.st_size <= 65536 + 200);
        /* What the log holds, the note aside, and what was dropped make
         * all the output ("*******" is as long as "chatty" + 2). */
        const char *n = got ? strstr(got, note) : NULL;
        CHECK(n != NULL);
        if (n) {
                const char *nl = strchr(n, '\n');
                long long note_len = nl ? nl - n + 1 : 0;
                CHECK_INTEQ((long long)stl.st_size - note_len + res.log_dropped,
                            (long long)stf.st_size + 2 * 50000 +
                                    (long long)strlen("stderr: the start\n"));
        }
        CHECK(got && (startswith(got, "line 1 of the output of a ******** module\n") ||
                      startswith(got, "stderr: the start\nline 1 of the output of a ******** "
                                      "module\n")));
        /* The head (the order between the streams is the order they were
         * read), the note, the tail. */
        CHECK(got && strstr(got, "stderr: the start\n") < n);
        CHECK(n && endswith(n, "\nline 50000 of the output of a ******** module\n"));
        CHECK(got && !strstr(got, "chatty"));
        /* on_line: the head, the note, the tail; never everything. */
        size_t nl_count = strv_length(c.lines);
        CHECK(nl_count > 100 && nl_count < 50000);
        bool saw_note = false;
        for (char **l = c.lines; l && *l; l++)
                saw_note = saw_note || (startswith(*l, "0:") && strstr(*l, note));
        CHECK(saw_note);
        CHECK(strv_contains(c.lines, "2:the start") &&
              strv_contains(c.lines, "1:line 50000 of the output of a ******** module"));
        CHECK_INTEQ(strv_length(res.tail), 2);
        done(dir, &c, &res);
}

/* The cap counts what the log holds: a stderr line costs "stderr: " too,
 * so short stderr lines in the kept tail do not take the log past it. */
TEST(log_cap_stderr_tail)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path =
                script(dir, "s", "#!/bin/sh\nyes '' | head -n 100000 >&2\n", 0755);
        _cleanup_free_ char *log = strprintf("%s/log", dir);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv[] = {path, NULL};
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        struct runner_spec spec = {.argv = argv, .log_fd = fd, .tail_lines = 2, .log_max = 65536};
        struct stat stl;

        CHECK(fd >= 0);
        CHECK_INTEQ(run(&spec, &c, &res), 0);
        close(fd);
        CHECK_INTEQ(res.exit_code, 0);
        CHECK(stat(log, &stl) == 0);
        CHECK(res.log_dropped > 0);
        CHECK(stl.st_size <= 65536 + 200);
        /* The note aside, what was kept and what was dropped make it all. */
        CHECK_INTEQ((long long)stl.st_size + res.log_dropped,
                    100000LL * (long long)strlen("stderr: \n") +
                            (long long)strlen("firstboot: dropped  bytes of output here: the log "
                                              "keeps at most 65536 bytes of a module's output, "
                                              "the first and the last half\n") +
                            (long long)snprintf(NULL, 0, "%lld", res.log_dropped));
        done(dir, &c, &res);
}

/* No log_max: nothing is dropped, whatever the size. */
TEST(log_uncapped)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *path = script(dir, "s", "#!/bin/sh\nseq 1 3000\n", 0755);
        struct capture c = {0};
        struct runner_result res = {0};

        CHECK_INTEQ(run_script(path, &c, &res), 0);
        CHECK_INTEQ(res.log_dropped, 0);
        CHECK_INTEQ(strv_length(c.lines), 3000);
        done(dir, &c, &res);
}

static char *boot_id(void)
{
        char *id = NULL;
        return read_line_file("/proc/sys/kernel/random/boot_id", &id) < 0 ? NULL : id;
}

static unsigned long long start_time(pid_t pid)
{
        char path[64];
        _cleanup_free_ char *stat = NULL;
        const char *p;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (read_file(path, 4096, &stat, NULL) < 0 || !(p = strrchr(stat, ')')))
                return 0;
        /* Field 22, the 20th after the comm. */
        for (int i = 0; i < 20 && p; i++)
                p = strchr(p + 1, ' ');
        return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* pgid_file says "PGID STARTTIME LABEL" while the script runs, and is gone
 * after. */
TEST(pgid_file)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *rec = strprintf("%s/running", dir);
        _cleanup_free_ char *seen = strprintf("%s/seen", dir);
        _cleanup_free_ char *text = strprintf(
                "#!/bin/sh\ncat %s > %s\necho \"$$ $(cut -d' ' -f22 /proc/$$/stat)\" >> %s\n", rec,
                seen, seen);
        _cleanup_free_ char *path = script(dir, "s", text, 0755);
        struct capture c = {0};
        struct runner_result res = {0};
        char *const argv[] = {path, NULL};
        struct runner_spec spec = {.argv = argv, .pgid_file = rec, .pgid_label = "my module"};

        CHECK_INTEQ(run(&spec, &c, &res), 0);
        CHECK_INTEQ(res.exit_code, 0);
        CHECK_INTEQ(res.pgid_error, 0);
        CHECK(access(rec, F_OK) < 0 && errno == ENOENT);
        _cleanup_free_ char *got = read_all(seen);
        long long pid = 0, st = 0, pid2 = 0, st2 = 0;
        char label[64] = "";
        char boot[64] = "";
        _cleanup_free_ char *want_boot = boot_id();
        CHECK(got && sscanf(got, "%lld %lld %63s %63s\n%lld %lld", &pid, &st, label, boot, &pid2,
                            &st2) == 6);
        CHECK(want_boot && streq(boot, want_boot));
        CHECK(pid > 1 && pid == pid2 && st == st2);
        CHECK_STREQ(label, "my?module");
        done(dir, &c, &res);
}

/* Starts sh -c CMD leading its own process group, as the runner would. */
static pid_t start_group(const char *cmd)
{
        pid_t pid = fork();

        if (pid == 0) {
                setpgid(0, 0);
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
        }
        if (pid > 0)
                setpgid(pid, pid);
        return pid;
}

static void write_record_boot(const char *path, pid_t pid, unsigned long long start,
                              const char *boot)
{
        _cleanup_free_ char *t = strprintf("%d %llu leftover %s\n", (int)pid, start, boot);
        CHECK(write_file_atomic(path, t, strlen(t), 0600, (uid_t)-1, (gid_t)-1) >= 0);
}

static void write_record(const char *path, pid_t pid, unsigned long long start)
{
        _cleanup_free_ char *boot = boot_id();
        _cleanup_free_ char *t = strprintf("%d %llu leftover %s\n", (int)pid, start, boot);
        CHECK(write_file_atomic(path, t, strlen(t), 0600, (uid_t)-1, (gid_t)-1) >= 0);
}

/* What a killed run left: its group ended (TERM, KILL when TERM is
 * ignored), the record removed; a pid that belongs to another process now
 * is left alone; a bad record is removed and reported. */
TEST(end_leftover)
{
        char *dir = make_tmpdir();
        _cleanup_free_ char *rec = strprintf("%s/running", dir);
        _cleanup_free_ char *bgfile = strprintf("%s/bg", dir);
        _cleanup_free_ char *cmd = strprintf("sleep 1000 & echo $! > %s; wait", bgfile);
        struct runner_leftover left;
        pid_t pid, bg;
        int st;

        CHECK_INTEQ(runner_end_leftover(rec, 200, &left), 0);

        pid = start_group(cmd);
        CHECK(pid > 0);
        for (int i = 0; i < 500 && read_pid(bgfile) <= 1; i++)
                sleep_ms(10);
        bg = read_pid(bgfile);
        CHECK(bg > 1);
        write_record(rec, pid, start_time(pid));
        CHECK_INTEQ(runner_end_leftover(rec, 2000, &left), 1);
        CHECK_INTEQ(left.pgid, pid);
        CHECK_STREQ(left.label, "leftover");
        CHECK(!left.killed_hard);
        CHECK(access(rec, F_OK) < 0);
        CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
        CHECK(bg > 1 && wait_gone(bg, 2000));

        /* TERM ignored (and inherited so by sleep): KILL after the grace.
         * Waited for until the trap is set (a fixed 100 ms was not enough
         * under load: TERM then ended the shell). */
        _cleanup_free_ char *trapped = strprintf("%s/trapped", dir);
        _cleanup_free_ char *trap_cmd = strprintf("trap '' TERM; : > %s; sleep 1000", trapped);
        pid = start_group(trap_cmd);
        CHECK(pid > 0);
        for (int i = 0; i < 1000 && access(trapped, F_OK) < 0; i++)
                sleep_ms(10);
        CHECK(access(trapped, F_OK) == 0);
        write_record(rec, pid, start_time(pid));
        CHECK_INTEQ(runner_end_leftover(rec, 200, &left), 1);
        CHECK(left.killed_hard);
        CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

        /* The pid now is another process: not touched. */
        pid = start_group("sleep 1000");
        CHECK(pid > 0);
        write_record(rec, pid, start_time(pid) + 1);
        CHECK_INTEQ(runner_end_leftover(rec, 200, &left), 0);
        CHECK(pid_alive(pid));
        CHECK(access(rec, F_OK) < 0);
        kill(-pid, SIGKILL);
        CHECK(waitpid(pid, &st, 0) == pid);

        /* The record is from another boot: its pid and even its start time
         * can be a new process's (after a reboot the module is gone). */
        pid = start_group("sleep 1000");
        CHECK(pid > 0);
        write_record_boot(rec, pid, start_time(pid), "00000000-0000-0000-0000-000000000000");
        CHECK_INTEQ(runner_end_leftover(rec, 200, &left), 0);
        CHECK(pid_alive(pid));
        CHECK(access(rec, F_OK) < 0);
        /* Its leader gone and the group alive: the start time cannot tell. */
        _cleanup_free_ char *cmd2 = strprintf("sleep 1000 & echo $! > %s.2; exit 0", bgfile);
        pid_t leader = start_group(cmd2);
        CHECK(leader > 0 && waitpid(leader, &st, 0) == leader);
        _cleanup_free_ char *bg2file = strprintf("%s.2", bgfile);
        pid_t bg2 = read_pid(bg2file);
        CHECK(bg2 > 1);
        write_record_boot(rec, leader, 1, "00000000-0000-0000-0000-000000000000");
        CHECK_INTEQ(runner_end_leftover(rec, 200, &left), 0);
        CHECK(bg2 > 1 && pid_alive(bg2));
        kill(-pid, SIGKILL);
        CHECK(waitpid(pid, &st, 0) == pid);
        if (bg2 > 1)
                kill(bg2, SIGKILL);
        CHECK(bg2 > 1 && wait_gone(bg2, 2000));

        /* A group that is gone: nothing to do. */
        pid = start_group("exit 0");
        CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
        write_record(rec, pid, 1);
        CHECK_INTEQ(runner_end_leftover(rec, 200, &left), 0);
        CHECK(access(rec, F_OK) < 0);

        CHECK(write_file_atomic(rec, "nonsense\n", 9, 0600, (uid_t)-1, (gid_t)-1) >= 0);
        CHECK_INTEQ(runner_end_leftover(rec, 200, &left), -EBADMSG);
        CHECK(access(rec, F_OK) < 0);
        /* A FIFO there (a hostile --root's state dir) is refused at once. */
        {
                REQUIRE(mkfifo(rec, 0600) == 0);
                pid_t child = fork();
                if (child == 0) {
                        struct runner_leftover l;
                        alarm(10);
                        _exit(runner_end_leftover(rec, 200, &l) == -EBADMSG ? 0 : 1);
                }
                CHECK(child > 0 && waitpid(child, &st, 0) == child);
                CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
                CHECK(access(rec, F_OK) < 0);
                (void)unlink(rec);
        }
        /* Never the group of init, every process (-1) or our own (0). */
        {
                _cleanup_free_ char *boot = boot_id();
                const char *bad[] = {"1", "0", "-1", "4294967295", "4294967296", "x1"};
                for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                        _cleanup_free_ char *t = strprintf("%s 5 init %s\n", bad[i], boot);
                        CHECK(write_file_atomic(rec, t, strlen(t), 0600, (uid_t)-1, (gid_t)-1) >=
                              0);
                        CHECK_INTEQ(runner_end_leftover(rec, 200, &left), -EBADMSG);
                        CHECK(access(rec, F_OK) < 0);
                }
        }

        rm_rf(dir);
        free(dir);
        check_no_children();
}

TEST(bad_spec)
{
        struct runner_result res = {0};
        char *const none[] = {NULL};
        struct runner_spec spec = {.argv = none, .log_fd = -1};

        CHECK_INTEQ(runner_exec(&spec, &res), -EINVAL);
        spec.argv = NULL;
        CHECK_INTEQ(runner_exec(&spec, &res), -EINVAL);
        char *const argv[] = {"/bin/true", NULL};
        spec.argv = argv;
        spec.timeout_ms = -1;
        CHECK_INTEQ(runner_exec(&spec, &res), -EINVAL);
        CHECK(!res.tail);
        runner_result_free(&res);
        runner_result_free(NULL);
        check_no_children();
}

/* The module contract's retries, shared by `firstboot run` and the agent:
 * exit 2 only, attempts in all, the wait doubling up to its cap. */
TEST(retry_delay)
{
        CHECK(runner_retry_delay_ms(2, 1, 3, 100) == 100);
        CHECK(runner_retry_delay_ms(2, 2, 3, 100) == 200);
        CHECK(runner_retry_delay_ms(2, 3, 3, 100) == -1);
        CHECK(runner_retry_delay_ms(0, 1, 3, 100) == -1);
        CHECK(runner_retry_delay_ms(1, 1, 3, 100) == -1);
        CHECK(runner_retry_delay_ms(124, 1, 3, 100) == -1);
        CHECK(runner_retry_delay_ms(2, 10, 100, 1000) == RUNNER_RETRY_CAP_MS);
        CHECK(runner_retry_delay_ms(2, 90, 100, 1000) == RUNNER_RETRY_CAP_MS);
}

TAP_MAIN
