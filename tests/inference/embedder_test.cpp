#include "hear/inference/embedder.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "hear/audio/audio_file.h"
#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/io/npy.h"
#include "hear/models/weights.h"
#include "models/small_hear.h"
#include "test_util.h"

namespace hear::inference {
namespace {

models::HearClassifierOptions embedder_small_options() {
  auto o = models::model_testing::small_hear_options();
  o.acoustic_model.num_transformer_layers = 1;
  o.acoustic_model.max_length = 40;  // a 1 s clip (50 patches) needs two windows
  o.acoustic_model.overlap = 10;
  return o;
}

TEST(Embedder, FramesTimestampsSceneAndLogitsAreBatchInvariant) {
  test::TempDir dir;
  torch::manual_seed(11);
  models::HearClassifier model(embedder_small_options());
  models::save_weights(*model, dir / "full.safetensors");
  Embedder embedder(embedder_small_options(), dir / "full.safetensors");
  EXPECT_TRUE(embedder.has_task_model());
  const at::Tensor a = torch::randn({16000}) * 0.1, b = torch::randn({5000}) * 0.1;
  for (auto kind : {EmbeddingKind::kAcoustic, EmbeddingKind::kTask}) {
    const auto both = embedder.embed({a, b}, kind);
    const auto alone = embedder.embed({b}, kind);
    ASSERT_EQ(both.size(), 2u);
    EXPECT_EQ(both[0].values.sizes(), (std::vector<int64_t>{50, 16}));  // (16000/160+1)/2
    EXPECT_EQ(both[1].values.sizes(), (std::vector<int64_t>{16, 16}));
    EXPECT_LT(test::max_abs_diff(both[1].values, alone[0].values), 1e-5);
    ASSERT_EQ(both[0].timestamps_ms.size(0), 50);
    EXPECT_DOUBLE_EQ(both[0].timestamps_ms[0].item<double>(), 5.0);
    EXPECT_DOUBLE_EQ(both[0].timestamps_ms[49].item<double>(), 985.0);
  }
  const auto scene = embedder.embed({a, b}, EmbeddingKind::kScene);
  EXPECT_EQ(scene[1].values.sizes(), (std::vector<int64_t>{48}));
  EXPECT_FALSE(scene[1].timestamps_ms.defined());
  const auto logits = embedder.embed({b}, EmbeddingKind::kLogits);
  EXPECT_EQ(logits[0].values.sizes(), (std::vector<int64_t>{3}));
  // The same as the classifier's own forward.
  torch::NoGradGuard no_grad;
  model->eval();
  audio::Frontend frontend;
  const auto f = frontend(b.unsqueeze(0), torch::tensor({5000}, torch::kLong));
  EXPECT_LT(test::max_abs_diff(logits[0].values, model->forward(f)[0]), 1e-5);
  test::expect_error_containing(
      [&] { embedder.embed({torch::zeros({1000})}, EmbeddingKind::kTask); },
      {"1000 samples", "too short"});
}

TEST(Embedder, AcousticModelAloneGivesFramesAndScene) {
  test::TempDir dir;
  torch::manual_seed(12);
  models::HearClassifier model(embedder_small_options());
  // A hear-pretrain style export under `encoder.`.
  models::save_weights(*model->acoustic_model, dir / "ac.safetensors", {}, "encoder.");
  Embedder embedder(embedder_small_options(), dir / "ac.safetensors");
  EXPECT_FALSE(embedder.has_task_model());
  const at::Tensor a = torch::randn({8000}) * 0.1;
  const auto frames = embedder.embed({a}, EmbeddingKind::kAcoustic);
  torch::NoGradGuard no_grad;
  model->eval();
  audio::Frontend frontend;
  const auto f = frontend(a.unsqueeze(0), torch::tensor({8000}, torch::kLong));
  EXPECT_LT(test::max_abs_diff(frames[0].values,
                               model->acoustic_model->forward(f.log_mel, f.lengths).values[0]),
            1e-5);
  EXPECT_EQ(embedder.embed({a}, EmbeddingKind::kScene)[0].values.size(0), 48);
  test::expect_error_containing([&] { embedder.embed({a}, EmbeddingKind::kLogits); },
                                {"needs a full HEAR model", "ac.safetensors"});
  EXPECT_EQ(io::parse_enum<EmbeddingKind>("scene", "--output"), EmbeddingKind::kScene);
  test::expect_error_containing([&] { io::parse_enum<EmbeddingKind>("frames", "--output"); },
                                {"'frames'", "acoustic, task, logits, scene"});
}

TEST(Embedder, EmbedFilesWritesNpyAndIndexAndSkipsBadFiles) {
  test::TempDir dir;
  torch::manual_seed(13);
  models::HearClassifier model(embedder_small_options());
  models::save_weights(*model, dir / "full.safetensors");
  Embedder embedder(embedder_small_options(), dir / "full.safetensors");
  audio::write_audio(dir / "x.wav", torch::randn({12000}) * 0.1, 16000);
  io::write_file_atomic(dir / "bad.wav", "not audio");
  EmbedFilesOptions options;
  options.kind = EmbeddingKind::kTask;
  options.batch_size = 4;
  const auto r = embed_files(embedder, {(dir / "x.wav").string(), (dir / "bad.wav").string()},
                             dir / "out", options);
  EXPECT_EQ(r.written, std::vector<std::string>{"x.task.npy"});
  EXPECT_EQ(r.failed, std::vector<std::string>{(dir / "bad.wav").string()});
  EXPECT_EQ(r.files, 1);
  EXPECT_NEAR(r.audio_s, 0.75, 1e-9);
  const auto frames = io::load_npy(dir / "out" / "x.task.npy");
  EXPECT_EQ(frames.sizes(), (std::vector<int64_t>{38, 16}));
  EXPECT_EQ(io::load_npy(dir / "out" / "x.timestamps.npy").size(0), 38);
  const auto index = nlohmann::json::parse(io::read_file(dir / "out" / "index.json"));
  EXPECT_EQ(index["files"].size(), 1u);
  EXPECT_EQ(index["failed"][0], (dir / "bad.wav").string());
  EXPECT_EQ(index["throughput"]["files"], 1);
  EXPECT_GT(index["throughput"]["peak_rss_mib"].get<double>(), 0.0);
}

// Background decoding and the block-wise stream give the files the batch path gives.
TEST(Embedder, EmbedFilesDecodeThreadsAndStreamEqualTheBatchPath) {
  test::TempDir dir;
  torch::manual_seed(14);
  models::HearClassifier model(embedder_small_options());
  models::save_weights(*model, dir / "full.safetensors");
  Embedder embedder(embedder_small_options(), dir / "full.safetensors");
  std::vector<std::string> files;
  for (int i = 0; i < 5; ++i) {
    files.push_back((dir / ("f" + std::to_string(i) + ".wav")).string());
    audio::write_audio(files.back(), torch::randn({8000 + 3001 * i}) * 0.1, i % 2 ? 16000 : 22050,
                       audio::AudioEncoding::kFloat32);
  }
  for (auto kind : {EmbeddingKind::kAcoustic, EmbeddingKind::kScene}) {
    EmbedFilesOptions base;
    base.kind = kind;
    base.batch_size = 2;
    base.decode_threads = 0;
    embed_files(embedder, files, dir / "base", base);
    auto threaded = base;
    threaded.decode_threads = 3;
    embed_files(embedder, files, dir / "threaded", threaded);
    auto streamed = base;
    streamed.stream = true;
    streamed.stream_block_s = 0.3;
    const auto r = embed_files(embedder, files, dir / "stream", streamed);
    EXPECT_EQ(r.files, 5);
    for (int i = 0; i < 5; ++i) {
      const std::string npy = "f" + std::to_string(i) + "." + io::to_string(kind) + ".npy";
      const auto want = io::load_npy(dir / "base" / npy);
      EXPECT_TRUE(torch::equal(io::load_npy(dir / "threaded" / npy), want)) << npy;
      EXPECT_LT(test::max_abs_diff(io::load_npy(dir / "stream" / npy), want), 1e-4) << npy;
    }
  }
}

}  // namespace
}  // namespace hear::inference
