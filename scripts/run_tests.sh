#!/usr/bin/env bash
# The README's test command: install dependencies, build, run the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh
# The local benchmark set builders' tools (sox formats, TTS voices) for tests/scripts/datasets_small_test.sh.
bash scripts/setup_data.sh
t0=$(date +%s)
bash scripts/build.sh
t1=$(date +%s)
# Each test process uses one intra-op thread; ctest runs two at a time.
OMP_NUM_THREADS=1 ctest --preset release -j"${HEAR_JOBS:-$(nproc)}"
t2=$(date +%s)
# The parsers under libFuzzer + ASan + UBSan, HEAR_FUZZ_SECONDS each (default 30; 0 skips) on the
# committed corpora (scripts/fuzz.sh; long runs: docs/reliability.md).
if [ "${HEAR_FUZZ_SECONDS:-30}" != 0 ]; then
  bash scripts/fuzz.sh --seconds "${HEAR_FUZZ_SECONDS:-30}" --jobs "${HEAR_JOBS:-$(nproc)}"
fi
t3=$(date +%s)
echo "timing: setup $((t0 - start)) s, build $((t1 - t0)) s, tests $((t2 - t1)) s, fuzz $((t3 - t2)) s"
