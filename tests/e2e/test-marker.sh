#!/bin/bash
# The ready marker across instances: a bundle's own ready_marker left by
# the previous instance is gone before the new instance's modules run, and
# the marker always names this instance exactly, untouched by a rerun.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

B=$T/b
mkdir -p "$B"
cat >"$B/bundle.yaml" <<'EOY'
version: 1
name: marker
ready_marker: /var/lib/app/ready
modules:
  - id: check
EOY
# Fails when a marker is there while it runs: nothing may say ready yet.
mkmodule "$B" check '' <<'EOS'
#!/bin/sh
if [ -e "$FIRSTBOOT_ROOT/var/lib/app/ready" ]; then
	echo "marker present during the run: $(cat "$FIRSTBOOT_ROOT/var/lib/app/ready")" >&2
	exit 3
fi
EOS
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/b.tgz"
R=$T/r
new_root "$R"
M=$R/var/lib/app/ready
iid_of() { json_get "$1" 'j["instance_id"]'; }

t_case "the bundle's ready_marker is written for the instance"
if expect_rc 0 fb_run "$R" --user-data "$T/b.tgz" --instance-id i-10 && [ "$(iid_of "$M")" = i-10 ] &&
	[ ! -e "$R/var/lib/firstboot/ready" ]; then t_pass; else t_fail "marker: $(cat "$M" 2>&1)"; fi

t_case "a rerun of the same instance leaves the marker as it was"
cp "$M" "$T/marker.1"
if expect_rc 0 fb_run "$R" --user-data "$T/b.tgz" --instance-id i-10 && cmp -s "$M" "$T/marker.1"; then
	t_pass
else t_fail "marker changed: $(cat "$M" 2>&1)"; fi

t_case "a new instance: the old instance's bundle marker is gone before modules run"
if expect_rc 0 fb_run "$R" --user-data "$T/b.tgz" --instance-id i-1 && [ "$(iid_of "$M")" = i-1 ]; then
	t_pass
else t_fail "marker: $(cat "$M" 2>&1)"; fi

t_case "a marker naming another instance (i-10 contains i-1) is rewritten"
cp "$T/marker.1" "$M"
if expect_rc 0 fb_run "$R" --user-data "$T/b.tgz" --instance-id i-1 && [ "$(iid_of "$M")" = i-1 ]; then
	t_pass
else t_fail "marker: $(cat "$M" 2>&1)"; fi
