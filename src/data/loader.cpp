#include "hear/data/loader.h"

#include <torch/torch.h>

#include <algorithm>

#include <spdlog/spdlog.h>
#include "hear/audio/audio_file.h"
#include "hear/audio/waveform_batch.h"

#include "hear/error.h"
#include "hear/util/random.h"

namespace hear::data {

Batch to_device(const Batch& batch, const c10::Device& device) {
  Batch out = batch;
  out.waveforms = batch.waveforms.to(device);
  out.lengths = batch.lengths.to(device);
  if (batch.labels.defined()) out.labels = batch.labels.to(device);
  return out;
}

namespace {

template <class T>
void shuffle_in_place(std::vector<T>& v, util::SplitMix64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng() % i);
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace

int64_t BatchSampler::num_batches(int64_t num_items) const {
  const int64_t shards = options_.shard_count, bs = options_.batch_size * shards;
  const int64_t full = num_items / bs, rest = num_items % bs;
  return options_.drop_last ? full : full + (rest >= shards ? 1 : 0);
}

std::vector<std::vector<int64_t>> BatchSampler::plan(const std::vector<int64_t>& lengths,
                                                     int64_t epoch) const {
  if (options_.batch_size < 1) {
    throw Error("batch_size must be >= 1, got " + std::to_string(options_.batch_size));
  }
  if (options_.shard_count < 1 || options_.shard_rank < 0 ||
      options_.shard_rank >= options_.shard_count) {
    throw Error("sampler: shard " + std::to_string(options_.shard_rank) + " of " +
                std::to_string(options_.shard_count) + " is not a valid shard");
  }
  if (options_.shard_count > 1) {
    SamplerOptions global = options_;
    global.batch_size *= options_.shard_count;
    global.shard_rank = 0;
    global.shard_count = 1;
    const int64_t shards = options_.shard_count, r = options_.shard_rank;
    std::vector<std::vector<int64_t>> mine;
    for (const auto& batch : BatchSampler(global).plan(lengths, epoch)) {
      const int64_t m = static_cast<int64_t>(batch.size());
      if (m < shards) continue;  // cannot give every process a clip
      mine.emplace_back(batch.begin() + r * m / shards, batch.begin() + (r + 1) * m / shards);
    }
    return mine;
  }
  const int64_t n = static_cast<int64_t>(lengths.size());
  const int64_t bs = options_.batch_size;
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  util::SplitMix64 rng{
      util::mix_seed(static_cast<uint64_t>(options_.seed), static_cast<uint64_t>(epoch))};
  if (options_.shuffle) shuffle_in_place(order, rng);
  std::vector<std::vector<int64_t>> batches;
  auto cut = [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b += bs) {
      batches.emplace_back(order.begin() + b, order.begin() + std::min(end, b + bs));
    }
  };
  if (options_.bucket_pool > 0) {
    const int64_t pool = options_.bucket_pool * bs;
    for (int64_t p = 0; p < n; p += pool) {
      const int64_t end = std::min(n, p + pool);
      std::stable_sort(order.begin() + p, order.begin() + end, [&](int64_t a, int64_t b) {
        return lengths[static_cast<size_t>(a)] < lengths[static_cast<size_t>(b)];
      });
      cut(p, end);
    }
  } else {
    cut(0, n);
  }
  if (options_.drop_last && !batches.empty() && static_cast<int64_t>(batches.back().size()) < bs) {
    batches.pop_back();  // only the very last can be short: pools are whole batches
  }
  if (options_.shuffle && options_.bucket_pool > 0) shuffle_in_place(batches, rng);
  return batches;
}

void define_on_error(io::ConfigSchema& s, OnDataError& on_error) {
  s.field("on_error", on_error,
          "a clip that cannot be decoded during the run (deleted, truncated, NaN/Inf): stop the "
          "run naming it, or skip it (logged by name and counted)");
}

DecodeFn audio_file_decoder() {
  return [](const ManifestEntry& entry, int64_t offset, int64_t length) {
    audio::LoadOptions o;
    o.sample_rate = static_cast<int>(audio::kSampleRate);
    o.offset_s = static_cast<double>(entry.offset + offset) / audio::kSampleRate;
    o.duration_s = length < 0 ? -1.0 : static_cast<double>(length) / audio::kSampleRate;
    return audio::load_audio(entry.path, o);
  };
}

DataLoader::DataLoader(std::vector<ManifestEntry> entries, LoaderOptions options,
                       std::optional<LabelMap> labels, DecodeFn decode)
    : entries_(std::move(entries)),
      options_(std::move(options)),
      labels_(labels ? std::move(*labels) : LabelMap::from_entries(entries_)),
      decode_(std::move(decode)),
      sampler_(options_.sampler) {
  if (options_.sampler.batch_size < 1) {
    throw Error("data loader: batch_size must be >= 1, got " +
                std::to_string(options_.sampler.batch_size));
  }
  if (options_.queue_capacity < 1) {
    throw Error("data loader: queue_capacity must be >= 1, got " +
                std::to_string(options_.queue_capacity));
  }
  if (options_.num_workers < 0) throw Error("data loader: num_workers must be >= 0");
  if (!decode_) throw Error("data loader: no decode function");
  label_index_.reserve(entries_.size());
  for (const auto& e : entries_) {
    try {
      label_index_.push_back(e.label.empty() || labels_.size() == 0 ? -1 : labels_.index(e.label));
    } catch (const Error& err) {
      throw Error("data loader: '" + e.path.string() + "': " + err.what());
    }
  }
  // Segment and batch counts are the same every epoch (only crop offsets and order change).
  const SegmentList first =
      make_segments(entries_, options_.segments, static_cast<uint64_t>(options_.sampler.seed), 0);
  segments_per_epoch_ = static_cast<int64_t>(first.segments.size());
  skipped_clips_ = first.skipped_clips;
  batches_per_epoch_ = sampler_.num_batches(segments_per_epoch_);
  if (batches_per_epoch_ == 0) {
    throw Error("data loader: no batches: " + std::to_string(entries_.size()) + " clips, " +
                std::to_string(skipped_clips_) + " skipped as shorter than " +
                std::to_string(options_.segments.min_seconds) + " s, " +
                std::to_string(segments_per_epoch_) + " segments, batch size " +
                std::to_string(options_.sampler.batch_size) +
                (options_.sampler.drop_last ? " with drop_last" : ""));
  }
  if (options_.max_epochs > 0) end_ticket_ = options_.max_epochs * batches_per_epoch_;
}

DataLoader::~DataLoader() {
  stop_workers();
}

LoaderPosition DataLoader::position_of(int64_t ticket) const {
  return {ticket / batches_per_epoch_, ticket % batches_per_epoch_};
}

LoaderPosition DataLoader::position() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return position_of(next_deliver_);
}

int64_t DataLoader::max_in_flight() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return max_in_flight_;
}

std::shared_ptr<const DataLoader::EpochPlan> DataLoader::plan_for(int64_t epoch) {
  auto it = plans_.find(epoch);
  if (it != plans_.end()) return it->second;
  auto plan = std::make_shared<EpochPlan>();
  plan->segments = make_segments(entries_, options_.segments,
                                 static_cast<uint64_t>(options_.sampler.seed), epoch)
                       .segments;
  std::vector<int64_t> lengths;
  lengths.reserve(plan->segments.size());
  for (const auto& s : plan->segments) lengths.push_back(std::max(s.length, s.pad_to));
  plan->batches = sampler_.plan(lengths, epoch);
  // Plans of epochs already delivered are no longer needed.
  const int64_t current = position_of(next_deliver_).epoch;
  for (auto old = plans_.begin(); old != plans_.end() && old->first < current;) {
    old = plans_.erase(old);
  }
  plans_[epoch] = plan;
  return plan;
}

Batch DataLoader::build(int64_t ticket, const EpochPlan& plan) const {
  const LoaderPosition pos = position_of(ticket);
  const auto& rows = plan.batches.at(static_cast<size_t>(pos.batch));
  const int64_t b = static_cast<int64_t>(rows.size());
  std::vector<at::Tensor> waves;
  Batch batch;
  batch.epoch = pos.epoch;
  batch.index = pos.batch;
  batch.last_in_epoch = pos.batch + 1 == batches_per_epoch_;
  std::vector<int64_t> lengths;
  std::vector<int64_t> row_labels;
  std::string first_error;
  for (int64_t r = 0; r < b; ++r) {
    const Segment& seg = plan.segments.at(static_cast<size_t>(rows[static_cast<size_t>(r)]));
    const ManifestEntry& entry = entries_[static_cast<size_t>(seg.entry)];
    at::Tensor w;
    std::string error;
    try {
      w = decode_(entry, seg.offset, seg.whole ? -1 : seg.length);
      if (!w.defined() || w.dim() != 1) {
        error = "decoding gave " +
                (w.defined() ? "shape " + c10::str(w.sizes()) : std::string("nothing")) +
                ", expected (S,)";
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!error.empty()) {
      const std::string where = "data loader (epoch " + std::to_string(pos.epoch) + ", batch " +
                                std::to_string(pos.batch) + "): cannot decode '" +
                                entry.path.string() + "': " + error;
      if (options_.on_error == OnDataError::kStop) throw Error(where);
      const int64_t n = ++skipped_files_;
      spdlog::warn("{}; skipped (data.on_error: skip; {} skipped so far)", where, n);
      if (first_error.empty()) first_error = where;
      continue;
    }
    // The manifest's length caps every segment (a whole clip decodes to its true end but never
    // beyond the cap, so pre-training segments stay <= max_seconds).
    if (w.size(0) > seg.length) w = w.narrow(0, 0, seg.length);
    waves.push_back(w.to(torch::kFloat));
    lengths.push_back(std::max<int64_t>(w.size(0), seg.pad_to));
    row_labels.push_back(label_index_[static_cast<size_t>(seg.entry)]);
    batch.paths.push_back(entry.path.string());
    batch.offsets.push_back(entry.offset + seg.offset);
  }
  if (waves.empty()) {
    throw Error(first_error + " (and every other clip of the batch: nothing left to train on)");
  }
  batch.labels = torch::tensor(row_labels, torch::kLong);
  auto padded = audio::pad_waveforms(waves, lengths);
  batch.waveforms = std::move(padded.waveforms);
  batch.lengths = std::move(padded.lengths);
  return batch;
}

void DataLoader::start_workers() {
  stop_ = false;
  for (int i = 0; i < options_.num_workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void DataLoader::worker_loop() {
  while (true) {
    int64_t ticket = 0;
    std::shared_ptr<const EpochPlan> plan;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] {
        return stop_ || (next_claim_ < next_deliver_ + options_.queue_capacity &&
                         (end_ticket_ < 0 || next_claim_ < end_ticket_));
      });
      if (stop_) return;
      ticket = next_claim_++;
      max_in_flight_ = std::max(max_in_flight_, next_claim_ - next_deliver_);
      try {
        plan = plan_for(position_of(ticket).epoch);
      } catch (...) {
        failed_[ticket] = std::current_exception();
        cv_.notify_all();
        continue;
      }
    }
    std::optional<Batch> batch;
    std::exception_ptr error;
    try {
      batch = build(ticket, *plan);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error) {
        failed_[ticket] = error;
      } else {
        ready_.emplace(ticket, std::move(*batch));
      }
    }
    cv_.notify_all();
  }
}

std::optional<Batch> DataLoader::next() {
  if (options_.num_workers == 0) {
    std::shared_ptr<const EpochPlan> plan;
    int64_t ticket = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (end_ticket_ >= 0 && next_deliver_ >= end_ticket_) return std::nullopt;
      ticket = next_deliver_;
      plan = plan_for(position_of(ticket).epoch);
      max_in_flight_ = std::max<int64_t>(max_in_flight_, 1);
    }
    Batch batch = build(ticket, *plan);
    std::lock_guard<std::mutex> lock(mutex_);
    ++next_deliver_;
    return batch;
  }
  if (workers_.empty()) start_workers();
  std::unique_lock<std::mutex> lock(mutex_);
  if (end_ticket_ >= 0 && next_deliver_ >= end_ticket_) return std::nullopt;
  const int64_t ticket = next_deliver_;
  cv_.wait(lock, [&] { return ready_.count(ticket) > 0 || failed_.count(ticket) > 0; });
  auto f = failed_.find(ticket);
  if (f != failed_.end()) {
    std::exception_ptr error = f->second;
    failed_.erase(f);
    // The failed ticket is consumed, so a caller that catches the error can go on.
    ++next_deliver_;
    lock.unlock();
    cv_.notify_all();
    std::rethrow_exception(error);
  }
  auto it = ready_.find(ticket);
  Batch batch = std::move(it->second);
  ready_.erase(it);
  ++next_deliver_;
  lock.unlock();
  cv_.notify_all();
  return batch;
}

void DataLoader::seek(const LoaderPosition& pos) {
  if (pos.epoch < 0 || pos.batch < 0 || pos.batch >= batches_per_epoch_) {
    throw Error("data loader: cannot seek to epoch " + std::to_string(pos.epoch) + " batch " +
                std::to_string(pos.batch) + " (an epoch has " + std::to_string(batches_per_epoch_) +
                " batches)");
  }
  stop_workers();
  std::lock_guard<std::mutex> lock(mutex_);
  ready_.clear();
  failed_.clear();
  plans_.clear();
  next_deliver_ = next_claim_ = pos.epoch * batches_per_epoch_ + pos.batch;
  stop_ = false;
}

}  // namespace hear::data
