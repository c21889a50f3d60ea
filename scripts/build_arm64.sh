#!/usr/bin/env bash
# Cross-compiles hear-bench for aarch64 (64-bit ARM Linux) in build/arm64, runs it under
# qemu-aarch64-static on a short clip and checks that its parameter counts and MACs are identical
# to the host (x86-64) build's. Timings under emulation are meaningless; see docs/arm64.md.
#
#   scripts/build_arm64.sh [hear-bench options for the check, default: --seconds 1 --runs 1 --warmup 1]
#
# The host's hear-bench is built (if out of date) in build/release, or $HEAR_X86_BUILD.
# Needs (Debian, amd64 packages): g++-aarch64-linux-gnu qemu-user-static. The arm64 sysroot is
# made (or reused) by scripts/make_arm64_sysroot.sh; $HEAR_ARM64_SYSROOT moves it. Jobs: $HEAR_JOBS
# (default 2: cross-compiling LibTorch translation units takes memory and time).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${HEAR_JOBS:-2}"
export HEAR_ARM64_SYSROOT="${HEAR_ARM64_SYSROOT:-$HOME/.cache/hear-cpp/arm64-sysroot}"

for tool in aarch64-linux-gnu-g++ qemu-aarch64-static; do
  command -v "$tool" >/dev/null ||
    { echo "build_arm64: $tool not found: apt-get install g++-aarch64-linux-gnu qemu-user-static" >&2; exit 1; }
done

t0=$SECONDS
scripts/make_arm64_sysroot.sh "$HEAR_ARM64_SYSROOT" >/dev/null
echo "build_arm64: sysroot $HEAR_ARM64_SYSROOT ready ($((SECONDS - t0)) s)"

# Only what hear-bench links: `--target hear-bench` builds the library modules it uses (io, audio,
# nn, models, bench), no tests (GoogleTest is not in the sysroot), no other programs.
t0=$SECONDS
cmake --no-warn-unused-cli -S . -B build/arm64 -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchains/aarch64-linux-gnu.cmake" \
  -DHEAR_ARM64_SYSROOT="$HEAR_ARM64_SYSROOT" -DCMAKE_BUILD_TYPE=Release \
  -DHEAR_TOOLS=bench -DHEAR_BUILD_TESTS=OFF >/dev/null
cmake --build build/arm64 -j"$JOBS" --target hear-bench
echo "build_arm64: build/arm64/bin/hear-bench built ($((SECONDS - t0)) s)"

# The host build to compare with, brought up to date ($HEAR_X86_BUILD: another build folder).
X86_BUILD="${HEAR_X86_BUILD:-build/release}"
if [[ ! -f "$X86_BUILD/CMakeCache.txt" ]]; then
  [[ "$X86_BUILD" == build/release ]] || { echo "build_arm64: no CMake build in $X86_BUILD" >&2; exit 1; }
  cmake --preset release >/dev/null
fi
cmake --build "$X86_BUILD" -j"$JOBS" --target hear-bench

scripts/compare_arm64_bench.sh build/arm64/bin/hear-bench "$X86_BUILD/bin/hear-bench" -- "$@"
