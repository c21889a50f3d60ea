#pragma once
// Embedding audio with a trained HEAR model (eval mode, no autograd): frame embeddings with
// timestamps, pooled clip ("scene") vectors or classifier logits. Used by hear-embed; the
// streaming and Python front ends build on it.
//
// Weights: a full HEAR model (`acoustic_model.*`, `task_model.*`, ...) or an acoustic model alone
// (a hear-pretrain export, a MAM checkpoint's `encoder.*`, or `acoustic_model.*` only). With an
// acoustic model alone only kAcoustic and kScene (pooled acoustic frames) are available.
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hear/audio/frontend.h"
#include "hear/io/enum_names.h"
#include "hear/models/hear_classifier.h"

namespace hear::inference {

enum class EmbeddingKind {
  kAcoustic,  // acoustic-model frames (P, acoustic hidden)
  kTask,      // task-model frames (P, task hidden)
  kLogits,    // classifier outputs (num_classes,)
  kScene,     // [mean, max, std] of the task-model frames (of the acoustic frames without a
              // task model): (3 · hidden,)
};
constexpr std::array<std::pair<EmbeddingKind, const char*>, 4> enum_names(EmbeddingKind) {
  return {{{EmbeddingKind::kAcoustic, "acoustic"},
           {EmbeddingKind::kTask, "task"},
           {EmbeddingKind::kLogits, "logits"},
           {EmbeddingKind::kScene, "scene"}}};
}

// What a stream's task model sees (inference/stream_embedder.h): the whole stream, which must
// then fit task_model.max_length patches as offline, or the last max_length patches.
enum class TaskSpan { kWhole, kLast };
constexpr std::array<std::pair<TaskSpan, const char*>, 2> enum_names(TaskSpan) {
  return {{{TaskSpan::kWhole, "whole"}, {TaskSpan::kLast, "last"}}};
}

// The shortest clip the frontend accepts (one STFT window), in 16 kHz samples.
inline constexpr int64_t kMinEmbedSamples = 1024;

// Patch t covers frames 2t and 2t+1 (10 ms hop, centred): its centre is at 20 t + 5 ms.
// Returns (P,) float64, computed per index so that long inputs do not drift.
at::Tensor patch_timestamps_ms(int64_t patches);
// Patches first .. first + count - 1 of a longer input: (count,) float64.
at::Tensor patch_timestamps_ms(int64_t first, int64_t count);

struct ClipEmbedding {
  at::Tensor values;         // see EmbeddingKind
  at::Tensor timestamps_ms;  // (P,) for frame kinds; undefined for kLogits / kScene
};

class Embedder {
 public:
  // `options` describes the architecture (decoder.num_classes must match a full model's head).
  // The model runs on `device`; inputs may be anywhere and results come back on the CPU.
  Embedder(const models::HearClassifierOptions& options, const std::filesystem::path& weights,
           const c10::Device& device = c10::kCPU);

  // A full HEAR model already loaded (a hear-finetune run, stages/finetuned_model.h); `source`
  // names it in messages.
  Embedder(models::HearClassifier model, const std::filesystem::path& source,
           const c10::Device& device = c10::kCPU);

  bool has_task_model() const { return full_; }
  // Throws hear::Error naming the weights when `kind` needs a task model this one lacks.
  void require(EmbeddingKind kind) const;
  const std::filesystem::path& weights() const { return weights_; }
  models::HearClassifier& model() { return model_; }
  const audio::Frontend& frontend() const { return frontend_; }
  const c10::Device& device() const { return device_; }

  // waveforms: 16 kHz mono clips (S_i,) of any lengths >= kMinEmbedSamples, embedded together
  // (zero-padded to the longest; results do not depend on the batch). One entry per clip.
  std::vector<ClipEmbedding> embed(const std::vector<at::Tensor>& waveforms, EmbeddingKind kind);

 private:
  models::HearClassifier model_{nullptr};
  audio::Frontend frontend_;
  std::filesystem::path weights_;
  bool full_ = false;
  c10::Device device_ = c10::kCPU;
};

// Embeds audio files (any format libsndfile reads) into `out_dir`: STEM.<kind>.npy
// (+ STEM.timestamps.npy for frame kinds) per file and index.json listing them with the run's
// throughput. Unreadable or too short files are skipped, named in the log and in index.json.
struct EmbedFilesOptions {
  EmbeddingKind kind = EmbeddingKind::kAcoustic;
  int64_t batch_size = 8;  // files per forward pass
  int decode_threads = 1;  // files decoded ahead in background threads (0: in the caller)
  // Block-wise, memory bounded by a few windows (inference/stream_embedder.h), one file at a
  // time: two cheap pre-passes read the frontend statistics, the third embeds.
  bool stream = false;
  double stream_block_s = 1.0;
  TaskSpan task_span = TaskSpan::kLast;
};

struct EmbedFilesResult {
  std::vector<std::string> written;  // npy files, relative to out_dir
  std::vector<std::string> failed;   // input paths
  int64_t files = 0;                 // embedded
  double audio_s = 0.0, wall_s = 0.0, peak_rss_mib = 0.0;
  double files_per_s() const { return wall_s > 0.0 ? files / wall_s : 0.0; }
  double rtf() const { return audio_s > 0.0 ? wall_s / audio_s : 0.0; }
};
EmbedFilesResult embed_files(Embedder& embedder, const std::vector<std::string>& inputs,
                             const std::filesystem::path& out_dir,
                             const EmbedFilesOptions& options);

}  // namespace hear::inference
