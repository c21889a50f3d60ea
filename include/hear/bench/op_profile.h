#pragma once
// Where a piece of work spends its time, by LibTorch operator: runs a callable under LibTorch's
// (legacy, CPU) autograd profiler and sums each operator's self time (its time minus that of the
// operators it called) and inclusive time over the calls on the calling thread. Backward ops are
// named as autograd records them ("autograd::engine::evaluate_function: MmBackward0") and the
// operators they run are their children, so self times add up to the profiled wall time.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hear::bench {

struct OpTime {
  std::string name;  // "aten::addmm"; with by_shape: "aten::addmm [[16, 512], [512, 2048]]"
  int64_t calls = 0;
  double self_s = 0;   // time not spent in child operators
  double total_s = 0;  // inclusive (outermost call of a recursion counted once)
};

struct OpProfile {
  double wall_s = 0;        // the callable's wall time, profiler overhead included
  std::vector<OpTime> ops;  // by self time, largest first
};

// by_shape groups by operator and input shapes (slower to record).
OpProfile profile_ops(const std::function<void()>& work, bool by_shape = false);

// The first `top` rows as an aligned table with each row's share of the wall time.
std::string format_op_profile(const OpProfile& profile, int top);

}  // namespace hear::bench
