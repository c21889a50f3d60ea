#include "hear/train/loss_scaler.h"

#include <torch/torch.h>

#include <cmath>
#include <string>

#include "hear/error.h"

namespace hear::train {

LossScaler::LossScaler(LossScalerOptions options) : options_(options), scale_(options.init_scale) {
  if (!(options_.init_scale > 0) || !(options_.growth_factor >= 1) ||
      !(options_.backoff_factor > 0 && options_.backoff_factor < 1) ||
      options_.growth_interval < 1) {
    throw Error(
        "loss scaler: need init_scale > 0, growth_factor >= 1, 0 < backoff_factor < 1, "
        "growth_interval >= 1");
  }
}

void LossScaler::restore(double scale, int64_t good_steps) {
  if (!(scale > 0) || !std::isfinite(scale) || good_steps < 0) {
    throw Error("loss scaler: invalid saved state (scale " + std::to_string(scale) + ")");
  }
  scale_ = scale;
  good_steps_ = good_steps;
}

bool LossScaler::unscale_and_update(const std::vector<at::Tensor>& params) {
  torch::NoGradGuard no_grad;
  const double inverse = 1.0 / scale_;
  at::Tensor finite;  // one flag, read once at the end (a single device sync on CUDA)
  for (const auto& p : params) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    g.mul_(inverse);
    const at::Tensor f = torch::isfinite(g).all();
    finite = finite.defined() ? finite.logical_and(f) : f;
  }
  if (finite.defined() && !finite.item<bool>()) {
    scale_ *= options_.backoff_factor;
    good_steps_ = 0;
    return false;
  }
  if (++good_steps_ >= options_.growth_interval) {
    scale_ *= options_.growth_factor;
    good_steps_ = 0;
  }
  return true;
}

}  // namespace hear::train
