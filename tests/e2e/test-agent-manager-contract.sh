#!/bin/bash
# agent-manager's contract: what imagegen renders for it, checked against
# what Agenstra's application reads (tests/cases/agent-manager/
# upstream-facts.md, a copy of the checked facts: github forepath/agenstra
# at ddd9a713, apps/backend-agent-manager), for an api-key site (compose
# PostgreSQL, colonyos beside it) and a keycloak site (Debian's
# PostgreSQL, the app on the host's network):
#   - every variable the app needs, with a valid value: NODE_ENV
#     production, ENCRYPTION_KEY base64 of exactly 32 bytes and the same on
#     every render, JWT_SECRET, DB_* the role, password and database the
#     postgres module makes, the authentication method and its variables;
#     and no variable the app does not read (as docker-compose reads the
#     env file, and as systemd does);
#   - the compose service: Agenstra's image, the Docker socket, /opt/agents,
#     the /api/health check, ports on 127.0.0.1 only (docker-compose config);
#   - nginx (nginx -t, then a real nginx on loopback in front of stand-ins
#     that record what they are sent): TLS on http_port with /api/ to the
#     app's REST port and nothing else, TLS on ws_port to its Socket.IO
#     port with the Upgrade and Connection headers, colonies still on 443;
#   - bad input (an unknown authenticationType, keycloak without its
#     fields, a bad agentWsPort, two ports the same) refused at
#     site.yaml:line:column, exit 1, nothing written.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
FACTS=$TOP/tests/cases/agent-manager/upstream-facts.md

# standin NAME: an HTTP server on 127.0.0.1 (port in $T/NAME.port) that
# answers every request 200 with "NAME <path>" and appends the path and
# the Upgrade, Connection and Authorization headers it got to $T/NAME.seen.
standin() {
	"$PY" - "$1" "$T/$1.port" "$T/$1.seen" >"$T/$1.log" 2>&1 <<'EOP' &
import http.server, socketserver, sys
name, port_file, seen = sys.argv[1:4]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(seen, "a") as f:
            f.write("%s %s|%s|%s|%s\n" % (self.command, self.path, self.headers.get("Upgrade", "-"),
                    self.headers.get("Connection", "-"), self.headers.get("Authorization", "-")))
        body = ("%s %s\n" % (name, self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
open(port_file + ".tmp", "w").write(str(s.server_address[1]))
import os; os.rename(port_file + ".tmp", port_file)
s.serve_forever()
EOP
	_pids+=($!)
	wait_for 10 test -s "$T/$1.port" || {
		echo "not ok - stand-in $1 did not start: $(cat "$T/$1.log")"
		exit 1
	}
}
standin rest
standin ws
standin colonies
REST_PORT=$(cat "$T/rest.port") WS_APP_PORT=$(cat "$T/ws.port") COL_PORT=$(cat "$T/colonies.port")
P3000=$(free_port) P8443=$(free_port "$P3000")

# site NAME BODY: $T/NAME/site.yaml.
site() {
	mkdir -p "$T/$1"
	printf 'name: %s\nhostname: %s-1\nprovider: hetzner\n%s\n' "$1" "$1" "$2" >"$T/$1/site.yaml"
}
site apikey "tls: {mode: self-signed, domain: am.example.org}
modules:
  docker: {}
  postgres: {db_name: agents, db_user: agentmgr}
  nginx: {}
  colonyos: {http_port: $COL_PORT}
  agent-manager:
    auth_mode: api_key
    http_port: $P3000
    ws_port: $P8443
    app_port: $REST_PORT
    app_ws_port: $WS_APP_PORT
    git_repo_url: https://git.example.org/agents.git
    git_username: bot
    git_token: \"tok\$en'x\"
    cursor_api_key: cur-key-1"
site keycloak "tls: {mode: self-signed, domain: am.example.org}
modules:
  docker: {}
  postgres: {mode: native, port: 5433}
  nginx: {}
  agent-manager:
    auth_mode: keycloak
    keycloak_url: https://sso.example.org/auth
    keycloak_realm: agenstra
    keycloak_client_id: agent-manager
    keycloak_client_secret: kc-secret-1
    image_tag: \"1.4.0\""

render() { "$IMAGEGEN" render "$T/$1/site.yaml" -o "$T/$1/${2:-out}" >"$T/$1.render" 2>&1; }

t_case "imagegen renders both sites, and renders them again with the same files"
if render apikey && render keycloak && render apikey out2 && render keycloak out2 &&
	diff -r "$T/apikey/out/files" "$T/apikey/out2/files" >"$T/diff" &&
	diff -r "$T/keycloak/out/files" "$T/keycloak/out2/files" >>"$T/diff"; then t_pass; else
	t_fail "$(cat "$T/apikey.render" "$T/keycloak.render" "$T/diff" | head -n 20)"
fi

# The compose projects as docker-compose reads them (the env files the way
# the container gets them).
mkdir -p "$T/proj"
for s in apikey keycloak; do
	mkdir -p "$T/proj/$s/secrets"
	cp "$T/$s/out/files/opt/stack/"*.yml "$T/$s/out/files/opt/stack/"*.env "$T/proj/$s/"
	cp -r "$T/$s/out/files/opt/stack/secrets/." "$T/proj/$s/secrets/" 2>/dev/null
	touch "$T/proj/$s/colonyos-server.env" "$T/proj/$s/colonyos-keys.env"
done

t_case "docker-compose config -q accepts both projects"
ok=1
for s in apikey keycloak; do
	if ! (cd "$T/proj/$s" && docker-compose config -q && docker-compose config >"$T/$s.config.yml") 2>"$T/err"; then
		ok=0
		echo "  # $s: $(cat "$T/err")" >&2
	fi
done
if [ $ok = 1 ]; then t_pass; else t_fail "compose"; fi

# contract SITE: checks SITE's rendered files against the facts, prints
# what is wrong (nothing when all is well).
contract() {
	"$PY" - "$FACTS" "$T/$1/out" "$T/$1.config.yml" "$T/$1/.imagegen/state.json" "$1" <<'EOP'
import base64, json, re, sys, yaml
facts, out, config, state, kind = sys.argv[1:6]
bad = []
# The variables the app reads: every `NAME` in the first column of the
# facts' table, and NODE_ENV.
known = set()
for line in open(facts):
    if line.startswith("| `"):
        known |= set(re.findall(r"`([A-Z][A-Z0-9_]*)(?:=[^`]*)?`", line.split("|")[1]))
if len(known) < 25:
    bad.append("the facts table gave only %d names" % len(known))
bundle = yaml.safe_load(open(out + "/bundle.yaml"))
inputs = {m["id"]: m.get("inputs", {}) for m in bundle["modules"]}
pg, am = inputs["postgres"], inputs["agent-manager"]
svc = yaml.safe_load(open(config))["services"]["agent-manager"]
# docker-compose config writes a literal '$' as '$$'.
env = {k: (v or "").replace("$$", "$") for k, v in svc["environment"].items()}
# The same file as systemd's EnvironmentFile= reads it (names only).
names = [l.split("=", 1)[0] for l in open(out + "/files/opt/stack/agent-manager.env")
         if re.match(r"[A-Z_]+=", l)]
if sorted(names) != sorted(env):
    bad.append("the env file's names %s differ from what compose read %s" % (names, sorted(env)))
unknown = sorted(set(env) - known)
if unknown:
    bad.append("variables the app does not read: %s" % unknown)
need = ["NODE_ENV", "PORT", "WEBSOCKET_PORT", "ENCRYPTION_KEY", "JWT_SECRET", "DB_HOST", "DB_PORT",
        "DB_USERNAME", "DB_PASSWORD", "DB_DATABASE", "AUTHENTICATION_METHOD", "AGENT_DEFAULT_IMAGE"]
need += ["STATIC_API_KEY"] if kind == "apikey" else [
    "KEYCLOAK_AUTH_SERVER_URL", "KEYCLOAK_REALM", "KEYCLOAK_CLIENT_ID", "KEYCLOAK_CLIENT_SECRET"]
for n in need:
    if not env.get(n):
        bad.append("%s missing or empty" % n)
def want(n, v):
    if env.get(n) != v:
        bad.append("%s is %r, not %r" % (n, env.get(n), v))
want("NODE_ENV", "production")
try:
    key = base64.b64decode(env.get("ENCRYPTION_KEY", ""), validate=True)
except Exception as e:
    key = b""
if len(key) != 32:
    bad.append("ENCRYPTION_KEY decodes to %d bytes, not 32" % len(key))
secrets = json.load(open(state))["secrets"]
want("ENCRYPTION_KEY", secrets.get("agent-manager.encryption_key"))
want("JWT_SECRET", secrets.get("agent-manager.jwt_secret"))
if len(env.get("JWT_SECRET", "")) < 16:
    bad.append("JWT_SECRET is shorter than 16")
# The postgres module's role, password and database (its inputs in the
# bundle: what its install.sh creates).
want("DB_USERNAME", pg["db_user"])
want("DB_PASSWORD", pg["db_password"])
want("DB_DATABASE", pg["db_name"])
if pg.get("mode", "compose") == "compose":
    want("DB_HOST", "postgres"); want("DB_PORT", "5432")
    want("PORT", "3000"); want("WEBSOCKET_PORT", "8080")
else:
    want("DB_HOST", "127.0.0.1"); want("DB_PORT", str(pg["port"]))
    want("PORT", str(am["app_port"])); want("WEBSOCKET_PORT", str(am["app_ws_port"]))
if kind == "apikey":
    want("AUTHENTICATION_METHOD", "api-key")
    want("STATIC_API_KEY", secrets.get("agent-manager.api_key"))
    want("GIT_REPOSITORY_URL", "https://git.example.org/agents.git")
    want("GIT_USERNAME", "bot")
    want("GIT_TOKEN", "tok$en'x")
    want("CURSOR_API_KEY", "cur-key-1")
    want("AGENT_DEFAULT_IMAGE", "ghcr.io/forepath/agenstra-manager-worker:latest")
    image = "ghcr.io/forepath/agenstra-manager-api:latest"
else:
    want("AUTHENTICATION_METHOD", "keycloak")
    want("KEYCLOAK_AUTH_SERVER_URL", "https://sso.example.org/auth")
    want("KEYCLOAK_REALM", "agenstra")
    want("KEYCLOAK_CLIENT_ID", "agent-manager")
    want("KEYCLOAK_CLIENT_SECRET", "kc-secret-1")
    for n in ("STATIC_API_KEY", "GIT_TOKEN", "CURSOR_API_KEY"):
        if n in env:
            bad.append("%s set in a keycloak site that gave none" % n)
    image = "ghcr.io/forepath/agenstra-manager-api:1.4.0"
if svc.get("image") != image:
    bad.append("image %r, not %r" % (svc.get("image"), image))
vols = {(v["source"], v["target"]) for v in svc.get("volumes", []) if v.get("type") == "bind"}
for p in ("/var/run/docker.sock", "/opt/agents"):
    if (p, p) not in vols:
        bad.append("%s is not bind-mounted at %s" % (p, p))
test = svc.get("healthcheck", {}).get("test", [])
port = "3000" if pg.get("mode", "compose") == "compose" else str(am["app_port"])
if test[:2] != ["CMD", "curl"] or test[-1] != "http://127.0.0.1:%s/api/health" % port or "-f" not in "".join(test):
    bad.append("healthcheck %r" % test)
if pg.get("mode", "compose") == "compose":
    ports = sorted(p if isinstance(p, str) else "%s:%s:%s" % (p.get("host_ip"), p.get("published"), p.get("target"))
                   for p in svc.get("ports", []))
    ports = [re.sub(r"/tcp$", "", p) for p in ports]
    if ports != sorted(["127.0.0.1:%s:3000" % am["app_port"], "127.0.0.1:%s:8080" % am["app_ws_port"]]):
        bad.append("ports %r" % ports)
elif svc.get("network_mode") != "host":
    bad.append("native PostgreSQL without the host's network")
if "colonyos-keys.env" in json.dumps(svc) or "extra_hosts" in svc:
    bad.append("coupled to colonies: %r" % svc)
if bad:
    print("\n".join(bad))
EOP
}

for s in apikey keycloak; do
	t_case "$s: the rendered env, compose service and secrets match what the app reads"
	if [ -s "$T/$s.config.yml" ] && contract "$s" >"$T/$s.bad" 2>&1 && [ ! -s "$T/$s.bad" ]; then t_pass; else
		t_fail "$(head -n 12 "$T/$s.bad")"
	fi
done

t_case "ENCRYPTION_KEY, JWT_SECRET and STATIC_API_KEY are kept: the second render wrote the same values"
k1=$(grep '^ENCRYPTION_KEY=' "$T/apikey/out/files/opt/stack/agent-manager.env")
k2=$(grep '^ENCRYPTION_KEY=' "$T/apikey/out2/files/opt/stack/agent-manager.env")
k3=$(grep '^ENCRYPTION_KEY=' "$T/keycloak/out/files/opt/stack/agent-manager.env")
if [ -n "$k1" ] && [ "$k1" = "$k2" ] && [ "$k1" != "$k3" ] &&
	[ "$(grep -c '^STATIC_API_KEY=\|^JWT_SECRET=' "$T/apikey/out2/files/opt/stack/agent-manager.env")" = 2 ] &&
	cmp -s "$T/apikey/out/files/opt/stack/agent-manager.env" "$T/apikey/out2/files/opt/stack/agent-manager.env"; then
	t_pass
else t_fail "$k1 / $k2 / $k3"; fi

t_case "a given encryption_key is used as given; one that is not base64 of 32 bytes is refused at its line:column"
site given "modules:
  postgres: {}
  agent-manager: {encryption_key: \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}"
site short "modules:
  postgres: {}
  agent-manager: {encryption_key: \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\"}"
if render given && grep -qx 'ENCRYPTION_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=' "$T/given/out/files/opt/stack/agent-manager.env" &&
	! render short && grep -q "site.yaml:6:35: .*encryption_key" "$T/short.render" && [ ! -e "$T/short/out" ]; then t_pass; else
	t_fail "$(cat "$T/given.render" "$T/short.render")"
fi

# ---- nginx --------------------------------------------------------------

# The api-key site's nginx config on loopback: its certificate, 80 and
# 443 on free ports, no IPv6 listeners.
N=$T/nginx
mkdir -p "$N"
TLS=$T/apikey/out/files/etc/firstboot/tls
P80=$(free_port "$P3000" "$P8443") P443=$(free_port "$P3000" "$P8443" "$P80")
sed -e "s|/etc/firstboot/tls/|$TLS/|" -e "/listen \[::\]/d" -e "s/listen 80 /listen 127.0.0.1:$P80 /" \
	-e "s/listen 443 /listen 127.0.0.1:$P443 /" -e "s/listen $P3000 /listen 127.0.0.1:$P3000 /" \
	-e "s/listen $P8443 /listen 127.0.0.1:$P8443 /" "$T/apikey/out/files/etc/nginx/conf.d/firstboot.conf" >"$N/site.conf"
cat >"$N/nginx.conf" <<EOF
user root;
pid $N/nginx.pid;
error_log $N/error.log info;
events { worker_connections 64; }
http {
    access_log $N/access.log;
    client_body_temp_path $N/body;
    proxy_temp_path $N/proxy;
    fastcgi_temp_path $N/fastcgi;
    uwsgi_temp_path $N/uwsgi;
    scgi_temp_path $N/scgi;
    include $N/site.conf;
}
EOF

t_case "nginx -t accepts the rendered config (both sites)"
sed -e "s|/etc/firstboot/tls/|$T/keycloak/out/files/etc/firstboot/tls/|" "$T/keycloak/out/files/etc/nginx/conf.d/firstboot.conf" >"$N/kc.conf"
sed "s|include $N/site.conf|include $N/kc.conf|" "$N/nginx.conf" >"$N/kc-nginx.conf"
if nginx -t -q -p "$N" -c "$N/nginx.conf" 2>"$T/err" && nginx -t -q -p "$N" -c "$N/kc-nginx.conf" 2>>"$T/err" &&
	grep -q 'listen 3000 ssl http2;' "$N/kc.conf" && grep -q 'listen 8443 ssl;' "$N/kc.conf" &&
	grep -q "proxy_pass http://127.0.0.1:13000;" "$N/kc.conf" && grep -q "proxy_pass http://127.0.0.1:18080;" "$N/kc.conf"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

nginx -p "$N" -c "$N/nginx.conf" -g 'daemon off;' >"$T/nginx.out" 2>&1 &
_pids+=($!)
wait_for 10 curl -sk -o /dev/null "https://127.0.0.1:$P3000/" || echo "  # nginx did not start: $(cat "$T/nginx.out")"
https() { curl -sk --max-time 10 "$@"; }
KEY=$(sed -n 's/^STATIC_API_KEY=//p' "$T/apikey/out/files/opt/stack/agent-manager.env")

t_case "nginx, http_port (TLS): /api/ to the app's REST port with the Authorization header; nothing else"
: >"$T/rest.seen"
body=$(https -H "Authorization: Bearer $KEY" "https://127.0.0.1:$P3000/api/agents?limit=5")
other=$(https -o /dev/null -w '%{http_code}' "https://127.0.0.1:$P3000/socket.io/?EIO=4")
plain=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$P3000/api/health")
if [ "$body" = "rest /api/agents?limit=5" ] && [ "$(cat "$T/rest.seen")" = "GET /api/agents?limit=5|-|close|Bearer $KEY" ] &&
	[ "$other" = 404 ] && [ "$plain" = 400 ]; then t_pass; else
	t_fail "body '$body', seen '$(cat "$T/rest.seen")', other $other, plain $plain"
fi

t_case "nginx, ws_port (TLS): Socket.IO to the app's WebSocket port, Upgrade and Connection passed on"
: >"$T/ws.seen"
: >"$T/rest.seen"
body=$(https --http1.1 -H 'Upgrade: websocket' -H 'Connection: Upgrade' -H 'Sec-WebSocket-Version: 13' \
	-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "https://127.0.0.1:$P8443/socket.io/?EIO=4&transport=websocket")
if [ "$body" = "ws /socket.io/?EIO=4&transport=websocket" ] &&
	[ "$(cat "$T/ws.seen")" = "GET /socket.io/?EIO=4&transport=websocket|websocket|upgrade|-" ] &&
	[ ! -s "$T/rest.seen" ]; then t_pass; else t_fail "body '$body', seen '$(cat "$T/ws.seen")'"; fi

t_case "nginx, 443 stays the colonies API (seed 000's REST), agent-manager is not there"
: >"$T/colonies.seen"
if [ "$(https -X POST --data-binary '{}' "https://127.0.0.1:$P443/api")" = "colonies /api" ] &&
	[ "$(https "https://127.0.0.1:$P443/api/agents")" = "colonies /api/agents" ] &&
	[ ! -s "$T/rest.seen" ] && [ "$(wc -l <"$T/colonies.seen")" = 2 ]; then t_pass; else
	t_fail "$(https -i "https://127.0.0.1:$P443/api" | head -n 5)"
fi

# ---- bad input ----------------------------------------------------------

# refused NAME LINE:COL MESSAGE BODY: the site is refused at
# site.yaml:LINE:COL with MESSAGE, exit 1, no output directory.
refused() {
	site "$1" "modules:
  postgres: {}
  colonyos: {}
  nginx: {}
  agent-manager:
$4"
	"$IMAGEGEN" render "$T/$1/site.yaml" -o "$T/$1/out" >"$T/$1.render" 2>&1
	local rc=$?
	if [ $rc = 1 ] && grep -q "^$T/$1/site.yaml:$2: .*$3" "$T/$1.render" && [ ! -e "$T/$1/out" ] &&
		[ ! -e "$T/$1/.imagegen/state.json" ]; then return 0; fi
	echo "  # $1: exit $rc: $(cat "$T/$1.render")" >&2
	return 1
}
t_case "bad input refused at site.yaml:line:column, exit 1, nothing written"
ok=1
refused b1 9:16 "auth_mode.*ldap" "    auth_mode: ldap" || ok=0
refused b2 9:5 "missing required input 'keycloak_url'" "    auth_mode: keycloak
    keycloak_realm: r
    keycloak_client_id: c
    keycloak_client_secret: s" || ok=0
refused b3 9:5 "missing required input 'keycloak_client_secret'" "    auth_mode: keycloak
    keycloak_url: https://sso.example.org
    keycloak_realm: r
    keycloak_client_id: c" || ok=0
refused b4 10:5 "keycloak_url' is only used when auth_mode is keycloak" "    auth_mode: api_key
    keycloak_url: https://sso.example.org" || ok=0
refused b5 9:14 "ws_port" "    ws_port: 70000" || ok=0
refused b6 9:14 "ws_port" "    ws_port: wss" || ok=0
refused b7 9:14 "ws_port 443 is also nginx's HTTPS port" "    ws_port: 443" || ok=0
refused b8 9:18 "app_ws_port 50080 is also colonyos' http_port" "    app_ws_port: 50080" || ok=0
refused b9 9:14 "ws_port 8443 is also http_port" "    ws_port: 8443
    http_port: 8443" || ok=0
refused b10 9:16 "image_tag" "    image_tag: \"a:b\"" || ok=0
if [ $ok = 1 ]; then t_pass; else t_fail "bad input"; fi
