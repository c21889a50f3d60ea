#include "hear/models/downstream.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "hear/error.h"
#include "hear/nn/blocked_attention.h"
#include "hear/nn/dropout.h"
#include "hear/nn/sync_batch_norm.h"
#include "hear/nn/util.h"

namespace hear::models {

// ------------------------------------------------------------------------------ SpectrogramGate

SpectrogramGateImpl::SpectrogramGateImpl(const SpectrogramGateOptions& options)
    : options_(options) {
  if (options.hidden_size < 1 || options.spectrum_bins < 1 || options.output_size < 1) {
    throw Error("SpectrogramGate: sizes must be >= 1");
  }
  const int64_t h = options.hidden_size;
  gate_linear = register_module("gate_linear", torch::nn::Linear(h, h));
  spectrum_linear =
      register_module("spectrum_linear", torch::nn::Linear(2 * options.spectrum_bins, h));
  layer_norm =
      register_module("layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({h})));
  mixture = register_module("mixture", torch::nn::Linear(2 * h, options.output_size));
}

at::Tensor SpectrogramGateImpl::forward(const at::Tensor& hidden, const at::Tensor& log_power) {
  if (hidden.dim() != 3 || hidden.size(2) != options_.hidden_size) {
    throw Error("SpectrogramGate: expected (B, P, " + std::to_string(options_.hidden_size) +
                ") hidden states, got " + c10::str(hidden.sizes()));
  }
  const int64_t b = hidden.size(0), p = hidden.size(1), bins = options_.spectrum_bins;
  if (log_power.dim() != 3 || log_power.size(0) != b || log_power.size(1) != bins ||
      log_power.size(2) < 2 * p) {
    throw Error("SpectrogramGate: expected (" + std::to_string(b) + ", " + std::to_string(bins) +
                ", >= " + std::to_string(2 * p) + ") log-power, got " +
                c10::str(log_power.sizes()));
  }
  // (B, bins, 2P) -> (B, P, bins, 2) -> (B, P, 2·bins): index 2·bin + frame-in-pair.
  auto pairs = log_power.narrow(2, 0, 2 * p)
                   .reshape({b, bins, p, 2})
                   .permute({0, 2, 1, 3})
                   .reshape({b, p, 2 * bins})
                   .to(hidden.scalar_type());
  auto gate = torch::sigmoid(gate_linear(hidden));
  auto spectrum = torch::gelu(layer_norm(spectrum_linear(pairs) * gate));
  return mixture(torch::cat({hidden, spectrum}, -1));
}

void SpectrogramGateImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::models::SpectrogramGate(hidden=" << options_.hidden_size << ", spectrum=2x"
         << options_.spectrum_bins << " -> " << options_.output_size
         << ", params=" << nn::format_count(nn::count_parameters(*this)) << ")";
}

// ---------------------------------------------------------------------------------- TaskModel

FusedSelfAttentionImpl::FusedSelfAttentionImpl(int64_t hidden_size, int64_t num_heads,
                                               double dropout)
    : hidden_size_(hidden_size), num_heads_(num_heads), dropout_(dropout) {
  if (hidden_size < 1 || num_heads < 1 || hidden_size % num_heads != 0) {
    throw Error("task model attention: hidden_size " + std::to_string(hidden_size) +
                " must be a positive multiple of num_attention_heads " + std::to_string(num_heads));
  }
  in_proj_weight =
      register_parameter("in_proj_weight", torch::empty({3 * hidden_size, hidden_size}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * hidden_size}));
  out_proj = register_module("out_proj", torch::nn::Linear(hidden_size, hidden_size));
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(in_proj_weight);  // torch.nn.MultiheadAttention's init
  out_proj->bias.zero_();
}

at::Tensor FusedSelfAttentionImpl::forward(const at::Tensor& x, const at::Tensor& key_mask) {
  const int64_t b = x.size(0), t = x.size(1), h = num_heads_, d = hidden_size_ / num_heads_;
  // Softmax cancels the key bias (a constant per query row): its slice is left out, so it gets
  // a zero gradient instead of rounding noise that AdamW would turn into lr-sized steps.
  const int64_t hs = hidden_size_;
  const at::Tensor bias =
      torch::cat({in_proj_bias.narrow(0, 0, hs), torch::zeros({hs}, in_proj_bias.options()),
                  in_proj_bias.narrow(0, 2 * hs, hs)});
  auto qkv = torch::linear(x, in_proj_weight, bias).chunk(3, -1);
  auto q = qkv[0].reshape({b, t, h, d}).transpose(1, 2) / std::sqrt(static_cast<double>(d));
  auto k = qkv[1].reshape({b, t, h, d}).transpose(1, 2);
  auto v = qkv[2].reshape({b, t, h, d}).transpose(1, 2);
  // A batch without padding needs no fill.
  const at::Tensor masked = key_mask.defined() && !key_mask.all().item<bool>()
                                ? key_mask.logical_not().view({b, 1, 1, t})
                                : at::Tensor();
  // Inference on long inputs (600 s = 30,000 patches) never forms the (B, h, T, T) scores: one
  // key block fits L2 and the online softmax keeps the result exact. Training (dropout needs the
  // probabilities, autograd would keep every block) takes the direct path, at most 30 s there.
  const bool deterministic = !(is_training() && dropout_ > 0.0) && !at::GradMode::is_enabled();
  at::Tensor out;
  if (deterministic && t > nn::kKeyBlock) {
    out = nn::blocked_attention(q, k, v, masked);
  } else {
    auto scores = torch::matmul(q, k.transpose(-1, -2));  // (B, h, T, T)
    if (masked.defined()) {
      // torch uses -inf; the lowest float gives the same probabilities and no NaN for a row
      // without any valid key.
      scores = scores.masked_fill(masked, std::numeric_limits<float>::lowest());
    }
    out = torch::matmul(nn::dropout(torch::softmax(scores, -1), dropout_, is_training()), v);
  }
  return out_proj(out.transpose(1, 2).reshape({b, t, hidden_size_}));
}

void FusedSelfAttentionImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::models::FusedSelfAttention(hidden=" << hidden_size_ << ", heads=" << num_heads_
         << ", dropout=" << dropout_ << ", params=" << nn::format_count(nn::count_parameters(*this))
         << ")";
}

TaskTransformerLayerImpl::TaskTransformerLayerImpl(const TaskModelOptions& o)
    : dropout_(o.dropout_rate) {
  self_attn = register_module(
      "self_attn", FusedSelfAttention(o.hidden_size, o.num_attention_heads, o.dropout_rate));
  linear1 = register_module("linear1", torch::nn::Linear(o.hidden_size, o.intermediate_size));
  linear2 = register_module("linear2", torch::nn::Linear(o.intermediate_size, o.hidden_size));
  norm1 =
      register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden_size})));
  norm2 =
      register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden_size})));
}

at::Tensor TaskTransformerLayerImpl::forward(const at::Tensor& x, const at::Tensor& key_mask) {
  const bool train = is_training();
  auto y = norm1(x + nn::dropout(self_attn(x, key_mask), dropout_, train));
  auto ff = linear2(nn::dropout(torch::relu(linear1(y)), dropout_, train));
  return norm2(y + nn::dropout(ff, dropout_, train));
}

void TaskTransformerLayerImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::models::TaskTransformerLayer(post-LN, ReLU, ffn="
         << linear1->options.out_features() << ", dropout=" << dropout_
         << ", params=" << nn::format_count(nn::count_parameters(*this)) << ")";
}

TaskModelImpl::TaskModelImpl(const TaskModelOptions& options) : options_(options) {
  if (options.max_length < 1) throw Error("task model: max_length must be >= 1");
  if (options.intermediate_size < 1) throw Error("task model: intermediate_size must be >= 1");
  if (options.dropout_rate < 0.0 || options.dropout_rate >= 1.0) {
    throw Error("task model: dropout_rate must be in [0, 1)");
  }
  pos_embed =
      register_parameter("pos_embed", torch::zeros({1, options.max_length, options.hidden_size}));
  transformer = register_module("transformer", TaskTransformerLayer(options));
}

at::Tensor TaskModelImpl::forward(const at::Tensor& x, const at::Tensor& lengths) {
  if (x.dim() != 3 || x.size(2) != options_.hidden_size) {
    throw Error("TaskModel: expected (B, P, " + std::to_string(options_.hidden_size) +
                ") input, got " + c10::str(x.sizes()));
  }
  const int64_t p = x.size(1);
  if (p > options_.max_length) {
    throw Error("TaskModel: input of " + std::to_string(p) + " patches exceeds max_length " +
                std::to_string(options_.max_length) + " (position embeddings)");
  }
  auto len = nn::checked_lengths(lengths, x.size(0), x.device(), "TaskModel");
  return transformer(x + pos_embed.narrow(1, 0, p), nn::lengths_to_mask(len, p));
}

void TaskModelImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::models::TaskModel(hidden=" << options_.hidden_size
         << ", ffn=" << options_.intermediate_size << ", heads=" << options_.num_attention_heads
         << ", positions=" << options_.max_length << ", post-LN ReLU"
         << ", params=" << nn::format_count(nn::count_parameters(*this)) << ")";
}

// ----------------------------------------------------------------------------- ClassifierHead

ClassifierHeadImpl::ClassifierHeadImpl(const ClassifierHeadOptions& options) : options_(options) {
  if (options.num_classes < 1) {
    throw Error("classifier head: num_classes must be >= 1, got " +
                std::to_string(options.num_classes));
  }
  if (options.input_size < 1 || options.hidden_size < 1) {
    throw Error("classifier head: input_size and hidden_size must be >= 1");
  }
  linear =
      register_module("linear", torch::nn::Linear(3 * options.input_size, options.hidden_size));
  batch_norm = register_module("batch_norm", torch::nn::BatchNorm1d(options.hidden_size));
  out = register_module("out", torch::nn::Linear(options.hidden_size, options.num_classes));
}

at::Tensor ClassifierHeadImpl::pool(const at::Tensor& x, const at::Tensor& lengths) {
  const int64_t p = x.size(1);
  auto len = nn::checked_lengths(lengths, x.size(0), x.device(), "ClassifierHead");
  auto mask = nn::lengths_to_mask(len, p).unsqueeze(-1);  // (B, P, 1)
  auto count = len.to(x.scalar_type()).view({-1, 1}).clamp_min(1.0);
  auto max_pool =
      x.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity()).amax(1);
  auto mean_pool = x.masked_fill(mask.logical_not(), 0.0).sum(1) / count;
  auto var = (x - mean_pool.unsqueeze(1)).pow(2).masked_fill(mask.logical_not(), 0.0).sum(1) /
             (count - 1.0).clamp_min(1e-5);
  auto std_pool = torch::sqrt(var + 1e-8);
  return torch::cat({mean_pool, max_pool, std_pool}, 1);
}

at::Tensor ClassifierHeadImpl::forward(const at::Tensor& x, const at::Tensor& lengths) {
  if (x.dim() != 3 || x.size(2) != options_.input_size) {
    throw Error("ClassifierHead: expected (B, P, " + std::to_string(options_.input_size) +
                ") input, got " + c10::str(x.sizes()));
  }
  auto y = torch::relu(nn::batch_norm_over_shards(linear(pool(x, lengths)), *batch_norm));
  return out(nn::dropout(y, options_.dropout_rate, is_training()));
}

void ClassifierHeadImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::models::ClassifierHead([mean, max, std] x " << options_.input_size << " -> "
         << options_.hidden_size << " -> " << options_.num_classes
         << ", params=" << nn::format_count(nn::count_parameters(*this)) << ")";
}

}  // namespace hear::models
