#!/bin/bash
# Datasources end to end through `firstboot query`: the metadata services
# (EC2 IMDSv2, Hetzner, DigitalOcean) against tests/e2e/peers/metadata.py on
# loopback, NoCloud and ConfigDrive seeds as directories, ISO images and
# labelled devices under a temporary root, auto-detection from DMI, retries,
# unreachable services and bad input. The user-data limit is tested with
# `query --max-user-data BYTES` (the same check as max_user_data in
# firstboot.conf, default 16 MiB) so no test file has to be large.
# SC2154: start_peer sets md_*_port. SC2119: t_pass takes no arguments here.
# shellcheck disable=SC2154,SC2119
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

# q ROOT ARGS...: firstboot query on ROOT, bounded.
q() {
	local root=$1
	shift
	timeout 60 "$FIRSTBOOT" query --root "$root" "$@"
}
# jq_is EXPR WANT: the JSON in $T/out has EXPR == WANT (as printed by Python).
jq_is() {
	local got
	got=$(json_get "$T/out" "$1")
	if [ "$got" != "$2" ]; then
		echo "  # $1 is '$got', expected '$2'" >&2
		return 1
	fi
}
# err_has TEXT: stderr of the last expect_rc contains TEXT.
err_has() {
	if ! grep -qF -- "$1" "$T/err"; then
		echo "  # stderr lacks '$1': $(head -c 600 "$T/err")" >&2
		return 1
	fi
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
# A fast, small HTTP configuration for the query root.
fast_root() {
	new_root "$1"
	mkdir -p "$1/etc/firstboot"
	printf 'http_timeout_ms: %s\nhttp_attempts: %s\n' "${2:-3000}" "${3:-3}" >"$1/etc/firstboot/firstboot.conf"
}

R=$T/root
fast_root "$R"
head -c 3000 /dev/urandom | base64 >"$T/ud"
UD_SHA=$(sha "$T/ud")
UD_SIZE=$(stat -c %s "$T/ud")

# --- metadata services ---

declare -A IID=([ec2]=i-0abc123def4567890 [hetzner]=4711 [digitalocean]=123456789)
for p in ec2 hetzner digitalocean; do
	start_peer "md_$p" metadata.py --provider "$p" --instance-id "${IID[$p]}" --hostname "$p-host" \
		--user-data "$T/ud" --log "$T/$p.jsonl"
	port_var="md_${p}_port"
	port=${!port_var}
	t_case "$p: query returns the instance id, hostname and user-data"
	if expect_rc 0 q "$R" --datasource "$p" --metadata-url "http://127.0.0.1:$port" --json &&
		jq_is 'j["source"]' "$p" && jq_is 'j["instance_id"]' "${IID[$p]}" &&
		jq_is 'j["hostname"]' "$p-host" && jq_is 'j["user_data_sha256"]' "$UD_SHA" &&
		jq_is 'j["user_data_size"]' "$UD_SIZE" && jq_is 'j["origin"]' "http://127.0.0.1:$port"; then
		t_pass
	else t_fail "wrong answer: $(cat "$T/out")"; fi
done

t_case "ec2: a PUT for the token first, then every GET carries it"
if python3 - "$T/ec2.jsonl" <<'EOP'; then t_pass; else t_fail "$(cat "$T/ec2.jsonl")"; fi
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
first = log[0]
assert first["method"] == "PUT" and first["path"] == "/latest/api/token", first
assert first["headers"].get("X-aws-ec2-metadata-token-ttl-seconds") == "21600", first
gets = log[1:]
assert [e["path"] for e in gets] == ["/latest/meta-data/instance-id",
    "/latest/meta-data/local-hostname", "/latest/meta-data/public-keys/",
    "/latest/user-data"], gets
tokens = {e["headers"].get("X-aws-ec2-metadata-token") for e in gets}
assert len(tokens) == 1 and None not in tokens, tokens
# No SSH keys on this instance: public-keys/ is 404, as IMDS answers.
assert all(e["status"] == (404 if "public-keys" in e["path"] else 200) for e in log), log
EOP

t_case "ec2: the peer refuses a GET without a token, or with a made-up one"
c1=$(curl -s --noproxy '*' -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$md_ec2_port/latest/meta-data/instance-id")
c2=$(curl -s --noproxy '*' -m 5 -o /dev/null -w '%{http_code}' -H 'X-aws-ec2-metadata-token: forged' \
	"http://127.0.0.1:$md_ec2_port/latest/meta-data/instance-id")
c3=$(curl -s --noproxy '*' -m 5 -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:$md_ec2_port/latest/api/token")
if [ "$c1" = 401 ] && [ "$c2" = 401 ] && [ "$c3" = 400 ]; then t_pass; else t_fail "got $c1 $c2 $c3"; fi

t_case "plain output is key: value lines"
if expect_rc 0 q "$R" --datasource hetzner --metadata-url "http://127.0.0.1:$md_hetzner_port/" &&
	grep -qx 'source: hetzner' "$T/out" && grep -qx 'instance_id: 4711' "$T/out" &&
	grep -qx 'hostname: hetzner-host' "$T/out" && grep -qx "user_data_size: $UD_SIZE" "$T/out" &&
	grep -qx "user_data_sha256: $UD_SHA" "$T/out" &&
	grep -qx "origin: http://127.0.0.1:$md_hetzner_port" "$T/out"; then t_pass; else t_fail "$(cat "$T/out")"; fi

t_case "proxies from the environment are ignored"
if http_proxy=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 all_proxy=http://127.0.0.1:9 \
	expect_rc 0 q "$R" --datasource digitalocean --metadata-url "http://127.0.0.1:$md_digitalocean_port" --json &&
	jq_is 'j["instance_id"]' 123456789; then t_pass; else t_fail "proxy used?"; fi

t_case "--instance-id overrides what the service says"
if expect_rc 0 q "$R" --datasource ec2 --metadata-url "http://127.0.0.1:$md_ec2_port" --instance-id i-override --json &&
	jq_is 'j["instance_id"]' i-override && jq_is 'j["hostname"]' ec2-host; then t_pass; else t_fail "$(cat "$T/out")"; fi

start_peer md_none metadata.py --provider ec2 --hostname "" --log "$T/none.jsonl"
t_case "ec2: no user-data (404) and no hostname are not errors"
if expect_rc 0 q "$R" --datasource ec2 --metadata-url "http://127.0.0.1:$md_none_port" --json &&
	jq_is 'j["user_data_size"]' None && jq_is 'j["user_data_sha256"]' None && jq_is 'j["hostname"]' None; then
	t_pass
else t_fail "$(cat "$T/out")"; fi

start_peer md_hnone metadata.py --provider hetzner
t_case "hetzner: an empty userdata answer is no user-data"
if expect_rc 0 q "$R" --datasource hetzner --metadata-url "http://127.0.0.1:$md_hnone_port" --json &&
	jq_is 'j["user_data_size"]' None; then t_pass; else t_fail "$(cat "$T/out")"; fi

# --- retries and failures ---

start_peer md_flaky metadata.py --provider ec2 --fail-first 2 --user-data "$T/ud" --log "$T/flaky.jsonl"
t_case "ec2: two 500s are retried and the query succeeds"
if expect_rc 0 q "$R" --datasource ec2 --metadata-url "http://127.0.0.1:$md_flaky_port" --json &&
	jq_is 'j["user_data_sha256"]' "$UD_SHA" &&
	python3 - "$T/flaky.jsonl" <<'EOP'; then t_pass; else t_fail "$(cat "$T/flaky.jsonl")"; fi
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
puts = [e for e in log if e["method"] == "PUT"]
assert [e["status"] for e in puts] == [500, 500, 200], puts
assert all(e["status"] == (404 if "public-keys" in e["path"] else 200) for e in log[3:]), log
EOP

start_peer md_flaky2 metadata.py --provider hetzner --fail-first 5 --log "$T/flaky2.jsonl"
t_case "5xx to the last attempt: exit 1, the status and the attempts are named"
if expect_rc 1 q "$R" --datasource hetzner --metadata-url "http://127.0.0.1:$md_flaky2_port" &&
	err_has "hetzner: GET http://127.0.0.1:$md_flaky2_port/hetzner/v1/metadata: HTTP 500 (3 attempts)" &&
	[ "$(wc -l <"$T/flaky2.jsonl")" -eq 3 ]; then t_pass; else t_fail "see above"; fi

t_case "a 404 is not retried and names the request"
: >"$T/digitalocean.jsonl"
if expect_rc 1 q "$R" --datasource hetzner --metadata-url "http://127.0.0.1:$md_digitalocean_port" &&
	err_has "hetzner: GET http://127.0.0.1:$md_digitalocean_port/hetzner/v1/metadata: HTTP 404" &&
	[ "$(wc -l <"$T/digitalocean.jsonl")" -eq 1 ]; then t_pass; else t_fail "see above"; fi

t_case "ec2 refuses to go on without a token (a 4xx to the PUT)"
if expect_rc 1 q "$R" --datasource ec2 --metadata-url "http://127.0.0.1:$md_hetzner_port" &&
	err_has "ec2: PUT http://127.0.0.1:$md_hetzner_port/latest/api/token: HTTP 405"; then t_pass; else t_fail "see above"; fi

t_case "an unreachable service fails with exit 1, clearly, within the bounded time"
dead=$(free_port)
start=$(date +%s%N)
if expect_rc 1 q "$R" --datasource ec2 --metadata-url "http://127.0.0.1:$dead" &&
	err_has "ec2: PUT http://127.0.0.1:$dead/latest/api/token: Connection refused (3 attempts)" &&
	[ $((($(date +%s%N) - start) / 1000000)) -lt 10000 ]; then t_pass; else t_fail "see above"; fi

t_case "a URL that is not http(s) is refused"
if expect_rc 1 q "$R" --datasource hetzner --metadata-url "file:///etc" &&
	err_has "must start with http:// or https://"; then t_pass; else t_fail "see above"; fi

printf 'instance-id: ../../etc\nhostname: h\n' >"$T/evil-meta"
start_peer md_evil metadata.py --provider hetzner --metadata-body "$T/evil-meta"
t_case "an instance id that is not a safe file name is refused"
if expect_rc 1 q "$R" --datasource hetzner --metadata-url "http://127.0.0.1:$md_evil_port" &&
	err_has "hetzner: instance id '../../etc'" && err_has "is not valid"; then t_pass; else t_fail "see above"; fi

printf 'instance-id: 1\nhostname: [unclosed\n' >"$T/bad-meta"
start_peer md_bad metadata.py --provider hetzner --metadata-body "$T/bad-meta"
t_case "bad metadata YAML names the URL, line and column"
if expect_rc 1 q "$R" --datasource hetzner --metadata-url "http://127.0.0.1:$md_bad_port" &&
	grep -qE "hetzner: http://127.0.0.1:$md_bad_port/hetzner/v1/metadata:[0-9]+:[0-9]+: " "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

printf '{"hostname": "x"}' >"$T/do-meta"
start_peer md_do_bad metadata.py --provider digitalocean --metadata-body "$T/do-meta"
t_case "digitalocean: metadata without droplet_id is an error naming the document"
if expect_rc 1 q "$R" --datasource digitalocean --metadata-url "http://127.0.0.1:$md_do_bad_port" &&
	err_has "/metadata/v1.json:" && err_has "missing 'droplet_id'"; then t_pass; else t_fail "see above"; fi

t_case "http user-data over the limit: exit 1, sizes named"
if expect_rc 1 q "$R" --datasource hetzner --metadata-url "http://127.0.0.1:$md_hetzner_port" --max-user-data 1000 &&
	err_has "hetzner: user-data from http://127.0.0.1:$md_hetzner_port/hetzner/v1/userdata is $UD_SIZE bytes, over the limit of 1000"; then
	t_pass
else t_fail "see above"; fi

# --- local sources ---

S=$T/seed
mkdir -p "$S"
printf 'instance-id: iid-seed-1\nlocal-hostname: seed-host\n' >"$S/meta-data"
cp "$T/ud" "$S/user-data"
printf 'version: 2\nethernets: {}\n' >"$S/network-config"

t_case "nocloud: a seed directory"
if expect_rc 0 q "$R" --datasource nocloud --seed "$S" --json &&
	jq_is 'j["source"]' nocloud && jq_is 'j["origin"]' "$S" && jq_is 'j["instance_id"]' iid-seed-1 &&
	jq_is 'j["hostname"]' seed-host && jq_is 'j["user_data_sha256"]' "$UD_SHA"; then t_pass; else t_fail "$(cat "$T/out")"; fi

xorriso -as mkisofs -quiet -V cidata -J -r -o "$T/seed.iso" "$S" 2>"$T/xorriso.log"
t_case "nocloud: an ISO image made by xorriso"
if expect_rc 0 q "$R" --datasource nocloud --seed "$T/seed.iso" --json &&
	jq_is 'j["origin"]' "$T/seed.iso" && jq_is 'j["instance_id"]' iid-seed-1 &&
	jq_is 'j["hostname"]' seed-host && jq_is 'j["user_data_sha256"]' "$UD_SHA"; then t_pass; else t_fail "$(cat "$T/out")"; fi

t_case "nocloud ISO without a usable libarchive: exit 1 naming the library and what it lacks"
mkdir -p "$T/fakelib"
if ! printf 'int firstboot_test_nothing;\n' | cc -shared -fPIC -x c - -o "$T/fakelib/libarchive.so.13"; then
	t_fail "cannot build the stand-in library"
elif LD_LIBRARY_PATH=$T/fakelib expect_rc 1 q "$R" --datasource nocloud --seed "$T/seed.iso" &&
	grep -q "cannot read $T/seed.iso:meta-data: libarchive.so.13 lacks archive_" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "auto: an ISO given with --seed is read as nocloud"
if expect_rc 0 q "$R" --seed "$T/seed.iso" --json && jq_is 'j["source"]' nocloud; then t_pass; else t_fail "$(cat "$T/out")"; fi

R2=$T/root2
fast_root "$R2"
mkdir -p "$R2/var/lib/cloud/seed/nocloud"
cp "$S/meta-data" "$S/user-data" "$R2/var/lib/cloud/seed/nocloud/"
t_case "auto: nocloud under <root>/var/lib/cloud/seed/nocloud"
if expect_rc 0 q "$R2" --json && jq_is 'j["source"]' nocloud &&
	jq_is 'j["origin"]' "$R2/var/lib/cloud/seed/nocloud" && jq_is 'j["instance_id"]' iid-seed-1; then
	t_pass
else t_fail "$(cat "$T/out") $(cat "$T/err")"; fi

R3=$T/root3
fast_root "$R3"
mkdir -p "$R3/dev/disk/by-label"
cp "$T/seed.iso" "$R3/dev/sr0"
ln -s ../../sr0 "$R3/dev/disk/by-label/CIDATA"
t_case "auto: a device labelled CIDATA under /dev/disk/by-label"
if expect_rc 0 q "$R3" --json && jq_is 'j["source"]' nocloud &&
	jq_is 'j["origin"]' "$R3/dev/disk/by-label/CIDATA" && jq_is 'j["user_data_sha256"]' "$UD_SHA"; then
	t_pass
else t_fail "$(cat "$T/out") $(cat "$T/err")"; fi

R4=$T/root4
fast_root "$R4"
mkdir -p "$R4/sys/class/block/loop0" "$R4/sys/class/block/vda" "$R4/sys/class/block/vdb" "$R4/dev"
head -c 65536 /dev/zero >"$R4/dev/vda"
cp "$T/seed.iso" "$R4/dev/vdb"
t_case "nocloud: a cidata ISO found by scanning /sys/class/block (others skipped)"
if expect_rc 0 q "$R4" --datasource nocloud --json && jq_is 'j["origin"]' "$R4/dev/vdb" &&
	jq_is 'j["instance_id"]' iid-seed-1; then t_pass; else t_fail "$(cat "$T/out") $(cat "$T/err")"; fi

C=$T/cd
mkdir -p "$C/openstack/latest"
printf '{"uuid": "83679162-1378-4288-a2d4-70e13ec132aa", "hostname": "cd-host", "name": "cd"}\n' \
	>"$C/openstack/latest/meta_data.json"
cp "$T/ud" "$C/openstack/latest/user_data"
t_case "configdrive: a seed directory"
if expect_rc 0 q "$R" --datasource configdrive --seed "$C" --json && jq_is 'j["source"]' configdrive &&
	jq_is 'j["instance_id"]' 83679162-1378-4288-a2d4-70e13ec132aa && jq_is 'j["hostname"]' cd-host &&
	jq_is 'j["user_data_sha256"]' "$UD_SHA"; then t_pass; else t_fail "$(cat "$T/out") $(cat "$T/err")"; fi

t_case "auto: a seed directory with openstack/latest/meta_data.json is configdrive"
if expect_rc 0 q "$R" --seed "$C" --json && jq_is 'j["source"]' configdrive; then t_pass; else t_fail "$(cat "$T/out")"; fi

xorriso -as mkisofs -quiet -V config-2 -J -r -o "$T/cd.iso" "$C" 2>>"$T/xorriso.log"
R5=$T/root5
fast_root "$R5"
mkdir -p "$R5/sys/class/dmi/id" "$R5/dev/disk/by-label"
echo "OpenStack Nova" >"$R5/sys/class/dmi/id/product_name"
cp "$T/cd.iso" "$R5/dev/disk/by-label/config-2"
t_case "auto: DMI product_name OpenStack Nova uses a config-2 ISO"
if expect_rc 0 q "$R5" --json && jq_is 'j["source"]' configdrive &&
	jq_is 'j["instance_id"]' 83679162-1378-4288-a2d4-70e13ec132aa &&
	jq_is 'j["user_data_sha256"]' "$UD_SHA"; then t_pass; else t_fail "$(cat "$T/out") $(cat "$T/err")"; fi

R6=$T/root6
fast_root "$R6"
mkdir -p "$R6/sys/class/dmi/id"
echo Hetzner >"$R6/sys/class/dmi/id/sys_vendor"
# A NoCloud seed too: DMI comes first.
mkdir -p "$R6/var/lib/cloud/seed/nocloud" && cp "$S/meta-data" "$R6/var/lib/cloud/seed/nocloud/"
t_case "auto: DMI sys_vendor Hetzner uses hetzner at --metadata-url"
if expect_rc 0 q "$R6" --metadata-url "http://127.0.0.1:$md_hetzner_port" --json &&
	jq_is 'j["source"]' hetzner && jq_is 'j["instance_id"]' 4711; then t_pass; else t_fail "$(cat "$T/out") $(cat "$T/err")"; fi

R7=$T/root7
fast_root "$R7"
mkdir -p "$R7/sys/class/dmi/id"
echo QEMU >"$R7/sys/class/dmi/id/sys_vendor"
echo EC2E1916-9099-7CAF-FD21-012345678901 >"$R7/sys/class/dmi/id/product_uuid"
t_case "auto: a product_uuid beginning with EC2 uses ec2"
if expect_rc 0 q "$R7" --metadata-url "http://127.0.0.1:$md_ec2_port" --json &&
	jq_is 'j["source"]' ec2 && jq_is 'j["instance_id"]' "${IID[ec2]}"; then t_pass; else t_fail "$(cat "$T/out") $(cat "$T/err")"; fi

R8=$T/root8
fast_root "$R8"
mkdir -p "$R8/sys/class/dmi/id"
echo QEMU >"$R8/sys/class/dmi/id/sys_vendor"
t_case "auto: nothing found lists what was tried"
if expect_rc 1 q "$R8" && err_has "auto: no datasource found" && err_has "sys_vendor 'QEMU'" &&
	err_has "$R8/var/lib/cloud/seed/nocloud-net" && err_has "a block device labelled cidata" &&
	err_has "a block device labelled config-2"; then t_pass; else t_fail "see above"; fi

t_case "nocloud without any seed says what it tried"
if expect_rc 1 q "$R8" --datasource nocloud && err_has "nocloud: no seed found (tried $R8/var/lib/cloud/seed/nocloud"; then
	t_pass
else t_fail "see above"; fi

# --- bad local input ---

B=$T/bad
mkdir -p "$B"
printf '# no id here\nlocal-hostname: h1\n' >"$B/meta-data"
t_case "nocloud: meta-data without instance-id: exit 1, the file is named"
if expect_rc 1 q "$R" --datasource nocloud --seed "$B" &&
	err_has "nocloud: $B/meta-data:" && err_has "missing 'instance-id'"; then t_pass; else t_fail "see above"; fi

printf 'instance-id: i-1\nlocal-hostname: [oops\n' >"$B/meta-data"
t_case "nocloud: broken meta-data YAML is reported with line and column"
if expect_rc 1 q "$R" --datasource nocloud --seed "$B" && grep -qE "nocloud: $B/meta-data:[0-9]+:[0-9]+: " "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

rm -f "$B/meta-data"
t_case "nocloud: a seed without meta-data is an error"
if expect_rc 1 q "$R" --datasource nocloud --seed "$B" && err_has "nocloud: $B/meta-data: not found"; then
	t_pass
else t_fail "see above"; fi

R9=$T/root9
fast_root "$R9"
mkdir -p "$R9/var/lib/cloud/seed/nocloud"
printf 'local-hostname: h\n' >"$R9/var/lib/cloud/seed/nocloud/meta-data"
t_case "auto: a broken seed is an error, not a reason to look elsewhere"
if expect_rc 1 q "$R9" && err_has "nocloud: $R9/var/lib/cloud/seed/nocloud/meta-data:"; then
	t_pass
else t_fail "see above"; fi

t_case "nocloud: user-data over the limit: exit 1, sizes named"
if expect_rc 1 q "$R" --datasource nocloud --seed "$S" --max-user-data 1000 &&
	err_has "nocloud: user-data from $S/user-data is $UD_SIZE bytes, over the limit of 1000"; then
	t_pass
else t_fail "see above"; fi

t_case "nocloud ISO: user-data over the limit: exit 1"
if expect_rc 1 q "$R" --datasource nocloud --seed "$T/seed.iso" --max-user-data 1000 &&
	err_has "nocloud: user-data from $T/seed.iso:user-data is" && err_has "over the limit"; then
	t_pass
else t_fail "see above"; fi

t_case "--seed that does not exist"
if expect_rc 1 q "$R" --datasource nocloud --seed "$T/nope" && err_has "nocloud: --seed $T/nope: No such file"; then
	t_pass
else t_fail "see above"; fi

t_case "--seed that is neither a directory nor an ISO image"
printf 'not an image\n' >"$T/not.iso"
if expect_rc 1 q "$R" --datasource nocloud --seed "$T/not.iso" &&
	err_has "nocloud: $T/not.iso is neither a directory nor an ISO9660 image"; then
	t_pass
else t_fail "see above"; fi

# --- file ---

t_case "file: instance id from a valid machine-id"
echo 0123456789abcdef0123456789abcdef >"$R/etc/machine-id"
if expect_rc 0 q "$R" --datasource file --user-data "$T/ud" --json && jq_is 'j["source"]' file &&
	jq_is 'j["instance_id"]' 0123456789abcdef0123456789abcdef && jq_is 'j["origin"]' "$T/ud" &&
	jq_is 'j["user_data_sha256"]' "$UD_SHA"; then t_pass; else t_fail "$(cat "$T/out")"; fi

t_case "file: without a machine-id, file- and the user-data's hash"
echo uninitialized >"$R/etc/machine-id"
if expect_rc 0 q "$R" --user-data "$T/ud" --json && jq_is 'j["source"]' file &&
	jq_is 'j["instance_id"]' "file-${UD_SHA:0:16}"; then t_pass; else t_fail "$(cat "$T/out")"; fi
rm -f "$R/etc/machine-id"

t_case "file: user-data over the limit"
if expect_rc 1 q "$R" --datasource file --user-data "$T/ud" --max-user-data 1000 &&
	err_has "file: user-data from $T/ud is $UD_SIZE bytes, over the limit of 1000"; then t_pass; else t_fail "see above"; fi

t_case "file: no --user-data"
if expect_rc 1 q "$R" --datasource file && err_has "file: no user-data file given"; then t_pass; else t_fail "see above"; fi

t_case "the limit from firstboot.conf applies too"
fast_root "$T/root10"
printf 'max_user_data: 1024\n' >>"$T/root10/etc/firstboot/firstboot.conf"
if expect_rc 1 q "$T/root10" --datasource file --user-data "$T/ud" && err_has "over the limit of 1024"; then
	t_pass
else t_fail "see above"; fi

# --- usage ---

t_check "--help exits 0" expect_rc 0 "$FIRSTBOOT" query --help
t_check "an unknown datasource is a usage error" expect_rc 2 "$FIRSTBOOT" query --root "$R" --datasource floppy
t_check "an unknown option is a usage error" expect_rc 2 "$FIRSTBOOT" query --root "$R" --bogus
t_check "a stray argument is a usage error" expect_rc 2 "$FIRSTBOOT" query --root "$R" extra
t_check "a bad --max-user-data is a usage error" expect_rc 2 "$FIRSTBOOT" query --root "$R" --max-user-data 12k
