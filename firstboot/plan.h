/* Putting modules in run order, and checking the host against their
 * os_requirements and resource_requirements before anything runs. None of
 * these functions logs: a problem comes back as one sentence in
 * *ret_error (to be freed), which is written only on failure. */
#pragma once

#include <stddef.h>

struct plan_item {
        const char *id;
        char *const *after;    /* strv, maybe NULL */
        char *const *requires; /* strv, maybe NULL */
};

/* Fills ret_order (n indices) with a topological order: every item after
 * its `after` and `requires` items that are present; among items ready at
 * the same time, the listing order wins (stable). An `after` naming an
 * absent module is ignored (soft ordering, like systemd's After=). Errors:
 * -EINVAL "module 'x' is listed twice"; -ENOENT "module 'x' requires 'y',
 * which is not in the plan"; -ELOOP "dependency cycle: a -> b -> a" (where
 * "a -> b" means a waits for b, starting at the first listed module of the
 * cycle). ret_order is written only on success; on failure *ret_item (when
 * not NULL) is the index of the item the error is about: the second
 * listing, the item with the missing requirement, the cycle's first listed
 * item. */
int plan_order(const struct plan_item *items, size_t n, size_t *ret_order, char **ret_error,
               size_t *ret_item);

/* Checks os_requirements against <root>/etc/os-release (or
 * <root>/usr/lib/os-release): family matches ID or a word of ID_LIKE
 * (case-insensitive), min_version compares numerically dot by dot with
 * VERSION_ID ("12" >= "11.4"). NULL family and min_version check nothing.
 * Returns 0, -ERANGE when this is not the system required ("requires
 * debian >= 13, this is debian 12"), -ENOENT when there is no os-release,
 * or another negative errno. */
int plan_check_os(const char *root, const char *family, const char *min_version, char **ret_error);

/* Checks min_ram_mb against MemTotal in meminfo_path (NULL for
 * /proc/meminfo: the running machine, whatever the root) and min_disk_mb
 * against the space available to unprivileged users on the file system of
 * root (NULL for /). 0 means no requirement. Returns 0, -ERANGE when the
 * machine is too small, or another negative errno. */
int plan_check_resources(const char *root, const char *meminfo_path, long long min_ram_mb,
                         long long min_disk_mb, char **ret_error);
