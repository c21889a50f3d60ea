#include "hear/inference/stream_embedder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hear/error.h"
#include "hear/models/weights.h"
#include "models/small_hear.h"
#include "test_util.h"

namespace hear::inference {
namespace {

// Windows of 12 patches overlapping by 4 (stride 8): a few seconds cross many windows.
models::HearClassifierOptions stream_options(int64_t task_max_length) {
  auto o = models::model_testing::small_hear_options();
  o.acoustic_model.num_transformer_layers = 1;
  o.task_model.max_length = task_max_length;
  return o;
}

struct Streamed {
  at::Tensor frames, timestamps;
  StreamSummary summary;
};

Streamed run_stream(Embedder& embedder, const at::Tensor& wave, int64_t block,
                    TaskSpan span = TaskSpan::kWhole) {
  StreamEmbedder stream(embedder, audio::clip_statistics(embedder.frontend(), wave), span);
  std::vector<at::Tensor> frames, stamps;
  int64_t next = 0;
  auto take = [&](const StreamFrames& f) {
    EXPECT_EQ(f.first_patch, next);  // in order, no gaps
    next += f.values.size(0);
    frames.push_back(f.values);
    stamps.push_back(f.timestamps_ms);
  };
  for (int64_t i = 0; i < wave.size(0); i += block) {
    take(stream.push(wave.narrow(0, i, std::min(block, wave.size(0) - i))));
  }
  Streamed out;
  out.summary = stream.finish();
  take(out.summary.frames);
  out.frames = torch::cat(frames);
  out.timestamps = torch::cat(stamps);
  EXPECT_EQ(out.summary.patches, out.frames.size(0));
  return out;
}

// Lengths around the window arithmetic: inside one window (10 patches), exactly one window
// (12), a window and a bit, and several windows ending inside a window's own span or its tail.
const std::vector<int64_t> kLengths = {3200, 3840, 4500, 16000 * 3 + 77, 16000 * 4 + 1000};

TEST(StreamEmbedder, FullModelEqualsOfflineForAnyBlockSize) {
  test::TempDir dir;
  torch::manual_seed(21);
  const auto options = stream_options(256);
  models::HearClassifier model(options);
  models::save_weights(*model, dir / "full.safetensors");
  Embedder embedder(options, dir / "full.safetensors");
  for (int64_t samples : kLengths) {
    const auto wave = torch::randn({samples}) * 0.1 + 0.01;
    const auto acoustic = embedder.embed({wave}, EmbeddingKind::kAcoustic)[0];
    const auto task = embedder.embed({wave}, EmbeddingKind::kTask)[0];
    const auto logits = embedder.embed({wave}, EmbeddingKind::kLogits)[0];
    const auto scene = embedder.embed({wave}, EmbeddingKind::kScene)[0];
    for (int64_t block : {1600, 16000, 7 * 16000, 1237}) {
      const auto s = run_stream(embedder, wave, block);
      const std::string what = std::to_string(samples) + " / " + std::to_string(block);
      ASSERT_EQ(s.frames.sizes(), acoustic.values.sizes()) << what;
      EXPECT_LT(test::max_abs_diff(s.frames, acoustic.values), 1e-5) << what;
      EXPECT_TRUE(torch::equal(s.timestamps, acoustic.timestamps_ms)) << what;
      EXPECT_LT(test::max_abs_diff(s.summary.task, task.values), 1e-5) << what;
      EXPECT_TRUE(torch::equal(s.summary.task_timestamps_ms, task.timestamps_ms)) << what;
      EXPECT_LT(test::max_abs_diff(s.summary.logits, logits.values), 1e-5) << what;
      EXPECT_LT(test::max_abs_diff(s.summary.scene, scene.values), 1e-5) << what;
    }
  }
}

TEST(StreamEmbedder, AcousticModelAloneScenePoolsEveryFrame) {
  test::TempDir dir;
  torch::manual_seed(22);
  const auto options = stream_options(64);
  models::HearClassifier model(options);
  models::save_weights(*model->acoustic_model, dir / "acoustic.safetensors");
  Embedder embedder(options, dir / "acoustic.safetensors");
  const auto wave = torch::randn({16000 * 4 + 1000}) * 0.1;
  const auto offline = embedder.embed({wave}, EmbeddingKind::kAcoustic)[0];
  const auto scene = embedder.embed({wave}, EmbeddingKind::kScene)[0];
  const auto s = run_stream(embedder, wave, 1600);
  EXPECT_LT(test::max_abs_diff(s.frames, offline.values), 1e-5);
  EXPECT_LT(test::max_abs_diff(s.summary.scene, scene.values), 1e-5);
  EXPECT_FALSE(s.summary.logits.defined());
}

// Longer than the task model (64 patches): kWhole refuses as offline does; kLast runs the task
// model on the last 64 mixture frames, equal to the offline mixture's last 64 through it.
TEST(StreamEmbedder, LastSpanServesStreamsLongerThanTheTaskModel) {
  test::TempDir dir;
  torch::manual_seed(23);
  const auto options = stream_options(64);
  models::HearClassifier model(options);
  models::save_weights(*model, dir / "full.safetensors");
  Embedder embedder(options, dir / "full.safetensors");
  const auto wave = torch::randn({16000 * 3}) * 0.1;  // 150 patches
  test::expect_error_containing([&] { run_stream(embedder, wave, 16000, TaskSpan::kWhole); },
                                {"exceed the task model's max_length 64"});
  const auto s = run_stream(embedder, wave, 16000, TaskSpan::kLast);
  ASSERT_EQ(s.summary.task.size(0), 64);
  EXPECT_DOUBLE_EQ(s.summary.task_timestamps_ms[0].item<double>(), (150 - 64) * 20.0 + 5.0);
  torch::NoGradGuard no_grad;
  model->eval();
  auto features = embedder.frontend()(wave);
  auto encoded = model->acoustic_model(features.log_mel, features.lengths);
  auto mixture = model->spectrogram_mixture(encoded.values, features.log_power);
  auto last = mixture.narrow(1, 150 - 64, 64);
  auto task = model->task_model(last, torch::tensor({64}));
  EXPECT_LT(test::max_abs_diff(s.summary.task, task[0]), 1e-5);
  EXPECT_LT(test::max_abs_diff(s.summary.logits, model->decoder(task, torch::tensor({64}))[0]),
            1e-5);
  StreamEmbedder short_stream(embedder, audio::ClipStatistics{});
  short_stream.push(torch::zeros({1000}));
  test::expect_error_containing([&] { short_stream.finish(); }, {"1000 samples", "too short"});
}

}  // namespace
}  // namespace hear::inference
