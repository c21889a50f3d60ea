#include "hear/audio/kaldi_fbank.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "hear/error.h"
#include "hear/io/safetensors.h"
#include "test_util.h"

namespace hear::audio {
namespace {

TEST(KaldiFbank, MatchesTorchaudioOnHearGoldenClips) {
  const io::TensorMap golden =
      io::load_safetensors(test::data_path("hear_tiny.safetensors")).tensors;
  for (const std::string clip : {"clip0", "clip1"}) {
    SCOPED_TRACE(clip);
    const at::Tensor& wave = golden.at(clip + "/waveform");
    const at::Tensor& ref = golden.at(clip + "/kaldi_fbank");
    at::Tensor fbank = kaldi_fbank(subtract_mean(wave));
    ASSERT_EQ(fbank.sizes(), ref.sizes());
    EXPECT_EQ(fbank.size(0), 1 + (wave.size(0) - 400) / 160);
    const double err = test::max_abs_diff(fbank, ref);
    std::cout << "[ info ] " << clip << " kaldi_fbank max abs error " << err << "\n";
    RecordProperty(clip + "_kaldi_fbank_max_abs_error", std::to_string(err));
    EXPECT_LE(err, 1e-4);
  }
}

TEST(KaldiFbank, MatchesSsastGoldenFrontend) {
  const io::TensorMap golden =
      io::load_safetensors(test::data_path("ssast_tiny.safetensors")).tensors;
  const at::Tensor& raw_ref = golden.at("debug/fbank_raw");
  const at::Tensor& normalized_ref = golden.at("fbank_normalized");
  at::Tensor fbank = kaldi_fbank(subtract_mean(golden.at("waveform")));
  ASSERT_EQ(fbank.sizes(), raw_ref.sizes());
  const double raw_err = test::max_abs_diff(fbank, raw_ref);

  // SSAST pads with zero rows to 1024 frames first, then normalizes (the padding becomes nonzero).
  auto pad = [](const at::Tensor& x) {
    return torch::constant_pad_nd(x, {0, 0, 0, 1024 - x.size(0)}, 0.0);
  };
  const double normalize_err = test::max_abs_diff(ssast_normalize(pad(raw_ref)), normalized_ref);
  const double end_to_end_err = test::max_abs_diff(ssast_normalize(pad(fbank)), normalized_ref);
  std::cout << "[ info ] ssast fbank_raw max abs error " << raw_err
            << ", ssast_normalize(golden raw) " << normalize_err << ", end to end "
            << end_to_end_err << "\n";
  RecordProperty("ssast_fbank_raw_max_abs_error", std::to_string(raw_err));
  EXPECT_LE(raw_err, 1e-4);
  EXPECT_LE(normalize_err, 1e-6);
  EXPECT_LE(end_to_end_err, 1e-4);
  EXPECT_NEAR(ssast_normalize(torch::zeros({1})).item<float>(), 0.46703237f, 1e-7f);
}

TEST(KaldiFbank, SnipEdgesFrameCount) {
  EXPECT_EQ(kaldi_fbank(torch::randn({399})).sizes(), (std::vector<int64_t>{0, 128}));
  EXPECT_EQ(kaldi_fbank(torch::randn({400})).size(0), 1);
  EXPECT_EQ(kaldi_fbank(torch::randn({559})).size(0), 1);
  EXPECT_EQ(kaldi_fbank(torch::randn({560})).size(0), 2);
  EXPECT_EQ(kaldi_fbank(torch::randn({96000})).size(0), 598);
  KaldiFbankOptions options;
  options.num_mel_bins = 40;
  EXPECT_EQ(kaldi_fbank(torch::randn({16000}), options).sizes(), (std::vector<int64_t>{98, 40}));
}

TEST(KaldiFbank, SilenceIsFloored) {
  at::Tensor fbank = kaldi_fbank(torch::zeros({4000}));
  const float floor = std::log(std::numeric_limits<float>::epsilon());
  EXPECT_NEAR(fbank.min().item<float>(), floor, 1e-6);
  EXPECT_NEAR(fbank.max().item<float>(), floor, 1e-6);
}

TEST(KaldiFbank, SubtractMeanRemovesTheClipMean) {
  at::Tensor x = torch::randn({1000}) + 2.0;
  at::Tensor y = subtract_mean(x);
  EXPECT_NEAR(y.mean().item<double>(), 0.0, 1e-6);
  EXPECT_LE(test::max_abs_diff(y, x - x.mean()), 0.0);
}

TEST(KaldiFbank, RejectsBadInputs) {
  EXPECT_THROW(kaldi_fbank(torch::zeros({1, 16000})), Error);
  EXPECT_THROW(kaldi_fbank(torch::zeros({16000}, torch::kLong)), Error);
  KaldiFbankOptions options;
  options.low_freq = 9000.0;
  EXPECT_THROW(kaldi_fbank(torch::zeros({16000}), options), Error);
  options = {};
  options.num_mel_bins = 2;
  EXPECT_THROW(kaldi_fbank(torch::zeros({16000}), options), Error);
}

}  // namespace
}  // namespace hear::audio
