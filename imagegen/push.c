#include "push.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* ssh's own exit code when it fails (cannot connect, log in, ...): the
 * remote command's code otherwise (ssh(1), EXIT STATUS). */
#define SSH_FAILED        255
#define LINE_MAX_PREFIXED 4096

extern char **environ;

/* The user-data as a file descriptor for ssh's standard input: an
 * anonymous file, so nothing is written to disk here either. */
static int data_fd(const struct push_target *t, int *ret)
{
        _cleanup_close_ int fd = memfd_create("imagegen-push", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (size_t off = 0; off < t->size;) {
                ssize_t n = write(fd, t->data + off, t->size - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                off += (size_t)n;
        }
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        *ret = fd;
        fd = -1;
        return 0;
}

/* Runs `ssh -T [-o OPT]... -- DEST 'FIRSTBOOT VERB --user-data -'` with
 * the user-data on its standard input and our standard output and error;
 * *ret_code is its exit code (SSH_FAILED when it could not run). ssh gets
 * our environment: it needs the user's (SSH_AUTH_SOCK, ...). The remote
 * command is one word that ssh hands to the remote user's shell, as it
 * does any command; only the --firstboot-command text is the caller's. */
static int remote(const struct push_target *t, const struct push_options *o, const char *verb,
                  int *ret_code)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *cmd =
                strprintf("%s %s --user-data -", o->firstboot ? o->firstboot : "firstboot", verb);
        size_t n_opts = strv_length(o->ssh_options), a = 0;
        _cleanup_free_ char **argv = xcalloc(2 * n_opts + 6, sizeof(char *));
        int r = data_fd(t, &fd);
        if (r < 0)
                return r;

        argv[a++] = "ssh";
        argv[a++] = "-T";
        for (size_t i = 0; i < n_opts; i++) {
                argv[a++] = "-o";
                argv[a++] = o->ssh_options[i];
        }
        argv[a++] = "--";
        argv[a++] = (char *)t->dest;
        argv[a++] = cmd;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                if (dup2(fd, 0) < 0)
                        _exit(SSH_FAILED);
                execvpe("ssh", argv, environ);
                fprintf(stderr, "imagegen push: cannot run ssh: %s\n", strerror(errno));
                _exit(SSH_FAILED);
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (WIFSIGNALED(status))
                fprintf(stderr,
                        "imagegen push: %s: ssh was killed by signal %s during %s: what the host "
                        "did "
                        "is unknown (see it with imagegen push --plan)\n",
                        t->name, strsignal(WTERMSIG(status)), verb);
        *ret_code = WIFEXITED(status) ? WEXITSTATUS(status) : SSH_FAILED;
        return 0;
}

static const char *what_failed(int code)
{
        return code == SSH_FAILED ? " (ssh could not connect or log in, or the command failed)"
                                  : "";
}

/* One host: plan, then apply when the plan has changes. The exit code as
 * push_run's. */
static int push_one(const struct push_target *t, const struct push_options *o)
{
        int code = 0, r = remote(t, o, "plan", &code);
        if (r < 0) {
                fprintf(stderr, "imagegen push: %s: cannot run ssh: %s\n", t->name, strerror(-r));
                return 1;
        }
        if (code == 0) {
                if (!o->quiet)
                        printf("imagegen push: %s: nothing to do\n", t->name);
                return 0;
        }
        if (code != 2) {
                fprintf(stderr, "imagegen push: %s: plan failed on %s with exit code %d%s\n",
                        t->name, t->dest, code, what_failed(code));
                return 1;
        }
        if (o->plan_only)
                return 2;
        r = remote(t, o, "apply", &code);
        if (r < 0) {
                fprintf(stderr, "imagegen push: %s: cannot run ssh: %s\n", t->name, strerror(-r));
                return 1;
        }
        if (code != 0) {
                fprintf(stderr, "imagegen push: %s: apply failed on %s with exit code %d%s\n",
                        t->name, t->dest, code, what_failed(code));
                return 1;
        }
        if (!o->quiet)
                printf("imagegen push: %s: applied\n", t->name);
        return 0;
}

/* A host pushed by a worker process: its standard output and error come
 * through pipes, each line written out with the host's name before it. */
struct slot {
        pid_t pid;
        size_t target;
        int fd[2];
        char buf[2][LINE_MAX_PREFIXED];
        size_t len[2];
};

static void emit(struct slot *s, int k, const char *name, bool all)
{
        FILE *f = k == 0 ? stdout : stderr;
        size_t start = 0;
        for (size_t i = 0; i < s->len[k]; i++)
                if (s->buf[k][i] == '\n') {
                        fprintf(f, "%s: %.*s\n", name, (int)(i - start), s->buf[k] + start);
                        start = i + 1;
                }
        /* A line longer than the buffer, or the last one without a
         * newline, is written as it is; a part of a line waits for the
         * rest. */
        if (start < s->len[k] && (all || (start == 0 && s->len[k] == sizeof(s->buf[k])))) {
                fprintf(f, "%s: %.*s\n", name, (int)(s->len[k] - start), s->buf[k] + start);
                start = s->len[k];
        }
        memmove(s->buf[k], s->buf[k] + start, s->len[k] - start);
        s->len[k] -= start;
        fflush(f);
}

static int start_worker(const struct push_target *t, const struct push_options *o, size_t i,
                        struct slot *s)
{
        int p[2][2] = {{-1, -1}, {-1, -1}};
        if (pipe2(p[0], O_CLOEXEC) < 0 || pipe2(p[1], O_CLOEXEC) < 0) {
                int e = -errno;
                for (int k = 0; k < 2; k++)
                        for (int j = 0; j < 2; j++)
                                if (p[k][j] >= 0)
                                        close(p[k][j]);
                return e;
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
                int e = -errno;
                for (int k = 0; k < 2; k++)
                        for (int j = 0; j < 2; j++)
                                close(p[k][j]);
                return e;
        }
        if (pid == 0) {
                if (dup2(p[0][1], 1) < 0 || dup2(p[1][1], 2) < 0)
                        _exit(1);
                setvbuf(stdout, NULL, _IOLBF, 0);
                int code = push_one(&t[i], o);
                fflush(NULL);
                _exit(code);
        }
        *s = (struct slot){.pid = pid, .target = i, .fd = {p[0][0], p[1][0]}};
        close(p[0][1]);
        close(p[1][1]);
        return 0;
}

/* Reads what the worker wrote; once both pipes are at their end, waits
 * for it and returns its exit code (>= 0), else -EAGAIN. */
static int slot_read(struct slot *s, int k, const char *name)
{
        ssize_t n;
        do
                n = read(s->fd[k], s->buf[k] + s->len[k], sizeof(s->buf[k]) - s->len[k]);
        while (n < 0 && errno == EINTR);
        if (n > 0) {
                s->len[k] += (size_t)n;
                emit(s, k, name, false);
                return -EAGAIN;
        }
        emit(s, k, name, true);
        close(s->fd[k]);
        s->fd[k] = -1;
        if (s->fd[0] >= 0 || s->fd[1] >= 0)
                return -EAGAIN;
        int status = 0;
        while (waitpid(s->pid, &status, 0) < 0)
                if (errno != EINTR)
                        return 1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static int push_fleet(const struct push_target *t, size_t n, const struct push_options *o)
{
        size_t jobs = o->jobs ? o->jobs : PUSH_JOBS_DEFAULT, next = 0, active = 0;
        _cleanup_free_ struct slot *slots = xcalloc(MIN(jobs, n), sizeof(*slots));
        _cleanup_free_ int *codes = xcalloc(n, sizeof(int));
        _cleanup_strv_free_ char **failed = NULL;
        bool pending = false;

        jobs = MIN(jobs, n);
        while (next < n || active > 0) {
                while (next < n && active < jobs) {
                        int r = start_worker(t, o, next, &slots[active]);
                        if (r < 0) {
                                fprintf(stderr, "imagegen push: %s: cannot start: %s\n",
                                        t[next].name, strerror(-r));
                                codes[next++] = 1;
                                if (active == 0)
                                        continue;
                                break;
                        }
                        next++;
                        active++;
                }
                if (active == 0)
                        break;
                struct pollfd pfd[2 * PUSH_JOBS_MAX];
                for (size_t i = 0; i < active; i++)
                        for (int k = 0; k < 2; k++)
                                pfd[2 * i + k] =
                                        (struct pollfd){.fd = slots[i].fd[k], .events = POLLIN};
                if (poll(pfd, 2 * active, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "imagegen push: poll: %s\n", strerror(errno));
                        return 1;
                }
                for (size_t i = 0; i < active; i++) {
                        int code = -EAGAIN;
                        for (int k = 0; k < 2 && code == -EAGAIN; k++)
                                if (slots[i].fd[k] >= 0 && pfd[2 * i + k].revents)
                                        code = slot_read(&slots[i], k, t[slots[i].target].name);
                        if (code == -EAGAIN)
                                continue;
                        codes[slots[i].target] = code;
                        /* The last slot takes this one's place; its
                         * descriptors are read on the next round. */
                        slots[i] = slots[--active];
                        memmove(&pfd[2 * i], &pfd[2 * active], 2 * sizeof(*pfd));
                        i--;
                }
        }
        for (size_t i = 0; i < n; i++) {
                if (codes[i] == 2 && o->plan_only)
                        pending = true;
                else if (codes[i] != 0)
                        strv_extend(&failed, t[i].name);
        }
        if (failed) {
                _cleanup_free_ char *list = strv_join(failed, ", ");
                fprintf(stderr, "imagegen push: %zu of %zu hosts failed: %s\n", strv_length(failed),
                        n, list);
                return 1;
        }
        return pending ? 2 : 0;
}

int push_run(const struct push_target *t, size_t n, const struct push_options *o)
{
        if (n == 1)
                return push_one(&t[0], o);
        return push_fleet(t, n, o);
}
