#!/bin/bash
# firstboot run logging to a real journald (tests/e2e/journal-ns.sh: a
# private journald in a mount namespace), read back with `journalctl -D`:
# the fields of module output lines and events, priorities by stream, the
# MESSAGE_IDs of firstboot/events.h, no sensitive value anywhere; then
# `firstboot logs` from that journal and from the log files.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

HARNESS=$TOP/tests/e2e/journal-ns.sh
SECRET_A=jrnl-secret-A-7731
SECRET_B=jrnl-secret-B-0456

# journald works on this machine (tests/e2e/test-journal-harness.sh): a
# harness that cannot start it is a failure here, never a skip.
if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null || ! command -v journalctl >/dev/null; then
	echo "not ok - the journal tests need root, unshare and journalctl"
	exit 1
fi

# The MESSAGE_IDs, from the header the agent is built with.
msgid() { sed -n "s/^#define MSGID_$1 *\"\\([0-9a-f]*\\)\"\$/\\1/p" "$TOP/firstboot/events.h"; }

# Bundle A: ready after a retry. Bundle B: a module fails.
A=$T/ba
mkdir -p "$A"
cat >"$A/bundle.yaml" <<EOY
version: 1
name: journal-a
modules:
  - id: talk
    inputs: {secret: "$SECRET_A"}
  - id: flaky
EOY
mkmodule "$A" talk 'inputs:
  - {name: secret, type: password, required: true}' <<'EOS'
#!/bin/bash
echo "to stdout with $SECRET"
echo "to stderr with $SECRET" >&2
EOS
mkmodule "$A" flaky 'after: [talk]' <<'EOS'
#!/bin/sh
echo "flaky attempt $FIRSTBOOT_ATTEMPT"
[ "$FIRSTBOOT_ATTEMPT" -ge 2 ] || exit 2
EOS
"$TOP/tests/e2e/mkbundle.sh" "$A" "$A.tgz"

B=$T/bb
mkdir -p "$B"
cat >"$B/bundle.yaml" <<EOY
version: 1
name: journal-b
modules:
  - id: broken
    inputs: {token: "$SECRET_B"}
EOY
mkmodule "$B" broken 'inputs:
  - {name: token, type: string, sensitive: true}' <<'EOS'
#!/bin/sh
echo "cannot use $TOKEN" >&2
exit 3
EOS
"$TOP/tests/e2e/mkbundle.sh" "$B" "$B.tgz"

RA=$T/ra RB=$T/rb
new_root "$RA"
new_root "$RB"
fb_conf "$RA"
fb_conf "$RB"

J=$T/journal
# Both runs under one journald; their exit codes go to $T/rcs.
# shellcheck disable=SC2016 # expanded by the inner shell
timeout 120 "$HARNESS" "$J" sh -c '"$1" run --root "$2" --user-data "$3" --instance-id i-journal-a; a=$?
	"$1" run --root "$4" --user-data "$5" --instance-id i-journal-b; echo "$a $?" >"$6"' \
	sh "$FIRSTBOOT" "$RA" "$A.tgz" "$RB" "$B.tgz" "$T/rcs" >"$T/harness.out" 2>&1
hrc=$?

t_case "both runs under a private journald (ready: 0, failed: 1)"
if [ "$hrc" -eq 125 ]; then
	t_fail "journal-ns.sh could not start journald: $(tail -n 5 "$T/harness.out"; cat "$J/journald.log" 2>/dev/null)"
	exit 1
elif [ "$hrc" -ne 0 ] || [ "$(cat "$T/rcs" 2>/dev/null)" != "0 1" ]; then
	t_fail "harness exit $hrc, run exit codes '$(cat "$T/rcs" 2>/dev/null)': $(tail -n 10 "$T/harness.out")"
	exit 1
else
	t_pass
fi

journalctl -D "$J" -o json SYSLOG_IDENTIFIER=firstboot >"$T/entries.json" 2>"$T/journalctl.err"
# jcheck NAME PYTHON: asserts over E, the list of firstboot's entries
# (values decoded to text).
jcheck() {
	t_case "$1"
	if python3 - "$T/entries.json" "$(msgid RUN_STARTED)" "$(msgid MODULE_STARTED)" \
		"$(msgid MODULE_FINISHED)" "$(msgid MODULE_FAILED)" "$(msgid READY)" "$(msgid FAILED)" 2>"$T/py.err" <<EOP; then t_pass; else t_fail "$(tail -n 5 "$T/py.err")"; fi
import json, sys
def text(v):
    return bytes(v).decode() if isinstance(v, list) else v
E = [{k: text(v) for k, v in json.loads(l).items()} for l in open(sys.argv[1])]
RUN_STARTED, MODULE_STARTED, MODULE_FINISHED, MODULE_FAILED, READY, FAILED = sys.argv[2:8]
assert all(len(m) == 32 for m in sys.argv[2:8]), sys.argv
def find(**kw):
    return [e for e in E if all(e.get(k) == v for k, v in kw.items())]
def one(**kw):
    f = find(**kw)
    assert len(f) == 1, (kw, len(f), [e.get("MESSAGE") for e in E])
    return f[0]
$2
EOP
}

jcheck "a stdout line: FIRSTBOOT_MODULE, _INSTANCE, _ATTEMPT, _STAGE, SYSLOG_IDENTIFIER, PRIORITY 6" '
e = one(MESSAGE="to stdout with ********")
assert e["FIRSTBOOT_MODULE"] == "talk" and e["FIRSTBOOT_INSTANCE"] == "i-journal-a", e
assert e["FIRSTBOOT_ATTEMPT"] == "1" and e["FIRSTBOOT_STAGE"] == "module", e
assert e["SYSLOG_IDENTIFIER"] == "firstboot" and e["PRIORITY"] == "6", e
'

jcheck "a stderr line comes at PRIORITY 4 (warning)" '
e = one(MESSAGE="to stderr with ********")
assert e["PRIORITY"] == "4" and e["FIRSTBOOT_MODULE"] == "talk", e
assert e["FIRSTBOOT_ATTEMPT"] == "1" and e["FIRSTBOOT_STAGE"] == "module", e
e = one(MESSAGE="cannot use ********")
assert e["PRIORITY"] == "4" and e["FIRSTBOOT_MODULE"] == "broken", e
assert e["FIRSTBOOT_INSTANCE"] == "i-journal-b", e
'

jcheck "a retried module: each attempt its own FIRSTBOOT_ATTEMPT" '
e1 = one(MESSAGE="flaky attempt 1")
e2 = one(MESSAGE="flaky attempt 2")
assert e1["FIRSTBOOT_ATTEMPT"] == "1" and e2["FIRSTBOOT_ATTEMPT"] == "2", (e1, e2)
assert e1["FIRSTBOOT_MODULE"] == e2["FIRSTBOOT_MODULE"] == "flaky", (e1, e2)
s = find(MESSAGE_ID=MODULE_STARTED, FIRSTBOOT_MODULE="flaky")
assert len(s) == 2, s
'

jcheck "events: run started, module started/finished, ready, with their MESSAGE_IDs" '
e = one(MESSAGE_ID=RUN_STARTED, FIRSTBOOT_INSTANCE="i-journal-a")
assert e["FIRSTBOOT_STAGE"] == "datasource" and "i-journal-a" in e["MESSAGE"], e
e = one(MESSAGE_ID=MODULE_STARTED, FIRSTBOOT_MODULE="talk")
assert e["FIRSTBOOT_INSTANCE"] == "i-journal-a" and e["FIRSTBOOT_STAGE"] == "module", e
e = one(MESSAGE_ID=MODULE_FINISHED, FIRSTBOOT_MODULE="talk")
assert e["FIRSTBOOT_INSTANCE"] == "i-journal-a" and e["PRIORITY"] == "6", e
one(MESSAGE_ID=MODULE_FINISHED, FIRSTBOOT_MODULE="flaky")
e = one(MESSAGE_ID=READY)
assert e["FIRSTBOOT_INSTANCE"] == "i-journal-a" and e["FIRSTBOOT_STAGE"] == "ready", e
assert not find(MESSAGE_ID=FAILED, FIRSTBOOT_INSTANCE="i-journal-a")
# Events come in order: started before its output, finished after it.
order = [e.get("MESSAGE_ID") or e["MESSAGE"] for e in E if e.get("FIRSTBOOT_INSTANCE") == "i-journal-a"]
assert order.index(RUN_STARTED) < order.index(MODULE_STARTED) < order.index("to stdout with ********") \
    < order.index(MODULE_FINISHED) < order.index(READY), order
'

jcheck "events: module failed and run failed, at error priority, with their MESSAGE_IDs" '
one(MESSAGE_ID=RUN_STARTED, FIRSTBOOT_INSTANCE="i-journal-b")
e = one(MESSAGE_ID=MODULE_FAILED)
assert e["FIRSTBOOT_MODULE"] == "broken" and e["FIRSTBOOT_INSTANCE"] == "i-journal-b", e
assert e["PRIORITY"] == "3" and "exit code 3" in e["MESSAGE"], e
e = one(MESSAGE_ID=FAILED)
assert e["FIRSTBOOT_INSTANCE"] == "i-journal-b" and e["PRIORITY"] == "3", e
assert e["FIRSTBOOT_STAGE"] == "failed", e
assert not find(MESSAGE_ID=READY, FIRSTBOOT_INSTANCE="i-journal-b")
'

t_case "sensitive inputs appear nowhere in the journal"
journalctl -D "$J" -o export >"$T/export" 2>>"$T/journalctl.err"
if [ ! -s "$T/export" ] || ! grep -qa 'to stdout with \*\*\*\*\*\*\*\*' "$T/export"; then
	t_fail "the export is empty or lacks the masked line: $(cat "$T/journalctl.err")"
elif grep -qaF -e "$SECRET_A" -e "$SECRET_B" "$T/export"; then
	t_fail "a secret is in the journal: $(grep -aF -e "$SECRET_A" -e "$SECRET_B" "$T/export" | head -n 3)"
else
	t_pass
fi

t_case "firstboot logs MODULE -D DIR reads that journal"
if expect_rc 0 "$FIRSTBOOT" logs --root "$RA" -D "$J" talk &&
	grep -qx 'talk: to stdout with \*\*\*\*\*\*\*\*' "$T/out" &&
	grep -qx 'talk: to stderr with \*\*\*\*\*\*\*\*' "$T/out" &&
	grep -qx 'talk: Module talk finished in [0-9]* ms' "$T/out" &&
	! grep -qv '^talk: ' "$T/out" && ! grep -q -e 'attempt 1 ---' -e 'stderr: ' "$T/out"; then
	t_pass
else t_fail "$(cat "$T/out")"; fi

t_case "firstboot logs --directory DIR without a module: every module's lines"
if expect_rc 0 "$FIRSTBOOT" logs --root "$RA" --directory "$J" && grep -qx 'flaky: flaky attempt 2' "$T/out" &&
	grep -qx 'broken: cannot use \*\*\*\*\*\*\*\*' "$T/out" && grep -q '^talk: ' "$T/out"; then
	t_pass
else t_fail "$(cat "$T/out")"; fi

t_case "firstboot logs MODULE --root R without a journal reads the log files"
if expect_rc 0 "$FIRSTBOOT" logs --root "$RA" talk &&
	[ "$(cat "$T/out")" = "talk: --- talk attempt 1 ---
talk: to stdout with ********
talk: stderr: to stderr with ********" ]; then
	t_pass
else t_fail "$(cat "$T/out")"; fi

t_case "firstboot logs with an empty journal directory falls back to the log files"
mkdir -p "$T/empty-journal"
if expect_rc 0 "$FIRSTBOOT" logs --root "$RB" -D "$T/empty-journal" broken &&
	[ "$(cat "$T/out")" = "broken: --- broken attempt 1 ---
broken: stderr: cannot use ********" ]; then
	t_pass
else t_fail "$(cat "$T/out")"; fi

t_case "firstboot logs for a module with no lines anywhere: exit 1, says so"
if expect_rc 1 "$FIRSTBOOT" logs --root "$RA" -D "$J" nosuch && grep -q "No logs for nosuch in $RA/var/log/firstboot" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/out" "$T/err")"; fi

# The agent speaks journald's native protocol itself (common/journal.c):
# a value with newlines takes the binary-safe form, one with "=" stays
# whole, and an entry too big for a datagram goes as a sealed memfd.
t_case "journal_send: multi-line values, '=' in values and a 400 KB entry arrive byte-exact"
SEND="$(dirname "$FIRSTBOOT")/tests/tools/journal-send"
J2=$T/journal2
# shellcheck disable=SC2016 # expanded by the inner shell
if ! timeout 60 "$HARNESS" "$J2" sh -c '"$1" fbsend "first
second" "FBTEST_EQ=a=b=c" "FBTEST_MULTI=x
y
" && "$1" fbsend big "FBTEST_BIG=@big:400000"' sh "$SEND" >"$T/harness2.out" 2>&1; then
	t_fail "$(cat "$T/harness2.out")"
elif ! journalctl -D "$J2" --all -o json SYSLOG_IDENTIFIER=fbsend 2>/dev/null | python3 -c '
import json, sys
def text(v):
    return bytes(v).decode() if isinstance(v, list) else v
e = [json.loads(l) for l in sys.stdin]
assert len(e) == 2, len(e)
assert text(e[0]["MESSAGE"]) == "first\nsecond", e[0]["MESSAGE"]
assert e[0]["FBTEST_EQ"] == "a=b=c" and text(e[0]["FBTEST_MULTI"]) == "x\ny\n"
assert e[0]["PRIORITY"] == "6"
big = "".join("\n" if k % 1000 == 999 else str(k % 10) for k in range(400000))
assert text(e[1]["FBTEST_BIG"]) == big, len(text(e[1]["FBTEST_BIG"]))
assert e[1]["MESSAGE"] == "big"
' >"$T/check.out" 2>&1; then
	t_fail "$(cat "$T/check.out")"
else t_pass; fi
