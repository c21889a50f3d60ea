#pragma once
// Stage 2, masked audio modeling (docs/reference-notes.md §6). MamModel mirrors the reference
// PretrainFramework's keys: `tokenizer.*` (frozen, always eval: its argmax codes are the labels),
// `encoder.*` (the AcousticModel being trained) and `out_linear.*` (MamHead). Masking zeroes the
// post-conv, post-ReLU patch embeddings; the encoder then runs without a sliding window, so
// inputs are limited to max_length patches like the reference.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <utility>

#include "hear/io/config.h"
#include "hear/models/acoustic_model.h"
#include "hear/models/tokenizer.h"

namespace hear::models {

// `out_linear`: Linear(hidden -> num_codebooks) whose weight/bias sit directly on the module.
class MamHeadImpl : public torch::nn::Module {
 public:
  MamHeadImpl(int64_t hidden_size, int64_t num_codebooks);
  at::Tensor forward(const at::Tensor& x);  // (B, P, hidden) -> (B, P, V)
  void pretty_print(std::ostream& stream) const override;

  at::Tensor weight;  // (V, hidden)
  at::Tensor bias;    // (V,)
};
TORCH_MODULE(MamHead);

enum class MaskRule {
  kBernoulli,          // each valid patch independently with probability `rate`; never padding
  kReferenceGaussian,  // the reference code: randn + (padded ? 1 : 0) < rate (~65.5% at 0.4,
                       // some padded positions too)
};
constexpr std::array<std::pair<MaskRule, const char*>, 2> enum_names(MaskRule) {
  return {
      {{MaskRule::kBernoulli, "bernoulli"}, {MaskRule::kReferenceGaussian, "reference_gaussian"}}};
}
MaskRule parse_mask_rule(const std::string& name);  // "bernoulli" | "reference_gaussian"

// (B, P) bool mask for patch lengths (B,), drawn from `generator` (or the default one).
at::Tensor make_mam_mask(const at::Tensor& lengths, int64_t num_patches, double rate, MaskRule rule,
                         std::optional<at::Generator> generator = std::nullopt);

// Cross entropy (mean) of logits (B, P, V) against labels (B, P) over positions where mask
// (B, P) is true. No masked position: 0 (connected to the graph), not NaN.
at::Tensor mam_loss(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& mask);

struct MamOptions {
  AcousticModelOptions encoder;  // sliding_window is ignored: MAM runs unwindowed
  TokenizerOptions tokenizer;
  double mask_rate = 0.4;
  MaskRule mask_rule = MaskRule::kBernoulli;  // or kReferenceGaussian
  // Reference behaviour: its masking runs under no_grad, so the patch conv gets no gradient
  // from the MAM loss. Off by default.
  bool detach_masked_embeddings = false;
  // Reference behaviour: its tokenizer halves the shared frame-lengths tensor in place and the
  // encoder's patch conv halves it again, so the encoder's key mask (and the padding test of the
  // mask draw) cover only the first floor(P / 2) patches of each clip. The golden mam_tiny
  // vectors were made that way. Off by default (the full P patches are attended).
  bool reference_halved_lengths = false;

  void define(io::ConfigSchema& s) {
    s.section("encoder", encoder);
    s.section("tokenizer", tokenizer);
    s.field("mask_rate", mask_rate, "masking probability").range(0.0, 1.0);
    s.field("mask_rule", mask_rule, "how masked patches are drawn");
    s.field("detach_masked_embeddings", detach_masked_embeddings,
            "reference quirk: no gradient into the patch conv");
    s.field("reference_halved_lengths", reference_halved_lengths,
            "reference quirk: the encoder attends to only the first half of each clip");
  }
};

struct MamOutput {
  at::Tensor logits;   // (B, P, V)
  at::Tensor labels;   // (B, P) int64, argmax of the frozen tokenizer's logits
  at::Tensor mask;     // (B, P) bool, patches whose embedding was zeroed
  at::Tensor lengths;  // (B,) int64 patches (attended: lengths / 2 with reference_halved_lengths)
  at::Tensor loss;     // scalar
};

class MamModelImpl : public torch::nn::Module {
 public:
  explicit MamModelImpl(const MamOptions& options = {});
  // log_mel: (B, n_mels, T), frame_lengths (B,); mask: optional (B, T/2) bool to use instead
  // of a random one.
  MamOutput forward(const at::Tensor& log_mel, const at::Tensor& frame_lengths,
                    const at::Tensor& mask = {});
  void train(bool on = true) override;  // the tokenizer stays in eval mode
  const MamOptions& options() const { return options_; }
  void pretty_print(std::ostream& stream) const override;

  Tokenizer tokenizer{nullptr};
  AcousticModel encoder{nullptr};
  MamHead out_linear{nullptr};

 private:
  MamOptions options_;
  MaskRule rule_;
};
TORCH_MODULE(MamModel);

}  // namespace hear::models
