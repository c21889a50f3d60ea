#pragma once
// AdamW from config, the warm-up + cosine learning-rate schedule, gradient clipping and gradient
// accumulation.
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hear/io/config.h"

namespace torch::optim {
class AdamW;
class Optimizer;
}  // namespace torch::optim

namespace hear::train {

struct OptimizerOptions {
  double lr = 5e-4;  // peak learning rate (the paper's MAM value)
  std::vector<double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0.01;
  double grad_clip = 0.0;          // max global L2 norm of the gradients; 0: no clipping
  int64_t accumulation_steps = 1;  // batches per optimizer step

  void define(io::ConfigSchema& s) {
    s.field("lr", lr, "peak learning rate").min(0.0);
    s.field("betas", betas, "AdamW betas [beta1, beta2]").range(0.0, 0.999999);
    s.field("eps", eps, "AdamW epsilon").min(0.0);
    s.field("weight_decay", weight_decay, "AdamW decoupled weight decay").min(0.0);
    s.field("grad_clip", grad_clip, "max gradient L2 norm (0: off)").min(0.0);
    s.field("accumulation_steps", accumulation_steps, "batches per optimizer step").min(1);
  }
  void validate(const io::ConfigCheck& check) const;  // betas: 2 values
};

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& params,
                                                const OptimizerOptions& options);

enum class ScheduleKind { kCosine, kConstant };
constexpr std::array<std::pair<ScheduleKind, const char*>, 2> enum_names(ScheduleKind) {
  return {{{ScheduleKind::kCosine, "cosine"}, {ScheduleKind::kConstant, "constant"}}};
}

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::kCosine;  // cosine | constant
  int64_t warmup_steps = 10000;
  double min_lr = 0.0;  // the cosine ends here at the last step and stays there

  void define(io::ConfigSchema& s) {
    s.field("kind", kind, "cosine (warm-up then cosine decay) | constant (warm-up then peak)");
    s.field("warmup_steps", warmup_steps, "linear warm-up steps").min(0);
    s.field("min_lr", min_lr, "final learning rate of the cosine").min(0.0);
  }
};

// lr(step) for the optimizer step with 0-based index `step`, over a run of `total` steps:
//   step < warmup:  peak * (step + 1) / warmup       (linear; the first step is not wasted at 0)
//   otherwise:      min + (peak - min) * (1 + cos(pi * p)) / 2,  p = (step - warmup) / (total -
//   warmup),
//                   clamped to [0, 1], so lr(warmup) = peak and lr(step >= total) = min.
// "constant": the same warm-up, then peak.
class WarmupCosineSchedule {
 public:
  WarmupCosineSchedule(double peak_lr, const ScheduleOptions& options, int64_t total_steps);
  double lr(int64_t step) const;
  double peak() const { return peak_; }

 private:
  double peak_;
  ScheduleOptions options_;
  int64_t total_;
};

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// Scales gradients in place so that their global L2 norm is at most max_norm; returns the norm
// before clipping (+inf/nan when a gradient is not finite). max_norm <= 0: only measures.
double clip_gradients(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace hear::train
