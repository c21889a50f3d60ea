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
inline constexpr int64_t kCacheSampleRate = 16000;

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

inline int64_t cache_parse_int(const std::string& text, const std::string& where) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) {
    throw Error(where + ": '" + text + "' is not an integer");
  }
  return v;
}

inline std::vector<std::string> cache_split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  return out;
}

}  // namespace hear::teacher::cache_format
