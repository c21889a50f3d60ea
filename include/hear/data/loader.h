#pragma once
// Batches of decoded audio, produced by background threads.
//
// Determinism: the content of a batch depends only on (seed, epoch, batch index): the epoch's
// segments (segmenter.h) and its batch plan (BatchSampler) are pure functions of them, and workers
// hand batches over strictly in order. So the number of threads changes speed, never results, and
// a position (epoch, batch) saved in a checkpoint restores the stream exactly.
//
// Memory: at most `queue_capacity` batches exist at any time (being decoded or waiting), never the
// corpus.
#include <ATen/core/Tensor.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hear/data/manifest.h"
#include "hear/data/segmenter.h"
#include "hear/io/config.h"

namespace hear::data {

struct Batch {
  at::Tensor waveforms;  // (B, S) float32, zero-padded after each clip's length
  at::Tensor lengths;    // (B,) int64, valid samples per row (includes pad_to padding)
  at::Tensor labels;     // (B,) int64, -1 for unlabelled clips
  std::vector<std::string> paths;
  // First sample of each row's segment in its file (entry offset + segment offset), so that
  // (path, offset) identifies the segment even for slices of one file.
  std::vector<int64_t> offsets;
  int64_t epoch = 0;
  int64_t index = 0;  // batch index within the epoch
  bool last_in_epoch = false;
  int64_t size() const { return static_cast<int64_t>(paths.size()); }
};

// The batch with its tensors on `device` (waveforms, lengths, labels; the rest copied).
Batch to_device(const Batch& batch, const c10::Device& device);

// Position of the next batch to be delivered.
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t batch = 0;
  bool operator==(const LoaderPosition& o) const { return epoch == o.epoch && batch == o.batch; }
};

struct SamplerOptions {
  int64_t batch_size = 8;
  bool shuffle = true;
  bool drop_last = false;  // drop the final incomplete batch of each epoch
  // Length bucketing: the shuffled order is cut into pools of bucket_pool batches, each pool is
  // sorted by length and cut into batches, and the batch order is shuffled. 0: off.
  int64_t bucket_pool = 0;
  int64_t seed = 0;
  // Data-parallel sharding (set by the stage skeleton, not a config key): the epoch is planned in
  // global batches of batch_size x shard_count, and this process takes the shard_rank-th of
  // shard_count even slices of each, so the global batches do not depend on the world size. A
  // final global batch smaller than shard_count is dropped.
  int64_t shard_rank = 0;
  int64_t shard_count = 1;

  void define(io::ConfigSchema& s) {
    s.field("batch_size", batch_size, "clips per batch (per process in data-parallel runs)").min(1);
    s.field("shuffle", shuffle, "shuffle every epoch (seeded)");
    s.field("drop_last", drop_last, "drop each epoch's final incomplete batch");
    s.field("bucket_pool", bucket_pool, "length bucketing pool, in batches (0: off)").min(0);
    s.field("seed", seed, "sampler and crop seed");
  }
};

// Deterministic batch plans: which segment indices form each batch of an epoch.
class BatchSampler {
 public:
  explicit BatchSampler(SamplerOptions options) : options_(options) {}
  const SamplerOptions& options() const { return options_; }
  // Batches of segment indices for `epoch`; `lengths` (one per segment) are used for bucketing.
  std::vector<std::vector<int64_t>> plan(const std::vector<int64_t>& lengths, int64_t epoch) const;
  int64_t num_batches(int64_t num_items) const;

 private:
  SamplerOptions options_;
};

// Decodes samples [offset, offset + length) of an entry as (S,) float32 at 16 kHz, where `offset`
// counts from the entry's start (entry.offset samples into the file); length < 0 means "to the end
// of the file" (only asked for entries with offset 0). Must be thread-safe. May return fewer
// samples near the end.
using DecodeFn =
    std::function<at::Tensor(const ManifestEntry& entry, int64_t offset, int64_t length)>;

// The default: hear::audio::load_audio with offset (entry.offset + offset) and duration.
DecodeFn audio_file_decoder();

// What a clip that cannot be decoded mid-run (deleted, truncated, NaN/Inf samples) does to its
// batch: stop the run with an error naming the file, or leave the clip out of the batch (logged by
// name and counted, DataLoader::skipped_files). A batch whose every clip fails is an error either
// way.
enum class OnDataError { kStop, kSkip };
constexpr std::array<std::pair<OnDataError, const char*>, 2> enum_names(OnDataError) {
  return {{{OnDataError::kStop, "stop"}, {OnDataError::kSkip, "skip"}}};
}

struct LoaderOptions {
  SamplerOptions sampler;
  SegmentOptions segments;
  int num_workers = 2;         // decoding threads (0: decode on the caller's thread)
  int64_t queue_capacity = 8;  // batches alive at once (decoding + ready); >= 1
  int64_t max_epochs = 0;      // next() returns nullopt after this many epochs (0: endless)
  // Not under `loader`: each stage's data section defines it as `data.on_error`
  // (define_on_error), next to the manifests it is about.
  OnDataError on_error = OnDataError::kStop;

  void define(io::ConfigSchema& s) {
    s.section("sampler", sampler);
    s.section("segments", segments);
    s.field("num_workers", num_workers, "background decoding threads").min(0);
    s.field("queue_capacity", queue_capacity, "batches in flight (bounded memory)").min(1);
  }
};

// Defines `on_error` in a data section.
void define_on_error(io::ConfigSchema& s, OnDataError& on_error);

class DataLoader {
 public:
  // `labels`: maps entry labels to indices. nullopt: built from the entries' labels
  // (LabelMap::from_entries). An empty LabelMap ignores labels (every row gets -1, e.g. for
  // pre-training on a labelled manifest). Entries without a label get -1.
  DataLoader(std::vector<ManifestEntry> entries, LoaderOptions options,
             std::optional<LabelMap> labels = std::nullopt, DecodeFn decode = audio_file_decoder());
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // The next batch in order; std::nullopt after max_epochs. Rethrows decoding errors as
  // hear::Error naming the file.
  std::optional<Batch> next();

  LoaderPosition position() const;       // of the next batch next() returns
  void seek(const LoaderPosition& pos);  // drops queued work; the next batch is `pos`
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  int64_t segments_per_epoch() const { return segments_per_epoch_; }
  int64_t skipped_clips() const { return skipped_clips_; }  // too short for the segment rule
  // Clips left out of their batch for a decoding error (on_error: skip), since construction.
  int64_t skipped_files() const { return skipped_files_.load(); }
  const LabelMap& labels() const { return labels_; }
  const std::vector<ManifestEntry>& entries() const { return entries_; }
  // Largest number of batches that were alive (claimed by a worker, not yet delivered) at once.
  int64_t max_in_flight() const;

 private:
  struct EpochPlan {
    std::vector<Segment> segments;
    std::vector<std::vector<int64_t>> batches;
  };
  std::shared_ptr<const EpochPlan> plan_for(int64_t epoch);  // caller holds mutex_
  Batch build(int64_t ticket, const EpochPlan& plan) const;
  LoaderPosition position_of(int64_t ticket) const;
  void start_workers();
  void stop_workers();
  void worker_loop();

  std::vector<ManifestEntry> entries_;
  LoaderOptions options_;
  LabelMap labels_;
  std::vector<int64_t> label_index_;  // per entry
  DecodeFn decode_;
  BatchSampler sampler_;
  int64_t batches_per_epoch_ = 0;
  int64_t segments_per_epoch_ = 0;
  int64_t skipped_clips_ = 0;
  mutable std::atomic<int64_t> skipped_files_{0};

  // Tickets number batches from epoch 0 batch 0: ticket = epoch * batches_per_epoch + batch.
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  int64_t next_claim_ = 0;
  int64_t next_deliver_ = 0;
  int64_t end_ticket_ = -1;  // -1: endless
  int64_t max_in_flight_ = 0;
  bool stop_ = false;
  std::map<int64_t, Batch> ready_;
  std::map<int64_t, std::exception_ptr> failed_;
  std::map<int64_t, std::shared_ptr<const EpochPlan>> plans_;
  std::vector<std::thread> workers_;
};

}  // namespace hear::data
