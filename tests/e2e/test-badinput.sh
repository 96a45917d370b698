#!/bin/bash
# Bad input: each case is refused with a clear error and exit 1, and
# nothing is written under the root outside firstboot's state and logs.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

# EVIL: the script of a module that must never run: it leaves
# $T/evil-ran (the test's own folder: runs side by side do not share it).
EVIL="#!/bin/sh
touch '$T/evil-ran'"

# refused NAME USERDATA PATTERN [ROOT-SETUP]: runs firstboot on a fresh
# root; passes when it exits 1, stderr matches PATTERN, no module ran and
# the root is unchanged outside the state dir.
refused() {
	local name=$1 ud=$2 pattern=$3 r
	r=$T/root-$name
	new_root "$r"
	mkdir -p "$r/etc/firstboot"
	printf 'max_user_data: %s\n' "${MAXUD:-1048576}" >"$r/etc/firstboot/firstboot.conf"
	[ -n "${SETUP:-}" ] && eval "$SETUP"
	tree_snapshot "$r" >"$T/before"
	t_case "refused: $name"
	if ! expect_rc 1 "$FIRSTBOOT" run --root "$r" --user-data "$ud"; then
		t_fail "exit code"
		return
	fi
	if ! grep -qE -- "$pattern" "$T/err"; then
		t_fail "message: wanted /$pattern/, got: $(head -c 600 "$T/err")"
		return
	fi
	tree_snapshot "$r" >"$T/after"
	if ! diff -u "$T/before" "$T/after" >"$T/diff"; then
		t_fail "root changed: $(cat "$T/diff")"
		return
	fi
	if [ -e "$T/evil-ran" ] || compgen -G "$r/var/lib/firstboot/instances/*/bundle" >/dev/null; then
		t_fail "something ran or was unpacked"
		return
	fi
	t_pass
}

for k in truncated dotdot absolute symlink hardlink device unlisted mismatch; do
	python3 "$TOP/tests/e2e/evil.py" "$k" "$T/$k.tgz"
done
refused truncated-gzip "$T/truncated.tgz" 'truncated|corrupt'
refused dotdot "$T/dotdot.tgz" '\.\./\.\./etc/evil|\.\.'
refused absolute "$T/absolute.tgz" '/etc/evil'
refused symlink "$T/symlink.tgz" 'modules/m/link.*(link|symbolic)'
refused hardlink "$T/hardlink.tgz" 'modules/m/hard.*link'
refused device "$T/device.tgz" 'modules/m/dev.*(device|special)'
refused unlisted-member "$T/unlisted.tgz" 'modules/m/extra.txt.*not listed in checksums'
refused hash-mismatch "$T/mismatch.tgz" 'checksum mismatch for "modules/m/install.sh"'

printf '#firstboot-bundle v1\nH4sIAAAA\n!!notbase64!!\n' >"$T/bad.b64"
refused bad-base64 "$T/bad.b64" "bad.b64:3:[0-9]+: invalid base64"

printf '#cloud-config\npackages: [nginx]\n' >"$T/cc.yaml"
refused cloud-config "$T/cc.yaml" 'cloud-config'
printf 'hello world\n' >"$T/junk"
refused unknown-format "$T/junk" 'not firstboot user-data: its first line is "hello world"'

head -c 300000 /dev/urandom >"$T/big"
MAXUD=100000 refused oversized "$T/big" 'over the limit'

# A bundle with invalid YAML: the error has line and column.
B=$T/yamlbad
mkdir -p "$B"
printf 'version: 1\nname: x\nmodules: [\n  - id: a\n' >"$B/bundle.yaml"
tar -C "$B" -czf "$T/yamlbad.tgz" bundle.yaml
refused invalid-yaml "$T/yamlbad.tgz" 'bundle.yaml:[0-9]+:[0-9]+: '

# Unknown key and wrong input types point at bundle.yaml's line:column.
B=$T/types
mkdir -p "$B"
printf 'version: 1\nname: x\ncolour: blue\nmodules:\n  - id: m\n    inputs: {port: "http", count: many}\n' >"$B/bundle.yaml"
mkmodule "$B" m 'inputs:
  - {name: port, type: port}
  - {name: count, type: integer}' <<<"$EVIL"
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/types.tgz"
refused unknown-key "$T/types.tgz" "bundle.yaml:3:1: unknown key 'colour'"
sed -i '/^colour/d' "$B/bundle.yaml"
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/types.tgz"
refused wrong-input-type "$T/types.tgz" "bundle.yaml:5:[0-9]+: .*'port'"

# A dependency cycle is found before anything runs.
B=$T/cycle
mkdir -p "$B"
printf 'version: 1\nname: x\nmodules:\n  - id: a\n  - id: b\n' >"$B/bundle.yaml"
mkmodule "$B" a 'requires: [b]' <<<"$EVIL"
mkmodule "$B" b 'after: [a]' <<<"$EVIL"
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/cycle.tgz"
refused cycle "$T/cycle.tgz" 'dependency cycle'

# Signatures: a wrong one is always refused; a missing one when required.
B=$T/signed
mkdir -p "$B"
printf 'version: 1\nname: x\nmodules:\n  - id: m\n' >"$B/bundle.yaml"
mkmodule "$B" m '' <<<"$EVIL"
openssl genpkey -algorithm ed25519 -out "$T/good.pem" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$T/other.pem" 2>/dev/null
openssl pkey -in "$T/good.pem" -pubout -out "$T/good.pub"
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/wrongsig.tgz" "$T/other.pem"
SETUP='mkdir -p "$r/etc/firstboot/keys" && cp "$T/good.pub" "$r/etc/firstboot/keys/"' \
	refused wrong-signature "$T/wrongsig.tgz" 'does not verify'
rm -f "$B/bundle.yaml.sig"
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/unsigned.tgz"
SETUP='mkdir -p "$r/etc/firstboot/keys" && cp "$T/good.pub" "$r/etc/firstboot/keys/" && echo "require_signature: true" >> "$r/etc/firstboot/firstboot.conf"' \
	refused unsigned-when-required "$T/unsigned.tgz" 'not signed'

t_case "a correctly signed bundle is accepted when signatures are required"
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/signed.tgz" "$T/good.pem"
printf '#!/bin/sh\ntouch "$FIRSTBOOT_ROOT/signed.ran"\n' >"$B/modules/m/install.sh"
"$TOP/tests/e2e/mkbundle.sh" "$B" "$T/signed.tgz" "$T/good.pem"
r=$T/root-signed
new_root "$r"
mkdir -p "$r/etc/firstboot/keys"
cp "$T/good.pub" "$r/etc/firstboot/keys/"
echo "require_signature: true" >"$r/etc/firstboot/firstboot.conf"
if expect_rc 0 "$FIRSTBOOT" run --root "$r" --user-data "$T/signed.tgz" && [ -e "$r/signed.ran" ] &&
	grep -q 'signed by' "$T/err"; then t_pass; else t_fail "signed bundle refused"; fi

t_case "a bad firstboot.conf names the file, line and column"
r=$T/root-conf
new_root "$r"
mkdir -p "$r/etc/firstboot"
printf 'module_attempts: lots\nfrobnicate: 1\n' >"$r/etc/firstboot/firstboot.conf"
if expect_rc 1 "$FIRSTBOOT" run --root "$r" --user-data "$T/signed.tgz" &&
	grep -q "firstboot.conf:1:18: 'module_attempts' must be an integer" "$T/err" &&
	grep -q "firstboot.conf:2:1: unknown key 'frobnicate'" "$T/err"; then t_pass; else t_fail "$(cat "$T/err")"; fi

t_case "usage errors exit 2"
if expect_rc 2 "$FIRSTBOOT" run --bogus && expect_rc 2 "$FIRSTBOOT" frobnicate && expect_rc 2 "$FIRSTBOOT"; then t_pass; else t_fail "usage"; fi
