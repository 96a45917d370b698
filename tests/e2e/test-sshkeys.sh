#!/bin/bash
# The provider's SSH keys (#16): fetched by each datasource (EC2's
# public-keys/N/openssh-key with the IMDSv2 token, Hetzner's public-keys,
# DigitalOcean's public_keys, NoCloud meta-data public-keys as a list or a
# string, ConfigDrive meta_data.json public_keys as a map) from
# tests/e2e/peers/metadata.py and seeds, and merged into the
# authorized_keys of ssh_keys_user before any module runs: .ssh 0700, the
# file 0600, owned by the user, no duplicates, existing lines kept, a
# second run changes nothing. A malformed key fails the run (exit 1, no
# marker, nothing written), naming the datasource and the field.
# SC2154: start_peer sets *_port.
# shellcheck disable=SC2154
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

command -v ssh-keygen >/dev/null || "$TOP/packaging/deps.sh" >&2
if ! command -v ssh-keygen >/dev/null; then
	echo "not ok - ssh-keygen (openssh-client) is needed; packaging/deps.sh could not install it"
	exit 1
fi

K=$T/keys
mkdir -p "$K"
ssh-keygen -q -t ed25519 -N '' -C owner@laptop -f "$K/ed"
ssh-keygen -q -t rsa -b 2048 -N '' -C ops@ci -f "$K/rsa"
ssh-keygen -q -t ecdsa -b 384 -N '' -C ecdsa@host -f "$K/ec"
ssh-keygen -q -t ed25519 -N '' -C already@there -f "$K/old"
ED=$(cat "$K/ed.pub")
RSA=$(cat "$K/rsa.pub")
EC=$(cat "$K/ec.pub")
OLD=$(cat "$K/old.pub")
# A FIDO key (sk-ssh-ed25519@openssh.com) cannot be made without the
# hardware: its blob is the type, 32 bytes of key and the application.
SK=$(python3 -c '
import base64, struct
s = lambda b: struct.pack(">I", len(b)) + b
print("sk-ssh-ed25519@openssh.com " + base64.b64encode(s(b"sk-ssh-ed25519@openssh.com") + s(bytes(range(32))) + s(b"ssh:")).decode() + " yubi")')
# An ed25519 key whose blob says ssh-rsa: base64 that decodes, wrong type.
LIAR="ssh-ed25519 $(cut -d' ' -f2 "$K/rsa.pub") liar"
printf '%s\n%s\n' "$ED" "$RSA" >"$T/two.keys"

B=$T/b
mkdir -p "$B"
printf 'version: 1\nname: keys\nmodules:\n  - id: look\n' >"$B/bundle.yaml"
# The module records what authorized_keys held when it ran: the keys are
# there before any module.
mkmodule "$B" look '' <<'EOS'
#!/bin/sh
cat "$FIRSTBOOT_ROOT/root/.ssh/authorized_keys" > "$FIRSTBOOT_ROOT/seen-by-module" 2>/dev/null || true
EOS
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/ud.tgz"

AK=root/.ssh/authorized_keys
# perms ROOT DIR: .ssh 0700, authorized_keys 0600, both owned by UID:GID.
perms() {
	[ "$(stat -c '%a %u:%g' "$1/$2/.ssh")" = "700 $3" ] &&
		[ "$(stat -c '%a %u:%g %F' "$1/$2/.ssh/authorized_keys")" = "600 $3 regular file" ]
}
# has_keys FILE KEY...: FILE holds exactly these lines, in order.
has_keys() {
	local f=$1
	shift
	[ "$(cat "$f")" = "$(printf '%s\n' "$@")" ]
}
ready() { [ -f "$1/var/lib/firstboot/ready" ]; }

# --- each metadata service ---

for p in ec2 hetzner digitalocean; do
	start_peer "md_$p" metadata.py --provider "$p" --instance-id 4711 --public-keys "$T/two.keys" --user-data "$T/ud.tgz"
	port_var="md_${p}_port"
	R=$T/r-$p
	new_root "$R"
	t_case "$p: the server's keys land in root's authorized_keys before the modules run"
	if expect_rc 0 fb_run "$R" --datasource "$p" --metadata-url "http://127.0.0.1:${!port_var}" &&
		ready "$R" && has_keys "$R/$AK" "$ED" "$RSA" && perms "$R" root 0:0 &&
		cmp -s "$R/$AK" "$R/seen-by-module" &&
		ssh-keygen -lf "$R/$AK" >/dev/null; then
		t_pass
	else t_fail "$(cat "$R/$AK" 2>&1)"; fi

	t_case "$p: a second run adds nothing and leaves the file as it was"
	sum=$(sha256sum <"$R/$AK")
	ino=$(stat -c %i "$R/$AK")
	if expect_rc 0 fb_run "$R" --datasource "$p" --metadata-url "http://127.0.0.1:${!port_var}" &&
		[ "$(sha256sum <"$R/$AK")" = "$sum" ] && [ "$(stat -c %i "$R/$AK")" = "$ino" ]; then
		t_pass
	else t_fail "$(cat "$R/$AK")"; fi
done

grep -q 'X-aws-ec2-metadata-token' "$T/md_ec2.log" 2>/dev/null || true
t_case "ec2: the keys are asked for with the IMDSv2 token, listing then each openssh-key"
start_peer md_ec2log metadata.py --provider ec2 --public-keys "$T/two.keys" --user-data "$T/ud.tgz" --log "$T/ec2.jsonl"
R=$T/r-ec2log
new_root "$R"
if expect_rc 0 fb_run "$R" --datasource ec2 --metadata-url "http://127.0.0.1:$md_ec2log_port" &&
	python3 - "$T/ec2.jsonl" <<'EOP'; then t_pass; else t_fail "$(cat "$T/ec2.jsonl")"; fi
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
keys = [r for r in recs if "public-keys" in r["path"]]
assert [r["path"] for r in keys] == ["/latest/meta-data/public-keys/",
    "/latest/meta-data/public-keys/0/openssh-key",
    "/latest/meta-data/public-keys/1/openssh-key"], keys
assert all(r["status"] == 200 and r["headers"].get("X-aws-ec2-metadata-token") for r in keys), keys
EOP

t_case "ec2: no keys (public-keys/ is 404): nothing written, the run is ready"
start_peer md_ec2none metadata.py --provider ec2 --user-data "$T/ud.tgz"
R=$T/r-ec2none
new_root "$R"
if expect_rc 0 fb_run "$R" --datasource ec2 --metadata-url "http://127.0.0.1:$md_ec2none_port" &&
	ready "$R" && [ ! -e "$R/root/.ssh" ]; then t_pass; else t_fail "$(ls -la "$R/root" 2>&1)"; fi

# --- seeds ---

R=$T/r-nocloud-list
new_root "$R"
mkdir -p "$T/nc1"
cp "$T/ud.tgz" "$T/nc1/user-data"
printf 'instance-id: nc-1\npublic-keys:\n  - %s\n  - "%s"\n' "$ED" "$SK" >"$T/nc1/meta-data"
t_case "nocloud: meta-data public-keys as a list (a FIDO sk- key too)"
if expect_rc 0 fb_run "$R" --datasource nocloud --seed "$T/nc1" &&
	ready "$R" && has_keys "$R/$AK" "$ED" "$SK" && perms "$R" root 0:0; then t_pass; else t_fail "$(cat "$R/$AK" 2>&1)"; fi

R=$T/r-nocloud-str
new_root "$R"
mkdir -p "$R/root/.ssh"
chmod 0755 "$R/root/.ssh"
# An existing file: an options line with the old key, and the ed25519
# key under another comment, without a final newline.
printf 'no-pty,from="10.0.0.0/8" %s\n# a comment line\n%s other-comment' "$OLD" "${ED% *}" >"$R/$AK"
chmod 0644 "$R/$AK"
mkdir -p "$T/nc2"
cp "$T/ud.tgz" "$T/nc2/user-data"
{
	printf 'instance-id: nc-2\npublic-keys: |\n'
	printf '  %s\n\n  # not a key\n  %s\n  %s\n' "$ED" "$EC" "$OLD"
} >"$T/nc2/meta-data"
t_case "nocloud: public-keys as a string of lines; existing lines kept, known keys not added again, modes put right"
if expect_rc 0 fb_run "$R" --datasource nocloud --seed "$T/nc2" && ready "$R" &&
	has_keys "$R/$AK" "no-pty,from=\"10.0.0.0/8\" $OLD" "# a comment line" "${ED% *} other-comment" "$EC" &&
	perms "$R" root 0:0; then t_pass; else t_fail "$(cat "$R/$AK" 2>&1)"; fi

R=$T/r-configdrive
new_root "$R"
mkdir -p "$T/cd/openstack/latest"
cp "$T/ud.tgz" "$T/cd/openstack/latest/user_data"
python3 - "$T/cd/openstack/latest/meta_data.json" "$ED" "$RSA" <<'EOP'
import json, sys
json.dump({"uuid": "cd-1", "hostname": "cd-host", "public_keys": {"mykey": sys.argv[2], "ops": sys.argv[3]}},
          open(sys.argv[1], "w"))
EOP
t_case "configdrive: meta_data.json public_keys, a map of names to keys"
if expect_rc 0 fb_run "$R" --datasource configdrive --seed "$T/cd" &&
	ready "$R" && has_keys "$R/$AK" "$ED" "$RSA" && perms "$R" root 0:0; then t_pass; else t_fail "$(cat "$R/$AK" 2>&1)"; fi

t_case "firstboot query shows the keys (text and JSON)"
if expect_rc 0 "$FIRSTBOOT" query --root "$R" --datasource configdrive --seed "$T/cd" &&
	grep -qxF "ssh_key: $ED" "$T/out" && grep -qxF "ssh_key: $RSA" "$T/out" &&
	expect_rc 0 "$FIRSTBOOT" query --root "$R" --datasource configdrive --seed "$T/cd" --json &&
	[ "$(json_get "$T/out" 'j["ssh_keys"]')" = "$(python3 -c 'import sys; print(sys.argv[1:])' "$ED" "$RSA")" ] &&
	expect_rc 0 "$FIRSTBOOT" query --root "$R" --datasource nocloud --seed "$T/nc2" &&
	grep -qx "ssh_key: .*" "$T/out" &&
	expect_rc 0 "$FIRSTBOOT" query --root "$R" --datasource ec2 --metadata-url "http://127.0.0.1:$md_ec2none_port" &&
	grep -qx "ssh_keys: (none)" "$T/out"; then t_pass; else t_fail "$(cat "$T/out")"; fi

# --- ssh_keys_user ---

R=$T/r-user
new_root "$R"
printf 'admin:x:1000:1000::/home/admin:/bin/bash\n' >>"$R/etc/passwd"
printf 'admin:x:1000:\n' >>"$R/etc/group"
fb_conf "$R"
echo "ssh_keys_user: admin" >>"$R/etc/firstboot/firstboot.conf"
t_case "ssh_keys_user: the keys go to that user's home, owned by the user"
if expect_rc 0 fb_run "$R" --datasource nocloud --seed "$T/nc1" && ready "$R" &&
	has_keys "$R/home/admin/.ssh/authorized_keys" "$ED" "$SK" && perms "$R" home/admin 1000:1000 &&
	[ ! -e "$R/root/.ssh" ]; then t_pass; else t_fail "$(ls -laR "$R/home" 2>&1)"; fi

R=$T/r-nouser
new_root "$R"
fb_conf "$R"
echo "ssh_keys_user: ghost" >>"$R/etc/firstboot/firstboot.conf"
t_case "ssh_keys_user not in passwd: exit 1, no marker, says so"
if expect_rc 1 fb_run "$R" --datasource nocloud --seed "$T/nc1" && ! ready "$R" &&
	grep -q "SSH keys from nocloud: ssh_keys_user 'ghost' is not in .*/etc/passwd" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

R=$T/r-link
new_root "$R"
mkdir -p "$R/root" "$T/outside"
ln -s "$T/outside" "$R/root/.ssh"
t_case "a .ssh that is a symbolic link (out of the root) is refused: exit 1, nothing written there"
if expect_rc 1 fb_run "$R" --datasource nocloud --seed "$T/nc1" && ! ready "$R" &&
	grep -q "root/.ssh: is a symbolic link; refusing to follow it" "$T/err" &&
	[ -z "$(ls -A "$T/outside")" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

R=$T/r-link2
new_root "$R"
mkdir -p "$R/root/.ssh"
ln -s "$T/outside/ak" "$R/$AK"
t_case "an authorized_keys that is a symbolic link is refused"
if expect_rc 1 fb_run "$R" --datasource nocloud --seed "$T/nc1" && ! ready "$R" &&
	grep -q "authorized_keys: not a regular file (a symbolic link)" "$T/err" &&
	[ ! -e "$T/outside/ak" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

R=$T/r-homelink
new_root "$R"
printf 'admin:x:1000:1000::/home/admin:/bin/bash\n' >>"$R/etc/passwd"
printf 'admin:x:1000:\n' >>"$R/etc/group"
fb_conf "$R"
echo "ssh_keys_user: admin" >>"$R/etc/firstboot/firstboot.conf"
mkdir -p "$T/outside-home"
ln -s "$T/outside-home" "$R/home"
t_case "a /home that is a link out of the root: the missing home is made inside the root, nothing outside"
if expect_rc 0 fb_run "$R" --datasource nocloud --seed "$T/nc1" && ready "$R" &&
	[ -z "$(ls -A "$T/outside-home")" ] &&
	has_keys "$R$T/outside-home/admin/.ssh/authorized_keys" "$ED" "$SK"; then t_pass; else
	t_fail "outside: $(find "$T/outside-home" | head -n 5); $(cat "$T/err")"
fi

t_case "ssh_keys_user: /etc a link out of the root whose passwd has the user: not read there (exit 1, no marker, nothing written)"
R=$T/r-etclink
new_root "$R"
fb_conf "$R"
{
	cat "$R/etc/firstboot/firstboot.conf"
	echo "ssh_keys_user: intruder"
} >"$T/etclink.conf"
mkdir -p "$T/host-etc"
printf 'root:x:0:0:root:/root:/bin/bash\nintruder:x:4242:4242::/home/intruder:/bin/bash\n' >"$T/host-etc/passwd"
printf 'intruder:x:4242:\n' >"$T/host-etc/group"
rm -rf "${R:?}/etc"
ln -s "$T/host-etc" "$R/etc"
if expect_rc 1 "$FIRSTBOOT" run --root "$R" --config "$T/etclink.conf" --datasource nocloud --seed "$T/nc1" && ! ready "$R" &&
	grep -q "ssh_keys_user 'intruder'" "$T/err" && [ ! -e "$R/home/intruder" ] && [ ! -e /home/intruder ] &&
	[ "$(ls -A "$T/host-etc")" = "$(printf 'group\npasswd')" ]; then t_pass; else t_fail "$(cat "$T/err"; find "$R" -name authorized_keys)"; fi

t_case "ssh_keys_user: the root's passwd a FIFO: exit 1 at once (no hang), no marker"
R=$T/r-pwfifo
new_root "$R"
fb_conf "$R"
echo "ssh_keys_user: root" >>"$R/etc/firstboot/firstboot.conf"
rm -f "$R/etc/passwd"
mkfifo "$R/etc/passwd"
if expect_rc 1 timeout 20 "$FIRSTBOOT" run --root "$R" --datasource nocloud --seed "$T/nc1" && ! ready "$R" &&
	grep -q "passwd entry" "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

# --- malformed keys: fail closed ---

# bad NAME SOURCE-ARGS... -- MESSAGE: the run exits 1, no marker, no
# .ssh made, the module never ran, stderr has MESSAGE.
bad() {
	local name=$1 msg
	shift
	local args=()
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	msg=$2
	R=$T/r-bad-$name
	new_root "$R"
	expect_rc 1 fb_run "$R" "${args[@]}" && ! ready "$R" && [ ! -e "$R/root/.ssh" ] &&
		[ ! -e "$R/seen-by-module" ] && grep -qF -- "$msg" "$T/err"
}

printf '%s\n%s\n' "$ED" "$LIAR" >"$T/liar.keys"
for p in ec2 hetzner digitalocean; do
	start_peer "bad_$p" metadata.py --provider "$p" --instance-id 4711 --public-keys "$T/liar.keys" --user-data "$T/ud.tgz"
done
t_case "hetzner: a key whose data is another type's: exit 1, no marker, names hetzner and public-keys[1]"
if bad hz --datasource hetzner --metadata-url "http://127.0.0.1:$bad_hetzner_port" -- \
	"hetzner: http://127.0.0.1:$bad_hetzner_port/hetzner/v1/metadata:7:3: public-keys[1]: not an SSH public key: the key data is not a key of the type it names"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi
t_case "digitalocean: the same, naming public_keys[1]"
if bad dio --datasource digitalocean --metadata-url "http://127.0.0.1:$bad_digitalocean_port" -- \
	"public_keys[1]: not an SSH public key: the key data is not a key of the type it names" &&
	grep -qF "digitalocean: http://127.0.0.1:$bad_digitalocean_port/metadata/v1.json" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi
t_case "ec2: the same, naming the openssh-key URL"
if bad ec2 --datasource ec2 --metadata-url "http://127.0.0.1:$bad_ec2_port" -- \
	"ec2: http://127.0.0.1:$bad_ec2_port/latest/meta-data/public-keys/1/openssh-key: openssh-key: not an SSH public key"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

# seedbad NAME META-DATA-TEXT MESSAGE
seedbad() {
	mkdir -p "$T/s-$1"
	cp "$T/ud.tgz" "$T/s-$1/user-data"
	printf '%s' "$2" >"$T/s-$1/meta-data"
	bad "$1" --datasource nocloud --seed "$T/s-$1" -- "$3"
}
t_case "nocloud: options in front of a key are refused (no command= injection)"
if seedbad opts "instance-id: x
public-keys:
  - 'command=\"/bin/sh\" $ED'
" "nocloud: $T/s-opts/meta-data:3:5: public-keys[0]: not an SSH public key: options before the key type are not accepted"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi
t_case "nocloud: a list item with a newline (a second line smuggled in) is refused"
if seedbad nl "instance-id: x
public-keys:
  - \"$ED\\nssh-ed25519 AAAA evil\"
" "public-keys[0]: not an SSH public key: more than one line"; then t_pass; else t_fail "$(cat "$T/err")"; fi
t_case "nocloud: base64 that does not decode, an unknown type, a private key, a number"
if seedbad b64 "instance-id: x
public-keys: 'ssh-ed25519 AAAA!!!! x'
" "public-keys: not an SSH public key: the key data is not base64" &&
	seedbad dss "instance-id: x
public-keys: ['ssh-dss AAAAB3NzaC1kc3M= x']
" "public-keys[0]: not an SSH public key: not a key type accepted" &&
	seedbad priv "instance-id: x
public-keys: |
  -----BEGIN OPENSSH PRIVATE KEY-----
  b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ
" "public-keys, line 1: not an SSH public key: a private key; give the public key" &&
	seedbad num "instance-id: x
public-keys: [42]
" "public-keys[0]: expected an SSH public key, not an integer"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

mkdir -p "$T/cdbad/openstack/latest"
cp "$T/ud.tgz" "$T/cdbad/openstack/latest/user_data"
printf '{"uuid": "cd-bad", "public_keys": {"mykey": "%s", "broken": "ssh-rsa AAAAC3NzaC1lZDI1NTE5 x"}}' "$ED" >"$T/cdbad/openstack/latest/meta_data.json"
t_case "configdrive: a bad key in the map names public_keys.NAME"
if bad cd --datasource configdrive --seed "$T/cdbad" -- "public_keys.broken: not an SSH public key" &&
	grep -qF "configdrive: $T/cdbad/openstack/latest/meta_data.json" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi
