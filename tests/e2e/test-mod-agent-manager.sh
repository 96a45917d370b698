#!/bin/bash
# The agent-manager module through the real agent on a temporary root with
# recorders: compose mode (the service up, then GET /api/health on
# app_port and the Socket.IO port), Debian's docker-compose when the plugin
# is missing, the systemd mode, a second run, a service that becomes
# healthy late, one that never does (2), a rendered env file that is
# missing, readable by others or without ENCRYPTION_KEY/JWT_SECRET (3), a
# value systemd would read differently in systemd mode (3), bad input (1),
# and no secret on a command line or in a log.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib.sh
. "$(dirname "$0")/modlib.sh"
# shellcheck source=tests/e2e/modlib-b.sh
. "$(dirname "$0")/modlib-b.sh"

t_check "the agent-manager manifest validates" "$FIRSTBOOT" validate "$TOP/modules/agent-manager/manifest.yml"

API_KEY=Abc123Def456Ghi789Jkl012Mno345Pqr678Stu9
TOKEN='ghp_$ecret'\''token"with#hash'
# fresh NAME [FIXTURE]: a root with the files imagegen renders for
# agent-manager (from tests/cases/templates/FIXTURE.json) and recorders.
fresh() {
	local ctx=$TOP/tests/cases/templates/${2:-full-compose}.json
	R=$T/$1
	mod_root "$R"
	mod_recorders "$T/$1.rec" "${MOD_COMMANDS[@]}"
	mkdir -p "$R/opt/stack" "$R/etc/systemd/system"
	modb_render docker-compose.yml.tmpl "$ctx" "$R/opt/stack/docker-compose.yml"
	modb_render agent-manager.env.tmpl "$ctx" "$R/opt/stack/agent-manager.env" 0600
	modb_render agent-manager.service.tmpl "$ctx" "$R/etc/systemd/system/agent-manager.service"
}
F=$T/c1/opt/stack/docker-compose.yml

t_case "compose: /opt/agents made, the service up, then GET /api/health and the Socket.IO port answer"
fresh c1
if mod_run "$R" agent-manager api_key="$API_KEY" git_token="$TOKEN" && [ -d "$R/opt/agents" ] &&
	mod_order "^docker compose -f $F up -d agent-manager\$" '^curl -fsS -o /dev/null --max-time 5 http://127\.0\.0\.1:13000/api/health$' \
		'^curl -sS -o /dev/null --max-time 5 http://127\.0\.0\.1:18080/socket\.io/\?EIO=4&transport=polling$' && mod_not_called '^systemctl '; then t_pass; else
	t_fail "calls: $(mod_calls "" | tr '\n' ';')"
fi

t_case "no secret input on a command line, in the agent's output and logs, or in a world-readable file"
if mod_no_secrets "$R" "$API_KEY" "$TOKEN" && grep -qxF "STATIC_API_KEY=$API_KEY" "$R/opt/stack/agent-manager.env"; then t_pass; else
	t_fail "a secret leaked"
fi

t_case "a second run changes nothing: the same idempotent up, no restart, files unchanged"
mod_reset_calls
before=$(tree_snapshot "$R")
if mod_run "$R" agent-manager api_key="$API_KEY" git_token="$TOKEN" &&
	[ "$(mod_calls docker | grep -c ' up ')" = 1 ] && mod_not_called '(restart|down|stop|rm) ' &&
	[ "$(tree_snapshot "$R")" = "$before" ]; then t_pass; else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "healthy only after two refused health checks: waited for, one attempt"
fresh c2
mod_fail curl 7 '/health' 2
if mod_run "$R" agent-manager api_key="$API_KEY" && [ "$(mod_attempts "$R" agent-manager)" = 1 ] &&
	[ "$(mod_calls curl | grep -c '/health')" = 3 ]; then t_pass; else t_fail "attempts $(mod_attempts "$R" agent-manager)"; fi

t_case "never healthy: exit 2 after wait_seconds, retried"
fresh c3
mod_fail curl 7 '/health'
if ! mod_run "$R" agent-manager api_key="$API_KEY" wait_seconds=1 && [ "$(mod_exit "$R" agent-manager)" = 2 ] &&
	[ "$(mod_attempts "$R" agent-manager)" = 3 ] && grep -q '/health did not answer within 1s' "$(mod_log "$R" agent-manager)"; then
	t_pass
else t_fail "exit $(mod_exit "$R" agent-manager)"; fi

t_case "a failing compose up is exit 2; Debian's docker-compose is used without the plugin"
fresh c4
mod_fail docker 1 'compose version'
mod_fail docker-compose 1 ' up '
if ! mod_run "$R" agent-manager api_key="$API_KEY" && [ "$(mod_exit "$R" agent-manager)" = 2 ] &&
	mod_called "^docker-compose -f $T/c4/opt/stack/docker-compose.yml up -d agent-manager\$" && mod_not_called '^curl'; then
	t_pass
else t_fail "exit $(mod_exit "$R" agent-manager), calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "the env file missing, or readable by others: exit 3, nothing started"
fresh c5
rm "$R/opt/stack/agent-manager.env"
mod_exec "$R" agent-manager API_KEY="$API_KEY"
rc1=$?
grep -q 'agent-manager.env is missing' "$MOD_ERR" && m1=1 || m1=0
modb_render agent-manager.env.tmpl "$TOP/tests/cases/templates/full-compose.json" "$R/opt/stack/agent-manager.env" 0644
mod_exec "$R" agent-manager API_KEY="$API_KEY"
rc2=$?
if [ $rc1 = 3 ] && [ "$m1" = 1 ] && [ $rc2 = 3 ] && grep -q 'must be mode 0600' "$MOD_ERR" && mod_not_called '^docker .* up'; then
	t_pass
else t_fail "exits $rc1 $rc2"; fi

t_case "links out of the root: /opt/stack or the env file pointing at the host's are resolved inside the root: exit 3, nothing read or started"
fresh c5b
mkdir -p "$T/host-stack"
cp -p "$R/opt/stack/agent-manager.env" "$R/opt/stack/docker-compose.yml" "$T/host-stack/"
rm "$R/opt/stack/agent-manager.env"
ln -s "$T/host-stack/agent-manager.env" "$R/opt/stack/agent-manager.env"
mod_exec "$R" agent-manager API_KEY="$API_KEY"
rc1=$?
rm -rf "$R/opt/stack"
ln -s "$T/host-stack" "$R/opt/stack"
mod_exec "$R" agent-manager API_KEY="$API_KEY"
rc2=$?
if [ $rc1 = 3 ] && [ $rc2 = 3 ] && grep -q 'agent-manager.env is missing' "$MOD_ERR" && mod_not_called '^docker .* up'; then
	t_pass
else t_fail "exits $rc1 $rc2: $(cat "$MOD_ERR")"; fi

t_case "bad input is exit 1 before anything is called"
fresh c6
ok=1
for kv in "API_KEY=short" "API_KEY=$API_KEY|HTTP_PORT=8443" "API_KEY=$API_KEY|APP_WS_PORT=3000" \
	"API_KEY=$API_KEY|IMAGE_TAG=a:b" "API_KEY=$API_KEY|ENCRYPTION_KEY=$(head -c 31 /dev/zero | base64)" \
	"API_KEY=$API_KEY|ENCRYPTION_KEY=$(head -c 33 /dev/zero | base64)" "API_KEY=$API_KEY|APP_PORT=0" \
	"AUTH_MODE=keycloak|KEYCLOAK_URL=https://sso.example.org|KEYCLOAK_REALM=r|KEYCLOAK_CLIENT_ID=c" \
	"AUTH_MODE=ldap" "API_KEY=$API_KEY|MODE=nomad" "API_KEY=$API_KEY|MODE=systemd|BINARY_URL=https://example.org/am"; do
	IFS='|' read -ra args <<<"$kv"
	mod_exec "$R" agent-manager "${args[@]}"
	rc=$?
	[ $rc = 1 ] || {
		ok=0
		echo "  # $kv: exit $rc" >&2
	}
done
if [ $ok = 1 ] && mod_not_called '^(docker|curl|systemctl) '; then t_pass; else t_fail "bad input"; fi

t_case "keycloak: the agent requires its inputs, the client secret stays out of logs and command lines"
fresh c7 native-systemd
mod_run "$R" agent-manager mode=systemd auth_mode=keycloak
rc=$?
grep -q "missing required input 'keycloak_url'" "$MOD_ERR" && m=1 || m=0
printf '#!/bin/sh\n' >"$R/usr/local/bin/agent-manager" 2>/dev/null || {
	mkdir -p "$R/usr/local/bin"
	printf '#!/bin/sh\n' >"$R/usr/local/bin/agent-manager"
}
chmod 0755 "$R/usr/local/bin/agent-manager"
if [ $rc != 0 ] && [ "$m" = 1 ] && mod_run "$R" agent-manager mode=systemd auth_mode=keycloak \
	keycloak_url=https://sso.example.org/auth keycloak_realm=colony keycloak_client_id=agent-manager \
	keycloak_client_secret='s3cr3t-client-secret' &&
	mod_no_secrets "$R" s3cr3t-client-secret; then t_pass; else t_fail "rc $rc, calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "systemd: daemon-reload, enable, start, then healthy; a second run starts nothing"
if mod_order '^systemctl daemon-reload' '^systemctl enable agent-manager' '^systemctl start agent-manager' \
	'^curl -fsS -o /dev/null --max-time 5 http://127\.0\.0\.1:13000/api/health$' && mod_not_called '^docker '; then
	mod_reset_calls
	if mod_run "$R" agent-manager mode=systemd auth_mode=keycloak \
		keycloak_url=https://sso.example.org/auth keycloak_realm=colony keycloak_client_id=agent-manager \
		keycloak_client_secret='s3cr3t-client-secret' && mod_not_called '^systemctl (daemon-reload|enable|start|restart)' &&
		mod_called '^curl .*/api/health$'; then t_pass; else t_fail "second run: $(mod_calls "" | tr '\n' ';')"; fi
else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "systemd: a changed env file (imagegen rendered a new JWT_SECRET) restarts agent-manager once, nothing else; the same again restarts nothing"
KC=(mode=systemd auth_mode=keycloak keycloak_url=https://sso.example.org/auth keycloak_realm=colony keycloak_client_id=agent-manager
	keycloak_client_secret=s3cr3t-client-secret)
grep -q '^JWT_SECRET=' "$R/opt/stack/agent-manager.env" || echo "  # the fixture's env file has no JWT_SECRET" >&2
sed -i 's/^JWT_SECRET=.*/JWT_SECRET=an0ther-jwt-secret-value/' "$R/opt/stack/agent-manager.env"
mod_reset_calls
if mod_run "$R" agent-manager "${KC[@]}" &&
	[ "$(mod_calls systemctl | grep -c '^systemctl restart agent-manager$')" = 1 ] &&
	mod_not_called '^systemctl (daemon-reload|enable|start|stop)|^(apt-get|docker|curl -fsSL) ' &&
	grep -q 'env file changed: restarting agent-manager' "$(mod_log "$R" agent-manager)"; then
	mod_reset_calls
	if mod_run "$R" agent-manager "${KC[@]}" &&
		mod_not_called '^systemctl (daemon-reload|enable|start|restart)' && mod_called '^curl .*/api/health$'; then
		t_pass
	else t_fail "third run: $(mod_calls "" | tr '\n' ';')"; fi
else t_fail "calls: $(mod_calls "" | tr '\n' ';')"; fi

t_case "systemd: the state checksum a link to a file out of the root (holding the right sum): not read, agent-manager restarted, the link replaced by the file, the outside file untouched"
st=$R/var/lib/firstboot-stack/state/agent-manager.sha256
cp "$st" "$T/am-outside.sha256"
ln -sf "$T/am-outside.sha256" "$st"
out_before=$(stat -c '%Y %s' "$T/am-outside.sha256")
mod_reset_calls
if mod_run "$R" agent-manager "${KC[@]}" && [ "$(mod_calls systemctl | grep -c '^systemctl restart agent-manager$')" = 1 ] &&
	[ -f "$st" ] && [ ! -L "$st" ] && cmp -s "$st" "$T/am-outside.sha256" && [ "$(stat -c '%Y %s' "$T/am-outside.sha256")" = "$out_before" ]; then t_pass; else
	t_fail "exit $(mod_exit "$R" agent-manager): $(mod_calls systemctl | tr '\n' ';')"
fi

t_case "systemd: a value systemd would read differently is exit 3 naming it, before any download"
fresh c9 native-systemd
sed -i "s/^JWT_SECRET=.*/JWT_SECRET='a\${:-\$}{b}'/" "$R/opt/stack/agent-manager.env"
mod_exec "$R" agent-manager API_KEY="$API_KEY" MODE=systemd BINARY_URL=http://127.0.0.1:9/am BINARY_SHA256="$(printf '%064d' 0)"
rc=$?
if [ $rc = 3 ] && grep -q "JWT_SECRET in /opt/stack/agent-manager.env holds a quote, a backslash" "$MOD_ERR" &&
	mod_not_called '^(curl|systemctl) '; then t_pass; else t_fail "exit $rc: $(tail -n 2 "$MOD_ERR")"; fi

t_case "an env file without ENCRYPTION_KEY or JWT_SECRET (the app exits without them): exit 3 naming it, nothing started"
ok=1
for v in ENCRYPTION_KEY JWT_SECRET DB_DATABASE; do
	fresh "c10$v"
	sed -i "/^$v=/d" "$R/opt/stack/agent-manager.env"
	mod_exec "$R" agent-manager API_KEY="$API_KEY"
	rc=$?
	if [ $rc != 3 ] || ! grep -q "agent-manager.env has no $v" "$MOD_ERR" || mod_called '^(docker|curl) '; then
		ok=0
		echo "  # $v: exit $rc" >&2
	fi
done
if [ $ok = 1 ]; then t_pass; else t_fail "a missing variable was not refused"; fi
