#include "hear/data/loader.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "hear/audio/audio_file.h"
#include "hear/data/segmenter.h"
#include "hear/error.h"
#include "hear/util/random.h"
#include "test_util.h"

namespace hear::data {
namespace {

// A synthetic clip: sample i of entry `path` is a hash of (path, i), in [-1, 1).
at::Tensor loader_synthetic_clip(const ManifestEntry& e, int64_t offset, int64_t length) {
  const int64_t end = length < 0 ? e.num_samples : std::min(e.num_samples, offset + length);
  const uint64_t base = std::hash<std::string>()(e.path.string());
  at::Tensor out = torch::empty({std::max<int64_t>(0, end - offset)}, torch::kFloat);
  auto a = out.accessor<float, 1>();
  for (int64_t i = offset; i < end; ++i) {
    a[i - offset] =
        static_cast<float>(util::mix_seed(base, static_cast<uint64_t>(i)) % 2000) / 1000.0f - 1.0f;
  }
  return out;
}

std::vector<ManifestEntry> loader_entries(int n, int64_t min_len, int64_t max_len) {
  std::vector<ManifestEntry> e;
  for (int i = 0; i < n; ++i) {
    const int64_t len =
        min_len + static_cast<int64_t>(util::mix_seed(77, i) % (max_len - min_len + 1));
    e.push_back({"clip" + std::to_string(i) + ".wav", len, std::to_string(i % 3)});
  }
  return e;
}

void loader_expect_same_batch(const Batch& a, const Batch& b) {
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.paths, b.paths);
  EXPECT_EQ(a.offsets, b.offsets);
  EXPECT_TRUE(torch::equal(a.lengths, b.lengths));
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
  EXPECT_TRUE(torch::equal(a.waveforms, b.waveforms));
}

TEST(Segmenter, RandomCropSkipsShortClipsAndRedrawsPerEpoch) {
  std::vector<ManifestEntry> e = {
      {"long", 160000, ""}, {"short", 8000, ""}, {"mid", 48000, ""}, {"edge", 16000, ""}};
  SegmentOptions o;  // random_crop, max 6 s, min 1 s
  SegmentList s0 = make_segments(e, o, 1, 0);
  ASSERT_EQ(s0.segments.size(), 3u);
  EXPECT_EQ(s0.skipped_clips, 1);
  EXPECT_EQ(s0.segments[0].entry, 0);
  EXPECT_EQ(s0.segments[0].length, 96000);
  EXPECT_FALSE(s0.segments[0].whole);
  EXPECT_GE(s0.segments[0].offset, 0);
  EXPECT_LE(s0.segments[0].offset, 160000 - 96000);
  EXPECT_EQ(s0.segments[1].entry, 2);
  EXPECT_EQ(s0.segments[1].offset, 0);
  EXPECT_EQ(s0.segments[1].length, 48000);
  EXPECT_TRUE(s0.segments[1].whole);
  EXPECT_EQ(s0.segments[2].length, 16000);  // exactly 1 s is kept
  // Same (seed, epoch): same crop; other epochs: new crops.
  EXPECT_EQ(make_segments(e, o, 1, 0).segments[0].offset, s0.segments[0].offset);
  std::set<int64_t> offsets;
  for (int epoch = 0; epoch < 20; ++epoch)
    offsets.insert(make_segments(e, o, 1, epoch).segments[0].offset);
  EXPECT_GT(offsets.size(), 15u);
}

TEST(Segmenter, ConsecutiveBlocksKeepTailsOfAtLeastMinSeconds) {
  std::vector<ManifestEntry> e = {{"a", 216000, ""}, {"b", 200000, ""}, {"c", 12000, ""}};
  SegmentOptions o;
  o.mode = SegmentMode::kConsecutive;
  SegmentList s = make_segments(e, o, 0, 0);
  // a: 6 + 6 + 1.5 s; b: 6 + 6 s (the 0.5 s tail is dropped); c: < 1 s, skipped.
  ASSERT_EQ(s.segments.size(), 5u);
  EXPECT_EQ(s.skipped_clips, 1);
  const std::vector<std::pair<int64_t, int64_t>> want = {
      {0, 96000}, {96000, 96000}, {192000, 24000}, {0, 96000}, {96000, 96000}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(s.segments[i].offset, want[i].first) << i;
    EXPECT_EQ(s.segments[i].length, want[i].second) << i;
  }
}

TEST(Segmenter, WholeModePadsAndCrops) {
  std::vector<ManifestEntry> e = {{"short", 8000, ""}, {"long", 100000, ""}, {"ok", 40000, ""}};
  SegmentOptions o;
  o.mode = SegmentMode::kWhole;
  o.min_seconds = 0;
  o.pad_to_seconds = 1.0;
  o.crop_to_seconds = 5.0;
  o.crop_position = CropPosition::kCenter;
  SegmentList s = make_segments(e, o, 0, 0);
  ASSERT_EQ(s.segments.size(), 3u);
  EXPECT_EQ(s.segments[0].length, 8000);
  EXPECT_EQ(s.segments[0].pad_to, 16000);
  EXPECT_TRUE(s.segments[0].whole);
  EXPECT_EQ(s.segments[1].length, 80000);
  EXPECT_EQ(s.segments[1].offset, 10000);
  EXPECT_FALSE(s.segments[1].whole);
  EXPECT_EQ(s.segments[2].length, 40000);
  // A cross-field error names the full key of the segment options.
  o.mode = SegmentMode::kConsecutive;
  o.min_seconds = 7.0;
  o.max_seconds = 5.0;
  test::expect_error_containing([&] { make_segments(e, o, 0, 0); },
                                {"'segments.min_seconds'", "segments.max_seconds"});
}

TEST(Sampler, ShufflesPerEpochDeterministically) {
  SamplerOptions o;
  o.batch_size = 4;
  o.seed = 5;
  BatchSampler s(o);
  std::vector<int64_t> lengths(10, 1);
  auto p0 = s.plan(lengths, 0);
  ASSERT_EQ(p0.size(), 3u);
  EXPECT_EQ(p0[2].size(), 2u);
  EXPECT_EQ(p0, s.plan(lengths, 0));
  EXPECT_NE(p0, s.plan(lengths, 1));
  std::vector<int64_t> all;
  for (const auto& b : p0) all.insert(all.end(), b.begin(), b.end());
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(all[i], i);
  o.drop_last = true;
  EXPECT_EQ(BatchSampler(o).plan(lengths, 0).size(), 2u);
  EXPECT_EQ(BatchSampler(o).num_batches(10), 2);
  o.shuffle = false;
  EXPECT_EQ(BatchSampler(o).plan(lengths, 3)[1], (std::vector<int64_t>{4, 5, 6, 7}));
}

TEST(Sampler, ShardsSplitTheGlobalBatchesOfOneProcess) {
  // 2 processes x batch 3 take the halves of each batch of 6 that one process would plan, with
  // length bucketing too; a final global batch of 1 clip (fewer than 2 processes) is dropped.
  std::vector<int64_t> lengths;
  for (int i = 0; i < 25; ++i) lengths.push_back((i * 7) % 11);
  for (int64_t pool : {0, 2}) {
    SamplerOptions one;
    one.batch_size = 6;
    one.seed = 3;
    one.bucket_pool = pool;
    const auto global = BatchSampler(one).plan(lengths, 2);
    ASSERT_EQ(global.size(), 5u);  // 4 x 6 + 1
    std::vector<std::vector<std::vector<int64_t>>> shards;
    for (int64_t r = 0; r < 2; ++r) {
      SamplerOptions o = one;
      o.batch_size = 3;
      o.shard_rank = r;
      o.shard_count = 2;
      shards.push_back(BatchSampler(o).plan(lengths, 2));
      EXPECT_EQ(BatchSampler(o).num_batches(25), 4);
    }
    ASSERT_EQ(shards[0].size(), 4u);
    ASSERT_EQ(shards[1].size(), 4u);
    std::vector<std::vector<int64_t>> kept;  // bucketing may have shuffled the short one anywhere
    for (const auto& g : global) {
      if (g.size() >= 2) kept.push_back(g);
    }
    ASSERT_EQ(kept.size(), 4u);
    for (size_t b = 0; b < 4; ++b) {
      std::vector<int64_t> joined = shards[0][b];
      joined.insert(joined.end(), shards[1][b].begin(), shards[1][b].end());
      EXPECT_EQ(joined, kept[b]) << "pool " << pool << " batch " << b;
    }
  }
  SamplerOptions bad;
  bad.shard_rank = 2;
  bad.shard_count = 2;
  EXPECT_THROW(BatchSampler(bad).plan({1, 2, 3}, 0), Error);
}

TEST(Sampler, BucketingGroupsSimilarLengths) {
  std::vector<int64_t> lengths;
  for (int i = 0; i < 400; ++i)
    lengths.push_back(1000 + static_cast<int64_t>(util::mix_seed(3, i) % 90000));
  SamplerOptions o;
  o.batch_size = 8;
  auto spread = [&](const std::vector<std::vector<int64_t>>& plan) {
    double total = 0;
    for (const auto& b : plan) {
      int64_t lo = INT64_MAX, hi = 0;
      for (auto i : b) {
        lo = std::min(lo, lengths[i]);
        hi = std::max(hi, lengths[i]);
      }
      total += static_cast<double>(hi - lo);
    }
    return total / static_cast<double>(plan.size());
  };
  const double plain = spread(BatchSampler(o).plan(lengths, 0));
  o.bucket_pool = 25;
  const auto bucketed_plan = BatchSampler(o).plan(lengths, 0);
  const double bucketed = spread(bucketed_plan);
  EXPECT_LT(bucketed, plain / 5) << plain << " vs " << bucketed;
  std::set<int64_t> seen;
  for (const auto& b : bucketed_plan) seen.insert(b.begin(), b.end());
  EXPECT_EQ(seen.size(), 400u);
  EXPECT_EQ(bucketed_plan, BatchSampler(o).plan(lengths, 0));
}

TEST(DataLoader, BatchesDependOnlyOnSeedAndPositionNotThreads) {
  const auto entries = loader_entries(23, 8000, 120000);
  LoaderOptions o;
  o.sampler.batch_size = 4;
  o.sampler.seed = 11;
  o.segments.max_seconds = 2.0;
  o.segments.min_seconds = 0.75;
  o.max_epochs = 2;
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 3}) {
    o.num_workers = workers;
    o.queue_capacity = workers == 3 ? 2 : 5;
    DataLoader loader(entries, o, std::nullopt, loader_synthetic_clip);
    std::vector<Batch> batches;
    while (auto b = loader.next()) batches.push_back(std::move(*b));
    EXPECT_FALSE(loader.next().has_value());
    runs.push_back(std::move(batches));
  }
  const auto& ref = runs[0];
  DataLoader probe(entries, o, std::nullopt, loader_synthetic_clip);
  ASSERT_EQ(static_cast<int64_t>(ref.size()), 2 * probe.batches_per_epoch());
  for (size_t r = 1; r < runs.size(); ++r) {
    ASSERT_EQ(runs[r].size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) loader_expect_same_batch(runs[r][i], ref[i]);
  }
  // Content: rows are the synthetic clips' crops, zero-padded after their lengths; labels mapped.
  const Batch& b = ref[1];
  for (int64_t r = 0; r < b.size(); ++r) {
    const int64_t len = b.lengths[r].item<int64_t>();
    EXPECT_LE(len, 32000);
    const auto& entry = *std::find_if(entries.begin(), entries.end(),
                                      [&](const ManifestEntry& e) { return e.path == b.paths[r]; });
    EXPECT_TRUE(torch::equal(b.waveforms[r].narrow(0, 0, len),
                             loader_synthetic_clip(entry, b.offsets[r], len)));
    EXPECT_EQ(b.waveforms[r].narrow(0, len, b.waveforms.size(1) - len).abs().sum().item<float>(),
              0);
    EXPECT_EQ(b.labels[r].item<int64_t>(), std::stoll(entry.label));
  }
  EXPECT_TRUE(ref[probe.batches_per_epoch() - 1].last_in_epoch);
  EXPECT_EQ(ref[probe.batches_per_epoch()].epoch, 1);
}

TEST(DataLoader, SeekRestoresTheStreamExactly) {
  const auto entries = loader_entries(30, 20000, 200000);
  LoaderOptions o;
  o.sampler.batch_size = 4;
  o.sampler.seed = 3;
  o.sampler.bucket_pool = 2;
  o.num_workers = 2;
  DataLoader a(entries, o, std::nullopt, loader_synthetic_clip);
  for (int i = 0; i < 10; ++i) a.next();  // crosses into epoch 1 (8 batches per epoch)
  const LoaderPosition pos = a.position();
  EXPECT_EQ(pos.epoch, 1);
  EXPECT_EQ(pos.batch, 2);
  std::vector<Batch> rest;
  for (int i = 0; i < 9; ++i) rest.push_back(*a.next());

  DataLoader b(entries, o, std::nullopt, loader_synthetic_clip);
  b.next();
  b.seek(pos);
  EXPECT_EQ(b.position(), pos);
  for (const auto& want : rest) loader_expect_same_batch(*b.next(), want);
  EXPECT_THROW(b.seek({0, 8}), Error);
}

TEST(DataLoader, QueueStaysWithinCapacity) {
  const auto entries = loader_entries(64, 1600, 1600);
  std::atomic<int64_t> decoded{0};
  auto counting = [&](const ManifestEntry& e, int64_t offset, int64_t length) {
    decoded.fetch_add(1);
    return loader_synthetic_clip(e, offset, length);
  };
  LoaderOptions o;
  o.sampler.batch_size = 2;
  o.segments.min_seconds = 0;
  o.num_workers = 4;
  o.queue_capacity = 3;
  DataLoader loader(entries, o, std::nullopt, counting);
  for (int64_t delivered = 0; delivered < 12; ++delivered) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a slow consumer
    // Workers may not get ahead of the consumer by more than `queue_capacity` batches.
    EXPECT_LE(decoded.load(), (delivered + 3) * 2);
    ASSERT_TRUE(loader.next().has_value());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(decoded.load(), (12 + 3) * 2);  // and they do fill the queue
  EXPECT_EQ(loader.max_in_flight(), 3);
}

TEST(DataLoader, DecodeErrorsNameTheFile) {
  auto entries = loader_entries(6, 16000, 16000);
  auto failing = [](const ManifestEntry& e, int64_t offset, int64_t length) {
    if (e.path == "clip4.wav") throw Error("corrupt data");
    return loader_synthetic_clip(e, offset, length);
  };
  LoaderOptions o;
  o.sampler.batch_size = 6;
  o.num_workers = 2;
  DataLoader loader(entries, o, std::nullopt, failing);
  try {
    loader.next();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("clip4.wav"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("corrupt data"), std::string::npos) << e.what();
  }
  // Unknown labels and impossible batch plans are reported up front.
  LabelMap only_zero({"0"});
  EXPECT_THROW(DataLoader(entries, o, only_zero, loader_synthetic_clip), Error);
  // An empty map ignores labels.
  DataLoader unlabelled(entries, o, LabelMap(), loader_synthetic_clip);
  auto first = unlabelled.next();
  EXPECT_EQ(first->labels.min().item<int64_t>(), -1);
  EXPECT_EQ(first->labels.max().item<int64_t>(), -1);
  o.sampler.batch_size = 7;
  o.sampler.drop_last = true;
  EXPECT_THROW(DataLoader(entries, o, std::nullopt, loader_synthetic_clip), Error);
}

// The hear::Error message of loader.next(), or "(no error)".
std::string loader_next_error(DataLoader& loader) {
  try {
    loader.next();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(DataLoader, OnErrorSkipLeavesOutTheClipAndCountsIt) {
  // Files that become unreadable mid-run (here from epoch 1 on): skip keeps training on the rest.
  auto entries = loader_entries(6, 16000, 16000);
  auto failing = [](const ManifestEntry& e, int64_t offset, int64_t length) {
    if (e.path == "clip2.wav" || e.path == "clip5.wav") throw Error("truncated");
    return loader_synthetic_clip(e, offset, length);
  };
  LoaderOptions o;
  o.sampler.batch_size = 3;
  o.sampler.shuffle = false;
  o.num_workers = 2;
  o.on_error = OnDataError::kSkip;
  o.max_epochs = 2;
  DataLoader loader(entries, o, std::nullopt, failing);
  DataLoader reference(entries, o, std::nullopt, loader_synthetic_clip);
  int64_t rows = 0;
  while (auto batch = loader.next()) {
    auto full = reference.next();
    ASSERT_TRUE(full.has_value());
    // The surviving rows are exactly the reference rows without the failing clips.
    std::vector<int64_t> keep;
    for (int64_t r = 0; r < full->size(); ++r) {
      const auto& path = full->paths[static_cast<size_t>(r)];
      if (path != "clip2.wav" && path != "clip5.wav") keep.push_back(r);
    }
    ASSERT_EQ(batch->size(), static_cast<int64_t>(keep.size()));
    const auto index = torch::tensor(keep, torch::kLong);
    EXPECT_TRUE(torch::equal(batch->labels, full->labels.index_select(0, index)));
    const int64_t s = batch->waveforms.size(1);
    EXPECT_TRUE(
        torch::equal(batch->waveforms, full->waveforms.index_select(0, index).narrow(1, 0, s)));
    rows += batch->size();
  }
  EXPECT_EQ(rows, 8);  // 2 epochs x (6 - 2)
  EXPECT_EQ(loader.skipped_files(), 4);

  // stop (the default) ends the run at the first failure, naming the file; a batch whose every
  // clip fails is an error under skip too.
  o.on_error = OnDataError::kStop;
  DataLoader stopping(entries, o, std::nullopt, failing);
  const std::string stopped = loader_next_error(stopping);
  EXPECT_NE(stopped.find("cannot decode 'clip2.wav': truncated"), std::string::npos) << stopped;
  o.on_error = OnDataError::kSkip;
  auto all_fail = [](const ManifestEntry&, int64_t, int64_t) -> at::Tensor { throw Error("gone"); };
  DataLoader hopeless(entries, o, std::nullopt, all_fail);
  const std::string none_left = loader_next_error(hopeless);
  EXPECT_NE(none_left.find("every other clip of the batch"), std::string::npos) << none_left;
}

TEST(Segmenter, SlicesAreNeverDecodedToTheEndOfTheFile) {
  // Entry offsets do not move segments: offsets stay relative to the entry's start.
  std::vector<ManifestEntry> e = {{"noise.wav", 16000, "", 8000}, {"clip.wav", 16000, "", 0}};
  SegmentOptions o;
  o.mode = SegmentMode::kWhole;
  o.pad_to_seconds = 1.0;
  auto s = make_segments(e, o, 0, 0);
  ASSERT_EQ(s.segments.size(), 2u);
  EXPECT_EQ(s.segments[0].offset, 0);
  EXPECT_EQ(s.segments[0].length, 16000);
  EXPECT_FALSE(s.segments[0].whole);  // a slice stops after its own length
  EXPECT_TRUE(s.segments[1].whole);
  o.mode = SegmentMode::kRandomCrop;
  o.max_seconds = 2.0;
  s = make_segments(e, o, 0, 0);
  EXPECT_FALSE(s.segments[0].whole);
  EXPECT_TRUE(s.segments[1].whole);
  o.mode = SegmentMode::kConsecutive;
  s = make_segments(e, o, 0, 0);
  EXPECT_FALSE(s.segments[0].whole);
  EXPECT_TRUE(s.segments[1].whole);
  e[0].offset = -1;
  EXPECT_THROW(make_segments(e, o, 0, 0), Error);
}

TEST(DataLoader, SliceEntriesDecodeExactlyTheirSamplesOfTheFile) {
  test::TempDir dir;
  // 3 s of distinct values at 16 kHz (PCM 16 steps), so any shift of the slice is visible.
  const int64_t n = 48000;
  const at::Tensor file = (torch::arange(n, torch::kFloat).remainder(997) - 498) / 1024.0;
  audio::write_audio(dir / "noise.wav", file, 16000);
  const at::Tensor stored = audio::load_audio(dir / "noise.wav");
  ASSERT_EQ(stored.size(0), n);
  std::vector<ManifestEntry> entries = {{dir / "noise.wav", 16000, "a", 8000},
                                        {dir / "noise.wav", 16000, "b", 24000},
                                        {dir / "noise.wav", 16000, "c", 40000},  // shortened
                                        {dir / "noise.wav", n, "d", 0}};
  LoaderOptions o;
  o.segments.mode = SegmentMode::kWhole;
  o.segments.min_seconds = 0;
  o.sampler.batch_size = 4;
  o.sampler.shuffle = false;
  o.num_workers = 0;
  o.max_epochs = 1;
  DataLoader loader(entries, o);
  auto b = loader.next();
  ASSERT_TRUE(b.has_value());
  const std::vector<int64_t> want_offsets = {8000, 24000, 40000, 0};
  const std::vector<int64_t> want_lengths = {16000, 16000, 8000, n};
  EXPECT_EQ(b->offsets, want_offsets);
  for (int64_t r = 0; r < 4; ++r) {
    ASSERT_EQ(b->lengths[r].item<int64_t>(), want_lengths[r]) << r;
    EXPECT_TRUE(torch::equal(b->waveforms[r].narrow(0, 0, want_lengths[r]),
                             stored.narrow(0, want_offsets[r], want_lengths[r])))
        << "row " << r;
  }
  // With pad_to the short tail slice is padded, still without reading past its own window.
  o.segments.pad_to_seconds = 1.0;
  DataLoader padded(entries, o);
  b = padded.next();
  EXPECT_EQ(b->lengths[2].item<int64_t>(), 16000);
  EXPECT_EQ(b->waveforms[2].narrow(0, 8000, 8000).abs().sum().item<float>(), 0.0f);
}

}  // namespace
}  // namespace hear::data
