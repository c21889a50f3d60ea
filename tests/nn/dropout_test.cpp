// nn::dropout and nn/counter_random.h: the keep rate and scale, exactness of its random stream
// (manual_seed, thread count), the backward, and the identity outside training.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hear/nn/counter_random.h"
#include "hear/nn/dropout.h"

namespace hear::nn {
namespace {

TEST(Dropout, KeepsOneMinusPScaledByItsInverse) {
  torch::manual_seed(0);
  const at::Tensor x = torch::ones({400, 1000});
  for (double p : {0.1, 0.5, 0.9}) {
    const at::Tensor y = nn::dropout(x, p, /*training=*/true);
    const at::Tensor kept = y.ne(0);
    const double rate = kept.to(torch::kDouble).mean().item<double>();
    // 400k Bernoulli draws: 5 standard deviations of the rate.
    EXPECT_NEAR(rate, 1.0 - p, 5.0 * std::sqrt(p * (1 - p) / 4e5)) << "p = " << p;
    EXPECT_TRUE(torch::allclose(y.masked_select(kept),
                                torch::full({kept.sum().item<int64_t>()}, 1.0 / (1.0 - p))));
  }
  EXPECT_EQ(nn::dropout(x, 1.0, true).abs().sum().item<double>(), 0.0);
}

TEST(Dropout, NeighbouringElementsAreIndependent) {
  // A counter-based mask must not repeat patterns along the index: kept(i) vs kept(i+1).
  const at::Tensor m = dropout_mask(torch::ones({1 << 20}), 0.5, 1234).ne(0).to(torch::kDouble);
  const double both =
      (m.narrow(0, 0, m.size(0) - 1) * m.narrow(0, 1, m.size(0) - 1)).mean().item<double>();
  EXPECT_NEAR(both, 0.25, 5.0 * std::sqrt(0.25 * 0.75 / (1 << 20)));
}

TEST(Dropout, StreamFollowsManualSeedAndNotTheThreadCount) {
  const at::Tensor x = torch::randn({64, 300, 96});
  const int threads = at::get_num_threads();
  torch::manual_seed(7);
  at::set_num_threads(1);
  const at::Tensor a = nn::dropout(x, 0.1, true);
  const at::Tensor a2 = nn::dropout(x, 0.1, true);  // the next call draws a new seed
  torch::manual_seed(7);
  at::set_num_threads(2);
  const at::Tensor b = nn::dropout(x, 0.1, true);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, a2));
  EXPECT_TRUE(torch::equal(dropout_mask(x, 0.3, 99), dropout_mask(x, 0.3, 99)));
  EXPECT_FALSE(torch::equal(dropout_mask(x, 0.3, 99), dropout_mask(x, 0.3, 100)));
}

TEST(Dropout, BackwardMultipliesByTheSameMask) {
  torch::manual_seed(3);
  const at::Tensor x = torch::randn({8, 50, 32}, torch::requires_grad());
  const at::Tensor y = nn::dropout(x, 0.25, true);
  const at::Tensor g = torch::randn_like(y);
  y.backward(g);
  // y = x * mask, so mask = y / x where x != 0 and grad = g * mask.
  const at::Tensor mask = (y / x).detach();
  EXPECT_TRUE(torch::allclose(x.grad(), g * mask, 1e-6, 1e-6));
}

TEST(Dropout, IdentityOutsideTrainingOrAtZero) {
  const at::Tensor x = torch::randn({4, 5});
  EXPECT_TRUE(nn::dropout(x, 0.5, /*training=*/false).is_same(x));
  EXPECT_TRUE(nn::dropout(x, 0.0, true).is_same(x));
  EXPECT_THROW(dropout_mask(x, 1.5, 0), std::exception);
}

TEST(Dropout, HalfPrecisionMask) {
  const at::Tensor m = dropout_mask(torch::ones({1000}, torch::kBFloat16), 0.5, 5);
  EXPECT_EQ(m.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(((m == 0) | (m == 2)).all().item<bool>());
}

TEST(CounterRandom, GumbelNoiseHasGumbelMoments) {
  const at::Tensor g = gumbel_noise(torch::empty({1 << 20}), 42);
  EXPECT_EQ(g.scalar_type(), torch::kFloat);
  // Gumbel(0, 1): mean = Euler-Mascheroni, variance = pi^2 / 6.
  EXPECT_NEAR(g.mean().item<double>(), 0.5772157, 0.01);
  EXPECT_NEAR(g.var().item<double>(), M_PI * M_PI / 6, 0.02);
  EXPECT_LT(g.abs().max().item<double>(), 16.7);
  EXPECT_TRUE(torch::equal(g, gumbel_noise(torch::empty({1 << 20}), 42)));
}

TEST(CounterRandom, SeedsComeFromTheGivenGenerator) {
  at::Generator a = at::detail::createCPUGenerator(5), b = at::detail::createCPUGenerator(5);
  EXPECT_EQ(draw_seed(a), draw_seed(b));
  EXPECT_NE(draw_seed(a), draw_seed(a));
  torch::manual_seed(1);
  const uint64_t s = draw_seed();
  torch::manual_seed(1);
  EXPECT_EQ(draw_seed(), s);
}

}  // namespace
}  // namespace hear::nn

namespace hear::nn {
namespace {

TEST(CounterRandom, TheDevicePathDrawsTheCpuLoopsBits) {
  // The device path (LibTorch integer ops, used on CUDA) run on the CPU: the same 24-bit hashes
  // as the parallel loop, so a mask or noise tensor is the same wherever it is drawn.
  const at::Tensor like = torch::empty({7, 301, 5});
  for (const uint64_t seed : {uint64_t{0}, uint64_t{42}, ~uint64_t{0}}) {
    const at::Tensor bits = counter_hash_bits(like, seed);
    // u = (bits / 2 + 1/2) / 2^23 in float32, as both paths compute it; the keep rule bits >= p
    // 2^24.
    const at::Tensor u = bits.div(2, "floor").to(torch::kFloat).add_(0.5).mul_(1.0 / 8388608.0);
    EXPECT_TRUE(torch::equal(u, uniform_noise(like, seed))) << seed;
    EXPECT_TRUE(torch::equal(bits.ge(int64_t{5033165}),  // round(0.3 * 2^24)
                             dropout_mask(like, 0.3, seed).ne(0)))
        << seed;
    EXPECT_GE(bits.min().item<int64_t>(), 0);
    EXPECT_LT(bits.max().item<int64_t>(), 1 << 24);
  }
}

TEST(CounterRandom, TheTopHashValueGivesFiniteNoise) {
  // 2^25 draws hold the largest 24-bit hash; with (hash + 1/2) / 2^24 its float32 u rounded to 1.0
  // and its Gumbel noise was +inf (a NaN softmax about once per 2^24 elements).
  const at::Tensor like = torch::empty({1 << 25});
  const at::Tensor bits = counter_hash_bits(like, 1);
  ASSERT_TRUE(bits.eq((1 << 24) - 1).any().item<bool>());
  const at::Tensor u = uniform_noise(like, 1);
  EXPECT_LT(u.max().item<double>(), 1.0);
  EXPECT_GT(u.min().item<double>(), 0.0);
  EXPECT_TRUE(torch::isfinite(gumbel_noise(like, 1)).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(normal_noise(like, 1)).all().item<bool>());
}

TEST(Cuda, CounterRandomTensorsAreTheSameOnCudaAndTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this LibTorch build";
  const at::Tensor cpu = torch::ones({64, 300, 24});
  const at::Tensor cuda = cpu.to(at::kCUDA);
  EXPECT_TRUE(torch::equal(dropout_mask(cpu, 0.1, 9), dropout_mask(cuda, 0.1, 9).cpu()));
  EXPECT_TRUE(torch::equal(gumbel_noise(cpu, 9), gumbel_noise(cuda, 9).cpu()));
}

}  // namespace
}  // namespace hear::nn
