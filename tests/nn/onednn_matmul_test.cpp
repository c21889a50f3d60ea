// nn::install_onednn_matmul: aten::mm / addmm / bmm / baddbmm through oneDNN agree with
// LibTorch's own CPU kernels (at::cpu::*) for every operand layout the models produce
// (transposed, sliced, broadcast batch, bias, alpha/beta), small and non-float cases still work,
// and a training step's gradients match the BLAS ones.
#include <ATen/ops/addmm_cpu_dispatch.h>
#include <ATen/ops/baddbmm_cpu_dispatch.h>
#include <ATen/ops/bmm_cpu_dispatch.h>
#include <ATen/ops/mm_cpu_dispatch.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hear/nn/onednn_matmul.h"

namespace hear::nn {
namespace {

void expect_close(const at::Tensor& got, const at::Tensor& want, const char* what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double scale = want.abs().max().item<double>() + 1e-12;
  EXPECT_LT((got - want).abs().max().item<double>() / scale, 1e-5) << what;
}

class OnednnMatmul : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!onednn_matmul_available()) GTEST_SKIP() << "built without oneDNN";
    install_onednn_matmul();
    ASSERT_TRUE(onednn_matmul_installed());
  }
};

TEST_F(OnednnMatmul, AgreesWithLibTorchForEveryLayout) {
  torch::manual_seed(0);
  const at::Tensor a = torch::randn({150, 96}), b = torch::randn({96, 130});
  expect_close(torch::mm(a, b), at::cpu::mm(a, b), "mm");
  const at::Tensor at_ = torch::randn({96, 150}).t(), bt = torch::randn({130, 96}).t();
  expect_close(torch::mm(at_, bt), at::cpu::mm(at_, bt), "mm transposed");
  const at::Tensor wide = torch::randn({150, 200});
  const at::Tensor sliced = wide.narrow(1, 10, 96);  // row stride 200
  expect_close(torch::mm(sliced, b), at::cpu::mm(sliced, b), "mm sliced");
  const at::Tensor strided = torch::randn({150, 192}).slice(1, 0, 192, 2);  // no unit stride
  expect_close(torch::mm(strided, b), at::cpu::mm(strided, b), "mm strided");

  const at::Tensor bias = torch::randn({130});
  expect_close(torch::addmm(bias, a, b), at::cpu::addmm(bias, a, b), "addmm bias");
  const at::Tensor full = torch::randn({150, 130});
  expect_close(torch::addmm(full, a, b, 0.5, 2.0), at::cpu::addmm(full, a, b, 0.5, 2.0),
               "addmm beta alpha");
  expect_close(torch::addmm(full, a, b, 0.0, 1.0), at::cpu::addmm(full, a, b, 0.0, 1.0),
               "addmm beta 0");
  const at::Tensor w = torch::randn({64, 96}), wb = torch::randn({64});
  expect_close(torch::nn::functional::linear(a, w, wb), at::cpu::addmm(wb, a, w.t()), "linear");

  const at::Tensor x = torch::randn({8, 40, 96}), y = torch::randn({8, 96, 50});
  expect_close(torch::bmm(x, y), at::cpu::bmm(x, y), "bmm");
  const at::Tensor xt = torch::randn({8, 96, 40}).transpose(1, 2);
  expect_close(torch::bmm(xt, y), at::cpu::bmm(xt, y), "bmm transposed");
  const at::Tensor shared = torch::randn({96, 50}).unsqueeze(0).expand({8, 96, 50});  // stride 0
  expect_close(torch::bmm(x, shared), at::cpu::bmm(x, shared), "bmm broadcast");
  const at::Tensor acc = torch::randn({8, 40, 50});
  expect_close(torch::baddbmm(acc, x, y), at::cpu::baddbmm(acc, x, y), "baddbmm");
  expect_close(torch::baddbmm(acc, x, y, 0.25, -1.5), at::cpu::baddbmm(acc, x, y, 0.25, -1.5),
               "baddbmm beta alpha");
  const at::Tensor row = torch::randn({1, 40, 50});
  expect_close(torch::baddbmm(row, x, y), at::cpu::baddbmm(row, x, y), "baddbmm broadcast self");
  // 4-D matmul (attention) folds into bmm / mm.
  const at::Tensor q = torch::randn({2, 4, 60, 32}), k = torch::randn({2, 4, 60, 32});
  expect_close(torch::matmul(q, k.transpose(-1, -2)),
               at::cpu::bmm(q.reshape({8, 60, 32}), k.reshape({8, 60, 32}).transpose(1, 2))
                   .view({2, 4, 60, 60}),
               "matmul 4-D");
}

TEST_F(OnednnMatmul, SmallEmptyAndOtherDtypesUseLibTorch) {
  const at::Tensor a = torch::randn({3, 4}), b = torch::randn({4, 5});
  expect_close(torch::mm(a, b), at::cpu::mm(a, b), "small");
  const at::Tensor ad = torch::randn({100, 100}, torch::kDouble);
  EXPECT_EQ(torch::mm(ad, ad).scalar_type(), torch::kDouble);
  EXPECT_TRUE(torch::allclose(torch::mm(ad, ad), at::cpu::mm(ad, ad)));
  EXPECT_EQ(torch::mm(torch::randn({0, 100}), torch::randn({100, 100})).sizes(),
            (std::vector<int64_t>{0, 100}));
  EXPECT_THROW(torch::mm(torch::randn({100, 99}), torch::randn({100, 100})), c10::Error);
}

TEST_F(OnednnMatmul, GradientsMatchLibTorchsKernels) {
  // A linear + attention-like block in float32 (oneDNN) against the same in float64 (LibTorch's
  // kernels: oneDNN takes float32 only): every backward product goes through the kernels too.
  torch::manual_seed(1);
  const at::Tensor x0 = torch::randn({4, 80, 64}), w0 = torch::randn({128, 64}) * 0.1;
  const at::Tensor b0 = torch::randn({128});
  auto grads = [&](at::ScalarType dtype) {
    const at::Tensor w = w0.to(dtype).clone().set_requires_grad(true);
    const at::Tensor bias = b0.to(dtype).clone().set_requires_grad(true);
    const at::Tensor h = torch::nn::functional::linear(x0.to(dtype), w, bias);
    (torch::bmm(h, h.transpose(1, 2)) * 0.01).softmax(-1).pow(2).sum().backward();
    return std::make_pair(w.grad().to(torch::kDouble), bias.grad().to(torch::kDouble));
  };
  const auto [gw, gb] = grads(torch::kFloat);
  const auto [rw, rb] = grads(torch::kDouble);
  const double scale_w = rw.abs().max().item<double>(), scale_b = rb.abs().max().item<double>();
  EXPECT_GT(scale_w, 0);
  EXPECT_LT((gw - rw).abs().max().item<double>() / scale_w, 1e-4);
  EXPECT_LT((gb - rb).abs().max().item<double>() / scale_b, 1e-4);
}

TEST_F(OnednnMatmul, RepeatedTrainingIsBitwiseIdentical) {
  // What resume's exactness needs: the same steps from the same state give the same bits.
  auto train = [] {
    torch::manual_seed(5);
    torch::nn::Sequential m(torch::nn::Linear(96, 256), torch::nn::SiLU(),
                            torch::nn::Linear(256, 96));
    torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-3));
    for (int step = 0; step < 5; ++step) {
      const at::Tensor x = torch::randn({200, 96});
      opt.zero_grad();
      torch::mse_loss(m->forward(x), x.flip(1)).backward();
      opt.step();
    }
    return m;
  };
  const auto a = train(), b = train();
  const auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;
}

}  // namespace
}  // namespace hear::nn
