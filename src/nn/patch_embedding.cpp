#include "hear/nn/patch_embedding.h"

#include <torch/torch.h>

#include "hear/error.h"

namespace hear::nn {

PatchEmbeddingImpl::PatchEmbeddingImpl(int64_t n_mels, int64_t hidden_size)
    : n_mels_(n_mels), hidden_size_(hidden_size) {
  if (n_mels < 1 || hidden_size < 1) {
    throw Error("PatchEmbedding: n_mels and hidden_size must be >= 1 (got " +
                std::to_string(n_mels) + ", " + std::to_string(hidden_size) + ")");
  }
  conv = register_module(
      "conv", torch::nn::Conv1d(torch::nn::Conv1dOptions(n_mels, hidden_size, 2).stride(2)));
}

Sequence PatchEmbeddingImpl::forward(const at::Tensor& features, const at::Tensor& frame_lengths) {
  if (features.dim() != 3 || features.size(1) != n_mels_) {
    throw Error("PatchEmbedding: expected (B, " + std::to_string(n_mels_) + ", T) features, got " +
                c10::str(features.sizes()));
  }
  auto len = checked_lengths(frame_lengths, features.size(0), features.device(), "PatchEmbedding");
  at::Tensor x;
  if (features.size(2) < 2) {  // Conv1d rejects inputs shorter than its kernel
    x = torch::zeros({features.size(0), 0, hidden_size_}, features.options());
  } else {
    x = torch::relu(conv(features)).transpose(1, 2);
  }
  return {x, torch::div(len, 2, "floor")};
}

void PatchEmbeddingImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::nn::PatchEmbedding(Conv1d(" << n_mels_ << " -> " << hidden_size_
         << ", k=2, s=2) + ReLU)";
}

}  // namespace hear::nn
