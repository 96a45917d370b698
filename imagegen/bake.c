/* imagegen bake: makes a root file system (a directory, or a tarball
 * through libarchive) a golden image that provisions itself at first boot.
 * It installs the agent, its units, modules, trusted keys, configuration
 * and optionally a default bundle; enables the units the way systemctl
 * would; and resets what must be unique per server (machine id, SSH host
 * keys, firstboot's own state and logs, as `firstboot clean` does).
 *
 * Everything is read and checked first, and the changes computed as one
 * list; only then is the image touched: each file through a temp file and
 * rename in a directory, the whole archive through OUT.tmp and rename for
 * a tarball. Baking twice changes nothing the second time. */
#include "tarball.h"
#include "bundle.h"
#include "config.h"
#include "crypto.h"
#include "diag.h"
#include "dl.h"
#include "fs.h"
#include "imagegen.h"
#include "manifest.h"
#include "prepare.h"
#include "redis.h"
#include "reset.h"
#include "site.h"
#include "util.h"

#include "../firstboot/datasource.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MAX_SOURCE_FILE (256U * 1024U * 1024U)
#define MAX_SMALL_FILE  (1024U * 1024U)
#define UNIT_DIR        "usr/lib/systemd/system"

/* The units bake installs and enables, from the units directory. */
static const char *const units[] = {
        "firstboot.service",
        "firstboot-ready.target",
        "firstboot-ssh-keygen.service",
        "firstboot-agent.service",
};
/* The jobs agent is installed, and enabled only with --enable-agent (or
 * at first boot by the module jobs-agent, from site.yaml's jobs:). */
#define AGENT_UNIT "firstboot-agent.service"

struct bake_opts {
        const char *rootfs, *tar, *out, *config, *bundle, *firstboot, *modules_dir;
        char **key_files; /* --key FILE, and --keys DIR as "DIR/" */
        bool quiet, enable_agent;
};

/* The changes, with the strings and data they point to. */
struct plan {
        struct tar_change *v;
        size_t n;
        char **strings;
        void **bufs;
        size_t n_bufs;
};

static void plan_free(struct plan *p)
{
        free(p->v);
        strv_free(p->strings);
        for (size_t i = 0; i < p->n_bufs; i++)
                free(p->bufs[i]);
        free(p->bufs);
        *p = (struct plan){0};
}

/* Keeps s (taken over) for the life of the plan. */
static const char *plan_keep(struct plan *p, char *s)
{
        if (!s || strv_push(&p->strings, s) < 0)
                abort();
        return s;
}

static const void *plan_keep_buf(struct plan *p, void *data)
{
        p->bufs = xrealloc(p->bufs, (p->n_bufs + 1) * sizeof(*p->bufs));
        p->bufs[p->n_bufs++] = data;
        return data;
}

/* path as an image path: relative, single slashes, no trailing slash. */
static char *image_rel(const char *path)
{
        struct buf b = {0};

        for (const char *s = path; *s; s++) {
                if (*s == '/' && (b.len == 0 || b.data[b.len - 1] == '/' || !s[1]))
                        continue;
                buf_append(&b, s, 1);
        }
        while (b.len > 0 && b.data[b.len - 1] == '/')
                b.data[--b.len] = '\0';
        return b.data ? buf_steal(&b) : xstrdup("");
}

static struct tar_change *plan_add(struct plan *p, enum tar_change_kind kind, const char *path)
{
        p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
        p->v[p->n] = (struct tar_change){.kind = kind, .path = plan_keep(p, image_rel(path))};
        return &p->v[p->n++];
}

/* A file; data is taken over. */
static void plan_file(struct plan *p, const char *path, void *data, size_t size, unsigned mode)
{
        struct tar_change *c = plan_add(p, TAR_PUT_FILE, path);
        c->data = plan_keep_buf(p, data);
        c->size = size;
        c->mode = mode;
}

static void plan_file_copy(struct plan *p, const char *path, const char *data, unsigned mode)
{
        plan_file(p, path, xstrdup(data), strlen(data), mode);
}

static void plan_symlink(struct plan *p, const char *path, const char *target)
{
        plan_add(p, TAR_PUT_SYMLINK, path)->target = plan_keep(p, xstrdup(target));
}

/* --- The image: a directory or a tarball --- */

struct image {
        const char *label; /* the directory or the input tarball, for messages */
        const char *root;  /* a directory, or NULL */
        int rootfd;        /* root's, for fs.h's root_* calls: paths resolve inside it */
        struct tar_index index;
};

/* Whether the image has rel (any type; not followed). */
static bool image_has(const struct image *img, const char *rel)
{
        if (img->root) {
                _cleanup_close_ int fd = root_open(img->rootfd, rel, O_PATH | O_NOFOLLOW, 0);
                return fd >= 0;
        }
        for (size_t i = 0; i < img->index.n; i++)
                if (streq(img->index.v[i].path, rel))
                        return true;
        return false;
}

/* The entry type of rel: 'f', 'd', 'l', or 0 when absent. */
static char image_type(const struct image *img, const char *rel, char **ret_link)
{
        if (img->root) {
                _cleanup_close_ int fd = root_open(img->rootfd, rel, O_PATH | O_NOFOLLOW, 0);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0)
                        return 0;
                if (S_ISLNK(st.st_mode) && ret_link) {
                        char target[PATH_MAX];
                        ssize_t n = readlinkat(fd, "", target, sizeof(target) - 1);
                        *ret_link = n >= 0 ? xstrndup(target, (size_t)n) : NULL;
                }
                return S_ISREG(st.st_mode)   ? 'f'
                       : S_ISDIR(st.st_mode) ? 'd'
                       : S_ISLNK(st.st_mode) ? 'l'
                                             : 'o';
        }
        for (size_t i = img->index.n; i > 0; i--) {
                const struct tar_entry_info *e = &img->index.v[i - 1];
                if (streq(e->path, rel)) {
                        if (e->type == 'l' && ret_link)
                                *ret_link = strdup_null(e->link);
                        return e->type;
                }
        }
        return 0;
}

static int image_read(const struct image *img, const char *rel, char **ret, size_t *ret_size)
{
        if (!img->root)
                return tar_read_file(img->label, rel, MAX_SMALL_FILE, ret, ret_size);
        _cleanup_close_ int fd = root_open(img->rootfd, rel, O_PATH | O_NOFOLLOW, 0);
        struct stat st;
        if (fd < 0)
                return fd == -ELOOP ? -EINVAL : fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        return root_read_file(img->rootfd, rel, MAX_SMALL_FILE, ret, ret_size);
}

/* The names (not paths) of the image's entries directly in dir. */
static char **image_list(const struct image *img, const char *dir)
{
        char **v = NULL;

        if (img->root) {
                int fd = root_open(img->rootfd, dir, O_RDONLY | O_DIRECTORY, 0);
                DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
                if (!d) {
                        if (fd >= 0)
                                close(fd);
                        return NULL;
                }
                for (struct dirent *de; (de = readdir(d));)
                        if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                                strv_extend(&v, de->d_name);
                closedir(d);
                return v;
        }
        size_t len = strlen(dir);
        for (size_t i = 0; i < img->index.n; i++) {
                const char *p = img->index.v[i].path;
                if (strncmp(p, dir, len) == 0 && p[len] == '/' && p[len + 1] &&
                    !strchr(p + len + 1, '/') && !strv_contains(v, p + len + 1))
                        strv_extend(&v, p + len + 1);
        }
        return v;
}

/* --- Reading and checking what goes in --- */

/* A file of the host, whole. */
static int read_source(const char *path, char **ret, size_t *ret_size)
{
        int r = read_file(path, MAX_SOURCE_FILE, ret, ret_size);
        if (r < 0)
                fprintf(stderr, "imagegen bake: %s: %s\n", path, strerror(-r));
        return r;
}

/* Next to the binary (a build tree: build/imagegen -> build/firstboot,
 * units/), else where the imagegen package puts them. */
static char *exe_sibling(const char *rel)
{
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

        if (n <= 0)
                return NULL;
        exe[n] = '\0';
        return strprintf("%s/%s", dirname(exe), rel);
}

static char *default_firstboot(void)
{
        _cleanup_free_ char *sibling = exe_sibling("firstboot");
        const char *installed[] = {BAKE_DIR_DEFAULT "/firstboot", "/usr/bin/firstboot"};

        if (sibling && path_exists(sibling))
                return TAKE_PTR(sibling);
        for (size_t i = 0; i < ARRAY_SIZE(installed); i++)
                if (path_exists(installed[i]))
                        return xstrdup(installed[i]);
        return xstrdup("/usr/bin/firstboot");
}

static char *default_units(void)
{
        _cleanup_free_ char *sibling = exe_sibling("../units");
        _cleanup_free_ char *probe = sibling ? strprintf("%s/firstboot.service", sibling) : NULL;

        if (probe && path_exists(probe))
                return TAKE_PTR(sibling);
        return xstrdup(BAKE_DIR_DEFAULT "/units");
}

/* The units, tmpfiles.d and catalog, and the enablement symlinks each
 * unit's [Install] section asks for (WantedBy=, RequiredBy=), as
 * `systemctl enable` makes them under /etc/systemd/system. */
static int plan_units(struct plan *p, const char *dir, bool enable_agent)
{
        static const struct {
                const char *src, *dst;
        } other[] = {
                {"firstboot.tmpfiles", "usr/lib/tmpfiles.d/firstboot.conf"},
                {"firstboot.catalog", "usr/lib/systemd/catalog/firstboot.catalog"},
        };

        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
                _cleanup_free_ char *src = strprintf("%s/%s", dir, units[i]);
                _cleanup_free_ char *dst = strprintf("%s/%s", UNIT_DIR, units[i]);
                char *data = NULL;
                size_t size;
                if (read_source(src, &data, &size) < 0)
                        return -ENOENT;
                plan_file(p, dst, data, size, 0644);

                bool install = false;
                if (streq(units[i], AGENT_UNIT) && !enable_agent)
                        continue;
                for (char *line = data; line && *line;) {
                        char *end = strchrnul(line, '\n');
                        _cleanup_free_ char *l = xstrndup(line, (size_t)(end - line));
                        line = *end ? end + 1 : end;
                        if (l[0] == '[') {
                                install = streq(l, "[Install]");
                                continue;
                        }
                        const char *kind = startswith(l, "WantedBy=")     ? "wants"
                                           : startswith(l, "RequiredBy=") ? "requires"
                                                                          : NULL;
                        if (!install || !kind)
                                continue;
                        char *save = NULL;
                        for (char *w = strtok_r(strchr(l, '=') + 1, " \t", &save); w;
                             w = strtok_r(NULL, " \t", &save)) {
                                _cleanup_free_ char *link =
                                        strprintf("etc/systemd/system/%s.%s/%s", w, kind, units[i]);
                                _cleanup_free_ char *target =
                                        strprintf("/%s/%s", UNIT_DIR, units[i]);
                                plan_symlink(p, link, target);
                        }
                }
        }
        for (size_t i = 0; i < ARRAY_SIZE(other); i++) {
                _cleanup_free_ char *src = strprintf("%s/%s", dir, other[i].src);
                char *data = NULL;
                size_t size;
                if (read_source(src, &data, &size) < 0)
                        return -ENOENT;
                plan_file(p, other[i].dst, data, size, 0644);
        }
        return 0;
}

/* Runs argv (looked up in PATH) with stdout to /dev/null and waits:
 * its exit code, 127 when there is no such program, -1 on other errors. */
static int spawn_wait(char **argv)
{
        extern char **environ;
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int st, r;

        if (posix_spawn_file_actions_init(&fa) != 0)
                return -1;
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return r == ENOENT ? 127 : -1;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The journal's catalog database: `journalctl -x` explains firstboot's
 * events only once firstboot.catalog is compiled into
 * /var/lib/systemd/catalog/database, which Debian does from a dpkg trigger
 * and not at boot (it has no systemd-journal-catalog-update.service). So
 * the image's catalogs and the new one are copied to a scratch root where
 * the host's journalctl compiles them, and the database goes into the plan
 * (unchanged when it is the same, so baking stays idempotent). An image
 * without journalctl is left alone; a host without journalctl gets
 * a warning, since the image still works without explanations. */
#define CATALOG_DATABASE "var/lib/systemd/catalog/database"
static int plan_catalog(struct plan *p, const struct image *img)
{
        static const char *const dirs[] = {"usr/lib/systemd/catalog",
                                           "usr/local/lib/systemd/catalog",
                                           "etc/systemd/catalog.d"};
        const struct tar_change *ours = NULL;
        char tmp[] = "/tmp/imagegen-catalog.XXXXXX";
        int r = 0;

        if (!image_has(img, "usr/bin/journalctl") && !image_has(img, "bin/journalctl"))
                return 0;
        for (size_t i = 0; i < p->n; i++)
                if (endswith(p->v[i].path, ".catalog"))
                        ours = &p->v[i];
        if (!ours || !mkdtemp(tmp))
                return ours ? -errno : 0;
        for (size_t d = 0; r >= 0 && d < ARRAY_SIZE(dirs); d++) {
                _cleanup_strv_free_ char **names = image_list(img, dirs[d]);
                for (char **n = names; r >= 0 && n && *n; n++) {
                        _cleanup_free_ char *rel = strprintf("%s/%s", dirs[d], *n);
                        _cleanup_free_ char *host = strprintf("%s/%s", tmp, rel);
                        _cleanup_free_ char *data = NULL;
                        size_t size;
                        if (!endswith(*n, ".catalog") || streq(rel, ours->path) ||
                            image_read(img, rel, &data, &size) < 0)
                                continue;
                        r = mkdir_parents(host, 0755);
                        if (r >= 0)
                                r = write_file_atomic_full(host, data, size, 0644, (uid_t)-1,
                                                           (gid_t)-1, WRITE_NOSYNC);
                }
        }
        _cleanup_free_ char *mine = strprintf("%s/%s", tmp, ours->path);
        _cleanup_free_ char *db = strprintf("%s/" CATALOG_DATABASE, tmp);
        _cleanup_free_ char *root = strprintf("--root=%s", tmp);
        if (r >= 0)
                r = mkdir_parents(mine, 0755);
        if (r >= 0)
                r = write_file_atomic_full(mine, ours->data, ours->size, 0644, (uid_t)-1, (gid_t)-1,
                                           WRITE_NOSYNC);
        if (r >= 0) {
                char *argv[] = {"journalctl", root, "--update-catalog", NULL};
                int rc = spawn_wait(argv);
                char *data = NULL;
                size_t size;
                if (rc == 127)
                        fprintf(stderr, "imagegen bake: warning: no journalctl on this machine: "
                                        "the image's journal catalog is not updated (journalctl "
                                        "-x will not explain firstboot's events until "
                                        "`journalctl --update-catalog` runs in it)\n");
                else if (rc != 0) {
                        fprintf(stderr, "imagegen bake: journalctl %s --update-catalog %s\n", root,
                                rc < 0 ? "could not run or was killed" : "failed");
                        r = -EIO;
                } else if ((r = read_file(db, 64U * 1024U * 1024U, &data, &size)) < 0)
                        fprintf(stderr, "imagegen bake: %s: %s\n", db, strerror(-r));
                else
                        plan_file(p, CATALOG_DATABASE, data, size, 0644);
        }
        rm_rf(tmp);
        return r;
}

/* Every regular file under dir (relative names, sorted) into *files. */
static int walk_files(const char *top, const char *rel, char ***files)
{
        _cleanup_free_ char *dir = *rel ? strprintf("%s/%s", top, rel) : xstrdup(top);
        struct dirent **ents = NULL;
        int n = scandir(dir, &ents, NULL, alphasort), r = 0;

        if (n < 0)
                return -errno;
        for (int i = 0; i < n; i++) {
                const char *name = ents[i]->d_name;
                if (r >= 0 && !streq(name, ".") && !streq(name, "..")) {
                        _cleanup_free_ char *sub =
                                *rel ? strprintf("%s/%s", rel, name) : xstrdup(name);
                        _cleanup_free_ char *full = strprintf("%s/%s", top, sub);
                        struct stat st;
                        if (lstat(full, &st) < 0)
                                r = -errno;
                        else if (S_ISDIR(st.st_mode))
                                r = walk_files(top, sub, files);
                        else if (S_ISREG(st.st_mode))
                                strv_extend(files, sub);
                        else {
                                fprintf(stderr,
                                        "imagegen bake: %s: not a regular file or directory\n",
                                        full);
                                r = -EINVAL;
                        }
                }
                free(ents[i]);
        }
        free(ents);
        return r;
}

/* Each module directory (with a valid manifest.yml whose id is the
 * directory's name) to <modules_dir>/<id>/: its script and executables
 * 0755, the rest 0644. Directories without a manifest.yml and nothing in
 * them are skipped; one with files but no manifest is an error, but for
 * MODULES_LIB_DIR (the helpers the modules source), copied 0644. */
static int plan_modules(struct plan *p, const char *src, const char *modules_dir, size_t *ret_n)
{
        struct dirent **ents = NULL;
        int n = scandir(src, &ents, NULL, alphasort), r = 0;
        size_t count = 0;

        if (n < 0) {
                fprintf(stderr, "imagegen bake: modules directory %s: %s\n", src, strerror(errno));
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                const char *id = ents[i]->d_name;
                _cleanup_free_ char *dir = strprintf("%s/%s", src, id);
                _cleanup_free_ char *mf = strprintf("%s/%s", dir, MANIFEST_FILE);
                _cleanup_strv_free_ char **files = NULL;
                _cleanup_manifest_ struct manifest *m = NULL;
                struct diags d = {0};

                if (r < 0 || id[0] == '.' || !is_dir(dir))
                        goto next;
                r = walk_files(dir, "", &files);
                if (r < 0)
                        goto next;
                if (streq(id, MODULES_LIB_DIR)) {
                        /* The helpers the modules source: not a module, copied as they are. */
                        for (char **f = files; f && *f; f++) {
                                _cleanup_free_ char *full = strprintf("%s/%s", dir, *f);
                                _cleanup_free_ char *dst =
                                        strprintf("%s/%s/%s", modules_dir, id, *f);
                                char *data = NULL;
                                size_t size;
                                r = read_source(full, &data, &size);
                                if (r < 0)
                                        break;
                                plan_file(p, dst, data, size, 0644);
                        }
                        goto next;
                }
                if (!path_exists(mf)) {
                        if (files) {
                                fprintf(stderr, "imagegen bake: %s: no %s\n", dir, MANIFEST_FILE);
                                r = -EINVAL;
                        }
                        goto next;
                }
                if (manifest_load(mf, &m, &d) < 0) {
                        diags_print(&d, stderr);
                        diags_free(&d);
                        r = -EBADMSG;
                        goto next;
                }
                if (!streq(m->id, id)) {
                        fprintf(stderr,
                                "imagegen bake: %s: id '%s' differs from its directory's name "
                                "'%s' (firstboot looks modules up by directory)\n",
                                mf, m->id, id);
                        r = -EINVAL;
                        goto next;
                }
                for (char **f = files; f && *f; f++) {
                        _cleanup_free_ char *full = strprintf("%s/%s", dir, *f);
                        _cleanup_free_ char *dst = strprintf("%s/%s/%s", modules_dir, id, *f);
                        struct stat st;
                        char *data = NULL;
                        size_t size;
                        r = read_source(full, &data, &size);
                        if (r < 0)
                                break;
                        bool exec = streq(*f, m->install_script) ||
                                    (stat(full, &st) == 0 && (st.st_mode & S_IXUSR));
                        plan_file(p, dst, data, size, exec ? 0755 : 0644);
                }
                count++;
        next:
                free(ents[i]);
        }
        free(ents);
        *ret_n = count;
        return r;
}

struct key {
        char *name; /* basename, *.pub */
        char *pem;
        size_t len;
};

static void keys_free(struct key *k, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(k[i].name);
                free(k[i].pem);
        }
        free(k);
}

/* Whether pem is an Ed25519 public key: verifying any signature with it
 * says "bad signature" rather than "not a key". */
static bool is_ed25519_public(const char *pem, size_t len)
{
        static const unsigned char zero[ED25519_SIG_BYTES];
        return ed25519_verify(pem, len, "", 0, zero, sizeof(zero)) == -EBADMSG;
}

/* The key files: each --key, and the *.pub of each --keys DIR/. */
static int expand_keys(char **given, char ***ret)
{
        _cleanup_strv_free_ char **v = NULL;

        for (char **g = given; g && *g; g++) {
                if (!endswith(*g, "/")) {
                        strv_extend(&v, *g);
                        continue;
                }
                struct dirent **ents = NULL;
                int n = scandir(*g, &ents, NULL, alphasort), found = 0;
                if (n < 0) {
                        fprintf(stderr, "imagegen bake: --keys %s: %s\n", *g, strerror(errno));
                        return -errno;
                }
                for (int i = 0; i < n; i++) {
                        if (endswith(ents[i]->d_name, ".pub")) {
                                strv_push(&v, strprintf("%s%s", *g, ents[i]->d_name));
                                found++;
                        }
                        free(ents[i]);
                }
                free(ents);
                if (!found) {
                        fprintf(stderr, "imagegen bake: --keys %s: no *.pub in it\n", *g);
                        return -ENOENT;
                }
        }
        *ret = TAKE_PTR(v);
        return 0;
}

static int load_keys(char **given, struct key **ret, size_t *ret_n)
{
        _cleanup_strv_free_ char **files = NULL;
        struct key *k = NULL;
        size_t n = 0;
        int r = expand_keys(given, &files);

        if (r < 0)
                return r;
        for (char **f = files; f && *f; f++) {
                _cleanup_free_ char *copy = xstrdup(*f);
                const char *name = basename(copy);
                char *pem = NULL;
                size_t len;

                if (!endswith(name, ".pub") || streq(name, ".pub")) {
                        fprintf(stderr,
                                "imagegen bake: %s: a trusted key file must be named NAME.pub "
                                "(firstboot reads /etc/firstboot/keys/*.pub)\n",
                                *f);
                        goto fail;
                }
                if (read_source(*f, &pem, &len) < 0)
                        goto fail;
                if (!is_ed25519_public(pem, len)) {
                        fprintf(stderr,
                                "imagegen bake: %s: not an Ed25519 public key in PEM "
                                "(\"BEGIN PUBLIC KEY\"; `imagegen keygen` makes one)\n",
                                *f);
                        free(pem);
                        goto fail;
                }
                for (size_t i = 0; i < n; i++)
                        if (streq(k[i].name, name)) {
                                fprintf(stderr, "imagegen bake: %s: two keys named %s\n", *f, name);
                                free(pem);
                                goto fail;
                        }
                k = xrealloc(k, (n + 1) * sizeof(*k));
                k[n++] = (struct key){xstrdup(name), pem, len};
        }
        *ret = k;
        *ret_n = n;
        return 0;
fail:
        keys_free(k, n);
        return -EINVAL;
}

/* The configuration the image will have: --config (checked with the
 * agent's own parser and installed as it is), else the image's own, else
 * a default one written here. */
static int plan_config(struct plan *p, const struct image *img, const char *given, bool have_keys,
                       struct config *ret)
{
        const char *rel = &CONFIG_DEFAULT_PATH[1];
        struct diags d = {0};
        char *data = NULL;
        size_t size;
        int r;

        if (given) {
                if (config_load(given, true, ret, &d) < 0) {
                        diags_print(&d, stderr);
                        diags_free(&d);
                        return -EBADMSG;
                }
                r = read_source(given, &data, &size);
                if (r < 0) {
                        config_free(ret);
                        return r;
                }
                plan_file(p, rel, data, size, 0644);
                return 0;
        }
        r = image_read(img, rel, &data, &size);
        if (r >= 0) {
                /* The parser's messages name it: a path for a root
                 * directory, image:/path for a tarball. */
                _cleanup_free_ char *where = img->root ? strprintf("%s/%s", img->root, rel)
                                                       : strprintf("%s:/%s", img->label, rel);
                if (config_parse(where, data, size, ret, &d) < 0) {
                        fprintf(stderr, "imagegen bake: the image's /%s is not valid:\n", rel);
                        diags_print(&d, stderr);
                        diags_free(&d);
                        r = -EBADMSG;
                }
                free(data);
                return r;
        }
        if (r != -ENOENT) {
                fprintf(stderr, "imagegen bake: %s: /%s: %s\n", img->label, rel, strerror(-r));
                return r;
        }
        _cleanup_free_ char *text = strprintf(
                "# firstboot.conf(5), written by `imagegen bake`. Every key is optional;\n"
                "# these are the defaults, except that require_signature is true when\n"
                "# trusted keys were baked into /etc/firstboot/keys.\n"
                "datasource: auto\n"
                "require_signature: %s\n",
                have_keys ? "true" : "false");
        plan_file_copy(p, rel, text, 0644);
        if (config_parse(rel, NULL, 0, ret, &d) < 0) {
                diags_free(&d);
                return -EINVAL;
        }
        ret->require_signature = have_keys;
        return 0;
}

/* Whether a bundle runs the jobs agent: site.yaml's jobs: renders the
 * module SITE_JOBS_MODULE into it. */
static bool bundle_runs_agent(const struct bundle *b)
{
        for (size_t i = 0; i < b->n_modules; i++)
                if (streq(b->modules[i].id, SITE_JOBS_MODULE))
                        return true;
        return false;
}

/* The default bundle: decoded, parsed and its modules prepared exactly as
 * the agent would, and its signature checked when the configuration
 * requires one, against the keys the image will trust. *ret_runs_agent:
 * whether it runs the jobs agent. */
static int check_bundle(const char *path, const char *data, size_t size, const char *modules_src,
                        const struct config *c, const struct key *keys, size_t n_keys,
                        bool *ret_runs_agent)
{
        _cleanup_bundle_ struct bundle *b = NULL;
        struct member_list members = {0};
        enum userdata_kind kind;
        struct planned *mods = NULL;
        struct diags d = {0};
        size_t n = 0;
        int r;

        r = userdata_decode(path, data, size, (size_t)c->max_user_data, &kind, &members, &d);
        if (r >= 0)
                r = bundle_parse(&members, path, &b, &d);
        if (r >= 0) {
                struct prepare_options o = {.modules_dir = modules_src};
                r = prepare_modules(b, &o, &mods, &n, &d);
                planned_free(mods, n);
        }
        if (r < 0) {
                diags_print(&d, stderr);
                diags_free(&d);
                return r;
        }
        *ret_runs_agent = bundle_runs_agent(b);
        if (!c->require_signature)
                return 0;
        const struct archive_member *y = member_list_find(&b->members, BUNDLE_YAML);
        const struct archive_member *sig = member_list_find(&b->members, BUNDLE_SIG);
        for (size_t i = 0; sig && y && i < n_keys; i++)
                if (ed25519_verify(keys[i].pem, keys[i].len, y->data, y->size, sig->data,
                                   sig->size) == 0)
                        return 0;
        fprintf(stderr,
                "imagegen bake: %s: %s, and firstboot.conf sets require_signature: the agent "
                "would refuse it\n",
                path,
                !sig     ? "the bundle is not signed"
                : n_keys ? "its signature verifies with none of the trusted keys"
                         : "no trusted key to check its signature with (--key/--keys)");
        return -EPERM;
}

/* The image's existing trusted keys (they stay), for checking the
 * default bundle's signature. */
static void add_image_keys(const struct image *img, const char *keys_rel, struct key **k, size_t *n)
{
        _cleanup_strv_free_ char **names = image_list(img, keys_rel);

        for (char **name = names; name && *name; name++) {
                _cleanup_free_ char *rel = strprintf("%s/%s", keys_rel, *name);
                char *pem = NULL;
                size_t len;
                if (!endswith(*name, ".pub") || image_read(img, rel, &pem, &len) < 0)
                        continue;
                *k = xrealloc(*k, (*n + 1) * sizeof(**k));
                (*k)[(*n)++] = (struct key){xstrdup(*name), pem, len};
        }
}

/* --- Applying the plan to a directory --- */

static int dir_symlink(int rootfd, const char *rel, const char *target)
{
        const char *name;
        _cleanup_close_ int dfd = root_open_parent(rootfd, rel, 0755, &name);
        char old[PATH_MAX], tmp[NAME_MAX + 1];

        if (dfd < 0)
                return dfd;
        ssize_t n = readlinkat(dfd, name, old, sizeof(old) - 1);
        if (n >= 0 && (size_t)n == strlen(target) && memcmp(old, target, (size_t)n) == 0)
                return 0;
        snprintf(tmp, sizeof(tmp), "%.200s.bake-tmp.%d", name, (int)getpid());
        (void)unlinkat(dfd, tmp, 0);
        if (symlinkat(target, dfd, tmp) < 0)
                return -errno;
        if (fchownat(dfd, tmp, 0, 0, AT_SYMLINK_NOFOLLOW) < 0 && geteuid() == 0) {
                int e = errno;
                (void)unlinkat(dfd, tmp, 0);
                return -e;
        }
        if (renameat(dfd, tmp, dfd, name) < 0) {
                int e = errno;
                (void)unlinkat(dfd, tmp, 0);
                return -e;
        }
        return 1;
}

/* Removes what a TAR_REMOVE pattern matches: the directory part is
 * literal, the last component a pattern. */
static int dir_remove(int rootfd, const char *pattern)
{
        _cleanup_free_ char *copy = xstrdup(pattern);
        char *slash = strrchr(copy, '/');
        const char *base = slash ? slash + 1 : copy;
        int r = 0, changed = 0;

        if (slash)
                *slash = '\0';
        int dfd = root_open(rootfd, slash ? copy : "", O_RDONLY | O_DIRECTORY, 0);
        if (dfd == -ENOENT || dfd == -ENOTDIR)
                return 0;
        if (dfd < 0)
                return dfd;
        DIR *d = fdopendir(dfd);
        if (!d) {
                r = -errno;
                close(dfd);
                return r;
        }
        for (struct dirent *de; (de = readdir(d));) {
                if (streq(de->d_name, ".") || streq(de->d_name, "..") ||
                    fnmatch(base, de->d_name, FNM_PERIOD) != 0)
                        continue;
                /* One name in dfd: nothing in it resolves anywhere else. */
                r = root_rm_rf(dfd, de->d_name);
                if (r < 0)
                        break;
                changed = 1;
        }
        closedir(d);
        return r < 0 ? r : changed;
}

static int dir_apply(int rootfd, const char *root, struct tar_change *c, size_t n)
{
        uid_t uid = geteuid() == 0 ? 0 : (uid_t)-1;
        gid_t gid = geteuid() == 0 ? 0 : (gid_t)-1;
        int r;

        /* Removals first, like the tarball rewrite, which drops removed
         * entries before it looks at puts. */
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < n; i++) {
                        if ((c[i].kind == TAR_REMOVE) != (pass == 0))
                                continue;
                        if (c[i].kind == TAR_REMOVE)
                                r = dir_remove(rootfd, c[i].path);
                        else if (c[i].kind == TAR_PUT_FILE)
                                r = root_write_file(rootfd, c[i].path, 0755, c[i].data, c[i].size,
                                                    c[i].mode, uid, gid, 0);
                        else if (c[i].kind == TAR_PUT_SYMLINK)
                                r = dir_symlink(rootfd, c[i].path, c[i].target);
                        else {
                                int fd = root_mkdir_p(rootfd, c[i].path, 0755);
                                r = fd < 0 ? fd : 0;
                                if (fd >= 0)
                                        close(fd);
                        }
                        if (r < 0) {
                                fprintf(stderr, "imagegen bake: %s/%s: %s\n", root, c[i].path,
                                        strerror(-r));
                                return r;
                        }
                        c[i].changed = r > 0;
                }
        return 0;
}

/* --- The command --- */

static int bake_usage(FILE *f, int rc)
{
        fputs("Usage: imagegen bake --rootfs DIR [OPTIONS]\n"
              "       imagegen bake --tar IN.tar -o OUT.tar [OPTIONS]\n\n"
              "Makes a root file system a golden image that provisions itself at first boot:\n"
              "installs firstboot, its units (enabled), modules, trusted keys and\n"
              "firstboot.conf; resets the machine id, SSH host keys and firstboot's state.\n\n"
              "Options:\n"
              "  --keys DIR          trust every DIR/*.pub (Ed25519 PEM public keys)\n"
              "  --key FILE.pub      trust this key (both may be repeated)\n"
              "  --config FILE       install this firstboot.conf (default: keep the image's,\n"
              "                      else write one; require_signature: true with keys)\n"
              "  --bundle USERDATA   a default bundle, used when no datasource has user-data\n"
              "  --firstboot BIN     the agent to install (default: next to imagegen)\n"
              "  --modules-dir DIR   the modules to install (default: next to imagegen)\n"
              "  --enable-agent      enable firstboot-agent.service (jobs from Redis; it\n"
              "                      starts where /etc/firstboot/jobs.secret exists)\n"
              "  -q                  print nothing but errors\n",
              f);
        return rc;
}

static int parse_bake(int argc, char **argv, struct bake_opts *o)
{
        static const struct option longopts[] = {
                {"rootfs", required_argument, NULL, 'r'},
                {"tar", required_argument, NULL, 't'},
                {"output", required_argument, NULL, 'o'},
                {"keys", required_argument, NULL, 'K'},
                {"key", required_argument, NULL, 'k'},
                {"config", required_argument, NULL, 'c'},
                {"bundle", required_argument, NULL, 'b'},
                {"firstboot", required_argument, NULL, 'f'},
                {"modules-dir", required_argument, NULL, 'm'},
                {"quiet", no_argument, NULL, 'q'},
                {"enable-agent", no_argument, NULL, 'A'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "o:qh", longopts, NULL)) >= 0) {
                switch (c) {
                case 'r':
                        o->rootfs = optarg;
                        break;
                case 't':
                        o->tar = optarg;
                        break;
                case 'o':
                        o->out = optarg;
                        break;
                case 'k':
                        strv_extend(&o->key_files, optarg);
                        break;
                case 'K':
                        /* Expanded to its *.pub when the keys are read,
                         * in the order given. */
                        strv_push(&o->key_files, strprintf("%s/", optarg));
                        break;
                case 'c':
                        o->config = optarg;
                        break;
                case 'b':
                        o->bundle = optarg;
                        break;
                case 'f':
                        o->firstboot = optarg;
                        break;
                case 'm':
                        o->modules_dir = optarg;
                        break;
                case 'q':
                        o->quiet = true;
                        break;
                case 'A':
                        o->enable_agent = true;
                        break;
                case 'h':
                        exit(bake_usage(stdout, 0));
                default:
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "imagegen bake: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        if (!!o->rootfs == !!o->tar) {
                fprintf(stderr, "imagegen bake: give either --rootfs DIR or --tar IN -o OUT\n");
                return -EINVAL;
        }
        if (o->tar && !o->out) {
                fprintf(stderr, "imagegen bake: --tar needs -o OUT\n");
                return -EINVAL;
        }
        if (o->rootfs && o->out) {
                fprintf(stderr, "imagegen bake: -o goes with --tar; --rootfs changes DIR in "
                                "place\n");
                return -EINVAL;
        }
        return 0;
}

static int open_image(const struct bake_opts *o, struct image *img)
{
        _cleanup_free_ char *err = NULL;

        *img = (struct image){
                .label = o->rootfs ? o->rootfs : o->tar, .root = o->rootfs, .rootfd = -1};
        if (o->rootfs && !is_dir(o->rootfs)) {
                fprintf(stderr, "imagegen bake: %s: %s\n", o->rootfs,
                        path_exists(o->rootfs) ? "not a directory" : strerror(ENOENT));
                return -ENOTDIR;
        }
        if (o->rootfs) {
                img->rootfd = root_open_dir(o->rootfs);
                if (img->rootfd < 0) {
                        fprintf(stderr, "imagegen bake: %s: %s\n", o->rootfs,
                                strerror(-img->rootfd));
                        return img->rootfd;
                }
        }
        if (o->tar) {
                int r = tar_index_read(o->tar, &img->index, &err);
                if (r < 0) {
                        fprintf(stderr, "imagegen bake: %s: %s\n", o->tar,
                                err ? err : strerror(-r));
                        return r;
                }
        }
        /* os-release(5): /etc/os-release, else /usr/lib/os-release. */
        if (!image_has(img, "etc/os-release") && !image_has(img, "usr/lib/os-release")) {
                fprintf(stderr,
                        "imagegen bake: %s: not a root file system: it has no etc/os-release "
                        "(nor usr/lib/os-release); refusing to bake it\n",
                        img->label);
                return -EINVAL;
        }
        return 0;
}

/* The libraries the agent needs in the image: those it is linked with (it
 * cannot start without them) and those it loads when first needed. */
static const struct {
        const char *soname, *package;
        const char *use; /* NULL: linked */
} agent_libs[] = {
        {"libyaml-0.so.2", "libyaml-0-2", NULL},
        {"libjson-c.so.5", "libjson-c5", NULL},
        {"libz.so.1", "zlib1g", NULL},
        {"libpcre2-8.so.0", "libpcre2-8-0", NULL},
        {SONAME_LIBSODIUM, "libsodium23", NULL},
        {SONAME_LIBARCHIVE, "libarchive13", "needed to read NoCloud and ConfigDrive ISO images"},
        {SONAME_LIBCURL, "libcurl4", "needed to fetch user-data over HTTP and to call back"},
        {SONAME_LIBSYSTEMD, "libsystemd0", "needed by `firstboot logs` to read the journal"},
};

/* `firstboot agent`'s (jobs from Redis): checked apart from agent_libs,
 * as an error when this bake makes the agent run. libhiredict_ssl
 * (rediss://) is in the same package. */
#define JOBS_LIB         SONAME_LIBHIREDICT
#define JOBS_LIB_PACKAGE "libhiredict1.3.1"

static bool image_has_library(const struct image *img, const char *soname)
{
        static const char *const dirs[] = {
                "usr/lib/" MULTIARCH, "lib/" MULTIARCH, "usr/lib64", "lib64", "usr/lib", "lib"};

        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
                _cleanup_free_ char *rel = strprintf("%s/%s", dirs[i], soname);
                if (image_has(img, rel))
                        return true;
        }
        return false;
}

/* A missing library the agent is linked with is an error: the first boot
 * could only fail. The others are warnings: the agent works without them,
 * short of what they are for. */
static int check_libraries(const struct image *img)
{
        int r = 0;

        for (size_t i = 0; i < ARRAY_SIZE(agent_libs); i++) {
                bool fatal = !agent_libs[i].use;

                if (image_has_library(img, agent_libs[i].soname))
                        continue;
                fprintf(stderr, "imagegen bake: %s%s: the image lacks %s (Debian package %s), %s\n",
                        fatal ? "" : "warning: ", img->label, agent_libs[i].soname,
                        agent_libs[i].package,
                        agent_libs[i].use ? agent_libs[i].use
                                          : "without which firstboot cannot start");
                if (fatal)
                        r = -ENOENT;
        }
        return r;
}

/* libhiredict, which `firstboot agent` loads at start: an error when why
 * (what makes this image run the agent) is set, as the agent could only
 * fail there; else a warning, as a bundle at first boot may still ask for
 * it (site.yaml's jobs:). */
static int check_jobs_library(const struct image *img, const char *why)
{
        if (image_has_library(img, JOBS_LIB))
                return 0;
        if (why) {
                fprintf(stderr,
                        "imagegen bake: %s: the image lacks %s (Debian package %s), without which "
                        "`firstboot agent` cannot start, and %s runs it\n",
                        img->label, JOBS_LIB, JOBS_LIB_PACKAGE, why);
                return -ENOENT;
        }
        fprintf(stderr,
                "imagegen bake: warning: %s: the image lacks %s (Debian package %s), needed by "
                "`firstboot agent` for jobs from Redis (site.yaml's jobs:)\n",
                img->label, JOBS_LIB, JOBS_LIB_PACKAGE);
        return 0;
}

/* Everything bake changes, computed without touching the image. */
static int make_plan(const struct bake_opts *o, const struct image *img, struct plan *p,
                     size_t *ret_modules, size_t *ret_keys)
{
        _cleanup_free_ char *fb = o->firstboot ? xstrdup(o->firstboot) : default_firstboot();
        _cleanup_free_ char *units_dir = default_units();
        _cleanup_free_ char *mods = o->modules_dir
                                            ? xstrdup(o->modules_dir)
                                            : default_dir("modules", MODULES_DIR_DEFAULT, ".");
        _cleanup_strv_free_ char **reset = NULL;
        struct key *keys = NULL;
        size_t n_keys = 0;
        struct config c;
        char *data = NULL;
        size_t size;
        int r;

        r = load_keys(o->key_files, &keys, &n_keys);
        if (r < 0)
                return r;
        *ret_keys = n_keys;
        r = read_source(fb, &data, &size);
        if (r < 0)
                goto out;
        if (size < 4 || memcmp(data, "\177ELF", 4) != 0) {
                fprintf(stderr, "imagegen bake: %s: not an executable (ELF) file\n", fb);
                free(data);
                r = -ENOEXEC;
                goto out;
        }
        plan_file(p, "usr/bin/firstboot", data, size, 0755);
        r = plan_units(p, units_dir, o->enable_agent);
        if (r >= 0)
                r = plan_catalog(p, img);
        if (r >= 0) {
                _cleanup_free_ char *systemd = image_rel(RESET_PRESET_IF);
                if (image_has(img, systemd))
                        plan_file_copy(p, RESET_PRESET_PATH, RESET_PRESET_CONTENT, 0644);
        }
        if (r < 0)
                goto out;
        r = plan_config(p, img, o->config, n_keys > 0, &c);
        if (r < 0)
                goto out;
        r = check_libraries(img);
        if (r < 0) {
                config_free(&c);
                goto out;
        }
        r = plan_modules(p, mods, c.modules_dir, ret_modules);
        for (size_t i = 0; r >= 0 && i < n_keys; i++) {
                _cleanup_free_ char *dst = strprintf("%s/%s", c.keys_dir, keys[i].name);
                plan_file(p, dst, xstrndup(keys[i].pem, keys[i].len), keys[i].len, 0644);
        }
        bool bundle_agent = false;
        if (r >= 0 && o->bundle) {
                _cleanup_free_ char *keys_rel = image_rel(c.keys_dir);
                add_image_keys(img, keys_rel, &keys, &n_keys);
                data = NULL; /* the agent's buffer belongs to the plan now */
                r = read_source(o->bundle, &data, &size);
                if (r >= 0)
                        r = check_bundle(o->bundle, data, size, mods, &c, keys, n_keys,
                                         &bundle_agent);
                if (r >= 0)
                        plan_file(p, DS_DEFAULT_USER_DATA, data, size, 0600);
                else
                        free(data);
        }
        if (r >= 0)
                r = check_jobs_library(img, o->enable_agent    ? "--enable-agent"
                                            : c.jobs_redis_url ? "firstboot.conf's jobs.redis_url"
                                            : bundle_agent
                                                    ? "the --bundle's module " SITE_JOBS_MODULE
                                                    : NULL);

        /* What must be unique per server. */
        if (r >= 0)
                r = reset_paths(&c, true, &reset);
        for (char **s = reset; r >= 0 && *s; s++)
                plan_add(p, TAR_REMOVE, *s);
        if (r >= 0) {
                _cleanup_free_ char *link = NULL;
                plan_add(p, TAR_REMOVE, "etc/ssh/ssh_host_*");
                plan_file_copy(p, RESET_MACHINE_ID_PATH, RESET_MACHINE_ID_CONTENT, 0444);
                /* D-Bus's copy: Debian links it to /etc/machine-id. */
                char t = image_type(img, "var/lib/dbus/machine-id", &link);
                if (t && !(t == 'l' && streq_ptr(link, RESET_MACHINE_ID_PATH)))
                        plan_symlink(p, "var/lib/dbus/machine-id", RESET_MACHINE_ID_PATH);
        }
        config_free(&c);
out:
        keys_free(keys, n_keys);
        return r;
}

int cmd_bake(int argc, char **argv)
{
        struct bake_opts o = {0};
        struct image img = {0};
        struct plan p = {0};
        size_t n_modules = 0, n_keys = 0, changed = 0;
        int r;

        umask(022);
        if (parse_bake(argc, argv, &o) < 0) {
                strv_free(o.key_files);
                return 2;
        }
        r = open_image(&o, &img);
        if (r >= 0)
                r = make_plan(&o, &img, &p, &n_modules, &n_keys);
        if (r >= 0 && img.root)
                r = dir_apply(img.rootfd, img.root, p.v, p.n);
        else if (r >= 0) {
                _cleanup_free_ char *err = NULL;
                r = tar_rewrite(o.tar, o.out, p.v, p.n, &err);
                if (r < 0)
                        fprintf(stderr, "imagegen bake: %s: %s\n", o.tar, err ? err : strerror(-r));
        }
        if (r >= 0 && !o.quiet) {
                for (size_t i = 0; i < p.n; i++)
                        if (p.v[i].changed) {
                                printf("  %s /%s\n",
                                       p.v[i].kind == TAR_REMOVE        ? "removed"
                                       : p.v[i].kind == TAR_PUT_SYMLINK ? "linked "
                                                                        : "wrote  ",
                                       p.v[i].path);
                                changed++;
                        }
                printf("%s: %s (firstboot, %zu unit%s, %zu module%s, %zu key%s%s)\n",
                       o.tar ? o.out : o.rootfs, changed ? "baked" : "already baked, unchanged",
                       ARRAY_SIZE(units), ARRAY_SIZE(units) == 1 ? "" : "s", n_modules,
                       n_modules == 1 ? "" : "s", n_keys, n_keys == 1 ? "" : "s",
                       o.bundle ? ", default bundle" : "");
        }
        plan_free(&p);
        if (img.rootfd >= 0)
                close(img.rootfd);
        tar_index_free(&img.index);
        strv_free(o.key_files);
        return r < 0 ? 1 : 0;
}
