#pragma once
// Audio file input/output through libsndfile, with libsoxr resampling.
// Everything the models see is float32 mono at 16 kHz.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace hear::audio {

constexpr int kSampleRate = 16000;

struct AudioInfo {
  int sample_rate = 0;
  int channels = 0;
  int64_t frames = 0;       // samples per channel at the file's own rate
  double duration_s = 0.0;  // frames / sample_rate
  std::string format;       // libsndfile's major format name, e.g. "WAV (Microsoft)"
};

// Header-only look at a file (no decoding). Throws hear::Error naming the file.
AudioInfo probe_audio(const std::filesystem::path& path);

struct LoadOptions {
  int sample_rate =
      kSampleRate;           // output rate; the file is resampled (soxr, high quality) if needed
  double offset_s = 0.0;     // start of the crop, in seconds of the file (rounded to a frame)
  double duration_s = -1.0;  // crop length in seconds; < 0 reads to the end; a crop running
                             // past the end is shortened to the end
};

// Decodes any format libsndfile reads into float32 mono (channels averaged) at options.sample_rate.
// Returns (S,). Throws hear::Error naming the file for: missing/unreadable file, not audio,
// unsupported format, 0 samples, truncated data, NaN/Inf samples, crop outside the file.
at::Tensor load_audio(const std::filesystem::path& path, const LoadOptions& options = {});

// Block-wise decoding of one file, for recordings too long to hold: float32 mono (channels
// averaged) at `sample_rate`, resampled by soxr's streaming interface. The concatenated blocks
// are load_audio's samples (same count; equal within the resampler's float rounding). The same
// checks as load_audio, by name, as the blocks are read (truncation, NaN/Inf samples).
class AudioStream {
 public:
  explicit AudioStream(const std::filesystem::path& path, int sample_rate = kSampleRate);
  ~AudioStream();
  AudioStream(AudioStream&&) noexcept;
  AudioStream& operator=(AudioStream&&) noexcept;

  const AudioInfo& info() const;
  // Samples the whole file yields at `sample_rate`: llround(frames * rate / file rate).
  int64_t total_samples() const;
  // The next samples (n,), n <= about max_file_frames * rate / file rate; (0,) at the end.
  at::Tensor read(int64_t max_file_frames = 16384);
  // Back to the first sample (a new resampler), for another pass over the file.
  void rewind();

 private:
  at::Tensor read_block(int64_t max_file_frames);

  struct State;
  std::unique_ptr<State> state_;
};

// Band-limited resampling of (S,) or (C, S) float32 samples with libsoxr (high quality).
at::Tensor resample(const at::Tensor& samples, int from_rate, int to_rate);

// Sample encoding for write_audio. kDefault: PCM 16 for .wav/.flac, the codec for lossy formats.
enum class AudioEncoding { kDefault, kPcm16, kPcm24, kFloat32 };

// Writes (S,) or (C, S) float samples to a file; the format follows the extension
// (.wav: PCM 16, .flac: PCM 16, .ogg: Vorbis, .opus: Opus in Ogg, .mp3: MPEG layer III).
// PCM values outside [-1, 1] are clipped. Written atomically (temp file, then rename).
// Throws hear::Error naming the file for an unknown extension or an encoding the format lacks.
void write_audio(const std::filesystem::path& path, const at::Tensor& samples, int sample_rate,
                 AudioEncoding encoding = AudioEncoding::kDefault);

}  // namespace hear::audio
