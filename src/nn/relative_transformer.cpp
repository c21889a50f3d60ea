#include "hear/nn/relative_transformer.h"

#include <torch/torch.h>

#include "hear/error.h"
#include "hear/nn/dropout.h"
#include "hear/nn/util.h"

namespace hear::nn {

void TransformerOptions::validate(const char* what) const {
  auto fail = [&](const std::string& msg) { throw Error(std::string(what) + ": " + msg); };
  if (hidden_size < 1) fail("hidden_size must be >= 1, got " + std::to_string(hidden_size));
  if (intermediate_size < 1) {
    fail("intermediate_size must be >= 1, got " + std::to_string(intermediate_size));
  }
  if (num_attention_heads < 1 || hidden_size % num_attention_heads != 0) {
    fail("hidden_size " + std::to_string(hidden_size) +
         " must be a multiple of num_attention_heads " + std::to_string(num_attention_heads));
  }
  if (num_transformer_layers < 0) {
    fail("num_transformer_layers must be >= 0, got " + std::to_string(num_transformer_layers));
  }
  if (max_length < 1) fail("max_length must be >= 1, got " + std::to_string(max_length));
  if (dropout_probability < 0.0 || dropout_probability >= 1.0) {
    fail("dropout_probability must be in [0, 1), got " + std::to_string(dropout_probability));
  }
}

FeedForwardImpl::FeedForwardImpl(int64_t hidden_size, int64_t intermediate_size, double dropout)
    : dropout_(dropout) {
  layer_norm = register_module("layer_norm",
                               torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden_size})));
  intermediate_dense =
      register_module("intermediate_dense", torch::nn::Linear(hidden_size, intermediate_size));
  output_dense = register_module("output_dense", torch::nn::Linear(intermediate_size, hidden_size));
}

at::Tensor FeedForwardImpl::forward(const at::Tensor& x) {
  auto y = torch::silu(intermediate_dense(layer_norm(x)));
  y = output_dense(nn::dropout(y, dropout_, is_training()));
  return nn::dropout(y, dropout_, is_training());
}

void FeedForwardImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::nn::FeedForward(" << intermediate_dense->options.in_features() << " -> "
         << intermediate_dense->options.out_features() << " -> "
         << output_dense->options.out_features() << ", SiLU, dropout=" << dropout_
         << ", params=" << format_count(count_parameters(*this)) << ")";
}

RelativeTransformerLayerImpl::RelativeTransformerLayerImpl(const TransformerOptions& o) {
  o.validate("RelativeTransformerLayer");
  layer_norm1 = register_module("layer_norm1",
                                torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden_size})));
  self_attn =
      register_module("self_attn", RelativePositionAttention(o.hidden_size, o.num_attention_heads,
                                                             o.max_length, o.dropout_probability));
  layer_norm2 = register_module("layer_norm2",
                                torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden_size})));
  ffn = register_module("ffn",
                        FeedForward(o.hidden_size, o.intermediate_size, o.dropout_probability));
}

at::Tensor RelativeTransformerLayerImpl::forward(const at::Tensor& x, const at::Tensor& key_mask) {
  auto y = x + self_attn(layer_norm1(x), key_mask);
  return y + ffn(layer_norm2(y));
}

void RelativeTransformerLayerImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::nn::RelativeTransformerLayer(pre-LN, params="
         << format_count(count_parameters(*this)) << ")";
}

void append_relative_layers(torch::nn::ModuleList& list, const TransformerOptions& options) {
  for (int64_t i = 0; i < options.num_transformer_layers; ++i) {
    list->push_back(RelativeTransformerLayer(options));
  }
}

at::Tensor run_relative_layers(const torch::nn::ModuleList& list, at::Tensor x,
                               const at::Tensor& key_mask) {
  for (const auto& layer : *list) {
    x = layer->as<RelativeTransformerLayerImpl>()->forward(x, key_mask);
  }
  return x;
}

ContextualEncoderImpl::ContextualEncoderImpl(const TransformerOptions& options)
    : options_(options) {
  options.validate("ContextualEncoder");
  layers = register_module("layers", torch::nn::ModuleList());
  append_relative_layers(layers, options);
}

at::Tensor ContextualEncoderImpl::forward(const at::Tensor& x, const at::Tensor& lengths) {
  if (x.dim() != 3 || x.size(2) != options_.hidden_size) {
    throw Error("ContextualEncoder: expected (B, T, " + std::to_string(options_.hidden_size) +
                ") input, got " + c10::str(x.sizes()));
  }
  auto len = checked_lengths(lengths, x.size(0), x.device(), "ContextualEncoder");
  return run_relative_layers(layers, x, lengths_to_mask(len, x.size(1)));
}

void ContextualEncoderImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::nn::ContextualEncoder(layers=" << options_.num_transformer_layers
         << ", hidden=" << options_.hidden_size << ", ffn=" << options_.intermediate_size
         << ", heads=" << options_.num_attention_heads << ", max_length=" << options_.max_length
         << ", params=" << format_count(count_parameters(*this)) << ")";
}

}  // namespace hear::nn
