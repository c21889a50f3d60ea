#pragma once
// The tokenizer's vector quantizer (reference TokenizerTrainFramework.vector_quantizer):
// `code_book` (1, V, c) + `linear` (c -> decoder width); a hard Gumbel-softmax over the codebook
// logits with a straight-through gradient, an annealed temperature and a codebook diversity loss.
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <ostream>

#include "hear/io/config.h"

namespace hear::models {

struct GumbelOptions {
  double init_temperature = 2.0;
  double min_temperature = 0.5;
  double temperature_decay = 0.999995;  // tau <- max(min, tau * decay) per training forward

  void define(io::ConfigSchema& s) {
    s.field("init_temperature", init_temperature, "initial Gumbel-softmax temperature").min(1e-6);
    s.field("min_temperature", min_temperature, "temperature floor").min(1e-6);
    s.field("temperature_decay", temperature_decay, "factor per training step").range(0.0, 1.0);
  }
};

// Deterministic overrides for tests and reproducible debugging: either the codes to use, or the
// Gumbel noise g (codes = argmax((logits + g) / tau)). Both undefined: noise is drawn, from
// `generator` when given (e.g. repeatable validation), else from torch's global generator.
struct QuantizerInjection {
  at::Tensor codes;  // (B, P) int64
  at::Tensor noise;  // (B, P, V)
  c10::optional<at::Generator> generator;
};

struct QuantizerOutput {
  at::Tensor quantized;       // (B, P, output_size): linear(code_book[codes])
  at::Tensor codes;           // (B, P) int64
  at::Tensor one_hot;         // (B, P, V): y_hard - stop_grad(y_soft) + y_soft
  at::Tensor diversity_loss;  // scalar, unweighted: sum_k (pbar_k - 1/V)^2
};

class GumbelQuantizerImpl : public torch::nn::Module {
 public:
  GumbelQuantizerImpl(int64_t num_codebooks, int64_t code_vector_size, int64_t output_size,
                      const GumbelOptions& gumbel = {});

  // logits: (B, P, V); lengths: (B,) valid patches (the diversity average covers only those).
  // y_soft = softmax((logits + g) / tau); with injected codes and no noise, g = 0. In training
  // mode the temperature steps once per call (as the reference's training=True).
  QuantizerOutput forward(const at::Tensor& logits, const at::Tensor& lengths,
                          const QuantizerInjection& inject = {});

  // The temperature is not a tensor: checkpoints save it through these.
  double temperature() const { return temperature_; }
  void set_temperature(double tau);
  void step_temperature();  // tau <- max(min, tau * decay)
  const GumbelOptions& gumbel_options() const { return gumbel_; }
  void pretty_print(std::ostream& stream) const override;

  at::Tensor code_book;  // (1, V, c)
  torch::nn::Linear linear{nullptr};

 private:
  int64_t num_codebooks_;
  GumbelOptions gumbel_;
  double temperature_;
};
TORCH_MODULE(GumbelQuantizer);

}  // namespace hear::models
