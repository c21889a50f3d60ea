#include "hear/audio/kaldi_fbank.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <string>

#include "hear/error.h"

namespace hear::audio {
namespace {

// Kaldi's mel scale: 1127 ln(1 + f / 700).
double mel_scale(double hz) {
  return 1127.0 * std::log(1.0 + hz / 700.0);
}

// torchaudio.compliance.kaldi.get_mel_banks without VTLN, with its float32 operations, padded with
// a zero column for the Nyquist bin: (num_bins, padded_window / 2 + 1).
at::Tensor kaldi_mel_banks(int num_bins, int padded_window, double sample_rate, double low_freq,
                           double high_freq) {
  const double nyquist = 0.5 * sample_rate;
  if (high_freq <= 0.0) high_freq += nyquist;
  if (!(low_freq >= 0.0 && low_freq < nyquist && high_freq > 0.0 && high_freq <= nyquist &&
        low_freq < high_freq)) {
    throw Error("kaldi_fbank: bad frequency range low_freq " + std::to_string(low_freq) +
                ", high_freq " + std::to_string(high_freq) + " for Nyquist " +
                std::to_string(nyquist));
  }
  const double fft_bin_width = sample_rate / padded_window;
  const double mel_low = mel_scale(low_freq);
  const double mel_high = mel_scale(high_freq);
  const double mel_delta = (mel_high - mel_low) / (num_bins + 1);
  at::Tensor bin = torch::arange(num_bins, torch::kLong).unsqueeze(1);
  at::Tensor left = mel_low + bin * mel_delta;  // float32, as in torchaudio
  at::Tensor center = mel_low + (bin + 1.0) * mel_delta;
  at::Tensor right = mel_low + (bin + 2.0) * mel_delta;
  at::Tensor freqs = fft_bin_width * torch::arange(padded_window / 2, torch::kFloat);
  at::Tensor mel = (1127.0 * (1.0 + freqs / 700.0).log()).unsqueeze(0);
  at::Tensor up = (mel - left) / (center - left);
  at::Tensor down = (right - mel) / (right - center);
  at::Tensor banks = torch::clamp_min(torch::min(up, down), 0.0);
  return torch::constant_pad_nd(banks, {0, 1}, 0.0);
}

int64_t next_power_of_two(int64_t x) {
  int64_t p = 1;
  while (p < x) p <<= 1;
  return p;
}

}  // namespace

at::Tensor kaldi_fbank(const at::Tensor& waveform, const KaldiFbankOptions& options) {
  const auto& o = options;
  if (waveform.dim() != 1) {
    throw Error("kaldi_fbank: expected a waveform (S,), got shape " + c10::str(waveform.sizes()));
  }
  if (!waveform.is_floating_point()) {
    throw Error("kaldi_fbank: expected floating-point samples, got " +
                std::string(c10::toString(waveform.scalar_type())));
  }
  const auto window_shift = static_cast<int64_t>(o.sample_rate * o.frame_shift_ms * 0.001);
  const auto window_size = static_cast<int64_t>(o.sample_rate * o.frame_length_ms * 0.001);
  if (o.sample_rate <= 0 || window_size < 2 || window_shift <= 0 || o.num_mel_bins <= 3 ||
      o.preemphasis < 0.0 || o.preemphasis > 1.0) {
    throw Error("kaldi_fbank: invalid options (sample_rate " + std::to_string(o.sample_rate) +
                ", frame " + std::to_string(window_size) + " samples, shift " +
                std::to_string(window_shift) + " samples, " + std::to_string(o.num_mel_bins) +
                " mel bins, preemphasis " + std::to_string(o.preemphasis) + ")");
  }
  const int64_t padded = next_power_of_two(window_size);
  at::Tensor banks = kaldi_mel_banks(o.num_mel_bins, static_cast<int>(padded), o.sample_rate,
                                     o.low_freq, o.high_freq)
                         .to(waveform.device());
  const at::Tensor x = waveform.to(torch::kFloat);
  const int64_t samples = x.size(0);
  if (samples < window_size) {
    return torch::zeros({0, o.num_mel_bins}, x.options());
  }

  at::Tensor frames = x.unfold(0, window_size, window_shift);  // (T', window), snip_edges
  if (o.remove_dc_offset) frames = frames - frames.mean(1, /*keepdim=*/true);
  if (o.preemphasis != 0.0) {
    // x[j] - k x[j-1], with x[-1] = x[0] inside each frame (replicate padding)
    at::Tensor previous = torch::cat({frames.slice(1, 0, 1), frames.slice(1, 0, -1)}, 1);
    frames = frames - o.preemphasis * previous;
  }
  at::Tensor window = torch::hann_window(window_size, /*periodic=*/false, x.options());
  frames = frames * window;
  frames = torch::constant_pad_nd(frames, {0, padded - window_size}, 0.0);
  at::Tensor power = torch::fft::rfft(frames).abs().pow(2.0);  // (T', padded / 2 + 1)
  at::Tensor mel = torch::mm(power, banks.t());
  const double epsilon = std::numeric_limits<float>::epsilon();
  return torch::clamp_min(mel, epsilon).log();
}

at::Tensor subtract_mean(const at::Tensor& waveform) {
  at::Tensor x = waveform.to(torch::kFloat);
  return x - x.mean();
}

at::Tensor ssast_normalize(const at::Tensor& fbank) {
  constexpr double kMean = -4.2677393;
  constexpr double kStd = 4.5689974;
  return (fbank - kMean) / (kStd * 2);
}

}  // namespace hear::audio
