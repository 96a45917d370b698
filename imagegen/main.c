/* imagegen: from one site.yaml to a verified bundle, provider user-data and
 * NoCloud seed images. */
#include "iso.h"
#include "tarball.h"
#include "bundle.h"
#include "crypto.h"
#include "fs.h"
#include "imagegen.h"
#include "pki.h"
#include "push.h"
#include "render.h"
#include "secrets.h"
#include "site.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_JOBS 64

struct opts {
        const char *site, *out, *modules_dir, *templates_dir, *provider, *host;
        unsigned jobs; /* render: processes for a fleet; 0 = one per CPU */
        bool quiet;
        /* push: the ssh destination (HOST), its options, the remote
         * firstboot command and --plan. */
        const char *dest, *firstboot_cmd;
        char **ssh_options;
        bool plan_only;
};

/* What every command that reads a site shares: where modules and
 * templates are, and the site's state (secrets, PKI). */
struct env {
        char *mods, *tmpl, *state_dir;
        struct secrets *sec;
};

/* Next to the binary when run from a build tree (build/imagegen ->
 * ../modules), else the installed places. */
char *default_dir(const char *rel, const char *installed, const char *probe)
{
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
                exe[n] = '\0';
                _cleanup_free_ char *p = strprintf("%s/../%s", dirname(exe), rel);
                _cleanup_free_ char *pr = strprintf("%s/%s", p, probe);
                char *real = realpath(p, NULL);
                if (real && path_exists(pr))
                        return real;
                free(real);
        }
        return xstrdup(installed);
}

static int usage(FILE *f, int rc)
{
        fputs("Usage: imagegen COMMAND [OPTIONS]\n\n"
              "Commands:\n"
              "  init DIR                         a working example site for the whole stack\n"
              "  validate SITE.yaml               check the site: file:line:column: message\n"
              "  render SITE.yaml -o DIR          the bundle, as a directory\n"
              "  userdata SITE.yaml [--provider P] -o FILE\n"
              "                                   user-data for hetzner|digitalocean|ec2|nocloud\n"
              "  seed SITE.yaml -o seed.iso       a NoCloud cidata image (user-data, meta-data)\n"
              "  keygen -o DIR                    an Ed25519 signing key pair for bundles\n"
              "  bake --rootfs DIR | --tar IN -o OUT [--keys DIR] [--key F.pub] [--config F]\n"
              "       [--bundle USERDATA] [--firstboot BIN]\n"
              "                                   make a root file system a golden image\n"
              "  job submit --redis URL --agent ID --secret-file F APP_ID [key=value ...]\n"
              "      [--wait] [--timeout S]       sign and queue a job for `firstboot agent`\n"
              "  job status --redis URL JOB_ID    a job's result\n"
              "  push SITE.yaml [HOST] [--plan] [--ssh-option OPT]... [--firstboot-command CMD]\n"
              "                                   firstboot plan, then apply, on HOST over ssh\n\n"
              "Options: --modules-dir DIR, --templates-dir DIR (default: next to the binary,\n"
              "else /usr/lib/firstboot/modules and /usr/share/imagegen/templates), -q;\n"
              "--host NAME picks one server of a site with hosts: (a fleet); render without\n"
              "it writes every host's bundle to DIR/<hostname>/, with -j N processes (default:\n"
              "one per CPU).\n",
              f);
        return rc;
}

static int parse_opts(const char *cmd, int argc, char **argv, struct opts *o, bool need_site,
                      bool need_out)
{
        static const struct option longopts[] = {
                {"output", required_argument, NULL, 'o'},
                {"modules-dir", required_argument, NULL, 'm'},
                {"templates-dir", required_argument, NULL, 't'},
                {"provider", required_argument, NULL, 'p'},
                {"host", required_argument, NULL, 'H'},
                {"jobs", required_argument, NULL, 'j'},
                {"plan", no_argument, NULL, 'P'},
                {"ssh-option", required_argument, NULL, 'O'},
                {"firstboot-command", required_argument, NULL, 'F'},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "o:j:qh", longopts, NULL)) >= 0) {
                switch (c) {
                case 'o':
                        o->out = optarg;
                        break;
                case 'm':
                        o->modules_dir = optarg;
                        break;
                case 't':
                        o->templates_dir = optarg;
                        break;
                case 'p':
                        o->provider = optarg;
                        break;
                case 'H':
                        o->host = optarg;
                        break;
                case 'j':
                        if (!streq(cmd, "render") && !streq(cmd, "push")) {
                                fprintf(stderr,
                                        "imagegen %s: --jobs is an option of render and push\n",
                                        cmd);
                                return -EINVAL;
                        }
                        if (parse_uint(optarg, &o->jobs) < 0 || o->jobs < 1 || o->jobs > MAX_JOBS) {
                                fprintf(stderr,
                                        "imagegen %s: --jobs takes a number of processes "
                                        "from 1 to %d, not '%s'\n",
                                        cmd, MAX_JOBS, optarg);
                                return -EINVAL;
                        }
                        break;
                case 'P':
                case 'O':
                case 'F':
                        if (!streq(cmd, "push")) {
                                fprintf(stderr, "imagegen %s: --%s is an option of push\n", cmd,
                                        c == 'P'   ? "plan"
                                        : c == 'O' ? "ssh-option"
                                                   : "firstboot-command");
                                return -EINVAL;
                        }
                        if (c == 'P')
                                o->plan_only = true;
                        else if (!*optarg || *optarg == '-') {
                                fprintf(stderr, "imagegen push: --%s takes %s, not '%s'\n",
                                        c == 'O' ? "ssh-option" : "firstboot-command",
                                        c == 'O' ? "an ssh_config option (Key=Value)" : "a command",
                                        optarg);
                                return -EINVAL;
                        } else if (c == 'O')
                                strv_extend(&o->ssh_options, optarg);
                        else
                                o->firstboot_cmd = optarg;
                        break;
                case 'q':
                        o->quiet = true;
                        break;
                case 'h':
                        exit(usage(stdout, 0));
                default:
                        return -EINVAL;
                }
        }
        if (need_site) {
                if (optind >= argc) {
                        fprintf(stderr, "imagegen %s: missing SITE.yaml\n", cmd);
                        return -EINVAL;
                }
                o->site = argv[optind++];
        }
        if (streq(cmd, "push") && optind < argc) {
                /* ssh would take a destination starting with '-' for an
                 * option were it not after "--"; none is a host. */
                if (!*argv[optind] || *argv[optind] == '-') {
                        fprintf(stderr, "imagegen push: '%s' is not a host\n", argv[optind]);
                        return -EINVAL;
                }
                o->dest = argv[optind++];
        }
        if (optind < argc) {
                fprintf(stderr, "imagegen %s: unexpected argument '%s'\n", cmd, argv[optind]);
                return -EINVAL;
        }
        if (need_out && !o->out) {
                fprintf(stderr, "imagegen %s: missing -o\n", cmd);
                return -EINVAL;
        }
        return 0;
}

static void env_close(struct env *e)
{
        free(e->mods);
        free(e->tmpl);
        free(e->state_dir);
        secrets_free(e->sec);
}

static int env_open(const struct opts *o, struct env *e)
{
        _cleanup_free_ char *copy = xstrdup(o->site), *err = NULL;

        e->mods = o->modules_dir ? xstrdup(o->modules_dir)
                                 : default_dir("modules", MODULES_DIR_DEFAULT, ".");
        e->tmpl = o->templates_dir ? xstrdup(o->templates_dir)
                                   : default_dir("templates", TEMPLATES_DIR_DEFAULT, "index.yml");
        e->state_dir = strprintf("%s/.imagegen", dirname(copy));
        _cleanup_free_ char *state = strprintf("%s/state.json", e->state_dir);
        if (!path_exists(o->site)) {
                fprintf(stderr, "%s: %s\n", o->site, strerror(ENOENT));
                return -ENOENT;
        }
        if (secrets_load(state, &e->sec, &err) < 0) {
                fprintf(stderr, "%s\n", err);
                return -EINVAL;
        }
        return 0;
}

/* like: another host of the fleet, loaded already (see site_options). */
static int load_site(struct env *e, const struct opts *o, const char *host, const struct site *like,
                     struct site **ret)
{
        struct site_options so = {.modules_dir = e->mods,
                                  .templates_dir = e->tmpl,
                                  .secrets = e->sec,
                                  .host = host,
                                  .like = like};
        struct diags d = {0};
        int r = site_load(o->site, &so, ret, &d);
        diags_print(&d, stderr);
        diags_free(&d);
        return r;
}

static int render_site(struct env *e, const struct opts *o, const struct site *s,
                       struct member_list *ret)
{
        struct render_options ro = {
                .state_dir = e->state_dir,
                .quiet = o->quiet,
                .state = e->sec,
        };
        struct diags d = {0};
        int r = render_bundle(s, &ro, ret, &d);
        diags_print(&d, stderr);
        diags_free(&d);
        return r;
}

/* The server certificates first (pki_sync), then the secrets: once
 * imagegen says it is done, all of the state is on disk. */
static int env_save(struct env *e)
{
        _cleanup_free_ char *err = NULL;
        int r = pki_sync(&err);
        if (r >= 0)
                r = secrets_save(e->sec, &err);
        if (r < 0)
                fprintf(stderr, "imagegen: %s\n", err);
        return r;
}

/* One server's bundle (--host picks it in a fleet); the secrets are saved. */
static int build(const struct opts *o, struct site **ret_site, struct member_list *ret)
{
        struct env e = {0};
        int r = env_open(o, &e);
        if (r >= 0)
                r = load_site(&e, o, o->host, NULL, ret_site);
        if (r >= 0 && (*ret_site)->hosts && !o->host) {
                _cleanup_free_ char *list = strv_join((*ret_site)->hosts, ", ");
                fprintf(stderr, "%s: the site lists hosts; pick one with --host (%s)\n", o->site,
                        list);
                r = -EINVAL;
        }
        if (r >= 0)
                r = render_site(&e, o, *ret_site, ret);
        if (r >= 0 && env_save(&e) < 0) {
                member_list_free(ret);
                r = -EIO;
        }
        if (r < 0) {
                site_free(*ret_site);
                *ret_site = NULL;
        }
        env_close(&e);
        return r;
}

static int cmd_validate(int argc, char **argv)
{
        struct opts o = {0};
        struct env e = {0};
        struct site *s = NULL;
        int r;

        if (parse_opts("validate", argc, argv, &o, true, false) < 0)
                return 2;
        r = env_open(&o, &e);
        if (r >= 0)
                r = load_site(&e, &o, o.host, NULL, &s);
        /* In a fleet every host is checked; nothing is saved: validate
         * writes nothing. */
        for (size_t i = 1; r >= 0 && !o.host && s->hosts && s->hosts[i]; i++) {
                struct site *h = NULL;
                r = load_site(&e, &o, s->hosts[i], s, &h);
                site_free(h);
        }
        if (r >= 0) {
                _cleanup_free_ char *fleet =
                        s->hosts ? strprintf(", %zu hosts", strv_length(s->hosts)) : xstrdup("");
                printf("%s: ok: site '%s' (%s), %zu module%s, %zu file%s%s\n", o.site, s->name,
                       provider_name(s->provider), s->n_modules, s->n_modules == 1 ? "" : "s",
                       s->n_files, s->n_files == 1 ? "" : "s", fleet);
        }
        site_free(s);
        env_close(&e);
        return r < 0 ? 1 : 0;
}

/* Writes a rendered bundle to out, and says so. */
static int write_rendered(const struct opts *o, const struct site *s, const struct member_list *l,
                          const char *out)
{
        _cleanup_free_ char *err = NULL;
        int r = write_bundle_dir(l, out, &err);
        if (r < 0)
                fprintf(stderr, "imagegen render: %s\n", err);
        else if (!o->quiet)
                printf("%s: bundle '%s' for %s, %zu members\n", out, s->name, s->hostname, l->n);
        return r;
}

/* A fleet host rendered in memory, to be written once the state holding
 * its serial is on disk. */
struct rendered {
        struct member_list l;
        int r; /* render_site()'s; 1: not rendered by this process */
};

/* Hosts first, first + step, ... of a fleet, rendered into done[] (every
 * one even when one fails; each failure is reported); the first error. */
static int render_hosts(struct env *e, const struct opts *o, struct site **hosts, size_t n,
                        size_t first, size_t step, struct rendered *done)
{
        int r = 0;

        for (size_t i = first; i < n; i += step) {
                done[i].r = render_site(e, o, hosts[i], &done[i].l);
                r = r < 0 ? r : done[i].r;
        }
        return r;
}

/* Writes the hosts of done[] this process rendered to OUT/<hostname>/. */
static int write_hosts(const struct opts *o, struct site **hosts, size_t n, struct rendered *done)
{
        int r = 0;

        for (size_t i = 0; i < n; i++) {
                if (done[i].r != 0)
                        continue;
                _cleanup_free_ char *out = strprintf("%s/%s", o->out, hosts[i]->hostname);
                int k = write_rendered(o, hosts[i], &done[i].l, out);
                r = r < 0 ? r : k;
                fflush(stdout);
        }
        return r;
}

/* "web-3, web-6": the hosts worker w renders (1 + w, 1 + w + jobs, ...). */
static char *worker_hosts(struct site **hosts, size_t n, size_t w, size_t jobs)
{
        _cleanup_strv_free_ char **v = NULL;

        for (size_t i = 1 + w; i < n; i += jobs)
                strv_extend(&v, hosts[i]->hostname);
        return strv_join(v, ", ");
}

/* A worker's report to the parent: "KEY SHA256 SERIAL" for every host it
 * rendered, then ".". Keys are "<hostname>/bundle": no spaces. */
static int report_serials(int fd, const struct env *e, struct site **hosts, size_t n,
                          const struct rendered *done)
{
        FILE *f = fdopen(fd, "w");
        int r = 0;

        if (!f) {
                close(fd);
                return -errno;
        }
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *key = render_serial_key(hosts[i]);
                const char *digest;
                long long serial;
                if (done[i].r != 0)
                        continue;
                r = secrets_serial_get(e->sec, key, &serial, &digest);
                if (r >= 0 && fprintf(f, "%s %s %lld\n", key, digest, serial) < 0)
                        r = -EIO;
        }
        if (r >= 0 && fputs(".\n", f) < 0)
                r = -EIO;
        if (fclose(f) != 0 && r >= 0)
                r = -EIO;
        return r;
}

static bool is_sha256_hex(const char *s)
{
        return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* Takes worker w's report into the parent's state: the serial each of its
 * hosts got from the worker's copy of the state is the one the parent's
 * copy gives for the same digest (nobody else renders that host). The
 * whole report is checked before the state is touched: each line names a
 * host of this worker's (1 + w, 1 + w + jobs, ...), in that order and so
 * each once, with a sha256 and a serial, and the report ends with ".";
 * anything else and nothing is merged. A serial the parent's copy gives
 * otherwise (an internal error) stops the merge there: the hosts before it
 * keep their raised serials, which is safe (a state serial at or above any
 * bundle's), and this worker's hosts are not written. */
static int merge_serials(struct env *e, int fd, struct site **hosts, size_t n, size_t w,
                         size_t jobs)
{
        /* A checked line: the host it names, its digest and serial. */
        struct reported {
                size_t host;
                char digest[65];
                long long serial;
        };
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ struct reported *got = xcalloc(n, sizeof(*got));
        size_t n_got = 0;
        char *line, *save = NULL;
        size_t next = 1 + w; /* the worker reports its hosts in order */
        bool end = false;
        int r = read_fd(fd, 16 * 1024 * 1024, &text, NULL);

        if (r < 0)
                return r;
        for (line = strtok_r(text, "\n", &save); line && !end; line = strtok_r(NULL, "\n", &save)) {
                struct reported *g = &got[n_got];
                char key[512], rest;
                bool ok;
                if (streq(line, ".")) {
                        end = true;
                        continue;
                }
                ok = sscanf(line, "%511s %64s %lld %c", key, g->digest, &g->serial, &rest) == 3 &&
                     is_sha256_hex(g->digest) && g->serial >= 1;
                for (; ok && next < n; next += jobs) {
                        _cleanup_free_ char *k = render_serial_key(hosts[next]);
                        if (streq(k, key))
                                break;
                }
                if (!ok || next >= n) {
                        fprintf(stderr, "imagegen render: worker %zu reported '%s'\n", w + 1, line);
                        return -EBADMSG;
                }
                g->host = next;
                n_got++;
                next += jobs;
        }
        if (!end)
                return -EPIPE;
        for (size_t i = 0; i < n_got; i++) {
                _cleanup_free_ char *key = render_serial_key(hosts[got[i].host]);
                long long serial;
                if (secrets_serial(e->sec, key, got[i].digest, &serial) < 0 ||
                    serial != got[i].serial) {
                        fprintf(stderr, "imagegen render: worker %zu reported '%s %s %lld'\n",
                                w + 1, key, got[i].digest, got[i].serial);
                        return -EBADMSG;
                }
        }
        return 0;
}

/* A fleet: every host is loaded first, so that their new secrets are saved
 * before any bundle carries them (and a bad host stops the render before
 * anything is written); then the first host alone (it makes the shared CA),
 * and the others by up to `jobs` processes, host 1 + w + k * jobs by worker
 * w (the parent is worker 0, and takes over the workers it cannot start).
 * Every host that can be rendered is.
 *
 * Serials: every host's bundle carries one, kept in the state per host
 * ("<hostname>/bundle"). A worker computes its hosts' serials in its copy
 * of the state and reports them over a pipe; the parent merges the reports
 * and saves the state once, and only then does any process write a
 * bundle. The state is on disk before any bundle that carries a serial
 * from it (as `userdata` and `push` save it before they write or send
 * anything): a crash in between leaves a state whose serial is as high as
 * the bundle's while the old bundle stays, never a bundle whose serial the
 * state forgot (the next render would give that serial again to other
 * contents, or a lower one, and the server would refuse it). When the
 * state cannot be saved, no bundle is written. */
static int render_fleet(struct env *e, const struct opts *o, const struct site *s)
{
        size_t n = strv_length(s->hosts), w, started = 1;
        struct site **hosts = xcalloc(n, sizeof(*hosts));
        struct rendered *done = xcalloc(n, sizeof(*done));
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        size_t jobs = o->jobs ? o->jobs : cpus > 0 ? (size_t)MIN(cpus, MAX_JOBS) : 1;
        pid_t pids[MAX_JOBS];
        int report[MAX_JOBS], go[MAX_JOBS]; /* the parent's ends of each worker's pipes */
        int r = 0;

        for (size_t i = 0; i < n; i++)
                done[i].r = 1;
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = load_site(e, o, s->hosts[i], s, &hosts[i]);
        if (r >= 0)
                r = env_save(e);
        if (r >= 0) /* a site has at least one host */
                r = render_hosts(e, o, hosts, 1, 0, 1, done);
        if (r < 0)
                goto out;
        jobs = MIN(jobs, n > 1 ? n - 1 : 1);
        fflush(NULL);
        for (; started < jobs; started++) {
                int rp[2] = {-1, -1}, gp[2] = {-1, -1};
                pid_t pid = -1;
                if (pipe2(rp, O_CLOEXEC) == 0 && pipe2(gp, O_CLOEXEC) == 0)
                        pid = fork();
                if (pid < 0) {
                        int k = errno;
                        for (size_t i = 0; i < 2; i++) {
                                if (rp[i] >= 0)
                                        close(rp[i]);
                                if (gp[i] >= 0)
                                        close(gp[i]);
                        }
                        fprintf(stderr, "imagegen render: cannot start worker %zu of %zu: %s\n",
                                started + 1, jobs, strerror(k));
                        break;
                }
                if (pid == 0) {
                        char c = 0;
                        for (w = 1; w < started; w++)
                                close(report[w]), close(go[w]);
                        close(rp[0]);
                        close(gp[1]);
                        for (size_t i = 0; i < n; i++)
                                done[i].r = 1;
                        r = render_hosts(e, o, hosts, n, 1 + started, jobs, done);
                        /* Its certificates only: the parent saves the state. */
                        _cleanup_free_ char *err = NULL;
                        if (pki_sync(&err) < 0) {
                                fprintf(stderr, "imagegen: %s\n", err);
                                _exit(1);
                        }
                        if (report_serials(rp[1], e, hosts, n, done) < 0)
                                _exit(1);
                        /* Its hosts are written once the parent saved the state. */
                        while (read(gp[0], &c, 1) < 0 && errno == EINTR)
                                ;
                        if (c == 'w' && write_hosts(o, hosts, n, done) < 0)
                                r = -EIO;
                        fflush(NULL);
                        _exit(r < 0 || c != 'w' ? 1 : 0);
                }
                close(rp[1]);
                close(gp[0]);
                pids[started] = pid;
                report[started] = rp[0];
                go[started] = gp[1];
        }
        r = render_hosts(e, o, hosts, n, 1, jobs, done);
        for (w = started; w < jobs; w++) {
                int k = render_hosts(e, o, hosts, n, 1 + w, jobs, done);
                r = r < 0 ? r : k;
        }
        bool merged[MAX_JOBS] = {false};
        for (w = 1; w < started; w++) {
                int k = merge_serials(e, report[w], hosts, n, w, jobs);
                close(report[w]);
                merged[w] = k >= 0;
                if (k < 0) {
                        _cleanup_free_ char *list = worker_hosts(hosts, n, w, jobs);
                        fprintf(stderr,
                                "imagegen render: worker %zu (%s) ended without reporting its "
                                "serials: its hosts are not written\n",
                                w + 1, list);
                }
                r = r < 0 ? r : k;
        }
        bool saved = env_save(e) >= 0;
        /* A worker that died since its report fails this write (EPIPE,
         * reported by its exit status), without killing the parent. */
        struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
        sigaction(SIGPIPE, &ign, &old_pipe);
        for (w = 1; w < started; w++) {
                if (saved && merged[w] && write(go[w], "w", 1) != 1)
                        r = r < 0 ? r : -EIO;
                close(go[w]);
        }
        sigaction(SIGPIPE, &old_pipe, NULL);
        if (saved) {
                int k = write_hosts(o, hosts, n, done);
                r = r < 0 ? r : k;
        } else
                r = -EIO;
        for (w = 1; w < started; w++) {
                int status = 0;
                while (waitpid(pids[w], &status, 0) < 0 && errno == EINTR)
                        ;
                if (WIFSIGNALED(status)) {
                        _cleanup_free_ char *list = worker_hosts(hosts, n, w, jobs);
                        fprintf(stderr,
                                "imagegen render: worker %zu (%s) was killed by signal %d\n", w + 1,
                                list, WTERMSIG(status));
                }
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        r = r < 0 ? r : -EIO;
        }
out:
        for (size_t i = 0; i < n; i++) {
                site_free(hosts[i]);
                member_list_free(&done[i].l);
        }
        free(hosts);
        free(done);
        return r;
}

/* One server to OUT; a fleet to OUT/<hostname>/ each (or one, --host). */
static int cmd_render(int argc, char **argv)
{
        struct opts o = {0};
        struct env e = {0};
        struct site *s = NULL;
        int r;

        if (parse_opts("render", argc, argv, &o, true, true) < 0)
                return 2;
        r = env_open(&o, &e);
        if (r >= 0)
                r = load_site(&e, &o, o.host, NULL, &s);
        if (r >= 0 && (!s->hosts || o.host)) {
                struct member_list l = {0};
                /* The state (the bundle's serial) is saved before the
                 * bundle is written: see render_fleet(). */
                r = render_site(&e, &o, s, &l);
                if (r >= 0)
                        r = env_save(&e);
                if (r >= 0)
                        r = write_rendered(&o, s, &l, o.out);
                member_list_free(&l);
        } else if (r >= 0)
                r = render_fleet(&e, &o, s);
        site_free(s);
        env_close(&e);
        return r < 0 ? 1 : 0;
}

/* The user-data bytes: gzip'd tar, or its text form. */
static int encode_userdata(const struct member_list *l, bool text, char **ret, size_t *ret_size)
{
        unsigned char *gz = NULL;
        size_t gz_size;
        int r = tar_write_gz(l, &gz, &gz_size);
        if (r < 0)
                return r;
        if (!text) {
                *ret = (char *)gz;
                *ret_size = gz_size;
                return 0;
        }
        _cleanup_free_ char *b64 = NULL;
        r = base64_encode(gz, gz_size, 76, &b64);
        free(gz);
        if (r < 0)
                return r;
        *ret = strprintf("%s\n%s%s", BUNDLE_TEXT_MAGIC, b64,
                         *b64 && b64[strlen(b64) - 1] == '\n' ? "" : "\n");
        *ret_size = strlen(*ret);
        return 0;
}

static void print_sizes(const struct member_list *l)
{
        fprintf(stderr, "  %10s %10s  member\n", "bytes", "gzip'd");
        for (size_t i = 0; i < l->n; i++) {
                struct member_list one = {0};
                unsigned char *gz = NULL;
                size_t gz_size = 0;
                member_list_add(&one, l->v[i].path, l->v[i].data, l->v[i].size, l->v[i].mode);
                tar_write_gz(&one, &gz, &gz_size);
                fprintf(stderr, "  %10zu %10zu  %s\n", l->v[i].size, gz_size, l->v[i].path);
                free(gz);
                member_list_free(&one);
        }
}

static int provider_from(const char *s, enum provider *ret)
{
        static const enum provider all[] = {PROVIDER_HETZNER, PROVIDER_DIGITALOCEAN, PROVIDER_EC2,
                                            PROVIDER_NOCLOUD};
        for (size_t i = 0; i < ARRAY_SIZE(all); i++)
                if (streq(s, provider_name(all[i]))) {
                        *ret = all[i];
                        return 0;
                }
        return -EINVAL;
}

static int cmd_userdata(int argc, char **argv)
{
        struct opts o = {0};
        struct member_list l = {0};
        struct site *s = NULL;
        _cleanup_free_ char *data = NULL;
        size_t size;
        enum provider p = PROVIDER_NOCLOUD; /* --provider's, else the site's (below) */

        if (parse_opts("userdata", argc, argv, &o, true, true) < 0)
                return 2;
        if (o.provider && provider_from(o.provider, &p) < 0) {
                fprintf(stderr,
                        "imagegen userdata: --provider must be one of hetzner, digitalocean, ec2, "
                        "nocloud, not '%s'\n",
                        o.provider);
                return 2;
        }
        if (build(&o, &s, &l) < 0)
                return 1;
        if (!o.provider)
                p = s->provider;
        int r = encode_userdata(&l, !provider_takes_binary(p), &data, &size);
        size_t limit = provider_limit(p);
        if (r >= 0 && limit && size > limit) {
                fprintf(stderr,
                        "imagegen userdata: the user-data for %s is %zu bytes, over its limit of "
                        "%zu by %zu.\nWhat the bundle holds:\n",
                        provider_name(p), size, limit, size - limit);
                print_sizes(&l);
                if (s->ship_modules)
                        fprintf(stderr, "Hint: 'ship_modules: false' leaves the modules out "
                                        "(bake them into the image with `imagegen bake`).\n");
                r = -EFBIG;
        } else if (r >= 0) {
                r = mkdir_parents(o.out, 0755);
                if (r >= 0)
                        r = write_file_atomic(o.out, data, size, 0600, (uid_t)-1, (gid_t)-1);
                if (r < 0)
                        fprintf(stderr, "imagegen userdata: cannot write %s: %s\n", o.out,
                                strerror(-r));
                else if (!o.quiet)
                        printf("%s: %zu bytes of user-data for %s (%s, limit %s%zu)\n", o.out, size,
                               provider_name(p),
                               provider_takes_binary(p) ? "gzip'd tar"
                                                        : "#firstboot-bundle v1 text",
                               limit ? "" : "none, ", limit);
        }
        member_list_free(&l);
        site_free(s);
        return r < 0 ? 1 : 0;
}

static int cmd_seed(int argc, char **argv)
{
        struct opts o = {0};
        struct member_list l = {0}, iso = {0};
        struct site *s = NULL;
        _cleanup_free_ char *data = NULL, *meta = NULL, *tmp = NULL;
        size_t size;

        if (parse_opts("seed", argc, argv, &o, true, true) < 0)
                return 2;
        if (build(&o, &s, &l) < 0)
                return 1;
        int r = encode_userdata(&l, false, &data, &size);
        meta = strprintf("instance-id: %s\nlocal-hostname: %s\n", s->instance_id, s->hostname);
        member_list_add(&iso, "user-data", data, size, 0644);
        member_list_add(&iso, "meta-data", meta, strlen(meta), 0644);
        _cleanup_free_ char *netcfg = strprintf("%s/network-config", s->dir);
        _cleanup_free_ char *net = NULL;
        size_t net_size;
        if (read_file(netcfg, 1024 * 1024, &net, &net_size) >= 0)
                member_list_add(&iso, "network-config", net, net_size, 0644);
        tmp = strprintf("%s.imagegen-tmp.%d", o.out, (int)getpid());
        if (r >= 0)
                r = mkdir_parents(o.out, 0755);
        if (r >= 0)
                r = iso_write(tmp, "cidata", &iso);
        if (r >= 0 && rename(tmp, o.out) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                fprintf(stderr, "imagegen seed: cannot write %s: %s\n", o.out, strerror(-r));
        } else if (!o.quiet)
                printf("%s: NoCloud seed (volume id cidata): instance-id %s, %zu bytes of "
                       "user-data\n",
                       o.out, s->instance_id, size);
        member_list_free(&iso);
        member_list_free(&l);
        site_free(s);
        return r < 0 ? 1 : 0;
}

static int cmd_keygen(int argc, char **argv)
{
        struct opts o = {0};
        _cleanup_free_ char *err = NULL;

        if (parse_opts("keygen", argc, argv, &o, false, true) < 0)
                return 2;
        if (signing_keygen(o.out, &err) < 0) {
                fprintf(stderr, "imagegen keygen: %s\n", err);
                return 1;
        }
        if (!o.quiet)
                printf("%s/signing.key: private key (keep it secret; set signing_key: in "
                       "site.yaml)\n%s/signing.pub: public key (install into images as "
                       "/etc/firstboot/keys/*.pub)\n",
                       o.out, o.out);
        return 0;
}

/* One target per host: each host's user-data, rendered as `render` does
 * (a fleet's hosts loaded first, so that their new secrets are saved
 * before any bundle carries them). */
static int push_targets(const struct opts *o, struct push_target **ret, size_t *ret_n,
                        char ***ret_data, bool *ret_usage)
{
        struct env e = {0};
        struct site *s = NULL;
        struct site **hosts = NULL;
        size_t n = 0;
        int r = env_open(o, &e);
        if (r >= 0)
                r = load_site(&e, o, o->host, NULL, &s);
        if (r >= 0 && s->hosts && !o->host && o->dest) {
                fprintf(stderr,
                        "imagegen push: %s lists hosts: it pushes to each host's hostname; "
                        "pick one with --host to give its address\n",
                        o->site);
                *ret_usage = true;
                r = -EINVAL;
                goto out;
        }
        if (r >= 0) {
                n = s->hosts && !o->host ? strv_length(s->hosts) : 1;
                hosts = xcalloc(n, sizeof(*hosts));
        }
        if (r >= 0 && n == 1) {
                hosts[0] = s;
                s = NULL;
        }
        for (size_t i = 0; r >= 0 && n > 1 && i < n; i++)
                r = load_site(&e, o, s->hosts[i], s, &hosts[i]);
        if (r >= 0)
                r = env_save(&e);
        struct push_target *t = xcalloc(n + 1, sizeof(*t));
        char **data = xcalloc(2 * n + 1, sizeof(char *));
        for (size_t i = 0; r >= 0 && i < n; i++) {
                struct member_list l = {0};
                size_t size = 0;
                r = render_site(&e, o, hosts[i], &l);
                if (r >= 0 && (r = encode_userdata(&l, false, &data[2 * i], &size)) < 0)
                        fprintf(stderr, "imagegen push: cannot encode the user-data: %s\n",
                                strerror(-r));
                member_list_free(&l);
                data[2 * i + 1] = xstrdup(hosts[i]->hostname);
                t[i] = (struct push_target){.name = data[2 * i + 1],
                                            .dest = o->dest ? o->dest : data[2 * i + 1],
                                            .data = data[2 * i],
                                            .size = size};
        }
        if (r >= 0 && env_save(&e) < 0)
                r = -EIO;
        if (r < 0) {
                free(t);
                for (size_t i = 0; i < 2 * n; i++)
                        free(data[i]);
                free(data);
        } else {
                *ret = t;
                *ret_n = n;
                *ret_data = data;
        }
out:
        for (size_t i = 0; hosts && i < n; i++)
                site_free(hosts[i]);
        free(hosts);
        site_free(s);
        env_close(&e);
        return r;
}

/* imagegen push SITE.yaml [HOST]: see push.h. */
static int cmd_push(int argc, char **argv)
{
        struct opts o = {0};
        struct push_target *t = NULL;
        size_t n = 0;
        char **data = NULL;
        bool usage_error = false;
        int r;

        if (parse_opts("push", argc, argv, &o, true, false) < 0) {
                strv_free(o.ssh_options);
                return 2;
        }
        struct push_options po = {.ssh_options = o.ssh_options,
                                  .firstboot = o.firstboot_cmd,
                                  .plan_only = o.plan_only,
                                  .quiet = o.quiet,
                                  .jobs = o.jobs};
        r = push_targets(&o, &t, &n, &data, &usage_error);
        if (r >= 0)
                r = push_run(t, n, &po);
        else
                r = usage_error ? 2 : 1;
        free(t);
        strv_free(data);
        strv_free(o.ssh_options);
        return r;
}

int main(int argc, char **argv)
{
        static const struct {
                const char *name;
                int (*fn)(int, char **);
        } cmds[] = {
                {"init", cmd_init},         {"validate", cmd_validate}, {"render", cmd_render},
                {"userdata", cmd_userdata}, {"seed", cmd_seed},         {"keygen", cmd_keygen},
                {"bake", cmd_bake},         {"job", cmd_job},           {"push", cmd_push},
        };

        if (argc < 2)
                return usage(stderr, 2);
        if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help"))
                return usage(stdout, 0);
        if (streq(argv[1], "--version")) {
                puts("imagegen " FIRSTBOOT_VERSION);
                return 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
                if (streq(argv[1], cmds[i].name))
                        return cmds[i].fn(argc - 1, argv + 1);
        fprintf(stderr, "imagegen: unknown command '%s'\n", argv[1]);
        return usage(stderr, 2);
}
