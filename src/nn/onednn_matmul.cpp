#include "hear/nn/onednn_matmul.h"

#include <cstdlib>
#include <mutex>
#include <string>

#include "hear/error.h"
#include "hear/nn/kernel_override.h"

#ifdef HEAR_HAVE_ONEDNN
#include <ATen/ops/addmm_cpu_dispatch.h>
#include <ATen/ops/baddbmm_cpu_dispatch.h>
#include <ATen/ops/bmm_cpu_dispatch.h>
#include <ATen/ops/mm_cpu_dispatch.h>
#include <c10/util/Exception.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <dnnl.hpp>

#include "hear/nn/int8_linear.h"
#endif

namespace hear::nn {

#ifdef HEAR_HAVE_ONEDNN
namespace {

constexpr double kMinMacs = 64.0 * 64.0 * 64.0;  // below: LibTorch's kernel (call overhead)

bool installed = false;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// A (B, R, C) operand as oneDNN sees it: its inner two dims row- or column-major (a transpose is
// a stride), the batch dim any stride, or broadcast (stride 0) as a batch of 1.
dnnl::memory::desc operand_desc(const at::Tensor& t) {
  const auto s = t.strides();
  const int64_t batch = t.size(0) > 1 && s[0] == 0 ? 1 : t.size(0);
  const int64_t batch_stride = batch == 1 ? t.size(1) * t.size(2) : s[0];
  return dnnl::memory::desc({batch, t.size(1), t.size(2)}, dnnl::memory::data_type::f32,
                            {batch_stride, s[1], s[2]});
}

bool plain(const at::Tensor& t) {  // (B, R, C)
  const auto s = t.strides();
  const int64_t r = t.size(1), c = t.size(2);
  const bool row_major = (s[2] == 1 || c == 1) && s[1] >= c;
  const bool col_major = (s[1] == 1 || r == 1) && s[2] >= r;
  return (row_major || col_major) && s[0] >= 0;
}

bool eligible(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat && a.numel() > 0 &&
         b.numel() > 0 && !a.is_complex() &&
         static_cast<double>(a.size(-2)) * a.size(-1) * b.size(-1) *
                 std::max<int64_t>(1, a.dim() == 3 ? a.size(0) : 1) >=
             kMinMacs;
}

// out (B, M, N) contiguous  =  alpha * a (B|1, M, K) @ b (B|1, K, N) [+ bias (N)] [+ beta * out]
void gemm(const at::Tensor& a_in, const at::Tensor& b_in, at::Tensor& out, const at::Tensor& bias,
          float alpha, float beta) {
  const at::Tensor a = plain(a_in) ? a_in : a_in.contiguous();
  const at::Tensor b = plain(b_in) ? b_in : b_in.contiguous();
  const dnnl::memory::desc a_md = operand_desc(a), b_md = operand_desc(b);
  const dnnl::memory::desc c_md({out.size(0), out.size(1), out.size(2)},
                                dnnl::memory::data_type::f32, dnnl::memory::format_tag::abc);
  dnnl::primitive_attr attr;
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  dnnl::memory::desc bias_md;
  if (bias.defined()) {
    bias_md = dnnl::memory::desc({1, 1, out.size(2)}, dnnl::memory::data_type::f32,
                                 dnnl::memory::format_tag::abc);
  }
  // oneDNN caches primitives by description: repeated shapes skip the kernel generation.
  const auto pd =
      dnnl::matmul::primitive_desc(bias.defined() ? dnnl::matmul::desc(a_md, b_md, bias_md, c_md)
                                                  : dnnl::matmul::desc(a_md, b_md, c_md),
                                   attr, engine());
  dnnl::stream stream(engine());
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, dnnl::memory(a_md, engine(), a.data_ptr())},
      {DNNL_ARG_WEIGHTS, dnnl::memory(b_md, engine(), b.data_ptr())},
      {DNNL_ARG_DST, dnnl::memory(c_md, engine(), out.data_ptr())}};
  if (bias.defined()) args.emplace(DNNL_ARG_BIAS, dnnl::memory(bias_md, engine(), bias.data_ptr()));
  dnnl::matmul(pd).execute(stream, args);
  stream.wait();
}

at::Tensor mm_kernel(const at::Tensor& self, const at::Tensor& mat2) {
  if (auto int8 = int8_product(self, mat2)) return *int8;
  if (self.dim() != 2 || mat2.dim() != 2 || self.size(1) != mat2.size(0) || !eligible(self, mat2)) {
    return at::cpu::mm(self, mat2);
  }
  at::Tensor out = at::empty({1, self.size(0), mat2.size(1)}, self.options());
  gemm(self.unsqueeze(0), mat2.unsqueeze(0), out, at::Tensor(), 1.0f, 0.0f);
  return out.squeeze(0);
}

at::Tensor bmm_kernel(const at::Tensor& self, const at::Tensor& mat2) {
  if (self.dim() != 3 || mat2.dim() != 3 || self.size(0) != mat2.size(0) ||
      self.size(2) != mat2.size(1) || !eligible(self, mat2)) {
    return at::cpu::bmm(self, mat2);
  }
  at::Tensor out = at::empty({self.size(0), self.size(1), mat2.size(2)}, self.options());
  gemm(self, mat2, out, at::Tensor(), 1.0f, 0.0f);
  return out;
}

// beta * self + alpha * (a @ b) for 3-D a, b (self broadcast to the result).
at::Tensor add_product(const at::Tensor& self, const at::Tensor& a, const at::Tensor& b,
                       const at::Scalar& beta, const at::Scalar& alpha) {
  const float fb = beta.to<float>(), fa = alpha.to<float>();
  at::Tensor out = at::empty({a.size(0), a.size(1), b.size(2)}, a.options());
  const bool vector_bias = self.scalar_type() == at::kFloat && fb == 1.0f && fa == 1.0f &&
                           self.numel() == b.size(2) && self.size(-1) == b.size(2) &&
                           self.is_contiguous();
  if (vector_bias) {
    gemm(a, b, out, self, 1.0f, 0.0f);
  } else {
    if (fb != 0.0f) out.copy_(self.expand_as(out));
    gemm(a, b, out, at::Tensor(), fa, fb);
  }
  return out;
}

at::Tensor addmm_kernel(const at::Tensor& self, const at::Tensor& mat1, const at::Tensor& mat2,
                        const at::Scalar& beta, const at::Scalar& alpha) {
  if (beta.to<float>() == 1.0f && alpha.to<float>() == 1.0f && self.dim() <= 2) {
    if (auto int8 = int8_product(mat1, mat2)) return int8->add_(self);
  }
  if (mat1.dim() != 2 || mat2.dim() != 2 || mat1.size(1) != mat2.size(0) ||
      self.scalar_type() != at::kFloat || !eligible(mat1, mat2) || self.dim() > 2) {
    return at::cpu::addmm(self, mat1, mat2, beta, alpha);
  }
  return add_product(self, mat1.unsqueeze(0), mat2.unsqueeze(0), beta, alpha).squeeze(0);
}

at::Tensor baddbmm_kernel(const at::Tensor& self, const at::Tensor& b1, const at::Tensor& b2,
                          const at::Scalar& beta, const at::Scalar& alpha) {
  if (b1.dim() != 3 || b2.dim() != 3 || b1.size(0) != b2.size(0) || b1.size(2) != b2.size(1) ||
      self.scalar_type() != at::kFloat || !eligible(b1, b2) || self.dim() > 3) {
    return at::cpu::baddbmm(self, b1, b2, beta, alpha);
  }
  return add_product(self, b1, b2, beta, alpha);
}

}  // namespace

bool onednn_matmul_available() {
  return true;
}

bool onednn_matmul_installed() {
  return installed;
}

void install_onednn_matmul() {
  static std::once_flag once;
  std::call_once(once, [] {
    override_aten_kernels(c10::DispatchKey::CPU, [](torch::Library& library) {
      library.impl("mm", TORCH_FN(mm_kernel));
      library.impl("bmm", TORCH_FN(bmm_kernel));
      library.impl("addmm", TORCH_FN(addmm_kernel));
      library.impl("baddbmm", TORCH_FN(baddbmm_kernel));
    });
    installed = true;
  });
}

#else

bool onednn_matmul_available() {
  return false;
}
bool onednn_matmul_installed() {
  return false;
}
void install_onednn_matmul() {
  throw Error("oneDNN matrix products: this build has no oneDNN (install libdnnl-dev and rebuild)");
}

#endif

void apply_matmul_from_environment() {
  const char* value = std::getenv("HEAR_MATMUL");
  const std::string choice = value ? value : "";
  if (choice.empty()) {
    if (onednn_matmul_available()) install_onednn_matmul();
  } else if (choice == "onednn") {
    install_onednn_matmul();
  } else if (choice != "blas") {
    throw Error("HEAR_MATMUL='" + choice + "': expected onednn or blas");
  }
}

}  // namespace hear::nn
