#!/bin/bash
# docker: Docker Engine and Compose (Debian's docker.io + docker-compose,
# or Docker CE + the compose plugin from Docker's apt repository). Run by
# firstboot under the module contract: inputs in the environment, every
# file under $FIRSTBOOT_ROOT, commands from PATH, services through
# systemctl. Exit 1 bad input, 2 a download or package install failed
# (retried), 3 the configuration was refused or the daemon does not
# answer. A second run with the same inputs changes nothing.
set -euo pipefail
umask 022

R=${FIRSTBOOT_ROOT:-/}
R=${R%/}
EDITION=${EDITION:-debian}
CE_REPO_URL=${CE_REPO_URL:-https://download.docker.com/linux/debian}
LOG_MAX_SIZE=${LOG_MAX_SIZE:-10m}
LOG_MAX_FILE=${LOG_MAX_FILE:-3}
LIVE_RESTORE=${LIVE_RESTORE:-true}
DATA_ROOT=${DATA_ROOT:-}
USERS=${USERS:-}
WAIT_SECONDS=${WAIT_SECONDS:-60}

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

case $EDITION in debian | ce) ;; *) die 1 "edition must be debian or ce" ;; esac
[[ $CE_REPO_URL =~ ^https?://[A-Za-z0-9.:/_-]+[^/]$ ]] || die 1 "ce_repo_url must be an http(s) URL"
[[ $LOG_MAX_SIZE =~ ^[1-9][0-9]*[kmg]$ ]] || die 1 "log_max_size must be like 10m"
[[ $LOG_MAX_FILE =~ ^[1-9][0-9]*$ ]] || die 1 "log_max_file must be a number from 1"
case $LIVE_RESTORE in true | false) ;; *) die 1 "live_restore must be true or false" ;; esac
[[ $DATA_ROOT =~ ^((/[A-Za-z0-9._-]+)+)?$ ]] || die 1 "data_root must be an absolute path"
[[ $WAIT_SECONDS =~ ^[1-9][0-9]*$ ]] || die 1 "wait_seconds must be a number from 1"
users=()
for u in ${USERS//,/ }; do
	[[ $u =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die 1 "users: '$u' is not a user name"
	[ -n "$(passwd_field "$u" 1)" ] || die 1 "users: there is no user '$u' (base creates deploy)"
	users+=("$u")
done

# ---- the engine ---------------------------------------------------------
# An engine already installed stays, whatever edition was asked for: the
# module configures it rather than replacing it under running containers.

installed=""
if [ -z "$(missing_packages docker-ce)" ]; then
	installed=ce
elif [ -z "$(missing_packages docker.io)" ]; then
	installed=debian
fi
if [ -n "$installed" ] && [ "$installed" != "$EDITION" ]; then
	say "Docker ($installed) is already installed; keeping it instead of $EDITION"
fi
use=${installed:-$EDITION}

if [ -n "$installed" ]; then
	# Configure only; compose comes with it or is added below.
	if [ "$installed" = ce ]; then
		ensure_packages docker-compose-plugin
	elif ! docker compose version >/dev/null 2>&1; then
		ensure_packages docker-compose
	fi
elif [ "$use" = ce ]; then
	# Docker's repository, signed by its key (kept in /etc/apt/keyrings).
	arch=$(dpkg --print-architecture) || die 2 "dpkg --print-architecture failed"
	codename=$(sed -n 's/^VERSION_CODENAME=//p' "$R/etc/os-release" | tr -d '"' | head -n1)
	[ -n "$codename" ] || die 3 "$R/etc/os-release has no VERSION_CODENAME"
	key=$R/etc/apt/keyrings/docker.asc
	if [ ! -s "$key" ]; then
		mkdir -p "$(dirname "$key")"
		tmp=$(mktemp "$key.fbtmp.XXXXXX")
		if ! curl -fsSL --retry 3 --max-time 60 -o "$tmp" "$CE_REPO_URL/gpg"; then
			rm -f "$tmp"
			die 2 "cannot download $CE_REPO_URL/gpg"
		fi
		if ! grep -q 'BEGIN PGP PUBLIC KEY BLOCK' "$tmp"; then
			rm -f "$tmp"
			die 2 "$CE_REPO_URL/gpg is not a PGP public key"
		fi
		chmod 0644 "$tmp"
		mv -f "$tmp" "$key"
		say "wrote /etc/apt/keyrings/docker.asc"
	fi
	put_file "$R/etc/apt/sources.list.d/docker.list" 0644 0:0 <<EOT
deb [arch=$arch signed-by=/etc/apt/keyrings/docker.asc] $CE_REPO_URL $codename stable
EOT
	ensure_packages docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
else
	ensure_packages docker.io docker-compose
fi

# ---- daemon.json --------------------------------------------------------
# Ours is merged into an existing one (jq), so other settings stay.

ours=$(
	printf '{\n  "log-driver": "json-file",\n  "log-opts": {"max-size": "%s", "max-file": "%s"},\n  "live-restore": %s' \
		"$LOG_MAX_SIZE" "$LOG_MAX_FILE" "$LIVE_RESTORE"
	[ -n "$DATA_ROOT" ] && printf ',\n  "data-root": "%s"' "$DATA_ROOT"
	printf '\n}\n'
)
conf=$R/etc/docker/daemon.json
new=$ours
if [ -s "$conf" ]; then
	command -v jq >/dev/null || die 3 "$conf exists and jq is missing to merge it"
	jq -e 'type == "object"' "$conf" >/dev/null 2>&1 || die 3 "$conf is not a JSON object"
	new=$(jq -s '.[0] * .[1]' "$conf" - <<<"$ours") || die 3 "cannot merge $conf"
	# Unchanged when the existing file already says the same thing.
	if [ "$(jq -S . "$conf")" = "$(jq -S . <<<"$new")" ]; then new=$(cat "$conf"); fi
fi
put_file "$conf" 0644 0:0 <<<"$new"
daemon_changed=$FILE_CHANGED

# ---- the daemon ---------------------------------------------------------

ensure_service docker "$daemon_changed" restart
say "waiting for the docker daemon (at most $WAIT_SECONDS s)"
ok=0
for ((i = 0; i < WAIT_SECONDS; i++)); do
	if version=$(docker info --format '{{.ServerVersion}}' 2>/dev/null) && [ -n "$version" ]; then
		ok=1
		break
	fi
	sleep 1
done
[ $ok = 1 ] || die 3 "the docker daemon does not answer after $WAIT_SECONDS s (see journalctl -u docker)"

if docker compose version >/dev/null 2>&1; then
	compose="docker compose"
elif docker-compose version >/dev/null 2>&1; then
	compose=docker-compose
else
	die 3 "neither 'docker compose' nor docker-compose works"
fi

# ---- users --------------------------------------------------------------

if [ ${#users[@]} -gt 0 ] && ! grep -q '^docker:' "$R/etc/group"; then
	user_tool groupadd --system docker || die 3 "groupadd docker failed"
fi
for u in "${users[@]}"; do
	if ! in_group "$u" docker; then
		user_tool usermod --append --groups docker "$u" || die 3 "usermod $u failed"
		say "added $u to the docker group"
	fi
done

say "done: Docker $version ($use), compose: $compose"
