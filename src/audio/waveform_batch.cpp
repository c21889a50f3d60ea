#include "hear/audio/waveform_batch.h"

#include <torch/torch.h>

#include <algorithm>

#include "hear/error.h"

namespace hear::audio {

WaveformBatch pad_waveforms(const std::vector<at::Tensor>& clips,
                            const std::vector<int64_t>& lengths) {
  if (!lengths.empty() && lengths.size() != clips.size()) {
    throw Error("pad_waveforms: " + std::to_string(lengths.size()) + " lengths for " +
                std::to_string(clips.size()) + " clips");
  }
  const auto b = static_cast<int64_t>(clips.size());
  WaveformBatch out;
  out.lengths = torch::empty({b}, torch::kLong);
  auto len = out.lengths.accessor<int64_t, 1>();
  int64_t longest = 0;
  for (int64_t i = 0; i < b; ++i) {
    const at::Tensor& c = clips[static_cast<size_t>(i)];
    if (!c.defined() || c.dim() != 1) throw Error("pad_waveforms: every clip must be (S,)");
    len[i] = lengths.empty() ? c.size(0) : lengths[static_cast<size_t>(i)];
    if (len[i] < c.size(0)) throw Error("pad_waveforms: a length is shorter than its clip");
    longest = std::max(longest, len[i]);
  }
  out.waveforms = torch::zeros({b, longest}, torch::kFloat);
  for (int64_t i = 0; i < b; ++i) {
    const at::Tensor& c = clips[static_cast<size_t>(i)];
    if (c.size(0) > 0) out.waveforms[i].narrow(0, 0, c.size(0)).copy_(c);
  }
  return out;
}

}  // namespace hear::audio
