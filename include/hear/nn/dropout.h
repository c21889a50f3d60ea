#pragma once
// Inverted dropout with a counter-based mask (nn/counter_random.h). Semantics are
// torch.nn.functional.dropout's: in training each element is kept with probability 1 - p and
// scaled by 1/(1-p), else zeroed; the backward multiplies by the same mask. Only the random
// stream differs (one seed drawn from the default CPU generator per call), and it is the same on
// every device.
#include <ATen/core/Tensor.h>

namespace hear::nn {

// x any shape; p in [0, 1]. Returns x itself when !training or p == 0.
at::Tensor dropout(const at::Tensor& x, double p, bool training);

}  // namespace hear::nn
