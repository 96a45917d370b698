# shellcheck shell=bash
# firstboot-module.sh: the helpers the stack modules share, sourced by
# each install.sh from modules/_lib/ beside its own folder (in the
# repository, in a bundle that ships modules, and in the modules directory
# of an image alike). "_lib" is not a module id (ids begin with a letter or
# a digit), so nothing looks it up as a module.
#
# Under the module contract: `set -euo pipefail`, every file under
# $FIRSTBOOT_ROOT (R here, without its trailing slash: empty for /),
# commands from PATH, services through systemctl. The helpers print no
# file's content and no input's value: what a module writes through
# put_file comes on standard input, never on a command line or in a
# message.
#
#   die CODE MSG...        MSG on stderr, then exit CODE
#   say MSG...             MSG on stdout
#   in_root PATH           IN_ROOT=PATH (under $R) with every link in it
#                          resolved with $R as / (so inside the root)
#   make_dir PATH [MODE]   mkdir -p inside the root (MODE for the last one
#                          when it is made)
#   put_file PATH MODE [OWNER [CHECK...]]   PATH gets standard input,
#                          atomically; FILE_CHANGED=1 when something differed
#   root_file PATH         ROOT_FILE=PATH resolved inside the root, which
#                          must be a regular file (not a FIFO, not a device)
#   root_entry PATH        ROOT_ENTRY=PATH with its folders resolved inside
#                          the root, its last component not followed
#   set_mode PATH MODE     chmod inside the root; a link at PATH refused
#   remove_file PATH       rm -f inside the root (a link removed as a link)
#   read_state NAME / record_state NAME VALUE   STATE_VALUE= what
#                          /var/lib/firstboot-stack/state/NAME holds (empty:
#                          none); record_state writes it (0600, root's)
#   passwd_field USER N / in_group USER GROUP   from the root's passwd/group
#   user_tool TOOL ARG...  useradd and the like on the root (--prefix)
#   missing_packages / apt_get / ensure_packages PKG...
#   ensure_service UNIT CHANGED ACTION
#   find_compose           compose=(docker compose) or (docker-compose)
#
# FB_PREFIX (default empty) goes before every message, e.g. "update: ".
# shellcheck disable=SC2034 # IN_ROOT, ROOT_FILE, ROOT_ENTRY, FILE_CHANGED, STATE_VALUE, compose are for the module

if [ -z "${BASH_VERSION:-}" ] || [ "${BASH_SOURCE[0]:-}" = "${0:-}" ]; then
	echo "firstboot-module.sh: source it from a module's install.sh (bash), do not run it" >&2
	exit 1
fi
set -euo pipefail

R=${FIRSTBOOT_ROOT:-/}
R=${R%/}
FB_PREFIX=${FB_PREFIX:-}
# The longest chain of links in_root follows (Linux's own limit).
FB_MAX_LINKS=40

die() {
	local code=$1
	shift
	printf '%s%s\n' "$FB_PREFIX" "$*" >&2
	exit "$code"
}
say() { printf '%s%s\n' "$FB_PREFIX" "$*"; }

# _fb_split STRING: FB_PARTS=the /-separated parts of STRING (names may
# hold spaces and newlines; empty parts stay, for the caller to skip).
_fb_split() {
	FB_PARTS=()
	IFS=/ read -r -d '' -a FB_PARTS < <(printf '%s/\0' "$1") || true
}

# in_root PATH: PATH is $R followed by an absolute path; IN_ROOT gets it
# with every link in it followed as the root itself would see it: an
# absolute target starts again at $R, and ".." stops at $R (as
# openat2's RESOLVE_IN_ROOT does for the agent). So IN_ROOT is always
# inside the root, whatever links the root holds. Returns 1 (with a
# message) when PATH is not under $R or the links loop.
in_root() {
	local path=$1 rel cur="" c target i=0 hops=0
	local -a todo
	if [ -z "$R" ]; then
		rel=$path
	elif [ "$path" = "$R" ]; then
		rel=/
	elif [ "${path#"$R"/}" != "$path" ]; then
		rel=/${path#"$R"/}
	else
		printf '%s%s is not under the root %s\n' "$FB_PREFIX" "$path" "$R" >&2
		return 1
	fi
	if [ "${rel#/}" = "$rel" ]; then
		printf '%s%s is not an absolute path\n' "$FB_PREFIX" "$path" >&2
		return 1
	fi
	_fb_split "$rel"
	todo=("${FB_PARTS[@]}")
	while [ "$i" -lt "${#todo[@]}" ]; do
		c=${todo[i]}
		i=$((i + 1))
		case $c in
		'' | .) continue ;;
		..)
			cur=${cur%/*}
			continue
			;;
		esac
		if [ -L "$R$cur/$c" ]; then
			hops=$((hops + 1))
			if [ "$hops" -gt "$FB_MAX_LINKS" ]; then
				printf '%s%s: more than %d links (a loop?)\n' "$FB_PREFIX" "${path#"$R"}" "$FB_MAX_LINKS" >&2
				return 1
			fi
			# The target as it is, trailing newlines included.
			target=$(
				readlink -- "$R$cur/$c"
				echo .
			) || return 1
			target=${target%.}
			target=${target%$'\n'}
			[ "${target#/}" = "$target" ] || cur=""
			_fb_split "$target"
			todo=("${FB_PARTS[@]}" "${todo[@]:i}")
			i=0
		else
			cur=$cur/$c
		fi
	done
	IN_ROOT=$R${cur:-/}
}

# make_dir PATH [MODE]: PATH and its parents made inside the root (links
# in it followed inside the root, never out of it); MODE for PATH itself
# when it is made.
make_dir() {
	local path=$1 mode=${2:-}
	in_root "$path" || die 3 "${path#"$R"}: cannot make the folder inside the root"
	[ -d "$IN_ROOT" ] && return 0
	mkdir -p -- "${IN_ROOT%/*}" || die 3 "${path#"$R"}: cannot make its parent folder"
	if [ -n "$mode" ]; then
		mkdir -m "$mode" -- "$IN_ROOT" || die 3 "${path#"$R"}: cannot make the folder"
	else
		mkdir -p -- "$IN_ROOT" || die 3 "${path#"$R"}: cannot make the folder"
	fi
}

# put_file PATH MODE [OWNER [CHECK...]]: PATH gets standard input through
# a temporary file in its own folder (created 0600, given OWNER, then
# MODE, synced), checked with CHECK... TMPFILE when given (refused: exit
# 3), then renamed over PATH. Nothing is replaced when content, mode and
# owner are the same. MODE "-" and OWNER "-" (or no OWNER) keep those of
# the file there (OWNER "-" on a new file: the module's own user). The
# folder is found inside the root (in_root); a link at PATH itself is
# replaced, not written through. Temporary files a killed run left for
# PATH are removed first. FILE_CHANGED=1 when PATH changed.
put_file() {
	local path=$1 mode=$2 owner=${3:--} name dir target tmp
	shift 2
	[ $# -gt 0 ] && shift
	FILE_CHANGED=0
	name=${path##*/}
	case $name in
	'' | . | ..) die 3 "put_file: ${path#"$R"} names no file" ;;
	esac
	make_dir "${path%/*}"
	dir=$IN_ROOT
	target=${dir%/}/$name
	if [ -L "$target" ]; then
		:
	elif [ -e "$target" ] && [ ! -f "$target" ]; then
		die 3 "${path#"$R"} is there and is not a regular file"
	fi
	if [ "$mode" = - ] || [ "$owner" = - ]; then
		if [ -f "$target" ] && [ ! -L "$target" ]; then
			[ "$mode" != - ] || mode=$(stat -c %a -- "$target")
			[ "$owner" != - ] || owner=$(stat -c %u:%g -- "$target")
		elif [ "$mode" = - ]; then
			die 3 "put_file: ${path#"$R"} does not exist, so it has no mode to keep"
		fi
	fi
	[[ $mode =~ ^[0-7]{3,4}$ ]] || die 3 "put_file: ${path#"$R"}: mode must be octal, like 0644"
	rm -f -- "$target".fbtmp.??????
	tmp=$(mktemp -- "$target.fbtmp.XXXXXX") || die 3 "${path#"$R"}: cannot make a temporary file beside it"
	if ! cat >"$tmp"; then
		rm -f -- "$tmp"
		die 3 "${path#"$R"}: cannot write the new content"
	fi
	# chown before chmod: chown clears the set-id bits.
	if [ "$owner" != - ] && ! chown -- "$owner" "$tmp"; then
		rm -f -- "$tmp"
		die 3 "${path#"$R"}: cannot give it owner $owner"
	fi
	if ! chmod -- "$mode" "$tmp"; then
		rm -f -- "$tmp"
		die 3 "${path#"$R"}: cannot give it mode $mode"
	fi
	if [ -f "$target" ] && [ ! -L "$target" ] && cmp -s -- "$tmp" "$target" &&
		[ "$(stat -c '%a %u:%g' -- "$target")" = "$(stat -c '%a %u:%g' -- "$tmp")" ]; then
		rm -f -- "$tmp"
		return 0
	fi
	if [ $# -gt 0 ] && ! "$@" "$tmp"; then
		rm -f -- "$tmp"
		die 3 "${path#"$R"}: the new content was refused by $1"
	fi
	if ! sync -- "$tmp" || ! mv -f -T -- "$tmp" "$target"; then
		rm -f -- "$tmp"
		die 3 "${path#"$R"}: cannot put the new file in place"
	fi
	sync -- "$dir" || true
	FILE_CHANGED=1
	say "wrote ${path#"$R"}"
}

# root_file PATH: ROOT_FILE=PATH resolved inside the root; it must be a
# regular file (a FIFO would hang the reader, a device is not a file).
root_file() {
	in_root "$1" || return 1
	if [ ! -f "$IN_ROOT" ]; then
		printf '%s%s is not a regular file in the root\n' "$FB_PREFIX" "${1#"$R"}" >&2
		return 1
	fi
	ROOT_FILE=$IN_ROOT
}

# root_entry PATH: ROOT_ENTRY=PATH with the links in its folders followed
# inside the root (in_root), its last component left as it is: a link
# there is the link, not what it points to. Returns 1 (with a message)
# when PATH names no entry or its folder cannot be resolved.
root_entry() {
	local name=${1##*/} dir=${1%/*}
	case $name in
	'' | . | ..)
		printf '%s%s names no file\n' "$FB_PREFIX" "${1#"$R"}" >&2
		return 1
		;;
	esac
	[ -n "$dir" ] || dir=/
	in_root "$dir" || return 1
	ROOT_ENTRY=${IN_ROOT%/}/$name
}

# set_mode PATH MODE: chmod MODE on PATH inside the root (root_entry). A
# link at PATH is refused (exit 3): chmod would change what it points to,
# which may be any file of the root, or the host's with the root at /.
set_mode() {
	root_entry "$1" || die 3 "${1#"$R"}: cannot find it inside the root"
	[ ! -L "$ROOT_ENTRY" ] || die 3 "${1#"$R"} is a symbolic link: its mode is not changed (give the real path)"
	[ -e "$ROOT_ENTRY" ] || die 3 "${1#"$R"} does not exist"
	chmod -- "$2" "$ROOT_ENTRY" || die 3 "${1#"$R"}: cannot give it mode $2"
}

# remove_file PATH: PATH removed inside the root (root_entry); a link is
# removed itself, never what it points to; a folder is refused (exit 3).
remove_file() {
	root_entry "$1" || die 3 "${1#"$R"}: cannot find it inside the root"
	if [ -d "$ROOT_ENTRY" ] && [ ! -L "$ROOT_ENTRY" ]; then
		die 3 "${1#"$R"} is a folder, not removed"
	fi
	rm -f -- "$ROOT_ENTRY" || die 3 "${1#"$R"}: cannot remove it"
}

# read_state NAME: STATE_VALUE= what the module recorded last in
# /var/lib/firstboot-stack/state/NAME of the root (a checksum of what a
# service was last started with, say), read inside the root (root_file):
# a link there is followed as the root sees it, never out of it. None
# there (or no regular file) is empty: no record. record_state NAME VALUE
# records VALUE there (0600, root's), the folder made; a module records
# only once what it stands for has succeeded, so a failed step is tried
# again at the next run.
read_state() {
	STATE_VALUE=""
	if root_file "$R/var/lib/firstboot-stack/state/$1" 2>/dev/null; then
		STATE_VALUE=$(cat -- "$ROOT_FILE") || die 3 "/var/lib/firstboot-stack/state/$1: cannot read it"
	fi
}
record_state() {
	make_dir "$R/var/lib/firstboot-stack/state"
	put_file "$R/var/lib/firstboot-stack/state/$1" 0600 0:0 <<<"$2"
}

# passwd_field USER N: field N of USER's line in the root's /etc/passwd
# (nothing when there is no such user). in_group USER GROUP: whether
# USER is listed in GROUP in the root's /etc/group.
passwd_field() {
	root_file "$R/etc/passwd" || die 3 "cannot read the root's /etc/passwd"
	awk -F: -v u="$1" -v f="$2" '$1 == u { print $f; exit }' "$ROOT_FILE"
}
in_group() {
	root_file "$R/etc/group" || die 3 "cannot read the root's /etc/group"
	awk -F: -v g="$2" -v u="$1" '$1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) found = 1 } END { exit !found }' "$ROOT_FILE"
}

# user_tool TOOL ARG...: a user tool (useradd, usermod, groupadd) on the
# root: --prefix applies it to the root's /etc without a chroot.
user_tool() {
	local tool=$1
	shift
	if [ -n "$R" ]; then "$tool" --prefix "$R" "$@"; else "$tool" "$@"; fi
}

# missing_packages PKG...: those of PKG not installed, one per line.
missing_packages() {
	local have p
	have=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null || true)
	printf '%s\n' "$@" | sort -u | while read -r p; do
		grep -qxF "$p installed" <<<"$have" || echo "$p"
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

# find_compose: compose=(docker compose) when the plugin works, else
# (docker-compose); returns 1 when neither does.
find_compose() {
	if docker compose version >/dev/null 2>&1; then
		compose=(docker compose)
	elif command -v docker-compose >/dev/null && docker-compose version >/dev/null 2>&1; then
		compose=(docker-compose)
	else
		return 1
	fi
}
