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

R=${FIRSTBOOT_ROOT:-/}
R=${R%/}
unit=firstboot-agent.service
die() {
	echo "jobs-agent: $2" >&2
	exit "$1"
}

found=
for d in /etc/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
	if [ -f "$R$d/$unit" ]; then found=$d; fi
done
[ -n "$found" ] || die 3 "$unit is not installed in this system (the firstboot package and imagegen bake install it)"
[ -f "$R/etc/firstboot/jobs.secret" ] || die 3 "/etc/firstboot/jobs.secret is missing: the agent would not start"

if [ -z "$R" ]; then
	systemctl enable "$unit" || die 3 "systemctl enable $unit failed"
	if [ -d /run/systemd/system ]; then
		systemctl --no-block start "$unit" || die 3 "systemctl --no-block start $unit failed"
		echo "jobs-agent: $unit enabled and queued to start after firstboot.service"
	else
		echo "jobs-agent: $unit enabled (systemd is not running: it starts at the next boot)"
	fi
else
	systemctl --root="$R" enable "$unit" || die 3 "systemctl --root=$R enable $unit failed"
	echo "jobs-agent: $unit enabled under $R"
fi
