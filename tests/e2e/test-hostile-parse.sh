#!/bin/bash
# Hostile input to the YAML reader (issue #15): 220 bytes nested 40,000
# deep once overflowed the stack (exit 139, status.json left "running");
# a NUL or a byte that is not UTF-8 was reported at 1:1; a mapping of many
# keys took minutes. Each is now exit 1 with file:line:column, no ready
# marker, and a big mapping is read in seconds (bounded by timeout 60; no
# time is asserted).
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

FIX=$TOP/tests/cases/imagegen
NOMODS=$T/no-modules
mkdir -p "$NOMODS"

# Line 1, 40,000 '[' after "KEY: ": the mapping is the first level, so
# the 101st opens 99 columns after the first '['. deep_at KEY prints where.
deep_at() { echo "1:$((${#1} + 2 + 1 + 99))"; }
deep() { python3 -c "print('$1'+'['*40000)"; }
deep 'version: ' >"$T/deep.yaml"
printf 'version: 1\nname: x\nmodules: []\nfiles: []\nhostname: a\0b\n' >"$T/nul.yaml"
printf 'version: 1\nname: x\nmodules: []\nfiles: []\nhostname: \xc3\xa9\xff\n' >"$T/utf8.yaml"

# A bundle (gzip'd tar) whose bundle.yaml is FILE.
bundle_of() {
	local b=$T/b-$2
	mkdir -p "$b"
	cp "$1" "$b/bundle.yaml"
	tar -C "$b" -czf "$T/$2.tgz" bundle.yaml
}

# run_refused NAME USERDATA PATTERN: firstboot run exits 1 (not 139) with
# PATTERN on stderr; no ready marker; status.json, if written, is not
# "running".
run_refused() {
	local name=$1 ud=$2 pattern=$3 r=$T/root-$1 st
	new_root "$r"
	t_case "run: $name"
	timeout 60 "$FIRSTBOOT" run --root "$r" --user-data "$ud" >"$T/out" 2>"$T/err"
	rc=$?
	st=$r/var/lib/firstboot/status.json
	if [ "$rc" -ne 1 ]; then
		t_fail "exit $rc, expected 1: $(head -c 300 "$T/err")"
	elif ! grep -qE -- "$pattern" "$T/err"; then
		t_fail "wanted /$pattern/, got: $(head -c 300 "$T/err")"
	elif [ -e "$r/var/lib/firstboot/ready" ]; then
		t_fail "ready marker written"
	elif [ -e "$st" ] && [ "$(json_get "$st" 'j["state"]')" = running ]; then
		t_fail "status.json says running"
	else
		t_pass
	fi
}

bundle_of "$T/deep.yaml" deep
run_refused "deeply nested bundle.yaml" "$T/deep.tgz" "bundle.yaml:$(deep_at version): nested deeper than 100 levels"
bundle_of "$T/nul.yaml" nul
run_refused "NUL on line 5" "$T/nul.tgz" 'bundle.yaml:5:12: control characters are not allowed'
bundle_of "$T/utf8.yaml" utf8
run_refused "bad UTF-8 on line 5" "$T/utf8.tgz" 'bundle.yaml:5:12: invalid leading UTF-8 octet'

# validate_refused NAME PATTERN CMD...: exit 1 and PATTERN on stderr.
validate_refused() {
	local name=$1 pattern=$2 rc
	shift 2
	t_case "$name"
	timeout 60 "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -ne 1 ]; then
		t_fail "exit $rc, expected 1: $(head -c 300 "$T/err")"
	elif ! grep -qE -- "$pattern" "$T/err"; then
		t_fail "wanted /$pattern/, got: $(head -c 300 "$T/err")"
	else
		t_pass
	fi
}

for k in deep nul utf8; do
	case $k in
	deep) what='nested deeper than 100 levels' ;;
	nul) what='control characters are not allowed' ;;
	utf8) what='invalid leading UTF-8 octet' ;;
	esac
	at() { if [ $k = deep ]; then deep_at "$1"; else echo 5:12; fi; }
	at=$(at version)
	validate_refused "firstboot validate: $k bundle directory" "^$T/b-$k/bundle.yaml:$at: $what" \
		"$FIRSTBOOT" validate --modules-dir "$NOMODS" "$T/b-$k"
	validate_refused "firstboot validate: $k bundle archive" "bundle.yaml:$at: $what" \
		"$FIRSTBOOT" validate --modules-dir "$NOMODS" "$T/$k.tgz"
	mkdir -p "$T/m-$k"
	sed 's/^version: /id: /; s/^name: x$/name: m/' "$T/$k.yaml" >"$T/m-$k/manifest.yml"
	validate_refused "firstboot validate: $k module manifest" "^$T/m-$k/manifest.yml:$(at id): $what" \
		"$FIRSTBOOT" validate "$T/m-$k/manifest.yml"
	mkdir -p "$T/s-$k"
	sed 's/^version: /name: /' "$T/$k.yaml" >"$T/s-$k/site.yaml"
	validate_refused "imagegen validate: $k site.yaml" "^$T/s-$k/site.yaml:$(at name): $what" \
		"$IMAGEGEN" validate --modules-dir "$FIX/modules" --templates-dir "$FIX/templates" \
		"$T/s-$k/site.yaml"
done

# A files entry without a path before one with a path: strcmp(NULL), found
# by tests/fuzz/fuzz-site.
mkdir -p "$T/s-nopath"
touch "$T/s-nopath/a"
printf 'name: s\nhostname: h\nprovider: hetzner\nfiles:\n  - {source: a}\n  - {path: /etc/a, source: a}\n' \
	>"$T/s-nopath/site.yaml"
validate_refused "imagegen validate: files entry without a path" \
	"site.yaml:5:5: a files entry: missing 'path'" \
	"$IMAGEGEN" validate --modules-dir "$FIX/modules" --templates-dir "$FIX/templates" \
	"$T/s-nopath/site.yaml"

# 16 MiB of bundle.yaml: a mapping of 1.2 million keys under checksums is
# read and checked (one diagnostic: a duplicate at its end) well within
# the limit; once the duplicate check alone took hours.
B=$T/big
mkdir -p "$B"
python3 - "$B/bundle.yaml" <<'EOP'
import sys
with open(sys.argv[1], "w") as f:
    f.write("version: 1\nname: big\nchecksums:\n")
    size, i = 0, 0
    while size < 16 * 1024 * 1024 - 64:
        line = "  k%07d: 1\n" % i
        f.write(line)
        size += len(line)
        i += 1
    f.write("  k0000005: 1\n")
    print(i + 4, file=open(sys.argv[1] + ".dupline", "w"))
EOP
tar -C "$B" -czf "$T/big.tgz" bundle.yaml
# More than the default max_user_data (16 MiB uncompressed): allowed here.
big_case="16 MiB of keys in bundle.yaml (timeout 60)"
mkdir -p "$T/root-$big_case/etc/firstboot"
printf 'max_user_data: %s\n' $((64 * 1024 * 1024)) >"$T/root-$big_case/etc/firstboot/firstboot.conf"
run_refused "$big_case" "$T/big.tgz" \
	"bundle.yaml:$(cat "$B/bundle.yaml.dupline"):3: duplicate key 'k0000005'"
