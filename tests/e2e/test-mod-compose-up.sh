#!/bin/bash
# The compose-up module through the real agent on a temporary root, with
# `docker` a simulator (modlib-b.sh) whose `compose config` is Debian's
# real docker-compose on the project rendered from the templates: checked,
# pulled, up, then a bounded wait for the health checks; a pull that fails
# (2, retried, nothing started), containers that never get healthy or
# exit (2), a broken or missing compose file and no compose at all (3),
# bad input (1), and a second run that changes nothing.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib.sh
. "$(dirname "$0")/modlib.sh"
# shellcheck source=tests/e2e/modlib-b.sh
. "$(dirname "$0")/modlib-b.sh"

t_check "the compose-up manifest validates" "$FIRSTBOOT" validate "$TOP/modules/compose-up/manifest.yml"

# fresh NAME: a root with the whole project imagegen renders for the
# full-compose fixture (the env files and secrets too, and the two env
# files the colonyos module writes), and the docker simulator.
fresh() {
	local ctx=$TOP/tests/cases/templates/full-compose.json s=$T/$1/opt/stack
	R=$T/$1
	mod_root "$R"
	mod_recorders "$T/$1.rec" "${MOD_COMMANDS[@]}"
	modb_docker_sim
	mkdir -p "$s/secrets"
	modb_render docker-compose.yml.tmpl "$ctx" "$s/docker-compose.yml"
	modb_render colonyos.env.tmpl "$ctx" "$s/colonyos.env" 0600
	modb_render agent-manager.env.tmpl "$ctx" "$s/agent-manager.env" 0600
	modb_render postgres_password.tmpl "$ctx" "$s/secrets/postgres_password" 0600
	modb_render redis_password.tmpl "$ctx" "$s/secrets/redis_password" 0600
	printf 'COLONIES_SERVER_ID=%064d\n' 1 >"$s/colonyos-server.env"
	cp "$s/colonyos-server.env" "$s/colonyos-keys.env"
}
F=$T/c1/opt/stack/docker-compose.yml

t_case "the project checked, pulled, up, and every container running and healthy"
fresh c1
if mod_run "$R" compose-up &&
	mod_order "^docker compose -f $F config -q\$" "^docker compose -f $F config --services\$" \
		"^docker compose -f $F pull --quiet\$" "^docker compose -f $F up -d --remove-orphans\$" \
		"^docker compose -f $F ps -q\$" '^docker inspect -f ' &&
	[ "$(sort "$MOD_REC/state/compose/up" | tr '\n' ' ')" = "agent-manager colonies-server postgres redis " ] &&
	grep -q 'done: .*running and healthy' "$(mod_log "$R" compose-up)"; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';') $(tail -n 3 "$(mod_log "$R" compose-up)")"
fi

t_case "a second run changes nothing: nothing stopped, removed or restarted, files unchanged"
mod_reset_calls
before=$(tree_snapshot "$R")
if mod_run "$R" compose-up && mod_not_called ' (down|stop|restart|rm|kill) ' && [ "$(tree_snapshot "$R")" = "$before" ]; then
	t_pass
else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "health checks that pass late are waited for (one attempt); pull=false pulls nothing"
fresh c2
modb_health postgres starting starting healthy
modb_health redis starting healthy
if mod_run "$R" compose-up pull=false && [ "$(mod_attempts "$R" compose-up)" = 1 ] && mod_not_called ' pull' &&
	[ "$(mod_calls docker | grep -c '^docker inspect')" -ge 3 ]; then t_pass; else
	t_fail "attempts $(mod_attempts "$R" compose-up), calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "a container that stays unhealthy, or one that exited: exit 2 after wait_seconds, naming it"
fresh c3
modb_health redis unhealthy
mod_exec "$R" compose-up WAIT_SECONDS=1
rc1=$?
grep -q 'not healthy after 1s: stack-redis-1 is unhealthy' "$MOD_ERR" && m1=1 || m1=0
modb_health redis healthy
: >"$MOD_REC/state/compose/exited.colonies-server"
mod_exec "$R" compose-up WAIT_SECONDS=1
rc2=$?
if [ $rc1 = 2 ] && [ "$m1" = 1 ] && [ $rc2 = 2 ] && grep -q 'not healthy after 1s: stack-colonies-server-1 is exited' "$MOD_ERR"; then
	t_pass
else t_fail "exits $rc1 $rc2 $(cat "$MOD_ERR")"; fi

t_case "a failed pull is exit 2, retried, and nothing is started"
fresh c5
mod_fail docker 1 ' pull '
if ! mod_run "$R" compose-up && [ "$(mod_exit "$R" compose-up)" = 2 ] && [ "$(mod_attempts "$R" compose-up)" = 3 ] &&
	mod_not_called ' up ' && grep -q 'pulling the images failed' "$(mod_log "$R" compose-up)"; then t_pass; else
	t_fail "exit $(mod_exit "$R" compose-up), attempts $(mod_attempts "$R" compose-up)"
fi

t_case "a compose file docker-compose refuses: exit 3, not retried, nothing pulled"
fresh c6
printf 'services:\n  web:\n    image: nginx\n    ports: 80\n' >"$R/opt/stack/docker-compose.yml"
if ! mod_run "$R" compose-up && [ "$(mod_exit "$R" compose-up)" = 3 ] && [ "$(mod_attempts "$R" compose-up)" = 1 ] &&
	mod_not_called ' (pull|up) ' && grep -q 'is refused by docker compose config' "$(mod_log "$R" compose-up)"; then t_pass; else
	t_fail "exit $(mod_exit "$R" compose-up)"
fi

t_case "no compose file, or no compose at all: exit 3"
fresh c7
rm "$R/opt/stack/docker-compose.yml"
mod_exec "$R" compose-up
rc1=$?
grep -q 'docker-compose.yml is missing' "$MOD_ERR" && m1=1 || m1=0
fresh c8
mod_fail docker 1 'compose version'
mod_fail docker-compose 1 'version'
mod_exec "$R" compose-up
rc2=$?
if [ $rc1 = 3 ] && [ "$m1" = 1 ] && [ $rc2 = 3 ] && grep -q "neither 'docker compose' nor docker-compose" "$MOD_ERR"; then
	t_pass
else t_fail "exits $rc1 $rc2"; fi

t_case "bad input is exit 1 before anything is called"
fresh c9
ok=1
for kv in "COMPOSE_FILE=relative.yml" "COMPOSE_FILE=/opt/stack/compose.json" "COMPOSE_FILE=/opt/../etc/x.yml" "PULL=yes" \
	"WAIT_SECONDS=0" "WAIT_SECONDS=x"; do
	mod_exec "$R" compose-up "$kv"
	rc=$?
	[ $rc = 1 ] || {
		ok=0
		echo "  # $kv: exit $rc" >&2
	}
done
if [ $ok = 1 ] && mod_not_called '^docker '; then t_pass; else t_fail "bad input"; fi
