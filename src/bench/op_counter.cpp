#include "hear/bench/op_counter.h"

#include <ATen/record_function.h>

#include <cstring>
#include <memory>
#include <mutex>

#include "hear/error.h"

namespace hear::bench {
namespace {

// RecordFunction callbacks are plain function pointers, so the running totals live here, owned
// by the one alive ExecutedMacCounter.
struct CounterState {
  std::mutex mutex;
  bool alive = false;
  ExecutedMacs macs;
};
CounterState& state() {
  static CounterState s;
  return s;
}
thread_local int counted_depth = 0;

struct OpContext : at::ObserverContext {
  bool outermost = false;
  int64_t macs = 0;             // known at start
  int64_t macs_per_output = 0;  // convolution: times the output's element count
};

const char* const kCountedOps[] = {
    "aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm",    "aten::baddbmm_",
    "aten::mv", "aten::addmv", "aten::addmv_", "aten::dot", "aten::convolution"};

bool is_counted(const char* name) {
  for (const char* op : kCountedOps) {
    if (std::strcmp(name, op) == 0) return true;
  }
  return false;
}

at::Tensor tensor_input(const at::RecordFunction& fn, size_t i) {
  const auto inputs = fn.inputs();
  if (i >= inputs.size() || !inputs[i].isTensor()) return {};
  return inputs[i].toTensor();
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  const char* name = fn.name();
  if (!is_counted(name)) return nullptr;
  auto ctx = std::make_unique<OpContext>();
  ctx->outermost = counted_depth++ == 0;
  if (!ctx->outermost) return ctx;
  const std::string op = name;
  // The two operands of the product: mm(a, b), addmm(c, a, b), bmm(a, b), baddbmm(c, a, b), ...
  const bool accumulating = op.rfind("aten::add", 0) == 0 || op.rfind("aten::badd", 0) == 0;
  const size_t first = accumulating ? 1 : 0;
  if (op == "aten::convolution") {
    const at::Tensor input = tensor_input(fn, 0), weight = tensor_input(fn, 1);
    const auto inputs = fn.inputs();
    const bool transposed = inputs.size() > 6 && inputs[6].isBool() && inputs[6].toBool();
    if (!input.defined() || !weight.defined()) return ctx;
    const int64_t per_output = weight.numel() / weight.size(0);  // (C/g)·prod(kernel)
    if (transposed) {
      ctx->macs = input.numel() * per_output;  // every input element scatters weight[c] once
    } else {
      ctx->macs_per_output = per_output;
    }
    return ctx;
  }
  const at::Tensor a = tensor_input(fn, first), b = tensor_input(fn, first + 1);
  if (!a.defined() || !b.defined()) return ctx;
  if (op == "aten::dot") {
    ctx->macs = a.numel();
  } else if (op.find("mv") != std::string::npos) {
    ctx->macs = a.numel();  // (n, k) · (k,)
  } else if (op.find("bmm") != std::string::npos) {
    ctx->macs = a.size(0) * a.size(1) * a.size(2) * b.size(2);  // (B, n, k) · (B, k, m)
  } else {
    ctx->macs = a.size(0) * a.size(1) * b.size(1);  // (n, k) · (k, m)
  }
  return ctx;
}

void on_end(const at::RecordFunction& fn, at::ObserverContext* raw) {
  auto* ctx = static_cast<OpContext*>(raw);
  if (ctx == nullptr) return;
  --counted_depth;
  if (!ctx->outermost) return;
  int64_t macs = ctx->macs;
  if (ctx->macs_per_output > 0) {
    const auto& outputs = fn.outputs();
    if (!outputs.empty() && outputs[0].isTensor()) {
      macs = outputs[0].toTensor().numel() * ctx->macs_per_output;
    }
  }
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.macs.total += macs;
  s.macs.by_op[fn.name()] += macs;
  s.macs.calls[fn.name()] += 1;
}

}  // namespace

ExecutedMacCounter::ExecutedMacCounter() {
  auto& s = state();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.alive) throw Error("ExecutedMacCounter: another counter is already counting");
    s.alive = true;
    s.macs = {};
  }
  handle_ = at::addGlobalCallback(at::RecordFunctionCallback(&on_start, &on_end)
                                      .needsInputs(true)
                                      .needsOutputs(true)
                                      .scopes({at::RecordScope::FUNCTION}));
}

ExecutedMacCounter::~ExecutedMacCounter() {
  at::removeCallback(handle_);
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.alive = false;
}

ExecutedMacs ExecutedMacCounter::result() const {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.macs;
}

}  // namespace hear::bench
