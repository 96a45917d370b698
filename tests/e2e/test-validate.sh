#!/bin/bash
# firstboot validate on every kind of PATH it takes (a bundle directory, a
# gzip'd tar, the base64 text form, a plain script, a module directory and
# a module manifest): good input prints ok and the run order; each kind of
# bad input exits 1 with file:line:column pointing at the exact place.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

NOMODS=$T/no-modules-dir
mkdir -p "$NOMODS"
fbv() { "$FIRSTBOOT" validate --modules-dir "$NOMODS" "$@"; }
mkb() { "$TOP/tests/e2e/mkbundle.sh" "$@"; }

# The good bundle. Line numbers below are those of this bundle.yaml.
G=$T/good
mkdir -p "$G/files"
echo "welcome" >"$G/files/motd"
cat >"$G/bundle.yaml" <<'EOY'
version: 1
name: good
files:
  - {path: /etc/motd, source: files/motd, mode: "0644"}
modules:
  - id: web
    inputs:
      port: 8080
      name: hello
      workers: 4
      mode: prod
  - id: db
EOY
mkmodule "$G" db '' <<<$'#!/bin/sh\ntrue'
# manifest.yml lines: 1 id, 2 name, 3 version, then these from line 4.
mkmodule "$G" web 'requires: [db]
inputs:
  - {name: port, type: port, required: true}
  - name: name
    type: string
    validation: {pattern: "^[a-z]+$", min_length: 2, max_length: 10}
  - {name: workers, type: integer, validation: {min: 1, max: 64}}
  - {name: mode, type: select, validation: {allowed_values: [dev, prod]}}' <<<$'#!/bin/sh\ntrue'
mkb "$G" "$T/good.tgz"
mkb "$G" "$T/good.b64"

# ok_case NAME PATH FIRST-LINE [ORDER-LINE]
ok_case() {
	t_case "ok: $1"
	if ! expect_rc 0 fbv "$2"; then
		t_fail "see above"
	elif [ "$(sed -n 1p "$T/out")" != "$3" ]; then
		t_fail "printed '$(sed -n 1p "$T/out")', expected '$3'"
	elif [ -n "${4:-}" ] && [ "$(sed -n 2p "$T/out")" != "$4" ]; then
		t_fail "printed '$(sed -n 2p "$T/out")', expected '$4'"
	elif [ -s "$T/err" ]; then
		t_fail "stderr: $(cat "$T/err")"
	else
		t_pass
	fi
}
ok_case "a bundle directory" "$G" "$G: ok: bundle 'good', 2 modules, 1 file" "order: db web"
ok_case "a bundle archive (tar.gz)" "$T/good.tgz" "$T/good.tgz: ok: bundle 'good', 2 modules, 1 file" "order: db web"
ok_case "a base64 text user-data (.b64)" "$T/good.b64" "$T/good.b64: ok: bundle 'good', 2 modules, 1 file" "order: db web"
printf '#!/bin/sh\necho hello\n' >"$T/script.sh"
ok_case "a plain #! script" "$T/script.sh" "$T/script.sh: ok: bundle 'user-data-script', 1 module, 0 files" "order: user-script"
ok_case "a module manifest" "$G/modules/web/manifest.yml" "$G/modules/web/manifest.yml: ok: module 'web' 1.0, 4 inputs"
ok_case "a module directory" "$G/modules/db" "$G/modules/db/manifest.yml: ok: module 'db' 1.0, 0 inputs"
# A module not shipped in the bundle comes from --modules-dir.
mkdir -p "$T/mb"
printf 'version: 1\nname: mb\nmodules:\n  - id: web\n    inputs: {port: 80}\n  - id: db\n' >"$T/mb/bundle.yaml"
cp -r "$G/modules" "$T/mb/"
rm -r "$T/mb/modules/db"
mkb "$T/mb" /dev/null
NOMODS=$G/modules ok_case "a bundle using --modules-dir" "$T/mb" "$T/mb: ok: bundle 'mb', 2 modules, 0 files" "order: db web"

# bad NAME: a copy of the good bundle at $T/NAME to break.
bad() {
	rm -rf "${T:?}/$1"
	cp -r "$G" "$T/$1"
}
# bad_case NAME PATH WHERE TEXT: validate PATH exits 1, prints nothing on
# stdout, and its first error is "WHERE: ..." containing TEXT.
bad_case() {
	local first
	t_case "bad: $1"
	if ! expect_rc 1 fbv "$2"; then
		t_fail "see above"
		return
	fi
	first=$(head -n 1 "$T/err")
	if [[ $first != "$3: "* ]]; then
		t_fail "first error '$first', expected it at '$3'"
	elif [[ $first != *"$4"* ]]; then
		t_fail "first error '$first' lacks '$4'"
	elif [ -s "$T/out" ]; then
		t_fail "printed on stdout: $(cat "$T/out")"
	else
		t_pass
	fi
}

bad syntax
sed -i 's/^name: good$/name: good: x/' "$T/syntax/bundle.yaml"
bad_case "YAML syntax error in bundle.yaml" "$T/syntax" "$T/syntax/bundle.yaml:2:11" "mapping values are not allowed"

bad msyntax
sed -i 's/^  - name: name$/   - name: name/' "$T/msyntax/modules/web/manifest.yml"
mkb "$T/msyntax" /dev/null
bad_case "YAML syntax error in a module's manifest" "$T/msyntax" "$T/msyntax/modules/web/manifest.yml:7:4" \
	"did not find expected '-' indicator"

bad mkey
sed -i 's/^version: "1.0"$/version: "1.0"\ncolour: red/' "$T/mkey/modules/db/manifest.yml"
mkb "$T/mkey" /dev/null
bad_case "unknown manifest key" "$T/mkey" "$T/mkey/modules/db/manifest.yml:4:1" "unknown key 'colour' in the manifest"

bad bkey
sed -i 's/^name: good$/name: good\ncolour: red/' "$T/bkey/bundle.yaml"
bad_case "unknown bundle.yaml key" "$T/bkey" "$T/bkey/bundle.yaml:3:1" "unknown key 'colour' in bundle.yaml"

bad type
sed -i 's/^      port: 8080$/      port: eighty/' "$T/type/bundle.yaml"
bad_case "an input of the wrong type (port)" "$T/type" "$T/type/bundle.yaml:8:13" "input 'port' must be a port number"

bad itype
sed -i 's/^      workers: 4$/      workers: four/' "$T/itype/bundle.yaml"
bad_case "an input of the wrong type (integer)" "$T/itype" "$T/itype/bundle.yaml:10:16" "input 'workers' must be an integer"

bad mtype
sed -i 's/type: integer/type: number/' "$T/mtype/modules/web/manifest.yml"
mkb "$T/mtype" /dev/null
bad_case "an unknown input type in the manifest" "$T/mtype" "$T/mtype/modules/web/manifest.yml:10:27" "'type' must be one of"

bad pattern
sed -i 's/^      name: hello$/      name: Hello/' "$T/pattern/bundle.yaml"
bad_case "an input failing its pattern" "$T/pattern" "$T/pattern/bundle.yaml:9:13" "input 'name' must match the pattern ^[a-z]+\$"

bad badpattern
sed -i 's/pattern: "^\[a-z\]+\$"/pattern: "^([a-z]+$"/' "$T/badpattern/modules/web/manifest.yml"
mkb "$T/badpattern" /dev/null
bad_case "a pattern that does not compile" "$T/badpattern" "$T/badpattern/modules/web/manifest.yml:9:27" \
	"input 'name': 'pattern' is not a valid regular expression: missing closing parenthesis at offset 9 of \"^([a-z]+\$\""

bad minlen
sed -i 's/^      name: hello$/      name: h/' "$T/minlen/bundle.yaml"
bad_case "an input shorter than min_length" "$T/minlen" "$T/minlen/bundle.yaml:9:13" "between 2 and 10 characters long"

bad min
sed -i 's/^      workers: 4$/      workers: 0/' "$T/min/bundle.yaml"
bad_case "an input below min" "$T/min" "$T/min/bundle.yaml:10:16" "input 'workers' must be between 1 and 64, not 0"

bad max
sed -i 's/^      workers: 4$/      workers: 65/' "$T/max/bundle.yaml"
bad_case "an input above max" "$T/max" "$T/max/bundle.yaml:10:16" "input 'workers' must be between 1 and 64, not 65"

bad allowed
sed -i 's/^      mode: prod$/      mode: staging/' "$T/allowed/bundle.yaml"
bad_case "an input not in allowed_values" "$T/allowed" "$T/allowed/bundle.yaml:11:13" "input 'mode' must be one of: dev, prod"

bad required
sed -i '/^      port: 8080$/d' "$T/required/bundle.yaml"
bad_case "a missing required input" "$T/required" "$T/required/bundle.yaml:6:5" "missing required input 'port'"

bad cycle
sed -i 's/^version: "1.0"$/version: "1.0"\nafter: [web]/' "$T/cycle/modules/db/manifest.yml"
mkb "$T/cycle" /dev/null
bad_case "a dependency cycle" "$T/cycle" "$T/cycle/bundle.yaml:6:5" "dependency cycle: web -> db -> web"

bad missing
sed -i '/^  - id: db$/d' "$T/missing/bundle.yaml"
bad_case "a missing requirement" "$T/missing" "$T/missing/bundle.yaml:6:5" "module 'web' requires 'db', which is not in the plan"

bad sum
echo "# changed after signing off" >>"$T/sum/modules/db/install.sh"
line=$(grep -n '^  modules/db/install.sh: ' "$T/sum/bundle.yaml" | cut -d: -f1)
bad_case "a checksum mismatch" "$T/sum" "$T/sum/bundle.yaml:$line:26" "checksum mismatch for \"modules/db/install.sh\""

bad unknown
sed -i 's/^  - id: db$/  - id: db\n  - id: nosuch/' "$T/unknown/bundle.yaml"
bad_case "an unknown module" "$T/unknown" "$T/unknown/bundle.yaml:13:5" "module 'nosuch' is neither in the bundle"

rm "$T/unknown/modules/db/install.sh"
bad_case "a module directory without its install script" "$T/unknown/modules/db" "$T/unknown/modules/db/manifest.yml" \
	"its install script $T/unknown/modules/db/install.sh"

# The same places inside archives: named after the archive.
mkb "$T/cycle" "$T/cycle.tgz"
bad_case "a dependency cycle in a tar.gz" "$T/cycle.tgz" "$T/cycle.tgz/bundle.yaml:6:5" "dependency cycle: web -> db -> web"
mkb "$T/type" "$T/type.b64"
bad_case "a wrong input type in a .b64" "$T/type.b64" "$T/type.b64/bundle.yaml:8:13" "input 'port' must be a port number"
mkb "$T/mkey" "$T/mkey.tgz"
bad_case "an unknown manifest key in a tar.gz" "$T/mkey.tgz" "$T/mkey.tgz/modules/db/manifest.yml:4:1" "unknown key 'colour'"
# A checksum mismatch cannot come from mkbundle.sh: tar the broken dir.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$T/sum" -czf "$T/sum.tgz" .
bad_case "a checksum mismatch in a tar.gz" "$T/sum.tgz" "$T/sum.tgz/bundle.yaml:$line:26" "checksum mismatch"
{
	sed -n 1,2p "$T/good.b64"
	echo 'not*base64!'
	sed -n '3,$p' "$T/good.b64"
} >"$T/badchar.b64"
bad_case "a bad base64 character in a .b64" "$T/badchar.b64" "$T/badchar.b64:3:4" "invalid base64"

bad manifest-default
sed -i 's/type: integer, validation/type: integer, default: lots, validation/' "$T/manifest-default/modules/web/manifest.yml"
bad_case "a manifest alone: a default of the wrong type" "$T/manifest-default/modules/web/manifest.yml" \
	"$T/manifest-default/modules/web/manifest.yml:10:45" "the default of input 'workers' must be an integer"
