#!/bin/bash
# The VM test (make vmtest): a Debian 12 image baked by `imagegen bake`
# boots under qemu-system-x86_64 -accel tcg, provisions itself at first
# boot from a cidata ISO made by `imagegen seed`, and calls the controller
# back on the host (QEMU user networking maps the guest's 10.0.2.2 to the
# host's 127.0.0.1, where tests/e2e/peers/receiver.py records it).
#
# Five boots:
#   first     a copy of the golden disk with tests/vm/site (the stack)
#   second    the same disk again: nothing runs again
#   clone     that disk with a new instance-id: provisions again
#   failing   the golden disk with tests/vm/site-fail (a module exits 3)
#   changed   the first boot's disk with the same site rendered again,
#             changed (a higher serial, the same instance-id): nginx gets
#             another server name and certificate, vmhello's watched env
#             file another value; only those two modules run, nginx is
#             reloaded (same master) and vmtest-poll.service (guest/)
#             finds it answering on loopback all through the run
# Inside the guest, vmtest-report.service (tests/vm/guest/) prints facts
# as "VMTEST key value" lines on a second serial port once firstboot.service
# has finished, then powers off; the host reads them from that port's log
# file (the console's log is kept for diagnostics). Prints ok/not ok lines,
# timings as "# " lines, and "N passed, N failed" at the end.
#
# Environment: BUILD (build), VMTEST_CACHE (where the debootstrapped root
# file system is kept; default /var/cache/firstboot-vmtest when writable,
# else tests/.tmp/vm-cache), VMTEST_DEADLINE (seconds for everything, 2400),
# KEEP=1 keeps the work directory under tests/.tmp.

# The checks call helpers (is, cb, journal_ok) through check's "$@".
# shellcheck disable=SC2317
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
export FIRSTBOOT="$PWD/$BUILD/firstboot" IMAGEGEN="$PWD/$BUILD/imagegen" TOP="$PWD"
export TESTTMP="$PWD/tests/.tmp"
# shellcheck source=tests/e2e/lib.sh
. tests/e2e/lib.sh

VM=$TOP/tests/vm
deadline=$((SECONDS + ${VMTEST_DEADLINE:-2400}))
passed=0 failed=0
qemu_pid=""

stop_qemu() {
	[ -n "$qemu_pid" ] || return 0
	kill -TERM "$qemu_pid" 2>/dev/null
	wait_for 10 proc_gone "$qemu_pid" || kill -KILL "$qemu_pid" 2>/dev/null
	wait "$qemu_pid" 2>/dev/null
	qemu_pid=""
}
trap 'stop_qemu; _cleanup' EXIT
trap 'exit 130' INT TERM

pass() {
	echo "ok - $1"
	passed=$((passed + 1))
}
fail() {
	echo "not ok - $1"
	shift
	local m
	for m in "$@"; do echo "  # $m"; done
	failed=$((failed + 1))
}
# check NAME CMD...: passes when CMD exits 0; its output is shown when not.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "failed: $*" "${out:0:2000}"; fi
}
note() { echo "# $*"; }
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
	exit
}
left() { echo $((deadline - SECONDS)); }
now_ms() { date +%s%3N; }

# ---- what the guest reported and the controller received ----------------

# rep BOOT KEY: the value of the guest's first "VMTEST KEY value" line.
rep() { awk -v k="$2" '$1 == k { sub(/^[^ ]+ ?/, ""); print; exit }' "$T/$1.report"; }
# cb BOOT EXPR: a Python expression over the callbacks that arrived during
# BOOT: cbs (the receiver's records), bodies (their parsed JSON), events
# (the progress events among them), last (the last final callback: ready
# or failed), mod(ID) (a module's result in it); a tuple is printed
# space-separated.
cb() {
	python3 - "$T/$1.cb" "$2" <<'EOF'
import json, sys
cbs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bodies = [json.loads(c["body"]) for c in cbs]
events = [b for b in bodies if "event" in b]
finals = [b for b in bodies if "event" not in b]
last = finals[-1] if finals else {}
mod = lambda i: next((m for m in last.get("modules", []) if m["id"] == i), {})
r = eval(sys.argv[2])
print(*r) if isinstance(r, tuple) else print(r)
EOF
}
# st BOOT EXPR: a Python expression on `firstboot status --json` (j), or
# "none" when the guest printed none.
st() { json_get "$T/$1.status.json" "$2" 2>/dev/null || echo none; }
# marker BOOT: the instance-id in the ready marker, or "none".
marker() { rep "$1" ready-marker | python3 -c 'import json, sys; print(json.load(sys.stdin)["instance_id"])' 2>/dev/null || echo none; }
# is WANT CMD...: CMD prints WANT.
is() {
	local want=$1 got
	shift
	got=$("$@" 2>&1)
	[ "$got" = "$want" ] && return 0
	echo "$*: got '$got', expected '$want'"
	return 1
}
cb_count() { if [ -f "$T/cb.jsonl" ]; then wc -l <"$T/cb.jsonl"; else echo 0; fi; }
# final_after N: a final callback (not a progress event) was recorded
# after the first N records.
final_after() { tail -n +"$(($1 + 1))" "$T/cb.jsonl" 2>/dev/null | grep -vq '\\"event\\": *\\"'; }

# boot NAME DISK SEED SNAPSHOT REPORT LIMIT: runs the guest until it
# powers off, or kills it after LIMIT seconds (or at the deadline). REPORT
# is full (the stack's checks too) or status. Its console (ttyS0) goes to
# $T/NAME.serial, the reporter's second serial port (ttyS1) to
# $T/NAME.ttyS1, its VMTEST lines to $T/NAME.report and its status JSON
# to $T/NAME.status.json; the callbacks that arrived meanwhile to
# $T/NAME.cb. Sets boot_off (1: powered off by itself), boot_s (seconds
# to power-off) and cb_s (seconds from start to the final callback, or
# "none").
boot() {
	local name=$1 disk=$2 seed=$3 snap=$4 mode=$5 limit=$6 before start end probed=0 netdev=user,id=n0 p
	# The full report: the guest's 443 (nginx) and colonies' ports are
	# forwarded from the host's loopback (QEMU's hostfwd reaches the
	# guest on its external address, 10.0.2.15, as another host would).
	if [ "$mode" = full ]; then
		for p in 443 2379 2380 2381 50080; do
			fwd[$p]=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
			netdev+=",hostfwd=tcp:127.0.0.1:${fwd[$p]}-:$p"
		done
	fi
	local args=(-accel tcg -smp 2 -m 2048 -nographic -monitor none -no-reboot
		-kernel "$T/vmlinuz" -initrd "$T/initrd.img"
		-append "root=/dev/vda rw console=ttyS0 panic=-1 vmtest.report=$mode"
		-drive "file=$disk,if=virtio,format=raw"
		-drive "file=$seed,if=virtio,format=raw,readonly=on"
		-netdev "$netdev" -device 'virtio-net-pci,netdev=n0'
		-serial "file:$T/$name.serial" -serial "file:$T/$name.ttyS1")
	[ "$snap" = 1 ] && args+=(-snapshot)
	[ "$limit" -gt "$(left)" ] && limit=$(left)
	before=$(cb_count)
	start=$(now_ms)
	cb_s=none boot_off=0
	qemu-system-x86_64 "${args[@]}" </dev/null >"$T/$name.qemu" 2>&1 &
	qemu_pid=$!
	end=$((SECONDS + limit))
	while ! proc_gone "$qemu_pid" && [ "$SECONDS" -lt "$end" ]; do
		if [ "$mode" = full ] && [ "$probed" = 0 ] && grep -aq 'VMTEST probe-ready' "$T/$name.ttyS1" 2>/dev/null; then
			probe "$name"
			probed=1
		fi
		if [ "$cb_s" = none ] && final_after "$before"; then
			cb_s=$(awk -v a="$start" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
		fi
		sleep 0.5
	done
	proc_gone "$qemu_pid" && boot_off=1
	stop_qemu
	boot_s=$(awk -v a="$start" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
	tail -n +"$((before + 1))" "$T/cb.jsonl" >"$T/$name.cb" 2>/dev/null || : >"$T/$name.cb"
	tr -d '\r' <"$T/$name.ttyS1" | grep -a -o 'VMTEST .*' | cut -d' ' -f2- >"$T/$name.report"
	rep "$name" status-json >"$T/$name.status.json"
	note "$name boot: $(rep "$name" status-text | head -n1); error: $(st "$name" "j['error']")"
	if [ "$boot_off" = 1 ] && grep -q '^end$' "$T/$name.report"; then
		pass "$name boot: the guest reported and powered off by itself (${boot_s} s)"
	else
		fail "$name boot: the guest reported and powered off by itself" \
			"QEMU $([ "$boot_off" = 1 ] && echo exited || echo "was killed after $limit s")," \
			"$(wc -l <"$T/$name.report") report lines; the console's last lines:"
		tr -d '\r' <"$T/$name.serial" | tail -n 40 | sed 's/^/  #   /'
		sed 's/^/  #   qemu: /' "$T/$name.qemu"
	fi
}

# probe BOOT: from the host, through the forwarded ports (the guest's
# external address): colonies' API and its etcd's client, peer and relay
# ports ($T/BOOT.probe: "PORT=HTTP-CODE ...", 000 when nothing answered),
# then nginx's route to colonies ($T/BOOT.probe-nginx: code and body);
# last a request for /vmtest-probe-done, which the guest waits for in
# nginx's access log before it powers off.
declare -A fwd=()
probe() {
	local p out=""
	for p in 2379 2380 2381 50080; do
		out+="$p=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:${fwd[$p]}/version" 2>/dev/null) "
	done
	echo "${out% }" >"$T/$1.probe"
	curl -sk -m 30 -w ' %{http_code}' "https://127.0.0.1:${fwd[443]}/health" >"$T/$1.probe-nginx" 2>/dev/null
	curl -sk -m 30 -o /dev/null "https://127.0.0.1:${fwd[443]}/vmtest-probe-done" 2>/dev/null
}

# ---- prerequisites --------------------------------------------------------

t0=$SECONDS
missing=()
for c in qemu-system-x86_64 debootstrap mkfs.ext4 zstd ssh-keygen openssl python3; do
	command -v "$c" >/dev/null || missing+=("$c")
done
if [ "$(id -u)" -ne 0 ] || [ ${#missing[@]} -gt 0 ] || [ ! -x "$FIRSTBOOT" ] ||
	! "$IMAGEGEN" bake --help >/dev/null 2>&1; then
	fail "prerequisites: root, ${missing[*]:-the tools}, $BUILD/firstboot and imagegen bake" \
		"run as root through make vmtest (which installs packaging/deps.sh's packages and builds)"
	finish
fi
pass "prerequisites: root, QEMU, debootstrap, mkfs.ext4, the agent and imagegen bake"

# ---- the root file system (cached) ---------------------------------------

cache=${VMTEST_CACHE:-}
if [ -z "$cache" ]; then
	cache=/var/cache/firstboot-vmtest
	mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] || cache=$TESTTMP/vm-cache
fi
s=$SECONDS
if ! tarball=$(timeout "$(left)" "$VM/rootfs.sh" "$cache" 2>"$T/rootfs.log"); then
	fail "rootfs: Debian 12 from debootstrap, or the cache" "$(tail -n 40 "$T/rootfs.log")"
	finish
fi
sed 's/^/# /' "$T/rootfs.log"
note "time: rootfs $((SECONDS - s)) s ($([ -s "$T/rootfs.log" ] && echo built || echo cached): $tarball)"

s=$SECONDS
R=$T/rootfs
mkdir -p "$R"
zstd -dc "$tarball" | tar -x --numeric-owner --xattrs --xattrs-include='*' --acls -C "$R"
check "rootfs: Debian 12 with systemd, a kernel and the stack's packages" \
	test -x "$R/lib/systemd/systemd" -a -x "$R/usr/sbin/dockerd" -a -x "$R/usr/bin/redis-server" \
	-a -x "$R/usr/sbin/nginx" -a -d "$R/usr/lib/postgresql" -a -f "$R/etc/debian_version"
cp "$(find "$R/boot" -name 'vmlinuz-*' | sort -V | tail -n1)" "$T/vmlinuz"
cp "$(find "$R/boot" -name 'initrd.img-*' | sort -V | tail -n1)" "$T/initrd.img"
install -m 0755 "$VM/guest/vmtest-report.sh" "$R/usr/local/sbin/vmtest-report"
install -m 0644 "$VM/guest/vmtest-report.service" "$R/etc/systemd/system/vmtest-report.service"
# colonies for the site's colonyos module (systemd mode, binary baked):
# a stand-in that binds as colonies v1.8.19 does (every interface).
install -m 0755 "$VM/guest/colonies-standin" "$R/usr/local/bin/colonies"
ln -sf /etc/systemd/system/vmtest-report.service "$R/etc/systemd/system/multi-user.target.wants/"
# The changed boot's poller (its unit runs only with vmtest.report=changed).
install -m 0755 "$VM/guest/vmtest-poll.sh" "$R/usr/local/sbin/vmtest-poll"
install -m 0644 "$VM/guest/vmtest-poll.service" "$R/etc/systemd/system/vmtest-poll.service"
ln -sf /etc/systemd/system/vmtest-poll.service "$R/etc/systemd/system/multi-user.target.wants/"
note "time: unpack $((SECONDS - s)) s"

# ---- keys, sites, seeds ---------------------------------------------------

mods=$T/modules
mkdir -p "$mods"
cp -r "$TOP"/modules/* "$VM"/modules/* "$mods/"
"$IMAGEGEN" keygen -o "$T/keys" >/dev/null
ssh-keygen -q -t ed25519 -N '' -C vmtest -f "$T/ssh" >/dev/null
VMTEST_TOKEN=$(openssl rand -hex 20)
VMTEST_SSH_KEY=$(cat "$T/ssh.pub")
export VMTEST_TOKEN VMTEST_SSH_KEY
start_peer ctl receiver.py --record "$T/cb.jsonl" --token "$VMTEST_TOKEN"
# shellcheck disable=SC2154 # set by start_peer
url="http://10.0.2.2:$ctl_port/callback"
note "controller: $url (the host's 127.0.0.1:$ctl_port)"

# site DIR NAME [INSTANCE]: a copy of tests/vm/DIR at $T/NAME with the
# receiver's URL, the signing key and, when given, another instance-id.
site() {
	cp -r "$VM/$1" "$T/$2"
	mkdir -p "$T/$2/keys"
	cp "$T/keys/signing.key" "$T/$2/keys/"
	sed -i "s|^\(  url: \).*|\1$url|" "$T/$2/site.yaml"
	[ -n "${3:-}" ] && sed -i "s|^instance_id: .*|instance_id: $3|" "$T/$2/site.yaml"
	return 0
}
site site site
site site-fail site-fail
ok=1
for m in $(python3 -c 'import sys, yaml; print(*sorted({m for f in sys.argv[1:] for m in yaml.safe_load(open(f))["modules"]}))' \
	"$T/site/site.yaml" "$T/site-fail/site.yaml"); do
	"$FIRSTBOOT" validate "$mods/$m/manifest.yml" >"$T/validate.out" 2>&1 || {
		ok=0
		cat "$T/validate.out"
	}
done
for s in site site-fail; do
	"$IMAGEGEN" validate "$T/$s/site.yaml" --modules-dir "$mods" >"$T/validate.out" 2>&1 || {
		ok=0
		cat "$T/validate.out"
	}
done
if [ "$ok" = 1 ]; then
	pass "sites: imagegen validate, and firstboot validate on every module they use"
else
	fail "sites: imagegen validate, and firstboot validate on every module they use"
fi

seeds_ok=1
"$IMAGEGEN" seed "$T/site/site.yaml" --modules-dir "$mods" -o "$T/seed-first.iso" >"$T/seed.log" 2>&1 || seeds_ok=0
# serial SITE: the bundle serial imagegen keeps in SITE's state.
serial() { json_get "$T/$1/.imagegen/state.json" "j['serials']['bundle']['serial']" 2>/dev/null || echo none; }
serial_first=$(serial site)
# The clone: the same site and secrets, another instance-id.
cp -r "$T/site" "$T/site-clone"
sed -i 's|^instance_id: .*|instance_id: vmtest-2|' "$T/site-clone/site.yaml"
"$IMAGEGEN" seed "$T/site-clone/site.yaml" --modules-dir "$mods" -o "$T/seed-clone.iso" >>"$T/seed.log" 2>&1 || seeds_ok=0
"$IMAGEGEN" seed "$T/site-fail/site.yaml" --modules-dir "$mods" -o "$T/seed-fail.iso" >>"$T/seed.log" 2>&1 || seeds_ok=0
if [ "$seeds_ok" = 1 ]; then
	pass "imagegen seed: three cidata images (the stack, its clone, the failing site)"
else
	fail "imagegen seed: three cidata images (the stack, its clone, the failing site)" "$(cat "$T/seed.log")"
fi

# ---- bake and the disk image ----------------------------------------------

cat >"$T/firstboot.conf" <<'EOF'
# The VM test's image: signed bundles only, any datasource (QEMU has no
# provider DMI, so the cidata disk is found by its label), progress
# events to the controller.
datasource: auto
require_signature: true
phone_home_timeout_ms: 5000
phone_home_deadline_ms: 60000
phone_home_progress: true
EOF
s=$SECONDS
if "$IMAGEGEN" bake --rootfs "$R" --key "$T/keys/signing.pub" --config "$T/firstboot.conf" \
	--firstboot "$FIRSTBOOT" >"$T/bake.log" 2>&1; then
	note "bake: $(tail -n1 "$T/bake.log")"
	check "imagegen bake: the agent, its enabled unit, the key and config; machine-id uninitialized, no SSH host keys" \
		bash -c '[ -x "$1/usr/bin/firstboot" ] && [ -L "$1/etc/systemd/system/multi-user.target.wants/firstboot.service" ] &&
			[ "$(cat "$1/etc/machine-id")" = uninitialized ] && ! compgen -G "$1/etc/ssh/ssh_host_*" &&
			cmp -s "$1/etc/firstboot/firstboot.conf" "$2" && cmp -s "$1/etc/firstboot/keys/signing.pub" "$3"' \
		_ "$R" "$T/firstboot.conf" "$T/keys/signing.pub"
else
	fail "imagegen bake --rootfs" "$(cat "$T/bake.log")"
	finish
fi
note "time: bake $((SECONDS - s)) s"

s=$SECONDS
# Sparse; the modules want free space (docker: 4 GiB) and so does Docker.
size=$(($(du -sm "$R" | cut -f1) + 6144))
truncate -s "${size}M" "$T/golden.img"
if mkfs.ext4 -q -F -L root -d "$R" "$T/golden.img" >"$T/mkfs.log" 2>&1; then
	pass "mkfs.ext4 -d: a ${size} MiB raw image of the baked root"
else
	fail "mkfs.ext4 -d" "$(cat "$T/mkfs.log")"
	finish
fi
[ -z "${KEEP:-}" ] && rm -rf "$R"
note "time: mkfs $((SECONDS - s)) s; $(du -m "$T/golden.img" | cut -f1) MiB used of $size"
cp --sparse=always "$T/golden.img" "$T/disk.img"

want_mods="['base', 'colonyos', 'docker', 'nginx', 'postgres', 'redis', 'vmhello']"

# ---- 1. first boot: the whole stack ---------------------------------------

boot first "$T/disk.img" "$T/seed-first.iso" 0 full 900
check "first boot: the signed ready callback for vmtest-1 with every module done" \
	is "True True vmtest-1 ready $want_mods True True" \
	cb first "len(cbs) >= 1, all(c['signature_ok'] and c['path'] == '/callback' for c in cbs), last.get('instance_id'), last.get('state'), sorted(m['id'] for m in last.get('modules', [])), all(m['state'] == 'done' and m['ran'] for m in last.get('modules', [])), bool(last.get('ssh_host_keys')) and bool(last.get('addresses'))"
check "first boot: signed progress events: every module started and finished" \
	is "True $want_mods $want_mods" \
	cb first "all(c['signature_ok'] for c in cbs), sorted(e['module'] for e in events if e['event'] == 'module_started'), sorted(e['module'] for e in events if e['event'] == 'module_finished')"
check "first boot: firstboot status exits 0 and says ready; the ready marker names the instance" \
	is "0 ready vmtest-1" \
	bash -c 'printf "%s %s %s\n" "$1" "$2" "$3"' _ "$(rep first status-rc)" "$(st first "j['state']")" \
	"$(marker first)"
journal_ok() { # BOOT: every module has journal entries, all with the fields
	local m line
	for m in base colonyos docker nginx postgres redis vmhello; do
		line=$(grep "^journal $m " "$T/$1.report" | cut -d' ' -f3-)
		python3 -c 'import json,sys; j=json.loads(sys.argv[1]); sys.exit(not (j["entries"] > 0 and j["with_fields"] == j["entries"] and j["instance"] == [sys.argv[2]]))' \
			"$line" "$2" 2>/dev/null || {
			echo "journal $m: $line"
			return 1
		}
	done
}
check "first boot: journalctl -u firstboot holds every module's lines with FIRSTBOOT_INSTANCE and FIRSTBOOT_STAGE" \
	journal_ok first vmtest-1
# msgid NAME: a MESSAGE_ID from firstboot/events.h (MSGID_NAME).
msgid() { sed -n "s/^#define MSGID_$1 *\"\([0-9a-f]*\)\"/\1/p" "$TOP/firstboot/events.h"; }
# events_ok BOOT NAME...: the boot's firstboot journal has these events.
events_ok() {
	local boot=$1 ids id
	shift
	ids=$(rep "$boot" journal-message-ids)
	for id in "$@"; do
		[[ " $ids " == *" $(msgid "$id") "* ]] || {
			echo "no $id event ($(msgid "$id")) among: $ids"
			return 1
		}
	done
}
# catalog_ok BOOT: `journalctl -x` explains every firstboot event of the boot.
catalog_ok() {
	local ids n
	ids=$(rep "$1" journal-message-ids)
	n=$(wc -w <<<"$ids")
	if [ "$n" -eq 0 ] || [ "$(rep "$1" catalog-explains)" != "$n" ]; then
		echo "the catalog explains $(rep "$1" catalog-explains) of the $n events: $ids"
		return 1
	fi
}
check "first boot: the journal has the run's events (run started, module finished, ready)" \
	events_ok first RUN_STARTED MODULE_FINISHED READY
check "first boot: journalctl -x explains each of them (the catalog is in the image)" \
	catalog_ok first
check "first boot: the site's own module (shipped in the signed bundle) ran for vmtest-1" \
	is vmtest-1 rep first hello
check "first boot: vmhello read its watched env file (a bundle file): VMHELLO_COLOR=blue" \
	is blue rep first hello-env
secret_sha() { json_get "$T/site/.imagegen/state.json" "__import__('hashlib').sha256(j['secrets']['$1'].encode()).hexdigest()"; }
check "first boot: PostgreSQL accepts the generated password and refuses a wrong one" \
	bash -c '[[ $1 == "rc=0 user=colony pwsha=$2" ]] && [[ $3 == rc=[1-9]*password\ authentication\ failed* ]] || { echo "$1 / $3"; exit 1; }' \
	_ "$(rep first psql)" "$(secret_sha postgres.db_password)" "$(rep first psql-wrong-password)"
check "first boot: Redis refuses a client without the password and accepts the generated one" \
	bash -c '[[ $1 == *NOAUTH* ]] && [ "$2" = "PONG  pwsha=$3" ] || { echo "$1 / $2"; exit 1; }' \
	_ "$(rep first redis-noauth)" "$(rep first redis-auth)" "$(secret_sha redis.password)"
fp=$(openssl x509 -in "$T/site/.imagegen/pki/server.crt" -noout -fingerprint -sha256 | cut -d= -f2)
check "first boot: nginx answers HTTPS with the bundle's certificate (verified against the site's CA)" \
	bash -c '[[ $1 == "rc=0 code="[1-5]??" domain=vmtest-1.example.org" ]] && [ "$2" = "$3" ] || { echo "$1 / $2 != $3"; exit 1; }' \
	_ "$(rep first nginx-https)" "$(rep first nginx-cert)" "$fp"
check "first boot: colonies (the stand-in, bound like v1.8.19) listens on every interface: 50080, 2379, 2380, 2381 all answer on 127.0.0.1" \
	bash -c '[[ $1 == *":2379 "*":2380 "*":2381 "*":50080 "* ]] && [[ $1 != *"127.0.0.1:"* ]] && [[ $2 == "200 200 200 200"* ]] || { echo "listen: $1 / local: $2"; exit 1; }' \
	_ "$(rep first colonies-listen)" "$(rep first colonies-local)"
check "first boot: colonies-server.service is confined by systemd's IP firewall (IPAddressDeny=any, IPAddressAllow=localhost)" \
	bash -c 'd=$(grep -o "IPAddressDeny=[^=]*" <<<"$1"); a=$(grep -o "IPAddressAllow=[^=]*" <<<"$1")
		[[ $d == *"0.0.0.0/0"* && $d == *"::/0"* && $a == *"127.0.0.0/8"* && $a == *"::1/128"* && $a != *"0.0.0.0/0"* ]] || { echo "$1"; exit 1; }' \
	_ "$(rep first colonies-ipfw)"
check "first boot: from the host (hostfwd, the guest's external address) 2379, 2380, 2381 and 50080 do not answer; nginx's HTTPS route to colonies does" \
	bash -c '[ "$1" = "2379=000 2380=000 2381=000 50080=000" ] && [[ $2 == "colonies-standin 50080 /health"*" 200" ]] && [ "${3:-0}" -ge 1 ] || { echo "probe: $1 / nginx: $2 / probe-done: $3"; exit 1; }' \
	_ "$(cat "$T/first.probe" 2>/dev/null || echo none)" "$(tr -d '\n' <"$T/first.probe-nginx" 2>/dev/null || echo none)" "$(rep first probe-done)"
check "first boot: the Docker daemon is running" \
	bash -c '[[ $1 == [0-9]*" active=active" ]] || { echo "$1"; exit 1; }' _ "$(rep first docker)"
check "first boot: base: ufw active; sshd running, keys only (the site's key for deploy), no root login" \
	bash -c '[ "$1" = "Status: active" ] && [ "$2" = "active socket=inactive" ] && [[ $3 == *"permitrootlogin no"* ]] &&
		[[ $3 == *"passwordauthentication no"* ]] && [ "$4" = "$5" ] || { echo "$1 / ssh $2 / $3 / $4 != $5"; exit 1; }' \
	_ "$(rep first ufw)" "$(rep first ssh-active)" "$(rep first sshd)" "$(rep first deploy-key)" "$(ssh-keygen -lf "$T/ssh.pub" | awk '{print $2}')"
check "first boot: systemd gave the clone its own machine-id" \
	bash -c '[[ $1 =~ ^[0-9a-f]{32}$ ]] || { echo "$1"; exit 1; }' _ "$(rep first machine-id)"
agent_ms=$(st first "j['agent_ms']" 2>/dev/null)
note "time: first boot: callback after $cb_s s of QEMU time; agent $(rep first agent-uptime) s of guest uptime; agent_ms $agent_ms; powered off after $boot_s s"
note "first boot: modules: $(st first "' '.join('%s %d ms' % (m['id'], m['duration_ms']) for m in j['modules'])" 2>/dev/null)"
note "first boot: failed units: $(rep first failed-units)"

# ---- 2. the same disk again -------------------------------------------------

boot second "$T/disk.img" "$T/seed-first.iso" 0 status 600
check "second boot: ready, and no module ran again" \
	is "0 ready vmtest-1 [] sent" \
	bash -c 'printf "%s %s\n" "$1" "$2"' _ "$(rep second status-rc)" \
	"$(st second "j['state'], j['instance_id'], [m['id'] for m in j['modules'] if m['ran'] or m['state'] != 'done'], j['phone_home']['state']" | tr -d "(),'")"
check "second boot: no module wrote to the journal in this boot" \
	is "" bash -c 'grep "^journal " "$1" | grep -v "\"entries\":0,"' _ "$T/second.report"
note "time: second boot: agent_ms $(st second "j['agent_ms']" 2>/dev/null); agent $(rep second agent-uptime) s of guest uptime; $(wc -l <"$T/second.cb") callbacks; powered off after $boot_s s"

# ---- 3. a clone with a new instance-id -------------------------------------

boot clone "$T/disk.img" "$T/seed-clone.iso" 1 status 900
check "new instance-id: a signed ready callback for vmtest-2, every module run again" \
	is "True vmtest-2 ready $want_mods True" \
	cb clone "all(c['signature_ok'] for c in cbs) and len(cbs) >= 1, last.get('instance_id'), last.get('state'), sorted(m['id'] for m in last.get('modules', [])), all(m['state'] == 'done' and m['ran'] for m in last.get('modules', []))"
check "new instance-id: status ready; the marker and the site's module name vmtest-2" \
	is "0 ready vmtest-2 vmtest-2" \
	bash -c 'printf "%s %s %s %s\n" "$1" "$2" "$3" "$4"' _ "$(rep clone status-rc)" "$(st clone "j['state']")" \
	"$(marker clone)" "$(rep clone hello)"
check "new instance-id: journal lines of this boot are the new instance's" \
	journal_ok clone vmtest-2
note "time: clone: callback after $cb_s s; agent $(rep clone agent-uptime) s of guest uptime; agent_ms $(st clone "j['agent_ms']" 2>/dev/null); powered off after $boot_s s"

# ---- 4. a failing module -----------------------------------------------------

boot failing "$T/golden.img" "$T/seed-fail.iso" 1 status 600
check "failing module: the signed failure callback with vmfail's exit 3 (no retry) and its log tail" \
	is "True failed vmtest-fail-1 vmfail 3 1 done True" \
	cb failing "all(c['signature_ok'] for c in cbs) and len(cbs) >= 1, last.get('state'), last.get('instance_id'), last.get('failed_module'), mod('vmfail').get('exit_code'), mod('vmfail').get('attempts'), mod('vmhello').get('state'), any('vmfail-last-words' in l for l in last.get('log_tail', []))"
check "failing module: a signed module_failed progress event for vmfail" \
	is "True ['vmfail'] 3" \
	cb failing "all(c['signature_ok'] for c in cbs), [e['module'] for e in events if e['event'] == 'module_failed'], [e.get('exit_code') for e in events if e['event'] == 'module_failed'][0] if events else None"
check "failing module: no ready marker, firstboot status exits 1 and says failed" \
	is "none 1 failed" \
	bash -c 'printf "%s %s %s\n" "$1" "$2" "$3"' _ "$(rep failing ready-marker)" "$(rep failing status-rc)" \
	"$(st failing "j['state']")"
check "failing module: firstboot-ready.target is not reached (what waits for readiness does not start)" \
	is inactive rep failing ready-target
check "failing module: the journal has the module-failed and failed events" \
	events_ok failing MODULE_FAILED FAILED
note "time: failing: callback after $cb_s s; powered off after $boot_s s"

# ---- 5. a changed bundle for the same instance --------------------------------

# The site of the first boot, changed in place (its state keeps the
# secrets and raises the serial), rendered only now: the first boot's
# checks above read the certificate it shipped then. nginx: one more
# server name, so another server_name and another certificate and key
# (all three are in its watches:); vmhello: another value in its env file.
sed -i 's|^\(  domain: .*\)$|\1\n  names: [vmtest-changed.example.org]|' "$T/site/site.yaml"
sed -i 's|^VMHELLO_COLOR=.*|VMHELLO_COLOR=green|' "$T/site/files/vmhello.env"
if "$IMAGEGEN" seed "$T/site/site.yaml" --modules-dir "$mods" -o "$T/seed-changed.iso" >"$T/seed-changed.log" 2>&1 &&
	[ "$serial_first" -ge 1 ] 2>/dev/null && [ "$(serial site)" -gt "$serial_first" ] 2>/dev/null; then
	pass "imagegen seed: the changed site for vmtest-1, its bundle's serial raised ($serial_first -> $(serial site))"
else
	fail "imagegen seed: the changed site for vmtest-1, its bundle's serial raised" \
		"serial $serial_first -> $(serial site)" "$(cat "$T/seed-changed.log")"
fi
fp_changed=$(openssl x509 -in "$T/site/.imagegen/pki/server.crt" -noout -fingerprint -sha256 | cut -d= -f2)

boot changed "$T/disk.img" "$T/seed-changed.iso" 0 changed 600
nginx_why="watched file changed: /etc/nginx/conf.d/firstboot.conf; watched file changed: /etc/firstboot/tls/fullchain.pem; watched file changed: /etc/firstboot/tls/server.key"
# ran_why LIST: a Python expression: each module's id, ran and why in
# LIST (status.json's or the callback's modules), sorted by id.
ran_why() { echo "' | '.join('%s %s %s' % (m['id'], m['ran'], m.get('why')) for m in sorted($1, key=lambda m: m['id']))"; }
want_ran_why="base False unchanged | colonyos False unchanged | docker False unchanged | nginx True $nginx_why | postgres False unchanged | redis False unchanged | vmhello True watched file changed: /etc/vmtest/vmhello.env"
check "changed bundle: status ready for vmtest-1, every module done; only nginx and vmhello ran, each saying why, the others unchanged" \
	is "0 ready vmtest-1 True sent / $want_ran_why" \
	bash -c 'printf "%s %s / %s\n" "$1" "$2" "$3"' _ "$(rep changed status-rc)" \
	"$(st changed "' '.join(str(x) for x in (j['state'], j['instance_id'], all(m['state'] == 'done' for m in j['modules']), j['phone_home']['state']))")" \
	"$(st changed "$(ran_why "j['modules']")")"
check "changed bundle: the signed ready callback says the same (ran and why per module)" \
	is "True vmtest-1 ready / $want_ran_why" \
	bash -c 'printf "%s / %s\n" "$1" "$2"' _ "$(cb changed "' '.join(str(x) for x in (len(cbs) >= 1 and all(c['signature_ok'] for c in cbs), last.get('instance_id'), last.get('state')))")" \
	"$(cb changed "$(ran_why "last.get('modules', [])")")"
check "changed bundle: progress events for nginx and vmhello only" \
	is "['nginx', 'vmhello'] ['nginx', 'vmhello']" \
	cb changed "sorted(e['module'] for e in events if e['event'] == 'module_started'), sorted(e['module'] for e in events if e['event'] == 'module_finished')"
check "changed bundle: vmhello read the new value of its env file (VMHELLO_COLOR=green)" \
	is green rep changed hello-env
check "changed bundle: the new nginx site is live: server_name has vmtest-changed.example.org, HTTPS for it verifies against the site's CA with the new certificate" \
	bash -c '[[ $1 == "server_name "*vmtest-changed.example.org* ]] && [[ $2 == "rc=0 code="[1-5]?? ]] && [ "$3" = "$4" ] || { echo "$1 / $2 / $3 != $4"; exit 1; }' \
	_ "$(rep changed nginx-server-name)" "$(rep changed nginx-https-changed)" "$(rep changed nginx-cert)" "$fp_changed"
# reloaded BOOT: nginx's master PID is the one before the run (and
# systemd's MainPID), and its workers are all new.
reloaded() {
	local m w before after
	m=$(rep "$1" nginx-master) w=$(rep "$1" nginx-workers)
	if ! { [[ $m =~ ^before=([0-9]+)\ after=([0-9]+)\ mainpid=([0-9]+)$ ]] &&
		[ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] && [ "${BASH_REMATCH[2]}" = "${BASH_REMATCH[3]}" ]; }; then
		echo "master: $m"
		return 1
	fi
	before=${w#before=} before=${before%%after=*} after=${w#*after=}
	if [ -z "${before// /}" ] || [ -z "${after// /}" ] ||
		grep -qxF -f <(tr ' ' '\n' <<<"$before" | grep .) <(tr ' ' '\n' <<<"$after" | grep .); then
		echo "workers: $w"
		return 1
	fi
}
check "changed bundle: nginx was reloaded, not restarted (the same master PID, new workers)" \
	reloaded changed
# served BOOT: the poller's requests: none failed, and at least a round
# (ten) overlapped the run and the nginx module's reload.
served() {
	local p
	p=$(rep "$1" poll)
	if ! { [[ $p =~ ^requests=([0-9]+)\ failed=0\ during-run=([0-9]+)\ failed-during-run=0\ during-nginx=([0-9]+)\ failed-during-nginx=0\ max-gap-ms=[0-9]+$ ]] &&
		[ "${BASH_REMATCH[2]}" -ge 10 ] && [ "${BASH_REMATCH[3]}" -ge 10 ]; }; then
		echo "poll: $p; codes: $(rep "$1" poll-codes); first failures: $(rep "$1" poll-failures); $(rep "$1" poll-service)"
		return 1
	fi
}
check "changed bundle: nginx kept serving on loopback throughout (no failed request while firstboot and its nginx module ran)" \
	served changed
note "changed: poll $(rep changed poll); codes $(rep changed poll-codes)"
note "time: changed: callback after $cb_s s; agent_ms $(st changed "j['agent_ms']" 2>/dev/null); agent $(rep changed agent-uptime) s of guest uptime; powered off after $boot_s s"
note "changed: modules: $(st changed "' '.join('%s %d ms' % (m['id'], m['duration_ms']) for m in j['modules'] if m['ran'])" 2>/dev/null); failed units: $(rep changed failed-units)"

note "time: all $((SECONDS - t0)) s"
finish
