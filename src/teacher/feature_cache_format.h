#pragma once
// Private to the teacher-feature cache: the on-disk names the writer and the reader share.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "hear/error.h"

namespace hear::teacher::cache_format {

namespace fs = std::filesystem;

inline constexpr const char* kCacheFormatName = "hear-teacher-cache";
inline constexpr const char* kIndexHeader =
    "path\toffset\tlength\tsamples\tshard\tkey\trows\tteacher_patches";

inline std::string cache_number(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

inline std::string cache_key_path(const fs::path& p) {
  return fs::absolute(p).lexically_normal().string();
}

inline std::string shard_name(int64_t i) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "shard_%05lld.safetensors", static_cast<long long>(i));
  return buf;
}

inline std::string segment_key(int64_t i) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "seg_%08lld", static_cast<long long>(i));
  return buf;
}

}  // namespace hear::teacher::cache_format
