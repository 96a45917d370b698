#!/bin/bash
# The update module through the real agent on a temporary root with
# recorders (the service unit, the optional timer added and removed, a
# second run, bad input, a missing or broken script), and update_server.sh
# as imagegen renders it, run on that root: compose images pulled before
# anything is recreated (a failed pull changes nothing), a bounded health
# wait, and pinned binaries from a loopback server swapped in with a
# restart, left alone when current, refused when the checksum differs and
# rolled back when the new one is not healthy.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib.sh
. "$(dirname "$0")/modlib.sh"
# shellcheck source=tests/e2e/modlib-b.sh
. "$(dirname "$0")/modlib-b.sh"

t_check "the update manifest validates" "$FIRSTBOOT" validate "$TOP/modules/update/manifest.yml"

# fresh NAME [CONTEXT]: a root with update_server.sh rendered from
# CONTEXT (default: the full-compose fixture), and recorders.
fresh() {
	R=$T/$1
	mod_root "$R"
	mod_recorders "$T/$1.rec" "${MOD_COMMANDS[@]}"
	mkdir -p "$R/usr/local/sbin"
	modb_render update_server.sh.tmpl "${2:-$TOP/tests/cases/templates/full-compose.json}" "$R/usr/local/sbin/update_server.sh" 0755
}
U=etc/systemd/system
verify_units() {
	local u
	mkdir -p "$T/units"
	rm -f "$T/units"/*
	for u in "$@"; do sed 's|^ExecStart=.*|ExecStart=/bin/true|' "$R/$U/$u" >"$T/units/$u"; done
	(cd "$T/units" && systemd-analyze verify --man=no "$@") >"$T/verify" 2>&1 && [ ! -s "$T/verify" ]
}

t_case "without a schedule: the service unit only (it verifies), no timer"
fresh c1
if mod_run "$R" update && grep -qx 'ExecStart=/usr/local/sbin/update_server.sh' "$R/$U/firstboot-update.service" &&
	[ ! -e "$R/$U/firstboot-update.timer" ] && mod_called '^systemctl daemon-reload' &&
	mod_not_called '^systemctl (enable|start)' && verify_units firstboot-update.service; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';') $(cat "$T/verify" 2>/dev/null)"
fi

t_case "a second run changes nothing"
mod_reset_calls
before=$(tree_snapshot "$R")
if mod_run "$R" update && mod_not_called '^systemctl (daemon-reload|enable|start|restart|disable)' &&
	[ "$(tree_snapshot "$R")" = "$before" ]; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "a schedule: the timer written, enabled and started; both units verify"
mod_reset_calls
if mod_run "$R" update schedule="Sun *-*-* 04:00:00" &&
	grep -qx 'OnCalendar=Sun \*-\*-\* 04:00:00' "$R/$U/firstboot-update.timer" &&
	mod_order '^systemctl daemon-reload' '^systemctl enable firstboot-update.timer' '^systemctl start firstboot-update.timer' &&
	verify_units firstboot-update.service firstboot-update.timer; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';') $(cat "$T/verify" 2>/dev/null)"
fi

t_case "a new schedule: daemon-reload and one restart of the timer, nothing else"
mod_reset_calls
if mod_run "$R" update schedule="Sat *-*-* 05:00:00" && grep -qx 'OnCalendar=Sat \*-\*-\* 05:00:00' "$R/$U/firstboot-update.timer" &&
	mod_order '^systemctl daemon-reload$' '^systemctl restart firstboot-update.timer$' &&
	[ "$(mod_calls systemctl | grep -Ec '^systemctl (daemon-reload|restart)')" = 2 ] &&
	mod_not_called '^systemctl (enable|start|stop|disable) |^apt-get'; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "another script path: daemon-reload only (the oneshot reads its unit at each start), the timer not restarted"
cp -p "$R/usr/local/sbin/update_server.sh" "$R/usr/local/sbin/update-stack.sh"
mod_reset_calls
if mod_run "$R" update schedule="Sat *-*-* 05:00:00" script=/usr/local/sbin/update-stack.sh &&
	grep -qx 'ExecStart=/usr/local/sbin/update-stack.sh' "$R/$U/firstboot-update.service" &&
	[ "$(mod_calls systemctl | grep -c '^systemctl daemon-reload$')" = 1 ] &&
	mod_not_called '^systemctl (enable|start|stop|disable|restart) |^apt-get'; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "the schedule taken out: the timer disabled, stopped and removed"
mod_reset_calls
if mod_run "$R" update && [ ! -e "$R/$U/firstboot-update.timer" ] &&
	mod_order '^systemctl disable --now firstboot-update.timer' '^systemctl daemon-reload'; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "bad input is exit 1; a missing or broken script is exit 3"
mod_exec "$R" update "SCHEDULE=whenever"
rc1=$?
mod_exec "$R" update "SCRIPT=relative.sh"
rc2=$?
echo 'fi' >>"$R/usr/local/sbin/update_server.sh"
mod_exec "$R" update
rc3=$?
rm "$R/usr/local/sbin/update_server.sh"
mod_exec "$R" update
rc4=$?
if [ "$rc1 $rc2 $rc3 $rc4" = "1 1 3 3" ] && grep -q 'update_server.sh is missing' "$MOD_ERR"; then t_pass; else
	t_fail "exits $rc1 $rc2 $rc3 $rc4"
fi

t_case "the script a link (to a file outside the root) and not executable: exit 3, the file's mode unchanged"
fresh c3
mkdir -p "$T/c3-outside"
cp "$R/usr/local/sbin/update_server.sh" "$T/c3-outside/target.sh"
chmod 0640 "$T/c3-outside/target.sh"
ln -sf "$T/c3-outside/target.sh" "$R/usr/local/sbin/update_server.sh"
mod_exec "$R" update
rc=$?
if [ $rc = 3 ] && grep -q 'update_server.sh is a symbolic link: its mode is not changed' "$MOD_ERR" &&
	[ "$(stat -c %a "$T/c3-outside/target.sh")" = 640 ]; then t_pass; else t_fail "exit $rc: $(cat "$MOD_ERR")"; fi

t_case "the schedule taken out with the units' folder a link out of the root: the file it leads to outside is untouched"
fresh c4
mod_run "$R" update schedule="Sun *-*-* 04:00:00" >/dev/null
mkdir -p "$T/c4-outside/system"
echo keep >"$T/c4-outside/system/firstboot-update.timer"
rm -rf "${R:?}/$U" && ln -s "$T/c4-outside/system" "$R/$U"
if mod_run "$R" update && [ "$(cat "$T/c4-outside/system/firstboot-update.timer")" = keep ] &&
	[ -f "$R$T/c4-outside/system/firstboot-update.service" ]; then t_pass; else t_fail "$(cat "$MOD_ERR")"; fi

# ---- update_server.sh: compose ------------------------------------------

update() {
	env PATH="$MOD_REC/bin:$PATH" STACK_ROOT="$R" UPDATE_WAIT_SECONDS="${WAIT:-30}" \
		bash "$R/usr/local/sbin/update_server.sh" >"$T/u.out" 2>"$T/u.err"
}
fresh d1
modb_docker_sim
ctx=$TOP/tests/cases/templates/full-compose.json
s=$R/opt/stack
mkdir -p "$s/secrets"
modb_render docker-compose.yml.tmpl "$ctx" "$s/docker-compose.yml"
modb_render colonyos.env.tmpl "$ctx" "$s/colonyos.env" 0600
modb_render agent-manager.env.tmpl "$ctx" "$s/agent-manager.env" 0600
touch "$s/colonyos-server.env" "$s/colonyos-keys.env" "$s/secrets/postgres_password" "$s/secrets/redis_password"
F=$s/docker-compose.yml

t_case "update_server.sh (compose): pull first, then up, then every container healthy"
modb_health agent-manager starting healthy
if update && mod_order "^docker compose -f $F config --services\$" "^docker compose -f $F pull --quiet\$" \
	"^docker compose -f $F up -d --remove-orphans\$" '^docker inspect' && grep -q 'running and healthy' "$T/u.out"; then
	t_pass
else t_fail "$(cat "$T/u.err") calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "update_server.sh: a failed pull is exit 2 and recreates nothing"
mod_reset_calls
mod_fail docker 1 ' pull '
update
rc=$?
if [ $rc = 2 ] && mod_not_called ' up ' && grep -q 'nothing was restarted' "$T/u.err"; then t_pass; else t_fail "exit $rc"; fi

t_case "update_server.sh: a container unhealthy after the update is exit 1, naming it"
mod_ctl_reset
modb_docker_sim
modb_health redis unhealthy
WAIT=1 update
rc=$?
if [ $rc = 1 ] && grep -q 'not healthy 1s after the update: stack-redis-1 is unhealthy' "$T/u.err"; then t_pass; else
	t_fail "exit $rc $(cat "$T/u.err")"
fi

# ---- update_server.sh: pinned binaries ----------------------------------

health_port="" www_port=""
modb_http health
mkdir -p "$T/www/v2" "$T/rel/colonies_2"
printf '#!/bin/sh\necho agent-manager v2\n' >"$T/www/v2/agent-manager"
printf '#!/bin/sh\necho colonies v2\n' >"$T/rel/colonies_2/colonies"
chmod 0755 "$T/www/v2/agent-manager" "$T/rel/colonies_2/colonies"
tar -czf "$T/www/v2/colonies.tar.gz" -C "$T/rel" colonies_2
modb_http www "$T/www"
AM_SUM=$(sha256sum "$T/www/v2/agent-manager" | cut -d' ' -f1)
CO_SUM=$(sha256sum "$T/www/v2/colonies.tar.gz" | cut -d' ' -f1)
# binaries_ctx OUT AM_PORT [AM_SUM]: the native fixture with both binaries
# from the loopback server, agent-manager's health on AM_PORT.
binaries_ctx() {
	modb_context native-systemd "$1" "
m = j['modules']
m['agent_manager'].update(binary_url='http://127.0.0.1:$www_port/v2/agent-manager', binary_sha256='${3:-$AM_SUM}', app_port=$2)
m['colonyos'].update(binary_url='http://127.0.0.1:$www_port/v2/colonies.tar.gz', binary_sha256='$CO_SUM', http_port=$health_port)"
}
old_binaries() {
	mkdir -p "$R/usr/local/bin"
	printf '#!/bin/sh\necho v1\n' >"$R/usr/local/bin/agent-manager"
	printf '#!/bin/sh\necho v1\n' >"$R/usr/local/bin/colonies"
	chmod 0755 "$R/usr/local/bin/agent-manager" "$R/usr/local/bin/colonies"
}

t_case "update_server.sh (binaries): both downloaded, checked, swapped in and restarted, then healthy"
binaries_ctx "$T/ctx-ok.json" "$health_port"
fresh b1 "$T/ctx-ok.json"
old_binaries
mod_passthrough curl
if update && cmp -s "$R/usr/local/bin/agent-manager" "$T/www/v2/agent-manager" &&
	cmp -s "$R/usr/local/bin/colonies" "$T/rel/colonies_2/colonies" && [ "$(stat -c %a "$R/usr/local/bin/colonies")" = 755 ] &&
	mod_order '^curl .*/v2/colonies.tar.gz' '^systemctl restart colonies-server' '^curl .*/v2/agent-manager' \
		'^systemctl restart agent-manager' "^curl -fs -o /dev/null --max-time 5 http://127.0.0.1:$health_port/api/health\$" &&
	[ ! -e "$R/usr/local/bin/agent-manager.prev" ] && ! mod_called '^docker'; then t_pass; else
	t_fail "$(cat "$T/u.err") calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "update_server.sh: binaries that are current are left alone (no restart)"
mod_reset_calls
if update && mod_not_called '^systemctl restart' && [ "$(grep -c 'is up to date' "$T/u.out")" = 2 ]; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "update_server.sh: a download that does not match the pinned SHA-256 is exit 2 and changes nothing"
binaries_ctx "$T/ctx-sum.json" "$health_port" "$(printf '%064d' 7)"
fresh b2 "$T/ctx-sum.json"
old_binaries
mod_passthrough curl
update
rc=$?
if [ $rc = 2 ] && grep -qx 'echo v1' "$R/usr/local/bin/agent-manager" && mod_not_called '^systemctl restart agent-manager' &&
	grep -q 'does not match the pinned SHA-256' "$T/u.err"; then t_pass; else t_fail "exit $rc"; fi

t_case "update_server.sh: a new binary that is not healthy is rolled back (exit 1)"
binaries_ctx "$T/ctx-sick.json" 1
fresh b3 "$T/ctx-sick.json"
old_binaries
mod_passthrough curl
WAIT=1 update
rc=$?
if [ $rc = 1 ] && grep -qx 'echo v1' "$R/usr/local/bin/agent-manager" && [ ! -e "$R/usr/local/bin/agent-manager.prev" ] &&
	[ "$(mod_calls systemctl | grep -c '^systemctl restart agent-manager')" = 2 ] &&
	grep -q 'the previous one is back' "$T/u.err"; then t_pass; else t_fail "exit $rc $(cat "$T/u.err")"; fi
