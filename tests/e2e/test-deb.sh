#!/bin/bash
# The Debian packages (packaging/deb.sh, `make deb`): what each holds, with
# which modes; their Depends; lintian; reproducible builds; and installing
# them into an image's root, the other way to bake: with dpkg --root (the
# maintainer scripts run for that root: units enabled, state directories
# made, nothing on this host touched), and with dpkg-deb -x plus
# systemctl --root enable. The installed agent then provisions that root.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

for tool in dpkg-deb dpkg-shlibdeps dpkg-parsechangelog; do
	if ! command -v "$tool" >/dev/null; then
		echo "ok - packages # SKIP no $tool (apt install dpkg-dev)"
		exit 0
	fi
done

BUILD_DIR=$(basename "$(dirname "$FIRSTBOOT")")
VERSION=$(sed -n 's/^VERSION *:= *//p' "$TOP/Makefile")
DEBV=$(dpkg-parsechangelog -l "$TOP/packaging/debian/changelog" -S Version)
ARCH=$(dpkg --print-architecture)
D=$T/deb
FB=$D/firstboot_${DEBV}_$ARCH.deb IG=$D/imagegen_${DEBV}_$ARCH.deb MOD=$D/firstboot-modules_${DEBV}_all.deb
UNITS=(firstboot.service firstboot-ready.target firstboot-ssh-keygen.service)

t_case "deb.sh builds three packages"
if (cd "$TOP" && packaging/deb.sh "$BUILD_DIR" "$VERSION" "$D") >"$T/out" 2>"$T/err" &&
	[ -f "$FB" ] && [ -f "$IG" ] && [ -f "$MOD" ] && [ "$(find "$D" -name '*.deb' | wc -l)" = 3 ]; then t_pass; else
	t_fail "$(cat "$T/out" "$T/err")"
	exit 1
fi

# has DEB MODE PATH: the package lists PATH with these permissions, root-owned.
has() {
	dpkg-deb -c "$1" | awk -v m="$2" -v p="./${3#/}" '$6 == p && $2 == "root/root" && $1 == m { f = 1 } END { exit !f }'
}

t_case "firstboot holds the agent, units, tmpfiles.d, catalog, man pages and docs"
ok=1
for e in "-rwxr-xr-x /usr/bin/firstboot" "-rw-r--r-- /usr/lib/tmpfiles.d/firstboot.conf" \
	"-rw-r--r-- /usr/lib/systemd/catalog/firstboot.catalog" "-rw-r--r-- /usr/share/man/man8/firstboot.8.gz" \
	"-rw-r--r-- /usr/share/man/man5/firstboot.conf.5.gz" "-rw-r--r-- /usr/share/man/man5/firstboot-bundle.5.gz" \
	"-rw-r--r-- /usr/share/doc/firstboot/copyright" "-rw-r--r-- /usr/share/doc/firstboot/changelog.Debian.gz" \
	"-rw-r--r-- /usr/lib/systemd/system/firstboot.service" "-rw-r--r-- /usr/lib/systemd/system/firstboot-ready.target" \
	"-rw-r--r-- /usr/lib/systemd/system/firstboot-ssh-keygen.service" \
	"-rw-r--r-- /usr/lib/systemd/system/firstboot-agent.service"; do
	# shellcheck disable=SC2086 # mode and path, split on purpose
	has "$FB" $e || {
		ok=0
		echo "  # missing: $e"
	}
done
dpkg-deb -c "$FB" | grep -c '/usr/lib/firstboot/modules' >/dev/null && ok=0
if [ $ok = 1 ]; then t_pass; else t_fail "$(dpkg-deb -c "$FB")"; fi

t_case "firstboot-modules holds every module of modules/, scripts 0755, manifests 0644"
ok=0
n=0
for m in "$TOP"/modules/*/manifest.yml; do
	id=$(basename "$(dirname "$m")")
	n=$((n + 1))
	has "$MOD" -rw-r--r-- "/usr/lib/firstboot/modules/$id/manifest.yml" &&
		has "$MOD" -rwxr-xr-x "/usr/lib/firstboot/modules/$id/install.sh" && ok=$((ok + 1))
done
if [ $n -gt 0 ] && [ $ok = $n ] && [ "$(dpkg-deb -f "$MOD" Architecture)" = all ]; then t_pass; else t_fail "$ok of $n modules"; fi

t_case "firstboot-modules holds the modules' shared helpers beside them (_lib/firstboot-module.sh, 0644)"
if has "$MOD" -rw-r--r-- /usr/lib/firstboot/modules/_lib/firstboot-module.sh; then t_pass; else t_fail "$(dpkg-deb -c "$MOD" | grep _lib)"; fi

t_case "imagegen holds the tool, its templates, and the agent and units bake installs"
ok=1
for e in "-rwxr-xr-x /usr/bin/imagegen" "-rwxr-xr-x /usr/lib/imagegen/firstboot" \
	"-rw-r--r-- /usr/lib/imagegen/units/firstboot.service" "-rw-r--r-- /usr/lib/imagegen/units/firstboot.tmpfiles" \
	"-rw-r--r-- /usr/lib/imagegen/units/firstboot.catalog" "-rw-r--r-- /usr/share/doc/imagegen/copyright"; do
	# shellcheck disable=SC2086
	has "$IG" $e || {
		ok=0
		echo "  # missing: $e"
	}
done
for t in "$TOP"/templates/*; do
	has "$IG" -rw-r--r-- "/usr/share/imagegen/templates/$(basename "$t")" || ok=0
done
if [ $ok = 1 ]; then t_pass; else t_fail "$(dpkg-deb -c "$IG")"; fi

t_case "Depends: the shared libraries (dpkg-shlibdeps), libarchive13 and libcurl4 (dlopen()ed) and the modules"
dep=$(dpkg-deb -f "$FB" Depends)
ok=1
for p in libyaml-0-2 libjson-c5 libpcre2-8-0 libarchive13 libssl3 libsystemd0 libcurl4 "firstboot-modules (= $DEBV)"; do
	grep -qF "$p" <<<"$dep" || ok=0
done
grep -qF "firstboot-modules (= $DEBV)" <<<"$(dpkg-deb -f "$IG" Depends)" || ok=0
grep -qF "libarchive13" <<<"$(dpkg-deb -f "$IG" Depends)" || ok=0
if [ $ok = 1 ] && [ "$(dpkg-deb -f "$FB" Version)" = "$DEBV" ]; then t_pass; else t_fail "Depends: $dep"; fi

t_case "building again gives byte-identical packages"
if (cd "$TOP" && packaging/deb.sh "$BUILD_DIR" "$VERSION" "$T/deb2") >/dev/null 2>"$T/err" &&
	cmp -s "$FB" "$T/deb2/$(basename "$FB")" && cmp -s "$IG" "$T/deb2/$(basename "$IG")" &&
	cmp -s "$MOD" "$T/deb2/$(basename "$MOD")"; then t_pass; else t_fail "differ: $(cat "$T/err")"; fi

t_case "lintian: no error or warning (overrides in packaging/lintian-overrides)"
if ! command -v lintian >/dev/null; then
	echo "ok - $_case # SKIP no lintian (packaging/deps.sh installs it)"
elif lintian --fail-on error,warning "$FB" "$IG" "$MOD" >"$T/lint" 2>&1 &&
	! grep -qE '^(E|W):' "$T/lint"; then t_pass; else t_fail "$(cat "$T/lint")"; fi

# --- Installing into an image's root ---

R=$T/root
new_root "$R"
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
: >"$R/var/lib/dpkg/status"
: >"$R/var/lib/dpkg/available"
host_wants=$(ls /etc/systemd/system/multi-user.target.wants 2>/dev/null)
DPKG=(dpkg --root="$R" --force-script-chrootless --force-depends --log=/dev/null)

t_case "dpkg --root installs the packages into the root, maintainer scripts included"
if "${DPKG[@]}" -i "$MOD" "$FB" >"$T/out" 2>"$T/err" &&
	[ "$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${Status}' firstboot)" = "install ok installed" ] &&
	cmp -s "$R/usr/lib/systemd/system/firstboot.service" "$TOP/units/firstboot.service" &&
	[ -x "$R/usr/bin/firstboot" ] && [ -x "$R/usr/lib/firstboot/modules/base/install.sh" ]; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "postinst enabled the units in the root, made the state directories, left this host alone"
ok=1
for u in "${UNITS[@]}"; do
	[ "$(readlink "$R/etc/systemd/system/multi-user.target.wants/$u")" = "/usr/lib/systemd/system/$u" ] || ok=0
done
if [ $ok = 1 ] && [ "$(stat -c %a "$R/var/lib/firstboot")" = 700 ] && [ "$(stat -c %a "$R/var/log/firstboot")" = 700 ] &&
	[ "$(ls /etc/systemd/system/multi-user.target.wants 2>/dev/null)" = "$host_wants" ]; then t_pass; else t_fail "$(find "$R/etc" "$R/var/lib" -maxdepth 4)"; fi

t_case "the installed agent provisions the root"
B=$T/b
mkdir -p "$B"
printf 'version: 1\nname: from-deb\nmodules:\n  - {id: hello}\n' >"$B/bundle.yaml"
mkmodule "$B" hello '' <<'EOS'
#!/bin/bash
set -euo pipefail
echo installed >"$FIRSTBOOT_ROOT/hello.out"
EOS
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/ud.tar.gz"
fb_conf "$R"
if expect_rc 0 "$R/usr/bin/firstboot" run --root "$R" --user-data "$T/ud.tar.gz" --instance-id deb-1 && [ "$(cat "$R/hello.out")" = installed ] &&
	"$R/usr/bin/firstboot" status --root "$R" >/dev/null; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "imagegen bake on the installed root resets it; purge removes the package, its links and state"
# The packages' dependencies (dpkg --force-depends left them out): bake
# checks the image for the agent's libraries; stand-ins do.
lib=$R/usr/lib/$(cc -print-multiarch)
mkdir -p "$lib"
for so in libyaml-0.so.2 libjson-c.so.5 libz.so.1 libpcre2-8.so.0 libsodium.so.23 libarchive.so.13 libcurl.so.4 libsystemd.so.0; do
	: >"$lib/$so"
done
if expect_rc 0 "$IMAGEGEN" bake --rootfs "$R" --firstboot "$R/usr/bin/firstboot" -q && [ ! -e "$R/var/lib/firstboot" ] &&
	"${DPKG[@]}" --purge firstboot >"$T/out" 2>"$T/err" && [ ! -e "$R/usr/lib/systemd/system/firstboot.service" ] &&
	[ ! -e "$R/var/log/firstboot" ] && [ ! -e "$R/var/lib/systemd/deb-systemd-helper-enabled/firstboot.service.dsh-also" ]; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "dpkg-deb -x and systemctl --root enable: the same image without a dpkg database"
X=$T/x
new_root "$X"
dpkg-deb -x "$FB" "$X" && dpkg-deb -x "$MOD" "$X"
if systemctl --root="$X" enable "${UNITS[@]}" >"$T/out" 2>&1 &&
	[ "$(readlink "$X/etc/systemd/system/multi-user.target.wants/firstboot.service")" = /usr/lib/systemd/system/firstboot.service ] &&
	systemd-tmpfiles --create --root="$X" firstboot.conf && [ "$(stat -c %a "$X/var/lib/firstboot")" = 700 ] &&
	fb_conf "$X" && expect_rc 0 "$X/usr/bin/firstboot" run --root "$X" --user-data "$T/ud.tar.gz" --instance-id deb-2 && [ -f "$X/var/lib/firstboot/ready" ]; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi
