#pragma once
// Softmax attention in blocks of queries and keys with an online softmax (running max and
// running sum per query row, rescaled as each key block arrives), so no (T, T) score matrix is
// ever materialised and each block's scores stay in cache. For inference: no dropout, no graph.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace hear::nn {

// Query and key block sizes, measured on the paper's task model (4 heads of 96, 30,000 patches,
// one thread, quiet machine): 256 x 1024 8.7 s, 256 x 512 9.1 s, 512 x 1024 9.2 s, against
// 25.0 s for blocks of whole query rows (the (R, T) scores of every row block leave the cache).
inline constexpr int64_t kQueryBlock = 256;
inline constexpr int64_t kKeyBlock = 1024;

// q: (B, h, T, d), already scaled by 1/sqrt(d); k, v: (B, h, T, d); key_padding: undefined or a
// bool tensor broadcastable to (B, h, 1, T), true = padding key -> (B, h, T, d), equal to
// softmax(q k^T with padding scores at the lowest float) v within float rounding.
at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& key_padding, int64_t query_block = kQueryBlock,
                             int64_t key_block = kKeyBlock);

}  // namespace hear::nn
