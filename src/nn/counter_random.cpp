#include "hear/nn/counter_random.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <mutex>
#include <string>

#include "hear/error.h"
#include "hear/nn/batch_shard.h"

namespace hear::nn {
namespace {

inline uint64_t mix(uint64_t z) {  // splitmix64's output function
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Calls fill(out, i, top24) for every element i with the top 24 bits of hash(seed, k * n + i):
// element i of shard k of a global batch of n-element shards (nn/batch_shard.h).
template <typename scalar_t, typename Fill>
void for_each_hash(at::Tensor& out, uint64_t seed, Fill fill) {
  scalar_t* data = out.data_ptr<scalar_t>();
  const uint64_t base = mix(seed);
  const uint64_t first =
      static_cast<uint64_t>(current_batch_shard().index) * static_cast<uint64_t>(out.numel());
  at::parallel_for(0, out.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const uint64_t counter = first + static_cast<uint64_t>(i);
      fill(data, i, mix(base + counter * 0x9E3779B97F4A7C15ull) >> 40);
    }
  });
}

at::Tensor empty_cpu_like(const at::Tensor& like, at::ScalarType dtype) {
  return torch::empty(like.sizes(), torch::TensorOptions().dtype(dtype).device(at::kCPU));
}

}  // namespace

uint64_t draw_seed(c10::optional<at::Generator> generator) {
  at::Generator gen = generator.has_value() && generator->defined()
                          ? *generator
                          : at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

at::Tensor dropout_mask(const at::Tensor& like, double p, uint64_t seed) {
  if (!(p >= 0.0 && p <= 1.0))
    throw Error("dropout: p must be in [0, 1], got " + std::to_string(p));
  at::Tensor mask = empty_cpu_like(like, like.scalar_type());
  const uint64_t threshold = static_cast<uint64_t>(std::llround(p * 16777216.0));
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, mask.scalar_type(), "dropout_mask", [&] {
        const scalar_t keep = p < 1.0 ? static_cast<scalar_t>(1.0 / (1.0 - p)) : scalar_t(0);
        for_each_hash<scalar_t>(mask, seed, [&](scalar_t* out, int64_t i, uint64_t bits) {
          out[i] = bits >= threshold ? keep : scalar_t(0);
        });
      });
  return mask;
}

at::Tensor uniform_noise(const at::Tensor& like, uint64_t seed) {
  at::Tensor u = empty_cpu_like(like, at::kFloat);
  for_each_hash<float>(u, seed, [](float* out, int64_t i, uint64_t bits) {
    out[i] = (static_cast<float>(bits) + 0.5f) * (1.0f / 16777216.0f);
  });
  return u;
}

at::Tensor gumbel_noise(const at::Tensor& like, uint64_t seed) {
  // The logarithms as LibTorch's vectorised kernels, in place.
  return uniform_noise(like, seed).log_().neg_().log_().neg_();
}

at::Tensor normal_noise(const at::Tensor& like, uint64_t seed) {
  // The inverse normal CDF: sqrt(2) erfinv(2u - 1).
  return uniform_noise(like, seed).mul_(2.0).sub_(1.0).erfinv_().mul_(std::sqrt(2.0));
}

}  // namespace hear::nn
