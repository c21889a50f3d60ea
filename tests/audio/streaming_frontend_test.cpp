#include "hear/audio/streaming_frontend.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hear/audio/audio_file.h"
#include "hear/error.h"
#include "test_util.h"

namespace hear::audio {
namespace {

// Feeds `wave` in blocks of `block` samples; returns the normalized features as the offline
// frontend lays them out: (n_mels, T), (bins, T).
std::pair<at::Tensor, at::Tensor> stream_features(const at::Tensor& wave, int64_t block) {
  Frontend frontend;
  const ClipStatistics s = clip_statistics(frontend, wave);
  StreamingFrontend stream(frontend, s.dc_mean);
  std::vector<at::Tensor> mel, power;
  auto add = [&](const SpectrumFrames& f) {
    mel.push_back(normalize_spectra(f.log_mel, s.mel_mean, s.mel_std, 1e-6));
    power.push_back(normalize_spectra(f.log_power, s.power_mean, s.power_std, 1e-6));
  };
  for (int64_t i = 0; i < wave.size(0); i += block) {
    add(stream.push(wave.narrow(0, i, std::min(block, wave.size(0) - i))));
  }
  add(stream.finish());
  EXPECT_EQ(stream.frames_emitted(), frame_count(wave.size(0)));
  return {torch::cat(mel, 1), torch::cat(power, 1)};
}

TEST(StreamingFrontend, EqualsTheOfflineFrontendForAnyBlockSize) {
  torch::manual_seed(2);
  Frontend frontend;
  for (int64_t samples : {513, 1024, 16000 * 3 + 77}) {
    // A tone, noise and a DC offset: the statistics and the DC removal both matter.
    const auto t = torch::arange(samples, torch::kFloat) / 16000.0;
    const auto wave = 0.3 * torch::sin(2 * M_PI * 440.0 * t) + 0.05 * torch::randn({samples}) + 0.2;
    const auto offline = frontend(wave);
    for (int64_t block : {1, 160, 1600, 7 * 16000, 1237}) {
      if (block == 1 && samples > 1024) continue;  // one-sample blocks: slow, covered above
      const auto [mel, power] = stream_features(wave, block);
      EXPECT_LT(test::max_abs_diff(mel, offline.log_mel[0]), 2e-5) << samples << " / " << block;
      EXPECT_LT(test::max_abs_diff(power, offline.log_power[0]), 2e-5) << samples << " / " << block;
    }
  }
}

TEST(StreamingFrontend, RejectsTooShortStreamsAndMisuse) {
  Frontend frontend;
  StreamingFrontend stream(frontend, 0.0);
  EXPECT_EQ(stream.push(torch::zeros({512})).frames(), 0);
  test::expect_error_containing([&] { stream.finish(); }, {"512 samples", "at least 513"});
  StreamingFrontend other(frontend, 0.0);
  test::expect_error_containing([&] { other.push(torch::zeros({2, 3})); }, {"(S,)"});
  ClipStatisticsAccumulator empty;
  EXPECT_THROW(empty.statistics(), Error);
}

// Block-wise decoding equals load_audio: at the model's rate, resampled from 44.1 kHz, stereo.
TEST(AudioStream, BlocksEqualLoadAudio) {
  test::TempDir dir;
  torch::manual_seed(4);
  const auto stereo = torch::randn({2, 44100 * 2 + 313}) * 0.2;
  write_audio(dir / "a44.wav", stereo, 44100, AudioEncoding::kFloat32);
  write_audio(dir / "a16.wav", stereo[0], 16000, AudioEncoding::kFloat32);
  for (const char* name : {"a44.wav", "a16.wav"}) {
    const auto whole = load_audio(dir / name);
    AudioStream stream(dir / name);
    EXPECT_EQ(stream.total_samples(), whole.size(0));
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<at::Tensor> blocks;
      for (auto b = stream.read(999); b.size(0) > 0; b = stream.read(999)) blocks.push_back(b);
      const auto joined = torch::cat(blocks);
      ASSERT_EQ(joined.size(0), whole.size(0)) << name;
      EXPECT_LT(test::max_abs_diff(joined, whole), 1e-5) << name;
      stream.rewind();
    }
  }
  test::expect_error_containing([&] { AudioStream missing(dir / "none.wav"); },
                                {"none.wav", "does not exist"});
}

}  // namespace
}  // namespace hear::audio
