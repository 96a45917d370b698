#!/bin/bash
# A hostile --root: directory symlinks inside it (absolute, relative
# ../../.., nested) where `files:`, the state directory and the log
# directory go, and where `clean` and `imagegen bake` remove things. Every
# path resolves inside the root (as if chrooted there): a sentinel
# directory outside the root stays exactly as it was; a run either writes
# inside the root's view or fails with exit 1 naming the path, and never
# leaves a ready marker after a failure. Then a run killed (-9) in the
# middle of a large file's write leaves no *.fbtmp.* temp behind, and one
# an older run left is swept.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

S=$T/sentinel # outside every root
# sentinel: (re)makes it, the same each time, so that one case's escape
# does not fail the next.
sentinel() {
	rm -rf "$S"
	mkdir -p "$S/lib/firstboot" "$S/log/firstboot"
	chmod 0755 "$S" "$S/lib" "$S/lib/firstboot" "$S/log" "$S/log/firstboot"
	echo keep >"$S/keep"
	echo old >"$S/lib/firstboot/status.json"
	echo ready >"$S/lib/firstboot/ready"
	echo old >"$S/log/firstboot/hello.log"
	chmod 0644 "$S/keep" "$S/lib/firstboot/status.json" "$S/lib/firstboot/ready" "$S/log/firstboot/hello.log"
}
snap() { (cd "$S" && find . -printf '%y %m %s %p\n' | sort && find . -type f -exec sha256sum {} + | sort); }
sentinel
snap >"$T/sentinel.0"
sentinel_same() { snap | cmp -s - "$T/sentinel.0"; }
UP=../../../../../../../../../../../../../../../../../.. # beyond / on the host, from any depth

# The bundle: a file under /etc/app, the hostname, a module that logs.
B=$T/b
mkdir -p "$B/files"
echo 'setting=1' >"$B/files/app.conf"
cat >"$B/bundle.yaml" <<'EOY'
version: 1
name: hostile
hostname: hostile-1
files:
  - {path: /etc/app/app.conf, source: files/app.conf, mode: "0640"}
modules:
  - id: hello
EOY
mkmodule "$B" hello '' <<'EOS'
#!/bin/sh
echo "hello from the module"
EOS
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/b.tgz"

# link_shape ROOT PATH SHAPE: makes ROOT/PATH a directory symlink whose
# target, read on the host, is the sentinel: abs (its absolute path), rel
# (../ enough times to climb to the host's / and down again), nested (a
# link to a link to a link: relative, relative with "..", absolute).
link_shape() {
	local r=$1 p=$2 shape=$3
	rm -rf "${r:?}$p"
	mkdir -p "$(dirname "$r$p")"
	case $shape in
	abs) ln -s "$S" "$r$p" ;;
	rel) ln -s "$UP$S" "$r$p" ;;
	nested)
		ln -s hop1 "$r$p"
		ln -s "../$(basename "$(dirname "$r$p")")/hop2" "$(dirname "$r$p")/hop1"
		ln -s "$S" "$(dirname "$r$p")/hop2"
		;;
	esac
}

# check_run ROOT RC [PATH]: after `firstboot run`, the sentinel is
# unchanged, and a failed run (exit 1) named PATH and left no marker.
check_run() {
	local r=$1 rc=$2 p=${3:-}
	if ! sentinel_same; then
		echo "  # wrote outside the root:" >&2
		snap | diff "$T/sentinel.0" - | head -n 10 | sed 's/^/  # /' >&2
		return 1
	fi
	if [ "$rc" -eq 0 ]; then
		return 0
	fi
	if [ "$rc" -ne 1 ]; then
		echo "  # exit $rc" >&2
		return 1
	fi
	if [ -n "$(find "$r" -name ready)" ]; then
		echo "  # a failed run left a marker: $(find "$r" -name ready)" >&2
		return 1
	fi
	if [ -n "$p" ] && ! grep -q "$p" "$T/err"; then
		echo "  # the error does not name $p" >&2
		return 1
	fi
}

for dir in /etc/app /var/lib/firstboot /var/log/firstboot; do
	for shape in abs rel nested; do
		t_case "run: $dir a $shape link out of the root: nothing written outside"
		sentinel
		R=$T/run-${dir//\//_}-$shape
		new_root "$R"
		link_shape "$R" "$dir" "$shape"
		fb_run "$R" --user-data "$T/b.tgz" --instance-id i-1 >"$T/out" 2>"$T/err"
		rc=$?
		if check_run "$R" "$rc" "$dir"; then t_pass; else t_fail "exit $rc: $(tail -n 3 "$T/err")"; fi
	done
done

t_case "run: the state dir a link out of the root: the run is ready inside the root's view"
sentinel
R=$T/run-state-view
new_root "$R"
link_shape "$R" /var/lib/firstboot abs
if expect_rc 0 fb_run "$R" --user-data "$T/b.tgz" --instance-id i-1 && sentinel_same &&
	[ "$(json_get "$R$S/status.json" 'j["state"]')" = ready ] && [ -f "$R$S/ready" ] &&
	[ "$(cat "$R/etc/app/app.conf")" = setting=1 ] && [ "$(cat "$R/etc/hostname")" = hostile-1 ]; then
	t_pass
else t_fail "$(tail -n 3 "$T/err")"; fi

t_case "run: a directory above the state and log dirs (/var) a link out of the root"
sentinel
for shape in abs rel nested; do
	R=$T/run-var-$shape
	new_root "$R"
	link_shape "$R" /var "$shape"
	fb_run "$R" --user-data "$T/b.tgz" --instance-id i-1 >"$T/out" 2>"$T/err"
	rc=$?
	check_run "$R" "$rc" || break
done
if sentinel_same; then t_pass; else t_fail "$shape: $(tail -n 3 "$T/err")"; fi

t_case "run: files and the marker as links to a file outside are replaced, not written through"
sentinel
R=$T/run-final
new_root "$R"
mkdir -p "$R/etc/app" "$R/var/lib/firstboot"
ln -s "$S/keep" "$R/etc/app/app.conf"
ln -s "$S/keep" "$R/etc/hostname"
ln -s "$S/lib/firstboot/ready" "$R/var/lib/firstboot/ready"
if expect_rc 0 fb_run "$R" --user-data "$T/b.tgz" --instance-id i-1 && sentinel_same &&
	[ ! -L "$R/etc/app/app.conf" ] && [ ! -L "$R/etc/hostname" ] && [ ! -L "$R/var/lib/firstboot/ready" ] &&
	[ "$(cat "$R/etc/app/app.conf")" = setting=1 ]; then
	t_pass
else t_fail "$(tail -n 3 "$T/err")"; fi

t_case "run: a link loop where the state dir goes fails, naming it, with no marker"
sentinel
R=$T/run-loop
new_root "$R"
ln -s /var/lib/loop2 "$R/var/lib/firstboot"
ln -s firstboot "$R/var/lib/loop2"
if expect_rc 1 fb_run "$R" --user-data "$T/b.tgz" --instance-id i-1 && sentinel_same &&
	grep -q "var/lib/firstboot" "$T/err" && [ -z "$(find "$R" -name ready)" ]; then
	t_pass
else t_fail "$(tail -n 3 "$T/err")"; fi

# --- clean ---

for shape in abs rel nested; do
	t_case "clean --logs: /var a $shape link out of the root: nothing removed outside"
	sentinel
	R=$T/clean-$shape
	new_root "$R"
	link_shape "$R" /var "$shape"
	"$FIRSTBOOT" clean --root "$R" --logs >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -eq 0 ] && sentinel_same; then t_pass; else t_fail "exit $rc: $(tail -n 3 "$T/err")"; fi
done

t_case "clean: the state dir a link out of the root: the link goes, the sentinel stays"
sentinel
R=$T/clean-state
new_root "$R"
ln -s "$S/lib/firstboot" "$R/var/lib/firstboot"
if expect_rc 0 "$FIRSTBOOT" clean --root "$R" --logs && sentinel_same && [ ! -L "$R/var/lib/firstboot" ]; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

t_case "clean: a state dir in the root's view is removed there"
sentinel
R=$T/clean-view
new_root "$R"
link_shape "$R" /var abs
mkdir -p "$R$S/lib/firstboot" && echo x >"$R$S/lib/firstboot/status.json"
if expect_rc 0 "$FIRSTBOOT" clean --root "$R" && sentinel_same && [ ! -e "$R$S/lib/firstboot" ]; then
	t_pass
else t_fail "$(cat "$T/err")"; fi

# --- imagegen bake ---

MULTIARCH=$(cc -print-multiarch)
# bake_root DIR: what bake needs to accept a root (os-release, the agent's
# libraries as stand-ins).
bake_root() {
	local r=$1 lib so
	new_root "$r"
	lib=$r/usr/lib/$MULTIARCH
	mkdir -p "$lib"
	for so in libyaml-0.so.2 libjson-c.so.5 libz.so.1 libsodium.so.23 libarchive.so.13 libcurl.so.4 libsystemd.so.0; do
		: >"$lib/$so"
	done
}
mkmodule "$T/mb" hello '' <<'EOS'
#!/bin/sh
EOS
for dir in /var /var/lib/firstboot /etc/ssh /etc/systemd; do
	for shape in abs rel nested; do
		t_case "bake: $dir a $shape link out of the root: nothing written or removed outside"
		sentinel
		R=$T/bake-${dir//\//_}-$shape
		bake_root "$R"
		link_shape "$R" "$dir" "$shape"
		"$IMAGEGEN" bake --rootfs "$R" --modules-dir "$T/mb/modules" --firstboot "$FIRSTBOOT" -q >"$T/out" 2>"$T/err"
		rc=$?
		if [ "$rc" -le 1 ] && sentinel_same; then t_pass; else t_fail "exit $rc: $(tail -n 3 "$T/err")"; fi
	done
done

# --- temp files after a crash ---

# A file big enough that its write (and fsync) can be caught in the act.
K=$T/big
mkdir -p "$K/files"
head -c $((8 * 1024 * 1024)) /dev/zero >"$K/files/big" # under max_user_data (16 MiB) inflated
cat >"$K/bundle.yaml" <<'EOY'
version: 1
name: big
files:
  - {path: /opt/big/data, source: files/big, mode: "0600"}
EOY
"$TOP/tests/e2e/mkbundle.sh" "$K" "$T/big.tgz"

# A real SIGKILL in the middle of that write, at the same point every
# time: a preloaded write() that, for a file in $KILL_IN (a named temp,
# or an O_TMPFILE one, "DIR/#inode (deleted)"), writes half the data and
# then raises SIGKILL. (Watching from outside cannot see an O_TMPFILE
# file being written: it has no name, and inotify reports nothing.)
cat >"$T/killwrite.c" <<'EOC'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ssize_t write(int fd, const void *buf, size_t n)
{
	static ssize_t (*real)(int, const void *, size_t);
	const char *dir = getenv("KILL_IN");
	char proc[64], path[4096];
	ssize_t len;

	if (!real)
		real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	len = dir && n > 1024 * 1024 ? readlink(proc, path, sizeof(path) - 1) : -1;
	if (len > 0) {
		path[len] = '\0';
		if (strncmp(path, dir, strlen(dir)) == 0 && path[strlen(dir)] == '/') {
			real(fd, buf, n / 2);
			raise(SIGKILL);
		}
	}
	return real(fd, buf, n);
}
EOC
cc -shared -fPIC -o "$T/killwrite.so" "$T/killwrite.c" -ldl

t_case "kill -9 during a large file's write, then a rerun: no *.fbtmp.* is left"
sentinel
R=$T/crash
new_root "$R"
mkdir -p "$R/opt/big"
fb_conf "$R"
KILL_IN=$R/opt/big LD_PRELOAD=$T/killwrite.so ASAN_OPTIONS=verify_asan_link_order=0 \
	"$FIRSTBOOT" run --root "$R" --user-data "$T/big.tgz" --instance-id i-1 >"$T/out" 2>"$T/err"
rc=$?
# With O_TMPFILE nothing is named until the data is complete; the rerun
# must leave nothing either way.
left=$(find "$R" -name '*.fbtmp.*')
if [ "$rc" -eq 137 ] && [ ! -e "$R/var/lib/firstboot/ready" ] && [ ! -e "$R/opt/big/data" ] &&
	expect_rc 0 fb_run "$R" --user-data "$T/big.tgz" --instance-id i-1 &&
	[ -z "$(find "$R" -name '*.fbtmp.*')" ] && [ "$(stat -c %s "$R/opt/big/data")" = $((8 * 1024 * 1024)) ]; then
	t_pass
else t_fail "exit $rc, left after the kill: $left; after the rerun: $(find "$R" -name '*.fbtmp.*')"; fi

t_case "a temp file a dead run left beside a target and in the state dir is removed by the next run"
sentinel
R=$T/stale
new_root "$R"
mkdir -p "$R/etc/app" "$R/var/lib/firstboot"
# No process has this pid (beyond any pid_max); a live one's temp stays.
echo partial >"$R/etc/app/app.conf.fbtmp.2147483646"
echo partial >"$R/var/lib/firstboot/status.json.fbtmp.2147483646"
echo live >"$R/etc/app/app.conf.fbtmp.$$"
if expect_rc 0 fb_run "$R" --user-data "$T/b.tgz" --instance-id i-1 &&
	[ "$(cd "$R" && find . -name '*.fbtmp.*')" = "./etc/app/app.conf.fbtmp.$$" ]; then
	t_pass
else t_fail "left: $(find "$R" -name '*.fbtmp.*')"; fi

# --- reads: the root's passwd/group and status.json, inside the root ---

# A host-side /etc (outside every root) whose passwd and group know a
# user the roots do not: reading it through a link would find him.
HE=$T/host-etc
mkdir -p "$HE"
printf 'root:x:0:0:root:/root:/bin/bash\nintruder:x:4242:4242::/home/intruder:/bin/bash\n' >"$HE/passwd"
printf 'root:x:0:\nintruder:x:4242:\n' >"$HE/group"
OB=$T/ob
mkdir -p "$OB/files"
echo 'owned=1' >"$OB/files/app.conf"
cat >"$OB/bundle.yaml" <<'EOY'
version: 1
name: owners
files:
  - {path: /opt/app/app.conf, source: files/app.conf, mode: "0640", owner: "intruder:intruder"}
EOY
"$TOP/tests/e2e/mkbundle.sh" "$OB" "$T/ob.tgz"

t_case "files: /etc a link out of the root: the host's passwd is not read (the owner is not found, exit 1, no marker)"
R=$T/owner-etclink
new_root "$R"
fb_conf "$R"
mv "$R/etc/firstboot/firstboot.conf" "$T/owner.conf"
rm -rf "${R:?}/etc"
ln -s "$HE" "$R/etc"
if expect_rc 1 "$FIRSTBOOT" run --root "$R" --config "$T/owner.conf" --user-data "$T/ob.tgz" --instance-id i-1 &&
	grep -q 'intruder' "$T/err" && [ ! -e "$R/opt/app/app.conf" ] && [ -z "$(find "$R" -name ready)" ]; then t_pass; else
	t_fail "$(tail -n 3 "$T/err")"
fi

t_case "files: the owner found in the root's own passwd (the same bundle, no link): written, ready"
R=$T/owner-plain
new_root "$R"
cat "$HE/passwd" >"$R/etc/passwd"
cat "$HE/group" >"$R/etc/group"
if expect_rc 0 fb_run "$R" --user-data "$T/ob.tgz" --instance-id i-1 &&
	[ "$(stat -c %u:%g "$R/opt/app/app.conf")" = 4242:4242 ]; then t_pass; else t_fail "$(tail -n 3 "$T/err")"; fi

# status_root NAME: a root whose state dir holds a finished run's status.
status_root() {
	R=$T/$1
	new_root "$R"
	fb_run "$R" --user-data "$T/b.tgz" --instance-id i-1 >"$T/out" 2>"$T/err"
}

t_case "status, analyze: status.json a FIFO: no hang, exit 1 naming it"
status_root st-fifo
rm -f "$R/var/lib/firstboot/status.json"
mkfifo "$R/var/lib/firstboot/status.json"
rc_s=0 rc_a=0
timeout 10 "$FIRSTBOOT" status --root "$R" >"$T/out" 2>"$T/err" || rc_s=$?
timeout 10 "$FIRSTBOOT" analyze --root "$R" >"$T/out2" 2>"$T/err2" || rc_a=$?
if [ $rc_s = 1 ] && [ $rc_a = 1 ] && grep -q 'status.json' "$T/err" && grep -q 'status.json' "$T/err2"; then t_pass; else
	t_fail "status exit $rc_s ($(cat "$T/err")), analyze exit $rc_a ($(cat "$T/err2"))"
fi

t_case "analyze: a past run's record a FIFO is passed over, no hang"
status_root st-runfifo
runs=$(find "$R/var/lib/firstboot/instances" -type d -name runs | head -n 1)
rc_a=0
if [ -n "$runs" ] && mkfifo "$runs/boot-9.json" && { timeout 10 "$FIRSTBOOT" analyze --root "$R" >"$T/out" 2>"$T/err" || rc_a=$?; } &&
	[ $rc_a = 0 ] && grep -q hello "$T/out"; then t_pass; else t_fail "runs '$runs', exit $rc_a: $(cat "$T/err")"; fi

t_case "status, analyze, logs: the state and log dirs links out of the root: the host's status and logs are not read"
sentinel
R=$T/st-link
new_root "$R"
ln -s "$S/lib/firstboot" "$R/var/lib/firstboot"
ln -s "$S/log/firstboot" "$R/var/log/firstboot"
rc_s=0 rc_a=0 rc_l=0
timeout 10 "$FIRSTBOOT" status --root "$R" >"$T/out" 2>"$T/err" || rc_s=$?
timeout 10 "$FIRSTBOOT" analyze --root "$R" >"$T/out2" 2>"$T/err2" || rc_a=$?
timeout 10 "$FIRSTBOOT" logs --root "$R" >"$T/out3" 2>"$T/err3" || rc_l=$?
# Inside the root the links lead nowhere: nothing has run there.
if [ $rc_s = 2 ] && [ $rc_a = 1 ] && grep -q 'No run recorded' "$T/err2" && [ $rc_l = 1 ] &&
	! grep -q old "$T/out3" && sentinel_same; then t_pass; else
	t_fail "status $rc_s $(cat "$T/out" "$T/err"); analyze $rc_a $(cat "$T/err2"); logs $rc_l $(cat "$T/out3" "$T/err3")"
fi

t_case "run, apply, plan: a FIFO where instance-id is: no hang (it was read by a plain open, which waited for a writer)"
status_root st-iidfifo
rm -f "$R/var/lib/firstboot/instance-id"
mkfifo "$R/var/lib/firstboot/instance-id"
rc=0 rc2=0
timeout 20 "$FIRSTBOOT" plan --root "$R" --user-data "$T/b.tgz" >"$T/out" 2>"$T/err" || rc2=$?
timeout 20 "$FIRSTBOOT" run --root "$R" --user-data "$T/b.tgz" --instance-id i-2 >"$T/out" 2>"$T/err" || rc=$?
if [ $rc = 0 ] && [ $rc2 != 124 ] && [ -f "$R/var/lib/firstboot/instance-id" ] && [ -e "$R/var/lib/firstboot/ready" ] &&
	[ "$(cat "$R/var/lib/firstboot/instance-id")" = i-2 ]; then t_pass; else t_fail "run exit $rc, plan exit $rc2: $(tail -n 3 "$T/err")"; fi

t_case "run: a FIFO where the previous status.json is: no hang, the run replaces it and is ready"
status_root st-runfifo2
rm -f "$R/var/lib/firstboot/status.json"
mkfifo "$R/var/lib/firstboot/status.json"
rc=0
timeout 20 "$FIRSTBOOT" run --root "$R" --user-data "$T/b.tgz" --instance-id i-2 >"$T/out" 2>"$T/err" || rc=$?
if [ $rc = 0 ] && [ -f "$R/var/lib/firstboot/status.json" ] && [ -e "$R/var/lib/firstboot/ready" ] &&
	[ "$(json_get "$R/var/lib/firstboot/status.json" "j['state']")" = ready ]; then t_pass; else t_fail "exit $rc: $(tail -n 3 "$T/err")"; fi

t_case "run, plan, status, clean, query: a FIFO where firstboot.conf is: no hang, exit 1 naming it (it was read by a plain open)"
R=$T/conf-fifo
new_root "$R"
mkdir -p "$R/etc/firstboot"
rm -f "$R/etc/firstboot/firstboot.conf"
mkfifo "$R/etc/firstboot/firstboot.conf"
bad=""
for cmd in "run --user-data $T/b.tgz --instance-id i-1" "plan --user-data $T/b.tgz" status clean "query --datasource file --user-data $T/b.tgz"; do
	rc=0
	# shellcheck disable=SC2086 # the command's words
	timeout 20 "$FIRSTBOOT" $cmd --root "$R" >"$T/out" 2>"$T/err" || rc=$?
	{ [ $rc = 1 ] && grep -q 'firstboot.conf' "$T/err"; } || bad="$bad [$cmd: exit $rc: $(tail -n 2 "$T/err")]"
done
if [ -z "$bad" ] && [ ! -e "$R/var/lib/firstboot/ready" ]; then t_pass; else t_fail "$bad"; fi

t_case "run: /etc/firstboot a link out of the root: the host's firstboot.conf is not read (the defaults are)"
R=$T/conf-link
new_root "$R"
mkdir -p "$T/hostetc"
printf 'state_dir: /var/lib/from-host\n' >"$T/hostetc/firstboot.conf"
rm -rf "$R/etc/firstboot"
mkdir -p "$R/etc"
ln -s "$T/hostetc" "$R/etc/firstboot"
rc=0
fb_run "$R" --user-data "$T/b.tgz" --instance-id i-1 >"$T/out" 2>"$T/err" || rc=$?
if [ $rc = 0 ] && [ -e "$R/var/lib/firstboot/ready" ] && [ ! -e "$R/var/lib/from-host" ] && sentinel_same; then t_pass; else
	t_fail "exit $rc: $(tail -n 3 "$T/err")"
fi

t_case "status, analyze: a FIFO where run.lock is, the status 'running': no hang, exit 1 naming the lock"
status_root st-lockfifo
sed -i 's/"state": *"ready"/"state": "running"/' "$R/var/lib/firstboot/status.json"
rm -f "$R/var/lib/firstboot/run.lock"
mkfifo "$R/var/lib/firstboot/run.lock"
rc_s=0 rc_a=0
timeout 20 "$FIRSTBOOT" status --root "$R" >"$T/out" 2>"$T/err" || rc_s=$?
timeout 20 "$FIRSTBOOT" analyze --root "$R" >"$T/out2" 2>"$T/err2" || rc_a=$?
if grep -q '"state": "running"' "$R/var/lib/firstboot/status.json" && [ $rc_s = 1 ] && grep -q 'run.lock' "$T/err" &&
	[ $rc_a != 124 ]; then t_pass; else
	t_fail "status exit $rc_s ($(cat "$T/err")), analyze exit $rc_a ($(cat "$T/err2"))"
fi
