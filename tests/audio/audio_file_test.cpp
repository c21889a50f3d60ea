#include "hear/audio/audio_file.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <random>
#include <string>

#include "hear/audio/frontend.h"
#include "hear/error.h"
#include "test_util.h"

namespace hear::audio {
namespace {

at::Tensor af_sine(double freq, int64_t samples, int rate, double amplitude = 0.5,
                   double phase = 0.0) {
  at::Tensor t = torch::arange(samples, torch::kDouble) / rate;
  return (amplitude * torch::sin(2 * M_PI * freq * t + phase)).to(torch::kFloat);
}

// Frequency (Hz) of the strongest bin of a Hann-windowed spectrum.
double af_peak_hz(const at::Tensor& x, int rate) {
  at::Tensor w = torch::hann_window(x.size(0), /*periodic=*/false, torch::kDouble);
  at::Tensor spectrum = torch::fft::rfft(x.to(torch::kDouble) * w).abs();
  return spectrum.argmax().item<int64_t>() * static_cast<double>(rate) / x.size(0);
}

double af_correlation(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.to(torch::kDouble);
  at::Tensor y = b.to(torch::kDouble);
  return ((x * y).sum() / (x.norm() * y.norm())).item<double>();
}

// Runs `fn`, expects a hear::Error whose message names `path` and contains `needle`.
void af_expect_error(const std::function<void()>& fn, const std::filesystem::path& path,
                     const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an error containing '" << needle << "' for " << path;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.filename().string()), std::string::npos) << message;
    EXPECT_NE(message.find(needle), std::string::npos) << message;
  }
}

void af_write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string af_read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Writes with write_audio; returns false when this libsndfile cannot write the format.
bool af_try_write(const std::filesystem::path& path, const at::Tensor& x, int rate) {
  try {
    write_audio(path, x, rate);
    return true;
  } catch (const Error& e) {
    if (std::string(e.what()).find("libsndfile cannot write") != std::string::npos) return false;
    throw;
  }
}

TEST(AudioFile, WavEncodingsRoundTrip) {
  test::TempDir dir;
  at::Tensor x = af_sine(440.0, 8000, kSampleRate, 0.8);
  struct Case {
    std::string name;
    AudioEncoding encoding;
    double tolerance;
  };
  for (const Case& c : {Case{"pcm16.wav", AudioEncoding::kPcm16, 1.0 / 32768},
                        Case{"pcm24.wav", AudioEncoding::kPcm24, 1.0 / 8388608},
                        Case{"float.wav", AudioEncoding::kFloat32, 0.0},
                        Case{"pcm16.flac", AudioEncoding::kDefault, 1.0 / 32768},
                        Case{"pcm24.flac", AudioEncoding::kPcm24, 1.0 / 8388608}}) {
    SCOPED_TRACE(c.name);
    write_audio(dir / c.name, x, kSampleRate, c.encoding);
    AudioInfo info = probe_audio(dir / c.name);
    EXPECT_EQ(info.sample_rate, kSampleRate);
    EXPECT_EQ(info.channels, 1);
    EXPECT_EQ(info.frames, 8000);
    EXPECT_DOUBLE_EQ(info.duration_s, 0.5);
    at::Tensor y = load_audio(dir / c.name);
    ASSERT_EQ(y.sizes(), x.sizes());
    EXPECT_EQ(y.scalar_type(), torch::kFloat);
    EXPECT_LE(test::max_abs_diff(x, y), c.tolerance);
  }
  EXPECT_EQ(probe_audio(dir / "pcm16.wav").format, "WAV (Microsoft)");
  EXPECT_EQ(probe_audio(dir / "pcm16.flac").format, "FLAC (Free Lossless Audio Codec)");
}

TEST(AudioFile, LossyFormatsKeepTheTone) {
  test::TempDir dir;
  at::Tensor x = af_sine(1000.0, 32000, kSampleRate, 0.5);
  int written = 0;
  for (const std::string name : {"tone.ogg", "tone.opus", "tone.mp3"}) {
    SCOPED_TRACE(name);
    if (!af_try_write(dir / name, x, kSampleRate)) {
      std::cout << "[ info ] this libsndfile cannot write " << name << "\n";
      continue;
    }
    ++written;
    at::Tensor y = load_audio(dir / name);
    // Codecs may add priming samples; the tone and its level must survive.
    EXPECT_NEAR(static_cast<double>(y.size(0)), 32000.0, 2000.0);
    EXPECT_NEAR(af_peak_hz(y, kSampleRate), 1000.0, 2.0);
    const double rms = y.pow(2).mean().sqrt().item<double>();
    EXPECT_NEAR(rms, 0.5 / std::sqrt(2.0), 0.05);
  }
  EXPECT_GE(written, 1);  // Vorbis is always built into libsndfile's Ogg support
}

TEST(AudioFile, ReadsFilesWrittenBySox) {
  test::TempDir dir;
  const std::filesystem::path path = dir / "sox.aiff";
  std::string output;
  const std::string command =
      "sox -n -r 22050 -b 24 -c 2 '" + path.string() + "' synth 0.5 sine 440 sine 440 vol 0.5";
  if (test::run_command(command, &output) != 0) GTEST_SKIP() << "sox unavailable: " << output;
  AudioInfo info = probe_audio(path);
  EXPECT_EQ(info.sample_rate, 22050);
  EXPECT_EQ(info.channels, 2);
  EXPECT_EQ(info.frames, 11025);
  at::Tensor y = load_audio(path);
  EXPECT_NEAR(static_cast<double>(y.size(0)), 8000.0, 1.0);
  EXPECT_NEAR(af_peak_hz(y, kSampleRate), 440.0, 2.0);
  EXPECT_NEAR(y.abs().max().item<double>(), 0.5, 0.02);
}

TEST(AudioFile, DownmixesByAveragingChannels) {
  test::TempDir dir;
  at::Tensor left = af_sine(300.0, 4000, kSampleRate, 0.6);
  at::Tensor right = af_sine(700.0, 4000, kSampleRate, 0.3, 1.0);
  write_audio(dir / "stereo.wav", torch::stack({left, right}), kSampleRate,
              AudioEncoding::kFloat32);
  EXPECT_EQ(probe_audio(dir / "stereo.wav").channels, 2);
  at::Tensor y = load_audio(dir / "stereo.wav");
  ASSERT_EQ(y.dim(), 1);
  EXPECT_LE(test::max_abs_diff(y, (left + right) / 2), 1e-7);
}

TEST(AudioFile, Resamples44100To16000) {
  test::TempDir dir;
  const int64_t n = 66150;  // 1.5 s at 44.1 kHz
  at::Tensor x = af_sine(1000.0, n, 44100, 0.5);
  write_audio(dir / "cd.wav", x, 44100, AudioEncoding::kFloat32);
  at::Tensor y = load_audio(dir / "cd.wav");
  const double expected = std::round(n * 16000.0 / 44100.0);
  EXPECT_NEAR(static_cast<double>(y.size(0)), expected, 1.0);
  EXPECT_NEAR(af_peak_hz(y, kSampleRate), 1000.0, 1.0);
  // Away from the edges the output is the same sine sampled at 16 kHz.
  at::Tensor ideal = af_sine(1000.0, y.size(0), kSampleRate, 0.5);
  at::Tensor inner = y.slice(0, 800, -800);
  at::Tensor inner_ideal = ideal.slice(0, 800, -800);
  const double corr = af_correlation(inner, inner_ideal);
  const double err = test::max_abs_diff(inner, inner_ideal);
  std::cout << "[ info ] 44.1k->16k sine: correlation " << corr << ", max abs error " << err
            << "\n";
  EXPECT_GT(corr, 0.9999);
  EXPECT_LT(err, 2e-3);

  // The free function: (C, S) keeps channels; equal rates copy.
  at::Tensor two = resample(torch::stack({x, -x}), 44100, 16000);
  ASSERT_EQ(two.dim(), 2);
  EXPECT_EQ(two.size(0), 2);
  EXPECT_EQ(two.size(1), static_cast<int64_t>(expected));
  EXPECT_LE(test::max_abs_diff(two[0], -two[1]), 1e-6);
  EXPECT_TRUE(torch::equal(resample(x, 44100, 44100), x));
  EXPECT_THROW(resample(x, 0, 16000), Error);
  EXPECT_THROW(resample(x.view({1, 1, -1}), 44100, 16000), Error);
}

TEST(AudioFile, CropsSampleExactly) {
  test::TempDir dir;
  at::Tensor x = torch::rand({16000}, torch::kFloat) - 0.5;
  write_audio(dir / "noise.wav", x, kSampleRate, AudioEncoding::kFloat32);
  LoadOptions options;
  options.offset_s = 0.25;
  options.duration_s = 0.5;
  EXPECT_TRUE(torch::equal(load_audio(dir / "noise.wav", options), x.slice(0, 4000, 12000)));
  options.offset_s = 0.75;
  options.duration_s = -1.0;
  EXPECT_TRUE(torch::equal(load_audio(dir / "noise.wav", options), x.slice(0, 12000)));
  options.duration_s = 10.0;  // shortened to the end of the file
  EXPECT_TRUE(torch::equal(load_audio(dir / "noise.wav", options), x.slice(0, 12000)));
  options.offset_s = 0.0001;  // 1.6 samples -> frame 2
  options.duration_s = 0.001;
  EXPECT_TRUE(torch::equal(load_audio(dir / "noise.wav", options), x.slice(0, 2, 18)));
  options.offset_s = 1.0;
  options.duration_s = -1.0;
  af_expect_error([&] { load_audio(dir / "noise.wav", options); }, dir / "noise.wav",
                  "beyond the end");
  options.offset_s = -0.5;
  af_expect_error([&] { load_audio(dir / "noise.wav", options); }, dir / "noise.wav", "offset");
}

TEST(AudioFile, SilenceLoadsAndGivesFiniteFeatures) {
  test::TempDir dir;
  write_audio(dir / "silence.wav", torch::zeros({16000}), kSampleRate);
  at::Tensor y = load_audio(dir / "silence.wav");
  EXPECT_EQ(y.size(0), 16000);
  EXPECT_EQ(y.abs().max().item<float>(), 0.0f);
  Features f = Frontend()(y);
  EXPECT_TRUE(f.log_mel.isfinite().all().item<bool>());
  EXPECT_TRUE(f.log_power.isfinite().all().item<bool>());
}

TEST(AudioFile, RejectsMissingAndNonAudioFiles) {
  test::TempDir dir;
  af_expect_error([&] { load_audio(dir / "missing.wav"); }, dir / "missing.wav", "does not exist");
  af_expect_error([&] { probe_audio(dir / "missing.wav"); }, dir / "missing.wav", "does not exist");

  af_write_bytes(dir / "notes.txt", "this is a text file, not audio\n");
  af_expect_error([&] { load_audio(dir / "notes.txt"); }, dir / "notes.txt", "cannot read");

  std::mt19937 rng(7);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(rng() & 0xff);
  af_write_bytes(dir / "random.wav", noise);
  af_expect_error([&] { load_audio(dir / "random.wav"); }, dir / "random.wav", "cannot read");
  af_write_bytes(dir / "random.xyz", noise);
  af_expect_error([&] { load_audio(dir / "random.xyz"); }, dir / "random.xyz", "cannot read");

  af_write_bytes(dir / "zero.wav", "");
  af_expect_error([&] { load_audio(dir / "zero.wav"); }, dir / "zero.wav", "empty");
  af_expect_error([&] { load_audio(dir.path()); }, dir.path(), "not a regular file");
}

TEST(AudioFile, RejectsAudioWithoutSamples) {
  test::TempDir dir;
  write_audio(dir / "empty.wav", torch::zeros({0}), kSampleRate);
  EXPECT_EQ(probe_audio(dir / "empty.wav").frames, 0);
  af_expect_error([&] { load_audio(dir / "empty.wav"); }, dir / "empty.wav", "no samples");
}

TEST(AudioFile, RejectsTruncatedFiles) {
  test::TempDir dir;
  at::Tensor x = torch::rand({32000}) - 0.5;
  // WAV cut in the middle of its data chunk: libsndfile would quietly return what is left.
  write_audio(dir / "full.wav", x, kSampleRate);
  const std::string wav = af_read_bytes(dir / "full.wav");
  af_write_bytes(dir / "cut.wav", wav.substr(0, wav.size() / 2));
  af_expect_error([&] { load_audio(dir / "cut.wav"); }, dir / "cut.wav", "truncated");

  // FLAC cut short: the stream header promises more frames than decode.
  write_audio(dir / "full.flac", x, kSampleRate);
  const std::string flac = af_read_bytes(dir / "full.flac");
  af_write_bytes(dir / "cut.flac", flac.substr(0, flac.size() / 2));
  af_expect_error([&] { load_audio(dir / "cut.flac"); }, dir / "cut.flac", "truncated");

  // Ogg cut short: no end-of-stream page, so the length is unknown.
  write_audio(dir / "full.ogg", x, kSampleRate);
  const std::string ogg = af_read_bytes(dir / "full.ogg");
  af_write_bytes(dir / "cut.ogg", ogg.substr(0, ogg.size() / 2));
  af_expect_error([&] { load_audio(dir / "cut.ogg"); }, dir / "cut.ogg", "truncated");

  // Streaming writers put 0xFFFFFFFF ("unknown") in the data size: not a truncated file.
  std::string streamed = wav;
  const size_t data = streamed.find("data");
  ASSERT_NE(data, std::string::npos);
  streamed.replace(data + 4, 4, std::string(4, '\xff'));
  af_write_bytes(dir / "streamed.wav", streamed);
  EXPECT_LE(test::max_abs_diff(load_audio(dir / "streamed.wav"), load_audio(dir / "full.wav")),
            0.0);

  // The intact files still load.
  EXPECT_EQ(load_audio(dir / "full.wav").size(0), 32000);
  EXPECT_EQ(load_audio(dir / "full.flac").size(0), 32000);
}

TEST(AudioFile, RejectsNonFiniteSamples) {
  test::TempDir dir;
  at::Tensor x = af_sine(440.0, 1000, kSampleRate);
  x[123] = std::numeric_limits<float>::quiet_NaN();
  write_audio(dir / "nan.wav", x, kSampleRate, AudioEncoding::kFloat32);
  af_expect_error([&] { load_audio(dir / "nan.wav"); }, dir / "nan.wav", "NaN");
  x[123] = std::numeric_limits<float>::infinity();
  write_audio(dir / "inf.wav", x, kSampleRate, AudioEncoding::kFloat32);
  af_expect_error([&] { load_audio(dir / "inf.wav"); }, dir / "inf.wav", "non-finite");
  // PCM cannot hold them.
  af_expect_error([&] { write_audio(dir / "nan16.wav", x, kSampleRate); }, dir / "nan16.wav",
                  "non-finite");
}

TEST(AudioFile, WriteRejectsBadRequests) {
  test::TempDir dir;
  at::Tensor x = torch::zeros({100});
  af_expect_error([&] { write_audio(dir / "a.xyz", x, kSampleRate); }, dir / "a.xyz",
                  "unknown extension");
  af_expect_error([&] { write_audio(dir / "a.flac", x, kSampleRate, AudioEncoding::kFloat32); },
                  dir / "a.flac", "float");
  af_expect_error(
      [&] {
        write_audio(dir / "a.wav", x.view({1, 1, 100}), kSampleRate);
      },
      dir / "a.wav", "shape");
  af_expect_error([&] { write_audio(dir / "a.wav", x, 0); }, dir / "a.wav", "sample_rate");
  EXPECT_FALSE(std::filesystem::exists(dir / "a.wav"));
  // PCM clips instead of wrapping around.
  write_audio(dir / "loud.wav", torch::full({10}, 3.0f), kSampleRate);
  EXPECT_NEAR(load_audio(dir / "loud.wav").min().item<double>(), 1.0, 1e-4);
  // Parent directories are created; no temporary file is left behind.
  write_audio(dir / "sub" / "dir" / "x.wav", x, kSampleRate);
  EXPECT_TRUE(std::filesystem::exists(dir / "sub" / "dir" / "x.wav"));
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "sub" / "dir")) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

}  // namespace
}  // namespace hear::audio
