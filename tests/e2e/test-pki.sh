#!/bin/bash
# imagegen's PKI and secrets store, end to end through tests/tools/pki-tool
# and checked with openssl(1) and curl: the CA and server certificate
# verify and carry the SANs, keys are P-256 and private, a second run
# changes no byte and no mtime, a real TLS handshake succeeds for each
# name (and fails for a name not in the certificate and against another
# CA), renewal on changed names, near expiry and near the CA's end, bad
# files refused with the old files intact; then `keygen`'s Ed25519 pair
# signing and verifying with openssl, and the secrets store's reuse and
# refusals.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

TOOL="$(dirname "$FIRSTBOOT")/tests/tools/pki-tool"
if [ ! -x "$TOOL" ]; then
	echo "not ok - pki-tool is built ($TOOL missing: run make)"
	exit 1
fi

P=$T/site/.imagegen/pki
NAMES=(--dns colony.test --dns www.colony.test --ip 127.0.0.1)

# snapshot DIR: every file's name, mode, mtime (ns) and sha256.
snapshot() {
	(cd "$1" && for f in *; do [ -f "$f" ] && printf '%s %s %s\n' "$f" "$(stat -c '%a %Y.%y' "$f")" "$(sha256sum <"$f")"; done)
}

# start_tls DIR: openssl s_server with DIR's certificate on a free
# loopback port; sets tls_port. One server at a time.
tls_pid=""
start_tls() {
	stop_tls
	rm -f "$T/s_server.log"
	openssl s_server -cert "$1/server.crt" -key "$1/server.key" -accept 127.0.0.1:0 -www \
		</dev/null >"$T/s_server.log" 2>&1 &
	tls_pid=$!
	_pids+=("$tls_pid")
	if ! wait_for 10 grep -q '^ACCEPT 127.0.0.1:[0-9]' "$T/s_server.log"; then
		echo "  # s_server did not start: $(cat "$T/s_server.log")"
		return 1
	fi
	tls_port=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/s_server.log")
}
stop_tls() {
	if [ -n "$tls_pid" ]; then
		kill "$tls_pid" 2>/dev/null
		wait "$tls_pid" 2>/dev/null
		tls_pid=""
	fi
}

# handshake CA NAME: s_client verifying the chain and the host name, then
# curl fetching the page by that name.
handshake() {
	local ca=$1 name=$2
	echo | timeout 10 openssl s_client -verify_return_error -CAfile "$ca" -servername "$name" \
		-verify_hostname "$name" -connect "127.0.0.1:$tls_port" >"$T/s_client.out" 2>&1 || return 1
	grep -q 'Verify return code: 0 (ok)' "$T/s_client.out" || return 1
	curl -sS --max-time 10 --cacert "$ca" --resolve "$name:$tls_port:127.0.0.1" \
		"https://$name:$tls_port/" >"$T/curl.out" 2>"$T/curl.err" || return 1
	grep -q 's_server' "$T/curl.out"
}

t_case "first run creates the CA and the server certificate"
if expect_rc 0 "$TOOL" ensure "$P" "${NAMES[@]}" &&
	grep -q '^CA created (valid until [0-9-]*); server certificate for colony.test, www.colony.test, 127.0.0.1 created' "$T/out"; then
	t_pass
else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "modes: dir 0700, keys 0600, certificates 0644, the check record 0600"
got=$(cd "$P" && stat -c '%a %n' . ca.key ca.crt server.key server.crt fullchain.pem .checked | tr '\n' ' ')
want="700 . 600 ca.key 644 ca.crt 600 server.key 644 server.crt 644 fullchain.pem 600 .checked "
if [ "$got" = "$want" ] && [ "$(find "$P" -mindepth 1 | wc -l)" -eq 6 ]; then t_pass; else t_fail "$got"; fi

t_case "openssl verify -CAfile ca.crt server.crt"
if (cd "$P" && openssl verify -purpose sslserver -CAfile ca.crt server.crt) >"$T/v.out" 2>&1 &&
	grep -qx 'server.crt: OK' "$T/v.out"; then
	t_pass
else t_fail "$(cat "$T/v.out")"; fi

t_case "server certificate carries the SANs"
openssl x509 -in "$P/server.crt" -noout -ext subjectAltName >"$T/san" 2>&1
if grep -q 'DNS:colony.test, DNS:www.colony.test, IP Address:127.0.0.1$' "$T/san"; then t_pass; else t_fail "$(cat "$T/san")"; fi

t_case "server extensions: serverAuth, CA:FALSE, key identifiers"
openssl x509 -in "$P/server.crt" -noout -ext extendedKeyUsage,basicConstraints,subjectKeyIdentifier,authorityKeyIdentifier >"$T/ext" 2>&1
ca_ski=$(openssl x509 -in "$P/ca.crt" -noout -ext subjectKeyIdentifier | tail -n 1 | tr -d ' ')
aki=$(grep -A1 'Authority Key Identifier' "$T/ext" | tail -n 1 | tr -d ' ')
if grep -q 'TLS Web Server Authentication' "$T/ext" && grep -q 'Basic Constraints: critical' "$T/ext" &&
	grep -q 'CA:FALSE' "$T/ext" && [ -n "$ca_ski" ] && [ "$aki" = "$ca_ski" ]; then
	t_pass
else t_fail "$(cat "$T/ext") ca ski $ca_ski"; fi

t_case "CA extensions: CA:TRUE and keyCertSign+cRLSign, both critical"
openssl x509 -in "$P/ca.crt" -noout -ext basicConstraints,keyUsage >"$T/caext" 2>&1
if grep -A1 'Basic Constraints: critical' "$T/caext" | grep -q 'CA:TRUE' &&
	grep -A1 'Key Usage: critical' "$T/caext" | grep -qx ' *Certificate Sign, CRL Sign'; then
	t_pass
else t_fail "$(cat "$T/caext")"; fi

t_case "keys are ECDSA prime256v1 and match their certificates"
ok=1
for k in ca server; do
	openssl pkey -in "$P/$k.key" -noout -text 2>&1 | grep -q 'ASN1 OID: prime256v1' || ok=0
	openssl x509 -in "$P/$k.crt" -noout -text 2>&1 | grep -q 'ASN1 OID: prime256v1' || ok=0
	[ "$(openssl pkey -in "$P/$k.key" -pubout)" = "$(openssl x509 -in "$P/$k.crt" -noout -pubkey)" ] || ok=0
done
if [ "$ok" = 1 ]; then t_pass; else t_fail "key type or match"; fi

t_case "fullchain.pem is server.crt then ca.crt"
if cat "$P/server.crt" "$P/ca.crt" | cmp -s - "$P/fullchain.pem"; then t_pass; else t_fail "differs"; fi

t_case "second run reuses every file: same bytes, same mtimes"
before=$(snapshot "$P")
if expect_rc 0 "$TOOL" ensure "$P" --ip 127.0.0.1 --dns WWW.colony.test --dns colony.test &&
	grep -q '^CA reused .*server certificate for .* reused' "$T/out" && [ "$(snapshot "$P")" = "$before" ]; then
	t_pass
else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "the check record is no shortcut past changed files: another server.key is caught"
cp -a "$P" "$T/pki-swapped"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/pki-swapped/server.key" 2>/dev/null
chmod 0600 "$T/pki-swapped/server.key"
if expect_rc 0 "$TOOL" ensure "$T/pki-swapped" "${NAMES[@]}" &&
	grep -q 'server certificate for .* renewed: server.key did not match' "$T/out" &&
	(cd "$T/pki-swapped" && openssl x509 -in server.crt -noout -pubkey | cmp -s - <(openssl pkey -in server.key -pubout)); then
	t_pass
else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "a damaged check record is ignored: the files are checked in full, reused, the record rewritten"
cp -a "$P" "$T/pki-record"
echo 'v1 garbage' >"$T/pki-record/.checked"
before=$(snapshot "$T/pki-record")
if expect_rc 0 "$TOOL" ensure "$T/pki-record" "${NAMES[@]}" &&
	grep -q '^CA reused .*server certificate for .* reused' "$T/out" &&
	[ "$(snapshot "$T/pki-record")" = "$before" ] && cmp -s "$P/.checked" "$T/pki-record/.checked"; then
	t_pass
else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "TLS handshake by DNS name and by IP (s_client and curl)"
if start_tls "$P" && handshake "$P/ca.crt" colony.test && handshake "$P/ca.crt" www.colony.test &&
	curl -sS --max-time 10 --cacert "$P/ca.crt" "https://127.0.0.1:$tls_port/" >"$T/curl.out" 2>&1; then
	t_pass
else t_fail "$(cat "$T/s_client.out" "$T/curl.err" 2>/dev/null | tail -n 5)"; fi

t_case "TLS handshake fails for a name not in the certificate"
if ! handshake "$P/ca.crt" other.test && grep -q 'hostname mismatch' "$T/s_client.out"; then t_pass; else t_fail "accepted other.test"; fi

t_case "TLS handshake fails against another CA"
expect_rc 0 "$TOOL" ensure "$T/other/pki" "${NAMES[@]}" || true
if ! handshake "$T/other/pki/ca.crt" colony.test && grep -q 'Verify return code: [1-9]' "$T/s_client.out"; then
	t_pass
else t_fail "the other CA was accepted"; fi

t_case "changed names renew the server certificate, keep the CA"
ca_before=$(sha256sum <"$P/ca.crt")$(sha256sum <"$P/ca.key")
crt_before=$(sha256sum <"$P/server.crt")
if expect_rc 0 "$TOOL" ensure "$P" --dns colony.test --dns api.colony.test --ip 127.0.0.1 &&
	grep -q 'server certificate for .* renewed: names changed' "$T/out" &&
	[ "$(sha256sum <"$P/ca.crt")$(sha256sum <"$P/ca.key")" = "$ca_before" ] &&
	[ "$(sha256sum <"$P/server.crt")" != "$crt_before" ] &&
	openssl x509 -in "$P/server.crt" -noout -ext subjectAltName | grep -q 'DNS:colony.test, DNS:api.colony.test, IP Address:127.0.0.1$' &&
	(cd "$P" && openssl verify -CAfile ca.crt server.crt >/dev/null 2>&1) &&
	cat "$P/server.crt" "$P/ca.crt" | cmp -s - "$P/fullchain.pem"; then
	t_pass
else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "renewed certificate serves the new name over TLS"
if start_tls "$P" && handshake "$P/ca.crt" api.colony.test && ! handshake "$P/ca.crt" www.colony.test; then
	t_pass
else t_fail "$(tail -n 5 "$T/s_client.out")"; fi
stop_tls

t_case "a certificate expiring within 30 days is renewed"
NEW=(--dns colony.test --dns api.colony.test --ip 127.0.0.1)
Q=$T/short/pki
if expect_rc 0 "$TOOL" ensure "$Q" "${NEW[@]}" --days 10 &&
	! openssl x509 -in "$Q/server.crt" -noout -checkend $((30 * 86400)) >/dev/null &&
	expect_rc 0 "$TOOL" ensure "$Q" "${NEW[@]}" &&
	grep -q '^CA reused .*renewed: expiring within 30 days' "$T/out" &&
	openssl x509 -in "$Q/server.crt" -noout -checkend $((800 * 86400)) >/dev/null &&
	(cd "$Q" && openssl verify -CAfile ca.crt server.crt >/dev/null 2>&1); then
	t_pass
else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "near the CA's end, the CA is made anew (checked at that time)"
cp -a "$P" "$T/pki-future"
later=$(($(date +%s) + 3630 * 86400))
if expect_rc 0 "$TOOL" ensure "$T/pki-future" "${NEW[@]}" --at-days 3630 &&
	grep -q '^CA renewed: expiring within 30 days .*renewed: new CA' "$T/out" &&
	! cmp -s "$P/ca.key" "$T/pki-future/ca.key" &&
	(cd "$T/pki-future" && openssl verify -attime "$later" -CAfile ca.crt server.crt >/dev/null 2>&1); then
	t_pass
else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "corrupt server.crt: error names it, nothing changes"
cp "$P/server.crt" "$T/server.crt.good"
echo 'garbage' >"$P/server.crt"
before=$(snapshot "$P")
if expect_rc 1 "$TOOL" ensure "$P" "${NEW[@]}" && grep -qF "$P/server.crt: not a PEM certificate" "$T/err" &&
	[ "$(snapshot "$P")" = "$before" ] && [ "$(find "$P" -mindepth 1 | wc -l)" -eq 6 ]; then
	t_pass
else t_fail "$(cat "$T/err")"; fi
cp "$T/server.crt.good" "$P/server.crt"

t_case "corrupt ca.key: error names it, nothing changes"
cp "$P/ca.key" "$T/ca.key.good"
printf -- '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' >"$P/ca.key"
before=$(snapshot "$P")
if expect_rc 1 "$TOOL" ensure "$P" --dns changed.test && grep -qF "$P/ca.key: not a usable PEM private key" "$T/err" &&
	[ "$(snapshot "$P")" = "$before" ]; then
	t_pass
else t_fail "$(cat "$T/err")"; fi
cp "$T/ca.key.good" "$P/ca.key"

t_case "a private key readable by others is refused"
chmod 0644 "$P/server.key"
before=$(snapshot "$P")
if expect_rc 1 "$TOOL" ensure "$P" "${NEW[@]}" && grep -q 'server.key: permissions 0644 are too open' "$T/err" &&
	[ "$(snapshot "$P")" = "$before" ]; then
	t_pass
else t_fail "$(cat "$T/err")"; fi
chmod 0600 "$P/server.key"

t_case "bad names are refused"
if expect_rc 1 "$TOOL" ensure "$T/bad" --dns 'bad name' && grep -q '"bad name" is not a DNS name' "$T/err" &&
	expect_rc 1 "$TOOL" ensure "$T/bad" --ip 300.1.1.1 && grep -q '"300.1.1.1" is not an IP address' "$T/err" &&
	[ ! -e "$T/bad" ]; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "the files still work after the refusals"
if expect_rc 0 "$TOOL" ensure "$P" "${NEW[@]}" && grep -q 'server certificate for .* reused' "$T/out" &&
	(cd "$P" && openssl verify -CAfile ca.crt server.crt >/dev/null 2>&1); then
	t_pass
else t_fail "$(cat "$T/out" "$T/err")"; fi

# --- keygen ---

K=$T/keys
t_case "keygen: an Ed25519 pair, private 0600, public 0644"
if expect_rc 0 "$TOOL" keygen "$K" &&
	[ "$(cd "$K" && stat -c '%a %n' . signing.key signing.pub | tr '\n' ' ')" = "700 . 600 signing.key 644 signing.pub " ] &&
	head -n 1 "$K/signing.key" | grep -qx -- '-----BEGIN PRIVATE KEY-----' &&
	head -n 1 "$K/signing.pub" | grep -qx -- '-----BEGIN PUBLIC KEY-----' &&
	openssl pkey -in "$K/signing.key" -noout -text 2>&1 | grep -q 'ED25519 Private-Key' &&
	[ "$(openssl pkey -in "$K/signing.key" -pubout)" = "$(cat "$K/signing.pub")" ]; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "keygen: openssl signs with the key and verifies with the public key"
printf 'version: 1\nname: test\n' >"$T/msg"
if openssl pkeyutl -sign -rawin -inkey "$K/signing.key" -in "$T/msg" -out "$T/sig" 2>"$T/err" &&
	openssl pkeyutl -verify -rawin -pubin -inkey "$K/signing.pub" -in "$T/msg" -sigfile "$T/sig" >/dev/null 2>&1 &&
	printf 'changed\n' >>"$T/msg" &&
	! openssl pkeyutl -verify -rawin -pubin -inkey "$K/signing.pub" -in "$T/msg" -sigfile "$T/sig" >/dev/null 2>&1; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "keygen refuses to overwrite a key"
before=$(snapshot "$K")
if expect_rc 1 "$TOOL" keygen "$K" && grep -qF "$K/signing.key already exists" "$T/err" &&
	[ "$(snapshot "$K")" = "$before" ]; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

# --- secrets ---

S=$T/site/.imagegen/state.json
t_case "secrets: generated once, then reused without touching the file"
if expect_rc 0 "$TOOL" secret "$S" postgres.password password && pw=$(cat "$T/out") &&
	[[ $pw =~ ^[A-Za-z0-9]{32}$ ]] &&
	[ "$(stat -c '%a' "$S") $(stat -c '%a' "$(dirname "$S")")" = "600 700" ]; then
	before=$(snapshot "$(dirname "$S")")
	if expect_rc 0 "$TOOL" secret "$S" postgres.password password && [ "$(cat "$T/out")" = "$pw" ] &&
		[ "$(snapshot "$(dirname "$S")")" = "$before" ] &&
		[ "$(json_get "$S" 'j["secrets"]["postgres.password"]')" = "$pw" ]; then
		t_pass
	else t_fail "second run: $(cat "$T/out" "$T/err")"; fi
else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "secrets: token and API key shapes, old secrets kept"
if expect_rc 0 "$TOOL" secret "$S" controller.token token && [[ $(cat "$T/out") =~ ^[0-9a-f]{64}$ ]] &&
	expect_rc 0 "$TOOL" secret "$S" agent_manager.api_key api-key && [[ $(cat "$T/out") =~ ^[A-Za-z0-9]{40}$ ]] &&
	[ "$(json_get "$S" 'j["secrets"]["postgres.password"]')" = "$pw" ]; then
	t_pass
else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "secrets: a store others can read is refused"
chmod 0644 "$S"
if expect_rc 1 "$TOOL" secret "$S" postgres.password password && grep -qF "$S: permissions 0644 are too open" "$T/err" &&
	[ ! -s "$T/out" ]; then
	t_pass
else t_fail "$(cat "$T/out" "$T/err")"; fi
chmod 0600 "$S"

t_case "secrets: a corrupt store names file:line:column"
cp "$S" "$T/state.good"
printf '{"version": 1,\n "secrets": {\n  "a": "x",,\n}}\n' >"$S"
if expect_rc 1 "$TOOL" secret "$S" postgres.password password && grep -qF "$S:3:12: invalid JSON" "$T/err" &&
	grep -q '"a": "x",,' "$S"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi
cp "$T/state.good" "$S"
