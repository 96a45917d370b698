#!/bin/bash
# firstboot agent and `imagegen job` over rediss:// against real
# redis-servers (Debian's, built with TLS) on 127.0.0.1 TLS ports, with a
# throwaway CA made here by openssl(1): the server's certificate is
# checked against jobs.tls_ca_file (or the system's store) and for the
# URL's host; a password or an ACL user goes over TLS; a client
# certificate when the server asks for one. Every wait is bounded.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

for c in redis-server redis-cli openssl; do
	if ! command -v "$c" >/dev/null; then
		echo "not ok - the TLS agent tests need $c (packaging/deps.sh)"
		exit 1
	fi
done

R=$T/root
new_root "$R"
P=$T/pki
mkdir -p "$R/etc/firstboot" "$R/etc/ssl/redis" "$P"
SECRET=Sx$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$SECRET" >"$T/secret"
chmod 0600 "$T/secret"
cp "$T/secret" "$R/etc/firstboot/jobs.secret"
AGENT_ID=tls1
mkmodule "$R/usr/lib/firstboot" hello <<'EOF'
#!/bin/sh
echo "hello over tls"
EOF

# ca NAME: a self-signed CA. cert NAME CA SAN [clientAuth]: a key and a
# certificate signed by CA, for the subjectAltName SAN.
ca() {
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" \
		-keyout "$P/$1.key" -out "$P/$1.pem" 2>>"$T/openssl.log"
}
cert() {
	local eku=${4:-serverAuth}
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$P/$1.key" -out "$P/$1.csr" \
		2>>"$T/openssl.log" &&
		printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$3" "$eku" >"$P/$1.ext" &&
		openssl x509 -req -in "$P/$1.csr" -CA "$P/$2.pem" -CAkey "$P/$2.key" -CAcreateserial \
			-days 2 -extfile "$P/$1.ext" -out "$P/$1.pem" 2>>"$T/openssl.log"
}
if ! { ca ca1 && ca ca2 && cert good ca1 "IP:127.0.0.1,DNS:localhost" &&
	cert stranger ca2 "IP:127.0.0.1,DNS:localhost" && cert elsewhere ca1 "DNS:other.example" &&
	cert client ca1 "DNS:agent" clientAuth; }; then
	echo "not ok - openssl makes the test CA and certificates"
	cat "$T/openssl.log"
	exit 1
fi
# expired: from ca1 for 127.0.0.1 and localhost, valid only in 2020
# (openssl ca sets the dates: ca(1ssl) -startdate, -enddate). cnonly:
# from ca1, CN=localhost and no subjectAltName at all.
printf '[ca]\ndefault_ca=d\n[d]\ndatabase=%s/index.txt\nnew_certs_dir=%s\nserial=%s/serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' \
	"$P" "$P" "$P" >"$P/ca.cnf"
: >"$P/index.txt"
echo 1000 >"$P/serial"
if ! { openssl req -newkey rsa:2048 -nodes -subj /CN=expired -keyout "$P/expired.key" \
	-out "$P/expired.csr" 2>>"$T/openssl.log" &&
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$P/expired.ext" &&
	openssl ca -batch -notext -config "$P/ca.cnf" -cert "$P/ca1.pem" -keyfile "$P/ca1.key" \
		-in "$P/expired.csr" -out "$P/expired.pem" -startdate 20200101000000Z \
		-enddate 20200102000000Z -extfile "$P/expired.ext" >>"$T/openssl.log" 2>&1 &&
	openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$P/cnonly.key" \
		-out "$P/cnonly.csr" 2>>"$T/openssl.log" &&
	openssl x509 -req -in "$P/cnonly.csr" -CA "$P/ca1.pem" -CAkey "$P/ca1.key" \
		-CAcreateserial -days 2 -out "$P/cnonly.pem" 2>>"$T/openssl.log"; }; then
	echo "not ok - openssl makes the expired and the CN-only certificates"
	cat "$T/openssl.log"
	exit 1
fi
cp "$P/ca1.pem" "$R/etc/ssl/redis/ca.pem"

# tls_redis NAME VAR CERT [ARGS...]: a redis-server on 127.0.0.1 speaking
# TLS only, with CERT, trusting ca1 for client certificates; its port
# (free_port's) in the variable VAR. A port taken between the pick and the
# bind (the server exits: address in use) is picked again, five tries at
# most, as redis_start does.
tls_redis() {
	local name=$1 var=$2 crt=$3 port pid i try
	shift 3
	mkdir -p "$T/$name"
	for ((try = 0; try < 5; try++)); do
		port=$(free_port) || break
		printf -v "$var" '%s' "$port"
		redis-server --port 0 --tls-port "$port" --bind 127.0.0.1 --save '' --appendonly no \
			--dir "$T/$name" --tls-cert-file "$P/$crt.pem" --tls-key-file "$P/$crt.key" \
			--tls-ca-cert-file "$P/ca1.pem" "$@" >>"$T/$name/redis.log" 2>&1 &
		pid=$!
		_pids+=("$pid")
		for ((i = 0; i < 200; i++)); do
			[ "$(tcli "$port" ping 2>/dev/null)" = PONG ] && return 0
			proc_gone "$pid" && break
			sleep 0.05
		done
		kill "$pid" 2>/dev/null
		reap "$pid" 10 2>/dev/null
	done
	echo "not ok - redis-server $name starts with TLS (last on port ${port:-none})"
	cat "$T/$name/redis.log"
	exit 1
}
# tcli PORT ARGS...: redis-cli over TLS as the test's ACL user, trusting
# ca2 for the server that has its certificate, else ca1 (redis-cli(1)
# --insecure for the expired and the CN-only ones).
tcli() {
	local port=$1 ca=(--cacert "$P/ca1.pem")
	shift
	[ "$port" != "${POTHER:-}" ] || ca=(--cacert "$P/ca2.pem")
	# The servers with a certificate made to be refused.
	[ "$port" != "${PEXPIRED:-}" ] && [ "$port" != "${PCN:-}" ] || ca=(--insecure)
	redis-cli --tls "${ca[@]}" --cert "$P/client.pem" --key "$P/client.key" \
		-h 127.0.0.1 -p "$port" --user ops --pass "$OPS_PASS" --no-auth-warning "$@"
}

# Ports from free_port (TEST_PORTS when set), each taken before the next.
OPS_PASS=Ops$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
# The ACL: no default user; ops with a password, allowed everything.
printf 'user default off\nuser ops on >%s ~* &* +@all\n' "$OPS_PASS" >"$T/users.acl"
ACL=(--aclfile "$T/users.acl")
tls_redis good PGOOD good --tls-auth-clients no "${ACL[@]}"
tls_redis other POTHER stranger --tls-auth-clients no "${ACL[@]}"
tls_redis name PNAME elsewhere --tls-auth-clients no "${ACL[@]}"
tls_redis client PCLIENT good --tls-auth-clients yes "${ACL[@]}"
tls_redis expired PEXPIRED expired --tls-auth-clients no "${ACL[@]}"
tls_redis cn PCN cnonly --tls-auth-clients no "${ACL[@]}"

conf() { # PORT [HOST]
	cat >"$R/etc/firstboot/firstboot.conf" <<EOF
retry_backoff_ms: 10
jobs:
  redis_url: rediss://ops:$OPS_PASS@${2:-127.0.0.1}:$1
  tls_ca_file: /etc/ssl/redis/ca.pem
  agent_id: $AGENT_ID
  stop_timeout_s: 2
  heartbeat_s: 1
EOF
}
AGENT_PID=
start_agent() {
	: >"$T/agent.log"
	"$FIRSTBOOT" agent --root "$R" >>"$T/agent.log" 2>&1 &
	AGENT_PID=$!
	_pids+=("$AGENT_PID")
}
stop_agent() {
	kill "$AGENT_PID" 2>/dev/null
	reap "$AGENT_PID" 20 2>/dev/null
}
URL="rediss://ops:$OPS_PASS@127.0.0.1:$PGOOD"
submit() { # URL ARGS...
	local url=$1
	shift
	"$IMAGEGEN" job submit --redis "$url" --tls-ca-file "$P/ca1.pem" --agent "$AGENT_ID" \
		--secret-file "$T/secret" "$@"
}

t_case "the agent takes a job over rediss:// (ACL user, jobs.tls_ca_file) and its result arrives over TLS"
conf "$PGOOD"
start_agent
if wait_for 10 grep -q "Connected to Redis at 127.0.0.1:$PGOOD" "$T/agent.log" &&
	expect_rc 0 submit "$URL" --wait --timeout 20 hello && grep -q "hello over tls" "$T/out" &&
	id=$(tcli "$PGOOD" --scan --pattern 'job:*:result' | head -n1) && [ -n "$id" ] &&
	tcli "$PGOOD" GET "$id" | grep -q '"succeeded"'; then
	t_pass
else t_fail "$(cat "$T/agent.log")"; fi

t_case "imagegen job over rediss://localhost (SNI, a DNS name in the certificate): submit --wait and status"
if expect_rc 0 submit "rediss://ops:$OPS_PASS@localhost:$PGOOD" --wait --timeout 20 hello &&
	jid=$(head -n1 "$T/out") &&
	expect_rc 0 "$IMAGEGEN" job status --redis "rediss://ops:$OPS_PASS@localhost:$PGOOD" \
		--tls-ca-file "$P/ca1.pem" "$jid" && grep -q succeeded "$T/out"; then
	t_pass
else t_fail "job id '${jid:-}'"; fi
stop_agent

# tls_status RC USERINFO@HOST:PORT [OPTION...]: imagegen job status over
# rediss:// with the test CA, for an id that has no result, exits RC.
tls_status() {
	local rc=$1 at=$2
	shift 2
	expect_rc "$rc" "$IMAGEGEN" job status --redis "rediss://$at" --tls-ca-file "$P/ca1.pem" "$@" \
		00000000-0000-4000-8000-000000000000
}

t_case "a wrong password over TLS: AUTH refused, said so, no password in the message"
if tls_status 1 "ops:wrong-Pass@127.0.0.1:$PGOOD" &&
	grep -q "Redis refused AUTH as ops" "$T/err" && ! grep -q "wrong-Pass" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "the system's CA store by default: a private CA's server is refused"
if expect_rc 1 "$IMAGEGEN" job status --redis "$URL" 00000000-0000-4000-8000-000000000000 &&
	grep -E -q "TLS: the certificate of Redis at 127.0.0.1:$PGOOD is refused: (unable to get local issuer certificate|self-signed certificate in certificate chain)" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

# refused_agent PORT HOST WHAT: a job waits on that server's queue (made
# by imagegen on the good server, moved there by redis-cli, which checks
# no host name); the agent refuses the server (exit 1, the TLS error
# logged) and runs nothing.
refused_agent() {
	local port=$1 host=$2 what=$3 rc elem
	tcli "$port" DEL "agent:$AGENT_ID:jobs" >/dev/null
	submit "$URL" hello >"$T/refused.id" 2>"$T/err" || return 1
	elem=$(tcli "$PGOOD" RPOP "agent:$AGENT_ID:jobs") && [ -n "$elem" ] || return 1
	tcli "$port" LPUSH "agent:$AGENT_ID:jobs" "$elem" >/dev/null || return 1
	conf "$port" "$host"
	"$FIRSTBOOT" agent --root "$R" >"$T/agent.log" 2>&1 &
	AGENT_PID=$!
	_pids+=("$AGENT_PID")
	wait_for 20 proc_gone "$AGENT_PID" || return 1
	wait "$AGENT_PID"
	rc=$?
	[ "$rc" = 1 ] && grep -q "the certificate of Redis at $host:$port is refused: $what" "$T/agent.log" &&
		! grep -q "Connected to Redis" "$T/agent.log" &&
		[ "$(tcli "$port" LLEN "agent:$AGENT_ID:jobs")" = 1 ] &&
		[ ! -e "$R/var/log/firstboot/jobs/$(cat "$T/refused.id").log" ]
}

t_case "a server whose certificate another CA signed: the agent refuses it, logs why, runs no job"
if refused_agent "$POTHER" 127.0.0.1 "unable to get local issuer certificate (not signed by the CA of jobs.tls_ca_file)"; then
	t_pass
else t_fail "$(cat "$T/agent.log" "$T/err")"; fi

t_case "a certificate from the right CA for another host: the agent refuses it (the URL's host is checked)"
if refused_agent "$PNAME" 127.0.0.1 "IP address mismatch" &&
	grep -q "the URL's host is not among its names" "$T/agent.log"; then
	t_pass
else t_fail "$(cat "$T/agent.log" "$T/err")"; fi
if tls_status 1 "ops:$OPS_PASS@localhost:$PNAME" &&
	grep -q "refused: hostname mismatch" "$T/err"; then
	echo "ok - the same by DNS name: hostname mismatch"
else
	echo "not ok - the same by DNS name: hostname mismatch"
	sed 's/^/  # /' "$T/err"
fi

t_case "a server that asks for a client certificate: refused without one, served with --tls-cert-file/--tls-key-file"
ok=0
tls_status 1 "ops:$OPS_PASS@127.0.0.1:$PCLIENT" && ok=1
# No result for that id: exit 2 means connected, AUTHed and asked.
tls_status 2 "ops:$OPS_PASS@127.0.0.1:$PCLIENT" --tls-cert-file "$P/client.pem" \
	--tls-key-file "$P/client.key" || ok=0
tls_status 1 "ops:$OPS_PASS@127.0.0.1:$PCLIENT" --tls-cert-file "$P/client.pem" &&
	grep -q "needs both its file and its key file" "$T/err" || ok=0
expect_rc 1 "$IMAGEGEN" job status --redis "redis://127.0.0.1:$PCLIENT" --tls-ca-file "$P/ca1.pem" \
	00000000-0000-4000-8000-000000000000 && grep -q "need a rediss:// (TLS) URL" "$T/err" || ok=0
if [ "$ok" = 1 ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "rediss:// to a port that speaks no TLS: a TLS error that says so"
PORT=
if ! redis_start "$T/plain"; then
	t_fail "redis-server starts on $PORT"
elif tls_status 1 "127.0.0.1:$PORT" &&
	grep -q "TLS handshake with Redis at 127.0.0.1:$PORT failed: .*(does that port speak TLS?)" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "an expired certificate from the right CA: said as expired, with no hint about the CA"
if tls_status 1 "ops:$OPS_PASS@127.0.0.1:$PEXPIRED" &&
	grep -q "is refused: certificate has expired$" "$T/err" && ! grep -q "not signed" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "another CA's certificate: the hint names imagegen's option, --tls-ca-file"
if tls_status 1 "ops:$OPS_PASS@127.0.0.1:$POTHER" &&
	grep -q "unable to get local issuer certificate (not signed by the CA of --tls-ca-file)" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "a certificate that names localhost only in its CN (no subjectAltName) is refused for rediss://localhost"
if tls_status 1 "ops:$OPS_PASS@localhost:$PCN" &&
	grep -q "refused: hostname mismatch" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

# closing_listener: a listener on 127.0.0.1 that accepts each connection
# and closes it at once (tests/e2e/peers/odd-redis.py); its port in LPORT.
closing_listener() {
	LPORT=$(free_port) || return 1
	python3 "$PEERS/odd-redis.py" close "$LPORT" &
	_pids+=($!)
	wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$LPORT" 2>/dev/null
}

t_case "imagegen job over rediss:// to a listener that closes at once: exit 1 with a message (no SIGPIPE)"
if closing_listener &&
	tls_status 1 "ops:$OPS_PASS@127.0.0.1:$LPORT" &&
	grep -q "imagegen job: .*127.0.0.1:$LPORT" "$T/err" &&
	expect_rc 1 "$IMAGEGEN" job submit --redis "redis://127.0.0.1:$LPORT" --agent x \
		--secret-file "$T/secret" hello &&
	grep -q "imagegen job: " "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "rediss:// to a listener that closes mid-handshake: OpenSSL's reason or the peer closing, no stale errno text"
if tls_status 1 "127.0.0.1:$LPORT" &&
	grep -q "TLS handshake with Redis at 127.0.0.1:$LPORT failed: \(.*unexpected eof while reading\|connection closed by peer\|Connection reset by peer\) (does that port speak TLS?)$" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "imagegen job --wait over rediss://, the server's TLS broken mid-wait: OpenSSL's reason, not strerror of a stale errno ('Success')"
GPORT=$(free_port)
python3 "$PEERS/odd-redis.py" tls-garbage "$GPORT" "$P/good.pem" "$P/good.key" &
_pids+=($!)
if wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$GPORT" 2>/dev/null &&
	expect_rc 1 timeout 20 "$IMAGEGEN" job submit --redis "rediss://127.0.0.1:$GPORT" \
		--tls-ca-file "$P/ca1.pem" --agent nobody --secret-file "$T/secret" --wait --timeout 10 hello &&
	grep -q "^imagegen job: Redis: error:.*:SSL routines::wrong version number$" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

# count_attempts SECONDS PATTERN: the agent's log lines matching PATTERN
# after SECONDS of running against the current config; the agent stopped.
count_attempts() {
	start_agent
	sleep "$1" # the window attempts are counted in
	stop_agent
	grep -c "$2" "$T/agent.log"
}

t_case "a TLS server that requires a client certificate the agent has none of: a bounded backoff, OpenSSL's reason"
conf "$PCLIENT"
n=$(count_attempts 4 "Redis: ")
if [ "$n" -ge 1 ] && [ "$n" -le 10 ] && grep -q "certificate required" "$T/agent.log" &&
	! grep -q "Connected to Redis" "$T/agent.log"; then
	t_pass
else t_fail "$n attempts in 4 s: $(head -c 2000 "$T/agent.log")"; fi

t_case "a plain listener that takes the connection and closes it: the agent backs off the same"
sed -i "s|redis_url: .*|redis_url: redis://127.0.0.1:$LPORT|; /tls_ca_file/d" "$R/etc/firstboot/firstboot.conf"
n=$(count_attempts 4 "Redis: ")
if [ "$n" -ge 1 ] && [ "$n" -le 10 ] && ! grep -q "Connected to Redis" "$T/agent.log"; then
	t_pass
else t_fail "$n attempts in 4 s: $(head -c 2000 "$T/agent.log")"; fi

t_case "a server that answers PING and drops the next command: reconnects back off until a command gets its reply"
# A stand-in for Redis on 127.0.0.1 (odd-redis.py): +PONG to the first
# command of each connection, then the connection closed.
PPORT=$(free_port)
python3 "$PEERS/odd-redis.py" pong-drop "$PPORT" &
_pids+=($!)
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PPORT" 2>/dev/null
sed -i "s|redis_url: .*|redis_url: redis://127.0.0.1:$PPORT|" "$R/etc/firstboot/firstboot.conf"
n=$(count_attempts 4 "Connected to Redis")
if [ "$n" -ge 1 ] && [ "$n" -le 10 ]; then
	t_pass
else t_fail "$n connections in 4 s: $(head -c 2000 "$T/agent.log")"; fi

# tls_files_agent KEYFILE: the agent with a client certificate and KEYFILE
# (in the root) as jobs.tls_key_file; its exit status.
tls_files_agent() {
	conf "$PCLIENT"
	printf '  tls_cert_file: /etc/ssl/redis/client.pem\n  tls_key_file: %s\n' "$1" \
		>>"$R/etc/firstboot/firstboot.conf"
	timeout 10 "$FIRSTBOOT" agent --root "$R" >"$T/agent.log" 2>&1
}
cp "$P/client.pem" "$R/etc/ssl/redis/client.pem"

t_case "a FIFO as jobs.tls_key_file: refused at once as not a regular file (no hang)"
mkfifo "$R/etc/ssl/redis/fifo.key"
tls_files_agent /etc/ssl/redis/fifo.key
rc=$?
if [ "$rc" = 1 ] && grep -q "jobs.tls_key_file /etc/ssl/redis/fifo.key is not a regular file" "$T/agent.log"; then
	t_pass
else t_fail "exit $rc: $(cat "$T/agent.log")"; fi

t_case "a jobs.tls_key_file group or others can read: refused, naming the mode"
cp "$P/client.key" "$R/etc/ssl/redis/client.key"
chmod 0640 "$R/etc/ssl/redis/client.key"
tls_files_agent /etc/ssl/redis/client.key
rc=$?
if [ "$rc" = 1 ] && grep -q "jobs.tls_key_file /etc/ssl/redis/client.key is mode 0640: group and others must have no access" "$T/agent.log"; then
	chmod 0600 "$R/etc/ssl/redis/client.key"
	t_pass
else t_fail "exit $rc: $(cat "$T/agent.log")"; fi

t_case "a jobs.tls_key_file that is not the certificate's key: exit 1, OpenSSL's error naming the configured files (not /proc/self/fd)"
cp "$P/good.key" "$R/etc/ssl/redis/other.key"
chmod 0600 "$R/etc/ssl/redis/other.key"
tls_files_agent /etc/ssl/redis/other.key
rc=$?
if [ "$rc" = 1 ] &&
	grep -q "cannot load the TLS client certificate /etc/ssl/redis/client.pem with the key /etc/ssl/redis/other.key" "$T/agent.log" &&
	! grep -q "/proc/self/fd" "$T/agent.log"; then
	t_pass
else t_fail "exit $rc: $(cat "$T/agent.log")"; fi

# trickling_listener: a listener on 127.0.0.1 that answers each connection
# with one byte of a TLS record every second, never a whole record
# (odd-redis.py); its port in TPORT. Each connection it takes adds a line
# to $T/trickle.accepted, and a line "hello" once the client's hello came.
trickling_listener() {
	TPORT=$(free_port) || return 1
	python3 "$PEERS/odd-redis.py" trickle "$TPORT" "$T/trickle.accepted" &
	_pids+=($!)
	wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$TPORT" 2>/dev/null
}

t_case "a peer that trickles a byte a second: the TLS handshake fails within the connect timeout (5 s), said so"
start=$SECONDS
if trickling_listener &&
	expect_rc 1 timeout 15 "$IMAGEGEN" job status --redis "rediss://127.0.0.1:$TPORT" \
		--tls-ca-file "$P/ca1.pem" 00000000-0000-4000-8000-000000000000 &&
	grep -q "TLS handshake with Redis at 127.0.0.1:$TPORT failed: not done within 5000 ms" "$T/err"; then
	t_pass
else t_fail "$((SECONDS - start)) s: $(cat "$T/err")"; fi

t_case "SIGTERM during the agent's TLS handshake: said as a signal, not as a timeout; the agent stops"
conf "$TPORT"
: >"$T/trickle.accepted"
start_agent
# The agent is in its handshake once the listener has its hello (the log
# says nothing before), and waits in poll() for the answer once its main
# thread sleeps after that (it has nothing else to sleep on).
# main_sleeps: the agent's main thread is asleep (S in /proc, proc(5)).
main_sleeps() { [ "$(sed 's/.*) //' "/proc/$AGENT_PID/task/$AGENT_PID/stat" | cut -d' ' -f1)" = S ]; }
ok=0
wait_for 20 grep -qx hello "$T/trickle.accepted" && wait_for 10 main_sleeps && ok=1
stop_agent
rc=$?
if [ "$ok" = 1 ] && grep -q "TLS handshake with Redis at 127.0.0.1:$TPORT: interrupted by a signal" "$T/agent.log" &&
	! grep -q "before the timeout\|not done within" "$T/agent.log" &&
	grep -q "Agent $AGENT_ID stopped" "$T/agent.log" && [ "$rc" != 124 ]; then
	t_pass
else t_fail "$(cat "$T/agent.log")"; fi
