#pragma once
// Embedding a recording as it arrives, in blocks of any size, with memory bounded by a few
// acoustic windows. push() returns the acoustic-model frames that have become final: those of
// window i once it is encoded (6 s of patches have arrived) and its 1 s cross-fade with window
// i - 1 is complete. finish() returns the rest and, for a full HEAR model, the task-model
// frames, logits and scene vector. Equal to Embedder::embed on the whole recording within float
// rounding (tests/inference/stream_embedder_test.cpp).
//
// Normalization: the frontend normalizes each recording with its own statistics (DC mean,
// spectra mean and std), so the stream needs them before its first block: a pre-pass over a
// file (hear-embed --stream reads it twice more, block-wise) or, for live audio, statistics of a
// calibration recording (then the frames differ from the offline ones by that mismatch).
//
// The task model's one attention layer is global over its input. TaskSpan::kWhole keeps the
// exact offline behaviour: the stream must fit the task model (task_model.max_length patches,
// 30 s), as offline. TaskSpan::kLast serves unbounded streams: the task model sees the last
// max_length patches (its input is kept in a ring of that size), and equals kWhole for streams
// that fit. Without a task model the scene vector pools every acoustic frame (running sums).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>

#include "hear/audio/streaming_frontend.h"
#include "hear/inference/embedder.h"

namespace hear::inference {

struct StreamFrames {
  at::Tensor values;         // (n, acoustic hidden) acoustic-model frames, n >= 0
  at::Tensor timestamps_ms;  // (n,) float64 patch centres, 20 p + 5 ms
  int64_t first_patch = 0;   // index of values[0] in the stream
};

struct StreamSummary {
  StreamFrames frames;            // the last acoustic frames
  int64_t patches = 0;            // acoustic frames in the whole stream
  at::Tensor task;                // (n_task, task hidden); undefined without a task model
  at::Tensor task_timestamps_ms;  // (n_task,)
  at::Tensor logits;              // (num_classes,); undefined without a task model
  at::Tensor scene;               // (3 · hidden,) [mean, max, std], see the header comment
};

class StreamEmbedder {
 public:
  // `embedder` must outlive the stream. Throws hear::Error for an acoustic model whose windows
  // overlap by more than half (not streamable with one pending tail).
  StreamEmbedder(Embedder& embedder, const audio::ClipStatistics& statistics,
                 TaskSpan task_span = TaskSpan::kLast);

  StreamFrames push(const at::Tensor& samples);  // (S,) float at 16 kHz, any S >= 0
  StreamSummary finish();

 private:
  void add_patches(const audio::SpectrumFrames& frames);
  StreamFrames encode_ready(bool at_end);
  StreamFrames emit(const at::Tensor& values, int64_t first_patch);

  Embedder& embedder_;
  audio::ClipStatistics statistics_;
  TaskSpan task_span_;
  audio::StreamingFrontend frontend_;
  int64_t win_, stride_, overlap_;
  at::Tensor odd_mel_, odd_power_;  // a frame waiting for its pair (n_mels/bins, 0 or 1)
  at::Tensor patches_;              // (n, hidden) patch embeddings from patches_start_
  at::Tensor power_pairs_;          // (bins, 2 n) log-power frames of the same patches
  int64_t patches_start_ = 0, patches_total_ = 0;
  int64_t next_window_ = 0;        // windows encoded so far
  int64_t emitted_ = 0;            // acoustic frames returned so far
  at::Tensor tail_, tail_weight_;  // (overlap, hidden), (overlap, 1): cross-fade pending
  at::Tensor window_weights_;      // (win, 1)
  // Task model input (the gated mixture) of the last max_length patches, oldest first.
  at::Tensor task_input_;
  // Scene pooling of acoustic frames (acoustic model alone), float64.
  at::Tensor frame_sum_, frame_sq_sum_, frame_max_;
  bool finished_ = false;
};

}  // namespace hear::inference
