#!/bin/bash
# The installer contract as its users wrote it (seed 003): its example
# manifest, verbatim in tests/cases/seed-installer/nginx/manifest.yml, and
# a contract-following install.sh next to it, run by `firstboot run --root`
# on an Ubuntu 22.04 and a Debian 12 root (their real os-release), with the
# agent's default retry schedule. apt-get, nginx and systemctl are
# stand-ins on PATH that record their calls under the root: the test needs
# neither the network nor a real package manager.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

SEED=$TOP/tests/cases/seed-installer/nginx

# Stand-ins. apt-get fails its update (exit 100, as apt-get does when a
# mirror cannot be reached) while $FIRSTBOOT_ROOT/mirror-down exists, and
# its install makes the directory the nginx package would.
BIN=$T/bin
mkdir -p "$BIN"
cat >"$BIN/apt-get" <<'EOF'
#!/bin/bash
echo "apt-get $* DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-}" >>"$FIRSTBOOT_ROOT/calls"
if [ "$1" = update ] && [ -e "$FIRSTBOOT_ROOT/mirror-down" ]; then
	rm -f "$FIRSTBOOT_ROOT/mirror-down"
	echo "E: Failed to fetch http://deb.example/dists/stable/InRelease" >&2
	exit 100
fi
[ "$1" = install ] && mkdir -p "$FIRSTBOOT_ROOT/etc/nginx/sites-available"
exit 0
EOF
cat >"$BIN/nginx" <<'EOF'
#!/bin/bash
echo "nginx $*" >>"$FIRSTBOOT_ROOT/calls"
grep -Eq '^    server_name [a-z0-9.-]+;$' "$FIRSTBOOT_ROOT/etc/nginx/sites-available/default"
EOF
cat >"$BIN/systemctl" <<'EOF'
#!/bin/bash
echo "systemctl $*" >>"$FIRSTBOOT_ROOT/calls"
EOF
chmod 0755 "$BIN"/*

# The os-release of Ubuntu 22.04.2 (as recorded in yorevs/homesetup,
# docs/misc/linux-releases.md) and of Debian 12 (base-files 12.4+deb12u11,
# this build host's own).
UBUNTU_2204='PRETTY_NAME="Ubuntu 22.04.2 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.2 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
UBUNTU_CODENAME=jammy'
DEBIAN_12='PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"'

# seed_root DIR OS-RELEASE: a root with that os-release and no
# firstboot.conf, so the agent runs with its defaults.
seed_root() {
	new_root "$1"
	printf '%s\n' "$2" >"$1/etc/os-release"
}

# seed_bundle NAME SERVER_NAME: a bundle carrying the seed's module, with
# server_name given in the YAML form written (quote it if needed).
seed_bundle() {
	local b=$T/$1
	mkdir -p "$b/modules"
	cp -r "$SEED" "$b/modules/nginx"
	printf 'version: 1\nname: seed\nmodules:\n  - id: nginx\n    inputs: {server_name: %s}\n' "$2" >"$b/bundle.yaml"
	"$TOP/tests/e2e/mkbundle.sh" "$b" "$T/$1.tgz"
}

# run_seed ROOT BUNDLE: firstboot run with the stand-ins first on PATH.
run_seed() {
	PATH="$BIN:$PATH" "$FIRSTBOOT" run --root "$1" --user-data "$T/$2.tgz" --instance-id "i-$2"
}
mstate() { json_get "$1/var/lib/firstboot/status.json" "[m for m in j['modules'] if m['id']=='nginx'][0]$2"; }

t_case "the seed's manifest validates as written, and says whose min_version it is"
if expect_rc 0 "$FIRSTBOOT" validate "$SEED/manifest.yml" &&
	[ "$(cat "$T/out")" = "$SEED/manifest.yml: ok: module 'nginx' 1.24.0, 1 input
os: ubuntu >= 20.04 or debian
note: debian has no min_version: a single min_version (20.04) is the first family's; write a mapping like {ubuntu: \"20.04\", debian: ...} to give each family its own" ]; then t_pass; else t_fail "printed: $(cat "$T/out")"; fi

t_case "every stack module's manifest still validates"
bad=()
for m in "$TOP"/modules/*/manifest.yml; do
	"$FIRSTBOOT" validate "$m" >/dev/null 2>"$T/err" || bad+=("$m: $(cat "$T/err")")
done
if [ ${#bad[@]} -eq 0 ]; then t_pass; else t_fail "${bad[*]}"; fi

seed_bundle ok my-host.example.org

t_case "Ubuntu 22.04: the seed's module runs under the contract and the root is ready"
U=$T/ubuntu
seed_root "$U" "$UBUNTU_2204"
if expect_rc 0 run_seed "$U" ok && [ -f "$U/var/lib/firstboot/ready" ] &&
	[ "$(sed -n 2p "$U/etc/nginx/sites-available/default")" = "    server_name my-host.example.org;" ] &&
	[ "$(mstate "$U" "['attempts']")" = 1 ] &&
	[ "$(cat "$U/calls")" = "apt-get update -qq DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq nginx DEBIAN_FRONTEND=noninteractive
nginx -t
systemctl enable nginx
systemctl restart nginx" ] &&
	grep -q "Installation completed" "$U/var/log/firstboot/nginx.log"; then t_pass; else t_fail "calls: $(cat "$U/calls" 2>&1)"; fi

# The default schedule is the seed's: 3 attempts, 2**attempt * 10 s after
# a failed one (10 s, then 20 s). One failure costs this test its 10 s.
t_case "Debian 12: exit 2 is retried after the default 10 s, then the root is ready"
D=$T/debian
seed_root "$D" "$DEBIAN_12"
touch "$D/mirror-down"
if expect_rc 0 run_seed "$D" ok && [ -f "$D/var/lib/firstboot/ready" ] &&
	[ "$(mstate "$D" "['attempts']")" = 2 ] && [ "$(mstate "$D" "['exit_code']")" = 0 ] &&
	grep -q "Module nginx attempt 1 exited 2 (installation error)" "$T/err" &&
	grep -q "Retrying nginx in 10000 ms" "$T/err" &&
	grep -q "ERROR: apt-get update failed" "$D/var/log/firstboot/nginx.log" &&
	[ "$(grep -c '^apt-get update' "$D/calls")" = 2 ] &&
	[ "$(sed -n 2p "$D/etc/nginx/sites-available/default")" = "    server_name my-host.example.org;" ]; then
	t_pass
else t_fail "$(grep -i 'retry\|attempt' "$T/err" | head -5)"; fi

t_case "Ubuntu 18.04 is refused before anything runs, naming what is required"
O=$T/old
seed_root "$O" "$(sed 's/22\.04\.2 LTS/18.04.6 LTS/; s/VERSION_ID="22.04"/VERSION_ID="18.04"/' <<<"$UBUNTU_2204")"
if expect_rc 1 run_seed "$O" ok && [ ! -e "$O/var/lib/firstboot/ready" ] && [ ! -e "$O/calls" ] &&
	grep -q "module 'nginx': requires ubuntu >= 20.04 or debian, this is ubuntu 18.04" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "a system of another family is refused"
F=$T/fedora
seed_root "$F" $'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=39'
if expect_rc 1 run_seed "$F" ok && [ ! -e "$F/var/lib/firstboot/ready" ] && [ ! -e "$F/calls" ] &&
	grep -q "requires ubuntu >= 20.04 or debian, this is fedora 39" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "a server_name the seed's pattern refuses stops the run at its place"
seed_bundle bad My_Host.example.org
B=$T/badroot
seed_root "$B" "$DEBIAN_12"
if expect_rc 1 run_seed "$B" bad && [ ! -e "$B/var/lib/firstboot/ready" ] && [ ! -e "$B/calls" ] &&
	grep -q "bundle.yaml:5:27: module nginx: input 'server_name' must match the pattern ^\[a-z0-9\\\\-\\\\.\]+\$, not \"My_Host.example.org\"" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "firstboot validate accepts the bundle and refuses the bad one at the same place"
if expect_rc 0 "$FIRSTBOOT" validate "$T/ok.tgz" && expect_rc 1 "$FIRSTBOOT" validate "$T/bad.tgz" &&
	grep -q "bundle.yaml:5:27: module nginx: input 'server_name' must match the pattern" "$T/err"; then
	t_pass
else t_fail "$(cat "$T/err")"; fi
