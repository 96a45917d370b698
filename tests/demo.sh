#!/bin/bash
# make demo: the whole flow on the embedded default bundle (tests/demo/).
#  1. sign the sample bundle with a fresh Ed25519 key and pack it as
#     user-data (gzip'd tar), the way imagegen ships it;
#  2. start a controller (a phone-home receiver) on 127.0.0.1;
#  3. `firstboot run` provisions a temporary root from that user-data:
#     verifies, writes files, runs the modules in order, writes the
#     ready marker, calls the controller back;
#  4. show status, analyze, a module's log and the callback received;
#  5. run again: nothing left to do, milliseconds.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
FIRSTBOOT=$PWD/$BUILD/firstboot
work=$(mktemp -d "${TMPDIR:-/tmp}/firstboot-demo.XXXXXX")
receiver_pid=
cleanup() {
	[ -n "$receiver_pid" ] && kill "$receiver_pid" 2>/dev/null && wait "$receiver_pid" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

root=$work/root token=$(openssl rand -hex 32)
mkdir -p "$root/etc/firstboot/keys" "$root/etc/ssh" "$root/var/lib" "$root/var/log"
printf 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n' >"$root/etc/os-release"
printf 'root:x:0:0:root:/root:/bin/bash\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
ssh-keygen -q -t ed25519 -N '' -C demo -f "$root/etc/ssh/ssh_host_ed25519_key" 2>/dev/null || true

say "1. Sign and pack the sample bundle (tests/demo/bundle)"
cp -r tests/demo/bundle "$work/bundle"
openssl genpkey -algorithm ed25519 -out "$work/signing.key" 2>/dev/null
openssl pkey -in "$work/signing.key" -pubout -out "$root/etc/firstboot/keys/demo.pub"
port_file=$work/receiver.port
python3 tests/e2e/peers/receiver.py --port-file "$port_file" --record "$work/callbacks.jsonl" \
	--token "$token" 2>"$work/receiver.log" &
receiver_pid=$!
for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.05; done
[ -s "$port_file" ] || { echo "demo: the receiver did not start" >&2 && exit 1; }
url="http://127.0.0.1:$(cat "$port_file")/callback"
sed -i "s|^hostname: demo-1|&\nphone_home: {url: \"$url\", token: \"$token\"}|" "$work/bundle/bundle.yaml"
tests/e2e/mkbundle.sh "$work/bundle" "$work/user-data" "$work/signing.key"
echo "user-data: $(stat -c %s "$work/user-data") bytes, signed; controller at $url"
printf 'require_signature: true\n' >"$root/etc/firstboot/firstboot.conf"
"$FIRSTBOOT" validate "$work/user-data" --keys "$root/etc/firstboot/keys"

say "2. firstboot run --root $root --user-data user-data"
"$FIRSTBOOT" run --root "$root" --user-data "$work/user-data" --instance-id demo-instance-1

say "3. firstboot status"
"$FIRSTBOOT" status --root "$root"
echo "ready marker: $(cat "$root/var/lib/firstboot/ready")"

say "4. firstboot analyze"
"$FIRSTBOOT" analyze --root "$root"

say "5. firstboot logs web-config (the password is masked)"
"$FIRSTBOOT" logs web-config --root "$root"

say "6. The callback the controller received"
python3 - "$work/callbacks.jsonl" <<'EOF'
import json, sys
posts = [json.loads(l) for l in open(sys.argv[1])]
p = posts[-1]
body = json.loads(p["body"])
print("POST %s, signature %s" % (p["path"], "verified" if p["signature_ok"] else "WRONG"))
print("status %s, instance %s, hostname %s" % (body["state"], body["instance_id"], body["hostname"]))
for m in body["modules"]:
    print("  %-12s %-8s attempts %d, %d ms" % (m["id"], m["state"], m["attempts"], m["duration_ms"]))
for k in body.get("ssh_host_keys", []):
    print("  host key %s %s" % (k.get("type"), k.get("fingerprint")))
sys.exit(0 if p["signature_ok"] and body["state"] == "ready" else 1)
EOF

say "7. Next boot: only the 'always' module runs again"
"$FIRSTBOOT" run --root "$root" --user-data "$work/user-data" --instance-id demo-instance-1
"$FIRSTBOOT" status --root "$root" --json | python3 -c \
	'import json,sys; j=json.load(sys.stdin); print("state %s, boot %d, agent %d ms, ran: %s" % (j["state"], j["boot"], j["agent_ms"], [m["id"] for m in j["modules"] if m["ran"]]))'
echo
echo "demo: ok (KEEP=1 keeps $work)"
