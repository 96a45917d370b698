#!/bin/bash
# The redis module through the real agent on a temporary root. compose
# mode prepares the data directory. native mode configures a REAL Redis:
# the root gets this machine's Debian redis.conf, systemctl is a recorder
# that starts redis-server as the redis user from that file (its include
# pointed into the root, and its pid, log and data in the test's
# directory), redis-cli is the real one. The test then logs in with the
# password, proves a wrong one and none are refused, and looks for the
# password in every command line, log and readable file.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/modlib.sh
. "$(dirname "$0")/modlib.sh"

t_check "the redis manifest validates" "$FIRSTBOOT" validate "$TOP/modules/redis/manifest.yml"

PW=Rd$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')

t_case "compose mode: the data directory 0700, owned by the container's uid; nothing installed or started"
R=$T/rc
mod_root "$R"
mod_recorders "$T/rc.rec" "${MOD_COMMANDS[@]}"
if mod_run "$R" redis password="$PW" && [ "$(stat -c '%a %u:%g' "$R/var/lib/firstboot-stack/redis")" = "700 999:999" ] &&
	[ ! -s "$MOD_REC/calls.txt" ] && mod_no_secrets "$R" "$PW"; then t_pass; else t_fail "$(mod_calls "" | tr '\n' ';')"; fi

t_case "a password with a space is refused by the agent, and by the module itself"
if ! mod_run "$R" redis password="bad password 123" && grep -q "password" "$MOD_ERR" && ! grep -q 'bad password' "$MOD_ERR" &&
	! mod_exec "$R" redis password="bad password 123" && grep -q 'password must be' "$MOD_ERR" &&
	! mod_exec "$R" redis mode=native password="$PW" maxmemory=lots && grep -q 'maxmemory must be' "$MOD_ERR" &&
	[ ! -s "$MOD_REC/calls.txt" ]; then t_pass; else t_fail "$(cat "$MOD_ERR")"; fi

# ---- native mode against a real server --------------------------------

if [ ! -f /etc/redis/redis.conf ] || ! id redis >/dev/null 2>&1; then
	echo "not ok - native mode needs redis-server installed (packaging/deps.sh)"
	exit 1
fi
PORT=$(free_port)
R=$T/rn
mod_root "$R"
mod_recorders "$T/rn.rec" "${MOD_COMMANDS[@]}"
chmod 0711 "$T"
RD=$T/redis
mkdir -p "$RD/data" "$R/etc/redis"
chown -R redis: "$RD"
cp -p /etc/redis/redis.conf "$R/etc/redis/redis.conf"
echo "redis:x:$(id -u redis):$(id -g redis)::/var/lib/redis:/usr/sbin/nologin" >>"$R/etc/passwd"
echo "redis:x:$(id -g redis):" >>"$R/etc/group"
trap '[ -s "$RD/redis.pid" ] && kill -9 "$(cat "$RD/redis.pid")" 2>/dev/null; _cleanup' EXIT

mod_ctl systemctl <<EOF
unit=\${*: -1}
[ "\$unit" = redis-server ] || exit 0
running() { [ -s "$RD/redis.pid" ] && kill -0 "\$(cat "$RD/redis.pid")" 2>/dev/null; }
stop() {
	local p i
	running || return 0
	p=\$(cat "$RD/redis.pid")
	kill "\$p"
	for ((i = 0; i < 200; i++)); do kill -0 "\$p" 2>/dev/null || break; sleep 0.05; done
	rm -f "$RD/redis.pid"
}
start() {
	local i size
	size=\$(stat -c %s "$RD/redis.log" 2>/dev/null || echo 0)
	sed "s|^include /etc/redis/|include $R/etc/redis/|" "$R/etc/redis/redis.conf" >"$RD/effective.conf"
	printf 'daemonize yes\nsupervised no\npidfile %s\nlogfile %s\ndir %s\n' "$RD/redis.pid" "$RD/redis.log" "$RD/data" >>"$RD/effective.conf"
	chown redis: "$RD/effective.conf"
	/usr/sbin/runuser -u redis -- /usr/bin/redis-server "$RD/effective.conf" || return 1
	for ((i = 0; i < 200; i++)); do
		running && return 0
		tail -c +\$((size + 1)) "$RD/redis.log" 2>/dev/null | grep -q 'Could not create server TCP listening socket' && return 1
		sleep 0.05
	done
	return 1
}
case \$1 in
is-active) running ;;
is-enabled) [ -e "$RD/enabled" ] ;;
enable) touch "$RD/enabled" ;;
start) start ;;
restart) stop && start ;;
stop) stop ;;
esac
EOF
mod_passthrough redis-cli

cli() { # PASSWORD ("": none) ARGS...
	if [ -n "$1" ]; then
		REDISCLI_AUTH=$1 timeout 10 redis-cli -h 127.0.0.1 -p "$PORT" "${@:2}" 2>&1
	else
		env -u REDISCLI_AUTH timeout 10 redis-cli -h 127.0.0.1 -p "$PORT" "${@:2}" 2>&1
	fi
}

t_case "native: installed, the include file written and included last, enabled, started, checked"
if mod_run "$R" redis mode=native password="$PW" port="$PORT" &&
	mod_order '^apt-get .*install --no-install-recommends redis-server$' '^systemctl enable redis-server' \
		'^systemctl start redis-server' "^redis-cli -h 127.0.0.1 -p $PORT ping" "^redis-cli .* config get appendonly" &&
	[ "$(stat -c '%a %U:%G' "$R/etc/redis/firstboot.conf")" = "640 redis:redis" ] &&
	[ "$(grep -vE '^[[:space:]]*(#|$)' "$R/etc/redis/redis.conf" | tail -n 1)" = "include /etc/redis/firstboot.conf" ] &&
	[ "$(stat -c '%a %U' "$R/etc/redis/redis.conf")" = "$(stat -c '%a %U' /etc/redis/redis.conf)" ] &&
	[ "$(cli "$PW" ping)" = PONG ]; then t_pass; else t_fail "$(tail -n 5 "$(mod_log "$R" redis)")"; fi

t_case "native: a wrong password and none are refused; AOF on, maxmemory 256mb, allkeys-lru"
got="wrong: $(cli "wrong-$PW" ping | head -n 1); none: $(cli "" ping | head -n 1); maxmemory: $(cli "$PW" config get maxmemory | tail -n 1)"
got+="; policy: $(cli "$PW" config get maxmemory-policy | tail -n 1); aof: $(cli "$PW" config get appendonly | tail -n 1)"
got+="; bind: $(cli "$PW" config get bind | tail -n 1); set: $(cli "$PW" set k v)"
if [[ $got == "wrong: "*WRONGPASS*"; none: "*NOAUTH*"; maxmemory: 268435456; policy: allkeys-lru; aof: yes; bind: 127.0.0.1 -::1; set: OK" ]] &&
	[ -d "$RD/data/appendonlydir" ]; then t_pass; else t_fail "$got"; fi

t_case "native: the password is in no command line, log line, server log or readable file; redis-cli got it in REDISCLI_AUTH"
if mod_no_secrets "$R" "$PW" && ! grep -qF "$PW" "$RD/redis.log" && ! mod_called '^redis-cli .*(-a|--pass|--user) ' &&
	grep '"cmd": "redis-cli"' "$MOD_REC/calls.jsonl" | head -n 1 | grep -qF "\"REDISCLI_AUTH\": \"$PW\""; then t_pass; else t_fail "leaked"; fi

t_case "native: a second run changes nothing (no install, no restart)"
mod_reset_calls
before=$(tree_snapshot "$R")
if mod_run "$R" redis mode=native password="$PW" port="$PORT" && mod_not_called '^apt-get' &&
	mod_not_called '^systemctl (start|restart|enable) ' && mod_called '^redis-cli .* ping' &&
	[ "$(tree_snapshot "$R")" = "$before" ]; then t_pass; else t_fail "$(mod_calls "" | tr '\n' ';')"; fi

t_case "native: a new maxmemory and policy are set with CONFIG SET: no restart, the same server process"
mod_reset_calls
pid=$(cat "$RD/redis.pid")
if mod_run "$R" redis mode=native password="$PW" port="$PORT" maxmemory=64mb maxmemory_policy=allkeys-lfu &&
	mod_not_called '^systemctl (restart|start|stop) ' && mod_not_called '^apt-get' &&
	mod_called "^redis-cli -h 127.0.0.1 -p $PORT config set maxmemory 64mb$" &&
	[ "$(cat "$RD/redis.pid")" = "$pid" ] && kill -0 "$pid" &&
	[ "$(cli "$PW" config get maxmemory | tail -n 1)" = 67108864 ] &&
	[ "$(cli "$PW" config get maxmemory-policy | tail -n 1)" = allkeys-lfu ] &&
	grep -qx 'maxmemory-policy allkeys-lfu' "$R/etc/redis/firstboot.conf"; then t_pass; else t_fail "$(mod_calls "" | tr '\n' ';')"; fi

PW2=Rd2$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
t_case "native: a new password is set with CONFIG SET (from stdin) and kept in the include file: same process, new works, old fails"
mod_reset_calls
cli "$PW" set survives yes >/dev/null
pid=$(cat "$RD/redis.pid")
if mod_run "$R" redis mode=native password="$PW2" port="$PORT" maxmemory=64mb maxmemory_policy=allkeys-lfu &&
	mod_not_called '^systemctl (restart|start|stop) ' && mod_called "^redis-cli -h 127.0.0.1 -p $PORT -x config set requirepass$" &&
	[ "$(cat "$RD/redis.pid")" = "$pid" ] && [ "$(cli "$PW2" ping)" = PONG ] &&
	[[ $(cli "$PW" ping) == *WRONGPASS* ]] && [ "$(cli "$PW2" get survives)" = yes ] &&
	grep -qxF "requirepass \"$PW2\"" "$R/etc/redis/firstboot.conf" && mod_no_secrets "$R" "$PW" "$PW2" &&
	! grep -qF "$PW2" "$RD/redis.log"; then t_pass; else
	t_fail "$(mod_calls "" | tr '\n' ';') $(mod_lastlog "$R" redis | tail -n 3)"
fi

t_case "native: after a restart the new password still works, the old one does not"
if "$MOD_REC/bin/systemctl" restart redis-server && [ "$(cat "$RD/redis.pid")" != "$pid" ] &&
	wait_eq 10 PONG cli "$PW2" ping && [[ $(cli "$PW" ping) == *WRONGPASS* ]]; then t_pass; else
	t_fail "$(tail -n 3 "$RD/redis.log")"
fi

t_case "native: a password changed behind firstboot's back: CONFIG SET refused, exit 3, no ready marker, the file restored"
cli "$PW2" config set requirepass "other-$PW2" >/dev/null
PW3=Rd3$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
if ! mod_run "$R" redis mode=native password="$PW3" port="$PORT" maxmemory=64mb maxmemory_policy=allkeys-lfu &&
	[ "$(mod_exit "$R" redis)" = 3 ] && [ ! -e "$R/var/lib/firstboot/ready" ] &&
	mod_lastlog "$R" redis | grep -q 'CONFIG SET requirepass was refused' &&
	grep -qxF "requirepass \"$PW2\"" "$R/etc/redis/firstboot.conf" && wait_eq 10 PONG cli "$PW2" ping &&
	mod_no_secrets "$R" "$PW2" "$PW3" "other-$PW2"; then t_pass; else
	t_fail "exit $(mod_exit "$R" redis): $(mod_lastlog "$R" redis | tail -n 3)"
fi
PW=$PW2

t_case "native: settings added after the include are moved before it"
echo "maxmemory 1mb" >>"$R/etc/redis/redis.conf"
if mod_run "$R" redis mode=native password="$PW" port="$PORT" maxmemory=64mb maxmemory_policy=allkeys-lfu &&
	[ "$(tail -n 1 "$R/etc/redis/redis.conf")" = "include /etc/redis/firstboot.conf" ] &&
	[ "$(grep -c '^include /etc/redis/firstboot.conf$' "$R/etc/redis/redis.conf")" = 1 ] &&
	[ "$(cli "$PW" config get maxmemory | tail -n 1)" = 67108864 ]; then t_pass; else t_fail "$(tail -n 3 "$R/etc/redis/redis.conf")"; fi

t_case "native: an address Redis cannot bind is exit 3; the previous configuration comes back"
if ! mod_run "$R" redis mode=native password="$PW" port="$PORT" maxmemory=64mb maxmemory_policy=allkeys-lfu bind=192.0.2.1 wait_seconds=3 &&
	[ "$(mod_exit "$R" redis)" = 3 ] && grep -qx 'bind 127.0.0.1 -::1' "$R/etc/redis/firstboot.conf" &&
	wait_eq 10 PONG cli "$PW" ping; then t_pass; else
	t_fail "exit $(mod_exit "$R" redis): $(mod_lastlog "$R" redis | tail -n 3)"
fi

t_case "native: apt-get failing is exit 2, retried"
R2=$T/rn2
mod_root "$R2"
mod_recorders "$T/rn2.rec" "${MOD_COMMANDS[@]}"
mod_fail apt-get 100 install
if ! mod_run "$R2" redis mode=native password="$PW" && [ "$(mod_exit "$R2" redis)" = 2 ] &&
	[ "$(mod_attempts "$R2" redis)" = 3 ]; then t_pass; else t_fail "exit $(mod_exit "$R2" redis)"; fi

t_case "native with recorders only: CONFIG GET disagreeing with the inputs is exit 3"
mod_ctl_reset
mkdir -p "$R2/etc/redis"
printf 'port 6379\n' >"$R2/etc/redis/redis.conf"
echo "redis:x:$(id -u redis):$(id -g redis)::/var/lib/redis:/usr/sbin/nologin" >>"$R2/etc/passwd"
echo "redis:x:$(id -g redis):" >>"$R2/etc/group"
mod_ctl redis-cli <<'EOF'
case "$*" in *ping) echo PONG ;; *) printf '%s\nnoeviction\n' "${*: -1}" ;; esac
EOF
if ! mod_run "$R2" redis mode=native password="$PW" && [ "$(mod_exit "$R2" redis)" = 3 ] &&
	mod_lastlog "$R2" redis | grep -q "maxmemory-policy 'noeviction'"; then t_pass; else t_fail "exit $(mod_exit "$R2" redis)"; fi

t_case "native: /etc/redis a link out of the root: resolved inside it, the host's redis.conf neither read nor rewritten (exit 3)"
R3=$T/rlink
mod_root "$R3"
mkdir -p "$T/host-redis"
printf 'port 6379\n' >"$T/host-redis/redis.conf"
before=$(cat "$T/host-redis/redis.conf")
rm -rf "$R3/etc/redis"
ln -s "$T/host-redis" "$R3/etc/redis"
echo "redis:x:$(id -u redis):$(id -g redis)::/var/lib/redis:/usr/sbin/nologin" >>"$R3/etc/passwd"
echo "redis:x:$(id -g redis):" >>"$R3/etc/group"
if ! mod_run "$R3" redis mode=native password="$PW" && [ "$(mod_exit "$R3" redis)" = 3 ] &&
	[ "$(cat "$T/host-redis/redis.conf")" = "$before" ] && [ ! -e "$T/host-redis/firstboot.conf" ]; then t_pass; else
	t_fail "exit $(mod_exit "$R3" redis): $(ls "$T/host-redis")"
fi

t_case "compose mode: the data directory a link out of the root (to this test's folder, relative): exit 3, what it points to keeps its owner and mode"
RL=$T/rcl
mod_root "$RL"
mod_recorders "$T/rcl.rec" "${MOD_COMMANDS[@]}"
mkdir -p "$T/outside-data" "$RL/var/lib/firstboot-stack"
chmod 0755 "$T/outside-data"
before=$(stat -c '%a %u:%g' "$T/outside-data")
ln -s ../../../../outside-data "$RL/var/lib/firstboot-stack/redis"
if ! mod_run "$RL" redis password="$PW" && [ "$(mod_exit "$RL" redis)" = 3 ] &&
	mod_lastlog "$RL" redis | grep -q '/var/lib/firstboot-stack/redis is a symbolic link: refused' &&
	[ "$(stat -c '%a %u:%g' "$T/outside-data")" = "$before" ] && [ -L "$RL/var/lib/firstboot-stack/redis" ]; then t_pass; else
	t_fail "exit $(mod_exit "$RL" redis): $(mod_lastlog "$RL" redis | tail -n 1); out of the root: $(stat -c '%a %u:%g' "$T/outside-data")"
fi
