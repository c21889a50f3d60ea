#pragma once
// The teacher-feature cache: the SSAST teacher (89M parameters over 514 tokens) costs far more than
// the tokenizer it teaches, so stage 1 can read its features from disk instead of running it.
//
// A cache is a directory:
//   cache.json              format, identity, E, dtype, segment count, shard list (file, bytes,
//                           segments); written last, so its presence marks a complete cache
//   index.tsv               one line per segment: path offset length samples shard key rows
//                           teacher_patches (header line first)
//   shard_00000.safetensors up to shard_size segments, each a F16 tensor `seg_<n>` (rows, E); the
//                           shard's __metadata__ carries the identity digest
//
// rows = min(num_patches, audio::patch_count(samples)): teacher patches 0 .. rows-1, i.e. exactly
// the rows stage 1 pairs with the tokenizer's patches (ssast.h explains the alignment), including
// the last one or two that cover padding frames, as the reference does. teacher_patches is
// teacher_valid_patches(samples), for reference.
//
// Identity: the teacher's weights (SHA-256 of the values, teacher_weights_sha256), its config, the
// frontend recipe, the segment rule and the format version. Opening a cache with an expected
// identity that differs is a hear::Error listing every field that differs. Corrupted shards
// (truncated, bad header, wrong dtype/shape, another cache's shard) and segments not in the index
// are hear::Errors naming the cache, the file and the segment.
//
// Segments are identified by (path, offset): paths are made absolute and lexically normal on both
// sides, so the cache is tied to where the audio lives.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hear/data/segmenter.h"
#include "hear/teacher/ssast.h"

namespace hear::teacher {

constexpr int kTeacherCacheFormatVersion = 1;

struct CacheIdentity {
  int format_version = kTeacherCacheFormatVersion;
  std::string teacher_sha256;  // teacher_weights_sha256
  std::string teacher_config;  // SsastOptions::summary()
  std::string frontend;        // teacher_frontend_description()
  std::string segment_rule;    // how the segments were cut (e.g. describe_segment_rule)
  std::string dtype = "F16";

  std::vector<std::pair<std::string, std::string>> fields() const;  // in a fixed order
  std::string digest() const;  // SHA-256 of the fields: stamped into every shard
  // "teacher_sha256: cache 'ab..' vs expected 'cd..'" for every field that differs.
  std::vector<std::string> differences(const CacheIdentity& expected) const;
};

// The exact teacher input recipe (Kaldi options, mean removal, padding, normalization).
std::string teacher_frontend_description(const SsastOptions& options);

// The segment rule of a data::SegmentOptions, for the identity: "consecutive max_seconds=6
// min_seconds=1", "whole crop_to_seconds=0 crop_position=start pad_to_seconds=0 min_seconds=1".
// Throws hear::Error for rules whose segments change every epoch (random_crop, or whole with random
// crops of longer clips): a cache needs fixed segments. Header-only use of data::SegmentOptions.
std::string describe_segment_rule(const data::SegmentOptions& options);

// Identity for `teacher`: hashes its weights (about 1 s for the base model).
CacheIdentity make_cache_identity(const SsastTeacherImpl& teacher, const std::string& segment_rule);

struct CacheSegment {
  std::filesystem::path path;
  int64_t offset = 0;  // first sample (16 kHz)
  int64_t length = 0;  // samples to decode (a cap when `whole`)
  int64_t pad_to = 0;  // zero-pad the decoded samples up to this (0: none)
  bool whole = false;  // decode to the end of the file (then cap at length)
};

// The segments a cache holds for `entries` cut by `rule` (the segmenter's epoch 0, which is every
// epoch for fixed rules): exactly the segments stage 1 asks the cache for with the same
// data.loader.segments. `limit` > 0 keeps only the first ones. `skipped_clips` (optional)
// receives the number of clips shorter than the rule's minimum.
std::vector<CacheSegment> cache_segments(const std::vector<data::ManifestEntry>& entries,
                                         const data::SegmentOptions& rule, int64_t limit = 0,
                                         int64_t* skipped_clips = nullptr);

// Decodes a segment to (S,) float32 at 16 kHz. The default mirrors the data loader
// (hear::audio::load_audio with offset/duration, capped at length, zero-padded to pad_to), so the
// cache holds what the live teacher would see.
using SegmentDecoder = std::function<at::Tensor(const CacheSegment&)>;
SegmentDecoder default_segment_decoder();

struct CacheWriteOptions {
  int64_t shard_size = 256;  // segments per shard file
  int64_t batch_size = 4;    // segments per teacher forward
  SegmentDecoder decode;     // empty: default_segment_decoder()
  // Called after every batch with (segments done, total).
  std::function<void(int64_t, int64_t)> progress;
};

struct CacheWriteSummary {
  int64_t segments = 0;
  int64_t shards = 0;
  int64_t total_samples = 0;  // decoded samples over all segments
  int64_t total_rows = 0;
  double seconds = 0.0;  // wall time of the whole write
};

// Runs the teacher once per segment and writes the cache into `dir` (created; an existing cache
// there is an error unless `overwrite`; shards left by an interrupted run are replaced). Duplicate
// (path, offset) segments are an error, and so is a segment the teacher cannot take (> num_frames
// Kaldi frames), named in the message. Segments are batched in order, batch_size at a time.
CacheWriteSummary write_teacher_cache(SsastTeacherImpl& teacher, const CacheIdentity& identity,
                                      const std::vector<CacheSegment>& segments,
                                      const std::filesystem::path& dir,
                                      const CacheWriteOptions& options = {},
                                      bool overwrite = false);

struct CacheRecord {
  std::string path;  // absolute, normal
  int64_t offset = 0;
  int64_t length = 0;   // the segment's length
  int64_t samples = 0;  // decoded (and padded) samples the teacher saw
  int64_t shard = 0;
  std::string key;
  int64_t rows = 0;
  int64_t teacher_patches = 0;
};

// Reader. Thread-safe. Opens cache.json and index.tsv eagerly; a shard's header is read and checked
// the first time one of its segments is asked for, and each lookup reads just that segment's bytes.
class TeacherFeatureCache {
 public:
  // Throws hear::Error when the cache is incomplete or malformed, and, given `expected`, when its
  // identity differs (listing every difference).
  explicit TeacherFeatureCache(const std::filesystem::path& dir,
                               const std::optional<CacheIdentity>& expected = std::nullopt);
  ~TeacherFeatureCache();

  const CacheIdentity& identity() const { return identity_; }
  const std::filesystem::path& dir() const { return dir_; }
  int64_t size() const { return static_cast<int64_t>(records_.size()); }
  int64_t embed_dim() const { return embed_dim_; }
  const std::vector<CacheRecord>& records() const { return records_; }

  bool contains(const std::filesystem::path& path, int64_t offset) const;
  const CacheRecord& record(const std::filesystem::path& path, int64_t offset) const;

  // (rows, E) float32 on the CPU. `length` (>= 0) must equal the segment's length or its decoded
  // sample count (the loader's batch lengths); < 0 skips that check.
  at::Tensor features(const std::filesystem::path& path, int64_t offset, int64_t length = -1) const;

  // A batch: (B, R, E) float32, R = max rows, zero after each row's own rows; rows (B,) int64.
  std::pair<at::Tensor, at::Tensor> batch_features(const std::vector<std::string>& paths,
                                                   const std::vector<int64_t>& offsets,
                                                   const std::vector<int64_t>& lengths) const;

 private:
  struct ShardEntry {
    int64_t begin = 0;  // absolute byte offset in the file
    int64_t rows = 0;
  };
  struct Shard {
    std::filesystem::path file;
    int64_t bytes = 0;
    bool opened = false;
    std::map<std::string, ShardEntry> entries;
  };
  void open_shard(Shard& shard) const;  // caller holds mutex_
  std::string where() const;

  std::filesystem::path dir_;
  CacheIdentity identity_;
  int64_t embed_dim_ = 0;
  std::vector<CacheRecord> records_;
  std::map<std::pair<std::string, int64_t>, size_t> by_key_;
  mutable std::vector<Shard> shards_;
  mutable std::mutex mutex_;
};

}  // namespace hear::teacher
