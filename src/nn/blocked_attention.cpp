#include "hear/nn/blocked_attention.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>

#include "hear/error.h"

namespace hear::nn {

at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& key_padding, int64_t query_block,
                             int64_t key_block) {
  if (q.dim() != 4 || k.sizes() != v.sizes() || q.size(-1) != k.size(-1) ||
      q.size(0) != k.size(0) || q.size(1) != k.size(1)) {
    throw Error("blocked_attention: expected q (B, h, Tq, d), k and v (B, h, Tk, d), got " +
                c10::str(q.sizes()) + ", " + c10::str(k.sizes()) + ", " + c10::str(v.sizes()));
  }
  if (query_block < 1 || key_block < 1) throw Error("blocked_attention: block sizes must be >= 1");
  const int64_t tq = q.size(2), tk = k.size(2);
  const float lowest = std::numeric_limits<float>::lowest();
  const at::Tensor k_t = k.transpose(-1, -2).contiguous();  // (B, h, d, Tk)
  const at::Tensor vc = v.contiguous();
  at::Tensor padding;
  if (key_padding.defined()) padding = key_padding.expand({q.size(0), q.size(1), 1, tk});
  at::Tensor out = torch::empty(q.sizes(), q.options());
  for (int64_t i = 0; i < tq; i += query_block) {
    const int64_t rows = std::min(query_block, tq - i);
    const at::Tensor q_i = q.narrow(2, i, rows).contiguous();
    at::Tensor running_max, running_sum, acc;  // (B, h, R, 1), (B, h, R, 1), (B, h, R, d)
    for (int64_t j = 0; j < tk; j += key_block) {
      const int64_t cols = std::min(key_block, tk - j);
      at::Tensor scores = torch::matmul(q_i, k_t.narrow(-1, j, cols));  // (B, h, R, C)
      if (padding.defined()) scores.masked_fill_(padding.narrow(-1, j, cols), lowest);
      const at::Tensor block_max = scores.amax(-1, /*keepdim=*/true);
      if (j == 0) {
        running_max = block_max;
        scores.sub_(running_max).exp_();
        running_sum = scores.sum(-1, /*keepdim=*/true);
        acc = torch::matmul(scores, vc.narrow(2, j, cols));
        continue;
      }
      const at::Tensor new_max = torch::maximum(running_max, block_max);
      const at::Tensor rescale = (running_max - new_max).exp_();
      scores.sub_(new_max).exp_();
      running_sum.mul_(rescale).add_(scores.sum(-1, /*keepdim=*/true));
      acc.mul_(rescale).add_(torch::matmul(scores, vc.narrow(2, j, cols)));
      running_max = new_max;
    }
    out.narrow(2, i, rows).copy_(acc.div_(running_sum));
  }
  return out;
}

}  // namespace hear::nn
