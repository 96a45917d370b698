#!/bin/bash
# The man pages in packaging/man/ render without a warning and say what
# the code does: every firstboot.conf key with its default and range (from
# common/config.c), every command and every option its --help lists;
# every command answers --help; `make install` puts the pages and the
# journal catalog in place.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"

MAN=$TOP/packaging/man
PAGES=(firstboot.8 firstboot.conf.5 firstboot-bundle.5 imagegen.1)
COMMANDS=$(sed -n 's/^ *{"\([a-z]*\)", cmd_[a-z]*, ".*},$/\1/p' "$TOP/firstboot/main.c")
export LC_ALL=C.UTF-8

# The words of a rendered page, one a line, without the brackets and
# punctuation around them.
words() { MANWIDTH=200 man -l "$MAN/$1" 2>/dev/null | tr -s ' \t' '\n' | tr -d '[],|.;'; }

for p in "${PAGES[@]}"; do
	t_case "$p renders with groff -man -ww and man -l, without a warning"
	if ! command -v groff >/dev/null || ! command -v man >/dev/null; then
		echo "ok - $_case # SKIP no groff or man (packaging/deps.sh installs them)"
	elif ! groff -man -Tutf8 -ww -z "$MAN/$p" >"$T/groff.err" 2>&1 || [ -s "$T/groff.err" ]; then
		t_fail "$(cat "$T/groff.err")"
	elif ! MANWIDTH=80 man -l "$MAN/$p" >"$T/man.out" 2>"$T/man.err" || [ -s "$T/man.err" ] ||
		[ "$(wc -l <"$T/man.out")" -lt 40 ]; then
		t_fail "man -l: $(cat "$T/man.err")"
	elif grep '[\]' "$T/man.out" | grep -vqE '^([^\]|\\[-.dws])*$'; then
		# (a backslash before - . d w s is a regular expression's, as in
		# firstboot-bundle(5)'s patterns, written \e in the source)
		t_fail "a roff escape leaked into the text: $(grep '[\]' "$T/man.out" | head -n 3)"
	else t_pass; fi
done

t_case "firstboot.conf(5) documents every key of config.c with its default and range"
if ! command -v man >/dev/null; then
	echo "ok - $_case # SKIP no man"
else
	MANWIDTH=200 man -l "$MAN/firstboot.conf.5" 2>/dev/null >"$T/conf.txt"
	if python3 - "$TOP/common/config.c" "$T/conf.txt" >"$T/err" 2>&1 <<'EOP'; then t_pass; else t_fail "$(cat "$T/err")"; fi
import re, sys
src, page = open(sys.argv[1]).read(), open(sys.argv[2]).read()
keys = re.findall(r'^\s+[SN]\((\w+)', src, re.M) + re.findall(r'^\s+\{"(\w+)", offsetof', src, re.M)
assert len(keys) >= 20, keys
bools = re.findall(r'\{"(\w+)", offsetof\(struct config, \w+\), BOOL', src)
assert "require_signature" in bools, bools
defaults = {}
for k, v in re.findall(r'^\s+\.(\w+) = (.+),$', src, re.M):
    m = re.fullmatch(r'xstrdup\("(.*)"\)', v)
    defaults[k] = m.group(1) if m else str(eval(v, {"__builtins__": {}}))
ranges = {k: tuple(eval(x.replace("LL", ""), {"__builtins__": {}}) for x in (lo, hi))
          for k, lo, hi in re.findall(r'^\s+N\((\w+), ([^,]+), ([^)]+)\)', src, re.M)}
assert len(ranges) >= 10, ranges
# The jobs: mapping's keys, documented as jobs.KEY (config field jobs_KEY).
for k, t, lo, hi in re.findall(r'\bJ\((\w+), (STR|NUM), ([^,]+), ([^)]+)\)', src):
    keys.append("jobs." + k)
    if "jobs_" + k in defaults:
        defaults["jobs." + k] = defaults["jobs_" + k]
    if t == "NUM":
        ranges["jobs." + k] = (int(lo), int(hi))
assert "jobs.redis_url" in keys, keys
# Each key is a paragraph: "       key\n              text... Default: X."
bad = []
for k in keys:
    m = re.search(r'^ {7}' + re.escape(k) + r'\n((?: {14}.*\n)+)', page, re.M)
    if not m:
        bad.append(f"{k}: not documented")
        continue
    text = " ".join(m.group(1).split())
    want = defaults.get(k, "false" if k in bools else "none")
    if not re.search(r'Default: ' + re.escape(want) + r'\b', text):
        bad.append(f"{k}: default {want} not in: {text}")
    if k in ranges and f"from {ranges[k][0]} to {ranges[k][1]}" not in text:
        bad.append(f"{k}: range {ranges[k]} not in: {text}")
assert not bad, "\n".join(bad)
EOP
fi

t_case "firstboot(8) documents every command"
if ! command -v man >/dev/null; then
	echo "ok - $_case # SKIP no man"
else
	page=$(words firstboot.8)
	missing=
	for c in $COMMANDS; do
		grep -qx "$c" <<<"$page" || missing+=" $c"
	done
	if [ "$(wc -w <<<"$COMMANDS")" -ge 7 ] && [ -z "$missing" ]; then t_pass; else t_fail "commands: [$COMMANDS] missing:$missing"; fi
fi

t_case "firstboot(8) documents every option each command's --help lists"
if ! command -v man >/dev/null; then
	echo "ok - $_case # SKIP no man"
else
	page=$(words firstboot.8)
	missing=
	for c in $COMMANDS; do
		for o in $("$FIRSTBOOT" "$c" --help | grep -oE '(^|[ [])--?[a-z][a-z-]*' | tr -d ' [' | sort -u); do
			grep -qx -- "$o" <<<"$page" || missing+=" $c:$o"
		done
	done
	if [ -z "$missing" ]; then t_pass; else t_fail "not in firstboot.8:$missing"; fi
fi

t_case "every command answers --help and -h with its usage, exit 0"
bad=
for c in $COMMANDS; do
	for h in --help -h; do
		"$FIRSTBOOT" "$c" "$h" >"$T/out" 2>"$T/err"
		rc=$?
		if [ "$rc" != 0 ] || ! head -n 1 "$T/out" | grep -q "^Usage: firstboot $c" || [ -s "$T/err" ]; then
			bad+=" $c $h (exit $rc)"
		fi
	done
done
if [ -z "$bad" ]; then t_pass; else t_fail "$bad"; fi

t_case "an unknown option is a usage error, exit 2, for every command (plan: 64, its 2 is changes pending)"
bad=
for c in $COMMANDS; do
	"$FIRSTBOOT" "$c" --no-such-option >/dev/null 2>"$T/err"
	rc=$?
	want=2
	[ "$c" = plan ] && want=64
	[ "$rc" = "$want" ] && [ -s "$T/err" ] || bad+=" $c (exit $rc)"
done
if [ -z "$bad" ]; then t_pass; else t_fail "$bad"; fi

t_case "firstboot alone prints a short usage listing every command, exit 2"
if expect_rc 2 "$FIRSTBOOT" && [ ! -s "$T/out" ] && grep -q '^Usage: firstboot COMMAND' "$T/err" &&
	[ "$(wc -l <"$T/err")" -le 24 ] &&
	for c in $COMMANDS; do grep -qE "^  $c " "$T/err" || exit 1; done; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "firstboot --help and --version, exit 0"
if expect_rc 0 "$FIRSTBOOT" --help && grep -q '^Usage: firstboot COMMAND' "$T/out" && grep -q 'firstboot(8)' "$T/out" &&
	expect_rc 0 "$FIRSTBOOT" --version && grep -qE '^firstboot [0-9]+\.[0-9]+\.[0-9]+$' "$T/out" &&
	expect_rc 2 "$FIRSTBOOT" no-such-command && grep -q "unknown command 'no-such-command'" "$T/err"; then t_pass; else t_fail "$(cat "$T/out" "$T/err")"; fi

t_case "make install puts the man pages and the journal catalog in place"
D=$T/dest
BUILD_DIR=$(basename "$(dirname "$FIRSTBOOT")")
# -o all: the binaries under test as they are, never rebuilt here.
if ! timeout 300 make --no-print-directory -C "$TOP" -o all install DESTDIR="$D" PREFIX=/usr BUILD="$BUILD_DIR" >"$T/make.out" 2>&1; then
	t_fail "make install failed: $(tail -n 20 "$T/make.out")"
else
	bad=
	for f in share/man/man8/firstboot.8 share/man/man5/firstboot.conf.5 share/man/man5/firstboot-bundle.5; do
		cmp -s "$MAN/$(basename "$f")" "$D/usr/$f" && [ "$(stat -c %a "$D/usr/$f")" = 644 ] || bad+=" $f"
	done
	cmp -s "$TOP/units/firstboot.catalog" "$D/usr/lib/systemd/catalog/firstboot.catalog" &&
		[ "$(stat -c %a "$D/usr/lib/systemd/catalog/firstboot.catalog")" = 644 ] || bad+=" catalog"
	if [ -z "$bad" ]; then t_pass; else t_fail "missing or different:$bad"; fi
fi
