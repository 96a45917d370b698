#!/bin/bash
# The controller callback (phone-home) of `firstboot run` against
# tests/e2e/peers/receiver.py on loopback: the ready and the failure
# report, the HMAC signature, retries on 5xx, a controller that is down,
# refuses, redirects or hangs (the run still finishes, ready), and reruns
# that must not call back again.
# SC2154: start_peer sets *_port.
# shellcheck disable=SC2154
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

command -v ssh-keygen >/dev/null || "$TOP/packaging/deps.sh" >&2
if ! command -v ssh-keygen >/dev/null; then
	echo "not ok - ssh-keygen (openssh-client) is needed; packaging/deps.sh could not install it"
	exit 1
fi

TOKEN=cb-token-5f0c2e
SECRET=pa55-w0rd-in-tail

# conf ROOT [EXTRA-LINES]: a fast firstboot.conf; EXTRA-LINES add keys or
# replace the fast defaults.
conf() {
	local extra=${2:-} line
	mkdir -p "$1/etc/firstboot"
	{
		for line in "retry_backoff_ms: 10" "kill_grace_ms: 300" "phone_home_backoff_ms: 10" \
			"phone_home_timeout_ms: 2000" "phone_home_deadline_ms: 5000" "http_attempts: 2"; do
			grep -q "^${line%%:*}:" <<<"$extra" || echo "$line"
		done
		printf '%s' "$extra"
	} >"$1/etc/firstboot/firstboot.conf"
}
st() { json_get "$1/var/lib/firstboot/status.json" "$2"; }
posts() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
# check_record FILE N PYTHON: runs PYTHON with rec = the Nth (1-based)
# recorded POST, body = its parsed JSON body; fails on an AssertionError.
check_record() {
	python3 - "$1" "$2" "$TOKEN" <<EOP
import hashlib, hmac, json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
rec = recs[int(sys.argv[2]) - 1]
body = json.loads(rec["body"])
token = sys.argv[3]
$3
EOP
}

# A bundle whose modules succeed; URL is filled in per case.
# mkcb DIR URL: bundle.yaml with phone_home at URL (none when URL is -).
mkcb() {
	local b=$1 url=$2
	mkdir -p "$b"
	{
		printf 'version: 1\nname: cb\nhostname: cb-host-1\n'
		[ "$url" != - ] && printf 'phone_home: {url: "%s", token: "%s"}\n' "$url" "$TOKEN"
		printf 'modules:\n  - id: alpha\n  - id: beta\n'
	} >"$b/bundle.yaml"
	mkmodule "$b" alpha '' <<<$'#!/bin/sh\necho alpha ran\nsleep 0.05'
	mkmodule "$b" beta 'after: [alpha]' <<<$'#!/bin/sh\necho beta ran'
	"$TOP/tests/e2e/mkbundle.sh" "$b" "$b.tgz"
}

# --- the ready callback ---

start_peer ok receiver.py --record "$T/ok.jsonl" --token "$TOKEN"
R=$T/r1
new_root "$R"
conf "$R"
mkdir -p "$R/etc/ssh"
ssh-keygen -q -t ed25519 -N '' -C root@cb -f "$R/etc/ssh/ssh_host_ed25519_key"
ssh-keygen -q -t rsa -b 2048 -N '' -C root@cb -f "$R/etc/ssh/ssh_host_rsa_key"
FP_ED=$(ssh-keygen -lf "$R/etc/ssh/ssh_host_ed25519_key.pub" | cut -d' ' -f2)
FP_RSA=$(ssh-keygen -lf "$R/etc/ssh/ssh_host_rsa_key.pub" | cut -d' ' -f2)
mkcb "$T/b1" "http://127.0.0.1:$ok_port/callback"

t_case "ready: the run is ready and calls back exactly once"
if expect_rc 0 "$FIRSTBOOT" run --root "$R" --user-data "$T/b1.tgz" --instance-id i-cb-1 &&
	[ -f "$R/var/lib/firstboot/ready" ] && [ "$(posts "$T/ok.jsonl")" = 1 ] &&
	[ "$(st "$R" 'j["phone_home"]["state"], j["phone_home"]["attempts"]')" = "('sent', 1)" ]; then
	t_pass
else t_fail "posts: $(posts "$T/ok.jsonl"), status: $(st "$R" 'j["phone_home"]')"; fi

t_case "ready: the body has status, instance, hostname and every module with its duration"
if check_record "$T/ok.jsonl" 1 '
assert rec["path"] == "/callback", rec["path"]
assert rec["headers"]["Content-Type"] == "application/json", rec["headers"]
assert body["state"] == "ready", body["state"]
assert body["instance_id"] == "i-cb-1" and body["hostname"] == "cb-host-1", body
assert body["error"] is None and "failed_module" not in body and "log_tail" not in body, body
mods = body["modules"]
assert [m["id"] for m in mods] == ["alpha", "beta"], mods
for m in mods:
    assert m["state"] == "done" and m["exit_code"] == 0 and m["attempts"] == 1, m
    assert isinstance(m["duration_ms"], int) and m["duration_ms"] >= 0, m
    assert isinstance(m["started_ms"], int) and m["started_ms"] > 0, m
# alpha sleeps 50 ms: its duration is measured, not made up.
assert mods[0]["duration_ms"] >= 50, mods[0]
assert body["counts"]["done"] == 2, body["counts"]
assert isinstance(body["addresses"], list), body
'; then t_pass; else t_fail "see above"; fi

t_case "ready: the SSH host key fingerprints are ssh-keygen's"
if check_record "$T/ok.jsonl" 1 "
keys = {k['file']: k for k in body['ssh_host_keys']}
assert set(keys) == {'/etc/ssh/ssh_host_ed25519_key.pub', '/etc/ssh/ssh_host_rsa_key.pub'}, keys
assert keys['/etc/ssh/ssh_host_ed25519_key.pub']['type'] == 'ssh-ed25519', keys
assert keys['/etc/ssh/ssh_host_ed25519_key.pub']['fingerprint'] == '$FP_ED', keys
assert keys['/etc/ssh/ssh_host_rsa_key.pub']['type'] == 'ssh-rsa', keys
assert keys['/etc/ssh/ssh_host_rsa_key.pub']['fingerprint'] == '$FP_RSA', keys
"; then t_pass; else t_fail "see above"; fi

t_case "ready: X-Firstboot-Signature is sha256=<HMAC-SHA256 of the body with the token>"
if check_record "$T/ok.jsonl" 1 '
want = "sha256=" + hmac.new(token.encode(), rec["body"].encode(), hashlib.sha256).hexdigest()
assert rec["headers"]["X-Firstboot-Signature"] == want, rec["headers"]
assert rec["signature_ok"] is True, rec
wrong = "sha256=" + hmac.new(b"another-token", rec["body"].encode(), hashlib.sha256).hexdigest()
assert wrong != want
'; then t_pass; else t_fail "see above"; fi

t_case "ready: the token is in no log"
if ! grep -rqF "$TOKEN" "$R/var/log/firstboot" "$T/err" && ! grep -qF "$TOKEN" "$R/var/lib/firstboot/status.json"; then
	t_pass
else t_fail "the token was logged"; fi

t_case "a rerun on the same instance that runs nothing does not call back again"
if expect_rc 0 "$FIRSTBOOT" run --root "$R" --user-data "$T/b1.tgz" --instance-id i-cb-1 &&
	[ "$(posts "$T/ok.jsonl")" = 1 ] && [ "$(st "$R" 'j["boot"]')" = 2 ] &&
	[ "$(st "$R" 'j["phone_home"]["state"]')" = sent ] &&
	[ "$(st "$R" '[m["ran"] for m in j["modules"]]')" = "[False, False]" ]; then
	t_pass
else t_fail "posts: $(posts "$T/ok.jsonl"), status: $(st "$R" 'j["phone_home"]')"; fi

t_case "a new instance id on the same root calls back again"
if expect_rc 0 "$FIRSTBOOT" run --root "$R" --user-data "$T/b1.tgz" --instance-id i-cb-2 &&
	[ "$(posts "$T/ok.jsonl")" = 2 ] && check_record "$T/ok.jsonl" 2 '
assert body["instance_id"] == "i-cb-2" and body["state"] == "ready" and body["boot"] == 1, body
assert rec["signature_ok"] is True, rec
'; then t_pass; else t_fail "posts: $(posts "$T/ok.jsonl")"; fi

# --- the URL and token from firstboot.conf ---

start_peer conf receiver.py --record "$T/conf.jsonl" --token "$TOKEN" --path /hooks/ready
R=$T/r2
new_root "$R"
conf "$R" "phone_home_url: http://127.0.0.1:$conf_port/hooks/ready
phone_home_token: $TOKEN
"
mkcb "$T/b2" -
t_case "phone_home_url and phone_home_token from firstboot.conf"
if expect_rc 0 "$FIRSTBOOT" run --root "$R" --user-data "$T/b2.tgz" --instance-id i-conf &&
	[ "$(posts "$T/conf.jsonl")" = 1 ] && check_record "$T/conf.jsonl" 1 '
assert rec["path"] == "/hooks/ready", rec["path"]
assert rec["signature_ok"] is True, rec
assert body["state"] == "ready" and body["instance_id"] == "i-conf", body
'; then t_pass; else t_fail "posts: $(posts "$T/conf.jsonl")"; fi

# --- the failure callback ---

start_peer fail receiver.py --record "$T/fail.jsonl" --token "$TOKEN"
B=$T/b3
mkdir -p "$B"
cat >"$B/bundle.yaml" <<EOY
version: 1
name: cb-fail
phone_home: {url: "http://127.0.0.1:$fail_port/callback", token: "$TOKEN"}
modules:
  - id: good
  - id: broken
    inputs: {password: "$SECRET"}
  - id: dependent
EOY
mkmodule "$B" good '' <<<$'#!/bin/sh\necho good ran'
mkmodule "$B" broken 'inputs:
  - {name: password, type: password, required: true}' <<'EOS'
#!/bin/bash
for i in $(seq 1 40); do echo "step $i with $PASSWORD"; done
echo "fatal: cannot use $PASSWORD" >&2
exit 3
EOS
mkmodule "$B" dependent 'requires: [broken]' <<<$'#!/bin/sh\necho dependent ran'
"$TOP/tests/e2e/mkbundle.sh" "$B" "$B.tgz"
R=$T/r3
new_root "$R"
conf "$R"

t_case "failed: exit 1, no marker, one callback with status failed"
if expect_rc 1 "$FIRSTBOOT" run --root "$R" --user-data "$B.tgz" --instance-id i-fail &&
	[ ! -e "$R/var/lib/firstboot/ready" ] && [ "$(posts "$T/fail.jsonl")" = 1 ] &&
	[ "$(st "$R" 'j["state"], j["phone_home"]["state"]')" = "('failed', 'sent')" ]; then
	t_pass
else t_fail "posts: $(posts "$T/fail.jsonl"), status: $(st "$R" 'j["state"], j["phone_home"]')"; fi

t_case "failed: the body names the failed module and carries its log tail, masked"
if check_record "$T/fail.jsonl" 1 "
assert rec['signature_ok'] is True, rec
assert body['state'] == 'failed' and body['instance_id'] == 'i-fail', body
assert body['failed_module'] == 'broken', body.get('failed_module')
mods = {m['id']: m for m in body['modules']}
assert mods['good']['state'] == 'done', mods
assert mods['broken']['state'] == 'failed' and mods['broken']['exit_code'] == 3, mods
assert mods['dependent']['state'] == 'skipped', mods
tail = body['log_tail']
assert 1 <= len(tail) <= 40, tail
# The last lines, in order, ending with the stderr line.
assert tail[-1] == 'fatal: cannot use ********', tail
assert tail[-2] == 'step 40 with ********', tail
assert 'step 1 with ********' not in tail, tail
nums = [int(l.split()[1]) for l in tail[:-1]]
assert nums == list(range(41 - len(nums), 41)), nums
assert '$SECRET' not in rec['body'], 'the secret was sent'
"; then t_pass; else t_fail "see above"; fi

t_case "failed: a rerun runs the failed module again and calls back again"
if expect_rc 1 "$FIRSTBOOT" run --root "$R" --user-data "$B.tgz" --instance-id i-fail &&
	[ "$(posts "$T/fail.jsonl")" = 2 ] && check_record "$T/fail.jsonl" 2 "
assert body['state'] == 'failed' and body['boot'] == 2 and body['failed_module'] == 'broken', body
mods = {m['id']: m for m in body['modules']}
assert mods['broken']['ran'] is True and mods['good']['ran'] is False, mods
"; then t_pass; else t_fail "posts: $(posts "$T/fail.jsonl")"; fi

# --- delivery problems ---

start_peer flaky receiver.py --record "$T/flaky.jsonl" --token "$TOKEN" --fail-first 2
R=$T/r4
new_root "$R"
conf "$R"
mkcb "$T/b4" "http://127.0.0.1:$flaky_port/callback"
t_case "500 for the first two attempts: retried, delivered on the third"
if expect_rc 0 "$FIRSTBOOT" run --root "$R" --user-data "$T/b4.tgz" --instance-id i-flaky &&
	[ "$(posts "$T/flaky.jsonl")" = 3 ] &&
	[ "$(st "$R" 'j["phone_home"]["state"], j["phone_home"]["attempts"], j["phone_home"]["error"]')" = "('sent', 3, None)" ] &&
	check_record "$T/flaky.jsonl" 3 '
assert all(r["body"] == recs[0]["body"] for r in recs), "the body changed between attempts"
assert all(r["signature_ok"] is True for r in recs), recs
assert body["state"] == "ready"
'; then t_pass; else t_fail "posts: $(posts "$T/flaky.jsonl"), status: $(st "$R" 'j["phone_home"]')"; fi

start_peer refuse receiver.py --record "$T/refuse.jsonl" --mode fail --fail-status 403
R=$T/r5
new_root "$R"
conf "$R"
mkcb "$T/b5" "http://127.0.0.1:$refuse_port/callback"
t_case "a 403 is not retried; the run is still ready and status.json says why"
if expect_rc 0 "$FIRSTBOOT" run --root "$R" --user-data "$T/b5.tgz" --instance-id i-403 &&
	[ -f "$R/var/lib/firstboot/ready" ] && [ "$(posts "$T/refuse.jsonl")" = 1 ] &&
	[ "$(st "$R" 'j["state"], j["phone_home"]["state"], j["phone_home"]["attempts"]')" = "('ready', 'failed', 1)" ] &&
	st "$R" 'j["phone_home"]["error"]' | grep -q 'HTTP 403: failing on purpose'; then
	t_pass
else t_fail "status: $(st "$R" 'j["phone_home"]')"; fi

R=$T/r6
new_root "$R"
dead=$(free_port)
conf "$R" "phone_home_url: http://127.0.0.1:$dead/callback
phone_home_attempts: 3
"
mkcb "$T/b6" -
t_case "controller down: the run is ready (exit 0, marker) and status.json says failed, with the error"
if expect_rc 0 timeout 30 "$FIRSTBOOT" run --root "$R" --user-data "$T/b6.tgz" --instance-id i-down &&
	[ -f "$R/var/lib/firstboot/ready" ] &&
	[ "$(st "$R" 'j["state"], j["phone_home"]["state"], j["phone_home"]["attempts"]')" = "('ready', 'failed', 3)" ] &&
	st "$R" 'j["phone_home"]["error"]' | grep -q 'gave up after 3 attempts in .* ms: .*Connection refused' &&
	"$FIRSTBOOT" status --root "$R" >/dev/null; then
	t_pass
else t_fail "status: $(st "$R" 'j["state"], j["phone_home"]')"; fi

t_case "controller back: a rerun that runs nothing delivers the undelivered callback once"
start_peer back receiver.py --record "$T/back.jsonl" --token "$TOKEN"
conf "$R" "phone_home_url: http://127.0.0.1:$back_port/callback
phone_home_token: $TOKEN
"
if expect_rc 0 "$FIRSTBOOT" run --root "$R" --user-data "$T/b6.tgz" --instance-id i-down &&
	[ "$(posts "$T/back.jsonl")" = 1 ] && [ "$(st "$R" 'j["phone_home"]["state"]')" = sent ] &&
	check_record "$T/back.jsonl" 1 'assert body["state"] == "ready" and rec["signature_ok"] is True, body' &&
	expect_rc 0 "$FIRSTBOOT" run --root "$R" --user-data "$T/b6.tgz" --instance-id i-down &&
	[ "$(posts "$T/back.jsonl")" = 1 ]; then
	t_pass
else t_fail "posts: $(posts "$T/back.jsonl"), status: $(st "$R" 'j["phone_home"]')"; fi

start_peer hang receiver.py --record "$T/hang.jsonl" --mode hang
R=$T/r7
new_root "$R"
# Without the deadline, 100 attempts of 1 s each would take 100 s: the
# run ending well inside the 30 s bound shows the deadline cut it short.
conf "$R" "phone_home_url: http://127.0.0.1:$hang_port/callback
phone_home_attempts: 100
phone_home_timeout_ms: 1000
phone_home_deadline_ms: 2500
"
mkcb "$T/b7" -
t_case "controller hangs: the run ends at the deadline, ready, phone_home failed"
if expect_rc 0 timeout 30 "$FIRSTBOOT" run --root "$R" --user-data "$T/b7.tgz" --instance-id i-hang &&
	[ -f "$R/var/lib/firstboot/ready" ] && [ "$(posts "$T/hang.jsonl")" -ge 1 ] &&
	[ "$(posts "$T/hang.jsonl")" -le 3 ] &&
	[ "$(st "$R" 'j["state"], j["phone_home"]["state"]')" = "('ready', 'failed')" ] &&
	[ "$(st "$R" 'j["phone_home"]["attempts"]')" -ge "$(posts "$T/hang.jsonl")" ] &&
	[ "$(st "$R" 'j["phone_home"]["attempts"]')" -le 3 ] &&
	st "$R" 'j["phone_home"]["error"]' | grep -q 'gave up after [1-3] attempts\? in'; then
	t_pass
else t_fail "posts: $(posts "$T/hang.jsonl"), status: $(st "$R" 'j["phone_home"]')"; fi

# --- redirects: only a 2xx to the POST itself is delivery ---

# A controller answering the callback with a redirect to /moved, which
# answers 200 to a POST and to a GET: a client that followed the redirect
# (or re-sent the POST as a GET without its body, as 301 and 302 invite)
# would count the callback as delivered.
for code in 301 302 307 308; do
	start_peer "r$code" receiver.py --record "$T/r$code.jsonl" --token "$TOKEN" --mode redirect --fail-status "$code"
	port_var="r${code}_port"
	R=$T/rr$code
	new_root "$R"
	conf "$R" $'phone_home_attempts: 3\n'
	mkcb "$T/br$code" "http://127.0.0.1:${!port_var}/callback"
	t_case "a $code to the callback is not delivery: retried 3 times, never followed; ready stays, phone_home failed naming the Location"
	if expect_rc 0 "$FIRSTBOOT" run --root "$R" --user-data "$T/br$code.tgz" --instance-id "i-r$code" &&
		[ -f "$R/var/lib/firstboot/ready" ] &&
		[ "$(st "$R" 'j["state"], j["phone_home"]["state"], j["phone_home"]["attempts"]')" = "('ready', 'failed', 3)" ] &&
		st "$R" 'j["phone_home"]["error"]' |
		grep -qF "gave up after 3 attempts in" &&
		st "$R" 'j["phone_home"]["error"]' |
		grep -qF "HTTP $code (a redirect to http://127.0.0.1:${!port_var}/moved, not followed)" &&
		python3 - "$T/r$code.jsonl" <<'EOP'; then t_pass; else t_fail "status: $(st "$R" 'j["phone_home"]'), requests: $(cat "$T/r$code.jsonl")"; fi
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert [(r["method"], r["path"]) for r in recs] == [("POST", "/callback")] * 3, recs
assert all(r["signature_ok"] is True for r in recs), recs
EOP
done

start_peer rthen receiver.py --record "$T/rthen.jsonl" --token "$TOKEN" --mode redirect --fail-status 301 --fail-first 2
R=$T/rrthen
new_root "$R"
conf "$R" $'phone_home_attempts: 3\n'
mkcb "$T/brthen" "http://127.0.0.1:$rthen_port/callback"
t_case "301 twice, then 200 to the POST itself: delivered on the third attempt"
if expect_rc 0 "$FIRSTBOOT" run --root "$R" --user-data "$T/brthen.tgz" --instance-id i-rthen &&
	[ "$(st "$R" 'j["state"], j["phone_home"]["state"], j["phone_home"]["attempts"], j["phone_home"]["error"]')" = "('ready', 'sent', 3, None)" ] &&
	python3 - "$T/rthen.jsonl" <<'EOP'; then t_pass; else t_fail "status: $(st "$R" 'j["phone_home"]'), requests: $(cat "$T/rthen.jsonl")"; fi
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert [(r["method"], r["path"]) for r in recs] == [("POST", "/callback")] * 3, recs
assert json.loads(recs[2]["body"])["state"] == "ready", recs[2]
EOP

# --- progress events (opt-in) ---

start_peer prog receiver.py --record "$T/prog.jsonl" --token "$TOKEN"
R=$T/rp
new_root "$R"
conf "$R" $'phone_home_progress: true\n'
mkcb "$T/bp" "http://127.0.0.1:$prog_port/callback"

t_case "progress: module started/finished events arrive signed and in order, then the callback"
if expect_rc 0 "$FIRSTBOOT" run --root "$R" --user-data "$T/bp.tgz" --instance-id i-prog &&
	python3 - "$T/prog.jsonl" <<'EOP'; then t_pass; else t_fail "$(cat "$T/prog.jsonl")"; fi
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
bodies = [json.loads(r["body"]) for r in recs]
assert all(r["signature_ok"] is True for r in recs), recs
ev = [(b.get("event"), b.get("module")) for b in bodies[:-1]]
assert ev == [("module_started", "alpha"), ("module_finished", "alpha"),
              ("module_started", "beta"), ("module_finished", "beta")], ev
assert bodies[1]["exit_code"] == 0 and bodies[1]["duration_ms"] >= 50, bodies[1]
assert all(b["instance_id"] == "i-prog" for b in bodies[:-1]), bodies
assert bodies[-1]["state"] == "ready" and bodies[-1]["phone_home"]["progress_sent"] == 4, bodies[-1]
EOP

t_case "progress: a hanging controller drops events within the per-event bound; the run is still ready"
start_peer hangp receiver.py --record "$T/hangp.jsonl" --token "$TOKEN" --mode hang
R=$T/rph
new_root "$R"
conf "$R" $'phone_home_progress: true\nphone_home_progress_timeout_ms: 300\nphone_home_deadline_ms: 1000\nphone_home_attempts: 1\n'
mkcb "$T/bph" "http://127.0.0.1:$hangp_port/callback"
start=$(date +%s%N)
if expect_rc 0 timeout 30 "$FIRSTBOOT" run --root "$R" --user-data "$T/bph.tgz" --instance-id i-ph &&
	[ -f "$R/var/lib/firstboot/ready" ] &&
	[ "$(st "$R" 'j["phone_home"]["progress_dropped"], j["phone_home"]["progress_sent"]')" = "(4, 0)" ]; then
	echo "  # run took $((($(date +%s%N) - start) / 1000000)) ms with 4 dropped events"
	t_pass
else t_fail "$(st "$R" 'j["phone_home"]')"; fi
