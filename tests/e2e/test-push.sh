#!/bin/bash
# imagegen push against a real sshd (Debian's openssh-server) on
# 127.0.0.1: a throwaway host key and user key, `firstboot --root DIR` as
# the remote command (--firstboot-command). First push provisions, the
# same site again does nothing, a changed input reruns its module only,
# --plan changes nothing, an unreachable host and a failing apply exit 1
# naming the host, a fleet pushes to every host and names the one that
# failed; usage errors exit 2.
#
# The test runs in a private mount namespace with tmpfs on /run (sshd
# needs its privilege separation directory /run/sshd) and on /root
# (whatever ssh may write in root's ~/.ssh stays private): nothing of this
# machine's /etc/ssh, /run or root's home is touched.
if [ -z "${PUSH_IN_NS:-}" ]; then
	if [ "$(id -u)" -ne 0 ] || [ ! -x /usr/sbin/sshd ] || ! command -v unshare >/dev/null; then
		echo "ok - imagegen push # SKIP needs root, unshare and /usr/sbin/sshd (packaging/deps.sh)"
		exit 0
	fi
	PUSH_IN_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

if ! mount -t tmpfs -o mode=0755 tmpfs /run || ! mkdir -m 0755 /run/sshd ||
	! mount -t tmpfs -o mode=0700 tmpfs /root; then
	echo "not ok - a private /run and /root for sshd and ssh"
	exit 1
fi

# sshd, stopped by the trap: TERM, at most 5 s, then KILL; then lib.sh's
# cleanup.
SSHD_PID=
stop_sshd() {
	local i
	[ -n "$SSHD_PID" ] || return 0
	kill "$SSHD_PID" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		proc_gone "$SSHD_PID" && break
		sleep 0.05
	done
	kill -KILL "$SSHD_PID" 2>/dev/null
	wait "$SSHD_PID" 2>/dev/null
	SSHD_PID=
}
trap 'stop_sshd; _cleanup' EXIT

K=$T/ssh
mkdir -p "$K"
if ! ssh-keygen -q -t ed25519 -N '' -C push-test-host -f "$K/host_key" ||
	! ssh-keygen -q -t ed25519 -N '' -C push-test-user -f "$K/user_key" ||
	! cp "$K/user_key.pub" "$K/authorized_keys"; then
	echo "not ok - ssh-keygen"
	exit 1
fi
cat >"$K/sshd_config" <<EOC
ListenAddress 127.0.0.1
HostKey $K/host_key
PidFile $K/sshd.pid
AuthorizedKeysFile $K/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
EOC
sshd_up() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
for ((try = 0; try < 5; try++)); do
	PORT=$(free_port) || break
	/usr/sbin/sshd -D -e -f "$K/sshd_config" -p "$PORT" 2>>"$K/sshd.log" &
	SSHD_PID=$!
	for ((i = 0; i < 200; i++)); do
		sshd_up && break 2
		proc_gone "$SSHD_PID" && break
		sleep 0.05
	done
	stop_sshd
done
if [ -z "$SSHD_PID" ]; then
	echo "not ok - sshd starts on 127.0.0.1"
	sed 's/^/  # /' "$K/sshd.log" | tail -n 5
	exit 1
fi
printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$K/host_key.pub")" >"$K/known_hosts"
# Every option for the client: this machine's ssh_config and root's
# (absent) ~/.ssh give nothing else that matters here.
SSHO=(--ssh-option User=root --ssh-option "IdentityFile=$K/user_key"
	--ssh-option IdentitiesOnly=yes --ssh-option BatchMode=yes
	--ssh-option "UserKnownHostsFile=$K/known_hosts" --ssh-option GlobalKnownHostsFile=/dev/null
	--ssh-option StrictHostKeyChecking=yes --ssh-option ConnectTimeout=10
	--ssh-option LogLevel=ERROR)

# The modules: alpha (input level; exits 3 when level is "fail" or the
# root has /fail) and beta, each appending its name to /ran.log.
M=$T/modules
mkdir -p "$T/templates"
echo '[]' >"$T/templates/index.yml"
mkmodule "$T" alpha $'inputs:\n  - {name: level, type: string, default: "1"}' <<'EOS'
#!/bin/sh
if [ "$LEVEL" = fail ] || [ -e "$FIRSTBOOT_ROOT/fail" ]; then exit 3; fi
echo alpha >>"$FIRSTBOOT_ROOT/ran.log"
echo "alpha at level $LEVEL"
EOS
mkmodule "$T" beta '' <<<$'#!/bin/sh\necho beta >>"$FIRSTBOOT_ROOT/ran.log"'
S=$T/site
mkdir -p "$S"
site() {
	printf 'name: push-test\nhostname: push-1\nprovider: nocloud\nmodules:\n  alpha: {level: "%s"}\n  beta: {}\n' "$1" >"$S/site.yaml"
}
R=$T/root
new_root "$R"
fb_conf "$R"
MARKER=$R/var/lib/firstboot/ready
ST=$R/var/lib/firstboot/status.json
ran() { if [ -f "$R/ran.log" ]; then sort "$R/ran.log" | tr '\n' ' '; fi; }
push() {
	"$IMAGEGEN" push --modules-dir "$M" --templates-dir "$T/templates" "$@"
}
# The remote command is `CMD plan|apply --user-data -`: a wrapper puts
# --root after the command word.
printf '#!/bin/sh\nverb=$1\nshift\nexec "%s" "$verb" --root "%s" "$@"\n' "$FIRSTBOOT" "$R" >"$T/fb-root"
chmod 0755 "$T/fb-root"
PUSH1=(push "$S/site.yaml" 127.0.0.1 --ssh-option "Port=$PORT" "${SSHO[@]}"
	--firstboot-command "$T/fb-root")

# The server was created with the site's user-data at level 0 (`firstboot
# apply` works on a provisioned instance: it refuses a root that never ran).
site 0
if ! "$IMAGEGEN" userdata --modules-dir "$M" --templates-dir "$T/templates" -q "$S/site.yaml" \
	--provider nocloud -o "$T/ud0" >"$T/run0.out" 2>&1 ||
	! fb_run "$R" --user-data "$T/ud0" >>"$T/run0.out" 2>&1 || [ ! -f "$MARKER" ]; then
	echo "not ok - provisioning the root with level 0"
	sed 's/^/  # /' "$T/run0.out"
	exit 1
fi
site 1
: >"$R/ran.log"
t_case "first push: plan shows changes (exit 2), apply reruns alpha, ready marker"
if expect_rc 0 "${PUSH1[@]}" && grep -q '^  run   alpha: inputs changed: level$' "$T/out" &&
	grep -q '^Changes pending\.$' "$T/out" && grep -q '^imagegen push: push-1: applied$' "$T/out" &&
	grep -q 'alpha at level 1$' "$T/out" "$T/err" &&
	[ "$(ran)" = "alpha " ] && [ -f "$MARKER" ]; then
	t_pass
else
	t_fail "$(ran) / $(cat "$T/out" "$T/err")"
fi

t_case "the same site again: plan says nothing to do, exit 0, nothing ran"
: >"$R/ran.log"
before=$(cat "$ST")
if expect_rc 0 "${PUSH1[@]}" && grep -q '^Nothing to do: nothing changed\.$' "$T/out" &&
	grep -q '^imagegen push: push-1: nothing to do$' "$T/out" && ! grep -q 'push-1: applied' "$T/out" &&
	[ "$(ran)" = "" ] && [ "$before" = "$(cat "$ST")" ] && [ -f "$MARKER" ]; then
	t_pass
else
	t_fail "$(ran) / $(cat "$T/out" "$T/err")"
fi

t_case "a changed input: only its module reran"
site 2
: >"$R/ran.log"
if expect_rc 0 "${PUSH1[@]}" && grep -q '^  run   alpha: inputs changed: level$' "$T/out" &&
	grep -q '^  skip  beta: unchanged$' "$T/out" && [ "$(ran)" = "alpha " ] &&
	[ "$(json_get "$ST" "[m['why'] for m in j['modules'] if m['id'] == 'alpha'][0]")" = "inputs changed: level" ] &&
	[ -f "$MARKER" ]; then
	t_pass
else
	t_fail "$(ran) / $(cat "$T/out" "$T/err")"
fi

t_case "--plan: none pending exit 0; changes pending exit 2, nothing changed on the host"
: >"$R/ran.log"
before=$(tree_snapshot "$R"; cat "$ST")
if expect_rc 0 "${PUSH1[@]}" --plan && grep -q '^Nothing to do' "$T/out" &&
	site 3 && expect_rc 2 "${PUSH1[@]}" --plan && grep -q '^  run   alpha: inputs changed: level$' "$T/out" &&
	! grep -q 'push-1: applied' "$T/out" && [ "$(ran)" = "" ] &&
	[ "$before" = "$(tree_snapshot "$R"; cat "$ST")" ]; then
	t_pass
else
	t_fail "$(ran) / $(cat "$T/out" "$T/err")"
fi

t_case "an unreachable host (a closed port): exit 1, the error names the host, nothing applied"
site 3
closed=$(free_port)
before=$(tree_snapshot "$R"; cat "$ST")
if expect_rc 1 "$IMAGEGEN" push --modules-dir "$M" --templates-dir "$T/templates" "$S/site.yaml" \
	127.0.0.1 --ssh-option "Port=$closed" "${SSHO[@]}" --firstboot-command "$T/fb-root" &&
	grep -q "^imagegen push: push-1: plan failed on 127.0.0.1 with exit code 255" "$T/err" &&
	grep -q "port $closed: Connection refused" "$T/err" &&
	[ "$before" = "$(tree_snapshot "$R"; cat "$ST")" ]; then
	t_pass
else
	t_fail "$(cat "$T/out" "$T/err")"
fi

t_case "apply fails on the host: exit 1 naming the host, no ready marker; the next good push recovers"
site fail
if expect_rc 1 "${PUSH1[@]}" && grep -q '^imagegen push: push-1: apply failed on 127.0.0.1 with exit code 1$' "$T/err" &&
	! grep -q 'push-1: applied' "$T/out" && [ ! -e "$MARKER" ] &&
	[ "$(json_get "$ST" "j['state']")" = failed ] &&
	site 4 && expect_rc 0 "${PUSH1[@]}" && [ -f "$MARKER" ]; then
	t_pass
else
	t_fail "$(cat "$T/out" "$T/err")"
fi

t_case "the remote firstboot missing: exit 1 naming the host"
if expect_rc 1 push "$S/site.yaml" 127.0.0.1 --ssh-option "Port=$PORT" "${SSHO[@]}" \
	--firstboot-command "$T/no-such-firstboot" &&
	grep -q '^imagegen push: push-1: plan failed on 127.0.0.1 with exit code 127$' "$T/err"; then
	t_pass
else
	t_fail "$(cat "$T/out" "$T/err")"
fi

t_case "a host that never ran firstboot: exit 1, apply's reason and the host named, nothing written"
# push does not provision: plan shows what a first boot would run, apply
# refuses a root without an instance (README: "apply works on a
# provisioned server only").
U=$T/unprovisioned
new_root "$U"
fb_conf "$U"
printf '#!/bin/sh\nverb=$1\nshift\nexec "%s" "$verb" --root "%s" "$@"\n' "$FIRSTBOOT" "$U" >"$T/fb-unprov"
chmod 0755 "$T/fb-unprov"
before=$(cd "$U" && find . -printf '%y %m %s %p\n' | sort)
if expect_rc 1 push "$S/site.yaml" 127.0.0.1 --ssh-option "Port=$PORT" "${SSHO[@]}" \
	--firstboot-command "$T/fb-unprov" &&
	grep -q "^firstboot: Nothing was provisioned here yet (no $U/var/lib/firstboot/instance-id): use firstboot run$" "$T/err" &&
	grep -q '^imagegen push: push-1: apply failed on 127.0.0.1 with exit code 1$' "$T/err" &&
	! grep -q 'push-1: applied' "$T/out" &&
	[ "$before" = "$(cd "$U" && find . -printf '%y %m %s %p\n' | sort)" ]; then
	t_pass
else
	t_fail "$(cat "$T/out" "$T/err")"
fi

t_case "usage errors exit 2 with a message"
ok=1
for args in "" "$S/site.yaml 127.0.0.1 extra" "$S/site.yaml -- -oProxyCommand=x" \
	"$S/site.yaml --ssh-option=" "$S/site.yaml --firstboot-command -x" "$S/site.yaml --no-such" \
	"$S/site.yaml -j 0"; do
	# shellcheck disable=SC2086 # the words of args are the arguments
	if ! expect_rc 2 push $args || [ ! -s "$T/err" ] || [ -s "$T/out" ]; then
		ok=0
		echo "  # push $args: $(cat "$T/err")"
	fi
done
if expect_rc 2 "$IMAGEGEN" render "$S/site.yaml" -o "$T/x" --plan && grep -q 'option of push' "$T/err" &&
	[ ! -e "$T/x" ] && [ "$ok" = 1 ]; then
	t_pass
else
	t_fail "$(cat "$T/err")"
fi

# A fleet behind the one sshd: HostName=127.0.0.1 sends every host there,
# and the remote command picks each host's root by the hostname in the
# bundle it gets on standard input.
F=$T/fleet
mkdir -p "$F/site" "$F/tmp"
fleet() {
	printf 'name: push-fleet\nprovider: nocloud\nhosts:\n  - {hostname: web-1}\n  - {hostname: web-2}\n  - {hostname: web-3}\nmodules:\n  alpha: {level: "%s"}\n  beta: {}\n' "$1" >"$F/site/site.yaml"
}
# Each host provisioned with level 0, then pushed level 1.
fleet 0
for h in web-1 web-2 web-3; do
	new_root "$F/$h"
	if ! "$IMAGEGEN" userdata --modules-dir "$M" --templates-dir "$T/templates" -q \
		"$F/site/site.yaml" --host "$h" --provider nocloud -o "$F/ud.$h" >"$F/run.$h" 2>&1 ||
		! fb_run "$F/$h" --user-data "$F/ud.$h" >>"$F/run.$h" 2>&1; then
		echo "not ok - provisioning fleet host $h"
		sed 's/^/  # /' "$F/run.$h"
		exit 1
	fi
done
fleet 1
touch "$F/web-2/fail"
cat >"$F/firstboot" <<EOW
#!/bin/bash
set -uo pipefail
tmp=\$(TMPDIR='$F/tmp' mktemp)
cat >"\$tmp"
host=\$(tar --warning=no-unknown-keyword -xzOf "\$tmp" bundle.yaml | sed -n 's/^hostname: *//p')
verb=\$1
shift
# A line written in two parts, and one longer than imagegen's line buffer.
printf 'wrapper: one line, '
sleep 0.2
echo 'written in two parts'
head -c 5000 /dev/zero | tr '\\0' x
echo
'$FIRSTBOOT' "\$verb" --root "$F/\$host" "\$@" <"\$tmp"
rc=\$?
rm -f "\$tmp"
exit \$rc
EOW
chmod 0755 "$F/firstboot"
t_case "a fleet: every host pushed, lines prefixed by host, the failing one named, exit 1"
if expect_rc 1 push "$F/site/site.yaml" --ssh-option HostName=127.0.0.1 --ssh-option "Port=$PORT" \
	"${SSHO[@]}" --firstboot-command "$F/firstboot" -j 2 &&
	[ -f "$F/web-1/var/lib/firstboot/ready" ] && [ -f "$F/web-3/var/lib/firstboot/ready" ] &&
	[ ! -e "$F/web-2/var/lib/firstboot/ready" ] &&
	grep -q '^web-1: imagegen push: web-1: applied$' "$T/out" &&
	grep -q '^web-3: imagegen push: web-3: applied$' "$T/out" &&
	grep -q '^web-2: imagegen push: web-2: apply failed on web-2 with exit code 1$' "$T/err" &&
	grep -q '^imagegen push: 1 of 3 hosts failed: web-2$' "$T/err" &&
	! grep -qv '^web-[123]: ' "$T/out" && [ "$(ls "$F/tmp")" = "" ] &&
	[ "$(grep -c '^web-2: wrapper: one line, written in two parts$' "$T/out")" = 2 ] &&
	[ "$(grep -c '^web-3: xxxx*$' "$T/out")" = 4 ]; then
	t_pass
else
	t_fail "$(cat "$T/out" "$T/err")"
fi

t_case "a fleet again, web-2 fixed: web-2 applied, the others have nothing to do"
rm "$F/web-2/fail"
if expect_rc 0 push "$F/site/site.yaml" --ssh-option HostName=127.0.0.1 --ssh-option "Port=$PORT" \
	"${SSHO[@]}" --firstboot-command "$F/firstboot" &&
	grep -q '^web-1: imagegen push: web-1: nothing to do$' "$T/out" &&
	grep -q '^web-2: imagegen push: web-2: applied$' "$T/out" &&
	grep -q '^web-3: imagegen push: web-3: nothing to do$' "$T/out" &&
	[ -f "$F/web-2/var/lib/firstboot/ready" ] &&
	expect_rc 2 push "$F/site/site.yaml" 127.0.0.1 &&
	grep -q 'pick one with --host' "$T/err"; then
	t_pass
else
	t_fail "$(cat "$T/out" "$T/err")"
fi

t_case "a fleet's pushed bundles carry each host's serial: 1 at creation, 2 once pushed"
applied_serial() { cut -d' ' -f1 "$F/$1"/var/lib/firstboot/instances/*/serial; }
if [ "$(applied_serial web-1) $(applied_serial web-2) $(applied_serial web-3)" = "2 2 2" ] &&
	tar -xzOf "$F/ud.web-2" bundle.yaml | grep -qx 'serial: 1' &&
	python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["serials"]; sys.exit(sorted(s) != ["web-1/bundle", "web-2/bundle", "web-3/bundle"])' "$F/site/.imagegen/state.json"; then
	t_pass
else
	t_fail "$(applied_serial web-1) $(applied_serial web-2) $(applied_serial web-3)"
fi

t_case "a fleet with --host: that host only, to the address given"
if expect_rc 0 push "$F/site/site.yaml" --host web-3 127.0.0.1 --ssh-option "Port=$PORT" \
	"${SSHO[@]}" --firstboot-command "$F/firstboot" &&
	grep -q '^imagegen push: web-3: nothing to do$' "$T/out" && ! grep -q 'web-[12]' "$T/out" "$T/err"; then
	t_pass
else
	t_fail "$(cat "$T/out" "$T/err")"
fi
