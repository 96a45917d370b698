#!/bin/bash
# Shared helpers for the end-to-end tests. Each test script sources this,
# makes its cases with `t_case NAME` ... `t_pass`/`t_fail MSG`, or with
# `t_check NAME CMD...`, and prints "ok - NAME" / "not ok - NAME" lines
# that tests/run.sh counts. Every wait is bounded.
# shellcheck disable=SC2034
set -uo pipefail

: "${FIRSTBOOT:?run through tests/run.sh or make check}"
: "${TOP:?}"
TESTTMP=${TESTTMP:-$TOP/tests/.tmp}
mkdir -p "$TESTTMP"
T=$(mktemp -d "$TESTTMP/$(basename "$0" .sh).XXXXXX")
PEERS="$TOP/tests/e2e/peers"
_pids=()
_case=""

_cleanup() {
	local p
	for p in "${_pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${_pids[@]}"; do wait "$p" 2>/dev/null; done
	[ -z "${KEEP:-}" ] && rm -rf "$T"
}
trap _cleanup EXIT
# run.sh's time limit ends a test with TERM: exit through the EXIT trap
# (a test's own EXIT trap too), so its servers and PM2 daemons go with it.
trap 'exit 143' TERM
trap 'exit 130' INT

t_case() { _case=$1; }
t_pass() { echo "ok - $_case"; }
t_fail() {
	echo "not ok - $_case"
	echo "  # $*"
}
# t_check NAME CMD...: passes when CMD exits 0.
t_check() {
	local name=$1
	shift
	if "$@"; then echo "ok - $name"; else
		echo "not ok - $name"
		echo "  # failed: $*"
	fi
}
# expect_rc WANT CMD...: runs CMD with output in $T/out and $T/err and
# fails the current case when its exit code is not WANT.
expect_rc() {
	local want=$1 rc
	shift
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "  # $* exited $rc, expected $want" >&2
		sed 's/^/  # err: /' "$T/err" | head -n 20 >&2
		return 1
	fi
	return 0
}

# wait_for SECONDS CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 20; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# wait_eq LIMIT WANT CMD...: CMD, run again every 0.05 s, prints WANT
# within LIMIT seconds. (`wait_for N test "$(CMD)" = WANT` would run CMD
# once, before waiting.)
wait_eq() {
	local end=$((SECONDS + $1)) want=$2
	shift 2
	while :; do
		[ "$("$@" 2>/dev/null)" = "$want" ] && return 0
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# free_port [TAKEN...]: a port nothing answers on at 127.0.0.1, below
# Linux's ephemeral range (32768-60999), where no outgoing connection
# takes it; within TEST_PORTS=LO-HI when set (runs side by side keep
# apart). Never one of TAKEN: ports picked before and not yet listened on.
# shellcheck disable=SC2120 # TAKEN is given by the tests that need it
free_port() {
	local p i lo=20000 n=12000
	if [[ ${TEST_PORTS:-} =~ ^([0-9]+)-([0-9]+)$ ]]; then
		lo=${BASH_REMATCH[1]} n=$((BASH_REMATCH[2] - BASH_REMATCH[1] + 1))
	fi
	for ((i = 0; i < 50; i++)); do
		p=$((lo + RANDOM % n))
		[[ " $* " != *" $p "* ]] || continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# redis_start DIR: a private redis-server (Debian's) on 127.0.0.1:$PORT,
# no persistence, its log in DIR/redis.log; REDIS_PID. Keeps $PORT when
# set (a restart), else picks one, and another if that one was taken
# between the pick and the bind (at most five tries).
redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = PONG ]; }
redis_start() {
	local dir=$1 keep=${PORT:-} i j
	mkdir -p "$dir"
	for ((i = 0; i < 5; i++)); do
		[ -n "$keep" ] || PORT=$(free_port) || return 1
		redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >>"$dir/redis.log" 2>&1 &
		REDIS_PID=$!
		_pids+=("$REDIS_PID")
		for ((j = 0; j < 200; j++)); do
			redis_ping && return 0
			kill -0 "$REDIS_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill "$REDIS_PID" 2>/dev/null
		wait "$REDIS_PID" 2>/dev/null
		[ -z "$keep" ] || return 1
	done
	return 1
}

# start_peer NAME SCRIPT ARGS...: starts a Python peer from tests/e2e/peers
# that writes its port to $T/NAME.port; sets the variable NAME_port.
start_peer() {
	local name=$1 script=$2
	shift 2
	rm -f "$T/$name.port"
	python3 "$PEERS/$script" --port-file "$T/$name.port" "$@" >"$T/$name.log" 2>&1 &
	_pids+=($!)
	if ! wait_for 10 test -s "$T/$name.port"; then
		echo "not ok - start $name" && cat "$T/$name.log"
		exit 1
	fi
	printf -v "${name}_port" '%s' "$(cat "$T/$name.port")"
}

# new_root DIR: a minimal root with os-release, passwd and group.
new_root() {
	local r=$1
	mkdir -p "$r/etc" "$r/var/lib" "$r/var/log"
	cat >"$r/etc/os-release" <<'EOR'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
EOR
	printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
}

# mkmodule BUNDLEDIR ID MANIFEST-EXTRA: writes modules/ID/manifest.yml (id,
# name, version and the extra YAML lines) and modules/ID/install.sh from
# standard input.
mkmodule() {
	local b=$1 id=$2 extra=${3:-}
	mkdir -p "$b/modules/$id"
	printf 'id: %s\nname: %s\nversion: "1.0"\n%s\n' "$id" "$id" "$extra" >"$b/modules/$id/manifest.yml"
	cat >"$b/modules/$id/install.sh"
	chmod 0755 "$b/modules/$id/install.sh"
}

# fb_conf ROOT: a fast test firstboot.conf unless ROOT has one.
# fb_run ROOT ARGS...: firstboot run on ROOT with that config
# (short backoffs) unless ROOT/etc/firstboot/firstboot.conf exists.
fb_conf() {
	if [ ! -f "$1/etc/firstboot/firstboot.conf" ]; then
		mkdir -p "$1/etc/firstboot"
		printf 'retry_backoff_ms: 10\nkill_grace_ms: 300\nphone_home_backoff_ms: 10\nphone_home_timeout_ms: 2000\nphone_home_deadline_ms: 5000\nhttp_attempts: 2\n' >"$1/etc/firstboot/firstboot.conf"
	fi
}
fb_run() {
	local root=$1
	shift
	fb_conf "$root"
	"$FIRSTBOOT" run --root "$root" "$@"
}

# proc_gone PID: the process has exited (a zombie not yet reaped by PID 1
# counts as gone).
proc_gone() {
	[ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# reap PID SECONDS: the exit status of PID (a child of this shell) once it
# ends, waiting SECONDS at most; 124 (as timeout(1)) when it still runs
# then: it is killed (SIGKILL) and reaped, so that a process that does not
# stop fails its case instead of hanging the test in `wait`.
reap() {
	if wait_for "$2" proc_gone "$1"; then
		wait "$1"
		return
	fi
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 124
}

# json_get FILE EXPR: evaluates a Python expression on the JSON in FILE
# (bound to j) and prints the result.
json_get() {
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# tree_snapshot ROOT: every path under ROOT except firstboot's state and
# logs, with type and mode, for "nothing was written" checks.
tree_snapshot() {
	(cd "$1" && find . -path ./var/lib/firstboot -prune -o -path ./var/log/firstboot -prune -o -printf '%y %m %p\n' | sort)
}
