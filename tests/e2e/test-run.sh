#!/bin/bash
# firstboot run end to end on a temporary root: files, modules in order,
# inputs, state, readiness, reruns and new instances.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

R=$T/root B=$T/b
new_root "$R"
mkdir -p "$B/files"
printf 'DB_PASSWORD=s3cret\n' >"$B/files/env"
cat >"$B/bundle.yaml" <<'EOY'
version: 1
name: test-stack
hostname: web-1
files:
  - {path: /opt/stack/.env, source: files/env, mode: "0600"}
modules:
  - id: second
  - id: first
    inputs: {db_name: colony, db_port: 5433, debug: true}
EOY
mkmodule "$B" first 'inputs:
  - {name: db_name, type: string, required: true}
  - {name: db_port, type: port, default: 5432}
  - {name: debug, type: boolean, default: false}
  - {name: label, type: string, default: "a b $c"}' <<'EOS'
#!/bin/bash
set -euo pipefail
echo "first ran"
env | sort > "$FIRSTBOOT_ROOT/first.env"
echo x >> "$FIRSTBOOT_ROOT/first.count"
EOS
mkmodule "$B" second 'after: [first]' <<'EOS'
#!/bin/bash
set -euo pipefail
test -f "$FIRSTBOOT_ROOT/first.count"
echo x >> "$FIRSTBOOT_ROOT/second.count"
EOS
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/ud.tar.gz"

t_case "run provisions and is ready"
if expect_rc 0 fb_run "$R" --user-data "$T/ud.tar.gz" --instance-id i-1 &&
	[ -f "$R/var/lib/firstboot/ready" ] &&
	[ "$(json_get "$R/var/lib/firstboot/status.json" 'j["state"]')" = ready ]; then t_pass; else t_fail "not ready"; fi

t_case "files are written with their mode"
if [ "$(cat "$R/opt/stack/.env")" = "DB_PASSWORD=s3cret" ] && [ "$(stat -c %a "$R/opt/stack/.env")" = 600 ] &&
	[ "$(cat "$R/etc/hostname")" = web-1 ]; then t_pass; else t_fail "file or hostname wrong"; fi

t_case "modules run in after: order"
if [ "$(json_get "$R/var/lib/firstboot/status.json" '",".join(m["id"] for m in j["modules"])')" = "first,second" ]; then t_pass; else t_fail "order"; fi

t_case "the module environment follows the contract"
e=$R/first.env
if grep -qx 'DB_NAME=colony' "$e" && grep -qx 'DB_PORT=5433' "$e" && grep -qx 'DEBUG=true' "$e" &&
	grep -qx 'LABEL=a b $c' "$e" && grep -qx 'DEBIAN_FRONTEND=noninteractive' "$e" &&
	grep -qx 'PROVISIONING_JOB=true' "$e" && grep -qx 'FIRSTBOOT_INSTANCE_ID=i-1' "$e" &&
	grep -qx "FIRSTBOOT_ROOT=$R" "$e"; then t_pass; else t_fail "env: $(cat "$e")"; fi

t_case "state and logs are private"
if [ "$(stat -c %a "$R/var/lib/firstboot")" = 700 ] && [ "$(stat -c %a "$R/var/log/firstboot/first.log")" = 600 ] &&
	grep -q 'first ran' "$R/var/log/firstboot/first.log"; then t_pass; else t_fail "modes"; fi

t_case "a rerun on the same instance runs nothing again"
if expect_rc 0 fb_run "$R" --user-data "$T/ud.tar.gz" --instance-id i-1 &&
	[ "$(wc -l <"$R/first.count")" = 1 ] && [ "$(wc -l <"$R/second.count")" = 1 ] &&
	[ "$(json_get "$R/var/lib/firstboot/status.json" 'j["boot"]')" = 2 ]; then t_pass; else t_fail "ran again"; fi

t_case "a new instance id provisions again"
if expect_rc 0 fb_run "$R" --user-data "$T/ud.tar.gz" --instance-id i-2 &&
	[ "$(wc -l <"$R/first.count")" = 2 ] && grep -q i-2 "$R/var/lib/firstboot/ready"; then t_pass; else t_fail "not rerun"; fi

t_case "the text form (#firstboot-bundle v1) works"
R2=$T/root2
new_root "$R2"
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/ud.b64"
if expect_rc 0 fb_run "$R2" --user-data "$T/ud.b64" && [ -f "$R2/var/lib/firstboot/ready" ]; then t_pass; else t_fail "b64"; fi

t_case "a plain #! script runs as one module"
R3=$T/root3
new_root "$R3"
printf '#!/bin/sh\necho hi from script > "$FIRSTBOOT_ROOT/script.out"\n' >"$T/script.sh"
if expect_rc 0 fb_run "$R3" --user-data "$T/script.sh" && [ "$(cat "$R3/script.out")" = "hi from script" ] &&
	[ "$(json_get "$R3/var/lib/firstboot/status.json" 'j["modules"][0]["id"]')" = user-script ]; then t_pass; else t_fail "script"; fi

t_case "a gzip'd #! script runs as one module (as cloud-init reads it)"
R5=$T/root5
new_root "$R5"
sed 's/hi from script/hi from gzip/' "$T/script.sh" | gzip -9 >"$T/script.sh.gz"
if expect_rc 0 fb_run "$R5" --user-data "$T/script.sh.gz" && [ "$(cat "$R5/script.out")" = "hi from gzip" ] &&
	[ -f "$R5/var/lib/firstboot/ready" ]; then t_pass; else t_fail "gzip'd script"; fi

t_case "a truncated gzip'd script: exit 1, the reason named, no marker"
R6=$T/root6
new_root "$R6"
head -c 30 "$T/script.sh.gz" >"$T/cut.gz"
if expect_rc 1 fb_run "$R6" --user-data "$T/cut.gz" && grep -q 'corrupt gzip data' "$T/err" &&
	[ ! -e "$R6/var/lib/firstboot/ready" ] && [ ! -e "$R6/script.out" ]; then t_pass; else t_fail "cut gzip"; fi

t_case "status says ready, exit 0"
if expect_rc 0 "$FIRSTBOOT" status --root "$R" && grep -q 'state: ready' "$T/out" &&
	expect_rc 0 "$FIRSTBOOT" status --root "$R" --json &&
	[ "$(json_get "$T/out" 'j["state"]')" = ready ]; then t_pass; else t_fail "status"; fi

t_case "status of a root never provisioned: exit 2"
R4=$T/root4
new_root "$R4"
if expect_rc 2 "$FIRSTBOOT" status --root "$R4" && grep -q 'not-started' "$T/out"; then t_pass; else t_fail "status"; fi

t_case "modules from the modules directory"
R5=$T/root5 B5=$T/b5
new_root "$R5"
mkdir -p "$B5"
mkmodule "$R5/usr/lib/firstboot" baked '' <<'EOS'
#!/bin/sh
touch "$FIRSTBOOT_ROOT/baked.ran"
EOS
printf 'version: 1\nname: baked\nmodules:\n  - id: baked\n' >"$B5/bundle.yaml"
"$TOP/tests/e2e/mkbundle.sh" "$B5" "$T/ud5.tar.gz"
if expect_rc 0 fb_run "$R5" --user-data "$T/ud5.tar.gz" && [ -f "$R5/baked.ran" ]; then t_pass; else t_fail "baked"; fi

t_case "clean forgets the state; the next run provisions again"
if expect_rc 0 "$FIRSTBOOT" clean --root "$R" --logs --machine-id && [ ! -e "$R/var/lib/firstboot/ready" ] &&
	[ ! -e "$R/var/log/firstboot" ] && [ "$(cat "$R/etc/machine-id")" = uninitialized ] &&
	expect_rc 0 fb_run "$R" --user-data "$T/ud.tar.gz" --instance-id i-2 && [ "$(wc -l <"$R/first.count")" = 3 ]; then t_pass; else t_fail "clean"; fi

t_case "analyze lists modules slowest first"
if expect_rc 0 "$FIRSTBOOT" analyze --root "$R" && grep -q 'agent overhead' "$T/out" && grep -q ' first' "$T/out"; then t_pass; else t_fail "analyze"; fi

t_case "clean --machine-id on a systemd machine adds the preset fallback (systemd's first-boot preset pass enables nothing new)"
mkdir -p "$R/usr/lib/systemd/system"
: >"$R/usr/lib/systemd/systemd"
printf '[Socket]\nListenStream=2222\n\n[Install]\nWantedBy=sockets.target\n' >"$R/usr/lib/systemd/system/extra.socket"
if [ ! -e "$R/etc/systemd/system-preset/99-firstboot-image.preset" ] &&
	expect_rc 0 "$FIRSTBOOT" clean --root "$R" --machine-id &&
	grep -qx 'disable \*' "$R/etc/systemd/system-preset/99-firstboot-image.preset" &&
	systemctl --root="$R" preset-all --preset-mode=enable-only >/dev/null 2>&1 &&
	[ ! -e "$R/etc/systemd/system/sockets.target.wants/extra.socket" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "a first run from a file maps no OpenSSL (libsodium draws the modules' salts)"
# ld.so(8): LD_DEBUG=files logs every object the dynamic linker loads,
# dlopen()ed ones too, to LD_DEBUG_OUTPUT.PID. Only imagegen, signing,
# TLS and libcurl need libcrypto; RAND_bytes() for each module's salt
# loaded it on every first boot.
R6=$T/root6
new_root "$R6"
mkdir -p "$T/ld"
if LD_DEBUG=files LD_DEBUG_OUTPUT=$T/ld/ld expect_rc 0 fb_run "$R6" --user-data "$T/ud.tar.gz" --instance-id i-1 &&
	[ -f "$R6/var/lib/firstboot/ready" ] && cat "$T"/ld/ld.* >"$T/ld.all" && grep -q 'file=libsodium' "$T/ld.all" &&
	! grep -q libcrypto "$T/ld.all"; then t_pass; else t_fail "$(grep -h libcrypto "$T"/ld/ld.* | head -3)"; fi
