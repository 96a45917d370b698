/* Running one attempt of a module script under the module contract: its
 * own process group, no stdin, an explicit argv and environment, output
 * split into lines with secrets masked, and a timeout that ends the whole
 * process group with TERM, then KILL. The runner never logs: it reports
 * through on_line, log_fd and the result. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct input_values;

/* Longest line passed on: a longer one comes in pieces of at most this
 * many bytes (a piece is cut earlier rather than through a secret). */
#define RUNNER_LINE_MAX 4096

/* How long the output is still read after the script exited, for whatever
 * it left running in the background: until both pipes are closed, but at
 * most RUNNER_DRAIN_IDLE_MS without data and RUNNER_DRAIN_MAX_MS in all.
 * Such leftovers are not killed. */
#define RUNNER_DRAIN_IDLE_MS 200
#define RUNNER_DRAIN_MAX_MS  2000

#define RUNNER_KILL_GRACE_MS 5000

struct runner_spec {
        char *const *argv;       /* argv[0] is the path executed (no PATH search) */
        char *const *envp;       /* the complete environment; nothing is inherited; NULL: empty */
        const char *cwd;         /* NULL: leave */
        long long timeout_ms;    /* 0: none */
        long long kill_grace_ms; /* between TERM and KILL of the process group (0: 5000) */
        /* Secrets: every occurrence in a line becomes "********"; overlapping
         * or adjacent occurrences become one. Empty strings are ignored. A
         * secret that spans lines never shows whole in one line, so each of
         * its lines (without a \r at either end; blank ones aside) is a
         * secret of its own too. */
        char *const *mask;
        /* -1, or a file each masked line is appended to, in the order the
         * lines were read: a stdout line as it is, a stderr line as
         * "stderr: line", each with a newline. */
        int log_fd;
        /* Called for each line, from inside runner_exec(): stream 1 stdout, 2
         * stderr, 0 a note of the runner's own (output dropped for log_max);
         * the line masked, without its newline. May be NULL. */
        void (*on_line)(void *userdata, int stream, const char *line);
        /* 0, or about the most bytes log_fd gets (and on_line sees): the
         * first half as it comes; past that only the last half is kept, in
         * memory, and passed on when the script is done, after a note
         * "firstboot: dropped N bytes of output here ...". tail is kept
         * from every line. */
        long long log_max;
        /* NULL, or a file that says "PGID STARTTIME LABEL BOOTID" while the script
         * runs: written right after the fork, before any wait, and removed
         * before runner_exec() returns. What a killed caller leaves there is
         * for runner_end_leftover(). */
        const char *pgid_file;
        const char *pgid_label;
        /* Called once, from inside runner_exec(), when the child has run for
         * running_after_ms and has not exited; never for a quicker one (the
         * caller's "it is running now" bookkeeping costs nothing for the
         * many scripts that finish at once). May be NULL. */
        void (*on_running)(void *userdata);
        long long running_after_ms;
        void *userdata;
        size_t tail_lines; /* keep the last N masked lines (both streams, in order) */
};

struct runner_result {
        /* The exit status; 124 when killed for the timeout; 128+N when killed
         * by signal N; 127 when it could not be executed; 255 when someone
         * else collected the child (a waitpid(-1) elsewhere). */
        int exit_code;
        bool timed_out;
        bool killed_hard;      /* something in the group outlived TERM for the grace */
        long long duration_ms; /* monotonic, from the fork until the output was read */
        char **tail;           /* NULL-terminated, at most tail_lines; never NULL */
        /* The first error writing to log_fd (negative errno), or 0; a failing
         * log never stops the script. */
        int log_error;
        long long log_dropped; /* bytes of output left out of the log for log_max */
        int pgid_error;        /* writing pgid_file failed (negative errno), or 0 */
};

/* Runs spec->argv once and waits for it. stdin is /dev/null, stdout and
 * stderr are pipes read here, every other fd is closed, signal
 * dispositions and the mask are reset, the process leads its own group.
 * A file the kernel cannot execute (ENOEXEC: a script without "#!") is run
 * with /bin/sh, as execvp() does; a file that is not executable at all is
 * not. When exec or chdir fails, exit_code is 127 and the reason comes as
 * a stderr line ("failed to execute PATH: REASON").
 *
 * On timeout the process group gets SIGTERM, and SIGKILL after the grace
 * if anything in it is still alive (zombies do not count). Other children
 * of the caller and its signal handlers are left alone: the child is
 * waited for by pid, through a pidfd. SIGCHLD must not be ignored by the
 * caller, or the exit status is lost (-ECHILD up front). A script that
 * outlives even SIGKILL by another grace (stuck in the kernel) is left
 * behind unreaped rather than hanging the caller.
 *
 * Returns 0 and fills *ret (free with runner_result_free()), or a negative
 * errno when nothing was run: -EINVAL for a bad spec, or pipe/fork
 * failures. */
int runner_exec(const struct runner_spec *spec, struct runner_result *ret);

/* The module contract's retry rule, for `firstboot run` and the agent
 * alike: only exit code 2 is retried, up to attempts in all, after a wait
 * of base_ms doubled for each attempt made (at most RUNNER_RETRY_CAP_MS).
 * The wait before the next attempt, or -1 when there is none. */
#define RUNNER_RETRY_CAP_MS 300000LL
long long runner_retry_delay_ms(int exit_code, unsigned attempt, unsigned attempts,
                                long long base_ms);

/* The pgid_file of a run, in its state directory. */
#define RUNNER_PGID_FILE "running-module"

struct runner_leftover {
        int pgid;
        char label[64];
        bool killed_hard; /* it outlived TERM for the grace */
};

/* Ends the module a killed run left running, as its pgid_file recorded
 * it: SIGTERM (and SIGCONT) to its process group, SIGKILL when anything in
 * it is alive after grace_ms. A group whose leader's pid now belongs to
 * another process (its start time differs) is not touched, nor one a
 * record from another boot names (a reboot ended it). The record is
 * removed unless the group outlives the KILL too.
 *
 * Returns 0 when there was nothing to end (no record, or the group is
 * gone), 1 when something was ended (*ret says what), -EBUSY when the
 * group is still alive after KILL and another grace, -EBADMSG for a
 * record that makes no sense (removed), or another negative errno from
 * reading it. *ret is filled for 1 and -EBUSY. */
int runner_end_leftover(const char *pgid_file, long long grace_ms, struct runner_leftover *ret);

/* Frees what a result holds and clears it; takes NULL. */
void runner_result_free(struct runner_result *r);

/* The environment every module gets under the installer contract, for a
 * first boot, an apply and a job alike: PATH (the caller's, or the
 * standard one), HOME, LANG, DEBIAN_FRONTEND=noninteractive,
 * PROVISIONING_JOB=true, FIRSTBOOT_ROOT, FIRSTBOOT_MODULE,
 * FIRSTBOOT_MODULE_DIR, FIRSTBOOT_STATE_DIR, FIRSTBOOT_ATTEMPT and
 * FIRSTBOOT_INSTANCE_ID (when instance_id is not NULL); the caller adds its
 * own, then the inputs with runner_env_inputs(). */
char **runner_env(const char *root, const char *instance_id, const char *module,
                  const char *module_dir, const char *state_dir, unsigned attempt);
/* Appends each input as NAME=value (its UPPERCASED environment name). */
void runner_env_inputs(char ***env, const struct input_values *in);
