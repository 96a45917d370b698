/* Putting modules in run order, and checking the host against their
 * os_requirements and resource_requirements before anything runs. None of
 * these functions logs: a problem comes back as one sentence in
 * *ret_error (to be freed), which is written only on failure. */
#pragma once

#include <stddef.h>

#include "manifest.h"

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

/* Checks os_requirements (os, n_os families; none checks nothing) against
 * <root>/etc/os-release (or <root>/usr/lib/os-release). The system's family
 * is its ID when that is listed, else the first word of ID_LIKE (closest
 * first, as os-release(5) orders them) that is listed; case does not
 * matter. That family's min_version, if any, is compared numerically dot
 * by dot with VERSION_ID ("12" >= "11.4"); a derivative matched through
 * ID_LIKE is compared with its own VERSION_ID. Returns 0, -ERANGE when
 * this is not a system required ("requires ubuntu >= 20.04 or debian,
 * this is ubuntu 18.04"), -ENOENT when there is no os-release, or another
 * negative errno. */
int plan_check_os(const char *root, const struct manifest_os *os, size_t n_os, char **ret_error);

/* Checks min_ram_mb against MemTotal in meminfo_path (NULL for
 * /proc/meminfo: the running machine, whatever the root) and min_disk_mb
 * against the space available to unprivileged users on the file system of
 * root (NULL for /). 0 means no requirement. Returns 0, -ERANGE when the
 * machine is too small, or another negative errno. */
int plan_check_resources(const char *root, const char *meminfo_path, long long min_ram_mb,
                         long long min_disk_mb, char **ret_error);
