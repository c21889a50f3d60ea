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
#include "hear/audio/frontend.h"
#include "hear/audio/kaldi_fbank.h"
#include "hear/audio/waveform_batch.h"
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

SegmentDecoder default_segment_decoder() {
  return [](const CacheSegment& seg) {
    audio::LoadOptions o;
    o.sample_rate = static_cast<int>(audio::kSampleRate);
    o.offset_s = static_cast<double>(seg.offset) / audio::kSampleRate;
    o.duration_s = seg.whole ? -1.0 : static_cast<double>(seg.length) / audio::kSampleRate;
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
      }
      const auto batch = audio::pad_waveforms(waves);
      TeacherFeatures f;
      try {
        f = teacher.features(batch.waveforms, batch.lengths);
      } catch (const Error& e) {
        throw Error(where + ": segment batch starting at '" + paths[size_t(b0)] + "' (offset " +
                    std::to_string(segments[size_t(b0)].offset) + "): " + e.what());
      }
      const at::Tensor features = f.features.to(torch::kCPU);
      for (int64_t r = 0; r < b1 - b0; ++r) {
        const int64_t i = b0 + r;
        const int64_t samples = waves[size_t(r)].size(0);
        const int64_t rows = std::min(max_rows, audio::patch_count(samples));
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

}  // namespace hear::teacher
