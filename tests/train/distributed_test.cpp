// train::DataParallel over c10d on the loopback interface, two ranks as two threads of this
// process: gradients are averaged, parameters broadcast from rank 0, sums reduce, the
// environment is read like torchrun's, and a dead peer is an error, not a hang.
#include "hear/train/distributed.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <thread>

#include "hear/error.h"
#include "test_util.h"

namespace hear::train {
namespace {

ProcessGroupConfig config(int rank, int port) {
  ProcessGroupConfig c;
  c.rank = rank;
  c.world_size = 2;
  c.master_port = port;
  c.timeout = std::chrono::seconds(20);
  return c;
}

TEST(DataParallel, AveragesGradientsBroadcastsAndSums) {
  const int port = test::free_loopback_port();
  std::vector<std::vector<at::Tensor>> grads(2), params(2);
  std::vector<std::vector<double>> sums(2);
  std::vector<int64_t> bytes(2);
  auto rank_main = [&](int rank) {
    DataParallel dp(config(rank, port));
    EXPECT_EQ(dp.world_size(), 2);
    EXPECT_EQ(dp.is_main(), rank == 0);
    // Three parameters in buckets of 40 bytes (several buckets); rank 1 has no gradient for
    // the last one (it counts as zeros).
    std::vector<at::Tensor> p = {torch::full({3}, 1.0 + rank), torch::full({2, 4}, 10.0 * rank),
                                 torch::full({5}, -1.0 - rank)};
    for (auto& t : p) t.set_requires_grad(true);
    p[0].mutable_grad() = torch::full({3}, 2.0 * (rank + 1));          // 2, 4 -> mean 3
    p[1].mutable_grad() = torch::full({2, 4}, rank == 0 ? 1.0 : 3.0);  // -> 2
    if (rank == 0) p[2].mutable_grad() = torch::full({5}, 8.0);        // 8, (0) -> 4
    bytes[rank] = dp.average_gradients(p, 40);
    for (auto& t : p) grads[rank].push_back(t.grad().clone());
    dp.broadcast(p, 16);
    params[rank] = p;
    sums[rank] = dp.sum({1.0 + rank, 0.5});
    dp.barrier();
  };
  std::thread r1(rank_main, 1);
  rank_main(0);
  r1.join();
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_TRUE(torch::equal(grads[rank][0], torch::full({3}, 3.0)));
    EXPECT_TRUE(torch::equal(grads[rank][1], torch::full({2, 4}, 2.0)));
    EXPECT_TRUE(torch::equal(grads[rank][2], torch::full({5}, 4.0)));
    EXPECT_TRUE(torch::equal(params[rank][0], torch::full({3}, 1.0)));  // rank 0's values
    EXPECT_TRUE(torch::equal(params[rank][1], torch::zeros({2, 4})));
    EXPECT_TRUE(torch::equal(params[rank][2], torch::full({5}, -1.0)));
    EXPECT_EQ(sums[rank], (std::vector<double>{3.0, 1.0}));
    EXPECT_EQ(bytes[rank], (3 + 8 + 5) * 4);
  }
}

TEST(DataParallel, ADeadPeerIsAnErrorNotAHang) {
  const int port = test::free_loopback_port();
  std::string error;
  auto t0 = std::chrono::steady_clock::now();
  std::thread r1([&] {
    DataParallel dp(config(1, port));
    dp.barrier();
    // Leaves without the all-reduce rank 0 waits for: its connections close.
  });
  {
    DataParallel dp(config(0, port));
    dp.barrier();
    r1.join();
    std::vector<at::Tensor> p = {torch::ones({4}, torch::requires_grad())};
    p[0].mutable_grad() = torch::ones({4});
    try {
      dp.average_gradients(p);
    } catch (const Error& e) {
      error = e.what();
    }
  }
  EXPECT_NE(error.find("data parallel gradient all-reduce failed"), std::string::npos) << error;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(25));
}

TEST(DataParallel, ReadsTorchrunsEnvironment) {
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("RANK", "3", 1);
  ::setenv("LOCAL_RANK", "1", 1);
  ::setenv("MASTER_ADDR", "node0", 1);
  ::setenv("MASTER_PORT", "29511", 1);
  const ProcessGroupConfig c = process_group_config_from_environment();
  EXPECT_EQ(c.world_size, 4);
  EXPECT_EQ(c.rank, 3);
  EXPECT_EQ(c.local_rank, 1);
  EXPECT_EQ(c.master_addr, "node0");
  EXPECT_EQ(c.master_port, 29511);
  ::setenv("RANK", "4", 1);
  EXPECT_THROW(process_group_config_from_environment(), Error);
  ::setenv("RANK", "x", 1);
  try {
    process_group_config_from_environment();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("RANK"), std::string::npos) << e.what();
  }
  for (const char* v : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) {
    ::unsetenv(v);
  }
  EXPECT_EQ(process_group_config_from_environment().world_size, 1);
  DataParallel single(process_group_config_from_environment());  // no communication
  std::vector<at::Tensor> p = {torch::ones({2}, torch::requires_grad())};
  EXPECT_EQ(single.average_gradients(p), 0);
  EXPECT_EQ(single.sum({2.5}), (std::vector<double>{2.5}));
}

}  // namespace
}  // namespace hear::train
