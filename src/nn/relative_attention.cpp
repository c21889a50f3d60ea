#include "hear/nn/relative_attention.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "hear/error.h"
#include "hear/nn/dropout.h"
#include "hear/nn/util.h"

namespace hear::nn {
namespace {

// torch.finfo(dtype).min, the reference's fill value for padded keys.
c10::Scalar lowest_value(c10::ScalarType dtype) {
  c10::Scalar value;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "lowest_value",
                                  [&] { value = std::numeric_limits<scalar_t>::lowest(); });
  return value;
}

}  // namespace

RelativePositionEncoderImpl::RelativePositionEncoderImpl(int64_t dim, int64_t max_length)
    : max_length_(max_length) {
  if (dim < 1 || max_length < 1) {
    throw Error("RelativePositionEncoder: dim and max_length must be >= 1 (got " +
                std::to_string(dim) + ", " + std::to_string(max_length) + ")");
  }
  positional_embedding = register_module(
      "positional_embedding", torch::nn::Embedding(2 * max_length, dim));  // N(0, 1) init
}

at::Tensor RelativePositionEncoderImpl::rows_for_length(int64_t length) const {
  if (length > max_length_) {
    throw Error("relative position attention: sequence of " + std::to_string(length) +
                " steps exceeds max_length " + std::to_string(max_length_) +
                " (the relative table covers offsets -" + std::to_string(max_length_) + ".." +
                std::to_string(max_length_ - 1) +
                "); use the acoustic model's sliding window or a larger max_length");
  }
  if (length < 1) return positional_embedding->weight.narrow(0, 0, 0);
  return positional_embedding->weight.narrow(0, max_length_ - length + 1, 2 * length - 1);
}

at::Tensor RelativePositionEncoderImpl::full_table(int64_t length) const {
  rows_for_length(length);  // same length check
  auto r = torch::arange(
      length,
      torch::TensorOptions().dtype(torch::kLong).device(positional_embedding->weight.device()));
  auto distance = r.unsqueeze(0) - r.unsqueeze(1) + max_length_;  // [i][j] = j - i + L
  const auto& table = positional_embedding->weight;
  return table.index_select(0, distance.reshape({-1})).view({length, length, table.size(1)});
}

void RelativePositionEncoderImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::nn::RelativePositionEncoder(rows=" << 2 * max_length_
         << ", dim=" << positional_embedding->options.embedding_dim()
         << ", params=" << format_count(count_parameters(*this)) << ")";
}

at::Tensor relative_to_absolute(const at::Tensor& per_offset) {
  const int64_t t = per_offset.size(-2);
  if (per_offset.size(-1) != std::max<int64_t>(2 * t - 1, 0)) {
    throw Error("relative_to_absolute: expected (..., T, 2T-1), got " +
                c10::str(per_offset.sizes()));
  }
  if (t <= 1) return per_offset;
  auto lead = per_offset.sizes().slice(0, per_offset.dim() - 2).vec();
  auto flat_shape = lead;
  flat_shape.push_back(t * (2 * t - 1));
  auto skew_shape = lead;
  skew_shape.push_back(t);
  skew_shape.push_back(2 * t - 2);
  // Row i of the (T, 2T-2) view starts at flat i(2T-2) + T-1 = i(2T-1) + (T-1-i): the column of
  // offset -i, i.e. key 0.
  return per_offset.contiguous()
      .view(flat_shape)
      .narrow(-1, t - 1, t * (2 * t - 2))
      .reshape(skew_shape)
      .narrow(-1, 0, t);
}

at::Tensor absolute_to_relative(const at::Tensor& per_key) {
  const int64_t t = per_key.size(-2);
  if (per_key.size(-1) != t) {
    throw Error("absolute_to_relative: expected (..., T, T), got " + c10::str(per_key.sizes()));
  }
  if (t <= 1) return per_key;
  auto lead = per_key.sizes().slice(0, per_key.dim() - 2).vec();
  auto flat_shape = lead;
  flat_shape.push_back(t * (2 * t - 2));
  auto out_shape = lead;
  out_shape.push_back(t);
  out_shape.push_back(2 * t - 1);
  // Inverse of relative_to_absolute: rows of length 2T-2 laid out from flat offset T-1.
  auto rows = torch::constant_pad_nd(per_key, {0, t - 2}).reshape(flat_shape);
  return torch::constant_pad_nd(rows, {t - 1, 1}).view(out_shape);
}

RelativePositionAttentionImpl::RelativePositionAttentionImpl(int64_t hidden_size, int64_t num_heads,
                                                             int64_t max_length, double dropout)
    : hidden_size_(hidden_size),
      num_heads_(num_heads),
      head_size_(num_heads > 0 ? hidden_size / num_heads : 0),
      max_length_(max_length),
      dropout_(dropout) {
  if (hidden_size < 1 || num_heads < 1 || hidden_size % num_heads != 0) {
    throw Error("RelativePositionAttention: hidden_size " + std::to_string(hidden_size) +
                " must be a positive multiple of num_attention_heads " + std::to_string(num_heads));
  }
  linear_q = register_module("linear_q", torch::nn::Linear(hidden_size, hidden_size));
  linear_k = register_module("linear_k", torch::nn::Linear(hidden_size, hidden_size));
  linear_v = register_module("linear_v", torch::nn::Linear(hidden_size, hidden_size));
  linear_out = register_module("linear_out", torch::nn::Linear(hidden_size, hidden_size));
  relative_position_k =
      register_module("relative_position_k", RelativePositionEncoder(head_size_, max_length));
  relative_position_v =
      register_module("relative_position_v", RelativePositionEncoder(head_size_, max_length));
  query_bias1 = register_parameter("query_bias1", torch::zeros({num_heads, head_size_}));
  query_bias2 = register_parameter("query_bias2", torch::zeros({num_heads, head_size_}));
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(linear_q->weight);
  torch::nn::init::xavier_uniform_(linear_k->weight);
  torch::nn::init::xavier_uniform_(linear_v->weight);
}

at::Tensor RelativePositionAttentionImpl::forward(const at::Tensor& x, const at::Tensor& key_mask) {
  if (x.dim() != 3 || x.size(2) != hidden_size_) {
    throw Error("RelativePositionAttention: expected (B, T, " + std::to_string(hidden_size_) +
                ") input, got " + c10::str(x.sizes()));
  }
  const int64_t b = x.size(0), t = x.size(1), h = num_heads_, d = head_size_;
  auto e_k = relative_position_k->rows_for_length(t);  // throws when t > max_length
  auto e_v = relative_position_v->rows_for_length(t);
  if (t == 0) return linear_out(x);

  auto q = linear_q(x).view({b, t, h, d}).transpose(1, 2);  // (B, h, T, d)
  // The key bias adds (q + u) . b_k to every score of a query row, which softmax cancels: it is
  // left out (b_k * 0: it stays in the weights, for the reference's key names, with an exactly
  // zero gradient). Kept, its gradient would be rounding noise that AdamW turns into lr-sized
  // steps (harmless, but it makes runs that differ only in summation order drift apart).
  auto k =
      torch::linear(x, linear_k->weight, linear_k->bias * 0.0).view({b, t, h, d}).transpose(1, 2);
  auto v = linear_v(x).view({b, t, h, d}).transpose(1, 2);
  // 1/sqrt(d) is folded into the queries (a (B, h, T, d) pass instead of two (B, h, T, T) ones);
  // the rounding differs from the reference's (content + position) / sqrt(d) by about one ulp.
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  auto q_content = (q + query_bias1.unsqueeze(1)) * scale;  // (h, 1, d) broadcast
  auto q_position = (q + query_bias2.unsqueeze(1)) * scale;

  at::Tensor scores;  // (B, h, T, T)
  if (naive_) {
    auto table = relative_position_k->full_table(t);  // (T, T, d)
    auto position = torch::bmm(q_position.permute({2, 0, 1, 3}).reshape({t, b * h, d}),
                               table.transpose(1, 2))  // (T, B·h, T)
                        .transpose(0, 1)
                        .reshape({b, h, t, t});
    scores = torch::matmul(q_content, k.transpose(-1, -2)) + position;
  } else {
    // The skewed position term is the accumulator of the content product: one pass fewer.
    auto position = relative_to_absolute(torch::matmul(q_position, e_k.t()));  // (B, h, T, T)
    scores = torch::baddbmm(position.reshape({b * h, t, t}), q_content.reshape({b * h, t, d}),
                            k.transpose(-1, -2).reshape({b * h, d, t}))
                 .view({b, h, t, t});
  }
  if (key_mask.defined()) {
    if (key_mask.dim() != 2 || key_mask.size(0) != b || key_mask.size(1) != t) {
      throw Error("RelativePositionAttention: key mask must be (" + std::to_string(b) + ", " +
                  std::to_string(t) + "), got " + c10::str(key_mask.sizes()));
    }
    // A batch without padding (every clip as long as the longest) needs no fill.
    if (!key_mask.all().item<bool>()) {
      scores = scores.masked_fill(key_mask.logical_not().view({b, 1, 1, t}),
                                  lowest_value(scores.scalar_type()));
    }
  }
  auto probs = nn::dropout(torch::softmax(scores, -1), dropout_, is_training());

  at::Tensor out = torch::matmul(probs, v);  // (B, h, T, d)
  if (naive_) {
    auto table = relative_position_v->full_table(t);
    out = out + torch::bmm(probs.permute({2, 0, 1, 3}).reshape({t, b * h, t}), table)
                    .transpose(0, 1)
                    .reshape({b, h, t, d});
  } else {
    out = out + torch::matmul(absolute_to_relative(probs), e_v);
  }
  return linear_out(out.transpose(1, 2).reshape({b, t, hidden_size_}));
}

void RelativePositionAttentionImpl::pretty_print(std::ostream& stream) const {
  stream << "hear::nn::RelativePositionAttention(hidden=" << hidden_size_
         << ", heads=" << num_heads_ << ", head_size=" << head_size_
         << ", max_length=" << max_length_ << ", dropout=" << dropout_ << (naive_ ? ", naive" : "")
         << ", params=" << format_count(count_parameters(*this)) << ")";
}

void set_naive_attention(torch::nn::Module& module, bool naive) {
  if (auto* self = dynamic_cast<RelativePositionAttentionImpl*>(&module)) self->set_naive(naive);
  for (const auto& m : module.modules(/*include_self=*/false)) {
    if (auto* attn = dynamic_cast<RelativePositionAttentionImpl*>(m.get())) attn->set_naive(naive);
  }
}

}  // namespace hear::nn
