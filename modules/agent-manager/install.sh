#!/bin/bash
# agent-manager: brings Agenstra's agent-manager up (the compose service
# running ghcr.io/forepath/agenstra-manager-api, or agent-manager.service,
# both rendered by imagegen with its settings in STACK_DIR/agent-manager.env)
# and waits, bounded, until GET /api/health answers on 127.0.0.1:APP_PORT
# and its WebSocket gateway takes connections on 127.0.0.1:APP_WS_PORT.
# Run by firstboot under the module contract. Exit 1 bad input, 2 it did
# not come up or a download failed (retried), 3 something it needs is
# missing or refused.
set -euo pipefail
umask 022

FB_PREFIX="agent-manager: "
# The helpers the stack modules share (die, say, put_file, ...), from
# modules/_lib/ beside this module's folder; without them, nothing runs.
fb_lib=$(dirname -- "${BASH_SOURCE[0]:-.}")/../_lib/firstboot-module.sh
[ -f "$fb_lib" ] || { echo "$fb_lib is missing: ship modules/_lib/ with the modules" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=../_lib/firstboot-module.sh
. "$fb_lib"

MODE=${MODE:-compose}
IMAGE_TAG=${IMAGE_TAG:-latest}
BINARY_URL=${BINARY_URL:-}
BINARY_SHA256=${BINARY_SHA256:-}
HTTP_PORT=${HTTP_PORT:-3000}
WS_PORT=${WS_PORT:-8443}
APP_PORT=${APP_PORT:-13000}
APP_WS_PORT=${APP_WS_PORT:-18080}
AUTH_MODE=${AUTH_MODE:-api_key}
API_KEY=${API_KEY:-}
KEYCLOAK_URL=${KEYCLOAK_URL:-}
KEYCLOAK_REALM=${KEYCLOAK_REALM:-}
KEYCLOAK_CLIENT_ID=${KEYCLOAK_CLIENT_ID:-}
KEYCLOAK_CLIENT_SECRET=${KEYCLOAK_CLIENT_SECRET:-}
ENCRYPTION_KEY=${ENCRYPTION_KEY:-}
STACK_DIR=${STACK_DIR:-/opt/stack}
WAIT_SECONDS=${WAIT_SECONDS:-180}

# ---- inputs -------------------------------------------------------------
# The settings themselves reach the service through the rendered env file;
# here they are only checked, so a site that cannot work fails with exit 1
# before anything starts.

port() {
	if ! [[ $2 =~ ^[0-9]{1,5}$ ]] || [ "$2" -lt 1 ] || [ "$2" -gt 65535 ]; then
		die 1 "$1 must be a port number (1-65535)"
	fi
}
case $MODE in compose | systemd) ;; *) die 1 "mode must be compose or systemd" ;; esac
[[ $IMAGE_TAG =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die 1 "image_tag must be an image tag ([A-Za-z0-9_.-], at most 128)"
port http_port "$HTTP_PORT"
port ws_port "$WS_PORT"
port app_port "$APP_PORT"
port app_ws_port "$APP_WS_PORT"
# nginx listens on http_port and ws_port on every address, the app on
# app_port and app_ws_port: four different ports.
[ "$(printf '%s\n' "$HTTP_PORT" "$WS_PORT" "$APP_PORT" "$APP_WS_PORT" | sort -u | wc -l)" = 4 ] ||
	die 1 "http_port, ws_port, app_port and app_ws_port must be four different ports"
case $AUTH_MODE in
api_key | api-key)
	[ ${#API_KEY} -ge 16 ] || die 1 "auth_mode api_key needs an api_key of at least 16 characters"
	;;
keycloak)
	[[ $KEYCLOAK_URL =~ ^https?://[A-Za-z0-9.:/_-]+$ ]] || die 1 "auth_mode keycloak needs keycloak_url (https://...)"
	[ -n "$KEYCLOAK_REALM" ] || die 1 "auth_mode keycloak needs keycloak_realm"
	[ -n "$KEYCLOAK_CLIENT_ID" ] || die 1 "auth_mode keycloak needs keycloak_client_id"
	[ -n "$KEYCLOAK_CLIENT_SECRET" ] || die 1 "auth_mode keycloak needs keycloak_client_secret"
	;;
*) die 1 "auth_mode must be api_key (or api-key) or keycloak" ;;
esac
# The app exits unless ENCRYPTION_KEY is base64 of exactly 32 bytes.
if [ -n "$ENCRYPTION_KEY" ]; then
	n=$(printf '%s' "$ENCRYPTION_KEY" | base64 -d 2>/dev/null | wc -c) || n=0
	if ! [[ $ENCRYPTION_KEY =~ ^[A-Za-z0-9+/]{43}=$ ]] || [ "$n" != 32 ]; then
		die 1 "encryption_key must be the base64 of exactly 32 bytes"
	fi
fi
if ! [[ $STACK_DIR =~ ^(/[A-Za-z0-9._-]+)+$ ]] || [[ $STACK_DIR =~ /\.\.?(/|$) ]]; then
	die 1 "stack_dir must be an absolute path"
fi
if ! [[ $WAIT_SECONDS =~ ^[0-9]+$ ]] || [ "$WAIT_SECONDS" -lt 1 ] || [ "$WAIT_SECONDS" -gt 1800 ]; then
	die 1 "wait_seconds must be 1-1800"
fi
[[ $BINARY_URL =~ ^(https?://[^[:space:]]+)?$ ]] || die 1 "binary_url must be an http(s) URL"
[[ $BINARY_SHA256 =~ ^([0-9a-f]{64})?$ ]] || die 1 "binary_sha256 must be 64 lowercase hex digits"
if [ -n "$BINARY_URL" ] && [ -z "$BINARY_SHA256" ]; then
	die 1 "binary_url needs binary_sha256 (the download is checked before it is installed)"
fi

# Every path resolved inside the root: a link in the stack folder pointing
# out of it is followed with the root as /, never to the host's files.
in_root "$R$STACK_DIR" || die 3 "$STACK_DIR: cannot be resolved inside the root"
SD=$IN_ROOT
ENV_FILE=$SD/agent-manager.env
COMPOSE_FILE=$SD/docker-compose.yml
UNIT=$R/etc/systemd/system/agent-manager.service
BIN=$R/usr/local/bin/agent-manager

[ -e "$ENV_FILE" ] || [ -L "$ENV_FILE" ] || die 3 "${ENV_FILE#"$R"} is missing: render the site with imagegen (agent-manager and postgres in site.yaml)"
root_file "$ENV_FILE" || die 3 "${ENV_FILE#"$R"} must be the regular file imagegen rendered"
ENV_FILE=$ROOT_FILE
[ "$(stat -c '%a' "$ENV_FILE")" = 600 ] || die 3 "${ENV_FILE#"$R"} holds secrets and must be mode 0600"
# What the app exits without (NODE_ENV=production): ENCRYPTION_KEY and
# JWT_SECRET, and the database it logs in to.
for v in NODE_ENV ENCRYPTION_KEY JWT_SECRET DB_USERNAME DB_PASSWORD DB_DATABASE AUTHENTICATION_METHOD; do
	grep -q "^$v=." "$ENV_FILE" || die 3 "${ENV_FILE#"$R"} has no $v: render the site again with this imagegen"
done

# Agent workspaces: the app has the host's Docker daemon bind-mount
# /opt/agents/<uuid> into each agent container.
make_dir "$R/opt/agents"

# ---- up -----------------------------------------------------------------

if [ "$MODE" = compose ]; then
	root_file "$COMPOSE_FILE" || die 3 "${COMPOSE_FILE#"$R"} is missing: render the site with imagegen (docker in site.yaml)"
	COMPOSE_FILE=$ROOT_FILE
	grep -q '^  agent-manager:' "$COMPOSE_FILE" || die 3 "${COMPOSE_FILE#"$R"} has no agent-manager service"
	find_compose || die 3 "neither 'docker compose' nor docker-compose works: run the docker module first"
	# up -d recreates the container only when its configuration (the env
	# file included) changed, and pulls the image when it is missing.
	"${compose[@]}" -f "$COMPOSE_FILE" up -d agent-manager || die 2 "docker compose up agent-manager failed"
else
	root_file "$UNIT" || die 3 "${UNIT#"$R"} is missing: render the site with imagegen"
	UNIT=$ROOT_FILE
	# EnvironmentFile= reads single quotes without escapes: a value imagegen
	# escaped (a quote, a backslash or "${") would reach the service as
	# another one.
	bad=$(sed -nE "s/^([A-Z_]+)='.*(\\\\|[$][{]:-).*/\1/p" "$ENV_FILE" | head -n 1)
	[ -z "$bad" ] || die 3 "$bad in ${ENV_FILE#"$R"} holds a quote, a backslash or \"\${\", which systemd reads differently from docker-compose: choose a value without them for mode systemd"
	if [ ! -x "$BIN" ]; then
		[ -n "$BINARY_URL" ] || die 3 "/usr/local/bin/agent-manager is missing and binary_url is empty"
		dl=$(mktemp -d)
		trap 'rm -rf "$dl"' EXIT
		say "downloading the agent-manager binary"
		curl -fsSL --retry 3 --max-time 600 -o "$dl/download" "$BINARY_URL" || die 2 "downloading $BINARY_URL failed"
		[ "$(sha256sum "$dl/download" | cut -d' ' -f1)" = "$BINARY_SHA256" ] ||
			die 3 "the download from $BINARY_URL does not match binary_sha256"
		put_file "$BIN" 0755 <"$dl/download"
		say "installed /usr/local/bin/agent-manager"
	fi
	# What the service was last started with: a checksum of its unit and
	# its env file. The app reads its environment once, at
	# start (EnvironmentFile=), so a changed one needs a restart; the same
	# bytes again with the service running is nothing to do.
	sum=$(cat "$UNIT" "$ENV_FILE" | sha256sum | cut -d' ' -f1)
	read_state agent-manager.sha256
	old_sum=$STATE_VALUE
	reload=0
	systemctl is-enabled --quiet agent-manager || reload=1
	[ "$(systemctl show -p NeedDaemonReload --value agent-manager 2>/dev/null)" = yes ] && reload=1
	if [ $reload = 1 ]; then
		systemctl daemon-reload || die 3 "systemctl daemon-reload failed"
	fi
	if ! systemctl is-enabled --quiet agent-manager; then
		systemctl enable agent-manager || die 3 "cannot enable agent-manager"
	fi
	if ! systemctl is-active --quiet agent-manager; then
		systemctl start agent-manager || die 3 "agent-manager does not start"
	elif [ $reload = 1 ] || [ "$sum" != "$old_sum" ]; then
		say "its unit or env file changed: restarting agent-manager"
		systemctl restart agent-manager || die 3 "agent-manager does not restart"
	fi
	# Recorded once it runs with them, so a failed restart is tried again.
	record_state agent-manager.sha256 "$sum"
fi

# ---- healthy ------------------------------------------------------------
# GET /api/health (no authentication) must answer 2xx; the Socket.IO port
# must answer at all (its reply to a plain request does not matter:
# something is listening).

health=http://127.0.0.1:$APP_PORT/api/health
say "waiting until $health answers (at most ${WAIT_SECONDS}s)"
deadline=$((SECONDS + WAIT_SECONDS))
until curl -fsS -o /dev/null --max-time 5 "$health"; do
	[ $SECONDS -lt $deadline ] || die 2 "$health did not answer within ${WAIT_SECONDS}s"
	sleep 1
done
until curl -sS -o /dev/null --max-time 5 "http://127.0.0.1:$APP_WS_PORT/socket.io/?EIO=4&transport=polling"; do
	[ $SECONDS -lt $deadline ] || die 2 "nothing answers on the WebSocket port $APP_WS_PORT within ${WAIT_SECONDS}s"
	sleep 1
done

say "done: $MODE, REST on 127.0.0.1:$APP_PORT (nginx: $HTTP_PORT), WebSocket on 127.0.0.1:$APP_WS_PORT (nginx: $WS_PORT), auth $AUTH_MODE"
