#include "hear/audio/frontend.h"

#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "hear/error.h"

namespace hear::audio {
namespace {

// torchaudio.functional.melscale_fbanks(n_freqs, 0, sr / 2, n_mels, sr, norm=None, "htk"), built
// with the same float32 operations so that the filter weights agree to the last bit.
at::Tensor htk_mel_filterbank(int n_freqs, double f_max, int n_mels, int sample_rate) {
  auto hz_to_mel = [](double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); };
  at::Tensor all_freqs = torch::linspace(0, sample_rate / 2, n_freqs, torch::kFloat);
  at::Tensor m_pts = torch::linspace(hz_to_mel(0.0), hz_to_mel(f_max), n_mels + 2, torch::kFloat);
  at::Tensor f_pts = 700.0 * (torch::pow(10.0, m_pts / 2595.0) - 1.0);
  at::Tensor f_diff = f_pts.slice(0, 1) - f_pts.slice(0, 0, -1);    // (n_mels + 1)
  at::Tensor slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1);  // (n_freqs, n_mels + 2)
  at::Tensor down = (-1.0 * slopes.slice(1, 0, -2)) / f_diff.slice(0, 0, -1);
  at::Tensor up = slopes.slice(1, 2) / f_diff.slice(0, 1);
  return torch::clamp_min(torch::min(down, up), 0.0);
}

// (x - mean) / (std + eps) over every element of each item of x (G, F, T); biased std.
// The statistics are summed in float64: the mean of a constant (silence) is then exactly that
// constant and the features exactly 0, where float32 rounding would leave noise of order 1.
at::Tensor znorm_per_item(const at::Tensor& x, double eps) {
  at::Tensor x64 = x.to(torch::kDouble);
  at::Tensor mean = x64.mean({1, 2}, /*keepdim=*/true);
  at::Tensor std = x64.std({1, 2}, /*unbiased=*/false, /*keepdim=*/true);
  return (x - mean.to(x.scalar_type())) / (std.to(x.scalar_type()) + eps);
}

}  // namespace

at::Tensor normalize_spectra(const at::Tensor& x, double mean, double std, double eps) {
  return (x - static_cast<float>(mean)) / (static_cast<float>(std) + eps);
}

Frontend::Frontend(FrontendOptions options) : options_(options) {
  const auto& o = options_;
  if (o.sample_rate <= 0 || o.n_fft <= 0 || o.hop_length <= 0 || o.n_mels <= 0 ||
      o.win_length <= 0 || o.win_length > o.n_fft || !(o.eps > 0.0)) {
    throw Error("Frontend: invalid options (sample_rate " + std::to_string(o.sample_rate) +
                ", n_fft " + std::to_string(o.n_fft) + ", win_length " +
                std::to_string(o.win_length) + ", hop_length " + std::to_string(o.hop_length) +
                ", n_mels " + std::to_string(o.n_mels) + ", eps " + std::to_string(o.eps) + ")");
  }
  // torch.stft centres a shorter window inside the n_fft frame: left pad (n_fft - win) / 2.
  at::Tensor hann = torch::hann_window(o.win_length, /*periodic=*/true, torch::kFloat);
  const int64_t left = (o.n_fft - o.win_length) / 2;
  window_ = torch::zeros({o.n_fft}, torch::kFloat);
  window_.slice(0, left, left + o.win_length).copy_(hann);
  mel_fb_ = htk_mel_filterbank(o.n_fft / 2 + 1, o.sample_rate / 2.0, o.n_mels, o.sample_rate);
}

Features Frontend::operator()(const at::Tensor& waveform) const {
  if (waveform.dim() != 1) {
    throw Error("Frontend: expected one waveform (S,), got shape " + c10::str(waveform.sizes()));
  }
  at::Tensor lengths = torch::full({1}, waveform.size(0), torch::kLong);
  return (*this)(waveform.unsqueeze(0), lengths);
}

Features Frontend::operator()(const at::Tensor& waveforms, const at::Tensor& lengths) const {
  // Features are float32 even inside a mixed-precision forward (train.precision: bf16).
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const auto& o = options_;
  if (waveforms.dim() != 2) {
    throw Error("Frontend: expected waveforms (B, S), got shape " + c10::str(waveforms.sizes()));
  }
  if (!waveforms.is_floating_point()) {
    throw Error("Frontend: expected floating-point waveforms, got " +
                std::string(c10::toString(waveforms.scalar_type())));
  }
  const int64_t batch = waveforms.size(0);
  const int64_t width = waveforms.size(1);
  if (lengths.dim() != 1 || lengths.size(0) != batch) {
    throw Error("Frontend: expected lengths (" + std::to_string(batch) + ",), got shape " +
                c10::str(lengths.sizes()));
  }
  if (lengths.is_floating_point() || lengths.scalar_type() == torch::kBool) {
    throw Error("Frontend: lengths must be integer sample counts, got " +
                std::string(c10::toString(lengths.scalar_type())));
  }
  const at::Tensor cpu_lengths = lengths.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t* len = cpu_lengths.data_ptr<int64_t>();
  // reflect padding of n_fft / 2 needs more samples than the pad.
  const int64_t min_len = o.n_fft / 2 + 1;
  for (int64_t b = 0; b < batch; ++b) {
    if (len[b] < min_len || len[b] > width) {
      throw Error("Frontend: clip " + std::to_string(b) + " has length " + std::to_string(len[b]) +
                  "; lengths must lie in [" + std::to_string(min_len) + ", " +
                  std::to_string(width) + "] (n_fft / 2 + 1 .. S)");
    }
  }

  const auto device = waveforms.device();
  const auto opts = waveforms.options().dtype(torch::kFloat);
  const int64_t n_freqs = o.n_fft / 2 + 1;
  const int64_t frames = num_frames(width);
  Features out;
  out.log_mel = torch::zeros({batch, o.n_mels, frames}, opts);
  out.log_power = torch::zeros({batch, n_freqs, frames}, opts);
  out.lengths = (torch::div(cpu_lengths, o.hop_length, "floor") + 1).to(lengths.device());
  const at::Tensor window = window_.to(device);
  const at::Tensor mel_fb = mel_fb_.to(device);

  // Each clip's STFT sees only its own samples (reflect padding at its own end), so clips of one
  // length are processed together and the result never depends on the batch.
  std::map<int64_t, std::vector<int64_t>> groups;
  for (int64_t b = 0; b < batch; ++b) groups[len[b]].push_back(b);
  for (const auto& [length, members] : groups) {
    at::Tensor index = torch::tensor(members, torch::kLong).to(device);
    at::Tensor x = waveforms.index_select(0, index).slice(1, 0, length).to(torch::kFloat);
    x = x - x.mean(1, /*keepdim=*/true);
    at::Tensor spec = torch::stft(x, o.n_fft, o.hop_length, o.n_fft, window, /*center=*/true,
                                  "reflect", /*normalized=*/false, /*onesided=*/true,
                                  /*return_complex=*/true);
    at::Tensor power = spec.abs().pow(2);  // (G, n_freqs, T)
    at::Tensor mel =
        torch::matmul(power.transpose(1, 2), mel_fb).transpose(1, 2);  // (G, n_mels, T)
    at::Tensor log_power = znorm_per_item(torch::log(power + o.eps), o.eps);
    at::Tensor log_mel = znorm_per_item(torch::log(mel + o.eps), o.eps);
    const int64_t t = log_mel.size(2);
    out.log_mel.index_put_({index, torch::indexing::Slice(), torch::indexing::Slice(0, t)},
                           log_mel);
    out.log_power.index_put_({index, torch::indexing::Slice(), torch::indexing::Slice(0, t)},
                             log_power);
  }
  return out;
}

}  // namespace hear::audio
