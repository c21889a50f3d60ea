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
  return io::sha256_hex(text);
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

std::vector<CacheSegment> cache_segments(const std::vector<data::ManifestEntry>& entries,
                                         const data::SegmentOptions& rule, int64_t limit,
                                         int64_t* skipped_clips) {
  describe_segment_rule(rule);  // refuses rules whose segments change every epoch
  const auto list = data::make_segments(entries, rule, /*seed=*/0, /*epoch=*/0);
  if (skipped_clips) *skipped_clips = list.skipped_clips;
  std::vector<CacheSegment> segments;
  for (const auto& s : list.segments) {
    if (limit > 0 && static_cast<int64_t>(segments.size()) >= limit) break;
    const auto& e = entries[static_cast<size_t>(s.entry)];
    // Segment offsets are relative to the entry (a slice of a longer file starts at e.offset).
    segments.push_back({e.path, e.offset + s.offset, s.length, s.pad_to, s.whole});
  }
  return segments;
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

}  // namespace hear::teacher
