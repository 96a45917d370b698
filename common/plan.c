#include "plan.h"
#include "fs.h"
#include "util.h"

#include <errno.h>
#include <strings.h>
#include <sys/statvfs.h>

#define OS_RELEASE_MAX (64 * 1024)
#define MEMINFO_MAX    (1024 * 1024)

static ssize_t find_item(const struct plan_item *items, size_t n, const char *id)
{
        for (size_t i = 0; i < n; i++)
                if (streq(items[i].id, id))
                        return (ssize_t)i;
        return -1;
}

/* Whether every present dependency of item i is already placed. */
static bool is_ready(const struct plan_item *items, size_t n, size_t i, const bool *placed)
{
        char *const *lists[] = {items[i].after, items[i].requires};

        for (size_t l = 0; l < ARRAY_SIZE(lists); l++)
                for (size_t k = 0; lists[l] && lists[l][k]; k++) {
                        ssize_t j = find_item(items, n, lists[l][k]);
                        if (j >= 0 && !placed[j])
                                return false;
                }
        return true;
}

/* The first present dependency of i that is not placed yet. */
static ssize_t first_waiting(const struct plan_item *items, size_t n, size_t i, const bool *placed)
{
        char *const *lists[] = {items[i].after, items[i].requires};

        for (size_t l = 0; l < ARRAY_SIZE(lists); l++)
                for (size_t k = 0; lists[l] && lists[l][k]; k++) {
                        ssize_t j = find_item(items, n, lists[l][k]);
                        if (j >= 0 && !placed[j])
                                return j;
                }
        return -1;
}

/* Called when nothing unplaced is ready: every unplaced item waits for
 * another unplaced one, so walking from any of them must come back to an
 * item already seen. The cycle is told starting at its first listed item,
 * whose index goes to *ret_first. */
static char *describe_cycle(const struct plan_item *items, size_t n, const bool *placed,
                            size_t *ret_first)
{
        _cleanup_free_ size_t *seen_at = xcalloc(n, sizeof(size_t));
        _cleanup_free_ size_t *path = xcalloc(n + 1, sizeof(size_t));
        size_t len = 0, cur = 0;
        struct buf b = {0};

        while (placed[cur])
                cur++;
        /* seen_at[i] is 1 + the position of i on the path, 0 when not on it. */
        while (!seen_at[cur]) {
                seen_at[cur] = ++len;
                path[len - 1] = cur;
                ssize_t next = first_waiting(items, n, cur, placed);
                if (next < 0) { /* cannot happen: cur would be ready */
                        *ret_first = cur;
                        return xstrdup("dependency cycle");
                }
                cur = (size_t)next;
        }
        size_t first = seen_at[cur] - 1, start = first;
        for (size_t k = first; k < len; k++)
                if (path[k] < path[start])
                        start = k;
        size_t cycle_len = len - first;
        *ret_first = path[start];
        buf_puts(&b, "dependency cycle: ");
        for (size_t k = 0; k <= cycle_len; k++) {
                size_t pos = first + (start - first + k) % cycle_len;
                buf_printf(&b, "%s%s", k ? " -> " : "", items[path[pos]].id);
        }
        if (!b.data)
                abort();
        return buf_steal(&b);
}

int plan_order(const struct plan_item *items, size_t n, size_t *ret_order, char **ret_error,
               size_t *ret_item)
{
        _cleanup_free_ bool *placed = NULL;
        _cleanup_free_ size_t *order = NULL;
        size_t item;

        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < i; j++)
                        if (streq(items[i].id, items[j].id)) {
                                *ret_error = strprintf("module '%s' is listed twice", items[i].id);
                                if (ret_item)
                                        *ret_item = i;
                                return -EINVAL;
                        }
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; items[i].requires && items[i].requires[k]; k++)
                        if (find_item(items, n, items[i].requires[k]) < 0) {
                                *ret_error = strprintf(
                                        "module '%s' requires '%s', which is not in the plan",
                                        items[i].id, items[i].requires[k]);
                                if (ret_item)
                                        *ret_item = i;
                                return -ENOENT;
                        }

        placed = xcalloc(n + 1, sizeof(bool));
        order = xcalloc(n + 1, sizeof(size_t));
        for (size_t done = 0; done < n; done++) {
                size_t i;
                for (i = 0; i < n; i++)
                        if (!placed[i] && is_ready(items, n, i, placed))
                                break;
                if (i == n) {
                        *ret_error = describe_cycle(items, n, placed, &item);
                        if (ret_item)
                                *ret_item = item;
                        return -ELOOP;
                }
                placed[i] = true;
                order[done] = i;
        }
        if (n > 0)
                memcpy(ret_order, order, n * sizeof(size_t));
        return 0;
}

/* The value of key in os-release text, unquoted (os-release(5): shell-like
 * assignments, values in double or single quotes or bare). */
static char *os_release_get(const char *text, const char *key)
{
        size_t klen = strlen(key);

        for (const char *line = text; line && *line;) {
                const char *end = strchr(line, '\n');
                size_t len = end ? (size_t)(end - line) : strlen(line);
                while (len > 0 && (*line == ' ' || *line == '\t')) {
                        line++;
                        len--;
                }
                if (len > klen && strncmp(line, key, klen) == 0 && line[klen] == '=') {
                        const char *v = line + klen + 1;
                        size_t vlen = len - klen - 1;
                        struct buf b = {0};
                        char q = 0;
                        while (vlen > 0 &&
                               (v[vlen - 1] == ' ' || v[vlen - 1] == '\t' || v[vlen - 1] == '\r'))
                                vlen--;
                        for (size_t i = 0; i < vlen; i++) {
                                char c = v[i];
                                if (!q && (c == '"' || c == '\'')) {
                                        q = c;
                                        continue;
                                }
                                if (q && c == q) {
                                        q = 0;
                                        continue;
                                }
                                if (q != '\'' && c == '\\' && i + 1 < vlen) {
                                        c = v[++i];
                                }
                                buf_append(&b, &c, 1);
                        }
                        buf_puts(&b, "");
                        if (!b.data)
                                abort();
                        return buf_steal(&b);
                }
                line = end ? end + 1 : NULL;
        }
        return NULL;
}

static bool version_is_valid(const char *s)
{
        for (;;) {
                size_t n = strspn(s, "0123456789");
                if (n == 0)
                        return false;
                s += n;
                if (!*s)
                        return true;
                if (*s++ != '.')
                        return false;
        }
}

/* Compares dotted decimal versions component by component, as numbers of
 * any length; missing components count as 0 ("12" == "12.0"). Returns
 * -EINVAL when either is not of that form. */
static int version_compare(const char *a, const char *b, int *ret)
{
        if (!version_is_valid(a) || !version_is_valid(b))
                return -EINVAL;
        while (*a || *b) {
                size_t la = strspn(a, "0123456789"), lb = strspn(b, "0123456789");
                const char *pa = a, *pb = b;
                size_t na = la, nb = lb;
                int c;
                while (na > 0 && *pa == '0') {
                        pa++;
                        na--;
                }
                while (nb > 0 && *pb == '0') {
                        pb++;
                        nb--;
                }
                if (na != nb)
                        c = na < nb ? -1 : 1;
                else
                        c = strncmp(pa, pb, na);
                if (c != 0) {
                        *ret = c < 0 ? -1 : 1;
                        return 0;
                }
                a += la + (a[la] == '.');
                b += lb + (b[lb] == '.');
        }
        *ret = 0;
        return 0;
}

int plan_check_os(const char *root, const struct manifest_os *os, size_t n_os, char **ret_error)
{
        static const char *const paths[] = {"/etc/os-release", "/usr/lib/os-release"};
        _cleanup_free_ char *text = NULL, *id = NULL, *like = NULL, *version = NULL;
        _cleanup_free_ char *want = NULL, *have = NULL;
        const struct manifest_os *match = NULL;
        int r = -ENOENT, cmp;

        if (n_os == 0)
                return 0;
        for (size_t i = 0; i < ARRAY_SIZE(paths) && r == -ENOENT; i++) {
                _cleanup_free_ char *p = root_path(root, paths[i]);
                if (!p)
                        return -ENOMEM;
                r = read_file(p, OS_RELEASE_MAX, &text, NULL);
        }
        if (r == -ENOENT) {
                *ret_error = strprintf("cannot check os_requirements: no /etc/os-release%s%s",
                                       root ? " in " : "", root ? root : "");
                return -ENOENT;
        }
        if (r < 0) {
                *ret_error = strprintf("cannot check os_requirements: reading os-release: %s",
                                       strerror(-r));
                return r;
        }
        id = os_release_get(text, "ID");
        like = os_release_get(text, "ID_LIKE");
        version = os_release_get(text, "VERSION_ID");

        want = manifest_os_describe(os, n_os);
        have = strprintf("%s%s%s", id && *id ? id : "an unknown system",
                         version && *version ? " " : "", version ? version : "");
        if (!want || !have)
                return -ENOMEM;

        for (size_t i = 0; i < n_os && id && !match; i++)
                if (strcasecmp(id, os[i].family) == 0)
                        match = &os[i];
        for (const char *p = like; p && *p && !match;) {
                p += strspn(p, " \t");
                size_t len = strcspn(p, " \t");
                for (size_t i = 0; i < n_os && len > 0 && !match; i++)
                        if (strlen(os[i].family) == len && strncasecmp(p, os[i].family, len) == 0)
                                match = &os[i];
                p += len;
        }
        if (!match) {
                *ret_error = strprintf("requires %s, this is %s", want, have);
                return -ERANGE;
        }
        const char *min_version = match->min_version;
        if (!min_version)
                return 0;
        if (!version || !*version) {
                *ret_error = strprintf("requires %s, this is %s without a VERSION_ID in os-release",
                                       want, have);
                return -ERANGE;
        }
        if (version_compare(version, min_version, &cmp) < 0) {
                *ret_error = strprintf("requires %s, this is %s, a version that cannot be "
                                       "compared",
                                       want, have);
                return -ERANGE;
        }
        if (cmp < 0) {
                *ret_error = strprintf("requires %s, this is %s", want, have);
                return -ERANGE;
        }
        return 0;
}

/* MemTotal from a meminfo file, in kB. */
static int meminfo_total_kb(const char *path, long long *ret)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_file(path, MEMINFO_MAX, &text, NULL);
        if (r < 0)
                return r;
        for (const char *line = text; line && *line;) {
                if (startswith(line, "MemTotal:")) {
                        const char *p = line + strlen("MemTotal:");
                        char *end;
                        p += strspn(p, " \t");
                        if (*p < '0' || *p > '9')
                                return -EBADMSG;
                        errno = 0;
                        long long kb = strtoll(p, &end, 10);
                        if (errno || end == p)
                                return -EBADMSG;
                        *ret = kb;
                        return 0;
                }
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        return -EBADMSG;
}

int plan_check_resources(const char *root, const char *meminfo_path, long long min_ram_mb,
                         long long min_disk_mb, char **ret_error)
{
        const char *mi = meminfo_path ? meminfo_path : "/proc/meminfo";
        const char *dir = root && *root ? root : "/";
        int r;

        if (min_ram_mb > 0) {
                long long kb;
                r = meminfo_total_kb(mi, &kb);
                if (r < 0) {
                        *ret_error = strprintf("cannot check min_ram_mb: no MemTotal in %s: %s", mi,
                                               strerror(-r));
                        return r;
                }
                if (kb / 1024 < min_ram_mb) {
                        *ret_error = strprintf("requires %lld MB of RAM, this machine has %lld MB",
                                               min_ram_mb, kb / 1024);
                        return -ERANGE;
                }
        }
        if (min_disk_mb > 0) {
                struct statvfs st;
                if (statvfs(dir, &st) < 0) {
                        r = -errno;
                        *ret_error = strprintf("cannot check min_disk_mb: statvfs %s: %s", dir,
                                               strerror(-r));
                        return r;
                }
                unsigned long long mb =
                        (unsigned long long)st.f_bavail * st.f_frsize / (1024ULL * 1024ULL);
                if (mb < (unsigned long long)min_disk_mb) {
                        *ret_error = strprintf("requires %lld MB of free disk space on %s, "
                                               "there are %llu MB",
                                               min_disk_mb, dir, mb);
                        return -ERANGE;
                }
        }
        return 0;
}
