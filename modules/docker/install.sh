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

# The helpers the stack modules share (die, say, put_file, ...), from
# modules/_lib/ beside this module's folder; without them, nothing runs.
fb_lib=$(dirname -- "${BASH_SOURCE[0]:-.}")/../_lib/firstboot-module.sh
[ -f "$fb_lib" ] || { echo "$fb_lib is missing: ship modules/_lib/ with the modules" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=../_lib/firstboot-module.sh
. "$fb_lib"

EDITION=${EDITION:-debian}
CE_REPO_URL=${CE_REPO_URL:-https://download.docker.com/linux/debian}
LOG_MAX_SIZE=${LOG_MAX_SIZE:-10m}
LOG_MAX_FILE=${LOG_MAX_FILE:-3}
LIVE_RESTORE=${LIVE_RESTORE:-true}
DATA_ROOT=${DATA_ROOT:-}
USERS=${USERS:-}
WAIT_SECONDS=${WAIT_SECONDS:-60}

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
		make_dir "$(dirname "$key")"
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
# What else than live-restore the daemon had (nothing: no daemon.json yet).
rest() { jq -S 'del(."live-restore")' 2>/dev/null; }
old_rest=""
[ -s "$conf" ] && old_rest=$(rest <"$conf")
put_file "$conf" 0644 0:0 <<<"$new"
daemon_changed=$FILE_CHANGED

# ---- the daemon ---------------------------------------------------------
# live-restore alone changed: a reload (SIGHUP) applies it with the
# daemon and its containers left running (docs.docker.com, engine/daemon/
# live-restore: "systemctl reload docker"). Anything else in daemon.json
# (the log options, the data root) is read at start only: a restart.

action=restart
if [ "$daemon_changed" = 1 ] && [ -n "$old_rest" ] && [ "$old_rest" = "$(rest <<<"$new")" ]; then action=reload; fi
ensure_service docker "$daemon_changed" "$action"
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

find_compose || die 3 "neither 'docker compose' nor docker-compose works"

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

say "done: Docker $version ($use), compose: ${compose[*]}"
