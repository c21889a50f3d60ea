#include "hear/bench/op_counter.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hear/audio/frontend.h"
#include "hear/bench/cost_model.h"
#include "hear/error.h"
#include "hear/models/hear_classifier.h"
#include "hear/nn/relative_attention.h"

namespace hear::bench {
namespace {

TEST(ExecutedMacCounter, HandComputedProducts) {
  torch::InferenceMode guard;
  torch::manual_seed(0);
  ExecutedMacCounter counter;
  EXPECT_THROW(ExecutedMacCounter{}, Error);  // callbacks are process-wide: one at a time
  torch::nn::Linear linear(3, 4);
  linear(torch::randn({5, 3}));                                           // 5·3·4 = 60
  linear(torch::randn({2, 5, 3}));                                        // 10·3·4 = 120
  torch::bmm(torch::randn({2, 3, 4}), torch::randn({2, 4, 5}));           // 2·3·4·5 = 120
  torch::matmul(torch::randn({2, 2, 3, 4}), torch::randn({2, 2, 4, 5}));  // 4·3·4·5 = 240
  torch::nn::Conv1d conv(torch::nn::Conv1dOptions(8, 6, 2).stride(2));
  conv(torch::randn({1, 8, 10}));  // 5·6·(8·2) = 480
  torch::nn::Conv2d conv2(torch::nn::Conv2dOptions(4, 6, 3).groups(2).padding(1));
  conv2(torch::randn({1, 4, 5, 5}));  // 25·6·(2·9) = 2700
  torch::relu(torch::randn({100}));   // not counted
  const auto r = counter.result();
  EXPECT_EQ(r.total, 60 + 120 + 120 + 240 + 480 + 2700);
  EXPECT_EQ(r.by_op.at("aten::convolution"), 480 + 2700);
}

// The analytic cost model against what a 10 s forward of the paper's classifier executes. The
// direct ("naive") attention computes exactly the products the cost model counts; the fast one
// computes the two relative-position products against the 2T-1 distinct offsets, T·(2T-1)·d
// instead of T·T·d each, per head, layer and window.
TEST(ExecutedMacCounter, MatchesTheCostModelForTenSeconds) {
  torch::InferenceMode guard;
  torch::manual_seed(0);
  models::HearClassifierOptions options;
  options.decoder.num_classes = 50;
  models::HearClassifier model(options);
  model->eval();
  const int64_t samples = 160000;
  const auto features =
      audio::Frontend()(torch::randn({1, samples}) * 0.1, torch::tensor({samples}, torch::kLong));
  const auto analytic = count_hear_classifier(options, samples);
  const auto& g = analytic.geometry;
  ASSERT_EQ(g.windows, 2);
  ASSERT_EQ(g.window_tokens, 300);

  nn::set_naive_attention(*model, true);
  int64_t naive = 0;
  {
    ExecutedMacCounter counter;
    model->forward(features);
    naive = counter.result().total;
  }
  EXPECT_EQ(naive, analytic.total_macs);

  nn::set_naive_attention(*model, false);
  int64_t fast = 0;
  {
    ExecutedMacCounter counter;
    model->forward(features);
    fast = counter.result().total;
  }
  const int64_t t = g.window_tokens, hidden = options.acoustic_model.hidden_size;
  const int64_t layers = options.acoustic_model.num_transformer_layers;
  EXPECT_EQ(fast - analytic.total_macs, 2 * g.windows * layers * t * (t - 1) * hidden);
}

}  // namespace
}  // namespace hear::bench
