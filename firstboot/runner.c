/* The process runner: fork, set the child up with async-signal-safe calls
 * only, exec, and read its output with poll() while a pidfd says when it
 * exits and the monotonic clock says when its time is up. */
#include "runner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "manifest.h"
#include "util.h"

#define MASK_TEXT         "********"
#define MASK_TEXT_LEN     (sizeof(MASK_TEXT) - 1)
#define STDERR_PREFIX     "stderr: "
#define STDERR_PREFIX_LEN (sizeof(STDERR_PREFIX) - 1)

/* How often the process group is looked at during the grace once the
 * script itself is gone, and how often the child is polled for when there
 * is no pidfd to wake us. */
#define GROUP_POLL_MS 20
#define REAP_POLL_MS  20
/* Reads of what is left in a pipe when we stop waiting for it. */
#define FINAL_READS 32

/* What the child sends back through the report pipe when it fails before
 * or in execve(); a successful exec closes the pipe (O_CLOEXEC) instead. */
enum child_stage {
        STAGE_SETUP,
        STAGE_CHDIR,
        STAGE_EXEC,
        STAGE_EXEC_SH,
};

struct child_report {
        int stage;
        int error;
};

struct stream {
        int fd;
        int id;    /* 1 stdout, 2 stderr */
        char *buf; /* run.cap bytes */
        size_t len;
        bool continued; /* the last piece passed on was cut from a longer line */
};

struct run {
        const struct runner_spec *spec;
        const char **masks; /* the non-empty ones and their lines, not NUL-terminated */
        size_t *mask_len;
        size_t n_masks, max_mask;
        size_t cap;         /* a stream buffer: RUNNER_LINE_MAX + max_mask */
        unsigned char *cov; /* cap bytes: which bytes of a line belong to a secret */
        char *out;          /* STDERR_PREFIX, the masked line, a newline */
        char **ring;        /* the tail, ring_cap slots, one always free for the NULL */
        size_t ring_cap, ring_n, ring_start;
        int log_error;
        /* log_max: the head goes out as it comes, up to head_max bytes of
         * log; then lines go to over, a ring of over_cap bytes of records
         * "STREAM LINE \n" (STREAM '1' or '2'), the oldest dropped first,
         * holding at most over_cap bytes of log (over_log: a stderr line
         * costs its prefix there). */
        size_t head_max, head_used;
        bool overflowed;
        char *over;
        size_t over_cap, over_start, over_len, over_log;
        long long dropped; /* bytes of log */
};

enum phase {
        PHASE_RUN,
        PHASE_TERM, /* timed out, SIGTERM sent, waiting for the grace */
        PHASE_KILL, /* the grace is over */
};

static void run_done(struct run *r)
{
        free(r->masks);
        free(r->mask_len);
        free(r->cov);
        free(r->out);
        free(r->over);
        if (r->ring) {
                for (size_t i = 0; i < r->ring_n; i++)
                        free(r->ring[i]);
                free(r->ring);
        }
}

static void mask_add(struct run *r, const char *s, size_t len)
{
        r->masks[r->n_masks] = s;
        r->mask_len[r->n_masks++] = len;
        if (len > r->max_mask)
                r->max_mask = len;
}

/* A secret and, when it spans lines (a YAML block scalar, a "\r\n"), each
 * of its lines without the \r at either end: output is masked a line at a
 * time, and no line can hold it whole. Lines of blanks only are left out:
 * they would mask every run of blanks in the output. */
static void mask_add_secret(struct run *r, const char *s)
{
        size_t len = strlen(s);

        if (len == 0)
                return;
        mask_add(r, s, len);
        if (!memchr(s, '\n', len) && !memchr(s, '\r', len))
                return;
        for (const char *p = s, *end = s + len; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *a = p, *b = nl ? nl : end;

                p = nl ? nl + 1 : end;
                while (a < b && *a == '\r')
                        a++;
                while (b > a && b[-1] == '\r')
                        b--;
                if ((size_t)(b - a) == len || strspn(a, " \t") >= (size_t)(b - a))
                        continue;
                mask_add(r, a, (size_t)(b - a));
        }
}

static int run_init(struct run *r, const struct runner_spec *spec)
{
        size_t n = strv_length(spec->mask), slots = 0;

        *r = (struct run){.spec = spec};
        /* Each secret whole, and at most one more per line of it. */
        for (size_t i = 0; i < n; i++) {
                slots += 2;
                for (const char *p = spec->mask[i]; (p = strchr(p, '\n')); p++)
                        slots++;
        }
        r->masks = calloc(slots + 1, sizeof(*r->masks));
        r->mask_len = calloc(slots + 1, sizeof(*r->mask_len));
        if (!r->masks || !r->mask_len)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                mask_add_secret(r, spec->mask[i]);
        if (spec->log_max > 0) {
                size_t m = spec->log_max > (long long)(SIZE_MAX / 4) ? SIZE_MAX / 4
                                                                     : (size_t)spec->log_max;
                r->head_max = m / 2;
                r->over_cap = m - r->head_max;
        }
        if (r->max_mask > SIZE_MAX / 16 - RUNNER_LINE_MAX)
                return -EINVAL;
        r->cap = RUNNER_LINE_MAX + r->max_mask;
        r->cov = malloc(r->cap);
        /* At worst every other byte is a secret of its own. */
        r->out = malloc(STDERR_PREFIX_LEN + r->cap * MASK_TEXT_LEN + 2);
        r->ring_cap = (spec->tail_lines < 16 ? spec->tail_lines : 16) + 1;
        r->ring = calloc(r->ring_cap, sizeof(*r->ring));
        if (!r->cov || !r->out || !r->ring)
                return -ENOMEM;
        return 0;
}

/* Marks in r->cov every byte of data that is part of an occurrence of a
 * secret, overlapping occurrences included, so that secrets sharing bytes
 * are masked whole whatever their order. */
static void mask_cover(const struct run *r, const char *data, size_t len)
{
        memset(r->cov, 0, len);
        for (size_t i = 0; i < r->n_masks; i++) {
                size_t l = r->mask_len[i];
                const char *p = data, *end = data + len;

                while ((size_t)(end - p) >= l && (p = memmem(p, end - p, r->masks[i], l))) {
                        memset(r->cov + (p - data), 1, l);
                        p++;
                }
        }
}

static int write_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EIO;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

static void tail_reverse(char **v, size_t a, size_t b)
{
        while (a + 1 < b) {
                char *t = v[a];
                v[a++] = v[--b];
                v[b] = t;
        }
}

static void tail_push(struct run *r, const char *line)
{
        size_t limit = r->spec->tail_lines;
        char *copy;

        if (limit == 0)
                return;
        copy = strdup(line);
        if (!copy)
                return; /* Out of memory: the tail misses a line, the run goes on. */
        if (r->ring_n == limit) {
                free(r->ring[r->ring_start]);
                r->ring[r->ring_start] = copy;
                r->ring_start = (r->ring_start + 1) % limit;
                return;
        }
        if (r->ring_n + 1 >= r->ring_cap) {
                size_t want = r->ring_cap * 2;
                char **v;

                if (want - 1 > limit)
                        want = limit + 1;
                v = reallocarray(r->ring, want, sizeof(*v));
                if (!v) {
                        free(copy);
                        return;
                }
                r->ring = v;
                r->ring_cap = want;
        }
        r->ring[r->ring_n++] = copy;
}

/* The tail in order and NULL-terminated, in place: a rotation of the ring
 * by three reversals. */
static char **tail_steal(struct run *r)
{
        char **v = r->ring;

        tail_reverse(v, 0, r->ring_start);
        tail_reverse(v, r->ring_start, r->ring_n);
        tail_reverse(v, 0, r->ring_n);
        v[r->ring_n] = NULL;
        r->ring = NULL;
        r->ring_n = r->ring_start = 0;
        return v;
}

/* How many bytes of log a line of len bytes makes. */
static size_t log_size(int stream, size_t len)
{
        return (stream == 2 ? STDERR_PREFIX_LEN : 0) + len + 1;
}

/* Passes on the masked line at r->out + STDERR_PREFIX_LEN, len bytes long
 * and NUL-terminated, to on_line and the log. */
static void deliver(struct run *r, int stream, size_t len)
{
        const struct runner_spec *spec = r->spec;
        char *line = r->out + STDERR_PREFIX_LEN;

        if (spec->on_line)
                spec->on_line(spec->userdata, stream, line);
        if (spec->log_fd >= 0) {
                const char *start = line;
                int k;

                if (stream == 2) {
                        memcpy(r->out, STDERR_PREFIX, STDERR_PREFIX_LEN);
                        start = r->out;
                }
                line[len] = '\n';
                k = write_all(spec->log_fd, start, (size_t)(line + len + 1 - start));
                line[len] = '\0';
                if (k < 0 && r->log_error == 0)
                        r->log_error = k;
        }
}

static void over_copy_out(const struct run *r, size_t pos, char *dst, size_t n)
{
        size_t at = (r->over_start + pos) % r->over_cap, first = r->over_cap - at;

        if (first > n)
                first = n;
        memcpy(dst, r->over + at, first);
        memcpy(dst + first, r->over, n - first);
}

/* The length of the oldest record in the ring, its newline included. */
static size_t over_first_len(const struct run *r)
{
        size_t first = r->over_cap - r->over_start;
        const char *nl;

        if (first > r->over_len)
                first = r->over_len;
        nl = memchr(r->over + r->over_start, '\n', first);
        if (nl)
                return (size_t)(nl - (r->over + r->over_start)) + 1;
        nl = memchr(r->over, '\n', r->over_len - first);
        return nl ? first + (size_t)(nl - r->over) + 1 : r->over_len;
}

/* Keeps a line past the head in the ring, dropping the oldest records to
 * make room (and the line itself when it is larger than the ring). */
static void over_push(struct run *r, int stream, const char *line, size_t len)
{
        size_t need = len + 2, at;

        if (!r->over && r->over_cap > 0) {
                r->over = malloc(r->over_cap);
                if (!r->over)
                        r->over_cap = 0; /* Out of memory: the rest is dropped. */
        }
        if (need > r->over_cap || log_size(stream, len) > r->over_cap) {
                r->dropped += (long long)log_size(stream, len);
                return;
        }
        while (r->over_cap - r->over_len < need ||
               r->over_cap - r->over_log < log_size(stream, len)) {
                size_t l = over_first_len(r);
                size_t ls = log_size(r->over[r->over_start] == '2' ? 2 : 1, l - 2);
                r->dropped += (long long)ls;
                r->over_log -= ls;
                r->over_start = (r->over_start + l) % r->over_cap;
                r->over_len -= l;
        }
        at = (r->over_start + r->over_len) % r->over_cap;
        for (size_t i = 0; i < need; i++) {
                r->over[at] = i == 0 ? (char)('0' + stream) : i == need - 1 ? '\n' : line[i - 1];
                at = at + 1 == r->over_cap ? 0 : at + 1;
        }
        r->over_len += need;
        r->over_log += log_size(stream, len);
}

/* After the script: the note on what was dropped, then the kept tail. */
static void over_flush(struct run *r)
{
        _cleanup_free_ char *note = NULL;

        if (!r->overflowed)
                return;
        note = strprintf("firstboot: dropped %lld bytes of output here: the log keeps at most "
                         "%lld bytes of a module's output, the first and the last half",
                         r->dropped, r->spec->log_max);
        if (note) {
                if (r->spec->on_line)
                        r->spec->on_line(r->spec->userdata, 0, note);
                if (r->spec->log_fd >= 0) {
                        int k = write_all(r->spec->log_fd, note, strlen(note));
                        if (k >= 0)
                                k = write_all(r->spec->log_fd, "\n", 1);
                        if (k < 0 && r->log_error == 0)
                                r->log_error = k;
                }
        }
        while (r->over_len > 0) {
                size_t l = over_first_len(r);
                char stream;

                over_copy_out(r, 0, &stream, 1);
                over_copy_out(r, 1, r->out + STDERR_PREFIX_LEN, l - 2);
                r->out[STDERR_PREFIX_LEN + l - 2] = '\0';
                deliver(r, stream == '2' ? 2 : 1, l - 2);
                r->over_start = (r->over_start + l) % r->over_cap;
                r->over_len -= l;
        }
}

/* Masks one line (len <= r->cap) and passes it on, or keeps it for later
 * once log_max's head is full. NUL bytes, which would end the line early
 * for every reader, become '?'. */
static void emit(struct run *r, int stream, const char *data, size_t len)
{
        size_t o = STDERR_PREFIX_LEN, n;
        const char *line = r->out + STDERR_PREFIX_LEN;

        mask_cover(r, data, len);
        for (size_t i = 0; i < len; i++) {
                if (!r->cov[i])
                        r->out[o++] = data[i] ? data[i] : '?';
                else if (i == 0 || !r->cov[i - 1]) {
                        memcpy(r->out + o, MASK_TEXT, MASK_TEXT_LEN);
                        o += MASK_TEXT_LEN;
                }
        }
        r->out[o] = '\0';
        n = o - STDERR_PREFIX_LEN;

        tail_push(r, line);
        if (!r->overflowed &&
            (r->spec->log_max <= 0 || r->head_used + log_size(stream, n) <= r->head_max)) {
                r->head_used += log_size(stream, n);
                deliver(r, stream, n);
                return;
        }
        r->overflowed = true;
        over_push(r, stream, line, n);
}

/* Where to cut a piece off a line of len > RUNNER_LINE_MAX bytes, of which
 * at least RUNNER_LINE_MAX + max_mask are known: at RUNNER_LINE_MAX, or
 * before a secret running across that point so that both halves are not
 * passed on unmasked; after it when it starts the line. */
static size_t choose_cut(const struct run *r, const char *data, size_t len)
{
        size_t cut = len < RUNNER_LINE_MAX ? len : RUNNER_LINE_MAX, s, e;

        if (cut == len || r->n_masks == 0)
                return cut;
        mask_cover(r, data, len);
        if (!r->cov[cut - 1] || !r->cov[cut])
                return cut;
        for (s = cut; s > 0 && r->cov[s - 1]; s--)
                ;
        if (s > 0)
                return s;
        for (e = cut; e < len && r->cov[e]; e++)
                ;
        return e;
}

/* Passes on the complete lines in the buffer, and pieces of a line too
 * long for it; at eof, the rest too. */
static void stream_process(struct run *r, struct stream *s, bool eof)
{
        size_t off = 0;

        while (off < s->len) {
                char *p = s->buf + off;
                size_t avail = s->len - off;
                const char *nl = memchr(p, '\n', avail);
                size_t n = nl ? (size_t)(nl - p) : avail, cut;

                if (nl && n <= RUNNER_LINE_MAX) {
                        /* A newline right after a piece only ends that line. */
                        if (n > 0 || !s->continued)
                                emit(r, s->id, p, n);
                        s->continued = false;
                        off += n + 1;
                        continue;
                }
                if (!nl && !eof && avail < r->cap)
                        break;
                cut = choose_cut(r, p, n);
                emit(r, s->id, p, cut);
                off += cut;
                s->continued = true;
                if (nl && cut == n) {
                        off++;
                        s->continued = false;
                }
        }
        memmove(s->buf, s->buf + off, s->len - off);
        s->len -= off;
}

static void stream_close(struct run *r, struct stream *s)
{
        stream_process(r, s, true);
        close(s->fd);
        s->fd = -1;
}

/* One read; returns true when data came. */
static bool stream_read(struct run *r, struct stream *s)
{
        ssize_t n = read(s->fd, s->buf + s->len, r->cap - s->len);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return false;
        if (n <= 0) {
                stream_close(r, s);
                return false;
        }
        s->len += (size_t)n;
        stream_process(r, s, false);
        return true;
}

static void report_child_failure(struct run *r, const struct child_report *rep)
{
        const char *path = r->spec->argv[0];
        char msg[RUNNER_LINE_MAX];
        int n;

        switch (rep->stage) {
        case STAGE_CHDIR:
                n = snprintf(msg, sizeof(msg), "failed to change directory to %s: %s", r->spec->cwd,
                             strerror(rep->error));
                break;
        case STAGE_EXEC:
                n = snprintf(msg, sizeof(msg), "failed to execute %s: %s", path,
                             strerror(rep->error));
                break;
        case STAGE_EXEC_SH:
                n = snprintf(msg, sizeof(msg), "failed to execute /bin/sh for %s: %s", path,
                             strerror(rep->error));
                break;
        default:
                n = snprintf(msg, sizeof(msg), "failed to set up the process for %s: %s", path,
                             strerror(rep->error));
                break;
        }
        if (n < 0)
                return;
        emit(r, 2, msg, strnlen(msg, sizeof(msg)));
}

static _Noreturn void child_fail(int report_fd, int stage, int error)
{
        struct child_report rep = {stage, error};

        if (write(report_fd, &rep, sizeof(rep)) < 0) {
                /* Nothing left to tell it with: the exit status says enough. */
        }
        _exit(127);
}

/* In the child, between vfork and exec: async-signal-safe calls only, as
 * the caller may have threads. Every fd passed is >= 3 and O_CLOEXEC. */
static _Noreturn void child_run(const struct runner_spec *spec, char *const *envp,
                                char *const *sh_argv, int null_fd, int out_fd, int err_fd,
                                int report_fd, int max_fd)
{
        sigset_t none;

        if (setpgid(0, 0) < 0)
                child_fail(report_fd, STAGE_SETUP, errno);
        for (int sig = 1; sig < _NSIG; sig++) {
                struct sigaction sa = {.sa_handler = SIG_DFL};
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void)sigaction(sig, &sa, NULL); /* glibc's own signals refuse */
        }
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                child_fail(report_fd, STAGE_SETUP, errno);

        if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
                child_fail(report_fd, STAGE_SETUP, errno);
        if (report_fd != 3) {
                if (dup3(report_fd, 3, O_CLOEXEC) < 0)
                        child_fail(report_fd, STAGE_SETUP, errno);
                report_fd = 3;
        }
#ifdef SYS_close_range
        if (syscall(SYS_close_range, 4U, ~0U, 0U) < 0)
#endif
                for (int fd = 4; fd < max_fd; fd++)
                        (void)close(fd);

        if (spec->cwd && chdir(spec->cwd) < 0)
                child_fail(report_fd, STAGE_CHDIR, errno);
        execve(spec->argv[0], spec->argv, envp);
        if (errno != ENOEXEC)
                child_fail(report_fd, STAGE_EXEC, errno);
        execve(sh_argv[0], sh_argv, envp);
        child_fail(report_fd, STAGE_EXEC_SH, errno);
}

/* vfork(): the child borrows the parent's memory until it execs, so
 * starting a module does not copy the agent's page tables (a fork of a
 * process with OpenSSL, libarchive and libsystemd mapped costs more than
 * the exec). The child only makes system calls on its own stack and
 * never returns here; the caller has blocked every signal. Kept apart so
 * no variable of runner_exec() lives across the vfork(). */
static pid_t spawn(const struct runner_spec *spec, char *const *envp, char *const *sh_argv,
                   int null_fd, int out_fd, int err_fd, int report_fd, int max_fd)
{
        pid_t pid = vfork();
        if (pid == 0)
                child_run(spec, envp, sh_argv, null_fd, out_fd, err_fd, report_fd, max_fd);
        return pid;
}

/* Moves an fd that landed on 0, 1 or 2 (the caller had closed them) out of
 * the way of the child's stdio. Takes ownership of fd. */
static int fd_above_stdio(int fd)
{
        int n, e;

        if (fd > 2)
                return fd;
        n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        e = errno;
        close(fd);
        return n < 0 ? -e : n;
}

static int make_pipe(int *ret_read, int *ret_write)
{
        int p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        p[0] = fd_above_stdio(p[0]);
        p[1] = fd_above_stdio(p[1]);
        if (p[0] < 0 || p[1] < 0) {
                int r = p[0] < 0 ? p[0] : p[1];
                if (p[0] >= 0)
                        close(p[0]);
                if (p[1] >= 0)
                        close(p[1]);
                return r;
        }
        /* Only our end: the child's stdout must stay blocking. */
        if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
                int r = -errno;
                close(p[0]);
                close(p[1]);
                return r;
        }
        *ret_read = p[0];
        *ret_write = p[1];
        return 0;
}

/* From /proc/PID/stat: the state, the process group and the start time
 * (clock ticks since boot). */
static int proc_stat(const char *pid, char *ret_state, int *ret_pgrp, unsigned long long *ret_start)
{
        char path[300], stat[1024];
        const char *p;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%s/stat", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, stat, sizeof(stat) - 1);
        close(fd);
        if (n <= 0)
                return n < 0 ? -errno : -ENOENT;
        stat[n] = '\0';
        /* "pid (comm) state ppid pgrp session tty_nr tpgid flags minflt
         * cminflt majflt cmajflt utime stime cutime cstime priority nice
         * num_threads itrealvalue starttime ...", and comm may hold
         * anything. */
        p = strrchr(stat, ')');
        if (!p ||
            sscanf(p + 1,
                   " %c %*d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d "
                   "%llu",
                   ret_state, ret_pgrp, ret_start) != 3)
                return -EBADMSG;
        return 0;
}

/* Whether anything in process group pgid is alive, zombies aside: they
 * stay in the group until their parent (often init, and in a container
 * maybe one that never reaps) collects them. */
static bool group_alive(pid_t pgid)
{
        DIR *d;
        const struct dirent *de;
        bool alive = false;

        if (kill(-pgid, 0) < 0)
                return errno != ESRCH;
        d = opendir("/proc");
        if (!d)
                return true;
        while (!alive && (de = readdir(d))) {
                unsigned long long start;
                char state;
                int pgrp;

                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                if (proc_stat(de->d_name, &state, &pgrp, &start) == 0 && pgrp == pgid &&
                    state != 'Z' && state != 'X')
                        alive = true;
        }
        closedir(d);
        return alive;
}

/* This boot's id, or "-" where it cannot be read: a record from another
 * boot names a process group a reboot ended, whose id (and leader's start
 * time) may well be a new process's now. */
static void boot_id(char ret[64])
{
        int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, ret, 63);

        if (fd >= 0)
                close(fd);
        ret[n > 0 ? n : 0] = '\0';
        ret[strcspn(ret, " \t\n")] = '\0';
        if (!*ret)
                strcpy(ret, "-");
}

/* Writes spec->pgid_file for the child pid, which leads its own group. Not
 * synced: it is for a rerun after the agent was killed, and a power loss
 * ends the module too. */
static int pgid_record(const struct runner_spec *spec, pid_t pid)
{
        char num[32], text[256], label[64], boot[64], state;
        unsigned long long start;
        int pgrp, fd, k, n;

        snprintf(num, sizeof(num), "%d", (int)pid);
        k = proc_stat(num, &state, &pgrp, &start);
        if (k < 0)
                return k;
        snprintf(label, sizeof(label), "%s",
                 spec->pgid_label && *spec->pgid_label ? spec->pgid_label : "-");
        for (char *c = label; *c; c++)
                if ((unsigned char)*c <= ' ')
                        *c = '?';
        boot_id(boot);
        n = snprintf(text, sizeof(text), "%d %llu %s %s\n", (int)pid, start, label, boot);
        fd = open(spec->pgid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        k = write_all(fd, text, (size_t)n);
        if (close(fd) < 0 && k >= 0)
                k = -errno;
        return k;
}

/* Collects the child if it has exited. A child someone else collected
 * (a waitpid(-1) elsewhere) counts as exited with status -1. */
static bool child_reap(pid_t pid, int *ret_status)
{
        for (;;) {
                pid_t k = waitpid(pid, ret_status, WNOHANG);
                if (k == pid)
                        return true;
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        *ret_status = -1;
                        return true;
                }
                return false;
        }
}

/* now + ms, saturating: a huge timeout means none. */
static long long add_ms(long long now, long long ms)
{
        return ms > LLONG_MAX - now ? LLONG_MAX : now + ms;
}

static long long min_ll(long long a, long long b)
{
        return a < b ? a : b;
}

/* Milliseconds from now until wake for poll(); LLONG_MAX is never. */
static int poll_timeout(long long wake, long long now)
{
        if (wake == LLONG_MAX)
                return -1;
        if (wake <= now)
                return 0;
        return wake - now > INT_MAX ? INT_MAX : (int)(wake - now);
}

long long runner_retry_delay_ms(int exit_code, unsigned attempt, unsigned attempts,
                                long long base_ms)
{
        if (exit_code != 2 || attempt >= attempts)
                return -1;
        long long delay = base_ms << (attempt - 1 < 20 ? attempt - 1 : 20);
        return delay > RUNNER_RETRY_CAP_MS ? RUNNER_RETRY_CAP_MS : delay;
}

int runner_exec(const struct runner_spec *spec, struct runner_result *ret)
{
        static char *const empty_env[] = {NULL};
        _cleanup_close_ int out_r = -1, out_w = -1, err_r = -1, err_w = -1, rep_r = -1, rep_w = -1,
                            null_fd = -1, pidfd = -1;
        _cleanup_free_ char **sh_argv = NULL;
        _cleanup_free_ char *out_buf = NULL, *err_buf = NULL;
        struct run r = {0};
        struct stream out, err;
        struct sigaction chld;
        struct rlimit rl;
        sigset_t all, saved;
        char *const *envp;
        long long start, deadline, grace, kill_at = 0, give_up_at = 0, exited_at = 0;
        long long last_data;
        enum phase phase = PHASE_RUN;
        bool reaped = false, timed_out = false, killed_hard = false;
        int status = 0, max_fd = 65536, pgid_err = 0, k;
        size_t argc;
        pid_t pid;

        if (!spec || !ret || !spec->argv || !spec->argv[0] || spec->timeout_ms < 0 ||
            spec->kill_grace_ms < 0)
                return -EINVAL;
        /* With SIGCHLD ignored the kernel reaps the child itself and its
         * status is lost. */
        if (sigaction(SIGCHLD, NULL, &chld) == 0 &&
            (chld.sa_handler == SIG_IGN || (chld.sa_flags & SA_NOCLDWAIT)))
                return -ECHILD;
        envp = spec->envp ? spec->envp : empty_env;
        grace = spec->kill_grace_ms > 0 ? spec->kill_grace_ms : RUNNER_KILL_GRACE_MS;

        argc = strv_length(spec->argv);
        sh_argv = calloc(argc + 2, sizeof(*sh_argv));
        if (!sh_argv)
                return -ENOMEM;
        sh_argv[0] = (char *)"/bin/sh";
        for (size_t i = 0; i < argc; i++)
                sh_argv[i + 1] = spec->argv[i];

        k = run_init(&r, spec);
        if (k >= 0) {
                out_buf = malloc(r.cap);
                err_buf = malloc(r.cap);
                if (!out_buf || !err_buf)
                        k = -ENOMEM;
        }
        if (k >= 0)
                k = make_pipe(&out_r, &out_w);
        if (k >= 0)
                k = make_pipe(&err_r, &err_w);
        if (k >= 0)
                k = make_pipe(&rep_r, &rep_w);
        if (k >= 0) {
                null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                null_fd = null_fd < 0 ? -errno : fd_above_stdio(null_fd);
                if (null_fd < 0) {
                        k = null_fd;
                        null_fd = -1;
                }
        }
        if (k < 0) {
                run_done(&r);
                return k;
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max_fd)
                max_fd = (int)rl.rlim_cur;

        /* No handler of the caller's may run in the child before the
         * dispositions are reset there. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &saved);
        start = now_ms();
        pid = spawn(spec, envp, sh_argv, null_fd, out_w, err_w, rep_w, max_fd);
        k = -errno;
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (pid < 0) {
                run_done(&r);
                return k;
        }
        /* Either this or the child's own call comes first; before both,
         * kill(-pid) would miss. EACCES: it has exec'd, so it did it. */
        (void)setpgid(pid, pid);
        if (spec->pgid_file)
                pgid_err = pgid_record(spec, pid);
        close(TAKE_FD(out_w));
        close(TAKE_FD(err_w));
        close(TAKE_FD(rep_w));
        close(TAKE_FD(null_fd));
#ifdef SYS_pidfd_open
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif

        out = (struct stream){.fd = TAKE_FD(out_r), .id = 1, .buf = out_buf};
        err = (struct stream){.fd = TAKE_FD(err_r), .id = 2, .buf = err_buf};
        deadline = spec->timeout_ms > 0 ? add_ms(start, spec->timeout_ms) : LLONG_MAX;
        last_data = start;
        long long running_at =
                spec->on_running
                        ? add_ms(start, spec->running_after_ms > 0 ? spec->running_after_ms : 0)
                        : LLONG_MAX;

        for (;;) {
                struct pollfd pfd[4];
                struct stream *pstream[4] = {NULL};
                long long now, wake = LLONG_MAX;
                bool streams_open;
                nfds_t n = 0;
                int rep_slot = -1;

                if (!reaped && child_reap(pid, &status)) {
                        reaped = true;
                        exited_at = last_data = now_ms();
                        if (pidfd >= 0)
                                close(TAKE_FD(pidfd));
                }
                now = now_ms();
                if (!reaped && phase == PHASE_RUN && now >= deadline) {
                        (void)kill(-pid, SIGTERM);
                        timed_out = true;
                        phase = PHASE_TERM;
                        kill_at = add_ms(now, grace);
                }
                if (phase == PHASE_TERM && now >= kill_at) {
                        if (group_alive(pid)) {
                                (void)kill(-pid, SIGKILL);
                                killed_hard = true;
                        }
                        phase = PHASE_KILL;
                        give_up_at = add_ms(now, grace);
                }

                streams_open = out.fd >= 0 || err.fd >= 0 || rep_r >= 0;
                if (reaped) {
                        bool drained = !streams_open || now - last_data >= RUNNER_DRAIN_IDLE_MS ||
                                       now - exited_at >= RUNNER_DRAIN_MAX_MS;
                        if (drained && (phase != PHASE_TERM || !group_alive(pid)))
                                break;
                } else if (phase == PHASE_KILL && now >= give_up_at)
                        break; /* Unkillable (stuck in the kernel): leave it. */

                if (!reaped && running_at != LLONG_MAX && now >= running_at) {
                        running_at = LLONG_MAX;
                        spec->on_running(spec->userdata);
                        now = now_ms();
                }
                if (!reaped && phase == PHASE_RUN)
                        wake = min_ll(wake, min_ll(deadline, running_at));
                if (phase == PHASE_TERM)
                        wake = min_ll(wake, kill_at);
                if (!reaped && phase == PHASE_KILL)
                        wake = min_ll(wake, give_up_at);
                if (reaped) {
                        wake = min_ll(wake, min_ll(last_data + RUNNER_DRAIN_IDLE_MS,
                                                   exited_at + RUNNER_DRAIN_MAX_MS));
                        if (phase == PHASE_TERM)
                                wake = min_ll(wake, now + GROUP_POLL_MS);
                }
                if (!reaped && pidfd < 0)
                        wake = min_ll(wake, now + REAP_POLL_MS);

                if (out.fd >= 0) {
                        pstream[n] = &out;
                        pfd[n++] = (struct pollfd){.fd = out.fd, .events = POLLIN};
                }
                if (err.fd >= 0) {
                        pstream[n] = &err;
                        pfd[n++] = (struct pollfd){.fd = err.fd, .events = POLLIN};
                }
                if (rep_r >= 0) {
                        rep_slot = (int)n;
                        pfd[n++] = (struct pollfd){.fd = rep_r, .events = POLLIN};
                }
                if (pidfd >= 0)
                        pfd[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};

                k = poll(pfd, n, poll_timeout(wake, now));
                if (k < 0) {
                        if (errno != EINTR)
                                sleep_ms(REAP_POLL_MS); /* ENOMEM: try again shortly. */
                        continue;
                }
                for (nfds_t i = 0; i < n; i++) {
                        if (!pfd[i].revents)
                                continue;
                        if (pstream[i]) {
                                if (stream_read(&r, pstream[i]))
                                        last_data = now_ms();
                        } else if ((int)i == rep_slot) {
                                struct child_report rep;
                                ssize_t got = read(rep_r, &rep, sizeof(rep));

                                if (got < 0 && (errno == EINTR || errno == EAGAIN))
                                        continue;
                                if (got == (ssize_t)sizeof(rep))
                                        report_child_failure(&r, &rep);
                                close(TAKE_FD(rep_r));
                        }
                }
        }

        /* Whatever is still in the pipes, then the last unterminated lines. */
        for (int i = 0; i < FINAL_READS && out.fd >= 0 && stream_read(&r, &out); i++)
                ;
        for (int i = 0; i < FINAL_READS && err.fd >= 0 && stream_read(&r, &err); i++)
                ;
        if (out.fd >= 0)
                stream_close(&r, &out);
        if (err.fd >= 0)
                stream_close(&r, &err);
        over_flush(&r);
        if (spec->pgid_file && unlink(spec->pgid_file) < 0 && errno != ENOENT && pgid_err == 0)
                pgid_err = -errno;

        *ret = (struct runner_result){
                .timed_out = timed_out,
                .killed_hard = killed_hard,
                .duration_ms = now_ms() - start,
                .log_error = r.log_error,
                .log_dropped = r.dropped,
                .pgid_error = pgid_err,
        };
        if (timed_out)
                ret->exit_code = 124;
        else if (status == -1)
                ret->exit_code = 255;
        else if (WIFSIGNALED(status))
                ret->exit_code = 128 + WTERMSIG(status);
        else
                ret->exit_code = WEXITSTATUS(status);
        ret->tail = tail_steal(&r);
        run_done(&r);
        return 0;
}

/* Waits at most ms for process group pgid to be gone. */
static bool group_wait_gone(pid_t pgid, long long ms)
{
        long long end = add_ms(now_ms(), ms);

        for (;;) {
                if (!group_alive(pgid))
                        return true;
                if (now_ms() >= end)
                        return false;
                sleep_ms(GROUP_POLL_MS);
        }
}

/* A pid is not given to a new process while a process group of that id
 * has members, so the group's id stays ours as long as the group lives,
 * its leader gone or not; only a new process that took the pid once the
 * group was empty can have it, and it started later than ours. */
int runner_end_leftover(const char *pgid_file, long long grace_ms, struct runner_leftover *ret)
{
        char text[256], label[64] = "", boot[64] = "", now_boot[64], num[32], state;
        unsigned long long start, now_start;
        int fd, pgid, pgrp, k;
        struct stat st;
        ssize_t n;

        /* O_NONBLOCK: a FIFO there would wait for a writer without end. */
        fd = open(pgid_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                (void)unlink(pgid_file);
                return -EBADMSG;
        }
        n = read(fd, text, sizeof(text) - 1);
        k = n < 0 ? -errno : 0;
        close(fd);
        if (k < 0)
                return k;
        text[n] = '\0';
        if (sscanf(text, "%d %llu %63s %63s", &pgid, &start, label, boot) != 4 || pgid <= 1) {
                (void)unlink(pgid_file);
                return -EBADMSG;
        }
        boot_id(now_boot);
        if (!streq(boot, now_boot)) {
                /* A reboot ended it; the group id may be another's now. */
                (void)unlink(pgid_file);
                return 0;
        }
        snprintf(num, sizeof(num), "%d", pgid);
        k = proc_stat(num, &state, &pgrp, &now_start);
        if ((k == 0 && now_start != start) || !group_alive(pgid)) {
                /* Its pid is someone else's now, or nothing is left. */
                (void)unlink(pgid_file);
                return 0;
        }
        *ret = (struct runner_leftover){.pgid = pgid};
        snprintf(ret->label, sizeof(ret->label), "%s", label);
        (void)kill(-pgid, SIGTERM);
        (void)kill(-pgid, SIGCONT); /* a stopped process gets the TERM only now */
        if (!group_wait_gone(pgid, grace_ms)) {
                (void)kill(-pgid, SIGKILL);
                ret->killed_hard = true;
                if (!group_wait_gone(pgid, grace_ms > 1000 ? grace_ms : 1000))
                        return -EBUSY;
        }
        (void)unlink(pgid_file);
        return 1;
}

void runner_result_free(struct runner_result *r)
{
        if (!r)
                return;
        strv_free(r->tail);
        *r = (struct runner_result){0};
}

char **runner_env(const char *root, const char *instance_id, const char *module,
                  const char *module_dir, const char *state_dir, unsigned attempt)
{
        char **env = NULL;
        const char *path = getenv("PATH");

        strv_push(&env, strprintf("PATH=%s", path ? path
                                                  : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/"
                                                    "usr/bin:/sbin:/bin"));
        strv_push(&env, xstrdup("HOME=/root"));
        strv_push(&env, xstrdup("LANG=C.UTF-8"));
        strv_push(&env, xstrdup("DEBIAN_FRONTEND=noninteractive"));
        strv_push(&env, xstrdup("PROVISIONING_JOB=true"));
        if (instance_id)
                strv_push(&env, strprintf("FIRSTBOOT_INSTANCE_ID=%s", instance_id));
        strv_push(&env, strprintf("FIRSTBOOT_ROOT=%s", root ? root : "/"));
        strv_push(&env, strprintf("FIRSTBOOT_MODULE=%s", module));
        strv_push(&env, strprintf("FIRSTBOOT_MODULE_DIR=%s", module_dir));
        strv_push(&env, strprintf("FIRSTBOOT_STATE_DIR=%s", state_dir));
        strv_push(&env, strprintf("FIRSTBOOT_ATTEMPT=%u", attempt));
        return env;
}

void runner_env_inputs(char ***env, const struct input_values *in)
{
        for (size_t i = 0; i < in->n; i++)
                strv_push(env, strprintf("%s=%s", in->v[i].env_name, in->v[i].value));
}
