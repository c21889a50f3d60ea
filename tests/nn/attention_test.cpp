// The relative-position attention against a direct transcription of the reference formula
// with explicit (T, T, d) tables, the skew helpers, masking, length limits and the layer stack.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hear/error.h"
#include "hear/nn/patch_embedding.h"
#include "hear/nn/relative_attention.h"
#include "hear/nn/relative_transformer.h"
#include "hear/nn/util.h"
#include "test_util.h"

namespace hear::nn {
namespace {

// s_ij = [(q_i + u)·k_j + (q_i + v)·E_K[j-i+L]] / sqrt(d); out_i = Σ_j p_ij (v_j + E_V[j-i+L]),
// written with explicit (T, T, d) gathered tables and einsum.
at::Tensor naive_relative_attention(RelativePositionAttentionImpl& m, const at::Tensor& x,
                                    const at::Tensor& key_mask) {
  const int64_t b = x.size(0), t = x.size(1), h = m.num_heads(), d = m.head_size();
  const int64_t l = m.max_length();
  auto q = m.linear_q(x).view({b, t, h, d});
  auto k = m.linear_k(x).view({b, t, h, d});
  auto v = m.linear_v(x).view({b, t, h, d});
  auto r = torch::arange(t);
  auto idx = r.unsqueeze(0) - r.unsqueeze(1) + l;                              // [i][j] = j - i + L
  auto ek = m.relative_position_k->positional_embedding->weight.index({idx});  // (T, T, d)
  auto ev = m.relative_position_v->positional_embedding->weight.index({idx});
  auto s = torch::einsum("bihd,bjhd->bhij", {q + m.query_bias1, k}) +
           torch::einsum("bihd,ijd->bhij", {q + m.query_bias2, ek});
  s = s / std::sqrt(static_cast<double>(d));
  s = s.masked_fill(key_mask.logical_not().view({b, 1, 1, t}),
                    std::numeric_limits<float>::lowest());
  auto p = torch::softmax(s, -1);
  auto out = torch::einsum("bhij,bjhd->bihd", {p, v}) + torch::einsum("bhij,ijd->bihd", {p, ev});
  return m.linear_out(out.reshape({b, t, h * d}));
}

RelativePositionAttention random_attention(int64_t hidden, int64_t heads, int64_t max_length) {
  RelativePositionAttention m(hidden, heads, max_length, 0.1);
  torch::NoGradGuard no_grad;
  m->query_bias1.normal_();  // zero-initialized: make the bias terms count
  m->query_bias2.normal_();
  m->eval();
  return m;
}

TEST(RelativeAttention, SkewHelpersAreExactAndAdjoint) {
  for (int64_t t : {1, 2, 3, 7}) {
    auto per_offset = torch::randn({2, t, 2 * t - 1});
    auto abs = relative_to_absolute(per_offset);
    ASSERT_EQ(abs.sizes(), (std::vector<int64_t>{2, t, t}));
    for (int64_t i = 0; i < t; ++i) {
      for (int64_t j = 0; j < t; ++j) {
        EXPECT_EQ(abs[1][i][j].item<float>(), per_offset[1][i][j - i + t - 1].item<float>());
      }
    }
    // <rel_to_abs(A), B> == <A, abs_to_rel(B)>, and abs_to_rel puts zeros elsewhere.
    auto per_key = torch::randn({2, t, t});
    auto rel = absolute_to_relative(per_key);
    EXPECT_NEAR((abs * per_key).sum().item<double>(), (per_offset * rel).sum().item<double>(),
                1e-4);
    EXPECT_TRUE(torch::equal(relative_to_absolute(rel), per_key));
    EXPECT_NEAR(rel.abs().sum().item<double>(), per_key.abs().sum().item<double>(), 1e-4);
  }
}

TEST(RelativeAttention, FastEqualsNaiveWithPadding) {
  torch::manual_seed(0);
  auto m = random_attention(24, 3, 40);
  auto x = torch::randn({3, 37, 24});
  auto lengths = torch::tensor({37, 20, 1}, torch::kLong);
  auto mask = lengths_to_mask(lengths, 37);
  torch::NoGradGuard no_grad;
  auto fast = m(x, mask);
  auto naive = naive_relative_attention(*m, x, mask);
  EXPECT_LE(test::max_abs_diff(fast, naive), 1e-5);
  m->set_naive(true);  // the library's reference-style path agrees too
  EXPECT_LE(test::max_abs_diff(m(x, mask), naive), 1e-5);
  // Valid rows of a padded clip equal the clip alone (padded keys get zero probability).
  m->set_naive(false);
  auto alone = m(x.narrow(0, 1, 1).narrow(1, 0, 20), torch::ones({1, 20}, torch::kBool));
  EXPECT_LE(test::max_abs_diff(fast.narrow(0, 1, 1).narrow(1, 0, 20), alone), 1e-5);
}

TEST(RelativeAttention, FastGradientsEqualNaive) {
  torch::manual_seed(1);
  auto m = random_attention(16, 2, 12);
  auto x = torch::randn({2, 12, 16}, torch::requires_grad());
  auto mask = lengths_to_mask(torch::tensor({12, 7}, torch::kLong), 12);
  auto w = torch::randn({2, 12, 16});
  auto grads = [&](bool use_naive) {
    m->zero_grad();
    if (x.grad().defined()) x.grad().zero_();
    auto y = use_naive ? naive_relative_attention(*m, x, mask) : m(x, mask);
    (y * w).sum().backward();
    std::vector<at::Tensor> g{x.grad().clone()};
    for (auto& p : m->parameters()) g.push_back(p.grad().clone());
    return g;
  };
  auto fast = grads(false), naive = grads(true);
  ASSERT_EQ(fast.size(), naive.size());
  for (size_t i = 0; i < fast.size(); ++i)
    EXPECT_LE(test::max_abs_diff(fast[i], naive[i]), 1e-4) << i;
}

TEST(RelativeAttention, LengthLimitIsAClearError) {
  auto m = random_attention(8, 2, 10);
  torch::NoGradGuard no_grad;
  EXPECT_NO_THROW(m(torch::randn({1, 10, 8})));  // T == max_length: offsets -9..9 fit
  try {
    m(torch::randn({1, 11, 8}));
    FAIL() << "T > max_length must throw";
  } catch (const hear::Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_length 10"), std::string::npos) << e.what();
  }
  EXPECT_THROW(m(torch::randn({1, 5, 9})), hear::Error);  // wrong width
}

TEST(RelativeAttention, DropoutOnlyInTraining) {
  torch::manual_seed(2);
  auto m = random_attention(8, 2, 16);
  auto x = torch::randn({1, 16, 8});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(m(x), m(x)));
  m->train();
  EXPECT_FALSE(torch::equal(m(x), m(x)));
}

TEST(ContextualEncoder, KeyNamesAndPaddingIndependence) {
  TransformerOptions o;
  o.hidden_size = 16;
  o.intermediate_size = 24;
  o.num_attention_heads = 2;
  o.num_transformer_layers = 2;
  o.max_length = 32;
  ContextualEncoder enc(o);
  enc->eval();
  auto names = enc->named_parameters().keys();
  EXPECT_NE(std::find(names.begin(), names.end(),
                      "layers.1.self_attn.relative_position_k.positional_embedding.weight"),
            names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "layers.0.ffn.intermediate_dense.weight"),
            names.end());
  EXPECT_EQ(names.size(), 2u * 22u);
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 30, 16});
  auto y = enc(x, torch::tensor({30, 13}, torch::kLong));
  auto alone = enc(x.narrow(0, 1, 1).narrow(1, 0, 13), torch::tensor({13}, torch::kLong));
  EXPECT_LE(test::max_abs_diff(y.narrow(0, 1, 1).narrow(1, 0, 13), alone), 1e-5);
  EXPECT_THROW(enc(torch::randn({1, 33, 16}), torch::tensor({33}, torch::kLong)), hear::Error);
  TransformerOptions bad = o;
  bad.num_attention_heads = 3;
  EXPECT_THROW(ContextualEncoder{bad}, hear::Error);
}

TEST(PatchEmbedding, HalvesFramesAndLengths) {
  PatchEmbedding pe(128, 8);
  auto out = pe(torch::randn({2, 128, 11}), torch::tensor({11, 6}, torch::kLong));
  EXPECT_EQ(out.values.sizes(), (std::vector<int64_t>{2, 5, 8}));
  EXPECT_TRUE(torch::equal(out.lengths, torch::tensor({5, 3}, torch::kLong)));
  EXPECT_GE(out.values.min().item<float>(), 0.0f);  // ReLU
  EXPECT_THROW(pe(torch::randn({2, 64, 11}), torch::tensor({11, 6})), hear::Error);
  EXPECT_THROW(pe(torch::randn({2, 128, 11}), torch::tensor({11})), hear::Error);
  // Float lengths (as the reference carries them) are floored.
  EXPECT_TRUE(torch::equal(pe(torch::randn({1, 128, 8}), torch::tensor({7.0f})).lengths,
                           torch::tensor({3}, torch::kLong)));
}

}  // namespace
}  // namespace hear::nn
