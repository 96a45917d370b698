#!/bin/bash
# recorder.sh DIR CMD ARGS...: stands in for the system command CMD in the
# module tests (tests/e2e/modlib.sh puts a wrapper per command in DIR/bin).
#
# Each call appends one line "cmd arg arg..." to DIR/calls.txt (newlines
# in arguments written as \n) and one JSON line to DIR/calls.jsonl (seq
# counts from 0 in DIR/seq, kept across mod_reset_calls):
#   {"seq", "cmd", "argv", "cwd", "env": {a subset}, "stdin": PATH|null}
# (stdin, when the caller gave any, is kept 0600 in DIR/stdin/SEQ), then
# behaves by the first of these that exists:
#   DIR/ctl/CMD.fail   lines "RC<TAB>TIMES<TAB>ERE": exit RC when the
#                      arguments joined by spaces match ERE, for at most
#                      TIMES such calls ("-": always);
#   DIR/ctl/CMD.sh     a bash script run with the same arguments, stdin and
#                      environment plus REC_DIR and REC_REAL (the real
#                      command on PATH after DIR/bin, or empty);
#   DIR/ctl/CMD.rc, DIR/ctl/CMD.out   a fixed exit code and output;
#   DIR/ctl/CMD.pass   the real command;
#   a built-in fake that keeps what a module can observe (installed
#   packages and unit states in DIR/state; ufw rules, users and groups in
#   the files the real command writes, under $FIRSTBOOT_ROOT);
#   else exit 0 without output.
# The fakes never change the real system: the ones that write files
# refuse to when FIRSTBOOT_ROOT is unset or /.
set -uo pipefail

REC_DIR=$1
CMD=$2
shift 2
STATE=$REC_DIR/state
ENV_KEYS=(DEBIAN_FRONTEND PROVISIONING_JOB FIRSTBOOT_ROOT FIRSTBOOT_ATTEMPT PGPASSWORD PGHOST
	PGPORT PGUSER PGDATABASE REDISCLI_AUTH APT_LISTCHANGES_FRONTEND NEEDRESTART_MODE HOME)

# json_str VAR STRING: VAR = STRING as a JSON string (no subshells: a
# fork costs more than everything else a call does).
json_str() {
	local s=$2
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\t'/\\t}
	s=${s//$'\r'/\\r}
	s=${s//[[:cntrl:]]/?}
	printf -v "$1" '"%s"' "$s"
}

# lock / unlock: DIR/calls.lock created exclusively (noclobber), waited
# for at most ~5 s.
lock() {
	local i
	for ((i = 0; i < 500; i++)); do
		set -C
		{ : >"$REC_DIR/calls.lock"; } 2>/dev/null
		local rc=$?
		set +C
		[ $rc = 0 ] && return 0
		sleep 0.01
	done
	echo "recorder: $REC_DIR/calls.lock is stuck" >&2
}
unlock() { rm -f "$REC_DIR/calls.lock"; }

record() {
	local seq=0 a k j stdin_path=null line sep="" text data=""
	if [ ! -t 0 ]; then
		IFS= read -r -d '' data || true
	fi
	lock
	[ -f "$REC_DIR/seq" ] && read -r seq <"$REC_DIR/seq"
	echo $((seq + 1)) >"$REC_DIR/seq"
	STDIN_FILE=/dev/null
	if [ -n "$data" ]; then
		[ -d "$REC_DIR/stdin" ] || mkdir -m 0700 "$REC_DIR/stdin"
		STDIN_FILE=$REC_DIR/stdin/$seq
		(umask 077 && printf '%s' "$data" >"$STDIN_FILE")
		json_str stdin_path "$STDIN_FILE"
	fi
	json_str j "$CMD"
	line="{\"seq\": $seq, \"cmd\": $j, \"argv\": ["
	for a in "$@"; do
		json_str j "$a"
		line+="$sep$j"
		sep=", "
	done
	json_str j "$PWD"
	line+="], \"cwd\": $j, \"env\": {"
	sep=""
	for k in "${ENV_KEYS[@]}"; do
		[ -n "${!k+x}" ] || continue
		json_str j "${!k}"
		line+="$sep\"$k\": $j"
		sep=", "
	done
	line+="}, \"stdin\": $stdin_path}"
	printf '%s\n' "$line" >>"$REC_DIR/calls.jsonl"
	text=$CMD
	for a in "$@"; do text+=" ${a//$'\n'/\\n}"; done
	printf '%s\n' "$text" >>"$REC_DIR/calls.txt"
	unlock
}

# fail_rules ARGS...: returns 0 and sets RC when a rule matched.
fail_rules() {
	local f=$REC_DIR/ctl/$CMD.fail joined="$*" rc times re out="" hit=""
	[ -f "$f" ] || return 1
	exec 8<>"$f.lock"
	flock 8
	while IFS=$'\t' read -r rc times re; do
		if [ -z "$hit" ] && [[ $joined =~ $re ]] && [ "$times" != 0 ]; then
			hit=$rc
			[ "$times" != - ] && times=$((times - 1))
		fi
		out+="$rc"$'\t'"$times"$'\t'"$re"$'\n'
	done <"$f"
	printf '%s' "$out" >"$f"
	flock -u 8
	[ -n "$hit" ] || return 1
	echo "$CMD: simulated failure (exit $hit)" >&2
	RC=$hit
	return 0
}

real_command() {
	local d own
	own=$(cd "$REC_DIR/bin" && pwd -P)
	IFS=: read -ra dirs <<<"$PATH"
	for d in "${dirs[@]}"; do
		if [ -z "$d" ] || [ ! -d "$d" ]; then continue; fi
		[ "$(cd "$d" && pwd -P)" = "$own" ] && continue
		if [ -x "$d/$CMD" ] && [ -f "$d/$CMD" ]; then
			printf '%s' "$d/$CMD"
			return
		fi
	done
}

# ---- the built-in fakes ------------------------------------------------

root_ok() {
	local r=${FIRSTBOOT_ROOT:-/}
	if [ "$(cd "$r" 2>/dev/null && pwd -P)" = / ]; then
		echo "recorder: $CMD would change the real system (FIRSTBOOT_ROOT is /)" >&2
		return 1
	fi
}
rf() { printf '%s/%s' "${FIRSTBOOT_ROOT%/}" "${1#/}"; }

fake_apt_get() {
	local words=() skip=0 a p
	for a; do
		if [ $skip = 1 ]; then
			skip=0
			continue
		fi
		case $a in
		-o | -t | -c | --option | --target-release | --config-file) skip=1 ;;
		-*) ;;
		*) words+=("$a") ;;
		esac
	done
	if [ ${#words[@]} -eq 0 ]; then
		echo "E: Invalid operation" >&2
		return 100
	fi
	mkdir -p "$STATE/pkgs"
	case ${words[0]} in
	install | reinstall)
		for p in "${words[@]:1}"; do
			p=${p%%[=/]*}
			: >"$STATE/pkgs/$p"
			echo "Setting up $p ..."
		done
		;;
	remove | purge)
		for p in "${words[@]:1}"; do rm -f "$STATE/pkgs/$p"; done
		;;
	esac
	return 0
}

fake_dpkg_query() {
	local fmt='${Package}\t${Status}\n' names=() show=0 rc=0 n out
	while [ $# -gt 0 ]; do
		case $1 in
		-W | --show) show=1 ;;
		-s | --status)
			fmt='Package: ${Package}\nStatus: ${Status}\n'
			show=1
			;;
		-f=* | --showformat=*) fmt=${1#*=} ;;
		-f | --showformat)
			fmt=$2
			shift
			;;
		-*) ;;
		*) names+=("$1") ;;
		esac
		shift
	done
	[ $show = 1 ] || return 0
	for n in "${names[@]}"; do
		if [ ! -e "$STATE/pkgs/$n" ]; then
			echo "dpkg-query: no packages found matching $n" >&2
			rc=1
			continue
		fi
		out=${fmt//'${Package}'/$n}
		out=${out//'${Status}'/install ok installed}
		out=${out//'${db:Status-Status}'/installed}
		out=${out//'${db:Status-Abbrev}'/ii }
		out=${out//'${Version}'/1.0-1}
		out=${out//\\n/$'\n'}
		out=${out//\\t/$'\t'}
		printf '%s' "$out"
	done
	return $rc
}

fake_dpkg() {
	case ${1:-} in
	--print-architecture) echo amd64 ;;
	-s | --status) fake_dpkg_query "$@" ;;
	esac
}

fake_systemctl() {
	local quiet=0 now=0 words=() a op u rc=0 f
	for a; do
		case $a in
		-q | --quiet) quiet=1 ;;
		--now) now=1 ;;
		-*) ;;
		*) words+=("${a%.service}") ;;
		esac
	done
	[ ${#words[@]} -gt 0 ] || return 0
	op=${words[0]}
	mkdir -p "$STATE/units"
	for u in "${words[@]:1}"; do
		f=$STATE/units/$u
		case $op in
		is-active)
			if [ -e "$f.active" ]; then [ $quiet = 1 ] || echo active; else
				[ $quiet = 1 ] || echo inactive
				rc=3
			fi
			;;
		is-enabled)
			if [ -e "$f.enabled" ]; then [ $quiet = 1 ] || echo enabled; else
				[ $quiet = 1 ] || echo disabled
				rc=1
			fi
			;;
		start | restart | reload-or-restart) : >"$f.active" ;;
		try-restart) ;;
		reload)
			if [ ! -e "$f.active" ]; then
				echo "$u.service is not active, cannot reload." >&2
				rc=1
			fi
			;;
		stop) rm -f "$f.active" ;;
		enable)
			: >"$f.enabled"
			[ $now = 1 ] && : >"$f.active"
			;;
		disable)
			rm -f "$f.enabled"
			[ $now = 1 ] && rm -f "$f.active"
			;;
		esac
	done
	return $rc
}

# ufw: rules as the real one keeps them in user.rules ("### tuple ###"
# lines, ufw 0.36 backend_iptables.py); "comment TEXT" is kept as
# " comment=HEX" at the end, and delete without a comment removes the
# rule whatever its comment (common.py UFWRule.match -2). Adding a rule
# that differs from one there only in its action or comment (allow 22/tcp
# over limit 22/tcp: UFWRule.match -1) replaces that one in place ("Rule
# updated", backend_iptables.py set_rule, ufw 0.36.2).
fake_ufw() {
	local words=() a conf port proto tup key pol path comment="" next=0
	for a; do
		if [ $next = 1 ]; then
			comment=$a
			next=0
			continue
		fi
		case $a in --force | -f) ;; comment) next=1 ;; *) words+=("$a") ;; esac
	done
	[ ${#words[@]} -gt 0 ] || return 0
	case ${words[0]} in
	status)
		conf=$(rf /etc/ufw/ufw.conf)
		if grep -qx 'ENABLED=yes' "$conf" 2>/dev/null; then echo "Status: active"; else echo "Status: inactive"; fi
		;;
	enable | disable)
		root_ok || return 97
		conf=$(rf /etc/ufw/ufw.conf)
		mkdir -p "$(dirname "$conf")"
		a=no
		[ "${words[0]}" = enable ] && a=yes
		printf 'ENABLED=%s\nLOGLEVEL=low\n' "$a" >"$conf"
		;;
	default)
		root_ok || return 97
		case ${words[1]:-} in deny) pol=DROP ;; allow) pol=ACCEPT ;; reject) pol=REJECT ;; *) return 1 ;; esac
		case ${words[2]:-} in
		incoming) key=DEFAULT_INPUT_POLICY ;; outgoing) key=DEFAULT_OUTPUT_POLICY ;;
		routed) key=DEFAULT_FORWARD_POLICY ;; *) return 1 ;;
		esac
		path=$(rf /etc/default/ufw)
		mkdir -p "$(dirname "$path")"
		touch "$path"
		{
			grep -v "^$key=" "$path"
			printf '%s="%s"\n' "$key" "$pol"
		} >"$path.new"
		mv "$path.new" "$path"
		;;
	delete)
		root_ok || return 97
		port=${words[${#words[@]} - 1]}
		proto=any
		if [[ $port == */* ]]; then
			proto=${port#*/}
			port=${port%%/*}
		fi
		path=$(rf /etc/ufw/user.rules)
		tup="### tuple ### ${words[1]:-} $proto $port 0.0.0.0/0 any 0.0.0.0/0 in"
		if grep -qE "^${tup//./\\.}( comment=[0-9a-f]*)?\$" "$path" 2>/dev/null; then
			grep -vE "^${tup//./\\.}( comment=[0-9a-f]*)?\$" "$path" >"$path.new"
			mv "$path.new" "$path"
			echo "Rule deleted"
		else
			echo "Could not delete non-existent rule"
		fi
		;;
	allow | limit | deny | reject)
		root_ok || return 97
		port=${words[${#words[@]} - 1]}
		proto=any
		if [[ $port == */* ]]; then
			proto=${port#*/}
			port=${port%%/*}
		fi
		path=$(rf /etc/ufw/user.rules)
		mkdir -p "$(dirname "$path")"
		tup="### tuple ### ${words[0]} $proto $port 0.0.0.0/0 any 0.0.0.0/0 in"
		key="### tuple ### (allow|limit|deny|reject) $proto $port 0\.0\.0\.0/0 any 0\.0\.0\.0/0 in"
		[ -z "$comment" ] || tup+=" comment=$(printf '%s' "$comment" | od -An -v -tx1 | tr -d ' \n')"
		if grep -qxF "$tup" "$path" 2>/dev/null; then
			echo "Skipping adding existing rule"
		else
			if grep -qE "^$key( comment=[0-9a-f]*)?\$" "$path" 2>/dev/null; then
				UFW_RE="^$key( comment=[0-9a-f]*)?\$" UFW_TUP=$tup awk '$0 ~ ENVIRON["UFW_RE"] { print ENVIRON["UFW_TUP"]; next } { print }' "$path" >"$path.new"
				mv "$path.new" "$path"
				echo "Rule updated"
			else
				echo "$tup" >>"$path"
				echo "Rule added"
			fi
		fi
		;;
	esac
	return 0
}

# parse_opts ARGS...: OPT[name]=value (or 1) and REST=(operands) for the
# user tools; options in WITH_VALUE take the next argument.
declare -A OPT
REST=()
parse_opts() {
	OPT=()
	REST=()
	while [ $# -gt 0 ]; do
		case $1 in
		--*=*) OPT[${1%%=*}]=${1#*=} ;;
		-*)
			if [[ " $WITH_VALUE " == *" $1 "* ]]; then
				OPT[$1]=${2:-}
				shift
			else
				OPT[$1]=1
			fi
			;;
		*) REST+=("$1") ;;
		esac
		shift
	done
}
opt() {
	local k
	for k; do
		if [ -n "${OPT[$k]+x}" ]; then
			printf '%s' "${OPT[$k]}"
			return 0
		fi
	done
	return 1
}
# A user tool must get --prefix ROOT: without it, it would change this
# machine's users.
prefix_ok() {
	local given
	root_ok || return 1
	given=$(opt --prefix -P) || given=""
	if [ -z "$given" ] || [ "$(cd "$given" 2>/dev/null && pwd -P)" != "$(cd "$FIRSTBOOT_ROOT" && pwd -P)" ]; then
		echo "recorder: $CMD without --prefix $FIRSTBOOT_ROOT would change this machine's users" >&2
		return 1
	fi
	if opt -p --password >/dev/null; then
		echo "recorder: a password on $CMD's command line" >&2
		return 1
	fi
}
# add_to_groups USER G1,G2...
add_to_groups() {
	local user=$1 groups=$2 g file
	file=$(rf /etc/group)
	for g in ${groups//,/ }; do
		if ! grep -q "^$g:" "$file"; then
			echo "$CMD: group '$g' does not exist" >&2
			return 6
		fi
	done
	awk -F: -v OFS=: -v u="$user" -v gs=",$groups," '
		index(gs, "," $1 ",") {
			n = split($4, m, ","); found = 0
			for (i = 1; i <= n; i++) if (m[i] == u) found = 1
			if (!found) $4 = ($4 == "" ? u : $4 "," u)
		}
		{ print }' "$file" >"$file.new" && mv "$file.new" "$file"
}
next_id() { # FILE SYSTEM(0|1)
	local used
	used=$(cut -d: -f3 "$1")
	local i
	if [ "$2" = 1 ]; then
		for ((i = 999; i > 100; i--)); do grep -qx "$i" <<<"$used" || break; done
	else
		for ((i = 1000; i < 60000; i++)); do grep -qx "$i" <<<"$used" || break; done
	fi
	echo "$i"
}

fake_groupadd() {
	local WITH_VALUE="-g --gid -P --prefix -R --root -K" file gid sys=0
	parse_opts "$@"
	prefix_ok || return 2
	[ ${#REST[@]} -eq 1 ] || return 2
	file=$(rf /etc/group)
	if grep -q "^${REST[0]}:" "$file"; then
		echo "groupadd: group '${REST[0]}' already exists" >&2
		return 9
	fi
	opt -r --system >/dev/null && sys=1
	gid=$(opt -g --gid) || gid=$(next_id "$file" $sys)
	echo "${REST[0]}:x:$gid:" >>"$file"
}

fake_useradd() {
	local WITH_VALUE="-s --shell -G --groups -d --home-dir -u --uid -g --gid -c --comment -P --prefix -R --root -K -p --password"
	local name uid gid home shell sys=0 pf gf sup
	parse_opts "$@"
	prefix_ok || return 2
	[ ${#REST[@]} -eq 1 ] || return 2
	name=${REST[0]}
	pf=$(rf /etc/passwd)
	gf=$(rf /etc/group)
	if grep -q "^$name:" "$pf"; then
		echo "useradd: user '$name' already exists" >&2
		return 9
	fi
	opt -r --system >/dev/null && sys=1
	uid=$(opt -u --uid) || uid=$(next_id "$pf" $sys)
	if opt -U --user-group >/dev/null; then
		gid=$uid
		grep -q "^[^:]*:[^:]*:$gid:" "$gf" && gid=$(next_id "$gf" $sys)
		echo "$name:x:$gid:" >>"$gf"
	else
		gid=100
	fi
	home=$(opt -d --home-dir) || home=/home/$name
	shell=$(opt -s --shell) || shell=/bin/sh
	echo "$name:x:$uid:$gid:$(opt -c --comment):$home:$shell" >>"$pf"
	echo "$name:!:19000:0:99999:7:::" >>"$(rf /etc/shadow)"
	if opt -m --create-home >/dev/null; then
		mkdir -p "$(rf "$home")"
		chown "$uid:$gid" "$(rf "$home")"
		chmod 0750 "$(rf "$home")"
	fi
	if sup=$(opt -G --groups); then
		add_to_groups "$name" "$sup" || return $?
	fi
	return 0
}

fake_usermod() {
	local WITH_VALUE="-s --shell -G --groups -d --home -P --prefix -R --root -p --password" sup
	parse_opts "$@"
	prefix_ok || return 2
	[ ${#REST[@]} -eq 1 ] || return 2
	if ! grep -q "^${REST[0]}:" "$(rf /etc/passwd)"; then
		echo "usermod: user '${REST[0]}' does not exist" >&2
		return 6
	fi
	if sup=$(opt -G --groups); then
		if ! opt -a --append >/dev/null; then
			echo "recorder: usermod -G without -a replaces the user's groups" >&2
			return 2
		fi
		add_to_groups "${REST[0]}" "$sup" || return $?
	fi
	return 0
}

fake_docker() {
	case "${1:-} ${2:-}" in
	"info --format") echo "20.10.24" ;;
	"info "*) echo "Server Version: 20.10.24" ;;
	"compose version") echo "Docker Compose version v2.24.0" ;;
	"version "*) echo "Docker version 20.10.24" ;;
	esac
	return 0
}

# redis-cli: PONG to ping; CONFIG GET answers from the settings the
# module wrote in the root's /etc/redis/firstboot.conf.
fake_redis_cli() {
	local words=() a
	while [ $# -gt 0 ]; do
		case $1 in
		-h | -p | -a | -n | -u) shift ;;
		-*) ;;
		*) words+=("$1") ;;
		esac
		shift
	done
	local w0=${words[0]:-} w1=${words[1]:-} w2=${words[2]:-}
	case "${w0,,} ${w1,,}" in
	"ping "*) echo PONG ;;
	"config get")
		echo "$w2"
		awk -v k="$w2" '$1 == k { print $2 }' "$(rf /etc/redis/firstboot.conf)" 2>/dev/null
		;;
	*) echo OK ;;
	esac
}

# ss: the TCP ports listened on are those in DIR/state/listen (one a
# line, held by another program) and, while the ssh unit is active,
# sshd's: the first "Port" of the root's sshd_config.d/*.conf then
# sshd_config (sshd keeps the first value it reads), else 22, unless
# another program holds that port (sshd cannot bind it). A filter
# "sport = :PORT" keeps that port's line; -H leaves out the header; -p
# adds the process column as ss prints it.
fake_ss() {
	local a header=1 procs=0 want="" ports=() p f line sshd_port=""
	for a; do
		case $a in
		-H | --no-header) header=0 ;;
		--processes) procs=1 ;;
		-*)
			[[ $a == --* ]] && continue
			[[ $a != *H* ]] || header=0
			[[ $a != *p* ]] || procs=1
			;;
		*sport*=*:*) want=${a##*:} want=${want%% *} want=${want%)} ;;
		esac
	done
	[ -f "$STATE/listen" ] && mapfile -t ports <"$STATE/listen"
	if [ -e "$STATE/units/ssh.active" ]; then
		p=""
		for f in "$(rf /etc/ssh)"/sshd_config.d/*.conf "$(rf /etc/ssh/sshd_config)"; do
			[ -f "$f" ] || continue
			line=$(grep -m1 -iE '^[[:space:]]*Port[[:space:]]+[0-9]+' "$f") || continue
			p=$(awk '{ print $2 }' <<<"$line")
			break
		done
		[[ " ${ports[*]} " == *" ${p:-22} "* ]] || sshd_port=${p:-22}
	fi
	[ $header = 0 ] || echo "State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process"
	for p in "${ports[@]}" $sshd_port; do
		[ -z "$want" ] || [ "$p" = "$want" ] || continue
		line="LISTEN 0      128          0.0.0.0:$p      0.0.0.0:*"
		if [ $procs = 1 ] && [ "$p" = "$sshd_port" ]; then
			line+=' users:(("sshd",pid=4242,fd=3))'
		elif [ $procs = 1 ]; then
			line+=' users:(("other",pid=4343,fd=6))'
		fi
		echo "$line"
	done
	return 0
}

fake() {
	case $CMD in
	ss) fake_ss "$@" ;;
	apt-get) fake_apt_get "$@" ;;
	dpkg-query) fake_dpkg_query "$@" ;;
	dpkg) fake_dpkg "$@" ;;
	systemctl) fake_systemctl "$@" ;;
	ufw) fake_ufw "$@" ;;
	useradd) fake_useradd "$@" ;;
	usermod) fake_usermod "$@" ;;
	groupadd) fake_groupadd "$@" ;;
	docker) fake_docker "$@" ;;
	docker-compose) echo "docker-compose version 1.29.2, build unknown" ;;
	pg_isready) echo "127.0.0.1:5432 - accepting connections" ;;
	redis-cli) fake_redis_cli "$@" ;;
	nginx) [[ " $* " == *" -t "* ]] && echo "nginx: configuration file /etc/nginx/nginx.conf test is successful" >&2 ;;
	*) ;;
	esac
}

record "$@"
RC=0
if fail_rules "$@"; then exit "$RC"; fi
ctl=$REC_DIR/ctl/$CMD
if [ -f "$ctl.sh" ]; then
	REC_REAL=$(real_command) REC_DIR=$REC_DIR bash "$ctl.sh" "$@" <"$STDIN_FILE"
	exit $?
fi
if [ -f "$ctl.rc" ] || [ -f "$ctl.out" ]; then
	[ -f "$ctl.out" ] && cat "$ctl.out"
	exit "$(cat "$ctl.rc" 2>/dev/null || echo 0)"
fi
if [ -f "$ctl.pass" ]; then
	real=$(real_command)
	if [ -z "$real" ]; then
		echo "recorder: no real $CMD on PATH" >&2
		exit 127
	fi
	exec "$real" "$@" <"$STDIN_FILE"
fi
fake "$@" <"$STDIN_FILE"
