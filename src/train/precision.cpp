#include "hear/train/precision.h"

#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <mutex>
#include <string>

#include "hear/error.h"
#include "hear/nn/kernel_override.h"

namespace hear::train {
namespace {

// LibTorch 1.13's CPU autocast leaves layer_norm to run on whatever it gets, and its CPU kernel
// rejects a bfloat16 input with float32 weights: run it in float32 (as CUDA autocast does).
at::Tensor layer_norm_in_fp32(const at::Tensor& input, at::IntArrayRef normalized_shape,
                              const c10::optional<at::Tensor>& weight,
                              const c10::optional<at::Tensor>& bias, double eps, bool cudnn) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  return at::layer_norm(input.to(at::kFloat), normalized_shape, weight, bias, eps, cudnn);
}

void register_cpu_autocast_policy() {
  static std::once_flag once;
  std::call_once(once, [] {
    nn::override_aten_kernels(c10::DispatchKey::AutocastCPU, [](torch::Library& library) {
      library.impl("layer_norm", TORCH_FN(layer_norm_in_fp32));
    });
  });
}

}  // namespace

void check_cpu_precision(Precision precision, const char* key) {
  if (precision == Precision::kFp16) {
    throw Error(std::string(key) +
                ": fp16 needs CUDA autocast with a loss scaler; on the CPU use bf16 or fp32");
  }
}

AutocastGuard::AutocastGuard(Precision precision) : active_(precision == Precision::kBf16) {
  if (!active_) return;
  register_cpu_autocast_policy();
  previous_enabled_ = at::autocast::is_cpu_enabled();
  previous_dtype_ = static_cast<int>(at::autocast::get_autocast_cpu_dtype());
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::set_cpu_enabled(true);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // The cast cache holds bfloat16 copies of the weights for this forward only.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_cpu_enabled(previous_enabled_);
  at::autocast::set_autocast_cpu_dtype(static_cast<at::ScalarType>(previous_dtype_));
}

}  // namespace hear::train
