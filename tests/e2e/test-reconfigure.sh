#!/bin/bash
# Day 2 with the stack's own modules: their manifests' `watches:` list the
# bundle files imagegen renders for them (templates/index.yml), so a new
# bundle for the same instance that changes one of those files runs again
# exactly the module that reads it, with "watched file changed: PATH".
# nginx's `nginx -t` is the real nginx on the root's conf.d (as in
# test-mod-nginx.sh); docker is modlib-b.sh's simulator whose `compose
# config` is Debian's real docker-compose (as in test-mod-compose-up.sh).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib.sh
. "$(dirname "$0")/modlib.sh"
# shellcheck source=tests/e2e/modlib-b.sh
. "$(dirname "$0")/modlib-b.sh"

MOD_INSTANCE="i-reconf"
S=$T/src
mkdir -p "$S/secrets"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=colony.example.org" \
	-keyout "$S/server.key" -out "$S/fullchain.pem" 2>/dev/null
site() { printf 'server {\n    listen 80;\n    location / { proxy_pass http://127.0.0.1:%s; }\n}\n' "$1"; }
site 8080 >"$S/site.conf"
ctx=$TOP/tests/cases/templates/full-compose.json
modb_render docker-compose.yml.tmpl "$ctx" "$S/docker-compose.yml"
modb_render colonyos.env.tmpl "$ctx" "$S/colonyos.env" 0600
modb_render agent-manager.env.tmpl "$ctx" "$S/agent-manager.env" 0600
modb_render postgres_password.tmpl "$ctx" "$S/secrets/postgres_password" 0600
modb_render redis_password.tmpl "$ctx" "$S/secrets/redis_password" 0600

R=$T/root
mod_root "$R"
mkdir -p "$R/etc/nginx/conf.d" "$R/opt/stack"
printf 'COLONIES_SERVER_ID=%064d\n' 1 >"$R/opt/stack/colonyos-server.env"
cp "$R/opt/stack/colonyos-server.env" "$R/opt/stack/colonyos-keys.env"
mod_recorders "$T/rec" "${MOD_COMMANDS[@]}"
modb_docker_sim
# nginx -t: the real nginx on the root's conf.d, paths moved under it.
mod_ctl nginx <<EOF
for a; do [ "\$a" = -t ] && t=1; done
[ -n "\${t:-}" ] || exit 0
d=$T/nginx-t
rm -rf "\$d"
mkdir -p "\$d/conf.d"
for f in "$R"/etc/nginx/conf.d/*.conf; do
	[ -f "\$f" ] || continue
	sed -e "s|/etc/|$R/etc/|g" -e "s|/var/|$R/var/|g" "\$f" >"\$d/conf.d/\$(basename "\$f")"
done
printf 'pid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n  access_log off;\n  include %s/conf.d/*.conf;\n}\n' "\$d" "\$d" >"\$d/nginx.conf"
exec /usr/sbin/nginx -t -q -e stderr -c "\$d/nginx.conf"
EOF

# bundle: the site's files as imagegen lays them out, both modules.
bundle() {
	mod_files_reset
	mod_file "$S/site.conf" /etc/nginx/conf.d/firstboot.conf 0644
	mod_file "$S/fullchain.pem" /etc/firstboot/tls/fullchain.pem 0644
	mod_file "$S/server.key" /etc/firstboot/tls/server.key 0600
	mod_file "$S/docker-compose.yml" /opt/stack/docker-compose.yml 0644
	mod_file "$S/colonyos.env" /opt/stack/colonyos.env 0600
	mod_file "$S/agent-manager.env" /opt/stack/agent-manager.env 0600
	mod_file "$S/secrets/postgres_password" /opt/stack/secrets/postgres_password 0600
	mod_file "$S/secrets/redis_password" /opt/stack/secrets/redis_password 0600
}
apply() { bundle && mod_run "$R" nginx -- compose-up; }
why() { _mod_status "$R" "$1" why; }
ran() { mod_called "^$1"; }

for m in nginx compose-up; do
	t_check "the $m manifest validates with its watches" "$FIRSTBOOT" validate "$TOP/modules/$m/manifest.yml"
done

t_case "first boot: both modules run"
if apply && [ "$(why nginx)" = "first run" ] && [ "$(why compose-up)" = "first run" ] &&
	[ -f "$R/var/lib/firstboot/ready" ]; then t_pass; else t_fail "$(why nginx) / $(why compose-up): $(cat "$MOD_ERR")"; fi

t_case "the same bundle again: nothing runs"
mod_reset_calls
if apply && [ "$(why nginx)" = unchanged ] && [ "$(why compose-up)" = unchanged ] && ! ran nginx && ! ran docker; then
	t_pass
else t_fail "$(why nginx) / $(why compose-up)"; fi

t_case "the nginx site changed: only nginx runs again (nginx -t, reload), said why"
site 8081 >"$S/site.conf"
mod_reset_calls
if apply && [ "$(why nginx)" = "watched file changed: /etc/nginx/conf.d/firstboot.conf" ] &&
	[ "$(why compose-up)" = unchanged ] && mod_order '^nginx -t$' '^systemctl reload nginx' && ! ran docker; then
	t_pass
else t_fail "$(why nginx) / $(why compose-up): $(mod_calls "" | tr '\n' ';')"; fi

t_case "a new certificate: only nginx runs again, naming both files"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=colony.example.org" \
	-keyout "$S/server.key" -out "$S/fullchain.pem" 2>/dev/null
mod_reset_calls
if apply && [ "$(why nginx)" = "watched file changed: /etc/firstboot/tls/fullchain.pem; watched file changed: /etc/firstboot/tls/server.key" ] &&
	[ "$(why compose-up)" = unchanged ] && mod_called '^systemctl reload nginx' && ! ran docker; then
	t_pass
else t_fail "$(why nginx) / $(why compose-up)"; fi

t_case "an env file of the project changed: only compose-up runs again (up -d, nothing forced), said why"
echo "COLONIES_VERBOSE=true" >>"$S/colonyos.env"
mod_reset_calls
if apply && [ "$(why compose-up)" = "watched file changed: /opt/stack/colonyos.env" ] && [ "$(why nginx)" = unchanged ] &&
	mod_called '^docker compose .* up -d --remove-orphans$' && mod_not_called ' (down|stop|restart|rm|kill)( |$)' &&
	mod_not_called 'force-recreate' && ! ran nginx; then
	t_pass
else t_fail "$(why nginx) / $(why compose-up): $(mod_calls "" | tr '\n' ';')"; fi

t_case "a secret of the project changed: compose-up runs again, the file named, its content never"
printf 'another-pg-password-1234' >"$S/secrets/postgres_password"
mod_reset_calls
if apply && [ "$(why compose-up)" = "watched file changed: /opt/stack/secrets/postgres_password" ] &&
	[ "$(why nginx)" = unchanged ] && ! grep -rqF another-pg-password-1234 "$R/var/lib/firstboot/status.json" \
	"$R/var/lib/firstboot/instances/$MOD_INSTANCE/done"; then
	t_pass
else t_fail "$(why nginx) / $(why compose-up)"; fi

t_case "a site nginx -t refuses: nginx fails (exit 3), no reload, no ready marker"
printf 'server {\n    listen 80;\n    proxy_pass_bogus on;\n}\n' >"$S/site.conf"
mod_reset_calls
if ! apply && [ "$(mod_exit "$R" nginx)" = 3 ] && mod_not_called '^systemctl reload' &&
	[ ! -e "$R/var/lib/firstboot/ready" ] && mod_lastlog "$R" nginx | grep -q 'proxy_pass_bogus'; then
	t_pass
else t_fail "exit $(mod_exit "$R" nginx): $(mod_calls "" | tr '\n' ';')"; fi

t_case "fixed: nginx runs again (failed last time), compose-up does not"
site 8082 >"$S/site.conf"
mod_reset_calls
if apply && [[ "$(why nginx)" == "failed last time"* ]] && [ "$(why compose-up)" = unchanged ] &&
	mod_called '^systemctl reload nginx' && [ -f "$R/var/lib/firstboot/ready" ]; then
	t_pass
else t_fail "$(why nginx) / $(why compose-up)"; fi

t_case "a changed compose file docker-compose refuses: compose-up fails (exit 3) before any up, no ready marker"
cp "$S/docker-compose.yml" "$S/good-compose.yml"
printf 'services:\n  web:\n    image: [not, a, string]\n' >"$S/docker-compose.yml"
mod_reset_calls
if ! apply && [ "$(mod_exit "$R" compose-up)" = 3 ] && [ ! -e "$R/var/lib/firstboot/ready" ] &&
	[ "$(why compose-up)" = "watched file changed: /opt/stack/docker-compose.yml" ] && mod_not_called ' (up|pull) ' &&
	[ "$(why nginx)" = unchanged ]; then
	t_pass
else t_fail "exit $(mod_exit "$R" compose-up) $(why compose-up): $(mod_calls "" | tr '\n' ';')"; fi
cp "$S/good-compose.yml" "$S/docker-compose.yml"

# ---- inputs a module cannot change in place (reprovision: in its manifest)
R2=$T/reprov
mod_root "$R2"
PW=Rp$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
# rb NAME SERIAL DATA_DIR [MAXMEMORY]: a bundle of the redis module (compose
# mode: it only prepares its data directory).
rb() {
	local b=$T/$1
	rm -rf "$b"
	mkdir -p "$b"
	printf 'version: 1\nname: reprov\nserial: %s\nmodules:\n  - {id: redis, inputs: {password: "%s", data_dir: %s, maxmemory: %s}}\n' \
		"$2" "$PW" "$3" "${4:-256mb}" >"$b/bundle.yaml"
	"$TOP/tests/e2e/mkbundle.sh" "$b" "$b.tgz"
}
rb rp1 1 /srv/redis-a
rb rp2 2 /srv/redis-b
rb rp3 3 /srv/redis-a 64mb
t_check "reprovision: the first boot prepares /srv/redis-a" \
	"$FIRSTBOOT" run --root "$R2" --user-data "$T/rp1.tgz" --instance-id i-reprov

t_case "reprovision: plan shows 'requires reprovisioning: data_dir' and that apply refuses it, exit 2, nothing written"
before=$(tree_snapshot "$R2")
"$FIRSTBOOT" plan --root "$R2" --user-data "$T/rp2.tgz" >"$T/rp2.plan" 2>&1
prc=$?
"$FIRSTBOOT" plan --root "$R2" --user-data "$T/rp2.tgz" --json >"$T/rp2.json" 2>&1
if [ "$prc" = 2 ] && grep -qx '  run   redis: requires reprovisioning: data_dir' "$T/rp2.plan" &&
	grep -q '^apply refuses this bundle: module redis cannot change it in place' "$T/rp2.plan" &&
	[ "$(json_get "$T/rp2.json" "[m['requires_reprovisioning'] for m in j['modules'] if m['id'] == 'redis'][0]")" = True ] &&
	[ "$(tree_snapshot "$R2")" = "$before" ]; then t_pass; else t_fail "plan $prc: $(cat "$T/rp2.plan" "$T/rp2.json")"; fi

t_case "reprovision: apply refuses it, exit 1, naming the module and input, nothing written, the marker kept"
"$FIRSTBOOT" apply --root "$R2" --user-data "$T/rp2.tgz" >"$T/rp2.out" 2>&1
arc=$?
if [ "$arc" = 1 ] && grep -q 'module redis: requires reprovisioning: data_dir; it cannot change on a running server' "$T/rp2.out" &&
	[ "$(tree_snapshot "$R2")" = "$before" ] && [ ! -e "$R2/srv/redis-b" ] && [ -f "$R2/var/lib/firstboot/ready" ]; then
	t_pass
else t_fail "apply $arc: $(cat "$T/rp2.out")"; fi

t_case "reprovision: an input it can change in place (maxmemory) is applied as usual"
"$FIRSTBOOT" apply --root "$R2" --user-data "$T/rp3.tgz" >"$T/rp3.out" 2>&1
arc=$?
if [ "$arc" = 0 ] && [ "$(_mod_status "$R2" redis why)" = "inputs changed: maxmemory" ] &&
	[ -f "$R2/var/lib/firstboot/ready" ]; then t_pass; else t_fail "apply $arc: $(cat "$T/rp3.out")"; fi

t_case "reprovision: a boot whose user-data changes it fails closed: exit 1, status failed naming it, no ready marker, nothing applied"
rb rp4 4 /srv/redis-b 64mb
"$FIRSTBOOT" run --root "$R2" --user-data "$T/rp4.tgz" --instance-id i-reprov >"$T/rp4.out" 2>&1
rrc=$?
if [ "$rrc" = 1 ] && [ "$(jq -r .state "$R2/var/lib/firstboot/status.json")" = failed ] &&
	jq -r .error "$R2/var/lib/firstboot/status.json" | grep -q '^module redis: requires reprovisioning: data_dir' &&
	[ ! -e "$R2/var/lib/firstboot/ready" ] && [ ! -e "$R2/srv/redis-b" ]; then t_pass; else t_fail "run $rrc: $(cat "$T/rp4.out")"; fi
