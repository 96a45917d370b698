#!/bin/bash
# units/: the service and target pass `systemd-analyze verify` with no
# complaint at all (it exits 0 on ignored lines, so its output must be
# empty), and tmpfiles.d creates the state and log directories private.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

U=$T/units
mkdir -p "$U"
sed "s|/usr/bin/firstboot|$FIRSTBOOT|" "$TOP/units/firstboot.service" >"$U/firstboot.service"
cp "$TOP/units/firstboot-ready.target" "$U/"

t_case "systemd-analyze verify: firstboot.service and firstboot-ready.target"
if systemd-analyze verify --man=no "$U/firstboot.service" "$U/firstboot-ready.target" >"$T/v" 2>&1 &&
	[ ! -s "$T/v" ]; then t_pass; else t_fail "$(cat "$T/v")"; fi

t_case "the service is Type=notify with no start timeout and runs firstboot run"
if grep -qx 'Type=notify' "$TOP/units/firstboot.service" && grep -qx 'TimeoutStartSec=infinity' "$TOP/units/firstboot.service" &&
	grep -qx 'ExecStart=/usr/bin/firstboot run' "$TOP/units/firstboot.service" &&
	grep -q '^Before=.*first-boot-complete.target' "$TOP/units/firstboot.service"; then t_pass; else t_fail "unit keys"; fi

t_case "a broken unit line is caught (the check can fail)"
sed 's/Type=notify/Type=notfy/' "$U/firstboot.service" >"$U/broken.service"
systemd-analyze verify --man=no "$U/broken.service" >"$T/v" 2>&1
if grep -q 'notfy' "$T/v"; then t_pass; else t_fail "no complaint"; fi

t_case "tmpfiles.d creates /var/lib/firstboot and /var/log/firstboot 0700"
R=$T/root
mkdir -p "$R"
if systemd-tmpfiles --create --root="$R" "$TOP/units/firstboot.tmpfiles" 2>"$T/err" &&
	[ "$(stat -c %a "$R/var/lib/firstboot")" = 700 ] && [ "$(stat -c %a "$R/var/log/firstboot")" = 700 ] &&
	[ -d "$R/etc/firstboot/keys" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "firstboot-agent.service: systemd-analyze verify, Type=notify, no condition on a secret path (jobs.secret_file may name another)"
sed "s|/usr/bin/firstboot|$FIRSTBOOT|" "$TOP/units/firstboot-agent.service" >"$U/firstboot-agent.service"
if systemd-analyze verify --man=no "$U/firstboot-agent.service" "$U/firstboot.service" >"$T/v" 2>&1 &&
	[ ! -s "$T/v" ] && grep -qx 'Type=notify' "$U/firstboot-agent.service" &&
	grep -qx 'NotifyAccess=main' "$U/firstboot-agent.service" &&
	! grep -q '^Condition' "$U/firstboot-agent.service"; then t_pass; else t_fail "$(cat "$T/v")"; fi

# The agent's stop may outlast TimeoutStopSec= only by EXTEND_TIMEOUT_USEC=
# (test-agent checks it sends them): a finite TimeoutStopSec= under which
# the default jobs.stop_timeout_s (60) and kill_grace_ms (10 s) fit.
t_case "firstboot-agent.service: a finite TimeoutStopSec= over the default stop bound, KillMode=mixed"
ts=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$TOP/units/firstboot-agent.service")
if [ -n "$ts" ] && [ "$ts" -ge 70 ] && grep -qx 'KillMode=mixed' "$TOP/units/firstboot-agent.service"; then
	t_pass
else t_fail "TimeoutStopSec '$ts'"; fi
