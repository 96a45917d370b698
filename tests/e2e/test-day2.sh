#!/bin/bash
# Day 2: a new bundle for an instance that is provisioned already
# (`firstboot apply`, `firstboot plan`, and a boot with new user-data).
# Exactly the modules whose digest changed run again and status.json and
# the callback say why; serials refuse a replayed bundle with nothing
# written; a module that fails on its rerun leaves no ready marker. (The
# verified bundle's cache, <instance>/bundle, 0700, holds inputs as the
# bundle does: the done-marks, status, callback and logs never do.)
# SC2154: start_peer sets *_port.
# shellcheck disable=SC2154
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

TOKEN=day2-token-7e1
SECRET="pw-one-5b2c"
SECRET2="pw-two-9d4e"
start_peer cb receiver.py --record "$T/cb.jsonl" --token "$TOKEN"
R=$T/root
new_root "$R"
fb_conf "$R"
S=$R/var/lib/firstboot/status.json
MARKER=$R/var/lib/firstboot/ready

# mkv DIR SERIAL PORT PASSWORD CONF [EXTRA-FILES-YAML]: a bundle of three
# modules, each appending its name to /ran.log under the root: web (inputs
# port and a sensitive password), conf (watches /etc/app.conf, whose text
# is CONF) and plain.
mkv() {
	local b=$1 serial=$2 port=$3 pw=$4 conf=$5 extra=${6:-}
	rm -rf "$b"
	mkdir -p "$b/files"
	printf '%s\n' "$conf" >"$b/files/app.conf"
	cat >"$b/bundle.yaml" <<EOB
version: 1
name: day2
serial: $serial
phone_home: {url: "http://127.0.0.1:$cb_port/callback", token: "$TOKEN"}
files:
  - {path: /etc/app.conf, source: files/app.conf, mode: "0644"}
$extra
modules:
  - {id: web, inputs: {port: $port, password: "$pw"}}
  - {id: conf}
  - {id: plain}
EOB
	mkmodule "$b" web $'inputs:\n  - {name: port, type: port, default: 8080}\n  - {name: password, type: password, required: true}' <<<$'#!/bin/sh\n[ -e "$FIRSTBOOT_ROOT/fail-web" ] && exit 3\necho web >>"$FIRSTBOOT_ROOT/ran.log"'
	mkmodule "$b" conf 'watches: [/etc/app.conf]' <<<$'#!/bin/sh\necho conf >>"$FIRSTBOOT_ROOT/ran.log"'
	mkmodule "$b" plain '' <<<$'#!/bin/sh\necho plain >>"$FIRSTBOOT_ROOT/ran.log"'
	"$TOP/tests/e2e/mkbundle.sh" "$b" "$b.tgz" "${KEY:-}"
}
ran() { if [ -f "$R/ran.log" ]; then sort "$R/ran.log" | tr '\n' ' '; fi; }
why() { json_get "$S" "[m['why'] for m in j['modules'] if m['id'] == '$1'][0]"; }
# last_cb PYTHON: asserts on the last callback body (body).
last_cb() {
	python3 - "$T/cb.jsonl" <<EOP
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
body = json.loads(recs[-1]["body"])
mods = {m["id"]: m for m in body["modules"]}
$1
EOP
}
posts() { if [ -f "$T/cb.jsonl" ]; then wc -l <"$T/cb.jsonl"; else echo 0; fi; }
plan() { "$FIRSTBOOT" plan --root "$R" "$@"; }

mkv "$T/v1" 1 8080 "$SECRET" "level=1"
mkv "$T/v2" 2 9090 "$SECRET" "level=1"
mkv "$T/v3" 3 9090 "$SECRET" "level=2"
mkv "$T/v4" 4 9090 "$SECRET2" "level=2"

t_case "v1: every module runs for the first time"
if fb_run "$R" --user-data "$T/v1.tgz" >"$T/v1.out" 2>&1 && [ "$(ran)" = "conf plain web " ] &&
	[ "$(why web)" = "first run" ] && [ -f "$MARKER" ] && [ "$(posts)" = 1 ]; then
	t_pass
else
	t_fail "$(ran) / $(cat "$T/v1.out")"
fi

t_case "plan: v2 shows web to run for its changed input, exit 2, nothing written"
before=$(tree_snapshot "$R"; cat "$S")
plan --user-data "$T/v2.tgz" >"$T/plan2.out" 2>&1
rc=$?
if [ "$rc" = 2 ] && grep -q '^  run   web: inputs changed: port$' "$T/plan2.out" &&
	grep -q '^  skip  conf: unchanged$' "$T/plan2.out" &&
	grep -q '^  same  /etc/app.conf$' "$T/plan2.out" &&
	[ "$before" = "$(tree_snapshot "$R"; cat "$S")" ]; then
	t_pass
else
	t_fail "rc $rc: $(cat "$T/plan2.out")"
fi

t_case "apply v2: exactly web reran, status and callback say why"
: >"$R/ran.log"
if "$FIRSTBOOT" apply --root "$R" --user-data "$T/v2.tgz" >"$T/a2.out" 2>&1 &&
	[ "$(ran)" = "web " ] && [ "$(why web)" = "inputs changed: port" ] &&
	[ "$(why conf)" = "unchanged" ] && [ "$(why plain)" = "unchanged" ] &&
	[ "$(json_get "$S" "j['state']")" = ready ] && [ -f "$MARKER" ] && [ "$(posts)" = 2 ] &&
	last_cb 'assert mods["web"]["ran"] and mods["web"]["why"] == "inputs changed: port", mods
assert not mods["conf"]["ran"] and mods["conf"]["why"] == "unchanged", mods
assert body["status"] if "status" in body else body["state"] == "ready"'; then
	t_pass
else
	t_fail "$(ran) / $(cat "$S") / $(cat "$T/a2.out")"
fi

t_case "apply from stdin: a watched file changed, only its module reran"
: >"$R/ran.log"
if "$FIRSTBOOT" apply --root "$R" --user-data - <"$T/v3.tgz" >"$T/a3.out" 2>&1 &&
	[ "$(ran)" = "conf " ] && [ "$(why conf)" = "watched file changed: /etc/app.conf" ] &&
	[ "$(cat "$R/etc/app.conf")" = "level=2" ] && [ -f "$MARKER" ]; then
	t_pass
else
	t_fail "$(ran) / $(cat "$T/a3.out")"
fi

t_case "v3 again: nothing runs, no callback, plan says nothing to do (exit 0)"
: >"$R/ran.log"
n=$(posts)
plan --user-data "$T/v3.tgz" >"$T/plan3.out" 2>&1
prc=$?
if "$FIRSTBOOT" apply --root "$R" --user-data "$T/v3.tgz" >"$T/a3b.out" 2>&1 &&
	[ "$(ran)" = "" ] && [ "$(posts)" = "$n" ] && [ -f "$MARKER" ] && [ "$prc" = 0 ] &&
	grep -qi "nothing to do" "$T/plan3.out"; then
	t_pass
else
	t_fail "plan rc $prc: $(cat "$T/plan3.out") / $(ran)"
fi

t_case "a changed password: its name in status and callback, never its value"
: >"$R/ran.log"
if "$FIRSTBOOT" apply --root "$R" --user-data "$T/v4.tgz" >"$T/a4.out" 2>&1 &&
	[ "$(ran)" = "web " ] && [ "$(why web)" = "inputs changed: password" ] &&
	! grep -rqF --exclude-dir=bundle -e "$SECRET" -e "$SECRET2" "$S" "$T/cb.jsonl" \
		"$R/var/lib/firstboot" "$R/var/log/firstboot" "$T/a4.out"; then
	t_pass
else
	t_fail "$(why web) / $(grep -rlF --exclude-dir=bundle -e "$SECRET" -e "$SECRET2" "$S" "$T/cb.jsonl" "$R/var/lib/firstboot" "$R/var/log/firstboot" "$T/a4.out")"
fi

t_case "an older serial is refused with nothing written (apply exit 1, plan exit 1)"
before=$(tree_snapshot "$R"; find "$R/var/lib/firstboot" -printf '%p %s %T@\n' | sort)
n=$(posts)
"$FIRSTBOOT" apply --root "$R" --user-data "$T/v2.tgz" >"$T/old.out" 2>&1
rc=$?
plan --user-data "$T/v2.tgz" >"$T/oldplan.out" 2>&1
prc=$?
after=$(tree_snapshot "$R"; find "$R/var/lib/firstboot" -printf '%p %s %T@\n' | sort)
if [ "$rc" = 1 ] && [ "$prc" = 1 ] && grep -q "serial 2, lower than serial 4" "$T/old.out" &&
	grep -q "serial 2, lower than serial 4" "$T/oldplan.out" &&
	[ "$before" = "$after" ] && [ "$(posts)" = "$n" ] && [ -f "$MARKER" ]; then
	t_pass
else
	t_fail "rc $rc/$prc: $(cat "$T/old.out") $(diff <(echo "$before") <(echo "$after"))"
fi

t_case "the same serial with other contents is refused"
mkv "$T/v4b" 4 9091 "$SECRET2" "level=2"
before=$(tree_snapshot "$R")
if ! "$FIRSTBOOT" apply --root "$R" --user-data "$T/v4b.tgz" >"$T/same.out" 2>&1 &&
	grep -q "raise the serial" "$T/same.out" && [ "$before" = "$(tree_snapshot "$R")" ] &&
	[ -f "$MARKER" ]; then
	t_pass
else
	t_fail "$(cat "$T/same.out")"
fi

t_case "a boot whose datasource still offers v1 keeps the applied bundle (exit 0, ready)"
: >"$R/ran.log"
if fb_run "$R" --user-data "$T/v1.tgz" --instance-id "$(cat "$R/var/lib/firstboot/instance-id")" \
	>"$T/boot.out" 2>&1 && [ "$(ran)" = "" ] && [ -f "$MARKER" ] &&
	grep -q "lower than serial 4" "$T/boot.out"; then
	t_pass
else
	t_fail "$(cat "$T/boot.out")"
fi

t_case "a rerun module fails: no ready marker, callback failed; a fixed apply reruns it"
mkv "$T/v5" 5 9095 "$SECRET2" "level=2"
mkv "$T/v6" 6 9096 "$SECRET2" "level=2"
touch "$R/fail-web"
: >"$R/ran.log"
"$FIRSTBOOT" apply --root "$R" --user-data "$T/v5.tgz" >"$T/a5.out" 2>&1
rc=$?
st=$(json_get "$S" "j['state']")
ok1=no
[ "$rc" = 1 ] && [ ! -e "$MARKER" ] && [ "$st" = failed ] &&
	last_cb 'assert body["state"] == "failed" and mods["web"]["state"] == "failed", body' && ok1=yes
rm -f "$R/fail-web"
plan --user-data "$T/v5.tgz" >"$T/plan5.out" 2>&1
prc=$?
"$FIRSTBOOT" apply --root "$R" --user-data "$T/v5.tgz" >"$T/a5b.out" 2>&1
rc2=$?
if [ "$ok1" = yes ] && [ "$prc" = 2 ] && grep -q "web: failed last time" "$T/plan5.out" &&
	[ "$rc2" = 0 ] && [ -f "$MARKER" ] && [ "$(why web)" = "failed last time" ] &&
	[ "$(ran)" = "web " ]; then
	t_pass
else
	t_fail "rc $rc $st $ok1 plan $prc rc2 $rc2: $(cat "$T/plan5.out") $(cat "$T/a5b.out")"
fi

t_case "a dropped file is left and reported; state: absent removes it"
mkv "$T/v7" 7 9096 "$SECRET2" "level=2" '  - {path: /etc/extra.conf, source: files/app.conf}'
mkv "$T/v8" 8 9096 "$SECRET2" "level=2"
mkv "$T/v9" 9 9096 "$SECRET2" "level=2" '  - {path: /etc/extra.conf, state: absent}'
"$FIRSTBOOT" apply --root "$R" --user-data "$T/v7.tgz" >"$T/a7.out" 2>&1
plan --user-data "$T/v8.tgz" >"$T/plan8.out" 2>&1
prc=$?
"$FIRSTBOOT" apply --root "$R" --user-data "$T/v8.tgz" >"$T/a8.out" 2>&1
kept=no
[ -f "$R/etc/extra.conf" ] && kept=yes
dropped=$(json_get "$S" "j.get('dropped_files')")
plan --user-data "$T/v9.tgz" >"$T/plan9.out" 2>&1
prc9=$?
"$FIRSTBOOT" apply --root "$R" --user-data "$T/v9.tgz" >"$T/a9.out" 2>&1
if [ "$kept" = yes ] && [ "$dropped" = "['/etc/extra.conf']" ] && [ ! -e "$R/etc/extra.conf" ] &&
	grep -q "no longer in the bundle" "$T/a8.out" && [ "$prc" = 2 ] &&
	grep -q '^  dropped /etc/extra.conf (left in place)$' "$T/plan8.out" && [ "$prc9" = 2 ] &&
	grep -q '^  remove /etc/extra.conf$' "$T/plan9.out" && [ -f "$MARKER" ]; then
	t_pass
else
	t_fail "kept $kept dropped $dropped plan $prc/$prc9: $(cat "$T/plan8.out" "$T/plan9.out")"
fi

t_case "plan --json and a diff of a changed text file"
mkv "$T/v10" 10 9096 "$SECRET2" "level=3"
plan --user-data "$T/v10.tgz" --json >"$T/plan10.json" 2>"$T/plan10.err"
prc=$?
plan --user-data "$T/v10.tgz" >"$T/plan10.out" 2>&1
if [ "$prc" = 2 ] && python3 - "$T/plan10.json" <<'EOP' && grep -q '^+level=3$' "$T/plan10.out"; then
import json, sys
j = json.load(open(sys.argv[1]))
f = {x["path"]: x for x in j["files"]}
assert f["/etc/app.conf"]["change"] == "changed", f
assert "+level=3" in f["/etc/app.conf"]["diff"], f
m = {x["id"]: x for x in j["modules"]}
assert m["conf"]["runs"] and m["conf"]["why"] == "watched file changed: /etc/app.conf", m
assert not m["web"]["runs"], m
assert j["changes"] is True
EOP
	t_pass
else
	t_fail "rc $prc $(cat "$T/plan10.json" "$T/plan10.err")"
fi

t_case "plan names a module that is no longer in the bundle"
mkv "$T/v11" 11 9096 "$SECRET2" "level=2"
sed -i '/  - {id: plain}/d' "$T/v11/bundle.yaml"
rm -rf "$T/v11/modules/plain"
"$TOP/tests/e2e/mkbundle.sh" "$T/v11" "$T/v11.tgz"
plan --user-data "$T/v11.tgz" >"$T/plan11.out" 2>&1
prc=$?
if [ "$prc" = 2 ] && grep -q '^  gone  plain: no longer in the bundle$' "$T/plan11.out"; then
	t_pass
else
	t_fail "rc $prc: $(cat "$T/plan11.out")"
fi

t_case "unsigned under require_signature: apply and plan refuse, nothing written"
openssl genpkey -algorithm ed25519 -out "$T/k.pem" 2>/dev/null
openssl pkey -in "$T/k.pem" -pubout -out "$T/k.pub"
mkdir -p "$R/etc/firstboot/keys"
cp "$T/k.pub" "$R/etc/firstboot/keys/"
echo "require_signature: true" >>"$R/etc/firstboot/firstboot.conf"
mkv "$T/v12" 12 9100 "$SECRET2" "level=2"
n=$(posts)
before=$(tree_snapshot "$R"; cat "$R/var/lib/firstboot/instances"/*/serial "$S" "$MARKER")
"$FIRSTBOOT" apply --root "$R" --user-data "$T/v12.tgz" >"$T/a12.out" 2>&1
rc=$?
plan --user-data "$T/v12.tgz" >"$T/plan12.out" 2>&1
prc=$?
after=$(tree_snapshot "$R"; cat "$R/var/lib/firstboot/instances"/*/serial "$S" "$MARKER")
[ "$(posts)" = "$n" ] || after="$after (called back)"
KEY=$T/k.pem mkv "$T/v13" 13 9100 "$SECRET2" "level=2"
: >"$R/ran.log"
if [ "$rc" = 1 ] && [ "$prc" = 1 ] && grep -qi "signature" "$T/a12.out" &&
	[ "$before" = "$after" ] &&
	"$FIRSTBOOT" apply --root "$R" --user-data "$T/v13.tgz" >"$T/a13.out" 2>&1 &&
	[ "$(ran)" = "web " ]; then
	t_pass
else
	t_fail "rc $rc/$prc: $(cat "$T/a12.out" "$T/a13.out")"
fi

t_case "apply before any run, and apply without --user-data, are refused"
R2=$T/fresh
new_root "$R2"
fb_conf "$R2"
"$FIRSTBOOT" apply --root "$R2" --user-data "$T/v1.tgz" >"$T/fresh.out" 2>&1
rc=$?
"$FIRSTBOOT" apply --root "$R2" >/dev/null 2>&1
rc2=$?
if [ "$rc" = 1 ] && grep -q "Nothing was provisioned here yet" "$T/fresh.out" && [ "$rc2" = 2 ] &&
	[ ! -e "$R2/ran.log" ]; then
	t_pass
else
	t_fail "rc $rc/$rc2: $(cat "$T/fresh.out")"
fi

t_case "imagegen render keeps the serial while nothing changed and raises it when something did"
SITE=$T/site
cp -r "$TOP/tests/cases/render/basic/site" "$SITE"
chmod 0700 "$SITE/.imagegen" && chmod 0600 "$SITE/.imagegen/state.json"
ig() {
	"$IMAGEGEN" render -q --modules-dir "$TOP/tests/cases/imagegen/modules" \
		--templates-dir "$TOP/tests/cases/imagegen/templates" "$SITE/site.yaml" -o "$1"
}
serial_of() { sed -n 's/^serial: //p' "$1/bundle.yaml"; }
ig "$T/r1" 2>"$T/ig.err"
cp "$SITE/.imagegen/state.json" "$T/state1"
ig "$T/r2" 2>>"$T/ig.err"
f=$(find "$SITE/files" -type f | head -n 1)
echo "# changed" >>"$f"
ig "$T/r3" 2>>"$T/ig.err"
ig "$T/r4" 2>>"$T/ig.err"
if [ "$(serial_of "$T/r1")" = 1 ] && [ "$(serial_of "$T/r2")" = 1 ] &&
	[ "$(serial_of "$T/r3")" = 2 ] && [ "$(serial_of "$T/r4")" = 2 ] &&
	"$FIRSTBOOT" validate "$T/r3" --modules-dir "$TOP/tests/cases/imagegen/modules" >/dev/null; then
	t_pass
else
	t_fail "serials $(serial_of "$T/r1") $(serial_of "$T/r2") $(serial_of "$T/r3") $(serial_of "$T/r4"): $(cat "$T/ig.err")"
fi

t_case "imagegen: a second render with nothing changed leaves the state file untouched"
ig "$T/r5" 2>"$T/ig.err"
cp -p "$SITE/.imagegen/state.json" "$T/state5"
ig "$T/r6" 2>>"$T/ig.err"
if cmp -s "$T/state5" "$SITE/.imagegen/state.json" && [ "$(serial_of "$T/r6")" = 2 ]; then
	t_pass
else
	t_fail "$(diff "$T/state5" "$SITE/.imagegen/state.json") $(cat "$T/ig.err")"
fi

t_case "a done-mark from before digests: its module runs once more, then is unchanged"
mark=$(ls "$R"/var/lib/firstboot/instances/*/done/plain)
printf '%s 1700000000000\n' "$(cat "$R/var/lib/firstboot/instance-id")" >"$mark"
: >"$R/ran.log"
"$FIRSTBOOT" apply --root "$R" --user-data "$T/v13.tgz" >"$T/old-mark.out" 2>&1
rc=$?
w=$(why plain)
r1=$(ran)
: >"$R/ran.log"
"$FIRSTBOOT" apply --root "$R" --user-data "$T/v13.tgz" >>"$T/old-mark.out" 2>&1
if [ "$rc" = 0 ] && [ "$r1" = "plain " ] && [[ "$w" == "first run with digests"* ]] &&
	[ "$(ran)" = "" ] && head -n 1 "$mark" | grep -qx "firstboot-done-mark 2"; then
	t_pass
else
	t_fail "rc $rc ran [$r1] why [$w]: $(cat "$T/old-mark.out")"
fi

t_case "bundles without a serial: accepted until one with a serial was applied, refused after"
R3=$T/noserial
new_root "$R3"
fb_conf "$R3"
nos() { # nos NAME SERIAL CONF: mkv without the serial line when SERIAL is -
	mkv "$T/$1" "${2/-/0}" 8080 "$SECRET" "$3"
	if [ "$2" = - ]; then
		sed -i '/^serial:/d' "$T/$1/bundle.yaml"
		"$TOP/tests/e2e/mkbundle.sh" "$T/$1" "$T/$1.tgz"
	fi
}
nos n1 - "a=1"
nos n2 - "a=2"
nos n3 0 "a=3"
nos n4 - "a=4"
fb_run "$R3" --user-data "$T/n1.tgz" >"$T/n.out" 2>&1
r1=$?
"$FIRSTBOOT" apply --root "$R3" --user-data "$T/n2.tgz" >>"$T/n.out" 2>&1
r2=$?
"$FIRSTBOOT" apply --root "$R3" --user-data "$T/n3.tgz" >>"$T/n.out" 2>&1
r3=$?
"$FIRSTBOOT" apply --root "$R3" --user-data "$T/n4.tgz" >"$T/n4.out" 2>&1
r4=$?
if [ "$r1$r2$r3" = 000 ] && [ "$r4" = 1 ] && grep -q "has no serial, and serial 0 was applied" "$T/n4.out" &&
	[ "$(cat "$R3/etc/app.conf")" = "a=3" ]; then
	t_pass
else
	t_fail "rc $r1 $r2 $r3 $r4: $(cat "$T/n.out" "$T/n4.out")"
fi

t_case "watches naming a file the bundle does not ship: accepted and run; the file arriving reruns it, named"
B=$T/badwatch
mkdir -p "$B"
printf 'version: 1\nname: bw\nserial: 99\nmodules:\n  - {id: w}\n' >"$B/bundle.yaml"
mkmodule "$B" w 'watches: [/etc/nope.conf]' <<<$'#!/bin/sh\necho w >>"$FIRSTBOOT_ROOT/ran.log"'
"$TOP/tests/e2e/mkbundle.sh" "$B" "$B.tgz" "$T/k.pem"
"$FIRSTBOOT" validate "$B" >"$T/bw.out" 2>&1
vrc=$?
rm -f "$R/ran.log"
"$FIRSTBOOT" apply --root "$R" --user-data "$B.tgz" >"$T/bwa.out" 2>&1
arc=$?
ran1=$(ran)
mkdir -p "$B/files"
echo on >"$B/files/nope.conf"
printf 'version: 1\nname: bw\nserial: 100\nfiles:\n  - {path: /etc/nope.conf, source: files/nope.conf}\nmodules:\n  - {id: w}\n' >"$B/bundle.yaml"
"$TOP/tests/e2e/mkbundle.sh" "$B" "$B.tgz" "$T/k.pem"
"$FIRSTBOOT" plan --root "$R" --user-data "$B.tgz" >"$T/bwp.out" 2>&1
prc=$?
rm -f "$R/ran.log"
"$FIRSTBOOT" apply --root "$R" --user-data "$B.tgz" >>"$T/bwa.out" 2>&1
arc2=$?
if [ "$vrc" = 0 ] && [ "$arc" = 0 ] && [ "$ran1" = "w " ] && [ "$prc" = 2 ] &&
	grep -qF "run   w: watched file changed: /etc/nope.conf" "$T/bwp.out" && [ "$arc2" = 0 ] && [ "$(ran)" = "w " ] &&
	[ "$(why w)" = "watched file changed: /etc/nope.conf" ] && [ -f "$MARKER" ]; then
	t_pass
else
	t_fail "validate $vrc apply $arc $arc2 plan $prc ran '$ran1' why '$(why w)': $(cat "$T/bw.out" "$T/bwa.out" "$T/bwp.out")"
fi

t_case "a module sourcing the shipped modules/_lib reruns when the library changes, with that reason; the others do not"
R4=$T/root-lib
new_root "$R4"
# mkl DIR SERIAL LIBTEXT: modules libuser (sources ../_lib/h.sh) and other.
mkl() {
	rm -rf "$1"
	mkdir -p "$1/modules/_lib"
	printf 'version: 1\nname: lib\nserial: %s\nmodules:\n  - {id: libuser}\n  - {id: other}\n' "$2" >"$1/bundle.yaml"
	printf '%s\n' "$3" >"$1/modules/_lib/h.sh"
	mkmodule "$1" libuser '' <<<$'#!/bin/bash\n. "$(dirname -- "${BASH_SOURCE[0]}")/../_lib/h.sh"\nlibsay >>"$FIRSTBOOT_ROOT/ran.log"'
	mkmodule "$1" other '' <<<$'#!/bin/sh\necho other >>"$FIRSTBOOT_ROOT/ran.log"'
	"$TOP/tests/e2e/mkbundle.sh" "$1" "$1.tgz"
}
mkl "$T/l1" 1 'libsay() { echo lib-one; }'
mkl "$T/l2" 2 'libsay() { echo lib-two; }'
rc1=0 rc2=0
fb_run "$R4" --user-data "$T/l1.tgz" --instance-id i-lib >"$T/l1.out" 2>&1 || rc1=$?
first=$(sort "$R4/ran.log" 2>/dev/null | tr '\n' ' ')
rm -f "$R4/ran.log"
"$FIRSTBOOT" apply --root "$R4" --user-data "$T/l2.tgz" >"$T/l2.out" 2>&1 || rc2=$?
S4=$R4/var/lib/firstboot/status.json
w=$(json_get "$S4" "[m['why'] for m in j['modules'] if m['id'] == 'libuser'][0]")
if [ $rc1 = 0 ] && [ "$first" = "lib-one other " ] && [ $rc2 = 0 ] && [ "$(cat "$R4/ran.log" 2>/dev/null)" = lib-two ] &&
	[ "$w" = "modules' shared library changed" ]; then t_pass; else
	t_fail "run $rc1 ($first), apply $rc2 ($(cat "$R4/ran.log" 2>/dev/null)), why '$w': $(tail -n 5 "$T/l1.out" "$T/l2.out")"
fi

t_case "plan: a usage error exits 64, never 2 (which imagegen push reads as changes pending)"
rc1=0 rc2=0 rc3=0
"$FIRSTBOOT" plan --root "$R" --no-such-option >/dev/null 2>&1 || rc1=$?
"$FIRSTBOOT" plan --root "$R" extra-arg >/dev/null 2>"$T/pu.err" || rc2=$?
"$FIRSTBOOT" apply --root "$R" >/dev/null 2>&1 || rc3=$?
if [ $rc1 = 64 ] && [ $rc2 = 64 ] && grep -q "firstboot plan: unexpected argument 'extra-arg'" "$T/pu.err" && [ $rc3 = 2 ]; then t_pass; else
	t_fail "plan $rc1 $rc2, apply $rc3: $(cat "$T/pu.err")"
fi

t_case "a fleet host's rendered bundle is applied; its older rendered bundle is then refused"
# A fleet of three rendered with -j 2: the parent renders f-1 and f-2, a
# worker f-3. f-3's bundle at level 1 (serial 1) provisions the root, level
# 2 (serial 2) is applied, and the captured level 1 bundle is refused with
# nothing written.
FS=$T/fleet
mkdir -p "$FS/t"
echo '[]' >"$FS/t/index.yml"
mkmodule "$FS" fl $'inputs:\n  - {name: level, type: string, default: "1"}' <<<$'#!/bin/sh\necho "fl $LEVEL" >>"$FIRSTBOOT_ROOT/ran.log"'
fleet_site() {
	printf 'name: fleet-day2\nprovider: nocloud\ntls: {mode: none}\nhosts:\n  - {hostname: f-1}\n  - {hostname: f-2}\n  - {hostname: f-3}\nmodules:\n  fl: {level: "%s"}\n' "$1" >"$FS/site.yaml"
}
# fleet_render LEVEL: the fleet at that level to FS/rLEVEL, f-3's as FS/rLEVEL.tgz.
fleet_render() {
	fleet_site "$1"
	"$IMAGEGEN" render -q -j 2 --modules-dir "$FS/modules" --templates-dir "$FS/t" "$FS/site.yaml" -o "$FS/r$1" &&
		tar --sort=name --owner=0 --group=0 --numeric-owner -C "$FS/r$1/f-3" -czf "$FS/r$1.tgz" .
}
R5=$T/fleetroot
new_root "$R5"
fb_conf "$R5"
ok=1
fleet_render 1 2>"$FS/err" && fleet_render 2 2>>"$FS/err" || ok=0
fleet_serial() { sed -n 's/^serial: //p' "$FS/r$1/f-$2/bundle.yaml"; }
[ "$(fleet_serial 1 3)" = 1 ] && [ "$(fleet_serial 2 3)" = 2 ] && [ "$(fleet_serial 2 1)" = 2 ] || ok=0
fb_run "$R5" --user-data "$FS/r1.tgz" >"$FS/run.out" 2>&1 && [ "$(cat "$R5/ran.log")" = "fl 1" ] || ok=0
"$FIRSTBOOT" apply --root "$R5" --user-data "$FS/r2.tgz" >>"$FS/run.out" 2>&1 &&
	[ "$(tail -n 1 "$R5/ran.log")" = "fl 2" ] || ok=0
before=$(tree_snapshot "$R5"; find "$R5/var/lib/firstboot" -printf '%p %s %T@\n' | sort)
rc=0
"$FIRSTBOOT" apply --root "$R5" --user-data "$FS/r1.tgz" >"$FS/old.out" 2>&1 || rc=$?
after=$(tree_snapshot "$R5"; find "$R5/var/lib/firstboot" -printf '%p %s %T@\n' | sort)
if [ $ok = 1 ] && [ $rc = 1 ] && grep -q "bundle fleet-day2 has serial 1, lower than serial 2" "$FS/old.out" &&
	[ "$before" = "$after" ] && [ "$(wc -l <"$R5/ran.log")" = 2 ]; then
	t_pass
else
	t_fail "rc $rc: $(cat "$FS/err" "$FS/run.out" "$FS/old.out")"
fi
