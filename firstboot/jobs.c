#include "jobs.h"
#include "fs.h"
#include "util.h"

#include <errno.h>
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

int jobs_seen_record(int rootfd, const char *path, const char *job_id, long long until,
                     long long now)
{
        _cleanup_free_ char *text = NULL;
        struct buf out = {0};
        size_t size = 0, kept = 0, lines = 0;
        bool bad = false, seen = false;
        int k;

        if (!job_id_is_valid(job_id))
                return -EINVAL;
        /* Appends leave it at most twice the ids remembered (see below). */
        k = root_read_file(rootfd, path, (size_t)(2 * JOBS_SEEN_MAX + 64) * SEEN_LINE_MAX, &text,
                           &size);
        if (k < 0 && k != -ENOENT)
                return k;
        for (char *line = text, *end; line && line < text + size; line = end + 1) {
                end = memchr(line, '\n', (size_t)(text + size - line));
                if (!end) {
                        bad = true;
                        break;
                }
                *end = '\0';
                lines++;
                char *sp = strchr(line, ' ');
                long long t;
                if (!sp || (size_t)(sp - line) != JOB_ID_LEN || parse_llong(sp + 1, &t) < 0) {
                        bad = true;
                        continue;
                }
                *sp = '\0';
                if (!job_id_is_valid(line)) {
                        bad = true;
                        continue;
                }
                if (t < now)
                        continue;
                if (streq(line, job_id))
                        seen = true;
                buf_printf(&out, "%s %lld\n", line, t);
                kept++;
        }
        if (seen) {
                buf_free(&out);
                return -EEXIST;
        }
        if (kept >= JOBS_SEEN_MAX) {
                buf_free(&out);
                return -ENOSPC;
        }
        /* The usual case: one line appended and fdatasync()ed (the file's
         * size with it), no temp file, rename or directory sync. The whole
         * file is rewritten, atomically, when it is new (its directory
         * entry must be made durable), when a line makes no sense (a torn
         * last line: appending would glue the id onto it), and when the
         * lines past their time outnumber the live ones (so it stays
         * within twice what is remembered). */
        if (k >= 0 && !bad && (lines - kept <= kept || lines < 64)) {
                buf_free(&out);
                return seen_append(rootfd, path, job_id, until);
        }
        buf_printf(&out, "%s %lld\n", job_id, until);
        k = root_write_file(rootfd, path, 0700, out.data ? out.data : "", out.len, 0600, (uid_t)-1,
                            (gid_t)-1, 0);
        buf_free(&out);
        if (k < 0)
                return k;
        return bad ? -EBADMSG : 0;
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
