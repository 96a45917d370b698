#!/bin/bash
# firstboot agent at volume and side by side, against a real redis-server
# on a 127.0.0.1 port started and stopped here: 100 trivial jobs in a row
# (pushed at once through redis-cli --pipe) all succeed with every result
# present; two agents on two queues each run only their own jobs.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
	echo "not ok - the agent tests need redis-server and redis-cli (packaging/deps.sh)"
	exit 1
fi

SECRET=Sx$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
PORT=
rcli() { redis-cli -h 127.0.0.1 -p "$PORT" "$@"; }
if ! redis_start "$T/redis"; then
	echo "not ok - redis-server starts"
	cat "$T/redis/redis.log"
	exit 1
fi

# agent_root DIR ID: a root whose agent serves agent:ID:jobs, with module
# "trivial" (prints its job id and the root).
agent_root() {
	local r=$1
	new_root "$r"
	mkdir -p "$r/etc/firstboot" "$r/usr/lib/firstboot/modules/trivial"
	printf 'id: trivial\nname: trivial\nversion: "1.0"\n' >"$r/usr/lib/firstboot/modules/trivial/manifest.yml"
	printf '#!/bin/sh\necho "$FIRSTBOOT_AGENT_ID $FIRSTBOOT_JOB_ID"\n' >"$r/usr/lib/firstboot/modules/trivial/install.sh"
	chmod 0755 "$r/usr/lib/firstboot/modules/trivial/install.sh"
	printf '%s\n' "$SECRET" >"$r/etc/firstboot/jobs.secret"
	chmod 0600 "$r/etc/firstboot/jobs.secret"
	printf 'jobs:\n  redis_url: redis://127.0.0.1:%s\n  agent_id: %s\n' "$PORT" "$2" >"$r/etc/firstboot/firstboot.conf"
}
start_agent() { # ROOT ID
	"$FIRSTBOOT" agent --root "$1" >>"$T/agent-$2.log" 2>&1 &
	_pids+=($!)
	wait_for 10 grep -q "waiting for jobs on agent:$2:jobs" "$T/agent-$2.log"
}

# jobs ID N FILE: N signed jobs for agent ID as redis-cli --pipe input
# (LPUSH in RESP), their ids in FILE.
jobs() {
	python3 - "$SECRET" "$1" "$2" "$3" <<'EOF'
import hashlib, hmac, json, sys, time, uuid
secret, agent, n, idfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ids, out = [], []
def resp(*args):
    b = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        b += b"$%d\r\n%s\r\n" % (len(a), a)
    return b
for _ in range(n):
    jid = str(uuid.uuid4())
    p = json.dumps({"job_id": jid, "agent_id": agent, "app_id": "trivial", "issued_at": int(time.time())})
    sig = "sha256=" + hmac.new(secret.encode(), p.encode(), hashlib.sha256).hexdigest()
    out.append(resp("LPUSH", f"agent:{agent}:jobs", json.dumps({"payload": p, "signature": sig})))
    ids.append(jid)
open(idfile, "w").write("\n".join(ids) + "\n")
sys.stdout.buffer.write(b"".join(out))
EOF
}

# all_succeeded IDFILE AGENT: every job has a result, succeeded, from AGENT.
all_succeeded() {
	local id n=0
	while read -r id; do
		rcli GET "job:$id:result" | grep -q "\"status\":\"succeeded\".*\"agent_id\":\"$2\"" || return 1
		n=$((n + 1))
	done <"$1"
	[ "$n" -gt 0 ]
}
queue_empty() { [ "$(rcli LLEN "agent:$1:jobs")" = 0 ] && [ "$(rcli LLEN "agent:$1:processing")" = 0 ]; }

agent_root "$T/a" a1
agent_root "$T/b" b1
t_check "two agents start on their own queues" eval 'start_agent "$T/a" a1 && start_agent "$T/b" b1'

t_case "100 trivial jobs in a row all succeed, every result present"
jobs a1 100 "$T/a.ids" | rcli --pipe >"$T/pipe.out" 2>&1
if wait_for 120 queue_empty a1 && all_succeeded "$T/a.ids" a1 &&
	[ "$(find "$T/a/var/log/firstboot/jobs" -name '*.log' | wc -l)" = 100 ]; then
	t_pass
else t_fail "$(rcli LLEN agent:a1:jobs) left; $(tail -n 5 "$T/agent-a1.log")"; fi

t_case "two agents on two queues: each runs only its own jobs"
jobs a1 5 "$T/a2.ids" | rcli --pipe >/dev/null 2>&1
jobs b1 5 "$T/b2.ids" | rcli --pipe >/dev/null 2>&1
if wait_for 60 queue_empty a1 && wait_for 60 queue_empty b1 &&
	all_succeeded "$T/a2.ids" a1 && all_succeeded "$T/b2.ids" b1 &&
	[ "$(find "$T/b/var/log/firstboot/jobs" -name '*.log' | wc -l)" = 5 ] &&
	! grep -rq "^a1 " "$T/b/var/log/firstboot/jobs"; then
	t_pass
else t_fail "$(tail -n 5 "$T/agent-b1.log")"; fi

t_case "imagegen job submit --wait: 3 for a rejected job, 2 when no result comes in time"
printf 'another-secret-0123456789\n' >"$T/wrong.secret"
chmod 0600 "$T/wrong.secret"
ok=1
expect_rc 3 "$IMAGEGEN" job submit --redis "redis://127.0.0.1:$PORT" --agent a1 --secret-file "$T/wrong.secret" \
	trivial --wait --timeout 20 && grep -q '"reason":"bad_signature"' "$T/out" || ok=0
expect_rc 2 "$IMAGEGEN" job submit --redis "redis://127.0.0.1:$PORT" --agent nobody --secret-file "$T/a/etc/firstboot/jobs.secret" \
	trivial --wait --timeout 1 && grep -q "no result" "$T/err" || ok=0
chmod 0644 "$T/wrong.secret"
expect_rc 1 "$IMAGEGEN" job submit --redis "redis://127.0.0.1:$PORT" --agent a1 --secret-file "$T/wrong.secret" trivial &&
	grep -q "group and others must have no access" "$T/err" || ok=0
if [ "$ok" = 1 ]; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "imagegen job: a usage error exits 64 (EX_USAGE), never 2 (no result in time)"
ok=1
S=$T/a/etc/firstboot/jobs.secret
U=redis://127.0.0.1:$PORT
for args in "submit --agent a1 --secret-file $S trivial" "submit --redis $U --agent a1 --secret-file $S" \
	"submit --redis $U --agent bad/id --secret-file $S trivial" "submit --redis $U --agent a1 --secret-file $S trivial notkv" \
	"submit --redis $U --agent a1 --secret-file $S trivial --timeout 0" "submit --redis $U --nosuch" \
	"status --redis $U not-a-uuid" "status" "frobnicate" ""; do
	# shellcheck disable=SC2086 # the words of args are the arguments
	expect_rc 64 "$IMAGEGEN" job $args || { ok=0; echo "  # imagegen job $args" >&2; }
done
"$IMAGEGEN" job submit --help >"$T/out" && grep -q "64 usage error" "$T/out" || ok=0
if [ "$ok" = 1 ]; then t_pass; else t_fail "$(cat "$T/err")"; fi
