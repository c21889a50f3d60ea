#pragma once
// Clips of different lengths as one zero-padded batch, the (tensor, lengths) pair every batched
// call takes.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace hear::audio {

struct WaveformBatch {
  at::Tensor waveforms;  // (B, S) float32, zero after each clip's length
  at::Tensor lengths;    // (B,) int64 valid samples
};

// clips: (S_i,) waveforms. `lengths` (optional, one per clip, each >= S_i) replaces the clips' own
// lengths, e.g. for segments zero-padded up to a minimum; the batch is as long as the longest.
WaveformBatch pad_waveforms(const std::vector<at::Tensor>& clips,
                            const std::vector<int64_t>& lengths = {});

}  // namespace hear::audio
