#!/bin/bash
# modules/_lib/firstboot-module.sh, the helpers the stack modules source:
# each function's success and failure paths on a temporary root, with
# hostile roots (links out of the root, absolute, relative and nested, a
# loop, a link in place of the file), names with spaces and newlines, a
# run killed in the middle of a write, FIFOs where a file should be, and a
# module whose library is missing (by hand, from a bundle through the
# agent, and what imagegen render and bake ship).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

LIB=$TOP/modules/_lib/firstboot-module.sh
NL=$'\n'
cat >"$T/drive.sh" <<'EOF'
# Runs the code in $1 with the library sourced, as a module would.
set -euo pipefail
. "$FB_LIB"
code=$1
shift
eval "$code"
EOF
# drive ROOT CODE [ARG...]: CODE (ARG... its $1...) with the library on
# ROOT; output in $T/out and $T/err, returns its status.
drive() {
	local root=$1
	shift
	FIRSTBOOT_ROOT=$root FB_LIB=$LIB timeout 20 bash "$T/drive.sh" "$@" >"$T/out" 2>"$T/err"
}
# fresh NAME: R=a new root, and O=a folder outside it.
fresh() {
	R=$T/$1
	O=$T/$1-outside
	new_root "$R"
	mkdir -p "$O"
}
# no_temps DIR: no temporary file of put_file is left in DIR.
no_temps() { [ -z "$(find "$1" -name '*.fbtmp.*' 2>/dev/null)" ]; }
fb_mode() { stat -c '%a %u:%g' -- "$1"; }
# fails CODE CMD...: CMD exits with CODE.
fails() {
	local want=$1 rc=0
	shift
	"$@" || rc=$?
	[ "$rc" = "$want" ]
}

# ---- sourcing -----------------------------------------------------------

t_case "run directly instead of sourced: exit 1 with a message"
if ! bash "$LIB" >"$T/out" 2>"$T/err" && grep -q 'source it from' "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "die: the code and the message (with FB_PREFIX) on stderr; say: stdout"
fresh d1
rc=0
drive "$R" 'FB_PREFIX="m: "; say hello; die 4 "bad thing"' || rc=$?
if [ $rc = 4 ] && [ "$(cat "$T/out")" = "m: hello" ] && [ "$(cat "$T/err")" = "m: bad thing" ]; then t_pass; else
	t_fail "rc $rc out $(cat "$T/out") err $(cat "$T/err")"
fi

t_case "R: FIRSTBOOT_ROOT without its trailing slash; empty for /"
fresh d2
if drive "$R/" 'echo "[$R]"' && [ "$(cat "$T/out")" = "[$R]" ] &&
	drive / 'echo "[$R]"' && [ "$(cat "$T/out")" = "[]" ]; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

# ---- put_file -----------------------------------------------------------

t_case "put_file: a new file with its mode and owner, atomically from a temp in its folder"
fresh p1
# The check runs on the temporary file: it records where it is and how.
cat >"$T/check" <<'EOF'
#!/bin/bash
printf '%s\n' "$1" >"$CHECK_LOG"
stat -c '%a %u:%g' -- "$1" >>"$CHECK_LOG"
EOF
chmod +x "$T/check"
export CHECK_LOG=$T/check.log
if printf 'a=1\n' | drive "$R" 'put_file "$R/etc/app/conf" 0640 65534:65534 "$1"; echo "changed=$FILE_CHANGED"' "$T/check" &&
	[ "$(cat "$R/etc/app/conf")" = a=1 ] && [ "$(fb_mode "$R/etc/app/conf")" = "640 65534:65534" ] &&
	grep -qx 'changed=1' "$T/out" && grep -qx 'wrote /etc/app/conf' "$T/out" &&
	[[ $(head -n1 "$CHECK_LOG") =~ ^$R/etc/app/conf\.fbtmp\.[A-Za-z0-9]{6}$ ]] &&
	[ "$(sed -n 2p "$CHECK_LOG")" = "640 65534:65534" ] && no_temps "$R"; then t_pass; else
	t_fail "$(cat "$T/out" "$T/err" "$CHECK_LOG")"
fi

t_case "put_file: the same content, mode and owner again: nothing replaced, FILE_CHANGED=0"
ino=$(stat -c %i "$R/etc/app/conf")
if printf 'a=1\n' | drive "$R" 'put_file "$R/etc/app/conf" 0640 65534:65534; echo "changed=$FILE_CHANGED"' &&
	grep -qx 'changed=0' "$T/out" && [ "$(stat -c %i "$R/etc/app/conf")" = "$ino" ] && no_temps "$R"; then t_pass; else
	t_fail "$(cat "$T/out" "$T/err")"
fi

t_case "put_file: only the mode differs: replaced, FILE_CHANGED=1"
if printf 'a=1\n' | drive "$R" 'put_file "$R/etc/app/conf" 0600 65534:65534; echo "changed=$FILE_CHANGED"' &&
	grep -qx 'changed=1' "$T/out" && [ "$(fb_mode "$R/etc/app/conf")" = "600 65534:65534" ]; then t_pass; else
	t_fail "$(cat "$T/out" "$T/err")"
fi

t_case "put_file: MODE and OWNER '-' keep the file's (set-id bits too)"
printf 'old\n' >"$R/etc/app/tool"
chown 65534:65534 "$R/etc/app/tool"
chmod 2751 "$R/etc/app/tool"
if printf 'new\n' | drive "$R" 'put_file "$R/etc/app/tool" - -' && [ "$(cat "$R/etc/app/tool")" = new ] &&
	[ "$(fb_mode "$R/etc/app/tool")" = "2751 65534:65534" ]; then t_pass; else t_fail "$(fb_mode "$R/etc/app/tool") $(cat "$T/err")"; fi

t_case "put_file: MODE '-' for a file that is not there: exit 3, nothing made"
if fails 3 drive "$R" 'put_file "$R/etc/app/none" -' < <(printf 'x\n') && grep -q 'no mode to keep' "$T/err" &&
	[ ! -e "$R/etc/app/none" ] && no_temps "$R"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "put_file: a mode that is not octal: exit 3, nothing made"
if fails 3 drive "$R" 'put_file "$R/etc/app/bad" 0x644' < <(printf 'x\n') && [ ! -e "$R/etc/app/bad" ] &&
	no_temps "$R"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "put_file: an owner that does not exist: exit 3, the old file kept, no temp left"
if fails 3 drive "$R" 'put_file "$R/etc/app/conf" 0600 no-such-user-x:0' < <(printf 'b=2\n') &&
	[ "$(cat "$R/etc/app/conf")" = a=1 ] && no_temps "$R"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "put_file: the check refuses: exit 3, the old file kept, no temp left, the secret in no message"
if fails 3 drive "$R" 'put_file "$R/etc/app/conf" 0600 65534:65534 false' < <(printf 'password=s3cret-Value-42\n') &&
	grep -q 'refused by false' "$T/err" && [ "$(cat "$R/etc/app/conf")" = a=1 ] && no_temps "$R" &&
	! grep -q s3cret "$T/out" "$T/err"; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "put_file: a secret written is in no message"
if printf 'password=s3cret-Value-42\n' | drive "$R" 'put_file "$R/etc/app/secret" 0600' &&
	grep -q s3cret "$R/etc/app/secret" && ! grep -q s3cret "$T/out" "$T/err" &&
	[ "$(stat -c %a "$R/etc/app/secret")" = 600 ]; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "put_file: a folder in place of the file: exit 3, the folder untouched"
mkdir -p "$R/etc/app/adir/keep"
if fails 3 drive "$R" 'put_file "$R/etc/app/adir" 0644' < <(printf 'x\n') && [ -d "$R/etc/app/adir/keep" ] &&
	no_temps "$R"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "put_file: a FIFO in place of the file: exit 3 at once, the FIFO untouched"
mkfifo "$R/etc/app/fifo"
if fails 3 drive "$R" 'put_file "$R/etc/app/fifo" 0644' < <(printf 'x\n') && [ -p "$R/etc/app/fifo" ]; then t_pass; else
	t_fail "$(cat "$T/err")"
fi

t_case "put_file: a path not under the root, or no file name: exit 3, nothing written"
if fails 3 drive "$R" 'put_file "$1/x" 0644' "$O" < <(printf 'x\n') && [ ! -e "$O/x" ] &&
	fails 3 drive "$R" 'put_file "$R/etc/app/" 0644' < <(printf 'x\n') &&
	fails 3 drive "$R" 'put_file "$R/etc/.." 0644' < <(printf 'x\n'); then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "put_file: names with spaces and newlines, in the folder and the file"
fresh p2
dir="$R/opt/a b${NL}c"
file="$dir/my file${NL}"
if printf 'spaced\n' | drive "$R" 'put_file "$1" 0644' "$file" && [ "$(cat "$file")" = spaced ] &&
	[ "$(stat -c %a "$file")" = 644 ] && no_temps "$R" &&
	printf 'again\n' | drive "$R" 'put_file "$1" 0644; echo "changed=$FILE_CHANGED"' "$file" &&
	[ "$(cat "$file")" = again ] && grep -qx 'changed=1' "$T/out"; then t_pass; else
	t_fail "$(cat "$T/err"; find "$R/opt" | cat -A)"
fi

t_case "put_file: a link named with a newline, to a folder with one, inside the root"
ln -s "a b${NL}c" "$R/opt/link${NL}"
if printf 'via link\n' | drive "$R" 'put_file "$1" 0644' "$R/opt/link${NL}/f" && [ "$(cat "$dir/f")" = "via link" ] &&
	[ -L "$R/opt/link${NL}" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "put_file: /etc an absolute link out of the root: written inside the root where it points, nothing outside"
fresh p3
rm -rf "${R:?}/etc"
ln -s "$O" "$R/etc"
if printf 'x\n' | drive "$R" 'put_file "$R/etc/app/conf" 0644' && [ -z "$(ls -A "$O")" ] &&
	[ "$(cat "$R$O/app/conf")" = x ] && [ -L "$R/etc" ]; then t_pass; else t_fail "$(cat "$T/err"; find "$O" "$R")"; fi

t_case "put_file: a relative link climbing out (../../../..): kept at the root, nothing outside"
fresh p4
mkdir -p "$R/opt"
ln -s ../../../../../../.. "$R/opt/up"
before=$(find "$T" -maxdepth 1 | sort)
if printf 'x\n' | drive "$R" 'put_file "$R/opt/up/escaped" 0644' && [ "$(cat "$R/escaped")" = x ] &&
	[ ! -e "$T/escaped" ] && [ ! -e /escaped ] && [ "$(find "$T" -maxdepth 1 | sort)" = "$before" ]; then t_pass; else
	t_fail "$(cat "$T/err")"
fi

t_case "put_file: nested links (a relative one to an absolute one out): nothing outside"
fresh p5
mkdir -p "$R/srv/b"
ln -s b "$R/srv/a"
ln -s "$O/deep" "$R/srv/b/c"
if printf 'x\n' | drive "$R" 'put_file "$R/srv/a/c/d/f" 0644' && [ -z "$(ls -A "$O")" ] &&
	[ "$(cat "$R$O/deep/d/f")" = x ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "put_file: a link in place of the file is replaced, the file it pointed to (outside) untouched"
fresh p6
printf 'host\n' >"$O/hostfile"
mkdir -p "$R/etc/app"
ln -s "$O/hostfile" "$R/etc/app/conf"
if printf 'mine\n' | drive "$R" 'put_file "$R/etc/app/conf" 0644' && [ "$(cat "$O/hostfile")" = host ] &&
	[ ! -L "$R/etc/app/conf" ] && [ "$(cat "$R/etc/app/conf")" = mine ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "put_file: a loop of links: exit 3, nothing written"
fresh p7
ln -s loop2 "$R/loop1"
ln -s loop1 "$R/loop2"
if fails 3 drive "$R" 'put_file "$R/loop1/f" 0644' < <(printf 'x\n') && grep -q 'more than 40 links' "$T/err"; then t_pass; else
	t_fail "$(cat "$T/err")"
fi

t_case "put_file: a run killed while writing leaves a temp; the next write removes it"
fresh p8
mkdir -p "$R/etc/app"
mkfifo "$T/slow"
FIRSTBOOT_ROOT=$R FB_LIB=$LIB bash "$T/drive.sh" 'put_file "$R/etc/app/big" 0600' <"$T/slow" >/dev/null 2>&1 &
victim=$!
exec 7>"$T/slow"
printf 'partial' >&7
wait_for 5 sh -c "ls '$R/etc/app' | grep -q 'big.fbtmp.'" || true
kill -9 "$victim"
wait "$victim" 2>/dev/null
exec 7>&-
left=$(find "$R/etc/app" -name 'big.fbtmp.*' | wc -l)
if [ "$left" = 1 ] && [ ! -e "$R/etc/app/big" ] && printf 'whole\n' | drive "$R" 'put_file "$R/etc/app/big" 0600' &&
	[ "$(cat "$R/etc/app/big")" = whole ] && no_temps "$R"; then t_pass; else t_fail "left $left: $(cat "$T/err")"; fi

# ---- make_dir, in_root ---------------------------------------------------

t_case "make_dir: parents made, MODE on the last; through a link out: inside the root"
fresh m1
ln -s "$O" "$R/data"
if drive "$R" 'make_dir "$R/var/lib/x/y" 0700; make_dir "$R/data/z"' && [ "$(stat -c %a "$R/var/lib/x/y")" = 700 ] &&
	[ -d "$R$O/z" ] && [ -z "$(ls -A "$O")" ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "make_dir: a file in the way: exit 3"
touch "$R/var/lib/file"
if fails 3 drive "$R" 'make_dir "$R/var/lib/file/sub"'; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "in_root: '..' stops at the root; a path outside it is refused"
if drive "$R" 'in_root "$R/../../etc/../../x"; printf "%s\n" "$IN_ROOT"' && [ "$(cat "$T/out")" = "$R/x" ] &&
	! drive "$R" 'in_root "$1/x"' "$O" && grep -q 'is not under the root' "$T/err" &&
	! drive "$R" 'in_root "${R}x/y"' && ! drive / 'in_root "relative/x"'; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

# ---- root_entry, set_mode, remove_file -----------------------------------

t_case "set_mode: the mode of a file and a folder inside the root, through a folder link out: inside the root"
fresh sm1
mkdir -p "$R/srv/d" "$R$O"
touch "$R/srv/f" "$R$O/f" "$O/f"
chmod 0644 "$O/f"
ln -s "$O" "$R/srv/out"
if drive "$R" 'set_mode "$R/srv/f" 0600; set_mode "$R/srv/d" 0700; set_mode "$R/srv/out/f" 0755' &&
	[ "$(stat -c %a "$R/srv/f")" = 600 ] && [ "$(stat -c %a "$R/srv/d")" = 700 ] &&
	[ "$(stat -c %a "$R$O/f")" = 755 ] && [ "$(stat -c %a "$O/f")" = 644 ]; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "set_mode: a link at the path (to a file outside, or inside the root): exit 3, what it points to unchanged"
ln -s "$O/f" "$R/srv/lnk"
ln -s /srv/f "$R/srv/lnk2"
if fails 3 drive "$R" 'set_mode "$R/srv/lnk" 0777' && grep -q '/srv/lnk is a symbolic link' "$T/err" &&
	fails 3 drive "$R" 'set_mode "$R/srv/lnk2" 0777' && [ "$(stat -c %a "$O/f")" = 644 ] &&
	[ "$(stat -c %a "$R/srv/f")" = 600 ] && fails 3 drive "$R" 'set_mode "$R/srv/nope" 0600' &&
	grep -q 'does not exist' "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "remove_file: a file goes; a link goes as a link; through a folder link out: inside the root; a folder: exit 3"
touch "$R$O/g" "$O/g"
if drive "$R" 'remove_file "$R/srv/f"; remove_file "$R/srv/lnk"; remove_file "$R/srv/out/g"; remove_file "$R/srv/none"' &&
	[ ! -e "$R/srv/f" ] && [ ! -L "$R/srv/lnk" ] && [ -f "$O/f" ] && [ ! -e "$R$O/g" ] && [ -f "$O/g" ] &&
	fails 3 drive "$R" 'remove_file "$R/srv/d"' && grep -q 'is a folder' "$T/err" && [ -d "$R/srv/d" ] &&
	fails 3 drive "$R" 'remove_file "$R/srv/.."'; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "root_entry: the last component not followed, on a root and on /"
if drive "$R" 'root_entry "$R/srv/out/x"; printf "%s\n" "$ROOT_ENTRY"' && [ "$(cat "$T/out")" = "$R$O/x" ] &&
	drive "$R" 'root_entry "$R/srv/lnk2"; printf "%s\n" "$ROOT_ENTRY"' && [ "$(cat "$T/out")" = "$R/srv/lnk2" ] &&
	drive / 'root_entry /etc/hostname; printf "%s\n" "$ROOT_ENTRY"' && [ "$(cat "$T/out")" = "$(cd /etc && pwd -P)/hostname" ]; then t_pass; else
	t_fail "$(cat "$T/out" "$T/err")"
fi

# ---- read_state, record_state ---------------------------------------------

t_case "read_state/record_state: none is empty; recorded 0600 root's and read back; a link there out of the root, or a FIFO: read inside the root (empty, no hang)"
fresh st1
S=/var/lib/firstboot-stack/state
printf 'host\n' >"$O/sum"
if drive "$R" 'read_state x.sha256; echo "[$STATE_VALUE]"; record_state x.sha256 abc; read_state x.sha256; echo "[$STATE_VALUE]"' &&
	[ "$(grep "^\[" "$T/out")" = "[]${NL}[abc]" ] && [ "$(fb_mode "$R$S/x.sha256")" = "600 0:0" ] &&
	ln -s "$O/sum" "$R$S/out.sha256" && mkfifo "$R$S/fifo.sha256" &&
	drive "$R" 'read_state out.sha256; echo "[$STATE_VALUE]"; read_state fifo.sha256; echo "[$STATE_VALUE]"' &&
	[ "$(cat "$T/out")" = "[]${NL}[]" ]; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

# ---- root_file, passwd_field, in_group ------------------------------------

t_case "passwd_field and in_group read the root's files"
fresh u1
printf 'deploy:x:1000:1000::/home/deploy:/bin/bash\n' >>"$R/etc/passwd"
printf 'sudo:x:27:alice,deploy\n' >>"$R/etc/group"
if drive "$R" 'passwd_field deploy 3; passwd_field deploy 6; echo "[$(passwd_field ghost 3)]"; in_group deploy sudo && echo yes; in_group root sudo || echo no' &&
	[ "$(cat "$T/out")" = "1000${NL}/home/deploy${NL}[]${NL}yes${NL}no" ]; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "passwd_field: /etc a link to the host's /etc: the host's passwd is not read (exit 3)"
fresh u2
rm -rf "${R:?}/etc"
ln -s /etc "$R/etc"
if fails 3 drive "$R" 'passwd_field root 3' && [ ! -s "$T/out" ] && grep -q 'passwd' "$T/err"; then t_pass; else
	t_fail "$(cat "$T/out" "$T/err")"
fi

t_case "passwd_field and in_group: a FIFO in place of the file: exit 3 at once, no hang"
fresh u3
rm -f "$R/etc/passwd" "$R/etc/group"
mkfifo "$R/etc/passwd" "$R/etc/group"
if fails 3 drive "$R" 'passwd_field root 3' && grep -q 'not a regular file' "$T/err" &&
	fails 3 drive "$R" 'in_group root root'; then t_pass; else t_fail "$(cat "$T/err")"; fi

# ---- commands: user_tool, packages, services, compose --------------------

# Fake commands first on PATH: each records its argv; FAKE_FAIL names
# those that fail.
B=$T/bin
mkdir -p "$B"
for c in useradd dpkg-query apt-get systemctl docker docker-compose; do
	cat >"$B/$c" <<'EOF'
#!/bin/bash
printf '%s %s\n' "${0##*/}" "$*" >>"$FAKE_LOG"
case " $FAKE_FAIL " in *" ${0##*/} "* | *" ${0##*/}:$1 "*) exit 1 ;; esac
if [ "${0##*/}" = dpkg-query ]; then printf '%s\n' "$FAKE_INSTALLED"; fi
if [ "${0##*/}" = systemctl ] && [ "$1" = is-enabled ]; then exit 1; fi
exit 0
EOF
	chmod +x "$B/$c"
done
export FAKE_LOG=$T/fake.log FAKE_FAIL="" FAKE_INSTALLED=""
fdrive() { : >"$FAKE_LOG"; PATH=$B:$PATH drive "$@"; }

t_case "user_tool: --prefix ROOT on a root, none on /"
fresh c1
if fdrive "$R" 'user_tool useradd --system x' && grep -qxF "useradd --prefix $R --system x" "$FAKE_LOG" &&
	fdrive / 'user_tool useradd x' && grep -qx 'useradd x' "$FAKE_LOG"; then t_pass; else t_fail "$(cat "$FAKE_LOG")"; fi

t_case "missing_packages and ensure_packages: only the missing ones installed"
FAKE_INSTALLED="curl installed"
if fdrive "$R" 'missing_packages curl jq; ensure_packages curl jq' && [ "$(head -n1 "$T/out")" = jq ] &&
	grep -q '^apt-get .* update$' "$FAKE_LOG" && grep -q '^apt-get .* install --no-install-recommends jq$' "$FAKE_LOG" &&
	FAKE_INSTALLED="curl installed${NL}jq installed" fdrive "$R" 'ensure_packages curl jq' &&
	! grep -q '^apt-get' "$FAKE_LOG"; then t_pass; else t_fail "$(cat "$T/out" "$FAKE_LOG")"; fi

t_case "ensure_packages: apt-get fails: exit 2 (retried)"
if FAKE_INSTALLED="" FAKE_FAIL=apt-get fails 2 fdrive "$R" 'ensure_packages jq' &&
	grep -q 'apt-get update failed' "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "ensure_service: enabled and started; a unit that does not start: exit 3"
if FAKE_FAIL=systemctl:is-active fdrive "$R" 'ensure_service nginx 1 reload' && grep -qx 'systemctl enable nginx' "$FAKE_LOG" &&
	grep -qx 'systemctl start nginx' "$FAKE_LOG" &&
	FAKE_FAIL="systemctl:start systemctl:is-active" fails 3 fdrive "$R" 'ensure_service nginx 0 reload' &&
	grep -q 'nginx does not start' "$T/err"; then t_pass; else t_fail "$(cat "$FAKE_LOG" "$T/err")"; fi

t_case "find_compose: the plugin, else docker-compose, else status 1"
if fdrive "$R" 'find_compose; echo "${compose[*]}"' && [ "$(cat "$T/out")" = "docker compose" ] &&
	FAKE_FAIL=docker fdrive "$R" 'find_compose; echo "${compose[*]}"' && [ "$(cat "$T/out")" = docker-compose ] &&
	FAKE_FAIL="docker docker-compose" fdrive "$R" 'find_compose || echo none' && [ "$(cat "$T/out")" = none ]; then t_pass; else
	t_fail "$(cat "$T/out" "$T/err")"
fi

# ---- where modules find it ------------------------------------------------

t_case "every stack module sources it, and runs by hand from the repository"
ok=1
for m in base docker postgres redis nginx colonyos compose-up update node backup agent-manager jobs-agent; do
	grep -q '_lib/firstboot-module.sh' "$TOP/modules/$m/install.sh" || ok=0
	# Bad input is refused after the library loaded (exit 1 with the module's message).
	(cd "$TOP/modules/$m" && FIRSTBOOT_ROOT=$T/none MODE=bad SCRIPT=rel COMPOSE_FILE=rel DEPLOY_USER=root \
		CONFIG_PATH=rel DB_NAME='bad name' timeout 20 bash install.sh </dev/null >"$T/out" 2>"$T/err") && ok=0
	grep -q 'firstboot-module.sh' "$T/err" && ok=0
done
if [ $ok = 1 ]; then t_pass; else t_fail "$m: $(cat "$T/err")"; fi

t_case "a module without the library beside it: exit 1, saying what is missing"
mkdir -p "$T/alone/update"
cp "$TOP/modules/update/install.sh" "$T/alone/update/"
if fails 1 eval '(cd "$T" && FIRSTBOOT_ROOT=$T/none bash alone/update/install.sh </dev/null >"$T/out" 2>"$T/err")' &&
	grep -q '_lib/firstboot-module.sh is missing' "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "through the agent: a bundle shipping a module without the library fails, no ready marker"
fresh a1
b=$T/a1-bundle
mkdir -p "$b/modules"
cp -r "$TOP/modules/update" "$b/modules/"
printf 'version: 1\nname: t\nmodules:\n  - {id: update}\n' >"$b/bundle.yaml"
"$TOP/tests/e2e/mkbundle.sh" "$b" "$T/a1.tar.gz"
if ! fb_run "$R" --datasource file --user-data "$T/a1.tar.gz" >"$T/out" 2>"$T/err" &&
	[ ! -e "$R/var/lib/firstboot/ready" ] && grep -q 'firstboot-module.sh is missing' "$R/var/log/firstboot/update.log"; then t_pass; else
	t_fail "$(tail -n 5 "$T/err")"
fi

t_case "through the agent: with modules/_lib/ in the bundle the module runs it"
cp -r "$TOP/modules/_lib" "$b/modules/"
mkdir -p "$R/usr/local/sbin"
printf '#!/bin/bash\ntrue\n' >"$R/usr/local/sbin/update_server.sh"
"$TOP/tests/e2e/mkbundle.sh" "$b" "$T/a2.tar.gz"
if PATH=$B:$PATH fb_run "$R" --datasource file --user-data "$T/a2.tar.gz" >"$T/out" 2>"$T/err" &&
	[ -e "$R/var/lib/firstboot/ready" ] && [ -f "$R/etc/systemd/system/firstboot-update.service" ]; then t_pass; else
	t_fail "$(tail -n 5 "$T/err")"
fi

t_case "imagegen render ships modules/_lib/ with the modules"
IG=${IMAGEGEN:-$TOP/build/imagegen}
mkdir -p "$T/site"
cat >"$T/site/site.yaml" <<'EOF'
name: t
hostname: t-1
provider: nocloud
modules:
  update: {}
EOF
if "$IG" render "$T/site/site.yaml" --modules-dir "$TOP/modules" -o "$T/rendered" >"$T/out" 2>"$T/err" &&
	cmp -s "$T/rendered/modules/_lib/firstboot-module.sh" "$LIB" &&
	grep -q '^  modules/_lib/firstboot-module.sh: ' "$T/rendered/bundle.yaml"; then t_pass; else
	t_fail "$(cat "$T/err") $(find "$T/rendered" | head)"
fi

t_case "imagegen render: a shipped module that sources _lib/ from a modules dir without it: refused"
mkdir -p "$T/mods"
cp -r "$TOP/modules/update" "$T/mods/"
if ! "$IG" render "$T/site/site.yaml" --modules-dir "$T/mods" -o "$T/rendered2" >"$T/out" 2>"$T/err" &&
	grep -q '_lib/, which is missing' "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "imagegen bake installs modules/_lib/ beside the modules (0644); the module runs from there"
fresh k1
# The agent's libraries as stand-ins (bake only looks for them).
lib=$R/usr/lib/$(cc -print-multiarch)
mkdir -p "$R/usr/bin" "$lib"
for so in libyaml-0.so.2 libjson-c.so.5 libz.so.1 libpcre2-8.so.0 libsodium.so.23; do : >"$lib/$so"; done
if "$IG" bake --modules-dir "$TOP/modules" --firstboot "$FIRSTBOOT" --rootfs "$R" -q >"$T/out" 2>"$T/err" &&
	cmp -s "$R/usr/lib/firstboot/modules/_lib/firstboot-module.sh" "$LIB" &&
	[ "$(stat -c %a "$R/usr/lib/firstboot/modules/_lib/firstboot-module.sh")" = 644 ] &&
	[ -x "$R/usr/lib/firstboot/modules/update/install.sh" ] &&
	! FIRSTBOOT_ROOT=$R SCRIPT=rel bash "$R/usr/lib/firstboot/modules/update/install.sh" </dev/null >"$T/out" 2>"$T/err" &&
	grep -q 'update: script must be an absolute path' "$T/err"; then t_pass; else
	t_fail "$(cat "$T/err"; find "$R/usr/lib/firstboot" | head)"
fi
