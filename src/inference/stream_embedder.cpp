#include "hear/inference/stream_embedder.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "hear/error.h"

namespace hear::inference {

StreamEmbedder::StreamEmbedder(Embedder& embedder, const audio::ClipStatistics& statistics,
                               TaskSpan task_span)
    : embedder_(embedder),
      statistics_(statistics),
      task_span_(task_span),
      frontend_(embedder.frontend(), statistics.dc_mean) {
  const auto& o = embedder_.model()->acoustic_model->options();
  win_ = o.max_length;
  overlap_ = o.overlap;
  stride_ = win_ - overlap_;
  if (o.sliding_window && 2 * overlap_ > win_) {
    throw Error("StreamEmbedder: acoustic windows of " + std::to_string(win_) +
                " patches overlapping by " + std::to_string(overlap_) +
                " (more than half) are not supported");
  }
  const auto& f = embedder_.frontend().options();
  odd_mel_ = torch::zeros({f.n_mels, 0});
  odd_power_ = torch::zeros({f.n_fft / 2 + 1, 0});
  const int64_t hidden = o.hidden_size;
  patches_ = torch::zeros({0, hidden});
  power_pairs_ = torch::zeros({f.n_fft / 2 + 1, 0});
  window_weights_ = embedder_.model()->acoustic_model->window_weights().unsqueeze(1);
  frame_sum_ = torch::zeros({hidden}, torch::kDouble);
  frame_sq_sum_ = torch::zeros({hidden}, torch::kDouble);
  frame_max_ = torch::full({hidden}, -std::numeric_limits<float>::infinity());
}

void StreamEmbedder::add_patches(const audio::SpectrumFrames& frames) {
  if (frames.frames() == 0) return;
  const double eps = embedder_.frontend().options().eps;
  const auto& s = statistics_;
  at::Tensor mel = torch::cat(
      {odd_mel_, audio::normalize_spectra(frames.log_mel, s.mel_mean, s.mel_std, eps)}, 1);
  at::Tensor power = torch::cat(
      {odd_power_, audio::normalize_spectra(frames.log_power, s.power_mean, s.power_std, eps)}, 1);
  const int64_t paired = mel.size(1) / 2 * 2;
  odd_mel_ = mel.narrow(1, paired, mel.size(1) - paired).clone();
  odd_power_ = power.narrow(1, paired, power.size(1) - paired).clone();
  if (paired == 0) return;
  const auto device = embedder_.device();
  auto embedded = embedder_.model()->acoustic_model->feature_extractor(
      mel.narrow(1, 0, paired).unsqueeze(0).to(device),
      torch::tensor({paired}, torch::kLong).to(device));
  patches_ = torch::cat({patches_, embedded.values[0].cpu()});
  power_pairs_ = torch::cat({power_pairs_, power.narrow(1, 0, paired)}, 1);
  patches_total_ += paired / 2;
}

StreamFrames StreamEmbedder::emit(const at::Tensor& values, int64_t first_patch) {
  StreamFrames out;
  out.values = values.contiguous();
  out.first_patch = first_patch;
  out.timestamps_ms = patch_timestamps_ms(first_patch, values.size(0));
  emitted_ = first_patch + values.size(0);
  const int64_t n = values.size(0);
  if (n == 0) return out;
  auto& model = embedder_.model();
  if (embedder_.has_task_model()) {
    at::Tensor mixture = values;
    if (model->spectrogram_mixture) {
      const auto device = embedder_.device();
      const auto power = power_pairs_.narrow(1, 2 * (first_patch - patches_start_), 2 * n);
      mixture = model
                    ->spectrogram_mixture(values.unsqueeze(0).to(device),
                                          power.unsqueeze(0).to(device))[0]
                    .cpu();
    }
    task_input_ = task_input_.defined() ? torch::cat({task_input_, mixture}) : mixture;
    const int64_t max_length = model->task_model->options().max_length;
    if (task_input_.size(0) > max_length) {
      if (task_span_ == TaskSpan::kWhole) {
        throw Error("stream: " + std::to_string(task_input_.size(0)) +
                    " patches exceed the task model's max_length " + std::to_string(max_length) +
                    " (as offline); use the last-" + std::to_string(max_length) +
                    "-patch span for longer streams");
      }
      task_input_ = task_input_.narrow(0, task_input_.size(0) - max_length, max_length).clone();
    }
  } else {
    const at::Tensor v64 = values.to(torch::kDouble);
    frame_sum_ += v64.sum(0);
    frame_sq_sum_ += v64.pow(2).sum(0);
    frame_max_ = torch::maximum(frame_max_, std::get<0>(values.max(0)));
  }
  return out;
}

StreamFrames StreamEmbedder::encode_ready(bool at_end) {
  auto& acoustic = embedder_.model()->acoustic_model;
  const auto device = embedder_.device();
  const bool sliding = acoustic->options().sliding_window;
  std::vector<at::Tensor> parts;
  int64_t first = emitted_;
  const int64_t total = patches_total_;
  auto encode = [&](const at::Tensor& x, int64_t length) {  // (n, H) -> (n, H)
    return acoustic
        ->contextual_encoder(x.unsqueeze(0).to(device),
                             torch::tensor({length}, torch::kLong).to(device))[0]
        .cpu();
  };
  if (!sliding && total > win_) {
    throw Error("stream: " + std::to_string(total) + " patches exceed the acoustic model's " +
                std::to_string(win_) + " without sliding windows (as offline)");
  }
  if (at_end && next_window_ == 0 && total <= win_) {
    // Offline encodes a clip that fits one window without the cross-fade.
    if (total > 0) parts.push_back(encode(patches_.narrow(0, 0, total), total));
    next_window_ = 1;
  }
  while (sliding) {
    const int64_t start = next_window_ * stride_;
    int64_t length = win_;
    if (!at_end) {
      if (total < start + win_) break;
    } else {
      // Offline uses window i when it starts inside the clip and the previous one stops short.
      const bool used = start < total && (next_window_ == 0 || total > start - stride_ + win_);
      if (!used) break;
      length = std::min(win_, total - start);
    }
    at::Tensor x = patches_.narrow(0, start - patches_start_, length);
    if (length < win_) x = torch::constant_pad_nd(x, {0, 0, 0, win_ - length});
    at::Tensor weighted = encode(x, length) * window_weights_;
    at::Tensor weight = window_weights_.clone();
    if (next_window_ > 0) {
      weighted.narrow(0, 0, overlap_).add_(tail_);
      weight.narrow(0, 0, overlap_).add_(tail_weight_);
    }
    const int64_t final_rows = std::min(stride_, total - start);
    parts.push_back(weighted.narrow(0, 0, final_rows) / weight.narrow(0, 0, final_rows));
    tail_ = weighted.narrow(0, stride_, overlap_).clone();
    tail_weight_ = weight.narrow(0, stride_, overlap_).clone();
    ++next_window_;
    if (final_rows < stride_) break;  // the clip ends inside this window's own span
  }
  if (at_end && tail_.defined()) {
    const int64_t done = first + [&] {
      int64_t n = 0;
      for (const auto& p : parts) n += p.size(0);
      return n;
    }();
    if (done < total) parts.push_back((tail_ / tail_weight_).narrow(0, 0, total - done));
  }
  at::Tensor values =
      parts.empty() ? patches_.narrow(0, 0, 0) : (parts.size() == 1 ? parts[0] : torch::cat(parts));
  StreamFrames out = emit(values, first);
  // Patches before the next window's start are emitted: neither they nor their spectra are
  // needed any more.
  const int64_t drop = std::min(emitted_ - patches_start_, patches_.size(0));
  if (drop > 0) {
    patches_ = patches_.narrow(0, drop, patches_.size(0) - drop).clone();
    power_pairs_ = power_pairs_.narrow(1, 2 * drop, power_pairs_.size(1) - 2 * drop).clone();
    patches_start_ += drop;
  }
  return out;
}

StreamFrames StreamEmbedder::push(const at::Tensor& samples) {
  if (finished_) throw Error("stream: push after finish");
  torch::InferenceMode guard;
  add_patches(frontend_.push(samples));
  return encode_ready(false);
}

StreamSummary StreamEmbedder::finish() {
  if (finished_) throw Error("stream: finish called twice");
  finished_ = true;
  torch::InferenceMode guard;
  if (frontend_.samples_seen() < kMinEmbedSamples) {
    throw Error("stream: " + std::to_string(frontend_.samples_seen()) +
                " samples are too short (at least " + std::to_string(kMinEmbedSamples) +
                " at 16 kHz)");
  }
  add_patches(frontend_.finish());
  StreamSummary summary;
  summary.frames = encode_ready(true);
  summary.patches = patches_total_;
  auto& model = embedder_.model();
  const auto device = embedder_.device();
  if (embedder_.has_task_model()) {
    const int64_t n = task_input_.size(0);
    const auto lengths = torch::tensor({n}, torch::kLong).to(device);
    const auto task = model->task_model(task_input_.unsqueeze(0).to(device), lengths);
    summary.task = task[0].cpu();
    summary.task_timestamps_ms = patch_timestamps_ms(patches_total_ - n, n);
    summary.logits = model->decoder(task, lengths)[0].cpu();
    summary.scene = models::ClassifierHeadImpl::pool(task, lengths)[0].cpu();
  } else {
    // ClassifierHead::pool's [mean, max, unbiased std] from the running sums.
    const double p = static_cast<double>(patches_total_);
    const at::Tensor mean = frame_sum_ / std::max(p, 1.0);
    const at::Tensor squares = (frame_sq_sum_ - p * mean.pow(2)).clamp_min(0.0);
    const at::Tensor std = (squares / std::max(p - 1.0, 1e-5) + 1e-8).sqrt();
    summary.scene = torch::cat({mean.to(torch::kFloat), frame_max_, std.to(torch::kFloat)});
  }
  return summary;
}

}  // namespace hear::inference
