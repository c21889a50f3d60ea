#pragma once
// Stage 1, the acoustic tokenizer (docs/reference-notes.md §4):
//   Tokenizer          `encoder.*` (patch conv + relative Transformer, no sliding window) and
//                      `linear.*` -> codebook logits (B, P, V)
//   GumbelQuantizer    `vector_quantizer.*` (hear/models/gumbel_quantizer.h)
//   TokenizerDecoder   `layers.{n}.*` + `out_layer.{linear, layer_norm, out_linear, out_linear2}`:
//                      2 mel frames per patch and a prediction of the teacher's features
//   tokenizer_losses   weighted reconstruction MSE, distillation 1 - cos, diversity
//   TokenizerTrainingModel   the reference TokenizerTrainFramework: `tokenizer.*`, `decoder.*`,
//                      `vector_quantizer.*`, one call from log-mel to the three losses.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <ostream>
#include <utility>

#include "hear/io/config.h"
#include "hear/models/acoustic_model.h"
#include "hear/models/gumbel_quantizer.h"
#include "hear/nn/util.h"

namespace hear::models {

struct TokenizerOptions {
  int64_t n_mels = 128;
  int64_t hidden_size = 128;
  int64_t intermediate_size = 512;
  int64_t num_attention_heads = 4;
  int64_t num_transformer_layers = 6;
  int64_t max_length = 300;  // no sliding window: longer inputs are errors
  double dropout_probability = 0.1;
  int64_t num_codebooks = 1024;

  AcousticModelOptions encoder() const;  // the `encoder` sub-module, sliding_window = false
  void validate(const io::ConfigCheck& check) const;  // heads divide hidden_size

  void define(io::ConfigSchema& s) {
    s.field("n_mels", n_mels, "mel bins of the input features").min(1);
    s.field("hidden_size", hidden_size, "Transformer width").min(1);
    s.field("intermediate_size", intermediate_size, "feed-forward width").min(1);
    s.field("num_attention_heads", num_attention_heads, "attention heads").min(1);
    s.field("num_transformer_layers", num_transformer_layers, "relative-position layers").min(0);
    s.field("max_length", max_length, "longest input in patches").min(1);
    s.field("dropout_probability", dropout_probability, "dropout").range(0.0, 0.999);
    s.field("num_codebooks", num_codebooks, "codebook size V").min(2);
  }
};

struct TokenizerDecoderOptions {
  int64_t hidden_size = 128;
  int64_t intermediate_size = 512;
  int64_t num_attention_heads = 4;
  int64_t num_transformer_layers = 2;
  int64_t max_length = 300;
  double dropout_probability = 0.1;
  int64_t knowledge_hidden_size = 768;  // teacher (SSAST) feature width
  int64_t code_vector_size = 32;        // codebook vector width c
  int64_t n_mels = 128;                 // reconstructed mel bins (2 frames per patch)

  nn::TransformerOptions transformer() const {
    return {hidden_size, intermediate_size,  num_attention_heads, num_transformer_layers,
            max_length,  dropout_probability};
  }
  void validate(const io::ConfigCheck& check) const;  // heads divide hidden_size

  void define(io::ConfigSchema& s) {
    s.field("hidden_size", hidden_size, "Transformer width").min(1);
    s.field("intermediate_size", intermediate_size, "feed-forward width").min(1);
    s.field("num_attention_heads", num_attention_heads, "attention heads").min(1);
    s.field("num_transformer_layers", num_transformer_layers, "relative-position layers").min(0);
    s.field("max_length", max_length, "longest input in patches").min(1);
    s.field("dropout_probability", dropout_probability, "dropout").range(0.0, 0.999);
    s.field("knowledge_hidden_size", knowledge_hidden_size, "teacher feature width").min(1);
    s.field("code_vector_size", code_vector_size, "codebook vector width").min(1);
    s.field("n_mels", n_mels, "reconstructed mel bins").min(1);
  }
};

struct TokenizerLossWeights {
  double reconstruction = 0.3;
  double distillation = 0.7;
  double diversity = 0.1;

  void define(io::ConfigSchema& s) {
    s.field("reconstruction", reconstruction, "weight of the mel reconstruction MSE").min(0.0);
    s.field("distillation", distillation, "weight of the teacher 1 - cos loss").min(0.0);
    s.field("diversity", diversity, "weight of the codebook diversity loss").min(0.0);
  }
};

class TokenizerImpl : public torch::nn::Module {
 public:
  explicit TokenizerImpl(const TokenizerOptions& options = {});
  // log_mel: (B, n_mels, T), frame_lengths (B,) -> {logits (B, T/2, V), (B,) int64 patches}.
  // Throws hear::Error when T/2 > max_length.
  nn::Sequence forward(const at::Tensor& log_mel, const at::Tensor& frame_lengths);
  const TokenizerOptions& options() const { return options_; }
  void pretty_print(std::ostream& stream) const override;

  AcousticModel encoder{nullptr};
  torch::nn::Linear linear{nullptr};

 private:
  TokenizerOptions options_;
};
TORCH_MODULE(Tokenizer);

class TokenizerDecoderOutLayerImpl : public torch::nn::Module {
 public:
  explicit TokenizerDecoderOutLayerImpl(const TokenizerDecoderOptions& options);
  // (B, P, H) -> {mel (B, 2P, n_mels), knowledge (B, P, K)}
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  torch::nn::Linear linear{nullptr};
  torch::nn::LayerNorm layer_norm{nullptr};
  torch::nn::Linear out_linear{nullptr}, out_linear2{nullptr};

 private:
  int64_t n_mels_;
};
TORCH_MODULE(TokenizerDecoderOutLayer);

struct TokenizerDecoderOutput {
  at::Tensor mel;            // (B, 2P, n_mels): frames 2t, 2t+1 from patch t
  at::Tensor knowledge;      // (B, P, K)
  at::Tensor frame_lengths;  // (B,) int64, 2 x patch lengths
};

class TokenizerDecoderImpl : public torch::nn::Module {
 public:
  explicit TokenizerDecoderImpl(const TokenizerDecoderOptions& options = {});
  // quantized: (B, P, hidden), patch_lengths: (B,)
  TokenizerDecoderOutput forward(const at::Tensor& quantized, const at::Tensor& patch_lengths);
  const TokenizerDecoderOptions& options() const { return options_; }
  void pretty_print(std::ostream& stream) const override;

  torch::nn::ModuleList layers{nullptr};
  TokenizerDecoderOutLayer out_layer{nullptr};

 private:
  TokenizerDecoderOptions options_;
};
TORCH_MODULE(TokenizerDecoder);

struct TokenizerLosses {  // weighted scalars
  at::Tensor reconstruction, distillation, diversity, total;
};

// reconstruction = w_r · MSE(decoded.mel, log_mel frames) over frames t < 2·patch_length
// distillation   = w_d · mean over valid patches of 1 - cos(decoded.knowledge, teacher)
//                  (cos as torch's CosineEmbeddingLoss, eps 1e-12); 0 if teacher is undefined
// diversity      = w_v · diversity_loss
// log_mel: (B, n_mels, T >= 2P) (the tokenizer input); teacher: (B, >= P, K).
TokenizerLosses tokenizer_losses(const TokenizerDecoderOutput& decoded, const at::Tensor& log_mel,
                                 const at::Tensor& teacher, const at::Tensor& patch_lengths,
                                 const at::Tensor& diversity_loss,
                                 const TokenizerLossWeights& weights);

struct TokenizerTrainingOptions {
  TokenizerOptions tokenizer;
  TokenizerDecoderOptions decoder;
  GumbelOptions gumbel;
  TokenizerLossWeights loss_weights;

  void define(io::ConfigSchema& s) {
    s.section("tokenizer", tokenizer);
    s.section("decoder", decoder);
    s.section("gumbel", gumbel);
    s.section("loss_weights", loss_weights);
  }
};

struct TokenizerTrainingOutput {
  at::Tensor logits;         // (B, P, V)
  at::Tensor patch_lengths;  // (B,) int64
  QuantizerOutput quantizer;
  TokenizerDecoderOutput decoded;
  TokenizerLosses losses;
};

class TokenizerTrainingModelImpl : public torch::nn::Module {
 public:
  explicit TokenizerTrainingModelImpl(const TokenizerTrainingOptions& options = {});
  // log_mel: (B, n_mels, T), frame_lengths: (B,), teacher: (B, >= T/2, K) or undefined.
  TokenizerTrainingOutput forward(const at::Tensor& log_mel, const at::Tensor& frame_lengths,
                                  const at::Tensor& teacher, const QuantizerInjection& inject = {});
  const TokenizerTrainingOptions& options() const { return options_; }
  void pretty_print(std::ostream& stream) const override;

  Tokenizer tokenizer{nullptr};
  TokenizerDecoder decoder{nullptr};
  GumbelQuantizer vector_quantizer{nullptr};

 private:
  TokenizerTrainingOptions options_;
};
TORCH_MODULE(TokenizerTrainingModel);

}  // namespace hear::models
