#pragma once
// The reference's relative-position Transformer stack (docs/reference-notes.md §3):
//   layer:  x += MHSA(LN1(x));  x += FFN(LN2(x))       (pre-LN)
//   FFN:    LN -> Linear(H, I) -> SiLU -> Dropout -> Linear(I, H) -> Dropout
// (two consecutive LayerNorms precede the FFN, as in the reference). No final LayerNorm.
// Key names: layer_norm1, self_attn.*, layer_norm2, ffn.{layer_norm, intermediate_dense,
// output_dense}; the stack holds them under layers.{n}.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <ostream>

#include "hear/nn/relative_attention.h"

namespace hear::nn {

// Sizes of one relative-position Transformer stack.
struct TransformerOptions {
  int64_t hidden_size = 384;
  int64_t intermediate_size = 1536;
  int64_t num_attention_heads = 4;
  int64_t num_transformer_layers = 6;
  int64_t max_length = 300;  // relative table has 2·max_length rows; longer inputs are errors
  double dropout_probability = 0.1;

  // Throws hear::Error naming the first invalid size (`what` prefixes the message).
  void validate(const char* what) const;
};

class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t hidden_size, int64_t intermediate_size, double dropout);
  at::Tensor forward(const at::Tensor& x);  // (B, T, H) -> (B, T, H)
  void pretty_print(std::ostream& stream) const override;

  torch::nn::LayerNorm layer_norm{nullptr};
  torch::nn::Linear intermediate_dense{nullptr}, output_dense{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(FeedForward);

class RelativeTransformerLayerImpl : public torch::nn::Module {
 public:
  explicit RelativeTransformerLayerImpl(const TransformerOptions& options);
  // x: (B, T, H), key_mask: (B, T) bool (true = valid) -> (B, T, H)
  at::Tensor forward(const at::Tensor& x, const at::Tensor& key_mask = {});
  void pretty_print(std::ostream& stream) const override;

  torch::nn::LayerNorm layer_norm1{nullptr};
  RelativePositionAttention self_attn{nullptr};
  torch::nn::LayerNorm layer_norm2{nullptr};
  FeedForward ffn{nullptr};
};
TORCH_MODULE(RelativeTransformerLayer);

// Registers `options.num_transformer_layers` layers into `list` (shared by ContextualEncoder and
// the tokenizer decoder, whose keys are `layers.{n}` directly).
void append_relative_layers(torch::nn::ModuleList& list, const TransformerOptions& options);
// Runs the layers of `list` in order with one key mask.
at::Tensor run_relative_layers(const torch::nn::ModuleList& list, at::Tensor x,
                               const at::Tensor& key_mask);

class ContextualEncoderImpl : public torch::nn::Module {
 public:
  explicit ContextualEncoderImpl(const TransformerOptions& options);
  // x: (B, T, H); lengths: (B,) valid steps -> (B, T, H). T must be <= max_length.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& lengths);
  const TransformerOptions& options() const { return options_; }
  void pretty_print(std::ostream& stream) const override;

  torch::nn::ModuleList layers{nullptr};

 private:
  TransformerOptions options_;
};
TORCH_MODULE(ContextualEncoder);

}  // namespace hear::nn
