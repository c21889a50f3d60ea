#include "hear/train/optimizer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hear/error.h"
#include "hear/io/config.h"
#include "hear/train/metrics.h"
#include "hear/train/trainer.h"
#include "test_util.h"

namespace hear::train {
namespace {

TEST(Schedule, LinearWarmupThenCosineToMin) {
  ScheduleOptions o;
  o.warmup_steps = 10;
  o.min_lr = 1e-5;
  WarmupCosineSchedule s(1e-3, o, 110);
  EXPECT_DOUBLE_EQ(s.lr(0), 1e-4);
  EXPECT_DOUBLE_EQ(s.lr(4), 5e-4);
  EXPECT_DOUBLE_EQ(s.lr(9), 1e-3);
  EXPECT_DOUBLE_EQ(s.lr(10), 1e-3);
  EXPECT_NEAR(s.lr(60), (1e-3 + 1e-5) / 2, 1e-15);  // halfway through the cosine
  EXPECT_NEAR(s.lr(35), 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-15);
  EXPECT_DOUBLE_EQ(s.lr(110), 1e-5);
  EXPECT_DOUBLE_EQ(s.lr(5000), 1e-5);
  for (int64_t t = 10; t < 110; ++t) EXPECT_LE(s.lr(t + 1), s.lr(t)) << t;
  for (int64_t t = 0; t < 9; ++t) {
    EXPECT_NEAR(s.lr(t + 1) - s.lr(t), 1e-4, 1e-15) << t;  // linear warm-up
  }
  o.kind = ScheduleKind::kConstant;
  EXPECT_DOUBLE_EQ(WarmupCosineSchedule(1e-3, o, 110).lr(100), 1e-3);
  o.warmup_steps = 0;
  o.kind = ScheduleKind::kCosine;
  EXPECT_DOUBLE_EQ(WarmupCosineSchedule(1e-3, o, 110).lr(0), 1e-3);
  o.min_lr = 1.0;
  EXPECT_THROW(WarmupCosineSchedule(1e-3, o, 110), Error);
}

TEST(Optimizer, AdamWFirstStepMatchesTheFormula) {
  OptimizerOptions o;
  o.lr = 0.1;
  o.betas = {0.8, 0.9};
  o.eps = 1e-3;
  o.weight_decay = 0.5;
  auto p = torch::tensor({1.0f, -2.0f, 3.0f}).requires_grad_();
  auto opt = make_adamw({p}, o);
  const auto g = torch::tensor({0.5f, -0.01f, 0.0f});
  p.mutable_grad() = g.clone();
  opt->step();
  // Step 1: bias-corrected moments are g and g^2, so the update is lr * g / (|g| + eps).
  const auto p0 = torch::tensor({1.0f, -2.0f, 3.0f});
  const auto want = p0 * (1 - 0.1 * 0.5) - 0.1 * g / (g.abs() + 1e-3);
  EXPECT_TRUE(torch::allclose(p.detach(), want, 1e-6, 1e-7)) << p << want;
  set_learning_rate(*opt, 0.25);
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].options().get_lr(), 0.25);

  o.betas = {0.9};
  EXPECT_THROW(make_adamw({p}, o), Error);
  o.betas = {0.9, 1.0};
  EXPECT_THROW(make_adamw({p}, o), Error);
  o.betas = {0.9, 0.99};
  EXPECT_THROW(make_adamw({}, o), Error);
}

TEST(Optimizer, ClipGradientsScalesToTheGlobalNorm) {
  auto a = torch::zeros({2}, torch::requires_grad());
  auto b = torch::zeros({1}, torch::requires_grad());
  auto c = torch::zeros({1}, torch::requires_grad());  // no gradient: ignored
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  EXPECT_NEAR(clip_gradients({a, b, c}, 0.0), 5.0, 1e-6);  // measure only
  EXPECT_TRUE(torch::equal(b.grad(), torch::tensor({4.0f})));
  EXPECT_NEAR(clip_gradients({a, b, c}, 10.0), 5.0, 1e-6);  // under the limit: unchanged
  EXPECT_TRUE(torch::equal(b.grad(), torch::tensor({4.0f})));
  EXPECT_NEAR(clip_gradients({a, b, c}, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(a.grad()[0].item<float>(), 0.6f, 1e-5);
  EXPECT_NEAR(b.grad()[0].item<float>(), 0.8f, 1e-5);
  b.mutable_grad() = torch::tensor({NAN});
  EXPECT_TRUE(std::isnan(clip_gradients({a, b}, 1.0)));
}

struct OptimizerTestStage {
  TrainerOptions train;
  void define(io::ConfigSchema& s) { s.section("train", train); }
};

TEST(Optimizer, BetasErrorsNameTheDottedKey) {
  OptimizerTestStage c;
  test::expect_error_containing(
      [&] { io::load_config_into(c, std::nullopt, {"train.optimizer.betas=[0.9]"}); },
      {"config key 'train.optimizer.betas'", "2 values"});
  test::expect_error_containing(
      [&] { io::load_config_into(c, std::nullopt, {"train.optimizer.betas=[0.9, 1.0]"}); },
      {"config key 'train.optimizer.betas'", "above the maximum"});
  OptimizerOptions o;
  o.betas = {0.9, 0.999, 0.5};
  test::expect_error_containing([&] { io::validate_config(o, "train.optimizer"); },
                                {"config key 'train.optimizer.betas'", "got 3"});
}

}  // namespace
}  // namespace hear::train
