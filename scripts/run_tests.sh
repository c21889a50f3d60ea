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
# Sanitizers (HEAR_SANITIZERS=0 skips): the `fuzz` preset (clang, ASan + UBSan + LSan) builds the
# parser modules, their unit tests (the suite's io, audio, data, util and teacher folders) and the
# libFuzzer targets; the tests run under ctest, then each target HEAR_FUZZ_SECONDS (default 30;
# 0 skips) on its committed corpus. The whole suite under sanitizers is the `asan` preset
# (docs/reliability.md): its cold build alone is ~40 minutes here.
if [ "${HEAR_SANITIZERS:-1}" != 0 ]; then
  cmake --preset fuzz > /dev/null
  cmake --build --preset fuzz -j"${HEAR_JOBS:-$(nproc)}" > build/fuzz/build.log 2>&1 ||
    { tail -30 build/fuzz/build.log; exit 1; }
  ctest --preset fuzz -j"${HEAR_JOBS:-$(nproc)}"
  t3=$(date +%s)
  if [ "${HEAR_FUZZ_SECONDS:-30}" != 0 ]; then
    bash scripts/fuzz.sh --no-build --seconds "${HEAR_FUZZ_SECONDS:-30}" --jobs "${HEAR_JOBS:-$(nproc)}"
  fi
fi
t4=$(date +%s)
echo "timing: setup $((t0 - start)) s, build $((t1 - t0)) s, tests $((t2 - t1)) s," \
  "sanitizer build + tests $((${t3:-$t2} - t2)) s, fuzz $((t4 - ${t3:-$t2})) s"
