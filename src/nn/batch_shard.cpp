#include "hear/nn/batch_shard.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/torch.h>

#include <memory>
#include <utility>

namespace hear::nn {
namespace {

thread_local BatchShard current_shard;

bool sharded(const BatchShard& s) {
  return s.count > 1 && s.sum;
}

at::Tensor summed_copy(const at::Tensor& x, const BatchShard& shard) {
  // Float32 and float64 are summed as they are; reduced precision goes through float32.
  const bool keep = x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble;
  at::Tensor out = (keep ? x.detach() : x.detach().to(torch::kFloat)).contiguous().clone();
  shard.sum(out);
  return keep ? out : out.to(x.scalar_type());
}

// The backward of a sum over shards is the sum over shards of the incoming gradients.
struct SumOverShardsBackward : torch::autograd::Node {
  std::function<void(at::Tensor&)> sum;
  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    if (!grads[0].defined()) return {at::Tensor()};
    BatchShard shard;
    shard.count = 2;
    shard.sum = sum;
    return {summed_copy(grads[0], shard)};
  }
  std::string name() const override { return "hear::nn::SumOverShardsBackward"; }
};

}  // namespace

const BatchShard& current_batch_shard() {
  return current_shard;
}

BatchShardGuard::BatchShardGuard(BatchShard shard) : previous_(std::move(current_shard)) {
  current_shard = std::move(shard);
}

BatchShardGuard::~BatchShardGuard() {
  current_shard = std::move(previous_);
}

at::Tensor sum_over_shards(const at::Tensor& x) {
  const BatchShard& shard = current_shard;
  if (!sharded(shard)) return x;
  at::Tensor out = summed_copy(x, shard);
  if (x.requires_grad() && torch::GradMode::is_enabled()) {
    auto node = std::shared_ptr<SumOverShardsBackward>(new SumOverShardsBackward(),
                                                       torch::autograd::deleteNode);
    node->sum = shard.sum;
    node->set_next_edges(torch::autograd::collect_next_edges(x));
    torch::autograd::set_history(out, node);
  }
  return out;
}

at::Tensor mean_over_shards(const at::Tensor& sum, const at::Tensor& count) {
  const at::Tensor n = sum_over_shards(count.detach().to(sum.scalar_type())).clamp_min(1.0);
  return sum_over_shards(sum) / n;
}

}  // namespace hear::nn
