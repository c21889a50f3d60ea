#include "hear/models/hear_classifier.h"

#include <torch/torch.h>

#include "hear/error.h"

namespace hear::models {

void HearClassifierOptions::validate(const io::ConfigCheck& check) const {
  if (!use_spectrogram && acoustic_model.hidden_size != task_model.hidden_size) {
    check.fail("use_spectrogram",
               "HEAR classifier: without the spectrogram branch the acoustic hidden_size (" +
                   std::to_string(acoustic_model.hidden_size) + ") must equal the task model's (" +
                   std::to_string(task_model.hidden_size) + ")");
  }
}

HearClassifierImpl::HearClassifierImpl(const HearClassifierOptions& options) : options_(options) {
  io::validate_config(options_);
  options_.decoder.input_size = options_.task_model.hidden_size;
  acoustic_model = register_module("acoustic_model", AcousticModel(options_.acoustic_model));
  if (options_.use_spectrogram) {
    spectrogram_mixture = register_module(
        "spectrogram_mixture", SpectrogramGate(SpectrogramGateOptions{
                                   options_.acoustic_model.hidden_size, options_.spectrum_bins,
                                   options_.task_model.hidden_size}));
  }
  task_model = register_module("task_model", TaskModel(options_.task_model));
  decoder = register_module("decoder", ClassifierHead(options_.decoder));
  if (options_.freeze_acoustic_model) {
    for (auto& p : acoustic_model->parameters()) p.set_requires_grad(false);
    acoustic_model->eval();
  }
}

void HearClassifierImpl::train(bool on) {
  torch::nn::Module::train(on);
  if (options_.freeze_acoustic_model) acoustic_model->eval();
}

HearOutputs HearClassifierImpl::forward_all(const audio::Features& features) {
  HearOutputs out;
  {
    // A frozen acoustic model needs no graph.
    c10::optional<torch::NoGradGuard> no_grad;
    if (options_.freeze_acoustic_model) no_grad.emplace();
    auto encoded = acoustic_model(features.log_mel, features.lengths);
    out.acoustic = encoded.values;
    out.lengths = encoded.lengths;
  }
  out.mixture =
      spectrogram_mixture ? spectrogram_mixture(out.acoustic, features.log_power) : out.acoustic;
  out.task = task_model(out.mixture, out.lengths);
  out.logits = decoder(out.task, out.lengths);
  return out;
}

at::Tensor HearClassifierImpl::forward(const audio::Features& features) {
  return forward_all(features).logits;
}

void HearClassifierImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::models::HearClassifier(classes=" << options_.decoder.num_classes
         << (options_.use_spectrogram ? "" : ", no spectrogram branch")
         << (options_.freeze_acoustic_model ? ", frozen acoustic model" : "")
         << ", params=" << nn::format_count(nn::count_parameters(*this))
         << ", trainable=" << nn::format_count(nn::count_parameters(*this, true)) << ")";
}

}  // namespace hear::models
