#pragma once
// Rules that turn manifest entries into the segments a loader decodes. All lengths in samples at
// 16 kHz. A segment list is a pure function of (entries, options, seed, epoch), so it can be
// rebuilt on resume instead of being saved.
//
// Modes:
// - "random_crop" (pre-training): one segment per clip per epoch; clips longer than max_seconds get
//   a random window of max_seconds (a new one each epoch), shorter clips are used whole.
// - "consecutive" (pre-training): each clip cut into consecutive max_seconds blocks; the last,
//   shorter block is kept if it is at least min_seconds long. The same segments every epoch.
// - "whole" (fine-tuning / evaluation): the whole clip; longer than crop_to_seconds (> 0) -> a
//   window of that length (crop_position: random per epoch, start or center); shorter than
//   pad_to_seconds (> 0) -> zero-padded at the end up to that length.
// In every mode clips shorter than min_seconds are skipped (the paper's 1 s rule for pre-training;
// set 0 to keep everything).
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hear/data/manifest.h"
#include "hear/io/config.h"

namespace hear::data {

enum class SegmentMode { kRandomCrop, kConsecutive, kWhole };
constexpr std::array<std::pair<SegmentMode, const char*>, 3> enum_names(SegmentMode) {
  return {{{SegmentMode::kRandomCrop, "random_crop"},
           {SegmentMode::kConsecutive, "consecutive"},
           {SegmentMode::kWhole, "whole"}}};
}

enum class CropPosition { kRandom, kStart, kCenter };
constexpr std::array<std::pair<CropPosition, const char*>, 3> enum_names(CropPosition) {
  return {{{CropPosition::kRandom, "random"},
           {CropPosition::kStart, "start"},
           {CropPosition::kCenter, "center"}}};
}

struct SegmentOptions {
  SegmentMode mode = SegmentMode::kRandomCrop;  // random_crop | consecutive | whole
  double max_seconds = 6.0;                     // random_crop / consecutive: segment length limit
  double min_seconds = 1.0;      // clips (and consecutive tail blocks) shorter are skipped
  double crop_to_seconds = 0.0;  // whole: crop longer clips to this (0: never)
  CropPosition crop_position = CropPosition::kRandom;  // whole: random | start | center
  double pad_to_seconds = 0.0;  // whole: zero-pad shorter clips up to this (0: never)

  void define(io::ConfigSchema& s) {
    s.field("mode", mode, "random_crop | consecutive | whole");
    s.field("max_seconds", max_seconds, "segment length limit (random_crop, consecutive)")
        .min(0.01);
    s.field("min_seconds", min_seconds, "clips shorter than this are skipped").min(0.0);
    s.field("crop_to_seconds", crop_to_seconds, "whole: crop longer clips (0: never)").min(0.0);
    s.field("crop_position", crop_position, "whole: where the crop starts");
    s.field("pad_to_seconds", pad_to_seconds, "whole: zero-pad shorter clips (0: never)").min(0.0);
  }
  void validate(const io::ConfigCheck& check) const;  // min_seconds <= max_seconds
};

struct Segment {
  int64_t entry = 0;   // index into the manifest entries
  int64_t offset = 0;  // first sample, relative to the entry's own offset (ManifestEntry::offset)
  int64_t length = 0;  // samples to decode (from the manifest's length)
  int64_t pad_to = 0;  // zero-pad the decoded samples up to this length (0: no padding)
  // The uncropped clip of an entry that starts the file: decode to the end of the file whatever
  // its length. Never set for slices (entry offset > 0), which decode exactly `length` samples.
  bool whole = false;
};

struct SegmentList {
  std::vector<Segment> segments;
  int64_t skipped_clips = 0;  // clips shorter than min_seconds
};

int64_t seconds_to_samples(double seconds);

// Deterministic: random crops draw from a hash of (seed, epoch, entry index), independent of order.
SegmentList make_segments(const std::vector<ManifestEntry>& entries, const SegmentOptions& options,
                          uint64_t seed, int64_t epoch);

}  // namespace hear::data
