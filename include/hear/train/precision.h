#pragma once
// Training precision: fp32, or bf16 autocast for the forward pass (LibTorch's CPU autocast: the
// products and convolutions run in bfloat16, normalisation, softmax and losses keep float32, and
// the parameters, gradients and AdamW state stay float32). On this machine (AVX-512 BF16) a
// bfloat16 matrix product runs at ~700 GFLOP/s against ~420 for float32 (oneDNN) on 2 threads;
// the cost is bfloat16's 8-bit mantissa in the products (relative rounding 2^-9).
// On CUDA, bf16 and fp16 use CUDA autocast; fp16 adds a dynamic loss scaler (train/loss_scaler.h).
// fp16 is refused on the CPU (LibTorch's CPU autocast has no float16 policy).
#include <c10/core/Device.h>

#include <array>
#include <utility>

namespace hear::train {

enum class Precision { kFp32, kBf16, kFp16 };
constexpr std::array<std::pair<Precision, const char*>, 3> enum_names(Precision) {
  return {{{Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"}, {Precision::kFp16, "fp16"}}};
}

// Throws hear::Error naming `key` when the precision cannot run on `device` (fp16 off CUDA).
void check_precision(Precision precision, const c10::Device& device, const char* key);

// Autocast of `device`'s type for the forward pass while alive (no-op for fp32); restores the
// previous state.
class AutocastGuard {
 public:
  explicit AutocastGuard(Precision precision, c10::DeviceType device = c10::DeviceType::CPU);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_;
  bool previous_enabled_ = false;
  int previous_dtype_ = 0;
};

}  // namespace hear::train
