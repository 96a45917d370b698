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
secret=$ROOT_FILE

# The agent reads its secret and its settings once, at start (SIGHUP
# rereads only the modules' manifests): a checksum of the two files the
# bundle ships for it tells a changed one, which needs a restart.
sum=$(
	cat "$secret"
	in_root "$R/etc/firstboot/firstboot.conf.d/50-site-jobs.conf" && [ -f "$IN_ROOT" ] && cat "$IN_ROOT"
	true
)
sum=$(sha256sum <<<"$sum" | cut -d' ' -f1)
read_state jobs-agent.sha256
old_sum=$STATE_VALUE
# No checksum recorded (the first run of this module's version, or of the
# module) counts as changed: an agent already running may hold another
# secret, and try-restart touches only one that runs.
changed=0
[ "$sum" = "$old_sum" ] || changed=1

if [ -z "$R" ]; then
	systemctl enable "$unit" || die 3 "systemctl enable $unit failed"
	if [ ! -d /run/systemd/system ]; then
		say "$unit enabled (systemd is not running: it starts at the next boot)"
	elif [ $changed = 1 ] && systemctl is-active --quiet "$unit"; then
		# try-restart: only when it runs (systemctl(1)); --no-block for the
		# same reason as start.
		systemctl --no-block try-restart "$unit" || die 3 "systemctl --no-block try-restart $unit failed"
		say "its secret or settings changed: $unit restart queued"
	else
		systemctl --no-block start "$unit" || die 3 "systemctl --no-block start $unit failed"
		say "$unit enabled and queued to start after firstboot.service"
	fi
else
	systemctl --root="$R" enable "$unit" || die 3 "systemctl --root=$R enable $unit failed"
	say "$unit enabled under $R"
	if [ $changed = 1 ] && [ -n "$old_sum" ]; then
		say "its secret or settings changed: restart $unit where it runs (nothing runs under $R)"
	elif [ $changed = 1 ]; then
		say "no checksum of its secret and settings recorded: restart $unit where it already runs (nothing runs under $R)"
	fi
fi
record_state jobs-agent.sha256 "$sum"
