#!/bin/bash
# Datasources through a whole `firstboot run` (test-datasource.sh checks
# what `firstboot query` reads): NoCloud from a seed directory and from a
# cidata ISO made by xorriso, given as a file or found as a labelled
# device; auto-detection of Hetzner from DMI under the root against
# tests/e2e/peers/metadata.py; and sources that fail, leaving nothing
# written outside the state directory.
# SC2154: start_peer sets md_*_port.
# shellcheck disable=SC2154
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

st() { json_get "$1/var/lib/firstboot/status.json" "$2"; }
# provisioned ROOT IID SOURCE HOSTNAME: the run is ready for IID from
# SOURCE, the module saw IID, the hostname was written.
provisioned() {
	local r=$1 iid=$2 src=$3 host=$4 got
	got=$(st "$r" 'j["state"], j["instance_id"], j["source"], j["hostname"]')
	if [ "$got" != "('ready', '$iid', '$src', '$host')" ]; then
		echo "  # status: $got" >&2
		return 1
	fi
	grep -q "\"instance_id\":\"$iid\"" "$r/var/lib/firstboot/ready" &&
		grep -qx "FIRSTBOOT_INSTANCE_ID=$iid" "$r/env.txt" &&
		grep -qx "FIRSTBOOT_HOSTNAME=$host" "$r/env.txt" &&
		[ "$(cat "$r/etc/hostname")" = "$host" ] &&
		[ -d "$r/var/lib/firstboot/instances/$iid/done" ]
}
runs() { if [ -f "$1/runs.txt" ]; then wc -l <"$1/runs.txt"; else echo 0; fi; }

# A bundle without a hostname: the datasource's is used.
B=$T/b
mkdir -p "$B/files"
echo "from the seed" >"$B/files/motd"
cat >"$B/bundle.yaml" <<'EOY'
version: 1
name: ds-run
files:
  - {path: /etc/motd, source: files/motd, mode: "0644"}
modules:
  - id: record
EOY
mkmodule "$B" record '' <<'EOS'
#!/bin/sh
env | sort > "$FIRSTBOOT_ROOT/env.txt"
echo run >> "$FIRSTBOOT_ROOT/runs.txt"
EOS
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/ud.tgz"
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/ud.b64"

# seed DIR IID HOST USER-DATA: a NoCloud seed directory.
seed() {
	mkdir -p "$1"
	printf 'instance-id: %s\nlocal-hostname: %s\n' "$2" "$3" >"$1/meta-data"
	[ -n "$4" ] && cp "$4" "$1/user-data"
	return 0
}
iso() { xorriso -as mkisofs -quiet -V cidata -J -r -o "$2" "$1" 2>>"$T/xorriso.log"; }

# --- NoCloud ---

seed "$T/seed1" iid-nocloud-dir nc-dir-host "$T/ud.tgz"
R=$T/r1
new_root "$R"
t_case "nocloud: a seed directory (meta-data instance-id, user-data bundle)"
if expect_rc 0 fb_run "$R" --datasource nocloud --seed "$T/seed1" &&
	provisioned "$R" iid-nocloud-dir nocloud nc-dir-host && [ "$(cat "$R/etc/motd")" = "from the seed" ] &&
	grep -q "Run started: instance iid-nocloud-dir from nocloud ($T/seed1)" "$T/err"; then
	t_pass
else t_fail "see above: $(tail -n 3 "$T/err")"; fi

t_case "nocloud: the same seed again runs nothing"
if expect_rc 0 fb_run "$R" --datasource nocloud --seed "$T/seed1" && [ "$(runs "$R")" = 1 ] &&
	[ "$(st "$R" 'j["boot"]')" = 2 ]; then t_pass; else t_fail "runs: $(runs "$R")"; fi

seed "$T/seed2" iid-nocloud-iso nc-iso-host "$T/ud.b64"
iso "$T/seed2" "$T/seed2.iso"
R=$T/r2
new_root "$R"
t_case "nocloud: a cidata ISO made by xorriso, given as a file (text-form user-data)"
if [ "$(file -b "$T/seed2.iso" 2>/dev/null | cut -c1-9)" != "ISO 9660 " ] && [ "$(head -c 32774 "$T/seed2.iso" | tail -c 5)" != CD001 ]; then
	t_fail "xorriso made no ISO9660 image: $(cat "$T/xorriso.log")"
elif expect_rc 0 fb_run "$R" --datasource nocloud --seed "$T/seed2.iso" &&
	provisioned "$R" iid-nocloud-iso nocloud nc-iso-host &&
	grep -q "from nocloud ($T/seed2.iso)" "$T/err"; then
	t_pass
else t_fail "see above: $(tail -n 3 "$T/err")"; fi

t_case "nocloud: auto with --seed ISO reads it as nocloud"
R=$T/r3
new_root "$R"
if expect_rc 0 fb_run "$R" --seed "$T/seed2.iso" && provisioned "$R" iid-nocloud-iso nocloud nc-iso-host; then
	t_pass
else t_fail "see above"; fi

t_case "nocloud: a new ISO with a new instance-id provisions the root again"
seed "$T/seed3" iid-nocloud-iso-2 nc-iso-host-2 "$T/ud.tgz"
iso "$T/seed3" "$T/seed3.iso"
if expect_rc 0 fb_run "$R" --seed "$T/seed3.iso" && provisioned "$R" iid-nocloud-iso-2 nocloud nc-iso-host-2 &&
	[ "$(runs "$R")" = 2 ]; then t_pass; else t_fail "runs: $(runs "$R")"; fi

t_case "nocloud: auto finds a cidata ISO as a labelled device under the root"
R=$T/r4
new_root "$R"
mkdir -p "$R/dev/disk/by-label"
cp "$T/seed2.iso" "$R/dev/sr0"
ln -s ../../sr0 "$R/dev/disk/by-label/cidata"
if expect_rc 0 fb_run "$R" && provisioned "$R" iid-nocloud-iso nocloud nc-iso-host &&
	grep -q "from nocloud ($R/dev/disk/by-label/cidata)" "$T/err"; then
	t_pass
else t_fail "see above: $(tail -n 3 "$T/err")"; fi

# --- Hetzner, detected from DMI ---

start_peer md metadata.py --provider hetzner --instance-id 4711 --hostname hz-web-1 \
	--user-data "$T/ud.b64" --log "$T/md.jsonl"
R=$T/r5
new_root "$R"
mkdir -p "$R/sys/class/dmi/id"
echo Hetzner >"$R/sys/class/dmi/id/sys_vendor"
t_case "auto: DMI sys_vendor Hetzner under the root, --metadata-url on loopback"
if expect_rc 0 fb_run "$R" --metadata-url "http://127.0.0.1:$md_port" &&
	provisioned "$R" 4711 hetzner hz-web-1 &&
	python3 - "$T/md.jsonl" <<'EOP'; then t_pass; else t_fail "see above"; fi
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
assert [(e["method"], e["path"], e["status"]) for e in log] == [
    ("GET", "/hetzner/v1/metadata", 200), ("GET", "/hetzner/v1/userdata", 200)], log
EOP

t_case "auto: metadata_url from firstboot.conf works the same"
R=$T/r6
new_root "$R"
mkdir -p "$R/sys/class/dmi/id"
echo Hetzner >"$R/sys/class/dmi/id/sys_vendor"
fb_conf "$R"
echo "metadata_url: http://127.0.0.1:$md_port/" >>"$R/etc/firstboot/firstboot.conf"
if expect_rc 0 fb_run "$R" && provisioned "$R" 4711 hetzner hz-web-1; then t_pass; else t_fail "see above"; fi

# --- sources that fail: exit 1, status failed, nothing written ---

# failed_clean ROOT TEXT: the run failed with TEXT in status.json's error,
# no marker, nothing outside the state directory.
failed_clean() {
	local err
	err=$(st "$1" 'j["state"] + ": " + str(j["error"])')
	if [[ $err != "failed: "*"$2"* ]]; then
		echo "  # status: $err" >&2
		return 1
	fi
	[ ! -e "$1/var/lib/firstboot/ready" ] && [ ! -e "$1/etc/hostname" ] && [ ! -e "$1/runs.txt" ] &&
		[ "$(tree_snapshot "$1")" = "$(cat "$1.before")" ]
}

R=$T/r7
new_root "$R"
fb_conf "$R"
mkdir -p "$T/seed-noid"
printf 'local-hostname: h\n' >"$T/seed-noid/meta-data"
cp "$T/ud.tgz" "$T/seed-noid/user-data"
tree_snapshot "$R" >"$R.before"
t_case "nocloud: meta-data without instance-id fails the run, naming the file"
if expect_rc 1 fb_run "$R" --datasource nocloud --seed "$T/seed-noid" &&
	failed_clean "$R" "nocloud: $T/seed-noid/meta-data" && grep -q "missing 'instance-id'" "$T/err"; then
	t_pass
else t_fail "see above"; fi

R=$T/r8
new_root "$R"
fb_conf "$R"
seed "$T/seed-noud" iid-no-user-data h ""
tree_snapshot "$R" >"$R.before"
t_case "nocloud: a seed without user-data fails the run"
if expect_rc 1 fb_run "$R" --datasource nocloud --seed "$T/seed-noud" &&
	failed_clean "$R" "nocloud returned no user-data" &&
	[ "$(st "$R" 'j["instance_id"]')" = iid-no-user-data ]; then
	t_pass
else t_fail "see above"; fi

R=$T/r9
new_root "$R"
fb_conf "$R"
mkdir -p "$R/sys/class/dmi/id"
echo Hetzner >"$R/sys/class/dmi/id/sys_vendor"
dead=$(free_port)
tree_snapshot "$R" >"$R.before"
t_case "auto: Hetzner's metadata service down fails the run, bounded, naming the URL"
if expect_rc 1 timeout 60 "$FIRSTBOOT" run --root "$R" --metadata-url "http://127.0.0.1:$dead" &&
	failed_clean "$R" "hetzner: GET http://127.0.0.1:$dead/hetzner/v1/metadata: Connection refused"; then
	t_pass
else t_fail "see above"; fi

mkdir -p "$T/seed-cc"
printf 'instance-id: iid-cloud-config\n' >"$T/seed-cc/meta-data"
printf '#cloud-config\npackages: [nginx]\n' >"$T/seed-cc/user-data"
iso "$T/seed-cc" "$T/seed-cc.iso"
R=$T/r10
new_root "$R"
fb_conf "$R"
tree_snapshot "$R" >"$R.before"
t_case "nocloud: user-data that is no bundle is named inside the ISO"
if expect_rc 1 fb_run "$R" --seed "$T/seed-cc.iso" &&
	failed_clean "$R" "$T/seed-cc.iso:user-data: not firstboot user-data: it is cloud-config"; then
	t_pass
else t_fail "see above"; fi

start_peer md_cc metadata.py --provider hetzner --instance-id 4712 --user-data "$T/seed-cc/user-data"
R=$T/r11
new_root "$R"
fb_conf "$R"
tree_snapshot "$R" >"$R.before"
t_case "hetzner: user-data that is no bundle is named by its URL"
if expect_rc 1 fb_run "$R" --datasource hetzner --metadata-url "http://127.0.0.1:$md_cc_port" &&
	failed_clean "$R" "http://127.0.0.1:$md_cc_port/hetzner/v1/userdata: not firstboot user-data"; then
	t_pass
else t_fail "see above"; fi
