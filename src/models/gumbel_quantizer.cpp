#include "hear/models/gumbel_quantizer.h"

#include <torch/torch.h>

#include <algorithm>

#include "hear/error.h"
#include "hear/nn/batch_shard.h"
#include "hear/nn/counter_random.h"
#include "hear/nn/util.h"

namespace hear::models {

GumbelQuantizerImpl::GumbelQuantizerImpl(int64_t num_codebooks, int64_t code_vector_size,
                                         int64_t output_size, const GumbelOptions& gumbel)
    : num_codebooks_(num_codebooks), gumbel_(gumbel), temperature_(gumbel.init_temperature) {
  if (num_codebooks < 1 || code_vector_size < 1 || output_size < 1) {
    throw Error("GumbelQuantizer: sizes must be >= 1");
  }
  if (!(gumbel.init_temperature > 0.0) || !(gumbel.min_temperature > 0.0)) {
    throw Error("GumbelQuantizer: temperatures must be > 0");
  }
  code_book = register_parameter("code_book", torch::randn({1, num_codebooks, code_vector_size}));
  linear = register_module("linear", torch::nn::Linear(code_vector_size, output_size));
}

void GumbelQuantizerImpl::set_temperature(double tau) {
  if (!(tau > 0.0))
    throw Error("GumbelQuantizer: temperature must be > 0, got " + std::to_string(tau));
  temperature_ = tau;
}

void GumbelQuantizerImpl::step_temperature() {
  temperature_ = std::max(gumbel_.min_temperature, temperature_ * gumbel_.temperature_decay);
}

QuantizerOutput GumbelQuantizerImpl::forward(const at::Tensor& logits, const at::Tensor& lengths,
                                             const QuantizerInjection& inject) {
  if (logits.dim() != 3 || logits.size(2) != num_codebooks_) {
    throw Error("GumbelQuantizer: expected (B, P, " + std::to_string(num_codebooks_) +
                ") logits, got " + c10::str(logits.sizes()));
  }
  const int64_t b = logits.size(0), p = logits.size(1);
  auto len = nn::checked_lengths(lengths, b, logits.device(), "GumbelQuantizer");
  auto logits_f = logits.to(torch::kFloat);

  at::Tensor noise;
  if (inject.noise.defined()) {
    if (inject.noise.sizes() != logits.sizes()) {
      throw Error("GumbelQuantizer: injected noise must be " + c10::str(logits.sizes()) + ", got " +
                  c10::str(inject.noise.sizes()));
    }
    noise = inject.noise.to(logits_f.options());
  } else if (!inject.codes.defined()) {
    noise = nn::gumbel_noise(logits_f, nn::draw_seed(inject.generator));  // Gumbel(0, 1)
  }
  auto y_soft = torch::softmax((noise.defined() ? logits_f + noise : logits_f) / temperature_, -1);
  at::Tensor codes;
  if (inject.codes.defined()) {
    if (inject.codes.dim() != 2 || inject.codes.size(0) != b || inject.codes.size(1) != p) {
      throw Error("GumbelQuantizer: injected codes must be (" + std::to_string(b) + ", " +
                  std::to_string(p) + "), got " + c10::str(inject.codes.sizes()));
    }
    codes = inject.codes.to(logits.device(), torch::kLong);
    if (codes.numel() > 0 &&
        (codes.min().item<int64_t>() < 0 || codes.max().item<int64_t>() >= num_codebooks_)) {
      throw Error("GumbelQuantizer: injected codes outside [0, " + std::to_string(num_codebooks_) +
                  ")");
    }
  } else {
    codes = y_soft.argmax(-1);
  }
  auto y_hard = torch::zeros_like(y_soft).scatter_(-1, codes.unsqueeze(-1), 1.0);
  auto one_hot = (y_hard - y_soft.detach() + y_soft).to(logits.scalar_type());

  auto code_vectors = torch::matmul(one_hot, code_book.squeeze(0));  // (B, P, c)
  auto quantized = linear(code_vectors);

  // Diversity: noise-free softmax averaged over valid positions, squared distance to uniform.
  auto probs = torch::softmax(logits_f, -1);
  auto valid = nn::lengths_to_mask(len, p).to(torch::kFloat).unsqueeze(-1);  // (B, P, 1)
  // Over the global batch of a data-parallel run (nn/batch_shard.h).
  auto mean_probs = nn::mean_over_shards((probs * valid).sum(at::IntArrayRef{0, 1}), valid.sum());
  auto diversity = (mean_probs - 1.0 / static_cast<double>(num_codebooks_)).pow(2).sum();

  if (is_training()) step_temperature();
  QuantizerOutput out;
  out.quantized = quantized;
  out.codes = codes;
  out.one_hot = one_hot;
  out.diversity_loss = diversity;
  return out;
}

void GumbelQuantizerImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::models::GumbelQuantizer(codes=" << num_codebooks_
         << ", code_vector=" << code_book.size(2) << " -> " << linear->options.out_features()
         << ", temperature=" << temperature_ << " (min " << gumbel_.min_temperature << ", x"
         << gumbel_.temperature_decay << "/step)"
         << ", params=" << nn::format_count(nn::count_parameters(*this)) << ")";
}

}  // namespace hear::models
