#include "hear/bench/stage_timing.h"
#include "hear/nn/util.h"
#include "hear/util/device.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <vector>

#include "hear/audio/audio_file.h"
#include "hear/audio/frontend.h"
#include "hear/bench/op_counter.h"

namespace hear::bench {

models::HearClassifierOptions options_for_clip(const models::HearClassifierOptions& options,
                                               int64_t samples, std::string* note) {
  auto run_options = options;
  const int64_t patches =
      clip_geometry(samples, audio::FrontendOptions{}, options.acoustic_model).patches;
  if (note) note->clear();
  if (patches > run_options.task_model.max_length) {
    if (note) {
      *note = "task_model.max_length raised from " +
              std::to_string(run_options.task_model.max_length) + " to " + std::to_string(patches) +
              " (the reference model stops at 30 s)";
    }
    run_options.task_model.max_length = patches;
  }
  return run_options;
}

StageTimes time_stages(models::HearClassifier& model, double seconds, int warmup, int runs,
                       uint64_t seed) {
  torch::InferenceMode guard;
  torch::manual_seed(seed);
  const int64_t samples = static_cast<int64_t>(std::llround(seconds * audio::kSampleRate));
  const c10::Device device = nn::module_device(*model);
  const at::Tensor wave = (torch::randn({1, samples}) * 0.1).to(device);
  const at::Tensor lengths = torch::tensor({samples}, torch::kLong).to(device);
  audio::Frontend frontend;
  const bool gate = model->options().use_spectrogram;
  std::map<std::string, std::vector<double>> acc;
  auto clock = [&] {  // on a GPU, a stage ends when its queued work has run
    util::synchronize(device);
    return std::chrono::steady_clock::now();
  };
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  for (int i = 0; i < warmup + runs; ++i) {
    const auto t0 = clock();
    const auto f = frontend(wave, lengths);
    const auto t1 = clock();
    auto acoustic = model->acoustic_model->forward(f.log_mel, f.lengths);
    const auto t2 = clock();
    at::Tensor mixed =
        gate ? model->spectrogram_mixture->forward(acoustic.values, f.log_power) : acoustic.values;
    const auto t3 = clock();
    const at::Tensor task = model->task_model->forward(mixed, acoustic.lengths);
    const auto t4 = clock();
    const at::Tensor logits = model->decoder->forward(task, acoustic.lengths);
    const auto t5 = clock();
    if (i < warmup) continue;
    acc["frontend"].push_back(secs(t0, t1));
    acc["acoustic_model"].push_back(secs(t1, t2));
    if (gate) acc["spectrogram_mixture"].push_back(secs(t2, t3));
    acc["task_model"].push_back(secs(t3, t4));
    acc["decoder"].push_back(secs(t4, t5));
    acc["total"].push_back(secs(t0, t5));
  }
  StageTimes out;
  out.seconds = seconds;
  for (auto& [name, v] : acc) out.stages[name] = summarize(v);
  return out;
}

ExecutedMacCheck check_executed_macs(models::HearClassifier& model, const HearCost& cost,
                                     int64_t samples) {
  torch::InferenceMode guard;
  const c10::Device device = nn::module_device(*model);
  const auto f = audio::Frontend()(torch::zeros({1, samples}, device),
                                   torch::tensor({samples}, torch::kLong).to(device));
  ExecutedMacCheck check;
  {
    ExecutedMacCounter counter;
    model->forward(f);
    check.executed = counter.result().total;
  }
  const auto& acoustic = model->options().acoustic_model;
  const int64_t t = cost.geometry.window_tokens;
  check.analytic = cost.total_macs;
  check.expected_extra = 2 * cost.geometry.windows * acoustic.num_transformer_layers * t * (t - 1) *
                         acoustic.hidden_size;
  check.agrees = check.executed - check.analytic == check.expected_extra;
  return check;
}

}  // namespace hear::bench
