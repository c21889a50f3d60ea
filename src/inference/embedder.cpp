#include "hear/inference/embedder.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "hear/audio/audio_file.h"
#include "hear/audio/waveform_batch.h"
#include "hear/error.h"
#include "hear/inference/stream_embedder.h"
#include "hear/io/file_util.h"
#include "hear/io/npy.h"
#include "hear/io/safetensors.h"
#include "hear/models/weights.h"
#include "hear/util/process_memory.h"

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
  return patch_timestamps_ms(0, patches);
}

at::Tensor patch_timestamps_ms(int64_t first, int64_t count) {
  return torch::arange(first, first + count, torch::kDouble) * 20.0 + 5.0;
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

Embedder::Embedder(models::HearClassifier model, const fs::path& source, const c10::Device& device)
    : model_(std::move(model)), weights_(source), full_(true), device_(device) {
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

namespace {

// A file decoded for the offline path, or the reason it was skipped.
struct Decoded {
  at::Tensor wave;
  std::string error;
};

Decoded decode(const std::string& input) {
  try {
    at::Tensor wave = audio::load_audio(input);
    if (wave.size(0) < kMinEmbedSamples) {
      throw Error("'" + input + "' is too short (" + std::to_string(wave.size(0)) +
                  " samples at 16 kHz; at least " + std::to_string(kMinEmbedSamples) +
                  " are needed)");
    }
    return {wave, ""};
  } catch (const std::exception& e) {
    return {at::Tensor(), e.what()};
  }
}

// One file through the StreamEmbedder: pass 1 the DC mean, pass 2 the spectra's statistics,
// pass 3 the model, frames written to the .npy as they become final.
ClipEmbedding stream_file(Embedder& embedder, const std::string& input, const fs::path& npy_path,
                          const EmbedFilesOptions& options, double* seconds) {
  audio::AudioStream in(input);
  const int64_t total = in.total_samples();
  if (total < kMinEmbedSamples) {
    throw Error("'" + input + "' is too short (" + std::to_string(total) +
                " samples at 16 kHz; at least " + std::to_string(kMinEmbedSamples) +
                " are needed)");
  }
  *seconds = static_cast<double>(total) / audio::kSampleRate;
  const auto block =
      std::max<int64_t>(1, std::llround(options.stream_block_s * in.info().sample_rate));
  audio::ClipStatisticsAccumulator statistics;
  for (auto b = in.read(block); b.size(0) > 0; b = in.read(block)) statistics.add_samples(b);
  in.rewind();
  audio::StreamingFrontend spectra(embedder.frontend(), statistics.dc_mean());
  for (auto b = in.read(block); b.size(0) > 0; b = in.read(block)) {
    statistics.add_frames(spectra.push(b));
  }
  statistics.add_frames(spectra.finish());
  in.rewind();

  StreamEmbedder stream(embedder, statistics.statistics(), options.task_span);
  const bool frames = options.kind == EmbeddingKind::kAcoustic;
  std::optional<io::NpyRowWriter> writer;
  const int64_t patches = audio::patch_count(total);
  if (frames) {
    writer.emplace(npy_path, patches, embedder.model()->acoustic_model->options().hidden_size);
  }
  for (auto b = in.read(block); b.size(0) > 0; b = in.read(block)) {
    const auto f = stream.push(b);
    if (writer) writer->append(f.values);
  }
  const auto summary = stream.finish();
  ClipEmbedding e;
  if (writer) {
    writer->append(summary.frames.values);
    writer->close();
    e.timestamps_ms = patch_timestamps_ms(patches);
    e.values = torch::zeros({patches, 0});  // written already; the shape for the index
  } else if (options.kind == EmbeddingKind::kTask) {
    e.values = summary.task;
    e.timestamps_ms = summary.task_timestamps_ms;
  } else {
    e.values = options.kind == EmbeddingKind::kLogits ? summary.logits : summary.scene;
  }
  return e;
}

}  // namespace

EmbedFilesResult embed_files(Embedder& embedder, const std::vector<std::string>& inputs,
                             const fs::path& out_dir, const EmbedFilesOptions& options) {
  const auto kind = options.kind;
  const int64_t batch_size = options.batch_size;
  if (batch_size < 1) throw Error("embed_files: batch size must be >= 1");
  if (options.decode_threads < 0) throw Error("embed_files: decode threads must be >= 0");
  if (options.stream && !(options.stream_block_s > 0.0)) {
    throw Error("embed_files: stream block must be > 0 s");
  }
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
  util::reset_peak_rss();
  const auto t0 = std::chrono::steady_clock::now();
  std::set<std::string> used_stems;
  auto stem_of = [&](const std::string& input) {
    const std::string base = fs::path(input).stem().string();
    std::string stem = base;
    for (int k = 1; used_stems.count(stem); ++k) stem = base + "_" + std::to_string(k);
    used_stems.insert(stem);
    return stem;
  };
  auto record = [&](const std::string& path, const std::string& stem, const ClipEmbedding& e,
                    double seconds, bool values_written) {
    const std::string npy = stem + "." + kind_name + ".npy";
    if (!values_written) io::save_npy(out_dir / npy, e.values);
    std::vector<int64_t> shape = e.values.sizes().vec();
    if (values_written) shape[1] = embedder.model()->acoustic_model->options().hidden_size;
    nlohmann::json entry = {{"file", path}, {"seconds", seconds}, {"npy", npy}, {"shape", shape}};
    if (e.timestamps_ms.defined()) {
      const std::string ts = stem + ".timestamps.npy";
      io::save_npy(out_dir / ts, e.timestamps_ms);
      entry["timestamps_npy"] = ts;
    }
    index["files"].push_back(entry);
    result.written.push_back(npy);
    ++result.files;
    result.audio_s += seconds;
    spdlog::info("{} -> {}", path, npy);
  };
  auto fail = [&](const std::string& input, const std::string& message) {
    spdlog::error("skipped: {}", message);
    result.failed.push_back(input);
  };

  if (options.stream) {
    for (const auto& input : inputs) {
      const std::string stem = stem_of(input);
      try {
        double seconds = 0.0;
        const auto e = stream_file(embedder, input, out_dir / (stem + "." + kind_name + ".npy"),
                                   options, &seconds);
        record(input, stem, e, seconds, kind == EmbeddingKind::kAcoustic);
      } catch (const Error& e) {
        fail(input, e.what());
      }
    }
  } else {
    // Decoding runs ahead in background threads while the model embeds the current batch.
    const size_t ahead = options.decode_threads == 0
                             ? 0
                             : std::max<size_t>(static_cast<size_t>(batch_size),
                                                2 * static_cast<size_t>(options.decode_threads));
    std::deque<std::future<Decoded>> queue;
    size_t next = 0;
    auto refill = [&] {
      while (next < inputs.size() && queue.size() < ahead) {
        queue.push_back(std::async(std::launch::async, decode, inputs[next++]));
      }
    };
    std::vector<std::pair<std::string, std::string>> pending;  // (path, stem)
    std::vector<at::Tensor> waves;
    auto flush = [&] {
      if (pending.empty()) return;
      const auto embeddings = embedder.embed(waves, kind);
      for (size_t i = 0; i < pending.size(); ++i) {
        record(pending[i].first, pending[i].second, embeddings[i],
               static_cast<double>(waves[i].size(0)) / audio::kSampleRate, false);
      }
      pending.clear();
      waves.clear();
    };
    for (size_t i = 0; i < inputs.size(); ++i) {
      Decoded d;
      if (ahead == 0) {
        d = decode(inputs[i]);
      } else {
        refill();
        d = queue.front().get();
        queue.pop_front();
        refill();
      }
      if (!d.wave.defined()) {
        fail(inputs[i], d.error);
        continue;
      }
      pending.emplace_back(inputs[i], stem_of(inputs[i]));
      waves.push_back(std::move(d.wave));
      if (static_cast<int64_t>(pending.size()) == batch_size) flush();
    }
    flush();
  }
  result.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.peak_rss_mib = util::peak_rss_mib();
  index["failed"] = result.failed;
  index["throughput"] = {{"files", result.files},
                         {"audio_s", result.audio_s},
                         {"wall_s", result.wall_s},
                         {"files_per_s", result.files_per_s()},
                         {"rtf", result.rtf()},
                         {"peak_rss_mib", result.peak_rss_mib},
                         {"intra_op_threads", at::get_num_threads()},
                         {"decode_threads", options.decode_threads},
                         {"batch_size", batch_size},
                         {"stream", options.stream}};
  io::write_file_atomic(out_dir / "index.json", index.dump(2) + "\n");
  return result;
}

}  // namespace hear::inference
