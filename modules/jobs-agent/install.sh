#!/bin/bash
# jobs-agent: enables firstboot-agent.service the way `systemctl enable`
# does (the link its [Install] WantedBy= asks for). Under the module
# contract: every file under $FIRSTBOOT_ROOT, commands from PATH. On /
# with systemd running the agent is also started with --no-block: it is
# After=firstboot.service, whose run is this module, so a blocking start
# would wait for itself. Under another root `systemctl --root=DIR enable`
# works on the files only (systemctl(1)). Exit 3: the unit or the agent's
# configuration is missing, or systemctl refused.
set -euo pipefail

FB_PREFIX="jobs-agent: "
# The helpers the stack modules share (die, say, in_root, root_file, ...),
# from modules/_lib/ beside this module's folder; without them, nothing runs.
fb_lib=$(dirname -- "${BASH_SOURCE[0]:-.}")/../_lib/firstboot-module.sh
[ -f "$fb_lib" ] || { echo "$fb_lib is missing: ship modules/_lib/ with the modules" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=../_lib/firstboot-module.sh
. "$fb_lib"
unit=firstboot-agent.service

# Looked for inside the root: a link there out of it is not the image's.
found=
for d in /etc/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
	in_root "$R$d/$unit" || continue
	if [ -f "$IN_ROOT" ]; then found=$d; fi
done
[ -n "$found" ] || die 3 "$unit is not installed in this system (the firstboot package and imagegen bake install it)"
root_file "$R/etc/firstboot/jobs.secret" || die 3 "/etc/firstboot/jobs.secret is missing: the agent would not start"

if [ -z "$R" ]; then
	systemctl enable "$unit" || die 3 "systemctl enable $unit failed"
	if [ -d /run/systemd/system ]; then
		systemctl --no-block start "$unit" || die 3 "systemctl --no-block start $unit failed"
		say "$unit enabled and queued to start after firstboot.service"
	else
		say "$unit enabled (systemd is not running: it starts at the next boot)"
	fi
else
	systemctl --root="$R" enable "$unit" || die 3 "systemctl --root=$R enable $unit failed"
	say "$unit enabled under $R"
fi
