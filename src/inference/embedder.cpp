#include "hear/inference/embedder.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <set>

#include "hear/audio/audio_file.h"
#include "hear/audio/waveform_batch.h"
#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/io/npy.h"
#include "hear/io/safetensors.h"
#include "hear/models/weights.h"

namespace hear::inference {
namespace fs = std::filesystem;
namespace {

bool holds_task_model(const io::TensorMap& tensors) {
  for (const auto& [key, value] : tensors) {
    if (key.rfind("task_model.", 0) == 0 || key.rfind("module.task_model.", 0) == 0) return true;
  }
  return false;
}

}  // namespace

at::Tensor patch_timestamps_ms(int64_t patches) {
  return torch::arange(patches, torch::kDouble) * 20.0 + 5.0;
}

Embedder::Embedder(const models::HearClassifierOptions& options, const fs::path& weights,
                   const c10::Device& device)
    : weights_(weights), device_(device) {
  auto model_options = options;
  if (model_options.decoder.num_classes == 0) model_options.decoder.num_classes = 1;
  model_ = models::HearClassifier(model_options);
  const auto file = io::load_safetensors(weights);
  full_ = holds_task_model(file.tensors);
  if (full_) {
    models::load_state(*model_, file.tensors, {}, weights.string());
  } else {
    models::LoadOptions lo;
    lo.prefix = models::kAutoPrefix;
    lo.auto_prefixes = {"acoustic_model.", "encoder."};  // HEAR / PretrainFramework keys
    models::load_state(*model_->acoustic_model, file.tensors, lo, weights.string());
  }
  model_->eval();
  model_->to(device_);
}

void Embedder::require(EmbeddingKind kind) const {
  if (!full_ && (kind == EmbeddingKind::kTask || kind == EmbeddingKind::kLogits)) {
    throw Error("embedding kind '" + io::to_string(kind) + "' needs a full HEAR model, but '" +
                weights_.string() + "' holds no task_model.* weights (an acoustic model only)");
  }
}

std::vector<ClipEmbedding> Embedder::embed(const std::vector<at::Tensor>& waveforms,
                                           EmbeddingKind kind) {
  require(kind);
  std::vector<ClipEmbedding> out;
  if (waveforms.empty()) return out;
  const auto B = static_cast<int64_t>(waveforms.size());
  for (const auto& w : waveforms) {
    if (w.dim() != 1) throw Error("embed: each waveform must be 1-D (samples)");
    if (w.size(0) < kMinEmbedSamples) {
      throw Error("embed: a clip of " + std::to_string(w.size(0)) +
                  " samples is too short (at least " + std::to_string(kMinEmbedSamples) +
                  " at 16 kHz)");
    }
  }
  torch::InferenceMode guard;
  const auto batch = audio::pad_waveforms(waveforms);
  const auto features = frontend_(batch.waveforms.to(device_), batch.lengths.to(device_));
  at::Tensor frames, patch_lengths, logits;
  if (kind == EmbeddingKind::kAcoustic || (kind == EmbeddingKind::kScene && !full_)) {
    auto a = model_->acoustic_model->forward(features.log_mel, features.lengths);
    frames = a.values.cpu();
    patch_lengths = a.lengths.cpu();
  } else {
    auto all = model_->forward_all(features);
    frames = all.task.cpu();
    patch_lengths = all.lengths.cpu();
    logits = all.logits.cpu();
  }
  for (int64_t b = 0; b < B; ++b) {
    const int64_t P = patch_lengths[b].item<int64_t>();
    ClipEmbedding e;
    switch (kind) {
      case EmbeddingKind::kLogits:
        e.values = logits[b].clone();
        break;
      case EmbeddingKind::kScene:
        e.values = models::ClassifierHeadImpl::pool(frames[b].narrow(0, 0, P).unsqueeze(0),
                                                    torch::tensor({P}, torch::kLong))[0];
        break;
      case EmbeddingKind::kAcoustic:
      case EmbeddingKind::kTask:
        e.values = frames[b].narrow(0, 0, P).contiguous();
        e.timestamps_ms = patch_timestamps_ms(P);
        break;
    }
    out.push_back(std::move(e));
  }
  return out;
}

EmbedFilesResult embed_files(Embedder& embedder, const std::vector<std::string>& inputs,
                             const fs::path& out_dir, EmbeddingKind kind, int64_t batch_size) {
  if (batch_size < 1) throw Error("embed_files: batch size must be >= 1");
  embedder.require(kind);  // before any file is decoded
  fs::create_directories(out_dir);
  const std::string kind_name = io::to_string(kind);
  nlohmann::json index = {{"weights", embedder.weights().string()},
                          {"output", kind_name},
                          {"frame_hop_ms", 20.0},
                          {"timestamps",
                           "patch centres: 20 t + 5 ms (frames 2t, 2t+1 are "
                           "centred at 10 ms steps)"},
                          {"files", nlohmann::json::array()}};
  EmbedFilesResult result;
  std::set<std::string> used_stems;
  std::vector<std::pair<std::string, std::string>> pending;  // (path, stem)
  std::vector<at::Tensor> waves;

  auto flush = [&] {
    if (pending.empty()) return;
    const auto embeddings = embedder.embed(waves, kind);
    for (size_t i = 0; i < pending.size(); ++i) {
      const auto& [path, stem] = pending[i];
      const auto& e = embeddings[i];
      const std::string npy = stem + "." + kind_name + ".npy";
      io::save_npy(out_dir / npy, e.values);
      nlohmann::json entry = {
          {"file", path},
          {"seconds", static_cast<double>(waves[i].size(0)) / audio::kSampleRate},
          {"npy", npy},
          {"shape", e.values.sizes().vec()}};
      if (e.timestamps_ms.defined()) {
        const std::string ts = stem + ".timestamps.npy";
        io::save_npy(out_dir / ts, e.timestamps_ms);
        entry["timestamps_npy"] = ts;
      }
      index["files"].push_back(entry);
      result.written.push_back(npy);
      spdlog::info("{} -> {}", path, npy);
    }
    pending.clear();
    waves.clear();
  };

  for (const auto& input : inputs) {
    try {
      at::Tensor wave = audio::load_audio(input);
      if (wave.size(0) < kMinEmbedSamples) {
        throw Error("'" + input + "' is too short (" + std::to_string(wave.size(0)) +
                    " samples at 16 kHz; at least " + std::to_string(kMinEmbedSamples) +
                    " are needed)");
      }
      const std::string base = fs::path(input).stem().string();
      std::string stem = base;
      for (int k = 1; used_stems.count(stem); ++k) stem = base + "_" + std::to_string(k);
      used_stems.insert(stem);
      pending.emplace_back(input, stem);
      waves.push_back(std::move(wave));
    } catch (const Error& e) {
      spdlog::error("skipped: {}", e.what());
      result.failed.push_back(input);
      continue;
    }
    if (static_cast<int64_t>(pending.size()) == batch_size) flush();
  }
  flush();
  index["failed"] = result.failed;
  io::write_file_atomic(out_dir / "index.json", index.dump(2) + "\n");
  return result;
}

}  // namespace hear::inference
