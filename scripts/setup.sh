#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests and the main job need. Idempotent: when all
# packages are present it does nothing (no apt-get update, no network).
# Only Debian `main` is needed.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config ccache git
  libtorch-dev          # LibTorch 1.13 (CPU)
  libopenblas0-openmp   # without it Debian's torch falls back to the reference BLAS (~18x slower);
                        # the -pthread flavour ignores at::set_num_threads
  libgloo-dev           # Gloo headers for c10d data-parallel training (symbols are in libtorch)
  libdnnl-dev           # oneDNN (the one LibTorch links): float32 GEMM ~2x OpenBLAS on AVX-512
  libsndfile1-dev libsoxr-dev
  libssl-dev            # libcrypto: SHA-1 / SHA-256
  libyaml-cpp-dev libspdlog-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev googletest
  python3 python3-numpy python3-torch python3-torchaudio python3-matplotlib
  python3-pydantic      # the official code's configs, for hear-bench --compare-reference
  python3-dev pybind11-dev python3-pybind11 python3-pytest  # the hear_cpp Python module + tests
  sox espeak-ng
  clang libclang-rt-14-dev  # libFuzzer + sanitizer runtimes for the fuzz targets (tests/fuzz)
)

source "$(dirname "$0")/apt_install.sh"
apt_install setup "${PACKAGES[@]}"
