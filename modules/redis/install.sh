#!/bin/bash
# redis: Redis as the stack's compose service (the data directory on the
# host; compose-up starts the container) or Debian's redis-server. Run by
# firstboot under the module contract: inputs in the environment, every
# file under $FIRSTBOOT_ROOT, commands from PATH, services through
# systemctl. Exit 1 bad input, 2 a package install failed (retried), 3 the
# configuration was refused or the server does not answer. The password
# is only in /etc/redis/firstboot.conf (0640, redis) and reaches redis-cli
# through REDISCLI_AUTH, never a command line. On a running server a new
# password, maxmemory or maxmemory-policy alone is applied with CONFIG SET
# (no restart); any other setting restarts it.
set -euo pipefail
umask 022

# The helpers the stack modules share (die, say, put_file, ...), from
# modules/_lib/ beside this module's folder; without them, nothing runs.
fb_lib=$(dirname -- "${BASH_SOURCE[0]:-.}")/../_lib/firstboot-module.sh
[ -f "$fb_lib" ] || { echo "$fb_lib is missing: ship modules/_lib/ with the modules" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=../_lib/firstboot-module.sh
. "$fb_lib"

MODE=${MODE:-compose}
PASSWORD=${PASSWORD:-}
PORT=${PORT:-6379}
BIND=${BIND:-127.0.0.1 -::1}
MAXMEMORY=${MAXMEMORY:-256mb}
MAXMEMORY_POLICY=${MAXMEMORY_POLICY:-allkeys-lru}
DATA_DIR=${DATA_DIR:-/var/lib/firstboot-stack/redis}
DATA_UID=${DATA_UID:-999}
WAIT_SECONDS=${WAIT_SECONDS:-30}

# ---- inputs -------------------------------------------------------------

case $MODE in compose | native) ;; *) die 1 "mode must be compose or native" ;; esac
pw_re='^[A-Za-z0-9!#$%&()*+,./:;<=>?@^_{|}~-]{12,256}$'
[[ $PASSWORD =~ $pw_re ]] || die 1 "password must be 12 to 256 characters without spaces, quotes or backslashes"
if ! [[ $PORT =~ ^[1-9][0-9]*$ ]] || [ "$PORT" -gt 65535 ]; then die 1 "port must be a port number"; fi
[[ $BIND =~ ^-?[0-9A-Za-z.:*]+(\ +-?[0-9A-Za-z.:*]+)*$ ]] || die 1 "bind must be addresses separated by spaces"
[[ ${MAXMEMORY,,} =~ ^[0-9]+([kmg]b?)?$ ]] || die 1 "maxmemory must be like 256mb"
case $MAXMEMORY_POLICY in
allkeys-lru | allkeys-lfu | allkeys-random | volatile-lru | volatile-lfu | volatile-random | volatile-ttl | noeviction) ;;
*) die 1 "maxmemory_policy: unknown policy" ;;
esac
if ! [[ $DATA_DIR =~ ^(/[A-Za-z0-9._-]+)+$ ]] || [[ $DATA_DIR == */..* ]]; then die 1 "data_dir must be an absolute path"; fi
[[ $DATA_UID =~ ^[1-9][0-9]*$ ]] || die 1 "data_uid must be a number from 1"
[[ $WAIT_SECONDS =~ ^[1-9][0-9]*$ ]] || die 1 "wait_seconds must be a number from 1"

# ---- compose ------------------------------------------------------------

if [ "$MODE" = compose ]; then
	# Inside the root (root_entry): a link there is refused, never
	# followed to give its target (out of the root, maybe) away.
	dir=$R$DATA_DIR
	root_entry "$dir" || die 3 "$DATA_DIR cannot be resolved inside the root"
	[ ! -L "$ROOT_ENTRY" ] || die 3 "$DATA_DIR is a symbolic link: refused (give the real folder as data_dir)"
	if [ ! -d "$ROOT_ENTRY" ]; then
		make_dir "$dir" 0700
		say "created $DATA_DIR"
	fi
	if [ "$(stat -c '%a %u:%g' -- "$ROOT_ENTRY")" != "700 $DATA_UID:$DATA_UID" ]; then
		chown -h "$DATA_UID:$DATA_UID" -- "$ROOT_ENTRY" || die 3 "$DATA_DIR: cannot give it owner $DATA_UID"
		set_mode "$dir" 0700
		say "$DATA_DIR: owner $DATA_UID, mode 0700"
	fi
	say "done: $DATA_DIR ready; compose-up starts the redis service"
	exit 0
fi

# ---- native -------------------------------------------------------------

ensure_packages redis-server
# Resolved inside the root: a link at /etc/redis out of it is not followed
# to the host's files (read, rewritten or restored).
root_file "$R/etc/redis/redis.conf" || die 3 "/etc/redis/redis.conf is missing after installing redis-server"
main=$ROOT_FILE
redis_uid=$(passwd_field redis 3)
redis_gid=$(passwd_field redis 4)
[ -n "$redis_uid" ] || die 3 "there is no redis user after installing redis-server"

# Our settings in their own file, included last so they win.
inc=/etc/redis/firstboot.conf
in_root "$R$inc" || die 3 "$inc cannot be resolved inside the root"
inc_path=$IN_ROOT
old_inc=""
if [ -f "$inc_path" ]; then old_inc=$(cat "$inc_path"); fi
new_inc=$(
	cat <<EOT
# Managed by firstboot (module redis).
bind $BIND
protected-mode yes
port $PORT
requirepass "$PASSWORD"
appendonly yes
appendfsync everysec
maxmemory $MAXMEMORY
maxmemory-policy $MAXMEMORY_POLICY
EOT
)
put_file "$R$inc" 0640 "$redis_uid:$redis_gid" <<<"$new_inc"
changed=$FILE_CHANGED

# The settings a running Redis takes with CONFIG SET (Redis's CONFIG SET:
# requirepass, maxmemory and maxmemory-policy are modifiable at run time):
# when only they changed, the server is not restarted; the include file,
# written above, keeps them for the next start. (Not CONFIG REWRITE: it
# rewrites redis.conf itself, after our include line, and leaves include
# files alone.)
live_keys='requirepass|maxmemory|maxmemory-policy'
others() { grep -vE "^($live_keys) " <<<"$1" || true; }
setting() { sed -n "s/^$1 //p" <<<"$2" | head -n 1; }
live=0
if [ "$changed" = 1 ] && [ -n "$old_inc" ] && [ "$(others "$old_inc")" = "$(others "$new_inc")" ]; then
	live=1
fi

last=$(grep -vE '^[[:space:]]*(#|$)' "$main" | tail -n 1 || true)
old_main=""
if [ "$last" != "include $inc" ]; then
	old_main=$(cat "$main")
	new_main=$(
		grep -vxF "include $inc" "$main" || true
		echo "include $inc"
	)
	put_file "$main" "$(stat -c %a "$main")" "$(stat -c %u:%g "$main")" <<<"$new_main"
	changed=1
	live=0
fi

# restore: puts the previous configuration back after a refused one.
restore() {
	if [ -n "$old_inc" ]; then
		put_file "$inc_path" 0640 "$redis_uid:$redis_gid" <<<"$old_inc"
	else
		remove_file "$inc_path"
	fi
	if [ -n "$old_main" ]; then put_file "$main" "$(stat -c %a "$main")" "$(stat -c %u:%g "$main")" <<<"$old_main"; fi
	systemctl restart redis-server || true
}

host=127.0.0.1
for a in $BIND; do
	case $a in -*) continue ;; '*' | 0.0.0.0) ;; '::' | '::*') host=::1 ;; *) host=$a ;; esac
	break
done

# config_set: each live setting that changed, set in the running server as
# the old password allows; the new password last, read by redis-cli from
# its standard input (-x), so it is on no command line.
config_set() {
	local key old new out
	old=$(setting requirepass "$old_inc")
	old=${old#\"}
	REDISCLI_AUTH=${old%\"}
	export REDISCLI_AUTH
	for key in maxmemory maxmemory-policy requirepass; do
		old=$(setting "$key" "$old_inc")
		new=$(setting "$key" "$new_inc")
		[ "$old" != "$new" ] || continue
		if [ "$key" = requirepass ]; then
			out=$(printf '%s' "$PASSWORD" | redis-cli -h "$host" -p "$PORT" -x config set requirepass 2>&1) || true
		else
			out=$(redis-cli -h "$host" -p "$PORT" config set "$key" "$new" 2>&1) || true
		fi
		if [ "$out" != OK ]; then
			# Redis's error for requirepass is not printed: it is
			# about a value that must not reach the log.
			if [ "$key" = requirepass ]; then say "CONFIG SET requirepass was refused"; else say "CONFIG SET $key: $out"; fi
			return 1
		fi
		say "CONFIG SET $key: applied without a restart"
	done
}

if ! systemctl is-enabled --quiet redis-server; then
	systemctl enable redis-server || die 3 "cannot enable redis-server"
fi
if ! systemctl is-active --quiet redis-server; then
	systemctl start redis-server || {
		restore
		die 3 "redis-server does not start with this configuration; the previous one is back"
	}
elif [ "$changed" = 1 ] && [ "$live" = 1 ]; then
	config_set || {
		restore
		die 3 "Redis refused CONFIG SET; the previous configuration is back"
	}
elif [ "$changed" = 1 ]; then
	systemctl restart redis-server || {
		restore
		die 3 "redis-server does not restart with this configuration; the previous one is back"
	}
fi

say "waiting for Redis on $host:$PORT (at most $WAIT_SECONDS s)"
export REDISCLI_AUTH=$PASSWORD
ok=0
for ((i = 0; i < WAIT_SECONDS; i++)); do
	if [ "$(redis-cli -h "$host" -p "$PORT" ping 2>/dev/null)" = PONG ]; then
		ok=1
		break
	fi
	sleep 1
done
if [ $ok = 0 ]; then
	if [ "$changed" = 1 ]; then restore; fi
	die 3 "Redis does not answer PONG with the password on $host:$PORT after $WAIT_SECONDS s"
fi
policy=$(redis-cli -h "$host" -p "$PORT" config get maxmemory-policy | tail -n 1)
aof=$(redis-cli -h "$host" -p "$PORT" config get appendonly | tail -n 1)
if [ "$policy" != "$MAXMEMORY_POLICY" ] || [ "$aof" != yes ]; then
	die 3 "Redis runs with maxmemory-policy '$policy' and appendonly '$aof': is $inc included last?"
fi
say "done: Redis on $host:$PORT, appendonly, maxmemory $MAXMEMORY ($MAXMEMORY_POLICY)"
