#include "hear/models/tokenizer.h"

#include <torch/torch.h>

#include <algorithm>

#include "hear/error.h"
#include "hear/nn/batch_shard.h"

namespace hear::models {

AcousticModelOptions TokenizerOptions::encoder() const {
  AcousticModelOptions o;
  o.n_mels = n_mels;
  o.hidden_size = hidden_size;
  o.intermediate_size = intermediate_size;
  o.num_attention_heads = num_attention_heads;
  o.num_transformer_layers = num_transformer_layers;
  o.max_length = max_length;
  o.overlap = 0;
  o.dropout_probability = dropout_probability;
  o.sliding_window = false;
  return o;
}

void TokenizerOptions::validate(const io::ConfigCheck& check) const {
  check.require(hidden_size % num_attention_heads == 0, "hidden_size",
                "tokenizer: " + std::to_string(hidden_size) +
                    " must be a multiple of num_attention_heads " +
                    std::to_string(num_attention_heads));
}

void TokenizerDecoderOptions::validate(const io::ConfigCheck& check) const {
  check.require(hidden_size % num_attention_heads == 0, "hidden_size",
                "tokenizer decoder: " + std::to_string(hidden_size) +
                    " must be a multiple of num_attention_heads " +
                    std::to_string(num_attention_heads));
}

// ------------------------------------------------------------------------------------ Tokenizer

TokenizerImpl::TokenizerImpl(const TokenizerOptions& options) : options_(options) {
  io::validate_config(options_);
  encoder = register_module("encoder", AcousticModel(options_.encoder()));
  linear =
      register_module("linear", torch::nn::Linear(options_.hidden_size, options_.num_codebooks));
}

nn::Sequence TokenizerImpl::forward(const at::Tensor& log_mel, const at::Tensor& frame_lengths) {
  auto encoded = encoder(log_mel, frame_lengths);
  return {linear(encoded.values), encoded.lengths};
}

void TokenizerImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::models::Tokenizer(hidden=" << options_.hidden_size
         << ", layers=" << options_.num_transformer_layers << ", codes=" << options_.num_codebooks
         << ", params=" << nn::format_count(nn::count_parameters(*this)) << ")";
}

// ----------------------------------------------------------------------------- TokenizerDecoder

TokenizerDecoderOutLayerImpl::TokenizerDecoderOutLayerImpl(const TokenizerDecoderOptions& o)
    : n_mels_(o.n_mels) {
  linear = register_module("linear", torch::nn::Linear(o.hidden_size, o.hidden_size));
  layer_norm = register_module("layer_norm",
                               torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden_size})));
  out_linear = register_module("out_linear", torch::nn::Linear(o.hidden_size, 2 * o.n_mels));
  out_linear2 =
      register_module("out_linear2", torch::nn::Linear(o.hidden_size, o.knowledge_hidden_size));
}

std::pair<at::Tensor, at::Tensor> TokenizerDecoderOutLayerImpl::forward(const at::Tensor& x) {
  auto y = layer_norm(torch::gelu(linear(x)));
  auto mel = out_linear(y).reshape({x.size(0), 2 * x.size(1), n_mels_});
  return {mel, out_linear2(y)};
}

void TokenizerDecoderOutLayerImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::models::TokenizerDecoderOutLayer(linear -> GELU -> LayerNorm -> mel 2x"
         << n_mels_ << ", knowledge " << out_linear2->options.out_features()
         << ", params=" << nn::format_count(nn::count_parameters(*this)) << ")";
}

TokenizerDecoderImpl::TokenizerDecoderImpl(const TokenizerDecoderOptions& options)
    : options_(options) {
  io::validate_config(options_);
  layers = register_module("layers", torch::nn::ModuleList());
  nn::append_relative_layers(layers, options_.transformer());
  out_layer = register_module("out_layer", TokenizerDecoderOutLayer(options_));
}

TokenizerDecoderOutput TokenizerDecoderImpl::forward(const at::Tensor& quantized,
                                                     const at::Tensor& patch_lengths) {
  if (quantized.dim() != 3 || quantized.size(2) != options_.hidden_size) {
    throw Error("TokenizerDecoder: expected (B, P, " + std::to_string(options_.hidden_size) +
                ") input, got " + c10::str(quantized.sizes()));
  }
  auto len =
      nn::checked_lengths(patch_lengths, quantized.size(0), quantized.device(), "TokenizerDecoder");
  auto x = nn::run_relative_layers(layers, quantized, nn::lengths_to_mask(len, quantized.size(1)));
  auto [mel, knowledge] = out_layer(x);
  return {mel, knowledge, len * 2};
}

void TokenizerDecoderImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::models::TokenizerDecoder(hidden=" << options_.hidden_size
         << ", layers=" << options_.num_transformer_layers << ", mel=2x" << options_.n_mels
         << ", knowledge=" << options_.knowledge_hidden_size
         << ", params=" << nn::format_count(nn::count_parameters(*this)) << ")";
}

// ------------------------------------------------------------------------------------- losses

TokenizerLosses tokenizer_losses(const TokenizerDecoderOutput& decoded, const at::Tensor& log_mel,
                                 const at::Tensor& teacher, const at::Tensor& patch_lengths,
                                 const at::Tensor& diversity_loss,
                                 const TokenizerLossWeights& weights) {
  const auto& mel = decoded.mel;  // (B, 2P, M)
  const int64_t b = mel.size(0), frames = mel.size(1), m = mel.size(2);
  const int64_t p = decoded.knowledge.size(1);
  if (log_mel.dim() != 3 || log_mel.size(0) != b || log_mel.size(1) != m ||
      log_mel.size(2) < frames) {
    throw Error("tokenizer_losses: log-mel target must be (" + std::to_string(b) + ", " +
                std::to_string(m) + ", >= " + std::to_string(frames) + "), got " +
                c10::str(log_mel.sizes()));
  }
  auto len = nn::checked_lengths(patch_lengths, b, mel.device(), "tokenizer_losses");

  auto target = log_mel.detach().transpose(1, 2).narrow(1, 0, frames).to(mel.scalar_type());
  auto frame_mask = nn::lengths_to_mask(len * 2, frames).to(mel.scalar_type()).unsqueeze(-1);
  auto squared = (mel - target).pow(2) * frame_mask;
  // Means over the global batch of a data-parallel run (nn/batch_shard.h); plain means otherwise.
  auto reconstruction =
      nn::mean_over_shards(squared.sum(), frame_mask.sum() * static_cast<double>(m));

  auto patch_mask = nn::lengths_to_mask(len, p).to(mel.scalar_type());  // (B, P)
  at::Tensor distillation;
  if (teacher.defined()) {
    const auto& pred = decoded.knowledge;
    if (teacher.dim() != 3 || teacher.size(0) != b || teacher.size(1) < p ||
        teacher.size(2) != pred.size(2)) {
      throw Error("tokenizer_losses: teacher features must be (" + std::to_string(b) +
                  ", >= " + std::to_string(p) + ", " + std::to_string(pred.size(2)) + "), got " +
                  c10::str(teacher.sizes()));
    }
    auto t = teacher.detach().narrow(1, 0, p).to(pred.options());
    constexpr double kCosineEps = 1e-12;  // torch's cosine_embedding_loss EPSILON
    auto dot = (pred * t).sum(-1);
    auto denom = (((pred * pred).sum(-1) + kCosineEps) * ((t * t).sum(-1) + kCosineEps)).sqrt();
    distillation = nn::mean_over_shards(((1.0 - dot / denom) * patch_mask).sum(), patch_mask.sum());
  } else {
    distillation = torch::zeros({}, mel.options());
  }

  TokenizerLosses out;
  out.reconstruction = reconstruction * weights.reconstruction;
  out.distillation = distillation * weights.distillation;
  out.diversity = diversity_loss.to(mel.scalar_type()) * weights.diversity;
  out.total = out.reconstruction + out.distillation + out.diversity;
  return out;
}

// ----------------------------------------------------------------------- TokenizerTrainingModel

TokenizerTrainingModelImpl::TokenizerTrainingModelImpl(const TokenizerTrainingOptions& options)
    : options_(options) {
  tokenizer = register_module("tokenizer", Tokenizer(options_.tokenizer));
  decoder = register_module("decoder", TokenizerDecoder(options_.decoder));
  vector_quantizer = register_module(
      "vector_quantizer",
      GumbelQuantizer(options_.tokenizer.num_codebooks, options_.decoder.code_vector_size,
                      options_.decoder.hidden_size, options_.gumbel));
}

TokenizerTrainingOutput TokenizerTrainingModelImpl::forward(const at::Tensor& log_mel,
                                                            const at::Tensor& frame_lengths,
                                                            const at::Tensor& teacher,
                                                            const QuantizerInjection& inject) {
  TokenizerTrainingOutput out;
  auto tokens = tokenizer(log_mel, frame_lengths);
  out.logits = tokens.values;
  out.patch_lengths = tokens.lengths;
  out.quantizer = vector_quantizer(out.logits, out.patch_lengths, inject);
  out.decoded = decoder(out.quantizer.quantized, out.patch_lengths);
  out.losses = tokenizer_losses(out.decoded, log_mel, teacher, out.patch_lengths,
                                out.quantizer.diversity_loss, options_.loss_weights);
  return out;
}

void TokenizerTrainingModelImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::models::TokenizerTrainingModel(loss weights "
         << options_.loss_weights.reconstruction << "/" << options_.loss_weights.distillation << "/"
         << options_.loss_weights.diversity
         << ", params=" << nn::format_count(nn::count_parameters(*this)) << ")";
}

}  // namespace hear::models
