#!/bin/bash
# Fault injection at every step of `firstboot run`, by real means: tmpfs
# mounts (read-only, or full) in a private mount namespace over the root's
# state directory, log directory and a files: target, an immutable target
# on an ext2 loop image, SIGKILL of the agent at each step (found by a
# FIFO, a module that waits, and strace delaying the rename of
# status.json and of the marker), and a controller that is down, redirects
# or hangs. After each: the ready marker exists only if status.json says
# ready (and `firstboot status` exits 0), a failed run exits 1 with no
# marker, a rerun converges to ready, and nothing outside the roots
# changed. Every wait is bounded.
# SC2154: start_peer sets *_port.
# shellcheck disable=SC2154
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

export FIRSTBOOT T
SENTINEL=$T/outside
mkdir -p "$SENTINEL"
echo "do not touch" >"$SENTINEL/file"
snap_outside() { find "$SENTINEL" -printf '%p %y %m %s %T@\n' | sort; }
SENT0=$(snap_outside)

# The bundle: a file under /opt/app, a module that prints a line, and a
# second one that can be made to wait (FB_WAIT in the root) and records
# its pid.
B=$T/b
mkdir -p "$B/files"
echo "setting=1" >"$B/files/app.conf"
cat >"$B/bundle.yaml" <<'EOY'
version: 1
name: faults
files:
  - {path: /opt/app/app.conf, source: files/app.conf, mode: "0640", owner: "root:root"}
modules:
  - id: talk
  - id: wait
EOY
mkmodule "$B" talk '' <<'EOS'
#!/bin/sh
echo "talking to the log"
echo "and to stderr" >&2
EOS
mkmodule "$B" wait '' <<'EOS'
#!/bin/sh
echo $$ >"$FIRSTBOOT_ROOT/wait.pid"
if [ -e "$FIRSTBOOT_ROOT/FB_WAIT" ]; then
	touch "$FIRSTBOOT_ROOT/waiting"
	exec sleep 60
fi
EOS
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/b.tgz"

n=0
# fresh: a new root ($R).
fresh() {
	n=$((n + 1))
	R=$T/r$n
	export R
	new_root "$R"
	fb_conf "$R"
}
status_rc() {
	timeout 20 "$FIRSTBOOT" status --root "$1" >/dev/null 2>&1
	echo $?
}
state_of() { json_get "$1/var/lib/firstboot/status.json" 'j["state"]' 2>/dev/null || echo none; }
# consistent ROOT [MARKER]: a marker only beside a "ready" status.json and
# `firstboot status` exit 0; no marker, and status does not exit 0 -
# unless status.json says ready already (killed at the marker write, the
# one step after the durable state: then the rerun writes the marker).
consistent() {
	local r=$1 m=${2:-$1/var/lib/firstboot/ready}
	if [ -e "$m" ]; then
		[ "$(state_of "$r")" = ready ] && [ "$(status_rc "$r")" = 0 ]
	elif [ -n "${AT_MARKER:-}" ] && [ "$(state_of "$r")" = ready ]; then
		return 0
	else
		[ "$(status_rc "$r")" != 0 ]
	fi
}
# converges ROOT: a rerun is ready, with the marker, the file and both
# modules done.
converges() {
	rm -f "$1/FB_WAIT"
	expect_rc 0 fb_run "$1" --user-data "$T/b.tgz" --instance-id i-faults &&
		[ -e "$1/var/lib/firstboot/ready" ] && [ "$(state_of "$1")" = ready ] &&
		[ "$(status_rc "$1")" = 0 ] && [ -f "$1/opt/app/app.conf" ] &&
		consistent "$1"
}

# in_ns MOUNTPOINT MOUNT-OPTIONS PREP: in a private mount namespace, a
# tmpfs with MOUNT-OPTIONS over MOUNTPOINT (under $R), then the shell
# PREP, then `firstboot run` on $R; "rc marker state status-rc" go to
# $T/ns.res, the run's stderr to $T/ns.err. The mount is gone after.
in_ns() {
	rm -f "$T/ns.res"
	unshare -m bash -c '
		mp=$1 opts=$2 prep=$3
		mkdir -p "$mp" && mount -t tmpfs -o "$opts" tmpfs "$mp" || exit 99
		eval "$prep"
		timeout 120 "$FIRSTBOOT" run --root "$R" --user-data "$T/b.tgz" --instance-id i-faults \
			>"$T/ns.out" 2>"$T/ns.err"
		rc=$? m=0
		[ -e "$R/var/lib/firstboot/ready" ] && m=1
		st=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"state\"])" \
			"$R/var/lib/firstboot/status.json" 2>/dev/null || echo none)
		timeout 20 "$FIRSTBOOT" status --root "$R" >/dev/null 2>&1
		echo "$rc $m $st $?" >"$T/ns.res"
	' in_ns "$@"
}
# ns_failed: the namespaced run exited 1, left no marker, and status.json
# does not say ready (nor does `firstboot status`).
ns_failed() {
	local rc m st s
	read -r rc m st s <"$T/ns.res" || return 1
	[ "$rc" = 1 ] && [ "$m" = 0 ] && [ "$st" != ready ] && [ "$s" != 0 ]
}
ns_why() { echo "result: $(cat "$T/ns.res" 2>&1); $(tail -n 5 "$T/ns.err" 2>&1)"; }

# ---- the state directory ----
fresh
t_case "state dir on a read-only tmpfs: exit 1, no marker"
if in_ns "$R/var/lib/firstboot" ro,size=1m ':' && ns_failed; then t_pass; else t_fail "$(ns_why)"; fi
t_case "  and the rerun converges"
if converges "$R"; then t_pass; else t_fail "$(cat "$T/err")"; fi

fresh
t_case "state dir on a full tmpfs: exit 1, no marker"
if in_ns "$R/var/lib/firstboot" size=64k \
	'dd if=/dev/zero of="$R/var/lib/firstboot/fill" bs=4k count=100 2>/dev/null' && ns_failed; then
	t_pass
else t_fail "$(ns_why)"; fi
t_case "  and the rerun converges"
if converges "$R"; then t_pass; else t_fail "$(cat "$T/err")"; fi

# The state directory fills while a module runs (the module does it), so
# status.json cannot be written at the end, while the marker (the
# bundle's ready_marker, on another file system) could be. The old agent
# wrote that marker and exited 0, and status said "dead".
# The runner's record of the running module is removed when it ends, which
# frees a page of the full file system again: the sixteen modules before
# fill make status.json need more than that one page.
B7=$T/b7
mkdir -p "$B7"
others=()
for i in $(seq -w 1 16); do
	others+=("pad-module-$i-with-a-name-long-enough-to-grow-status-json")
done
{
	printf 'version: 1\nname: fill\nready_marker: /var/lib/app/ready\nmodules:\n'
	printf '  - id: %s\n' "${others[@]}" fill
} >"$B7/bundle.yaml"
for m in "${others[@]}"; do mkmodule "$B7" "$m" 'frequency: always' <<<'#!/bin/sh'; done
mkmodule "$B7" fill "frequency: always
after: [$(IFS=,; echo "${others[*]}")]" <<'EOS'
#!/bin/sh
if [ -e "$FIRSTBOOT_ROOT/FB_FILL" ]; then
	dd if=/dev/zero of="$FIRSTBOOT_STATE_DIR/fill" bs=4k 2>/dev/null || true
fi
EOS
"$TOP/tests/e2e/mkbundle.sh" "$B7" "$T/b7.tgz"
fresh
touch "$R/FB_FILL"
t_case "state dir fills during the run: exit 1, no marker, status not ready"
rm -f "$T/ns.res"
unshare -m bash -c '
	mkdir -p "$R/var/lib/firstboot" && mount -t tmpfs -o size=1m tmpfs "$R/var/lib/firstboot" || exit 99
	timeout 120 "$FIRSTBOOT" run --root "$R" --user-data "$T/b7.tgz" --instance-id i-fill \
		>"$T/ns.out" 2>"$T/ns.err"
	rc=$? m=0
	[ -e "$R/var/lib/app/ready" ] && m=1
	st=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"state\"])" \
		"$R/var/lib/firstboot/status.json" 2>/dev/null || echo none)
	timeout 20 "$FIRSTBOOT" status --root "$R" >/dev/null 2>&1
	echo "$rc $m $st $?" >"$T/ns.res"
'
if ns_failed && grep -q "status.json" "$T/ns.err"; then t_pass; else t_fail "$(ns_why)"; fi
t_case "  and the rerun converges (the bundle's marker, status ready)"
rm -f "$R/FB_FILL"
if expect_rc 0 fb_run "$R" --user-data "$T/b7.tgz" --instance-id i-fill &&
	[ -e "$R/var/lib/app/ready" ] && [ "$(state_of "$R")" = ready ] &&
	consistent "$R" "$R/var/lib/app/ready"; then t_pass; else t_fail "$(cat "$T/err")"; fi
t_case "  a later run that fails removes that marker (named in status.json)"
touch "$R/FB_FILL"
rm -f "$T/ns.res"
unshare -m bash -c '
	cp -a "$R/var/lib/firstboot" "$T/state-copy"
	mount -t tmpfs -o size=1m tmpfs "$R/var/lib/firstboot" || exit 99
	cp -a "$T/state-copy/." "$R/var/lib/firstboot/"
	timeout 120 "$FIRSTBOOT" run --root "$R" --user-data "$T/b7.tgz" --instance-id i-fill \
		>"$T/ns.out" 2>"$T/ns.err"
	echo "$?" >"$T/ns.res"
'
if [ "$(cat "$T/ns.res")" = 1 ] && [ ! -e "$R/var/lib/app/ready" ]; then t_pass; else
	t_fail "$(ns_why)"
fi
rm -f "$R/FB_FILL"

# ---- the log directory ----
fresh
t_case "log dir on a read-only tmpfs: exit 1, no marker"
if in_ns "$R/var/log/firstboot" ro,size=1m ':' && ns_failed && grep -q "cannot open its log" "$T/ns.err"; then
	t_pass
else t_fail "$(ns_why)"; fi
t_case "  and the rerun converges"
if converges "$R"; then t_pass; else t_fail "$(cat "$T/err")"; fi

fresh
t_case "log dir on a full tmpfs: exit 1, no marker"
if in_ns "$R/var/log/firstboot" size=8k \
	'dd if=/dev/zero of="$R/var/log/firstboot/fill" bs=4k count=10 2>/dev/null' && ns_failed &&
	grep -q "cannot write its log" "$T/ns.err"; then
	t_pass
else t_fail "$(ns_why)"; fi
t_case "  and the rerun converges"
if converges "$R"; then t_pass; else t_fail "$(cat "$T/err")"; fi

# ---- a files: target ----
fresh
t_case "files: target dir on a read-only tmpfs: exit 1, no marker, no module ran"
if in_ns "$R/opt/app" ro,size=1m ':' && ns_failed && [ ! -e "$R/wait.pid" ]; then t_pass; else
	t_fail "$(ns_why)"
fi
t_case "  and the rerun converges"
if converges "$R"; then t_pass; else t_fail "$(cat "$T/err")"; fi

fresh
t_case "files: target dir on a full tmpfs: exit 1, no marker"
if in_ns "$R/opt/app" size=8k 'dd if=/dev/zero of="$R/opt/app/fill" bs=4k count=10 2>/dev/null' &&
	ns_failed && [ ! -e "$R/wait.pid" ]; then t_pass; else t_fail "$(ns_why)"; fi
t_case "  and the rerun converges"
if converges "$R"; then t_pass; else t_fail "$(cat "$T/err")"; fi

# An immutable target (chattr +i) needs a file system with the flag:
# tmpfs has none, so an ext2 image on a loop device.
fresh
IMG=$T/ext2.img
if dd if=/dev/zero of="$IMG" bs=1k count=1024 2>/dev/null && mkfs.ext2 -q -F "$IMG" 2>/dev/null &&
	unshare -m bash -c 'mkdir -p "$T/mnt" && mount -o loop "$1" "$T/mnt" && touch "$T/mnt/f" &&
		chattr +i "$T/mnt/f" && chattr -i "$T/mnt/f"' x "$IMG" 2>/dev/null; then
	t_case "files: an immutable target (chattr +i, ext2 loop image): exit 1, no marker"
	rm -f "$T/ns.res"
	unshare -m bash -c '
		mkdir -p "$R/opt/app" && mount -o loop "$1" "$R/opt/app" || exit 99
		echo old >"$R/opt/app/app.conf" && chattr +i "$R/opt/app/app.conf" || exit 98
		timeout 120 "$FIRSTBOOT" run --root "$R" --user-data "$T/b.tgz" --instance-id i-faults \
			>"$T/ns.out" 2>"$T/ns.err"
		rc=$? m=0
		[ -e "$R/var/lib/firstboot/ready" ] && m=1
		c=$(cat "$R/opt/app/app.conf")
		chattr -i "$R/opt/app/app.conf"
		timeout 20 "$FIRSTBOOT" status --root "$R" >/dev/null 2>&1
		echo "$rc $m $c $?" >"$T/ns.res"
	' x "$IMG"
	if ns_failed && grep -q "^1 0 old " "$T/ns.res"; then t_pass; else t_fail "$(ns_why)"; fi
	t_case "  and the rerun converges"
	if converges "$R"; then t_pass; else t_fail "$(cat "$T/err")"; fi
else
	echo "ok - # SKIP chattr +i: no loop device or ext2 here ($(uname -r))"
fi

# ---- SIGKILL at each step ----
# killed PID: SIGKILL and reap it (bounded: SIGKILL cannot be ignored).
killed() {
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	if [ -f "$R/wait.pid" ]; then kill -KILL "$(cat "$R/wait.pid")" 2>/dev/null; fi
	return 0
}
after_kill() { # NAME: the invariant, then the rerun
	t_case "SIGKILL at $1: marker only beside a ready status"
	if consistent "$R"; then t_pass; else
		t_fail "marker: $([ -e "$R/var/lib/firstboot/ready" ] && echo yes || echo no), state $(state_of "$R"), status rc $(status_rc "$R")"
	fi
	t_case "SIGKILL at $1: the rerun converges"
	if converges "$R"; then t_pass; else t_fail "$(cat "$T/err")"; fi
}

# The datasource: user-data from a FIFO nobody writes.
fresh
mkfifo "$T/ud.fifo.$n"
"$FIRSTBOOT" run --root "$R" --user-data "$T/ud.fifo.$n" --instance-id i-faults >/dev/null 2>&1 &
pid=$!
wait_for 10 test -s "$R/var/lib/firstboot/status.json"
after_kill_pid=$pid
killed "$after_kill_pid"
after_kill "the datasource (a fresh server)"

# A module, on a ready server that runs its modules again (a new bundle
# for the same instance): the marker is gone while the module runs.
fresh
expect_rc 0 fb_run "$R" --user-data "$T/b.tgz" --instance-id i-faults
B2=$T/b2
cp -a "$B" "$B2"
echo "setting=2" >"$B2/files/app.conf"
sed -i 's/^  - id: wait$/  - id: wait\n  - id: later/' "$B2/bundle.yaml"
mkdir -p "$B2/modules/later"
sed 's/^id: wait/id: later/; s/^name: wait/name: later/' "$B/modules/wait/manifest.yml" >"$B2/modules/later/manifest.yml"
cp "$B/modules/wait/install.sh" "$B2/modules/later/install.sh"
"$TOP/tests/e2e/mkbundle.sh" "$B2" "$T/b2.tgz"
touch "$R/FB_WAIT"
"$FIRSTBOOT" run --root "$R" --user-data "$T/b2.tgz" --instance-id i-faults >/dev/null 2>&1 &
pid=$!
t_case "a module running on day 2: no marker while it runs"
if wait_for 20 test -e "$R/waiting" && [ ! -e "$R/var/lib/firstboot/ready" ] &&
	[ "$(state_of "$R")" = running ]; then t_pass; else t_fail "state $(state_of "$R")"; fi
killed "$pid"
after_kill "a module (day 2)"

# strace delays one rename (the file's name is the filter) so the agent
# can be killed while it is there: status.json's with "ready" in it (the
# state write), then the marker's.
if strace -f -qq -o /dev/null -e trace=none true 2>/dev/null; then
	# stall: firstboot run under strace, every rename delayed 1 s (strace's
	# -P does not filter injection by path); sets pid (strace's).
	stall() {
		strace -f -qq -o /dev/null -e trace=rename,renameat,renameat2 \
			-e inject=rename,renameat,renameat2:delay_enter=1000000 \
			"$FIRSTBOOT" run --root "$R" --user-data "$T/b.tgz" --instance-id i-faults >/dev/null 2>&1 &
		pid=$!
	}
	agent_of() { pgrep -P "$1" -x firstboot | head -n 1; }
	ready_tmp() { grep -l '"state": "ready"' "$R"/var/lib/firstboot/status.json.fbtmp.* 2>/dev/null | grep -q .; }

	fresh
	stall
	t_case "the state write (status.json saying ready) is reached"
	if wait_for 60 ready_tmp; then t_pass; else t_fail "never saw it"; fi
	a=$(agent_of "$pid")
	[ -n "$a" ] && kill -KILL "$a"
	killed "$pid"
	after_kill "the state write"

	fresh
	stall
	t_case "the marker write is reached"
	if wait_for 60 compgen -G "$R/var/lib/firstboot/ready.fbtmp.*"; then t_pass; else t_fail "never saw it"; fi
	t_case "at the marker write, status.json already says ready"
	if [ "$(state_of "$R")" = ready ]; then t_pass; else t_fail "state $(state_of "$R")"; fi
	a=$(agent_of "$pid")
	[ -n "$a" ] && kill -KILL "$a"
	killed "$pid"
	AT_MARKER=1 after_kill "the marker write"
else
	echo "ok - # SKIP strace cannot trace here: no kill at the state and marker writes"
fi

# ---- the controller ----
# cb_bundle URL: the bundle with phone_home to URL, as $T/cb.tgz.
cb_bundle() {
	rm -rf "$T/cb"
	cp -a "$B" "$T/cb"
	sed -i "s|^name: faults|name: faults\nphone_home: {url: \"$1\", token: \"t0k\"}|" "$T/cb/bundle.yaml"
	"$TOP/tests/e2e/mkbundle.sh" "$T/cb" "$T/cb.tgz"
}
start_peer hang receiver.py --mode hang --record "$T/hang.jsonl"
cb_bundle "http://127.0.0.1:$hang_port/callback"
fresh
fb_run "$R" --user-data "$T/cb.tgz" --instance-id i-faults >/dev/null 2>&1 &
pid=$!
t_case "the phone-home step (a hanging controller) is reached"
if wait_for 30 test -s "$T/hang.jsonl"; then t_pass; else t_fail "no POST"; fi
killed "$pid"
t_case "SIGKILL at the phone-home: the marker stands, beside a ready status"
if [ -e "$R/var/lib/firstboot/ready" ] && consistent "$R"; then t_pass; else
	t_fail "state $(state_of "$R")"
fi

# Controllers that fail: the run is ready anyway, the callback's failure
# recorded (the deadline of fb_conf bounds the hanging one).
cat >"$T/redirect.py" <<'EOP'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.send_response(307)
        self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[2], "w").write(str(s.server_address[1]))
s.serve_forever()
EOP
python3 "$T/redirect.py" --port-file "$T/redir.port" >/dev/null 2>&1 &
_pids+=($!)
wait_for 10 test -s "$T/redir.port"
for c in "dead:http://127.0.0.1:$(free_port)/callback" \
	"redirecting:http://127.0.0.1:$(cat "$T/redir.port")/callback" \
	"hanging:http://127.0.0.1:$hang_port/callback"; do
	cb_bundle "${c#*:}"
	fresh
	t_case "a ${c%%:*} controller: ready, marker, the callback recorded as failed"
	if expect_rc 0 timeout 60 "$FIRSTBOOT" run --root "$R" --user-data "$T/cb.tgz" --instance-id i-faults &&
		[ -e "$R/var/lib/firstboot/ready" ] && consistent "$R" &&
		[ "$(json_get "$R/var/lib/firstboot/status.json" 'j["phone_home"]["state"]')" = failed ]; then
		t_pass
	else t_fail "$(tail -n 3 "$T/err")"; fi
done

t_case "nothing outside the roots changed"
if [ "$(snap_outside)" = "$SENT0" ]; then t_pass; else t_fail "$(diff <(echo "$SENT0") <(snap_outside))"; fi
