#include "hear/data/segmenter.h"

#include <algorithm>
#include <cmath>

#include "hear/audio/audio_file.h"
#include "hear/error.h"
#include "hear/util/random.h"

namespace hear::data {

int64_t seconds_to_samples(double seconds) {
  return static_cast<int64_t>(std::llround(seconds * audio::kSampleRate));
}

void SegmentOptions::validate(const io::ConfigCheck& check) const {
  if (mode != SegmentMode::kWhole && seconds_to_samples(max_seconds) < 1) {
    check.fail("max_seconds", "must be at least one sample, got " + std::to_string(max_seconds));
  }
  if (mode != SegmentMode::kWhole && min_seconds > max_seconds) {
    check.fail("min_seconds", std::to_string(min_seconds) + " exceeds " + check.key("max_seconds") +
                                  " (" + std::to_string(max_seconds) + ")");
  }
}

SegmentList make_segments(const std::vector<ManifestEntry>& entries, const SegmentOptions& options,
                          uint64_t seed, int64_t epoch) {
  io::validate_config(options, "segments");
  const int64_t max_len = seconds_to_samples(options.max_seconds);
  const int64_t min_len = seconds_to_samples(options.min_seconds);
  const int64_t crop_to = seconds_to_samples(options.crop_to_seconds);
  const int64_t pad_to = seconds_to_samples(options.pad_to_seconds);
  // A random offset in [0, span] drawn from (seed, epoch, entry).
  auto draw = [&](int64_t entry, int64_t span) -> int64_t {
    const uint64_t h = util::mix_seed(util::mix_seed(seed, static_cast<uint64_t>(epoch)),
                                      static_cast<uint64_t>(entry));
    return static_cast<int64_t>(h % static_cast<uint64_t>(span + 1));
  };
  SegmentList out;
  out.segments.reserve(entries.size());
  for (int64_t i = 0; i < static_cast<int64_t>(entries.size()); ++i) {
    const ManifestEntry& entry = entries[static_cast<size_t>(i)];
    const int64_t n = entry.num_samples;
    if (entry.offset < 0) {
      throw Error("manifest entry '" + entry.path.string() + "' has a negative offset (" +
                  std::to_string(entry.offset) + ")");
    }
    // A slice (offset > 0) is never "the whole file": it must stop after its own length.
    const bool file_start = entry.offset == 0;
    if (n < std::max<int64_t>(min_len, 1)) {
      ++out.skipped_clips;
      continue;
    }
    if (options.mode == SegmentMode::kRandomCrop) {
      const int64_t len = std::min(n, max_len);
      out.segments.push_back({i, n > len ? draw(i, n - len) : 0, len, 0, file_start && n <= len});
    } else if (options.mode == SegmentMode::kConsecutive) {
      for (int64_t start = 0; start < n; start += max_len) {
        const int64_t len = std::min(max_len, n - start);
        if (start > 0 && len < min_len) break;
        out.segments.push_back({i, start, len, 0, file_start && n <= max_len});
      }
    } else {
      int64_t offset = 0, len = n;
      if (crop_to > 0 && n > crop_to) {
        len = crop_to;
        if (options.crop_position == CropPosition::kRandom) {
          offset = draw(i, n - len);
        } else if (options.crop_position == CropPosition::kCenter) {
          offset = (n - len) / 2;
        }
      }
      out.segments.push_back({i, offset, len, pad_to, file_start && len == n});
    }
  }
  return out;
}

}  // namespace hear::data
