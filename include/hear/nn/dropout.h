#pragma once
// Inverted dropout with a mask LibTorch's CPU bernoulli_ cannot make fast: bernoulli_ draws one
// element at a time from a locked mt19937 (~40-70 ms for a (16, 300, 1536) activation on this
// 2-core VM, 13% of a fine-tuning step), while this mask hashes each element's index with a seed
// (splitmix64, counter-based), in parallel over the intra-op threads (~2 ms).
//
// Semantics are torch.nn.functional.dropout's: in training each element is kept with probability
// 1 - p and scaled by 1/(1-p), else zeroed; the backward multiplies by the same mask. What differs
// is the random stream: the seed is one 64-bit draw from LibTorch's default CPU generator per
// call (so torch::manual_seed, checkpointed RNG state and resume stay exact), and the keep
// probability is quantised to 2^-24 (|P(keep) - (1-p)| < 6e-8). The mask does not depend on the
// number of threads. Other devices use torch::dropout.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace hear::nn {

// x any shape; p in [0, 1]. Returns x itself when !training or p == 0.
at::Tensor dropout(const at::Tensor& x, double p, bool training);

// The scaled keep mask dropout multiplies by: x's shape and dtype, values 0 or 1/(1-p), element i
// decided by hash(seed, i) alone.
at::Tensor dropout_mask(const at::Tensor& like, double p, uint64_t seed);

}  // namespace hear::nn
