#!/bin/bash
# firstboot status (with --wait, --timeout and --json) in every state a
# first boot can be in: never started, running, hanging in a module,
# ready, failed, and an agent killed mid-run; and firstboot analyze on a
# recorded state (tests/cases/analyze/) and on real runs. Every wait is
# bounded by `timeout`, so a status that hangs fails its case.
# SC2016: the module scripts are single-quoted on purpose.
# shellcheck disable=SC2016
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

CASES=$TOP/tests/cases/analyze

# fbs ARGS...: firstboot status, never longer than 30 s.
fbs() { timeout 30 "$FIRSTBOOT" status "$@"; }
# jget EXPR: json_get on the last command's output.
jget() { json_get "$T/out" "$1"; }

# A bundle with one module that does what its script says.
# one_module NAME ID SCRIPT [MANIFEST-EXTRA]
one_module() {
	local b=$T/$1
	mkdir -p "$b"
	printf 'version: 1\nname: %s\nmodules:\n  - id: %s\n' "$1" "$2" >"$b/bundle.yaml"
	mkmodule "$b" "$2" "${4:-}" <<<"$3"
}
pack() { "$TOP/tests/e2e/mkbundle.sh" "$T/$1" "$T/$1.tgz"; }
one_module ok quick $'#!/bin/sh\necho quick'
pack ok
# broken fails with a configuration error; after-broken needs it.
one_module bad broken $'#!/bin/sh\necho "cannot configure" >&2\nexit 3'
printf '  - id: after-broken\n' >>"$T/bad/bundle.yaml"
mkmodule "$T/bad" after-broken 'requires: [broken]' <<<$'#!/bin/sh\nexit 0'
pack bad
# hang stays in its module until FIRSTBOOT_ROOT/go appears (at most 60 s),
# recording its process group so the test can end it.
one_module hang hang '#!/bin/sh
echo $$ > "$FIRSTBOOT_ROOT/hang.pid"
i=0
while [ ! -e "$FIRSTBOOT_ROOT/go" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
[ -e "$FIRSTBOOT_ROOT/go" ]' 'timeout_seconds: 120'
pack hang

# Ends what a hang run left behind: the agent and the module's group.
end_hang() {
	local root=$1 pid=$2
	[ -s "$root/hang.pid" ] && kill -KILL -- "-$(cat "$root/hang.pid")" 2>/dev/null
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}
# Whether status says the hang module is running.
hang_running() {
	"$FIRSTBOOT" status --root "$1" --json >"$T/probe" 2>/dev/null
	[ "$(json_get "$T/probe" 'j["current"]')" = hang ]
}

# ---------------------------------------------------------------- never started
R0=$T/never
new_root "$R0"
fb_conf "$R0"

t_case "never started: exit 2, state not-started"
if ! expect_rc 2 fbs --root "$R0" --json; then
	t_fail "exit code"
elif [ "$(jget 'j["state"], j["boot"], len(j["modules"]), j["timed_out"], j["current"]')" != "('not-started', 0, 0, False, None)" ]; then
	t_fail "json: $(cat "$T/out")"
elif ! expect_rc 2 fbs --root "$R0" || ! grep -qx 'state: not-started' "$T/out"; then
	t_fail "text: $(cat "$T/out")"
else t_pass; fi

t_case "never started: --wait --timeout 1 gives up with exit 2 and says so"
if ! expect_rc 2 fbs --root "$R0" --wait --timeout 1 --json; then
	t_fail "exit code"
elif [ "$(jget 'j["state"], j["timed_out"]')" != "('not-started', True)" ]; then
	t_fail "json: $(cat "$T/out")"
elif ! expect_rc 2 fbs --root "$R0" --wait --timeout 0 || ! grep -q '^timed out after 0 s' "$T/out"; then
	t_fail "text: $(cat "$T/out")"
else t_pass; fi

t_case "usage errors: --timeout without --wait, a bad --timeout, an argument"
if expect_rc 2 fbs --root "$R0" --timeout 5 && grep -q 'needs --wait' "$T/err" &&
	expect_rc 2 fbs --root "$R0" --wait --timeout soon && grep -q "not 'soon'" "$T/err" &&
	expect_rc 2 fbs --root "$R0" extra; then t_pass; else t_fail "$(cat "$T/err")"; fi

# ---------------------------------------------------------------- ready
R1=$T/ready
new_root "$R1"
t_case "ready: exit 0, every count and module in --json"
if ! expect_rc 0 fb_run "$R1" --user-data "$T/ok.tgz" --instance-id i-ready; then
	t_fail "run failed"
elif ! expect_rc 0 fbs --root "$R1" --json; then
	t_fail "exit code"
elif [ "$(jget 'j["state"], j["instance_id"], j["boot"], j["counts"]["done"], j["counts"]["failed"], j["current"], j["current_elapsed_ms"]')" != "('ready', 'i-ready', 1, 1, 0, None, None)" ]; then
	t_fail "json: $(cat "$T/out")"
elif [ "$(jget '[(m["id"], m["state"], m["exit_code"], m["attempts"], m["ran"]) for m in j["modules"]]')" != "[('quick', 'done', 0, 1, True)]" ]; then
	t_fail "modules: $(cat "$T/out")"
else t_pass; fi

t_case "ready: the text names the state, instance and counts"
if expect_rc 0 fbs --root "$R1" && grep -qx 'state: ready' "$T/out" &&
	grep -qx 'instance: i-ready (file), boot 1' "$T/out" &&
	grep -qx 'modules: 1 done, 0 failed, 0 skipped, 0 pending' "$T/out"; then t_pass; else t_fail "$(cat "$T/out")"; fi

t_case "ready: --wait returns 0 at once"
if expect_rc 0 fbs --root "$R1" --wait --json && [ "$(jget 'j["state"], j["timed_out"]')" = "('ready', False)" ]; then t_pass; else t_fail "$(cat "$T/out")"; fi

# ---------------------------------------------------------------- failed
R2=$T/failed
new_root "$R2"
t_case "failed: exit 1, the failed and the skipped module in --json"
if ! expect_rc 1 fb_run "$R2" --user-data "$T/bad.tgz" --instance-id i-bad; then
	t_fail "run did not fail"
elif ! expect_rc 1 fbs --root "$R2" --json; then
	t_fail "exit code"
elif [ "$(jget 'j["state"], j["counts"]["done"], j["counts"]["failed"], j["counts"]["skipped"]')" != "('failed', 0, 1, 1)" ]; then
	t_fail "json: $(cat "$T/out")"
elif [ "$(jget '[(m["id"], m["state"], m["exit_code"]) for m in j["modules"]]')" != "[('broken', 'failed', 3), ('after-broken', 'skipped', None)]" ]; then
	t_fail "modules: $(cat "$T/out")"
elif ! jget 'j["modules"][0]["reason"]' | grep -q 'exit code 3'; then
	t_fail "reason: $(cat "$T/out")"
else t_pass; fi

t_case "failed: the text says why; --wait returns 1 at once"
if expect_rc 1 fbs --root "$R2" && grep -qx 'state: failed' "$T/out" &&
	grep -q '^failed: broken: exit code 3' "$T/out" && grep -q '^skipped: after-broken: requires broken' "$T/out" &&
	expect_rc 1 fbs --root "$R2" --wait --timeout 20; then t_pass; else t_fail "$(cat "$T/out")"; fi

# ---------------------------------------------------------------- hanging
R3=$T/hanging
new_root "$R3"
fb_conf "$R3"
"$FIRSTBOOT" run --root "$R3" --user-data "$T/hang.tgz" --instance-id i-hang >"$T/hang.log" 2>&1 &
hpid=$!
if ! wait_for 20 hang_running "$R3"; then
	t_case "a run hanging in a module"
	t_fail "the hang module never started: $(cat "$T/hang.log")"
else
	t_case "hanging: status exits 2 with the running module and its elapsed time"
	if ! expect_rc 2 fbs --root "$R3" --json; then
		t_fail "exit code"
	elif [ "$(jget 'j["state"], j["current"], j["current_elapsed_ms"] >= 0, j["modules"][0]["state"], j["modules"][0]["attempts"]')" != "('running', 'hang', True, 'running', 1)" ]; then
		t_fail "json: $(cat "$T/out")"
	elif ! expect_rc 2 fbs --root "$R3" || ! grep -qE '^running: hang \(attempt 1, [0-9]+\.[0-9]{3}s\)$' "$T/out" ||
		! grep -qx 'modules: 0 done, 0 failed, 0 skipped, 1 pending' "$T/out"; then
		t_fail "text: $(cat "$T/out")"
	else t_pass; fi

	t_case "hanging: --wait --timeout 1 gives up with exit 2, timed_out in --json"
	if expect_rc 2 fbs --root "$R3" --wait --timeout 1 --json &&
		[ "$(jget 'j["state"], j["timed_out"], j["current"]')" = "('running', True, 'hang')" ]; then t_pass; else t_fail "$(cat "$T/out")"; fi

	t_case "hanging: not on a terminal, a plain progress line only when something changed"
	# Two seconds span several looks at the state; nothing changes, so one line.
	if expect_rc 2 fbs --root "$R3" --wait --timeout 2 &&
		[ "$(grep -c '^running: 0/1 done, hang (attempt 1)$' "$T/out")" = 1 ] &&
		! grep -q $'\r' "$T/out" && grep -qx 'timed out after 2 s' "$T/out"; then t_pass; else t_fail "$(cat -A "$T/out")"; fi

	t_case "hanging: on a terminal, one progress line redrawn in place"
	if ! command -v script >/dev/null; then
		echo "ok - $_case # SKIP no script(1)"
	elif timeout 30 script -qec "'$FIRSTBOOT' status --root '$R3' --wait --timeout 1" /dev/null >"$T/tty.out" 2>&1
		[ $? = 2 ] && grep -q $'\r\e\\[Krunning: 0/1 done, hang (attempt 1, [0-9.]*s)' "$T/tty.out" &&
		grep -q $'\e\[Kstate: running' "$T/tty.out"; then t_pass; else t_fail "$(cat -A "$T/tty.out")"; fi

	t_case "--wait returns ready as soon as the module finishes"
	timeout 30 "$FIRSTBOOT" status --root "$R3" --wait --json >"$T/waiter.out" 2>&1 &
	wpid=$!
	touch "$R3/go"
	wait "$wpid"
	wrc=$?
	wait "$hpid"
	rrc=$?
	if [ "$wrc" = 0 ] && [ "$rrc" = 0 ] && [ "$(json_get "$T/waiter.out" 'j["state"], j["counts"]["done"]')" = "('ready', 1)" ]; then
		t_pass
	else t_fail "status --wait exited $wrc, run $rrc: $(cat "$T/waiter.out")"; fi
fi
end_hang "$R3" "$hpid"

# ---------------------------------------------------------------- killed
R4=$T/killed
new_root "$R4"
fb_conf "$R4"
# Started directly, so $! is firstboot itself.
"$FIRSTBOOT" run --root "$R4" --user-data "$T/hang.tgz" --instance-id i-killed >"$T/killed.log" 2>&1 &
kpid=$!
if ! wait_for 20 hang_running "$R4"; then
	t_case "an agent killed mid-run"
	t_fail "the hang module never started: $(cat "$T/killed.log")"
else
	t_case "agent killed mid-run: a waiting status returns 1 with state dead"
	timeout 30 "$FIRSTBOOT" status --root "$R4" --wait --json >"$T/dead.out" 2>"$T/dead.err" &
	wpid=$!
	kill -KILL "$kpid"
	wait "$kpid" 2>/dev/null
	wait "$wpid"
	wrc=$?
	if [ "$wrc" != 1 ]; then
		t_fail "status --wait exited $wrc (124: it hung): $(cat "$T/dead.out" "$T/dead.err")"
	elif [ "$(json_get "$T/dead.out" 'j["state"], j["timed_out"], j["current"], j["current_elapsed_ms"], "run lock" in j["error"]')" != "('dead', False, 'hang', None, True)" ]; then
		t_fail "json: $(cat "$T/dead.out")"
	else t_pass; fi

	t_case "agent killed mid-run: status says dead and names the interrupted module"
	if expect_rc 1 fbs --root "$R4" && grep -qx 'state: dead' "$T/out" &&
		grep -qx 'interrupted: hang (attempt 1)' "$T/out" && grep -q '^error: the agent stopped' "$T/out" &&
		expect_rc 1 fbs --root "$R4" --wait; then t_pass; else t_fail "$(cat "$T/out")"; fi

	t_case "agent killed mid-run: analyze says dead, with no duration for the run"
	if expect_rc 0 "$FIRSTBOOT" analyze --root "$R4" --json &&
		[ "$(jget 'j["state"], j["duration_ms"], [(m["id"], m["state"], m["boot"]) for m in j["modules"]], [(r["boot"], r["state"]) for r in j["runs"]]')" = "('dead', None, [('hang', 'running', 1)], [(1, 'dead')])" ]; then t_pass; else t_fail "$(cat "$T/out")"; fi
fi
end_hang "$R4" "$kpid"

t_case "after a dead run the next run resumes and status is ready"
touch "$R4/go"
if expect_rc 0 fb_run "$R4" --user-data "$T/hang.tgz" --instance-id i-killed &&
	expect_rc 0 fbs --root "$R4" --json && [ "$(jget 'j["state"], j["boot"]')" = "('ready', 2)" ]; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

# ---------------------------------------------------------------- analyze
# The recorded state: boot 1 of i-0fixture failed in app; boot 2 ran app
# again and failed in it, carried docker over and skipped nginx.
RA=$T/recorded
new_root "$RA"
mkdir -p "$RA/var/lib/firstboot/instances/i-0fixture/runs"
cp "$CASES/status.json" "$RA/var/lib/firstboot/status.json"
cp "$CASES"/runs/boot-*.json "$RA/var/lib/firstboot/instances/i-0fixture/runs/"

t_case "analyze of a recorded state matches tests/cases/analyze/expected.txt"
if expect_rc 0 "$FIRSTBOOT" analyze --root "$RA" && diff -u "$CASES/expected.txt" "$T/out" >"$T/diff"; then t_pass; else t_fail "$(head -n 40 "$T/diff")"; fi

t_case "analyze --json of a recorded state matches tests/cases/analyze/expected.json"
if expect_rc 0 "$FIRSTBOOT" analyze --root "$RA" --json &&
	python3 - "$CASES/expected.json" "$T/out" >"$T/diff" 2>&1 <<'EOP'; then t_pass; else t_fail "$(head -n 40 "$T/diff")"; fi
import json, sys
want, got = (json.load(open(p)) for p in sys.argv[1:3])
if want != got:
    print(json.dumps(got, indent=2))
    sys.exit(1)
EOP

t_case "analyze of real runs: slowest first, every boot's run"
if ! expect_rc 1 fb_run "$R2" --user-data "$T/bad.tgz" --instance-id i-bad; then
	t_fail "second run did not fail"
elif ! expect_rc 0 "$FIRSTBOOT" analyze --root "$R2" --json; then
	t_fail "analyze failed"
elif [ "$(jget '[r["boot"] for r in j["runs"]], [r["state"] for r in j["runs"]], j["state"], j["boot"]')" != "([1, 2], ['failed', 'failed'], 'failed', 2)" ]; then
	t_fail "runs: $(cat "$T/out")"
elif [ "$(jget '(lambda d: d == sorted(d, reverse=True))([m["duration_ms"] for m in j["modules"]]) and j["modules"][0]["id"] == "broken" and j["agent_ms"] >= 0')" != True ]; then
	t_fail "order: $(cat "$T/out")"
elif ! expect_rc 0 "$FIRSTBOOT" analyze --root "$R2" || ! grep -q 'agent overhead' "$T/out" ||
	[ "$(grep -cE '^ +[12]  [0-9-]+ [0-9:]+ UTC .* failed .* i-bad$' "$T/out")" != 2 ]; then
	t_fail "text: $(cat "$T/out")"
else t_pass; fi

t_case "analyze with nothing recorded, or a corrupt status.json: exit 1 naming the file"
RC=$T/corrupt
new_root "$RC"
if ! expect_rc 1 "$FIRSTBOOT" analyze --root "$R0" || ! grep -q 'No run recorded' "$T/err"; then
	t_fail "no run: $(cat "$T/err")"
else
	mkdir -p "$RC/var/lib/firstboot"
	printf '{"state": "ready",\n  "boot": }\n' >"$RC/var/lib/firstboot/status.json"
	if expect_rc 1 "$FIRSTBOOT" analyze --root "$RC" && grep -q "status.json:2:" "$T/err" &&
		expect_rc 1 fbs --root "$RC" && grep -q "status.json:2:" "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi
fi
