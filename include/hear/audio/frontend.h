#pragma once
// The HEAR frontend (docs/reference-notes.md §1): normalized log-mel (128 x T) and normalized
// log-power (513 x T), T = floor(S / 160) + 1.
//
// Unlike the reference, the per-clip statistics (DC mean, z-norm mean/std) use only each clip's
// valid samples/frames, so a clip's features are identical alone or padded inside a batch.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace hear::audio {

struct FrontendOptions {
  int sample_rate = 16000;
  int n_fft = 1024;
  int win_length = 400;  // periodic Hann, centred in the n_fft frame
  int hop_length = 160;
  int n_mels = 128;   // HTK mel, f_min 0, f_max sample_rate / 2, no area normalization
  double eps = 1e-6;  // log(x + eps) and (x - mean) / (std + eps)
};

struct Features {
  at::Tensor log_mel;    // (B, n_mels, T) float32, zero beyond each clip's length
  at::Tensor log_power;  // (B, n_fft / 2 + 1, T) float32, zero beyond each clip's length
  at::Tensor lengths;    // (B,) int64 frame counts, floor(samples / hop) + 1
};

// Frames of a clip of `samples` samples: floor(samples / hop) + 1 (centred framing).
inline int64_t frame_count(int64_t samples, const FrontendOptions& options = {}) {
  return samples < 0 ? 0 : samples / options.hop_length + 1;
}
// HEAR patches of the same clip: the patch embedding merges frames 2t and 2t+1 (stride 2), so
// frame_count / 2 (a trailing odd frame is dropped).
inline int64_t patch_count(int64_t samples, const FrontendOptions& options = {}) {
  return frame_count(samples, options) / 2;
}

// The per-clip statistics the frontend normalizes with: the DC mean of the samples (subtracted
// in float32), then mean and biased std (float64) of the natural-log power and log-mel spectra
// over all bins and frames. A stream is exact to the offline frontend only with them known.
struct ClipStatistics {
  double dc_mean = 0.0;
  double power_mean = 0.0, power_std = 1.0;
  double mel_mean = 0.0, mel_std = 1.0;
};

class Frontend {
 public:
  explicit Frontend(FrontendOptions options = {});

  // waveforms: (B, S) float32 at options.sample_rate; lengths: (B,) int64 valid samples.
  // Runs on the waveforms' device.
  Features operator()(const at::Tensor& waveforms, const at::Tensor& lengths) const;

  // One clip (S,) -> features with B = 1.
  Features operator()(const at::Tensor& waveform) const;

  // floor(samples / hop) + 1
  int64_t num_frames(int64_t samples) const { return frame_count(samples, options_); }

  const FrontendOptions& options() const { return options_; }
  const at::Tensor& mel_filterbank() const { return mel_fb_; }  // (n_fft / 2 + 1, n_mels)
  const at::Tensor& window() const { return window_; }          // (n_fft,)

 private:
  FrontendOptions options_;
  at::Tensor window_;  // (n_fft,) periodic Hann(win_length) zero-padded to the frame centre
  at::Tensor mel_fb_;
};

// (x - mean) / (std + eps) with float64 statistics, in the frontend's float32 arithmetic.
at::Tensor normalize_spectra(const at::Tensor& x, double mean, double std, double eps);

}  // namespace hear::audio
