#!/bin/bash
# redis: Redis as the stack's compose service (the data directory on the
# host; compose-up starts the container) or Debian's redis-server. Run by
# firstboot under the module contract: inputs in the environment, every
# file under $FIRSTBOOT_ROOT, commands from PATH, services through
# systemctl. Exit 1 bad input, 2 a package install failed (retried), 3 the
# configuration was refused or the server does not answer. The password
# is only in /etc/redis/firstboot.conf (0640, redis) and reaches redis-cli
# through REDISCLI_AUTH, never a command line.
set -euo pipefail
umask 022

R=${FIRSTBOOT_ROOT:-/}
R=${R%/}
MODE=${MODE:-compose}
PASSWORD=${PASSWORD:-}
PORT=${PORT:-6379}
BIND=${BIND:-127.0.0.1 -::1}
MAXMEMORY=${MAXMEMORY:-256mb}
MAXMEMORY_POLICY=${MAXMEMORY_POLICY:-allkeys-lru}
DATA_DIR=${DATA_DIR:-/var/lib/firstboot-stack/redis}
DATA_UID=${DATA_UID:-999}
WAIT_SECONDS=${WAIT_SECONDS:-30}

die() {
	local code=$1
	shift
	echo "$*" >&2
	exit "$code"
}
say() { echo "$*"; }

# put_file PATH MODE UID:GID [CHECK...]: PATH gets standard input, written
# to a temporary file in the same folder (created 0600), checked with
# CHECK... TMPFILE when given (failure: exit 3), then renamed into place.
# FILE_CHANGED=1 when the content, mode or owner differed.
# shellcheck disable=SC2034
put_file() {
	local path=$1 mode=$2 owner=$3 tmp
	shift 3
	FILE_CHANGED=0
	mkdir -p "$(dirname "$path")"
	tmp=$(mktemp "$path.fbtmp.XXXXXX")
	cat >"$tmp"
	chown "$owner" "$tmp"
	chmod "$mode" "$tmp"
	if [ -f "$path" ] && [ ! -L "$path" ] && cmp -s "$tmp" "$path" &&
		[ "$(stat -c '%a %u:%g' "$path")" = "$(stat -c '%a %u:%g' "$tmp")" ]; then
		rm -f "$tmp"
		return 0
	fi
	if [ $# -gt 0 ] && ! "$@" "$tmp"; then
		rm -f "$tmp"
		die 3 "$path: the new content was refused by $1"
	fi
	mv -f "$tmp" "$path"
	FILE_CHANGED=1
	say "wrote ${path#"$R"}"
}

# missing_packages PKG...: those of PKG not installed, one per line.
missing_packages() {
	local have
	have=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null || true)
	printf '%s\n' "$@" | sort -u | while read -r p; do
		grep -qx "$p installed" <<<"$have" || echo "$p"
	done
}
apt_get() {
	apt-get -y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef \
		-o Dpkg::Options::=--force-confold "$@"
}
# ensure_packages PKG...: installs those not installed (apt-get update
# first); a failure is exit 2, which firstboot retries.
ensure_packages() {
	local missing
	mapfile -t missing < <(missing_packages "$@")
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing ${missing[*]}"
	apt_get update || die 2 "apt-get update failed"
	apt_get install --no-install-recommends "${missing[@]}" || die 2 "apt-get install ${missing[*]} failed"
}

# ensure_service UNIT CHANGED ACTION: enabled and running; ACTION
# (restart or reload) when CHANGED=1 and it was already running.
ensure_service() {
	local unit=$1 changed=$2 action=$3
	if ! systemctl is-enabled --quiet "$unit"; then
		systemctl enable "$unit" || die 3 "cannot enable $unit"
	fi
	if ! systemctl is-active --quiet "$unit"; then
		systemctl start "$unit" || die 3 "$unit does not start"
	elif [ "$changed" = 1 ]; then
		systemctl "$action" "$unit" || die 3 "$unit: $action failed"
	fi
}

# A user tool (useradd, usermod) on the root: --prefix applies it to the
# root's /etc without a chroot.
user_tool() {
	local tool=$1
	shift
	if [ -n "$R" ]; then "$tool" --prefix "$R" "$@"; else "$tool" "$@"; fi
}
passwd_field() { awk -F: -v u="$1" -v f="$2" '$1 == u { print $f; exit }' "$R/etc/passwd"; }
in_group() { awk -F: -v g="$2" -v u="$1" '$1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) found = 1 } END { exit !found }' "$R/etc/group"; }

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
	dir=$R$DATA_DIR
	if [ ! -d "$dir" ]; then
		mkdir -p "$(dirname "$dir")"
		mkdir -m 0700 "$dir"
		say "created $DATA_DIR"
	fi
	if [ "$(stat -c '%a %u:%g' "$dir")" != "700 $DATA_UID:$DATA_UID" ]; then
		chown "$DATA_UID:$DATA_UID" "$dir"
		chmod 0700 "$dir"
		say "$DATA_DIR: owner $DATA_UID, mode 0700"
	fi
	say "done: $DATA_DIR ready; compose-up starts the redis service"
	exit 0
fi

# ---- native -------------------------------------------------------------

ensure_packages redis-server
main=$R/etc/redis/redis.conf
[ -f "$main" ] || die 3 "${main#"$R"} is missing after installing redis-server"
redis_uid=$(passwd_field redis 3)
redis_gid=$(passwd_field redis 4)
[ -n "$redis_uid" ] || die 3 "there is no redis user after installing redis-server"

# Our settings in their own file, included last so they win.
inc=/etc/redis/firstboot.conf
old_inc=""
[ -f "$R$inc" ] && old_inc=$(cat "$R$inc")
put_file "$R$inc" 0640 "$redis_uid:$redis_gid" <<EOT
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
changed=$FILE_CHANGED

last=$(grep -vE '^[[:space:]]*(#|$)' "$main" | tail -n 1 || true)
old_main=""
if [ "$last" != "include $inc" ]; then
	old_main=$(cat "$main")
	{
		grep -vxF "include $inc" "$main" || true
		echo "include $inc"
	} >"$main.firstboot-new"
	put_file "$main" "$(stat -c %a "$main")" "$(stat -c %u:%g "$main")" <"$main.firstboot-new"
	rm -f "$main.firstboot-new"
	changed=1
fi

# restore: puts the previous configuration back after a refused one.
restore() {
	if [ -n "$old_inc" ]; then printf '%s\n' "$old_inc" >"$R$inc"; else rm -f "$R$inc"; fi
	if [ -n "$old_main" ]; then printf '%s\n' "$old_main" >"$main"; fi
	systemctl restart redis-server || true
}

if ! systemctl is-enabled --quiet redis-server; then
	systemctl enable redis-server || die 3 "cannot enable redis-server"
fi
if ! systemctl is-active --quiet redis-server; then
	systemctl start redis-server || {
		restore
		die 3 "redis-server does not start with this configuration; the previous one is back"
	}
elif [ "$changed" = 1 ]; then
	systemctl restart redis-server || {
		restore
		die 3 "redis-server does not restart with this configuration; the previous one is back"
	}
fi

host=127.0.0.1
for a in $BIND; do
	case $a in -*) continue ;; '*' | 0.0.0.0) ;; '::' | '::*') host=::1 ;; *) host=$a ;; esac
	break
done
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
