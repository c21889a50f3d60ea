#!/usr/bin/env bash
# The cross-compiled aarch64 hear-bench (scripts/build_arm64.sh) under qemu: parameter counts,
# analytic MACs for several clip lengths (30 s: several acoustic windows; 60 s: past the task
# model's max_length) and the MACs one forward executes identical to the host build's,
# architecture aarch64, emulation reported.
# Exit 77 (ctest: skipped) when there is no arm64 build, sysroot or qemu. ctest label: arm64.
source "$(dirname "$0")/lib.sh"
ARM="${HEAR_ARM64_BIN:-$SRC/build/arm64/bin/hear-bench}"
X86="$BIN/hear-bench"
[[ -x "$ARM" ]] || { echo "SKIP: no arm64 build at $ARM (scripts/build_arm64.sh)"; exit 77; }
# 1 s: with the executed-MAC count (one forward under qemu, counted by the aten op observer);
# longer clips: the analytic count only (a 60 s forward takes minutes under emulation).
bash "$SRC/scripts/compare_arm64_bench.sh" "$ARM" "$X86" -- --seconds 1 --no-timing
bash "$SRC/scripts/compare_arm64_bench.sh" "$ARM" "$X86" -- --sweep 10,30,60 --no-timing --no-executed-count
