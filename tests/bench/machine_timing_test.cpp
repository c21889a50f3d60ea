#include <gtest/gtest.h>

#include "hear/bench/machine.h"
#include "hear/bench/timing.h"
#include "hear/error.h"

namespace hear::bench {
namespace {

TEST(BenchTiming, MedianAndP90) {
  const auto s = summarize({5, 1, 4, 2, 3, 10, 6, 7, 8, 9});
  EXPECT_DOUBLE_EQ(s.median, 5.5);
  EXPECT_DOUBLE_EQ(s.p90, 9.0);
  EXPECT_DOUBLE_EQ(s.min, 1.0);
  EXPECT_DOUBLE_EQ(s.mean, 5.5);
  EXPECT_DOUBLE_EQ(summarize({3, 1, 2}).median, 2.0);
  EXPECT_THROW(summarize({}), Error);
  int calls = 0;
  const auto t = time_runs([&] { ++calls; }, 2, 5);
  EXPECT_EQ(calls, 7);
  EXPECT_EQ(t.seconds.size(), 5u);
}

TEST(BenchMachine, DescribesThisMachine) {
  const auto m = machine_info();
  EXPECT_FALSE(m.architecture.empty());
  EXPECT_GE(m.logical_cpus, 1);
  EXPECT_GE(m.torch_threads, 1);
  EXPECT_FALSE(m.torch_version.empty());
#if defined(__x86_64__)
  EXPECT_FALSE(m.emulated);
  EXPECT_EQ(m.host_architecture, "x86_64");
#endif
}

}  // namespace
}  // namespace hear::bench
