#pragma once
// Random tensors from a counter-based generator: element i of a tensor is a hash of (seed, i)
// (splitmix64's mix), filled in parallel over the intra-op threads. LibTorch's CPU bernoulli_ and
// exponential_ draw element by element from one locked mt19937, which costs 40-70 ms for a
// (16, 300, 1536) activation on this 2-core VM (13% of a fine-tuning step); these take ~2 ms.
//
// The seed is one 64-bit draw from a LibTorch generator (the default CPU generator unless one is
// given), so torch::manual_seed, a checkpoint's saved generator state and --resume stay exact, and
// a tensor does not depend on the number of threads. The streams differ from LibTorch's own (same
// distributions, 24-bit resolution: named in each function).
//
// Inside a data-parallel shard (nn/batch_shard.h) element i of shard k is element k * numel + i
// of the global batch's stream, so equal-shaped shards together draw what one process draws for
// the whole batch, and no two shards share a mask.
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <cstdint>

namespace hear::nn {

// One 64-bit draw from `generator` (or LibTorch's default CPU generator).
uint64_t draw_seed(c10::optional<at::Generator> generator = c10::nullopt);

// Other devices (CUDA) compute the same hashes with LibTorch's integer ops on the device, so a
// tensor is the same wherever it is drawn.

// The top 24 bits of each element's hash as int64, with LibTorch ops on like's device (the
// device path of the functions below; on the CPU they use a parallel loop with the same bits).
at::Tensor counter_hash_bits(const at::Tensor& like, uint64_t seed);

// The scaled keep mask of inverted dropout: like's shape, dtype and device, values 0 or 1/(1-p),
// element i kept when the top 24 bits of its hash are >= p * 2^24 (|P(keep) - (1-p)| < 6e-8).
at::Tensor dropout_mask(const at::Tensor& like, double p, uint64_t seed);

// U(0, 1) of like's shape (float32, like's device): (23-bit hash + 1/2) / 2^23, exact in float32,
// in [2^-24, 1 - 2^-24] (never 0 or 1).
at::Tensor uniform_noise(const at::Tensor& like, uint64_t seed);

// N(0, 1) of like's shape (float32, like's device): sqrt(2) erfinv(2u - 1) of uniform_noise (|z|
// < 5.3).
at::Tensor normal_noise(const at::Tensor& like, uint64_t seed);

// Gumbel(0, 1) noise -log(-log(u)) of like's shape (float32, like's device), u = uniform_noise, so
// -2.82 < g < 16.7 (LibTorch's exponential_-based noise reaches a little further into the tails).
at::Tensor gumbel_noise(const at::Tensor& like, uint64_t seed);

}  // namespace hear::nn
