#!/bin/bash
# update_server.sh: brings the stack to its newest images and to the
# binaries this site pins, with as little downtime as each allows:
#   - compose: `pull` first (nothing stops while images download; a failed
#     pull changes nothing), then `up -d`, which recreates only the
#     containers whose image or configuration changed, then a bounded wait
#     until every container is running and healthy;
#   - binaries (colonies, agent-manager in systemd mode): downloaded and
#     checked against the SHA-256 the site pins; when different from the
#     installed one, swapped in atomically and the service restarted; when
#     it does not come back healthy the previous binary is put back.
# Exit 0 up to date, 1 something is not healthy after the update (a binary
# was rolled back), 2 a download or pull failed (nothing was changed).
#
# Managed by firstboot: rendered by imagegen from templates/update_server.sh.tmpl.
set -euo pipefail
umask 022

ROOT=${STACK_ROOT:-}
ROOT=${ROOT%/}
WAIT_SECONDS=${UPDATE_WAIT_SECONDS:-300}

log() { echo "update_server: $*"; }
die() {
	local code=$1
	shift
	echo "update_server: $*" >&2
	exit "$code"
}
[[ $WAIT_SECONDS =~ ^[1-9][0-9]*$ ]] || die 1 "UPDATE_WAIT_SECONDS must be a number of seconds"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT


# ---- binaries -----------------------------------------------------------

# update_binary NAME URL SHA256 UNIT CHECK...: the binary NAME from URL (a
# raw binary, or a .tar.gz holding NAME) into /usr/local/bin/NAME when it
# differs; UNIT restarted; CHECK... must succeed within WAIT_SECONDS or
# the previous binary goes back.
update_binary() {
	local name=$1 url=$2 sum=$3 unit=$4
	shift 4
	local bin=$ROOT/usr/local/bin/$name dl=$WORK/$1 new deadline
	mkdir -p "$dl"
	curl -fsSL --retry 3 --max-time 600 -o "$dl/download" "$url" || die 2 "downloading $url failed; $name is unchanged"
	[ "$(sha256sum "$dl/download" | cut -d' ' -f1)" = "$sum" ] ||
		die 2 "$url does not match the pinned SHA-256; $name is unchanged"
	new=$dl/download
	if [[ $url == *.tar.gz || $url == *.tgz ]]; then
		tar -xzf "$dl/download" -C "$dl" || die 2 "$url is not a readable tar.gz"
		new=$(find "$dl" -type f -name "$name" | head -n1)
		[ -n "$new" ] || die 2 "$url holds no file named $name"
	fi
	if [ -f "$bin" ] && cmp -s "$new" "$bin"; then
		log "$name is up to date"
		return 0
	fi
	install -m 0755 "$new" "$bin.new"
	[ -f "$bin" ] && cp -p "$bin" "$bin.prev"
	mv -f "$bin.new" "$bin"
	log "installed the new $name; restarting $unit"
	systemctl restart "$unit" || true
	deadline=$((SECONDS + WAIT_SECONDS))
	until systemctl is-active --quiet "$unit" && "$@"; do
		if [ $SECONDS -ge $deadline ]; then
			if [ -f "$bin.prev" ]; then
				mv -f "$bin.prev" "$bin"
				systemctl restart "$unit" || true
				die 1 "$unit is not healthy with the new $name; the previous one is back"
			fi
			die 1 "$unit is not healthy with the new $name"
		fi
		sleep 2
	done
	rm -f "$bin.prev"
	log "$unit runs the new $name"
}

update_binary colonies https://github.com/colonyos/colonies/releases/download/v1.8.19/colonies_1.8.19_linux_amd64.tar.gz 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef colonies-server \
	curl -s -o /dev/null --max-time 5 http://127.0.0.1:50080/
update_binary agent-manager https://downloads.example.org/agent-manager abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789 agent-manager \
	curl -fs -o /dev/null --max-time 5 http://127.0.0.1:13000/api/health
log "done"
