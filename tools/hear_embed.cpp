// hear-embed: run audio files through a HEAR model (eval mode) and write, per file, frame
// embeddings with timestamps, pooled clip vectors or logits as .npy, plus a JSON index.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "hear/audio/audio_file.h"
#include "hear/audio/frontend.h"
#include "hear/io/config.h"
#include "hear/io/file_util.h"
#include "hear/io/npy.h"
#include "hear/io/safetensors.h"
#include "hear/models/hear_classifier.h"
#include "hear/models/weights.h"
#include "tool_common.h"

namespace fs = std::filesystem;

namespace {

struct Clip {
  std::string path;
  at::Tensor wave;
  std::string stem;  // unique output name
};

}  // namespace

int main(int argc, char** argv) {
  return hear::tools::run_tool("hear-embed", [&]() -> int {
    CLI::App app{"Embed audio files with a HEAR model"};
    std::string config_path, weights_path, out_dir, output = "acoustic";
    std::vector<std::string> inputs, overrides;
    int batch_size = 8, threads = 1;
    app.add_option("inputs", inputs, "audio files (any format libsndfile reads, any length)")
        ->required();
    app.add_option("--config", config_path, "model config YAML (HearClassifier keys)");
    app.add_option("--set", overrides, "dotted config overrides, e.g. decoder.num_classes=50");
    app.add_option("-w,--weights", weights_path,
                   "safetensors with reference key names: a full HEAR model "
                   "(acoustic_model.*, task_model.*, ...) or an acoustic model alone")
        ->required();
    app.add_option("-o,--out-dir", out_dir, "output folder")->required();
    app.add_option("--output", output,
                   "acoustic: acoustic-model frames; task: task-model frames; logits: classifier "
                   "outputs; scene: [mean, max, std] of the task-model frames (of the acoustic "
                   "frames when the weights hold only an acoustic model)")
        ->check(CLI::IsMember({"acoustic", "task", "logits", "scene"}));
    app.add_option("--batch-size", batch_size, "files per forward pass")
        ->check(CLI::PositiveNumber);
    app.add_option("--threads", threads, "intra-op threads")->check(CLI::PositiveNumber);
    HEAR_PARSE(app, argc, argv);
    at::set_num_threads(threads);

    hear::models::HearClassifierOptions options;
    if (options.decoder.num_classes == 0) options.decoder.num_classes = 1;
    hear::io::load_config_into(
        options, config_path.empty() ? std::nullopt : std::optional<fs::path>(config_path),
        overrides);

    auto file = hear::io::load_safetensors(weights_path);
    bool full = false;
    for (const auto& [k, v] : file.tensors) {
      full = full || k.rfind("task_model.", 0) == 0 || k.rfind("module.task_model.", 0) == 0;
    }
    if (!full && (output == "task" || output == "logits")) {
      throw hear::Error("--output " + output + " needs a full HEAR model, but '" + weights_path +
                        "' holds no task_model.* weights (an acoustic model only)");
    }
    auto model = hear::models::HearClassifier(options);
    if (full) {
      hear::models::load_state(*model, file.tensors, {}, weights_path);
    } else {
      hear::models::LoadOptions lo;
      for (const auto& [k, v] : file.tensors) {
        if (k.rfind("acoustic_model.", 0) == 0 || k.rfind("module.acoustic_model.", 0) == 0) {
          lo.prefix = "acoustic_model.";
        } else if (k.rfind("encoder.", 0) == 0 || k.rfind("module.encoder.", 0) == 0) {
          lo.prefix = "encoder.";  // a PretrainFramework / hear-pretrain checkpoint
        }
      }
      hear::models::load_state(*model->acoustic_model, file.tensors, lo, weights_path);
    }
    model->eval();
    torch::InferenceMode guard;
    hear::audio::Frontend frontend;
    fs::create_directories(out_dir);

    nlohmann::json index = {{"weights", weights_path},
                            {"output", output},
                            {"frame_hop_ms", 20.0},
                            {"timestamps",
                             "patch centres: 20 t + 5 ms (frames 2t, 2t+1 are "
                             "centred at 10 ms steps)"},
                            {"files", nlohmann::json::array()}};
    std::vector<std::string> failed;
    std::set<std::string> used_stems;
    std::vector<Clip> pending;

    auto flush = [&] {
      if (pending.empty()) return;
      const int64_t B = static_cast<int64_t>(pending.size());
      int64_t max_len = 0;
      for (const auto& c : pending) max_len = std::max<int64_t>(max_len, c.wave.size(0));
      at::Tensor waves = torch::zeros({B, max_len});
      at::Tensor lengths = torch::empty({B}, torch::kLong);
      for (int64_t b = 0; b < B; ++b) {
        const auto n = pending[b].wave.size(0);
        waves[b].narrow(0, 0, n).copy_(pending[b].wave);
        lengths[b] = n;
      }
      const auto features = frontend(waves, lengths);
      at::Tensor frames, patch_lengths, logits;
      if (output == "acoustic" || (output == "scene" && !full)) {
        auto a = model->acoustic_model->forward(features.log_mel, features.lengths);
        frames = a.values;
        patch_lengths = a.lengths;
      } else {
        auto all = model->forward_all(features);
        frames = all.task;
        patch_lengths = all.lengths;
        logits = all.logits;
      }
      for (int64_t b = 0; b < B; ++b) {
        const auto& clip = pending[b];
        const int64_t P = patch_lengths[b].item<int64_t>();
        nlohmann::json entry = {{"file", clip.path}, {"seconds", clip.wave.size(0) / 16000.0}};
        const fs::path base = fs::path(out_dir) / clip.stem;
        if (output == "logits") {
          hear::io::save_npy(base.string() + ".logits.npy", logits[b]);
          entry["npy"] = clip.stem + ".logits.npy";
          entry["shape"] = logits[b].sizes().vec();
        } else if (output == "scene") {
          const at::Tensor pooled = hear::models::ClassifierHeadImpl::pool(
              frames[b].narrow(0, 0, P).unsqueeze(0), torch::tensor({P}, torch::kLong))[0];
          hear::io::save_npy(base.string() + ".scene.npy", pooled);
          entry["npy"] = clip.stem + ".scene.npy";
          entry["shape"] = pooled.sizes().vec();
        } else {
          const at::Tensor emb = frames[b].narrow(0, 0, P).contiguous();
          const at::Tensor ts = torch::arange(P, torch::kDouble) * 20.0 + 5.0;
          hear::io::save_npy(base.string() + "." + output + ".npy", emb);
          hear::io::save_npy(base.string() + ".timestamps.npy", ts);
          entry["npy"] = clip.stem + "." + output + ".npy";
          entry["timestamps_npy"] = clip.stem + ".timestamps.npy";
          entry["shape"] = emb.sizes().vec();
        }
        index["files"].push_back(entry);
        spdlog::info("{} -> {}", clip.path, entry["npy"].get<std::string>());
      }
      pending.clear();
    };

    for (const auto& input : inputs) {
      try {
        Clip clip;
        clip.path = input;
        clip.wave = hear::audio::load_audio(input);
        if (clip.wave.size(0) < 1024) {
          throw hear::Error("'" + input + "' is too short (" + std::to_string(clip.wave.size(0)) +
                            " samples at 16 kHz; at least 1024 are needed)");
        }
        std::string stem = fs::path(input).stem().string();
        for (int k = 1; used_stems.count(stem); ++k) {
          stem = fs::path(input).stem().string() + "_" + std::to_string(k);
        }
        used_stems.insert(stem);
        clip.stem = stem;
        pending.push_back(std::move(clip));
      } catch (const hear::Error& e) {
        std::fprintf(stderr, "hear-embed: skipped: %s\n", e.what());
        failed.push_back(input);
        continue;
      }
      if (static_cast<int>(pending.size()) == batch_size) flush();
    }
    flush();
    index["failed"] = failed;
    hear::io::write_file_atomic(fs::path(out_dir) / "index.json", index.dump(2) + "\n");
    if (!failed.empty()) {
      std::fprintf(stderr, "hear-embed: error: %zu of %zu files failed (listed in index.json)\n",
                   failed.size(), inputs.size());
      return 1;
    }
    return 0;
  });
}
