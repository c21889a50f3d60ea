#include "hear/nn/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <mutex>

#include "hear/error.h"

namespace hear::nn {
namespace {

inline uint64_t mix(uint64_t z) {  // splitmix64's output function
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t draw_seed() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

}  // namespace

at::Tensor dropout_mask(const at::Tensor& like, double p, uint64_t seed) {
  if (!(p >= 0.0 && p <= 1.0))
    throw Error("dropout: p must be in [0, 1], got " + std::to_string(p));
  at::Tensor mask =
      torch::empty(like.sizes(), like.options().device(at::kCPU).requires_grad(false).memory_format(
                                     at::MemoryFormat::Contiguous));
  // Keep element i when the top 24 bits of its hash, as an integer, are >= p * 2^24.
  const uint64_t threshold = static_cast<uint64_t>(std::llround(p * 16777216.0));
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, mask.scalar_type(), "dropout_mask", [&] {
        const scalar_t keep = p < 1.0 ? static_cast<scalar_t>(1.0 / (1.0 - p)) : scalar_t(0);
        scalar_t* out = mask.data_ptr<scalar_t>();
        const uint64_t base = mix(seed);
        at::parallel_for(0, mask.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) {
            const uint64_t h = mix(base + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull);
            out[i] = (h >> 40) >= threshold ? keep : scalar_t(0);
          }
        });
      });
  return mask;
}

at::Tensor dropout(const at::Tensor& x, double p, bool training) {
  if (!training || p == 0.0) return x;
  if (!x.device().is_cpu()) return torch::dropout(x, p, training);
  // The mask is a constant of the graph: autograd's backward of the product is grad * mask.
  return x * dropout_mask(x, p, draw_seed());
}

}  // namespace hear::nn
