#pragma once
// An independent MAC count: observes the matrix products LibTorch actually executes while it is
// alive (RecordFunction callbacks on aten::mm / addmm / bmm / baddbmm / mv / addmv / dot /
// convolution) and sums their multiply-accumulates from the runtime tensor shapes. It checks the
// analytic cost model (cost_model.h) against what a forward pass really runs, sliding windows and
// the attention algorithm included.
//
// Only the outermost counted op of a call chain is counted (bmm may run as per-batch addmm calls
// internally), on the thread that created the counter. Element-wise ops, softmax, norms and
// activations are not counted (the cost model's convention). At most one counter may be alive at
// a time: RecordFunction callbacks are process-wide.
#include <cstdint>
#include <map>
#include <string>

namespace hear::bench {

struct ExecutedMacs {
  int64_t total = 0;
  std::map<std::string, int64_t> by_op;  // "aten::addmm" -> MACs
  std::map<std::string, int64_t> calls;  // "aten::addmm" -> number of calls
};

class ExecutedMacCounter {
 public:
  ExecutedMacCounter();  // starts counting; throws hear::Error if another counter is alive
  ~ExecutedMacCounter();
  ExecutedMacCounter(const ExecutedMacCounter&) = delete;
  ExecutedMacCounter& operator=(const ExecutedMacCounter&) = delete;

  ExecutedMacs result() const;  // counts so far

 private:
  uint64_t handle_ = 0;
};

}  // namespace hear::bench
