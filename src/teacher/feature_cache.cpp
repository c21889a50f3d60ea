#include "hear/teacher/feature_cache.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "hear/audio/audio_file.h"
#include "hear/audio/kaldi_fbank.h"
#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/io/safetensors.h"
#include "hear/teacher/sha256.h"

namespace hear::teacher {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kCacheFormatName = "hear-teacher-cache";
constexpr const char* kIndexHeader =
    "path\toffset\tlength\tsamples\tshard\tkey\trows\tteacher_patches";
constexpr int64_t kCacheSampleRate = 16000;

std::string cache_number(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

std::string cache_key_path(const fs::path& p) {
  return fs::absolute(p).lexically_normal().string();
}

std::string shard_name(int64_t i) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "shard_%05lld.safetensors", static_cast<long long>(i));
  return buf;
}

std::string segment_key(int64_t i) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "seg_%08lld", static_cast<long long>(i));
  return buf;
}

int64_t cache_parse_int(const std::string& text, const std::string& where) {
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

std::vector<std::string> cache_split_tabs(const std::string& line) {
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

}  // namespace

// ------------------------------------------------------------------------------ identity

std::vector<std::pair<std::string, std::string>> CacheIdentity::fields() const {
  return {{"format_version", std::to_string(format_version)},
          {"teacher_sha256", teacher_sha256},
          {"teacher_config", teacher_config},
          {"frontend", frontend},
          {"segment_rule", segment_rule},
          {"dtype", dtype}};
}

std::string CacheIdentity::digest() const {
  std::string text;
  for (const auto& [k, v] : fields()) text += k + "=" + v + "\n";
  return sha256_hex(text);
}

std::vector<std::string> CacheIdentity::differences(const CacheIdentity& expected) const {
  std::vector<std::string> out;
  const auto mine = fields(), theirs = expected.fields();
  for (size_t i = 0; i < mine.size(); ++i) {
    if (mine[i].second != theirs[i].second) {
      out.push_back(mine[i].first + ": cache '" + mine[i].second + "' vs expected '" +
                    theirs[i].second + "'");
    }
  }
  return out;
}

std::string teacher_frontend_description(const SsastOptions& options) {
  const audio::KaldiFbankOptions k;
  std::ostringstream s;
  s << "subtract_mean(float32) kaldi_fbank(sample_rate=" << k.sample_rate
    << " num_mel_bins=" << options.n_mels << " frame_length_ms=" << k.frame_length_ms
    << " frame_shift_ms=" << k.frame_shift_ms << " preemphasis=" << k.preemphasis
    << " low_freq=" << k.low_freq << " high_freq=" << k.high_freq
    << " remove_dc_offset=" << (k.remove_dc_offset ? 1 : 0)
    << " window=hanning dither=0 htk_compat snip_edges use_energy=0)"
    << " pad_to=" << options.num_frames << " then (x+4.2677393)/(2*4.5689974)";
  return s.str();
}

std::string describe_segment_rule(const data::SegmentOptions& o) {
  if (o.mode == data::SegmentMode::kConsecutive) {
    return "consecutive max_seconds=" + cache_number(o.max_seconds) +
           " min_seconds=" + cache_number(o.min_seconds);
  }
  if (o.mode == data::SegmentMode::kWhole) {
    if (o.crop_to_seconds > 0 && o.crop_position == data::CropPosition::kRandom) {
      throw Error(
          "a teacher cache needs fixed segments: 'whole' with crop_position 'random' "
          "crops differently every epoch (use 'start' or 'center')");
    }
    return "whole crop_to_seconds=" + cache_number(o.crop_to_seconds) +
           " crop_position=" + (o.crop_to_seconds > 0 ? io::to_string(o.crop_position) : "none") +
           " pad_to_seconds=" + cache_number(o.pad_to_seconds) +
           " min_seconds=" + cache_number(o.min_seconds);
  }
  throw Error("a teacher cache needs fixed segments: segment mode '" + io::to_string(o.mode) +
              "' draws new crops every epoch (use 'consecutive' or 'whole')");
}

CacheIdentity make_cache_identity(const SsastTeacherImpl& teacher,
                                  const std::string& segment_rule) {
  CacheIdentity id;
  id.teacher_sha256 = teacher_weights_sha256(teacher);
  id.teacher_config = teacher.options().summary();
  id.frontend = teacher_frontend_description(teacher.options());
  id.segment_rule = segment_rule;
  return id;
}

// ------------------------------------------------------------------------------ writer

SegmentDecoder default_segment_decoder() {
  return [](const CacheSegment& seg) {
    audio::LoadOptions o;
    o.sample_rate = static_cast<int>(kCacheSampleRate);
    o.offset_s = static_cast<double>(seg.offset) / kCacheSampleRate;
    o.duration_s = seg.whole ? -1.0 : static_cast<double>(seg.length) / kCacheSampleRate;
    at::Tensor w = audio::load_audio(seg.path, o);
    if (w.size(0) > seg.length) w = w.narrow(0, 0, seg.length);
    if (w.size(0) < seg.pad_to) w = torch::constant_pad_nd(w, {0, seg.pad_to - w.size(0)}, 0.0);
    return w;
  };
}

CacheWriteSummary write_teacher_cache(SsastTeacherImpl& teacher, const CacheIdentity& identity,
                                      const std::vector<CacheSegment>& segments,
                                      const fs::path& dir, const CacheWriteOptions& options,
                                      bool overwrite) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string where = "teacher cache '" + dir.string() + "'";
  if (options.shard_size < 1 || options.batch_size < 1) {
    throw Error(where + ": shard_size and batch_size must be >= 1");
  }
  if (segments.empty()) throw Error(where + ": no segments to cache");
  if (identity.teacher_config != teacher.options().summary()) {
    throw Error(where + ": the identity names teacher config '" + identity.teacher_config +
                "' but the teacher is '" + teacher.options().summary() + "'");
  }
  std::set<std::pair<std::string, int64_t>> seen;
  std::vector<std::string> paths;
  for (const auto& s : segments) {
    std::string p = cache_key_path(s.path);
    if (p.find_first_of("\t\n\r") != std::string::npos) {
      throw Error(where + ": path '" + p + "' contains a tab or newline");
    }
    if (s.offset < 0 || s.length < 1) {
      throw Error(where + ": segment '" + p + "' has offset " + std::to_string(s.offset) +
                  " and length " + std::to_string(s.length));
    }
    if (!seen.insert({p, s.offset}).second) {
      throw Error(where + ": segment '" + p + "' at offset " + std::to_string(s.offset) +
                  " is listed twice");
    }
    paths.push_back(std::move(p));
  }
  if (fs::exists(dir / "cache.json") && !overwrite) {
    throw Error(where + " already exists (cache.json); remove it or pass overwrite");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(where + ": cannot create the directory: " + ec.message());
  // A stale cache.json must not outlive the shards it describes.
  fs::remove(dir / "cache.json", ec);
  for (const auto& item : fs::directory_iterator(dir)) {
    const std::string name = item.path().filename().string();
    if (name.rfind("shard_", 0) == 0 && item.path().extension() == ".safetensors") {
      fs::remove(item.path(), ec);
    }
  }

  const SegmentDecoder decode = options.decode ? options.decode : default_segment_decoder();
  const int64_t n = static_cast<int64_t>(segments.size());
  const int64_t max_rows = teacher.options().num_patches();
  const std::string digest = identity.digest();
  CacheWriteSummary summary;
  std::string index = std::string(kIndexHeader) + "\n";
  json shard_list = json::array();

  for (int64_t shard = 0; shard * options.shard_size < n; ++shard) {
    const int64_t begin = shard * options.shard_size;
    const int64_t end = std::min(n, begin + options.shard_size);
    io::TensorMap tensors;
    for (int64_t b0 = begin; b0 < end; b0 += options.batch_size) {
      const int64_t b1 = std::min(end, b0 + options.batch_size);
      std::vector<at::Tensor> waves;
      int64_t longest = 0;
      for (int64_t i = b0; i < b1; ++i) {
        at::Tensor w;
        try {
          w = decode(segments[size_t(i)]);
        } catch (const std::exception& e) {
          throw Error(where + ": cannot decode segment '" + paths[size_t(i)] + "' at offset " +
                      std::to_string(segments[size_t(i)].offset) + ": " + e.what());
        }
        if (!w.defined() || w.dim() != 1) {
          throw Error(where + ": decoding '" + paths[size_t(i)] + "' gave no (S,) waveform");
        }
        waves.push_back(w.to(torch::kFloat));
        longest = std::max(longest, w.size(0));
      }
      at::Tensor batch = torch::zeros({b1 - b0, longest});
      at::Tensor lengths = torch::empty({b1 - b0}, torch::kLong);
      for (int64_t r = 0; r < b1 - b0; ++r) {
        const at::Tensor& w = waves[size_t(r)];
        if (w.size(0) > 0) batch[r].narrow(0, 0, w.size(0)).copy_(w);
        lengths[r] = w.size(0);
      }
      TeacherFeatures f;
      try {
        f = teacher.features(batch, lengths);
      } catch (const Error& e) {
        throw Error(where + ": segment batch starting at '" + paths[size_t(b0)] + "' (offset " +
                    std::to_string(segments[size_t(b0)].offset) + "): " + e.what());
      }
      const at::Tensor features = f.features.to(torch::kCPU);
      for (int64_t r = 0; r < b1 - b0; ++r) {
        const int64_t i = b0 + r;
        const int64_t samples = waves[size_t(r)].size(0);
        const int64_t rows = std::min(max_rows, hear_num_patches(samples));
        at::Tensor half = features[r].slice(0, 0, rows).to(torch::kHalf).contiguous();
        if (!torch::isfinite(half).all().item<bool>()) {
          throw Error(where + ": teacher features of '" + paths[size_t(i)] + "' at offset " +
                      std::to_string(segments[size_t(i)].offset) + " overflow float16");
        }
        const std::string key = segment_key(i);
        tensors[key] = half;
        index += paths[size_t(i)] + "\t" + std::to_string(segments[size_t(i)].offset) + "\t" +
                 std::to_string(segments[size_t(i)].length) + "\t" + std::to_string(samples) +
                 "\t" + std::to_string(shard) + "\t" + key + "\t" + std::to_string(rows) + "\t" +
                 std::to_string(f.valid_patches[r].item<int64_t>()) + "\n";
        summary.total_samples += samples;
        summary.total_rows += rows;
      }
      summary.segments += b1 - b0;
      if (options.progress) options.progress(summary.segments, n);
    }
    const fs::path file = dir / shard_name(shard);
    io::save_safetensors(file, tensors,
                         {{"format", kCacheFormatName}, {"identity_digest", digest}});
    shard_list.push_back({{"file", shard_name(shard)},
                          {"bytes", static_cast<int64_t>(fs::file_size(file))},
                          {"segments", end - begin}});
    ++summary.shards;
  }

  io::write_file_atomic(dir / "index.tsv", index);
  json id = json::object();
  for (const auto& [k, v] : identity.fields()) id[k] = v;
  json meta = {{"format", kCacheFormatName},
               {"format_version", kTeacherCacheFormatVersion},
               {"identity", id},
               {"identity_digest", digest},
               {"embed_dim", teacher.options().embed_dim},
               {"num_segments", n},
               {"shard_size", options.shard_size},
               {"shards", shard_list},
               {"total_samples", summary.total_samples},
               {"total_rows", summary.total_rows}};
  io::write_file_atomic(dir / "cache.json", meta.dump(2) + "\n");
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

// ------------------------------------------------------------------------------ reader

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
      auto f = cache_split_tabs(line);
      if (f.size() != 8) {
        throw Error(at_line + ": expected 8 tab-separated fields, got " + std::to_string(f.size()));
      }
      CacheRecord r;
      r.path = f[0];
      r.offset = cache_parse_int(f[1], at_line);
      r.length = cache_parse_int(f[2], at_line);
      r.samples = cache_parse_int(f[3], at_line);
      r.shard = cache_parse_int(f[4], at_line);
      r.key = f[5];
      r.rows = cache_parse_int(f[6], at_line);
      r.teacher_patches = cache_parse_int(f[7], at_line);
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
  std::ifstream in(shard.file, std::ios::binary);
  if (!in) throw Error(where() + ": cannot open " + name);
  const int64_t file_size = static_cast<int64_t>(fs::file_size(shard.file));
  uint8_t len_bytes[8];
  if (!in.read(reinterpret_cast<char*>(len_bytes), 8)) {
    throw Error(where() + ": " + name + " is shorter than a safetensors header");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > static_cast<uint64_t>(file_size - 8)) {
    throw Error(where() + ": " + name + " has a header length " + std::to_string(header_len) +
                " past the end of the file (" + std::to_string(file_size) + " bytes)");
  }
  std::string header(header_len, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(header_len))) {
    throw Error(where() + ": cannot read the header of " + name);
  }
  json h;
  try {
    h = json::parse(header);
  } catch (const json::exception& e) {
    throw Error(where() + ": " + name + " has a corrupted header: " + e.what());
  }
  const int64_t data_start = 8 + static_cast<int64_t>(header_len);
  try {
    const auto& meta = h.at("__metadata__");
    if (meta.at("identity_digest").get<std::string>() != identity_.digest()) {
      throw Error("it belongs to another cache (identity digest " +
                  meta.at("identity_digest").get<std::string>() + ")");
    }
    for (auto it = h.begin(); it != h.end(); ++it) {
      if (it.key() == "__metadata__") continue;
      const auto& v = it.value();
      if (v.at("dtype").get<std::string>() != "F16") {
        throw Error("tensor '" + it.key() + "' is " + v.at("dtype").get<std::string>() +
                    ", expected F16");
      }
      const auto shape = v.at("shape").get<std::vector<int64_t>>();
      if (shape.size() != 2 || shape[1] != embed_dim_ || shape[0] < 0) {
        throw Error("tensor '" + it.key() + "' has shape " + c10::str(shape) +
                    ", expected [rows, " + std::to_string(embed_dim_) + "]");
      }
      const auto offsets = v.at("data_offsets").get<std::vector<int64_t>>();
      if (offsets.size() != 2 || offsets[0] < 0 ||
          offsets[1] - offsets[0] != shape[0] * shape[1] * 2 ||
          data_start + offsets[1] > file_size) {
        throw Error("tensor '" + it.key() + "' has data offsets outside the file");
      }
      shard.entries[it.key()] = {data_start + offsets[0], shape[0]};
    }
  } catch (const json::exception& e) {
    throw Error(where() + ": " + name + " has a malformed header: " + e.what());
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
