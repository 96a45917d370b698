#!/bin/bash
# The colonyos module through the real agent on a temporary root, with
# `colonies` a simulated CLI and server (modb_colonies_sim in modlib-b.sh:
# the commands, flags, environment and access rules of colonyos/colonies,
# every key it is given checked), the docker simulator and recorders: keys generated once and
# kept, the colony and the executor registered with the right keys, the
# .env and the JSON manifest 0600, no key on a command line or in a log, a
# second run that registers nothing, an executor left pending approved, a
# rejected one (3), an older CLI with `key generate`, a slow server, a
# server that never answers (2), the tables made with `database create`
# before the server starts (in the service's container in compose mode)
# and a database that never takes that connection (2), a colony
# registered with another key (3),
# bad input (1), the compose service on a bridge network publishing only
# its API on 127.0.0.1, grpc_upstream refused by imagegen validate with a
# colonies release, and the systemd mode: the binary downloaded and
# checked, `database create` with the server's whole environment (TZ and
# COLONIES_SERVER_ID: the simulator, like colonies 1.8.19, loops without
# TZ and fixes the identity then), a database left with an empty identity
# reported with its repair (3) and repaired, the unit confined to
# loopback, and a DB password systemd would read differently refused (3).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib.sh
. "$(dirname "$0")/modlib.sh"
# shellcheck source=tests/e2e/modlib-b.sh
. "$(dirname "$0")/modlib-b.sh"

t_check "the colonyos manifest validates" "$FIRSTBOOT" validate "$TOP/modules/colonyos/manifest.yml"

# fresh NAME [FIXTURE]: a root $T/NAME with the stack files imagegen would
# have rendered (from tests/cases/templates/FIXTURE.json) and recorders
# with the simulated colonies server.
fresh() {
	R=$T/$1
	mod_root "$R"
	mod_recorders "$T/$1.rec" "${MOD_COMMANDS[@]}"
	modb_colonies_sim
	modb_docker_sim
	mkdir -p "$R/opt/stack" "$R/etc/systemd/system"
	modb_render docker-compose.yml.tmpl "$TOP/tests/cases/templates/${2:-full-compose}.json" "$R/opt/stack/docker-compose.yml"
	modb_render colonyos.env.tmpl "$TOP/tests/cases/templates/${2:-full-compose}.json" "$R/opt/stack/colonyos.env" 0600
	modb_render agent-manager.env.tmpl "$TOP/tests/cases/templates/${2:-full-compose}.json" "$R/opt/stack/agent-manager.env" 0600
	modb_render colonies-server.service.tmpl "$TOP/tests/cases/templates/${2:-full-compose}.json" \
		"$R/etc/systemd/system/colonies-server.service"
}
key() { sed -n "s/^$1=//p" "$R/opt/stack/colonyos-keys.env"; }
prvkeys() { grep -E '^COLONIES_[A-Z_]*PRVKEY=' "$R/opt/stack/colonyos-keys.env" | cut -d= -f2 | sort -u; }
registry() { cat "$MOD_REC/state/colonies/$1" 2>/dev/null; }

t_case "compose: three key pairs, the tables made in the service's container, the server up and waited for, then the colony and the executor registered with their keys"
fresh c1
modb_colonies_down 2
if mod_run "$R" colonyos && [ "$(mod_attempts "$R" colonyos)" = 1 ] &&
	[ "$(mod_calls colonies | grep -c '^colonies colony ls')" = 4 ] &&
	[ "$(mod_calls colonies | grep -c '^colonies key generate$')" = 3 ] && mod_not_called '^colonies security' &&
	[ "$(registry dbcreate)" = "postgres:5432 colony" ] && [ "$(registry serverid)" = "$(key COLONIES_SERVER_ID)" ] &&
	mod_order '^colonies key generate' '^colonies colony ls --json$' \
		"^docker compose -f $R/opt/stack/docker-compose.yml run --rm -T --entrypoint colonies colonies-server database create\$" \
		"^docker compose -f $R/opt/stack/docker-compose.yml up -d colonies-server\$" \
		"^colonies colony add --name cpm_colony --colonyid $(key COLONIES_COLONY_ID)\$" \
		'^colonies executor ls --json --full$' \
		"^colonies executor add --spec $R/opt/stack/colonyos/executor.json --executorid $(key COLONIES_EXECUTOR_ID) --approve\$" &&
	[ "$(registry colonies)" = "$(key COLONIES_COLONY_ID) cpm_colony" ] &&
	[ "$(registry executors)" = "cpm_colony $(key COLONIES_EXECUTOR_ID) cpm-executor cli 1" ] &&
	[ "$(key COLONIES_PRVKEY)" = "$(key COLONIES_EXECUTOR_PRVKEY)" ] &&
	[ -d "$R/var/lib/firstboot-stack/colonies" ]; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';') $(tail -n 5 "$(mod_log "$R" colonyos)")"
fi

t_case "the keys: colonyos-keys.env, colonyos-server.env and colonyos.json are 0600 and agree"
if [ "$(stat -c %a "$R/opt/stack/colonyos-keys.env")" = 600 ] && [ "$(stat -c %a "$R/opt/stack/colonyos-server.env")" = 600 ] &&
	[ "$(stat -c %a "$R/opt/stack/colonyos.json")" = 600 ] && [ "$(prvkeys | wc -l)" = 3 ] &&
	grep -qx "COLONIES_SERVER_ID=$(key COLONIES_SERVER_ID)" "$R/opt/stack/colonyos-server.env" &&
	[ "$(json_get "$R/opt/stack/colonyos.json" "j['colony']['id'] + ' ' + j['colony']['name'] + ' ' + j['executor']['prvkey'] + ' [' + j['server']['grpc_upstream'] + ']'")" = \
		"$(key COLONIES_COLONY_ID) cpm_colony $(key COLONIES_EXECUTOR_PRVKEY) []" ]; then t_pass; else t_fail "key files"; fi

t_case "no private key on a command line, in the agent's output and logs, or in a world-readable file"
mapfile -t keys < <(prvkeys)
if [ ${#keys[@]} = 3 ] && mod_no_secrets "$R" "${keys[@]}" "$(python3 -c 'import sys, dotenv; print(dotenv.dotenv_values(sys.argv[1])["COLONIES_DB_PASSWORD"])' "$R/opt/stack/colonyos.env")" &&
	! grep -rqF "${keys[0]}" "$R/opt/stack/colonyos" "$R/var/log/firstboot"; then t_pass; else t_fail "a key leaked"; fi

t_case "a second run finds the colony and the executor registered: no key generated, nothing added, files unchanged"
mod_reset_calls
before=$(tree_snapshot "$R")
sum=$(sha256sum "$R/opt/stack/colonyos-keys.env" "$R/opt/stack/colonyos.json")
if mod_run "$R" colonyos && mod_not_called '^colonies (security|key) generate' &&
	mod_not_called '^colonies (colony|executor) (add|approve)' && mod_not_called 'database create' &&
	mod_called '^colonies colony ls' && mod_called '^colonies executor ls' &&
	[ "$(sha256sum "$R/opt/stack/colonyos-keys.env" "$R/opt/stack/colonyos.json")" = "$sum" ] &&
	[ "$(tree_snapshot "$R")" = "$before" ] && [ "$(registry colonies | wc -l)" = 1 ]; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "an executor added but left pending (a run cut short) is approved with the colony key, not added again"
sed -i 's/ 1$/ 0/' "$MOD_REC/state/colonies/executors"
mod_reset_calls
if mod_run "$R" colonyos && mod_called '^colonies executor approve --name cpm-executor$' &&
	mod_not_called '^colonies (colony|executor) add' &&
	[ "$(registry executors)" = "cpm_colony $(key COLONIES_EXECUTOR_ID) cpm-executor cli 1" ]; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "a rejected executor: exit 3, not retried, not approved"
sed -i 's/ 1$/ 2/' "$MOD_REC/state/colonies/executors"
mod_reset_calls
if ! mod_run "$R" colonyos && [ "$(mod_exit "$R" colonyos)" = 3 ] && [ "$(mod_attempts "$R" colonyos)" = 1 ] &&
	grep -q 'in state 2' "$(mod_log "$R" colonyos)" && mod_not_called '^colonies executor (add|approve)'; then t_pass; else
	t_fail "exit $(mod_exit "$R" colonyos), calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "a 1.9 CLI with \`colonies security generate\` (no \`key\`): the pairs come from it"
fresh c2
echo security >"$MOD_REC/state/colonies/keycmd"
if mod_run "$R" colonyos && [ "$(mod_calls colonies | grep -c '^colonies security generate$')" = 3 ] &&
	[ "$(mod_calls colonies | grep -c '^colonies key generate$')" = 3 ] && [ "$(prvkeys | wc -l)" = 3 ] &&
	[ "$(registry colonies)" = "$(key COLONIES_COLONY_ID) cpm_colony" ]; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';') $(tail -n 3 "$(mod_log "$R" colonyos)")"
fi

t_case "a server that never answers: exit 2 after wait_seconds, retried, and the keys generated once are kept"
fresh c3
modb_colonies_down 1000
# wait_seconds also bounds `database create`, which the simulator answers
# after the real docker-compose has read the project (a second, more on
# a loaded machine).
if ! mod_run "$R" colonyos wait_seconds=12 && [ "$(mod_exit "$R" colonyos)" = 2 ] &&
	[ "$(mod_attempts "$R" colonyos)" = 3 ] && [ "$(mod_calls colonies | grep -c '^colonies key generate$')" = 3 ] &&
	grep -q 'did not answer' "$(mod_log "$R" colonyos)" && [ "$(prvkeys | wc -l)" = 3 ] &&
	mod_not_called '^colonies colony add'; then t_pass; else
	t_fail "exit $(mod_exit "$R" colonyos), attempts $(mod_attempts "$R" colonyos), calls: $(mod_calls "" | tr '\n' ';') $(tail -n 5 "$(mod_log "$R" colonyos)")"
fi

t_case "the server comes back later: the same keys are registered, none generated"
ids=$(key COLONIES_COLONY_ID)
mod_reset_calls
modb_colonies_down 0
if mod_run "$R" colonyos && mod_not_called '^colonies (key|security) generate' && [ "$(key COLONIES_COLONY_ID)" = "$ids" ] &&
	[ "$(registry colonies)" = "$ids cpm_colony" ]; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "a database that never takes the connection: exit 2 naming it after wait_seconds, retried, the server not started"
fresh c7
modb_colonies_dbdown
if ! mod_run "$R" colonyos wait_seconds=1 && [ "$(mod_exit "$R" colonyos)" = 2 ] && [ "$(mod_attempts "$R" colonyos)" = 3 ] &&
	mod_lastlog "$R" colonyos | grep -q "PostgreSQL at postgres:5432 did not take colonies' connection within 1s" &&
	[ ! -e "$MOD_REC/state/colonies/tables" ] && mod_not_called 'up -d colonies-server' &&
	mod_not_called '^colonies colony add'; then t_pass; else
	t_fail "exit $(mod_exit "$R" colonyos): $(mod_lastlog "$R" colonyos | tail -n 3)"
fi

t_case "a colony of that name registered with another key: exit 3, not retried, nothing added"
fresh c4
echo "$(printf x | sha256sum | cut -d' ' -f1) cpm_colony" >"$MOD_REC/state/colonies/colonies"
if ! mod_run "$R" colonyos && [ "$(mod_exit "$R" colonyos)" = 3 ] && [ "$(mod_attempts "$R" colonyos)" = 1 ] &&
	grep -q 'registered with another key' "$(mod_log "$R" colonyos)" && mod_not_called '^colonies (colony|executor) add'; then
	t_pass
else t_fail "exit $(mod_exit "$R" colonyos)"; fi

t_case "bad input is exit 1 before anything is called: names, ports, sha256 without URL"
fresh c5
ok=1
for kv in "COLONY_NAME=bad name" "EXECUTOR_NAME=-x" "HTTP_PORT=70000" "GRPC_UPSTREAM=50051" "GRPC_UPSTREAM=a b:1" "MODE=k8s" "WAIT_SECONDS=0" \
	"STACK_DIR=relative" "MODE=systemd|BINARY_URL=https://example.org/colonies"; do
	IFS='|' read -ra args <<<"$kv"
	mod_exec "$R" colonyos "${args[@]}"
	rc=$?
	[ $rc = 1 ] || {
		ok=0
		echo "  # $kv: exit $rc" >&2
	}
done
if [ $ok = 1 ] && mod_not_called '^(colonies|docker|systemctl) '; then t_pass; else t_fail "bad input"; fi

t_case "colonyos.env or the compose service missing: exit 3 naming the file"
rm "$R/opt/stack/colonyos.env"
mod_exec "$R" colonyos
rc1=$?
grep -q 'colonyos.env is missing' "$MOD_ERR" && m1=1 || m1=0
modb_render colonyos.env.tmpl "$TOP/tests/cases/templates/full-compose.json" "$R/opt/stack/colonyos.env" 0600
sed -i 's/^  colonies-server:/  something-else:/' "$R/opt/stack/docker-compose.yml"
mod_exec "$R" colonyos
rc2=$?
if [ $rc1 = 3 ] && [ "$m1" = 1 ] && [ $rc2 = 3 ] && grep -q 'no colonies-server service' "$MOD_ERR"; then t_pass; else
	t_fail "exits $rc1 $rc2"
fi

t_case "colonyos.env a link out of the root (to this test's folder, relative): exit 3 naming it, the file out of the root not read, nothing called"
fresh c9
mv "$R/opt/stack/colonyos.env" "$T/c9-outside.env"
ln -s ../../../c9-outside.env "$R/opt/stack/colonyos.env"
mod_exec "$R" colonyos
rc=$?
if [ $rc = 3 ] && grep -q '/opt/stack/colonyos.env is missing (no regular file inside the root)' "$MOD_ERR" &&
	mod_not_called '^(colonies|docker|systemctl) ' && [ ! -e "$R/opt/stack/colonyos-keys.env" ]; then t_pass; else
	t_fail "exit $rc: $(tail -n 2 "$MOD_ERR")"
fi

t_case "compose without a colonies CLI on the host: the server image runs it, keys passed by name only"
fresh c6
rm "$MOD_REC/bin/colonies"
if mod_run "$R" colonyos && [ "$(mod_calls docker | grep -c '^docker run --rm -i --network host .*--entrypoint colonies colonyos/colonies:v1.8.19 key generate$')" = 3 ] &&
	mod_called "^docker run .* -e COLONIES_SERVER_PRVKEY .*-v $R/opt/stack/colonyos:/opt/stack/colonyos:ro --entrypoint colonies colonyos/colonies:v1.8.19 colony add --name cpm_colony --colonyid [0-9a-f]{64}\$" &&
	mod_called "^docker run .* -e TZ .*--entrypoint colonies colonyos/colonies:v1.8.19 executor add --spec /opt/stack/colonyos/executor.json " &&
	mod_not_called '^docker run .* -e [A-Z_]+=' && [ "$(registry executors | wc -l)" = 1 ] &&
	mapfile -t keys < <(prvkeys) && mod_no_secrets "$R" "${keys[@]}"; then t_pass; else
	t_fail "calls: $(mod_calls docker | tail -n 3 | tr '\n' ';') $(tail -n 3 "$(mod_log "$R" colonyos)")"
fi

t_case "compose: colonies-server on the project's bridge network, only its API published and only on 127.0.0.1 (with a compose or a native PostgreSQL)"
modb_context full-compose "$T/native-pg.json" "del j['modules']['postgres']['data_dir']; j['modules']['postgres']['mode'] = 'native'"
ok=1
for ctx in "$TOP/tests/cases/templates/full-compose.json" "$T/native-pg.json"; do
	mkdir -p "$T/net" && modb_render docker-compose.yml.tmpl "$ctx" "$T/net/docker-compose.yml" &&
		modb_render colonyos.env.tmpl "$ctx" "$T/net/colonyos.env" 0600 && : >"$T/net/colonyos-server.env" &&
		: >"$T/net/agent-manager.env" && : >"$T/net/colonyos-keys.env" && mkdir -p "$T/net/secrets" && : >"$T/net/secrets/postgres_password" &&
		: >"$T/net/secrets/redis_password" || ok=0
	(cd "$T/net" && docker-compose -f docker-compose.yml config) >"$T/net/config" 2>"$T/net/err" || ok=0
	python3 - "$T/net/config" <<'EOP' || ok=0
import sys, yaml
svc = yaml.safe_load(open(sys.argv[1]))["services"]["colonies-server"]
ports = [(str(p.get("host_ip")), str(p.get("published")), str(p.get("target"))) if isinstance(p, dict) else p
         for p in svc.get("ports", [])]
assert "network_mode" not in svc, svc.get("network_mode")
assert ports in ([("127.0.0.1", "50080", "50080")], ["127.0.0.1:50080:50080"], ["127.0.0.1:50080:50080/tcp"]), ports
EOP
done
if [ $ok = 1 ] && grep -qx 'COLONIES_DB_HOST=host.docker.internal' "$T/net/colonyos.env" &&
	grep -q 'host.docker.internal:host-gateway' "$T/net/config"; then t_pass; else t_fail "$(cat "$T/net/err" "$T/net/config" | head -n 20)"; fi

t_case "imagegen validate: grpc_upstream with a colonies release (none serves gRPC) is an error naming it; with another build it is taken"
S=$T/vsite
rm -rf "$S" && "$IMAGEGEN" init "$S" >/dev/null 2>&1
sed -i 's/^    colony_name: cpm_colony$/    colony_name: cpm_colony\n    grpc_upstream: 127.0.0.1:50051/' "$S/site.yaml"
line=$(grep -n 'grpc_upstream' "$S/site.yaml" | cut -d: -f1)
"$IMAGEGEN" validate --modules-dir "$TOP/modules" --templates-dir "$TOP/templates" "$S/site.yaml" >"$T/v.out" 2>"$T/v.err"
rc1=$?
sed -i 's|^    grpc_upstream: 127.0.0.1:50051$|    grpc_upstream: 127.0.0.1:50051\n    image: registry.example.org/colonies-grpc:1|' "$S/site.yaml"
"$IMAGEGEN" validate --modules-dir "$TOP/modules" --templates-dir "$TOP/templates" "$S/site.yaml" >"$T/v2.out" 2>&1
rc2=$?
sed -i "s|^    image: registry.example.org/colonies-grpc:1\$|    mode: systemd\n    binary_url: https://github.com/colonyos/colonies/releases/download/v1.8.19/colonies_1.8.19_linux_amd64.tar.gz\n    binary_sha256: \"$(printf '%064d' 0)\"|" "$S/site.yaml"
"$IMAGEGEN" validate --modules-dir "$TOP/modules" --templates-dir "$TOP/templates" "$S/site.yaml" >"$T/v3.out" 2>&1
rc3=$?
if [ $rc1 = 1 ] && grep -q "^$S/site.yaml:$line:[0-9]*: module colonyos: grpc_upstream is for a colonies build that serves gRPC, and colonyos/colonies:v1.8.19 is a colonies release" "$T/v.err" &&
	[ $rc2 = 0 ] && [ $rc3 = 1 ] && grep -q "point binary_url at such a build" "$T/v3.out"; then t_pass; else
	t_fail "rc $rc1 $rc2 $rc3: $(cat "$T/v.err" "$T/v2.out" "$T/v3.out")"
fi

# systemd mode: the binary from a release tarball on a loopback server.
mkdir -p "$T/rel/colonies_1.8.19_linux_amd64" "$T/www"
printf '#!/bin/sh\necho colonies\n' >"$T/rel/colonies_1.8.19_linux_amd64/colonies"
chmod 0755 "$T/rel/colonies_1.8.19_linux_amd64/colonies"
tar -czf "$T/www/colonies.tar.gz" -C "$T/rel" colonies_1.8.19_linux_amd64
SUM=$(sha256sum "$T/www/colonies.tar.gz" | cut -d' ' -f1)
www_port=""
modb_http www "$T/www"
URL=http://127.0.0.1:$www_port/colonies.tar.gz

t_case "systemd: the binary downloaded and checked, the tables made with TZ and the server's identity (the server's environment), the unit started, then the colony registered"
fresh s1 native-systemd
mod_passthrough curl
if mod_run "$R" colonyos mode=systemd binary_url="$URL" binary_sha256="$SUM" wait_seconds=20 &&
	cmp -s "$R/usr/local/bin/colonies" "$T/rel/colonies_1.8.19_linux_amd64/colonies" &&
	[ "$(stat -c %a "$R/usr/local/bin/colonies")" = 755 ] &&
	[ "$(registry dbcreate)" = "127.0.0.1:5433 colony" ] && [ "$(registry serverid)" = "$(key COLONIES_SERVER_ID)" ] &&
	mod_order '^curl .*colonies.tar.gz' '^colonies colony ls' '^colonies database create$' '^systemctl daemon-reload' \
		'^systemctl enable colonies-server' '^systemctl start colonies-server' '^colonies colony add' '^colonies executor add' &&
	mod_not_called '^docker '; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "systemd, second run: no download, no reload, no restart"
mod_reset_calls
if mod_run "$R" colonyos mode=systemd binary_url="$URL" binary_sha256="$SUM" && mod_not_called '^curl' &&
	mod_not_called '^systemctl (daemon-reload|start|restart|enable)' &&
	mod_not_called '^colonies (security|key|database|colony add|executor add)'; then
	t_pass
else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "systemd: a changed colonyos.env (rendered again) restarts colonies-server once and registers nothing; the same again restarts nothing"
printf '# rendered again\n' >>"$R/opt/stack/colonyos.env"
mod_reset_calls
if mod_run "$R" colonyos mode=systemd binary_url="$URL" binary_sha256="$SUM" &&
	[ "$(mod_calls systemctl | grep -c '^systemctl restart colonies-server$')" = 1 ] &&
	mod_not_called '^systemctl (daemon-reload|start|enable|stop)|^curl|^apt-get|^docker ' &&
	mod_not_called '^colonies (security|key|database|colony add|executor add)'; then
	mod_reset_calls
	if mod_run "$R" colonyos mode=systemd binary_url="$URL" binary_sha256="$SUM" &&
		mod_not_called '^systemctl (daemon-reload|start|restart|enable)'; then t_pass; else
		t_fail "third run: $(mod_calls "" | tr '\n' ';')"
	fi
else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "systemd: the state checksum a link out of the root (holding the right sum): not read, one restart, the link replaced; the unit a link out of the root: exit 3, the host's file not read"
st=$R/var/lib/firstboot-stack/state/colonies-server.sha256
cp "$st" "$T/cs-outside.sha256"
ln -sf "$T/cs-outside.sha256" "$st"
mod_reset_calls
mod_run "$R" colonyos mode=systemd binary_url="$URL" binary_sha256="$SUM"
rc1=$(mod_exit "$R" colonyos)
restarts=$(mod_calls systemctl | grep -c '^systemctl restart colonies-server$')
u=$R/etc/systemd/system/colonies-server.service
mv "$u" "$T/cs-unit.saved"
cp "$T/cs-unit.saved" "$T/cs-outside.service"
ln -s "$T/cs-outside.service" "$u"
mod_reset_calls
mod_run "$R" colonyos mode=systemd binary_url="$URL" binary_sha256="$SUM"
rc2=$(mod_exit "$R" colonyos)
log2=$(mod_lastlog "$R" colonyos)
rm -f "$u"
mv "$T/cs-unit.saved" "$u"
if [ "$rc1" = 0 ] && [ "$restarts" = 1 ] && [ -f "$st" ] && [ ! -L "$st" ] && cmp -s "$st" "$T/cs-outside.sha256" &&
	[ "$rc2" = 3 ] && grep -q '/etc/systemd/system/colonies-server.service is missing' <<<"$log2" && mod_not_called '^systemctl (start|restart)'; then t_pass; else
	t_fail "exits $rc1 ($restarts restarts) $rc2: $(tail -n 2 <<<"$log2")"
fi

t_case "systemd: the stack folder an absolute link inside the root (/opt/stack -> /srv/NAME): every file in it read and written as the root sees it, never on the host"
# NAME exists in the root only; the host has no such folder, so a module
# reading by the raw path fails (it read colonyos-server.env there).
fresh s6 native-systemd
name=fb-colonyos-test-$$-$RANDOM
[ ! -e "/srv/$name" ] || name=$name-x
mkdir -p "$R/srv"
mv "$R/opt/stack" "$R/srv/$name"
ln -s "/srv/$name" "$R/opt/stack"
mod_passthrough curl
if mod_run "$R" colonyos mode=systemd binary_url="$URL" binary_sha256="$SUM" wait_seconds=20 &&
	[ -f "$R/srv/$name/colonyos-server.env" ] && [ -f "$R/srv/$name/colonyos-keys.env" ] && [ ! -e "/srv/$name" ]; then
	t_pass
else t_fail "exit $(mod_exit "$R" colonyos): $(mod_lastlog "$R" colonyos | tail -n 2)"; fi

t_case "systemd: a database left with an empty server identity (a create without COLONIES_SERVER_ID): exit 3 with the repair, not retried, no wait"
fresh s5 native-systemd
: >"$MOD_REC/state/colonies/tables"
: >"$MOD_REC/state/colonies/serverid"
mod_passthrough curl
if ! mod_run "$R" colonyos mode=systemd binary_url="$URL" binary_sha256="$SUM" && [ "$(mod_exit "$R" colonyos)" = 3 ] &&
	[ "$(mod_attempts "$R" colonyos)" = 1 ] && [ "$(mod_calls colonies | grep -c '^colonies colony ls')" = 2 ] &&
	mod_lastlog "$R" colonyos | grep -qF "\"not server owner\"" &&
	mod_lastlog "$R" colonyos | grep -qF "in the database postgres as colony (host 127.0.0.1, port 5433) run UPDATE prod_server SET server_id = '$(key COLONIES_SERVER_ID)'" &&
	[ ! -s "$MOD_REC/state/colonies/serverid" ] && mod_not_called '^colonies (colony|executor) add'; then t_pass; else
	t_fail "exit $(mod_exit "$R" colonyos), calls: $(mod_calls colonies | tr '\n' ';') $(mod_lastlog "$R" colonyos | tail -n 2)"
fi

t_case "systemd: repaired as the message says, the next run registers the colony with the same keys"
ids=$(key COLONIES_SERVER_ID)
key COLONIES_SERVER_ID | tr -d '\n' >"$MOD_REC/state/colonies/serverid"
mod_reset_calls
if mod_run "$R" colonyos mode=systemd binary_url="$URL" binary_sha256="$SUM" && [ "$(key COLONIES_SERVER_ID)" = "$ids" ] &&
	mod_not_called '^colonies (key|security) generate' && [ "$(registry colonies)" = "$(key COLONIES_COLONY_ID) cpm_colony" ]; then
	t_pass
else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "systemd: the unit keeps colonies and its etcd to loopback (IPAddressDeny=any, IPAddressAllow=localhost)"
if grep -qx 'IPAddressDeny=any' "$R/etc/systemd/system/colonies-server.service" &&
	grep -qx 'IPAddressAllow=localhost' "$R/etc/systemd/system/colonies-server.service" &&
	grep -q '^EnvironmentFile=/opt/stack/colonyos-server.env$' "$R/etc/systemd/system/colonies-server.service"; then t_pass; else
	t_fail "$(grep IPAddress "$R/etc/systemd/system/colonies-server.service")"
fi

t_case "native PostgreSQL: a database user without its schema in the database postgres is exit 3 naming postgres_db_schema"
echo "postgres:x:$(id -u postgres):$(id -g postgres)::/var/lib/postgresql:/bin/bash" >>"$R/etc/passwd"
mod_ctl runuser <<'EOF'
[ "$*" = "-u postgres -- psql -X -q -t -A -p 5433 -d postgres -f -" ] && [ "$DB_USER" = colony ] &&
	grep -q "nspname = :'u'" && echo "${SCHEMA_ANSWER:-f}"
EOF
mod_reset_calls
if ! mod_run "$R" colonyos mode=systemd binary_url="$URL" binary_sha256="$SUM" && [ "$(mod_exit "$R" colonyos)" = 3 ] &&
	mod_lastlog "$R" colonyos | grep -q 'colony has no schema of its own: set postgres_db_schema: true in the postgres module' &&
	mod_not_called '^systemctl (start|restart)'; then t_pass; else t_fail "exit $(mod_exit "$R" colonyos): $(mod_lastlog "$R" colonyos | tail -n 3)"; fi

t_case "native PostgreSQL: with the schema in place the module goes on"
sed -i 's/SCHEMA_ANSWER:-f/SCHEMA_ANSWER:-t/' "$MOD_REC/ctl/runuser.sh"
if mod_run "$R" colonyos mode=systemd binary_url="$URL" binary_sha256="$SUM" &&
	mod_lastlog "$R" colonyos | grep -q 'colony has its schema in the database postgres'; then t_pass; else t_fail "$(mod_lastlog "$R" colonyos | tail -n 3)"; fi
mod_ctl_reset

t_case "systemd: a download that does not match binary_sha256 is exit 3 and installs nothing"
fresh s2 native-systemd
mod_passthrough curl
mod_exec "$R" colonyos MODE=systemd BINARY_URL="$URL" BINARY_SHA256="$(printf '%064d' 0)"
rc=$?
if [ $rc = 3 ] && [ ! -e "$R/usr/local/bin/colonies" ] && grep -q 'does not match binary_sha256' "$MOD_ERR" &&
	mod_not_called '^systemctl'; then t_pass; else t_fail "exit $rc"; fi

t_case "systemd: a DB password systemd would read differently is exit 3 naming it, before any download"
fresh s4 native-systemd
sed -i "s/^COLONIES_DB_PASSWORD=.*/COLONIES_DB_PASSWORD='it\\\\'s'/" "$R/opt/stack/colonyos.env"
mod_exec "$R" colonyos MODE=systemd BINARY_URL="$URL" BINARY_SHA256="$SUM"
rc=$?
if [ $rc = 3 ] && grep -q "COLONIES_DB_PASSWORD in /opt/stack/colonyos.env holds a quote, a backslash" "$MOD_ERR" &&
	mod_not_called '^(curl|systemctl|colonies) '; then t_pass; else t_fail "exit $rc: $(tail -n 2 "$MOD_ERR")"; fi

t_case "systemd: a failed download is exit 2 (retried)"
fresh s3 native-systemd
mod_passthrough curl
if ! mod_run "$R" colonyos mode=systemd binary_url="http://127.0.0.1:$www_port/missing.tar.gz" binary_sha256="$SUM" &&
	[ "$(mod_exit "$R" colonyos)" = 2 ] && [ "$(mod_attempts "$R" colonyos)" = 3 ] && [ ! -e "$R/usr/local/bin/colonies" ]; then
	t_pass
else t_fail "exit $(mod_exit "$R" colonyos), attempts $(mod_attempts "$R" colonyos)"; fi
