#pragma once
// The part of a global batch that this process computes in data-parallel training: shard `index`
// of `count` equal shards, rows [index * B, (index + 1) * B) of the global batch. The trainer
// sets it around each forward pass (train/trainer.h); outside a BatchShardGuard the batch is
// whole (index 0 of 1) and everything here is the plain single-process computation.
//
// What reads it, so that N processes with batch B compute what one process does with N * B:
//   - counter-based random tensors (nn/counter_random.h) number the elements of shard k from
//     k * numel, so dropout masks, Gumbel noise and MAM masks are the global batch's (the shards
//     must have equal shapes, e.g. fixed-length crops; otherwise the streams are still
//     independent across shards, with the same distribution);
//   - sum_over_shards / mean_over_shards: losses and batch statistics over the global batch
//     (masked-patch means, codebook usage, SyncBatchNorm in nn/sync_batch_norm.h).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>

namespace hear::nn {

struct BatchShard {
  int64_t index = 0;  // this process's shard
  int64_t count = 1;  // shards in the global batch
  // Sums a contiguous float tensor over the shards, in place. A collective: every shard calls
  // it the same number of times in the same order.
  std::function<void(at::Tensor&)> sum;
};

// The calling thread's shard ({0, 1} outside a guard).
const BatchShard& current_batch_shard();

// Sets the calling thread's shard while alive; restores the previous one.
class BatchShardGuard {
 public:
  explicit BatchShardGuard(BatchShard shard);
  ~BatchShardGuard();
  BatchShardGuard(const BatchShardGuard&) = delete;
  BatchShardGuard& operator=(const BatchShardGuard&) = delete;

 private:
  BatchShard previous_;
};

// x (any shape, floating) summed over the shards; x itself for one shard. Differentiable: the
// gradient reaching each shard's x is the sum over shards of the output's gradients, so a loss
// that every shard computes from these sums gets the global batch's gradient once the trainer
// averages the gradients over the shards.
at::Tensor sum_over_shards(const at::Tensor& x);

// The global batch's mean from this shard's `sum` (differentiable) and `count` (a constant,
// clamped to >= 1): sum_over_shards(sum) / sum_over_shards(count).
at::Tensor mean_over_shards(const at::Tensor& sum, const at::Tensor& count);

}  // namespace hear::nn
