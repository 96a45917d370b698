#!/bin/bash
# Modules that attack the runner (issue #15): a password that spans lines
# (a YAML block scalar with its trailing newline, a value with "\r\n")
# must not show, whole or any line of it, in the agent's stderr, the
# module log, the journal (a private journald, tests/e2e/journal-ns.sh) or
# the callback body (tests/e2e/peers/receiver.py), nor in the agent's own
# input validation errors; a module left running by a `firstboot run`
# killed with kill -9 is gone before the rerun starts it again; a module
# writing 200 MB leaves a log of max_module_log and a bit, head and tail
# kept, with a line saying how much was dropped; `firstboot analyze` lists
# the slowest module first, with its start from the start of the run.
# SC2154: start_peer sets *_port.
# shellcheck disable=SC2154
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

HARNESS=$TOP/tests/e2e/journal-ns.sh
TOKEN=hostile-token-81c4
# Every line of the two secrets; none may show anywhere.
PARTS=(blk-first-line-4417 blk-second-line-9023 crlf-head-5521 crlf-tail-6634)

if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null || ! command -v journalctl >/dev/null; then
	echo "not ok - the journal cases need root, unshare and journalctl"
	exit 1
fi

# leaks FILE...: prints each secret line found in the files (as bytes: the
# journal's export format and \r included).
leaks() {
	local p
	for p in "${PARTS[@]}"; do
		grep -alF -- "$p" "$@" 2>/dev/null | sed "s|^|$p in |"
	done
}

# --- secrets that span lines ---

start_peer cb receiver.py --record "$T/cb.jsonl" --token "$TOKEN"
B=$T/bsec
mkdir -p "$B"
cat >"$B/bundle.yaml" <<EOY
version: 1
name: hostile-secrets
phone_home: {url: "http://127.0.0.1:$cb_port/callback", token: "$TOKEN"}
modules:
  - id: talk
    inputs:
      password: |
        blk-first-line-4417
        blk-second-line-9023
      token: "crlf-head-5521\r\ncrlf-tail-6634"
EOY
mkmodule "$B" talk 'inputs:
  - {name: password, type: password, required: true}
  - {name: token, type: string, sensitive: true, required: true}' <<'EOS'
#!/bin/bash
echo "password: $PASSWORD"
printf '%s' "$PASSWORD" >&2
printf 'token: %s\n' "$TOKEN"
printf '%s\n' "$TOKEN" | tr -d '\r' >&2
# One line in two writes, read apart.
printf 'split: blk-second-'
sleep 0.3
printf 'line-9023 end\n'
echo "cannot go on" >&2
exit 3
EOS
"$TOP/tests/e2e/mkbundle.sh" "$B" "$B.tgz"
RS=$T/rsec
new_root "$RS"
fb_conf "$RS"

J=$T/journal
# shellcheck disable=SC2016 # expanded by the inner shell
timeout 120 "$HARNESS" "$J" sh -c '"$1" run --root "$2" --user-data "$3" --instance-id i-hostile 2>"$4"; echo $? >"$5"' \
	sh "$FIRSTBOOT" "$RS" "$B.tgz" "$T/sec.err" "$T/sec.rc" >"$T/harness.out" 2>&1
hrc=$?

t_case "multi-line secrets: the run fails (exit 1), no marker, one callback"
if [ "$hrc" -eq 125 ]; then
	t_fail "journal-ns.sh could not start journald: $(tail -n 5 "$T/harness.out")"
	exit 1
elif [ "$(cat "$T/sec.rc" 2>/dev/null)" = 1 ] && [ ! -e "$RS/var/lib/firstboot/ready" ] &&
	[ -s "$T/cb.jsonl" ] && grep -q 'blk\|crlf\|\*\*\*\*\*\*\*\*' "$RS/var/log/firstboot/talk.log"; then
	t_pass
else t_fail "harness $hrc, run $(cat "$T/sec.rc" 2>/dev/null), callbacks $(wc -l <"$T/cb.jsonl" 2>/dev/null)"; fi

journalctl -D "$J" -o export >"$T/journal.export" 2>"$T/journalctl.err"
t_case "multi-line secrets: the journal holds the module's lines"
if grep -aq 'cannot go on' "$T/journal.export" && grep -aq 'split: \*\*\*\*\*\*\*\* end' "$T/journal.export"; then
	t_pass
else t_fail "no module lines in the journal: $(head -c 300 "$T/journalctl.err")"; fi

t_case "multi-line secrets: no line of them in stderr, the log, the journal or the callback"
l=$(leaks "$T/sec.err" "$RS/var/log/firstboot/talk.log" "$T/journal.export" "$T/cb.jsonl" "$RS/var/lib/firstboot/status.json")
if [ -z "$l" ]; then t_pass; else t_fail "$l"; fi

t_case "multi-line secrets: the callback's log_tail is there, masked"
if python3 - "$T/cb.jsonl" <<'EOP'; then t_pass; else t_fail "$(head -c 600 "$T/cb.jsonl")"; fi
import json, sys
body = json.loads(json.loads(open(sys.argv[1]).readline())["body"])
tail = json.dumps(body)
assert "cannot go on" in tail and "split: ********" in tail, tail
EOP

t_case "multi-line secrets: an input validation error quotes no line of them"
B2=$T/bval
mkdir -p "$B2"
cat >"$B2/bundle.yaml" <<'EOY'
version: 1
name: hostile-validation
modules:
  - id: strict
    inputs:
      password: |
        blk-first-line-4417
        blk-second-line-9023
      token: "crlf-head-5521\r\ncrlf-tail-6634"
EOY
mkmodule "$B2" strict 'inputs:
  - {name: password, type: password, validation: {pattern: "^[a-z]+$", max_length: 5}}
  - {name: token, type: select, sensitive: true, validation: {allowed_values: [a, b]}}' <<<$'#!/bin/sh\necho never'
"$TOP/tests/e2e/mkbundle.sh" "$B2" "$B2.tgz"
R2=$T/rval
new_root "$R2"
if expect_rc 1 fb_run "$R2" --user-data "$B2.tgz" --instance-id i-val && grep -q "password" "$T/err" &&
	grep -q "token" "$T/err" && [ -z "$(leaks "$T/err" "$T/out" "$R2/var/lib/firstboot/status.json")" ] &&
	[ ! -e "$R2/var/lib/firstboot/ready" ]; then
	t_pass
else t_fail "$(leaks "$T/err" "$T/out"): $(head -c 600 "$T/err")"; fi

# --- a module left running by a killed agent ---

B3=$T/borphan
mkdir -p "$B3"
printf 'version: 1\nname: hostile-orphan\nmodules:\n  - id: slow\n' >"$B3/bundle.yaml"
# The first start sleeps (its pid and its child's in files); every start
# first notes whether an earlier one is still alive: an overlap.
mkmodule "$B3" slow '' <<'EOS'
#!/bin/bash
alive() { [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
d=$FIRSTBOOT_ROOT
for f in "$d/slow.pid" "$d/sleep.pid"; do
	if [ -f "$f" ] && alive "$(cat "$f")"; then echo "$(cat "$f") from $f" >>"$d/overlap"; fi
done
echo "$$" >>"$d/starts"
if [ ! -f "$d/slept" ]; then
	touch "$d/slept"
	sleep 1000 &
	echo "$!" >"$d/sleep.pid"
	echo "$$" >"$d/slow.pid"
	wait
fi
echo "second start: done"
EOS
"$TOP/tests/e2e/mkbundle.sh" "$B3" "$B3.tgz"
R3=$T/rorphan
new_root "$R3"
fb_conf "$R3"
"$FIRSTBOOT" run --root "$R3" --user-data "$B3.tgz" --instance-id i-orphan >"$T/orphan1.out" 2>&1 &
agent=$!
_pids+=("$agent")

t_case "kill -9 of the agent while its module sleeps: the module lives on"
if wait_for 20 test -s "$R3/slow.pid" && wait_for 5 test -s "$R3/sleep.pid" &&
	kill -9 "$agent" && { wait "$agent" || true; } 2>/dev/null && wait_for 10 proc_gone "$agent" && ! proc_gone "$(cat "$R3/slow.pid")" &&
	[ ! -e "$R3/var/lib/firstboot/ready" ]; then
	t_pass
else t_fail "setup: $(cat "$T/orphan1.out")"; fi
old=$(cat "$R3/slow.pid" 2>/dev/null) oldsleep=$(cat "$R3/sleep.pid" 2>/dev/null)

t_case "the rerun ends the old module before starting it again, then is ready"
if expect_rc 0 fb_run "$R3" --user-data "$B3.tgz" --instance-id i-orphan && [ ! -e "$R3/overlap" ] &&
	[ "$(wc -l <"$R3/starts")" = 2 ] && proc_gone "$old" && proc_gone "$oldsleep" &&
	[ -f "$R3/var/lib/firstboot/ready" ] && grep -q "Ended module slow" "$T/err" &&
	[ ! -e "$R3/var/lib/firstboot/running-module" ]; then
	t_pass
else t_fail "overlap: $(cat "$R3/overlap" 2>/dev/null); starts: $(cat "$R3/starts" 2>/dev/null); err: $(head -c 500 "$T/err")"; fi
# Whatever a failure left behind.
for p in "$old" "$oldsleep"; do [ -n "$p" ] && ! proc_gone "$p" && kill -9 "$p" 2>/dev/null; done

# --- a module that writes 200 MB ---

# mkflood DIR LINES: a bundle whose module writes LINES lines of 48 bytes
# between two markers.
mkflood() {
	mkdir -p "$1"
	printf 'version: 1\nname: hostile-flood\nmodules:\n  - id: flood\n' >"$1/bundle.yaml"
	mkmodule "$1" flood '' <<EOS
#!/bin/sh
echo FIRST-LINE-MARKER
yes 'noise noise noise noise noise noise noise noise' | head -n $2
echo LAST-LINE-MARKER
EOS
	"$TOP/tests/e2e/mkbundle.sh" "$1" "$1.tgz"
}
B4=$T/bflood
mkflood "$B4" 4000000
mkflood "$T/bflood2" 20000
R4=$T/rflood
new_root "$R4"
CAP=$((16 * 1024 * 1024))
total=$((18 + 4000000 * 48 + 17))

t_case "200 MB of output: the run is ready, the log is max_module_log and a bit"
log4=$R4/var/log/firstboot/flood.log
if expect_rc 0 fb_run "$R4" --user-data "$B4.tgz" --instance-id i-flood && [ -f "$R4/var/lib/firstboot/ready" ] &&
	[ "$(stat -c %s "$log4")" -le $((CAP + 4096)) ] && [ "$(stat -c %s "$T/err")" -le $((2 * CAP)) ]; then
	t_pass
else t_fail "log $(stat -c %s "$log4" 2>/dev/null) bytes, stderr $(stat -c %s "$T/err") bytes"; fi

t_case "200 MB of output: head and tail kept, and how much was dropped"
dropped=$(sed -n 's/^firstboot: dropped \([0-9]*\) bytes of output here.*/\1/p' "$log4")
header=$(head -n 1 "$log4" | wc -c)
note=$(grep -a '^firstboot: dropped' "$log4" | wc -c)
if [ "$(sed -n 2p "$log4")" = FIRST-LINE-MARKER ] && [ "$(tail -n 1 "$log4")" = LAST-LINE-MARKER ] &&
	[ -n "$dropped" ] && [ $(($(stat -c %s "$log4") - header - note + dropped)) = "$total" ] &&
	grep -q "firstboot\[flood\]: firstboot: dropped $dropped bytes" "$T/err"; then
	t_pass
else t_fail "dropped '$dropped', log $(stat -c %s "$log4"), header $header, note $note; $(grep -a dropped "$log4" | head -c 300)"; fi

t_case "max_module_log in firstboot.conf: a smaller cap; out of range is an error"
R5=$T/rflood2
new_root "$R5"
mkdir -p "$R5/etc/firstboot"
printf 'retry_backoff_ms: 10\nmax_module_log: 65536\n' >"$R5/etc/firstboot/firstboot.conf"
R6=$T/rbadcap
new_root "$R6"
mkdir -p "$R6/etc/firstboot"
printf 'max_module_log: 1000\n' >"$R6/etc/firstboot/firstboot.conf"
if expect_rc 0 fb_run "$R5" --user-data "$T/bflood2.tgz" --instance-id i-flood2 &&
	[ "$(stat -c %s "$R5/var/log/firstboot/flood.log")" -le $((65536 + 4096)) ] &&
	[ "$(tail -n 1 "$R5/var/log/firstboot/flood.log")" = LAST-LINE-MARKER ] &&
	expect_rc 1 fb_run "$R6" --user-data "$T/bflood2.tgz" && grep -q "firstboot.conf:1:[0-9]*: 'max_module_log' must be between 65536 and" "$T/err" &&
	[ ! -e "$R6/var/lib/firstboot/ready" ] && [ ! -e "$R6/var/log/firstboot/flood.log" ]; then
	t_pass
else t_fail "$(head -c 400 "$T/err")"; fi

# --- analyze ---

B7=$T/banalyze
mkdir -p "$B7"
printf 'version: 1\nname: hostile-analyze\nmodules:\n  - id: quick\n  - id: slowest\n  - id: middle\n' >"$B7/bundle.yaml"
mkmodule "$B7" quick '' <<<$'#!/bin/sh\nsleep 0.1'
mkmodule "$B7" slowest 'after: [quick]' <<<$'#!/bin/sh\nsleep 0.9'
mkmodule "$B7" middle 'after: [slowest]' <<<$'#!/bin/sh\nsleep 0.5'
"$TOP/tests/e2e/mkbundle.sh" "$B7" "$B7.tgz"
R7=$T/ranalyze
new_root "$R7"

t_case "analyze: slowest first, each with its start from the start of the run"
if expect_rc 0 fb_run "$R7" --user-data "$B7.tgz" --instance-id i-an &&
	expect_rc 0 "$FIRSTBOOT" analyze --root "$R7" &&
	[ "$(awk '$NF ~ /^(quick|slowest|middle)$/ {printf "%s ", $NF}' "$T/out")" = "slowest middle quick " ] &&
	python3 - "$R7" "$FIRSTBOOT" <<'EOP' 2>"$T/py.err"; then t_pass; else t_fail "$(cat "$T/out" "$T/py.err")"; fi
import json, subprocess, sys
out = subprocess.run([sys.argv[2], "analyze", "--root", sys.argv[1], "--json"],
                     check=True, capture_output=True, text=True).stdout
j = json.loads(out)
mods = j["modules"]
assert [m["id"] for m in mods] == ["slowest", "middle", "quick"], mods
d = [m["duration_ms"] for m in mods]
assert d == sorted(d, reverse=True), d
by = {m["id"]: m for m in mods}
# Starts follow the run order, from the start of the run.
assert 0 <= by["quick"]["start_ms"] < by["slowest"]["start_ms"] < by["middle"]["start_ms"], mods
for m in mods:
    assert m["start_ms"] == m["started_ms"] - j["started_ms"], m
EOP
