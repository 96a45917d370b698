#!/bin/bash
# imagegen end to end on a fixture site (tests/cases/imagegen): validate,
# render, userdata per provider, seed ISO, secrets and TLS reuse, signing,
# and the round trip into firstboot. Bad input: each a clear error and no
# partial output.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

FIX=$TOP/tests/cases/imagegen
S=$T/site
cp -r "$FIX/site" "$S"
IG=("$IMAGEGEN" --modules-dir "$FIX/modules" --templates-dir "$FIX/templates")
ig() { "$IMAGEGEN" "$1" --modules-dir "$FIX/modules" --templates-dir "$FIX/templates" "${@:2}"; }

t_case "validate accepts the fixture site and writes nothing"
if expect_rc 0 ig validate "$S/site.yaml" && grep -q "ok: site 'test-site'" "$T/out" &&
	[ ! -e "$S/.imagegen/state.json" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "render writes a bundle firstboot validates"
if expect_rc 0 ig render "$S/site.yaml" -o "$T/out1" &&
	expect_rc 0 "$FIRSTBOOT" validate "$T/out1" --modules-dir "$FIX/modules" &&
	grep -q 'order: app web' "$T/out"; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "secrets are generated once, kept 0600, and rendering twice changes nothing"
st=$S/.imagegen/state.json
m1=$(stat -c %Y.%s "$st" 2>/dev/null)
sleep 1.1
if [ "$(stat -c %a "$st")" = 600 ] && expect_rc 0 ig render "$S/site.yaml" -o "$T/out2" &&
	diff -r "$T/out1" "$T/out2" >"$T/diff" && [ "$(stat -c %Y.%s "$st")" = "$m1" ] &&
	[ "$(find "$S/.imagegen/pki" -newer "$T/out1/bundle.yaml" | wc -l)" = 0 ]; then t_pass; else t_fail "changed: $(head -20 "$T/diff")"; fi

t_case "rendering into an up-to-date bundle dir touches nothing; a changed one is replaced whole"
ino() { stat -c %i.%Y "$T/out2" "$T/out2/bundle.yaml"; }
before=$(ino)
sleep 1.1
ok=1
if ! expect_rc 0 ig render "$S/site.yaml" -o "$T/out2" || [ "$(ino)" != "$before" ]; then ok=0; fi
# A stray file, a changed mode, changed bytes, an empty directory: each rewrites the dir.
for spoil in 'touch "$T/out2/stray"' 'chmod 0644 "$T/out2/files/etc/app/app.env"' \
	'echo x >>"$T/out2/bundle.yaml"' 'mkdir "$T/out2/files/empty"' \
	'rm "$T/out2/bundle.yaml" && ln -s /etc/passwd "$T/out2/bundle.yaml"'; do
	eval "$spoil"
	if ! expect_rc 0 ig render "$S/site.yaml" -o "$T/out2" || ! diff -r "$T/out1" "$T/out2" >"$T/diff" ||
		[ "$(stat -c %a "$T/out2/files/etc/app/app.env")" != 600 ]; then
		ok=0
		echo "after $spoil" >>"$T/diff"
	fi
done
if [ $ok = 1 ]; then t_pass; else t_fail "$(cat "$T/err" "$T/diff")"; fi

t_case "generated secrets meet the manifest and reach every template byte-exact"
pw=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["secrets"]["app.db_password"] if "secrets" in j else j["app.db_password"])' "$st" 2>/dev/null)
if [ ${#pw} -ge 16 ] && grep -qx "DB_PASSWORD=$pw" "$T/out1/files/etc/app/app.env" &&
	[ "$(stat -c %a "$T/out1/files/etc/app/app.env")" = 600 ] &&
	grep -q "DB_PASSWORD: \"$pw\"\|DB_PASSWORD: $pw" "$T/out1/files/opt/stack/docker-compose.yml"; then t_pass; else t_fail "pw '$pw'"; fi

t_case "self-signed TLS: the server certificate verifies against the CA with the SANs"
tls=$T/out1/files/etc/firstboot/tls
if openssl verify -CAfile "$tls/ca.crt" "$tls/server.crt" >/dev/null 2>&1 &&
	openssl x509 -in "$tls/server.crt" -noout -ext subjectAltName | grep -q 'DNS:test-1.example.org, DNS:www.example.org, IP Address:127.0.0.1' &&
	[ "$(stat -c %a "$tls/server.key")" = 600 ] &&
	grep -q "ssl_certificate /etc/firstboot/tls/fullchain.pem;" "$T/out1/files/etc/web/site.conf"; then t_pass; else t_fail "tls"; fi

t_case "userdata: gzip'd tar for ec2 and nocloud, the text form for hetzner and digitalocean"
ok=1
for p in ec2 nocloud hetzner digitalocean; do
	expect_rc 0 ig userdata "$S/site.yaml" --provider "$p" -o "$T/ud.$p" || ok=0
done
[ "$(head -c2 "$T/ud.ec2" | od -An -tx1 | tr -d ' ')" = 1f8b ] || ok=0
[ "$(head -1 "$T/ud.hetzner")" = "#firstboot-bundle v1" ] || ok=0
[ "$(head -1 "$T/ud.digitalocean")" = "#firstboot-bundle v1" ] || ok=0
if [ $ok = 1 ] && [ "$(stat -c %s "$T/ud.ec2")" -le 16384 ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "round trip: firstboot provisions a root from imagegen's user-data"
R=$T/root
new_root "$R"
fb_conf "$R"
printf 'modules_dir: %s\n' "$FIX/modules" >>"$R/etc/firstboot/firstboot.conf"
if expect_rc 0 fb_run "$R" --user-data "$T/ud.hetzner" --instance-id i-rt &&
	[ "$(cat "$R/var/lib/app/db_password")" = "$pw" ] && [ "$(cat "$R/etc/hostname")" = test-1 ] &&
	[ "$(cat "$R/etc/hello.txt")" = "hello from test-1 (hetzner)" ] &&
	[ -f "$R/var/lib/firstboot/ready" ]; then t_pass; else t_fail "$(tail -5 "$T/err")"; fi

t_case "seed: an ISO9660 cidata image firstboot's nocloud datasource reads"
if expect_rc 0 ig seed "$S/site.yaml" -o "$T/seed.iso" &&
	xorriso -indev "$T/seed.iso" -pvd_info 2>/dev/null | grep -q 'Volume Id    : cidata' &&
	expect_rc 0 "$FIRSTBOOT" query --datasource nocloud --seed "$T/seed.iso" &&
	grep -q 'test-site' "$T/out"; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "keygen and signing_key: a signed bundle that verifies with the public key"
if expect_rc 0 "$IMAGEGEN" keygen -o "$S/keys" && [ "$(stat -c %a "$S/keys/signing.key")" = 600 ] &&
	expect_rc 1 "$IMAGEGEN" keygen -o "$S/keys" && grep -q 'exist' "$T/err"; then
	printf 'signing_key: keys/signing.key\n' >>"$S/site.yaml"
	mkdir -p "$T/trusted" && cp "$S/keys/signing.pub" "$T/trusted/"
	if expect_rc 0 ig render "$S/site.yaml" -o "$T/signed" && [ -s "$T/signed/bundle.yaml.sig" ] &&
		expect_rc 0 "$FIRSTBOOT" validate "$T/signed" --modules-dir "$FIX/modules" --keys "$T/trusted" &&
		grep -q 'signed by' "$T/out"; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi
else t_fail "keygen: $(cat "$T/err")"; fi

t_case "{env: NAME} takes the controller token from the environment; unset is an error"
cp -r "$FIX/site" "$T/envsite"
sed -i 's|^  url: http://127.0.0.1:9/callback|&\n  token: {env: TEST_CTL_TOKEN}|' "$T/envsite/site.yaml"
if TEST_CTL_TOKEN=0123456789abcdef0123 expect_rc 0 ig render "$T/envsite/site.yaml" -o "$T/envout" &&
	grep -q '0123456789abcdef0123' "$T/envout/bundle.yaml" &&
	expect_rc 1 ig validate "$T/envsite/site.yaml" &&
	grep -q "site.yaml:6:[0-9]*: 'token' is taken from the environment variable TEST_CTL_TOKEN, which is not set" "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

# bad SITE-LINE EXPECTED-ERROR-REGEX: a copy of the fixture site with one
# line edited by the sed expression must fail validate and render with
# the message, and render must leave no output directory.
bad() {
	local name=$1 expr=$2 want=$3 b=$T/bad.$RANDOM
	t_case "bad input: $name"
	cp -r "$FIX/site" "$b"
	sed -i "$expr" "$b/site.yaml"
	if expect_rc 1 ig validate "$b/site.yaml" && grep -Eq "$want" "$T/err" &&
		expect_rc 1 ig render "$b/site.yaml" -o "$b/out" && [ ! -e "$b/out" ] &&
		[ -z "$(find "$b" -maxdepth 1 -name 'out.imagegen-*')" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi
}
bad "unknown key" 's/^hostname: test-1/hostnme: test-1/' "site.yaml:2:1: unknown key 'hostnme'"
bad "wrong type" 's/^modules:/modules: [app]\nxmodules:/' "site.yaml:10:10: .modules. must be a mapping, not a sequence"
bad "input failing its pattern" 's/db_name: colony/db_name: "Bad Name"/' "site.yaml:12:14: module app: input .db_name. must match the pattern"
bad "unknown provider" 's/^provider: hetzner/provider: linode/' "site.yaml:3:11: 'provider' must be one of"
bad "unknown module" 's/^  web:/  nosuch:/' "site.yaml:13:3: module .nosuch. not found"
bad "missing required input" 's/    server_name: test-1.example.org/    {}/' "module web: .*server_name"
bad "missing file source" 's|source: files/motd|source: files/nope|' "site.yaml:16:31: cannot read .*files/nope"

t_case "bad input: a template syntax error names the template's line and column"
cp -r "$FIX/site" "$T/tsyn"
printf 'ok\n{{#site.name}}\nunclosed\n' >"$T/tsyn/templates/hello.txt.tmpl"
if expect_rc 1 ig render "$T/tsyn/site.yaml" -o "$T/tsyn/out" && grep -q 'hello.txt.tmpl:2:1:' "$T/err" &&
	[ ! -e "$T/tsyn/out" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "bad input: a template with an undefined variable"
printf '{{site.nmae}}\n' >"$T/tsyn/templates/hello.txt.tmpl"
if expect_rc 1 ig render "$T/tsyn/site.yaml" -o "$T/tsyn/out" && grep -q 'hello.txt.tmpl:1:1:.*site.nmae' "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "bad input: a missing template"
cp -r "$FIX/site" "$T/tmiss"
rm "$T/tmiss/templates/hello.txt.tmpl"
if expect_rc 1 ig validate "$T/tmiss/site.yaml" && grep -q 'site.yaml:18:16: cannot read .*hello.txt.tmpl' "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "bad input: an unwritable output directory leaves nothing behind"
mkdir -p "$T/ro" && chmod 0555 "$T/ro"
if [ "$(id -u)" = 0 ]; then
	# root writes anyway; a path under a regular file cannot be created by anyone.
	touch "$T/ro/file"
	out=$T/ro/file/bundle
else out=$T/ro/bundle; fi
if expect_rc 1 ig render "$S/site.yaml" -o "$out" && grep -q 'cannot' "$T/err" &&
	[ "$(find "$T/ro" | wc -l)" -le 2 ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "bad input: over the provider's limit lists each member's size"
head -c 40000 /dev/urandom | base64 >"$S/files/big"
printf 'files:\n  - {path: /etc/big, source: files/big}\n' >/dev/null
sed -i 's|^files:|files:\n  - {path: /etc/big, source: files/big}|' "$S/site.yaml"
if expect_rc 1 ig userdata "$S/site.yaml" --provider ec2 -o "$T/ud.big" && [ ! -e "$T/ud.big" ] &&
	grep -q 'over its limit of 16384' "$T/err" && grep -q 'files/etc/big' "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "init: the whole-stack example validates, renders, and fits EC2's 16 KB with the modules baked"
if expect_rc 0 "$IMAGEGEN" init "$T/ex" && expect_rc 0 "$IMAGEGEN" validate "$T/ex/site.yaml" &&
	grep -q '10 modules' "$T/out" && expect_rc 0 "$IMAGEGEN" render -q "$T/ex/site.yaml" -o "$T/ex/out" &&
	expect_rc 0 "$FIRSTBOOT" validate "$T/ex/out" --modules-dir "$TOP/modules" &&
	grep -q 'order: base docker postgres redis colonyos agent-manager compose-up nginx backup update' "$T/out" &&
	expect_rc 0 "$IMAGEGEN" userdata "$T/ex/site.yaml" --provider ec2 -o "$T/ex/ud" &&
	[ "$(stat -c %s "$T/ex/ud")" -le 16384 ] && expect_rc 1 "$IMAGEGEN" init "$T/ex"; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "init: the backups' age key pair: the identity 0600 beside site.yaml, never in the bundle; real age agrees with it"
rcpt=$(sed -n 's/^ *age_recipients: //p' "$T/ex/site.yaml")
id=$(grep '^AGE-SECRET-KEY-1' "$T/ex/backup-identity.txt")
if [ "$(stat -c %a "$T/ex/backup-identity.txt")" = 600 ] && [ "${#rcpt}" = 62 ] &&
	[ "$(age-keygen -y "$T/ex/backup-identity.txt")" = "$rcpt" ] &&
	[ "$(echo round-trip | age -r "$rcpt" | age -d -i "$T/ex/backup-identity.txt")" = round-trip ] &&
	! grep -rqF "$id" "$T/ex/out" "$T/ex/ud" && grep -rqF "$rcpt" "$T/ex/out"; then t_pass; else
	t_fail "$rcpt $(cat "$T/ex/backup-identity.txt")"
fi

t_case "validate: a bad age recipient or none, and backup with nothing to back up, are refused at file:line:column"
B=$T/bk
mkdir -p "$B"
good=$rcpt
bad=${good%?}
[ "${good: -1}" = q ] && bad+=p || bad+=q
ok=1
i=0
for v in "\"$bad\"" "\"$good, ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGWT5pCWPf6ZY1+VqRg9/iTmQHtIw5Ija6azK/cbrXw=\"" \
	"\"$id\"" "\"  \""; do
	i=$((i + 1))
	printf 'name: bk\nhostname: bk-1\nprovider: hetzner\nmodules:\n  postgres: {}\n  backup:\n    age_recipients: %s\n' "$v" >"$B/site.yaml"
	if ! expect_rc 1 "$IMAGEGEN" validate "$B/site.yaml" || ! grep -q "^$B/site.yaml:7:21: .*age_recipients" "$T/err"; then
		ok=0
		echo "  # case $i: $(cat "$T/err")" >&2
	fi
done
printf 'name: bk\nhostname: bk-1\nprovider: hetzner\nmodules:\n  backup:\n    age_recipients: %s\n' "$good" >"$B/site.yaml"
expect_rc 1 "$IMAGEGEN" validate "$B/site.yaml" && grep -q "^$B/site.yaml:6:5: .*nothing to back up" "$T/err" || ok=0
printf 'name: bk\nhostname: bk-1\nprovider: hetzner\nmodules:\n  backup:\n    mysql_database: shop\n    age_recipients: %s\n' "$good" >"$B/site.yaml"
expect_rc 0 "$IMAGEGEN" validate "$B/site.yaml" || ok=0
expect_rc 0 "$IMAGEGEN" render -q "$B/site.yaml" -o "$B/out" || ok=0
# A MySQL-only site: both scripts, no pg_dump.
if [ $ok = 1 ] && [ -x "$B/out/files/usr/local/sbin/backup_db.sh" ] && [ -x "$B/out/files/usr/local/sbin/restore_db.sh" ] &&
	! grep -q 'pg_dump -d' "$B/out/files/usr/local/sbin/backup_db.sh"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "a secret hidden by visible_if is not generated (the agent would refuse it)"
if python3 -c 'import json,sys; sys.exit("web.basic_password" in str(json.load(open(sys.argv[1]))))' "$S/.imagegen/state.json" &&
	! grep -q basic_password "$T/out1/bundle.yaml"; then t_pass; else t_fail "generated"; fi

t_case "imagegen without arguments or with --help prints usage"
if expect_rc 2 "$IMAGEGEN" && expect_rc 0 "${IG[0]}" --help && grep -q 'Usage: imagegen' "$T/out"; then t_pass; else t_fail "usage"; fi

t_case "a fleet (hosts:) renders one bundle per host with its own secrets and certificate, one CA"
F=$T/fleet
cp -r "$FIX/site" "$F"
python3 - "$F/site.yaml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read().replace("hostname: test-1\n", "hosts:\n  - {hostname: web-1}\n  - {hostname: web-2, instance_id: i-web-2}\n")
open(p, "w").write(s.replace("  domain: test-1.example.org\n", ""))
PY
if expect_rc 0 ig validate "$F/site.yaml" && grep -q '2 hosts' "$T/out" &&
	expect_rc 0 ig render "$F/site.yaml" -o "$F/out" && [ -f "$F/out/web-1/bundle.yaml" ] && [ -f "$F/out/web-2/bundle.yaml" ] &&
	! cmp -s "$F/out/web-1/files/etc/app/app.env" "$F/out/web-2/files/etc/app/app.env" &&
	openssl x509 -in "$F/out/web-2/files/etc/firstboot/tls/server.crt" -noout -ext subjectAltName | grep -q 'DNS:web-2' &&
	cmp -s "$F/out/web-1/files/etc/firstboot/tls/ca.crt" "$F/out/web-2/files/etc/firstboot/tls/ca.crt" &&
	openssl verify -CAfile "$F/out/web-1/files/etc/firstboot/tls/ca.crt" "$F/out/web-2/files/etc/firstboot/tls/server.crt" >/dev/null &&
	grep -q '^hostname: web-2' "$F/out/web-2/bundle.yaml" &&
	expect_rc 1 ig userdata "$F/site.yaml" -o "$F/ud" && grep -q 'pick one with --host (web-1, web-2)' "$T/err" &&
	expect_rc 0 ig seed "$F/site.yaml" --host web-2 -o "$F/seed.iso" &&
	expect_rc 0 "$FIRSTBOOT" query --datasource nocloud --seed "$F/seed.iso" && grep -q 'i-web-2' "$T/out"; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "a fleet renders with -j 3 as with -j 1: every host, one CA, secrets saved, byte-identical"
F7=$T/fleet7
cp -r "$FIX/site" "$F7"
python3 - "$F7/site.yaml" <<'PY'
import sys
p = sys.argv[1]
hosts = "".join("  - {hostname: web-%d}\n" % i for i in range(1, 8))
s = open(p).read().replace("hostname: test-1\n", "hosts:\n" + hosts)
open(p, "w").write(s.replace("  domain: test-1.example.org\n", ""))
PY
fleet_ok() {
	local h ca=$F7/out/web-1/files/etc/firstboot/tls/ca.crt
	for h in 1 2 3 4 5 6 7; do
		grep -q "^hostname: web-$h\$" "$F7/out/web-$h/bundle.yaml" &&
			expect_rc 0 "$FIRSTBOOT" validate "$F7/out/web-$h" --modules-dir "$FIX/modules" &&
			cmp -s "$ca" "$F7/out/web-$h/files/etc/firstboot/tls/ca.crt" &&
			openssl verify -purpose sslserver -CAfile "$ca" "$F7/out/web-$h/files/etc/firstboot/tls/server.crt" >/dev/null &&
			python3 -c 'import json,sys; sys.exit("web-%s/app.db_password" % sys.argv[2] not in json.load(open(sys.argv[1]))["secrets"])' \
				"$F7/.imagegen/state.json" "$h" || return 1
	done
	[ "$(find "$F7/out" -mindepth 1 -maxdepth 1 | wc -l)" = 7 ]
}
if expect_rc 0 ig render "$F7/site.yaml" -o "$F7/out" -j 3 && [ "$(grep -c ': bundle .test-site. for web-' "$T/out")" = 7 ] &&
	fleet_ok && cp -a "$F7/out" "$F7/out.j3" && cp "$F7/.imagegen/state.json" "$F7/state.j3" &&
	expect_rc 0 ig render "$F7/site.yaml" -o "$F7/out" -j 3 && diff -r "$F7/out.j3" "$F7/out" >"$T/diff" &&
	cmp -s "$F7/state.j3" "$F7/.imagegen/state.json" && rm -r "$F7/out" &&
	expect_rc 0 ig render "$F7/site.yaml" -o "$F7/out" --jobs 1 && diff -r "$F7/out.j3" "$F7/out" >"$T/diff" &&
	expect_rc 0 ig render "$F7/site.yaml" -o "$F7/out" -j 64 && diff -r "$F7/out.j3" "$F7/out" >"$T/diff"; then
	t_pass
else t_fail "$(cat "$T/err"; head -20 "$T/diff")"; fi

# serials F7DIR: each host's serial in OUT (web-1 .. web-7), one line.
serials() {
	local h
	for h in 1 2 3 4 5 6 7; do sed -n 's/^serial: //p' "$1/out/web-$h/bundle.yaml"; done | tr '\n' ' '
}
# state_edit F7DIR PYTHON: edits state.json (bound to j).
state_edit() {
	python3 - "$1/.imagegen/state.json" "$2" <<'PY'
import json, sys
p = sys.argv[1]
j = json.load(open(p))
exec(sys.argv[2])
open(p, "w").write(json.dumps(j, indent=2) + "\n")
PY
}

t_case "every fleet host's bundle has a serial, kept per host in the state while it is unchanged"
if [ "$(serials "$F7")" = "1 1 1 1 1 1 1 " ] &&
	python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["serials"]; sys.exit(sorted(s) != ["web-%d/bundle" % i for i in range(1, 8)] or {e["serial"] for e in s.values()} != {1})' "$F7/.imagegen/state.json" &&
	expect_rc 0 ig render -q "$F7/site.yaml" -o "$F7/out" -j 3 && [ "$(serials "$F7")" = "1 1 1 1 1 1 1 " ] &&
	cmp -s "$F7/state.j3" "$F7/.imagegen/state.json" && diff -r "$F7/out.j3" "$F7/out" >"$T/diff"; then
	t_pass
else t_fail "$(serials "$F7") $(cat "$T/err")"; fi

t_case "a fleet host whose input changed gets the next serial, the others keep theirs"
# web-3's generated password (its own input), as an operator rotating it would.
state_edit "$F7" 'j["secrets"]["web-3/app.db_password"] = "rotated-" + "0" * 24'
if expect_rc 0 ig render -q "$F7/site.yaml" -o "$F7/out" -j 3 && [ "$(serials "$F7")" = "1 1 2 1 1 1 1 " ] &&
	grep -q "rotated-" "$F7/out/web-3/files/etc/app/app.env" &&
	expect_rc 0 "$FIRSTBOOT" validate "$F7/out/web-3" --modules-dir "$FIX/modules" &&
	expect_rc 0 ig render -q "$F7/site.yaml" -o "$F7/out" -j 2 && [ "$(serials "$F7")" = "1 1 2 1 1 1 1 " ]; then
	t_pass
else t_fail "$(serials "$F7") $(cat "$T/err")"; fi

t_case "a site-wide change raises every host's serial, the same bytes and state with -j 1 and -j 3"
rm -rf "$F7.b" && cp -a "$F7" "$F7.b"
sed -i 's/db_name: colony/db_name: colony2/' "$F7/site.yaml" "$F7.b/site.yaml"
if expect_rc 0 ig render -q "$F7/site.yaml" -o "$F7/out" -j 1 &&
	expect_rc 0 ig render -q "$F7.b/site.yaml" -o "$F7.b/out" -j 3 &&
	[ "$(serials "$F7")" = "2 2 3 2 2 2 2 " ] && diff -r "$F7/out" "$F7.b/out" >"$T/diff" &&
	cmp -s "$F7/.imagegen/state.json" "$F7.b/.imagegen/state.json"; then
	t_pass
else t_fail "$(serials "$F7") $(serials "$F7.b") $(cat "$T/err"; head -20 "$T/diff")"; fi

t_case "a corrupted serials entry: exit 1 naming the state file and entry, that host not written"
# web-6 is rendered by a worker with -j 3, web-1 by the parent before any worker.
cp -a "$F7/out" "$F7/out.before"
sed -i 's/db_name: colony2/db_name: colony3/' "$F7/site.yaml"
state_edit "$F7" 'j["serials"]["web-6/bundle"]["serial"] = "six"'
cp "$F7/.imagegen/state.json" "$F7/state.bad"
ok=1
expect_rc 1 ig render -q "$F7/site.yaml" -o "$F7/out" -j 3 &&
	grep -q "state.json: serials: the entry \"web-6/bundle\" (or the object) is not one imagegen wrote" "$T/err" &&
	diff -r "$F7/out.before/web-6" "$F7/out/web-6" >"$T/diff" || ok=0
# The hosts that rendered were written, after the state that holds their serials.
[ "$(serials "$F7")" = "3 3 4 3 3 2 3 " ] && [ "$(find "$F7/out" -name '.*' | wc -l)" = 0 ] &&
	python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["serials"]; sys.exit(s["web-2/bundle"]["serial"] != 3 or s["web-6/bundle"]["serial"] != "six")' "$F7/.imagegen/state.json" || ok=0
state_edit "$F7" 'j["serials"]["web-1/bundle"] = 7'
cp "$F7/.imagegen/state.json" "$F7/state.bad1"
expect_rc 1 ig render -q "$F7/site.yaml" -o "$F7/o3" -j 3 && grep -q '"web-1/bundle"' "$T/err" &&
	[ ! -e "$F7/o3" ] && cmp -s "$F7/state.bad1" "$F7/.imagegen/state.json" || ok=0
state_edit "$F7" 'j["serials"] = []'
expect_rc 1 ig render -q "$F7/site.yaml" -o "$F7/o3" --host web-2 && grep -q 'state.json: serials: .*for web-2' "$T/err" &&
	[ ! -e "$F7/o3" ] || ok=0
# Repaired (the serial web-6 was last shipped with), it renders again.
cp "$F7/state.bad" "$F7/.imagegen/state.json"
state_edit "$F7" 'j["serials"]["web-6/bundle"]["serial"] = 2'
expect_rc 0 ig render -q "$F7/site.yaml" -o "$F7/out" -j 3 && [ "$(serials "$F7")" = "3 3 4 3 3 3 3 " ] || ok=0
if [ $ok = 1 ]; then t_pass; else t_fail "$(serials "$F7") $(cat "$T/err"; head "$T/diff")"; fi

# (LeakSanitizer, in a SANITIZER build, cannot run under strace.)
# A crash between the state and the bundles: strace kills every process
# of the render at its first mkdir (each one's first bundle directory,
# after the state was saved). The state then holds the raised serials and
# the bundles are the old ones: no bundle has a serial the state forgot.
t_case "a fleet render killed before its bundles are written: the state has the new serials, the old bundles stay"
if ! strace -f -qq -o /dev/null -e trace=none true 2>/dev/null; then
	echo "ok - $_case # SKIP strace cannot trace here"
else
	sed -i 's/db_name: colony3/db_name: colony4/' "$F7/site.yaml"
	ASAN_OPTIONS=detect_leaks=0 strace -f -qq -o /dev/null -e trace=mkdir,mkdirat -e inject=mkdir,mkdirat:signal=KILL:when=1 \
		"$IMAGEGEN" render -q --modules-dir "$FIX/modules" --templates-dir "$FIX/templates" \
		"$F7/site.yaml" -o "$F7/out" -j 3 >"$T/out" 2>"$T/err"
	rc=$?
	state_serials() {
		python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["serials"]; print(" ".join(str(s["web-%d/bundle" % i]["serial"]) for i in range(1, 8)))' "$F7/.imagegen/state.json"
	}
	crashed=$(state_serials)
	if [ "$rc" != 0 ] && [ "$crashed" = "4 4 5 4 4 4 4" ] && [ "$(serials "$F7")" = "3 3 4 3 3 3 3 " ] &&
		[ "$(find "$F7/out" -mindepth 1 -maxdepth 1 | wc -l)" = 7 ] &&
		expect_rc 0 ig render -q "$F7/site.yaml" -o "$F7/out" -j 3 && [ "$(serials "$F7")" = "4 4 5 4 4 4 4 " ] &&
		[ "$(state_serials)" = "$crashed" ]; then
		t_pass
	else t_fail "rc $rc, state $crashed, bundles $(serials "$F7"): $(cat "$T/err")"; fi
fi

# A worker that ends before its report (killed, or its certificates not
# synced): web-3's certificate is issued again, so its worker (web-3,
# web-6) calls syncfs, where strace kills it or fails it.
t_case "a worker that ends before reporting its serials: exit 1 naming it and its hosts, none of them written"
if ! strace -f -qq -o /dev/null -e trace=none true 2>/dev/null; then
	echo "ok - $_case # SKIP strace cannot trace here"
else
	cp "$F7/.imagegen/state.json" "$F7/state.pre"
	igs() {
		ASAN_OPTIONS=detect_leaks=0 strace -f -qq -o /dev/null -e trace=syncfs -e "inject=syncfs:$1:when=1" \
			"$IMAGEGEN" render -q --modules-dir "$FIX/modules" --templates-dir "$FIX/templates" \
			"$F7/site.yaml" -o "$F7/out" -j 3
	}
	ok=1
	rm -r "$F7/.imagegen/pki/web-3"
	igs signal=KILL >"$T/out" 2>"$T/err" && ok=0
	grep -q '^imagegen render: worker 2 (web-3, web-6) ended without reporting its serials: its hosts are not written$' "$T/err" &&
		grep -q '^imagegen render: worker 2 (web-3, web-6) was killed by signal 9$' "$T/err" || ok=0
	[ "$(serials "$F7")" = "4 4 5 4 4 4 4 " ] && cmp -s "$F7/state.pre" "$F7/.imagegen/state.json" || ok=0
	rm -r "$F7/.imagegen/pki/web-3"
	expect_rc 1 igs error=EIO && grep -q 'cannot sync: Input/output error' "$T/err" &&
		grep -q '^imagegen render: worker 2 (web-3, web-6) ended without reporting its serials' "$T/err" || ok=0
	[ "$(serials "$F7")" = "4 4 5 4 4 4 4 " ] && cmp -s "$F7/state.pre" "$F7/.imagegen/state.json" || ok=0
	expect_rc 0 ig render -q "$F7/site.yaml" -o "$F7/out" -j 3 && [ "$(serials "$F7")" = "4 4 6 4 4 4 4 " ] || ok=0
	if [ $ok = 1 ]; then t_pass; else t_fail "$(serials "$F7") $(cat "$T/err")"; fi
fi

t_case "a worker that cannot be started (no pipe): the parent renders its hosts, the same output"
if ! strace -f -qq -o /dev/null -e trace=none true 2>/dev/null; then
	echo "ok - $_case # SKIP strace cannot trace here"
else
	sed -i 's/db_name: colony4/db_name: colony5/' "$F7/site.yaml"
	rm -rf "$F7.c" && cp -a "$F7" "$F7.c"
	# The second pipe: worker 2's second, so its first one is closed again.
	if ASAN_OPTIONS=detect_leaks=0 expect_rc 0 strace -f -qq -o /dev/null -e trace=pipe2 -e inject=pipe2:error=EMFILE:when=2 \
		"$IMAGEGEN" render -q --modules-dir "$FIX/modules" --templates-dir "$FIX/templates" \
		"$F7/site.yaml" -o "$F7/out" -j 3 &&
		grep -q '^imagegen render: cannot start worker 2 of 3: Too many open files$' "$T/err" &&
		[ "$(serials "$F7")" = "5 5 7 5 5 5 5 " ] &&
		expect_rc 0 ig render -q "$F7.c/site.yaml" -o "$F7.c/out" -j 1 && diff -r "$F7/out" "$F7.c/out" >"$T/diff" &&
		cmp -s "$F7/.imagegen/state.json" "$F7.c/.imagegen/state.json"; then
		t_pass
	else t_fail "$(serials "$F7") $(cat "$T/err"; head "$T/diff")"; fi
fi

t_case "a fleet host a worker cannot write fails the render by name; every other host is written"
# With -j 3, the parent renders web-2 and web-5, a worker web-3 and web-6.
rm -r "$F7/out" && mkdir "$F7/out" && touch "$F7/out/web-2" "$F7/out/web-3"
if expect_rc 1 ig render "$F7/site.yaml" -o "$F7/out" -j 3 &&
	grep -q 'cannot rename .*/out/web-2' "$T/err" && grep -q 'cannot rename .*/out/web-3' "$T/err" &&
	[ -f "$F7/out/web-2" ] && [ ! -s "$F7/out/web-3" ] &&
	(for h in 1 4 5 6 7; do [ -f "$F7/out/web-$h/bundle.yaml" ] || exit 1; done) &&
	[ "$(find "$F7/out" -name '.*' | wc -l)" = 0 ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "bad input: --jobs out of range, not a number, or on another command"
if expect_rc 2 ig render "$F7/site.yaml" -o "$F7/o2" -j 0 && grep -q "imagegen render: --jobs takes a number of processes from 1 to 64, not '0'" "$T/err" &&
	expect_rc 2 ig render "$F7/site.yaml" -o "$F7/o2" --jobs x && grep -q "not 'x'" "$T/err" &&
	expect_rc 2 ig render "$F7/site.yaml" -o "$F7/o2" -j 65 && grep -q "not '65'" "$T/err" &&
	expect_rc 2 ig render "$F7/site.yaml" -o "$F7/o2" -j -3 && grep -q "not '-3'" "$T/err" &&
	expect_rc 2 ig validate "$F7/site.yaml" --jobs 2 && grep -q 'imagegen validate: --jobs is an option of render' "$T/err" &&
	[ ! -e "$F7/o2" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "bad input: a fleet host listed twice, and top-level hostname with hosts"
sed -i 's/hostname: web-2, instance_id: i-web-2/hostname: web-1/' "$F/site.yaml"
if expect_rc 1 ig validate "$F/site.yaml" && grep -q 'site.yaml:4:.*host web-1 is listed twice' "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

# ---- jobs: the agent's drop-in, its secret and the module enabling it ----
JS=$TOP/tests/cases/render/jobs/site
igj() { "$IMAGEGEN" "$1" --modules-dir "$TOP/modules" --templates-dir "$FIX/templates" "${@:2}"; }
# badjobs NAME SED-EXPR WANT-REGEX: the golden jobs site edited, refused by
# validate and render with the message, and no output left.
badjobs() {
	local b=$T/badjobs.$RANDOM
	t_case "bad input, jobs: $1"
	cp -r "$JS" "$b" && rm -rf "$b/.imagegen"
	sed -i "$2" "$b/site.yaml"
	if expect_rc 1 igj validate "$b/site.yaml" && grep -Eq "$3" "$T/err" &&
		expect_rc 1 igj render "$b/site.yaml" -o "$b/out" && [ ! -e "$b/out" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi
}
badjobs "unknown key" 's/max_skew_s: 120/max_skew: 120/' "site.yaml:13:3: unknown key 'max_skew' in jobs"
badjobs "not a Redis URL" 's|redis_url: "redis://|redis_url: "http://|' "site.yaml:10:14: jobs: 'redis_url': a Redis URL starts with redis://"
badjobs "a TLS file for redis://" 's|^jobs:|jobs:\n  tls_ca_file: /etc/ssl/redis-ca.pem|' "site.yaml:10:16: jobs: 'tls_ca_file' is for a rediss:// \(TLS\) redis_url"
badjobs "a relative TLS file" 's|^jobs:|jobs:\n  tls_ca_file: redis-ca.pem|' "site.yaml:10:16: jobs: 'tls_ca_file' must be an absolute path in the image"
badjobs "a TLS file with a line break: said on one line, escaped" 's|^jobs:|jobs:\n  tls_ca_file: "/etc/a\\nb.pem"|' 'site.yaml:10:16: jobs: .tls_ca_file. must be an absolute path in the image, not "/etc/a\\nb.pem"$'
badjobs "a client certificate without its key" 's|^jobs:|jobs:\n  tls_cert_file: /etc/ssl/c.pem|; s|redis_url: "redis://|redis_url: "rediss://|' "site.yaml:10:18: jobs: 'tls_cert_file' and 'tls_key_file' go together"
t_case "bad input, jobs: a TLS file with a bad rediss:// URL: the URL is refused, the file not said to be for redis://"
b=$T/badjobs.tlsurl
cp -r "$JS" "$b" && rm -rf "$b/.imagegen"
sed -i 's|^jobs:|jobs:\n  tls_ca_file: /etc/ssl/redis-ca.pem|; s|redis_url: "redis://\(.*\):6379|redis_url: "rediss://\1:99999|' "$b/site.yaml"
if expect_rc 1 igj validate "$b/site.yaml" && grep -q "site.yaml:11:14: jobs: 'redis_url': the Redis URL's port must be 1 to 65535" "$T/err" &&
	! grep -q "is for a rediss://" "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi
badjobs "a number out of firstboot.conf's range" 's/max_skew_s: 120/max_skew_s: 0/' "site.yaml:13:15: 'max_skew_s' must be between 1 and 86400, not 0"
badjobs "not a number" 's/heartbeat_s: 5/heartbeat_s: often/' "site.yaml:16:16: 'heartbeat_s' must be an integer"
badjobs "a bad agent_id" 's/agent_id: web-1/agent_id: "web 1"/' "site.yaml:11:13: jobs: 'agent_id' must be 1 to 64"
badjobs "metrics_file not an absolute .prom path" 's|metrics_file: /var.*|metrics_file: /var/lib/x/metrics.txt|' "site.yaml:17:17: jobs: 'metrics_file' must be an absolute path to a .prom file"
badjobs "secret in the clear" 's|^jobs:|jobs:\n  secret: plain-text-secret-0123|' "site.yaml:10:11: jobs: 'secret' must be \{file: PATH\}"
badjobs "secret file missing" 's|^jobs:|jobs:\n  secret: {file: nosuch}|' "site.yaml:10:18: jobs: 'secret': cannot open .*/nosuch: No such file"
badjobs "jobs-agent listed too" 's|^jobs:|modules:\n  jobs-agent: {}\njobs:|' "site.yaml:10:15: module jobs-agent is added by jobs:"
badjobs "redis_url missing" '/redis_url:/d' "site.yaml:10:3: .*redis_url"

t_case "bad input, jobs: a secret file group- or other-readable, empty, too short or too big (the agent's rules, the file named); exactly 4096 bytes taken; no jobs-agent module"
b=$T/jobsec
cp -r "$JS" "$b" && rm -rf "$b/.imagegen"
sed -i 's|^jobs:|jobs:\n  secret: {file: jobs.secret}|' "$b/site.yaml"
printf 'a-secret-of-32-bytes-0123456789ab\n' >"$b/jobs.secret"
chmod 0640 "$b/jobs.secret"
ok=0
expect_rc 1 igj validate "$b/site.yaml" && grep -q "site.yaml:10:18: jobs: 'secret': $b/jobs.secret is mode 0640: group and others must have no access" "$T/err" && ok=1
chmod 0604 "$b/jobs.secret"
expect_rc 1 igj validate "$b/site.yaml" && grep -q "site.yaml:10:18: jobs: 'secret': $b/jobs.secret is mode 0604: group and others" "$T/err" || ok=0
chmod 0600 "$b/jobs.secret" && printf 'short\n' >"$b/jobs.secret"
expect_rc 1 igj validate "$b/site.yaml" && grep -q "site.yaml:10:18: jobs: 'secret': $b/jobs.secret holds 5 bytes: the secret must be at least 16" "$T/err" || ok=0
: >"$b/jobs.secret"
expect_rc 1 igj validate "$b/site.yaml" && grep -q "site.yaml:10:18: jobs: 'secret': $b/jobs.secret is empty" "$T/err" || ok=0
head -c 4097 /dev/zero | tr '\0' k >"$b/jobs.secret"
expect_rc 1 igj validate "$b/site.yaml" && grep -q "site.yaml:10:18: jobs: 'secret': $b/jobs.secret is over 4096 bytes" "$T/err" || ok=0
head -c 4096 /dev/zero | tr '\0' k >"$b/jobs.secret"
expect_rc 0 igj validate "$b/site.yaml" || ok=0
cp "$JS/site.yaml" "$b/nomod.yaml"
expect_rc 1 "$IMAGEGEN" validate --modules-dir "$FIX/modules" "$b/nomod.yaml" && grep -q "jobs: the module jobs-agent, which enables the agent, is not in" "$T/err" || ok=0
if [ $ok = 1 ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "jobs: rediss:// with its TLS files reaches the agent's drop-in"
r=$T/jobtls
cp -r "$JS" "$r" && rm -rf "$r/.imagegen"
sed -i 's|redis_url: "redis://|redis_url: "rediss://|; s|^jobs:|jobs:\n  tls_ca_file: /etc/ssl/redis/ca.pem\n  tls_cert_file: /etc/ssl/c.pem\n  tls_key_file: /etc/ssl/c.key|' "$r/site.yaml"
if expect_rc 0 igj render "$r/site.yaml" -o "$r/out" &&
	grep -q '^  redis_url: "rediss://' "$r/out/files/etc/firstboot/firstboot.conf.d/50-site-jobs.conf" &&
	grep -q '^  tls_ca_file: /etc/ssl/redis/ca.pem$' "$r/out/files/etc/firstboot/firstboot.conf.d/50-site-jobs.conf" &&
	grep -q '^  tls_key_file: /etc/ssl/c.key$' "$r/out/files/etc/firstboot/firstboot.conf.d/50-site-jobs.conf"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "jobs: a secret from a file and redis_url from the environment reach the bundle, 0600"
printf 'a-secret-of-32-bytes-0123456789ab\n' >"$b/jobs.secret"
sed -i 's|  redis_url: .*|  redis_url: {env: TEST_JOBS_URL}|' "$b/site.yaml"
if TEST_JOBS_URL=redis://127.0.0.1:6390 expect_rc 0 igj render "$b/site.yaml" -o "$b/out" &&
	cmp -s "$b/jobs.secret" "$b/out/files/etc/firstboot/jobs.secret" &&
	grep -q '^  redis_url: "redis://127.0.0.1:6390"$' "$b/out/files/etc/firstboot/firstboot.conf.d/50-site-jobs.conf" &&
	grep -q '^  secret_file: /etc/firstboot/jobs.secret$' "$b/out/files/etc/firstboot/firstboot.conf.d/50-site-jobs.conf" &&
	[ "$(stat -c %a "$b/out/files/etc/firstboot/jobs.secret")" = 600 ] &&
	[ "$(stat -c %a "$b/out/files/etc/firstboot/firstboot.conf.d/50-site-jobs.conf")" = 600 ] &&
	grep -q '^  - id: jobs-agent$' "$b/out/bundle.yaml" &&
	expect_rc 0 "$FIRSTBOOT" validate "$b/out" --modules-dir "$TOP/modules"; then t_pass; else t_fail "$(cat "$T/err")"; fi

# ---- node apps' public_ports: opened by base's firewall ------------------

P=$T/ports
mkdir -p "$P"
igp() { "$IMAGEGEN" "$1" --modules-dir "$TOP/modules" --templates-dir "$TOP/templates" "${@:2}"; }
# portsite BASE-LINE APPS-LINES...: base with BASE-LINE, node with apps.
portsite() {
	{
		printf 'name: shop\nhostname: shop-1\nprovider: nocloud\nmodules:\n  base: %s\n' "$1"
		printf '  node:\n    repo_url: https://git.example.org/shop.git\n    apps:\n'
		shift
		printf '%s\n' "$@"
	} >"$P/site.yaml"
}
# fw_ports DIR: base's firewall_ports in the bundle DIR renders.
fw_ports() { awk '/^  - id: base$/ { b = 1 } /^  - id: / && !/base$/ { b = 0 } b && $1 == "firewall_ports:" { sub(/^ *firewall_ports: */, ""); print }' "$1/bundle.yaml"; }

t_case "public_ports: the apps' ports are added to base's firewall_ports once, after the site's own; gone when the app is"
portsite '{firewall_ports: "8080 3001"}' '      - {name: api, script: a.js, public_ports: [3000, 3001]}' \
	'      - {name: ws, script: w.js, public_ports: 3002}' '      - {name: worker, script: q.js}' '      - {name: api2, script: b.js, public_ports: [3000]}'
if expect_rc 0 igp render "$P/site.yaml" -o "$P/b1" && [ "$(fw_ports "$P/b1")" = '"8080 3001 3000/tcp 3002/tcp"' ] &&
	expect_rc 0 "$FIRSTBOOT" validate "$P/b1" --modules-dir "$TOP/modules" &&
	portsite '{firewall_ports: "8080"}' '      - {name: worker, script: q.js}' &&
	expect_rc 0 igp render "$P/site.yaml" -o "$P/b2" && [ "$(fw_ports "$P/b2")" = '"8080"' ] &&
	portsite '{}' '      - {name: api, script: a.js, public_ports: [0x50]}' &&
	expect_rc 0 igp render "$P/site.yaml" -o "$P/b3" && [ "$(fw_ports "$P/b3")" = '"80/tcp"' ]; then t_pass; else
	t_fail "firewall_ports '$(fw_ports "$P/b1")' '$(fw_ports "$P/b2")' $(cat "$T/err")"
fi

t_case "public_ports with base's firewall off, or without base: nothing added, the bundle validates"
portsite '{firewall: false}' '      - {name: api, script: a.js, public_ports: 3000}'
if expect_rc 0 igp render "$P/site.yaml" -o "$P/b4" && [ -z "$(fw_ports "$P/b4")" ] &&
	! grep -q 3000 "$P/b4/bundle.yaml" && expect_rc 0 "$FIRSTBOOT" validate "$P/b4" --modules-dir "$TOP/modules" &&
	sed -i '/^  base:/d' "$P/site.yaml" && expect_rc 0 igp render "$P/site.yaml" -o "$P/b5" &&
	! grep -q 'id: base' "$P/b5/bundle.yaml"; then t_pass; else t_fail "$(cat "$T/err")"; fi

# badport WANT APP-LINE: validate and render refuse it with WANT (exit 1), render writes nothing.
badport() {
	portsite '{}' "$2"
	rm -rf "$P/bad"
	if expect_rc 1 igp validate "$P/site.yaml" && grep -qF "$1" "$T/err" &&
		expect_rc 1 igp render "$P/site.yaml" -o "$P/bad" && grep -qF "$1" "$T/err" && [ ! -e "$P/bad" ]; then
		return 0
	fi
	echo "  # want: $1; got: $(cat "$T/err")" >&2
	return 1
}
t_case "bad public_ports are refused at site.yaml:line:column, exit 1, nothing written"
if badport "site.yaml:9:49: app api: a public port must be an integer from 1 to 65535, not \"0\"" \
	'      - {name: api, script: a.js, public_ports: 0}' &&
	badport "site.yaml:9:54: app api: a public port must be an integer from 1 to 65535, not \"65536\"" \
		'      - {name: api, script: a.js, public_ports: [80, 65536]}' &&
	badport "site.yaml:9:50: app api: a public port must be an integer from 1 to 65535, not the string \"3000\"" \
		'      - {name: api, script: a.js, public_ports: ["3000"]}' &&
	badport "site.yaml:9:50: app api: a public port must be an integer from 1 to 65535, not the string \"80/udp\"" \
		'      - {name: api, script: a.js, public_ports: [80/udp]}' &&
	badport "site.yaml:9:50: app api: a public port must be an integer from 1 to 65535, not \"-1\"" \
		'      - {name: api, script: a.js, public_ports: [-1, 2.5]}' &&
	badport "site.yaml:9:50: app api: a public port must be an integer from 1 to 65535, not a sequence" \
		'      - {name: api, script: a.js, public_ports: [[80]]}' &&
	badport "site.yaml:9:49: app api: 'public_ports' must be a port number or a list of them" \
		'      - {name: api, script: a.js, public_ports: {port: 80}}' &&
	badport "site.yaml:9:49: app api: at most 8 public_ports" \
		'      - {name: api, script: a.js, public_ports: [1, 2, 3, 4, 5, 6, 7, 8, 9]}'; then t_pass; else t_fail "see above"; fi

t_case "the site's firewall_ports and the apps' ports longer than base takes: refused at the apps"
long=$(seq -s ' ' 10000 10664) # 665 ports of 5 digits and 664 spaces: 3989 characters
portsite "{firewall_ports: \"$long\"}" '      - {name: api, script: a.js, public_ports: [3000, 3001]}'
if expect_rc 1 igp validate "$P/site.yaml" &&
	grep -q "site.yaml:9:7: module node: the apps' public_ports and base's firewall_ports are 4007 characters together; base takes at most 4000" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "node: a token before the host in an https repo_url is refused at its line:column, without the token"
portsite '{}' '      - {name: api, script: a.js}'
sed -i 's|^    repo_url: .*|    repo_url: https://ghp_tok3n@git.example.org/shop.git|' "$P/site.yaml"
ok=0
expect_rc 1 igp validate "$P/site.yaml" &&
	grep -q "site.yaml:7:15: module node: repo_url holds a user, password or token before the host" "$T/err" &&
	! grep -q ghp_tok3n "$T/err" && ok=1
sed -i 's|^    repo_url: .*|    repo_url: https://git.example.org/@scope/shop.git?u=a@b|' "$P/site.yaml"
expect_rc 0 igp validate "$P/site.yaml" || ok=0
if [ $ok = 1 ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

# PM2 7.0.4 (lib/Common.js isConfigFile) takes a name holding any of these
# anywhere for a configuration file: pm2 delete NAME would read a file.
t_case "node: an app name PM2 takes for a configuration file (.json, .yml, .yaml, .config.js/.cjs/.mjs anywhere in it) is refused at the name, exit 1, nothing written; .JSON and a name like jsonapi pass"
ok=1
for n in api.json api.jsonx a.yml.b site.yaml api.config.js api.config.cjs api.config.mjs; do
	part=.${n#*.}
	case $n in api.jsonx) part=.json ;; a.yml.b) part=.yml ;; esac
	badport "site.yaml:9:16: app $n: 'name' must not hold \"$part\": PM2 takes a name holding .json, .yml, .yaml, .config.js, .config.cjs or .config.mjs for a configuration file" \
		"      - {name: $n, script: a.js}" || ok=0
done
portsite '{}' '      - {name: api.JSON, script: a.js}' '      - {name: jsonapi, script: b.js}' '      - {name: api.config.ts, script: c.js}'
expect_rc 0 igp validate "$P/site.yaml" || ok=0
if [ $ok = 1 ]; then t_pass; else t_fail "$(cat "$T/err")"; fi
