#!/bin/bash
# imagegen bake on a fake rootfs directory and on a tarball made by tar(1):
# what is installed (modes, links, enablement), what is reset (machine id,
# SSH host keys, firstboot's state and logs), idempotence, refusals with
# nothing written, links in the image never leading out of it, and the
# baked image provisioning itself with `firstboot run --root`: a signed
# bundle under require_signature, and the embedded default bundle.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

IG=$IMAGEGEN
UNITS=/usr/lib/systemd/system

# fake_rootfs DIR: os-release (a link, as in Debian), a machine id, SSH
# host keys, D-Bus's machine id as a copy, old firstboot state and logs.
fake_rootfs() {
	local r=$1
	new_root "$r"
	mkdir -p "$r/usr/lib" "$r/etc/ssh" "$r/var/lib/dbus" "$r/var/lib/firstboot/instances/old" "$r/var/log/firstboot" "$r/usr/bin"
	mv "$r/etc/os-release" "$r/usr/lib/os-release"
	ln -s ../usr/lib/os-release "$r/etc/os-release"
	echo 0123456789abcdef0123456789abcdef >"$r/etc/machine-id"
	cp "$r/etc/machine-id" "$r/var/lib/dbus/machine-id"
	for k in rsa ecdsa ed25519; do
		echo "private $k" >"$r/etc/ssh/ssh_host_${k}_key"
		echo "ssh-$k AAAA" >"$r/etc/ssh/ssh_host_${k}_key.pub"
	done
	echo 'PermitRootLogin no' >"$r/etc/ssh/sshd_config"
	echo ready >"$r/var/lib/firstboot/ready"
	echo old >"$r/var/log/firstboot/base.log"
	echo keep >"$r/var/log/syslog"
	# systemd's journal: its catalog, and journalctl (a stand-in: bake
	# only asks whether the image has one)
	mkdir -p "$r/usr/lib/systemd/catalog"
	cp /usr/lib/systemd/catalog/systemd.catalog "$r/usr/lib/systemd/catalog/"
	: >"$r/usr/bin/journalctl"
	# systemd itself, and a socket unit installed but not enabled (as
	# Debian's ssh.socket)
	mkdir -p "$r/usr/lib/systemd/system"
	: >"$r/usr/lib/systemd/systemd"
	printf '[Socket]\nListenStream=2222\n\n[Install]\nWantedBy=sockets.target\n' >"$r/usr/lib/systemd/system/extra.socket"
	# the agent's libraries (stand-ins: bake only looks for them), as
	# Debian links them: the soname to the file
	local lib=$r/usr/lib/$MULTIARCH so
	mkdir -p "$lib"
	for so in libyaml-0.so.2 libjson-c.so.5 libz.so.1 libpcre2-8.so.0 libsodium.so.23 libarchive.so.13 libcurl.so.4 libsystemd.so.0; do
		: >"$lib/$so.0.0"
		ln -s "$so.0.0" "$lib/$so"
	done
	# libhiredict1.3.1's soname is its file's name (dpkg -L libhiredict1.3.1)
	: >"$lib/libhiredict.so.1.3.1"
	ln -s libhiredict.so.1.3.1 "$lib/libhiredict.so.1"
}
MULTIARCH=$(cc -print-multiarch)

# A test module the bundles use, baked from a modules dir of its own.
M=$T/modules
mkmodule "$T/mb" hello 'inputs:
  - {name: greeting, type: string, default: hi}' <<'EOS'
#!/bin/bash
set -euo pipefail
echo "$GREETING from the image" >"$FIRSTBOOT_ROOT/hello.out"
EOS
mv "$T/mb/modules" "$M"
mkdir -p "$M/empty-in-progress"

"$IG" keygen -o "$T/keys" -q
"$IG" keygen -o "$T/other" -q
mv "$T/other/signing.pub" "$T/other/other.pub"

# A bundle using the baked module, signed with the baked key.
B=$T/b
mkdir -p "$B"
cat >"$B/bundle.yaml" <<'EOY'
version: 1
name: baked
modules:
  - {id: hello, inputs: {greeting: hello}}
EOY
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/signed.tar.gz" "$T/keys/signing.key"
rm -f "$B/bundle.yaml.sig"
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/unsigned.tar.gz"

CONF=$T/firstboot.conf
printf 'require_signature: true\nretry_backoff_ms: 10\nkill_grace_ms: 300\n' >"$CONF"

# snap DIR: every path with type, mode, owner, size, link target and
# content hash (mtimes included for files), for "nothing changed" checks.
snap() {
	(cd "$1" && find . -printf '%y %m %U:%G %s %T@ %p -> %l\n' | sort &&
		find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}

R=$T/root
fake_rootfs "$R"
cp -a "$R" "$T/pristine"
BAKE=("$IG" bake --modules-dir "$M" --firstboot "$FIRSTBOOT")

t_case "bake --rootfs installs and resets (exit 0, lists its changes)"
if expect_rc 0 "${BAKE[@]}" --rootfs "$R" --keys "$T/keys" --config "$CONF" &&
	grep -q '^  wrote   /usr/bin/firstboot$' "$T/out" && grep -q "^$R: baked" "$T/out"; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi
cp "$T/out" "$T/bake1.out"

t_case "the agent, units, tmpfiles.d and catalog are installed, root-owned, 0755/0644"
ok=1
cmp -s "$R/usr/bin/firstboot" "$FIRSTBOOT" && [ "$(stat -c '%a %U' "$R/usr/bin/firstboot")" = "755 root" ] || ok=0
for u in firstboot.service firstboot-ready.target firstboot-ssh-keygen.service; do
	cmp -s "$R$UNITS/$u" "$TOP/units/$u" && [ "$(stat -c %a "$R$UNITS/$u")" = 644 ] || ok=0
done
cmp -s "$R/usr/lib/tmpfiles.d/firstboot.conf" "$TOP/units/firstboot.tmpfiles" || ok=0
cmp -s "$R/usr/lib/systemd/catalog/firstboot.catalog" "$TOP/units/firstboot.catalog" || ok=0
if [ $ok = 1 ]; then t_pass; else t_fail "$(cd "$R" && find usr -printf '%m %p\n')"; fi

t_case "the journal's catalog database explains firstboot's events and still systemd's (journalctl -x)"
ready_id=$(sed -n 's/^#define MSGID_READY *"\([0-9a-f]*\)"/\1/p' "$TOP/firstboot/events.h")
if journalctl --root="$R" --list-catalog "$ready_id" >"$T/cat" 2>&1 && grep -q 'firstboot' "$T/cat" &&
	journalctl --root="$R" --list-catalog f77379a8490b408bbe5f6940505a777b >"$T/cat2" 2>&1 &&
	grep -q 'The journal has been started' "$T/cat2" &&
	[ "$(stat -c '%a %U' "$R/var/lib/systemd/catalog/database")" = "644 root" ]; then
	t_pass
else t_fail "$(cat "$T/cat")"; fi

t_case "a host without journalctl: a warning, the bake goes on, no catalog database"
NJ=$T/nojournalctl
fake_rootfs "$NJ"
if PATH=/nonexistent expect_rc 0 "${BAKE[@]}" --rootfs "$NJ" -q &&
	grep -q 'warning: no journalctl on this machine' "$T/err" &&
	[ -f "$NJ/usr/lib/systemd/catalog/firstboot.catalog" ] && [ ! -e "$NJ/var/lib/systemd/catalog/database" ]; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "systemd's first-boot preset-all (machine-id reset) enables nothing the image did not: extra.socket stays off"
cp -a "$R" "$T/preset"
if [ -f "$R/etc/systemd/system-preset/99-firstboot-image.preset" ] &&
	systemctl --root="$T/preset" preset-all --preset-mode=enable-only >"$T/preset.out" 2>&1 &&
	[ ! -e "$T/preset/etc/systemd/system/sockets.target.wants/extra.socket" ] &&
	[ -L "$T/preset/etc/systemd/system/multi-user.target.wants/firstboot.service" ]; then
	t_pass
else t_fail "$(cat "$T/preset.out"; ls "$T/preset/etc/systemd/system/sockets.target.wants" 2>&1)"; fi

t_case "modules go to /usr/lib/firstboot/modules/<id>/, scripts 0755; empty dirs are skipped"
if [ "$(stat -c %a "$R/usr/lib/firstboot/modules/hello/install.sh")" = 755 ] &&
	[ "$(stat -c %a "$R/usr/lib/firstboot/modules/hello/manifest.yml")" = 644 ] &&
	cmp -s "$R/usr/lib/firstboot/modules/hello/install.sh" "$M/hello/install.sh" &&
	[ ! -e "$R/usr/lib/firstboot/modules/empty-in-progress" ]; then t_pass; else t_fail "modules"; fi

t_case "trusted keys and firstboot.conf are installed"
if cmp -s "$R/etc/firstboot/keys/signing.pub" "$T/keys/signing.pub" &&
	cmp -s "$R/etc/firstboot/firstboot.conf" "$CONF" &&
	[ "$(stat -c %a "$R/etc/firstboot/firstboot.conf")" = 644 ] &&
	[ ! -e "$R/etc/firstboot/keys/signing.key" ]; then t_pass; else t_fail "keys/conf"; fi

t_case "units are enabled with the symlinks systemctl enable makes"
ok=1
for u in firstboot.service firstboot-ready.target firstboot-ssh-keygen.service; do
	[ "$(readlink "$R/etc/systemd/system/multi-user.target.wants/$u")" = "$UNITS/$u" ] || ok=0
done
if [ $ok = 1 ]; then t_pass; else t_fail "$(ls -l "$R/etc/systemd/system/multi-user.target.wants")"; fi

t_case "firstboot-agent.service is installed but not enabled without --enable-agent"
A=/usr/lib/systemd/system/firstboot-agent.service
if cmp -s "$R$A" "$TOP/units/firstboot-agent.service" && [ "$(stat -c %a "$R$A")" = 644 ] &&
	[ ! -e "$R/etc/systemd/system/multi-user.target.wants/firstboot-agent.service" ] &&
	[ ! -L "$R/etc/systemd/system/multi-user.target.wants/firstboot-agent.service" ]; then
	t_pass
else t_fail "$(ls -l "$R/etc/systemd/system/multi-user.target.wants" "$R$A" 2>&1)"; fi

t_case "bake --enable-agent enables it with the link systemctl enable makes, on a directory and a tarball; twice changes nothing"
EA=$T/enable-agent
fake_rootfs "$EA"
ok=1
expect_rc 0 "${BAKE[@]}" --rootfs "$EA" --enable-agent -q || ok=0
[ "$(readlink "$EA/etc/systemd/system/multi-user.target.wants/firstboot-agent.service")" = "$A" ] || ok=0
# systemctl itself says so (--root: on the files, no daemon).
[ "$(systemctl --root="$EA" is-enabled firstboot-agent.service 2>&1)" = enabled ] || ok=0
[ "$(systemctl --root="$R" is-enabled firstboot-agent.service 2>&1)" = disabled ] || ok=0
expect_rc 0 "${BAKE[@]}" --rootfs "$EA" --enable-agent && grep -q "already baked, unchanged" "$T/out" || ok=0
# The same in a tarball.
(cd "$EA" && tar --numeric-owner -cf "$T/ea-in.tar" .) && rm -f "$EA/etc/systemd/system/multi-user.target.wants/firstboot-agent.service" &&
	(cd "$EA" && tar --numeric-owner -cf "$T/ea-plain.tar" .) || ok=0
expect_rc 0 "${BAKE[@]}" --tar "$T/ea-plain.tar" -o "$T/ea-out.tar" --enable-agent -q || ok=0
tar -tvf "$T/ea-out.tar" | grep -q "etc/systemd/system/multi-user.target.wants/firstboot-agent.service -> $A" || ok=0
if [ $ok = 1 ]; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "machine-id is 'uninitialized' (0444), D-Bus's is a link to it"
if [ "$(cat "$R/etc/machine-id")" = uninitialized ] && [ "$(stat -c %a "$R/etc/machine-id")" = 444 ] &&
	[ "$(readlink "$R/var/lib/dbus/machine-id")" = /etc/machine-id ]; then t_pass; else t_fail "machine-id"; fi

t_case "SSH host keys are gone, the rest of /etc/ssh stays"
if [ -z "$(find "$R/etc/ssh" -name 'ssh_host_*')" ] && [ -f "$R/etc/ssh/sshd_config" ]; then t_pass; else t_fail "$(ls "$R/etc/ssh")"; fi

t_case "firstboot's state, ready marker and logs are reset; other logs stay"
if [ ! -e "$R/var/lib/firstboot" ] && [ ! -e "$R/var/log/firstboot" ] && [ -f "$R/var/log/syslog" ]; then t_pass; else t_fail "state left"; fi

t_case "a second bake changes nothing (same tree, contents, modes and mtimes)"
snap "$R" >"$T/s1"
if expect_rc 0 "${BAKE[@]}" --rootfs "$R" --keys "$T/keys" --config "$CONF" &&
	grep -q 'already baked, unchanged' "$T/out" && ! grep -q '^  ' "$T/out" &&
	snap "$R" >"$T/s2" && cmp -s "$T/s1" "$T/s2"; then t_pass; else t_fail "$(cat "$T/out"; diff "$T/s1" "$T/s2" | head)"; fi

t_case "systemd-analyze verify passes on the units at the image's paths (--root)"
mkdir -p "$T/verify"
cp -a "$R/." "$T/verify/"
cp -an "$UNITS/." "$T/verify$UNITS/"
printf '#!/bin/sh\n' >"$T/verify/usr/bin/ssh-keygen"
chmod 755 "$T/verify/usr/bin/ssh-keygen"
if systemd-analyze verify --man=no --root="$T/verify" "$T/verify$UNITS/firstboot.service" \
	"$T/verify$UNITS/firstboot-ready.target" "$T/verify$UNITS/firstboot-ssh-keygen.service" >"$T/v" 2>&1 &&
	[ ! -s "$T/v" ]; then t_pass; else t_fail "$(cat "$T/v")"; fi

t_case "the baked image provisions with a signed bundle under require_signature"
if expect_rc 0 "$FIRSTBOOT" run --root "$R" --user-data "$T/signed.tar.gz" --instance-id i-1 &&
	[ "$(cat "$R/hello.out")" = "hello from the image" ] && [ -f "$R/var/lib/firstboot/ready" ] &&
	[ "$(stat -c %a "$R/var/lib/firstboot")" = 700 ]; then t_pass; else t_fail "not provisioned"; fi

t_case "... and refuses an unsigned one (keys and config really are in force)"
if expect_rc 1 "$FIRSTBOOT" run --root "$R" --user-data "$T/unsigned.tar.gz" --instance-id i-2 &&
	grep -q 'not signed' "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "baking again after a run resets the run's state"
if expect_rc 0 "${BAKE[@]}" --rootfs "$R" -q && [ ! -e "$R/var/lib/firstboot" ] && [ ! -e "$R/var/log/firstboot" ] &&
	cmp -s "$R/etc/firstboot/firstboot.conf" "$CONF" && [ ! -s "$T/out" ]; then t_pass; else t_fail "state left or conf replaced"; fi
rm -f "$R/hello.out"

# --- The default bundle ---

D=$T/droot
fake_rootfs "$D"
t_case "--bundle embeds a default bundle (0600) and a default config with require_signature"
if expect_rc 0 "${BAKE[@]}" --rootfs "$D" --key "$T/keys/signing.pub" --bundle "$T/signed.tar.gz" &&
	cmp -s "$D/etc/firstboot/default-user-data" "$T/signed.tar.gz" &&
	[ "$(stat -c %a "$D/etc/firstboot/default-user-data")" = 600 ] &&
	grep -qx 'require_signature: true' "$D/etc/firstboot/firstboot.conf"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "with no other datasource, auto finds the default bundle"
if expect_rc 0 "$FIRSTBOOT" query --root "$D" --json && [ "$(json_get "$T/out" 'j["source"]')" = default ] &&
	[ "$(json_get "$T/out" 'j["origin"]')" = "$D/etc/firstboot/default-user-data" ]; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "firstboot run on the image provisions from the default bundle"
if expect_rc 0 "$FIRSTBOOT" run --root "$D" && [ "$(cat "$D/hello.out")" = "hello from the image" ] &&
	grep -q 'default-' "$D/var/lib/firstboot/ready"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "a NoCloud seed comes before the default bundle"
mkdir -p "$D/var/lib/cloud/seed/nocloud"
printf 'instance-id: seeded\n' >"$D/var/lib/cloud/seed/nocloud/meta-data"
if expect_rc 0 "$FIRSTBOOT" query --root "$D" --json && [ "$(json_get "$T/out" 'j["source"]')" = nocloud ]; then t_pass; else t_fail "$(cat "$T/out")"; fi

t_case "--datasource default names it; without a default bundle auto lists it as tried"
E=$T/eroot
new_root "$E"
if expect_rc 1 "$FIRSTBOOT" query --root "$E" --datasource default && grep -q 'default: no default bundle' "$T/err" &&
	expect_rc 1 "$FIRSTBOOT" query --root "$E" && grep -q "default: $E/etc/firstboot/default-user-data" "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

# --- Refusals: a clear error and nothing written ---

N=$T/nroot
# refuse WANT-IN-ERR ARGS...: bake exits 1 (2 for usage), says so, and $N
# is untouched.
refuse() {
	local want=$1 rc=1
	shift
	[ "$1" = --usage ] && rc=2 && shift
	snap "$N" >"$T/n1"
	expect_rc "$rc" "$IG" bake "$@" && grep -q -- "$want" "$T/err" && snap "$N" >"$T/n2" && cmp -s "$T/n1" "$T/n2"
}
mkdir -p "$N/etc"
echo keep >"$N/etc/hostname"
t_case "a directory without etc/os-release is refused"
if refuse 'not a root file system: it has no etc/os-release' --rootfs "$N"; then t_pass; else t_fail "$(cat "$T/err")"; fi

fake_rootfs "$N"
t_case "a missing rootfs, --rootfs with --tar, --tar without -o are usage or clear errors"
if refuse 'No such file' --rootfs "$T/nonexistent" && refuse 'either --rootfs' --usage --rootfs "$N" --tar x -o y &&
	refuse 'needs -o' --usage --tar "$T/x.tar"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "a key that is not an Ed25519 public key is refused"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 2>/dev/null | openssl pkey -pubout -out "$T/rsa.pub" 2>/dev/null
cp "$T/keys/signing.key" "$T/private.pub"
if refuse 'not an Ed25519 public key' "${BAKE[@]:2}" --rootfs "$N" --key "$T/rsa.pub" &&
	refuse 'not an Ed25519 public key' "${BAKE[@]:2}" --rootfs "$N" --key "$T/private.pub" &&
	refuse 'must be named NAME.pub' "${BAKE[@]:2}" --rootfs "$N" --key "$T/keys/signing.key"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "an image without a library the agent is linked with is refused, naming it and its package"
mv "$N/usr/lib/$MULTIARCH/libz.so.1" "$T/libz.so.1.saved"
if refuse "$N: the image lacks libz.so.1 (Debian package zlib1g), without which firstboot cannot start" \
	"${BAKE[@]:2}" --rootfs "$N"; then t_pass; else t_fail "$(cat "$T/err")"; fi
mv "$T/libz.so.1.saved" "$N/usr/lib/$MULTIARCH/libz.so.1"

t_case "without libsodium (linked: SHA-256, HMAC, signatures): refused; without libcurl: a warning"
mv "$N/usr/lib/$MULTIARCH/libsodium.so.23" "$T/libsodium.saved"
L=$T/nolibs
fake_rootfs "$L"
rm "$L/usr/lib/$MULTIARCH/libcurl.so.4"
if refuse "$N: the image lacks libsodium.so.23 (Debian package libsodium23), without which firstboot cannot start" \
	"${BAKE[@]:2}" --rootfs "$N" &&
	expect_rc 0 "${BAKE[@]}" --rootfs "$L" &&
	grep -qF "warning: $L: the image lacks libcurl.so.4 (Debian package libcurl4), needed to fetch" "$T/err" &&
	[ -x "$L/usr/bin/firstboot" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi
mv "$T/libsodium.saved" "$N/usr/lib/$MULTIARCH/libsodium.so.23"

t_case "without libhiredict (jobs from Redis): a warning naming its package; refused with --enable-agent, firstboot.conf's jobs.redis_url or a --bundle running jobs-agent"
mv "$N/usr/lib/$MULTIARCH/libhiredict.so.1.3.1" "$T/hiredict.saved"
# The test modules and jobs-agent (with _lib), for a bundle that runs it
# as imagegen render makes one from site.yaml's jobs:.
JM=$T/jobs-modules
mkdir -p "$JM" "$T/jb"
cp -r "$M/." "$JM/" && cp -r "$TOP/modules/jobs-agent" "$TOP/modules/_lib" "$JM/"
printf 'version: 1\nname: jobs\nmodules:\n  - id: jobs-agent\n' >"$T/jb/bundle.yaml"
"$TOP/tests/e2e/mkbundle.sh" "$T/jb" "$T/jobs.tar.gz"
printf 'jobs:\n  redis_url: redis://127.0.0.1:6379\n' >"$T/jobs.conf"
L=$T/nohiredict
fake_rootfs "$L"
rm "$L/usr/lib/$MULTIARCH/libhiredict.so.1.3.1"
lacks="the image lacks libhiredict.so.1.3.1 (Debian package libhiredict1.3.1)"
if expect_rc 0 "${BAKE[@]}" --rootfs "$L" &&
	grep -qF "warning: $L: $lacks, needed by \`firstboot agent\` for jobs from Redis" "$T/err" &&
	refuse "$N: $lacks, without which .firstboot agent. cannot start, and --enable-agent runs it" \
		"${BAKE[@]:2}" --rootfs "$N" --enable-agent &&
	refuse "$N: $lacks, without which .firstboot agent. cannot start, and firstboot.conf's jobs.redis_url runs it" \
		"${BAKE[@]:2}" --rootfs "$N" --config "$T/jobs.conf" &&
	refuse "$N: $lacks, without which .firstboot agent. cannot start, and the --bundle's module jobs-agent runs it" \
		--modules-dir "$JM" --firstboot "$FIRSTBOOT" --rootfs "$N" --bundle "$T/jobs.tar.gz"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi
mv "$T/hiredict.saved" "$N/usr/lib/$MULTIARCH/libhiredict.so.1.3.1"

t_case "a missing --bundle, a --keys DIR without *.pub are refused"
mkdir -p "$T/nokeys"
if refuse "$T/nonexistent.tar.gz: No such file" "${BAKE[@]:2}" --rootfs "$N" --bundle "$T/nonexistent.tar.gz" &&
	refuse 'no \*.pub in it' "${BAKE[@]:2}" --rootfs "$N" --keys "$T/nokeys"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "a bad --config is refused with file:line:column"
printf 'require_signature: true\nbogus_key: 1\n' >"$T/bad.conf"
if refuse "$T/bad.conf:2:1: unknown key 'bogus_key'" "${BAKE[@]:2}" --rootfs "$N" --config "$T/bad.conf"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "an unsigned default bundle under require_signature is refused"
if refuse 'the bundle is not signed, and firstboot.conf sets require_signature' "${BAKE[@]:2}" --rootfs "$N" --keys "$T/keys" --bundle "$T/unsigned.tar.gz"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "a default bundle naming a module nobody has is refused"
sed 's/id: hello/id: nosuch/' "$B/bundle.yaml" >"$T/nb.yaml" && mkdir -p "$T/nb" && mv "$T/nb.yaml" "$T/nb/bundle.yaml"
"$TOP/tests/e2e/mkbundle.sh" "$T/nb" "$T/nosuch.tar.gz"
if refuse 'nosuch' "${BAKE[@]:2}" --rootfs "$N" --bundle "$T/nosuch.tar.gz"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "a module whose id is not its directory's name is refused"
cp -a "$M" "$T/badmods" && sed -i 's/^id: hello/id: hullo/' "$T/badmods/hello/manifest.yml"
if refuse "differs from its directory's name" --firstboot "$FIRSTBOOT" --modules-dir "$T/badmods" --rootfs "$N"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "a --firstboot that is not an executable is refused"
if refuse 'not an executable' --modules-dir "$M" --firstboot "$CONF" --rootfs "$N"; then t_pass; else t_fail "$(cat "$T/err")"; fi

# --- Links in the image stay in the image ---

t_case "absolute symlinks in the image are resolved inside it, never on the host"
L=$T/lroot
fake_rootfs "$L"
esc=/firstboot-bake-escape-$$
mkdir -p "$L$esc"
ln -s "$esc" "$L/etc/systemd"
rm -f "$L/etc/machine-id" && ln -s "$esc/machine-id" "$L/etc/machine-id"
if expect_rc 0 "${BAKE[@]}" --rootfs "$L" -q && [ ! -e "$esc" ] &&
	[ -L "$L$esc/system/multi-user.target.wants/firstboot.service" ] &&
	[ ! -L "$L/etc/machine-id" ] && [ "$(cat "$L/etc/machine-id")" = uninitialized ]; then t_pass; else t_fail "escaped: $(ls -d "$esc" 2>&1)"; fi
[ -e "$esc" ] && rm -rf "$esc"

# --- Tarballs ---

TR=$T/troot
fake_rootfs "$TR"
mknod "$TR/null" c 1 3 2>/dev/null || true
ln "$TR/etc/ssh/sshd_config" "$TR/etc/ssh/sshd_config.hard"
echo owned >"$TR/var/owned" && chown 1234:2345 "$TR/var/owned" && chmod 4750 "$TR/var/owned"
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.bake", b"kept")' "$TR/var/owned" 2>/dev/null
tar --xattrs --xattrs-include='user.*' -C "$TR" -czf "$T/in.tar.gz" .

# tar_list TARBALL: each entry's metadata and content hash, one line each.
tar_list() {
	python3 - "$1" <<'EOP'
import hashlib, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    for m in t.getmembers():
        name = m.name[2:] if m.name.startswith("./") else m.name
        data = hashlib.sha256(t.extractfile(m).read()).hexdigest()[:16] if m.isreg() else ""
        xattrs = sorted((k, v) for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr."))
        print(name.rstrip("/"), m.type.decode(), oct(m.mode), m.uid, m.gid, m.mtime if not m.isdir() else "",
              m.linkname, m.devmajor if m.ischr() else "", m.devminor if m.ischr() else "", data, xattrs, sep="|")
EOP
}

t_case "bake --tar writes OUT with the changes, through OUT.tmp"
if expect_rc 0 "${BAKE[@]}" --tar "$T/in.tar.gz" -o "$T/out.tar.gz" --keys "$T/keys" --config "$CONF" &&
	[ -s "$T/out.tar.gz" ] && [ ! -e "$T/out.tar.gz.tmp" ] && gzip -t "$T/out.tar.gz" &&
	tar -tzf "$T/out.tar.gz" >"$T/names" 2>"$T/tarerr" && [ ! -s "$T/tarerr" ]; then t_pass; else t_fail "$(cat "$T/err" "$T/tarerr")"; fi

t_case "every entry bake does not touch keeps its metadata (owner, mode, mtime, links, devices, xattrs)"
tar_list "$T/in.tar.gz" | grep -v -e '^etc/machine-id|' -e '^etc/ssh/ssh_host_' -e '^var/lib/firstboot' -e '^var/log/firstboot' \
	-e '^var/lib/dbus/machine-id|' >"$T/l-in"
tar_list "$T/out.tar.gz" >"$T/l-out"
missing=$(grep -v -x -F -f "$T/l-out" "$T/l-in")
# The xattr is checked where the file system under the test can hold one.
xattr_ok=1
grep -q "^var/owned|.*user.bake" "$T/l-in" && ! grep -q "^var/owned|.*SCHILY.xattr.user.bake', 'kept'" "$T/l-out" && xattr_ok=0
if [ -z "$missing" ] && [ $xattr_ok = 1 ] && grep -q '^var/owned|0|0o4750|1234|2345|' "$T/l-out" &&
	grep -q '^etc/ssh/sshd_config.hard|1|' "$T/l-out" && grep -q '^etc/os-release|2|.*|../usr/lib/os-release|' "$T/l-out"; then t_pass; else t_fail "changed: $missing"; fi

t_case "the tarball has what a baked directory has: same files, modes, links"
X=$T/x
mkdir -p "$X" && tar -xzf "$T/out.tar.gz" -C "$X"
ok=1
for p in usr/bin/firstboot "${UNITS#/}/firstboot.service" usr/lib/firstboot/modules/hello/install.sh etc/firstboot/keys/signing.pub etc/firstboot/firstboot.conf etc/machine-id; do
	if ! cmp -s "$X/$p" "$R/$p" || [ "$(stat -c %a "$X/$p")" != "$(stat -c %a "$R/$p")" ]; then
		ok=0
		echo "  # differs: $p"
	fi
done
[ "$(readlink "$X/etc/systemd/system/multi-user.target.wants/firstboot.service")" = "$UNITS/firstboot.service" ] || ok=0
[ "$(readlink "$X/var/lib/dbus/machine-id")" = /etc/machine-id ] || ok=0
[ -z "$(find "$X/etc/ssh" -name 'ssh_host_*')" ] && [ ! -e "$X/var/lib/firstboot" ] || ok=0
if [ $ok = 1 ]; then t_pass; else t_fail "tar and dir differ"; fi

t_case "baking the baked tarball again gives the same bytes"
if expect_rc 0 "${BAKE[@]}" --tar "$T/out.tar.gz" -o "$T/out2.tar.gz" --keys "$T/keys" --config "$CONF" &&
	grep -q 'already baked, unchanged' "$T/out" && cmp -s "$T/out.tar.gz" "$T/out2.tar.gz"; then t_pass; else t_fail "$(cat "$T/out")"; fi

t_case "an uncompressed tar stays uncompressed; -o may be the input itself"
tar -C "$TR" -cf "$T/plain.tar" .
if expect_rc 0 "${BAKE[@]}" --tar "$T/plain.tar" -o "$T/plain.tar" -q && tar -tf "$T/plain.tar" | grep -c '^./usr/bin/firstboot$' >/dev/null &&
	! gzip -t "$T/plain.tar" 2>/dev/null; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "a tarball without etc/os-release is refused and OUT is not written"
tar -C "$N" -czf "$T/noos.tar.gz" ./etc/hostname
if expect_rc 1 "${BAKE[@]}" --tar "$T/noos.tar.gz" -o "$T/noos-out.tar.gz" && grep -q 'not a root file system' "$T/err" &&
	[ ! -e "$T/noos-out.tar.gz" ] && [ ! -e "$T/noos-out.tar.gz.tmp" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "a truncated tarball is refused and neither OUT nor OUT.tmp is left"
head -c "$(($(stat -c %s "$T/in.tar.gz") / 2))" "$T/in.tar.gz" >"$T/trunc.tar.gz"
if expect_rc 1 "${BAKE[@]}" --tar "$T/trunc.tar.gz" -o "$T/trunc-out.tar.gz" &&
	grep -q 'trunc.tar.gz: truncated' "$T/err" && [ ! -e "$T/trunc-out.tar.gz" ] && [ ! -e "$T/trunc-out.tar.gz.tmp" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "a tarball bake cannot rewrite faithfully is refused: a hard link to a removed key, a put under a symlink"
H=$T/hroot
fake_rootfs "$H"
ln "$H/etc/ssh/ssh_host_rsa_key" "$H/etc/ssh/zz_copy_rsa_key"
tar --sort=name -C "$H" -czf "$T/hard.tar.gz" .
S=$T/sroot
fake_rootfs "$S"
mkdir -p "$S/opt/units"
rm -rf "$S/usr/lib/systemd"
ln -s /opt/units "$S/usr/lib/systemd"
tar -C "$S" -czf "$T/sym.tar.gz" .
if expect_rc 1 "${BAKE[@]}" --tar "$T/hard.tar.gz" -o "$T/hard-out.tar.gz" &&
	grep -q 'zz_copy_rsa_key": hard link to etc/ssh/ssh_host_rsa_key, which is replaced or removed' "$T/err" &&
	[ ! -e "$T/hard-out.tar.gz" ] && [ ! -e "$T/hard-out.tar.gz.tmp" ] &&
	expect_rc 1 "${BAKE[@]}" --tar "$T/sym.tar.gz" -o "$T/sym-out.tar.gz" &&
	grep -q 'usr/lib/systemd": is not a directory in the archive' "$T/err" &&
	[ ! -e "$T/sym-out.tar.gz" ] && [ ! -e "$T/sym-out.tar.gz.tmp" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "a baked tarball, unpacked, provisions with the signed bundle"
if expect_rc 0 "$FIRSTBOOT" run --root "$X" --user-data "$T/signed.tar.gz" --instance-id t-1 &&
	[ "$(cat "$X/hello.out")" = "hello from the image" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi
