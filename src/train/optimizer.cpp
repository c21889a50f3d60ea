#include "hear/train/optimizer.h"

#include <torch/torch.h>

#include <cmath>

#include "hear/error.h"

namespace hear::train {

void OptimizerOptions::validate(const io::ConfigCheck& check) const {
  // The ranges of every value are the schema's (define); only the count is checked here.
  check.require(betas.size() == 2, "betas",
                "must hold 2 values [beta1, beta2], got " + std::to_string(betas.size()));
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& params,
                                                const OptimizerOptions& options) {
  io::validate_config(options, "optimizer");
  if (params.empty()) throw Error("optimizer: no trainable parameters");
  torch::optim::AdamWOptions o(options.lr);
  o.betas({options.betas[0], options.betas[1]});
  o.eps(options.eps);
  o.weight_decay(options.weight_decay);
  return std::make_unique<torch::optim::AdamW>(params, o);
}

WarmupCosineSchedule::WarmupCosineSchedule(double peak_lr, const ScheduleOptions& options,
                                           int64_t total_steps)
    : peak_(peak_lr), options_(options), total_(total_steps) {
  if (options_.warmup_steps < 0 || total_ < 1) {
    throw Error("schedule: warmup_steps must be >= 0 and total steps >= 1, got " +
                std::to_string(options_.warmup_steps) + " and " + std::to_string(total_));
  }
  if (options_.min_lr < 0 || options_.min_lr > peak_lr) {
    throw Error("schedule.min_lr must be in [0, peak lr " + std::to_string(peak_lr) + "], got " +
                std::to_string(options_.min_lr));
  }
}

double WarmupCosineSchedule::lr(int64_t step) const {
  const int64_t warmup = options_.warmup_steps;
  if (step < 0) step = 0;
  if (step < warmup) return peak_ * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (options_.kind == ScheduleKind::kConstant) return peak_;
  const int64_t span = total_ - warmup;
  if (span <= 0) return options_.min_lr;
  const double p = std::min(1.0, static_cast<double>(step - warmup) / static_cast<double>(span));
  return options_.min_lr + (peak_ - options_.min_lr) * 0.5 * (1.0 + std::cos(M_PI * p));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

double clip_gradients(const std::vector<torch::Tensor>& params, double max_norm) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return 0.0;
  std::vector<torch::Tensor> norms;
  norms.reserve(grads.size());
  for (const auto& g : grads) norms.push_back(g.detach().to(torch::kFloat).norm(2));
  const double total = torch::stack(norms).norm(2).item<double>();
  if (max_norm > 0 && std::isfinite(total) && total > max_norm) {
    const double scale = max_norm / (total + 1e-6);
    torch::NoGradGuard no_grad;
    for (auto& g : grads) g.mul_(scale);
  }
  return total;
}

}  // namespace hear::train
