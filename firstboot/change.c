#include "change.h"
#include "fs.h"
#include "json.h"
#include "yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define FILE_MAX (16 * 1024 * 1024)
#define DIFF_MAX (1024 * 1024) /* text files larger than this show no diff */

/* Whether data may hold a secret: any sensitive input value or the
 * callback token. */
static bool holds_secret(const struct change_input *in, const char *data, size_t len)
{
        if (!data)
                return false;
        if (in->b->phone_token && *in->b->phone_token &&
            memmem(data, len, in->b->phone_token, strlen(in->b->phone_token)))
                return true;
        for (size_t i = 0; i < in->n_mods; i++)
                for (size_t j = 0; j < in->mods[i].in.n; j++) {
                        const struct input_value *v = &in->mods[i].in.v[j];
                        if (v->sensitive && *v->value &&
                            memmem(data, len, v->value, strlen(v->value)))
                                return true;
                }
        return false;
}

static bool is_text(const char *data, size_t len)
{
        return len <= DIFF_MAX && !memchr(data, '\0', len);
}

static int write_tmp(const char *path, const char *data, size_t len)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        for (size_t off = 0; off < len;) {
                ssize_t n = write(fd, data + off, len - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                off += (size_t)n;
        }
        return 0;
}

/* `diff -u` of old and new (diff(1), argv and environment of our own),
 * labelled with path; *ret is its output. */
static int unified_diff(const char *path, const char *old, size_t old_len, const char *new,
                        size_t new_len, char **ret)
{
        char dir[] = "/tmp/firstboot-plan.XXXXXX";
        if (!mkdtemp(dir))
                return -errno;
        _cleanup_free_ char *a = strprintf("%s/a", dir), *b = strprintf("%s/b", dir);
        _cleanup_free_ char *la = strprintf("%s (on the server)", path);
        _cleanup_free_ char *lb = strprintf("%s (in the bundle)", path);
        struct buf out = {0};
        int k = write_tmp(a, old, old_len);
        if (k >= 0)
                k = write_tmp(b, new, new_len);
        int pfd[2] = {-1, -1};
        if (k >= 0 && pipe2(pfd, O_CLOEXEC) < 0)
                k = -errno;
        pid_t pid = -1;
        if (k >= 0 && (pid = fork()) < 0)
                k = -errno;
        if (k >= 0 && pid == 0) {
                char *argv[] = {"diff", "-u", "--label", la, "--label", lb, a, b, NULL};
                char *envp[] = {"LC_ALL=C", "PATH=/usr/bin:/bin", NULL};
                int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (dup2(pfd[1], 1) < 0 || devnull < 0 || dup2(devnull, 0) < 0 ||
                    dup2(devnull, 2) < 0)
                        _exit(127);
                execve("/usr/bin/diff", argv, envp);
                execve("/bin/diff", argv, envp);
                _exit(127);
        }
        if (pfd[1] >= 0)
                close(pfd[1]);
        if (k >= 0) {
                char chunk[4096];
                for (;;) {
                        ssize_t n = read(pfd[0], chunk, sizeof(chunk));
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                break;
                        if (out.len < DIFF_MAX)
                                buf_append(&out, chunk, (size_t)n);
                }
                int status = 0;
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                /* diff exits 1 when the files differ, 2 on trouble. */
                if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
                        k = -EIO;
        }
        if (pfd[0] >= 0)
                close(pfd[0]);
        unlink(a);
        unlink(b);
        rmdir(dir);
        if (k < 0) {
                buf_free(&out);
                return k;
        }
        *ret = out.data ? buf_steal(&out) : xstrdup("");
        return 0;
}

struct file_change {
        const char *path;
        const char *change; /* new, changed, unchanged, remove, absent, dropped */
        char *note;         /* "content changed", "mode 0644 -> 0600", ... */
        char *diff;
};

/* One file of the bundle against the system. */
static void compare_file(const struct change_input *in, const char *path, const char *data,
                         size_t len, unsigned mode, bool absent, struct file_change *ret)
{
        _cleanup_free_ char *cur = NULL;
        size_t cur_len = 0;
        struct stat st = {0};
        int fd = root_open(in->rootfd, path, O_PATH | O_NOFOLLOW, 0);
        int k = fd;

        *ret = (struct file_change){.path = path};
        if (fd >= 0) {
                k = fstat(fd, &st) < 0 ? -errno : 0;
                close(fd);
        }
        if (absent) {
                ret->change = k >= 0 ? "remove" : "absent";
                return;
        }
        if (k == -ENOENT) {
                ret->change = "new";
                return;
        }
        if (k >= 0)
                k = root_read_file(in->rootfd, path, FILE_MAX, &cur, &cur_len);
        if (k < 0) {
                ret->change = "changed";
                ret->note = strprintf("cannot read it: %s", strerror(-k));
                return;
        }
        bool same = cur_len == len && memcmp(cur, data, len) == 0;
        bool same_mode = mode == (unsigned)-1 || (st.st_mode & 07777) == mode;
        if (same && same_mode) {
                ret->change = "unchanged";
                return;
        }
        ret->change = "changed";
        if (!same_mode)
                ret->note = strprintf("mode %04o -> %04o", st.st_mode & 07777, mode);
        if (same)
                return;
        bool secret = (mode != (unsigned)-1 && !(mode & 0004)) || !(st.st_mode & 0004) ||
                      holds_secret(in, cur, cur_len) || holds_secret(in, data, len);
        if (!secret && is_text(cur, cur_len) && is_text(data, len) &&
            unified_diff(path, cur, cur_len, data, len, &ret->diff) >= 0)
                return;
        char *n =
                strprintf("%s%scontent changed", ret->note ? ret->note : "", ret->note ? ", " : "");
        free(ret->note);
        ret->note = n;
}

/* Whether mods[i] would run for an input it cannot change in place
 * (module_decide()'s reason). */
static bool needs_new_server(const struct change_input *in, size_t i)
{
        return in->to_run[i] && in->why[i] && startswith(in->why[i], "requires reprovisioning: ");
}

int change_show(const struct change_input *in)
{
        const struct bundle *b = in->b;
        size_t n_files = b->n_files + 1, n = 0;
        _cleanup_free_ struct file_change *files = xcalloc(n_files, sizeof(*files));
        _cleanup_strv_free_ char **dropped = NULL, **gone = NULL;
        _cleanup_free_ char *hostline = in->hostname ? strprintf("%s\n", in->hostname) : NULL;
        bool changes = !in->same_bundle;

        for (size_t i = 0; i < b->n_files; i++) {
                const struct bundle_file *f = &b->files[i];
                const struct archive_member *m =
                        f->absent ? NULL : member_list_find(&b->members, f->source);
                compare_file(in, f->path, m ? (const char *)m->data : NULL, m ? m->size : 0,
                             f->mode, f->absent, &files[n++]);
        }
        if (hostline)
                compare_file(in, "/etc/hostname", hostline, strlen(hostline), (unsigned)-1, false,
                             &files[n++]);
        for (size_t i = 0; i < n; i++)
                changes = changes || (!streq(files[i].change, "unchanged") &&
                                      !streq(files[i].change, "absent"));
        for (size_t i = 0; i < in->n_mods; i++)
                changes = changes || in->to_run[i];

        /* What the bundle applied last had that this one has not. */
        if (in->last_bundle) {
                _cleanup_free_ char *text = NULL;
                _cleanup_node_ struct node *doc = NULL;
                struct diags ignore = {0};
                size_t len = 0;
                if (root_read_file(in->rootfd, in->last_bundle, FILE_MAX, &text, &len) >= 0 &&
                    yaml_parse(in->last_bundle, text, len, &doc, &ignore) >= 0) {
                        const struct node *fl = node_get(doc, "files");
                        for (size_t i = 0; fl && fl->kind == NODE_SEQ && i < fl->n_items; i++) {
                                const char *p = node_get_str(fl->items[i], "path");
                                if (p &&
                                    !streq_ptr(node_get_str(fl->items[i], "state"), "absent") &&
                                    !bundle_find_file(b, p) && !strv_contains(dropped, p))
                                        strv_extend(&dropped, p);
                        }
                        const struct node *ml = node_get(doc, "modules");
                        for (size_t i = 0; ml && ml->kind == NODE_SEQ && i < ml->n_items; i++) {
                                const char *id = node_get_str(ml->items[i], "id");
                                bool here = false;
                                for (size_t j = 0; id && j < b->n_modules && !here; j++)
                                        here = streq(b->modules[j].id, id);
                                if (id && !here && !strv_contains(gone, id))
                                        strv_extend(&gone, id);
                        }
                }
                diags_free(&ignore);
        }

        if (in->json) {
                _cleanup_node_ struct node *root = node_new(NODE_MAP);
                struct node *fl = node_new(NODE_SEQ), *ml = node_new(NODE_SEQ);
                struct node *gl = node_new(NODE_SEQ);
                if (!root || !fl || !ml || !gl)
                        abort();
                node_set_str(root, "instance_id", in->instance_id);
                node_set_str(root, "bundle", b->name);
                if (b->serial >= 0)
                        node_set_int(root, "serial", b->serial);
                else
                        node_set_null(root, "serial");
                if (in->last_serial >= 0)
                        node_set_int(root, "applied_serial", in->last_serial);
                else
                        node_set_null(root, "applied_serial");
                node_set_bool(root, "changes", changes);
                for (size_t i = 0; i < n; i++) {
                        struct node *e = node_new(NODE_MAP);
                        node_set_str(e, "path", files[i].path);
                        node_set_str(e, "change", files[i].change);
                        if (files[i].note)
                                node_set_str(e, "note", files[i].note);
                        if (files[i].diff)
                                node_set_str(e, "diff", files[i].diff);
                        node_append(fl, NULL, e);
                }
                for (size_t i = 0; dropped && dropped[i]; i++) {
                        struct node *e = node_new(NODE_MAP);
                        node_set_str(e, "path", dropped[i]);
                        node_set_str(e, "change", "dropped");
                        node_set_str(e, "note", "no longer in the bundle: left in place");
                        node_append(fl, NULL, e);
                }
                for (size_t i = 0; i < in->n_mods; i++) {
                        struct node *e = node_new(NODE_MAP);
                        node_set_str(e, "id", in->mods[i].bm->id);
                        node_set_bool(e, "runs", in->to_run[i]);
                        node_set_str(e, "why", in->why[i] ? in->why[i] : "");
                        node_set_bool(e, "requires_reprovisioning", needs_new_server(in, i));
                        node_append(ml, NULL, e);
                }
                for (size_t i = 0; gone && gone[i]; i++)
                        node_append(gl, NULL, node_new_scalar(SCALAR_STR, gone[i]));
                node_set(root, "files", fl);
                node_set(root, "modules", ml);
                node_set(root, "modules_gone", gl);
                _cleanup_free_ char *text = NULL;
                int k = json_format(root, true, &text);
                if (k < 0)
                        return k;
                printf("%s\n", text);
        } else {
                printf("Instance %s, bundle %s", in->instance_id, b->name);
                if (b->serial >= 0)
                        printf(" serial %lld", b->serial);
                if (in->last_serial >= 0)
                        printf(" (applied: serial %lld)", in->last_serial);
                printf("\nfiles:\n");
                for (size_t i = 0; i < n; i++) {
                        const char *c = files[i].change;
                        printf("  %-5s %s%s%s%s\n",
                               streq(c, "unchanged") ? "same"
                               : streq(c, "changed") ? "change"
                                                     : c,
                               files[i].path, files[i].note ? " (" : "",
                               files[i].note ? files[i].note : "", files[i].note ? ")" : "");
                        if (files[i].diff)
                                fputs(files[i].diff, stdout);
                }
                for (size_t i = 0; dropped && dropped[i]; i++)
                        printf("  dropped %s (left in place)\n", dropped[i]);
                printf("modules:\n");
                for (size_t i = 0; i < in->n_mods; i++)
                        printf("  %-5s %s: %s\n", in->to_run[i] ? "run" : "skip",
                               in->mods[i].bm->id, in->why[i] ? in->why[i] : "");
                for (size_t i = 0; gone && gone[i]; i++)
                        printf("  gone  %s: no longer in the bundle\n", gone[i]);
                for (size_t i = 0; i < in->n_mods; i++)
                        if (needs_new_server(in, i))
                                printf("apply refuses this bundle: module %s cannot change it in "
                                       "place (its manifest's reprovision:)\n",
                                       in->mods[i].bm->id);
                printf("%s\n", changes ? "Changes pending." : "Nothing to do: nothing changed.");
        }
        for (size_t i = 0; i < n; i++) {
                free(files[i].note);
                free(files[i].diff);
        }
        fflush(stdout);
        return changes ? 2 : 0;
}
