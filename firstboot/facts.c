/* Host keys and addresses for the controller callback. */
#include "facts.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include "crypto.h"
#include "fs.h"
#include "util.h"

#define MAX_KEY_FILE (64U * 1024U)

static void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

static void freeifaddrsp(struct ifaddrs **p)
{
        if (*p)
                freeifaddrs(*p);
}

static bool is_host_key_name(const char *name)
{
        return fnmatch("ssh_host_*_key.pub", name, FNM_PERIOD) == 0;
}

/* The first line that is neither blank nor a comment, cut at its end and
 * without leading blanks, or NULL. Modifies text. */
static char *first_key_line(char *text)
{
        char *save = NULL;
        for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                l += strspn(l, " \t\r");
                l[strcspn(l, "\r")] = '\0';
                if (*l && *l != '#')
                        return l;
        }
        return NULL;
}

/* One entry for a key file, or 0 with *ret NULL when it holds no key. */
static int host_key_entry(const char *path, const char *file, struct node **ret)
{
        _cleanup_free_ char *text = NULL, *fingerprint = NULL, *type = NULL;
        _cleanup_node_ struct node *m = NULL;
        int r;

        *ret = NULL;
        r = read_file(path, MAX_KEY_FILE, &text, NULL);
        if (r < 0)
                return r;
        char *line = first_key_line(text);
        if (!line)
                return 0;
        type = strndup(line, strcspn(line, " \t"));
        if (!type)
                return -ENOMEM;
        r = ssh_key_fingerprint(line, &fingerprint);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0;

        m = node_new(NODE_MAP);
        if (!m)
                return -ENOMEM;
        if (node_set_str(m, "type", type) < 0 || node_set_str(m, "fingerprint", fingerprint) < 0 ||
            node_set_str(m, "file", file) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(m);
        return 0;
}

int facts_ssh_host_keys(const char *root, struct node **ret)
{
        _cleanup_free_ char *dir = root_path(root, "/etc/ssh");
        _cleanup_(closedirp) DIR *d = NULL;
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_node_ struct node *seq = NULL;
        struct dirent *de;
        int r;

        if (!dir)
                return -ENOMEM;
        seq = node_new(NODE_SEQ);
        if (!seq)
                return -ENOMEM;

        d = opendir(dir);
        if (!d) {
                if (errno != ENOENT)
                        return -errno;
                *ret = TAKE_PTR(seq);
                return 0;
        }
        errno = 0;
        while ((de = readdir(d))) {
                if (is_host_key_name(de->d_name) && strv_extend(&names, de->d_name) < 0)
                        return -ENOMEM;
                errno = 0;
        }
        if (errno != 0)
                return -errno;
        size_t n = strv_length(names);
        if (n > 1)
                strv_sort(names, n);

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = strprintf("%s/%s", dir, names[i]);
                _cleanup_free_ char *file = strprintf("/etc/ssh/%s", names[i]);
                _cleanup_node_ struct node *m = NULL;
                struct stat st;

                if (!path || !file)
                        return -ENOMEM;
                /* Follows links, as sshd does; directories and devices are not keys. */
                if (stat(path, &st) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return -errno;
                }
                if (!S_ISREG(st.st_mode))
                        continue;
                r = host_key_entry(path, file, &m);
                if (r < 0)
                        return r;
                if (m) {
                        /* node_append() owns m from here, even when it fails. */
                        r = node_append(seq, NULL, TAKE_PTR(m));
                        if (r < 0)
                                return r;
                }
        }
        *ret = TAKE_PTR(seq);
        return 0;
}

int facts_addresses(struct node **ret)
{
        _cleanup_(freeifaddrsp) struct ifaddrs *ifs = NULL;
        _cleanup_node_ struct node *seq = NULL;
        int r;

        if (getifaddrs(&ifs) < 0)
                return -errno;
        seq = node_new(NODE_SEQ);
        if (!seq)
                return -ENOMEM;

        for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
                char address[INET6_ADDRSTRLEN];
                const void *a;
                const char *family;

                if (!i->ifa_addr || !i->ifa_name)
                        continue;
                if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
                        continue;
                if (i->ifa_addr->sa_family == AF_INET) {
                        a = &((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr;
                        family = "inet";
                } else if (i->ifa_addr->sa_family == AF_INET6) {
                        const struct in6_addr *a6 =
                                &((const struct sockaddr_in6 *)(const void *)i->ifa_addr)
                                         ->sin6_addr;
                        if (IN6_IS_ADDR_LINKLOCAL(a6))
                                continue;
                        a = a6;
                        family = "inet6";
                } else
                        continue;
                if (!inet_ntop(i->ifa_addr->sa_family, a, address, sizeof(address)))
                        return -errno;

                _cleanup_node_ struct node *m = node_new(NODE_MAP);
                if (!m)
                        return -ENOMEM;
                if (node_set_str(m, "interface", i->ifa_name) < 0 ||
                    node_set_str(m, "family", family) < 0 ||
                    node_set_str(m, "address", address) < 0)
                        return -ENOMEM;
                r = node_append(seq, NULL, TAKE_PTR(m));
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(seq);
        return 0;
}
