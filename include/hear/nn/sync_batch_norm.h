#pragma once
// Batch normalisation over the global batch of a data-parallel run (nn/batch_shard.h): in
// training with more than one shard, the batch mean and variance are the global batch's (two
// differentiable sums over the shards per call), and the running statistics are updated with
// them, so N processes with batch B train like one process with N * B. Otherwise it is
// module.forward(x) itself.
#include <ATen/core/Tensor.h>

namespace torch::nn {
class BatchNorm1dImpl;
}

namespace hear::nn {

// x (B, C) -> (B, C) with module's affine parameters, eps and momentum.
at::Tensor batch_norm_over_shards(const at::Tensor& x, torch::nn::BatchNorm1dImpl& module);

}  // namespace hear::nn
