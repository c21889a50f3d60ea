// The teacher-feature cache: written with a tiny random teacher over generated clips, read back
// equal to the live teacher within float16 precision; identity mismatches, corrupted shards and
// unknown segments are errors that say what is wrong.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "hear/audio/audio_file.h"
#include "hear/audio/frontend.h"
#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/teacher/feature_cache.h"
#include "test_util.h"

namespace hear::teacher {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCacheTestRule = "consecutive max_seconds=6 min_seconds=1";

// Three clips (2.5 s, 6 s, 9 s) cut as "consecutive" 6 s segments would be: 4 segments.
struct CacheFixtureData {
  test::TempDir dir;
  std::vector<CacheSegment> segments;

  CacheFixtureData() {
    torch::manual_seed(11);
    const std::vector<int64_t> lengths = {40000, 96000, 144000};
    for (size_t c = 0; c < lengths.size(); ++c) {
      const at::Tensor t = torch::arange(lengths[c], torch::kDouble) / 16000.0;
      at::Tensor x = 0.3 * torch::sin(2 * 3.141592653589793 * (220.0 * (c + 1)) * t) +
                     0.05 * torch::randn({lengths[c]}, torch::kDouble) + 0.02;
      const fs::path path = dir / ("clip" + std::to_string(c) + ".wav");
      audio::write_audio(path, x.to(torch::kFloat), 16000);
      for (int64_t start = 0; start < lengths[c]; start += 96000) {
        CacheSegment s;
        s.path = path;
        s.offset = start;
        s.length = std::min<int64_t>(96000, lengths[c] - start);
        s.whole = lengths[c] <= 96000;
        segments.push_back(s);
      }
    }
  }
};

SsastTeacher cache_test_teacher(uint64_t seed) {
  torch::manual_seed(seed);
  return SsastTeacher(SsastOptions::tiny());
}

// What stage 1 would compute live for one segment: rows 0 .. hear_num_patches - 1.
at::Tensor live_rows(SsastTeacher& teacher, const CacheSegment& seg) {
  const at::Tensor w = default_segment_decoder()(seg);
  auto f = teacher->features(w.unsqueeze(0), torch::tensor({w.size(0)}));
  return f.features[0].slice(0, 0, std::min<int64_t>(512, audio::patch_count(w.size(0))));
}

std::string cache_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(TeacherFeatureCache, SegmentsAreTheStageOneSegmentsOfTheRule) {
  CacheFixtureData data;
  std::vector<data::ManifestEntry> entries;
  for (size_t c = 0; c < 3; ++c) {
    entries.push_back({data.dir / ("clip" + std::to_string(c) + ".wav"),
                       std::vector<int64_t>{40000, 96000, 144000}[c], ""});
  }
  data::SegmentOptions rule;
  rule.mode = data::SegmentMode::kConsecutive;
  rule.max_seconds = 6.0;
  rule.min_seconds = 1.0;
  EXPECT_EQ(describe_segment_rule(rule), kCacheTestRule);
  int64_t skipped = -1;
  const auto segments = cache_segments(entries, rule, 0, &skipped);
  EXPECT_EQ(skipped, 0);
  ASSERT_EQ(segments.size(), data.segments.size());
  for (size_t i = 0; i < segments.size(); ++i) {
    EXPECT_EQ(segments[i].path, data.segments[i].path) << i;
    EXPECT_EQ(segments[i].offset, data.segments[i].offset) << i;
    EXPECT_EQ(segments[i].length, data.segments[i].length) << i;
  }
  EXPECT_EQ(cache_segments(entries, rule, 2).size(), 2u);
  rule.mode = data::SegmentMode::kRandomCrop;
  EXPECT_THROW(cache_segments(entries, rule), Error);
}

TEST(TeacherFeatureCache, ReadsBackTheLiveTeacherWithinFloat16) {
  CacheFixtureData data;
  auto teacher = cache_test_teacher(5);
  const CacheIdentity id = make_cache_identity(*teacher, kCacheTestRule);
  const fs::path dir = data.dir / "cache";
  CacheWriteOptions wo;
  wo.shard_size = 3;
  wo.batch_size = 2;
  int64_t progress_calls = 0;
  wo.progress = [&](int64_t done, int64_t total) {
    ++progress_calls;
    EXPECT_EQ(total, 4);
    EXPECT_LE(done, total);
  };
  auto summary = write_teacher_cache(*teacher, id, data.segments, dir, wo);
  EXPECT_EQ(summary.segments, 4);
  EXPECT_EQ(summary.shards, 2);
  EXPECT_EQ(summary.total_samples, 40000 + 96000 + 144000);
  EXPECT_EQ(progress_calls, 3);  // shard 0: batches of 2 + 1, shard 1: 1
  EXPECT_TRUE(fs::exists(dir / "shard_00000.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "shard_00001.safetensors"));

  TeacherFeatureCache cache(dir, id);
  ASSERT_EQ(cache.size(), 4);
  EXPECT_EQ(cache.embed_dim(), 64);
  double worst = 0.0;
  for (const auto& seg : data.segments) {
    ASSERT_TRUE(cache.contains(seg.path, seg.offset));
    const at::Tensor got = cache.features(seg.path, seg.offset, seg.length);
    const at::Tensor want = live_rows(teacher, seg);
    ASSERT_EQ(got.sizes(), want.sizes()) << seg.path << " @" << seg.offset;
    EXPECT_EQ(got.scalar_type(), torch::kFloat);
    // float16 keeps 11 significant bits: relative rounding error <= 2^-11 = 4.9e-4.
    const at::Tensor err = (got - want).abs();
    EXPECT_TRUE((err <= want.abs() * 1e-3 + 1e-6).all().item<bool>()) << seg.path;
    worst = std::max(worst, (err / want.abs().clamp_min(1e-3)).max().item<double>());
    const auto& rec = cache.record(seg.path, seg.offset);
    EXPECT_EQ(rec.rows, audio::patch_count(seg.length));
    EXPECT_EQ(rec.teacher_patches, teacher_valid_patches(seg.length));
  }
  std::cout << "[cache] worst elementwise relative error vs live teacher: " << worst << "\n";
  EXPECT_GT(worst, 0.0);  // really float16 on disk
  EXPECT_LT(worst, 1e-3);
  // 2.5 s -> 125 rows, 6 s -> 300 rows, the 3 s tail -> 150 rows.
  EXPECT_EQ(cache.record(data.segments[0].path, 0).rows, 125);
  EXPECT_EQ(cache.record(data.segments[3].path, 96000).rows, 150);

  // A batch as the loader hands it: zero after each row's own rows.
  auto [batch, rows] = cache.batch_features(
      {data.segments[0].path.string(), data.segments[3].path.string()}, {0, 96000}, {40000, 48000});
  EXPECT_EQ(batch.sizes(), (std::vector<int64_t>{2, 150, 64}));
  EXPECT_EQ(rows[0].item<int64_t>(), 125);
  EXPECT_EQ(batch[0].slice(0, 125).abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(batch[1], cache.features(data.segments[3].path, 96000)));

  // Relative paths resolve to the same entries.
  const fs::path rel = fs::relative(data.segments[1].path);
  EXPECT_TRUE(cache.contains(rel, 0));
}

TEST(TeacherFeatureCache, RejectsAnotherTeacherOrRule) {
  CacheFixtureData data;
  auto teacher = cache_test_teacher(5);
  const CacheIdentity id = make_cache_identity(*teacher, kCacheTestRule);
  const fs::path dir = data.dir / "cache";
  std::vector<CacheSegment> two(data.segments.begin(), data.segments.begin() + 2);
  write_teacher_cache(*teacher, id, two, dir);

  auto other = cache_test_teacher(6);
  const CacheIdentity other_id = make_cache_identity(*other, kCacheTestRule);
  EXPECT_NE(other_id.teacher_sha256, id.teacher_sha256);
  auto msg = cache_error([&] { TeacherFeatureCache c(dir, other_id); });
  EXPECT_NE(msg.find("different teacher setup"), std::string::npos) << msg;
  EXPECT_NE(msg.find("teacher_sha256: cache '" + id.teacher_sha256 + "' vs expected '" +
                     other_id.teacher_sha256 + "'"),
            std::string::npos)
      << msg;
  EXPECT_EQ(msg.find("segment_rule"), std::string::npos) << msg;

  CacheIdentity rule = id;
  rule.segment_rule = "whole crop_to_seconds=0 crop_position=none pad_to_seconds=0 min_seconds=1";
  msg = cache_error([&] { TeacherFeatureCache c(dir, rule); });
  EXPECT_NE(msg.find("segment_rule: cache 'consecutive"), std::string::npos) << msg;

  CacheIdentity frontend = id;
  frontend.frontend += " changed";
  msg = cache_error([&] { TeacherFeatureCache c(dir, frontend); });
  EXPECT_NE(msg.find("frontend: cache"), std::string::npos) << msg;

  // Same weights hash alike however they were made.
  auto copy = cache_test_teacher(5);
  EXPECT_EQ(make_cache_identity(*copy, kCacheTestRule).digest(), id.digest());
  EXPECT_NO_THROW({ TeacherFeatureCache c(dir, make_cache_identity(*copy, kCacheTestRule)); });

  // Writing over an existing cache needs overwrite.
  msg = cache_error([&] { write_teacher_cache(*teacher, id, two, dir); });
  EXPECT_NE(msg.find("already exists"), std::string::npos) << msg;
  EXPECT_NO_THROW(write_teacher_cache(*teacher, id, two, dir, {}, /*overwrite=*/true));
}

TEST(TeacherFeatureCache, CorruptionAndUnknownSegmentsAreClearErrors) {
  CacheFixtureData data;
  auto teacher = cache_test_teacher(7);
  const CacheIdentity id = make_cache_identity(*teacher, kCacheTestRule);
  const fs::path dir = data.dir / "cache";
  CacheWriteOptions wo;
  wo.shard_size = 2;
  write_teacher_cache(*teacher, id, data.segments, dir, wo);
  const fs::path shard1 = dir / "shard_00001.safetensors";

  {
    TeacherFeatureCache cache(dir, id);
    // A segment the cache does not hold.
    auto msg = cache_error([&] { cache.features(data.dir / "clip9.wav", 0); });
    EXPECT_NE(msg.find("has no features for"), std::string::npos) << msg;
    EXPECT_NE(msg.find("clip9.wav"), std::string::npos) << msg;
    msg = cache_error([&] { cache.features(data.segments[1].path, 16000); });
    EXPECT_NE(msg.find("at offset 16000"), std::string::npos) << msg;
    // A length that is neither the segment's nor its decoded length.
    msg = cache_error([&] { cache.features(data.segments[1].path, 0, 95000); });
    EXPECT_NE(msg.find("asked for 95000"), std::string::npos) << msg;
  }

  // Truncated shard: caught on open, by size.
  const std::string original = io::read_file(shard1);
  fs::resize_file(shard1, original.size() - 100);
  auto msg = cache_error([&] { TeacherFeatureCache c(dir, id); });
  EXPECT_NE(
      msg.find("shard_00001.safetensors' has " + std::to_string(original.size() - 100) + " bytes"),
      std::string::npos)
      << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;

  // Bad header of the same size: caught when the shard is first read.
  std::string broken = original;
  broken[8] = '#';  // the header's opening brace
  io::write_file_atomic(shard1, broken);
  {
    TeacherFeatureCache cache(dir, id);
    EXPECT_NO_THROW(cache.features(data.segments[0].path, 0));  // shard 0 is fine
    msg = cache_error([&] { cache.features(data.segments[2].path, 0); });
    EXPECT_NE(msg.find("shard_00001.safetensors': header is not valid JSON"), std::string::npos)
        << msg;
  }

  // A shard from another cache (same layout, other identity).
  {
    const fs::path other_dir = data.dir / "other";
    auto other = cache_test_teacher(8);
    write_teacher_cache(*other, make_cache_identity(*other, kCacheTestRule), data.segments,
                        other_dir, wo);
    fs::copy_file(other_dir / "shard_00001.safetensors", shard1,
                  fs::copy_options::overwrite_existing);
    TeacherFeatureCache cache(dir, id);  // same size: passes the size check
    msg = cache_error([&] { cache.features(data.segments[3].path, 96000); });
    EXPECT_NE(msg.find("belongs to another cache"), std::string::npos) << msg;
  }
  io::write_file_atomic(shard1, original);

  // An index entry whose tensor is not in its shard; an index cut short.
  std::string index = io::read_file(dir / "index.tsv");
  const std::string good_index = index;
  index.replace(index.find("seg_00000003"), 12, "seg_00000099");
  io::write_file_atomic(dir / "index.tsv", index);
  {
    TeacherFeatureCache cache(dir, id);
    msg = cache_error([&] { cache.features(data.segments[3].path, 96000); });
    EXPECT_NE(msg.find("lacks tensor 'seg_00000099'"), std::string::npos) << msg;
  }
  io::write_file_atomic(dir / "index.tsv",
                        good_index.substr(0, good_index.rfind("\n", good_index.size() - 2) + 1));
  msg = cache_error([&] { TeacherFeatureCache c(dir, id); });
  EXPECT_NE(msg.find("index.tsv has 3 segments, cache.json says 4"), std::string::npos) << msg;
  io::write_file_atomic(dir / "index.tsv", good_index);
  EXPECT_NO_THROW({ TeacherFeatureCache c(dir, id); });

  // Incomplete: no cache.json.
  fs::remove(dir / "cache.json");
  msg = cache_error([&] { TeacherFeatureCache c(dir, id); });
  EXPECT_NE(msg.find("no cache.json"), std::string::npos) << msg;
}

TEST(TeacherFeatureCache, SegmentRulesAndBadSegments) {
  data::SegmentOptions o;
  o.mode = data::SegmentMode::kConsecutive;
  EXPECT_EQ(describe_segment_rule(o), "consecutive max_seconds=6 min_seconds=1");
  o.mode = data::SegmentMode::kWhole;
  EXPECT_EQ(describe_segment_rule(o),
            "whole crop_to_seconds=0 crop_position=none pad_to_seconds=0 min_seconds=1");
  o.crop_to_seconds = 4.5;
  EXPECT_NE(cache_error([&] { describe_segment_rule(o); }).find("fixed segments"),
            std::string::npos);
  o.crop_position = data::CropPosition::kCenter;
  EXPECT_EQ(describe_segment_rule(o),
            "whole crop_to_seconds=4.5 crop_position=center pad_to_seconds=0 min_seconds=1");
  o.mode = data::SegmentMode::kRandomCrop;
  EXPECT_NE(cache_error([&] { describe_segment_rule(o); }).find("random_crop"), std::string::npos);

  CacheFixtureData data;
  auto teacher = cache_test_teacher(5);
  const CacheIdentity id = make_cache_identity(*teacher, kCacheTestRule);
  auto dup = data.segments;
  dup.push_back(data.segments[1]);
  auto msg = cache_error([&] { write_teacher_cache(*teacher, id, dup, data.dir / "c"); });
  EXPECT_NE(msg.find("listed twice"), std::string::npos) << msg;
  // A segment the teacher cannot take (> 1024 Kaldi frames) names the segment.
  std::vector<CacheSegment> longer = {data.segments[3]};
  longer[0].offset = 0;
  longer[0].length = 144000;
  longer[0].whole = true;
  auto decode_long = [](const CacheSegment&) { return torch::zeros({170000}); };
  CacheWriteOptions wo;
  wo.decode = decode_long;
  msg = cache_error([&] { write_teacher_cache(*teacher, id, longer, data.dir / "c", wo); });
  EXPECT_NE(msg.find("clip2.wav"), std::string::npos) << msg;
  EXPECT_NE(msg.find("more than the 1024"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(data.dir / "c" / "cache.json"));
}

}  // namespace hear::teacher
