#!/bin/bash
# Proves tests/e2e/journal-ns.sh: entries written inside reach a real
# journald and read back with `journalctl -D`, the exit code comes through,
# and the host's /run/systemd, journal and kernel audit switch stay as they
# were, however the harness ends.
# SC2016: the single-quoted scripts are expanded by the inner shell.
# SC2119: t_pass takes the case name only optionally.
# shellcheck disable=SC2016,SC2119
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

HARNESS="$TOP/tests/e2e/journal-ns.sh"

if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
	echo "ok - journal harness # SKIP needs root and unshare"
	exit 0
fi

# Every harness run is bounded.
jns() { timeout 60 "$HARNESS" "$@"; }

# Whether the journald whose PID the harness left in DIR is still running
# (other tests may run journalds of their own meanwhile).
journald_running() {
	local pid state
	pid=$(cat "$1/journald.pid" 2>/dev/null) || return 1
	state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */systemd-journald ]]
}
journald_gone() { ! journald_running "$1"; }

# Names, types and modes under the host's journal places (not times: a host
# journald may be writing).
host_snapshot() {
	local d
	for d in /run/systemd /run/log /var/log/journal /run/mount; do
		if [ -e "$d" ]; then
			find "$d" -xdev -printf '%y %m %p\n' 2>/dev/null | sort
		else
			echo "absent $d"
		fi
	done
}

# jq-free check of the entries journalctl printed as JSON lines: prints
# MESSAGE|FBTEST_FIELD|FBTEST_MULTI for each entry.
entries() {
	journalctl -D "$1" -o json SYSLOG_IDENTIFIER=fbtest 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    j = json.loads(line)
    multi = j.get("FBTEST_MULTI", "")
    if isinstance(multi, list):
        multi = bytes(multi).decode()
    print("%s|%s|%s" % (j.get("MESSAGE"), j.get("FBTEST_FIELD", ""), multi.replace("\n", "\\n")))
'
}

# A native-protocol datagram with a custom field and a binary-safe
# multi-line one, as sd_journal_send() would send them.
SEND_PY='
import socket, struct
multi = b"line one\nline two"
msg = (b"MESSAGE=from python\nSYSLOG_IDENTIFIER=fbtest\nFBTEST_FIELD=value 42\n"
       + b"FBTEST_MULTI\n" + struct.pack("<Q", len(multi)) + multi + b"\n")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(msg, "/run/systemd/journal/socket")
'

host_mid=$(cat /etc/machine-id 2>/dev/null)
before_snapshot=$(host_snapshot)

t_case "entries written inside read back with journalctl -D"
if ! expect_rc 0 jns "$T/j1" sh -c 'systemd-cat -t fbtest echo hello && python3 -c "$1" &&
		logger --journald <<EOF
MESSAGE=from logger
SYSLOG_IDENTIFIER=fbtest
FBTEST_FIELD=via logger
EOF' sh "$SEND_PY"; then
	t_fail "harness failed"
else
	got=$(entries "$T/j1")
	if ! grep -qx 'hello||' <<<"$got"; then
		t_fail "no MESSAGE=hello from systemd-cat in: $got"
	elif ! grep -qx 'from python|value 42|line one\\nline two' <<<"$got"; then
		t_fail "custom fields missing in: $got"
	elif ! grep -qx 'from logger|via logger|' <<<"$got"; then
		t_fail "logger --journald entry missing in: $got"
	else
		t_pass
	fi
fi

t_case "the command's exit code comes through, and the journal still does"
if ! expect_rc 7 jns "$T/j2" sh -c 'systemd-cat -t fbtest echo before-exit; exit 7'; then
	t_fail "exit code not passed on"
elif ! entries "$T/j2" | grep -qx 'before-exit||'; then
	t_fail "entry of a failing command lost"
else
	t_pass
fi

t_case "journald's socket, config and files are private to the namespace"
inside=$(jns "$T/j3" sh -c 'test -S /run/systemd/journal/socket && echo socket;
	test -f /run/systemd/journald.conf.d/zz-journal-ns.conf && echo conf;
	touch /run/systemd/fbtest-marker /run/log/fbtest-marker && echo marked;
	ls /run/log/journal/*/system.journal >/dev/null && echo runtime-journal' 2>"$T/err")
if [ "$inside" != $'socket\nconf\nmarked\nruntime-journal' ]; then
	t_fail "inside the harness: $inside $(cat "$T/err")"
elif [ -e /run/systemd/fbtest-marker ] || [ -e /run/log/fbtest-marker ]; then
	t_fail "a file made inside appeared on the host"
else
	t_pass
fi

t_case "the host's /run/systemd, /run/log, /var/log/journal and /run/mount untouched"
after_snapshot=$(host_snapshot)
if [ -S /run/systemd/journal/socket ] && ! grep -q ' /run/systemd/journal/socket$' <<<"$before_snapshot"; then
	t_fail "a journald socket appeared on the host"
elif [ -S /run/systemd/journal/socket ]; then
	# A host journald runs: its files change by themselves; the markers
	# above are the check.
	t_pass
elif [ "$before_snapshot" != "$after_snapshot" ]; then
	t_fail "host changed: $(diff <(echo "$before_snapshot") <(echo "$after_snapshot") | head -n 10 | tr '\n' ' ')"
else
	t_pass
fi

t_case "journald keeps off the host's kernel log and audit switch"
if grep -q 'Auditing in kernel turned' "$T/j1/journald.log"; then
	t_fail "journald changed the kernel's audit state: $(cat "$T/j1/journald.log")"
elif ! grep -q 'audit' "$T/j1/journald.log"; then
	t_fail "expected journald to report it could not join audit: $(cat "$T/j1/journald.log")"
else
	t_pass
fi

t_case "no journald left running after the harness"
if [ ! -s "$T/j1/journald.pid" ]; then
	t_fail "no journald.pid in DIR"
elif wait_for 5 journald_gone "$T/j1" && wait_for 5 journald_gone "$T/j2"; then t_pass; else
	t_fail "journald $(cat "$T/j1/journald.pid") still running"
fi

t_case "journald stops when the harness is killed"
# Started directly: the harness execs unshare, which execs the inner
# shell, so $! is the process that owns journald. journald must be gone
# well before the command's sleep ends, which bounds the case.
kill_case() {
	local hpid
	"$HARNESS" "$T/j4" sh -c 'touch "$1"; sleep 6' sh "$T/j4.started" >"$T/j4.out" 2>&1 &
	hpid=$!
	if ! wait_for 10 test -e "$T/j4.started"; then
		t_fail "harness did not start: $(cat "$T/j4.out")"
	elif ! journald_running "$T/j4"; then
		t_fail "no journald while the command runs"
	else
		# The harness alone, not its process group: journald must follow it.
		kill -KILL "$hpid"
		if wait_for 3 journald_gone "$T/j4"; then t_pass; else
			t_fail "journald outlived the harness"
		fi
	fi
	wait "$hpid"
}
# Quiet: bash reports the killed job on stderr.
kill_case 2>/dev/null

# machine_id_case NAME SETUP: runs the harness in a mount namespace where
# SETUP has made /etc/machine-id invalid or missing.
machine_id_case() {
	local name=$1 setup=$2 mid
	if ! expect_rc 0 timeout 60 unshare --mount --propagation private -- bash -c "$setup"'
		"$0" "$1" sh -c "systemd-cat -t fbtest echo mid-ok"' "$HARNESS" "$T/$name"; then
		if grep -q 'SKIP' "$T/err"; then
			echo "ok - $_case # SKIP $(grep SKIP "$T/err" | head -n 1)"
			return
		fi
		t_fail "harness failed: $(head -n 5 "$T/err")"
		return
	fi
	mid=$(journalctl -D "$T/$name" -o json SYSLOG_IDENTIFIER=fbtest 2>/dev/null |
		python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["_MACHINE_ID"])' 2>/dev/null)
	if ! grep -qxE '[0-9a-f]{32}' <<<"$mid"; then
		t_fail "no entry with a machine id: $mid"
	elif [ "$mid" = "$host_mid" ]; then
		t_fail "the host's machine id was used"
	elif [ "$(cat /etc/machine-id 2>/dev/null)" != "$host_mid" ]; then
		t_fail "the host's /etc/machine-id changed"
	else
		t_pass
	fi
}

t_case "an invalid /etc/machine-id is replaced in the namespace only"
machine_id_case j5 'mount -n --bind /dev/null /etc/machine-id || exit 3;'

t_case "a missing /etc/machine-id is provided in the namespace only"
mkdir -p "$T/ov"
machine_id_case j6 'mount -n -t tmpfs tmpfs '"$T/ov"' && mkdir '"$T/ov/u $T/ov/w"' &&
	mount -n -t overlay overlay -o lowerdir=/etc,upperdir='"$T/ov/u"',workdir='"$T/ov/w"' /etc ||
	{ echo "SKIP: no overlayfs to hide /etc/machine-id" >&2; exit 3; }
	rm -f /etc/machine-id || exit 3;'
