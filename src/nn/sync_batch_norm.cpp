#include "hear/nn/sync_batch_norm.h"

#include <torch/torch.h>

#include "hear/error.h"
#include "hear/nn/batch_shard.h"

namespace hear::nn {

at::Tensor batch_norm_over_shards(const at::Tensor& x, torch::nn::BatchNorm1dImpl& module) {
  const BatchShard& shard = current_batch_shard();
  if (!module.is_training() || shard.count <= 1 || !shard.sum) return module.forward(x);
  if (x.dim() != 2)
    throw Error("batch_norm_over_shards: expected (B, C), got " + c10::str(x.sizes()));
  const auto& o = module.options;
  const at::Tensor xf = x.to(torch::kFloat);  // normalisation in float32, as under autocast
  const at::Tensor n =
      sum_over_shards(torch::full({1}, static_cast<double>(x.size(0)), xf.options()));
  const at::Tensor mean = sum_over_shards(xf.sum(0)) / n;
  const at::Tensor centred = xf - mean;
  const at::Tensor var = sum_over_shards(centred.pow(2).sum(0)) / n;
  at::Tensor y = centred * torch::rsqrt(var + o.eps());
  if (o.affine()) y = y * module.weight + module.bias;
  if (o.track_running_stats()) {
    torch::NoGradGuard no_grad;
    module.num_batches_tracked.add_(1);
    const double m = o.momentum().has_value()
                         ? *o.momentum()
                         : 1.0 / static_cast<double>(module.num_batches_tracked.item<int64_t>());
    const at::Tensor unbiased = var.detach() * (n / (n - 1.0).clamp_min(1.0));
    module.running_mean.mul_(1.0 - m).add_(mean.detach(), m);
    module.running_var.mul_(1.0 - m).add_(unbiased, m);
  }
  return y.to(x.scalar_type());
}

}  // namespace hear::nn
