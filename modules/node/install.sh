#!/bin/bash
# node: Node.js of one major version, PM2 from npm at a pinned version with
# pm2-logrotate, started at boot for the deploy user, and the site's apps
# (the ecosystem file and their environments rendered by imagegen into
# /etc/firstboot/node) started or reloaded when something changed. Run by
# firstboot under the module contract: inputs in the environment, every
# file under $FIRSTBOOT_ROOT, commands from PATH. Exit 1 bad input, 2 a
# download failed (apt, npm, git: retried), 3 the configuration was
# refused or the apps do not come online.
#
# Upstream names: NodeSource's repository line and key (nodesource/
# distributions b84e5626, scripts/deb/setup_22.x: the key from
# https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key, "deb
# [signed-by=...] https://deb.nodesource.com/node_$NODE_VERSION nodistro
# main" with NODE_VERSION="22.x"). The key is shipped here as
# nodesource-repo.gpg.key: "NSolid <nsolid-gpg@nodesource.com>", RSA 2048,
# fingerprint 6F71F525282841EEDAF851B42F59B5F99B1BE0B4; NodeSource's
# repository names no fingerprint, its issues show the same one
# (nodesource/distributions#1792: NodeSource's own key file printed with
# this fingerprint; #1688: apt on node_18.x nodistro wanting key
# 2F59B5F99B1BE0B4, its last 16 digits). PM2's commands (Unitech/pm2
# 31adee80 lib/binaries/CLI.js: startOrReload, startup [platform] -u --hp,
# save, install, set, jlist; lib/God/Reload.js: a reload restarts a fork
# mode process, replaces cluster workers one by one); pm2-logrotate's
# settings (keymetrics/pm2-logrotate 15f30dc0 README.md and package.json
# config: max_size, retain, compress, set with pm2 set
# pm2-logrotate:KEY VALUE). git: GIT_SSH_COMMAND, GIT_ASKPASS,
# GIT_TERMINAL_PROMPT (git's Documentation/git.txt); ssh's options
# (ssh_config(5): IdentityFile through -i, IdentitiesOnly, BatchMode,
# StrictHostKeyChecking, UserKnownHostsFile, GlobalKnownHostsFile).
set -euo pipefail
umask 022

# The helpers the stack modules share (die, say, put_file, make_dir,
# passwd_field, apt_get, ...), from modules/_lib/ beside this module's
# folder; without them, nothing runs.
fb_lib=$(dirname -- "${BASH_SOURCE[0]:-.}")/../_lib/firstboot-module.sh
[ -f "$fb_lib" ] || {
	echo "$fb_lib is missing: ship modules/_lib/ with the modules" >&2
	exit 1
}
# shellcheck source-path=SCRIPTDIR source=../_lib/firstboot-module.sh
. "$fb_lib"

MODDIR=${FIRSTBOOT_MODULE_DIR:-$(cd "$(dirname "$0")" && pwd)}
NODE_MAJOR=${NODE_MAJOR:-26}
NODE_SOURCE=${NODE_SOURCE:-auto}
PM2_VERSION=${PM2_VERSION:-7.0.4}
LOGROTATE_VERSION=${LOGROTATE_VERSION:-3.0.0}
LOGROTATE_MAX_SIZE=${LOGROTATE_MAX_SIZE:-10M}
LOGROTATE_RETAIN=${LOGROTATE_RETAIN:-30}
LOGROTATE_COMPRESS=${LOGROTATE_COMPRESS:-true}
USER_NAME=${DEPLOY_USER:-deploy}
APP_DIR=${APP_DIR:-/srv/app}
REPO_URL=${REPO_URL:-}
REPO_REF=${REPO_REF:-main}
SSH_KNOWN_HOSTS=${SSH_KNOWN_HOSTS:-}
# The secrets stay in this script's own variables, not exported: every
# command it runs would inherit them otherwise (npm's scripts, the PM2
# daemon, and the apps through pm2 --update-env, which saves them).
deploy_key=${DEPLOY_KEY:-}
deploy_token=${DEPLOY_TOKEN:-}
unset DEPLOY_KEY DEPLOY_TOKEN
BUILD_SCRIPT=${BUILD_SCRIPT:-}
WAIT_SECONDS=${WAIT_SECONDS:-60}

# on_host PATH: refused (exit 3) when a link on the way leads the host
# elsewhere than inside the root (an absolute link out of it): the
# commands run on PATH (chown, git, npm, pm2) follow links as the host
# does, not as in_root does.
on_host() {
	local host inside
	in_root "$1" || die 3 "${1#"$R"}: not a path inside the root"
	host=$(realpath -m -- "$1") || die 3 "${1#"$R"}: cannot resolve it"
	inside=$(realpath -m -- "$IN_ROOT") || die 3 "${1#"$R"}: cannot resolve it"
	[ "$host" = "$inside" ] || die 3 "${1#"$R"}: a link on the way leads out of the root: refused"
}
# host_dir PATH MODE OWNER: the folder PATH (on_host) made inside the root
# (make_dir), given OWNER and MODE ("-": the mode is left as it is).
host_dir() {
	local path=$1 mode=$2 owner=$3
	on_host "$path"
	if [ "$mode" = - ]; then make_dir "$path"; else make_dir "$path" "$mode"; fi
	# A link there (the deploy user may make one in its home) would hand
	# its target to chown and chmod: /etc given to the deploy user.
	[ ! -L "$path" ] || die 3 "${path#"$R"} is a symbolic link: refused (a folder is expected)"
	[ -d "$path" ] || die 3 "${path#"$R"} is not a folder"
	chown -h -- "$owner" "$path" || die 3 "${path#"$R"}: cannot give it owner $owner"
	[ "$mode" = - ] || set_mode "$path" "$mode"
}

# deb_major VERSION: the major of a Debian version ("1:18.19.0+dfsg-6" -> 18).
deb_major() {
	local v=${1#*:}
	v=${v%%.*}
	[[ $v =~ ^[0-9]+$ ]] && echo "$v"
}
installed_major() { deb_major "$(dpkg-query -W -f='${db:Status-Status} ${Version}' nodejs 2>/dev/null | awk '$1 == "installed" { print $2 }')" || true; }

# as_user CMD...: CMD as the deploy user, with its home and PM2_HOME.
as_user() {
	local e=(HOME="$R$home" PM2_HOME="$R$home/.pm2" PATH="$PATH" GIT_TERMINAL_PROMPT=0)
	runuser -u "$USER_NAME" -- env "${e[@]}" "$@"
}
# git_user ARG...: git as the deploy user, with ssh's command (deploy key)
# or the askpass helper; the token goes to the helper in the environment
# of this one command (runuser keeps it), never on a command line.
git_user() {
	local e=(HOME="$R$home" PATH="$PATH" GIT_TERMINAL_PROMPT=0)
	[ -z "$git_ssh" ] || e+=(GIT_SSH_COMMAND="$git_ssh")
	[ -z "$git_askpass" ] || e+=(GIT_ASKPASS="$git_askpass")
	FIRSTBOOT_GIT_TOKEN=$deploy_token runuser -u "$USER_NAME" -- env "${e[@]}" git "$@"
}
# sq WORD: WORD quoted for sh (git runs GIT_SSH_COMMAND with the shell).
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# ---- inputs -------------------------------------------------------------

num() { [[ $1 =~ ^[1-9][0-9]{0,8}$ ]]; }
if ! num "$NODE_MAJOR" || [ "$NODE_MAJOR" -lt 18 ] || [ "$NODE_MAJOR" -gt 98 ]; then die 1 "node_major must be a Node.js major version from 18"; fi
case $NODE_SOURCE in auto | nodesource | debian) ;; *) die 1 "node_source must be auto, nodesource or debian" ;; esac
[[ $PM2_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die 1 "pm2_version must be a version like 7.0.4"
[[ $LOGROTATE_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die 1 "logrotate_version must be a version like 3.0.0"
[[ $LOGROTATE_MAX_SIZE =~ ^[0-9]{1,9}[KMG]$ ]] || die 1 "logrotate_max_size must be like 10M, 500K or 1G"
num "$LOGROTATE_RETAIN" || die 1 "logrotate_retain must be a number from 1"
case $LOGROTATE_COMPRESS in true | false) ;; *) die 1 "logrotate_compress must be true or false" ;; esac
[[ $USER_NAME =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die 1 "user must be a user name"
if ! [[ $APP_DIR =~ ^(/[A-Za-z0-9._-]+)+$ ]] || [[ $APP_DIR == */..* ]]; then die 1 "app_dir must be an absolute path"; fi
if [ -n "$REPO_URL" ] && ! [[ $REPO_URL =~ ^(https://|ssh://|file:///)[A-Za-z0-9._~:/?#@!\$\&\'()*+,\;=%-]+$|^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/~-]+$ ]]; then
	die 1 "repo_url must be an https://, ssh:// or user@host:path URL"
fi
if ! [[ $REPO_REF =~ ^[A-Za-z0-9][A-Za-z0-9._/-]*$ ]] || [[ $REPO_REF == *..* ]]; then die 1 "repo_ref must be a branch, tag or commit"; fi
# Anything before an @ in the host part is a user or a token
# (https://TOKEN@host, which git hosts take): repo_url is not sensitive
# and is logged, so the token goes in deploy_token.
if [[ $REPO_URL =~ ^https://[^/?#]*@ ]]; then
	die 1 "repo_url must not hold a user, password or token before the host (https://TOKEN@host/...): give the token as deploy_token"
fi
ssh_url=0
if [ -n "$REPO_URL" ] && [[ $REPO_URL != https://* ]] && [[ $REPO_URL != file://* ]]; then ssh_url=1; fi
if [ $ssh_url = 1 ] && [ -z "$SSH_KNOWN_HOSTS" ]; then
	die 1 "repo_url is reached with ssh: ssh_known_hosts must give the server's host key (known_hosts lines)"
fi
[[ $deploy_token =~ ^[A-Za-z0-9_.~+/=-]*$ ]] || die 1 "deploy_token holds characters a token does not"
[[ $BUILD_SCRIPT =~ ^[A-Za-z0-9:_.-]*$ ]] || die 1 "build_script must be an npm script name"
num "$WAIT_SECONDS" || die 1 "wait_seconds must be a number from 1"

SRC=$R/etc/firstboot/node
for f in ecosystem.config.js apps.env.js; do
	on_host "$SRC/$f"
	[ -f "$SRC/$f" ] || die 3 "/etc/firstboot/node/$f is missing: imagegen renders it when site.yaml lists the node module"
done
home=$(passwd_field "$USER_NAME" 6)
uid=$(passwd_field "$USER_NAME" 3)
gid=$(passwd_field "$USER_NAME" 4)
if [ -z "$home" ] || [ -z "$uid" ] || [ -z "$gid" ]; then die 3 "there is no user $USER_NAME (the base module creates it)"; fi
on_host "$R$home"
[ -d "$R$home" ] || die 3 "$USER_NAME's home $home does not exist"
on_host "$R$home/.pm2"

# ---- Node.js ------------------------------------------------------------

have=$(installed_major)
if [ "$have" != "$NODE_MAJOR" ]; then
	from=$NODE_SOURCE
	if [ "$from" = auto ]; then
		apt_get update || die 2 "apt-get update failed"
		cand=$(apt-cache policy nodejs 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }')
		if [ "$(deb_major "$cand" || true)" = "$NODE_MAJOR" ]; then from=debian; else from=nodesource; fi
	fi
	pkgs=(nodejs)
	if [ "$from" = nodesource ]; then
		# NodeSource's key, armored (apt reads a .asc keyring), and the
		# repository of that major for every Debian release ("nodistro").
		put_file "$R/etc/apt/keyrings/nodesource.asc" 0644 0:0 <"$MODDIR/nodesource-repo.gpg.key"
		echo "deb [signed-by=/etc/apt/keyrings/nodesource.asc] https://deb.nodesource.com/node_$NODE_MAJOR.x nodistro main" |
			put_file "$R/etc/apt/sources.list.d/nodesource.list" 0644 0:0
	else
		pkgs+=(npm) # Debian packages npm apart; NodeSource's nodejs has it
	fi
	say "installing Node.js $NODE_MAJOR from $from"
	apt_get update || die 2 "apt-get update failed"
	apt_get install --no-install-recommends "${pkgs[@]}" || die 2 "apt-get install ${pkgs[*]} failed"
	have=$(installed_major)
	[ "$have" = "$NODE_MAJOR" ] || die 3 "nodejs ${have:-(none)} is installed, not $NODE_MAJOR: is another repository pinned higher?"
fi

# ---- PM2 ----------------------------------------------------------------

pm2_have=$(node -p 'require(process.argv[1]).version' "$(npm root -g)/pm2/package.json" 2>/dev/null || true)
if [ "$pm2_have" != "$PM2_VERSION" ]; then
	say "installing pm2@$PM2_VERSION (npm, global)"
	npm install -g --no-fund --no-audit "pm2@$PM2_VERSION" || die 2 "npm install -g pm2@$PM2_VERSION failed"
fi
if [ ! -f "$R/etc/systemd/system/pm2-$USER_NAME.service" ]; then
	pm2 startup systemd -u "$USER_NAME" --hp "$home" || die 3 "pm2 startup systemd failed"
fi

# pm2-logrotate: installed as a PM2 module, then its settings.
mods=$R$home/.pm2/modules
# The files under the deploy user's home are the user's: node reads them
# as that user (as_user), never as root, where require() of a file the
# user swapped for a link to a .js file would run it as root.
lr_have=$(as_user node -p 'require(process.argv[1]).version' "$mods/pm2-logrotate/node_modules/pm2-logrotate/package.json" 2>/dev/null || true)
if [ "$lr_have" != "$LOGROTATE_VERSION" ]; then
	as_user pm2 install "pm2-logrotate@$LOGROTATE_VERSION" || die 2 "pm2 install pm2-logrotate@$LOGROTATE_VERSION failed"
fi
conf_get() { as_user node -e 'try { const c = require(process.argv[1])["pm2-logrotate"] || {}; process.stdout.write(String(c[process.argv[2]] ?? "")) } catch (e) {}' "$R$home/.pm2/module_conf.json" "$1"; }
for kv in "max_size=$LOGROTATE_MAX_SIZE" "retain=$LOGROTATE_RETAIN" "compress=$LOGROTATE_COMPRESS"; do
	if [ "$(conf_get "${kv%%=*}")" != "${kv#*=}" ]; then
		as_user pm2 set "pm2-logrotate:${kv%%=*}" "${kv#*=}" >/dev/null || die 3 "pm2 set pm2-logrotate:${kv%%=*} failed"
		say "pm2-logrotate: ${kv%%=*} ${kv#*=}"
	fi
done

# ---- the code -----------------------------------------------------------

state=$R/var/lib/firstboot/node
host_dir "$state" 0700 0:0
# node_state NAME: NODE_STATE= what the state folder's NAME holds, read
# inside the root (root_file): a link there is followed as the root sees
# it, and one that leads nowhere inside the root (out of it) is refused
# (exit 3), never followed out of it. Returns 1 (NODE_STATE empty) when
# there is no NAME.
node_state() {
	NODE_STATE=""
	root_entry "$state/$1" || die 3 "${state#"$R"}/$1: cannot find it inside the root"
	[ -e "$ROOT_ENTRY" ] || [ -L "$ROOT_ENTRY" ] || return 1
	root_file "$state/$1" || die 3 "${state#"$R"}/$1 is not a regular file inside the root: refused"
	NODE_STATE=$(cat -- "$ROOT_FILE") || die 3 "${state#"$R"}/$1: cannot read it"
}
code_changed=0
git_ssh="" git_askpass=""
if [ -n "$REPO_URL" ]; then
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	chmod 0755 "$work"
	if [ $ssh_url = 1 ]; then
		# ssh checks the server against the host keys site.yaml gave,
		# and nothing else (no key learnt on first use, no prompt).
		host_dir "$R$home/.ssh" 0700 "$uid:$gid"
		kh=$R$home/.ssh/firstboot_known_hosts
		printf '%s\n' "$SSH_KNOWN_HOSTS" | put_file "$kh" 0644 "$uid:$gid"
		git_ssh="ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$(sq "$kh") -o GlobalKnownHostsFile=/dev/null"
		if [ -n "$deploy_key" ]; then
			key=$R$home/.ssh/firstboot_deploy_key
			printf '%s\n' "$deploy_key" | put_file "$key" 0600 "$uid:$gid"
			git_ssh+=" -i $(sq "$key") -o IdentitiesOnly=yes"
		fi
	fi
	if [ -n "$deploy_token" ]; then
		# git asks for the user name and the password; the token reaches
		# the helper in its environment, never a command line or a file.
		printf '#!/bin/sh\ncase "$1" in Username*) echo x-access-token ;; *) printf "%%s\\n" "$FIRSTBOOT_GIT_TOKEN" ;; esac\n' >"$work/askpass"
		chmod 0755 "$work/askpass"
		git_askpass=$work/askpass
	fi
	dir=$R$APP_DIR
	cloned=0
	if [ ! -d "$dir/.git" ]; then
		host_dir "$dir" - "$uid:$gid"
		git_user clone --quiet --no-checkout -- "$REPO_URL" "$dir" || die 2 "git clone of $REPO_URL failed"
		cloned=1
	fi
	git_user -C "$dir" fetch --quiet --force --tags origin '+refs/heads/*:refs/remotes/origin/*' ||
		die 2 "git fetch from $REPO_URL failed"
	commit=$(git_user -C "$dir" rev-parse --verify --quiet "refs/remotes/origin/$REPO_REF^{commit}" ||
		git_user -C "$dir" rev-parse --verify --quiet "$REPO_REF^{commit}") || die 3 "$REPO_URL has no branch, tag or commit $REPO_REF"
	node_state commit || true
	deployed=$NODE_STATE
	# A new clone is checked out even at the commit deployed before (to
	# another app_dir): --no-checkout left its HEAD there, its files not.
	if [ $cloned = 1 ] || [ "$commit" != "$deployed" ] || [ "$(git_user -C "$dir" rev-parse HEAD 2>/dev/null)" != "$commit" ]; then
		say "deploying $REPO_REF ($commit)"
		git_user -C "$dir" checkout --quiet --force --detach "$commit" || die 3 "git checkout $commit failed"
		if [ -f "$dir/package-lock.json" ] || [ -f "$dir/npm-shrinkwrap.json" ]; then
			(cd "$dir" && as_user npm ci --omit=dev --no-fund --no-audit) || die 2 "npm ci --omit=dev failed"
		fi
		if [ -n "$BUILD_SCRIPT" ]; then
			(cd "$dir" && as_user npm run "$BUILD_SCRIPT") || die 3 "npm run $BUILD_SCRIPT failed"
		fi
		# state/commit is written after pm2 save: a reload that fails
		# deploys this commit again next run.
		code_changed=1
	fi
fi

# ---- the apps -----------------------------------------------------------

# PM2 keeps the apps' environments in its dump (pm2 save): only the user
# may read its home.
if [ -d "$R$home/.pm2" ]; then set_mode "$R$home/.pm2" 0700; fi

eco_dir=$R$home/.pm2-apps
host_dir "$eco_dir" 0700 "$uid:$gid"
# app_sums: "NAME SHA256" for each app of the bundle's ecosystem (root's
# files, never the deploy user's copy), its environment included: what
# tells the apps whose definition changed from those that stay as they
# run. What PM2 last got is kept in the root-only state folder.
app_sums() {
	node -e '
		const h = require("crypto");
		for (const a of require(process.argv[1]).apps)
			console.log(a.name + " " + h.createHash("sha256").update(JSON.stringify(a)).digest("hex"));
	' "$SRC/ecosystem.config.js"
}
new_sums=$(app_sums) || die 3 "node cannot read the ecosystem file"
node_state apps.sha256 || true
old_sums=$NODE_STATE
put_file "$eco_dir/apps.env.js" 0600 "$uid:$gid" <"$SRC/apps.env.js"
put_file "$eco_dir/ecosystem.config.js" 0600 "$uid:$gid" <"$SRC/ecosystem.config.js"
eco=$eco_dir/ecosystem.config.js

# The apps and how many processes each should have online, from the
# bundle's copy (root's; the one in eco_dir is the deploy user's, and
# require() runs it).
mapfile -t want < <(node -e 'for (const a of require(process.argv[1]).apps) console.log(a.name + " " + (a.instances || 1))' "$SRC/ecosystem.config.js") ||
	die 3 "node cannot read the ecosystem file"
# online: whether every app has its processes online (pm2 jlist); prints
# them as name:pid:restarts, sorted.
online() {
	local list
	list=$(as_user pm2 jlist 2>/dev/null) || return 1
	node -e '
		const want = process.argv.slice(1);
		const got = {}, seen = [];
		// The list is the line that starts with "[" (a new daemon prints a banner first).
		const line = require("fs").readFileSync(0, "utf8").split("\n").filter(l => l.startsWith("[")).pop();
		for (const p of JSON.parse(line || "[]"))
			if (p.pm2_env && p.pm2_env.status === "online") {
				got[p.name] = (got[p.name] || 0) + 1;
				seen.push(`${p.name}:${p.pid}:${p.pm2_env.restart_time}`);
			}
		for (const w of want) { const [n, k] = w.split(" "); if ((got[n] || 0) < Number(k)) process.exit(1); }
		console.log(seen.sort().join(" "));
	' "${want[@]}" <<<"$list"
}
# stable: online, and the same processes 3 s later: an app that crashes at
# start is "online" between its restarts, with another pid each time.
stable() {
	local a b
	a=$(online) || return 1
	sleep 3
	b=$(online) || return 1
	[ "$a" = "$b" ]
}

# ---- apps removed from the site ------------------------------------------

# The apps this module handed to PM2 are recorded by name in its state
# (apps.names; before it existed, the names in apps.sha256). One that is
# no longer in the ecosystem is deleted from PM2 (stopped, out of its
# list), then pm2 save, so the boot's resurrect does not bring it back.
# What the module did not start (pm2-logrotate, an operator's own
# processes) is never in that list and never touched. It runs before the
# start: a renamed app may want the port the old name holds.
# Upstream: Unitech/pm2 7.0.4 lib/binaries/CLI.js:441 (delete <name|id|
# namespace|...>, exit 1 when it fails) and lib/API.js:526 delete ->
# _operate:1492, which looks the name up among the processes and, when no
# process has it, takes it for a namespace (lib/API.js:1514-1521): so only
# a name PM2 lists is deleted, one that is gone already is left be. PM2
# resolves a name against its cwd too (lib/Client.js:697, script path):
# the command runs from /.
names_file=$state/apps.names
if node_state apps.names; then
	recorded=$NODE_STATE
else
	recorded=$(awk 'NF == 2 { print $1 }' <<<"$old_sums")
fi
# pm2_file_name NAME: whether PM2 takes NAME for a configuration file
# (Unitech/pm2 7.0.4 lib/Common.js isConfigFile: any of its
# knonwConfigFileExtensions anywhere in the name): `pm2 delete NAME` would
# read a file of that name (lib/API.js:542, actionFromJson) instead of
# looking the app up. imagegen refuses such names; an ecosystem rendered
# before it did may still have started one.
pm2_file_name() {
	case $1 in *.json* | *.yml* | *.yaml* | *.config.js* | *.config.cjs* | *.config.mjs*) return 0 ;; esac
	return 1
}
mapfile -t gone < <(comm -23 <(awk 'NF { print $1 }' <<<"$recorded" | sort -u) <(printf '%s\n' "${want[@]}" | awk '{ print $1 }' | sort -u))
if [ ${#gone[@]} -gt 0 ]; then
	jlist=$(as_user pm2 jlist 2>/dev/null) || die 3 "pm2 jlist failed: cannot tell whether ${gone[*]} still run"
	listed=$(node -e '
		const line = require("fs").readFileSync(0, "utf8").split("\n").filter(l => l.startsWith("[")).pop();
		for (const p of JSON.parse(line || "[]")) console.log(p.name);
	' <<<"$jlist") || die 3 "cannot read pm2 jlist"
	deleted=()
	for name in "${gone[@]}"; do
		if ! grep -qxF -- "$name" <<<"$listed"; then
			say "$name, removed from the ecosystem, is not in PM2's list any more"
			continue
		fi
		if pm2_file_name "$name"; then
			# Never given to PM2 as a name: its processes go by their
			# ids. PM2 looks a number up as a name, a script path (from
			# /) and a namespace before it takes it for an id
			# (lib/API.js:1567-1579, lib/Client.js:678-734), so an id
			# one of those holds is not given either.
			ids=$(node -e '
				const name = process.argv[1];
				const line = require("fs").readFileSync(0, "utf8").split("\n").filter(l => l.startsWith("[")).pop();
				const l = JSON.parse(line || "[]"), ids = l.filter(p => p.name === name).map(p => String(p.pm_id));
				const taken = id => l.some(p => p.name === id || (p.pm2_env && (p.pm2_env.name === id ||
					p.pm2_env.namespace === id || p.pm2_env.pm_exec_path === "/" + id)));
				if (ids.length === 0 || ids.some(taken)) process.exit(1);
				console.log(ids.join(" "));
			' "$name" <<<"$jlist") ||
				die 3 "$name (removed from the ecosystem) is a name PM2 takes for a configuration file, and its process ids are names or namespaces in PM2 too: delete it by hand (pm2 delete ID)"
			read -r -a id_args <<<"$ids"
			say "deleting $name from PM2 by its process ids $ids (PM2 would take the name for a file): it is no longer in the ecosystem (pm2 delete)"
			(cd / && as_user pm2 delete "${id_args[@]}" >/dev/null) || die 3 "pm2 delete $ids ($name) failed (an app removed from the ecosystem): it may still run"
		else
			say "deleting $name from PM2: it is no longer in the ecosystem (pm2 delete)"
			(cd / && as_user pm2 delete "$name" >/dev/null) || die 3 "pm2 delete $name failed (an app removed from the ecosystem): it may still run"
		fi
		deleted+=("$name")
	done
	# Saved whenever a recorded app is gone, deleted now or not: a run
	# whose save failed after its delete left the app in dump.pm2 (the
	# boot's resurrect would bring it back), and the names stay in
	# apps.names until a save succeeded.
	as_user pm2 save --force >/dev/null || die 3 "pm2 save failed after deleting ${deleted[*]:-${gone[*]}}"
	say "${deleted[*]:+deleted ${deleted[*]} from PM2 and }saved the PM2 list without ${gone[*]}"
fi
# From here on, the apps of this ecosystem are the module's (written
# before the start: one that starts and then fails to come online is
# still the module's to delete).
printf '%s\n' "${want[@]}" | awk '{ print $1 }' | put_file "$names_file" 0600 0:0

# Only the apps whose definition or environment changed are reloaded
# (--only NAME,NAME: PM2 acts on those apps of the file alone; Unitech/pm2
# lib/API.js _startJson); all of them when the code changed, or when one
# is not online (startOrReload starts what is missing). What changed is
# told by the sums alone, against apps.sha256, written only after a
# reload and save succeeded: the copies in ~/.pm2-apps are written
# before the reload, so a reload that failed left them new.
only=()
if [ "$code_changed" = 0 ] && online >/dev/null; then
	changed_apps=$(comm -13 <(sort <<<"$old_sums") <(sort <<<"$new_sums") | awk 'NF == 2 { print $1 }' | paste -sd, -)
	if [ -z "$changed_apps" ]; then
		printf '%s\n' "$new_sums" | put_file "$state/apps.sha256" 0600 0:0
		say "done: nothing changed; ${#want[@]} apps online"
		exit 0
	fi
	only=(--only "$changed_apps")
	say "reloading the apps whose definition or environment changed: $changed_apps (pm2 startOrReload --only)"
else
	say "starting or reloading the apps (pm2 startOrReload)"
fi
as_user pm2 startOrReload "$eco" --update-env "${only[@]}" || die 3 "pm2 startOrReload failed"
ok=0
for ((i = 0; i < WAIT_SECONDS; i += 4)); do
	if stable; then
		ok=1
		break
	fi
	sleep 1
done
[ $ok = 1 ] || die 3 "the apps are not all online after $WAIT_SECONDS s (pm2 jlist)"
as_user pm2 save --force >/dev/null || die 3 "pm2 save failed"
printf '%s\n' "$new_sums" | put_file "$state/apps.sha256" 0600 0:0
if [ "$code_changed" = 1 ]; then printf '%s\n' "$commit" | put_file "$state/commit" 0600 0:0; fi
say "done: ${#want[@]} apps online, saved for pm2-$USER_NAME.service"
