#!/bin/bash
# agent-manager: brings the agent-manager service up (compose service or
# systemd unit, both rendered by imagegen with its settings in
# STACK_DIR/agent-manager.env) and waits, bounded, until its HTTP health
# URL answers and its WebSocket port takes connections. Run by firstboot
# under the module contract. Exit 1 bad input, 2 it did not come up or a
# download failed (retried), 3 something it needs is missing or refused.
set -euo pipefail
umask 022

R=${FIRSTBOOT_ROOT:-/}
R=${R%/}
MODE=${MODE:-compose}
IMAGE=${IMAGE:-agent-manager:latest}
BINARY_URL=${BINARY_URL:-}
BINARY_SHA256=${BINARY_SHA256:-}
HTTP_PORT=${HTTP_PORT:-3000}
WS_PORT=${WS_PORT:-8080}
HEALTH_PATH=${HEALTH_PATH:-/health}
AUTH_MODE=${AUTH_MODE:-api_key}
API_KEY=${API_KEY:-}
KEYCLOAK_URL=${KEYCLOAK_URL:-}
KEYCLOAK_REALM=${KEYCLOAK_REALM:-}
KEYCLOAK_CLIENT_ID=${KEYCLOAK_CLIENT_ID:-}
KEYCLOAK_CLIENT_SECRET=${KEYCLOAK_CLIENT_SECRET:-}
STACK_DIR=${STACK_DIR:-/opt/stack}
WAIT_SECONDS=${WAIT_SECONDS:-180}

die() {
	local code=$1
	shift
	echo "agent-manager: $*" >&2
	exit "$code"
}
say() { echo "agent-manager: $*"; }

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
[[ $IMAGE =~ ^[A-Za-z0-9][A-Za-z0-9._/:@-]*$ ]] || die 1 "image must be an image reference"
port http_port "$HTTP_PORT"
port ws_port "$WS_PORT"
[ "$HTTP_PORT" != "$WS_PORT" ] || die 1 "http_port and ws_port must differ"
[[ $HEALTH_PATH =~ ^/[A-Za-z0-9._~/-]*$ ]] || die 1 "health_path must be a URL path like /health"
case $AUTH_MODE in
api_key)
	[ ${#API_KEY} -ge 16 ] || die 1 "auth_mode api_key needs an api_key of at least 16 characters"
	;;
keycloak)
	[[ $KEYCLOAK_URL =~ ^https?://[A-Za-z0-9.:/_-]+$ ]] || die 1 "auth_mode keycloak needs keycloak_url (https://...)"
	[ -n "$KEYCLOAK_REALM" ] || die 1 "auth_mode keycloak needs keycloak_realm"
	[ -n "$KEYCLOAK_CLIENT_ID" ] || die 1 "auth_mode keycloak needs keycloak_client_id"
	[ -n "$KEYCLOAK_CLIENT_SECRET" ] || die 1 "auth_mode keycloak needs keycloak_client_secret"
	;;
*) die 1 "auth_mode must be api_key or keycloak" ;;
esac
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

SD=$R$STACK_DIR
ENV_FILE=$SD/agent-manager.env
COMPOSE_FILE=$SD/docker-compose.yml
UNIT=$R/etc/systemd/system/agent-manager.service
BIN=$R/usr/local/bin/agent-manager

[ -f "$ENV_FILE" ] || die 3 "${ENV_FILE#"$R"} is missing: render the site with imagegen (agent-manager and postgres in site.yaml)"
[ "$(stat -c '%a' "$ENV_FILE")" = 600 ] || die 3 "${ENV_FILE#"$R"} holds secrets and must be mode 0600"

# ---- up -----------------------------------------------------------------

if [ "$MODE" = compose ]; then
	[ -f "$COMPOSE_FILE" ] || die 3 "${COMPOSE_FILE#"$R"} is missing: render the site with imagegen (docker in site.yaml)"
	grep -q '^  agent-manager:' "$COMPOSE_FILE" || die 3 "${COMPOSE_FILE#"$R"} has no agent-manager service"
	if docker compose version >/dev/null 2>&1; then
		compose=(docker compose)
	elif command -v docker-compose >/dev/null && docker-compose version >/dev/null 2>&1; then
		compose=(docker-compose)
	else
		die 3 "neither 'docker compose' nor docker-compose works: run the docker module first"
	fi
	# up -d recreates the container only when its configuration (the env
	# file included) changed, and pulls the image when it is missing.
	"${compose[@]}" -f "$COMPOSE_FILE" up -d agent-manager || die 2 "docker compose up agent-manager failed"
else
	[ -f "$UNIT" ] || die 3 "${UNIT#"$R"} is missing: render the site with imagegen"
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
		mkdir -p "$(dirname "$BIN")"
		install -m 0755 "$dl/download" "$BIN.fbtmp"
		mv -f "$BIN.fbtmp" "$BIN"
		say "installed /usr/local/bin/agent-manager"
	fi
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
	elif [ $reload = 1 ]; then
		systemctl restart agent-manager || die 3 "agent-manager does not restart"
	fi
fi

# ---- healthy ------------------------------------------------------------
# The health URL must answer 2xx; the WebSocket port must answer at all (a
# plain HTTP request to a WebSocket endpoint gets 400 or 426, which is
# fine: something is listening).

health=http://127.0.0.1:$HTTP_PORT$HEALTH_PATH
say "waiting until $health answers (at most ${WAIT_SECONDS}s)"
deadline=$((SECONDS + WAIT_SECONDS))
until curl -fsS -o /dev/null --max-time 5 "$health"; do
	[ $SECONDS -lt $deadline ] || die 2 "$health did not answer within ${WAIT_SECONDS}s"
	sleep 1
done
until curl -sS -o /dev/null --max-time 5 "http://127.0.0.1:$WS_PORT/"; do
	[ $SECONDS -lt $deadline ] || die 2 "nothing answers on the WebSocket port $WS_PORT within ${WAIT_SECONDS}s"
	sleep 1
done

say "done: $MODE, HTTP on 127.0.0.1:$HTTP_PORT, WebSocket on 127.0.0.1:$WS_PORT, auth $AUTH_MODE"
