/* peak-rss COMMAND [ARG...]: runs COMMAND and prints, as the last line on
 * stderr, the peak RSS in KB of that process alone: its VmHWM (proc(5))
 * read at its PTRACE_EVENT_EXIT stop, when it is exiting but still has its
 * memory (after an execve() of its own, the peak of the last program).
 * GNU time's %M cannot say this: it is the ru_maxrss that wait4()
 * returns, the largest of the process and of every descendant it waited
 * for, so a module script bigger than the agent shows as the agent. Only
 * COMMAND itself is traced (no PTRACE_O_TRACEFORK); the signals it gets
 * are passed on (ptrace(2): signal-delivery-stop, group-stop). Exits with
 * COMMAND's status (128 + the signal that killed it); 125 when it cannot
 * trace, 127 when COMMAND cannot run. For make bench (tests/bench.py). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static long vm_hwm_kb(pid_t pid)
{
        char path[64], line[256];
        long kb = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "VmHWM:", 6) == 0) {
                        char *end;
                        kb = strtol(line + 6, &end, 10);
                        if (end == line + 6)
                                kb = -1;
                        break;
                }
        fclose(f);
        return kb;
}

int main(int argc, char **argv)
{
        const long opts = PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
        long kb = -1;
        pid_t pid;
        int st;

        if (argc < 2) {
                fprintf(stderr, "usage: peak-rss COMMAND [ARG...]\n");
                return 2;
        }
        pid = fork();
        if (pid < 0) {
                fprintf(stderr, "peak-rss: fork: %s\n", strerror(errno));
                return 125;
        }
        if (pid == 0) {
                if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0) {
                        fprintf(stderr, "peak-rss: PTRACE_TRACEME: %s\n", strerror(errno));
                        _exit(125);
                }
                execvp(argv[1], argv + 1);
                fprintf(stderr, "peak-rss: %s: %s\n", argv[1], strerror(errno));
                _exit(127);
        }
        /* The first stop is the SIGTRAP after a successful execve(); a
         * child that could not trace or exec has exited (125, 127). */
        if (waitpid(pid, &st, 0) < 0) {
                fprintf(stderr, "peak-rss: waitpid: %s\n", strerror(errno));
                return 125;
        }
        if (!WIFSTOPPED(st))
                return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)opts) < 0 ||
            ptrace(PTRACE_CONT, pid, NULL, NULL) < 0) {
                fprintf(stderr, "peak-rss: ptrace: %s\n", strerror(errno));
                kill(pid, SIGKILL);
                return 125;
        }
        for (;;) {
                siginfo_t si;
                int sig = 0;

                if (waitpid(pid, &st, 0) < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "peak-rss: waitpid: %s\n", strerror(errno));
                        return 125;
                }
                if (WIFEXITED(st) || WIFSIGNALED(st))
                        break;
                if (st >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8)))
                        kb = vm_hwm_kb(pid);
                else if (st >> 16 != 0)
                        ; /* another execve() (PTRACE_EVENT_EXEC): nothing to pass on */
                else if (ptrace(PTRACE_GETSIGINFO, pid, NULL, &si) == 0)
                        sig = WSTOPSIG(st); /* a signal for it, passed on; not a group-stop */
                ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig);
        }
        if (kb < 0) {
                fprintf(stderr, "peak-rss: no VmHWM read for %s\n", argv[1]);
                return 125;
        }
        fprintf(stderr, "%ld\n", kb);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
