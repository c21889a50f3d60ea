#pragma once
// What the libFuzzer targets share (tests/fuzz/*_fuzz.cpp, scripts/fuzz.sh runs them).
//
// A parser may reject any input, but only with hear::Error (one clear message naming the file):
// anything else -- another exception, a crash, a leak, undefined behaviour, a hang -- is a finding.
// Inputs that name files are written into a scratch folder in /dev/shm (one per process, removed
// at exit) so each execution costs no disk I/O.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hear/error.h"

namespace hear::fuzz {

inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path d = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    d /= "hear-fuzz-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    std::atexit([] { std::filesystem::remove_all(scratch_dir()); });
    return d;
  }();
  return dir;
}

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The input cut at NUL bytes into at most `n` parts (the last part keeps any further NULs).
inline std::vector<std::string> split_parts(const uint8_t* data, size_t size, size_t n) {
  std::vector<std::string> parts;
  std::string all(reinterpret_cast<const char*>(data), size);
  size_t start = 0;
  while (parts.size() + 1 < n) {
    const size_t nul = all.find('\0', start);
    if (nul == std::string::npos) break;
    parts.push_back(all.substr(start, nul - start));
    start = nul + 1;
  }
  parts.push_back(all.substr(start));
  parts.resize(n);
  return parts;
}

// A valid 16 kHz mono 16-bit WAV of `samples` samples (a quiet ramp), for inputs that name clips.
inline std::string tiny_wav(uint32_t samples = 1600, uint32_t rate = 16000) {
  std::string data;
  for (uint32_t i = 0; i < samples; ++i) {
    const int16_t v = static_cast<int16_t>((i % 200) * 50 - 5000);
    data.append(reinterpret_cast<const char*>(&v), 2);
  }
  auto u32 = [](uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [](uint16_t v) { return std::string(reinterpret_cast<const char*>(&v), 2); };
  return "RIFF" + u32(36 + static_cast<uint32_t>(data.size())) + "WAVEfmt " + u32(16) + u16(1) +
         u16(1) + u32(rate) + u32(rate * 2) + u16(2) + u16(16) + "data" +
         u32(static_cast<uint32_t>(data.size())) + data;
}

// Runs `body`; hear::Error is an accepted rejection, everything else propagates to libFuzzer.
template <class Fn>
int run_input(Fn body) {
  try {
    body();
  } catch (const hear::Error&) {
  }
  return 0;
}

}  // namespace hear::fuzz
