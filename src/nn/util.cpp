#include "hear/nn/util.h"

#include <torch/torch.h>

#include "hear/error.h"

namespace hear::nn {

at::Tensor lengths_to_mask(const at::Tensor& lengths, int64_t max_length) {
  auto len =
      lengths.is_floating_point() ? lengths.floor().to(torch::kLong) : lengths.to(torch::kLong);
  auto steps =
      torch::arange(max_length, torch::TensorOptions().dtype(torch::kLong).device(len.device()));
  return steps.unsqueeze(0) < len.unsqueeze(1);
}

at::Tensor checked_lengths(const at::Tensor& lengths, int64_t batch, const at::Device& device,
                           const std::string& what) {
  if (!lengths.defined()) throw Error(what + ": lengths tensor is undefined");
  if (lengths.dim() != 1 || lengths.size(0) != batch) {
    throw Error(what + ": expected lengths of shape (" + std::to_string(batch) + "), got " +
                c10::str(lengths.sizes()));
  }
  auto len =
      lengths.is_floating_point() ? lengths.floor().to(torch::kLong) : lengths.to(torch::kLong);
  if (batch > 0 && len.min().item<int64_t>() < 0) {
    throw Error(what + ": negative length " + std::to_string(len.min().item<int64_t>()));
  }
  return len.to(device);
}

c10::Device module_device(const torch::nn::Module& module) {
  for (const auto& p : module.parameters()) return p.device();
  for (const auto& b : module.buffers()) return b.device();
  return c10::kCPU;
}

int64_t count_parameters(const torch::nn::Module& module, bool trainable_only) {
  int64_t n = 0;
  for (const auto& p : module.parameters(/*recurse=*/true)) {
    if (!trainable_only || p.requires_grad()) n += p.numel();
  }
  return n;
}

std::string format_count(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

}  // namespace hear::nn
