/* What ties an installed system to one server, and how it is reset for
 * image baking. `firstboot clean` and `imagegen bake` share this, so a
 * baked image and a cleaned server forget exactly the same things. */
#pragma once

#include <stdbool.h>

#include "config.h"

/* systemd's first-boot semantics (machine-id(5)): "uninitialized" makes
 * systemd generate a new machine id at boot and treat it as the first. */
#define RESET_MACHINE_ID_PATH    "/etc/machine-id"
#define RESET_MACHINE_ID_CONTENT "uninitialized\n"

/* firstboot's own per-server paths under c, absolute, as on the server:
 * the ready marker and the state directory (instance state, done-marks,
 * status.json, the unpacked bundle), and with logs the log directory. */
int reset_paths(const struct config *c, bool logs, char ***ret);
