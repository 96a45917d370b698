#!/bin/bash
# Golden output cases for `imagegen render`: tests/cases/render/CASE/ holds
# site/ (site.yaml, files, and .imagegen/state.json with fixed secrets),
# args (imagegen options, relative to the top of the tree) and expected/
# (the rendered bundle). Without arguments each case is rendered and
# compared with expected/ ("ok - …" / "not ok - …" lines); with --update
# (make golden) expected/ is rewritten, to be reviewed in the diff.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
IMAGEGEN=${IMAGEGEN:-$PWD/$BUILD/imagegen}
update=${1:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/golden.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
rc=0
for c in tests/cases/render/*/; do
	name=$(basename "$c")
	cp -r "$c/site" "$tmp/$name"
	chmod 0700 "$tmp/$name/.imagegen" && chmod 0600 "$tmp/$name/.imagegen/state.json"
	read -r -a args <"$c/args"
	if ! "$IMAGEGEN" render -q "${args[@]}" "$tmp/$name/site.yaml" -o "$tmp/$name.out" 2>"$tmp/err"; then
		echo "not ok - golden $name: render failed: $(cat "$tmp/err")"
		rc=1
		continue
	fi
	if [ "$update" = --update ]; then
		rm -rf "$c/expected" && cp -r "$tmp/$name.out" "$c/expected"
		echo "updated $c/expected"
	elif diff -r "$c/expected" "$tmp/$name.out" >"$tmp/diff" 2>&1; then
		echo "ok - golden $name"
	else
		echo "not ok - golden $name (make golden rewrites it; review the diff)"
		sed 's/^/  # /' "$tmp/diff" | head -40
		rc=1
	fi
done
exit $rc
