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

/* On that first boot systemd applies the unit presets to every unit (the
 * "enable" lines; systemd 252's default). Debian ships no "disable *"
 * fallback, so every installed unit with an [Install] section would be
 * enabled: ssh.socket beside ssh.service (sshd then cannot bind port 22 on
 * its next reload), timers the image builder removed. This fallback, last
 * in order, keeps the units as they were when the machine id was reset;
 * the distribution's own preset lines still come first. Written with the
 * machine id where systemd is installed. */
#define RESET_PRESET_PATH "/etc/systemd/system-preset/99-firstboot-image.preset"
#define RESET_PRESET_CONTENT                                                                       \
        "# firstboot: the first boot of this image applies presets (its machine id\n"              \
        "# was reset); units stay enabled or disabled as they were then.\n"                        \
        "disable *\n"
#define RESET_PRESET_IF "/usr/lib/systemd/systemd"

/* firstboot's own per-server paths under c, absolute, as on the server:
 * the ready marker and the state directory (instance state, done-marks,
 * status.json, the unpacked bundle), and with logs the log directory. */
int reset_paths(const struct config *c, bool logs, char ***ret);
