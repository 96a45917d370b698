#!/bin/bash
# Runs inside the VM test's guest once firstboot.service has finished
# (vmtest-report.service, installed by tests/vm/run.sh before the bake):
# prints what the host checks to the second serial port as "VMTEST KEY
# VALUE" lines, then powers the machine off so QEMU exits. Secrets are never
# printed: the host gets their SHA-256 and compares it with the site's.
# Every command here is bounded (timeout), so the report always ends.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { printf 'VMTEST %s\n' "$*"; }
sha() { sha256sum | cut -d' ' -f1; }
t() { timeout 30 "$@"; }

say begin
read -r up _ </proc/uptime
now=$(date +%s.%N)
say uptime "$up"

# The agent's view: status (exit code and JSON), the ready marker, and
# when it was written, in seconds since the kernel started.
t firstboot status --json >/run/vmtest-status.json 2>/run/vmtest-status.err
say status-rc $?
say status-json "$(jq -c . /run/vmtest-status.json 2>/dev/null || echo null)"
t firstboot status 2>&1 | sed 's/^/VMTEST status-text /'
marker=/var/lib/firstboot/ready
if [ -f "$marker" ]; then
	say ready-marker "$(jq -c . "$marker" 2>/dev/null || echo unreadable)"
else
	say ready-marker none
fi
# When this boot's run started and finished, in seconds of uptime.
say agent-uptime "$(jq -r '[.started_ms, .finished_ms] | map(. // 0) | @tsv' /run/vmtest-status.json 2>/dev/null |
	awk -v u="$up" -v n="$now" '{ printf "started %.1f finished %.1f", u - (n - $1 / 1000), u - (n - $2 / 1000) }')"
say systemd-firstboot "$(systemctl show firstboot.service -p ActiveState -p Result -p ExecMainStatus | tr '\n' ' ')"
say ready-target "$(systemctl is-active firstboot-ready.target)"
say hello "$(cat /var/lib/vmtest/hello 2>/dev/null || echo none)"
say hello-env "$(cat /var/lib/vmtest/hello-env 2>/dev/null || echo none)"

# The journal of this boot: per module, how many entries and whether each
# carries the instance and stage fields. The agent's own line saying why
# a module does not run ("Module ID not run: unchanged") is not the
# module's.
t journalctl -b -u firstboot.service -o json >/run/vmtest-journal.json 2>/dev/null
for m in $(jq -r '.modules[]?.id' /run/vmtest-status.json 2>/dev/null); do
	say journal "$m" "$(jq -sc --arg m "$m" '[.[] | select(.FIRSTBOOT_MODULE == $m and
			((.MESSAGE | type) != "string" or (.MESSAGE | startswith("Module " + $m + " not run: ") | not)))] | {entries: length,
		with_fields: ([.[] | select(.FIRSTBOOT_INSTANCE != null and .FIRSTBOOT_STAGE != null)] | length),
		instance: ([.[].FIRSTBOOT_INSTANCE] | unique)}' /run/vmtest-journal.json)"
done
# The agent's events (MESSAGE_ID; systemd's own about the unit aside),
# and how many of them `journalctl -x` explains from the catalog.
ids=$(jq -sr '[.[] | select(.MESSAGE_ID != null and .SYSLOG_IDENTIFIER == "firstboot") | .MESSAGE_ID] | unique | join(" ")' /run/vmtest-journal.json)
say journal-message-ids "$ids"
n=0
for id in $ids; do
	t journalctl --list-catalog "$id" 2>/dev/null | grep -q . && n=$((n + 1))
done
say catalog-explains "$n"

# The changed boot (vmtest.report=changed): a new bundle for this instance
# (run.sh's changed site: another server name and certificate for nginx,
# another value in vmhello's env file). vmtest-poll.service asked nginx on
# loopback all along: it is stopped, and its requests are counted over
# the whole log, in the rounds that overlap firstboot's run and in those
# that overlap the nginx module's (from status.json's times, epoch ms),
# with the longest pause between two rounds in the nginx module's time.
# A request fails when port 80 does not redirect (301) or HTTPS does not
# answer at all (000; 502 is nginx's answer while colonies, after Docker,
# is still starting); a round short of its ten codes counts the missing
# ones as failed.
if grep -qw 'vmtest.report=changed' /proc/cmdline; then
	poll=/run/vmtest-poll
	touch "$poll/stop" 2>/dev/null
	for _ in $(seq 100); do
		[ -e "$poll/done" ] && break
		sleep 0.1
	done
	say poll-service "$(systemctl show vmtest-poll.service -p ActiveState -p Result | tr '\n' ' ')"
	read -r run_from run_to < <(jq -r '[.started_ms // 0, .finished_ms // 0] | @tsv' /run/vmtest-status.json 2>/dev/null)
	read -r ngx_from ngx_to < <(jq -r '.modules[]? | select(.id == "nginx") | [.started_ms // 0, (.started_ms // 0) + (.duration_ms // 0)] | @tsv' /run/vmtest-status.json 2>/dev/null)
	say poll "$(awk -v a="${run_from:-0}" -v b="${run_to:-0}" -v c="${ngx_from:-0}" -v d="${ngx_to:-0}" '
		{ bad = 10 - (NF - 2)
		  for (i = 3; i <= NF; i++) bad += (i % 2) ? ($i != "301") : ($i == "000")
		  n += 10; f += bad
		  if ($1 <= b && $2 >= a) { r += 10; rf += bad }
		  if ($1 <= d && $2 >= c) { g += 10; gf += bad }
		  if (prev && $1 >= c && prev <= d && $1 - prev > gap) gap = $1 - prev
		  prev = $2 }
		END { printf "requests=%d failed=%d during-run=%d failed-during-run=%d during-nginx=%d failed-during-nginx=%d max-gap-ms=%d",
			n, f, r, rf, g, gf, gap }' "$poll/log" 2>/dev/null)"
	say poll-codes "$(awk '{ for (i = 3; i <= NF; i++) c[((i % 2) ? "http:" : "https:") $i]++ }
		END { for (k in c) printf "%s=%d ", k, c[k] }' "$poll/log" 2>/dev/null)"
	say poll-failures "$(awk '{ bad = NF != 12; for (i = 3; i <= NF; i++) bad += (i % 2) ? ($i != "301") : ($i == "000") } bad' "$poll/log" 2>/dev/null |
		head -n 3 | tr '\n' ' ')"
	master=$(cat /run/nginx.pid 2>/dev/null || echo none)
	say nginx-master "before=$(cat "$poll/master-before" 2>/dev/null || echo none) after=$master mainpid=$(systemctl show nginx.service -p MainPID --value)"
	say nginx-workers "before=$(cat "$poll/workers-before" 2>/dev/null)after=$(pgrep -P "$master" 2>/dev/null | sort -n | tr '\n' ' ')"
	say nginx-server-name "$(t nginx -T 2>/dev/null | grep -m1 -o 'server_name [^;]*vmtest-changed\.example\.org[^;]*' || echo none)"
	code=$(t curl -sS -o /dev/null -w '%{http_code}' --cacert /etc/firstboot/tls/ca.crt \
		--resolve "vmtest-changed.example.org:443:127.0.0.1" "https://vmtest-changed.example.org/" 2>&1)
	say nginx-https-changed "rc=$? code=$code"
	fp=$(t openssl s_client -connect 127.0.0.1:443 -servername vmtest-changed.example.org </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null | cut -d= -f2)
	say nginx-cert "${fp:-none}"
	say failed-units "$(systemctl --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')"
fi
# The stack's checks only when the host asks (vmtest.report=full on the
# kernel command line): boots that provision nothing new skip them.
if ! grep -qw 'vmtest.report=full' /proc/cmdline; then
	say end
	systemctl --no-block poweroff
	exit 0
fi
# The stack, when its modules ran.
if [ -f /opt/stack/secrets/postgres_password ]; then
	pw=$(cat /opt/stack/secrets/postgres_password)
	user=$(PGPASSWORD=$pw PGCONNECT_TIMEOUT=10 t psql -h 127.0.0.1 -U colony -d colony -tAc 'select current_user' 2>&1)
	say psql "rc=$? user=$user pwsha=$(printf '%s' "$pw" | sha)"
	nopw=$(PGPASSWORD=wrong-password PGCONNECT_TIMEOUT=10 t psql -h 127.0.0.1 -U colony -d colony -tAc 'select 1' 2>&1)
	say psql-wrong-password "rc=$? $(tr '\n' ' ' <<<"$nopw" | cut -c1-120)"
fi
if [ -f /opt/stack/secrets/redis_password ]; then
	pw=$(cat /opt/stack/secrets/redis_password)
	say redis-noauth "$(t redis-cli -h 127.0.0.1 ping 2>&1 | tr '\n' ' ')"
	say redis-auth "$(REDISCLI_AUTH=$pw t redis-cli -h 127.0.0.1 ping 2>&1 | tr '\n' ' ') pwsha=$(printf '%s' "$pw" | sha)"
fi
if [ -f /etc/firstboot/tls/ca.crt ]; then
	domain=$(openssl x509 -in /etc/firstboot/tls/server.crt -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p')
	code=$(t curl -sS -o /dev/null -w '%{http_code}' --cacert /etc/firstboot/tls/ca.crt \
		--resolve "$domain:443:127.0.0.1" "https://$domain/" 2>&1)
	say nginx-https "rc=$? code=$code domain=$domain"
	fp=$(t openssl s_client -connect 127.0.0.1:443 -servername "$domain" </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null | cut -d= -f2)
	say nginx-cert "${fp:-none}"
fi
say docker "$(t docker info --format '{{.ServerVersion}}' 2>&1 | head -n1) active=$(systemctl is-active docker)"
say ufw "$(t ufw status 2>&1 | head -n1)"
say ssh-active "$(systemctl is-active ssh.service) socket=$(systemctl is-active ssh.socket)"
say sshd "$(t sshd -T 2>/dev/null | grep -E '^(permitrootlogin|passwordauthentication) ' | tr '\n' ' ')"
if [ -f /home/deploy/.ssh/authorized_keys ]; then
	say deploy-key "$(ssh-keygen -lf /home/deploy/.ssh/authorized_keys 2>&1 | awk '{print $2}')"
fi
say machine-id "$(cat /etc/machine-id)"
# colonies (run.sh's stand-in binds like v1.8.19: every interface): its
# listeners, its answers on loopback and its unit's IP firewall; then the
# host probes the forwarded ports and, when done, asks nginx for
# /vmtest-probe-done, which this waits for (bounded) in the access log.
if systemctl is-active --quiet colonies-server.service; then
	say colonies-listen "$(ss -Hltn | awk '{print $4}' | grep -E ':(2379|2380|2381|50080)$' | sort -t: -k2 | tr '\n' ' ')"
	say colonies-local "$(for p in 50080 2379 2380 2381; do t curl -s -m 5 -o /dev/null -w '%{http_code} ' "http://127.0.0.1:$p/"; done)"
	say colonies-ipfw "$(systemctl show colonies-server.service -p IPAddressDeny -p IPAddressAllow | tr '\n' ' ')"
	say probe-ready
	for _ in $(seq 300); do
		grep -q 'vmtest-probe-done' /var/log/nginx/access.log 2>/dev/null && break
		sleep 1
	done
	say probe-done "$(grep -c 'vmtest-probe-done' /var/log/nginx/access.log 2>/dev/null)"
fi
say failed-units "$(systemctl --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')"
say end
systemctl --no-block poweroff
