#!/usr/bin/env bash
# Runs the libFuzzer targets (tests/fuzz/) on their committed seed corpora:
#
#   bash scripts/fuzz.sh [--seconds N] [--jobs J] [--out DIR] [--no-build] [TARGET...]
#
# Builds the `fuzz` preset (clang, ASan + UBSan) first. Each target runs N seconds (default 30) on
# a scratch copy of tests/fuzz/corpus/<target>/ (the committed corpus is never changed), J targets
# at a time (default 1). Crashes, leaks, UBSan reports, timeouts (> 10 s per input) and inputs
# over 2 GB of memory are findings: the reproducer is kept in DIR/<target>/ and the script exits 1.
# A summary table (runs, execs/s, coverage, corpus size, peak RSS) goes to stdout and DIR/summary.md
# (DIR: build/fuzz/runs). --no-build runs what build/fuzz/fuzz/ holds.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=30
JOBS=1
OUT=build/fuzz/runs
TARGETS=()
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-build) NO_BUILD=1; shift ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=($(ls tests/fuzz/corpus))
mkdir -p "$OUT"
if [ -z "${NO_BUILD:-}" ]; then
  cmake --preset fuzz > /dev/null
  cmake --build --preset fuzz -j"${HEAR_JOBS:-$(nproc)}" > "$OUT/build.log" 2>&1 ||
    { tail -30 "$OUT/build.log"; exit 1; }
fi

fuzz_one() {
  local t=$1 dir=$OUT/$1
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/findings"
  cp tests/fuzz/corpus/$t/* "$dir/corpus/"
  local rc=0
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 OMP_NUM_THREADS=1 \
    build/fuzz/fuzz/fuzz_$t "$dir/corpus" -max_total_time="$SECONDS_EACH" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$dir/findings/" \
    > "$dir/log.txt" 2>&1 || rc=$?
  echo $rc > "$dir/rc"
}
running=0
for t in "${TARGETS[@]}"; do
  [ -d tests/fuzz/corpus/$t ] || { echo "fuzz: no target '$t' (tests/fuzz/corpus/)"; exit 2; }
  fuzz_one "$t" &
  running=$((running + 1))
  if [ $running -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait

failed=0
{
  echo "| target | seconds | runs | execs/s | coverage (edges) | features | corpus | peak RSS MB | result |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for t in "${TARGETS[@]}"; do
    log=$OUT/$t/log.txt
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    last=$(grep -E "^#[0-9]+" "$log" | grep "cov:" | tail -1)
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<< "$last")
    corp=$(sed -n 's/.*corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<< "$last")
    result=ok
    if [ "$(cat "$OUT/$t/rc")" != 0 ] || [ -n "$(ls "$OUT/$t/findings")" ]; then
      result="FINDING: $(ls "$OUT/$t/findings" | head -1) ($(grep -m1 -E "ERROR|runtime error|deadly signal|Timeout|out-of-memory" "$log" | cut -c1-80))"
      failed=1
    fi
    echo "| $t | $SECONDS_EACH | $(stat number_of_executed_units) | $(stat average_exec_per_sec) | ${cov:-?} | ${ft:-?} | ${corp:-?} | $(stat peak_rss_mb) | $result |"
  done
} | tee "$OUT/summary.md"
exit $failed
