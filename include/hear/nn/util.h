#pragma once
// Small helpers shared by the network modules: length masks, parameter counting.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace torch::nn {
class Module;
}

namespace hear::nn {

// A padded batch with its lengths: values (B, T, ...) and lengths (B,) int64 (valid steps).
struct Sequence {
  at::Tensor values;
  at::Tensor lengths;
};

// (B,) lengths -> (B, max_length) bool, true at t < lengths[b]. Lengths of any numeric dtype
// are floored to int64 first.
at::Tensor lengths_to_mask(const at::Tensor& lengths, int64_t max_length);

// Lengths as an int64 tensor on `device`; throws hear::Error (naming `what`) unless 1-D with
// `batch` entries, all >= 0.
at::Tensor checked_lengths(const at::Tensor& lengths, int64_t batch, const at::Device& device,
                           const std::string& what);

// Number of parameter elements (buffers not included).
int64_t count_parameters(const torch::nn::Module& module, bool trainable_only = false);

// The device of the module's first parameter (its buffers' without parameters; CPU if neither).
c10::Device module_device(const torch::nn::Module& module);

// 15097394 -> "15,097,394"
std::string format_count(int64_t n);

}  // namespace hear::nn
