#!/bin/bash
# sd_notify: `firstboot run` under a NOTIFY_SOCKET (an AF_UNIX datagram
# socket on a temporary path, as systemd gives a Type=notify service) sends
# STATUS= progress naming each module, then READY=1 at the end when ready;
# a failed run says why in STATUS= and exits without READY=1, so systemd
# fails the start job and what Requires= firstboot.service does not start;
# modules do not inherit the socket.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

# listen SOCKET LOG: records each datagram as one JSON string per line in
# LOG until READY=1 arrives, LOG.stop exists and the socket is drained, or
# 30 s pass. SOCKET is a path, or "@name" for an abstract socket (as
# systemd may give). Sets listener_pid.
listen() {
	rm -f "$1" "$2" "$2.stop" "$2.bound"
	python3 - "$1" "$2" <<'EOP' &
import json, os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
addr = sys.argv[1]
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
open(sys.argv[2] + ".bound", "w").close()
s.settimeout(0.1)
end = time.monotonic() + 30
with open(sys.argv[2], "w") as log:
    while time.monotonic() < end:
        try:
            data = s.recv(65536)
        except socket.timeout:
            if os.path.exists(sys.argv[2] + ".stop"):
                break
            continue
        log.write(json.dumps(data.decode()) + "\n")
        log.flush()
        if "READY=1" in data.decode().split("\n"):
            break
EOP
	listener_pid=$!
	_pids+=("$listener_pid")
	wait_for 10 test -e "$2.bound"
}
# messages LOG: the datagrams' lines, one per line.
messages() { python3 -c 'import json,sys; [print(json.loads(l)) for l in open(sys.argv[1])]' "$1"; }

B=$T/b
mkdir -p "$B"
printf 'version: 1\nname: notify\nmodules:\n  - id: first\n  - id: second\n' >"$B/bundle.yaml"
mkmodule "$B" first '' <<<$'#!/bin/sh\nenv > "$FIRSTBOOT_ROOT/first.env"'
mkmodule "$B" second 'after: [first]' <<<$'#!/bin/sh\necho second'
"$TOP/tests/e2e/mkbundle.sh" "$B" "$B.tgz"

R=$T/r
new_root "$R"
S=$T/notify.sock
t_case "the notification socket is there"
if listen "$S" "$T/n1.log"; then t_pass; else
	t_fail "the listener did not bind $S"
	exit 1
fi

t_case "a ready run sends READY=1, last"
if NOTIFY_SOCKET=$S expect_rc 0 fb_run "$R" --user-data "$B.tgz" --instance-id i-notify &&
	wait_for 10 proc_gone "$listener_pid" && [ "$(messages "$T/n1.log" | tail -n 1)" = "READY=1" ] &&
	[ "$(messages "$T/n1.log" | grep -c '^READY=1$')" = 1 ]; then
	t_pass
else t_fail "got: $(messages "$T/n1.log" 2>&1 | tr '\n' '|')"; fi

t_case "STATUS= progress names each module, in run order, and says ready"
messages "$T/n1.log" | grep '^STATUS=' >"$T/status1"
if grep -qx 'STATUS=Fetching user-data' "$T/status1" &&
	[ "$(grep -o 'STATUS=Running [a-z]*' "$T/status1" | tr '\n' ' ')" = "STATUS=Running first STATUS=Running second " ] &&
	[ "$(tail -n 1 "$T/status1")" = "STATUS=Ready (2 modules)" ]; then
	t_pass
else t_fail "got: $(tr '\n' '|' <"$T/status1")"; fi

t_case "modules do not inherit NOTIFY_SOCKET"
if [ -s "$R/first.env" ] && ! grep -q '^NOTIFY_SOCKET=' "$R/first.env"; then t_pass; else t_fail "$(cat "$R/first.env")"; fi

# A failing module: the attempts show in STATUS=, then the failure; no
# READY=1 (the start job fails with the exit code).
F=$T/f
mkdir -p "$F"
printf 'version: 1\nname: notify-fail\nmodules:\n  - id: retried\n' >"$F/bundle.yaml"
mkmodule "$F" retried '' <<<$'#!/bin/sh\nexit 2'
"$TOP/tests/e2e/mkbundle.sh" "$F" "$F.tgz"
R2=$T/r2
new_root "$R2"
fb_conf "$R2"
echo 'module_attempts: 2' >>"$R2/etc/firstboot/firstboot.conf"
listen "$S" "$T/n2.log"
t_case "a failed run: every attempt in STATUS=, the failure last, no READY=1"
if NOTIFY_SOCKET=$S expect_rc 1 fb_run "$R2" --user-data "$F.tgz" --instance-id i-notify-fail &&
	touch "$T/n2.log.stop" && wait_for 10 proc_gone "$listener_pid" && messages "$T/n2.log" >"$T/m2" &&
	grep -qx 'STATUS=Running retried (attempt 1)' "$T/m2" && grep -qx 'STATUS=Running retried (attempt 2)' "$T/m2" &&
	[ "$(tail -n 1 "$T/m2")" = 'STATUS=Failed: module retried failed: exit code 2 (installation error) after 2 attempts' ] &&
	! grep -q '^READY=1$' "$T/m2"; then
	t_pass
else t_fail "got: $(tr '\n' '|' <"$T/m2")"; fi

t_case "without NOTIFY_SOCKET nothing is sent and the run is the same"
R3=$T/r3
new_root "$R3"
listen "$S" "$T/n3.log"
if env -u NOTIFY_SOCKET "$FIRSTBOOT" run --root "$R3" --user-data "$B.tgz" --instance-id i-quiet >"$T/out" 2>&1 &&
	[ -f "$R3/var/lib/firstboot/ready" ] && [ ! -s "$T/n3.log" ]; then
	t_pass
else t_fail "got: $(cat "$T/n3.log")"; fi

t_case "an abstract NOTIFY_SOCKET (@name) gets READY=1 too"
R4=$T/r4
new_root "$R4"
listen "@firstboot-test-notify-$$" "$T/n4.log"
if NOTIFY_SOCKET="@firstboot-test-notify-$$" expect_rc 0 fb_run "$R4" --user-data "$B.tgz" --instance-id i-abstract &&
	wait_for 10 grep -q READY=1 "$T/n4.log"; then
	t_pass
else t_fail "got: $(cat "$T/n4.log")"; fi
