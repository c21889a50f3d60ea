#pragma once
// The acoustic model (docs/reference-notes.md §2, §3, §7a): PatchEmbedding (`feature_extractor.*`)
// and a relative-position ContextualEncoder (`contextual_encoder.layers.{n}.*`). Inputs longer than
// max_length patches run as overlapping windows (max_length long, stride max_length - overlap)
// batched through the encoder, merged by a normalized cosine cross-fade. A window is used for a
// clip only when the clip reaches past the previous window's end, so a clip's output does not
// depend on the rest of its batch.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <ostream>

#include "hear/io/config.h"
#include "hear/nn/patch_embedding.h"
#include "hear/nn/relative_transformer.h"
#include "hear/nn/util.h"

namespace hear::models {

// Defaults: the paper's acoustic model (Table I); the tokenizer reuses this struct's layout.
struct AcousticModelOptions {
  int64_t n_mels = 128;
  int64_t hidden_size = 384;
  int64_t intermediate_size = 1536;
  int64_t num_attention_heads = 4;
  int64_t num_transformer_layers = 6;
  int64_t max_length = 300;  // patches per window (6 s)
  int64_t overlap = 50;      // patches shared by neighbouring windows (1 s)
  double dropout_probability = 0.1;
  bool sliding_window = true;  // false: inputs longer than max_length are errors (tokenizer, MAM)

  nn::TransformerOptions transformer() const {
    return {hidden_size, intermediate_size,  num_attention_heads, num_transformer_layers,
            max_length,  dropout_probability};
  }
  // Cross-field: heads divide hidden_size, overlap < max_length (ranges: define).
  void validate(const io::ConfigCheck& check) const;

  void define(io::ConfigSchema& s) {
    s.field("n_mels", n_mels, "mel bins of the input features").min(1);
    s.field("hidden_size", hidden_size, "Transformer width").min(1);
    s.field("intermediate_size", intermediate_size, "feed-forward width").min(1);
    s.field("num_attention_heads", num_attention_heads, "attention heads").min(1);
    s.field("num_transformer_layers", num_transformer_layers, "relative-position layers").min(0);
    s.field("max_length", max_length, "patches per window (relative table 2x this)").min(1);
    s.field("overlap", overlap, "patches shared by neighbouring windows").min(0);
    s.field("dropout_probability", dropout_probability, "dropout (attention and FFN)")
        .range(0.0, 0.999);
    s.field("sliding_window", sliding_window, "window inputs longer than max_length");
  }
};

class AcousticModelImpl : public torch::nn::Module {
 public:
  explicit AcousticModelImpl(const AcousticModelOptions& options = {});

  // log_mel: (B, n_mels, T); frame_lengths: (B,) -> {(B, T/2, hidden), (B,) int64 patches}.
  nn::Sequence forward(const at::Tensor& log_mel, const at::Tensor& frame_lengths);

  // The Transformer part on patch embeddings: (B, P, hidden), (B,) -> (B, P, hidden), windowed
  // when P > max_length (sliding_window) or an error naming the length (otherwise).
  at::Tensor encode(const at::Tensor& embeddings, const at::Tensor& patch_lengths);

  // (max_length,) float32 cross-fade weights: 1 in the middle, ramps of
  // max(1e-3, 0.5 - 0.5 cos(pi i / (overlap - 1))) at both ends. Not a parameter or buffer.
  at::Tensor window_weights() const;

  const AcousticModelOptions& options() const { return options_; }
  void pretty_print(std::ostream& stream) const override;

  nn::PatchEmbedding feature_extractor{nullptr};
  nn::ContextualEncoder contextual_encoder{nullptr};

 private:
  at::Tensor encode_windows(const at::Tensor& x, const at::Tensor& lengths);
  AcousticModelOptions options_;
};
TORCH_MODULE(AcousticModel);

}  // namespace hear::models
