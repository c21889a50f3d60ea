#pragma once
// Multi-head self-attention with Shaw-style relative positions on keys and values plus
// Transformer-XL-style content/position query biases (docs/reference-notes.md §3):
//
//   s_ij  = [ (q_i + u_h)·k_j + (q_i + v_h)·E_K[j - i + L] ] / sqrt(d)
//   p_ij  = dropout(softmax_j(s_ij with padded keys set to finfo(float).min))
//   out_i = linear_out( concat_h Σ_j p_ij (v_j + E_V[j - i + L]) )
//
// E_K and E_V are (2L, d) tables shared by the heads of one layer. The relative terms never
// build a (T, T, d) tensor: (q + v)·E_Kᵀ is computed once per offset against the 2T - 1 table
// rows that can occur, (B, h, T, 2T-1), and skewed to (B, h, T, T) with a pad/reshape; for the
// values the probabilities are folded per offset into (B, h, T, 2T-1) and multiplied by the
// same rows of E_V. Same maths as the reference; the largest intermediate is (B, h, T, 2T-1)
// scores instead of the reference's (T, T, d) gathered tables and (T, B·h, T) reshuffles.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <ostream>

namespace hear::nn {

// The reference's RelativePositionEncoder: one (2·max_length, dim) table, key
// `positional_embedding.weight`.
class RelativePositionEncoderImpl : public torch::nn::Module {
 public:
  RelativePositionEncoderImpl(int64_t dim, int64_t max_length);
  // The 2T - 1 rows for offsets -(T-1) ... T-1, in that order: (2T - 1, dim).
  // Throws hear::Error when T > max_length (the reference crashes with an IndexError).
  at::Tensor rows_for_length(int64_t length) const;
  // The reference's gathered (T, T, dim) table, E[j - i + L] at [i][j]; for verification only.
  at::Tensor full_table(int64_t length) const;
  int64_t max_length() const { return max_length_; }
  void pretty_print(std::ostream& stream) const override;

  torch::nn::Embedding positional_embedding{nullptr};

 private:
  int64_t max_length_;
};
TORCH_MODULE(RelativePositionEncoder);

class RelativePositionAttentionImpl : public torch::nn::Module {
 public:
  RelativePositionAttentionImpl(int64_t hidden_size, int64_t num_heads, int64_t max_length,
                                double dropout);

  // x: (B, T, H); key_mask: (B, T) bool, true = valid key (undefined: every key valid).
  // Returns (B, T, H). Padded query rows are computed like the reference (not zeroed).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& key_mask = {});

  // Switches to the reference's formulation, which gathers (T, T, d) tables. Same results;
  // kept for verification and benchmarking only.
  void set_naive(bool naive) { naive_ = naive; }
  bool naive() const { return naive_; }

  int64_t hidden_size() const { return hidden_size_; }
  int64_t num_heads() const { return num_heads_; }
  int64_t head_size() const { return head_size_; }
  int64_t max_length() const { return max_length_; }
  void pretty_print(std::ostream& stream) const override;

  torch::nn::Linear linear_q{nullptr}, linear_k{nullptr}, linear_v{nullptr}, linear_out{nullptr};
  RelativePositionEncoder relative_position_k{nullptr}, relative_position_v{nullptr};
  at::Tensor query_bias1;  // (heads, d), u: content bias
  at::Tensor query_bias2;  // (heads, d), v: position bias

 private:
  int64_t hidden_size_, num_heads_, head_size_, max_length_;
  double dropout_;
  bool naive_ = false;
};
TORCH_MODULE(RelativePositionAttention);

// (…, T, 2T-1) scores per offset (column c = offset c - (T-1)) -> (…, T, T) with
// [i][j] = in[i][j - i + T - 1]. Differentiable; no gather index tensor.
at::Tensor relative_to_absolute(const at::Tensor& per_offset);
// The adjoint: (…, T, T) -> (…, T, 2T-1) with out[i][j - i + T - 1] = in[i][j], zero elsewhere.
at::Tensor absolute_to_relative(const at::Tensor& per_key);

// Sets every RelativePositionAttention inside `module` (recursively) to naive or fast mode.
void set_naive_attention(torch::nn::Module& module, bool naive);

}  // namespace hear::nn
