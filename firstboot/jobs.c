#include "jobs.h"
#include "fs.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEEN_LINE_MAX 64 /* a UUID, a space, a time, a newline */

static int seen_append(int rootfd, const char *path, const char *job_id, long long until)
{
        char line[SEEN_LINE_MAX];
        struct stat st;
        int n = snprintf(line, sizeof(line), "%s %lld\n", job_id, until);
        _cleanup_close_ int fd =
                root_open(rootfd, path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0);

        if (n < 0 || (size_t)n >= sizeof(line))
                return -EINVAL;
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        ssize_t w = write(fd, line, (size_t)n);
        if (w < 0)
                return -errno;
        if (w != n)
                return -EIO; /* a torn line: the next record rewrites the file */
        if (fdatasync(fd) < 0)
                return -errno;
        return 0;
}

/* The ids in memory: an open-addressing hash table (linear probing, at
 * most half full) of id and until, loaded once and then kept up with the
 * file by reading only what was appended to it since (by this agent, or
 * another one on the same root under the run lock); the file read whole
 * again only when it was replaced or shrank. */
struct seen_entry {
        char id[JOB_ID_LEN + 1]; /* "" for a free slot */
        long long until;
};

struct jobs_seen {
        int rootfd;
        char *path;
        struct seen_entry *v;
        size_t cap, n;
        size_t compacted; /* n after the last rewrite */
        off_t offset;     /* the file's bytes read, up to its last whole line */
        /* The file read, held open so that its inode is not reused by a
         * file that replaces it (ext4 hands a freed inode out again):
         * the path names another file when its dev/inode differ from
         * this one's, or this one has no link left. -1: none (no file
         * read yet, or it is to be read whole again). */
        int fd;
        bool bad;
};

static size_t seen_hash(const char *id)
{
        uint64_t h = 14695981039346656037ULL; /* FNV-1a */
        for (; *id; id++)
                h = (h ^ (unsigned char)*id) * 1099511628211ULL;
        return (size_t)h;
}

static struct seen_entry *seen_slot(struct jobs_seen *s, const char *id)
{
        size_t i = seen_hash(id) & (s->cap - 1);
        while (s->v[i].id[0] && !streq(s->v[i].id, id))
                i = (i + 1) & (s->cap - 1);
        return &s->v[i];
}

static void seen_put(struct jobs_seen *s, const char *id, long long until);

static void seen_grow(struct jobs_seen *s, size_t cap)
{
        struct seen_entry *old = s->v;
        size_t old_cap = s->cap;
        s->v = xcalloc(cap, sizeof(*s->v));
        s->cap = cap;
        s->n = 0;
        for (size_t i = 0; i < old_cap; i++)
                if (old[i].id[0])
                        seen_put(s, old[i].id, old[i].until);
        free(old);
}

static void seen_put(struct jobs_seen *s, const char *id, long long until)
{
        if (2 * (s->n + 1) > s->cap)
                seen_grow(s, s->cap ? 2 * s->cap : 256);
        struct seen_entry *e = seen_slot(s, id);
        if (!e->id[0]) {
                memcpy(e->id, id, JOB_ID_LEN + 1);
                s->n++;
        }
        if (until > e->until)
                e->until = until;
}

static void seen_clear_file(struct jobs_seen *s)
{
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -1;
}

static void seen_clear(struct jobs_seen *s)
{
        free(s->v);
        s->v = NULL;
        s->cap = s->n = s->compacted = 0;
        s->offset = 0;
        s->bad = false;
        seen_clear_file(s);
}

/* Reads what the file gained since the last call (all of it when it is
 * new to us, was replaced or shrank). */
static int seen_sync(struct jobs_seen *s)
{
        _cleanup_close_ int fd =
                root_open(s->rootfd, s->path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, 0);
        struct stat st, held;
        if (fd == -ENOENT) {
                seen_clear(s);
                return 0;
        }
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (st.st_size > (off_t)(2 * JOBS_SEEN_MAX + 64) * SEEN_LINE_MAX)
                return -EFBIG;
        if (s->fd < 0 || fstat(s->fd, &held) < 0 || held.st_nlink == 0 ||
            st.st_dev != held.st_dev || st.st_ino != held.st_ino || st.st_size < s->offset) {
                seen_clear(s);
                s->fd = TAKE_FD(fd);
        }
        if (st.st_size == s->offset)
                return 0;
        size_t want = (size_t)(st.st_size - s->offset);
        _cleanup_free_ char *text = xmalloc(want + 1);
        size_t size = 0;
        while (size < want) {
                ssize_t r = pread(s->fd, text + size, want - size, s->offset + (off_t)size);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        break;
                size += (size_t)r;
        }
        for (char *line = text, *end; line < text + size; line = end + 1) {
                end = memchr(line, '\n', (size_t)(text + size - line));
                if (!end) {
                        s->bad = true; /* a torn last line: rewritten */
                        break;
                }
                s->offset += end + 1 - line;
                *end = '\0';
                char *sp = strchr(line, ' ');
                long long t;
                if (!sp || (size_t)(sp - line) != JOB_ID_LEN || parse_llong(sp + 1, &t) < 0) {
                        s->bad = true;
                        continue;
                }
                *sp = '\0';
                if (!job_id_is_valid(line)) {
                        s->bad = true;
                        continue;
                }
                seen_put(s, line, t);
        }
        return 0;
}

/* The ids still live, rehashed without the others; how many. */
static size_t seen_drop_expired(struct jobs_seen *s, long long now)
{
        struct seen_entry *old = s->v;
        size_t old_cap = s->cap;
        s->v = xcalloc(old_cap, sizeof(*s->v));
        s->n = 0;
        for (size_t i = 0; i < old_cap; i++)
                if (old[i].id[0] && old[i].until >= now)
                        seen_put(s, old[i].id, old[i].until);
        free(old);
        return s->n;
}

static int seen_rewrite(struct jobs_seen *s)
{
        struct buf out = {0};
        for (size_t i = 0; i < s->cap; i++)
                if (s->v[i].id[0])
                        buf_printf(&out, "%s %lld\n", s->v[i].id, s->v[i].until);
        int k = root_write_file(s->rootfd, s->path, 0700, out.data ? out.data : "", out.len, 0600,
                                (uid_t)-1, (gid_t)-1, 0);
        buf_free(&out);
        /* Read back whole at the next call (a new inode). */
        seen_clear_file(s);
        s->compacted = s->n;
        return k;
}

struct jobs_seen *jobs_seen_new(int rootfd, const char *path)
{
        struct jobs_seen *s = xcalloc(1, sizeof(*s));
        s->rootfd = rootfd;
        s->path = xstrdup(path);
        s->fd = -1;
        return s;
}

void jobs_seen_free(struct jobs_seen *s)
{
        if (!s)
                return;
        free(s->v);
        if (s->fd >= 0)
                close(s->fd);
        free(s->path);
        free(s);
}

int jobs_seen_add(struct jobs_seen *s, const char *job_id, long long until, long long now)
{
        int k;

        if (!job_id_is_valid(job_id))
                return -EINVAL;
        k = seen_sync(s);
        if (k < 0)
                return k;
        if (s->cap) {
                struct seen_entry *e = seen_slot(s, job_id);
                if (e->id[0] && e->until >= now)
                        return -EEXIST;
        }
        /* Expired ids are dropped (and the file rewritten) once the table
         * has doubled since the last time, so that costs O(1) a job on
         * average and the file stays within about twice the live ids. */
        bool rewrite = s->fd < 0 || s->bad; /* no file yet, or a bad line in it */
        if (s->n >= 64 && (s->n >= 2 * s->compacted || s->n >= JOBS_SEEN_MAX)) {
                size_t before = s->n;
                if (seen_drop_expired(s, now) < before)
                        rewrite = true;
                s->compacted = s->n;
        }
        if (s->n >= JOBS_SEEN_MAX)
                return -ENOSPC;
        bool bad = s->bad;
        if (!rewrite) {
                k = seen_append(s->rootfd, s->path, job_id, until);
                if (k < 0)
                        return k;
                seen_put(s, job_id, until);
                return 0;
        }
        seen_put(s, job_id, until);
        k = seen_rewrite(s);
        if (k < 0)
                return k;
        return bad ? -EBADMSG : 0;
}

int jobs_seen_record(int rootfd, const char *path, const char *job_id, long long until,
                     long long now)
{
        struct jobs_seen *s = jobs_seen_new(rootfd, path);
        int k = jobs_seen_add(s, job_id, until, now);
        jobs_seen_free(s);
        return k;
}

int jobs_find_module(const struct job *j, const char *root, const char *modules_dir,
                     struct job_module *ret, struct job_refusal_info *info)
{
        _cleanup_free_ char *rel = strprintf("%s/%s", modules_dir, j->app_id);
        _cleanup_free_ char *dir = root_path(root, rel);
        _cleanup_free_ char *path = strprintf("%s/" MANIFEST_FILE, dir);
        _cleanup_manifest_ struct manifest *m = NULL;
        struct input_values in = {0};
        struct diags d = {0};
        int k;

        *info = (struct job_refusal_info){.job_id = xstrdup(j->job_id), .authenticated = true};
        /* job_verify() let only a module id through: no '/', no "..". */
        if (!manifest_id_is_valid(j->app_id) || !path_exists(path)) {
                info->reason = JOB_UNKNOWN_APP;
                info->message = strprintf("\"%s\" is not a module in %s", j->app_id, modules_dir);
                return JOB_UNKNOWN_APP;
        }
        k = manifest_load(path, &m, &d);
        if (k >= 0 && !streq(m->id, j->app_id)) {
                diags_add(&d, path, 0, 0, "its manifest says id '%s'", m->id);
                k = -EINVAL;
        }
        if (k >= 0) {
                _cleanup_free_ char *script = strprintf("%s/%s", dir, m->install_script);
                if (access(script, R_OK) < 0) {
                        diags_add(&d, path, 0, 0, "%s is missing", script);
                        k = -ENOENT;
                }
        }
        if (k == -ENOMEM) {
                diags_free(&d);
                return k;
        }
        if (k < 0) {
                _cleanup_free_ char *e = d.n ? diag_format(&d.v[0]) : xstrdup("cannot load it");
                diags_free(&d);
                info->reason = JOB_UNKNOWN_APP;
                info->message = strprintf("module \"%s\" cannot run: %s", j->app_id, e);
                return JOB_UNKNOWN_APP;
        }
        k = manifest_resolve_inputs(m, j->inputs, j->inputs, &d, &in);
        if (k == -ENOMEM) {
                diags_free(&d);
                return k;
        }
        if (k < 0) {
                /* The messages never hold a sensitive value (manifest.h);
                 * each names the field. */
                _cleanup_free_ char *e = NULL;
                for (size_t i = 0; i < d.n; i++) {
                        const char *msg = d.v[i].message;
                        char *t = e ? strprintf("%s; %s", e, msg) : xstrdup(msg);
                        free(e);
                        e = t;
                }
                diags_free(&d);
                info->reason = JOB_BAD_INPUTS;
                info->message = e ? TAKE_PTR(e) : xstrdup("the inputs are refused");
                return JOB_BAD_INPUTS;
        }
        diags_free(&d);
        free(info->job_id);
        *info = (struct job_refusal_info){0};
        *ret = (struct job_module){.m = TAKE_PTR(m), .dir = TAKE_PTR(dir), .in = in};
        return 0;
}

void job_module_done(struct job_module *jm)
{
        manifest_free(jm->m);
        free(jm->dir);
        input_values_free(&jm->in);
        *jm = (struct job_module){0};
}
