#!/bin/bash
# firstboot agent against a real redis-server (Debian's) on a 127.0.0.1
# port, started and stopped here. Jobs are queued by `imagegen job submit`
# and, for the refusals, written by hand (python3: hmac, json) and pushed
# with redis-cli. Every wait is bounded.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
	echo "not ok - the agent tests need redis-server and redis-cli (packaging/deps.sh)"
	exit 1
fi

R=$T/root
new_root "$R"
MODS=$R/usr/lib/firstboot/modules
mkdir -p "$R/etc/firstboot" "$T/redis"
SECRET=Sx$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$SECRET" >"$T/secret"
chmod 0600 "$T/secret"
cp "$T/secret" "$R/etc/firstboot/jobs.secret"
AGENT_ID=t1

# Modules: their manifests and scripts, in the modules directory.
module() { # ID MANIFEST-EXTRA, script on stdin
	mkdir -p "$MODS/$1"
	printf 'id: %s\nname: %s\nversion: "1.0"\n%s\n' "$1" "$1" "${2:-}" >"$MODS/$1/manifest.yml"
	cat >"$MODS/$1/install.sh"
	chmod 0755 "$MODS/$1/install.sh"
}
module hello 'inputs:
  - {name: greeting, type: string, default: hi, validation: {pattern: "^[a-z]+$"}}
  - {name: admin_password, type: password}
  - {name: port, type: port, default: 80}' <<'EOF'
#!/bin/bash
set -euo pipefail
echo "$GREETING port=$PORT pw=${ADMIN_PASSWORD:-none} job=$PROVISIONING_JOB fe=$DEBIAN_FRONTEND id=$FIRSTBOOT_JOB_ID"
EOF
module fails <<'EOF'
#!/bin/sh
echo "about to fail" >&2
exit 3
EOF
module flaky <<EOF
#!/bin/sh
n=\$(cat "$T/flaky.count" 2>/dev/null || echo 0)
n=\$((n + 1))
echo "\$n" >"$T/flaky.count"
echo "attempt \$FIRSTBOOT_ATTEMPT"
[ "\$n" -ge 2 ] || exit 2
EOF
module slow <<EOF
#!/bin/sh
echo \$\$ >"$T/slow.pid"
echo started
i=0
while [ \$i -lt 600 ]; do sleep 0.1; i=\$((i + 1)); done
EOF
module brief <<EOF
#!/bin/sh
echo started >"$T/brief.started"
sleep 1
echo done
EOF

module mid <<EOF
#!/bin/sh
echo started >"$T/mid.started"
i=0
while [ ! -e "$T/mid.go" ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i + 1)); done
echo finished
EOF
# gate: runs until $T/gate.go exists (the test decides when it ends).
module gate <<EOF
#!/bin/sh
echo started >"$T/gate.started"
i=0
while [ ! -e "$T/gate.go" ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i + 1)); done
echo gated
EOF

PORT=
start_redis() { redis_start "$T/redis"; }
rcli() { redis-cli -h 127.0.0.1 -p "$PORT" "$@"; }
rping() { redis_ping; }
if ! start_redis; then
	echo "not ok - redis-server starts"
	cat "$T/redis/redis.log"
	exit 1
fi
URL=redis://127.0.0.1:$PORT

cat >"$R/etc/firstboot/firstboot.conf" <<EOF
retry_backoff_ms: 10
kill_grace_ms: 300
jobs:
  redis_url: $URL
  agent_id: $AGENT_ID
  max_job_bytes: 4096
  max_skew_s: 300
  stop_timeout_s: 2
  heartbeat_s: 1
  metrics_file: /var/lib/node-exporter/firstboot.prom
EOF

AGENT_PID=
start_agent() {
	# The log is kept across restarts: this agent's line is one more.
	local n
	touch "$T/agent.log"
	n=$(ready_lines)
	NOTIFY_SOCKET=${AGENT_NOTIFY:-} "$FIRSTBOOT" agent --root "$R" >>"$T/agent.log" 2>&1 &
	AGENT_PID=$!
	_pids+=("$AGENT_PID")
	wait_for 10 ready_lines_over "$n"
}
ready_lines() { grep -c "waiting for jobs on agent:$AGENT_ID:jobs" "$T/agent.log" 2>/dev/null; }
ready_lines_over() { [ "$(ready_lines)" -gt "$1" ]; }
stop_agent() {
	kill "$AGENT_PID" 2>/dev/null
	reap "$AGENT_PID" 20 2>/dev/null
}
submit() { # ARGS... (to imagegen job submit), waits
	"$IMAGEGEN" job submit --redis "$URL" --agent "$AGENT_ID" --secret-file "$T/secret" --wait --timeout 20 "$@"
}
result() { rcli GET "job:$1:result"; }
# result_field JOB EXPR: a Python expression on the result (j).
result_field() {
	result "$1" >"$T/result.json"
	json_get "$T/result.json" "$2"
}

t_case "the agent starts and says it waits for jobs"
if start_agent; then t_pass; else
	t_fail "no ready line"
	cat "$T/agent.log"
	exit 1
fi

t_case "three trivial jobs succeed, each with its result and a 0600 log"
ok=1
for g in hi yo hey; do
	if ! expect_rc 0 submit hello greeting=$g admin_password=pw-$g-Secret; then ok=0; fi
	id=$(head -n1 "$T/out")
	[ "$(result_field "$id" 'j["status"], j["exit_code"], j["attempts"], j["app_id"], "duration_ms" in j and "finished_at" in j, j["log_tail"][-1]')" = "('succeeded', 0, 1, 'hello', True, '$g port=80 pw=******** job=true fe=noninteractive id=$id')" ] || ok=0
	grep -q "^$g port=80 pw=\*\*\*\*\*\*\*\* job=true fe=noninteractive id=$id\$" "$R/var/log/firstboot/jobs/$id.log" || ok=0
	[ "$(stat -c %a "$R/var/log/firstboot/jobs/$id.log")" = 600 ] || ok=0
	grep -q "^$g port=80" "$T/err" || ok=0 # --wait streamed the output
done
if [ "$ok" = 1 ]; then
	t_pass
else
	t_fail "a job's result or log is wrong: $(cat "$T/result.json")"
fi

t_case "a failing job: failed, exit code 3, not retried; --wait exits 1"
if expect_rc 1 submit fails; then
	id=$(head -n1 "$T/out")
	if [ "$(result_field "$id" 'j["status"], j["exit_code"], j["attempts"], j["log_tail"]')" = "('failed', 3, 1, ['about to fail'])" ]; then
		t_pass
	else
		t_fail "$(cat "$T/result.json")"
	fi
else t_fail "exit code"; fi

t_case "exit 2 is retried: succeeded at attempt 2"
if expect_rc 0 submit flaky; then
	id=$(head -n1 "$T/out")
	if [ "$(result_field "$id" 'j["status"], j["attempts"]')" = "('succeeded', 2)" ]; then
		t_pass
	else
		t_fail "$(cat "$T/result.json")"
	fi
else t_fail "exit code"; fi

t_case "the job's process group cannot be recorded: said in the log, the job still runs"
mkdir "$R/var/lib/firstboot/running-module"
if expect_rc 0 submit hello greeting=pg; then
	id=$(head -n1 "$T/out")
	if grep -q "Cannot record job $id's process group in .*running-module: Is a directory" "$T/agent.log"; then
		t_pass
	else t_fail "not said"; fi
else t_fail "the job"; fi
rmdir "$R/var/lib/firstboot/running-module"

t_case "imagegen job status reads a result (and exits 2 for none)"
if expect_rc 0 "$IMAGEGEN" job status --redis "$URL" "$id" && grep -q '"succeeded"' "$T/out" &&
	expect_rc 2 "$IMAGEGEN" job status --redis "$URL" 00000000-0000-4000-8000-000000000000; then
	t_pass
else t_fail "status"; fi

# ---- refusals: each has its reason, and the agent keeps serving ----

# Every hand-made element at once (one python3): $T/elem.KIND, its job_id
# in $T/id.KIND.
python3 - "$SECRET" "$AGENT_ID" "$T" <<'EOF'
import hashlib, hmac, json, sys, time, uuid
secret, agent, out = sys.argv[1:4]
now = int(time.time())
for kind in ["ok", "bad_signature", "missing_signature", "wrong_agent", "expired", "skew",
             "unknown_app", "traversal", "bad_inputs", "unknown_input", "malformed", "oversize"]:
    jid = str(uuid.uuid4())
    p = {"job_id": jid, "agent_id": agent, "app_id": "hello", "issued_at": now,
         "inputs": {"greeting": "hi"}}
    key = secret.encode()
    if kind == "wrong_agent": p["agent_id"] = "someone-else"
    if kind == "expired": p["issued_at"], p["expires_at"] = now - 20, now - 10
    if kind == "skew": p["issued_at"] = now - 3600
    if kind == "unknown_app": p["app_id"] = "nosuchapp"
    if kind == "traversal": p["app_id"] = "../../bin"
    if kind == "bad_inputs": p["inputs"] = {"greeting": "UPPER; rm -rf /"}
    if kind == "unknown_input": p["inputs"] = {"what": "x"}
    if kind == "bad_signature": key = b"another-secret-of-some-length"
    if kind == "oversize": p["inputs"] = {"greeting": "a" * 5000}
    text = json.dumps(p)
    sig = "sha256=" + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
    e = {"payload": text, "signature": sig}
    if kind == "missing_signature": del e["signature"]
    elem = json.dumps(e)
    if kind == "malformed": elem = elem[:-5]
    open(f"{out}/elem.{kind}", "w").write(elem)
    open(f"{out}/id.{kind}", "w").write(jid)
EOF
craft() { cp "$T/elem.$1" "$T/elem" && cat "$T/id.$1"; }
push_elem() { rcli -x LPUSH "agent:$AGENT_ID:jobs" <"$T/elem" >/dev/null; }
has_result() { [ -n "$(result "$1")" ]; }
in_processing() { [ "$(rcli LLEN "agent:$AGENT_ID:processing")" = "$1" ]; }
# taken JOB: the agent has moved JOB to processing.
taken() { [[ $(rcli LRANGE "agent:$AGENT_ID:processing" 0 -1) == *"$1"* ]]; }

refused() { # KIND REASON: pushed, refused with REASON, nothing run
	local kind=$1 reason=$2 id
	id=$(craft "$kind")
	push_elem
	if ! wait_for 10 has_result "$id"; then
		echo "  # no result for $kind" >&2
		return 1
	fi
	[ "$(result_field "$id" 'j["status"], j["reason"]')" = "('rejected', '$reason')" ] || {
		echo "  # $(cat "$T/result.json")" >&2
		return 1
	}
	[ ! -e "$R/var/log/firstboot/jobs/$id.log" ]
}
serves() { expect_rc 0 submit hello greeting=after; }

for c in bad_signature:bad_signature missing_signature:missing_signature wrong_agent:wrong_agent \
	expired:expired skew:skew unknown_app:unknown_app traversal:malformed bad_inputs:bad_inputs \
	unknown_input:bad_inputs; do
	t_case "refused: ${c%%:*} (reason ${c#*:}), and the agent keeps serving"
	if refused "${c%%:*}" "${c#*:}" && serves; then t_pass; else t_fail "${c%%:*}"; fi
done

for kind in malformed oversize; do
	t_case "refused: $kind (logged with its reason), and the agent keeps serving"
	craft "$kind" >/dev/null
	push_elem
	if wait_for 10 grep -q "rejected ($kind)" "$T/agent.log" && serves; then t_pass; else t_fail "$kind"; fi
done

t_case "refused: replay of a job_id (the first result stays)"
id=$(craft ok)
push_elem
if wait_for 10 has_result "$id" && [ "$(result_field "$id" 'j["status"]')" = succeeded ]; then
	push_elem
	if wait_for 10 grep -q "Job $id rejected (replay)" "$T/agent.log" &&
		[ "$(result_field "$id" 'j["status"]')" = succeeded ] && serves; then
		t_pass
	else t_fail "the replay was not refused, or replaced the result"; fi
else t_fail "the first run"; fi

t_case "a replay publishes no final update: its refusal was not stored (the first result stays)"
# A subscriber to the job's channel; once the agent is done with the
# replay (processing empty again), a marker published here comes after
# anything the agent published.
rm -f "$T/sub.out"
timeout 30 redis-cli -h 127.0.0.1 -p "$PORT" SUBSCRIBE "job:$id:updates" >"$T/sub.out" 2>&1 &
sub=$!
_pids+=("$sub")
processing_empty() { [ "$(rcli LLEN "agent:$AGENT_ID:processing")" = 0 ]; }
# replays_over N: the agent has refused the replay of $id more than N times.
replays_over() { [ "$(grep -c "Job $id rejected (replay)" "$T/agent.log")" -gt "$1" ]; }
n0=$(grep -c "Job $id rejected (replay)" "$T/agent.log")
if wait_for 10 grep -qx "job:$id:updates" "$T/sub.out"; then
	push_elem
	if wait_for 10 replays_over "$n0" && wait_for 10 processing_empty &&
		rcli PUBLISH "job:$id:updates" marker >/dev/null && wait_for 10 grep -qx marker "$T/sub.out" &&
		! grep -q rejected "$T/sub.out" && [ "$(result_field "$id" 'j["status"]')" = succeeded ] &&
		grep -q "Job $id has a result already: this one (rejected) is neither stored nor published" "$T/agent.log"; then
		t_pass
	else t_fail "$(cat "$T/sub.out")"; fi
else t_fail "no subscription"; fi
kill "$sub" 2>/dev/null
wait "$sub" 2>/dev/null

t_case "a job that expires while it waits for the run lock is refused (expired), not run"
# The lock held (as a run holds it) until $T/late.release exists, 30 s at
# most; released once the agent has taken the job and its expiry has
# passed.
rm -f "$T/late.held" "$T/late.release"
flock "$R/var/lib/firstboot/run.lock" sh -c 'touch "$1"; i=0
	while [ ! -e "$2" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done' sh "$T/late.held" "$T/late.release" &
holder=$!
_pids+=("$holder")
# past S: the clock has passed second S (the agent compares whole seconds).
past() { [ "$(date +%s)" -ge "$1" ]; }
if wait_for 10 test -e "$T/late.held"; then
	"$IMAGEGEN" job submit --redis "$URL" --agent "$AGENT_ID" --secret-file "$T/secret" --expires 2 hello greeting=late >"$T/late.id"
	# issued_at is at most now, so the expiry at most now + 2.
	expiry=$(($(date +%s) + 2))
	lid=$(cat "$T/late.id")
	wait_for 10 taken "$lid"
	wait_for 10 past "$expiry"
	touch "$T/late.release"
	wait "$holder" 2>/dev/null
	if wait_for 15 has_result "$lid" && [ "$(result_field "$lid" 'j["status"], j["reason"], "exit_code" in j')" = "('rejected', 'expired', False)" ] &&
		grep -q "Job $lid rejected (expired)" "$T/agent.log" && serves; then
		t_pass
	else t_fail "$(result "$lid")"; fi
else t_fail "the run lock was not taken"; fi

t_case "the heartbeat names the agent and its last job, with an expiry"
hb() { rcli GET "agent:$AGENT_ID:heartbeat" >"$T/hb.json" && [ -s "$T/hb.json" ] && [ "$(json_get "$T/hb.json" 'j["agent_id"], j["jobs_done"] > 0, j["current_job"]')" = "('$AGENT_ID', True, None)" ]; }
ttl=$(rcli TTL "agent:$AGENT_ID:heartbeat")
if wait_for 10 hb && [ "$ttl" -ge 1 ] && [ "$ttl" -le 3 ]; then t_pass; else t_fail "ttl $ttl, $(cat "$T/hb.json")"; fi

t_case "the metrics file counts jobs by app and status, and rejections by reason"
PROM=$R/var/lib/node-exporter/firstboot.prom
if grep -qE '^firstboot_agent_jobs_total\{app_id="hello",status="succeeded"\} [0-9]+$' "$PROM" &&
	grep -q '^firstboot_agent_jobs_total{app_id="fails",status="failed"} 1$' "$PROM" &&
	grep -q '^firstboot_agent_job_rejections_total{reason="bad_signature"} 1$' "$PROM" &&
	grep -q '^firstboot_agent_job_rejections_total{reason="replay"} 2$' "$PROM" &&
	grep -qE '^firstboot_agent_job_duration_seconds_bucket\{le="\+Inf"\} [0-9]+$' "$PROM"; then
	t_pass
else t_fail "$(cat "$PROM")"; fi

t_case "the replay record survives a restart"
stop_agent
start_agent
n0=$(grep -c "Job $id rejected (replay)" "$T/agent.log")
push_elem
if wait_for 10 replays_over "$n0"; then t_pass; else t_fail "not refused after a restart"; fi

# ---- Redis restarted in the middle of a job ----

t_case "Redis restarted during a job: the result arrives after the reconnect"
"$IMAGEGEN" job submit --redis "$URL" --agent "$AGENT_ID" --secret-file "$T/secret" mid >"$T/mid.id"
id=$(cat "$T/mid.id")
if wait_for 10 test -e "$T/mid.started"; then
	kill "$REDIS_PID"
	wait_for 10 proc_gone "$REDIS_PID"
	wait "$REDIS_PID" 2>/dev/null
	touch "$T/mid.go"
	# The job ends while Redis is down (the agent says so before it stores
	# the result).
	ended=0
	wait_for 10 grep -q "Job $id (mid) succeeded" "$T/agent.log" && ended=1
	start_redis
	if [ "$ended" = 1 ] && wait_for 10 rping && wait_for 20 has_result "$id" &&
		[ "$(result_field "$id" 'j["status"], j["log_tail"]')" = "('succeeded', ['finished'])" ] && serves; then
		t_pass
	else t_fail "ended while Redis was down: $ended; $(cat "$T/result.json")"; fi
else t_fail "the job did not start"; fi

# ---- Redis refuses the result (out of memory under noeviction) ----

gate_start() { # submits gate, waits for it to run; its job id in $gid
	rm -f "$T/gate.started" "$T/gate.go"
	"$IMAGEGEN" job submit --redis "$URL" --agent "$AGENT_ID" --secret-file "$T/secret" gate >"$T/gate.id" &&
		gid=$(cat "$T/gate.id") && wait_for 10 test -e "$T/gate.started"
}
oom() { rcli CONFIG SET maxmemory-policy noeviction >/dev/null && rcli CONFIG SET maxmemory "$1" >/dev/null; }

t_case "the result refused (OOM): the job stays in processing, and its result is stored once Redis takes it"
if gate_start; then
	oom 1
	touch "$T/gate.go"
	if wait_for 10 grep -q "Redis refused the result of job $gid: OOM" "$T/agent.log" &&
		in_processing 1 && [ -z "$(result "$gid")" ]; then
		oom 0
		if wait_for 15 has_result "$gid" && [ "$(result_field "$gid" 'j["status"], j["log_tail"]')" = "('succeeded', ['gated'])" ] &&
			wait_for 10 in_processing 0 && serves; then
			t_pass
		else t_fail "after OOM: $(result "$gid")"; fi
	else
		t_fail "lost: processing $(rcli LLEN "agent:$AGENT_ID:processing"), result '$(result "$gid")'"
	fi
	oom 0
else t_fail "gate did not start"; fi

t_case "the result still refused at SIGTERM: the agent stops within its bound, the job stays in processing, the next start reports it"
if gate_start; then
	oom 1
	touch "$T/gate.go"
	if wait_for 10 grep -q "Redis refused the result of job $gid" "$T/agent.log"; then
		kill -TERM "$AGENT_PID"
		reap "$AGENT_PID" 15
		rc=$?
		ok=0
		in_processing 1 && [ -z "$(result "$gid")" ] &&
			grep -q "Cannot store the result of job $gid (succeeded): the agent is stopping; it stays in agent:$AGENT_ID:processing" "$T/agent.log" && ok=1
		oom 0
		start_agent
		if [ "$rc" = 0 ] && [ "$ok" = 1 ] && wait_for 10 has_result "$gid" &&
			[ "$(result_field "$gid" 'j["status"], j["reason"]')" = "('failed', 'agent restarted')" ] &&
			wait_for 10 in_processing 0 && serves; then
			t_pass
		else t_fail "rc $rc, ok $ok, $(result "$gid")"; fi
	else t_fail "not refused"; fi
	oom 0
else t_fail "gate did not start"; fi

# ---- job_verify() failing for a reason that is not the job's ----

# nomem.so, for LD_PRELOAD (as test-hostile-root.sh's killwrite.so): json-c's
# json_tokener_new_ex() returns NULL, as it does when malloc fails, while
# $T/nomem exists; job_verify() then fails with -ENOMEM.
cat >"$T/nomem.c" <<'EOC'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>
struct json_tokener;
struct json_tokener *json_tokener_new_ex(int depth)
{
	static struct json_tokener *(*real)(int);
	const char *f = getenv("NOMEM_FILE");
	if (f && access(f, F_OK) == 0)
		return NULL;
	if (!real)
		real = (struct json_tokener * (*)(int)) dlsym(RTLD_NEXT, "json_tokener_new_ex");
	return real(depth);
}
EOC
cc -shared -fPIC -o "$T/nomem.so" "$T/nomem.c" -ldl
start_nomem_agent() {
	NOMEM_FILE=$T/nomem LD_PRELOAD=$T/nomem.so \
		ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 start_agent
}
submit_hello() { "$IMAGEGEN" job submit --redis "$URL" --agent "$AGENT_ID" --secret-file "$T/secret" hello greeting=nomem; }

t_case "job_verify out of memory for a moment: said, tried again after a pause, the job runs"
stop_agent
start_nomem_agent
touch "$T/nomem"
id=$(submit_hello)
if wait_for 10 grep -q "Cannot verify the job taken into agent:$AGENT_ID:processing (attempt 1 of 3): Cannot allocate memory; trying again in 1 s" "$T/agent.log"; then
	rm -f "$T/nomem"
	if wait_for 10 has_result "$id" && [ "$(result_field "$id" 'j["status"]')" = succeeded ] &&
		wait_for 10 in_processing 0; then
		t_pass
	else t_fail "processing $(rcli LLEN "agent:$AGENT_ID:processing"), result '$(result "$id")'"; fi
else t_fail "$(tail -5 "$T/agent.log")"; fi
rm -f "$T/nomem"

t_case "job_verify out of memory at every attempt: said, the job stays in processing (never dropped at the next start), then reported"
touch "$T/nomem"
id=$(submit_hello)
ok=0
wait_for 15 grep -q "Cannot verify the job taken into agent:$AGENT_ID:processing: Cannot allocate memory (tried 3 times); it stays there, and the next start checks it again" "$T/agent.log" &&
	in_processing 1 && [ -z "$(result "$id")" ] && ok=1
# Restarted still out of memory: the element is kept, said so.
stop_agent
start_nomem_agent
wait_for 10 grep -q "Cannot verify an element left in agent:$AGENT_ID:processing: Cannot allocate memory; it stays there" "$T/agent.log" &&
	in_processing 1 && [ -z "$(result "$id")" ] && ok=$((ok + 1))
rm -f "$T/nomem"
stop_agent
start_agent
if [ "$ok" = 2 ] && wait_for 10 has_result "$id" &&
	[ "$(result_field "$id" 'j["status"], j["reason"]')" = "('failed', 'agent restarted')" ] &&
	wait_for 10 in_processing 0 && serves; then
	t_pass
else t_fail "ok $ok, processing $(rcli LLEN "agent:$AGENT_ID:processing"), result '$(result "$id")'"; fi

# ---- the agent killed in the middle of a job ----

t_case "kill -9 mid-job, restart: failed with 'agent restarted', the next job runs"
rm -f "$T/slow.pid"
"$IMAGEGEN" job submit --redis "$URL" --agent "$AGENT_ID" --secret-file "$T/secret" slow >"$T/slow.id"
id=$(cat "$T/slow.id")
if wait_for 10 test -s "$T/slow.pid"; then
	kill -9 "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null
	spid=$(cat "$T/slow.pid")
	# The killed agent's job is in processing, and nowhere else.
	left=$(rcli LRANGE "agent:$AGENT_ID:processing" 0 -1)
	held=0
	[ "$(rcli LLEN "agent:$AGENT_ID:processing")" = 1 ] && [[ $left == *"$id"* ]] &&
		[ "$(rcli LLEN "agent:$AGENT_ID:jobs")" = 0 ] && held=1
	start_agent
	if [ "$held" = 1 ] && wait_for 10 has_result "$id" &&
		[ "$(result_field "$id" 'j["status"], j["reason"]')" = "('failed', 'agent restarted')" ] &&
		wait_for 10 proc_gone "$spid" && wait_for 10 in_processing 0 && serves; then
		t_pass
	else
		t_fail "in processing after the kill: $held ($left); now $(rcli LLEN "agent:$AGENT_ID:processing");" \
			"slow job $(proc_gone "$spid" && echo gone || echo alive); $(cat "$T/result.json")"
	fi
else t_fail "the slow job did not start"; fi

t_case "SIGTERM during a short job: it finishes, is reported, the agent exits 0"
rm -f "$T/brief.started"
"$IMAGEGEN" job submit --redis "$URL" --agent "$AGENT_ID" --secret-file "$T/secret" brief >"$T/brief.id"
id=$(cat "$T/brief.id")
if wait_for 10 test -e "$T/brief.started"; then
	kill -TERM "$AGENT_PID"
	reap "$AGENT_PID" 20
	rc=$?
	if [ "$rc" = 0 ] && [ "$(result_field "$id" 'j["status"]')" = succeeded ] &&
		[ "$(rcli EXISTS "agent:$AGENT_ID:heartbeat")" = 0 ]; then
		t_pass
	else
		t_fail "rc $rc, $(cat "$T/result.json")"
	fi
else t_fail "brief did not start"; fi

# notify_listen SOCKET LOG: records each sd_notify datagram as a line of
# LOG until LOG.stop exists or 60 s pass (systemd's side of Type=notify).
notify_listen() {
	rm -f "$1" "$2" "$2.stop" "$2.bound"
	python3 - "$1" "$2" <<'EOP' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2] + ".bound", "w").close()
s.settimeout(0.1)
end = time.monotonic() + 60
with open(sys.argv[2], "w") as log:
    while time.monotonic() < end and not os.path.exists(sys.argv[2] + ".stop"):
        try:
            log.write(s.recv(4096).decode().replace("\n", " ") + "\n")
            log.flush()
        except socket.timeout:
            pass
EOP
	_pids+=($!)
	wait_for 10 test -e "$2.bound"
}
# notify_end SOCKET LOG: sends TEST-END to SOCKET once the sender is gone,
# waits until LOG has it (so LOG holds every datagram sent before), then
# stops the listener.
notify_end() {
	python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"TEST-END", sys.argv[1])' "$1"
	wait_for 10 grep -qx TEST-END "$2"
	touch "$2.stop"
}

t_case "SIGTERM during a long job: ended after stop_timeout_s, reported failed; systemd is asked to wait that long (EXTEND_TIMEOUT_USEC)"
notify_listen "$T/notify.sock" "$T/notify.log"
AGENT_NOTIFY=$T/notify.sock start_agent
rm -f "$T/slow.pid"
"$IMAGEGEN" job submit --redis "$URL" --agent "$AGENT_ID" --secret-file "$T/secret" slow >"$T/slow.id"
id=$(cat "$T/slow.id")
if wait_for 10 test -s "$T/slow.pid"; then
	spid=$(cat "$T/slow.pid")
	kill -TERM "$AGENT_PID"
	reap "$AGENT_PID" 30
	rc=$?
	# A datagram of ours after the agent's: all of them were read before it.
	notify_end "$T/notify.sock" "$T/notify.log"
	# stop_timeout_s 2 + kill_grace_ms 0.3 + 30 s to store the result: the
	# first request at most that, the later ones less, every second or so.
	ext=$(sed -n 's/^EXTEND_TIMEOUT_USEC=\([0-9]*\)$/\1/p' "$T/notify.log")
	first=$(head -n1 <<<"$ext")
	if [ "$rc" = 0 ] && proc_gone "$spid" && [ "$(result_field "$id" 'j["status"]')" = failed ] &&
		[ "$(rcli LLEN "agent:$AGENT_ID:processing")" = 0 ] && grep -qx READY=1 "$T/notify.log" &&
		[ -n "$first" ] && [ "$first" -gt 31000000 ] && [ "$first" -le 32300000 ] &&
		[ "$(wc -l <<<"$ext")" -ge 2 ]; then
		t_pass
	else
		t_fail "rc $rc, $(cat "$T/result.json" "$T/notify.log")"
	fi
else t_fail "slow did not start"; fi

t_case "SIGTERM with no job running: systemd is asked for no more time (the unit's TimeoutStopSec= bounds the agent)"
notify_listen "$T/idle.sock" "$T/idle.log"
AGENT_NOTIFY=$T/idle.sock start_agent
if wait_for 10 grep -qx READY=1 "$T/idle.log"; then
	kill -TERM "$AGENT_PID"
	reap "$AGENT_PID" 30
	rc=$?
	# A datagram of ours after the agent's: all of them were read before it.
	notify_end "$T/idle.sock" "$T/idle.log"
	if [ "$rc" = 0 ] && grep -qx TEST-END "$T/idle.log" && ! grep -q EXTEND_TIMEOUT_USEC "$T/idle.log"; then
		t_pass
	else t_fail "rc $rc, $(cat "$T/idle.log")"; fi
else t_fail "no READY=1: $(cat "$T/idle.log")"; fi

t_case "BLMOVE refused: 'needs Redis 6.2' only for an unknown command, any other error as the server says it"
# A server that does not know BLMOVE (renamed away, as on Redis < 6.2),
# and a queue key of the wrong type on ours.
P2=$(free_port)
redis-server --port "$P2" --bind 127.0.0.1 --save '' --appendonly no --dir "$T/redis" --rename-command BLMOVE "" >"$T/redis/old.log" 2>&1 &
old_redis=$!
_pids+=("$old_redis")
blmove_agent() { # URL AGENT_ID LOG: an agent on its own config, until LOG says BLMOVE was refused
	printf 'jobs:\n  redis_url: %s\n  agent_id: %s\n' "$1" "$2" >"$T/blmove.conf"
	"$FIRSTBOOT" agent --root "$R" --config "$T/blmove.conf" >"$3" 2>&1 &
	local pid=$!
	_pids+=("$pid")
	wait_for 15 grep -q "Redis refused BLMOVE on agent:$2:jobs" "$3"
	local rc=$?
	kill "$pid" 2>/dev/null
	reap "$pid" 20 2>/dev/null
	return $rc
}
ok=0
if wait_for 10 redis-cli -h 127.0.0.1 -p "$P2" ping >/dev/null; then
	blmove_agent "redis://127.0.0.1:$P2" t1 "$T/old-agent.log" &&
		grep -q "Redis refused BLMOVE on agent:t1:jobs: ERR unknown command 'BLMOVE'.* (the agent needs Redis 6.2 or later)" "$T/old-agent.log" && ok=1
fi
rcli SET agent:t9:jobs not-a-list >/dev/null
blmove_agent "$URL" t9 "$T/type-agent.log" &&
	grep -q "Redis refused BLMOVE on agent:t9:jobs: WRONGTYPE" "$T/type-agent.log" && ! grep -q "6.2" "$T/type-agent.log" || ok=0
rcli DEL agent:t9:jobs >/dev/null
kill "$old_redis" 2>/dev/null
wait "$old_redis" 2>/dev/null
if [ "$ok" = 1 ]; then t_pass; else t_fail "$(cat "$T/old-agent.log" "$T/type-agent.log")"; fi

t_case "the secret is in no log, job log or result"
leak=0
grep -rqF "$SECRET" "$R/var" "$T/agent.log" && leak=1
for k in $(rcli --scan --pattern 'job:*:result'); do
	rcli GET "$k" | grep -qF "$SECRET" && leak=1
done
grep -rqF -e "pw-hi-Secret" -e "pw-yo-Secret" "$R/var" "$T/agent.log" && leak=1
if [ "$leak" = 0 ]; then
	t_pass
else
	t_fail "found the secret or a password"
fi

# ---- configuration the agent refuses ----

t_case "a secret file group- or other-readable, empty, too big, a link: the agent refuses to start, naming the file"
S=$R/etc/firstboot/jobs.secret
ok=1
for m in 0644 0640 0604; do
	chmod "$m" "$S"
	expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" &&
		grep -q "jobs.secret_file: /etc/firstboot/jobs.secret is mode $m: group and others must have no access" "$T/err" || ok=0
done
chmod 0600 "$S"
: >"$S"
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" && grep -q "jobs.secret_file: /etc/firstboot/jobs.secret is empty" "$T/err" || ok=0
head -c 4097 /dev/zero | tr '\0' k >"$S"
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" && grep -q "jobs.secret_file: /etc/firstboot/jobs.secret is over 4096 bytes" "$T/err" || ok=0
cp -p "$T/secret" "$R/etc/firstboot/real.secret"
rm "$S" && ln -s real.secret "$S"
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" && grep -q "jobs.secret_file: /etc/firstboot/jobs.secret is a symbolic link" "$T/err" || ok=0
rm "$S" "$R/etc/firstboot/real.secret"
# imagegen job submit reads it by the same rules (a link followed).
head -c 4097 /dev/zero | tr '\0' k >"$T/big.secret" && chmod 0600 "$T/big.secret"
expect_rc 1 "$IMAGEGEN" job submit --redis "$URL" --agent "$AGENT_ID" --secret-file "$T/big.secret" hello &&
	grep -q "imagegen job: --secret-file: $T/big.secret is over 4096 bytes" "$T/err" || ok=0
chmod 0640 "$T/big.secret"
expect_rc 1 "$IMAGEGEN" job submit --redis "$URL" --agent "$AGENT_ID" --secret-file "$T/big.secret" hello &&
	grep -q "imagegen job: --secret-file: $T/big.secret is mode 0640: group and others must have no access" "$T/err" || ok=0
cp -p "$T/secret" "$S"
if [ "$ok" = 1 ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "a secret of exactly 4096 bytes: imagegen job submit signs with it, the agent verifies it"
head -c 4096 /dev/zero | tr '\0' k >"$S"
cp -p "$S" "$T/max.secret"
start_agent
if expect_rc 0 "$IMAGEGEN" job submit --redis "$URL" --agent "$AGENT_ID" --secret-file "$T/max.secret" --wait --timeout 20 hello greeting=max &&
	grep -q '"succeeded"' "$T/out"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi
stop_agent
cp -p "$T/secret" "$S"

t_case "Redis asks for a password the URL does not give: the agent exits 1 at once (NOAUTH is final), no retrying"
rcli CONFIG SET requirepass "pw-$AGENT_ID" >/dev/null
expect_rc 1 timeout 15 "$FIRSTBOOT" agent --root "$R"
rc=$?
redis-cli -h 127.0.0.1 -p "$PORT" --no-auth-warning -a "pw-$AGENT_ID" CONFIG SET requirepass "" >/dev/null
if [ "$rc" = 0 ] && grep -q "Redis refused PING: NOAUTH" "$T/err" && ! grep -q retrying "$T/err"; then
	t_pass
else t_fail "$(tail -n 3 "$T/err")"; fi

t_case "no jobs.redis_url, or TLS files the agent cannot use: refused with the reason"
cp "$R/etc/firstboot/firstboot.conf" "$T/conf.saved"
printf 'jobs:\n  agent_id: t1\n' >"$R/etc/firstboot/firstboot.conf"
ok=0
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" && grep -q "jobs.redis_url is not set" "$T/err" && ok=1
# A CA file missing in the root, one for redis://, a relative one, a
# certificate without its key.
printf 'jobs:\n  redis_url: rediss://127.0.0.1:%s\n  tls_ca_file: /etc/ssl/nonexistent-ca.pem\n' "$PORT" >"$R/etc/firstboot/firstboot.conf"
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" &&
	grep -q "cannot open jobs.tls_ca_file /etc/ssl/nonexistent-ca.pem: No such file" "$T/err" || ok=0
printf 'jobs:\n  redis_url: redis://127.0.0.1:%s\n  tls_ca_file: /etc/firstboot/jobs.secret\n' "$PORT" >"$R/etc/firstboot/firstboot.conf"
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" &&
	grep -q "jobs.tls_ca_file is set, but jobs.redis_url is not rediss://" "$T/err" || ok=0
printf 'jobs:\n  redis_url: rediss://127.0.0.1:%s\n  tls_ca_file: ca.pem\n' "$PORT" >"$R/etc/firstboot/firstboot.conf"
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" &&
	grep -q "firstboot.conf:3:16: 'jobs.tls_ca_file' must be an absolute path" "$T/err" || ok=0
printf 'jobs:\n  redis_url: rediss://127.0.0.1:%s\n  tls_cert_file: /etc/firstboot/jobs.secret\n' "$PORT" >"$R/etc/firstboot/firstboot.conf"
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" &&
	grep -q "jobs.tls_cert_file and jobs.tls_key_file go together" "$T/err" || ok=0
printf 'jobs:\n  redis_url: redis://127.0.0.1\n  max_skew_s: 0\n' >"$R/etc/firstboot/firstboot.conf"
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" && grep -q "max_skew_s" "$T/err" || ok=0
cp "$T/conf.saved" "$R/etc/firstboot/firstboot.conf"
if [ "$ok" = 1 ]; then
	t_pass
else
	t_fail "$(cat "$T/err")"
fi

t_case "a firstboot.conf.d drop-in sets only jobs: (file:line:column), in the order of its name; a link out of the root is resolved inside it"
D=$R/etc/firstboot/firstboot.conf.d
mkdir -p "$D"
ok=0
printf 'jobs:\n  agent_id: t1\nrequire_signature: false\n' >"$D/50-site.conf"
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" &&
	grep -q "firstboot.conf.d/50-site.conf:3:1: .*require_signature" "$T/err" && ok=1
printf 'jobs:\n  max_skew_s: 0\n' >"$D/50-site.conf"
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" &&
	grep -q "50-site.conf:2:15: .*max_skew_s" "$T/err" || ok=0
# A later name wins: 60-x sets the redis_url to rediss:// with a CA
# file that is not there, refused.
printf 'jobs:\n  redis_url: redis://127.0.0.1:%s\n' "$PORT" >"$D/50-site.conf"
printf 'jobs:\n  redis_url: rediss://127.0.0.1:%s\n  tls_ca_file: /none.pem\n' "$PORT" >"$D/60-x.conf"
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" && grep -q "jobs.tls_ca_file /none.pem" "$T/err" || ok=0
rm -f "$D/60-x.conf"
# Where the agent writes: metrics only to a .prom file, paths absolute, each
# said once at its line:column.
printf 'jobs:\n  metrics_file: /etc/passwd\n  secret_file: rel/secret\n' >"$D/60-x.conf"
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" &&
	grep -q "60-x.conf:2:17: 'jobs.metrics_file' must be an absolute path ending in .prom" "$T/err" &&
	[ "$(grep -c "60-x.conf:3:16: 'jobs.secret_file' must be an absolute path" "$T/err")" = 1 ] || ok=0
rm -f "$D/60-x.conf"
mkfifo "$D/70-fifo.conf"
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" && grep -q "70-fifo.conf: a drop-in must be a regular file" "$T/err" || ok=0
rm -rf "$D"
# firstboot.conf.d a link out of the root: resolved inside it (the host's
# drop-in, which would set a TLS CA file, is not read; the root's is).
mkdir -p "$T/hostd" "$R$T/hostd"
printf 'jobs:\n  redis_url: rediss://127.0.0.1:%s\n  tls_ca_file: /none.pem\n' "$PORT" >"$T/hostd/60-x.conf"
printf 'jobs:\n  max_skew_s: 0\n' >"$R$T/hostd/60-in.conf"
ln -s "$T/hostd" "$D"
expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" && grep -q "60-in.conf:2:15: .*max_skew_s" "$T/err" &&
	! grep -q "tls_ca_file" "$T/err" || ok=0
rm -rf "$D" "${R:?}$T/hostd"
if [ "$ok" = 1 ]; then
	t_pass
else
	t_fail "$(cat "$T/err")"
fi

t_case "firstboot.conf's jobs paths follow site.yaml's rule (one, common/config.c): a '..' component, a '//', a line break refused at line:column"
D=$R/etc/firstboot/firstboot.conf.d
mkdir -p "$D"
printf 'jobs:\n  tls_ca_file: /etc/ssl/../ca.pem\n  metrics_file: /var/lib//m.prom\n  secret_file: "/etc/a\\nb"\n' >"$D/60-x.conf"
if expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" &&
	grep -q "60-x.conf:2:16: 'jobs.tls_ca_file' must be an absolute path, without '.' or '..' components, not \"/etc/ssl/../ca.pem\"$" "$T/err" &&
	grep -q "60-x.conf:3:17: 'jobs.metrics_file' must be an absolute path ending in .prom, without '.' or '..' components, not \"/var/lib//m.prom\"$" "$T/err" &&
	grep -q "60-x.conf:4:16: 'jobs.secret_file' must be an absolute path, without '.' or '..' components, not \"/etc/a\\\\nb\"$" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi
rm -rf "$D"

kill "$REDIS_PID" 2>/dev/null
