// nn/batch_shard.h and nn/sync_batch_norm.h: two shards of a batch (two threads, summing over
// train::DataParallel on the loopback interface) compute what one process computes for the whole
// batch: batch-norm outputs, input gradients and running statistics, global means and their
// gradients, and counter-based random tensors.
#include "hear/nn/batch_shard.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

#include "hear/models/mam.h"
#include "hear/nn/counter_random.h"
#include "hear/nn/sync_batch_norm.h"
#include "hear/train/distributed.h"
#include "test_util.h"

namespace hear::nn {
namespace {

// Runs body(rank, shard) on two ranks (threads) joined on a free loopback port.
void on_two_shards(const std::function<void(int, const BatchShard&)>& body) {
  const int port = test::free_loopback_port();
  auto rank_main = [&](int rank) {
    train::ProcessGroupConfig c;
    c.rank = rank;
    c.world_size = 2;
    c.master_port = port;
    c.timeout = std::chrono::seconds(20);
    train::DataParallel dp(c);
    BatchShard shard{rank, 2, [&dp](at::Tensor& t) { dp.sum_in_place(t); }};
    body(rank, shard);
  };
  std::thread r1(rank_main, 1);
  rank_main(0);
  r1.join();
}

TEST(BatchShard, SyncBatchNormOfTwoShardsIsBatchNormOfTheWholeBatch) {
  torch::manual_seed(0);
  const at::Tensor x = torch::randn({8, 6}) * 3.0 + 1.0, w = torch::randn({8, 6});
  torch::nn::BatchNorm1d whole(6);
  {
    torch::NoGradGuard no_grad;
    whole->weight.uniform_(0.5, 1.5);
    whole->bias.uniform_(-1.0, 1.0);
  }
  const at::Tensor xw = x.clone().requires_grad_(true);
  const at::Tensor yw = whole->forward(xw);
  (yw * w).sum().backward();

  std::vector<at::Tensor> y(2), gx(2), gweight(2), mean(2), var(2);
  on_two_shards([&](int rank, const BatchShard& shard) {
    torch::nn::BatchNorm1d bn(6);
    {
      torch::NoGradGuard no_grad;
      bn->weight.copy_(whole->weight);
      bn->bias.copy_(whole->bias);
    }
    const at::Tensor xs = x.narrow(0, 4 * rank, 4).clone().requires_grad_(true);
    BatchShardGuard guard(shard);
    y[rank] = batch_norm_over_shards(xs, *bn);
    (y[rank] * w.narrow(0, 4 * rank, 4)).sum().backward();
    gx[rank] = xs.grad();
    gweight[rank] = bn->weight.grad();
    mean[rank] = bn->running_mean.clone();
    var[rank] = bn->running_var.clone();
  });
  EXPECT_TRUE(torch::allclose(torch::cat(y), yw.detach(), 1e-5, 1e-5));
  // Each shard's loss is its part of the whole loss: input gradients are the whole batch's
  // slices, parameter gradients its parts (the trainer's all-reduce adds them up).
  EXPECT_TRUE(torch::allclose(torch::cat(gx), xw.grad(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(gweight[0] + gweight[1], whole->weight.grad(), 1e-5, 1e-5));
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(torch::allclose(mean[r], whole->running_mean, 1e-6, 1e-6));
    EXPECT_TRUE(torch::allclose(var[r], whole->running_var, 1e-6, 1e-6));
  }
}

TEST(BatchShard, MeanOverShardsIsTheGlobalMeanWithItsGradient) {
  // A masked mean whose shards hold different counts: 3 and 1 masked patches.
  torch::manual_seed(1);
  const at::Tensor logits = torch::randn({4, 5, 7}), labels = torch::randint(7, {4, 5});
  at::Tensor mask = torch::zeros({4, 5}, torch::kBool);
  mask.index_put_({0, 1}, true);
  mask.index_put_({1, 3}, true);
  mask.index_put_({1, 4}, true);
  mask.index_put_({3, 0}, true);
  const at::Tensor lw = logits.clone().requires_grad_(true);
  const at::Tensor whole = models::mam_loss(lw, labels, mask);
  whole.backward();
  std::vector<at::Tensor> loss(2), grad(2);
  on_two_shards([&](int rank, const BatchShard& shard) {
    const at::Tensor ls = logits.narrow(0, 2 * rank, 2).clone().requires_grad_(true);
    BatchShardGuard guard(shard);
    loss[rank] = models::mam_loss(ls, labels.narrow(0, 2 * rank, 2), mask.narrow(0, 2 * rank, 2));
    loss[rank].backward();
    grad[rank] = ls.grad() / 2.0;  // the trainer's average over the ranks
  });
  for (int r = 0; r < 2; ++r) EXPECT_NEAR(loss[r].item<double>(), whole.item<double>(), 1e-6);
  EXPECT_TRUE(torch::allclose(torch::cat(grad), lw.grad(), 1e-6, 1e-7));
  // Outside a guard nothing is summed.
  const at::Tensor t = torch::ones({3});
  EXPECT_TRUE(sum_over_shards(t).is_same(t));
}

TEST(BatchShard, CounterRandomTensorsOfTheShardsAreTheWholeBatchs) {
  const at::Tensor like = torch::ones({6, 50, 8});
  const uint64_t seed = 99;
  const at::Tensor mask = dropout_mask(like, 0.3, seed), gumbel = gumbel_noise(like, seed),
                   normal = normal_noise(like, seed);
  for (int rank = 0; rank < 3; ++rank) {
    BatchShardGuard guard(BatchShard{rank, 3, [](at::Tensor&) {}});
    const at::Tensor part = like.narrow(0, 2 * rank, 2);
    EXPECT_TRUE(torch::equal(dropout_mask(part, 0.3, seed), mask.narrow(0, 2 * rank, 2)));
    EXPECT_TRUE(torch::equal(gumbel_noise(part, seed), gumbel.narrow(0, 2 * rank, 2)));
    EXPECT_TRUE(torch::equal(normal_noise(part, seed), normal.narrow(0, 2 * rank, 2)));
  }
  EXPECT_EQ(current_batch_shard().count, 1);
  EXPECT_NEAR(normal.mean().item<double>(), 0.0, 0.03);
  EXPECT_NEAR(normal.std().item<double>(), 1.0, 0.03);
}

}  // namespace
}  // namespace hear::nn
