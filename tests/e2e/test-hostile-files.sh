#!/bin/bash
# The files: step fails closed. A malformed owner is a bundle error at its
# line:column, from `firstboot validate` and from `firstboot run` before
# anything is written; an owner the system being provisioned lacks (looked
# up in ROOT/etc/passwd and ROOT/etc/group, never the host's) fails the run
# with exit 1, no file written and no ready marker; a file that cannot be
# written fails it the same way. (The bug: the owner error was logged and
# its log call's 0 returned, so the run went on to "ready".)
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

NOMODS=$T/no-modules-dir
mkdir -p "$NOMODS"

# mkfiles DIR OWNER [PATH2]: a bundle whose line 5 gives /etc/app.conf that
# owner (column 72, its quote, is where the owner's value starts), then a second file
# with no owner, and a module that records that it ran.
mkfiles() {
	local b=$1 owner=$2
	mkdir -p "$b/files"
	echo "key=value" >"$b/files/app.conf"
	echo "other" >"$b/files/other"
	cat >"$b/bundle.yaml" <<EOY
version: 1
name: hostile
files:
  - {path: /etc/other, source: files/other, mode: "0644"}
  - {path: /etc/app.conf, source: files/app.conf, mode: "0640", owner: "$owner"}
modules:
  - id: touch
EOY
	mkmodule "$b" touch '' <<<$'#!/bin/sh\ntouch "$FIRSTBOOT_ROOT/module-ran"'
	"$TOP/tests/e2e/mkbundle.sh" "$b" "$b.tgz"
}

# Each malformed owner: validate names bundle.yaml:5:72; run exits 1
# before writing any file (the first file, with no owner, is not written
# either) and leaves no marker.
n=0
for owner in 'root:' ':root' '0:' 'root:root:x' ':' 'ro ot' '-x' 'a/b' '..' '4294967295' \
	'abcdefghijklmnopqrstuvwxyzabcdefghij'; do
	n=$((n + 1))
	B=$T/bad$n
	mkfiles "$B" "$owner"
	t_case "validate: owner \"$owner\" is an error at bundle.yaml:5:72"
	if expect_rc 1 "$FIRSTBOOT" validate --modules-dir "$NOMODS" "$B" &&
		grep -q "bundle.yaml:5:72: 'owner'" "$T/err" "$T/out"; then t_pass; else
		t_fail "$(cat "$T/out" "$T/err")"
	fi
	t_case "run: owner \"$owner\" exits 1 before any file is written, no marker"
	R=$T/rbad$n
	new_root "$R"
	fb_conf "$R"
	before=$(tree_snapshot "$R")
	if expect_rc 1 fb_run "$R" --user-data "$B.tgz" --instance-id i-bad &&
		grep -q "bundle.yaml:5:72: 'owner'" "$T/err" &&
		[ "$(tree_snapshot "$R")" = "$before" ] &&
		[ ! -e "$R/var/lib/firstboot/ready" ] &&
		[ "$(json_get "$R/var/lib/firstboot/status.json" 'j["state"]')" = failed ]; then
		t_pass
	else t_fail "$(cat "$T/err"; diff <(echo "$before") <(tree_snapshot "$R"))"; fi
done

# Owners that exist only on the host: the root's passwd and group are the
# ones that count. The host has "daemon" and "sys" (base-passwd); new_root
# writes a root with only root and nobody.
for owner in ghost:root daemon root:sys daemon:daemon 4242:ghost; do
	B=$T/missing-${owner//:/-}
	mkfiles "$B" "$owner"
	R=$T/rmissing-${owner//:/-}
	new_root "$R"
	t_case "run: owner \"$owner\" missing from ROOT/etc/passwd or group: exit 1, no marker, nothing written"
	if expect_rc 1 fb_run "$R" --user-data "$B.tgz" --instance-id i-missing &&
		grep -q "owner \"$owner\" does not exist in $R/etc/passwd or $R/etc/group" "$T/err" &&
		[ ! -e "$R/etc/app.conf" ] && [ ! -e "$R/etc/other" ] && [ ! -e "$R/module-ran" ] &&
		[ ! -e "$R/var/lib/firstboot/ready" ] &&
		[ "$(json_get "$R/var/lib/firstboot/status.json" 'j["state"]')" = failed ] &&
		json_get "$R/var/lib/firstboot/status.json" 'j["error"]' | grep -q "files"; then
		t_pass
	else t_fail "$(cat "$T/err")"; fi
	t_case "firstboot status after owner \"$owner\": exit 1 (failed)"
	if expect_rc 1 "$FIRSTBOOT" status --root "$R"; then t_pass; else t_fail "$(cat "$T/out")"; fi
done

# The same bundle converges once the root has the user: the rerun writes
# the file with that owner and is ready.
B=$T/missing-ghost-root
R=$T/rmissing-ghost-root
echo 'ghost:x:4242:4242::/nonexistent:/usr/sbin/nologin' >>"$R/etc/passwd"
t_case "rerun after ROOT/etc/passwd gains the user: ready, file owned by it"
if expect_rc 0 fb_run "$R" --user-data "$B.tgz" --instance-id i-missing &&
	[ "$(stat -c '%u:%g %a' "$R/etc/app.conf")" = "4242:0 640" ] &&
	[ -e "$R/var/lib/firstboot/ready" ] && [ -e "$R/module-ran" ]; then t_pass; else
	t_fail "$(cat "$T/err"; stat -c '%u:%g %a' "$R/etc/app.conf")"
fi

# Names and numbers that are fine: validate accepts them.
for owner in root root:root 0:0 1000 nobody:nogroup 'machine$' _apt www-data:www-data .hidden; do
	B=$T/good-$RANDOM
	mkfiles "$B" "$owner"
	t_case "validate: owner \"$owner\" is well formed"
	if expect_rc 0 "$FIRSTBOOT" validate --modules-dir "$NOMODS" "$B"; then t_pass; else
		t_fail "$(cat "$T/out" "$T/err")"
	fi
done

# A files: target that cannot be written (a directory where the file
# goes): exit 1, no marker, the module does not run.
B=$T/blocked
mkfiles "$B" root:root
R=$T/rblocked
new_root "$R"
mkdir -p "$R/etc/app.conf/x"
t_case "run: a file that cannot be written: exit 1, no marker, no module"
if expect_rc 1 fb_run "$R" --user-data "$B.tgz" --instance-id i-blocked &&
	[ ! -e "$R/var/lib/firstboot/ready" ] && [ ! -e "$R/module-ran" ]; then t_pass; else
	t_fail "$(cat "$T/err")"
fi
