#!/bin/bash
# update: installs update_server.sh (rendered by imagegen) as
# firstboot-update.service, and firstboot-update.timer when a schedule is
# given (removed again when it is not). Run by firstboot under the module
# contract. Exit 1 bad input, 3 the script is missing or broken or systemd
# refused the units.
set -euo pipefail
umask 022

FB_PREFIX="update: "
# The helpers the stack modules share (die, say, put_file, ...), from
# modules/_lib/ beside this module's folder; without them, nothing runs.
fb_lib=$(dirname -- "${BASH_SOURCE[0]:-.}")/../_lib/firstboot-module.sh
[ -f "$fb_lib" ] || { echo "$fb_lib is missing: ship modules/_lib/ with the modules" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=../_lib/firstboot-module.sh
. "$fb_lib"

SCRIPT=${SCRIPT:-/usr/local/sbin/update_server.sh}
SCHEDULE=${SCHEDULE:-}

if ! [[ $SCRIPT =~ ^(/[A-Za-z0-9._-]+)+$ ]] || [[ $SCRIPT =~ /\.\.?(/|$) ]]; then
	die 1 "script must be an absolute path"
fi
[[ $SCHEDULE =~ ^[A-Za-z0-9*:/,.\ ~+-]*$ ]] || die 1 "schedule must be a systemd calendar expression like 'Sun *-*-* 04:00:00'"
if [ -n "$SCHEDULE" ] && command -v systemd-analyze >/dev/null; then
	systemd-analyze calendar "$SCHEDULE" >/dev/null 2>&1 || die 1 "schedule '$SCHEDULE' is refused by systemd-analyze calendar"
fi

[ -f "$R$SCRIPT" ] || die 3 "$SCRIPT is missing: render the site with imagegen (update in site.yaml)"
bash -n "$R$SCRIPT" || die 3 "$SCRIPT is not a valid bash script"
[ -x "$R$SCRIPT" ] || set_mode "$R$SCRIPT" 0755

# units_changed: daemon-reload; timer_changed: the timer also restarted
# (so its next elapse is computed from the new OnCalendar). A service that
# changed needs nothing more: a oneshot reads its unit at each start.
units_changed=0 timer_changed=0
put_file "$R/etc/systemd/system/firstboot-update.service" 0644 <<EOF
# Managed by firstboot (module update).
[Unit]
Description=Update the stack: new images or binaries, restarted and checked (update_server.sh)
Wants=network-online.target
After=network-online.target docker.service

[Service]
Type=oneshot
ExecStart=$SCRIPT
UMask=0077
EOF
[ "$FILE_CHANGED" = 1 ] && units_changed=1

timer=$R/etc/systemd/system/firstboot-update.timer
if [ -n "$SCHEDULE" ]; then
	put_file "$timer" 0644 <<EOF
# Managed by firstboot (module update).
[Unit]
Description=Update the stack on schedule

[Timer]
OnCalendar=$SCHEDULE
Persistent=true
RandomizedDelaySec=30min

[Install]
WantedBy=timers.target
EOF
	if [ "$FILE_CHANGED" = 1 ]; then
		units_changed=1
		timer_changed=1
	fi
elif root_entry "$timer" && { [ -e "$ROOT_ENTRY" ] || [ -L "$ROOT_ENTRY" ]; }; then
	if systemctl is-enabled --quiet firstboot-update.timer || systemctl is-active --quiet firstboot-update.timer; then
		systemctl disable --now firstboot-update.timer || die 3 "cannot disable firstboot-update.timer"
	fi
	remove_file "$timer"
	units_changed=1
	say "removed the update timer (no schedule)"
fi

if [ $units_changed = 1 ]; then
	systemctl daemon-reload || die 3 "systemctl daemon-reload failed"
fi
if [ -n "$SCHEDULE" ]; then
	if ! systemctl is-enabled --quiet firstboot-update.timer; then
		systemctl enable firstboot-update.timer || die 3 "cannot enable firstboot-update.timer"
	fi
	if ! systemctl is-active --quiet firstboot-update.timer; then
		systemctl start firstboot-update.timer || die 3 "firstboot-update.timer does not start"
	elif [ $timer_changed = 1 ]; then
		systemctl restart firstboot-update.timer || die 3 "firstboot-update.timer does not restart"
	fi
	say "done: $SCRIPT on '$SCHEDULE' (firstboot-update.timer), or by hand: systemctl start firstboot-update"
else
	say "done: run updates with: systemctl start firstboot-update"
fi
