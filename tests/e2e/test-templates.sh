#!/bin/bash
# templates/: every template rendered (tests/tools/tmpl-render) with the
# context fixtures of tests/cases/templates/ and compared with the golden
# output there (REGEN=1 rewrites it), then checked by the real consumers:
# docker-compose config -q, passwords arriving byte-exact and only where
# they belong, the redis command of the compose file run against a real
# redis-server, nginx -t and a real nginx on loopback (HTTP to HTTPS,
# ACME webroot, REST, WebSocket upgrades, the dashboard, gRPC dispatch,
# HTTP/2), systemd-analyze verify for the units, shellcheck and bash -n
# for the scripts; and imagegen rendering whole sites with the real
# modules and templates/index.yml.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib-b.sh
. "$(dirname "$0")/modlib-b.sh"

PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
CASES=$TOP/tests/cases/templates
FIXTURES=(full-compose native-systemd docker-only)

if [ ! -x "$TMPL_RENDER" ]; then
	echo "not ok - tmpl-render is built ($TMPL_RENDER missing: run make)"
	exit 1
fi

# index.yml as "template|path|mode|format|when..." lines.
"$PY" - "$TOP/templates/index.yml" >"$T/index" <<'EOP'
import sys, yaml
for e in yaml.safe_load(open(sys.argv[1])):
    print("|".join([e["template"], e["path"], e.get("mode", "0644"), e.get("format", "")] + e.get("when", [])))
EOP

t_case "index.yml: every template exists, every 'when' names a module, paths are absolute and secrets 0600"
ok=1
while IFS='|' read -r tmpl path mode _ when; do
	[ -f "$TOP/templates/$tmpl" ] || {
		ok=0
		echo "  # $tmpl is missing" >&2
	}
	[[ $path == /* ]] || ok=0
	for m in ${when//|/ }; do [ -f "$TOP/modules/$m/manifest.yml" ] || {
		ok=0
		echo "  # $tmpl: no module $m" >&2
	}; done
	case $path in *secrets/* | *.env) [ "$mode" = 0600 ] || {
		ok=0
		echo "  # $path is $mode" >&2
	} ;; esac
done <"$T/index"
if [ $ok = 1 ] && [ "$(wc -l <"$T/index")" -ge 10 ]; then t_pass; else t_fail "index.yml"; fi

# render FIXTURE: each template whose modules are all in the fixture into
# $T/out/FIXTURE/<base name>; the list in $T/out/FIXTURE.list.
render() {
	local fx=$1 tmpl path mode fmt when m skip mods
	mkdir -p "$T/out/$fx"
	: >"$T/out/$fx.list"
	mods=" $(json_get "$CASES/$fx.json" "' '.join(j['modules'])") "
	while IFS='|' read -r tmpl path mode fmt when; do
		skip=0
		for m in ${when//|/ }; do
			[[ $mods == *" ${m//-/_} "* ]] || skip=1
		done
		[ $skip = 1 ] && continue
		if [ -n "$fmt" ]; then
			"$TMPL_RENDER" --format "$fmt" "$TOP/templates/$tmpl" "$CASES/$fx.json" >"$T/out/$fx/$(basename "$path")" || return 1
		else
			"$TMPL_RENDER" "$TOP/templates/$tmpl" "$CASES/$fx.json" >"$T/out/$fx/$(basename "$path")" || return 1
		fi
		basename "$path" >>"$T/out/$fx.list"
	done <"$T/index"
}

for fx in "${FIXTURES[@]}"; do
	t_case "$fx: every template for its modules renders and matches tests/cases/templates/expected/$fx"
	if render "$fx" 2>"$T/err"; then
		if [ -n "${REGEN:-}" ]; then
			rm -rf "$CASES/expected/$fx"
			mkdir -p "$CASES/expected/$fx"
			cp "$T/out/$fx"/* "$CASES/expected/$fx/"
		fi
		if diff -r "$CASES/expected/$fx" "$T/out/$fx" >"$T/diff"; then t_pass; else t_fail "$(head -n 20 "$T/diff")"; fi
	else t_fail "$(cat "$T/err")"; fi
done

t_case "a template error names the template, line and column (colonyos.env without the postgres module)"
modb_context full-compose "$T/nopg.json" "del j['modules']['postgres']"
if ! "$TMPL_RENDER" "$TOP/templates/colonyos.env.tmpl" "$T/nopg.json" >/dev/null 2>"$T/err" &&
	grep -qE 'colonyos.env.tmpl:[0-9]+:[0-9]+: .*modules.postgres' "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

# ---- compose ------------------------------------------------------------

# project FIXTURE: the rendered compose project in $T/proj/FIXTURE, with the
# two env files the colonyos module writes on the server.
project() {
	local p=$T/proj/$1 f
	mkdir -p "$p/secrets"
	while read -r f; do
		case $f in
		*_password) cp "$T/out/$1/$f" "$p/secrets/" ;;
		docker-compose.yml | *.env) cp "$T/out/$1/$f" "$p/" ;;
		esac
	done <"$T/out/$1.list"
	printf 'COLONIES_SERVER_ID=%064d\n' 1 >"$p/colonyos-server.env"
	cp "$p/colonyos-server.env" "$p/colonyos-keys.env"
}
for fx in "${FIXTURES[@]}"; do project "$fx"; done

t_case "docker-compose config -q accepts every rendered project, the empty one (docker alone) too"
ok=1
for fx in full-compose docker-only; do
	if ! (cd "$T/proj/$fx" && docker-compose config -q) 2>"$T/err"; then
		ok=0
		echo "  # $fx: $(cat "$T/err")" >&2
	fi
done
if [ $ok = 1 ] && grep -qx 'services: {}' "$T/proj/docker-only/docker-compose.yml" &&
	[ ! -e "$T/proj/native-systemd/docker-compose.yml" ]; then t_pass; else t_fail "compose"; fi

t_case "passwords reach the containers byte-exact through the env files, and are nowhere in the compose file"
(cd "$T/proj/full-compose" && docker-compose config) >"$T/config.yml" 2>"$T/err"
if "$PY" - "$CASES/full-compose.json" "$T/config.yml" "$T/proj/full-compose" <<'EOP'; then t_pass; else t_fail "values differ"; fi
import json, sys, yaml
ctx = json.load(open(sys.argv[1]))["modules"]
svc = yaml.safe_load(open(sys.argv[2]))["services"]
proj = sys.argv[3]
# docker-compose config writes a literal '$' as '$$'.
env = lambda s: {k: v.replace("$$", "$") for k, v in svc[s]["environment"].items()}
want = [
    (env("colonies-server")["COLONIES_DB_PASSWORD"], ctx["postgres"]["db_password"]),
    (env("agent-manager")["DB_PASSWORD"], ctx["postgres"]["db_password"]),
    (env("agent-manager")["GIT_TOKEN"], ctx["agent_manager"]["git_token"]),
    (env("agent-manager")["GIT_PRIVATE_KEY"], ctx["agent_manager"]["git_private_key"]),
    (env("agent-manager")["CURSOR_API_KEY"], ctx["agent_manager"]["cursor_api_key"]),
    (env("agent-manager")["STATIC_API_KEY"], ctx["agent_manager"]["api_key"]),
    (env("agent-manager")["ENCRYPTION_KEY"], ctx["agent_manager"]["encryption_key"]),
    (env("agent-manager")["JWT_SECRET"], ctx["agent_manager"]["jwt_secret"]),
    (open(proj + "/secrets/postgres_password").read(), ctx["postgres"]["db_password"] + "\n"),
    (open(proj + "/secrets/redis_password").read(), ctx["redis"]["password"] + "\n"),
]
bad = [w for w in want if w[0] != w[1]]
compose = open(proj + "/docker-compose.yml").read()
leaks = [p for p in (ctx["postgres"]["db_password"], ctx["redis"]["password"]) if p in compose]
for s in ("postgres", "redis"):
    e = svc[s].get("environment", {})
    leaks += [k for k in e if "PASSWORD" in k and not k.endswith("_FILE")]
if bad or leaks:
    print("  # differ: %r, leaks: %r" % (bad, leaks), file=sys.stderr)
sys.exit(1 if bad or leaks else 0)
EOP

t_case "the redis service's command: requirepass from the secret, AOF on, allkeys-lru, against a real redis-server"
"$PY" - "$T/config.yml" >"$T/redis-cmd.sh" <<'EOP'
import sys, yaml
svc = yaml.safe_load(open(sys.argv[1]))["services"]["redis"]
print(svc["command"][2].replace("$$", "$"))
EOP
port=$(free_port)
mkdir -p "$T/redis/bin" "$T/redis/run" "$T/redis/data"
cp "$T/proj/full-compose/secrets/redis_password" "$T/redis/secret"
printf '#!/bin/sh\n' >"$T/redis/bin/chown"
printf '#!/bin/sh\nshift\nexec redis-server "$@" --port %s --bind 127.0.0.1 --dir %s --daemonize no --save ""\n' \
	"$port" "$T/redis/data" >"$T/redis/bin/docker-entrypoint.sh"
chmod 0755 "$T/redis/bin/"*
sed -i -e "s|/run/secrets/redis_password|$T/redis/secret|g" -e "s|/run/redis/|$T/redis/run/|g" "$T/redis-cmd.sh"
PATH="$T/redis/bin:$PATH" MAXMEMORY=256mb POLICY=allkeys-lru sh "$T/redis-cmd.sh" >"$T/redis.log" 2>&1 &
_pids+=($!)
pw=$(json_get "$CASES/full-compose.json" "j['modules']['redis']['password']")
rcli() { REDISCLI_AUTH=$1 redis-cli --no-auth-warning -p "$port" "${@:2}" 2>&1; }
wait_for 10 sh -c "redis-cli -p $port ping 2>&1 | grep -q NOAUTH" || true
if [ "$(rcli "$pw" ping)" = PONG ] && [ "$(rcli "$pw" config get appendonly | tail -n1)" = yes ] &&
	[ "$(rcli "$pw" config get maxmemory-policy | tail -n1)" = allkeys-lru ] &&
	[[ $(rcli "${pw}x" ping) == *WRONGPASS* ]] && [ "$(stat -c %a "$T/redis/run/auth.conf")" = 600 ] &&
	{ [ ! -s "$T/redis.log" ] || ! grep -qF "$pw" "$T/redis.log"; }; then t_pass; else t_fail "$(tail -n 5 "$T/redis.log")"; fi

# ---- nginx --------------------------------------------------------------

mkdir -p "$T/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=colony.example.org \
	-keyout "$T/tls/server.key" -out "$T/tls/fullchain.pem" 2>/dev/null
# nginx_conf FIXTURE OUT [PYTHON]: nginx.conf.tmpl rendered with the
# fixture, its tls_dir the test's certificate.
nginx_conf() {
	modb_context "$1" "$T/$1.nginx.json" "j['modules']['nginx']['tls_dir'] = '$T/tls'; ${3:-pass}" &&
		"$TMPL_RENDER" "$TOP/templates/nginx.conf.tmpl" "$T/$1.nginx.json" >"$2"
}
# main_conf DIR SITE: a main configuration for nginx -p DIR around SITE.
main_conf() {
	mkdir -p "$1"
	cat >"$1/nginx.conf" <<EOF
user root;
pid $1/nginx.pid;
error_log $1/error.log info;
events { worker_connections 64; }
http {
    access_log $1/access.log;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    include $2;
}
EOF
}

t_case "nginx -t accepts the server blocks of every fixture, and refuses one whose certificate is missing"
ok=1
for fx in "${FIXTURES[@]}"; do
	nginx_conf "$fx" "$T/$fx.conf" && main_conf "$T/n-$fx" "$T/$fx.conf"
	if ! nginx -t -q -p "$T/n-$fx" -c "$T/n-$fx/nginx.conf" 2>"$T/err"; then
		ok=0
		echo "  # $fx: $(cat "$T/err")" >&2
	fi
done
sed "s|$T/tls/fullchain.pem|$T/tls/missing.pem|" "$T/full-compose.conf" >"$T/broken.conf"
main_conf "$T/n-broken" "$T/broken.conf"
if [ $ok = 1 ] && ! nginx -t -q -p "$T/n-broken" -c "$T/n-broken/nginx.conf" 2>/dev/null; then t_pass; else t_fail "nginx -t"; fi

# The certbot fixture on loopback: the backends are echo servers, ports
# 80 and 443 become free ones.
grpcb_port="" api_port=""
modb_http grpcb
modb_http api
mkdir -p "$T/webroot/.well-known/acme-challenge"
echo token-content >"$T/webroot/.well-known/acme-challenge/tok123"
# Four ports, none listened on until nginx starts: each unlike the others.
p80=$(free_port)
p443=$(free_port "$p80")
# agent-manager's own servers (tests/e2e/test-agent-manager-contract.sh
# drives them) on free loopback ports too.
p3000=$(free_port "$p80" "$p443")
p8443=$(free_port "$p80" "$p443" "$p3000")
nginx_conf native-systemd "$T/live.conf" "
m = j['modules']; m['nginx']['webroot'] = '$T/webroot'
m['agent_manager'].update(http_port=$p3000, ws_port=$p8443)
m['colonyos'].update(grpc_upstream='127.0.0.1:$grpcb_port', http_port=$api_port)"
sed -i -e "/listen \[::\]/d" -e "s/listen 80 /listen 127.0.0.1:$p80 /" -e "s/listen 443 /listen 127.0.0.1:$p443 /" \
	-e "s/listen $p3000 /listen 127.0.0.1:$p3000 /" -e "s/listen $p8443 /listen 127.0.0.1:$p8443 /" "$T/live.conf"
N=$T/n-live
main_conf "$N" "$T/live.conf"
nginx -p "$N" -c "$N/nginx.conf" -g 'daemon off;' >"$T/nginx.out" 2>&1 &
_pids+=($!)
wait_for 10 curl -s -o /dev/null "http://127.0.0.1:$p80/" || echo "  # nginx did not start: $(cat "$T/nginx.out")"
https() { curl -sk --max-time 10 "$@"; }
B=https://127.0.0.1:$p443

t_case "nginx, port 80: ACME challenges from the webroot, everything else redirected to HTTPS"
if [ "$(curl -s "http://127.0.0.1:$p80/.well-known/acme-challenge/tok123")" = token-content ] &&
	[ "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$p80/api/x?y=1")" = "301 https://127.0.0.1/api/x?y=1" ]; then
	t_pass
else t_fail "$(curl -si "http://127.0.0.1:$p80/api/x" | head -n 3)"; fi

t_case "nginx, 443: REST to colonies' http_port over HTTP/2, HSTS (certbot); agent-manager is not on 443"
if [ "$(https --http2 -o /dev/null -w '%{http_version}' "$B/")" = 2 ] &&
	[ "$(https "$B/api/v1/jobs" | head -n1)" = "api /api/v1/jobs" ] &&
	[[ $(https -D - -o /dev/null "$B/") == *$'\n'[Ss]trict-[Tt]ransport-[Ss]ecurity:\ max-age=31536000* ]] &&
	[ "$(https "$B/dashboard/app.js" | head -n1)" = "api /dashboard/app.js" ]; then t_pass; else
	t_fail "$(https -i "$B/api/v1/jobs" | head -n 5)"
fi

t_case "nginx, WebSocket: Upgrade and Connection headers passed on; plain requests get Connection: close"
ws=$(https --http1.1 -H 'Upgrade: websocket' -H 'Connection: Upgrade' "$B/ws")
plain=$(https "$B/ws")
if [ "$ws" = $'api /ws\nupgrade: websocket\nconnection: upgrade' ] && [[ $plain == *$'\nconnection: close' ]]; then t_pass; else
	t_fail "$ws / $plain"
fi

t_case "nginx, colonies API: POST /api and the /pubsub WebSocket go to colonies' http_port"
ws=$(https --http1.1 -H 'Upgrade: websocket' -H 'Connection: Upgrade' "$B/pubsub")
if [ "$(https -X POST --data-binary '{}' "$B/api" | head -n1)" = "api /api" ] &&
	[ "$ws" = $'api /pubsub\nupgrade: websocket\nconnection: upgrade' ]; then t_pass; else t_fail "$(https -i -X POST "$B/api" | head -n 5) / $ws"; fi

t_case "nginx, gRPC off by default (no colonies release serves it): no grpc_pass, no content-type map"
if ! grep -q 'grpc' "$T/out/native-systemd/firstboot.conf" && ! grep -q 'grpc' "$T/out/full-compose/firstboot.conf"; then t_pass; else
	t_fail "$(grep -n grpc "$T/out/native-systemd/firstboot.conf" | head -n 3)"
fi

t_case "nginx, gRPC with grpc_upstream: application/grpc requests go to grpc_pass there, not to REST"
code=$(https --http2 -o "$T/grpc.body" -w '%{http_code}' -X POST -H 'Content-Type: application/grpc' \
	-H 'TE: trailers' --data-binary @/dev/null "$B/colonies.Colonies/GetColonies")
if [ "$code" = 502 ] && ! grep -q '^rest' "$T/grpc.body" &&
	grep -q "upstream: \"grpc://127.0.0.1:$grpcb_port\"" "$N/error.log"; then t_pass; else
	t_fail "code $code $(tail -n 3 "$N/error.log")"
fi

# ---- units and scripts --------------------------------------------------

t_case "systemd-analyze verify: colonies-server.service and agent-manager.service of every fixture"
mkdir -p "$T/units"
ok=1
for fx in full-compose native-systemd; do
	for u in colonies-server.service agent-manager.service; do
		sed 's|^ExecStart=/usr/local/bin/[a-z-]*|ExecStart=/bin/true|' "$T/out/$fx/$u" >"$T/units/$u"
	done
	(cd "$T/units" && systemd-analyze verify --man=no colonies-server.service agent-manager.service) >"$T/verify" 2>&1
	[ -s "$T/verify" ] && {
		ok=0
		echo "  # $fx: $(cat "$T/verify")" >&2
	}
done
sed 's/^Type=simple/Type=simpel/' "$T/units/agent-manager.service" >"$T/units/broken.service"
(cd "$T/units" && systemd-analyze verify --man=no broken.service) >"$T/verify" 2>&1
if [ $ok = 1 ] && grep -q simpel "$T/verify"; then t_pass; else t_fail "verify"; fi

t_case "the rendered scripts pass shellcheck and bash -n"
ok=1
for fx in "${FIXTURES[@]}"; do
	for s in backup_db.sh restore_db.sh update_server.sh; do
		[ -f "$T/out/$fx/$s" ] || continue
		if ! bash -n "$T/out/$fx/$s" 2>"$T/sc" || ! shellcheck -s bash "$T/out/$fx/$s" >"$T/sc" 2>&1; then
			ok=0
			echo "  # $fx/$s: $(head -n 5 "$T/sc")" >&2
		fi
	done
done
if [ $ok = 1 ] && [ -f "$T/out/full-compose/backup_db.sh" ] && [ -f "$T/out/docker-only/update_server.sh" ]; then t_pass; else
	t_fail "scripts"
fi

# ---- whole sites through imagegen ---------------------------------------

KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIg7Lq0PvPZ5wq3dD2n2b8fQjYbq3xq7c8vQx8Jd9f1e ops@example.org"
# site NAME MODULES-YAML [TLS-YAML]: a site.yaml in $T/sites/NAME.
site() {
	mkdir -p "$T/sites/$1"
	printf 'name: %s\nhostname: %s-1\nprovider: hetzner\n%s\nmodules:\n%s\n' "$1" "$1" "${3:-}" "$2" >"$T/sites/$1/site.yaml"
}
site full "  base: {ssh_authorized_keys: \"$KEY\"}
  docker: {}
  postgres: {}
  redis: {}
  nginx: {}
  colonyos: {}
  agent-manager: {git_token: \"tok\$en'x\", cursor_api_key: {env: CURSOR_KEY}}
  compose-up: {}
  backup: {age_recipients: age1a0jfl9nlzp0w3gq79m8gt6qldx3wsf4cw5rjrlsaz4ra58lfqveq9czzn8}
  update: {schedule: \"Sun *-*-* 04:00:00\"}" "tls: {mode: self-signed, domain: colony.example.org}"
site native "  postgres: {mode: native}
  redis: {mode: native}
  colonyos: {mode: systemd}
  agent-manager: {mode: systemd, auth_mode: keycloak, keycloak_url: \"https://sso.example.org\", keycloak_realm: r, keycloak_client_id: c, keycloak_client_secret: s}
  nginx: {tls_mode: certbot, domain: colony.example.org, email: ops@example.org}
  backup: {age_recipients: age1a0jfl9nlzp0w3gq79m8gt6qldx3wsf4cw5rjrlsaz4ra58lfqveq9czzn8}" "tls: {mode: certbot, domain: colony.example.org, email: ops@example.org}"
site small "  docker: {}
  redis: {}
  nginx: {tls_mode: none}
  update: {}" "tls: {mode: none}"
site nodb "  docker: {}
  colonyos: {}
  agent-manager: {}
  backup: {age_recipients: age1a0jfl9nlzp0w3gq79m8gt6qldx3wsf4cw5rjrlsaz4ra58lfqveq9czzn8, mysql_database: shop}"

t_case "imagegen renders whole sites with the real modules and templates: each file only with its modules"
ok=1
for s in full native small nodb; do
	CURSOR_KEY='cur$or key' "$IMAGEGEN" render "$T/sites/$s/site.yaml" -o "$T/sites/$s/out" >"$T/out.$s" 2>&1 || {
		ok=0
		echo "  # $s: $(cat "$T/out.$s")" >&2
	}
done
files() { (cd "$T/sites/$1/out/files" && find . -type f | sort | tr '\n' ' '); }
if [ $ok = 1 ] && [[ "$(files small)" == *"./opt/stack/docker-compose.yml ./opt/stack/secrets/redis_password"* ]] &&
	[[ "$(files small)" != *colonyos* ]] && [[ "$(files small)" == *./usr/local/sbin/update_server.sh* ]] &&
	[[ "$(files nodb)" != *colonyos.env* ]] && [[ "$(files nodb)" == *backup_db.sh* ]] &&
	! grep -q "pg_dump -d" "$T/sites/nodb/out/files/usr/local/sbin/backup_db.sh" &&
	[[ "$(files native)" == *./etc/systemd/system/colonies-server.service* ]] &&
	[ "$(files full | wc -w)" -ge 14 ]; then t_pass; else t_fail "$(files small) | $(files nodb)"; fi

t_case "the full site's bundle: modes as index.yml says, firstboot validate accepts it, its compose project is valid"
O=$T/sites/full/out
modes=$(cd "$O/files" && stat -c '%a %n' opt/stack/docker-compose.yml opt/stack/colonyos.env opt/stack/agent-manager.env \
	opt/stack/secrets/postgres_password usr/local/sbin/backup_db.sh 2>&1 | tr '\n' ' ')
P=$T/proj/full-site
mkdir -p "$P/secrets"
cp "$O/files/opt/stack/"*.yml "$O/files/opt/stack/"*.env "$P/"
cp "$O/files/opt/stack/secrets/"* "$P/secrets/"
touch "$P/colonyos-server.env" "$P/colonyos-keys.env"
if grep -qF "mode: \"0600\"" "$O/bundle.yaml" && [ "$("$PY" - "$O/bundle.yaml" <<'EOP'
import sys, yaml
b = yaml.safe_load(open(sys.argv[1]))
m = {f["path"]: f["mode"] for f in b["files"]}
print(m["/opt/stack/agent-manager.env"], m["/opt/stack/secrets/redis_password"], m["/usr/local/sbin/update_server.sh"], m["/opt/stack/docker-compose.yml"])
EOP
)" = "0600 0600 0755 0644" ] && "$FIRSTBOOT" validate "$O" >"$T/v" 2>&1 && (cd "$P" && docker-compose config -q) 2>"$T/err" &&
	grep -qx "CURSOR_API_KEY='cur\$or key'" "$P/agent-manager.env" &&
	grep -qx "GIT_TOKEN='tok\$en\\\\'x'" "$P/agent-manager.env"; then t_pass; else
	t_fail "$modes $(cat "$T/v" "$T/err")"
fi

t_case "rendering the site again changes no file"
if CURSOR_KEY='cur$or key' "$IMAGEGEN" render "$T/sites/full/site.yaml" -o "$T/sites/full/out2" >"$T/err" 2>&1 &&
	diff -r "$O/files" "$T/sites/full/out2/files" >"$T/diff"; then t_pass; else t_fail "$(head -n 10 "$T/diff" "$T/err")"; fi
