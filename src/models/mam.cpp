#include "hear/models/mam.h"

#include <torch/torch.h>

#include <cmath>

#include "hear/error.h"
#include "hear/nn/batch_shard.h"
#include "hear/nn/counter_random.h"

namespace hear::models {

MamHeadImpl::MamHeadImpl(int64_t hidden_size, int64_t num_codebooks) {
  if (hidden_size < 1 || num_codebooks < 1) throw Error("MamHead: sizes must be >= 1");
  // torch.nn.Linear's init: kaiming_uniform(a = sqrt(5)) weight, U(+-1/sqrt(fan_in)) bias.
  weight = register_parameter("weight", torch::empty({num_codebooks, hidden_size}));
  bias = register_parameter("bias", torch::empty({num_codebooks}));
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
  torch::nn::init::uniform_(bias, -bound, bound);
}

at::Tensor MamHeadImpl::forward(const at::Tensor& x) {
  return torch::linear(x, weight, bias);
}

void MamHeadImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::models::MamHead(" << weight.size(1) << " -> " << weight.size(0)
         << ", params=" << nn::format_count(nn::count_parameters(*this)) << ")";
}

MaskRule parse_mask_rule(const std::string& name) {
  if (name == "bernoulli") return MaskRule::kBernoulli;
  if (name == "reference_gaussian") return MaskRule::kReferenceGaussian;
  throw Error("unknown MAM mask rule '" + name + "' (expected bernoulli or reference_gaussian)");
}

at::Tensor make_mam_mask(const at::Tensor& lengths, int64_t num_patches, double rate, MaskRule rule,
                         std::optional<at::Generator> generator) {
  if (rate < 0.0 || rate > 1.0)
    throw Error("MAM mask rate must be in [0, 1], got " + std::to_string(rate));
  auto len = nn::checked_lengths(lengths, lengths.size(0), lengths.device(), "make_mam_mask");
  auto valid = nn::lengths_to_mask(len, num_patches);
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(len.device());
  c10::optional<at::Generator> gen;
  if (generator) gen = *generator;
  const bool gaussian = rule == MaskRule::kReferenceGaussian;
  // Counter-based (nn/counter_random.h): one stream over a data-parallel global batch, the same
  // on every device.
  const at::Tensor like = at::empty({len.size(0), num_patches}, opts);
  const uint64_t seed = nn::draw_seed(gen);
  const at::Tensor r = gaussian ? nn::normal_noise(like, seed) : nn::uniform_noise(like, seed);
  if (!gaussian) return (r < rate) & valid;
  return (r + valid.logical_not().to(torch::kFloat)) < rate;
}

at::Tensor mam_loss(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& mask) {
  if (logits.dim() != 3 || labels.sizes() != logits.sizes().slice(0, 2) ||
      mask.sizes() != labels.sizes()) {
    throw Error("mam_loss: expected logits (B, P, V), labels and mask (B, P); got " +
                c10::str(logits.sizes()) + ", " + c10::str(labels.sizes()) + ", " +
                c10::str(mask.sizes()));
  }
  auto m = mask.to(logits.device(), torch::kBool);
  auto index = m.reshape({-1}).nonzero().squeeze(1);
  auto flat = logits.reshape({-1, logits.size(2)}).index_select(0, index);
  auto target = labels.to(logits.device(), torch::kLong).reshape({-1}).index_select(0, index);
  if (nn::current_batch_shard().count > 1) {  // the mean over the global batch's masked patches
    namespace F = torch::nn::functional;
    auto sum = F::cross_entropy(flat, target, F::CrossEntropyFuncOptions().reduction(torch::kSum));
    return nn::mean_over_shards(sum,
                                torch::full({}, static_cast<double>(index.numel()), sum.options()));
  }
  if (index.numel() == 0) return logits.sum() * 0.0;
  return torch::nn::functional::cross_entropy(flat, target);
}

MamModelImpl::MamModelImpl(const MamOptions& options)
    : options_(options), rule_(options.mask_rule) {
  if (options_.mask_rate < 0.0 || options_.mask_rate > 1.0) {
    throw Error("MAM: mask_rate must be in [0, 1], got " + std::to_string(options_.mask_rate));
  }
  options_.encoder.sliding_window = false;
  tokenizer = register_module("tokenizer", Tokenizer(options_.tokenizer));
  encoder = register_module("encoder", AcousticModel(options_.encoder));
  out_linear = register_module(
      "out_linear", MamHead(options_.encoder.hidden_size, options_.tokenizer.num_codebooks));
  for (auto& p : tokenizer->parameters()) p.set_requires_grad(false);
  tokenizer->eval();
}

void MamModelImpl::train(bool on) {
  torch::nn::Module::train(on);
  tokenizer->eval();
}

MamOutput MamModelImpl::forward(const at::Tensor& log_mel, const at::Tensor& frame_lengths,
                                const at::Tensor& mask) {
  MamOutput out;
  {
    torch::NoGradGuard no_grad;
    out.labels = tokenizer(log_mel, frame_lengths).values.argmax(-1);
  }
  auto patches = encoder->feature_extractor(log_mel, frame_lengths);
  out.lengths =
      options_.reference_halved_lengths ? torch::div(patches.lengths, 2, "floor") : patches.lengths;
  const int64_t b = patches.values.size(0), p = patches.values.size(1);
  if (mask.defined()) {
    if (mask.dim() != 2 || mask.size(0) != b || mask.size(1) != p) {
      throw Error("MAM: injected mask must be (" + std::to_string(b) + ", " + std::to_string(p) +
                  "), got " + c10::str(mask.sizes()));
    }
    out.mask = mask.to(patches.values.device(), torch::kBool);
  } else {
    out.mask = make_mam_mask(out.lengths, p, options_.mask_rate, rule_);
  }
  auto keep = out.mask.logical_not().unsqueeze(-1).to(patches.values.scalar_type());
  auto embeddings =
      options_.detach_masked_embeddings ? patches.values.detach() * keep : patches.values * keep;
  out.logits = out_linear(encoder->encode(embeddings, out.lengths));
  out.loss = mam_loss(out.logits, out.labels, out.mask);
  return out;
}

void MamModelImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::models::MamModel(mask " << io::to_string(options_.mask_rule) << " "
         << options_.mask_rate << ", params=" << nn::format_count(nn::count_parameters(*this))
         << ", trainable=" << nn::format_count(nn::count_parameters(*this, true)) << ")";
}

}  // namespace hear::models
