#pragma once
// Dynamic loss scaling for fp16 training (train.precision: fp16 on CUDA), the rule of
// torch.cuda.amp.GradScaler: the loss is multiplied by scale() before backward, so small
// gradients survive float16; after the gradient sync the gradients are divided by it. A step
// whose gradients hold Inf/NaN is skipped and the scale multiplied by backoff_factor; after
// growth_interval clean steps in a row it is multiplied by growth_factor. Device-independent
// (tested on the CPU with float32 gradients).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace hear::train {

struct LossScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class LossScaler {
 public:
  explicit LossScaler(LossScalerOptions options = {});

  double scale() const { return scale_; }
  int64_t good_steps() const { return good_steps_; }
  // Restores a checkpoint's values.
  void restore(double scale, int64_t good_steps);

  // Divides every parameter's gradient by scale() in place and updates the scale. Returns false
  // when a gradient is non-finite: the step must be skipped (the gradients are then garbage).
  bool unscale_and_update(const std::vector<at::Tensor>& params);

 private:
  LossScalerOptions options_;
  double scale_;
  int64_t good_steps_ = 0;
};

}  // namespace hear::train
