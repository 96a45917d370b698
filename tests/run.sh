#!/bin/bash
# Runs the unit tests (build/tests/test-*) and the end-to-end tests
# (tests/e2e/test-*.sh), each under a time limit, and prints one closing
# line "N passed, N failed". Usage: tests/run.sh unit|e2e|all [FILTER]
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
what=${1:-all}
filter=${2:-}
export FIRSTBOOT="$PWD/$BUILD/firstboot" IMAGEGEN="$PWD/$BUILD/imagegen" TOP="$PWD"
export TESTTMP="$PWD/tests/.tmp"
mkdir -p "$TESTTMP"

passed=0 failed=0 failures=()
run_one() { # name, command...
	local name=$1 out
	shift
	out=$(timeout -k 30 "${TEST_TIMEOUT:-900}" "$@" 2>&1)
	local rc=$?
	local ok nok
	ok=$(grep -c '^ok - ' <<<"$out")
	nok=$(grep -c '^not ok - ' <<<"$out")
	if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
		nok=1
		out+=$'\n'"not ok - $name exited $rc"
	fi
	passed=$((passed + ok))
	failed=$((failed + nok))
	if [ "$nok" -gt 0 ] || [ -n "${VERBOSE:-}" ]; then
		printf '%s\n' "$out"
		[ "$nok" -gt 0 ] && failures+=("$name")
	else
		printf '%s: %d ok\n' "$name" "$ok"
	fi
}

if [ "$what" = unit ] || [ "$what" = all ]; then
	for t in "$BUILD"/tests/test-*; do
		[ -x "$t" ] || continue
		[ -n "$filter" ] && [[ $t != *"$filter"* ]] && continue
		run_one "$(basename "$t")" "$t"
	done
	# Fuzz targets replay the committed corpus and every past crash.
	for t in "$BUILD"/tests/fuzz/fuzz-*; do
		[ -x "$t" ] || continue
		[ -n "$filter" ] && [[ $t != *"$filter"* ]] && continue
		n=$(basename "$t")
		run_one "$n" "$t" "tests/fuzz/corpus/${n#fuzz-}" "tests/fuzz/crashes/${n#fuzz-}"
	done
fi
if [ "$what" = e2e ] || [ "$what" = all ]; then
	for t in tests/e2e/test-*.sh; do
		[ -f "$t" ] || continue
		[ -n "$filter" ] && [[ $t != *"$filter"* ]] && continue
		run_one "$(basename "$t" .sh)" bash "$t"
	done
fi

[ ${#failures[@]} -gt 0 ] && echo "failing: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
