#!/bin/bash
# More module-test helpers, sourced after lib.sh and modlib.sh: simulators
# that stand behind the recorders (through mod_ctl) for the stack modules,
# and the rendering of the repo's templates with a fixture context.
#
#   modb_colonies_sim            `colonies` as colonyos/colonies' CLI and
#                                server, with a registry in
#                                $MOD_REC/state/colonies, checking every key
#                                and flag it is given
#   modb_colonies_down N         the next N server calls fail (connection refused)
#   modb_colonies_dbdown         the database never takes `database create`'s
#                                connection
#   modb_docker_sim              `docker compose` runs `config` with the real
#                                docker-compose, keeps the containers `up`
#                                made in $MOD_REC/state/compose, answers
#                                `ps -q` and `docker inspect`, and `run
#                                --entrypoint colonies` runs the colonies
#                                simulator with the service's environment
#   modb_health SVC STATE...     the health checks of SVC report these states
#                                in turn (the last one stays)
#   modb_render TEMPLATE CONTEXT OUT [MODE]   a template of templates/ rendered
#                                with tests/tools/tmpl-render
#   modb_context FIXTURE OUT [PYTHON]  tests/cases/templates/FIXTURE.json with
#                                the Python statement applied to it (bound to j)
# shellcheck disable=SC2034

TMPL_RENDER=${TMPL_RENDER:-$TOP/build/tests/tools/tmpl-render}

modb_render() {
	"$TMPL_RENDER" "$TOP/templates/$1" "$2" >"$3" || return 1
	chmod "${4:-0644}" "$3"
}

modb_context() {
	python3 - "$TOP/tests/cases/templates/$1.json" "$2" "${3:-pass}" <<'EOP'
import json, sys
j = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(j, open(sys.argv[2], "w"))
EOP
}

modb_colonies_down() { echo "$1" >"$MOD_REC/state/colonies.down"; }
modb_colonies_dbdown() { : >"$MOD_REC/state/colonies/dbdown"; }

# modb_colonies_sim: `colonies` as colonyos/colonies v1.8.19's CLI
# (internal/cli) and server answer, as observed with the real binary
# (/work/shared/upstream-facts/colonies.md), with a registry in
# $MOD_REC/state/colonies ("ID NAME" per colony, "COLONY ID NAME TYPE
# STATE" per executor; an ID is the SHA-256 of its private key).
# `key generate` logs the pair; `security generate` is 1.9's (here only
# with state/colonies/keycmd "security", and then `key` is unknown).
# `database create` needs TZ (pkg/database/postgresql/database.go: without
# it the connection is retried forever) and makes the tables
# (state/colonies/tables; each call's DB host and user in dbcreate),
# storing COLONIES_SERVER_ID as it is then as the server's identity
# (state/colonies/serverid), never updated by a later create (db.go:
# Initialize() fails on existing tables, exit 0). Server commands need
# the tables, COLONIES_SERVER_PORT (else "invalid port :-1") and
# COLONIES_SERVER_TLS=false (unset: HTTPS, which the plain server
# refuses); COLONIES_SERVER_HTTP_PORT and COLONIES_TLS are not read.
# colony ls/add take the key of the identity in the database; executor ls
# answers members of the colony only (the executor, not the colony key);
# executor add/approve take the colony key; `--spec` is opened as given
# (MODB_MOUNTS="SRC:DST" from the docker simulator: a container path).
# JSON is compact. Cobra's errors exit 1, the CLI's own (CheckError,
# os.Exit(-1)) 255.
modb_colonies_sim() {
	mkdir -p "$MOD_REC/state/colonies"
	mod_ctl colonies <<'EOS'
set -uo pipefail
S=$REC_DIR/state/colonies
id_of() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
fail() { echo "time=\"2025-01-01T00:00:00Z\" level=error msg=\"$*\" BuildTime= BuildVersion=" >&2; exit 255; }
usage() { printf 'Error: %s\nRun '"'"'colonies --help'"'"' for usage.\n' "$*" >&2; exit 1; }
json_field() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$2"; }
cmd="${1:-} ${2:-}"
keycmd=$(cat "$S/keycmd" 2>/dev/null || echo key)
if [ "$cmd" = "$keycmd generate" ]; then
	k=$(openssl rand -hex 32)
	echo "time=\"2025-01-01T00:00:00Z\" level=info msg=\"Generated new private key\" Id=$(id_of "$k") PrvKey=$k" >&2
	exit 0
fi
# database create (db.go): the settings from the environment, the
# connection retried every second until it is taken (here: TZ set, the
# password colonyos.env gives as docker-compose reads it, and no
# state/colonies/dbdown); the server's identity stored with new tables
# only.
if [ "$cmd" = "database create" ]; then
	[ $# = 2 ] || usage "unknown flag: $3"
	# The stack folder as the root sees it (an absolute link in it is
	# taken inside the root, as the module takes it).
	stack=$FIRSTBOOT_ROOT/opt/stack
	if lnk=$(readlink "$stack") && [[ $lnk == /* ]]; then stack=$FIRSTBOOT_ROOT$lnk; fi
	want=$(python3 -c 'import sys, dotenv; print(dotenv.dotenv_values(sys.argv[1])["COLONIES_DB_PASSWORD"])' \
		"$stack/colonyos.env")
	for i in $(seq 600); do
		if [ -z "${TZ:-}" ]; then
			echo 'level=error msg="Failed to call db.Connect(), retrying in 1 second ..." Error="Timezon environmental variable missing, try e.g. export TZ=Europe/Stockholm"' >&2
		elif [ -n "${COLONIES_DB_HOST:-}" ] && [ -n "${COLONIES_DB_PORT:-}" ] && [ -n "${COLONIES_DB_USER:-}" ] &&
			[ "${COLONIES_DB_PASSWORD:-}" = "$want" ] && [ ! -f "$S/dbdown" ]; then
			break
		else
			echo 'level=error msg="Failed to call db.Connect(), retrying in 1 second ..."' >&2
		fi
		sleep 1
	done
	echo "$COLONIES_DB_HOST:$COLONIES_DB_PORT $COLONIES_DB_USER" >>"$S/dbcreate"
	if [ -f "$S/tables" ]; then
		echo 'level=error msg="Failed to call db.Initialize()" Error="pq: relation \"prod_processes\" already exists"' >&2
		exit 0
	fi
	touch "$S/tables"
	printf '%s' "${COLONIES_SERVER_ID:-}" >"$S/serverid"
	echo "level=info msg=\"Setting server ID\" ServerID=${COLONIES_SERVER_ID:-}" >&2
	exit 0
fi
case $cmd in
"colony ls" | "colony add" | "executor ls" | "executor add" | "executor approve") shift 2 ;;
*) usage "unknown command \"${1:-}\" for \"colonies\"" ;;
esac
name="" colonyid="" spec="" eid="" json=0 full=0 approve=0
while [ $# -gt 0 ]; do
	case "$cmd $1" in
	"colony ls --json" | "executor ls --json") json=1 && shift ;;
	"executor ls --full") full=1 && shift ;;
	"colony add --name" | "executor approve --name") name=${2:-} && shift 2 ;;
	"colony add --colonyid") colonyid=${2:-} && shift 2 ;;
	"executor add --spec") spec=${2:-} && shift 2 ;;
	"executor add --executorid") eid=${2:-} && shift 2 ;;
	"executor add --approve") approve=1 && shift ;;
	*) usage "unknown flag: $1" ;;
	esac
done
case $cmd in
"colony add") [ -n "$name" ] && [ -n "$colonyid" ] || usage 'required flag(s) "colonyid", "name" not set' ;;
"executor add") [ -n "$eid" ] || usage 'required flag(s) "executorid" not set' ;;
"executor approve") [ -n "$name" ] || usage 'required flag(s) "name" not set' ;;
esac
for v in COLONIES_SERVER_HOST COLONIES_COLONY_NAME COLONIES_PRVKEY; do
	[ -n "${!v:-}" ] || fail "$v not set"
done
port=${COLONIES_SERVER_PORT:-}
[ -n "$port" ] || fail "dial tcp: address $COLONIES_SERVER_HOST:-1: invalid port :-1"
[ "${COLONIES_SERVER_TLS:-}" = false ] ||
	fail "Post \"https://$COLONIES_SERVER_HOST:$port/api\": http: server gave HTTP response to HTTPS client"
if [ -f "$REC_DIR/state/colonies.down" ]; then
	n=$(cat "$REC_DIR/state/colonies.down")
	if [ "$n" -gt 0 ]; then
		echo $((n - 1)) >"$REC_DIR/state/colonies.down"
		fail "Post \"http://$COLONIES_SERVER_HOST:$port/api\": dial tcp 127.0.0.1:$port: connect: connection refused"
	fi
fi
[ -f "$S/tables" ] || fail "pq: relation \"prod_colonies\" does not exist"
server_id=$(cat "$S/serverid" 2>/dev/null)
touch "$S/colonies" "$S/executors"
colony=$COLONIES_COLONY_NAME
colony_id=$(awk -v n="$colony" '$2 == n { print $1 }' "$S/colonies")
owner() {
	[ -n "$colony_id" ] || fail "Colony with name <$colony> does not exist"
	[ "$(id_of "${COLONIES_COLONY_PRVKEY:-}")" = "$colony_id" ] || fail "Access denied, not colony owner"
}
# The server's own check: the key's ID against the database's.
server_owner() {
	[ "$(id_of "${COLONIES_SERVER_PRVKEY:-}")" = "$server_id" ] || fail "Access denied, not server owner"
}

set_state() { awk -v c="$colony" -v n="$1" -v s="$2" '$1 == c && $3 == n { $5 = s } { print }' "$S/executors" >"$S/x" && mv "$S/x" "$S/executors"; }
case $cmd in
"colony ls")
	server_owner
	[ $json = 1 ] || { echo "+------+------+"; exit 0; }
	awk 'BEGIN { printf "[" } { printf "%s{\"colonyid\":\"%s\",\"name\":\"%s\"}", s, $1, $2; s = "," } END { print "]" }' "$S/colonies"
	;;
"colony add")
	server_owner
	[ -z "$(awk -v n="$name" -v i="$colonyid" '$1 == i || $2 == n' "$S/colonies")" ] || fail "A Colony with name <$name> already exists"
	echo "$colonyid $name" >>"$S/colonies"
	echo "level=info msg=\"Colony added\" ColonyID=$colonyid ColonyName=$name" >&2
	;;
"executor ls")
	[ -n "$colony_id" ] || fail "Colony with name <$colony> does not exist"
	awk -v c="$colony" -v i="$(id_of "$COLONIES_PRVKEY")" '$1 == c && $2 == i { f = 1 } END { exit !f }' "$S/executors" ||
		fail "Access denied, not a member of colony <$colony>"
	if [ $json = 1 ] && [ $full = 1 ]; then
		awk -v c="$colony" 'BEGIN { printf "[" } $1 == c {
			printf "%s{\"executorid\":\"%s\",\"executortype\":\"%s\",\"executorname\":\"%s\",\"colonyname\":\"%s\",\"state\":%s,\"requirefuncreg\":false,\"location\":{\"long\":0,\"lat\":0,\"desc\":\"\"}}", s, $2, $4, $3, $1, $5
			s = "," } END { print "]" }' "$S/executors"
	else
		awk -v c="$colony" '$1 == c { print "| " $3 " | " $4 " |" }' "$S/executors"
	fi
	;;
"executor add")
	owner
	[ ${#eid} = 64 ] || fail "Invalid Executor Id length"
	file=$spec
	if [ -n "${MODB_MOUNTS:-}" ] && [[ $spec == "${MODB_MOUNTS#*:}"/* ]]; then
		file=${MODB_MOUNTS%%:*}${spec#"${MODB_MOUNTS#*:}"}
	fi
	[ -f "$file" ] || fail "open $spec: no such file or directory"
	ename=$(json_field executorname "$file")
	etype=$(json_field executortype "$file")
	awk -v c="$colony" -v n="$ename" '$1 == c && $3 == n { f = 1 } END { exit !f }' "$S/executors" &&
		fail "Executor with name <$ename> already exists in colony <$colony>"
	echo "$colony $eid $ename $etype 0" >>"$S/executors"
	if [ $approve = 1 ]; then
		echo "level=info msg=\"Approving Executor\" ExecutorName=$ename" >&2
		set_state "$ename" 1
	fi
	echo "level=info msg=\"Executor added\" ColonyName=$colony ExecutorID=$eid ExecutorName=$ename ExecutorType=$etype" >&2
	;;
"executor approve")
	owner
	awk -v c="$colony" -v n="$name" '$1 == c && $3 == n { f = 1 } END { exit !f }' "$S/executors" ||
		fail "Failed to approve executor, executor is nil"
	set_state "$name" 1
	echo "level=info msg=\"Executor approved\" ColonyName=$colony ExecutorName=$name" >&2
	;;
esac
exit 0
EOS
}

modb_health() {
	local svc=$1
	shift
	mkdir -p "$MOD_REC/state/compose"
	printf '%s\n' "$@" >"$MOD_REC/state/compose/health.$svc"
}

# docker compose [-f FILE] CMD...: config with the real docker-compose
# (Debian's 1.29, so the file is checked for real), up records the
# services' containers, ps -q lists them; docker inspect answers from
# the health lists. Everything else is the recorder's fake.
modb_docker_sim() {
	mkdir -p "$MOD_REC/state/compose" "$T/compose-cache"
	printf 'MODB_CACHE=%q\n' "$T/compose-cache" >"$MOD_REC/state/compose/cache"
	mod_ctl docker <<'EOS'
set -uo pipefail
. "$REC_DIR/state/compose/cache"
S=$REC_DIR/state/compose
# The real docker-compose, not the recorder in front of it.
PATH=$(tr ':' '\n' <<<"$PATH" | grep -vxF "$REC_DIR/bin" | paste -sd:)
# colonies NAME=VALUE... -- ARGS: the colonies simulator
# (modb_colonies_sim) with ARGS and only that environment.
colonies() {
	local env=(PATH="$PATH" FIRSTBOOT_ROOT="$FIRSTBOOT_ROOT" REC_DIR="$REC_DIR")
	while [ "${1:---}" != -- ]; do env+=("$1") && shift; done
	shift
	exec env -i "${env[@]}" bash "$REC_DIR/ctl/colonies.sh" "$@"
}
if [ "${1:-}" = run ]; then
	# run [-e NAME]... [-v SRC:DST[:ro]] --entrypoint colonies IMAGE ARGS:
	# only the variables passed by name reach the container; the mount is
	# told to the simulator (MODB_MOUNTS).
	shift
	ep="" env=()
	while [[ ${1:-} == -* ]]; do
		case $1 in
		-e) [ -z "${!2+x}" ] || env+=("$2=${!2}") && shift 2 ;;
		-v) env+=("MODB_MOUNTS=${2%:ro}") && shift 2 ;;
		--network) shift 2 ;;
		--entrypoint) ep=$2 && shift 2 ;;
		*) shift ;;
		esac
	done
	shift # the image
	[ "$ep" = colonies ] && colonies "${env[@]}" -- "$@"
	exit 0
fi
if [ "${1:-}" = inspect ]; then
	shift 3 # inspect -f FORMAT
	for id in "$@"; do
		svc=${id#c-}
		status=running health=none
		[ -f "$S/exited.$svc" ] && status=exited
		if [ -f "$S/health.$svc" ]; then
			health=$(head -n1 "$S/health.$svc")
			if [ "$(wc -l <"$S/health.$svc")" -gt 1 ]; then
				sed -i 1d "$S/health.$svc"
			fi
		fi
		echo "/stack-$svc-1 $status $health"
	done
	exit 0
fi
if [ "${1:-}" != compose ]; then
	case "${1:-}" in info) echo "Server Version: 24.0.7" ;; esac
	exit 0
fi
shift
[ "${1:-}" = version ] && { echo "Docker Compose version v2.24.0"; exit 0; }
file=""
if [ "${1:-}" = -f ]; then
	file=$2
	shift 2
fi
# real_config ARGS...: docker-compose config ARGS for $file, its output,
# errors and status kept by the file's content in $MODB_CACHE (the same
# project rendered into several roots is checked once).
real_config() {
	local key c
	key=$(sha256sum <"$file" | cut -c1-16)-${*// /_}
	c=$MODB_CACHE/$key
	if [ ! -f "$c.rc" ]; then
		(cd "$(dirname "$file")" && docker-compose -f "$file" config "$@") >"$c.out" 2>"$c.err"
		echo $? >"$c.rc"
	fi
	cat "$c.out"
	cat "$c.err" >&2
	return "$(cat "$c.rc")"
}
case "${1:-}" in
config)
	shift
	if [ "${1:-}" = --services ]; then
		real_config --services >"$S/services" || exit 1
		cat "$S/services"
	else
		real_config "$@"
		exit $?
	fi
	;;
up)
	if [ ! -s "$S/services" ]; then
		real_config --services >"$S/services" || exit 1
	fi
	shift
	for a; do [[ $a == -* ]] || echo "$a"; done >"$S/only"
	if [ -s "$S/only" ]; then cat "$S/only"; else cat "$S/services"; fi >>"$S/up"
	sort -u "$S/up" -o "$S/up"
	;;
ps) [ -f "$S/up" ] && sed 's/^/c-/' "$S/up" ;;
run)
	# run [--rm -T ...] --entrypoint colonies SERVICE ARGS: the simulated
	# CLI with the service's environment as the real docker-compose
	# resolves it (env files included; not cached: they differ by root).
	shift
	ep=""
	while [[ ${1:-} == -* ]]; do
		case $1 in --entrypoint) ep=$2 && shift 2 ;; *) shift ;; esac
	done
	svc=${1:-}
	shift
	[ "$ep" = colonies ] || exit 0
	cfg=$(cd "$(dirname "$file")" && docker-compose -f "$file" config) || exit 1
	mapfile -t env < <(python3 -c '
import sys, yaml
env = yaml.safe_load(sys.stdin)["services"][sys.argv[1]].get("environment", {})
for k, v in env.items():
    print("%s=%s" % (k, str(v).replace("$$", "$")))' "$svc" <<<"$cfg")
	colonies "${env[@]}" -- "$@"
	;;
*) ;;
esac
exit 0
EOS
}

# modb_http NAME [DIR]: an HTTP server on 127.0.0.1 (port in $NAME_port,
# stopped at exit) that serves the files of DIR, or, without DIR, answers
# every GET with "NAME <path>" and the request's Upgrade and Connection
# headers, one per line (for proxies: which backend, what it was sent),
# and keeps what is PUT to PATH in $T/NAME.port.put/PATH (its headers in
# PATH.headers).
modb_http() {
	local name=$1 dir=${2:-}
	rm -f "$T/$name.port"
	python3 - "$name" "$T/$name.port" "$dir" >"$T/$name.log" 2>&1 <<'EOP' &
import http.server, os, socketserver, sys
name, port_file, root = sys.argv[1], sys.argv[2], sys.argv[3]
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%s %s\nupgrade: %s\nconnection: %s\n" % (name, self.path,
                self.headers.get("Upgrade", "-"), self.headers.get("Connection", "-"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
    def do_PUT(self):
        # An S3 PUT: the body and the headers kept in PORT_FILE.put/PATH
        # and PORT_FILE.put/PATH.headers.
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        path = os.path.join(port_file + ".put", self.path.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").write(body)
        open(path + ".headers", "w").write("".join("%s: %s\n" % kv for kv in self.headers.items()))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
class Files(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
handler = Files if root else Echo
srv = socketserver.TCPServer(("127.0.0.1", 0), handler)
tmp = port_file + ".tmp"
open(tmp, "w").write(str(srv.server_address[1]))
os.rename(tmp, port_file)
srv.serve_forever()
EOP
	_pids+=($!)
	if ! wait_for 10 test -s "$T/$name.port"; then
		echo "not ok - start $name" && cat "$T/$name.log"
		exit 1
	fi
	printf -v "${name}_port" '%s' "$(cat "$T/$name.port")"
}
