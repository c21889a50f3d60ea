#pragma once
// The downstream HEAR model (docs/reference-notes.md §0, §7): frontend features -> AcousticModel
// (`acoustic_model.*`) -> SpectrogramGate (`spectrogram_mixture.*`) -> TaskModel
// (`task_model.*`) -> ClassifierHead (`decoder.*`) -> logits. Key names are the reference HEAR
// state_dict's, less the frontend's `preprocessor.*` buffers.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <ostream>

#include "hear/audio/frontend.h"
#include "hear/io/config.h"
#include "hear/models/acoustic_model.h"
#include "hear/models/downstream.h"

namespace hear::models {

struct HearClassifierOptions {
  AcousticModelOptions acoustic_model;
  TaskModelOptions task_model;
  ClassifierHeadOptions decoder;  // input_size follows task_model.hidden_size
  int64_t spectrum_bins = 513;    // log-power bins (n_fft / 2 + 1)
  // false: no spectrogram_mixture at all (and no log-power input needed); then the acoustic
  // width must equal the task width.
  bool use_spectrogram = true;
  // true: acoustic model parameters get requires_grad = false, it runs without autograd and
  // stays in eval mode (no dropout) when the classifier trains.
  bool freeze_acoustic_model = false;

  void validate(const io::ConfigCheck& check) const;  // widths without the spectrogram branch
  void define(io::ConfigSchema& s) {
    s.section("acoustic_model", acoustic_model);
    s.section("task_model", task_model);
    s.section("decoder", decoder);
    s.field("spectrum_bins", spectrum_bins, "log-power bins of the gating input").min(1);
    s.field("use_spectrogram", use_spectrogram, "fuse the gated power spectrum");
    s.field("freeze_acoustic_model", freeze_acoustic_model, "train only the downstream layers");
  }
};

// Every intermediate of one forward; each (B, P, width) with patch lengths (B,).
struct HearOutputs {
  at::Tensor acoustic;  // (B, P, acoustic hidden)
  at::Tensor mixture;   // (B, P, task hidden); == acoustic when use_spectrogram is false
  at::Tensor task;      // (B, P, task hidden)
  at::Tensor logits;    // (B, num_classes)
  at::Tensor lengths;   // (B,) int64 patches
};

class HearClassifierImpl : public torch::nn::Module {
 public:
  explicit HearClassifierImpl(const HearClassifierOptions& options);

  // features.log_mel (B, n_mels, T), features.log_power (B, bins, T) (unused without the
  // spectrum branch), features.lengths (B,) frames -> logits (B, num_classes).
  at::Tensor forward(const audio::Features& features);
  HearOutputs forward_all(const audio::Features& features);

  // Keeps a frozen acoustic model in eval mode.
  void train(bool on = true) override;

  const HearClassifierOptions& options() const { return options_; }
  void pretty_print(std::ostream& stream) const override;

  AcousticModel acoustic_model{nullptr};
  SpectrogramGate spectrogram_mixture{nullptr};  // null when use_spectrogram is false
  TaskModel task_model{nullptr};
  ClassifierHead decoder{nullptr};

 private:
  HearClassifierOptions options_;
};
TORCH_MODULE(HearClassifier);

}  // namespace hear::models
