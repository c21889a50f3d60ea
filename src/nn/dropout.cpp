#include "hear/nn/dropout.h"

#include <torch/torch.h>

#include "hear/nn/counter_random.h"

namespace hear::nn {

at::Tensor dropout(const at::Tensor& x, double p, bool training) {
  if (!training || p == 0.0) return x;
  // The mask is a constant of the graph: autograd's backward of the product is grad * mask.
  return x * dropout_mask(x, p, draw_seed());
}

}  // namespace hear::nn
