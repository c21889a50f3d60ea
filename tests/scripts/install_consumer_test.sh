#!/usr/bin/env bash
# The installed package: `cmake --install` of the build tree ($HEAR_BUILD_DIR, set by ctest) into a
# temporary prefix, then a consumer project outside the tree: find_package(hear REQUIRED) +
# hear::hear (so every dependency the exported targets name must be found by hearConfig.cmake),
# one small program reading the golden safetensors, writing/decoding audio (libsndfile), running
# the frontend and the Speech Commands split rule (OpenSSL), checked on its output. Also the
# installed hear-bench finds its data file relative to itself (share/hear/scripts).
source "$(dirname "$0")/lib.sh"
BUILD="${HEAR_BUILD_DIR:-$SRC/build/release}"
[ -f "$BUILD/CMakeCache.txt" ] || fail "no CMake build in $BUILD"
cmake --install "$BUILD" --prefix "$T/prefix" > install.log || { cat install.log; fail "install"; }
[ -f "$T/prefix/share/hear/scripts/reference_rtf.py" ] || fail "reference_rtf.py not installed"
# With HEAR_SOURCE_DIR unset the installed program points at its own share/ folder.
env -u HEAR_SOURCE_DIR "$T/prefix/bin/hear-bench" --help > help.txt
grep -qF "$T/prefix/share/hear/scripts/reference_rtf.py" help.txt ||
  fail "hear-bench's default --reference-script: $(grep -A1 reference-script help.txt)"

mkdir consumer
cat > consumer/CMakeLists.txt <<'CMAKE'
cmake_minimum_required(VERSION 3.22)
project(hear_consumer LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 17)
find_package(hear REQUIRED)
add_executable(app main.cpp)
target_link_libraries(app hear::hear)
CMAKE
cat > consumer/main.cpp <<'CPP'
#include <ATen/ATen.h>
#include <hear/audio/audio_file.h>
#include <hear/audio/frontend.h>
#include <hear/data/datasets.h>
#include <hear/io/safetensors.h>

#include <cstdio>

// app GOLDEN.safetensors OUT.wav: clip1 of the golden file through a float WAV and the frontend.
int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const auto golden = hear::io::load_safetensors(argv[1]);
  hear::audio::write_audio(argv[2], golden.tensors.at("clip1/waveform"), 16000,
                           hear::audio::AudioEncoding::kFloat32);
  const auto features = hear::audio::Frontend()(hear::audio::load_audio(argv[2]));
  const at::Tensor diff = (features.log_mel[0] - golden.tensors.at("clip1/log_mel")).abs().max();
  std::printf("hear %s frames %lld log_mel_parity %s split %s\n", HEAR_VERSION,
              static_cast<long long>(features.log_mel.size(2)),
              diff.item<double>() < 1e-3 ? "ok" : "BAD",
              hear::data::speech_commands_split("be1e0823_nohash_0.wav").c_str());
  return 0;
}
CPP
# No build type (no optimisation: one TU, compiled as fast as possible); ccache when there is one.
launcher=()
if command -v ccache > /dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$T" CCACHE_NOHASHDIR=1
fi
cmake -S consumer -B consumer/build -DCMAKE_PREFIX_PATH="$T/prefix" "${launcher[@]}" \
  > configure.log 2>&1 || { cat configure.log; fail "consumer configure"; }
cmake --build consumer/build > build.log 2>&1 || { cat build.log; fail "consumer build"; }
consumer/build/app "$SRC/tests/golden/hear_tiny.safetensors" clip1.wav > app.txt ||
  { cat app.txt; fail "consumer run"; }
cat app.txt
grep -qx "hear [0-9.]* frames 211 log_mel_parity ok split testing" app.txt || fail "consumer output"
echo "install_consumer_test: all checks passed"
