#include "hear/train/precision.h"

#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <mutex>
#include <string>

#include "hear/error.h"
#include "hear/nn/kernel_override.h"
#include "hear/util/torch_compat.h"

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

void check_precision(Precision precision, const c10::Device& device, const char* key) {
  if (precision == Precision::kFp16 && !device.is_cuda()) {
    throw Error(std::string(key) +
                ": fp16 needs CUDA autocast with a loss scaler; on the CPU use bf16 or fp32");
  }
}

AutocastGuard::AutocastGuard(Precision precision, c10::DeviceType device)
    : active_(precision != Precision::kFp32), device_(device) {
  if (!active_) return;
  if (device_ == c10::DeviceType::CPU) register_cpu_autocast_policy();
  previous_enabled_ = compat::autocast_enabled(device_);
  previous_dtype_ = static_cast<int>(compat::autocast_dtype(device_));
  compat::set_autocast_dtype(device_, precision == Precision::kBf16 ? at::kBFloat16 : at::kHalf);
  compat::set_autocast_enabled(device_, true);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // The cast cache holds reduced-precision copies of the weights for this forward only.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  compat::set_autocast_enabled(device_, previous_enabled_);
  compat::set_autocast_dtype(device_, static_cast<at::ScalarType>(previous_dtype_));
}

}  // namespace hear::train
