#include "hear/audio/frontend.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <string>

#include "hear/error.h"
#include "hear/io/safetensors.h"
#include "test_util.h"

namespace hear::audio {
namespace {

const io::TensorMap& fe_golden() {
  static const io::TensorMap tensors =
      io::load_safetensors(test::data_path("hear_tiny.safetensors")).tensors;
  return tensors;
}

TEST(Frontend, MatchesReferenceOnGoldenClips) {
  Frontend frontend;
  for (const std::string clip : {"clip0", "clip1"}) {
    SCOPED_TRACE(clip);
    const at::Tensor& wave = fe_golden().at(clip + "/waveform");
    const at::Tensor& mel_ref = fe_golden().at(clip + "/log_mel");
    const at::Tensor& power_ref = fe_golden().at(clip + "/log_power");
    const auto start = std::chrono::steady_clock::now();
    Features f = frontend(wave);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    ASSERT_EQ(f.log_mel.sizes(), (std::vector<int64_t>{1, 128, mel_ref.size(1)}));
    ASSERT_EQ(f.log_power.sizes(), (std::vector<int64_t>{1, 513, power_ref.size(1)}));
    EXPECT_EQ(f.lengths.scalar_type(), torch::kLong);
    EXPECT_EQ(f.lengths.item<int64_t>(), wave.size(0) / 160 + 1);
    const double mel_err = test::max_abs_diff(f.log_mel[0], mel_ref);
    const double power_err = test::max_abs_diff(f.log_power[0], power_ref);
    std::cout << "[ info ] " << clip << " (" << wave.size(0) << " samples, " << ms
              << " ms): log_mel max abs error " << mel_err << ", log_power " << power_err << "\n";
    RecordProperty(clip + "_log_mel_max_abs_error", std::to_string(mel_err));
    RecordProperty(clip + "_log_power_max_abs_error", std::to_string(power_err));
    EXPECT_LE(mel_err, 1e-4);
    EXPECT_LE(power_err, 1e-4);
  }
}

TEST(Frontend, GoldenClipsInOneBatchMatchTheirOwnReference) {
  Frontend frontend;
  const at::Tensor& w0 = fe_golden().at("clip0/waveform");
  const at::Tensor& w1 = fe_golden().at("clip1/waveform");
  at::Tensor batch = torch::zeros({2, w0.size(0)});
  batch[0].copy_(w0);
  batch[1].slice(0, 0, w1.size(0)).copy_(w1);
  Features f = frontend(batch, torch::tensor({w0.size(0), w1.size(0)}, torch::kLong));
  const int64_t t1 = fe_golden().at("clip1/log_mel").size(1);
  EXPECT_LE(test::max_abs_diff(f.log_mel[0], fe_golden().at("clip0/log_mel")), 1e-4);
  EXPECT_LE(test::max_abs_diff(f.log_mel[1].slice(1, 0, t1), fe_golden().at("clip1/log_mel")),
            1e-4);
  EXPECT_LE(test::max_abs_diff(f.log_power[1].slice(1, 0, t1), fe_golden().at("clip1/log_power")),
            1e-4);
  EXPECT_EQ(f.log_mel[1].slice(1, t1).abs().max().item<float>(), 0.0f);
}

TEST(Frontend, ClipFeaturesDoNotDependOnTheBatch) {
  torch::manual_seed(3);
  Frontend frontend;
  const std::vector<int64_t> lengths = {12345, 16000, 9000};
  const int64_t width = 16000;
  at::Tensor batch = torch::randn({3, width}) * 0.1 + 0.05;  // a DC offset too
  // Garbage beyond each clip's length must not leak in.
  Features f = frontend(batch, torch::tensor(lengths, torch::kLong));
  ASSERT_EQ(f.log_mel.sizes(), (std::vector<int64_t>{3, 128, width / 160 + 1}));
  ASSERT_EQ(f.log_power.sizes(), (std::vector<int64_t>{3, 513, width / 160 + 1}));
  for (int b = 0; b < 3; ++b) {
    SCOPED_TRACE(b);
    const int64_t t = lengths[b] / 160 + 1;
    EXPECT_EQ(f.lengths[b].item<int64_t>(), t);
    Features alone = frontend(batch[b].slice(0, 0, lengths[b]));
    EXPECT_LE(test::max_abs_diff(f.log_mel[b].slice(1, 0, t), alone.log_mel[0]), 1e-5);
    EXPECT_LE(test::max_abs_diff(f.log_power[b].slice(1, 0, t), alone.log_power[0]), 1e-5);
    EXPECT_EQ(f.log_mel[b].slice(1, t).abs().sum().item<float>(), 0.0f);
    EXPECT_EQ(f.log_power[b].slice(1, t).abs().sum().item<float>(), 0.0f);
    // Per-clip normalization: the valid region has mean 0 and (biased) std ~1.
    at::Tensor valid = f.log_mel[b].slice(1, 0, t);
    EXPECT_NEAR(valid.mean().item<double>(), 0.0, 1e-5);
    EXPECT_NEAR(valid.std(/*unbiased=*/false).item<double>(), 1.0, 1e-4);
  }
  // A constant offset is removed before the spectrum.
  Features shifted = frontend(batch + 0.3, torch::tensor(lengths, torch::kLong));
  EXPECT_LE(test::max_abs_diff(shifted.log_mel, f.log_mel), 2e-3);
}

TEST(Frontend, SilenceGivesZeroFeatures) {
  Features f = Frontend()(torch::zeros({8000}));
  EXPECT_TRUE(f.log_mel.isfinite().all().item<bool>());
  EXPECT_TRUE(f.log_power.isfinite().all().item<bool>());
  EXPECT_EQ(f.log_mel.abs().max().item<float>(), 0.0f);
  EXPECT_EQ(f.log_power.abs().max().item<float>(), 0.0f);
}

TEST(Frontend, FrameCountIsSamplesOverHopPlusOne) {
  Frontend frontend;
  for (int64_t s : {513, 1000, 16000, 16159, 16160, 96000}) {
    SCOPED_TRACE(s);
    Features f = frontend(torch::randn({s}));
    EXPECT_EQ(f.log_mel.size(2), s / 160 + 1);
    EXPECT_EQ(f.log_power.size(2), s / 160 + 1);
    EXPECT_EQ(frontend.num_frames(s), s / 160 + 1);
  }
}

TEST(Frontend, MelFilterbankIsHtkWithoutNormalization) {
  Frontend frontend;
  const at::Tensor& fb = frontend.mel_filterbank();
  ASSERT_EQ(fb.sizes(), (std::vector<int64_t>{513, 128}));
  EXPECT_GT(fb.sum(0).min().item<float>(), 0.0f);        // no empty filter
  EXPECT_LE(fb.max().item<float>(), 1.0f + 1e-6f);       // peaks at most 1: no area normalization
  EXPECT_EQ(fb.select(0, 0).sum().item<float>(), 0.0f);  // f_min 0: the DC bin is a filter edge
  // Filter m peaks near the HTK mel point m + 1 of 130 equally spaced on 0..2595 log10(1+8000/700).
  const double mel_max = 2595.0 * std::log10(1.0 + 8000.0 / 700.0);
  for (int m : {0, 40, 127}) {
    const double centre = 700.0 * (std::pow(10.0, (m + 1) * mel_max / 129 / 2595.0) - 1.0);
    const double peak_bin = fb.select(1, m).argmax().item<int64_t>();
    EXPECT_NEAR(peak_bin * 8000.0 / 512, centre, 8000.0 / 512);
  }
}

TEST(Frontend, RejectsBadInputs) {
  Frontend frontend;
  EXPECT_THROW(frontend(torch::zeros({2, 3, 1000}), torch::tensor({1000, 1000})), Error);
  EXPECT_THROW(frontend(torch::zeros({2, 1000}), torch::tensor({1000}, torch::kLong)), Error);
  EXPECT_THROW(frontend(torch::zeros({2, 1000}), torch::tensor({1000, 1001}, torch::kLong)), Error);
  EXPECT_THROW(frontend(torch::zeros({2, 1000}), torch::tensor({1000, 100}, torch::kLong)), Error);
  EXPECT_THROW(frontend(torch::zeros({2, 1000}), torch::tensor({1000.0, 1000.0})), Error);
  EXPECT_THROW(frontend(torch::zeros({2, 1000}, torch::kInt), torch::tensor({1000, 1000})), Error);
  EXPECT_THROW(frontend(torch::zeros({2, 1000})), Error);  // the one-clip form wants (S,)
  try {
    frontend(torch::zeros({1, 1000}), torch::tensor({100}, torch::kLong));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("length 100"), std::string::npos) << e.what();
  }
  FrontendOptions bad;
  bad.win_length = 2048;
  EXPECT_THROW(Frontend{bad}, Error);
}

}  // namespace
}  // namespace hear::audio
