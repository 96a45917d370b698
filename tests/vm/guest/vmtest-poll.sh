#!/bin/bash
# The VM test's poller (vmtest-poll.service, the changed boot only): asks
# nginx on loopback, again and again, while firstboot.service runs with a
# changed bundle, so the host can check that the stack kept serving.
#
#   vmtest-poll                  the loop: until /run/vmtest-poll/stop
#                                exists (vmtest-report makes it) or 900 s
#   vmtest-poll --wait-started   (ExecStartPost) waits, at most 120 s,
#                                until the loop has its first answer
#
# A round is one curl process (starting processes is what costs under
# TCG) making ten requests, each on a new connection (Connection: close):
# http://127.0.0.1/ and https://127.0.0.1/, five times over.
# In /run/vmtest-poll: master-before (nginx's master PID when polling
# began), workers-before (its workers), log (one line a round: epoch ms
# at its start and end, then the ten HTTP codes in that order; 000: no
# answer), started, done. Every request is bounded (curl -m 5).
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

out=/run/vmtest-poll
if [ "${1:-}" = --wait-started ]; then
	for _ in $(seq 1200); do
		[ -e "$out/started" ] && exit 0
		sleep 0.1
	done
	echo "vmtest-poll: no first answer from nginx in 120 s" >&2
	exit 0
fi

mkdir -p "$out"
: >"$out/log"
# code URL: the HTTP status nginx answers URL with (000: none).
code() { curl -sk -o /dev/null -m 5 -w '%{http_code}' "$1" 2>/dev/null || :; }
# The first answer, at most 60 s: nginx.service starts beside this unit
# (firstboot.service waits for this one), from the configuration the
# first boot left (port 80 redirects to HTTPS).
for _ in $(seq 120); do
	[ "$(code http://127.0.0.1/)" = 301 ] && break
	sleep 0.5
done
master=$(cat /run/nginx.pid 2>/dev/null || echo none)
echo "$master" >"$out/master-before"
pgrep -P "$master" 2>/dev/null | sort -n | tr '\n' ' ' >"$out/workers-before"
touch "$out/started"
urls=()
for _ in 1 2 3 4 5; do
	urls+=(-o /dev/null http://127.0.0.1/ -o /dev/null https://127.0.0.1/)
done
end=$((SECONDS + 900))
while [ ! -e "$out/stop" ] && [ "$SECONDS" -lt "$end" ]; do
	a=${EPOCHREALTIME/./}
	codes=$(curl -sk -m 5 -H 'Connection: close' -w '%{http_code} ' "${urls[@]}" 2>/dev/null || :)
	b=${EPOCHREALTIME/./}
	printf '%s %s %s\n' "${a:0:13}" "${b:0:13}" "$codes" >>"$out/log"
	sleep 0.05
done
touch "$out/done"
