/* SSH host key fingerprints and interface addresses for the callback. */
#include <errno.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fs.h"
#include "json.h"
#include "util.h"
#include "../../firstboot/facts.h"
#include "tap.h"

/* Known vectors: public keys with the fingerprints `ssh-keygen -lf` printed
 * for them (and base64(sha256(blob)) agrees). */
#define ED25519_LINE                                                                               \
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM+NcsksBHMdFwmBTJpXlVpyGbNhO4kiGgWlwlwEILPX "        \
        "root@fixed\n"
#define ED25519_FP "SHA256:i3KG/cukxBIxAIdRsVO6SrRD8rG3Jckh7MN4DG/q5G8"
#define ECDSA_LINE                                                                                 \
        "ecdsa-sha2-nistp256 "                                                                     \
        "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBE6chWYPfGCRXNtpNyJd7x7n4MKObzP4znR8" \
        "lCZU0OAnnUmUoFQ+FEqz0erJXG+RzXWyaLujEi8SkkUM/0fUdwE= root@fixed\n"
#define ECDSA_FP "SHA256:r5mwTWRy2SkmfCSi2CcCJHOfFRk345WYE+9Akexy7Xs"

static char *make_tmpdir(void)
{
        const char *base = getenv("TESTTMP");
        char *t = strprintf("%s/test-facts.XXXXXX", base && *base ? base : "/tmp");
        if (!t || !mkdtemp(t))
                abort();
        return t;
}

static void put(const char *root, const char *path, const char *text)
{
        _cleanup_free_ char *p = root_path(root, path);
        CHECK(mkdir_parents(p, 0755) >= 0);
        CHECK(write_file_atomic(p, text, strlen(text), 0644, (uid_t)-1, (gid_t)-1) >= 0);
}

/* Runs argv (looked up in PATH) and returns its exit status, its standard
 * output in *ret_out; -1 when it could not be run. */
static int run_capture(char *const argv[], char **ret_out)
{
        int pipefd[2];
        struct buf out = {0};
        int status;

        *ret_out = NULL;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -1;
        pid_t pid = fork();
        if (pid < 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return -1;
        }
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (dup2(pipefd[1], STDOUT_FILENO) < 0 || devnull < 0 ||
                    dup2(devnull, STDERR_FILENO) < 0 || dup2(devnull, STDIN_FILENO) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(pipefd[1]);
        for (;;) {
                char chunk[4096];
                ssize_t n = read(pipefd[0], chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                if (buf_append(&out, chunk, (size_t)n) < 0)
                        abort();
        }
        close(pipefd[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        *ret_out = buf_steal(&out);
        if (!*ret_out)
                *ret_out = xstrdup("");
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The second field of `ssh-keygen -lf path`, or NULL when ssh-keygen is
 * not there or fails. */
static char *ssh_keygen_fingerprint(const char *path)
{
        char *argv[] = {(char *)"ssh-keygen", (char *)"-lf", (char *)path, NULL};
        _cleanup_free_ char *out = NULL;

        if (run_capture(argv, &out) != 0)
                return NULL;
        char *fp = strchr(out, ' ');
        if (!fp)
                return NULL;
        fp++;
        return xstrndup(fp, strcspn(fp, " \n"));
}

static bool have_ssh_keygen(void)
{
        char *argv[] = {(char *)"ssh-keygen", (char *)"-?", NULL};
        _cleanup_free_ char *out = NULL;
        /* It prints usage and exits 1; 127 means it could not be run. */
        int r = run_capture(argv, &out);
        return r >= 0 && r != 127;
}

static void check_entry(const struct node *e, const char *type, const char *fp, const char *file)
{
        CHECK(e && e->kind == NODE_MAP);
        if (!e)
                return;
        CHECK_STREQ(node_get_str(e, "type"), type);
        CHECK_STREQ(node_get_str(e, "fingerprint"), fp);
        CHECK_STREQ(node_get_str(e, "file"), file);
}

TEST(host_keys_known_vectors)
{
        _cleanup_free_ char *root = make_tmpdir();
        _cleanup_node_ struct node *keys = NULL;

        put(root, "/etc/ssh/ssh_host_ed25519_key.pub", ED25519_LINE);
        /* Blank and comment lines before the key are skipped. */
        put(root, "/etc/ssh/ssh_host_ecdsa_key.pub", "\n# host key\n" ECDSA_LINE);
        /* Not public host keys, or not keys at all: left out. */
        put(root, "/etc/ssh/ssh_host_ed25519_key", "-----BEGIN OPENSSH PRIVATE KEY-----\n");
        put(root, "/etc/ssh/sshd_config", "PermitRootLogin no\n");
        put(root, "/etc/ssh/ssh_host_ed25519_key.pub.bak", ED25519_LINE);
        put(root, "/etc/ssh/ssh_host_bogus_key.pub", "not a key\n");
        put(root, "/etc/ssh/ssh_host_empty_key.pub", "");
        _cleanup_free_ char *subdir = root_path(root, "/etc/ssh/ssh_host_dir_key.pub");
        CHECK(mkdir(subdir, 0755) == 0);

        CHECK_INTEQ(facts_ssh_host_keys(root, &keys), 0);
        CHECK(keys && keys->kind == NODE_SEQ);
        if (keys && keys->kind == NODE_SEQ) {
                CHECK_INTEQ(keys->n_items, 2);
                if (keys->n_items == 2) {
                        /* Sorted by file name: "ecdsa" < "ed25519". */
                        check_entry(keys->items[0], "ecdsa-sha2-nistp256", ECDSA_FP,
                                    "/etc/ssh/ssh_host_ecdsa_key.pub");
                        check_entry(keys->items[1], "ssh-ed25519", ED25519_FP,
                                    "/etc/ssh/ssh_host_ed25519_key.pub");
                }
        }

        /* The vectors agree with this machine's ssh-keygen, when it has one. */
        if (have_ssh_keygen()) {
                _cleanup_free_ char *p = root_path(root, "/etc/ssh/ssh_host_ed25519_key.pub");
                _cleanup_free_ char *fp = ssh_keygen_fingerprint(p);
                CHECK_STREQ(fp, ED25519_FP);
        }

        /* It goes into the callback as JSON. */
        _cleanup_free_ char *json = NULL;
        CHECK_INTEQ(json_format(keys, false, &json), 0);
        CHECK(json && strstr(json, "\"fingerprint\":") && strstr(json, ED25519_FP));
        rm_rf(root);
}

TEST(host_keys_generated)
{
        if (!have_ssh_keygen()) {
                printf("# ssh-keygen not found: only the known vectors were checked\n");
                return;
        }
        _cleanup_free_ char *root = make_tmpdir();
        _cleanup_free_ char *ssh = root_path(root, "/etc/ssh");
        _cleanup_node_ struct node *keys = NULL;
        static const char *const types[] = {"ed25519", "ecdsa"};
        char *fps[2] = {NULL, NULL};

        CHECK(mkdir_p(ssh, 0755) >= 0);
        for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
                _cleanup_free_ char *key = strprintf("%s/ssh_host_%s_key", ssh, types[i]);
                _cleanup_free_ char *pub = strprintf("%s.pub", key);
                _cleanup_free_ char *out = NULL;
                char *argv[] = {
                        (char *)"ssh-keygen", (char *)"-q", (char *)"-t", (char *)types[i],
                        (char *)"-N",         (char *)"",   (char *)"-C", (char *)"test@facts",
                        (char *)"-f",         key,          NULL};
                CHECK_INTEQ(run_capture(argv, &out), 0);
                fps[i] = ssh_keygen_fingerprint(pub);
                CHECK(fps[i] && startswith(fps[i], "SHA256:"));
        }

        CHECK_INTEQ(facts_ssh_host_keys(root, &keys), 0);
        CHECK(keys && keys->kind == NODE_SEQ);
        if (keys && keys->kind == NODE_SEQ && keys->n_items == 2 && fps[0] && fps[1]) {
                check_entry(keys->items[0], "ecdsa-sha2-nistp256", fps[1],
                            "/etc/ssh/ssh_host_ecdsa_key.pub");
                check_entry(keys->items[1], "ssh-ed25519", fps[0],
                            "/etc/ssh/ssh_host_ed25519_key.pub");
        } else
                CHECK(keys && keys->n_items == 2);
        free(fps[0]);
        free(fps[1]);
        rm_rf(root);
}

TEST(host_keys_missing_dir)
{
        _cleanup_free_ char *root = make_tmpdir();
        _cleanup_node_ struct node *a = NULL, *b = NULL;
        _cleanup_free_ char *gone = strprintf("%s/does-not-exist", root);

        /* A root without /etc/ssh, and a root that does not exist at all. */
        CHECK_INTEQ(facts_ssh_host_keys(root, &a), 0);
        CHECK(a && a->kind == NODE_SEQ && a->n_items == 0);
        CHECK_INTEQ(facts_ssh_host_keys(gone, &b), 0);
        CHECK(b && b->kind == NODE_SEQ && b->n_items == 0);

        /* An empty sequence is "[]" in the callback, not null. */
        _cleanup_free_ char *json = NULL;
        CHECK_INTEQ(json_format(a, false, &json), 0);
        CHECK_STREQ(json, "[]");
        rm_rf(root);
}

TEST(addresses_shape)
{
        _cleanup_node_ struct node *addrs = NULL;

        CHECK_INTEQ(facts_addresses(&addrs), 0);
        CHECK(addrs && addrs->kind == NODE_SEQ);
        if (!addrs || addrs->kind != NODE_SEQ)
                return;
        for (size_t i = 0; i < addrs->n_items; i++) {
                const struct node *e = addrs->items[i];
                const char *ifname = node_get_str(e, "interface");
                const char *family = node_get_str(e, "family");
                const char *address = node_get_str(e, "address");

                CHECK(e->kind == NODE_MAP && e->n_items == 3);
                CHECK(ifname && *ifname && !streq(ifname, "lo"));
                CHECK(family && (streq(family, "inet") || streq(family, "inet6")));
                CHECK(address && *address);
                if (!family || !address)
                        continue;
                if (streq(family, "inet")) {
                        CHECK(strchr(address, '.') && !startswith(address, "127."));
                } else {
                        CHECK(strchr(address, ':') && !streq(address, "::1"));
                        CHECK(strncasecmp(address, "fe80:", 5) != 0);
                }
        }
        printf("# %zu address(es)\n", addrs->n_items);
}

TAP_MAIN
