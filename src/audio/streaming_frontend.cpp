#include "hear/audio/streaming_frontend.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "hear/error.h"

namespace hear::audio {

StreamingFrontend::StreamingFrontend(const Frontend& frontend, double dc_mean)
    : frontend_(frontend), dc_mean_(static_cast<float>(dc_mean)) {
  buffer_ = torch::zeros({0}, torch::kFloat);
}

SpectrumFrames StreamingFrontend::frames_of(const at::Tensor& span, int64_t count) const {
  const auto& o = frontend_.options();
  SpectrumFrames out;
  if (count <= 0) {
    out.log_power = torch::zeros({o.n_fft / 2 + 1, 0});
    out.log_mel = torch::zeros({o.n_mels, 0});
    return out;
  }
  const at::Tensor x = span.narrow(0, 0, (count - 1) * o.hop_length + o.n_fft);
  const at::Tensor spec = torch::stft(x, o.n_fft, o.hop_length, o.n_fft, frontend_.window(),
                                      /*center=*/false, "reflect", /*normalized=*/false,
                                      /*onesided=*/true, /*return_complex=*/true);
  const at::Tensor power = spec.abs().pow(2);  // (bins, count)
  const at::Tensor mel = torch::matmul(power.t(), frontend_.mel_filterbank()).t();
  out.log_power = torch::log(power + o.eps);
  out.log_mel = torch::log(mel + o.eps);
  return out;
}

SpectrumFrames StreamingFrontend::push(const at::Tensor& samples) {
  if (finished_) throw Error("StreamingFrontend: push after finish");
  if (samples.dim() != 1 || !samples.is_floating_point()) {
    throw Error("StreamingFrontend: expected float samples (S,), got " + c10::str(samples.sizes()) +
                " " + std::string(c10::toString(samples.scalar_type())));
  }
  const auto& o = frontend_.options();
  const int64_t pad = o.n_fft / 2;
  samples_seen_ += samples.size(0);
  buffer_ = torch::cat({buffer_, samples.to(torch::kCPU, torch::kFloat) - dc_mean_});
  if (!started_) {
    // torch.stft's reflect padding of the start needs pad + 1 samples.
    if (buffer_.size(0) < pad + 1) return frames_of(buffer_, 0);
    buffer_ = torch::cat({buffer_.narrow(0, 1, pad).flip({0}), buffer_});
    started_ = true;
  }
  // Frame t covers padded samples [t * hop, t * hop + n_fft).
  const int64_t end = buffer_start_ + buffer_.size(0);
  const int64_t last = end >= o.n_fft ? (end - o.n_fft) / o.hop_length : -1;
  const int64_t count = last - next_frame_ + 1;
  auto out = frames_of(buffer_.narrow(0, next_frame_ * o.hop_length - buffer_start_,
                                      end - next_frame_ * o.hop_length),
                       count);
  if (count > 0) {
    next_frame_ += count;
    // Keep the next frame's samples, and at least the last pad + 1 real samples (padded index
    // S - 1 on) for the end's reflect padding.
    const int64_t keep_from = std::min(next_frame_ * o.hop_length, samples_seen_ - 1);
    buffer_ = buffer_.narrow(0, keep_from - buffer_start_, end - keep_from).clone();
    buffer_start_ = keep_from;
  }
  return out;
}

SpectrumFrames StreamingFrontend::finish() {
  if (finished_) throw Error("StreamingFrontend: finish called twice");
  const auto& o = frontend_.options();
  const int64_t pad = o.n_fft / 2;
  if (!started_ || samples_seen_ < pad + 1) {
    throw Error("StreamingFrontend: the stream held " + std::to_string(samples_seen_) +
                " samples; the frontend needs at least " + std::to_string(pad + 1) +
                " (n_fft / 2 + 1)");
  }
  finished_ = true;
  // Reflect padding of the end: the pad samples before the last one, reversed. They lie in the
  // buffer: it keeps everything from the next frame's start, which is within n_fft of the end.
  const int64_t size = buffer_.size(0);
  buffer_ = torch::cat({buffer_, buffer_.narrow(0, size - 1 - pad, pad).flip({0})});
  const int64_t total = frame_count(samples_seen_, o);
  const int64_t count = total - next_frame_;
  auto out =
      frames_of(buffer_.narrow(0, next_frame_ * o.hop_length - buffer_start_,
                               buffer_.size(0) - (next_frame_ * o.hop_length - buffer_start_)),
                count);
  next_frame_ = total;
  buffer_ = torch::zeros({0}, torch::kFloat);
  return out;
}

void ClipStatisticsAccumulator::add_samples(const at::Tensor& samples) {
  sample_sum_ += samples.to(torch::kDouble).sum().item<double>();
  sample_count_ += samples.numel();
}

double ClipStatisticsAccumulator::dc_mean() const {
  if (sample_count_ == 0) throw Error("ClipStatisticsAccumulator: no samples added");
  return sample_sum_ / static_cast<double>(sample_count_);
}

void ClipStatisticsAccumulator::Moments::add(const at::Tensor& x) {
  if (x.numel() == 0) return;
  const at::Tensor x64 = x.to(torch::kDouble);
  const double n = static_cast<double>(x.numel());
  const double m = x64.mean().item<double>();
  const double block_m2 = (x64 - m).pow(2).sum().item<double>();
  const double total = count + n, delta = m - mean;
  mean += delta * n / total;
  m2 += block_m2 + delta * delta * count * n / total;
  count = total;
}

void ClipStatisticsAccumulator::add_frames(const SpectrumFrames& frames) {
  if (frames.frames() == 0) return;
  power_.add(frames.log_power);
  mel_.add(frames.log_mel);
}

ClipStatistics ClipStatisticsAccumulator::statistics() const {
  if (mel_.count == 0.0) throw Error("ClipStatisticsAccumulator: no frames added");
  ClipStatistics s;
  s.dc_mean = dc_mean();
  s.power_mean = power_.mean;
  s.power_std = std::sqrt(power_.m2 / power_.count);
  s.mel_mean = mel_.mean;
  s.mel_std = std::sqrt(mel_.m2 / mel_.count);
  return s;
}

ClipStatistics clip_statistics(const Frontend& frontend, const at::Tensor& waveform) {
  if (waveform.dim() != 1) {
    throw Error("clip_statistics: expected one waveform (S,), got " + c10::str(waveform.sizes()));
  }
  // The offline frontend's own float32 mean: the DC bin of a clip with a large offset is
  // sensitive to the last bits of it (a stream's float64 running mean differs there only).
  const double dc = waveform.to(torch::kFloat).mean().item<double>();
  ClipStatisticsAccumulator acc;
  acc.add_samples(waveform);
  StreamingFrontend stream(frontend, dc);
  acc.add_frames(stream.push(waveform));
  acc.add_frames(stream.finish());
  ClipStatistics s = acc.statistics();
  s.dc_mean = dc;
  return s;
}

}  // namespace hear::audio
