#!/bin/bash
# Runs every libFuzzer target in $BUILD/tests/fuzz for FUZZ_SECONDS each,
# FUZZ_JOBS at a time (default: one per CPU), starting from the committed
# corpus (tests/fuzz/corpus/NAME, read only: new inputs go to
# $BUILD/fuzz-corpus/NAME). A crash leaves its input in
# $BUILD/fuzz-artifacts/ and fails the run: add it to
# tests/fuzz/crashes/NAME/ with the fix. Prints each target's executions
# and coverage. The seed is fixed (FUZZ_SEED, default 1) so that a
# finding in CI is found again by the same command here.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build-fuzz}
secs=${FUZZ_SECONDS:-60}
seed=${FUZZ_SEED:-1}
jobs=${FUZZ_JOBS:-$(nproc)}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# One target; its exit status goes to $BUILD/fuzz-NAME.rc.
fuzz_one() {
	local t=$1 name=$2 work="$BUILD/fuzz-corpus/$2" art="$BUILD/fuzz-artifacts/$2/" dict=()
	mkdir -p "$work" "$art"
	[ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
	"$t" -seed="$seed" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-artifact_prefix="$art" "${dict[@]}" "$work" "tests/fuzz/corpus/$name" >"$BUILD/fuzz-$name.log" 2>&1
	echo $? >"$BUILD/fuzz-$name.rc"
}

names=()
for t in "$BUILD"/tests/fuzz/fuzz-*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	name=${name#fuzz-}
	names+=("$name")
	rm -f "$BUILD/fuzz-$name.rc"
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
	fuzz_one "$t" "$name" &
done
wait

failed=()
for name in "${names[@]}"; do
	log="$BUILD/fuzz-$name.log"
	rc=$(cat "$BUILD/fuzz-$name.rc" 2>/dev/null || echo 2)
	summary=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1)
	printf '%-16s exit %d  %s\n' "$name" "$rc" "$summary"
	if [ "$rc" -ne 0 ]; then
		failed+=("$name")
		# What the target printed, the report and the input, without
		# libFuzzer's progress lines and its own frames.
		grep -vE '^#[0-9]+[[:space:]]|in fuzzer::|^INFO:' "$log" | tail -n 40
	fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: failing: ${failed[*]} (logs in $BUILD/fuzz-*.log)"; exit 1; }
echo "fuzz: all ${#names[@]} targets ran ${secs}s without a finding"
