#include "hear/bench/train_bench.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "hear/audio/audio_file.h"
#include "hear/audio/frontend.h"
#include "hear/bench/op_counter.h"
#include "hear/bench/op_profile.h"
#include "hear/bench/timing.h"
#include "hear/error.h"
#include "hear/io/config.h"
#include "hear/nn/onednn_matmul.h"
#include "hear/util/caching_cpu_allocator.h"
#include "hear/util/device.h"

namespace hear::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

constexpr const char* kPhases[] = {"data", "frontend", "forward", "backward", "optimizer"};

// One stage's step, as closures over its model: the stage's extra inputs of a batch (data
// phase), forward + loss from features and those inputs, and the parameters AdamW trains.
struct StageStep {
  std::function<at::Tensor(int64_t batch, int64_t samples)> inputs = [](int64_t, int64_t) {
    return at::Tensor();
  };
  std::function<at::Tensor(const audio::Features&, const at::Tensor& inputs)> loss;
  std::vector<at::Tensor> params;
  std::string model_summary;
};

StageStep make_stage(const TrainBenchOptions& o, std::shared_ptr<torch::nn::Module>& keep) {
  StageStep s;
  switch (o.stage) {
    case TrainStage::kTokenizer: {
      io::validate_config(o.tokenizer);
      auto model = models::TokenizerTrainingModel(o.tokenizer);
      keep = model.ptr();
      const int64_t width = o.tokenizer.decoder.knowledge_hidden_size;
      // Teacher features as a cache gives them: (B, P, K), no teacher compute in the step.
      s.inputs = [width](int64_t batch, int64_t samples) {
        return torch::randn({batch, audio::patch_count(samples), width});
      };
      s.loss = [model](const audio::Features& f, const at::Tensor& teacher) mutable {
        return model->forward(f.log_mel, f.lengths, teacher).losses.total;
      };
      s.model_summary = "tokenizer " + std::to_string(o.tokenizer.tokenizer.hidden_size) +
                        " wide, " + std::to_string(o.tokenizer.tokenizer.num_codebooks) + " codes";
      break;
    }
    case TrainStage::kPretrain: {
      io::validate_config(o.mam);
      auto model = models::MamModel(o.mam);
      keep = model.ptr();
      for (auto& p : model->tokenizer->parameters()) p.set_requires_grad(false);
      s.loss = [model](const audio::Features& f, const at::Tensor&) mutable {
        return model->forward(f.log_mel, f.lengths).loss;
      };
      s.model_summary =
          "MAM encoder " + std::to_string(o.mam.encoder.hidden_size) + " wide, frozen tokenizer";
      break;
    }
    case TrainStage::kFinetune: {
      auto options = o.classifier;
      options.decoder.num_classes = o.classes;
      io::validate_config(options);
      auto model = models::HearClassifier(options);
      keep = model.ptr();
      const int64_t classes = o.classes;
      s.inputs = [classes](int64_t batch, int64_t) {
        return torch::randint(classes, {batch}, torch::kLong);
      };
      s.loss = [model](const audio::Features& f, const at::Tensor& labels) mutable {
        return torch::nn::functional::cross_entropy(model->forward(f), labels);
      };
      s.model_summary = "HEAR classifier, " + std::to_string(classes) + " classes";
      break;
    }
  }
  for (auto& p : keep->parameters()) {
    if (p.requires_grad()) s.params.push_back(p);
  }
  return s;
}

}  // namespace

double measure_gemm_gflops(int64_t n, const c10::Device& device) {
  torch::NoGradGuard no_grad;
  const at::Tensor a = torch::randn({n, n}, device), b = torch::randn({n, n}, device);
  // The functional form: the kernel the training steps use (nn/onednn_matmul.h when installed).
  at::Tensor c = torch::mm(a, b);  // warm-up
  util::synchronize(device);
  // The fastest of several runs: the rate this machine reaches, not one disturbed by other load.
  double best = 1e30;
  for (int i = 0; i < 8; ++i) {
    const auto t0 = Clock::now();
    c = torch::mm(a, b);
    util::synchronize(device);
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * static_cast<double>(n) * n * n / best / 1e9;
}

BenchReport run_train_bench(const TrainBenchOptions& o) {
  if (o.batch < 1 || !(o.seconds > 0) || o.steps < 1 || o.warmup < 0) {
    throw Error("--train needs --batch >= 1, --seconds > 0, --steps >= 1 and --warmup >= 0");
  }
  train::check_precision(o.precision, o.device, "--precision");
  torch::manual_seed(0);
  std::shared_ptr<torch::nn::Module> model;
  StageStep stage = make_stage(o, model);
  model->to(o.device);  // in place: stage.params stay the model's parameters
  model->train();
  const c10::Device device = o.device;
  // Phase times on a GPU count its queued work: wait for it at each phase boundary.
  auto since = [&](Clock::time_point t0) {
    util::synchronize(device);
    return seconds_since(t0);
  };
  auto optimizer = train::make_adamw(stage.params, o.optimizer);
  const audio::Frontend frontend;
  const int64_t samples = static_cast<int64_t>(std::llround(o.seconds * audio::kSampleRate));

  std::map<std::string, std::vector<double>> phase;
  std::vector<double> total;
  auto step = [&](bool timed) {
    std::map<std::string, double> t;
    auto t0 = Clock::now();
    const at::Tensor waves = (torch::randn({o.batch, samples}) * 0.1).to(device);
    const at::Tensor lengths = torch::full({o.batch}, samples, torch::kLong).to(device);
    at::Tensor inputs = stage.inputs(o.batch, samples);  // undefined when the stage needs none
    if (inputs.defined()) inputs = inputs.to(device);
    t["data"] = since(t0);
    t0 = Clock::now();
    const auto features = frontend(waves, lengths);
    t["frontend"] = since(t0);
    t0 = Clock::now();
    at::Tensor loss;
    {
      train::AutocastGuard autocast(o.precision, device.type());
      loss = stage.loss(features, inputs);
    }
    loss.item<double>();  // the forward is complete
    t["forward"] = since(t0);
    t0 = Clock::now();
    loss.backward();
    t["backward"] = since(t0);
    t0 = Clock::now();
    train::clip_gradients(stage.params, o.optimizer.grad_clip);
    optimizer->step();
    optimizer->zero_grad();
    t["optimizer"] = since(t0);
    if (!timed) return;
    double sum = 0;
    for (const auto& [name, s] : t) {
      phase[name].push_back(s);
      sum += s;
    }
    total.push_back(sum);
  };
  for (int i = 0; i < o.warmup; ++i) step(false);
  for (int i = 0; i < o.steps; ++i) step(true);
  int64_t executed = 0;
  {
    ExecutedMacCounter counter;  // one more (untimed) step: products of forward and backward
    step(false);
    executed = counter.result().total;
  }
  std::optional<OpProfile> profile;
  if (o.profile_top > 0) profile = profile_ops([&] { step(false); }, o.profile_shapes);
  double gemm = measure_gemm_gflops(1024, device);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const double gemm_one = measure_gemm_gflops(1024, device);
  at::set_num_threads(threads);
  gemm = std::max(gemm, measure_gemm_gflops(1024, device));  // the better of two: less disturbed

  const TimingStats steps = summarize(total);
  const double achieved = 2.0 * static_cast<double>(executed) / steps.median / 1e9;
  const std::string allocator = util::caching_cpu_allocator_installed() ? "caching" : "system";
  const std::string matmul = nn::onednn_matmul_installed() ? "onednn" : "blas";
  nlohmann::json phases = nlohmann::json::object();
  for (const char* name : kPhases) {
    const TimingStats s = summarize(phase.at(name));
    phases[name] = {{"median_s", s.median}, {"p90_s", s.p90}};
  }
  nlohmann::json j = {{"stage", io::to_string(o.stage)},
                      {"device", device.str()},
                      {"model", stage.model_summary},
                      {"batch", o.batch},
                      {"seconds", o.seconds},
                      {"threads", at::get_num_threads()},
                      {"cpu_allocator", allocator},
                      {"matmul", matmul},
                      {"precision", io::to_string(o.precision)},
                      {"steps", o.steps},
                      {"warmup", o.warmup},
                      {"median_step_s", steps.median},
                      {"p90_step_s", steps.p90},
                      {"clips_per_s", static_cast<double>(o.batch) / steps.median},
                      {"phases", phases},
                      {"executed_macs_per_step", executed},
                      {"achieved_gflops", achieved},
                      {"gemm_gflops", gemm},
                      {"gemm_fraction", achieved / gemm},
                      {"gemm_gflops_1_thread", gemm_one},
                      {"of_1_thread_gemm", achieved / gemm_one}};
  if (profile) {
    nlohmann::json ops = nlohmann::json::array();
    for (size_t i = 0; i < profile->ops.size() && i < static_cast<size_t>(o.profile_top); ++i) {
      const OpTime& op = profile->ops[i];
      ops.push_back(
          {{"name", op.name}, {"calls", op.calls}, {"self_s", op.self_s}, {"total_s", op.total_s}});
    }
    j["profile"] = {{"wall_s", profile->wall_s}, {"ops", ops}};
  }
  std::string text;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "train %s: %s, batch %lld x %.3g s, %d threads, %s, %s CPU allocator, %s matmul, "
                "median of %d steps after %d\n",
                io::to_string(o.stage).c_str(), stage.model_summary.c_str(),
                static_cast<long long>(o.batch), o.seconds, at::get_num_threads(),
                io::to_string(o.precision).c_str(), allocator.c_str(), matmul.c_str(), o.steps,
                o.warmup);
  text += buf;
  std::snprintf(buf, sizeof buf, "  %-10s %10s %10s\n", "phase", "median s", "p90 s");
  text += buf;
  for (const char* name : kPhases) {
    std::snprintf(buf, sizeof buf, "  %-10s %10.4f %10.4f\n", name,
                  phases[name]["median_s"].get<double>(), phases[name]["p90_s"].get<double>());
    text += buf;
  }
  std::snprintf(buf, sizeof buf, "  %-10s %10.4f %10.4f   %.2f clips/s\n", "step", steps.median,
                steps.p90, static_cast<double>(o.batch) / steps.median);
  text += buf;
  std::snprintf(
      buf, sizeof buf,
      "  executed %.2f G MACs per step (forward + backward products) -> %.1f GFLOP/s, "
      "%.0f%% of this machine's GEMM rate (%.1f GFLOP/s, 1024^3 float32), %.2fx its 1-thread "
      "rate (%.1f GFLOP/s)\n",
      executed / 1e9, achieved, 100.0 * achieved / gemm, gemm, achieved / gemm_one, gemm_one);
  text += buf;
  if (profile) text += "  one more step, profiled:\n" + format_op_profile(*profile, o.profile_top);
  return {nlohmann::json{{"train", j}}.dump(2), text};
}

}  // namespace hear::bench
