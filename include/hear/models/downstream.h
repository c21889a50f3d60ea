#pragma once
// The downstream blocks after the acoustic model (docs/reference-notes.md §7b-§7d):
//   SpectrogramGate  (`spectrogram_mixture.*`): g = sigmoid(gate_linear(h)),
//                    s = GELU(layer_norm(spectrum_linear(S_t) * g)), out = mixture([h, s]),
//                    S_t = the log-power frames 2t, 2t+1 flattened bin-major (2·bins values)
//   TaskModel        (`task_model.*`): h + pos_embed[:P], then one post-LN ReLU Transformer
//                    encoder layer with a fused in_proj (torch.nn.TransformerEncoderLayer keys)
//   ClassifierHead   (`decoder.*`): masked [mean, max, unbiased std] pooling -> linear ->
//                    batch_norm -> ReLU -> dropout -> out
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <ostream>

#include "hear/io/config.h"

namespace hear::models {

struct SpectrogramGateOptions {
  int64_t hidden_size = 384;    // acoustic model width (gate, spectrum projection, LayerNorm)
  int64_t spectrum_bins = 513;  // log-power bins; the projection sees 2 frames: 1026 inputs
  int64_t output_size = 384;    // task model width
};

class SpectrogramGateImpl : public torch::nn::Module {
 public:
  explicit SpectrogramGateImpl(const SpectrogramGateOptions& options = {});
  // hidden: (B, P, hidden); log_power: (B, bins, T >= 2P) -> (B, P, output_size)
  at::Tensor forward(const at::Tensor& hidden, const at::Tensor& log_power);
  const SpectrogramGateOptions& options() const { return options_; }
  void pretty_print(std::ostream& stream) const override;

  torch::nn::Linear gate_linear{nullptr}, spectrum_linear{nullptr};
  torch::nn::LayerNorm layer_norm{nullptr};
  torch::nn::Linear mixture{nullptr};

 private:
  SpectrogramGateOptions options_;
};
TORCH_MODULE(SpectrogramGate);

struct TaskModelOptions {
  int64_t hidden_size = 384;
  int64_t intermediate_size = 1536;
  int64_t num_attention_heads = 4;
  int64_t max_length = 1500;  // rows of pos_embed: longest input in patches (30 s)
  double dropout_rate = 0.1;

  void define(io::ConfigSchema& s) {
    s.field("hidden_size", hidden_size, "task model width").min(1);
    s.field("intermediate_size", intermediate_size, "feed-forward width").min(1);
    s.field("num_attention_heads", num_attention_heads, "attention heads").min(1);
    s.field("max_length", max_length, "position embeddings (longest input in patches)").min(1);
    s.field("dropout_rate", dropout_rate, "dropout").range(0.0, 0.999);
  }
};

// torch.nn.MultiheadAttention's parameters (in_proj_weight (3H, H), in_proj_bias (3H),
// out_proj) for self-attention with a key padding mask.
class FusedSelfAttentionImpl : public torch::nn::Module {
 public:
  FusedSelfAttentionImpl(int64_t hidden_size, int64_t num_heads, double dropout);
  // x: (B, T, H); key_mask: (B, T) bool, true = valid -> (B, T, H)
  at::Tensor forward(const at::Tensor& x, const at::Tensor& key_mask);
  void pretty_print(std::ostream& stream) const override;

  at::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};

 private:
  int64_t hidden_size_, num_heads_;
  double dropout_;
};
TORCH_MODULE(FusedSelfAttention);

// torch.nn.TransformerEncoderLayer(norm_first=False, activation=relu, batch_first=True).
class TaskTransformerLayerImpl : public torch::nn::Module {
 public:
  explicit TaskTransformerLayerImpl(const TaskModelOptions& options);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& key_mask);  // (B, T, H)
  void pretty_print(std::ostream& stream) const override;

  FusedSelfAttention self_attn{nullptr};
  torch::nn::Linear linear1{nullptr}, linear2{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(TaskTransformerLayer);

class TaskModelImpl : public torch::nn::Module {
 public:
  explicit TaskModelImpl(const TaskModelOptions& options = {});
  // x: (B, P, hidden), lengths (B,) -> (B, P, hidden). P > max_length is an error.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& lengths);
  const TaskModelOptions& options() const { return options_; }
  void pretty_print(std::ostream& stream) const override;

  at::Tensor pos_embed;  // (1, max_length, hidden), zero-initialized
  TaskTransformerLayer transformer{nullptr};

 private:
  TaskModelOptions options_;
};
TORCH_MODULE(TaskModel);

struct ClassifierHeadOptions {
  int64_t input_size = 384;  // task model width (set by HearClassifier)
  int64_t hidden_size = 384;
  int64_t num_classes = 0;  // required
  double dropout_rate = 0.1;

  void define(io::ConfigSchema& s) {
    s.field("hidden_size", hidden_size, "classifier hidden width").min(1);
    s.field("num_classes", num_classes,
            "output classes (hear-finetune: 0 = from the training labels)")
        .min(0);
    s.field("dropout_rate", dropout_rate, "dropout before the output layer").range(0.0, 0.999);
  }
};

class ClassifierHeadImpl : public torch::nn::Module {
 public:
  explicit ClassifierHeadImpl(const ClassifierHeadOptions& options);
  // x: (B, P, input_size), lengths (B,) -> logits (B, num_classes). Batch norm uses running
  // statistics in eval mode (training mode needs B > 1).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& lengths);
  // The pooled statistics [mean, max, std] over valid steps: (B, 3 · input_size).
  static at::Tensor pool(const at::Tensor& x, const at::Tensor& lengths);
  const ClassifierHeadOptions& options() const { return options_; }
  void pretty_print(std::ostream& stream) const override;

  torch::nn::Linear linear{nullptr};
  torch::nn::BatchNorm1d batch_norm{nullptr};
  torch::nn::Linear out{nullptr};

 private:
  ClassifierHeadOptions options_;
};
TORCH_MODULE(ClassifierHead);

}  // namespace hear::models
