#!/bin/bash
# Runs every libFuzzer target in $BUILD/tests/fuzz for FUZZ_SECONDS each,
# starting from the committed corpus (tests/fuzz/corpus/NAME, read only:
# new inputs go to $BUILD/fuzz-corpus/NAME). A crash leaves its input in
# $BUILD/fuzz-artifacts/ and fails the run: add it to
# tests/fuzz/crashes/NAME/ with the fix. Prints each target's executions
# and coverage. The seed is fixed (FUZZ_SEED, default 1) so that a
# finding in CI is found again by the same command here.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build-fuzz}
secs=${FUZZ_SECONDS:-60}
seed=${FUZZ_SEED:-1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=()
for t in "$BUILD"/tests/fuzz/fuzz-*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	name=${name#fuzz-}
	work="$BUILD/fuzz-corpus/$name" art="$BUILD/fuzz-artifacts/$name/"
	mkdir -p "$work" "$art"
	dict=()
	[ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
	log="$BUILD/fuzz-$name.log"
	"$t" -seed="$seed" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-artifact_prefix="$art" "${dict[@]}" "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
	rc=$?
	summary=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1)
	printf '%-12s exit %d  %s\n' "$name" "$rc" "$summary"
	if [ $rc -ne 0 ]; then
		failed+=("$name")
		# What the target printed, the report and the input, without
		# libFuzzer's progress lines and its own frames.
		grep -vE '^#[0-9]+[[:space:]]|in fuzzer::|^INFO:' "$log" | tail -n 40
	fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: failing: ${failed[*]} (logs in $BUILD/fuzz-*.log)"; exit 1; }
echo "fuzz: all targets ran ${secs}s without a finding"
