#!/bin/bash
# The module contract: exit codes 1/2/3, retries with backoff only for 2,
# timeouts that kill the whole process group, dependency failures,
# masking of sensitive inputs, and resuming after a crash.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

# bundle NAME: a bundle dir $T/NAME with bundle.yaml listing the modules
# given after it (each "id" or "id:inputs-yaml").
bundle() {
	local b=$T/$1
	shift
	mkdir -p "$b"
	{
		printf 'version: 1\nname: %s\nmodules:\n' "$(basename "$b")"
		for m in "$@"; do printf '  - id: %s\n' "$m"; done
	} >"$b/bundle.yaml"
}
pack() { "$TOP/tests/e2e/mkbundle.sh" "$T/$1" "$T/$1.tgz"; }
mstate() { json_get "$1/var/lib/firstboot/status.json" "[m for m in j['modules'] if m['id']=='$2'][0]$3"; }

t_case "exit 1 and 3 are not retried; the run fails without a marker"
R=$T/r1
new_root "$R"
bundle c1 v1 c3
mkmodule "$T/c1" v1 '' <<<$'#!/bin/sh\necho bad input >&2\nexit 1'
mkmodule "$T/c1" c3 '' <<<$'#!/bin/sh\nexit 3'
pack c1
if expect_rc 1 fb_run "$R" --user-data "$T/c1.tgz" && [ ! -e "$R/var/lib/firstboot/ready" ] &&
	[ "$(mstate "$R" v1 "['attempts']")" = 1 ] && [ "$(mstate "$R" c3 "['attempts']")" = 1 ] &&
	[ "$(mstate "$R" c3 "['exit_code']")" = 3 ] && expect_rc 1 "$FIRSTBOOT" status --root "$R"; then t_pass; else t_fail "retried or marker"; fi

t_case "exit 2 is retried with backoff, bounded by module_attempts"
R=$T/r2
new_root "$R"
bundle c2 flaky always2
mkmodule "$T/c2" flaky '' <<'EOS'
#!/bin/sh
n=$(cat "$FIRSTBOOT_ROOT/n" 2>/dev/null || echo 0)
echo $((n + 1)) > "$FIRSTBOOT_ROOT/n"
[ "$FIRSTBOOT_ATTEMPT" -ge 2 ] && exit 0
exit 2
EOS
mkmodule "$T/c2" always2 '' <<<$'#!/bin/sh\ndate +%s%N >> "$FIRSTBOOT_ROOT/times"\nexit 2'
pack c2
mkdir -p "$R/etc/firstboot"
printf 'module_attempts: 4\nretry_backoff_ms: 100\n' >"$R/etc/firstboot/firstboot.conf"
if expect_rc 1 fb_run "$R" --user-data "$T/c2.tgz" && [ "$(cat "$R/n")" = 2 ] &&
	[ "$(mstate "$R" flaky "['state']")" = "done" ] && [ "$(wc -l <"$R/times")" = 4 ] &&
	[ "$(mstate "$R" always2 "['attempts']")" = 4 ]; then
	# The gaps grow: 100, 200, 400 ms (at least).
	if python3 -c 'import sys; t=[int(x) for x in open(sys.argv[1])]; g=[(b-a)/1e6 for a,b in zip(t,t[1:])]; sys.exit(0 if g[0]>=90 and g[1]>=190 and g[2]>=390 else 1)' "$R/times"; then t_pass; else t_fail "backoff gaps"; fi
else t_fail "retry count"; fi

t_case "a hanging module is killed with its children after timeout_seconds (124)"
R=$T/r3
new_root "$R"
bundle c3b hang
mkmodule "$T/c3b" hang 'timeout_seconds: 1' <<'EOS'
#!/bin/bash
sleep 1000 &
echo $! > "$FIRSTBOOT_ROOT/child.pid"
wait
EOS
pack c3b
if expect_rc 1 fb_run "$R" --user-data "$T/c3b.tgz" && [ "$(mstate "$R" hang "['exit_code']")" = 124 ] &&
	wait_for 10 proc_gone "$(cat "$R/child.pid")"; then t_pass; else t_fail "not killed"; fi

t_case "a module that ignores TERM is killed with KILL"
R=$T/r4
new_root "$R"
bundle c4 stubborn
mkmodule "$T/c4" stubborn 'timeout_seconds: 1' <<'EOS'
#!/bin/bash
trap '' TERM
echo $$ > "$FIRSTBOOT_ROOT/pid"
# 60 s at most (then it says it survived): a runner that never sends KILL
# fails the case instead of hanging the test.
i=0
while [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
touch "$FIRSTBOOT_ROOT/survived"
EOS
pack c4
if expect_rc 1 fb_run "$R" --user-data "$T/c4.tgz" && [ "$(mstate "$R" stubborn "['exit_code']")" = 124 ] &&
	wait_for 10 proc_gone "$(cat "$R/pid")" && [ ! -e "$R/survived" ]; then t_pass; else t_fail "survived"; fi

t_case "a failed module skips what requires it; independent modules still run"
R=$T/r5
new_root "$R"
bundle c5 base app indep
mkmodule "$T/c5" base '' <<<$'#!/bin/sh\nexit 3'
mkmodule "$T/c5" app 'requires: [base]' <<<$'#!/bin/sh\ntouch "$FIRSTBOOT_ROOT/app.ran"'
mkmodule "$T/c5" indep 'after: [base]' <<<$'#!/bin/sh\ntouch "$FIRSTBOOT_ROOT/indep.ran"'
pack c5
if expect_rc 1 fb_run "$R" --user-data "$T/c5.tgz" --instance-id i-5 && [ ! -e "$R/app.ran" ] && [ -e "$R/indep.ran" ] &&
	[ "$(mstate "$R" app "['state']")" = skipped ]; then t_pass; else t_fail "deps"; fi

t_case "a failed module runs again on the next run; done ones do not"
printf '#!/bin/sh\nexit 0\n' >"$T/c5/modules/base/install.sh"
pack c5
if expect_rc 0 fb_run "$R" --user-data "$T/c5.tgz" --instance-id i-5 && [ -e "$R/app.ran" ] && [ -f "$R/var/lib/firstboot/ready" ] &&
	[ "$(mstate "$R" indep "['ran']")" = False ]; then t_pass; else t_fail "rerun"; fi

t_case "sensitive inputs are masked in logs"
R=$T/r6
new_root "$R"
mkdir -p "$T/c6"
printf 'version: 1\nname: c6\nmodules:\n  - id: sec\n    inputs: {password: "hunter2-XYZ", api_key: "k3y-ABC"}\n' >"$T/c6/bundle.yaml"
mkmodule "$T/c6" sec 'inputs:
  - {name: password, type: password, required: true}
  - {name: api_key, type: string, sensitive: true}' <<'EOS'
#!/bin/sh
echo "password is $PASSWORD and key $API_KEY"
echo "stderr $PASSWORD" >&2
[ "$PASSWORD" = "hunter2-XYZ" ] || exit 1
EOS
pack c6
if expect_rc 0 fb_run "$R" --user-data "$T/c6.tgz" && ! grep -rq 'hunter2-XYZ\|k3y-ABC' "$R/var/log/firstboot" "$R/var/lib/firstboot/status.json" "$T/err" &&
	grep -q 'password is \*\*\*\*\*\*\*\* and key \*\*\*\*\*\*\*\*' "$R/var/log/firstboot/sec.log"; then t_pass; else t_fail "leaked"; fi

t_case "a crash mid-run resumes: done modules are not run again"
R=$T/r7
new_root "$R"
bundle c7 one two
mkmodule "$T/c7" one '' <<<$'#!/bin/sh\necho x >> "$FIRSTBOOT_ROOT/one.count"'
mkmodule "$T/c7" two '' <<'EOS'
#!/bin/sh
echo x >> "$FIRSTBOOT_ROOT/two.count"
[ -e "$FIRSTBOOT_ROOT/go" ] && exit 0
echo $$ > "$FIRSTBOOT_ROOT/two.pid"
touch "$FIRSTBOOT_ROOT/two.started"
sleep 1000
EOS
pack c7
fb_conf "$R"
"$FIRSTBOOT" run --root "$R" --user-data "$T/c7.tgz" >"$T/crash.log" 2>&1 &
pid=$!
if wait_for 20 test -e "$R/two.started"; then
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	kill -9 -- "-$(cat "$R/two.pid")" 2>/dev/null
	st=$("$FIRSTBOOT" status --root "$R")
	touch "$R/go"
	if grep -q 'state: dead' <<<"$st" && expect_rc 0 fb_run "$R" --user-data "$T/c7.tgz" &&
		[ "$(wc -l <"$R/one.count")" = 1 ] && [ "$(wc -l <"$R/two.count")" = 2 ]; then t_pass; else t_fail "resume: $st"; fi
else
	kill -9 "$pid"
	t_fail "module two never started"
fi

t_case "a second run while one is in progress is refused"
R=$T/r8
new_root "$R"
bundle c8 slow
mkmodule "$T/c8" slow '' <<<$'#!/bin/sh\ntouch "$FIRSTBOOT_ROOT/started"\nwhile [ ! -e "$FIRSTBOOT_ROOT/stop" ]; do sleep 0.05; done'
pack c8
fb_run "$R" --user-data "$T/c8.tgz" >/dev/null 2>&1 &
pid=$!
# status names a module once it has run 50 ms: asked until it does.
running_slow() { [[ $("$FIRSTBOOT" status --root "$R" 2>/dev/null) == *"running: slow"* ]]; }
if wait_for 20 test -e "$R/started" && expect_rc 1 fb_run "$R" --user-data "$T/c8.tgz" && grep -q 'Another firstboot run' "$T/err" &&
	wait_for 10 running_slow && expect_rc 2 "$FIRSTBOOT" status --root "$R"; then t_pass; else t_fail "no lock: $(cat "$T/out" "$T/err")"; fi
touch "$R/stop"
wait "$pid"
