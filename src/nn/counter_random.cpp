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

int64_t as_signed(uint64_t v) {
  return static_cast<int64_t>(v);
}  // two's complement bits

// x >> k on the bits of an int64 tensor (a logical shift; torch's is arithmetic).
at::Tensor shift_right(const at::Tensor& x, int k) {
  return x.bitwise_right_shift(k).bitwise_and_((int64_t{1} << (64 - k)) - 1);
}

}  // namespace

at::Tensor counter_hash_bits(const at::Tensor& like, uint64_t seed) {
  const uint64_t first =
      static_cast<uint64_t>(current_batch_shard().index) * static_cast<uint64_t>(like.numel());
  // int64 products wrap like uint64 ones: the same bits as the CPU loop.
  at::Tensor z = torch::arange(like.numel(), like.options().dtype(at::kLong))
                     .add_(as_signed(first))
                     .mul_(as_signed(0x9E3779B97F4A7C15ull))
                     .add_(as_signed(mix(seed)));
  z = z.bitwise_xor(shift_right(z, 30)).mul_(as_signed(0xBF58476D1CE4E5B9ull));
  z = z.bitwise_xor(shift_right(z, 27)).mul_(as_signed(0x94D049BB133111EBull));
  z = z.bitwise_xor(shift_right(z, 31));
  return shift_right(z, 40).view(like.sizes());
}

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
  if (!like.device().is_cpu()) {
    const at::Tensor keep =
        counter_hash_bits(like, seed).ge(static_cast<int64_t>(std::llround(p * 16777216.0)));
    return keep.to(like.scalar_type()).mul_(p < 1.0 ? 1.0 / (1.0 - p) : 0.0);
  }
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
  if (!like.device().is_cpu()) {
    return shift_right(counter_hash_bits(like, seed), 1)
        .to(at::kFloat)
        .add_(0.5)
        .mul_(1.0 / 8388608.0);
  }
  at::Tensor u = empty_cpu_like(like, at::kFloat);
  for_each_hash<float>(u, seed, [](float* out, int64_t i, uint64_t bits) {
    // 23 of the 24 bits: (k + 1/2) / 2^23 is exact in float32 and at most 1 - 2^-24. With 24 bits
    // the top value rounds to 1.0f, whose Gumbel noise is +inf (a NaN softmax in ~1 of 2^24).
    out[i] = (static_cast<float>(bits >> 1) + 0.5f) * (1.0f / 8388608.0f);
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
