/* firstboot clean: forget this machine's provisioning, for image baking
 * (imagegen bake runs the same code on a root directory). */
#include "commands.h"
#include "config.h"
#include "fs.h"
#include "log.h"
#include "reset.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/file.h>

/* Writes path inside the root (its directories made), or logs why not. */
static int put_file(int rootfd, const char *root, const char *path, const char *content,
                    mode_t mode)
{
        _cleanup_free_ char *full = root_path(root, path);
        int r = root_write_file(rootfd, path, 0755, content, strlen(content), mode, (uid_t)-1,
                                (gid_t)-1, 0);
        if (r < 0)
                log_error_errno(r, "Failed to write %s: %m", full);
        return r;
}

int cmd_clean(int argc, char **argv)
{
        static const struct option opts[] = {
                {"root", required_argument, NULL, 'r'},
                {"logs", no_argument, NULL, 'l'},
                {"machine-id", no_argument, NULL, 'm'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *root = NULL;
        bool logs = false, machine_id = false;
        struct config c;
        struct diags d = {0};
        _cleanup_close_ int rootfd = -1;
        int opt, r;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (opt) {
                case 'r':
                        root = optarg;
                        break;
                case 'l':
                        logs = true;
                        break;
                case 'm':
                        machine_id = true;
                        break;
                case 'h':
                        printf("Usage: firstboot clean [--root DIR] [--logs] [--machine-id]\n\n"
                               "Removes firstboot's state and ready marker so the next boot\n"
                               "provisions again; --logs also its log files; --machine-id resets\n"
                               "/etc/machine-id to 'uninitialized' (systemd's first boot) and\n"
                               "adds a preset fallback so that boot enables no disabled unit.\n");
                        return 0;
                default:
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "firstboot clean: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        rootfd = root_open_dir(root);
        if (rootfd < 0)
                return log_error_errno(rootfd, "--root %s: %m", root ? root : "/"), 1;
        _cleanup_free_ char *conf = root_path(root, CONFIG_DEFAULT_PATH);
        if (config_load_root(rootfd, conf, &c, &d) < 0) {
                diags_print(&d, stderr);
                diags_free(&d);
                return 1;
        }
        _cleanup_free_ char *state = root_path(root, c.state_dir);
        _cleanup_free_ char *lock = strprintf("%s/run.lock", state);
        _cleanup_free_ char *lock_rel = strprintf("%s/run.lock", c.state_dir);
        _cleanup_strv_free_ char **paths = NULL;
        r = reset_paths(&c, logs, &paths);
        config_free(&c);
        if (r < 0)
                return log_error_errno(r, "Failed to clean: %m"), 1;

        _cleanup_close_ int fd = root_open(rootfd, lock_rel, O_RDWR | O_NOFOLLOW, 0);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
                log_error("A firstboot run is in progress (it holds %s); not cleaning", lock);
                return 1;
        }
        for (char **p = paths; *p; p++) {
                _cleanup_free_ char *full = root_path(root, *p);
                r = root_rm_rf(rootfd, *p);
                if (r < 0)
                        return log_error_errno(r, "Failed to clean %s: %m", full), 1;
        }
        if (machine_id) {
                r = put_file(rootfd, root, RESET_MACHINE_ID_PATH, RESET_MACHINE_ID_CONTENT, 0444);
                _cleanup_close_ int sd = root_open(rootfd, RESET_PRESET_IF, O_PATH, 0);
                if (r >= 0 && sd >= 0)
                        r = put_file(rootfd, root, RESET_PRESET_PATH, RESET_PRESET_CONTENT, 0644);
                if (r < 0)
                        return 1;
        }
        log_info("Cleaned %s%s%s", state, logs ? " and the logs" : "",
                 machine_id ? " and the machine id" : "");
        return 0;
}
