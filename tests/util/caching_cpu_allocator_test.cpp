// util::install_caching_cpu_allocator: freed blocks come back for the next tensor of the same
// rounded size, values stay intact, and the cache respects its limit.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hear/util/caching_cpu_allocator.h"

namespace hear::util {
namespace {

TEST(CachingCpuAllocator, ReusesFreedBlocksWithinItsLimit) {
  install_caching_cpu_allocator(size_t{64} << 20);
  ASSERT_TRUE(caching_cpu_allocator_installed());
  release_cached_cpu_memory();
  const CpuAllocatorStats before = caching_cpu_allocator_stats();
  void* first = nullptr;
  {
    at::Tensor a = torch::full({1000, 1000}, 2.0f);  // 4 MB: cached size
    first = a.data_ptr();
  }
  EXPECT_GE(caching_cpu_allocator_stats().cached_bytes, 4000000);
  {
    at::Tensor b = torch::empty({999, 1001});  // rounds to the same size: the same block
    EXPECT_EQ(b.data_ptr(), first);
    b.fill_(3.0f);
    EXPECT_EQ(b.sum().item<double>(), 3.0 * 999 * 1001);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data_ptr()) % 64, 0u);
  }
  const CpuAllocatorStats after = caching_cpu_allocator_stats();
  EXPECT_GE(after.reused - before.reused, 1);
  {
    // Blocks beyond the 64 MB limit go back to the system when freed.
    std::vector<at::Tensor> many;
    for (int i = 0; i < 6; ++i) many.push_back(torch::empty({16 << 20}));  // 6 x 64 MB
  }
  EXPECT_LE(caching_cpu_allocator_stats().cached_bytes, int64_t{64} << 20);
  release_cached_cpu_memory();
  EXPECT_EQ(caching_cpu_allocator_stats().cached_bytes, 0);
  install_caching_cpu_allocator();  // back to the programs' default limit
  // Small and empty tensors bypass the cache.
  EXPECT_EQ(torch::ones({3}).sum().item<double>(), 3.0);
  EXPECT_EQ(torch::empty({0}).numel(), 0);
}

}  // namespace
}  // namespace hear::util
