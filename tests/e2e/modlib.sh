#!/bin/bash
# Helpers for the module tests, sourced after tests/e2e/lib.sh. A module
# runs on a temporary root (mod_root) through the real agent (mod_run:
# `firstboot run --root` with a bundle listing the module and its inputs;
# the repo's modules/ is the root's modules dir), with the system commands
# it calls replaced by recorders first on PATH (mod_recorders). Modules
# touch files only under $FIRSTBOOT_ROOT, find commands on PATH and manage
# services with systemctl, so nothing on this machine is changed.
#
#   mod_root ROOT                 a root with what the modules expect
#   mod_recorders DIR CMD...      recorders in DIR/bin; sets MOD_REC=DIR
#   mod_run ROOT ID [K=V...] [-- ID K=V...]   the agent runs those modules
#                                 (a fresh instance-id each call, so done
#                                 modules run again); returns the agent's
#                                 status; output in $MOD_OUT/$MOD_ERR. V is
#                                 written plain when it is an integer or
#                                 true/false, else as a quoted string
#   mod_bundle ID [K=V...] [-- ID K=V...]   only that bundle (with the
#                                 mod_file files), its path in MOD_BUNDLE:
#                                 for `firstboot apply` and `plan`
#   mod_exec ROOT ID [K=V...]     install.sh alone, as the agent would run
#                                 it (no defaults applied); returns its status
#   mod_exit ROOT ID / mod_attempts ROOT ID / mod_state ROOT ID   from status.json
#   mod_log ROOT ID               the module's log file (every run appends)
#   mod_lastlog ROOT ID           its lines from the last attempt
#   mod_calls [CMD]               "cmd arg arg..." lines of the calls so far
#                                 (DIR/calls.jsonl has argv, env and stdin)
#   mod_called RE / mod_not_called RE / mod_order RE1 RE2...
#   mod_call_json N               the Nth call (from 0) as recorded
#   mod_reset_calls               forget the calls so far
#   mod_installed PKG... / mod_active UNIT...   fake system state
#   mod_fail CMD RC [RE] [TIMES]  CMD exits RC when its args match RE
#   mod_ctl CMD < SCRIPT          CMD runs SCRIPT (bash) instead of its fake
#   mod_passthrough CMD           CMD runs the real one (still recorded)
#   mod_ctl_reset                 drop every mod_fail/mod_ctl/mod_passthrough
#   mod_file SRC PATH [MODE]      a bundle file for the next mod_runs
#   mod_files_reset               no more bundle files
#   mod_no_secrets ROOT SECRET... no secret in any recorded argv, in the
#                                 agent's output and logs, or in a file under
#                                 ROOT that everyone can read
# The recorders' state is per DIR; mod_* helpers use $MOD_REC. Without a
# mod_fail/mod_ctl/mod_passthrough, a recorder behaves like the real
# command as far as a module can see (tests/e2e/recorders/recorder.sh):
# apt-get install marks packages installed for dpkg-query, systemctl keeps
# enabled/active per unit, ufw writes the root's user.rules, ufw.conf and
# default/ufw, useradd/usermod/groupadd (which must get --prefix ROOT)
# edit the root's passwd, group and shadow, docker, redis-cli and nginx -t
# answer like healthy ones; anything else exits 0.
# shellcheck disable=SC2034

MOD_RECORDER="$TOP/tests/e2e/recorders/recorder.sh"
MOD_OUT=$T/mod.out
MOD_ERR=$T/mod.err
MOD_REC=${MOD_REC:-}
MOD_MODULES=${MOD_MODULES:-$TOP/modules}
_mod_n=0
_mod_files=()

# The commands the modules call; a test may record more.
MOD_COMMANDS=(apt-get dpkg-query dpkg systemctl docker docker-compose psql pg_isready
	redis-cli ufw useradd usermod groupadd chpasswd sshd ssh-keygen visudo nginx certbot
	curl gpg colonies fail2ban-client unattended-upgrade runuser)

mod_root() {
	local r=$1
	new_root "$r"
	mkdir -p "$r/etc/ssh/sshd_config.d" "$r/etc/default" "$r/etc/apt/apt.conf.d" \
		"$r/etc/apt/sources.list.d" "$r/etc/apt/keyrings" "$r/etc/sudoers.d" "$r/home" \
		"$r/root" "$r/usr/lib/firstboot" "$r/etc/firstboot" "$r/var/lib" "$r/run"
	cat >"$r/etc/os-release" <<'EOR'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
EOR
	# Debian 12's sshd_config, comments left out.
	cat >"$r/etc/ssh/sshd_config" <<'EOS'
Include /etc/ssh/sshd_config.d/*.conf
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding yes
PrintMotd no
AcceptEnv LANG LC_*
Subsystem	sftp	/usr/lib/openssh/sftp-server
EOS
	cat >>"$r/etc/group" <<'EOG'
sudo:x:27:
adm:x:4:
EOG
	: >"$r/etc/shadow"
	chmod 0640 "$r/etc/shadow"
	ln -s "$MOD_MODULES" "$r/usr/lib/firstboot/modules"
	printf 'module_attempts: 3\nretry_backoff_ms: 10\nkill_grace_ms: 300\nphone_home_backoff_ms: 10\nphone_home_timeout_ms: 2000\nphone_home_deadline_ms: 5000\nhttp_attempts: 2\n' \
		>"$r/etc/firstboot/firstboot.conf"
}

mod_recorders() {
	local dir=$1 c
	shift
	mkdir -p "$dir/bin" "$dir/ctl" "$dir/state"
	dir=$(cd "$dir" && pwd)
	MOD_REC=$dir
	for c in "$@"; do
		printf '#!/bin/sh\nexec /bin/bash '\''%s'\'' '\''%s'\'' '\''%s'\'' "$@"\n' "$MOD_RECORDER" "$dir" "$c" >"$dir/bin/$c"
		chmod 0755 "$dir/bin/$c"
	done
	: >>"$dir/calls.jsonl"
	: >>"$dir/calls.txt"
}

# _mod_yaml VALUE: VALUE as a YAML scalar: plain for integers and booleans
# (so integer, port and boolean inputs accept it), else double-quoted.
_mod_yaml() {
	if [[ $1 =~ ^(-?[0-9]+|true|false)$ ]]; then
		printf '%s' "$1"
	else
		local s=$1
		s=${s//\\/\\\\}
		s=${s//\"/\\\"}
		s=${s//$'\n'/\\n}
		s=${s//$'\t'/\\t}
		printf '"%s"' "$s"
	fi
}

mod_file() {
	_mod_files+=("$1|$2|${3:-0644}")
}
mod_files_reset() { _mod_files=(); }

# mod_bundle ID KEY=VALUE... [-- ID KEY=VALUE...]: MOD_BUNDLE = a bundle
# (.tgz) of those modules and inputs and the files given with mod_file.
mod_bundle() {
	local b f src path mode kv first=1
	_mod_n=$((_mod_n + 1))
	b=$T/modbundle.$_mod_n
	mkdir -p "$b"
	{
		printf 'version: 1\nname: modtest\n'
		if [ ${#_mod_files[@]} -gt 0 ]; then
			printf 'files:\n'
			for f in "${_mod_files[@]}"; do
				IFS='|' read -r src path mode <<<"$f"
				mkdir -p "$b/files$(dirname "$path")"
				cp "$src" "$b/files$path"
				printf '  - {path: %s, source: files%s, mode: "%s"}\n' "$path" "$path" "$mode"
			done
		fi
		printf 'modules:\n'
		for kv in "$@"; do
			if [ "$kv" = -- ]; then
				first=1
				continue
			fi
			if [ $first = 1 ]; then
				printf '  - id: %s\n    inputs:\n' "$kv"
				first=0
				continue
			fi
			printf '      %s: %s\n' "${kv%%=*}" "$(_mod_yaml "${kv#*=}")"
		done
	} >"$b/bundle.yaml"
	# An "inputs:" with nothing under it is null, which the agent accepts.
	"$TOP/tests/e2e/mkbundle.sh" "$b" "$b.tgz"
	MOD_BUNDLE=$b.tgz
}

mod_run() {
	local root=$1
	shift
	mod_bundle "$@"
	PATH="$MOD_REC/bin:$PATH" timeout 120 "$FIRSTBOOT" run --root "$root" --user-data "$MOD_BUNDLE" \
		--instance-id "${MOD_INSTANCE:-mod-$_mod_n}" >"$MOD_OUT" 2>"$MOD_ERR"
	local rc=$?
	{
		echo "=== mod_run $_mod_n -> $rc"
		cat "$MOD_OUT" "$MOD_ERR"
	} >>"$T/mod.all"
	return $rc
}

mod_exec() {
	local root=$1 id=$2 kv name
	shift 2
	local env=(PATH="$MOD_REC/bin:$PATH" HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
		PROVISIONING_JOB=true FIRSTBOOT_INSTANCE_ID=mod-exec FIRSTBOOT_ROOT="$root"
		FIRSTBOOT_MODULE="$id" FIRSTBOOT_MODULE_DIR="$MOD_MODULES/$id" FIRSTBOOT_ATTEMPT=1
		FIRSTBOOT_STATE_DIR="$root/var/lib/firstboot")
	for kv in "$@"; do
		name=${kv%%=*}
		name=${name^^}
		env+=("${name//[^A-Z0-9]/_}=${kv#*=}")
	done
	(cd "$MOD_MODULES/$id" && env -i "${env[@]}" timeout 120 ./install.sh </dev/null >"$MOD_OUT" 2>"$MOD_ERR")
	local rc=$?
	{
		echo "=== mod_exec $id -> $rc"
		cat "$MOD_OUT" "$MOD_ERR"
	} >>"$T/mod.all"
	return $rc
}

# _mod_status ROOT ID FIELD: a field of module ID in ROOT's status.json.
_mod_status() { jq -r --arg id "$2" ".modules[] | select(.id == \$id) | .$3" "$1/var/lib/firstboot/status.json"; }
mod_exit() { _mod_status "$1" "$2" exit_code; }
mod_attempts() { _mod_status "$1" "$2" attempts; }
mod_state() { _mod_status "$1" "$2" state; }
mod_log() { printf '%s/var/log/firstboot/%s.log' "$1" "$2"; }
# mod_lastlog ROOT ID: the module's log lines from its last attempt only.
mod_lastlog() { awk -v m="--- $2 attempt " 'index($0, m) == 1 { n = 0; delete l; next } { l[++n] = $0 } END { for (i = 1; i <= n; i++) print l[i] }' "$(mod_log "$1" "$2")"; }

mod_calls() {
	if [ -n "${1:-}" ]; then
		awk -v c="$1" '$1 == c' "$MOD_REC/calls.txt"
	else
		cat "$MOD_REC/calls.txt"
	fi
}
# mod_call_json N: the Nth (0-based) recorded call as JSON.
mod_call_json() { sed -n "$(($1 + 1))p" "$MOD_REC/calls.jsonl"; }
mod_called() { mod_calls "" | grep -Eq -- "$1"; }
mod_not_called() { ! mod_calls "" | grep -Eq -- "$1"; }
# mod_order RE...: each RE matches a call, and their first matches come
# in this order.
mod_order() {
	local calls re n last=0
	calls=$(mod_calls "")
	for re in "$@"; do
		n=$(grep -En -- "$re" <<<"$calls" | head -n1 | cut -d: -f1)
		if [ -z "$n" ] || [ "$n" -le "$last" ]; then
			if [ -z "$n" ]; then echo "  # order: '$re' was not called" >&2; else
				echo "  # order: '$re' first at call $n, before the previous one" >&2
			fi
			return 1
		fi
		last=$n
	done
}
mod_reset_calls() {
: >"$MOD_REC/calls.jsonl"
	: >"$MOD_REC/calls.txt"
	rm -f "$MOD_REC/calls.lock"
	rm -rf "$MOD_REC/stdin"
}
mod_installed() {
	mkdir -p "$MOD_REC/state/pkgs"
	local p
	for p in "$@"; do : >"$MOD_REC/state/pkgs/$p"; done
}
mod_active() {
	mkdir -p "$MOD_REC/state/units"
	local u
	for u in "$@"; do : >"$MOD_REC/state/units/$u.active" && : >"$MOD_REC/state/units/$u.enabled"; done
}
mod_fail() {
	printf '%s\t%s\t%s\n' "$2" "${4:--}" "${3:-}" >>"$MOD_REC/ctl/$1.fail"
}
mod_ctl() { cat >"$MOD_REC/ctl/$1.sh"; }
mod_passthrough() { : >"$MOD_REC/ctl/$1.pass"; }
mod_ctl_reset() { rm -f "$MOD_REC/ctl/"*; }

mod_no_secrets() {
	local root=$1
	shift
	python3 - "$root" "$MOD_REC/calls.jsonl" "$T/mod.all" "$@" <<'EOP'
import json, os, stat, sys
root, calls, agent_out, secrets = sys.argv[1], sys.argv[2], sys.argv[3], [s for s in sys.argv[4:] if s]
bad = []
for line in open(calls):
    c = json.loads(line)
    for s in secrets:
        if any(s in a for a in [c["cmd"]] + c["argv"]):
            bad.append("argv of call %d (%s)" % (c["seq"], c["cmd"]))
logs = [agent_out]
for d in ("var/log/firstboot",):
    p = os.path.join(root, d)
    if os.path.isdir(p):
        logs += [os.path.join(p, f) for f in os.listdir(p)]
logs.append(os.path.join(root, "var/lib/firstboot/status.json"))
for f in logs:
    if os.path.isfile(f):
        data = open(f, errors="replace").read()
        bad += ["log " + f for s in secrets if s in data]

def world_reachable(path):
    d = os.path.dirname(path)
    while True:
        if not os.stat(d).st_mode & stat.S_IXOTH:
            return False
        if os.path.samefile(d, root):
            return True
        d = os.path.dirname(d)

for dirpath, dirs, files in os.walk(root):
    for f in files:
        p = os.path.join(dirpath, f)
        st = os.lstat(p)
        if not stat.S_ISREG(st.st_mode) or not st.st_mode & stat.S_IROTH:
            continue
        if not world_reachable(p):
            continue
        data = open(p, "rb").read()
        bad += ["world-readable " + p for s in secrets if s.encode() in data]
for b in sorted(set(bad)):
    print("  # secret in " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOP
}
