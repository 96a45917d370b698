/* Paths under a root (fs.h's root_* calls): symlinks of every shape in a
 * hostile root never lead a write, a removal or a directory out of it.
 * Each case runs twice: with openat2(RESOLVE_IN_ROOT) and with the walk
 * that stands in for it on older kernels. Every tree has a sentinel
 * directory "outside" next to the root, which must stay as it was. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fs.h"
#include "util.h"
#include "tap.h"

struct t {
        char *top, *root, *out; /* top/root, top/outside */
        int rootfd;
};

static void t_setup(struct t *t)
{
        const char *base = getenv("TESTTMP");
        t->top = strprintf("%s/test-fs.XXXXXX", base && *base ? base : "/tmp");
        if (!t->top || !mkdtemp(t->top))
                abort();
        t->root = strprintf("%s/root", t->top);
        t->out = strprintf("%s/outside", t->top);
        if (mkdir(t->root, 0755) < 0 || mkdir(t->out, 0755) < 0)
                abort();
        t->rootfd = root_open_dir(t->root);
        if (t->rootfd < 0)
                abort();
}

static void t_done(struct t *t)
{
        close(t->rootfd);
        rm_rf(t->top);
        free(t->top);
        free(t->root);
        free(t->out);
}

/* Entries in dir, "." and ".." aside. */
static int count_entries(const char *dir)
{
        DIR *d = opendir(dir);
        int n = 0;
        if (!d)
                return -1;
        for (struct dirent *de; (de = readdir(d));)
                n += !streq(de->d_name, ".") && !streq(de->d_name, "..");
        closedir(d);
        return n;
}

static void link_at(const struct t *t, const char *target, const char *rel)
{
        _cleanup_free_ char *p = strprintf("%s/%s", t->root, rel);
        CHECK(mkdir_parents(p, 0755) >= 0);
        CHECK(symlink(target, p) == 0);
}

static char *read_in(const char *dir, const char *rel)
{
        _cleanup_free_ char *p = strprintf("%s/%s", dir, rel);
        char *s = NULL;
        return read_file(p, 1 << 20, &s, NULL) >= 0 ? s : NULL;
}

static void write_in(const struct t *t, const char *path, int want)
{
        int r = root_write_file(t->rootfd, path, 0755, "x\n", 2, 0644, (uid_t)-1, (gid_t)-1, 0);
        if (want > 0)
                CHECK_INTEQ(r, 1);
        else
                CHECK_INTEQ(r, want);
}

/* Runs body once with openat2 and once with the walk. */
#define BOTH_WAYS(...)                                                                             \
        for (int way = 0; way < 2; way++) {                                                        \
                root_chase_only = way == 1;                                                        \
                struct t t;                                                                        \
                t_setup(&t);                                                                       \
                __VA_ARGS__;                                                                       \
                CHECK_INTEQ(count_entries(t.out), 0);                                              \
                t_done(&t);                                                                        \
        }                                                                                          \
        root_chase_only = false

TEST(absolute_link_stays_inside)
{
        BOTH_WAYS({
                /* /etc -> the sentinel's host path: inside the root that is
                 * ROOT/<host path>, made on the way. */
                link_at(&t, t.out, "etc");
                write_in(&t, "/etc/hostname", 1);
                _cleanup_free_ char *inner = strprintf("%s%s", t.root, t.out);
                _cleanup_free_ char *s = read_in(inner, "hostname");
                CHECK_STREQ(s, "x\n");
                /* Without making directories the link leads nowhere. */
                CHECK_INTEQ(root_write_file(t.rootfd, "/etc/sub/f", 0, "", 0, 0644, (uid_t)-1,
                                            (gid_t)-1, 0),
                            -ENOENT);
        });
}

TEST(relative_link_up_stays_inside)
{
        BOTH_WAYS({
                /* ROOT/var/lib -> ../../../../../../outside: on the host that
                 * climbs to the sentinel; inside the root it is ROOT/outside. */
                link_at(&t, "../../../../../../../../outside", "var/lib");
                write_in(&t, "/var/lib/firstboot/status.json", 1);
                _cleanup_free_ char *s = read_in(t.root, "outside/firstboot/status.json");
                CHECK_STREQ(s, "x\n");
                _cleanup_close_ int fd = root_mkdir_p(t.rootfd, "/var/lib/firstboot/done", 0700);
                CHECK(fd >= 0);
                _cleanup_free_ char *where = NULL;
                CHECK(fd >= 0 && root_fd_path(t.rootfd, fd, &where) >= 0);
                CHECK_STREQ(where, "/outside/firstboot/done");
        });
}

TEST(nested_links)
{
        BOTH_WAYS({
                /* a -> b -> /c -> ../../.. (the root) , then d -> ../outside */
                link_at(&t, "b", "a");
                link_at(&t, "/c", "b");
                link_at(&t, "../../..", "c");
                link_at(&t, "../outside", "d");
                write_in(&t, "/a/f", 1);
                _cleanup_free_ char *s = read_in(t.root, "f");
                CHECK_STREQ(s, "x\n");
                write_in(&t, "/a/a/a/d/g", 1);
                _cleanup_free_ char *g = read_in(t.root, "outside/g");
                CHECK_STREQ(g, "x\n");
                _cleanup_close_ int fd = root_open(t.rootfd, "/a/d/../../d/g", O_RDONLY, 0);
                CHECK(fd >= 0);
        });
}

TEST(link_loops_are_eloop)
{
        BOTH_WAYS({
                link_at(&t, "l2", "l1");
                link_at(&t, "/l1", "l2");
                link_at(&t, "self/x", "self");
                CHECK_INTEQ(root_open(t.rootfd, "/l1/x", O_RDONLY, 0), -ELOOP);
                CHECK_INTEQ(root_open(t.rootfd, "/l1", O_RDONLY, 0), -ELOOP);
                write_in(&t, "/l1/x", -ELOOP);
                write_in(&t, "/self/x", -ELOOP);
                CHECK_INTEQ(root_mkdir_p(t.rootfd, "/l2/d", 0755), -ELOOP);
                CHECK_INTEQ(root_mkdir_p(t.rootfd, "/self", 0755), -ELOOP);
        });
}

TEST(link_as_last_component_is_replaced)
{
        BOTH_WAYS({
                _cleanup_free_ char *victim = strprintf("%s/victim", t.out);
                CHECK(write_file_atomic(victim, "orig\n", 5, 0644, (uid_t)-1, (gid_t)-1) == 1);
                link_at(&t, victim, "etc/hostname");
                link_at(&t, victim, "etc/mark");
                CHECK_INTEQ(root_open(t.rootfd, "/etc/hostname", O_WRONLY | O_NOFOLLOW, 0), -ELOOP);
                write_in(&t, "/etc/hostname", 1);
                CHECK_INTEQ(root_write_file(t.rootfd, "/etc/mark", 0755, "m\n", 2, 0600, (uid_t)-1,
                                            (gid_t)-1, WRITE_IN_PLACE),
                            1);
                _cleanup_free_ char *h = strprintf("%s/etc/hostname", t.root);
                _cleanup_free_ char *m = strprintf("%s/etc/mark", t.root);
                struct stat st;
                CHECK(lstat(h, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0644);
                CHECK(lstat(m, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
                _cleanup_free_ char *s = read_in(t.out, "victim");
                CHECK_STREQ(s, "orig\n");
                /* The sentinel holds the victim: it must stay alone. */
                CHECK_INTEQ(count_entries(t.out), 1);
                CHECK(unlink(victim) == 0);
        });
}

TEST(dotdot_beyond_root)
{
        BOTH_WAYS({
                write_in(&t, "/../../../../f", 1);
                write_in(&t, "../outside/g", 1);
                _cleanup_free_ char *f = read_in(t.root, "f");
                _cleanup_free_ char *g = read_in(t.root, "outside/g");
                CHECK_STREQ(f, "x\n");
                CHECK_STREQ(g, "x\n");
                _cleanup_close_ int fd = root_mkdir_p(t.rootfd, "/a/../../../b/c", 0755);
                CHECK(fd >= 0);
                _cleanup_free_ char *where = NULL;
                CHECK(fd >= 0 && root_fd_path(t.rootfd, fd, &where) >= 0);
                CHECK_STREQ(where, "/b/c");
                const char *name = NULL;
                CHECK_INTEQ(root_open_parent(t.rootfd, "/", 0, &name), -EINVAL);
                CHECK_INTEQ(root_open_parent(t.rootfd, "/a/..", 0, &name), -EINVAL);
        });
}

TEST(dangling_link_mkdir_inside)
{
        BOTH_WAYS({
                /* The state directory a link to a path absent in the root:
                 * made where the link leads, inside the root. */
                _cleanup_free_ char *target = strprintf("%s/state", t.out);
                link_at(&t, target, "var/lib/firstboot");
                _cleanup_close_ int fd = root_mkdir_p(t.rootfd, "/var/lib/firstboot", 0700);
                CHECK(fd >= 0);
                _cleanup_free_ char *where = NULL, *want = strprintf("%s/state", t.out);
                CHECK(fd >= 0 && root_fd_path(t.rootfd, fd, &where) >= 0);
                CHECK_STREQ(where, want);
                /* A file on the way is not a directory. */
                write_in(&t, "/file", 1);
                CHECK_INTEQ(root_mkdir_p(t.rootfd, "/file/d", 0755), -ENOTDIR);
                CHECK_INTEQ(root_mkdir_p(t.rootfd, "/file", 0755), -ENOTDIR);
        });
}

TEST(rm_rf_stays_inside)
{
        BOTH_WAYS({
                _cleanup_free_ char *keep = strprintf("%s/keep", t.out);
                CHECK(mkdir(keep, 0755) == 0);
                _cleanup_free_ char *kf = strprintf("%s/keep/f", t.out);
                CHECK(write_file_atomic(kf, "k", 1, 0644, (uid_t)-1, (gid_t)-1) == 1);
                /* The state dir a link: the link goes, not what it names. */
                link_at(&t, keep, "var/lib/firstboot");
                CHECK_INTEQ(root_rm_rf(t.rootfd, "/var/lib/firstboot"), 0);
                _cleanup_free_ char *l = strprintf("%s/var/lib/firstboot", t.root);
                CHECK(!path_exists(l));
                /* A directory on the way a link up and out: resolved inside. */
                link_at(&t, "../../../../..", "var/log");
                _cleanup_free_ char *inner = strprintf("%s/keep", t.root);
                CHECK(mkdir(inner, 0755) == 0);
                link_at(&t, keep, "keep/link");
                CHECK_INTEQ(root_rm_rf(t.rootfd, "/var/log/keep"), 0);
                CHECK(!path_exists(inner));
                CHECK_INTEQ(root_rm_rf(t.rootfd, "/var/log/absent/x"), 0);
                CHECK_INTEQ(root_unlink(t.rootfd, "/var/log/absent"), 0);
                _cleanup_free_ char *s = read_in(t.out, "keep/f");
                CHECK_STREQ(s, "k");
                CHECK(rm_rf(keep) == 0);
        });
}

/* A trailing slash asks for a directory, as the kernel has it: a file so
 * named is -ENOTDIR (through a link too), and O_CREAT makes no file. */
TEST(trailing_slash_wants_a_directory)
{
        BOTH_WAYS({
                write_in(&t, "/etc/passwd", 1);
                link_at(&t, "etc/passwd", "lnkf");
                CHECK_INTEQ(root_open(t.rootfd, "etc/passwd/", O_RDONLY, 0), -ENOTDIR);
                CHECK_INTEQ(root_open(t.rootfd, "lnkf/", O_RDONLY, 0), -ENOTDIR);
                CHECK_INTEQ(root_open(t.rootfd, "etc/new/", O_WRONLY | O_CREAT, 0600), -EISDIR);
                CHECK(access(t.root, F_OK) == 0 && count_entries(t.root) == 2);
                _cleanup_free_ char *etc = strprintf("%s/etc", t.root);
                CHECK_INTEQ(count_entries(etc), 1);
                int fd = root_open(t.rootfd, "lnkf", O_RDONLY, 0);
                CHECK(fd >= 0);
                if (fd >= 0)
                        close(fd);
                fd = root_open(t.rootfd, "etc//", O_RDONLY | O_DIRECTORY, 0);
                CHECK(fd >= 0);
                if (fd >= 0)
                        close(fd);
        });
}

/* A FIFO (or socket) where a file is read fails at once, not waiting for
 * a writer that never comes: an image's /etc/passwd must not hang bake. */
TEST(read_of_a_fifo_does_not_hang)
{
        BOTH_WAYS({
                _cleanup_free_ char *etc = strprintf("%s/etc", t.root);
                _cleanup_free_ char *fifo = strprintf("%s/etc/passwd", t.root);
                REQUIRE(mkdir(etc, 0755) == 0 && mkfifo(fifo, 0644) == 0);
                pid_t pid = fork();
                if (pid == 0) {
                        char *data = NULL;
                        alarm(10);
                        _exit(root_read_file(t.rootfd, "/etc/passwd", 4096, &data, NULL) < 0 ? 0
                                                                                             : 1);
                }
                int st = 0;
                CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
                CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
                uid_t uid;
                gid_t gid;
                pid = fork();
                if (pid == 0) {
                        alarm(10);
                        _exit(parse_owner(t.root, "nobody", &uid, &gid) < 0 ? 0 : 1);
                }
                CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
                CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        });
}

/* WRITE_IN_PLACE over a FIFO (a done-mark in a hostile root) fails at
 * once instead of waiting for a reader. */
TEST(write_in_place_over_a_fifo_does_not_hang)
{
        BOTH_WAYS({
                _cleanup_free_ char *fifo = strprintf("%s/mark", t.root);
                REQUIRE(mkfifo(fifo, 0644) == 0);
                pid_t pid = fork();
                if (pid == 0) {
                        alarm(10);
                        _exit(root_write_file(t.rootfd, "/mark", 0755, "x", 1, 0644, (uid_t)-1,
                                              (gid_t)-1, WRITE_IN_PLACE) < 0
                                      ? 0
                                      : 1);
                }
                int st = 0;
                CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
                CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        });
}

TEST(root_is_slash)
{
        BOTH_WAYS({
                /* / as the root: host paths, links followed as usual. */
                _cleanup_close_ int slash = root_open_dir(NULL);
                _cleanup_free_ char *p = strprintf("%s/sub/f", t.root);
                REQUIRE(slash >= 0);
                CHECK_INTEQ(root_write_file(slash, p, 0755, "y", 1, 0644, (uid_t)-1, (gid_t)-1, 0),
                            1);
                _cleanup_free_ char *s = read_in(t.root, "sub/f");
                CHECK_STREQ(s, "y");
                link_at(&t, t.root, "up");
                _cleanup_free_ char *q = strprintf("%s/up/sub/f", t.root);
                char *data = NULL;
                CHECK(root_read_file(slash, q, 16, &data, NULL) >= 0 && streq_ptr(data, "y"));
                free(data);
                _cleanup_close_ int fd = root_mkdir_p(slash, t.root, 0755);
                _cleanup_free_ char *where = NULL;
                CHECK(fd >= 0 && root_fd_path(slash, fd, &where) >= 0);
                CHECK_STREQ(where, t.root);
        });
}

TEST(stale_temps_of_dead_processes_are_removed)
{
        BOTH_WAYS({
                pid_t child = fork();
                if (child == 0)
                        _exit(0);
                REQUIRE(child > 0);
                waitpid(child, NULL, 0);
                _cleanup_free_ char *dir = strprintf("%s/etc", t.root);
                CHECK(mkdir(dir, 0755) == 0);
                _cleanup_free_ char *dead = strprintf("%s/f.fbtmp.%d", dir, (int)child);
                _cleanup_free_ char *live = strprintf("%s/f.fbtmp.%d", dir, (int)getppid());
                _cleanup_free_ char *other = strprintf("%s/g.fbtmp.x", dir);
                CHECK(write_file_atomic(dead, "d", 1, 0600, (uid_t)-1, (gid_t)-1) == 1);
                CHECK(write_file_atomic(live, "l", 1, 0600, (uid_t)-1, (gid_t)-1) == 1);
                CHECK(write_file_atomic(other, "o", 1, 0600, (uid_t)-1, (gid_t)-1) == 1);
                write_in(&t, "/etc/f", 1);
                CHECK(!path_exists(dead));
                CHECK(path_exists(live));
                CHECK(path_exists(other));
                /* f, the live temp and the other file: no temp of ours. */
                CHECK_INTEQ(count_entries(dir), 3);
        });
}

TEST(rewrite_unchanged_and_mode)
{
        BOTH_WAYS({
                CHECK_INTEQ(root_write_file(t.rootfd, "/a/b", 0700, "s", 1, 0600, (uid_t)-1,
                                            (gid_t)-1, 0),
                            1);
                CHECK_INTEQ(root_write_file(t.rootfd, "/a/b", 0700, "s", 1, 0600, (uid_t)-1,
                                            (gid_t)-1, 0),
                            0);
                CHECK_INTEQ(root_write_file(t.rootfd, "/a/b", 0700, "s", 1, 0640, (uid_t)-1,
                                            (gid_t)-1, 0),
                            1);
                _cleanup_free_ char *a = strprintf("%s/a", t.root),
                                    *b = strprintf("%s/a/b", t.root);
                struct stat st;
                CHECK(stat(a, &st) == 0 && (st.st_mode & 0777) == 0700);
                CHECK(stat(b, &st) == 0 && (st.st_mode & 0777) == 0640);
                CHECK_INTEQ(count_entries(a), 1);
                CHECK_INTEQ(root_write_file(t.rootfd, "/a/", 0700, "s", 1, 0600, (uid_t)-1,
                                            (gid_t)-1, 0),
                            -EINVAL);
        });
}

TEST(named_temp_fallback)
{
        /* Where the file system has no O_TMPFILE: NAME.fbtmp.PID, renamed
         * over a link at the target, nothing left beside it. */
        write_no_tmpfile = true;
        BOTH_WAYS({
                _cleanup_free_ char *victim = strprintf("%s/victim", t.out);
                CHECK(write_file_atomic(victim, "orig\n", 5, 0644, (uid_t)-1, (gid_t)-1) == 1);
                link_at(&t, victim, "etc/f");
                write_in(&t, "/etc/f", 1);
                write_in(&t, "/etc/g", 1);
                _cleanup_free_ char *etc = strprintf("%s/etc", t.root);
                _cleanup_free_ char *f = read_in(etc, "f");
                _cleanup_free_ char *v = read_in(t.out, "victim");
                CHECK_STREQ(f, "x\n");
                CHECK_STREQ(v, "orig\n");
                CHECK_INTEQ(count_entries(etc), 2);
                CHECK_INTEQ(count_entries(t.out), 1);
                CHECK(unlink(victim) == 0);
        });
        write_no_tmpfile = false;
}

TEST(path_in_root)
{
        CHECK_STREQ(path_in_root(NULL, "/var/lib"), "/var/lib");
        CHECK_STREQ(path_in_root("/", "/var/lib"), "/var/lib");
        CHECK_STREQ(path_in_root("/r", "/r/var/lib"), "/var/lib");
        CHECK_STREQ(path_in_root("/r/", "/r/var"), "/var");
        CHECK_STREQ(path_in_root("/r", "/r"), "/");
        CHECK(path_in_root("/r", "/rx/var") == NULL);
        CHECK(path_in_root("/r", "/var") == NULL);
}

TAP_MAIN
