#!/bin/bash
# colonyos: the ColonyOS server and the init_colony step. Run by firstboot
# under the module contract: inputs in the environment, every file under
# $FIRSTBOOT_ROOT, commands from PATH. Exit 1 bad input, 2 the server did
# not come up or a download failed (retried), 3 something the stack needs
# is missing or was refused.
#
# Key pairs (server, colony, executor) come from `colonies key generate`
# (`colonies security generate` in 1.9 and later) once and are kept in
# STACK_DIR/colonyos-keys.env (0600); a key that is there is never
# generated again. Keys reach the colonies CLI through its environment
# (COLONIES_SERVER_PRVKEY, COLONIES_COLONY_PRVKEY, COLONIES_PRVKEY), never
# its arguments, and are never printed. The CLI is `colonies` on PATH, else
# /usr/local/bin/colonies, else (compose mode) the server image run with
# `docker run --network host`, the variables passed by name only (`-e NAME`).
#
# Every colonies invocation gets the environment the server itself gets:
# colonyos.env and colonyos-server.env as systemd's EnvironmentFile= reads
# them (docker-compose reads the same files for the container). colonies
# 1.8.19 (colonyos/colonies tag v1.8.19, 04ca6f70) needs it:
# `database create` connects only with TZ set (pkg/database/postgresql/
# database.go; without it, it retries forever) and stores the server's
# identity from COLONIES_SERVER_ID once, when it makes the tables
# (internal/cli/db.go: db.Initialize() fails on existing tables and the
# ID is not touched again); the server then accepts only requests signed
# with that key (pkg/security/validator: "Access denied, not server
# owner"). A database holding another identity (an earlier run without
# COLONIES_SERVER_ID) is exit 3 with the repair spelled out: this module
# does not rewrite a table of colonies' own.
#
# The colonies CLI this module relies on (internal/cli of v1.8.19):
# `key generate` logs "Id=<64 hex> PrvKey=<64 hex>" (keychain.go);
# the CLI reads COLONIES_SERVER_HOST, COLONIES_SERVER_PORT and
# COLONIES_SERVER_TLS ("false": plain HTTP; unset: HTTPS) (common.go,
# parseEnv); errors exit 255 (CheckError: os.Exit(-1));
# `database create` makes the tables from COLONIES_DB_HOST, _PORT, _USER
# and _PASSWORD and TZ, retrying the connection until it succeeds, and
# exits 0 when they are already there (db.go);
# `colony ls --json` lists {"colonyid", "name"} for the server key and
# `colony add --name NAME --colonyid ID` registers one (colony.go);
# `executor ls --json --full` lists {"executorid", ..., "state"} (0
# pending, 1 approved, 2 rejected) to members of the colony only, the
# executor itself but not the colony key; `executor add --spec FILE
# --executorid ID --approve` and `executor approve --name NAME` take the
# colony key and COLONIES_COLONY_NAME (executor.go); the spec (opened as
# the path given) holds {"executorname", "executortype"}
# (pkg/core/executor.go).
set -euo pipefail
umask 022

FB_PREFIX="colonyos: "
# The helpers the stack modules share (die, say, put_file, ...), from
# modules/_lib/ beside this module's folder; without them, nothing runs.
fb_lib=$(dirname -- "${BASH_SOURCE[0]:-.}")/../_lib/firstboot-module.sh
[ -f "$fb_lib" ] || { echo "$fb_lib is missing: ship modules/_lib/ with the modules" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=../_lib/firstboot-module.sh
. "$fb_lib"

MODE=${MODE:-compose}
IMAGE=${IMAGE:-colonyos/colonies:v1.8.19}
BINARY_URL=${BINARY_URL:-}
BINARY_SHA256=${BINARY_SHA256:-}
COLONY_NAME=${COLONY_NAME:-cpm_colony}
EXECUTOR_NAME=${EXECUTOR_NAME:-cpm-executor}
EXECUTOR_TYPE=${EXECUTOR_TYPE:-cli}
HTTP_PORT=${HTTP_PORT:-50080}
GRPC_UPSTREAM=${GRPC_UPSTREAM:-}
STACK_DIR=${STACK_DIR:-/opt/stack}
WAIT_SECONDS=${WAIT_SECONDS:-180}

# ---- inputs -------------------------------------------------------------

port() {
	if ! [[ $2 =~ ^[0-9]{1,5}$ ]] || [ "$2" -lt 1 ] || [ "$2" -gt 65535 ]; then
		die 1 "$1 must be a port number (1-65535)"
	fi
}
case $MODE in compose | systemd) ;; *) die 1 "mode must be compose or systemd" ;; esac
[[ $IMAGE =~ ^[A-Za-z0-9][A-Za-z0-9._/:@-]*$ ]] || die 1 "image must be an image reference like colonyos/colonies:v1.8.19"
[[ $COLONY_NAME =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ ]] || die 1 "colony_name must be letters, digits, '_' and '-'"
[[ $EXECUTOR_NAME =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || die 1 "executor_name must be letters, digits, '_', '.' and '-'"
[[ $EXECUTOR_TYPE =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || die 1 "executor_type must be letters, digits, '_', '.' and '-'"
port http_port "$HTTP_PORT"
# For nginx (a colonies build that serves gRPC); here only for the manifest.
[[ $GRPC_UPSTREAM =~ ^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):[0-9]{1,5}$ ]] || [ -z "$GRPC_UPSTREAM" ] ||
	die 1 "grpc_upstream must be HOST:PORT (or empty)"
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

# Every path in the stack folder resolved inside the root (as
# agent-manager does): a link there pointing out of it is followed with
# the root as /, never to the host's files.
in_root "$R$STACK_DIR" || die 3 "$STACK_DIR: cannot be resolved inside the root"
SD=$IN_ROOT
KEYS=$SD/colonyos-keys.env
SERVER_ENV=$SD/colonyos-server.env
MANIFEST=$SD/colonyos.json
SPECS=$SD/colonyos
COMPOSE_FILE=$SD/docker-compose.yml
UNIT=$R/etc/systemd/system/colonies-server.service
BIN=$R/usr/local/bin/colonies

# ---- what the stack must already have ----------------------------------

# Read inside the root (root_file): a link there is followed as the root
# sees it, never out of it.
root_file "$SD/colonyos.env" ||
	die 3 "${SD#"$R"}/colonyos.env is missing (no regular file inside the root): render the site with imagegen (templates/index.yml writes it when colonyos is in site.yaml)"
ENV_FILE=$ROOT_FILE
compose=()
if [ "$MODE" = compose ]; then
	[ -f "$COMPOSE_FILE" ] || die 3 "${COMPOSE_FILE#"$R"} is missing: render the site with imagegen (docker and colonyos in site.yaml)"
	grep -q '^  colonies-server:' "$COMPOSE_FILE" || die 3 "${COMPOSE_FILE#"$R"} has no colonies-server service"
	find_compose || die 3 "neither 'docker compose' nor docker-compose works: run the docker module first"
	compose+=(-f "$COMPOSE_FILE")
	# The server's etcd data, bind-mounted by the compose file.
	if [ ! -d "$R/var/lib/firstboot-stack/colonies" ]; then
		make_dir "$R/var/lib/firstboot-stack/colonies" 0700
	fi
else
	root_file "$UNIT" || die 3 "${UNIT#"$R"} is missing: render the site with imagegen"
	UNIT=$ROOT_FILE
	# EnvironmentFile= reads single quotes without escapes: a value imagegen
	# escaped (a quote, a backslash or "${") would reach the server as
	# another one than PostgreSQL was given.
	bad=$(sed -nE "s/^([A-Z_]+)='.*(\\\\|[$][{]:-).*/\1/p" "$ENV_FILE" | head -n 1)
	[ -z "$bad" ] || die 3 "$bad in ${SD#"$R"}/colonyos.env holds a quote, a backslash or \"\${\", which systemd reads differently from docker-compose: choose a value without them for mode systemd"
	if [ ! -x "$BIN" ]; then
		[ -n "$BINARY_URL" ] || die 3 "/usr/local/bin/colonies is missing and binary_url is empty"
		dl=$(mktemp -d)
		trap 'rm -rf "$dl"' EXIT
		say "downloading the colonies binary"
		curl -fsSL --retry 3 --max-time 600 -o "$dl/download" "$BINARY_URL" || die 2 "downloading $BINARY_URL failed"
		[ "$(sha256sum "$dl/download" | cut -d' ' -f1)" = "$BINARY_SHA256" ] ||
			die 3 "the download from $BINARY_URL does not match binary_sha256"
		if [[ $BINARY_URL == *.tar.gz || $BINARY_URL == *.tgz ]]; then
			tar -xzf "$dl/download" -C "$dl" || die 3 "$BINARY_URL is not a readable tar.gz"
			found=$(find "$dl" -type f -name colonies | head -n1)
			[ -n "$found" ] || die 3 "$BINARY_URL holds no file named colonies"
		else
			found=$dl/download
		fi
		make_dir "$(dirname "$BIN")"
		install -m 0755 "$found" "$BIN.fbtmp"
		mv -f "$BIN.fbtmp" "$BIN"
		say "installed /usr/local/bin/colonies"
	fi
fi

# load_env FILE: the COLONIES_* variables and TZ of FILE exported as
# systemd's EnvironmentFile= reads this module's env files (NAME=VALUE, a
# value in single quotes taken literally without them; in systemd mode a
# value that would need more was refused above); their names are added
# to CLI_VARS.
CLI_VARS=()
load_env() {
	local line name value
	while IFS= read -r line || [ -n "$line" ]; do
		[[ $line =~ ^(COLONIES_[A-Z0-9_]+|TZ)=(.*)$ ]] || continue
		name=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
		[[ $value != \'*\' ]] || value=${value:1:-1}
		export "$name=$value"
		[[ " ${CLI_VARS[*]} " == *" $name "* ]] || CLI_VARS+=("$name")
	done <"$1"
}
load_env "$ENV_FILE"
# The server the CLI talks to: the port published on 127.0.0.1, plain
# HTTP (TLS ends at nginx), whatever colonyos.env says.
export COLONIES_SERVER_HOST=localhost COLONIES_SERVER_PORT=$HTTP_PORT COLONIES_SERVER_TLS=false
export COLONIES_COLONY_NAME=$COLONY_NAME COLONIES_EXECUTOR_TYPE=$EXECUTOR_TYPE
export TZ=${TZ:-UTC}
CLI_VARS+=(COLONIES_SERVER_HOST COLONIES_SERVER_PORT COLONIES_SERVER_TLS COLONIES_COLONY_NAME
	COLONIES_EXECUTOR_TYPE TZ COLONIES_SERVER_ID COLONIES_SERVER_PRVKEY COLONIES_COLONY_ID
	COLONIES_COLONY_PRVKEY COLONIES_PRVKEY)

# cli ARGS...: the colonies CLI with that environment. Each call is
# bounded: a server that accepts but never answers must not hold the
# module until the agent's timeout. CLI_TIMEOUT, when set, bounds it
# instead of a minute.
# SPEC: the executor's spec as the CLI opens it (the path as given): this
# machine's file, or in the server image where it is mounted.
SPEC=$SPECS/executor.json
if command -v colonies >/dev/null; then
	cli() { timeout "${CLI_TIMEOUT:-60}" colonies "$@"; }
elif [ -x "$BIN" ] && [ -z "$R" ]; then
	cli() { timeout "${CLI_TIMEOUT:-60}" "$BIN" "$@"; }
elif [ "$MODE" = compose ]; then
	SPEC=$STACK_DIR/colonyos/executor.json
	cli() {
		local v env=()
		for v in "${CLI_VARS[@]}"; do [ -n "${!v+x}" ] && env+=(-e "$v"); done
		timeout 600 docker run --rm -i --network host "${env[@]}" -v "$SPECS:$STACK_DIR/colonyos:ro" \
			--entrypoint colonies "$IMAGE" "$@"
	}
else
	die 3 "no colonies CLI: neither on PATH nor /usr/local/bin/colonies"
fi

# ---- key pairs ----------------------------------------------------------

declare -A K=()
if [ -f "$KEYS" ]; then
	while IFS= read -r line || [ -n "$line" ]; do
		if [[ $line =~ ^(COLONIES_[A-Z_]+)=([0-9a-f]{64})$ ]]; then
			K[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
		fi
	done <"$KEYS"
fi

# generate ROLE: a new pair into K[COLONIES_ROLE_ID] and K[..._PRVKEY]:
# `colonies key generate` (1.8), `colonies security generate` (1.9 on).
generate() {
	local out id key
	if ! out=$(cli key generate 2>&1); then
		[[ $out == *"unknown command"* ]] || die 2 "colonies key generate failed"
		out=$(cli security generate 2>&1) || die 2 "colonies security generate failed"
	fi
	[[ $out =~ (^|[^A-Za-z])[Ii][Dd][=:][[:space:]]*\"?([0-9a-f]{64}) ]] && id=${BASH_REMATCH[2]} || id=""
	[[ $out =~ PrvKey[=:][[:space:]]*\"?([0-9a-f]{64}) ]] && key=${BASH_REMATCH[1]} || key=""
	unset out
	if [ -z "$id" ] || [ -z "$key" ] || [ "$id" = "$key" ]; then
		die 3 "could not read Id= and PrvKey= from 'colonies key generate'"
	fi
	K[COLONIES_$1_ID]=$id
	K[COLONIES_$1_PRVKEY]=$key
	say "generated the ${1,,} key pair (id $id)"
}
new_keys=0
for role in SERVER COLONY EXECUTOR; do
	if [ -z "${K[COLONIES_${role}_ID]:-}" ] || [ -z "${K[COLONIES_${role}_PRVKEY]:-}" ]; then
		if [ "$role" != SERVER ] && [ -n "${K[COLONIES_${role}_ID]:-}${K[COLONIES_${role}_PRVKEY]:-}" ]; then
			die 3 "${KEYS#"$R"} has half of the ${role,,} key pair; restore it from a copy"
		fi
		generate "$role"
		new_keys=1
	fi
done

make_dir "$SD"
# Written before anything is registered with them, so a failure later
# never loses a key the server already knows.
put_file "$KEYS" 0600 <<EOF
# Managed by firstboot (module colonyos): the ColonyOS identities of this
# server. Generated once and never again: keep a copy somewhere safe.
COLONIES_SERVER_ID=${K[COLONIES_SERVER_ID]}
COLONIES_SERVER_PRVKEY=${K[COLONIES_SERVER_PRVKEY]}
COLONIES_COLONY_NAME=$COLONY_NAME
COLONIES_COLONY_ID=${K[COLONIES_COLONY_ID]}
COLONIES_COLONY_PRVKEY=${K[COLONIES_COLONY_PRVKEY]}
COLONIES_EXECUTOR_NAME=$EXECUTOR_NAME
COLONIES_EXECUTOR_TYPE=$EXECUTOR_TYPE
COLONIES_EXECUTOR_ID=${K[COLONIES_EXECUTOR_ID]}
COLONIES_EXECUTOR_PRVKEY=${K[COLONIES_EXECUTOR_PRVKEY]}
COLONIES_ID=${K[COLONIES_EXECUTOR_ID]}
COLONIES_PRVKEY=${K[COLONIES_EXECUTOR_PRVKEY]}
EOF
put_file "$SERVER_ENV" 0600 <<EOF
# Managed by firstboot (module colonyos): the server's identity.
COLONIES_SERVER_ID=${K[COLONIES_SERVER_ID]}
COLONIES_SERVER_PRVKEY=${K[COLONIES_SERVER_PRVKEY]}
EOF
server_changed=$FILE_CHANGED
# The server's identity for every call, `database create` first of all.
load_env "$SERVER_ENV"

# as_server / as_colony / as_executor CMD...: CMD with the server's, the
# colony's or the executor's key (COLONIES_PRVKEY is always set: the CLI
# will not start without one). local -x: exported to CMD only, gone when
# the function returns.
as_server() {
	local -x COLONIES_SERVER_ID=${K[COLONIES_SERVER_ID]} COLONIES_SERVER_PRVKEY=${K[COLONIES_SERVER_PRVKEY]}
	local -x COLONIES_PRVKEY=${K[COLONIES_SERVER_PRVKEY]}
	"$@"
}
as_colony() {
	local -x COLONIES_COLONY_ID=${K[COLONIES_COLONY_ID]} COLONIES_COLONY_PRVKEY=${K[COLONIES_COLONY_PRVKEY]}
	local -x COLONIES_PRVKEY=${K[COLONIES_COLONY_PRVKEY]}
	"$@"
}
as_executor() {
	local -x COLONIES_PRVKEY=${K[COLONIES_EXECUTOR_PRVKEY]}
	"$@"
}

# ---- the database -------------------------------------------------------

# colonies 1.8 keeps its tables in the database postgres whatever
# COLONIES_DB_NAME says (DBName in internal/cli/root.go), and on
# PostgreSQL 15 only a schema's owner may create tables in it. On this
# machine's own PostgreSQL (Debian's, the postgres module's native mode)
# the database user needs a schema of its own there: the postgres module
# makes it with postgres_db_schema. Without it the server would start and
# fail on every request; this says so first. A server in a container has
# its database user as superuser and needs nothing.
# env_value NAME: NAME in colonyos.env as systemd's EnvironmentFile= reads
# it (single quotes around it taken off, no escapes).
env_value() {
	local v
	v=$(sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1)
	[[ $v != \'*\' ]] || v=${v:1:-1}
	printf '%s' "$v"
}
db_host=$(env_value COLONIES_DB_HOST)
db_user=$(env_value COLONIES_DB_USER)
db_port=$(env_value COLONIES_DB_PORT)
if [[ $db_host =~ ^(127\.0\.0\.1|localhost|::1|host\.docker\.internal)$ ]] && [[ $db_user =~ ^[a-z_][a-z0-9_]*$ ]] &&
	[[ $db_port =~ ^[0-9]+$ ]] && grep -q '^postgres:' "$R/etc/passwd" 2>/dev/null && command -v psql >/dev/null; then
	if owned=$(DB_USER=$db_user runuser -u postgres -- psql -X -q -t -A -p "$db_port" -d postgres -f - 2>/dev/null <<'SQL'
\getenv u DB_USER
SELECT EXISTS (SELECT FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
	WHERE n.nspname = :'u' AND r.rolname = :'u') OR EXISTS (SELECT FROM pg_roles WHERE rolname = :'u' AND rolsuper);
SQL
	); then
		[ "$owned" = t ] || die 3 "colonies keeps its tables in the database postgres, where $db_user has no schema of its own: set postgres_db_schema: true in the postgres module"
		say "$db_user has its schema in the database postgres"
	else
		say "cannot ask PostgreSQL on port $db_port whether $db_user has its schema in the database postgres; going on"
	fi
fi

# The tables, unless a server already answers (a second run): `colonies
# database create` with the database settings of colonyos.env in its
# environment. In compose mode it runs in the service's own container
# (its env files, its network: the database may be the compose service
# postgres); it retries the connection until PostgreSQL takes it, which
# wait_seconds bounds. A create that fails otherwise is reported and the
# server's answer below decides.
if ! as_server cli colony ls --json >/dev/null 2>&1; then
	say "creating the colonies tables (colonies database create)"
	rc=0
	if [ "$MODE" = compose ]; then
		timeout "$WAIT_SECONDS" "${compose[@]}" run --rm -T --entrypoint colonies colonies-server database create || rc=$?
	else
		CLI_TIMEOUT=$WAIT_SECONDS cli database create || rc=$?
	fi
	hint=""
	[ "$db_host" != host.docker.internal ] ||
		hint=" (the compose service reaches this machine's PostgreSQL through the docker bridge: the postgres module's listen must include the bridge's address and allowed_networks the compose network)"
	[ $rc != 124 ] || die 2 "PostgreSQL at ${db_host:-?}:${db_port:-?} did not take colonies' connection within ${WAIT_SECONDS}s (colonies database create)$hint"
	[ $rc = 0 ] || say "colonies database create exited $rc; the server's answer decides"
fi

# ---- the server ---------------------------------------------------------

if [ "$MODE" = compose ]; then
	# up -d recreates the container only when its configuration (the
	# env files included) changed.
	"${compose[@]}" up -d colonies-server || die 2 "docker compose up colonies-server failed"
else
	# What the server was last started with: a checksum of its unit and
	# its env files (EnvironmentFile= is read at start). Changed bytes
	# restart it; the same again with it running is nothing to do.
	sum=$(cat "$UNIT" "$ENV_FILE" "$SERVER_ENV" | sha256sum | cut -d' ' -f1)
	read_state colonies-server.sha256
	old_sum=$STATE_VALUE
	[ "$sum" = "$old_sum" ] || server_changed=1
	reload=0
	systemctl is-enabled --quiet colonies-server || reload=1
	[ "$(systemctl show -p NeedDaemonReload --value colonies-server 2>/dev/null)" = yes ] && reload=1
	if [ $reload = 1 ]; then
		systemctl daemon-reload || die 3 "systemctl daemon-reload failed"
	fi
	if ! systemctl is-enabled --quiet colonies-server; then
		systemctl enable colonies-server || die 3 "cannot enable colonies-server"
	fi
	if ! systemctl is-active --quiet colonies-server; then
		systemctl start colonies-server || die 3 "colonies-server does not start"
	elif [ "$server_changed" = 1 ] || [ $reload = 1 ]; then
		say "its unit or env files changed: restarting colonies-server"
		systemctl restart colonies-server || die 3 "colonies-server does not restart"
	fi
	# Recorded once it runs with them, so a failed restart is tried again.
	record_state colonies-server.sha256 "$sum"
fi

# The server answers once it lists the colonies for the server key.
say "waiting for the server on 127.0.0.1:$HTTP_PORT (at most ${WAIT_SECONDS}s)"
deadline=$((SECONDS + WAIT_SECONDS))
while ! colonies_ls=$(as_server cli colony ls --json 2>&1); do
	# The server takes its identity from the database (prod_server), set
	# by the `database create` that made the tables and never after: one
	# made without this COLONIES_SERVER_ID refuses the key for good. The
	# ID is public; the server reads it on every request (no restart).
	if [[ $colonies_ls == *"not server owner"* ]]; then
		die 3 "the server refuses the key of ${SERVER_ENV#"$R"} (\"not server owner\"): its database records another server identity, left by a \`colonies database create\` run without COLONIES_SERVER_ID=${K[COLONIES_SERVER_ID]}. Repair: in the database postgres as ${db_user:-the database user} (host ${db_host:-?}, port ${db_port:-?}) run UPDATE prod_server SET server_id = '${K[COLONIES_SERVER_ID]}'; then run this module again. Or, to start over, drop colonies' prod_* tables."
	fi
	if [ $SECONDS -ge $deadline ]; then
		die 2 "the server did not answer 'colonies colony ls' within ${WAIT_SECONDS}s"
	fi
	sleep 1
done

# ---- the colony ---------------------------------------------------------

make_dir "$SPECS"
if [[ $colonies_ls == *"${K[COLONIES_COLONY_ID]}"* ]]; then
	say "colony $COLONY_NAME is registered"
else
	if [[ $colonies_ls =~ \"name\"[[:space:]]*:[[:space:]]*\"$COLONY_NAME\" ]]; then
		die 3 "a colony named $COLONY_NAME is registered with another key (not the one in ${KEYS#"$R"}); remove it or restore the keys"
	fi
	# The colony's ID and name are public: no key on the command line.
	as_server cli colony add --name "$COLONY_NAME" --colonyid "${K[COLONIES_COLONY_ID]}" ||
		die 2 "colonies colony add failed"
	colonies_ls=$(as_server cli colony ls --json 2>&1) || die 2 "colonies colony ls failed after the colony was added"
	[[ $colonies_ls == *"${K[COLONIES_COLONY_ID]}"* ]] || die 2 "colony $COLONY_NAME is not listed after colonies colony add"
	say "registered colony $COLONY_NAME (id ${K[COLONIES_COLONY_ID]})"
fi

# ---- the executor -------------------------------------------------------

# Only members of the colony may list its executors: the executor's own
# key is refused until it is registered. Its entry's state: 0 pending
# (added, not approved: a run cut short), 1 approved, 2 rejected.
state=""
if executors=$(as_executor cli executor ls --json --full 2>&1) &&
	[[ $executors =~ \"executorid\"[[:space:]]*:[[:space:]]*\"${K[COLONIES_EXECUTOR_ID]}\"[^{}]*\"state\"[[:space:]]*:[[:space:]]*([0-9]+) ]]; then
	state=${BASH_REMATCH[1]}
fi
case $state in
1) say "executor $EXECUTOR_NAME is registered" ;;
0)
	as_colony cli executor approve --name "$EXECUTOR_NAME" || die 2 "colonies executor approve failed"
	say "approved executor $EXECUTOR_NAME (id ${K[COLONIES_EXECUTOR_ID]})"
	;;
"")
	put_file "$SPECS/executor.json" 0644 <<EOF
{"executorname": "$EXECUTOR_NAME", "executorid": "${K[COLONIES_EXECUTOR_ID]}", "executortype": "$EXECUTOR_TYPE", "colonyname": "$COLONY_NAME"}
EOF
	as_colony cli executor add --spec "$SPEC" \
		--executorid "${K[COLONIES_EXECUTOR_ID]}" --approve || die 2 "colonies executor add failed"
	say "registered and approved executor $EXECUTOR_NAME (id ${K[COLONIES_EXECUTOR_ID]})"
	;;
*) die 3 "executor $EXECUTOR_NAME (id ${K[COLONIES_EXECUTOR_ID]}) is in state $state (2: rejected): approve or remove it with the colony key" ;;
esac

# ---- the manifest for cpm and the dashboard -----------------------------

put_file "$MANIFEST" 0600 <<EOF
{
  "server": {"host": "localhost", "http_port": $HTTP_PORT, "grpc_upstream": "$GRPC_UPSTREAM", "tls": false,
             "id": "${K[COLONIES_SERVER_ID]}", "prvkey": "${K[COLONIES_SERVER_PRVKEY]}"},
  "colony": {"name": "$COLONY_NAME", "id": "${K[COLONIES_COLONY_ID]}", "prvkey": "${K[COLONIES_COLONY_PRVKEY]}"},
  "executor": {"name": "$EXECUTOR_NAME", "type": "$EXECUTOR_TYPE", "id": "${K[COLONIES_EXECUTOR_ID]}",
               "prvkey": "${K[COLONIES_EXECUTOR_PRVKEY]}"},
  "env_file": "$STACK_DIR/colonyos-keys.env"
}
EOF

[ $new_keys = 1 ] && say "new keys are in $STACK_DIR/colonyos-keys.env (0600): keep a copy"
say "done: colony $COLONY_NAME, executor $EXECUTOR_NAME, server $MODE on 127.0.0.1:$HTTP_PORT"
