#!/usr/bin/env bash
# The prepared GPU check (CI never has a GPU): builds hear-cpp against the CUDA LibTorch of an
# installed pip PyTorch (torch.utils.cmake_prefix_path), runs the test suite with its CUDA tests
# on (they skip themselves where torch::cuda::is_available() is false), one hear-bench RTF at 10 s
# and one hear-bench --train finetune step on the GPU. About 5-7 minutes on a 16-core machine
# (the build is most of it); every step has its own time limit so the whole stays under 8.
#
#   bash scripts/gpu_check.sh [--python python3] [--out DIR] [--jobs N]
#
# Writes DIR (default build/gpu_check) /summary.md and the logs; exit 0 only when every step
# passed. Needs on the GPU machine: cmake, a C++17 compiler, the Debian -dev packages of
# scripts/setup.sh (yaml-cpp, spdlog, CLI11, sndfile, soxr, gtest, nlohmann-json, OpenSSL), the
# CUDA toolkit that the PyTorch's CMake config asks for (nvcc, for find_package(Torch)), and a
# PyTorch whose C++ ABI matches those packages: Debian builds them with _GLIBCXX_USE_CXX11_ABI=1,
# pip wheels use it from PyTorch 2.7 on (2.4-2.6 wheels are ABI 0 and will not link with them).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3 OUT=build/gpu_check JOBS=$(nproc)
while [ $# -gt 0 ]; do
  case $1 in
    --python) PY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    *) echo "gpu_check.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SUMMARY=$OUT/summary.md
start=$(date +%s)
status=0
note() { echo "$*" | tee -a "$SUMMARY"; }
: > "$SUMMARY"
note "# hear-cpp GPU check, $(date -u '+%Y-%m-%d %H:%M UTC')"

# step NAME LIMIT_S COMMAND...: runs COMMAND with a time limit, logs to OUT/NAME.log.
step() {
  local name=$1 limit=$2
  shift 2
  local t0=$(date +%s)
  if timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; then
    note "- $name: ok ($(($(date +%s) - t0)) s)"
  else
    local rc=$?
    note "- $name: FAILED (exit $rc after $(($(date +%s) - t0)) s; tail of $name.log below)"
    tail -20 "$OUT/$name.log" | sed 's/^/    /' | tee -a "$SUMMARY"
    status=1
    return 1
  fi
}

# 1. The PyTorch: CUDA present, its CMake prefix and C++ ABI.
if ! info=$("$PY" - << 'PY' 2>&1
import torch, torch.utils
assert torch.cuda.is_available(), "torch.cuda.is_available() is False"
print(torch.__version__, torch.version.cuda, torch.utils.cmake_prefix_path,
      int(torch._C._GLIBCXX_USE_CXX11_ABI), torch.cuda.get_device_name(0))
PY
); then
  note "- python: no usable CUDA PyTorch: $info"
  exit 1
fi
read -r TORCH_VERSION CUDA_VERSION PREFIX ABI GPU_NAME <<< "$info"
note "- PyTorch $TORCH_VERSION, CUDA $CUDA_VERSION, C++ ABI $ABI, GPU: ${info#* * * * }"
[ "$ABI" = 1 ] || note "- warning: this PyTorch uses the pre-C++11 ABI; Debian's yaml-cpp/spdlog/gtest will not link"
command -v nvcc > /dev/null || note "- warning: no nvcc on PATH; find_package(Torch) of a CUDA build needs the CUDA toolkit"

# 2. Build (Release, no oneDNN override: the pip LibTorch brings its own kernels).
BUILD=$OUT/build
step configure 120 cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$PREFIX" \
  -DHEAR_ONEDNN=OFF -DHEAR_PCH=ON || { note "total $(($(date +%s) - start)) s"; exit 1; }
step build 330 cmake --build "$BUILD" -j"$JOBS" || { note "total $(($(date +%s) - start)) s"; exit 1; }

# 3. The C++ suite (the Cuda.* tests run here), then the GPU-specific checks on their own.
step unit_tests 150 "$BUILD/tests/hear_tests" --gtest_brief=1 || true
grep -E "^\[  (PASSED|FAILED|SKIPPED) " "$OUT/unit_tests.log" | sed 's/^/    /' | tee -a "$SUMMARY" || true
step cuda_tests 60 "$BUILD/tests/hear_tests" --gtest_filter='Cuda.*' || true
grep -E "^\[ +(OK|FAILED|SKIPPED) +\]" "$OUT/cuda_tests.log" | sed 's/^/    /' | tee -a "$SUMMARY" || true

# 4. hear-bench on the GPU: RTF of the paper model at 10 s, one fine-tuning step (batch 16 x 6 s).
if step rtf_10s 60 "$BUILD/bin/hear-bench" --device cuda --seconds 10 --runs 10 --warmup 3 \
  --json "$OUT/rtf_10s.json"; then
  "$PY" -c "
import json; t = json.load(open('$OUT/rtf_10s.json'))['lengths'][0]['timing']['total']
print(f'    RTF at 10 s on the GPU: {t[\"rtf\"]:.5f} (median {1e3 * t[\"median_s\"]:.2f} ms)')" | tee -a "$SUMMARY"
fi
if step train_finetune 90 "$BUILD/bin/hear-bench" --train finetune --device cuda --batch 16 \
  --seconds 6 --steps 3 --json "$OUT/train_finetune.json"; then
  "$PY" -c "
import json; t = json.load(open('$OUT/train_finetune.json'))['train']
print(f'    fine-tuning step on the GPU: {t[\"median_step_s\"]:.4f} s (batch 16 x 6 s, {t[\"clips_per_s\"]:.1f} clips/s)')" | tee -a "$SUMMARY"
fi
step train_finetune_bf16 60 "$BUILD/bin/hear-bench" --train finetune --device cuda --batch 16 \
  --seconds 6 --steps 3 --precision bf16 --json "$OUT/train_finetune_bf16.json" || true

note "total $(($(date +%s) - start)) s; exit $status"
exit $status
