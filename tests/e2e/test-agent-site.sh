#!/bin/bash
# The jobs agent from a site, end to end: site.yaml with jobs: ->
# imagegen render/userdata -> firstboot run on a temporary root (the
# bundle's drop-in and secret written 0600, the module jobs-agent enabling
# firstboot-agent.service with the real `systemctl --root`) -> firstboot
# agent --root, with no configuration but what the bundle wrote, takes a
# job that `imagegen job submit --wait` queues on a real redis-server
# (Debian's) on a 127.0.0.1 port. Every wait is bounded.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

for c in redis-server redis-cli systemctl; do
	command -v "$c" >/dev/null || {
		echo "not ok - test-agent-site needs $c (packaging/deps.sh)"
		exit 1
	}
done
if ! redis_start "$T/redis"; then
	echo "not ok - redis-server did not start"
	cat "$T/redis/redis.log"
	exit 1
fi
URL=redis://127.0.0.1:$PORT
FIX=$TOP/tests/cases/imagegen
igs() { "$IMAGEGEN" "$1" --modules-dir "$TOP/modules" --templates-dir "$FIX/templates" "${@:2}"; }

S=$T/site
mkdir -p "$S"
cat >"$S/site.yaml" <<EOS
name: jobs-site
hostname: site-1
provider: nocloud
tls: {mode: none}
jobs:
  redis_url: {env: TEST_JOBS_URL}
  agent_id: site-1
  max_skew_s: 120
  stop_timeout_s: 2
  heartbeat_s: 1
  metrics_file: /var/lib/node-exporter/firstboot-agent.prom
EOS
export TEST_JOBS_URL=$URL

# The server: what the firstboot package (or imagegen bake) installs: the
# agent's unit, and a module the jobs may run.
image_root() {
	local r=$1
	new_root "$r"
	fb_conf "$r"
	mkdir -p "$r/usr/lib/systemd/system" "$r/usr/lib/firstboot/modules/hello"
	cp "$TOP/units/firstboot-agent.service" "$r/usr/lib/systemd/system/"
	printf 'id: hello\nname: hello\nversion: "1.0"\ninputs:\n  - {name: greeting, type: string, default: hi}\n' \
		>"$r/usr/lib/firstboot/modules/hello/manifest.yml"
	printf '#!/bin/sh\necho "$GREETING from a job $FIRSTBOOT_JOB_ID"\n' >"$r/usr/lib/firstboot/modules/hello/install.sh"
	chmod 0755 "$r/usr/lib/firstboot/modules/hello/install.sh"
}
R=$T/root
image_root "$R"

t_case "render and userdata from a site with jobs: (a generated secret, kept in the state)"
if expect_rc 0 igs render "$S/site.yaml" -o "$T/bundle" &&
	expect_rc 0 igs userdata "$S/site.yaml" --provider nocloud -o "$T/ud" &&
	[ "$(wc -c <"$T/bundle/files/etc/firstboot/jobs.secret")" = 65 ] &&
	grep -q '"jobs.secret"' "$S/.imagegen/state.json"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "firstboot run writes the drop-in and the secret 0600 and enables the agent (systemctl --root)"
W=$R/etc/systemd/system/multi-user.target.wants/firstboot-agent.service
if expect_rc 0 fb_run "$R" --user-data "$T/ud" --instance-id i-jobs &&
	[ -f "$R/var/lib/firstboot/ready" ] &&
	cmp -s "$T/bundle/files/etc/firstboot/jobs.secret" "$R/etc/firstboot/jobs.secret" &&
	[ "$(stat -c '%a %u' "$R/etc/firstboot/jobs.secret")" = "600 0" ] &&
	[ "$(stat -c %a "$R/etc/firstboot/firstboot.conf.d/50-site-jobs.conf")" = 600 ] &&
	[ "$(readlink "$W")" = /usr/lib/systemd/system/firstboot-agent.service ] &&
	[ "$(systemctl --root="$R" is-enabled firstboot-agent.service 2>&1)" = enabled ] &&
	grep -q 'no checksum of its secret and settings recorded: restart firstboot-agent.service where it already runs' "$R/var/log/firstboot/jobs-agent.log" &&
	! grep -q jobs "$R/etc/firstboot/firstboot.conf"; then
	t_pass
else t_fail "$(tail -n 5 "$T/err"; cat "$R/var/log/firstboot/jobs-agent.log" 2>&1)"; fi

AGENT_PID=
start_agent() {
	"$FIRSTBOOT" agent --root "$R" >>"$T/agent.log" 2>&1 &
	AGENT_PID=$!
	_pids+=("$AGENT_PID")
	wait_for 10 grep -q "waiting for jobs on agent:site-1:jobs" "$T/agent.log"
}
stop_agent() {
	kill "$AGENT_PID" 2>/dev/null
	reap "$AGENT_PID" 20 2>/dev/null
}

t_case "the agent runs on the rendered configuration alone and takes a job from imagegen job submit --wait"
ok=0
if start_agent; then
	if expect_rc 0 "$IMAGEGEN" job submit --redis "$URL" --agent site-1 \
		--secret-file "$T/bundle/files/etc/firstboot/jobs.secret" --wait --timeout 20 hello greeting=bonjour; then
		id=$(head -n1 "$T/out")
		redis-cli -h 127.0.0.1 -p "$PORT" GET "job:$id:result" >"$T/result.json"
		[ "$(json_get "$T/result.json" 'j["status"], j["exit_code"], j["log_tail"][-1]')" = "('succeeded', 0, 'bonjour from a job $id')" ] &&
			grep -q "^bonjour from a job $id\$" "$R/var/log/firstboot/jobs/$id.log" &&
			grep -q '^firstboot_agent_jobs_total{app_id="hello",status="succeeded"} 1$' "$R/var/lib/node-exporter/firstboot-agent.prom" &&
			ok=1
	fi
fi
stop_agent
if [ $ok = 1 ]; then t_pass; else t_fail "$(cat "$T/err" "$T/agent.log")"; fi

t_case "the secret never reaches the agent's output, a job log or the result"
secret=$(cat "$R/etc/firstboot/jobs.secret")
if ! grep -rqF "$secret" "$T/agent.log" "$R/var/log/firstboot/jobs" "$T/result.json"; then t_pass; else t_fail "found the secret"; fi

t_case "the secret file group- or world-readable: the agent refuses to start"
ok=1
for m in 0640 0604; do
	chmod "$m" "$R/etc/firstboot/jobs.secret"
	expect_rc 1 timeout 10 "$FIRSTBOOT" agent --root "$R" &&
		grep -q "jobs.secret_file: /etc/firstboot/jobs.secret is mode $m: group and others must have no access" "$T/err" || ok=0
done
chmod 0600 "$R/etc/firstboot/jobs.secret"
if [ $ok = 1 ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "firstboot apply of a site with another jobs setting: jobs-agent runs again (watched file changed), says the agent needs a restart; the same again runs nothing"
sed -i 's/^  heartbeat_s: 1$/  heartbeat_s: 2/' "$S/site.yaml"
if expect_rc 0 igs userdata "$S/site.yaml" --provider nocloud -o "$T/ud2" &&
	expect_rc 0 "$FIRSTBOOT" apply --root "$R" --user-data "$T/ud2" &&
	[ "$(jq -r '.modules[] | select(.id == "jobs-agent") | .why' "$R/var/lib/firstboot/status.json")" = "watched file changed: /etc/firstboot/firstboot.conf.d/50-site-jobs.conf" ] &&
	grep -q 'its secret or settings changed: restart firstboot-agent.service where it runs' "$R/var/log/firstboot/jobs-agent.log" &&
	grep -qx '  heartbeat_s: 2' "$R/etc/firstboot/firstboot.conf.d/50-site-jobs.conf" &&
	expect_rc 0 "$FIRSTBOOT" apply --root "$R" --user-data "$T/ud2" &&
	[ "$(jq -r '.modules[] | select(.id == "jobs-agent") | .why' "$R/var/lib/firstboot/status.json")" = unchanged ]; then
	t_pass
else t_fail "$(tail -n 5 "$T/err"; jq -c .modules "$R/var/lib/firstboot/status.json"; tail -n 3 "$R/var/log/firstboot/jobs-agent.log")"; fi

t_case "jobs-agent: its checksum a link out of the root (holding the right sum) is not read: no record, the link replaced by the file; the same again: nothing to restart"
st=$R/var/lib/firstboot-stack/state/jobs-agent.sha256
cp "$st" "$T/ja-outside.sha256"
ln -sf "$T/ja-outside.sha256" "$st"
ja() { FIRSTBOOT_ROOT=$R timeout 30 bash "$TOP/modules/jobs-agent/install.sh" >"$T/ja.out" 2>&1; }
if ja && grep -q 'no checksum of its secret and settings recorded' "$T/ja.out" && [ -f "$st" ] && [ ! -L "$st" ] &&
	cmp -s "$st" "$T/ja-outside.sha256" && ja && ! grep -q 'restart' "$T/ja.out"; then t_pass; else t_fail "$(cat "$T/ja.out")"; fi

t_case "an image without firstboot-agent.service: the module jobs-agent fails (3), no ready marker"
R2=$T/root2
image_root "$R2"
rm "$R2/usr/lib/systemd/system/firstboot-agent.service"
if expect_rc 1 fb_run "$R2" --user-data "$T/ud" --instance-id i-jobs2 &&
	[ ! -e "$R2/var/lib/firstboot/ready" ] &&
	grep -q "firstboot-agent.service is not installed" "$R2/var/log/firstboot/jobs-agent.log" &&
	[ ! -e "$R2/etc/systemd/system/multi-user.target.wants/firstboot-agent.service" ]; then
	t_pass
else t_fail "$(tail -n 5 "$T/err"; cat "$R2/var/log/firstboot/jobs-agent.log" 2>&1)"; fi

t_case "systemctl refusing to enable: the module fails, no ready marker"
R3=$T/root3
image_root "$R3"
mkdir -p "$T/bin"
printf '#!/bin/sh\necho "systemctl: refused (test)" >&2\nexit 1\n' >"$T/bin/systemctl"
chmod 0755 "$T/bin/systemctl"
if PATH=$T/bin:$PATH expect_rc 1 fb_run "$R3" --user-data "$T/ud" --instance-id i-jobs3 &&
	[ ! -e "$R3/var/lib/firstboot/ready" ] && grep -q "enable firstboot-agent.service failed" "$R3/var/log/firstboot/jobs-agent.log"; then
	t_pass
else t_fail "$(tail -n 5 "$T/err"; cat "$R3/var/log/firstboot/jobs-agent.log" 2>&1)"; fi
