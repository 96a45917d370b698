#!/bin/bash
# journal-ns.sh DIR CMD [ARGS...]
#
# Runs CMD with a real, private systemd-journald, then leaves the journal
# files in DIR so the caller can read them outside with `journalctl -D DIR`
# (journald's own log goes to DIR/journald.log, its PID to
# DIR/journald.pid). Exits with CMD's exit code, or 125 when the harness
# itself fails. Needs root (mount namespace).
#
# How: the script re-executes itself under `unshare --mount --propagation
# private`, mounts tmpfs on /run/systemd, /run/log and /var/log/journal
# (nothing reaches the host's), starts journald in the background, waits at
# most 10 s for /run/systemd/journal/socket, runs CMD, syncs, stops
# journald with SIGTERM (bounded, then KILL) and copies the files out.
#
# What journald needs here, found on Debian 12 (systemd 252) as root in a
# container with no systemd as PID 1:
# - Nothing from PID 1 or D-Bus. Started by hand (not socket-activated) it
#   creates its own sockets under /run/systemd/journal/ (socket, stdout,
#   dev-log, io.systemd.journal for varlink) and takes no arguments at all:
#   everything is set in journald.conf, and /run/systemd/journald.conf.d/
#   is read too; it lies on our tmpfs, so the drop-in below stays private.
# - /etc/machine-id (32 hex digits): it names the journal directory and
#   fills _MACHINE_ID. When it is missing or invalid we provide one in the
#   namespace only: bind-mounted over an invalid file, or through an
#   overlay on /etc (tmpfs upper) when the file does not exist.
# - Without a flush request (systemd-journal-flush.service, which nothing
#   runs here) entries stay in /run/log/journal/<machine-id>/system.journal;
#   Storage=volatile makes that explicit.
# - Its defaults touch the host, which the drop-in and the environment turn
#   off: its own messages go to /dev/kmsg (SYSTEMD_LOG_TARGET=console sends
#   them to DIR/journald.log); ReadKMsg=yes copies the host's kernel ring
#   buffer into the journal; ForwardToWall=yes writes emergency messages to
#   every logged-in terminal; and Debian's journald joins the kernel audit
#   multicast group and then turns kernel auditing off ("Auditing in kernel
#   turned off."), a global switch that no namespace isolates. Dropping
#   CAP_AUDIT_{CONTROL,READ,WRITE} from its bounding set (setpriv) makes
#   the join fail, and journald then ignores audit altogether.
# - Entries still queued in its sockets are lost when SIGTERM arrives first:
#   `journalctl --sync` (varlink io.systemd.Journal.Synchronize) returns
#   only after journald has written everything queued; SIGTERM then closes
#   the files cleanly (state offline), ready to be copied.
# - --pdeathsig TERM ties journald to this script, so a harness killed by a
#   timeout does not leave it behind.
set -uo pipefail

readonly HARNESS_FAIL=125

die() {
	echo "journal-ns: $*" >&2
	exit "$HARNESS_FAIL"
}

if [ "${_JOURNAL_NS_INNER:-}" != 1 ]; then
	[ $# -ge 2 ] || {
		echo "usage: $0 DIR CMD [ARGS...]" >&2
		exit 2
	}
	[ "$(id -u)" -eq 0 ] || die "needs root for a mount namespace"
	command -v unshare >/dev/null || die "unshare not found (util-linux)"
	mkdir -p -- "$1" || die "cannot create $1"
	dir=$(realpath -- "$1") || die "cannot resolve $1"
	case "$dir/" in
	/run/systemd/* | /run/log/* | /var/log/journal/*)
		die "DIR must not be under /run/systemd, /run/log or /var/log/journal (hidden in the namespace)"
		;;
	esac
	shift
	self=$(realpath -- "${BASH_SOURCE[0]}") || die "cannot resolve $0"
	exec env _JOURNAL_NS_INNER=1 unshare --mount --propagation private -- bash "$self" "$dir" "$@"
fi

# Inside the private mount namespace from here on.
unset _JOURNAL_NS_INNER
dir=$1
shift

journald=
for j in /lib/systemd/systemd-journald /usr/lib/systemd/systemd-journald; do
	[ -x "$j" ] && journald=$j && break
done
[ -n "$journald" ] || die "systemd-journald not found"
command -v setpriv >/dev/null || die "setpriv not found (util-linux)"

if [ -d /run/systemd ] && [ -d /run/log ]; then
	for m in /run/systemd /run/log; do
		mount -n -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$m" || die "cannot mount tmpfs on $m"
	done
else
	# Creating the missing mount points would touch the host's /run: hide
	# all of /run instead (in here only).
	mount -n -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run || die "cannot mount tmpfs on /run"
	mkdir -p /run/systemd /run/log
fi
# Storage=volatile never writes there; hidden all the same when it exists.
if [ -d /var/log/journal ]; then
	mount -n -t tmpfs -o mode=0755,nosuid,nodev tmpfs /var/log/journal || die "cannot mount tmpfs on /var/log/journal"
fi
private=/run/systemd/journal-ns
mkdir -p "$private"

# overlay_etc: /etc made writable in here only (an overlay with a tmpfs
# upper). The overlay shows /etc's own file system, so the mounts below it
# (a container's /etc/hosts, /etc/resolv.conf...) are bound again on top.
overlay_etc() {
	local mp mps
	mkdir -p "$private/etc-orig" "$private/etc-upper" "$private/etc-work" || return 1
	mount -n --rbind /etc "$private/etc-orig" || return 1
	mapfile -t mps < <(awk '$5 ~ "^/etc/" { print $5 }' /proc/self/mountinfo)
	mount -n -t overlay overlay -o "lowerdir=/etc,upperdir=$private/etc-upper,workdir=$private/etc-work" /etc || return 1
	for mp in "${mps[@]}"; do
		mp=$(printf '%b' "$mp")
		mount -n --bind "$private/etc-orig/${mp#/etc/}" "$mp" || return 1
	done
}

# A machine-id for journald, in the namespace only.
if ! grep -qxE '[0-9a-f]{32}' /etc/machine-id 2>/dev/null; then
	tr -d '-' </proc/sys/kernel/random/uuid >"$private/machine-id" || die "cannot generate a machine-id"
	if [ -e /etc/machine-id ]; then
		mount -n --bind "$private/machine-id" /etc/machine-id || die "cannot bind-mount a machine-id"
	else
		overlay_etc || die "no /etc/machine-id, and cannot overlay /etc to provide one"
		cp "$private/machine-id" /etc/machine-id || die "cannot write /etc/machine-id in the overlay"
	fi
fi

mkdir -p /run/systemd/journald.conf.d
cat >/run/systemd/journald.conf.d/zz-journal-ns.conf <<'EOF'
[Journal]
Storage=volatile
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitBurst=0
EOF

# Only this run's journal in DIR.
rm -f -- "$dir"/*.journal "$dir"/*.journal~
SYSTEMD_LOG_TARGET=console SYSTEMD_LOG_LEVEL=${JOURNAL_NS_LOG_LEVEL:-info} \
	setpriv --pdeathsig TERM --bounding-set -audit_control,-audit_read,-audit_write -- \
	"$journald" </dev/null >"$dir/journald.log" 2>&1 &
jpid=$!
echo "$jpid" >"$dir/journald.pid"

alive() {
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

stopped=
stop_journald() {
	local i
	[ -n "$stopped" ] && return 0
	stopped=1
	if alive "$jpid"; then
		timeout 5 journalctl --sync >/dev/null 2>&1 || echo "journal-ns: journalctl --sync failed" >&2
		kill -TERM "$jpid" 2>/dev/null
		for ((i = 0; i < 200; i++)); do
			alive "$jpid" || break
			sleep 0.05
		done
		if alive "$jpid"; then
			echo "journal-ns: journald did not stop within 10 s, killing it" >&2
			kill -KILL "$jpid" 2>/dev/null
		fi
	fi
	wait "$jpid" 2>/dev/null
	return 0
}
trap stop_journald EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

for ((i = 0; i < 200; i++)); do
	[ -S /run/systemd/journal/socket ] && break
	alive "$jpid" || break
	sleep 0.05
done
if [ ! -S /run/systemd/journal/socket ]; then
	sed 's/^/journal-ns: journald: /' "$dir/journald.log" >&2
	die "journald did not create /run/systemd/journal/socket within 10 s"
fi

"$@"
rc=$?

stop_journald
shopt -s nullglob
copied=0
for f in /run/log/journal/*/*.journal /run/log/journal/*/*.journal~; do
	cp -- "$f" "$dir/" || die "cannot copy $f to $dir"
	copied=$((copied + 1))
done
# Persistent files exist only after a flush request; keep them apart.
for f in /var/log/journal/*/*.journal /var/log/journal/*/*.journal~; do
	cp -- "$f" "$dir/persistent-${f##*/}" || die "cannot copy $f to $dir"
	copied=$((copied + 1))
done
[ "$copied" -gt 0 ] || die "journald wrote no journal file (see $dir/journald.log)"
exit "$rc"
