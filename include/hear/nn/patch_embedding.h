#pragma once
// Patch splitting (docs/reference-notes.md §2): Conv1d(n_mels -> hidden, kernel 2, stride 2) + ReLU
// over time. One patch = 2 frames; a trailing odd frame is dropped; lengths become frames / 2
// (floor). Key names: conv.weight (hidden, n_mels, 2), conv.bias (hidden).
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <ostream>

#include "hear/nn/util.h"

namespace hear::nn {

class PatchEmbeddingImpl : public torch::nn::Module {
 public:
  PatchEmbeddingImpl(int64_t n_mels, int64_t hidden_size);
  // features: (B, n_mels, T); frame_lengths: (B,) -> {(B, T / 2, hidden), (B,) int64 T_b / 2}
  Sequence forward(const at::Tensor& features, const at::Tensor& frame_lengths);
  int64_t n_mels() const { return n_mels_; }
  int64_t hidden_size() const { return hidden_size_; }
  void pretty_print(std::ostream& stream) const override;

  torch::nn::Conv1d conv{nullptr};

 private:
  int64_t n_mels_, hidden_size_;
};
TORCH_MODULE(PatchEmbedding);

}  // namespace hear::nn
