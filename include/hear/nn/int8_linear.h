#pragma once
// Dynamic int8 inference of a model's linear layers: each weight quantized once, per output
// channel (symmetric int8), activations quantized per call from their range, products in int8 by
// LibTorch's quantized::linear_dynamic on the oneDNN engine (AVX-512 VNNI here; Debian's LibTorch
// has no fbgemm). Biases and everything else stay float32.
//
// Int8Linears registers the model's weights with the float32 matrix-product kernels of
// nn/onednn_matmul.h (installed by it): a product whose second operand is a registered weight
// (torch::linear's weight.t()) runs in int8; every other product is untouched. So the model's
// code is unchanged, and the registration ends with the object. For inference (no autograd).
#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace hear::nn {

class Int8Linears {
 public:
  // Needs the oneDNN quantized engine and the oneDNN matrix products; throws hear::Error
  // otherwise. `min_macs`: layers with fewer in x out weights stay float32.
  explicit Int8Linears(torch::nn::Module& module, int64_t min_weights = 64 * 64);
  ~Int8Linears();
  Int8Linears(const Int8Linears&) = delete;
  Int8Linears& operator=(const Int8Linears&) = delete;

  static bool available();
  int64_t count() const { return static_cast<int64_t>(weights_.size()); }

 private:
  std::vector<const void*> weights_;
};

// For the matrix-product kernels: a @ b in int8 when b is a registered weight's transpose,
// else nullopt. a: (N, in), b: (in, out) -> (N, out).
std::optional<at::Tensor> int8_product(const at::Tensor& a, const at::Tensor& b);

}  // namespace hear::nn
