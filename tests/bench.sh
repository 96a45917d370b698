#!/bin/bash
# make bench: benchmarks as ratios against baselines measured in the same
# run (tests/bench.py describes each). Nothing here asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
exec python3 tests/bench.py "$PWD/$BUILD/firstboot" "$PWD/$BUILD/imagegen" "$PWD/$BUILD/tests/tools/peak-rss"
