#include "hear/teacher/feature_cache.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "feature_cache_format.h"
#include "hear/audio/audio_file.h"
#include "hear/audio/kaldi_fbank.h"
#include "hear/data/segmenter.h"
#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/io/safetensors.h"
#include "hear/io/sha256.h"
#include "hear/util/strings.h"

namespace hear::teacher {
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace cache_format;

std::string TeacherFeatureCache::where() const {
  return "teacher cache '" + dir_.string() + "'";
}

TeacherFeatureCache::TeacherFeatureCache(const fs::path& dir,
                                         const std::optional<CacheIdentity>& expected)
    : dir_(dir) {
  const fs::path meta_path = dir / "cache.json";
  if (!fs::exists(meta_path)) {
    throw Error(where() +
                " is missing or incomplete: no cache.json (a cache is complete only "
                "once hear-teacher-cache finishes)");
  }
  json meta;
  try {
    meta = json::parse(io::read_file(meta_path));
    if (meta.at("format").get<std::string>() != kCacheFormatName) {
      throw Error("format is '" + meta.at("format").get<std::string>() + "'");
    }
    const int version = meta.at("format_version").get<int>();
    const auto& id = meta.at("identity");
    identity_.format_version = std::stoi(id.at("format_version").get<std::string>());
    identity_.teacher_sha256 = id.at("teacher_sha256").get<std::string>();
    identity_.teacher_config = id.at("teacher_config").get<std::string>();
    identity_.frontend = id.at("frontend").get<std::string>();
    identity_.segment_rule = id.at("segment_rule").get<std::string>();
    identity_.dtype = id.at("dtype").get<std::string>();
    if (version != identity_.format_version) throw Error("format_version fields disagree");
    embed_dim_ = meta.at("embed_dim").get<int64_t>();
    for (const auto& s : meta.at("shards")) {
      Shard shard;
      shard.file = dir / s.at("file").get<std::string>();
      shard.bytes = s.at("bytes").get<int64_t>();
      shards_.push_back(std::move(shard));
    }
    const int64_t num_segments = meta.at("num_segments").get<int64_t>();
    if (meta.at("identity_digest").get<std::string>() != identity_.digest()) {
      throw Error("identity_digest does not match the identity fields (edited by hand?)");
    }
    // Index.
    const std::string text = io::read_file(dir / "index.tsv");
    std::istringstream lines(text);
    std::string line;
    int64_t line_no = 0;
    while (std::getline(lines, line)) {
      ++line_no;
      const std::string at_line = "index.tsv:" + std::to_string(line_no);
      if (line_no == 1) {
        if (line != kIndexHeader) throw Error(at_line + ": unexpected header '" + line + "'");
        continue;
      }
      if (line.empty()) continue;
      auto f = util::split(line, '\t');
      if (f.size() != 8) {
        throw Error(at_line + ": expected 8 tab-separated fields, got " + std::to_string(f.size()));
      }
      CacheRecord r;
      r.path = f[0];
      r.offset = util::parse_int(f[1], at_line);
      r.length = util::parse_int(f[2], at_line);
      r.samples = util::parse_int(f[3], at_line);
      r.shard = util::parse_int(f[4], at_line);
      r.key = f[5];
      r.rows = util::parse_int(f[6], at_line);
      r.teacher_patches = util::parse_int(f[7], at_line);
      if (r.shard < 0 || r.shard >= static_cast<int64_t>(shards_.size())) {
        throw Error(at_line + ": shard " + std::to_string(r.shard) + " is not one of the " +
                    std::to_string(shards_.size()) + " shards in cache.json");
      }
      if (!by_key_.emplace(std::make_pair(r.path, r.offset), records_.size()).second) {
        throw Error(at_line + ": segment '" + r.path + "' at offset " + std::to_string(r.offset) +
                    " is listed twice");
      }
      records_.push_back(std::move(r));
    }
    if (static_cast<int64_t>(records_.size()) != num_segments) {
      throw Error("index.tsv has " + std::to_string(records_.size()) +
                  " segments, cache.json says " + std::to_string(num_segments) + " (truncated?)");
    }
  } catch (const json::exception& e) {
    throw Error(where() + ": malformed cache.json: " + e.what());
  } catch (const Error& e) {
    throw Error(where() + ": " + e.what());
  } catch (const std::exception& e) {
    throw Error(where() + ": malformed cache.json or index.tsv: " + e.what());
  }
  if (expected) {
    const auto diffs = identity_.differences(*expected);
    if (!diffs.empty()) {
      std::string msg = where() + " was made for a different teacher setup";
      for (const auto& d : diffs) msg += "; " + d;
      throw Error(msg);
    }
  }
  for (const auto& shard : shards_) {
    std::error_code ec;
    const auto size = fs::file_size(shard.file, ec);
    if (ec)
      throw Error(where() + ": shard '" + shard.file.string() + "' is missing: " + ec.message());
    if (static_cast<int64_t>(size) != shard.bytes) {
      throw Error(where() + ": shard '" + shard.file.string() + "' has " + std::to_string(size) +
                  " bytes, cache.json says " + std::to_string(shard.bytes) +
                  " (truncated or replaced)");
    }
  }
}

TeacherFeatureCache::~TeacherFeatureCache() = default;

void TeacherFeatureCache::open_shard(Shard& shard) const {
  const std::string name = "shard '" + shard.file.string() + "'";
  io::SafetensorsHeader header;
  try {
    header = io::read_safetensors_header(shard.file);
  } catch (const Error& e) {
    throw Error(where() + ": " + e.what());
  }
  try {
    const auto digest = header.metadata.find("identity_digest");
    if (digest == header.metadata.end()) throw Error("it has no identity_digest metadata");
    if (digest->second != identity_.digest()) {
      throw Error("it belongs to another cache (identity digest " + digest->second + ")");
    }
    for (const auto& [key, e] : header.tensors) {
      if (e.dtype != at::kHalf) {
        throw Error("tensor '" + key + "' is " + c10::toString(e.dtype) + ", expected F16");
      }
      if (e.shape.size() != 2 || e.shape[1] != embed_dim_) {
        throw Error("tensor '" + key + "' has shape " + c10::str(e.shape) + ", expected [rows, " +
                    std::to_string(embed_dim_) + "]");
      }
      shard.entries[key] = {static_cast<int64_t>(header.data_start + e.begin), e.shape[0]};
    }
  } catch (const Error& e) {
    throw Error(where() + ": " + name + ": " + e.what());
  }
  shard.opened = true;
}

bool TeacherFeatureCache::contains(const fs::path& path, int64_t offset) const {
  return by_key_.count({cache_key_path(path), offset}) > 0;
}

const CacheRecord& TeacherFeatureCache::record(const fs::path& path, int64_t offset) const {
  auto it = by_key_.find({cache_key_path(path), offset});
  if (it == by_key_.end()) {
    throw Error(where() + " has no features for '" + cache_key_path(path) + "' at offset " +
                std::to_string(offset) + " (it holds " + std::to_string(records_.size()) +
                " segments cut by '" + identity_.segment_rule +
                "'; rebuild it for this manifest and segment rule)");
  }
  return records_[it->second];
}

at::Tensor TeacherFeatureCache::features(const fs::path& path, int64_t offset,
                                         int64_t length) const {
  const CacheRecord& r = record(path, offset);
  if (length >= 0 && length != r.length && length != r.samples) {
    throw Error(where() + ": segment '" + r.path + "' at offset " + std::to_string(offset) +
                " was cached with length " + std::to_string(r.length) + " (" +
                std::to_string(r.samples) + " samples decoded), asked for " +
                std::to_string(length));
  }
  ShardEntry entry;
  fs::path file;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Shard& shard = shards_[static_cast<size_t>(r.shard)];
    if (!shard.opened) open_shard(shard);
    auto it = shard.entries.find(r.key);
    if (it == shard.entries.end()) {
      throw Error(where() + ": shard '" + shard.file.string() + "' lacks tensor '" + r.key +
                  "' listed in index.tsv for '" + r.path + "'");
    }
    entry = it->second;
    file = shard.file;
  }
  if (entry.rows != r.rows) {
    throw Error(where() + ": tensor '" + r.key + "' in '" + file.string() + "' has " +
                std::to_string(entry.rows) + " rows, index.tsv says " + std::to_string(r.rows));
  }
  at::Tensor half = torch::empty({r.rows, embed_dim_}, torch::kHalf);
  const auto bytes = static_cast<std::streamsize>(r.rows * embed_dim_ * 2);
  std::ifstream in(file, std::ios::binary);
  in.seekg(entry.begin);
  if (!in || !in.read(static_cast<char*>(half.data_ptr()), bytes)) {
    throw Error(where() + ": cannot read tensor '" + r.key + "' from '" + file.string() +
                "' (truncated?)");
  }
  return half.to(torch::kFloat);
}

std::pair<at::Tensor, at::Tensor> TeacherFeatureCache::batch_features(
    const std::vector<std::string>& paths, const std::vector<int64_t>& offsets,
    const std::vector<int64_t>& lengths) const {
  if (paths.size() != offsets.size() || (!lengths.empty() && lengths.size() != paths.size())) {
    throw Error(where() + ": batch_features needs as many offsets (and lengths) as paths");
  }
  const int64_t b = static_cast<int64_t>(paths.size());
  std::vector<at::Tensor> rows;
  int64_t longest = 0;
  for (int64_t i = 0; i < b; ++i) {
    rows.push_back(
        features(paths[size_t(i)], offsets[size_t(i)], lengths.empty() ? -1 : lengths[size_t(i)]));
    longest = std::max(longest, rows.back().size(0));
  }
  at::Tensor out = torch::zeros({b, longest, embed_dim_});
  at::Tensor counts = torch::empty({b}, torch::kLong);
  for (int64_t i = 0; i < b; ++i) {
    const auto& f = rows[size_t(i)];
    if (f.size(0) > 0) out[i].narrow(0, 0, f.size(0)).copy_(f);
    counts[i] = f.size(0);
  }
  return {out, counts};
}

}  // namespace hear::teacher
